//! Schedules: the jobs a daemon runs by itself, and when.
//!
//! Takes the `[[schedule]]` lines of a config (a link, a [`Job`], a cron
//! line and its timezone) and answers two questions for a given `now`: when
//! does each job fire next ([`Cron::next_after`], [`next_runs`]) and which
//! jobs are due ([`Schedules::due`]). Pure: no clock, no I/O; the daemon
//! passes `now` in, so tests control time instead of sleeping.
//!
//! Rules: a cron line has 5 fields (crontab: minute hour day month weekday;
//! the seconds are 0), 6 (Quartz: seconds first) or 7 (Quartz with years).
//! Missed fires are not replayed: after a pause or a long job a due entry
//! fires once and its next fire is computed from `now`. A job never overlaps
//! itself: a fire while the same job of the same link is queued or running
//! is skipped. Times are computed in the entry's timezone (UTC by default);
//! in a daylight-saving gap a wall-clock time does not exist and that day's
//! run is skipped; in a fold it exists twice and fires once, at the first
//! (both tested below). UTC has neither.

use std::fmt;
use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;
use time::OffsetDateTime;

use crate::exchange::Kind;
use crate::exchange::Role;

/// What a schedule entry or a trigger file runs on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Write the link's next file of this kind (`export-seatplan`,
    /// `export-catalogue`, `export-contingent`: the manager; `export-sales`:
    /// the distributor).
    Export(Kind),
    /// List the link's inboxes now (and, for an SFTP link, fetch the share).
    Poll,
    /// Open the apply window of this kind on the link: the files of that kind
    /// held in the inbox (and parked ones) are applied now, in sequence order.
    Apply(Kind),
    /// Reconcile the link's two stores (both sides served by this config)
    /// and raise a `reconcile-difference` alert while they disagree.
    Reconcile,
}

impl Job {
    /// Every job, in the order they are listed to users.
    pub const ALL: [Job; 10] = [
        Job::Export(Kind::Seatplan),
        Job::Export(Kind::Catalogue),
        Job::Export(Kind::Contingent),
        Job::Export(Kind::Sales),
        Job::Poll,
        Job::Apply(Kind::Seatplan),
        Job::Apply(Kind::Catalogue),
        Job::Apply(Kind::Contingent),
        Job::Apply(Kind::Sales),
        Job::Reconcile,
    ];

    /// The job's name, as written in the config and as a trigger file.
    pub fn name(self) -> &'static str {
        match self {
            Job::Export(Kind::Seatplan) => "export-seatplan",
            Job::Export(Kind::Catalogue) => "export-catalogue",
            Job::Export(Kind::Contingent) => "export-contingent",
            Job::Export(Kind::Sales) => "export-sales",
            Job::Poll => "poll",
            Job::Apply(Kind::Seatplan) => "apply-seatplan",
            Job::Apply(Kind::Catalogue) => "apply-catalogue",
            Job::Apply(Kind::Contingent) => "apply-contingent",
            Job::Apply(Kind::Sales) => "apply-sales",
            Job::Reconcile => "reconcile",
        }
    }

    /// The sides of the link that must be served by this config to run the
    /// job: the sender of an export, the receiver of an apply window, both
    /// for a reconciliation; any side for a poll.
    pub fn sides(self) -> &'static [Role] {
        match self {
            Job::Export(kind) | Job::Apply(kind) => {
                let sender = kind.sender();
                let side = if matches!(self, Job::Export(_)) {
                    sender
                } else {
                    sender.peer()
                };
                match side {
                    Role::Manager => &[Role::Manager],
                    Role::Distributor => &[Role::Distributor],
                }
            }
            Job::Reconcile => &[Role::Manager, Role::Distributor],
            Job::Poll => &[],
        }
    }

    /// Every job name, for messages: `export-seatplan, export-catalogue, …`.
    pub fn names() -> String {
        Job::ALL.map(Job::name).join(", ")
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Job {
    type Err = String;

    fn from_str(s: &str) -> Result<Job, String> {
        Job::ALL
            .into_iter()
            .find(|j| j.name() == s)
            .ok_or_else(|| format!("expected one of {}, found {s:?}", Job::names()))
    }
}

/// A parsed cron line with its timezone.
#[derive(Debug, Clone)]
pub struct Cron {
    line: String,
    schedule: cron::Schedule,
    timezone: Tz,
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.line == other.line && self.timezone == other.timezone
    }
}

impl Cron {
    /// Parses a 5-field crontab line (`30 2 * * MON-FRI`), or a 6- or
    /// 7-field Quartz line (`0 30 2 * * MON-FRI [2027]`). The error says what
    /// was expected.
    ///
    /// Day-of-week numbers differ: crontab counts 0 or 7 = Sunday, 1 =
    /// Monday; Quartz (6 and 7 fields) counts 1 = Sunday … 7 = Saturday. A
    /// 5-field line is read the crontab way and translated; names (`MON`)
    /// mean the same everywhere. Crontab runs a line whose day of month and
    /// day of week are both restricted when *either* matches, Quartz when
    /// both do: such 5-field lines are refused rather than run differently.
    pub fn parse(line: &str, timezone: Tz) -> Result<Cron, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let quartz = match fields.as_slice() {
            [minute, hour, dom, month, dow] => {
                let restricted = |f: &str| f != "*" && f != "?";
                if restricted(dom) && restricted(dow) {
                    return Err(format!(
                        "{line:?} restricts both the day of month ({dom}) and the day of week ({dow}): crontab runs it when either matches, stxd would need both; keep one of them (use * for the other) or write two schedules"
                    ));
                }
                let dow = crontab_weekdays(dow).map_err(|e| format!("{line:?}: {e}"))?;
                format!("0 {minute} {hour} {dom} {month} {dow}")
            }
            [_, _, _, _, _, _] | [_, _, _, _, _, _, _] => fields.join(" "),
            [one] if one.starts_with('@') => (*one).to_owned(),
            _ => {
                return Err(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week, as in crontab), or 6 or 7 (seconds first, years last, as in Quartz), found {} in {line:?}",
                    fields.len()
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&quartz).map_err(|e| {
            format!(
                "{line:?} is not a valid cron line: {e}; expected e.g. \"0 2 * * *\" (every day at 02:00) or \"0 */15 * * * MON-FRI\""
            )
        })?;
        let cron = Cron {
            line: line.trim().to_owned(),
            schedule,
            timezone,
        };
        // A line that can never fire again (30 February, a past year) would
        // hold an apply window's files for ever: refuse it.
        if cron.next_after(OffsetDateTime::now_utc()).is_none() {
            return Err(format!(
                "{line:?} never fires (no such date, or only in the past); expected a line that runs again"
            ));
        }
        Ok(cron)
    }

    /// The line as written in the config.
    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire strictly after `now`, if the line fires again.
    pub fn next_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let nanos = now.unix_timestamp_nanos();
        let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        let local = self.timezone.timestamp_opt(secs, sub).single()?;
        // In the hour repeated when clocks go back, cron may answer a time
        // of the first pass, already gone: only a time after `now` counts,
        // or the daemon would fire the job again and again.
        let next = self.schedule.after(&local).take(1000).find(|t| {
            t.timestamp() > secs || (t.timestamp() == secs && t.timestamp_subsec_nanos() > sub)
        })?;
        let ts = i128::from(next.timestamp()) * 1_000_000_000
            + i128::from(next.timestamp_subsec_nanos());
        OffsetDateTime::from_unix_timestamp_nanos(ts).ok()
    }
}

/// Translates a crontab day-of-week field (0-7, names, ranges, steps) into
/// the equivalent list of names, which Quartz reads the same way.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let expected = |item: &str| {
        format!(
            "expected a day of week as 0-7 (0 and 7 = Sunday) or SUN-SAT, with ranges, lists and steps (1-5, MON,WED, */2), found {item:?}"
        )
    };
    let day = |s: &str| -> Option<usize> {
        match s.parse::<usize>() {
            Ok(n @ 0..=7) => Some(n),
            Ok(_) => None,
            Err(_) => NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)),
        }
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => match s.parse::<usize>() {
                Ok(n @ 1..) => (r, n),
                _ => return Err(expected(item)),
            },
            None => (item, 1),
        };
        let (from, to) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((a, b)) => (
                day(a).ok_or_else(|| expected(item))?,
                day(b).ok_or_else(|| expected(item))?,
            ),
            // `5/2` means from 5 to the end of the week (7, Sunday again),
            // as in cronie.
            None if step > 1 => (day(range).ok_or_else(|| expected(item))?, 7),
            None => {
                let d = day(range).ok_or_else(|| expected(item))?;
                (d, d)
            }
        };
        if from > to {
            return Err(format!(
                "{item:?}: a range of days must go forward within the week (0-7, SUN-SAT)"
            ));
        }
        for d in (from..=to).step_by(step) {
            days[d % 7] = true;
        }
    }
    let list: Vec<&str> = (0..7).filter(|&d| days[d]).map(|d| NAMES[d]).collect();
    Ok(list.join(","))
}

/// One `[[schedule]]` line of the config, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub link: String,
    pub job: Job,
    pub cron: Cron,
}

/// The next fire of one schedule entry (for `stxd status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRun {
    pub link: String,
    pub job: String,
    pub at: OffsetDateTime,
}

/// The next fire of every entry after `now`, earliest first; entries that
/// never fire again are left out.
pub fn next_runs(entries: &[Entry], now: OffsetDateTime) -> Vec<NextRun> {
    let mut runs: Vec<NextRun> = entries
        .iter()
        .filter_map(|e| {
            Some(NextRun {
                link: e.link.clone(),
                job: e.job.name().to_owned(),
                at: e.cron.next_after(now)?,
            })
        })
        .collect();
    runs.sort_by(|a, b| (a.at, &a.link, &a.job).cmp(&(b.at, &b.link, &b.job)));
    runs
}

/// A job to run now because its schedule fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub link: String,
    pub job: Job,
    /// The fire time that was due (the latest one when several passed).
    pub at: OffsetDateTime,
}

/// What [`Schedules::due`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// Run these now.
    pub due: Vec<Due>,
    /// Skipped: the same job of the same link was queued or running.
    pub skipped: Vec<Due>,
}

/// The daemon's schedules: every entry with its next fire time.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    slots: Vec<(Entry, Option<OffsetDateTime>)>,
}

impl Schedules {
    /// Starts every entry's clock at `now`: the first fires are the ones
    /// after `now` (nothing missed before the start is replayed).
    pub fn new(entries: &[Entry], now: OffsetDateTime) -> Schedules {
        Schedules {
            slots: entries
                .iter()
                .map(|e| (e.clone(), e.cron.next_after(now)))
                .collect(),
        }
    }

    /// The entries whose fire time has come by `now`. Each gives one run
    /// however many of its fire times passed (no burst after a pause), and
    /// its next fire is computed from `now`. `busy(link, job)` tells whether
    /// that job is queued or running: its fire is then skipped, so a job
    /// never overlaps itself (two entries for the same job fire it once).
    pub fn due(&mut self, now: OffsetDateTime, busy: impl Fn(&str, Job) -> bool) -> Fired {
        let mut fired = Fired::default();
        for (entry, next) in &mut self.slots {
            let Some(at) = *next else { continue };
            if at > now {
                continue;
            }
            *next = entry.cron.next_after(now);
            let due = Due {
                link: entry.link.clone(),
                job: entry.job,
                at,
            };
            let taken = fired
                .due
                .iter()
                .any(|d| d.link == due.link && d.job == due.job);
            if taken || busy(&due.link, due.job) {
                fired.skipped.push(due);
            } else {
                fired.due.push(due);
            }
        }
        fired
    }

    /// The earliest next fire of all entries.
    pub fn next_wake(&self) -> Option<OffsetDateTime> {
        self.slots.iter().filter_map(|(_, next)| *next).min()
    }
}

/// The apply window of `kind` on `link` among `entries`: `None` when files
/// of that kind apply as soon as they are complete; `Some(next)` when they
/// wait for the next `apply-<kind>` fire (`next` is `None` if it never fires
/// again).
pub fn apply_window(
    entries: &[Entry],
    link: &str,
    kind: Kind,
    now: OffsetDateTime,
) -> Option<Option<OffsetDateTime>> {
    let mut windows = entries
        .iter()
        .filter(|e| e.link == link && e.job == Job::Apply(kind))
        .peekable();
    windows.peek()?;
    Some(windows.filter_map(|e| e.cron.next_after(now)).min())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn cron(line: &str) -> Cron {
        Cron::parse(line, Tz::UTC).unwrap()
    }

    fn fires(c: &Cron, from: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut now = from;
        for _ in 0..n {
            now = c.next_after(now).unwrap();
            out.push(now);
        }
        out
    }

    #[test]
    fn five_field_lines_are_crontab_lines_with_seconds_zero() {
        let start = datetime!(2026-11-28 17:00:00 UTC);
        for (crontab, quartz) in [
            ("0 2 * * *", "0 0 2 * * *"),
            ("*/15 8-18 * * *", "0 */15 8-18 * * *"),
            ("30 2 1 * *", "0 30 2 1 * *"),
            ("0 2 * * MON-FRI", "0 0 2 * * MON-FRI"),
            // crontab 1-5 is Monday to Friday; Quartz 2-6.
            ("0 2 * * 1-5", "0 0 2 * * 2-6"),
            // 0 and 7 are both Sunday.
            ("0 2 * * 0", "0 0 2 * * SUN"),
            ("0 2 * * 7", "0 0 2 * * SUN"),
            ("0 2 * * 5-7", "0 0 2 * * FRI,SAT,SUN"),
            ("0 2 * * */2", "0 0 2 * * SUN,TUE,THU,SAT"),
            ("0 2 * * 1,3", "0 0 2 * * MON,WED"),
        ] {
            assert_eq!(
                fires(&cron(crontab), start, 12),
                fires(&cron(quartz), start, 12),
                "{crontab} vs {quartz}"
            );
        }
        // Weekday 1 is a Monday in crontab: 2026-11-30 is a Monday.
        assert_eq!(
            cron("0 2 * * 1").next_after(start),
            Some(datetime!(2026-11-30 02:00:00 UTC))
        );
        assert_eq!(
            cron("0 0 2 * * 2").next_after(start),
            Some(datetime!(2026-11-30 02:00:00 UTC)),
            "Quartz: 2 = Monday"
        );
    }

    #[test]
    fn six_and_seven_field_lines_and_every_second() {
        let now = datetime!(2026-11-28 17:00:00.250 UTC);
        assert_eq!(
            fires(&cron("* * * * * *"), now, 3),
            vec![
                datetime!(2026-11-28 17:00:01 UTC),
                datetime!(2026-11-28 17:00:02 UTC),
                datetime!(2026-11-28 17:00:03 UTC)
            ]
        );
        assert_eq!(
            cron("0 0 3 1 1 * 2028").next_after(now),
            Some(datetime!(2028-01-01 03:00:00 UTC))
        );
        assert_eq!(
            cron("@daily").next_after(now),
            Some(datetime!(2026-11-29 00:00:00 UTC))
        );
    }

    #[test]
    fn invalid_lines_say_what_was_expected() {
        for (line, says) in [
            ("0 2 * *", "expected 5 fields"),
            ("", "found 0"),
            ("1 2 3 4 5 6 7 8", "found 8"),
            ("0 25 * * *", "not a valid cron line"),
            ("0 2 * * 8", "0-7 (0 and 7 = Sunday)"),
            ("0 2 * * FUN", "SUN-SAT"),
            ("0 2 * * 5-1", "must go forward"),
            ("0 2 1 * MON", "either matches"),
        ] {
            let e = Cron::parse(line, Tz::UTC).unwrap_err();
            assert!(e.contains(says), "{line:?}: {e}");
        }
    }

    #[test]
    fn timezones_and_daylight_saving_in_paris() {
        let paris = Cron::parse("0 2 * * *", chrono_tz::Europe::Paris).unwrap();
        // Winter: UTC+1.
        assert_eq!(
            paris.next_after(datetime!(2026-11-28 12:00:00 UTC)),
            Some(datetime!(2026-11-29 01:00:00 UTC))
        );
        // Summer: UTC+2.
        assert_eq!(
            paris.next_after(datetime!(2026-07-01 12:00:00 UTC)),
            Some(datetime!(2026-07-02 00:00:00 UTC))
        );
        // 2026-03-29: 02:00 does not exist in Paris (clocks jump to 03:00):
        // that day's run is skipped, the next is on the 30th.
        assert_eq!(
            paris.next_after(datetime!(2026-03-28 12:00:00 UTC)),
            Some(datetime!(2026-03-30 00:00:00 UTC))
        );
        // 2026-10-25: 02:30 exists twice (CEST then CET): it fires once,
        // at the first one.
        let fold = Cron::parse("30 2 * * *", chrono_tz::Europe::Paris).unwrap();
        assert_eq!(
            fires(&fold, datetime!(2026-10-24 12:00:00 UTC), 3),
            vec![
                datetime!(2026-10-25 00:30:00 UTC),
                datetime!(2026-10-26 01:30:00 UTC),
                datetime!(2026-10-27 01:30:00 UTC),
            ]
        );
        // Inside the repeated hour (02:25 CET, the second pass), the next
        // fire is still ahead of now, never back in the first pass.
        let every10 = Cron::parse("0 */10 * * * *", chrono_tz::Europe::Paris).unwrap();
        for now in [
            datetime!(2026-10-25 01:25:00 UTC),
            datetime!(2026-10-25 00:55:00 UTC),
            datetime!(2026-10-25 01:00:00 UTC),
        ] {
            let next = every10.next_after(now).unwrap();
            assert!(next > now, "{now} -> {next}");
            // Each local time fires once: at most the repeated hour is skipped.
            assert!(next - now <= time::Duration::minutes(70), "{now} -> {next}");
        }
    }

    #[test]
    fn crontab_day_steps_run_to_sunday_and_lines_that_never_fire_are_refused() {
        let utc = chrono_tz::UTC;
        // 1/2: Monday, Wednesday, Friday and Sunday (cronie counts to 7).
        let start = datetime!(2026-11-30 12:00:00 UTC); // a Monday
        assert_eq!(
            fires(&Cron::parse("0 0 * * 1/2", utc).unwrap(), start, 4),
            fires(
                &Cron::parse("0 0 0 * * MON,WED,FRI,SUN", utc).unwrap(),
                start,
                4
            )
        );
        let e = Cron::parse("0 0 30 2 *", utc).unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        let e = Cron::parse("0 0 0 1 1 * 2001", utc).unwrap_err();
        assert!(e.contains("never fires"), "{e}");
    }

    fn entry(link: &str, job: Job, line: &str) -> Entry {
        Entry {
            link: link.into(),
            job,
            cron: cron(line),
        }
    }

    #[test]
    fn no_burst_after_a_three_day_gap() {
        let start = datetime!(2026-11-28 00:00:30 UTC);
        let e = entry("l", Job::Export(Kind::Catalogue), "* * * * *");
        let mut s = Schedules::new(std::slice::from_ref(&e), start);
        assert_eq!(s.next_wake(), Some(datetime!(2026-11-28 00:01:00 UTC)));
        assert!(s.due(start, |_, _| false).due.is_empty(), "not yet");
        // The daemon was paused for three days (4320 missed minutes).
        let later = datetime!(2026-12-01 00:00:10 UTC);
        let fired = s.due(later, |_, _| false);
        assert_eq!(fired.due.len(), 1, "one run, not a burst: {fired:?}");
        assert_eq!(fired.due[0].at, datetime!(2026-11-28 00:01:00 UTC));
        assert_eq!(s.next_wake(), Some(datetime!(2026-12-01 00:01:00 UTC)));
        assert!(s.due(later, |_, _| false).due.is_empty());
        assert_eq!(
            s.due(datetime!(2026-12-01 00:01:00 UTC), |_, _| false)
                .due
                .len(),
            1
        );
    }

    #[test]
    fn a_job_never_overlaps_itself() {
        let start = datetime!(2026-11-28 10:00:00 UTC);
        let entries = [
            entry("a", Job::Export(Kind::Catalogue), "* * * * * *"),
            // A second entry for the same job fires it once.
            entry("a", Job::Export(Kind::Catalogue), "*/2 * * * * *"),
            entry("b", Job::Export(Kind::Catalogue), "* * * * * *"),
        ];
        let mut s = Schedules::new(&entries, start);
        let t = datetime!(2026-11-28 10:00:02 UTC);
        let fired = s.due(t, |_, _| false);
        let names: Vec<_> = fired.due.iter().map(|d| d.link.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(fired.skipped.len(), 1);
        // While a's export runs, its fires are skipped; b's are not.
        let t = datetime!(2026-11-28 10:00:03 UTC);
        let fired = s.due(t, |link, job| {
            link == "a" && job == Job::Export(Kind::Catalogue)
        });
        let names: Vec<_> = fired.due.iter().map(|d| d.link.as_str()).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(fired.skipped.len(), 1);
        // Done: the next fire runs it again.
        let fired = s.due(datetime!(2026-11-28 10:00:04 UTC), |_, _| false);
        assert_eq!(fired.due.len(), 2);
    }

    #[test]
    fn next_runs_are_sorted_and_apply_windows_found() {
        let now = datetime!(2026-11-28 10:00:00 UTC);
        let entries = [
            entry("l", Job::Export(Kind::Catalogue), "0 2 * * *"),
            entry("l", Job::Poll, "*/5 * * * *"),
            entry("l", Job::Apply(Kind::Catalogue), "0 3 * * *"),
            entry("l", Job::Apply(Kind::Catalogue), "0 23 * * *"),
        ];
        let runs = next_runs(&entries, now);
        let jobs: Vec<_> = runs.iter().map(|r| r.job.as_str()).collect();
        assert_eq!(
            jobs,
            [
                "poll",
                "apply-catalogue",
                "export-catalogue",
                "apply-catalogue"
            ]
        );
        assert_eq!(runs[0].at, datetime!(2026-11-28 10:05:00 UTC));
        assert_eq!(
            apply_window(&entries, "l", Kind::Catalogue, now),
            Some(Some(datetime!(2026-11-28 23:00:00 UTC)))
        );
        assert_eq!(apply_window(&entries, "l", Kind::Seatplan, now), None);
        assert_eq!(apply_window(&entries, "m", Kind::Catalogue, now), None);
    }

    #[test]
    fn job_names_round_trip_and_sides() {
        for job in Job::ALL {
            assert_eq!(job.name().parse::<Job>(), Ok(job));
        }
        assert!("export".parse::<Job>().unwrap_err().contains("apply-sales"));
        assert_eq!(Job::Export(Kind::Sales).sides(), [Role::Distributor]);
        assert_eq!(Job::Export(Kind::Seatplan).sides(), [Role::Manager]);
        assert_eq!(Job::Apply(Kind::Catalogue).sides(), [Role::Distributor]);
        assert_eq!(Job::Apply(Kind::Sales).sides(), [Role::Manager]);
        assert_eq!(Job::Reconcile.sides(), [Role::Manager, Role::Distributor]);
        assert!(Job::Poll.sides().is_empty());
    }
}
