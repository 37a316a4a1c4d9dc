//! The one place where text from outside the operator (a provider's answer, an echo of what we
//! sent) becomes text we may put into status, Events, logs or metrics.
//!
//! A [`Redactor`] knows every credential a client holds and obtains at run time; its output is a
//! [`Redacted`] string, which only this module can make. Writers of status, Events and logs take
//! `Redacted` (or text the operator wrote itself), never raw provider text.

use std::fmt;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// What replaces a secret value.
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this are not searched for: replacing them would mangle ordinary words.
const MIN_SECRET_LEN: usize = 6;

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

    /// A redactor that knows these secrets and `extra` as well (e.g. the token being revoked).
    pub fn and(&self, extra: &SecretString) -> Redactor {
        let copy = Redactor {
            secrets: Arc::new(RwLock::new(self.snapshot())),
        };
        copy.register(extra);
        copy
    }

    /// Scrub every known secret from `text` and cut it to `max` characters.
    pub fn redact(&self, text: &str, max: usize) -> Redacted {
        let mut out = text.to_string();
        for secret in self.snapshot() {
            let value = secret.expose_secret();
            if value.len() >= MIN_SECRET_LEN {
                out = out.replace(value, MASK);
            }
        }
        Redacted(clip(&out, max))
    }

    fn snapshot(&self) -> Vec<SecretString> {
        self.secrets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
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
}
