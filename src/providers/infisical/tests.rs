use std::time::Duration;

use serde_json::{Value, json};

use super::errors::try_again_in;
use super::*;
use crate::api::LocalSecretRef;
use crate::api::{InfisicalAuthMethod, InfisicalProvider};
use crate::outcome::{OutcomeKind, Reason};
use crate::providers::http::HttpSettings;
use crate::providers::test_support::{FIRST, RETRY, settings};
use crate::providers::{ErrorClass, fingerprint};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "client-id-1";
const CLIENT_SECRET: &str = "cs-SUPERSECRET-0123456789";
const LOGIN_TOKEN: &str = "login-token-SECRET-abcdef";
const ACCESS_TOKEN: &str = "at-GIVEN-SECRET-987654";
const VICTIM: &str = "victim-token-SECRET-555555";
const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const LOGIN_PATH: &str = "/api/v1/auth/universal-auth/login";

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

fn assert_no_secrets(text: &str) {
    for secret in [CLIENT_SECRET, LOGIN_TOKEN, ACCESS_TOKEN, VICTIM] {
        assert!(!text.contains(secret), "secret {secret} leaked in: {text}");
    }
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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message": "Successfully revoked access token"})))
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
