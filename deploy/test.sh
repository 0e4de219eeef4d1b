#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, checks formatting (clang-format),
# checks the deploy files offline (deploy/validate.sh), runs the whole suite under
# ctest, then the GGUF reader and tokenizer tests again under AddressSanitizer + UBSan,
# then every libFuzzer target for a short budget (deploy/fuzz.sh).
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

echo "== model/ tests under AddressSanitizer + UBSan =="
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$root/build-asan/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$root/build-asan" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug \
    -DTANDEM_SANITIZE=ON -DTANDEM_ONLY_MODEL=ON >/dev/null
fi
cmake --build "$root/build-asan" -j "$jobs"
(cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")

echo "== fuzz targets (libFuzzer, short budget) =="
bash "$root/deploy/fuzz.sh" --smoke
