//! The manager's view of what the reintegration booked: the orders of the
//! distributors' sales with their tickets ([`orders`], [`order`]) and the
//! pending account of a link ([`account`]). Read only: every function takes
//! a connection and writes nothing.
//!
//! Each ticket names where it came from: the SALES file and the line that
//! booked it (and the refund line that cancelled it), as `sales_line`
//! recorded them.
//!
//! An order's state ([`OrderState`]) and its sale time (its first ticket's)
//! are derived from its tickets here, and [`OrderFilter`] selects on them:
//! the one place those rules live.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::DomainError;
use crate::money::{Currency, Money};

/// A sum of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Total {
    pub currency: String,
    /// Minor units.
    pub minor: i64,
    /// `85.00 EUR`.
    pub amount: String,
}

/// Where a line came from: the SALES payload and the position in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The distributor's line id.
    pub line: i64,
    pub file: Option<String>,
    pub position: Option<String>,
}

/// A ticket of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketView {
    pub id: i64,
    pub performance: i64,
    pub performance_code: String,
    pub performance_state: String,
    /// `PARTERRE A 1` or `zone FOSSE`.
    pub place: String,
    pub seat_category: String,
    pub tariff_type: String,
    pub audience_subcategory: String,
    pub minor: i64,
    pub currency: String,
    /// `85.00 EUR`.
    pub price: String,
    pub vat_code: String,
    /// `valid` or `cancelled`.
    pub state: String,
    /// Valid, of a cancelled performance: the distributor must refund it.
    pub to_refund: bool,
    pub sold_at: String,
    pub cancelled_at: Option<String>,
    /// The line that booked it.
    pub sale: Source,
    /// The refund line that cancelled it.
    pub refund: Option<Source>,
}

/// An order's state, from its tickets' states: `valid` when none was
/// cancelled by a refund line, `cancelled` when all were, `partly-cancelled`
/// in between. (A valid ticket of a cancelled performance is still valid:
/// its order counts it in `to_refund`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderState {
    Valid,
    PartlyCancelled,
    Cancelled,
}

impl OrderState {
    /// Every state, in the order they are listed to the user.
    pub const ALL: [OrderState; 3] = [
        OrderState::Valid,
        OrderState::PartlyCancelled,
        OrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Valid => "valid",
            OrderState::PartlyCancelled => "partly-cancelled",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// The state of an order of `tickets` tickets, `valid` of them valid (an
    /// order without tickets has nothing cancelled: `valid`).
    pub fn of(valid: u64, tickets: u64) -> OrderState {
        if valid >= tickets {
            OrderState::Valid
        } else if valid == 0 {
            OrderState::Cancelled
        } else {
            OrderState::PartlyCancelled
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderState {
    type Err = String;

    fn from_str(s: &str) -> Result<OrderState, String> {
        OrderState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "expected an order state: {}",
                    OrderState::ALL.map(OrderState::as_str).join(", ")
                )
            })
    }
}

/// Calendar days of sale, in UTC (the time zone every stored and shown time
/// is in), both ends included; an end left out is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaleDays {
    from: Option<time::Date>,
    to: Option<time::Date>,
}

impl SaleDays {
    /// The days from `from` to `to`; refused when `from` comes after `to`.
    pub fn new(from: Option<time::Date>, to: Option<time::Date>) -> Result<SaleDays, String> {
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(format!(
                "the first day of sale {f} comes after the last one {t}"
            ));
        }
        Ok(SaleDays { from, to })
    }

    pub fn from(&self) -> Option<time::Date> {
        self.from
    }

    pub fn to(&self) -> Option<time::Date> {
        self.to
    }

    /// Whether an instant (microseconds since 1970 UTC, as tickets keep
    /// their sale time) falls on one of the days.
    pub fn contains(&self, micros: i64) -> bool {
        let day_start = |d: time::Date| crate::store::unix_micros(d.midnight().assume_utc());
        let after_start = self.from.is_none_or(|f| micros >= day_start(f));
        let before_end = self.to.is_none_or(|t| match t.next_day() {
            Some(next) => micros < day_start(next),
            None => true,
        });
        after_start && before_end
    }

    fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// An order with its tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub id: i64,
    pub link: String,
    /// The distributor's order reference.
    pub reference: String,
    /// When the manager's reintegration booked it.
    pub created: String,
    /// When it was sold: its first ticket's sale time (none without
    /// tickets). `--from`/`--to` select on its day.
    pub sold_at: Option<String>,
    pub state: OrderState,
    pub channel: String,
    /// `5101 GUICHET-T`: code and name of the point of sale.
    pub point_of_sale: String,
    pub payment_method: String,
    pub contact: String,
    pub tickets: Vec<TicketView>,
    /// Valid tickets.
    pub valid: u64,
    /// Valid tickets of a cancelled performance, to be refunded.
    pub to_refund: u64,
    /// What the order put on the pending account (sales less refunds).
    pub pending_account: Vec<Total>,
}

/// An entry of a link's pending account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The entry's id in the `pending_account_entry` view: its ticket's id
    /// times two, plus one for the refund.
    pub id: i64,
    pub created: String,
    pub order: String,
    pub ticket: i64,
    /// The distributor's line id of the ticket's sale.
    pub line: i64,
    /// `sale` (a price booked) or `refund` (the sale's amount taken back).
    pub kind: &'static str,
    pub minor: i64,
    pub currency: String,
    pub amount: String,
}

/// A link's pending account: its entries in order and the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub link: String,
    pub entries: Vec<Entry>,
    pub balance: Vec<Total>,
}

/// Which orders [`orders`] returns: those that pass every filter given.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter<'a> {
    pub link: Option<&'a str>,
    /// The manager's performance id or code: orders with a ticket of it.
    pub performance: Option<&'a str>,
    /// Orders sold on these days (their first ticket's sale time).
    pub sold: SaleDays,
    /// Orders in this state.
    pub state: Option<OrderState>,
}

impl OrderFilter<'_> {
    /// Whether no filter is set: every order passes.
    pub fn is_open(&self) -> bool {
        self.link.is_none()
            && self.performance.is_none()
            && self.state.is_none()
            && self.sold.is_open()
    }

    /// Whether an order of `tickets` tickets, `valid` of them valid, first
    /// sold at `first_sold` (microseconds since 1970 UTC), passes the
    /// filters on state and days.
    fn keeps(&self, tickets: u64, valid: u64, first_sold: Option<i64>) -> bool {
        let state = self
            .state
            .is_none_or(|s| s == OrderState::of(valid, tickets));
        let day = self.sold.is_open() || first_sold.is_some_and(|t| self.sold.contains(t));
        state && day
    }
}

fn show_money(minor: i64, currency: &str) -> String {
    match Currency::new(currency) {
        Ok(c) => Money { minor, currency: c }.to_string(),
        Err(_) => format!("{minor} {currency}"),
    }
}

fn totals(sums: BTreeMap<String, i64>) -> Vec<Total> {
    sums.into_iter()
        .map(|(currency, minor)| Total {
            amount: show_money(minor, &currency),
            currency,
            minor,
        })
        .collect()
}

/// The orders of `filter`, in id order, each with its tickets.
pub fn orders(conn: &Connection, filter: &OrderFilter<'_>) -> Result<Vec<OrderView>, DomainError> {
    let performance = match filter.performance {
        Some(p) => Some(super::contingent::performance_id(conn, p)?.get()),
        None => None,
    };
    // Each order's tickets counted first: an order the state or the days
    // leave out is not read further.
    let mut ids = Vec::new();
    let mut st = conn.prepare(
        "SELECT o.id, count(t.id), coalesce(sum(t.state = 'valid'), 0), min(t.sold_at)
         FROM sales_order o LEFT JOIN ticket t ON t.sales_order = o.id
         WHERE (?1 IS NULL OR o.link = ?1)
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM ticket p
                                      WHERE p.sales_order = o.id AND p.performance = ?2))
         GROUP BY o.id ORDER BY o.id",
    )?;
    let rows = st.query_map((filter.link, performance), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    for row in rows {
        let (id, tickets, valid, first_sold) = row?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        if filter.keeps(count(tickets), count(valid), first_sold) {
            ids.push(id);
        }
    }
    ids.into_iter().map(|id| order_by_id(conn, id)).collect()
}

/// One order, by its id or its distributor's reference (`link` tells two
/// links' equal references apart).
pub fn order(conn: &Connection, key: &str, link: Option<&str>) -> Result<OrderView, DomainError> {
    let mut ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM sales_order WHERE reference = ?1 AND (?2 IS NULL OR link = ?2)
             ORDER BY id",
        )?
        .query_map((key, link), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty()
        && let Ok(id) = key.parse::<i64>()
    {
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM sales_order WHERE id = ?1 AND (?2 IS NULL OR link = ?2)",
            )?
            .query_row((id, link), |r| r.get(0))
            .optional()?;
        ids.extend(found);
    }
    match ids.as_slice() {
        [one] => order_by_id(conn, *one),
        [] => Err(DomainError::Invalid {
            object: format!("order {key:?}"),
            problem: "expected the id or the distributor's reference of a reintegrated order (stxd orders list)".to_owned(),
        }),
        many => Err(DomainError::Invalid {
            object: format!("order {key:?}"),
            problem: format!(
                "{} links have an order with this reference: name one with --link",
                many.len()
            ),
        }),
    }
}

fn order_by_id(conn: &Connection, id: i64) -> Result<OrderView, DomainError> {
    let head = conn
        .prepare_cached(
            "SELECT o.link, o.reference, o.created, c.code,
                    ps.id || ' ' || ps.code || ' (' || ps.name || ')',
                    pm.code || ' (' || pm.name || ')', k.code
             FROM sales_order o
             JOIN sales_channel c ON c.id = o.channel
             JOIN point_of_sale ps ON ps.id = o.point_of_sale
             JOIN payment_method pm ON pm.id = o.payment_method
             JOIN contact k ON k.id = o.contact
             WHERE o.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                stored_time(r.get::<_, i64>(2)?),
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
    let (link, reference, created, channel, point_of_sale, payment_method, contact) = head;
    let (tickets, first_sold) = tickets(conn, id)?;
    let sold_at = first_sold.map(stored_time);
    let mut pending = BTreeMap::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT currency, sum(amount) FROM pending_account_entry WHERE sales_order = ?1
             GROUP BY 1",
        )?;
        let rows = st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (currency, sum) = row?;
            pending.insert(currency, sum);
        }
    }
    let valid = tickets.iter().filter(|t| t.state == "valid").count() as u64;
    Ok(OrderView {
        id,
        link,
        reference,
        created,
        sold_at,
        state: OrderState::of(valid, tickets.len() as u64),
        channel,
        point_of_sale,
        payment_method,
        contact,
        valid,
        to_refund: tickets.iter().filter(|t| t.to_refund).count() as u64,
        tickets,
        pending_account: totals(pending),
    })
}

/// A ticket's time (microseconds since 1970) as the other times are shown.
fn stored_time(micros: i64) -> String {
    crate::store::format_unix_micros(micros).unwrap_or_else(|| format!("{micros} µs since 1970"))
}

fn source(conn: &Connection, link: &str, line: i64) -> Result<Source, DomainError> {
    let found: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT coalesce(r.file, '?'), 'line ' || l.position
             FROM sales_line l JOIN run r ON r.id = l.run WHERE l.link = ?1 AND l.line = ?2",
        )?
        .query_row((link, line), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (file, position) = found.unzip();
    Ok(Source {
        line,
        file,
        position,
    })
}

/// The tickets of an order, and the earliest sale time among them
/// (microseconds since 1970 UTC).
fn tickets(conn: &Connection, order: i64) -> Result<(Vec<TicketView>, Option<i64>), DomainError> {
    type Row = (TicketView, String, i64, Option<i64>, i64);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT t.id, t.performance, f.code, f.state,
                    CASE WHEN t.seat IS NOT NULL THEN b.code || ' ' || r.code || ' ' || s.number
                         ELSE 'zone ' || z.code END,
                    c.code, tt.code, a.code, t.amount, t.currency, v.code, t.state, t.sold_at,
                    t.cancelled_at, t.link, t.line, t.refund_line
             FROM ticket t
             JOIN performance f ON f.id = t.performance
             LEFT JOIN seat s ON s.id = t.seat
             LEFT JOIN seat_row r ON r.id = s.row
             LEFT JOIN block b ON b.id = r.block
             LEFT JOIN zone z ON z.id = t.zone
             JOIN seat_category c ON c.id = t.seat_category
             JOIN tariff_type tt ON tt.id = t.tariff_type
             JOIN audience_subcategory a ON a.id = t.audience_subcategory
             JOIN vat_code v ON v.id = t.vat_code
             WHERE t.sales_order = ?1 ORDER BY t.line",
        )?
        .query_map([order], |r| {
            let minor: i64 = r.get(8)?;
            let currency: String = r.get(9)?;
            let sold_micros: i64 = r.get(12)?;
            Ok((
                TicketView {
                    id: r.get(0)?,
                    performance: r.get(1)?,
                    performance_code: r.get(2)?,
                    performance_state: r.get(3)?,
                    place: r.get(4)?,
                    seat_category: r.get(5)?,
                    tariff_type: r.get(6)?,
                    audience_subcategory: r.get(7)?,
                    minor,
                    price: show_money(minor, &currency),
                    currency,
                    vat_code: r.get(10)?,
                    state: r.get(11)?,
                    to_refund: false,
                    sold_at: stored_time(sold_micros),
                    cancelled_at: r.get::<_, Option<i64>>(13)?.map(stored_time),
                    sale: Source {
                        line: 0,
                        file: None,
                        position: None,
                    },
                    refund: None,
                },
                r.get(14)?,
                r.get(15)?,
                r.get(16)?,
                sold_micros,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let first_sold = rows.iter().map(|r| r.4).min();
    let mut out = Vec::with_capacity(rows.len());
    for (mut t, link, line, refund_line, _) in rows {
        t.to_refund = t.state == "valid" && t.performance_state == "cancelled";
        t.sale = source(conn, &link, line)?;
        t.refund = match refund_line {
            Some(l) => Some(source(conn, &link, l)?),
            None => None,
        };
        out.push(t);
    }
    Ok((out, first_sold))
}

/// The pending account of `link`: every entry in order, and the balance
/// per currency.
pub fn account(conn: &Connection, link: &str) -> Result<Account, DomainError> {
    let entries: Vec<Entry> = conn
        .prepare_cached(
            "SELECT e.id, r.started, o.reference, e.ticket, t.line, e.amount, e.currency,
                    e.operation = 'REFUND'
             FROM pending_account_entry e
             JOIN ticket t ON t.id = e.ticket
             JOIN sales_order o ON o.id = e.sales_order
             JOIN run r ON r.id = e.run
             WHERE e.link = ?1 ORDER BY e.run, e.position, e.id",
        )?
        .query_map([link], |r| {
            let minor: i64 = r.get(5)?;
            let currency: String = r.get(6)?;
            Ok(Entry {
                id: r.get(0)?,
                created: r.get(1)?,
                order: r.get(2)?,
                ticket: r.get(3)?,
                line: r.get(4)?,
                kind: if r.get::<_, bool>(7)? {
                    "refund"
                } else {
                    "sale"
                },
                minor,
                amount: show_money(minor, &currency),
                currency,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut sums = BTreeMap::new();
    for e in &entries {
        *sums.entry(e.currency.clone()).or_insert(0i64) += e.minor;
    }
    Ok(Account {
        link: link.to_owned(),
        entries,
        balance: totals(sums),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::store::unix_micros;

    #[test]
    fn an_orders_state_follows_its_tickets() {
        assert_eq!(OrderState::of(2, 2), OrderState::Valid);
        assert_eq!(OrderState::of(1, 2), OrderState::PartlyCancelled);
        assert_eq!(OrderState::of(0, 2), OrderState::Cancelled);
        assert_eq!(OrderState::of(0, 0), OrderState::Valid);
        for s in OrderState::ALL {
            assert_eq!(s.as_str().parse::<OrderState>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(
            "refunded".parse::<OrderState>(),
            Err("expected an order state: valid, partly-cancelled, cancelled".to_owned())
        );
    }

    #[test]
    fn sale_days_are_whole_utc_days_both_ends_included() {
        let days = SaleDays::new(Some(date!(2026 - 12 - 01)), Some(date!(2026 - 12 - 02))).unwrap();
        let at = |t: time::OffsetDateTime| days.contains(unix_micros(t));
        assert!(!at(datetime!(2026-11-30 23:59:59.999999 UTC)));
        assert!(at(datetime!(2026-12-01 00:00:00 UTC)));
        assert!(at(datetime!(2026-12-02 23:59:59.999999 UTC)));
        assert!(!at(datetime!(2026-12-03 00:00:00 UTC)));
        // The days are UTC days, whatever offset an instant is written with:
        // 00:30 in Paris on the 3rd is 23:30 UTC on the 2nd.
        assert!(at(datetime!(2026-12-03 00:30:00 +01:00)));
        assert!(!at(datetime!(2026-12-02 23:30:00 -01:00)));

        let open_end = SaleDays::new(Some(date!(2026 - 12 - 02)), None).unwrap();
        assert!(open_end.contains(unix_micros(datetime!(9999-12-31 23:59:59 UTC))));
        assert!(!open_end.contains(unix_micros(datetime!(2026-12-01 12:00:00 UTC))));
        let open_start = SaleDays::new(None, Some(date!(2026 - 12 - 01))).unwrap();
        assert!(open_start.contains(0));
        assert!(!open_start.contains(unix_micros(datetime!(2026-12-02 00:00:00 UTC))));
        assert!(SaleDays::default().contains(i64::MIN));

        let one = SaleDays::new(Some(date!(2026 - 12 - 01)), Some(date!(2026 - 12 - 01)));
        assert!(one.is_ok());
        let backwards = SaleDays::new(Some(date!(2026 - 12 - 02)), Some(date!(2026 - 12 - 01)));
        assert_eq!(
            backwards,
            Err("the first day of sale 2026-12-02 comes after the last one 2026-12-01".to_owned())
        );
    }
}
