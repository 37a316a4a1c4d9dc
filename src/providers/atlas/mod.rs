//! MongoDB Atlas Admin API v2 client (contract: `docs/provider-specs/atlas-admin-v2.yaml`, `atlas-oauth-token.yaml`).
//!
//! Two revocations:
//! - `revokeJwksFromIdentityProvider`: DELETE
//!   `/api/atlas/v2/federationSettings/{fid}/identityProviders/{idpId}/jwks`, 204.
//! - `disableCustomerManagedX509`: DELETE `/api/atlas/v2/groups/{groupId}/userSecurity/customerX509`,
//!   202 with the project's `UserSecurity`.
//!
//! Atlas picks the API version from the `Accept` media type
//! (`application/vnd.atlas.<YYYY-MM-DD>+json`); every call's version can be overridden per
//! operation id with `spec.atlas.apiVersions` on the provider.
//!
//! Files: [`client`] (construction, versions, sending), [`auth`] (HTTP Digest and the OAuth
//! token), [`errors`] (error answers and their hints), [`operations`], [`dry_run`].

mod auth;
mod client;
pub mod credentials;
mod dry_run;
mod errors;
mod operations;
#[cfg(test)]
mod tests;
mod verify;

use async_trait::async_trait;

pub use client::AtlasClient;
pub use credentials::{AtlasCredentials, KEYS};

use crate::api::ProviderType;
use crate::providers::{AttemptContext, Operation, Outcome, Provider, ProviderError, Registration};

/// Operation id of the JWKS revocation.
pub const OP_REVOKE_JWKS: &str = "revokeJwksFromIdentityProvider";
/// Operation id of the X.509 disable.
pub const OP_DISABLE_X509: &str = "disableCustomerManagedX509";
/// Operation id of the identity provider read (JWKS dry run).
pub const OP_GET_IDENTITY_PROVIDER: &str = "getIdentityProvider";
/// Operation id of the project user-security read (X.509 dry run).
pub const OP_GET_USER_SECURITY: &str = "getUserSecurity";
/// Operation id of the organization list (API key credential check).
pub const OP_LIST_ORGANIZATIONS: &str = "listOrganizations";

/// Default API version of each operation Revoker calls: the versions the official contract
/// documents. For `disableCustomerManagedX509` that is only 2023-01-01 (a documentation page's
/// curl example uses a later date the published contract does not list).
pub const DEFAULT_API_VERSIONS: [(&str, &str); 5] = [
    (OP_REVOKE_JWKS, "2023-11-15"),
    (OP_DISABLE_X509, "2023-01-01"),
    (OP_GET_IDENTITY_PROVIDER, "2023-11-15"),
    (OP_GET_USER_SECURITY, "2023-01-01"),
    (OP_LIST_ORGANIZATIONS, "2023-01-01"),
];

/// Atlas in the provider table.
pub const REGISTRATION: Registration =
    Registration::new(ProviderType::Atlas, &["cloud.mongodb.com"], KEYS, client::build);

/// An Atlas operation's ids.
enum Call<'a> {
    Jwks { fid: &'a str, idp: &'a str },
    X509 { group: &'a str },
}

impl<'a> Call<'a> {
    fn of(op: &'a Operation) -> Result<Self, ProviderError> {
        match op {
            Operation::AtlasRevokeJwks {
                federation_settings_id: fid,
                identity_provider_id: idp,
            } => Ok(Call::Jwks { fid, idp }),
            Operation::AtlasDisableX509 { group_id } => Ok(Call::X509 { group: group_id }),
            other => Err(errors::unsupported(other)),
        }
    }
}

#[async_trait]
impl Provider for AtlasClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Atlas
    }

    async fn revoke(&self, op: &Operation, _ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        // Neither Atlas call has an ambiguous 404 (a 404 always means the parent is unknown), so
        // earlier attempts do not change how an answer is read.
        match Call::of(op)? {
            Call::Jwks { fid, idp } => self.revoke_jwks(fid, idp).await,
            Call::X509 { group } => self.disable_x509(group).await,
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match Call::of(op)? {
            Call::Jwks { fid, idp } => self.dry_run_jwks(fid, idp).await,
            Call::X509 { group } => self.dry_run_x509(group).await,
        }
    }

    async fn verify(&self, op: &Operation) -> Result<crate::providers::Verification, ProviderError> {
        match Call::of(op)? {
            Call::Jwks { .. } => Ok(verify::jwks_no_read_back()),
            Call::X509 { group } => self.verify_x509(group).await,
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        self.check().await
    }

    fn paused_for(&self) -> Option<std::time::Duration> {
        self.http.paused_for()
    }
}
