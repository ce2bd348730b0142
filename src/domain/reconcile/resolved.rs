//! Lines the manager's ops resolved (`stxd sales resolve`): a dismissed
//! line is no difference (it is listed as resolved, and its amount set
//! aside from the pending account's expectation); an accepted one is
//! booked, compared like any other, and listed as resolved too.

use rusqlite::OptionalExtension;

use super::report::Item;
use super::{DLine, DomainError, Recon};

impl Recon<'_> {
    /// Lists `dl`'s resolution, if any; `true` when it was dismissed (no
    /// more to compare: the manager will never book it).
    pub(super) fn resolved_line(
        &mut self,
        dl: &DLine,
        performance: Option<i64>,
        sequence: i64,
    ) -> Result<bool, DomainError> {
        type Row = (String, String, Option<String>, String, String, String);
        let found: Option<Row> = self
            .m
            .prepare_cached(
                "SELECT decision, code, overridden, reason, by_user, at FROM sales_line_resolution
                 WHERE link = ?1 AND line = ?2",
            )?
            .query_row((self.link, dl.id), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()?;
        let Some((decision, code, overridden, reason, by, at)) = found else {
            return Ok(false);
        };
        let dismissed = decision == "dismissed";
        let what = if dismissed {
            "dismissed (never booked)".to_owned()
        } else {
            format!(
                "accepted, booked with {} overridden",
                overridden.unwrap_or_default()
            )
        };
        self.resolved.push(Item {
            code: if dismissed {
                "line-dismissed"
            } else {
                "line-accepted"
            },
            performance,
            line: Some(dl.id),
            detail: format!(
                "line {} ({}, SALES file {sequence}): rejected at the manager ({code}), {what} by {by} at {at}: {reason}",
                dl.id, dl.operation
            ),
        });
        Ok(dismissed)
    }
}
