//! The reconciliation report as HTML: [`render_html`] takes a [`Report`] and
//! returns one self-contained page (inline CSS and an SVG chart of the
//! places per performance, no script, nothing fetched), every value escaped.

use std::fmt::Write as _;

use crate::domain::reconcile::{Item, Report, Sides, format_amounts, format_sums};

/// `s` escaped for HTML text and attribute values (the console's pages use
/// it too).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}\
th{background:#f2f2f2}td.l,th.l{text-align:left}tr.total td{font-weight:bold;background:#fafafa}\
.ok{color:#1a7f37;font-weight:bold}.bad{color:#b42318;font-weight:bold}\
li.diff{color:#b42318}li.fly{color:#9a6700}.code{font-family:monospace}\
.banner{padding:.6em 1em;border-radius:4px;display:inline-block}\
.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}";

const SOLD: &str = "#2f6fba";
const UNSOLD: &str = "#9cc3e6";
const AWAIT: &str = "#e3a21a";

/// Per performance: (label, has difference, manager bar, distributor bar).
type Bars = (String, bool, [u64; 3], [u64; 2]);

fn bars(r: &Report) -> Vec<Bars> {
    let mut out: Vec<Bars> = Vec::new();
    for row in &r.rows {
        let m = &row.sides.manager;
        let d = &row.sides.distributor;
        let m_sold = m.sold.saturating_sub(m.refunded);
        let d_sold = d.sold.saturating_sub(d.refunded);
        let label = format!("{} {}", row.performance_code, row.start);
        let flagged = r
            .differences
            .iter()
            .any(|i| i.performance == Some(row.performance));
        let add_m = [m_sold, m.allotted.saturating_sub(m_sold), m.awaiting_ack];
        let add_d = [d_sold, d.in_contingent.saturating_sub(d_sold)];
        match out.last_mut() {
            Some(last) if last.0 == label => {
                for (a, b) in last.2.iter_mut().zip(add_m) {
                    *a += b;
                }
                for (a, b) in last.3.iter_mut().zip(add_d) {
                    *a += b;
                }
            }
            _ => out.push((label, flagged, add_m, add_d)),
        }
    }
    out
}

/// Stacked horizontal bars per performance: the manager's view (sold,
/// allotted unsold, awaiting acknowledgement) over the distributor's (sold,
/// in contingent unsold). Integer geometry only.
fn chart(r: &Report) -> String {
    const LABEL: u64 = 80;
    const WIDTH: u64 = 640;
    const ROW: u64 = 64;
    let data = bars(r);
    let max = data
        .iter()
        .map(|(_, _, m, d)| m.iter().sum::<u64>().max(d.iter().sum()))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = 30 + ROW * data.len() as u64;
    let total_w = LABEL + WIDTH + 150;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{total_w}\" height=\"{height}\" role=\"img\" aria-label=\"places per performance\">"
    );
    let legend = [
        (SOLD, "sold"),
        (UNSOLD, "in contingent, unsold"),
        (AWAIT, "awaiting acknowledgement"),
    ];
    let mut x = 0;
    for (colour, text) in legend {
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"14\" font-size=\"12\">{text}</text>",
            x + 16
        );
        x += 40 + 8 * text.len() as u64;
    }
    for (i, (label, flagged, m, d)) in data.iter().enumerate() {
        let y = 26 + ROW * i as u64;
        let colour = if *flagged { "#b42318" } else { "#222" };
        let mark = if *flagged { " (differences)" } else { "" };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"13\" font-weight=\"bold\" fill=\"{colour}\">{}{mark}</text>",
            y + 12,
            esc(label)
        );
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">manager</text><text x=\"0\" y=\"{}\" font-size=\"11\">distributor</text>",
            y + 30,
            y + 48
        );
        for (row_y, values, colours) in [
            (y + 19, &m[..], &[SOLD, UNSOLD, AWAIT][..]),
            (y + 37, &d[..], &[SOLD, UNSOLD][..]),
        ] {
            let mut x = LABEL;
            for (v, colour) in values.iter().zip(colours) {
                let w = v * WIDTH / max;
                if w > 0 {
                    let _ = write!(
                        s,
                        "<rect x=\"{x}\" y=\"{row_y}\" width=\"{w}\" height=\"14\" fill=\"{colour}\"><title>{v}</title></rect>"
                    );
                }
                x += w;
            }
            let numbers: Vec<String> = values.iter().map(u64::to_string).collect();
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
                x + 6,
                row_y + 11,
                numbers.join(" / ")
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The report as one self-contained HTML page: inline CSS and SVG, no
/// script, nothing fetched.
pub fn render_html(r: &Report) -> String {
    let mut h = String::new();
    let title = format!("Reconciliation of link {}", r.link);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>{} (manager) and {} (distributor).</p>",
        esc(&title),
        esc(&r.manager),
        esc(&r.distributor)
    );
    if r.is_consistent() {
        let _ = write!(
            h,
            "<p class=\"banner ok\">No difference between the two institutions' records ({} item(s) in flight).</p>",
            r.in_flight.len()
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"banner bad\">{} difference(s) between the two institutions' records, listed below.</p>",
            r.differences.len()
        );
    }
    h.push_str("<h2>Places per performance</h2>");
    h.push_str(&chart(r));
    counts_table(&mut h, r);
    pending_and_versions(&mut h, r);
    let list = |h: &mut String, title: &str, class: &str, items: &[Item], none: &str| {
        let _ = write!(h, "<h2>{title} ({})</h2>", items.len());
        if items.is_empty() {
            let _ = write!(h, "<p>{none}</p>");
            return;
        }
        h.push_str("<ul>");
        for i in items {
            let _ = write!(
                h,
                "<li class=\"{class}\"><span class=\"code\">{}</span>: {}</li>",
                esc(i.code),
                esc(&i.detail)
            );
        }
        h.push_str("</ul>");
    };
    list(
        &mut h,
        "Differences",
        "diff",
        &r.differences,
        "None: both institutions' records agree.",
    );
    list(
        &mut h,
        "In flight",
        "fly",
        &r.in_flight,
        "Nothing travelling.",
    );
    list(
        &mut h,
        "Resolved lines",
        "fly",
        &r.resolved,
        "None: no rejected line was accepted or dismissed.",
    );
    let cancelled: Vec<Item> = r
        .cancelled
        .iter()
        .map(|c| Item {
            code: c.code(),
            performance: Some(c.performance),
            line: None,
            detail: c.detail(),
        })
        .collect();
    list(
        &mut h,
        "Cancelled performances",
        "fly",
        &cancelled,
        "None: no performance of the link is cancelled.",
    );
    h.push_str("</body></html>\n");
    h
}

/// The table of counts and amounts per performance and seat category, both
/// sides, then the totals.
fn counts_table(h: &mut String, r: &Report) {
    h.push_str("<h2>Per performance and seat category</h2><table><tr><th class=\"l\">performance</th><th class=\"l\">start</th><th class=\"l\">category</th>\
<th>allotted</th><th>awaiting ack</th><th>returned</th><th>sold</th><th>refunded</th><th title=\"valid tickets of a free tariff, amount 0\">invitations</th><th class=\"l\">amounts (manager)</th>\
<th>in contingent</th><th>sold</th><th>refunded</th><th title=\"active sales of a free tariff, amount 0\">invitations</th><th>not exported</th><th class=\"l\">amounts (distributor)</th></tr>");
    let cells = |h: &mut String, s: &Sides| {
        let (m, d) = (&s.manager, &s.distributor);
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            m.allotted,
            m.awaiting_ack,
            m.returned,
            m.sold,
            m.refunded,
            m.free,
            esc(&format_amounts(&m.amounts)),
            d.in_contingent,
            d.sold,
            d.refunded,
            d.free,
            d.not_exported,
            esc(&format_amounts(&d.amounts))
        );
    };
    for row in &r.rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            row.performance,
            esc(&row.performance_code),
            esc(&row.start),
            esc(&row.seat_category_code)
        );
        cells(h, &row.sides);
    }
    h.push_str("<tr class=\"total\"><td class=\"l\" colspan=\"3\">total</td>");
    cells(h, &r.totals);
    h.push_str("</table>");
}

/// The pending-account balance (flagged when a difference names it) and the
/// contingent versions of both sides.
fn pending_and_versions(h: &mut String, r: &Report) {
    let pa = &r.pending_account;
    let balance_class = if r
        .differences
        .iter()
        .any(|i| i.code.starts_with("pending-account"))
    {
        "bad"
    } else {
        "ok"
    };
    let _ = write!(
        h,
        "<h2>Pending account</h2><table><tr><th class=\"l\">balance at the manager</th><td class=\"{balance_class}\">{}</td></tr>\
<tr><th class=\"l\">valid tickets at the manager</th><td>{}</td></tr>\
<tr><th class=\"l\">active sales at the distributor</th><td>{}</td></tr>\
<tr><th class=\"l\">of which not yet at the manager (in flight)</th><td>{}</td></tr></table>",
        esc(&format_sums(&pa.manager_balance)),
        esc(&format_sums(&pa.manager_valid_tickets)),
        esc(&format_sums(&pa.distributor_active_sales)),
        esc(&format_sums(&pa.in_flight))
    );
    h.push_str("<h2>Contingent versions</h2><table><tr><th class=\"l\">performance</th><th>manager version</th><th>exported</th><th>acknowledged</th><th>applied by the distributor</th></tr>");
    for v in &r.versions {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.performance,
            esc(&v.performance_code),
            v.version,
            v.exported,
            v.acknowledged,
            v.applied
                .map_or_else(|| "none".to_owned(), |a| a.to_string())
        );
    }
    h.push_str("</table>");
}
