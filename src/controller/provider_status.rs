//! Reconciler of RevocationProvider and ClusterRevocationProvider: the `Ready` condition after a
//! live credential check.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use super::registry::ProviderSource;
use super::status::set_condition;
use super::{Context, Error};
use crate::api::{
    ClusterRevocationProvider, ConditionStatus, ConditionType, ProviderConfig, ProviderStatus, Reason,
    RevocationProvider,
};
use crate::telemetry::{KindLabels, METRICS};

/// Re-check interval of a Ready provider.
pub const READY_RECHECK: Duration = Duration::from_secs(300);
/// Re-check interval of a provider that is not Ready.
pub const NOT_READY_RECHECK: Duration = Duration::from_secs(30);

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

impl ProviderObject for RevocationProvider {
    const KIND: &'static str = "RevocationProvider";
    fn config(&self) -> Option<ProviderConfig> {
        self.spec.config()
    }
    fn provider_status(&self) -> Option<&ProviderStatus> {
        self.status.as_ref()
    }
    fn set_provider_status(&mut self, status: ProviderStatus) {
        self.status = Some(status);
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
    fn secret_namespace<'a>(&'a self, _ctx: &'a Context) -> &'a str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }
}

impl ProviderObject for ClusterRevocationProvider {
    const KIND: &'static str = "ClusterRevocationProvider";
    fn config(&self) -> Option<ProviderConfig> {
        self.spec.config()
    }
    fn provider_status(&self) -> Option<&ProviderStatus> {
        self.status.as_ref()
    }
    fn set_provider_status(&mut self, status: ProviderStatus) {
        self.status = Some(status);
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
    fn secret_namespace<'a>(&'a self, ctx: &'a Context) -> &'a str {
        ctx.registry.cluster_resource_namespace()
    }
}

/// Reconcile one provider object.
pub async fn reconcile<P: ProviderObject>(obj: Arc<P>, ctx: Arc<Context>) -> Result<Action, Error> {
    METRICS
        .reconciles
        .get_or_create(&KindLabels { kind: P::KIND.into() })
        .inc();
    let current = obj.provider_status().cloned().unwrap_or_default();
    let mut next = ProviderStatus {
        observed_generation: obj.meta().generation,
        ..current.clone()
    };
    let (ready, reason, message) = match obj.config() {
        None => (
            false,
            Reason::InvalidProviderConfig,
            "exactly one of atlas, infisical, onezone must be set".to_string(),
        ),
        Some(config) => {
            next.provider_type = Some(config.backend.provider_type().to_string());
            let source = ProviderSource {
                uid: obj.uid().unwrap_or_default(),
                generation: obj.meta().generation,
                config,
                secret_namespace: obj.secret_namespace(&ctx),
            };
            match check(&ctx, source).await {
                Ok(auth) => {
                    next.auth_type = Some(auth.to_string());
                    (
                        true,
                        Reason::CredentialsVerified,
                        format!("credentials accepted ({auth})"),
                    )
                }
                Err(e) => (false, e.reason, e.message),
            }
        }
    };
    set_condition(
        &mut next.conditions,
        ConditionType::Ready,
        ConditionStatus::from_bool(ready),
        reason,
        &message,
        obj.meta().generation,
        Timestamp::now(),
    );
    if next != current {
        let mut updated = obj.as_ref().clone();
        updated.set_provider_status(next);
        match obj
            .api(ctx.client.clone())
            .replace_status(&obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                info!(kind = P::KIND, object = %super::describe(obj.as_ref()), ready, reason = %reason, "{message}")
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::requeue(if ready { READY_RECHECK } else { NOT_READY_RECHECK }))
}

async fn check(ctx: &Context, source: ProviderSource<'_>) -> Result<&'static str, crate::outcome::ProviderError> {
    let resolved = ctx.registry.client_for(source).await?;
    resolved.client.check_credentials().await
}
