//! Two operator instances, each one shard of the revocations (`--shard-selector`, its own Lease).

use std::time::Duration;

use serde_json::json;

use crate::Env;
use crate::batch::{check_calls, named_batch, slow_named_tokens};
use crate::cases::{WAIT, ensure, namespace_with_providers};
use crate::env::{OPERATOR_NS, Proc, Result, free_port, sh};

const N: usize = 40;

/// Get, renew and release the shards' Leases: the RBAC a sharded install adds (the Helm chart's
/// `shards` does it).
fn shard_lease_rbac() -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: revoker-shard-leases, namespace: {OPERATOR_NS}}}\nrules:\n  - apiGroups: [coordination.k8s.io]\n    resources: [leases]\n    resourceNames: [revoker-leader-a, revoker-leader-b]\n    verbs: [get, update, patch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: revoker-shard-leases, namespace: {OPERATOR_NS}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: revoker-shard-leases}}\nsubjects: [{{kind: ServiceAccount, name: revoker, namespace: {OPERATOR_NS}}}]\n"
    )
}

/// `revoker run` as one shard.
fn spawn_shard(env: &Env, name: &str, selector: &str, lease: &str, check_providers: bool) -> Result<Proc> {
    let mut cmd = env.operator_command(name, free_port()?, "info,revoker=debug");
    cmd.args(["--shard-selector", selector, "--lease-name", lease])
        .arg(format!("--check-providers={check_providers}"));
    Proc::spawn(cmd, env.work.join(format!("{name}.log")))
}

/// Shard a (`revoker.dev/shard=a`) and shard b (everything else) split a batch: each revocation
/// is executed once, by its own shard only. A revocation relabelled from a to b while a's call is
/// under way is not called again by b: b sees the attempt a recorded, and that a still holds its
/// Lease, and waits for a's result.
pub async fn shards_split_the_revocations_and_a_moved_one_runs_once(env: &mut Env) -> Result<()> {
    env.apply(OPERATOR_NS, &shard_lease_rbac())?;
    env.sim.clear_calls_and_faults().await?;
    let graceful = env.operator.take().is_none_or(|mut unsharded| unsharded.terminate());
    let result = match graceful {
        true => split_and_move(env).await,
        false => Err("the unsharded operator did not shut down gracefully on SIGTERM".into()),
    };
    env.start_operator()?;
    result
}

async fn split_and_move(env: &mut Env) -> Result<()> {
    let mut shard_a = spawn_shard(env, "shard-a", "revoker.dev/shard=a", "revoker-leader-a", true)?;
    let mut shard_b = spawn_shard(env, "shard-b", "revoker.dev/shard!=a", "revoker-leader-b", false)?;
    // New providers: only shard a checks them; shard b uses the status shard a writes.
    let ns = namespace_with_providers(env, "shards")?;
    let ns = ns.as_str();
    slow_named_tokens(env, 200).await?;
    let label = |i: usize| {
        if i.is_multiple_of(2) {
            "revoker.dev/shard: a".to_string()
        } else {
            String::new()
        }
    };
    let (members, yaml) = named_batch(env, 0x5a4d, "split", N, label).await?;
    env.apply(ns, &yaml)?;
    crate::faults::all_succeeded(env, ns, N, Duration::from_secs(60)).await?;
    let check = check_calls(env, ns, &members).await?;
    ensure(
        check.never_called.is_empty() && check.repeated.is_empty(),
        format!(
            "each revocation once: never called {:?}, more than once {:?}",
            check.never_called, check.repeated
        ),
    )?;
    let (log_a, log_b) = (shard_a.log_text(), shard_b.log_text());
    for (i, m) in members.iter().enumerate() {
        let object = format!("object={ns}/{} ", m.name);
        let (own, other) = if i.is_multiple_of(2) {
            (&log_a, &log_b)
        } else {
            (&log_b, &log_a)
        };
        ensure(
            own.contains(&object) && !other.contains(&object),
            format!("{} was not handled by its own shard alone", m.name),
        )?;
    }
    let checked = format!("kind=\"RevocationProvider\" object={ns}/onezone ");
    ensure(
        log_a.contains(&checked) && !log_b.contains("kind=\"RevocationProvider\""),
        "shard a checks the providers, shard b does not",
    )?;

    // A slow call under way in shard a, then the revocation moves to shard b.
    let (moved, yaml) = named_batch(env, 0x30e, "moved", 1, |_| "revoker.dev/shard: a".into()).await?;
    let path = moved[0].path();
    env.sim
        .fault(json!({"match": {"method": "PATCH", "path": path, "exact": true}, "kind": "latency", "latencyMs": 4000}))
        .await?;
    env.apply(ns, &yaml)?;
    let what = "tokenrevocation/moved-0";
    crate::env::wait_for(WAIT, "the attempt of shard a recorded", || {
        let obj = env.get_json(ns, what).ok();
        async move { obj.filter(|o| o["status"]["attempts"] == 1 && o["status"]["phase"] == "Running") }
    })
    .await?;
    sh(env
        .kubectl()
        .args(["label", "-n", ns, what, "revoker.dev/shard=b", "--overwrite"]))?;
    let obj = env.wait_phase(ns, what, "Succeeded", WAIT).await?;
    let calls = env.sim.count("PATCH", &path).await?;
    ensure(
        calls == 1 && obj["status"]["attempts"] == 1,
        format!(
            "the moved revocation was called {calls} times in {} attempts",
            obj["status"]["attempts"]
        ),
    )?;
    ensure(
        obj["status"]["executor"]["identity"] == "shard-a",
        format!("status.executor names shard a: {}", obj["status"]["executor"]),
    )?;
    ensure(
        shard_b
            .log_text()
            .contains("recorded by another instance that still holds its Lease"),
        "shard b did not wait for shard a's attempt",
    )?;
    ensure(
        shard_a.terminate() && shard_b.terminate(),
        "both shards shut down gracefully",
    )?;
    Ok(())
}
