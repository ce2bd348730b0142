//! The pending account: the manager's balance for the link against the
//! distributor's active sales.

use rusqlite::Connection;

use std::collections::BTreeSet;

use super::{PendingAccount, Recon, Sum, format_amount};
use crate::domain::DomainError;

impl Recon<'_> {
    fn sums(&self, conn: &Connection, sql: &str) -> Result<Vec<Sum>, DomainError> {
        Ok(conn
            .prepare(sql)?
            .query_map([self.link], |r| {
                Ok(Sum {
                    currency: r.get(0)?,
                    minor: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub(super) fn pending_account(&mut self) -> Result<PendingAccount, DomainError> {
        let balance = self.sums(
            self.m,
            "SELECT currency, sum(amount) FROM pending_account_entry WHERE link = ?1
              GROUP BY 1 ORDER BY 1",
        )?;
        let tickets = self.sums(
            self.m,
            "SELECT currency, sum(amount) FROM ticket WHERE link = ?1 AND state = 'valid' GROUP BY 1 ORDER BY 1",
        )?;
        let active = self.sums(
            self.d,
            "SELECT currency, sum(amount) FROM sale_line WHERE link = ?1 AND operation = 'SALE' AND active = 1 GROUP BY 1 ORDER BY 1",
        )?;
        let dismissed = self.sums(
            self.m,
            "SELECT currency, sum(CASE operation WHEN 'SALE' THEN amount ELSE -amount END)
               FROM sales_line_resolution WHERE link = ?1 AND decision = 'dismissed' GROUP BY 1 ORDER BY 1",
        )?;
        let in_flight: Vec<Sum> = self
            .in_flight_money
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(c, v)| Sum {
                currency: c.clone(),
                minor: *v,
            })
            .collect();
        let get =
            |list: &[Sum], c: &str| list.iter().find(|s| s.currency == c).map_or(0, |s| s.minor);
        let currencies: BTreeSet<&str> = balance
            .iter()
            .chain(&tickets)
            .chain(&active)
            .chain(&in_flight)
            .chain(&dismissed)
            .map(|s| s.currency.as_str())
            .collect();
        let mut found = Vec::new();
        for c in currencies {
            let (b, t, a, f, d) = (
                get(&balance, c),
                get(&tickets, c),
                get(&active, c),
                get(&in_flight, c),
                get(&dismissed, c),
            );
            let expected = a.saturating_sub(f).saturating_sub(d);
            if b != expected {
                found.push((
                    "pending-account-mismatch",
                    format!(
                        "pending account in {c}: {} at the manager, the distributor's active sales are {} of which {} not yet at the manager and {} dismissed there: expected {} (off by {})",
                        format_amount(b, c),
                        format_amount(a, c),
                        format_amount(f, c),
                        format_amount(d, c),
                        format_amount(expected, c),
                        format_amount(b.saturating_sub(expected), c)
                    ),
                ));
            }
            if b != t {
                found.push((
                    "pending-account-vs-tickets",
                    format!(
                        "pending account in {c}: {} at the manager, its valid tickets of the link sum to {}",
                        format_amount(b, c),
                        format_amount(t, c)
                    ),
                ));
            }
        }
        for (code, detail) in found {
            self.differ(code, None, None, detail);
        }
        Ok(PendingAccount {
            manager_balance: balance,
            manager_valid_tickets: tickets,
            distributor_active_sales: active,
            in_flight,
            dismissed,
        })
    }
}
