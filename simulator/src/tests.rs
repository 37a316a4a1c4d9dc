//! In-process tests: the real server on 127.0.0.1:0, driven with reqwest (and diqwest for
//! Digest, the client the operator uses).

use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener as _;
use diqwest::WithDigestAuth;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::conn::SimListener;
use crate::server::{self, Sim};
use crate::state::State;

const FED: &str = "55fa922fb343282757d9554e";
const IDP: &str = "32b6e34b3d91647abb20e7b8";
const GROUP: &str = "32b6e34b3d91647abb20e7b9";
const V_JWKS: &str = "application/vnd.atlas.2023-11-15+json";
const KEY: (&str, &str) = ("sim-public-key", "sim-private-key");
const TARGET: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const CLIENT_SECRET_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OZ_ADMIN: &str = "sim-onezone-admin-token";
const OZ_ADMIN_USER: &str = "c26bab23d12f7389c3c311caf9c15902";
const OZ_USER: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
const NAMED: &str = "2b5d0dd5aa6443a69277b5ce0544fec2";

struct TestSim {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestSim {
    async fn start() -> TestSim {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = SimListener::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let sim = Arc::new(Sim::new(State::default_seed().expect("seed")));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, sim, async {
            let _ = rx.await;
        }));
        TestSim {
            base: format!("http://{addr}"),
            client: new_client(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("admin call");
        assert!(resp.status().is_success(), "admin {path}: {}", resp.status());
        resp.json().await.expect("admin json")
    }

    async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/state", None).await
    }

    async fn calls(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/calls", None).await
    }

    async fn fault(&self, spec: Value) {
        self.admin(reqwest::Method::POST, "/_sim/faults", Some(spec)).await;
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("graceful shutdown");
            assert!(matches!(r, Ok(Ok(()))), "server ended with {r:?}");
        }
    }
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn jwks_path() -> String {
    format!("/api/atlas/v2/federationSettings/{FED}/identityProviders/{IDP}/jwks")
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json body")
}

async fn atlas_token(t: &TestSim) -> String {
    let resp = t
        .client
        .post(t.url("/api/oauth/token"))
        .basic_auth("mdb_sa_id_sim", Some("mdb_sa_sk_sim"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token call");
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some());
    body["access_token"].as_str().expect("access_token").to_string()
}

fn jwks_revocations(state: &Value) -> u64 {
    state["atlas"]["federations"][0]["identityProviders"][0]["jwksRevocations"]
        .as_u64()
        .expect("jwksRevocations")
}

#[tokio::test]
async fn digest_authenticated_jwks_revoke_counts_one_call() {
    let t = TestSim::start().await;
    assert_eq!(t.calls().await["total"], 0, "nothing received yet");

    let resp = t
        .client
        .delete(t.url(&jwks_path()))
        .header("accept", V_JWKS)
        .send_digest_auth(KEY)
        .await
        .expect("digest call");
    assert_eq!(resp.status(), 204);
    assert_eq!(jwks_revocations(&t.state().await), 1);

    let calls = t.calls().await;
    let target = format!("DELETE {}", jwks_path());
    // The digest dance: one unauthenticated challenge, then the authenticated call.
    assert_eq!(calls["counts"][&target], 2);
    assert_eq!(calls["countsByStatus"][&target], json!({"401": 1, "204": 1}));
    let auth = calls["calls"][1]["headers"]["authorization"]
        .as_str()
        .expect("auth header");
    assert_eq!(auth, "Digest username=\"sim-public-key\"");

    // A wrong private key: 401 with Atlas's body, nothing revoked.
    let resp = t
        .client
        .delete(t.url(&jwks_path()))
        .header("accept", V_JWKS)
        .send_digest_auth(("sim-public-key", "wrong"))
        .await
        .expect("digest call");
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["errorCode"], "UNAUTHORIZED");
    assert_eq!(jwks_revocations(&t.state().await), 1);
    t.stop().await;
}

#[tokio::test]
async fn a_digest_nonce_answers_many_calls_but_a_replayed_count_is_refused() {
    let t = TestSim::start().await;
    let session = diqwest::DigestAuthSession::new(KEY.0, KEY.1);
    for _ in 0..3 {
        let resp = t
            .client
            .delete(t.url(&jwks_path()))
            .header("accept", V_JWKS)
            .send_digest_auth(&session)
            .await
            .expect("digest call");
        assert_eq!(resp.status(), 204);
    }
    let target = format!("DELETE {}", jwks_path());
    let calls = t.calls().await;
    assert_eq!(
        calls["countsByStatus"][&target],
        json!({"401": 1, "204": 3}),
        "one challenge for three calls"
    );
    assert_eq!(jwks_revocations(&t.state().await), 3);

    // The same Authorization header again (nonce and count reused): refused, nothing revoked.
    let challenge = t
        .client
        .delete(t.url(&jwks_path()))
        .header("accept", V_JWKS)
        .send()
        .await
        .expect("call");
    let www = challenge.headers()["www-authenticate"].to_str().unwrap().to_string();
    let nonce = www
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let path = jwks_path();
    let response = crate::digest::expected_response(
        KEY.0,
        crate::digest::REALM,
        KEY.1,
        "DELETE",
        &path,
        &nonce,
        "00000001",
        "c1",
        "auth",
    );
    let header = format!(
        r#"Digest username="{}", realm="{}", nonce="{nonce}", uri="{path}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c1", response="{response}""#,
        KEY.0,
        crate::digest::REALM
    );
    let send = || {
        t.client
            .delete(t.url(&path))
            .header("accept", V_JWKS)
            .header("authorization", header.clone())
            .send()
    };
    assert_eq!(send().await.expect("call").status(), 204);
    let replay = send().await.expect("call");
    assert_eq!(replay.status(), 401);
    let www = replay.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.contains("stale=true"), "{www}");
    assert_eq!(jwks_revocations(&t.state().await), 4);
    t.stop().await;
}

#[tokio::test]
async fn atlas_challenge_versions_ids_and_not_found() {
    let t = TestSim::start().await;
    let resp = t
        .client
        .delete(t.url(&jwks_path()))
        .header("accept", V_JWKS)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("challenge")
        .to_string();
    assert!(challenge.starts_with("Digest realm=\"MMS Public API\""));
    assert!(challenge.contains("qop=\"auth\""));
    assert!(challenge.contains("nonce=\""));
    let body = json_of(resp).await;
    assert_eq!(body["error"], 401);
    assert_eq!(body["reason"], "Unauthorized");

    // Wrong version: 406.
    let resp = t
        .client
        .delete(t.url(&jwks_path()))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send_digest_auth(KEY)
        .await
        .expect("call");
    assert_eq!(resp.status(), 406);
    let body = json_of(resp).await;
    assert_eq!(body["errorCode"], "INVALID_VERSION_DATE");
    assert_eq!(body["error"], 406);
    assert_eq!(jwks_revocations(&t.state().await), 0);

    let token = atlas_token(&t).await;
    // Not 24-hex: 400.
    let resp = t
        .client
        .delete(t.url(&format!(
            "/api/atlas/v2/federationSettings/{FED}/identityProviders/abc/jwks"
        )))
        .header("accept", V_JWKS)
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["errorCode"], "INVALID_ATTRIBUTE");
    // Unknown IdP: 404.
    let resp = t
        .client
        .delete(t.url(&format!(
            "/api/atlas/v2/federationSettings/{FED}/identityProviders/aaaaaaaaaaaaaaaaaaaaaaaa/jwks"
        )))
        .header("accept", V_JWKS)
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(resp).await["errorCode"], "RESOURCE_NOT_FOUND");

    // X.509: enabled; an undocumented version is refused with 406; disable with 2023-01-01
    // (202), then the CA is gone.
    let us = format!("/api/atlas/v2/groups/{GROUP}/userSecurity");
    let resp = t
        .client
        .get(t.url(&us))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send_digest_auth(KEY)
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    assert!(json_of(resp).await["customerX509"]["cas"].is_string());
    let resp = t
        .client
        .delete(t.url(&format!("{us}/customerX509")))
        .header("accept", "application/vnd.atlas.2025-03-12+json")
        .send_digest_auth(KEY)
        .await
        .expect("call");
    assert_eq!(resp.status(), 406);
    assert_eq!(json_of(resp).await["errorCode"], "INVALID_VERSION_DATE");
    let resp = t
        .client
        .delete(t.url(&format!("{us}/customerX509")))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send_digest_auth(KEY)
        .await
        .expect("call");
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/vnd.atlas.2023-01-01+json;charset=utf-8")
    );
    assert_eq!(json_of(resp).await["customerX509"], json!({}));
    let resp = t
        .client
        .delete(t.url("/api/atlas/v2/groups/bbbbbbbbbbbbbbbbbbbbbbbb/userSecurity/customerX509"))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 404);

    // Credential check.
    let resp = t
        .client
        .get(t.url("/api/atlas/v2/orgs"))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["totalCount"], 0);
    t.stop().await;
}

#[tokio::test]
async fn status_fault_twice_then_success() {
    let t = TestSim::start().await;
    let token = atlas_token(&t).await;
    t.fault(json!({
        "match": {"method": "DELETE", "path": jwks_path()},
        "kind": "status", "status": 503, "times": 2
    }))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = t
            .client
            .delete(t.url(&jwks_path()))
            .header("accept", V_JWKS)
            .bearer_auth(&token)
            .send()
            .await
            .expect("call");
        let status = resp.status().as_u16();
        if status == 503 {
            let body = json_of(resp).await;
            assert_eq!(body["error"], 503);
            assert!(body["errorCode"].is_string());
        }
        statuses.push(status);
    }
    assert_eq!(statuses, vec![503, 503, 204]);
    assert_eq!(jwks_revocations(&t.state().await), 1);
    assert_eq!(t.admin(reqwest::Method::GET, "/_sim/faults", None).await, json!([]));

    // Atlas 429 carries Retry-After.
    t.fault(
        json!({"match": {"path": "/api/atlas/v2/orgs"}, "kind": "status", "status": 429, "retryAfter": 7, "times": 1}),
    )
    .await;
    let resp = t
        .client
        .get(t.url("/api/atlas/v2/orgs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(json_of(resp).await["errorCode"], "RATE_LIMITED_TOKEN_BUCKET");
    t.stop().await;
}

#[tokio::test]
async fn reset_fault_gives_a_client_connection_error() {
    let t = TestSim::start().await;
    let token = atlas_token(&t).await;
    t.fault(json!({"match": {"method": "GET", "path": "/api/atlas/v2/orgs"}, "kind": "reset", "times": 1}))
        .await;
    let result = new_client()
        .get(t.url("/api/atlas/v2/orgs"))
        .bearer_auth(&token)
        .send()
        .await;
    let err = result.expect_err("the connection must be reset, not answered");
    assert!(!err.is_timeout(), "reset, not timeout: {err:?}");
    assert!(err.status().is_none());
    // The next call is answered again.
    let resp = new_client()
        .get(t.url("/api/atlas/v2/orgs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    let calls = t.calls().await;
    let orgs: Vec<&Value> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["path"] == "/api/atlas/v2/orgs")
        .collect();
    assert_eq!(orgs.len(), 2);
    assert_eq!(orgs[0]["outcome"], "reset");
    assert_eq!(orgs[1]["status"], 200);

    // phase "after": the effect happens, the answer is lost.
    t.fault(
        json!({"match": {"method": "DELETE", "path": format!("/api/atlas/v2/groups/{GROUP}/userSecurity/customerX509")},
                   "kind": "reset", "phase": "after", "times": 1}),
    )
    .await;
    let result = new_client()
        .delete(t.url(&format!("/api/atlas/v2/groups/{GROUP}/userSecurity/customerX509")))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .bearer_auth(&token)
        .send()
        .await;
    assert!(result.is_err());
    let state = t.state().await;
    assert_eq!(state["atlas"]["projects"][0]["customerX509Enabled"], false);
    assert_eq!(state["atlas"]["projects"][0]["x509Disables"], 1);
    t.stop().await;
}

async fn infisical_login(t: &TestSim) -> String {
    let resp = t
        .client
        .post(t.url("/api/v1/auth/universal-auth/login"))
        .json(&json!({"clientId": "sim-client-id", "clientSecret": "sim-client-secret"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["tokenType"], "Bearer");
    assert!(body["expiresIn"].as_u64().is_some());
    assert!(body["accessTokenMaxTTL"].as_u64().is_some());
    body["accessToken"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn infisical_auth_methods_tokens_and_client_secrets() {
    let t = TestSim::start().await;
    let resp = t
        .client
        .post(t.url("/api/v1/auth/universal-auth/login"))
        .json(&json!({"clientId": "sim-client-id", "clientSecret": "nope"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 401);
    let body = json_of(resp).await;
    assert_eq!(body["error"], "UnauthorizedError");
    assert_eq!(body["message"], "Invalid credentials");

    let token = infisical_login(&t).await;
    let azure = format!("/api/v1/auth/azure-auth/identities/{TARGET}");
    let resp = t.client.delete(t.url(&azure)).send().await.expect("call");
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["message"], "Token missing");

    let resp = t
        .client
        .delete(t.url(&azure))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["identityAzureAuth"]["identityId"], TARGET);
    let resp = t
        .client
        .delete(t.url(&azure))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    let body = json_of(resp).await;
    assert_eq!(body["error"], "BadRequest");
    assert_eq!(body["statusCode"], 400);
    assert_eq!(body["message"], "The identity does not have azure auth");
    assert!(body["reqId"].as_str().is_some_and(|r| r.starts_with("req-")));

    let resp = t
        .client
        .delete(t.url("/api/v1/auth/gcp-auth/identities/unknown-id"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        json_of(resp).await["message"],
        "Failed to find identity with ID unknown-id"
    );

    // Every other method is still readable.
    for (method, key) in crate::state::INFISICAL_METHODS {
        let resp = t
            .client
            .get(t.url(&format!("/api/v1/auth/{method}/identities/{TARGET}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("call");
        if method == "azure-auth" {
            assert_eq!(resp.status(), 400);
        } else {
            assert_eq!(resp.status(), 200, "{method}");
            assert!(json_of(resp).await[key].is_object(), "{method}");
        }
    }

    // Token revocation.
    let revoke = |tok: &str| {
        t.client
            .post(t.url("/api/v1/auth/token/revoke"))
            .json(&json!({"accessToken": tok}))
            .send()
    };
    let resp = revoke("sim-token-to-revoke").await.expect("call");
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["message"], "Successfully revoked access token");
    let resp = revoke("sim-token-to-revoke").await.expect("call");
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["message"], "No identity access token found");
    let resp = revoke("never-issued").await.expect("call");
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["error"], "TokenError");
    let resp = t
        .client
        .post(t.url("/api/v1/auth/token/revoke"))
        .json(&json!({}))
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 422);
    assert_eq!(json_of(resp).await["error"], "ValidationFailure");

    // Client secret revocation.
    let cs = format!("/api/v1/auth/universal-auth/identities/{TARGET}/client-secrets/{CLIENT_SECRET_ID}");
    let resp = t
        .client
        .post(t.url(&format!("{cs}/revoke")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["clientSecretData"]["isClientSecretRevoked"], true);
    assert_eq!(body["clientSecretData"]["id"], CLIENT_SECRET_ID);
    let resp = t
        .client
        .get(t.url(&cs.replace(CLIENT_SECRET_ID, "nope")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 404);

    // Rate limit fault.
    t.fault(json!({"match": {"path": "/api/v1/auth"}, "kind": "status", "status": 429, "retryAfter": 7, "times": 1}))
        .await;
    let resp = t
        .client
        .get(t.url(&format!("/api/v1/auth/aws-auth/identities/{TARGET}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 429);
    let body = json_of(resp).await;
    assert_eq!(body["error"], "RateLimitExceeded");
    assert_eq!(body["statusCode"], 429);
    assert_eq!(body["message"], "Rate limit exceeded. Please try again in 7 seconds");

    // Expired login tokens are refused.
    t.admin(reqwest::Method::POST, "/_sim/tokens/expire", None).await;
    let resp = t
        .client
        .get(t.url(&format!("/api/v1/auth/aws-auth/identities/{TARGET}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["error"], "TokenError");
    t.stop().await;
}

#[tokio::test]
async fn onezone_temporary_and_named_tokens() {
    let t = TestSim::start().await;
    let oz = |p: &str| t.url(&format!("/api/v3/onezone{p}"));
    let resp = t
        .client
        .get(oz("/user"))
        .header("x-auth-token", OZ_ADMIN)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["userId"], OZ_ADMIN_USER);

    let resp = t.client.get(oz("/user")).send().await.expect("call");
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["id"], "unauthorized");

    // The temporary token works until its user's temporary tokens are revoked.
    let resp = t
        .client
        .get(oz("/user"))
        .bearer_auth("sim-onezone-temporary-token")
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 200);
    let resp = t
        .client
        .delete(oz(&format!("/users/{OZ_USER}/tokens/temporary")))
        .header("x-auth-token", OZ_ADMIN)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 204);
    let resp = t
        .client
        .get(oz(&format!("/users/{OZ_USER}/tokens/temporary")))
        .header("x-auth-token", OZ_ADMIN)
        .send()
        .await
        .expect("call");
    assert_eq!(json_of(resp).await, json!({"generation": 1}));
    let resp = t
        .client
        .get(oz("/user"))
        .bearer_auth("sim-onezone-temporary-token")
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 401);

    // A plain user may not revoke another user's tokens; unknown users are 404.
    let resp = t
        .client
        .delete(oz(&format!("/users/{OZ_ADMIN_USER}/tokens/temporary")))
        .header("x-auth-token", "sim-onezone-user-token")
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["error"]["id"], "forbidden");
    let resp = t
        .client
        .delete(oz("/users/00000000000000000000000000000000/tokens/temporary"))
        .header("x-auth-token", OZ_ADMIN)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 404);
    assert_eq!(json_of(resp).await["error"]["id"], "notFound");
    let resp = t
        .client
        .delete(oz("/user/tokens/temporary"))
        .header("x-auth-token", "sim-onezone-user-token")
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 204);

    // Named token: revoke (PATCH), read, delete, then 404.
    let named = oz(&format!("/tokens/named/{NAMED}"));
    let resp = t
        .client
        .patch(&named)
        .header("x-auth-token", OZ_ADMIN)
        .json(&json!({"revoked": "yes"}))
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"]["id"], "badValueBoolean");
    let resp = t
        .client
        .patch(&named)
        .header("x-auth-token", OZ_ADMIN)
        .json(&json!({"revoked": true}))
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 204);
    let resp = t
        .client
        .get(&named)
        .header("x-auth-token", OZ_ADMIN)
        .send()
        .await
        .expect("call");
    let body = json_of(resp).await;
    assert_eq!(body["id"], NAMED);
    assert_eq!(body["revoked"], true);
    let resp = t
        .client
        .get(oz("/user"))
        .header("x-auth-token", "sim-onezone-named-token")
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 401);
    for expected in [204, 404] {
        let resp = t
            .client
            .delete(&named)
            .header("x-auth-token", OZ_ADMIN)
            .send()
            .await
            .expect("call");
        assert_eq!(resp.status(), expected);
    }
    let state = t.state().await;
    assert_eq!(state["onezone"]["namedTokens"][0]["deleted"], true);
    t.stop().await;
}

#[tokio::test]
async fn admin_state_calls_and_reset() {
    let t = TestSim::start().await;
    // Patch in a second project, then revoke on it.
    t.admin(
        reqwest::Method::PATCH,
        "/_sim/state",
        Some(json!({"atlas": {"projects": [{"groupId": "cccccccccccccccccccccccc"}]}})),
    )
    .await;
    let resp = t
        .client
        .delete(t.url("/api/atlas/v2/groups/cccccccccccccccccccccccc/userSecurity/customerX509"))
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send_digest_auth(KEY)
        .await
        .expect("call");
    assert_eq!(resp.status(), 202);
    let filtered = t
        .admin(
            reqwest::Method::GET,
            "/_sim/calls?method=DELETE&pathPrefix=/api/atlas/v2/groups/cccc",
            None,
        )
        .await;
    assert_eq!(filtered["total"], 2);
    // A bad seed is refused and changes nothing.
    let resp = t
        .client
        .put(t.url("/_sim/state"))
        .body(r#"{"atlas":{"projects":[{"groupId":"not-hex"}]}}"#)
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    assert_eq!(t.state().await["atlas"]["projects"].as_array().map(Vec::len), Some(2));
    // Reset: back to the seed, calls and faults cleared.
    t.fault(json!({"match": {"path": "/"}, "kind": "latency", "latencyMs": 1}))
        .await;
    t.admin(reqwest::Method::POST, "/_sim/reset", None).await;
    assert_eq!(t.calls().await["total"], 0);
    assert_eq!(t.admin(reqwest::Method::GET, "/_sim/faults", None).await, json!([]));
    assert_eq!(t.state().await["atlas"]["projects"].as_array().map(Vec::len), Some(1));
    t.stop().await;
}
