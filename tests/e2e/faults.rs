//! Faults of the control plane during a batch of revocations.

use std::time::Duration;

use serde_json::json;

use crate::Env;
use crate::cases::{OZ_SELF_PATH, ensure, namespace_with_providers};
use crate::env::Result;

const BATCH: usize = 30;

/// kube-apiserver stops for a few seconds (etcd keeps its data) while provider calls are under
/// way: the operator reconnects and finishes the batch, and no revocation whose provider call was
/// answered is called again — the results it could not write are written after the restart.
pub async fn an_api_server_restart_mid_batch_calls_no_answered_revocation_again(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "apirestart")?;
    env.sim.clear_calls_and_faults().await?;
    // Slow calls, so that some are answered while the API server is down.
    let slow = json!({"match": {"method": "DELETE", "path": OZ_SELF_PATH, "exact": true}, "kind": "latency", "latencyMs": 1500});
    env.sim.fault(slow).await?;
    let manifest: String = (0..BATCH)
        .map(|i| {
            format!(
                "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: restart-{i}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: CurrentUserTemporaryTokens}}\n---\n"
            )
        })
        .collect();
    env.apply(&ns, &manifest)?;
    crate::env::wait_for(Duration::from_secs(30), "calls under way", || {
        let phases = phases(env, &ns);
        async move {
            phases
                .ok()
                .filter(|p| p.iter().filter(|s| *s == "Running").count() >= 2)
        }
    })
    .await?;

    let cp_dir = env.cp.dir.clone();
    let restarted = tokio::task::spawn_blocking(move || {
        crate::env::sh(
            std::process::Command::new(format!("{}/hack/control-plane.sh", crate::env::ROOT))
                .env("REVOKER_CP_DOWN_SECONDS", "3")
                .arg("restart-apiserver")
                .arg(&cp_dir),
        )
    })
    .await
    .map_err(|e| e.to_string())?;
    restarted.map_err(|e| format!("restarting kube-apiserver: {e}"))?;

    let finished = crate::env::wait_for(Duration::from_secs(90), "every revocation Succeeded", || {
        let phases = phases(env, &ns);
        async move {
            phases
                .ok()
                .filter(|p| p.len() == BATCH && p.iter().all(|s| s == "Succeeded"))
        }
    })
    .await;
    finished?;
    let calls = env.sim.succeeded("DELETE", OZ_SELF_PATH).await?;
    ensure(
        calls == BATCH as u64,
        format!("{calls} answered revoking calls for {BATCH} revocations: an answered call was repeated"),
    )?;
    let log = env.operator.as_ref().map(|p| p.log_text()).unwrap_or_default();
    ensure(
        log.contains("the provider answered but the result could not be written"),
        "no result write failed while the API server was down: the restart did not hit a call in flight",
    )?;
    Ok(())
}

fn phases(env: &Env, ns: &str) -> Result<Vec<String>> {
    let list = env.get_json(ns, "tokenrevocations")?;
    Ok(list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| o["status"]["phase"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default())
}
