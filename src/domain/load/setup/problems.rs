//! What every section of the setup file shares: [`Problems`] collects every
//! problem of the file (so the operator sees them all at once) with the
//! checks of ids, codes, names, URLs, logins and references; [`at`] and
//! [`first_time`] name entries and catch repeats; [`replace_list`] and
//! [`upsert_on_channel`] write the rows several sections share.

use std::collections::HashSet;

use rusqlite::Transaction;

use crate::domain::DomainError;
use crate::domain::exists;
use crate::ident::{Code, Name, TechId};

/// Collects every problem of a setup file, so the operator sees them all at once.
pub(super) struct Problems {
    pub(super) list: Vec<String>,
}

impl Problems {
    pub(super) fn push(&mut self, p: String) {
        self.list.push(p);
    }

    pub(super) fn id(&mut self, at: &str, field: &str, v: i64) -> Option<i64> {
        match TechId::new(v) {
            Ok(t) => Some(t.get()),
            Err(e) => {
                self.push(format!("{at}: {field}: {e}"));
                None
            }
        }
    }

    pub(super) fn ids(&mut self, at: &str, field: &str, vs: &[i64]) -> Option<Vec<i64>> {
        let mut out = Vec::with_capacity(vs.len());
        let mut seen = HashSet::new();
        let mut ok = true;
        for &v in vs {
            match self.id(at, field, v) {
                Some(i) if seen.insert(i) => out.push(i),
                Some(i) => {
                    self.push(format!("{at}: {field}: {i} is listed twice"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The id, code and name every setup object carries, each checked (a
    /// problem is listed for each bad one).
    pub(super) fn identity(
        &mut self,
        at: &str,
        id: i64,
        code: &str,
        name: &str,
    ) -> (Option<i64>, Option<String>, Option<String>) {
        (
            self.id(at, "id", id),
            self.code(at, "code", code),
            self.name(at, name),
        )
    }

    pub(super) fn code(&mut self, at: &str, field: &str, v: &str) -> Option<String> {
        match Code::new(v) {
            Ok(c) => Some(c.as_str().to_owned()),
            Err(e) => {
                self.push(format!("{at}: {field}: {e}"));
                None
            }
        }
    }

    pub(super) fn name(&mut self, at: &str, v: &str) -> Option<String> {
        match Name::new(v) {
            Ok(n) => Some(n.as_str().to_owned()),
            Err(e) => {
                self.push(format!("{at}: name: {e}"));
                None
            }
        }
    }

    pub(super) fn url(&mut self, at: &str, v: &str) -> Option<String> {
        let ok = (v.starts_with("http://") || v.starts_with("https://"))
            && v.len() <= 200
            && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Some(v.to_owned())
        } else {
            self.push(format!(
                "{at}: url: expected an http:// or https:// URL of at most 200 bytes without spaces, found {:?}",
                crate::ident::shorten(v)
            ));
            None
        }
    }

    /// A login: letters, digits, `_ - .`, and `@` when `at_sign`.
    pub(super) fn login(&mut self, at: &str, v: &str, at_sign: bool) -> Option<String> {
        let ok = (1..=64).contains(&v.len())
            && v.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || (at_sign && c == '@')
            });
        if ok {
            Some(v.to_owned())
        } else {
            let allowed = if at_sign {
                "A-Z a-z 0-9 _ - . @"
            } else {
                "A-Z a-z 0-9 _ - ."
            };
            self.push(format!(
                "{at}: login: expected 1 to 64 characters among {allowed}, found {:?}",
                crate::ident::shorten(v)
            ));
            None
        }
    }

    /// Records a problem when the object is not in the store.
    pub(super) fn present(
        &mut self,
        tx: &Transaction<'_>,
        at: &str,
        field: &str,
        table: &'static str,
        id: i64,
    ) -> Result<bool, DomainError> {
        if exists(tx, table, id)? {
            Ok(true)
        } else {
            self.push(format!(
                "{at}: {field} names {} {id}, which is not loaded",
                table.replace('_', " ")
            ));
            Ok(false)
        }
    }

    pub(super) fn all_present(
        &mut self,
        tx: &Transaction<'_>,
        at: &str,
        field: &str,
        table: &'static str,
        ids: &[i64],
    ) -> Result<bool, DomainError> {
        let mut ok = true;
        for &id in ids {
            ok &= self.present(tx, at, field, table, id)?;
        }
        Ok(ok)
    }
}

/// Names an entry of a section for messages: `[[sales_channel]] #1 (id 5001)`.
pub(super) fn at(section: &str, n: usize, id: impl std::fmt::Display) -> String {
    format!("[[{section}]] #{} ({id})", n + 1)
}

/// Tracks ids already seen in a section of the file.
pub(super) fn first_time(
    seen: &mut HashSet<String>,
    p: &mut Problems,
    at: &str,
    key: String,
) -> bool {
    if seen.insert(key.clone()) {
        true
    } else {
        p.push(format!("{at}: {key} appears twice in the file"));
        false
    }
}

/// Replaces the members of a list table for one owner.
pub(super) fn replace_list(
    tx: &Transaction<'_>,
    table: &'static str,
    owner_col: &'static str,
    member_col: &'static str,
    owner: i64,
    members: &[i64],
) -> Result<(), DomainError> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE {owner_col} = ?1"))?
        .execute([owner])?;
    let mut ins = tx.prepare_cached(&format!(
        "INSERT INTO {table} ({owner_col}, {member_col}) VALUES (?1, ?2)"
    ))?;
    for &m in members {
        ins.execute([owner, m])?;
    }
    Ok(())
}

/// Upserts an (id, code, name, channel) object: contingents and profiles.
pub(super) fn upsert_on_channel(
    tx: &Transaction<'_>,
    table: &'static str,
    id: i64,
    code: &str,
    name: &str,
    channel: i64,
) -> Result<(), DomainError> {
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (id, code, name, channel) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
             channel = excluded.channel
         WHERE code IS NOT excluded.code OR name IS NOT excluded.name
             OR channel IS NOT excluded.channel"
    ))?
    .execute((id, code, name, channel))?;
    Ok(())
}
