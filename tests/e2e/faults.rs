//! Faults of the control plane during a batch of revocations.

use std::time::Duration;

use serde_json::json;

use crate::Env;
use crate::cases::{OZ_SELF_PATH, ensure, namespace_with_providers};
use crate::env::Result;

const BATCH: usize = 30;

/// kube-apiserver stops for a few seconds (etcd keeps its data) while provider calls are under
/// way: the operator reconnects and finishes the batch, and no revocation whose provider call was
/// answered is called again — the results it could not write are written after the restart.
pub async fn an_api_server_restart_mid_batch_calls_no_answered_revocation_again(env: &mut Env) -> Result<()> {
    let failed_writes = control_plane_fault_mid_batch(env, "apirestart", "restart-apiserver").await?;
    ensure(
        failed_writes,
        "no result write failed while the API server was down: the restart did not hit a call in flight",
    )
}

/// etcd freezes for a few seconds while provider calls are under way: kube-apiserver cannot store
/// anything meanwhile; the batch finishes and no answered call is repeated.
pub async fn an_etcd_outage_mid_batch_calls_no_answered_revocation_again(env: &mut Env) -> Result<()> {
    control_plane_fault_mid_batch(env, "etcdpause", "pause-etcd")
        .await
        .map(|_| ())
}

/// Start a batch of slow revocations, run `hack/control-plane.sh FAULT` (3 s down) while calls are
/// under way, and check that every revocation Succeeded with exactly one answered call. Returns
/// whether the operator logged a result write that failed (and was written later).
async fn control_plane_fault_mid_batch(env: &mut Env, name: &str, fault: &str) -> Result<bool> {
    let ns = namespace_with_providers(env, name)?;
    env.sim.clear_calls_and_faults().await?;
    // Slow calls, so that some are answered while the control plane is down.
    let slow = json!({"match": {"method": "DELETE", "path": OZ_SELF_PATH, "exact": true}, "kind": "latency", "latencyMs": 1500});
    env.sim.fault(slow).await?;
    let log_before = env.operator.as_ref().map(|p| p.log_text().len()).unwrap_or_default();
    env.apply(&ns, &batch(name, BATCH))?;
    crate::env::wait_for(Duration::from_secs(30), "calls under way", || {
        let phases = phases(env, &ns);
        async move {
            phases
                .ok()
                .filter(|p| p.iter().filter(|s| *s == "Running").count() >= 2)
        }
    })
    .await?;

    let cp_dir = env.cp.dir.clone();
    let fault_owned = fault.to_string();
    let done = tokio::task::spawn_blocking(move || {
        crate::env::sh(
            std::process::Command::new(format!("{}/hack/control-plane.sh", crate::env::ROOT))
                .env("REVOKER_CP_DOWN_SECONDS", "3")
                .arg(&fault_owned)
                .arg(&cp_dir),
        )
    })
    .await
    .map_err(|e| e.to_string())?;
    done.map_err(|e| format!("hack/control-plane.sh {fault}: {e}"))?;

    all_succeeded(env, &ns, BATCH, Duration::from_secs(90)).await?;
    let calls = env.sim.succeeded("DELETE", OZ_SELF_PATH).await?;
    ensure(
        calls == BATCH as u64,
        format!("{calls} answered revoking calls for {BATCH} revocations: an answered call was repeated"),
    )?;
    let log = env.operator.as_ref().map(|p| p.log_text()).unwrap_or_default();
    Ok(log
        .get(log_before..)
        .is_some_and(|new| new.contains("the provider answered but the result could not be written")))
}

/// Wait (bounded) until the namespace holds `n` TokenRevocations, all Succeeded.
pub(crate) async fn all_succeeded(env: &Env, ns: &str, n: usize, timeout: Duration) -> Result<()> {
    crate::env::wait_for(timeout, "every revocation Succeeded", || {
        let phases = phases(env, ns);
        async move {
            phases
                .ok()
                .filter(|p| p.len() == n && p.iter().all(|s| s == "Succeeded"))
        }
    })
    .await
    .map(|_| ())
}

pub(crate) fn phases(env: &Env, ns: &str) -> Result<Vec<String>> {
    Ok(token_revocations(env, ns)?
        .iter()
        .map(|o| o["status"]["phase"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// The namespace's TokenRevocations, as the API server has them.
pub(crate) fn token_revocations(env: &Env, ns: &str) -> Result<Vec<serde_json::Value>> {
    let list = env.get_json(ns, "tokenrevocations")?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// A provider answers one request with 429 and `Retry-After: 3`: every revocation of that provider
/// holds back (no request reaches the provider until the pause is over, none starts an attempt),
/// then the batch finishes with one answered call per revocation, and the metric shows the pause.
pub async fn a_429_pauses_every_revocation_of_the_provider(env: &mut Env) -> Result<()> {
    const N: usize = 20;
    let ns = namespace_with_providers(env, "ratelimited")?;
    env.sim.clear_calls_and_faults().await?;
    let target = json!({"method": "DELETE", "path": OZ_SELF_PATH, "exact": true});
    env.sim
        .fault(json!({"match": target, "kind": "latency", "latencyMs": 300}))
        .await?;
    env.sim
        .fault(json!({"match": target, "kind": "status", "status": 429, "retryAfter": 3, "times": 1}))
        .await?;
    env.apply(&ns, &batch("limited", N))?;
    all_succeeded(env, &ns, N, Duration::from_secs(60)).await?;
    let calls: Vec<(i64, u64)> = env
        .sim
        .calls()
        .await?
        .iter()
        .filter(|c| c["method"] == "DELETE" && c["path"] == OZ_SELF_PATH)
        .filter_map(|c| {
            let at = c["timestamp"].as_str()?.parse::<k8s_openapi::jiff::Timestamp>().ok()?;
            Some((at.as_millisecond(), c["status"].as_u64()?))
        })
        .collect();
    let limited = calls
        .iter()
        .find(|(_, status)| *status == 429)
        .ok_or("no 429 was answered")?
        .0;
    let answered = calls.iter().filter(|(_, s)| (200..300).contains(s)).count();
    ensure(
        answered == N,
        format!("{answered} answered calls for {N} revocations: {calls:?}"),
    )?;
    // Answered 300 ms after it arrived, the 429 pauses the provider for 3 s: nothing arrives from
    // then on until the pause is over (calls already under way arrived before).
    let during_pause: Vec<i64> = calls
        .iter()
        .map(|(at, _)| at - limited)
        .filter(|d| (400..3200).contains(d))
        .collect();
    ensure(
        during_pause.is_empty(),
        format!("calls arrived during the provider's pause (ms after the 429): {during_pause:?}"),
    )?;
    let metrics = env
        .sim_http_get(&format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .await?;
    ensure(
        metrics
            .lines()
            .any(|l| l.starts_with("revoker_provider_pauses_total{provider=\"onezone\"}") && !l.ends_with(" 0")),
        "revoker_provider_pauses_total{provider=\"onezone\"} did not count the pause",
    )?;
    Ok(())
}

fn batch(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: {prefix}-{i}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: CurrentUserTemporaryTokens}}\n---\n"
            )
        })
        .collect()
}

/// The controller is SIGKILLed three times while a batch of 200 runs, and restarted each time:
/// every revocation Succeeds, and a revocation whose provider was called more than once shows it
/// in `status.attempts` (the call was in flight at a kill); no more repeats than calls in flight.
pub async fn sigkill_during_a_batch_repeats_only_calls_that_were_in_flight(env: &mut Env) -> Result<()> {
    const N: usize = 200;
    const KILLS: usize = 3;
    let ns = namespace_with_providers(env, "sigkill")?;
    env.sim.clear_calls_and_faults().await?;
    crate::batch::slow_named_tokens(env, 150).await?;
    let (members, yaml) = crate::batch::named_batch(env, 0x6b111, "k", N, |_| String::new()).await?;
    env.apply(&ns, &yaml)?;
    for kill in 0..KILLS {
        // Kill once a few more revocations have finished, so that each kill hits calls in flight.
        let target = (kill + 1) * N / (KILLS + 2);
        succeeded_at_least(env, &ns, target).await?;
        env.operator.take().ok_or("no operator")?.kill();
        env.start_operator()?;
    }
    all_succeeded(env, &ns, N, Duration::from_secs(120)).await?;
    let check = crate::batch::check_calls(env, &ns, &members).await?;
    ensure(
        check.never_called.is_empty(),
        format!("never called: {:?}", check.never_called),
    )?;
    let unexplained = check.unexplained();
    ensure(
        unexplained.is_empty(),
        format!("called more often than status.attempts shows (name, calls, attempts): {unexplained:?}"),
    )?;
    // In flight at a kill: at most one reconcile per worker of the TokenRevocation controller.
    let repeats: u64 = check.repeated.iter().map(|(_, calls, _)| calls - 1).sum();
    ensure(
        repeats <= (KILLS * 4) as u64,
        format!("{repeats} repeated calls after {KILLS} kills: more than were in flight"),
    )?;
    eprintln!("e2e: {KILLS} SIGKILLs during {N} revocations: {repeats} repeated calls, each visible in attempts");
    Ok(())
}

/// Two replicas run a batch; the leader is stopped (SIGTERM, as a rolling update does) mid-batch:
/// it finishes its calls in flight and releases the Lease, the standby takes over, and nothing is
/// executed twice. Then the new leader crashes (SIGKILL) and a new replica with a new identity
/// takes over within the Lease duration of its start.
pub async fn a_leader_hand_over_during_a_batch_executes_nothing_twice(env: &mut Env) -> Result<()> {
    const N: usize = 60;
    let ns = namespace_with_providers(env, "handover")?;
    env.sim.clear_calls_and_faults().await?;
    crate::batch::slow_named_tokens(env, 200).await?;
    let mut standby = Some(env.spawn_operator("operator-b", crate::env::free_port()?)?);
    let (members, yaml) = crate::batch::named_batch(env, 0x4a4d, "h", N, |_| String::new()).await?;
    env.apply(&ns, &yaml)?;
    succeeded_at_least(env, &ns, N / 4).await?;
    let leader = env.operator.take().ok_or("no operator")?;
    let graceful = tokio::task::spawn_blocking(move || {
        let mut leader = leader;
        leader.terminate()
    })
    .await
    .map_err(|e| e.to_string())?;
    ensure(graceful, "the leader shut down gracefully")?;
    all_succeeded(env, &ns, N, Duration::from_secs(60)).await?;
    let check = crate::batch::check_calls(env, &ns, &members).await?;
    ensure(
        check.never_called.is_empty() && check.repeated.is_empty(),
        format!(
            "a graceful hand-over executes each revocation once: never called {:?}, more than once {:?}",
            check.never_called, check.repeated
        ),
    )?;
    ensure(
        standby
            .as_ref()
            .is_some_and(|p| p.log_text().contains("became the leader")),
        "the standby took over",
    )?;

    // The new leader crashes; a replica with a new identity starts at once and takes over when the
    // dead leader's Lease lapses (6 s in these tests), plus its retry period (2 s).
    let (members, yaml) = crate::batch::named_batch(env, 0x4a4e, "c", N, |_| String::new()).await?;
    env.apply(&ns, &yaml)?;
    succeeded_at_least(env, &ns, N + N / 4).await?;
    if let Some(mut crashed) = standby.take() {
        crashed.kill();
    }
    let started = std::time::Instant::now();
    let mut fresh = env.spawn_operator("operator-c", crate::env::free_port()?)?;
    crate::env::wait_for(Duration::from_secs(30), "the new replica to lead", || {
        let led = fresh.log_text().contains("became the leader");
        async move { led.then_some(()) }
    })
    .await?;
    let took = started.elapsed();
    ensure(
        took <= Duration::from_secs(6 + 2 + 1),
        format!("the new identity took {took:?} to take over a 6 s Lease"),
    )?;
    all_succeeded(env, &ns, 2 * N, Duration::from_secs(60)).await?;
    let check = crate::batch::check_calls(env, &ns, &members).await?;
    let unexplained = check.unexplained();
    ensure(
        check.never_called.is_empty() && unexplained.is_empty(),
        format!(
            "after the crash: never called {:?}, repeats not in attempts {unexplained:?}",
            check.never_called
        ),
    )?;
    eprintln!(
        "e2e: new identity took over {:.1}s after its start; {} calls repeated after the crash",
        took.as_secs_f64(),
        check.repeated.len()
    );
    fresh.terminate();
    env.start_operator()?;
    Ok(())
}

async fn succeeded_at_least(env: &Env, ns: &str, n: usize) -> Result<()> {
    crate::env::wait_for(Duration::from_secs(60), "part of the batch to succeed", || {
        let phases = phases(env, ns);
        async move {
            phases
                .ok()
                .filter(|p| p.iter().filter(|s| *s == "Succeeded").count() >= n)
        }
    })
    .await
    .map(|_| ())
}

/// The provider misbehaves in every way at once while a batch of 40 runs: dropped connections,
/// a 503 burst, a 429 storm with Retry-After, and answers that stall past the request timeout
/// (2 s here). Every revocation Succeeds; every extra call is a recorded attempt; every extra
/// attempt is a retry the metrics count by reason, and retries keep the documented delay (at
/// least 2 s after the failed attempt); the 429s pause the provider.
pub async fn provider_faults_at_batch_scale_end_in_documented_retries(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "flaky")?;
    env.sim.clear_calls_and_faults().await?;
    let graceful = env.operator.take().is_none_or(|mut p| p.terminate());
    let port = crate::env::free_port()?;
    let mut cmd = env.operator_command("operator-timeout", port, "info,revoker=debug");
    cmd.args(["--request-timeout", "2"]);
    let operator = crate::env::Proc::spawn(cmd, env.work.join("operator-timeout.log"))?;
    let result = match graceful {
        true => flaky_batch(env, &ns, port).await,
        false => Err("the operator did not shut down gracefully".into()),
    };
    drop(operator);
    env.start_operator()?;
    result
}

async fn flaky_batch(env: &Env, ns: &str, metrics_port: u16) -> Result<()> {
    const N: usize = 40;
    let named = json!({"method": "PATCH", "path": crate::batch::NAMED_PREFIX});
    for fault in [
        json!({"match": named, "kind": "reset", "times": 4}),
        json!({"match": named, "kind": "status", "status": 503, "times": 4}),
        json!({"match": named, "kind": "status", "status": 429, "retryAfter": 2, "times": 3}),
        json!({"match": named, "kind": "latency", "latencyMs": 2500, "times": 2}),
    ] {
        env.sim.fault(fault).await?;
    }
    let (members, yaml) = crate::batch::named_batch(env, 0xf1a4, "f", N, |_| String::new()).await?;
    env.apply(ns, &yaml)?;
    all_succeeded(env, ns, N, Duration::from_secs(100)).await?;
    let check = crate::batch::check_calls(env, ns, &members).await?;
    let unexplained = check.unexplained();
    ensure(
        check.never_called.is_empty() && unexplained.is_empty(),
        format!(
            "never called {:?}; calls not in attempts {unexplained:?}",
            check.never_called
        ),
    )?;
    let list = env.get_json(ns, "tokenrevocations")?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut extra_attempts = 0;
    for o in &items {
        let attempts = o["status"]["attempts"].as_i64().unwrap_or_default();
        extra_attempts += attempts - 1;
        let at = |field: &str| {
            o["status"][field]
                .as_str()
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .map(|t| t.as_second())
        };
        if let (Some(start), Some(last)) = (at("startTime"), at("lastAttemptTime")) {
            // Whole seconds in status: one second of rounding per retry.
            ensure(
                last - start >= (attempts - 1),
                format!(
                    "{}: {attempts} attempts within {}s",
                    o["metadata"]["name"],
                    last - start
                ),
            )?;
        }
    }
    ensure(extra_attempts > 0, "no fault hit a revocation")?;
    let metrics = env
        .sim_http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?;
    let retries = |reason: &str| -> u64 {
        let prefix =
            format!("revoker_retries_total{{kind=\"TokenRevocation\",provider=\"onezone\",reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    let by_reason: Vec<(&str, u64)> = ["NetworkError", "ProviderUnavailable", "RateLimited", "Timeout"]
        .into_iter()
        .map(|r| (r, retries(r)))
        .collect();
    ensure(
        by_reason.iter().all(|(_, n)| *n > 0),
        format!("every kind of fault shows as retries by reason: {by_reason:?}"),
    )?;
    let total: u64 = by_reason.iter().map(|(_, n)| n).sum();
    ensure(
        total == extra_attempts as u64,
        format!("{extra_attempts} extra attempts in status, {total} retries in the metrics ({by_reason:?})"),
    )?;
    ensure(
        metrics
            .lines()
            .any(|l| l.starts_with("revoker_provider_pauses_total{provider=\"onezone\"}") && !l.ends_with(" 0")),
        "the 429s paused the provider",
    )?;
    eprintln!("e2e: faults at batch scale: {extra_attempts} retries {by_reason:?}");
    Ok(())
}
