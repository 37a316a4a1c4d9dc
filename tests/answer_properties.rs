//! Property tests of the answer parsers, through the real clients: a provider answering any
//! status with any body and request id (arbitrary text, and echoes of the credentials in every
//! encoding) never makes a client panic, and nothing the client returns — message, error code,
//! request id — contains any encoded form of a credential it holds or obtained, or grows unbounded.
//! Bounded: 48 cases per provider.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use k8s_openapi::ByteString;
use proptest::prelude::*;
use revoker::api::{ProviderBackend, ProviderConfig, ProviderType};
use revoker::credentials::{SecretData, SecretLocation};
use revoker::egress::AllowList;
use revoker::providers::http::HttpSettings;
use revoker::providers::{AttemptContext, Operation, Provider, registration};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ATLAS_SECRET: &str = "atlas-client-SECRET-4242";
const ISSUED: &str = "issued-bearer-TOKEN-987654321";
const INFISICAL_TOKEN: &str = "infisical-access-TOKEN-1234";
const ONEZONE_TOKEN: &str = "onezone-admin-TOKEN-5678";
const FED: &str = "55fa922fb343282757d9554e";
const IDP: &str = "32b6e34b3d91647abb20e7b8";
const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";

fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![secret.to_string(), hex::encode(secret), secret.replace('-', "%2D")];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        out.push(engine.encode(secret));
    }
    out.push(STANDARD.encode(format!("mdb_sa_id:{secret}")));
    out
}

/// What a hostile provider may put in a text field: noise, or a credential in some form.
fn text() -> impl Strategy<Value = String> {
    let secrets = [ATLAS_SECRET, ISSUED, INFISICAL_TOKEN, ONEZONE_TOKEN];
    let echoes: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
    prop_oneof![
        ".{0,80}",
        (proptest::sample::select(echoes), ".{0,20}").prop_map(|(e, tail)| format!("you sent {e} {tail}")),
        (proptest::sample::select(secrets.to_vec())).prop_map(|s| format!("Authorization: Bearer {s}")),
    ]
}

/// A body in the provider's error shape, or arbitrary bytes.
fn body(dialect: ProviderType) -> impl Strategy<Value = String> {
    (text(), text(), text(), any::<bool>()).prop_map(move |(a, b, c, structured)| {
        if !structured {
            return a;
        }
        let value: Value = match dialect {
            ProviderType::Atlas => {
                json!({"detail": a, "errorCode": b, "reason": c, "error": 400, "parameters": [{"v": a}]})
            }
            ProviderType::Infisical => json!({"message": a, "error": b, "reqId": c, "statusCode": 400}),
            ProviderType::Onezone => json!({"error": {"id": b, "description": a, "details": {"x": c}}}),
        };
        value.to_string()
    })
}

fn settings() -> HttpSettings {
    HttpSettings {
        allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).expect("allow-list")),
        ..HttpSettings::default()
    }
}

fn secret_data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

fn client(provider: ProviderType, base: &str) -> Arc<dyn Provider> {
    let block = json!({"baseUrl": base, "credentialsSecretRef": {"name": "creds"}});
    let (backend, data) = match provider {
        ProviderType::Atlas => (
            ProviderBackend::Atlas(serde_json::from_value(block).expect("atlas block")),
            secret_data(&[("clientId", "mdb_sa_id"), ("clientSecret", ATLAS_SECRET)]),
        ),
        ProviderType::Infisical => (
            ProviderBackend::Infisical(serde_json::from_value(block).expect("infisical block")),
            secret_data(&[("accessToken", INFISICAL_TOKEN)]),
        ),
        ProviderType::Onezone => (
            ProviderBackend::Onezone(serde_json::from_value(block).expect("onezone block")),
            secret_data(&[("token", ONEZONE_TOKEN)]),
        ),
    };
    let config = ProviderConfig {
        backend,
        ca_bundle: None,
        budget: None,
    };
    let secret = SecretData {
        data: &data,
        at: SecretLocation {
            namespace: "ns",
            name: "creds",
        },
    };
    (registration(provider).build)(&config, &secret, &settings()).expect("client")
}

fn operation(provider: ProviderType) -> (Operation, &'static str, &'static str) {
    match provider {
        ProviderType::Atlas => (
            Operation::AtlasRevokeJwks {
                federation_settings_id: FED.into(),
                identity_provider_id: IDP.into(),
            },
            "DELETE",
            "/api/atlas/v2/federationSettings/55fa922fb343282757d9554e/identityProviders/32b6e34b3d91647abb20e7b8/jwks",
        ),
        ProviderType::Infisical => (
            Operation::InfisicalDeleteAuthMethod {
                identity_id: IDENTITY.into(),
                method: revoker::api::InfisicalAuthMethod::AzureAuth,
            },
            "DELETE",
            "/api/v1/auth/azure-auth/identities/8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a",
        ),
        ProviderType::Onezone => (
            Operation::OnezoneRevokeUserTemporaryTokens {
                user_id: "9a8b7c6d5e4f30211203f4e5d6c7b8a9".into(),
            },
            "DELETE",
            "/api/v3/onezone/users/9a8b7c6d5e4f30211203f4e5d6c7b8a9/tokens/temporary",
        ),
    }
}

/// One hostile answer; returns everything the client produced from it, as text.
async fn answer(provider: ProviderType, status: u16, body: String, request_id: String) -> String {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": ISSUED, "token_type": "Bearer", "expires_in": 3600})),
        )
        .mount(&server)
        .await;
    let (op, verb, at) = operation(provider);
    let mut template = ResponseTemplate::new(status).set_body_string(body);
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        template = template.insert_header("x-request-id", value);
    }
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(template)
        .mount(&server)
        .await;
    let client = client(provider, &server.uri());
    match client.revoke(&op, AttemptContext::default()).await {
        Ok(outcome) => format!("{} {:?}", outcome.message, outcome.request_id),
        Err(err) => format!("{} {:?} {:?}", err.message, err.error_code, err.request_id),
    }
}

fn check(provider: ProviderType, status: u16, body: String, request_id: String) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shown = runtime.block_on(answer(provider, status, body, request_id));
    // A client redacts what it holds and obtained (another provider's credential is not its own).
    let known: &[&str] = match provider {
        ProviderType::Atlas => &[ATLAS_SECRET, ISSUED],
        ProviderType::Infisical => &[INFISICAL_TOKEN],
        ProviderType::Onezone => &[ONEZONE_TOKEN],
    };
    for secret in known {
        for form in forms(secret) {
            prop_assert!(!shown.contains(&form), "{secret} shown as {form}: {shown}");
        }
    }
    prop_assert!(shown.chars().count() < 2000, "an answer of unbounded length: {shown}");
    Ok(())
}

fn statuses() -> impl Strategy<Value = u16> {
    prop_oneof![Just(200u16), Just(202), Just(204), 400u16..=429, 500u16..=504]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn atlas_answers_never_show_a_credential(status in statuses(), body in body(ProviderType::Atlas), id in text()) {
        check(ProviderType::Atlas, status, body, id)?;
    }

    #[test]
    fn infisical_answers_never_show_a_credential(status in statuses(), body in body(ProviderType::Infisical), id in text()) {
        check(ProviderType::Infisical, status, body, id)?;
    }

    #[test]
    fn onezone_answers_never_show_a_credential(status in statuses(), body in body(ProviderType::Onezone), id in text()) {
        check(ProviderType::Onezone, status, body, id)?;
    }
}
