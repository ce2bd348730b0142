//! The manager telling the distributor its resolutions: each resolution of
//! a link's line (accepted or dismissed, `stxd sales resolve`, or closed by
//! the reintegration as the refund of an unbooked sale) goes out once, as a
//! `RESOLUTION` line of the link's next CONTINGENT file.
//!
//! [`untold`] counts what waits; [`tell`] streams it and marks each row
//! with the CONTINGENT sequence that carries it (`told_in`), in the
//! export's write transaction: the mark commits with the sequence's journal
//! row and its bytes, or not at all, so a resolution is carried by exactly
//! one sequence (a crash before the commit leaves it untold for the next
//! export; after it, the recorded bytes are placed again, never re-made).

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::export::ExportError;
use crate::format::WriteError;
use crate::format::contingent::{Decision, Line};

/// The longest reason a RESOLUTION line carries, in bytes (the CSV field
/// limit is 1024): a longer one is cut at a character boundary, with `…`.
const MAX_REASON_BYTES: usize = 1000;

/// Resolutions of `link`'s lines not yet told to the distributor.
pub fn untold(conn: &Connection, link: &str) -> Result<u64, rusqlite::Error> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM sales_line_resolution WHERE link = ?1 AND told_in IS NULL",
        )?
        .query_row([link], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Streams every resolution of `link` not yet told, in line order, as
/// RESOLUTION lines, and marks them told in `sequence` (the CONTINGENT
/// file being exported). Returns how many.
pub fn tell(
    conn: &Connection,
    link: &str,
    sequence: u64,
    emit: &mut dyn FnMut(&Line) -> Result<(), WriteError>,
) -> Result<u64, ExportError> {
    let bad = |object: String, problem: String| ExportError::BadData { object, problem };
    let mut told = 0;
    {
        let mut st = conn.prepare_cached(
            "SELECT line, decision, reason, at FROM sales_line_resolution
             WHERE link = ?1 AND told_in IS NULL ORDER BY line",
        )?;
        let mut rows = st.query([link])?;
        while let Some(r) = rows.next()? {
            let (line, decision, reason, at): (i64, String, String, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let object = || format!("resolution of line id {line} of link {link}");
            let decision = Decision::parse(&decision)
                .ok_or_else(|| bad(object(), format!("unknown decision {decision:?}")))?;
            let decided = OffsetDateTime::parse(&at, &Rfc3339)
                .map_err(|e| bad(object(), format!("time {at:?}: {e}")))?
                .replace_nanosecond(0)
                .map_err(|e| bad(object(), e.to_string()))?;
            emit(&Line::Resolution {
                line: u64::try_from(line).map_err(|_| bad(object(), "negative".to_owned()))?,
                decision,
                reason: on_the_wire(&reason),
                decided,
            })?;
            told += 1;
        }
    }
    let sequence = i64::try_from(sequence).map_err(|_| {
        bad(
            format!("CONTINGENT sequence {sequence}"),
            "out of range".to_owned(),
        )
    })?;
    conn.prepare_cached(
        "UPDATE sales_line_resolution SET told_in = ?2 WHERE link = ?1 AND told_in IS NULL",
    )?
    .execute((link, sequence))?;
    Ok(told)
}

/// The reason as the unquoted CSV field can carry it: `;` becomes `,`, `"`
/// becomes `'`, a control character a space, and it is cut to
/// [`MAX_REASON_BYTES`].
pub fn on_the_wire(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_BYTES));
    for c in reason.chars() {
        let c = match c {
            ';' => ',',
            '"' => '\'',
            '\u{feff}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > MAX_REASON_BYTES - '…'.len_utf8() {
            out.push('…');
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() {
        out = "no reason given".to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::on_the_wire;

    #[test]
    fn a_reason_is_made_fit_for_the_csv_field() {
        assert_eq!(on_the_wire("a; b \"c\"\td"), "a, b 'c' d");
        let long = "é".repeat(800);
        let wire = on_the_wire(&long);
        assert!(wire.len() <= 1000 && wire.ends_with('…'), "{}", wire.len());
        assert_eq!(on_the_wire("\t"), "no reason given");
    }
}
