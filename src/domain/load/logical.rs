//! Logical seat categories per seat, as a catalogue loads them: the seats a
//! `seatRange` gives a logical seat category (checked against the seat plan:
//! the block in the logical configuration's configuration, the row in the
//! block, the seats of the logical category's physical category), and the
//! prices of logical seat categories. A logical configuration loaded again
//! drops its seat assignments first (`master`), so the file's ranges are
//! all it has: a logical configuration is sent whole.

use rusqlite::{OptionalExtension, Transaction};

use super::require;
use crate::domain::DomainError;
use crate::format::catalogue;

/// A seat range of a loaded logical configuration: each seat it covers gets
/// its logical seat category.
pub(super) fn seat_range(
    tx: &Transaction<'_>,
    r: &catalogue::SeatRange,
) -> Result<(), DomainError> {
    let what = format!(
        "seat range {} {} {}-{} of logical configuration {}",
        r.block, r.row, r.from, r.to, r.logical_configuration
    );
    require(tx, "logical_configuration", r.logical_configuration, || {
        what.clone()
    })?;
    require(tx, "logical_seat_category", r.logical_seat_category, || {
        what.clone()
    })?;
    let span = r
        .span()
        .map_err(|e| DomainError::refused("bad-range", &what, e))?;
    let configuration: i64 = tx
        .prepare_cached("SELECT configuration FROM logical_configuration WHERE id = ?1")?
        .query_row([r.logical_configuration.get()], |row| row.get(0))?;
    let (of, parent): (i64, i64) = tx
        .prepare_cached(
            "SELECT logical_configuration, seat_category FROM logical_seat_category WHERE id = ?1",
        )?
        .query_row([r.logical_seat_category.get()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if of != r.logical_configuration.get() {
        return Err(DomainError::refused(
            "logical-category-unknown",
            &what,
            format!(
                "expected a logical seat category of logical configuration {}, found {} of logical configuration {of}",
                r.logical_configuration, r.logical_seat_category
            ),
        ));
    }
    let block: Option<i64> = tx
        .prepare_cached("SELECT configuration FROM block WHERE id = ?1")?
        .query_row([r.block.get()], |row| row.get(0))
        .optional()?;
    if block != Some(configuration) {
        return Err(DomainError::refused(
            "unknown-block",
            &what,
            format!(
                "expected a block of configuration {configuration} (the logical configuration's), found block {}{}",
                r.block,
                block.map_or_else(
                    || ", which the seat plan does not have".to_owned(),
                    |c| format!(" of configuration {c}")
                )
            ),
        ));
    }
    let row: Option<i64> = tx
        .prepare_cached("SELECT id FROM seat_row WHERE block = ?1 AND code = ?2")?
        .query_row((r.block.get(), r.row.as_str()), |row| row.get(0))
        .optional()?;
    let Some(row) = row else {
        return Err(DomainError::refused(
            "unknown-row",
            &what,
            format!("expected a row of block {}, found row {}", r.block, r.row),
        ));
    };
    let seats: Vec<(i64, String, i64)> = tx
        .prepare_cached("SELECT id, number, seat_category FROM seat WHERE row = ?1 ORDER BY id")?
        .query_map([row], |s| {
            Ok::<(i64, String, i64), _>((s.get(0)?, s.get(1)?, s.get(2)?))
        })?
        .filter(|s| s.as_ref().map_or(true, |(_, n, _)| span.covers(n.as_str())))
        .collect::<Result<_, _>>()?;
    if seats.is_empty() {
        return Err(DomainError::refused(
            "empty-range",
            &what,
            format!(
                "expected seats of row {} numbered {}-{}, found none",
                r.row, r.from, r.to
            ),
        ));
    }
    if let Some((_, number, category)) = seats.iter().find(|s| s.2 != parent) {
        return Err(DomainError::refused(
            "logical-category-parent",
            &what,
            format!(
                "logical seat category {} sells physical seat category {parent}, but seat {} {number} is of seat category {category}",
                r.logical_seat_category, r.row
            ),
        ));
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO logical_seat (logical_configuration, seat, logical_seat_category)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (logical_configuration, seat)
         DO UPDATE SET logical_seat_category = excluded.logical_seat_category",
    )?;
    for (seat, _, _) in &seats {
        st.execute((
            r.logical_configuration.get(),
            seat,
            r.logical_seat_category.get(),
        ))?;
    }
    Ok(())
}

/// A price of a loaded rate table for a loaded logical seat category.
pub(super) fn logical_price(
    tx: &Transaction<'_>,
    p: &catalogue::LogicalPrice,
) -> Result<(), DomainError> {
    let who = || {
        format!(
            "logical price of rate table {} (logical seat category {}, tariff type {}, audience subcategory {})",
            p.rate_table, p.logical_seat_category, p.tariff_type, p.audience_subcategory
        )
    };
    require(tx, "rate_table", p.rate_table, who)?;
    require(tx, "logical_seat_category", p.logical_seat_category, who)?;
    require(tx, "tariff_type", p.tariff_type, who)?;
    require(tx, "audience_subcategory", p.audience_subcategory, who)?;
    super::master::price_amount(p.amount, who)?;
    tx.prepare_cached(
        "INSERT INTO logical_price (rate_table, logical_seat_category, tariff_type,
             audience_subcategory, amount)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (rate_table, logical_seat_category, tariff_type, audience_subcategory)
         DO UPDATE SET amount = excluded.amount WHERE amount IS NOT excluded.amount",
    )?
    .execute((
        p.rate_table.get(),
        p.logical_seat_category.get(),
        p.tariff_type.get(),
        p.audience_subcategory.get(),
        p.amount,
    ))?;
    Ok(())
}
