#!/usr/bin/env bash
# The whole test suite: unit and client tests, contract tests against the providers' OpenAPI
# documents (Prism), end-to-end tests against a real kube-apiserver + etcd with the provider
# simulator, and the Helm chart tests against that control plane. Builds and caches what it needs
# (kube-apiserver, etcd, kubectl, helm, promtool, External Secrets from the Go module proxy; Prism from npm) under
# ~/.cache/revoker. Exits non-zero on any failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

echo "== test binaries (cached under ${REVOKER_BIN_CACHE:-$HOME/.cache/revoker})" >&2
BIN=$(hack/bin-path.sh --with-helm)
export PATH="$BIN:$PATH"
hack/prism.sh install >&2
export REVOKER_PRISM="$(hack/prism.sh path)"
hack/kstatus.sh build >/dev/null   # the e2e test of what GitOps tools read
hack/lua.sh path >/dev/null
hack/eso.sh build >/dev/null      # External Secrets Operator, the rotation tool of the e2e test

echo "== cargo test (unit, provider clients, controller, contract, e2e)" >&2
cargo test --locked --workspace --all-targets

echo "== alerts and dashboard (promtool check/test rules, metric names)" >&2
hack/promtool.sh build >/dev/null
hack/monitoring-test.sh

echo "== Helm chart tests" >&2
CP_DIR=$(mktemp -d /tmp/revoker-chart-cp.XXXXXX)
trap 'hack/control-plane.sh down "$CP_DIR" >/dev/null 2>&1 || true' EXIT
eval "$(hack/control-plane.sh up "$CP_DIR")"
hack/chart-test.sh --cluster

echo "== the operator as the Helm chart's ServiceAccount (out of cluster) does its whole job" >&2
helm install revoker charts/revoker -n revoker-system --create-namespace >/dev/null
REVOKER_E2E_KUBECONFIG=$KUBECONFIG REVOKER_E2E_OPERATOR_SA=revoker-system/revoker \
  cargo test --locked --test e2e -- every_operation operator_rbac leader_election
helm uninstall revoker -n revoker-system >/dev/null
echo "== the static binary of the container image (no Docker engine here: built, checked, run)" >&2
hack/build-static.sh
echo "== all tests passed" >&2
