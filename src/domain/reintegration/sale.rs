//! A sale line booked: its seat, zone and price checked against the
//! manager's records, then the ticket written.

use rusqlite::OptionalExtension;

use super::cache::{Category, PriceCheck};
use super::{Booked, SalesImport, Spot, Stop, place_text, reject, resolve, sql_id};
use crate::domain::held;
use crate::domain::lifecycle::Timing;
use crate::format::sales::{Place, Ticket};
use crate::store::StoreError;
use crate::store::runs;
use crate::store::runs::Level;
use crate::store::{format_timestamp, unix_micros};

/// A seat of a SALE line as the store knows it: its id, seat category and
/// configuration, its logical seat category in the performance's logical
/// configuration, its holder on the performance for the link (state,
/// released in) and its valid ticket (link, line id), if any.
struct SeatFacts {
    id: i64,
    category: i64,
    configuration: i64,
    logical: Option<i64>,
    held: Option<(String, Option<i64>)>,
    sold: Option<(String, i64)>,
}

/// A seat (block, row code, seat number) with its facts for a sale of a
/// performance (?4, of logical configuration ?6) by a link (?5); the logical
/// seat category is one primary-key lookup in the same query.
const SEAT_FACTS: &str =
    "SELECT s.id, s.seat_category, b.configuration, a.state, a.released_in, t.link, t.line,
            ls.logical_seat_category
       FROM block b
       JOIN seat_row r ON r.block = b.id
       JOIN seat s ON s.row = r.id
       LEFT JOIN allotment_seat a ON a.performance = ?4 AND a.seat = s.id AND a.link = ?5
       LEFT JOIN ticket t ON t.performance = ?4 AND t.seat = s.id AND t.state = 'valid'
       LEFT JOIN logical_seat ls ON ls.logical_configuration = ?6 AND ls.seat = s.id
      WHERE b.id = ?1 AND r.code = ?2 AND s.number = ?3";

/// A sale's ticket, valid.
const ADD_TICKET: &str =
    "INSERT INTO ticket (sales_order, link, line, performance, seat, zone, seat_category,
         tariff_type, audience_subcategory, amount, currency, vat_code, sold_at, state,
         rate_version, logical_seat_category)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'valid', ?14, ?15)";

/// The seat (block, row code, seat number) for a sale of `perf` (of
/// logical configuration `lc`) by `link`, through [`SEAT_FACTS`]; `None`
/// when no such seat exists.
fn seat_facts(
    facts: &mut rusqlite::Statement<'_>,
    (block, row, number): (i64, &str, &str),
    (perf, lc): (i64, i64),
    link: &str,
) -> Result<Option<SeatFacts>, rusqlite::Error> {
    facts
        .query_row((block, row, number, perf, link, lc), |r| {
            let state: Option<String> = r.get(3)?;
            let by: Option<String> = r.get(5)?;
            Ok(SeatFacts {
                id: r.get(0)?,
                category: r.get(1)?,
                configuration: r.get(2)?,
                logical: r.get(7)?,
                held: match state {
                    Some(s) => Some((s, r.get(4)?)),
                    None => None,
                },
                sold: match by {
                    Some(b) => Some((b, r.get(6)?)),
                    None => None,
                },
            })
        })
        .optional()
}

/// The seat or zone of a SALE line in the performance's configuration:
/// its spot, seat category and, for a seat, what the store holds of it.
fn place<'t>(
    tx: &'t rusqlite::Transaction<'t>,
    facts: &mut Option<rusqlite::Statement<'t>>,
    t: &Ticket,
    (configuration, perf, lc): (i64, i64, i64),
    link: &str,
) -> Result<(Spot, i64, Option<SeatFacts>), Stop> {
    // A seat is found with its holder and its valid ticket in one query
    // (the checks below keep their order); a zone as the refunds do.
    Ok(match &t.place {
        Place::Seat { block, row, seat } => {
            let found = seat_facts(
                held(facts, tx, SEAT_FACTS)?,
                (block.get(), row.as_str(), seat.as_str()),
                (perf, lc),
                link,
            )?;
            match found {
                Some(f) if f.configuration == configuration => {
                    (Spot::Seat(f.id), f.category, Some(f))
                }
                Some(_) => {
                    return Err(reject(
                        "unknown-seat",
                        format!(
                            "{} is not in the configuration {configuration} of performance {perf}",
                            place_text(&t.place)
                        ),
                    ));
                }
                None => {
                    return Err(reject(
                        "unknown-seat",
                        format!("{} does not exist", place_text(&t.place)),
                    ));
                }
            }
        }
        Place::Zone { .. } => {
            let (spot, category) = resolve(tx, &t.place, configuration, perf)?;
            (spot, category, None)
        }
    })
}

/// A line naming a logical seat category must name the seat's (which
/// `logical` is, from the store); a line naming none is priced in the
/// seat's all the same.
fn same_logical(t: &Ticket, perf: i64, logical: Option<i64>) -> Result<(), Stop> {
    match t.logical_seat_category {
        Some(named) if logical != Some(named.get()) => Err(reject(
            "logical-category-differs",
            format!(
                "{} of performance {perf} is {}, the line names logical seat category {named}",
                place_text(&t.place),
                logical.map_or_else(
                    || "of no logical seat category (its physical one)".to_owned(),
                    |l| format!("of logical seat category {l}")
                )
            ),
        )),
        _ => Ok(()),
    }
}

impl<'t> SalesImport<'t> {
    pub(super) fn sale(&mut self, t: &Ticket, position: &str) -> Result<Booked, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let perf = t.performance.get();
        let (configuration, lc, activity, timing) = match self.cache.perf(tx, perf)? {
            Some(p) => (
                p.configuration,
                p.logical_configuration,
                p.activity,
                p.window.judge(t.time),
            ),
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
            Timing::Refused { code, reason } => {
                self.set_aside(reject(code, reason))?;
                None
            }
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
        let facts = &mut self.statements.seat_facts;
        let (spot, category, seat) = place(tx, facts, t, (configuration, perf, lc), link)?;
        let logical = seat.as_ref().and_then(|f| f.logical);
        same_logical(t, perf, logical)?;
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
        match (seat, spot) {
            (Some(facts), _) => self.check_seat(t, facts, perf, position)?,
            (None, Spot::Zone(zone)) => self.check_zone(zone, perf)?,
            (None, Spot::Seat(_)) => {
                // resolve() gives a zone for a zone: never a seat here.
                return Err(Stop::Fail(crate::domain::DomainError::Invalid {
                    object: place_text(&t.place),
                    problem: "resolved as a seat without its holder and ticket".to_owned(),
                }));
            }
        }
        // The rate table version the ticket is booked at: the one that
        // priced it, else (the price rule set aside) the one the line names.
        let named = t.rate_version.and_then(|v| i64::try_from(v).ok());
        let version = match self.check_price(t, perf, logical) {
            Ok(version) => version,
            Err(stop) => {
                self.set_aside(stop)?;
                named
            }
        };
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
        let ticket = self.book(t, perf, spot, (version, logical))?;
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
        Ok(Booked::Sale(ticket))
    }

    /// Writes the ticket of a SALE line that passed every check, and its
    /// amount on the pending account; returns the ticket's id.
    fn book(
        &mut self,
        t: &Ticket,
        perf: i64,
        spot: Spot,
        (version, logical): (Option<i64>, Option<i64>),
    ) -> Result<i64, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let order = self.order(t)?;
        let (seat, zone) = match spot {
            Spot::Seat(s) => (Some(s), None),
            Spot::Zone(z) => {
                self.cache.zone_booked((perf, z), 1);
                (None, Some(z))
            }
        };
        held(&mut self.statements.ticket, tx, ADD_TICKET)?.execute(rusqlite::params![
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
            unix_micros(t.time),
            version,
            logical,
        ])?;
        // The pending account's entry is this ticket read through the
        // line's row (the `pending_account_entry` view): nothing more to write.
        Ok(tx.last_insert_rowid())
    }

    /// A SALE line's seat: in the link's contingent (held is accepted, with
    /// an info message) and not sold yet.
    fn check_seat(
        &self,
        t: &Ticket,
        facts: SeatFacts,
        perf: i64,
        position: &str,
    ) -> Result<(), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let Some((state, released_in)) = facts.held else {
            return Err(reject(
                "seat-not-in-contingent",
                format!(
                    "{} of performance {perf} is not in the contingent of link {link}",
                    place_text(&t.place)
                ),
            ));
        };
        let sold = facts.sold;
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
    /// performance sold on the channel, for an audience the channel allows,
    /// in the version of the rate table the line names, else in the version
    /// in force when the sale was made; returns that version.
    /// A seat its logical configuration gives a logical seat category
    /// (`logical`) is priced in that category's prices only.
    fn check_price(
        &mut self,
        t: &Ticket,
        perf: i64,
        logical: Option<i64>,
    ) -> Result<Option<i64>, Stop> {
        let category = match logical {
            Some(l) => Category::Logical(l),
            None => Category::Physical(t.seat_category.get()),
        };
        // Only a refusal says it (a right price builds no text).
        let in_logical = || {
            logical
                .map(|l| format!(" for logical seat category {l}"))
                .unwrap_or_default()
        };
        let channel = self.setup.channel;
        let sold_at = format_timestamp(t.time);
        let query = (
            (
                perf,
                channel,
                category,
                t.tariff_type.get(),
                t.audience_subcategory.get(),
            ),
            (t.amount, t.currency.as_str()),
            (
                t.rate_version.and_then(|v| i64::try_from(v).ok()),
                sold_at.as_str(),
            ),
        );
        match self.cache.check_price(self.tx, query)? {
            PriceCheck::Right(version) => Ok(version),
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
                version,
            } => Err(reject(
                "price-differs",
                format!(
                    "price differs from the rate table {rate_table} {code}{}{} (expected {amount} {currency}, found {} {})",
                    in_logical(),
                    match (version, t.rate_version) {
                        (Some(v), Some(_)) => format!(" in version {v}, the line's"),
                        (Some(v), None) => format!(" in version {v}, in force when it was sold"),
                        (None, _) => String::new(),
                    },
                    t.amount,
                    t.currency
                ),
            )),
            PriceCheck::NoPrice => Err(reject(
                "no-price",
                format!(
                    "the rate table of performance {perf} has no price for seat category {}{}, tariff type {}, audience subcategory {}",
                    t.seat_category,
                    in_logical(),
                    t.tariff_type,
                    t.audience_subcategory
                ),
            )),
        }
    }
}
