//! `revoker validate -f FILE`: check manifests offline against the CRD schemas — the OpenAPI
//! schema (types, patterns, lengths, enums, required fields) with `jsonschema`, and every CEL rule
//! that needs no old object (`oldSelf`) with the `cel` interpreter — before anything is applied.

use std::fmt;

use serde_json::Value;

use crate::api::all_crds;

/// The verdict on one document of a manifest file.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid against its CRD schema and CEL rules.
    Valid,
    /// Not a revoker.dev object (a Secret, a ConfigMap...): not checked.
    Skipped,
    /// What is wrong, one line per problem (`<path>: <why>`).
    Invalid(Vec<String>),
}

/// One checked document: what it is, and the verdict.
#[derive(Debug)]
pub struct Checked {
    /// `Kind/name` (or the document's index when it has neither).
    pub what: String,
    /// The verdict.
    pub verdict: Verdict,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Valid => write!(f, "valid    {}", self.what),
            Verdict::Skipped => write!(f, "skipped  {} (not a revoker.dev object)", self.what),
            Verdict::Invalid(problems) => {
                write!(f, "invalid  {}", self.what)?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Errors reading the manifests.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML.
    #[error("{path}: not YAML: {source}")]
    Yaml {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Check every document of a multi-document YAML text.
pub fn check_text(path: &str, text: &str) -> Result<Vec<Checked>, ValidateError> {
    let mut out = vec![];
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|source| ValidateError::Yaml {
            path: path.to_string(),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        out.push(check_object(&value, index));
    }
    Ok(out)
}

/// Check one object against its CRD.
pub fn check_object(obj: &Value, index: usize) -> Checked {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let what = if kind.is_empty() {
        format!("document {}", index + 1)
    } else {
        format!("{kind}/{name}")
    };
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let Some(group) = api_version.split_once('/').map(|(g, _)| g) else {
        return Checked {
            what,
            verdict: Verdict::Skipped,
        };
    };
    if group != "revoker.dev" {
        return Checked {
            what,
            verdict: Verdict::Skipped,
        };
    }
    let crd = all_crds().into_iter().find(|c| c.spec.names.kind == kind);
    let Some(crd) = crd else {
        let problem = format!("kind: {kind:?} is not a revoker.dev kind");
        return Checked {
            what,
            verdict: Verdict::Invalid(vec![problem]),
        };
    };
    let version = api_version.split_once('/').map(|(_, v)| v).unwrap_or_default();
    let Some(served) = crd.spec.versions.iter().find(|v| v.name == version) else {
        let problem = format!("apiVersion: {api_version:?} is not served (use revoker.dev/v1alpha1)");
        return Checked {
            what,
            verdict: Verdict::Invalid(vec![problem]),
        };
    };
    let schema = served
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let mut problems = schema_problems(&schema, obj);
    for (key, value) in obj.as_object().into_iter().flatten() {
        if !["apiVersion", "kind", "metadata"].contains(&key.as_str()) {
            unknown_fields(&schema["properties"][key], value, key, &mut problems);
        }
    }
    if name.is_empty() && obj["metadata"]["generateName"].as_str().unwrap_or_default().is_empty() {
        problems.push("metadata.name: required".into());
    }
    // CEL rules assume a value of the schema's shape; only a well-typed object is worth running them on.
    if problems.is_empty() {
        cel_problems(&schema, obj, "", &mut problems);
    }
    if problems.is_empty() {
        problems.extend(schedule_problem(obj));
    }
    let verdict = if problems.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid(problems)
    };
    Checked { what, verdict }
}

/// The OpenAPI schema's complaints, with the path of each.
/// A cron expression or time zone the controller would refuse (the schema only screens them).
fn schedule_problem(obj: &Value) -> Option<String> {
    let schedule = obj.pointer("/spec/trigger/schedule")?;
    let schedule: crate::api::ScheduleTrigger = serde_json::from_value(schedule.clone()).ok()?;
    crate::controller::trigger::schedule::Schedule::parse(&schedule).err()
}

fn schema_problems(schema: &Value, obj: &Value) -> Vec<String> {
    let validator = match jsonschema::validator_for(&strip_kubernetes_keywords(schema)) {
        Ok(v) => v,
        Err(e) => return vec![format!("the CRD schema cannot be used offline: {e}")],
    };
    validator
        .iter_errors(obj)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = at.trim_start_matches('/').replace('/', ".");
            format!("{}: {e}", if at.is_empty() { "(object)" } else { &at })
        })
        .collect()
}

/// Fields the schema does not know, as `kubectl apply` (strict field validation, its default)
/// refuses them; a `null` value counts as absent.
fn unknown_fields(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    if let (Some(props), Some(fields)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, v) in fields {
            let at = format!("{path}.{name}");
            match props.get(name) {
                Some(sub) => unknown_fields(sub, v, &at, problems),
                None if !v.is_null() && schema.get("additionalProperties").is_none() => {
                    problems.push(format!("{at}: unknown field"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            unknown_fields(items, v, &format!("{path}[{i}]"), problems);
        }
    }
}

/// The schema without the `x-kubernetes-*` extensions (CEL is run separately).
fn strip_kubernetes_keywords(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with("x-kubernetes-"))
                .map(|(k, v)| (k.clone(), strip_kubernetes_keywords(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_kubernetes_keywords).collect()),
        other => other.clone(),
    }
}

/// Run the CEL rules of `schema` (and of its properties and items) on `value`, as the API server
/// does on create: rules that compare with `oldSelf` only apply to updates and are left out.
fn cel_problems(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let source = rule["rule"].as_str().unwrap_or_default();
        if source.contains("oldSelf") {
            continue;
        }
        let message = rule["message"].as_str().unwrap_or(source);
        match evaluate(source, value) {
            Ok(true) => {}
            Ok(false) => problems.push(format!("{}: {message}", display(path))),
            Err(why) => problems.push(format!(
                "{}: rule {source:?} could not be evaluated offline: {why}",
                display(path)
            )),
        }
    }
    if let (Some(props), Some(fields)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, sub) in props {
            if let Some(v) = fields.get(name) {
                let at = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                cel_problems(sub, v, &at, problems);
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            cel_problems(items, v, &format!("{path}[{i}]"), problems);
        }
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() { "(object)" } else { path }
}

fn evaluate(source: &str, value: &Value) -> Result<bool, String> {
    let program = cel::Program::compile(source).map_err(|e| e.to_string())?;
    let mut context = cel::Context::default();
    let value = cel::to_value(value).map_err(|e| e.to_string())?;
    context.add_variable_from_value("self", value);
    match program.execute(&context).map_err(|e| e.to_string())? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!("the rule gave {other:?}, not a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(yaml: &str) -> Verdict {
        let mut checked = check_text("test.yaml", yaml).expect("YAML");
        assert_eq!(checked.len(), 1, "{checked:?}");
        checked.remove(0).verdict
    }

    fn problems(yaml: &str) -> Vec<String> {
        match verdict(yaml) {
            Verdict::Invalid(p) => p,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    const NAMED: &str = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {name: t}\nspec:\n  providerRef: {name: onezone}\n  onezone:\n";

    #[test]
    fn every_example_manifest_is_valid() {
        for dir in ["examples", "examples/revocations", "examples/rotation"] {
            for entry in
                std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + dir).expect("examples")
            {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).expect("read");
                    for checked in check_text(&path.display().to_string(), &text).expect("YAML") {
                        assert!(checked.verdict != Verdict::Valid || !checked.what.is_empty());
                        assert!(
                            !matches!(checked.verdict, Verdict::Invalid(_)),
                            "{}: {checked}",
                            path.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_schema_violation_names_the_field() {
        let p = problems(&format!("{NAMED}    scope: NamedToken\n    tokenId: \"../admin\"\n"));
        assert!(p.iter().any(|p| p.starts_with("spec.onezone.tokenId: ")), "{p:?}");
    }

    #[test]
    fn a_cel_rule_is_evaluated_offline_with_its_message() {
        let p = problems(&format!(
            "{NAMED}    scope: NamedToken\n    tokenId: abc\n    tokenIdFrom: {{configMapKeyRef: {{name: a, key: b}}}}\n"
        ));
        assert_eq!(
            p,
            [
                "spec.onezone: scope NamedToken needs tokenId or tokenIdFrom (one of them); tokenId, tokenIdFrom and namedTokenAction are not allowed otherwise"
            ]
        );
        let p = problems(
            "apiVersion: revoker.dev/v1alpha1\nkind: AuthMethodRevocation\nmetadata: {name: a}\nspec:\n  providerRef: {name: atlas}\n",
        );
        assert_eq!(p, ["spec: exactly one provider block must be set: atlas or infisical"]);
    }

    #[test]
    fn a_cron_expression_is_parsed_as_the_controller_does() {
        let nightly = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {name: t}\nspec:\n  providerRef: {name: onezone}\n  onezone: {scope: CurrentUserTemporaryTokens}\n  trigger:\n    schedule: {cron: \"0 2 * * *\", timeZone: Europe/Berlin}\n";
        assert_eq!(verdict(nightly), Verdict::Valid);
        let p = problems(&nightly.replace("0 2 * * *", "0 25 * * *"));
        assert!(p.iter().any(|p| p.contains("spec.trigger.schedule.cron")), "{p:?}");
        let p = problems(&nightly.replace("Europe/Berlin", "Mars/Olympus"));
        assert!(p.iter().any(|p| p.contains("timeZone")), "{p:?}");
        let p = problems(&nightly.replace(
            "    schedule: {cron: \"0 2 * * *\", timeZone: Europe/Berlin}\n",
            "    successfulRunsHistoryLimit: 2\n",
        ));
        assert!(
            p.iter().any(|p| p.contains("exactly one of onChange and schedule")),
            "{p:?}"
        );
    }

    #[test]
    fn an_unknown_field_is_refused_as_kubectl_does() {
        let p = problems(&format!(
            "{NAMED}    scope: NamedToken
    tokenId: abc
    tokenIdFrom: {{configMapKeyRef: {{name: a, key: b, namespace: kube-system}}}}
"
        ));
        assert!(
            p.contains(&"spec.onezone.tokenIdFrom.configMapKeyRef.namespace: unknown field".to_string()),
            "{p:?}"
        );
    }

    #[test]
    fn other_objects_are_skipped_and_unknown_kinds_refused() {
        assert_eq!(
            verdict("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"),
            Verdict::Skipped
        );
        let p = problems("apiVersion: revoker.dev/v1alpha1\nkind: Revocation\nmetadata: {name: r}\n");
        assert!(p[0].contains("not a revoker.dev kind"), "{p:?}");
    }
}
