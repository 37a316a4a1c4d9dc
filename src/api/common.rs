use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{IdKind, InvalidId, validate_id};

/// Which provider object a revocation uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRef {
    /// Kind of the provider object: `RevocationProvider` (same namespace as the revocation) or
    /// `ClusterRevocationProvider` (cluster-scoped; its namespace selector must admit this namespace).
    #[serde(default)]
    pub kind: ProviderRefKind,
    /// Name of the provider object.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::OBJECT_NAME_PATTERN))]
    pub name: String,
}

impl ProviderRef {
    /// Check the name against [`IdKind::ObjectName`]; the error names `spec.providerRef.name`.
    pub fn validate_ids(&self) -> Result<(), InvalidId> {
        validate_id("spec.providerRef.name", IdKind::ObjectName, &self.name)
    }
}

/// Kind of provider object a revocation references.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(extend("maxLength" = 64))]
pub enum ProviderRefKind {
    /// A namespaced `RevocationProvider` in the revocation's namespace.
    #[default]
    RevocationProvider,
    /// A cluster-scoped `ClusterRevocationProvider`.
    ClusterRevocationProvider,
}

/// A key of a Secret in the revocation's namespace. The value is read only when the provider is
/// called, and is never copied into status, Events, logs or metrics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (in the revocation's namespace).
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::SECRET_KEY_PATTERN))]
    pub key: String,
    /// Optional pin: `sha256:` and the 64 lower-case hex digits of the SHA-256 of the value meant
    /// (`printf %s "$TOKEN" | sha256sum`). Only a value with this fingerprint is revoked; anything
    /// else fails with reason TargetChanged and nothing is revoked. Without it, the fingerprint of
    /// the value found when the revocation is first seen is pinned (status.targetFingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
    pub expected_fingerprint: Option<String>,
}

impl SecretKeyRef {
    /// Check the Secret name and key; errors name `<field>.name` or `<field>.key`.
    pub fn validate_ids(&self, field: &str) -> Result<(), InvalidId> {
        validate_id(&format!("{field}.name"), IdKind::ObjectName, &self.name)?;
        validate_id(&format!("{field}.key"), IdKind::SecretKey, &self.key)
    }
}

/// Where an identifier is read from instead of the manifest: a key of a Secret or of a ConfigMap in
/// the revocation's namespace, as a rotation pipeline writes it. Read when the revocation runs
/// (missing: it waits as CredentialsUnavailable); the first value read is the one revoked.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
     "message": "set exactly one of secretKeyRef and configMapKeyRef"}
]))]
pub struct IdSource {
    /// A key of a Secret in the revocation's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<ObjectKeyRef>,
    /// A key of a ConfigMap in the revocation's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ObjectKeyRef>,
}

/// A key of a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKeyRef {
    /// Name of the object (in the revocation's namespace).
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key within the object's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::SECRET_KEY_PATTERN))]
    pub key: String,
}

impl IdSource {
    /// Check the object name and key; errors name `<field>.…Ref.name` or `.key`.
    pub fn validate_ids(&self, field: &str) -> Result<(), InvalidId> {
        let (which, at) = match (&self.secret_key_ref, &self.config_map_key_ref) {
            (Some(at), _) => ("secretKeyRef", at),
            (None, Some(at)) => ("configMapKeyRef", at),
            (None, None) => return Ok(()),
        };
        validate_id(&format!("{field}.{which}.name"), IdKind::ObjectName, &at.name)?;
        validate_id(&format!("{field}.{which}.key"), IdKind::SecretKey, &at.key)
    }
}

/// A Secret in the provider's credential namespace (the provider's own namespace for a
/// `RevocationProvider`, the operator's namespace for a `ClusterRevocationProvider`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// Phase of a revocation, as a Job has.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, not yet attempted (or waiting: suspended, credentials unavailable, ...).
    #[default]
    Pending,
    /// An attempt was recorded; the provider is being called or a retry is scheduled.
    Running,
    /// The provider confirmed the revocation (or that it was already revoked, or a dry run passed).
    Succeeded,
    /// The revocation failed permanently or ran out of retries. Create a new object to try again.
    Failed,
}

impl Phase {
    /// Succeeded and Failed are final: the revocation is never executed again.
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        })
    }
}

/// What the provider answered to the last call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResult {
    /// The provider operation that was called (e.g. `revokeJwksFromIdentityProvider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// HTTP status of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<i32>")]
    pub http_status: Option<u16>,
    /// The provider's request id, when it sends one (quote it to the provider's support).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The provider's error code or error class (e.g. `RESOURCE_NOT_FOUND`, `BadRequest`, `notFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// Observed state of a revocation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevocationStatus {
    /// Pending, Running, Succeeded or Failed.
    #[serde(default)]
    pub phase: Phase,
    /// `Succeeded` (True/False/Unknown with a CamelCase reason) and, once terminal, `Failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Number of provider calls recorded. Each attempt is recorded before the call is made, so a
    /// crash between the call and the result shows here as one more attempt.
    #[serde(default)]
    pub attempts: i32,
    /// What is revoked, in words (ids only; secret targets show a SHA-256 fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Provider type of the referenced provider (atlas, infisical, onezone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the revocation finished (Succeeded or Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// When the last attempt was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    /// When the next attempt is due after a transient error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<Time>,
    /// Human-readable explanation of the current state: what happened and what to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The metadata.generation this status was written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What the provider answered to the last call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_result: Option<ProviderResult>,
    /// For a target read from a Secret: `sha256:` + the SHA-256 (hex) of the value found when the
    /// revocation was first seen (or spec's expectedFingerprint). Only that value is ever revoked;
    /// the value itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_fingerprint: Option<String>,
    /// The operator instance that recorded the last attempt. Another instance (a new leader, or
    /// the shard a relabelled revocation moved to) starts no attempt of its own while this one
    /// still holds its Lease: the call may still be under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Executor>,
    /// What a read-only look at the target showed after the revocation (where the provider
    /// offers one), or why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Triggered revocations: the runs kept (per the history limits), oldest first. The fields
    /// above and the conditions describe the newest run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<super::RunRecord>,
    /// Triggered revocations: the newest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<super::RunRecord>,
    /// Triggered revocations: what the trigger has seen, handled and queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<super::TriggerStatus>,
}

/// The receipt of a revocation: how its effect was confirmed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Verified (the read-back shows it in effect), NotApplied (it shows the target still
    /// active), NoReadBack (the provider offers no read-only check), or VerificationUnavailable
    /// (the read-back could not be made).
    pub result: String,
    /// When the read-back was made (none for NoReadBack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Time>,
    /// How: the read-only call and what it showed, or why there is none.
    pub method: String,
    /// The provider's request id of the revoking call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The provider's request id of the read-back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_request_id: Option<String>,
    /// `sha256:` and the SHA-256 of the target's description (ids only, never a secret): ties
    /// the receipt to what was revoked.
    pub target_fingerprint: String,
}

/// An operator instance, as recorded with an attempt.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    /// The instance's identity (its Pod name, or host name and process id).
    pub identity: String,
    /// `namespace/name` of the leader Lease the instance held (none without leader election).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}
