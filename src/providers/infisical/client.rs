//! The Infisical client: construction and authenticated calls.

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};

use super::credentials::InfisicalCredentials;
use super::errors::token_rejected;
use crate::api::{INFISICAL_DEFAULT_URL, InfisicalProvider, ProviderType};
use std::sync::Arc;

use crate::api::{ProviderBackend, ProviderConfig};
use crate::credentials::SecretData;
use crate::outcome::{ProviderError, Redactor};
use crate::providers::answer::{Answer, Dialect};
use crate::providers::http::{HttpSettings, ProviderHttp};
use crate::providers::token_cache::TokenCache;
use crate::providers::{Built, backend_mismatch};

/// How Infisical answers look.
pub(super) const DIALECT: Dialect = Dialect {
    name: "Infisical",
    request_id_headers: &["x-request-id"],
};

/// Client for one Infisical provider object.
pub struct InfisicalClient {
    pub(super) http: ProviderHttp,
    pub(super) auth: Auth,
    /// Knows the credentials and every login token.
    pub(super) redactor: Redactor,
}

pub(super) enum Auth {
    /// Log in with client id and secret; the token is cached.
    UniversalAuth {
        client_id: String,
        client_secret: SecretString,
        cache: TokenCache,
    },
    /// Use the given token as it is.
    AccessToken(SecretString),
}

impl std::fmt::Debug for InfisicalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("InfisicalClient");
        s.field("http", &self.http);
        match &self.auth {
            Auth::UniversalAuth { client_id, .. } => s.field("auth", &"universalAuth").field("client_id", client_id),
            Auth::AccessToken(_) => s.field("auth", &"accessToken"),
        };
        s.finish_non_exhaustive()
    }
}

impl InfisicalClient {
    /// A client for `config`. Fails with `HostNotAllowed` when the base URL's host is not on the
    /// egress allow-list, and with `InvalidProviderConfig` for a bad URL or CA bundle.
    pub fn new(
        config: &InfisicalProvider,
        creds: InfisicalCredentials,
        ca_bundle: Option<&str>,
        settings: &HttpSettings,
    ) -> Result<Self, ProviderError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or(INFISICAL_DEFAULT_URL)
            .trim_end_matches('/');
        let http = ProviderHttp::new(ProviderType::Infisical, base, ca_bundle, settings)?;
        let (auth, redactor) = match creds {
            InfisicalCredentials::UniversalAuth {
                client_id,
                client_secret,
            } => {
                let redactor = Redactor::with(&[&client_secret]);
                let cache = TokenCache::new(redactor.clone());
                (
                    Auth::UniversalAuth {
                        client_id,
                        client_secret,
                        cache,
                    },
                    redactor,
                )
            }
            InfisicalCredentials::AccessToken(token) => (Auth::AccessToken(token.clone()), Redactor::with(&[&token])),
        };
        Ok(InfisicalClient { http, auth, redactor })
    }

    pub(super) fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["api", "v1", "auth"];
        all.extend_from_slice(segments);
        self.http.url(&all)
    }

    /// Send an authenticated request. With a cached login token that Infisical rejects (401, or
    /// 403 `TokenError` for an expired JWT), drop the token, log in again and retry once.
    pub(super) async fn call_authed<F>(&self, operation: &str, build: F) -> Result<Answer, ProviderError>
    where
        F: Fn(&str) -> RequestBuilder + Send + Sync,
    {
        let bearer = self.bearer().await?;
        let response = self.http.send(operation, build(bearer.token.expose_secret())).await?;
        let answer = Answer::read(response, operation, DIALECT, &self.redactor).await?;
        if !(bearer.from_cache && token_rejected(&answer)) {
            return Ok(answer);
        }
        tracing::debug!(
            operation,
            status = answer.status,
            "Infisical rejected the cached access token; logging in again"
        );
        self.forget(&bearer.token).await;
        let fresh = self.bearer().await?;
        let response = self.http.send(operation, build(fresh.token.expose_secret())).await?;
        Answer::read(response, operation, DIALECT, &self.redactor).await
    }
}

pub(super) fn build(config: &ProviderConfig, secret: &SecretData<'_>, settings: &HttpSettings) -> Built {
    let ProviderBackend::Infisical(block) = &config.backend else {
        return Err(backend_mismatch(ProviderType::Infisical));
    };
    let client = InfisicalClient::new(
        block,
        super::credentials::parse(secret)?,
        config.ca_bundle.as_deref(),
        settings,
    );
    Ok(Arc::new(client?))
}
