//! Cron schedules, read with CronJob's rules: five fields (or a macro), in a time zone (UTC by
//! default); of several scheduled times missed, only the latest runs.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::api::ScheduleTrigger;

/// Scheduled times counted at most when looking back (CronJob stops at 100 too).
pub const MISSED_COUNT_MAX: u32 = 100;

/// A parsed `spec.trigger.schedule`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
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
