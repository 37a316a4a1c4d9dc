//! Namespace-scoped mode: `revoker run --namespace A,B` with only the Roles the Helm chart renders
//! for `watchNamespaces: [A, B]` acts in A and B, leaves every other namespace alone, and refuses
//! ClusterRevocationProviders without burning the revocation.

use std::process::Command;

use serde_json::Value;

use crate::Env;
use crate::cases::{JWKS_PATH, WAIT, condition, ensure, jwks, namespace_with_providers, reason};
use crate::env::{OPERATOR_NS, Proc, ROOT, Result, free_port, sh, wait_for};

const SERVICE_ACCOUNT: &str = "revoker-scoped";

pub async fn a_namespace_scoped_operator_acts_only_in_its_namespaces(env: &mut Env) -> Result<()> {
    let watched = [
        namespace_with_providers(env, "scoped-a")?,
        namespace_with_providers(env, "scoped-b")?,
    ];
    let unwatched = namespace_with_providers(env, "scoped-c")?;
    let rbac = env.work.join("scoped-rbac.yaml");
    std::fs::write(&rbac, chart_rbac(&watched)?).map_err(|e| e.to_string())?;
    sh(env.kubectl().arg("apply").arg("-f").arg(&rbac))?;
    let kubeconfig = env.work.join("scoped.kubeconfig");
    crate::env::write_token_kubeconfig(&env.cp, OPERATOR_NS, SERVICE_ACCOUNT, &kubeconfig)?;

    if let Some(mut op) = env.operator.take() {
        op.terminate();
    }
    let mut cmd = env.operator_command("operator-scoped", free_port()?, "info,revoker=debug");
    cmd.env("KUBECONFIG", &kubeconfig)
        .arg(format!("--namespace={}", watched.join(",")))
        .arg("--leader-elect=false");
    let mut scoped = Proc::spawn(cmd, env.work.join("operator-scoped.log"))?;
    let result = scenario(env, &watched, &unwatched).await;
    let graceful = scoped.terminate();
    env.start_operator()?;
    let result = result.and(ensure(
        graceful,
        "SIGTERM shuts the operator down by itself, exit status 0",
    ));
    let result = result.and(after_scoped(env, &unwatched).await);
    sh(env.kubectl().arg("delete").arg("-f").arg(&rbac))?;
    result
}

/// The chart's ServiceAccount and per-namespace Roles for `watchNamespaces`, rendered by helm.
fn chart_rbac(watched: &[String]) -> Result<String> {
    let bin = sh(Command::new(format!("{ROOT}/hack/bin-path.sh")).arg("--with-helm"))?;
    sh(Command::new(format!("{}/helm", bin.trim()))
        .args(["template", SERVICE_ACCOUNT, &format!("{ROOT}/charts/revoker")])
        .args(["--namespace", OPERATOR_NS])
        .arg(format!("--set=watchNamespaces={{{}}}", watched.join(",")))
        .args([
            "--set=crds.enabled=false",
            "--set=leaderElection.enabled=false",
            "--set=replicaCount=1",
        ])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/role-watched-namespaces.yaml"]))
}

async fn scenario(env: &Env, watched: &[String], unwatched: &str) -> Result<()> {
    let cluster_ref = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata:\n  name: via-cluster-provider\nspec:\n  providerRef: {kind: ClusterRevocationProvider, name: shared-onezone}\n  onezone: {scope: UserTemporaryTokens, userId: 9a8b7c6d5e4f30211203f4e5d6c7b8a9}\n";
    env.apply(unwatched, &jwks("scoped", ""))?;
    for ns in watched {
        env.apply(ns, &jwks("scoped", ""))?;
    }
    env.apply(&watched[1], cluster_ref)?;
    for ns in watched {
        let done = env.wait_phase(ns, "jwksrevocation/scoped", "Succeeded", WAIT).await?;
        ensure(
            reason(&done) == "Revoked",
            format!("{ns}: revoked with the Roles alone: {}", done["status"]),
        )?;
        let provider = env.get_json(ns, "revocationprovider/atlas")?;
        ensure(
            condition(&provider, "Ready").is_some_and(|c| c["status"] == "True"),
            format!("{ns}: the provider's status was written: {}", provider["status"]),
        )?;
        ensure(
            events_about(env, ns, "scoped")? > 0,
            format!("{ns}: the operator's Events were created"),
        )?;
    }
    let held = wait_for(WAIT, "a ClusterRevocationProvider reference to wait", || {
        let obj = env.get_json(&watched[1], "tokenrevocation/via-cluster-provider").ok();
        async move { obj.filter(|o| reason(o) == "ProviderNotFound") }
    })
    .await?;
    let message = condition(&held, "Reconciling")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    ensure(
        held["status"]["phase"] == "Pending" && held["status"]["attempts"] == 0 && message.contains("namespace-scoped"),
        format!(
            "a cluster provider is refused, waiting, with the reason why: {}",
            held["status"]
        ),
    )?;
    // The unwatched namespace's revocation was created first: had the operator seen it, it would be done.
    let ignored = env.get_json(unwatched, "jwksrevocation/scoped")?;
    ensure(
        ignored.get("status").is_none_or(Value::is_null),
        format!(
            "{unwatched} is not watched, so nothing writes its status: {}",
            ignored["status"]
        ),
    )?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 2,
        "one revoking call per watched namespace, none for the unwatched one",
    )?;
    let log = std::fs::read_to_string(env.work.join("operator-scoped.log")).unwrap_or_default();
    let denied: Vec<&str> = log.lines().filter(|l| l.to_lowercase().contains("forbidden")).collect();
    ensure(
        denied.is_empty(),
        format!("the Roles cover everything the operator does: {denied:?}"),
    )
}

/// Back to the cluster-wide operator: the revocation the scoped one left alone runs now.
async fn after_scoped(env: &Env, unwatched: &str) -> Result<()> {
    env.wait_phase(unwatched, "jwksrevocation/scoped", "Succeeded", WAIT)
        .await?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 3,
        "the cluster-wide operator revoked the unwatched namespace's JWKS once",
    )
}

fn events_about(env: &Env, ns: &str, name: &str) -> Result<usize> {
    let list = env.get_json(ns, "events.events.k8s.io")?;
    Ok(list["items"]
        .as_array()
        .map(|items| items.iter().filter(|e| e["regarding"]["name"] == name).count())
        .unwrap_or(0))
}
