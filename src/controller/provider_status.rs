//! Reconciler of RevocationProvider and ClusterRevocationProvider: the `Ready` condition after a
//! live credential check.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use super::registry::ProviderSource;
use super::status::{Stamp, set_condition};
use super::{Context, Error};
use crate::api::{
    ClusterRevocationProvider, ConditionStatus, ConditionType, ProviderConfig, ProviderStatus, Reason,
    RevocationProvider,
};
use crate::outcome::ProviderError;
use crate::telemetry::{KindLabels, METRICS};

use ConditionStatus::{False, True};

/// Re-check interval of a Ready provider.
pub const READY_RECHECK: Duration = Duration::from_secs(300);
/// Re-check interval of a provider that is not Ready: its Secret may be fixed at any moment (the
/// operator may not watch Secrets). A permanent failure is not repeated against the provider while
/// nothing changed (see `ProviderRegistry::check_credentials`).
pub const NOT_READY_RECHECK: Duration = Duration::from_secs(10);
/// Re-check interval of a provider that could not be reached (each check is a live call).
pub const UNREACHABLE_RECHECK: Duration = Duration::from_secs(30);

/// A provider kind.
pub trait ProviderObject:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Kind name.
    const KIND: &'static str;
    /// The provider block.
    fn config(&self) -> Option<ProviderConfig>;
    /// Current status.
    fn provider_status(&self) -> Option<&ProviderStatus>;
    /// Replace the status.
    fn set_provider_status(&mut self, status: ProviderStatus);
    /// The Api to write this object's status.
    fn api(&self, client: kube::Client) -> Api<Self>;
    /// Namespace of its credentials Secret.
    fn secret_namespace<'a>(&'a self, ctx: &'a Context) -> &'a str;
}

macro_rules! provider_accessors {
    () => {
        fn config(&self) -> Option<ProviderConfig> {
            self.spec.config()
        }
        fn provider_status(&self) -> Option<&ProviderStatus> {
            self.status.as_ref()
        }
        fn set_provider_status(&mut self, status: ProviderStatus) {
            self.status = Some(status);
        }
    };
}

impl ProviderObject for RevocationProvider {
    const KIND: &'static str = "RevocationProvider";
    provider_accessors!();
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
    fn secret_namespace<'a>(&'a self, _ctx: &'a Context) -> &'a str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }
}

impl ProviderObject for ClusterRevocationProvider {
    const KIND: &'static str = "ClusterRevocationProvider";
    provider_accessors!();
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
    fn secret_namespace<'a>(&'a self, ctx: &'a Context) -> &'a str {
        ctx.registry.cluster_resource_namespace()
    }
}

/// Reconcile one provider object: check its credentials live, write the conditions, and send an
/// Event when `Ready` changes.
pub async fn reconcile<P: ProviderObject>(obj: Arc<P>, ctx: Arc<Context>) -> Result<Action, Error> {
    METRICS
        .reconciles
        .get_or_create(&KindLabels { kind: P::KIND.into() })
        .inc();
    let current = obj.provider_status().cloned().unwrap_or_default();
    let checked = check(obj.as_ref(), &ctx).await;
    let stamp = Stamp {
        generation: obj.meta().generation,
        now: Timestamp::now(),
    };
    let next = next_status(obj.as_ref(), &current, &checked, stamp);
    if next != current {
        let mut updated = obj.as_ref().clone();
        updated.set_provider_status(next.clone());
        match obj
            .api(ctx.client.clone())
            .replace_status(&obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(written) => announce(&written, &ctx, &current, &checked).await,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(match &checked {
        Ok(_) => READY_RECHECK,
        Err(err) if err.is_transient() => UNREACHABLE_RECHECK,
        Err(_) => NOT_READY_RECHECK,
    }))
}

/// The live check: build (or reuse) the client and let it authenticate.
async fn check<P: ProviderObject>(obj: &P, ctx: &Context) -> Result<&'static str, ProviderError> {
    let config = obj.config().ok_or_else(|| {
        ProviderError::permanent(
            Reason::InvalidProviderConfig,
            "exactly one of spec.atlas, spec.infisical and spec.onezone must be set",
        )
    })?;
    let source = ProviderSource {
        uid: obj.uid().unwrap_or_default(),
        generation: obj.meta().generation,
        config,
        secret_namespace: obj.secret_namespace(ctx),
    };
    ctx.registry.check_credentials(source).await
}

fn next_status<P: ProviderObject>(
    obj: &P,
    current: &ProviderStatus,
    checked: &Result<&'static str, ProviderError>,
    stamp: Stamp,
) -> ProviderStatus {
    let mut next = ProviderStatus {
        observed_generation: stamp.generation,
        ..current.clone()
    };
    if let Some(config) = obj.config() {
        next.provider_type = Some(config.backend.provider_type().to_string());
    }
    match checked {
        Ok(auth) => {
            next.auth_type = Some(auth.to_string());
            set_provider_conditions(&mut next.conditions, None, &verified_message(auth), stamp);
        }
        Err(err) => set_provider_conditions(&mut next.conditions, Some(err), &err.message, stamp),
    }
    next
}

fn verified_message(auth: &str) -> String {
    format!("the provider accepted the credentials ({auth})")
}

fn ready_reason(status: &ProviderStatus) -> Option<(String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Ready.as_str())
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Log the written check, and send an Event when `Ready` changed (status or reason).
async fn announce<P: ProviderObject>(
    written: &P,
    ctx: &Context,
    before: &ProviderStatus,
    checked: &Result<&'static str, ProviderError>,
) {
    let object = super::describe(written);
    let (type_, reason, message) = match checked {
        Ok(auth) => (EventType::Normal, Reason::CredentialsVerified, verified_message(auth)),
        Err(err) => (EventType::Warning, err.reason, err.message.clone()),
    };
    info!(kind = P::KIND, object = %object, ready = checked.is_ok(), reason = %reason, "{message}");
    let after = written.provider_status().and_then(ready_reason);
    if after != ready_reason(before) {
        ctx.event(written, type_, reason, "CheckCredentials", message).await;
    }
}

/// `Ready`, and `Reconciling` (a transient failure: re-checked soon) or `Stalled` (the provider
/// object or its Secret must change), with the message in the condition that is True.
fn set_provider_conditions(
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    failure: Option<&ProviderError>,
    message: &str,
    stamp: Stamp,
) {
    let (ready, reconciling, stalled, reason) = match failure {
        None => (True, False, False, Reason::CredentialsVerified),
        Some(err) if err.is_transient() => (False, True, False, err.reason),
        Some(err) => (False, False, True, err.reason),
    };
    let said = |status: ConditionStatus| if status == True { message } else { "" };
    set_condition(conditions, ConditionType::Ready, ready, reason, said(ready), stamp);
    set_condition(
        conditions,
        ConditionType::Reconciling,
        reconciling,
        reason,
        said(reconciling),
        stamp,
    );
    set_condition(
        conditions,
        ConditionType::Stalled,
        stalled,
        reason,
        said(stalled),
        stamp,
    );
}
