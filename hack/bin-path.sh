#!/usr/bin/env bash
# Print one directory holding kubectl, kube-apiserver and etcd (v1.37.2), plus
# helm when it has been built (or --with-helm builds it), for
#   export PATH="$(hack/bin-path.sh):$PATH"
# The directory is ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/bin and holds
# symlinks into the versioned build dirs. Builds the k8s binaries if they are
# missing (minutes, progress on stderr); REVOKER_NO_BUILD=1 fails instead.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}
K8S_DIR=$CACHE/k8s-v1.37.2
HELM_DIR=$CACHE/helm-v3.22.0
OUT=$CACHE/bin

with_helm=0
case ${1:-} in
  --with-helm) with_helm=1 ;;
  "") ;;
  *) echo "usage: $0 [--with-helm]" >&2; exit 2 ;;
esac

if [[ ${REVOKER_NO_BUILD:-0} == 1 ]]; then
  for b in etcd kube-apiserver kubectl; do
    [[ -x $K8S_DIR/$b ]] || { echo "$0: $K8S_DIR/$b missing (REVOKER_NO_BUILD=1)" >&2; exit 1; }
  done
else
  "$HACK/k8s-bins/build.sh" >/dev/null
  if ((with_helm)); then "$HACK/helm/build.sh" >/dev/null; fi
fi

# link NAME TARGET: atomically point $OUT/NAME at TARGET (safe with concurrent callers)
link() {
  local tmp=$OUT/.$1.$$
  ln -sfn "$2" "$tmp"
  mv -Tf "$tmp" "$OUT/$1"
}

mkdir -p "$OUT"
for b in etcd kube-apiserver kubectl; do link "$b" "$K8S_DIR/$b"; done
if [[ -x $HELM_DIR/helm ]]; then link helm "$HELM_DIR/helm"; fi
echo "$OUT"
