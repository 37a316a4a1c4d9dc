//! Triggered revocations (`spec.trigger`): the reconciler of a revocation that runs again.
//!
//! The triggered revocation never calls a provider itself. Each run is a one-shot revocation of
//! the same kind (see `run_object`), as a CronJob's runs are Jobs: the whole one-shot lifecycle
//! (attempts recorded before calls, retries, pinning, the executor check) applies to every run.
//! Exactly-once per value: a run object's name is derived from the value's fingerprint (or the
//! scheduled minute), so a second create of the same run is refused by the API server, and the
//! fingerprints handled are kept in status; both survive restarts and leader changes.

mod run_object;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use secrecy::SecretString;
use tracing::{info, warn};

use super::resources::Revocation;
use super::status::{self, Stamp};
use super::{Context, Error};
use crate::api::{
    ConditionStatus, ConditionType, OnChangeTrigger, PendingRun, Phase, Reason, RevocationStatus, RunRecord,
    RunTrigger, Trigger, TriggerStatus,
};
use crate::outcome::full_fingerprint;
use crate::telemetry::{METRICS, TriggeredRunLabels};
use run_object::{RUN_FINGERPRINT_ANNOTATION, RUN_ID_ANNOTATION, run_id, run_object};
pub use run_object::{RUN_OF_UID_LABEL, Watched};
use schedule::Schedule;

/// Fingerprints of handled values kept (the oldest are forgotten first).
const HANDLED_MAX: usize = 100;

/// How long after the next scheduled time the reconcile is due (timers may fire a little early).
const SCHEDULE_SLACK: Duration = Duration::from_millis(500);

/// Longest sleep of a scheduled revocation, so that a changed clock or a missed wake-up is caught.
const SCHEDULE_RECHECK_MAX: Duration = Duration::from_secs(300);

/// Reconcile a revocation with `spec.trigger`.
pub async fn reconcile<K: Revocation>(
    obj: K,
    namespace: String,
    ctx: Arc<Context>,
    trigger: Trigger,
) -> Result<Action, Error> {
    let mut triggered = Triggered {
        api: Api::namespaced(ctx.client.clone(), &namespace),
        status: obj.revocation_status().cloned().unwrap_or_default(),
        ctx,
        namespace,
        obj,
        trigger,
        now: whole_second(Timestamp::now()),
        notes: vec![],
        news: vec![],
    };
    triggered.run().await
}

/// One reconcile of a triggered revocation.
struct Triggered<K: Revocation> {
    api: Api<K>,
    ctx: Arc<Context>,
    namespace: String,
    obj: K,
    trigger: Trigger,
    status: RevocationStatus,
    now: Timestamp,
    /// What this reconcile found that the status message should say (e.g. a key it cannot read).
    notes: Vec<String>,
    /// Events and counts of what this reconcile saw; published once its status write landed, so
    /// a reconcile that lost a race (it started from an older copy) announces nothing twice.
    news: Vec<News>,
}

/// An Event (and a count) published after the status write.
struct News {
    type_: EventType,
    reason: Reason,
    note: String,
    trigger: RunTrigger,
    result: Option<(&'static str, u32)>,
}

/// The runs of a triggered revocation, as its run objects show them.
struct Runs<K> {
    records: Vec<RunRecord>,
    objects: Vec<K>,
}

impl<K: Revocation> Runs<K> {
    fn active(&self) -> bool {
        self.records.iter().any(|r| !r.phase.is_finished())
    }

    fn object(&self, name: &str) -> Option<&K> {
        self.objects.iter().find(|o| o.name_any() == name)
    }

    fn last_start(&self) -> Option<Timestamp> {
        self.records
            .iter()
            .filter_map(|r| r.start_time.as_ref().map(|t| t.0))
            .max()
    }
}

impl<K: Revocation> Triggered<K> {
    async fn run(&mut self) -> Result<Action, Error> {
        let mut state = self.status.trigger.clone();
        let first_sight = state.is_none();
        let state = state.get_or_insert_with(TriggerStatus::default);
        let mut runs = self.runs(state).await?;
        let schedule = match &self.trigger.schedule {
            Some(spec) => match Schedule::parse(spec) {
                Ok(schedule) => Some(schedule),
                Err(why) => return self.invalid(&why, state.clone(), runs).await,
            },
            None => None,
        };
        let watched = match self.trigger.on_change.clone() {
            Some(on) => self.observe_change(&on, state, first_sight).await,
            None => None,
        };
        if let Some(schedule) = &schedule {
            self.observe_schedule(schedule, state, runs.active());
        }
        let wait = self.start_if_due(state, &mut runs, watched.as_ref()).await?;
        self.trim_history(&mut runs).await;
        let next = self.next_status(state.clone(), &runs);
        if !self.write(next).await? {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        self.publish().await;
        Ok(Action::requeue(self.requeue_after(state, wait)))
    }

    /// Replace the status (if it changed), with the object's resourceVersion as precondition.
    /// False on a conflict: this reconcile started from an older copy; the watch brings the new one.
    async fn write(&self, next: RevocationStatus) -> Result<bool, Error> {
        if next == self.status {
            return Ok(true);
        }
        let mut updated = self.obj.clone();
        let next_copy = next.clone();
        updated.set_revocation_status(next);
        match self
            .api
            .replace_status(&self.obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(written) => {
                if self.obj.revocation_status().is_none() {
                    super::audit(
                        &self.ctx,
                        &written,
                        "created",
                        written.revocation_status().unwrap_or(&next_copy),
                    );
                }
                if let (Some(uid), Some(old)) = (self.obj.uid(), self.obj.resource_version()) {
                    let new = written.resource_version();
                    self.ctx.superseded.record(&uid, &old, new.as_deref());
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn publish(&mut self) {
        for news in std::mem::take(&mut self.news) {
            if let Some((result, by)) = news.result {
                self.count(news.trigger, result, by);
            }
            match news.type_ {
                EventType::Warning => {
                    warn!(kind = K::KIND, object = %super::describe(&self.obj), reason = %news.reason, "{}", news.note)
                }
                EventType::Normal => {
                    info!(kind = K::KIND, object = %super::describe(&self.obj), reason = %news.reason, "{}", news.note)
                }
            }
            self.ctx
                .distinct_event(&self.obj, news.type_, news.reason, "Run", news.note)
                .await;
        }
    }

    fn tell(
        &mut self,
        type_: EventType,
        reason: Reason,
        note: String,
        trigger: RunTrigger,
        result: Option<(&'static str, u32)>,
    ) {
        self.news.push(News {
            type_,
            reason,
            note,
            trigger,
            result,
        });
    }

    /// The run objects of this revocation (by the uid label, and owned by it: a look-alike made by
    /// someone else is ignored), and the run records brought up to date with them. A run whose
    /// end is seen here for the first time is counted and announced.
    async fn runs(&mut self, state: &mut TriggerStatus) -> Result<Runs<K>, Error> {
        let uid = self.obj.uid().unwrap_or_default();
        let params = ListParams::default().labels(&format!("{RUN_OF_UID_LABEL}={uid}"));
        let objects: Vec<K> = self
            .api
            .list(&params)
            .await?
            .items
            .into_iter()
            .filter(|o| {
                o.owner_references()
                    .iter()
                    .any(|r| r.uid == uid && r.controller == Some(true))
            })
            .collect();
        let mut records = self.status.runs.clone();
        for object in &objects {
            if !records.iter().any(|r| r.revocation == object.name_any()) {
                // Created by a reconcile whose status write did not land.
                records.push(record_of(object));
            }
            if let Some(fp) = object.annotations().get(RUN_FINGERPRINT_ANNOTATION) {
                remember_handled(state, fp);
            }
        }
        records.retain(|r| r.phase.is_finished() || objects.iter().any(|o| o.name_any() == r.revocation));
        for record in &mut records {
            let Some(object) = objects.iter().find(|o| o.name_any() == record.revocation) else {
                continue;
            };
            let was_finished = record.phase.is_finished();
            refresh(record, object);
            if !was_finished && record.phase.is_finished() {
                let news = end_of(record, object);
                self.news.push(news);
            }
        }
        records.sort_by_key(|r| r.start_time.as_ref().map(|t| t.0));
        Ok(Runs { records, objects })
    }

    /// Read the watched key and queue a run when it holds a new value (one not handled before).
    async fn observe_change(
        &mut self,
        on: &OnChangeTrigger,
        state: &mut TriggerStatus,
        first_sight: bool,
    ) -> Option<Watched> {
        let watched = match self.read_watched(on).await {
            Ok(watched) => watched,
            Err(why) => {
                warn!(kind = K::KIND, object = %super::describe(&self.obj), "{why}");
                self.notes.push(why);
                return None;
            }
        };
        let seen = watched.as_ref().map(|w| w.fingerprint.clone());
        let changed = first_sight || seen != state.observed_fingerprint;
        state.observed_fingerprint = seen.clone();
        let Some(fp) = seen.filter(|_| changed) else {
            return watched;
        };
        if first_sight && !on.revoke_initial_value.unwrap_or(false) {
            remember_handled(state, &fp);
        } else if state.handled_fingerprints.contains(&fp) {
            let note = format!(
                "{} now holds a value a run was already started for ({}…); it is not revoked again",
                self.watched_place(on),
                &fp[..19]
            );
            let skipped = Some(("skipped", 1));
            self.tell(
                EventType::Normal,
                Reason::AlreadyHandled,
                note,
                RunTrigger::OnChange,
                skipped,
            );
        } else {
            state.pending = Some(PendingRun {
                trigger: RunTrigger::OnChange,
                fingerprint: Some(fp),
                scheduled_time: None,
                since: Time(self.now),
            });
        }
        watched
    }

    fn watched_place(&self, on: &OnChangeTrigger) -> String {
        let (kind, name) = on.object();
        format!("{kind} {}/{name} key {}", self.namespace, on.key)
    }

    /// The watched key's value: None when the object or the key is missing or empty (nothing to
    /// revoke); an error when it cannot be read (RBAC, API server).
    async fn read_watched(&self, on: &OnChangeTrigger) -> Result<Option<Watched>, String> {
        let place = self.watched_place(on);
        let unreadable = |e: kube::Error| {
            format!(
                "cannot read {place}: {}; the trigger looks again in {}s",
                super::registry::kube_reason(&e),
                on.poll_seconds
            )
        };
        let bytes = match (&on.secret_ref, &on.config_map_ref) {
            (Some(secret), _) => {
                let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
                let secret = api.get_opt(&secret.name).await.map_err(unreadable)?;
                secret
                    .and_then(|s| s.data)
                    .and_then(|d| d.get(&on.key).map(|b| b.0.clone()))
            }
            (None, Some(map)) => {
                let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
                let map = api.get_opt(&map.name).await.map_err(unreadable)?;
                map.and_then(|m| {
                    let text = m.data.and_then(|d| d.get(&on.key).map(|t| t.clone().into_bytes()));
                    text.or_else(|| m.binary_data.and_then(|d| d.get(&on.key).map(|b| b.0.clone())))
                })
            }
            (None, None) => None,
        };
        let Some(bytes) = bytes else { return Ok(None) };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        if text.is_empty() {
            return Ok(None);
        }
        let value = SecretString::from(text.to_string());
        Ok(Some(Watched {
            fingerprint: full_fingerprint(&value),
            value,
        }))
    }

    /// Queue the latest scheduled time that came due; report the missed ones.
    fn observe_schedule(&mut self, schedule: &Schedule, state: &mut TriggerStatus, active: bool) {
        let deadline = self.trigger.schedule.as_ref().and_then(|s| s.starting_deadline_seconds);
        let created = self.obj.meta().creation_timestamp.as_ref().map_or(self.now, |t| t.0);
        let held_by = if active {
            "the previous run was still in progress (runs never overlap)"
        } else if self.obj.lifecycle().suspend {
            "the revocation was suspended"
        } else {
            "the operator was not running"
        };
        let clock = schedule::Clock { created, now: self.now };
        for (count, message) in schedule.advance(state, clock, deadline, held_by) {
            self.missed(state, count, message);
        }
    }

    fn missed(&mut self, state: &mut TriggerStatus, count: u32, message: String) {
        state.missed_runs = state.missed_runs.saturating_add(i64::from(count));
        let missed = Some(("missed", count));
        self.tell(
            EventType::Warning,
            Reason::MissedSchedule,
            message,
            RunTrigger::Schedule,
            missed,
        );
    }

    /// Start the queued run unless the revocation is suspended, a run is in progress, or the
    /// debounce holds it; returns how long the debounce still holds it.
    async fn start_if_due(
        &mut self,
        state: &mut TriggerStatus,
        runs: &mut Runs<K>,
        watched: Option<&Watched>,
    ) -> Result<Option<Duration>, Error> {
        let Some(pending) = state.pending.clone() else {
            return Ok(None);
        };
        if let Some(time) = &pending.scheduled_time
            && runs.records.iter().any(|r| r.scheduled_time.as_ref() == Some(time))
        {
            state.pending = None;
            return Ok(None);
        }
        if self.obj.lifecycle().suspend || runs.active() {
            return Ok(None);
        }
        if pending.trigger == RunTrigger::OnChange {
            let debounce = SignedDuration::from_secs(self.debounce_seconds());
            if let Some(last) = runs.last_start() {
                let free_at = last.saturating_add(debounce).unwrap_or(last);
                if free_at > self.now {
                    return Ok(Some(to_std(free_at.duration_since(self.now))));
                }
            }
            // The run revokes what the key holds now (a later change replaced the queued value).
            match watched {
                Some(now) if !state.handled_fingerprints.contains(&now.fingerprint) => {}
                _ => {
                    state.pending = None;
                    return Ok(None);
                }
            }
        }
        let on_change = match (&self.trigger.on_change, watched) {
            (Some(on), Some(w)) if pending.trigger == RunTrigger::OnChange => Some((on.clone(), w)),
            _ => None,
        };
        let fingerprint = on_change.as_ref().map(|(_, w)| w.fingerprint.clone());
        let scheduled = pending.scheduled_time.as_ref().map_or(0, |t| t.0.as_second());
        let id = run_id(pending.trigger, fingerprint.as_deref(), scheduled);
        state.pending = None;
        if let Some(fp) = &fingerprint {
            remember_handled(state, fp);
        }
        let object = match run_object(
            &self.obj,
            &id,
            pending.trigger,
            on_change.as_ref().map(|(on, w)| (on, *w)),
        ) {
            Ok(object) => object,
            Err(why) => {
                self.unusable_value(&id, pending.trigger, fingerprint, &why, runs);
                return Ok(None);
            }
        };
        let name = object.name_any();
        match self.api.create(&PostParams::default(), &object).await {
            Ok(created) => {
                self.announce_start(&id, pending.trigger, &created).await;
                runs.records.push(started_record(
                    &created,
                    &id,
                    pending.trigger,
                    &pending,
                    fingerprint,
                    self.now,
                ));
                runs.objects.push(created);
            }
            // Created before (by a reconcile whose status write did not land): the same run.
            Err(kube::Error::Api(s)) if s.code == 409 && runs.object(&name).is_some() => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let why = format!(
                    "run {id} cannot start: a {} named {name} exists and was not created by this revocation; delete or rename it",
                    K::KIND
                );
                self.notes.push(why.clone());
                state.pending = Some(pending);
                warn!(kind = K::KIND, object = %super::describe(&self.obj), "{why}");
            }
            Err(e) => {
                state.pending = Some(pending);
                return Err(e.into());
            }
        }
        Ok(None)
    }

    fn debounce_seconds(&self) -> i64 {
        self.trigger
            .on_change
            .as_ref()
            .map_or(0, |on| i64::from(on.debounce_seconds.max(0)))
    }

    async fn announce_start(&self, id: &str, trigger: RunTrigger, run: &K) {
        let what = match &self.trigger.on_change {
            Some(on) if trigger == RunTrigger::OnChange => format!("{} changed", self.watched_place(on)),
            _ => "the schedule came due".to_string(),
        };
        let note = format!("run {id} started ({what}): {} {}", K::KIND, super::describe(run));
        let said = RevocationStatus {
            message: Some(note.clone()),
            ..self.status.clone()
        };
        super::audit(&self.ctx, &self.obj, "run-started", &said);
        info!(kind = K::KIND, object = %super::describe(&self.obj), run = %id, "{note}");
        let reason = match trigger {
            RunTrigger::OnChange => Reason::OnChange,
            RunTrigger::Schedule => Reason::Schedule,
        };
        self.ctx
            .distinct_event(&self.obj, EventType::Normal, reason, "Run", note)
            .await;
    }

    /// The key holds something no request may be built from: a failed run without an object (the
    /// value is marked handled, so it is not tried again).
    fn unusable_value(
        &mut self,
        id: &str,
        trigger: RunTrigger,
        fingerprint: Option<String>,
        why: &str,
        runs: &mut Runs<K>,
    ) {
        let note = format!("run {id} failed before it started: {why}");
        self.notes.push(note.clone());
        self.tell(
            EventType::Warning,
            Reason::InvalidSpec,
            note,
            trigger,
            Some(("failed", 1)),
        );
        runs.records.push(RunRecord {
            id: id.to_string(),
            trigger,
            revocation: String::new(),
            fingerprint,
            scheduled_time: None,
            start_time: Some(Time(self.now)),
            completion_time: Some(Time(self.now)),
            phase: Phase::Failed,
            reason: Some(Reason::InvalidSpec.as_str().into()),
            attempts: 0,
            provider_result: None,
        });
    }

    /// Keep the newest finished runs per the history limits; delete the others' objects.
    async fn trim_history(&self, runs: &mut Runs<K>) {
        let limits = [
            (Phase::Succeeded, self.trigger.successful_runs_history_limit),
            (Phase::Failed, self.trigger.failed_runs_history_limit),
        ];
        for (phase, limit) in limits {
            let finished: Vec<String> = runs
                .records
                .iter()
                .filter(|r| r.phase == phase)
                .map(|r| r.id.clone())
                .collect();
            let excess = finished.len().saturating_sub(limit.max(0) as usize);
            for id in &finished[..excess] {
                let Some(at) = runs.records.iter().position(|r| &r.id == id) else {
                    continue;
                };
                let record = runs.records.remove(at);
                if let Some(object) = runs.object(&record.revocation) {
                    self.delete_run(object).await;
                }
            }
        }
    }

    async fn delete_run(&self, object: &K) {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: object.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&object.name_any(), &params).await {
            Ok(_) => info!(kind = K::KIND, object = %super::describe(object), "deleted by the run history limit"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                warn!(kind = K::KIND, object = %super::describe(object), error = %e, "could not delete an old run")
            }
        }
    }

    /// The status: the newest run's (its phase, conditions, attempts, result), the run records,
    /// and the trigger's state; before the first run, armed.
    fn next_status(&self, state: TriggerStatus, runs: &Runs<K>) -> RevocationStatus {
        let stamp = self.stamp();
        let newest = runs.records.last().cloned();
        let mut next = match &newest {
            Some(record) => match runs.object(&record.revocation).and_then(|o| o.revocation_status()) {
                Some(theirs) => RevocationStatus {
                    executor: None,
                    runs: vec![],
                    last_run: None,
                    trigger: None,
                    ..theirs.clone()
                },
                None => self.status_of_gone_run(record),
            },
            None => self.armed(&state),
        };
        if self.obj.lifecycle().suspend && !runs.active() {
            let message =
                "suspended: the trigger is paused; a change seen meanwhile is kept and runs once spec.suspend is false";
            let phase = next.phase;
            next = status::waiting(&next, Reason::Suspended, message, stamp);
            next.phase = phase;
        }
        if !self.notes.is_empty() {
            next.message = Some(self.notes.join("; "));
        }
        for condition in &mut next.conditions {
            condition.observed_generation = stamp.generation;
        }
        next.observed_generation = stamp.generation;
        next.runs = runs.records.clone();
        next.last_run = newest;
        next.trigger = Some(state);
        next
    }

    /// Before the first run: Ready (armed, so GitOps tools see it healthy), Succeeded Unknown.
    fn armed(&self, state: &TriggerStatus) -> RevocationStatus {
        let stamp = self.stamp();
        let message = match (&self.trigger.on_change, &state.next_schedule_time) {
            (Some(on), _) => format!(
                "no run yet: the next change of {} starts one (read every {}s)",
                self.watched_place(on),
                on.poll_seconds
            ),
            (None, Some(next)) => format!("no run yet: the first is scheduled for {}", next.0),
            (None, None) => "no run yet".to_string(),
        };
        let mut next = RevocationStatus {
            message: Some(message.clone()),
            conditions: self.status.conditions.clone(),
            ..RevocationStatus::default()
        };
        let c = &mut next.conditions;
        let armed = Reason::AwaitingTrigger;
        status::set_condition(c, ConditionType::Ready, ConditionStatus::True, armed, &message, stamp);
        status::set_condition(c, ConditionType::Reconciling, ConditionStatus::False, armed, "", stamp);
        status::set_condition(c, ConditionType::Stalled, ConditionStatus::False, armed, "", stamp);
        status::set_condition(c, ConditionType::Succeeded, ConditionStatus::Unknown, armed, "", stamp);
        next
    }

    /// The newest run's object is gone (deleted by hand, or the run never had one).
    fn status_of_gone_run(&self, record: &RunRecord) -> RevocationStatus {
        let stamp = self.stamp();
        let mut next = RevocationStatus {
            phase: record.phase,
            attempts: record.attempts,
            completion_time: record.completion_time.clone(),
            provider_result: record.provider_result.clone(),
            ..self.status.clone()
        };
        if record.revocation.is_empty() {
            let reason = record
                .reason
                .as_deref()
                .and_then(Reason::parse)
                .unwrap_or(Reason::InvalidSpec);
            let message = self.notes.join("; ");
            let c = &mut next.conditions;
            status::set_condition(c, ConditionType::Ready, ConditionStatus::False, reason, "", stamp);
            status::set_condition(c, ConditionType::Reconciling, ConditionStatus::False, reason, "", stamp);
            status::set_condition(
                c,
                ConditionType::Stalled,
                ConditionStatus::True,
                reason,
                &message,
                stamp,
            );
            status::set_condition(c, ConditionType::Succeeded, ConditionStatus::False, reason, "", stamp);
        }
        next
    }

    /// `spec.trigger` cannot be used (a bad cron expression or time zone): Stalled until fixed.
    async fn invalid(&mut self, why: &str, state: TriggerStatus, runs: Runs<K>) -> Result<Action, Error> {
        self.notes.push(why.to_string());
        let mut next = self.next_status(state, &runs);
        let stamp = self.stamp();
        let c = &mut next.conditions;
        let reason = Reason::InvalidSpec;
        status::set_condition(c, ConditionType::Ready, ConditionStatus::False, reason, "", stamp);
        status::set_condition(c, ConditionType::Reconciling, ConditionStatus::False, reason, "", stamp);
        status::set_condition(c, ConditionType::Stalled, ConditionStatus::True, reason, why, stamp);
        let changed = next != self.status;
        if !self.write(next).await? {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        if changed {
            let trigger = RunTrigger::Schedule;
            self.tell(EventType::Warning, reason, why.to_string(), trigger, None);
        }
        self.publish().await;
        Ok(Action::await_change())
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.obj.meta().generation,
            now: self.now,
        }
    }

    /// When to look again: the poll interval (onChange), the next scheduled time (schedule), or
    /// sooner when the debounce frees a queued run.
    fn requeue_after(&self, state: &TriggerStatus, debounce_left: Option<Duration>) -> Duration {
        let base = match (&self.trigger.on_change, &state.next_schedule_time) {
            (Some(on), _) => Duration::from_secs(on.poll_seconds.max(1) as u64),
            (None, Some(next)) => (to_std(next.0.duration_since(self.now)) + SCHEDULE_SLACK).min(SCHEDULE_RECHECK_MAX),
            (None, None) => SCHEDULE_RECHECK_MAX,
        };
        debounce_left.map_or(base, |left| base.min(left + Duration::from_millis(100)))
    }

    fn count(&self, trigger: RunTrigger, result: &str, by: u32) {
        let labels = TriggeredRunLabels {
            kind: K::KIND.into(),
            trigger: trigger.as_str().into(),
            result: result.into(),
        };
        METRICS.triggered_runs.get_or_create(&labels).inc_by(u64::from(by));
    }
}

/// The Event and count of a run whose end was just seen.
fn end_of<K: Revocation>(record: &RunRecord, object: &K) -> News {
    let succeeded = record.phase == Phase::Succeeded;
    let fallback = if succeeded {
        Reason::Revoked
    } else {
        Reason::InvalidSpec
    };
    let reason = record.reason.as_deref().and_then(Reason::parse).unwrap_or(fallback);
    let said = object
        .revocation_status()
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    News {
        type_: if succeeded {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason,
        note: format!("run {} {}: {said}", record.id, record.phase),
        trigger: record.trigger,
        result: Some((if succeeded { "succeeded" } else { "failed" }, 1)),
    }
}

fn remember_handled(state: &mut TriggerStatus, fingerprint: &str) {
    if state.handled_fingerprints.iter().any(|f| f == fingerprint) {
        return;
    }
    if state.handled_fingerprints.len() >= HANDLED_MAX {
        state.handled_fingerprints.remove(0);
    }
    state.handled_fingerprints.push(fingerprint.to_string());
}

/// A run record rebuilt from its object (its status write was lost).
fn record_of<K: Revocation>(object: &K) -> RunRecord {
    let annotations = object.annotations();
    let trigger = match object.labels().get(run_object::TRIGGER_LABEL).map(String::as_str) {
        Some("Schedule") => RunTrigger::Schedule,
        _ => RunTrigger::OnChange,
    };
    RunRecord {
        id: annotations
            .get(RUN_ID_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| object.name_any()),
        trigger,
        revocation: object.name_any(),
        fingerprint: annotations.get(RUN_FINGERPRINT_ANNOTATION).cloned(),
        scheduled_time: None,
        start_time: object.meta().creation_timestamp.clone(),
        completion_time: None,
        phase: Phase::Pending,
        reason: None,
        attempts: 0,
        provider_result: None,
    }
}

fn started_record<K: Revocation>(
    object: &K,
    id: &str,
    trigger: RunTrigger,
    pending: &PendingRun,
    fingerprint: Option<String>,
    now: Timestamp,
) -> RunRecord {
    RunRecord {
        id: id.to_string(),
        trigger,
        revocation: object.name_any(),
        fingerprint,
        scheduled_time: pending.scheduled_time.clone(),
        start_time: Some(Time(now)),
        completion_time: None,
        phase: Phase::Pending,
        reason: None,
        attempts: 0,
        provider_result: None,
    }
}

/// Bring a record up to date with its run object's status.
fn refresh<K: Revocation>(record: &mut RunRecord, object: &K) {
    let Some(theirs) = object.revocation_status() else {
        return;
    };
    record.phase = theirs.phase;
    record.attempts = theirs.attempts;
    record.completion_time = theirs.completion_time.clone();
    record.provider_result = theirs.provider_result.clone();
    record.reason = status::condition(theirs, ConditionType::Succeeded).map(|c| c.reason.clone());
}

/// Status times are written with second precision: a clock without fractions compares equal to
/// what the API server gives back, so an unchanged status is not written again.
fn whole_second(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn to_std(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}
