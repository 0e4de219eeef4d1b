#!/usr/bin/env bash
# Predicted against measured: for several loopback clusters, the partition cost model's
# ms/token (what `tandem plan --coordinator --json` reports for the live plan) next to the
# ms/token `tandem generate` measures (median of RUNS runs of decode_ms / decode steps,
# after one warm-up run). Prints a table; never passes or fails on time.
#
#   bench/plan_vs_measured.sh [MODEL.gguf]
#
# Without MODEL, a 1B-shaped random-weight model is made once with `tandem make-model`
# (when the binary has it) into /tmp, else the shared stories260K is used.
# Environment: TANDEM (the binary), RUNS (3), N_PREDICT (64), CTX (256).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tandem="${TANDEM:-$here/build-plan2/cli/tandem}"
runs="${RUNS:-3}"
n_predict="${N_PREDICT:-64}"
ctx="${CTX:-256}"
model="${1:-}"

if [[ ! -x "$tandem" ]]; then
  echo "plan_vs_measured: no tandem binary at $tandem (set TANDEM)" >&2
  exit 1
fi
if [[ -z "$model" ]]; then
  if "$tandem" make-model --help >/dev/null 2>&1; then
    model=/tmp/tandem-bench-1b-q4_0.gguf
    if [[ ! -s "$model" ]]; then
      echo "making $model ..." >&2
      "$tandem" make-model --n-embd 2048 --n-layer 16 --n-head 32 --n-head-kv 8 --n-ff 8192 \
        --type q4_0 --vocab-from "$here/../shared/models/stories260K-f32.gguf" -o "$model" >&2
    fi
  else
    model="$here/../shared/models/stories260K-f32.gguf"
  fi
fi
model_bytes=$(stat -c %s "$model")

work="$(mktemp -d /tmp/tandem-plan-bench-XXXXXX)"
pids=()
stop_cluster() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_config NAME PLANNER NODE... ; each NODE is THREADS or THREADS:MEMORY_LIMIT_BYTES.
run_config() {
  local name="$1" planner="$2"
  shift 2
  local dir="$work/$(echo "$name" | tr -c 'a-zA-Z0-9' _)"
  mkdir -p "$dir"
  "$tandem" coordinator --model "$model" --listen 127.0.0.1:0 --port-file "$dir/port" \
    --min-nodes "$#" --planner "$planner" --ctx-size "$ctx" --sessions 1 >"$dir/coordinator.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [[ -s "$dir/port" ]] && break; sleep 0.05; done
  local address="127.0.0.1:$(cat "$dir/port")"
  local i=0
  for spec in "$@"; do
    local threads="${spec%%:*}" limit=()
    [[ "$spec" == *:* ]] && limit=(--memory-limit "${spec#*:}")
    "$tandem" node --coordinator "$address" --model "$model" --threads "$threads" "${limit[@]}" \
      >"$dir/node$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
    # One at a time, so each node calibrates without the others running.
    for _ in $(seq 100); do grep -q "serving at" "$dir/node$((i - 1)).log" 2>/dev/null && break; sleep 0.1; done
  done

  if ! "$tandem" plan --coordinator "$address" --wait 300 --json >"$dir/plan.json" 2>"$dir/plan.err"; then
    printf '%-34s  %s\n' "$name" "not ready: $(cat "$dir/plan.err")"
    stop_cluster
    return
  fi
  local predicted stages
  predicted=$(jq '.predicted_ms_per_token' "$dir/plan.json")
  stages=$(jq -r '[.stages[] | "\(.node)[\(.first_layer),\(.last_layer))"] | join(" ")' "$dir/plan.json")

  "$tandem" generate --coordinator "$address" -p "Once upon a time" -n "$n_predict" --temp 0 \
    --json >/dev/null 2>&1  # warm-up: first touches of the mapped weights
  local samples=()
  for _ in $(seq "$runs"); do
    "$tandem" generate --coordinator "$address" -p "Once upon a time" -n "$n_predict" --temp 0 \
      --json >"$dir/gen.json" 2>"$dir/gen.err"
    samples+=("$(jq '.timings.decode_ms / (.timings.generated_tokens - 1)' "$dir/gen.json")")
  done
  local measured
  measured=$(printf '%s\n' "${samples[@]}" | median)
  printf '%-34s  %-30s  %10.3f  %10.3f  %6.2f\n' "$name" "$stages" "$predicted" "$measured" \
    "$(awk -v p="$predicted" -v m="$measured" 'BEGIN { print p / m }')"
  jq -c '.nodes[] | {node, threads, bandwidth_gbs, gflops, rtt_ms}' "$dir/plan.json" |
    sed 's/^/    measured profile: /'
  stop_cluster
}

echo "model: $model ($((model_bytes / 1048576)) MiB); $n_predict tokens, median of $runs runs; context $ctx"
printf '%-34s  %-30s  %10s  %10s  %6s\n' "config" "plan" "predicted" "measured" "ratio"
printf '%-34s  %-30s  %10s  %10s  %6s\n' "" "" "ms/token" "ms/token" "p/m"
run_config "1 node x 2 threads" optimal 2
run_config "1 node x 1 thread" optimal 1
run_config "2 nodes x 1 thread, even" even 1 1
run_config "2 nodes x 1 thread, optimal" optimal 1 1
# Neither node can hold the whole model: the planner must split, by speed and memory.
run_config "2 nodes 2t+1t, 60% mem each, opt" optimal "2:$((model_bytes * 6 / 10))" \
  "1:$((model_bytes * 6 / 10))"
run_config "3 nodes x 1 thread, even" even 1 1 1
