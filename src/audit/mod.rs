//! The audit trail: one structured record per state change of a revocation (created with its
//! requester, waiting, attempted, retry scheduled, succeeded, failed, expired, a run started),
//! hash-chained per controller process (see [`chain`]), written to its own stream — a file
//! (`--audit-log`) or, without one, the log target `revoker::audit` — and optionally delivered to
//! an HTTPS webhook as signed CloudEvents (see [`webhook`]). Writing a record never waits on the
//! network: the webhook has its own bounded queue.

pub mod chain;
pub mod webhook;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use tracing::warn;

use crate::api::RevocationStatus;
use crate::telemetry::METRICS;
pub use chain::{Record, verify};

/// The log target of audit records when no `--audit-log` file is set.
pub const TARGET: &str = "revoker::audit";

/// Where a revocation's state change happened, for its audit record.
pub struct Change<'a> {
    /// What happened (`created`, `attempted`, `succeeded`, ...).
    pub event: &'static str,
    /// Revocation kind.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// The API server's record of who created it.
    pub requested_by: Option<String>,
    /// Its status after the change.
    pub status: &'a RevocationStatus,
}

/// The audit trail of one controller process. Cloning shares it.
#[derive(Clone, Default)]
pub struct Auditor {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    chain: Mutex<chain::Chain>,
    file: Option<Mutex<std::fs::File>>,
    webhook: Option<webhook::Sender>,
}

/// Errors setting up the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit file cannot be opened for appending.
    #[error("cannot open audit log {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The webhook settings are unusable.
    #[error("audit webhook: {0}")]
    Webhook(String),
}

impl Auditor {
    /// The audit trail of the controller `identity`, started now: records go to `file` (appended)
    /// or, without one, to the log target `revoker::audit`; and to `webhook` when set.
    pub fn new(identity: &str, file: Option<PathBuf>, webhook: Option<webhook::Sender>) -> Result<Self, AuditError> {
        let file = match file {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| AuditError::File {
                        path: path.display().to_string(),
                        source,
                    })?,
            )),
            None => None,
        };
        let chain = chain::Chain::new(format!("{identity}/{}", Timestamp::now()));
        Ok(Auditor {
            inner: Some(Arc::new(Inner {
                chain: Mutex::new(chain),
                file,
                webhook,
            })),
        })
    }

    /// Record one state change: sealed into the chain, written, and queued for the webhook.
    pub fn record(&self, change: Change<'_>) {
        let Some(inner) = &self.inner else { return };
        let status = change.status;
        let unsealed = Record {
            time: Timestamp::now().to_string(),
            event: change.event.into(),
            kind: change.kind.into(),
            namespace: change.namespace.into(),
            name: change.name,
            uid: change.uid,
            requested_by: change.requested_by,
            phase: status.phase.to_string(),
            reason: crate::controller::status::condition(status, crate::api::ConditionType::Succeeded)
                .map(|c| c.reason.clone()),
            attempts: status.attempts,
            target: status.target.clone(),
            target_fingerprint: status.target_fingerprint.clone(),
            message: status.message.clone(),
            provider_result: status.provider_result.clone(),
            ..Record::default()
        };
        // Sealing and writing under one lock keeps the file in chain order.
        let mut chain = inner.chain.lock().unwrap_or_else(|p| p.into_inner());
        let record = chain.seal(unsealed);
        let line = serde_json::to_string(&record).unwrap_or_default();
        match &inner.file {
            Some(file) => {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                    METRICS.audit_dropped.get_or_create(&sink("file")).inc();
                    warn!(error = %e, seq = record.seq, "could not write an audit record to the audit log");
                }
            }
            None => tracing::info!(target: TARGET, record = %line, "audit"),
        }
        drop(chain);
        METRICS.audit_records.inc();
        if let Some(webhook) = &inner.webhook {
            webhook.send(record);
        }
    }
}

fn sink(name: &str) -> crate::telemetry::SinkLabels {
    crate::telemetry::SinkLabels { sink: name.into() }
}
