//! Atlas authentication.
//!
//! - API key: HTTP Digest (user = public key, password = private key) through `diqwest`, run inside
//!   [`ProviderHttp::execute`](crate::providers::http::ProviderHttp::execute) so the egress check,
//!   rate limit and metrics apply. One `DigestAuthSession` per client keeps the server's nonce:
//!   after the first challenge a call is one request (the nonce count goes up each time), and a
//!   nonce the server no longer takes costs one more challenge.
//! - Service account: OAuth2 client credentials at `POST {base}/api/oauth/token`. The bearer token
//!   is kept in the shared [`TokenCache`](crate::providers::token_cache::TokenCache), and a 401 on
//!   a cached token drops it and retries once with a fresh one. The exchange is written here
//!   rather than with the `oauth2` crate: its reqwest integration is for reqwest 0.12 (a second
//!   HTTP stack that would bypass the egress check, rate limit and metrics), and its error type
//!   drops the HTTP status and headers of a failed token answer, which the 429/5xx classification
//!   (and `Retry-After`) needs. The exchange is one form POST with HTTP Basic; no redirect, PKCE
//!   or state handling is involved.

use std::time::Duration;

use diqwest::{DigestAuthSession, WithDigestAuth};
use reqwest::header::ACCEPT;
use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::{AtlasClient, DIALECT};
use super::credentials::AtlasCredentials;
use crate::outcome::{ProviderError, Reason};
use crate::providers::answer::Answer;
use crate::providers::http::describe;
use crate::providers::token_cache::{Bearer, Issued};

/// Metrics label of the service account token request.
const OP_TOKEN: &str = "oauthToken";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

impl AtlasClient {
    /// HTTP Digest through `diqwest`: with the session's nonce from an earlier challenge, one
    /// request; without one (or when the server refuses it), a challenge first.
    pub(super) async fn send_digest(
        &self,
        op: &'static str,
        request: RequestBuilder,
        session: &DigestAuthSession,
    ) -> Result<Response, ProviderError> {
        // Set when diqwest fails for a reason other than the transport (e.g. a challenge it cannot
        // parse): that is not worth retrying, unlike a network error.
        let mut digest_failure: Option<String> = None;
        let slot = &mut digest_failure;
        let result = self
            .http
            .execute(op, request, move |r| async move {
                match r.send_digest_auth(session).await {
                    Ok(response) => Ok(response),
                    Err(diqwest::error::Error::Reqwest(e)) => Err(describe(e)),
                    Err(other) => {
                        let text = other.to_string();
                        *slot = Some(text.clone());
                        Err(text)
                    }
                }
            })
            .await;
        match (result, digest_failure) {
            (Err(_), Some(why)) => Err(ProviderError::permanent(
                Reason::UnexpectedResponse,
                format!(
                    "{op}: the HTTP Digest exchange with Atlas failed ({})",
                    self.redactor.redact(&why, usize::MAX)
                ),
            )),
            (result, _) => result.map_err(|e| self.scrub(e)),
        }
    }

    /// The service account's bearer token, cached or new.
    pub(super) async fn bearer_token(&self) -> Result<Bearer, ProviderError> {
        self.token.get(|| self.fetch_token()).await
    }

    /// `POST {base}/api/oauth/token` with HTTP Basic client id/secret and
    /// `grant_type=client_credentials`.
    async fn fetch_token(&self) -> Result<Issued, ProviderError> {
        let AtlasCredentials::ServiceAccount {
            client_id,
            client_secret,
        } = &self.creds
        else {
            return Err(ProviderError::permanent(
                Reason::UnexpectedResponse,
                "an API key authenticates with HTTP Digest and has no token to fetch",
            ));
        };
        let request = self
            .http
            .client()
            .post(self.http.url(&["api", "oauth", "token"]))
            .basic_auth(client_id, Some(client_secret.expose_secret()))
            .header(ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")]);
        let response = self.http.send(OP_TOKEN, request).await.map_err(|e| self.scrub(e))?;
        let answer = Answer::read(response, OP_TOKEN, DIALECT, &self.redactor).await?;
        if answer.is_success() {
            return token_from(&answer);
        }
        Err(self.token_error(&answer, client_id))
    }

    fn token_error(&self, answer: &Answer, client_id: &str) -> ProviderError {
        let failure = self.failure(answer);
        let said = failure.text.as_str();
        let status = answer.status;
        match status {
            // RFC 6749 5.2: a wrong client id or secret is 400 invalid_client (or 401).
            400 | 401 => failure.classify_as(
                Reason::Unauthorized,
                format!(
                    "{OP_TOKEN}: Atlas rejected the service account client id/secret (client id {client_id}): check clientId/clientSecret in Secret {}; {said}",
                    self.secret_name
                ),
            ),
            _ => failure.classify(|reason| match reason {
                Reason::RateLimited => format!("{OP_TOKEN}: Atlas rate-limited the token request; {said}"),
                _ => format!("{OP_TOKEN}: the Atlas token endpoint answered HTTP {status}; {said}"),
            }),
        }
    }
}

/// The token of a successful token answer. The body holds the token: never copy it (or serde's
/// view of it) into a message.
fn token_from(answer: &Answer) -> Result<Issued, ProviderError> {
    let unusable = |why: &str| {
        answer.error(ProviderError::permanent(
            Reason::UnexpectedResponse,
            format!(
                "{OP_TOKEN}: the Atlas token endpoint answered {} but {why}; expected JSON {{access_token, token_type: \"Bearer\", expires_in}}",
                answer.status_text()
            ),
        ))
    };
    let body = answer.needed_body(OP_TOKEN, DIALECT)?;
    let token: TokenResponse = serde_json::from_str(body).map_err(|_| unusable("the body is not a token answer"))?;
    if token.access_token.is_empty() {
        return Err(unusable("access_token is empty"));
    }
    if let Some(kind) = &token.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(unusable("token_type is not Bearer"));
    }
    Ok(Issued {
        token: SecretString::from(token.access_token),
        lifetime: token.expires_in.map(Duration::from_secs),
    })
}
