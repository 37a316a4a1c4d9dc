//! Atlas receipts: after a revocation, read back what the contract lets us read.

use reqwest::Method;

use super::OP_GET_USER_SECURITY;
use super::client::{AtlasClient, DIALECT, require_id, user_security_path};
use super::errors::Target;
use super::operations::UserSecurity;
use crate::outcome::{ProviderError, Reason};
use crate::providers::Verification;

impl AtlasClient {
    /// After `disableCustomerManagedX509`: the project's user security holds no customer CA.
    pub(super) async fn verify_x509(&self, group: &str) -> Result<Verification, ProviderError> {
        require_id("groupId", group)?;
        let path = user_security_path(group, false);
        let answer = self
            .call(OP_GET_USER_SECURITY, Method::GET, &path, Target::Project { group })
            .await?;
        let body = answer.needed_body(OP_GET_USER_SECURITY, DIALECT)?;
        let settings: UserSecurity = serde_json::from_str(body).map_err(|_| {
            answer.error(ProviderError::permanent(
                Reason::UnexpectedResponse,
                format!("{OP_GET_USER_SECURITY}: the answer is not UserSecurity JSON"),
            ))
        })?;
        let configured = settings.has_customer_ca();
        let how = format!(
            "{OP_GET_USER_SECURITY} of project {group}: {}",
            if configured {
                "a customer CA is still configured"
            } else {
                "no customer CA is configured"
            }
        );
        Ok(Verification::from_read(!configured, how, &answer))
    }
}

/// The JWKS revocation has no read-back in the Admin API contract.
pub(super) fn jwks_no_read_back() -> Verification {
    Verification::NoReadBack {
        why: "the Atlas Admin API offers no read-only call that shows a JWKS revocation (the identity provider reads the same before and after)".into(),
    }
}
