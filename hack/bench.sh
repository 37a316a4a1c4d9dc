#!/usr/bin/env bash
# Benchmark (figures, not assertions) on the quickstart environment: the real control plane, the
# provider simulator and the release operator (started fresh for each run by hack/bench.py).
#
#   hack/bench.sh [N[,N...]] [LATENCY_MS[,LATENCY_MS...]] [SHARDS[,SHARDS...]]   default: 1000 0 1
#   BENCH_CLIENTS=8 BENCH_IDLE=30 BENCH_OPERATOR_FLAGS="--concurrency 8 ..." hack/bench.sh 100,1000,5000 0,50
#
# Each run prints one table: the floor (N creates + N status patches by a minimal client, in the
# same run) and the ratio to it, revocations/s, API-server requests per revocation by verb and
# resource (kube-apiserver's apiserver_request_total), status writes (409s counted), revoking and
# login calls at the simulator, Atlas digest challenges, operator CPU seconds and memory, and
# reconciles / requests / provider calls in idle time. See docs/benchmarks.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIZES=${1:-1000}
LATENCIES=${2:-0}
SHARDS=${3:-1}
DIR=${REVOKER_QUICKSTART_DIR:-/tmp/revoker-quickstart}
FLAGS=${BENCH_OPERATOR_FLAGS:---concurrency 8 --provider-qps 100 --provider-concurrency 8}
trap 'hack/quickstart.sh down >/dev/null 2>&1 || true' EXIT

cargo build --quiet --release --workspace --bins
# The quickstart builds and runs the debug binaries; hack/bench.py runs the release operator.
hack/quickstart.sh --keep >/dev/null
export KUBECONFIG=$DIR/cp/admin.kubeconfig PATH="$(hack/bin-path.sh):$PATH"
kill "$(cat "$DIR/operator.pid")"; sleep 1
python3 hack/bench.py --n "$SIZES" --latency "$LATENCIES" --shards "$SHARDS" \
  --clients "${BENCH_CLIENTS:-8}" --idle "${BENCH_IDLE:-60}" \
  --kubeconfig "$KUBECONFIG" --operator-kubeconfig "$DIR/operator.kubeconfig" \
  --operator-log "$DIR/operator.log" \
  --operator-cmd "target/release/revoker run --allowed-host http://127.0.0.1:18080 --metrics-addr 127.0.0.1:18081 --log-format json --log-level warn --cluster-resource-namespace revoker-system $FLAGS"
