//! The Onezone client: construction, sending with the token, and error answers with their hints.

use reqwest::RequestBuilder;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::credentials::OnezoneCredentials;
use crate::api::{OnezoneProvider, ProviderType};
use std::sync::Arc;

use crate::api::{ProviderBackend, ProviderConfig};
use crate::credentials::SecretData;
use crate::outcome::{ProviderError, Reason, Redactor};
use crate::providers::answer::{Answer, Dialect, Failure, Hints, MAX_PROVIDER_TEXT, Said};
use crate::providers::http::{HttpSettings, ProviderHttp};
use crate::providers::{Built, backend_mismatch};

/// How Onezone answers look.
pub(super) const DIALECT: Dialect = Dialect {
    name: "Onezone",
    request_id_headers: &[],
};
/// Onezone's error id for an unknown resource.
pub(super) const NOT_FOUND_ID: &str = "notFound";
/// What a 401 means.
const UNAUTHORIZED_HINT: &str = "Onezone rejected the token (invalid, expired or revoked); check \
the key token in the credentials Secret";
/// What a 403 on another user's tokens means.
pub(super) const MANAGE_HINT: &str =
    "revoking another user's tokens needs the oz_tokens_manage privilege (a user may revoke only their own tokens)";
/// What a 403 on a named token means.
pub(super) const NAMED_HINT: &str = "revoking or deleting another user's named token needs the \
oz_tokens_manage privilege (a user may change only their own named tokens)";
/// What a 403 on the current user's routes means.
pub(super) const SELF_HINT: &str = "the token is not allowed to do this; it may carry caveats (e.g. an API \
or service caveat) that limit what it can be used for";

/// Client for one Onezone provider object.
pub struct OnezoneClient {
    pub(super) http: ProviderHttp,
    token: SecretString,
    pub(super) redactor: Redactor,
}

impl std::fmt::Debug for OnezoneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnezoneClient")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Onezone's error envelope.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    id: Option<String>,
    description: Option<String>,
    details: Option<Value>,
}

impl OnezoneClient {
    /// A client for `config`. Fails with `HostNotAllowed` when the base URL's host is not on the
    /// egress allow-list, and with `InvalidProviderConfig` for a bad URL or CA bundle.
    pub fn new(
        config: &OnezoneProvider,
        creds: OnezoneCredentials,
        ca_bundle: Option<&str>,
        settings: &HttpSettings,
    ) -> Result<Self, ProviderError> {
        let base = config.base_url.trim_end_matches('/');
        let http = ProviderHttp::new(ProviderType::Onezone, base, ca_bundle, settings)?;
        Ok(OnezoneClient {
            http,
            redactor: Redactor::with(&[&creds.token]),
            token: creds.token,
        })
    }

    pub(super) fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["api", "v3", "onezone"];
        all.extend_from_slice(segments);
        self.http.url(&all)
    }

    /// Add the token header (marked sensitive, so it is never printed).
    fn authed(&self, request: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        let mut value = HeaderValue::from_str(self.token.expose_secret()).map_err(|_| {
            ProviderError::waiting(
                Reason::CredentialsUnavailable,
                "the Onezone token in the credentials Secret holds characters that cannot be \
                 sent in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        Ok(request.header("x-auth-token", value))
    }

    pub(super) async fn call(&self, operation: &str, request: RequestBuilder) -> Result<Answer, ProviderError> {
        let request = self.authed(request)?;
        let response = self.http.send(operation, request).await?;
        Answer::read(response, operation, DIALECT, &self.redactor).await
    }

    /// A failed answer, its error envelope read and redacted.
    pub(super) fn failure(&self, answer: &Answer) -> Failure {
        let said = serde_json::from_str::<ErrorEnvelope>(answer.body())
            .ok()
            .map(|e| said(e.error));
        Failure::new(answer, said, DIALECT, &self.redactor, MAX_PROVIDER_TEXT)
    }
}

fn said(body: ErrorBody) -> Said {
    let mut text = body.description.unwrap_or_default();
    if let Some(details) = body.details.filter(|d| !d.is_null()) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("(details: {details})"));
    }
    Said {
        code: body.id,
        text,
        request_id: None,
    }
}

impl OnezoneClient {
    /// The error of a failed answer: a 404 is `reason`, worded by `not_found` from the answer's
    /// summary; other statuses go through the status table, headed by `what`, with `forbidden` as
    /// the hint of a 403.
    pub(super) fn refused(
        &self,
        answer: &Answer,
        what: &str,
        forbidden: &str,
        (reason, not_found): (Reason, &dyn Fn(String) -> String),
    ) -> ProviderError {
        let failure = self.failure(answer);
        if answer.status == 404 {
            return failure.permanent(reason, not_found(failure.summary()));
        }
        generic(&failure, what, forbidden)
    }
}

/// The status table with Onezone's hints: `what: Onezone answered …; hint`.
pub(super) fn generic(failure: &Failure, what: &str, forbidden_hint: &str) -> ProviderError {
    let head = format!("{what}: Onezone answered {}", failure.summary());
    let hints = Hints {
        unauthorized: UNAUTHORIZED_HINT,
        forbidden: forbidden_hint,
        rate_limited: "Onezone is limiting requests, retrying later",
        unavailable: "Onezone is unavailable, retrying later",
        bad_request: "Onezone rejected the request",
    };
    failure.classify(|reason| hints.word(&head, reason))
}

pub(super) fn build(config: &ProviderConfig, secret: &SecretData<'_>, settings: &HttpSettings) -> Built {
    let ProviderBackend::Onezone(block) = &config.backend else {
        return Err(backend_mismatch(ProviderType::Onezone));
    };
    let client = OnezoneClient::new(
        block,
        super::credentials::parse(secret)?,
        config.ca_bundle.as_deref(),
        settings,
    );
    Ok(Arc::new(client?))
}
