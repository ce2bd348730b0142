//! What the lines of one SALES file look up again and again, read once per
//! file from the store and kept in memory for the file's transaction: the
//! performances (configuration, activity, sale window), the ids known to
//! exist, the VAT code of each activity, the products and prices of each
//! performance on the channel, the valid tickets of each standing zone, and
//! the order of the previous line.
//!
//! Nothing here outlives the [`super::SalesImport`], which holds the write
//! transaction: no other writer can change these rows meanwhile, and every
//! write the import makes that they depend on (a ticket of a zone booked or
//! refunded, an order created) updates them. Their size is bounded by the
//! master data a file names (performances, products, rate tables), never by
//! the number of its lines.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension};

use super::super::DomainError;
use crate::domain::lifecycle::SaleWindow;

/// A performance as a sale line needs it.
#[derive(Debug, Clone)]
pub(super) struct Perf {
    pub configuration: i64,
    /// Its logical configuration: which gives seats logical seat categories.
    pub logical_configuration: i64,
    pub activity: i64,
    pub window: SaleWindow,
}

/// A product of a performance in a product profile of the channel: its rate
/// table (id, code, currency) and whether a profile allows the audience.
pub(super) type Candidate = (i64, String, String, bool);

#[derive(Debug, Default)]
pub(super) struct Cache {
    perfs: HashMap<i64, Option<Perf>>,
    known: HashSet<(&'static str, i64)>,
    vat: HashMap<i64, i64>,
    candidates: HashMap<(i64, i64), Vec<Candidate>>,
    /// (logical?, rate table, category, tariff type, audience) → amount:
    /// the category is a logical seat category when `logical`.
    prices: HashMap<(bool, i64, i64, i64, i64), Option<i64>>,
    /// The recorded versions of a rate table: (version, in force from),
    /// oldest first; empty when it has none (its current prices apply).
    versions: HashMap<i64, Vec<(i64, String)>>,
    /// (logical?, rate table, version, category, tariff type, audience) →
    /// amount.
    versioned: HashMap<VersionedKey, Option<i64>>,
    /// Valid tickets of the link per (performance, zone).
    zone_sold: HashMap<(i64, i64), i64>,
    /// The previous line's order: (reference, id).
    pub last_order: Option<(String, i64)>,
    /// The highest line id of the link with a `sales_line` row (0: none),
    /// read once and raised as lines are written: a line id above it was
    /// never received, so it has no row and no resolution to look up.
    highest_line: Option<i64>,
}

impl Cache {
    /// Whether line id `line` of `link` may have been received before: at
    /// most the highest line id with a `sales_line` row.
    pub fn maybe_received(
        &mut self,
        conn: &Connection,
        link: &str,
        line: i64,
    ) -> Result<bool, rusqlite::Error> {
        let highest = match self.highest_line {
            Some(h) => h,
            None => {
                let h: i64 = conn
                    .prepare_cached(
                        "SELECT coalesce(max(line), 0) FROM sales_line WHERE link = ?1",
                    )?
                    .query_row([link], |r| r.get(0))?;
                *self.highest_line.insert(h)
            }
        };
        Ok(line <= highest)
    }

    /// Line id `line` now has a `sales_line` row.
    pub fn received(&mut self, line: i64) {
        if let Some(h) = &mut self.highest_line {
            *h = (*h).max(line);
        }
    }

    /// The performance `id`, or `None` when it is unknown here.
    pub fn perf(&mut self, conn: &Connection, id: i64) -> Result<Option<&Perf>, DomainError> {
        let slot = match self.perfs.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load_perf(conn, id)?),
        };
        Ok(slot.as_ref())
    }

    /// Whether `table` has a row `id` (a row found is remembered; one not
    /// found is asked again, it is the rare case of a rejected line).
    pub fn exists(
        &mut self,
        conn: &Connection,
        table: &'static str,
        id: i64,
    ) -> Result<bool, rusqlite::Error> {
        if self.known.contains(&(table, id)) {
            return Ok(true);
        }
        let found = crate::domain::exists(conn, table, id)?;
        if found {
            self.known.insert((table, id));
        }
        Ok(found)
    }

    /// The VAT code of `activity`.
    pub fn vat(&mut self, conn: &Connection, activity: i64) -> Result<i64, rusqlite::Error> {
        if let Some(v) = self.vat.get(&activity) {
            return Ok(*v);
        }
        let v: i64 = conn
            .prepare_cached("SELECT vat_code FROM activity WHERE id = ?1")?
            .query_row([activity], |r| r.get(0))?;
        self.vat.insert(activity, v);
        Ok(v)
    }

    /// The products of `perf` in a product profile of `channel`, with
    /// whether one of those profiles allows `audience`, by product id.
    pub fn candidates(
        &mut self,
        conn: &Connection,
        (perf, channel, audience): (i64, i64, i64),
    ) -> Result<&[Candidate], rusqlite::Error> {
        let list = match self.candidates.entry((perf, audience)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load_candidates(conn, (perf, channel, audience))?),
        };
        Ok(list.as_slice())
    }

    /// The link's valid tickets of `zone` for `perf`: counted in the store
    /// the first time, then kept up to date by [`Cache::zone_booked`].
    pub fn zone_sold(
        &mut self,
        conn: &Connection,
        link: &str,
        (perf, zone): (i64, i64),
    ) -> Result<i64, rusqlite::Error> {
        if let Some(n) = self.zone_sold.get(&(perf, zone)) {
            return Ok(*n);
        }
        let n: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM ticket
                 WHERE performance = ?2 AND zone = ?3 AND link = ?1 AND state = 'valid'",
            )?
            .query_row((link, perf, zone), |r| r.get(0))?;
        self.zone_sold.insert((perf, zone), n);
        Ok(n)
    }

    /// A ticket of `zone` booked (`+1`) or refunded (`-1`) by this import.
    pub fn zone_booked(&mut self, (perf, zone): (i64, i64), delta: i64) {
        if let Some(n) = self.zone_sold.get_mut(&(perf, zone)) {
            *n += delta;
        }
    }
}

/// What the price of a SALE line is, against the rate tables of the products
/// of its performance on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PriceCheck {
    /// The amount and currency are a price of one of them, in this version
    /// of its rate table (`None`: a rate table with no recorded versions).
    Right(Option<i64>),
    /// No product of the performance is in a product profile of the channel.
    NoProduct,
    /// No such profile allows the audience.
    AudienceNotAllowed,
    /// The first rate table with a price for the line, which differs.
    Differs {
        rate_table: i64,
        code: String,
        amount: i64,
        currency: String,
        /// The version whose price it is (`None`: the current prices).
        version: Option<i64>,
    },
    /// No rate table has a price for the line.
    NoPrice,
}

/// The category a line is priced in: a seat's logical seat category when
/// its logical configuration gives it one, else the physical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Category {
    Physical(i64),
    Logical(i64),
}

impl Category {
    fn key(self) -> (bool, i64) {
        match self {
            Category::Physical(c) => (false, c),
            Category::Logical(c) => (true, c),
        }
    }
}

/// What [`Cache::check_price`] looks up: (performance, channel, category,
/// tariff type, audience subcategory), then (amount, currency), then the
/// rate table version the line names and the time of the sale (the version
/// in force then prices a line that names none).
pub(super) type PriceQuery<'a> = (
    (i64, i64, Category, i64, i64),
    (i64, &'a str),
    (Option<i64>, &'a str),
);

impl Cache {
    /// Judges the amount and currency of a SALE line.
    pub fn check_price(
        &mut self,
        conn: &Connection,
        ((perf, channel, category, tariff, audience), (amount, currency), (named, at)): PriceQuery<
            '_,
        >,
    ) -> Result<PriceCheck, rusqlite::Error> {
        if self.candidates(conn, (perf, channel, audience))?.is_empty() {
            return Ok(PriceCheck::NoProduct);
        }
        // The allowed rate tables: a few per performance, read in place (the
        // rate table's code and currency are copied only into a refusal).
        let products = (perf, audience);
        let count = self.candidates.get(&products).map_or(0, Vec::len);
        let mut allowed = false;
        let mut expected = None;
        for i in 0..count {
            let Some(&(rate_table, _, _, true)) = self.candidate(products, i) else {
                continue;
            };
            allowed = true;
            let key = (rate_table, category.key(), tariff, audience);
            let version = self.version_of(conn, rate_table, named, at)?;
            let price = match version {
                Some(v) => self.versioned_price(conn, v, key)?,
                None => self.current_price(conn, key)?,
            };
            let (Some(price), Some((_, code, rt_currency, _))) =
                (price, self.candidate(products, i))
            else {
                continue;
            };
            if price == amount && rt_currency == currency {
                return Ok(PriceCheck::Right(version));
            }
            if expected.is_none() {
                expected = Some(PriceCheck::Differs {
                    rate_table,
                    code: code.clone(),
                    amount: price,
                    currency: rt_currency.clone(),
                    version,
                });
            }
        }
        if !allowed {
            return Ok(PriceCheck::AudienceNotAllowed);
        }
        Ok(expected.unwrap_or(PriceCheck::NoPrice))
    }

    /// The `i`th product of a performance for an audience (see
    /// [`Candidate`]), once [`Cache::candidates`] has read them.
    fn candidate(&self, products: (i64, i64), i: usize) -> Option<&Candidate> {
        self.candidates.get(&products).and_then(|l| l.get(i))
    }

    /// The version of `rate_table` that prices a line: the one it names,
    /// else the one in force at `at`; `None` when the rate table has no
    /// recorded versions or does not know the version named.
    fn version_of(
        &mut self,
        conn: &Connection,
        rate_table: i64,
        named: Option<i64>,
        at: &str,
    ) -> Result<Option<i64>, rusqlite::Error> {
        let list = match self.versions.entry(rate_table) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                conn.prepare_cached(
                    "SELECT version, valid_from FROM rate_table_version WHERE rate_table = ?1
                     ORDER BY version",
                )?
                .query_map([rate_table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?,
            ),
        };
        Ok(match named {
            Some(v) => list.iter().find(|(n, _)| *n == v).map(|(n, _)| *n),
            None => list
                .iter()
                .rev()
                .find(|(_, from)| from.as_str() <= at)
                .or(list.first())
                .map(|(n, _)| *n),
        })
    }

    fn versioned_price(
        &mut self,
        conn: &Connection,
        version: i64,
        (rt, (logical, category), tariff, audience): PriceKey,
    ) -> Result<Option<i64>, rusqlite::Error> {
        let key = (logical, rt, version, category, tariff, audience);
        if let Some(p) = self.versioned.get(&key) {
            return Ok(*p);
        }
        let sql = if logical {
            "SELECT amount FROM rate_table_version_logical_price WHERE rate_table = ?1
               AND version = ?2 AND logical_seat_category = ?3 AND tariff_type = ?4
               AND audience_subcategory = ?5"
        } else {
            "SELECT amount FROM rate_table_version_price WHERE rate_table = ?1 AND version = ?2
               AND seat_category = ?3 AND tariff_type = ?4 AND audience_subcategory = ?5"
        };
        let p: Option<i64> = conn
            .prepare_cached(sql)?
            .query_row((rt, version, category, tariff, audience), |r| r.get(0))
            .optional()?;
        self.versioned.insert(key, p);
        Ok(p)
    }

    fn current_price(
        &mut self,
        conn: &Connection,
        (rt, (logical, category), tariff, audience): PriceKey,
    ) -> Result<Option<i64>, rusqlite::Error> {
        let key = (logical, rt, category, tariff, audience);
        if let Some(p) = self.prices.get(&key) {
            return Ok(*p);
        }
        let sql = if logical {
            "SELECT amount FROM logical_price WHERE rate_table = ?1 AND logical_seat_category = ?2
               AND tariff_type = ?3 AND audience_subcategory = ?4"
        } else {
            "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
               AND tariff_type = ?3 AND audience_subcategory = ?4"
        };
        let p: Option<i64> = conn
            .prepare_cached(sql)?
            .query_row((rt, category, tariff, audience), |r| r.get(0))
            .optional()?;
        self.prices.insert(key, p);
        Ok(p)
    }
}

/// A price cell: (rate table, (logical?, category), tariff type, audience).
type PriceKey = (i64, (bool, i64), i64, i64);

/// A versioned price cell: (logical?, rate table, version, category,
/// tariff type, audience).
type VersionedKey = (bool, i64, i64, i64, i64, i64);

/// The performance `id` as a sale line needs it; `None` when unknown.
fn load_perf(conn: &Connection, id: i64) -> Result<Option<Perf>, DomainError> {
    let found: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT configuration, activity, logical_configuration FROM performance WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((configuration, activity, logical_configuration)) = found else {
        return Ok(None);
    };
    Ok(SaleWindow::load(conn, id)?.map(|window| Perf {
        configuration,
        logical_configuration,
        activity,
        window,
    }))
}

/// The products of `perf` in a product profile of `channel`, with whether
/// one of those profiles allows `audience`, by product id.
fn load_candidates(
    conn: &Connection,
    (perf, channel, audience): (i64, i64, i64),
) -> Result<Vec<Candidate>, rusqlite::Error> {
    let mut st = conn.prepare_cached(
        "SELECT p.rate_table, rt.code, rt.currency,
                max(NOT EXISTS (SELECT 1 FROM product_profile_audience a
                                 WHERE a.product_profile = pf.id)
                    OR EXISTS (SELECT 1 FROM product_profile_audience a
                                WHERE a.product_profile = pf.id
                                  AND a.audience_subcategory = ?3))
           FROM product_performance pp
           JOIN product p ON p.id = pp.product
           JOIN rate_table rt ON rt.id = p.rate_table
           JOIN product_profile_product ppp ON ppp.product = p.id
           JOIN product_profile pf ON pf.id = ppp.product_profile AND pf.channel = ?2
          WHERE pp.performance = ?1
          GROUP BY p.id ORDER BY p.id",
    )?;
    let rows = st.query_map((perf, channel, audience), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}
