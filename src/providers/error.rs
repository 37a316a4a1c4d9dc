//! Classified provider errors.

use std::time::Duration;

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

/// Why a call failed, as a CamelCase condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 401: the credentials were rejected.
    Unauthorized,
    /// 403: authenticated, but missing a role or permission (or IP access list).
    Forbidden,
    /// 404 for the parent (federation, IdP, project, identity, user): the id is probably wrong.
    TargetNotFound,
    /// 400/422: the provider rejected the request.
    BadRequest,
    /// 409.
    Conflict,
    /// Atlas 406: the API version sent is not supported for this operation.
    UnsupportedApiVersion,
    /// 429.
    RateLimited,
    /// 5xx.
    ProviderUnavailable,
    /// Connect error, reset, TLS failure.
    NetworkError,
    /// The request timed out.
    Timeout,
    /// The answer did not match the provider's contract.
    UnexpectedResponse,
    /// The provider's host is not on the egress allow-list.
    HostNotAllowed,
    /// The credentials Secret or a key in it is missing or unusable.
    CredentialsUnavailable,
    /// The provider's configuration is unusable (bad URL, bad CA bundle).
    InvalidProviderConfig,
    /// The referenced provider object does not exist (yet).
    ProviderNotFound,
    /// A ClusterRevocationProvider's namespaceSelector does not admit the revocation's namespace.
    NamespaceNotAllowed,
    /// The revocation's provider block does not match the provider's type.
    ProviderMismatch,
}

impl Reason {
    /// The CamelCase reason used in conditions, Events and the `error` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::TargetNotFound => "TargetNotFound",
            Reason::BadRequest => "BadRequest",
            Reason::Conflict => "Conflict",
            Reason::UnsupportedApiVersion => "UnsupportedApiVersion",
            Reason::RateLimited => "RateLimited",
            Reason::ProviderUnavailable => "ProviderUnavailable",
            Reason::NetworkError => "NetworkError",
            Reason::Timeout => "Timeout",
            Reason::UnexpectedResponse => "UnexpectedResponse",
            Reason::HostNotAllowed => "HostNotAllowed",
            Reason::CredentialsUnavailable => "CredentialsUnavailable",
            Reason::InvalidProviderConfig => "InvalidProviderConfig",
            Reason::ProviderNotFound => "ProviderNotFound",
            Reason::NamespaceNotAllowed => "NamespaceNotAllowed",
            Reason::ProviderMismatch => "ProviderMismatch",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

    /// Classify an HTTP error status with the provider-independent rules: 5xx and 429 are
    /// transient, other 4xx permanent. `not_found` decides the reason of a 404 (providers differ).
    pub fn from_status(status: u16, retry_after: Option<Duration>, message: impl Into<String>) -> Self {
        let message = message.into();
        match status {
            429 => Self::transient(Reason::RateLimited, message, retry_after),
            500..=599 => Self::transient(Reason::ProviderUnavailable, message, retry_after),
            401 => Self::permanent(Reason::Unauthorized, message),
            403 => Self::permanent(Reason::Forbidden, message),
            404 => Self::permanent(Reason::TargetNotFound, message),
            406 => Self::permanent(Reason::UnsupportedApiVersion, message),
            409 => Self::permanent(Reason::Conflict, message),
            400..=499 => Self::permanent(Reason::BadRequest, message),
            _ => Self::permanent(Reason::UnexpectedResponse, message),
        }
        .with_http(status, None, None)
    }
}

/// Parse a Retry-After header given in seconds (the form Atlas uses). HTTP dates are ignored.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        for status in [500, 502, 503, 504] {
            assert!(ProviderError::from_status(status, None, "x").is_transient(), "{status}");
        }
        let limited = ProviderError::from_status(429, Some(Duration::from_secs(7)), "x");
        assert_eq!(limited.reason, Reason::RateLimited);
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        for (status, reason) in [
            (400, Reason::BadRequest),
            (401, Reason::Unauthorized),
            (403, Reason::Forbidden),
            (404, Reason::TargetNotFound),
            (406, Reason::UnsupportedApiVersion),
            (409, Reason::Conflict),
        ] {
            let err = ProviderError::from_status(status, None, "x");
            assert_eq!(err.class, ErrorClass::Permanent, "{status}");
            assert_eq!(err.reason, reason);
            assert_eq!(err.http_status, Some(status));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "55".parse().unwrap());
        assert_eq!(retry_after_header(&headers), Some(Duration::from_secs(55)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_header(&headers), None);
    }
}
