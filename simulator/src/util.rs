//! Small helpers shared by the simulator modules: locking, JSON responses, ids, time, masking.

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lock a mutex, recovering the data if a previous holder panicked (the simulator's state stays
/// usable; every critical section leaves it consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An early answer from a check (authentication, validation): the response to send.
pub type Refusal = Box<Response>;

/// One request as the provider handlers see it: everything already read, body included.
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub method: Method,
    /// Raw path, as sent (percent-encoded).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SimRequest {
    /// The request target as it appears on the request line: path plus `?query`.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    match query {
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => Vec::new(),
    }
}

/// Split a raw path into percent-decoded segments (without the leading empty one).
pub fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches('/').split('/').map(percent_decode).collect()
}

/// Decode `%XX` escapes; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A JSON response with the given content type.
pub fn json_response(status: StatusCode, content_type: &str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let ct = HeaderValue::from_str(content_type).unwrap_or_else(|_| HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(CONTENT_TYPE, ct);
    resp
}

/// An empty response.
pub fn empty_response(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

/// Set a header on a response; values that are not valid header text are skipped.
pub fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// A `Retry-After` header of `seconds`, when there is one to send.
pub fn set_retry_after(resp: &mut Response, seconds: Option<u64>) {
    if let Some(n) = seconds {
        set_header(resp, "retry-after", &n.to_string());
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now as RFC 3339 with milliseconds, UTC (`2025-01-10T09:00:00.000Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339_millis(jiff::Timestamp::now())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form the providers use.
pub fn format_rfc3339_millis(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// A random version-4 UUID string.
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `len` random alphanumeric characters.
pub fn random_alnum(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A stable, non-reversible fingerprint of a secret for logs: `sha256:` + 12 hex digits.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

/// True when `s` is exactly 24 lowercase hex digits (Atlas ObjectId form).
pub fn is_hex24(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Compare two byte strings without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        (!token.is_empty()).then_some(token)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("abc%2"), "abc%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41%42"), "AB");
    }

    #[test]
    fn rfc3339_formatting() {
        let at = |secs: i64, millis: i64| jiff::Timestamp::from_millisecond(secs * 1000 + millis).unwrap();
        assert_eq!(format_rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_millis(at(1_736_499_600, 7)), "2025-01-10T09:00:00.007Z");
        assert_eq!(format_rfc3339_millis(at(951_782_400, 0)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn hex24() {
        assert!(is_hex24("55fa922fb343282757d9554e"));
        assert!(!is_hex24("55fa922fb343282757d9554"));
        assert!(!is_hex24("55FA922FB343282757D9554E"));
        assert!(!is_hex24("55fa922fb343282757d9554g"));
    }
}
