#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages.
# Safe to run again: apt skips what is already installed.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libasio-dev libopenblas-dev libgtest-dev libgmock-dev libabsl-dev
  libbenchmark-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  ccache libssl-dev clang-format
  prometheus-cpp-dev prometheus curl
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
