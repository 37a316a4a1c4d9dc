//! Finds the provider a revocation references, reads its credentials, and keeps one client per
//! provider object (so login tokens are cached across revocations).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Client, ResourceExt};

use crate::api::{
    ClusterRevocationProvider, ProviderConfig, ProviderRef, ProviderRefKind, ProviderType, RevocationProvider,
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
}

/// A provider object's identity and what its client was built from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientVersion {
    generation: Option<i64>,
    secret_version: Option<String>,
}

type ClientCache = HashMap<String, (ClientVersion, Arc<dyn Provider>)>;

/// Provider lookup and client cache.
pub struct ProviderRegistry {
    client: Client,
    cluster_resource_namespace: String,
    settings: HttpSettings,
    factory: Box<ClientFactory>,
    clients: Mutex<ClientCache>,
}

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
            settings,
            factory,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The namespace of ClusterRevocationProvider credential Secrets.
    pub fn cluster_resource_namespace(&self) -> &str {
        &self.cluster_resource_namespace
    }

    /// Resolve `provider_ref` for a revocation in `namespace`.
    pub async fn resolve(
        &self,
        provider_ref: &ProviderRef,
        namespace: &str,
    ) -> Result<ResolvedProvider, ProviderError> {
        match provider_ref.kind {
            ProviderRefKind::RevocationProvider => {
                let api: Api<RevocationProvider> = Api::namespaced(self.client.clone(), namespace);
                let provider =
                    get_provider(&api, &provider_ref.name, &format!("RevocationProvider {namespace}/")).await?;
                let config = provider.spec.config().ok_or_else(one_block_error)?;
                self.client_for(ProviderSource {
                    uid: provider.uid().unwrap_or_default(),
                    generation: provider.metadata.generation,
                    config,
                    secret_namespace: namespace,
                })
                .await
            }
            ProviderRefKind::ClusterRevocationProvider => {
                let api: Api<ClusterRevocationProvider> = Api::all(self.client.clone());
                let provider = get_provider(&api, &provider_ref.name, "ClusterRevocationProvider ").await?;
                self.check_namespace_allowed(&provider, namespace).await?;
                let config = provider.spec.config().ok_or_else(one_block_error)?;
                self.client_for(ProviderSource {
                    uid: provider.uid().unwrap_or_default(),
                    generation: provider.metadata.generation,
                    config,
                    secret_namespace: &self.cluster_resource_namespace,
                })
                .await
            }
        }
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
            Err(ProviderError::permanent(
                Reason::NamespaceNotAllowed,
                format!(
                    "ClusterRevocationProvider {name} does not admit namespace {namespace} (its namespaceSelector does not match the namespace's labels)"
                ),
            ))
        }
    }

    /// A client for a provider object: cached while the object's generation and its Secret's
    /// resourceVersion stay the same.
    pub async fn client_for(&self, source: ProviderSource<'_>) -> Result<ResolvedProvider, ProviderError> {
        let provider_type = source.config.backend.provider_type();
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
        if let Some((cached_version, client)) = self.lock().get(&source.uid)
            && *cached_version == version
        {
            return Ok(ResolvedProvider {
                client: client.clone(),
                provider_type,
            });
        }
        let data = secret.data.unwrap_or_default();
        let client = (self.factory)(&source.config, &SecretData { data: &data, at }, &self.settings)?;
        self.lock().insert(source.uid, (version, client.clone()));
        Ok(ResolvedProvider { client, provider_type })
    }

    /// Read a Secret; a missing one (or one the operator may not read) is `CredentialsUnavailable`.
    pub async fn read_secret(&self, at: SecretLocation<'_>) -> Result<Secret, ProviderError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), at.namespace);
        api.get(at.name).await.map_err(|e| {
            let why = match &e {
                kube::Error::Api(s) if s.code == 404 => "was not found".to_string(),
                kube::Error::Api(s) if s.code == 403 => "cannot be read by the operator (RBAC)".to_string(),
                other => format!("could not be read ({})", kube_reason(other)),
            };
            ProviderError::waiting(Reason::CredentialsUnavailable, format!("{at} {why}; waiting for it"))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
