//! Provider credentials read from Kubernetes Secrets.
//!
//! Values are held as [`SecretString`]: their `Debug` output is redacted, and nothing here puts a
//! value into an error message. Errors name the Secret and the keys, never the contents.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use secrecy::SecretString;

use crate::api::ProviderType;
use crate::outcome::{ProviderError, Reason};

/// MongoDB Atlas credentials.
#[derive(Clone, Debug)]
pub enum AtlasCredentials {
    /// Programmatic API key: HTTP Digest with the public key as user name.
    ApiKey {
        /// Public key (not secret, but kept together with the private key).
        public_key: String,
        /// Private key.
        private_key: SecretString,
    },
    /// Service account: OAuth2 client credentials.
    ServiceAccount {
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
    },
}

/// Infisical credentials.
#[derive(Clone, Debug)]
pub enum InfisicalCredentials {
    /// Machine identity with universal auth: logs in for an access token, cached until near expiry.
    UniversalAuth {
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
    },
    /// A ready access token.
    AccessToken(SecretString),
}

/// Onezone credentials: an access token sent as `x-auth-token`.
#[derive(Clone, Debug)]
pub struct OnezoneCredentials {
    /// The token.
    pub token: SecretString,
}

/// Credentials of any provider.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Atlas.
    Atlas(AtlasCredentials),
    /// Infisical.
    Infisical(InfisicalCredentials),
    /// Onezone.
    Onezone(OnezoneCredentials),
}

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

/// Parse a provider's credentials from a Secret's data.
pub fn parse(
    provider: ProviderType,
    data: &BTreeMap<String, ByteString>,
    at: SecretLocation<'_>,
) -> Result<Credentials, ProviderError> {
    let get = |key: &str| -> Result<Option<String>, ProviderError> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes.0)
                    .map_err(|_| unusable(format!("key {key:?} of {at} is not UTF-8 text")))?
                    .trim();
                if text.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(text.to_string()))
                }
            }
        }
    };
    let pair = |a: &str, b: &str| -> Result<Option<(String, SecretString)>, ProviderError> {
        match (get(a)?, get(b)?) {
            (Some(x), Some(y)) => Ok(Some((x, SecretString::from(y)))),
            (None, None) => Ok(None),
            _ => Err(unusable(format!(
                "{at} has only one of the keys {a:?} and {b:?}; both are needed"
            ))),
        }
    };
    match provider {
        ProviderType::Atlas => {
            if let Some((public_key, private_key)) = pair("publicKey", "privateKey")? {
                return Ok(Credentials::Atlas(AtlasCredentials::ApiKey {
                    public_key,
                    private_key,
                }));
            }
            if let Some((client_id, client_secret)) = pair("clientId", "clientSecret")? {
                return Ok(Credentials::Atlas(AtlasCredentials::ServiceAccount {
                    client_id,
                    client_secret,
                }));
            }
            Err(unusable(format!(
                "{at} needs the keys publicKey + privateKey (API key) or clientId + clientSecret (service account)"
            )))
        }
        ProviderType::Infisical => {
            if let Some((client_id, client_secret)) = pair("clientId", "clientSecret")? {
                return Ok(Credentials::Infisical(InfisicalCredentials::UniversalAuth {
                    client_id,
                    client_secret,
                }));
            }
            if let Some(token) = get("accessToken")? {
                return Ok(Credentials::Infisical(InfisicalCredentials::AccessToken(token.into())));
            }
            Err(unusable(format!(
                "{at} needs the keys clientId + clientSecret (universal auth) or accessToken"
            )))
        }
        ProviderType::Onezone => match get("token")? {
            Some(token) => Ok(Credentials::Onezone(OnezoneCredentials { token: token.into() })),
            None => Err(unusable(format!("{at} needs the key token (an Onedata access token)"))),
        },
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
    let text = std::str::from_utf8(&bytes.0).map_err(|_| unusable(format!("key {key:?} of {at} is not UTF-8 text")))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(unusable(format!("key {key:?} of {at} is empty")));
    }
    Ok(SecretString::from(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: SecretLocation<'static> = SecretLocation {
        namespace: "ns",
        name: "creds",
    };

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn atlas_prefers_api_key_then_service_account() {
        let c = parse(
            ProviderType::Atlas,
            &data(&[("publicKey", "pub"), ("privateKey", "priv-S3CR3T")]),
            AT,
        )
        .unwrap();
        assert!(
            matches!(c, Credentials::Atlas(AtlasCredentials::ApiKey { ref public_key, .. }) if public_key == "pub")
        );
        assert!(!format!("{c:?}").contains("priv-S3CR3T"), "Debug must redact secrets");
        let c = parse(
            ProviderType::Atlas,
            &data(&[("clientId", "id"), ("clientSecret", "s")]),
            AT,
        )
        .unwrap();
        assert!(matches!(c, Credentials::Atlas(AtlasCredentials::ServiceAccount { .. })));
    }

    #[test]
    fn missing_keys_wait_with_a_message_naming_the_keys_not_the_values() {
        let err = parse(ProviderType::Atlas, &data(&[("publicKey", "pub-VALUE")]), AT).unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
        assert!(
            err.message.contains("Secret ns/creds") && err.message.contains("privateKey"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("pub-VALUE"));
        let err = parse(ProviderType::Onezone, &data(&[]), AT).unwrap_err();
        assert!(err.message.contains("token"));
        let err = parse(ProviderType::Infisical, &data(&[("accessToken", "  ")]), AT).unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
    }

    #[test]
    fn secret_value_names_missing_key() {
        let err = secret_value(&data(&[("other", "x")]), "token", AT).unwrap_err();
        assert!(err.message.contains("no key \"token\""));
        assert!(secret_value(&data(&[("token", "abc\n")]), "token", AT).is_ok());
    }
}
