#!/usr/bin/env bash
# The OpenAI-compatible API against the official `openai` npm client: installs the
# lockfile's version into tests/openai/node_modules when it is missing or stale, then runs
# api.test.mjs with Node's test runner against real `tandem run --http` clusters.
# Usage: run.sh TANDEM_BINARY SHARED_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tandem=$(realpath "${1:?usage: run.sh TANDEM_BINARY SHARED_DIR}")
shared=$(realpath -m "${2:?usage: run.sh TANDEM_BINARY SHARED_DIR}")
if [ ! -d "$shared/models" ]; then
  echo "openai tests: the shared test data is missing at $shared" >&2
  exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "openai tests: node and npm are needed (deploy/setup.sh installs them)" >&2; exit 1; }
cd "$here"
want=$(node -p 'require("./package-lock.json").packages["node_modules/openai"].version')
have=$(node -p 'try { require("./node_modules/openai/package.json").version } catch { "" }')
if [ "$want" != "$have" ]; then
  echo "openai tests: installing openai $want (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
TANDEM_BIN=$tandem TANDEM_SHARED_DIR=$shared exec node --test --test-concurrency=1 \
  --test-reporter=spec api.test.mjs
