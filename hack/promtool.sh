#!/usr/bin/env bash
# promtool from the Go module proxy, cached under
#   ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/promtool-<version>/promtool
# Usage: hack/promtool.sh build   build if missing, print the directory
#        hack/promtool.sh path    print the directory (building it if missing)
# Progress goes to stderr; the output directory is printed on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/build-lock.sh"

# Go module v0.316.0 is Prometheus 3.16.0 (the version promtool --version reports).
PROMTOOL_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0
CACHE=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}
OUT=$CACHE/promtool-$PROMTOOL_MODULE_VERSION

log() { printf '[promtool] %s\n' "$*" >&2; }

case ${1:-build} in
  build | path) ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac

if [[ -x $OUT/promtool ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
take_build_lock "$CACHE/.promtool-$PROMTOOL_MODULE_VERSION.lock" 1200
if [[ -x $OUT/promtool ]]; then
  echo "$OUT"
  exit 0
fi

go_build_env

mkdir -p "$OUT"
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

log "building promtool $PROMTOOL_MODULE_VERSION with go install -p 2 ..."
t0=$SECONDS
# go install pkg@version builds outside any module: prometheus' go.mod has no replace directives.
V=github.com/prometheus/common/version
GOBIN=$TMP go install -p 2 -ldflags "-s -w -X $V.Version=$PROMETHEUS_VERSION -X $V.Branch=HEAD" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_MODULE_VERSION"
mv -f "$TMP/promtool" "$OUT/promtool"
log "promtool: done in $((SECONDS - t0)) s"
"$OUT/promtool" --version >&2
echo "$OUT"
