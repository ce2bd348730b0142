//! The references an import has seen: every manager object a file declares
//! or names, looked up (and recorded) in the mapping table as it streams in.
//!
//! [`Refs`] takes the sightings and answers whether a needed mapping is
//! missing; at the end of a parked file it records the sightings again after
//! the rollback and writes one run message per missing mapping
//! ([`finish_refs`]). Also the helpers both importers share: creating and
//! mapping a local object of an automatic kind ([`mapped_local`],
//! [`upsert_auto`], its statements held in [`Writes`]), info
//! messages and the summary message.

use std::collections::HashMap;

use rusqlite::types::ToSql;
use rusqlite::{Connection, Statement, Transaction};

use super::savepoint::Savepoint;
use super::{Change, Context, Missing, Summary};
use crate::domain::mapping::{self, FileMappings, Resolved, Seen};
use crate::domain::{DomainError, held};
use crate::ident::{Code, TechId};
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Level};

/// The codes of the run messages that name a mapping a parked file waits
/// for, its kind and manager id as their location (`seat_category 2001`).
const MAPPING_PENDING: &str = "mapping-pending";
const MAPPING_BROKEN: &str = "mapping-broken";

/// Whether every mapping the parked run `run` found missing is missing
/// still (pending, broken, or gone from the table), so that applying its
/// file again would only park it again. `None` when the run names none it
/// can read back (a run of another kind, messages of an older version):
/// only applying the file again can tell.
pub fn still_missing(
    conn: &Connection,
    manager: &str,
    run: i64,
) -> Result<Option<bool>, DomainError> {
    let mut st = conn
        .prepare_cached("SELECT location FROM run_message WHERE run = ?1 AND code IN (?2, ?3)")?;
    let locations = st
        .query_map((run, MAPPING_PENDING, MAPPING_BROKEN), |r| {
            r.get::<_, Option<String>>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if locations.is_empty() {
        return Ok(None);
    }
    for location in locations {
        let named = location.as_deref().and_then(|l| {
            let (kind, id) = l.split_once(' ')?;
            let id = TechId::new(id.parse().ok()?).ok()?;
            Some((MappingKind::parse(kind)?, id))
        });
        let Some((kind, id)) = named else {
            return Ok(None);
        };
        match mapping::lookup(conn, manager, kind, id)? {
            Some(resolved) if !Refs::is_missing(resolved) => return Ok(Some(false)),
            _ => {}
        }
    }
    Ok(Some(true))
}

/// A manager object looked up in the mapping table while reading a file.
#[derive(Debug, Clone)]
pub(super) struct Sighting {
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
pub(super) struct Refs {
    list: Vec<Sighting>,
    index: HashMap<(MappingKind, i64), usize>,
}

impl Refs {
    /// A declaration: records the sighting (pending row on first sight,
    /// label refreshed afterwards).
    pub(super) fn see(
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
    pub(super) fn need(
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
            return Err(DomainError::refused(
                "undeclared-reference",
                by(),
                format!(
                    "it names {} {id}, which the file does not declare; the manager's export must declare every object its records name",
                    kind_words(kind)
                ),
            ));
        };
        if s.needed_by.is_none() {
            s.needed_by = Some(by());
        }
        Ok(s.resolved)
    }

    /// A reference to an object another file brings (the physical
    /// configuration of a catalogue comes from the seat plan).
    pub(super) fn need_external(
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

    pub(super) fn is_missing(resolved: Resolved) -> bool {
        matches!(resolved, Resolved::Pending | Resolved::Broken(_))
    }

    pub(super) fn any_missing(&self) -> bool {
        self.list.iter().any(|s| Refs::is_missing(s.resolved))
    }

    pub(super) fn missing(&self) -> Vec<Missing> {
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
    pub(super) fn replay(
        &self,
        tx: &Transaction<'_>,
        ctx: &Context<'_>,
    ) -> Result<(), DomainError> {
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
    pub(super) fn report(
        &self,
        tx: &Transaction<'_>,
        ctx: &Context<'_>,
    ) -> Result<(), DomainError> {
        for s in self.list.iter().filter(|s| Refs::is_missing(s.resolved)) {
            // Read back by `still_missing`.
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
                    MAPPING_BROKEN,
                    format!(
                        "{what} is mapped to local {} {local}, which no longer exists; map it again: stxd mapping set {} {} LOCAL_CODE",
                        kind_words(s.kind),
                        s.kind,
                        s.id
                    ),
                ),
                (_, true) => (
                    MAPPING_PENDING,
                    format!(
                        "{what} is not mapped yet; map it: stxd mapping set {} {} LOCAL_CODE (or ignore it)",
                        s.kind, s.id
                    ),
                ),
                (_, false) => (
                    MAPPING_PENDING,
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

    pub(super) fn get(&self, kind: MappingKind, id: TechId) -> Option<Resolved> {
        self.index
            .get(&(kind, id.get()))
            .and_then(|&i| self.list.get(i))
            .map(|s| s.resolved)
    }

    pub(super) fn code_of(&self, kind: MappingKind, id: TechId) -> String {
        self.index
            .get(&(kind, id.get()))
            .and_then(|&i| self.list.get(i))
            .map_or_else(|| id.to_string(), |s| s.code.clone())
    }
}

/// A code for a manager object known only by its id (a pending row the
/// seat plan import later fills with the real code).
pub(super) fn placeholder_code(id: TechId) -> Result<Code, DomainError> {
    Code::new(&id.get().to_string())
        .or_else(|_| Code::new("UNKNOWN"))
        .map_err(|e| DomainError::Invalid {
            object: format!("manager object {id}"),
            problem: e.to_string(),
        })
}

/// The kind in words, for messages ("tariff type").
pub(super) fn kind_words(kind: MappingKind) -> String {
    kind.as_str().replace('_', " ")
}

pub(super) fn info(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    code: &str,
    location: &str,
    text: &str,
) -> Result<(), DomainError> {
    runs::message(tx, ctx.run, Level::Info, code, Some(location), text)?;
    Ok(())
}

/// The local object a manager object is mapped to now, if that object
/// exists. `None` too when the mapping is broken (the local object was
/// deleted), pending or ignored: an automatic kind is then simply created
/// (again) and mapped by [`upsert_auto`].
pub(super) fn mapped_local(
    maps: &mut FileMappings<'_>,
    manager: &str,
    kind: MappingKind,
    id: TechId,
) -> Result<Option<i64>, DomainError> {
    Ok(local_of(maps.lookup(manager, kind, id)?))
}

/// [`mapped_local`] for the object of the record being applied, whose id
/// the file declares there for the first time
/// ([`FileMappings::lookup_declared`]: no look-up while its kind had no
/// mapping row when the file began).
pub(super) fn declared_local(
    maps: &mut FileMappings<'_>,
    manager: &str,
    kind: MappingKind,
    id: TechId,
) -> Result<Option<i64>, DomainError> {
    Ok(local_of(maps.lookup_declared(manager, kind, id)?))
}

fn local_of(resolved: Option<Resolved>) -> Option<i64> {
    match resolved {
        Some(Resolved::Local(local)) => Some(local),
        _ => None,
    }
}

/// An automatic kind's update and insert (see [`upsert_auto`]), prepared at
/// its first record and held for the file.
#[derive(Default)]
pub(super) struct Writes<'t> {
    update: Option<Statement<'t>>,
    insert: Option<Statement<'t>>,
}

/// A manager object of an automatic kind, as a record of the file gives it.
pub(super) struct AutoObject<'a> {
    pub kind: MappingKind,
    pub id: TechId,
    /// Its local object as [`mapped_local`] found it (the caller may have
    /// needed it first: one look-up per record).
    pub existing: Option<i64>,
    pub code: &'a Code,
    pub label: &'a str,
}

/// Creates or updates the local object mapped to a manager object of an
/// automatic kind, and maps it: a new object gets its mapping row filled,
/// one found through its mapping has that row's sighting refreshed.
/// `update` binds `?1` = local id and `?2…` = `params`, and changes the row
/// only when a value differs; `insert` binds the same with `?1` = NULL (a
/// new local id). Both are held in `writes`.
pub(super) fn upsert_auto<'t>(
    conn: &'t Connection,
    maps: &mut FileMappings<'_>,
    ctx: &Context<'_>,
    object: &AutoObject<'_>,
    writes: &mut Writes<'t>,
    (update, insert): (&str, &str),
    params: &[&dyn ToSql],
) -> Result<(i64, Change), DomainError> {
    let mut all: Vec<&dyn ToSql> = Vec::with_capacity(params.len() + 1);
    all.push(&object.existing);
    all.extend_from_slice(params);
    let (local, change) = match object.existing {
        Some(local) => {
            let n = held(&mut writes.update, conn, update)?.execute(&all[..])?;
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
            held(&mut writes.insert, conn, insert)?.execute(&all[..])?;
            (conn.last_insert_rowid(), Change::Created)
        }
    };
    let seen = Seen {
        manager: ctx.manager,
        kind: object.kind,
        manager_id: object.id,
        code: object.code,
        label: object.label,
        file: ctx.file,
    };
    // An object found through its mapping keeps it: only the sighting is
    // new.
    match object.existing {
        Some(_) => maps.refresh(&seen)?,
        None => maps.fill(&seen, local)?,
    }
    Ok((local, change))
}

/// Parked: rolls back, records the sightings again and reports them.
/// Applied: releases the savepoint.
pub(super) fn finish_refs(
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

pub(super) fn summary_message(
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
