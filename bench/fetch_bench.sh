#!/usr/bin/env bash
# Fetching layers from the cluster (issue 13), on loopback: a coordinator serving MODEL and
# one node started with an empty --cache-dir (no model file), which fetches every tensor.
# Prints, from the same run:
#   * a plain `cp` and a `dd bs=1M` of the model file (page cache warm, to the same file
#     system as the cache) and the node's transfer rate over gRPC (tensor bytes received / fetch time,
#     SHA-256 checked, written to the cache), and their ratio;
#   * CPU seconds per GiB moved, which the machine's load does not change as it changes
#     rates: cp's (user + sys), the node's while it fetched (its process, every thread)
#     and the coordinator's from the node's start to serving;
#   * the time from starting the empty node to the cluster serving (manifest, header,
#     registration, transfer, load), and the same for a restart on the full cache (no
#     transfer: the cache is checked by SHA-256 and mapped).
# Each round copies and fetches once; the medians follow. Never passes or fails on time.
#
#   bench/fetch_bench.sh [MODEL.gguf]
#
# Without MODEL, the 1B-shaped random-weight model (16 layers, n_embd 2048, q4_0, ~550 MB)
# is made once with `tandem make-model` into /tmp/x.gguf. Environment: TANDEM (the binary),
# THREADS (node threads, default 2), RUNS (rounds of copy + empty node, default 3), WORK (scratch folder, default a new one in /tmp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tandem="${TANDEM:-$here/build/cli/tandem}"
threads="${THREADS:-2}"
runs="${RUNS:-3}"
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

"$tandem" coordinator --model "$model" --listen 127.0.0.1:0 --port-file "$work/port" \
  --min-nodes 1 --ctx-size 256 > "$work/coordinator.log" 2>&1 &
pids+=($!)
coordinator_pid=$!
ticks_per_s=$(getconf CLK_TCK)
# CPU seconds process $1 has used.
cpu_s() { awk -v t="$ticks_per_s" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
per_gib() { awk -v s="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", s / (b / 1073741824); else print "-" }'; }
for _ in $(seq 1 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
address="127.0.0.1:$(cat "$work/port")"

# Copies the model with cp and with dd; sets cp_rate and dd_rate (MiB/s).
copies() {
  local t0 t1
  t0=$(now)
  local TIMEFORMAT='%U %S'
  { time cp "$model" "$work/copy.gguf"; } 2> "$work/cp.time"
  t1=$(now)
  cp_cpu=$(awk '{ printf "%.3f", $1 + $2 }' "$work/cp.time")
  rm -f "$work/copy.gguf"
  cp_rate=$(awk -v b="$model_bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1048576 / (c - a) }')
  # cp may copy inside the kernel (copy_file_range); dd moves the bytes through user
  # space, as a transfer must.
  t0=$(now)
  dd if="$model" of="$work/copy.gguf" bs=1M status=none
  t1=$(now)
  rm -f "$work/copy.gguf"
  dd_rate=$(awk -v b="$model_bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1048576 / (c - a) }')
}

# Starts a node on the cache and waits until the cluster serves; sets node_pid and
# served_s (the seconds taken).
serve() {
  local log="$1"
  local source=("--cache-dir" "$work/cache")
  [[ "${2:-}" == "--model" ]] && source=("--model" "$model")
  local start
  start=$(now)
  "$tandem" node --coordinator "$address" "${source[@]}" --threads "$threads" > "$log" 2>&1 &
  pids+=($!)
  node_pid=$!
  for _ in $(seq 1 6000); do
    if grep -q "serving at" "$log" &&
      "$tandem" status --coordinator "$address" --json 2>/dev/null |
        grep -q "\"ready\": *true" &&
      { [[ "${2:-}" == "--model" ]] || grep -q "tandem node: fetch " "$log"; }; then
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

# The last `KEY=` figure of a log; empty when there is none (a binary that does not print it).
field() { { grep -o "$1=[0-9.]*" "$2" || true; } | tail -1 | cut -d= -f2; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
stop_node() {
  kill "$node_pid"
  wait "$node_pid" 2>/dev/null || true
  # The coordinator forgets the stopped node (3 s) before the next one registers.
  sleep 4
}

echo "round  cp MiB/s  dd MiB/s  fetch MiB/s  empty node -> serving s  CPU s/GiB: cp  node  coordinator"
: > "$work/rounds"
for round in $(seq 1 "$runs"); do
  rm -rf "$work/cache"
  copies
  coordinator_cpu0=$(cpu_s "$coordinator_pid")
  serve "$work/node-empty-$round.log"
  coordinator_cpu=$(awk -v a="$coordinator_cpu0" -v b="$(cpu_s "$coordinator_pid")" 'BEGIN { printf "%.3f", b - a }')
  received=$(field bytes_received "$work/node-empty-$round.log")
  transfer_s=$(field transfer_s "$work/node-empty-$round.log")
  node_cpu=$(field transfer_cpu_s "$work/node-empty-$round.log")
  fetch_rate=$(awk -v b="$received" -v s="$transfer_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')
  cp_gib=$(per_gib "$cp_cpu" "$model_bytes")
  node_gib=$([[ -n "$node_cpu" ]] && per_gib "$node_cpu" "$received" || echo -)
  coordinator_gib=$(per_gib "$coordinator_cpu" "$received")
  printf "%5d  %8s  %8s  %11s  %23s  %14s  %4s  %11s\n" "$round" "$cp_rate" "$dd_rate" \
    "$fetch_rate" "$served_s" "$cp_gib" "$node_gib" "$coordinator_gib"
  echo "$cp_rate $dd_rate $fetch_rate $served_s $cp_gib $node_gib $coordinator_gib" >> "$work/rounds"
  if [[ "$round" -lt "$runs" ]]; then stop_node; fi
done
cp_rate=$(cut -d' ' -f1 "$work/rounds" | median)
dd_rate=$(cut -d' ' -f2 "$work/rounds" | median)
fetch_rate=$(cut -d' ' -f3 "$work/rounds" | median)
empty_s=$(cut -d' ' -f4 "$work/rounds" | median)
cp_gib=$(cut -d' ' -f5 "$work/rounds" | median)
node_gib=$(cut -d' ' -f6 "$work/rounds" | median)
coordinator_gib=$(cut -d' ' -f7 "$work/rounds" | median)
cache_bytes=$(du -sb "$work/cache" | cut -f1)
stop_node
serve "$work/node-restart.log"
restart_s=$served_s
restart_received=$(field bytes_received "$work/node-restart.log")
stop_node
serve "$work/node-model.log" --model
model_s=$served_s

echo
echo "medians of $runs rounds"
echo "model                  $model ($(mib "$model_bytes") MiB; $(mib "$received") MiB of tensors fetched)"
echo "cp (page cache)        ${cp_rate} MiB/s"
echo "dd bs=1M               ${dd_rate} MiB/s"
echo "fetch over gRPC        ${fetch_rate} MiB/s (SHA-256 checked, into the cache)"
echo "cp / fetch             $(awk -v a="$cp_rate" -v b="$fetch_rate" 'BEGIN { printf "%.2f", a / b }')x"
echo "dd / fetch             $(awk -v a="$dd_rate" -v b="$fetch_rate" 'BEGIN { printf "%.2f", a / b }')x"
echo "CPU s per GiB          cp ${cp_gib}, node while fetching ${node_gib}, coordinator ${coordinator_gib}"
echo "cache on disk          $(mib "$cache_bytes") MiB"
echo "empty node -> serving  ${empty_s} s"
echo "restart -> serving     ${restart_s} s ($(mib "$restart_received") MiB received)"
echo "--model -> serving     ${model_s} s (the same node with the model file, for comparison)"
