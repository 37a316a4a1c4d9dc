//! Infisical receipts: after a revocation, read back the identity's auth method or client secret.

use super::client::InfisicalClient;
use super::errors::{Refusal, client_secret_revoked};
use crate::api::InfisicalAuthMethod;
use crate::outcome::{OutcomeKind, ProviderError};
use crate::providers::Verification;

impl InfisicalClient {
    /// After deleting an auth method: the identity no longer has it.
    pub(super) async fn verify_auth_method(
        &self,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Verification, ProviderError> {
        let answer = self.read_auth_method(identity_id, method).await?;
        let seg = method.path_segment();
        if answer.is_success() {
            let how = format!("GET {seg} of identity {identity_id}: it is still attached");
            return Ok(Verification::from_read(false, how, &answer));
        }
        let what = format!("verifying the deletion of {seg} of identity {identity_id}");
        // "does not have <method> auth" is the revocation in effect; anything else is an error.
        self.settle(
            &answer,
            Refusal {
                what: &what,
                gone: (OutcomeKind::AlreadyRevoked, &|said| said),
                not_found: &|said| format!("{what}: Infisical found no identity {identity_id} ({said})"),
                forbidden: "the credentials' machine identity needs permission to read Identities",
            },
        )?;
        let how = format!("GET {seg} of identity {identity_id}: the identity no longer has it");
        Ok(Verification::from_read(true, how, &answer))
    }

    /// After revoking a client secret: Infisical shows it revoked.
    pub(super) async fn verify_client_secret(
        &self,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Verification, ProviderError> {
        let answer = self.read_client_secret(identity_id, client_secret_id).await?;
        let target = format!("client secret {client_secret_id} of identity {identity_id}");
        if !answer.is_success() {
            let what = format!("verifying the revocation of {target}");
            self.settle(
                &answer,
                Refusal {
                    what: &what,
                    gone: (OutcomeKind::AlreadyRevoked, &|said| said),
                    not_found: &|said| format!("{what}: Infisical found no {target} ({said})"),
                    forbidden: "the credentials' machine identity needs permission to read the identity's client secrets",
                },
            )?;
            let how = format!(
                "getUniversalAuthClientSecret: the identity has no universal auth any more, so {target} is gone"
            );
            return Ok(Verification::from_read(true, how, &answer));
        }
        let revoked = client_secret_revoked(answer.body()) == Some(true);
        let how = format!(
            "getUniversalAuthClientSecret: {target} has isClientSecretRevoked {}",
            revoked
        );
        Ok(Verification::from_read(revoked, how, &answer))
    }
}

/// A token revoked by value has no read-back short of using it.
pub(super) fn token_no_read_back() -> Verification {
    Verification::NoReadBack {
        why: "Infisical's contract has no read-only check of a token: the only check is to authenticate with it, which Revoker does not do with a token it revoked".into(),
    }
}
