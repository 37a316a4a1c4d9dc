//! Reconciler of the three revocation kinds: a Job-like lifecycle.
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
use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::registry::{Freshness, ResolvedProvider, Unresolved, Wake};
use super::resources::{IdLookup, Planned, ResolvedIds, Revocation};
use super::status::{self, Stamp, retries_left};
use super::{Context, Error, backoff, executor};
use crate::api::{Phase, ProviderType, Reason, RevocationStatus, SecretKeyRef};
use crate::credentials::{self, SecretLocation};
use crate::outcome::{AttemptContext, ErrorClass, Outcome, ProviderError, full_fingerprint};
use crate::providers::{Operation, Provider};
use crate::telemetry::{KindLabels, METRICS, ReasonLabels, RevocationLabels};

/// How often a waiting revocation (credentials, provider, host) looks again.
pub const WAIT_RECHECK: Duration = Duration::from_secs(10);

/// A revocation waiting for its provider is woken by the provider watch; this is only the safety
/// net in case a watch event is missed.
const PROVIDER_WAIT_SAFETY_NET: Duration = Duration::from_secs(300);

/// Requeue delay after a status write lost a race: the watch brings the newer object.
const AFTER_CONFLICT: Duration = Duration::from_secs(1);

/// How often the result of a provider call is written again after a conflict before giving up.
const RESULT_WRITE_TRIES: usize = 5;

const SUSPENDED_MESSAGE: &str = "suspended: set spec.suspend to false to run this revocation";

/// Reconcile one revocation.
pub async fn reconcile<K: Revocation>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    METRICS
        .reconciles
        .get_or_create(&KindLabels { kind: K::KIND.into() })
        .inc();
    let namespace = obj.namespace().ok_or(Error::MissingNamespace)?;
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if let (Some(uid), Some(version)) = (obj.meta().uid.as_deref(), obj.meta().resource_version.as_deref())
        && ctx.superseded.is_stale(uid, version)
    {
        return Ok(Action::requeue(AFTER_CONFLICT));
    }
    if let Some(trigger) = obj.lifecycle().trigger.cloned() {
        return super::trigger::reconcile(obj.as_ref().clone(), namespace, ctx, trigger).await;
    }
    Reconciliation::new(obj.as_ref().clone(), namespace, ctx).run().await
}

/// A status change, and what it tells the user.
enum Transition<'a> {
    /// Waiting without burning retries (suspended, credentials, provider, host).
    Waiting { reason: Reason, message: &'a str },
    /// An attempt, recorded before the provider is called.
    Attempt { target: &'a str, verb: &'static str },
    /// The provider confirmed (revoked, already revoked, dry run passed).
    Succeeded(&'a Outcome),
    /// A transient error with retries left.
    RetryScheduled {
        err: &'a ProviderError,
        retry_at: Timestamp,
        delay: Duration,
    },
    /// Failed for good, with the error's reason or `BackoffLimitExceeded`.
    Failed { reason: Reason, err: &'a ProviderError },
}

/// One reconcile of one revocation: the object in hand, its status, the API handle and the clock.
struct Reconciliation<K: Revocation> {
    api: Api<K>,
    ctx: Arc<Context>,
    namespace: String,
    obj: K,
    status: RevocationStatus,
    now: Timestamp,
    /// The provider type the spec's block asks for, once planned (labels the metrics).
    provider: Option<ProviderType>,
    /// The provider operation, once known (`status.providerResult.operation`).
    operation: &'static str,
    /// What is revoked, in words, from the spec (shown from the first status write on).
    target: Option<String>,
    /// Fingerprint of a Secret-held target, pinned at first sight (written with the next status).
    pinned: Option<String>,
    /// The provider has been called in this reconcile: results are written until they land.
    called: bool,
    /// The object had no status yet: its first status write is also its `created` audit record.
    unseen: bool,
    /// What the read-back after a successful revocation found (written with the result).
    verdict: Option<super::receipt::Verdict>,
}

impl<K: Revocation> Reconciliation<K> {
    fn new(obj: K, namespace: String, ctx: Arc<Context>) -> Self {
        let obj_status_missing = obj.revocation_status().is_none();
        Reconciliation {
            api: Api::namespaced(ctx.client.clone(), &namespace),
            status: obj.revocation_status().cloned().unwrap_or_default(),
            ctx,
            namespace,
            obj,
            now: Timestamp::now(),
            provider: None,
            operation: "-",
            target: None,
            pinned: None,
            called: false,
            unseen: obj_status_missing,
            verdict: None,
        }
    }

    async fn run(mut self) -> Result<Action, Error> {
        if self.status.phase.is_finished() {
            return self.expire_if_due().await;
        }
        if let Some(result) = self
            .ctx
            .unwritten
            .take(&self.obj.uid().unwrap_or_default(), &self.status)
        {
            return self.write_remembered(result).await;
        }
        if let Err(invalid) = self.obj.validate_ids() {
            let err = ProviderError::permanent(Reason::InvalidSpec, format!("{invalid}; no request was sent"));
            return self.fail(err.reason, &err).await;
        }
        let ids = match self.resolve_ids().await {
            Ok(ids) => ids,
            Err(err) => {
                return self
                    .not_called(Unresolved {
                        error: err,
                        wake: Wake::Recheck,
                    })
                    .await;
            }
        };
        let planned = match self.obj.plan(&ids) {
            Ok(planned) => planned,
            Err(why) => {
                let err = ProviderError::permanent(Reason::InvalidSpec, why);
                return self.fail(err.reason, &err).await;
            }
        };
        self.provider = Some(planned.provider_type());
        self.target = Some(planned.target());
        if !ids.is_empty()
            && let Err(err) = self.check_target_unchanged(&planned)
        {
            return self.fail(err.reason, &err).await;
        }
        if self.obj.lifecycle().suspend && self.status.attempts == 0 {
            self.pin_at_first_sight(&planned).await;
            let waiting = Transition::Waiting {
                reason: Reason::Suspended,
                message: SUSPENDED_MESSAGE,
            };
            self.report(waiting).await?;
            return Ok(Action::await_change());
        }
        if let Some(wait) = self.retry_not_yet_due() {
            return Ok(Action::requeue(wait));
        }
        if let Some(wait) = self.attempt_of_another_instance().await? {
            return Ok(Action::requeue(wait));
        }
        match self.prepare(planned.clone()).await {
            Ok((resolved, op)) => self.execute(&resolved, op).await,
            Err(err) => {
                if err.error.class == ErrorClass::Waiting {
                    self.pin_at_first_sight(&planned).await;
                }
                self.not_called(err).await
            }
        }
    }

    /// Read the identifiers the spec takes from Secrets or ConfigMaps (what a rotation wrote).
    async fn resolve_ids(&self) -> Result<ResolvedIds, ProviderError> {
        let mut ids = ResolvedIds::default();
        for lookup in self.obj.id_lookups() {
            let value = self.read_id(&lookup).await?;
            ids.insert(lookup.field, value);
        }
        Ok(ids)
    }

    /// One identifier: a missing object or key waits; see `IdLookup::identifier` for the value.
    async fn read_id(&self, lookup: &IdLookup) -> Result<String, ProviderError> {
        let (raw, place) = match (&lookup.source.secret_key_ref, &lookup.source.config_map_key_ref) {
            (Some(at), _) => {
                let value = self.read_token(&at.name, &at.key).await?;
                let place = format!("Secret {}/{} key {}", self.namespace, at.name, at.key);
                (value.expose_secret().to_string(), place)
            }
            (None, Some(at)) => {
                let value = self
                    .ctx
                    .registry
                    .read_config_map_key(&self.namespace, &at.name, &at.key)
                    .await?;
                (
                    value,
                    format!("ConfigMap {}/{} key {}", self.namespace, at.name, at.key),
                )
            }
            (None, None) => {
                return Err(ProviderError::permanent(
                    Reason::InvalidSpec,
                    format!("{}From sets neither secretKeyRef nor configMapKeyRef", lookup.field),
                ));
            }
        };
        lookup.identifier(&raw, &place)
    }

    /// A target named by identifiers read from objects is pinned by the first status write (its
    /// `status.target`): if a rotation has since written other identifiers, nothing is revoked.
    fn check_target_unchanged(&self, planned: &Planned) -> Result<(), ProviderError> {
        let now = planned.target();
        match self.status.target.as_deref() {
            Some(meant) if meant != now => Err(ProviderError::permanent(
                Reason::TargetChanged,
                format!(
                    "the Secret or ConfigMap this revocation reads its target from now names {now}, not {meant} as when it was first seen; nothing was revoked; create a new revocation to revoke the new target"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Time left until a scheduled retry is due.
    fn retry_not_yet_due(&self) -> Option<Duration> {
        let due = self.status.next_retry_time.as_ref()?.0;
        (due > self.now).then(|| to_std(due.duration_since(self.now)))
    }

    /// Time to wait when another live instance recorded the attempt in progress: its call may be
    /// under way, and its result is still to come (it wakes this revocation when written).
    async fn attempt_of_another_instance(&self) -> Result<Option<Duration>, Error> {
        let busy = executor::busy_elsewhere(&self.ctx.client, &self.ctx.instance, &self.status, self.now).await?;
        Ok(busy.map(|busy| {
            info!(kind = K::KIND, object = %super::describe(&self.obj), attempt = self.status.attempts, executor = %busy.executor, "the attempt in progress was recorded by another instance that still holds its Lease; waiting for its result instead of calling again");
            busy.for_at_most.max(Duration::from_secs(1))
        }))
    }

    /// Resolve the provider and the operation (reading a secret target if there is one).
    async fn prepare(&mut self, planned: Planned) -> Result<(ResolvedProvider, Operation), Unresolved> {
        let provider_ref = self.obj.lifecycle().provider_ref;
        let resolved = self
            .ctx
            .registry
            .resolve(provider_ref, &self.namespace, Freshness::Recent)
            .await?;
        if resolved.provider_type != planned.provider_type() {
            let wanted = planned.provider_type();
            return Err(Unresolved::from(ProviderError::permanent(
                Reason::ProviderMismatch,
                format!(
                    "this {} sets spec.{wanted}, but {:?} {} is {} provider; point spec.providerRef at {} provider",
                    K::KIND,
                    provider_ref.kind,
                    provider_ref.name,
                    resolved.provider_type.with_article(),
                    wanted.with_article(),
                ),
            )));
        }
        let op = match planned {
            Planned::Ready(op) => op,
            Planned::SecretTarget { ref secret, .. } => {
                let secret = secret.clone();
                let token = self
                    .read_token(&secret.name, &secret.key)
                    .await
                    .map_err(|error| Unresolved {
                        error,
                        wake: Wake::Recheck,
                    })?;
                self.check_pin(&secret, &token).map_err(Unresolved::from)?;
                self.pinned = self.pinned.take().or_else(|| Some(full_fingerprint(&token)));
                planned.with_secret_value(token)
            }
        };
        Ok((resolved, op))
    }

    /// The fingerprint this revocation is pinned to: spec's expectedFingerprint, the one recorded
    /// in status, or the one found at first sight in this reconcile.
    fn pin(&self, secret: &SecretKeyRef) -> Option<String> {
        secret
            .expected_fingerprint
            .clone()
            .or_else(|| self.status.target_fingerprint.clone())
            .or_else(|| self.pinned.clone())
    }

    /// Pin the target of a revocation that has to wait (suspended, provider not Ready, ...) at
    /// first sight, so that a rotation of the Secret meanwhile can never make it revoke the new
    /// value (one that proceeds pins when it reads the value to call the provider). A Secret that
    /// cannot be read yet is pinned when it can.
    async fn pin_at_first_sight(&mut self, planned: &Planned) {
        let Planned::SecretTarget { secret, .. } = planned else {
            return;
        };
        if let Some(pin) = self.pin(secret) {
            self.pinned = Some(pin);
            return;
        }
        if let Ok(token) = self.read_token(&secret.name, &secret.key).await {
            self.pinned = Some(full_fingerprint(&token));
        }
    }

    /// The value about to be revoked is the one meant.
    fn check_pin(&self, secret: &SecretKeyRef, token: &secrecy::SecretString) -> Result<(), ProviderError> {
        let found = full_fingerprint(token);
        match self.pin(secret) {
            Some(pin) if pin != found => Err(ProviderError::permanent(
                Reason::TargetChanged,
                format!(
                    "Secret {}/{} key {} now holds another value ({}…) than the one this revocation means ({}…); nothing was revoked; create a new revocation to revoke the new value",
                    self.namespace,
                    secret.name,
                    secret.key,
                    &found[..19],
                    &pin[..pin.len().min(19)],
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn read_token(&self, name: &str, key: &str) -> Result<secrecy::SecretString, ProviderError> {
        let at = SecretLocation {
            namespace: &self.namespace,
            name,
        };
        let data = self.ctx.registry.read_secret(at).await?.data.unwrap_or_default();
        credentials::secret_value(&data, key, at)
    }

    /// The provider was not called: wait, or fail for good.
    async fn not_called(&mut self, unresolved: Unresolved) -> Result<Action, Error> {
        let err = unresolved.error;
        if err.class != ErrorClass::Waiting {
            return self.fail(err.reason, &err).await;
        }
        self.wait(&err).await?;
        Ok(match unresolved.wake {
            Wake::ProviderChange => Action::requeue(PROVIDER_WAIT_SAFETY_NET),
            Wake::Recheck => Action::requeue(WAIT_RECHECK),
        })
    }

    /// Record the attempt, call the provider, record the result.
    async fn execute(&mut self, resolved: &ResolvedProvider, op: Operation) -> Result<Action, Error> {
        let (dry_run, backoff_limit) = {
            let life = self.obj.lifecycle();
            (life.dry_run, life.backoff_limit)
        };
        self.operation = op.name();
        if !retries_left(self.status.attempts, backoff_limit) {
            let err = ProviderError::permanent(Reason::ProviderUnavailable, "no retries left");
            return self.fail(Reason::BackoffLimitExceeded, &err).await;
        }
        if let Some(left) = resolved.client.paused_for() {
            info!(kind = K::KIND, object = %super::describe(&self.obj), wait_s = left.as_secs_f64(), "the provider asked every caller to slow down (429 or Retry-After); the attempt starts after the pause");
            return Ok(Action::requeue(left.max(Duration::from_secs(1))));
        }
        if !dry_run
            && self.status.attempts == 0
            && let Some(wait) = self.over_budget(resolved).await?
        {
            return Ok(Action::requeue(wait));
        }
        let target = op.target();
        let verb = if dry_run { "dry run" } else { "revocation" };
        if !self.report(Transition::Attempt { target: &target, verb }).await? {
            return Ok(Action::requeue(AFTER_CONFLICT));
        }
        let result = self.call(resolved.client.as_ref(), &op, dry_run).await;
        let result = self.again_if_credentials_changed(resolved, &op, dry_run, result).await;
        match result {
            Ok(outcome) => {
                if !dry_run {
                    let found = resolved.client.verify(&op).await;
                    self.verdict = Some(super::receipt::verdict(&target, &outcome, found, Timestamp::now()));
                }
                self.report(Transition::Succeeded(&outcome)).await?;
                Ok(self.after_finish())
            }
            Err(err) if err.is_transient() && retries_left(self.status.attempts, backoff_limit) => {
                let delay = backoff::retry_delay(self.status.attempts as u32, err.retry_after());
                let retry_at = retry_time(self.now, delay);
                let retry = Transition::RetryScheduled {
                    err: &err,
                    retry_at,
                    delay,
                };
                self.report(retry).await?;
                Ok(Action::requeue(delay))
            }
            Err(err) if err.is_transient() => {
                let message = format!(
                    "gave up after {} attempts (spec.backoffLimit {backoff_limit}); the last one: {}",
                    self.status.attempts, err.message
                );
                let err = ProviderError { message, ..err };
                self.fail(Reason::BackoffLimitExceeded, &err).await
            }
            Err(err) if err.class == ErrorClass::Waiting => {
                self.wait(&err).await?;
                Ok(Action::requeue(WAIT_RECHECK))
            }
            Err(err) => self.fail(err.reason, &err).await,
        }
    }

    /// Count this revocation against its provider's budget before its first call; when the budget
    /// is spent, wait as Throttled (how long is returned) without calling.
    async fn over_budget(&mut self, resolved: &ResolvedProvider) -> Result<Option<Duration>, Error> {
        let Some(budget) = &resolved.budget else {
            return Ok(None);
        };
        let uid = self.obj.uid().unwrap_or_default();
        let who = super::budget::Claimant {
            revocation: format!("{} {}", K::KIND, super::describe(&self.obj)),
            uid: &uid,
        };
        let provider_ref = self.obj.lifecycle().provider_ref.clone();
        let claim =
            super::budget::claim(&self.ctx.client, &provider_ref, &self.namespace, budget, who, self.now).await?;
        let super::budget::Claim::Throttled { until, spent } = claim else {
            return Ok(None);
        };
        let message = format!(
            "the budget of {:?} {} is spent ({spent} of {} revocations within {}): this one starts at {until}, when the oldest leaves the window (or sooner if spec.budget is raised); nothing was called",
            provider_ref.kind, provider_ref.name, budget.max_revocations, budget.window
        );
        METRICS
            .throttled
            .get_or_create(&self.reason_labels(Reason::Throttled))
            .inc();
        self.wait(&ProviderError::waiting(Reason::Throttled, message)).await?;
        Ok(Some(to_std(until.duration_since(self.now))))
    }

    /// The provider rejected credentials reused from an earlier read of their Secret: read the
    /// Secret now and, if it changed since (a rotation), call again with the new credentials. The
    /// rejected call changed nothing at the provider, so this is the same attempt.
    async fn again_if_credentials_changed(
        &mut self,
        used: &ResolvedProvider,
        op: &Operation,
        dry_run: bool,
        result: Result<Outcome, ProviderError>,
    ) -> Result<Outcome, ProviderError> {
        let rejected = matches!(&result, Err(e) if matches!(e.reason, Reason::Unauthorized | Reason::Forbidden));
        if !rejected || !used.reused {
            return result;
        }
        let provider_ref = self.obj.lifecycle().provider_ref.clone();
        let live = self
            .ctx
            .registry
            .resolve(&provider_ref, &self.namespace, Freshness::Live)
            .await;
        match live {
            Ok(live) if live.secret_version != used.secret_version => {
                info!(kind = K::KIND, object = %super::describe(&self.obj), "the provider rejected the credentials in use and their Secret has changed; calling again with the new ones");
                self.call(live.client.as_ref(), op, dry_run).await
            }
            _ => result,
        }
    }

    /// The provider call itself, counted as in flight. Afterwards the clock moves on.
    async fn call(&mut self, client: &dyn Provider, op: &Operation, dry_run: bool) -> Result<Outcome, ProviderError> {
        METRICS.in_flight.inc();
        let result = if dry_run {
            client.dry_run(op).await
        } else {
            let ctx = AttemptContext {
                earlier_attempt: self.status.attempts > 1,
            };
            client.revoke(op, ctx).await
        };
        METRICS.in_flight.dec();
        self.called = true;
        self.now = Timestamp::now();
        result
    }

    async fn wait(&mut self, err: &ProviderError) -> Result<(), Error> {
        let waiting = Transition::Waiting {
            reason: err.reason,
            message: &err.message,
        };
        self.report(waiting).await?;
        Ok(())
    }

    async fn fail(&mut self, reason: Reason, err: &ProviderError) -> Result<Action, Error> {
        if !self.report(Transition::Failed { reason, err }).await? {
            return Ok(Action::requeue(AFTER_CONFLICT));
        }
        Ok(self.after_finish())
    }

    /// The one place a status change happens: the transition, the status write, and — once
    /// written — the metric, the log line and the Event. False when the write lost a race.
    async fn report(&mut self, change: Transition<'_>) -> Result<bool, Error> {
        let next = self.next_status(&change);
        if matches!(change, Transition::Waiting { .. }) && next == self.status {
            return Ok(true);
        }
        let written = if self.called {
            match self.write_result(next.clone()).await {
                Ok(written) => written,
                Err(e) => {
                    // The provider answered: say so now, and write the result on the next reconcile
                    // instead of calling again.
                    let uid = self.obj.uid().unwrap_or_default();
                    self.ctx.unwritten.remember(&uid, self.status.attempts, next);
                    warn!(kind = K::KIND, object = %super::describe(&self.obj), error = %e, "the provider answered but the result could not be written; it is written on the next reconcile, without calling the provider again");
                    self.announce(&change).await;
                    return Err(e);
                }
            }
        } else {
            self.write(next).await?
        };
        if written {
            self.announce(&change).await;
        }
        Ok(written)
    }

    fn next_status(&self, change: &Transition<'_>) -> RevocationStatus {
        let mut next = self.next_status_of(change);
        next.target_fingerprint = next.target_fingerprint.or_else(|| self.pinned.clone());
        next
    }

    fn next_status_of(&self, change: &Transition<'_>) -> RevocationStatus {
        let current = &self.status;
        let stamp = Stamp {
            generation: self.obj.meta().generation,
            now: self.now,
        };
        match change {
            Transition::Waiting { reason, message } => {
                let mut next = status::waiting(current, *reason, message, stamp);
                next.target = next.target.or_else(|| self.target.clone());
                next
            }
            Transition::Attempt { target, .. } => {
                let mut next = status::attempt_recorded(current, target, stamp);
                next.executor = Some(self.ctx.instance.executor());
                next.provider_type = self.provider.map(|p| p.to_string()).or(next.provider_type);
                next
            }
            Transition::Succeeded(outcome) => {
                let mut next = status::succeeded(current, outcome, self.operation, stamp);
                if let Some(verdict) = &self.verdict {
                    super::receipt::apply(&mut next, verdict, stamp);
                }
                next
            }
            Transition::RetryScheduled { err, retry_at, .. } => {
                status::retry_scheduled(current, err, self.operation, *retry_at, stamp)
            }
            Transition::Failed { reason, err } => {
                let dry_run = self.obj.lifecycle().dry_run;
                let mut next = status::failed(current, *reason, err, self.operation, dry_run, stamp);
                next.target = next.target.or_else(|| self.target.clone());
                next
            }
        }
    }

    /// Metric, log line and Event of a written status change. An attempt has no Event of its own:
    /// its end does (the outcome, the scheduled retry or the failure, each naming the attempt), so a
    /// revocation costs one Event per attempt and the status shows a call in progress.
    async fn announce(&mut self, change: &Transition<'_>) {
        if std::mem::take(&mut self.unseen) {
            super::audit(&self.ctx, &self.obj, "created", &self.status);
        }
        let event = match change {
            Transition::Waiting { .. } => "waiting",
            Transition::Attempt { .. } => "attempted",
            Transition::Succeeded(_) => "succeeded",
            Transition::RetryScheduled { .. } => "retry-scheduled",
            Transition::Failed { .. } => "failed",
        };
        super::audit(&self.ctx, &self.obj, event, &self.status);
        let object = super::describe(&self.obj);
        let (type_, reason, action, note) = match change {
            Transition::Waiting { reason, message } => {
                info!(kind = K::KIND, object = %object, reason = %reason, "{message}");
                let type_ = if *reason == Reason::Suspended {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                (type_, *reason, "Wait", message.to_string())
            }
            Transition::Attempt { target, verb } => {
                let attempt = self.status.attempts;
                info!(kind = K::KIND, object = %object, attempt, target = %target, "{verb} attempt");
                return;
            }
            Transition::Succeeded(outcome) => {
                self.count(outcome.kind.metric_result());
                let reason = outcome.kind.reason();
                info!(kind = K::KIND, object = %object, reason = %reason, "{}", outcome.message);
                let note = format!("{} ({})", outcome.message, self.attempt_words());
                self.announce_verdict().await;
                (EventType::Normal, reason, "Revoke", note)
            }
            Transition::RetryScheduled { err, delay, .. } => {
                self.count_retry(err.reason);
                warn!(kind = K::KIND, object = %object, reason = %err.reason, delay_s = delay.as_secs(), "{}", err.message);
                let note = format!(
                    "{} failed: {}; retry in {}s",
                    self.attempt_words(),
                    err.message,
                    delay.as_secs(),
                );
                (EventType::Warning, err.reason, "Revoke", note)
            }
            Transition::Failed { reason, err } => {
                self.count("failed");
                self.count_failure(*reason);
                warn!(kind = K::KIND, object = %object, reason = %reason, "{}", err.message);
                let note = if self.called && *reason != Reason::BackoffLimitExceeded {
                    format!("{} failed: {}", self.attempt_words(), err.message)
                } else {
                    err.message.clone()
                };
                (EventType::Warning, *reason, "Revoke", note)
            }
        };
        // Only a wait repeats (the same reason every recheck) and folds into one Event; the end of
        // an attempt happens once, so it is not kept in the recorder's folding cache either.
        if matches!(change, Transition::Waiting { .. }) {
            self.ctx.event(&self.obj, type_, reason, action, note).await;
        } else {
            self.ctx.distinct_event(&self.obj, type_, reason, action, note).await;
        }
    }

    /// The receipt's metric, and a Warning Event and log line when the read-back shows the target
    /// still active.
    async fn announce_verdict(&self) {
        let Some(verdict) = &self.verdict else { return };
        let labels = self.reason_labels(verdict.reason);
        METRICS.verifications.get_or_create(&labels).inc();
        if verdict.reason == Reason::NotApplied {
            let note = self.status.message.clone().unwrap_or_default();
            warn!(kind = K::KIND, object = %super::describe(&self.obj), reason = %verdict.reason, "{note}");
            self.ctx
                .distinct_event(&self.obj, EventType::Warning, verdict.reason, "Verify", note)
                .await;
        }
        super::audit(&self.ctx, &self.obj, "verified", &self.status);
    }

    /// "dry run attempt 2 of at most 7", for the Event that ends an attempt.
    fn attempt_words(&self) -> String {
        let life = self.obj.lifecycle();
        let verb = if life.dry_run { "dry run" } else { "revocation" };
        let most = life.backoff_limit.saturating_add(1);
        format!("{verb} attempt {} of at most {most}", self.status.attempts)
    }

    fn provider_label(&self) -> String {
        self.provider.map_or_else(|| "unknown".into(), |p| p.to_string())
    }

    fn count(&self, result: &str) {
        let labels = RevocationLabels {
            kind: K::KIND.into(),
            provider: self.provider_label(),
            result: result.into(),
        };
        METRICS.revocations.get_or_create(&labels).inc();
    }

    fn count_failure(&self, reason: Reason) {
        METRICS
            .revocation_failures
            .get_or_create(&self.reason_labels(reason))
            .inc();
    }

    fn count_retry(&self, reason: Reason) {
        METRICS.retries.get_or_create(&self.reason_labels(reason)).inc();
    }

    fn reason_labels(&self, reason: Reason) -> ReasonLabels {
        ReasonLabels {
            kind: K::KIND.into(),
            provider: self.provider_label(),
            reason: reason.as_str().into(),
        }
    }

    /// Replace the status, with the object's resourceVersion as precondition. False on a
    /// conflict: someone (another replica, or our own earlier write) changed the object; the watch
    /// brings the new version and the reconcile starts again from it.
    async fn write(&mut self, next: RevocationStatus) -> Result<bool, Error> {
        let mut updated = self.obj.clone();
        updated.set_revocation_status(next.clone());
        match self
            .api
            .replace_status(&self.obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(written) => {
                if let (Some(uid), Some(old)) = (self.obj.uid(), self.obj.resource_version()) {
                    self.ctx
                        .superseded
                        .record(&uid, &old, written.resource_version().as_deref());
                }
                self.obj = written;
                self.status = next;
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Write the result of a provider call until it lands: on a conflict, re-read the object and
    /// write the same result onto it, as long as it still shows the attempt this call belongs to
    /// (nobody else has recorded a later attempt or a result). A lost result would mean a second
    /// call on the next reconcile.
    async fn write_result(&mut self, next: RevocationStatus) -> Result<bool, Error> {
        for _ in 0..RESULT_WRITE_TRIES {
            if self.write(next.clone()).await? {
                return Ok(true);
            }
            let fresh = self.api.get_status(&self.obj.name_any()).await?;
            let theirs = fresh.revocation_status().cloned().unwrap_or_default();
            if theirs.attempts != self.status.attempts || theirs.phase.is_finished() {
                return Ok(false);
            }
            self.obj = fresh;
        }
        Ok(false)
    }

    /// Write the result of a provider call that an earlier reconcile could not write.
    async fn write_remembered(&mut self, result: RevocationStatus) -> Result<Action, Error> {
        self.called = true;
        let finished = result.phase.is_finished();
        match self.write_result(result.clone()).await {
            Ok(true) if finished => Ok(self.after_finish()),
            Ok(true) => Ok(self
                .retry_not_yet_due()
                .map_or(Action::requeue(AFTER_CONFLICT), Action::requeue)),
            Ok(false) => Ok(Action::requeue(AFTER_CONFLICT)),
            Err(e) => {
                let uid = self.obj.uid().unwrap_or_default();
                self.ctx.unwritten.remember(&uid, self.status.attempts, result);
                Err(e)
            }
        }
    }

    /// What to do after finishing: wait for the TTL, or for nothing.
    fn after_finish(&self) -> Action {
        match self.obj.lifecycle().ttl_seconds_after_finished {
            Some(ttl) => Action::requeue(Duration::from_secs(ttl.max(0) as u64)),
            None => Action::await_change(),
        }
    }

    /// Delete a finished revocation once its TTL has passed.
    async fn expire_if_due(&self) -> Result<Action, Error> {
        let (Some(ttl), Some(done)) = (
            self.obj.lifecycle().ttl_seconds_after_finished,
            self.status.completion_time.as_ref(),
        ) else {
            return Ok(Action::await_change());
        };
        debug_assert!(self.status.phase == Phase::Succeeded || self.status.phase == Phase::Failed);
        let expires = done
            .0
            .saturating_add(SignedDuration::from_secs(ttl.max(0)))
            .unwrap_or(done.0);
        if expires > self.now {
            return Ok(Action::requeue(to_std(expires.duration_since(self.now))));
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: self.obj.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&self.obj.name_any(), &params).await {
            Ok(_) => {
                super::audit(&self.ctx, &self.obj, "expired", &self.status);
                info!(kind = K::KIND, object = %super::describe(&self.obj), "deleted after ttlSecondsAfterFinished")
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Action::await_change())
    }
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
