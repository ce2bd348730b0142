//! The reconciliation report: what [`reconcile`](super::reconcile) returns,
//! per row and in total, and how its amounts read for people.

use serde::Serialize;

/// The reconciliation of one link.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub link: String,
    /// The manager's institution code.
    pub manager: String,
    /// The distributor's institution code (from its store).
    pub distributor: String,
    /// One per performance × physical seat category, in id order.
    pub rows: Vec<Row>,
    /// The rows summed.
    pub totals: Sides,
    /// Contingent versions per performance.
    pub versions: Vec<Versions>,
    pub pending_account: PendingAccount,
    /// The records disagree: someone must act.
    pub differences: Vec<Item>,
    /// Not differences: files still travelling.
    pub in_flight: Vec<Item>,
    /// Not differences: rejected lines the manager's ops accepted or
    /// dismissed (`stxd sales resolve`), with who, when and why.
    pub resolved: Vec<Item>,
    /// The link's cancelled performances, apart, with their tickets still
    /// to refund (not differences: refunds on their way).
    pub cancelled: Vec<Cancelled>,
}

impl Report {
    /// No difference (in-flight items alone are not differences).
    pub fn is_consistent(&self) -> bool {
        self.differences.is_empty()
    }
}

/// One performance × physical seat category (the manager's).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The manager's performance id.
    pub performance: i64,
    pub performance_code: String,
    pub start: String,
    /// The manager's physical seat category id.
    pub seat_category: i64,
    pub seat_category_code: String,
    #[serde(flatten)]
    pub sides: Sides,
}

/// Both sides' figures for a row or the totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sides {
    pub manager: ManagerSide,
    pub distributor: DistributorSide,
}

/// The manager's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManagerSide {
    /// Seats allotted to the link plus zone quantity.
    pub allotted: u64,
    /// Seats and zone places taken back, waiting for the distributor's
    /// acknowledgement.
    pub awaiting_ack: u64,
    /// Seats and zone places given back to the manager unsold, once their
    /// release was acknowledged.
    pub returned: u64,
    /// Tickets booked from the link's lines (valid and cancelled).
    pub sold: u64,
    /// Tickets cancelled by a refund.
    pub refunded: u64,
    /// Valid tickets of a free tariff (amount 0): invitations.
    pub free: u64,
    /// Sum of the valid tickets, per VAT code and currency.
    pub amounts: Vec<Amount>,
}

/// The distributor's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DistributorSide {
    /// Seats of its contingent plus zone quantity.
    pub in_contingent: u64,
    /// SALE lines.
    pub sold: u64,
    /// REFUND lines.
    pub refunded: u64,
    /// Active sales of a free tariff (amount 0): invitations.
    pub free: u64,
    /// Lines not yet written to a SALES file.
    pub not_exported: u64,
    /// Sum of the active sales, per VAT code and currency.
    pub amounts: Vec<Amount>,
}

/// A sum of money for one VAT code (the manager's id) and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub vat_code: i64,
    /// The manager's code of the VAT code.
    pub vat: String,
    pub currency: String,
    /// Minor units.
    pub minor: i64,
}

/// A sum of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sum {
    pub currency: String,
    pub minor: i64,
}

/// The pending account ("compte d'attente") of the link at the manager
/// against the distributor's sales.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PendingAccount {
    /// Sum of the link's pending-account entries at the manager.
    pub manager_balance: Vec<Sum>,
    /// Sum of the link's valid tickets at the manager.
    pub manager_valid_tickets: Vec<Sum>,
    /// Sum of the distributor's active sales.
    pub distributor_active_sales: Vec<Sum>,
    /// Sales minus refunds not yet at the manager (not exported, or in a
    /// SALES file not yet applied).
    pub in_flight: Vec<Sum>,
    /// Lines the manager dismissed, sales minus refunds: never to be on
    /// the pending account.
    pub dismissed: Vec<Sum>,
}

/// The contingent versions of one performance.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub performance: i64,
    pub performance_code: String,
    /// At the manager: the current version, the last exported, the last
    /// acknowledged (0 when the manager has no allotment for it).
    pub version: i64,
    pub exported: i64,
    pub acknowledged: i64,
    /// The version the distributor applied, if any.
    pub applied: Option<i64>,
}

/// A cancelled performance the link allotted or sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cancelled {
    /// The manager's performance id.
    pub performance: i64,
    pub performance_code: String,
    /// When the manager cancelled it (UTC, whole seconds), when recorded.
    pub cancelled_at: Option<String>,
    /// Its valid tickets at the manager: still to refund.
    pub to_refund: u64,
    /// Its tickets cancelled by a refund.
    pub refunded: u64,
    /// The distributor's sales of it still active there (dismissed ones
    /// included: the customer is refunded all the same).
    pub active_at_distributor: u64,
}

impl Cancelled {
    /// `all-refunded`, or `tickets-to-refund` while a ticket or a sale of it
    /// is still valid on either side.
    pub fn code(&self) -> &'static str {
        if self.to_refund == 0 && self.active_at_distributor == 0 {
            "all-refunded"
        } else {
            "tickets-to-refund"
        }
    }

    /// The performance's refunds, in words.
    pub fn detail(&self) -> String {
        let at = self
            .cancelled_at
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        format!(
            "performance {} {} cancelled{at}: {} ticket(s) still to refund at the manager ({} refunded), {} sale(s) still active at the distributor",
            self.performance,
            self.performance_code,
            self.to_refund,
            self.refunded,
            self.active_at_distributor
        )
    }
}

/// A difference or an in-flight item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Stable kebab-case code (see the module doc).
    pub code: &'static str,
    /// The manager's performance id, when the item concerns one.
    pub performance: Option<i64>,
    /// The distributor's line id, when the item concerns one.
    pub line: Option<i64>,
    /// What differs, in words.
    pub detail: String,
}

/// Formats minor units for people: `1,234.50 EUR`, `-12.00 EUR`. Integer
/// arithmetic only.
pub fn format_amount(minor: i64, currency: &str) -> String {
    let abs = minor.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{:02} {currency}", abs % 100)
}

/// Formats a list of sums (`85.00 EUR + 12.00 CHF`; `0.00` when empty).
pub fn format_sums(sums: &[Sum]) -> String {
    if sums.is_empty() {
        return "0.00".to_owned();
    }
    sums.iter()
        .map(|s| format_amount(s.minor, &s.currency))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Formats amounts per VAT code (`TVA55 85.00 EUR; …`; empty when none).
pub fn format_amounts(amounts: &[Amount]) -> String {
    amounts
        .iter()
        .map(|a| format!("{} {}", a.vat, format_amount(a.minor, &a.currency)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(format_amount(0, "EUR"), "0.00 EUR");
        assert_eq!(format_amount(5, "EUR"), "0.05 EUR");
        assert_eq!(format_amount(8500, "EUR"), "85.00 EUR");
        assert_eq!(format_amount(123_450, "EUR"), "1,234.50 EUR");
        assert_eq!(format_amount(100_000_000, "EUR"), "1,000,000.00 EUR");
        assert_eq!(format_amount(-4250, "EUR"), "-42.50 EUR");
        assert_eq!(format_amount(-123_456_789, "CHF"), "-1,234,567.89 CHF");
        assert_eq!(
            format_amount(i64::MIN, "EUR"),
            "-92,233,720,368,547,758.08 EUR"
        );
    }

    #[test]
    fn sums_and_amounts_read_as_lists() {
        assert_eq!(format_sums(&[]), "0.00");
        let s = |c: &str, m| Sum {
            currency: c.into(),
            minor: m,
        };
        assert_eq!(
            format_sums(&[s("CHF", 100), s("EUR", 250)]),
            "1.00 CHF + 2.50 EUR"
        );
        let a = Amount {
            vat_code: 1101,
            vat: "TVA55".into(),
            currency: "EUR".into(),
            minor: 11_000,
        };
        assert_eq!(format_amounts(&[a]), "TVA55 110.00 EUR");
    }
}
