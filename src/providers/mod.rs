//! Provider clients behind one trait, one folder per provider.
//!
//! A client turns an [`Operation`] into HTTP calls, following the contracts in
//! `docs/provider-specs/`, and answers with an [`Outcome`] or a classified [`ProviderError`]. Clients hold their
//! credentials and cache login tokens, so the controller keeps one client per provider object.
//!
//! Each provider folder (`atlas/`, `infisical/`, `onezone/`) owns its construction, credential
//! parsing, default hosts ([`Registration`], one line each in [`PROVIDERS`]), authentication,
//! answer parsing with its hints, operations and dry runs. What they share is written once here:
//! [`http`] (TLS, egress check, rate limit, metrics), [`answer`] (one answer type, one status
//! table, provider text only through the client's redactor) and [`token_cache`] (one token cache,
//! one refresh rule).

pub mod answer;
pub mod atlas;
pub mod http;
pub mod infisical;
pub mod onezone;
#[cfg(test)]
mod test_support;
pub mod token_cache;

pub use crate::outcome::{AttemptContext, ErrorClass, Outcome, OutcomeKind, ProviderError, Reason, fingerprint};

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::api::{InfisicalAuthMethod, NamedTokenAction, ProviderConfig, ProviderType};
use crate::credentials::SecretData;
use crate::providers::http::HttpSettings;

/// Builds a provider's client from its provider block and the data of its credentials Secret.
pub type BuildFn = fn(&ProviderConfig, &SecretData<'_>, &HttpSettings) -> Built;

/// What the operator knows about one provider: each provider folder exports its own.
#[derive(Clone, Copy)]
pub struct Registration {
    /// Which provider.
    pub provider: ProviderType,
    /// The hosts it talks to by default (the egress allow-list's defaults).
    pub default_hosts: &'static [&'static str],
    /// The keys its credentials Secret holds, for documentation and messages.
    pub credential_keys: &'static str,
    /// Parses the credentials and builds the client.
    pub build: BuildFn,
}

/// Every provider, one line each.
#[rustfmt::skip]
pub const PROVIDERS: [Registration; 3] = [
    atlas::REGISTRATION,
    infisical::REGISTRATION,
    onezone::REGISTRATION,
];

impl Registration {
    /// A provider's entry.
    pub const fn new(
        provider: ProviderType,
        default_hosts: &'static [&'static str],
        keys: &'static str,
        build: BuildFn,
    ) -> Self {
        Registration {
            provider,
            default_hosts,
            credential_keys: keys,
            build,
        }
    }
}

/// What a `build` returns.
pub type Built = Result<Arc<dyn Provider>, ProviderError>;

/// The registration of `provider`.
pub fn registration(provider: ProviderType) -> &'static Registration {
    // Every ProviderType has a registration (unit test every_provider_type_is_registered_once…);
    // were one missing, the first entry's build would refuse the other provider's block.
    PROVIDERS
        .iter()
        .find(|r| r.provider == provider)
        .unwrap_or(&PROVIDERS[0])
}

/// The egress allow-list with the providers' default hosts (HTTPS only).
pub fn default_allow_list() -> crate::egress::AllowList {
    // The registered hosts are plain host names (unit test default_hosts_make_an_allow_list).
    crate::egress::AllowList::parse(DEFAULT_HOSTS.iter().copied()).expect("default hosts parse")
}

/// How many default hosts the providers have together.
pub const DEFAULT_HOST_COUNT: usize = {
    let mut count = 0;
    let mut i = 0;
    while i < PROVIDERS.len() {
        count += PROVIDERS[i].default_hosts.len();
        i += 1;
    }
    count
};

/// Every provider's default hosts, in table order.
pub const DEFAULT_HOSTS: [&str; DEFAULT_HOST_COUNT] = {
    let mut hosts = [""; DEFAULT_HOST_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < PROVIDERS.len() {
        let mut j = 0;
        while j < PROVIDERS[i].default_hosts.len() {
            hosts[n] = PROVIDERS[i].default_hosts[j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    hosts
};

/// Another provider's operation reached this provider's client (the controller checks the type
/// first, so this is a programming error, refused without a request).
pub(crate) fn wrong_provider(op: &Operation, provider: &str) -> ProviderError {
    ProviderError::permanent(
        Reason::ProviderMismatch,
        format!(
            "{} is a {} operation; the provider referenced is {provider}",
            op.name(),
            op.provider_type()
        ),
    )
}

/// A provider's `build` was handed another provider's block (the registry picks by type, so
/// this is a programming error, reported rather than panicking).
pub(crate) fn backend_mismatch(expected: ProviderType) -> ProviderError {
    ProviderError::permanent(
        Reason::InvalidProviderConfig,
        format!("the {expected} client was given another provider's block; credentials do not match the provider type"),
    )
}

/// One revocation, resolved from a revocation object (secret targets already read).
#[derive(Clone, Debug)]
pub enum Operation {
    /// Atlas `revokeJwksFromIdentityProvider`.
    AtlasRevokeJwks {
        /// 24-hex federation id.
        federation_settings_id: String,
        /// 24-hex identity provider id.
        identity_provider_id: String,
    },
    /// Atlas `disableCustomerManagedX509`.
    AtlasDisableX509 {
        /// 24-hex project id.
        group_id: String,
    },
    /// Infisical: delete an identity's configuration of one auth method.
    InfisicalDeleteAuthMethod {
        /// Machine identity id.
        identity_id: String,
        /// The method to remove.
        method: InfisicalAuthMethod,
    },
    /// Infisical: revoke an access token (or token-auth token) by value.
    InfisicalRevokeToken {
        /// The token to revoke. Never logged; see [`fingerprint`].
        token: SecretString,
        /// True for a token-auth token (reported differently, revoked the same way).
        token_auth: bool,
    },
    /// Infisical: revoke a universal-auth client secret by id.
    InfisicalRevokeClientSecret {
        /// Machine identity id.
        identity_id: String,
        /// Client secret id.
        client_secret_id: String,
    },
    /// Onezone: revoke all temporary tokens of a user.
    OnezoneRevokeUserTemporaryTokens {
        /// Onezone user id.
        user_id: String,
    },
    /// Onezone: revoke all temporary tokens of the current user.
    OnezoneRevokeCurrentUserTemporaryTokens,
    /// Onezone: revoke (PATCH revoked=true) or delete a named token.
    OnezoneRevokeNamedToken {
        /// Named token id.
        token_id: String,
        /// Revoke or Delete.
        action: NamedTokenAction,
    },
}

impl Operation {
    /// The provider this operation belongs to.
    pub fn provider_type(&self) -> ProviderType {
        match self {
            Operation::AtlasRevokeJwks { .. } | Operation::AtlasDisableX509 { .. } => ProviderType::Atlas,
            Operation::InfisicalDeleteAuthMethod { .. }
            | Operation::InfisicalRevokeToken { .. }
            | Operation::InfisicalRevokeClientSecret { .. } => ProviderType::Infisical,
            Operation::OnezoneRevokeUserTemporaryTokens { .. }
            | Operation::OnezoneRevokeCurrentUserTemporaryTokens
            | Operation::OnezoneRevokeNamedToken { .. } => ProviderType::Onezone,
        }
    }

    /// The provider's operation id (as in its API documentation), for status and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::AtlasRevokeJwks { .. } => "revokeJwksFromIdentityProvider",
            Operation::AtlasDisableX509 { .. } => "disableCustomerManagedX509",
            Operation::InfisicalDeleteAuthMethod { .. } => "deleteAuthMethod",
            Operation::InfisicalRevokeToken { .. } => "revokeIdentityAccessToken",
            Operation::InfisicalRevokeClientSecret { .. } => "revokeUniversalAuthClientSecret",
            Operation::OnezoneRevokeUserTemporaryTokens { .. } => "revoke_all_temporary_tokens_of_user",
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => "revoke_all_temporary_tokens_of_current_user",
            Operation::OnezoneRevokeNamedToken {
                action: NamedTokenAction::Revoke,
                ..
            } => "modify_named_token",
            Operation::OnezoneRevokeNamedToken {
                action: NamedTokenAction::Delete,
                ..
            } => "delete_named_token",
        }
    }

    /// What is revoked, in words, with no secret value (a token shows as its fingerprint).
    pub fn target(&self) -> String {
        match self {
            Operation::AtlasRevokeJwks {
                federation_settings_id,
                identity_provider_id,
            } => {
                format!("JWKS of identity provider {identity_provider_id} (federation {federation_settings_id})")
            }
            Operation::AtlasDisableX509 { group_id } => {
                format!("customer-managed X.509 of project {group_id}")
            }
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                format!("{} of identity {identity_id}", method.path_segment())
            }
            Operation::InfisicalRevokeToken { token, token_auth } => {
                let what = if *token_auth {
                    "token-auth token"
                } else {
                    "access token"
                };
                format!("{what} {}", fingerprint(token))
            }
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => {
                format!("client secret {client_secret_id} of identity {identity_id}")
            }
            Operation::OnezoneRevokeUserTemporaryTokens { user_id } => {
                format!("temporary tokens of user {user_id}")
            }
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => "temporary tokens of the current user".to_string(),
            Operation::OnezoneRevokeNamedToken { token_id, .. } => {
                format!("named token {token_id}")
            }
        }
    }
}

pub(crate) use crate::outcome::redact::clip;

/// What a read-only look at the target found after a successful revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The revocation is in effect; `how` names the read and what it showed.
    Verified {
        /// The read-only call and what it showed.
        how: String,
        /// The provider's request id of that call.
        request_id: Option<String>,
    },
    /// The target is still active: the provider answered success but did not apply it.
    NotApplied {
        /// The read-only call and what it showed.
        how: String,
        /// The provider's request id of that call.
        request_id: Option<String>,
    },
    /// The provider offers no read-only way to confirm this operation.
    NoReadBack {
        /// Why, in words.
        why: String,
    },
}

impl Verification {
    /// Verified or not applied, per `in_effect`, from the answer of the read.
    pub fn from_read(in_effect: bool, how: String, answer: &answer::Answer) -> Self {
        let request_id = answer.request_id.as_ref().map(|id| id.as_str().to_string());
        if in_effect {
            Verification::Verified { how, request_id }
        } else {
            Verification::NotApplied { how, request_id }
        }
    }
}

/// A provider client. One implementation per provider; the controller holds them as `dyn Provider`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which provider this client talks to.
    fn provider_type(&self) -> ProviderType;

    /// Revoke. Called at most once per recorded attempt.
    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError>;

    /// Dry run: check credentials and that the target exists with read-only calls; revoke nothing.
    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError>;

    /// After a successful revocation: confirm its effect with a read-only call, where the
    /// provider's contract offers one. Never revokes anything.
    async fn verify(&self, op: &Operation) -> Result<Verification, ProviderError> {
        Ok(Verification::NoReadBack {
            why: format!("no read-only way to confirm {} is offered", op.name()),
        })
    }

    /// Live credential check for the provider's `Ready` condition (e.g. a login). Returns how the
    /// credentials authenticate (`digest`, `serviceAccount`, `universalAuth`, `accessToken`, `token`).
    async fn check_credentials(&self) -> Result<&'static str, ProviderError>;

    /// Time left in a pause the provider asked for (a 429 or `Retry-After` seen by any request of
    /// this client); a revocation starts no attempt before it ends.
    fn paused_for(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_type_is_registered_once_with_its_default_hosts() {
        for provider in [ProviderType::Atlas, ProviderType::Infisical, ProviderType::Onezone] {
            assert_eq!(
                PROVIDERS.iter().filter(|r| r.provider == provider).count(),
                1,
                "{provider}"
            );
            assert_eq!(registration(provider).provider, provider);
        }
        assert_eq!(
            DEFAULT_HOSTS,
            ["cloud.mongodb.com", "app.infisical.com", "eu.infisical.com"]
        );
    }

    #[test]
    fn default_hosts_make_an_allow_list() {
        let list = super::default_allow_list();
        let url = url::Url::parse("https://cloud.mongodb.com/api/atlas/v2").unwrap();
        assert!(list.check(&url).is_ok());
    }
}
