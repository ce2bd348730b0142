//! Logical seat categories per seat at the distributor: the seat ranges of
//! a logical configuration (kept per local seat, a changed assignment being
//! a change of the logical configuration) and the prices of logical seat
//! categories (a change of their rate table). Both are snapshots: what a
//! file no longer sends is removed, as a difference to validate.

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::super::Change;
use super::{CatalogueImport, OpenLc, OpenRt};
use crate::domain::DomainError;
use crate::domain::mapping::{self, Resolved};
use crate::format::catalogue;
use crate::money::Money;
use crate::store::mapping::MappingKind;

/// How many seat differences a logical configuration lists one by one.
const LISTED_SEATS: usize = 20;

impl CatalogueImport<'_> {
    /// The local logical seat category of a manager's one this file
    /// declared (named by a range or a logical price): `Some(None)` when it
    /// was skipped, `None` when the file did not declare it.
    fn local_logical(&self, id: crate::ident::TechId) -> Option<Option<i64>> {
        self.logical_categories.get(&id.get()).copied()
    }

    pub(super) fn seat_range(&mut self, r: &catalogue::SeatRange) -> Result<(), DomainError> {
        let location = format!("seat range {} {} {}-{}", r.block, r.row, r.from, r.to);
        let lc = r.logical_configuration;
        if self.lc.as_ref().is_none_or(|o| o.manager != lc) {
            if self.lcs.get(&lc.get()) == Some(&None) {
                return self.skip(&location, "its logical configuration is skipped");
            }
            return Err(DomainError::refused(
                "parent-not-read",
                location,
                format!("its logical configuration {lc} was not read before it"),
            ));
        }
        let category = match self.local_logical(r.logical_seat_category) {
            Some(Some(local)) => local,
            Some(None) => {
                return self.skip(&location, "its logical seat category is skipped");
            }
            None => {
                return Err(DomainError::refused(
                    "logical-category-unknown",
                    location,
                    format!(
                        "expected a logical seat category of logical configuration {lc} read before it, found {}",
                        r.logical_seat_category
                    ),
                ));
            }
        };
        let span = r
            .span()
            .map_err(|e| DomainError::refused("bad-range", &location, e))?;
        let tx = self.tx;
        let local_lc = self.lc.as_ref().map_or(0, |o| o.local);
        let (configuration, parent): (i64, i64) = tx
            .prepare_cached(
                "SELECT l.configuration, c.seat_category FROM logical_configuration l
                   JOIN logical_seat_category c ON c.id = ?2 WHERE l.id = ?1",
            )?
            .query_row((local_lc, category), |x| Ok((x.get(0)?, x.get(1)?)))?;
        let block = match mapping::lookup(tx, self.ctx.manager, MappingKind::Block, r.block)? {
            Some(Resolved::Local(id)) => tx
                .prepare_cached("SELECT id FROM block WHERE id = ?1 AND configuration = ?2")?
                .query_row((id, configuration), |x| x.get::<_, i64>(0))
                .optional()?,
            _ => None,
        };
        let Some(block) = block else {
            return Err(DomainError::refused(
                "unknown-block",
                location,
                format!(
                    "expected a block of the logical configuration's configuration, found block {} (not mapped to a local block of local configuration {configuration}): import the manager's latest seat plan first",
                    r.block
                ),
            ));
        };
        let row: Option<i64> = tx
            .prepare_cached("SELECT id FROM seat_row WHERE block = ?1 AND code = ?2")?
            .query_row((block, r.row.as_str()), |x| x.get(0))
            .optional()?;
        let Some(row) = row else {
            return Err(DomainError::refused(
                "unknown-row",
                location,
                format!("expected a row of block {}, found row {}", r.block, r.row),
            ));
        };
        let seats: Vec<(i64, String, i64)> = tx
            .prepare_cached(
                "SELECT id, number, seat_category FROM seat WHERE row = ?1 ORDER BY id",
            )?
            .query_map([row], |s| {
                Ok::<(i64, String, i64), _>((s.get(0)?, s.get(1)?, s.get(2)?))
            })?
            .filter(|s| s.as_ref().map_or(true, |(_, n, _)| span.covers(n.as_str())))
            .collect::<Result<_, _>>()?;
        if seats.is_empty() {
            return Err(DomainError::refused(
                "empty-range",
                location,
                format!(
                    "expected seats of row {} numbered {}-{}, found none",
                    r.row, r.from, r.to
                ),
            ));
        }
        if let Some((_, number, sc)) = seats.iter().find(|s| s.2 != parent) {
            return Err(DomainError::refused(
                "logical-category-parent",
                location,
                format!(
                    "logical seat category {} sells local seat category {parent}, but seat {} {number} is of local seat category {sc}",
                    r.logical_seat_category, r.row
                ),
            ));
        }
        if let Some(open) = self.lc.as_mut() {
            for (seat, _, _) in seats {
                open.seats.insert(seat, category);
            }
        }
        Ok(())
    }

    /// Replaces the stored seat assignments of a logical configuration by
    /// the file's, each difference recorded (a few listed one by one).
    pub(super) fn replace_seats(&mut self, open: &mut OpenLc) -> Result<(), DomainError> {
        let tx = self.tx;
        let stored: HashMap<i64, i64> = tx
            .prepare_cached(
                "SELECT seat, logical_seat_category FROM logical_seat WHERE logical_configuration = ?1",
            )?
            .query_map([open.local], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut differing: Vec<(i64, Option<i64>, Option<i64>)> = open
            .seats
            .iter()
            .filter(|(seat, cat)| stored.get(seat) != Some(cat))
            .map(|(seat, cat)| (*seat, stored.get(seat).copied(), Some(*cat)))
            .chain(
                stored
                    .iter()
                    .filter(|(seat, _)| !open.seats.contains_key(seat))
                    .map(|(seat, cat)| (*seat, Some(*cat), None)),
            )
            .collect();
        if differing.is_empty() {
            return Ok(());
        }
        differing.sort_unstable();
        tx.prepare_cached("DELETE FROM logical_seat WHERE logical_configuration = ?1")?
            .execute([open.local])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO logical_seat (logical_configuration, seat, logical_seat_category)
             VALUES (?1, ?2, ?3)",
        )?;
        for (seat, category) in &open.seats {
            insert.execute((open.local, seat, category))?;
        }
        if open.created {
            return Ok(());
        }
        let name = |cat: Option<i64>| -> Result<String, rusqlite::Error> {
            match cat {
                None => Ok("its physical seat category".to_owned()),
                Some(c) => tx
                    .prepare_cached("SELECT code FROM logical_seat_category WHERE id = ?1")?
                    .query_row([c], |r| r.get(0)),
            }
        };
        for (seat, was, now) in differing.iter().take(LISTED_SEATS) {
            let label: String = tx
                .prepare_cached(
                    "SELECT b.code || ' ' || r.code || ' ' || s.number FROM seat s
                       JOIN seat_row r ON r.id = s.row JOIN block b ON b.id = r.block
                      WHERE s.id = ?1",
                )?
                .query_row([seat], |r| r.get(0))?;
            open.diffs.push(format!(
                "seat {label}: logical seat category {} → {}",
                name(*was)?,
                name(*now)?
            ));
        }
        if differing.len() > LISTED_SEATS {
            open.diffs.push(format!(
                "and {} more seat(s) given another logical seat category",
                differing.len() - LISTED_SEATS
            ));
        }
        Ok(())
    }

    pub(super) fn logical_price(
        &mut self,
        p: &catalogue::LogicalPrice,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let key = format!(
            "{}/{}",
            self.refs.code_of(MappingKind::TariffType, p.tariff_type),
            self.refs
                .code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
        );
        let location = format!(
            "logical price {}/{key} of rate table {}",
            p.logical_seat_category, self.rt_code
        );
        if self.rt.as_ref().is_none_or(|o| o.manager != p.rate_table) {
            return Err(DomainError::refused(
                "parent-not-read",
                location,
                format!("its rate table {} was not read before it", p.rate_table),
            ));
        }
        let category = match self.local_logical(p.logical_seat_category) {
            Some(Some(local)) => local,
            Some(None) => return self.skip(&location, "its logical seat category is skipped"),
            None => {
                return Err(DomainError::refused(
                    "logical-category-unknown",
                    location,
                    format!(
                        "expected a logical seat category read before it, found {}",
                        p.logical_seat_category
                    ),
                ));
            }
        };
        let Some(&[tt, aud]) = locals else {
            return self.skip(
                &location,
                "its tariff type or audience subcategory is ignored in the mapping",
            );
        };
        let tx = self.tx;
        let code: String = tx
            .prepare_cached("SELECT code FROM logical_seat_category WHERE id = ?1")?
            .query_row([category], |r| r.get(0))?;
        let key = format!("{code}/{key}");
        let Some(open) = self.rt.as_mut() else {
            return Ok(());
        };
        if !open.seen_logical.insert((category, tt, aud)) {
            return Err(DomainError::refused(
                "mapping-collision",
                location,
                "the file gives this logical price twice, or another maps to the same local tariff type and audience subcategory",
            ));
        }
        let money = |minor| Money {
            minor,
            currency: open.currency,
        };
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT amount FROM logical_price WHERE rate_table = ?1 AND logical_seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .query_row((open.local, category, tt, aud), |r| r.get(0))
            .optional()?;
        let change = match existing {
            Some(amount) if amount == p.amount => Change::Unchanged,
            Some(amount) => {
                tx.prepare_cached(
                    "UPDATE logical_price SET amount = ?5 WHERE rate_table = ?1
                         AND logical_seat_category = ?2 AND tariff_type = ?3
                         AND audience_subcategory = ?4",
                )?
                .execute((open.local, category, tt, aud, p.amount))?;
                open.diffs.push(format!(
                    "logical price {key} {} → {}",
                    money(amount),
                    money(p.amount)
                ));
                Change::Updated
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO logical_price (rate_table, logical_seat_category, tariff_type,
                         audience_subcategory, amount) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute((open.local, category, tt, aud, p.amount))?;
                if !open.created {
                    open.diffs
                        .push(format!("logical price {key} added: {}", money(p.amount)));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    /// Removes the logical prices a rate table no longer sends.
    pub(super) fn stale_logical_prices(&mut self, open: &mut OpenRt) -> Result<(), DomainError> {
        let tx = self.tx;
        let stale: Vec<(i64, i64, i64, i64, String)> = tx
            .prepare_cached(
                "SELECT p.logical_seat_category, p.tariff_type, p.audience_subcategory, p.amount,
                        c.code
                   FROM logical_price p JOIN logical_seat_category c ON c.id = p.logical_seat_category
                  WHERE p.rate_table = ?1
                  ORDER BY p.logical_seat_category, p.tariff_type, p.audience_subcategory",
            )?
            .query_map([open.local], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .filter(|x| {
                x.as_ref()
                    .map_or(true, |(c, t, a, _, _)| !open.seen_logical.contains(&(*c, *t, *a)))
            })
            .collect::<Result<_, _>>()?;
        for (c, t, a, amount, code) in stale {
            tx.prepare_cached(
                "DELETE FROM logical_price WHERE rate_table = ?1 AND logical_seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .execute((open.local, c, t, a))?;
            let key = format!(
                "{code}/{}/{}",
                self.manager_code(MappingKind::TariffType, t)?,
                self.manager_code(MappingKind::AudienceSubcategory, a)?
            );
            open.diffs.push(format!(
                "logical price {key} removed (was {})",
                Money {
                    minor: amount,
                    currency: open.currency
                }
            ));
        }
        Ok(())
    }
}
