#!/usr/bin/env bash
# Runs the node and coordinator tests under ThreadSanitizer (not part of deploy/test.sh):
# builds them in build-tsan/ (gcc, -fsanitize=thread via TANDEM_SANITIZE=thread, -O1) and
# runs each test binary; a data race fails the script with TSan's report. Tests that run a
# gRPC server in the process (node/forward_revocation_test) are left out: Debian's libgrpc
# and libabsl are not built with TSan, so their own locks are invisible to it and it reports
# hundreds of races inside them (tried on 2026-12-03: every report's stack was in libgrpc,
# libgpr or abseil's GraphCycles).
#
#   nice bash deploy/tsan.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/setup.sh"
jobs=${TANDEM_JOBS:-$(nproc)}
build="$root/build-tsan"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" \
  -DTANDEM_SANITIZE=thread -DTANDEM_BENCH=OFF >/dev/null
tests=(node/thread_pool_test node/stage_test node/stage_metrics_test coordinator/coordinator_test
       coordinator/telemetry_test)
cmake --build "$build" -j "$jobs" --target "${tests[@]##*/}"
status=0
for t in "${tests[@]}"; do
  echo "== $t under ThreadSanitizer =="
  (cd "$build" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "./$t") || status=1
done
exit $status
