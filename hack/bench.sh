#!/usr/bin/env bash
# Benchmark (figures, not assertions) on the quickstart environment:
#   - throughput: N TokenRevocations (Onezone, idempotent) from `kubectl apply` to all Succeeded
#   - provider requests per revocation (simulator call log) and API-server-visible attempts
#   - operator memory (VmRSS / VmHWM) after the run
#   - idle reconcile rate (revoker_reconciles_total over 30 s with nothing to do)
#   - API-server requests per revocation by verb/resource/code (kube-apiserver's own
#     apiserver_request_total, before and after the batch; kubectl's apply and this script's
#     polling are the GET/POST/LIST rows of tokenrevocations, everything else is the operator)
#   hack/bench.sh [N]     default N=200
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-200}
DIR=${REVOKER_QUICKSTART_DIR:-/tmp/revoker-quickstart}
NS=revoker-bench
trap 'hack/quickstart.sh down >/dev/null 2>&1 || true' EXIT

cargo build --quiet --release --workspace --bins
# The quickstart builds and runs the debug binaries; swap in the release operator for figures.
hack/quickstart.sh --keep >/dev/null
export KUBECONFIG=$DIR/cp/admin.kubeconfig PATH="$(hack/bin-path.sh):$PATH"
kill "$(cat "$DIR/operator.pid")"; sleep 1
KUBECONFIG=$DIR/operator.kubeconfig setsid target/release/revoker run --allowed-host http://127.0.0.1:18080 \
  --metrics-addr 127.0.0.1:18081 --log-format json --log-level warn --cluster-resource-namespace revoker-system \
  --concurrency 8 --provider-qps 100 >"$DIR/operator.log" 2>&1 < /dev/null &
echo $! >"$DIR/operator.pid"
pid=$(cat "$DIR/operator.pid")

kubectl create namespace "$NS" >/dev/null
kubectl apply -n "$NS" -f examples/providers.yaml >/dev/null
for _ in $(seq 1 100); do
  [[ $(kubectl get revocationprovider onezone -n "$NS" -o jsonpath='{.status.conditions[0].status}' 2>/dev/null) == True ]] && break
  sleep 0.2
done
curl -fsS -X POST http://127.0.0.1:18080/_sim/calls/reset >/dev/null

apiserver_requests() { kubectl get --raw /metrics | grep '^apiserver_request_total{' ; }
requests_before=$(mktemp) requests_after=$(mktemp)
apiserver_requests >"$requests_before"
manifest=$(mktemp)
for i in $(seq 1 "$N"); do
  printf 'apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {name: bench-%d}\nspec:\n  providerRef: {name: onezone}\n  onezone: {scope: CurrentUserTemporaryTokens}\n---\n' "$i"
done >"$manifest"
start=$(date +%s.%N)
kubectl apply -n "$NS" -f "$manifest" >/dev/null
applied=$(date +%s.%N)
done_count=0
for _ in $(seq 1 600); do
  done_count=$(kubectl get tokenrevocations -n "$NS" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c Succeeded || true)
  [[ $done_count -ge $N ]] && break
  sleep 0.5
done
end=$(date +%s.%N)
apiserver_requests >"$requests_after"
calls=$(curl -fsS 'http://127.0.0.1:18080/_sim/calls?method=DELETE&path=/api/v3/onezone/user/tokens/temporary' | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
attempts=$(kubectl get tokenrevocations -n "$NS" -o jsonpath='{range .items[*]}{.status.attempts}{"\n"}{end}' | awk '{s+=$1} END {print s}')
rss=$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2 " " $3}' "/proc/$pid/status")
r0=$(curl -fsS http://127.0.0.1:18081/metrics | awk '/^revoker_reconciles_total/ {s+=$2} END {print s}')
sleep 30
r1=$(curl -fsS http://127.0.0.1:18081/metrics | awk '/^revoker_reconciles_total/ {s+=$2} END {print s}')

python3 - "$N" "$start" "$applied" "$end" "$done_count" "$calls" "$attempts" "$rss" "$hwm" "$r0" "$r1" <<'PY'
import sys
n, start, applied, end, done, calls, attempts, rss, hwm, r0, r1 = sys.argv[1:]
n = int(n); total = float(end) - float(start)
print(f"revocations:               {done}/{n} Succeeded")
print(f"apply -> all Succeeded:    {total:.1f} s ({int(done)/total:.1f} revocations/s; kubectl apply itself {float(applied)-float(start):.1f} s)")
print(f"provider revoking calls:   {calls} ({int(calls)/n:.2f} per revocation)")
print(f"recorded attempts:         {attempts} ({int(attempts)/n:.2f} per revocation)")
print(f"operator memory:           VmRSS {rss}, peak VmHWM {hwm}")
print(f"idle reconciles:           {float(r1)-float(r0):.0f} in 30 s ({(float(r1)-float(r0))/30:.2f}/s) with {n} finished objects")
PY
python3 - "$N" "$requests_before" "$requests_after" <<'PY'
import collections, re, sys
n = int(sys.argv[1])
def load(path):
    out = collections.Counter()
    for line in open(path):
        labels, value = line.rsplit(" ", 1)
        l = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if l.get("resource") in ("tokenrevocations", "revocationproviders", "secrets", "events", "leases"):
            res = l["resource"] + ("/" + l["subresource"] if l.get("subresource") else "")
            out[(l["verb"], res, l["code"])] += float(value)
    return out
delta = load(sys.argv[3]); delta.subtract(load(sys.argv[2]))
rows = sorted((k, v) for k, v in delta.items() if v > 0)
print("API-server requests during the batch (per revocation):")
operator = 0
for (verb, res, code), v in rows:
    by_kubectl = res == "tokenrevocations" and verb in ("GET", "POST", "LIST")
    if not by_kubectl and res != "leases":
        operator += v
    print(f"  {verb:6} {res:26} {code}  {v/n:6.2f}{'   (kubectl apply / polling)' if by_kubectl else ''}")
print(f"  operator requests per revocation (without Leases): {operator/n:.2f}")
PY
rm -f "$requests_before" "$requests_after"
rm -f "$manifest"
