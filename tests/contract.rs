//! Contract tests: the real provider clients send every request they can send (revocations, dry
//! runs, credential checks, logins, each auth method, and the error paths: a retry after 5xx and
//! 429, a token refresh after 401, the 406 of an unsupported Atlas version) through the harness in
//! `contract/harness.rs`: `prism proxy --errors` on the providers' official contracts
//! (`docs/provider-specs/`) in front of an upstream — scripted answers here, the provider
//! simulator in `contract/simulator.rs`. Every request and every answer must validate; the only
//! exceptions are named (`Allow`): statuses the contracts do not list but the providers send (429,
//! Atlas's 406; their bodies are still validated against the operation's documented error body),
//! and the undocumented Accept of the 406 path.
//! Prism is installed by `hack/prism.sh install` (hack/test.sh does it); a missing Prism fails.

#[path = "contract/harness.rs"]
mod harness;
#[path = "contract/simulator.rs"]
mod simulator;
#[path = "contract/spec.rs"]
mod spec;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{Allow, Canned, Harness, Script, Secrets, Upstream, UpstreamRequest, assert_valid};
use revoker::api::{
    AtlasProvider, InfisicalAuthMethod, InfisicalProvider, LocalSecretRef, NamedTokenAction, OnezoneProvider,
};
use revoker::egress::AllowList;
use revoker::providers::atlas::AtlasClient;
use revoker::providers::atlas::AtlasCredentials;
use revoker::providers::http::HttpSettings;
use revoker::providers::infisical::InfisicalClient;
use revoker::providers::infisical::InfisicalCredentials;
use revoker::providers::onezone::OnezoneClient;
use revoker::providers::onezone::OnezoneCredentials;
use revoker::providers::{
    AttemptContext, ErrorClass, Operation, Outcome, OutcomeKind, Provider, ProviderError, Reason,
};
use secrecy::SecretString;
use serde_json::json;

const ATLAS_SPECS: [&str; 2] = ["atlas-admin-v2.yaml", "atlas-oauth-token.yaml"];
const ATLAS_JSON: &str = "application/json";
const V2023_01_01: &str = "application/vnd.atlas.2023-01-01+json";
const V2023_11_15: &str = "application/vnd.atlas.2023-11-15+json";
const FEDERATION: &str = "55fa922fb343282757d9554e";
const IDP: &str = "32b6e34b3d91647abb20e7b8";
const IDP_500_ONCE: &str = "32b6e34b3d91647abb200500";
const IDP_429_ONCE: &str = "32b6e34b3d91647abb200429";
const IDP_MISSING: &str = "32b6e34b3d91647abb200404";
const GROUP: &str = "32b6e34b3d91647abb20e7b9";
const PUBLIC_KEY: &str = "pub";
const PRIVATE_KEY: &str = "3f0c2a1b-contract-private-key";
const SA_ID: &str = "mdb_sa_id_6650c5a4";
const SA_SECRET: &str = "mdb_sa_sk_contract-secret";

fn settings() -> HttpSettings {
    HttpSettings {
        allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).expect("allow-list")),
        ..HttpSettings::default()
    }
}

fn secret_ref() -> LocalSecretRef {
    LocalSecretRef { name: "creds".into() }
}

async fn revoke(client: &dyn Provider, op: &Operation) -> Result<Outcome, ProviderError> {
    client.revoke(op, AttemptContext::default()).await
}

fn expect_kind(result: Result<Outcome, ProviderError>, kind: OutcomeKind, what: &str) -> Outcome {
    let outcome = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_eq!(outcome.kind, kind, "{what}: {outcome:?}");
    outcome
}

fn expect_error(result: Result<Outcome, ProviderError>, reason: Reason, what: &str) -> ProviderError {
    let err = match result {
        Ok(outcome) => panic!("{what}: expected {reason:?}, got {outcome:?}"),
        Err(err) => err,
    };
    assert_eq!(err.reason, reason, "{what}: {err:?}");
    err
}

fn retry_after(err: &ProviderError) -> Option<Duration> {
    match err.class {
        ErrorClass::Transient { retry_after } => retry_after,
        _ => panic!("expected a transient error: {err:?}"),
    }
}

/// How many times each `METHOD path` reached the upstream (through Prism).
#[derive(Default)]
struct Calls(Mutex<HashMap<String, usize>>);

impl Calls {
    fn count(&self, req: &UpstreamRequest) -> usize {
        let mut calls = self.0.lock().expect("calls");
        let n = calls.entry(format!("{} {}", req.method, req.path)).or_default();
        *n += 1;
        *n
    }
}

fn ops_sent(exchanges: &[harness::Exchange]) -> Vec<String> {
    exchanges
        .iter()
        .map(|e| format!("{} {} {}", e.operation, e.credentials, e.status))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Atlas

fn atlas_error(status: u16, code: &str, reason: &str, detail: &str) -> Canned {
    Canned::json(
        status,
        ATLAS_JSON,
        json!({"error": status, "errorCode": code, "reason": reason, "detail": detail, "parameters": [{"name": "id"}]}),
    )
}

fn atlas_answers(calls: Arc<Calls>, tokens: Arc<AtomicUsize>, reject_tokens: Arc<AtomicBool>) -> Script {
    Arc::new(move |req: &UpstreamRequest| {
        let n = calls.count(req);
        let path = req.path.as_str();
        if path == "/api/oauth/token" {
            if reject_tokens.load(Ordering::SeqCst) {
                return Canned::json(
                    401,
                    ATLAS_JSON,
                    json!({"error": "invalid_client", "error_description": "Invalid client credentials"}),
                );
            }
            let issued = tokens.fetch_add(1, Ordering::SeqCst) + 1;
            return Canned::json(
                200,
                ATLAS_JSON,
                json!({"access_token": format!("sa-token-{issued}"), "token_type": "Bearer", "expires_in": 3600}),
            );
        }
        if req.bearer() == Some("sa-token-1") && req.method == "DELETE" {
            return atlas_error(
                401,
                "NOT_ORG_GROUP_CREATOR",
                "Unauthorized",
                "The access token has expired.",
            );
        }
        if path.ends_with("/jwks") {
            return match (path, n) {
                (p, 1) if p.contains(IDP_500_ONCE) => {
                    atlas_error(500, "UNEXPECTED_ERROR", "Internal Server Error", "Unexpected error.")
                }
                (p, 1) if p.contains(IDP_429_ONCE) => atlas_error(
                    429,
                    "RATE_LIMITED_TOKEN_BUCKET",
                    "Too Many Requests",
                    "You have exceeded the rate limit.",
                )
                .with_header("retry-after", "7"),
                (p, _) if p.contains(IDP_MISSING) => atlas_error(
                    404,
                    "RESOURCE_NOT_FOUND",
                    "Not Found",
                    "Cannot find resource identity provider.",
                ),
                // The contract documents the 204 with the version's media type and no schema.
                _ => Canned {
                    content_type: Some(V2023_11_15),
                    ..Canned::empty(204)
                },
            };
        }
        if path.contains("/identityProviders/") {
            return Canned::json(
                200,
                V2023_11_15,
                json!({"id": IDP, "oktaIdpId": "c2777a9eca931f29fc2f", "displayName": "Corp OIDC", "protocol": "OIDC",
                       "issuerUri": "https://login.example.com", "idpType": "WORKFORCE"}),
            );
        }
        if path.ends_with("/userSecurity/customerX509") {
            return Canned::json(202, V2023_01_01, json!({"customerX509": {}, "links": []}));
        }
        if path.ends_with("/userSecurity") {
            return Canned::json(
                200,
                V2023_01_01,
                json!({"customerX509": {"cas": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}, "links": []}),
            );
        }
        if path == "/api/atlas/v2/orgs" {
            return Canned::json(200, V2023_01_01, json!({"links": [], "results": [], "totalCount": 0}));
        }
        atlas_error(404, "RESOURCE_NOT_FOUND", "Not Found", "no such route in the script")
    })
}

struct AtlasRig {
    harness: Harness,
    reject_tokens: Arc<AtomicBool>,
}

async fn atlas_rig() -> AtlasRig {
    let reject_tokens = Arc::new(AtomicBool::new(false));
    let script = atlas_answers(Arc::default(), Arc::default(), reject_tokens.clone());
    let secrets = Secrets {
        bearer: vec!["sa-token-1".into(), "sa-token-2".into(), "sa-token-3".into()],
        basic: Some((SA_ID.into(), SA_SECRET.into())),
        digest: Some((PUBLIC_KEY.into(), PRIVATE_KEY.into())),
        api_key: None,
    };
    AtlasRig {
        harness: Harness::start(&ATLAS_SPECS, Upstream::Script(script), secrets, None).await,
        reject_tokens,
    }
}

fn atlas_client(rig: &AtlasRig, creds: AtlasCredentials, versions: &[(&str, &str)]) -> AtlasClient {
    let config = AtlasProvider {
        base_url: Some(rig.harness.url.clone()),
        credentials_secret_ref: secret_ref(),
        api_versions: versions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    AtlasClient::new(&config, creds, None, &settings()).expect("client")
}

fn api_key() -> AtlasCredentials {
    AtlasCredentials::ApiKey {
        public_key: PUBLIC_KEY.into(),
        private_key: SecretString::from(PRIVATE_KEY),
    }
}

fn service_account() -> AtlasCredentials {
    AtlasCredentials::ServiceAccount {
        client_id: SA_ID.into(),
        client_secret: SecretString::from(SA_SECRET),
    }
}

fn jwks(idp: &str) -> Operation {
    Operation::AtlasRevokeJwks {
        federation_settings_id: FEDERATION.into(),
        identity_provider_id: idp.into(),
    }
}

fn x509() -> Operation {
    Operation::AtlasDisableX509 { group_id: GROUP.into() }
}

/// Until the client's default version of disableCustomerManagedX509 is the documented one, the
/// request tests pin it; `atlas_default_versions_are_the_documented_ones` checks the defaults.
const DOCUMENTED_X509: [(&str, &str); 1] = [("disableCustomerManagedX509", "2023-01-01")];

/// Every operation an API key (HTTP Digest) can send, in one digest session.
async fn run_every_atlas_call(client: &AtlasClient) {
    assert_eq!(client.check_credentials().await.expect("credential check"), "digest");
    expect_kind(
        client.dry_run(&jwks(IDP)).await,
        OutcomeKind::DryRun,
        "getIdentityProvider",
    );
    expect_kind(
        client.dry_run(&x509()).await,
        OutcomeKind::DryRun,
        "getLdapConfiguration",
    );
    expect_kind(revoke(client, &jwks(IDP)).await, OutcomeKind::Revoked, "revokeJwks");
    expect_kind(revoke(client, &x509()).await, OutcomeKind::Revoked, "disableX509");
}

#[tokio::test]
async fn atlas_digest_requests_and_error_paths_match_the_official_contract() {
    let rig = atlas_rig().await;
    let client = atlas_client(&rig, api_key(), &DOCUMENTED_X509);
    run_every_atlas_call(&client).await;
    let exchanges = rig.harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    for op in [
        "listOrganizations",
        "getIdentityProvider",
        "getLdapConfiguration",
        "revokeJwksFromIdentityProvider",
        "disableCustomerManagedX509",
    ] {
        let answered = sent.iter().any(|s| s.starts_with(&format!("{op} Digest 2")));
        assert!(answered, "{op}: expected a verified digest answer: {sent:#?}");
    }
    // One client keeps the server's nonce: only its first request draws a challenge.
    let challenges: Vec<&String> = sent.iter().filter(|s| s.contains("(digest challenge)")).collect();
    assert_eq!(
        challenges,
        [&"listOrganizations none (digest challenge) 401".to_string()],
        "{sent:#?}"
    );
    assert!(
        exchanges
            .iter()
            .any(|e| e.operation == "listOrganizations" && e.query == [("itemsPerPage".to_string(), "1".to_string())]),
        "the credential check lists one organization: {exchanges:#?}"
    );

    // A 500, then the controller's retry.
    let err = expect_error(
        revoke(&client, &jwks(IDP_500_ONCE)).await,
        Reason::ProviderUnavailable,
        "500",
    );
    assert_eq!(err.http_status, Some(500));
    expect_kind(
        revoke(&client, &jwks(IDP_500_ONCE)).await,
        OutcomeKind::Revoked,
        "retry after 500",
    );
    // A 429 with Retry-After (Atlas's rate-limit page; the operation does not list 429), then the retry.
    let err = expect_error(revoke(&client, &jwks(IDP_429_ONCE)).await, Reason::RateLimited, "429");
    assert_eq!(retry_after(&err), Some(Duration::from_secs(7)), "{err:?}");
    expect_kind(
        revoke(&client, &jwks(IDP_429_ONCE)).await,
        OutcomeKind::Revoked,
        "retry after 429",
    );
    // A 404 for the identity provider.
    let err = expect_error(revoke(&client, &jwks(IDP_MISSING)).await, Reason::TargetNotFound, "404");
    assert_eq!(err.error_code.as_deref(), Some("RESOURCE_NOT_FOUND"));
    let exchanges = rig.harness.take();
    assert_valid(&exchanges, &[Allow::UndocumentedStatus(429)]);
    assert!(
        exchanges.iter().any(|e| e.status == 429 && !e.violations.is_empty()),
        "Prism should flag the 429 as undocumented (defensive handling): {exchanges:#?}"
    );

    // The 406 path: an override to a version the contract does not document.
    let overridden = atlas_client(&rig, api_key(), &[("disableCustomerManagedX509", "2025-03-12")]);
    let err = expect_error(revoke(&overridden, &x509()).await, Reason::UnsupportedApiVersion, "406");
    assert!(
        err.message.contains("2025-03-12")
            && err
                .message
                .contains("spec.atlas.apiVersions.disableCustomerManagedX509"),
        "the 406 names the version sent and the override: {}",
        err.message
    );
    let exchanges = rig.harness.take();
    assert_valid(&exchanges, &[Allow::UndocumentedAccept]);
    assert!(
        exchanges.iter().any(|e| e.status == 406),
        "the undocumented version got Atlas's 406: {exchanges:#?}"
    );
}

#[tokio::test]
async fn atlas_service_account_requests_and_token_refresh_match_the_official_contract() {
    let rig = atlas_rig().await;
    let client = atlas_client(&rig, service_account(), &DOCUMENTED_X509);
    assert_eq!(client.check_credentials().await.expect("token"), "serviceAccount");
    // The cached sa-token-1 is refused (401): the client fetches sa-token-2 and repeats once.
    expect_kind(
        revoke(&client, &jwks(IDP)).await,
        OutcomeKind::Revoked,
        "revokeJwks after refresh",
    );
    expect_kind(revoke(&client, &x509()).await, OutcomeKind::Revoked, "disableX509");
    expect_kind(
        client.dry_run(&jwks(IDP)).await,
        OutcomeKind::DryRun,
        "getIdentityProvider",
    );
    expect_kind(
        client.dry_run(&x509()).await,
        OutcomeKind::DryRun,
        "getLdapConfiguration",
    );
    let exchanges = rig.harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    assert_eq!(
        &sent[..4],
        [
            "atlasServiceAccountToken Basic 200",
            "revokeJwksFromIdentityProvider Bearer 401",
            "atlasServiceAccountToken Basic 200",
            "revokeJwksFromIdentityProvider Bearer 204",
        ],
        "{sent:#?}"
    );

    // The token endpoint refuses the client credentials (RFC 6749 5.2).
    rig.reject_tokens.store(true, Ordering::SeqCst);
    let fresh = atlas_client(&rig, service_account(), &DOCUMENTED_X509);
    let err = fresh.check_credentials().await.expect_err("rejected credentials");
    assert_eq!(err.reason, Reason::Unauthorized, "{err:?}");
    assert_eq!(err.error_code.as_deref(), Some("invalid_client"));
    assert_valid(&rig.harness.take(), &[]);
}

#[tokio::test]
async fn atlas_default_versions_are_the_documented_ones() {
    let rig = atlas_rig().await;
    let client = atlas_client(&rig, api_key(), &[]);
    let _ = client.check_credentials().await;
    let _ = client.dry_run(&jwks(IDP)).await;
    let _ = client.dry_run(&x509()).await;
    let _ = revoke(&client, &jwks(IDP)).await;
    let _ = revoke(&client, &x509()).await;
    let exchanges = rig.harness.take();
    assert_eq!(
        exchanges.len(),
        6,
        "five calls and one challenge (the nonce is kept): {exchanges:#?}"
    );
    assert_valid(&exchanges, &[]);
}

// ---------------------------------------------------------------------------------------------
// Infisical

const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const IDENTITY_MISSING: &str = "00000000-0000-4000-8000-000000000404";
const IDENTITY_WITHOUT: &str = "00000000-0000-4000-8000-000000000400";
const IDENTITY_500_ONCE: &str = "00000000-0000-4000-8000-000000000500";
const IDENTITY_429_ONCE: &str = "00000000-0000-4000-8000-000000000429";
const CLIENT_SECRET_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const ACCESS_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.configured.sig";

fn infisical_error(status: u16, error: &str, message: &str) -> Canned {
    Canned::json(
        status,
        "application/json",
        json!({"reqId": "req-7f3a", "statusCode": status, "message": message, "error": error}),
    )
}

fn azure_auth() -> serde_json::Value {
    json!({"id": "6b1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "accessTokenTTL": 2592000, "accessTokenMaxTTL": 2592000,
           "accessTokenNumUsesLimit": 0, "accessTokenTrustedIps": [{"ipAddress": "0.0.0.0", "prefix": 0}],
           "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z", "identityId": IDENTITY,
           "tenantId": "tenant", "resource": "https://management.azure.com/", "allowedServicePrincipalIds": ""})
}

fn client_secret(revoked: bool) -> serde_json::Value {
    json!({"clientSecretData": {"id": CLIENT_SECRET_ID, "createdAt": "2025-01-01T00:00:00.000Z",
           "updatedAt": "2025-01-01T00:00:00.000Z", "description": "ci", "clientSecretPrefix": "a1b2",
           "clientSecretNumUses": 0, "clientSecretNumUsesLimit": 0, "clientSecretTTL": 0,
           "identityUAId": "7c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "isClientSecretRevoked": revoked}})
}

fn infisical_answers(calls: Arc<Calls>, logins: Arc<AtomicUsize>) -> Script {
    Arc::new(move |req: &UpstreamRequest| {
        let n = calls.count(req);
        let path = req.path.as_str();
        if path == "/api/v1/auth/universal-auth/login" {
            let issued = logins.fetch_add(1, Ordering::SeqCst) + 1;
            return Canned::json(
                200,
                "application/json",
                json!({"accessToken": format!("login-token-{issued}"), "expiresIn": 7200, "accessTokenMaxTTL": 7200, "tokenType": "Bearer"}),
            );
        }
        if path == "/api/v1/auth/token/revoke" {
            return Canned::json(
                200,
                "application/json",
                json!({"message": "Successfully revoked access token"}),
            );
        }
        if req.bearer() == Some("login-token-1") && req.method == "DELETE" {
            return infisical_error(401, "UnauthorizedError", "Token expired");
        }
        if path.contains("/client-secrets/") {
            return Canned::json(200, "application/json", client_secret(path.ends_with("/revoke")));
        }
        match (path, n) {
            (p, _) if p.contains(IDENTITY_MISSING) => infisical_error(
                404,
                "NotFound",
                &format!("Failed to find identity with ID {IDENTITY_MISSING}"),
            ),
            (p, _) if p.contains(IDENTITY_WITHOUT) => {
                infisical_error(400, "BadRequest", "The identity does not have azure auth")
            }
            (p, 1) if p.contains(IDENTITY_500_ONCE) => {
                infisical_error(500, "InternalServerError", "Something went wrong")
            }
            (p, 1) if p.contains(IDENTITY_429_ONCE) => infisical_error(
                429,
                "RateLimitExceeded",
                "Rate limit exceeded. Please try again in 12 seconds",
            ),
            _ => Canned::json(200, "application/json", json!({"identityAzureAuth": azure_auth()})),
        }
    })
}

/// The official Infisical document transcribes the azure-auth router only; the other auth methods'
/// routers have the same shape, so their requests are validated as the azure-auth route.
fn as_azure_route(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/auth/")?;
    let (method, tail) = rest.split_once('/')?;
    let identity_route = tail.strip_prefix("identities/").is_some_and(|id| !id.contains('/'));
    (identity_route && method != "azure-auth").then(|| format!("/api/v1/auth/azure-auth/{tail}"))
}

async fn infisical_rig() -> Harness {
    let secrets = Secrets {
        bearer: vec!["login-token-1".into(), "login-token-2".into(), ACCESS_TOKEN.into()],
        ..Secrets::default()
    };
    let script = infisical_answers(Arc::default(), Arc::default());
    Harness::start(
        &["infisical.yaml"],
        Upstream::Script(script),
        secrets,
        Some(as_azure_route),
    )
    .await
}

fn infisical_client(harness: &Harness, creds: InfisicalCredentials) -> InfisicalClient {
    let config = InfisicalProvider {
        base_url: Some(harness.url.clone()),
        credentials_secret_ref: secret_ref(),
    };
    InfisicalClient::new(&config, creds, None, &settings()).expect("client")
}

fn delete_method(identity: &str, method: InfisicalAuthMethod) -> Operation {
    Operation::InfisicalDeleteAuthMethod {
        identity_id: identity.into(),
        method,
    }
}

fn revoke_secret() -> Operation {
    Operation::InfisicalRevokeClientSecret {
        identity_id: IDENTITY.into(),
        client_secret_id: CLIENT_SECRET_ID.into(),
    }
}

const ALL_METHODS: [InfisicalAuthMethod; 12] = [
    InfisicalAuthMethod::AzureAuth,
    InfisicalAuthMethod::UniversalAuth,
    InfisicalAuthMethod::TokenAuth,
    InfisicalAuthMethod::KubernetesAuth,
    InfisicalAuthMethod::GcpAuth,
    InfisicalAuthMethod::AwsAuth,
    InfisicalAuthMethod::OidcAuth,
    InfisicalAuthMethod::JwtAuth,
    InfisicalAuthMethod::LdapAuth,
    InfisicalAuthMethod::OciAuth,
    InfisicalAuthMethod::AlicloudAuth,
    InfisicalAuthMethod::TlsCertAuth,
];

#[tokio::test]
async fn infisical_universal_auth_requests_and_error_paths_match_the_official_contract() {
    let harness = infisical_rig().await;
    let client = infisical_client(
        &harness,
        InfisicalCredentials::UniversalAuth {
            client_id: "3c9b1d2e-ci-client".into(),
            client_secret: SecretString::from("ua-client-secret"),
        },
    );
    assert_eq!(client.check_credentials().await.expect("login"), "universalAuth");
    // login-token-1 is refused at the first DELETE: the client logs in again and repeats once.
    for method in ALL_METHODS {
        let op = delete_method(IDENTITY, method);
        expect_kind(client.dry_run(&op).await, OutcomeKind::DryRun, method.path_segment());
        expect_kind(revoke(&client, &op).await, OutcomeKind::Revoked, method.path_segment());
    }
    expect_kind(
        client.dry_run(&revoke_secret()).await,
        OutcomeKind::DryRun,
        "client secret dry run",
    );
    expect_kind(
        revoke(&client, &revoke_secret()).await,
        OutcomeKind::Revoked,
        "client secret",
    );
    let token = Operation::InfisicalRevokeToken {
        token: SecretString::from("eyJ.revoked.sig"),
        token_auth: false,
    };
    expect_kind(revoke(&client, &token).await, OutcomeKind::Revoked, "token revoke");
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    assert_eq!(
        &sent[..5],
        [
            "loginWithUniversalAuth none 200",
            "getAzureAuth Bearer 200",
            "deleteAzureAuth Bearer 401",
            "loginWithUniversalAuth none 200",
            "deleteAzureAuth Bearer 200",
        ],
        "{sent:#?}"
    );
    assert!(
        sent.contains(&"revokeIdentityAccessToken none 200".to_string()),
        "the token revoke carries no credentials: {sent:#?}"
    );

    let azure = InfisicalAuthMethod::AzureAuth;
    let err = expect_error(
        revoke(&client, &delete_method(IDENTITY_MISSING, azure)).await,
        Reason::TargetNotFound,
        "404",
    );
    assert_eq!(err.http_status, Some(404));
    expect_kind(
        revoke(&client, &delete_method(IDENTITY_WITHOUT, azure)).await,
        OutcomeKind::AlreadyRevoked,
        "400 does not have azure auth",
    );
    expect_error(
        revoke(&client, &delete_method(IDENTITY_500_ONCE, azure)).await,
        Reason::ProviderUnavailable,
        "500",
    );
    expect_kind(
        revoke(&client, &delete_method(IDENTITY_500_ONCE, azure)).await,
        OutcomeKind::Revoked,
        "retry after 500",
    );
    let err = expect_error(
        revoke(&client, &delete_method(IDENTITY_429_ONCE, azure)).await,
        Reason::RateLimited,
        "429",
    );
    assert_eq!(retry_after(&err), Some(Duration::from_secs(12)), "{err:?}");
    expect_kind(
        revoke(&client, &delete_method(IDENTITY_429_ONCE, azure)).await,
        OutcomeKind::Revoked,
        "retry after 429",
    );
    assert_valid(&harness.take(), &[Allow::UndocumentedStatus(429)]);
}

#[tokio::test]
async fn infisical_access_token_requests_match_the_official_contract() {
    let harness = infisical_rig().await;
    let client = infisical_client(
        &harness,
        InfisicalCredentials::AccessToken(SecretString::from(ACCESS_TOKEN)),
    );
    assert_eq!(client.check_credentials().await.expect("check"), "accessToken");
    let op = delete_method(IDENTITY, InfisicalAuthMethod::AzureAuth);
    expect_kind(client.dry_run(&op).await, OutcomeKind::DryRun, "getAzureAuth");
    expect_kind(revoke(&client, &op).await, OutcomeKind::Revoked, "deleteAzureAuth");
    expect_kind(
        revoke(&client, &revoke_secret()).await,
        OutcomeKind::Revoked,
        "client secret",
    );
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    assert_eq!(
        ops_sent(&exchanges),
        [
            "getAzureAuth Bearer 200",
            "deleteAzureAuth Bearer 200",
            "revokeUniversalAuthClientSecret Bearer 200"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Onezone

const OZ_TOKEN: &str = "MDAxY2xvY2F00aW9uIG9uZXpvbmUK";
const USER: &str = "c26bab23d12f7389c3c311caf9c15902";
const USER_MISSING: &str = "c26bab23d12f7389c3c311caf9c10404";
const USER_500_ONCE: &str = "c26bab23d12f7389c3c311caf9c10500";
const NAMED: &str = "2b5d0dd5aa6443a69277b5ce0544fec2";
const NAMED_MISSING: &str = "2b5d0dd5aa6443a69277b5ce05440404";

fn onezone_error(status: u16, id: &str, description: &str) -> Canned {
    Canned::json(
        status,
        "application/json",
        json!({"error": {"id": id, "description": description}}),
    )
}

fn onezone_answers(calls: Arc<Calls>) -> Script {
    Arc::new(move |req: &UpstreamRequest| {
        let n = calls.count(req);
        let path = req.path.trim_start_matches("/api/v3/onezone");
        if path.contains(USER_MISSING) || path.contains(NAMED_MISSING) {
            return onezone_error(404, "notFound", "The resource could not be found.");
        }
        if path.contains(USER_500_ONCE) && n == 1 {
            return onezone_error(500, "internalServerError", "The server has encountered an error.");
        }
        match (req.method.as_str(), path) {
            ("GET", "/user") => Canned::json(
                200,
                "application/json",
                json!({"userId": USER, "fullName": "CI User", "username": "ci", "linkedAccounts": [],
                       "emails": ["ci@example.com"], "basicAuthEnabled": false, "blocked": false, "creationTime": 1576152793}),
            ),
            ("GET", p) if p.ends_with("/tokens/temporary") => {
                Canned::json(200, "application/json", json!({"generation": 3}))
            }
            ("GET", p) if p.starts_with("/tokens/named/") => Canned::json(
                200,
                "application/json",
                json!({"id": NAMED, "name": "ci-token", "subject": {"type": "user", "id": USER}, "revoked": false,
                       "metadata": {"creationTime": 1576152793}}),
            ),
            _ => Canned::empty(204),
        }
    })
}

#[tokio::test]
async fn onezone_requests_and_error_paths_match_the_official_contract() {
    let secrets = Secrets {
        api_key: Some(OZ_TOKEN.into()),
        ..Secrets::default()
    };
    let harness = Harness::start(
        &["onezone.yaml"],
        Upstream::Script(onezone_answers(Arc::default())),
        secrets,
        None,
    )
    .await;
    let config = OnezoneProvider {
        base_url: harness.url.clone(),
        credentials_secret_ref: secret_ref(),
    };
    let creds = OnezoneCredentials {
        token: SecretString::from(OZ_TOKEN),
    };
    let client = OnezoneClient::new(&config, creds, None, &settings()).expect("client");
    assert_eq!(client.check_credentials().await.expect("check"), "token");
    let user = Operation::OnezoneRevokeUserTemporaryTokens { user_id: USER.into() };
    let current = Operation::OnezoneRevokeCurrentUserTemporaryTokens;
    let named = |action, token_id: &str| Operation::OnezoneRevokeNamedToken {
        token_id: token_id.into(),
        action,
    };
    for op in [
        user.clone(),
        current.clone(),
        named(NamedTokenAction::Revoke, NAMED),
        named(NamedTokenAction::Delete, NAMED),
    ] {
        expect_kind(client.dry_run(&op).await, OutcomeKind::DryRun, op.name());
        expect_kind(revoke(&client, &op).await, OutcomeKind::Revoked, op.name());
    }
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    for op in [
        "get_current_user x-auth-token 200",
        "get_temporary_token_generation_of_user x-auth-token 200",
        "revoke_all_temporary_tokens_of_user x-auth-token 204",
        "revoke_all_temporary_tokens_of_current_user x-auth-token 204",
        "get_named_token x-auth-token 200",
        "modify_named_token x-auth-token 204",
        "delete_named_token x-auth-token 204",
    ] {
        assert!(sent.contains(&op.to_string()), "{op} missing: {sent:#?}");
    }

    let missing = Operation::OnezoneRevokeUserTemporaryTokens {
        user_id: USER_MISSING.into(),
    };
    let err = expect_error(revoke(&client, &missing).await, Reason::TargetNotFound, "404 user");
    assert_eq!(err.error_code.as_deref(), Some("notFound"));
    expect_error(
        revoke(&client, &named(NamedTokenAction::Delete, NAMED_MISSING)).await,
        Reason::TargetNotFound,
        "404 named token, first attempt",
    );
    let flaky = Operation::OnezoneRevokeUserTemporaryTokens {
        user_id: USER_500_ONCE.into(),
    };
    expect_error(revoke(&client, &flaky).await, Reason::ProviderUnavailable, "500");
    expect_kind(revoke(&client, &flaky).await, OutcomeKind::Revoked, "retry after 500");
    assert_valid(&harness.take(), &[]);
}
