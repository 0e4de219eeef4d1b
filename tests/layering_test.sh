#!/usr/bin/env bash
# Fails when a folder includes a part it must not know. The layering:
#
#   cli, tests, bench ──▶ everything
#   coordinator ──▶ net, partition, model, base, proto      (never node)
#   node        ──▶ net, model, base, proto                  (never coordinator)
#   net         ──▶ base, proto                              (never node or coordinator)
#   partition   ──▶ base                                     (pure: no I/O, no model files)
#   model       ──▶ base
#   base        ──▶ nothing of ours
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# folder: the project folders its files may include ("proto" stands for tandem*.pb.h)
declare -A allowed=(
  [base]="base"
  [model]="model base"
  [partition]="partition base"
  [net]="net base proto"
  [node]="node net model base proto"
  [coordinator]="coordinator net partition model base proto"
)
ours="base model partition net node coordinator cli tests bench proto"

status=0
for folder in "${!allowed[@]}"; do
  while IFS= read -r -d '' file; do
    while IFS= read -r line; do
      inc=$(sed -E 's/^#include "([^"]+)".*/\1/' <<<"$line")
      case "$inc" in
        tandem.pb.h | tandem.grpc.pb.h) part=proto ;;
        */*) part=${inc%%/*} ;;
        *) continue ;;
      esac
      [[ " $ours " == *" $part "* ]] || continue
      if [[ " ${allowed[$folder]} " != *" $part "* ]]; then
        echo "layering: $file includes \"$inc\": $folder/ must not depend on $part/"
        status=1
      fi
    done < <(grep -E '^#include "' "$file" || true)
  done < <(find "$folder" \( -name '*.h' -o -name '*.cc' \) -print0)
done
[ $status -eq 0 ] && echo "layering: ok"
exit $status
