//! Which notifications one destination sends: one per incident, a reminder
//! per rate limit while it stays open, one resolution. Pure: `now` is
//! passed in, so the rate limit is tested without waiting.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Event, Incident};
use crate::config::alert::Alert;

/// What to send after a raise or a resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Send {
    /// The incident opened (or is recalled: `reminder`).
    Open { incident: Incident, reminder: bool },
    /// The incident cleared; the last one raised under its key.
    Resolved(Incident),
}

/// One destination's incidents, by key.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    entries: HashMap<String, Entry>,
    /// Calls since the last pruning of closed entries.
    calls: u32,
}

#[derive(Debug)]
struct Entry {
    /// The incident as last raised, while it is open.
    open: Option<Incident>,
    /// Whether the open incident was sent (a reopening within the rate
    /// limit is not, until the limit has passed).
    sent: bool,
    /// When an opening or a reminder of this key was last sent.
    last_sent: Option<OffsetDateTime>,
}

/// Closed entries are kept one rate limit (so a flapping incident is not
/// sent again at once), then dropped every this many calls.
const PRUNE_EVERY: u32 = 256;

impl Ledger {
    /// `incident` was raised at `now`: what `alert` sends, if anything.
    pub(super) fn raise(
        &mut self,
        alert: &Alert,
        incident: &Incident,
        now: OffsetDateTime,
    ) -> Option<Send> {
        self.prune(alert.rate_limit, now);
        if !alert.wants(incident.event) {
            return None;
        }
        let threshold = alert.threshold(incident.event);
        if !threshold.is_zero() {
            let since = incident.since.unwrap_or(now);
            if elapsed(since, now) < threshold {
                return None;
            }
        }
        let entry = self.entries.entry(incident.key.clone()).or_insert(Entry {
            open: None,
            sent: false,
            last_sent: None,
        });
        let reopened = entry.open.is_none();
        entry.open = Some(incident.clone());
        if reopened {
            entry.sent = false;
        }
        let due = entry
            .last_sent
            .is_none_or(|last| elapsed(last, now) >= alert.rate_limit);
        if !due {
            return None;
        }
        let reminder = entry.sent;
        entry.sent = true;
        entry.last_sent = Some(now);
        Some(Send::Open {
            incident: incident.clone(),
            reminder,
        })
    }

    /// The incident `key` cleared at `now`: its resolution, when its
    /// opening was sent and `alert` takes resolutions.
    pub(super) fn resolve(
        &mut self,
        alert: &Alert,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<Send> {
        self.prune(alert.rate_limit, now);
        let entry = self.entries.get_mut(key)?;
        let incident = entry.open.take()?;
        let sent = std::mem::replace(&mut entry.sent, false);
        if entry.last_sent.is_none() {
            self.entries.remove(key);
        }
        (sent && alert.wants(Event::Resolved)).then_some(Send::Resolved(incident))
    }

    /// Whether `key` is open here (raised past its threshold, not resolved).
    #[cfg(test)]
    fn is_open(&self, key: &str) -> bool {
        self.entries.get(key).is_some_and(|e| e.open.is_some())
    }

    fn prune(&mut self, rate_limit: Duration, now: OffsetDateTime) {
        self.calls += 1;
        if self.calls < PRUNE_EVERY {
            return;
        }
        self.calls = 0;
        self.entries.retain(|_, e| {
            e.open.is_some()
                || e.last_sent
                    .is_some_and(|last| elapsed(last, now) < rate_limit)
        });
    }
}

/// `now - since`, zero when the clock went back.
fn elapsed(since: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(now - since).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alert::Target;
    use time::macros::datetime;

    fn alert(events: Option<&[Event]>) -> Alert {
        Alert {
            name: "ops".into(),
            target: Target::Command(vec!["/bin/true".into()]),
            events: events.map(|e| e.iter().copied().collect()),
            timeout: Duration::from_secs(10),
            retries: 3,
            rate_limit: Duration::from_secs(300),
            parked_after: Duration::from_secs(3600),
            held_after: Duration::from_secs(3600),
            sftp_down_after: Duration::from_secs(900),
        }
    }

    fn refused(file: &str) -> Incident {
        Incident::new(
            Event::FileRefused,
            super::super::key(Event::FileRefused, &["opera-tourism", file]),
            "refused",
        )
    }

    const T0: OffsetDateTime = datetime!(2026-12-01 09:00 UTC);

    fn at(seconds: i64) -> OffsetDateTime {
        T0 + time::Duration::seconds(seconds)
    }

    fn is_open(send: Option<Send>, want_reminder: bool) -> bool {
        matches!(send, Some(Send::Open { reminder, .. }) if reminder == want_reminder)
    }

    #[test]
    fn one_notification_per_incident_then_one_resolution() {
        let a = alert(None);
        let mut l = Ledger::default();
        let i = refused("f1");
        assert!(is_open(l.raise(&a, &i, at(0)), false));
        for s in 1..100 {
            assert_eq!(l.raise(&a, &i, at(s)), None, "raise {s}");
        }
        assert!(matches!(l.resolve(&a, &i.key, at(120)), Some(Send::Resolved(r)) if r == i));
        assert_eq!(l.resolve(&a, &i.key, at(121)), None, "resolved once");
        assert_eq!(l.resolve(&a, "refused:x:unknown", at(122)), None);
    }

    #[test]
    fn an_open_incident_is_recalled_once_per_rate_limit() {
        let a = alert(None);
        let mut l = Ledger::default();
        let i = refused("f1");
        assert!(is_open(l.raise(&a, &i, at(0)), false));
        assert_eq!(l.raise(&a, &i, at(299)), None);
        assert!(is_open(l.raise(&a, &i, at(300)), true));
        assert_eq!(l.raise(&a, &i, at(301)), None);
        assert_eq!(l.raise(&a, &i, at(599)), None);
        assert!(is_open(l.raise(&a, &i, at(600)), true));
        assert!(matches!(
            l.resolve(&a, &i.key, at(601)),
            Some(Send::Resolved(_))
        ));
    }

    #[test]
    fn a_flapping_incident_is_not_sent_again_within_the_rate_limit() {
        let a = alert(None);
        let mut l = Ledger::default();
        let i = refused("f1");
        assert!(is_open(l.raise(&a, &i, at(0)), false));
        assert!(l.resolve(&a, &i.key, at(10)).is_some());
        // Reopened 20 s later: held back, and its resolution too.
        assert_eq!(l.raise(&a, &i, at(20)), None);
        assert!(l.is_open(&i.key));
        assert_eq!(l.resolve(&a, &i.key, at(30)), None);
        // Reopened again and still open once the limit passed: sent then.
        assert_eq!(l.raise(&a, &i, at(40)), None);
        assert!(is_open(l.raise(&a, &i, at(300)), false));
        assert!(l.resolve(&a, &i.key, at(301)).is_some());
    }

    #[test]
    fn the_rate_limit_is_per_key() {
        let a = alert(None);
        let mut l = Ledger::default();
        for n in 0..1000 {
            assert!(is_open(
                l.raise(&a, &refused(&format!("f{n}")), at(0)),
                false
            ));
        }
    }

    #[test]
    fn thresholds_wait_for_the_condition_to_last() {
        let a = alert(None);
        let mut l = Ledger::default();
        let parked = Incident::new(Event::FileParked, "parked:l:f", "parked").since(at(0));
        assert_eq!(l.raise(&a, &parked, at(3599)), None);
        assert!(!l.is_open(&parked.key));
        assert_eq!(
            l.resolve(&a, &parked.key, at(3599)),
            None,
            "never opened here"
        );
        assert!(is_open(l.raise(&a, &parked, at(3600)), false));
        // Without a start, a thresholded condition has just begun.
        let down = Incident::new(Event::SftpDown, "sftp:l:OPERA", "down");
        assert_eq!(l.raise(&a, &down, at(100_000)), None);
        // The clock going back never opens one early.
        let held = Incident::new(Event::FileHeld, "held:l:f", "held").since(at(10));
        assert_eq!(l.raise(&a, &held, at(0)), None);
    }

    #[test]
    fn the_filter_applies_to_openings_and_resolutions() {
        let only_refused = alert(Some(&[Event::FileRefused]));
        let mut l = Ledger::default();
        let i = refused("f1");
        assert!(is_open(l.raise(&only_refused, &i, at(0)), false));
        assert_eq!(
            l.resolve(&only_refused, &i.key, at(1)),
            None,
            "no resolutions asked"
        );
        let job = Incident::new(Event::JobFailed, "job:l:poll", "failed");
        assert_eq!(l.raise(&only_refused, &job, at(2)), None);
        let with_resolved = alert(Some(&[Event::FileRefused, Event::Resolved]));
        let mut l = Ledger::default();
        assert!(l.raise(&with_resolved, &i, at(0)).is_some());
        assert!(l.resolve(&with_resolved, &i.key, at(1)).is_some());
    }

    #[test]
    fn closed_entries_are_pruned_after_the_rate_limit() {
        let a = alert(None);
        let mut l = Ledger::default();
        for n in 0..PRUNE_EVERY {
            let i = refused(&format!("f{n}"));
            l.raise(&a, &i, at(0));
            l.resolve(&a, &i.key, at(1));
        }
        let open = refused("still-open");
        l.raise(&a, &open, at(2));
        for n in 0..PRUNE_EVERY {
            l.resolve(&a, &format!("nothing{n}"), at(1000));
        }
        assert_eq!(l.entries.len(), 1);
        assert!(l.is_open(&open.key));
    }
}
