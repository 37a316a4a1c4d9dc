#!/usr/bin/env bash
# Prism (validating mock of OpenAPI documents), pinned, installed from npm into the cache.
#   hack/prism.sh install   install if missing
#   hack/prism.sh path      print the prism executable
set -euo pipefail
VERSION=5.16.0
DIR=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/prism-$VERSION
case ${1:-} in
  install)
    if [[ ! -x $DIR/node_modules/.bin/prism ]]; then
      echo "[prism] installing @stoplight/prism-cli@$VERSION into $DIR" >&2
      mkdir -p "$DIR"
      (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error "@stoplight/prism-cli@$VERSION" >&2)
    fi
    ;;
  path) echo "$DIR/node_modules/.bin/prism" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
