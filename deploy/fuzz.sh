#!/usr/bin/env bash
# Fuzzes Tandem's decoders with libFuzzer (tests/fuzz): the GGUF reader, frame admission on
# a stage, the tokenizers, the node-profiles JSON, the LAN discovery datagrams and the join
# handshake (JoinRequest, join tokens, certificate requests). Builds them in build-fuzz/ with
# Debian's clang (libFuzzer + AddressSanitizer + UBSan), then runs each target:
#
#   deploy/fuzz.sh --smoke            every target for a short budget (the test command)
#   deploy/fuzz.sh --long SECONDS     every target for SECONDS each (niced); the corpus
#                                     grows in build-fuzz/corpus/<target>
#   deploy/fuzz.sh ... TARGET...      only these targets (gguf tokenizer frame_admission
#                                     node_profiles discovery_datagram join)
#
# Prints the executions per target. A crash, leak or timeout fails the script and leaves
# the input in build-fuzz/artifacts/<target>/; copy it into tests/fuzz/<target>/regressions/
# so that <target>_fuzz_replay_test (every build) keeps replaying it once it is fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=smoke
seconds=${TANDEM_FUZZ_SMOKE_SECONDS:-20}
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke; shift ;;
    --long) mode=long; seconds=${2:?--long takes SECONDS}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(gguf tokenizer frame_admission node_profiles discovery_datagram join)

bash "$root/deploy/setup.sh"
build="$root/build-fuzz"
jobs=${TANDEM_JOBS:-$(nproc)}
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]/%/_fuzz}"

status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # The committed seeds and regressions are read; new inputs go to the working corpus.
  inputs=("$corpus" "$root/tests/fuzz/$t/corpus")
  [ -d "$root/tests/fuzz/$t/regressions" ] && inputs+=("$root/tests/fuzz/$t/regressions")
  echo "== fuzz $t ($mode, ${seconds} s) =="
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n 19 "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=2560 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  line="$t: ${execs:-?} executions in ${seconds} s"
  if [ $rc -ne 0 ]; then
    line="$line, FAILED (exit $rc)"
    status=1
    tail -40 "$log" >&2
    echo "fuzz: $t failed; the input is in $artifacts/, the log in $log" >&2
  fi
  summary+=("$line")
done
echo "== fuzz summary =="
printf '  %s\n' "${summary[@]}"
exit $status
