//! MongoDB Atlas Admin API v2 client (contract: `shared/specs/atlas.yaml`).
//!
//! Two revocations:
//! - `revokeJwksFromIdentityProvider`: DELETE
//!   `/api/atlas/v2/federationSettings/{fid}/identityProviders/{idpId}/jwks`, 204.
//! - `disableCustomerManagedX509`: DELETE `/api/atlas/v2/groups/{groupId}/userSecurity/customerX509`,
//!   202 with the project's `UserSecurity`.
//!
//! Atlas picks the API version from the `Accept` media type
//! (`application/vnd.atlas.<YYYY-MM-DD>+json`); every call's version can be overridden per
//! operation id with `spec.atlas.apiVersions` on the provider.
//!
//! Authentication:
//! - API key: HTTP Digest (user = public key, password = private key) through `diqwest`, run inside
//!   [`ProviderHttp::execute`] so the egress check, rate limit and metrics apply.
//! - Service account: OAuth2 client credentials at `POST {base}/api/oauth/token`. The bearer token
//!   is cached until shortly before it expires, and a 401 on a cached token drops it and retries
//!   once with a fresh one. The exchange is written here rather than with the `oauth2` crate: its
//!   reqwest integration is for reqwest 0.12 (a second HTTP stack that would bypass the egress
//!   check, rate limit and metrics), and its error type drops the HTTP status and headers of a
//!   failed token answer, which the 429/5xx classification (and `Retry-After`) needs. The exchange
//!   is one form POST with HTTP Basic; no redirect, PKCE or state handling is involved.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use diqwest::WithDigestAuth;
use reqwest::header::{ACCEPT, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::api::{ATLAS_DEFAULT_URL, AtlasProvider, ProviderType};
use crate::credentials::AtlasCredentials;
use crate::providers::http::retry_after_header;
use crate::providers::http::{HttpSettings, ProviderHttp, describe};
use crate::providers::{
    AttemptContext, Operation, Outcome, OutcomeKind, Provider, ProviderError, Reason, clip, redact,
};

/// Operation id of the JWKS revocation.
pub const OP_REVOKE_JWKS: &str = "revokeJwksFromIdentityProvider";
/// Operation id of the X.509 disable.
pub const OP_DISABLE_X509: &str = "disableCustomerManagedX509";
/// Operation id of the identity provider read (JWKS dry run).
pub const OP_GET_IDENTITY_PROVIDER: &str = "getIdentityProvider";
/// Operation id of the project user-security read (X.509 dry run).
pub const OP_GET_USER_SECURITY: &str = "getUserSecurity";
/// Operation id of the organization list (API key credential check).
pub const OP_LIST_ORGANIZATIONS: &str = "listOrganizations";
/// Metrics label of the service account token request.
const OP_TOKEN: &str = "oauthToken";

/// Default API version of each operation Revoker calls. `disableCustomerManagedX509` uses the
/// product brief's 2025-03-12 (see "Known discrepancy" in `shared/specs/README.md`).
pub const DEFAULT_API_VERSIONS: [(&str, &str); 5] = [
    (OP_REVOKE_JWKS, "2023-11-15"),
    (OP_DISABLE_X509, "2025-03-12"),
    (OP_GET_IDENTITY_PROVIDER, "2023-11-15"),
    (OP_GET_USER_SECURITY, "2023-01-01"),
    (OP_LIST_ORGANIZATIONS, "2023-01-01"),
];

/// Longest provider text (error detail or body) copied into a message.
const MAX_PROVIDER_TEXT: usize = 300;
/// Longest time a token is kept before refreshing, when the response did not say.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Assumed token lifetime when the token answer has no `expires_in`. Short on purpose: a 401 on
/// a cached token refreshes it anyway.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// A client for one Atlas provider object.
pub struct AtlasClient {
    http: ProviderHttp,
    creds: AtlasCredentials,
    /// Name of the credentials Secret, for messages.
    secret_name: String,
    /// Version per operation id: the defaults with the provider's overrides applied.
    versions: BTreeMap<String, String>,
    /// The service account's bearer token. Held while a token is fetched, so concurrent
    /// revocations wait for one token request instead of sending their own.
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

impl std::fmt::Debug for AtlasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (auth, id) = match &self.creds {
            AtlasCredentials::ApiKey { public_key, .. } => ("digest", public_key),
            AtlasCredentials::ServiceAccount { client_id, .. } => ("serviceAccount", client_id),
        };
        f.debug_struct("AtlasClient")
            .field("http", &self.http)
            .field("auth", &auth)
            .field("id", id)
            .field("secret", &self.secret_name)
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

/// What a call was about, to word its errors.
#[derive(Clone, Copy)]
enum Target<'a> {
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

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserSecurity {
    #[serde(rename = "customerX509")]
    customer_x509: Option<CustomerX509>,
}

#[derive(Debug, Default, Deserialize)]
struct CustomerX509 {
    cas: Option<String>,
}

impl UserSecurity {
    fn has_customer_ca(&self) -> bool {
        self.customer_x509
            .as_ref()
            .and_then(|x| x.cas.as_deref())
            .is_some_and(|cas| !cas.trim().is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityProvider {
    display_name: Option<String>,
    protocol: Option<String>,
    issuer_uri: Option<String>,
}

impl AtlasClient {
    /// Build a client. Fails with `HostNotAllowed` when the base URL's host is not on the egress
    /// allow-list, and with `InvalidProviderConfig` for a bad URL, CA bundle or `apiVersions`.
    pub fn new(
        config: &AtlasProvider,
        creds: AtlasCredentials,
        ca_bundle: Option<&str>,
        settings: &HttpSettings,
    ) -> Result<Self, ProviderError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or(ATLAS_DEFAULT_URL)
            .trim_end_matches('/');
        let versions = resolve_versions(&config.api_versions)?;
        let http = ProviderHttp::new(ProviderType::Atlas, base, ca_bundle, settings)?;
        Ok(AtlasClient {
            http,
            creds,
            secret_name: config.credentials_secret_ref.name.clone(),
            versions,
            token: Mutex::new(None),
        })
    }

    fn version(&self, op: &str) -> &str {
        self.versions.get(op).map(String::as_str).unwrap_or_default()
    }

    fn media_type(&self, op: &str) -> String {
        format!("application/vnd.atlas.{}+json", self.version(op))
    }

    /// Send one Admin API request with the configured authentication.
    async fn api(
        &self,
        op: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Response, ProviderError> {
        let url = self.http.url(segments);
        let accept = self.media_type(op);
        let build = || {
            let request = self
                .http
                .client()
                .request(method.clone(), url.clone())
                .header(ACCEPT, accept.as_str());
            if query.is_empty() {
                request
            } else {
                request.query(query)
            }
        };
        match &self.creds {
            AtlasCredentials::ApiKey {
                public_key,
                private_key,
            } => self.send_digest(op, build(), public_key, private_key).await,
            AtlasCredentials::ServiceAccount { .. } => {
                let (token, cached) = self.bearer_token().await?;
                let response = self.http.send(op, build().bearer_auth(token.expose_secret())).await?;
                if response.status() != StatusCode::UNAUTHORIZED || !cached {
                    return Ok(response);
                }
                // The cached token may have been revoked or expired early: fetch a new one and
                // retry once. A 401 with a fresh token is final.
                self.forget_token(&token).await;
                let (token, _) = self.bearer_token().await?;
                self.http.send(op, build().bearer_auth(token.expose_secret())).await
            }
        }
    }

    /// HTTP Digest through `diqwest`: the first request draws the 401 challenge, the second
    /// carries the answer.
    async fn send_digest(
        &self,
        op: &'static str,
        request: RequestBuilder,
        user: &str,
        password: &SecretString,
    ) -> Result<Response, ProviderError> {
        // Set when diqwest fails for a reason other than the transport (e.g. a challenge it cannot
        // parse): that is not worth retrying, unlike a network error.
        let mut digest_failure: Option<String> = None;
        let slot = &mut digest_failure;
        let result = self
            .http
            .execute(op, request, move |r| async move {
                match r.send_digest_auth((user, password.expose_secret())).await {
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
            (Err(_), Some(why)) => Err(self.scrub(ProviderError::permanent(
                Reason::UnexpectedResponse,
                format!("{op}: the HTTP Digest exchange with Atlas failed ({why})"),
            ))),
            (result, _) => result.map_err(|e| self.scrub(e)),
        }
    }

    /// The service account's bearer token and whether it came from the cache.
    async fn bearer_token(&self) -> Result<(SecretString, bool), ProviderError> {
        let mut cache = self.token.lock().await;
        if let Some(token) = cache.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok((token.value.clone(), true));
        }
        *cache = None;
        let requested = Instant::now();
        let (value, lifetime) = self.fetch_token().await?;
        *cache = Some(CachedToken {
            value: value.clone(),
            refresh_at: requested + cache_lifetime(lifetime),
        });
        Ok((value, false))
    }

    /// Drop the cached token if it is still `used` (another call may have refreshed it already).
    async fn forget_token(&self, used: &SecretString) {
        let mut cache = self.token.lock().await;
        if cache
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == used.expose_secret())
        {
            *cache = None;
        }
    }

    /// `POST {base}/api/oauth/token` with HTTP Basic client id/secret and
    /// `grant_type=client_credentials`.
    async fn fetch_token(&self) -> Result<(SecretString, Duration), ProviderError> {
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
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(OP_TOKEN, response).await?;
        if status.is_success() {
            let unusable = |why: &str| {
                ProviderError::permanent(
                    Reason::UnexpectedResponse,
                    format!(
                        "{OP_TOKEN}: the Atlas token endpoint answered {status} but {why}; expected JSON {{access_token, token_type: \"Bearer\", expires_in}}"
                    ),
                )
                .with_http(status.as_u16(), request_id(&headers), None)
            };
            // The body holds the token: never copy it (or serde's view of it) into a message.
            let token: TokenResponse =
                serde_json::from_str(&body).map_err(|_| unusable("the body is not a token answer"))?;
            if token.access_token.is_empty() {
                return Err(unusable("access_token is empty"));
            }
            if let Some(kind) = &token.token_type
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return Err(unusable("token_type is not Bearer"));
            }
            let lifetime = token
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TOKEN_LIFETIME);
            return Ok((SecretString::from(token.access_token), lifetime));
        }
        let (said, code) = provider_said(status.as_u16(), &body);
        let code_value = status.as_u16();
        let err = match code_value {
            400 | 401 => ProviderError::permanent(
                Reason::Unauthorized,
                format!(
                    "{OP_TOKEN}: Atlas rejected the service account client id/secret (client id {client_id}): check clientId/clientSecret in Secret {}; {said}",
                    self.secret_name
                ),
            ),
            429 => ProviderError::transient(
                Reason::RateLimited,
                format!("{OP_TOKEN}: Atlas rate-limited the token request; {said}"),
                rate_limit_wait(&headers, &body),
            ),
            _ => ProviderError::from_status(
                code_value,
                retry_after_header(&headers),
                format!("{OP_TOKEN}: the Atlas token endpoint answered HTTP {code_value}; {said}"),
            ),
        };
        Err(self.scrub(err.with_http(code_value, request_id(&headers), code)))
    }

    /// Classify an Atlas error answer.
    async fn error_from(&self, op: &'static str, target: Target<'_>, response: Response) -> ProviderError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match read_body(op, response).await {
            Ok(body) => body,
            Err(e) => return self.scrub(e.with_http(status, request_id(&headers), None)),
        };
        let (said, code) = provider_said(status, &body);
        let who = self.who();
        let err = match status {
            401 => ProviderError::permanent(
                Reason::Unauthorized,
                format!("{op}: Atlas rejected the {who} ({}); {said}", self.credential_hint()),
            ),
            403 => ProviderError::permanent(
                Reason::Forbidden,
                format!("{op}: Atlas refused the {who}: {}; {said}", forbidden_hint(target)),
            ),
            404 => ProviderError::permanent(
                Reason::TargetNotFound,
                format!("{op}: {}; {said}", not_found_hint(target)),
            ),
            406 => ProviderError::permanent(
                Reason::UnsupportedApiVersion,
                format!("{op}: {}; {said}", self.version_hint(op)),
            ),
            429 => ProviderError::transient(
                Reason::RateLimited,
                format!("{op}: Atlas rate-limited the request; {said}"),
                rate_limit_wait(&headers, &body),
            ),
            500..=599 => ProviderError::transient(
                Reason::ProviderUnavailable,
                format!("{op}: Atlas answered HTTP {status} (a server-side error; retrying); {said}"),
                retry_after_header(&headers),
            ),
            400 | 422 => ProviderError::permanent(
                Reason::BadRequest,
                format!("{op}: Atlas rejected the request as invalid; {said}"),
            ),
            _ => ProviderError::from_status(
                status,
                retry_after_header(&headers),
                format!("{op}: Atlas answered HTTP {status}, which its API does not document here; {said}"),
            ),
        };
        self.scrub(err.with_http(status, request_id(&headers), code))
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

    /// Replace any credential value that a provider text may have echoed.
    fn scrub(&self, mut err: ProviderError) -> ProviderError {
        let secret = match &self.creds {
            AtlasCredentials::ApiKey { private_key, .. } => private_key,
            AtlasCredentials::ServiceAccount { client_secret, .. } => client_secret,
        };
        err.message = redact(&err.message, &[secret]);
        err
    }

    async fn revoke_jwks(&self, fid: &str, idp: &str) -> Result<Outcome, ProviderError> {
        require_id("federationSettingsId", fid)?;
        require_id("identityProviderId", idp)?;
        let target = Target::IdentityProvider { fid, idp };
        let response = self
            .api(OP_REVOKE_JWKS, Method::DELETE, &jwks_path(fid, idp, true), &[])
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_from(OP_REVOKE_JWKS, target, response).await);
        }
        Ok(Outcome {
            kind: OutcomeKind::Revoked,
            http_status: Some(status.as_u16()),
            request_id: request_id(response.headers()),
            message: format!(
                "revoked the JWKS of identity provider {idp} (federation {fid}): Atlas refreshes the identity provider's public keys on all clusters, tokens signed before now stop working and users must log in again"
            ),
        })
    }

    async fn disable_x509(&self, group: &str) -> Result<Outcome, ProviderError> {
        require_id("groupId", group)?;
        let target = Target::Project { group };
        let response = self
            .api(OP_DISABLE_X509, Method::DELETE, &user_security_path(group, true), &[])
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_from(OP_DISABLE_X509, target, response).await);
        }
        let request_id = request_id(response.headers());
        // 202 carries the project's UserSecurity. The 2xx is what counts; the body only refines
        // the message (Atlas applies the change with a rolling restart).
        let body = response.text().await.unwrap_or_default();
        let mut message = format!(
            "disabled customer-managed X.509 of project {group}: Atlas removed the customer CA and applies the change with a rolling restart"
        );
        match serde_json::from_str::<UserSecurity>(&body) {
            Ok(settings) if settings.has_customer_ca() => message.push_str(&format!(
                "; note: the answer (HTTP {}) still lists customer CA certificates, check GET /api/atlas/v2/groups/{group}/userSecurity",
                status.as_u16()
            )),
            Ok(_) => {}
            Err(_) => message.push_str(&format!(
                "; note: the answer (HTTP {}) was not the expected UserSecurity JSON",
                status.as_u16()
            )),
        }
        Ok(Outcome {
            kind: OutcomeKind::Revoked,
            http_status: Some(status.as_u16()),
            request_id,
            message,
        })
    }

    async fn dry_run_jwks(&self, fid: &str, idp: &str) -> Result<Outcome, ProviderError> {
        require_id("federationSettingsId", fid)?;
        require_id("identityProviderId", idp)?;
        let target = Target::IdentityProvider { fid, idp };
        let response = self
            .api(OP_GET_IDENTITY_PROVIDER, Method::GET, &jwks_path(fid, idp, false), &[])
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_from(OP_GET_IDENTITY_PROVIDER, target, response).await);
        }
        let request_id = request_id(response.headers());
        let body = response.text().await.unwrap_or_default();
        let found: IdentityProvider = serde_json::from_str(&body).unwrap_or_default();
        let mut facts = Vec::new();
        if let Some(name) = &found.display_name {
            facts.push(format!("{:?}", clip(name, 100)));
        }
        if let Some(protocol) = &found.protocol {
            facts.push(clip(protocol, 20));
        }
        if let Some(issuer) = &found.issuer_uri {
            facts.push(format!("issuer {}", clip(issuer, 200)));
        }
        let described = if facts.is_empty() {
            String::new()
        } else {
            format!(" ({})", facts.join(", "))
        };
        let mut message = format!(
            "would revoke the JWKS of identity provider {idp}{described} in federation {fid}; nothing was revoked"
        );
        if found
            .protocol
            .as_deref()
            .is_some_and(|p| !p.eq_ignore_ascii_case("OIDC"))
        {
            message.push_str("; note: Atlas revokes JWKS of OIDC identity providers only");
        }
        Ok(Outcome {
            kind: OutcomeKind::DryRun,
            http_status: Some(status.as_u16()),
            request_id,
            message,
        })
    }

    async fn dry_run_x509(&self, group: &str) -> Result<Outcome, ProviderError> {
        require_id("groupId", group)?;
        let target = Target::Project { group };
        let response = self
            .api(
                OP_GET_USER_SECURITY,
                Method::GET,
                &user_security_path(group, false),
                &[],
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_from(OP_GET_USER_SECURITY, target, response).await);
        }
        let request_id = request_id(response.headers());
        let body = read_body(OP_GET_USER_SECURITY, response).await?;
        let settings: UserSecurity = serde_json::from_str(&body).map_err(|_| {
            ProviderError::permanent(
                Reason::UnexpectedResponse,
                format!(
                    "{OP_GET_USER_SECURITY}: Atlas answered {status} but the body is not UserSecurity JSON: {}",
                    clip(&body, MAX_PROVIDER_TEXT)
                ),
            )
            .with_http(status.as_u16(), request_id.clone(), None)
        })?;
        let message = if settings.has_customer_ca() {
            format!(
                "would disable customer-managed X.509 of project {group} (a customer CA is configured; disabling removes it and triggers a rolling restart); nothing was revoked"
            )
        } else {
            format!(
                "customer-managed X.509 of project {group} is already disabled (no customer CA is configured); nothing was revoked"
            )
        };
        Ok(Outcome {
            kind: OutcomeKind::DryRun,
            http_status: Some(status.as_u16()),
            request_id,
            message,
        })
    }
}

#[async_trait]
impl Provider for AtlasClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Atlas
    }

    async fn revoke(&self, op: &Operation, _ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        // Neither Atlas call has an ambiguous 404 (a 404 always means the parent is unknown), so
        // earlier attempts do not change how an answer is read.
        match op {
            Operation::AtlasRevokeJwks {
                federation_settings_id,
                identity_provider_id,
            } => self.revoke_jwks(federation_settings_id, identity_provider_id).await,
            Operation::AtlasDisableX509 { group_id } => self.disable_x509(group_id).await,
            other => Err(unsupported(other)),
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match op {
            Operation::AtlasRevokeJwks {
                federation_settings_id,
                identity_provider_id,
            } => self.dry_run_jwks(federation_settings_id, identity_provider_id).await,
            Operation::AtlasDisableX509 { group_id } => self.dry_run_x509(group_id).await,
            other => Err(unsupported(other)),
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        match &self.creds {
            // Getting a token proves the client id and secret.
            AtlasCredentials::ServiceAccount { .. } => {
                self.bearer_token().await?;
                Ok("serviceAccount")
            }
            // Digest has no login call, and the contract has no dedicated "who am I" read, so the
            // check is the cheapest authenticated read: the first page (one item) of the
            // organizations the key can see. 200 proves the key. 403 also proves it (Atlas
            // authenticated the key, which lacks rights for this read or calls from a non-listed
            // IP); the revocation calls report their own role or access-list problems. 401 means
            // the key pair is wrong.
            AtlasCredentials::ApiKey { .. } => {
                let response = self
                    .api(
                        OP_LIST_ORGANIZATIONS,
                        Method::GET,
                        &["api", "atlas", "v2", "orgs"],
                        &[("itemsPerPage", "1")],
                    )
                    .await?;
                let status = response.status();
                if status.is_success() || status == StatusCode::FORBIDDEN {
                    return Ok("digest");
                }
                Err(self
                    .error_from(OP_LIST_ORGANIZATIONS, Target::Organizations, response)
                    .await)
            }
        }
    }
}

/// Defaults overlaid with the provider's `apiVersions`, each checked.
fn resolve_versions(overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut versions: BTreeMap<String, String> = DEFAULT_API_VERSIONS
        .iter()
        .map(|(op, v)| (op.to_string(), v.to_string()))
        .collect();
    for (op, version) in overrides {
        if !versions.contains_key(op) {
            let known: Vec<&str> = DEFAULT_API_VERSIONS.iter().map(|(op, _)| *op).collect();
            return Err(ProviderError::permanent(
                Reason::InvalidProviderConfig,
                format!(
                    "spec.atlas.apiVersions has the unknown operation id {op:?}; known: {}",
                    known.join(", ")
                ),
            ));
        }
        let version = version.trim();
        if !is_version(version) {
            return Err(ProviderError::permanent(
                Reason::InvalidProviderConfig,
                format!(
                    "spec.atlas.apiVersions.{op} is {version:?}; expected a date like 2023-01-01 (sent as application/vnd.atlas.<date>+json)"
                ),
            ));
        }
        versions.insert(op.clone(), version.to_string());
    }
    Ok(versions)
}

fn default_version(op: &str) -> Option<&'static str> {
    DEFAULT_API_VERSIONS
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, v)| *v)
}

/// `YYYY-MM-DD`.
fn is_version(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// How long a token with `lifetime` stays cached: until 60 s or 10% of its lifetime (whichever is
/// smaller) before it expires.
fn cache_lifetime(lifetime: Duration) -> Duration {
    let margin = TOKEN_MARGIN.min(lifetime / 10);
    lifetime.saturating_sub(margin)
}

fn jwks_path<'a>(fid: &'a str, idp: &'a str, jwks: bool) -> Vec<&'a str> {
    let mut path = vec![
        "api",
        "atlas",
        "v2",
        "federationSettings",
        fid,
        "identityProviders",
        idp,
    ];
    if jwks {
        path.push("jwks");
    }
    path
}

fn user_security_path(group: &str, customer_x509: bool) -> Vec<&str> {
    let mut path = vec!["api", "atlas", "v2", "groups", group, "userSecurity"];
    if customer_x509 {
        path.push("customerX509");
    }
    path
}

fn require_id(field: &str, value: &str) -> Result<(), ProviderError> {
    if value.trim().is_empty() {
        return Err(ProviderError::permanent(
            Reason::BadRequest,
            format!("spec.atlas.{field} is empty"),
        ));
    }
    Ok(())
}

fn unsupported(op: &Operation) -> ProviderError {
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

/// Read a response body; a failure to read it is a transport problem.
async fn read_body(op: &str, response: Response) -> Result<String, ProviderError> {
    response.text().await.map_err(|e| {
        ProviderError::transient(
            Reason::NetworkError,
            format!("{op}: the answer of Atlas could not be read ({})", describe(e)),
            None,
        )
    })
}

/// "Atlas said: CODE (Reason): detail" from an Atlas or OAuth error body, or a short quote of an
/// unparseable one, and the error code.
fn provider_said(status: u16, body: &str) -> (String, Option<String>) {
    if let Ok(err) = serde_json::from_str::<ApiError>(body)
        && (err.error_code.is_some() || err.detail.is_some())
    {
        let mut text = String::from("Atlas said:");
        if let Some(code) = &err.error_code {
            text.push(' ');
            text.push_str(&clip(code, 100));
        }
        if let Some(reason) = &err.reason {
            text.push_str(&format!(" ({})", clip(reason, 100)));
        }
        if let Some(detail) = &err.detail {
            text.push_str(": ");
            text.push_str(&clip(detail, MAX_PROVIDER_TEXT));
        }
        return (text, err.error_code);
    }
    if let Ok(err) = serde_json::from_str::<OAuthError>(body) {
        let mut text = format!("Atlas said: {}", clip(&err.error, 100));
        if let Some(description) = &err.error_description {
            text.push_str(": ");
            text.push_str(&clip(description, MAX_PROVIDER_TEXT));
        }
        return (text, Some(err.error));
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        (format!("HTTP {status} with an empty body"), None)
    } else {
        (
            format!(
                "HTTP {status} with a body that is not an Atlas error: {}",
                clip(trimmed, MAX_PROVIDER_TEXT)
            ),
            None,
        )
    }
}

/// The wait a 429 asks for: the `Retry-After` header (seconds), else "retry after N seconds" in
/// the Atlas detail.
fn rate_limit_wait(headers: &HeaderMap, body: &str) -> Option<Duration> {
    retry_after_header(headers).or_else(|| {
        let detail = serde_json::from_str::<ApiError>(body).ok()?.detail?;
        retry_after_in_text(&detail)
    })
}

/// Parse "retry after N seconds" (any case) from a text.
fn retry_after_in_text(text: &str) -> Option<Duration> {
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

/// A provider request id header, when one is sent (Atlas does not document one; common names).
fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "x-mongodb-request-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(|id| clip(id, 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::num::NonZeroU32;
    use std::sync::Arc;

    use base64::Engine;
    use md5::{Digest, Md5};
    use serde_json::json;
    use wiremock::matchers::{body_string, header, method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use crate::api::LocalSecretRef;
    use crate::egress::AllowList;
    use crate::providers::ErrorClass;

    const FID: &str = "55fa922fb343282757d9554e";
    const IDP: &str = "32b6e34b3d91647abb20e7b8";
    const GROUP: &str = "5e2211c17a3e5a48f5497de3";
    const PUBLIC_KEY: &str = "abcdefgh";
    const PRIVATE_KEY: &str = "priv-8f1e-S3CR3T-0c4b";
    const CLIENT_ID: &str = "mdb_sa_id_6655";
    const CLIENT_SECRET: &str = "mdb_sa_sk_CL13NT-S3CR3T";
    const SECRET_NAME: &str = "atlas-creds";
    const JWKS_PATH: &str =
        "/api/atlas/v2/federationSettings/55fa922fb343282757d9554e/identityProviders/32b6e34b3d91647abb20e7b8/jwks";
    const IDP_PATH: &str =
        "/api/atlas/v2/federationSettings/55fa922fb343282757d9554e/identityProviders/32b6e34b3d91647abb20e7b8";
    const X509_PATH: &str = "/api/atlas/v2/groups/5e2211c17a3e5a48f5497de3/userSecurity/customerX509";
    const USER_SECURITY_PATH: &str = "/api/atlas/v2/groups/5e2211c17a3e5a48f5497de3/userSecurity";
    const JWKS_MEDIA: &str = "application/vnd.atlas.2023-11-15+json";
    const X509_MEDIA: &str = "application/vnd.atlas.2025-03-12+json";
    const CHALLENGE: &str = r#"Digest realm="MMS Public API", domain="", nonce="OWYxZmVjZWItMzFhZS00NGQ3", algorithm=MD5, qop="auth", stale=false"#;

    fn settings() -> HttpSettings {
        HttpSettings {
            allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).unwrap()),
            timeout: Duration::from_secs(5),
            requests_per_second: NonZeroU32::new(10_000).unwrap(),
        }
    }

    fn config(server: &MockServer, versions: &[(&str, &str)]) -> AtlasProvider {
        AtlasProvider {
            base_url: Some(server.uri()),
            credentials_secret_ref: LocalSecretRef {
                name: SECRET_NAME.into(),
            },
            api_versions: versions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn api_key() -> AtlasCredentials {
        AtlasCredentials::ApiKey {
            public_key: PUBLIC_KEY.into(),
            private_key: PRIVATE_KEY.to_string().into(),
        }
    }

    fn service_account() -> AtlasCredentials {
        AtlasCredentials::ServiceAccount {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_string().into(),
        }
    }

    fn client(server: &MockServer, creds: AtlasCredentials) -> AtlasClient {
        AtlasClient::new(&config(server, &[]), creds, None, &settings()).unwrap()
    }

    fn jwks_op() -> Operation {
        Operation::AtlasRevokeJwks {
            federation_settings_id: FID.into(),
            identity_provider_id: IDP.into(),
        }
    }

    fn x509_op() -> Operation {
        Operation::AtlasDisableX509 { group_id: GROUP.into() }
    }

    fn token_body(token: &str, expires_in: u64) -> serde_json::Value {
        json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})
    }

    async fn mount_token(server: &MockServer, token: &str, expected: u64) {
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(token, 3600)))
            .expect(expected)
            .mount(server)
            .await;
    }

    fn no_authorization(request: &Request) -> bool {
        !request.headers.contains_key("authorization")
    }

    fn digest_authorization(request: &Request) -> bool {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Digest "))
    }

    fn atlas_error(status: u16, code: &str, detail: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "error": status,
            "errorCode": code,
            "reason": "Some Reason",
            "detail": detail,
            "parameters": [],
        }))
    }

    /// Parse `Digest k=v, k="v", …` into a map.
    fn digest_fields(value: &str) -> BTreeMap<String, String> {
        let rest = value.strip_prefix("Digest ").expect("Digest scheme");
        let mut fields = BTreeMap::new();
        let mut remaining = rest.trim();
        while !remaining.is_empty() {
            let eq = remaining.find('=').expect("key=value");
            let key = remaining[..eq].trim().to_string();
            let after = &remaining[eq + 1..];
            let (val, next) = if let Some(stripped) = after.strip_prefix('"') {
                let end = stripped.find('"').expect("closing quote");
                (stripped[..end].to_string(), &stripped[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            fields.insert(key, val);
            remaining = next.trim_start_matches(',').trim();
        }
        fields
    }

    fn md5_hex(text: &str) -> String {
        hex::encode(Md5::digest(text.as_bytes()))
    }

    #[tokio::test]
    async fn revoke_jwks_sends_the_exact_request_and_reports_revoked() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .and(path(JWKS_PATH))
            .and(header("accept", JWKS_MEDIA))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server, service_account())
            .revoke(&jwks_op(), AttemptContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
        assert_eq!(outcome.http_status, Some(204));
        assert!(outcome.message.contains(IDP) && outcome.message.contains(FID));
        let requests = server.received_requests().await.unwrap();
        let delete = requests.iter().find(|r| r.method.as_str() == "DELETE").unwrap();
        assert_eq!(delete.url.path(), JWKS_PATH);
        assert_eq!(delete.url.query(), None);
        assert!(delete.body.is_empty(), "DELETE must have no body");
        assert_eq!(delete.headers.get_all("accept").iter().count(), 1);
    }

    #[tokio::test]
    async fn disable_x509_sends_the_exact_request_with_the_2025_media_type() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .and(path(X509_PATH))
            .and(header("accept", X509_MEDIA))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "customerX509": {},
                "ldap": {"authenticationEnabled": false, "authorizationEnabled": false},
                "links": [{"href": "https://cloud.mongodb.com/api/atlas/v2/groups/x/userSecurity", "rel": "self"}],
            })))
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server, service_account())
            .revoke(&x509_op(), AttemptContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
        assert_eq!(outcome.http_status, Some(202));
        assert!(outcome.message.contains(GROUP), "{}", outcome.message);
        assert!(!outcome.message.contains("note:"), "{}", outcome.message);
        let requests = server.received_requests().await.unwrap();
        let delete = requests.iter().find(|r| r.method.as_str() == "DELETE").unwrap();
        assert_eq!(delete.url.path(), X509_PATH);
        assert!(delete.body.is_empty());
    }

    #[tokio::test]
    async fn disable_x509_notes_a_ca_still_listed_in_the_answer() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .and(path(X509_PATH))
            .respond_with(
                ResponseTemplate::new(202)
                    .set_body_json(json!({"customerX509": {"cas": "-----BEGIN CERTIFICATE-----"}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server, service_account())
            .revoke(&x509_op(), AttemptContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
        assert!(
            outcome.message.contains("still lists customer CA"),
            "{}",
            outcome.message
        );
    }

    #[tokio::test]
    async fn digest_flow_answers_the_challenge_with_a_valid_md5_response() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(JWKS_PATH))
            .and(no_authorization)
            .respond_with(
                atlas_error(401, "UNAUTHORIZED", "You are not authorized for this resource.")
                    .insert_header("www-authenticate", CHALLENGE),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(JWKS_PATH))
            .and(header("accept", JWKS_MEDIA))
            .and(digest_authorization)
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server, api_key())
            .revoke(&jwks_op(), AttemptContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);

        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        assert!(no_authorization(&requests[0]));
        let authorization = requests[1].headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            authorization.starts_with(&format!("Digest username=\"{PUBLIC_KEY}\"")),
            "{authorization}"
        );
        assert!(!authorization.contains(PRIVATE_KEY));
        let f = digest_fields(authorization);
        assert_eq!(f["username"], PUBLIC_KEY);
        assert_eq!(f["realm"], "MMS Public API");
        assert_eq!(f["nonce"], "OWYxZmVjZWItMzFhZS00NGQ3");
        assert_eq!(f["uri"], JWKS_PATH);
        assert_eq!(f["qop"], "auth");
        let ha1 = md5_hex(&format!("{PUBLIC_KEY}:MMS Public API:{PRIVATE_KEY}"));
        let ha2 = md5_hex(&format!("DELETE:{JWKS_PATH}"));
        let expected = md5_hex(&format!("{ha1}:{}:{}:{}:auth:{ha2}", f["nonce"], f["nc"], f["cnonce"]));
        assert_eq!(f["response"], expected, "digest response hash");
        // The answered request is the same DELETE: same Accept, no body.
        assert_eq!(requests[1].headers.get("accept").unwrap(), JWKS_MEDIA);
        assert!(requests[1].body.is_empty());
    }

    #[tokio::test]
    async fn digest_with_a_wrong_private_key_is_unauthorized_and_names_the_secret() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(X509_PATH))
            .respond_with(
                atlas_error(401, "UNAUTHORIZED", "You are not authorized for this resource.")
                    .insert_header("www-authenticate", CHALLENGE),
            )
            .expect(2)
            .mount(&server)
            .await;
        let err = client(&server, api_key())
            .revoke(&x509_op(), AttemptContext::default())
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.http_status, Some(401));
        assert_eq!(err.error_code.as_deref(), Some("UNAUTHORIZED"));
        assert!(
            err.message.contains("publicKey/privateKey")
                && err.message.contains(SECRET_NAME)
                && err.message.contains(PUBLIC_KEY),
            "{}",
            err.message
        );
        assert!(!err.message.contains(PRIVATE_KEY));
    }

    #[tokio::test]
    async fn oauth_token_request_has_basic_auth_and_a_form_body() {
        let server = MockServer::start().await;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .and(header("authorization", format!("Basic {basic}").as_str()))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(header("accept", "application/json"))
            .and(body_string("grant_type=client_credentials"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1", 3600)))
            .expect(1)
            .mount(&server)
            .await;
        let auth = client(&server, service_account()).check_credentials().await.unwrap();
        assert_eq!(auth, "serviceAccount");
    }

    #[tokio::test]
    async fn ten_revocations_share_one_token_request() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .and(path(JWKS_PATH))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(ResponseTemplate::new(204))
            .expect(20)
            .mount(&server)
            .await;
        let atlas = client(&server, service_account());
        for _ in 0..10 {
            atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        }
        // Concurrent calls wait for the cached token too.
        let op = jwks_op();
        let results = futures::future::join_all((0..10).map(|_| atlas.revoke(&op, AttemptContext::default()))).await;
        assert!(results.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn an_expired_token_is_fetched_again() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 2).await;
        Mock::given(method("DELETE"))
            .and(path(JWKS_PATH))
            .respond_with(ResponseTemplate::new(204))
            .expect(3)
            .mount(&server)
            .await;
        let atlas = client(&server, service_account());
        atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        // Age the cached token past its refresh time.
        if let Some(token) = atlas.token.lock().await.as_mut() {
            token.refresh_at = Instant::now() - Duration::from_secs(1);
        }
        atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
    }

    #[test]
    fn tokens_are_refreshed_60s_or_10_percent_before_expiry() {
        assert_eq!(cache_lifetime(Duration::from_secs(3600)), Duration::from_secs(3540));
        assert_eq!(cache_lifetime(Duration::from_secs(100)), Duration::from_secs(90));
        assert_eq!(cache_lifetime(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_cached_token_rejected_with_401_is_refreshed_once() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-1", 3600)))
            .up_to_n_times(1)
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body("tok-2", 3600)))
            .expect(1)
            .with_priority(2)
            .mount(&server)
            .await;
        // tok-1 works once, then Atlas rejects it (revoked early).
        Mock::given(method("DELETE"))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(ResponseTemplate::new(204))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(header("authorization", "Bearer tok-1"))
            .respond_with(atlas_error(401, "UNAUTHORIZED", "Token expired."))
            .expect(1)
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(header("authorization", "Bearer tok-2"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let atlas = client(&server, service_account());
        atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        let outcome = atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
    }

    #[tokio::test]
    async fn a_401_on_a_fresh_token_is_not_retried() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .respond_with(atlas_error(401, "UNAUTHORIZED", "Not authorized."))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, service_account())
            .revoke(&jwks_op(), AttemptContext::default())
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
        assert!(
            err.message.contains("clientId/clientSecret") && err.message.contains(SECRET_NAME),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn token_endpoint_rejections_are_unauthorized_and_name_the_secret() {
        for (status, body) in [
            (
                400,
                json!({"error": "invalid_client", "error_description": "bad client"}),
            ),
            (
                401,
                json!({"error": 401, "errorCode": "INVALID_CLIENT", "reason": "Unauthorized", "detail": "Invalid credentials."}),
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/api/oauth/token"))
                .respond_with(ResponseTemplate::new(status).set_body_json(body))
                .expect(1)
                .mount(&server)
                .await;
            let err = client(&server, service_account())
                .check_credentials()
                .await
                .unwrap_err();
            assert_eq!(err.reason, Reason::Unauthorized, "{status}");
            assert_eq!(err.class, ErrorClass::Permanent);
            assert_eq!(err.http_status, Some(status));
            assert!(err.error_code.is_some());
            assert!(
                err.message.contains("client id/secret")
                    && err.message.contains("clientId/clientSecret")
                    && err.message.contains(SECRET_NAME),
                "{}",
                err.message
            );
            assert!(!err.message.contains(CLIENT_SECRET));
        }
    }

    #[tokio::test]
    async fn token_endpoint_5xx_and_bad_answers_are_classified() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"access_token": "tok-x", "token_type": "mac"})),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        let atlas = client(&server, service_account());
        let err = atlas.check_credentials().await.unwrap_err();
        assert_eq!(err.reason, Reason::ProviderUnavailable);
        assert!(err.is_transient());
        let err = atlas.check_credentials().await.unwrap_err();
        assert_eq!(err.reason, Reason::UnexpectedResponse);
        assert!(!err.message.contains("tok-x"), "{}", err.message);
    }

    struct Case {
        status: u16,
        response: ResponseTemplate,
        reason: Reason,
        transient: bool,
        retry_after: Option<Duration>,
        code: Option<&'static str>,
        message_has: &'static [&'static str],
    }

    fn cases(op: &str) -> Vec<Case> {
        let jwks = op == OP_REVOKE_JWKS;
        vec![
            Case {
                status: 400,
                response: atlas_error(400, "VALIDATION_ERROR", "Invalid identity provider id."),
                reason: Reason::BadRequest,
                transient: false,
                retry_after: None,
                code: Some("VALIDATION_ERROR"),
                message_has: &["Invalid identity provider id."],
            },
            Case {
                status: 401,
                response: atlas_error(
                    401,
                    "NOT_ORG_GROUP_CREATOR",
                    "Current user is not authorized to perform this action.",
                ),
                reason: Reason::Unauthorized,
                transient: false,
                retry_after: None,
                code: Some("NOT_ORG_GROUP_CREATOR"),
                message_has: &["rejected", "clientId/clientSecret", SECRET_NAME],
            },
            Case {
                status: 403,
                response: atlas_error(403, "CANNOT_CHANGE_GROUP_NAME", "Forbidden."),
                reason: Reason::Forbidden,
                transient: false,
                retry_after: None,
                code: Some("CANNOT_CHANGE_GROUP_NAME"),
                message_has: if jwks {
                    &["Organization Owner", IDP, "API access list"]
                } else {
                    &["Project Owner", GROUP, "API access list"]
                },
            },
            Case {
                status: 404,
                response: atlas_error(404, "RESOURCE_NOT_FOUND", "Cannot find resource."),
                reason: Reason::TargetNotFound,
                transient: false,
                retry_after: None,
                code: Some("RESOURCE_NOT_FOUND"),
                message_has: if jwks {
                    &[IDP, FID, "identityProviderId"]
                } else {
                    &[GROUP, "groupId"]
                },
            },
            Case {
                status: 406,
                response: atlas_error(406, "INVALID_VERSION_DATE", "The version date is invalid."),
                reason: Reason::UnsupportedApiVersion,
                transient: false,
                retry_after: None,
                code: Some("INVALID_VERSION_DATE"),
                message_has: if jwks {
                    &["2023-11-15", "spec.atlas.apiVersions.revokeJwksFromIdentityProvider"]
                } else {
                    &[
                        "2025-03-12",
                        "spec.atlas.apiVersions.disableCustomerManagedX509",
                        "2023-01-01",
                    ]
                },
            },
            Case {
                status: 429,
                response: atlas_error(
                    429,
                    "RATE_LIMITED_TOKEN_BUCKET",
                    "Rate limit exceeded. Please retry after 55 seconds.",
                )
                .insert_header("retry-after", "7"),
                reason: Reason::RateLimited,
                transient: true,
                retry_after: Some(Duration::from_secs(7)),
                code: Some("RATE_LIMITED_TOKEN_BUCKET"),
                message_has: &["rate-limited"],
            },
            Case {
                status: 429,
                response: atlas_error(
                    429,
                    "RATE_LIMITED_TOKEN_BUCKET",
                    "Rate limit exceeded for api/atlas/v2/orgs. Please retry after 55 seconds. Request capacity 10. Refill rate 5 per 60 seconds.",
                ),
                reason: Reason::RateLimited,
                transient: true,
                retry_after: Some(Duration::from_secs(55)),
                code: Some("RATE_LIMITED_TOKEN_BUCKET"),
                message_has: &["retry after 55 seconds"],
            },
            Case {
                status: 429,
                response: atlas_error(429, "RATE_LIMITED", "Too many requests."),
                reason: Reason::RateLimited,
                transient: true,
                retry_after: None,
                code: Some("RATE_LIMITED"),
                message_has: &[],
            },
            Case {
                status: 500,
                response: atlas_error(500, "UNEXPECTED_ERROR", "Unexpected error."),
                reason: Reason::ProviderUnavailable,
                transient: true,
                retry_after: None,
                code: Some("UNEXPECTED_ERROR"),
                message_has: &["500", "Unexpected error."],
            },
        ]
    }

    #[tokio::test]
    async fn every_documented_error_shape_is_classified() {
        for (op, request_path) in [(jwks_op(), JWKS_PATH), (x509_op(), X509_PATH)] {
            for case in cases(op.name()) {
                let server = MockServer::start().await;
                mount_token(&server, "tok-1", 1).await;
                Mock::given(method("DELETE"))
                    .and(path(request_path))
                    .respond_with(case.response)
                    .mount(&server)
                    .await;
                let err = client(&server, service_account())
                    .revoke(&op, AttemptContext::default())
                    .await
                    .unwrap_err();
                let label = format!("{} {}", op.name(), case.status);
                assert_eq!(err.reason, case.reason, "{label}: {}", err.message);
                assert_eq!(err.is_transient(), case.transient, "{label}");
                assert_eq!(err.retry_after(), case.retry_after, "{label}");
                assert_eq!(err.http_status, Some(case.status), "{label}");
                assert_eq!(err.error_code.as_deref(), case.code, "{label}");
                assert!(err.message.starts_with(op.name()), "{label}: {}", err.message);
                for needle in case.message_has {
                    assert!(
                        err.message.contains(needle),
                        "{label}: {needle:?} not in {}",
                        err.message
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn an_unparseable_error_body_gives_a_short_clean_message() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        let html = format!("<html>{}</html>", "x".repeat(5000));
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(502).set_body_string(html))
            .mount(&server)
            .await;
        let err = client(&server, service_account())
            .revoke(&x509_op(), AttemptContext::default())
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::ProviderUnavailable);
        assert!(err.is_transient());
        assert_eq!(err.http_status, Some(502));
        assert_eq!(err.error_code, None);
        assert!(err.message.contains("502") && err.message.contains("<html>"));
        assert!(err.message.len() < 700, "{} chars", err.message.len());
    }

    #[tokio::test]
    async fn api_versions_override_sends_the_overridden_media_type() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .and(path(X509_PATH))
            .and(header("accept", "application/vnd.atlas.2023-01-01+json"))
            .and(no_authorization)
            .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", CHALLENGE))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(X509_PATH))
            .and(header("accept", "application/vnd.atlas.2023-01-01+json"))
            .and(digest_authorization)
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"customerX509": {}})))
            .expect(1)
            .mount(&server)
            .await;
        let atlas = AtlasClient::new(
            &config(&server, &[(OP_DISABLE_X509, "2023-01-01")]),
            api_key(),
            None,
            &settings(),
        )
        .unwrap();
        let outcome = atlas.revoke(&x509_op(), AttemptContext::default()).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
    }

    #[tokio::test]
    async fn a_406_on_an_override_says_how_to_fix_it() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("DELETE"))
            .and(header("accept", "application/vnd.atlas.2099-01-01+json"))
            .respond_with(atlas_error(406, "INVALID_VERSION_DATE", "Not acceptable."))
            .expect(1)
            .mount(&server)
            .await;
        let atlas = AtlasClient::new(
            &config(&server, &[(OP_REVOKE_JWKS, "2099-01-01")]),
            service_account(),
            None,
            &settings(),
        )
        .unwrap();
        let err = atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap_err();
        assert_eq!(err.reason, Reason::UnsupportedApiVersion);
        assert!(
            err.message.contains("2099-01-01")
                && err
                    .message
                    .contains("spec.atlas.apiVersions.revokeJwksFromIdentityProvider")
                && err.message.contains("remove the override"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_api_versions_are_rejected_at_construction() {
        let settings = settings();
        let mk = |versions: &[(&str, &str)]| AtlasProvider {
            base_url: Some("http://127.0.0.1:9".into()),
            credentials_secret_ref: LocalSecretRef {
                name: SECRET_NAME.into(),
            },
            api_versions: versions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let err = AtlasClient::new(
            &mk(&[("disableCustomerManagedx509", "2023-01-01")]),
            api_key(),
            None,
            &settings,
        )
        .unwrap_err();
        assert_eq!(err.reason, Reason::InvalidProviderConfig);
        assert!(err.message.contains("disableCustomerManagedX509"), "{}", err.message);
        let err = AtlasClient::new(
            &mk(&[(OP_DISABLE_X509, "2023-1-1\r\nX: y")]),
            api_key(),
            None,
            &settings,
        )
        .unwrap_err();
        assert_eq!(err.reason, Reason::InvalidProviderConfig);
        assert!(AtlasClient::new(&mk(&[(OP_GET_USER_SECURITY, "2024-08-05")]), api_key(), None, &settings).is_ok());
    }

    #[test]
    fn a_host_off_the_allow_list_is_refused_before_any_request() {
        let config = AtlasProvider {
            base_url: Some("https://atlas.example.com".into()),
            credentials_secret_ref: LocalSecretRef {
                name: SECRET_NAME.into(),
            },
            api_versions: BTreeMap::new(),
        };
        let err = AtlasClient::new(&config, api_key(), None, &settings()).unwrap_err();
        assert_eq!(err.reason, Reason::HostNotAllowed);
    }

    #[tokio::test]
    async fn secrets_never_appear_in_errors_or_debug_output() {
        for (creds, own_secret) in [(api_key(), PRIVATE_KEY), (service_account(), CLIENT_SECRET)] {
            let server = MockServer::start().await;
            let token_requests = u64::from(own_secret == CLIENT_SECRET);
            mount_token(&server, "tok-SECRET-ACCESS-TOKEN", token_requests).await;
            // An answer that echoes the credential back must not carry it into the message.
            let echo = format!("Invalid key {own_secret}");
            Mock::given(method("DELETE"))
                .respond_with(atlas_error(403, "FORBIDDEN", &echo).insert_header("www-authenticate", CHALLENGE))
                .mount(&server)
                .await;
            let atlas = client(&server, creds);
            let mut texts = vec![format!("{atlas:?}")];
            for op in [jwks_op(), x509_op()] {
                let err = atlas.revoke(&op, AttemptContext::default()).await.unwrap_err();
                texts.push(err.to_string());
                texts.push(format!("{err:?}"));
            }
            texts.push(format!("{atlas:?}"));
            for text in &texts {
                for secret in [PRIVATE_KEY, CLIENT_SECRET, "tok-SECRET-ACCESS-TOKEN"] {
                    assert!(!text.contains(secret), "{secret} leaked in {text}");
                }
            }
        }
        // A rejected token request echoing the secret.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/oauth/token"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"error": "invalid_client", "error_description": format!("secret {CLIENT_SECRET} is wrong")}),
            ))
            .mount(&server)
            .await;
        let err = client(&server, service_account())
            .check_credentials()
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(CLIENT_SECRET));
    }

    #[tokio::test]
    async fn dry_run_jwks_reads_the_identity_provider_and_revokes_nothing() {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("GET"))
            .and(path(IDP_PATH))
            .and(header("accept", JWKS_MEDIA))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": IDP, "displayName": "Corp Okta", "protocol": "OIDC",
                "issuerUri": "https://corp.okta.com", "idpType": "WORKFORCE",
            })))
            .expect(1)
            .mount(&server)
            .await;
        let outcome = client(&server, service_account()).dry_run(&jwks_op()).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::DryRun);
        assert!(
            outcome
                .message
                .starts_with("would revoke the JWKS of identity provider")
                && outcome.message.contains("Corp Okta")
                && outcome.message.contains("nothing was revoked"),
            "{}",
            outcome.message
        );
        let requests = server.received_requests().await.unwrap();
        assert!(requests.iter().all(|r| r.method.as_str() != "DELETE"));

        // A missing IdP is TargetNotFound in a dry run too.
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", 1).await;
        Mock::given(method("GET"))
            .respond_with(atlas_error(404, "RESOURCE_NOT_FOUND", "Cannot find resource."))
            .mount(&server)
            .await;
        let err = client(&server, service_account())
            .dry_run(&jwks_op())
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);
        assert!(err.message.starts_with(OP_GET_IDENTITY_PROVIDER));
    }

    #[tokio::test]
    async fn dry_run_x509_reports_whether_a_customer_ca_is_set() {
        for (body, expected) in [
            (
                json!({"customerX509": {"cas": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}),
                "would disable customer-managed X.509",
            ),
            (json!({"customerX509": {}}), "is already disabled"),
            (json!({"ldap": {}}), "is already disabled"),
        ] {
            let server = MockServer::start().await;
            mount_token(&server, "tok-1", 1).await;
            Mock::given(method("GET"))
                .and(path(USER_SECURITY_PATH))
                .and(header("accept", "application/vnd.atlas.2023-01-01+json"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .expect(1)
                .mount(&server)
                .await;
            let outcome = client(&server, service_account()).dry_run(&x509_op()).await.unwrap();
            assert_eq!(outcome.kind, OutcomeKind::DryRun);
            assert!(outcome.message.contains(expected), "{}", outcome.message);
            assert!(outcome.message.contains("nothing was revoked"));
        }
    }

    #[tokio::test]
    async fn check_credentials_with_an_api_key_reads_one_organization() {
        for (status, ok) in [(200, true), (403, true), (401, false)] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/api/atlas/v2/orgs"))
                .and(query_param("itemsPerPage", "1"))
                .and(no_authorization)
                .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", CHALLENGE))
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("GET"))
                .and(path("/api/atlas/v2/orgs"))
                .and(query_param("itemsPerPage", "1"))
                .and(header("accept", "application/vnd.atlas.2023-01-01+json"))
                .and(digest_authorization)
                .respond_with(if status == 200 {
                    ResponseTemplate::new(200).set_body_json(json!({"results": [], "totalCount": 0}))
                } else {
                    atlas_error(status, "X", "no").insert_header("www-authenticate", CHALLENGE)
                })
                .expect(1)
                .mount(&server)
                .await;
            let result = client(&server, api_key()).check_credentials().await;
            if ok {
                assert_eq!(result.unwrap(), "digest", "{status}");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err.reason, Reason::Unauthorized);
                assert!(err.message.contains("publicKey/privateKey"));
            }
            // The digest uri covers the query string.
            let requests = server.received_requests().await.unwrap();
            let f = digest_fields(requests[1].headers.get("authorization").unwrap().to_str().unwrap());
            assert_eq!(f["uri"], "/api/atlas/v2/orgs?itemsPerPage=1");
        }
    }

    #[tokio::test]
    async fn other_providers_operations_are_refused_without_a_request() {
        let server = MockServer::start().await;
        let atlas = client(&server, api_key());
        let op = Operation::OnezoneRevokeUserTemporaryTokens { user_id: "u1".into() };
        let err = atlas.revoke(&op, AttemptContext::default()).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.reason, Reason::UnexpectedResponse);
        assert!(err.message.contains("Atlas does not support"), "{}", err.message);
        assert!(atlas.dry_run(&op).await.is_err());
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[test]
    fn retry_after_is_read_from_the_atlas_detail() {
        assert_eq!(
            retry_after_in_text("Rate limit exceeded. Please retry after 55 seconds. Request capacity 10."),
            Some(Duration::from_secs(55))
        );
        assert_eq!(
            retry_after_in_text("Retry after 1 second"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after_in_text("retry after a while"), None);
        assert_eq!(retry_after_in_text("Too many requests."), None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip(&"é".repeat(400), 300).chars().count(), 301);
    }
}
