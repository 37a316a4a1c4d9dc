//! The call log: every provider request received, with secrets masked.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::util::{SimRequest, fingerprint, header_str, now_rfc3339};

/// At most this many calls are kept; older ones are dropped (and counted in `dropped`).
const MAX_CALLS: usize = 100_000;

/// Which simulated provider a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Atlas,
    Infisical,
    Onezone,
    Unknown,
}

impl Provider {
    pub fn of(path: &str) -> Provider {
        if path.starts_with("/api/atlas/") || path == "/api/atlas" || path == "/api/oauth/token" {
            Provider::Atlas
        } else if path.starts_with("/api/v1/") {
            Provider::Infisical
        } else if path.starts_with("/api/v3/onezone/") || path == "/api/v3/onezone" {
            Provider::Onezone
        } else {
            Provider::Unknown
        }
    }
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still being processed (e.g. inside a latency fault).
    Pending,
    /// An HTTP response was produced.
    Answered,
    /// The connection was reset by a fault; the client got no answer.
    Reset,
    /// The handler was dropped before answering (client went away).
    Aborted,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub seq: u64,
    pub timestamp: String,
    pub provider: Provider,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `METHOD path` (no query): the key of `counts`.
    pub target: String,
    /// Selected request headers; secrets are replaced by fingerprints.
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Status answered (absent for reset or unfinished calls).
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// Ids of the faults that acted on this call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<u64>,
    pub duration_ms: u64,
}

#[derive(Debug, Default)]
pub struct CallLog {
    calls: Vec<Call>,
    next_seq: u64,
    dropped: u64,
}

/// Filters of `GET /_sim/calls`.
#[derive(Debug, Default)]
pub struct CallFilter {
    pub method: Option<String>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub provider: Option<String>,
}

impl CallFilter {
    fn accepts(&self, c: &Call) -> bool {
        self.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(&c.method))
            && self.path.as_ref().is_none_or(|p| *p == c.path)
            && self.path_prefix.as_ref().is_none_or(|p| c.path.starts_with(p.as_str()))
            && self
                .provider
                .as_ref()
                .is_none_or(|p| serde_json::to_value(c.provider).ok() == Some(Value::String(p.to_lowercase())))
    }
}

impl CallLog {
    /// Record the start of a call; returns its sequence number.
    pub fn start(&mut self, req: &SimRequest) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        if self.calls.len() >= MAX_CALLS {
            self.calls.remove(0);
            self.dropped += 1;
        }
        self.calls.push(Call {
            seq,
            timestamp: now_rfc3339(),
            provider: Provider::of(&req.path),
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            target: format!("{} {}", req.method, req.path),
            headers: selected_headers(&req.headers),
            body: masked_body(req),
            status: None,
            outcome: Outcome::Pending,
            faults: Vec::new(),
            duration_ms: 0,
        });
        seq
    }

    fn find(&mut self, seq: u64) -> Option<&mut Call> {
        // Calls are appended in order; search from the end.
        self.calls.iter_mut().rev().find(|c| c.seq == seq)
    }

    pub fn add_faults(&mut self, seq: u64, ids: &[u64]) {
        if let Some(c) = self.find(seq) {
            c.faults.extend_from_slice(ids);
        }
    }

    pub fn finish(&mut self, seq: u64, status: Option<u16>, outcome: Outcome, duration_ms: u64) {
        if let Some(c) = self.find(seq)
            && c.outcome == Outcome::Pending
        {
            c.status = status;
            c.outcome = outcome;
            c.duration_ms = duration_ms;
        }
    }

    pub fn clear(&mut self) {
        self.calls.clear();
        self.dropped = 0;
    }

    /// The `GET /_sim/calls` document.
    pub fn report(&self, filter: &CallFilter) -> Value {
        let calls: Vec<&Call> = self.calls.iter().filter(|c| filter.accepts(c)).collect();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_status: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for c in &calls {
            *counts.entry(c.target.as_str()).or_default() += 1;
            let key = match (c.outcome, c.status) {
                (Outcome::Reset, _) => "reset".to_string(),
                (_, Some(s)) => s.to_string(),
                (o, None) => serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            *by_status.entry(c.target.as_str()).or_default().entry(key).or_default() += 1;
        }
        json!({
            "total": calls.len(),
            "dropped": self.dropped,
            "counts": counts,
            "countsByStatus": by_status,
            "calls": calls,
        })
    }
}

/// Headers worth recording, with secrets replaced.
fn selected_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ["accept", "content-type", "user-agent"] {
        if let Some(v) = header_str(headers, name) {
            out.insert(name.to_string(), v.to_string());
        }
    }
    if let Some(v) = header_str(headers, "authorization") {
        out.insert("authorization".to_string(), mask_authorization(v));
    }
    for name in ["x-auth-token", "macaroon"] {
        if let Some(v) = header_str(headers, name) {
            out.insert(name.to_string(), fingerprint(v.trim()));
        }
    }
    out
}

/// `Digest username="<public key>"`, `Bearer sha256:…`, `Basic <client id>:***`.
pub fn mask_authorization(value: &str) -> String {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("digest") {
        let user = crate::digest::parse_authorization(value)
            .and_then(|p| p.get("username").cloned())
            .unwrap_or_default();
        format!("Digest username=\"{user}\"")
    } else if scheme.eq_ignore_ascii_case("bearer") {
        format!("Bearer {}", fingerprint(rest))
    } else if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let user = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, _)| u.to_string()))
            .unwrap_or_default();
        format!("Basic {user}:***")
    } else {
        format!("{scheme} ***")
    }
}

/// Keys whose values are replaced by a fingerprint in recorded bodies.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "token", "password", "privatekey"]
        .iter()
        .any(|s| k.contains(s))
}

fn mask_json(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if is_secret_key(&k) => Value::String(fingerprint(&s)),
                        other => mask_json(other),
                    };
                    (k, v)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(mask_json).collect()),
        other => other,
    }
}

fn masked_body(req: &SimRequest) -> Option<Value> {
    if req.body.is_empty() {
        return None;
    }
    let ct = req.header("content-type").unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let form: Map<String, Value> = url::form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Some(mask_json(Value::Object(form)));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v) => Some(mask_json(v)),
        Err(_) => Some(json!({ "unparsedBytes": req.body.len() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets() {
        assert_eq!(
            mask_authorization(r#"Digest username="pk", response="abc""#),
            "Digest username=\"pk\""
        );
        assert!(mask_authorization("Bearer tok").starts_with("Bearer sha256:"));
        // base64("id:secret")
        assert_eq!(mask_authorization("Basic aWQ6c2VjcmV0"), "Basic id:***");
        let v = mask_json(json!({"accessToken": "t", "name": "n", "nested": {"clientSecret": "s"}}));
        assert_eq!(v["name"], "n");
        assert!(v["accessToken"].as_str().is_some_and(|s| s.starts_with("sha256:")));
        assert!(
            v["nested"]["clientSecret"]
                .as_str()
                .is_some_and(|s| s.starts_with("sha256:"))
        );
    }

    #[test]
    fn provider_of_path() {
        assert_eq!(Provider::of("/api/oauth/token"), Provider::Atlas);
        assert_eq!(Provider::of("/api/atlas/v2/orgs"), Provider::Atlas);
        assert_eq!(Provider::of("/api/v1/auth/token/revoke"), Provider::Infisical);
        assert_eq!(Provider::of("/api/v3/onezone/user"), Provider::Onezone);
        assert_eq!(Provider::of("/other"), Provider::Unknown);
    }
}
