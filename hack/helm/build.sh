#!/usr/bin/env bash
# Build helm v3.22.0 from the Go module proxy into
#   ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/helm-v3.22.0/helm
# with the same ldflags as helm's Makefile, so `helm version` reports v3.22.0
# and the default kube version (helm template/lint without a cluster) is 1.37.
# Exits at once if the binary is already there. Progress goes to stderr; on
# success the output directory is printed on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/build-lock.sh"

HELM_VERSION=3.22.0
KUBE_MAJOR=1
KUBE_MINOR=37                           # helm v3.22.0 uses client-go v0.37.0
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}
OUT=$CACHE/helm-v$HELM_VERSION

log() { printf '[helm] %s\n' "$*" >&2; }

if [[ -x $OUT/helm ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
take_build_lock "$CACHE/.helm-v$HELM_VERSION.lock" 1200
if [[ -x $OUT/helm ]]; then
  echo "$OUT"
  exit 0
fi

go_build_env

H=helm.sh/helm/v3
LDFLAGS="-s -w -X $H/internal/version.version=v$HELM_VERSION -X $H/internal/version.gitTreeState=clean"
LDFLAGS+=" -X $H/pkg/chartutil.k8sVersionMajor=$KUBE_MAJOR -X $H/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR"
LDFLAGS+=" -X $H/pkg/lint/rules.k8sVersionMajor=$KUBE_MAJOR -X $H/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR"

mkdir -p "$OUT"
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

log "building helm v$HELM_VERSION with go install -p 2 ..."
t0=$SECONDS
# go install pkg@version builds outside any module: no go.mod/go.sum needed here
# (helm's go.mod has no replace directives).
GOBIN=$TMP go install -p 2 -ldflags "$LDFLAGS" "$H/cmd/helm@v$HELM_VERSION"
mv -f "$TMP/helm" "$OUT/helm"
log "helm: done in $((SECONDS - t0)) s"
"$OUT/helm" version >&2
echo "$OUT"
