#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, checks formatting (clang-format),
# checks the deploy files offline (deploy/validate.sh), runs the whole suite under
# ctest, then the whole suite again under AddressSanitizer + UBSan (build-asan), then
# every libFuzzer target for a short budget (deploy/fuzz.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh"
echo "== format =="
bash "$root/deploy/format.sh"
echo "== deploy files =="
bash "$root/deploy/validate.sh"
jobs=${TANDEM_JOBS:-$(nproc)}
shared=${TANDEM_SHARED_DIR:-$root/../shared}
if [ ! -d "$shared/models" ]; then
  echo "test: the shared test data is missing at $shared (set TANDEM_SHARED_DIR)" >&2
  exit 1
fi

echo "== tests (Release) =="
(cd "$root/build" && ctest --output-on-failure -j "$jobs")

echo "== the whole suite under AddressSanitizer + UBSan (build-asan) =="
# Every test target, -O1 with line tables (lean enough for CI's 2 cores), no benchmarks and
# no fuzz executables (the fuzz targets' replay tests are built and run). Leaks fail a test.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$root/build-asan" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" \
  -DTANDEM_SANITIZE=address -DTANDEM_ONLY_MODEL=OFF -DTANDEM_BENCH=OFF >/dev/null
start=$SECONDS
cmake --build "$root/build-asan" -j "$jobs"
echo "asan build: $((SECONDS - start)) s"
# Left out under ASan, each run in the Release suite above:
# - PipelineTest.NodeMemoryIsItsShardNotTheModel bounds a node's resident memory, which
#   ASan's shadow memory, redzones and 256 MiB quarantine inflate by design (331 MiB RSS
#   for a 69 MiB shard): the bound measures the sanitizer, not Tandem.
# - MembershipTest.CoordinatorRestartReformsWithinTwoHeartbeats bounds a wall-clock time
#   (re-formed within two 500 ms heartbeats); ASan slows every process, and one run measured
#   1045 ms. The bound is checked, unchanged, in the Release suite above.
asan_excluded='^(PipelineTest\.NodeMemoryIsItsShardNotTheModel|MembershipTest\.CoordinatorRestartReformsWithinTwoHeartbeats)$'
start=$SECONDS
(cd "$root/build-asan" &&
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j "$jobs" --timeout 900 -E "$asan_excluded")
echo "asan tests: $((SECONDS - start)) s"

echo "== fuzz targets (libFuzzer, short budget) =="
bash "$root/deploy/fuzz.sh" --smoke
