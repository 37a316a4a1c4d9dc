//! The `revoker` command line.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::controller::run::{AuditConfig, RunConfig, run};
use crate::egress::AllowList;
use crate::providers::DEFAULT_HOSTS;
use crate::providers::http::HttpSettings;
use crate::telemetry::{LogFormat, init_logging};

/// Revoker: revoke credentials at identity and secret providers, declaratively.
#[derive(Parser, Debug)]
#[command(name = "revoker", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the current kubeconfig's cluster (or in-cluster config).
    Run(Box<RunArgs>),
    /// Print every CRD as YAML (`revoker crd | kubectl apply -f -`).
    Crd,
    /// Break-glass: execute revocation manifests directly against the provider, no cluster needed.
    Revoke(Box<RevokeArgs>),
    /// Check manifests offline against the CRD schemas and their CEL rules (no cluster needed).
    Validate {
        /// Manifest files (multi-document YAML; `-` for stdin). Repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
    },
    /// One revocation at a glance: phase, reason, attempts, target, executor, the provider's
    /// readiness and its Events (`kubectl revoker status NAME`).
    Status {
        /// Which revocation.
        #[command(flatten)]
        target: crate::plugin::Target,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: crate::plugin::Output,
    },
    /// Lift `spec.suspend` of a held revocation, so that it runs (`kubectl revoker approve NAME`).
    Approve {
        /// Which revocation.
        #[command(flatten)]
        target: crate::plugin::Target,
    },
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create a fresh copy of a Failed revocation under a new name, annotated with the old one's
    /// (`kubectl revoker retry NAME`); a revocation itself never runs twice.
    Retry {
        /// Which revocation.
        #[command(flatten)]
        target: crate::plugin::Target,
        /// Name of the copy (default: NAME-retry, NAME-retry-2, ...).
        #[arg(long = "name")]
        new_name: Option<String>,
    },
}

/// The leader Lease of an unsharded operator.
const DEFAULT_LEASE: &str = "revoker-leader";

/// Flags of `revoker run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Extra host that may receive credentials: `host`, `host:port`, `https://host[:port]`, or
    /// `http://host[:port]` to allow plain HTTP. Repeatable; added to the official provider hosts.
    #[arg(long = "allowed-host", env = "REVOKER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Watch only this namespace (repeatable, or comma-separated): namespace-scoped mode, which
    /// needs only namespaced permissions there and uses no ClusterRevocationProvider. Default: all.
    #[arg(long = "namespace", value_delimiter = ',', value_parser = parse_namespace)]
    pub namespaces: Vec<String>,
    /// Namespace of ClusterRevocationProvider credential Secrets.
    #[arg(long, env = "POD_NAMESPACE", default_value = "revoker-system")]
    pub cluster_resource_namespace: String,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Log filter (RUST_LOG syntax, e.g. `info` or `info,kube=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
    /// Concurrent reconciles per controller.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Run only while holding the leader Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: the cluster resource namespace).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = DEFAULT_LEASE)]
    pub lease_name: String,
    /// Lease duration in seconds: how long a dead leader blocks the others.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Identity in the Lease (default: POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Client-side rate limit per provider object, in requests per second.
    #[arg(long, default_value_t = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN))]
    pub provider_qps: NonZeroU32,
    /// Requests to one provider object under way at once (every revocation of the provider shares
    /// them, as it shares the rate limit and any pause the provider asks for with 429/Retry-After).
    #[arg(long, default_value_t = NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN))]
    pub provider_concurrency: NonZeroU32,
    /// Act only on revocations whose labels match this label selector (e.g. `revoker.dev/shard=a`,
    /// or `revoker.dev/shard!=a` for everything else): one shard of several instances, each with
    /// its own disjoint selector and its own `--lease-name`. Providers are watched in full.
    #[arg(long, value_parser = parse_selector)]
    pub shard_selector: Option<String>,
    /// Check each provider's credentials and write its status. With shards, exactly one shard
    /// should (the others use the status it writes).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub check_providers: bool,
    /// Timeout of one provider request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Append the audit trail (one hash-chained JSON record per state change) to this file.
    /// Without it, the records go to the log under target `revoker::audit`.
    #[arg(long, env = "REVOKER_AUDIT_LOG")]
    pub audit_log: Option<std::path::PathBuf>,
    /// Also deliver each audit record to this HTTPS webhook, as a CloudEvent signed with
    /// HMAC-SHA256 (header `X-Revoker-Signature`); needs `--audit-webhook-secret-file`.
    #[arg(long, env = "REVOKER_AUDIT_WEBHOOK_URL", requires = "audit_webhook_secret_file")]
    pub audit_webhook_url: Option<String>,
    /// File holding the webhook's HMAC key (e.g. a mounted Secret key).
    #[arg(long, env = "REVOKER_AUDIT_WEBHOOK_SECRET_FILE", requires = "audit_webhook_url")]
    pub audit_webhook_secret_file: Option<std::path::PathBuf>,
}

/// Flags of `revoker revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Manifest files: the revocations, their RevocationProvider or ClusterRevocationProvider, and
    /// Secret/ConfigMap manifests they read (`-` for stdin). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// `KEY=VALUE` lines: the keys of a credentials Secret that is not among the files (also
    /// taken from `REVOKER_CREDENTIAL_<KEY>` variables).
    #[arg(long)]
    pub env_file: Option<String>,
    /// Extra host that may receive credentials (as for `revoker run`). Repeatable.
    #[arg(long = "allowed-host", env = "REVOKER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Timeout of one provider request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Output format of the statuses.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: StatusOutput,
}

/// How `revoker revoke` prints statuses.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum StatusOutput {
    /// YAML documents.
    Yaml,
    /// A JSON list.
    Json,
}

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad flag value.
    #[error(transparent)]
    AllowList(#[from] crate::egress::InvalidEntry),
    /// The controller stopped with an error.
    #[error(transparent)]
    Run(#[from] crate::controller::run::RunError),
    /// Shards that would share one Lease.
    #[error(
        "--shard-selector needs its own --lease-name (e.g. revoker-leader-shard-a): with one Lease for every shard, only one shard would run"
    )]
    ShardLease,
    /// A break-glass revocation failed (its status was printed).
    #[error("{0}")]
    Revoke(String),
    /// A manifest could not be read.
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    /// Some manifests are invalid (each was printed).
    #[error("{0} of the documents are invalid")]
    Invalid(usize),
    /// A `status`, `approve` or `retry` failed.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// An audit stream does not verify, or the audit trail cannot be set up.
    #[error("audit: {0}")]
    Audit(String),
    /// Serializing the CRDs failed.
    #[error("cannot print CRDs: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

impl RunArgs {
    fn config(&self) -> Result<RunConfig, CliError> {
        if self.shard_selector.is_some() && self.leader_elect && self.lease_name == DEFAULT_LEASE {
            return Err(CliError::ShardLease);
        }
        let hosts = DEFAULT_HOSTS
            .iter()
            .copied()
            .chain(self.allowed_hosts.iter().map(String::as_str));
        let identity = self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        Ok(RunConfig {
            http: HttpSettings {
                allow_list: Arc::new(AllowList::parse(hosts)?),
                timeout: Duration::from_secs(self.request_timeout),
                requests_per_second: self.provider_qps,
                max_in_flight: self.provider_concurrency,
            },
            lease_namespace: self
                .leader_election_namespace
                .clone()
                .unwrap_or_else(|| self.cluster_resource_namespace.clone()),
            cluster_resource_namespace: self.cluster_resource_namespace.clone(),
            concurrency: self.concurrency,
            leader_elect: self.leader_elect,
            lease_name: self.lease_name.clone(),
            lease_duration_seconds: self.lease_duration,
            identity: identity.clone(),
            watch_namespaces: dedup(&self.namespaces),
            shard_selector: self.shard_selector.clone(),
            check_providers: self.check_providers,
            audit: AuditConfig {
                file: self.audit_log.clone(),
                webhook: self.audit_webhook(&identity)?,
            },
        })
    }
}

impl RunArgs {
    fn audit_webhook(&self, identity: &str) -> Result<Option<crate::audit::webhook::Settings>, CliError> {
        let (Some(url), Some(secret_file)) = (&self.audit_webhook_url, &self.audit_webhook_secret_file) else {
            return Ok(None);
        };
        let secret = std::fs::read_to_string(secret_file)
            .map_err(|e| CliError::Audit(format!("cannot read {}: {e}", secret_file.display())))?;
        let secret = secret.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(CliError::Audit(format!("{} is empty", secret_file.display())));
        }
        crate::audit::webhook::Settings::new(
            url,
            secrecy::SecretString::from(secret.to_string()),
            identity.to_string(),
        )
        .map(Some)
        .map_err(CliError::Audit)
    }
}

/// A namespace name is a DNS label: checked here so that a typo fails at start, not as an
/// RBAC error later.
fn parse_namespace(name: &str) -> Result<String, String> {
    let valid = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
        ))
    }
}

/// A label selector, checked for what a typo most often breaks (the API server checks the rest
/// when the controller starts).
fn parse_selector(selector: &str) -> Result<String, String> {
    let selector = selector.trim();
    let balanced = selector.matches('(').count() == selector.matches(')').count();
    if selector.is_empty() || !balanced || selector.contains(char::is_control) {
        return Err(format!(
            "{selector:?} is not a label selector (e.g. revoker.dev/shard=a, or revoker.dev/shard notin (a,b))"
        ));
    }
    Ok(selector.to_string())
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// `revoker audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check audit streams (files of records, or JSON logs holding them): every chain complete,
    /// in order, and unaltered. Prints each chain's length and last hash; exits non-zero at the
    /// first problem, naming its line.
    Verify {
        /// Files to check (`-` for stdin).
        #[arg(required = true)]
        files: Vec<String>,
    },
}

/// Parse the command line and run it.
pub async fn main() -> Result<(), CliError> {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", crate::api::crds_yaml()?);
            Ok(())
        }
        Command::Validate { files } => validate(&files),
        Command::Revoke(args) => revoke(&args).await,
        Command::Status { target, output } => Ok(crate::plugin::status(&target, output).await?),
        Command::Approve { target } => Ok(crate::plugin::approve(&target).await?),
        Command::Retry { target, new_name } => Ok(crate::plugin::retry(&target, new_name).await?),
        Command::Audit(AuditCommand::Verify { files }) => verify_audit(&files),
        Command::Run(args) => {
            init_logging(args.log_format, &args.log_level);
            let config = args.config()?;
            let ready = Arc::new(AtomicBool::new(false));
            let server = tokio::spawn(crate::server::serve(args.metrics_addr, ready.clone()));
            let result = run(config, ready).await;
            server.abort();
            result.map_err(Into::into)
        }
    }
}

fn verify_audit(files: &[String]) -> Result<(), CliError> {
    for path in files {
        let text = read_input(path)?;
        let chains = crate::audit::verify(&text).map_err(|why| CliError::Audit(format!("{path}: {why}")))?;
        for chain in chains {
            println!(
                "{path}: chain {} verified: {} records, last hash {}",
                chain.chain, chain.records, chain.last_hash
            );
        }
    }
    Ok(())
}

fn read_input(path: &str) -> Result<String, CliError> {
    if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|source| {
        CliError::Validate(crate::validate::ValidateError::Read {
            path: path.to_string(),
            source,
        })
    })
}

/// `revoker revoke`: execute the files' revocations, print their statuses, fail when one failed.
async fn revoke(args: &RevokeArgs) -> Result<(), CliError> {
    let texts = args
        .files
        .iter()
        .map(|path| Ok((path.clone(), read_input(path)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    let mut credentials = crate::breakglass::credentials_from_env();
    if let Some(path) = &args.env_file {
        credentials.extend(crate::breakglass::parse_env_file(&read_input(path)?));
    }
    let manifests = crate::breakglass::Manifests::parse(&texts, credentials).map_err(CliError::Revoke)?;
    let hosts = DEFAULT_HOSTS
        .iter()
        .copied()
        .chain(args.allowed_hosts.iter().map(String::as_str));
    let settings = HttpSettings {
        allow_list: Arc::new(AllowList::parse(hosts)?),
        timeout: Duration::from_secs(args.request_timeout),
        ..HttpSettings::default()
    };
    let executed = manifests.execute_all(&settings).await;
    if executed.is_empty() {
        return Err(CliError::Revoke(
            "no JwksRevocation, AuthMethodRevocation or TokenRevocation in the files".into(),
        ));
    }
    let reports: Vec<serde_json::Value> = executed.iter().map(|e| e.report()).collect();
    match args.output {
        StatusOutput::Json => println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default()),
        StatusOutput::Yaml => {
            for report in &reports {
                print!("---\n{}", serde_yaml::to_string(report)?);
            }
        }
    }
    let failed: Vec<String> = executed
        .iter()
        .filter(|e| !e.succeeded())
        .map(|e| {
            let reason = e
                .status
                .conditions
                .iter()
                .find(|c| c.type_ == "Succeeded")
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            format!("{}: {reason}: {}", e.what, e.status.message.clone().unwrap_or_default())
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Revoke(format!(
            "{} of {} revocations did not succeed:\n  {}",
            failed.len(),
            executed.len(),
            failed.join("\n  ")
        )))
    }
}

/// `revoker validate`: print each document's verdict; an error when any is invalid.
fn validate(files: &[String]) -> Result<(), CliError> {
    let mut invalid = 0;
    for path in files {
        let text = if path == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        }
        .map_err(|source| crate::validate::ValidateError::Read {
            path: path.clone(),
            source,
        })?;
        for checked in crate::validate::check_text(path, &text)? {
            invalid += usize::from(matches!(checked.verdict, crate::validate::Verdict::Invalid(_)));
            println!("{checked}");
        }
    }
    if invalid > 0 {
        return Err(CliError::Invalid(invalid));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = ["revoker", "run"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Run(args) => *args,
            _ => unreachable!("parsed run"),
        })
    }

    #[test]
    fn namespaces_repeat_or_split_on_commas_and_repeats_count_once() {
        let args = run_args(&["--namespace", "team-a,team-b", "--namespace", "team-a"]).expect("valid");
        let config = args.config().expect("valid config");
        assert_eq!(config.watch_namespaces, ["team-a", "team-b"]);
    }

    #[test]
    fn a_shard_needs_its_own_lease() {
        let err = run_args(&["--shard-selector", "revoker.dev/shard=a"])
            .expect("valid flags")
            .config()
            .expect_err("one Lease for every shard");
        assert!(matches!(err, CliError::ShardLease), "{err}");
        let config = run_args(&[
            "--shard-selector",
            "revoker.dev/shard=a",
            "--lease-name",
            "revoker-leader-a",
        ])
        .expect("valid flags")
        .config()
        .expect("valid config");
        assert_eq!(config.shard_selector.as_deref(), Some("revoker.dev/shard=a"));
        assert!(config.check_providers);
        let err = run_args(&["--shard-selector", "revoker.dev/shard in (a"]).expect_err("unbalanced");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
    }

    #[test]
    fn no_namespace_flag_watches_every_namespace() {
        let config = run_args(&[]).expect("valid").config().expect("valid config");
        assert!(config.watch_namespaces.is_empty());
    }

    #[test]
    fn a_namespace_that_is_no_dns_label_is_a_usage_error() {
        for bad in ["Team-A", "team_a", "-team", ""] {
            let err = run_args(&[&format!("--namespace={bad}")]).expect_err(bad);
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}: {err}");
        }
    }
}
