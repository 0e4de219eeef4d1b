#!/usr/bin/env bash
# Multi-host numbers in network namespaces (deploy/netns.sh; root), in one run:
#
#  1. per-token latency through 1, 2 and 3 nodes with 0, 2 and 10 ms per link (host to
#     host is two links), against the single process on this machine;
#  2. failover: the time from a node's death (SIGKILL) or hang (SIGSTOP) mid-answer to the
#     next token, with the replay length, for each model given.
#
#   bench/netns_bench.sh [--tokens N] [--threads T] [--repeats R] [--latency-models "A B"] [--failover-models "A B"]
#
# Defaults: ../shared/models/stories260K-f32.gguf for both; pass a 1B-shaped file made by
#   build/cli/tandem make-model --n-embd 2048 --n-layer 16 --n-head 32 --n-head-kv 8 \
#     --n-ff 8192 --type q4_0 --vocab-from ../shared/models/stories260K-f32.gguf -o /tmp/1b.gguf
# in the lists to measure it too. Prints Markdown tables.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tandem=${TANDEM:-$root/build/cli/tandem}
small=$root/../shared/models/stories260K-f32.gguf
tokens=64
threads=1
repeats=3
latency_models=$small
failover_models=$small
inner=0
while [ $# -gt 0 ]; do
  case $1 in
    --tokens) tokens=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --latency-models) latency_models=$2; shift 2 ;;
    --failover-models) failover_models=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$tandem" ] || { echo "no tandem binary at $tandem (deploy/build.sh)" >&2; exit 2; }
for m in $latency_models $failover_models; do [ -f "$m" ] || { echo "missing model $m" >&2; exit 2; }; done
if [ $inner -eq 0 ]; then
  exec bash "$root/deploy/netns.sh" --hosts 4 -- bash "$0" --inner --tokens "$tokens" \
    --threads "$threads" --repeats "$repeats" --latency-models "$latency_models" --failover-models "$failover_models"
fi

read -ra hosts <<<"$TANDEM_NETNS_HOSTS"
# Plain-text gRPC off loopback: --insecure for each command that has it (TLS builds).
flags_for() { "$tandem" "$1" --help 2>&1 | grep -q -- '--insecure' && echo --insecure || true; }
read -ra sec_coordinator <<<"$(flags_for coordinator)"
read -ra sec_node <<<"$(flags_for node)"
read -ra sec_status <<<"$(flags_for status)"
read -ra sec_generate <<<"$(flags_for generate)"
coord=10.77.0.1:7070
http=10.77.0.1:8080
work=$(mktemp -d /tmp/tandem-netns-bench.XXXXXX)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
on() {
  local i=$1
  shift
  ip netns exec "${hosts[$((i - 1))]}" "$@"
}
status() { on 1 "$tandem" status --coordinator "$coord" "${sec_status[@]}" --json 2>/dev/null || echo '{}'; }
prompt="Once upon a time, there was a little girl who"

# start_cluster MODEL N [coordinator args...]: the coordinator on host 1, N nodes on 2..N+1
declare -A node_pid=()
start_cluster() {
  local model=$1 n=$2 i
  shift 2
  local split
  split=$(python3 -c "import sys; L,n=int(sys.argv[1]),int(sys.argv[2]); print(','.join(str(L//n + (1 if k < L%n else 0)) for k in range(n)))" \
    "$("$tandem" info -m "$model" 2>/dev/null | awk '$1 == "n_layer" {print $2; exit}')" "$n")
  ip netns exec "${hosts[0]}" "$tandem" coordinator -m "$model" --listen "$coord" --split "$split" "$@" "${sec_coordinator[@]}" \
    >"$work/coordinator.log" 2>&1 &
  pids+=($!)
  for i in $(seq 2 $((n + 1))); do
    ip netns exec "${hosts[$((i - 1))]}" "$tandem" node --coordinator "$coord" -m "$model" --listen "10.77.0.$i:7071" \
      -t "$threads" "${sec_node[@]}" >"$work/node$i.log" 2>&1 &
    node_pid[$i]=$!
    pids+=($!)
  done
  local end=$(($(date +%s) + 300))
  until status | jq -e --argjson n "$n" '.ready == true and (.stages | length) == $n' >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "cluster of $n did not get ready; coordinator log:" >&2
      tail -5 "$work/coordinator.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {printf "%.2f", v[int((NR + 1) / 2)]}'; }
ms_per_token() { jq -r '.timings | if .generated_tokens > 0 then (.decode_ms / .generated_tokens) else "nan" end'; }

echo "# Tandem across network namespaces ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d" " -f1 /proc/loadavg), emulator: $TANDEM_NETNS_EMULATOR, $threads thread(s) per process)"
echo
echo "## Per-token latency (greedy, $tokens tokens, decode only; median of $repeats runs)"
echo
echo "| model | link delay | single process | 1 node | 2 nodes | 3 nodes |"
echo "|---|---|---|---|---|---|"
for model in $latency_models; do
  runs=()
  for r in $(seq "$repeats"); do
    runs+=("$("$tandem" generate -m "$model" -p "$prompt" -n "$tokens" --temp 0 -t "$threads" --json 2>/dev/null | ms_per_token)")
  done
  single=$(median "${runs[@]}")
  for delay in 0 2 10; do
    for i in 1 2 3 4; do bash "$TANDEM_NETNS" shape "$i" --delay "$delay"; done
    row="| $(basename "$model" .gguf) | $delay ms | $single ms |"
    for n in 1 2 3; do
      start_cluster "$model" "$n"
      on 1 "$tandem" generate --coordinator "$coord" "${sec_generate[@]}" -p "$prompt" -n 8 --temp 0 --json >/dev/null 2>&1  # warm
      runs=()
      for r in $(seq "$repeats"); do
        runs+=("$(on 1 "$tandem" generate --coordinator "$coord" "${sec_generate[@]}" -p "$prompt" -n "$tokens" --temp 0 --json 2>/dev/null | ms_per_token)")
      done
      row="$row $(median "${runs[@]}") ms |"
      stop_all
    done
    echo "$row"
  done
done
for i in 1 2 3 4; do bash "$TANDEM_NETNS" shape "$i" --delay 0; done

echo
echo "## Failover: a node fails mid-answer (3 nodes, 0 ms links; greedy)"
echo
echo "| model | failure | node | replay length | median token gap before | failure to next computed token | answer |"
echo "|---|---|---|---|---|---|---|"
for model in $failover_models; do
  ref=""
  after=$((tokens / 2))
  for failure in KILL STOP; do
    for stage in 2 3; do
      start_cluster "$model" 3 --http "$http"
      if [ -z "$ref" ]; then  # the same request without a failure
        ref=$(on 1 python3 "$root/bench/failover_client.py" "http://$http" "$prompt" "$tokens" "$after" \
          NONE 0 | jq -r .text)
      fi
      # The host of the stage to fail (stages follow the nodes' join order).
      victim=$(status | jq -r --argjson s "$stage" '.stages[$s - 1].address | split(":")[0] | split(".")[3]')
      out=$(on 1 python3 "$root/bench/failover_client.py" "http://$http" "$prompt" "$tokens" "$after" \
        "$failure" "${node_pid[$victim]}" 2>"$work/client.err") || {
        echo "failover client failed: $(cat "$work/client.err")" >&2
        out='{}'
      }
      stop_all
      same=$(jq -r --arg ref "$ref" 'if .text == $ref then "identical" else "DIFFERS" end' <<<"$out")
      jq -r --arg m "$(basename "$model" .gguf)" --arg f "$failure" --arg v "stage $stage of 3" --arg same "$same" \
        '"| \($m) | SIG\($f) | \($v) | \(.replay_tokens)\(if .exact then "" else "+" end) tokens | \(.median_token_ms | . * 100 | round / 100) ms | \(.gap_ms | round) ms | \($same) |"' <<<"$out"
    done
  done
done
