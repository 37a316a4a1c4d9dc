//! Who asked, recorded by the API server (deploy/admission/requester.yaml): two real users
//! (ServiceAccount tokens the local control plane issues) create and edit revocations.

use std::process::Command;

use crate::Env;
use crate::cases::ensure;
use crate::env::{ROOT, Result, sh};

const POLICIES: &str = "deploy/admission/requester.yaml";

/// kubectl as `user` (a kubeconfig with that user's token).
fn kubectl_as(env: &Env, kubeconfig: &std::path::Path) -> Command {
    let mut cmd = Command::new(env.cp.bin_dir.join("kubectl"));
    cmd.arg("--kubeconfig").arg(kubeconfig);
    cmd
}

/// A user may create revocations (and edit them) in `ns`.
fn user(env: &Env, ns: &str, name: &str) -> Result<std::path::PathBuf> {
    let rbac = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}}}\nrules:\n  - apiGroups: [revoker.dev]\n    resources: [tokenrevocations]\n    verbs: [create, get, list, patch, update]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\nsubjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]\n"
    );
    env.apply(ns, &rbac)?;
    let path = env.work.join(format!("{name}-{ns}.kubeconfig"));
    crate::env::write_token_kubeconfig(&env.cp, ns, name, &path)?;
    Ok(path)
}

/// A create that sets the requester annotation gets it overwritten with the real requester (and
/// groups); an update that changes or removes it is refused for everyone, admin included; other
/// annotations stay editable.
pub async fn the_api_server_records_who_asked(env: &mut Env) -> Result<()> {
    sh(env.kubectl().args(["apply", "-f", &format!("{ROOT}/{POLICIES}")]))?;
    let result = who_asked(env).await;
    sh(env.kubectl().args(["delete", "-f", &format!("{ROOT}/{POLICIES}")]))?;
    result
}

async fn who_asked(env: &Env) -> Result<()> {
    let ns = env.namespace("requester")?;
    let alice = user(env, &ns, "alice")?;
    let bob = user(env, &ns, "bob")?;
    // Policies take a moment to be enforced after they are created: create under a fresh name
    // until the stamp shows (bounded); the later checks use the stamped one.
    let mut stamped = String::new();
    let mut name = String::new();
    for attempt in 0..50 {
        name = format!("asked-{attempt}");
        let manifest = format!(
            "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata:\n  name: {name}\n  annotations: {{revoker.dev/requested-by: bob}}\nspec:\n  suspend: true\n  providerRef: {{name: onezone}}\n  onezone: {{scope: CurrentUserTemporaryTokens}}\n"
        );
        let path = env.work.join(format!("{name}.yaml"));
        std::fs::write(&path, manifest).map_err(|e| e.to_string())?;
        // Right after the policies are created the API server may briefly refuse the create.
        if let Err(e) = sh(kubectl_as(env, &alice).args(["create", "-n", &ns, "-f"]).arg(&path)) {
            eprintln!("e2e: create refused while the policies settle, trying again: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        let obj = env.get_json(&ns, &format!("tokenrevocation/{name}"))?;
        stamped = obj["metadata"]["annotations"]["revoker.dev/requested-by"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if stamped != "bob" {
            let groups = obj["metadata"]["annotations"]["revoker.dev/requested-by-groups"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ensure(
                groups.split(',').any(|g| g == "system:serviceaccounts"),
                format!("the requester's groups are recorded: {groups:?}"),
            )?;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let alice_name = format!("system:serviceaccount:{ns}:alice");
    ensure(
        stamped == alice_name,
        format!("the forged requester was replaced by the real one: {stamped:?}"),
    )?;
    let denied = "recorded by the API server at create time and cannot be changed";
    for (who, mut cmd) in [
        ("alice", kubectl_as(env, &alice)),
        ("bob", kubectl_as(env, &bob)),
        ("admin", env.kubectl()),
    ] {
        let out = cmd
            .args(["annotate", "tokenrevocation", &name, "-n", &ns, "--overwrite"])
            .arg(format!("revoker.dev/requested-by=system:serviceaccount:{ns}:mallory"))
            .output()
            .map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure(
            !out.status.success() && err.contains(denied),
            format!("{who} changed the requester: {err}"),
        )?;
    }
    let out = kubectl_as(env, &bob)
        .args([
            "annotate",
            "tokenrevocation",
            &name,
            "-n",
            &ns,
            "revoker.dev/requested-by-",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    ensure(!out.status.success(), "the requester annotation was removed")?;
    sh(kubectl_as(env, &bob).args(["annotate", "tokenrevocation", &name, "-n", &ns, "team=payments"]))?;
    let obj = env.get_json(&ns, &format!("tokenrevocation/{name}"))?;
    ensure(
        obj["metadata"]["annotations"]["revoker.dev/requested-by"] == alice_name.as_str()
            && obj["metadata"]["annotations"]["team"] == "payments",
        "other annotations stay editable, the requester stays",
    )?;
    Ok(())
}
