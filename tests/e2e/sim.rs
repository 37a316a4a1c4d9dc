//! The provider simulator process and its admin API (docs/simulator.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::env::{Proc, ROOT, Result, wait_for};

pub struct Sim {
    pub port: u16,
    http: reqwest::Client,
}

/// The simulator binary of the workspace's `revoker-simulator` crate, built if needed (a binary
/// of another package has no `CARGO_BIN_EXE_` variable; this keeps `cargo test --test e2e` working
/// on its own).
fn simulator_binary() -> Result<std::path::PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--locked", "-p", "revoker-simulator"])
        .current_dir(ROOT)
        .status()
        .map_err(|e| format!("cargo build -p revoker-simulator: {e}"))?;
    if !status.success() {
        return Err("cargo build -p revoker-simulator failed".into());
    }
    let operator = std::path::Path::new(env!("CARGO_BIN_EXE_revoker"));
    let binary = operator.with_file_name("revoker-simulator");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("{} was not built", binary.display()))
    }
}

impl Sim {
    /// Start the simulator on a free loopback port with the quickstart seed.
    pub async fn start(work: &Path) -> Result<(Proc, Sim)> {
        let port_file = work.join("sim.port");
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = Command::new(simulator_binary()?);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--seed-file",
            &format!("{ROOT}/examples/simulator-seed.json"),
        ])
        .arg("--port-file")
        .arg(&port_file);
        let proc = Proc::spawn(cmd, work.join("simulator.log"))?;
        let port = wait_for(Duration::from_secs(20), "the simulator's port file", || {
            let port_file = port_file.clone();
            async move { std::fs::read_to_string(&port_file).ok()?.trim().parse::<u16>().ok() }
        })
        .await?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let sim = Sim { port, http };
        sim.admin(reqwest::Method::GET, "health", None).await?;
        Ok((proc, sim))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}/_sim/{path}", self.base_url()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| format!("simulator admin {path}: {e}"))?;
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("simulator admin {path}: {status}: {value}"));
        }
        Ok(value)
    }

    /// Back to the seed state, no calls, no faults.
    pub async fn reset(&self) -> Result<()> {
        self.admin(reqwest::Method::POST, "reset", None).await.map(|_| ())
    }

    /// No calls, no faults; state and digest nonces kept, so that a credential check in flight
    /// (a provider just created) is not broken by it, as a full reset would.
    pub async fn clear_calls_and_faults(&self) -> Result<()> {
        self.admin(reqwest::Method::DELETE, "calls", None).await?;
        self.admin(reqwest::Method::DELETE, "faults", None).await.map(|_| ())
    }

    /// Inject a fault: `{match:{method?,path}, kind, status?, retryAfter?, latencyMs?, times?}`.
    pub async fn fault(&self, spec: Value) -> Result<()> {
        self.admin(reqwest::Method::POST, "faults", Some(spec))
            .await
            .map(|_| ())
    }

    /// Calls received for `METHOD path` (exact target).
    pub async fn count(&self, method: &str, path: &str) -> Result<u64> {
        let report = self.admin(reqwest::Method::GET, "calls", None).await?;
        Ok(report["counts"][format!("{method} {path}")].as_u64().unwrap_or(0))
    }

    /// Calls for `METHOD path` that the simulator answered with a 2xx status (the effective ones;
    /// a digest challenge 401 before them does not count).
    pub async fn succeeded(&self, method: &str, path: &str) -> Result<u64> {
        let report = self.admin(reqwest::Method::GET, "calls", None).await?;
        let by_status = &report["countsByStatus"][format!("{method} {path}")];
        Ok(by_status
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with('2'))
                    .filter_map(|(_, v)| v.as_u64())
                    .sum()
            })
            .unwrap_or(0))
    }

    /// Every call received.
    pub async fn calls(&self) -> Result<Vec<Value>> {
        let report = self.admin(reqwest::Method::GET, "calls", None).await?;
        Ok(report["calls"].as_array().cloned().unwrap_or_default())
    }

    /// Total number of provider calls received.
    pub async fn total(&self) -> Result<u64> {
        let report = self.admin(reqwest::Method::GET, "calls", None).await?;
        Ok(report["total"].as_u64().unwrap_or(0))
    }

    /// The provider state.
    pub async fn state(&self) -> Result<Value> {
        self.admin(reqwest::Method::GET, "state", None).await
    }
}

/// A status fault for `METHOD path`, `times` times (None: until cleared).
pub fn status_fault(method: &str, path: &str, status: u16, times: Option<u64>) -> Value {
    let mut spec =
        json!({"match": {"method": method, "path": path, "exact": true}, "kind": "status", "status": status});
    if let Some(n) = times {
        spec["times"] = json!(n);
    }
    spec
}

impl Sim {
    /// Add (or replace) entries of the provider state, e.g. `{"onezone": {"namedTokens": [...]}}`.
    pub async fn merge_state(&self, patch: Value) -> Result<()> {
        self.admin(reqwest::Method::PATCH, "state", Some(patch))
            .await
            .map(|_| ())
    }

    /// Calls with `method` received per exact path (any status).
    pub async fn calls_per_path(&self, method: &str) -> Result<std::collections::HashMap<String, u64>> {
        let mut per_path = std::collections::HashMap::new();
        for call in self.calls().await? {
            if call["method"] != method {
                continue;
            }
            if let Some(path) = call["path"].as_str() {
                *per_path.entry(path.to_string()).or_default() += 1;
            }
        }
        Ok(per_path)
    }
}
