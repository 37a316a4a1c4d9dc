//! `kubectl revoker status|approve|retry NAME` (also `revoker status|approve|retry`): the on-call
//! view of one revocation, and the two actions taken on one. Installed as a kubectl plugin by
//! naming (or linking) the binary `kubectl-revoker` on the PATH.

use clap::{Args, ValueEnum};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::{
    AuthMethodRevocation, ClusterRevocationProvider, JwksRevocation, RevocationProvider, TokenRevocation,
};

/// The annotation a retry carries: the revocation it repeats.
pub const RETRY_OF: &str = "revoker.dev/retry-of";

/// Which revocation, and where.
#[derive(Args, Debug)]
pub struct Target {
    /// The revocation: NAME (looked up among the three kinds) or KIND/NAME (`tokenrevocation/x`,
    /// `jwksrev/y`, ...).
    pub name: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Output of `status`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    /// A summary for people.
    #[default]
    Text,
    /// The revocation, its provider's readiness and its Events, as JSON.
    Json,
    /// The same as YAML.
    Yaml,
}

/// Errors of the plugin commands.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No usable kubeconfig.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The API server refused or failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// No revocation of that name.
    #[error("no JwksRevocation, AuthMethodRevocation or TokenRevocation {0} (check the name and -n)")]
    NotFound(String),
    /// The name exists in more than one kind.
    #[error("{name} is a name of {kinds}: say which, e.g. {example}")]
    Ambiguous {
        /// The name.
        name: String,
        /// The kinds holding it.
        kinds: String,
        /// KIND/NAME for the first.
        example: String,
    },
    /// `KIND/` names no revocation kind.
    #[error(
        "{0:?} is not a revocation kind (jwksrevocation, authmethodrevocation, tokenrevocation or their short names)"
    )]
    UnknownKind(String),
    /// Only a failed revocation is retried.
    #[error("{0}")]
    NotRetryable(String),
    /// Printing failed.
    #[error("cannot print: {0}")]
    Print(String),
}

/// A revocation kind as the plugin addresses it.
struct Kind {
    resource: ApiResource,
    names: [&'static str; 3],
}

fn kinds() -> [Kind; 3] {
    fn kind<K: Resource<DynamicType = ()>>(names: [&'static str; 3]) -> Kind {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            names,
        }
    }
    [
        kind::<JwksRevocation>(["jwksrevocation", "jwksrevocations", "jwksrev"]),
        kind::<AuthMethodRevocation>(["authmethodrevocation", "authmethodrevocations", "authrev"]),
        kind::<TokenRevocation>(["tokenrevocation", "tokenrevocations", "tokenrev"]),
    ]
}

/// A revocation found by name.
struct Found {
    api: Api<DynamicObject>,
    resource: ApiResource,
    obj: DynamicObject,
    namespace: String,
}

async fn client() -> Result<Client, PluginError> {
    Client::try_default().await.map_err(PluginError::Client)
}

async fn find(client: &Client, target: &Target) -> Result<Found, PluginError> {
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let (wanted, name) = match target.name.split_once('/') {
        Some((kind, name)) => {
            let kind = kind.to_ascii_lowercase();
            let wanted: Vec<Kind> = kinds()
                .into_iter()
                .filter(|k| k.names.contains(&kind.split('.').next().unwrap_or_default()))
                .collect();
            if wanted.is_empty() {
                return Err(PluginError::UnknownKind(kind));
            }
            (wanted, name.to_string())
        }
        None => (kinds().into_iter().collect(), target.name.clone()),
    };
    let mut found = vec![];
    for kind in wanted {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &kind.resource);
        if let Some(obj) = api.get_opt(&name).await? {
            found.push(Found {
                api,
                resource: kind.resource,
                obj,
                namespace: namespace.clone(),
            });
        }
    }
    match found.len() {
        0 => Err(PluginError::NotFound(format!("{namespace}/{name}"))),
        1 => Ok(found.remove(0)),
        _ => Err(PluginError::Ambiguous {
            example: format!("{}/{name}", found[0].resource.kind.to_lowercase()),
            kinds: found
                .iter()
                .map(|f| f.resource.kind.clone())
                .collect::<Vec<_>>()
                .join(" and "),
            name,
        }),
    }
}

/// `status`: phase, reason, attempts, runs, the provider's readiness and recent Events.
pub async fn status(target: &Target, output: Output) -> Result<(), PluginError> {
    let client = client().await?;
    let found = find(&client, target).await?;
    let provider = provider_of(&client, &found).await?;
    let events = events_of(&client, &found).await?;
    let report = json!({
        "revocation": serde_json::to_value(&found.obj).map_err(|e| PluginError::Print(e.to_string()))?,
        "provider": provider,
        "events": events,
    });
    let text = match output {
        Output::Text => summary(&found, &report),
        Output::Json => serde_json::to_string_pretty(&report).map_err(|e| PluginError::Print(e.to_string()))? + "\n",
        Output::Yaml => serde_yaml::to_string(&report).map_err(|e| PluginError::Print(e.to_string()))?,
    };
    print!("{text}");
    Ok(())
}

/// The referenced provider object, or a note that it is missing.
async fn provider_of(client: &Client, found: &Found) -> Result<Value, PluginError> {
    let spec = &found.obj.data["spec"]["providerRef"];
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    let cluster = spec["kind"] == "ClusterRevocationProvider";
    let obj = if cluster {
        Api::<ClusterRevocationProvider>::all(client.clone())
            .get_opt(&name)
            .await?
            .map(|p| serde_json::to_value(p).unwrap_or_default())
    } else {
        Api::<RevocationProvider>::namespaced(client.clone(), &found.namespace)
            .get_opt(&name)
            .await?
            .map(|p| serde_json::to_value(p).unwrap_or_default())
    };
    let kind = if cluster {
        "ClusterRevocationProvider"
    } else {
        "RevocationProvider"
    };
    Ok(obj.unwrap_or_else(|| json!({"kind": kind, "metadata": {"name": name}, "missing": true})))
}

/// The Events about the revocation, oldest first.
async fn events_of(client: &Client, found: &Found) -> Result<Vec<Value>, PluginError> {
    let api: Api<Event> = Api::namespaced(client.clone(), &found.namespace);
    let selector = format!(
        "regarding.name={},regarding.kind={}",
        found.obj.name_any(),
        found.resource.kind
    );
    let mut events = api.list(&ListParams::default().fields(&selector)).await?.items;
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    Ok(events
        .iter()
        .map(|e| {
            json!({
                "time": e.event_time.as_ref().map(|t| t.0.to_string()),
                "type": e.type_,
                "reason": e.reason,
                "note": e.note,
                "count": e.series.as_ref().map(|s| s.count),
            })
        })
        .collect())
}

fn summary(found: &Found, report: &Value) -> String {
    let obj = &report["revocation"];
    let status = &obj["status"];
    let spec = &obj["spec"];
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
    let reason = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"))
        .map(|c| text(&c["reason"]))
        .unwrap_or_else(|| "-".into());
    let most = spec["backoffLimit"].as_i64().unwrap_or(6) + 1;
    let mut out = format!("{} {}/{}\n", found.resource.kind, found.namespace, found.obj.name_any());
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<11} {v}\n"));
    line("Phase:", format!("{} ({reason})", text(&status["phase"])));
    line("Message:", text(&status["message"]));
    line("Target:", text(&status["target"]));
    line(
        "Attempts:",
        format!("{} of at most {most}", status["attempts"].as_i64().unwrap_or(0)),
    );
    line(
        "Suspended:",
        if spec["suspend"] == true {
            "yes (kubectl revoker approve to run it)".into()
        } else {
            "no".into()
        },
    );
    line(
        "Dry run:",
        if spec["dryRun"] == true {
            "yes".into()
        } else {
            "no".into()
        },
    );
    if let Some(executor) = status["executor"].as_object() {
        line(
            "Executor:",
            format!("{} (Lease {})", text(&executor["identity"]), text(&executor["lease"])),
        );
    }
    if let Some(who) = obj["metadata"]["annotations"]["revoker.dev/requested-by"].as_str() {
        line("Requested:", format!("by {who} (recorded by the API server)"));
    }
    if let Some(of) = obj["metadata"]["annotations"][RETRY_OF].as_str() {
        line("Retry of:", of.to_string());
    }
    trigger_lines(spec, status, &mut line);
    let provider = &report["provider"];
    let ready = provider["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| {
            format!(
                "Ready={} ({}) {}",
                text(&c["status"]),
                text(&c["reason"]),
                text(&c["message"])
            )
        })
        .unwrap_or_else(|| {
            if provider["missing"] == true {
                "not found".into()
            } else {
                "not checked yet".into()
            }
        });
    line(
        "Provider:",
        format!(
            "{} {}: {ready}",
            text(&provider["kind"]),
            text(&provider["metadata"]["name"])
        ),
    );
    out.push_str("Events (oldest first):\n");
    let events = report["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        out.push_str("  none\n");
    }
    for e in events {
        let count = e["count"].as_i64().map(|n| format!(" (x{n})")).unwrap_or_default();
        out.push_str(&format!(
            "  {} {} {}{count}: {}\n",
            text(&e["time"]),
            text(&e["type"]),
            text(&e["reason"]),
            text(&e["note"])
        ));
    }
    out
}

/// A triggered revocation: what triggers it, what is queued, and its runs (newest last).
fn trigger_lines(spec: &Value, status: &Value, line: &mut impl FnMut(&str, String)) {
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
    let trigger = &spec["trigger"];
    if trigger.is_null() {
        return;
    }
    let state = &status["trigger"];
    let what = if let Some(on) = trigger["onChange"].as_object() {
        let object = on
            .get("secretRef")
            .map(|r| format!("Secret {}", text(&r["name"])))
            .or_else(|| {
                on.get("configMapRef")
                    .map(|r| format!("ConfigMap {}", text(&r["name"])))
            })
            .unwrap_or_default();
        format!("on change of {object} key {}", text(&on["key"]))
    } else {
        let schedule = &trigger["schedule"];
        format!(
            "schedule {:?} ({}), next {}",
            text(&schedule["cron"]),
            schedule["timeZone"].as_str().unwrap_or("UTC"),
            text(&state["nextScheduleTime"])
        )
    };
    line("Trigger:", what);
    if let Some(pending) = state["pending"].as_object() {
        let of = pending
            .get("fingerprint")
            .or_else(|| pending.get("scheduledTime"))
            .map(text)
            .unwrap_or_default();
        line(
            "Queued:",
            format!(
                "a {} run ({of}) since {}",
                text(&pending["trigger"]),
                text(&pending["since"])
            ),
        );
    }
    if let Some(missed) = state["missedRuns"].as_i64() {
        line("Missed:", format!("{missed} scheduled time(s)"));
    }
    let runs = status["runs"].as_array().cloned().unwrap_or_default();
    line(
        "Runs:",
        if runs.is_empty() {
            "none yet".into()
        } else {
            format!("{} kept", runs.len())
        },
    );
    for run in runs {
        line(
            "",
            format!(
                "{} {} {} ({}) attempts {} started {} -> {}",
                text(&run["id"]),
                text(&run["trigger"]),
                text(&run["phase"]),
                text(&run["reason"]),
                run["attempts"].as_i64().unwrap_or(0),
                text(&run["startTime"]),
                text(&run["revocation"])
            ),
        );
    }
}

/// `approve`: lift `spec.suspend`, so that a held revocation runs.
pub async fn approve(target: &Target) -> Result<(), PluginError> {
    let client = client().await?;
    let found = find(&client, target).await?;
    let what = format!("{}/{}", found.resource.kind.to_lowercase(), found.obj.name_any());
    if found.obj.data["spec"]["suspend"] != true {
        println!("{what} is not suspended: nothing to approve");
        return Ok(());
    }
    let patch = json!({"spec": {"suspend": false}});
    found
        .api
        .patch(&found.obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    println!("{what} approved: spec.suspend is false, it runs now");
    Ok(())
}

/// `retry`: a fresh copy of a failed revocation, under a new name, pointing at the old one.
pub async fn retry(target: &Target, new_name: Option<String>) -> Result<(), PluginError> {
    let client = client().await?;
    let found = find(&client, target).await?;
    let old = found.obj.name_any();
    let phase = found.obj.data["status"]["phase"].as_str().unwrap_or("Pending");
    if phase != "Failed" {
        return Err(PluginError::NotRetryable(format!(
            "{old} is {phase}: only a Failed revocation is retried (a revocation is never run twice; a Succeeded one needs no retry, a Pending or Running one is still under way)"
        )));
    }
    let name = match new_name {
        Some(name) => name,
        None => free_name(&found.api, &old).await?,
    };
    let mut annotations = found.obj.annotations().clone();
    annotations.retain(|k, _| k != "kubectl.kubernetes.io/last-applied-configuration");
    annotations.insert(RETRY_OF.into(), old.clone());
    let copy = json!({
        "apiVersion": found.resource.api_version,
        "kind": found.resource.kind,
        "metadata": {"name": name, "namespace": found.namespace, "labels": found.obj.labels(), "annotations": annotations},
        "spec": found.obj.data["spec"],
    });
    let copy: DynamicObject = serde_json::from_value(copy).map_err(|e| PluginError::Print(e.to_string()))?;
    found.api.create(&PostParams::default(), &copy).await?;
    let why = found.obj.data["status"]["message"].as_str().unwrap_or("-");
    println!(
        "created {}/{name}, a fresh copy of {old} (which failed: {why})",
        found.resource.kind.to_lowercase()
    );
    Ok(())
}

/// `<old>-retry`, else `<old>-retry-2`, ... (at most 20 tries).
async fn free_name(api: &Api<DynamicObject>, old: &str) -> Result<String, PluginError> {
    let base: String = old.chars().take(240).collect();
    for n in 1..=20 {
        let name = if n == 1 {
            format!("{base}-retry")
        } else {
            format!("{base}-retry-{n}")
        };
        if api.get_opt(&name).await?.is_none() {
            return Ok(name);
        }
    }
    Err(PluginError::NotRetryable(format!(
        "{old} has 20 retries already; name the next one with --name"
    )))
}
