//! The CONTINGENT file at the distributor: each performance's snapshot of
//! the seats and zone places the manager set aside for this link.
//!
//! [`ContingentImport`] takes the file's lines one at a time (pushed by the
//! inbound pipeline, inside the caller's transaction) and returns a
//! [`ContingentOutcome`]: the snapshots applied, those ignored because they
//! were not newer than the one applied (`older-snapshot`), and the places
//! sold here that an applied snapshot no longer holds (`kept-sold`: they stay
//! sold, only no longer sellable).
//!
//! A snapshot's version must be newer than the applied one to apply, so a
//! version far in the future would freeze the performance: every later
//! snapshot would look older. The reader bounds versions
//! ([`contingent::MAX_VERSION`]), and a snapshot more than
//! [`MAX_VERSION_JUMP`] ahead of the version applied (or of 0, for a first
//! snapshot) refuses the file (`version-out-of-range`).
//!
//! A `RESOLUTION` line records the manager's decision on one of this
//! link's sale lines (`sale_line_resolution`, shown by `stxd sale list`),
//! in the file's transaction; a line id this store does not have on the
//! link refuses the whole file (`resolution-unknown-line`): the manager only
//! resolves lines it received from this distributor, so an unknown one
//! means the link points at another store, and nothing of the file is
//! applied until that is understood. The same decision told again is
//! recorded once (an info message); another decision on a line already
//! resolved refuses the file (`resolution-differs`).
//!
//! Every refusal names the file, the line (the header is line 1) and has a
//! stable code.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Statement, Transaction};

use crate::domain::import::Context;
use crate::domain::mapping::{self, Resolved};
use crate::domain::{DomainError, held};
use crate::format::{Position, contingent};
use crate::ident::{Code, TechId};
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Level};

/// A refusal of the file, with its stable code (the file and the line are
/// added by [`ContingentImport::item`]).
struct Refused {
    code: &'static str,
    object: String,
    problem: String,
}

impl From<Refused> for DomainError {
    fn from(r: Refused) -> DomainError {
        DomainError::refused(r.code, r.object, r.problem)
    }
}

/// How far ahead of the applied version (0 before the first) a snapshot
/// may be: a million changes. The manager's version grows by one at each
/// change of the performance's allotment, so a real file never comes near;
/// a larger jump is a corrupt or hostile version that would make every
/// later snapshot "older" for ever, and is refused instead of applied.
pub const MAX_VERSION_JUMP: u64 = 1_000_000;

/// Most seat labels quoted in one `kept-sold` message (the count is exact).
const MAX_LABELS: usize = 20;

/// What a CONTINGENT file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContingentOutcome {
    /// Snapshots applied: manager performance and version.
    pub applied: Vec<(TechId, u64)>,
    /// Snapshots not newer than the one applied: manager performance, the
    /// file's version, the version already applied.
    pub ignored: Vec<(TechId, u64, u64)>,
    /// Places sold here that the applied snapshots no longer hold (seats
    /// taken back, zone places above the new quantity): they stay sold.
    pub kept_sold: u64,
    /// The manager's resolutions recorded: line id and decision.
    pub resolutions: Vec<(u64, contingent::Decision)>,
}

/// The snapshot being read.
#[derive(Debug)]
enum Group {
    Apply {
        manager: TechId,
        local: i64,
        version: u64,
        seats: u64,
        places: u64,
    },
    /// Older than the one applied, or of an ignored performance: its lines
    /// are read and dropped.
    Skip(TechId),
}

/// Applies a CONTINGENT file's snapshots, one line at a time.
pub struct ContingentImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    link: &'t str,
    open: Option<Group>,
    outcome: ContingentOutcome,
    /// The line being applied (the header is line 1).
    line: u64,
    /// What the blocks, zones and seat categories of the file map to, read
    /// once each: the import writes no mapping and removes no local object,
    /// so an answer holds for the whole file (a contingent names the same
    /// few of them on every line).
    mapped: HashMap<(MappingKind, TechId), Option<Resolved>>,
    /// The two statements of every seat line, prepared at the first and
    /// held for the file (the statement cache would look each up by its
    /// text at every line).
    find_seat: Option<Statement<'t>>,
    add_seat: Option<Statement<'t>>,
    /// The local seats found so far (and their seat categories), by local
    /// block and the row's and seat's packed labels: a file of several
    /// performances of one venue names each seat once per performance, and
    /// the import changes no seat. At most [`SEATS_KEPT`]; a seat past that
    /// is looked up in the store at every line.
    seats: HashMap<(i64, u64, u64), (i64, i64)>,
}

/// Most local seats [`ContingentImport`] keeps found: the largest
/// snapshot the reader accepts, so that memory is bounded by the venue,
/// never by the file.
const SEATS_KEPT: usize = contingent::MAX_GROUP_PLACES;

/// Finds a seat of a mapped block by its row's and its own labels.
const FIND_SEAT: &str = "SELECT s.id, s.seat_category FROM seat s JOIN seat_row r ON r.id = s.row
                         WHERE r.block = ?1 AND r.code = ?2 AND s.number = ?3";

/// Puts a seat in a performance's contingent; no row when it is there.
const ADD_SEAT: &str = "INSERT INTO contingent_seat (performance, seat) VALUES (?1, ?2)
                        ON CONFLICT DO NOTHING";

impl<'t> ContingentImport<'t> {
    pub fn new(tx: &'t Transaction<'t>, ctx: Context<'t>, link: &'t str) -> Self {
        ContingentImport {
            tx,
            ctx,
            link,
            open: None,
            outcome: ContingentOutcome::default(),
            line: 1,
            mapped: HashMap::new(),
            find_seat: None,
            add_seat: None,
            seats: HashMap::new(),
        }
    }

    /// Takes the next line of the file (lines are counted from the header,
    /// line 1, for the positions of refusals).
    pub fn item(&mut self, line: &contingent::Line) -> Result<(), DomainError> {
        self.line += 1;
        let (file, at) = (self.ctx.file, self.line);
        self.apply(line)
            .map_err(|e| e.locate(file, || Position::line(at)))
    }

    fn apply(&mut self, line: &contingent::Line) -> Result<(), DomainError> {
        match line {
            contingent::Line::Resolution {
                line,
                decision,
                reason,
                decided,
            } => {
                self.close()?;
                self.resolution(*line, *decision, reason, *decided)
            }
            contingent::Line::Performance {
                performance,
                version,
            } => {
                self.close()?;
                self.open = Some(self.start(*performance, *version)?);
                Ok(())
            }
            contingent::Line::Seat {
                performance,
                block,
                row,
                seat,
                seat_category,
                ..
            } => {
                let local = match self.group(*performance)? {
                    None => return Ok(()),
                    Some(l) => l,
                };
                let (seat_id, category) = self.local_seat(*block, row, seat)?;
                self.check_category(*seat_category, category, || {
                    format!("seat {block} {row} {seat}")
                })?;
                let n = held(&mut self.add_seat, self.tx, ADD_SEAT)?.execute((local, seat_id))?;
                if n == 0 {
                    return Err(DomainError::from(Refused {
                        code: "mapping-collision",
                        object: format!("seat {block} {row} {seat}"),
                        problem: format!(
                            "another seat of performance {performance}'s snapshot maps to the same local seat {seat_id}; check the block and row mappings"
                        ),
                    }));
                }
                if let Some(Group::Apply { seats, .. }) = &mut self.open {
                    *seats += 1;
                }
                Ok(())
            }
            contingent::Line::Zone {
                performance,
                zone,
                quantity,
                seat_category,
                ..
            } => {
                let local = match self.group(*performance)? {
                    None => return Ok(()),
                    Some(l) => l,
                };
                let object = format!("zone {zone}");
                let zone_id = match self.lookup(MappingKind::Zone, *zone)? {
                    Some(Resolved::Local(id)) => id,
                    _ => {
                        return Err(DomainError::from(Refused {
                            code: "unmapped-zone",
                            object,
                            problem: format!(
                                "zone {zone} is not mapped: import the seat plan first (it maps zones automatically)"
                            ),
                        }));
                    }
                };
                let category: i64 = self
                    .tx
                    .prepare_cached("SELECT seat_category FROM zone WHERE id = ?1")?
                    .query_row([zone_id], |r| r.get(0))?;
                self.check_category(*seat_category, category, || format!("zone {zone}"))?;
                let n = self
                    .tx
                    .prepare_cached(
                        "INSERT INTO contingent_zone (performance, zone, quantity) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute((local, zone_id, i64::from(*quantity)))?;
                if n == 0 {
                    return Err(DomainError::from(Refused {
                        code: "mapping-collision",
                        object,
                        problem: format!(
                            "another zone of performance {performance}'s snapshot maps to the same local zone {zone_id}; check the zone mappings"
                        ),
                    }));
                }
                if let Some(Group::Apply { places, .. }) = &mut self.open {
                    *places += u64::from(*quantity);
                }
                Ok(())
            }
        }
    }

    /// Records the manager's decision on sale line `line` of this link.
    fn resolution(
        &mut self,
        line: u64,
        decision: contingent::Decision,
        reason: &str,
        decided: time::OffsetDateTime,
    ) -> Result<(), DomainError> {
        let object = || format!("RESOLUTION of line id {line}");
        let known: Option<String> = match i64::try_from(line) {
            Ok(id) => self
                .tx
                .prepare_cached("SELECT operation FROM sale_line WHERE id = ?1 AND link = ?2")?
                .query_row((id, self.link), |r| r.get(0))
                .optional()?,
            Err(_) => None,
        };
        let Some(operation) = known else {
            return Err(Refused {
                code: "resolution-unknown-line",
                object: object(),
                problem: format!(
                    "expected a sale or refund line of link {} in this store, found no line {line}: the manager resolved a line this store never sent; check that link {} uses this store",
                    self.link, self.link
                ),
            }
            .into());
        };
        let decided = crate::format::csv::format_time(decided).map_err(|e| Refused {
            code: "bad-time",
            object: object(),
            problem: e.to_string(),
        })?;
        let before: Option<String> = self
            .tx
            .prepare_cached("SELECT decision FROM sale_line_resolution WHERE line = ?1")?
            .query_row([line as i64], |r| r.get(0))
            .optional()?;
        let location = format!("line {}", self.line);
        match before {
            Some(b) if b == decision.as_str() => {
                runs::message(
                    self.tx,
                    self.ctx.run,
                    Level::Info,
                    "resolution-known",
                    Some(&location),
                    &format!(
                        "line id {line}: already recorded as {b} by the manager; nothing done"
                    ),
                )?;
                return Ok(());
            }
            Some(b) => {
                return Err(Refused {
                    code: "resolution-differs",
                    object: object(),
                    problem: format!(
                        "line id {line} is already recorded as {b} by the manager, this file says {}; a line is resolved once",
                        decision.as_str()
                    ),
                }
                .into());
            }
            None => {}
        }
        self.tx
            .prepare_cached(
                "INSERT INTO sale_line_resolution (line, link, decision, reason, decided, file, applied)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute((
                line as i64,
                self.link,
                decision.as_str(),
                reason,
                &decided,
                self.ctx.file,
                crate::store::now(),
            ))?;
        runs::message(
            self.tx,
            self.ctx.run,
            Level::Info,
            match decision {
                contingent::Decision::Accepted => "line-accepted",
                contingent::Decision::Dismissed => "line-dismissed",
            },
            Some(&location),
            &format!(
                "{operation} line id {line} {} by the manager on {decided}: {reason}",
                decision.as_str()
            ),
        )?;
        self.outcome.resolutions.push((line, decision));
        Ok(())
    }

    /// Ends the last snapshot and returns what the file did.
    pub fn finish(mut self) -> Result<ContingentOutcome, DomainError> {
        self.close()?;
        Ok(std::mem::take(&mut self.outcome))
    }

    /// The local performance a SEAT/ZONE line goes to; `None` when its
    /// snapshot is skipped.
    fn group(&self, performance: TechId) -> Result<Option<i64>, DomainError> {
        match &self.open {
            Some(Group::Apply { manager, local, .. }) if *manager == performance => {
                Ok(Some(*local))
            }
            Some(Group::Skip(manager)) if *manager == performance => Ok(None),
            _ => Err(DomainError::from(Refused {
                code: "contingent-group",
                object: format!("performance {performance}"),
                problem: "expected its places after its PERFORMANCE line".to_owned(),
            })),
        }
    }

    /// Opens a performance's snapshot: applied (its previous places removed)
    /// or skipped.
    fn start(&mut self, performance: TechId, version: u64) -> Result<Group, DomainError> {
        let location = format!("performance {performance}");
        let local = match mapping::lookup(
            self.tx,
            self.ctx.manager,
            MappingKind::Performance,
            performance,
        )? {
            Some(Resolved::Local(id)) => id,
            Some(Resolved::Ignored) => {
                runs::message(
                    self.tx,
                    self.ctx.run,
                    Level::Warning,
                    "ignored-performance",
                    Some(&location),
                    &format!(
                        "version {version} not applied: performance {performance} is mapped as ignored (its activity is not sold here)"
                    ),
                )?;
                return Ok(Group::Skip(performance));
            }
            _ => {
                return Err(DomainError::from(Refused {
                    code: "unknown-performance",
                    object: format!("performance {performance}"),
                    problem: "this performance is not known here: import the catalogue first (it maps performances automatically)".to_owned(),
                }));
            }
        };
        let version_sql = i64::try_from(version).map_err(|_| {
            DomainError::from(Refused {
                code: "version-out-of-range",
                object: format!("performance {performance}"),
                problem: format!("version {version} is too large"),
            })
        })?;
        let applied: Option<(i64, String)> = self
            .tx
            .prepare_cached("SELECT version, link FROM contingent_snapshot WHERE performance = ?1")?
            .query_row([local], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let last = applied.as_ref().map_or(0, |(v, _)| *v);
        if version_sql > last
            && version.saturating_sub(u64::try_from(last).unwrap_or(0)) > MAX_VERSION_JUMP
        {
            return Err(DomainError::from(Refused {
                code: "version-out-of-range",
                object: format!("performance {performance}"),
                problem: format!(
                    "version {version} is more than {MAX_VERSION_JUMP} ahead of the version applied here ({last}); versions grow by one at each change, so this one is corrupt and applying it would make every later snapshot look older; the manager must send the performance's real version"
                ),
            }));
        }
        if let Some((applied, link)) = &applied {
            if link != self.link {
                return Err(DomainError::from(Refused {
                    code: "other-link",
                    object: format!("performance {performance}"),
                    problem: format!(
                        "its contingent comes from link {link}, not {}; one performance is sold through one link",
                        self.link
                    ),
                }));
            }
            if version_sql <= *applied {
                let applied = u64::try_from(*applied).unwrap_or(0);
                runs::message(
                    self.tx,
                    self.ctx.run,
                    Level::Warning,
                    "older-snapshot",
                    Some(&location),
                    &format!("version {version} ignored, version {applied} already applied"),
                )?;
                self.outcome.ignored.push((performance, version, applied));
                return Ok(Group::Skip(performance));
            }
        }
        self.tx
            .prepare_cached("DELETE FROM contingent_seat WHERE performance = ?1")?
            .execute([local])?;
        self.tx
            .prepare_cached("DELETE FROM contingent_zone WHERE performance = ?1")?
            .execute([local])?;
        self.tx
            .prepare_cached(
                "INSERT INTO contingent_snapshot (performance, link, version, applied)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (performance) DO UPDATE SET
                     version = excluded.version, applied = excluded.applied",
            )?
            .execute((local, self.link, version_sql, crate::store::now()))?;
        Ok(Group::Apply {
            manager: performance,
            local,
            version,
            seats: 0,
            places: 0,
        })
    }

    /// Ends the open snapshot: reports what it applied and the sold places
    /// it no longer holds.
    fn close(&mut self) -> Result<(), DomainError> {
        let Some(Group::Apply {
            manager,
            local,
            version,
            seats,
            places,
        }) = self.open.take()
        else {
            return Ok(());
        };
        let location = format!("performance {manager}");
        runs::message(
            self.tx,
            self.ctx.run,
            Level::Info,
            "applied",
            Some(&location),
            &format!("version {version} applied: {seats} seat(s), {places} zone place(s)"),
        )?;
        self.outcome.applied.push((manager, version));

        // Seats sold here that the snapshot no longer holds.
        let mut st = self.tx.prepare_cached(
            "SELECT b.code, r.code, s.number FROM sale_line l
               JOIN seat s ON s.id = l.seat
               JOIN seat_row r ON r.id = s.row
               JOIN block b ON b.id = r.block
             WHERE l.performance = ?1 AND l.active = 1 AND l.seat IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM contingent_seat c
                               WHERE c.performance = l.performance AND c.seat = l.seat)
             ORDER BY b.code, r.code, s.number",
        )?;
        let mut rows = st.query([local])?;
        let mut count = 0u64;
        let mut labels = Vec::new();
        while let Some(r) = rows.next()? {
            count += 1;
            if labels.len() < MAX_LABELS {
                labels.push(format!(
                    "{} {} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ));
            }
        }
        drop(rows);
        if count > 0 {
            let more = if count > labels.len() as u64 {
                format!(" and {} more", count - labels.len() as u64)
            } else {
                String::new()
            };
            runs::message(
                self.tx,
                self.ctx.run,
                Level::Warning,
                "kept-sold",
                Some(&location),
                &format!(
                    "version {version} takes back {count} seat(s) sold here; they stay sold, and are no longer sellable once refunded: {}{more}",
                    labels.join(", ")
                ),
            )?;
            self.outcome.kept_sold += count;
        }

        // Zones whose new quantity is below what is sold in them.
        let mut st = self.tx.prepare_cached(
            "SELECT z.code, count(*), coalesce(cz.quantity, 0) FROM sale_line l
               JOIN zone z ON z.id = l.zone
               LEFT JOIN contingent_zone cz ON cz.performance = l.performance AND cz.zone = l.zone
             WHERE l.performance = ?1 AND l.active = 1 AND l.zone IS NOT NULL
             GROUP BY l.zone
             HAVING count(*) > coalesce(cz.quantity, 0)
             ORDER BY z.code",
        )?;
        let zones: Vec<(String, i64, i64)> = st
            .query_map([local], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (zone, sold, quantity) in zones {
            let excess = u64::try_from(sold - quantity).unwrap_or(0);
            runs::message(
                self.tx,
                self.ctx.run,
                Level::Warning,
                "kept-sold",
                Some(&location),
                &format!(
                    "version {version} gives zone {zone} {quantity} place(s) but {sold} are sold here; the sales stay, no place of it is sellable until refunds bring it below {quantity}"
                ),
            )?;
            self.outcome.kept_sold += excess;
        }
        Ok(())
    }

    /// The local seat of a manager seat: block through the mapping, then the
    /// row code and the seat number.
    fn local_seat(
        &mut self,
        block: TechId,
        row: &Code,
        seat: &Code,
    ) -> Result<(i64, i64), DomainError> {
        let object = || format!("seat {block} {row} {seat}");
        let block_id = match self.lookup(MappingKind::Block, block)? {
            Some(Resolved::Local(id)) => id,
            _ => {
                return Err(DomainError::from(Refused {
                    code: "unmapped-block",
                    object: object(),
                    problem: format!(
                        "block {block} is not mapped: import the seat plan first (it maps blocks automatically)"
                    ),
                }));
            }
        };
        let key = (block_id, row.packed(), seat.packed());
        if let Some(known) = self.seats.get(&key) {
            return Ok(*known);
        }
        let found: Option<(i64, i64)> = held(&mut self.find_seat, self.tx, FIND_SEAT)?
            .query_row((block_id, row.as_str(), seat.as_str()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some(local) = found
            && self.seats.len() < SEATS_KEPT
        {
            self.seats.insert(key, local);
        }
        found.ok_or_else(|| {
            DomainError::from(Refused {
            code: "unknown-seat",
            object: object(),
            problem:
                "no such seat in the local seat plan: import the manager's latest seat plan first"
                    .to_owned(),
        })
        })
    }

    /// What the manager's `id` of `kind` maps to, read once per file.
    fn lookup(&mut self, kind: MappingKind, id: TechId) -> Result<Option<Resolved>, DomainError> {
        if let Some(known) = self.mapped.get(&(kind, id)) {
            return Ok(*known);
        }
        let found = mapping::lookup(self.tx, self.ctx.manager, kind, id)?;
        self.mapped.insert((kind, id), found);
        Ok(found)
    }

    /// A place's seat category in the file must be the one of the local
    /// place (through the mapping), else prices would be wrong.
    fn check_category(
        &mut self,
        manager: TechId,
        local: i64,
        what: impl FnOnce() -> String,
    ) -> Result<(), DomainError> {
        if let Some(Resolved::Local(mapped)) = self.lookup(MappingKind::SeatCategory, manager)?
            && mapped != local
        {
            return Err(DomainError::from(Refused {
                code: "seat-category-differs",
                object: what(),
                problem: format!(
                    "expected seat category {manager} to map to the local place's category {local}, found it maps to {mapped}: import the manager's latest seat plan first, or fix the seat_category mapping"
                ),
            }));
        }
        Ok(())
    }
}
