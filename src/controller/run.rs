//! `revoker run`: the controllers, behind leader election, with the health and metrics server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info, warn};

use super::executor::Instance;
use super::object_metrics::OBJECT_METRICS;
use super::provider_status::{self, ProviderObject};
use super::registry::ProviderStores;
use super::resources::Revocation;
use super::revocation;
use super::{Context, Error, ProviderRegistry};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::{
    AuthMethodRevocation, ClusterRevocationProvider, ConditionType, JwksRevocation, ProviderRefKind,
    RevocationProvider, RevocationStatus, TokenRevocation,
};
use crate::providers::http::HttpSettings;
use crate::telemetry::{METRICS, ReconcileErrorLabels};

/// What `revoker run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// HTTP settings for provider clients (allow-list, timeout, rate limit).
    pub http: HttpSettings,
    /// Namespace of ClusterRevocationProvider credential Secrets (and the default lease namespace).
    pub cluster_resource_namespace: String,
    /// Max concurrent reconciles per controller.
    pub concurrency: u16,
    /// Leader election on/off.
    pub leader_elect: bool,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This process's identity in the Lease.
    pub identity: String,
    /// Lease duration in seconds.
    pub lease_duration_seconds: u64,
    /// Namespace-scoped mode: watch only these namespaces (empty: every namespace).
    pub watch_namespaces: Vec<String>,
    /// One shard of several: only revocations whose labels match this selector.
    pub shard_selector: Option<String>,
    /// Run the provider controllers (credential checks, provider status).
    pub check_providers: bool,
    /// Where the audit trail goes.
    pub audit: AuditConfig,
}

/// Where the audit trail goes: a file (else the log target `revoker::audit`), and a webhook.
#[derive(Clone, Default)]
pub struct AuditConfig {
    /// Append records to this file.
    pub file: Option<std::path::PathBuf>,
    /// Also deliver them to this webhook.
    pub webhook: Option<crate::audit::webhook::Settings>,
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("file", &self.file)
            .field("webhook", &self.webhook.as_ref().map(|w| w.url.as_str()))
            .finish()
    }
}

/// Errors that stop `revoker run`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster config.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The CRDs are not installed or not readable.
    #[error(
        "cannot list {kind}: {source}; are the CRDs installed (`revoker crd | kubectl apply -f -`) and does the operator's RBAC allow it?"
    )]
    Crds {
        /// Kind that failed.
        kind: &'static str,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// The audit trail cannot be set up (its file, its webhook).
    #[error("audit trail: {0}")]
    Audit(String),
    /// Leadership was lost while running; the process exits so that no two replicas act.
    #[error("lost the leader lease {0}; exiting so that only one replica acts")]
    LostLeadership(String),
}

/// Run the operator until SIGTERM/SIGINT.
pub async fn run(config: RunConfig, ready: Arc<AtomicBool>) -> Result<(), RunError> {
    let shutdown = Shutdown::listen();
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let scope = Scope::from(&config.watch_namespaces);
    check_crds(&client, &scope, config.shard_selector.as_deref()).await?;
    ready.store(true, Ordering::SeqCst);
    let watches = ProviderWatches::new(&client, &scope);
    let registry = ProviderRegistry::new(
        client.clone(),
        config.cluster_resource_namespace.clone(),
        config.http.clone(),
    )
    .watching_only(config.watch_namespaces.clone())
    .with_stores(watches.stores());
    let instance = Instance {
        identity: config.identity.clone(),
        lease: config
            .leader_elect
            .then(|| (config.lease_namespace.clone(), config.lease_name.clone())),
    };
    let webhook = match config.audit.webhook.clone() {
        Some(settings) => Some(crate::audit::webhook::start(settings).map_err(RunError::Audit)?),
        None => None,
    };
    let audit = crate::audit::Auditor::new(&config.identity, config.audit.file.clone(), webhook)
        .map_err(|e| RunError::Audit(e.to_string()))?;
    let ctx = Context::new(client.clone(), registry, instance, audit);
    if let Some(selector) = &config.shard_selector {
        info!(shard_selector = %selector, lease = %config.lease_name, check_providers = config.check_providers, "one shard: acting only on revocations whose labels match");
    }
    let shard = Shard {
        selector: config.shard_selector.clone(),
        check_providers: config.check_providers,
        concurrency: config.concurrency,
        shutdown: shutdown.clone(),
    };
    match &scope {
        Scope::Cluster => info!("watching every namespace"),
        Scope::Namespaces(namespaces) => info!(
            namespaces = %namespaces.join(","),
            "namespace-scoped: watching only these namespaces; ClusterRevocationProviders are not used"
        ),
    }
    if !config.leader_elect {
        run_controllers(client, ctx, shard, watches).await;
        return Ok(());
    }
    let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(config.lease_duration_seconds)
        .with_grace(config.lease_duration_seconds.div_ceil(3).max(1))
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    info!(lease = %config.lease_name, identity = %config.identity, "waiting to become the leader");
    while !*leader.borrow_and_update() {
        tokio::select! {
            changed = leader.changed() => if changed.is_err() { return Err(RunError::LostLeadership(config.lease_name)) },
            _ = shutdown.clone().requested() => return Ok(()),
        }
    }
    info!(lease = %config.lease_name, identity = %config.identity, "became the leader; starting controllers");
    let result = tokio::select! {
        _ = run_controllers(client, ctx, shard, watches) => Ok(()),
        _ = lost(&mut leader) => Err(RunError::LostLeadership(config.lease_name)),
    };
    drop(leader); // closing the channel makes the lease task release the lease at once
    if let Err(e) = lease_task.await {
        warn!(error = %e, "lease task ended badly");
    }
    result
}

async fn lost(leader: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if leader.changed().await.is_err() || !*leader.borrow_and_update() {
            error!("leader lease lost");
            return;
        }
    }
}

/// SIGTERM or SIGINT, listened for from the start: a signal that arrives while the controllers
/// are still starting is not lost (it would otherwise leave the process running until SIGKILL).
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Registered here, before anything else starts, not when the task first runs.
        let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        tokio::spawn(async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
            info!("shutdown requested: finishing the calls under way");
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    /// Resolves once a shutdown is requested.
    async fn requested(mut self) {
        let _ = self.0.wait_for(|requested| *requested).await;
    }

    /// Resolves once a shutdown is requested and `store` has its first full list. A controller
    /// holds its graceful shutdown until its store is ready, and its watch stops being read once
    /// the shutdown starts: stopping before the first list is in would never finish.
    async fn once_listed<K>(self, store: Store<K>)
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        self.requested().await;
        let _ = store.wait_until_ready().await;
    }
}

/// What the controllers watch: every namespace (with the cluster-scoped providers and the
/// namespaces' labels), or only some namespaces, with namespaced permissions only.
enum Scope {
    Cluster,
    Namespaces(Vec<String>),
}

impl Scope {
    fn from(namespaces: &[String]) -> Self {
        if namespaces.is_empty() {
            Scope::Cluster
        } else {
            Scope::Namespaces(namespaces.to_vec())
        }
    }

    /// The namespaces to run one set of namespaced controllers for (None: all at once).
    fn namespaces(&self) -> Vec<Option<&str>> {
        match self {
            Scope::Cluster => vec![None],
            Scope::Namespaces(namespaces) => namespaces.iter().map(|n| Some(n.as_str())).collect(),
        }
    }
}

/// `Api` of a namespaced kind in one namespace, or in all.
fn api_in<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn check_crds(client: &Client, scope: &Scope, shard_selector: Option<&str>) -> Result<(), RunError> {
    for namespace in scope.namespaces() {
        probe(
            api_in::<JwksRevocation>(client, namespace),
            "JwksRevocation",
            shard_selector,
        )
        .await?;
        probe(
            api_in::<RevocationProvider>(client, namespace),
            "RevocationProvider",
            None,
        )
        .await?;
    }
    Ok(())
}

/// List one object of a kind: fails when its CRD is missing, the RBAC does not allow it, or the
/// shard's label selector is not one.
async fn probe<K>(api: Api<K>, kind: &'static str, selector: Option<&str>) -> Result<(), RunError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(1);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    api.list_metadata(&params)
        .await
        .map(|_| ())
        .map_err(|source| RunError::Crds { kind, source })
}

/// What this instance runs: its share of the revocations, and whether it checks the providers.
#[derive(Clone)]
struct Shard {
    selector: Option<String>,
    check_providers: bool,
    concurrency: u16,
    shutdown: Shutdown,
}

/// Subscribers of each provider watch: its provider controller and the three revocation kinds.
const SUBSCRIBERS: usize = 4;
/// Events a subscriber may lag behind a provider watch before the watch waits for it.
const SHARED_BUFFER: usize = 256;

/// One watch of a provider kind (in one namespace, or in all), shared by its provider controller
/// (the trigger), the revocation controllers (a change wakes the revocations waiting on it) and
/// the registry (the store is its lookup, so resolving a provider costs no API request). The
/// store is updated before any subscriber hears of a change: a woken revocation reads what woke it.
struct SharedWatch<P: kube::Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<P>,
    subscribers: Vec<ReflectHandle<P>>,
    root: BoxFuture<'static, ()>,
}

impl<P> SharedWatch<P>
where
    P: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    fn new(api: Api<P>) -> Self {
        let (store, writer) = reflector::store_shared(SHARED_BUFFER);
        let subscribers = (0..SUBSCRIBERS).filter_map(|_| writer.subscribe()).collect();
        let root = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(slim)
            .reflect_shared(writer)
            .for_each(|event| {
                if let Err(e) = event {
                    warn!(error = %e, kind = std::any::type_name::<P>(), "provider watch failed; retrying");
                }
                futures::future::ready(())
            })
            .boxed();
        SharedWatch {
            store,
            subscribers,
            root,
        }
    }

    /// The provider controller on this watch's last subscription (when this instance checks
    /// providers; an unused subscription is dropped, so it holds nothing back), and the watch.
    fn into_controller(
        mut self,
        ctx: &Arc<Context>,
        shard: &Shard,
    ) -> (Option<BoxFuture<'static, ()>>, BoxFuture<'static, ()>)
    where
        P: ProviderObject,
    {
        let controller = shard
            .check_providers
            .then(|| provider_controller(self.subscriber(), self.store.clone(), ctx, shard));
        (controller, self.root)
    }

    fn subscriber(&mut self) -> impl futures::Stream<Item = Arc<P>> + Send + 'static {
        match self.subscribers.pop() {
            Some(handle) => handle.left_stream(),
            None => futures::stream::empty().right_stream(),
        }
    }
}

/// The provider watches of a scope: RevocationProviders per watched namespace (or all), and
/// ClusterRevocationProviders when watching every namespace.
struct ProviderWatches {
    namespaced: Vec<(Option<String>, SharedWatch<RevocationProvider>)>,
    cluster: Option<SharedWatch<ClusterRevocationProvider>>,
}

impl ProviderWatches {
    fn new(client: &Client, scope: &Scope) -> Self {
        let namespaced = scope
            .namespaces()
            .into_iter()
            .map(|ns| (ns.map(String::from), SharedWatch::new(api_in(client, ns))))
            .collect();
        let cluster = matches!(scope, Scope::Cluster).then(|| SharedWatch::new(Api::all(client.clone())));
        ProviderWatches { namespaced, cluster }
    }

    fn stores(&self) -> ProviderStores {
        ProviderStores {
            namespaced: self.namespaced.iter().map(|(_, w)| w.store.clone()).collect(),
            cluster: self.cluster.as_ref().map(|w| w.store.clone()),
        }
    }
}

async fn run_controllers(client: Client, ctx: Arc<Context>, shard: Shard, watches: ProviderWatches) {
    let ProviderWatches {
        namespaced,
        mut cluster,
    } = watches;
    let (mut tasks, mut roots): (Vec<BoxFuture<'static, ()>>, Vec<BoxFuture<'static, ()>>) = (vec![], vec![]);
    for (namespace, mut providers) in namespaced {
        let namespace = namespace.as_deref();
        let mut wake = || Wakers {
            providers: providers.subscriber().boxed(),
            cluster: cluster.as_mut().map(|c| c.subscriber().boxed()),
        };
        tasks.extend([
            revocation_controller::<JwksRevocation>(&client, &ctx, &shard, namespace, wake()),
            revocation_controller::<AuthMethodRevocation>(&client, &ctx, &shard, namespace, wake()),
            revocation_controller::<TokenRevocation>(&client, &ctx, &shard, namespace, wake()),
        ]);
        let (controller, root) = providers.into_controller(&ctx, &shard);
        tasks.extend(controller);
        roots.push(root);
    }
    if let Some(cluster) = cluster {
        let (controller, root) = cluster.into_controller(&ctx, &shard);
        tasks.extend(controller);
        roots.push(root);
    }
    // The shared watches never end on their own: they stop when the controllers have shut down.
    futures::future::select(futures::future::join_all(tasks), futures::future::join_all(roots)).await;
    info!("controllers stopped");
}

/// What wakes a revocation controller's waiting revocations besides their own changes.
struct Wakers {
    providers: futures::stream::BoxStream<'static, Arc<RevocationProvider>>,
    cluster: Option<futures::stream::BoxStream<'static, Arc<ClusterRevocationProvider>>>,
}

/// kubectl's copy of the applied manifest: as large as the spec again, and never read here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A revocation controller whose cache keeps objects without what the operator never reads:
/// managedFields and the last-applied annotation, together most of a small object, and of a
/// finished revocation everything its status says but what is still read (`finished_summary`).
/// Status writes are not affected: the API server takes the metadata of a /status update from the
/// stored object, and a finished revocation's status is never written again.
fn slim_controller<K: Revocation>(api: Api<K>, selector: Option<&str>) -> Controller<K> {
    let (reader, writer) = reflector::store();
    let mut config = watcher::Config::default().any_semantic();
    if let Some(selector) = selector {
        config = config.labels(selector);
    }
    let objects = reflector(writer, watcher(api, config).modify(slim_revocation)).applied_objects();
    Controller::for_stream(objects, reader)
}

fn slim<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

fn slim_revocation<K: Revocation>(obj: &mut K) {
    slim(obj);
    if obj.lifecycle().trigger.is_some() {
        return; // never finished: its status is the trigger's memory
    }
    if let Some(summary) = obj.revocation_status().and_then(finished_summary) {
        obj.set_revocation_status(summary);
    }
}

/// What is still read of a finished revocation: its phase (never run again), completion time and
/// attempts (the TTL, `waiting_on`), and the reason of its `Succeeded` condition (the
/// `revoker_revocation_info` series). Messages, provider results and the other conditions stay in
/// the API server, where `kubectl` reads them. None for an unfinished revocation.
fn finished_summary(status: &RevocationStatus) -> Option<RevocationStatus> {
    if !status.phase.is_finished() {
        return None;
    }
    let succeeded = status
        .conditions
        .iter()
        .filter(|c| c.type_ == ConditionType::Succeeded.as_str())
        .map(|c| Condition {
            message: String::new(),
            ..c.clone()
        });
    Some(RevocationStatus {
        phase: status.phase,
        attempts: status.attempts,
        completion_time: status.completion_time.clone(),
        conditions: succeeded.collect(),
        ..RevocationStatus::default()
    })
}

/// Backoff of a controller's watches after an error. kube's default grows to 30 s and is shared
/// by every watch of the controller (its own and the extra ones), so the 403s an API server
/// answers while its RBAC caches warm up after a restart could stall new revocations for half a
/// minute; this one starts at 250 ms and stays at most 5 s apart.
#[derive(Clone, Debug)]
struct TriggerBackoff {
    next: std::time::Duration,
}

const TRIGGER_BACKOFF_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const TRIGGER_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for TriggerBackoff {
    fn default() -> Self {
        TriggerBackoff {
            next: TRIGGER_BACKOFF_FIRST,
        }
    }
}

impl Iterator for TriggerBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        let now = self.next;
        self.next = (self.next * 2).min(TRIGGER_BACKOFF_MAX);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.next = TRIGGER_BACKOFF_FIRST;
    }
}

fn controller_config(concurrency: u16) -> controller::Config {
    controller::Config::default().concurrency(concurrency)
}

/// A revocation controller (of this shard's revocations) that also watches the providers: a
/// provider that appears or changes (its Ready condition above all) wakes the unfinished
/// revocations that reference it. Watching every namespace, it also watches
/// ClusterRevocationProviders and the namespaces' labels.
fn revocation_controller<K: Revocation>(
    client: &Client,
    ctx: &Arc<Context>,
    shard: &Shard,
    namespace: Option<&str>,
    wakers: Wakers,
) -> BoxFuture<'static, ()> {
    let controller = slim_controller(api_in::<K>(client, namespace), shard.selector.as_deref());
    let (namespaced, cluster, in_namespace) = (controller.store(), controller.store(), controller.store());
    OBJECT_METRICS.add_revocations(controller.store());
    let mut controller = controller.watches_shared_stream(wakers.providers, move |p| {
        waiting_on(
            &namespaced,
            ProviderRefKind::RevocationProvider,
            p.namespace(),
            &p.name_any(),
        )
    });
    if let Some(cluster_providers) = wakers.cluster {
        controller = controller.watches_shared_stream(cluster_providers, move |p| {
            waiting_on(
                &cluster,
                ProviderRefKind::ClusterRevocationProvider,
                None,
                &p.name_any(),
            )
        });
    }
    if namespace.is_none() {
        controller = controller.watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default().any_semantic(),
            move |ns| waiting_in_namespace(&in_namespace, &ns.name_any()),
        );
    }
    // A run of a triggered revocation wakes its parent when its status changes.
    let runs = match shard.selector.as_deref() {
        Some(selector) => format!("{},{selector}", super::trigger::RUN_OF_UID_LABEL),
        None => super::trigger::RUN_OF_UID_LABEL.to_string(),
    };
    controller = controller.owns(
        api_in::<K>(client, namespace),
        watcher::Config::default().labels(&runs).any_semantic(),
    );
    let stopped = shard.shutdown.clone().once_listed(controller.store());
    controller
        .trigger_backoff(TriggerBackoff::default())
        .with_config(controller_config(shard.concurrency))
        .graceful_shutdown_on(stopped)
        .run(revocation::reconcile::<K>, error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

/// The unfinished revocations in the store that reference a provider (`namespace` None: any).
fn waiting_on<K: Revocation>(
    store: &Store<K>,
    kind: ProviderRefKind,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|r| {
            let provider_ref = r.lifecycle().provider_ref;
            provider_ref.kind == kind
                && provider_ref.name == name
                && (namespace.is_none() || r.namespace() == namespace)
                && !r.revocation_status().is_some_and(|s| s.phase.is_finished())
        })
        .map(|r| ObjectRef::from(r.as_ref()))
        .collect()
}

/// The unfinished revocations of a namespace that use a ClusterRevocationProvider: a change of
/// the namespace's labels may change what its namespaceSelector admits.
fn waiting_in_namespace<K: Revocation>(store: &Store<K>, namespace: &str) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|r| {
            r.namespace().as_deref() == Some(namespace)
                && r.lifecycle().provider_ref.kind == ProviderRefKind::ClusterRevocationProvider
                && !r.revocation_status().is_some_and(|s| s.phase.is_finished())
        })
        .map(|r| ObjectRef::from(r.as_ref()))
        .collect()
}

fn provider_controller<P: ProviderObject>(
    trigger: impl futures::Stream<Item = Arc<P>> + Send + 'static,
    store: Store<P>,
    ctx: &Arc<Context>,
    shard: &Shard,
) -> BoxFuture<'static, ()> {
    OBJECT_METRICS.add_providers(store.clone());
    let stopped = shard.shutdown.clone().once_listed(store.clone());
    Controller::for_shared_stream(trigger, store)
        .trigger_backoff(TriggerBackoff::default())
        .with_config(controller_config(shard.concurrency))
        .graceful_shutdown_on(stopped)
        .run(provider_status::reconcile::<P>, provider_error_policy::<P>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .boxed()
}

fn error_policy<K: Revocation>(obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    record_error(K::KIND, &super::describe(obj.as_ref()), err)
}

fn provider_error_policy<P: ProviderObject>(obj: Arc<P>, err: &Error, _ctx: Arc<Context>) -> Action {
    record_error(P::KIND, &super::describe(obj.as_ref()), err)
}

fn record_error(kind: &str, object: &str, err: &Error) -> Action {
    METRICS
        .reconcile_errors
        .get_or_create(&ReconcileErrorLabels {
            kind: kind.into(),
            error: err.metric_label().into(),
        })
        .inc();
    warn!(kind, object, error = %err, "reconcile failed; retrying in 5s");
    Action::requeue(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn a_finished_revocation_is_cached_with_only_what_is_still_read() {
        let status: RevocationStatus = serde_json::from_value(serde_json::json!({
            "phase": "Succeeded", "attempts": 2, "completionTime": "2026-01-01T00:00:05Z",
            "message": "revoked the JWKS of identity provider 32b6e34b3d91647abb20e7b8",
            "providerResult": {"operation": "revokeJwksFromIdentityProvider", "httpStatus": 204},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Revoked", "message": "revoked the JWKS", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {"type": "Succeeded", "status": "True", "reason": "Revoked", "message": "", "lastTransitionTime": "2026-01-01T00:00:05Z"},
            ],
        }))
        .expect("a status");
        let summary = finished_summary(&status).expect("finished");
        assert_eq!((summary.phase, summary.attempts), (status.phase, 2));
        assert_eq!(summary.completion_time, status.completion_time);
        assert_eq!(summary.conditions.len(), 1);
        assert_eq!(
            (
                summary.conditions[0].type_.as_str(),
                summary.conditions[0].reason.as_str()
            ),
            ("Succeeded", "Revoked")
        );
        assert!(summary.message.is_none() && summary.provider_result.is_none());

        let running = RevocationStatus {
            phase: crate::api::Phase::Running,
            ..status
        };
        assert!(
            finished_summary(&running).is_none(),
            "an unfinished one is cached whole"
        );
    }

    #[test]
    fn watch_errors_are_retried_quickly_and_at_most_five_seconds_apart() {
        use kube::runtime::utils::Backoff;
        let mut backoff = TriggerBackoff::default();
        let delays: Vec<u64> = backoff.by_ref().take(8).map(|d| d.as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next().map(|d| d.as_millis()), Some(250));
    }

    #[test]
    fn the_cached_copy_drops_managed_fields_and_the_last_applied_manifest_only() {
        let mut obj = ConfigMap::default();
        obj.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..Default::default()
        }]);
        obj.metadata.annotations = Some(
            [(LAST_APPLIED, "{\"spec\":{}}"), ("team.example.com/ticket", "INC-1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        obj.metadata.labels = Some([("team".to_string(), "a".to_string())].into_iter().collect());
        slim(&mut obj);
        assert!(obj.metadata.managed_fields.is_none());
        let annotations = obj.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["team.example.com/ticket"]);
        assert_eq!(obj.metadata.labels.unwrap_or_default()["team"], "a");

        let mut only_last_applied = ConfigMap::default();
        only_last_applied.metadata.annotations =
            Some([(LAST_APPLIED.to_string(), "{}".to_string())].into_iter().collect());
        slim(&mut only_last_applied);
        assert!(only_last_applied.metadata.annotations.is_none());
    }
}
