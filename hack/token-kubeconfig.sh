#!/usr/bin/env bash
# Write a kubeconfig that authenticates as a ServiceAccount (bearer token from
# the TokenRequest API, valid 2h), against the control plane in DIR:
#   hack/token-kubeconfig.sh NAMESPACE SERVICEACCOUNT OUTFILE [DIR]
# DIR defaults to ${REVOKER_CP_DIR:-/tmp/revoker-cp}. The ServiceAccount must
# exist. A process using OUTFILE has only that ServiceAccount's RBAC.
# REVOKER_TOKEN_DURATION overrides the duration (default 2h).
set -euo pipefail

if [[ $# -lt 3 || $# -gt 4 ]]; then
  echo "usage: $0 NAMESPACE SERVICEACCOUNT OUTFILE [DIR]" >&2
  exit 2
fi
NS=$1 SA=$2 OUTFILE=$3
D=${4:-${REVOKER_CP_DIR:-/tmp/revoker-cp}}
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ADMIN=$D/admin.kubeconfig
[[ -f $ADMIN ]] || { echo "$0: $ADMIN not found (is the control plane up?)" >&2; exit 1; }

KUBECTL=$(REVOKER_NO_BUILD=${REVOKER_NO_BUILD:-0} "$HACK/bin-path.sh")/kubectl
k() { "$KUBECTL" --kubeconfig "$ADMIN" "$@"; }

server=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
token=$(k create token "$SA" -n "$NS" --duration="${REVOKER_TOKEN_DURATION:-2h}")
[[ -n $server && -n $ca && -n $token ]] || { echo "$0: could not build the kubeconfig" >&2; exit 1; }

mkdir -p "$(dirname "$OUTFILE")"
tmp=$(mktemp "$OUTFILE.XXXXXX")
cat >"$tmp" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: revoker-cp
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: system:serviceaccount:$NS:$SA
  user:
    token: $token
contexts:
- name: $SA@$NS
  context:
    cluster: revoker-cp
    user: system:serviceaccount:$NS:$SA
    namespace: $NS
current-context: $SA@$NS
EOT
chmod 600 "$tmp"
mv -f "$tmp" "$OUTFILE"
echo "$OUTFILE"
