#!/usr/bin/env bash
# The kstatus helper (hack/kstatus: the upstream sigs.k8s.io/cli-utils kstatus library behind a
# small command), built from the Go module proxy and cached under
#   ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/kstatus-<hash of its sources>/kstatus
# Usage: hack/kstatus.sh build   build if missing, print the directory
#        hack/kstatus.sh path    print the directory (building it if missing)
# The e2e test gitops_tools_read_every_phase pipes live objects into it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/build-lock.sh"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/kstatus" && pwd)
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}

log() { printf '[kstatus] %s\n' "$*" >&2; }

case ${1:-build} in
  build | path) ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac

HASH=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)
OUT=$CACHE/kstatus-$HASH
if [[ -x $OUT/kstatus ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
take_build_lock "$CACHE/.kstatus-$HASH.lock" 600
if [[ -x $OUT/kstatus ]]; then
  echo "$OUT"
  exit 0
fi

go_build_env
mkdir -p "$OUT"
log "building the kstatus helper ($(grep 'sigs.k8s.io/cli-utils ' "$SRC/go.mod" | xargs)) ..."
t0=$SECONDS
(cd "$SRC" && go build -mod=readonly -ldflags "-s -w" -o "$OUT/kstatus.tmp" .)
mv -f "$OUT/kstatus.tmp" "$OUT/kstatus"
log "kstatus: done in $((SECONDS - t0)) s"
echo "$OUT"
