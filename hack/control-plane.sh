#!/usr/bin/env bash
# Local Kubernetes control plane (etcd + kube-apiserver v1.37.2) for tests.
#
#   hack/control-plane.sh up     [DIR]   start (or reuse) it; prints `export KUBECONFIG=DIR/admin.kubeconfig`
#   hack/control-plane.sh down   [DIR]   stop it (apiserver first, then etcd) and remove DIR
#   hack/control-plane.sh status [DIR]   report; exit 0 only when up and ready
#   hack/control-plane.sh restart-apiserver [DIR]   stop kube-apiserver, wait REVOKER_CP_DOWN_SECONDS
#                                        (2), start it again (same port, same etcd data)
#   hack/control-plane.sh pause-etcd [DIR]   freeze etcd for REVOKER_CP_DOWN_SECONDS (2), then resume it
#
# DIR defaults to ${REVOKER_CP_DIR:-/tmp/revoker-cp}. See hack/README.md.
# Everything except the final export line goes to stderr, so
#   eval "$(hack/control-plane.sh up)"
# works.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${REVOKER_CP_READY_TIMEOUT:-60}   # seconds, for etcd and for kube-apiserver each
STOP_TIMEOUT=${REVOKER_CP_STOP_TIMEOUT:-20}     # seconds per process before SIGKILL

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 up|down|status|restart-apiserver|pause-etcd [DIR]
  DIR defaults to \${REVOKER_CP_DIR:-/tmp/revoker-cp}
env: REVOKER_CP_DIR, REVOKER_BIN_CACHE, REVOKER_CP_READY_TIMEOUT (60), REVOKER_CP_STOP_TIMEOUT (20)
EOF
  exit 2
}

# --- helpers ---------------------------------------------------------------

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# pid_of NAME: pid recorded in $D/NAME.pid if that process is alive and is NAME.
pid_of() {
  local f=$D/$1.pid pid comm
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == "$1" ]] || return 1
  alive "$pid" || return 1
  echo "$pid"
}

# Processes named NAME whose command line mentions $D/ (in case a pid file is lost).
strays() {
  local name=$1 p cmd
  for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == "$name" ]] || continue
    alive "${p#/proc/}" || continue
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ $cmd == *"$D/"* ]] && echo "${p#/proc/}"
  done
  return 0
}

# stop NAME: SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL.
stop() {
  local name=$1 pids p i n_alive
  pids=$( { pid_of "$name" || true; strays "$name"; } | sort -u)
  [[ -n $pids ]] || { rm -f "$D/$name.pid"; return 0; }
  log "stopping $name (pid $(echo "$pids" | tr '\n' ' '))"
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    n_alive=0
    for p in $pids; do if alive "$p"; then n_alive=1; fi; done
    ((n_alive)) || break
    sleep 0.1
  done
  if ((n_alive)); then
    log "$name did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
      n_alive=0
      for p in $pids; do if alive "$p"; then n_alive=1; fi; done
      ((n_alive)) || break
      sleep 0.1
    done
    if ((n_alive)); then log "warning: $name still alive after SIGKILL"; fi
  fi
  rm -f "$D/$name.pid"
}

stop_all() {
  stop kube-apiserver
  stop etcd
}

# Remove the etcd data dir (it may live under /dev/shm behind a symlink).
remove_etcd_data() {
  local target
  if [[ -L $D/etcd-data ]]; then
    target=$(readlink "$D/etcd-data")
    case $target in
      /dev/shm/revoker-cp-etcd.*) rm -rf -- "$target" ;;
    esac
    rm -f -- "$D/etcd-data"
  elif [[ -d $D/etcd-data ]]; then
    rm -rf -- "$D/etcd-data"
  fi
}

# elapsed T0 T1: seconds between two $EPOCHREALTIME values, 1 decimal
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

readyz() {
  local port
  [[ -f $D/ports.env ]] || return 1
  port=$(sed -n 's/^APISERVER_PORT=//p' "$D/ports.env")
  [[ -n $port && -f $D/pki/ca.crt ]] || return 1
  [[ $(curl -s --max-time 2 --cacert "$D/pki/ca.crt" "https://127.0.0.1:$port/readyz" 2>/dev/null) == ok ]]
}

healthy() {
  pid_of etcd >/dev/null && pid_of kube-apiserver >/dev/null && [[ -f $D/admin.kubeconfig ]] && readyz
}

show_logs() {
  local f
  for f in "$D"/etcd.log "$D"/kube-apiserver.log; do
    [[ -f $f ]] || continue
    printf '\n===== tail -n 40 %s =====\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

fail_up() {
  log "error: $*"
  show_logs
  stop_all
  remove_etcd_data
  log "logs kept in $D; run '$0 down $D' to remove it"
  exit 1
}

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

gen_pki() {
  local P=$D/pki
  mkdir -p "$P"
  (
    cd "$P"
    umask 077
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 3650 -keyout ca.key -out ca.crt -subj "/CN=revoker-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req "${ec[@]}" -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -out apiserver.crt -extfile apiserver.ext
    openssl req "${ec[@]}" -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=clientAuth" >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -out admin.crt -extfile admin.ext
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext ./*.srl
  ) >"$D/pki.log" 2>&1 || { cat "$D/pki.log" >&2; die "openssl failed"; }
}

write_kubeconfig() {
  local port=$1 tmp
  b64() { base64 -w0 <"$1"; }
  tmp=$D/admin.kubeconfig.tmp
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: revoker-cp
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(b64 "$D/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$D/pki/admin.crt")
    client-key-data: $(b64 "$D/pki/admin.key")
contexts:
- name: revoker-cp
  context:
    cluster: revoker-cp
    user: admin
current-context: revoker-cp
EOF
  )
  mv -f "$tmp" "$D/admin.kubeconfig"
}

# start NAME ARGS...: detached from this script (own session, no tty, stdio to
# DIR/NAME.log) so it survives the script's exit; pid written to DIR/NAME.pid.
start() {
  local name=$1 pid c i
  shift
  # fd 8 (our lock) must not leak into the daemon, or the lock would outlive us.
  setsid "$BIN/$name" "$@" </dev/null >"$D/$name.log" 2>&1 8>&- &
  pid=$!
  # setsid execs in place unless it is a process-group leader, in which case it
  # forks; find the real process either way.
  for ((i = 0; i < 50; i++)); do
    c=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $c == "$name" ]] && break
    if [[ $c == setsid ]]; then
      local child
      child=$(pgrep -P "$pid" -x "$name" || true)
      [[ -n $child ]] && { pid=$child; break; }
    fi
    [[ -z $c ]] && break
    sleep 0.05
  done
  echo "$pid" >"$D/$name.pid"
}

# start_apiserver: kube-apiserver on the ports of $D/ports.env, against its etcd; waits until ready.
start_apiserver() {
  local EP AP i ok=0
  EP=$(sed -n 's/^ETCD_PORT=//p' "$D/ports.env")
  AP=$(sed -n 's/^APISERVER_PORT=//p' "$D/ports.env")
  log "starting kube-apiserver on 127.0.0.1:$AP"
  start kube-apiserver \
    --etcd-servers="http://127.0.0.1:$EP" \
    --bind-address=127.0.0.1 --secure-port="$AP" \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --cert-dir="$D/cert" \
    --tls-cert-file="$D/pki/apiserver.crt" --tls-private-key-file="$D/pki/apiserver.key" \
    --client-ca-file="$D/pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$AP" \
    --service-account-key-file="$D/pki/sa.pub" \
    --service-account-signing-key-file="$D/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --profiling=false
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    pid_of kube-apiserver >/dev/null || fail_up "kube-apiserver exited"
    pid_of etcd >/dev/null || fail_up "etcd exited"
    if readyz; then
      ok=1
      break
    fi
    sleep 0.2
  done
  ((ok)) || fail_up "kube-apiserver not ready after ${READY_TIMEOUT}s"
}

# --- subcommands -----------------------------------------------------------

cmd_up() {
  local t0=$EPOCHREALTIME t_pki t_etcd
  if healthy; then
    log "already up and ready ($D)"
    echo "export KUBECONFIG=$D/admin.kubeconfig"
    return 0
  fi

  log "ensuring binaries (hack/k8s-bins/build.sh)"
  BIN=$("$HACK/k8s-bins/build.sh") || die "building the Kubernetes binaries failed"
  [[ -x $BIN/etcd && -x $BIN/kube-apiserver ]] || die "binaries missing in $BIN"

  if [[ -e $D ]]; then
    log "$D exists but the control plane is not healthy; cleaning it up"
    stop_all
    remove_etcd_data
    rm -rf -- "$D"
  fi
  mkdir -p "$D" "$D/cert"

  log "generating PKI"
  gen_pki
  t_pki=$EPOCHREALTIME

  local ports EP PP AP
  ports=$(free_ports 3)
  read -r EP PP AP <<<"$ports"
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\n' "$EP" "$PP" "$AP" >"$D/ports.env"

  # etcd data on tmpfs when possible (behind a symlink so its path mentions DIR)
  if [[ -d /dev/shm && -w /dev/shm ]]; then
    ln -s "$(mktemp -d /dev/shm/revoker-cp-etcd.XXXXXX)" "$D/etcd-data"
  else
    mkdir -p "$D/etcd-data"
  fi

  log "starting etcd on 127.0.0.1:$EP"
  start etcd \
    --name=revoker-cp --data-dir="$D/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$EP" --advertise-client-urls="http://127.0.0.1:$EP" \
    --listen-peer-urls="http://127.0.0.1:$PP" --initial-advertise-peer-urls="http://127.0.0.1:$PP" \
    --initial-cluster="revoker-cp=http://127.0.0.1:$PP" \
    --unsafe-no-fsync=true --quota-backend-bytes=1073741824

  local i ok=0
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    pid_of etcd >/dev/null || fail_up "etcd exited"
    if curl -s --max-time 1 "http://127.0.0.1:$EP/health" 2>/dev/null | grep -q '"health":"true"'; then
      ok=1
      break
    fi
    sleep 0.2
  done
  ((ok)) || fail_up "etcd not healthy after ${READY_TIMEOUT}s"
  t_etcd=$EPOCHREALTIME

  start_apiserver

  write_kubeconfig "$AP"
  log "ready: https://127.0.0.1:$AP; took $(elapsed "$t0" "$t_pki")s PKI, $(elapsed "$t_pki" "$t_etcd")s etcd, $(elapsed "$t_etcd" "$EPOCHREALTIME")s kube-apiserver, $(elapsed "$t0" "$EPOCHREALTIME")s in all"
  echo "export KUBECONFIG=$D/admin.kubeconfig"
}

# Stop kube-apiserver, wait REVOKER_CP_DOWN_SECONDS (default 2), start it again on the same port
# against the same etcd (its data is kept): what clients see when the API server restarts.
cmd_restart-apiserver() {
  healthy || die "the control plane at $D is not up"
  BIN=$("$HACK/k8s-bins/build.sh") || die "building the Kubernetes binaries failed"
  stop kube-apiserver
  sleep "${REVOKER_CP_DOWN_SECONDS:-2}"
  start_apiserver
  log "kube-apiserver restarted"
}

# Freeze etcd (SIGSTOP) for REVOKER_CP_DOWN_SECONDS (default 2), then let it go on (SIGCONT):
# kube-apiserver cannot reach its storage meanwhile.
cmd_pause-etcd() {
  local pid
  healthy || die "the control plane at $D is not up"
  pid=$(pid_of etcd) || die "etcd is not running"
  log "freezing etcd (pid $pid) for ${REVOKER_CP_DOWN_SECONDS:-2}s"
  kill -STOP "$pid"
  sleep "${REVOKER_CP_DOWN_SECONDS:-2}"
  kill -CONT "$pid"
  log "etcd runs again"
}

cmd_down() {
  if [[ ! -e $D ]]; then
    log "nothing at $D"
    return 0
  fi
  stop_all
  remove_etcd_data
  rm -rf -- "$D"
  log "stopped; removed $D"
}

cmd_status() {
  local e a
  e=$(pid_of etcd || true)
  a=$(pid_of kube-apiserver || true)
  echo "dir:            $D"
  echo "etcd:           $(if [[ -n $e ]]; then echo "running (pid $e)"; else echo "not running"; fi)"
  echo "kube-apiserver: $(if [[ -n $a ]]; then echo "running (pid $a)"; else echo "not running"; fi)"
  if [[ -f $D/ports.env ]]; then
    echo "apiserver url:  https://127.0.0.1:$(sed -n 's/^APISERVER_PORT=//p' "$D/ports.env")"
    echo "etcd url:       http://127.0.0.1:$(sed -n 's/^ETCD_PORT=//p' "$D/ports.env")"
  fi
  if [[ -n $e && -n $a ]] && readyz; then
    echo "readyz:         ok"
    echo "kubeconfig:     $D/admin.kubeconfig"
    return 0
  fi
  echo "readyz:         not ready"
  return 1
}

# --- main ------------------------------------------------------------------

[[ $# -ge 1 && $# -le 2 ]] || usage
CMD=$1
D=${2:-${REVOKER_CP_DIR:-/tmp/revoker-cp}}
[[ $D == /* ]] || D=$PWD/$D
D=${D%/}
[[ -n $D && $D != / ]] || die "refusing DIR=/"

case $CMD in
  up | down | status | restart-apiserver | pause-etcd) ;;
  *) usage ;;
esac

# Serialise up/down on the same DIR (the lock file sits next to DIR, as down
# removes DIR itself). status does not lock. The wait covers a cold build.
if [[ $CMD != status ]]; then
  mkdir -p "$(dirname "$D")"
  exec 8>"$D.lock"
  flock -w 1800 8 || die "could not lock $D.lock within 1800s"
fi

"cmd_$CMD"
