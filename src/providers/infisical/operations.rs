//! The Infisical revocations.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::client::{DIALECT, InfisicalClient};
use super::errors::{
    DELETE_CLIENT_SECRET_HINT, EDIT_IDENTITY_HINT, Refusal, client_secret_revoked, failure_with, generic,
    is_token_error, route_missing, route_missing_error,
};
use crate::api::InfisicalAuthMethod;
use crate::outcome::{AttemptContext, Outcome, OutcomeKind, ProviderError, Reason};
use crate::providers::Operation;
use crate::providers::answer::Answer;

impl InfisicalClient {
    pub(super) async fn delete_auth_method(
        &self,
        op: &Operation,
        identity_id: &str,
        method: InfisicalAuthMethod,
    ) -> Result<Outcome, ProviderError> {
        let url = self.url(&[method.path_segment(), "identities", identity_id]);
        let answer = self
            .call_authed(op.name(), |token| {
                self.http.client().delete(url.clone()).bearer_auth(token)
            })
            .await?;
        let seg = method.path_segment();
        if answer.is_success() {
            let message = format!("removed {seg} from identity {identity_id}");
            return Ok(answer.outcome(OutcomeKind::Revoked, message));
        }
        let short = method.short_name();
        let what = format!("{}: {}", op.name(), op.target());
        self.settle(
            &answer,
            Refusal {
                what: &what,
                gone: (OutcomeKind::AlreadyRevoked, &|said| {
                    format!(
                        "identity {identity_id} has no {short} auth (Infisical answered {said}): it was \
                         already removed, so this call changed nothing"
                    )
                }),
                not_found: &|said| {
                    format!(
                        "{what}: Infisical found no identity {identity_id} ({said}); check identityId; \
                         nothing was changed"
                    )
                },
                forbidden: EDIT_IDENTITY_HINT,
            },
        )
    }

    pub(super) async fn revoke_token(
        &self,
        op: &Operation,
        token: &SecretString,
        ctx: AttemptContext,
    ) -> Result<Outcome, ProviderError> {
        // No Authorization header: the route has no verifyAuth, and the token in the body proves
        // itself. Our own credentials are not needed, so a broken login cannot block this.
        let request = self
            .http
            .client()
            .post(self.url(&["token", "revoke"]))
            .json(&json!({ "accessToken": token.expose_secret() }));
        let name = op.name();
        // The answer may echo the token being revoked: its redactor knows that token too.
        let redactor = self.redactor.and(token);
        let answer = Answer::read(self.http.send(name, request).await?, name, DIALECT, &redactor).await?;
        let target = op.target();
        if answer.is_success() {
            return Ok(answer.outcome(OutcomeKind::Revoked, format!("revoked {target}")));
        }
        let failure = failure_with(&answer, &redactor);
        let what = format!("{name}: {target}: Infisical answered {}", failure.summary());
        let text = failure.text.as_str().to_ascii_lowercase();
        // What Infisical's revokeAccessToken does (identity-access-token-service.ts): it verifies
        // the JWT (a failure is 403 `TokenError`: expired, malformed, bad signature or algorithm),
        // answers 401 "Only identity access tokens can be revoked" for other token types, and 401
        // "No identity access token found" when no unrevoked row exists, i.e. the token was
        // already revoked (by us or someone else) or deleted (TTL or use limit reached).
        //
        // A token that is revoked or expired cannot be told apart from a wrong value copied from
        // elsewhere with certainty, and a security tool must not report success for a mistake.
        // So "revoked/not found" and "expired" count as AlreadyRevoked only when an earlier
        // attempt of this revocation may have reached Infisical (then the likely reason is that
        // our own call revoked it and its answer was lost); on a first attempt they fail
        // permanently. Other-type, malformed and foreign tokens fail on every attempt: no call of
        // ours can have caused that.
        let foreign = text.contains("only identity access tokens")
            || text.contains("malformed")
            || text.contains("signature")
            || text.contains("algorithm");
        let gone = !foreign
            && (answer.status == 401 || (answer.status == 403 && is_token_error(&failure) && text.contains("expired")));
        if gone {
            if ctx.earlier_attempt {
                return Ok(failure.outcome(
                    OutcomeKind::AlreadyRevoked,
                    format!(
                        "Infisical no longer accepts {target} ({}); an earlier attempt of this \
                         revocation may have revoked it, so this call changed nothing",
                        failure.summary()
                    ),
                ));
            }
            return Err(failure.permanent(
                Reason::TargetNotFound,
                format!(
                    "{what}; Infisical has no active token with this value: it was already \
                     revoked or has expired, or it is not from this Infisical instance; \
                     nothing was changed. No earlier attempt reached Infisical, so this is not \
                     reported as already revoked; check the token in the Secret and baseUrl"
                ),
            ));
        }
        if foreign {
            return Err(failure.permanent(
                Reason::BadRequest,
                format!(
                    "{what}; Infisical does not accept this value as one of its machine-identity \
                     access tokens; check the token in the Secret and that baseUrl is the \
                     instance that issued it"
                ),
            ));
        }
        if route_missing(&failure) {
            return Err(route_missing_error(&failure, &format!("{name}: {target}")));
        }
        Err(generic(&failure, &what, &self.unauthorized_hint(), ""))
    }

    pub(super) async fn revoke_client_secret(
        &self,
        op: &Operation,
        identity_id: &str,
        client_secret_id: &str,
    ) -> Result<Outcome, ProviderError> {
        let url = self.url(&[
            "universal-auth",
            "identities",
            identity_id,
            "client-secrets",
            client_secret_id,
            "revoke",
        ]);
        let answer = self
            .call_authed(op.name(), |token| {
                self.http.client().post(url.clone()).bearer_auth(token)
            })
            .await?;
        let what = format!("{}: {}", op.name(), op.target());
        if answer.is_success() {
            return match client_secret_revoked(answer.body()) {
                Some(true) => Ok(answer.outcome(
                    OutcomeKind::Revoked,
                    format!("revoked client secret {client_secret_id} of identity {identity_id}"),
                )),
                _ => Err(answer.error(ProviderError::permanent(
                    Reason::UnexpectedResponse,
                    format!(
                        "{what}: Infisical answered HTTP {} but did not report the client secret \
                         as revoked (clientSecretData.isClientSecretRevoked is not true)",
                        answer.status
                    ),
                ))),
            };
        }
        // Removing universal auth deletes all of the identity's client secrets.
        self.settle(
            &answer,
            Refusal {
                what: &what,
                gone: (OutcomeKind::AlreadyRevoked, &|said| {
                    format!(
                        "identity {identity_id} has no universal auth any more (Infisical answered \
                         {said}), so client secret {client_secret_id} no longer exists; this call \
                         changed nothing"
                    )
                }),
                not_found: &|said| {
                    format!(
                        "{what}: Infisical found no identity {identity_id} with client secret \
                         {client_secret_id} ({said}; Infisical answers so for an unknown identity and an \
                         unknown client secret alike); check identityId and clientSecretId; nothing \
                         was changed"
                    )
                },
                forbidden: DELETE_CLIENT_SECRET_HINT,
            },
        )
    }
}
