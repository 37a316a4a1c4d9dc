//! Delivery of audit records to an HTTPS webhook, as CloudEvents (structured mode) signed with
//! HMAC-SHA256. At least once: each record is retried with backoff until the receiver accepts it
//! (2xx), in order; its CloudEvents `id` (`<chain>#<seq>`) is the same on every try, so a receiver
//! drops repeats by id. Records wait in a bounded queue; when it is full a record is dropped,
//! counted (`revoker_audit_dropped_total{sink="webhook"}`) and logged — never silently, and never
//! holding up a revocation. The file or log stream keeps every record regardless.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Record;
use crate::telemetry::{DeliveryLabels, METRICS};

/// Records waiting for the webhook at most.
pub const QUEUE: usize = 10_000;

/// The signature header: `sha256=` and the hex HMAC-SHA256 of the body with the shared secret.
pub const SIGNATURE_HEADER: &str = "x-revoker-signature";

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Where and how to deliver.
#[derive(Clone)]
pub struct Settings {
    /// The receiver: `https://…`, or `http://` on a loopback address only.
    pub url: url::Url,
    /// The HMAC key shared with the receiver.
    pub secret: secrecy::SecretString,
    /// Identity of this controller (the CloudEvents `source`).
    pub identity: String,
}

impl Settings {
    /// Check the URL: HTTPS, or plain HTTP to loopback (a local relay or a test).
    pub fn new(url: &str, secret: secrecy::SecretString, identity: String) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "{url} must be https:// (plain http only to a loopback address)"
            ));
        }
        Ok(Settings { url, secret, identity })
    }
}

/// The queue into the delivery task.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Record>,
}

impl Sender {
    /// Queue a record; a full queue drops it, counted and logged.
    pub fn send(&self, record: Record) {
        if let Err(e) = self.tx.try_send(record) {
            let record = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            METRICS
                .audit_dropped
                .get_or_create(&crate::telemetry::SinkLabels { sink: "webhook".into() })
                .inc();
            warn!(seq = record.seq, chain = %record.chain, "the audit webhook queue is full: record dropped from the webhook (it is still in the audit stream)");
        }
    }
}

/// Start the delivery task; records are delivered in order until the process ends.
pub fn start(settings: Settings) -> Result<Sender, String> {
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::providers::http::tls_config(None).map_err(|e| e.message)?)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("revoker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel::<Record>(QUEUE);
    tokio::spawn(async move {
        while let Some(record) = rx.recv().await {
            deliver(&client, &settings, &record).await;
        }
    });
    Ok(Sender { tx })
}

/// The CloudEvents envelope of a record (structured content mode).
pub fn envelope(record: &Record, identity: &str) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": format!("{}#{}", record.chain, record.seq),
        "source": format!("revoker.dev/{identity}"),
        "type": format!("dev.revoker.revocation.{}", record.event),
        "subject": format!("{}/{}/{}", record.kind, record.namespace, record.name),
        "time": record.time,
        "datacontenttype": "application/json",
        "data": record,
    })
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &secrecy::SecretString, body: &[u8]) -> String {
    use secrecy::ExposeSecret;
    // HMAC accepts a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Deliver one record, retrying with backoff until the receiver takes it.
async fn deliver(client: &reqwest::Client, settings: &Settings, record: &Record) {
    let body = serde_json::to_vec(&envelope(record, &settings.identity)).unwrap_or_default();
    let signed = signature(&settings.secret, &body);
    let mut wait = FIRST_RETRY;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let sent = client
            .post(settings.url.clone())
            .header(http::header::CONTENT_TYPE, "application/cloudevents+json")
            .header(SIGNATURE_HEADER, &signed)
            .body(body.clone())
            .send()
            .await;
        let outcome = match &sent {
            Ok(r) if r.status().is_success() => "delivered",
            Ok(_) => "rejected",
            Err(_) => "error",
        };
        METRICS
            .audit_deliveries
            .get_or_create(&DeliveryLabels { result: outcome.into() })
            .inc();
        if outcome == "delivered" {
            if tries > 1 {
                info!(
                    seq = record.seq,
                    tries, "audit record delivered to the webhook after retries"
                );
            }
            return;
        }
        let why = match sent {
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) => e.without_url().to_string(),
        };
        if tries == 1 || tries.is_power_of_two() {
            warn!(seq = record.seq, tries, error = %why, retry_in_ms = wait.as_millis() as u64, "the audit webhook did not take a record; retrying");
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature(&secrecy::SecretString::from("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_envelope_is_a_cloudevent_with_a_stable_id() {
        let record = Record {
            chain: "op/2026".into(),
            seq: 7,
            event: "succeeded".into(),
            kind: "TokenRevocation".into(),
            namespace: "team".into(),
            name: "r".into(),
            ..Record::default()
        };
        let event = envelope(&record, "op");
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], "op/2026#7");
        assert_eq!(event["type"], "dev.revoker.revocation.succeeded");
        assert_eq!(event["subject"], "TokenRevocation/team/r");
        assert_eq!(event["data"]["seq"], 7);
    }

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        let secret = || secrecy::SecretString::from("k");
        assert!(Settings::new("https://audit.example.com/in", secret(), "op".into()).is_ok());
        assert!(Settings::new("http://127.0.0.1:9000/in", secret(), "op".into()).is_ok());
        let err = Settings::new("http://audit.example.com/in", secret(), "op".into())
            .err()
            .unwrap_or_default();
        assert!(err.contains("must be https"), "{err}");
    }
}
