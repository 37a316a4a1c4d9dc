//! Receipts: after a successful revocation, what a read-only look at the target showed, written
//! with the result (`status.receipt` and the `Verified` condition). A read-back that shows the
//! target still active is loud (Stalled, a Warning Event, a metric) and never repeats the call.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::status::{Stamp, set_condition};
use crate::api::{ConditionStatus, ConditionType, Reason, Receipt, RevocationStatus};
use crate::outcome::{Outcome, ProviderError};
use crate::providers::Verification;

/// A receipt and the reason of the `Verified` condition it gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What goes into status.
    pub receipt: Receipt,
    /// Verified, NotApplied, NoReadBack or VerificationUnavailable.
    pub reason: Reason,
}

/// The receipt of revoking `target` (the revocation's target in words) after `outcome`, from
/// what the read-back found at `now`.
pub fn verdict(target: &str, outcome: &Outcome, found: Result<Verification, ProviderError>, now: Timestamp) -> Verdict {
    let target_fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(target.as_bytes())));
    let (reason, method, at, verification_request_id) = match found {
        Ok(Verification::Verified { how, request_id }) => (Reason::Verified, how, Some(now), request_id),
        Ok(Verification::NotApplied { how, request_id }) => (Reason::NotApplied, how, Some(now), request_id),
        Ok(Verification::NoReadBack { why }) => (Reason::NoReadBack, why, None, None),
        Err(e) => (
            Reason::VerificationUnavailable,
            format!("the read-back failed ({}): {}", e.reason, e.message),
            Some(now),
            e.request_id,
        ),
    };
    Verdict {
        receipt: Receipt {
            result: reason.as_str().into(),
            verified_at: at.map(Time),
            method,
            request_id: outcome.request_id.clone(),
            verification_request_id,
            target_fingerprint,
        },
        reason,
    }
}

/// Write the receipt into a succeeded status: the `Verified` condition, and for NotApplied the
/// kstatus trio turned to Stalled with a message that says what to do.
pub fn apply(next: &mut RevocationStatus, verdict: &Verdict, stamp: Stamp) {
    let reason = verdict.reason;
    let c = &mut next.conditions;
    let (value, said) = match reason {
        Reason::Verified => (ConditionStatus::True, verdict.receipt.method.as_str()),
        Reason::NotApplied => (ConditionStatus::False, verdict.receipt.method.as_str()),
        _ => (ConditionStatus::Unknown, verdict.receipt.method.as_str()),
    };
    set_condition(c, ConditionType::Verified, value, reason, said, stamp);
    if reason == Reason::NotApplied {
        let message = format!(
            "the provider answered success, but the read-back shows the target still active ({}); the revocation is not repeated: check the provider, then create a new revocation",
            verdict.receipt.method
        );
        set_condition(c, ConditionType::Ready, ConditionStatus::False, reason, "", stamp);
        set_condition(c, ConditionType::Reconciling, ConditionStatus::False, reason, "", stamp);
        set_condition(
            c,
            ConditionType::Stalled,
            ConditionStatus::True,
            reason,
            &message,
            stamp,
        );
        next.message = Some(message);
    }
    next.receipt = Some(verdict.receipt.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeKind;

    fn outcome() -> Outcome {
        Outcome {
            kind: OutcomeKind::Revoked,
            http_status: Some(204),
            request_id: Some("req-1".into()),
            message: "revoked".into(),
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            generation: Some(1),
            now: Timestamp::UNIX_EPOCH,
        }
    }

    fn condition<'a>(status: &'a RevocationStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).expect(type_);
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_confirmed_revocation_gets_a_verified_receipt() {
        let found = Ok(Verification::Verified {
            how: "GET x: gone".into(),
            request_id: Some("req-2".into()),
        });
        let v = verdict("named token abc", &outcome(), found, Timestamp::UNIX_EPOCH);
        let mut status = RevocationStatus::default();
        apply(&mut status, &v, stamp());
        let receipt = status.receipt.as_ref().expect("a receipt");
        assert_eq!(receipt.result, "Verified");
        assert_eq!(receipt.request_id.as_deref(), Some("req-1"));
        assert_eq!(receipt.verification_request_id.as_deref(), Some("req-2"));
        assert!(receipt.target_fingerprint.starts_with("sha256:") && receipt.target_fingerprint.len() == 71);
        assert!(!receipt.target_fingerprint.contains("abc"));
        assert_eq!(condition(&status, "Verified"), ("True", "Verified"));
    }

    #[test]
    fn a_revocation_the_provider_did_not_apply_is_stalled_and_says_so() {
        let found = Ok(Verification::NotApplied {
            how: "get_named_token: named token abc reads revoked: false".into(),
            request_id: None,
        });
        let v = verdict("named token abc", &outcome(), found, Timestamp::UNIX_EPOCH);
        let mut status = RevocationStatus::default();
        apply(&mut status, &v, stamp());
        assert_eq!(condition(&status, "Verified"), ("False", "NotApplied"));
        assert_eq!(condition(&status, "Stalled"), ("True", "NotApplied"));
        assert_eq!(condition(&status, "Ready"), ("False", "NotApplied"));
        assert!(status.message.unwrap_or_default().contains("not repeated"));
    }

    #[test]
    fn no_read_back_and_a_failed_read_back_leave_verified_unknown() {
        let none = verdict(
            "x",
            &outcome(),
            Ok(Verification::NoReadBack { why: "none".into() }),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            (none.reason, none.receipt.verified_at.is_none()),
            (Reason::NoReadBack, true)
        );
        let failed = verdict(
            "x",
            &outcome(),
            Err(ProviderError::transient(Reason::Timeout, "slow", None)),
            Timestamp::UNIX_EPOCH,
        );
        let mut status = RevocationStatus::default();
        apply(&mut status, &failed, stamp());
        assert_eq!(condition(&status, "Verified"), ("Unknown", "VerificationUnavailable"));
        assert!(status.conditions.iter().all(|c| c.type_ != "Stalled"));
    }
}
