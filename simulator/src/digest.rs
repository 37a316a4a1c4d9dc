//! HTTP Digest authentication (RFC 7616 / RFC 2617), MD5 with `qop=auth`, as Atlas uses it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};

use crate::util::{constant_time_eq, random_hex};

/// Atlas's digest realm.
pub const REALM: &str = "MMS Public API";

/// How long an issued nonce is accepted.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(3600);

/// How many requests one nonce may authenticate before it is refused as stale (the client draws a
/// new challenge), which also bounds the counts kept per nonce.
pub const NONCE_USES: usize = 1000;

/// Nonces the simulator handed out: when, and the nonce counts (`nc`) already used with each. A
/// client may answer many requests with one nonce (RFC 7616 3.4), each with a new count; a count
/// used before is a replay and refused.
#[derive(Debug, Default)]
pub struct NonceStore {
    issued: HashMap<String, Issued>,
}

#[derive(Debug)]
struct Issued {
    at: Instant,
    counts: HashSet<u32>,
}

/// What the store knows about a nonce.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceStatus {
    Valid,
    Stale,
    Unknown,
    /// The nonce count was used before with this nonce.
    Replayed,
}

impl NonceStore {
    /// Issue a fresh nonce.
    pub fn issue(&mut self) -> String {
        if self.issued.len() >= 10_000 {
            let now = Instant::now();
            self.issued
                .retain(|_, issued| now.duration_since(issued.at) < NONCE_LIFETIME);
            if self.issued.len() >= 10_000 {
                self.issued.clear();
            }
        }
        let nonce = random_hex(16);
        let issued = Issued {
            at: Instant::now(),
            counts: HashSet::new(),
        };
        self.issued.insert(nonce.clone(), issued);
        nonce
    }

    /// Take one use of `nonce` with the hex nonce count `nc`.
    pub fn use_count(&mut self, nonce: &str, nc: &str) -> NonceStatus {
        let Some(issued) = self.issued.get_mut(nonce) else {
            return NonceStatus::Unknown;
        };
        if issued.at.elapsed() >= NONCE_LIFETIME || issued.counts.len() >= NONCE_USES {
            return NonceStatus::Stale;
        }
        let Ok(count) = u32::from_str_radix(nc, 16) else {
            return NonceStatus::Unknown;
        };
        if issued.counts.insert(count) {
            NonceStatus::Valid
        } else {
            NonceStatus::Replayed
        }
    }

    pub fn clear(&mut self) {
        self.issued.clear();
    }
}

/// The `WWW-Authenticate` value of a challenge, in the form Atlas sends.
pub fn challenge(nonce: &str, stale: bool) -> String {
    format!("Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}")
}

/// Parse the parameters of an `Authorization: Digest ...` header. Returns `None` when the scheme
/// is not Digest or the parameter list is malformed. Keys are lowercased.
pub fn parse_authorization(header: &str) -> Option<HashMap<String, String>> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_ascii_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_ascii_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while matches!(chars.peek(), Some(c) if c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while matches!(chars.peek(), Some(c) if c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim_end().to_string();
        }
        params.insert(key.to_ascii_lowercase(), value);
    }
    Some(params)
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// The expected `response` for qop=auth: MD5(HA1:nonce:nc:cnonce:qop:HA2).
#[allow(clippy::too_many_arguments)]
pub fn expected_response(
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
) -> String {
    let ha1 = md5_hex(&format!("{username}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
}

/// Why a digest `Authorization` header was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DigestError {
    /// Not a Digest header, or a required parameter is missing.
    Malformed,
    UnknownUser,
    WrongRealm,
    UnsupportedAlgorithm,
    UnsupportedQop,
    /// The nonce was not issued by this server.
    UnknownNonce,
    /// The nonce was issued but has expired: the client should retry with a fresh one.
    StaleNonce,
    /// The nonce count was used before with this nonce (a replayed request).
    ReplayedCount,
    /// The `uri` parameter is not the request target.
    UriMismatch,
    /// The response hash is wrong (wrong password, method or uri).
    BadResponse,
}

/// Verify a digest `Authorization` header for a request.
///
/// `request_target` is the path and query as received. `password_of` looks up the private key
/// of a public key, `use_nonce` takes one use of the nonce with the nonce count. Returns the
/// username.
pub fn verify(
    header: &str,
    method: &str,
    request_target: &str,
    password_of: impl Fn(&str) -> Option<String>,
    use_nonce: impl FnOnce(&str, &str) -> NonceStatus,
) -> Result<String, DigestError> {
    let p = parse_authorization(header).ok_or(DigestError::Malformed)?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let username = get("username").ok_or(DigestError::Malformed)?;
    let realm = get("realm").ok_or(DigestError::Malformed)?;
    let nonce = get("nonce").ok_or(DigestError::Malformed)?;
    let uri = get("uri").ok_or(DigestError::Malformed)?;
    let response = get("response").ok_or(DigestError::Malformed)?;
    if realm != REALM {
        return Err(DigestError::WrongRealm);
    }
    if let Some(alg) = get("algorithm")
        && !alg.eq_ignore_ascii_case("MD5")
    {
        return Err(DigestError::UnsupportedAlgorithm);
    }
    let qop = get("qop").ok_or(DigestError::UnsupportedQop)?;
    if qop != "auth" {
        return Err(DigestError::UnsupportedQop);
    }
    let nc = get("nc").ok_or(DigestError::Malformed)?;
    let cnonce = get("cnonce").ok_or(DigestError::Malformed)?;
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::Malformed);
    }
    if uri != request_target {
        return Err(DigestError::UriMismatch);
    }
    let password = password_of(username).ok_or(DigestError::UnknownUser)?;
    let expected = expected_response(username, realm, &password, method, uri, nonce, nc, cnonce, qop);
    // Check the hash before the nonce, so that a stale nonce with the right password is told
    // apart (stale=true) from a wrong password.
    if !constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Err(DigestError::BadResponse);
    }
    match use_nonce(nonce, nc) {
        NonceStatus::Valid => Ok(username.to_string()),
        NonceStatus::Stale => Err(DigestError::StaleNonce),
        NonceStatus::Unknown => Err(DigestError::UnknownNonce),
        NonceStatus::Replayed => Err(DigestError::ReplayedCount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 section 3.5 example.
    #[test]
    fn rfc2617_example_response() {
        let r = expected_response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn parses_quoted_values_with_commas_and_escapes() {
        let p = parse_authorization(
            r#"Digest username="a,b", realm="MMS Public API", nonce="n1", uri="/x?y=1,2", qop=auth, nc=00000001, cnonce="c\"q", response="abc", algorithm=MD5"#,
        )
        .expect("parsed");
        assert_eq!(p["username"], "a,b");
        assert_eq!(p["uri"], "/x?y=1,2");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["cnonce"], "c\"q");
        assert_eq!(p["algorithm"], "MD5");
        assert!(parse_authorization("Basic abc").is_none());
        assert!(parse_authorization(r#"Digest username="unterminated"#).is_none());
    }

    fn header_for(password: &str, method: &str, uri: &str, nonce: &str) -> String {
        let response = expected_response("pub", REALM, password, method, uri, nonce, "00000001", "cn", "auth");
        format!(
            r#"Digest username="pub", realm="{REALM}", nonce="{nonce}", uri="{uri}", algorithm=MD5, qop=auth, nc=00000001, cnonce="cn", response="{response}""#
        )
    }

    fn password_of(u: &str) -> Option<String> {
        (u == "pub").then(|| "priv".to_string())
    }

    #[test]
    fn verifies_a_correct_response() {
        let h = header_for("priv", "DELETE", "/api/x/jwks", "n1");
        let r = verify(&h, "DELETE", "/api/x/jwks", password_of, |_, _| NonceStatus::Valid);
        assert_eq!(r, Ok("pub".to_string()));
    }

    #[test]
    fn rejects_wrong_password_method_uri_and_nonce() {
        let valid = |_: &str, _: &str| NonceStatus::Valid;
        // Wrong password; signed for GET but sent as DELETE; signed for another path.
        for (password, method, uri, expected) in [
            ("wrong", "DELETE", "/api/x", DigestError::BadResponse),
            ("priv", "GET", "/api/x", DigestError::BadResponse),
            ("priv", "DELETE", "/api/y", DigestError::UriMismatch),
        ] {
            let h = header_for(password, method, uri, "n1");
            assert_eq!(verify(&h, "DELETE", "/api/x", password_of, valid), Err(expected));
        }
        let h = header_for("priv", "DELETE", "/api/x", "n1");
        assert_eq!(
            verify(&h, "DELETE", "/api/x", password_of, |_, _| NonceStatus::Unknown),
            Err(DigestError::UnknownNonce)
        );
        assert_eq!(
            verify(&h, "DELETE", "/api/x", password_of, |_, _| NonceStatus::Stale),
            Err(DigestError::StaleNonce)
        );
        assert_eq!(
            verify(&h, "DELETE", "/api/x", |_| None, valid),
            Err(DigestError::UnknownUser)
        );
        let no_qop = h.replace("qop=auth, ", "");
        assert_eq!(
            verify(&no_qop, "DELETE", "/api/x", password_of, valid),
            Err(DigestError::UnsupportedQop)
        );
        let other_realm = h.replace(REALM, "Other");
        assert_eq!(
            verify(&other_realm, "DELETE", "/api/x", password_of, valid),
            Err(DigestError::WrongRealm)
        );
    }

    #[test]
    fn nonce_store_tracks_issued_nonces() {
        let mut s = NonceStore::default();
        let n = s.issue();
        assert_eq!(s.use_count(&n, "00000001"), NonceStatus::Valid);
        assert_eq!(
            s.use_count(&n, "00000003"),
            NonceStatus::Valid,
            "counts may come out of order"
        );
        assert_eq!(s.use_count(&n, "00000002"), NonceStatus::Valid);
        assert_eq!(s.use_count(&n, "00000003"), NonceStatus::Replayed);
        assert_eq!(s.use_count("other", "00000001"), NonceStatus::Unknown);
        s.clear();
        assert_eq!(s.use_count(&n, "00000004"), NonceStatus::Unknown);
    }

    #[test]
    fn a_nonce_is_stale_after_its_uses() {
        let mut s = NonceStore::default();
        let n = s.issue();
        for count in 1..=NONCE_USES {
            assert_eq!(s.use_count(&n, &format!("{count:08x}")), NonceStatus::Valid);
        }
        assert_eq!(s.use_count(&n, &format!("{:08x}", NONCE_USES + 1)), NonceStatus::Stale);
    }
}
