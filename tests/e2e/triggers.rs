//! Triggered revocations (`spec.trigger`): a rotation by the real External Secrets Operator runs
//! one revocation per replaced value, and a schedule runs at its times. Both start from the
//! README's examples (examples/rotation/), with the poll and debounce shortened for the test.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Env;
use crate::cases::{condition, ensure, example, namespace_with_providers};
use crate::env::{Result, wait_for};
use crate::eso::{rotation_store, start_eso};

const IDENTITY: &str = "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const PARENT: &str = "tokenrevocation/ci-bot-previous-client-secret";
const SECRET: &str = "ci-bot-rotation";

/// Client secret ids: what `previous` and `current` hold after each rotation.
fn previous(i: usize) -> String {
    format!("0a1b2c3d-4e5f-4a6b-8c7d-{i:012x}")
}
fn current(i: usize) -> String {
    format!("5f6e7d8c-9b0a-4c1d-8e2f-{i:012x}")
}

fn revoke_path(client_secret: &str) -> String {
    format!("/api/v1/auth/universal-auth/identities/{IDENTITY}/client-secrets/{client_secret}/revoke")
}

/// Give the simulator's identity every client secret id the rotations use.
async fn seed_client_secrets(env: &Env, n: usize) -> Result<()> {
    let state = env.sim.state().await?;
    let mut identity = state["infisical"]["identities"]
        .as_array()
        .and_then(|ids| ids.iter().find(|i| i["id"] == IDENTITY).cloned())
        .ok_or("the simulator has the identity")?;
    let secrets = identity["clientSecrets"].as_array_mut().ok_or("client secrets")?;
    for i in 0..n {
        secrets.push(json!({"id": previous(i)}));
        secrets.push(json!({"id": current(i)}));
    }
    env.sim
        .merge_state(json!({"infisical": {"identities": [identity]}}))
        .await
}

/// ESO writes rotation `i` into the Secret; wait until it holds it.
async fn rotate(env: &Env, ns: &str, i: usize) -> Result<()> {
    env.apply(ns, &rotation_store(SECRET, &current(i), &previous(i)))?;
    let want = base64(&previous(i));
    wait_for(Duration::from_secs(30), &format!("ESO to write rotation {i}"), || {
        let secret = env.get_json(ns, &format!("secret/{SECRET}")).ok();
        let want = want.clone();
        async move { secret.filter(|s| s["data"]["previous"] == want.as_str()) }
    })
    .await
    .map(|_| ())
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn calls_for(env: &Env, i: usize) -> Result<(u64, u64)> {
    Ok((
        env.sim.count("POST", &revoke_path(&previous(i))).await?,
        env.sim.count("POST", &revoke_path(&current(i))).await?,
    ))
}

/// Wait until the previous client secret of rotation `i` was revoked (one call), and check that
/// the current one never was.
async fn revoked_once(env: &Env, i: usize) -> Result<()> {
    wait_for(
        Duration::from_secs(30),
        &format!("the run for rotation {i}"),
        || async move { calls_for(env, i).await.ok().filter(|(old, _)| *old > 0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (old, new) = calls_for(env, i).await?;
    ensure(
        old == 1 && new == 0,
        format!("rotation {i}: the replaced client secret was revoked {old} times, the current one {new} times"),
    )
}

fn run_count(parent: &Value) -> usize {
    parent["status"]["runs"].as_array().map_or(0, Vec::len)
}

async fn events(env: &Env, ns: &str, reason: &str) -> Result<usize> {
    let list = env.get_json(ns, "events.events.k8s.io")?;
    Ok(list["items"]
        .as_array()
        .map_or(0, |items| items.iter().filter(|e| e["reason"] == reason).count()))
}

/// The rotation flow: armed without revoking what the key held at first; each rotation revokes
/// its replaced client secret exactly once and the current one never; two rapid rotations give two
/// runs, none lost; a value seen again is not revoked again; a change made while the operator is
/// down runs once after it restarts; the history limit keeps the newest runs and their objects.
pub async fn a_rotation_by_external_secrets_runs_one_revocation_per_replaced_value(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "trigger")?;
    env.sim.clear_calls_and_faults().await?;
    seed_client_secrets(env, 6).await?;
    let _eso = start_eso(env, &ns)?;
    rotate(env, &ns, 0).await?;
    let manifest = example("rotation/infisical-client-secret-rotation.yaml")?
        .replace("pollSeconds: 10", "pollSeconds: 1")
        .replace("debounceSeconds: 10", "debounceSeconds: 2")
        .replace("successfulRunsHistoryLimit: 3", "successfulRunsHistoryLimit: 2");
    env.apply(&ns, &manifest)?;
    let armed = wait_for(Duration::from_secs(30), "the trigger to be armed", || {
        let obj = env.get_json(&ns, PARENT).ok();
        async move { obj.filter(|o| o["status"]["trigger"]["observedFingerprint"].is_string()) }
    })
    .await?;
    ensure(
        condition(&armed, "Ready").is_some_and(|c| c["status"] == "True" && c["reason"] == "AwaitingTrigger"),
        format!("armed and Ready before the first run: {}", armed["status"]),
    )?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure(
        calls_for(env, 0).await? == (0, 0),
        "the value found at first sight is not revoked",
    )?;

    rotate(env, &ns, 1).await?;
    revoked_once(env, 1).await?;
    let first = env
        .wait_phase(&ns, PARENT, "Succeeded", Duration::from_secs(30))
        .await?;
    ensure(
        first["status"]["lastRun"]["trigger"] == "OnChange" && first["status"]["lastRun"]["reason"] == "Revoked",
        format!("lastRun describes the run: {}", first["status"]["lastRun"]),
    )?;

    // Two rapid rotations: the second arrives while the first one's run is under way or debounced.
    rotate(env, &ns, 2).await?;
    wait_for(Duration::from_secs(30), "the run for rotation 2 to start", || {
        let obj = env.get_json(&ns, PARENT).ok();
        async move { obj.filter(|o| run_count(o) >= 2) }
    })
    .await?;
    rotate(env, &ns, 3).await?;
    revoked_once(env, 2).await?;
    revoked_once(env, 3).await?;
    let started = events(env, &ns, "OnChange").await?;
    ensure(
        started == 3,
        format!("3 runs started for 3 rotations, saw {started} OnChange Events"),
    )?;

    // A value seen before (rotation 1's) is not revoked again.
    rotate(env, &ns, 1).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = calls_for(env, 1).await?;
    ensure(
        again == (1, 0),
        format!("a value seen again is not revoked again: {again:?} calls"),
    )?;
    wait_for(Duration::from_secs(20), "an AlreadyHandled Event", || async {
        events(env, &ns, "AlreadyHandled").await.ok().filter(|n| *n > 0)
    })
    .await?;

    // A rotation while the operator is down runs once after it is back.
    env.operator.take().ok_or("no operator")?.kill();
    rotate(env, &ns, 4).await?;
    env.start_operator()?;
    revoked_once(env, 4).await?;
    let after = env
        .wait_phase(&ns, PARENT, "Succeeded", Duration::from_secs(30))
        .await?;
    let runs = env.get_json(&ns, "tokenrevocations")?;
    let run_objects = runs["items"].as_array().map_or(0, |items| {
        items.iter().filter(|o| o["spec"]["trigger"].is_null()).count()
    });
    ensure(
        run_count(&after) == 2 && run_objects == 2,
        format!(
            "successfulRunsHistoryLimit 2 keeps 2 runs and 2 run objects: {} runs, {run_objects} objects",
            run_count(&after)
        ),
    )?;
    for i in 0..=4 {
        ensure(
            calls_for(env, i).await?.1 == 0,
            format!("current client secret {i} never revoked"),
        )?;
    }
    let metrics = env
        .sim_http_get(&format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .await?;
    let succeeded =
        "revoker_triggered_runs_total{kind=\"TokenRevocation\",trigger=\"OnChange\",result=\"succeeded\"} 1";
    ensure(
        metrics.contains(succeeded),
        format!("the restarted operator counted its one run: {succeeded}"),
    )?;
    Ok(())
}

/// A schedule: the README's nightly example is armed for 02:00 Berlin time; the same revocation
/// every minute runs at the minute, once per scheduled time, named after it.
pub async fn a_schedule_runs_at_its_times(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "schedule")?;
    env.sim.clear_calls_and_faults().await?;
    let nightly = example("rotation/onezone-nightly-temporary-tokens.yaml")?;
    env.apply(&ns, &nightly)?;
    let every_minute = nightly
        .replace("name: nightly-temporary-tokens", "name: every-minute")
        .replace("cron: \"0 2 * * *\"", "cron: \"* * * * *\"");
    env.apply(&ns, &every_minute)?;
    let armed = wait_for(Duration::from_secs(30), "the nightly schedule to be armed", || {
        let obj = env.get_json(&ns, "tokenrevocation/nightly-temporary-tokens").ok();
        async move { obj.filter(|o| o["status"]["trigger"]["nextScheduleTime"].is_string()) }
    })
    .await?;
    let next = armed["status"]["trigger"]["nextScheduleTime"]
        .as_str()
        .unwrap_or_default();
    // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
    ensure(
        next.ends_with("T01:00:00Z") || next.ends_with("T00:00:00Z"),
        format!("the nightly run is scheduled for 02:00 Berlin time: {next}"),
    )?;
    let ran = env
        .wait_phase(
            &ns,
            "tokenrevocation/every-minute",
            "Succeeded",
            Duration::from_secs(80),
        )
        .await?;
    let run = &ran["status"]["lastRun"];
    let scheduled = run["scheduledTime"].as_str().unwrap_or_default();
    ensure(
        run["trigger"] == "Schedule" && scheduled.ends_with(":00Z"),
        format!("the run is for a whole minute: {run}"),
    )?;
    let minutes = scheduled
        .parse::<jiff::Timestamp>()
        .map_err(|e| e.to_string())?
        .as_second()
        / 60;
    ensure(
        run["id"] == format!("s-{minutes}").as_str() && run["revocation"] == format!("every-minute-{minutes}").as_str(),
        format!("the run is named after its minute: {run}"),
    )?;
    let path = "/api/v3/onezone/users/9a8b7c6d5e4f30211203f4e5d6c7b8a9/tokens/temporary";
    let calls = env.sim.count("DELETE", path).await?;
    ensure(calls == 1, format!("one scheduled run, one call: {calls}"))?;
    let nightly_now = env.get_json(&ns, "tokenrevocation/nightly-temporary-tokens")?;
    ensure(run_count(&nightly_now) == 0, "the nightly revocation has not run")?;
    Ok(())
}

/// A rotation script that writes a ConfigMap (as a CronJob would) while the triggered revocation
/// is suspended: nothing is revoked, the change stays queued; `kubectl revoker approve` lets it
/// run, once, for the named token the key held; `kubectl revoker status` shows the trigger and
/// the run.
pub async fn a_suspended_trigger_keeps_a_change_and_runs_it_once_approved(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "suspended-trigger")?;
    env.sim.clear_calls_and_faults().await?;
    let tokens = ["7a7a0000000000000000000000000001", "7a7a0000000000000000000000000002"];
    let named: Vec<Value> = tokens
        .iter()
        .map(|id| json!({"id": id, "name": id, "userId": "9a8b7c6d5e4f30211203f4e5d6c7b8a9"}))
        .collect();
    env.sim.merge_state(json!({"onezone": {"namedTokens": named}})).await?;
    let write_previous = |token: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: oz-rotation}}\ndata: {{previous: \"{token}\"}}\n")
    };
    env.apply(&ns, &write_previous(tokens[0]))?;
    env.apply(
        &ns,
        "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {name: oz-previous}\nspec:\n  providerRef: {name: onezone}\n  suspend: true\n  onezone:\n    scope: NamedToken\n    tokenIdFrom: {configMapKeyRef: {name: oz-rotation, key: previous}}\n  trigger:\n    onChange: {configMapRef: {name: oz-rotation}, key: previous, pollSeconds: 1, debounceSeconds: 0}\n",
    )?;
    let what = "tokenrevocation/oz-previous";
    wait_for(Duration::from_secs(30), "the suspended trigger to be seen", || {
        let obj = env.get_json(&ns, what).ok();
        async move { obj.filter(|o| condition(o, "Reconciling").is_some_and(|c| c["reason"] == "Suspended")) }
    })
    .await?;
    env.apply(&ns, &write_previous(tokens[1]))?;
    let queued = wait_for(Duration::from_secs(30), "the change to be queued", || {
        let obj = env.get_json(&ns, what).ok();
        async move { obj.filter(|o| o["status"]["trigger"]["pending"]["fingerprint"].is_string()) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let path = |i: usize| format!("/api/v3/onezone/tokens/named/{}", tokens[i]);
    let before = env.sim.count("PATCH", &path(1)).await?;
    ensure(
        before == 0 && run_count(&queued) == 0,
        format!("suspended: no run, no call ({before} calls)"),
    )?;
    let (ok, out) = crate::plugin::kubectl_revoker(env, &["approve", "oz-previous", "-n", &ns])?;
    ensure(ok, format!("kubectl revoker approve: {out}"))?;
    env.wait_phase(&ns, what, "Succeeded", Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (first, second) = (
        env.sim.count("PATCH", &path(0)).await?,
        env.sim.count("PATCH", &path(1)).await?,
    );
    ensure(
        first == 0 && second == 1,
        format!(
            "the queued change ran once for the token it named: {first} calls for the first value, {second} for the second"
        ),
    )?;
    let (ok, out) = crate::plugin::kubectl_revoker(env, &["status", "oz-previous", "-n", &ns])?;
    ensure(
        ok && out.contains("on change of ConfigMap oz-rotation key previous")
            && out.contains("1 kept")
            && out.contains("OnChange Succeeded (Revoked)"),
        format!("kubectl revoker status shows the trigger and the run:\n{out}"),
    )?;
    Ok(())
}
