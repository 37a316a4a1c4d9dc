//! What GitOps tools make of Revoker's objects: the upstream kstatus library (hack/kstatus, used
//! by Flux, kpt and kubectl-based rollout tools) and the Argo CD health checks of deploy/argocd
//! (run by Debian's Lua 5.1, the Lua Argo CD implements), both read real objects the controller
//! wrote in every phase.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::Env;
use crate::cases::{
    OZ_SELF_PATH, WAIT, X509_PATH, condition, ensure, example, jwks, namespace_with_providers, providers, reason,
};
use crate::env::{OPERATOR_NS, ROOT, Result, sh, wait_for};
use crate::sim::status_fault;

const IDP_PATH: &str =
    "/api/atlas/v2/federationSettings/55fa922fb343282757d9554e/identityProviders/32b6e34b3d91647abb20e7b8";
const OZ_USER_CHECK_PATH: &str = "/api/v3/onezone/user";

/// An object as the controller left it, and what each tool must say of it.
struct Seen {
    what: String,
    object: Value,
    kstatus: &'static str,
    argo: &'static str,
}

fn condition_reason(obj: &Value, type_: &str) -> Option<String> {
    condition(obj, type_)
        .and_then(|c| c["reason"].as_str())
        .map(String::from)
}

pub async fn gitops_tools_read_every_phase(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "health")?;
    let mut seen = vec![];
    let mut keep = |what: &str, object: Value, kstatus, argo| {
        seen.push(Seen {
            what: what.to_string(),
            object,
            kstatus,
            argo,
        })
    };

    // Revoked, one per kind, and a dry run that passed.
    env.apply(&ns, &jwks("revoked", ""))?;
    env.apply(&ns, &example("revocations/infisical-auth-method.yaml")?)?;
    env.apply(&ns, &example("revocations/onezone-user-temporary-tokens.yaml")?)?;
    env.apply(&ns, &jwks("dry-run", "  dryRun: true\n"))?;
    for what in [
        "jwksrevocation/revoked",
        "authmethodrevocation/infisical-identity-azure-auth",
        "tokenrevocation/onezone-user-temporary-tokens",
        "jwksrevocation/dry-run",
    ] {
        keep(
            what,
            env.wait_phase(&ns, what, "Succeeded", WAIT).await?,
            "Current",
            "Healthy",
        );
    }
    keep(
        "revocationprovider/atlas",
        env.get_json(&ns, "revocationprovider/atlas")?,
        "Current",
        "Healthy",
    );

    // Waiting: suspended, and a provider that does not exist.
    env.apply(&ns, &jwks("suspended", "  suspend: true\n"))?;
    let suspended = wait_reason(env, &ns, "jwksrevocation/suspended", "Suspended").await?;
    keep("jwksrevocation/suspended", suspended, "InProgress", "Suspended");
    let orphan = jwks("orphan", "").replace("name: atlas\n", "name: no-such-provider\n");
    env.apply(&ns, &orphan)?;
    let orphan = wait_reason(env, &ns, "jwksrevocation/orphan", "ProviderNotFound").await?;
    keep("jwksrevocation/orphan", orphan, "InProgress", "Progressing");

    // Running: a retry is scheduled after a 503.
    env.sim.fault(status_fault("DELETE", OZ_SELF_PATH, 503, None)).await?;
    env.apply(&ns, &example("revocations/onezone-current-user-temporary-tokens.yaml")?)?;
    let what = "tokenrevocation/onezone-own-temporary-tokens";
    let retrying = wait_for(WAIT, "a scheduled retry", || {
        let obj = env.get_json(&ns, what).ok();
        async move { obj.filter(|o| o["status"]["phase"] == "Running" && o["status"]["nextRetryTime"].is_string()) }
    })
    .await?;
    keep(what, retrying, "InProgress", "Progressing");
    sh(env.kubectl().args(["delete", what, "-n", &ns, "--wait=false"]))?;
    env.sim.clear_calls_and_faults().await?;

    // Failed for good: a permanent error, and a dry run whose target is missing.
    env.sim.fault(status_fault("DELETE", X509_PATH, 403, None)).await?;
    env.apply(&ns, &example("revocations/atlas-x509.yaml")?)?;
    let what = "authmethodrevocation/atlas-project-x509";
    keep(
        what,
        env.wait_phase(&ns, what, "Failed", WAIT).await?,
        "Failed",
        "Degraded",
    );
    let mut missing = status_fault("GET", IDP_PATH, 404, None);
    missing["match"]["exact"] = json!(true);
    env.sim.fault(missing).await?;
    env.apply(&ns, &jwks("dry-run-missing", "  dryRun: true\n"))?;
    let what = "jwksrevocation/dry-run-missing";
    keep(
        what,
        env.wait_phase(&ns, what, "Failed", WAIT).await?,
        "Failed",
        "Degraded",
    );
    env.sim.clear_calls_and_faults().await?;

    // Providers: a rejected key (Stalled), an unavailable provider (re-checked: Reconciling), a
    // cluster provider whose Secret is missing (Stalled).
    let rejected = providers(env)?
        .split("\n---\n")
        .filter(|doc| doc.contains("name: atlas-credentials\n") || doc.contains("name: atlas\n"))
        .collect::<Vec<_>>()
        .join("\n---\n")
        .replace("name: atlas-credentials", "name: rejected-credentials")
        .replace("name: atlas\n", "name: rejected\n")
        .replace("privateKey: sim-private-key", "privateKey: not-the-private-key");
    env.apply(&ns, &rejected)?;
    let rejected = wait_condition(env, &ns, "revocationprovider/rejected", "Stalled", "Unauthorized").await?;
    keep("revocationprovider/rejected", rejected, "Failed", "Degraded");
    let mut down = status_fault("GET", OZ_USER_CHECK_PATH, 503, None);
    down["match"]["exact"] = json!(true);
    env.sim.fault(down).await?;
    let unavailable = format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: RevocationProvider\nmetadata:\n  name: unavailable\nspec:\n  onezone:\n    baseUrl: {}\n    credentialsSecretRef: {{name: onezone-credentials}}\n",
        env.sim.base_url()
    );
    env.apply(&ns, &unavailable)?;
    let what = "revocationprovider/unavailable";
    let unavailable = wait_condition(env, &ns, what, "Reconciling", "ProviderUnavailable").await?;
    keep(what, unavailable, "InProgress", "Progressing");
    env.sim.clear_calls_and_faults().await?;
    let cluster_name = format!("health-{}", std::process::id() % 100000);
    let cluster = format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: ClusterRevocationProvider\nmetadata:\n  name: {cluster_name}\nspec:\n  onezone:\n    baseUrl: {}\n    credentialsSecretRef: {{name: no-such-secret}}\n",
        env.sim.base_url()
    );
    env.apply(OPERATOR_NS, &cluster)?;
    let what = format!("clusterrevocationprovider/{cluster_name}");
    let cluster = wait_condition(env, OPERATOR_NS, &what, "Stalled", "CredentialsUnavailable").await;
    sh(env.kubectl().args(["delete", &what, "--wait=false"]))?;
    keep(&what, cluster?, "Failed", "Degraded");

    // Not seen by the controller yet: no status. kstatus counts it as Current (the library's rule
    // for an object without conditions); Argo CD's check says Progressing.
    let unseen = json!({
        "apiVersion": "revoker.dev/v1alpha1", "kind": "TokenRevocation",
        "metadata": {"name": "unseen", "namespace": ns, "generation": 1},
        "spec": {"providerRef": {"name": "onezone"}},
    });
    keep("tokenrevocation/unseen", unseen, "Current", "Progressing");

    let kstatus = kstatus_of(env, &seen)?;
    let lua = lua_interpreter()?;
    let mut wrong = vec![];
    for item in &seen {
        let name = item.object["metadata"]["name"].as_str().unwrap_or_default();
        let kind = item.object["kind"].as_str().unwrap_or_default();
        let (status, message) = kstatus
            .get(&format!("{kind}/{name}"))
            .cloned()
            .unwrap_or_else(|| ("(missing)".into(), String::new()));
        if status != item.kstatus {
            wrong.push(format!(
                "kstatus says {status} ({message}) of {}, expected {}",
                item.what, item.kstatus
            ));
        }
        let (health, message) = argo_health(env, &lua, kind, &item.object)?;
        if health != item.argo {
            wrong.push(format!(
                "Argo CD says {health} ({message}) of {}, expected {}",
                item.what, item.argo
            ));
        }
        eprintln!(
            "  {:<58} kstatus {status:<10} Argo CD {health:<11} {message}",
            item.what
        );
        let why = reason_of(&item.object);
        if item.argo != "Healthy" && item.object.get("status").is_some() && !message.contains(&why) {
            wrong.push(format!(
                "Argo CD's message for {} does not give the reason {why}: {message}",
                item.what
            ));
        }
    }
    ensure(wrong.is_empty(), wrong.join("\n  "))
}

/// The reason shown in the condition that holds the message.
fn reason_of(obj: &Value) -> String {
    ["Stalled", "Reconciling", "Ready"]
        .iter()
        .find(|type_| {
            obj["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == **type_ && c["status"] == "True"))
        })
        .and_then(|type_| condition_reason(obj, type_))
        .unwrap_or_else(|| reason(obj))
}

async fn wait_reason(env: &Env, ns: &str, what: &str, expected: &str) -> Result<Value> {
    wait_for(WAIT, &format!("{what} reason {expected}"), || {
        let obj = env.get_json(ns, what).ok();
        async move { obj.filter(|o| reason(o) == expected) }
    })
    .await
}

/// Wait until condition `type_` of `what` is True with `expected` as its reason.
async fn wait_condition(env: &Env, ns: &str, what: &str, type_: &str, expected: &str) -> Result<Value> {
    wait_for(WAIT, &format!("{what} {type_}=True {expected}"), || {
        let obj = env.get_json(ns, what).ok();
        async move {
            obj.filter(|o| {
                o["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == type_ && c["status"] == "True" && c["reason"] == expected)
                })
            })
        }
    })
    .await
}

/// `KIND/NAME` → (status, message) as the kstatus library computes them.
fn kstatus_of(env: &Env, seen: &[Seen]) -> Result<BTreeMap<String, (String, String)>> {
    let dir = sh(Command::new(format!("{ROOT}/hack/kstatus.sh")).arg("path"))?;
    let list = json!({"apiVersion": "v1", "kind": "List", "items": seen.iter().map(|s| &s.object).collect::<Vec<_>>()});
    let input = env.work.join("kstatus-input.json");
    std::fs::write(&input, list.to_string()).map_err(|e| e.to_string())?;
    let stdin = std::fs::File::open(&input).map_err(|e| e.to_string())?;
    let out = sh(Command::new(Path::new(dir.trim()).join("kstatus")).stdin(Stdio::from(stdin)))?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut cells = line.splitn(3, '\t');
            let object = cells.next()?.to_string();
            let status = cells.next()?.to_string();
            Some((object, (status, cells.next().unwrap_or_default().to_string())))
        })
        .collect())
}

fn lua_interpreter() -> Result<String> {
    Ok(sh(Command::new(format!("{ROOT}/hack/lua.sh")).arg("path"))?
        .trim()
        .to_string())
}

/// Run the kind's `health.lua` as Argo CD does (the object as the global `obj`, the script's
/// returned table read); answers (status, message).
fn argo_health(env: &Env, lua: &str, kind: &str, obj: &Value) -> Result<(String, String)> {
    let script = format!("{ROOT}/deploy/argocd/revoker.dev/{kind}/health.lua");
    let runner = format!(
        "obj = {}\nlocal check = assert(loadfile(arg[1]))\nlocal hs = check()\nio.write(tostring(hs.status), \"\\t\", tostring(hs.message), \"\\n\")\n",
        lua_value(obj)
    );
    let path = env.work.join("argo-health-runner.lua");
    std::fs::write(&path, runner).map_err(|e| e.to_string())?;
    let out = sh(Command::new(lua).arg(&path).arg(&script))?;
    let (status, message) = out.trim_end().split_once('\t').unwrap_or((out.trim_end(), ""));
    Ok((status.to_string(), message.to_string()))
}

/// A JSON value as a Lua table constructor (null → nil, arrays 1-based), as Argo CD hands it over.
fn lua_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua_value).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}
