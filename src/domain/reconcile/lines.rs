//! The sale lines of both sides, merged by line id: each distributor line
//! matched with the manager's sales line and tickets, and every difference
//! or line in flight named.

use std::cmp::Ordering;

use rusqlite::OptionalExtension;

use super::{DLine, MLine, Recon, TICKET_COLUMNS, Ticket, format_amount, ticket_of};
use crate::domain::DomainError;

impl Recon<'_> {
    /// The lines of both sides, merged by line id.
    pub(super) fn lines(&mut self) -> Result<(), DomainError> {
        let (d, m) = (self.d, self.m);
        let mut d_st = d.prepare(
            "SELECT id, operation, refund_of, performance, seat, zone, seat_category, tariff_type,
                    audience_subcategory, amount, currency, vat_code, active, exported_in
             FROM sale_line WHERE link = ?1 ORDER BY id",
        )?;
        let mut d_rows = d_st.query_map([self.link], |r| {
            Ok(DLine {
                id: r.get(0)?,
                operation: r.get(1)?,
                refund_of: r.get(2)?,
                performance: r.get(3)?,
                seat: r.get(4)?,
                zone: r.get(5)?,
                seat_category: r.get(6)?,
                tariff_type: r.get(7)?,
                audience: r.get(8)?,
                amount: r.get(9)?,
                currency: r.get(10)?,
                vat_code: r.get(11)?,
                active: r.get::<_, i64>(12)? == 1,
                exported_in: r.get(13)?,
            })
        })?;
        let mut m_st = m.prepare(
            "SELECT line FROM sales_line WHERE link = ?1
             UNION SELECT line FROM ticket WHERE link = ?1
             UNION SELECT refund_line FROM ticket WHERE link = ?1 AND refund_line IS NOT NULL
             ORDER BY 1",
        )?;
        let mut m_rows = m_st.query_map([self.link], |r| r.get::<_, i64>(0))?;
        let mut dn = d_rows.next().transpose()?;
        let mut mn = m_rows.next().transpose()?;
        loop {
            let order = match (&dn, mn) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(dl), Some(ml)) => dl.id.cmp(&ml),
            };
            if order != Ordering::Greater {
                if let Some(dl) = dn.take() {
                    self.line(&dl, order == Ordering::Equal)?;
                }
                dn = d_rows.next().transpose()?;
            }
            if order != Ordering::Less {
                if let Some(ml) = mn
                    && order == Ordering::Greater
                {
                    self.manager_only(ml)?;
                }
                mn = m_rows.next().transpose()?;
            }
        }
        Ok(())
    }

    fn sales_line(&self, line: i64) -> Result<Option<MLine>, DomainError> {
        Ok(self
            .m
            .prepare_cached("SELECT operation, status, code, reason FROM sales_line WHERE link = ?1 AND line = ?2")?
            .query_row((self.link, line), |r| {
                Ok(MLine {
                    operation: r.get(0)?,
                    status: r.get(1)?,
                    code: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn ticket_by(&self, column: &str, line: i64) -> Result<Option<(Ticket, i64)>, DomainError> {
        // The line's `sales_line` row names its ticket (sold or cancelled).
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM ticket
             WHERE id = (SELECT ticket FROM sales_line WHERE link = ?1 AND line = ?2) AND {column} = ?2"
        );
        Ok(self
            .m
            .prepare_cached(&sql)?
            .query_row((self.link, line), ticket_of)
            .optional()?)
    }

    /// A line id the manager knows and the distributor does not.
    fn manager_only(&mut self, line: i64) -> Result<(), DomainError> {
        let recorded = self.sales_line(line)?;
        let ticket = self.ticket_by("line", line)?;
        let what = match (&recorded, &ticket) {
            (Some(l), Some((t, _))) => format!(
                "{} line, {}, ticket {} ({})",
                l.operation, l.status, t.id, t.state
            ),
            (Some(l), None) => format!("{} line, {}", l.operation, l.status),
            (None, Some((t, _))) => format!("ticket {} ({})", t.id, t.state),
            (None, None) => match self.ticket_by("refund_line", line)? {
                Some((t, _)) => format!("refund cancelling ticket {}", t.id),
                None => "line".to_owned(),
            },
        };
        let performance = ticket.as_ref().map(|(t, _)| t.performance);
        self.differ(
            "unknown-at-distributor",
            performance,
            Some(line),
            format!("line {line}: {what} at the manager, unknown at the distributor"),
        );
        Ok(())
    }

    /// One distributor line: counted into its row, then compared.
    fn line(&mut self, dl: &DLine, manager_knows: bool) -> Result<(), DomainError> {
        let id = Some(dl.id);
        let performance = self.translate("performance", dl.performance, id)?;
        let category = self.translate("seat_category", dl.seat_category, id)?;
        let vat = self.translate("vat_code", dl.vat_code, id)?;
        if let (Some(p), Some(c)) = (performance, category) {
            let acc = self.acc(p, c);
            if dl.operation == "SALE" {
                acc.d.sold += 1;
                if dl.active && dl.amount == 0 {
                    acc.d.free += 1;
                }
                if dl.active
                    && let Some(v) = vat
                {
                    *acc.d_amounts.entry((v, dl.currency.clone())).or_default() += dl.amount;
                }
            } else {
                acc.d.refunded += 1;
            }
            if dl.exported_in.is_none() {
                acc.d.not_exported += 1;
            }
        }
        let signed = if dl.operation == "SALE" {
            dl.amount
        } else {
            -dl.amount
        };
        let Some(sequence) = dl.exported_in else {
            if manager_knows {
                self.differ(
                    "not-marked-exported",
                    performance,
                    id,
                    format!("line {}: known at the manager, but the distributor has not marked it exported", dl.id),
                );
            } else {
                self.fly(
                    "not-exported",
                    performance,
                    id,
                    format!("line {} ({}): not exported yet", dl.id, dl.operation),
                );
                *self.in_flight_money.entry(dl.currency.clone()).or_default() += signed;
            }
            return Ok(());
        };
        let recorded = self.sales_line(dl.id)?;
        if self.resolved_line(dl, performance, sequence)? {
            return Ok(());
        }
        if let Some(l) = &recorded
            && l.status == "rejected"
        {
            let code = l.code.as_deref().unwrap_or("rejected");
            let reason = l.reason.as_deref().unwrap_or("no reason recorded");
            self.differ(
                "rejected-at-manager",
                performance,
                id,
                format!("line {} ({}, SALES file {sequence}): rejected at the manager: {code}: {reason}", dl.id, dl.operation),
            );
            return Ok(());
        }
        if dl.operation == "SALE" {
            match self.ticket_by("line", dl.id)? {
                Some((t, _)) => self.compare_sale(dl, &t, recorded.as_ref())?,
                None if recorded.is_some() => self.differ(
                    "ticket-missing",
                    performance,
                    id,
                    format!(
                        "line {} (SALE): recorded as booked at the manager, but it has no ticket",
                        dl.id
                    ),
                ),
                None => self.not_at_manager(dl, sequence, performance, signed)?,
            }
        } else {
            match self.ticket_by("refund_line", dl.id)? {
                Some((t, sale_line)) => self.compare_refund(dl, &t, sale_line, recorded.as_ref())?,
                None if recorded.is_some() => self.differ(
                    "ticket-missing",
                    performance,
                    id,
                    format!("line {} (REFUND): recorded as booked at the manager, but no ticket was cancelled by it", dl.id),
                ),
                None => self.not_at_manager(dl, sequence, performance, signed)?,
            }
        }
        Ok(())
    }

    /// An exported line the manager has not recorded: in flight while its
    /// SALES file has not been applied there.
    fn not_at_manager(
        &mut self,
        dl: &DLine,
        sequence: i64,
        performance: Option<i64>,
        signed: i64,
    ) -> Result<(), DomainError> {
        let state: Option<String> = self
            .m
            .prepare_cached(
                "SELECT state FROM file_journal WHERE link = ?1 AND kind = 'SALES' AND direction = 'in' AND sequence = ?2",
            )?
            .query_row((self.link, sequence), |r| r.get(0))
            .optional()?;
        let id = Some(dl.id);
        match state.as_deref() {
            Some("applied") => self.differ(
                "missing-at-manager",
                performance,
                id,
                format!("line {} ({}): exported in SALES file {sequence}, which the manager applied, but the manager has no record of the line", dl.id, dl.operation),
            ),
            Some("rejected") => self.differ(
                "file-rejected",
                performance,
                id,
                format!("line {} ({}): exported in SALES file {sequence}, which the manager rejected whole (see its error/ reason file): send it again", dl.id, dl.operation),
            ),
            other => {
                let how = match other {
                    Some(s) => format!("{s} at the manager"),
                    None => "not yet received by the manager".to_owned(),
                };
                self.fly(
                    "not-yet-applied",
                    performance,
                    id,
                    format!("line {} ({}): exported in SALES file {sequence}, {how}", dl.id, dl.operation),
                );
                *self.in_flight_money.entry(dl.currency.clone()).or_default() += signed;
            }
        }
        Ok(())
    }

    /// The fields of a distributor line, in manager ids, against a ticket.
    fn field_differences(&mut self, dl: &DLine, t: &Ticket) -> Result<Vec<String>, DomainError> {
        let mut out = Vec::new();
        let mut check = |what: &str, dist: Option<i64>, man: Option<i64>| {
            if dist != man {
                let show = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
                out.push(format!(
                    "{what} {} at the distributor, {} at the manager",
                    show(dist),
                    show(man)
                ));
            }
        };
        let id = Some(dl.id);
        let performance = self.manager_id("performance", dl.performance)?;
        check("performance", performance, Some(t.performance));
        let seat = match dl.seat {
            Some(s) => self.translate("seat", s, id)?,
            None => None,
        };
        check("seat", seat, t.seat);
        let zone = match dl.zone {
            Some(z) => self.translate("zone", z, id)?,
            None => None,
        };
        check("zone", zone, t.zone);
        let category = self.manager_id("seat_category", dl.seat_category)?;
        check("seat category", category, Some(t.seat_category));
        let tariff = self.translate("tariff_type", dl.tariff_type, id)?;
        check("tariff type", tariff, Some(t.tariff_type));
        let audience = self.translate("audience_subcategory", dl.audience, id)?;
        check("audience subcategory", audience, Some(t.audience));
        let vat = self.manager_id("vat_code", dl.vat_code)?;
        check("VAT code", vat, Some(t.vat_code));
        Ok(out)
    }

    fn amount_differs(&mut self, dl: &DLine, t: &Ticket, performance: Option<i64>) {
        if dl.amount != t.amount || dl.currency != t.currency {
            self.differ(
                "amount-differs",
                performance,
                Some(dl.id),
                format!(
                    "line {} ({}): {} at the distributor, {} at the manager (ticket {})",
                    dl.id,
                    dl.operation,
                    format_amount(dl.amount, &dl.currency),
                    format_amount(t.amount, &t.currency),
                    t.id
                ),
            );
        }
    }

    fn compare_sale(
        &mut self,
        dl: &DLine,
        t: &Ticket,
        recorded: Option<&MLine>,
    ) -> Result<(), DomainError> {
        let p = Some(t.performance);
        if let Some(l) = recorded
            && l.operation != "SALE"
        {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {}: a SALE at the distributor, a {} at the manager",
                    dl.id, l.operation
                ),
            );
        }
        let fields = self.field_differences(dl, t)?;
        if !fields.is_empty() {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {} (SALE, ticket {}): {}",
                    dl.id,
                    t.id,
                    fields.join("; ")
                ),
            );
        }
        self.amount_differs(dl, t, p);
        if dl.active && t.state == "cancelled" {
            let by = t
                .refund_line
                .map_or_else(String::new, |r| format!(" by refund line {r}"));
            self.differ(
                "state-differs",
                p,
                Some(dl.id),
                format!("line {} (SALE): ticket {} is cancelled at the manager{by}, the sale is active at the distributor", dl.id, t.id),
            );
        }
        Ok(())
    }

    fn compare_refund(
        &mut self,
        dl: &DLine,
        t: &Ticket,
        sale_line: i64,
        recorded: Option<&MLine>,
    ) -> Result<(), DomainError> {
        let p = Some(t.performance);
        if let Some(l) = recorded
            && l.operation != "REFUND"
        {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {}: a REFUND at the distributor, a {} at the manager",
                    dl.id, l.operation
                ),
            );
        }
        if dl.refund_of != Some(sale_line) {
            let of = dl
                .refund_of
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!("line {} (REFUND): refunds line {of} at the distributor, cancelled ticket {} of line {sale_line} at the manager", dl.id, t.id),
            );
        }
        self.amount_differs(dl, t, p);
        Ok(())
    }
}
