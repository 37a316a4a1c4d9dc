//! The revocation object that executes one run of a triggered revocation: the parent's spec
//! without the trigger, pinned to the value the run is for.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::api::{OnChangeTrigger, RunTrigger};
use crate::controller::resources::Revocation;

/// Label of a run object: the uid of the triggered revocation it belongs to.
pub const RUN_OF_UID_LABEL: &str = "revoker.dev/run-of-uid";
/// Label of a run object: OnChange or Schedule.
pub const TRIGGER_LABEL: &str = "revoker.dev/trigger";
/// Annotation of a run object: the name of the triggered revocation.
pub const RUN_OF_ANNOTATION: &str = "revoker.dev/run-of";
/// Annotation of a run object: the run id.
pub const RUN_ID_ANNOTATION: &str = "revoker.dev/run-id";
/// Annotation of a run object: the fingerprint of the value it is for (onChange).
pub const RUN_FINGERPRINT_ANNOTATION: &str = "revoker.dev/run-fingerprint";

/// Hex digits of the fingerprint in an onChange run's id and name.
const ID_HEX: usize = 12;

/// The value the watched key held when a run was started.
pub struct Watched {
    /// `sha256:` + hex of the value.
    pub fingerprint: String,
    /// The value (text; it may be a secret: it is only ever parsed as an identifier or pinned).
    pub value: SecretString,
}

/// The id of a run: `c-` and 12 hex digits of the changed value's fingerprint, or `s-` and the
/// scheduled time in Unix minutes (as a CronJob names its Jobs).
pub fn run_id(trigger: RunTrigger, fingerprint: Option<&str>, scheduled_unix_seconds: i64) -> String {
    match (trigger, fingerprint) {
        (RunTrigger::OnChange, Some(fp)) => {
            let hex = fp.trim_start_matches("sha256:");
            format!("c-{}", &hex[..hex.len().min(ID_HEX)])
        }
        _ => format!("s-{}", scheduled_unix_seconds.div_euclid(60)),
    }
}

/// `<parent>-<id without its prefix>`, the parent's name shortened to keep a valid object name.
pub fn run_name(parent: &str, id: &str) -> String {
    let suffix = id.split_once('-').map_or(id, |(_, rest)| rest);
    let room = 253 - 1 - suffix.len();
    let mut head = &parent[..parent.len().min(room)];
    head = head.trim_end_matches(['-', '.']);
    format!("{head}-{suffix}")
}

/// The run object of `parent` for run `id`: its spec without trigger, suspend and TTL; with the
/// identifiers the spec reads from the watched key replaced by `watched`'s value, and a token
/// read from that key pinned to its fingerprint (so the run revokes the value it was started
/// for, whatever the key holds by the time it runs). Errors say why the value cannot be used.
pub fn run_object<K: Revocation>(
    parent: &K,
    id: &str,
    trigger: RunTrigger,
    on_change: Option<(&OnChangeTrigger, &Watched)>,
) -> Result<K, String> {
    let mut object = serde_json::to_value(parent).map_err(|e| e.to_string())?;
    let spec = object
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or("the revocation has no spec")?;
    for field in ["trigger", "suspend", "ttlSecondsAfterFinished"] {
        spec.remove(field);
    }
    if let Some((watch, watched)) = on_change {
        inline_watched(parent, spec, watch, watched)?;
    }
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
        root.insert(
            "metadata".into(),
            metadata(parent, id, trigger, on_change.map(|(_, w)| w)),
        );
    }
    serde_json::from_value(object).map_err(|e| e.to_string())
}

fn metadata<K: Revocation>(parent: &K, id: &str, trigger: RunTrigger, watched: Option<&Watched>) -> Value {
    let mut labels = parent.labels().clone();
    labels.insert(RUN_OF_UID_LABEL.into(), parent.uid().unwrap_or_default());
    labels.insert(TRIGGER_LABEL.into(), trigger.as_str().into());
    let mut annotations = BTreeMap::from([
        (RUN_OF_ANNOTATION.to_string(), parent.name_any()),
        (RUN_ID_ANNOTATION.to_string(), id.to_string()),
    ]);
    if let Some(watched) = watched {
        annotations.insert(RUN_FINGERPRINT_ANNOTATION.into(), watched.fingerprint.clone());
    }
    let owner = OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: parent.name_any(),
        uid: parent.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    json!({
        "name": run_name(&parent.name_any(), id),
        "namespace": parent.namespace(),
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [owner],
    })
}

/// Replace each `…From` that reads the watched key with the identifier it holds, and pin a
/// `tokenSecretRef` to the watched key with the value's fingerprint.
fn inline_watched<K: Revocation>(
    parent: &K,
    spec: &mut serde_json::Map<String, Value>,
    watch: &OnChangeTrigger,
    watched: &Watched,
) -> Result<(), String> {
    let (kind, name) = watch.object();
    for lookup in parent.id_lookups() {
        let at = match kind {
            "Secret" => lookup.source.secret_key_ref.as_ref(),
            _ => lookup.source.config_map_key_ref.as_ref(),
        };
        if !at.is_some_and(|at| at.name == name && at.key == watch.key) {
            continue;
        }
        let place = format!("{kind} {name} key {}", watch.key);
        let id = lookup
            .identifier(watched.value.expose_secret(), &place)
            .map_err(|e| e.message)?;
        let mut path = lookup.field.trim_start_matches("spec.").split('.');
        let (Some(block), Some(field)) = (path.next(), path.next()) else {
            continue;
        };
        if let Some(block) = spec.get_mut(block).and_then(Value::as_object_mut) {
            block.remove(&format!("{field}From"));
            block.insert(field.into(), Value::String(id));
        }
    }
    if kind == "Secret" {
        for block in spec.values_mut().filter_map(Value::as_object_mut) {
            let Some(token) = block.get_mut("tokenSecretRef").and_then(Value::as_object_mut) else {
                continue;
            };
            if token.get("name") == Some(&json!(name)) && token.get("key") == Some(&json!(watch.key)) {
                token.insert("expectedFingerprint".into(), json!(watched.fingerprint));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TokenRevocation;

    const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
    const OLD: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn parent(target: Value) -> TokenRevocation {
        serde_json::from_value(json!({
            "apiVersion": "revoker.dev/v1alpha1", "kind": "TokenRevocation",
            "metadata": {"name": "rotate", "namespace": "team", "uid": "u-1", "labels": {"revoker.dev/shard": "a"},
                         "annotations": {"revoker.dev/requested-by": "alice"}},
            "spec": {"providerRef": {"name": "infisical"}, "suspend": true, "infisical": target,
                     "trigger": {"onChange": {"secretRef": {"name": "rot"}, "key": "previous"}}},
            "status": {"phase": "Succeeded", "attempts": 3},
        }))
        .expect("a TokenRevocation")
    }

    fn watch() -> OnChangeTrigger {
        serde_json::from_value(json!({"secretRef": {"name": "rot"}, "key": "previous"})).expect("a trigger")
    }

    fn watched(value: &str) -> Watched {
        Watched {
            fingerprint: crate::outcome::full_fingerprint(&SecretString::from(value.to_string())),
            value: SecretString::from(value.to_string()),
        }
    }

    #[test]
    fn a_run_revokes_the_identifier_the_key_held_when_it_started() {
        let parent = parent(json!({"scope": "UniversalAuthClientSecret", "identityId": IDENTITY,
            "clientSecretIdFrom": {"secretKeyRef": {"name": "rot", "key": "previous"}}}));
        let value = watched(&format!("{OLD}\n"));
        let id = run_id(RunTrigger::OnChange, Some(&value.fingerprint), 0);
        let run = run_object(&parent, &id, RunTrigger::OnChange, Some((&watch(), &value))).expect("a run");
        let inf = run.spec.infisical.as_ref().expect("infisical");
        assert_eq!(inf.client_secret_id.as_deref(), Some(OLD));
        assert!(inf.client_secret_id_from.is_none());
        assert!(run.spec.trigger.is_none() && run.spec.suspend.is_none() && run.status.is_none());
        assert_eq!(
            run.metadata.name.as_deref(),
            Some(format!("rotate-{}", &id[2..]).as_str())
        );
        assert_eq!(
            run.labels()["revoker.dev/shard"],
            "a",
            "a run stays in its parent's shard"
        );
        assert_eq!(run.labels()[RUN_OF_UID_LABEL], "u-1");
        assert!(!run.annotations().contains_key("revoker.dev/requested-by"));
        let owner = &run.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("TokenRevocation", "u-1", Some(true))
        );
    }

    #[test]
    fn a_token_read_from_the_key_is_pinned_to_the_value_the_run_is_for() {
        let parent = parent(json!({"scope": "AccessToken", "tokenSecretRef": {"name": "rot", "key": "previous"}}));
        let value = watched("old-token");
        let run = run_object(&parent, "c-1", RunTrigger::OnChange, Some((&watch(), &value))).expect("a run");
        let pinned = run
            .spec
            .infisical
            .and_then(|i| i.token_secret_ref)
            .and_then(|t| t.expected_fingerprint);
        assert_eq!(pinned, Some(value.fingerprint));
    }

    #[test]
    fn a_value_that_is_no_identifier_starts_no_run_and_is_not_shown() {
        let parent = parent(json!({"scope": "UniversalAuthClientSecret", "identityId": IDENTITY,
            "clientSecretIdFrom": {"secretKeyRef": {"name": "rot", "key": "previous"}}}));
        let err = run_object(
            &parent,
            "c-1",
            RunTrigger::OnChange,
            Some((&watch(), &watched("hunter2 secret"))),
        )
        .expect_err("not a UUID");
        assert!(
            err.contains("Secret rot key previous") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn run_ids_and_names_follow_the_value_or_the_scheduled_minute() {
        assert_eq!(
            run_id(RunTrigger::OnChange, Some("sha256:0123456789abcdef0000"), 0),
            "c-0123456789ab"
        );
        assert_eq!(run_id(RunTrigger::Schedule, None, 1_800_000_000), "s-30000000");
        assert_eq!(run_name("nightly", "s-30000000"), "nightly-30000000");
        let long = format!("{}-x", "a".repeat(250));
        let name = run_name(&long, "c-0123456789ab");
        assert!(name.len() <= 253 && name.ends_with("a-0123456789ab"), "{name}");
    }
}
