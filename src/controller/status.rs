//! Pure status transitions of a revocation. Each function takes the current status and returns
//! the next one; the reconciler decides which applies and writes it.
//!
//! Conditions follow the kstatus convention (`Ready`, `Reconciling`, `Stalled`) and keep
//! `Succeeded`/`Failed` for `kubectl wait`; a dry run reports `DryRun` and never sets `Succeeded`
//! to True. The state's message is written once: into the condition that is True among `Ready`,
//! `Reconciling` and `Stalled` (and into `status.message`); the other conditions carry the reason only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{ConditionStatus, ConditionType, Phase, ProviderResult, Reason, RevocationStatus};
use crate::outcome::{Outcome, OutcomeKind, ProviderError};

use ConditionStatus::{False, True, Unknown};
use ConditionType::{DryRun, Failed, Ready, Reconciling, Stalled, Succeeded};

/// When and for which generation a status is written.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// metadata.generation of the object the status is computed from.
    pub generation: Option<i64>,
    /// The clock.
    pub now: Timestamp,
}

/// Set a condition, keeping `lastTransitionTime` when the status value does not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: &str,
    stamp: Stamp,
) {
    let (type_, status) = (type_.as_str(), status.as_str());
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(stamp.now));
    let condition = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: truncate(message, 1024),
        observed_generation: stamp.generation,
        last_transition_time: transition,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

fn remove_condition(conditions: &mut Vec<Condition>, type_: ConditionType) {
    conditions.retain(|c| c.type_ != type_.as_str());
}

/// The condition of a type, if set.
pub fn condition(status: &RevocationStatus, type_: ConditionType) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == type_.as_str())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Where a revocation stands, as the conditions say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting, calling, or a retry scheduled.
    InProgress,
    /// The goal was reached: revoked, already revoked, or a dry run passed.
    Done { dry_run: bool },
    /// Failed for good.
    Failed { dry_run: bool },
}

/// Write every condition for `state`: the kstatus trio, `Succeeded`/`Failed`, and `DryRun`.
fn set_conditions(next: &mut RevocationStatus, state: State, reason: Reason, message: &str, stamp: Stamp) {
    let c = &mut next.conditions;
    let (ready, reconciling, stalled) = match state {
        State::InProgress => (False, True, False),
        State::Done { .. } => (True, False, False),
        State::Failed { .. } => (False, False, True),
    };
    let said = |status: ConditionStatus| if status == True { message } else { "" };
    set_condition(c, Ready, ready, reason, said(ready), stamp);
    set_condition(c, Reconciling, reconciling, reason, said(reconciling), stamp);
    set_condition(c, Stalled, stalled, reason, said(stalled), stamp);
    let succeeded = match state {
        State::InProgress | State::Done { dry_run: true } => Unknown,
        State::Done { dry_run: false } => True,
        State::Failed { .. } => False,
    };
    set_condition(c, Succeeded, succeeded, reason, "", stamp);
    match state {
        State::Failed { .. } => set_condition(c, Failed, True, reason, "", stamp),
        _ => remove_condition(c, Failed),
    }
    match state {
        State::Done { dry_run: true } => set_condition(c, DryRun, True, reason, "", stamp),
        State::Failed { dry_run: true } => set_condition(c, DryRun, False, reason, "", stamp),
        _ => remove_condition(c, DryRun),
    }
}

fn base(current: &RevocationStatus, stamp: Stamp) -> RevocationStatus {
    RevocationStatus {
        observed_generation: stamp.generation,
        ..current.clone()
    }
}

/// Waiting without burning retries: suspended, credentials unavailable, provider not ready.
/// Phase stays Pending before the first attempt and Running after one.
pub fn waiting(current: &RevocationStatus, reason: Reason, message: &str, stamp: Stamp) -> RevocationStatus {
    let mut next = base(current, stamp);
    next.phase = if current.attempts > 0 {
        Phase::Running
    } else {
        Phase::Pending
    };
    next.message = Some(message.to_string());
    set_conditions(&mut next, State::InProgress, reason, message, stamp);
    next
}

/// An attempt is about to be made: recorded before the provider is called.
pub fn attempt_recorded(current: &RevocationStatus, target: &str, stamp: Stamp) -> RevocationStatus {
    let mut next = base(current, stamp);
    next.phase = Phase::Running;
    next.attempts = current.attempts + 1;
    next.start_time = current.start_time.clone().or(Some(Time(stamp.now)));
    next.last_attempt_time = Some(Time(stamp.now));
    next.next_retry_time = None;
    next.target = Some(target.to_string());
    let message = format!("attempt {} of {target}", next.attempts);
    next.message = Some(message.clone());
    set_conditions(&mut next, State::InProgress, Reason::Attempting, &message, stamp);
    next
}

/// The provider confirmed the revocation (or an already revoked target, or a passed dry run).
pub fn succeeded(current: &RevocationStatus, outcome: &Outcome, operation: &str, stamp: Stamp) -> RevocationStatus {
    let mut next = base(current, stamp);
    next.phase = Phase::Succeeded;
    next.completion_time = Some(Time(stamp.now));
    next.next_retry_time = None;
    next.message = Some(outcome.message.clone());
    next.provider_result = Some(ProviderResult {
        operation: Some(operation.to_string()),
        http_status: outcome.http_status,
        request_id: outcome.request_id.clone(),
        error_code: None,
    });
    let state = State::Done {
        dry_run: outcome.kind == OutcomeKind::DryRun,
    };
    set_conditions(&mut next, state, outcome.kind.reason(), &outcome.message, stamp);
    next
}

fn provider_result(err: &ProviderError, operation: &str) -> ProviderResult {
    ProviderResult {
        operation: Some(operation.to_string()),
        http_status: err.http_status,
        request_id: err.request_id.clone(),
        error_code: err.error_code.clone(),
    }
}

/// Failed for good because of `err`; `reason` is the error's own or `BackoffLimitExceeded`.
pub fn failed(
    current: &RevocationStatus,
    reason: Reason,
    err: &ProviderError,
    operation: &str,
    dry_run: bool,
    stamp: Stamp,
) -> RevocationStatus {
    let mut next = base(current, stamp);
    next.phase = Phase::Failed;
    next.completion_time = Some(Time(stamp.now));
    next.next_retry_time = None;
    next.message = Some(err.message.clone());
    next.provider_result = Some(provider_result(err, operation));
    set_conditions(&mut next, State::Failed { dry_run }, reason, &err.message, stamp);
    next
}

/// A transient error with retries left: the next attempt is due at `retry_at`.
pub fn retry_scheduled(
    current: &RevocationStatus,
    err: &ProviderError,
    operation: &str,
    retry_at: Timestamp,
    stamp: Stamp,
) -> RevocationStatus {
    let mut next = base(current, stamp);
    next.phase = Phase::Running;
    next.next_retry_time = Some(Time(retry_at));
    let message = format!(
        "{}; retrying at {}",
        err.message,
        retry_at.round(k8s_openapi::jiff::Unit::Second).unwrap_or(retry_at)
    );
    next.message = Some(message.clone());
    next.provider_result = Some(provider_result(err, operation));
    set_conditions(&mut next, State::InProgress, err.reason, &message, stamp);
    next
}

/// Retries left after `attempts` recorded attempts with the given limit.
pub fn retries_left(attempts: i32, backoff_limit: i32) -> bool {
    // The first attempt is not a retry: attempts = 1 + retries.
    attempts <= backoff_limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ErrorClass, OutcomeKind};

    fn st(sec: i64) -> Stamp {
        Stamp {
            generation: Some(1),
            now: t(sec),
        }
    }

    fn t(sec: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + sec).unwrap()
    }

    fn cond(s: &RevocationStatus, type_: ConditionType) -> &Condition {
        condition(s, type_).unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn an_attempt_is_counted_and_timestamped_before_the_call() {
        let s0 = RevocationStatus::default();
        let s1 = attempt_recorded(&s0, "JWKS of x", st(0));
        assert_eq!((s1.phase, s1.attempts), (Phase::Running, 1));
        assert_eq!(s1.start_time, Some(Time(t(0))));
        assert_eq!(cond(&s1, Succeeded).status, "Unknown");
        let s2 = attempt_recorded(&s1, "JWKS of x", st(10));
        assert_eq!(s2.attempts, 2);
        assert_eq!(s2.start_time, Some(Time(t(0))), "start time is the first attempt's");
        assert_eq!(s2.last_attempt_time, Some(Time(t(10))));
    }

    #[test]
    fn success_sets_the_condition_kubectl_wait_uses_and_clears_failure() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let outcome = Outcome {
            kind: OutcomeKind::AlreadyRevoked,
            http_status: Some(400),
            request_id: Some("req-1".into()),
            message: "already removed".into(),
        };
        let s2 = succeeded(&s1, &outcome, "deleteAuthMethod", st(5));
        assert_eq!(s2.phase, Phase::Succeeded);
        let c = cond(&s2, Succeeded);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "AlreadyRevoked"));
        assert_eq!(c.last_transition_time, Time(t(5)));
        assert_eq!(s2.completion_time, Some(Time(t(5))));
        assert_eq!(
            s2.provider_result.as_ref().and_then(|r| r.request_id.as_deref()),
            Some("req-1")
        );
        assert!(condition(&s2, Failed).is_none());
    }

    #[test]
    fn permanent_failure_sets_both_conditions_with_the_specific_reason() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let err = ProviderError::permanent(Reason::Forbidden, "the API key needs Organization Owner").with_http(
            403,
            None,
            Some("USER_UNAUTHORIZED".into()),
        );
        let s2 = failed(&s1, err.reason, &err, "revokeJwksFromIdentityProvider", false, st(1));
        assert_eq!(s2.phase, Phase::Failed);
        assert_eq!(cond(&s2, Succeeded).status, "False");
        assert_eq!(cond(&s2, Failed).reason, "Forbidden");
        assert_eq!(s2.provider_result.as_ref().and_then(|r| r.http_status), Some(403));
        assert!(s2.message.as_deref().unwrap_or_default().contains("Organization Owner"));
    }

    #[test]
    fn a_retry_keeps_running_with_the_due_time_and_reason() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let err = ProviderError::new(
            ErrorClass::Transient { retry_after: None },
            Reason::ProviderUnavailable,
            "503 from the provider",
        );
        let s2 = retry_scheduled(&s1, &err, "op", t(30), st(1));
        assert_eq!(s2.phase, Phase::Running);
        assert_eq!(s2.next_retry_time, Some(Time(t(30))));
        assert_eq!(cond(&s2, Succeeded).reason, "ProviderUnavailable");
        let s3 = attempt_recorded(&s2, "x", st(30));
        assert_eq!(s3.next_retry_time, None);
    }

    #[test]
    fn waiting_keeps_pending_before_any_attempt_and_keeps_transition_time() {
        let s1 = waiting(
            &RevocationStatus::default(),
            Reason::CredentialsUnavailable,
            "Secret ns/x not found",
            st(0),
        );
        assert_eq!(s1.phase, Phase::Pending);
        let s2 = waiting(&s1, Reason::CredentialsUnavailable, "Secret ns/x not found", st(50));
        assert_eq!(s1, s2, "repeating a wait changes nothing, so nothing is written");
    }

    #[test]
    fn retry_budget_counts_the_first_attempt_separately() {
        assert!(retries_left(1, 1));
        assert!(!retries_left(2, 1));
        assert!(!retries_left(1, 0));
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let mut conditions = vec![];
        set_condition(
            &mut conditions,
            Succeeded,
            False,
            Reason::BadRequest,
            &"é".repeat(2000),
            st(0),
        );
        assert!(conditions[0].message.len() <= 1024 + "…".len());
    }

    /// (type, status, reason, has message) of every condition, sorted by type.
    fn summary(s: &RevocationStatus) -> Vec<(String, String, String, bool)> {
        let mut out: Vec<_> = s
            .conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    !c.message.is_empty(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn row(type_: &str, status: &str, reason: &str, message: bool) -> (String, String, String, bool) {
        (type_.into(), status.into(), reason.into(), message)
    }

    #[test]
    fn in_progress_is_reconciling_with_the_message_there_only() {
        let s = waiting(&RevocationStatus::default(), Reason::Suspended, "suspended", st(0));
        assert_eq!(
            summary(&s),
            vec![
                row("Ready", "False", "Suspended", false),
                row("Reconciling", "True", "Suspended", true),
                row("Stalled", "False", "Suspended", false),
                row("Succeeded", "Unknown", "Suspended", false),
            ]
        );
    }

    #[test]
    fn a_revocation_that_reached_its_goal_is_ready_and_succeeded() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let outcome = Outcome {
            kind: OutcomeKind::Revoked,
            http_status: Some(204),
            request_id: None,
            message: "revoked".into(),
        };
        let s2 = succeeded(&s1, &outcome, "op", st(1));
        assert_eq!(
            summary(&s2),
            vec![
                row("Ready", "True", "Revoked", true),
                row("Reconciling", "False", "Revoked", false),
                row("Stalled", "False", "Revoked", false),
                row("Succeeded", "True", "Revoked", false),
            ]
        );
    }

    #[test]
    fn a_failure_is_stalled_and_failed() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let err = ProviderError::permanent(Reason::Unauthorized, "the key was rejected");
        let s2 = failed(&s1, err.reason, &err, "op", false, st(1));
        assert_eq!(
            summary(&s2),
            vec![
                row("Failed", "True", "Unauthorized", false),
                row("Ready", "False", "Unauthorized", false),
                row("Reconciling", "False", "Unauthorized", false),
                row("Stalled", "True", "Unauthorized", true),
                row("Succeeded", "False", "Unauthorized", false),
            ]
        );
    }

    #[test]
    fn a_passed_dry_run_never_sets_succeeded_true() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", st(0));
        let outcome = Outcome {
            kind: OutcomeKind::DryRun,
            http_status: Some(200),
            request_id: None,
            message: "would revoke x; nothing was revoked".into(),
        };
        let s2 = succeeded(&s1, &outcome, "op", st(1));
        assert_eq!(s2.phase, Phase::Succeeded);
        assert_eq!(
            summary(&s2),
            vec![
                row("DryRun", "True", "DryRunSucceeded", false),
                row("Ready", "True", "DryRunSucceeded", true),
                row("Reconciling", "False", "DryRunSucceeded", false),
                row("Stalled", "False", "DryRunSucceeded", false),
                row("Succeeded", "Unknown", "DryRunSucceeded", false),
            ]
        );
        let err = ProviderError::permanent(Reason::Forbidden, "no role");
        let s3 = failed(&s1, err.reason, &err, "op", true, st(1));
        assert_eq!(cond(&s3, DryRun).status, "False");
        assert_eq!(cond(&s3, Failed).status, "True");
    }
}
