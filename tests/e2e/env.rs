//! The end-to-end environment: a real control plane (the project's hack/ scripts), the CRDs, the
//! operator's RBAC from deploy/rbac, the provider simulator and the `revoker run` process running
//! with a ServiceAccount token (not as admin).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub type Result<T> = std::result::Result<T, String>;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const OPERATOR_NS: &str = "revoker-system";

/// Run a command, failing with its stderr.
pub fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Free loopback port.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// The control plane: ours (started and stopped here) or an existing cluster (REVOKER_E2E_KUBECONFIG).
pub struct ControlPlane {
    pub dir: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub bin_dir: PathBuf,
    managed: bool,
}

impl ControlPlane {
    pub fn start(work: &Path) -> Result<Self> {
        let bin_dir =
            PathBuf::from(sh(Command::new(format!("{ROOT}/hack/bin-path.sh")).stderr(Stdio::inherit()))?.trim());
        if let Ok(kubeconfig) = std::env::var("REVOKER_E2E_KUBECONFIG") {
            eprintln!("e2e: using the existing cluster of {kubeconfig}");
            return Ok(ControlPlane {
                dir: work.to_path_buf(),
                admin_kubeconfig: kubeconfig.into(),
                bin_dir,
                managed: false,
            });
        }
        let dir = work.join("cp");
        let started = Instant::now();
        sh(Command::new(format!("{ROOT}/hack/control-plane.sh"))
            .arg("up")
            .arg(&dir)
            .stderr(Stdio::inherit()))
        .map_err(|e| format!("the control plane did not start (tests fail, never skip): {e}"))?;
        eprintln!("e2e: control plane ready in {:.1}s", started.elapsed().as_secs_f64());
        Ok(ControlPlane {
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            dir,
            bin_dir,
            managed: true,
        })
    }

    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.admin_kubeconfig);
        cmd
    }

    pub fn stop(&self) {
        self.stopper().stop();
    }

    /// What stops this control plane, kept apart so that a failed setup can still stop it.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            dir: self.managed.then(|| self.dir.clone()),
        }
    }
}

/// Stops a control plane started by the harness (does nothing for an existing cluster).
pub struct Stopper {
    dir: Option<PathBuf>,
}

impl Stopper {
    pub fn stop(&self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(format!("{ROOT}/hack/control-plane.sh"))
                .arg("down")
                .arg(dir)
                .status();
        }
    }
}

/// A kubeconfig for `namespace/service_account`: the admin kubeconfig's server and CA with a
/// TokenRequest token, so the process using it has only that ServiceAccount's RBAC.
pub fn write_token_kubeconfig(cp: &ControlPlane, namespace: &str, service_account: &str, path: &Path) -> Result<()> {
    let view = sh(cp.kubectl().args(["config", "view", "--raw", "--minify", "-o", "json"]))?;
    let view: serde_json::Value = serde_json::from_str(&view).map_err(|e| e.to_string())?;
    let cluster = &view["clusters"][0]["cluster"];
    let token = sh(cp
        .kubectl()
        .args(["create", "token", service_account, "-n", namespace, "--duration=2h"]))?;
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": service_account, "user": {"token": token.trim()}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": service_account, "namespace": namespace}}],
        "current-context": "e2e",
    });
    std::fs::write(path, kubeconfig.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

pub async fn client_from(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// Install the CRDs with server-side apply and wait until they are served.
pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("revoker-e2e").force();
    for crd in revoker::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| format!("apply CRD {name}: {e}"))?;
    }
    for crd in revoker::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_for(Duration::from_secs(30), &format!("CRD {name} Established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await?;
    }
    Ok(())
}

/// Poll `check` every 200 ms until it returns Some, or fail after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdout(file)
            .stderr(err)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        Ok(Proc { child, log })
    }

    /// SIGKILL: a crash, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded), then SIGKILL. True when the process shut down by itself with
    /// exit status 0 (a graceful shutdown), false when it had to be killed or failed.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
