//! The controllers: one per revocation kind, one per provider kind.

pub mod backoff;
pub mod budget;
pub mod executor;
pub mod object_metrics;
pub mod provider_status;
pub mod receipt;
pub mod registry;
pub mod resources;
pub mod revocation;
pub mod run;
pub mod status;
#[cfg(test)]
mod tests;
pub mod trigger;

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

pub use registry::ProviderRegistry;

use crate::api::{Reason, RevocationStatus};

/// Errors that end a reconcile early (the object is requeued with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A namespaced object came without a namespace.
    #[error("object has no namespace")]
    MissingNamespace,
}

impl Error {
    /// A short label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::MissingNamespace => "missing_namespace",
        }
    }
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// Who publishes the Events.
    pub reporter: Reporter,
    /// Provider lookup and client cache.
    pub registry: ProviderRegistry,
    /// Versions of revocations this process has itself replaced with a status write.
    pub superseded: Superseded,
    /// Results of provider calls whose status write has not landed yet.
    pub unwritten: UnwrittenResults,
    /// This operator instance (recorded with each attempt).
    pub instance: executor::Instance,
    /// The audit trail.
    pub audit: crate::audit::Auditor,
}

/// Results of provider calls that could not be written (the API server was unreachable, or kept
/// refusing the write), per object uid with the attempt they belong to. The next reconcile of the
/// object writes the remembered result instead of calling the provider again, so an API-server
/// outage after the provider answered costs no second call while this process lives.
#[derive(Default)]
pub struct UnwrittenResults {
    results: std::sync::Mutex<std::collections::HashMap<String, (i32, RevocationStatus)>>,
}

/// Unwritten results kept at most (one per object; more means the API server is gone for long).
const UNWRITTEN_MAX: usize = 100_000;

impl UnwrittenResults {
    /// The result `status` of attempt `attempt` of object `uid` is not written yet.
    pub fn remember(&self, uid: &str, attempt: i32, status: RevocationStatus) {
        let mut results = self.lock();
        if results.len() < UNWRITTEN_MAX || results.contains_key(uid) {
            results.insert(uid.to_string(), (attempt, status));
        }
    }

    /// The unwritten result of `uid`, if it belongs to the attempt its status now shows; anything
    /// else remembered for it is dropped (someone recorded a later attempt or a result).
    pub fn take(&self, uid: &str, current: &RevocationStatus) -> Option<RevocationStatus> {
        let (attempt, status) = self.lock().remove(uid)?;
        (attempt == current.attempts && !current.phase.is_finished()).then_some(status)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (i32, RevocationStatus)>> {
        self.results.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The resourceVersions a status write of ours replaced, per object uid. A reconcile that starts
/// from one of them runs on a cache that has not yet seen our own write: it would only plan again
/// and be refused with a 409, so it waits for the watch instead. Another writer's change always
/// has a new version, so this never hides anything; a version the cache moved past is forgotten.
#[derive(Default)]
pub struct Superseded {
    versions: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
}

/// Superseded versions kept per object: a reconcile writes at most a few times.
const SUPERSEDED_PER_OBJECT: usize = 8;

impl Superseded {
    /// Our write of object `uid` turned version `old` into `new`. A write the API server found
    /// to change nothing keeps the version: that version is current, not superseded (recording
    /// it would hold the object back until its next change).
    pub fn record(&self, uid: &str, old: &str, new: Option<&str>) {
        if new == Some(old) {
            return;
        }
        let mut versions = self.lock();
        let list = versions.entry(uid.to_string()).or_default();
        if list.len() == SUPERSEDED_PER_OBJECT {
            list.remove(0);
        }
        list.push(old.to_string());
    }

    /// True when the cached `version` of `uid` is one our own writes replaced; otherwise the cache
    /// has caught up, and what was recorded for the object is dropped.
    pub fn is_stale(&self, uid: &str, version: &str) -> bool {
        let mut versions = self.lock();
        let stale = versions.get(uid).is_some_and(|list| list.iter().any(|v| v == version));
        if !stale {
            versions.remove(uid);
        }
        stale
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<String>>> {
        self.versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Context {
    /// A context with the default event reporter name, for the operator instance `instance`.
    pub fn new(
        client: Client,
        registry: ProviderRegistry,
        instance: executor::Instance,
        audit: crate::audit::Auditor,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "revoker".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Context {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            registry,
            superseded: Superseded::default(),
            unwritten: UnwrittenResults::default(),
            instance,
            audit,
        })
    }

    /// Publish an Event about `obj`. Repeats of the same type, reason and action on the same
    /// object fold into one Event with a count (the first note stays). A failure to publish is
    /// logged, never fatal.
    pub async fn event<K>(&self, obj: &K, type_: EventType, reason: Reason, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        publish(&self.recorder, obj, type_, reason, action, note).await;
    }

    /// Publish an Event that never folds into an earlier one: the end of each attempt is its own
    /// Event, so its note (which attempt) stays visible, and nothing of it stays in memory.
    pub async fn distinct_event<K>(&self, obj: &K, type_: EventType, reason: Reason, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        publish(&recorder, obj, type_, reason, action, note).await;
    }
}

async fn publish<K>(recorder: &Recorder, obj: &K, type_: EventType, reason: Reason, action: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.as_str().into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(object = %ObjectRef::from(obj), error = %e, "could not publish event");
    }
}

/// The annotation the API server stamps with the user who created a revocation.
pub const REQUESTED_BY: &str = "revoker.dev/requested-by";

/// Write the audit record of a state change of `obj` (its status after the change is `status`).
pub fn audit<K: resources::Revocation>(ctx: &Context, obj: &K, event: &'static str, status: &RevocationStatus) {
    ctx.audit.record(crate::audit::Change {
        event,
        kind: K::KIND,
        namespace: obj.meta().namespace.as_deref().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
        requested_by: obj.annotations().get(REQUESTED_BY).cloned(),
        status,
    });
}

/// Name and namespace of an object for logs.
pub fn describe<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

#[cfg(test)]
mod superseded_tests {
    use super::Superseded;

    #[test]
    fn a_write_that_moved_the_version_supersedes_the_old_one_only() {
        let superseded = Superseded::default();
        superseded.record("u", "1", Some("2"));
        assert!(
            superseded.is_stale("u", "1"),
            "the cache still at 1 waits for our write"
        );
        assert!(!superseded.is_stale("u", "2"), "the cache at our write goes on");
    }

    #[test]
    fn a_write_that_changed_nothing_holds_nothing_back() {
        let superseded = Superseded::default();
        superseded.record("u", "7", Some("7"));
        assert!(!superseded.is_stale("u", "7"), "7 is still the current version");
    }
}
