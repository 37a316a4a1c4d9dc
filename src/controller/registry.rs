//! Finds the provider a revocation references, reads its credentials, and keeps one client per
//! provider object (so login tokens are cached across revocations).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::api::{
    ClusterRevocationProvider, ConditionStatus, ConditionType, ProviderConfig, ProviderRef, ProviderRefKind,
    ProviderStatus, ProviderType, RevocationProvider,
};
use crate::credentials::{SecretData, SecretLocation};
use crate::providers::http::HttpSettings;
use crate::providers::{Provider, ProviderError, Reason};

/// Builds a provider client from its configuration and the data of its credentials Secret.
pub type ClientFactory =
    dyn Fn(&ProviderConfig, &SecretData<'_>, &HttpSettings) -> Result<Arc<dyn Provider>, ProviderError> + Send + Sync;

/// The real clients: the provider's own `build`, from the provider table.
pub fn build_client(
    config: &ProviderConfig,
    secret: &SecretData<'_>,
    settings: &HttpSettings,
) -> Result<Arc<dyn Provider>, ProviderError> {
    (crate::providers::registration(config.backend.provider_type()).build)(config, secret, settings)
}

/// A provider ready to be called.
#[derive(Clone)]
pub struct ResolvedProvider {
    /// The client.
    pub client: Arc<dyn Provider>,
    /// Its type.
    pub provider_type: ProviderType,
    /// The credentials Secret's resourceVersion the client was built from.
    pub secret_version: Option<String>,
    /// The client was reused without reading its Secret in this resolution (see `CREDENTIALS_REUSE`).
    pub reused: bool,
    /// The provider's blast-radius budget.
    pub budget: Option<crate::api::Budget>,
}

/// How a resolution may use credentials read earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A client whose Secret was read less than `CREDENTIALS_REUSE` ago is used as is.
    Recent,
    /// The Secret is read now (a provider's credential check; a retry after the provider
    /// rejected credentials that were reused).
    Live,
}

/// What wakes a revocation whose provider could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A change of the provider object (it appears, or its Ready condition changes).
    ProviderChange,
    /// A later look: something the operator does not watch (a Secret, a namespace's labels).
    Recheck,
}

/// Why a provider could not be resolved, and what will wake the revocation.
#[derive(Clone, Debug)]
pub struct Unresolved {
    /// The classified error.
    pub error: ProviderError,
    /// What to wait for when the error is a waiting one.
    pub wake: Wake,
}

impl Unresolved {
    fn recheck(error: ProviderError) -> Self {
        Unresolved {
            error,
            wake: Wake::Recheck,
        }
    }
}

impl From<ProviderError> for Unresolved {
    fn from(error: ProviderError) -> Self {
        Unresolved {
            error,
            wake: Wake::ProviderChange,
        }
    }
}

/// A provider object's identity and what its client was built from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientVersion {
    generation: Option<i64>,
    secret_version: Option<String>,
}

/// A built client, what it was built from, and when its Secret was last read.
struct CachedClient {
    version: ClientVersion,
    client: Arc<dyn Provider>,
    read_at: Instant,
}

type ClientCache = HashMap<String, CachedClient>;

/// The watched providers: where the registry looks first, without an API request. A provider
/// not there yet (the watch is still listing, or it was just created) is read from the API server.
#[derive(Clone, Default)]
pub struct ProviderStores {
    /// RevocationProviders: one store of all namespaces, or one per watched namespace.
    pub namespaced: Vec<Store<RevocationProvider>>,
    /// ClusterRevocationProviders, when the operator watches every namespace.
    pub cluster: Option<Store<ClusterRevocationProvider>>,
}

impl ProviderStores {
    fn revocation_provider(&self, namespace: &str, name: &str) -> Option<Arc<RevocationProvider>> {
        let key = ObjectRef::new(name).within(namespace);
        self.namespaced.iter().find_map(|store| store.get(&key))
    }

    fn cluster_provider(&self, name: &str) -> Option<Arc<ClusterRevocationProvider>> {
        self.cluster.as_ref()?.get(&ObjectRef::new(name))
    }
}

/// Provider lookup and client cache.
pub struct ProviderRegistry {
    client: Client,
    cluster_resource_namespace: String,
    /// The namespaces the operator watches; empty: all (ClusterRevocationProviders in use).
    watched_namespaces: Vec<String>,
    stores: ProviderStores,
    settings: HttpSettings,
    factory: Box<ClientFactory>,
    clients: Mutex<ClientCache>,
    failures: Mutex<HashMap<String, (ClientVersion, Instant, ProviderError)>>,
}

/// How long a permanent failure of a provider's credential check is trusted while nothing changed.
const FAILED_CHECK_TTL: Duration = Duration::from_secs(300);

/// How long revocations use a provider's credentials without reading its Secret again. A batch of
/// revocations of one provider then reads the Secret about once (not once per revocation) without
/// the operator watching Secrets. A changed Secret is seen at the latest after this long, at the
/// provider's next credential check, or at once when the provider rejects the reused credentials
/// (the call is made again with the Secret read live, if it changed).
pub const CREDENTIALS_REUSE: Duration = Duration::from_secs(30);

/// Where a provider object keeps its credentials.
pub struct ProviderSource<'a> {
    /// Unique id (uid) of the provider object, the cache key.
    pub uid: String,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// The provider block.
    pub config: ProviderConfig,
    /// Namespace of the credentials Secret.
    pub secret_namespace: &'a str,
}

impl ProviderRegistry {
    /// A registry building real clients.
    pub fn new(client: Client, cluster_resource_namespace: String, settings: HttpSettings) -> Self {
        Self::with_factory(client, cluster_resource_namespace, settings, Box::new(build_client))
    }

    /// A registry with another client factory (tests).
    pub fn with_factory(
        client: Client,
        cluster_resource_namespace: String,
        settings: HttpSettings,
        factory: Box<ClientFactory>,
    ) -> Self {
        ProviderRegistry {
            client,
            cluster_resource_namespace,
            watched_namespaces: Vec::new(),
            stores: ProviderStores::default(),
            settings,
            factory,
            clients: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Namespace-scoped mode: the operator watches only `namespaces` and, holding no cluster-wide
    /// permissions, uses no ClusterRevocationProvider.
    pub fn watching_only(mut self, namespaces: Vec<String>) -> Self {
        self.watched_namespaces = namespaces;
        self
    }

    /// Look providers up in these watched stores before asking the API server.
    pub fn with_stores(mut self, stores: ProviderStores) -> Self {
        self.stores = stores;
        self
    }

    /// The namespace of ClusterRevocationProvider credential Secrets.
    pub fn cluster_resource_namespace(&self) -> &str {
        &self.cluster_resource_namespace
    }

    /// Resolve `provider_ref` for a revocation in `namespace`. A provider that is missing or not
    /// Ready is [`Wake::ProviderChange`]: the provider watch wakes the revocation.
    pub async fn resolve(
        &self,
        provider_ref: &ProviderRef,
        namespace: &str,
        freshness: Freshness,
    ) -> Result<ResolvedProvider, Unresolved> {
        let (uid, generation, config, secret_namespace) = match provider_ref.kind {
            ProviderRefKind::RevocationProvider => {
                let api: Api<RevocationProvider> = Api::namespaced(self.client.clone(), namespace);
                let what = format!("RevocationProvider {namespace}/");
                let provider = match self.stores.revocation_provider(namespace, &provider_ref.name) {
                    Some(cached) => cached,
                    None => Arc::new(get_provider(&api, &provider_ref.name, &what).await?),
                };
                let generation = provider.metadata.generation;
                require_ready(&what, &provider_ref.name, provider.status.as_ref(), generation)?;
                let config = provider.spec.config().ok_or_else(one_block_error)?;
                (provider.uid(), generation, config, namespace)
            }
            ProviderRefKind::ClusterRevocationProvider if !self.watched_namespaces.is_empty() => {
                return Err(self.cluster_providers_unused(&provider_ref.name, namespace).into());
            }
            ProviderRefKind::ClusterRevocationProvider => {
                let api: Api<ClusterRevocationProvider> = Api::all(self.client.clone());
                let what = "ClusterRevocationProvider ";
                let provider = match self.stores.cluster_provider(&provider_ref.name) {
                    Some(cached) => cached,
                    None => Arc::new(get_provider(&api, &provider_ref.name, what).await?),
                };
                self.check_namespace_allowed(&provider, namespace)
                    .await
                    .map_err(Unresolved::recheck)?;
                let generation = provider.metadata.generation;
                require_ready(what, &provider_ref.name, provider.status.as_ref(), generation)?;
                let config = provider.spec.config().ok_or_else(one_block_error)?;
                (
                    provider.uid(),
                    generation,
                    config,
                    self.cluster_resource_namespace.as_str(),
                )
            }
        };
        let source = ProviderSource {
            uid: uid.unwrap_or_default(),
            generation,
            config,
            secret_namespace,
        };
        self.client_for(source, freshness).await.map_err(Unresolved::recheck)
    }

    /// Waiting, not failed: the revocation runs once the operator watches every namespace again.
    fn cluster_providers_unused(&self, name: &str, namespace: &str) -> ProviderError {
        ProviderError::waiting(
            Reason::ProviderNotFound,
            format!(
                "ClusterRevocationProvider {name} is not used: the operator runs namespace-scoped (it watches only {}) and reads no cluster-scoped providers; reference a RevocationProvider in {namespace}, or run the operator cluster-wide",
                self.watched_namespaces.join(", ")
            ),
        )
    }

    async fn check_namespace_allowed(
        &self,
        provider: &ClusterRevocationProvider,
        namespace: &str,
    ) -> Result<(), ProviderError> {
        let Some(selector) = provider.spec.namespace_selector.clone() else {
            return Ok(());
        };
        let name = provider.name_any();
        let selector = Selector::try_from(selector).map_err(|e| {
            ProviderError::permanent(
                Reason::InvalidProviderConfig,
                format!("ClusterRevocationProvider {name} has an invalid namespaceSelector: {e}"),
            )
        })?;
        let ns: Api<Namespace> = Api::all(self.client.clone());
        let labels = match ns.get(namespace).await {
            Ok(ns) => ns.metadata.labels.unwrap_or_default(),
            Err(e) => {
                return Err(ProviderError::waiting(
                    Reason::InvalidProviderConfig,
                    format!(
                        "cannot read namespace {namespace} to check the namespaceSelector of {name}: {}",
                        kube_reason(&e)
                    ),
                ));
            }
        };
        if selector.matches(&labels) {
            Ok(())
        } else {
            Err(ProviderError::waiting(
                Reason::NamespaceNotAllowed,
                format!(
                    "ClusterRevocationProvider {name} does not admit namespace {namespace}: its spec.namespaceSelector does not match the namespace's labels; the revocation waits until it does"
                ),
            ))
        }
    }

    /// A client for a provider object: cached while the object's generation and its Secret's
    /// resourceVersion stay the same.
    pub async fn client_for(
        &self,
        source: ProviderSource<'_>,
        freshness: Freshness,
    ) -> Result<ResolvedProvider, ProviderError> {
        self.versioned_client(source, freshness)
            .await
            .map(|(_, resolved)| resolved)
    }

    /// The provider's live credential check. A permanent failure is remembered: it is not repeated
    /// against the provider until the provider object or its Secret changes, or `FAILED_CHECK_TTL`
    /// passed — a not-Ready provider is looked at often (its Secret may be fixed any moment) without
    /// calling the provider each time.
    pub async fn check_credentials(&self, source: ProviderSource<'_>) -> Result<&'static str, ProviderError> {
        let uid = source.uid.clone();
        let (version, resolved) = self.versioned_client(source, Freshness::Live).await?;
        if let Some(known) = self.failed_check(&uid, &version) {
            return Err(known);
        }
        let result = resolved.client.check_credentials().await;
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &result {
            Err(err) if !err.is_transient() => {
                failures.insert(uid, (version, Instant::now(), err.clone()));
            }
            _ => {
                failures.remove(&uid);
            }
        }
        result
    }

    fn failed_check(&self, uid: &str, version: &ClientVersion) -> Option<ProviderError> {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (seen, at, err) = failures.get(uid)?;
        (seen == version && at.elapsed() < FAILED_CHECK_TTL).then(|| err.clone())
    }

    async fn versioned_client(
        &self,
        source: ProviderSource<'_>,
        freshness: Freshness,
    ) -> Result<(ClientVersion, ResolvedProvider), ProviderError> {
        source.config.backend.validate_ids().map_err(|invalid| {
            ProviderError::permanent(Reason::InvalidProviderConfig, format!("{invalid}; no request was sent"))
        })?;
        let provider_type = source.config.backend.provider_type();
        if freshness == Freshness::Recent
            && let Some(recent) = self.recently_read(&source)
        {
            return Ok(recent);
        }
        let secret_name = source.config.backend.credentials_secret().to_string();
        let at = SecretLocation {
            namespace: source.secret_namespace,
            name: &secret_name,
        };
        let secret = self.read_secret(at).await?;
        let version = ClientVersion {
            generation: source.generation,
            secret_version: secret.metadata.resource_version.clone(),
        };
        let resolved = |client: Arc<dyn Provider>, version: &ClientVersion| ResolvedProvider {
            client,
            provider_type,
            secret_version: version.secret_version.clone(),
            reused: false,
            budget: source.config.budget.clone(),
        };
        let mut clients = self.lock();
        if let Some(cached) = clients.get_mut(&source.uid)
            && cached.version == version
        {
            cached.read_at = Instant::now();
            return Ok((version.clone(), resolved(cached.client.clone(), &version)));
        }
        drop(clients);
        let data = secret.data.unwrap_or_default();
        let client = (self.factory)(&source.config, &SecretData { data: &data, at }, &self.settings)?;
        let cached = CachedClient {
            version: version.clone(),
            client: client.clone(),
            read_at: Instant::now(),
        };
        self.lock().insert(source.uid, cached);
        Ok((version.clone(), resolved(client, &version)))
    }

    /// The cached client of this provider generation, when its Secret was read within
    /// `CREDENTIALS_REUSE`.
    fn recently_read(&self, source: &ProviderSource<'_>) -> Option<(ClientVersion, ResolvedProvider)> {
        let clients = self.lock();
        let cached = clients.get(&source.uid)?;
        if cached.version.generation != source.generation || cached.read_at.elapsed() >= CREDENTIALS_REUSE {
            return None;
        }
        let resolved = ResolvedProvider {
            client: cached.client.clone(),
            provider_type: source.config.backend.provider_type(),
            secret_version: cached.version.secret_version.clone(),
            reused: true,
            budget: source.config.budget.clone(),
        };
        Some((cached.version.clone(), resolved))
    }

    /// Read a Secret; a missing one (or one the operator may not read) is `CredentialsUnavailable`.
    pub async fn read_secret(&self, at: SecretLocation<'_>) -> Result<Secret, ProviderError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), at.namespace);
        api.get(at.name).await.map_err(|e| unreadable(&at.to_string(), &e))
    }

    /// Read one key of a ConfigMap (`data`, else `binaryData` as UTF-8); a missing object or key
    /// (or one the operator may not read) is `CredentialsUnavailable`, as for a Secret.
    pub async fn read_config_map_key(&self, namespace: &str, name: &str, key: &str) -> Result<String, ProviderError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let at = format!("ConfigMap {namespace}/{name}");
        let map = api.get(name).await.map_err(|e| unreadable(&at, &e))?;
        let text = map.data.as_ref().and_then(|d| d.get(key)).cloned().or_else(|| {
            map.binary_data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        });
        text.ok_or_else(|| {
            ProviderError::waiting(
                Reason::CredentialsUnavailable,
                format!("{at} has no key {key:?} (as text); waiting for it"),
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A Secret or ConfigMap that cannot be read (missing, or not allowed): the revocation waits.
fn unreadable(at: &str, e: &kube::Error) -> ProviderError {
    let why = match e {
        kube::Error::Api(s) if s.code == 404 => "was not found".to_string(),
        kube::Error::Api(s) if s.code == 403 => "cannot be read by the operator (RBAC)".to_string(),
        other => format!("could not be read ({})", kube_reason(other)),
    };
    ProviderError::waiting(Reason::CredentialsUnavailable, format!("{at} {why}; waiting for it"))
}

async fn get_provider<K>(api: &Api<K>, name: &str, what: &str) -> Result<K, ProviderError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get(name).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 404 => ProviderError::waiting(
            Reason::ProviderNotFound,
            format!("{what}{name} was not found; waiting for it"),
        ),
        other => ProviderError::waiting(
            Reason::ProviderNotFound,
            format!("{what}{name} could not be read ({})", kube_reason(other)),
        ),
    })
}

/// The provider gate: a revocation calls a provider only once the provider's own live check passed
/// for its current generation. Otherwise it waits (a known-bad provider must not burn a one-shot
/// revocation) and the provider watch wakes it when the provider becomes Ready.
fn require_ready(
    what: &str,
    name: &str,
    status: Option<&ProviderStatus>,
    generation: Option<i64>,
) -> Result<(), ProviderError> {
    let ready = status.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Ready.as_str())
            .filter(|c| c.observed_generation == generation)
    });
    match ready {
        Some(c) if c.status == ConditionStatus::True.as_str() => Ok(()),
        Some(c) => {
            let detail = status.and_then(|s| s.conditions.iter().find(|c| !c.message.is_empty()));
            let message = detail.map(|d| d.message.as_str()).unwrap_or_default();
            let reason = Reason::parse(&c.reason).unwrap_or(Reason::ProviderNotReady);
            Err(ProviderError::waiting(
                reason,
                format!("{what}{name} is not Ready: {message}; {GATE_SUFFIX}"),
            ))
        }
        None => Err(ProviderError::waiting(
            Reason::ProviderNotReady,
            format!("{what}{name} has not passed its credential check yet; {GATE_SUFFIX}"),
        )),
    }
}

const GATE_SUFFIX: &str = "the revocation calls nothing and runs once the provider is Ready";

fn one_block_error() -> ProviderError {
    ProviderError::permanent(
        Reason::InvalidProviderConfig,
        "the provider must set exactly one of atlas, infisical, onezone",
    )
}

/// A short description of a Kubernetes API error.
pub fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}
