//! Contract tests: every revoking call of the provider clients is sent to Prism, a validating
//! mock of the providers' OpenAPI documents (docs/provider-specs/), run
//! with `--errors`: a request that breaks the contract (path pattern, method, header, body,
//! security scheme) gets an error answer and the test fails. Prism is installed by
//! `hack/prism.sh install` (hack/test.sh does it); a missing Prism fails these tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use revoker::api::{
    AtlasProvider, InfisicalAuthMethod, InfisicalProvider, LocalSecretRef, NamedTokenAction, OnezoneProvider,
};
use revoker::egress::AllowList;
use revoker::providers::atlas::AtlasClient;
use revoker::providers::atlas::AtlasCredentials;
use revoker::providers::http::HttpSettings;
use revoker::providers::infisical::InfisicalClient;
use revoker::providers::infisical::InfisicalCredentials;
use revoker::providers::onezone::OnezoneClient;
use revoker::providers::onezone::OnezoneCredentials;
use revoker::providers::{AttemptContext, Operation, OutcomeKind, Provider};
use secrecy::SecretString;

struct Prism {
    child: Child,
    port: u16,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prism_path() -> String {
    std::env::var("REVOKER_PRISM").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/revoker/prism-5.16.0/node_modules/.bin/prism")
    })
}

fn start_prism(spec: &str) -> Prism {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let spec = format!("{}/docs/provider-specs/{spec}", env!("CARGO_MANIFEST_DIR"));
    let prism = prism_path();
    assert!(
        std::path::Path::new(&prism).exists(),
        "Prism not found at {prism}: run hack/prism.sh install"
    );
    let child = Command::new(&prism)
        .args(["mock", "--errors", "-h", "127.0.0.1", "-p", &port.to_string(), &spec])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prism");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "prism did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Prism { child, port }
}

fn settings() -> HttpSettings {
    HttpSettings {
        allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).expect("allow-list")),
        ..HttpSettings::default()
    }
}

fn secret_ref() -> LocalSecretRef {
    LocalSecretRef { name: "creds".into() }
}

async fn revoke_ok(client: &dyn Provider, op: Operation) {
    let name = op.name();
    let outcome = client
        .revoke(&op, AttemptContext::default())
        .await
        .unwrap_or_else(|e| panic!("{name} was rejected by the contract mock: {e:?}"));
    assert_eq!(outcome.kind, OutcomeKind::Revoked, "{name}: {outcome:?}");
}

#[tokio::test]
async fn atlas_requests_match_the_published_contract() {
    let prism = start_prism("atlas.yaml");
    // Prism's digest check (prism-http digestAuth.js) wants every parameter quoted and made of
    // [a-z0-9] only, which no real Digest header is (uri holds '/', qop is unquoted). The proxy
    // answers the unauthenticated request with an Atlas-like challenge, checks the client's
    // answer, and forwards a header Prism accepts; Prism validates everything else.
    let proxy = proxy::start(prism.port, "", true).await;
    let config = AtlasProvider {
        base_url: Some(format!("http://127.0.0.1:{proxy}")),
        credentials_secret_ref: secret_ref(),
        api_versions: Default::default(),
    };
    let creds = AtlasCredentials::ApiKey {
        public_key: "pub".into(),
        private_key: SecretString::from("3f0c2a1b-contract-private-key"),
    };
    let client = AtlasClient::new(&config, creds, None, &settings()).expect("client");
    revoke_ok(
        &client,
        Operation::AtlasRevokeJwks {
            federation_settings_id: "55fa922fb343282757d9554e".into(),
            identity_provider_id: "32b6e34b3d91647abb20e7b8".into(),
        },
    )
    .await;
    revoke_ok(
        &client,
        Operation::AtlasDisableX509 {
            group_id: "32b6e34b3d91647abb20e7b9".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn infisical_requests_match_the_published_contract() {
    let prism = start_prism("infisical.yaml");
    let config = InfisicalProvider {
        base_url: Some(format!("http://127.0.0.1:{}", prism.port)),
        credentials_secret_ref: secret_ref(),
    };
    let creds = InfisicalCredentials::UniversalAuth {
        client_id: "id".into(),
        client_secret: SecretString::from("secret"),
    };
    let client = InfisicalClient::new(&config, creds, None, &settings()).expect("client");
    let identity = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a".to_string();
    // The methods whose DELETE route the contract documents.
    for method in [
        InfisicalAuthMethod::AzureAuth,
        InfisicalAuthMethod::UniversalAuth,
        InfisicalAuthMethod::TokenAuth,
        InfisicalAuthMethod::KubernetesAuth,
        InfisicalAuthMethod::GcpAuth,
        InfisicalAuthMethod::AwsAuth,
        InfisicalAuthMethod::OidcAuth,
        InfisicalAuthMethod::JwtAuth,
        InfisicalAuthMethod::LdapAuth,
    ] {
        revoke_ok(
            &client,
            Operation::InfisicalDeleteAuthMethod {
                identity_id: identity.clone(),
                method,
            },
        )
        .await;
    }
    revoke_ok(
        &client,
        Operation::InfisicalRevokeToken {
            token: SecretString::from("eyJ.token.sig"),
            token_auth: false,
        },
    )
    .await;
    revoke_ok(
        &client,
        Operation::InfisicalRevokeClientSecret {
            identity_id: identity.clone(),
            client_secret_id: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn onezone_requests_match_the_published_contract() {
    let prism = start_prism("onezone.yaml");
    // The Onezone document's server URL carries the /api/v3/onezone prefix and its paths do not;
    // the proxy strips the prefix the client sends.
    let proxy = proxy::start(prism.port, "/api/v3/onezone", false).await;
    let config = OnezoneProvider {
        base_url: format!("http://127.0.0.1:{proxy}"),
        credentials_secret_ref: secret_ref(),
    };
    let creds = OnezoneCredentials {
        token: SecretString::from("oz-token"),
    };
    let client = OnezoneClient::new(&config, creds, None, &settings()).expect("client");
    revoke_ok(
        &client,
        Operation::OnezoneRevokeUserTemporaryTokens {
            user_id: "c26bab23d12f7389c3c311caf9c15902".into(),
        },
    )
    .await;
    revoke_ok(&client, Operation::OnezoneRevokeCurrentUserTemporaryTokens).await;
    for action in [NamedTokenAction::Revoke, NamedTokenAction::Delete] {
        revoke_ok(
            &client,
            Operation::OnezoneRevokeNamedToken {
                token_id: "2b5d0dd5aa6443a69277b5ce0544fec2".into(),
                action,
            },
        )
        .await;
    }
}

/// A tiny reverse proxy in front of Prism: strips a path prefix, and can answer requests without
/// an Authorization header with an Atlas-like HTTP Digest challenge.
mod proxy {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;

    pub async fn start(upstream_port: u16, prefix: &'static str, digest_challenge: bool) -> u16 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: Request| {
            let client = client.clone();
            async move {
                if digest_challenge && !req.headers().contains_key("authorization") {
                    return Response::builder()
                        .status(401)
                        .header("www-authenticate", r#"Digest realm="MMS Public API", domain="", nonce="n0nce", algorithm=MD5, qop="auth", stale=false"#)
                        .header("content-type", "application/json")
                        .body(Body::from(r#"{"error":401,"errorCode":"NOT_ORG_GROUP_CREATOR","reason":"Unauthorized","detail":"challenge"}"#))
                        .expect("response");
                }
                let mut req = req;
                if digest_challenge {
                    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    let answered = auth.starts_with("Digest username=\"pub\"")
                        && auth.contains("nonce=\"n0nce\"")
                        && auth.contains("response=\"");
                    if !answered {
                        return Response::builder().status(400).body(Body::from(format!("bad digest answer: {auth}"))).expect("response");
                    }
                    let simple = r#"Digest username="pub" realm="mms" nonce="abc123" uri="x" response="r""#;
                    req.headers_mut().insert("authorization", axum::http::HeaderValue::from_static(simple));
                }
                forward(client, upstream_port, prefix, req).await
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    async fn forward(client: reqwest::Client, port: u16, prefix: &str, req: Request) -> Response {
        let path_and_query = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let Some(rest) = path_and_query.strip_prefix(prefix) else {
            return Response::builder()
                .status(404)
                .body(Body::from("outside the Onezone prefix"))
                .expect("response");
        };
        let url = format!("http://127.0.0.1:{port}{rest}");
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let mut upstream = client.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            if name != "host" {
                upstream = upstream.header(name, value);
            }
        }
        match upstream.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.unwrap_or_default();
                let mut out = Response::builder().status(status);
                for (name, value) in &headers {
                    out = out.header(name, value);
                }
                out.body(Body::from(bytes)).expect("response")
            }
            Err(e) => Response::builder()
                .status(502)
                .body(Body::from(e.to_string()))
                .expect("response"),
        }
    }
}
