//! The Onezone revocations.

use serde_json::json;

use super::client::{MANAGE_HINT, NAMED_HINT, NOT_FOUND_ID, OnezoneClient, SELF_HINT, generic};
use crate::api::NamedTokenAction;
use crate::outcome::{AttemptContext, Outcome, OutcomeKind, ProviderError, Reason};
use crate::providers::Operation;

impl OnezoneClient {
    pub(super) async fn revoke_user_temporary(&self, op: &Operation, user_id: &str) -> Result<Outcome, ProviderError> {
        let url = self.url(&["users", user_id, "tokens", "temporary"]);
        let answer = self.call(op.name(), self.http.client().delete(url)).await?;
        if answer.is_success() {
            let message = format!("revoked all temporary tokens of user {user_id}");
            return Ok(answer.outcome(OutcomeKind::Revoked, message));
        }
        let what = format!("{}: {}", op.name(), op.target());
        let not_found =
            |said| format!("{what}: Onezone found no user {user_id} ({said}); check userId; nothing was changed");
        Err(self.refused(&answer, &what, MANAGE_HINT, (Reason::TargetNotFound, &not_found)))
    }

    pub(super) async fn revoke_current_user_temporary(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        let url = self.url(&["user", "tokens", "temporary"]);
        let answer = self.call(op.name(), self.http.client().delete(url)).await?;
        if answer.is_success() {
            let message = "revoked all temporary tokens of the current user (the owner of the provider's token)";
            return Ok(answer.outcome(OutcomeKind::Revoked, message.to_string()));
        }
        let what = format!("{}: {}", op.name(), op.target());
        let not_found =
            |said| format!("{what}: Onezone answered {said}; check that baseUrl is the Onezone service root");
        Err(self.refused(&answer, &what, SELF_HINT, (Reason::TargetNotFound, &not_found)))
    }

    pub(super) async fn revoke_named(
        &self,
        op: &Operation,
        token_id: &str,
        action: NamedTokenAction,
        ctx: AttemptContext,
    ) -> Result<Outcome, ProviderError> {
        let url = self.url(&["tokens", "named", token_id]);
        let request = match action {
            NamedTokenAction::Revoke => self.http.client().patch(url).json(&json!({ "revoked": true })),
            NamedTokenAction::Delete => self.http.client().delete(url),
        };
        let answer = self.call(op.name(), request).await?;
        if answer.is_success() {
            let done = match action {
                NamedTokenAction::Revoke => "revoked",
                NamedTokenAction::Delete => "deleted",
            };
            return Ok(answer.outcome(OutcomeKind::Revoked, format!("{done} named token {token_id}")));
        }
        let failure = self.failure(&answer);
        let what = format!("{}: {}", op.name(), op.target());
        if answer.status != 404 {
            return Err(generic(&failure, &what, NAMED_HINT));
        }
        // Ambiguous: an unknown id and an already deleted token both answer 404 notFound. It
        // means "already revoked" only when an earlier attempt of ours may have deleted it
        // (recorded before the call); on a first attempt it is most likely a wrong id, and a
        // security tool must not report success for a typo. A 404 that is not Onezone's
        // notFound error (e.g. a proxy's page) never counts as revoked.
        if ctx.earlier_attempt && failure.code() == NOT_FOUND_ID {
            return Ok(failure.outcome(
                OutcomeKind::AlreadyRevoked,
                format!(
                    "named token {token_id} no longer exists ({}); an earlier attempt of this \
                     revocation may have deleted it, so this call changed nothing",
                    failure.summary()
                ),
            ));
        }
        let why = if ctx.earlier_attempt {
            "the answer is not Onezone's notFound error, so it is not taken as already revoked; \
             check baseUrl"
        } else {
            "no earlier attempt of this revocation reached Onezone, so this is not reported as \
             already revoked"
        };
        Err(failure.permanent(
            Reason::TargetNotFound,
            format!(
                "{what}: Onezone found no named token {token_id} ({}); check tokenId; {why}; \
                 nothing was changed",
                failure.summary()
            ),
        ))
    }
}
