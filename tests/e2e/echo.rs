//! A compromised provider that echoes everything it receives (headers, bodies, into its error
//! messages and request ids), for every operation and every auth method, with the operator at the
//! most verbose log level: no credential, in any encoding, appears in the operator log, the Events,
//! any object or `/metrics`.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::Env;
use crate::cases::{ensure, example, providers};
use crate::env::{Result, free_port, sh};

/// Every credential of the example providers and every token to revoke.
const SECRETS: [&str; 6] = [
    "sim-private-key",
    "mdb_sa_sk_sim",
    "sim-client-secret",
    "sim-onezone-admin-token",
    "sim-token-to-revoke",
    "sim-token-auth-token-to-revoke",
];

/// Each form a secret may take on the wire or in an echo.
fn encodings(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string(), hex::encode(secret)];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(secret.replace('-', "%2D").replace('_', "%5F"));
    for user in ["sim-public-key", "mdb_sa_id_sim", "sim-client-id"] {
        forms.push(STANDARD.encode(format!("{user}:{secret}")));
    }
    forms
}

fn echo_fault(method: Option<&str>, path: &str, status: u16) -> Value {
    let mut spec = json!({"match": {"path": path}, "kind": "status", "status": status, "echo": true});
    if let Some(m) = method {
        spec["match"]["method"] = json!(m);
    }
    spec
}

pub async fn an_echoing_provider_learns_nothing_it_can_show(env: &mut Env) -> Result<()> {
    // The operator at the most verbose level for this test.
    if let Some(mut op) = env.operator.take() {
        op.kill();
    }
    let trace_port = free_port()?;
    let mut traced = env.spawn_operator_logging("operator-trace", trace_port, "trace")?;
    let result = run(env, trace_port).await;
    traced.kill();
    env.start_operator()?;
    result
}

async fn run(env: &mut Env, metrics_port: u16) -> Result<()> {
    // Phase 1: the credential checks pass, every revoking call gets an echoing 400.
    for (method, path) in [
        ("DELETE", "/api/atlas/v2/federationSettings*"),
        ("DELETE", "/api/atlas/v2/groups*"),
        ("DELETE", "/api/v1/auth/*"),
        ("POST", "/api/v1/auth/token/revoke"),
        ("POST", "/api/v1/auth/universal-auth/identities*"),
        ("DELETE", "/api/v3/onezone/*"),
        ("PATCH", "/api/v3/onezone/*"),
    ] {
        env.sim.fault(echo_fault(Some(method), path, 400)).await?;
    }
    let calls = crate::cases::namespace_with_providers(env, "echo-calls")?;
    let mut names = vec![];
    for file in std::fs::read_dir(format!("{}/examples/revocations", crate::env::ROOT)).map_err(|e| e.to_string())? {
        let path = file.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let manifest = example(&format!("revocations/{name}"))?;
        env.apply(&calls, &manifest)?;
        names.push(name);
    }
    let finished = crate::env::wait_for(Duration::from_secs(90), "every revocation to finish", || {
        let listed = sh(env.kubectl().args(["get", "revocations", "-n", &calls, "-o", "json"])).ok();
        let count = names.len();
        async move {
            let listed: Value = serde_json::from_str(&listed?).ok()?;
            let items = listed["items"].as_array()?.clone();
            let done = items
                .iter()
                .filter(|i| i["status"]["phase"] == "Failed" || i["status"]["phase"] == "Succeeded")
                .count();
            (done == count).then_some(items)
        }
    })
    .await?;
    ensure(
        finished.iter().any(|i| i["status"]["phase"] == "Failed"),
        "the echoing provider made no revocation fail: the test would prove nothing",
    )?;

    let state = env.sim.state().await?.to_string();
    // Bearer tokens the simulator issued to the operator (OAuth, universal-auth login).
    let issued: Vec<String> = state
        .split('"')
        .filter(|s| {
            s.len() >= 20
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        })
        .filter(|s| s.starts_with("sim-atlas-sa-") || s.starts_with("sim-infisical-at-"))
        .map(str::to_string)
        .collect();
    ensure(
        issued.len() >= 2,
        format!("expected issued bearer tokens, found {}", issued.len()),
    )?;

    // Phase 2: the logins and credential checks echo too: providers go Ready=False with that text.
    env.sim.reset().await?;
    for path in [
        "/api/oauth/token",
        "/api/v1/auth/universal-auth/login",
        "/api/atlas/v2/orgs",
        "/api/v3/onezone/user",
    ] {
        env.sim.fault(echo_fault(None, path, 401)).await?;
    }
    let checks = env.namespace("echo-checks")?;
    env.apply(&checks, &providers(env)?)?;
    crate::env::wait_for(Duration::from_secs(60), "providers to fail their check", || {
        let listed = sh(env
            .kubectl()
            .args(["get", "revocationproviders", "-n", &checks, "-o", "json"]))
        .ok();
        async move {
            let listed: Value = serde_json::from_str(&listed?).ok()?;
            let items = listed["items"].as_array()?.clone();
            let failed = items
                .iter()
                .filter(|i| {
                    i["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "False"))
                })
                .count();
            (failed >= 3).then_some(())
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Every output a log reader, a kubectl user or a scraper sees.
    let mut outputs = vec![(
        "operator log",
        std::fs::read_to_string(env.work.join("operator-trace.log")).unwrap_or_default(),
    )];
    for ns in [&calls, &checks] {
        for what in ["events", "revocations", "revocationproviders"] {
            outputs.push((what, sh(env.kubectl().args(["get", what, "-n", ns, "-o", "yaml"]))?));
        }
    }
    outputs.push((
        "/metrics",
        env.sim_http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await?,
    ));
    ensure(
        outputs[0].1.contains("[echo: ") || outputs[0].1.len() > 10_000,
        "the trace log is there",
    )?;
    let echoed = outputs.iter().any(|(_, text)| text.contains("[echo"));
    ensure(
        echoed,
        "no echoed text reached any output: the provider's text was not shown at all",
    )?;
    for secret in SECRETS {
        for form in encodings(secret) {
            for (what, text) in &outputs {
                ensure(!text.contains(&form), format!("{what} contains {secret:?} as {form:?}"))?;
            }
        }
    }
    for token in &issued {
        for (what, text) in &outputs {
            ensure(
                !text.contains(token.as_str()),
                format!("{what} contains an issued bearer token"),
            )?;
        }
    }
    eprintln!(
        "e2e: echo: {} outputs, {} bytes searched for {} secrets in {} forms each, {} issued tokens",
        outputs.len(),
        outputs.iter().map(|(_, t)| t.len()).sum::<usize>(),
        SECRETS.len(),
        encodings("x").len(),
        issued.len()
    );
    Ok(())
}
