//! The contract harness: client -> recording proxy -> `prism proxy --errors <contract>` ->
//! upstream (scripted answers, or the provider simulator). Prism validates each request (path,
//! method, parameters, body, presence of credentials) and each upstream answer (status, content
//! type, body) against the official contract and answers an error on a violation. Answers the
//! contracts do not list but providers send (406, 429) are validated against a copy of the
//! contract that gives them the operation's documented error body, and still reported as
//! undocumented (see `Allow`). The recording proxy checks what Prism does not:
//! undeclared query parameters, the `Accept` media type, the request `Content-Type`, and that the
//! credentials are valid ones of an allowed scheme, including the HTTP Digest answer to the
//! challenge it issues itself (Prism's own digest check rejects every real digest header).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use diqwest::WithDigestAuth;
use md5::{Digest, Md5};

use super::spec::{Contract, OperationSpec, Scheme};

/// Where the recording proxy's challenge comes from; any Digest answer must use this nonce.
const NONCE: &str = "6f1c0a2d9e8b7c5a";
const REALM: &str = "MMS Public API";
/// A header Prism's digest parser accepts; sent on only after the real answer was verified.
const PRISM_DIGEST: &str = r#"Digest username="pub" realm="mms" nonce="abc123" uri="x" response="r""#;
/// Prism's answer text for a status code the contract does not list (a warning, not an error).
const PRISM_UNDOCUMENTED_STATUS: &str = "Unable to match the returned status code";
/// Our own finding for the same (also for the statuses the defensive copy adds).
const UNDOCUMENTED_STATUS: &str = "is not in the official contract";
/// The path the client sent, for the forwarder: Prism passes on the path it validated.
const ORIGINAL_PATH: &str = "x-revoker-contract-original-path";
/// Statuses providers answer that the official contracts do not list for these operations: Atlas's
/// 406 for an unsupported version and every provider's 429. The defensive copy of a contract gives
/// them the operation's documented error body so that Prism still validates what comes back.
const DEFENSIVE_STATUSES: [&str; 2] = ["406", "429"];

pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/provider-specs")
}

/// What the scripted upstream received (after Prism).
pub struct UpstreamRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

impl UpstreamRequest {
    pub fn bearer(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    }
}

/// One scripted answer.
pub struct Canned {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Canned {
    pub fn json(status: u16, content_type: &'static str, body: serde_json::Value) -> Self {
        Canned {
            status,
            content_type: Some(content_type),
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Canned {
            status,
            content_type: None,
            body: String::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

pub type Script = Arc<dyn Fn(&UpstreamRequest) -> Canned + Send + Sync>;

/// What answers behind Prism.
pub enum Upstream {
    /// Scripted answers: the client's error paths on demand.
    Script(Script),
    /// The provider simulator at `url`. Prism only passes on a Digest header it can parse, so the
    /// forwarder signs those requests again for the simulator's own challenge with `digest`.
    Simulator {
        url: String,
        digest: Option<(String, String)>,
    },
}

/// The credential values a request may carry.
#[derive(Clone, Default)]
pub struct Secrets {
    pub bearer: Vec<String>,
    pub basic: Option<(String, String)>,
    pub digest: Option<(String, String)>,
    pub api_key: Option<String>,
}

/// One request the client sent, as the recording proxy saw it, and what came of it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub operation: String,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub accept: Option<String>,
    pub credentials: String,
    pub status: u16,
    pub violations: Vec<String>,
}

/// A violation a test expects on purpose.
#[derive(Clone, Copy)]
pub enum Allow {
    /// The upstream's answer has a status the contract does not list (defensive handling, e.g. 429).
    UndocumentedStatus(u16),
    /// The request's Accept names an undocumented version (the 406 path).
    UndocumentedAccept,
}

impl Exchange {
    pub fn unexpected_violations(&self, allowed: &[Allow]) -> Vec<String> {
        self.violations
            .iter()
            .filter(|v| {
                !allowed.iter().any(|a| match a {
                    Allow::UndocumentedStatus(code) => {
                        *code == self.status
                            && (v.contains(UNDOCUMENTED_STATUS) || v.contains(PRISM_UNDOCUMENTED_STATUS))
                    }
                    Allow::UndocumentedAccept => v.starts_with("undocumented Accept"),
                })
            })
            .cloned()
            .collect()
    }
}

struct Prism {
    child: Child,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prism_path() -> String {
    std::env::var("REVOKER_PRISM").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/revoker/prism-5.16.0/node_modules/.bin/prism")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_prism(spec: &Path, upstream: &str) -> (Prism, u16) {
    let prism = prism_path();
    assert!(
        Path::new(&prism).exists(),
        "Prism not found at {prism}: run hack/prism.sh install"
    );
    let port = free_port();
    let child = Command::new(&prism)
        .args(["proxy", "--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(spec)
        .arg(upstream)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prism");
    let prism = Prism { child };
    let deadline = Instant::now() + Duration::from_secs(90);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "prism did not listen within 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (prism, port)
}

/// Rewrites a request path to the documented route it is validated as (and says why).
pub type Alias = fn(&str) -> Option<String>;

pub struct Harness {
    pub url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    _prisms: Vec<Prism>,
    /// The defensive copies of the contracts, removed with the harness.
    copies: Vec<PathBuf>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for copy in &self.copies {
            let _ = std::fs::remove_file(copy);
        }
    }
}

struct Route {
    contract: Contract,
    prism_port: u16,
}

struct Front {
    routes: Vec<Route>,
    secrets: Secrets,
    alias: Option<Alias>,
    log: Arc<Mutex<Vec<Exchange>>>,
    client: reqwest::Client,
    /// Bearer tokens the upstream issued through the harness (logins, token requests).
    issued: Mutex<Vec<String>>,
    /// Whether the upstream answers an unsupported Atlas version itself (the simulator does).
    upstream_negotiates: bool,
}

impl Harness {
    /// Start one Prism proxy per contract file, all in front of the same upstream, and the
    /// recording proxy in front of them; `url` is the base URL to give the client.
    pub async fn start(files: &[&str], upstream: Upstream, secrets: Secrets, alias: Option<Alias>) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let upstream_negotiates = matches!(upstream, Upstream::Simulator { .. });
        let upstream = match upstream {
            Upstream::Script(script) => start_upstream(script).await,
            Upstream::Simulator { url, digest } => start_forwarder(url, digest).await,
        };
        let dir = contracts_dir();
        let mut prisms = Vec::new();
        let mut routes = Vec::new();
        let mut copies = Vec::new();
        for file in files {
            let defensive = defensive_copy(&dir, file);
            let (prism, prism_port) = start_prism(&defensive, &format!("http://127.0.0.1:{upstream}"));
            copies.push(defensive);
            prisms.push(prism);
            routes.push(Route {
                contract: Contract::load(&dir, file),
                prism_port,
            });
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let front = Arc::new(Front {
            routes,
            secrets,
            alias,
            log: log.clone(),
            client: reqwest::Client::new(),
            issued: Mutex::default(),
            upstream_negotiates,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new().fallback(move |req: Request| {
            let front = front.clone();
            async move { front.handle(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Harness {
            url: format!("http://127.0.0.1:{port}"),
            log,
            _prisms: prisms,
            copies,
        }
    }

    /// The exchanges recorded since the last call.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
}

/// Fail with every exchange that broke the contract in a way not allowed on purpose.
pub fn assert_valid(exchanges: &[Exchange], allowed: &[Allow]) {
    let broken: Vec<String> = exchanges
        .iter()
        .filter_map(|e| {
            let unexpected = e.unexpected_violations(allowed);
            (!unexpected.is_empty()).then(|| format!("{} {} ({}): {unexpected:?}", e.method, e.path, e.operation))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "requests or answers broke the contract:\n{}",
        broken.join("\n")
    );
}

impl Front {
    async fn handle(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let path = parts.uri.path().to_string();
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let validated_path = self
            .alias
            .and_then(|alias| alias(&path))
            .unwrap_or_else(|| path.clone());
        let mut exchange = Exchange {
            operation: String::from("(undocumented)"),
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            accept: header_text(&parts.headers, header::ACCEPT.as_str()),
            credentials: String::from("none"),
            status: 0,
            violations: Vec::new(),
        };
        let found = self.routes.iter().find_map(|route| {
            route
                .contract
                .operation(parts.method.as_str(), &validated_path)
                .map(|op| (route, op))
        });
        let Some((route, op)) = found else {
            exchange
                .violations
                .push(format!("no contract documents {} {validated_path}", parts.method));
            exchange.status = 404;
            return self.finish(exchange, plain(404, "undocumented route"));
        };
        exchange.operation = op.label.clone();
        exchange.violations.extend(check_query(&op, &query));
        exchange
            .violations
            .extend(check_accept(&op, exchange.accept.as_deref()));
        exchange
            .violations
            .extend(check_content_type(&op, &parts.headers, !body.is_empty()));
        let mut headers = parts.headers.clone();
        match self.check_credentials(&op, parts.method.as_str(), &parts.uri, &mut headers) {
            CredentialCheck::Challenge => {
                exchange.credentials = "none (digest challenge)".into();
                exchange.status = 401;
                return self.finish(exchange, digest_challenge());
            }
            CredentialCheck::Presented(scheme, problem) => {
                exchange.credentials = scheme;
                exchange.violations.extend(problem);
            }
        }
        if !self.upstream_negotiates && exchange.violations.iter().any(|v| v.starts_with("undocumented Accept")) {
            // What Atlas does with a version it does not serve; Prism would pass it on.
            exchange.status = 406;
            return self.finish(exchange, not_acceptable());
        }
        let target = format!(
            "http://127.0.0.1:{}{}",
            route.prism_port,
            prism_path_and_query(&route.contract, &validated_path, parts.uri.query())
        );
        let mut upstream = self.client.request(parts.method.clone(), target).body(body);
        // Prism passes on the path it validated (an alias, or without a Swagger basePath).
        upstream = upstream.header(ORIGINAL_PATH, &path);
        for (name, value) in &headers {
            if name != header::HOST {
                upstream = upstream.header(name, value);
            }
        }
        let response = match upstream.send().await {
            Ok(response) => response,
            Err(e) => {
                exchange.violations.push(format!("Prism did not answer: {e}"));
                return self.finish(exchange, plain(502, "prism unreachable"));
            }
        };
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        exchange.status = status;
        exchange.violations.extend(prism_findings(&response_headers, &bytes));
        if !op.documents_status(status) {
            exchange
                .violations
                .push(format!("status {status} {UNDOCUMENTED_STATUS} of {}", op.label));
        }
        if (200..300).contains(&status) {
            self.learn_issued_token(&bytes);
        }
        let mut out = Response::builder().status(status);
        for (name, value) in &response_headers {
            out = out.header(name, value);
        }
        self.finish(exchange, out.body(Body::from(bytes)).expect("response"))
    }

    /// A token endpoint's or login's answer names the bearer token later requests may carry.
    fn learn_issued_token(&self, body: &[u8]) {
        let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let token = ["access_token", "accessToken"]
            .iter()
            .find_map(|key| answer.get(key).and_then(serde_json::Value::as_str));
        if let Some(token) = token {
            self.issued.lock().expect("issued").push(token.to_string());
        }
    }

    fn bearer_is_valid(&self, token: &str) -> bool {
        self.secrets.bearer.iter().any(|t| t == token) || self.issued.lock().expect("issued").iter().any(|t| t == token)
    }

    fn finish(&self, exchange: Exchange, response: Response) -> Response {
        if !exchange.violations.is_empty() {
            // Shown with the output of a failing test, next to the client's error.
            eprintln!("{} {}: {:#?}", exchange.method, exchange.path, exchange.violations);
        }
        self.log.lock().expect("log").push(exchange);
        response
    }

    fn check_credentials(
        &self,
        op: &OperationSpec,
        method: &str,
        uri: &axum::http::Uri,
        headers: &mut HeaderMap,
    ) -> CredentialCheck {
        let authorization = header_text(headers, header::AUTHORIZATION.as_str());
        let api_keys: Vec<&String> = op
            .schemes
            .iter()
            .filter_map(|s| match s {
                Scheme::ApiKeyHeader(name) if name != "authorization" => Some(name),
                _ => None,
            })
            .collect();
        let presented_key = api_keys
            .iter()
            .find_map(|name| header_text(headers, name).map(|v| ((*name).clone(), v)))
            .or_else(|| header_text(headers, "x-auth-token").map(|v| ("x-auth-token".to_string(), v)));
        if op.schemes.is_empty() {
            let sent: Vec<String> = authorization
                .iter()
                .map(|_| "Authorization".to_string())
                .chain(presented_key.iter().map(|(n, _)| n.clone()))
                .collect();
            let problem =
                (!sent.is_empty()).then(|| format!("credentials sent to an operation that takes none: {sent:?}"));
            return CredentialCheck::Presented("none".into(), problem.into_iter().collect());
        }
        if authorization.is_none()
            && presented_key.is_none()
            && op.schemes.contains(&Scheme::Digest)
            && self.secrets.digest.is_some()
        {
            return CredentialCheck::Challenge;
        }
        if let Some((name, value)) = presented_key {
            let ok = api_keys.contains(&&name) && self.secrets.api_key.as_deref() == Some(value.as_str());
            let problem = (!ok).then(|| format!("header {name} is not a valid credential of an allowed scheme"));
            return CredentialCheck::Presented(name, problem.into_iter().collect());
        }
        let Some(authorization) = authorization else {
            return CredentialCheck::Presented(
                "none".into(),
                vec![format!("no credentials; the contract allows {:?}", op.schemes)],
            );
        };
        let (kind, rest) = authorization.split_once(' ').unwrap_or((authorization.as_str(), ""));
        let (scheme, valid) = match kind.to_ascii_lowercase().as_str() {
            "bearer" => (
                Scheme::Bearer,
                self.bearer_is_valid(rest)
                    || (op.schemes.contains(&Scheme::ApiKeyHeader("authorization".into()))
                        && self.secrets.api_key.as_deref() == Some(rest)),
            ),
            "basic" => (Scheme::Basic, self.basic_is_valid(rest)),
            "digest" => {
                let valid = self.digest_is_valid(method, uri, rest);
                if valid {
                    headers.insert(header::AUTHORIZATION, HeaderValue::from_static(PRISM_DIGEST));
                }
                (Scheme::Digest, valid)
            }
            _ => {
                return CredentialCheck::Presented(
                    kind.to_string(),
                    vec![format!("Authorization scheme {kind} is not one the contract allows")],
                );
            }
        };
        let mut problems = Vec::new();
        if !op.schemes.contains(&scheme) {
            problems.push(format!(
                "{scheme:?} is not a scheme the contract allows ({:?})",
                op.schemes
            ));
        }
        if !valid {
            problems.push(format!("the {scheme:?} credentials are not the expected ones"));
        }
        CredentialCheck::Presented(format!("{scheme:?}"), problems)
    }

    fn basic_is_valid(&self, encoded: &str) -> bool {
        let Some((user, password)) = &self.secrets.basic else {
            return false;
        };
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .is_some_and(|pair| pair == format!("{user}:{password}"))
    }

    /// RFC 7616 with MD5 and qop=auth: the answer must use our nonce and realm, the request's own
    /// URI, and hash with the right password.
    fn digest_is_valid(&self, method: &str, uri: &axum::http::Uri, params: &str) -> bool {
        let Some((user, password)) = &self.secrets.digest else {
            return false;
        };
        let fields = digest_fields(params);
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let request_uri = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let (Some(nc), Some(cnonce), Some(response)) = (field("nc"), field("cnonce"), field("response")) else {
            return false;
        };
        let ha1 = md5_hex(&format!("{user}:{REALM}:{password}"));
        let ha2 = md5_hex(&format!("{method}:{request_uri}"));
        let expected = md5_hex(&format!("{ha1}:{NONCE}:{nc}:{cnonce}:auth:{ha2}"));
        field("username") == Some(user.as_str())
            && field("realm") == Some(REALM)
            && field("nonce") == Some(NONCE)
            && field("uri") == Some(request_uri)
            && field("qop") == Some("auth")
            && response == expected
    }
}

enum CredentialCheck {
    Challenge,
    Presented(String, Vec<String>),
}

fn check_query(op: &OperationSpec, query: &[(String, String)]) -> Vec<String> {
    query
        .iter()
        .filter(|(name, _)| !op.query.contains(name))
        .map(|(name, _)| format!("undeclared query parameter {name:?} (declared: {:?})", op.query))
        .collect()
}

fn media_type(text: &str) -> String {
    text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Atlas selects the resource version by `Accept`, so where the contract documents versioned media
/// types the request must name one of them and nothing undocumented; elsewhere every media range
/// must match a documented type.
fn check_accept(op: &OperationSpec, accept: Option<&str>) -> Vec<String> {
    let versioned: BTreeSet<&String> = op.produces.iter().filter(|m| m.contains("vnd.")).collect();
    let ranges: Vec<String> = accept
        .map(|a| a.split(',').map(media_type).collect())
        .unwrap_or_default();
    let matches = |range: &str| {
        range == "*/*"
            || op.produces.iter().any(|m| {
                m == range
                    || range
                        .strip_suffix("/*")
                        .is_some_and(|kind| m.starts_with(&format!("{kind}/")))
            })
    };
    let mut problems = Vec::new();
    if !versioned.is_empty() && !ranges.iter().any(|r| versioned.contains(r)) {
        problems.push(format!(
            "undocumented Accept {accept:?}: {} documents only {versioned:?}",
            op.label
        ));
    } else if let Some(bad) = ranges.iter().find(|r| !matches(r)) {
        problems.push(format!(
            "undocumented Accept {bad:?}: {} answers only {:?}",
            op.label, op.produces
        ));
    }
    problems
}

fn check_content_type(op: &OperationSpec, headers: &HeaderMap, has_body: bool) -> Vec<String> {
    if !has_body {
        return Vec::new();
    }
    match header_text(headers, header::CONTENT_TYPE.as_str()).map(|c| media_type(&c)) {
        Some(sent) if op.consumes.contains(&sent) => Vec::new(),
        sent => vec![format!(
            "request body with Content-Type {sent:?}; {} accepts {:?}",
            op.label, op.consumes
        )],
    }
}

/// Prism's own error answers (a request or answer it rejected) and its `sl-violations` header.
fn prism_findings(headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut findings = Vec::new();
    let problem = header_text(headers, header::CONTENT_TYPE.as_str()).is_some_and(|c| c.contains("problem+json"));
    let text = String::from_utf8_lossy(body);
    if problem && text.contains("stoplight.io/prism/errors") {
        findings.push(format!("Prism rejected it: {text}"));
    }
    if let Some(violations) = header_text(headers, "sl-violations") {
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&violations).unwrap_or_default();
        if parsed.is_empty() {
            findings.push(format!("Prism: {violations}"));
        }
        for v in parsed {
            findings.push(format!(
                "Prism {}: {} at {}",
                v["severity"].as_str().unwrap_or("?"),
                v["message"].as_str().unwrap_or("?"),
                v["location"]
            ));
        }
    }
    findings
}

fn prism_path_and_query(contract: &Contract, path: &str, query: Option<&str>) -> String {
    // Prism matches a Swagger 2.0 document's paths without its basePath.
    let path = if contract.base_path().is_empty() {
        path
    } else {
        path.strip_prefix(contract.base_path()).unwrap_or(path)
    };
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn digest_fields(params: &str) -> Vec<(String, String)> {
    params
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

fn plain(status: u16, text: &'static str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(text))
        .expect("response")
}

fn digest_challenge() -> Response {
    let challenge =
        format!(r#"Digest realm="{REALM}", domain="", nonce="{NONCE}", algorithm=MD5, qop="auth", stale=false"#);
    Response::builder()
        .status(401)
        .header("www-authenticate", challenge)
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"error": 401, "errorCode": "NOT_ORG_GROUP_CREATOR", "reason": "Unauthorized", "detail": "Current user is not authorized to perform this action.", "parameters": []})
                .to_string(),
        ))
        .expect("response")
}

/// Atlas's answer to an Accept version it does not serve (its 406 body is an ApiError).
fn not_acceptable() -> Response {
    Response::builder()
        .status(406)
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"error": 406, "errorCode": "INVALID_VERSION_DATE", "reason": "Not Acceptable", "detail": "The version date is not valid for this resource.", "parameters": []})
                .to_string(),
        ))
        .expect("response")
}

/// A copy of the contract `file` in which every operation also lists the defensive statuses it
/// does not document, with the body of its first documented error answer.
fn defensive_copy(dir: &Path, file: &str) -> PathBuf {
    static COPIES: AtomicUsize = AtomicUsize::new(0);
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {file}: {e}"));
    let root = doc.clone();
    let operations = doc
        .get_mut("paths")
        .and_then(serde_yaml::Value::as_mapping_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_yaml::Value::as_mapping_mut)
        .flat_map(|item| item.values_mut());
    for op in operations {
        let Some(responses) = op.get_mut("responses").and_then(serde_yaml::Value::as_mapping_mut) else {
            continue;
        };
        let status_of = |code: &serde_yaml::Value| match code {
            serde_yaml::Value::Number(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let documented: Vec<String> = responses.keys().map(status_of).collect();
        let template = responses
            .iter()
            .find(|(code, _)| status_of(code).starts_with('4'))
            .map(|(code, response)| (status_of(code), response.clone()));
        let Some((template_status, template)) = template else {
            continue;
        };
        for status in DEFENSIVE_STATUSES {
            if !documented.iter().any(|d| d == status) {
                let mut answer = resolve_local(&root, template.clone());
                retarget_status(&mut answer, &template_status, status);
                responses.insert(serde_yaml::Value::from(status), answer);
            }
        }
    }
    let n = COPIES.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("revoker-contract-{}-{n}-{file}", std::process::id()));
    let text = serde_yaml::to_string(&doc).expect("serialize contract");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `value` with every local `$ref` replaced by what it names (bounded: contracts here nest little).
fn resolve_local(root: &serde_yaml::Value, value: serde_yaml::Value) -> serde_yaml::Value {
    fn walk(root: &serde_yaml::Value, value: serde_yaml::Value, depth: usize) -> serde_yaml::Value {
        if depth > 16 {
            return value;
        }
        if let Some(reference) = value.get("$ref").and_then(serde_yaml::Value::as_str) {
            let mut target = root;
            for part in reference.trim_start_matches("#/").split('/') {
                target = target.get(part).unwrap_or(&serde_yaml::Value::Null);
            }
            return walk(root, target.clone(), depth + 1);
        }
        match value {
            serde_yaml::Value::Mapping(map) => map
                .into_iter()
                .map(|(k, v)| (k, walk(root, v, depth + 1)))
                .collect::<serde_yaml::Mapping>()
                .into(),
            serde_yaml::Value::Sequence(items) => items.into_iter().map(|v| walk(root, v, depth + 1)).collect(),
            other => other,
        }
    }
    walk(root, value, 0)
}

/// An error body that pins its status (Infisical's `statusCode: {enum: [400]}`) names `to` instead.
fn retarget_status(value: &mut serde_yaml::Value, from: &str, to: &str) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (key, child) in map.iter_mut() {
                let pinned = key.as_str() == Some("enum")
                    && child
                        .as_sequence()
                        .is_some_and(|s| s.len() == 1 && s[0].as_u64().map(|n| n.to_string()).as_deref() == Some(from));
                if pinned {
                    let code: u64 = to.parse().expect("numeric status");
                    *child = serde_yaml::Value::Sequence(vec![code.into()]);
                } else {
                    retarget_status(child, from, to);
                }
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(|v| retarget_status(v, from, to)),
        _ => {}
    }
}

/// Pass every request on to the simulator; a Digest request is signed again for its challenge.
async fn start_forwarder(base: String, digest: Option<(String, String)>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let forwarder = Arc::new((client, base, digest));
    let app = axum::Router::new().fallback(move |req: Request| {
        let forwarder = forwarder.clone();
        async move {
            let (client, base, digest) = &*forwarder;
            forward(client, base, digest.as_ref(), req).await
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn forward(client: &reqwest::Client, base: &str, digest: Option<&(String, String)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = header_text(&parts.headers, ORIGINAL_PATH).unwrap_or_else(|| parts.uri.path().to_string());
    let target = match parts.uri.query() {
        Some(query) => format!("{base}{path}?{query}"),
        None => format!("{base}{path}"),
    };
    let resign = header_text(&parts.headers, header::AUTHORIZATION.as_str()).as_deref() == Some(PRISM_DIGEST);
    let mut request = client.request(parts.method.clone(), target).body(body);
    for (name, value) in &parts.headers {
        let skip = name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == ORIGINAL_PATH
            || (resign && name == header::AUTHORIZATION);
        if !skip {
            request = request.header(name, value);
        }
    }
    let sent = match (resign, digest) {
        (true, Some((user, password))) => request
            .send_digest_auth((user.as_str(), password.as_str()))
            .await
            .map_err(|e| e.to_string()),
        _ => request.send().await.map_err(|e| e.to_string()),
    };
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            eprintln!("the simulator did not answer: {e}");
            return plain(502, "simulator unreachable");
        }
    };
    let mut out = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            out = out.header(name, value);
        }
    }
    let bytes = response.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes)).expect("response")
}

async fn start_upstream(script: Script) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(move |req: Request| {
        let script = script.clone();
        async move {
            let (parts, _body) = req.into_parts();
            let request = UpstreamRequest {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                headers: parts.headers,
            };
            let canned = script(&request);
            let mut out = Response::builder().status(canned.status);
            if let Some(content_type) = canned.content_type {
                out = out.header("content-type", content_type);
            }
            for (name, value) in canned.headers {
                out = out.header(name, value);
            }
            out.body(Body::from(canned.body)).expect("response")
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}
