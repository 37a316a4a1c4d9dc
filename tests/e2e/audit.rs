//! The audit trail of a real run: the operator writes every state change to `--audit-log` and
//! delivers it to a webhook that is down at first; `revoker audit verify` accepts the stream and
//! refuses it altered or cut short; the webhook got every record (signed, by idempotent id).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::Env;
use crate::cases::{JWKS_PATH, WAIT, ensure, jwks, namespace_with_providers};
use crate::env::{Proc, Result, free_port, wait_for};

const SECRET: &str = "audit-hmac-key-for-the-e2e";
/// Requests the webhook refuses before it comes back (its outage).
const OUTAGE: u64 = 4;

fn verify(path: &std::path::Path) -> Result<(bool, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_revoker"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

pub async fn the_audit_trail_verifies_and_reaches_the_webhook_once_per_record(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "audit")?;
    env.sim.clear_calls_and_faults().await?;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(OUTAGE)
        .with_priority(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(2)
        .mount(&hook)
        .await;
    let secret_file = env.work.join("audit-webhook-key");
    std::fs::write(&secret_file, format!("{SECRET}\n")).map_err(|e| e.to_string())?;
    let audit_log = env.work.join("audit.jsonl");
    if let Some(mut op) = env.operator.take() {
        op.terminate();
    }
    let mut cmd = env.operator_command("audited", free_port()?, "info");
    cmd.arg(format!("--audit-log={}", audit_log.display()))
        .arg(format!("--audit-webhook-url={}/audit", hook.uri()))
        .arg(format!("--audit-webhook-secret-file={}", secret_file.display()));
    env.operator = Some(Proc::spawn(cmd, env.work.join("audited.log"))?);

    env.apply(&ns, &jwks("revoked", ""))?;
    env.apply(
        &ns,
        &jwks("wrong-idp", "").replace("32b6e34b3d91647abb20e7b8", "32b6e34b3d91647abb20e7ff"),
    )?;
    env.apply(&ns, &jwks("short-lived", "  ttlSecondsAfterFinished: 0\n"))?;
    env.wait_phase(&ns, "jwksrevocation/revoked", "Succeeded", WAIT).await?;
    env.wait_phase(&ns, "jwksrevocation/wrong-idp", "Failed", WAIT).await?;
    wait_for(WAIT, "short-lived to be deleted after its TTL", || {
        let gone = env.get_json(&ns, "jwksrevocation/short-lived").is_err();
        async move { gone.then_some(()) }
    })
    .await?;
    ensure(
        env.sim.count("DELETE", JWKS_PATH).await? >= 2,
        "the revocations called Atlas",
    )?;

    // Every record of the file, by the (name, event) it tells.
    let read = || -> Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(&audit_log).map_err(|e| e.to_string())?;
        text.lines()
            .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
            .collect()
    };
    let wanted = [
        ("revoked", "created"),
        ("revoked", "attempted"),
        ("revoked", "succeeded"),
        ("wrong-idp", "failed"),
        ("short-lived", "succeeded"),
        ("short-lived", "expired"),
    ];
    let records = wait_for(Duration::from_secs(20), "the audit records", || {
        let records = read().ok().filter(|records| {
            wanted.iter().all(|(name, event)| {
                records
                    .iter()
                    .any(|r| r["namespace"] == ns.as_str() && r["name"] == *name && r["event"] == *event)
            })
        });
        async move { records }
    })
    .await?;
    let text = serde_json::to_string(&records).unwrap_or_default();
    for secret in ["sim-private-key", "sim-client-secret", SECRET] {
        ensure(
            !text.contains(secret),
            format!("an audit record holds the secret {secret}"),
        )?;
    }

    // The webhook: down for its first OUTAGE requests, then every record arrives, signed.
    let ids: BTreeSet<String> = records
        .iter()
        .map(|r| format!("{}#{}", r["chain"].as_str().unwrap_or_default(), r["seq"]))
        .collect();
    let received = wait_for(Duration::from_secs(60), "the webhook to receive every record", || {
        let hook = &hook;
        let ids = &ids;
        async move {
            let requests = hook.received_requests().await?;
            let accepted: BTreeSet<String> = requests
                .iter()
                .skip(OUTAGE as usize)
                .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .filter_map(|e| e["id"].as_str().map(String::from))
                .collect();
            ids.is_subset(&accepted).then_some(requests)
        }
    })
    .await?;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for request in &received {
        let signature = request
            .headers
            .get(revoker::audit::webhook::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let expected = revoker::audit::webhook::signature(&secrecy::SecretString::from(SECRET), &request.body);
        ensure(
            signature == expected,
            format!("a webhook request is not signed with the key: {signature:?}"),
        )?;
        let event: serde_json::Value = serde_json::from_slice(&request.body).map_err(|e| e.to_string())?;
        ensure(
            event["specversion"] == "1.0"
                && event["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("dev.revoker.revocation.")),
            format!("not a Revoker CloudEvent: {event}"),
        )?;
        *per_id
            .entry(event["id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let accepted_once = received.len() as u64 - OUTAGE;
    let duplicates = accepted_once.saturating_sub(per_id.len() as u64);
    eprintln!(
        "e2e: audit webhook: {} records, {} requests ({OUTAGE} refused during the outage), {duplicates} duplicate deliveries after it",
        ids.len(),
        received.len()
    );
    ensure(
        per_id.values().filter(|n| **n > 1).count() <= OUTAGE as usize,
        "only records refused during the outage were sent again",
    )?;

    // The stream verifies; altered or cut short, it does not.
    if let Some(mut op) = env.operator.take() {
        op.terminate();
    }
    env.start_operator()?;
    let (ok, out) = verify(&audit_log)?;
    ensure(ok && out.contains("verified"), format!("revoker audit verify: {out}"))?;
    let text = std::fs::read_to_string(&audit_log).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    let altered = env.work.join("audit-altered.jsonl");
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    changed[1] = changed[1].replacen("\"attempts\":", "\"attempts\":1", 1);
    std::fs::write(&altered, changed.join("\n")).map_err(|e| e.to_string())?;
    let (ok, out) = verify(&altered)?;
    ensure(
        !ok && out.contains("line 2"),
        format!("an altered record is found: {out}"),
    )?;
    let removed = env.work.join("audit-removed.jsonl");
    let mut fewer: Vec<&str> = lines.clone();
    fewer.remove(lines.len() / 2);
    std::fs::write(&removed, fewer.join("\n")).map_err(|e| e.to_string())?;
    let (ok, out) = verify(&removed)?;
    ensure(
        !ok && out.contains("missing"),
        format!("a removed record is found: {out}"),
    )?;
    let cut = env.work.join("audit-cut.jsonl");
    std::fs::write(&cut, &text[..text.len() - 40]).map_err(|e| e.to_string())?;
    let (ok, out) = verify(&cut)?;
    ensure(
        !ok && out.contains("cut short"),
        format!("a stream cut short is found: {out}"),
    )?;
    Ok(())
}
