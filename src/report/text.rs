//! The reconciliation report as text: [`render_text`] takes a [`Report`] and
//! returns the table `stxd report reconcile` prints.

use std::fmt::Write as _;

use crate::domain::reconcile::{Report, Sides, format_amounts, format_sums};

/// The report as a table for a terminal, one line per performance and seat
/// category, then the totals, versions, pending account, differences and
/// items in flight, resolved lines, cancelled performances (apart, with
/// their tickets still to refund), and the verdict.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "reconciliation of link {} ({} manager, {} distributor)",
        r.link, r.manager, r.distributor
    );
    let _ = writeln!(
        out,
        "{:<14} {:<25} {:<8} | {:>8} {:>8} {:>8} {:>5} {:>8} {:>7} | {:>10} {:>5} {:>8} {:>7} {:>8}",
        "performance",
        "start",
        "category",
        "allotted",
        "await",
        "returned",
        "sold",
        "refunded",
        "invited",
        "contingent",
        "sold",
        "refunded",
        "invited",
        "unsent"
    );
    let line = |out: &mut String, p: &str, start: &str, c: &str, s: &Sides| {
        let _ = writeln!(
            out,
            "{:<14} {:<25} {:<8} | {:>8} {:>8} {:>8} {:>5} {:>8} {:>7} | {:>10} {:>5} {:>8} {:>7} {:>8}",
            p,
            start,
            c,
            s.manager.allotted,
            s.manager.awaiting_ack,
            s.manager.returned,
            s.manager.sold,
            s.manager.refunded,
            s.manager.free,
            s.distributor.in_contingent,
            s.distributor.sold,
            s.distributor.refunded,
            s.distributor.free,
            s.distributor.not_exported
        );
        let (m, d) = (
            format_amounts(&s.manager.amounts),
            format_amounts(&s.distributor.amounts),
        );
        if !m.is_empty() || !d.is_empty() {
            let _ = writeln!(
                out,
                "{:<50}   amounts: manager {} | distributor {}",
                "",
                if m.is_empty() { "-" } else { &m },
                if d.is_empty() { "-" } else { &d }
            );
        }
    };
    for row in &r.rows {
        line(
            &mut out,
            &format!("{} {}", row.performance, row.performance_code),
            &row.start,
            &row.seat_category_code,
            &row.sides,
        );
    }
    line(&mut out, "total", "", "", &r.totals);
    for v in &r.versions {
        let applied = v
            .applied
            .map_or_else(|| "none".to_owned(), |a| a.to_string());
        let _ = writeln!(
            out,
            "contingent {} {}: manager version {} (exported {}, acknowledged {}), distributor applied {applied}",
            v.performance, v.performance_code, v.version, v.exported, v.acknowledged
        );
    }
    let pa = &r.pending_account;
    let _ = writeln!(
        out,
        "pending account: manager {} (valid tickets {}); distributor active sales {}, of which in flight {}",
        format_sums(&pa.manager_balance),
        format_sums(&pa.manager_valid_tickets),
        format_sums(&pa.distributor_active_sales),
        format_sums(&pa.in_flight)
    );
    for (title, items) in [
        ("difference", &r.differences),
        ("in flight", &r.in_flight),
        ("resolved", &r.resolved),
    ] {
        for i in items {
            let _ = writeln!(out, "{title}: {}: {}", i.code, i.detail);
        }
    }
    for c in &r.cancelled {
        let _ = writeln!(out, "cancelled: {}: {}", c.code(), c.detail());
    }
    let _ = writeln!(
        out,
        "{}: {} difference(s), {} item(s) in flight",
        if r.is_consistent() {
            "consistent"
        } else {
            "NOT CONSISTENT"
        },
        r.differences.len(),
        r.in_flight.len()
    );
    out
}
