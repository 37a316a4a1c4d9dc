//! Cron schedules, read with CronJob's rules: five fields (or a macro), in a time zone (UTC by
//! default); of several scheduled times missed, only the latest runs.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{PendingRun, RunTrigger, ScheduleTrigger, TriggerStatus};

/// Scheduled times counted at most when looking back (CronJob stops at 100 too).
pub const MISSED_COUNT_MAX: u32 = 100;

/// A parsed `spec.trigger.schedule`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

/// The times a schedule is looked at from.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// When the revocation was created (the schedule counts from there).
    pub created: Timestamp,
    /// Now.
    pub now: Timestamp,
}

/// The scheduled times that came due in a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The latest of them.
    pub latest: Timestamp,
    /// How many came before it (at most [`MISSED_COUNT_MAX`]): missed, never run.
    pub earlier: u32,
}

impl Schedule {
    /// Parse the cron expression and look up the time zone; the error says which is wrong.
    pub fn parse(spec: &ScheduleTrigger) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(spec.cron.trim())
            .map_err(|e| {
                format!(
                    "spec.trigger.schedule.cron {:?} is not a 5-field cron expression: {e}",
                    spec.cron
                )
            })?;
        let tz = match spec.time_zone.as_deref() {
            None | Some("UTC") | Some("Etc/UTC") => TimeZone::UTC,
            Some(name) => TimeZone::get(name)
                .map_err(|_| format!("spec.trigger.schedule.timeZone {name:?} is not a known IANA time zone"))?,
        };
        Ok(Schedule { cron, tz })
    }

    /// The scheduled times in `(after, now]`: the latest, and how many came before it.
    pub fn due(&self, after: Timestamp, now: Timestamp) -> Option<Due> {
        let latest = self
            .cron
            .find_previous_occurrence(&now.to_zoned(self.tz.clone()), true)
            .ok()?;
        let latest = latest.timestamp();
        if latest <= after {
            return None;
        }
        let mut earlier = 0;
        let mut at = after.to_zoned(self.tz.clone());
        while earlier < MISSED_COUNT_MAX {
            match self.cron.find_next_occurrence(&at, false) {
                Ok(next) if next.timestamp() < latest => {
                    earlier += 1;
                    at = next;
                }
                _ => break,
            }
        }
        Some(Due { latest, earlier })
    }

    /// One look at the schedule, with CronJob's rules: the latest scheduled time that came due
    /// since the last one handled (or since the revocation was created) is queued, replacing a
    /// queued one; the times before it are missed, never replayed; a queued time not started
    /// within `deadline_seconds` is missed too (`held_by` says why it could not start). Returns
    /// the missed counts with what to tell the user.
    pub fn advance(
        &self,
        state: &mut TriggerStatus,
        clock: Clock,
        deadline_seconds: Option<i64>,
        held_by: &str,
    ) -> Vec<(u32, String)> {
        let mut missed = vec![];
        let after = state.last_schedule_time.as_ref().map_or(clock.created, |t| t.0);
        if let Some(due) = self.due(after, clock.now) {
            let replaced = state
                .pending
                .as_ref()
                .is_some_and(|p| p.trigger == RunTrigger::Schedule);
            let count = due.earlier + u32::from(replaced);
            if count > 0 {
                missed.push((count, format!("{count} scheduled time(s) before {} passed without a run (the operator was down, the revocation suspended, or a run still in progress); only the latest runs", due.latest)));
            }
            state.last_schedule_time = Some(Time(due.latest));
            state.pending = Some(PendingRun {
                trigger: RunTrigger::Schedule,
                fingerprint: None,
                scheduled_time: Some(Time(due.latest)),
                since: Time(clock.now),
            });
        }
        let late = state.pending.as_ref().and_then(|p| {
            let at = p.scheduled_time.as_ref()?.0;
            let deadline = SignedDuration::from_secs(deadline_seconds?);
            (clock.now.duration_since(at) > deadline).then_some(at)
        });
        if let Some(at) = late {
            state.pending = None;
            missed.push((
                1,
                format!("the run scheduled for {at} did not start within startingDeadlineSeconds: {held_by}"),
            ));
        }
        state.next_schedule_time = self.next_after(clock.now).map(Time);
        missed
    }

    /// The first scheduled time after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&now.to_zoned(self.tz.clone()), false)
            .ok()
            .map(|z| z.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: Option<&str>) -> Result<Schedule, String> {
        Schedule::parse(&ScheduleTrigger {
            cron: cron.into(),
            time_zone: tz.map(String::from),
            starting_deadline_seconds: None,
        })
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    #[test]
    fn a_nightly_schedule_comes_due_at_its_times_and_not_between() {
        let nightly = schedule("0 2 * * *", None).expect("valid");
        let created = at("2026-12-01T10:00:00Z");
        assert_eq!(nightly.due(created, at("2026-12-02T01:59:59Z")), None);
        assert_eq!(
            nightly.due(created, at("2026-12-02T02:00:00Z")),
            Some(Due {
                latest: at("2026-12-02T02:00:00Z"),
                earlier: 0
            })
        );
        assert_eq!(
            nightly.next_after(at("2026-12-02T02:00:00Z")),
            Some(at("2026-12-03T02:00:00Z"))
        );
        assert_eq!(
            nightly.due(at("2026-12-02T02:00:00Z"), at("2026-12-02T23:00:00Z")),
            None,
            "a time already handled does not come due again"
        );
    }

    #[test]
    fn after_an_outage_only_the_latest_time_is_due_and_the_rest_are_counted() {
        let hourly = schedule("@hourly", None).expect("valid");
        let due = hourly
            .due(at("2026-12-02T00:00:00Z"), at("2026-12-02T05:30:00Z"))
            .expect("due");
        assert_eq!(due.latest, at("2026-12-02T05:00:00Z"));
        assert_eq!(due.earlier, 4, "01:00 to 04:00 were missed");
        let every_minute = schedule("* * * * *", None).expect("valid");
        let long = every_minute
            .due(at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"))
            .expect("due");
        assert_eq!(long.earlier, MISSED_COUNT_MAX, "the count stops at the cap");
    }

    fn look(schedule: &Schedule, state: &mut TriggerStatus, now: &str, deadline: Option<i64>) -> Vec<u32> {
        let clock = Clock {
            created: at("2026-12-01T10:00:00Z"),
            now: at(now),
        };
        schedule
            .advance(state, clock, deadline, "held")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    fn queued(state: &TriggerStatus) -> Option<Timestamp> {
        state
            .pending
            .as_ref()
            .and_then(|p| p.scheduled_time.as_ref())
            .map(|t| t.0)
    }

    #[test]
    fn a_schedule_queues_each_time_once_on_an_injected_clock() {
        let nightly = schedule("0 2 * * *", None).expect("valid");
        let mut state = TriggerStatus::default();
        assert!(look(&nightly, &mut state, "2026-12-02T01:59:00Z", None).is_empty());
        assert_eq!(queued(&state), None, "nothing before 02:00");
        assert_eq!(
            state.next_schedule_time.as_ref().map(|t| t.0),
            Some(at("2026-12-02T02:00:00Z"))
        );
        assert!(look(&nightly, &mut state, "2026-12-02T02:00:01Z", None).is_empty());
        assert_eq!(queued(&state), Some(at("2026-12-02T02:00:00Z")));
        state.pending = None; // the run started
        assert!(look(&nightly, &mut state, "2026-12-02T02:05:00Z", None).is_empty());
        assert_eq!(
            queued(&state),
            None,
            "02:00 is not queued twice (also after a restart: it is in status)"
        );
        assert!(look(&nightly, &mut state, "2026-12-03T02:00:00Z", None).is_empty());
        assert_eq!(queued(&state), Some(at("2026-12-03T02:00:00Z")));
    }

    #[test]
    fn missed_times_are_reported_once_and_not_replayed() {
        let hourly = schedule("0 * * * *", None).expect("valid");
        let mut state = TriggerStatus::default();
        // The operator was down from 10:00 to 14:30: 11:00-13:00 missed, 14:00 queued.
        assert_eq!(look(&hourly, &mut state, "2026-12-01T14:30:00Z", None), [3]);
        assert_eq!(queued(&state), Some(at("2026-12-01T14:00:00Z")));
        // Still held (a run in progress) when 15:00 comes: 14:00 is missed, 15:00 queued instead.
        assert_eq!(look(&hourly, &mut state, "2026-12-01T15:00:30Z", None), [1]);
        assert_eq!(queued(&state), Some(at("2026-12-01T15:00:00Z")));
        assert!(
            look(&hourly, &mut state, "2026-12-01T15:10:00Z", None).is_empty(),
            "reported once"
        );
    }

    #[test]
    fn a_run_that_cannot_start_within_the_deadline_is_missed() {
        let hourly = schedule("@hourly", None).expect("valid");
        let mut state = TriggerStatus::default();
        assert!(look(&hourly, &mut state, "2026-12-01T11:00:20Z", Some(60)).is_empty());
        assert_eq!(
            queued(&state),
            Some(at("2026-12-01T11:00:00Z")),
            "within the deadline: queued"
        );
        assert_eq!(look(&hourly, &mut state, "2026-12-01T11:01:01Z", Some(60)), [1]);
        assert_eq!(queued(&state), None, "past the deadline: dropped, not started late");
        let mut late = TriggerStatus::default();
        assert_eq!(look(&hourly, &mut late, "2026-12-01T11:30:00Z", Some(60)), [1]);
        assert_eq!(
            queued(&late),
            None,
            "found too late (the operator was down): missed at once"
        );
        assert_eq!(
            late.last_schedule_time.as_ref().map(|t| t.0),
            Some(at("2026-12-01T11:00:00Z"))
        );
    }

    #[test]
    fn a_time_zone_moves_the_schedule() {
        let berlin = schedule("0 2 * * *", Some("Europe/Berlin")).expect("valid");
        assert_eq!(
            berlin.next_after(at("2026-12-02T00:00:00Z")),
            Some(at("2026-12-02T01:00:00Z")),
            "02:00 in Berlin in winter is 01:00 UTC"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        for bad in ["* * * *", "0 0 * * * *", "61 * * * *", "0 25 * * *", "nonsense"] {
            let err = schedule(bad, None).expect_err(bad);
            assert!(err.contains("spec.trigger.schedule.cron"), "{err}");
        }
        let err = schedule("0 2 * * *", Some("Mars/Olympus")).expect_err("unknown zone");
        assert!(err.contains("timeZone \"Mars/Olympus\""), "{err}");
    }
}
