#!/usr/bin/env bash
# What watching a cluster costs it: tokens/s of one `tandem run --http` cluster measured in
# alternating rounds, quiet and watched. Watched is a poller fetching GET /v1/cluster and
# GET /metrics every POLL_S seconds (what a dashboard and a Prometheus scraper do), or with
# WATCHER=browser the dashboard itself open in headless Chromium (which watches GET
# /v1/cluster/events: a change to a node, the plan or the events within 250 ms, rates alone
# every 2 s; it needs tests/dashboard/node_modules, installed by tests/dashboard/run.sh). The watcher
# starts once and is paused (SIGSTOP) during the quiet rounds. Each round is one `tandem
# generate --coordinator` of N_PREDICT greedy tokens; rounds alternate so drift of the
# machine hits both sides alike; the watcher's own CPU in the watched rounds is printed (on
# this machine it competes with the cluster for the cores unless CLUSTER_CPUS/WATCHER_CPUS
# keep them apart; in use it runs elsewhere). Prints each round, the medians and the mean
# of the paired rounds' ratios with its 95% interval, then the direct cost: the coordinator's CPU time per GET /v1/cluster and per GET /metrics (REQUESTS of
# each, back to back), and what one poll a second takes of a core. Never passes or fails on
# time.
#
#   bench/dashboard_overhead.sh [MODEL.gguf]
#
# Without MODEL a mid-sized random-weight model (about 10 ms a token on one core) is made
# once into /tmp. Environment: TANDEM (the binary, default build/cli/tandem), NODES (2),
# THREADS (1 per node), ROUNDS (8 of each), N_PREDICT (200), POLL_S (1), WATCHER (poller),
# REQUESTS (2000), IDLE_S (10: the watcher's CPU is also measured with the cluster idle),
# CLUSTER_CPUS and WATCHER_CPUS (taskset lists, e.g. 0 and 1: the cluster and its client on
# some cores, the watcher on others, as when the browser runs on another machine; unset:
# everything shares every core).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tandem="${TANDEM:-$here/build/cli/tandem}"
nodes="${NODES:-2}"
threads="${THREADS:-1}"
rounds="${ROUNDS:-8}"
n_predict="${N_PREDICT:-200}"
poll_s="${POLL_S:-1}"
watcher="${WATCHER:-poller}"
requests="${REQUESTS:-2000}"
idle_s="${IDLE_S:-10}"
cluster_on=()
[[ -n "${CLUSTER_CPUS:-}" ]] && cluster_on=(taskset -c "$CLUSTER_CPUS")
watcher_on=()
[[ -n "${WATCHER_CPUS:-}" ]] && watcher_on=(taskset -c "$WATCHER_CPUS")
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

${cluster_on[@]+"${cluster_on[@]}"} "$tandem" run -m "$model" --nodes "$nodes" -t "$threads" \
  --http 127.0.0.1:0 >"$work/run.log" 2>&1 &
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
    ${watcher_on[@]+"${watcher_on[@]}"} node "$here/bench/dashboard_watcher.mjs" "$base/" \
      >"$work/watcher.log" 2>&1 &
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
    ${watcher_on[@]+"${watcher_on[@]}"} bash -c 'while :; do
      curl -sf "$0/v1/cluster" >/dev/null || true
      curl -sf "$0/metrics" >/dev/null || true
      sleep "$1"
    done' "$base" "$poll_s" &
    watch_pid=$!
  fi
}

# CPU clock ticks used so far by process $1 and its descendants (with children reaped).
tree_ticks() {
  local total=0 pid
  for pid in $1 $(descendants "$1"); do
    [[ -r "/proc/$pid/stat" ]] || continue
    total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
descendants() {
  local kid
  for kid in $(pgrep -P "$1"); do
    echo "$kid"
    descendants "$kid"
  done
}
hz=$(getconf CLK_TCK)

# The watcher runs for the whole benchmark and is paused (SIGSTOP to its every process)
# during the quiet rounds, so its start-up never falls into a round.
signal_watcher() {
  local pid
  for pid in $watch_pid $(descendants "$watch_pid"); do kill "-$1" "$pid" 2>/dev/null || true; done
}

# One watched round: tokens/s, and the watcher's own CPU (percent of one core) meanwhile.
watched_round() {
  local start end ticks tps
  signal_watcher CONT
  ticks=$(( - $(tree_ticks "$watch_pid") ))
  start=$(date +%s.%N)
  tps=$(tokens_per_s)
  ticks=$((ticks + $(tree_ticks "$watch_pid")))
  end=$(date +%s.%N)
  signal_watcher STOP
  awk -v t="$tps" -v k="$ticks" -v hz="$hz" -v s="$start" -v e="$end" \
    'BEGIN { printf "%s %.1f\n", t, 100 * k / hz / (e - s) }'
}

tokens_per_s() {
  ${cluster_on[@]+"${cluster_on[@]}"} "$tandem" generate --coordinator "$coordinator" \
    -p "Once upon a time" -n "$n_predict" \
    --temp 0 --json | tail -n 1 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).timings.generated_tokens_per_s.toFixed(2)))'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "model $(basename "$model"), $nodes nodes x $threads thread(s), $n_predict tokens a round, watcher: $watcher" \
  "${CLUSTER_CPUS:+(cluster on CPUs $CLUSTER_CPUS, watcher on ${WATCHER_CPUS:-any})}" \
  "$([[ "$watcher" == poller ]] && echo "(/v1/cluster + /metrics every ${poll_s}s)")"
tokens_per_s >/dev/null  # warm-up
start_watcher
sleep 2  # past the watcher's start-up
signal_watcher STOP
quiet=()
watched=()
watcher_cpu=()
printf "%-6s %14s %14s %22s\n" round "quiet tok/s" "watched tok/s" "watcher CPU (% core)"
for r in $(seq 1 "$rounds"); do
  # Alternate which side goes first, so a trend over the run falls on both.
  if (( r % 2 )); then
    q=$(tokens_per_s); read -r w c < <(watched_round)
  else
    read -r w c < <(watched_round); q=$(tokens_per_s)
  fi
  quiet+=("$q")
  watched+=("$w")
  watcher_cpu+=("$c")
  printf "%-6s %14s %14s %22s\n" "$r" "$q" "$w" "$c"
done
# The watcher while nothing is generated (the cluster's figures stay the same): IDLE_S
# seconds, twice, after the rounds.
idle_cpu=()
for _ in 1 2; do
  signal_watcher CONT
  sleep 2  # past what queued up for it while it was paused
  ticks=$(( - $(tree_ticks "$watch_pid") ))
  start=$(date +%s.%N)
  sleep "$idle_s"
  ticks=$((ticks + $(tree_ticks "$watch_pid")))
  end=$(date +%s.%N)
  signal_watcher STOP
  idle_cpu+=("$(awk -v k="$ticks" -v hz="$hz" -v s="$start" -v e="$end" \
    'BEGIN { printf "%.1f", 100 * k / hz / (e - s) }')")
done
signal_watcher CONT
stop_watcher
mq=$(printf "%s\n" "${quiet[@]}" | median)
mw=$(printf "%s\n" "${watched[@]}" | median)
mc=$(printf "%s\n" "${watcher_cpu[@]}" | median)
awk -v q="$mq" -v w="$mw" 'BEGIN {
  printf "median  %14.2f %14.2f   watched/quiet %.4f (%+.2f%%)\n", q, w, w / q, 100 * (w - q) / q }'
# Each round is a pair (quiet and watched next to each other): the mean of the rounds'
# watched/quiet ratios with a 95% interval (Student's t) bounds the cost better than the
# medians do when the machine drifts between rounds.
paste <(printf "%s\n" "${quiet[@]}") <(printf "%s\n" "${watched[@]}") | awk '
  BEGIN { split("12.71 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045", t, " ") }
  { r[NR] = $2 / $1; sum += r[NR] }
  END {
    n = NR; if (n < 2) exit
    mean = sum / n
    for (i = 1; i <= n; i++) ss += (r[i] - mean) ^ 2
    half = (n - 1 <= 29 ? t[n - 1] : 1.96) * sqrt(ss / (n - 1) / n)
    printf "paired rounds: watched/quiet %.4f, 95%% interval %.4f .. %.4f (%+.2f%% .. %+.2f%%)\n",
      mean, mean - half, mean + half, 100 * (mean - half - 1), 100 * (mean + half - 1) }'
echo "the watcher itself (its processes on this machine) used a median ${mc}% of one core"
echo "with the cluster idle (${idle_s}s, twice) the watcher used ${idle_cpu[*]}% of one core"
# The spread of the quiet rounds alone: a difference smaller than this is noise.
printf "%s\n" "${quiet[@]}" | sort -g | awk '{a[NR]=$1} END {
  printf "quiet rounds range %.2f .. %.2f (%.2f%% of the median)\n", a[1], a[NR], 100 * (a[NR] - a[1]) / a[int((NR+1)/2)] }'

# The direct cost, free of the noise above: CPU seconds the coordinator spends serving
# REQUESTS of each endpoint (utime + stime from /proc, in clock ticks).
coordinator_pid=""
for pid in $(pgrep -P "$run_pid"); do
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q " coordinator "; then coordinator_pid=$pid; fi
done
[[ -n "$coordinator_pid" ]] || { echo "no coordinator process under $run_pid" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$coordinator_pid/stat"; }
cost_us() {  # CPU microseconds per request of $1
  local before after start end
  before=$(cpu_ticks)
  start=$(date +%s.%N)
  curl -sf "$base$1?n=[1-$requests]" >/dev/null
  end=$(date +%s.%N)
  after=$(cpu_ticks)
  awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" -v s="$start" -v e="$end" \
    'BEGIN { printf "%.1f %.1f\n", 1e6 * t / hz / n, 1e6 * (e - s) / n }'
}
read -r cluster_cpu cluster_wall < <(cost_us /v1/cluster)
read -r metrics_cpu metrics_wall < <(cost_us /metrics)
printf "GET /v1/cluster: %s us of coordinator CPU, %s us wall each (%s requests)\n" \
  "$cluster_cpu" "$cluster_wall" "$requests"
printf "GET /metrics:    %s us of coordinator CPU, %s us wall each\n" "$metrics_cpu" "$metrics_wall"
awk -v c="$cluster_cpu" -v m="$metrics_cpu" -v p="$poll_s" 'BEGIN {
  printf "one poll of both every %ss: %.4f%% of one core; a dashboard (/v1/cluster every 0.5 s): %.4f%%\n",
    p, 100 * (c + m) / 1e6 / p, 100 * c / 1e6 / 0.5 }'
