//! End-to-end tests against a real kube-apiserver + etcd (started by hack/control-plane.sh, or
//! an existing cluster through REVOKER_E2E_KUBECONFIG), the provider simulator, and the real
//! `revoker run` binary running with the ServiceAccount token of deploy/rbac (not as admin), or of
//! the ServiceAccount named by REVOKER_E2E_OPERATOR_SA (hack/test.sh uses the Helm chart's).
//!
//! A custom harness: the control plane starts once, tests run one after another (each in its own
//! namespace), and the run ends with the line `N passed, M failed`. A control plane that does not
//! start fails the run; nothing is skipped.
//! Filter: `cargo test --test e2e -- NAME_SUBSTRING`; `REVOKER_E2E_KEEP_LOGS=1` keeps the logs of a
//! run that passed.

mod audit;
mod batch;
mod breakglass;
mod budget;
mod cases;
mod echo;
mod env;
mod eso;
mod faults;
mod health;
mod hostile;
mod plugin;
mod receipts;
mod requester;
mod rotation;
mod scoped;
mod shards;
mod sim;
mod triggers;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use env::{ControlPlane, OPERATOR_NS, Proc, ROOT, Result, free_port, sh};
use kube::Client;

/// Everything a test can use.
pub struct Env {
    pub cp: ControlPlane,
    pub admin: Client,
    pub sim: sim::Sim,
    pub work: PathBuf,
    pub operator_kubeconfig: PathBuf,
    pub operator: Option<Proc>,
    pub metrics_port: u16,
}

impl Env {
    async fn setup(work: PathBuf, cp: ControlPlane) -> Result<(Env, Proc)> {
        let admin = env::client_from(&cp.admin_kubeconfig).await?;
        env::install_crds(&admin).await?;
        // The operator's identity: deploy/rbac's ServiceAccount, or one installed otherwise (the Helm
        // chart's) named by REVOKER_E2E_OPERATOR_SA=namespace/name.
        let (sa_ns, sa_name) = match std::env::var("REVOKER_E2E_OPERATOR_SA") {
            Ok(sa) => {
                let (ns, name) = sa
                    .split_once('/')
                    .ok_or("REVOKER_E2E_OPERATOR_SA must be namespace/name")?;
                eprintln!("e2e: the operator runs as ServiceAccount {ns}/{name}");
                (ns.to_string(), name.to_string())
            }
            Err(_) => {
                sh(cp.kubectl().args(["apply", "-f", &format!("{ROOT}/deploy/rbac/")]))?;
                (OPERATOR_NS.to_string(), "revoker".to_string())
            }
        };
        let operator_kubeconfig = work.join("operator.kubeconfig");
        env::write_token_kubeconfig(&cp, &sa_ns, &sa_name, &operator_kubeconfig)?;
        let (sim_proc, sim) = sim::Sim::start(&work).await?;
        let mut env = Env {
            cp,
            admin,
            sim,
            work,
            operator_kubeconfig,
            operator: None,
            metrics_port: free_port()?,
        };
        env.start_operator()?;
        Ok((env, sim_proc))
    }

    /// Start `revoker run` as the operator's ServiceAccount.
    pub fn start_operator(&mut self) -> Result<()> {
        let proc = self.spawn_operator("operator", self.metrics_port)?;
        self.operator = Some(proc);
        Ok(())
    }

    /// Spawn one more `revoker run` process (leader-election tests).
    pub fn spawn_operator(&self, name: &str, metrics_port: u16) -> Result<Proc> {
        self.spawn_operator_logging(name, metrics_port, "info,revoker=debug")
    }

    /// Spawn `revoker run` with a `RUST_LOG` filter; its log is `WORK/NAME.log`.
    pub fn spawn_operator_logging(&self, name: &str, metrics_port: u16, filter: &str) -> Result<Proc> {
        let cmd = self.operator_command(name, metrics_port, filter);
        Proc::spawn(cmd, self.work.join(format!("{name}.log")))
    }

    /// The `revoker run` command of the tests, as the operator's ServiceAccount; a caller may add
    /// flags and replace `KUBECONFIG`.
    pub fn operator_command(&self, name: &str, metrics_port: u16, filter: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_revoker"));
        cmd.args(["run", "--log-format", "text", "--lease-duration", "6"])
            .args(["--allowed-host", &format!("http://127.0.0.1:{}", self.sim.port)])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--cluster-resource-namespace", OPERATOR_NS])
            .arg(format!("--identity={name}"))
            .env("KUBECONFIG", &self.operator_kubeconfig)
            .env("RUST_LOG", filter)
            .env_remove("POD_NAME");
        cmd
    }

    /// GET a URL on loopback (the operator's metrics and health endpoints); non-2xx is an error.
    pub async fn sim_http_get(&self, url: &str) -> Result<String> {
        let resp = reqwest::get(url).await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("GET {url}: {status}: {text}"))
        }
    }

    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(self.work.join("operator.log")).unwrap_or_default()
    }

    pub fn kubectl(&self) -> Command {
        self.cp.kubectl()
    }

    /// `kubectl apply -n NS -f -` with `yaml`; the error carries kubectl's message.
    pub fn apply(&self, ns: &str, yaml: &str) -> Result<String> {
        let mut child = self
            .kubectl()
            .args(["apply", "-n", ns, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        use std::io::Write;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(yaml.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() { Ok(text) } else { Err(text) }
    }

    /// Create a namespace for one test.
    pub fn namespace(&self, name: &str) -> Result<String> {
        let ns = format!("{name}-{}", std::process::id() % 100000);
        sh(self.kubectl().args(["create", "namespace", &ns]))?;
        Ok(ns)
    }

    /// `kubectl get KIND/NAME -n NS -o json`.
    pub fn get_json(&self, ns: &str, what: &str) -> Result<serde_json::Value> {
        let text = sh(self.kubectl().args(["get", what, "-n", ns, "-o", "json"]))?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// Wait (bounded) until `.status.phase` of `what` is `phase`; returns the object.
    pub async fn wait_phase(&self, ns: &str, what: &str, phase: &str, timeout: Duration) -> Result<serde_json::Value> {
        let mut last = serde_json::Value::Null;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(obj) = self.get_json(ns, what) {
                if obj["status"]["phase"] == phase {
                    return Ok(obj);
                }
                last = obj;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "{what} did not reach phase {phase} within {timeout:?}; status: {}",
            last["status"]
        ))
    }
}

type TestFn = for<'a> fn(&'a mut Env) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let tests: Vec<(&str, TestFn)> = cases::ALL
        .iter()
        .copied()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("e2e: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (passed, failed) = runtime.block_on(run(tests));
    println!("\ne2e: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(tests: Vec<(&'static str, TestFn)>) -> (usize, usize) {
    let work = std::env::temp_dir().join(format!("revoker-e2e-{}", std::process::id()));
    let cp = match std::fs::create_dir_all(&work)
        .map_err(|e| e.to_string())
        .and_then(|_| ControlPlane::start(&work))
    {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("e2e: {e}");
            return (0, tests.len().max(1));
        }
    };
    let stopper = cp.stopper();
    let (mut env, mut sim_proc) = match Env::setup(work, cp).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("e2e: setup failed: {e}");
            stopper.stop();
            return (0, tests.len().max(1));
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        let started = Instant::now();
        if let Err(e) = env.sim.reset().await {
            eprintln!("e2e: simulator reset failed: {e}");
        }
        let result = match tokio::time::timeout(Duration::from_secs(180), test(&mut env)).await {
            Ok(r) => r,
            Err(_) => Err("timed out after 180s".into()),
        };
        if env
            .operator
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(Some(_))))
        {
            eprintln!("e2e: the operator had exited; restarting it");
            let _ = env.start_operator();
        }
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", started.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!(
                    "test {name} ... FAILED ({:.1}s)\n  {e}",
                    started.elapsed().as_secs_f64()
                );
                let log = env.operator_log();
                let tail: Vec<&str> = log.lines().rev().take(12).collect();
                println!(
                    "  operator log (last lines):\n    {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
                );
            }
        }
    }
    if let Some(mut op) = env.operator.take() {
        op.terminate();
    }
    sim_proc.terminate();
    env.cp.stop();
    if failed == 0 && std::env::var_os("REVOKER_E2E_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(&env.work);
    } else {
        eprintln!("e2e: logs kept in {}", env.work.display());
    }
    (passed, failed)
}
