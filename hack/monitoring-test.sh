#!/usr/bin/env bash
# Tests of the shipped alerts and dashboard: `promtool check rules` on the chart's rendered
# PrometheusRule, deploy/monitoring/revoker-rules.yaml equal to it, `promtool test rules` on
# tests/monitoring/*.test.yaml, and every metric name used by the rules and the dashboard present
# in the /metrics fixture (hack/check-metric-names.py; an unknown name must make it fail).
#   hack/monitoring-test.sh            run the tests
#   hack/monitoring-test.sh --update   rewrite deploy/monitoring/revoker-rules.yaml from the chart
# Needs helm on PATH (hack/bin-path.sh --with-helm); builds promtool if missing (hack/promtool.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RULES=deploy/monitoring/revoker-rules.yaml
DASHBOARD=charts/revoker/dashboards/revoker.json
FIXTURE=tests/monitoring/metrics.txt
export PATH="$(hack/bin-path.sh --with-helm):$PATH"
PROMTOOL="$(hack/promtool.sh path)/promtool"
TMP=$(mktemp -d /tmp/revoker-monitoring.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'ok: %s\n' "$*" >&2; }

# The groups (the PrometheusRule's spec) as a plain Prometheus rule file.
render_groups() {
  helm template revoker charts/revoker --set prometheusRule.enabled=true "$@" \
    --show-only templates/prometheusrule.yaml |
    python3 -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(sys.stdin)["spec"], sort_keys=False, width=1000), end="")'
}

if [[ ${1:-} == --update ]]; then
  {
    echo "# Revoker alert rules for a Prometheus without the Prometheus Operator: the chart's PrometheusRule"
    echo "# (prometheusRule.enabled=true) with the default values. hack/monitoring-test.sh keeps them equal."
    render_groups
  } >"$RULES"
  echo "wrote $RULES" >&2
  exit 0
fi

render_groups >"$TMP/chart-rules.yaml"
"$PROMTOOL" check rules "$TMP/chart-rules.yaml" >&2 || fail "promtool check rules on the chart's PrometheusRule"
pass "promtool check rules: the chart's rendered PrometheusRule"

python3 - "$TMP/chart-rules.yaml" "$RULES" <<'PY' || fail "$RULES differs from the chart's rules (run hack/monitoring-test.sh --update)"
import sys, yaml
chart, plain = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if chart == plain else 1)
PY
pass "$RULES equals the chart's rendered groups"

cat >"$TMP/overrides.yaml" <<'YAML'
prometheusRule:
  stuckMinutes: 30
  alertLabels: {team: platform}
  additionalRules:
    - alert: RevokerNoReconciles
      expr: sum(rate(revoker_reconciles_total[30m])) == 0
      for: 1h
YAML
render_groups -f "$TMP/overrides.yaml" >"$TMP/overrides-rules.yaml"
"$PROMTOOL" check rules "$TMP/overrides-rules.yaml" >&2 || fail "promtool check rules with overridden values"
grep -q 'for: 30m' "$TMP/overrides-rules.yaml" || fail "stuckMinutes=30 is not the stuck alert's for:"
grep -q 'team: platform' "$TMP/overrides-rules.yaml" || fail "alertLabels are not on the alerts"
grep -q 'alert: RevokerNoReconciles' "$TMP/overrides-rules.yaml" || fail "additionalRules are not appended"
render_groups --set-json 'prometheusRule.rules=[{"alert":"Only","expr":"vector(1)"}]' >"$TMP/replaced.yaml"
[[ $(grep -c 'alert:' "$TMP/replaced.yaml") == 1 ]] || fail "prometheusRule.rules does not replace the shipped rules"
pass "promtool check rules: thresholds, alertLabels, additionalRules and rules overrides"

(cd tests/monitoring && "$PROMTOOL" test rules ./*.test.yaml) >&2 || fail "promtool test rules"
pass "promtool test rules: tests/monitoring/*.test.yaml"

hack/check-metric-names.py "$RULES" "$DASHBOARD" "$FIXTURE" >&2 || fail "a metric of the rules or the dashboard is not in $FIXTURE"
sed 's/revoker_retries_total/revoker_retry_total/' "$RULES" >"$TMP/unknown-name.yaml"
if hack/check-metric-names.py "$TMP/unknown-name.yaml" "$DASHBOARD" "$FIXTURE" 2>"$TMP/err"; then
  fail "check-metric-names.py accepted a rule using revoker_retry_total, which is not exposed"
fi
grep -q 'revoker_retry_total' "$TMP/err" || fail "check-metric-names.py did not name the unknown metric"
sed 's/revoker_provider_ready/revoker_provider_up/' "$DASHBOARD" >"$TMP/unknown-name.json"
if hack/check-metric-names.py "$RULES" "$TMP/unknown-name.json" "$FIXTURE" 2>"$TMP/err"; then
  fail "check-metric-names.py accepted a dashboard using revoker_provider_up, which is not exposed"
fi
pass "metric names of the rules and dashboard exist in $FIXTURE (an unknown one in either is rejected)"
echo "== monitoring tests passed" >&2
