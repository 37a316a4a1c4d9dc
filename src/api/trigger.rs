//! `spec.trigger`: a revocation that runs again — each time a Secret or ConfigMap key changes, or
//! on a cron schedule — and the record of its runs in status.
//!
//! Each run is a one-shot revocation of the same kind (a child object, as a CronJob's runs are
//! Jobs), named after the run, owned by the triggered revocation, and kept per the history limits.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Phase, ProviderResult};

/// Default of `successfulRunsHistoryLimit` (as a CronJob's `successfulJobsHistoryLimit`).
pub const DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT: i32 = 3;
/// Default of `failedRunsHistoryLimit` (as a CronJob's `failedJobsHistoryLimit`).
pub const DEFAULT_FAILED_RUNS_HISTORY_LIMIT: i32 = 1;
/// Default of `onChange.pollSeconds`.
pub const DEFAULT_POLL_SECONDS: i32 = 10;
/// Default of `onChange.debounceSeconds`.
pub const DEFAULT_DEBOUNCE_SECONDS: i32 = 10;

/// Five whitespace-separated cron fields, or one of the `@hourly`-style macros. The controller
/// parses it fully; this pattern only keeps obvious mistakes out at apply time.
pub const CRON_PATTERN: &str =
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*/,?#-]+( +[0-9A-Za-z*/,?#-]+){4})$";
/// An IANA time zone name, e.g. `Europe/Berlin` or `UTC`.
pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+/-]*$";

fn default_successful() -> i32 {
    DEFAULT_SUCCESSFUL_RUNS_HISTORY_LIMIT
}
fn default_failed() -> i32 {
    DEFAULT_FAILED_RUNS_HISTORY_LIMIT
}
fn default_poll() -> i32 {
    DEFAULT_POLL_SECONDS
}
fn default_debounce() -> i32 {
    DEFAULT_DEBOUNCE_SECONDS
}

/// When to run the revocation again. Without a trigger a revocation runs once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.onChange) != has(self.schedule)", "message": "set exactly one of onChange and schedule"}
]))]
pub struct Trigger {
    /// Run each time a key of a Secret or ConfigMap changes, revoking what the spec then names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_change: Option<OnChangeTrigger>,
    /// Run on a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleTrigger>,
    /// Finished successful runs (and their revocation objects) kept.
    #[serde(default = "default_successful")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_runs_history_limit: i32,
    /// Finished failed runs (and their revocation objects) kept.
    #[serde(default = "default_failed")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_runs_history_limit: i32,
}

/// A key whose every new value starts a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretRef) != has(self.configMapRef)", "message": "set exactly one of secretRef and configMapRef"}
]))]
pub struct OnChangeTrigger {
    /// A Secret in the revocation's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,
    /// A ConfigMap in the revocation's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectRef>,
    /// The key watched (e.g. `previous`, where a rotation moves the credential it replaced).
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::SECRET_KEY_PATTERN))]
    pub key: String,
    /// How often the key is read. Revoker reads Secrets by name only (it may not list or watch
    /// them), so a change is seen within this many seconds.
    #[serde(default = "default_poll")]
    #[schemars(range(min = 1, max = 3600))]
    pub poll_seconds: i32,
    /// Runs start at least this many seconds apart; changes seen meanwhile are folded into one
    /// queued run, which revokes what the key holds when it starts.
    #[serde(default = "default_debounce")]
    #[schemars(range(min = 0, max = 3600))]
    pub debounce_seconds: i32,
    /// Also revoke the value the key holds when the revocation is first seen. By default that value
    /// is only recorded, and the first change starts the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_initial_value: Option<bool>,
}

impl OnChangeTrigger {
    /// `Secret name` or `ConfigMap name`, and whether it is a Secret.
    pub fn object(&self) -> (&'static str, &str) {
        match (&self.secret_ref, &self.config_map_ref) {
            (Some(secret), _) => ("Secret", secret.name.as_str()),
            (None, Some(map)) => ("ConfigMap", map.name.as_str()),
            (None, None) => ("Secret", ""),
        }
    }
}

/// A named object in the revocation's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::ids::OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// A cron schedule, with CronJob's semantics: runs never overlap (`concurrencyPolicy: Forbid`),
/// and of several missed times only the latest runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleTrigger {
    /// Five-field cron syntax (minute hour day-of-month month day-of-week), or `@hourly`,
    /// `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[schemars(length(min = 1, max = 128), regex(pattern = CRON_PATTERN))]
    pub cron: String,
    /// IANA time zone the schedule is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: Option<String>,
    /// A run that cannot start within this many seconds of its scheduled time is reported as
    /// missed instead of started late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,
}

/// What started a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(extend("maxLength" = 16))]
pub enum RunTrigger {
    /// The watched key changed.
    OnChange,
    /// The schedule came due.
    Schedule,
}

impl RunTrigger {
    /// The wire form, also the Event reason and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::OnChange => "OnChange",
            RunTrigger::Schedule => "Schedule",
        }
    }
}

/// One run of a triggered revocation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The run's id: `c-` and 12 hex digits of the fingerprint of the changed value, or `s-` and
    /// the scheduled time in Unix minutes.
    pub id: String,
    /// What started it.
    pub trigger: RunTrigger,
    /// Name of the revocation object that executes it (same kind and namespace).
    pub revocation: String,
    /// `sha256:` fingerprint of the value that started it (onChange); never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The scheduled time (schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,
    /// When the run was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The run's phase.
    #[serde(default)]
    pub phase: Phase,
    /// The reason of its `Succeeded` condition (e.g. Revoked, TargetChanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Provider calls it recorded.
    #[serde(default)]
    pub attempts: i32,
    /// What the provider answered to its last call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_result: Option<ProviderResult>,
}

/// A run waiting to start: queued behind a run in progress, the debounce, or `spec.suspend`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRun {
    /// What asked for it.
    pub trigger: RunTrigger,
    /// Fingerprint of the changed value (onChange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The scheduled time (schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,
    /// When it was queued.
    pub since: Time,
}

/// Where the trigger of a triggered revocation stands. Kept in status, so a restart or another
/// leader carries on from it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// Fingerprint of the value the watched key held when last read (none: missing or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_fingerprint: Option<String>,
    /// Fingerprints of the values runs were started for, newest last (at most 100): a value is
    /// never revoked twice, whatever the key holds later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled_fingerprints: Vec<String>,
    /// The one run queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRun>,
    /// The last scheduled time that was started or reported missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The next scheduled time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// Scheduled times that were missed (not started within startingDeadlineSeconds, or while
    /// the operator was down), in total.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed_runs: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
