#!/usr/bin/env bash
# The web dashboard in headless Chromium: installs the lockfile's playwright-core into
# tests/dashboard/node_modules when it is missing or stale, then runs dashboard.test.mjs
# with Node's test runner against a real `tandem run --http` cluster. Screenshots go to
# SCREENSHOT_DIR (the build directory under ctest).
# Usage: run.sh TANDEM_BINARY SHARED_DIR [SCREENSHOT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tandem=$(realpath "${1:?usage: run.sh TANDEM_BINARY SHARED_DIR [SCREENSHOT_DIR]}")
shared=$(realpath -m "${2:?usage: run.sh TANDEM_BINARY SHARED_DIR [SCREENSHOT_DIR]}")
shots=${3:+$(realpath -m "$3")}
if [ ! -d "$shared/models" ]; then
  echo "dashboard tests: the shared test data is missing at $shared" >&2
  exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "dashboard tests: node and npm are needed (deploy/setup.sh installs them)" >&2; exit 1; }
command -v chromium >/dev/null ||
  { echo "dashboard tests: chromium is needed (deploy/setup.sh installs it)" >&2; exit 1; }
command -v promtool >/dev/null ||
  { echo "dashboard tests: promtool is needed (deploy/setup.sh installs prometheus)" >&2; exit 1; }
cd "$here"
want=$(node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
have=$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$want" != "$have" ]; then
  echo "dashboard tests: installing playwright-core $want (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
[ -z "$shots" ] || mkdir -p "$shots"
TANDEM_BIN=$tandem TANDEM_SHARED_DIR=$shared TANDEM_SCREENSHOT_DIR=$shots \
  TANDEM_CHROMIUM=$(command -v chromium) exec node --test --test-concurrency=1 \
  --test-reporter=spec dashboard.test.mjs
