#!/usr/bin/env bash
# Zero-configuration joining across emulated hosts (run under deploy/netns.sh, 3 hosts):
# the coordinator on host 1 announces itself (--announce); nodes on hosts 2 and 3 are given
# no address at all (--discover), find it by multicast on the bridge, check it and join;
# the cluster's answer equals the single process's (one node holds the model file, the
# other has none and fetches its layers from the cluster it found). A node of another model or another
# cluster name finds nothing that fits and says what it heard. A TLS cluster (--state-dir)
# announces its CA's hash: a node with its join token finds it and joins over mutual TLS;
# a node whose token names another CA, or that has no token, ignores it and says why.
#
#   tests/netns/discovery_test.sh TANDEM SHARED_DIR
set -euo pipefail
tandem=${1:?tandem binary}
shared=${2:?shared dir}
model=$shared/models/stories260K-f32.gguf
other=$shared/models/stories260K-q8_0.gguf
for f in "$model" "$other"; do [ -f "$f" ] || { echo "FAIL: $f is missing (the shared test data)"; exit 1; }; done
[ -n "${TANDEM_NETNS_HOSTS:-}" ] || { echo "FAIL: run me under deploy/netns.sh"; exit 1; }
read -ra hosts <<<"$TANDEM_NETNS_HOSTS"
[ ${#hosts[@]} -ge 3 ] || { echo "FAIL: needs 3 hosts"; exit 1; }

# Plain-text gRPC off loopback: --insecure for each command that has it (TLS builds).
flags_for() { "$tandem" "$1" --help 2>&1 | grep -q -- '--insecure' && echo --insecure || true; }
read -ra sec_coordinator <<<"$(flags_for coordinator)"
read -ra sec_node <<<"$(flags_for node)"
read -ra sec_status <<<"$(flags_for status)"
read -ra sec_generate <<<"$(flags_for generate)"
coord=10.77.0.1:7070
work=$(mktemp -d /tmp/tandem-discovery-test.XXXXXX)
pids=()
finish() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    for f in "$work"/*.log; do echo "----- $(basename "$f")"; tail -n 15 "$f"; done
  fi
  rm -rf "$work"
  exit $rc
}
trap finish EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
on() {
  local i=$1
  shift
  ip netns exec "${hosts[$((i - 1))]}" "$@"
}
status() { on 1 "$tandem" status --coordinator "$coord" "${sec_status[@]}" --json 2>/dev/null || echo '{}'; }

# --announce on loopback is refused with the reason.
if on 1 "$tandem" coordinator -m "$model" --listen 127.0.0.1:0 --announce "${sec_coordinator[@]}" \
  >"$work/loopback.log" 2>&1; then
  fail "--announce on a loopback address was accepted"
fi
grep -q "announce needs a LAN address" "$work/loopback.log" || fail "no reason for refusing --announce on loopback"
echo "--announce on loopback: refused with the reason"

ip netns exec "${hosts[0]}" "$tandem" coordinator -m "$model" --listen "$coord" --min-nodes 2 --planner even --announce \
  "${sec_coordinator[@]}" >"$work/coordinator.log" 2>&1 &
pids+=($!)
# Host 2's node holds the model file; host 3's has none and fetches its layers from the
# cluster it found (nothing but --discover and a cache folder).
ip netns exec "${hosts[1]}" "$tandem" node -m "$model" --discover --discover-timeout 20 -t 1 \
  "${sec_node[@]}" >"$work/node2.log" 2>&1 &
pids+=($!)
ip netns exec "${hosts[2]}" "$tandem" node --cache-dir "$work/cache3" --discover --discover-timeout 20 \
  -t 1 "${sec_node[@]}" >"$work/node3.log" 2>&1 &
pids+=($!)
end=$(($(date +%s) + 40))
until status | jq -e '.ready == true and (.stages | length) == 2' >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$end" ] || fail "the discovered nodes did not form a 2-stage plan within 40 s"
  sleep 0.2
done
addrs=$(status | jq -r '[.stages[].address | split(":")[0]] | sort | join(" ")')
[ "$addrs" = "10.77.0.2 10.77.0.3" ] || fail "stages on $addrs, not the two discovering hosts"
for i in 2 3; do
  grep -q "found the coordinator at 10.77.0.1:7070; serving on 10.77.0.$i:0" "$work/node$i.log" ||
    fail "node $i did not report what it found"
done
echo "two nodes (one with the model file, one fetching) found the coordinator by multicast and serve its plan ($addrs)"

want=$("$tandem" generate -m "$model" -p "Once upon a time" -n 24 --temp 0 -t 1 --json 2>/dev/null | jq -c .ids)
got=$(on 1 "$tandem" generate --coordinator "$coord" "${sec_generate[@]}" -p "Once upon a time" -n 24 --temp 0 --json 2>/dev/null | jq -c .ids)
[ -n "$want" ] && [ "$got" = "$want" ] || fail "the discovered cluster answered $got, the single process $want"
echo "greedy answer through the discovered cluster: identical"

# Another model: the coordinator is heard, does not fit, and the node says so (exit 2).
set +e
on 3 "$tandem" node -m "$other" --discover --discover-timeout 2 -t 1 "${sec_node[@]}" >"$work/other-model.log" 2>&1
rc=$?
on 2 "$tandem" node -m "$model" --discover --discover-timeout 2 --cluster-name lab2 -t 1 \
  "${sec_node[@]}" >"$work/other-name.log" 2>&1
rc2=$?
set -e
[ $rc -eq 2 ] || fail "a node of another model exited $rc, not 2"
grep -q "10.77.0.1:7070: another model" "$work/other-model.log" || fail "the other model's node did not say what it heard"
[ $rc2 -eq 2 ] || fail "a node of another cluster name exited $rc2, not 2"
grep -q "cluster 'tandem', not 'lab2'" "$work/other-name.log" || fail "the other cluster's node did not say what it heard"
[ "$(status | jq '.stages | length')" = 2 ] || fail "the plan changed after nodes that do not fit looked"
echo "a node of another model or cluster name joins nothing and says what it heard"

# A TLS cluster on the same LAN, under another cluster name.
tls=10.77.0.1:7072
ip netns exec "${hosts[0]}" "$tandem" coordinator -m "$model" --listen "$tls" --min-nodes 1 --announce \
  --cluster-name secure --state-dir "$work/state" >"$work/tls-coordinator.log" 2>&1 &
pids+=($!)
end=$(($(date +%s) + 20))
until [ -s "$work/state/join-token" ]; do
  [ "$(date +%s)" -lt "$end" ] || fail "the TLS coordinator wrote no join token within 20 s"
  sleep 0.2
done
grep -q "announcing TLS cluster 'secure'" "$work/tls-coordinator.log" || fail "the TLS coordinator did not announce TLS"
# Another cluster's token: a CA hash and a secret of its own.
hex32() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
echo "tandem-join-v1.$(hex32).$(hex32)" >"$work/wrong-token"
chmod 600 "$work/wrong-token"
set +e
on 3 "$tandem" node -m "$model" --discover --discover-timeout 3 --cluster-name secure -t 1 \
  --token-file "$work/wrong-token" >"$work/wrong-ca.log" 2>&1 &
wrong_pid=$!
on 3 "$tandem" node -m "$model" --discover --discover-timeout 3 --cluster-name secure -t 1 \
  "${sec_node[@]}" >"$work/no-token.log" 2>&1
rc2=$?
wait $wrong_pid
rc=$?
set -e
[ $rc -eq 2 ] || fail "a node whose token names another CA exited $rc, not 2"
grep -q "ignoring the coordinator at 10.77.0.1:7072: a CA other than the one this node's join token names" \
  "$work/wrong-ca.log" || fail "the node with another CA's token did not log why it ignored the announcer"
[ $rc2 -eq 2 ] || fail "a node without a token joined a TLS cluster (exit $rc2)"
grep -q "ignoring the coordinator at 10.77.0.1:7072: TLS: this node needs the cluster's join token" \
  "$work/no-token.log" || fail "the node without a token did not log why it ignored the TLS announcer"
echo "a node whose token names another CA, or with no token, ignores the TLS announcer and says why"

ip netns exec "${hosts[1]}" "$tandem" node -m "$model" --discover --discover-timeout 20 --cluster-name secure \
  -t 1 --token-file "$work/state/join-token" >"$work/tls-node.log" 2>&1 &
pids+=($!)
tls_status() {
  on 1 "$tandem" status --coordinator "$tls" --token-file "$work/state/join-token" --json 2>/dev/null || echo '{}'
}
end=$(($(date +%s) + 40))
until tls_status | jq -e '.ready == true and (.stages | length) == 1' >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$end" ] || fail "the node with the token did not join the TLS cluster within 40 s"
  sleep 0.5
done
grep -q "found the coordinator at 10.77.0.1:7072" "$work/tls-node.log" || fail "the TLS node did not report what it found"
grep -q "joined the cluster at 10.77.0.1:7072 as node-" "$work/tls-node.log" || fail "the TLS node did not join with a certificate"
got=$(on 1 "$tandem" generate --coordinator "$tls" --token-file "$work/state/join-token" -p "Once upon a time" \
  -n 24 --temp 0 --json 2>/dev/null | jq -c .ids)
[ "$got" = "$want" ] || fail "the discovered TLS cluster answered $got, the single process $want"
echo "a node with the join token found the TLS cluster by its CA hash, joined over mutual TLS; greedy answer identical"
echo "PASS: discovery"
