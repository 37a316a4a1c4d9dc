use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{ATLAS_ID_PATTERN, IdKind, InvalidId, ONEZONE_ID_PATTERN, UUID_PATTERN, validate_id};
use super::{IdSource, ProviderRef, RevocationStatus, SecretKeyRef, Trigger};

/// Default number of retries after transient errors.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

fn default_backoff_limit() -> i32 {
    DEFAULT_BACKOFF_LIMIT
}

/// CEL rule: the spec may not change after creation, except `suspend`, `ttlSecondsAfterFinished`
/// and the settings of `trigger` (which may not be added or removed).
/// Optional blocks are compared with `has()` too, so that adding or removing one is caught.
/// (`self.?block == oldSelf.?block` would be simpler but exceeds the API server's CEL cost budget.)
macro_rules! immutable_rule {
    ($($field:literal),*) => {
        concat!(
            "self.providerRef == oldSelf.providerRef && self.?dryRun == oldSelf.?dryRun && ",
            "self.?backoffLimit == oldSelf.?backoffLimit"
            $(, " && has(self.", $field, ") == has(oldSelf.", $field, ") && (!has(self.", $field,
                ") || self.", $field, " == oldSelf.", $field, ")")*
        )
    };
}
const TRIGGER_FIXED_MESSAGE: &str = "spec.trigger cannot be added or removed after creation; create a new revocation";
const TRIGGER_TTL_MESSAGE: &str = "a triggered revocation keeps its runs by trigger.successfulRunsHistoryLimit and failedRunsHistoryLimit; ttlSecondsAfterFinished is not allowed with spec.trigger";
const IMMUTABLE_MESSAGE: &str = "spec is immutable after creation except suspend, ttlSecondsAfterFinished and trigger; \
create a new revocation to revoke again";

/// Declares a revocation spec: the lifecycle fields every kind shares, plus its provider blocks.
macro_rules! revocation_spec {
    (
        $(#[$meta:meta])*
        $name:ident, immutable = $immutable:expr, one_of = $one_of:expr, $one_of_msg:expr, { $($body:tt)* }
    ) => {
        #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
        $(#[$meta])*
        #[serde(rename_all = "camelCase")]
        #[x_kube(validation = Rule::new($immutable).message(IMMUTABLE_MESSAGE))]
        #[x_kube(validation = Rule::new($one_of).message($one_of_msg))]
        #[x_kube(validation = Rule::new("has(self.trigger) == has(oldSelf.trigger)").message(TRIGGER_FIXED_MESSAGE))]
        #[x_kube(validation = Rule::new("!has(self.trigger) || !has(self.ttlSecondsAfterFinished)").message(TRIGGER_TTL_MESSAGE))]
        pub struct $name {
            /// The provider object to call.
            pub provider_ref: ProviderRef,
            /// Hold the revocation until this is set to false (an approval gate: whoever may patch the
            /// object approves it). A revocation that already started is not interrupted.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub suspend: Option<bool>,
            /// Check the credentials and that the target exists with read-only calls, report what would
            /// be revoked, and revoke nothing.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dry_run: Option<bool>,
            /// Retries after transient errors (network, 5xx, 429) before the revocation fails.
            #[serde(default = "default_backoff_limit")]
            #[schemars(range(min = 0, max = 100))]
            pub backoff_limit: i32,
            /// Delete the object this many seconds after it finished (Succeeded or Failed). Deleting a
            /// revocation never undoes it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 0))]
            pub ttl_seconds_after_finished: Option<i64>,
            /// Run again each time a Secret or ConfigMap key changes, or on a schedule. Each run is a
            /// revocation of this kind named after the run; `spec.suspend` pauses the trigger.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub trigger: Option<Trigger>,
            $($body)*
        }
    };
}

revocation_spec! {
    /// Revokes the JWKS of an OIDC identity provider: the provider refreshes its public keys on every
    /// cluster, tokens signed before stop working, and every user is logged out.
    #[kube(
        group = "revoker.dev", version = "v1alpha1", kind = "JwksRevocation", namespaced,
        status = "RevocationStatus", shortname = "jwksrev", category = "revocations", category = "revoker",
        printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.providerRef.name"}"#,
        printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target"}"#,
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
        printcolumn = r#"{"name":"Attempts","type":"integer","jsonPath":".status.attempts"}"#,
        printcolumn = r#"{"name":"DryRun","type":"boolean","jsonPath":".spec.dryRun","priority":1}"#,
        printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    )]
    JwksRevocationSpec, immutable = immutable_rule!("atlas"), one_of = "has(self.atlas)", "exactly one provider block must be set: atlas", {
        /// MongoDB Atlas: `revokeJwksFromIdentityProvider`. Needs the Organization Owner role in one
        /// of the organizations connected to the identity provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub atlas: Option<AtlasJwksTarget>,
    }
}

/// An Atlas OIDC identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.identityProviderId) != has(self.identityProviderIdFrom)",
     "message": "set exactly one of identityProviderId and identityProviderIdFrom"}
]))]
pub struct AtlasJwksTarget {
    /// 24-hex id of the federation (federationSettingsId).
    #[schemars(regex(pattern = ATLAS_ID_PATTERN), length(min = 24, max = 24))]
    pub federation_settings_id: String,
    /// 24-hex id of the OIDC identity provider (not the legacy 20-hex id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ATLAS_ID_PATTERN), length(min = 24, max = 24))]
    pub identity_provider_id: Option<String>,
    /// Read identityProviderId from a Secret or ConfigMap key instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider_id_from: Option<IdSource>,
}

revocation_spec! {
    /// Removes or disables an authentication method.
    #[kube(
        group = "revoker.dev", version = "v1alpha1", kind = "AuthMethodRevocation", namespaced,
        status = "RevocationStatus", shortname = "authrev", category = "revocations", category = "revoker",
        printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.providerRef.name"}"#,
        printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target"}"#,
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
        printcolumn = r#"{"name":"Attempts","type":"integer","jsonPath":".status.attempts"}"#,
        printcolumn = r#"{"name":"DryRun","type":"boolean","jsonPath":".spec.dryRun","priority":1}"#,
        printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    )]
    AuthMethodRevocationSpec, immutable = immutable_rule!("atlas", "infisical"), one_of = "[has(self.atlas), has(self.infisical)].exists_one(b, b)",
        "exactly one provider block must be set: atlas or infisical", {
        /// MongoDB Atlas: `disableCustomerManagedX509` for a project (clears the uploaded CA and triggers
        /// a rolling restart). Needs the Project Owner role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub atlas: Option<AtlasX509Target>,
        /// Infisical: delete a machine identity's configuration of one auth method. Access tokens issued
        /// through that method stop working. Needs permission to edit the identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub infisical: Option<InfisicalAuthMethodTarget>,
    }
}

/// An Atlas project whose customer-managed X.509 authentication is disabled.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtlasX509Target {
    /// 24-hex project (group) id.
    #[schemars(regex(pattern = ATLAS_ID_PATTERN), length(min = 24, max = 24))]
    pub group_id: String,
}

/// An Infisical machine identity and the auth method to remove from it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.identityId) != has(self.identityIdFrom)",
     "message": "set exactly one of identityId and identityIdFrom"}
]))]
pub struct InfisicalAuthMethodTarget {
    /// Machine identity id (a UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID_PATTERN), length(max = 36))]
    pub identity_id: Option<String>,
    /// Read identityId from a Secret or ConfigMap key instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id_from: Option<IdSource>,
    /// The auth method whose configuration is deleted.
    pub auth_method: InfisicalAuthMethod,
}

/// Infisical machine-identity auth methods (the path segment of `/api/v1/auth/<method>/identities/{id}`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("maxLength" = 64))]
pub enum InfisicalAuthMethod {
    /// Universal Auth (client id + client secret).
    UniversalAuth,
    /// Token Auth.
    TokenAuth,
    /// Kubernetes Auth.
    KubernetesAuth,
    /// GCP Auth.
    GcpAuth,
    /// AWS Auth.
    AwsAuth,
    /// Azure Auth.
    AzureAuth,
    /// OIDC Auth.
    OidcAuth,
    /// JWT Auth.
    JwtAuth,
    /// LDAP Auth.
    LdapAuth,
    /// OCI Auth.
    OciAuth,
    /// Alibaba Cloud Auth.
    AlicloudAuth,
    /// TLS Certificate Auth.
    TlsCertAuth,
}

impl InfisicalAuthMethod {
    /// Every method, in schema order.
    pub const ALL: [InfisicalAuthMethod; 12] = [
        Self::UniversalAuth,
        Self::TokenAuth,
        Self::KubernetesAuth,
        Self::GcpAuth,
        Self::AwsAuth,
        Self::AzureAuth,
        Self::OidcAuth,
        Self::JwtAuth,
        Self::LdapAuth,
        Self::OciAuth,
        Self::AlicloudAuth,
        Self::TlsCertAuth,
    ];

    /// The URL path segment, e.g. `azure-auth`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Self::UniversalAuth => "universal-auth",
            Self::TokenAuth => "token-auth",
            Self::KubernetesAuth => "kubernetes-auth",
            Self::GcpAuth => "gcp-auth",
            Self::AwsAuth => "aws-auth",
            Self::AzureAuth => "azure-auth",
            Self::OidcAuth => "oidc-auth",
            Self::JwtAuth => "jwt-auth",
            Self::LdapAuth => "ldap-auth",
            Self::OciAuth => "oci-auth",
            Self::AlicloudAuth => "alicloud-auth",
            Self::TlsCertAuth => "tls-cert-auth",
        }
    }

    /// How Infisical names the method in its "does not have <x> auth" message, e.g. `azure`.
    pub fn short_name(self) -> &'static str {
        self.path_segment().trim_end_matches("-auth")
    }
}

revocation_spec! {
    /// Revokes tokens.
    #[kube(
        group = "revoker.dev", version = "v1alpha1", kind = "TokenRevocation", namespaced,
        status = "RevocationStatus", shortname = "tokenrev", category = "revocations", category = "revoker",
        printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.providerRef.name"}"#,
        printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target"}"#,
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
        printcolumn = r#"{"name":"Attempts","type":"integer","jsonPath":".status.attempts"}"#,
        printcolumn = r#"{"name":"DryRun","type":"boolean","jsonPath":".spec.dryRun","priority":1}"#,
        printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    )]
    TokenRevocationSpec, immutable = immutable_rule!("infisical", "onezone"), one_of = "[has(self.infisical), has(self.onezone)].exists_one(b, b)",
        "exactly one provider block must be set: infisical or onezone", {
        /// Infisical: revoke a machine-identity access token, a token-auth token, or a universal-auth
        /// client secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub infisical: Option<InfisicalTokenTarget>,
        /// Onezone: revoke all temporary tokens of a user or of the current user, or revoke a named token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub onezone: Option<OnezoneTokenTarget>,
    }
}

/// Which Infisical token to revoke.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.scope == 'UniversalAuthClientSecret' ? (has(self.identityId) != has(self.identityIdFrom) && has(self.clientSecretId) != has(self.clientSecretIdFrom) && !has(self.tokenSecretRef)) : (has(self.tokenSecretRef) && !has(self.identityId) && !has(self.clientSecretId) && !has(self.identityIdFrom) && !has(self.clientSecretIdFrom))",
     "message": "scope UniversalAuthClientSecret needs identityId (or identityIdFrom) and clientSecretId (or clientSecretIdFrom); scopes AccessToken and TokenAuthToken need tokenSecretRef (and nothing else)"}
]))]
pub struct InfisicalTokenTarget {
    /// AccessToken: a machine-identity access token; TokenAuthToken: a token-auth token (both are
    /// revoked by value, read from tokenSecretRef); UniversalAuthClientSecret: a client secret by id.
    pub scope: InfisicalTokenScope,
    /// The Secret key holding the token to revoke (scopes AccessToken and TokenAuthToken). The token
    /// is never written to status; a SHA-256 fingerprint is shown instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// Machine identity id, a UUID (scope UniversalAuthClientSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID_PATTERN), length(max = 36))]
    pub identity_id: Option<String>,
    /// Client secret id (a UUID), not the secret itself (scope UniversalAuthClientSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID_PATTERN), length(max = 36))]
    pub client_secret_id: Option<String>,
    /// Read identityId from a Secret or ConfigMap key instead (scope UniversalAuthClientSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id_from: Option<IdSource>,
    /// Read clientSecretId from a Secret or ConfigMap key instead (scope
    /// UniversalAuthClientSecret): where a rotation leaves the id of the client secret it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_id_from: Option<IdSource>,
}

/// Infisical token scopes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(extend("maxLength" = 64))]
pub enum InfisicalTokenScope {
    /// A machine-identity access token (any auth method).
    AccessToken,
    /// A token-auth token.
    TokenAuthToken,
    /// A universal-auth client secret, by id.
    UniversalAuthClientSecret,
}

/// Which Onezone tokens to revoke.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.scope == 'UserTemporaryTokens' ? has(self.userId) : !has(self.userId)",
     "message": "userId is required for scope UserTemporaryTokens and not allowed otherwise"},
    {"rule": "self.scope == 'NamedToken' ? has(self.tokenId) != has(self.tokenIdFrom) : (!has(self.tokenId) && !has(self.tokenIdFrom) && !has(self.namedTokenAction))",
     "message": "scope NamedToken needs tokenId or tokenIdFrom (one of them); tokenId, tokenIdFrom and namedTokenAction are not allowed otherwise"}
]))]
pub struct OnezoneTokenTarget {
    /// UserTemporaryTokens: all temporary tokens of userId (needs oz_tokens_manage);
    /// CurrentUserTemporaryTokens: all temporary tokens of the user the credentials belong to;
    /// NamedToken: one named token by id.
    pub scope: OnezoneTokenScope,
    /// Onezone user id (scope UserTemporaryTokens): letters, digits, `_` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ONEZONE_ID_PATTERN), length(min = 1, max = 128))]
    pub user_id: Option<String>,
    /// Named token id (scope NamedToken): letters, digits, `_` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ONEZONE_ID_PATTERN), length(min = 1, max = 128))]
    pub token_id: Option<String>,
    /// Read tokenId from a Secret or ConfigMap key instead (scope NamedToken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id_from: Option<IdSource>,
    /// Revoke (default): mark the named token revoked (reversible in Onezone). Delete: delete it
    /// (permanent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_token_action: Option<NamedTokenAction>,
}

/// Onezone token scopes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(extend("maxLength" = 64))]
pub enum OnezoneTokenScope {
    /// All temporary tokens of a given user.
    UserTemporaryTokens,
    /// All temporary tokens of the user the provider credentials belong to.
    CurrentUserTemporaryTokens,
    /// One named token.
    NamedToken,
}

/// What to do with a named Onezone token.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(extend("maxLength" = 64))]
pub enum NamedTokenAction {
    /// PATCH `{"revoked": true}` (can be undone in Onezone).
    #[default]
    Revoke,
    /// DELETE the token (permanent).
    Delete,
}

impl JwksRevocationSpec {
    /// Check every identifier against the rules of [`super::ids`] (the schema applies the same
    /// rules; this covers objects stored before a rule was tightened). The error names the field.
    pub fn validate_ids(&self) -> Result<(), InvalidId> {
        self.provider_ref.validate_ids()?;
        if let Some(atlas) = &self.atlas {
            validate_id(
                "spec.atlas.federationSettingsId",
                IdKind::AtlasId,
                &atlas.federation_settings_id,
            )?;
            if let Some(id) = &atlas.identity_provider_id {
                validate_id("spec.atlas.identityProviderId", IdKind::AtlasId, id)?;
            }
            if let Some(from) = &atlas.identity_provider_id_from {
                from.validate_ids("spec.atlas.identityProviderIdFrom")?;
            }
        }
        Ok(())
    }
}

impl AuthMethodRevocationSpec {
    /// Check every identifier against the rules of [`super::ids`]; the error names the field.
    pub fn validate_ids(&self) -> Result<(), InvalidId> {
        self.provider_ref.validate_ids()?;
        if let Some(atlas) = &self.atlas {
            validate_id("spec.atlas.groupId", IdKind::AtlasId, &atlas.group_id)?;
        }
        if let Some(infisical) = &self.infisical {
            if let Some(id) = &infisical.identity_id {
                validate_id("spec.infisical.identityId", IdKind::Uuid, id)?;
            }
            if let Some(from) = &infisical.identity_id_from {
                from.validate_ids("spec.infisical.identityIdFrom")?;
            }
        }
        Ok(())
    }
}

impl TokenRevocationSpec {
    /// Check every identifier against the rules of [`super::ids`]; the error names the field.
    pub fn validate_ids(&self) -> Result<(), InvalidId> {
        self.provider_ref.validate_ids()?;
        if let Some(infisical) = &self.infisical {
            let optional = [
                ("spec.infisical.identityId", &infisical.identity_id),
                ("spec.infisical.clientSecretId", &infisical.client_secret_id),
            ];
            for (field, value) in optional {
                if let Some(value) = value {
                    validate_id(field, IdKind::Uuid, value)?;
                }
            }
            if let Some(secret) = &infisical.token_secret_ref {
                secret.validate_ids("spec.infisical.tokenSecretRef")?;
            }
            for (field, from) in [
                ("spec.infisical.identityIdFrom", &infisical.identity_id_from),
                ("spec.infisical.clientSecretIdFrom", &infisical.client_secret_id_from),
            ] {
                if let Some(from) = from {
                    from.validate_ids(field)?;
                }
            }
        }
        if let Some(onezone) = &self.onezone {
            for (field, value) in [
                ("spec.onezone.userId", &onezone.user_id),
                ("spec.onezone.tokenId", &onezone.token_id),
            ] {
                if let Some(value) = value {
                    validate_id(field, IdKind::OnezoneId, value)?;
                }
            }
            if let Some(from) = &onezone.token_id_from {
                from.validate_ids("spec.onezone.tokenIdFrom")?;
            }
        }
        Ok(())
    }
}
