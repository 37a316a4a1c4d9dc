//! Onezone credentials from the provider's Secret.

use secrecy::SecretString;

use crate::credentials::SecretData;
use crate::outcome::ProviderError;

/// The Secret keys Onezone reads.
pub const KEYS: &str = "token (an Onedata access token)";

/// Onezone credentials: an access token sent as `x-auth-token`.
#[derive(Clone, Debug)]
pub struct OnezoneCredentials {
    /// The token.
    pub token: SecretString,
}

/// The `token` key.
pub fn parse(secret: &SecretData<'_>) -> Result<OnezoneCredentials, ProviderError> {
    match secret.get("token")? {
        Some(token) => Ok(OnezoneCredentials { token: token.into() }),
        None => Err(secret.missing(&format!("the key {KEYS}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::parse_pairs;
    use crate::outcome::Reason;

    #[test]
    fn the_token_key_is_required() {
        let err = parse_pairs(&[], parse).unwrap_err();
        assert_eq!(err.reason, Reason::CredentialsUnavailable);
        assert!(err.message.contains("token"));
        assert!(parse_pairs(&[("token", "tok\n")], parse).is_ok());
    }
}
