#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages.
# Safe to run again: apt skips what is already installed.
# TANDEM_SETUP=build installs only what building needs (deploy/Dockerfile uses it);
# otherwise the tools deploy/validate.sh checks the deploy files with come too, and
# their npm packages are installed into deploy/validate/node_modules.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  iproute2 iptables iputils-ping libnetfilter-queue-dev
  libasio-dev libopenblas-dev libgtest-dev libgmock-dev libabsl-dev
  libbenchmark-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  ccache libssl-dev clang-format
  clang libclang-rt-14-dev libfuzzer-14-dev libcpp-httplib-dev prometheus-cpp-dev prometheus curl
)
if [ "${TANDEM_SETUP:-all}" != build ]; then
  # docker-compose (1.29, Debian's) for `config`; systemd for `systemd-analyze`.
  PACKAGES+=(docker-compose systemd)
  # Node runs the OpenAI client tests (tests/openai); a Node already installed from
  # elsewhere (e.g. NodeSource, which bundles npm) is kept.
  command -v node >/dev/null || PACKAGES+=(nodejs)
  # Chromium runs the dashboard's browser test (tests/dashboard, driven by playwright-core).
  PACKAGES+=(chromium)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm (the Kubernetes schema check, the Dockerfile linter) from Debian only when no
# npm is there: a Node.js build that ships its own npm conflicts with Debian's.
if [ "${TANDEM_SETUP:-all}" != build ] && ! command -v npm >/dev/null; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${TANDEM_SETUP:-all}" != build ]; then
  validate_dir=$(cd "$(dirname "$0")" && pwd)/validate
  if [ ! -d "$validate_dir/node_modules" ] ||
    [ "$validate_dir/package-lock.json" -nt "$validate_dir/node_modules" ]; then
    echo "setup: installing the deploy checks' npm packages" >&2
    (cd "$validate_dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$validate_dir/node_modules"
  fi
fi
