#!/usr/bin/env bash
# Emulated hosts on one switch, for multi-host tests and benchmarks on one machine.
#
#   deploy/netns.sh [--hosts N] [--delay MS] [--jitter MS] [--loss PCT]
#                   [--emulator auto|netem|linkem] -- COMMAND [ARGS...]
#
# builds N network namespaces ("hosts") with addresses 10.77.0.1 .. 10.77.0.N/24, each
# linked by a veth pair to a Linux bridge that lives in a namespace of its own, runs
# COMMAND (in this namespace, as this user) and removes everything when it ends, however
# it ends (a trap on EXIT, INT, TERM and HUP). Nothing is routed anywhere else: the hosts
# have the bridge's /24 (and multicast on it) and no default route, and this machine's own
# namespace gets no interface at all. Needs root.
#
# Each link delays both of its directions by MS ± jitter (uniform) and drops PCT percent of
# the packets each way, like netem on both ends of it: host to host is two links (so
# --delay 10 gives 20 ms one way, 40 ms round trip). The emulator is the kernel's tc netem
# where the kernel has it, else tandem-linkem (tests/netns/linkem.cc: NFQUEUE, the same
# uniform jitter and loss, no reordering); --emulator forces one.
#
# COMMAND sees:
#   TANDEM_NETNS_HOSTS   the hosts' namespace names, space separated (host 1 first)
#   TANDEM_NETNS_ADDRS   their addresses, in the same order
#   TANDEM_NETNS_SWITCH  the switch's namespace
#   TANDEM_NETNS         this script, for the commands below
# and may run, while it lasts:
#   deploy/netns.sh exec HOST CMD...       run CMD inside host HOST (1-based index or name)
#   deploy/netns.sh cut HOST               drop every packet of HOST's link, silently
#   deploy/netns.sh heal HOST              undo cut
#   deploy/netns.sh link HOST down|up      take HOST's link down (no carrier) or up
#   deploy/netns.sh shape HOST --delay MS [--jitter MS] [--loss PCT]   reshape HOST's link
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
root=$(cd "$(dirname "$0")/.." && pwd)
subnet=10.77.0
max_hosts=32

die() {
  echo "netns: $*" >&2
  exit 2
}

# --- subcommands used while COMMAND runs --------------------------------------------------
host_name() {  # HOST (index or name) -> namespace name
  local h=$1
  [ -n "${TANDEM_NETNS_HOSTS:-}" ] || die "$2: no emulated hosts (run it under deploy/netns.sh ... -- COMMAND)"
  local -a hosts=($TANDEM_NETNS_HOSTS)
  if [[ $h =~ ^[0-9]+$ ]]; then
    [ "$h" -ge 1 ] && [ "$h" -le ${#hosts[@]} ] || die "no host $h (there are ${#hosts[@]})"
    echo "${hosts[$((h - 1))]}"
  else
    for n in "${hosts[@]}"; do [ "$n" = "$h" ] && echo "$n" && return; done
    die "no host named $h"
  fi
}
host_index() {  # namespace name -> 1-based index
  local -a hosts=($TANDEM_NETNS_HOSTS)
  local i
  for i in "${!hosts[@]}"; do [ "${hosts[$i]}" = "$1" ] && echo $((i + 1)) && return; done
}

parse_shape() {  # sets delay jitter loss from --delay/--jitter/--loss
  while [ $# -gt 0 ]; do
    case $1 in
      --delay) delay=${2:?--delay needs MS}; shift 2 ;;
      --jitter) jitter=${2:?--jitter needs MS}; shift 2 ;;
      --loss) loss=${2:?--loss needs PCT}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $delay =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$delay" 'BEGIN{exit !(v <= 10000)}' ||
    die "--delay takes 0..10000 ms, not '$delay'"
  [[ $jitter =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$jitter" 'BEGIN{exit !(v <= 10000)}' ||
    die "--jitter takes 0..10000 ms, not '$jitter'"
  [[ $loss =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$loss" 'BEGIN{exit !(v <= 100)}' ||
    die "--loss takes 0..100 percent, not '$loss'"
}

shaped() { awk -v d="$delay" -v j="$jitter" -v l="$loss" 'BEGIN{exit !(d > 0 || j > 0 || l > 0)}'; }

# Applies delay/jitter/loss to the link of host $1 (namespace) with index $2.
shape_link() {
  local ns=$1 i=$2 sw=${TANDEM_NETNS_SWITCH}
  case ${TANDEM_NETNS_EMULATOR} in
    netem)
      ip -n "$ns" link set eth0 up
      tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
      tc -n "$sw" qdisc del dev "h$i" root 2>/dev/null || true
      if shaped; then
        local args=(delay "${delay}ms")
        awk -v j="$jitter" 'BEGIN{exit !(j > 0)}' && args+=("${jitter}ms")
        args+=(loss "${loss}%")
        tc -n "$ns" qdisc add dev eth0 root netem "${args[@]}"
        tc -n "$sw" qdisc add dev "h$i" root netem "${args[@]}"
      fi
      ;;
    linkem)
      local pidfile=$TANDEM_NETNS_DIR/linkem-$i.pid
      if [ -f "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
      fi
      ip netns exec "$ns" iptables -t mangle -F
      if shaped; then
        local log=$TANDEM_NETNS_DIR/linkem-$i.log
        : >"$log"
        ip netns exec "$ns" "$TANDEM_LINKEM" --queue 0 --delay-ms "$delay" --jitter-ms "$jitter" \
          --loss "$(awk -v l="$loss" 'BEGIN{printf "%.6f", l / 100}')" --seed "$i" \
          >>"$log" 2>&1 &
        echo $! >"$pidfile"
        local t
        for t in $(seq 100); do grep -q "queues" "$log" && break; sleep 0.05; done
        grep -q "queues" "$log" || die "tandem-linkem did not start on host $i: $(cat "$log")"
        ip netns exec "$ns" iptables -t mangle -A POSTROUTING -o eth0 -j NFQUEUE --queue-num 0
        ip netns exec "$ns" iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num 1
      fi
      ;;
    none) shaped && die "no link emulator: this kernel has no tc netem and tandem-linkem is missing" ;;
  esac
  return 0
}

case ${1:-} in
  exec)
    ns=$(host_name "${2:?exec HOST CMD...}" exec)
    shift 2
    exec ip netns exec "$ns" "$@"
    ;;
  cut | heal)
    ns=$(host_name "${2:?$1 HOST}" "$1")
    op=-I
    [ "$1" = heal ] && op=-D
    ip netns exec "$ns" iptables -t raw $op PREROUTING -i eth0 -j DROP
    ip netns exec "$ns" iptables -t raw $op OUTPUT -o eth0 -j DROP
    exit 0
    ;;
  link)
    ns=$(host_name "${2:?link HOST down|up}" link)
    [[ ${3:-} =~ ^(up|down)$ ]] || die "link HOST takes down or up"
    ip -n "$TANDEM_NETNS_SWITCH" link set "h$(host_index "$ns")" "$3"
    exit 0
    ;;
  shape)
    ns=$(host_name "${2:?shape HOST --delay MS ...}" shape)
    shift 2
    delay=0 jitter=0 loss=0
    parse_shape "$@"
    shape_link "$ns" "$(host_index "$ns")"
    exit 0
    ;;
esac

# --- building the hosts, running COMMAND, removing them ----------------------------------
hosts=3 delay=0 jitter=0 loss=0 emulator=auto
shape_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=${2:?--hosts needs N}; shift 2 ;;
    --delay | --jitter | --loss) shape_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    --emulator) emulator=${2:?--emulator needs auto, netem or linkem}; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option $1 (usage: deploy/netns.sh [--hosts N] [--delay MS] [--jitter MS] [--loss PCT] -- COMMAND...)" ;;
  esac
done
[ $# -gt 0 ] || die "no COMMAND to run (usage: deploy/netns.sh [options] -- COMMAND...)"
parse_shape "${shape_args[@]}"
[[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le $max_hosts ] ||
  die "--hosts takes 1..$max_hosts, not '$hosts'"
[[ $emulator =~ ^(auto|netem|linkem)$ ]] || die "--emulator takes auto, netem or linkem"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
command -v ip >/dev/null && command -v tc >/dev/null || die "needs iproute2 (deploy/setup.sh)"

# Namespaces of runs that died without cleaning up (their owner pid is gone).
for ns in $(ip netns list | awk '{print $1}' | grep -E '^tandem-[0-9]+-' || true); do
  owner=${ns#tandem-}
  owner=${owner%%-*}
  if ! kill -0 "$owner" 2>/dev/null; then
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
done

prefix=tandem-$$
sw=$prefix-sw
dir=$(mktemp -d /tmp/tandem-netns.XXXXXX)
names=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  local ns p
  for ns in "${names[@]}" "$sw"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
  done
  sleep 0.2
  for ns in "${names[@]}" "$sw"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ip netns add "$sw"
ip -n "$sw" link set lo up
ip -n "$sw" link add br0 type bridge
# Flood multicast to every port: discovery's announcements must reach every host.
ip -n "$sw" link set br0 type bridge mcast_snooping 0
ip -n "$sw" link set br0 up
addrs=()
for i in $(seq "$hosts"); do
  ns=$prefix-h$i
  names+=("$ns")
  addrs+=("$subnet.$i")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$sw" link add "h$i" type veth peer name eth0 netns "$ns"
  ip -n "$sw" link set "h$i" master br0 up
  ip -n "$ns" addr add "$subnet.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add 224.0.0.0/4 dev eth0
done

export TANDEM_NETNS_HOSTS="${names[*]}"
export TANDEM_NETNS_ADDRS="${addrs[*]}"
export TANDEM_NETNS_SWITCH=$sw
export TANDEM_NETNS=$self
export TANDEM_NETNS_DIR=$dir

linkem=${TANDEM_LINKEM:-$root/build/tests/netns/tandem-linkem}
if [ "$emulator" = auto ]; then
  if tc -n "$sw" qdisc add dev h1 root netem delay 1ms 2>/dev/null; then
    tc -n "$sw" qdisc del dev h1 root
    emulator=netem
  elif [ -x "$linkem" ] && command -v iptables >/dev/null; then
    emulator=linkem
  else
    emulator=none
  fi
fi
[ "$emulator" = linkem ] && { [ -x "$linkem" ] || die "no tandem-linkem at $linkem (build it, or set TANDEM_LINKEM)"; }
[ "$emulator" = linkem ] && { command -v iptables >/dev/null || die "needs iptables (deploy/setup.sh)"; }
export TANDEM_NETNS_EMULATOR=$emulator
export TANDEM_LINKEM=$linkem
for i in $(seq "$hosts"); do shape_link "${names[$((i - 1))]}" "$i"; done

# Every host reaches every other before COMMAND starts.
for i in $(seq 2 "$hosts"); do
  ip netns exec "${names[0]}" ping -c 1 -W 5 "$subnet.$i" >/dev/null 2>&1 ||
    ip netns exec "${names[0]}" ping -c 1 -W 5 "$subnet.$i" >/dev/null 2>&1 ||
    die "host 1 cannot reach host $i"
done
echo "netns: $hosts hosts ${addrs[*]} on $sw, links ${delay} ms ± ${jitter} ms, ${loss}% loss ($emulator)" >&2

set +e
"$@"
rc=$?
set -e
exit $rc
