//! Objects a distributor's command names by local id, local code or the manager's id (performances, products, blocks, zones).
//!
//! The manager's commands take the manager's own ids and codes (`--performance
//! 1701` or `TRAV0115`), which are the ones the exchange files carry; the
//! distributor's objects have local ids of their own. So that both sides
//! accept what ops read in either store or file, a distributor's command
//! resolves a name here, in this order: a local technical id, a local code
//! (one object only), then the manager's technical id through the link's
//! mapping table (a filled mapping of that kind). What resolves is handed to
//! the domain as the local id; what does not is handed on unchanged, for the
//! domain to refuse in its own words (and runs).

use rusqlite::{Connection, OptionalExtension};

use crate::domain::mapping::{Resolved, lookup};
use crate::ident::TechId;
use crate::store::mapping::MappingKind;

/// The local object of `kind` that `key` names (see the module docs);
/// `None` when nothing does, or when a code names several objects. Codes
/// are looked up for performances and products only.
pub(super) fn local_id(
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    key: &str,
) -> anyhow::Result<Option<i64>> {
    let table = kind.local_table();
    let key = key.trim();
    if let Ok(id) = key.parse::<i64>() {
        let exists = conn
            .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Ok(Some(id));
        }
    }
    // Blocks and zones are found by code in the performance's venue
    // configuration, by the domain.
    if matches!(kind, MappingKind::Performance | MappingKind::Product) {
        let ids: Vec<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM {table} WHERE code = ?1 ORDER BY id LIMIT 2"
            ))?
            .query_map([key], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [one] => return Ok(Some(*one)),
            [_, _, ..] => return Ok(None),
            [] => {}
        }
    }
    let Ok(manager_id) = TechId::parse(key) else {
        return Ok(None);
    };
    Ok(match lookup(conn, manager, kind, manager_id)? {
        Some(Resolved::Local(id)) => Some(id),
        _ => None,
    })
}

/// `key` as the local id's text when it resolves, else unchanged.
pub(super) fn local_key(
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    key: &str,
) -> anyhow::Result<String> {
    Ok(local_id(conn, manager, kind, key)?.map_or_else(|| key.to_owned(), |id| id.to_string()))
}
