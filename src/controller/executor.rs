//! Which operator instance makes an attempt, and whether another instance may still be making the
//! one a revocation's status shows in progress.
//!
//! Each attempt records its executor (identity and leader Lease) before the provider is called. An
//! instance that finds another's attempt in progress — it became the leader, or a relabelled
//! revocation moved into its shard — looks at that instance's Lease: while the Lease is still held
//! by it, the call may be under way and its result is still to come, so no second attempt starts.
//! A Lease that expired or changed hands means the instance is gone: the attempt is repeated, as
//! after a crash.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{Api, Client};

use crate::api::{ConditionType, Executor, Phase, Reason, RevocationStatus};

/// This operator instance, as recorded with each attempt it makes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    /// Identity in the Lease (Pod name, or host name and process id).
    pub identity: String,
    /// The leader Lease this instance runs under: namespace and name (none without leader election).
    pub lease: Option<(String, String)>,
}

impl Instance {
    /// What an attempt records about its executor.
    pub fn executor(&self) -> Executor {
        Executor {
            identity: self.identity.clone(),
            lease: self.lease.as_ref().map(|(ns, name)| format!("{ns}/{name}")),
        }
    }
}

/// Another instance whose attempt may still be under way.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy {
    /// Who: `identity (Lease namespace/name)`.
    pub executor: String,
    /// Until the Lease would lapse unless renewed.
    pub for_at_most: Duration,
}

/// The attempt `status` shows in progress, when another instance recorded it and still holds its
/// Lease; None when this instance may make the next attempt.
pub async fn busy_elsewhere(
    client: &Client,
    me: &Instance,
    status: &RevocationStatus,
    now: Timestamp,
) -> Result<Option<Busy>, kube::Error> {
    let Some(executor) = attempt_in_progress(status) else {
        return Ok(None);
    };
    if executor.identity == me.identity {
        return Ok(None);
    }
    let Some((namespace, name)) = executor.lease.as_deref().and_then(|l| l.split_once('/')) else {
        return Ok(None);
    };
    let lease = match Api::<Lease>::namespaced(client.clone(), namespace).get_opt(name).await {
        Ok(lease) => lease,
        // Not allowed to read it: its holder cannot be known; repeat as after a crash.
        Err(kube::Error::Api(s)) if s.code == 403 => {
            tracing::warn!(lease = %format!("{namespace}/{name}"), "cannot read the Lease of the instance that recorded the attempt in progress (grant get on it); repeating the attempt");
            None
        }
        Err(e) => return Err(e),
    };
    Ok(lease
        .and_then(|lease| held_by(&lease, &executor.identity, now))
        .map(|left| Busy {
            executor: format!("{} (Lease {namespace}/{name})", executor.identity),
            for_at_most: left,
        }))
}

/// The executor of an attempt recorded but not answered yet (not a scheduled retry, not a wait).
fn attempt_in_progress(status: &RevocationStatus) -> Option<&Executor> {
    let attempting = status.phase == Phase::Running
        && status.next_retry_time.is_none()
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Succeeded.as_str() && c.reason == Reason::Attempting.as_str());
    attempting.then_some(status.executor.as_ref()).flatten()
}

/// How long `lease` stays `identity`'s unless renewed; None when it is someone else's or lapsed.
fn held_by(lease: &Lease, identity: &str, now: Timestamp) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let lapses = renewed
        .checked_add(SignedDuration::from_secs(i64::from(spec.lease_duration_seconds?)))
        .ok()?;
    (lapses > now).then(|| Duration::try_from(lapses.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_lease_renewed_within_its_duration_is_held_by_its_holder_only() {
        let now = Timestamp::from_second(1_000).expect("time");
        let renewed = Timestamp::from_second(995).expect("time");
        assert_eq!(
            held_by(&lease("a", renewed, 15), "a", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(held_by(&lease("a", renewed, 15), "b", now), None);
        assert_eq!(held_by(&lease("a", renewed, 5), "a", now), None, "lapsed");
    }
}
