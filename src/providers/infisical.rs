//! Provider client: Infisical (machine identities).
//!
//! Contract: `shared/specs/infisical.yaml`. Every route is under `/api/v1/auth`. Authenticated
//! calls send `Authorization: Bearer <token>`; with universal-auth credentials the token comes from
//! `POST /api/v1/auth/universal-auth/login` and is cached until shortly before it expires, so many
//! revocations cause one login. `POST /api/v1/auth/token/revoke` needs no Authorization header and
//! gets none: the token to revoke is its own proof.
//!
//! Errors arrive as `{reqId, statusCode, message, error, details?}` (`message` is an array of zod
//! issues on 422). `reqId` becomes the request id and `error` the error code.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::api::{INFISICAL_DEFAULT_URL, InfisicalAuthMethod, InfisicalProvider, ProviderType};
use crate::credentials::InfisicalCredentials;
use crate::providers::http::retry_after_header;
use crate::providers::http::{HttpSettings, ProviderHttp, describe};
use crate::providers::{
    AttemptContext, Operation, Outcome, OutcomeKind, Provider, ProviderError, Reason, clip, redact,
};

/// How long a login token is cached when Infisical states no expiry (`expiresIn` 0 or missing).
const NO_EXPIRY_CACHE: Duration = Duration::from_secs(3600);
/// Longest provider text copied into a message.
const MAX_PROVIDER_TEXT: usize = 300;
/// Operation id of the login, for metrics.
const LOGIN: &str = "loginWithUniversalAuth";
/// What a 403 on an auth-method route means.
const EDIT_IDENTITY_HINT: &str = "the credentials' machine identity needs permission to edit \
Identities in the organization (an organization role with Identities: Edit, or Edit on the \
identity in its project), and may not act on an identity with a more privileged role";
/// What a 403 on the client-secret routes means.
const DELETE_CLIENT_SECRET_HINT: &str = "the credentials' machine identity needs permission to \
revoke the identity's client secrets (an organization role with Identities: Delete, or Delete Token \
on the identity in its project), and may not act on an identity with a more privileged role";

/// Client for one Infisical provider object.
pub struct InfisicalClient {
    http: ProviderHttp,
    auth: Auth,
}

enum Auth {
    /// Log in with client id and secret; the token is cached.
    UniversalAuth {
        client_id: String,
        client_secret: SecretString,
        cache: Mutex<Option<CachedToken>>,
    },
    /// Use the given token as it is.
    AccessToken(SecretString),
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// A bearer token to send, and whether it came from the cache (and so may be stale).
struct Bearer {
    token: SecretString,
    from_cache: bool,
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

/// How long a login token may be used: until `expiresIn` minus 60 s or 10 %, whichever is smaller.
fn cache_lifetime(expires_in: Option<u64>) -> Duration {
    match expires_in {
        Some(secs) if secs > 0 => {
            let total = Duration::from_secs(secs);
            total - (total / 10).min(Duration::from_secs(60))
        }
        _ => NO_EXPIRY_CACHE,
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
        let auth = match creds {
            InfisicalCredentials::UniversalAuth {
                client_id,
                client_secret,
            } => Auth::UniversalAuth {
                client_id,
                client_secret,
                cache: Mutex::new(None),
            },
            InfisicalCredentials::AccessToken(token) => Auth::AccessToken(token),
        };
        Ok(InfisicalClient { http, auth })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["api", "v1", "auth"];
        all.extend_from_slice(segments);
        self.http.url(&all)
    }

    /// The credential values, for scrubbing provider text.
    fn credential_secrets(&self) -> Vec<&SecretString> {
        match &self.auth {
            Auth::UniversalAuth { client_secret, .. } => vec![client_secret],
            Auth::AccessToken(token) => vec![token],
        }
    }

    fn unauthorized_hint(&self) -> String {
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
    async fn bearer(&self) -> Result<Bearer, ProviderError> {
        match &self.auth {
            Auth::AccessToken(token) => Ok(Bearer {
                token: token.clone(),
                from_cache: false,
            }),
            Auth::UniversalAuth {
                client_id,
                client_secret,
                cache,
            } => {
                // The lock is held across the login, so concurrent callers wait for one login.
                let mut cached = cache.lock().await;
                if let Some(c) = cached.as_ref()
                    && Instant::now() < c.refresh_at
                {
                    return Ok(Bearer {
                        token: c.token.clone(),
                        from_cache: true,
                    });
                }
                let fresh = self.login(client_id, client_secret).await?;
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(Bearer {
                    token,
                    from_cache: false,
                })
            }
        }
    }

    /// Drop the cached token if it is still `used` (another caller may have replaced it already).
    async fn forget(&self, used: &SecretString) {
        if let Auth::UniversalAuth { cache, .. } = &self.auth {
            let mut cached = cache.lock().await;
            if cached
                .as_ref()
                .is_some_and(|c| c.token.expose_secret() == used.expose_secret())
            {
                *cached = None;
            }
        }
    }

    async fn login(&self, client_id: &str, client_secret: &SecretString) -> Result<CachedToken, ProviderError> {
        let request = self
            .http
            .client()
            .post(self.url(&["universal-auth", "login"]))
            .json(&json!({
                "clientId": client_id,
                "clientSecret": client_secret.expose_secret(),
            }));
        let started = Instant::now();
        let answer = Answer::read(self.http.send(LOGIN, request).await?, LOGIN).await?;
        if answer.is_success() {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct LoginResponse {
                access_token: String,
                expires_in: Option<u64>,
            }
            return match serde_json::from_str::<LoginResponse>(&answer.body) {
                Ok(login) if !login.access_token.is_empty() => Ok(CachedToken {
                    token: SecretString::from(login.access_token),
                    refresh_at: started + cache_lifetime(login.expires_in),
                }),
                _ => Err(ProviderError::permanent(
                    Reason::UnexpectedResponse,
                    format!(
                        "{LOGIN}: Infisical answered HTTP {} without an accessToken",
                        answer.status
                    ),
                )
                .with_http(answer.status, answer.header_request_id.clone(), None)),
            };
        }
        let failure = Failure::new(&answer, &self.credential_secrets());
        let head = format!(
            "{LOGIN}: universal-auth login with clientId {client_id} failed: Infisical answered {}",
            failure.summary()
        );
        Err(match answer.status {
            400 | 401 | 403 | 422 => failure.error(ProviderError::permanent(
                Reason::Unauthorized,
                format!(
                    "{head}; Infisical rejected the machine identity credentials; check \
                     clientId/clientSecret in the Secret (and the identity's trusted IPs)"
                ),
            )),
            404 => failure.error(ProviderError::permanent(
                Reason::InvalidProviderConfig,
                format!(
                    "{head}; there is no universal-auth login route at this base URL; check \
                     baseUrl (the Infisical instance root, e.g. {INFISICAL_DEFAULT_URL})"
                ),
            )),
            _ => failure.generic(&head, &self.unauthorized_hint(), EDIT_IDENTITY_HINT),
        })
    }

    /// Send an authenticated request. With a cached login token that Infisical rejects (401, or
    /// 403 `TokenError` for an expired JWT), drop the token, log in again and retry once.
    async fn call_authed<F>(&self, operation: &str, build: F) -> Result<Answer, ProviderError>
    where
        F: Fn(&str) -> RequestBuilder + Send + Sync,
    {
        let bearer = self.bearer().await?;
        let response = self.http.send(operation, build(bearer.token.expose_secret())).await?;
        let mut answer = Answer::read(response, operation).await?;
        if bearer.from_cache && answer.token_rejected() {
            tracing::debug!(
                operation,
                status = answer.status,
                "Infisical rejected the cached access token; logging in again"
            );
            self.forget(&bearer.token).await;
            let fresh = self.bearer().await?;
            let response = self.http.send(operation, build(fresh.token.expose_secret())).await?;
            answer = Answer::read(response, operation).await?;
            answer.bearer = Some(fresh.token);
        } else {
            answer.bearer = Some(bearer.token);
        }
        Ok(answer)
    }

    fn failure(&self, answer: &Answer, extra: Option<&SecretString>) -> Failure {
        let mut secrets = self.credential_secrets();
        secrets.extend(answer.bearer.as_ref());
        secrets.extend(extra);
        Failure::new(answer, &secrets)
    }

    async fn delete_auth_method(
        &self,
        op: &Operation,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Outcome, ProviderError> {
        let url = self.url(&[method.path_segment(), "identities", identity_id]);
        let answer = self
            .call_authed(op.name(), |token| {
                self.http.client().delete(url.clone()).bearer_auth(token)
            })
            .await?;
        let seg = method.path_segment();
        if answer.is_success() {
            return Ok(answer.outcome(
                OutcomeKind::Revoked,
                format!("removed {seg} from identity {identity_id}"),
            ));
        }
        let failure = self.failure(&answer, None);
        if failure.does_not_have() {
            return Ok(failure.outcome(
                OutcomeKind::AlreadyRevoked,
                format!(
                    "identity {identity_id} has no {} auth (Infisical answered {}): it was \
                     already removed, so this call changed nothing",
                    method.short_name(),
                    failure.summary()
                ),
            ));
        }
        let what = format!("{}: {}", op.name(), op.target());
        Err(match answer.status {
            404 if failure.route_missing() => failure.route_missing_error(&what),
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} ({}); check identityId; \
                     nothing was changed",
                    failure.summary()
                ),
            )),
            _ => failure.generic(
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                EDIT_IDENTITY_HINT,
            ),
        })
    }

    async fn revoke_token(
        &self,
        op: &Operation,
        token: &SecretString,
        ctx: AttemptContext,
    ) -> Result<Outcome, ProviderError> {
        // No Authorization header: the route has no verifyAuth, and the token in the body proves
        // itself. Our own credentials are not needed, so a broken login cannot block this.
        let request = self
            .http
            .client()
            .post(self.url(&["token", "revoke"]))
            .json(&json!({ "accessToken": token.expose_secret() }));
        let name = op.name();
        let answer = Answer::read(self.http.send(name, request).await?, name).await?;
        let target = op.target();
        if answer.is_success() {
            return Ok(answer.outcome(OutcomeKind::Revoked, format!("revoked {target}")));
        }
        let failure = self.failure(&answer, Some(token));
        let what = format!("{name}: {target}: Infisical answered {}", failure.summary());
        let text = failure.text.to_ascii_lowercase();
        // What Infisical's revokeAccessToken does (identity-access-token-service.ts): it verifies
        // the JWT (a failure is 403 `TokenError`: expired, malformed, bad signature or algorithm),
        // answers 401 "Only identity access tokens can be revoked" for other token types, and 401
        // "No identity access token found" when no unrevoked row exists, i.e. the token was
        // already revoked (by us or someone else) or deleted (TTL or use limit reached).
        //
        // A token that is revoked or expired cannot be told apart from a wrong value copied from
        // elsewhere with certainty, and a security tool must not report success for a mistake.
        // So "revoked/not found" and "expired" count as AlreadyRevoked only when an earlier
        // attempt of this revocation may have reached Infisical (then the likely reason is that
        // our own call revoked it and its answer was lost); on a first attempt they fail
        // permanently. Other-type, malformed and foreign tokens fail on every attempt: no call of
        // ours can have caused that.
        let foreign = text.contains("only identity access tokens")
            || text.contains("malformed")
            || text.contains("signature")
            || text.contains("algorithm");
        let gone = !foreign
            && (answer.status == 401 || (answer.status == 403 && failure.is_token_error() && text.contains("expired")));
        if gone {
            if ctx.earlier_attempt {
                return Ok(failure.outcome(
                    OutcomeKind::AlreadyRevoked,
                    format!(
                        "Infisical no longer accepts {target} ({}); an earlier attempt of this \
                         revocation may have revoked it, so this call changed nothing",
                        failure.summary()
                    ),
                ));
            }
            return Err(failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}; Infisical has no active token with this value: it was already \
                     revoked or has expired, or it is not from this Infisical instance; \
                     nothing was changed. No earlier attempt reached Infisical, so this is not \
                     reported as already revoked; check the token in the Secret and baseUrl"
                ),
            )));
        }
        if foreign {
            return Err(failure.error(ProviderError::permanent(
                Reason::BadRequest,
                format!(
                    "{what}; Infisical does not accept this value as one of its machine-identity \
                     access tokens; check the token in the Secret and that baseUrl is the \
                     instance that issued it"
                ),
            )));
        }
        if failure.route_missing() {
            return Err(failure.route_missing_error(&format!("{name}: {target}")));
        }
        Err(failure.generic(&what, &self.unauthorized_hint(), ""))
    }

    async fn revoke_client_secret(
        &self,
        op: &Operation,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Outcome, ProviderError> {
        let url = self.url(&[
            "universal-auth",
            "identities",
            identity_id,
            "client-secrets",
            client_secret_id,
            "revoke",
        ]);
        let answer = self
            .call_authed(op.name(), |token| {
                self.http.client().post(url.clone()).bearer_auth(token)
            })
            .await?;
        let what = format!("{}: {}", op.name(), op.target());
        if answer.is_success() {
            return match client_secret_revoked(&answer.body) {
                Some(true) => Ok(answer.outcome(
                    OutcomeKind::Revoked,
                    format!("revoked client secret {client_secret_id} of identity {identity_id}"),
                )),
                _ => Err(ProviderError::permanent(
                    Reason::UnexpectedResponse,
                    format!(
                        "{what}: Infisical answered HTTP {} but did not report the client secret \
                         as revoked (clientSecretData.isClientSecretRevoked is not true)",
                        answer.status
                    ),
                )
                .with_http(answer.status, answer.header_request_id.clone(), None)),
            };
        }
        let failure = self.failure(&answer, None);
        if failure.does_not_have() {
            // Removing universal auth deletes all of the identity's client secrets.
            return Ok(failure.outcome(
                OutcomeKind::AlreadyRevoked,
                format!(
                    "identity {identity_id} has no universal auth any more (Infisical answered \
                     {}), so client secret {client_secret_id} no longer exists; this call \
                     changed nothing",
                    failure.summary()
                ),
            ));
        }
        Err(match answer.status {
            404 if failure.route_missing() => failure.route_missing_error(&what),
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} with client secret \
                     {client_secret_id} ({}; Infisical answers so for an unknown identity and an \
                     unknown client secret alike); check identityId and clientSecretId; nothing \
                     was changed",
                    failure.summary()
                ),
            )),
            _ => failure.generic(
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                DELETE_CLIENT_SECRET_HINT,
            ),
        })
    }

    async fn dry_run_auth_method(
        &self,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Outcome, ProviderError> {
        const NAME: &str = "getAuthMethod";
        let url = self.url(&[method.path_segment(), "identities", identity_id]);
        let answer = self
            .call_authed(NAME, |token| self.http.client().get(url.clone()).bearer_auth(token))
            .await?;
        let seg = method.path_segment();
        if answer.is_success() {
            return Ok(answer.outcome(
                OutcomeKind::DryRun,
                format!("would delete {seg} of identity {identity_id}; it is attached now"),
            ));
        }
        let failure = self.failure(&answer, None);
        if failure.does_not_have() {
            return Ok(failure.outcome(
                OutcomeKind::DryRun,
                format!(
                    "identity {identity_id} has no {} auth ({}): it is already removed, so a \
                     revocation would change nothing",
                    method.short_name(),
                    failure.summary()
                ),
            ));
        }
        let what = format!("dry run of deleting {seg} of identity {identity_id}");
        Err(match answer.status {
            404 if failure.route_missing() => failure.route_missing_error(&what),
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} ({}); check identityId",
                    failure.summary()
                ),
            )),
            _ => failure.generic(
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                "the credentials' machine identity needs permission to read Identities in the \
                 organization (and to edit them for the revocation itself)",
            ),
        })
    }

    async fn dry_run_client_secret(&self, identity_id: &str, client_secret_id: &str) -> Result<Outcome, ProviderError> {
        const NAME: &str = "getUniversalAuthClientSecret";
        let url = self.url(&[
            "universal-auth",
            "identities",
            identity_id,
            "client-secrets",
            client_secret_id,
        ]);
        let answer = self
            .call_authed(NAME, |token| self.http.client().get(url.clone()).bearer_auth(token))
            .await?;
        let target = format!("client secret {client_secret_id} of identity {identity_id}");
        if answer.is_success() {
            let message = match client_secret_revoked(&answer.body) {
                Some(true) => {
                    format!("{target} is already revoked, so a revocation would change nothing")
                }
                _ => format!("would revoke {target}"),
            };
            return Ok(answer.outcome(OutcomeKind::DryRun, message));
        }
        let failure = self.failure(&answer, None);
        if failure.does_not_have() {
            return Ok(failure.outcome(
                OutcomeKind::DryRun,
                format!(
                    "identity {identity_id} has no universal auth any more ({}), so {target} no \
                     longer exists; a revocation would change nothing",
                    failure.summary()
                ),
            ));
        }
        let what = format!("dry run of revoking {target}");
        Err(match answer.status {
            404 if failure.route_missing() => failure.route_missing_error(&what),
            404 => failure.error(ProviderError::permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}: Infisical found no identity {identity_id} with client secret \
                     {client_secret_id} ({}); check identityId and clientSecretId",
                    failure.summary()
                ),
            )),
            _ => failure.generic(
                &format!("{what}: Infisical answered {}", failure.summary()),
                &self.unauthorized_hint(),
                "the credentials' machine identity needs permission to read the identity's \
                 client secrets (Identities: Read and Get Token in the organization)",
            ),
        })
    }
}

fn not_infisical(op: &Operation) -> ProviderError {
    ProviderError::permanent(
        Reason::ProviderMismatch,
        format!(
            "{} is a {} operation; the provider referenced is Infisical",
            op.name(),
            op.provider_type()
        ),
    )
}

/// `clientSecretData.isClientSecretRevoked` of a client-secret answer.
fn client_secret_revoked(body: &str) -> Option<bool> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("clientSecretData")?
        .get("isClientSecretRevoked")?
        .as_bool()
}

#[async_trait]
impl Provider for InfisicalClient {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Infisical
    }

    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        match op {
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                self.delete_auth_method(op, identity_id, *method).await
            }
            Operation::InfisicalRevokeToken { token, .. } => self.revoke_token(op, token, ctx).await,
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => self.revoke_client_secret(op, identity_id, client_secret_id).await,
            other => Err(not_infisical(other)),
        }
    }

    async fn dry_run(&self, op: &Operation) -> Result<Outcome, ProviderError> {
        match op {
            Operation::InfisicalDeleteAuthMethod { identity_id, method } => {
                self.dry_run_auth_method(identity_id, *method).await
            }
            Operation::InfisicalRevokeClientSecret {
                identity_id,
                client_secret_id,
            } => self.dry_run_client_secret(identity_id, client_secret_id).await,
            // Revoking a token by value needs no credentials of ours, so there is nothing to
            // check there; and the only read-only check of a token is to use it, which we don't.
            Operation::InfisicalRevokeToken { .. } => Ok(Outcome {
                kind: OutcomeKind::DryRun,
                http_status: None,
                request_id: None,
                message: format!(
                    "would revoke {}; a token cannot be checked without using it, so no call was made",
                    op.target()
                ),
            }),
            other => Err(not_infisical(other)),
        }
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        match &self.auth {
            Auth::AccessToken(_) => Ok("accessToken"),
            Auth::UniversalAuth {
                client_id,
                client_secret,
                cache,
            } => {
                // A live check: always log in, and keep the new token for the next calls.
                let mut cached = cache.lock().await;
                let fresh = self.login(client_id, client_secret).await?;
                *cached = Some(fresh);
                Ok("universalAuth")
            }
        }
    }
}

/// An HTTP answer, read completely.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    header_request_id: Option<String>,
    body: String,
    /// The bearer token sent, to scrub it from provider text.
    bearer: Option<SecretString>,
}

impl Answer {
    async fn read(response: Response, operation: &str) -> Result<Self, ProviderError> {
        let status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        let header_request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match response.text().await {
            Ok(body) => body,
            // The status decides a success; its body is only a detail.
            Err(_) if (200..300).contains(&status) => String::new(),
            Err(e) => {
                return Err(ProviderError::transient(
                    Reason::NetworkError,
                    format!(
                        "{operation}: reading Infisical's HTTP {status} answer failed ({})",
                        describe(e)
                    ),
                    None,
                ));
            }
        };
        Ok(Answer {
            status,
            retry_after,
            header_request_id,
            body,
            bearer: None,
        })
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Infisical did not accept the bearer token itself (unknown, revoked or expired).
    fn token_rejected(&self) -> bool {
        match self.status {
            401 => true,
            403 => {
                serde_json::from_str::<ErrorBody>(&self.body).is_ok_and(|b| b.error.as_deref() == Some("TokenError"))
            }
            _ => false,
        }
    }

    fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        Outcome {
            kind,
            http_status: Some(self.status),
            request_id: self.header_request_id.clone(),
            message,
        }
    }
}

/// Infisical's error body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    req_id: Option<String>,
    message: Option<Value>,
    error: Option<String>,
}

/// A failed answer, parsed and scrubbed of secret values.
struct Failure {
    status: u16,
    request_id: Option<String>,
    error_code: Option<String>,
    /// The provider's message (redacted and clipped), empty when it sent none.
    text: String,
    /// Whether the body was Infisical's error JSON.
    parsed: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(answer: &Answer, secrets: &[&SecretString]) -> Self {
        let body = serde_json::from_str::<ErrorBody>(&answer.body).ok();
        let parsed = body.is_some();
        let (req_id, message, error) = match body {
            Some(b) => (b.req_id, b.message, b.error),
            None => (None, None, None),
        };
        let text = message.as_ref().map(message_text).unwrap_or_default();
        Failure {
            status: answer.status,
            request_id: req_id.or_else(|| answer.header_request_id.clone()),
            error_code: error.map(|e| clip(&redact(&e, secrets), 64)),
            text: clip(&redact(&text, secrets), MAX_PROVIDER_TEXT),
            parsed,
            retry_after: answer.retry_after,
        }
    }

    /// `HTTP 400 BadRequest: "…"`.
    fn summary(&self) -> String {
        let mut s = format!("HTTP {}", self.status);
        if let Some(code) = &self.error_code {
            s.push(' ');
            s.push_str(code);
        }
        if !self.text.is_empty() {
            s.push_str(&format!(": {:?}", self.text));
        } else if !self.parsed {
            s.push_str(" (not Infisical's error JSON; check baseUrl)");
        }
        s
    }

    /// 400 "The identity does not have <method> auth": the method is already gone.
    fn does_not_have(&self) -> bool {
        self.status == 400 && self.text.to_ascii_lowercase().contains("does not have")
    }

    /// Fastify's own 404 for a route this Infisical instance does not have (`error: "Not Found"`,
    /// `message: "Route DELETE:/… not found"`), as opposed to Infisical's `NotFound` for an id.
    fn route_missing(&self) -> bool {
        self.status == 404 && (self.error_code.as_deref() == Some("Not Found") || self.text.starts_with("Route "))
    }

    fn route_missing_error(&self, what: &str) -> ProviderError {
        self.error(ProviderError::permanent(
            Reason::BadRequest,
            format!(
                "{what}: Infisical answered {}: this Infisical instance has no such route (it may \
                 not support this auth method or operation; the oci-auth, alicloud-auth and \
                 tls-cert-auth routes are unverified), or baseUrl is not the instance root; \
                 nothing was changed",
                self.summary()
            ),
        ))
    }

    fn is_token_error(&self) -> bool {
        self.error_code.as_deref() == Some("TokenError")
    }

    fn error(&self, err: ProviderError) -> ProviderError {
        err.with_http(self.status, self.request_id.clone(), self.error_code.clone())
    }

    fn outcome(&self, kind: OutcomeKind, message: String) -> Outcome {
        Outcome {
            kind,
            http_status: Some(self.status),
            request_id: self.request_id.clone(),
            message,
        }
    }

    /// The provider-wide rules: 429 and 5xx transient, 401 Unauthorized, 403 Forbidden (or
    /// Unauthorized for a `TokenError`), other 4xx permanent.
    fn generic(&self, head: &str, unauthorized_hint: &str, forbidden_hint: &str) -> ProviderError {
        let err = match self.status {
            429 => ProviderError::transient(
                Reason::RateLimited,
                format!("{head}; Infisical's rate limit was hit, retrying later"),
                self.retry_after.or_else(|| try_again_in(&self.text)),
            ),
            500..=599 => ProviderError::transient(
                Reason::ProviderUnavailable,
                format!("{head}; Infisical is unavailable, retrying later"),
                self.retry_after,
            ),
            401 => ProviderError::permanent(Reason::Unauthorized, format!("{head}; {unauthorized_hint}")),
            403 if self.is_token_error() => {
                ProviderError::permanent(Reason::Unauthorized, format!("{head}; {unauthorized_hint}"))
            }
            403 if !forbidden_hint.is_empty() => {
                ProviderError::permanent(Reason::Forbidden, format!("{head}; {forbidden_hint}"))
            }
            400 | 422 => {
                ProviderError::permanent(Reason::BadRequest, format!("{head}; Infisical rejected the request"))
            }
            status => ProviderError::from_status(status, None, head.to_string()),
        };
        self.error(err)
    }
}

/// Infisical's message: a string, or on 422 an array of zod issues (`path: message; …`).
fn message_text(message: &Value) -> String {
    match message {
        Value::String(s) => s.clone(),
        Value::Array(issues) => issues
            .iter()
            .map(|issue| {
                let text = issue
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| issue.to_string());
                let path = issue
                    .get("path")
                    .and_then(Value::as_array)
                    .map(|p| {
                        p.iter()
                            .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                if path.is_empty() {
                    text
                } else {
                    format!("{path}: {text}")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// "Rate limit exceeded. Please try again in 42 seconds" → 42 s.
fn try_again_in(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let rest = &lower[lower.find("try again in")? + "try again in".len()..];
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = rest.trim_start()[digits.len()..].trim_start();
    if unit.starts_with("minute") {
        Some(Duration::from_secs(n.saturating_mul(60)))
    } else if unit.starts_with("ms") || unit.starts_with("millisecond") {
        Some(Duration::from_millis(n))
    } else {
        Some(Duration::from_secs(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LocalSecretRef;
    use crate::egress::AllowList;
    use crate::providers::{ErrorClass, fingerprint};
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const CLIENT_ID: &str = "client-id-1";
    const CLIENT_SECRET: &str = "cs-SUPERSECRET-0123456789";
    const LOGIN_TOKEN: &str = "login-token-SECRET-abcdef";
    const ACCESS_TOKEN: &str = "at-GIVEN-SECRET-987654";
    const VICTIM: &str = "victim-token-SECRET-555555";
    const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
    const LOGIN_PATH: &str = "/api/v1/auth/universal-auth/login";

    fn settings() -> HttpSettings {
        HttpSettings {
            allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).unwrap()),
            timeout: Duration::from_secs(10),
            requests_per_second: NonZeroU32::new(10_000).unwrap(),
        }
    }

    fn config(server: &MockServer) -> InfisicalProvider {
        InfisicalProvider {
            base_url: Some(server.uri()),
            credentials_secret_ref: LocalSecretRef {
                name: "infisical-creds".into(),
            },
        }
    }

    fn ua() -> InfisicalCredentials {
        InfisicalCredentials::UniversalAuth {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        }
    }

    fn ua_client(server: &MockServer) -> InfisicalClient {
        InfisicalClient::new(&config(server), ua(), None, &settings()).unwrap()
    }

    fn at_client(server: &MockServer) -> InfisicalClient {
        InfisicalClient::new(
            &config(server),
            InfisicalCredentials::AccessToken(ACCESS_TOKEN.into()),
            None,
            &settings(),
        )
        .unwrap()
    }

    fn login_ok(expires_in: u64) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "accessToken": LOGIN_TOKEN,
            "expiresIn": expires_in,
            "accessTokenMaxTTL": expires_in,
            "tokenType": "Bearer",
        }))
    }

    async fn mount_login(server: &MockServer, times: u64) {
        Mock::given(method("POST"))
            .and(path(LOGIN_PATH))
            .respond_with(login_ok(7200))
            .expect(times)
            .mount(server)
            .await;
    }

    fn err_body(status: u16, error: &str, message: Value) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "reqId": format!("req-{status}"),
            "statusCode": status,
            "message": message,
            "error": error,
        }))
    }

    fn delete_op(m: InfisicalAuthMethod) -> Operation {
        Operation::InfisicalDeleteAuthMethod {
            identity_id: IDENTITY.into(),
            method: m,
        }
    }

    fn token_op() -> Operation {
        Operation::InfisicalRevokeToken {
            token: VICTIM.into(),
            token_auth: false,
        }
    }

    fn secret_op() -> Operation {
        Operation::InfisicalRevokeClientSecret {
            identity_id: IDENTITY.into(),
            client_secret_id: "cs-id-1".into(),
        }
    }

    const FIRST: AttemptContext = AttemptContext { earlier_attempt: false };
    const RETRY: AttemptContext = AttemptContext { earlier_attempt: true };

    fn assert_no_secrets(text: &str) {
        for secret in [CLIENT_SECRET, LOGIN_TOKEN, ACCESS_TOKEN, VICTIM] {
            assert!(!text.contains(secret), "secret {secret} leaked in: {text}");
        }
    }

    #[test]
    fn cache_lifetime_subtracts_the_smaller_of_60s_and_10_percent() {
        assert_eq!(cache_lifetime(Some(7200)), Duration::from_secs(7140));
        assert_eq!(cache_lifetime(Some(300)), Duration::from_secs(270));
        assert_eq!(cache_lifetime(Some(600)), Duration::from_secs(540));
        assert_eq!(cache_lifetime(Some(0)), NO_EXPIRY_CACHE);
        assert_eq!(cache_lifetime(None), NO_EXPIRY_CACHE);
    }

    #[test]
    fn try_again_in_reads_the_rate_limit_message() {
        assert_eq!(
            try_again_in("Rate limit exceeded. Please try again in 42 seconds"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(try_again_in("try again in 2 minutes"), Some(Duration::from_secs(120)));
        assert_eq!(try_again_in("Rate limit exceeded"), None);
    }

    #[tokio::test]
    async fn delete_auth_method_sends_the_exact_request_for_all_12_methods() {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        for m in InfisicalAuthMethod::ALL {
            Mock::given(method("DELETE"))
                .and(path(format!("/api/v1/auth/{}/identities/{IDENTITY}", m.path_segment())))
                .and(header("authorization", format!("Bearer {LOGIN_TOKEN}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"x": {}})))
                .expect(1)
                .mount(&server)
                .await;
        }
        let client = ua_client(&server);
        for m in InfisicalAuthMethod::ALL {
            let out = client.revoke(&delete_op(m), FIRST).await.unwrap();
            assert_eq!(out.kind, OutcomeKind::Revoked, "{m:?}");
            assert_eq!(out.http_status, Some(200));
            assert!(out.message.contains(m.path_segment()) && out.message.contains(IDENTITY));
        }
        let requests = server.received_requests().await.unwrap();
        let paths: Vec<String> = requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .map(|r| r.url.path().to_string())
            .collect();
        let expected: Vec<String> = [
            "universal-auth",
            "token-auth",
            "kubernetes-auth",
            "gcp-auth",
            "aws-auth",
            "azure-auth",
            "oidc-auth",
            "jwt-auth",
            "ldap-auth",
            "oci-auth",
            "alicloud-auth",
            "tls-cert-auth",
        ]
        .iter()
        .map(|s| format!("/api/v1/auth/{s}/identities/{IDENTITY}"))
        .collect();
        assert_eq!(paths, expected);
        for r in requests.iter().filter(|r| r.method.as_str() == "DELETE") {
            assert!(r.body.is_empty(), "DELETE has no body");
        }
    }

    #[tokio::test]
    async fn login_posts_client_id_and_secret_as_json_without_authorization() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(LOGIN_PATH))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})))
            .respond_with(login_ok(7200))
            .expect(1)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        assert_eq!(client.check_credentials().await.unwrap(), "universalAuth");
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn ten_concurrent_revocations_cause_exactly_one_login() {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        Mock::given(method("DELETE"))
            .and(header("authorization", format!("Bearer {LOGIN_TOKEN}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(10)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        let ops: Vec<Operation> = (0..10)
            .map(|i| Operation::InfisicalDeleteAuthMethod {
                identity_id: format!("identity-{i}"),
                method: InfisicalAuthMethod::AzureAuth,
            })
            .collect();
        let results = futures::future::join_all(ops.iter().map(|op| client.revoke(op, FIRST))).await;
        for r in results {
            assert_eq!(r.unwrap().kind, OutcomeKind::Revoked);
        }
    }

    #[tokio::test]
    async fn a_cached_token_rejected_with_401_is_dropped_and_the_call_retried_once() {
        let server = MockServer::start().await;
        mount_login(&server, 2).await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(401, "UnauthorizedError", json!("Token missing")))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        client.check_credentials().await.unwrap(); // login 1, token cached
        let out = client
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap(); // 401 with the cached token, login 2, retry
        assert_eq!(out.kind, OutcomeKind::Revoked);
    }

    #[tokio::test]
    async fn a_cached_token_rejected_twice_fails_unauthorized_after_one_relogin() {
        let server = MockServer::start().await;
        mount_login(&server, 2).await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(401, "UnauthorizedError", json!("Token missing")))
            .expect(2)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        client.check_credentials().await.unwrap();
        let err = client
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert!(err.message.contains("check clientId/clientSecret"), "{}", err.message);
    }

    #[tokio::test]
    async fn an_expired_cached_token_with_403_token_error_is_replaced() {
        let server = MockServer::start().await;
        mount_login(&server, 2).await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(
                403,
                "TokenError",
                json!("Your token has expired. Please re-authenticate."),
            ))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        client.check_credentials().await.unwrap();
        let out = client
            .revoke(&delete_op(InfisicalAuthMethod::GcpAuth), FIRST)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
    }

    #[tokio::test]
    async fn a_fresh_token_rejected_with_401_is_not_retried() {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(401, "UnauthorizedError", json!("Token missing")))
            .expect(1)
            .mount(&server)
            .await;
        let err = ua_client(&server)
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
    }

    #[tokio::test]
    async fn an_expired_cache_entry_causes_a_new_login() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(LOGIN_PATH))
            .respond_with(login_ok(1)) // cached for 0.9 s
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(2)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        let op = delete_op(InfisicalAuthMethod::AwsAuth);
        client.revoke(&op, FIRST).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        client.revoke(&op, FIRST).await.unwrap();
    }

    #[tokio::test]
    async fn access_token_credentials_are_sent_as_given_without_login() {
        let server = MockServer::start().await;
        mount_login(&server, 0).await;
        Mock::given(method("DELETE"))
            .and(path(format!("/api/v1/auth/ldap-auth/identities/{IDENTITY}")))
            .and(header("authorization", format!("Bearer {ACCESS_TOKEN}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        let client = at_client(&server);
        assert_eq!(client.check_credentials().await.unwrap(), "accessToken");
        let out = client
            .revoke(&delete_op(InfisicalAuthMethod::LdapAuth), FIRST)
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
    }

    #[tokio::test]
    async fn does_not_have_auth_is_already_revoked_for_several_methods() {
        let server = MockServer::start().await;
        let methods = [
            InfisicalAuthMethod::AzureAuth,
            InfisicalAuthMethod::UniversalAuth,
            InfisicalAuthMethod::KubernetesAuth,
            InfisicalAuthMethod::LdapAuth,
            InfisicalAuthMethod::TlsCertAuth,
        ];
        for m in methods {
            // Infisical's wording varies in case between versions; match case-insensitively.
            let message = if m == InfisicalAuthMethod::LdapAuth {
                "The identity DOES NOT HAVE ldap auth".to_string()
            } else {
                format!("The identity does not have {} auth", m.short_name())
            };
            Mock::given(method("DELETE"))
                .and(path(format!("/api/v1/auth/{}/identities/{IDENTITY}", m.path_segment())))
                .respond_with(err_body(400, "BadRequest", json!(message)))
                .expect(2)
                .mount(&server)
                .await;
        }
        let client = at_client(&server);
        for m in methods {
            for ctx in [FIRST, RETRY] {
                let out = client.revoke(&delete_op(m), ctx).await.unwrap();
                assert_eq!(out.kind, OutcomeKind::AlreadyRevoked, "{m:?}");
                assert_eq!(out.http_status, Some(400));
                assert_eq!(out.request_id.as_deref(), Some("req-400"));
                assert!(out.message.contains("changed nothing"), "{}", out.message);
                assert!(out.message.contains(m.short_name()), "{}", out.message);
            }
        }
    }

    #[tokio::test]
    async fn another_400_is_a_bad_request_not_already_revoked() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(400, "BadRequest", json!("Invalid identity id")))
            .mount(&server)
            .await;
        let err = at_client(&server)
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), RETRY)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::BadRequest);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.error_code.as_deref(), Some("BadRequest"));
    }

    #[tokio::test]
    async fn unknown_identity_404_is_target_not_found_naming_the_id_on_every_attempt() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(err_body(
                404,
                "NotFound",
                json!(format!("Failed to find identity with ID {IDENTITY}")),
            ))
            .mount(&server)
            .await;
        let client = at_client(&server);
        for ctx in [FIRST, RETRY] {
            let err = client
                .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), ctx)
                .await
                .unwrap_err();
            assert_eq!(err.reason, Reason::TargetNotFound);
            assert_eq!(err.class, ErrorClass::Permanent);
            assert_eq!(err.http_status, Some(404));
            assert_eq!(err.request_id.as_deref(), Some("req-404"));
            assert_eq!(err.error_code.as_deref(), Some("NotFound"));
            assert!(
                err.message.contains(&format!("no identity {IDENTITY}")),
                "{}",
                err.message
            );
        }
    }

    #[tokio::test]
    async fn a_missing_route_404_is_not_mistaken_for_an_unknown_identity() {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "message": format!("Route DELETE:/api/v1/auth/oci-auth/identities/{IDENTITY} not found"),
                "error": "Not Found",
                "statusCode": 404,
            })))
            .mount(&server)
            .await;
        let err = at_client(&server)
            .revoke(&delete_op(InfisicalAuthMethod::OciAuth), RETRY)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::BadRequest);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.error_code.as_deref(), Some("Not Found"));
        assert!(err.message.contains("no such route"), "{}", err.message);
    }

    #[tokio::test]
    async fn revoke_token_posts_only_the_token_with_no_authorization_and_no_login() {
        let server = MockServer::start().await;
        mount_login(&server, 0).await;
        Mock::given(method("POST"))
            .and(path("/api/v1/auth/token/revoke"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"accessToken": VICTIM})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"message": "Successfully revoked access token"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let out = ua_client(&server).revoke(&token_op(), FIRST).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        let fp = fingerprint(&VICTIM.into());
        assert!(out.message.contains(&fp), "{}", out.message);
        assert_no_secrets(&out.message);
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].headers.get("authorization").is_none());
        assert_eq!(
            requests[0].body_json::<Value>().unwrap(),
            json!({"accessToken": VICTIM})
        );
    }

    #[tokio::test]
    async fn a_revoked_or_expired_token_is_already_revoked_only_after_an_earlier_attempt() {
        for (status, error, message) in [
            (401, "UnauthorizedError", "No identity access token found"),
            (401, "UnauthorizedError", ""),
            (403, "TokenError", "Your token has expired. Please re-authenticate."),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/api/v1/auth/token/revoke"))
                .respond_with(err_body(status, error, json!(message)))
                .mount(&server)
                .await;
            let client = at_client(&server);
            let out = client.revoke(&token_op(), RETRY).await.unwrap();
            assert_eq!(out.kind, OutcomeKind::AlreadyRevoked, "{status} {message}");
            assert!(out.message.contains("changed nothing"));
            assert!(out.message.contains(&fingerprint(&VICTIM.into())));
            assert_eq!(out.request_id, Some(format!("req-{status}")));
            let err = client.revoke(&token_op(), FIRST).await.unwrap_err();
            assert_eq!(err.class, ErrorClass::Permanent, "{status} {message}");
            assert_eq!(err.reason, Reason::TargetNotFound);
            assert_eq!(err.error_code.as_deref(), Some(error));
            assert!(err.message.contains("not reported as already revoked"));
            assert_no_secrets(&err.message);
        }
    }

    #[tokio::test]
    async fn a_foreign_or_malformed_token_fails_even_after_an_earlier_attempt() {
        for (status, error, message) in [
            (401, "UnauthorizedError", "Only identity access tokens can be revoked"),
            (
                403,
                "TokenError",
                "The provided access token is malformed. Please use a valid token or generate a new one and try again.",
            ),
            (403, "TokenError", "invalid signature"),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/api/v1/auth/token/revoke"))
                .respond_with(err_body(status, error, json!(message)))
                .mount(&server)
                .await;
            let err = at_client(&server).revoke(&token_op(), RETRY).await.unwrap_err();
            assert_eq!(err.reason, Reason::BadRequest, "{message}");
            assert_eq!(err.class, ErrorClass::Permanent);
        }
    }

    #[tokio::test]
    async fn revoke_client_secret_sends_the_exact_request_and_checks_the_flag() {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        Mock::given(method("POST"))
            .and(path(format!(
                "/api/v1/auth/universal-auth/identities/{IDENTITY}/client-secrets/cs-id-1/revoke"
            )))
            .and(header("authorization", format!("Bearer {LOGIN_TOKEN}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "clientSecretData": {"id": "cs-id-1", "clientSecretPrefix": "3f4a", "isClientSecretRevoked": true}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let out = ua_client(&server).revoke(&secret_op(), FIRST).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::Revoked);
        assert!(out.message.contains("cs-id-1") && out.message.contains(IDENTITY));
        let requests = server.received_requests().await.unwrap();
        let revoke = requests.iter().find(|r| r.url.path().ends_with("/revoke")).unwrap();
        assert!(revoke.body.is_empty());
    }

    #[tokio::test]
    async fn client_secret_answers_map_to_not_found_already_revoked_and_unexpected() {
        let server = MockServer::start().await;
        let base = format!("/api/v1/auth/universal-auth/identities/{IDENTITY}/client-secrets");
        Mock::given(path(format!("{base}/missing/revoke")))
            .respond_with(err_body(
                404,
                "NotFound",
                json!(format!("Failed to find identity with ID {IDENTITY}")),
            ))
            .mount(&server)
            .await;
        Mock::given(path(format!("{base}/gone/revoke")))
            .respond_with(err_body(
                400,
                "BadRequest",
                json!("The identity does not have universal auth"),
            ))
            .mount(&server)
            .await;
        Mock::given(path(format!("{base}/odd/revoke")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"clientSecretData": {"isClientSecretRevoked": false}})),
            )
            .mount(&server)
            .await;
        let client = at_client(&server);
        let op = |id: &str| Operation::InfisicalRevokeClientSecret {
            identity_id: IDENTITY.into(),
            client_secret_id: id.into(),
        };
        let err = client.revoke(&op("missing"), RETRY).await.unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);
        assert!(err.message.contains("missing") && err.message.contains(IDENTITY));
        let out = client.revoke(&op("gone"), FIRST).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::AlreadyRevoked);
        assert!(out.message.contains("changed nothing"));
        let err = client.revoke(&op("odd"), FIRST).await.unwrap_err();
        assert_eq!(err.reason, Reason::UnexpectedResponse);
    }

    #[tokio::test]
    async fn documented_error_shapes_map_to_reason_class_code_and_request_id() {
        let server = MockServer::start().await;
        let cases: Vec<(&str, ResponseTemplate)> = vec![
            ("i401", err_body(401, "UnauthorizedError", json!("Token missing"))),
            ("i403", {
                ResponseTemplate::new(403).set_body_json(json!({
                    "reqId": "req-403",
                    "statusCode": 403,
                    "error": "PermissionDenied",
                    "message": "You are not allowed to edit on Identity",
                    "details": [{"action": "edit", "inverted": false, "subject": "identity"}],
                }))
            }),
            ("i403t", err_body(403, "TokenError", json!("jwt malformed"))),
            (
                "i422",
                err_body(
                    422,
                    "ValidationFailure",
                    json!([{"code": "invalid_type", "expected": "string", "received": "undefined", "path": ["identityId"], "message": "Required"}]),
                ),
            ),
            (
                "i500",
                err_body(500, "InternalServerError", json!("Something went wrong")),
            ),
            (
                "i502",
                ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
            ),
            (
                "i429",
                err_body(
                    429,
                    "RateLimitExceeded",
                    json!("Rate limit exceeded. Please try again in 42 seconds"),
                ),
            ),
            (
                "i429h",
                err_body(
                    429,
                    "RateLimitExceeded",
                    json!("Rate limit exceeded. Please try again in 42 seconds"),
                )
                .insert_header("retry-after", "7"),
            ),
        ];
        for (id, response) in cases {
            Mock::given(method("DELETE"))
                .and(path(format!("/api/v1/auth/azure-auth/identities/{id}")))
                .respond_with(response)
                .mount(&server)
                .await;
        }
        let client = at_client(&server);
        let run = |id: &'static str| {
            let client = &client;
            async move {
                client
                    .revoke(
                        &Operation::InfisicalDeleteAuthMethod {
                            identity_id: id.into(),
                            method: InfisicalAuthMethod::AzureAuth,
                        },
                        FIRST,
                    )
                    .await
                    .unwrap_err()
            }
        };

        let e = run("i401").await;
        assert_eq!((e.reason, e.class), (Reason::Unauthorized, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("UnauthorizedError"));
        assert_eq!(e.request_id.as_deref(), Some("req-401"));
        assert!(
            e.message.contains("check clientId/clientSecret or accessToken") || e.message.contains("check accessToken"),
            "{}",
            e.message
        );

        let e = run("i403").await;
        assert_eq!((e.reason, e.class), (Reason::Forbidden, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("PermissionDenied"));
        assert_eq!(e.request_id.as_deref(), Some("req-403"));
        assert!(e.message.contains("permission to edit Identities"), "{}", e.message);

        let e = run("i403t").await;
        assert_eq!(e.reason, Reason::Unauthorized);
        assert_eq!(e.error_code.as_deref(), Some("TokenError"));

        let e = run("i422").await;
        assert_eq!((e.reason, e.class), (Reason::BadRequest, ErrorClass::Permanent));
        assert_eq!(e.error_code.as_deref(), Some("ValidationFailure"));
        assert!(e.message.contains("identityId: Required"), "{}", e.message);

        let e = run("i500").await;
        assert_eq!(e.reason, Reason::ProviderUnavailable);
        assert!(e.is_transient());
        assert_eq!(e.request_id.as_deref(), Some("req-500"));

        let e = run("i502").await;
        assert_eq!(e.reason, Reason::ProviderUnavailable);
        assert!(e.is_transient());
        assert_eq!(e.http_status, Some(502));
        assert_eq!(e.error_code, None);

        let e = run("i429").await;
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(
            e.class,
            ErrorClass::Transient {
                retry_after: Some(Duration::from_secs(42))
            }
        );
        assert_eq!(e.error_code.as_deref(), Some("RateLimitExceeded"));

        let e = run("i429h").await;
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "header wins");
    }

    #[tokio::test]
    async fn login_failures_are_permanent_unauthorized_and_overload_is_transient() {
        for (status, permanent) in [(401, true), (400, true), (403, true), (429, false), (503, false)] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path(LOGIN_PATH))
                .respond_with(err_body(status, "X", json!("Invalid credentials")))
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("DELETE"))
                .respond_with(ResponseTemplate::new(200))
                .expect(0)
                .mount(&server)
                .await;
            let client = ua_client(&server);
            let err = client
                .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
                .await
                .unwrap_err();
            if permanent {
                assert_eq!(err.reason, Reason::Unauthorized, "{status}");
                assert_eq!(err.class, ErrorClass::Permanent);
                assert!(err.message.contains(CLIENT_ID), "{}", err.message);
            } else {
                assert!(err.is_transient(), "{status}");
            }
            assert_eq!(err.http_status, Some(status));
            assert_no_secrets(&err.message);
        }
    }

    #[tokio::test]
    async fn dry_run_of_an_auth_method_reads_and_reports() {
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/auth/azure-auth/identities/{IDENTITY}")))
            .and(header("authorization", format!("Bearer {LOGIN_TOKEN}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"identityAzureAuth": {}})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/auth/gcp-auth/identities/{IDENTITY}")))
            .respond_with(err_body(
                400,
                "BadRequest",
                json!("The identity does not have gcp auth"),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/auth/aws-auth/identities/nope"))
            .respond_with(err_body(404, "NotFound", json!("Failed to find identity with ID nope")))
            .expect(1)
            .mount(&server)
            .await;
        let client = ua_client(&server);
        let out = client
            .dry_run(&delete_op(InfisicalAuthMethod::AzureAuth))
            .await
            .unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert!(out.message.contains("would delete azure-auth"), "{}", out.message);
        let out = client.dry_run(&delete_op(InfisicalAuthMethod::GcpAuth)).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert!(out.message.contains("already removed"), "{}", out.message);
        let err = client
            .dry_run(&Operation::InfisicalDeleteAuthMethod {
                identity_id: "nope".into(),
                method: InfisicalAuthMethod::AwsAuth,
            })
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::TargetNotFound);
        assert!(err.message.contains("nope"));
        let requests = server.received_requests().await.unwrap();
        assert!(requests.iter().all(|r| r.method.as_str() != "DELETE"));
    }

    #[tokio::test]
    async fn dry_run_of_a_client_secret_reports_whether_it_is_revoked() {
        let server = MockServer::start().await;
        let base = format!("/api/v1/auth/universal-auth/identities/{IDENTITY}/client-secrets");
        Mock::given(method("GET"))
            .and(path(format!("{base}/live")))
            .and(header("authorization", format!("Bearer {ACCESS_TOKEN}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"clientSecretData": {"isClientSecretRevoked": false}})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{base}/dead")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"clientSecretData": {"isClientSecretRevoked": true}})),
            )
            .mount(&server)
            .await;
        let client = at_client(&server);
        let op = |id: &str| Operation::InfisicalRevokeClientSecret {
            identity_id: IDENTITY.into(),
            client_secret_id: id.into(),
        };
        let out = client.dry_run(&op("live")).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert!(
            out.message.starts_with("would revoke client secret live"),
            "{}",
            out.message
        );
        let out = client.dry_run(&op("dead")).await.unwrap();
        assert!(out.message.contains("already revoked"), "{}", out.message);
        let requests = server.received_requests().await.unwrap();
        assert!(requests.iter().all(|r| r.method.as_str() == "GET"));
    }

    #[tokio::test]
    async fn dry_run_of_a_token_makes_no_call_at_all() {
        let server = MockServer::start().await;
        let out = ua_client(&server).dry_run(&token_op()).await.unwrap();
        assert_eq!(out.kind, OutcomeKind::DryRun);
        assert_eq!(out.http_status, None);
        assert_eq!(
            out.message,
            format!(
                "would revoke access token {}; a token cannot be checked without using it, so no call was made",
                fingerprint(&VICTIM.into())
            )
        );
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_secret_value_appears_in_errors_or_debug_output() {
        // A hostile or buggy server echoes every secret it was sent, in `message` and `error`.
        async fn echoing(server: &MockServer, verb: &str, at: &str, status: u16, echo: String) {
            Mock::given(method(verb))
                .and(path(at))
                .respond_with(err_body(status, &echo, json!(echo.clone())))
                .mount(server)
                .await;
        }
        let delete_path = format!("/api/v1/auth/azure-auth/identities/{IDENTITY}");

        // The client secret, echoed by a failed login.
        let server = MockServer::start().await;
        echoing(&server, "POST", LOGIN_PATH, 401, format!("bad {CLIENT_SECRET}")).await;
        let client = ua_client(&server);
        let err = client
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Unauthorized);
        let err_check = client.check_credentials().await.unwrap_err();
        for text in [
            err.to_string(),
            format!("{err:?}"),
            format!("{err_check:?}"),
            format!("{client:?}"),
        ] {
            assert_no_secrets(&text);
        }

        // The cached login token, echoed by a 403.
        let server = MockServer::start().await;
        mount_login(&server, 1).await;
        echoing(&server, "DELETE", &delete_path, 403, format!("no {LOGIN_TOKEN}")).await;
        let client = ua_client(&server);
        let err = client
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Forbidden);
        assert!(err.message.contains("[redacted]"), "{}", err.message);
        assert_no_secrets(&format!("{err} {err:?} {client:?}"));

        // The given access token, echoed by a 401.
        let server = MockServer::start().await;
        echoing(&server, "DELETE", &delete_path, 401, format!("no {ACCESS_TOKEN}")).await;
        let client = at_client(&server);
        let err = client
            .revoke(&delete_op(InfisicalAuthMethod::AzureAuth), FIRST)
            .await
            .unwrap_err();
        assert_no_secrets(&format!("{err} {err:?} {client:?}"));

        // The token to revoke, echoed in a 422 issue list and in 401/403 answers.
        for status in [422, 401, 403] {
            let server = MockServer::start().await;
            echoing(
                &server,
                "POST",
                "/api/v1/auth/token/revoke",
                status,
                format!("token {VICTIM} expired"),
            )
            .await;
            let client = ua_client(&server);
            for ctx in [FIRST, RETRY] {
                match client.revoke(&token_op(), ctx).await {
                    Ok(out) => assert_no_secrets(&format!("{out:?}")),
                    Err(err) => assert_no_secrets(&format!("{err} {err:?}")),
                }
            }
            let out = client.dry_run(&token_op()).await.unwrap();
            assert_no_secrets(&format!("{out:?}"));
        }
        assert_no_secrets(&format!("{:?}", token_op()));
        assert_no_secrets(&format!("{:?}", ua()));
    }

    #[tokio::test]
    async fn a_host_off_the_allow_list_is_refused_and_other_providers_ops_are_rejected() {
        let server = MockServer::start().await;
        let err = InfisicalClient::new(&config(&server), ua(), None, &HttpSettings::default()).unwrap_err();
        assert_eq!(err.reason, Reason::HostNotAllowed);
        let err = at_client(&server)
            .revoke(&Operation::OnezoneRevokeCurrentUserTemporaryTokens, FIRST)
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.reason, Reason::ProviderMismatch);
        assert!(server.received_requests().await.unwrap().is_empty());
    }
}
