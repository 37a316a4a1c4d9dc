//! Hostile manifests against the real API server: every one is rejected with a message naming the
//! field (or, where only the controller can tell, ends in a specific non-success reason), and the
//! simulator never sees a revoking request built from one.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Env;
use crate::cases::ensure;
use crate::env::Result;

/// A manifest and the field its rejection must name.
struct Case {
    what: String,
    manifest: Value,
    field: &'static str,
}

const FED: &str = "55fa922fb343282757d9554e";
const IDP: &str = "32b6e34b3d91647abb20e7b8";
const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const CLIENT_SECRET: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Values that must never reach a request path: URL syntax, escapes, dot segments, whitespace,
/// control characters, look-alike unicode, and lengths.
fn hostile_ids() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("dot", ".".into()),
        ("dot-dot", "..".into()),
        ("slash", "a/b".into()),
        ("backslash", "a\\b".into()),
        ("percent escape", "a%2Fb".into()),
        ("query", "a?b=c".into()),
        ("fragment", "a#b".into()),
        ("space", "a b".into()),
        ("tab", "a\tb".into()),
        ("newline", "a\nb".into()),
        ("NUL", "a\u{0}b".into()),
        (
            "cyrillic look-alike",
            "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5\u{0430}".into(),
        ),
        ("too long", "a".repeat(300)),
    ]
}

fn revocation(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "revoker.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// Each id field of each operation, with a valid spec around it.
/// A spec with one id field set to the given value.
type SpecWith = Box<dyn Fn(&str) -> Value>;

fn id_fields() -> Vec<(&'static str, &'static str, SpecWith)> {
    vec![
        (
            "JwksRevocation",
            "federationSettingsId",
            Box::new(
                |v| json!({"providerRef": {"name": "atlas"}, "atlas": {"federationSettingsId": v, "identityProviderId": IDP}}),
            ),
        ),
        (
            "JwksRevocation",
            "identityProviderId",
            Box::new(
                |v| json!({"providerRef": {"name": "atlas"}, "atlas": {"federationSettingsId": FED, "identityProviderId": v}}),
            ),
        ),
        (
            "AuthMethodRevocation",
            "groupId",
            Box::new(|v| json!({"providerRef": {"name": "atlas"}, "atlas": {"groupId": v}})),
        ),
        (
            "AuthMethodRevocation",
            "identityId",
            Box::new(
                |v| json!({"providerRef": {"name": "infisical"}, "infisical": {"identityId": v, "authMethod": "azure-auth"}}),
            ),
        ),
        (
            "TokenRevocation",
            "identityId",
            Box::new(
                |v| json!({"providerRef": {"name": "infisical"}, "infisical": {"scope": "UniversalAuthClientSecret", "identityId": v, "clientSecretId": CLIENT_SECRET}}),
            ),
        ),
        (
            "TokenRevocation",
            "clientSecretId",
            Box::new(
                |v| json!({"providerRef": {"name": "infisical"}, "infisical": {"scope": "UniversalAuthClientSecret", "identityId": IDENTITY, "clientSecretId": v}}),
            ),
        ),
        (
            "TokenRevocation",
            "userId",
            Box::new(
                |v| json!({"providerRef": {"name": "onezone"}, "onezone": {"scope": "UserTemporaryTokens", "userId": v}}),
            ),
        ),
        (
            "TokenRevocation",
            "tokenId",
            Box::new(|v| json!({"providerRef": {"name": "onezone"}, "onezone": {"scope": "NamedToken", "tokenId": v}})),
        ),
    ]
}

fn base_url_tricks() -> Vec<(&'static str, String)> {
    let host = "127.0.0.1:18080";
    vec![
        ("user info", format!("http://user@{host}")),
        ("user and password", format!("http://user:pass@{host}")),
        ("backslash path", format!("http://{host}\\path")),
        ("path", format!("http://{host}/api")),
        ("query", format!("http://{host}/?x=1")),
        ("fragment", format!("http://{host}/#f")),
        ("other scheme", format!("ftp://{host}")),
        ("javascript", "javascript:alert(1)".into()),
        ("tab", format!("http://{host}\t")),
        ("newline", format!("http://{host}\n/x")),
        ("leading space", format!(" http://{host}")),
        ("no host", "http://".into()),
    ]
}

fn catalogue() -> Vec<Case> {
    let mut cases = vec![];
    for (kind, field, spec) in id_fields() {
        for (label, value) in hostile_ids() {
            cases.push(Case {
                what: format!("{kind} {field}: {label}"),
                manifest: revocation(kind, &format!("h{}", cases.len()), spec(&value)),
                field,
            });
        }
    }
    for block in ["atlas", "infisical", "onezone"] {
        for (label, url) in base_url_tricks() {
            cases.push(Case {
                what: format!("{block} baseUrl: {label}"),
                manifest: json!({
                    "apiVersion": "revoker.dev/v1alpha1", "kind": "RevocationProvider",
                    "metadata": {"name": format!("h{}", cases.len())},
                    "spec": {block: {"baseUrl": url, "credentialsSecretRef": {"name": "creds"}}},
                }),
                field: "baseUrl",
            });
        }
    }
    let jwks = |extra: Value| {
        let mut spec = json!({"providerRef": {"name": "atlas"}, "atlas": {"federationSettingsId": FED, "identityProviderId": IDP}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        spec
    };
    let typed = [
        (
            "backoffLimit of the wrong type",
            json!({"backoffLimit": "six"}),
            "backoffLimit",
        ),
        ("negative backoffLimit", json!({"backoffLimit": -1}), "backoffLimit"),
        (
            "negative ttl",
            json!({"ttlSecondsAfterFinished": -5}),
            "ttlSecondsAfterFinished",
        ),
        ("suspend as a string", json!({"suspend": "yes"}), "suspend"),
        ("dryRun as a number", json!({"dryRun": 1}), "dryRun"),
        (
            "unknown provider kind",
            json!({"providerRef": {"kind": "Issuer", "name": "atlas"}}),
            "kind",
        ),
        ("providerRef without a name", json!({"providerRef": {}}), "name"),
        (
            "a Secret reference into another namespace",
            json!({"providerRef": {"name": "infisical"}, "atlas": null, "infisical": {"scope": "AccessToken", "tokenSecretRef": {"name": "t", "key": "k", "namespace": "kube-system"}}}),
            "namespace",
        ),
    ];
    for (label, extra, field) in typed {
        let kind = if label.starts_with("a Secret") {
            "TokenRevocation"
        } else {
            "JwksRevocation"
        };
        let mut spec = jwks(extra);
        if kind == "TokenRevocation" {
            spec.as_object_mut().map(|s| s.remove("atlas"));
        }
        cases.push(Case {
            what: label.to_string(),
            manifest: revocation(kind, &format!("h{}", cases.len()), spec),
            field,
        });
    }
    let on_change = json!({"secretRef": {"name": "rot"}, "key": "previous"});
    let schedule = json!({"cron": "0 2 * * *"});
    let triggers = [
        (
            "a trigger with both onChange and schedule",
            json!({"trigger": {"onChange": on_change, "schedule": schedule}}),
            "exactly one of onChange and schedule",
        ),
        (
            "a trigger with neither",
            json!({"trigger": {"successfulRunsHistoryLimit": 2}}),
            "exactly one of onChange and schedule",
        ),
        (
            "a trigger with a TTL",
            json!({"trigger": {"schedule": schedule}, "ttlSecondsAfterFinished": 60}),
            "ttlSecondsAfterFinished is not allowed",
        ),
        (
            "a cron expression with six fields",
            json!({"trigger": {"schedule": {"cron": "0 0 2 * * *"}}}),
            "cron",
        ),
        (
            "a cron expression with a shell command",
            json!({"trigger": {"schedule": {"cron": "0 2 * * * rm -rf /"}}}),
            "cron",
        ),
        (
            "a time zone that is a path",
            json!({"trigger": {"schedule": {"cron": "@daily", "timeZone": "../../etc/passwd"}}}),
            "timeZone",
        ),
        (
            "onChange on a Secret and a ConfigMap",
            json!({"trigger": {"onChange": {"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}, "key": "k"}}}),
            "exactly one of secretRef and configMapRef",
        ),
        (
            "onChange on a key with a slash",
            json!({"trigger": {"onChange": {"secretRef": {"name": "a"}, "key": "a/b"}}}),
            "key",
        ),
        (
            "a poll every 0 seconds",
            json!({"trigger": {"onChange": {"secretRef": {"name": "a"}, "key": "k", "pollSeconds": 0}}}),
            "pollSeconds",
        ),
        (
            "a history of 1000 runs",
            json!({"trigger": {"schedule": schedule, "successfulRunsHistoryLimit": 1000}}),
            "successfulRunsHistoryLimit",
        ),
    ];
    for (label, extra, field) in triggers {
        let spec = jwks(extra);
        cases.push(Case {
            what: label.to_string(),
            manifest: revocation("JwksRevocation", &format!("h{}", cases.len()), spec),
            field,
        });
    }
    cases.push(Case {
        what: "a provider's Secret reference into another namespace".into(),
        manifest: json!({
            "apiVersion": "revoker.dev/v1alpha1", "kind": "RevocationProvider",
            "metadata": {"name": "cross-ns"},
            "spec": {"atlas": {"credentialsSecretRef": {"name": "creds", "namespace": "kube-system"}}},
        }),
        field: "namespace",
    });
    cases
}

/// A held revocation whose target, provider or mode someone tries to change after creation.
fn immutable_fields_stay(env: &Env, ns: &str) -> Result<()> {
    let spec = json!({
        "providerRef": {"name": "atlas"}, "suspend": true,
        "atlas": {"federationSettingsId": FED, "identityProviderId": IDP},
    });
    env.apply(ns, &revocation("JwksRevocation", "held", spec.clone()).to_string())?;
    let changes = [
        (
            "identity provider id",
            json!({"atlas": {"federationSettingsId": FED, "identityProviderId": "32b6e34b3d91647abb20e7b9"}}),
        ),
        (
            "federation id",
            json!({"atlas": {"federationSettingsId": "55fa922fb343282757d9554f", "identityProviderId": IDP}}),
        ),
        ("provider", json!({"providerRef": {"name": "atlas-sa"}})),
        (
            "provider kind",
            json!({"providerRef": {"kind": "ClusterRevocationProvider", "name": "atlas"}}),
        ),
        ("dry run", json!({"dryRun": true})),
        ("retries", json!({"backoffLimit": 0})),
    ];
    for (what, change) in changes {
        let mut changed = spec.clone();
        if let (Some(spec), Some(change)) = (changed.as_object_mut(), change.as_object()) {
            spec.extend(change.clone());
        }
        match env.apply(ns, &revocation("JwksRevocation", "held", changed).to_string()) {
            Err(message) if message.contains("spec is immutable") => {}
            Err(message) => return Err(format!("changing the {what}: rejected without saying why: {message}")),
            Ok(_) => return Err(format!("changing the {what} of a revocation was accepted")),
        }
    }
    let mut triggered = spec.clone();
    triggered["trigger"] = json!({"schedule": {"cron": "0 2 * * *"}});
    match env.apply(ns, &revocation("JwksRevocation", "held", triggered).to_string()) {
        Err(message) if message.contains("spec.trigger cannot be added or removed") => Ok(()),
        Err(message) => Err(format!("adding a trigger: rejected without saying why: {message}")),
        Ok(_) => Err("adding a trigger to a one-shot revocation was accepted".into()),
    }
}

pub async fn hostile_manifests_are_rejected_and_call_nothing(env: &mut Env) -> Result<()> {
    let ns = crate::cases::namespace_with_providers(env, "hostile")?;
    let cases = catalogue();
    ensure(cases.len() >= 60, format!("only {} hostile manifests", cases.len()))?;
    let mut accepted = vec![];
    let mut offline_disagrees = vec![];
    for case in &cases {
        let offline = revoker::validate::check_object(&case.manifest, 0);
        let refused_offline = matches!(offline.verdict, revoker::validate::Verdict::Invalid(_));
        let result = env.apply(&ns, &case.manifest.to_string());
        if refused_offline != result.is_err() {
            offline_disagrees.push(format!(
                "{}: API server {}, revoker validate: {offline}",
                case.what,
                if result.is_err() { "refused" } else { "accepted" }
            ));
        }
        match result {
            Err(message) if message.contains(case.field) => {}
            Err(message) => {
                return Err(format!(
                    "{}: rejected without naming {}: {message}",
                    case.what, case.field
                ));
            }
            Ok(_) => accepted.push(case),
        }
    }
    ensure(
        offline_disagrees.is_empty(),
        format!(
            "`revoker validate` and the API server disagree:\n{}",
            offline_disagrees.join("\n")
        ),
    )?;
    // What the schema cannot express must end in a specific non-success reason.
    for case in &accepted {
        let kind = case.manifest["kind"].as_str().unwrap_or_default().to_lowercase();
        let name = case.manifest["metadata"]["name"].as_str().unwrap_or_default();
        let what = format!("{kind}/{name}");
        let obj = crate::env::wait_for(Duration::from_secs(20), &what, || {
            let obj = env.get_json(&ns, &what).ok();
            async move { obj.filter(|o| o["status"]["phase"] == "Failed") }
        })
        .await
        .map_err(|e| {
            format!(
                "{}: accepted by the API server and not failed by the controller: {e}",
                case.what
            )
        })?;
        let reason = crate::cases::reason(&obj);
        ensure(
            !reason.is_empty() && !["Revoked", "AlreadyRevoked", "DryRunSucceeded"].contains(&reason.as_str()),
            format!("{}: ended with reason {reason}", case.what),
        )?;
    }
    immutable_fields_stay(env, &ns)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let revoking: Vec<Value> = env
        .sim
        .calls()
        .await?
        .into_iter()
        .filter(|c| c["method"] != "GET")
        .filter(|c| {
            let path = c["path"].as_str().unwrap_or_default();
            path != "/api/oauth/token" && !path.ends_with("/login")
        })
        .collect();
    ensure(
        revoking.is_empty(),
        format!("hostile manifests reached the provider: {revoking:?}"),
    )?;
    eprintln!(
        "e2e: {} hostile manifests (+6 immutable-field changes), {} rejected by the API server, {} failed by the controller",
        cases.len(),
        cases.len() - accepted.len(),
        accepted.len()
    );
    Ok(())
}
