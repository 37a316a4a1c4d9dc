#!/usr/bin/env bash
# Debian's Lua 5.1 interpreter (the Lua version Argo CD's gopher-lua implements), for the test of
# the Argo CD health checks in deploy/argocd. Installs the lua5.1 package with apt-get when it is
# missing (as root, or through sudo), then prints the interpreter's path.
# Usage: hack/lua.sh path
set -euo pipefail

log() { printf '[lua] %s\n' "$*" >&2; }

[[ ${1:-path} == path ]] || { echo "usage: $0 path" >&2; exit 2; }

if ! command -v lua5.1 >/dev/null; then
  SUDO=
  [[ $(id -u) == 0 ]] || SUDO=sudo
  log "installing Debian's lua5.1 ..."
  t0=$SECONDS
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends lua5.1 >&2
  log "lua5.1: installed in $((SECONDS - t0)) s"
fi
command -v lua5.1
