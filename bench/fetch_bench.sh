#!/usr/bin/env bash
# Fetching layers from the cluster (issue 13), on loopback: a coordinator serving MODEL and
# one node started with an empty --cache-dir (no model file), which fetches every tensor.
# Prints, from the same run:
#   * a plain `cp` of the model file (page cache warm, to the same file system as the
#     cache) and the node's transfer rate over gRPC (tensor bytes received / fetch time,
#     SHA-256 checked, written to the cache), and their ratio;
#   * the time from starting the empty node to the cluster serving (manifest, header,
#     registration, transfer, load), and the same for a restart on the full cache (no
#     transfer: the cache is checked by SHA-256 and mapped).
# Never passes or fails on time.
#
#   bench/fetch_bench.sh [MODEL.gguf]
#
# Without MODEL, the 1B-shaped random-weight model (16 layers, n_embd 2048, q4_0, ~550 MB)
# is made once with `tandem make-model` into /tmp/x.gguf. Environment: TANDEM (the binary),
# THREADS (node threads, default 2), WORK (scratch folder, default a new one in /tmp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tandem="${TANDEM:-$here/build/cli/tandem}"
threads="${THREADS:-2}"
model="${1:-}"
if [[ ! -x "$tandem" ]]; then
  echo "fetch_bench: no tandem binary at $tandem (set TANDEM)" >&2
  exit 1
fi
if [[ -z "$model" ]]; then
  model=/tmp/x.gguf
  if [[ ! -s "$model" ]]; then
    echo "making $model ..." >&2
    "$tandem" make-model --n-embd 2048 --n-layer 16 --n-head 32 --n-head-kv 8 --n-ff 8192 \
      --type q4_0 --vocab-from "$here/../shared/models/stories260K-f32.gguf" -o "$model" >&2
  fi
fi
model_bytes=$(stat -c %s "$model")

work="${WORK:-$(mktemp -d /tmp/tandem-fetch-bench-XXXXXX)}"
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work/cache" "$work/copy.gguf"
}
trap cleanup EXIT

now() { date +%s.%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# The model's pages in memory first, so that cp and the coordinator read the same way.
cat "$model" > /dev/null

t0=$(now)
cp "$model" "$work/copy.gguf"
t1=$(now)
cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rm -f "$work/copy.gguf"
cp_rate=$(awk -v b="$model_bytes" -v s="$cp_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')

"$tandem" coordinator --model "$model" --listen 127.0.0.1:0 --port-file "$work/port" \
  --min-nodes 1 --ctx-size 256 > "$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
address="127.0.0.1:$(cat "$work/port")"

# Starts a node on the cache and waits until the cluster serves; sets node_pid and
# served_s (the seconds taken).
serve() {
  local log="$1"
  local start
  start=$(now)
  "$tandem" node --coordinator "$address" --cache-dir "$work/cache" --threads "$threads" \
    > "$log" 2>&1 &
  pids+=($!)
  node_pid=$!
  for _ in $(seq 1 6000); do
    if grep -q "serving at" "$log" &&
      "$tandem" status --coordinator "$address" --json 2>/dev/null |
        grep -q "\"ready\": *true" &&
      grep -q "tandem node: fetch " "$log"; then
      break
    fi
    if ! kill -0 "$node_pid" 2>/dev/null; then
      echo "fetch_bench: the node exited:" >&2
      tail -5 "$log" >&2
      exit 1
    fi
    sleep 0.05
  done
  served_s=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
}

field() { grep -o "$1=[0-9.]*" "$2" | tail -1 | cut -d= -f2; }

serve "$work/node-empty.log"
empty_s=$served_s
received=$(field bytes_received "$work/node-empty.log")
transfer_s=$(field transfer_s "$work/node-empty.log")
fetch_rate=$(awk -v b="$received" -v s="$transfer_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')
cache_bytes=$(du -sb "$work/cache" | cut -f1)
kill "$node_pid"
wait "$node_pid" 2>/dev/null || true
# The coordinator forgets the stopped node (3 s) before the restart registers.
sleep 4
serve "$work/node-restart.log"
restart_s=$served_s
restart_received=$(field bytes_received "$work/node-restart.log")

echo "model                  $model ($(mib "$model_bytes") MiB)"
echo "cp (page cache)        $(mib "$model_bytes") MiB in ${cp_s} s = ${cp_rate} MiB/s"
echo "fetch over gRPC        $(mib "$received") MiB in ${transfer_s} s = ${fetch_rate} MiB/s" \
  "(SHA-256 checked, into the cache)"
echo "cp / fetch             $(awk -v a="$cp_rate" -v b="$fetch_rate" 'BEGIN { printf "%.2f", a / b }')x"
echo "cache on disk          $(mib "$cache_bytes") MiB"
echo "empty node -> serving  ${empty_s} s"
echo "restart -> serving     ${restart_s} s ($(mib "$restart_received") MiB received)"
