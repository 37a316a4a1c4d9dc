use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::api::LocalSecretRef;
use crate::api::{NamedTokenAction, OnezoneProvider};
use crate::outcome::{OutcomeKind, Reason};
use crate::providers::ErrorClass;
use crate::providers::http::HttpSettings;
use crate::providers::test_support::{FIRST, RETRY, settings};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "MDAxY2xvY2F0aW9uIG9uZXpvbmUK-SECRET-TOKEN";
const USER: &str = "c26bab23d12f7389c3c311caf9c15902";
const NAMED: &str = "2b5d0dd5aa6443a69277b5ce0544fec2";

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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": NAMED, "name": "ci", "revoked": false})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/onezone/tokens/named/old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "old", "name": "old", "revoked": true})))
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
