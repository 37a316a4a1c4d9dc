//! Provider client: Infisical (machine identities).
//!
//! Contract: `docs/provider-specs/infisical.yaml`. Every route is under `/api/v1/auth`.
//! Authenticated calls send `Authorization: Bearer <token>`; with universal-auth credentials the
//! token comes from `POST /api/v1/auth/universal-auth/login` and is kept in the shared token
//! cache, so many revocations cause one login. `POST /api/v1/auth/token/revoke` needs no
//! Authorization header and gets none: the token to revoke is its own proof.
//!
//! Errors arrive as `{reqId, statusCode, message, error, details?}` (`message` is an array of zod
//! issues on 422). `reqId` becomes the request id and `error` the error code.
//!
//! Files: [`client`] (construction, authenticated calls), [`auth`] (universal-auth login),
//! [`errors`] (error answers and their hints), [`operations`], [`dry_run`].

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

pub use client::InfisicalClient;
pub use credentials::{InfisicalCredentials, KEYS};

use crate::api::ProviderType;
use crate::outcome::OutcomeKind;
use crate::providers::{AttemptContext, Operation, Outcome, Provider, ProviderError, Registration, wrong_provider};

/// Infisical in the provider table: Infisical Cloud's US and EU hosts.
pub const REGISTRATION: Registration = Registration::new(
    ProviderType::Infisical,
    &["app.infisical.com", "eu.infisical.com"],
    KEYS,
    client::build,
);

#[async_trait]
impl Provider for InfisicalClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Infisical
    }

    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        match op {
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                self.delete_auth_method(op, identity_id, *method).await
            }
            Operation::InfisicalRevokeToken { token, .. } => self.revoke_token(op, token, ctx).await,
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => self.revoke_client_secret(op, identity_id, client_secret_id).await,
            other => Err(wrong_provider(other, "Infisical")),
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match op {
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                self.dry_run_auth_method(identity_id, *method).await
            }
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => self.dry_run_client_secret(identity_id, client_secret_id).await,
            // Revoking a token by value needs no credentials of ours, so there is nothing to
            // check there; and the only read-only check of a token is to use it, which we don't.
            Operation::InfisicalRevokeToken { .. } => Ok(Outcome {
                kind: OutcomeKind::DryRun,
                http_status: None,
                request_id: None,
                message: format!(
                    "would revoke {}; a token cannot be checked without using it, so no call was made",
                    op.target()
                ),
            }),
            other => Err(wrong_provider(other, "Infisical")),
        }
    }

    async fn verify(&self, op: &Operation) -> Result<crate::providers::Verification, ProviderError> {
        match op {
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                self.verify_auth_method(identity_id, *method).await
            }
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => self.verify_client_secret(identity_id, client_secret_id).await,
            Operation::InfisicalRevokeToken { .. } => Ok(verify::token_no_read_back()),
            other => Err(wrong_provider(other, "Infisical")),
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        self.check().await
    }

    fn paused_for(&self) -> Option<std::time::Duration> {
        self.http.paused_for()
    }
}
