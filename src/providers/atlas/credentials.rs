//! Atlas credentials from the provider's Secret.

use secrecy::SecretString;

use crate::credentials::SecretData;
use crate::outcome::ProviderError;

/// The Secret keys Atlas reads.
pub const KEYS: &str = "publicKey + privateKey (API key) or clientId + clientSecret (service account)";

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

/// An API key when both its keys are set, else a service account.
pub fn parse(secret: &SecretData<'_>) -> Result<AtlasCredentials, ProviderError> {
    if let Some((public_key, private_key)) = secret.pair("publicKey", "privateKey")? {
        return Ok(AtlasCredentials::ApiKey {
            public_key,
            private_key,
        });
    }
    if let Some((client_id, client_secret)) = secret.pair("clientId", "clientSecret")? {
        return Ok(AtlasCredentials::ServiceAccount {
            client_id,
            client_secret,
        });
    }
    Err(secret.missing(&format!("the keys {KEYS}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::parse_pairs;
    use crate::outcome::Reason;

    #[test]
    fn atlas_prefers_api_key_then_service_account() {
        let c = parse_pairs(&[("publicKey", "pub"), ("privateKey", "priv-S3CR3T")], parse).unwrap();
        assert!(matches!(c, AtlasCredentials::ApiKey { ref public_key, .. } if public_key == "pub"));
        assert!(!format!("{c:?}").contains("priv-S3CR3T"), "Debug must redact secrets");
        let c = parse_pairs(&[("clientId", "id"), ("clientSecret", "s")], parse).unwrap();
        assert!(matches!(c, AtlasCredentials::ServiceAccount { .. }));
    }

    #[test]
    fn missing_keys_wait_with_a_message_naming_the_keys_not_the_values() {
        let err = parse_pairs(&[("publicKey", "pub-VALUE")], parse).unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
        let text = &err.message;
        assert!(
            text.contains("Secret ns/creds") && text.contains("privateKey"),
            "{text}"
        );
        assert!(!text.contains("pub-VALUE"));
        let err = parse_pairs(&[], parse).unwrap_err();
        assert!(err.message.contains("clientId + clientSecret"), "{}", err.message);
    }
}
