//! Provider state. The seed document (`--seed-file`, `PUT /_sim/state`) and the live state have
//! the same JSON shape, so `GET /_sim/state` output can be fed back with `PUT /_sim/state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::util::{is_hex24, now_rfc3339, random_uuid};

/// Built-in default state: the committed example seed file.
pub const DEFAULT_SEED_JSON: &str = include_str!("../../examples/simulator-seed.json");

/// The Infisical auth methods the simulator knows, with the key of their DELETE/GET answer.
pub const INFISICAL_METHODS: [(&str, &str); 12] = [
    ("universal-auth", "identityUniversalAuth"),
    ("token-auth", "identityTokenAuth"),
    ("kubernetes-auth", "identityKubernetesAuth"),
    ("gcp-auth", "identityGcpAuth"),
    ("aws-auth", "identityAwsAuth"),
    ("azure-auth", "identityAzureAuth"),
    ("oidc-auth", "identityOidcAuth"),
    ("jwt-auth", "identityJwtAuth"),
    ("ldap-auth", "identityLdapAuth"),
    ("oci-auth", "identityOciAuth"),
    ("alicloud-auth", "identityAliCloudAuth"),
    ("tls-cert-auth", "identityTlsCertAuth"),
];

/// The answer key of an Infisical auth method (`azure-auth` gives `identityAzureAuth`).
pub fn infisical_response_key(method: &str) -> Option<&'static str> {
    INFISICAL_METHODS.iter().find(|(m, _)| *m == method).map(|(_, k)| *k)
}

/// A placeholder PEM shown as `customerX509.cas` while customer-managed X.509 is enabled.
pub const DEFAULT_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBsimulatorCAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n-----END CERTIFICATE-----\n";

/// Default lifetime of an Infisical access token issued by a login (Infisical's DB default).
pub const DEFAULT_INFISICAL_TOKEN_TTL: u64 = 7200;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    #[serde(default)]
    pub atlas: AtlasState,
    #[serde(default)]
    pub infisical: InfisicalState,
    #[serde(default)]
    pub onezone: OnezoneState,
}

// ---------------------------------------------------------------- Atlas

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtlasState {
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    #[serde(default)]
    pub federations: Vec<Federation>,
    #[serde(default)]
    pub projects: Vec<Project>,
    /// Bearer tokens handed out by `POST /api/oauth/token`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued_tokens: Vec<IssuedToken>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKey {
    pub public_key: String,
    pub private_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccount {
    pub client_id: String,
    pub client_secret: String,
    #[serde(default = "default_sa_ttl")]
    pub token_ttl_seconds: u64,
}

fn default_sa_ttl() -> u64 {
    3600
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuedToken {
    pub token: String,
    pub client_id: String,
    /// Unix seconds.
    pub expires_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Federation {
    pub id: String,
    #[serde(default)]
    pub identity_providers: Vec<IdentityProvider>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityProvider {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub issuer_uri: String,
    #[serde(default)]
    pub audience: String,
    /// Successful `DELETE .../jwks` calls so far.
    #[serde(default)]
    pub jwks_revocations: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_jwks_revoked_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    pub group_id: String,
    #[serde(default = "yes")]
    pub customer_x509_enabled: bool,
    /// PEM shown while enabled; a placeholder is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cas: Option<String>,
    /// Successful `DELETE .../customerX509` calls so far.
    #[serde(default)]
    pub x509_disables: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_x509_disabled_at: Option<String>,
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------- Infisical

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InfisicalState {
    #[serde(default)]
    pub identities: Vec<Identity>,
    #[serde(default)]
    pub access_tokens: Vec<AccessToken>,
    /// Lifetime of tokens issued by the universal-auth login (default 7200 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_seconds: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Attached auth methods. Seeds may give a list of names or a map name → config object.
    #[serde(default, deserialize_with = "de_auth_methods")]
    pub auth_methods: BTreeMap<String, Value>,
    /// Universal-auth client secrets.
    #[serde(default)]
    pub client_secrets: Vec<ClientSecret>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSecret {
    pub id: String,
    /// The secret value used to log in; absent means the secret cannot be used for a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub num_uses: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessToken {
    pub token: String,
    pub identity_id: String,
    /// The auth method the token was issued through (informational).
    #[serde(default = "default_token_method")]
    pub auth_method: String,
    #[serde(default)]
    pub revoked: bool,
    /// Unix seconds; absent = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

fn default_token_method() -> String {
    "token-auth".to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AuthMethodsInput {
    List(Vec<String>),
    Map(BTreeMap<String, Value>),
}

fn de_auth_methods<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    Ok(match AuthMethodsInput::deserialize(d)? {
        AuthMethodsInput::List(names) => names.into_iter().map(|m| (m, Value::Object(Map::new()))).collect(),
        AuthMethodsInput::Map(map) => map,
    })
}

// ---------------------------------------------------------------- Onezone

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OnezoneState {
    #[serde(default)]
    pub users: Vec<OzUser>,
    /// Access tokens accepted in `X-Auth-Token` / `Authorization: Bearer`.
    #[serde(default)]
    pub tokens: Vec<OzToken>,
    #[serde(default)]
    pub named_tokens: Vec<NamedToken>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OzUser {
    pub id: String,
    #[serde(default)]
    pub full_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub temporary_token_generation: u64,
    /// Successful revoke-all-temporary-tokens calls so far.
    #[serde(default)]
    pub temporary_token_revocations: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OzToken {
    pub token: String,
    pub user_id: String,
    /// Holds the oz_tokens_manage admin privilege.
    #[serde(default)]
    pub admin: bool,
    /// A temporary token stops working when its user's generation moves past `generation`.
    #[serde(default)]
    pub temporary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedToken {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub user_id: String,
    #[serde(default)]
    pub revoked: bool,
    /// Deleted tokens stay in the state (for inspection) but the API answers 404 for them.
    #[serde(default)]
    pub deleted: bool,
    /// Optional token value, usable for authentication while not revoked or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

// ---------------------------------------------------------------- loading, merging

impl State {
    /// Parse a seed document and complete it (generated ids, timestamps, defaults).
    pub fn from_json(text: &str) -> Result<State, String> {
        let mut state: State = serde_json::from_str(text).map_err(|e| format!("invalid seed JSON: {e}"))?;
        state.normalize()?;
        Ok(state)
    }

    /// The built-in default state (the example seed file).
    pub fn default_seed() -> Result<State, String> {
        State::from_json(DEFAULT_SEED_JSON)
    }

    /// Add or replace entries from `patch` (same key = replaced as a whole), then normalize.
    pub fn merge(&mut self, patch: State) -> Result<(), String> {
        let a = patch.atlas;
        upsert(&mut self.atlas.api_keys, a.api_keys, |k| k.public_key.clone());
        upsert(&mut self.atlas.service_accounts, a.service_accounts, |k| {
            k.client_id.clone()
        });
        upsert(&mut self.atlas.federations, a.federations, |f| f.id.clone());
        upsert(&mut self.atlas.projects, a.projects, |p| p.group_id.clone());
        upsert(&mut self.atlas.issued_tokens, a.issued_tokens, |t| t.token.clone());
        let i = patch.infisical;
        upsert(&mut self.infisical.identities, i.identities, |x| x.id.clone());
        upsert(&mut self.infisical.access_tokens, i.access_tokens, |t| t.token.clone());
        if i.access_token_ttl_seconds.is_some() {
            self.infisical.access_token_ttl_seconds = i.access_token_ttl_seconds;
        }
        let o = patch.onezone;
        upsert(&mut self.onezone.users, o.users, |u| u.id.clone());
        upsert(&mut self.onezone.tokens, o.tokens, |t| t.token.clone());
        upsert(&mut self.onezone.named_tokens, o.named_tokens, |t| t.id.clone());
        self.normalize()
    }

    /// Validate ids and fill generated fields.
    pub fn normalize(&mut self) -> Result<(), String> {
        for fed in &mut self.atlas.federations {
            if !is_hex24(&fed.id) {
                return Err(format!(
                    "atlas federation id {:?} is not 24 lowercase hex digits",
                    fed.id
                ));
            }
            for idp in &mut fed.identity_providers {
                if !is_hex24(&idp.id) {
                    return Err(format!(
                        "atlas identity provider id {:?} is not 24 lowercase hex digits",
                        idp.id
                    ));
                }
                if idp.display_name.is_empty() {
                    idp.display_name = format!("sim-idp-{}", &idp.id[18..]);
                }
                if idp.protocol.is_empty() {
                    idp.protocol = "OIDC".to_string();
                }
                if idp.issuer_uri.is_empty() {
                    idp.issuer_uri = "https://idp.example.com/oauth2/default".to_string();
                }
                if idp.audience.is_empty() {
                    idp.audience = "api://default".to_string();
                }
            }
        }
        for p in &mut self.atlas.projects {
            if !is_hex24(&p.group_id) {
                return Err(format!(
                    "atlas project groupId {:?} is not 24 lowercase hex digits",
                    p.group_id
                ));
            }
            if p.customer_x509_enabled {
                if p.cas.is_none() {
                    p.cas = Some(DEFAULT_CA_PEM.to_string());
                }
            } else {
                p.cas = None;
            }
        }

        let now = now_rfc3339();
        for identity in &mut self.infisical.identities {
            if identity.id.is_empty() {
                return Err("infisical identity with an empty id".to_string());
            }
            let methods = std::mem::take(&mut identity.auth_methods);
            for (method, config) in methods {
                if infisical_response_key(&method).is_none() {
                    return Err(format!(
                        "infisical identity {}: unknown auth method {method:?} (known: {})",
                        identity.id,
                        INFISICAL_METHODS.iter().map(|(m, _)| *m).collect::<Vec<_>>().join(", ")
                    ));
                }
                let config = complete_method_config(&method, &identity.id, config, &now)?;
                identity.auth_methods.insert(method, config);
            }
            for cs in &mut identity.client_secrets {
                if cs.created_at.is_none() {
                    cs.created_at = Some(now.clone());
                }
                if cs.updated_at.is_none() {
                    cs.updated_at = cs.created_at.clone();
                }
            }
        }

        // Every user referenced by a token exists.
        let referenced: Vec<String> = self
            .onezone
            .tokens
            .iter()
            .map(|t| t.user_id.clone())
            .chain(self.onezone.named_tokens.iter().map(|t| t.user_id.clone()))
            .collect();
        for id in referenced {
            if !self.onezone.users.iter().any(|u| u.id == id) {
                self.onezone.users.push(OzUser {
                    full_name: format!("User {}", id.chars().take(8).collect::<String>()),
                    id,
                    username: None,
                    temporary_token_generation: 0,
                    temporary_token_revocations: 0,
                });
            }
        }
        for user in &mut self.onezone.users {
            if user.full_name.is_empty() {
                user.full_name = format!("User {}", user.id.chars().take(8).collect::<String>());
            }
        }
        for token in &mut self.onezone.tokens {
            if token.temporary && token.generation.is_none() {
                token.generation = self
                    .onezone
                    .users
                    .iter()
                    .find(|u| u.id == token.user_id)
                    .map(|u| u.temporary_token_generation);
            }
        }
        Ok(())
    }

    /// Mark every bearer token handed out by a login as expired (admin API).
    pub fn expire_issued_tokens(&mut self, now: u64) -> usize {
        let mut n = 0;
        for t in &mut self.atlas.issued_tokens {
            t.expires_at = now.saturating_sub(1);
            n += 1;
        }
        for t in &mut self.infisical.access_tokens {
            if t.expires_at.is_some() {
                t.expires_at = Some(now.saturating_sub(1));
                n += 1;
            }
        }
        n
    }
}

fn upsert<T>(dst: &mut Vec<T>, src: Vec<T>, key: impl Fn(&T) -> String) {
    for item in src {
        let k = key(&item);
        match dst.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = item,
            None => dst.push(item),
        }
    }
}

/// Fill the fields Infisical stores for every auth method, plus a few method-specific ones.
fn complete_method_config(method: &str, identity_id: &str, config: Value, now: &str) -> Result<Value, String> {
    let mut obj = match config {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(format!(
                "infisical identity {identity_id}: config of {method} must be an object, got {other}"
            ));
        }
    };
    let mut put = |k: &str, v: Value| {
        obj.entry(k.to_string()).or_insert(v);
    };
    put("id", json!(random_uuid()));
    put("identityId", json!(identity_id));
    put("accessTokenTTL", json!(DEFAULT_INFISICAL_TOKEN_TTL));
    put("accessTokenMaxTTL", json!(DEFAULT_INFISICAL_TOKEN_TTL));
    put("accessTokenNumUsesLimit", json!(0));
    put(
        "accessTokenTrustedIps",
        json!([
            {"type": "ipv4", "prefix": 0, "ipAddress": "0.0.0.0"},
            {"type": "ipv6", "prefix": 0, "ipAddress": "::"}
        ]),
    );
    put("createdAt", json!(now));
    put("updatedAt", json!(now));
    match method {
        "universal-auth" => {
            put("clientId", json!(random_uuid()));
            put(
                "clientSecretTrustedIps",
                json!([
                    {"type": "ipv4", "prefix": 0, "ipAddress": "0.0.0.0"},
                    {"type": "ipv6", "prefix": 0, "ipAddress": "::"}
                ]),
            );
        }
        "azure-auth" => {
            put("tenantId", json!("72f988bf-86f1-41af-91ab-2d7cd011db47"));
            put("resource", json!("https://management.azure.com/"));
            put("allowedServicePrincipalIds", json!(""));
        }
        "kubernetes-auth" => {
            put("kubernetesHost", json!("https://kubernetes.default.svc"));
            put("allowedNamespaces", json!(""));
            put("allowedNames", json!(""));
            put("allowedAudience", json!(""));
        }
        "gcp-auth" => {
            put("type", json!("iam"));
            put("allowedServiceAccounts", json!(""));
            put("allowedProjects", json!(""));
            put("allowedZones", json!(""));
        }
        "aws-auth" => {
            put("type", json!("iam"));
            put("stsEndpoint", json!("https://sts.amazonaws.com/"));
            put("allowedPrincipalArns", json!(""));
            put("allowedAccountIds", json!(""));
        }
        "oidc-auth" | "jwt-auth" => {
            put("boundIssuer", json!("https://idp.example.com"));
            put("boundAudiences", json!(""));
            put("boundClaims", json!({}));
            put("boundSubject", json!(""));
        }
        "ldap-auth" => {
            put("url", json!("ldaps://ldap.example.com:636"));
            put("searchBase", json!("ou=users,dc=example,dc=com"));
        }
        _ => {}
    }
    Ok(Value::Object(obj))
}

/// The universal-auth client id of an identity, if that method is attached.
pub fn universal_auth_client_id(identity: &Identity) -> Option<&str> {
    identity
        .auth_methods
        .get("universal-auth")
        .and_then(|c| c.get("clientId"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_loads_with_the_agreed_ids() {
        let s = State::default_seed().expect("default seed");
        assert!(
            s.atlas
                .api_keys
                .iter()
                .any(|k| k.public_key == "sim-public-key" && k.private_key == "sim-private-key")
        );
        assert!(
            s.atlas
                .service_accounts
                .iter()
                .any(|a| a.client_id == "mdb_sa_id_sim" && a.client_secret == "mdb_sa_sk_sim")
        );
        let fed = s
            .atlas
            .federations
            .iter()
            .find(|f| f.id == "55fa922fb343282757d9554e")
            .expect("federation");
        assert!(
            fed.identity_providers
                .iter()
                .any(|i| i.id == "32b6e34b3d91647abb20e7b8")
        );
        assert!(
            s.atlas
                .projects
                .iter()
                .any(|p| p.group_id == "32b6e34b3d91647abb20e7b9" && p.customer_x509_enabled)
        );
        let target = s
            .infisical
            .identities
            .iter()
            .find(|i| i.id == "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a")
            .expect("target identity");
        assert_eq!(target.auth_methods.len(), 12);
        assert!(
            target
                .client_secrets
                .iter()
                .any(|c| c.id == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        );
        assert!(s.infisical.identities.iter().any(|i| {
            universal_auth_client_id(i) == Some("sim-client-id")
                && i.client_secrets
                    .iter()
                    .any(|c| c.secret.as_deref() == Some("sim-client-secret"))
        }));
        assert!(
            s.infisical
                .access_tokens
                .iter()
                .any(|t| t.token == "sim-token-to-revoke")
        );
        assert!(s.onezone.tokens.iter().any(|t| {
            t.token == "sim-onezone-admin-token" && t.admin && t.user_id == "c26bab23d12f7389c3c311caf9c15902"
        }));
        assert!(
            s.onezone
                .named_tokens
                .iter()
                .any(|t| t.id == "2b5d0dd5aa6443a69277b5ce0544fec2")
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = State::default_seed().expect("default seed");
        let text = serde_json::to_string(&s).expect("serialize");
        let back = State::from_json(&text).expect("parse back");
        assert_eq!(s, back);
    }

    #[test]
    fn bad_ids_and_methods_are_rejected() {
        let e = State::from_json(r#"{"atlas":{"projects":[{"groupId":"xyz"}]}}"#);
        assert!(e.is_err());
        let e = State::from_json(r#"{"infisical":{"identities":[{"id":"a","authMethods":["foo-auth"]}]}}"#);
        assert!(e.is_err());
        let e = State::from_json(r#"{"atlas":{"typo":1}}"#);
        assert!(e.is_err());
    }

    #[test]
    fn merge_replaces_by_key() {
        let mut s = State::default_seed().expect("default seed");
        let patch = State::from_json(
            r#"{"atlas":{"projects":[{"groupId":"32b6e34b3d91647abb20e7b9","customerX509Enabled":false},
                                     {"groupId":"aaaaaaaaaaaaaaaaaaaaaaaa"}]}}"#,
        )
        .expect("patch");
        s.merge(patch).expect("merge");
        let p = s
            .atlas
            .projects
            .iter()
            .find(|p| p.group_id == "32b6e34b3d91647abb20e7b9")
            .expect("project");
        assert!(!p.customer_x509_enabled);
        assert!(p.cas.is_none());
        assert!(
            s.atlas
                .projects
                .iter()
                .any(|p| p.group_id == "aaaaaaaaaaaaaaaaaaaaaaaa" && p.cas.is_some())
        );
        assert!(!s.atlas.api_keys.is_empty());
    }
}
