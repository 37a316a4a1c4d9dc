//! Infisical authentication: a given access token, or a universal-auth login whose token is kept
//! in the shared [`TokenCache`](crate::providers::token_cache::TokenCache).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::client::{Auth, DIALECT, InfisicalClient};
use super::errors::{EDIT_IDENTITY_HINT, generic};
use crate::api::INFISICAL_DEFAULT_URL;
use crate::outcome::{ProviderError, Reason};
use crate::providers::answer::Answer;
use crate::providers::token_cache::{Bearer, Issued};

/// Operation id of the login, for metrics.
const LOGIN: &str = "loginWithUniversalAuth";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl InfisicalClient {
    pub(super) fn unauthorized_hint(&self) -> String {
        match &self.auth {
            Auth::UniversalAuth { client_id, .. } => format!(
                "Infisical rejected the machine identity credentials (universal auth, clientId \
                 {client_id}); check clientId/clientSecret in the Secret"
            ),
            Auth::AccessToken(_) => "Infisical rejected the access token; check accessToken in the \
                 Secret (it may have expired or been revoked)"
                .to_string(),
        }
    }

    /// The token to send: the given access token, or a cached or new login token.
    pub(super) async fn bearer(&self) -> Result<Bearer, ProviderError> {
        match &self.auth {
            Auth::AccessToken(token) => Ok(Bearer {
                token: token.clone(),
                from_cache: false,
            }),
            Auth::UniversalAuth {
                client_id,
                client_secret,
                cache,
            } => cache.get(|| self.login(client_id, client_secret)).await,
        }
    }

    /// Drop the cached login token if it is still `used`.
    pub(super) async fn forget(&self, used: &SecretString) {
        if let Auth::UniversalAuth { cache, .. } = &self.auth {
            cache.forget(used).await;
        }
    }

    /// The live credential check: always log in (keeping the new token for the next calls).
    pub(super) async fn check(&self) -> Result<&'static str, ProviderError> {
        match &self.auth {
            Auth::AccessToken(_) => Ok("accessToken"),
            Auth::UniversalAuth {
                client_id,
                client_secret,
                cache,
            } => {
                cache.refresh(|| self.login(client_id, client_secret)).await?;
                Ok("universalAuth")
            }
        }
    }

    async fn login(&self, client_id: &str, client_secret: &SecretString) -> Result<Issued, ProviderError> {
        let request = self
            .http
            .client()
            .post(self.url(&["universal-auth", "login"]))
            .json(&json!({
                "clientId": client_id,
                "clientSecret": client_secret.expose_secret(),
            }));
        let answer = Answer::read(self.http.send(LOGIN, request).await?, LOGIN, DIALECT, &self.redactor).await?;
        if answer.is_success() {
            return match serde_json::from_str::<LoginResponse>(answer.body()) {
                Ok(login) if !login.access_token.is_empty() => Ok(Issued {
                    token: SecretString::from(login.access_token),
                    lifetime: login.expires_in.map(Duration::from_secs),
                }),
                _ => Err(answer.error(ProviderError::permanent(
                    Reason::UnexpectedResponse,
                    format!(
                        "{LOGIN}: Infisical answered HTTP {} without an accessToken",
                        answer.status
                    ),
                ))),
            };
        }
        let failure = self.failure(&answer);
        let head = format!(
            "{LOGIN}: universal-auth login with clientId {client_id} failed: Infisical answered {}",
            failure.summary()
        );
        Err(match answer.status {
            400 | 401 | 403 | 422 => failure.classify_as(
                Reason::Unauthorized,
                format!(
                    "{head}; Infisical rejected the machine identity credentials; check \
                     clientId/clientSecret in the Secret (and the identity's trusted IPs)"
                ),
            ),
            404 => failure.classify_as(
                Reason::InvalidProviderConfig,
                format!(
                    "{head}; there is no universal-auth login route at this base URL; check \
                     baseUrl (the Infisical instance root, e.g. {INFISICAL_DEFAULT_URL})"
                ),
            ),
            _ => generic(&failure, &head, &self.unauthorized_hint(), EDIT_IDENTITY_HINT),
        })
    }
}
