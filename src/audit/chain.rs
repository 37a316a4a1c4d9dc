//! Audit records and their hash chain: each record carries the SHA-256 of the one before it (in
//! the same chain: one controller process) and its own, so a record that is altered, removed,
//! reordered or cut short breaks the chain at that point.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ProviderResult;

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One state change of a revocation, as written to the audit stream. Never holds a secret: ids,
/// fingerprints, reasons and messages (which are redacted before they reach status) only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// The chain: the controller instance and when it started.
    pub chain: String,
    /// 1 for the first record of the chain, then +1 each.
    pub seq: u64,
    /// When the change was written (RFC 3339).
    pub time: String,
    /// What happened: created, waiting, attempted, retry-scheduled, succeeded, failed, expired,
    /// run-started.
    pub event: String,
    /// Revocation kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object's uid (names are reused; uids are not).
    pub uid: String,
    /// Who created the revocation, as the API server recorded it (`revoker.dev/requested-by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Phase after the change.
    pub phase: String,
    /// Reason of the `Succeeded` condition after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Attempts recorded.
    pub attempts: i32,
    /// What is revoked, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Fingerprint of a target read from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_fingerprint: Option<String>,
    /// The status message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the provider answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_result: Option<ProviderResult>,
    /// The previous record's `hash` in this chain ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 (hex) of this record serialized with `hash` empty.
    pub hash: String,
}

impl Record {
    /// The hash of this record: SHA-256 of its JSON with `hash` empty.
    pub fn digest(&self) -> String {
        let unsealed = Record {
            hash: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_string(&unsealed).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))
    }
}

/// The sealing side of a chain: numbers records and links each to the one before.
#[derive(Debug)]
pub struct Chain {
    id: String,
    seq: u64,
    last: String,
}

impl Chain {
    /// A new chain named `id`.
    pub fn new(id: String) -> Self {
        Chain {
            id,
            seq: 0,
            last: GENESIS.to_string(),
        }
    }

    /// Number, link and seal `record`.
    pub fn seal(&mut self, mut record: Record) -> Record {
        self.seq += 1;
        record.chain = self.id.clone();
        record.seq = self.seq;
        record.prev = self.last.clone();
        record.hash = record.digest();
        self.last = record.hash.clone();
        record
    }
}

/// What `revoker audit verify` found in one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    /// The chain id.
    pub chain: String,
    /// Records in it.
    pub records: u64,
    /// Hash of its last record: compare with the controller's last one to see a missing tail.
    pub last_hash: String,
}

/// Check a stream: every line one record (or a JSON log line of target `revoker::audit` carrying
/// one), each chain starting at seq 1, contiguous, each record's hash its own and its `prev` the
/// hash of the one before. The first problem is reported with its line number.
pub fn verify(text: &str) -> Result<Vec<ChainSummary>, String> {
    let mut chains: Vec<ChainSummary> = vec![];
    for (index, line) in text.lines().enumerate() {
        let at = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some(record) = record_of_line(line).map_err(|e| format!("line {at}: {e}"))? else {
            continue;
        };
        if record.digest() != record.hash {
            return Err(format!(
                "line {at}: record {}#{} was altered (its hash does not match its content)",
                record.chain, record.seq
            ));
        }
        let (expected_seq, expected_prev) = match chains.iter().find(|c| c.chain == record.chain) {
            Some(c) => (c.records + 1, c.last_hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        if record.seq != expected_seq {
            return Err(format!(
                "line {at}: chain {} jumps from record {} to {}: {} record(s) missing or out of order",
                record.chain,
                expected_seq - 1,
                record.seq,
                record.seq.abs_diff(expected_seq)
            ));
        }
        if record.prev != expected_prev {
            return Err(format!(
                "line {at}: record {}#{} does not follow the record before it (prev hash differs)",
                record.chain, record.seq
            ));
        }
        match chains.iter_mut().find(|c| c.chain == record.chain) {
            Some(c) => {
                c.records = record.seq;
                c.last_hash = record.hash;
            }
            None => chains.push(ChainSummary {
                chain: record.chain,
                records: 1,
                last_hash: record.hash,
            }),
        }
    }
    if chains.is_empty() {
        return Err("no audit records found".into());
    }
    Ok(chains)
}

/// A record line, a JSON log line of the audit target (its `record` field), or None for any
/// other log line.
fn record_of_line(line: &str) -> Result<Option<Record>, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a complete JSON line (cut short?): {e}"))?;
    if value.get("chain").is_some() {
        return serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("not an audit record: {e}"));
    }
    if value["target"] == super::TARGET {
        let inner = value["fields"]["record"]
            .as_str()
            .ok_or("an audit log line without its record")?;
        return serde_json::from_str(inner)
            .map(Some)
            .map_err(|e| format!("not an audit record: {e}"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: usize) -> Vec<String> {
        let mut chain = Chain::new("op-1/2026-12-04T00:00:00Z".into());
        (0..n)
            .map(|i| {
                let record = chain.seal(Record {
                    event: "attempted".into(),
                    kind: "TokenRevocation".into(),
                    namespace: "team".into(),
                    name: format!("r{i}"),
                    phase: "Running".into(),
                    attempts: 1,
                    ..Record::default()
                });
                serde_json::to_string(&record).expect("json")
            })
            .collect()
    }

    #[test]
    fn a_whole_stream_verifies() {
        let lines = stream(5);
        let chains = verify(&lines.join("\n")).expect("verifies");
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].records, 5);
    }

    #[test]
    fn an_altered_record_is_found() {
        let mut lines = stream(5);
        lines[2] = lines[2].replace("\"name\":\"r2\"", "\"name\":\"r9\"");
        let err = verify(&lines.join("\n")).expect_err("altered");
        assert!(err.starts_with("line 3:") && err.contains("altered"), "{err}");
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_link_to_the_next_record() {
        let mut lines = stream(5);
        let mut forged: Record = serde_json::from_str(&lines[2]).expect("record");
        forged.name = "r9".into();
        forged.hash = forged.digest();
        lines[2] = serde_json::to_string(&forged).expect("json");
        let err = verify(&lines.join("\n")).expect_err("forged");
        assert!(err.starts_with("line 4:") && err.contains("does not follow"), "{err}");
    }

    #[test]
    fn a_removed_or_reordered_record_is_found() {
        let mut lines = stream(5);
        lines.remove(1);
        let err = verify(&lines.join("\n")).expect_err("removed");
        assert!(err.contains("jumps from record 1 to 3"), "{err}");
        let mut lines = stream(5);
        lines.swap(1, 2);
        assert!(verify(&lines.join("\n")).is_err());
        let mut lines = stream(5);
        lines.remove(0);
        let err = verify(&lines.join("\n")).expect_err("head removed");
        assert!(err.contains("jumps from record 0 to 2"), "{err}");
    }

    #[test]
    fn a_stream_cut_short_is_found() {
        let mut lines = stream(5);
        let last = lines.pop().expect("a line");
        lines.push(last[..last.len() / 2].to_string());
        let err = verify(&lines.join("\n")).expect_err("cut");
        assert!(err.starts_with("line 5:") && err.contains("cut short"), "{err}");
    }

    #[test]
    fn records_inside_json_log_lines_are_read_and_other_lines_skipped() {
        let lines: Vec<String> = stream(2)
            .into_iter()
            .map(|r| {
                serde_json::json!({"level": "INFO", "target": super::super::TARGET, "fields": {"record": r}})
                    .to_string()
            })
            .collect();
        let text = format!(
            "{}\n{}\n{}\n",
            lines[0],
            serde_json::json!({"level": "INFO", "target": "revoker::controller", "fields": {"message": "x"}}),
            lines[1]
        );
        assert_eq!(verify(&text).expect("verifies")[0].records, 2);
    }
}
