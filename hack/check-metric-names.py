#!/usr/bin/env python3
"""Check that every Revoker metric used by the alert rules and the dashboard exists in a /metrics text.

  hack/check-metric-names.py RULES DASHBOARD METRICS_TEXT

RULES is a Prometheus rule file (`groups:`), DASHBOARD a Grafana dashboard JSON, METRICS_TEXT the
Prometheus text exposition of the operator (a live /metrics, or a fixture). Names are taken from
every `expr` with a regex over `revoker_[a-z_]+`; a histogram declared by `# TYPE` provides
`_bucket`/`_sum`/`_count`. Exits 1 and lists the unknown names when one is missing; prints the names used.
"""

import json
import re
import sys

import yaml

NAME_RE = re.compile(r"\brevoker_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def rule_exprs(rules_text):
    doc = yaml.safe_load(rules_text)
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs(dashboard_text):
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(dashboard_text))
    return exprs


def exposed_names(metrics_text):
    """Sample names, plus the names a declared but still empty family will have once it has samples
    (`# TYPE x counter` gives `x_total` in OpenMetrics; a histogram gives `x_bucket/_sum/_count`)."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            if kind == "counter":
                names.add(family if family.endswith("_total") else family + "_total")
            elif kind == "histogram":
                names.update(family + suffix for suffix in HISTOGRAM_SUFFIXES)
            else:
                names.add(family)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def used_names(exprs):
    return {name for expr in exprs for name in NAME_RE.findall(expr)}


def unknown_names(used, exposed):
    return sorted(name for name in used if name not in exposed)


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        used = used_names(rule_exprs(f.read()))
    with open(argv[2]) as f:
        used |= used_names(dashboard_exprs(f.read()))
    with open(argv[3]) as f:
        exposed = exposed_names(f.read())
    if not used:
        print("no revoker_* metric found in the rules and the dashboard", file=sys.stderr)
        return 1
    missing = unknown_names(used, exposed)
    print("metrics used: " + " ".join(sorted(used)))
    if missing:
        print("not in the /metrics text: " + " ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
