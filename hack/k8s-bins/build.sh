#!/usr/bin/env bash
# Build kube-apiserver, etcd and kubectl (Kubernetes v1.37.2) from the Go module
# proxy using the wrapper module next to this script, into
#   ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/k8s-v1.37.2/
# Exits at once if all three binaries are already there. Progress goes to stderr;
# on success the output directory is printed on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/build-lock.sh"

K8S_VERSION=1.37.2                      # must match the require in go.mod
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}
OUT=$CACHE/k8s-v$K8S_VERSION
BINS=(etcd kube-apiserver kubectl)

log() { printf '[k8s-bins] %s\n' "$*" >&2; }

have_all() {
  local b
  for b in "${BINS[@]}"; do [[ -x $OUT/$b ]] || return 1; done
}

if have_all; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
take_build_lock "$CACHE/.k8s-v$K8S_VERSION.lock" 1800
if have_all; then
  echo "$OUT"
  exit 0
fi

cd "$(dirname "${BASH_SOURCE[0]}")"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false -mod=readonly"

V=k8s.io/component-base/version
LDFLAGS="-s -w -X $V.gitVersion=v$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$K8S_MINOR"
LDFLAGS+=" -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
LDFLAGS+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$K8S_MINOR"

declare -A PKG=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
)

mkdir -p "$OUT"
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

start_all=$SECONDS
for b in "${BINS[@]}"; do
  if [[ -x $OUT/$b ]]; then
    log "$b: already built"
    continue
  fi
  log "building $b (${PKG[$b]}) with go build -p 2 ..."
  t0=$SECONDS
  if [[ $b == etcd ]]; then
    go build -p 2 -ldflags "-s -w" -o "$TMP/$b" "${PKG[$b]}"
  else
    go build -p 2 -ldflags "$LDFLAGS" -o "$TMP/$b" "${PKG[$b]}"
  fi
  mv -f "$TMP/$b" "$OUT/$b"          # atomic within the same filesystem
  log "$b: done in $((SECONDS - t0)) s"
done
log "all binaries in $OUT ($((SECONDS - start_all)) s)"
"$OUT/kube-apiserver" --version >&2
"$OUT/etcd" --version >&2
"$OUT/kubectl" version --client >&2
echo "$OUT"
