# Sourced by the scripts that build a cached test binary (k8s-bins/build.sh, helm/build.sh,
# promtool.sh): one build per version at a time, and the Go settings they share. The caller
# defines log().

# take_build_lock LOCKFILE SECONDS: hold LOCKFILE (fd 9) for the rest of the script, waiting at
# most SECONDS for a concurrent build to finish.
take_build_lock() {
  exec 9>"$1"
  if ! flock -n 9; then
    log "another build holds $1; waiting for it (up to $(($2 / 60)) min)"
    flock -w "$2" 9 || { log "timed out waiting for the build lock"; exit 1; }
  fi
}

# Reproducible, static Go builds with the machine's own toolchain.
go_build_env() {
  export GOTOOLCHAIN=local CGO_ENABLED=0
  export GOFLAGS="-trimpath -buildvcs=false"
}
