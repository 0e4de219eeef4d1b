#!/usr/bin/env bash
# Runs the systemd units for real on a machine whose PID 1 is not systemd: boots the
# Debian 12 root of deploy/try_runtime_stage.sh (run that first) with systemd-nspawn,
# where a one-shot unit starts tandem-coordinator and tandem-node@a, @b from
# deploy/systemd/ (unchanged, with /etc/tandem/*.env on 127.0.0.1), asks the cluster
# for its plan and 24 greedy tokens, records what the kernel applied to each service
# (uid, capabilities, no_new_privs, seccomp, read-only root) and powers off.
# Needs root, systemd-container and Debian's package mirror; not part of deploy/test.sh.
# Usage: deploy/try_systemd_units.sh [ROOTFS]   (default /tmp/tandem-rootfs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rootfs=${1:-/tmp/tandem-rootfs}
model=${TANDEM_SHARED_DIR:-$root/../shared}/models/stories260K-f32.gguf
port=${TANDEM_TRY_PORT:-27170}  # coordinator; the nodes take the next two

[ -x "$rootfs/usr/local/bin/tandem" ] || { echo "run deploy/try_runtime_stage.sh first" >&2; exit 1; }
if [ ! -x "$rootfs/lib/systemd/systemd" ]; then
  mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus' >/dev/null
  umount "$rootfs/proc"
fi

# The model where the units' ReadOnlyPaths= expects it, readable by dynamic users.
install -D -m 0644 "$model" "$rootfs/srv/tandem/models/model.gguf"
install -m 0644 "$root"/deploy/systemd/*.service "$rootfs/etc/systemd/system/"
mkdir -p "$rootfs/etc/tandem"
cat >"$rootfs/etc/tandem/coordinator.env" <<EOF
TANDEM_MODEL=/srv/tandem/models/model.gguf
TANDEM_LISTEN=127.0.0.1:$port
TANDEM_MIN_NODES=2
# Every node gets layers, so tokens cross a node-to-node hop inside the sandboxes.
TANDEM_COORDINATOR_ARGS=--planner even
EOF
# Node a offers a fixed amount; node b what /proc/meminfo says is available, which it
# must still be able to read under ProtectProc=invisible.
for i in 1 2; do
  name=$([ $i = 1 ] && echo a || echo b)
  args=$([ $i = 1 ] && echo "--threads 1 --memory-limit 1000000000" || echo "--threads 1")
  cat >"$rootfs/etc/tandem/node-$name.env" <<EOF
TANDEM_COORDINATOR=127.0.0.1:$port
TANDEM_MODEL=/srv/tandem/models/model.gguf
TANDEM_LISTEN=127.0.0.1:$((port + i))
TANDEM_ADVERTISE=127.0.0.1:$((port + i))
TANDEM_NODE_ARGS=$args
EOF
done

cat >"$rootfs/usr/local/bin/tandem-smoke" <<EOF
#!/bin/sh
units="tandem-coordinator tandem-node@a tandem-node@b"
{
  # The coordinator makes the cluster's CA and join token in its StateDirectory; the
  # nodes' units load the token from /etc/tandem/join-token as a credential.
  systemctl start tandem-coordinator; echo "start coordinator rc=\$?"
  for i in \$(seq 1 150); do [ -s /var/lib/tandem-coordinator/join-token ] && break; sleep 0.2; done
  install -m 0600 /var/lib/tandem-coordinator/join-token /etc/tandem/join-token
  systemctl start tandem-node@a tandem-node@b; echo "start nodes rc=\$?"
  tandem plan --coordinator 127.0.0.1:$port --wait 90 --token-file /etc/tandem/join-token
  echo "plan rc=\$?"
  tandem generate --coordinator 127.0.0.1:$port --token-file /etc/tandem/join-token \\
    -p "Once upon a time" -n 24 --temp 0
  echo "generate rc=\$?"
  for u in \$units; do
    systemctl show -p Id -p User -p ActiveState -p SubState -p NRestarts "\$u" | tr '\\n' ' '
    pid=\$(systemctl show -p MainPID --value "\$u")
    echo; grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/\$pid/status | tr '\\n\\t' '  '
    echo "root mount: \$(awk '\$2 == "/" {print \$4}' /proc/\$pid/mounts | head -1)"
  done
  echo "--- warnings this boot"
  journalctl -b --no-pager -o cat -p warning
  echo "--- the units' log"
  journalctl -b --no-pager -o cat -u tandem-coordinator -u tandem-node@a -u tandem-node@b
} >/root/tandem-smoke.txt 2>&1
systemctl poweroff
EOF
chmod 0755 "$rootfs/usr/local/bin/tandem-smoke"
cat >"$rootfs/etc/systemd/system/tandem-smoke.service" <<EOF
[Unit]
Description=Start the tandem units, check the cluster, power off
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/tandem-smoke
[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/tandem-smoke.service "$rootfs/etc/systemd/system/multi-user.target.wants/"

rm -f "$rootfs/root/tandem-smoke.txt"
# --keep-unit --register=no: no host systemd to ask for a scope or to register with.
timeout 300 systemd-nspawn -q -D "$rootfs" -b --register=no --keep-unit --console=pipe \
  >/dev/null 2>&1 || true
cat "$rootfs/root/tandem-smoke.txt"
grep -q '^generate rc=0' "$rootfs/root/tandem-smoke.txt"
