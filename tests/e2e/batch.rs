//! Batches of revocations whose provider calls can be told apart: one Onezone named token each,
//! so that the simulator's call log shows how often each revocation called the provider.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::Env;
use crate::env::Result;

/// The Onezone user whose token the test providers use.
const OZ_USER: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
pub(crate) const NAMED_PREFIX: &str = "/api/v3/onezone/tokens/named/";

/// One revocation of a batch: its name and the named token it revokes.
pub(crate) struct Member {
    pub name: String,
    pub token_id: String,
}

impl Member {
    pub fn path(&self) -> String {
        format!("{NAMED_PREFIX}{}", self.token_id)
    }
}

/// `n` named tokens in the simulator (ids unique to `series`), and a revocation for each, named
/// `prefix-i`; `labels(i)` gives the labels of the i-th (a YAML flow map's inside, or "").
pub(crate) async fn named_batch(
    env: &Env,
    series: u32,
    prefix: &str,
    n: usize,
    labels: impl Fn(usize) -> String,
) -> Result<(Vec<Member>, String)> {
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            name: format!("{prefix}-{i}"),
            token_id: format!("{series:08x}{:024x}", i),
        })
        .collect();
    let tokens: Vec<Value> = members
        .iter()
        .map(|m| json!({"id": m.token_id, "name": m.name, "userId": OZ_USER}))
        .collect();
    env.sim.merge_state(json!({"onezone": {"namedTokens": tokens}})).await?;
    let yaml = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata: {{name: {}, labels: {{{}}}}}\nspec:\n  providerRef: {{name: onezone}}\n  onezone: {{scope: NamedToken, tokenId: \"{}\", namedTokenAction: Revoke}}\n---\n",
                m.name,
                labels(i),
                m.token_id
            )
        })
        .collect();
    Ok((members, yaml))
}

/// A latency on every named-token call.
pub(crate) async fn slow_named_tokens(env: &Env, latency_ms: u64) -> Result<()> {
    env.sim
        .fault(json!({"match": {"method": "PATCH", "path": NAMED_PREFIX}, "kind": "latency", "latencyMs": latency_ms}))
        .await
}

/// `status.attempts` of each TokenRevocation of the namespace, by name.
pub(crate) fn attempts(env: &Env, ns: &str) -> Result<HashMap<String, i64>> {
    Ok(crate::faults::token_revocations(env, ns)?
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
            (name, o["status"]["attempts"].as_i64().unwrap_or_default())
        })
        .collect())
}

/// How each member called the provider: the members with no call, and those called more than
/// once with their calls and attempts.
pub(crate) struct CallCheck {
    pub never_called: Vec<String>,
    pub repeated: Vec<(String, u64, i64)>,
}

impl CallCheck {
    /// Members called more often than their `status.attempts` shows (name, calls, attempts).
    pub fn unexplained(&self) -> Vec<&(String, u64, i64)> {
        self.repeated
            .iter()
            .filter(|(_, calls, attempts)| *attempts < *calls as i64)
            .collect()
    }
}

/// Revoking calls only: the receipt's read-back (a GET of the same path) is not one.
pub(crate) async fn check_calls(env: &Env, ns: &str, members: &[Member]) -> Result<CallCheck> {
    let calls = env.sim.calls_per_path("PATCH").await?;
    let attempts = attempts(env, ns)?;
    let mut check = CallCheck {
        never_called: vec![],
        repeated: vec![],
    };
    for m in members {
        let n = calls.get(&m.path()).copied().unwrap_or_default();
        if n == 0 {
            check.never_called.push(m.name.clone());
        } else if n > 1 {
            let a = attempts.get(&m.name).copied().unwrap_or_default();
            check.repeated.push((m.name.clone(), n, a));
        }
    }
    Ok(check)
}
