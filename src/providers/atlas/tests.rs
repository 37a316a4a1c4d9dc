use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::errors::retry_after_in_text;
use super::*;
use crate::api::{AtlasProvider, LocalSecretRef};
use crate::providers::test_support::settings;
use crate::providers::{ErrorClass, OutcomeKind, Reason};

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
const X509_MEDIA: &str = "application/vnd.atlas.2023-01-01+json";
const CHALLENGE: &str = r#"Digest realm="MMS Public API", domain="", nonce="OWYxZmVjZWItMzFhZS00NGQ3", algorithm=MD5, qop="auth", stale=false"#;

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
async fn disable_x509_sends_the_exact_request_with_the_documented_2023_01_01_media_type() {
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
            ResponseTemplate::new(202).set_body_json(json!({"customerX509": {"cas": "-----BEGIN CERTIFICATE-----"}})),
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

fn nonce_is(nonce: &'static str) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| digest_fields(v).get("nonce").map(String::as_str) == Some(nonce))
    }
}

const NONCE_1: &str = "OWYxZmVjZWItMzFhZS00NGQ3";
const NONCE_2: &str = "bmV3LW5vbmNlLWFmdGVyLXN0YWxl";

fn challenge_with(nonce: &str, stale: bool) -> ResponseTemplate {
    atlas_error(401, "UNAUTHORIZED", "You are not authorized for this resource.").insert_header(
        "www-authenticate",
        format!(
            r#"Digest realm="MMS Public API", domain="", nonce="{nonce}", algorithm=MD5, qop="auth", stale={stale}"#
        )
        .as_str(),
    )
}

#[tokio::test]
async fn a_batch_of_digest_calls_answers_one_challenge_with_rising_nonce_counts() {
    let server = MockServer::start().await;
    Mock::given(no_authorization)
        .respond_with(challenge_with(NONCE_1, false))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(nonce_is(NONCE_1))
        .respond_with(ResponseTemplate::new(204))
        .expect(3)
        .mount(&server)
        .await;
    let client = client(&server, api_key());
    for _ in 0..3 {
        let outcome = client.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4, "one challenge, then one request per call");
    let counts: Vec<String> = requests[1..]
        .iter()
        .map(|r| digest_fields(r.headers["authorization"].to_str().unwrap())["nc"].clone())
        .collect();
    assert_eq!(counts, ["00000001", "00000002", "00000003"]);
}

#[tokio::test]
async fn a_nonce_the_server_no_longer_takes_costs_one_more_challenge_and_the_new_one_is_kept() {
    let server = MockServer::start().await;
    Mock::given(no_authorization)
        .respond_with(challenge_with(NONCE_1, false))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(no_authorization)
        .respond_with(challenge_with(NONCE_2, false))
        .mount(&server)
        .await;
    Mock::given(nonce_is(NONCE_1))
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(nonce_is(NONCE_1))
        .respond_with(challenge_with(NONCE_2, true))
        .mount(&server)
        .await;
    Mock::given(nonce_is(NONCE_2))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(&server, api_key());
    for _ in 0..3 {
        let outcome = client.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Revoked);
    }
    // 2 (challenge, answer) + 3 (refused nonce, challenge, answer) + 1 (the new nonce kept).
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
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
    atlas.token.age_past_refresh().await;
    atlas.revoke(&jwks_op(), AttemptContext::default()).await.unwrap();
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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "tok-x", "token_type": "mac"})))
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
                    "API version 2023-01-01",
                    "Accept: application/vnd.atlas.2023-01-01+json",
                    "spec.atlas.apiVersions.disableCustomerManagedX509",
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
        .and(header("accept", "application/vnd.atlas.2024-05-30+json"))
        .and(no_authorization)
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", CHALLENGE))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(X509_PATH))
        .and(header("accept", "application/vnd.atlas.2024-05-30+json"))
        .and(digest_authorization)
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"customerX509": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let atlas = AtlasClient::new(
        &config(&server, &[(OP_DISABLE_X509, "2024-05-30")]),
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
async fn an_echoed_oauth_token_and_request_id_are_redacted() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-ISSUED-BEARER-777", 1).await;
    let basic = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    Mock::given(method("DELETE"))
        .respond_with(
            atlas_error(403, "FORBIDDEN", &format!("Bearer tok-ISSUED-BEARER-777 for {basic}"))
                .insert_header("x-request-id", "req-tok-ISSUED-BEARER-777"),
        )
        .mount(&server)
        .await;
    let err = client(&server, service_account())
        .revoke(&jwks_op(), AttemptContext::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Forbidden);
    let text = format!("{err} {err:?}");
    assert!(!text.contains("tok-ISSUED-BEARER-777"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert!(err.message.contains("[redacted]"), "{}", err.message);
    assert_eq!(err.request_id.as_deref(), Some("req-[redacted]"));
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
