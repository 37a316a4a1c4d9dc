#!/usr/bin/env bash
# The local default, end to end: a real control plane (etcd + kube-apiserver on 127.0.0.1), the
# provider simulator on 127.0.0.1:18080, the operator running as its ServiceAccount (deploy/rbac),
# and every manifest of examples/ applied in namespace revoker-demo.
#
#   hack/quickstart.sh           run it, show `kubectl get revocations`, then stop everything
#   hack/quickstart.sh --keep    leave it running; stop it later with `hack/quickstart.sh down`
#   hack/quickstart.sh down      stop everything it started (no process is left behind)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DIR=${REVOKER_QUICKSTART_DIR:-/tmp/revoker-quickstart}
NS=revoker-demo
SIM=127.0.0.1:18080
METRICS=127.0.0.1:18081

log() { printf '[quickstart] %s\n' "$*" >&2; }

stop_pid() {
  local f=$DIR/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  log "stopping the operator, the simulator and the control plane"
  stop_pid operator
  stop_pid simulator
  hack/control-plane.sh down "$DIR/cp" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}

free_or_die() {
  if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then
    log "error: $1 is in use (another quickstart? run: hack/quickstart.sh down)"
    exit 1
  fi
}

start() {
  local name=$1; shift
  setsid "$@" >"$DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$DIR/$name.pid"
}

up() {
  local keep=$1
  [[ -e $DIR ]] && down
  free_or_die "$SIM"
  free_or_die "$METRICS"
  mkdir -p "$DIR"
  ((keep)) || trap down EXIT
  trap 'log "failed; logs are in $DIR"; exit 1' ERR

  log "building kube-apiserver/etcd/kubectl (cached) and the revoker binaries"
  export PATH="$(hack/bin-path.sh):$PATH"
  cargo build --quiet --workspace --bins

  log "starting the control plane"
  eval "$(hack/control-plane.sh up "$DIR/cp")"
  kubectl apply -f crds/ >/dev/null
  kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null
  kubectl apply -f deploy/rbac/ >/dev/null
  hack/token-kubeconfig.sh revoker-system revoker "$DIR/operator.kubeconfig" "$DIR/cp"

  log "starting the provider simulator on http://$SIM"
  start simulator target/debug/revoker-simulator --listen "$SIM" --seed-file examples/simulator-seed.json
  log "starting the operator (ServiceAccount revoker-system/revoker; metrics on http://$METRICS/metrics)"
  KUBECONFIG=$DIR/operator.kubeconfig start operator target/debug/revoker run \
    --allowed-host "http://$SIM" --metrics-addr "$METRICS" --log-format text --cluster-resource-namespace revoker-system

  log "applying examples/ in namespace $NS"
  kubectl create namespace "$NS" >/dev/null
  kubectl apply -n "$NS" -f examples/providers.yaml -f examples/revocations/ >/dev/null
  kubectl wait -n "$NS" --for=condition=Succeeded --timeout=120s jwksrevocations,authmethodrevocations,tokenrevocations --all >/dev/null
  echo
  kubectl get revocations -n "$NS"
  echo
  kubectl get revocationproviders -n "$NS"
  echo
  curl -fsS "http://$METRICS/metrics" | grep '^revoker_revocations_total' | grep -v ' 0$' || true
  echo
  if ((keep)); then
    log "running; try: export KUBECONFIG=$DIR/cp/admin.kubeconfig PATH=$(hack/bin-path.sh):\$PATH; kubectl describe jwksrevocation -n $NS"
    log "stop it with: hack/quickstart.sh down"
  fi
}

case ${1:-} in
  "") up 0 ;;
  --keep) up 1 ;;
  down) down ;;
  *) echo "usage: $0 [--keep|down]" >&2; exit 2 ;;
esac
