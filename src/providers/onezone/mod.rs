//! Provider client: Onedata Onezone.
//!
//! Contract: `docs/provider-specs/onezone.yaml`. The base URL is the Onezone service root; every
//! route is under `/api/v3/onezone`. The token is sent as `x-auth-token`. Errors arrive as
//! `{"error": {"id", "description", "details"?}}`; `id` becomes the error code. Onezone sends no
//! request id.
//!
//! Files: [`client`] (construction, sending, error answers and hints), [`operations`], [`dry_run`].

mod client;
pub mod credentials;
mod dry_run;
mod operations;
#[cfg(test)]
mod tests;
mod verify;

use async_trait::async_trait;

pub use client::OnezoneClient;
pub use credentials::{KEYS, OnezoneCredentials};

use crate::api::ProviderType;
use crate::providers::{AttemptContext, Operation, Outcome, Provider, ProviderError, Registration, wrong_provider};

/// Onezone in the provider table. Onezone has no official host: add yours with `--allowed-host`.
pub const REGISTRATION: Registration = Registration::new(ProviderType::Onezone, &[], KEYS, client::build);

#[async_trait]
impl Provider for OnezoneClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Onezone
    }

    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        match op {
            Operation::OnezoneRevokeUserTemporaryTokens { user_id } => self.revoke_user_temporary(op, user_id).await,
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => self.revoke_current_user_temporary(op).await,
            Operation::OnezoneRevokeNamedToken { token_id, action } => {
                self.revoke_named(op, token_id, *action, ctx).await
            }
            other => Err(wrong_provider(other, "Onezone")),
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match op {
            Operation::OnezoneRevokeUserTemporaryTokens { user_id } => self.dry_run_user(user_id).await,
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => self.dry_run_current_user().await,
            Operation::OnezoneRevokeNamedToken { token_id, action } => self.dry_run_named(token_id, *action).await,
            other => Err(wrong_provider(other, "Onezone")),
        }
    }

    async fn verify(&self, op: &Operation) -> Result<crate::providers::Verification, ProviderError> {
        match op {
            Operation::OnezoneRevokeNamedToken { token_id, action } => self.verify_named(token_id, *action).await,
            Operation::OnezoneRevokeUserTemporaryTokens { .. } | Operation::OnezoneRevokeCurrentUserTemporaryTokens => {
                Ok(verify::temporary_no_read_back())
            }
            other => Err(wrong_provider(other, "Onezone")),
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        self.current_user("get_current_user", "credential check")
            .await
            .map(|_| "token")
    }

    fn paused_for(&self) -> Option<std::time::Duration> {
        self.http.paused_for()
    }
}
