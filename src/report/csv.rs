//! The reconciliation report as CSV: [`write_csv`] takes a [`Report`] and
//! writes one table of [`CSV_COLUMNS`], the `section` column saying what each
//! row is; every cell a spreadsheet would read as a formula is neutralised.

use crate::domain::mapping::neutralise;
use crate::domain::reconcile::{Report, Sides, format_amounts, format_sums};

/// The CSV columns: one table, the `section` column saying what a row is
/// (`row`, `total`, `pending-account`, `difference`, `in-flight`,
/// `resolved`, `cancelled`).
pub const CSV_COLUMNS: [&str; 23] = [
    "section",
    "performance",
    "performance_code",
    "start",
    "seat_category",
    "seat_category_code",
    "manager_allotted",
    "manager_awaiting_ack",
    "manager_returned",
    "manager_sold",
    "manager_refunded",
    "manager_free",
    "manager_amounts",
    "distributor_in_contingent",
    "distributor_sold",
    "distributor_refunded",
    "distributor_free",
    "distributor_not_exported",
    "distributor_amounts",
    "pending_account",
    "line",
    "code",
    "detail",
];

/// Writes the report as CSV (`;`-separated, UTF-8 with a byte order mark,
/// every cell neutralised for spreadsheets) into `out`.
pub fn write_csv(r: &Report, out: &mut Vec<u8>) -> Result<(), csv::Error> {
    out.extend_from_slice("\u{feff}".as_bytes());
    let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let counts = |s: &Sides| -> [String; 13] {
        [
            s.manager.allotted.to_string(),
            s.manager.awaiting_ack.to_string(),
            s.manager.returned.to_string(),
            s.manager.sold.to_string(),
            s.manager.refunded.to_string(),
            s.manager.free.to_string(),
            format_amounts(&s.manager.amounts),
            s.distributor.in_contingent.to_string(),
            s.distributor.sold.to_string(),
            s.distributor.refunded.to_string(),
            s.distributor.free.to_string(),
            s.distributor.not_exported.to_string(),
            format_amounts(&s.distributor.amounts),
        ]
    };
    let mut record = |cells: Vec<String>| -> csv::Result<()> {
        w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
    };
    for row in &r.rows {
        let mut cells = vec![
            "row".to_owned(),
            row.performance.to_string(),
            row.performance_code.clone(),
            row.start.clone(),
            row.seat_category.to_string(),
            row.seat_category_code.clone(),
        ];
        cells.extend(counts(&row.sides));
        cells.extend([String::new(), String::new(), String::new(), String::new()]);
        record(cells)?;
    }
    let mut cells = vec!["total".to_owned()];
    cells.extend(std::iter::repeat_n(String::new(), 5));
    cells.extend(counts(&r.totals));
    cells.extend([String::new(), String::new(), String::new(), String::new()]);
    record(cells)?;
    let pa = &r.pending_account;
    for (code, sums) in [
        ("manager-balance", &pa.manager_balance),
        ("manager-valid-tickets", &pa.manager_valid_tickets),
        ("distributor-active-sales", &pa.distributor_active_sales),
        ("in-flight", &pa.in_flight),
    ] {
        let mut cells = vec!["pending-account".to_owned()];
        // Blank up to the last four columns (pending_account, line, code, detail).
        cells.extend(std::iter::repeat_n(String::new(), CSV_COLUMNS.len() - 5));
        cells.extend([
            format_sums(sums),
            String::new(),
            code.to_owned(),
            String::new(),
        ]);
        record(cells)?;
    }
    for (section, items) in [
        ("difference", &r.differences),
        ("in-flight", &r.in_flight),
        ("resolved", &r.resolved),
    ] {
        for i in items {
            let mut cells = vec![
                section.to_owned(),
                i.performance.map(|p| p.to_string()).unwrap_or_default(),
            ];
            // Blank up to the last three columns (line, code, detail).
            cells.extend(std::iter::repeat_n(String::new(), CSV_COLUMNS.len() - 5));
            cells.extend([
                i.line.map(|l| l.to_string()).unwrap_or_default(),
                i.code.to_owned(),
                i.detail.clone(),
            ]);
            record(cells)?;
        }
    }
    for c in &r.cancelled {
        let mut cells = vec![
            "cancelled".to_owned(),
            c.performance.to_string(),
            c.performance_code.clone(),
        ];
        // Blank up to the last three columns (line, code, detail).
        cells.extend(std::iter::repeat_n(String::new(), CSV_COLUMNS.len() - 6));
        cells.extend([String::new(), c.code().to_owned(), c.detail()]);
        record(cells)?;
    }
    w.flush()?;
    Ok(())
}
