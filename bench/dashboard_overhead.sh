#!/usr/bin/env bash
# What watching a cluster costs it: tokens/s of one `tandem run --http` cluster measured in
# alternating rounds, quiet and watched. Watched is a poller fetching GET /v1/cluster and
# GET /metrics every POLL_S seconds (what a dashboard and a Prometheus scraper do), or with
# WATCHER=browser the dashboard itself open in headless Chromium (which polls every 500 ms;
# it needs tests/dashboard/node_modules, installed by tests/dashboard/run.sh). Each round is
# one `tandem generate --coordinator` of N_PREDICT greedy tokens; rounds alternate so drift
# of the machine hits both sides alike. Prints each round and the medians; never passes or
# fails on time.
#
#   bench/dashboard_overhead.sh [MODEL.gguf]
#
# Without MODEL a mid-sized random-weight model (about 10 ms a token on one core) is made
# once into /tmp. Environment: TANDEM (the binary, default build/cli/tandem), NODES (2),
# THREADS (1 per node), ROUNDS (8 of each), N_PREDICT (200), POLL_S (1), WATCHER (poller).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tandem="${TANDEM:-$here/build/cli/tandem}"
nodes="${NODES:-2}"
threads="${THREADS:-1}"
rounds="${ROUNDS:-8}"
n_predict="${N_PREDICT:-200}"
poll_s="${POLL_S:-1}"
watcher="${WATCHER:-poller}"
model="${1:-}"

[[ -x "$tandem" ]] || { echo "dashboard_overhead: no tandem binary at $tandem (set TANDEM)" >&2; exit 1; }
if [[ -z "$model" ]]; then
  model=/tmp/tandem-bench-dashboard-q8_0.gguf
  if [[ ! -s "$model" ]]; then
    echo "making $model ..." >&2
    "$tandem" make-model --n-embd 1024 --n-layer 8 --n-head 16 --n-head-kv 16 --n-ff 2816 \
      --n-ctx 2048 --type q8_0 --vocab-from "$here/../shared/models/stories260K-f32.gguf" \
      -o "$model" >&2
  fi
fi

work="$(mktemp -d /tmp/tandem-dashboard-bench-XXXXXX)"
run_pid=""
watch_pid=""
stop_watcher() {
  if [[ -n "$watch_pid" ]]; then
    kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
    watch_pid=""
  fi
}
cleanup() {
  stop_watcher
  if [[ -n "$run_pid" ]]; then
    kill "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$tandem" run -m "$model" --nodes "$nodes" -t "$threads" --http 127.0.0.1:0 >"$work/run.log" 2>&1 &
run_pid=$!
pattern='serving the OpenAI API on (http://127\.0\.0\.1:[0-9]+)/v1 \(coordinator (127\.0\.0\.1:[0-9]+)\)'
for _ in $(seq 1 600); do
  if [[ "$(cat "$work/run.log")" =~ $pattern ]]; then break; fi
  kill -0 "$run_pid" 2>/dev/null || { cat "$work/run.log" >&2; exit 1; }
  sleep 0.1
done
[[ "$(cat "$work/run.log")" =~ $pattern ]] || { echo "the cluster did not come up" >&2; exit 1; }
base="${BASH_REMATCH[1]}"
coordinator="${BASH_REMATCH[2]}"

start_watcher() {
  if [[ "$watcher" == browser ]]; then
    node "$here/bench/dashboard_watcher.mjs" "$base/" >"$work/watcher.log" 2>&1 &
    watch_pid=$!
    # The page is loaded and polling before the round starts.
    for _ in $(seq 1 300); do
      grep -q "polling" "$work/watcher.log" 2>/dev/null && return
      kill -0 "$watch_pid" 2>/dev/null || { cat "$work/watcher.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "the browser did not load the dashboard" >&2
    exit 1
  else
    (while :; do
      curl -sf "$base/v1/cluster" >/dev/null || true
      curl -sf "$base/metrics" >/dev/null || true
      sleep "$poll_s"
    done) &
    watch_pid=$!
  fi
}

tokens_per_s() {
  "$tandem" generate --coordinator "$coordinator" -p "Once upon a time" -n "$n_predict" \
    --temp 0 --json | tail -n 1 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).timings.generated_tokens_per_s.toFixed(2)))'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "model $(basename "$model"), $nodes nodes x $threads thread(s), $n_predict tokens a round, watcher: $watcher" \
  "$([[ "$watcher" == poller ]] && echo "(/v1/cluster + /metrics every ${poll_s}s)")"
tokens_per_s >/dev/null  # warm-up
quiet=()
watched=()
printf "%-6s %14s %14s\n" round "quiet tok/s" "watched tok/s"
for r in $(seq 1 "$rounds"); do
  # Alternate which side goes first, so a trend over the run falls on both.
  if (( r % 2 )); then
    q=$(tokens_per_s); start_watcher; w=$(tokens_per_s); stop_watcher
  else
    start_watcher; w=$(tokens_per_s); stop_watcher; q=$(tokens_per_s)
  fi
  quiet+=("$q")
  watched+=("$w")
  printf "%-6s %14s %14s\n" "$r" "$q" "$w"
done
mq=$(printf "%s\n" "${quiet[@]}" | median)
mw=$(printf "%s\n" "${watched[@]}" | median)
awk -v q="$mq" -v w="$mw" 'BEGIN {
  printf "median  %14.2f %14.2f   watched/quiet %.4f (%+.2f%%)\n", q, w, w / q, 100 * (w - q) / q }'
# The spread of the quiet rounds alone: a difference smaller than this is noise.
printf "%s\n" "${quiet[@]}" | sort -g | awk '{a[NR]=$1} END {
  printf "quiet rounds range %.2f .. %.2f (%.2f%% of the median)\n", a[1], a[NR], 100 * (a[NR] - a[1]) / a[int((NR+1)/2)] }'
