//! The distributor's imports of the manager's files: seat plans and
//! catalogues, translated through the mapping table.
//!
//! Takes the records of one file, pushed one at a time by the inbound pipeline
//! inside the transaction that also journals the file and holds its run, and
//! returns an [`Outcome`]: applied (with a [`Summary`]) or parked (with every
//! [`Missing`] mapping). It never reads files, never commits and never
//! finishes the run: the pipeline does.
//!
//! # All or nothing, with the pending rows kept
//!
//! Each importer opens a SAVEPOINT in the caller's transaction when it is
//! created. Records are applied as they stream in; the reference objects the
//! manager maps by hand (season, activity, VAT code, tariff type, physical
//! seat category, audience subcategory) come first in both formats, so a
//! missing mapping is usually known before anything is written, and from then
//! on nothing more is applied (the records are only read for what they
//! reference). At [`CatalogueImport::finish`] / [`SeatplanImport::finish`] a
//! file with a pending or broken mapping rolls back to the savepoint, then
//! records its sightings again (so the pending rows ops must fill exist, with
//! the manager's code and label) and one error message per missing mapping in
//! the run; an applied file releases the savepoint. Dropping an importer
//! without `finish` rolls back to the savepoint too.
//!
//! # What is needed
//!
//! Every reference object a file declares is looked up (and recorded) when it
//! is declared: the manager's export declares exactly the objects its records
//! use, so a declared object that is pending parks the file, whether or not
//! the records naming it are later skipped. A record naming an object the file
//! does not declare is refused ([`DomainError::Invalid`]): the file is not a
//! coherent snapshot. The physical configuration a logical configuration or a
//! performance names is not declared by a catalogue: it comes from the seat
//! plan import ("import the seat plan first" while it is not mapped).
//!
//! Ignored mappings skip the records naming them (a price for an ignored
//! audience subcategory, a performance or product of an ignored activity…),
//! each with an info message. Objects created at the distributor get new
//! local ids (never the manager's) and are mapped automatically.
//!
//! # Catalogue snapshots
//!
//! A catalogue is the full snapshot of what the link sells. Logical
//! configurations, rate tables and products are created `to_validate`; an
//! unchanged object keeps its state; a changed one returns to `to_validate`
//! with each difference as an info message (code `changed`); a product that
//! changes through its rate table, its performances or their logical
//! configurations returns to `to_validate` too. A product mapped before and
//! absent from the file is `suspended` (warning `withdrawn`), never deleted.
//! Prices and performance links no longer sent are removed (they are cells
//! and links, not objects); logical seat categories no longer sent are kept
//! and reported.

use std::collections::{HashMap, HashSet};

use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Transaction};

use super::DomainError;
use super::mapping::{self, Resolved, Seen};
use crate::format::{catalogue, seatplan};
use crate::ident::{Code, TechId};
use crate::money::Money;
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Level};

/// Who and what an import works for.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The external manager's code (the link's manager institution, `OPERA`).
    pub manager: &'a str,
    /// The file being imported (recorded as the first file of new mapping rows).
    pub file: &'a str,
    /// The run the pipeline started for this file; messages go there.
    pub run: i64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied: the counts of local objects touched.
    Applied(Summary),
    /// Nothing applied but the pending mapping rows and the run messages:
    /// every mapping the file needs and lacks.
    Parked(Vec<Missing>),
}

/// Counts of the records an applied import wrote, per effect. Seat plans count
/// venues, configurations, zones, blocks, rows and seats; catalogues count
/// logical configurations and their seat categories, performances, rate
/// tables, prices, products and their performance links. Reference objects
/// (mapped by hand) are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Products withdrawn by the manager (absent from the snapshot).
    pub suspended: u64,
    /// Records skipped because they name an ignored mapping.
    pub skipped: u64,
}

impl Summary {
    /// Records applied (created, updated or unchanged).
    pub fn records(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }
}

/// A mapping a parked file needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub kind: MappingKind,
    pub manager_id: TechId,
    /// The manager's code for the object.
    pub code: String,
    /// The manager's name for it.
    pub label: String,
    /// The first record of the file that needs it.
    pub needed_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Summary {
    fn add(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

// ---------------------------------------------------------------- savepoint

/// A SAVEPOINT in the caller's transaction (rusqlite's own needs `&mut`).
/// Rolled back when dropped without [`Savepoint::release`].
struct Savepoint<'t> {
    tx: &'t Transaction<'t>,
    name: &'static str,
    open: bool,
}

impl<'t> Savepoint<'t> {
    fn open(tx: &'t Transaction<'t>, name: &'static str) -> Result<Savepoint<'t>, DomainError> {
        tx.execute_batch(&format!("SAVEPOINT {name}"))?;
        Ok(Savepoint {
            tx,
            name,
            open: true,
        })
    }

    fn release(&mut self) -> Result<(), DomainError> {
        if self.open {
            self.open = false;
            self.tx.execute_batch(&format!("RELEASE {}", self.name))?;
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), DomainError> {
        if self.open {
            self.open = false;
            self.tx.execute_batch(&format!(
                "ROLLBACK TO {name}; RELEASE {name}",
                name = self.name
            ))?;
        }
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        // Best effort: the caller's transaction is rolled back anyway when an
        // import fails; this only keeps an abandoned import from committing.
        let _ = self.rollback();
    }
}

// ---------------------------------------------------------- references seen

/// A manager object looked up in the mapping table while reading a file.
#[derive(Debug, Clone)]
struct Sighting {
    kind: MappingKind,
    id: TechId,
    code: String,
    label: String,
    resolved: Resolved,
    needed_by: Option<String>,
    /// Recorded with `mapping::resolve`, so recorded again after a rollback.
    replay: bool,
}

/// The mappings a file looked up, in first-seen order (bounded by the number
/// of reference objects the file declares).
#[derive(Debug, Default)]
struct Refs {
    list: Vec<Sighting>,
    index: HashMap<(MappingKind, i64), usize>,
}

impl Refs {
    /// A declaration: records the sighting (pending row on first sight,
    /// label refreshed afterwards).
    fn see(
        &mut self,
        tx: &Transaction<'_>,
        ctx: &Context<'_>,
        kind: MappingKind,
        id: TechId,
        code: &Code,
        label: &str,
    ) -> Result<Resolved, DomainError> {
        let resolved = mapping::resolve(
            tx,
            &Seen {
                manager: ctx.manager,
                kind,
                manager_id: id,
                code,
                label,
                file: ctx.file,
            },
        )?;
        match self.index.get(&(kind, id.get())) {
            Some(&i) => {
                if let Some(s) = self.list.get_mut(i) {
                    s.code = code.as_str().to_owned();
                    s.label = label.to_owned();
                    s.resolved = resolved;
                    s.replay = true;
                }
            }
            None => {
                self.index.insert((kind, id.get()), self.list.len());
                self.list.push(Sighting {
                    kind,
                    id,
                    code: code.as_str().to_owned(),
                    label: label.to_owned(),
                    resolved,
                    needed_by: None,
                    replay: true,
                });
            }
        }
        Ok(resolved)
    }

    /// A reference to an object the file must have declared.
    fn need(
        &mut self,
        kind: MappingKind,
        id: TechId,
        by: &dyn Fn() -> String,
    ) -> Result<Resolved, DomainError> {
        let Some(s) = self
            .index
            .get(&(kind, id.get()))
            .and_then(|&i| self.list.get_mut(i))
        else {
            return Err(DomainError::Invalid {
                object: by(),
                problem: format!(
                    "it names {} {id}, which the file does not declare; the manager's export must declare every object its records name",
                    kind_words(kind)
                ),
            });
        };
        if s.needed_by.is_none() {
            s.needed_by = Some(by());
        }
        Ok(s.resolved)
    }

    /// A reference to an object another file brings (the physical
    /// configuration of a catalogue comes from the seat plan).
    fn need_external(
        &mut self,
        tx: &Transaction<'_>,
        ctx: &Context<'_>,
        kind: MappingKind,
        id: TechId,
        by: &dyn Fn() -> String,
    ) -> Result<Resolved, DomainError> {
        if self.index.contains_key(&(kind, id.get())) {
            return self.need(kind, id, by);
        }
        let (resolved, code, label, replay) = match mapping::lookup(tx, ctx.manager, kind, id)? {
            Some(resolved) => {
                let (code, label): (String, String) = tx
                    .prepare_cached(
                        "SELECT manager_code, manager_label FROM mapping
                         WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
                    )?
                    .query_row((ctx.manager, kind.as_str(), id.get()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                (resolved, code, label, false)
            }
            None => {
                // Not seen yet: a pending row, with what we know, that the
                // seat plan import will fill with the real code and name.
                let code = placeholder_code(id)?;
                let label = format!("{} {id} (not imported yet)", kind_words(kind));
                let resolved = mapping::resolve(
                    tx,
                    &Seen {
                        manager: ctx.manager,
                        kind,
                        manager_id: id,
                        code: &code,
                        label: &label,
                        file: ctx.file,
                    },
                )?;
                (resolved, code.as_str().to_owned(), label, true)
            }
        };
        self.index.insert((kind, id.get()), self.list.len());
        self.list.push(Sighting {
            kind,
            id,
            code,
            label,
            resolved,
            needed_by: Some(by()),
            replay,
        });
        Ok(resolved)
    }

    fn is_missing(resolved: Resolved) -> bool {
        matches!(resolved, Resolved::Pending | Resolved::Broken(_))
    }

    fn any_missing(&self) -> bool {
        self.list.iter().any(|s| Refs::is_missing(s.resolved))
    }

    fn missing(&self) -> Vec<Missing> {
        self.list
            .iter()
            .filter(|s| Refs::is_missing(s.resolved))
            .map(|s| Missing {
                kind: s.kind,
                manager_id: s.id,
                code: s.code.clone(),
                label: s.label.clone(),
                needed_by: s
                    .needed_by
                    .clone()
                    .unwrap_or_else(|| "declared by the file".to_owned()),
            })
            .collect()
    }

    /// Records the sightings again after a rollback (pending rows, labels).
    fn replay(&self, tx: &Transaction<'_>, ctx: &Context<'_>) -> Result<(), DomainError> {
        for s in self.list.iter().filter(|s| s.replay) {
            let code = Code::new(&s.code).or_else(|_| placeholder_code(s.id))?;
            mapping::resolve(
                tx,
                &Seen {
                    manager: ctx.manager,
                    kind: s.kind,
                    manager_id: s.id,
                    code: &code,
                    label: &s.label,
                    file: ctx.file,
                },
            )?;
        }
        Ok(())
    }

    /// One error message per missing mapping, in the run.
    fn report(&self, tx: &Transaction<'_>, ctx: &Context<'_>) -> Result<(), DomainError> {
        for s in self.list.iter().filter(|s| Refs::is_missing(s.resolved)) {
            let location = format!("{} {}", s.kind, s.id);
            let needed = s.needed_by.as_deref().unwrap_or("declared by the file");
            let what = format!(
                "{} {} {} \"{}\" (needed by {needed})",
                kind_words(s.kind),
                s.id,
                s.code,
                s.label
            );
            let (code, text) = match (s.resolved, mapping::is_mapped_by_hand(s.kind)) {
                (Resolved::Broken(local), _) => (
                    "mapping-broken",
                    format!(
                        "{what} is mapped to local {} {local}, which no longer exists; map it again: stxd mapping set {} {} LOCAL_CODE",
                        kind_words(s.kind),
                        s.kind,
                        s.id
                    ),
                ),
                (_, true) => (
                    "mapping-pending",
                    format!(
                        "{what} is not mapped yet; map it: stxd mapping set {} {} LOCAL_CODE (or ignore it)",
                        s.kind, s.id
                    ),
                ),
                (_, false) => (
                    "mapping-pending",
                    format!(
                        "{what} is not mapped yet: import the seat plan first (it maps {}s automatically)",
                        kind_words(s.kind)
                    ),
                ),
            };
            runs::message(tx, ctx.run, Level::Error, code, Some(&location), &text)?;
        }
        Ok(())
    }

    fn get(&self, kind: MappingKind, id: TechId) -> Option<Resolved> {
        self.index
            .get(&(kind, id.get()))
            .and_then(|&i| self.list.get(i))
            .map(|s| s.resolved)
    }

    fn code_of(&self, kind: MappingKind, id: TechId) -> String {
        self.index
            .get(&(kind, id.get()))
            .and_then(|&i| self.list.get(i))
            .map_or_else(|| id.to_string(), |s| s.code.clone())
    }
}

/// A code for a manager object known only by its id (a pending row the
/// seat plan import later fills with the real code).
fn placeholder_code(id: TechId) -> Result<Code, DomainError> {
    Code::new(&id.get().to_string())
        .or_else(|_| Code::new("UNKNOWN"))
        .map_err(|e| DomainError::Invalid {
            object: format!("manager object {id}"),
            problem: e.to_string(),
        })
}

/// The kind in words, for messages ("tariff type").
fn kind_words(kind: MappingKind) -> String {
    kind.as_str().replace('_', " ")
}

fn info(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    code: &str,
    location: &str,
    text: &str,
) -> Result<(), DomainError> {
    runs::message(tx, ctx.run, Level::Info, code, Some(location), text)?;
    Ok(())
}

/// Creates or updates the local object mapped to a manager object of an
/// automatic kind, and maps it. `update` binds `?1` = local id and `?2…` =
/// `params`, and changes the row only when a value differs; `insert` binds
/// the same with `?1` = NULL (a new local id).
#[allow(clippy::too_many_arguments)]
fn upsert_auto(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    kind: MappingKind,
    id: TechId,
    code: &Code,
    label: &str,
    update: &str,
    insert: &str,
    params: &[&dyn ToSql],
) -> Result<(i64, Change), DomainError> {
    let existing = match mapping::lookup(tx, ctx.manager, kind, id)? {
        Some(Resolved::Local(local)) => Some(local),
        // Broken (the local object was deleted), pending or ignored: an
        // automatic kind is simply created (again) and mapped.
        _ => None,
    };
    let mut all: Vec<&dyn ToSql> = Vec::with_capacity(params.len() + 1);
    all.push(&existing);
    all.extend_from_slice(params);
    let (local, change) = match existing {
        Some(local) => {
            let n = tx.prepare_cached(update)?.execute(&all[..])?;
            (
                local,
                if n > 0 {
                    Change::Updated
                } else {
                    Change::Unchanged
                },
            )
        }
        None => {
            tx.prepare_cached(insert)?.execute(&all[..])?;
            (tx.last_insert_rowid(), Change::Created)
        }
    };
    mapping::fill_auto(
        tx,
        &Seen {
            manager: ctx.manager,
            kind,
            manager_id: id,
            code,
            label,
            file: ctx.file,
        },
        local,
    )?;
    Ok((local, change))
}

// ---------------------------------------------------------------- seat plan

/// Imports a `SEATPLAN` file at the distributor: venues, configurations,
/// zones, blocks, rows and seats are created or updated with local ids and
/// mapped automatically; physical seat categories are mapped by hand.
pub struct SeatplanImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    savepoint: Savepoint<'t>,
    refs: Refs,
    summary: Summary,
    /// The open parents: (manager id, local id, code).
    venue: Option<(TechId, i64)>,
    configuration: Option<(TechId, i64)>,
    block: Option<(TechId, i64, String)>,
    row: Option<(TechId, i64, String)>,
    /// "BLOCK ROW" of the last row read (for messages, even when parked).
    row_label: String,
    block_code: String,
}

impl<'t> SeatplanImport<'t> {
    pub fn new(
        tx: &'t Transaction<'t>,
        ctx: Context<'t>,
    ) -> Result<SeatplanImport<'t>, DomainError> {
        Ok(SeatplanImport {
            tx,
            ctx,
            savepoint: Savepoint::open(tx, "seatplan_import")?,
            refs: Refs::default(),
            summary: Summary::default(),
            venue: None,
            configuration: None,
            block: None,
            row: None,
            row_label: String::new(),
            block_code: String::new(),
        })
    }

    /// Takes the next record of the file.
    pub fn item(&mut self, item: &seatplan::Item) -> Result<(), DomainError> {
        use seatplan::Item;
        let tx = self.tx;
        let ctx = self.ctx;
        match item {
            Item::Block(b) => self.block_code = b.code.as_str().to_owned(),
            Item::Row(r) => self.row_label = format!("{} {}", self.block_code, r.code),
            _ => {}
        }
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
                let what = format!("zone {}", z.code);
                let r = self
                    .refs
                    .need(MappingKind::SeatCategory, z.seat_category, &|| what.clone())?;
                Some((r, what, z.seat_category))
            }
            Item::Seat(s) => {
                let what = format!("seat {} {}", self.row_label, s.number);
                let r = self
                    .refs
                    .need(MappingKind::SeatCategory, s.seat_category, &|| what.clone())?;
                Some((r, what, s.seat_category))
            }
            _ => None,
        };
        if self.refs.any_missing() {
            return Ok(());
        }
        let category = match category {
            Some((Resolved::Local(id), _, _)) => Some(id),
            Some((_, what, id)) => {
                // Ignored: the seat or zone cannot be sold here; skip it.
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
            Item::Venue(v) => {
                let (local, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Venue,
                    v.id,
                    &v.code,
                    v.name.as_str(),
                    "UPDATE venue SET code = ?2, name = ?3
                     WHERE id = ?1 AND (code IS NOT ?2 OR name IS NOT ?3)",
                    "INSERT INTO venue (id, code, name) VALUES (?1, ?2, ?3)",
                    &[&v.code.as_str(), &v.name.as_str()],
                )?;
                self.summary.add(change);
                self.venue = Some((v.id, local));
            }
            Item::Configuration(c) => {
                let venue = parent(self.venue, c.venue, || format!("configuration {}", c.code))?;
                let (local, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Configuration,
                    c.id,
                    &c.code,
                    c.name.as_str(),
                    "UPDATE configuration SET venue = ?2, code = ?3, name = ?4
                     WHERE id = ?1 AND (venue IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4)",
                    "INSERT INTO configuration (id, venue, code, name) VALUES (?1, ?2, ?3, ?4)",
                    &[&venue, &c.code.as_str(), &c.name.as_str()],
                )?;
                self.summary.add(change);
                self.configuration = Some((c.id, local));
            }
            Item::Zone(z) => {
                let conf = parent(self.configuration, z.configuration, || {
                    format!("zone {}", z.code)
                })?;
                let (_, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Zone,
                    z.id,
                    &z.code,
                    z.name.as_str(),
                    "UPDATE zone SET configuration = ?2, code = ?3, name = ?4, seat_category = ?5,
                         capacity = ?6
                     WHERE id = ?1 AND (configuration IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4
                         OR seat_category IS NOT ?5 OR capacity IS NOT ?6)",
                    "INSERT INTO zone (id, configuration, code, name, seat_category, capacity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &[
                        &conf,
                        &z.code.as_str(),
                        &z.name.as_str(),
                        &category,
                        &i64::from(z.capacity),
                    ],
                )?;
                self.summary.add(change);
            }
            Item::Block(b) => {
                let conf = parent(self.configuration, b.configuration, || {
                    format!("block {}", b.code)
                })?;
                let (local, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Block,
                    b.id,
                    &b.code,
                    b.name.as_str(),
                    "UPDATE block SET configuration = ?2, code = ?3, name = ?4
                     WHERE id = ?1 AND (configuration IS NOT ?2 OR code IS NOT ?3 OR name IS NOT ?4)",
                    "INSERT INTO block (id, configuration, code, name) VALUES (?1, ?2, ?3, ?4)",
                    &[&conf, &b.code.as_str(), &b.name.as_str()],
                )?;
                self.summary.add(change);
                self.block = Some((b.id, local, b.code.as_str().to_owned()));
            }
            Item::Row(r) => {
                let (block, block_code) = match &self.block {
                    Some((m, l, code)) if *m == r.block => (*l, code.clone()),
                    _ => {
                        return Err(DomainError::Invalid {
                            object: format!("row {}", r.id),
                            problem: format!("its block {} was not read before it", r.block),
                        });
                    }
                };
                let label = format!("{block_code} {}", r.code);
                let (local, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Row,
                    r.id,
                    &r.code,
                    &label,
                    "UPDATE seat_row SET block = ?2, code = ?3
                     WHERE id = ?1 AND (block IS NOT ?2 OR code IS NOT ?3)",
                    "INSERT INTO seat_row (id, block, code) VALUES (?1, ?2, ?3)",
                    &[&block, &r.code.as_str()],
                )?;
                self.summary.add(change);
                self.row = Some((r.id, local, label));
            }
            Item::Seat(s) => {
                let (row, row_label) = match &self.row {
                    Some((m, l, label)) if *m == s.row => (*l, label.clone()),
                    _ => {
                        return Err(DomainError::Invalid {
                            object: format!("seat {}", s.id),
                            problem: format!("its row {} was not read before it", s.row),
                        });
                    }
                };
                let (_, change) = upsert_auto(
                    tx,
                    &ctx,
                    MappingKind::Seat,
                    s.id,
                    &s.number,
                    &format!("{row_label} {}", s.number),
                    "UPDATE seat SET row = ?2, number = ?3, seat_category = ?4
                     WHERE id = ?1 AND (row IS NOT ?2 OR number IS NOT ?3 OR seat_category IS NOT ?4)",
                    "INSERT INTO seat (id, row, number, seat_category) VALUES (?1, ?2, ?3, ?4)",
                    &[&row, &s.number.as_str(), &category],
                )?;
                self.summary.add(change);
            }
        }
        Ok(())
    }

    /// Ends the file: applied, or parked (rolled back but for the pending
    /// rows and the run messages).
    pub fn finish(mut self) -> Result<Outcome, DomainError> {
        finish_refs(self.tx, &self.ctx, &mut self.savepoint, &self.refs)?;
        if self.refs.any_missing() {
            return Ok(Outcome::Parked(self.refs.missing()));
        }
        summary_message(self.tx, &self.ctx, &self.summary)?;
        Ok(Outcome::Applied(self.summary))
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
        _ => Err(DomainError::Invalid {
            object: object(),
            problem: format!("its parent {expected} was not read before it"),
        }),
    }
}

/// Parked: rolls back, records the sightings again and reports them.
/// Applied: releases the savepoint.
fn finish_refs(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    savepoint: &mut Savepoint<'_>,
    refs: &Refs,
) -> Result<(), DomainError> {
    if refs.any_missing() {
        savepoint.rollback()?;
        refs.replay(tx, ctx)?;
        refs.report(tx, ctx)?;
    } else {
        savepoint.release()?;
    }
    Ok(())
}

fn summary_message(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    s: &Summary,
) -> Result<(), DomainError> {
    info(
        tx,
        ctx,
        "applied",
        ctx.file,
        &format!(
            "applied: {} created, {} updated, {} unchanged, {} suspended, {} skipped",
            s.created, s.updated, s.unchanged, s.suspended, s.skipped
        ),
    )
}

// ---------------------------------------------------------------- catalogue

/// The logical configuration being read (its seat categories follow it).
struct OpenLc {
    manager: TechId,
    local: i64,
    code: String,
    created: bool,
    diffs: Vec<String>,
    seen: HashSet<i64>,
}

/// The rate table being read (its prices follow it).
struct OpenRt {
    manager: TechId,
    local: i64,
    code: String,
    currency: crate::money::Currency,
    created: bool,
    diffs: Vec<String>,
    /// Local (seat category, tariff type, audience) keys of this file.
    seen: HashSet<(i64, i64, i64)>,
}

/// The product being read (its performance references follow it).
struct OpenProduct {
    local: i64,
    code: String,
    created: bool,
    was_suspended: bool,
    rate_table: i64,
    diffs: Vec<String>,
    performances: HashSet<i64>,
}

/// Imports a `CATALOGUE` file at the distributor through the mapping table.
pub struct CatalogueImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    savepoint: Savepoint<'t>,
    refs: Refs,
    summary: Summary,
    lc: Option<OpenLc>,
    rt: Option<OpenRt>,
    product: Option<OpenProduct>,
    /// Manager id → local id (None: skipped) of the objects of this file.
    lcs: HashMap<i64, Option<i64>>,
    performances: HashMap<i64, Option<(i64, String)>>,
    rate_tables: HashMap<i64, Option<i64>>,
    /// Local ids of objects that changed in this file, with what changed.
    changed_lcs: HashMap<i64, String>,
    changed_performances: HashMap<i64, String>,
    changed_rate_tables: HashMap<i64, String>,
    /// Manager ids of the products of this file.
    products: HashSet<i64>,
    /// The code of the last rate table read (for messages, even when parked).
    rt_code: String,
}

impl<'t> CatalogueImport<'t> {
    pub fn new(
        tx: &'t Transaction<'t>,
        ctx: Context<'t>,
    ) -> Result<CatalogueImport<'t>, DomainError> {
        Ok(CatalogueImport {
            tx,
            ctx,
            savepoint: Savepoint::open(tx, "catalogue_import")?,
            refs: Refs::default(),
            summary: Summary::default(),
            lc: None,
            rt: None,
            product: None,
            lcs: HashMap::new(),
            performances: HashMap::new(),
            rate_tables: HashMap::new(),
            changed_lcs: HashMap::new(),
            changed_performances: HashMap::new(),
            changed_rate_tables: HashMap::new(),
            products: HashSet::new(),
            rt_code: String::new(),
        })
    }

    /// Takes the next record of the file.
    pub fn item(&mut self, item: &catalogue::Item) -> Result<(), DomainError> {
        use catalogue::Item;
        let tx = self.tx;
        let ctx = self.ctx;
        // Close the group a record does not belong to.
        if !matches!(item, Item::LogicalSeatCategory(_)) {
            self.close_lc()?;
        }
        if !matches!(item, Item::Price(_)) {
            self.close_rt()?;
        }
        if !matches!(item, Item::PerformanceRef(_)) {
            self.close_product()?;
        }
        match item {
            Item::Product(p) => {
                self.products.insert(p.id.get());
            }
            Item::RateTable(r) => self.rt_code = r.code.as_str().to_owned(),
            _ => {}
        }
        // References: recorded even once the file is parked.
        let k = MappingKind::SeatCategory;
        let refs = &mut self.refs;
        let needs: Vec<Resolved> = match item {
            Item::Season(s) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::Season,
                s.id,
                &s.code,
                s.name.as_str(),
            )?],
            Item::VatCode(v) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::VatCode,
                v.id,
                &v.code,
                v.name.as_str(),
            )?],
            Item::TariffType(r) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::TariffType,
                r.id,
                &r.code,
                r.name.as_str(),
            )?],
            Item::AudienceSubcategory(r) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::AudienceSubcategory,
                r.id,
                &r.code,
                r.name.as_str(),
            )?],
            Item::SeatCategory(r) => vec![refs.see(tx, &ctx, k, r.id, &r.code, r.name.as_str())?],
            Item::Activity(a) => {
                let by = || format!("activity {}", a.code);
                refs.need(MappingKind::Season, a.season, &by)?;
                refs.need(MappingKind::VatCode, a.vat_code, &by)?;
                vec![refs.see(
                    tx,
                    &ctx,
                    MappingKind::Activity,
                    a.id,
                    &a.code,
                    a.name.as_str(),
                )?]
            }
            Item::LogicalConfiguration(l) => vec![refs.need_external(
                tx,
                &ctx,
                MappingKind::Configuration,
                l.configuration,
                &|| format!("logical configuration {}", l.code),
            )?],
            Item::LogicalSeatCategory(l) => vec![refs.need(k, l.seat_category, &|| {
                format!("logical seat category {}", l.code)
            })?],
            Item::Performance(p) => {
                let by = || format!("performance {}", p.code);
                vec![
                    refs.need(MappingKind::Activity, p.activity, &by)?,
                    refs.need_external(tx, &ctx, MappingKind::Configuration, p.configuration, &by)?,
                ]
            }
            Item::Price(p) => {
                let key = format!(
                    "price {}/{}/{}",
                    refs.code_of(k, p.seat_category),
                    refs.code_of(MappingKind::TariffType, p.tariff_type),
                    refs.code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
                );
                let rt = &self.rt_code;
                let by = || format!("{key} of rate table {rt}");
                vec![
                    refs.need(k, p.seat_category, &by)?,
                    refs.need(MappingKind::TariffType, p.tariff_type, &by)?,
                    refs.need(
                        MappingKind::AudienceSubcategory,
                        p.audience_subcategory,
                        &by,
                    )?,
                ]
            }
            Item::Product(p) => vec![refs.need(MappingKind::Activity, p.activity, &|| {
                format!("product {}", p.code)
            })?],
            Item::RateTable(_) | Item::PerformanceRef(_) => Vec::new(),
        };
        if self.refs.any_missing() {
            return Ok(());
        }
        let locals: Option<Vec<i64>> = needs
            .iter()
            .map(|r| match r {
                Resolved::Local(id) => Some(*id),
                _ => None,
            })
            .collect();
        match item {
            Item::Season(_)
            | Item::VatCode(_)
            | Item::TariffType(_)
            | Item::AudienceSubcategory(_)
            | Item::SeatCategory(_)
            | Item::Activity(_) => Ok(()),
            Item::LogicalConfiguration(l) => self.logical_configuration(l, locals.as_deref()),
            Item::LogicalSeatCategory(l) => self.logical_seat_category(l, locals.as_deref()),
            Item::Performance(p) => self.performance(p, locals.as_deref()),
            Item::RateTable(r) => self.rate_table(r),
            Item::Price(p) => self.price(p, locals.as_deref()),
            Item::Product(p) => self.product(p, locals.as_deref()),
            Item::PerformanceRef(r) => self.performance_ref(r),
        }
    }

    fn skip(&mut self, location: &str, why: &str) -> Result<(), DomainError> {
        self.summary.skipped += 1;
        info(
            self.tx,
            &self.ctx,
            "skipped",
            location,
            &format!("skipped: {why}"),
        )
    }

    fn changed(&self, location: &str, text: &str) -> Result<(), DomainError> {
        info(self.tx, &self.ctx, "changed", location, text)
    }

    fn logical_configuration(
        &mut self,
        l: &catalogue::LogicalConfiguration,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("logical configuration {}", l.code);
        let Some(&[configuration]) = locals else {
            self.lcs.insert(l.id.get(), None);
            return self.skip(
                &location,
                &format!(
                    "its configuration {} is ignored in the mapping",
                    l.configuration
                ),
            );
        };
        let tx = self.tx;
        let existing = self.local_of(MappingKind::LogicalConfiguration, l.id)?;
        let row: Option<(String, String, i64)> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, configuration FROM logical_configuration WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?,
            None => None,
        };
        let (local, created, diffs) = match (existing, row) {
            (Some(id), Some((code, name, conf))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, l.code.as_str());
                diff_text(&mut diffs, "name", &name, l.name.as_str());
                if conf != configuration {
                    diffs.push(format!("configuration {conf} → {configuration}"));
                }
                if !diffs.is_empty() {
                    tx.prepare_cached(
                        "UPDATE logical_configuration SET code = ?2, name = ?3, configuration = ?4
                         WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        l.code.as_str(),
                        l.name.as_str(),
                        configuration,
                    ))?;
                }
                (id, false, diffs)
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO logical_configuration (code, name, configuration, state)
                     VALUES (?1, ?2, ?3, 'to_validate')",
                )?
                .execute((l.code.as_str(), l.name.as_str(), configuration))?;
                (tx.last_insert_rowid(), true, Vec::new())
            }
        };
        self.fill(
            MappingKind::LogicalConfiguration,
            l.id,
            &l.code,
            l.name.as_str(),
            local,
        )?;
        self.lcs.insert(l.id.get(), Some(local));
        self.lc = Some(OpenLc {
            manager: l.id,
            local,
            code: l.code.as_str().to_owned(),
            created,
            diffs,
            seen: HashSet::new(),
        });
        Ok(())
    }

    fn logical_seat_category(
        &mut self,
        l: &catalogue::LogicalSeatCategory,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("logical seat category {}", l.code);
        let Some(open) = self
            .lc
            .as_mut()
            .filter(|o| o.manager == l.logical_configuration)
        else {
            if self.lcs.get(&l.logical_configuration.get()) == Some(&None) {
                return self.skip(&location, "its logical configuration is skipped");
            }
            return Err(DomainError::Invalid {
                object: location,
                problem: format!(
                    "its logical configuration {} was not read before it",
                    l.logical_configuration
                ),
            });
        };
        let Some(&[category]) = locals else {
            let code = self
                .refs
                .code_of(MappingKind::SeatCategory, l.seat_category);
            return self.skip(
                &location,
                &format!("its seat category {code} is ignored in the mapping"),
            );
        };
        let tx = self.tx;
        let lc = open.local;
        let existing: Option<(i64, String, i64)> = tx
            .prepare_cached(
                "SELECT id, name, seat_category FROM logical_seat_category
                 WHERE logical_configuration = ?1 AND code = ?2 ORDER BY id LIMIT 1",
            )?
            .query_row((lc, l.code.as_str()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let change = match existing {
            Some((id, name, sc)) => {
                open.seen.insert(id);
                let mut diffs = Vec::new();
                diff_text(
                    &mut diffs,
                    &format!("{location} name"),
                    &name,
                    l.name.as_str(),
                );
                if sc != category {
                    diffs.push(format!("{location} seat category {sc} → {category}"));
                }
                if diffs.is_empty() {
                    Change::Unchanged
                } else {
                    tx.prepare_cached(
                        "UPDATE logical_seat_category SET name = ?2, seat_category = ?3 WHERE id = ?1",
                    )?
                    .execute((id, l.name.as_str(), category))?;
                    open.diffs.extend(diffs);
                    Change::Updated
                }
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO logical_seat_category (logical_configuration, code, name, seat_category)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((lc, l.code.as_str(), l.name.as_str(), category))?;
                open.seen.insert(tx.last_insert_rowid());
                if !open.created {
                    open.diffs.push(format!("{location} added"));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    fn close_lc(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.lc.take() else {
            return Ok(());
        };
        let tx = self.tx;
        {
            let mut st = tx.prepare_cached(
                "SELECT id, code FROM logical_seat_category WHERE logical_configuration = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([open.local], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (id, code) = row?;
                if !open.seen.contains(&id) {
                    // Kept: later data (contingents, sales) may name it.
                    runs::message(
                        tx,
                        self.ctx.run,
                        Level::Warning,
                        "withdrawn",
                        Some(&format!("logical seat category {code}")),
                        &format!(
                            "logical seat category {code} of logical configuration {} is no longer sent by the manager; kept",
                            open.code
                        ),
                    )?;
                }
            }
        }
        let location = format!("logical configuration {}", open.code);
        if open.created {
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached(
                "UPDATE logical_configuration SET state = 'to_validate' WHERE id = ?1",
            )?
            .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.changed_lcs
                .insert(open.local, format!("{location} changed"));
            self.summary.add(Change::Updated);
        }
        open.diffs.clear();
        Ok(())
    }

    fn performance(
        &mut self,
        p: &catalogue::Performance,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("performance {}", p.code);
        let Some(&[activity, configuration]) = locals else {
            self.performances.insert(p.id.get(), None);
            return self.skip(
                &location,
                "its activity or configuration is ignored in the mapping",
            );
        };
        let lc = match self.lcs.get(&p.logical_configuration.get()) {
            Some(Some(lc)) => *lc,
            Some(None) => {
                self.performances.insert(p.id.get(), None);
                return self.skip(&location, "its logical configuration is skipped");
            }
            None => {
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names logical configuration {}, which the file does not declare",
                        p.logical_configuration
                    ),
                });
            }
        };
        let tx = self.tx;
        let lc_conf: i64 = tx
            .prepare_cached("SELECT configuration FROM logical_configuration WHERE id = ?1")?
            .query_row([lc], |r| r.get(0))?;
        if lc_conf != configuration {
            return Err(DomainError::Invalid {
                object: location,
                problem: format!(
                    "it is on configuration {} but its logical configuration {} is on another configuration",
                    p.configuration, p.logical_configuration
                ),
            });
        }
        let start = p
            .start
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| DomainError::Invalid {
                object: location.clone(),
                problem: format!("its start cannot be written as RFC 3339: {e}"),
            })?;
        let existing = self.local_of(MappingKind::Performance, p.id)?;
        type PerfRow = (String, String, i64, String, i64, i64, String);
        let row: Option<PerfRow> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, activity, start, configuration, logical_configuration, state
                     FROM performance WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
                })
                .optional()?,
            None => None,
        };
        let (local, change) = match (existing, row) {
            (Some(id), Some((code, name, act, st, conf, plc, state))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, p.code.as_str());
                diff_text(&mut diffs, "name", &name, p.name.as_str());
                diff_text(&mut diffs, "start", &st, &start);
                diff_text(&mut diffs, "state", &state, p.state.as_str());
                if act != activity {
                    diffs.push(format!("activity {act} → {activity}"));
                }
                if conf != configuration || plc != lc {
                    diffs.push("configuration changed".to_owned());
                }
                if diffs.is_empty() {
                    (id, Change::Unchanged)
                } else {
                    tx.prepare_cached(
                        "UPDATE performance SET code = ?2, name = ?3, activity = ?4, start = ?5,
                             configuration = ?6, logical_configuration = ?7, state = ?8
                         WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        p.code.as_str(),
                        p.name.as_str(),
                        activity,
                        &start,
                        configuration,
                        lc,
                        p.state.as_str(),
                    ))?;
                    for d in &diffs {
                        self.changed(&location, d)?;
                    }
                    self.changed_performances
                        .insert(id, format!("{location}: {}", diffs.join(", ")));
                    (id, Change::Updated)
                }
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO performance (code, name, activity, start, configuration,
                         logical_configuration, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute((
                    p.code.as_str(),
                    p.name.as_str(),
                    activity,
                    &start,
                    configuration,
                    lc,
                    p.state.as_str(),
                ))?;
                (tx.last_insert_rowid(), Change::Created)
            }
        };
        if let Some(reason) = self.changed_lcs.get(&lc).cloned() {
            self.changed_performances.entry(local).or_insert(reason);
        }
        self.fill(
            MappingKind::Performance,
            p.id,
            &p.code,
            p.name.as_str(),
            local,
        )?;
        self.performances
            .insert(p.id.get(), Some((local, p.code.as_str().to_owned())));
        self.summary.add(change);
        Ok(())
    }

    fn rate_table(&mut self, r: &catalogue::RateTable) -> Result<(), DomainError> {
        let tx = self.tx;
        let existing = self.local_of(MappingKind::RateTable, r.id)?;
        let row: Option<(String, String, String)> = match existing {
            Some(id) => tx
                .prepare_cached("SELECT code, name, currency FROM rate_table WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?,
            None => None,
        };
        let (local, created, diffs) = match (existing, row) {
            (Some(id), Some((code, name, currency))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, r.code.as_str());
                diff_text(&mut diffs, "name", &name, r.name.as_str());
                diff_text(&mut diffs, "currency", &currency, r.currency.as_str());
                if !diffs.is_empty() {
                    tx.prepare_cached(
                        "UPDATE rate_table SET code = ?2, name = ?3, currency = ?4 WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        r.code.as_str(),
                        r.name.as_str(),
                        r.currency.as_str(),
                    ))?;
                }
                (id, false, diffs)
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO rate_table (code, name, currency, state) VALUES (?1, ?2, ?3, 'to_validate')",
                )?
                .execute((r.code.as_str(), r.name.as_str(), r.currency.as_str()))?;
                (tx.last_insert_rowid(), true, Vec::new())
            }
        };
        self.fill(
            MappingKind::RateTable,
            r.id,
            &r.code,
            r.name.as_str(),
            local,
        )?;
        self.rate_tables.insert(r.id.get(), Some(local));
        self.rt = Some(OpenRt {
            manager: r.id,
            local,
            code: r.code.as_str().to_owned(),
            currency: r.currency,
            created,
            diffs,
            seen: HashSet::new(),
        });
        Ok(())
    }

    fn price(&mut self, p: &catalogue::Price, locals: Option<&[i64]>) -> Result<(), DomainError> {
        let k = MappingKind::SeatCategory;
        let key = format!(
            "{}/{}/{}",
            self.refs.code_of(k, p.seat_category),
            self.refs.code_of(MappingKind::TariffType, p.tariff_type),
            self.refs
                .code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
        );
        let Some(open) = self.rt.as_mut().filter(|o| o.manager == p.rate_table) else {
            return Err(DomainError::Invalid {
                object: format!("price {key}"),
                problem: format!("its rate table {} was not read before it", p.rate_table),
            });
        };
        let location = format!("price {key} of rate table {}", open.code);
        let Some(&[sc, tt, aud]) = locals else {
            let ignored: Vec<String> = [
                (k, p.seat_category),
                (MappingKind::TariffType, p.tariff_type),
                (MappingKind::AudienceSubcategory, p.audience_subcategory),
            ]
            .into_iter()
            .filter(|&(kind, id)| self.refs.get(kind, id) == Some(Resolved::Ignored))
            .map(|(kind, id)| format!("{} {}", kind_words(kind), self.refs.code_of(kind, id)))
            .collect();
            return self.skip(
                &location,
                &format!(
                    "its {} {} ignored in the mapping",
                    ignored.join(" and "),
                    if ignored.len() > 1 { "are" } else { "is" }
                ),
            );
        };
        if !open.seen.insert((sc, tt, aud)) {
            return Err(DomainError::Invalid {
                object: location,
                problem: "another price of this rate table maps to the same local seat category, tariff type and audience subcategory; map them to distinct local objects or ignore one".to_owned(),
            });
        }
        let tx = self.tx;
        let money = |minor| Money {
            minor,
            currency: open.currency,
        };
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .query_row((open.local, sc, tt, aud), |r| r.get(0))
            .optional()?;
        let change = match existing {
            Some(amount) if amount == p.amount => Change::Unchanged,
            Some(amount) => {
                tx.prepare_cached(
                    "UPDATE price SET amount = ?5 WHERE rate_table = ?1 AND seat_category = ?2
                         AND tariff_type = ?3 AND audience_subcategory = ?4",
                )?
                .execute((open.local, sc, tt, aud, p.amount))?;
                open.diffs.push(format!(
                    "price {key} {} → {}",
                    money(amount),
                    money(p.amount)
                ));
                Change::Updated
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO price (rate_table, seat_category, tariff_type, audience_subcategory, amount)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute((open.local, sc, tt, aud, p.amount))?;
                if !open.created {
                    open.diffs
                        .push(format!("price {key} added: {}", money(p.amount)));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    fn close_rt(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.rt.take() else {
            return Ok(());
        };
        let tx = self.tx;
        // Prices no longer sent are removed: a rate table is a snapshot.
        let stale: Vec<(i64, i64, i64, i64)> = {
            let mut st = tx.prepare_cached(
                "SELECT seat_category, tariff_type, audience_subcategory, amount FROM price
                 WHERE rate_table = ?1 ORDER BY seat_category, tariff_type, audience_subcategory",
            )?;
            let rows = st.query_map([open.local], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            let mut stale = Vec::new();
            for row in rows {
                let (sc, tt, aud, amount) = row?;
                if !open.seen.contains(&(sc, tt, aud)) {
                    stale.push((sc, tt, aud, amount));
                }
            }
            stale
        };
        for (sc, tt, aud, amount) in stale {
            tx.prepare_cached(
                "DELETE FROM price WHERE rate_table = ?1 AND seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .execute((open.local, sc, tt, aud))?;
            let key = format!(
                "{}/{}/{}",
                self.manager_code(MappingKind::SeatCategory, sc)?,
                self.manager_code(MappingKind::TariffType, tt)?,
                self.manager_code(MappingKind::AudienceSubcategory, aud)?
            );
            open.diffs.push(format!(
                "price {key} removed (was {})",
                Money {
                    minor: amount,
                    currency: open.currency
                }
            ));
        }
        let location = format!("rate table {}", open.code);
        if open.created {
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE rate_table SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.changed_rate_tables.insert(
                open.local,
                format!("{location} changed: {}", open.diffs.join("; ")),
            );
            self.summary.add(Change::Updated);
        }
        Ok(())
    }

    fn product(
        &mut self,
        p: &catalogue::Product,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("product {}", p.code);
        let Some(&[activity]) = locals else {
            let code = self.refs.code_of(MappingKind::Activity, p.activity);
            return self.skip(
                &location,
                &format!("its activity {code} is ignored in the mapping"),
            );
        };
        let rate_table = match self.rate_tables.get(&p.rate_table.get()) {
            Some(Some(rt)) => *rt,
            _ => {
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names rate table {}, which the file does not declare",
                        p.rate_table
                    ),
                });
            }
        };
        let tx = self.tx;
        let existing = self.local_of(MappingKind::Product, p.id)?;
        let row: Option<(String, String, i64, i64, String)> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, activity, rate_table, state FROM product WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?,
            None => None,
        };
        let open =
            match (existing, row) {
                (Some(id), Some((code, name, act, rt, state))) => {
                    let mut diffs = Vec::new();
                    diff_text(&mut diffs, "code", &code, p.code.as_str());
                    diff_text(&mut diffs, "name", &name, p.name.as_str());
                    if act != activity {
                        diffs.push(format!("activity {act} → {activity}"));
                    }
                    if rt != rate_table {
                        diffs.push(format!("rate table {rt} → {rate_table}"));
                    }
                    let was_suspended = state == "suspended";
                    if was_suspended {
                        diffs.push("sent again by the manager after its withdrawal".to_owned());
                    }
                    if !diffs.is_empty() {
                        tx.prepare_cached(
                        "UPDATE product SET code = ?2, name = ?3, activity = ?4, rate_table = ?5
                         WHERE id = ?1",
                    )?
                    .execute((id, p.code.as_str(), p.name.as_str(), activity, rate_table))?;
                    }
                    OpenProduct {
                        local: id,
                        code: p.code.as_str().to_owned(),
                        created: false,
                        was_suspended,
                        rate_table,
                        diffs,
                        performances: HashSet::new(),
                    }
                }
                _ => {
                    tx.prepare_cached(
                        "INSERT INTO product (code, name, activity, rate_table, state)
                     VALUES (?1, ?2, ?3, ?4, 'to_validate')",
                    )?
                    .execute((
                        p.code.as_str(),
                        p.name.as_str(),
                        activity,
                        rate_table,
                    ))?;
                    OpenProduct {
                        local: tx.last_insert_rowid(),
                        code: p.code.as_str().to_owned(),
                        created: true,
                        was_suspended: false,
                        rate_table,
                        diffs: Vec::new(),
                        performances: HashSet::new(),
                    }
                }
            };
        self.fill(
            MappingKind::Product,
            p.id,
            &p.code,
            p.name.as_str(),
            open.local,
        )?;
        self.product = Some(open);
        Ok(())
    }

    fn performance_ref(&mut self, r: &catalogue::PerformanceRef) -> Result<(), DomainError> {
        let Some(open) = self.product.as_mut() else {
            // The product was skipped (ignored activity): so is its link.
            self.summary.skipped += 1;
            return Ok(());
        };
        let location = format!("product {}", open.code);
        let (perf, perf_code) = match self.performances.get(&r.performance.get()) {
            Some(Some((id, code))) => (*id, code.clone()),
            Some(None) => {
                let why = format!("its performance {} is skipped", r.performance);
                return self.skip(&location, &why);
            }
            None => {
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names performance {}, which the file does not declare",
                        r.performance
                    ),
                });
            }
        };
        open.performances.insert(perf);
        let tx = self.tx;
        let n = tx
            .prepare_cached(
                "INSERT INTO product_performance (product, performance) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )?
            .execute((open.local, perf))?;
        if n > 0 {
            if !open.created {
                open.diffs.push(format!("performance {perf_code} added"));
            }
            self.summary.add(Change::Created);
        } else {
            self.summary.add(Change::Unchanged);
        }
        if let Some(why) = self.changed_performances.get(&perf) {
            open.diffs.push(why.clone());
        }
        Ok(())
    }

    fn close_product(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.product.take() else {
            return Ok(());
        };
        let tx = self.tx;
        let stale: Vec<(i64, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT pp.performance, p.code FROM product_performance pp
                 JOIN performance p ON p.id = pp.performance
                 WHERE pp.product = ?1 ORDER BY pp.performance",
            )?;
            let rows = st.query_map([open.local], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut stale = Vec::new();
            for row in rows {
                let (perf, code): (i64, String) = row?;
                if !open.performances.contains(&perf) {
                    stale.push((perf, code));
                }
            }
            stale
        };
        for (perf, code) in stale {
            tx.prepare_cached(
                "DELETE FROM product_performance WHERE product = ?1 AND performance = ?2",
            )?
            .execute((open.local, perf))?;
            open.diffs.push(format!("performance {code} removed"));
        }
        if let Some(why) = self.changed_rate_tables.get(&open.rate_table) {
            open.diffs.push(why.clone());
        }
        let location = format!("product {}", open.code);
        if open.created {
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE product SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.changed(
                &location,
                &format!(
                    "product {} returns to to_validate{}",
                    open.code,
                    if open.was_suspended {
                        " (it was suspended)"
                    } else {
                        ""
                    }
                ),
            )?;
            self.summary.add(Change::Updated);
        }
        Ok(())
    }

    /// Suspends the products mapped before and absent from this snapshot.
    fn suspend_withdrawn(&mut self) -> Result<(), DomainError> {
        let tx = self.tx;
        let mapped: Vec<(i64, i64, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT m.manager_id, p.id, p.code FROM mapping m JOIN product p ON p.id = m.local_id
                 WHERE m.manager = ?1 AND m.kind = 'product' AND m.status = 'filled'
                     AND p.state <> 'suspended'
                 ORDER BY m.manager_id",
            )?;
            let rows = st.query_map([self.ctx.manager], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (manager_id, local, code): (i64, i64, String) = row?;
                if !self.products.contains(&manager_id) {
                    out.push((manager_id, local, code));
                }
            }
            out
        };
        for (manager_id, local, code) in mapped {
            tx.prepare_cached("UPDATE product SET state = 'suspended' WHERE id = ?1")?
                .execute([local])?;
            runs::message(
                tx,
                self.ctx.run,
                Level::Warning,
                "withdrawn",
                Some(&format!("product {code}")),
                &format!(
                    "product {code} (manager id {manager_id}) is no longer in the manager's catalogue: suspended (kept, not sellable)"
                ),
            )?;
            self.summary.suspended += 1;
        }
        Ok(())
    }

    /// Ends the file: applied (withdrawn products suspended), or parked
    /// (rolled back but for the pending rows and the run messages).
    pub fn finish(mut self) -> Result<Outcome, DomainError> {
        if !self.refs.any_missing() {
            self.close_lc()?;
            self.close_rt()?;
            self.close_product()?;
            self.suspend_withdrawn()?;
        }
        finish_refs(self.tx, &self.ctx, &mut self.savepoint, &self.refs)?;
        if self.refs.any_missing() {
            return Ok(Outcome::Parked(self.refs.missing()));
        }
        summary_message(self.tx, &self.ctx, &self.summary)?;
        Ok(Outcome::Applied(self.summary))
    }

    fn local_of(&self, kind: MappingKind, id: TechId) -> Result<Option<i64>, DomainError> {
        Ok(
            match mapping::lookup(self.tx, self.ctx.manager, kind, id)? {
                Some(Resolved::Local(local)) => Some(local),
                _ => None,
            },
        )
    }

    fn fill(
        &self,
        kind: MappingKind,
        id: TechId,
        code: &Code,
        label: &str,
        local: i64,
    ) -> Result<(), DomainError> {
        mapping::fill_auto(
            self.tx,
            &Seen {
                manager: self.ctx.manager,
                kind,
                manager_id: id,
                code,
                label,
                file: self.ctx.file,
            },
            local,
        )
    }

    /// The manager's code of the object a local id stands for (the local
    /// code when several or none map to it).
    fn manager_code(&self, kind: MappingKind, local: i64) -> Result<String, DomainError> {
        let code: Option<String> = self
            .tx
            .prepare_cached(
                "SELECT manager_code FROM mapping WHERE manager = ?1 AND kind = ?2 AND local_id = ?3
                 ORDER BY manager_id LIMIT 1",
            )?
            .query_row((self.ctx.manager, kind.as_str(), local), |r| r.get(0))
            .optional()?;
        Ok(code.unwrap_or_else(|| local.to_string()))
    }
}

fn diff_text(diffs: &mut Vec<String>, what: &str, old: &str, new: &str) {
    if old != new {
        diffs.push(format!("{what} {old:?} → {new:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store};

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("d.sqlite"), "TOURISM", Role::Distributor).unwrap()
    }

    fn code(s: &str) -> Code {
        Code::new(s).unwrap()
    }

    fn id(n: i64) -> TechId {
        TechId::new(n).unwrap()
    }

    fn plan(category: i64) -> Vec<seatplan::Item> {
        use seatplan::*;
        vec![
            Item::SeatCategory(SeatCategory {
                id: id(2001),
                code: code("CAT1"),
                name: crate::ident::Name::new("Catégorie 1").unwrap(),
            }),
            Item::Venue(Venue {
                id: id(3001),
                code: code("V"),
                name: crate::ident::Name::new("Venue").unwrap(),
            }),
            Item::Configuration(Configuration {
                id: id(3101),
                venue: id(3001),
                code: code("STD"),
                name: crate::ident::Name::new("Std").unwrap(),
            }),
            Item::Block(Block {
                id: id(3301),
                configuration: id(3101),
                code: code("B"),
                name: crate::ident::Name::new("Block").unwrap(),
            }),
            Item::Row(Row {
                id: id(4001),
                block: id(3301),
                code: code("A"),
            }),
            Item::Seat(Seat {
                id: id(50001),
                row: id(4001),
                number: code("1"),
                seat_category: id(category),
            }),
        ]
    }

    fn run_plan(s: &mut Store, items: &[seatplan::Item]) -> Result<Outcome, DomainError> {
        s.write(|tx| {
            let run = runs::start(tx, "import-seatplan", None, Some("f"))?;
            let mut imp = SeatplanImport::new(
                tx,
                Context {
                    manager: "OPERA",
                    file: "f",
                    run,
                },
            )?;
            for item in items {
                imp.item(item)?;
            }
            imp.finish()
        })
    }

    #[test]
    fn a_pending_seat_category_parks_the_plan_and_keeps_only_the_pending_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let out = run_plan(&mut s, &plan(2001)).unwrap();
        let Outcome::Parked(missing) = out else {
            panic!("expected parked, got {out:?}")
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].kind, MappingKind::SeatCategory);
        assert_eq!(missing[0].needed_by, "seat B A 1");
        let (venues, mappings): (i64, i64) = s
            .read(|c| {
                Ok::<_, DomainError>((
                    c.query_row("SELECT count(*) FROM venue", [], |r| r.get(0))?,
                    c.query_row("SELECT count(*) FROM mapping", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!((venues, mappings), (0, 1));
    }

    #[test]
    fn a_mapped_plan_applies_with_new_ids_and_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO seat_category (id, code, name) VALUES (7501, 'PREM', 'Première')",
                [],
            )?;
            mapping::fill_auto(
                tx,
                &Seen {
                    manager: "OPERA",
                    kind: MappingKind::SeatCategory,
                    manager_id: id(2001),
                    code: &code("CAT1"),
                    label: "Catégorie 1",
                    file: "x",
                },
                7501,
            )
        })
        .unwrap();
        let Outcome::Applied(first) = run_plan(&mut s, &plan(2001)).unwrap() else {
            panic!("expected applied")
        };
        assert_eq!((first.created, first.updated), (5, 0));
        let seat: (i64, i64) = s
            .read(|c| -> Result<_, DomainError> {
                Ok(c.query_row("SELECT id, seat_category FROM seat", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
            })
            .unwrap();
        assert_ne!(seat.0, 50001, "the manager's id is never reused");
        assert_eq!(seat.1, 7501);
        let Outcome::Applied(again) = run_plan(&mut s, &plan(2001)).unwrap() else {
            panic!("expected applied")
        };
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 5));
    }

    #[test]
    fn an_undeclared_seat_category_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let e = run_plan(&mut s, &plan(2999)).unwrap_err().to_string();
        assert!(e.contains("does not declare"), "{e}");
    }

    #[test]
    fn dropping_an_import_unfinished_rolls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            let mut imp = SeatplanImport::new(
                tx,
                Context {
                    manager: "OPERA",
                    file: "f",
                    run: 1,
                },
            )?;
            imp.item(&plan(2001)[1])?;
            drop(imp);
            Ok(())
        })
        .unwrap();
        let venues: i64 = s
            .read(|c| -> Result<i64, DomainError> {
                Ok(c.query_row("SELECT count(*) FROM venue", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(venues, 0);
    }
}
