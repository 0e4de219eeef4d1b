#!/usr/bin/env bash
# A cluster across emulated hosts (run under deploy/netns.sh with 4 hosts): host 1 runs
# the coordinator and the client, hosts 2-4 one node each, all real `tandem` processes.
#
#   tests/netns/cluster_test.sh SCENARIO TANDEM SHARED_DIR
#
# lossy        the links as given to netns.sh (ctest: 20 ms ± 5 ms, 1% loss): greedy and
#              seeded answers equal the single process's
# cutoff       host 3's link drops every packet for 10 s in the middle of an answer: the
#              node is found dead, the plan moves to the others, the answer is unchanged;
#              healed, the node registers again and carries layers in the next plan
# coordinator  the coordinator's host goes away (process killed, link cut) and comes back:
#              the nodes register with the new coordinator and the cluster answers again
set -euo pipefail
scenario=${1:?scenario}
tandem=${2:?tandem binary}
shared=${3:?shared dir}
model=$shared/models/stories260K-f32.gguf
[ -f "$model" ] || { echo "FAIL: $model is missing (the shared test data)"; exit 1; }
[ -n "${TANDEM_NETNS_HOSTS:-}" ] || { echo "FAIL: run me under deploy/netns.sh"; exit 1; }
read -ra hosts <<<"$TANDEM_NETNS_HOSTS"
[ ${#hosts[@]} -ge 4 ] || { echo "FAIL: needs 4 hosts, got ${#hosts[@]}"; exit 1; }
netns=$TANDEM_NETNS

# Plain-text gRPC off loopback: --insecure for each command that has it (TLS builds).
flags_for() { "$tandem" "$1" --help 2>&1 | grep -q -- '--insecure' && echo --insecure || true; }
read -ra sec_coordinator <<<"$(flags_for coordinator)"
read -ra sec_node <<<"$(flags_for node)"
read -ra sec_status <<<"$(flags_for status)"
read -ra sec_generate <<<"$(flags_for generate)"

coord=10.77.0.1:7070
work=$(mktemp -d /tmp/tandem-netns-test.XXXXXX)
declare -A pids=()
finish() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    for f in "$work"/*.log; do
      echo "----- $(basename "$f") (last 15 lines)"
      tail -n 15 "$f"
    done
  fi
  rm -rf "$work"
  exit $rc
}
trap finish EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }
log() { echo "[$(elapsed) s] $*"; }

on() {  # HOST CMD...: run CMD inside host HOST
  local i=$1
  shift
  ip netns exec "${hosts[$((i - 1))]}" "$@"
}
start_coordinator() {
  ip netns exec "${hosts[0]}" "$tandem" coordinator -m "$model" --listen "$coord" --min-nodes 3 "$@" "${sec_coordinator[@]}" \
    >>"$work/coordinator.log" 2>&1 &
  pids[coordinator]=$!
}
start_node() {
  local i=$1
  ip netns exec "${hosts[$((i - 1))]}" "$tandem" node --coordinator "$coord" -m "$model" --listen "10.77.0.$i:7071" -t 1 \
    "${sec_node[@]}" >>"$work/node$i.log" 2>&1 &
  pids[node$i]=$!
}
status() { on 1 "$tandem" status --coordinator "$coord" "${sec_status[@]}" --json 2>/dev/null || echo '{}'; }
# wait_for SECONDS WHAT JQ: until the coordinator's status satisfies JQ.
wait_for() {
  local limit=$1 what=$2 filter=$3 end
  end=$(($(date +%s) + limit))
  while [ "$(date +%s)" -lt "$end" ]; do
    if status | jq -e "$filter" >/dev/null 2>&1; then
      log "$what"
      return 0
    fi
    sleep 0.2
  done
  status | jq -c '{ready, reason, plan_epoch, stages: [.stages[]? | .address], nodes: [.nodes[]? | {address, state}]}' || true
  fail "not within $limit s: $what"
}
stage_hosts() { status | jq -r '[.stages[].address | split(":")[0]] | join(" ")'; }

prompt="Once upon a time"
# The single process's answers (the reference).
single() { "$tandem" generate -m "$model" -p "$prompt" -t 1 --json "$@" 2>/dev/null | jq -c .ids; }
cluster() { on 1 "$tandem" generate --coordinator "$coord" "${sec_generate[@]}" -p "$prompt" --json "$@" 2>>"$work/client.log" | jq -c .ids; }
same() {  # WHAT ARGS...: the cluster's answer equals the single process's
  local what=$1
  shift
  local want got
  want=$(single "$@")
  got=$(cluster "$@") || fail "$what: the cluster's generate failed"
  [ -n "$want" ] && [ "$want" != null ] || fail "$what: the single process gave no answer"
  [ "$got" = "$want" ] || fail "$what: the cluster answered $got, the single process $want"
  log "$what: identical ($(jq length <<<"$want") tokens)"
}

all_nodes='.ready == true and (.stages | length) == 3'

case $scenario in
  lossy)
    start_coordinator --split 2,2,1
    for i in 2 3 4; do start_node "$i"; done
    wait_for 60 "3 stages serving" "$all_nodes"
    same "greedy" -n 24 --temp 0
    same "seeded" -n 24 --temp 0.8 --seed 7
    ;;

  cutoff)
    start_coordinator --split 2,2,1
    for i in 2 3 4; do start_node "$i"; done
    wait_for 60 "3 stages serving" "$all_nodes"
    n=120  # the model's context is 128 tokens
    want=$(single -n "$n" --temp 0)
    [ -n "$want" ] && [ "$want" != null ] || fail "the single process gave no answer"
    cluster -n "$n" --temp 0 >"$work/answer" &
    client=$!
    sleep 0.3
    kill -0 "$client" 2>/dev/null || fail "the answer ended before the cut"
    bash "$netns" cut 3
    log "host 3 cut off in the middle of the answer"
    wait_for 15 "re-planned without host 3" \
      '.ready == true and (.stages | length) == 2 and ([.stages[].address] | index("10.77.0.3:7071") == null)'
    wait "$client" || fail "the answer across the cut failed"
    [ "$(cat "$work/answer")" = "$want" ] || fail "the answer across the cut differs: $(cat "$work/answer") vs $want"
    log "the answer across the cut: identical ($(jq length <<<"$want") tokens)"
    sleep 9
    bash "$netns" heal 3
    log "host 3 healed"
    wait_for 20 "host 3's node registered again" \
      '[.nodes[] | select(.address == "10.77.0.3:7071" and .state != "dead")] | length == 1'
    # It carries layers again: with host 2's node gone, the next plan is hosts 3 and 4.
    kill -9 "${pids[node2]}"
    log "host 2's node killed"
    wait_for 15 "re-planned on hosts 3 and 4" \
      '.ready == true and ([.stages[].address] | sort) == ["10.77.0.3:7071", "10.77.0.4:7071"]'
    same "greedy on the healed node" -n 24 --temp 0
    ;;

  coordinator)
    start_coordinator --split 2,2,1
    for i in 2 3 4; do start_node "$i"; done
    wait_for 60 "3 stages serving" "$all_nodes"
    same "greedy before the restart" -n 24 --temp 0
    kill -9 "${pids[coordinator]}"
    wait "${pids[coordinator]}" 2>/dev/null || true
    bash "$netns" cut 1
    log "coordinator killed, host 1 cut off"
    sleep 2
    bash "$netns" heal 1
    start_coordinator --split 2,2,1
    log "coordinator restarted"
    wait_for 30 "the cluster re-formed with 3 stages" "$all_nodes"
    same "greedy after the restart" -n 24 --temp 0
    ;;

  *)
    fail "unknown scenario $scenario (lossy, cutoff, coordinator)"
    ;;
esac
echo "PASS: $scenario"
