//! `kubectl revoker status|approve|retry`: the binary installed as a kubectl plugin
//! (`kubectl-revoker` on the PATH), run by kubectl as a person with the admin kubeconfig.

use std::process::Command;

use serde_json::{Value, json};

use crate::Env;
use crate::batch::NAMED_PREFIX;
use crate::cases::{WAIT, ensure, namespace_with_providers};
use crate::env::Result;

const HELD: &str = "1111aaaa2222bbbb3333cccc4444dddd";
const MISSING: &str = "5555eeee6666ffff7777aaaa8888bbbb";

/// `kubectl revoker ARGS`, through kubectl's plugin lookup; (exit success, stdout + stderr).
pub(crate) fn kubectl_revoker(env: &Env, args: &[&str]) -> Result<(bool, String)> {
    let plugins = env.work.join("plugins");
    std::fs::create_dir_all(&plugins).map_err(|e| e.to_string())?;
    let link = plugins.join("kubectl-revoker");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_revoker"), &link).map_err(|e| e.to_string())?;
    }
    let path = format!("{}:{}", plugins.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(env.cp.bin_dir.join("kubectl"))
        .arg("revoker")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", &env.cp.admin_kubeconfig)
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn named(name: &str, token: &str, extra: &str) -> String {
    format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: {name}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: NamedToken, tokenId: \"{token}\"}}\n{extra}"
    )
}

async fn seed(env: &Env, id: &str) -> Result<()> {
    env.sim
        .merge_state(json!({"onezone": {"namedTokens": [
            {"id": id, "name": id, "userId": "9a8b7c6d5e4f30211203f4e5d6c7b8a9"}
        ]}}))
        .await
}

/// On call: `status` shows a held revocation (phase, reason, the provider's readiness, Events),
/// `approve` lets it run once; `retry` makes a fresh copy of a failed one that then succeeds, and
/// refuses a revocation that did not fail; each failure exits non-zero with the reason.
pub async fn the_kubectl_plugin_shows_approves_and_retries(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "plugin")?;
    env.sim.clear_calls_and_faults().await?;
    seed(env, HELD).await?;
    env.apply(&ns, &named("held", HELD, "  suspend: true\n"))?;
    crate::env::wait_for(WAIT, "the revocation held and the provider Ready", || {
        let (ok, text) = kubectl_revoker(env, &["status", "held", "-n", &ns]).unwrap_or_default();
        async move { (ok && text.contains("Pending (Suspended)") && text.contains("Ready=True")).then_some(text) }
    })
    .await
    .map(|text| eprintln!("e2e: kubectl revoker status:\n{text}"))?;
    let (ok, text) = kubectl_revoker(env, &["status", "tokenrevocation/held", "-n", &ns, "-o", "json"])?;
    let report: Value = serde_json::from_str(&text).map_err(|e| format!("-o json: {e}: {text}"))?;
    ensure(
        ok && report["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["reason"] == "Suspended")),
        format!("-o json holds the Events: {text}"),
    )?;
    let path = format!("{NAMED_PREFIX}{HELD}");
    ensure(env.sim.count("PATCH", &path).await? == 0, "nothing called while held")?;
    let (ok, text) = kubectl_revoker(env, &["approve", "held", "-n", &ns])?;
    ensure(ok && text.contains("approved"), format!("approve: {text}"))?;
    env.wait_phase(&ns, "tokenrevocation/held", "Succeeded", WAIT).await?;
    ensure(env.sim.count("PATCH", &path).await? == 1, "one call after the approval")?;
    let (ok, text) = kubectl_revoker(env, &["retry", "held", "-n", &ns])?;
    ensure(
        !ok && text.contains("only a Failed revocation is retried"),
        format!("a Succeeded revocation is not retried: {text}"),
    )?;

    // A named token that does not exist (yet): Failed, TargetNotFound. Retried once it exists.
    env.apply(&ns, &named("early", MISSING, ""))?;
    env.wait_phase(&ns, "tokenrevocation/early", "Failed", WAIT).await?;
    seed(env, MISSING).await?;
    let (ok, text) = kubectl_revoker(env, &["retry", "early", "-n", &ns])?;
    ensure(
        ok && text.contains("created tokenrevocation/early-retry"),
        format!("retry: {text}"),
    )?;
    let copy = env
        .wait_phase(&ns, "tokenrevocation/early-retry", "Succeeded", WAIT)
        .await?;
    ensure(
        copy["metadata"]["annotations"]["revoker.dev/retry-of"] == "early",
        "the copy names the revocation it retries",
    )?;
    let (ok, text) = kubectl_revoker(env, &["status", "nothing-here", "-n", &ns])?;
    ensure(
        !ok && text.contains("no JwksRevocation, AuthMethodRevocation or TokenRevocation"),
        format!("an unknown name: {text}"),
    )?;
    Ok(())
}
