//! Blast-radius budgets: a provider's `spec.budget` holds the revocation past the cap as
//! Throttled, across an operator restart, and releases it when the window frees.

use std::time::Duration;

use crate::Env;
use crate::batch::named_batch;
use crate::cases::{WAIT, ensure, namespace_with_providers, reason};
use crate::env::{Result, sh, wait_for};

const WINDOW_S: i64 = 12;

pub async fn a_budget_holds_the_next_revocation_until_the_window_frees(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "budget")?;
    env.sim.clear_calls_and_faults().await?;
    let patch = format!(r#"{{"spec":{{"budget":{{"maxRevocations":2,"window":"{WINDOW_S}s"}}}}}}"#);
    sh(env.kubectl().args([
        "patch",
        "revocationprovider/onezone",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        &patch,
    ]))?;
    let (members, yaml) = named_batch(env, 0xb0d6e7, "capped", 3, |_| String::new()).await?;
    let (first, rest) = yaml.split_once("---\n").ok_or("a batch")?;
    env.apply(&ns, first)?;
    env.wait_phase(&ns, &format!("tokenrevocation/{}", members[0].name), "Succeeded", WAIT)
        .await?;
    env.apply(&ns, rest)?;
    let held = wait_for(WAIT, "one revocation past the budget to be Throttled", || {
        let objs: Vec<serde_json::Value> = members
            .iter()
            .filter_map(|m| env.get_json(&ns, &format!("tokenrevocation/{}", m.name)).ok())
            .collect();
        async move {
            let done = objs.iter().filter(|o| o["status"]["phase"] == "Succeeded").count();
            let throttled: Vec<&serde_json::Value> = objs.iter().filter(|o| reason(o) == "Throttled").collect();
            (done == 2 && throttled.len() == 1).then(|| {
                throttled[0]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        }
    })
    .await?;
    let held_member = members.iter().find(|m| m.name == held).ok_or("the held one")?;
    let path = held_member.path();
    ensure(
        env.sim.count("PATCH", &path).await? == 0,
        "the throttled revocation called nothing",
    )?;

    // The ledger is in the API server: a restarted operator keeps holding it.
    env.operator.take().ok_or("no operator")?.kill();
    env.start_operator()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let provider = env.get_json(&ns, "revocationprovider/onezone")?;
    let spent = provider["status"]["budgetSpent"].as_array().map_or(0, Vec::len);
    let still = env.get_json(&ns, &format!("tokenrevocation/{held}"))?;
    ensure(
        reason(&still) == "Throttled" && spent == 2 && env.sim.count("PATCH", &path).await? == 0,
        format!(
            "after a restart: still Throttled ({}), {spent} counted, no call",
            reason(&still)
        ),
    )?;

    let released = env
        .wait_phase(
            &ns,
            &format!("tokenrevocation/{held}"),
            "Succeeded",
            Duration::from_secs(WINDOW_S as u64 + 30),
        )
        .await?;
    ensure(
        env.sim.count("PATCH", &path).await? == 1,
        "released once the window freed: one call",
    )?;
    let first_at = provider["status"]["budgetSpent"][0]["at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = released["status"]["startTime"].as_str().unwrap_or_default().to_string();
    let (first_at, started) = (
        first_at
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("{first_at}: {e}"))?,
        started
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("{started}: {e}"))?,
    );
    ensure(
        started.duration_since(first_at).as_secs() >= WINDOW_S,
        format!(
            "it started {}s after the first was counted, not before the {WINDOW_S}s window",
            started.duration_since(first_at).as_secs()
        ),
    )?;
    Ok(())
}
