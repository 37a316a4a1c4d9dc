#!/usr/bin/env bash
# External Secrets Operator, the real rotation tool of the e2e test, built from the Go module proxy
# (its module as the main module: its go.mod's one replace directive then applies) and cached under
#   ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/eso-<version>/{external-secrets,crds.yaml}
# Usage: hack/eso.sh build   build if missing, print the directory
#        hack/eso.sh path    print the directory (building it if missing)
# It runs out of cluster against the local control plane, as the operator does (no kubelet here).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/build-lock.sh"
VERSION=${REVOKER_ESO_VERSION:-v0.16.2}
MODULE=github.com/external-secrets/external-secrets
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}
OUT=$CACHE/eso-$VERSION

log() { printf '[eso] %s\n' "$*" >&2; }

case ${1:-build} in
  build | path) ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac

if [[ -x $OUT/external-secrets && -s $OUT/crds.yaml ]]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$CACHE"
take_build_lock "$CACHE/.eso-$VERSION.lock" 1800
if [[ -x $OUT/external-secrets && -s $OUT/crds.yaml ]]; then
  echo "$OUT"
  exit 0
fi

go_build_env
log "building External Secrets Operator $VERSION from the Go module proxy (about 4 min cold) ..."
t0=$SECONDS
dir=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $dir ]] || { log "go mod download $MODULE@$VERSION gave no module directory"; exit 1; }
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$dir/." "$src/"
chmod -R u+w "$src"
mkdir -p "$OUT"
(cd "$src" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "-s -w" -o "$OUT/external-secrets.tmp" .)
cp "$src/deploy/crds/bundle.yaml" "$OUT/crds.yaml"
mv -f "$OUT/external-secrets.tmp" "$OUT/external-secrets"
log "External Secrets Operator $VERSION: done in $((SECONDS - t0)) s"
echo "$OUT"
