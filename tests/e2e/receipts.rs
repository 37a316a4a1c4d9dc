//! Receipts: a provider that answers success without applying the revocation is caught by the
//! read-back, loudly, and the revocation is not repeated.

use std::time::Duration;

use serde_json::json;

use crate::Env;
use crate::cases::{WAIT, condition, ensure, namespace_with_providers};
use crate::env::Result;

const TOKEN: &str = "f0f0aaaa1111bbbb2222cccc3333dddd";

pub async fn a_provider_that_forgets_a_revocation_fails_verification_loudly(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "forgets")?;
    env.sim.clear_calls_and_faults().await?;
    env.sim
        .merge_state(json!({"onezone": {"namedTokens": [
            {"id": TOKEN, "name": "forgotten", "userId": "9a8b7c6d5e4f30211203f4e5d6c7b8a9"}
        ]}}))
        .await?;
    let path = format!("/api/v3/onezone/tokens/named/{TOKEN}");
    env.sim
        .fault(json!({"match": {"method": "PATCH", "path": path, "exact": true}, "kind": "forget"}))
        .await?;
    env.apply(
        &ns,
        &format!(
            "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: forgotten}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: NamedToken, tokenId: \"{TOKEN}\"}}\n"
        ),
    )?;
    let obj = env
        .wait_phase(&ns, "tokenrevocation/forgotten", "Succeeded", WAIT)
        .await?;
    let receipt = &obj["status"]["receipt"];
    ensure(
        receipt["result"] == "NotApplied" && receipt["method"].as_str().is_some_and(|m| m.contains("revoked: false")),
        format!("the receipt says the token is still active: {receipt}"),
    )?;
    for (type_, status) in [("Verified", "False"), ("Stalled", "True"), ("Ready", "False")] {
        ensure(
            condition(&obj, type_).is_some_and(|c| c["status"] == status && c["reason"] == "NotApplied"),
            format!("{type_}={status} (NotApplied): {:?}", condition(&obj, type_)),
        )?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let patches = env.sim.count("PATCH", &path).await?;
    ensure(
        patches == 1,
        format!("the revocation is not repeated: {patches} PATCH calls"),
    )?;
    let events = env.get_json(&ns, "events.events.k8s.io")?;
    let warned = events["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|e| e["reason"] == "NotApplied" && e["type"] == "Warning")
    });
    ensure(warned, "a Warning Event NotApplied")?;
    let metrics = env
        .sim_http_get(&format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .await?;
    let series = "revoker_verifications_total{kind=\"TokenRevocation\",provider=\"onezone\",reason=\"NotApplied\"}";
    let count = metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    ensure(count >= 1, format!("{series} counts it: {count}"))?;
    Ok(())
}
