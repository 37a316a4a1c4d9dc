//! What the reconciler needs to know of each revocation kind.

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ids::{IdKind, InvalidId};
use crate::api::{
    AuthMethodRevocation, IdSource, InfisicalTokenScope, JwksRevocation, NamedTokenAction, OnezoneTokenScope,
    ProviderRef, ProviderType, RevocationStatus, SecretKeyRef, TokenRevocation, Trigger,
};
use crate::outcome::{ProviderError, Reason};
use crate::providers::Operation;

/// The lifecycle fields every revocation kind shares.
#[derive(Clone, Debug)]
pub struct Lifecycle<'a> {
    /// Provider to call.
    pub provider_ref: &'a ProviderRef,
    /// Approval gate.
    pub suspend: bool,
    /// Read-only check.
    pub dry_run: bool,
    /// Retries after transient errors.
    pub backoff_limit: i32,
    /// Deletion delay after finishing.
    pub ttl_seconds_after_finished: Option<i64>,
    /// Run again on changes or a schedule.
    pub trigger: Option<&'a Trigger>,
}

/// The operation a revocation asks for, before secret targets are read.
#[derive(Clone, Debug)]
pub enum Planned {
    /// Ready to call.
    Ready(Operation),
    /// A token to revoke by value: read it from the Secret first (Infisical access and
    /// token-auth tokens today).
    SecretTarget {
        /// Where the token is.
        secret: SecretKeyRef,
        /// A token-auth token rather than an access token.
        token_auth: bool,
    },
}

impl Planned {
    /// What is revoked, in words (a token in a Secret is named by where it is, not its value).
    pub fn target(&self) -> String {
        match self {
            Planned::Ready(op) => op.target(),
            Planned::SecretTarget { secret, token_auth } => {
                let what = if *token_auth {
                    "token-auth token"
                } else {
                    "access token"
                };
                format!("{what} in Secret {} key {}", secret.name, secret.key)
            }
        }
    }

    /// Provider type of the planned operation.
    pub fn provider_type(&self) -> ProviderType {
        match self {
            Planned::Ready(op) => op.provider_type(),
            Planned::SecretTarget { .. } => ProviderType::Infisical,
        }
    }

    /// The operation, once the value of a secret target has been read.
    pub fn with_secret_value(self, token: SecretString) -> Operation {
        match self {
            Planned::Ready(op) => op,
            Planned::SecretTarget { token_auth, .. } => Operation::InfisicalRevokeToken { token, token_auth },
        }
    }
}

/// An identifier the spec reads from a Secret or ConfigMap key instead of naming it.
#[derive(Clone, Debug)]
pub struct IdLookup {
    /// The spec field it stands for, e.g. `spec.onezone.tokenId`.
    pub field: &'static str,
    /// Its alphabet.
    pub kind: IdKind,
    /// Where it is read from.
    pub source: IdSource,
}

impl IdLookup {
    /// The identifier in `raw`, the text read at `place` (e.g. `ConfigMap ns/name key k`): one
    /// trailing newline dropped; anything that is no identifier of its kind fails before a request
    /// is sent, without showing the value (it came from an object that may hold secrets).
    pub fn identifier(&self, raw: &str, place: &str) -> Result<String, ProviderError> {
        crate::api::ids::id_from_secret(self.field, self.kind, raw)
            .map(str::to_string)
            .map_err(|_| {
                ProviderError::permanent(
                    Reason::InvalidSpec,
                    format!(
                        "{place} (read for {}) does not hold {}; nothing was sent",
                        self.field,
                        self.kind.expected()
                    ),
                )
            })
    }
}

/// Identifiers read for the lookups of a spec, by field.
#[derive(Clone, Debug, Default)]
pub struct ResolvedIds(std::collections::BTreeMap<&'static str, String>);

impl ResolvedIds {
    /// Record the value read for `field`.
    pub fn insert(&mut self, field: &'static str, value: String) {
        self.0.insert(field, value);
    }

    /// Stand-ins for the lookups of a spec: enough to tell its provider type without reading.
    pub fn placeholders(lookups: &[IdLookup]) -> Self {
        ResolvedIds(lookups.iter().map(|l| (l.field, String::from("-"))).collect())
    }

    /// True when a spec read no identifier from an object.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The spec's own value of `field`, else the one read for it.
    fn value(&self, field: &'static str, inline: &Option<String>) -> Result<String, String> {
        inline
            .clone()
            .or_else(|| self.0.get(field).cloned())
            .ok_or_else(|| format!("{field} is required"))
    }
}

/// Lookups of the `…From` fields that are set.
fn lookups<const N: usize>(fields: [(&'static str, IdKind, &Option<IdSource>); N]) -> Vec<IdLookup> {
    fields
        .into_iter()
        .filter_map(|(field, kind, source)| source.clone().map(|source| IdLookup { field, kind, source }))
        .collect()
}

/// A revocation kind.
pub trait Revocation:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Kind name, for metrics and logs.
    const KIND: &'static str;
    /// Lifecycle fields.
    fn lifecycle(&self) -> Lifecycle<'_>;
    /// Current status.
    fn revocation_status(&self) -> Option<&RevocationStatus>;
    /// Replace the status.
    fn set_revocation_status(&mut self, status: RevocationStatus);
    /// Identifiers to read from Secrets or ConfigMaps before planning.
    fn id_lookups(&self) -> Vec<IdLookup>;
    /// The operation, with the identifiers `ids` read for the lookups, or why the spec cannot be
    /// executed (the schema rejects most such specs).
    fn plan(&self, ids: &ResolvedIds) -> Result<Planned, String>;
    /// Every identifier of the spec against its provider's alphabet (the schema's rules, again:
    /// an object stored before a stricter schema, or written around it, must not reach a provider).
    fn validate_ids(&self) -> Result<(), InvalidId>;
}

const IDP_FIELD: &str = "spec.atlas.identityProviderId";
const IDENTITY_FIELD: &str = "spec.infisical.identityId";
const CLIENT_SECRET_FIELD: &str = "spec.infisical.clientSecretId";
const TOKEN_ID_FIELD: &str = "spec.onezone.tokenId";

macro_rules! lifecycle_of {
    ($spec:expr) => {
        Lifecycle {
            provider_ref: &$spec.provider_ref,
            suspend: $spec.suspend.unwrap_or(false),
            dry_run: $spec.dry_run.unwrap_or(false),
            backoff_limit: $spec.backoff_limit,
            ttl_seconds_after_finished: $spec.ttl_seconds_after_finished,
            trigger: $spec.trigger.as_ref(),
        }
    };
}

macro_rules! status_accessors {
    () => {
        fn revocation_status(&self) -> Option<&RevocationStatus> {
            self.status.as_ref()
        }
        fn set_revocation_status(&mut self, status: RevocationStatus) {
            self.status = Some(status);
        }
        fn validate_ids(&self) -> Result<(), InvalidId> {
            self.spec.validate_ids()
        }
    };
}

impl Revocation for JwksRevocation {
    const KIND: &'static str = "JwksRevocation";
    fn lifecycle(&self) -> Lifecycle<'_> {
        lifecycle_of!(self.spec)
    }
    status_accessors!();
    fn id_lookups(&self) -> Vec<IdLookup> {
        self.spec.atlas.as_ref().map_or_else(Vec::new, |atlas| {
            lookups([(IDP_FIELD, IdKind::AtlasId, &atlas.identity_provider_id_from)])
        })
    }
    fn plan(&self, ids: &ResolvedIds) -> Result<Planned, String> {
        let atlas = self.spec.atlas.as_ref().ok_or("spec.atlas is required")?;
        Ok(Planned::Ready(Operation::AtlasRevokeJwks {
            federation_settings_id: atlas.federation_settings_id.clone(),
            identity_provider_id: ids.value(IDP_FIELD, &atlas.identity_provider_id)?,
        }))
    }
}

impl Revocation for AuthMethodRevocation {
    const KIND: &'static str = "AuthMethodRevocation";
    fn lifecycle(&self) -> Lifecycle<'_> {
        lifecycle_of!(self.spec)
    }
    status_accessors!();
    fn id_lookups(&self) -> Vec<IdLookup> {
        self.spec.infisical.as_ref().map_or_else(Vec::new, |inf| {
            lookups([(IDENTITY_FIELD, IdKind::Uuid, &inf.identity_id_from)])
        })
    }
    fn plan(&self, ids: &ResolvedIds) -> Result<Planned, String> {
        match (&self.spec.atlas, &self.spec.infisical) {
            (Some(atlas), None) => Ok(Planned::Ready(Operation::AtlasDisableX509 {
                group_id: atlas.group_id.clone(),
            })),
            (None, Some(inf)) => Ok(Planned::Ready(Operation::InfisicalDeleteAuthMethod {
                identity_id: ids.value(IDENTITY_FIELD, &inf.identity_id)?,
                method: inf.auth_method,
            })),
            _ => Err("exactly one of spec.atlas and spec.infisical must be set".into()),
        }
    }
}

impl Revocation for TokenRevocation {
    const KIND: &'static str = "TokenRevocation";
    fn lifecycle(&self) -> Lifecycle<'_> {
        lifecycle_of!(self.spec)
    }
    status_accessors!();
    fn id_lookups(&self) -> Vec<IdLookup> {
        let mut found = vec![];
        if let Some(inf) = &self.spec.infisical {
            found.extend(lookups([
                (IDENTITY_FIELD, IdKind::Uuid, &inf.identity_id_from),
                (CLIENT_SECRET_FIELD, IdKind::Uuid, &inf.client_secret_id_from),
            ]));
        }
        if let Some(oz) = &self.spec.onezone {
            found.extend(lookups([(TOKEN_ID_FIELD, IdKind::OnezoneId, &oz.token_id_from)]));
        }
        found
    }
    fn plan(&self, ids: &ResolvedIds) -> Result<Planned, String> {
        match (&self.spec.infisical, &self.spec.onezone) {
            (Some(inf), None) => match inf.scope {
                InfisicalTokenScope::AccessToken | InfisicalTokenScope::TokenAuthToken => {
                    let secret = inf
                        .token_secret_ref
                        .clone()
                        .ok_or("spec.infisical.tokenSecretRef is required")?;
                    Ok(Planned::SecretTarget {
                        secret,
                        token_auth: inf.scope == InfisicalTokenScope::TokenAuthToken,
                    })
                }
                InfisicalTokenScope::UniversalAuthClientSecret => {
                    Ok(Planned::Ready(Operation::InfisicalRevokeClientSecret {
                        identity_id: ids.value(IDENTITY_FIELD, &inf.identity_id)?,
                        client_secret_id: ids.value(CLIENT_SECRET_FIELD, &inf.client_secret_id)?,
                    }))
                }
            },
            (None, Some(oz)) => Ok(Planned::Ready(match oz.scope {
                OnezoneTokenScope::UserTemporaryTokens => Operation::OnezoneRevokeUserTemporaryTokens {
                    user_id: oz.user_id.clone().ok_or("spec.onezone.userId is required")?,
                },
                OnezoneTokenScope::CurrentUserTemporaryTokens => Operation::OnezoneRevokeCurrentUserTemporaryTokens,
                OnezoneTokenScope::NamedToken => Operation::OnezoneRevokeNamedToken {
                    token_id: ids.value(TOKEN_ID_FIELD, &oz.token_id)?,
                    action: oz.named_token_action.unwrap_or(NamedTokenAction::Revoke),
                },
            })),
            _ => Err("exactly one of spec.infisical and spec.onezone must be set".into()),
        }
    }
}
