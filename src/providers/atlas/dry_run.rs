//! Atlas dry runs: read the target, revoke nothing.

use reqwest::Method;
use serde::Deserialize;

use super::client::{AtlasClient, DIALECT, jwks_path, require_id, user_security_path};
use super::errors::Target;
use super::operations::UserSecurity;
use super::{OP_GET_IDENTITY_PROVIDER, OP_GET_USER_SECURITY};
use crate::outcome::{Outcome, OutcomeKind, ProviderError, Reason};
use crate::providers::answer::MAX_PROVIDER_TEXT;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityProvider {
    display_name: Option<String>,
    protocol: Option<String>,
    issuer_uri: Option<String>,
}

impl AtlasClient {
    pub(super) async fn dry_run_jwks(&self, fid: &str, idp: &str) -> Result<Outcome, ProviderError> {
        require_id("federationSettingsId", fid)?;
        require_id("identityProviderId", idp)?;
        let target = Target::IdentityProvider { fid, idp };
        let path = jwks_path(fid, idp, false);
        let answer = self.call(OP_GET_IDENTITY_PROVIDER, Method::GET, &path, target).await?;
        let found: IdentityProvider = serde_json::from_str(answer.body()).unwrap_or_default();
        let mut facts = Vec::new();
        if let Some(name) = &found.display_name {
            facts.push(format!("{:?}", self.redactor.redact(name, 100).as_str()));
        }
        if let Some(protocol) = &found.protocol {
            facts.push(self.redactor.redact(protocol, 20).into_string());
        }
        if let Some(issuer) = &found.issuer_uri {
            facts.push(format!("issuer {}", self.redactor.redact(issuer, 200)));
        }
        let described = if facts.is_empty() {
            String::new()
        } else {
            format!(" ({})", facts.join(", "))
        };
        let mut message = format!(
            "would revoke the JWKS of identity provider {idp}{described} in federation {fid}; nothing was revoked"
        );
        if found
            .protocol
            .as_deref()
            .is_some_and(|p| !p.eq_ignore_ascii_case("OIDC"))
        {
            message.push_str("; note: Atlas revokes JWKS of OIDC identity providers only");
        }
        Ok(answer.outcome(OutcomeKind::DryRun, message))
    }

    pub(super) async fn dry_run_x509(&self, group: &str) -> Result<Outcome, ProviderError> {
        require_id("groupId", group)?;
        let target = Target::Project { group };
        let path = user_security_path(group, false);
        let answer = self.call(OP_GET_USER_SECURITY, Method::GET, &path, target).await?;
        let body = answer.needed_body(OP_GET_USER_SECURITY, DIALECT)?;
        let settings: UserSecurity = serde_json::from_str(body).map_err(|_| {
            answer.error(ProviderError::permanent(
                Reason::UnexpectedResponse,
                format!(
                    "{OP_GET_USER_SECURITY}: Atlas answered {} but the body is not UserSecurity JSON: {}",
                    answer.status_text(),
                    self.redactor.redact(body, MAX_PROVIDER_TEXT)
                ),
            ))
        })?;
        let message = if settings.has_customer_ca() {
            format!(
                "would disable customer-managed X.509 of project {group} (a customer CA is configured; disabling removes it and triggers a rolling restart); nothing was revoked"
            )
        } else {
            format!(
                "customer-managed X.509 of project {group} is already disabled (no customer CA is configured); nothing was revoked"
            )
        };
        Ok(answer.outcome(OutcomeKind::DryRun, message))
    }
}
