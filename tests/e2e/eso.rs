//! A rotation driven by the real External Secrets Operator (hack/eso.sh: built from the Go module
//! proxy, run out of cluster against the local control plane with its `fake` provider).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Env;
use crate::cases::{WAIT, ensure, namespace_with_providers};
use crate::env::{Proc, ROOT, Result, free_port, sh};

const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
/// The client secret the rotation replaced (the simulator's seeded one) and the new one.
const PREVIOUS: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CURRENT: &str = "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f";

fn revoke_path(client_secret: &str) -> String {
    format!("/api/v1/auth/universal-auth/identities/{IDENTITY}/client-secrets/{client_secret}/revoke")
}

/// Install ESO's CRDs and start its controller, out of cluster, for namespace `ns` only.
pub(crate) fn start_eso(env: &Env, ns: &str) -> Result<Proc> {
    let eso_dir = sh(Command::new(format!("{ROOT}/hack/eso.sh")).arg("path"))?;
    let eso_dir = Path::new(eso_dir.trim());
    sh(env
        .kubectl()
        .args(["apply", "--server-side", "-f"])
        .arg(eso_dir.join("crds.yaml")))?;
    sh(env.kubectl().args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/externalsecrets.external-secrets.io",
        "crd/secretstores.external-secrets.io",
    ]))?;
    let mut eso = Command::new(eso_dir.join("external-secrets"));
    eso.args(["--enable-leader-election=false", "--namespace", ns])
        .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()?))
        .env("KUBECONFIG", &env.cp.admin_kubeconfig);
    Proc::spawn(eso, env.work.join(format!("external-secrets-{ns}.log")))
}

/// A fake SecretStore holding a rotation's result, and an ExternalSecret (refreshed every second)
/// that writes it into Secret `secret` as keys `current` and `previous`.
pub(crate) fn rotation_store(secret: &str, current: &str, previous: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: {secret}}}\nspec:\n  provider:\n    fake:\n      data:\n        - {{key: client-secret-id, value: {current}}}\n        - {{key: previous-client-secret-id, value: {previous}}}\n---\napiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {secret}}}\nspec:\n  refreshInterval: 1s\n  secretStoreRef: {{name: {secret}, kind: SecretStore}}\n  target: {{name: {secret}}}\n  data:\n    - {{secretKey: current, remoteRef: {{key: client-secret-id}}}}\n    - {{secretKey: previous, remoteRef: {{key: previous-client-secret-id}}}}\n"
    )
}

/// ESO's fake store holds the rotation's result (`current` and `previous` client secret ids, the
/// AWSPREVIOUS-style layout); an ExternalSecret refreshed every second writes them into Secret
/// `ci-rotation`. A revocation that reads `previous` from that Secret revokes the replaced client
/// secret with exactly one call, and the current one is never called.
pub async fn a_rotation_by_external_secrets_revokes_the_previous_value_only(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "eso")?;
    env.sim.clear_calls_and_faults().await?;
    let _eso = start_eso(env, &ns)?;
    let store = rotation_store("ci-rotation", CURRENT, PREVIOUS);
    env.apply(&ns, &store)?;
    crate::env::wait_for(
        Duration::from_secs(60),
        "External Secrets to write Secret ci-rotation",
        || {
            let secret = env.get_json(&ns, "secret/ci-rotation").ok();
            async move { secret.filter(|s| s["data"]["previous"].is_string()) }
        },
    )
    .await?;

    let revocation = format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: previous-client-secret}}\nspec:\n  providerRef: {{name: infisical}}\n  infisical:\n    scope: UniversalAuthClientSecret\n    identityId: {IDENTITY}\n    clientSecretIdFrom: {{secretKeyRef: {{name: ci-rotation, key: previous}}}}\n"
    );
    env.apply(&ns, &revocation)?;
    let done = env
        .wait_phase(&ns, "tokenrevocation/previous-client-secret", "Succeeded", WAIT)
        .await?;
    let (old, new) = (
        env.sim.count("POST", &revoke_path(PREVIOUS)).await?,
        env.sim.count("POST", &revoke_path(CURRENT)).await?,
    );
    ensure(
        old == 1 && new == 0,
        format!("the previous client secret revoked {old} times, the current one {new} times"),
    )?;
    ensure(
        done["status"]["target"].as_str().is_some_and(|t| t.contains(PREVIOUS)),
        format!("status names the revoked client secret: {}", done["status"]["target"]),
    )?;
    Ok(())
}
