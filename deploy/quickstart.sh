#!/usr/bin/env bash
# The main job in one command: installs what is missing, builds, starts a local cluster
# (a coordinator and TANDEM_NODES node processes on 127.0.0.1), generates text, and stops
# the cluster. The model is TANDEM_MODEL (default: the stories260K test model).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh" >&2
model=${TANDEM_MODEL:-$root/../shared/models/stories260K-f32.gguf}
if [ ! -r "$model" ]; then
  echo "quickstart: no model at $model; set TANDEM_MODEL to a GGUF file" >&2
  exit 1
fi
exec "$root/build/cli/tandem" run -m "$model" --nodes "${TANDEM_NODES:-2}" \
  -p "${TANDEM_PROMPT:-Once upon a time}" -n "${TANDEM_N:-64}" "$@"
