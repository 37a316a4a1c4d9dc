//! One answer type and one status table for every provider.
//!
//! An [`Answer`] is an HTTP response read completely. A [`Failure`] is a non-2xx answer whose error
//! body the provider's parser has read ([`Said`]); everything in it that came from the provider
//! (request id, error code, message) is [`Redacted`] by the client's [`Redactor`] as it is made,
//! so provider text reaches a [`ProviderError`] or an [`Outcome`] only through the redactor.
//! [`reason_for`] is the one table from an HTTP status to a reason; [`Failure::classify`] adds
//! the class (429 and 5xx transient, the rest permanent) and the provider's hint for what to fix.

use std::time::Duration;

use reqwest::Response;
use reqwest::header::HeaderMap;

use crate::outcome::{Outcome, OutcomeKind, ProviderError, Reason, Redacted, Redactor};
use crate::providers::http::{describe, retry_after_header};

/// Longest provider message copied into ours.
pub const MAX_PROVIDER_TEXT: usize = 300;
/// Longest provider error code or request id kept.
pub const MAX_PROVIDER_ID: usize = 100;

/// How a provider's answers look, for the parts every provider shares.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// The provider's name in messages ("Atlas").
    pub name: &'static str,
    /// Response headers that carry a request id, first match wins (none for Onezone).
    pub request_id_headers: &'static [&'static str],
}

/// The reason of an HTTP error status, the same for every provider: 429 `RateLimited`, 5xx
/// `ProviderUnavailable`, 401 `Unauthorized`, 403 `Forbidden`, 404 `TargetNotFound`, 406
/// `UnsupportedApiVersion`, 409 `Conflict`, other 4xx `BadRequest`, anything else
/// `UnexpectedResponse`. Providers override single statuses where their contract says so.
pub fn reason_for(status: u16) -> Reason {
    match status {
        429 => Reason::RateLimited,
        500..=599 => Reason::ProviderUnavailable,
        401 => Reason::Unauthorized,
        403 => Reason::Forbidden,
        404 => Reason::TargetNotFound,
        406 => Reason::UnsupportedApiVersion,
        409 => Reason::Conflict,
        400..=499 => Reason::BadRequest,
        _ => Reason::UnexpectedResponse,
    }
}

/// Whether retrying can help with an answer of this status (429 and 5xx).
pub fn is_transient(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

impl ProviderError {
    /// Attach the HTTP details of a provider answer; the provider's ids only in redacted form.
    pub fn answered(self, status: u16, request_id: Option<&Redacted>, error_code: Option<&Redacted>) -> Self {
        self.with_http(
            status,
            request_id.map(|id| id.as_str().to_string()),
            error_code.map(|code| code.as_str().to_string()),
        )
    }

    /// An error for an answer of `status` with `reason`: transient (waiting `retry_after`) for 429
    /// and 5xx, permanent otherwise.
    fn for_status(status: u16, reason: Reason, message: String, retry_after: Option<Duration>) -> Self {
        if is_transient(status) {
            ProviderError::transient(reason, message, retry_after)
        } else {
            ProviderError::permanent(reason, message)
        }
    }
}

/// An HTTP answer, read completely.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header in seconds.
    pub retry_after: Option<Duration>,
    /// The request id header, redacted and clipped.
    pub request_id: Option<Redacted>,
    body: String,
    /// Why the body of a 2xx answer could not be read (the status decides a success).
    unread: Option<String>,
}

impl Answer {
    /// Read `response`. A body that cannot be read is a transport problem, except on a 2xx,
    /// where the status alone decides (see [`Answer::needed_body`] for reads that need the body).
    pub async fn read(
        response: Response,
        operation: &str,
        dialect: Dialect,
        redactor: &Redactor,
    ) -> Result<Self, ProviderError> {
        let status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        let request_id = header_request_id(response.headers(), dialect, redactor);
        let (body, unread) = match response.text().await {
            Ok(body) => (body, None),
            Err(e) if (200..300).contains(&status) => (String::new(), Some(describe(e))),
            Err(e) => return Err(unreadable(operation, dialect, status, describe(e))),
        };
        Ok(Answer {
            status,
            retry_after,
            request_id,
            body,
            unread,
        })
    }

    /// The status with its reason phrase ("202 Accepted").
    pub fn status_text(&self) -> String {
        reqwest::StatusCode::from_u16(self.status).map_or_else(|_| self.status.to_string(), |s| s.to_string())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as received. Parse it; text from it goes into a message only through the redactor.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The body, for a call whose result is in it: a body that could not be read is transient.
    pub fn needed_body(&self, operation: &str, dialect: Dialect) -> Result<&str, ProviderError> {
        match &self.unread {
            Some(why) => Err(unreadable(operation, dialect, self.status, why.clone())),
            None => Ok(&self.body),
        }
    }

    /// A successful outcome decided by this answer.
    pub fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        outcome(kind, self.status, self.request_id.as_ref(), message)
    }

    /// An error about this answer that is not a status classification (e.g. a 2xx without the
    /// expected content), with its HTTP details.
    pub fn error(&self, err: ProviderError) -> ProviderError {
        err.answered(self.status, self.request_id.as_ref(), None)
    }
}

fn unreadable(operation: &str, dialect: Dialect, status: u16, detail: String) -> ProviderError {
    ProviderError::transient(
        Reason::NetworkError,
        format!(
            "{operation}: reading {}'s HTTP {status} answer failed ({detail})",
            dialect.name
        ),
        None,
    )
}

fn header_request_id(headers: &HeaderMap, dialect: Dialect, redactor: &Redactor) -> Option<Redacted> {
    dialect
        .request_id_headers
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(|id| redactor.redact(id, MAX_PROVIDER_ID))
}

/// An outcome with the HTTP details of the deciding answer.
pub fn outcome(kind: OutcomeKind, status: u16, request_id: Option<&Redacted>, message: String) -> Outcome {
    Outcome {
        kind,
        http_status: Some(status),
        request_id: request_id.map(|id| id.as_str().to_string()),
        message,
    }
}

/// What a provider's error body said, as its parser read it (raw, not yet redacted).
#[derive(Debug, Default)]
pub struct Said {
    /// The provider's error code or class.
    pub code: Option<String>,
    /// The provider's message.
    pub text: String,
    /// A request id from the body (wins over the header).
    pub request_id: Option<String>,
}

/// A failed answer, its provider text redacted.
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// Request id from the body, else from the header.
    pub request_id: Option<Redacted>,
    /// The provider's error code.
    pub error_code: Option<Redacted>,
    /// The provider's message, empty when it sent none.
    pub text: Redacted,
    /// Whether the body was the provider's error JSON.
    parsed: bool,
    /// The provider's requested wait (header, else what its message says).
    pub retry_after: Option<Duration>,
    provider: &'static str,
}

impl Failure {
    /// A failure from `answer`; `said` is what the provider's parser read from its body (`None`
    /// when the body was not the provider's error JSON); `max_text` bounds the message kept.
    pub fn new(answer: &Answer, said: Option<Said>, dialect: Dialect, redactor: &Redactor, max_text: usize) -> Self {
        let parsed = said.is_some();
        let said = said.unwrap_or_default();
        Failure {
            status: answer.status,
            request_id: said
                .request_id
                .and_then(|id| redactor.identifier(&id, MAX_PROVIDER_ID))
                .or_else(|| answer.request_id.clone()),
            error_code: said.code.and_then(|code| redactor.identifier(&code, MAX_PROVIDER_ID)),
            text: redactor.redact(&said.text, max_text),
            parsed,
            retry_after: answer.retry_after,
            provider: dialect.name,
        }
    }

    /// Use this wait when the answer has no `Retry-After` header.
    pub fn or_wait(mut self, said_wait: impl FnOnce(&str) -> Option<Duration>) -> Self {
        if self.retry_after.is_none() {
            self.retry_after = said_wait(self.text.as_str());
        }
        self
    }

    /// True when the body was the provider's error JSON.
    pub fn parsed(&self) -> bool {
        self.parsed
    }

    /// The error code as text ("" when none).
    pub fn code(&self) -> &str {
        self.error_code.as_ref().map_or("", Redacted::as_str)
    }

    /// `HTTP 400 BadRequest: "…"`.
    pub fn summary(&self) -> String {
        let mut s = format!("HTTP {}", self.status);
        if let Some(code) = &self.error_code {
            s.push(' ');
            s.push_str(code.as_str());
        }
        if !self.text.is_empty() {
            s.push_str(&format!(": {:?}", self.text.as_str()));
        } else if !self.parsed {
            s.push_str(&format!(" (not {}'s error JSON; check baseUrl)", self.provider));
        }
        s
    }

    /// Attach this answer's HTTP details to `err`.
    pub fn error(&self, err: ProviderError) -> ProviderError {
        err.answered(self.status, self.request_id.as_ref(), self.error_code.as_ref())
    }

    /// A successful outcome decided by this failed answer (e.g. "already revoked").
    pub fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        outcome(kind, self.status, self.request_id.as_ref(), message)
    }

    /// Classify with the status table; `message` words the reason (the provider's hint).
    pub fn classify(&self, message: impl FnOnce(Reason) -> String) -> ProviderError {
        let reason = reason_for(self.status);
        self.classify_as(reason, message(reason))
    }

    /// A permanent error about this answer, whatever its status (the provider's contract decides).
    pub fn permanent(&self, reason: Reason, message: String) -> ProviderError {
        self.error(ProviderError::permanent(reason, message))
    }

    /// Classify with a reason the provider's contract gives for this status.
    pub fn classify_as(&self, reason: Reason, message: String) -> ProviderError {
        self.error(ProviderError::for_status(
            self.status,
            reason,
            message,
            self.retry_after,
        ))
    }
}

/// What to tell the user per reason, for the statuses every operation of a provider shares.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// 401: which credentials to check.
    pub unauthorized: &'a str,
    /// 403: which permission is needed.
    pub forbidden: &'a str,
    /// 429.
    pub rate_limited: &'a str,
    /// 5xx.
    pub unavailable: &'a str,
    /// Other 4xx.
    pub bad_request: &'a str,
}

impl Hints<'_> {
    /// `head; hint` for `reason` (just `head` when there is no hint for it).
    pub fn word(&self, head: &str, reason: Reason) -> String {
        let hint = match reason {
            Reason::Unauthorized => self.unauthorized,
            Reason::Forbidden => self.forbidden,
            Reason::RateLimited => self.rate_limited,
            Reason::ProviderUnavailable => self.unavailable,
            Reason::BadRequest => self.bad_request,
            _ => "",
        };
        if hint.is_empty() {
            head.to_string()
        } else {
            format!("{head}; {hint}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorClass;

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        for status in [500, 502, 503, 504, 429] {
            assert!(is_transient(status), "{status}");
        }
        assert_eq!(reason_for(429), Reason::RateLimited);
        assert_eq!(reason_for(503), Reason::ProviderUnavailable);
        for (status, reason) in [
            (400, Reason::BadRequest),
            (401, Reason::Unauthorized),
            (403, Reason::Forbidden),
            (404, Reason::TargetNotFound),
            (406, Reason::UnsupportedApiVersion),
            (409, Reason::Conflict),
            (422, Reason::BadRequest),
            (302, Reason::UnexpectedResponse),
        ] {
            assert_eq!(reason_for(status), reason, "{status}");
            assert!(!is_transient(status), "{status}");
        }
    }

    fn failure(status: u16, said: Option<Said>, retry_after: Option<Duration>, redactor: &Redactor) -> Failure {
        let answer = Answer {
            status,
            retry_after,
            request_id: None,
            body: String::new(),
            unread: None,
        };
        let dialect = Dialect {
            name: "Example",
            request_id_headers: &[],
        };
        Failure::new(&answer, said, dialect, redactor, MAX_PROVIDER_TEXT)
    }

    #[test]
    fn a_failure_is_classified_with_class_wait_hint_and_redacted_text() {
        let redactor = Redactor::with(&[&"hunter2-SECRET".to_string().into()]);
        let said = Said {
            code: Some("Limit".into()),
            text: "slow down hunter2-SECRET, try again in 9 s".into(),
            request_id: Some("req-1".into()),
        };
        let limited = failure(429, Some(said), None, &redactor).or_wait(|_| Some(Duration::from_secs(9)));
        let hints = Hints {
            rate_limited: "retrying later",
            ..Hints::default()
        };
        let err = limited.classify(|reason| hints.word(&format!("op: {}", limited.summary()), reason));
        assert_eq!(
            err.class,
            ErrorClass::Transient {
                retry_after: Some(Duration::from_secs(9))
            }
        );
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(err.http_status, Some(429));
        assert_eq!(err.request_id.as_deref(), Some("req-1"));
        assert_eq!(err.error_code.as_deref(), Some("Limit"));
        assert!(err.message.ends_with("; retrying later"), "{}", err.message);
        assert!(!err.message.contains("hunter2-SECRET"), "{}", err.message);

        let header_wins = failure(503, None, Some(Duration::from_secs(7)), &redactor).or_wait(|_| None);
        assert_eq!(header_wins.retry_after, Some(Duration::from_secs(7)));
        assert!(header_wins.summary().contains("not Example's error JSON"));
        let permanent = failure(404, None, None, &redactor).classify(|_| "gone".into());
        assert_eq!(
            (permanent.class, permanent.reason),
            (ErrorClass::Permanent, Reason::TargetNotFound)
        );
    }
}
