#!/usr/bin/env bash
# Checks the deploy files offline and says which checks ran and which were skipped:
#   compose   `docker compose config` (or Debian's docker-compose 1.29), and dclint's errors
#   docker    the Dockerfile linted (dockerfile-utils); the runtime image's packages cover
#             every library the built binary links; `docker build` only when a daemon
#             is running and the debian:12 images are already there (nothing is pulled)
#   systemd   `systemd-analyze verify` (no output allowed) and `security --offline`
#   k8s       schema, unknown fields and wiring (deploy/validate/check_k8s.mjs)
#   flags     every --flag the files pass to tandem exists in `tandem <command> --help`
#   trace     (--trace only: ~15 s) an strace of a real local cluster shows that the
#             units' SystemCallFilter= and MemoryDenyWriteExecute= allow what tandem does
# TANDEM_BIN (default build/cli/tandem) is the binary the flags, libraries and trace
# are checked against. Exit 1 when a check that ran failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deploy=$root/deploy
bin=${TANDEM_BIN:-$root/build/cli/tandem}
shared=${TANDEM_SHARED_DIR:-$root/../shared}
trace=0
[ "${1:-}" = --trace ] && trace=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ran=()
skipped=()
failed=()

# check NAME COMMAND...: runs the command, records the outcome.
check() {
  local name=$1 start=$EPOCHREALTIME
  shift
  if "$@"; then
    ran+=("$name ($(elapsed "$start") s)")
  else
    ran+=("$name ($(elapsed "$start") s)")
    failed+=("$name")
    echo "validate: $name FAILED" >&2
  fi
}
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
skip() {
  skipped+=("$1 ($2)")
}

npx_local() { (cd "$deploy/validate" && ./node_modules/.bin/"$@"); }
have_npm_tools=0
[ -x "$deploy/validate/node_modules/.bin/tsc" ] && have_npm_tools=1

# --- compose ---
compose_config() {
  local out
  if docker compose version >/dev/null 2>&1; then
    out=$(TANDEM_MODEL_DIR=$tmp docker compose -f "$deploy/docker-compose.yml" config -q 2>&1)
  else
    out=$(TANDEM_MODEL_DIR=$tmp docker-compose -f "$deploy/docker-compose.yml" config -q 2>&1)
  fi || { echo "$out" >&2; return 1; }
  [ -z "$out" ] || { echo "$out" >&2; return 1; }
}
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then
  check "compose: config" compose_config
else
  skip "compose: config" "neither docker compose nor docker-compose is installed"
fi
if [ $have_npm_tools = 1 ]; then
  check "compose: dclint (errors)" npx_local dclint -q --color false "$deploy/docker-compose.yml"
else
  skip "compose: dclint" "run deploy/setup.sh for the npm tools"
fi

# --- docker ---
if [ $have_npm_tools = 1 ]; then
  check "docker: dockerfile-utils lint" npx_local dockerfile-utils lint "$deploy/Dockerfile"
else
  skip "docker: dockerfile-utils lint" "run deploy/setup.sh for the npm tools"
fi

# The packages the runtime stage installs, with their dependencies, own every library
# the binary links (this host must be Debian 12, like the image).
runtime_libraries() {
  local packages closure owners missing
  packages=$(awk '/^FROM debian:12-slim/ {rt=1} rt && /apt-get install/ {on=1} on {print} on && !/\\$/ {on=0}' \
    "$deploy/Dockerfile" | tr ' \\' '\n\n' | grep -E '^lib|^ca-' | sort -u)
  [ -n "$packages" ] || { echo "no runtime packages found in the Dockerfile" >&2; return 1; }
  # shellcheck disable=SC2086
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $packages | grep -v '^ ' | sed 's/:.*//' | sort -u)
  # Each library under the names dpkg may know it by (merged /usr: /lib is /usr/lib),
  # looked up in one dpkg -S call; then one awk pass (forks are slow on a busy machine).
  local libs reals
  libs=$(ldd "$bin" | awk '$3 ~ /^\// {print $3}')
  # shellcheck disable=SC2086
  reals=$(readlink -f $libs)
  # shellcheck disable=SC2086
  owners=$(dpkg -S $(printf '%s\n' $libs $reals | sed -E 's|^/usr||; p; s|^|/usr|') 2>/dev/null)
  missing=$(awk -v closure="$closure" -v libs="$libs" -v reals="$reals" -v owners="$owners" '
    function bare(p) { sub(/^\/usr/, "", p); return p }
    BEGIN {
      n = split(closure, c, "\n"); for (i = 1; i <= n; i++) installed[c[i]] = 1
      n = split(owners, o, "\n")
      for (i = 1; i <= n; i++) { split(o[i], kv, ": "); split(kv[1], pkg, ":"); owner[bare(kv[2])] = pkg[1] }
      n = split(libs, l, "\n"); split(reals, r, "\n")
      for (i = 1; i <= n; i++) {
        who = owner[bare(l[i])]; if (who == "") who = owner[bare(r[i])]
        if (!(who in installed)) print l[i] " (package " (who == "" ? "unknown" : who) ")"
      }
    }')
  [ -z "$missing" ] && return 0
  echo "not installed by the runtime stage: $missing" >&2
  return 1
}
if ! [ -x "$bin" ] || ! grep -q 'VERSION_ID="12"' /etc/os-release; then
  skip "docker: runtime packages" "needs the built binary at $bin on Debian 12"
elif ! apt-cache show libopenblas0-pthread >/dev/null 2>&1; then
  skip "docker: runtime packages" "no apt package lists: run apt-get update"
else
  check "docker: runtime packages cover ldd" runtime_libraries
fi
if docker info >/dev/null 2>&1 && docker image inspect debian:12 debian:12-slim >/dev/null 2>&1; then
  check "docker: build" docker build -q -f "$deploy/Dockerfile" -t tandem:validate "$root"
else
  skip "docker: build" "no Docker daemon or no local debian:12 and debian:12-slim images"
fi

# --- systemd ---
units=("$deploy"/systemd/*.service)
# The units name /usr/local/bin/tandem, which verify requires to exist: check copies
# that point at a stub instead.
mkdir -p "$tmp/units"
printf '#!/bin/sh\nexit 0\n' >"$tmp/units/tandem"
chmod +x "$tmp/units/tandem"
for u in "${units[@]}"; do
  sed "s|/usr/local/bin/tandem|$tmp/units/tandem|g" "$u" >"$tmp/units/$(basename "$u")"
done
systemd_verify() {
  local out
  # verify exits 0 on unknown keys and bad values, so any output is a failure.
  out=$(cd "$tmp/units" && systemd-analyze verify --man=no ./*.service 2>&1)
  local rc=$?
  [ $rc -eq 0 ] && [ -z "$out" ] && return 0
  echo "$out" >&2
  return 1
}
systemd_security() {
  local u line rc=0
  for u in "$tmp"/units/*.service; do
    # --threshold is on a 0-100 scale: 20 is an exposure of 2.0 ("OK" ends at 4.9).
    line=$(systemd-analyze security --offline=yes --threshold=20 "$u" 2>&1 | grep 'Overall exposure') || rc=1
    echo "validate: ${line#→ }"
  done
  return $rc
}
if command -v systemd-analyze >/dev/null; then
  check "systemd: verify" systemd_verify
  check "systemd: security --offline (exposure <= 2.0)" systemd_security
else
  skip "systemd" "systemd-analyze is not installed"
fi

# --- k8s ---
if [ $have_npm_tools = 1 ]; then
  check "k8s: schema, fields, wiring" node "$deploy/validate/check_k8s.mjs" "$deploy"/k8s/*.yaml
else
  skip "k8s" "run deploy/setup.sh for the npm tools"
fi

# --- flags ---
# Flags in the files' non-comment lines, against the help of the command they run.
flags_exist() {
  local command=$1 file flag help rc=0
  shift
  help=$("$bin" "$command" --help 2>&1)
  for file in "$@"; do
    for flag in $(grep -v '^[[:space:]]*#' "$file" | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
      grep -qE -- "(^|[ ,])$flag( |$)" <<<"$help" && continue
      # The compose healthcheck runs `tandem plan --coordinator`.
      [ "$flag" = --coordinator ] && continue
      echo "$(basename "$file"): $flag is not a flag of tandem $command" >&2
      rc=1
    done
  done
  return $rc
}
if [ -x "$bin" ]; then
  check "flags: coordinator" flags_exist coordinator "$deploy/systemd/tandem-coordinator.service" \
    "$deploy/systemd/coordinator.env.example" "$deploy/k8s/coordinator.yaml"
  check "flags: node" flags_exist node "$deploy/systemd/tandem-node@.service" \
    "$deploy/systemd/node.env.example" "$deploy/k8s/nodes.yaml"
  # The compose file runs both: each flag must belong to one of them.
  help_both() { "$bin" coordinator --help; "$bin" node --help; }
  compose_flags() {
    local flag rc=0 help
    help=$(help_both 2>&1)
    for flag in $(grep -v '^[[:space:]]*#' "$deploy/docker-compose.yml" | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
      grep -qE -- "(^|[ ,])$flag( |$)" <<<"$help" || { echo "docker-compose.yml: $flag is no tandem flag" >&2; rc=1; }
    done
    return $rc
  }
  check "flags: compose" compose_flags
else
  skip "flags" "needs the built binary at $bin"
fi

# --- trace ---
syscall_trace() {
  local expand_set out="$tmp/trace"
  expand_set() {
    local item
    for item in $(systemd-analyze syscall-filter "$@" | awk '/^    [@a-z_0-9]/ {print $1}'); do
      case $item in @*) expand_set "$item" ;; *) echo "$item" ;; esac
    done
  }
  strace -f -qq -o "$out" "$bin" run -m "$shared/models/stories260K-f32.gguf" --nodes 2 -n 8 \
    --temp 0 -t 1 >/dev/null 2>&1 || { echo "tandem run failed under strace" >&2; return 1; }
  sed -E -n 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$out" | sort -u >"$tmp/used"
  expand_set @system-service | sort -u >"$tmp/allowed"
  expand_set @privileged | sort -u >"$tmp/denied"
  local outside denied wx
  outside=$(comm -23 "$tmp/used" "$tmp/allowed")
  denied=$(comm -12 "$tmp/used" "$tmp/denied")
  # MemoryDenyWriteExecute= refuses W+X mappings and making memory executable later.
  wx=$(grep -E '^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(' "$out" |
    grep -E 'PROT_EXEC' | grep -E 'PROT_WRITE|mprotect' | head -3)
  echo "validate: traced $(wc -l <"$tmp/used") distinct system calls of a 2-node tandem run"
  [ -z "$outside$denied$wx" ] && return 0
  [ -n "$outside" ] && echo "outside @system-service: $outside" >&2
  [ -n "$denied" ] && echo "in @privileged: $denied" >&2
  [ -n "$wx" ] && echo "writable+executable memory: $wx" >&2
  return 1
}
if [ $trace = 1 ]; then
  if command -v strace >/dev/null && [ -x "$bin" ] && [ -f "$shared/models/stories260K-f32.gguf" ]; then
    check "trace: syscalls and W^X under strace" syscall_trace
  else
    skip "trace" "needs strace, the binary and $shared/models/stories260K-f32.gguf"
  fi
else
  skip "trace" "run with --trace"
fi

for c in "${ran[@]}"; do echo "validate: ran     $c"; done
for c in "${skipped[@]}"; do echo "validate: skipped $c"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "validate: ${#failed[@]} of ${#ran[@]} checks that ran failed: ${failed[*]}" >&2
  exit 1
fi
echo "validate: all ${#ran[@]} checks that ran are clean; ${#skipped[@]} skipped"
