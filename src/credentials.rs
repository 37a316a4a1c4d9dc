//! Reading provider credentials from a Kubernetes Secret's data. What each provider needs is
//! parsed in its own folder (`providers::<name>::credentials`); this module holds what they share.
//!
//! Values are held as [`SecretString`]: their `Debug` output is redacted, and nothing here puts a
//! value into an error message. Errors name the Secret and the keys, never the contents. One trailing
//! newline (`--from-file` adds one) is dropped; any other whitespace or control character is refused
//! with a message naming the key, since no provider credential contains one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use secrecy::SecretString;

use crate::outcome::{ProviderError, Reason};

/// Which Secret the credentials came from, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct SecretLocation<'a> {
    /// Namespace of the Secret.
    pub namespace: &'a str,
    /// Name of the Secret.
    pub name: &'a str,
}

impl std::fmt::Display for SecretLocation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {}/{}", self.namespace, self.name)
    }
}

/// A Secret's data and where it came from: what a provider's `build` parses its credentials from.
#[derive(Clone, Copy, Debug)]
pub struct SecretData<'a> {
    /// The Secret's `data`.
    pub data: &'a BTreeMap<String, ByteString>,
    /// Where it came from.
    pub at: SecretLocation<'a>,
}

impl SecretData<'_> {
    /// The text of `key` (one trailing newline dropped); `None` when the key is missing or empty.
    pub fn get(&self, key: &str) -> Result<Option<String>, ProviderError> {
        let Some(bytes) = self.data.get(key) else {
            return Ok(None);
        };
        match checked_text(&bytes.0, key, self.at) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(Unusable::Empty) => Ok(None),
            Err(Unusable::Refused(err)) => Err(err),
        }
    }

    /// Two keys that belong together (an id and its secret): both, neither, or an error.
    pub fn pair(&self, id: &str, secret: &str) -> Result<Option<(String, SecretString)>, ProviderError> {
        match (self.get(id)?, self.get(secret)?) {
            (Some(x), Some(y)) => Ok(Some((x, SecretString::from(y)))),
            (None, None) => Ok(None),
            _ => Err(unusable(format!(
                "{} has only one of the keys {id:?} and {secret:?}; both are needed",
                self.at
            ))),
        }
    }

    /// The error for a Secret without the keys a provider needs; `needs` names them.
    pub fn missing(&self, needs: &str) -> ProviderError {
        unusable(format!("{} needs {needs}", self.at))
    }
}

fn unusable(message: String) -> ProviderError {
    ProviderError::waiting(Reason::CredentialsUnavailable, message)
}

/// Read one key of a Secret as a secret string (a revocation's token target).
pub fn secret_value(
    data: &BTreeMap<String, ByteString>,
    key: &str,
    at: SecretLocation<'_>,
) -> Result<SecretString, ProviderError> {
    let bytes = data
        .get(key)
        .ok_or_else(|| unusable(format!("{at} has no key {key:?}")))?;
    match checked_text(&bytes.0, key, at) {
        Ok(text) => Ok(SecretString::from(text.to_string())),
        Err(Unusable::Empty) => Err(unusable(format!("key {key:?} of {at} is empty"))),
        Err(Unusable::Refused(err)) => Err(err),
    }
}

enum Unusable {
    Empty,
    Refused(ProviderError),
}

/// UTF-8, one trailing newline dropped, no other whitespace or control character (the rule of
/// `api::ids::secret_value`).
fn checked_text<'a>(bytes: &'a [u8], key: &str, at: SecretLocation<'_>) -> Result<&'a str, Unusable> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Unusable::Refused(unusable(format!("key {key:?} of {at} is not UTF-8 text"))))?;
    let field = format!("key {key:?} of {at}");
    crate::api::ids::secret_value(&field, text).map_err(|e| match e {
        crate::api::ids::InvalidSecretValue::Empty(_) => Unusable::Empty,
        other => Unusable::Refused(unusable(other.to_string())),
    })
}

/// Secret data for tests: `pairs` as a Secret's `data`.
#[cfg(test)]
pub(crate) fn test_data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

/// Run a provider's credential `parse` on a Secret holding `pairs`.
#[cfg(test)]
pub(crate) fn parse_pairs<T>(
    pairs: &[(&str, &str)],
    parse: fn(&SecretData<'_>) -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    parse(&SecretData {
        data: &test_data(pairs),
        at: TEST_AT,
    })
}

/// Where test data comes from.
#[cfg(test)]
pub(crate) const TEST_AT: SecretLocation<'static> = SecretLocation {
    namespace: "ns",
    name: "creds",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_names_missing_key() {
        let err = secret_value(&test_data(&[("other", "x")]), "token", TEST_AT).unwrap_err();
        assert!(err.message.contains("no key \"token\""));
        assert!(secret_value(&test_data(&[("token", "abc\n")]), "token", TEST_AT).is_ok());
    }

    #[test]
    fn a_pair_needs_both_keys_and_blank_values_count_as_missing() {
        let half = test_data(&[("clientId", "id-VALUE"), ("clientSecret", "\n")]);
        let err = SecretData {
            data: &half,
            at: TEST_AT,
        }
        .pair("clientId", "clientSecret")
        .unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
        assert!(
            err.message.contains("both are needed") && err.message.contains("clientSecret"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("id-VALUE"));
        let none = test_data(&[]);
        assert!(
            SecretData {
                data: &none,
                at: TEST_AT
            }
            .pair("a", "b")
            .unwrap()
            .is_none()
        );
        let bytes = BTreeMap::from([("k".to_string(), ByteString(vec![0xff]))]);
        let err = SecretData {
            data: &bytes,
            at: TEST_AT,
        }
        .get("k")
        .unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{}", err.message);
    }
}
