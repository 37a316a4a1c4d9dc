//! The contract harness: client -> recording proxy -> `prism proxy --errors <contract>` ->
//! scripted upstream. Prism validates each request (path, method, parameters, body, presence of
//! credentials) and each upstream answer (status, content type, body) against the official
//! contract and answers an error on a violation. The recording proxy checks what Prism does not:
//! undeclared query parameters, the `Accept` media type, the request `Content-Type`, and that the
//! credentials are valid ones of an allowed scheme, including the HTTP Digest answer to the
//! challenge it issues itself (Prism's own digest check rejects every real digest header).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use md5::{Digest, Md5};

use super::spec::{Contract, OperationSpec, Scheme};

/// Where the recording proxy's challenge comes from; any Digest answer must use this nonce.
const NONCE: &str = "6f1c0a2d9e8b7c5a";
const REALM: &str = "MMS Public API";
/// A header Prism's digest parser accepts; sent on only after the real answer was verified.
const PRISM_DIGEST: &str = r#"Digest username="pub" realm="mms" nonce="abc123" uri="x" response="r""#;
/// Prism's answer text for a status code the contract does not list (a warning, not an error).
const UNDOCUMENTED_STATUS: &str = "Unable to match the returned status code";

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
                    Allow::UndocumentedStatus(code) => *code == self.status && v.contains(UNDOCUMENTED_STATUS),
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
}

impl Harness {
    /// Start one Prism proxy per contract file, all in front of the same scripted upstream, and
    /// the recording proxy in front of them; `url` is the base URL to give the client.
    pub async fn start(files: &[&str], script: Script, secrets: Secrets, alias: Option<Alias>) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let upstream = start_upstream(script).await;
        let dir = contracts_dir();
        let mut prisms = Vec::new();
        let mut routes = Vec::new();
        for file in files {
            let (prism, prism_port) = start_prism(&dir.join(file), &format!("http://127.0.0.1:{upstream}"));
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
        if exchange.violations.iter().any(|v| v.starts_with("undocumented Accept")) {
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
        let mut out = Response::builder().status(status);
        for (name, value) in &response_headers {
            out = out.header(name, value);
        }
        self.finish(exchange, out.body(Body::from(bytes)).expect("response"))
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
                self.secrets.bearer.iter().any(|t| t == rest)
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
