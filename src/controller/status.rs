//! Pure status transitions of a revocation. Each function takes the current status and returns
//! the next one; the reconciler decides which applies and writes it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{Phase, ProviderResult, RevocationStatus};
use crate::providers::{Outcome, OutcomeKind, ProviderError};

/// Condition type that `kubectl wait --for=condition=Succeeded` waits on.
pub const SUCCEEDED: &str = "Succeeded";
/// Condition type set (True) when the revocation failed for good.
pub const FAILED: &str = "Failed";

/// Reason of a revocation waiting for its approval gate.
pub const REASON_SUSPENDED: &str = "Suspended";
/// Reason while an attempt is recorded and the provider is being called.
pub const REASON_ATTEMPTING: &str = "Attempting";
/// Reason of a revoked target.
pub const REASON_REVOKED: &str = "Revoked";
/// Reason of a target the provider reported as already revoked.
pub const REASON_ALREADY_REVOKED: &str = "AlreadyRevoked";
/// Reason of a passed dry run.
pub const REASON_DRY_RUN: &str = "DryRunSucceeded";
/// Reason once retries ran out.
pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";

/// Set a condition, keeping `lastTransitionTime` when the status value does not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    let condition = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: truncate(message, 1024),
        observed_generation: generation,
        last_transition_time: transition,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// The condition of a type, if set.
pub fn condition<'a>(status: &'a RevocationStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
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

fn base(current: &RevocationStatus, generation: Option<i64>) -> RevocationStatus {
    RevocationStatus {
        observed_generation: generation,
        ..current.clone()
    }
}

/// Waiting without burning retries: suspended, credentials unavailable, provider not ready.
/// Phase stays Pending before the first attempt and Running after one.
pub fn waiting(
    current: &RevocationStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    let mut next = base(current, generation);
    next.phase = if current.attempts > 0 {
        Phase::Running
    } else {
        Phase::Pending
    };
    next.message = Some(message.to_string());
    set_condition(
        &mut next.conditions,
        SUCCEEDED,
        "Unknown",
        reason,
        message,
        generation,
        now,
    );
    next
}

/// An attempt is about to be made: recorded before the provider is called.
pub fn attempt_recorded(
    current: &RevocationStatus,
    target: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    let mut next = base(current, generation);
    next.phase = Phase::Running;
    next.attempts = current.attempts + 1;
    next.start_time = current.start_time.clone().or(Some(Time(now)));
    next.last_attempt_time = Some(Time(now));
    next.next_retry_time = None;
    next.target = Some(target.to_string());
    let message = format!("attempt {} of {target}", next.attempts);
    next.message = Some(message.clone());
    set_condition(
        &mut next.conditions,
        SUCCEEDED,
        "Unknown",
        REASON_ATTEMPTING,
        &message,
        generation,
        now,
    );
    next
}

/// The provider confirmed the revocation (or an already revoked target, or a passed dry run).
pub fn succeeded(
    current: &RevocationStatus,
    outcome: &Outcome,
    operation: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    let mut next = base(current, generation);
    next.phase = Phase::Succeeded;
    next.completion_time = Some(Time(now));
    next.next_retry_time = None;
    next.message = Some(outcome.message.clone());
    next.provider_result = Some(ProviderResult {
        operation: Some(operation.to_string()),
        http_status: outcome.http_status,
        request_id: outcome.request_id.clone(),
        error_code: None,
    });
    let reason = match outcome.kind {
        OutcomeKind::Revoked => REASON_REVOKED,
        OutcomeKind::AlreadyRevoked => REASON_ALREADY_REVOKED,
        OutcomeKind::DryRun => REASON_DRY_RUN,
    };
    set_condition(
        &mut next.conditions,
        SUCCEEDED,
        "True",
        reason,
        &outcome.message,
        generation,
        now,
    );
    next.conditions.retain(|c| c.type_ != FAILED);
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

/// Failed for good: a permanent error, or the last transient one once retries ran out.
pub fn failed(
    current: &RevocationStatus,
    reason: &str,
    message: &str,
    result: Option<ProviderResult>,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    let mut next = base(current, generation);
    next.phase = Phase::Failed;
    next.completion_time = Some(Time(now));
    next.next_retry_time = None;
    next.message = Some(message.to_string());
    if result.is_some() {
        next.provider_result = result;
    }
    set_condition(
        &mut next.conditions,
        SUCCEEDED,
        "False",
        reason,
        message,
        generation,
        now,
    );
    set_condition(&mut next.conditions, FAILED, "True", reason, message, generation, now);
    next
}

/// Failed because of a provider error.
pub fn failed_by(
    current: &RevocationStatus,
    err: &ProviderError,
    operation: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    failed(
        current,
        err.reason.as_str(),
        &err.message,
        Some(provider_result(err, operation)),
        generation,
        now,
    )
}

/// A transient error with retries left: the next attempt is due at `retry_at`.
pub fn retry_scheduled(
    current: &RevocationStatus,
    err: &ProviderError,
    operation: &str,
    retry_at: Timestamp,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    let mut next = base(current, generation);
    next.phase = Phase::Running;
    next.next_retry_time = Some(Time(retry_at));
    let message = format!(
        "{}; retrying at {}",
        err.message,
        retry_at.round(k8s_openapi::jiff::Unit::Second).unwrap_or(retry_at)
    );
    next.message = Some(message.clone());
    next.provider_result = Some(provider_result(err, operation));
    set_condition(
        &mut next.conditions,
        SUCCEEDED,
        "Unknown",
        err.reason.as_str(),
        &message,
        generation,
        now,
    );
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
    use crate::providers::{ErrorClass, Reason};

    fn t(sec: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + sec).unwrap()
    }

    fn cond<'a>(s: &'a RevocationStatus, type_: &str) -> &'a Condition {
        condition(s, type_).unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn an_attempt_is_counted_and_timestamped_before_the_call() {
        let s0 = RevocationStatus::default();
        let s1 = attempt_recorded(&s0, "JWKS of x", Some(1), t(0));
        assert_eq!((s1.phase, s1.attempts), (Phase::Running, 1));
        assert_eq!(s1.start_time, Some(Time(t(0))));
        assert_eq!(cond(&s1, SUCCEEDED).status, "Unknown");
        let s2 = attempt_recorded(&s1, "JWKS of x", Some(1), t(10));
        assert_eq!(s2.attempts, 2);
        assert_eq!(s2.start_time, Some(Time(t(0))), "start time is the first attempt's");
        assert_eq!(s2.last_attempt_time, Some(Time(t(10))));
    }

    #[test]
    fn success_sets_the_condition_kubectl_wait_uses_and_clears_failure() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", Some(1), t(0));
        let outcome = Outcome {
            kind: OutcomeKind::AlreadyRevoked,
            http_status: Some(400),
            request_id: Some("req-1".into()),
            message: "already removed".into(),
        };
        let s2 = succeeded(&s1, &outcome, "deleteAuthMethod", Some(1), t(5));
        assert_eq!(s2.phase, Phase::Succeeded);
        let c = cond(&s2, SUCCEEDED);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", REASON_ALREADY_REVOKED));
        assert_eq!(c.last_transition_time, Time(t(5)));
        assert_eq!(s2.completion_time, Some(Time(t(5))));
        assert_eq!(
            s2.provider_result.as_ref().and_then(|r| r.request_id.as_deref()),
            Some("req-1")
        );
        assert!(condition(&s2, FAILED).is_none());
    }

    #[test]
    fn permanent_failure_sets_both_conditions_with_the_specific_reason() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", Some(1), t(0));
        let err = ProviderError::permanent(Reason::Forbidden, "the API key needs Organization Owner").with_http(
            403,
            None,
            Some("USER_UNAUTHORIZED".into()),
        );
        let s2 = failed_by(&s1, &err, "revokeJwksFromIdentityProvider", Some(1), t(1));
        assert_eq!(s2.phase, Phase::Failed);
        assert_eq!(cond(&s2, SUCCEEDED).status, "False");
        assert_eq!(cond(&s2, FAILED).reason, "Forbidden");
        assert_eq!(s2.provider_result.as_ref().and_then(|r| r.http_status), Some(403));
        assert!(s2.message.as_deref().unwrap_or_default().contains("Organization Owner"));
    }

    #[test]
    fn a_retry_keeps_running_with_the_due_time_and_reason() {
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", Some(1), t(0));
        let err = ProviderError::new(
            ErrorClass::Transient { retry_after: None },
            Reason::ProviderUnavailable,
            "503 from the provider",
        );
        let s2 = retry_scheduled(&s1, &err, "op", t(30), Some(1), t(1));
        assert_eq!(s2.phase, Phase::Running);
        assert_eq!(s2.next_retry_time, Some(Time(t(30))));
        assert_eq!(cond(&s2, SUCCEEDED).reason, "ProviderUnavailable");
        let s3 = attempt_recorded(&s2, "x", Some(1), t(30));
        assert_eq!(s3.next_retry_time, None);
    }

    #[test]
    fn waiting_keeps_pending_before_any_attempt_and_keeps_transition_time() {
        let s1 = waiting(
            &RevocationStatus::default(),
            "CredentialsUnavailable",
            "Secret ns/x not found",
            Some(1),
            t(0),
        );
        assert_eq!(s1.phase, Phase::Pending);
        let s2 = waiting(&s1, "CredentialsUnavailable", "Secret ns/x not found", Some(1), t(50));
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
        set_condition(&mut conditions, SUCCEEDED, "False", "X", &"é".repeat(2000), None, t(0));
        assert!(conditions[0].message.len() <= 1024 + "…".len());
    }
}
