//! Per-object gauges, computed from the controllers' caches at each scrape: one
//! `revoker_revocation_info` series per revocation and one `revoker_provider_ready` series per
//! provider. A deleted object leaves the cache, so its series goes with it: the number of series
//! is bounded by the number of objects, with no clean-up to forget.

use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::provider_status::ProviderObject;
use super::resources::{ResolvedIds, Revocation};
use crate::api::{ConditionStatus, ConditionType};

/// Labels of `revoker_revocation_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevocationInfo {
    /// Namespace of the revocation.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// JwksRevocation, AuthMethodRevocation, TokenRevocation.
    pub kind: String,
    /// atlas, infisical, onezone (from the spec's provider block).
    pub provider: String,
    /// Pending, Running, Succeeded, Failed.
    pub phase: String,
    /// The reason of the `Succeeded` condition ("" before the first status write).
    pub reason: String,
    /// "true" for a dry run.
    pub dry_run: String,
}

/// Labels of `revoker_provider_ready`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderInfo {
    /// Namespace ("" for a ClusterRevocationProvider).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// RevocationProvider, ClusterRevocationProvider.
    pub kind: String,
    /// atlas, infisical, onezone.
    pub provider: String,
}

type RevocationSource = Box<dyn Fn() -> Vec<RevocationInfo> + Send + Sync>;
type ProviderSource = Box<dyn Fn() -> Vec<(ProviderInfo, bool)> + Send + Sync>;

/// The collector registered with the metrics registry; controllers add their caches to it.
#[derive(Default)]
pub struct ObjectMetrics {
    revocations: RwLock<Vec<RevocationSource>>,
    providers: RwLock<Vec<ProviderSource>>,
}

impl std::fmt::Debug for ObjectMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMetrics").finish_non_exhaustive()
    }
}

impl ObjectMetrics {
    /// Export the revocations of a controller's cache.
    pub fn add_revocations<K: Revocation>(&self, store: Store<K>) {
        push(
            &self.revocations,
            Box::new(move || store.state().iter().map(|r| revocation_info(r.as_ref())).collect()),
        );
    }

    /// Export the providers of a controller's cache.
    pub fn add_providers<P: ProviderObject>(&self, store: Store<P>) {
        push(
            &self.providers,
            Box::new(move || store.state().iter().map(|p| provider_info(p.as_ref())).collect()),
        );
    }

    fn revocation_family(&self) -> Family<RevocationInfo, Gauge> {
        let family = Family::<RevocationInfo, Gauge>::default();
        for source in self.revocations.read().unwrap_or_else(|p| p.into_inner()).iter() {
            for labels in source() {
                family.get_or_create(&labels).set(1);
            }
        }
        family
    }

    fn provider_family(&self) -> Family<ProviderInfo, Gauge> {
        let family = Family::<ProviderInfo, Gauge>::default();
        for source in self.providers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            for (labels, ready) in source() {
                family.get_or_create(&labels).set(i64::from(ready));
            }
        }
        family
    }
}

impl Collector for ObjectMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let revocations = self.revocation_family();
        let help = "One series per revocation object (value 1), labelled with its phase and reason";
        revocations.encode(encoder.encode_descriptor("revocation_info", help, None, revocations.metric_type())?)?;
        let providers = self.provider_family();
        let help = "Per provider object: 1 when its credential check passed (Ready=True), else 0";
        providers.encode(encoder.encode_descriptor("provider_ready", help, None, providers.metric_type())?)?;
        Ok(())
    }
}

/// The process-wide per-object metrics, registered with the metrics registry on first use.
pub static OBJECT_METRICS: std::sync::LazyLock<Arc<ObjectMetrics>> = std::sync::LazyLock::new(|| {
    let metrics = Arc::new(ObjectMetrics::default());
    crate::telemetry::METRICS.register_collector(Box::new(metrics.clone()));
    metrics
});

fn push<T>(sources: &RwLock<Vec<T>>, source: T) {
    sources
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(source);
}

fn revocation_info<K: Revocation>(obj: &K) -> RevocationInfo {
    let status = obj.revocation_status();
    let reason = status
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == ConditionType::Succeeded.as_str())
        })
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    RevocationInfo {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        kind: K::KIND.into(),
        provider: obj
            .plan(&ResolvedIds::placeholders(&obj.id_lookups()))
            .map(|p| p.provider_type().to_string())
            .unwrap_or_default(),
        phase: status.map(|s| s.phase).unwrap_or_default().to_string(),
        reason,
        dry_run: obj.lifecycle().dry_run.to_string(),
    }
}

fn provider_info<P: ProviderObject>(obj: &P) -> (ProviderInfo, bool) {
    let ready = obj.provider_status().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Ready.as_str() && c.status == ConditionStatus::True.as_str())
    });
    let info = ProviderInfo {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        kind: P::KIND.into(),
        provider: obj
            .config()
            .map(|c| c.backend.provider_type().to_string())
            .unwrap_or_default(),
    };
    (info, ready)
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    use super::*;
    use crate::api::{JwksRevocation, RevocationProvider};
    use crate::telemetry::METRICS;

    fn jwks(name: &str, phase: &str, reason: &str) -> JwksRevocation {
        serde_json::from_value(json!({
            "apiVersion": "revoker.dev/v1alpha1", "kind": "JwksRevocation",
            "metadata": {"name": name, "namespace": "metrics-test", "uid": name},
            "spec": {
                "providerRef": {"name": "atlas"}, "dryRun": true,
                "atlas": {"federationSettingsId": "0123456789abcdef01234567", "identityProviderId": "89abcdef0123456789abcdef"},
            },
            "status": {"phase": phase, "conditions": [{
                "type": "Succeeded", "status": "False", "reason": reason, "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]},
        }))
        .expect("a valid JwksRevocation")
    }

    #[test]
    fn each_object_has_one_series_that_leaves_with_it() {
        let (store, mut writer) = reflector::store::<JwksRevocation>();
        OBJECT_METRICS.add_revocations(store);
        let (providers, mut provider_writer) = reflector::store::<RevocationProvider>();
        OBJECT_METRICS.add_providers(providers);
        let failed = jwks("metrics-failed", "Failed", "Unauthorized");
        writer.apply_watcher_event(&watcher::Event::Apply(failed.clone()));
        let provider: RevocationProvider = serde_json::from_value(json!({
            "apiVersion": "revoker.dev/v1alpha1", "kind": "RevocationProvider",
            "metadata": {"name": "metrics-atlas", "namespace": "metrics-test", "uid": "p1"},
            "spec": {"atlas": {"credentialsSecretRef": {"name": "creds"}}},
        }))
        .expect("a valid RevocationProvider");
        provider_writer.apply_watcher_event(&watcher::Event::Apply(provider));

        let text = METRICS.encode();
        let series = r#"revoker_revocation_info{namespace="metrics-test",name="metrics-failed",kind="JwksRevocation",provider="atlas",phase="Failed",reason="Unauthorized",dry_run="true"} 1"#;
        assert!(text.contains(series), "{text}");
        let ready = r#"revoker_provider_ready{namespace="metrics-test",name="metrics-atlas",kind="RevocationProvider",provider="atlas"} 0"#;
        assert!(text.contains(ready), "{text}");

        writer.apply_watcher_event(&watcher::Event::Delete(failed));
        assert!(
            !METRICS.encode().contains("metrics-failed"),
            "a deleted object keeps no series"
        );
    }

    #[test]
    fn counters_an_alert_uses_exist_at_zero_from_start() {
        let text = METRICS.encode();
        for series in [
            r#"revoker_revocations_total{kind="AuthMethodRevocation",provider="onezone",result="failed"} 0"#,
            r#"revoker_revocation_failures_total{kind="AuthMethodRevocation",provider="onezone",reason="BackoffLimitExceeded"} 0"#,
            r#"revoker_retries_total{kind="AuthMethodRevocation",provider="onezone",reason="RateLimited"} 0"#,
        ] {
            assert!(text.contains(series), "missing {series}");
        }
    }
}
