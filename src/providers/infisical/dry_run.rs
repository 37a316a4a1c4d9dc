//! Infisical dry runs: read the target, revoke nothing.

use super::client::InfisicalClient;
use super::errors::{client_secret_revoked, does_not_have, generic, route_missing, route_missing_error};
use crate::api::InfisicalAuthMethod;
use crate::outcome::{Outcome, OutcomeKind, ProviderError, Reason};

impl InfisicalClient {
    pub(super) async fn dry_run_auth_method(
        &self,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Outcome, ProviderError> {
        const NAME: &str = "getAuthMethod";
        let url = self.url(&[method.path_segment(), "identities", identity_id]);
        let answer = self
            .call_authed(NAME, |token| self.http.client().get(url.clone()).bearer_auth(token))
            .await?;
        let seg = method.path_segment();
        if answer.is_success() {
            return Ok(answer.outcome(
                OutcomeKind::DryRun,
                format!("would delete {seg} of identity {identity_id}; it is attached now"),
            ));
        }
        let failure = self.failure(&answer);
        if does_not_have(&failure) {
            return Ok(failure.outcome(
                OutcomeKind::DryRun,
                format!(
                    "identity {identity_id} has no {} auth ({}): it is already removed, so a \
                     revocation would change nothing",
                    method.short_name(),
                    failure.summary()
                ),
            ));
        }
        let what = format!("dry run of deleting {seg} of identity {identity_id}");
        Err(match answer.status {
            404 if route_missing(&failure) => route_missing_error(&failure, &what),
            404 => failure.permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} ({}); check identityId",
                    failure.summary()
                ),
            ),
            _ => generic(
                &failure,
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                "the credentials' machine identity needs permission to read Identities in the \
                 organization (and to edit them for the revocation itself)",
            ),
        })
    }

    pub(super) async fn dry_run_client_secret(
        &self,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Outcome, ProviderError> {
        const NAME: &str = "getUniversalAuthClientSecret";
        let url = self.url(&[
            "universal-auth",
            "identities",
            identity_id,
            "client-secrets",
            client_secret_id,
        ]);
        let answer = self
            .call_authed(NAME, |token| self.http.client().get(url.clone()).bearer_auth(token))
            .await?;
        let target = format!("client secret {client_secret_id} of identity {identity_id}");
        if answer.is_success() {
            let message = match client_secret_revoked(answer.body()) {
                Some(true) => {
                    format!("{target} is already revoked, so a revocation would change nothing")
                }
                _ => format!("would revoke {target}"),
            };
            return Ok(answer.outcome(OutcomeKind::DryRun, message));
        }
        let failure = self.failure(&answer);
        if does_not_have(&failure) {
            return Ok(failure.outcome(
                OutcomeKind::DryRun,
                format!(
                    "identity {identity_id} has no universal auth any more ({}), so {target} no \
                     longer exists; a revocation would change nothing",
                    failure.summary()
                ),
            ));
        }
        let what = format!("dry run of revoking {target}");
        Err(match answer.status {
            404 if route_missing(&failure) => route_missing_error(&failure, &what),
            404 => failure.permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} with client secret \
                     {client_secret_id} ({}); check identityId and clientSecretId",
                    failure.summary()
                ),
            ),
            _ => generic(
                &failure,
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                "the credentials' machine identity needs permission to read the identity's \
                 client secrets (Identities: Read and Get Token in the organization)",
            ),
        })
    }
}
