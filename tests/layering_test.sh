#!/usr/bin/env bash
# Fails when a folder includes a part it must not know. The layering:
#
#   cli, tests, bench ──▶ everything
#   api         ──▶ coordinator, net, partition, model, telemetry, base, proto (never node)
#   coordinator ──▶ net, security, partition, model, telemetry, base, proto (never node or api)
#   node        ──▶ net, security, model, telemetry, base, proto   (never coordinator)
#   net         ──▶ security, base, proto                    (never node or coordinator)
#   security    ──▶ base                                     (PKI, tokens: OpenSSL only)
#   fetch       ──▶ net, security, model, base, proto        (tensors for nodes without the file)
#   partition   ──▶ base                                     (pure: no I/O, no model files)
#   model       ──▶ base
#   telemetry   ──▶ base                                     (events, Prometheus text)
#   discovery   ──▶ model, base                              (LAN datagrams and their Asio ends)
#   base        ──▶ nothing of ours
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# folder: the project folders its files may include ("proto" stands for tandem*.pb.h)
declare -A allowed=(
  [base]="base"
  [model]="model base"
  [partition]="partition base"
  [net]="net security base proto"
  [security]="security base"
  [fetch]="fetch net security model base proto"
  [telemetry]="telemetry base"
  [discovery]="discovery model base"
  [node]="node net security model telemetry base proto"
  [coordinator]="coordinator net security partition model telemetry base proto"
  [api]="api coordinator net security partition model telemetry base proto"
)
ours="base model partition telemetry security discovery net fetch node coordinator api cli tests bench proto"

status=0
for folder in "${!allowed[@]}"; do
  # file:#include "part/..." for every quoted include of the folder's sources
  bad=$(grep -rHE '^#include "' "$folder" --include='*.h' --include='*.cc' |
    awk -v folder="$folder" -v allowed=" ${allowed[$folder]} " -v ours=" $ours " '{
      file = $0; sub(/:.*/, "", file)
      inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
      if (inc == "tandem.pb.h" || inc == "tandem.grpc.pb.h") part = "proto"
      else if (index(inc, "/") > 0) part = substr(inc, 1, index(inc, "/") - 1)
      else next
      if (index(ours, " " part " ") == 0) next
      if (index(allowed, " " part " ") == 0)
        printf "layering: %s includes \"%s\": %s/ must not depend on %s/\n", file, inc, folder, part
    }')
  if [ -n "$bad" ]; then
    echo "$bad"
    status=1
  fi
done
[ $status -eq 0 ] && echo "layering: ok"
exit $status
