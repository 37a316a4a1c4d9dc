//! Infisical credentials from the provider's Secret.

use secrecy::SecretString;

use crate::credentials::SecretData;
use crate::outcome::ProviderError;

/// The Secret keys Infisical reads.
pub const KEYS: &str = "clientId + clientSecret (universal auth) or accessToken";

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

/// Universal auth when both its keys are set, else an access token.
pub fn parse(secret: &SecretData<'_>) -> Result<InfisicalCredentials, ProviderError> {
    if let Some((client_id, client_secret)) = secret.pair("clientId", "clientSecret")? {
        return Ok(InfisicalCredentials::UniversalAuth {
            client_id,
            client_secret,
        });
    }
    if let Some(token) = secret.get("accessToken")? {
        return Ok(InfisicalCredentials::AccessToken(token.into()));
    }
    Err(secret.missing(&format!("the keys {KEYS}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::parse_pairs;
    use crate::outcome::Reason;

    #[test]
    fn universal_auth_then_access_token_and_a_blank_token_waits() {
        let c = parse_pairs(&[("clientId", "id"), ("clientSecret", "s3cret-VALUE")], parse).unwrap();
        assert!(matches!(c, InfisicalCredentials::UniversalAuth { .. }));
        assert!(!format!("{c:?}").contains("s3cret-VALUE"));
        let c = parse_pairs(&[("accessToken", "at")], parse).unwrap();
        assert!(matches!(c, InfisicalCredentials::AccessToken(_)));
        let err = parse_pairs(&[("accessToken", "  ")], parse).unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
        assert!(err.message.contains("accessToken"), "{}", err.message);
    }
}
