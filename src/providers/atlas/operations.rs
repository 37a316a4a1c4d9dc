//! The two Atlas revocations.

use reqwest::Method;
use serde::Deserialize;

use super::client::{AtlasClient, jwks_path, require_id, user_security_path};
use super::errors::Target;
use super::{OP_DISABLE_X509, OP_REVOKE_JWKS};
use crate::outcome::{Outcome, OutcomeKind, ProviderError};

/// A project's `UserSecurity` (the part Revoker reads).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserSecurity {
    #[serde(rename = "customerX509")]
    customer_x509: Option<CustomerX509>,
}

#[derive(Debug, Default, Deserialize)]
struct CustomerX509 {
    cas: Option<String>,
}

impl UserSecurity {
    /// True when customer CA certificates are configured.
    pub(super) fn has_customer_ca(&self) -> bool {
        self.customer_x509
            .as_ref()
            .and_then(|x| x.cas.as_deref())
            .is_some_and(|cas| !cas.trim().is_empty())
    }
}

impl AtlasClient {
    pub(super) async fn revoke_jwks(&self, fid: &str, idp: &str) -> Result<Outcome, ProviderError> {
        require_id("federationSettingsId", fid)?;
        require_id("identityProviderId", idp)?;
        let target = Target::IdentityProvider { fid, idp };
        let answer = self
            .call(OP_REVOKE_JWKS, Method::DELETE, &jwks_path(fid, idp, true), target)
            .await?;
        Ok(answer.outcome(
            OutcomeKind::Revoked,
            format!(
                "revoked the JWKS of identity provider {idp} (federation {fid}): Atlas refreshes the identity provider's public keys on all clusters, tokens signed before now stop working and users must log in again"
            ),
        ))
    }

    pub(super) async fn disable_x509(&self, group: &str) -> Result<Outcome, ProviderError> {
        require_id("groupId", group)?;
        let target = Target::Project { group };
        let answer = self
            .call(
                OP_DISABLE_X509,
                Method::DELETE,
                &user_security_path(group, true),
                target,
            )
            .await?;
        // 202 carries the project's UserSecurity. The 2xx is what counts; the body only refines
        // the message (Atlas applies the change with a rolling restart).
        let status = answer.status;
        let mut message = format!(
            "disabled customer-managed X.509 of project {group}: Atlas removed the customer CA and applies the change with a rolling restart"
        );
        match serde_json::from_str::<UserSecurity>(answer.body()) {
            Ok(settings) if settings.has_customer_ca() => message.push_str(&format!(
                "; note: the answer (HTTP {status}) still lists customer CA certificates, check GET /api/atlas/v2/groups/{group}/userSecurity"
            )),
            Ok(_) => {}
            Err(_) => message.push_str(&format!(
                "; note: the answer (HTTP {status}) was not the expected UserSecurity JSON"
            )),
        }
        Ok(answer.outcome(OutcomeKind::Revoked, message))
    }
}
