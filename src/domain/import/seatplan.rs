//! The SEATPLAN import at the distributor: venues, configurations, zones,
//! blocks, rows and seats created or updated with local ids and mapped
//! automatically; physical seat categories mapped by hand.
//!
//! [`SeatplanImport`] takes the file's records one at a time inside the
//! caller's transaction and returns the [`Outcome`] at `finish`.

use rusqlite::Transaction;

use super::refs::{
    AutoObject, Refs, Writes, declared_local, finish_refs, info, summary_message, upsert_auto,
};
use super::savepoint::Savepoint;
use super::seat_changes;
use super::seen::FileIds;
use super::{Change, Context, Outcome, Summary};
use crate::domain::DomainError;
use crate::domain::mapping::{FileMappings, Resolved};
use crate::format::{Position, seatplan};
use crate::ident::TechId;
use crate::store::mapping::MappingKind;

/// Imports a `SEATPLAN` file at the distributor: venues, configurations,
/// zones, blocks, rows and seats are created or updated with local ids and
/// mapped automatically; physical seat categories are mapped by hand.
pub struct SeatplanImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    savepoint: Savepoint<'t>,
    refs: Refs,
    /// The ids the file declared and the local objects they became.
    ids: FileIds<'t>,
    /// The look-ups and fills of the objects it creates.
    maps: FileMappings<'t>,
    writes: KindWrites<'t>,
    summary: Summary,
    /// The open parents: (manager id, local id, code).
    venue: Option<(TechId, i64)>,
    configuration: Option<(TechId, i64)>,
    block: Option<(TechId, i64, String)>,
    row: Option<(TechId, i64, String)>,
    /// "BLOCK ROW" of the last row read (for messages, even when parked).
    row_label: String,
    block_code: String,
    /// The record being applied, 1-based (positions in refusals).
    record: u64,
    /// Rows and seats set aside under a temporary label so far.
    set_aside: u64,
    /// Tells the rows and seats the file creates from those it found.
    before: seat_changes::Before<'t>,
    /// Every configuration, block and row applied so far was created by
    /// the file. Then every row of the file's configurations is one it
    /// created, and every seat in them one it created or moved there: one
    /// it declared. No seat or row of them can be absent from the file, and
    /// the removals' search is skipped (a venue's first seat plan).
    all_new: bool,
}

impl<'t> SeatplanImport<'t> {
    pub fn new(
        tx: &'t Transaction<'t>,
        ctx: Context<'t>,
    ) -> Result<SeatplanImport<'t>, DomainError> {
        let ids = FileIds::new(tx)?;
        let before = seat_changes::Before::read(tx, ctx.manager)?;
        Ok(SeatplanImport {
            tx,
            ctx,
            savepoint: Savepoint::open(tx, "seatplan_import")?,
            refs: Refs::default(),
            ids,
            maps: FileMappings::new(tx),
            writes: KindWrites::default(),
            summary: Summary::default(),
            venue: None,
            configuration: None,
            block: None,
            row: None,
            row_label: String::new(),
            block_code: String::new(),
            record: 0,
            set_aside: 0,
            before,
            all_new: true,
        })
    }

    /// Takes the next record of the file. A refusal names the file and the
    /// record (its rank in the file, and what it is).
    pub fn item(&mut self, item: &seatplan::Item) -> Result<(), DomainError> {
        use seatplan::Item;
        self.record += 1;
        let (kind, id) = match item {
            Item::SeatCategory(c) => ("seat category", c.id),
            Item::Venue(v) => ("venue", v.id),
            Item::Configuration(c) => ("configuration", c.id),
            Item::Zone(z) => ("zone", z.id),
            Item::Block(b) => {
                self.block_code = b.code.as_str().to_owned();
                ("block", b.id)
            }
            Item::Row(r) => {
                self.row_label = format!("{} {}", self.block_code, r.code);
                ("row", r.id)
            }
            Item::Seat(s) => ("seat", s.id),
        };
        // Said only in a refusal: most records are never named.
        let what = |row_label: &str| format!("{}, id {id}", Name(item, row_label));
        let (file, record) = (self.ctx.file, self.record);
        let row_label = &self.row_label;
        self.ids
            .declare(file, kind, id.get(), record, || what(row_label))?;
        self.apply(item)
            .map_err(|e| e.locate(file, || Position::record(record, what(&self.row_label))))
    }

    fn apply(&mut self, item: &seatplan::Item) -> Result<(), DomainError> {
        use seatplan::Item;
        let tx = self.tx;
        let ctx = self.ctx;
        // References first: they are recorded even once the file is parked.
        let category = match item {
            Item::SeatCategory(c) => {
                self.refs.see(
                    tx,
                    &ctx,
                    MappingKind::SeatCategory,
                    c.id,
                    &c.code,
                    c.name.as_str(),
                )?;
                return Ok(());
            }
            Item::Zone(z) => {
                let row_label = &self.row_label;
                let what = || name(item, row_label);
                let r = self
                    .refs
                    .need(MappingKind::SeatCategory, z.seat_category, &what)?;
                Some((r, z.seat_category))
            }
            Item::Seat(s) => {
                let row_label = &self.row_label;
                let what = || name(item, row_label);
                let r = self
                    .refs
                    .need(MappingKind::SeatCategory, s.seat_category, &what)?;
                Some((r, s.seat_category))
            }
            _ => None,
        };
        if self.refs.any_missing() {
            return Ok(());
        }
        let category = match category {
            Some((Resolved::Local(id), _)) => Some(id),
            Some((_, id)) => {
                let what = name(item, &self.row_label);
                // Ignored: the seat or zone cannot be sold here; skip it. A
                // skipped seat is not a removed one: it keeps its local seat
                // and category, and takes the labels the file gives it.
                if let Item::Seat(s) = item
                    && let Some(local) =
                        declared_local(&mut self.maps, ctx.manager, MappingKind::Seat, s.id)?
                {
                    self.relabel_skipped(s, local)?;
                    self.ids.set_local("seat", s.id.get(), local)?;
                }
                self.summary.skipped += 1;
                info(
                    tx,
                    &ctx,
                    "skipped",
                    &what,
                    &format!(
                        "skipped: its seat category {} {id} is ignored in the mapping",
                        self.refs.code_of(MappingKind::SeatCategory, id)
                    ),
                )?;
                return Ok(());
            }
            None => None,
        };
        match item {
            Item::SeatCategory(_) => {}
            Item::Venue(v) => self.apply_venue(v)?,
            Item::Configuration(c) => self.apply_configuration(c)?,
            Item::Zone(z) => self.apply_zone(z, category)?,
            Item::Block(b) => self.apply_block(b)?,
            Item::Row(r) => self.apply_row(r)?,
            Item::Seat(s) => self.apply_seat(s, category)?,
        }
        Ok(())
    }

    /// A venue: created or updated, mapped, and open for its configurations.
    fn apply_venue(&mut self, v: &seatplan::Venue) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let existing = declared_local(&mut self.maps, ctx.manager, MappingKind::Venue, v.id)?;
        let (local, change) = upsert_auto(
            tx,
            &mut self.maps,
            &ctx,
            &AutoObject {
                kind: MappingKind::Venue,
                id: v.id,
                existing,
                code: &v.code,
                label: v.name.as_str(),
            },
            &mut self.writes.venue,
            (
                "UPDATE venue SET code = ?2, name = ?3
                 WHERE id = ?1 AND (code IS NOT ?2 OR name IS NOT ?3)",
                "INSERT INTO venue (id, code, name) VALUES (?1, ?2, ?3)",
            ),
            &[&v.code.as_str(), &v.name.as_str()],
        )?;
        self.summary.add(change);
        self.venue = Some((v.id, local));
        Ok(())
    }

    /// A configuration of the open venue: created or updated, mapped, and open for its zones and blocks.
    fn apply_configuration(&mut self, c: &seatplan::Configuration) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let venue = parent(self.venue, c.venue, || format!("configuration {}", c.code))?;
        let existing = declared_local(
            &mut self.maps,
            ctx.manager,
            MappingKind::Configuration,
            c.id,
        )?;
        let (local, change) = upsert_auto(
            tx,
            &mut self.maps,
            &ctx,
            &AutoObject {
                kind: MappingKind::Configuration,
                id: c.id,
                existing,
                code: &c.code,
                label: c.name.as_str(),
            },
            &mut self.writes.configuration,
            (
                "UPDATE configuration SET venue = ?2, code = ?3, name = ?4
                 WHERE id = ?1 AND (venue IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4)",
                "INSERT INTO configuration (id, venue, code, name) VALUES (?1, ?2, ?3, ?4)",
            ),
            &[&venue, &c.code.as_str(), &c.name.as_str()],
        )?;
        self.summary.add(change);
        self.all_new &= change == Change::Created;
        self.ids.set_local("configuration", c.id.get(), local)?;
        self.configuration = Some((c.id, local));
        Ok(())
    }

    /// A zone of the open configuration, with its local seat category.
    fn apply_zone(&mut self, z: &seatplan::Zone, category: Option<i64>) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let conf = parent(self.configuration, z.configuration, || {
            format!("zone {}", z.code)
        })?;
        let existing = declared_local(&mut self.maps, ctx.manager, MappingKind::Zone, z.id)?;
        let (_, change) = upsert_auto(
            tx,
            &mut self.maps,
            &ctx,
            &AutoObject {
                kind: MappingKind::Zone,
                id: z.id,
                existing,
                code: &z.code,
                label: z.name.as_str(),
            },
            &mut self.writes.zone,
            (
                "UPDATE zone SET configuration = ?2, code = ?3, name = ?4, seat_category = ?5,
                     capacity = ?6
                 WHERE id = ?1 AND (configuration IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4
                     OR seat_category IS NOT ?5 OR capacity IS NOT ?6)",
                "INSERT INTO zone (id, configuration, code, name, seat_category, capacity)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            ),
            &[
                &conf,
                &z.code.as_str(),
                &z.name.as_str(),
                &category,
                &i64::from(z.capacity),
            ],
        )?;
        self.summary.add(change);
        Ok(())
    }

    /// A block of the open configuration: created or updated, mapped, and open for its rows.
    fn apply_block(&mut self, b: &seatplan::Block) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let conf = parent(self.configuration, b.configuration, || {
            format!("block {}", b.code)
        })?;
        let existing = declared_local(&mut self.maps, ctx.manager, MappingKind::Block, b.id)?;
        let (local, change) = upsert_auto(
            tx,
            &mut self.maps,
            &ctx,
            &AutoObject {
                kind: MappingKind::Block,
                id: b.id,
                existing,
                code: &b.code,
                label: b.name.as_str(),
            },
            &mut self.writes.block,
            (
                "UPDATE block SET configuration = ?2, code = ?3, name = ?4
                 WHERE id = ?1 AND (configuration IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4)",
                "INSERT INTO block (id, configuration, code, name) VALUES (?1, ?2, ?3, ?4)",
            ),
            &[&conf, &b.code.as_str(), &b.name.as_str()],
        )?;
        self.summary.add(change);
        self.all_new &= change == Change::Created;
        self.block = Some((b.id, local, b.code.as_str().to_owned()));
        Ok(())
    }

    /// A row of the open block: created or updated, mapped, and open for its seats.
    fn apply_row(&mut self, r: &seatplan::Row) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let (block, block_code) = match &self.block {
            Some((m, l, code)) if *m == r.block => (*l, code.clone()),
            _ => {
                return Err(DomainError::refused(
                    "parent-not-read",
                    format!("row {}", r.id),
                    format!("its block {} was not read before it", r.block),
                ));
            }
        };
        let label = format!("{block_code} {}", r.code);
        let me = declared_local(&mut self.maps, ctx.manager, MappingKind::Row, r.id)?;
        let (maps, writes) = (&mut self.maps, &mut self.writes.row);
        let (local, change) = seat_changes::with_label(
            tx,
            (self.before, &mut self.ids),
            seat_changes::ROW,
            (block, r.code.as_str(), me),
            &|| format!("block {block_code}"),
            &mut self.set_aside,
            || {
                upsert_auto(
                    tx,
                    maps,
                    &ctx,
                    &AutoObject {
                        kind: MappingKind::Row,
                        id: r.id,
                        existing: me,
                        code: &r.code,
                        label: &label,
                    },
                    writes,
                    (
                        "UPDATE seat_row SET block = ?2, code = ?3
                         WHERE id = ?1 AND (block IS NOT ?2 OR code IS NOT ?3)",
                        "INSERT INTO seat_row (id, block, code) VALUES (?1, ?2, ?3)",
                    ),
                    &[&block, &r.code.as_str()],
                )
            },
        )?;
        self.summary.add(change);
        self.all_new &= change == Change::Created;
        if !self.before.created(seat_changes::ROW, local) {
            self.ids.set_local("row", r.id.get(), local)?;
        }
        self.row = Some((r.id, local, label));
        Ok(())
    }

    /// A seat of the open row, with its local seat category.
    fn apply_seat(&mut self, s: &seatplan::Seat, category: Option<i64>) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let (row, row_label) = open_row(&self.row, s)?;
        let me = declared_local(&mut self.maps, ctx.manager, MappingKind::Seat, s.id)?;
        let label = format!("{row_label} {}", s.number);
        let (maps, writes) = (&mut self.maps, &mut self.writes.seat);
        let (local, change) = seat_changes::with_label(
            tx,
            (self.before, &mut self.ids),
            seat_changes::SEAT,
            (row, s.number.as_str(), me),
            &|| format!("row {row_label}"),
            &mut self.set_aside,
            || {
                upsert_auto(
                    tx,
                    maps,
                    &ctx,
                    &AutoObject {
                        kind: MappingKind::Seat,
                        id: s.id,
                        existing: me,
                        code: &s.number,
                        label: &label,
                    },
                    writes,
                    (
                        "UPDATE seat SET row = ?2, number = ?3, seat_category = ?4
                         WHERE id = ?1 AND (row IS NOT ?2 OR number IS NOT ?3 OR seat_category IS NOT ?4)",
                        "INSERT INTO seat (id, row, number, seat_category) VALUES (?1, ?2, ?3, ?4)",
                    ),
                    &[&row, &s.number.as_str(), &category],
                )
            },
        )?;
        self.summary.add(change);
        if !self.before.created(seat_changes::SEAT, local) {
            self.ids.set_local("seat", s.id.get(), local)?;
        }
        Ok(())
    }

    /// A seat skipped for its ignored seat category, already local: it
    /// keeps its seat category but moves to the row and number the file
    /// gives it. The labels it leaves are then free for the file's other
    /// seats, and a seat of the file set aside for one of them gets a real
    /// label again (one left under a temporary label would be taken as
    /// removed at the end of the file).
    fn relabel_skipped(&mut self, s: &seatplan::Seat, local: i64) -> Result<(), DomainError> {
        let tx = self.tx;
        let (row, row_label) = open_row(&self.row, s)?;
        seat_changes::with_label(
            tx,
            (self.before, &mut self.ids),
            seat_changes::SEAT,
            (row, s.number.as_str(), Some(local)),
            &|| format!("row {row_label}"),
            &mut self.set_aside,
            || {
                tx.prepare_cached(
                    "UPDATE seat SET row = ?2, number = ?3
                     WHERE id = ?1 AND (row IS NOT ?2 OR number IS NOT ?3)",
                )?
                .execute((local, row, s.number.as_str()))?;
                Ok(())
            },
        )
    }

    /// Ends the file: applied, or parked (rolled back but for the pending
    /// rows and the run messages).
    pub fn finish(mut self) -> Result<Outcome, DomainError> {
        let may_remove = !self.all_new || self.set_aside > 0;
        if may_remove && !self.refs.any_missing() {
            let file = self.ctx.file;
            let removed = seat_changes::remove_absent(self.tx, self.before, self.set_aside)
                .map_err(|e| e.locate(file, || Position::File))?;
            if removed > 0 {
                info(
                    self.tx,
                    &self.ctx,
                    "removed",
                    file,
                    &format!(
                        "{removed} row(s) and seat(s) the manager no longer has: deleted, or kept under a retired label (#…) where sales history refers to them"
                    ),
                )?;
            }
        }
        finish_refs(self.tx, &self.ctx, &mut self.savepoint, &self.refs)?;
        if self.refs.any_missing() {
            return Ok(Outcome::Parked(self.refs.missing()));
        }
        summary_message(self.tx, &self.ctx, &self.summary)?;
        Ok(Outcome::Applied(self.summary))
    }
}

/// Each automatic kind's update and insert, held for the file.
#[derive(Default)]
struct KindWrites<'t> {
    venue: Writes<'t>,
    configuration: Writes<'t>,
    zone: Writes<'t>,
    block: Writes<'t>,
    row: Writes<'t>,
    seat: Writes<'t>,
}

/// How messages name a record ("seat ORCH A 12"); `row_label` is the open
/// row's "BLOCK ROW".
fn name(item: &seatplan::Item, row_label: &str) -> String {
    Name(item, row_label).to_string()
}

/// A record's name (see [`name`]), written straight into the text that
/// holds it.
struct Name<'a>(&'a seatplan::Item, &'a str);

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use seatplan::Item;
        let row_label = self.1;
        match self.0 {
            Item::SeatCategory(c) => write!(f, "seat category {}", c.code),
            Item::Venue(v) => write!(f, "venue {}", v.code),
            Item::Configuration(c) => write!(f, "configuration {}", c.code),
            Item::Zone(z) => write!(f, "zone {}", z.code),
            Item::Block(b) => write!(f, "block {}", b.code),
            Item::Row(_) => write!(f, "row {row_label}"),
            Item::Seat(s) => write!(f, "seat {row_label} {}", s.number),
        }
    }
}

/// The open row's local id and "BLOCK ROW", checked against the seat's row.
fn open_row<'r>(
    open: &'r Option<(TechId, i64, String)>,
    s: &seatplan::Seat,
) -> Result<(i64, &'r str), DomainError> {
    match open {
        Some((m, l, label)) if *m == s.row => Ok((*l, label.as_str())),
        _ => Err(DomainError::refused(
            "parent-not-read",
            format!("seat {}", s.id),
            format!("its row {} was not read before it", s.row),
        )),
    }
}

/// The local id of the open parent, checked against the record's parent id.
fn parent(
    open: Option<(TechId, i64)>,
    expected: TechId,
    object: impl FnOnce() -> String,
) -> Result<i64, DomainError> {
    match open {
        Some((m, local)) if m == expected => Ok(local),
        _ => Err(DomainError::refused(
            "parent-not-read",
            object(),
            format!("its parent {expected} was not read before it"),
        )),
    }
}
