//! The outcome vocabulary: how a provider call ended (an [`Outcome`] or a classified
//! [`ProviderError`]), whether retrying can help ([`ErrorClass`]), and the [`redact`] module that
//! is the only way text from outside (a provider's answer) becomes something we may show.

pub mod redact;

use std::time::Duration;

pub use crate::api::Reason;
pub use redact::{Redacted, Redactor, fingerprint, full_fingerprint};

/// Whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, 5xx, 429: retry with backoff (at least `retry_after` when the provider said so).
    Transient {
        /// The provider's requested wait (Retry-After header or "try again in N seconds").
        retry_after: Option<Duration>,
    },
    /// The request cannot succeed as it is: fail at once.
    Permanent,
    /// Something the operator waits for without burning retries (credentials, host allow-list).
    Waiting,
}

/// Facts about earlier attempts that change how an answer is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttemptContext {
    /// An earlier attempt of this revocation may have reached the provider (it was recorded in
    /// status before the call). An ambiguous 404 then means "already revoked", not "wrong id".
    pub earlier_attempt: bool,
}

/// How a successful call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The provider revoked the target now.
    Revoked,
    /// The provider said the target was already gone; this call changed nothing.
    AlreadyRevoked,
    /// Dry run: credentials and target were checked read-only; nothing was revoked.
    DryRun,
}

impl OutcomeKind {
    /// The condition reason of a revocation that ended this way.
    pub fn reason(&self) -> Reason {
        match self {
            OutcomeKind::Revoked => Reason::Revoked,
            OutcomeKind::AlreadyRevoked => Reason::AlreadyRevoked,
            OutcomeKind::DryRun => Reason::DryRunSucceeded,
        }
    }

    /// The `result` label of the revocations metric.
    pub fn metric_result(&self) -> &'static str {
        match self {
            OutcomeKind::Revoked => "succeeded",
            OutcomeKind::AlreadyRevoked => "already_revoked",
            OutcomeKind::DryRun => "dry_run",
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Revoked, already revoked, or dry run.
    pub kind: OutcomeKind,
    /// HTTP status of the deciding answer (None when no call was needed, e.g. some dry runs).
    pub http_status: Option<u16>,
    /// The provider's request id, when sent.
    pub request_id: Option<String>,
    /// What happened, for status and Events (no secret values).
    pub message: String,
}

/// A classified error. `message` says what happened and what to fix; it never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ProviderError {
    /// Retry, fail, or wait.
    pub class: ErrorClass,
    /// CamelCase reason.
    pub reason: Reason,
    /// What happened and what to fix.
    pub message: String,
    /// HTTP status, when the provider answered.
    pub http_status: Option<u16>,
    /// The provider's request id, when sent.
    pub request_id: Option<String>,
    /// The provider's error code or class (`RESOURCE_NOT_FOUND`, `BadRequest`, `notFound`).
    pub error_code: Option<String>,
}

impl ProviderError {
    /// A new error with no HTTP details.
    pub fn new(class: ErrorClass, reason: Reason, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            reason,
            message: message.into(),
            http_status: None,
            request_id: None,
            error_code: None,
        }
    }

    /// A permanent error.
    pub fn permanent(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, reason, message)
    }

    /// A transient error.
    pub fn transient(reason: Reason, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::new(ErrorClass::Transient { retry_after }, reason, message)
    }

    /// A condition to wait on without burning retries.
    pub fn waiting(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Waiting, reason, message)
    }

    /// Attach the HTTP details of the answer.
    pub fn with_http(mut self, status: u16, request_id: Option<String>, error_code: Option<String>) -> Self {
        self.http_status = Some(status);
        self.request_id = request_id;
        self.error_code = error_code;
        self
    }

    /// True when retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self.class, ErrorClass::Transient { .. })
    }

    /// The provider's requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            ErrorClass::Transient { retry_after } => retry_after,
            _ => None,
        }
    }
}
