//! Onezone dry runs and the credential check: read, revoke nothing.

use serde_json::Value;

use super::client::{MANAGE_HINT, NAMED_HINT, OnezoneClient, SELF_HINT};
use crate::api::NamedTokenAction;
use crate::outcome::{Outcome, OutcomeKind, ProviderError, Reason};
use crate::providers::answer::Answer;

fn json_field(body: &str, key: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body).ok()?.get(key).cloned()
}

impl OnezoneClient {
    pub(super) async fn dry_run_user(&self, user_id: &str) -> Result<Outcome, ProviderError> {
        const NAME: &str = "get_temporary_token_generation_of_user";
        let url = self.url(&["users", user_id, "tokens", "temporary"]);
        let answer = self.call(NAME, self.http.client().get(url)).await?;
        if answer.is_success() {
            let generation = json_field(answer.body(), "generation")
                .and_then(|g| g.as_u64())
                .map(|g| format!(" (current generation {g})"))
                .unwrap_or_default();
            return Ok(answer.outcome(
                OutcomeKind::DryRun,
                format!("would revoke all temporary tokens of user {user_id}{generation}"),
            ));
        }
        let what = format!("dry run of revoking the temporary tokens of user {user_id}");
        let not_found = |said| format!("{what}: Onezone found no user {user_id} ({said}); check userId");
        Err(self.refused(&answer, &what, MANAGE_HINT, (Reason::TargetNotFound, &not_found)))
    }

    pub(super) async fn dry_run_current_user(&self) -> Result<Outcome, ProviderError> {
        let what = "dry run of revoking the temporary tokens of the current user";
        let (answer, user) = self.current_user("get_current_user", what).await?;
        let who = if user.is_empty() {
            "the current user".to_string()
        } else {
            format!("the current user {user}")
        };
        Ok(answer.outcome(
            OutcomeKind::DryRun,
            format!("would revoke all temporary tokens of {who}"),
        ))
    }

    /// GET `/user`: the current user's id (redacted), or a classified error.
    pub(super) async fn current_user(&self, operation: &str, what: &str) -> Result<(Answer, String), ProviderError> {
        let answer = self
            .call(operation, self.http.client().get(self.url(&["user"])))
            .await?;
        if answer.is_success() {
            let user = json_field(answer.body(), "userId")
                .and_then(|u| u.as_str().map(|u| self.redactor.redact(u, 100).into_string()))
                .unwrap_or_default();
            return Ok((answer, user));
        }
        let not_found = |said| {
            format!(
                "{what}: Onezone answered {said} for the current user; check that baseUrl is the Onezone service root"
            )
        };
        Err(self.refused(&answer, what, SELF_HINT, (Reason::InvalidProviderConfig, &not_found)))
    }

    pub(super) async fn dry_run_named(
        &self,
        token_id: &str,
        action: NamedTokenAction,
    ) -> Result<Outcome, ProviderError> {
        const NAME: &str = "get_named_token";
        let url = self.url(&["tokens", "named", token_id]);
        let answer = self.call(NAME, self.http.client().get(url)).await?;
        let verb = match action {
            NamedTokenAction::Revoke => "revoke",
            NamedTokenAction::Delete => "delete",
        };
        if answer.is_success() {
            let revoked = json_field(answer.body(), "revoked").and_then(|r| r.as_bool());
            let name = json_field(answer.body(), "name")
                .and_then(|n| {
                    n.as_str()
                        .map(|n| format!(" ({:?})", self.redactor.redact(n, 100).as_str()))
                })
                .unwrap_or_default();
            let message = match (revoked, action) {
                (Some(true), NamedTokenAction::Revoke) => format!(
                    "named token {token_id}{name} is already revoked, so a revocation would \
                     change nothing"
                ),
                (Some(true), NamedTokenAction::Delete) => {
                    format!("named token {token_id}{name} is already revoked; would delete it")
                }
                _ => format!("would {verb} named token {token_id}{name}"),
            };
            return Ok(answer.outcome(OutcomeKind::DryRun, message));
        }
        let what = format!("dry run of {verb} of named token {token_id}");
        let not_found = |said| format!("{what}: Onezone found no named token {token_id} ({said}); check tokenId");
        Err(self.refused(&answer, &what, NAMED_HINT, (Reason::TargetNotFound, &not_found)))
    }
}
