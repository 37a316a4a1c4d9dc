//! Provider client: Onedata Onezone.
//!
//! Contract: `shared/specs/onezone.yaml`. The base URL is the Onezone service root; every route is
//! under `/api/v3/onezone`. The token is sent as `x-auth-token`. Errors arrive as
//! `{"error": {"id", "description", "details"?}}`; `id` becomes the error code. Onezone sends no
//! request id.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{NamedTokenAction, OnezoneProvider, ProviderType};
use crate::credentials::OnezoneCredentials;
use crate::providers::http::retry_after_header;
use crate::providers::http::{HttpSettings, ProviderHttp, describe};
use crate::providers::{
    AttemptContext, Operation, Outcome, OutcomeKind, Provider, ProviderError, Reason, clip, redact,
};

/// Longest provider text copied into a message.
const MAX_PROVIDER_TEXT: usize = 300;
/// Onezone's error id for an unknown resource.
const NOT_FOUND_ID: &str = "notFound";
/// What a 401 means.
const UNAUTHORIZED_HINT: &str = "Onezone rejected the token (invalid, expired or revoked); check \
the key token in the credentials Secret";
/// What a 403 on another user's tokens means.
const MANAGE_HINT: &str =
    "revoking another user's tokens needs the oz_tokens_manage privilege (a user may revoke only their own tokens)";
/// What a 403 on a named token means.
const NAMED_HINT: &str = "revoking or deleting another user's named token needs the \
oz_tokens_manage privilege (a user may change only their own named tokens)";
/// What a 403 on the current user's routes means.
const SELF_HINT: &str = "the token is not allowed to do this; it may carry caveats (e.g. an API \
or service caveat) that limit what it can be used for";

/// Client for one Onezone provider object.
pub struct OnezoneClient {
    http: ProviderHttp,
    token: SecretString,
}

impl std::fmt::Debug for OnezoneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnezoneClient")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
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
            token: creds.token,
        })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
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

    async fn call(&self, operation: &str, request: RequestBuilder) -> Result<Answer, ProviderError> {
        let request = self.authed(request)?;
        let response = self.http.send(operation, request).await?;
        Answer::read(response, operation).await
    }

    fn failure(&self, answer: &Answer) -> Failure {
        Failure::new(answer, &self.token)
    }

    async fn revoke_user_temporary(&self, op: &Operation, user_id: &str) -> Result<Outcome, ProviderError> {
        let url = self.url(&["users", user_id, "tokens", "temporary"]);
        let answer = self.call(op.name(), self.http.client().delete(url)).await?;
        if answer.is_success() {
            return Ok(answer.outcome(
                OutcomeKind::Revoked,
                format!("revoked all temporary tokens of user {user_id}"),
            ));
        }
        let failure = self.failure(&answer);
        let what = format!("{}: {}", op.name(), op.target());
        Err(match answer.status {
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Onezone found no user {user_id} ({}); check userId; nothing was \
                     changed",
                    failure.summary()
                ),
            )),
            _ => failure.generic(&what, MANAGE_HINT),
        })
    }

    async fn revoke_current_user_temporary(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        let url = self.url(&["user", "tokens", "temporary"]);
        let answer = self.call(op.name(), self.http.client().delete(url)).await?;
        if answer.is_success() {
            return Ok(answer.outcome(
                OutcomeKind::Revoked,
                "revoked all temporary tokens of the current user (the owner of the provider's \
                 token)"
                    .to_string(),
            ));
        }
        let failure = self.failure(&answer);
        let what = format!("{}: {}", op.name(), op.target());
        Err(match answer.status {
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Onezone answered {}; check that baseUrl is the Onezone service root",
                    failure.summary()
                ),
            )),
            _ => failure.generic(&what, SELF_HINT),
        })
    }

    async fn revoke_named(
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
        if answer.status == 404 {
            // Ambiguous: an unknown id and an already deleted token both answer 404 notFound. It
            // means "already revoked" only when an earlier attempt of ours may have deleted it
            // (recorded before the call); on a first attempt it is most likely a wrong id, and a
            // security tool must not report success for a typo. A 404 that is not Onezone's
            // notFound error (e.g. a proxy's page) never counts as revoked.
            if ctx.earlier_attempt && failure.error_code.as_deref() == Some(NOT_FOUND_ID) {
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
            return Err(failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Onezone found no named token {token_id} ({}); check tokenId; {why}; \
                     nothing was changed",
                    failure.summary()
                ),
            )));
        }
        Err(failure.generic(&what, NAMED_HINT))
    }

    async fn dry_run_user(&self, user_id: &str) -> Result<Outcome, ProviderError> {
        const NAME: &str = "get_temporary_token_generation_of_user";
        let url = self.url(&["users", user_id, "tokens", "temporary"]);
        let answer = self.call(NAME, self.http.client().get(url)).await?;
        if answer.is_success() {
            let generation = json_field(&answer.body, "generation")
                .and_then(|g| g.as_u64())
                .map(|g| format!(" (current generation {g})"))
                .unwrap_or_default();
            return Ok(answer.outcome(
                OutcomeKind::DryRun,
                format!("would revoke all temporary tokens of user {user_id}{generation}"),
            ));
        }
        let failure = self.failure(&answer);
        let what = format!("dry run of revoking the temporary tokens of user {user_id}");
        Err(match answer.status {
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Onezone found no user {user_id} ({}); check userId",
                    failure.summary()
                ),
            )),
            _ => failure.generic(&what, MANAGE_HINT),
        })
    }

    /// GET `/user`: the current user's id, or a classified error.
    async fn current_user(&self, operation: &str, what: &str) -> Result<(Answer, String), ProviderError> {
        let answer = self
            .call(operation, self.http.client().get(self.url(&["user"])))
            .await?;
        if answer.is_success() {
            let user = json_field(&answer.body, "userId")
                .and_then(|u| u.as_str().map(str::to_string))
                .unwrap_or_default();
            return Ok((answer, user));
        }
        let failure = self.failure(&answer);
        Err(match answer.status {
            404 => failure.error(ProviderError::permanent(
                Reason::InvalidProviderConfig,
                format!(
                    "{what}: Onezone answered {} for the current user; check that baseUrl is the \
                     Onezone service root",
                    failure.summary()
                ),
            )),
            _ => failure.generic(what, SELF_HINT),
        })
    }

    async fn dry_run_named(&self, token_id: &str, action: NamedTokenAction) -> Result<Outcome, ProviderError> {
        const NAME: &str = "get_named_token";
        let url = self.url(&["tokens", "named", token_id]);
        let answer = self.call(NAME, self.http.client().get(url)).await?;
        let verb = match action {
            NamedTokenAction::Revoke => "revoke",
            NamedTokenAction::Delete => "delete",
        };
        if answer.is_success() {
            let revoked = json_field(&answer.body, "revoked").and_then(|r| r.as_bool());
            let name = json_field(&answer.body, "name")
                .and_then(|n| n.as_str().map(|n| format!(" ({n:?})")))
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
        let failure = self.failure(&answer);
        let what = format!("dry run of {verb} of named token {token_id}");
        Err(match answer.status {
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Onezone found no named token {token_id} ({}); check tokenId",
                    failure.summary()
                ),
            )),
            _ => failure.generic(&what, NAMED_HINT),
        })
    }
}

fn not_onezone(op: &Operation) -> ProviderError {
    ProviderError::permanent(
        Reason::ProviderMismatch,
        format!(
            "{} is a {} operation; the provider referenced is Onezone",
            op.name(),
            op.provider_type()
        ),
    )
}

fn json_field(body: &str, key: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body).ok()?.get(key).cloned()
}

#[async_trait]
impl Provider for OnezoneClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Onezone
    }

    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        match op {
            Operation::OnezoneRevokeUserTemporaryTokens { user_id } => self.revoke_user_temporary(op, user_id).await,
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => self.revoke_current_user_temporary(op).await,
            Operation::OnezoneRevokeNamedToken { token_id, action } => {
                self.revoke_named(op, token_id, *action, ctx).await
            }
            other => Err(not_onezone(other)),
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match op {
            Operation::OnezoneRevokeUserTemporaryTokens { user_id } => self.dry_run_user(user_id).await,
            Operation::OnezoneRevokeCurrentUserTemporaryTokens => {
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
            Operation::OnezoneRevokeNamedToken { token_id, action } => self.dry_run_named(token_id, *action).await,
            other => Err(not_onezone(other)),
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        self.current_user("get_current_user", "credential check")
            .await
            .map(|_| "token")
    }
}

/// An HTTP answer, read completely.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

impl Answer {
    async fn read(response: Response, operation: &str) -> Result<Self, ProviderError> {
        let status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        let body = match response.text().await {
            Ok(body) => body,
            // The status decides a success; its body is only a detail.
            Err(_) if (200..300).contains(&status) => String::new(),
            Err(e) => {
                return Err(ProviderError::transient(
                    Reason::NetworkError,
                    format!(
                        "{operation}: reading Onezone's HTTP {status} answer failed ({})",
                        describe(e)
                    ),
                    None,
                ));
            }
        };
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        Outcome {
            kind,
            http_status: Some(self.status),
            request_id: None,
            message,
        }
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

/// A failed answer, parsed and scrubbed of the token.
struct Failure {
    status: u16,
    error_code: Option<String>,
    /// Description and details (redacted and clipped), empty when none were sent.
    text: String,
    parsed: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(answer: &Answer, token: &SecretString) -> Self {
        let body = serde_json::from_str::<ErrorEnvelope>(&answer.body)
            .ok()
            .map(|e| e.error);
        let parsed = body.is_some();
        let (id, description, details) = match body {
            Some(b) => (b.id, b.description, b.details),
            None => (None, None, None),
        };
        let mut text = description.unwrap_or_default();
        if let Some(details) = details.filter(|d| !d.is_null()) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!("(details: {details})"));
        }
        Failure {
            status: answer.status,
            error_code: id.map(|i| clip(&redact(&i, &[token]), 64)),
            text: clip(&redact(&text, &[token]), MAX_PROVIDER_TEXT),
            parsed,
            retry_after: answer.retry_after,
        }
    }

    /// `HTTP 404 notFound: "…"`.
    fn summary(&self) -> String {
        let mut s = format!("HTTP {}", self.status);
        if let Some(code) = &self.error_code {
            s.push(' ');
            s.push_str(code);
        }
        if !self.text.is_empty() {
            s.push_str(&format!(": {:?}", self.text));
        } else if !self.parsed {
            s.push_str(" (not Onezone's error JSON; check baseUrl)");
        }
        s
    }

    fn error(&self, err: ProviderError) -> ProviderError {
        err.with_http(self.status, None, self.error_code.clone())
    }

    fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        Outcome {
            kind,
            http_status: Some(self.status),
            request_id: None,
            message,
        }
    }

    /// 401 Unauthorized, 403 Forbidden with `forbidden_hint`, 429 and 5xx transient, other 4xx
    /// permanent.
    fn generic(&self, what: &str, forbidden_hint: &str) -> ProviderError {
        let head = format!("{what}: Onezone answered {}", self.summary());
        let err = match self.status {
            401 => ProviderError::permanent(Reason::Unauthorized, format!("{head}; {UNAUTHORIZED_HINT}")),
            403 => ProviderError::permanent(Reason::Forbidden, format!("{head}; {forbidden_hint}")),
            429 => ProviderError::transient(
                Reason::RateLimited,
                format!("{head}; Onezone is limiting requests, retrying later"),
                self.retry_after,
            ),
            500..=599 => ProviderError::transient(
                Reason::ProviderUnavailable,
                format!("{head}; Onezone is unavailable, retrying later"),
                self.retry_after,
            ),
            400 => ProviderError::permanent(Reason::BadRequest, format!("{head}; Onezone rejected the request")),
            status => ProviderError::from_status(status, None, head),
        };
        self.error(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LocalSecretRef;
    use crate::egress::AllowList;
    use crate::providers::ErrorClass;
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "MDAxY2xvY2F0aW9uIG9uZXpvbmUK-SECRET-TOKEN";
    const USER: &str = "c26bab23d12f7389c3c311caf9c15902";
    const NAMED: &str = "2b5d0dd5aa6443a69277b5ce0544fec2";
    const FIRST: AttemptContext = AttemptContext { earlier_attempt: false };
    const RETRY: AttemptContext = AttemptContext { earlier_attempt: true };

    fn settings() -> HttpSettings {
        HttpSettings {
            allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).unwrap()),
            timeout: Duration::from_secs(10),
            requests_per_second: NonZeroU32::new(10_000).unwrap(),
        }
    }

    fn client(server: &MockServer) -> OnezoneClient {
        OnezoneClient::new(
            &OnezoneProvider {
                base_url: format!("{}/", server.uri()),
                credentials_secret_ref: LocalSecretRef {
                    name: "onezone-creds".into(),
                },
            },
            OnezoneCredentials { token: TOKEN.into() },
            None,
            &settings(),
        )
        .unwrap()
    }

    fn oz_error(status: u16, id: &str, description: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({"error": {"id": id, "description": description}}))
    }

    fn named(action: NamedTokenAction) -> Operation {
        Operation::OnezoneRevokeNamedToken {
            token_id: NAMED.into(),
            action,
        }
    }

    fn user_op(id: &str) -> Operation {
        Operation::OnezoneRevokeUserTemporaryTokens { user_id: id.into() }
    }

    /// The one request the server received, checked for the token header and no Authorization.
    async fn only_request(server: &MockServer) -> wiremock::Request {
        let mut requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1, "exactly one request");
        let r = requests.remove(0);
        assert_eq!(r.headers.get("x-auth-token").and_then(|v| v.to_str().ok()), Some(TOKEN));
        assert!(r.headers.get("authorization").is_none());
        r
    }

    #[tokio::test]
    async fn revoke_user_temporary_tokens_sends_the_exact_request() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(format!("/api/v3/onezone/users/{USER}/tokens/temporary")))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let out = client(&server).revoke(&user_op(USER), FIRST).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        assert_eq!(out.http_status, Some(204));
        assert!(out.message.contains(USER));
        let r = only_request(&server).await;
        assert!(r.body.is_empty());
    }

    #[tokio::test]
    async fn revoke_current_user_temporary_tokens_sends_the_exact_request() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path("/api/v3/onezone/user/tokens/temporary"))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let out = client(&server)
            .revoke(&Operation::OnezoneRevokeCurrentUserTemporaryTokens, FIRST)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        assert!(only_request(&server).await.body.is_empty());
    }

    #[tokio::test]
    async fn revoke_named_token_patches_revoked_true() {
        let server = MockServer::start().await;
        Mock::given(method("PATCH"))
            .and(path(format!("/api/v3/onezone/tokens/named/{NAMED}")))
            .and(header("x-auth-token", TOKEN))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"revoked": true})))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let out = client(&server)
            .revoke(&named(NamedTokenAction::Revoke), FIRST)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        assert_eq!(out.message, format!("revoked named token {NAMED}"));
        let r = only_request(&server).await;
        assert_eq!(r.body_json::<Value>().unwrap(), json!({"revoked": true}));
    }

    #[tokio::test]
    async fn delete_named_token_sends_delete_without_body() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(format!("/api/v3/onezone/tokens/named/{NAMED}")))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let out = client(&server)
            .revoke(&named(NamedTokenAction::Delete), FIRST)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        assert_eq!(out.message, format!("deleted named token {NAMED}"));
        assert!(only_request(&server).await.body.is_empty());
    }

    #[tokio::test]
    async fn named_token_404_is_already_revoked_only_after_an_earlier_attempt() {
        let server = MockServer::start().await;
        Mock::given(path(format!("/api/v3/onezone/tokens/named/{NAMED}")))
            .respond_with(oz_error(404, "notFound", "The resource could not be found."))
            .mount(&server)
            .await;
        let client = client(&server);
        for action in [NamedTokenAction::Revoke, NamedTokenAction::Delete] {
            let out = client.revoke(&named(action), RETRY).await.unwrap();
            assert_eq!(out.kind, OutcomeKind::AlreadyRevoked, "{action:?}");
            assert_eq!(out.http_status, Some(404));
            assert!(out.message.contains("changed nothing"), "{}", out.message);
            assert!(out.message.contains(NAMED));

            let err = client.revoke(&named(action), FIRST).await.unwrap_err();
            assert_eq!(err.reason, Reason::TargetNotFound, "{action:?}");
            assert_eq!(err.class, ErrorClass::Permanent);
            assert_eq!(err.error_code.as_deref(), Some("notFound"));
            assert_eq!(err.http_status, Some(404));
            assert!(err.message.contains(NAMED), "{}", err.message);
            assert!(err.message.contains("not reported as already revoked"));
        }
    }

    #[tokio::test]
    async fn a_404_that_is_not_onezones_not_found_never_counts_as_revoked() {
        let server = MockServer::start().await;
        Mock::given(path(format!("/api/v3/onezone/tokens/named/{NAMED}")))
            .respond_with(ResponseTemplate::new(404).set_body_string("<html>nginx</html>"))
            .mount(&server)
            .await;
        let err = client(&server)
            .revoke(&named(NamedTokenAction::Delete), RETRY)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);
        assert!(err.message.contains("check baseUrl"), "{}", err.message);
    }

    #[tokio::test]
    async fn unknown_user_404_is_target_not_found_on_every_attempt() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(oz_error(404, "notFound", "The resource could not be found."))
            .mount(&server)
            .await;
        let client = client(&server);
        for ctx in [FIRST, RETRY] {
            let err = client.revoke(&user_op("nobody"), ctx).await.unwrap_err();
            assert_eq!(err.reason, Reason::TargetNotFound);
            assert_eq!(err.class, ErrorClass::Permanent);
            assert!(err.message.contains("no user nobody"), "{}", err.message);
            assert_eq!(err.error_code.as_deref(), Some("notFound"));
            assert_eq!(err.request_id, None);
        }
    }

    #[tokio::test]
    async fn documented_error_shapes_map_to_reason_class_and_error_code() {
        let server = MockServer::start().await;
        let cases = [
            (
                "u401",
                ResponseTemplate::new(401).set_body_json(json!({"error": {
                    "id": "unauthorized",
                    "details": {"authError": null},
                    "description": "You must authenticate yourself to perform this operation."
                }})),
            ),
            (
                "u403",
                ResponseTemplate::new(403).set_body_json(json!({"error": {
                    "id": "forbidden",
                    "details": {"hint": null},
                    "description": "You are not authorized to perform this operation: null"
                }})),
            ),
            (
                "u400",
                oz_error(400, "badValueString", "Bad value: provided \"id\" must be a string."),
            ),
            (
                "u500",
                oz_error(500, "internalServerError", "The server has encountered an error."),
            ),
            ("u503", ResponseTemplate::new(503).insert_header("retry-after", "9")),
            (
                "u429",
                oz_error(429, "tooManyRequests", "slow down").insert_header("retry-after", "5"),
            ),
        ];
        for (id, response) in cases {
            Mock::given(method("DELETE"))
                .and(path(format!("/api/v3/onezone/users/{id}/tokens/temporary")))
                .respond_with(response)
                .mount(&server)
                .await;
        }
        let client = client(&server);
        let run = |id: &'static str| {
            let client = &client;
            async move { client.revoke(&user_op(id), FIRST).await.unwrap_err() }
        };

        let e = run("u401").await;
        assert_eq!((e.reason, e.class), (Reason::Unauthorized, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("unauthorized"));
        assert!(e.message.contains("invalid, expired or revoked"), "{}", e.message);

        let e = run("u403").await;
        assert_eq!((e.reason, e.class), (Reason::Forbidden, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("forbidden"));
        assert!(
            e.message
                .contains("revoking another user's tokens needs the oz_tokens_manage privilege"),
            "{}",
            e.message
        );

        let e = run("u400").await;
        assert_eq!((e.reason, e.class), (Reason::BadRequest, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("badValueString"));

        let e = run("u500").await;
        assert_eq!(e.reason, Reason::ProviderUnavailable);
        assert!(e.is_transient());
        assert_eq!(e.error_code.as_deref(), Some("internalServerError"));

        let e = run("u503").await;
        assert_eq!(e.reason, Reason::ProviderUnavailable);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
        assert!(e.message.contains("not Onezone's error JSON"), "{}", e.message);

        let e = run("u429").await;
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(
            e.class,
            ErrorClass::Transient {
                retry_after: Some(Duration::from_secs(5))
            }
        );
    }

    #[tokio::test]
    async fn named_token_403_names_the_privilege() {
        let server = MockServer::start().await;
        Mock::given(method("PATCH"))
            .respond_with(oz_error(403, "forbidden", "You are not authorized"))
            .mount(&server)
            .await;
        let err = client(&server)
            .revoke(&named(NamedTokenAction::Revoke), FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Forbidden);
        assert!(err.message.contains("oz_tokens_manage"), "{}", err.message);
    }

    #[tokio::test]
    async fn dry_runs_only_read() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v3/onezone/users/{USER}/tokens/temporary")))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"generation": 3})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v3/onezone/users/nobody/tokens/temporary"))
            .respond_with(oz_error(404, "notFound", "The resource could not be found."))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v3/onezone/user"))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"userId": USER, "fullName": "Ada"})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v3/onezone/tokens/named/{NAMED}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": NAMED, "name": "ci", "revoked": false})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v3/onezone/tokens/named/old"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": "old", "name": "old", "revoked": true})),
            )
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v3/onezone/tokens/named/missing"))
            .respond_with(oz_error(404, "notFound", "The resource could not be found."))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server);

        let out = client.dry_run(&user_op(USER)).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert_eq!(
            out.message,
            format!("would revoke all temporary tokens of user {USER} (current generation 3)")
        );
        let err = client.dry_run(&user_op("nobody")).await.unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);

        let out = client
            .dry_run(&Operation::OnezoneRevokeCurrentUserTemporaryTokens)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert!(out.message.contains(USER), "{}", out.message);

        let out = client.dry_run(&named(NamedTokenAction::Revoke)).await.unwrap();
        assert_eq!(out.message, format!("would revoke named token {NAMED} (\"ci\")"));
        let old = |action| Operation::OnezoneRevokeNamedToken {
            token_id: "old".into(),
            action,
        };
        let out = client.dry_run(&old(NamedTokenAction::Revoke)).await.unwrap();
        assert!(out.message.contains("already revoked"), "{}", out.message);
        assert!(out.message.contains("change nothing"), "{}", out.message);
        let out = client.dry_run(&old(NamedTokenAction::Delete)).await.unwrap();
        assert!(out.message.contains("already revoked; would delete"), "{}", out.message);
        let err = client
            .dry_run(&Operation::OnezoneRevokeNamedToken {
                token_id: "missing".into(),
                action: NamedTokenAction::Delete,
            })
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);

        let requests = server.received_requests().await.unwrap();
        assert!(requests.iter().all(|r| r.method.as_str() == "GET"));
    }

    #[tokio::test]
    async fn check_credentials_reads_the_current_user() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v3/onezone/user"))
            .and(header("x-auth-token", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"userId": USER})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(client(&server).check_credentials().await.unwrap(), "token");
        only_request(&server).await;

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(oz_error(401, "unauthorized", "You must authenticate yourself"))
            .mount(&server)
            .await;
        let err = client(&server).check_credentials().await.unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(err.class, ErrorClass::Permanent);
    }

    #[tokio::test]
    async fn the_token_never_appears_in_errors_or_debug_output() {
        let server = MockServer::start().await;
        let echo = format!("bad token {TOKEN}");
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
                "id": echo, "description": echo, "details": {"authError": {"token": TOKEN}}
            }})))
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .respond_with(oz_error(404, &echo, &echo))
            .mount(&server)
            .await;
        let client = client(&server);
        let err = client.revoke(&user_op(USER), FIRST).await.unwrap_err();
        assert!(err.message.contains("[redacted]"), "{}", err.message);
        for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
            assert!(!text.contains(TOKEN), "token leaked in: {text}");
        }
        for ctx in [FIRST, RETRY] {
            let text = match client.revoke(&named(NamedTokenAction::Revoke), ctx).await {
                Ok(out) => format!("{out:?}"),
                Err(err) => format!("{err} {err:?}"),
            };
            assert!(!text.contains(TOKEN), "token leaked in: {text}");
        }
        let creds = OnezoneCredentials { token: TOKEN.into() };
        assert!(!format!("{creds:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn a_host_off_the_allow_list_is_refused_and_other_providers_ops_are_rejected() {
        let server = MockServer::start().await;
        let err = OnezoneClient::new(
            &OnezoneProvider {
                base_url: server.uri(),
                credentials_secret_ref: LocalSecretRef { name: "c".into() },
            },
            OnezoneCredentials { token: TOKEN.into() },
            None,
            &HttpSettings::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason, Reason::HostNotAllowed);
        let err = client(&server)
            .revoke(
                &Operation::AtlasDisableX509 {
                    group_id: "0".repeat(24),
                },
                FIRST,
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::ProviderMismatch);
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
