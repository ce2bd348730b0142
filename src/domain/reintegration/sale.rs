//! A sale line booked: its seat, zone and price checked against the
//! manager's records, then the ticket written.

use rusqlite::OptionalExtension;

use super::cache::PriceCheck;
use super::{Booked, SalesImport, Spot, Stop, place_text, reject, resolve, sql_id};
use crate::domain::lifecycle::Timing;
use crate::format::sales::Ticket;
use crate::store::StoreError;
use crate::store::format_timestamp;
use crate::store::runs;
use crate::store::runs::Level;

impl<'t> SalesImport<'t> {
    pub(super) fn sale(&mut self, t: &Ticket, position: &str) -> Result<Booked, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let perf = t.performance.get();
        let (configuration, activity, timing) = match self.cache.perf(tx, perf)? {
            Some(p) => (p.configuration, p.activity, p.window.judge(t.time)),
            None => {
                return Err(reject(
                    "unknown-performance",
                    format!("performance {perf} is unknown here"),
                ));
            }
        };
        let to_refund = match timing {
            Timing::Fine => None,
            Timing::ToRefund { cancelled } => Some(cancelled),
            Timing::Refused { code, reason } => return Err(reject(code, reason)),
        };
        for (table, code, what, id) in [
            (
                "seat_category",
                "unknown-seat-category",
                "seat category",
                t.seat_category,
            ),
            (
                "tariff_type",
                "unknown-tariff-type",
                "tariff type",
                t.tariff_type,
            ),
            (
                "audience_subcategory",
                "unknown-audience-subcategory",
                "audience subcategory",
                t.audience_subcategory,
            ),
            ("vat_code", "unknown-vat-code", "VAT code", t.vat_code),
        ] {
            if !self
                .cache
                .exists(tx, table, id.get())
                .map_err(StoreError::Sql)?
            {
                return Err(reject(code, format!("{what} {id} is unknown here")));
            }
        }
        let (spot, category) = resolve(tx, &t.place, configuration, perf)?;
        if category != t.seat_category.get() {
            return Err(reject(
                "seat-category-differs",
                format!(
                    "{} is of seat category {category}, not {}",
                    place_text(&t.place),
                    t.seat_category
                ),
            ));
        }
        match spot {
            Spot::Seat(seat) => self.check_seat(t, seat, perf, position)?,
            Spot::Zone(zone) => self.check_zone(zone, perf)?,
        }
        self.check_price(t, perf)?;
        let vat = self.cache.vat(tx, activity)?;
        if vat != t.vat_code.get() {
            return Err(reject(
                "vat-code-differs",
                format!(
                    "the VAT code of activity {activity} is {vat}, found {}",
                    t.vat_code
                ),
            ));
        }
        // Book it.
        let order = self.order(t)?;
        let (seat, zone) = match spot {
            Spot::Seat(s) => (Some(s), None),
            Spot::Zone(z) => {
                self.cache.zone_booked((perf, z), 1);
                (None, Some(z))
            }
        };
        tx.prepare_cached(
            "INSERT INTO ticket (sales_order, link, line, performance, seat, zone, seat_category,
                 tariff_type, audience_subcategory, amount, currency, vat_code, sold_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'valid')",
        )?
        .execute(rusqlite::params![
            order,
            link,
            sql_id(t.line)?,
            perf,
            seat,
            zone,
            t.seat_category.get(),
            t.tariff_type.get(),
            t.audience_subcategory.get(),
            t.amount,
            t.currency.as_str(),
            t.vat_code.get(),
            format_timestamp(t.time),
        ])?;
        let ticket = tx.last_insert_rowid();
        self.pending(ticket, t.amount, t.currency.as_str())?;
        if let Some(cancelled) = to_refund {
            runs::message(
                tx,
                self.ctx.run,
                Level::Warning,
                "to-refund",
                Some(position),
                &format!(
                    "line id {}: booked, sold before performance {perf} was cancelled at {cancelled}; the distributor must refund it (stxd sale refund --performance P --all)",
                    t.line
                ),
            )?;
        }
        Ok(Booked::Sale)
    }

    /// A SALE line's seat: in the link's contingent (held is accepted, with
    /// an info message) and not sold yet.
    fn check_seat(&self, t: &Ticket, seat: i64, perf: i64, position: &str) -> Result<(), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let held: Option<(String, Option<i64>)> = tx
            .prepare_cached(
                "SELECT state, released_in FROM allotment_seat
                 WHERE performance = ?1 AND seat = ?2 AND link = ?3",
            )?
            .query_row((perf, seat, link), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((state, released_in)) = held else {
            return Err(reject(
                "seat-not-in-contingent",
                format!(
                    "{} of performance {perf} is not in the contingent of link {link}",
                    place_text(&t.place)
                ),
            ));
        };
        let sold: Option<(String, i64)> = tx
            .prepare_cached(
                "SELECT link, line FROM ticket
                 WHERE performance = ?1 AND seat = ?2 AND state = 'valid'",
            )?
            .query_row((perf, seat), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((by, line)) = sold {
            return Err(reject(
                "seat-sold-twice",
                format!(
                    "{} of performance {perf} is already sold (line id {line} of link {by})",
                    place_text(&t.place)
                ),
            ));
        }
        if state == "held" {
            runs::message(
                tx,
                self.ctx.run,
                Level::Info,
                "sold-while-held",
                Some(position),
                &format!(
                    "{} of performance {perf} was released in contingent version {} not yet acknowledged; a sale made before the acknowledgement is accepted",
                    place_text(&t.place),
                    released_in.unwrap_or_default()
                ),
            )?;
        }
        Ok(())
    }

    /// A SALE line's zone: in the link's contingent, with a place left
    /// (allotted plus held, less the valid tickets of the link).
    fn check_zone(&mut self, zone: i64, perf: i64) -> Result<(), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let allotted: Option<(i64, i64)> = tx
            .prepare_cached(
                "SELECT quantity, held FROM allotment_zone
                 WHERE performance = ?1 AND zone = ?2 AND link = ?3",
            )?
            .query_row((perf, zone, link), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((quantity, held)) = allotted else {
            return Err(reject(
                "zone-not-in-contingent",
                format!(
                    "zone {zone} of performance {perf} has no places in the contingent of link {link}"
                ),
            ));
        };
        let sold = self.cache.zone_sold(tx, link, (perf, zone))?;
        let limit = quantity.saturating_add(held);
        if sold >= limit {
            return Err(reject(
                "zone-quantity-exhausted",
                format!(
                    "zone {zone} of performance {perf}: all {limit} places of the contingent of link {link} are sold ({quantity} allotted, {held} held)"
                ),
            ));
        }
        Ok(())
    }

    /// The amount must be the price of the rate table of a product of the
    /// performance sold on the channel, for an audience the channel allows.
    fn check_price(&mut self, t: &Ticket, perf: i64) -> Result<(), Stop> {
        let channel = self.setup.channel;
        let query = (
            (
                perf,
                channel,
                t.seat_category.get(),
                t.tariff_type.get(),
                t.audience_subcategory.get(),
            ),
            (t.amount, t.currency.as_str()),
        );
        match self.cache.check_price(self.tx, query)? {
            PriceCheck::Right => Ok(()),
            PriceCheck::NoProduct => Err(reject(
                "product-not-on-channel",
                format!(
                    "no product of performance {perf} is in a product profile of sales channel {channel}"
                ),
            )),
            PriceCheck::AudienceNotAllowed => Err(reject(
                "audience-not-allowed",
                format!(
                    "audience subcategory {} is not allowed on sales channel {channel} for performance {perf}",
                    t.audience_subcategory
                ),
            )),
            PriceCheck::Differs {
                rate_table,
                code,
                amount,
                currency,
            } => Err(reject(
                "price-differs",
                format!(
                    "price differs from the rate table {rate_table} {code} (expected {amount} {currency}, found {} {})",
                    t.amount, t.currency
                ),
            )),
            PriceCheck::NoPrice => Err(reject(
                "no-price",
                format!(
                    "the rate table of performance {perf} has no price for seat category {}, tariff type {}, audience subcategory {}",
                    t.seat_category, t.tariff_type, t.audience_subcategory
                ),
            )),
        }
    }
}
