//! Rotation workflows: identifiers a rotation writes into Secrets and ConfigMaps.

use std::time::Duration;

use crate::Env;
use crate::cases::{WAIT, ensure, namespace_with_providers, reason};
use crate::env::Result;

const TOKEN_ID: &str = "0f0e0d0c0b0a09080706050403020100";

fn named_token_from(name: &str, source: &str) -> String {
    format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: {name}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone:\n    scope: NamedToken\n    tokenIdFrom: {source}\n"
    )
}

/// A revocation names its target by a ConfigMap key a rotation has not written yet: it waits as
/// CredentialsUnavailable without calling anything, then revokes exactly the token whose id the
/// rotation wrote (with a trailing newline, as `kubectl create configmap --from-file` leaves it).
/// The API server refuses a spec that names the id both ways, or a source of both kinds.
pub async fn an_identifier_a_rotation_writes_is_the_one_revoked(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "rotation")?;
    env.sim.clear_calls_and_faults().await?;
    env.sim
        .merge_state(serde_json::json!({"onezone": {"namedTokens": [
            {"id": TOKEN_ID, "name": "rotated-out", "userId": "9a8b7c6d5e4f30211203f4e5d6c7b8a9"}
        ]}}))
        .await?;
    let from_map = "{configMapKeyRef: {name: rotation, key: previous}}";
    env.apply(&ns, &named_token_from("previous-token", from_map))?;
    let what = "tokenrevocation/previous-token";
    let waiting = crate::env::wait_for(WAIT, "the revocation to wait for the ConfigMap", || {
        let obj = env.get_json(&ns, what).ok();
        async move { obj.filter(|o| reason(o) == "CredentialsUnavailable") }
    })
    .await?;
    ensure(
        waiting["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("rotation was not found")),
        format!("the wait says what is missing: {}", waiting["status"]["message"]),
    )?;
    let path = format!("{}{TOKEN_ID}", crate::batch::NAMED_PREFIX);
    ensure(
        env.sim.count("PATCH", &path).await? == 0,
        "nothing called while waiting",
    )?;

    let map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: rotation}}\ndata:\n  previous: \"{TOKEN_ID}\\n\"\n"
    );
    env.apply(&ns, &map)?;
    let done = env.wait_phase(&ns, what, "Succeeded", Duration::from_secs(40)).await?;
    ensure(
        done["status"]["target"] == format!("named token {TOKEN_ID}"),
        format!("status names the token read: {}", done["status"]["target"]),
    )?;
    ensure(
        env.sim.count("PATCH", &path).await? == 1,
        "exactly one revoking call for the token the rotation named",
    )?;

    for (name, source, expected) in [
        (
            "both-ways",
            format!("{from_map}\n    tokenId: {TOKEN_ID}"),
            "scope NamedToken needs tokenId or tokenIdFrom (one of them)",
        ),
        (
            "both-kinds",
            "{configMapKeyRef: {name: a, key: b}, secretKeyRef: {name: a, key: b}}".to_string(),
            "set exactly one of secretKeyRef and configMapKeyRef",
        ),
    ] {
        match env.apply(&ns, &named_token_from(name, &source)) {
            Ok(out) => return Err(format!("{name}: the API server accepted it: {out}")),
            Err(e) => ensure(e.contains(expected), format!("{name}: {e}"))?,
        }
    }
    Ok(())
}
