use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::LocalSecretRef;
use super::ids::{IdKind, InvalidId, validate_id};

/// Where and how to reach a provider. Revocations in the same namespace reference it with
/// `providerRef: {kind: RevocationProvider, name}`. Its credentials Secret must be in its own namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "revoker.dev",
    version = "v1alpha1",
    kind = "RevocationProvider",
    namespaced,
    status = "ProviderStatus",
    shortname = "revprov",
    category = "revoker",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.providerType"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.status==\"True\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(PROVIDER_ONE_OF).message(PROVIDER_ONE_OF_MESSAGE))]
pub struct RevocationProviderSpec {
    /// MongoDB Atlas Admin API v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atlas: Option<AtlasProvider>,
    /// Infisical (cloud or self-hosted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalProvider>,
    /// Onedata Onezone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onezone: Option<OnezoneProvider>,
    /// PEM CA certificates to trust for this provider in addition to the public web PKI roots
    /// (self-hosted Infisical or Onezone behind a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 262144))]
    pub ca_bundle: Option<String>,
    /// Cap on destructive calls through this provider: at most `maxRevocations` revocations start
    /// within any `window`; the next ones wait as Throttled. Dry runs and retries do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// A blast-radius budget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Revocations allowed to start within one window.
    #[schemars(range(min = 1, max = 100000))]
    pub max_revocations: i32,
    /// The sliding window, e.g. `1h`, `30m`, `90s`, `1h30m`.
    #[schemars(regex(pattern = r"^([0-9]{1,6}[hms]){1,3}$"), length(max = 24))]
    pub window: String,
}

impl Budget {
    /// The window as a duration (the schema admits only `<n>h`, `<n>m`, `<n>s` parts).
    pub fn window(&self) -> Option<std::time::Duration> {
        let mut total = 0u64;
        let mut number = String::new();
        for c in self.window.chars() {
            match c {
                '0'..='9' => number.push(c),
                'h' | 'm' | 's' => {
                    let n: u64 = number.parse().ok()?;
                    total += n * match c {
                        'h' => 3600,
                        'm' => 60,
                        _ => 1,
                    };
                    number.clear();
                }
                _ => return None,
            }
        }
        (number.is_empty() && total > 0).then(|| std::time::Duration::from_secs(total))
    }
}

/// One revocation counted against a provider's budget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetEntry {
    /// `Kind namespace/name` of the revocation.
    pub revocation: String,
    /// Its uid (a revocation is counted once).
    pub uid: String,
    /// When it was counted (just before its first call).
    pub at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
}

/// Like `RevocationProvider`, but cluster-scoped: its credentials Secret lives in the operator's
/// namespace, and `namespaceSelector` says which namespaces' revocations may use it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "revoker.dev",
    version = "v1alpha1",
    kind = "ClusterRevocationProvider",
    status = "ProviderStatus",
    shortname = "crevprov",
    category = "revoker",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.providerType"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.status==\"True\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(PROVIDER_ONE_OF).message(PROVIDER_ONE_OF_MESSAGE))]
pub struct ClusterRevocationProviderSpec {
    /// MongoDB Atlas Admin API v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atlas: Option<AtlasProvider>,
    /// Infisical (cloud or self-hosted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalProvider>,
    /// Onedata Onezone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onezone: Option<OnezoneProvider>,
    /// PEM CA certificates to trust for this provider in addition to the public web PKI roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 262144))]
    pub ca_bundle: Option<String>,
    /// Namespaces whose revocations may use this provider, by label. Absent: every namespace.
    /// An empty selector (`{}`) also matches every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Cap on destructive calls through this provider (all namespaces together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

const PROVIDER_ONE_OF: &str = "[has(self.atlas), has(self.infisical), has(self.onezone)].exists_one(b, b)";
const PROVIDER_ONE_OF_MESSAGE: &str = "exactly one provider block must be set: atlas, infisical or onezone";

/// MongoDB Atlas connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtlasProvider {
    /// Base URL of the Atlas Admin API: `http(s)://host[:port]`, no path, query or user name.
    /// Default `https://cloud.mongodb.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = super::BASE_URL_PATTERN), length(max = 2048))]
    pub base_url: Option<String>,
    /// Secret with either `publicKey` + `privateKey` (API key, HTTP Digest) or `clientId` +
    /// `clientSecret` (service account, OAuth2 client credentials).
    pub credentials_secret_ref: LocalSecretRef,
    /// Override the API version (the `application/vnd.atlas.<version>+json` media type) per
    /// operation id, e.g. `{disableCustomerManagedX509: "2023-01-01"}`. Defaults:
    /// revokeJwksFromIdentityProvider 2023-11-15, disableCustomerManagedX509 2023-01-01 (the versions
    /// the official contract documents).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = {
        "type": "string", "pattern": super::ids::ATLAS_API_VERSION_PATTERN, "maxLength": 10
    }))]
    pub api_versions: BTreeMap<String, String>,
}

/// Infisical connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalProvider {
    /// Base URL of the Infisical instance: `http(s)://host[:port]`, no path, query or user name.
    /// Default `https://app.infisical.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = super::BASE_URL_PATTERN), length(max = 2048))]
    pub base_url: Option<String>,
    /// Secret with either `clientId` + `clientSecret` (machine identity, universal-auth login) or
    /// `accessToken`.
    pub credentials_secret_ref: LocalSecretRef,
}

/// Onedata Onezone connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnezoneProvider {
    /// Base URL of the Onezone service, e.g. `https://onezone.example.org` (`http(s)://host[:port]`,
    /// no path, query or user name; the operator must be started with this host in `--allowed-host`).
    #[schemars(regex(pattern = super::BASE_URL_PATTERN), length(max = 2048))]
    pub base_url: String,
    /// Secret with key `token` (an Onedata access token, sent as `x-auth-token`).
    pub credentials_secret_ref: LocalSecretRef,
}

/// Observed state of a provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// `Ready`: True when the credentials are present, the host is allowed and a live credential
    /// check passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// atlas, infisical or onezone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    /// How the credentials authenticate (e.g. `digest`, `serviceAccount`, `universalAuth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// The metadata.generation this status was written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// With `spec.budget`: the revocations counted within the current window, oldest first.
    /// Kept here (written with optimistic concurrency) so that every replica and shard shares it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_spent: Vec<BudgetEntry>,
}

/// The part of a provider spec the controller needs, whichever kind holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    /// The provider block.
    pub backend: ProviderBackend,
    /// Extra trusted CA certificates (PEM).
    pub ca_bundle: Option<String>,
    /// The blast-radius budget.
    pub budget: Option<Budget>,
}

/// The one provider block set in a provider spec.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderBackend {
    /// Atlas.
    Atlas(AtlasProvider),
    /// Infisical.
    Infisical(InfisicalProvider),
    /// Onezone.
    Onezone(OnezoneProvider),
}

/// Provider type names, as shown in status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderType {
    /// MongoDB Atlas.
    Atlas,
    /// Infisical.
    Infisical,
    /// Onedata Onezone.
    Onezone,
}

impl ProviderType {
    /// Lower-case name: atlas, infisical, onezone.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Atlas => "atlas",
            ProviderType::Infisical => "infisical",
            ProviderType::Onezone => "onezone",
        }
    }

    /// The provider's name with its article, for messages: "an Atlas", "an Infisical", "a Onezone".
    pub fn with_article(self) -> &'static str {
        match self {
            ProviderType::Atlas => "an Atlas",
            ProviderType::Infisical => "an Infisical",
            ProviderType::Onezone => "a Onezone",
        }
    }
}

impl std::fmt::Display for ProviderType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default Atlas base URL.
pub const ATLAS_DEFAULT_URL: &str = "https://cloud.mongodb.com";
/// Default Infisical base URL.
pub const INFISICAL_DEFAULT_URL: &str = "https://app.infisical.com";

impl ProviderBackend {
    /// Which provider this is.
    pub fn provider_type(&self) -> ProviderType {
        match self {
            ProviderBackend::Atlas(_) => ProviderType::Atlas,
            ProviderBackend::Infisical(_) => ProviderType::Infisical,
            ProviderBackend::Onezone(_) => ProviderType::Onezone,
        }
    }

    /// The base URL, with the provider's default applied and no trailing slash.
    pub fn base_url(&self) -> String {
        let url = match self {
            ProviderBackend::Atlas(a) => a.base_url.as_deref().unwrap_or(ATLAS_DEFAULT_URL),
            ProviderBackend::Infisical(i) => i.base_url.as_deref().unwrap_or(INFISICAL_DEFAULT_URL),
            ProviderBackend::Onezone(o) => &o.base_url,
        };
        url.trim_end_matches('/').to_string()
    }

    /// Check the credentials Secret name and the Atlas API versions against the rules of
    /// [`super::ids`] (the base URL is checked by [`crate::egress::parse_base_url`]).
    pub fn validate_ids(&self) -> Result<(), InvalidId> {
        let block = self.provider_type().as_str();
        let field = format!("spec.{block}.credentialsSecretRef.name");
        validate_id(&field, IdKind::ObjectName, self.credentials_secret())?;
        if let ProviderBackend::Atlas(atlas) = self {
            for (op, version) in &atlas.api_versions {
                let field = format!("spec.atlas.apiVersions.{}", op.escape_default());
                validate_id(&field, IdKind::AtlasApiVersion, version)?;
            }
        }
        Ok(())
    }

    /// Name of the credentials Secret.
    pub fn credentials_secret(&self) -> &str {
        match self {
            ProviderBackend::Atlas(a) => &a.credentials_secret_ref.name,
            ProviderBackend::Infisical(i) => &i.credentials_secret_ref.name,
            ProviderBackend::Onezone(o) => &o.credentials_secret_ref.name,
        }
    }
}

fn backend_of(
    atlas: &Option<AtlasProvider>,
    infisical: &Option<InfisicalProvider>,
    onezone: &Option<OnezoneProvider>,
) -> Option<ProviderBackend> {
    match (atlas, infisical, onezone) {
        (Some(a), None, None) => Some(ProviderBackend::Atlas(a.clone())),
        (None, Some(i), None) => Some(ProviderBackend::Infisical(i.clone())),
        (None, None, Some(o)) => Some(ProviderBackend::Onezone(o.clone())),
        _ => None,
    }
}

impl RevocationProviderSpec {
    /// The provider block, or None when the spec does not set exactly one (the schema prevents it).
    pub fn config(&self) -> Option<ProviderConfig> {
        Some(ProviderConfig {
            backend: backend_of(&self.atlas, &self.infisical, &self.onezone)?,
            ca_bundle: self.ca_bundle.clone(),
            budget: self.budget.clone(),
        })
    }
}

impl ClusterRevocationProviderSpec {
    /// The provider block, or None when the spec does not set exactly one (the schema prevents it).
    pub fn config(&self) -> Option<ProviderConfig> {
        Some(ProviderConfig {
            backend: backend_of(&self.atlas, &self.infisical, &self.onezone)?,
            ca_bundle: self.ca_bundle.clone(),
            budget: self.budget.clone(),
        })
    }
}
