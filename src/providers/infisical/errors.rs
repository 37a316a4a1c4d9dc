//! Infisical error answers: what the body said, the reason, and what to fix.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::client::{DIALECT, InfisicalClient};
use crate::outcome::{Outcome, OutcomeKind, ProviderError, Reason, Redactor};
use crate::providers::answer::{Answer, Failure, Hints, MAX_PROVIDER_TEXT, Said};

/// What a 403 on an auth-method route means.
pub(super) const EDIT_IDENTITY_HINT: &str = "the credentials' machine identity needs permission to edit \
Identities in the organization (an organization role with Identities: Edit, or Edit on the \
identity in its project), and may not act on an identity with a more privileged role";
/// What a 403 on the client-secret routes means.
pub(super) const DELETE_CLIENT_SECRET_HINT: &str = "the credentials' machine identity needs permission to \
revoke the identity's client secrets (an organization role with Identities: Delete, or Delete Token \
on the identity in its project), and may not act on an identity with a more privileged role";

/// Infisical's error body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    req_id: Option<String>,
    message: Option<Value>,
    error: Option<String>,
}

/// How a failed answer about an identity's auth method or client secret reads. The closures
/// word a message from the answer's summary.
pub(super) struct Refusal<'a> {
    /// The operation and its target; heads the error messages.
    pub what: &'a str,
    /// The outcome when the identity does not have the auth method (400 "does not have").
    pub gone: (OutcomeKind, &'a dyn Fn(String) -> String),
    /// A 404 for the identity (or its client secret).
    pub not_found: &'a dyn Fn(String) -> String,
    /// The hint of a 403.
    pub forbidden: &'a str,
}

impl InfisicalClient {
    /// A failed answer, redacted with the client's credentials and login tokens.
    pub(super) fn failure(&self, answer: &Answer) -> Failure {
        failure_with(answer, &self.redactor)
    }

    /// Settle a failed answer: the method already gone is `refusal.gone`'s outcome, a missing
    /// route or identity is permanent, the rest goes through the status table.
    pub(super) fn settle(&self, answer: &Answer, refusal: Refusal<'_>) -> Result<Outcome, ProviderError> {
        let failure = self.failure(answer);
        let (gone, word_gone) = refusal.gone;
        if does_not_have(&failure) {
            return Ok(failure.outcome(gone, word_gone(failure.summary())));
        }
        let what = refusal.what;
        Err(match answer.status {
            404 if route_missing(&failure) => route_missing_error(&failure, what),
            404 => failure.permanent(Reason::TargetNotFound, (refusal.not_found)(failure.summary())),
            _ => {
                let head = format!("{what}: Infisical answered {}", failure.summary());
                generic(&failure, &head, &self.unauthorized_hint(), refusal.forbidden)
            }
        })
    }
}

/// A failed answer, redacted with `redactor` (which may also know a token being revoked).
pub(super) fn failure_with(answer: &Answer, redactor: &Redactor) -> Failure {
    let said = serde_json::from_str::<ErrorBody>(answer.body()).ok().map(|body| Said {
        code: body.error,
        text: body.message.as_ref().map(message_text).unwrap_or_default(),
        request_id: body.req_id,
    });
    Failure::new(answer, said, DIALECT, redactor, MAX_PROVIDER_TEXT).or_wait(try_again_in)
}

/// Infisical did not accept the bearer token itself (unknown, revoked or expired).
pub(super) fn token_rejected(answer: &Answer) -> bool {
    match answer.status {
        401 => true,
        403 => serde_json::from_str::<ErrorBody>(answer.body()).is_ok_and(|b| b.error.as_deref() == Some("TokenError")),
        _ => false,
    }
}

/// 400 "The identity does not have <method> auth": the method is already gone.
pub(super) fn does_not_have(failure: &Failure) -> bool {
    failure.status == 400 && failure.text.as_str().to_ascii_lowercase().contains("does not have")
}

/// Fastify's own 404 for a route this Infisical instance does not have (`error: "Not Found"`,
/// `message: "Route DELETE:/… not found"`), as opposed to Infisical's `NotFound` for an id.
pub(super) fn route_missing(failure: &Failure) -> bool {
    failure.status == 404 && (failure.code() == "Not Found" || failure.text.as_str().starts_with("Route "))
}

pub(super) fn route_missing_error(failure: &Failure, what: &str) -> ProviderError {
    failure.permanent(
        Reason::BadRequest,
        format!(
            "{what}: Infisical answered {}: this Infisical instance has no such route (it may \
             not support this auth method or operation; the oci-auth, alicloud-auth and \
             tls-cert-auth routes are unverified), or baseUrl is not the instance root; \
             nothing was changed",
            failure.summary()
        ),
    )
}

pub(super) fn is_token_error(failure: &Failure) -> bool {
    failure.code() == "TokenError"
}

/// The status table with Infisical's hints: 401 (and 403 `TokenError`) name the credentials,
/// 403 the permission (`forbidden_hint`, none for the token revocation), 429/5xx retry.
pub(super) fn generic(failure: &Failure, head: &str, unauthorized_hint: &str, forbidden_hint: &str) -> ProviderError {
    if failure.status == 403 && is_token_error(failure) {
        return failure.permanent(Reason::Unauthorized, format!("{head}; {unauthorized_hint}"));
    }
    let hints = Hints {
        unauthorized: unauthorized_hint,
        forbidden: forbidden_hint,
        rate_limited: "Infisical's rate limit was hit, retrying later",
        unavailable: "Infisical is unavailable, retrying later",
        bad_request: "Infisical rejected the request",
    };
    failure.classify(|reason| hints.word(head, reason))
}

/// `clientSecretData.isClientSecretRevoked` of a client-secret answer.
pub(super) fn client_secret_revoked(body: &str) -> Option<bool> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("clientSecretData")?
        .get("isClientSecretRevoked")?
        .as_bool()
}

/// Infisical's message: a string, or on 422 an array of zod issues (`path: message; …`).
fn message_text(message: &Value) -> String {
    match message {
        Value::String(s) => s.clone(),
        Value::Array(issues) => issues
            .iter()
            .map(|issue| {
                let text = issue
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| issue.to_string());
                let path = issue
                    .get("path")
                    .and_then(Value::as_array)
                    .map(|p| {
                        p.iter()
                            .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                if path.is_empty() {
                    text
                } else {
                    format!("{path}: {text}")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// "Rate limit exceeded. Please try again in 42 seconds" → 42 s.
pub(super) fn try_again_in(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let rest = &lower[lower.find("try again in")? + "try again in".len()..];
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = rest.trim_start()[digits.len()..].trim_start();
    if unit.starts_with("minute") {
        Some(Duration::from_secs(n.saturating_mul(60)))
    } else if unit.starts_with("ms") || unit.starts_with("millisecond") {
        Some(Duration::from_millis(n))
    } else {
        Some(Duration::from_secs(n))
    }
}
