//! The reconciliation report rendered for people and spreadsheets.
//!
//! Takes the [`Report`](crate::domain::reconcile::Report) the domain builds
//! (the manager's and the distributor's records of a link side by side) and
//! returns it as text ([`render_text`]), CSV ([`write_csv`], with
//! [`CSV_COLUMNS`]) or one self-contained HTML page ([`render_html`]). No
//! store, no file, no config: the CLI reads the stores, calls these and
//! writes or prints what they return.

mod csv;
mod html;
mod text;

pub use csv::{CSV_COLUMNS, write_csv};
pub use html::{esc as escape_html, render_html};
pub use text::render_text;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reconcile::Item;
    use crate::domain::reconcile::{
        Amount, DistributorSide, ManagerSide, PendingAccount, Report, Row, Sides, Sum,
    };

    fn report(differences: Vec<Item>) -> Report {
        let sides = Sides {
            manager: ManagerSide {
                allotted: 10,
                awaiting_ack: 2,
                returned: 0,
                sold: 3,
                refunded: 1,
                free: 0,
                amounts: vec![Amount {
                    vat_code: 1101,
                    vat: "TVA55".into(),
                    currency: "EUR".into(),
                    minor: 123_450,
                }],
            },
            distributor: DistributorSide {
                in_contingent: 10,
                sold: 3,
                refunded: 1,
                free: 0,
                not_exported: 0,
                amounts: vec![],
            },
        };
        Report {
            link: "opera-tourism".into(),
            manager: "OPERA".into(),
            distributor: "TOURISM".into(),
            rows: vec![Row {
                performance: 1701,
                performance_code: "<TRAV>".into(),
                start: "2037-01-15T20:00:00+01:00".into(),
                seat_category: 2001,
                seat_category_code: "=CAT1".into(),
                sides: sides.clone(),
            }],
            totals: sides,
            versions: vec![],
            pending_account: PendingAccount {
                manager_balance: vec![Sum {
                    currency: "EUR".into(),
                    minor: 123_450,
                }],
                ..PendingAccount::default()
            },
            differences,
            in_flight: vec![],
            resolved: vec![],
            cancelled: vec![],
        }
    }

    #[test]
    fn html_escapes_and_flags() {
        let item = Item {
            code: "amount-differs",
            performance: Some(1701),
            line: Some(3),
            detail: "a <b> & c".into(),
        };
        let h = render_html(&report(vec![item]));
        assert!(h.contains("&lt;TRAV&gt;"));
        assert!(h.contains("a &lt;b&gt; &amp; c"));
        assert!(h.contains("1,234.50 EUR"));
        assert!(h.contains("banner bad"));
        assert!(h.contains("<svg"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn csv_neutralises_formula_cells_and_keeps_one_width() {
        let mut buf = Vec::new();
        write_csv(&report(vec![]), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("'=CAT1"));
        let mut rd = ::csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        assert_eq!(rd.headers().unwrap().len(), CSV_COLUMNS.len());
        let widths: Vec<usize> = rd.records().map(|r| r.unwrap().len()).collect();
        // one row, the total, four pending-account rows
        assert_eq!(widths, vec![CSV_COLUMNS.len(); 1 + 1 + 4]);
    }
}
