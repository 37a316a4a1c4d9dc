//! The simulator's answers against the official contracts: the same clients and harness as the
//! scripted tests, with the provider simulator (quickstart seed) behind Prism instead of scripted
//! answers. Every answer it gives — successes, its errors, its digest and token refusals, the 406
//! of an undocumented version, and each fault mode the e2e tests use (5xx, 429 with Retry-After,
//! the hostile echo) — must validate, and every request still must.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const SIM_PUBLIC_KEY: &str = "sim-public-key";
const SIM_PRIVATE_KEY: &str = "sim-private-key";
const SIM_SA_ID: &str = "mdb_sa_id_sim";
const SIM_SA_SECRET: &str = "mdb_sa_sk_sim";
const SIM_UA_CLIENT_ID: &str = "sim-client-id";
const SIM_UA_SECRET: &str = "sim-client-secret";
const SIM_STATIC_TOKEN: &str = "sim-static-access-token";
const SIM_ONEZONE_TOKEN: &str = "sim-onezone-admin-token";
const SIM_ONEZONE_USER: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
const UNKNOWN_IDP: &str = "32b6e34b3d91647abb200404";
const UNKNOWN_IDENTITY: &str = "00000000-0000-4000-8000-000000000404";

/// The simulator process (killed on drop) and its admin API.
struct Simulator {
    child: Child,
    dir: PathBuf,
    url: String,
    http: reqwest::Client,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The workspace's `revoker-simulator` binary, built if needed (a binary of another package has no
/// `CARGO_BIN_EXE_` variable).
fn simulator_binary() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked", "-p", "revoker-simulator"])
        .current_dir(root)
        .status()
        .expect("cargo build -p revoker-simulator");
    assert!(status.success(), "cargo build -p revoker-simulator failed");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_revoker")).with_file_name("revoker-simulator");
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

impl Simulator {
    async fn start() -> Simulator {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("revoker-contract-sim-{}-{}", std::process::id(), next_id()));
        std::fs::create_dir_all(&dir).expect("simulator dir");
        let port_file = dir.join("port");
        let child = Command::new(simulator_binary())
            .args(["--listen", "127.0.0.1:0", "--port-file"])
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the simulator");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "the simulator wrote no port file within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Simulator {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) {
        let mut request = self.http.request(method, format!("{}/_sim/{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("simulator admin API");
        assert!(
            response.status().is_success(),
            "simulator admin {path}: {}",
            response.status()
        );
    }

    /// A fault on `METHOD path` and below, `times` times.
    async fn fault(&self, method: &str, path: &str, fault: Value) {
        let mut spec = json!({"match": {"method": method, "path": path}, "kind": "status", "times": 1});
        if let (Some(spec), Some(fault)) = (spec.as_object_mut(), fault.as_object()) {
            spec.extend(fault.clone());
        }
        self.admin(reqwest::Method::POST, "faults", Some(spec)).await;
    }

    async fn expire_tokens(&self) {
        self.admin(reqwest::Method::POST, "tokens/expire", None).await;
    }
}

fn next_id() -> usize {
    static IDS: AtomicUsize = AtomicUsize::new(0);
    IDS.fetch_add(1, Ordering::SeqCst)
}

async fn simulated(files: &[&str], secrets: Secrets, alias: Option<harness::Alias>) -> (Simulator, Harness) {
    let sim = Simulator::start().await;
    let upstream = Upstream::Simulator {
        url: sim.url.clone(),
        digest: secrets.digest.clone(),
    };
    let harness = Harness::start(files, upstream, secrets, alias).await;
    (sim, harness)
}

fn sim_atlas_client(harness: &Harness, creds: AtlasCredentials, versions: &[(&str, &str)]) -> AtlasClient {
    let config = AtlasProvider {
        base_url: Some(harness.url.clone()),
        credentials_secret_ref: secret_ref(),
        api_versions: versions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    AtlasClient::new(&config, creds, None, &settings()).expect("client")
}

#[tokio::test]
async fn simulator_atlas_answers_match_the_official_contract() {
    let secrets = Secrets {
        basic: Some((SIM_SA_ID.into(), SIM_SA_SECRET.into())),
        digest: Some((SIM_PUBLIC_KEY.into(), SIM_PRIVATE_KEY.into())),
        ..Secrets::default()
    };
    let (sim, harness) = simulated(&ATLAS_SPECS, secrets, None).await;
    let api_key = AtlasCredentials::ApiKey {
        public_key: SIM_PUBLIC_KEY.into(),
        private_key: SecretString::from(SIM_PRIVATE_KEY),
    };
    let client = sim_atlas_client(&harness, api_key, &[]);
    run_every_atlas_call(&client).await;
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    assert_eq!(
        exchanges.len(),
        6,
        "five calls and one challenge (the nonce is kept): {exchanges:#?}"
    );

    // Its error answers: 404, a 500 then the retry, a 429 with Retry-After, a hostile echo.
    let err = expect_error(revoke(&client, &jwks(UNKNOWN_IDP)).await, Reason::TargetNotFound, "404");
    assert_eq!(err.http_status, Some(404));
    sim.fault("DELETE", "/api/atlas/v2/federationSettings", json!({"status": 500}))
        .await;
    expect_error(revoke(&client, &jwks(IDP)).await, Reason::ProviderUnavailable, "500");
    expect_kind(
        revoke(&client, &jwks(IDP)).await,
        OutcomeKind::Revoked,
        "retry after 500",
    );
    sim.fault(
        "DELETE",
        "/api/atlas/v2/federationSettings",
        json!({"status": 429, "retryAfter": 7}),
    )
    .await;
    let err = expect_error(revoke(&client, &jwks(IDP)).await, Reason::RateLimited, "429");
    assert_eq!(retry_after(&err), Some(Duration::from_secs(7)), "{err:?}");
    sim.fault("GET", "/api/atlas/v2/groups", json!({"status": 403, "echo": true}))
        .await;
    let _ = client.dry_run(&x509()).await.expect_err("echoed 403");
    let exchanges = harness.take();
    assert_valid(&exchanges, &[Allow::UndocumentedStatus(429)]);
    assert!(
        exchanges.iter().any(|e| e.status == 429) && exchanges.iter().any(|e| e.status == 500),
        "the faults reached the client through Prism: {exchanges:#?}"
    );

    // An undocumented version: the simulator's own 406, with Atlas's error body.
    let overridden = sim_atlas_client(
        &harness,
        AtlasCredentials::ApiKey {
            public_key: SIM_PUBLIC_KEY.into(),
            private_key: SecretString::from(SIM_PRIVATE_KEY),
        },
        &[("disableCustomerManagedX509", "2025-03-12")],
    );
    let err = expect_error(revoke(&overridden, &x509()).await, Reason::UnsupportedApiVersion, "406");
    assert!(err.message.contains("2025-03-12"), "{}", err.message);
    let exchanges = harness.take();
    assert_valid(&exchanges, &[Allow::UndocumentedAccept, Allow::UndocumentedStatus(406)]);
    assert!(
        exchanges.iter().any(|e| e.status == 406),
        "the simulator answered 406: {exchanges:#?}"
    );
}

#[tokio::test]
async fn simulator_atlas_token_answers_match_the_official_contract() {
    let secrets = Secrets {
        basic: Some((SIM_SA_ID.into(), SIM_SA_SECRET.into())),
        ..Secrets::default()
    };
    let (sim, harness) = simulated(&ATLAS_SPECS, secrets, None).await;
    let service_account = || AtlasCredentials::ServiceAccount {
        client_id: SIM_SA_ID.into(),
        client_secret: SecretString::from(SIM_SA_SECRET),
    };
    let client = sim_atlas_client(&harness, service_account(), &[]);
    assert_eq!(client.check_credentials().await.expect("token"), "serviceAccount");
    expect_kind(
        client.dry_run(&jwks(IDP)).await,
        OutcomeKind::DryRun,
        "getIdentityProvider",
    );
    // The simulator expires the cached token: its 401, a new token, the repeated call.
    sim.expire_tokens().await;
    expect_kind(revoke(&client, &jwks(IDP)).await, OutcomeKind::Revoked, "after refresh");
    expect_kind(revoke(&client, &x509()).await, OutcomeKind::Revoked, "disableX509");
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    assert_eq!(
        &sent[..5],
        [
            "atlasServiceAccountToken Basic 200",
            "getIdentityProvider Bearer 200",
            "revokeJwksFromIdentityProvider Bearer 401",
            "atlasServiceAccountToken Basic 200",
            "revokeJwksFromIdentityProvider Bearer 204",
        ],
        "{sent:#?}"
    );

    // The token endpoint refuses wrong client credentials (RFC 6749 5.2).
    let wrong = sim_atlas_client(
        &harness,
        AtlasCredentials::ServiceAccount {
            client_id: SIM_SA_ID.into(),
            client_secret: SecretString::from("mdb_sa_sk_wrong"),
        },
        &[],
    );
    let err = wrong.check_credentials().await.expect_err("rejected credentials");
    assert_eq!(err.reason, Reason::Unauthorized, "{err:?}");
    let exchanges = harness.take();
    // The harness flags the wrong secret as invalid credentials; the answer must still validate.
    let answers: Vec<String> = exchanges
        .iter()
        .flat_map(|e| {
            e.violations
                .iter()
                .filter(|v| !v.contains("credentials are not the expected ones"))
        })
        .cloned()
        .collect();
    assert!(answers.is_empty(), "the token refusal broke the contract: {answers:#?}");
}

#[tokio::test]
async fn simulator_infisical_answers_match_the_official_contract() {
    let (sim, harness) = simulated(&["infisical.yaml"], Secrets::default(), Some(as_azure_route)).await;
    let client = infisical_client(
        &harness,
        InfisicalCredentials::UniversalAuth {
            client_id: SIM_UA_CLIENT_ID.into(),
            client_secret: SecretString::from(SIM_UA_SECRET),
        },
    );
    assert_eq!(client.check_credentials().await.expect("login"), "universalAuth");
    let azure = delete_method(IDENTITY, InfisicalAuthMethod::AzureAuth);
    expect_kind(client.dry_run(&azure).await, OutcomeKind::DryRun, "getAzureAuth");
    expect_kind(revoke(&client, &azure).await, OutcomeKind::Revoked, "deleteAzureAuth");
    expect_kind(
        client.dry_run(&revoke_secret()).await,
        OutcomeKind::DryRun,
        "client secret dry run",
    );
    // The login's token expires: the simulator's 401, a new login, the repeated call.
    sim.expire_tokens().await;
    expect_kind(
        revoke(&client, &revoke_secret()).await,
        OutcomeKind::Revoked,
        "client secret",
    );
    for (token, token_auth) in [("sim-token-to-revoke", false), ("sim-token-auth-token-to-revoke", true)] {
        let op = Operation::InfisicalRevokeToken {
            token: SecretString::from(token),
            token_auth,
        };
        expect_kind(revoke(&client, &op).await, OutcomeKind::Revoked, token);
    }
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    let sent = ops_sent(&exchanges);
    assert!(
        sent.windows(3)
            .any(|w| w[0].starts_with("revokeUniversalAuthClientSecret Bearer 40")
                && w[1] == "loginWithUniversalAuth none 200"
                && w[2] == "revokeUniversalAuthClientSecret Bearer 200"),
        "a refused token is replaced once: {sent:#?}"
    );

    // Its error answers: 404, 400 (no such auth method), a 500 then the retry, a 429, an echo.
    expect_error(
        revoke(
            &client,
            &delete_method(UNKNOWN_IDENTITY, InfisicalAuthMethod::AzureAuth),
        )
        .await,
        Reason::TargetNotFound,
        "404",
    );
    expect_kind(
        revoke(&client, &azure).await,
        OutcomeKind::AlreadyRevoked,
        "400 no azure auth",
    );
    let route = format!("/api/v1/auth/azure-auth/identities/{UNKNOWN_IDENTITY}");
    let gone = delete_method(UNKNOWN_IDENTITY, InfisicalAuthMethod::AzureAuth);
    for fault in [
        json!({"status": 500}),
        json!({"status": 429, "retryAfter": 12}),
        json!({"status": 403, "echo": true}),
    ] {
        sim.fault("DELETE", &route, fault).await;
        let err = revoke(&client, &gone).await.expect_err("fault");
        assert_ne!(
            err.reason,
            Reason::TargetNotFound,
            "the fault answered, not the state: {err:?}"
        );
    }
    let exchanges = harness.take();
    assert_valid(&exchanges, &[Allow::UndocumentedStatus(429)]);
    assert_eq!(
        exchanges.iter().filter(|e| [500, 429, 403].contains(&e.status)).count(),
        3,
        "{exchanges:#?}"
    );
}

/// Only the azure-auth router is in the official document; the simulator's answers on the other
/// auth methods' routes name their own keys (`identityGcpAuth`, ...) and have no contract to meet,
/// so their requests are checked by the scripted tests and their answers here not at all.
#[tokio::test]
async fn simulator_infisical_access_token_answers_match_the_official_contract() {
    let secrets = Secrets {
        bearer: vec![SIM_STATIC_TOKEN.into()],
        ..Secrets::default()
    };
    let (_sim, harness) = simulated(&["infisical.yaml"], secrets, Some(as_azure_route)).await;
    let client = infisical_client(
        &harness,
        InfisicalCredentials::AccessToken(SecretString::from(SIM_STATIC_TOKEN)),
    );
    assert_eq!(client.check_credentials().await.expect("check"), "accessToken");
    let azure = delete_method(IDENTITY, InfisicalAuthMethod::AzureAuth);
    expect_kind(client.dry_run(&azure).await, OutcomeKind::DryRun, "getAzureAuth");
    expect_kind(revoke(&client, &azure).await, OutcomeKind::Revoked, "deleteAzureAuth");
    expect_kind(
        client.dry_run(&revoke_secret()).await,
        OutcomeKind::DryRun,
        "client secret dry run",
    );
    expect_kind(
        revoke(&client, &revoke_secret()).await,
        OutcomeKind::Revoked,
        "client secret",
    );
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    assert_eq!(exchanges.len(), 4, "{exchanges:#?}");
}

#[tokio::test]
async fn simulator_onezone_answers_match_the_official_contract() {
    let secrets = Secrets {
        api_key: Some(SIM_ONEZONE_TOKEN.into()),
        ..Secrets::default()
    };
    let (sim, harness) = simulated(&["onezone.yaml"], secrets, None).await;
    let config = OnezoneProvider {
        base_url: harness.url.clone(),
        credentials_secret_ref: secret_ref(),
    };
    let creds = OnezoneCredentials {
        token: SecretString::from(SIM_ONEZONE_TOKEN),
    };
    let client = OnezoneClient::new(&config, creds, None, &settings()).expect("client");
    assert_eq!(client.check_credentials().await.expect("check"), "token");
    let user = Operation::OnezoneRevokeUserTemporaryTokens {
        user_id: SIM_ONEZONE_USER.into(),
    };
    let named = |action| Operation::OnezoneRevokeNamedToken {
        token_id: NAMED.into(),
        action,
    };
    for op in [
        user.clone(),
        Operation::OnezoneRevokeCurrentUserTemporaryTokens,
        named(NamedTokenAction::Revoke),
        named(NamedTokenAction::Delete),
    ] {
        expect_kind(client.dry_run(&op).await, OutcomeKind::DryRun, op.name());
        expect_kind(revoke(&client, &op).await, OutcomeKind::Revoked, op.name());
    }
    assert_valid(&harness.take(), &[]);

    let missing = Operation::OnezoneRevokeUserTemporaryTokens {
        user_id: USER_MISSING.into(),
    };
    expect_error(revoke(&client, &missing).await, Reason::TargetNotFound, "404 user");
    expect_error(
        revoke(&client, &named(NamedTokenAction::Delete)).await,
        Reason::TargetNotFound,
        "404 deleted named token",
    );
    let path = format!("/api/v3/onezone/users/{SIM_ONEZONE_USER}/tokens/temporary");
    sim.fault("DELETE", &path, json!({"status": 500})).await;
    expect_error(revoke(&client, &user).await, Reason::ProviderUnavailable, "500");
    expect_kind(revoke(&client, &user).await, OutcomeKind::Revoked, "retry after 500");
    sim.fault("DELETE", &path, json!({"status": 400, "echo": true})).await;
    let _ = revoke(&client, &user).await.expect_err("echoed 400");
    let exchanges = harness.take();
    assert_valid(&exchanges, &[]);
    assert!(exchanges.iter().any(|e| e.status == 500), "{exchanges:#?}");
}
