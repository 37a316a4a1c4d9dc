//! `revoker revoke -f`: break-glass, no cluster. The binary runs with no kubeconfig at all,
//! against the provider simulator, with the provider and credentials from local manifests.

use std::process::Command;

use serde_json::{Value, json};

use crate::Env;
use crate::batch::NAMED_PREFIX;
use crate::cases::{ensure, providers};
use crate::env::Result;

const TOKEN: &str = "9999aaaa9999bbbb9999cccc9999dddd";

/// `revoker revoke ARGS -o json` with no cluster; (exit success, the printed statuses, stderr).
fn revoke(env: &Env, files: &[(&str, String)], extra: &[&str]) -> Result<(bool, Vec<Value>, String)> {
    let dir = env.work.join("breakglass");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_revoker"));
    cmd.args(["revoke", "-o", "json"]);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        cmd.arg("-f").arg(path);
    }
    let out = cmd
        .args(extra)
        .env("KUBECONFIG", "/nonexistent")
        .env_remove("REVOKER_ALLOWED_HOSTS")
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let reports: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_default();
    Ok((out.status.success(), reports, stderr))
}

fn named(name: &str, token: &str, extra: &str) -> String {
    format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: {name}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: NamedToken, tokenId: \"{token}\"}}\n{extra}"
    )
}

fn reason(report: &Value) -> String {
    report["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Success, dry run, each error class (permanent, transient, rejected credentials), a host not
/// allowed, a missing credential (then given by an env file): the same status shape and reasons as
/// the controller, non-zero exits on failure, and no credential in anything printed.
pub async fn break_glass_revoke_needs_no_cluster(env: &mut Env) -> Result<()> {
    env.sim.clear_calls_and_faults().await?;
    env.sim
        .merge_state(json!({"onezone": {"namedTokens": [
            {"id": TOKEN, "name": "break-glass", "userId": "9a8b7c6d5e4f30211203f4e5d6c7b8a9"}
        ]}}))
        .await?;
    let allow = format!("http://127.0.0.1:{}", env.sim.port);
    let allowed = ["--allowed-host", allow.as_str()];
    let providers = providers(env)?;
    let path = format!("{NAMED_PREFIX}{TOKEN}");

    // Dry run: read-only, nothing revoked.
    let files = [
        ("providers.yaml", providers.clone()),
        ("rev.yaml", named("glass", TOKEN, "  dryRun: true\n")),
    ];
    let (ok, reports, err) = revoke(env, &files, &allowed)?;
    ensure(
        ok && reason(&reports[0]) == "DryRunSucceeded",
        format!("dry run: {reports:?} {err}"),
    )?;
    ensure(env.sim.count("PATCH", &path).await? == 0, "a dry run revoked nothing")?;

    // The real thing.
    let files = [
        ("providers.yaml", providers.clone()),
        ("rev.yaml", named("glass", TOKEN, "")),
    ];
    let (ok, reports, err) = revoke(env, &files, &allowed)?;
    ensure(
        ok && reports[0]["status"]["phase"] == "Succeeded" && reports[0]["status"]["attempts"] == 1,
        format!("revoke: {reports:?} {err}"),
    )?;
    ensure(env.sim.count("PATCH", &path).await? == 1, "exactly one revoking call")?;

    // Each failure exits non-zero with the classified reason.
    let unknown = named("gone", "0000aaaa0000bbbb0000cccc0000dddd", "");
    let (ok, reports, err) = revoke(
        env,
        &[("providers.yaml", providers.clone()), ("rev.yaml", unknown)],
        &allowed,
    )?;
    ensure(
        !ok && reason(&reports[0]) == "TargetNotFound" && err.contains("TargetNotFound"),
        format!("a permanent error: {reports:?} {err}"),
    )?;
    env.sim
        .fault(json!({"match": {"method": "PATCH", "path": path, "exact": true}, "kind": "status", "status": 503, "times": 1}))
        .await?;
    let files = [
        ("providers.yaml", providers.clone()),
        ("rev.yaml", named("busy", TOKEN, "")),
    ];
    let (ok, reports, err) = revoke(env, &files, &allowed)?;
    ensure(
        !ok && reason(&reports[0]) == "ProviderUnavailable",
        format!("a transient error: {reports:?} {err}"),
    )?;
    let wrong = providers.replace("sim-onezone-admin-token", "not-a-valid-token");
    let (ok, reports, err) = revoke(
        env,
        &[("providers.yaml", wrong), ("rev.yaml", named("creds", TOKEN, ""))],
        &allowed,
    )?;
    ensure(
        !ok && reason(&reports[0]) == "Unauthorized",
        format!("rejected credentials: {reports:?} {err}"),
    )?;

    // The egress allow-list: the simulator is not an official provider host.
    let calls = env.sim.total().await?;
    let (ok, reports, err) = revoke(
        env,
        &[
            ("providers.yaml", providers.clone()),
            ("rev.yaml", named("egress", TOKEN, "")),
        ],
        &[],
    )?;
    ensure(
        !ok && reason(&reports[0]) == "HostNotAllowed",
        format!("host not allowed: {reports:?} {err}"),
    )?;
    ensure(env.sim.total().await? == calls, "a host not allowed received nothing")?;

    // No credentials Secret among the files: CredentialsUnavailable; an env file gives the keys.
    let without_secret: String = providers
        .split("\n---\n")
        .filter(|d| !d.contains("name: onezone-credentials\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let files = [
        ("providers.yaml", without_secret.clone()),
        ("rev.yaml", named("nocreds", TOKEN, "")),
    ];
    let (ok, reports, err) = revoke(env, &files, &allowed)?;
    ensure(
        !ok && reason(&reports[0]) == "CredentialsUnavailable",
        format!("missing credentials: {reports:?} {err}"),
    )?;
    let env_file = env.work.join("breakglass/onezone.env");
    std::fs::write(&env_file, "token=sim-onezone-admin-token\n").map_err(|e| e.to_string())?;
    let env_file = env_file.display().to_string();
    let with_env = [allowed[0], allowed[1], "--env-file", env_file.as_str()];
    let (ok, reports, err) = revoke(env, &files, &with_env)?;
    ensure(
        ok && reports[0]["status"]["phase"] == "Succeeded",
        format!("credentials from an env file: {reports:?} {err}"),
    )?;
    let printed = format!("{reports:?} {err}");
    ensure(!printed.contains("sim-onezone-admin-token"), "a credential was printed")?;
    Ok(())
}
