//! Custom resource types of the `revoker.dev/v1alpha1` API.
//!
//! Three revocation kinds (`JwksRevocation`, `AuthMethodRevocation`, `TokenRevocation`) share one
//! lifecycle ([`RevocationStatus`]) and reference a provider kind (`RevocationProvider` or the
//! cluster-scoped `ClusterRevocationProvider`) that says where and how to reach the provider.

mod common;
mod conditions;
pub mod ids;
mod provider;
mod revocations;
mod trigger;
mod url_pattern;

pub use common::*;
pub use conditions::*;
pub use provider::*;
pub use revocations::*;
pub use trigger::*;
pub use url_pattern::BASE_URL_PATTERN;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Revoker resource.
pub const GROUP: &str = "revoker.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Every CRD Revoker serves, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        JwksRevocation::crd(),
        AuthMethodRevocation::crd(),
        TokenRevocation::crd(),
        RevocationProvider::crd(),
        ClusterRevocationProvider::crd(),
    ]
}

/// All CRDs as one multi-document YAML stream (the output of `revoker crd`).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
