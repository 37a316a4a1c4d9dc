//! The Atlas client: construction, API versions, and sending one Admin API request.

use std::collections::BTreeMap;

use diqwest::DigestAuthSession;
use reqwest::Method;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};

use super::credentials::AtlasCredentials;
use super::errors::Target;
use super::{DEFAULT_API_VERSIONS, OP_LIST_ORGANIZATIONS};
use crate::api::{ATLAS_DEFAULT_URL, AtlasProvider, ProviderType};
use std::sync::Arc;

use crate::api::{ProviderBackend, ProviderConfig};
use crate::credentials::SecretData;
use crate::outcome::{ProviderError, Reason, Redactor};
use crate::providers::answer::{Answer, Dialect};
use crate::providers::http::{HttpSettings, ProviderHttp};
use crate::providers::token_cache::TokenCache;
use crate::providers::{Built, backend_mismatch};

/// How Atlas answers look.
pub(super) const DIALECT: Dialect = Dialect {
    name: "Atlas",
    request_id_headers: &["x-request-id", "x-mongodb-request-id"],
};

/// A client for one Atlas provider object.
pub struct AtlasClient {
    pub(super) http: ProviderHttp,
    pub(super) creds: AtlasCredentials,
    /// Name of the credentials Secret, for messages.
    pub(super) secret_name: String,
    /// Version per operation id: the defaults with the provider's overrides applied.
    pub(super) versions: BTreeMap<String, String>,
    /// The service account's bearer token.
    pub(super) token: TokenCache,
    /// An API key's digest session: the server's last nonce and the nonce count, so that a batch
    /// of calls answers one challenge instead of drawing one per call.
    pub(super) digest: Option<DigestAuthSession>,
    /// Knows the credentials and every token obtained with them.
    pub(super) redactor: Redactor,
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
        let redactor = credential_redactor(&creds);
        let digest = match &creds {
            AtlasCredentials::ApiKey {
                public_key,
                private_key,
            } => Some(DigestAuthSession::new(public_key.as_str(), private_key.expose_secret())),
            AtlasCredentials::ServiceAccount { .. } => None,
        };
        Ok(AtlasClient {
            http,
            creds,
            digest,
            secret_name: config.credentials_secret_ref.name.clone(),
            versions,
            token: TokenCache::new(redactor.clone()),
            redactor,
        })
    }

    pub(super) fn version(&self, op: &str) -> &str {
        self.versions.get(op).map(String::as_str).unwrap_or_default()
    }

    /// Send one Admin API request with the configured authentication, and read the answer.
    pub(super) async fn api(
        &self,
        op: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Answer, ProviderError> {
        let url = self.http.url(segments);
        let accept = format!("application/vnd.atlas.{}+json", self.version(op));
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
        let response = match &self.digest {
            Some(session) => self.send_digest(op, build(), session).await?,
            None => {
                let bearer = self.bearer_token().await?;
                let response = self
                    .http
                    .send(op, build().bearer_auth(bearer.token.expose_secret()))
                    .await?;
                if response.status() != reqwest::StatusCode::UNAUTHORIZED || !bearer.from_cache {
                    response
                } else {
                    // The cached token may have been revoked or expired early: fetch a new one and
                    // retry once. A 401 with a fresh token is final.
                    self.token.forget(&bearer.token).await;
                    let fresh = self.bearer_token().await?;
                    self.http
                        .send(op, build().bearer_auth(fresh.token.expose_secret()))
                        .await?
                }
            }
        };
        Answer::read(response, op, DIALECT, &self.redactor).await
    }

    /// [`AtlasClient::api`] for a call about `target`: an error answer becomes its classified error.
    pub(super) async fn call(
        &self,
        op: &'static str,
        method: Method,
        segments: &[&str],
        target: Target<'_>,
    ) -> Result<Answer, ProviderError> {
        let answer = self.api(op, method, segments, &[]).await?;
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(self.error_from(op, target, &answer))
        }
    }

    /// The live credential check of the provider's `Ready` condition.
    pub(super) async fn check(&self) -> Result<&'static str, ProviderError> {
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
                let answer = self
                    .api(
                        OP_LIST_ORGANIZATIONS,
                        Method::GET,
                        &["api", "atlas", "v2", "orgs"],
                        &[("itemsPerPage", "1")],
                    )
                    .await?;
                if answer.is_success() || answer.status == 403 {
                    return Ok("digest");
                }
                Err(self.error_from(OP_LIST_ORGANIZATIONS, Target::Organizations, &answer))
            }
        }
    }
}

/// A redactor that knows the credential's secret, also in the `id:secret` form HTTP Basic sends.
fn credential_redactor(creds: &AtlasCredentials) -> Redactor {
    match creds {
        AtlasCredentials::ApiKey { private_key, .. } => Redactor::with(&[private_key]),
        AtlasCredentials::ServiceAccount {
            client_id,
            client_secret,
        } => {
            let basic = SecretString::from(format!("{client_id}:{}", client_secret.expose_secret()));
            Redactor::with(&[client_secret, &basic])
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

/// The default version of an operation id.
pub(super) fn default_version(op: &str) -> Option<&'static str> {
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

/// Path of an identity provider, or of its JWKS.
pub(super) fn jwks_path<'a>(fid: &'a str, idp: &'a str, jwks: bool) -> Vec<&'a str> {
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

/// Path of a project's user security, or of its customer X.509 settings.
pub(super) fn user_security_path(group: &str, customer_x509: bool) -> Vec<&str> {
    let mut path = vec!["api", "atlas", "v2", "groups", group, "userSecurity"];
    if customer_x509 {
        path.push("customerX509");
    }
    path
}

/// An id of the revocation's `spec.atlas` must not be blank.
pub(super) fn require_id(field: &str, value: &str) -> Result<(), ProviderError> {
    if value.trim().is_empty() {
        return Err(ProviderError::permanent(
            Reason::BadRequest,
            format!("spec.atlas.{field} is empty"),
        ));
    }
    Ok(())
}

pub(super) fn build(config: &ProviderConfig, secret: &SecretData<'_>, settings: &HttpSettings) -> Built {
    let ProviderBackend::Atlas(block) = &config.backend else {
        return Err(backend_mismatch(ProviderType::Atlas));
    };
    let client = AtlasClient::new(
        block,
        super::credentials::parse(secret)?,
        config.ca_bundle.as_deref(),
        settings,
    );
    Ok(Arc::new(client?))
}
