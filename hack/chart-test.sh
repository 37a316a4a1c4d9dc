#!/usr/bin/env bash
# Tests of the Helm chart charts/revoker.
#
#   hack/chart-test.sh              static checks (no cluster needed)
#   hack/chart-test.sh --cluster    static checks, then apply_to_cluster() against $KUBECONFIG
#
# Static checks:
#   lint        helm lint --strict, with the default values and each charts/revoker/ci/*.yaml
#   template    helm template with the defaults and each ci/*.yaml, plus assertions on the output
#               (security context, args, PDB, ServiceMonitor gating, NetworkPolicy, RBAC, ...)
#   schema      values that must be rejected (replicaCount=two, unknown keys, bad enums, ...)
#   values-table  every leaf key of values.yaml is in the README's values table, which is current
#   rbac-sync   the chart's RBAC (release revoker, namespace revoker-system) equals deploy/rbac/
#   crd-sync    templates/crds.yaml equals `revoker crd` (crds/revoker.dev.yaml); skipped while
#               crds/revoker.dev.yaml does not exist. CRD_SOURCE=cargo compares with
#               `cargo run -q -- crd` instead.
#
# Environment: HELM (default: helm on PATH, else the hack/helm/build.sh output), KUBECTL (default:
# kubectl on PATH), KUBECONFIG (for --cluster), PYTHON (default python3, needs PyYAML),
# CHART_TEST_KEEP=1 keeps the rendered manifests (their directory is printed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/charts/revoker
RELEASE=revoker
NAMESPACE=revoker-system
PYTHON=${PYTHON:-python3}

cluster=0
for arg in "$@"; do
  case $arg in
    --cluster) cluster=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--cluster]" >&2; exit 2 ;;
  esac
done

if [[ -z ${HELM:-} ]]; then
  HELM=$(command -v helm || true)
  cache_helm=${REVOKER_BIN_CACHE:-$HOME/.cache/revoker}/helm-v3.22.0/helm
  [[ -n $HELM || ! -x $cache_helm ]] || HELM=$cache_helm
fi
[[ -n ${HELM:-} && -x $(command -v "$HELM" || true) ]] || {
  echo "helm not found: set HELM or put helm on PATH (hack/helm/build.sh builds v3.22.0)" >&2
  exit 2
}
"$PYTHON" -c 'import yaml' 2>/dev/null || { echo "$PYTHON with PyYAML is required" >&2; exit 2; }

OUT=$(mktemp -d "${TMPDIR:-/tmp}/chart-test.XXXXXX")
if [[ ${CHART_TEST_KEEP:-0} == 1 ]]; then
  echo "rendered manifests are kept in $OUT"
else
  trap 'rm -rf "$OUT"' EXIT
fi

passed=() failed=() skipped=()
pass() { passed+=("$1"); printf '  ok    %s\n' "$1"; }
fail() { failed+=("$1"); printf '  FAIL  %s\n' "$1"; }
skip() { skipped+=("$1"); printf '  skip  %s\n' "$1"; }
section() { printf '\n== %s\n' "$1"; }

# run NAME CMD...: run CMD quietly; on failure print its output and record NAME as failed.
run() {
  local name=$1 log
  shift
  log=$OUT/log.$((${#passed[@]} + ${#failed[@]} + ${#skipped[@]}))
  if "$@" >"$log" 2>&1; then
    pass "$name"
  else
    fail "$name"
    sed 's/^/        /' "$log" | tail -n 40
  fi
}

helm_template() { "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@"; }

# The value sets: "default" plus one per charts/revoker/ci/*.yaml.
sets=(default)
for f in "$CHART"/ci/*.yaml; do sets+=("$(basename "$f" .yaml)"); done
set_args() { [[ $1 == default ]] || printf '%s\n' --values "$CHART/ci/$1.yaml"; }

# --- lint ---------------------------------------------------------------------------------------
section "helm lint --strict ($("$HELM" version --short 2>/dev/null))"
for s in "${sets[@]}"; do
  mapfile -t a < <(set_args "$s")
  run "lint $s" "$HELM" lint --strict "$CHART" --namespace "$NAMESPACE" "${a[@]}"
done

# --- template + assertions ----------------------------------------------------------------------
# check_render SET FILE: assertions on the rendered manifests, derived from the effective values.
check_render() {
  local s=$1 file=$2 values_file=""
  [[ $s == default ]] || values_file=$CHART/ci/$s.yaml
  "$PYTHON" - "$CHART/values.yaml" "$values_file" "$file" "$RELEASE" "$NAMESPACE" <<'PY'
import sys, yaml

defaults_path, override_path, rendered, release, namespace = sys.argv[1:6]

def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a.get(k), v) if k in a else v
        return out
    return b

v = yaml.safe_load(open(defaults_path))
if override_path:
    v = merge(v, yaml.safe_load(open(override_path)) or {})
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

g = v.get("global") or {}
common = {**(g.get("commonLabels") or {}), **(v.get("commonLabels") or {})}
# extraObjects are the user's: the ci values mark them with this label, and they get no chart labels.
EXTRA = "chart-test/extra-object"
extra = [d for d in docs if (d.get("metadata", {}).get("labels") or {}).get(EXTRA) == "true"]
check(len(extra) == len(v.get("extraObjects") or []), f"{len(extra)} extraObjects rendered, want {len(v.get('extraObjects') or [])}")
for d in extra:
    check(d["metadata"].get("namespace") in (None, namespace), f"extraObjects tpl: namespace {d['metadata'].get('namespace')}")
    check("{{" not in str(d), f"extraObjects not rendered through tpl: {d}")
docs = [d for d in docs if d not in extra]
by_kind = {}
for d in docs:
    check(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"),
          f"object without apiVersion/kind/name: {str(d)[:120]}")
    by_kind.setdefault(d["kind"], []).append(d)
    labels = d["metadata"].get("labels") or {}
    for l in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"):
        check(l in labels, f"{d['kind']}/{d['metadata']['name']} lacks label {l}")
    for k, val in common.items():
        check(labels.get(k) == val, f"{d['kind']}/{d['metadata']['name']} lacks commonLabels {k}={val} (global merged, local wins)")
names = {(d["kind"], d["metadata"]["name"]) for d in docs}
def one(kind):
    objs = by_kind.get(kind, [])
    check(len(objs) == 1, f"expected 1 {kind}, found {len(objs)}")
    return objs[0] if objs else {}

# Deployment
dep = one("Deployment")
spec = dep.get("spec", {})
check(spec.get("replicas") == v["replicaCount"], "replicas != replicaCount")
pod = spec.get("template", {}).get("spec", {})
sel = spec.get("selector", {}).get("matchLabels", {})
plabels = spec.get("template", {}).get("metadata", {}).get("labels", {})
check(sel and all(plabels.get(k) == x for k, x in sel.items()), "pod labels do not match the selector")
for k, x in (v.get("podLabels") or {}).items():
    check(plabels.get(k) == x, f"podLabels {k} missing")
check((spec.get("template", {}).get("metadata", {}).get("annotations") or {}) == (v.get("podAnnotations") or {}), "podAnnotations")
check(spec.get("revisionHistoryLimit") == v["revisionHistoryLimit"], "revisionHistoryLimit")
check(spec.get("strategy", {}) == v["strategy"], "strategy")
check((pod.get("volumes") or []) == v["volumes"], "volumes")
psc = pod.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, "pod securityContext runAsNonRoot/runAsUser")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
check("fsGroup" in psc, "fsGroup")
c = (pod.get("containers") or [{}])[0]
check(c.get("securityContext") == v["containerSecurityContext"], "container securityContext == containerSecurityContext")
check((c.get("volumeMounts") or []) == v["volumeMounts"], "volumeMounts")
csc = c.get("securityContext", {})
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check(c.get("resources") == v["resources"], "resources")
image = v["image"]["repository"] + (("@" + v["image"]["digest"]) if v["image"]["digest"] else ":" + (v["image"]["tag"] or "0.1.0"))
check(c.get("image") == image, f"image {c.get('image')} != {image}")
check(c.get("imagePullPolicy") == v["image"]["pullPolicy"], "imagePullPolicy")
args = c.get("args", [])
port = v["metrics"]["port"]
check(args[:1] == ["run"], "first arg must be run")
fmt_num = lambda x: str(x)
def log_level():
    if v["log"]["level"]:
        return v["log"]["level"]
    gl = g.get("logLevel", "")
    if isinstance(gl, int):
        return "trace" if gl >= 6 else "debug" if gl >= 4 else "info"
    return gl or "info"
watched = v["watchNamespaces"]
if watched:
    scope = [f"--namespace={','.join(watched)}"]
    check(not any(a.startswith("--cluster-resource-namespace") for a in args), "no --cluster-resource-namespace in namespace-scoped mode")
else:
    scope = [f"--cluster-resource-namespace={v['clusterResourceNamespace'] or namespace}"]
    check(not any(a.startswith("--namespace") for a in args), "no --namespace when watching every namespace")
expect = scope + [
    f"--metrics-addr=0.0.0.0:{port}",
    f"--log-format={v['log']['format']}",
    f"--log-level={log_level()}",
    f"--concurrency={v['concurrency']}",
    f"--provider-qps={fmt_num(v['providerQPS'])}",
    f"--provider-concurrency={fmt_num(v['providerConcurrency'])}",
    f"--request-timeout={v['requestTimeoutSeconds']}",
] + [f"--allowed-host={h}" for h in v["egress"]["allowedHosts"]] + list(v["extraArgs"])
le = v["leaderElection"]
le_ns = le["namespace"] or namespace
if le["enabled"]:
    expect += ["--leader-elect=true", f"--leader-election-namespace={le_ns}", f"--lease-name={le['leaseName']}",
               f"--lease-duration={le['leaseDurationSeconds']}"]
else:
    expect += ["--leader-elect=false"]
for a in expect:
    check(a in args, f"container args lack {a!r}: {args}")
flags = [a.split("=")[0] for a in args if a.startswith("--") and not a.startswith("--allowed-host")]
check(len(flags) == len(set(flags)), f"a flag is given twice: {args}")
env = {e["name"]: e for e in c.get("env", [])}
check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name", "env POD_NAME")
check(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace", "env POD_NAMESPACE")
for e in v["extraEnv"]:
    check(env.get(e["name"]) == e, f"extraEnv {e['name']}")
ports = c.get("ports", [])
check(ports and ports[0].get("name") == "http-metrics" and ports[0].get("containerPort") == port, "container port http-metrics")
check(c.get("livenessProbe", {}).get("httpGet") == {"path": "/healthz", "port": "http-metrics"}, "liveness /healthz")
check(c.get("readinessProbe", {}).get("httpGet") == {"path": "/readyz", "port": "http-metrics"}, "readiness /readyz")
for key in ("nodeSelector", "tolerations", "affinity"):
    check((pod.get(key) or type(v[key])()) == v[key], f"pod {key}")
pull = []
for x in (g.get("imagePullSecrets") or []) + v["imagePullSecrets"]:
    if x not in pull:
        pull.append(x)
check((pod.get("imagePullSecrets") or []) == pull, f"imagePullSecrets {pod.get('imagePullSecrets')} != global + local {pull}")
check(pod.get("priorityClassName", "") == (v["priorityClassName"] or g.get("priorityClassName") or ""), "priorityClassName (local, else global)")
tsc = pod.get("topologySpreadConstraints") or []
check(len(tsc) == len(v["topologySpreadConstraints"]), "topologySpreadConstraints")
for t in tsc:
    check(t.get("labelSelector", {}).get("matchLabels") == sel, "topologySpreadConstraints labelSelector filled in")
sa_name = v["serviceAccount"]["name"] or dep["metadata"]["name"]
check(pod.get("serviceAccountName") == sa_name, "serviceAccountName")

# ServiceAccount
if v["serviceAccount"]["create"]:
    sa = one("ServiceAccount")
    check(sa.get("metadata", {}).get("name") == sa_name, "ServiceAccount name")
    check((sa.get("metadata", {}).get("annotations") or {}) == v["serviceAccount"]["annotations"], "ServiceAccount annotations")

# Service
svc = one("Service")
sp = (svc.get("spec", {}).get("ports") or [{}])[0]
check(sp.get("name") == "http-metrics" and sp.get("port") == port, "Service port http-metrics")
check(svc.get("spec", {}).get("selector") == sel, "Service selector")

# PDB
pdbs = by_kind.get("PodDisruptionBudget", [])
want_pdb = v["podDisruptionBudget"]["enabled"] and v["replicaCount"] > 1
check(len(pdbs) == (1 if want_pdb else 0), f"PodDisruptionBudget count {len(pdbs)}, want {int(want_pdb)}")
for p in pdbs:
    check(p["spec"].get("minAvailable") == v["podDisruptionBudget"]["minAvailable"], "PDB minAvailable")
    check(p["spec"].get("selector", {}).get("matchLabels") == sel, "PDB selector")

# ServiceMonitor: rendered only when the API is detected (this render has no --api-versions)
check("ServiceMonitor" not in by_kind, "ServiceMonitor rendered although monitoring.coreos.com/v1 is not available")

# NetworkPolicy
nps = by_kind.get("NetworkPolicy", [])
check(len(nps) == (1 if v["networkPolicy"]["enabled"] else 0), "NetworkPolicy count")
for np in nps:
    s = np["spec"]
    np_cfg = v["networkPolicy"]
    check(s["podSelector"]["matchLabels"] == sel, "NetworkPolicy podSelector")
    check(sorted(s["policyTypes"]) == ["Egress", "Ingress"], "NetworkPolicy policyTypes")
    check(len(s["ingress"]) == 1 and s["ingress"][0]["ports"] == [{"port": "http-metrics", "protocol": "TCP"}], "ingress only to the metrics port")
    check(s["ingress"][0].get("from", []) == np_cfg["metricsIngressFrom"], "ingress from selectors")
    eg = s["egress"]
    check({(p["port"], p["protocol"]) for p in eg[0]["ports"]} == {(53, "UDP"), (53, "TCP")}, "DNS egress")
    check(eg[0].get("to", []) == np_cfg["dnsTo"], "DNS egress peers")
    check([p["port"] for p in eg[1]["ports"]] == np_cfg["apiServer"]["ports"], "API server ports")
    check([t["ipBlock"]["cidr"] for t in eg[1]["to"]] == np_cfg["apiServer"]["cidrs"], "API server CIDRs")
    check([p["port"] for p in eg[2]["ports"]] == np_cfg["providerEgressPorts"], "provider ports")
    check([t["ipBlock"]["cidr"] for t in eg[2]["to"]] == np_cfg["providerEgressCIDRs"], "provider CIDRs")
    check(eg[3:] == np_cfg["extraEgress"], "extraEgress")

# RBAC
rb = v["rbac"]
full = dep["metadata"]["name"]
cluster_wide = not watched
check((("ClusterRole", full) in names) == cluster_wide and (("ClusterRoleBinding", full) in names) == cluster_wide,
      "controller ClusterRole/Binding exactly when no watchNamespaces")
scoped = [d for d in docs if d["kind"] in ("Role", "RoleBinding") and d["metadata"]["name"] == full]
check(sorted(d["metadata"]["namespace"] for d in scoped if d["kind"] == "Role") == sorted(watched), "a Role per watched namespace")
check(sorted(d["metadata"]["namespace"] for d in scoped if d["kind"] == "RoleBinding") == sorted(watched), "a RoleBinding per watched namespace")
for d in scoped:
    if d["kind"] == "Role":
        res = {r for rule in d["rules"] for r in rule["resources"]}
        check(not res & {"namespaces", "clusterrevocationproviders", "clusterrevocationproviders/status"}, f"namespaced Role holds cluster-scoped resources: {res}")
    else:
        check(d["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": full}, "RoleBinding roleRef")
le_objs = [d for d in docs if d["kind"] in ("Role", "RoleBinding") and d["metadata"]["name"] == full + "-leader-election"]
if le["enabled"]:
    check(len(le_objs) == 2 and all(d["metadata"]["namespace"] == le_ns for d in le_objs), "leader-election Role/RoleBinding in the lease namespace")
    for d in le_objs:
        if d["kind"] == "Role":
            named = [r for r in d["rules"] if r.get("resourceNames")]
            check(named and named[0]["resourceNames"] == [le["leaseName"]], "Role resourceNames = lease name")
else:
    check(not le_objs, "no leader-election Role when leaderElection.enabled=false")
for d in docs:
    if d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        check(d["subjects"] == [{"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}], f"{d['kind']} subject")
agg = {d["metadata"]["name"] for d in by_kind.get("ClusterRole", [])} & {full + "-view", full + "-edit"}
want_agg = {full + "-view"} if rb["aggregateToView"] else set()
want_agg |= {full + "-edit"} if rb["aggregateToEdit"] else set()
check(agg == want_agg, f"aggregated ClusterRoles {sorted(agg)}, want {sorted(want_agg)}")

# CRDs
crds = by_kind.get("CustomResourceDefinition", [])
if not v["crds"]["enabled"]:
    check(not crds, "CRDs rendered with crds.enabled=false")
for crd in crds:
    ann = crd["metadata"].get("annotations") or {}
    check((ann.get("helm.sh/resource-policy") == "keep") == bool(v["crds"]["keep"]), f"CRD {crd['metadata']['name']} keep annotation")
    check(crd["spec"]["group"] == "revoker.dev", "CRD group")

# Namespaced objects go to the release namespace (the leader-election ones to the lease namespace)
for d in docs:
    if d["kind"] in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
        check(d["metadata"].get("namespace") == namespace, f"{d['kind']} namespace")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(docs)} objects: " + ", ".join(f"{k}={len(x)}" for k, x in sorted(by_kind.items())))
PY
}

section "helm template"
for s in "${sets[@]}"; do
  mapfile -t a < <(set_args "$s")
  if helm_template "${a[@]}" >"$OUT/$s.yaml" 2>"$OUT/$s.err"; then
    run "template $s" check_render "$s" "$OUT/$s.yaml"
  else
    fail "template $s"
    sed 's/^/        /' "$OUT/$s.err"
  fi
done

# args_accepted FILE: the Deployment's args in a rendered FILE are accepted by the real binary
# (clap exits 2 on a usage error; with no cluster the binary then fails later with exit code 1).
REVOKER_BIN=${REVOKER_BIN:-$ROOT/target/debug/revoker}
args_accepted() {
  local args rc
  mapfile -t args < <("$PYTHON" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Deployment":
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"]))
' "$1")
  rc=0
  KUBECONFIG=/nonexistent timeout 10 "$REVOKER_BIN" "${args[@]}" >"$1.run" 2>&1 || rc=$?
  [[ $rc != 2 ]] || { cat "$1.run"; return 1; }
  grep -q 'kubeconfig' "$1.run" || { echo "unexpected: $(tail -c 300 "$1.run")"; return 1; }
}
if [[ -x $REVOKER_BIN ]]; then
  for s in "${sets[@]}"; do
    [[ -f $OUT/$s.yaml ]] && run "revoker accepts the Deployment args of $s" args_accepted "$OUT/$s.yaml"
  done
else
  fail "revoker binary $REVOKER_BIN not built (cargo build --bin revoker)"
fi

# ServiceMonitor gating: absent without the API (checked above), present when the API is
# advertised, and when forced.
# sm_rendered WANT ARGS...: helm template ARGS renders WANT ServiceMonitors.
sm_rendered() {
  local want=$1 n
  shift
  n=$(helm_template "$@" | grep -c '^kind: ServiceMonitor$' || true)
  [[ $n == "$want" ]] || { echo "found $n ServiceMonitors, want $want"; return 1; }
}
mon=$CHART/ci/monitoring-networkpolicy-values.yaml
run "ServiceMonitor rendered when monitoring.coreos.com/v1 is available" \
  sm_rendered 1 --values "$mon" --api-versions monitoring.coreos.com/v1/ServiceMonitor
run "ServiceMonitor rendered with serviceMonitor.force=true" sm_rendered 1 --values "$mon" --set serviceMonitor.force=true
run "ServiceMonitor not rendered when disabled" sm_rendered 0 --api-versions monitoring.coreos.com/v1/ServiceMonitor

# monitoring_templates: PrometheusRule and dashboard ConfigMap absent by default; when enabled, the
# rule carries its labels and the ConfigMap the sidecar label (default and custom) and the dashboard JSON.
monitoring_templates() {
  local off on custom
  off=$(helm_template --api-versions monitoring.coreos.com/v1/PrometheusRule)
  ! grep -q '^kind: PrometheusRule$' <<<"$off" || { echo "PrometheusRule rendered by default"; return 1; }
  ! grep -q 'grafana_dashboard' <<<"$off" || { echo "dashboard ConfigMap rendered by default"; return 1; }
  on=$(helm_template --set prometheusRule.enabled=true --set prometheusRule.labels.release=kps \
    --set grafanaDashboard.enabled=true --set grafanaDashboard.annotations.grafana_folder=Revoker)
  [[ $(grep -c '^kind: PrometheusRule$' <<<"$on") == 1 ]] || { echo "no PrometheusRule when enabled"; return 1; }
  grep -q '^    release: kps$' <<<"$on" || { echo "prometheusRule.labels missing"; return 1; }
  grep -q '^    grafana_dashboard: "1"$' <<<"$on" || { echo "sidecar label grafana_dashboard=1 missing"; return 1; }
  grep -q '^    grafana_folder: Revoker$' <<<"$on" || { echo "grafanaDashboard.annotations missing"; return 1; }
  printf '%s\n' "$on" >"$OUT/monitoring-on.yaml"
  "$PYTHON" - "$ROOT/charts/revoker/dashboards/revoker.json" "$OUT/monitoring-on.yaml" <<'PY' || { echo "ConfigMap JSON != dashboards/revoker.json"; return 1; }
import json, sys, yaml
cm = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d and d["kind"] == "ConfigMap" and "revoker.json" in d.get("data", {})]
sys.exit(0 if len(cm) == 1 and json.loads(cm[0]["data"]["revoker.json"]) == json.load(open(sys.argv[1])) else 1)
PY
  custom=$(helm_template --set grafanaDashboard.enabled=true --set grafanaDashboard.labelKey=dashboards \
    --set grafanaDashboard.labelValue=revoker --set grafanaDashboard.namespace=grafana)
  grep -q '^    dashboards: "revoker"$' <<<"$custom" || { echo "custom sidecar label missing"; return 1; }
  grep -q '^  namespace: grafana$' <<<"$custom" || { echo "grafanaDashboard.namespace ignored"; return 1; }
}
run "PrometheusRule and Grafana dashboard ConfigMap: off by default, labels/annotations/namespace when on" monitoring_templates

# --- schema and value checks that must fail -----------------------------------------------------
section "values that must be rejected"
# must_fail NAME TEXT1 TEXT2 ARGS...: helm template ARGS must fail with an error containing both
# fixed strings TEXT1 and TEXT2.
must_fail() {
  local name=$1 t1=$2 t2=$3 err
  shift 3
  if err=$(helm_template "$@" 2>&1 >/dev/null); then
    fail "$name (helm template succeeded)"
  elif grep -Fq -- "$t1" <<<"$err" && grep -Fq -- "$t2" <<<"$err"; then
    pass "$name"
  else
    fail "$name (unexpected error)"
    printf '%s\n' "$err" | tail -n 10 | sed 's/^/        /'
  fi
}
SCHEMA="don't meet the specifications of the schema"
must_fail "schema: replicaCount=two" "$SCHEMA" "at '/replicaCount': got string, want integer" --set replicaCount=two
must_fail "schema: unknown top-level key" "$SCHEMA" "additional properties 'replicas' not allowed" --set replicas=2
must_fail "schema: unknown nested key" "$SCHEMA" "at '/crds': additional properties 'install' not allowed" --set crds.install=true
must_fail "schema: crds.enabled must be a boolean" "$SCHEMA" "at '/crds/enabled': got string, want boolean" --set-string crds.enabled=yes
must_fail "schema: log.format enum" "$SCHEMA" "at '/log/format': value must be one of" --set log.format=xml
must_fail "schema: metrics.port range" "$SCHEMA" "at '/metrics/port': maximum" --set metrics.port=70000
must_fail "schema: egress.allowedHosts must be a list" "$SCHEMA" "at '/egress/allowedHosts': got string, want array" --set egress.allowedHosts=example.com
must_fail "schema: egress.allowedHosts entries are hosts, not URLs with paths" "$SCHEMA" "at '/egress/allowedHosts/0'" --set 'egress.allowedHosts={https://example.com/api}'
must_fail "schema: image.pullPolicy enum" "$SCHEMA" "at '/image/pullPolicy': value must be one of" --set image.pullPolicy=Sometimes
must_fail "schema: providerQPS is a whole number" "$SCHEMA" "at '/providerQPS'" --set providerQPS=2.5
must_fail "schema: podDisruptionBudget.minAvailable number or percentage" "$SCHEMA" "at '/podDisruptionBudget/minAvailable'" --set-string podDisruptionBudget.minAvailable=half
must_fail "replicaCount>1 needs leader election" "execution error" "requires leaderElection.enabled=true" --set leaderElection.enabled=false
must_fail "serviceAccount.name required when create=false" "execution error" "serviceAccount.name is required" --set serviceAccount.create=false
must_fail "securityContext refused, naming the two contexts" "execution error" "set the container's with containerSecurityContext and the pod's with podSecurityContext" --set securityContext.runAsNonRoot=true
must_fail "rbac.aggregateClusterRoles refused, naming its successors" "execution error" "rbac.aggregateToView (default true) creates the view role, rbac.aggregateToEdit" --set rbac.aggregateClusterRoles=true
must_fail "clusterResourceNamespace refused in namespace-scoped mode" "execution error" "clusterResourceNamespace has no effect with watchNamespaces" --set 'watchNamespaces={team-a}' --set clusterResourceNamespace=revoker-cluster
must_fail "schema: watchNamespaces entries are namespace names" "$SCHEMA" "at '/watchNamespaces/0'" --set 'watchNamespaces={Team_A}'
must_fail "schema: clusterResourceNamespace is a namespace name" "$SCHEMA" "at '/clusterResourceNamespace'" --set clusterResourceNamespace=Not/A/Namespace
must_fail "schema: global.logLevel is a filter or a verbosity number" "$SCHEMA" "at '/global/logLevel'" --set global.logLevel=-1
must_fail "schema: strategy.type enum" "$SCHEMA" "at '/strategy/type': value must be one of" --set strategy.type=BlueGreen
must_fail "schema: volumeMounts need a mountPath" "$SCHEMA" "at '/volumeMounts/0'" --set 'volumeMounts[0].name=ca'
must_fail "schema: revisionHistoryLimit is a count" "$SCHEMA" "at '/revisionHistoryLimit'" --set revisionHistoryLimit=-1

section "sharding (examples/helm/sharded-values.yaml)"
SHARDED=$ROOT/examples/helm/sharded-values.yaml
# sharded_render FILE: one Deployment, PDB and Lease per shard; each shard's args are the
# unsharded ones plus its selector, its own Lease, and --check-providers on the first only.
sharded_render() {
  "$PYTHON" - "$SHARDED" "$1" "$OUT/default.yaml" "$RELEASE" <<'PY'
import sys, yaml
values, rendered, default, release = sys.argv[1:5]
shards = yaml.safe_load(open(values))["sharding"]["shards"]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
plain = [d for d in yaml.safe_load_all(open(default)) if d and d["kind"] == "Deployment"][0]
full = plain["metadata"]["name"]
plain_args = plain["spec"]["template"]["spec"]["containers"][0]["args"]
errors = []
deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
pdbs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
want = [f"{full}-{s['name']}" for s in shards]
if sorted(deps) != sorted(want):
    errors.append(f"Deployments {sorted(deps)}, want {sorted(want)}")
if sorted(pdbs) != sorted(want):
    errors.append(f"PodDisruptionBudgets {sorted(pdbs)}, want {sorted(want)}")
for i, s in enumerate(shards):
    d = deps.get(f"{full}-{s['name']}")
    if not d:
        continue
    sel = d["spec"]["selector"]["matchLabels"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    if sel.get("revoker.dev/shard") != s["name"] or any(labels.get(k) != v for k, v in sel.items()):
        errors.append(f"{s['name']}: selector {sel} / pod labels {labels}")
    pdb = pdbs.get(f"{full}-{s['name']}")
    if pdb and pdb["spec"]["selector"]["matchLabels"] != sel:
        errors.append(f"{s['name']}: PDB selector {pdb['spec']['selector']} != {sel}")
    args = d["spec"]["template"]["spec"]["containers"][0]["args"]
    own = [f"--shard-selector={s['selector']}", f"--check-providers={'true' if i == 0 else 'false'}"]
    lease = [a for a in plain_args if a.startswith("--lease-name=")][0] + "-" + s["name"]
    expected = [lease if a.startswith("--lease-name=") else a for a in plain_args] + own
    if sorted(args) != sorted(expected):
        errors.append(f"{s['name']}: args {args}, want {expected}")
leases = [r for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")
          for r in d["rules"] if r.get("resourceNames")]
names = sorted(n for r in leases for n in r["resourceNames"])
want_leases = sorted(f"revoker-leader-{s['name']}" for s in shards)
if names != want_leases:
    errors.append(f"leader-election Role covers Leases {names}, want {want_leases}")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"{len(shards)} shards: Deployments, PDBs, Leases and args as expected")
PY
}
# shard_args_accepted FILE: the real binary accepts every shard Deployment's args.
shard_args_accepted() {
  local n
  n=$("$PYTHON" -c '
import sys, yaml
deps = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Deployment"]
for i, d in enumerate(deps):
    open(f"{sys.argv[1]}.{i}", "w").write(yaml.safe_dump(d))
print(len(deps))' "$1")
  for ((i = 0; i < n; i++)); do args_accepted "$1.$i" || return 1; done
}
if helm_template --values "$SHARDED" >"$OUT/sharded.yaml" 2>"$OUT/sharded.err"; then
  run "one Deployment, PDB and Lease per shard; selector, own Lease, providers checked by the first" sharded_render "$OUT/sharded.yaml"
  [[ -x $REVOKER_BIN ]] && run "revoker accepts every shard's args" shard_args_accepted "$OUT/sharded.yaml"
else
  fail "template sharded"
  sed 's/^/        /' "$OUT/sharded.err"
fi
must_fail "sharding: a shard name used twice" "execution error" 'the shard name "a" is used twice' --values "$SHARDED" --set 'sharding.shards[1].name=a'
must_fail "schema: a shard name is a DNS label" "$SCHEMA" "at '/sharding/shards/0/name'" --values "$SHARDED" --set 'sharding.shards[0].name=Shard_A'
must_fail "schema: a shard needs a selector" "$SCHEMA" "missing property 'selector'" --set 'sharding.shards[0].name=a'
must_fail "sharding needs leader election" "execution error" "sharding.shards requires leaderElection.enabled=true" --values "$SHARDED" --set leaderElection.enabled=false --set replicaCount=1

section "who asked: the admission policies (deploy/admission/requester.yaml)"
# admission_equal FILE: the chart's policies are deploy/admission's (names and labels aside).
admission_equal() {
  "$PYTHON" - "$1" "$ROOT/deploy/admission/requester.yaml" <<'PY'
import sys, yaml
def load(p):
    return {d["kind"]: d["spec"] for d in yaml.safe_load_all(open(p)) if d and "AdmissionPolicy" in d.get("kind", "")}
chart, plain = load(sys.argv[1]), load(sys.argv[2])
for spec in list(chart.values()) + list(plain.values()):
    spec.pop("policyName", None)
if chart != plain:
    print(f"chart: {chart}\ndeploy/admission: {plain}"); sys.exit(1)
print(f"{len(chart)} policy objects identical")
PY
}
MAP_API=admissionregistration.k8s.io/v1/MutatingAdmissionPolicy
if helm_template --api-versions "$MAP_API" >"$OUT/admission.yaml" 2>"$OUT/admission.err"; then
  run "rendered where the API is served, equal to deploy/admission" admission_equal "$OUT/admission.yaml"
else
  fail "template with $MAP_API"
  sed 's/^/        /' "$OUT/admission.err"
fi
no_policies() { ! helm_template "$@" | grep -q 'kind: MutatingAdmissionPolicy'; }
run "not rendered without the API (helm template without --api-versions)" no_policies
run "not rendered with admission.requester.enabled=false" no_policies --api-versions "$MAP_API" --set admission.requester.enabled=false

# --- values table -------------------------------------------------------------------------------
section "README values table"
run "every values.yaml leaf key is in charts/revoker/README.md" "$PYTHON" "$ROOT/hack/values-table.py" --check

# --- RBAC in sync with deploy/rbac --------------------------------------------------------------
section "RBAC: chart == deploy/rbac"
rbac_sync() {
  "$PYTHON" - "$OUT/default.yaml" "$ROOT/deploy/rbac" <<'PY'
import glob, json, os, sys, yaml

rendered, rbac_dir = sys.argv[1:3]
KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

def norm_rule(r):
    return json.dumps({k: sorted(v) if isinstance(v, list) else v for k, v in sorted(r.items())}, sort_keys=True)

def key(d):
    m = d["metadata"]
    return (d["kind"], m.get("namespace", ""), m["name"])

def essence(d):
    e = {}
    if "rules" in d:
        e["rules"] = sorted(norm_rule(r) for r in d["rules"] or [])
    for f in ("roleRef", "subjects"):
        if f in d:
            e[f] = d[f]
    return e

def load(paths):
    out = {}
    for p in paths:
        for d in yaml.safe_load_all(open(p)):
            if d and d.get("kind") in KINDS:
                out[key(d)] = essence(d)
    return out

chart = load([rendered])
plain = load(sorted(glob.glob(os.path.join(rbac_dir, "*.yaml"))))
errors = []
for k in sorted(set(chart) | set(plain)):
    if k not in plain:
        errors.append(f"{'/'.join(k)}: in the chart, missing from deploy/rbac")
    elif k not in chart:
        errors.append(f"{'/'.join(k)}: in deploy/rbac, not in the chart")
    elif chart[k] != plain[k]:
        lines = [f"{'/'.join(k)} differs:"]
        for f in sorted(set(chart[k]) | set(plain[k])):
            a, b = chart[k].get(f), plain[k].get(f)
            if f == "rules":
                a, b = set(a or []), set(b or [])
                lines += [f"  rule only in the chart:       {r}" for r in sorted(a - b)]
                lines += [f"  rule only in deploy/rbac:     {r}" for r in sorted(b - a)]
            elif a != b:
                lines += [f"  {f} in the chart:   {json.dumps(a)}", f"  {f} in deploy/rbac: {json.dumps(b)}"]
        errors.append("\n".join(lines))
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(chart)} RBAC objects identical: " + ", ".join("/".join(k) for k in sorted(chart)))
PY
}
if [[ -s $OUT/default.yaml ]]; then
  run "chart RBAC (release $RELEASE, namespace $NAMESPACE) == deploy/rbac/*.yaml" rbac_sync
else
  fail "chart RBAC == deploy/rbac (the default render failed)"
fi

# --- CRDs in sync with `revoker crd` ------------------------------------------------------------
section "CRDs: chart == revoker crd"
# crd_render_equals SOURCE: the rendered CRDs, minus the labels/annotation the chart adds, are
# the source documents exactly (checks the template escaping, not just the generator).
crd_render_equals() {
  helm_template --show-only templates/crds.yaml >"$OUT/crds.rendered.yaml"
  "$PYTHON" - "$1" "$OUT/crds.rendered.yaml" <<'PY'
import sys, yaml
src = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
for d in out:
    m = d["metadata"]
    m.pop("labels", None)
    ann = m.get("annotations") or {}
    ann.pop("helm.sh/resource-policy", None)
    if not ann:
        m.pop("annotations", None)
if src != out:
    print(f"rendered CRDs differ from {sys.argv[1]} ({len(out)} vs {len(src)} documents)")
    sys.exit(1)
print(f"{len(out)} CRDs: " + ", ".join(d["metadata"]["name"] for d in out))
PY
}
if [[ ${CRD_SOURCE:-file} == cargo ]]; then
  (cd "$ROOT" && cargo run -q -- crd) >"$OUT/revoker-crd.yaml"
  crd_src=$OUT/revoker-crd.yaml
else
  crd_src=$ROOT/crds/revoker.dev.yaml
fi
if [[ -f $crd_src ]]; then
  run "templates/crds.yaml == ${crd_src#"$ROOT"/} (hack/sync-chart-crds.sh --check)" "$ROOT/hack/sync-chart-crds.sh" --check "$crd_src"
  run "rendered CRDs == ${crd_src#"$ROOT"/} (apart from labels and the keep annotation)" crd_render_equals "$crd_src"
else
  skip "CRD sync: ${crd_src#"$ROOT"/} does not exist yet (revoker crd > crds/revoker.dev.yaml)"
fi

# --- cluster ------------------------------------------------------------------------------------
########################################################################################################
# apply_to_cluster: the part of chart testing that needs a real API server (KUBECONFIG).
# Runs only with --cluster and KUBECONFIG set. For each rendered value set: server-side dry-run
# apply. Then helm install / upgrade / uninstall in namespace revoker-system, with the server's own
# version and API checks (no --kube-version, no --wait: the control plane may have no nodes).
# The release is named $CLUSTER_RELEASE (default revoker-chart-test) so that its cluster-scoped
# names do not collide with deploy/rbac/ (ClusterRole "revoker"), which e2e tests may have applied.
########################################################################################################
apply_to_cluster() {
  local kubectl=${KUBECTL:-kubectl} rel=${CLUSTER_RELEASE:-revoker-chart-test} s crd_args=()
  k() { "$kubectl" "$@"; }
  section "cluster: $(k config current-context 2>/dev/null || echo "$KUBECONFIG")"
  # The watched namespaces of ci/namespace-scoped-values.yaml, and one that is not watched. Created
  # once and kept (see the Pod Security check below for why namespaces are not deleted).
  ensure_namespace() {
    local n
    for n in "$NAMESPACE" team-a team-b team-c; do
      k create namespace "$n" --dry-run=client -o yaml | k apply -f - >/dev/null || return 1
    done
  }
  run "namespaces $NAMESPACE, team-a, team-b, team-c exist" ensure_namespace

  # CRDs that exist but belong to no Helm release (installed by `revoker crd | kubectl apply`)
  # cannot be adopted by helm install: render and install without them then.
  local owner crds_before
  # A previous run's CRDs may still be terminating: wait, so that helm does not adopt them.
  k wait --for=delete crd -l app.kubernetes.io/part-of=revoker --timeout=120s >/dev/null 2>&1 || true
  crds_before=$(k get crd -l app.kubernetes.io/part-of=revoker -o name 2>/dev/null || true)
  owner=$(k get crd jwksrevocations.revoker.dev -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}' 2>/dev/null || echo "<none>")
  if [[ $owner != "<none>" && $owner != "$rel" ]]; then
    echo "  note: the revoker.dev CRDs exist and are not owned by release $rel; testing with crds.enabled=false"
    crd_args=(--set crds.enabled=false)
  fi

  for s in "${sets[@]}"; do
    mapfile -t a < <(set_args "$s")
    if "$HELM" template "$rel" "$CHART" --namespace "$NAMESPACE" "${a[@]}" "${crd_args[@]}" >"$OUT/cluster-$s.yaml" 2>"$OUT/cluster-$s.err"; then
      run "kubectl apply --dry-run=server: $s" k apply --dry-run=server -f "$OUT/cluster-$s.yaml"
    else
      fail "render for the cluster: $s"
      sed 's/^/        /' "$OUT/cluster-$s.err"
    fi
  done

  # The pod template passes the `restricted` Pod Security Standard: dry-run a Pod made from it in
  # a namespace that enforces it. The namespace and its ServiceAccount are created once and kept
  # (a control plane without kube-controller-manager never finishes deleting a namespace).
  psa_restricted() {
    local psa_ns=revoker-chart-test-psa out
    k create namespace "$psa_ns" --dry-run=client -o yaml | k apply -f - >/dev/null
    k label --overwrite namespace "$psa_ns" pod-security.kubernetes.io/enforce=restricted \
      pod-security.kubernetes.io/enforce-version=latest pod-security.kubernetes.io/warn=restricted >/dev/null
    k create serviceaccount "$rel" -n "$psa_ns" --dry-run=client -o yaml | k apply -f - >/dev/null
    "$PYTHON" - "$OUT/cluster-default.yaml" "$psa_ns" >"$OUT/psa-pod.yaml" <<'PY'
import sys, yaml
dep = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment")
tpl = dep["spec"]["template"]
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "revoker-psa-check", "namespace": sys.argv[2], "labels": tpl["metadata"]["labels"]},
       "spec": tpl["spec"]}
print(yaml.safe_dump(pod))
PY
    out=$(k apply --dry-run=server -f "$OUT/psa-pod.yaml" 2>&1) || { echo "$out"; return 1; }
    if grep -qi warning <<<"$out"; then echo "$out"; return 1; fi
  }
  run "pod template admitted under Pod Security 'restricted'" psa_restricted

  local h=("$HELM" --namespace "$NAMESPACE")
  run "helm install $rel (dry-run=server)" "${h[@]}" install "$rel" "$CHART" --dry-run=server "${crd_args[@]}"
  run "helm install $rel" "${h[@]}" install "$rel" "$CHART" "${crd_args[@]}"
  # What the installed ServiceAccount may and may not do (SubjectAccessReview via impersonation).
  # sa_can_i SA WANT ARGS...: `kubectl auth can-i ARGS` as ServiceAccount $NAMESPACE/SA answers WANT.
  sa_can_i() {
    local sa=$1 want=$2 out
    shift 2
    out=$(k auth can-i --as="system:serviceaccount:$NAMESPACE:$sa" "$@" 2>/dev/null || true)
    [[ $out == "$want" ]] || { echo "can-i as $sa $*: $out, want $want"; return 1; }
  }
  can_i() { sa_can_i "$rel" "$@"; }
  rbac_as_installed() {
    local r ok=0 ns=some-namespace lease=revoker-leader
    for r in jwksrevocations authmethodrevocations tokenrevocations; do
      for v in get list watch create delete; do can_i yes "$v" "$r.revoker.dev" -n "$ns" || ok=1; done
      for v in get patch update; do can_i yes "$v" "$r.revoker.dev" --subresource=status -n "$ns" || ok=1; done
      for v in update patch; do can_i no "$v" "$r.revoker.dev" -n "$ns" || ok=1; done
    done
    for r in revocationproviders clusterrevocationproviders; do
      for v in get list watch; do can_i yes "$v" "$r.revoker.dev" -A || ok=1; done
      for v in get patch update; do can_i yes "$v" "$r.revoker.dev" --subresource=status -A || ok=1; done
      for v in create update patch delete; do can_i no "$v" "$r.revoker.dev" -A || ok=1; done
    done
    can_i yes get secrets -n "$ns" || ok=1
    for v in list watch create update patch delete; do can_i no "$v" secrets -n "$ns" || ok=1; done
    can_i yes get configmaps -n "$ns" || ok=1
    for v in list watch create update delete; do can_i no "$v" configmaps -n "$ns" || ok=1; done
    for v in get list watch; do can_i yes "$v" namespaces || ok=1; done
    for v in create update patch delete; do can_i no "$v" namespaces || ok=1; done
    for v in create patch; do can_i yes "$v" events.events.k8s.io -n "$ns" || ok=1; done
    can_i no create events -n "$ns" || ok=1
    can_i no list pods -n "$NAMESPACE" || ok=1
    can_i yes create leases.coordination.k8s.io -n "$NAMESPACE" || ok=1
    for v in get update patch; do can_i yes "$v" "leases.coordination.k8s.io/$lease" -n "$NAMESPACE" || ok=1; done
    can_i no update leases.coordination.k8s.io/other-lease -n "$NAMESPACE" || ok=1
    can_i no delete "leases.coordination.k8s.io/$lease" -n "$NAMESPACE" || ok=1
    can_i no create leases.coordination.k8s.io -n "$ns" || ok=1
    return $ok
  }
  run "ServiceAccount $NAMESPACE/$rel has exactly the documented permissions (kubectl auth can-i)" rbac_as_installed

  # Namespace-scoped mode: a second release watching team-a and team-b holds namespaced Roles there
  # and nothing cluster-wide (its CRDs come from the first release).
  local scoped=$rel-scoped
  run "helm install $scoped with ci/namespace-scoped-values.yaml (watchNamespaces team-a, team-b)" \
    "${h[@]}" install "$scoped" "$CHART" --values "$CHART/ci/namespace-scoped-values.yaml" --set crds.enabled=false \
    --set leaderElection.leaseName=revoker-scoped-leader
  scoped_can_i() { sa_can_i "$scoped" "$@"; }
  rbac_namespace_scoped() {
    local r v ns ok=0
    for ns in team-a team-b; do
      for r in jwksrevocations authmethodrevocations tokenrevocations revocationproviders; do
        for v in get list watch; do scoped_can_i yes "$v" "$r.revoker.dev" -n "$ns" || ok=1; done
        for v in get patch update; do scoped_can_i yes "$v" "$r.revoker.dev" --subresource=status -n "$ns" || ok=1; done
        for v in update patch; do scoped_can_i no "$v" "$r.revoker.dev" -n "$ns" || ok=1; done
      done
      for r in jwksrevocations authmethodrevocations tokenrevocations; do
        scoped_can_i yes create "$r.revoker.dev" -n "$ns" || ok=1
      done
      scoped_can_i no create revocationproviders.revoker.dev -n "$ns" || ok=1
      scoped_can_i yes get secrets -n "$ns" || ok=1
      for v in list watch; do scoped_can_i no "$v" secrets -n "$ns" || ok=1; done
      scoped_can_i yes get configmaps -n "$ns" || ok=1
      for v in create patch; do scoped_can_i yes "$v" events.events.k8s.io -n "$ns" || ok=1; done
    done
    # Nothing outside the watched namespaces, nothing cluster-scoped.
    for r in jwksrevocations tokenrevocations revocationproviders; do
      scoped_can_i no list "$r.revoker.dev" -n team-c || ok=1
      scoped_can_i no list "$r.revoker.dev" -A || ok=1
    done
    scoped_can_i no get secrets -n team-c || ok=1
    scoped_can_i no get secrets -n "$NAMESPACE" || ok=1
    for v in get list watch; do scoped_can_i no "$v" clusterrevocationproviders.revoker.dev || ok=1; done
    for v in get list watch; do scoped_can_i no "$v" namespaces || ok=1; done
    scoped_can_i no create events.events.k8s.io -n team-c || ok=1
    # Its own Lease in the release namespace, as in cluster-wide mode.
    scoped_can_i yes create leases.coordination.k8s.io -n "$NAMESPACE" || ok=1
    scoped_can_i yes update leases.coordination.k8s.io/revoker-scoped-leader -n "$NAMESPACE" || ok=1
    scoped_can_i no update "leases.coordination.k8s.io/revoker-leader" -n "$NAMESPACE" || ok=1
    if k get clusterrole,clusterrolebinding "$scoped" >/dev/null 2>&1; then echo "a ClusterRole/Binding $scoped exists"; ok=1; fi
    return $ok
  }
  run "namespace-scoped ServiceAccount $NAMESPACE/$scoped: Roles in team-a/team-b only (kubectl auth can-i)" rbac_namespace_scoped
  run "helm uninstall $scoped" "${h[@]}" uninstall "$scoped"
  scoped_left() {
    local left
    left=$(k get role,rolebinding -n team-a -l "app.kubernetes.io/instance=$scoped" -o name
      k get role,rolebinding -n team-b -l "app.kubernetes.io/instance=$scoped" -o name)
    [[ -z $left ]] || { echo "left over: $left"; return 1; }
  }
  run "no Roles of $scoped left in the watched namespaces" scoped_left

  run "helm upgrade $rel with ci/monitoring-networkpolicy-values.yaml" \
    "${h[@]}" upgrade "$rel" "$CHART" --values "$CHART/ci/monitoring-networkpolicy-values.yaml" "${crd_args[@]}"
  run "helm upgrade $rel with ci/single-replica-no-crds-values.yaml (CRDs kept)" \
    "${h[@]}" upgrade "$rel" "$CHART" --values "$CHART/ci/single-replica-no-crds-values.yaml" "${crd_args[@]}"
  # --reset-values: without values, helm upgrade would reuse the previous revision's.
  run "helm upgrade $rel back to the defaults" "${h[@]}" upgrade "$rel" "$CHART" --reset-values "${crd_args[@]}"
  run "helm uninstall $rel" "${h[@]}" uninstall "$rel"
  nothing_left() {
    local left
    left=$(k get deploy,sa,svc,pdb,role,rolebinding -n "$NAMESPACE" -l "app.kubernetes.io/instance=$rel" -o name
      k get clusterrole,clusterrolebinding -l "app.kubernetes.io/instance=$rel" -o name)
    [[ -z $left ]] || { echo "left over: $left"; return 1; }
  }
  run "no release objects left (except kept CRDs)" nothing_left
  if ((${#crd_args[@]} == 0)); then
    run "CRDs kept after uninstall (crds.keep=true)" k get crd jwksrevocations.revoker.dev tokenrevocations.revoker.dev
    if [[ -z $crds_before ]]; then
      # Leave the cluster as we found it: the CRDs did not exist before this test. Wait for the
      # deletion to finish, so that a next run does not adopt a terminating CRD.
      # The API server removes a CRD once its cleanup finalizer has run; under load that has
      # taken over two minutes here, so the wait is generous and a timeout shows the conditions.
      crds_deleted() {
        k delete crd -l "app.kubernetes.io/part-of=revoker,app.kubernetes.io/instance=$rel" --wait=true --timeout=300s ||
          { k get crd -l "app.kubernetes.io/part-of=revoker" -o jsonpath='{range .items[*]}{.metadata.name}: {.status.conditions}{"\n"}{end}'; return 1; }
      }
      run "CRDs created by this test deleted" crds_deleted
    fi
  fi
}

if ((cluster)); then
  if [[ -n ${KUBECONFIG:-} ]]; then
    apply_to_cluster
  else
    skip "cluster tests: KUBECONFIG is not set"
  fi
fi

# --- summary ------------------------------------------------------------------------------------
printf '\n%d passed, %d failed, %d skipped\n' "${#passed[@]}" "${#failed[@]}" "${#skipped[@]}"
for f in "${failed[@]}"; do printf '  FAILED: %s\n' "$f"; done
for f in "${skipped[@]}"; do printf '  skipped: %s\n' "$f"; done
((${#failed[@]} == 0))
