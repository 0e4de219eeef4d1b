#!/usr/bin/env bash
# Rehearses deploy/Dockerfile's runtime stage without Docker, for machines with no
# Docker daemon: in a minimal Debian 12 root (debootstrap --variant=minbase, made
# once in ROOTFS), runs the stage's own RUN command taken from the Dockerfile (the
# runtime packages and the tandem user), copies in the binary as its COPY does, and
# runs a 2-node `tandem run` there as uid 10001 on the stories260K model.
# Needs root, debootstrap and Debian's package mirror; not part of deploy/test.sh.
# Usage: deploy/try_runtime_stage.sh [ROOTFS]   (default /tmp/tandem-rootfs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rootfs=${1:-/tmp/tandem-rootfs}
bin=${TANDEM_BIN:-$root/build/cli/tandem}
model=${TANDEM_SHARED_DIR:-$root/../shared}/models/stories260K-f32.gguf

if [ ! -x "$rootfs/bin/sh" ]; then
  debootstrap --variant=minbase bookworm "$rootfs"
fi
# The runtime stage's RUN instruction, continuation lines joined.
run=$(awk '/^FROM debian:12-slim/ {stage = 1; next}
           stage && /^RUN / {on = 1; sub(/^RUN /, "")}
           on {line = line $0; if (!/\\$/) {print line; exit} sub(/\\$/, "", line)}' \
  "$root/deploy/Dockerfile")
echo "try: RUN $run"
if ! chroot "$rootfs" id tandem >/dev/null 2>&1; then
  chroot "$rootfs" /bin/sh -c "$run"
fi
install -m 0755 "$bin" "$rootfs/usr/local/bin/tandem"
mkdir -p "$rootfs/models"
cp "$model" "$rootfs/models/model.gguf"
chmod 0444 "$rootfs/models/model.gguf"

mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc"' EXIT
echo "try: missing libraries: $(chroot "$rootfs" ldd /usr/local/bin/tandem | grep -c 'not found' || true)"
# As the image runs it: uid 10001 in WORKDIR /var/lib/tandem.
chroot --userspec=10001:10001 "$rootfs" /bin/sh -c 'cd /var/lib/tandem && exec env HOME=/var/lib/tandem \
  /usr/local/bin/tandem run -m /models/model.gguf --nodes 2 -n 24 --temp 0 -t 1'
