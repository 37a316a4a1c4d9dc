//! Reconciler scenarios against a mocked API server (the kube-rs/controller-rs "ApiServerVerifier"
//! pattern) and a scripted fake provider.
//!
//! Each test runs `revocation::reconcile` while a scenario answers the API requests it expects, in
//! order, and asserts each one: method, path, and the JSON body of status writes and Events. The
//! fake provider counts its calls, so the tests also prove when the provider is (not) called.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::client::Body;
use kube::runtime::controller::Action;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::time::timeout;

use super::registry::ProviderStores;
use super::resources::Revocation;
use super::revocation::{self, WAIT_RECHECK};
use super::{Context, Error, ProviderRegistry};
use crate::api::{JwksRevocation, ProviderType, RevocationProvider, TokenRevocation};
use crate::outcome::full_fingerprint;
use crate::providers::http::HttpSettings;
use crate::providers::{AttemptContext, Operation, Outcome, OutcomeKind, Provider, ProviderError, Reason, fingerprint};

mod executor;
mod hot_path;
mod ids_from_objects;

const NS: &str = "team-a";
const NAME: &str = "rotate-idp";
const FED: &str = "0123456789abcdef01234567";
const IDP: &str = "89abcdef0123456789abcdef";
/// A secret value that must never reach status, Events or any other request body.
const SECRET_VALUE: &str = "SUPER-SECRET-VALUE-123";
/// Upper bound of every wait: a broken test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(5);
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/team-a/events";

// ---------------------------------------------------------------------------------------------
// Fake provider
// ---------------------------------------------------------------------------------------------

/// A provider answering from a script and counting its calls.
struct FakeProvider {
    kind: ProviderType,
    script: Mutex<VecDeque<Result<Outcome, ProviderError>>>,
    revokes: AtomicUsize,
    dry_runs: AtomicUsize,
    /// `AttemptContext::earlier_attempt` of each `revoke` call.
    earlier: Mutex<Vec<bool>>,
    /// Token values received in `InfisicalRevokeToken` operations.
    tokens: Mutex<Vec<String>>,
    /// A pause the provider asked for (429/Retry-After).
    paused: Mutex<Option<Duration>>,
}

impl FakeProvider {
    fn new(kind: ProviderType, script: Vec<Result<Outcome, ProviderError>>) -> Arc<Self> {
        Arc::new(FakeProvider {
            kind,
            script: Mutex::new(script.into()),
            revokes: AtomicUsize::new(0),
            dry_runs: AtomicUsize::new(0),
            earlier: Mutex::new(vec![]),
            tokens: Mutex::new(vec![]),
            paused: Mutex::new(None),
        })
    }

    fn atlas(script: Vec<Result<Outcome, ProviderError>>) -> Arc<Self> {
        Self::new(ProviderType::Atlas, script)
    }

    fn next(&self) -> Result<Outcome, ProviderError> {
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .expect("the provider was called more often than scripted")
    }

    fn revokes(&self) -> usize {
        self.revokes.load(Ordering::SeqCst)
    }

    fn dry_runs(&self) -> usize {
        self.dry_runs.load(Ordering::SeqCst)
    }

    fn earlier(&self) -> Vec<bool> {
        self.earlier.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn provider_type(&self) -> ProviderType {
        self.kind
    }

    async fn revoke(&self, op: &Operation, ctx: AttemptContext) -> Result<Outcome, ProviderError> {
        self.revokes.fetch_add(1, Ordering::SeqCst);
        self.earlier.lock().unwrap().push(ctx.earlier_attempt);
        if let Operation::InfisicalRevokeToken { token, .. } = op {
            let value = token.expose_secret().to_string();
            self.tokens.lock().unwrap().push(value);
        }
        self.next()
    }

    async fn dry_run(&self, _op: &Operation) -> Result<Outcome, ProviderError> {
        self.dry_runs.fetch_add(1, Ordering::SeqCst);
        self.next()
    }

    async fn check_credentials(&self) -> Result<&'static str, ProviderError> {
        Ok("digest")
    }

    fn paused_for(&self) -> Option<Duration> {
        *self.paused.lock().unwrap()
    }
}

fn outcome(kind: OutcomeKind, message: &str) -> Result<Outcome, ProviderError> {
    Ok(Outcome {
        kind,
        http_status: Some(202),
        request_id: Some("req-42".into()),
        message: message.into(),
    })
}

fn unavailable() -> Result<Outcome, ProviderError> {
    Err(
        ProviderError::transient(Reason::ProviderUnavailable, "Atlas answered 503", None).with_http(
            503,
            Some("req-503".into()),
            None,
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Test objects
// ---------------------------------------------------------------------------------------------

/// Builder of revocation objects (as JSON, deserialized at the end).
struct Rev(Value);

impl Rev {
    fn new(kind: &str, spec: Value) -> Self {
        Rev(json!({
            "apiVersion": "revoker.dev/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": NAME, "namespace": NS, "uid": "rev-uid", "generation": 1,
                "resourceVersion": "100",
            },
            "spec": spec,
        }))
    }

    fn jwks() -> Self {
        Self::new(
            "JwksRevocation",
            json!({
                "providerRef": {"name": "atlas"},
                "backoffLimit": 6,
                "atlas": {"federationSettingsId": FED, "identityProviderId": IDP},
            }),
        )
    }

    fn spec(mut self, key: &str, value: Value) -> Self {
        self.0["spec"][key] = value;
        self
    }

    fn status(mut self, status: Value) -> Self {
        self.0["status"] = status;
        self
    }

    fn build<K: serde::de::DeserializeOwned>(self) -> K {
        serde_json::from_value(self.0).expect("a valid test object")
    }
}

fn condition_json(type_: &str, status: &str, reason: &str) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": "earlier",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
    })
}

/// Status after a recorded attempt whose result was never written (a crash), or a retry.
fn running(attempts: i32, next_retry: Option<&str>) -> Value {
    let mut status = json!({
        "phase": "Running",
        "attempts": attempts,
        "startTime": "2026-01-01T00:00:00Z",
        "lastAttemptTime": "2026-01-01T00:00:00Z",
        "providerType": "atlas",
        "conditions": [condition_json("Succeeded", "Unknown", "Attempting")],
    });
    if let Some(at) = next_retry {
        status["nextRetryTime"] = json!(at);
    }
    status
}

/// A provider object whose credential check passed (the gate lets revocations through).
fn provider(name: &str, block: &str, secret: &str) -> Value {
    provider_with_ready(name, block, secret, "True", "CredentialsVerified")
}

fn provider_with_ready(name: &str, block: &str, secret: &str, ready: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "revoker.dev/v1alpha1",
        "kind": "RevocationProvider",
        "metadata": {"name": name, "namespace": NS, "uid": format!("{name}-uid"), "generation": 1, "resourceVersion": "7"},
        "spec": {block: {"credentialsSecretRef": {"name": secret}}},
        "status": {"conditions": [{
            "type": "Ready", "status": ready, "reason": reason, "message": "the provider said no",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
        }]},
    })
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "3"},
        "data": data,
    })
}

fn atlas_secret() -> Value {
    secret("atlas-creds", &[("publicKey", "pub-key"), ("privateKey", SECRET_VALUE)])
}

fn api_status(code: u16, reason: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{reason} (test)"), "reason": reason, "code": code,
    })
}

// ---------------------------------------------------------------------------------------------
// API server verifier
// ---------------------------------------------------------------------------------------------

type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Pending = tower_test::mock::SendResponse<Response<Body>>;

/// Answers the reconciler's API requests in order and asserts each one.
struct Verifier {
    handle: ApiHandle,
    pending: Option<Pending>,
    /// Path of the revocation's status subresource.
    status_path: String,
    /// resourceVersion the next status write must carry.
    rv: u64,
    /// Every request body received (for the secret-leak checks).
    bodies: Vec<String>,
}

impl Verifier {
    /// Take the next request, assert its method and path, and return its JSON body (Null if empty).
    async fn expect(&mut self, method: Method, path: &str) -> Value {
        assert!(self.pending.is_none(), "the previous request was not answered");
        let (request, send) = timeout(WAIT, self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request arrived; expected {method} {path}"))
            .unwrap_or_else(|| panic!("the client is gone; expected {method} {path}"));
        assert_eq!(
            (request.method(), request.uri().path()),
            (&method, path),
            "unexpected request"
        );
        let bytes = request.into_body().collect_bytes().await.expect("request body");
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 request body");
        self.bodies.push(text.clone());
        self.pending = Some(send);
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON request body")
        }
    }

    fn respond_with(&mut self, code: StatusCode, body: &Value) {
        let send = self.pending.take().expect("no request to answer");
        let bytes = serde_json::to_vec(body).expect("JSON");
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(bytes))
                .expect("response"),
        );
    }

    fn respond(&mut self, body: &Value) {
        self.respond_with(StatusCode::OK, body);
    }

    /// Answer with a Kubernetes `Status` error.
    fn fail(&mut self, code: u16, reason: &str) {
        let status = StatusCode::from_u16(code).expect("status code");
        self.respond_with(status, &api_status(code, reason));
    }

    /// No request arrives within a short while.
    async fn assert_idle(&mut self) {
        if let Ok(Some((request, _))) = timeout(Duration::from_millis(200), self.handle.next_request()).await {
            panic!("unexpected request {} {}", request.method(), request.uri().path());
        }
    }

    async fn get_provider(&mut self, body: Value) {
        let name = body["metadata"]["name"].as_str().expect("name").to_string();
        let path = format!("/apis/revoker.dev/v1alpha1/namespaces/{NS}/revocationproviders/{name}");
        self.expect(Method::GET, &path).await;
        self.respond(&body);
    }

    async fn get_secret(&mut self, body: Value) {
        let name = body["metadata"]["name"].as_str().expect("name").to_string();
        self.expect(Method::GET, &format!("/api/v1/namespaces/{NS}/secrets/{name}"))
            .await;
        self.respond(&body);
    }

    /// A status write: asserts the resourceVersion precondition, answers with the object (with a
    /// new resourceVersion) and returns the written status.
    async fn put_status(&mut self) -> Value {
        let path = self.status_path.clone();
        let mut body = self.expect(Method::PUT, &path).await;
        assert_eq!(
            body["metadata"]["resourceVersion"],
            json!(self.rv.to_string()),
            "a status write carries the resourceVersion it was computed from"
        );
        self.rv += 1;
        body["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.respond(&body);
        body["status"].clone()
    }

    /// An Event about the revocation; returns its body.
    async fn event(&mut self, type_: &str, reason: &str) -> Value {
        let body = self.expect(Method::POST, EVENTS_PATH).await;
        assert_eq!(
            (body["type"].as_str(), body["reason"].as_str()),
            (Some(type_), Some(reason)),
            "event {body}"
        );
        assert_eq!(body["regarding"]["name"], json!(NAME));
        self.respond(&body);
        body
    }

    /// No request body holds the secret value, plain or base64.
    fn assert_no_secret_leaked(&self) {
        for body in &self.bodies {
            assert!(
                !body.contains(SECRET_VALUE) && !body.contains(&b64(SECRET_VALUE)),
                "a secret value leaked into a request: {body}"
            );
        }
    }
}

/// A context whose API server is the returned verifier and whose provider clients are `fake`.
fn setup<K: Revocation>(fake: &Arc<FakeProvider>) -> (Arc<Context>, Verifier) {
    setup_watching::<K>(fake, &[])
}

/// As `setup`, with `providers` in the registry's watched store (as `revoker run` has them).
fn setup_watching<K: Revocation>(fake: &Arc<FakeProvider>, providers: &[Value]) -> (Arc<Context>, Verifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let fake = fake.clone();
    let registry = ProviderRegistry::with_factory(
        client.clone(),
        "revoker-system".into(),
        HttpSettings::default(),
        Box::new(move |_, _, _| Ok(fake.clone() as Arc<dyn Provider>)),
    )
    .with_stores(watched(providers));
    let verifier = Verifier {
        handle,
        pending: None,
        status_path: format!("{}/{NAME}/status", K::url_path(&(), Some(NS))),
        rv: 100,
        bodies: vec![],
    };
    (
        Context::new(client, registry, test_instance(), crate::audit::Auditor::default()),
        verifier,
    )
}

/// The operator instance of the scenarios.
fn test_instance() -> super::executor::Instance {
    super::executor::Instance {
        identity: "revoker-test".into(),
        lease: Some(("revoker-system".into(), "revoker-leader".into())),
    }
}

fn watched(providers: &[Value]) -> ProviderStores {
    let (store, mut writer) = kube::runtime::reflector::store::<RevocationProvider>();
    for provider in providers {
        let provider = serde_json::from_value(provider.clone()).expect("a RevocationProvider");
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(provider));
    }
    ProviderStores {
        namespaced: vec![store],
        cluster: None,
    }
}

/// Reconcile `obj` while `scenario` plays the API server; both bounded by a timeout.
async fn reconcile<K: Revocation>(
    obj: K,
    ctx: Arc<Context>,
    scenario: impl Future<Output = Verifier>,
) -> (Result<Action, Error>, Verifier) {
    timeout(WAIT * 2, async {
        tokio::join!(revocation::reconcile(Arc::new(obj), ctx), scenario)
    })
    .await
    .expect("reconcile and scenario finish in time")
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
}

/// Assert a condition's status and reason.
fn assert_condition(status: &Value, type_: &str, expected: &str, reason: &str) {
    let c = condition(status, type_).unwrap_or_else(|| panic!("no {type_} condition: {status}"));
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some(expected), Some(reason)),
        "{type_} condition of {status}"
    );
}

fn timestamp(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .expect("RFC 3339 timestamp")
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn happy_path_records_the_attempt_calls_once_and_reports_revoked() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let seen = fake.clone();
    let (result, v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;

        let attempt = v.put_status().await;
        assert_eq!(seen.revokes(), 0, "the attempt is recorded before the call");
        assert_eq!(attempt["phase"], "Running");
        assert_eq!(attempt["attempts"], 1);
        assert_condition(&attempt, "Succeeded", "Unknown", "Attempting");
        assert!(attempt["startTime"].is_string() && attempt["lastAttemptTime"].is_string());
        assert_eq!(attempt["providerType"], "atlas");
        assert!(attempt["target"].as_str().unwrap().contains(IDP));
        assert!(attempt.get("completionTime").is_none());

        let done = v.put_status().await;
        assert_eq!(seen.revokes(), 1);
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(done["attempts"], 1);
        assert_condition(&done, "Succeeded", "True", "Revoked");
        assert!(condition(&done, "Failed").is_none());
        assert!(done["completionTime"].is_string());
        assert_eq!(
            done["providerResult"],
            json!({"operation": "revokeJwksFromIdentityProvider", "httpStatus": 202, "requestId": "req-42"})
        );
        let event = v.event("Normal", "Revoked").await;
        assert_eq!(event["note"], "revoked the JWKS (revocation attempt 1 of at most 7)");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1, "the provider is called exactly once");
    assert_eq!(fake.dry_runs(), 0);
    assert_eq!(fake.earlier(), vec![false], "a first attempt is not a repeat");
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_watched_provider_is_resolved_from_the_cache_without_an_api_request() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let (result, v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        // The first request is the credentials Secret: no GET of the provider object.
        v.get_secret(atlas_secret()).await;
        assert_eq!(v.put_status().await["phase"], "Running");
        assert_eq!(v.put_status().await["phase"], "Succeeded");
        v.event("Normal", "Revoked").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1);
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_provider_not_yet_in_the_cache_is_read_from_the_api_server() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup_watching::<JwksRevocation>(&fake, &[provider("other", "atlas", "atlas-creds")]);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        assert_eq!(v.put_status().await["phase"], "Running");
        assert_eq!(v.put_status().await["phase"], "Succeeded");
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1);
}

#[tokio::test]
async fn a_cache_that_has_not_seen_our_own_write_waits_instead_of_planning_again() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let original = Rev::jwks().build::<JwksRevocation>();
    let (result, mut v) = reconcile(original.clone(), ctx.clone(), async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        v.put_status().await;
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    // The watch delivers the version our first write replaced: no request, no plan, a short wait.
    let (result, mut v) = reconcile(original, ctx.clone(), async move {
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(
        result.expect("stale reconcile"),
        Action::requeue(Duration::from_secs(1))
    );
    // Any other version is not stale: here someone else's, of a finished revocation.
    let mut theirs = Rev::jwks()
        .status(json!({"phase": "Succeeded", "attempts": 1}))
        .build::<JwksRevocation>();
    theirs.metadata.resource_version = Some("555".into());
    let (result, _) = reconcile(theirs, ctx, async move {
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("fresh reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1, "the stale reconcile called nothing");
}

#[tokio::test]
async fn a_finished_revocation_is_never_executed_again() {
    for (phase, condition) in [
        ("Succeeded", condition_json("Succeeded", "True", "Revoked")),
        ("Failed", condition_json("Succeeded", "False", "Forbidden")),
    ] {
        let obj: JwksRevocation = Rev::jwks()
            .status(json!({
                "phase": phase, "attempts": 1, "conditions": [condition],
                "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:01Z",
            }))
            .build();
        // A fresh context each round: what a restarted operator sees.
        for _restart in 0..2 {
            let fake = FakeProvider::atlas(vec![]);
            let (ctx, v) = setup::<JwksRevocation>(&fake);
            let (result, _) = reconcile(obj.clone(), ctx, async move {
                let mut v = v;
                v.assert_idle().await;
                v
            })
            .await;
            assert_eq!(result.expect("reconcile"), Action::await_change(), "{phase}");
            assert_eq!((fake.revokes(), fake.dry_runs()), (0, 0), "{phase}");
        }
    }
}

#[tokio::test]
async fn a_finished_revocation_is_deleted_once_its_ttl_passed_without_calling_the_provider() {
    let obj: JwksRevocation = Rev::jwks()
        .spec("ttlSecondsAfterFinished", json!(60))
        .status(json!({
            "phase": "Succeeded", "attempts": 1,
            "conditions": [condition_json("Succeeded", "True", "Revoked")],
            "completionTime": "2020-01-01T00:00:00Z",
        }))
        .build();
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, _) = reconcile(obj.clone(), ctx, async move {
        let path = format!("/apis/revoker.dev/v1alpha1/namespaces/{NS}/jwksrevocations/{NAME}");
        let body = v.expect(Method::DELETE, &path).await;
        assert_eq!(
            body["preconditions"]["uid"], "rev-uid",
            "only this object is deleted, not a newer one of the same name"
        );
        v.respond(&serde_json::to_value(&obj).unwrap());
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_conflicting_attempt_write_does_not_call_the_provider() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked")]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let path = v.status_path.clone();
        let body = v.expect(Method::PUT, &path).await;
        assert_eq!(body["metadata"]["resourceVersion"], "100");
        assert_eq!(body["status"]["attempts"], 1);
        v.fail(409, "Conflict");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(
        result.expect("a conflict is not an error"),
        Action::requeue(Duration::from_secs(1))
    );
    assert_eq!(fake.revokes(), 0, "a stale object cannot start a second call");
}

#[tokio::test]
async fn a_missing_credentials_secret_waits_without_burning_attempts() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let written = Arc::new(Mutex::new(Value::Null));
    let keep = written.clone();
    let (result, v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.expect(Method::GET, &format!("/api/v1/namespaces/{NS}/secrets/atlas-creds"))
            .await;
        v.fail(404, "NotFound");
        let status = v.put_status().await;
        *keep.lock().unwrap() = status.clone();
        assert_eq!(status["phase"], "Pending");
        assert_eq!(status["attempts"], 0);
        assert_condition(&status, "Succeeded", "Unknown", "CredentialsUnavailable");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains("team-a/atlas-creds"), "says which Secret: {message}");
        let event = v.event("Warning", "CredentialsUnavailable").await;
        assert_eq!(event["action"], "Wait");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::requeue(WAIT_RECHECK));
    assert_eq!(fake.revokes(), 0);
    drop(v);

    // Still missing on the next look at the status just written: nothing is written again (no
    // status churn, no Event spam).
    let status = written.lock().unwrap().clone();
    assert!(status["conditions"].as_array().is_some_and(|c| !c.is_empty()));
    let waiting = Rev::jwks().status(status).build::<JwksRevocation>();
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, _) = reconcile(waiting, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.expect(Method::GET, &format!("/api/v1/namespaces/{NS}/secrets/atlas-creds"))
            .await;
        v.fail(404, "NotFound");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::requeue(WAIT_RECHECK));
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_transient_error_with_retries_left_schedules_a_retry() {
    let fake = FakeProvider::atlas(vec![unavailable()]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let before = Timestamp::now();
    let obj = Rev::jwks().spec("backoffLimit", json!(3)).build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["attempts"], 1);
        assert_condition(&status, "Succeeded", "Unknown", "ProviderUnavailable");
        assert!(condition(&status, "Failed").is_none());
        assert!(status.get("completionTime").is_none());
        assert_eq!(status["providerResult"]["httpStatus"], 503);
        let due = timestamp(&status["nextRetryTime"]);
        let after = Timestamp::now();
        assert!(
            due >= before + SignedDuration::from_secs(1) && due <= after + SignedDuration::from_secs(5),
            "the first retry is due in 2-4s: {due}"
        );
        let event = v.event("Warning", "ProviderUnavailable").await;
        let note = event["note"].as_str().unwrap();
        assert!(note.starts_with("revocation attempt 1 of at most 4 failed: "), "{note}");
        assert!(note.contains("; retry in"), "{note}");
        v.assert_idle().await;
        v
    })
    .await;
    let action = result.expect("reconcile");
    assert_ne!(action, Action::await_change(), "the retry is requeued");
    assert_ne!(action, Action::requeue(WAIT_RECHECK));
    assert_eq!(fake.revokes(), 1);
}

#[tokio::test]
async fn a_retry_is_not_made_before_it_is_due() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let due = Timestamp::now() + SignedDuration::from_secs(120);
    let obj = Rev::jwks()
        .status(running(1, Some(&due.to_string())))
        .build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.assert_idle().await;
        v
    })
    .await;
    let action = result.expect("reconcile");
    assert_ne!(action, Action::await_change());
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_transient_error_on_the_last_retry_fails_with_backoff_limit_exceeded() {
    let fake = FakeProvider::atlas(vec![unavailable()]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    // backoffLimit 1: one first attempt (done) plus one retry (this one).
    let obj = Rev::jwks()
        .spec("backoffLimit", json!(1))
        .status(running(1, Some("2020-01-01T00:00:05Z")))
        .build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let attempt = v.put_status().await;
        assert_eq!(attempt["attempts"], 2);
        assert!(attempt.get("nextRetryTime").is_none());
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["attempts"], 2);
        assert_condition(&status, "Succeeded", "False", "BackoffLimitExceeded");
        assert_condition(&status, "Failed", "True", "BackoffLimitExceeded");
        assert!(status["completionTime"].is_string());
        assert!(status.get("nextRetryTime").is_none());
        assert!(status["message"].as_str().unwrap().contains("gave up after 2 attempts"));
        v.event("Warning", "BackoffLimitExceeded").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1);
}

#[tokio::test]
async fn an_exhausted_retry_budget_fails_without_calling_the_provider() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let obj = Rev::jwks()
        .spec("backoffLimit", json!(1))
        .status(running(2, None))
        .build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["attempts"], 2);
        assert_condition(&status, "Failed", "True", "BackoffLimitExceeded");
        v.event("Warning", "BackoffLimitExceeded").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_permanent_error_fails_at_once_with_the_specific_reason() {
    let forbidden = ProviderError::permanent(Reason::Forbidden, "the Atlas API key needs the Organization Owner role")
        .with_http(403, Some("req-403".into()), Some("USER_UNAUTHORIZED".into()));
    let fake = FakeProvider::atlas(vec![Err(forbidden)]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["attempts"], 1);
        assert_condition(&status, "Succeeded", "False", "Forbidden");
        assert_condition(&status, "Failed", "True", "Forbidden");
        assert!(status.get("nextRetryTime").is_none());
        assert!(status["completionTime"].is_string());
        assert!(status["message"].as_str().unwrap().contains("Organization Owner"));
        assert_eq!(
            status["providerResult"],
            json!({
                "operation": "revokeJwksFromIdentityProvider", "httpStatus": 403,
                "requestId": "req-403", "errorCode": "USER_UNAUTHORIZED",
            })
        );
        let event = v.event("Warning", "Forbidden").await;
        let note = event["note"].as_str().unwrap();
        assert!(note.starts_with("revocation attempt 1 of at most 7 failed: "), "{note}");
        assert!(note.contains("Organization Owner"), "{note}");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1, "no retry after a permanent error");
}

#[tokio::test]
async fn a_suspended_revocation_waits_without_touching_the_provider() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let obj = Rev::jwks().spec("suspend", json!(true)).build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        // The first request is the status write: not even the provider object is read.
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Pending");
        assert_eq!(status["attempts"], 0);
        assert_condition(&status, "Succeeded", "Unknown", "Suspended");
        assert!(status["message"].as_str().unwrap().contains("spec.suspend"));
        let target = status["target"].as_str().unwrap_or_default();
        assert!(
            target.contains(IDP),
            "the target is shown from the first look on: {target}"
        );
        let event = v.event("Normal", "Suspended").await;
        assert_eq!(event["action"], "Wait");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!((fake.revokes(), fake.dry_runs()), (0, 0));
}

#[tokio::test]
async fn a_dry_run_calls_dry_run_and_never_revoke() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::DryRun, "would revoke the JWKS")]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let obj = Rev::jwks().spec("dryRun", json!(true)).build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let attempt = v.put_status().await;
        assert_eq!(attempt["phase"], "Running");
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Succeeded");
        // A dry run never satisfies `kubectl wait --for=condition=Succeeded`.
        assert_condition(&status, "Succeeded", "Unknown", "DryRunSucceeded");
        assert_condition(&status, "DryRun", "True", "DryRunSucceeded");
        assert_condition(&status, "Ready", "True", "DryRunSucceeded");
        let event = v.event("Normal", "DryRunSucceeded").await;
        assert_eq!(event["note"], "would revoke the JWKS (dry run attempt 1 of at most 7)");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.dry_runs(), 1);
    assert_eq!(fake.revokes(), 0, "a dry run revokes nothing");
}

#[tokio::test]
async fn a_provider_of_the_wrong_type_fails_with_provider_mismatch() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<TokenRevocation>(&fake);
    let obj = Rev::new(
        "TokenRevocation",
        json!({
            "providerRef": {"name": "atlas"},
            "backoffLimit": 6,
            "onezone": {"scope": "UserTemporaryTokens", "userId": "user-1"},
        }),
    )
    .build::<TokenRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["attempts"], 0);
        assert_condition(&status, "Succeeded", "False", "ProviderMismatch");
        assert_condition(&status, "Failed", "True", "ProviderMismatch");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains("onezone") && message.contains("atlas"), "{message}");
        v.event("Warning", "ProviderMismatch").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn an_attempt_after_an_unrecorded_result_tells_the_provider_it_may_be_a_repeat() {
    // A crash after the call and before the result was written: status shows attempt 1 running.
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::AlreadyRevoked, "already gone")]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let obj = Rev::jwks().status(running(1, None)).build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        let attempt = v.put_status().await;
        assert_eq!(attempt["attempts"], 2, "the repeated call is visible");
        assert_eq!(
            attempt["startTime"], "2026-01-01T00:00:00Z",
            "start time stays the first attempt's"
        );
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Succeeded");
        assert_condition(&status, "Succeeded", "True", "AlreadyRevoked");
        v.event("Normal", "AlreadyRevoked").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.earlier(), vec![true]);
}

#[tokio::test]
async fn a_token_read_from_a_secret_reaches_the_provider_but_never_status_or_events() {
    let fake = FakeProvider::new(
        ProviderType::Infisical,
        vec![outcome(OutcomeKind::Revoked, "revoked the access token")],
    );
    let (ctx, mut v) = setup::<TokenRevocation>(&fake);
    let obj = Rev::new(
        "TokenRevocation",
        json!({
            "providerRef": {"name": "infisical"},
            "backoffLimit": 6,
            "infisical": {"scope": "AccessToken", "tokenSecretRef": {"name": "leaked", "key": "token"}},
        }),
    )
    .build::<TokenRevocation>();
    let (result, v) = reconcile(obj, ctx, async move {
        v.get_provider(provider("infisical", "infisical", "infisical-creds"))
            .await;
        v.get_secret(secret(
            "infisical-creds",
            &[("clientId", "id-1"), ("clientSecret", "client-secret-1")],
        ))
        .await;
        v.get_secret(secret("leaked", &[("token", SECRET_VALUE)])).await;
        let attempt = v.put_status().await;
        let shown = format!("access token {}", fingerprint(&SecretString::from(SECRET_VALUE)));
        assert_eq!(attempt["target"], json!(shown), "status shows a fingerprint");
        let pinned = full_fingerprint(&SecretString::from(SECRET_VALUE));
        assert_eq!(
            attempt["targetFingerprint"],
            json!(pinned),
            "the attempt pins the value it revokes"
        );
        let status = v.put_status().await;
        assert_condition(&status, "Succeeded", "True", "Revoked");
        v.event("Normal", "Revoked").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(*fake.tokens.lock().unwrap(), vec![SECRET_VALUE.to_string()]);
    assert!(!v.bodies.is_empty());
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn credentials_never_leak_into_status_or_events_on_failure() {
    let err = ProviderError::permanent(Reason::Unauthorized, "Atlas rejected the API key").with_http(401, None, None);
    let fake = FakeProvider::atlas(vec![Err(err)]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider("atlas", "atlas", "atlas-creds")).await;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        let status = v.put_status().await;
        assert_condition(&status, "Failed", "True", "Unauthorized");
        v.event("Warning", "Unauthorized").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(v.bodies.len(), 5);
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_provider_that_is_not_ready_holds_the_revocation_without_any_call() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(provider_with_ready(
            "atlas",
            "atlas",
            "atlas-creds",
            "False",
            "Unauthorized",
        ))
        .await;
        // No Secret read, no provider call: straight to the waiting status.
        let status = v.put_status().await;
        assert_eq!(
            (status["phase"].as_str(), status["attempts"].as_i64()),
            (Some("Pending"), Some(0))
        );
        assert_condition(&status, "Succeeded", "Unknown", "Unauthorized");
        assert_condition(&status, "Reconciling", "True", "Unauthorized");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("RevocationProvider team-a/atlas is not Ready")
                && message.contains("the provider said no"),
            "{message}"
        );
        v.event("Warning", "Unauthorized").await;
        v.assert_idle().await;
        v
    })
    .await;
    let action = result.expect("reconcile");
    assert_ne!(
        action,
        Action::requeue(WAIT_RECHECK),
        "woken by the provider watch, not polling"
    );
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_provider_checked_for_an_older_generation_holds_the_revocation() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let mut stale = provider("atlas", "atlas", "atlas-creds");
    stale["metadata"]["generation"] = json!(2);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        v.get_provider(stale).await;
        let status = v.put_status().await;
        assert_condition(&status, "Succeeded", "Unknown", "ProviderNotReady");
        v.event("Warning", "ProviderNotReady").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn an_id_the_schema_would_refuse_fails_before_any_lookup_or_call() {
    let fake = FakeProvider::atlas(vec![]);
    let (ctx, mut v) = setup::<JwksRevocation>(&fake);
    let mut rev = Rev::jwks();
    rev.0["spec"]["atlas"]["identityProviderId"] = json!("../../orgs");
    let (result, _) = reconcile(rev.build::<JwksRevocation>(), ctx, async move {
        // The first request is the final status write: no provider object, no Secret read.
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_condition(&status, "Failed", "True", "InvalidSpec");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("spec.atlas.identityProviderId"),
            "names the field: {message}"
        );
        v.event("Warning", "InvalidSpec").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!((fake.revokes(), fake.dry_runs()), (0, 0));
}

fn token_revocation(extra: Value) -> Rev {
    let mut spec = json!({
        "providerRef": {"name": "infisical"},
        "backoffLimit": 6,
        "infisical": {"scope": "AccessToken", "tokenSecretRef": {"name": "leaked", "key": "token"}},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    Rev::new("TokenRevocation", spec)
}

#[tokio::test]
async fn a_suspended_token_revocation_pins_the_value_it_first_saw() {
    let fake = FakeProvider::new(ProviderType::Infisical, vec![]);
    let (ctx, mut v) = setup::<TokenRevocation>(&fake);
    let obj = token_revocation(json!({"suspend": true})).build::<TokenRevocation>();
    let (result, v) = reconcile(obj, ctx, async move {
        v.get_secret(secret("leaked", &[("token", SECRET_VALUE)])).await;
        let status = v.put_status().await;
        assert_condition(&status, "Succeeded", "Unknown", "Suspended");
        assert_eq!(
            status["targetFingerprint"],
            json!(full_fingerprint(&SecretString::from(SECRET_VALUE)))
        );
        v.event("Normal", "Suspended").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_rotated_token_secret_is_never_revoked_in_place_of_the_pinned_value() {
    let fake = FakeProvider::new(ProviderType::Infisical, vec![]);
    let (ctx, mut v) = setup::<TokenRevocation>(&fake);
    let old = full_fingerprint(&SecretString::from("the-old-token-value"));
    let obj = token_revocation(json!({}))
        .status(json!({"phase": "Pending", "attempts": 0, "targetFingerprint": old}))
        .build::<TokenRevocation>();
    let (result, v) = reconcile(obj, ctx, async move {
        v.get_provider(provider("infisical", "infisical", "infisical-creds"))
            .await;
        v.get_secret(secret(
            "infisical-creds",
            &[("clientId", "id-1"), ("clientSecret", "client-secret-1")],
        ))
        .await;
        // The rotation wrote a new token into the Secret meanwhile.
        v.get_secret(secret("leaked", &[("token", SECRET_VALUE)])).await;
        let status = v.put_status().await;
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["attempts"], 0, "no attempt was made");
        assert_condition(&status, "Failed", "True", "TargetChanged");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("nothing was revoked") && message.contains("leaked"),
            "{message}"
        );
        v.event("Warning", "TargetChanged").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!(fake.revokes(), 0, "the new token was not revoked");
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_expected_fingerprint_pins_the_value_before_it_is_ever_read() {
    let fake = FakeProvider::new(ProviderType::Infisical, vec![]);
    let (ctx, mut v) = setup::<TokenRevocation>(&fake);
    let meant = full_fingerprint(&SecretString::from("the-value-the-pipeline-meant"));
    let obj = token_revocation(json!({
        "infisical": {"scope": "AccessToken", "tokenSecretRef": {"name": "leaked", "key": "token", "expectedFingerprint": meant}},
    }))
    .build::<TokenRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_provider(provider("infisical", "infisical", "infisical-creds"))
            .await;
        v.get_secret(secret(
            "infisical-creds",
            &[("clientId", "id-1"), ("clientSecret", "client-secret-1")],
        ))
        .await;
        v.get_secret(secret("leaked", &[("token", SECRET_VALUE)])).await;
        let status = v.put_status().await;
        assert_condition(&status, "Failed", "True", "TargetChanged");
        v.event("Warning", "TargetChanged").await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!(fake.revokes(), 0);
}
