//! Pure status transitions of a revocation. Each function takes the current status and returns
//! the next one; the reconciler decides which applies and writes it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{ConditionStatus, ConditionType, Phase, ProviderResult, Reason, RevocationStatus};
use crate::outcome::{Outcome, ProviderError};

use ConditionStatus::{False, True, Unknown};
use ConditionType::{Failed, Succeeded};

/// Set a condition, keeping `lastTransitionTime` when the status value does not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let (type_, status) = (type_.as_str(), status.as_str());
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
    reason: Reason,
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
        Succeeded,
        Unknown,
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
        Succeeded,
        Unknown,
        Reason::Attempting,
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
    set_condition(
        &mut next.conditions,
        Succeeded,
        True,
        outcome.kind.reason(),
        &outcome.message,
        generation,
        now,
    );
    next.conditions.retain(|c| c.type_ != Failed.as_str());
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
    reason: Reason,
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
    set_condition(&mut next.conditions, Succeeded, False, reason, message, generation, now);
    set_condition(&mut next.conditions, Failed, True, reason, message, generation, now);
    next
}

/// Failed because of a provider error; `reason` is the error's own or `BackoffLimitExceeded`.
pub fn failed_by(
    current: &RevocationStatus,
    reason: Reason,
    err: &ProviderError,
    operation: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> RevocationStatus {
    failed(
        current,
        reason,
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
        Succeeded,
        Unknown,
        err.reason,
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
    use crate::outcome::{ErrorClass, OutcomeKind};

    fn t(sec: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + sec).unwrap()
    }

    fn cond(s: &RevocationStatus, type_: ConditionType) -> &Condition {
        condition(s, type_).unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn an_attempt_is_counted_and_timestamped_before_the_call() {
        let s0 = RevocationStatus::default();
        let s1 = attempt_recorded(&s0, "JWKS of x", Some(1), t(0));
        assert_eq!((s1.phase, s1.attempts), (Phase::Running, 1));
        assert_eq!(s1.start_time, Some(Time(t(0))));
        assert_eq!(cond(&s1, Succeeded).status, "Unknown");
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
        let s1 = attempt_recorded(&RevocationStatus::default(), "x", Some(1), t(0));
        let err = ProviderError::permanent(Reason::Forbidden, "the API key needs Organization Owner").with_http(
            403,
            None,
            Some("USER_UNAUTHORIZED".into()),
        );
        let s2 = failed_by(&s1, err.reason, &err, "revokeJwksFromIdentityProvider", Some(1), t(1));
        assert_eq!(s2.phase, Phase::Failed);
        assert_eq!(cond(&s2, Succeeded).status, "False");
        assert_eq!(cond(&s2, Failed).reason, "Forbidden");
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
        assert_eq!(cond(&s2, Succeeded).reason, "ProviderUnavailable");
        let s3 = attempt_recorded(&s2, "x", Some(1), t(30));
        assert_eq!(s3.next_retry_time, None);
    }

    #[test]
    fn waiting_keeps_pending_before_any_attempt_and_keeps_transition_time() {
        let s1 = waiting(
            &RevocationStatus::default(),
            Reason::CredentialsUnavailable,
            "Secret ns/x not found",
            Some(1),
            t(0),
        );
        assert_eq!(s1.phase, Phase::Pending);
        let s2 = waiting(
            &s1,
            Reason::CredentialsUnavailable,
            "Secret ns/x not found",
            Some(1),
            t(50),
        );
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
            None,
            t(0),
        );
        assert!(conditions[0].message.len() <= 1024 + "…".len());
    }
}
