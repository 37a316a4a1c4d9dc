//! Infisical dry runs: read the target, revoke nothing.

use super::client::InfisicalClient;
use super::errors::{Refusal, client_secret_revoked};
use crate::api::InfisicalAuthMethod;
use crate::outcome::{Outcome, OutcomeKind, ProviderError};
use crate::providers::answer::Answer;

impl InfisicalClient {
    /// GET an identity's auth method (the dry run's and the receipt's read).
    pub(super) async fn read_auth_method(
        &self,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Answer, ProviderError> {
        let url = self.url(&[method.path_segment(), "identities", identity_id]);
        self.call_authed("getAuthMethod", |token| {
            self.http.client().get(url.clone()).bearer_auth(token)
        })
        .await
    }

    /// GET a universal-auth client secret (the dry run's and the receipt's read).
    pub(super) async fn read_client_secret(
        &self,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Answer, ProviderError> {
        let segments = [
            "universal-auth",
            "identities",
            identity_id,
            "client-secrets",
            client_secret_id,
        ];
        let url = self.url(&segments);
        self.call_authed("getUniversalAuthClientSecret", |token| {
            self.http.client().get(url.clone()).bearer_auth(token)
        })
        .await
    }

    pub(super) async fn dry_run_auth_method(
        &self,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Outcome, ProviderError> {
        let answer = self.read_auth_method(identity_id, method).await?;
        let seg = method.path_segment();
        if answer.is_success() {
            let message = format!("would delete {seg} of identity {identity_id}; it is attached now");
            return Ok(answer.outcome(OutcomeKind::DryRun, message));
        }
        let short = method.short_name();
        let what = format!("dry run of deleting {seg} of identity {identity_id}");
        self.settle(
            &answer,
            Refusal {
                what: &what,
                gone: (OutcomeKind::DryRun, &|said| {
                    format!(
                        "identity {identity_id} has no {short} auth ({said}): it is already removed, so a \
                         revocation would change nothing"
                    )
                }),
                not_found: &|said| {
                    format!("{what}: Infisical found no identity {identity_id} ({said}); check identityId")
                },
                forbidden: "the credentials' machine identity needs permission to read Identities in the \
                 organization (and to edit them for the revocation itself)",
            },
        )
    }

    pub(super) async fn dry_run_client_secret(
        &self,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Outcome, ProviderError> {
        let answer = self.read_client_secret(identity_id, client_secret_id).await?;
        let target = format!("client secret {client_secret_id} of identity {identity_id}");
        if answer.is_success() {
            let message = match client_secret_revoked(answer.body()) {
                Some(true) => format!("{target} is already revoked, so a revocation would change nothing"),
                _ => format!("would revoke {target}"),
            };
            return Ok(answer.outcome(OutcomeKind::DryRun, message));
        }
        let what = format!("dry run of revoking {target}");
        self.settle(
            &answer,
            Refusal {
                what: &what,
                gone: (OutcomeKind::DryRun, &|said| {
                    format!(
                        "identity {identity_id} has no universal auth any more ({said}), so {target} no \
                         longer exists; a revocation would change nothing"
                    )
                }),
                not_found: &|said| {
                    format!(
                        "{what}: Infisical found no identity {identity_id} with client secret \
                         {client_secret_id} ({said}); check identityId and clientSecretId"
                    )
                },
                forbidden: "the credentials' machine identity needs permission to read the identity's \
                 client secrets (Identities: Read and Get Token in the organization)",
            },
        )
    }
}
