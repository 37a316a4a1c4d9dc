//! Onezone receipts: after a revocation, read back the named token.

use serde_json::Value;

use super::client::{NAMED_HINT, OnezoneClient};
use crate::api::NamedTokenAction;
use crate::outcome::{ProviderError, Reason};
use crate::providers::Verification;

impl OnezoneClient {
    /// After revoking a named token: it reads `revoked: true`; after deleting it: it is gone.
    pub(super) async fn verify_named(
        &self,
        token_id: &str,
        action: NamedTokenAction,
    ) -> Result<Verification, ProviderError> {
        const NAME: &str = "get_named_token";
        let url = self.url(&["tokens", "named", token_id]);
        let answer = self.call(NAME, self.http.client().get(url)).await?;
        if answer.status == 404 {
            let how = format!("{NAME}: named token {token_id} no longer exists");
            return Ok(Verification::from_read(true, how, &answer));
        }
        if !answer.is_success() {
            let what = format!("verifying named token {token_id}");
            let not_found = |said| format!("{what}: {said}");
            return Err(self.refused(&answer, &what, NAMED_HINT, (Reason::TargetNotFound, &not_found)));
        }
        let revoked = serde_json::from_str::<Value>(answer.body())
            .ok()
            .and_then(|v| v.get("revoked").and_then(Value::as_bool))
            == Some(true);
        let (in_effect, said) = match action {
            NamedTokenAction::Revoke => (revoked, format!("reads revoked: {revoked}")),
            NamedTokenAction::Delete => (false, "still exists".to_string()),
        };
        let how = format!("{NAME}: named token {token_id} {said}");
        Ok(Verification::from_read(in_effect, how, &answer))
    }
}

/// Revoking all temporary tokens bumps a generation counter, but nothing tells this call's bump
/// from another's.
pub(super) fn temporary_no_read_back() -> Verification {
    Verification::NoReadBack {
        why: "Onezone revokes temporary tokens by raising a generation counter; no read-only call tells that this revocation raised it".into(),
    }
}
