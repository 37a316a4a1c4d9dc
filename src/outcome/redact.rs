//! The one place where text from outside the operator (a provider's answer, an echo of what we
//! sent) becomes text we may put into status, Events, logs or metrics.
//!
//! A [`Redactor`] knows every credential a client holds and obtains at run time; its output is a
//! [`Redacted`] string, which only this module can make. Writers of status, Events and logs take
//! `Redacted` (or text the operator wrote itself), never raw provider text.
//!
//! What is masked:
//! - every registered secret in raw form and encoded: base64 (standard and URL-safe, with and
//!   without padding, and the part of a longer base64 text that encodes the secret at any byte
//!   offset), hex, percent-encoding (RFC 3986, `encodeURIComponent`, form and every-byte forms) and
//!   JSON string escaping; hex and percent forms in any letter case;
//! - `user:secret` pairs registered with [`Redactor::register_pair`] in the same forms (the HTTP
//!   Basic header is `base64(user:secret)`);
//! - whatever the text shows, registered or not: the value after `Bearer` or `Basic`, JWT-shaped
//!   values (`eyJ…` with two dots) and runs of at least [`OPAQUE_RUN`] characters of the base64/hex
//!   alphabet that mix letters and digits (provider id shapes excepted: UUIDs and 32 lower-case hex
//!   digits; URL paths are judged segment by segment).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// What replaces a whole provider text that hid a secret in an unusual escaping.
pub const HOSTILE_ECHO: &str = "[redacted: the provider echoed a credential]";

/// What replaces a secret value.
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this are not searched for: replacing them would mangle ordinary words.
const MIN_SECRET_LEN: usize = 6;

/// Unregistered runs of the base64/hex alphabet at least this long are masked as likely credentials.
pub const OPAQUE_RUN: usize = 32;

/// Text that has been through a [`Redactor`] and cut to a length. Only this module makes one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The redacted text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Knows the secrets of one client (those configured and those issued at run time) and scrubs
/// them out of provider text. Cloning shares the list, so a token registered by a login is known
/// to every clone.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<SecretString>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor that knows no secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A redactor that knows `secrets`.
    pub fn with(secrets: &[&SecretString]) -> Self {
        let redactor = Self::new();
        for secret in secrets {
            redactor.register(secret);
        }
        redactor
    }

    /// Learn one more secret (a configured credential, an issued bearer token, a revoked token).
    pub fn register(&self, secret: &SecretString) {
        let mut secrets = self.secrets.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !secrets.iter().any(|s| s.expose_secret() == secret.expose_secret()) {
            secrets.push(secret.clone());
        }
    }

    /// Learn a user name and its secret as sent in HTTP Basic (`base64(user:secret)`): the secret
    /// alone and the `user:secret` pair are masked in every form.
    pub fn register_pair(&self, user: &str, secret: &SecretString) {
        self.register(secret);
        self.register(&SecretString::from(format!("{user}:{}", secret.expose_secret())));
    }

    /// A redactor that knows these secrets and `extra` as well (e.g. the token being revoked).
    pub fn and(&self, extra: &SecretString) -> Redactor {
        let copy = Redactor {
            secrets: Arc::new(RwLock::new(self.snapshot())),
        };
        copy.register(extra);
        copy
    }

    /// A provider's request id or error code, kept only when it is short (at most `max`
    /// characters) and of `[A-Za-z0-9._:-]` with single inner spaces (Fastify's "Not Found")
    /// after redaction: anything else — a value that echoed a secret, carried markup, escapes or
    /// control characters — is dropped, not shown.
    pub fn identifier(&self, raw: &str, max: usize) -> Option<Redacted> {
        let redacted = self.redact(raw.trim(), usize::MAX);
        let text = redacted.as_str();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | ' ');
        let shaped = !text.is_empty() && text.trim() == text && !text.contains("  ");
        (shaped && text.chars().count() <= max && text.chars().all(allowed)).then_some(redacted)
    }

    /// Scrub every known secret and every credential-shaped value from `text` and cut it to `max`
    /// characters.
    pub fn redact(&self, text: &str, max: usize) -> Redacted {
        let mut ranges = Vec::new();
        let lower = text.to_ascii_lowercase();
        for secret in self.snapshot() {
            let value = secret.expose_secret();
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            for form in exact_forms(value.as_bytes()) {
                find_all(text, &form, &mut ranges);
            }
            for form in caseless_forms(value) {
                find_all(&lower, &form.to_ascii_lowercase(), &mut ranges);
            }
        }
        scheme_values(text, &lower, &mut ranges);
        jwt_values(text, &mut ranges);
        opaque_runs(text, &mut ranges);
        let masked = mask(text, ranges);
        if self.hides_a_secret(&masked) {
            return Redacted(HOSTILE_ECHO.to_string());
        }
        Redacted(clip(&masked, max))
    }

    /// Whether a secret survives in a non-canonical escaping (e.g. `%2D` for `-`, letters left
    /// as they are): percent-decoding what is left must not reveal a registered secret. Such
    /// text is an echo built to slip past the known forms, so none of it is kept.
    fn hides_a_secret(&self, masked: &str) -> bool {
        if !masked.contains('%') {
            return false;
        }
        let decoded = percent_encoding::percent_decode_str(masked).decode_utf8_lossy();
        let decoded = decoded.to_ascii_lowercase();
        self.snapshot().iter().any(|secret| {
            let value = secret.expose_secret();
            value.len() >= MIN_SECRET_LEN && decoded.contains(&value.to_ascii_lowercase())
        })
    }

    fn snapshot(&self) -> Vec<SecretString> {
        self.secrets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Forms matched with their exact letter case: base64 in both alphabets, whole and as it appears
/// inside a longer base64 text at byte offsets 0, 1 and 2.
fn exact_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
        for offset in 0..3 {
            forms.push(base64_core(engine, secret, offset));
        }
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms.sort();
    forms.dedup();
    forms
}

/// The characters of `base64(filler + secret + anything)`, with `offset` filler bytes, that depend
/// on the secret's bytes only.
fn base64_core(engine: &impl Engine, secret: &[u8], offset: usize) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(secret);
    let encoded = engine.encode(&bytes);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + secret.len())) / 6;
    encoded.get(first..end).unwrap_or_default().to_string()
}

/// Forms matched in any letter case: raw, JSON-escaped, hex and percent-encoded.
fn caseless_forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut forms = vec![secret.to_string(), hex::encode(bytes)];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_string());
    }
    forms.push(percent_encode(bytes, |b| {
        b.is_ascii_alphanumeric() || b"-._~".contains(&b)
    }));
    forms.push(percent_encode(bytes, |b| {
        b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
    }));
    forms.push(percent_encode(bytes, |_| false));
    forms.push(url::form_urlencoded::byte_serialize(bytes).collect());
    forms.sort();
    forms.dedup();
    forms
}

fn percent_encode(bytes: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every occurrence of `needle` in `haystack`, overlapping ones included.
fn find_all(haystack: &str, needle: &str, ranges: &mut Vec<Range<usize>>) {
    let Some(first_char) = needle.chars().next() else {
        return;
    };
    let mut from = 0;
    while let Some(found) = haystack.get(from..).and_then(|rest| rest.find(needle)) {
        let start = from + found;
        ranges.push(start..start + needle.len());
        from = start + first_char.len_utf8();
    }
}

/// Characters of a `b64token` (RFC 6750) and of percent-encoded text.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=%".contains(c)
}

/// The value after an authorization scheme name (`Bearer`, `Basic`), unless it is a plain word
/// (as in "Basic authentication failed").
fn scheme_values(text: &str, lower: &str, ranges: &mut Vec<Range<usize>>) {
    for scheme in ["bearer", "basic"] {
        for (at, _) in lower.match_indices(scheme) {
            let word_start = !lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric());
            if !word_start {
                continue;
            }
            let mut start = at + scheme.len();
            loop {
                let rest = &lower[start..];
                let gap = [" ", "\t", "%20", "+"].iter().find(|g| rest.starts_with(*g));
                match gap {
                    Some(g) => start += g.len(),
                    None => break,
                }
            }
            if start == at + scheme.len() {
                continue;
            }
            let len = text[start..]
                .find(|c: char| !is_token_char(c))
                .unwrap_or(text.len() - start);
            let value = &text[start..start + len];
            if !value.is_empty() && !value.chars().all(|c| c.is_ascii_lowercase()) {
                ranges.push(start..start + len);
            }
        }
    }
}

/// `eyJ…` (a base64url JSON object) followed by at least two more dot-separated parts: a JWT/JWS/JWE.
fn jwt_values(text: &str, ranges: &mut Vec<Range<usize>>) {
    let is_part_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    for (at, _) in text.match_indices("eyJ") {
        let len = text[at..].find(|c: char| !is_part_char(c)).unwrap_or(text.len() - at);
        if text[at..at + len].matches('.').count() >= 2 {
            ranges.push(at..at + len);
        }
    }
}

/// Long runs of the base64/hex alphabet (padding `=` only at the end) that mix letters and digits,
/// except provider ids. A run with `/` but without `+` or padding reads as a URL path: its segments are
/// judged one by one, so that a path with ids in it stays readable.
fn opaque_runs(text: &str, ranges: &mut Vec<Range<usize>>) {
    let in_alphabet = |b: u8| b.is_ascii_alphanumeric() || b"+/_-".contains(&b);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !in_alphabet(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && in_alphabet(bytes[i]) {
            i += 1;
        }
        let mut end = i;
        while end < bytes.len() && end - i < 2 && bytes[end] == b'=' {
            end += 1;
        }
        let run = &text[start..end];
        let path_like = run.contains('/') && !run.contains('+') && !run.ends_with('=');
        if path_like {
            let mut offset = start;
            for segment in run.split('/') {
                mask_if_opaque(segment, offset, ranges);
                offset += segment.len() + 1;
            }
        } else {
            mask_if_opaque(run, start, ranges);
        }
        i = end.max(i);
    }
}

fn mask_if_opaque(run: &str, start: usize, ranges: &mut Vec<Range<usize>>) {
    let mixed = run.bytes().any(|b| b.is_ascii_digit()) && run.bytes().any(|b| b.is_ascii_alphabetic());
    if run.len() >= OPAQUE_RUN && mixed && !is_id_shaped(run) {
        ranges.push(start..start + run.len());
    }
}

/// The id shapes of the providers, which provider text quotes: a UUID (Infisical) or exactly 32
/// lower-case hex digits (Onezone). Registered secrets of these shapes are still masked.
fn is_id_shaped(run: &str) -> bool {
    is_uuid(run) || (run.len() == 32 && run.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn is_uuid(run: &str) -> bool {
    run.len() == 36
        && run.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `text` with every range (merged where they overlap or touch) replaced by [`MASK`].
fn mask(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for range in merged {
        out.push_str(&text[done..range.start]);
        out.push_str(MASK);
        done = range.end;
    }
    out.push_str(&text[done..]);
    out
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The whole SHA-256 of a secret value, `sha256:` and 64 hex digits: what status pins a target to.
pub fn full_fingerprint(secret: &SecretString) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(secret.expose_secret().as_bytes()))
    )
}

/// A short, non-reversible fingerprint of a secret value: `sha256:` and the first 12 hex digits.
pub fn fingerprint(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_masked_and_short_ones_left_alone() {
        let redactor = Redactor::with(&[&SecretString::from("s3cr3t-value"), &SecretString::from("abc")]);
        let out = redactor.redact("got s3cr3t-value and abc", 100);
        assert_eq!(out.as_str(), "got [redacted] and abc");
    }

    #[test]
    fn a_token_registered_later_is_known_to_every_clone() {
        let redactor = Redactor::new();
        let clone = redactor.clone();
        redactor.register(&SecretString::from("issued-bearer-token"));
        assert!(
            !clone
                .redact("Bearer issued-bearer-token", 100)
                .as_str()
                .contains("issued")
        );
    }

    #[test]
    fn clipping_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip(&"é".repeat(400), 300).chars().count(), 301);
    }

    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use proptest::prelude::*;

    /// Every encoded form of `secret` the redactor promises to mask.
    fn encoded_forms(secret: &str) -> Vec<String> {
        let bytes = secret.as_bytes();
        let mut forms = vec![
            secret.to_string(),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex::encode(bytes),
            hex::encode_upper(bytes),
            url::form_urlencoded::byte_serialize(bytes).collect(),
            percent_encode(bytes, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            percent_encode(bytes, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)).to_lowercase(),
            percent_encode(bytes, |_| false),
            serde_json::to_string(secret).unwrap().trim_matches('"').to_string(),
        ];
        forms.sort();
        forms.dedup();
        forms
    }

    fn assert_no_form(out: &str, secret: &str) {
        for form in encoded_forms(secret) {
            assert!(!out.contains(&form), "{form:?} of {secret:?} survives in {out:?}");
        }
    }

    #[test]
    fn every_encoded_form_of_a_registered_secret_is_masked() {
        let secret = "pr1v@te key/with+odd=chars é";
        let redactor = Redactor::with(&[&SecretString::from(secret)]);
        for form in encoded_forms(secret) {
            let out = redactor.redact(&format!("echo: {{\"x\":\"{form}\"}} end"), 1000);
            assert_no_form(out.as_str(), secret);
            assert!(
                out.as_str().starts_with("echo: {\"x\":\"") && out.as_str().ends_with("\"} end"),
                "{out}"
            );
        }
    }

    #[test]
    fn the_basic_header_of_a_registered_pair_is_masked() {
        let redactor = Redactor::new();
        redactor.register_pair("mdb_sa_id_0123", &SecretString::from("mdb_sa_sk_s3cr3t"));
        let header = STANDARD.encode("mdb_sa_id_0123:mdb_sa_sk_s3cr3t");
        let out = redactor.redact(&format!("you sent authorization={header}; try again"), 1000);
        assert_eq!(out.as_str(), "you sent authorization=[redacted]; try again");
    }

    #[test]
    fn credential_shaped_values_are_scrubbed_without_registration() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let cases = [
            ("Authorization: Bearer abc.DEF-123", "Authorization: Bearer [redacted]"),
            ("authorization: basic dXNlcjpwYXNz", "authorization: basic [redacted]"),
            ("header=Bearer%20tok3n%2Bx", "header=Bearer%20[redacted]"),
            (&format!("token {jwt} expired"), "token [redacted] expired"),
            (
                "secret 5f4dcc3b5aa765d61d8327deb882cf99aa765d61 leaked",
                "secret [redacted] leaked",
            ),
            (
                "key=Zm9vYmFyYmF6cXV4/cXV1eDEyMzQ1Njc4OTBhYmNk+ZGVm= end",
                "key=[redacted] end",
            ),
            (
                "/tokens/MDAxNWxvY2F0aW9uIG9uZXpvbmUKMDAzYmlkZW50aWZpZXIgOEhm/x",
                "/tokens/[redacted]/x",
            ),
        ];
        let redactor = Redactor::new();
        for (text, expected) in cases {
            assert_eq!(redactor.redact(text, 1000).as_str(), expected, "{text}");
        }
        let kept = [
            "Basic authentication failed for the user",
            "Bearer token missing",
            "identity 8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a not found",
            "group 32b6e34b3d91647abb20e7b9 has no X.509 configuration",
            "operation revokeJwksFromIdentityProvider-is-not-allowed-here",
            "POST /api/atlas/v2/federationSettings/32b6e34b3d91647abb20e7b9/connectedOrgConfigs failed",
            "/api/v3/onezone/users/9a8b7c6d5e4f30211203f4e5d6c7b8a9/tokens/temporary: not found",
        ];
        for text in kept {
            assert_eq!(redactor.redact(text, 1000).as_str(), text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// For random secrets in random text, no encoded form of the secret survives.
        #[test]
        fn no_encoded_form_of_a_registered_secret_survives(
            secret in r"[ -~]{6,40}|\PC{6,16}",
            before in r"\PC{0,24}",
            after in r"\PC{0,24}",
            pick in 0usize..12,
        ) {
            let redactor = Redactor::with(&[&SecretString::from(secret.clone())]);
            let forms = encoded_forms(&secret);
            let form = &forms[pick % forms.len()];
            let out = redactor.redact(&format!("{before}{form}{after}"), usize::MAX);
            for form in &forms {
                prop_assert!(!out.as_str().contains(form.as_str()), "{:?} survives in {:?}", form, out);
            }
        }

        /// A secret inside a longer base64 text (at any byte offset, e.g. `base64(user:secret)` of a
        /// Basic header) leaves none of the characters that encode it alone.
        #[test]
        fn a_secret_inside_a_longer_base64_text_is_masked_at_every_offset(
            secret in r"[!-~]{6,40}",
            prefix in proptest::collection::vec(any::<u8>(), 0..8),
            suffix in proptest::collection::vec(any::<u8>(), 0..8),
            user in "[a-z0-9_]{1,12}",
        ) {
            let redactor = Redactor::with(&[&SecretString::from(secret.clone())]);
            let message = [prefix.as_slice(), secret.as_bytes(), suffix.as_slice()].concat();
            for engine in [&STANDARD, &URL_SAFE] {
                let out = redactor.redact(&format!("echo {}", engine.encode(&message)), usize::MAX);
                let core = base64_core(engine, secret.as_bytes(), prefix.len() % 3);
                prop_assert!(!out.as_str().contains(&core), "{:?} survives in {:?}", core, out);
            }
            let pair = Redactor::new();
            pair.register_pair(&user, &SecretString::from(secret.clone()));
            let header = STANDARD.encode(format!("{user}:{secret}"));
            let out = pair.redact(&format!("Authorization: Basic {header}"), usize::MAX);
            prop_assert!(!out.as_str().contains(&header));
            prop_assert!(!out.as_str().contains(&base64_core(&STANDARD, secret.as_bytes(), (user.len() + 1) % 3)));
        }
    }

    #[test]
    fn identifiers_are_short_tokens_or_nothing() {
        let redactor = Redactor::with(&[&SecretString::from("s3cr3t-value-42")]);
        assert_eq!(
            redactor.identifier("req-0a1b:2c.3_d", 100).map(Redacted::into_string),
            Some("req-0a1b:2c.3_d".to_string())
        );
        assert!(
            redactor.identifier("Not Found", 100).is_some(),
            "Fastify's error names are kept"
        );
        for hostile in [
            "s3cr3t-value-42",
            "a\tb",
            "x\ny",
            "<b>",
            "",
            "a  b",
            "a%2Fb",
            &"a".repeat(101),
            "Bearer s3cr3t-value-42",
        ] {
            assert_eq!(redactor.identifier(hostile, 100), None, "{hostile:?}");
        }
    }
}
