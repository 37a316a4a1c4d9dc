//! Metrics (Prometheus text format) and logging.

use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;

use crate::api::Reason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of finished revocations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevocationLabels {
    /// JwksRevocation, AuthMethodRevocation, TokenRevocation.
    pub kind: String,
    /// atlas, infisical, onezone.
    pub provider: String,
    /// succeeded, already_revoked, dry_run, failed.
    pub result: String,
}

/// Labels of provider HTTP requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// atlas, infisical, onezone.
    pub provider: String,
    /// The provider's operation id (or `login`, `oauthToken`).
    pub operation: String,
    /// HTTP status code, or `error` when no answer came.
    pub status: String,
}

/// Labels of failures and retries: which kind, which provider, why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Revocation kind.
    pub kind: String,
    /// Provider type.
    pub provider: String,
    /// The reason (Unauthorized, BackoffLimitExceeded, RateLimited, ...).
    pub reason: String,
}

/// Labels of reconcile errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileErrorLabels {
    /// Resource kind.
    pub kind: String,
    /// Short error label.
    pub error: String,
}

/// Labels carrying just a provider type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// atlas, infisical, onezone.
    pub provider: String,
}

/// Labels of the runs of triggered revocations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggeredRunLabels {
    /// Revocation kind.
    pub kind: String,
    /// OnChange or Schedule.
    pub trigger: String,
    /// succeeded, failed, missed (a scheduled time not started), skipped (a value already revoked).
    pub result: String,
}

/// Results of `revoker_triggered_runs_total`.
pub const TRIGGERED_RUN_RESULTS: [&str; 4] = ["succeeded", "failed", "missed", "skipped"];

/// Labels of an audit sink.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// file or webhook.
    pub sink: String,
}

/// Labels of audit webhook deliveries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// delivered, rejected (a non-2xx answer), error (no answer).
    pub result: String,
}

/// Labels carrying just a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Resource kind.
    pub kind: String,
}

/// All metrics of the operator.
pub struct Metrics {
    /// `revoker_revocations_total{kind,provider,result}`.
    pub revocations: Family<RevocationLabels, Counter>,
    /// `revoker_revocation_failures_total{kind,provider,reason}`.
    pub revocation_failures: Family<ReasonLabels, Counter>,
    /// `revoker_provider_request_duration_seconds{provider,operation,status}`.
    pub request_duration: Family<RequestLabels, Histogram>,
    /// `revoker_retries_total{kind,provider,reason}`.
    pub retries: Family<ReasonLabels, Counter>,
    /// `revoker_reconcile_errors_total{kind,error}`.
    pub reconcile_errors: Family<ReconcileErrorLabels, Counter>,
    /// `revoker_reconciles_total{kind}`.
    pub reconciles: Family<KindLabels, Counter>,
    /// `revoker_revocations_in_flight`: provider calls under way.
    pub in_flight: Gauge,
    /// `revoker_provider_pauses_total{provider}`: 429s (and 503s with Retry-After) that paused
    /// every request to a provider object.
    pub provider_pauses: Family<ProviderLabels, Counter>,
    /// `revoker_triggered_runs_total{kind,trigger,result}`: runs of triggered revocations.
    pub triggered_runs: Family<TriggeredRunLabels, Counter>,
    /// `revoker_throttled_total{kind,provider,reason}`: waits because a provider's budget was spent.
    pub throttled: Family<ReasonLabels, Counter>,
    /// `revoker_verifications_total{kind,provider,reason}`: receipts by what the read-back found.
    pub verifications: Family<ReasonLabels, Counter>,
    /// `revoker_audit_records_total`: audit records written.
    pub audit_records: Counter,
    /// `revoker_audit_dropped_total{sink}`: audit records a sink lost (never silently).
    pub audit_dropped: Family<SinkLabels, Counter>,
    /// `revoker_audit_webhook_deliveries_total{result}`: tries to deliver to the audit webhook.
    pub audit_deliveries: Family<DeliveryLabels, Counter>,
    registry: Mutex<Registry>,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("revoker");
        let revocations = Family::<RevocationLabels, Counter>::default();
        let revocation_failures = Family::<ReasonLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
        let retries = Family::<ReasonLabels, Counter>::default();
        let reconcile_errors = Family::<ReconcileErrorLabels, Counter>::default();
        let reconciles = Family::<KindLabels, Counter>::default();
        let in_flight = Gauge::default();
        let provider_pauses = Family::<ProviderLabels, Counter>::default();
        let triggered_runs = Family::<TriggeredRunLabels, Counter>::default();
        let throttled = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "throttled",
            "Revocations held because their provider's blast-radius budget was spent",
            throttled.clone(),
        );
        let verifications = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "verifications",
            "Read-backs after successful revocations, by what they found (Verified, NotApplied, NoReadBack, VerificationUnavailable)",
            verifications.clone(),
        );
        let audit_records = Counter::default();
        let audit_dropped = Family::<SinkLabels, Counter>::default();
        let audit_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register("audit_records", "Audit records written", audit_records.clone());
        registry.register(
            "audit_dropped",
            "Audit records a sink could not take (full webhook queue, failed file write)",
            audit_dropped.clone(),
        );
        registry.register(
            "audit_webhook_deliveries",
            "Tries to deliver an audit record to the webhook, by result",
            audit_deliveries.clone(),
        );
        registry.register(
            "revocations",
            "Finished revocations by kind, provider and result",
            revocations.clone(),
        );
        registry.register(
            "revocation_failures",
            "Failed revocations by kind, provider and reason",
            revocation_failures.clone(),
        );
        registry.register(
            "provider_request_duration_seconds",
            "Duration of provider HTTP requests",
            request_duration.clone(),
        );
        registry.register(
            "retries",
            "Retries scheduled after transient provider errors",
            retries.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error",
            reconcile_errors.clone(),
        );
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("revocations_in_flight", "Provider calls under way", in_flight.clone());
        registry.register(
            "provider_pauses",
            "Rate-limit answers (429, or 503 with Retry-After) that paused every request to a provider",
            provider_pauses.clone(),
        );
        registry.register(
            "triggered_runs",
            "Runs of triggered revocations by kind, trigger and result",
            triggered_runs.clone(),
        );
        let metrics = Metrics {
            revocations,
            revocation_failures,
            request_duration,
            retries,
            reconcile_errors,
            reconciles,
            in_flight,
            provider_pauses,
            triggered_runs,
            throttled,
            verifications,
            audit_records,
            audit_dropped,
            audit_deliveries,
            registry: Mutex::new(registry),
        };
        metrics.export_zeros();
        metrics
    }

    /// Create every counter series an alert may compare against, at zero, so that `rate()` and
    /// `increase()` see the first event and "absent" never means "zero".
    fn export_zeros(&self) {
        for kind in REVOCATION_KINDS {
            for provider in PROVIDERS {
                for result in RESULTS {
                    let labels = RevocationLabels {
                        kind: kind.into(),
                        provider: provider.into(),
                        result: result.into(),
                    };
                    drop(self.revocations.get_or_create(&labels));
                }
                for (family, reasons) in [
                    (&self.revocation_failures, &FAILURE_REASONS[..]),
                    (&self.retries, &RETRY_REASONS[..]),
                    (&self.verifications, &VERIFICATION_REASONS[..]),
                    (&self.throttled, &[Reason::Throttled][..]),
                ] {
                    for reason in reasons {
                        let labels = ReasonLabels {
                            kind: kind.into(),
                            provider: provider.into(),
                            reason: reason.as_str().into(),
                        };
                        drop(family.get_or_create(&labels));
                    }
                }
            }
        }
        for kind in REVOCATION_KINDS {
            for trigger in ["OnChange", "Schedule"] {
                for result in TRIGGERED_RUN_RESULTS {
                    let labels = TriggeredRunLabels {
                        kind: kind.into(),
                        trigger: trigger.into(),
                        result: result.into(),
                    };
                    drop(self.triggered_runs.get_or_create(&labels));
                }
            }
        }
        for sink in ["file", "webhook"] {
            drop(self.audit_dropped.get_or_create(&SinkLabels { sink: sink.into() }));
        }
        for result in ["delivered", "rejected", "error"] {
            drop(
                self.audit_deliveries
                    .get_or_create(&DeliveryLabels { result: result.into() }),
            );
        }
        for provider in PROVIDERS {
            let labels = ProviderLabels {
                provider: provider.into(),
            };
            drop(self.provider_pauses.get_or_create(&labels));
        }
        for kind in REVOCATION_KINDS.iter().chain(PROVIDER_KINDS.iter()) {
            drop(self.reconciles.get_or_create(&KindLabels { kind: kind.to_string() }));
            for error in RECONCILE_ERRORS {
                let labels = ReconcileErrorLabels {
                    kind: kind.to_string(),
                    error: error.into(),
                };
                drop(self.reconcile_errors.get_or_create(&labels));
            }
        }
    }

    /// Add a collector (per-object gauges computed at scrape time).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        let mut registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.register_collector(collector);
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

const REVOCATION_KINDS: [&str; 3] = ["JwksRevocation", "AuthMethodRevocation", "TokenRevocation"];
const PROVIDER_KINDS: [&str; 2] = ["RevocationProvider", "ClusterRevocationProvider"];
const PROVIDERS: [&str; 3] = ["atlas", "infisical", "onezone"];
const RESULTS: [&str; 4] = ["succeeded", "already_revoked", "dry_run", "failed"];
const RECONCILE_ERRORS: [&str; 4] = ["conflict", "api", "client", "missing_namespace"];
/// Reasons a revocation can fail with.
const FAILURE_REASONS: [Reason; 12] = [
    Reason::InvalidSpec,
    Reason::TargetChanged,
    Reason::Unauthorized,
    Reason::Forbidden,
    Reason::TargetNotFound,
    Reason::BadRequest,
    Reason::Conflict,
    Reason::UnsupportedApiVersion,
    Reason::UnexpectedResponse,
    Reason::InvalidProviderConfig,
    Reason::ProviderMismatch,
    Reason::BackoffLimitExceeded,
];
/// Reasons of transient errors that schedule a retry.
const RETRY_REASONS: [Reason; 4] = [
    Reason::RateLimited,
    Reason::ProviderUnavailable,
    Reason::NetworkError,
    Reason::Timeout,
];

/// Reasons of `revoker_verifications_total`, exported at zero.
const VERIFICATION_REASONS: [Reason; 4] = [
    Reason::Verified,
    Reason::NotApplied,
    Reason::NoReadBack,
    Reason::VerificationUnavailable,
];

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Install the global tracing subscriber. `filter` uses `RUST_LOG` syntax (e.g. `info,kube=warn`).
pub fn init_logging(format: LogFormat, filter: &str) {
    use tracing_subscriber::util::SubscriberInitExt;
    // Colours only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
}

/// The subscriber [`init_logging`] installs, writing to `writer`. Log text cannot be forged from
/// user input: the JSON format escapes control characters in strings, and the text format
/// escapes them (and Unicode line separators and bidirectional overrides) in the message and in
/// every field value, so one event is always one line.
fn subscriber<W>(format: LogFormat, filter: &str, writer: W, ansi: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Text => Box::new(builder.fmt_fields(escaping_fields()).finish()),
    }
}

/// Text field formatter: `message` bare, other fields as `name=value`, separated by spaces, with
/// [`escape_control`] applied to each value.
fn escaping_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        if field.name() != "message" {
            write!(writer, "{}=", field.name())?;
        }
        write!(writer, "{}", escape_control(&text))
    })
    .delimited(" ")
}

/// `text` with control characters, Unicode line and paragraph separators and bidirectional
/// formatting characters written as escapes (`\n`, `\u{1b}`, ...).
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let needs_escape = |c: char| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    const FORGED: &str = "x\n2026-01-01T00:00:00Z  INFO revoker: revocation succeeded";

    fn log_hostile_event(format: LogFormat) -> String {
        let out = Captured::default();
        let sub = subscriber(format, "info", out.clone(), false);
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("reconcile", name = %"span\u{1b}[2Jname");
            let _enter = span.enter();
            tracing::info!(id = "a\u{1b}[31mb\r\n", target_name = %FORGED, "provider said {}", "line1\nline2\u{2028}");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_logs_escape_control_characters_in_messages_fields_and_spans() {
        let log = log_hostile_event(LogFormat::Text);
        assert_eq!(log.matches('\n').count(), 1, "{log:?}");
        assert!(
            !log.contains('\u{1b}') && !log.contains('\r') && !log.contains('\u{2028}'),
            "{log:?}"
        );
        assert!(log.contains(r"provider said line1\nline2\u{2028}"), "{log}");
        assert!(
            log.contains(r"target_name=x\n2026-01-01T00:00:00Z  INFO revoker"),
            "{log}"
        );
        assert!(log.contains(r#"id="a\u{1b}[31mb\r\n""#), "{log}");
        assert!(log.contains(r"name=span\u{1b}[2Jname"), "{log}");
    }

    #[test]
    fn json_logs_keep_one_event_on_one_line() {
        let log = log_hostile_event(LogFormat::Json);
        assert_eq!(log.matches('\n').count(), 1, "{log:?}");
        assert!(!log.contains('\u{1b}') && !log.contains('\r'), "{log:?}");
        let event: serde_json::Value = serde_json::from_str(log.trim_end()).unwrap();
        assert_eq!(event["target_name"], FORGED);
        assert_eq!(event["id"], "a\u{1b}[31mb\r\n");
        assert_eq!(event["message"], "provider said line1\nline2\u{2028}");
    }

    #[test]
    fn escaping_leaves_ordinary_text_alone() {
        assert!(matches!(
            escape_control("plain ünïcode text"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_control("a\tb\u{202e}c"), r"a\tb\u{202e}c");
    }
}
