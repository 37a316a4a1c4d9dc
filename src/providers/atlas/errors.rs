//! Atlas error answers: what the body said, the reason, and what to fix.

use std::time::Duration;

use serde::Deserialize;

use super::OP_DISABLE_X509;
use super::client::{AtlasClient, DIALECT, default_version};
use super::credentials::AtlasCredentials;
use crate::outcome::{ProviderError, Reason};
use crate::providers::Operation;
use crate::providers::answer::{Answer, Failure, MAX_PROVIDER_TEXT, Said};
use crate::providers::clip;

/// Longest Atlas error code or reason quoted.
const MAX_CODE: usize = 100;

/// What a call was about, to word its errors.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// An identity provider of a federation (JWKS revoke and read).
    IdentityProvider { fid: &'a str, idp: &'a str },
    /// A project (X.509 disable and read).
    Project { group: &'a str },
    /// The organization list (credential check).
    Organizations,
}

/// The Atlas error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    error_code: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

/// An OAuth2 error body (RFC 6749 5.2), which the token endpoint may send instead.
#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

impl AtlasClient {
    /// A failed answer; its text is "Atlas said: CODE (Reason): detail" (or a short quote of a
    /// body that is not an Atlas error), redacted.
    pub(super) fn failure(&self, answer: &Answer) -> Failure {
        let said = provider_said(answer.status, answer.body());
        Failure::new(answer, Some(said), DIALECT, &self.redactor, usize::MAX).or_wait(retry_after_in_text)
    }

    /// Classify an Atlas error answer of an Admin API call.
    pub(super) fn error_from(&self, op: &'static str, target: Target<'_>, answer: &Answer) -> ProviderError {
        let failure = self.failure(answer);
        let said = failure.text.as_str();
        let status = answer.status;
        let who = self.who();
        failure.classify(|reason| match reason {
            Reason::Unauthorized => format!("{op}: Atlas rejected the {who} ({}); {said}", self.credential_hint()),
            Reason::Forbidden => format!("{op}: Atlas refused the {who}: {}; {said}", forbidden_hint(target)),
            Reason::TargetNotFound => format!("{op}: {}; {said}", not_found_hint(target)),
            Reason::UnsupportedApiVersion => format!("{op}: {}; {said}", self.version_hint(op)),
            Reason::RateLimited => format!("{op}: Atlas rate-limited the request; {said}"),
            Reason::ProviderUnavailable => {
                format!("{op}: Atlas answered HTTP {status} (a server-side error; retrying); {said}")
            }
            Reason::BadRequest if matches!(status, 400 | 422) => {
                format!("{op}: Atlas rejected the request as invalid; {said}")
            }
            _ => format!("{op}: Atlas answered HTTP {status}, which its API does not document here; {said}"),
        })
    }

    /// Replace any credential value that a transport error text may hold.
    pub(super) fn scrub(&self, mut err: ProviderError) -> ProviderError {
        err.message = self.redactor.redact(&err.message, usize::MAX).into_string();
        err
    }

    fn who(&self) -> String {
        match &self.creds {
            AtlasCredentials::ApiKey { public_key, .. } => format!("API key {public_key}"),
            AtlasCredentials::ServiceAccount { client_id, .. } => {
                format!("service account {client_id}")
            }
        }
    }

    fn credential_hint(&self) -> String {
        match &self.creds {
            AtlasCredentials::ApiKey { .. } => format!(
                "check publicKey/privateKey in Secret {}, and that the key is enabled",
                self.secret_name
            ),
            AtlasCredentials::ServiceAccount { .. } => format!(
                "check clientId/clientSecret in Secret {}, and that the service account is enabled",
                self.secret_name
            ),
        }
    }

    fn version_hint(&self, op: &str) -> String {
        let sent = self.version(op);
        let default = default_version(op).unwrap_or_default();
        let mut text = format!(
            "Atlas does not support API version {sent} (Accept: application/vnd.atlas.{sent}+json) for {op}; set spec.atlas.apiVersions.{op} on the provider to a version the Atlas API reference lists for {op}"
        );
        if op == OP_DISABLE_X509 {
            text.push_str(" (the published OpenAPI document lists 2023-01-01)");
        }
        if sent != default {
            text.push_str(&format!(", or remove the override to use the default {default}"));
        }
        text
    }
}

/// The error for another provider's operation.
pub(super) fn unsupported(op: &Operation) -> ProviderError {
    ProviderError::permanent(
        Reason::UnexpectedResponse,
        format!(
            "Atlas does not support the operation {} ({}); the controller should not send it to an Atlas provider",
            op.name(),
            op.target()
        ),
    )
}

fn forbidden_hint(target: Target<'_>) -> String {
    let access_list = "the operator's egress IP address must also be on its API access list";
    match target {
        Target::IdentityProvider { idp, .. } => format!(
            "it needs the Organization Owner role in an organization connected to identity provider {idp}, and {access_list}"
        ),
        Target::Project { group } => {
            format!("it needs the Project Owner role in project {group}, and {access_list}")
        }
        Target::Organizations => format!("it lacks the rights for this call, or {access_list}"),
    }
}

fn not_found_hint(target: Target<'_>) -> String {
    match target {
        Target::IdentityProvider { fid, idp } => format!(
            "Atlas found no identity provider {idp} in federation {fid}: check spec.atlas.federationSettingsId and spec.atlas.identityProviderId of the revocation (use the 24-hex identity provider id)"
        ),
        Target::Project { group } => {
            format!("Atlas found no project {group}: check spec.atlas.groupId of the revocation")
        }
        Target::Organizations => {
            "Atlas has no /api/atlas/v2/orgs here: check spec.atlas.baseUrl of the provider".to_string()
        }
    }
}

/// "Atlas said: CODE (Reason): detail" from an Atlas or OAuth error body, or a short quote of an
/// unparseable one, and the error code. Raw: the caller redacts it.
fn provider_said(status: u16, body: &str) -> Said {
    if let Ok(err) = serde_json::from_str::<ApiError>(body)
        && (err.error_code.is_some() || err.detail.is_some())
    {
        let mut text = String::from("Atlas said:");
        if let Some(code) = &err.error_code {
            text.push(' ');
            text.push_str(&clip(code, MAX_CODE));
        }
        if let Some(reason) = &err.reason {
            text.push_str(&format!(" ({})", clip(reason, MAX_CODE)));
        }
        if let Some(detail) = &err.detail {
            text.push_str(": ");
            text.push_str(&clip(detail, MAX_PROVIDER_TEXT));
        }
        return Said {
            code: err.error_code,
            text,
            request_id: None,
        };
    }
    if let Ok(err) = serde_json::from_str::<OAuthError>(body) {
        let mut text = format!("Atlas said: {}", clip(&err.error, MAX_CODE));
        if let Some(description) = &err.error_description {
            text.push_str(": ");
            text.push_str(&clip(description, MAX_PROVIDER_TEXT));
        }
        return Said {
            code: Some(err.error),
            text,
            request_id: None,
        };
    }
    let trimmed = body.trim();
    let text = if trimmed.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!(
            "HTTP {status} with a body that is not an Atlas error: {}",
            clip(trimmed, MAX_PROVIDER_TEXT)
        )
    };
    Said {
        text,
        ..Said::default()
    }
}

/// Parse "retry after N seconds" (any case) from a text (the wait a 429 detail asks for).
pub(super) fn retry_after_in_text(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("retry after")? + "retry after".len();
    let rest = lower[start..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let seconds: u64 = digits.parse().ok()?;
    rest[digits.len()..]
        .trim_start()
        .starts_with("second")
        .then(|| Duration::from_secs(seconds))
}
