//! Reconciler of the three revocation kinds: the Job-like lifecycle of DESIGN.md.
//!
//! Safety rule: an attempt is written to status (with the object's resourceVersion as a
//! precondition) before the provider is called, and a finished revocation is never called again.
//! A stale cached object therefore cannot start a second call: its status write conflicts.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::resources::{Planned, Revocation};
use super::status::{self, retries_left};
use super::{Context, Error, backoff};
use crate::api::{Phase, RevocationStatus};
use crate::credentials::{self, SecretLocation};
use crate::providers::{AttemptContext, ErrorClass, Operation, OutcomeKind, ProviderError, Reason};
use crate::telemetry::{KindLabels, METRICS, RetryLabels, RevocationLabels};

/// How often a waiting revocation (credentials, provider, host) looks again.
pub const WAIT_RECHECK: Duration = Duration::from_secs(10);

/// Reconcile one revocation.
pub async fn reconcile<K: Revocation>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    METRICS
        .reconciles
        .get_or_create(&KindLabels { kind: K::KIND.into() })
        .inc();
    let namespace = obj.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let status = obj.revocation_status().cloned().unwrap_or_default();
    let now = Timestamp::now();
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if status.phase.is_finished() {
        return expire_if_due(&api, obj.as_ref(), &status, now).await;
    }
    let life = obj.lifecycle();
    if life.suspend && status.attempts == 0 {
        let message = "suspended: set spec.suspend to false to run this revocation";
        write_waiting(
            &api,
            &ctx,
            obj.as_ref(),
            &status,
            status::REASON_SUSPENDED,
            message,
            now,
        )
        .await?;
        return Ok(Action::await_change());
    }
    if let Some(due) = status.next_retry_time.as_ref().map(|t| t.0)
        && due > now
    {
        return Ok(Action::requeue(to_std(due.duration_since(now))));
    }
    let planned = match obj.plan() {
        Ok(planned) => planned,
        Err(why) => {
            let err = ProviderError::permanent(Reason::InvalidProviderConfig, why);
            return fail(&api, &ctx, obj.as_ref(), &status, &err, "-", now).await;
        }
    };
    match prepare(&ctx, obj.as_ref(), &namespace, planned).await {
        Ok((client, op)) => execute(&api, &ctx, obj.as_ref(), &status, client, op, now).await,
        Err(err) if err.class == ErrorClass::Waiting => {
            write_waiting(
                &api,
                &ctx,
                obj.as_ref(),
                &status,
                err.reason.as_str(),
                &err.message,
                now,
            )
            .await?;
            Ok(Action::requeue(WAIT_RECHECK))
        }
        Err(err) => fail(&api, &ctx, obj.as_ref(), &status, &err, "-", now).await,
    }
}

/// Resolve the provider and the operation (reading a secret target if there is one).
async fn prepare<K: Revocation>(
    ctx: &Context,
    obj: &K,
    namespace: &str,
    planned: Planned,
) -> Result<(Arc<dyn crate::providers::Provider>, Operation), ProviderError> {
    let life = obj.lifecycle();
    let resolved = ctx.registry.resolve(life.provider_ref, namespace).await?;
    if resolved.provider_type != planned.provider_type() {
        return Err(ProviderError::permanent(
            Reason::ProviderMismatch,
            format!(
                "the revocation has a {} block but provider {} is a {} provider",
                planned.provider_type(),
                life.provider_ref.name,
                resolved.provider_type
            ),
        ));
    }
    let op = match planned {
        Planned::Ready(op) => op,
        Planned::InfisicalTokenFromSecret { secret, token_auth } => {
            let at = SecretLocation {
                namespace,
                name: &secret.name,
            };
            let data = ctx.registry.read_secret(at).await?.data.unwrap_or_default();
            let token = credentials::secret_value(&data, &secret.key, at)?;
            Operation::InfisicalRevokeToken { token, token_auth }
        }
    };
    Ok((resolved.client, op))
}

/// Record the attempt, call the provider, record the result.
async fn execute<K: Revocation>(
    api: &Api<K>,
    ctx: &Context,
    obj: &K,
    status: &RevocationStatus,
    client: Arc<dyn crate::providers::Provider>,
    op: Operation,
    now: Timestamp,
) -> Result<Action, Error> {
    let life = obj.lifecycle();
    let generation = obj.meta().generation;
    if !retries_left(status.attempts, life.backoff_limit) {
        let err = ProviderError::permanent(Reason::ProviderUnavailable, "no retries left");
        return fail_with_reason(
            api,
            ctx,
            obj,
            status,
            status::REASON_BACKOFF_LIMIT,
            &err,
            op.name(),
            now,
        )
        .await;
    }
    let mut recorded = status::attempt_recorded(status, &op.target(), generation, now);
    recorded.provider_type = Some(client.provider_type().to_string());
    let Some(obj) = write_status(api, obj, recorded.clone()).await? else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let verb = if life.dry_run { "dry run" } else { "revocation" };
    info!(kind = K::KIND, object = %super::describe(&obj), attempt = recorded.attempts, target = %op.target(), "{verb} attempt");
    ctx.event(
        &obj,
        EventType::Normal,
        status::REASON_ATTEMPTING,
        "Revoke",
        format!("{verb} attempt {} of {}", recorded.attempts, op.target()),
    )
    .await;

    METRICS.in_flight.inc();
    let result = if life.dry_run {
        client.dry_run(&op).await
    } else {
        client
            .revoke(
                &op,
                AttemptContext {
                    earlier_attempt: status.attempts > 0,
                },
            )
            .await
    };
    METRICS.in_flight.dec();

    let now = Timestamp::now();
    let provider = client.provider_type().to_string();
    match result {
        Ok(outcome) => {
            let next = status::succeeded(&recorded, &outcome, op.name(), generation, now);
            let reason = status::condition(&next, status::SUCCEEDED)
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            write_status(api, &obj, next).await?;
            let result = match outcome.kind {
                OutcomeKind::Revoked => "succeeded",
                OutcomeKind::AlreadyRevoked => "already_revoked",
                OutcomeKind::DryRun => "dry_run",
            };
            count(K::KIND, &provider, result);
            info!(kind = K::KIND, object = %super::describe(&obj), reason, "{}", outcome.message);
            ctx.event(&obj, EventType::Normal, &reason, "Revoke", outcome.message)
                .await;
            Ok(after_finish(&obj))
        }
        Err(err) if err.is_transient() && retries_left(recorded.attempts, life.backoff_limit) => {
            let delay = backoff::retry_delay(recorded.attempts as u32, err.retry_after());
            let retry_at = retry_time(now, delay);
            write_status(
                api,
                &obj,
                status::retry_scheduled(&recorded, &err, op.name(), retry_at, generation, now),
            )
            .await?;
            METRICS
                .retries
                .get_or_create(&RetryLabels {
                    kind: K::KIND.into(),
                    provider,
                    reason: err.reason.as_str().into(),
                })
                .inc();
            warn!(kind = K::KIND, object = %super::describe(&obj), reason = %err.reason, delay_s = delay.as_secs(), "{}", err.message);
            ctx.event(
                &obj,
                EventType::Warning,
                err.reason.as_str(),
                "Revoke",
                format!("{}; retry in {}s", err.message, delay.as_secs()),
            )
            .await;
            Ok(Action::requeue(delay))
        }
        Err(err) if err.is_transient() => {
            let message = format!("gave up after {} attempts: {}", recorded.attempts, err.message);
            let err = ProviderError { message, ..err };
            fail_with_reason(
                api,
                ctx,
                &obj,
                &recorded,
                status::REASON_BACKOFF_LIMIT,
                &err,
                op.name(),
                now,
            )
            .await
        }
        Err(err) if err.class == ErrorClass::Waiting => {
            write_waiting(api, ctx, &obj, &recorded, err.reason.as_str(), &err.message, now).await?;
            Ok(Action::requeue(WAIT_RECHECK))
        }
        Err(err) => fail(api, ctx, &obj, &recorded, &err, op.name(), now).await,
    }
}

fn count(kind: &str, provider: &str, result: &str) {
    METRICS
        .revocations
        .get_or_create(&RevocationLabels {
            kind: kind.into(),
            provider: provider.into(),
            result: result.into(),
        })
        .inc();
}

async fn fail<K: Revocation>(
    api: &Api<K>,
    ctx: &Context,
    obj: &K,
    status: &RevocationStatus,
    err: &ProviderError,
    operation: &str,
    now: Timestamp,
) -> Result<Action, Error> {
    fail_with_reason(api, ctx, obj, status, err.reason.as_str(), err, operation, now).await
}

#[allow(clippy::too_many_arguments)]
async fn fail_with_reason<K: Revocation>(
    api: &Api<K>,
    ctx: &Context,
    obj: &K,
    status: &RevocationStatus,
    reason: &str,
    err: &ProviderError,
    operation: &str,
    now: Timestamp,
) -> Result<Action, Error> {
    let mut next = status::failed_by(status, err, operation, obj.meta().generation, now);
    if reason != err.reason.as_str() {
        next = status::failed(&next, reason, &err.message, None, obj.meta().generation, now);
    }
    let Some(obj) = write_status(api, obj, next).await? else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let provider = obj
        .revocation_status()
        .and_then(|s| s.provider_type.clone())
        .unwrap_or_else(|| "unknown".into());
    count(K::KIND, &provider, "failed");
    warn!(kind = K::KIND, object = %super::describe(&obj), reason, "{}", err.message);
    ctx.event(&obj, EventType::Warning, reason, "Revoke", err.message.clone())
        .await;
    Ok(after_finish(&obj))
}

/// Write a waiting state, and an Event, only when it changes something.
async fn write_waiting<K: Revocation>(
    api: &Api<K>,
    ctx: &Context,
    obj: &K,
    status: &RevocationStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let next = status::waiting(status, reason, message, obj.meta().generation, now);
    if &next == status {
        return Ok(());
    }
    if let Some(obj) = write_status(api, obj, next).await? {
        info!(kind = K::KIND, object = %super::describe(&obj), reason, "{message}");
        let type_ = if reason == status::REASON_SUSPENDED {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(&obj, type_, reason, "Wait", message.to_string()).await;
    }
    Ok(())
}

/// Replace the status, with the object's resourceVersion as precondition. `None` on a conflict:
/// someone (another replica, or our own earlier write) changed the object; the watch brings the
/// new version and the reconcile starts again from it.
async fn write_status<K: Revocation>(api: &Api<K>, obj: &K, mut status: RevocationStatus) -> Result<Option<K>, Error> {
    if status.provider_type.is_none() {
        status.provider_type = obj.revocation_status().and_then(|s| s.provider_type.clone());
    }
    let mut updated = obj.clone();
    updated.set_revocation_status(status);
    match api
        .replace_status(&obj.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(written) => Ok(Some(written)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What to do after finishing: wait for the TTL, or for nothing.
fn after_finish<K: Revocation>(obj: &K) -> Action {
    match obj.lifecycle().ttl_seconds_after_finished {
        Some(ttl) => Action::requeue(Duration::from_secs(ttl.max(0) as u64)),
        None => Action::await_change(),
    }
}

/// Delete a finished revocation once its TTL has passed.
async fn expire_if_due<K: Revocation>(
    api: &Api<K>,
    obj: &K,
    status: &RevocationStatus,
    now: Timestamp,
) -> Result<Action, Error> {
    let (Some(ttl), Some(done)) = (
        obj.lifecycle().ttl_seconds_after_finished,
        status.completion_time.as_ref(),
    ) else {
        return Ok(Action::await_change());
    };
    debug_assert!(status.phase == Phase::Succeeded || status.phase == Phase::Failed);
    let expires = done
        .0
        .saturating_add(SignedDuration::from_secs(ttl.max(0)))
        .unwrap_or(done.0);
    if expires > now {
        return Ok(Action::requeue(to_std(expires.duration_since(now))));
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&obj.name_any(), &params).await {
        Ok(_) => {
            info!(kind = K::KIND, object = %super::describe(obj), "deleted after ttlSecondsAfterFinished")
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

fn to_std(d: SignedDuration) -> Duration {
    Duration::try_from(d)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}

/// When a retry after `delay` is due, rounded up to a whole second: status times are written with
/// second precision, and rounding down would let the retry start before the provider's Retry-After.
fn retry_time(now: Timestamp, delay: Duration) -> Timestamp {
    let due = now
        .saturating_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
        .unwrap_or(now);
    let whole = due.as_second() + i64::from(due.subsec_nanosecond() > 0);
    Timestamp::from_second(whole).unwrap_or(due)
}
