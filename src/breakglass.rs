//! `revoker revoke -f FILE`: break-glass. Executes revocation manifests directly against the
//! provider, with no cluster: the provider and its credentials come from the same (or other) local
//! files — `RevocationProvider`/`ClusterRevocationProvider` objects and `Secret` manifests — or,
//! for a credentials Secret that is not among them, from an env file or `REVOKER_CREDENTIAL_<KEY>`
//! variables. The same schema and CEL checks, id rules, egress allow-list, redaction and status
//! shape as the controller; dry runs are honoured. Exits non-zero when a revocation fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::api::{
    AuthMethodRevocation, ClusterRevocationProvider, JwksRevocation, Reason, RevocationProvider, RevocationStatus,
    TokenRevocation,
};
use crate::controller::registry::build_client;
use crate::controller::resources::{Planned, ResolvedIds, Revocation};
use crate::controller::status::{self, Stamp};
use crate::credentials::{SecretData, SecretLocation};
use crate::outcome::{AttemptContext, ProviderError};
use crate::providers::Provider;
use crate::providers::http::HttpSettings;
use crate::validate::{Verdict, check_object};

/// The prefix of environment variables holding credential keys (`REVOKER_CREDENTIAL_publicKey`).
pub const ENV_PREFIX: &str = "REVOKER_CREDENTIAL_";

/// Everything read from the files, by kind and name.
#[derive(Default)]
pub struct Manifests {
    /// The documents in file order.
    docs: Vec<Value>,
    /// Credential keys for a Secret not among the documents (env file, environment).
    fallback_credentials: BTreeMap<String, String>,
}

/// The outcome of one revocation: its name and the status the controller would write.
pub struct Executed {
    /// `Kind/name`.
    pub what: String,
    /// The status.
    pub status: RevocationStatus,
}

impl Executed {
    /// Succeeded (or a dry run that passed).
    pub fn succeeded(&self) -> bool {
        self.status.phase == crate::api::Phase::Succeeded
    }

    /// The printed shape: kind, name and status, as `kubectl get -o yaml` would show them.
    pub fn report(&self) -> Value {
        let (kind, name) = self.what.split_once('/').unwrap_or((&self.what, ""));
        json!({"kind": kind, "metadata": {"name": name}, "status": self.status})
    }
}

impl Manifests {
    /// Parse multi-document YAML texts; `env` adds credentials for Secrets not in them.
    pub fn parse(texts: &[(String, String)], env: BTreeMap<String, String>) -> Result<Self, String> {
        let mut docs = vec![];
        for (path, text) in texts {
            for doc in serde_yaml::Deserializer::from_str(text) {
                let value: Value =
                    serde::Deserialize::deserialize(doc).map_err(|e| format!("{path}: not YAML: {e}"))?;
                if !value.is_null() {
                    docs.push(value);
                }
            }
        }
        Ok(Manifests {
            docs,
            fallback_credentials: env,
        })
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// A Secret's data, decoded (`data` base64, `stringData` as is); None when not among the files.
    fn secret_data(&self, name: &str) -> Option<BTreeMap<String, ByteString>> {
        let secret = self.find("Secret", name)?;
        let mut out = BTreeMap::new();
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let decoded = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                v.as_str().unwrap_or_default(),
            )
            .unwrap_or_default();
            out.insert(k.clone(), ByteString(decoded));
        }
        for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
            out.insert(
                k.clone(),
                ByteString(v.as_str().unwrap_or_default().as_bytes().to_vec()),
            );
        }
        Some(out)
    }

    fn credentials(&self, name: &str) -> Option<BTreeMap<String, ByteString>> {
        self.secret_data(name).or_else(|| {
            (!self.fallback_credentials.is_empty()).then(|| {
                self.fallback_credentials
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                    .collect()
            })
        })
    }

    fn config_map_key(&self, name: &str, key: &str) -> Option<String> {
        self.find("ConfigMap", name)?["data"][key].as_str().map(str::to_string)
    }

    /// Execute every revocation of the files, one after another.
    pub async fn execute_all(&self, settings: &HttpSettings) -> Vec<Executed> {
        let mut out = vec![];
        for doc in &self.docs {
            let kind = doc["kind"].as_str().unwrap_or_default();
            let executed = match kind {
                "JwksRevocation" => self.execute::<JwksRevocation>(doc, settings).await,
                "AuthMethodRevocation" => self.execute::<AuthMethodRevocation>(doc, settings).await,
                "TokenRevocation" => self.execute::<TokenRevocation>(doc, settings).await,
                _ => continue,
            };
            out.push(executed);
        }
        out
    }

    async fn execute<K: Revocation>(&self, doc: &Value, settings: &HttpSettings) -> Executed {
        let what = format!("{}/{}", K::KIND, doc["metadata"]["name"].as_str().unwrap_or_default());
        let now = Timestamp::now();
        let stamp = Stamp { generation: None, now };
        let start = RevocationStatus::default();
        let fail = |err: ProviderError| {
            let status = status::failed(&start, err.reason, &err, "-", doc["spec"]["dryRun"] == true, stamp);
            Executed {
                what: what.clone(),
                status,
            }
        };
        if let Verdict::Invalid(problems) = check_object(doc, 0).verdict {
            return fail(ProviderError::permanent(Reason::InvalidSpec, problems.join("; ")));
        }
        let obj: K = match serde_json::from_value(doc.clone()) {
            Ok(obj) => obj,
            Err(e) => return fail(ProviderError::permanent(Reason::InvalidSpec, e.to_string())),
        };
        if let Err(invalid) = obj.validate_ids() {
            return fail(ProviderError::permanent(Reason::InvalidSpec, invalid.to_string()));
        }
        let (client, op) = match self.prepare(&obj, settings) {
            Ok(ready) => ready,
            Err(err) => return fail(err),
        };
        let dry_run = obj.lifecycle().dry_run;
        let attempt = status::attempt_recorded(&start, &op.target(), stamp);
        let result = if dry_run {
            client.dry_run(&op).await
        } else {
            client.revoke(&op, AttemptContext { earlier_attempt: false }).await
        };
        let stamp = Stamp {
            generation: None,
            now: Timestamp::now(),
        };
        let status = match result {
            Ok(outcome) => status::succeeded(&attempt, &outcome, op.name(), stamp),
            Err(err) => status::failed(&attempt, err.reason, &err, op.name(), dry_run, stamp),
        };
        Executed { what, status }
    }

    /// The provider client and the operation, from the local files only.
    fn prepare<K: Revocation>(
        &self,
        obj: &K,
        settings: &HttpSettings,
    ) -> Result<(Arc<dyn Provider>, crate::providers::Operation), ProviderError> {
        let mut ids = ResolvedIds::default();
        for lookup in obj.id_lookups() {
            let (raw, place) = match (&lookup.source.secret_key_ref, &lookup.source.config_map_key_ref) {
                (Some(at), _) => (
                    self.secret_data(&at.name)
                        .and_then(|d| d.get(&at.key).map(|b| String::from_utf8_lossy(&b.0).into_owned())),
                    format!("Secret {} key {}", at.name, at.key),
                ),
                (None, Some(at)) => (
                    self.config_map_key(&at.name, &at.key),
                    format!("ConfigMap {} key {}", at.name, at.key),
                ),
                (None, None) => (None, lookup.field.to_string()),
            };
            let raw = raw.ok_or_else(|| unavailable(format!("{place} is not among the files")))?;
            ids.insert(lookup.field, lookup.identifier(&raw, &place)?);
        }
        let planned = obj
            .plan(&ids)
            .map_err(|why| ProviderError::permanent(Reason::InvalidSpec, why))?;
        let provider_ref = obj.lifecycle().provider_ref;
        let config = self.provider_config(&provider_ref.name)?;
        let secret_name = config.1;
        let data = self.credentials(&secret_name).ok_or_else(|| {
            unavailable(format!(
                "credentials Secret {secret_name} is not among the files, and no --env-file or {ENV_PREFIX}<KEY> variable gives its keys"
            ))
        })?;
        let at = SecretLocation {
            namespace: "local",
            name: &secret_name,
        };
        let client = build_client(&config.0, &SecretData { data: &data, at }, settings)?;
        let op = match planned {
            Planned::Ready(op) => op,
            Planned::SecretTarget { ref secret, .. } => {
                let data = self.secret_data(&secret.name).ok_or_else(|| {
                    unavailable(format!(
                        "Secret {} (the token to revoke) is not among the files",
                        secret.name
                    ))
                })?;
                let at = SecretLocation {
                    namespace: "local",
                    name: &secret.name,
                };
                let token = crate::credentials::secret_value(&data, &secret.key, at)?;
                if let Some(pin) = &secret.expected_fingerprint
                    && crate::outcome::full_fingerprint(&token) != *pin
                {
                    return Err(ProviderError::permanent(
                        Reason::TargetChanged,
                        format!(
                            "Secret {} key {} holds another value than expectedFingerprint; nothing was revoked",
                            secret.name, secret.key
                        ),
                    ));
                }
                planned.with_secret_value(token)
            }
        };
        Ok((client, op))
    }

    /// The provider object named `name` among the files, and its credentials Secret's name.
    fn provider_config(&self, name: &str) -> Result<(crate::api::ProviderConfig, String), ProviderError> {
        let not_found = || {
            ProviderError::permanent(
                Reason::ProviderNotFound,
                format!("no RevocationProvider or ClusterRevocationProvider {name} among the files"),
            )
        };
        let doc = self
            .find("RevocationProvider", name)
            .or_else(|| self.find("ClusterRevocationProvider", name))
            .ok_or_else(not_found)?;
        let invalid = |e: String| ProviderError::permanent(Reason::InvalidProviderConfig, e);
        if let Verdict::Invalid(problems) = check_object(doc, 0).verdict {
            return Err(invalid(problems.join("; ")));
        }
        let config = if doc["kind"] == "RevocationProvider" {
            serde_json::from_value::<RevocationProvider>(doc.clone())
                .map_err(|e| invalid(e.to_string()))?
                .spec
                .config()
        } else {
            serde_json::from_value::<ClusterRevocationProvider>(doc.clone())
                .map_err(|e| invalid(e.to_string()))?
                .spec
                .config()
        }
        .ok_or_else(|| invalid("the provider sets no provider block".into()))?;
        let block = ["atlas", "infisical", "onezone"]
            .into_iter()
            .find(|b| doc["spec"][*b].is_object())
            .unwrap_or_default();
        let secret = doc["spec"][block]["credentialsSecretRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((config, secret))
    }
}

fn unavailable(message: String) -> ProviderError {
    ProviderError::permanent(Reason::CredentialsUnavailable, message)
}

/// `KEY=VALUE` lines (blank lines and `#` comments skipped; one pair of surrounding quotes removed).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// Credential keys from `REVOKER_CREDENTIAL_<KEY>` variables.
pub fn credentials_from_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix(ENV_PREFIX).map(|k| (k.to_string(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_file_gives_credential_keys() {
        let env = parse_env_file("# Atlas\npublicKey=abc\nprivateKey=\"p q\"\n\nbroken line\n");
        assert_eq!(env.get("publicKey").map(String::as_str), Some("abc"));
        assert_eq!(env.get("privateKey").map(String::as_str), Some("p q"));
        assert_eq!(env.len(), 2);
    }
}
