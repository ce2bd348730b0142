//! Safe CSV reading and writing shared by the CSV payloads (`CONTINGENT`,
//! `SALES`): `;`-separated UTF-8 with a header row, every field checked with
//! its line and column.
//!
//! Takes bytes from a [`BufRead`](std::io::BufRead), yields one [`Row`] at a time (the columns
//! already mapped by name to the payload's canonical order), and offers the
//! field parsers the payloads share. It knows nothing of what a line means:
//! which fields a line type needs is the payload module's business.
//!
//! The dialect, strictly:
//! - `;` between fields, `"` quotes fields (a doubled `""` inside), nothing
//!   after a closing quote but `;` or the line end;
//! - UTF-8; one leading byte order mark (U+FEFF, written by spreadsheets) is
//!   skipped; U+FEFF anywhere else, NUL and every other control character
//!   (tab included) in a field are refused;
//! - line ends are LF or CRLF, one kind per file; no blank line; no line break
//!   inside a quoted field (no field of ours needs one), so one record is one
//!   physical line and line numbers are physical lines, header = line 1;
//! - header first, columns mapped by name in any order; unknown, missing and
//!   duplicated columns are refused; a header alone is a valid empty file;
//! - fields are never trimmed: a space is an error of the field's type.
//!
//! Memory is bounded before anything is buffered: the input passes through a
//! guard that counts bytes per physical line and per file and stops at
//! [`Limits::max_record_bytes`](super::Limits::max_record_bytes) /
//! [`Limits::max_file_bytes`](super::Limits::max_file_bytes), so a 10 MB line
//! is refused after 16 KiB, not after reading it. The guard also enforces the
//! quoting and line-end rules above, which the `csv` crate would accept
//! silently (it skips blank lines, accepts a bare CR as a line end, text after
//! a closing quote and an unclosed quote at end of file).
//!
//! A file cut short in the middle of a field (`45` for `4500`) still reads as
//! a valid file: catching truncation is the envelope's job (size, count,
//! digest), never this parser's.
//!
//! Writing is the mirror: [`CsvWriter`] emits the header in canonical order,
//! `;`, LF, a final newline and no quoting, and refuses any value that would
//! need quoting (validated values never do).
//!
//! One file per part: `guard` (the bounded, strict physical lines), `fields`
//! (the field parsers), `reader` ([`CsvReader`], [`Row`]) and `writer`
//! ([`CsvWriter`]); this module re-exports their public items.

mod fields;
mod guard;
mod reader;
mod writer;

pub use fields::{
    FieldError, format_time, parse_amount, parse_choice, parse_code, parse_currency, parse_id,
    parse_number, parse_quantity, parse_time,
};
pub use reader::{CsvReader, Row};
pub use writer::CsvWriter;

/// Counts the heap bytes each thread holds, so streaming tests can assert
/// that a reader's memory stays flat. Installed as the global allocator of
/// the library's unit-test binary only.
#[cfg(test)]
pub(crate) mod meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<i64> = const { Cell::new(0) };
    }

    fn add(delta: i64) {
        // During thread teardown the counter may be gone: nothing to count.
        let _ = LIVE.try_with(|c| c.set(c.get() + delta));
    }

    /// Heap bytes allocated and not yet freed by the calling thread.
    pub(crate) fn live() -> i64 {
        LIVE.try_with(Cell::get).unwrap_or(0)
    }

    pub(crate) struct Meter;

    // SAFETY: every call is forwarded unchanged to the system allocator; the
    // counting touches a thread-local `Cell` only.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                add(layout.size() as i64);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                add(layout.size() as i64);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) };
            add(-(layout.size() as i64));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                add(new_size as i64 - layout.size() as i64);
            }
            p
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{self, BufRead, Read};

    use super::*;
    use crate::format::{Limits, Position};

    const COLS: [&str; 3] = ["a", "b", "c"];

    type Rows = Vec<(u64, Vec<String>)>;
    type Failure = (String, String);

    /// Reads every row of `input` as (line, [a, b, c]), or the first error
    /// as (code, position).
    fn read_all(input: &[u8], limits: Limits) -> Result<Rows, Failure> {
        let mut r = CsvReader::new(input, "t.csv", limits, &COLS);
        let mut rows = Vec::new();
        loop {
            match r.next_row() {
                Ok(Some(row)) => {
                    rows.push((row.line(), (0..3).map(|c| row.text(c).to_owned()).collect()))
                }
                Ok(None) => return Ok(rows),
                Err(e) => return Err((e.code.to_owned(), e.position.to_string())),
            }
        }
    }

    fn err(input: &[u8]) -> Failure {
        match read_all(input, Limits::default()) {
            Ok(rows) => panic!("accepted: {rows:?}"),
            Err(e) => e,
        }
    }

    fn ok(input: &[u8]) -> Rows {
        match read_all(input, Limits::default()) {
            Ok(rows) => rows,
            Err(e) => panic!("refused: {e:?}"),
        }
    }

    fn e(code: &str, pos: &str) -> Failure {
        (code.to_owned(), pos.to_owned())
    }

    #[test]
    fn maps_columns_by_name_in_any_order() {
        let rows = ok(b"c;a;b\n3;1;2\n\"z\";\"x\"\"\";y\n");
        assert_eq!(rows[0], (2, vec!["1".into(), "2".into(), "3".into()]));
        assert_eq!(rows[1], (3, vec!["x\"".into(), "y".into(), "z".into()]));
    }

    #[test]
    fn header_alone_is_an_empty_file_and_no_header_is_an_error() {
        assert!(ok(b"a;b;c\n").is_empty());
        assert!(ok(b"a;b;c").is_empty());
        assert_eq!(err(b""), e("csv-empty", "line 1"));
        assert_eq!(err(b"\xEF\xBB\xBF"), e("csv-empty", "line 1"));
    }

    #[test]
    fn accepts_one_leading_bom_crlf_and_a_missing_final_newline() {
        let rows = ok(b"\xEF\xBB\xBFa;b;c\r\n1;2;3\r\n4;5;6");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], (3, vec!["4".into(), "5".into(), "6".into()]));
        assert_eq!(
            err(b"\xEF\xBB\xBF\xEF\xBB\xBFa;b;c\n"),
            e("csv-bom", "line 1")
        );
        assert_eq!(
            err(b"a;b;c\n1;\xEF\xBB\xBF2;3\n"),
            e("csv-bom", "line 2, field b")
        );
    }

    #[test]
    fn a_short_first_read_is_not_mistaken_for_a_bom() {
        // One byte per read at the head: the replay path.
        let input = io::BufReader::with_capacity(1, &b"a;b;c\n1;2;3\n"[..]);
        let mut r = CsvReader::new(input, "t.csv", Limits::default(), &COLS);
        let row = r.next_row().unwrap().unwrap();
        assert_eq!(row.text(2), "3");
        assert!(r.next_row().unwrap().is_none());
        assert_eq!(r.records(), 1);
    }

    #[test]
    fn header_problems_are_named() {
        assert_eq!(err(b"a;b;x\n"), e("csv-unknown-column", "line 1, field x"));
        assert_eq!(
            err(b"a;b;b;c\n"),
            e("csv-duplicate-column", "line 1, field b")
        );
        assert_eq!(err(b"a;c\n"), e("csv-missing-column", "line 1, field b"));
        assert_eq!(err(b"a,b,c\n"), e("csv-delimiter", "line 1"));
        assert_eq!(
            err(b"a;b;c \n"),
            e("csv-unknown-column", "line 1, field c ")
        );
    }

    #[test]
    fn record_shape_problems_carry_the_line() {
        assert_eq!(err(b"a;b;c\n1;2;3\n1;2\n"), e("csv-field-count", "line 3"));
        assert_eq!(err(b"a;b;c\n1;2;3;4\n"), e("csv-field-count", "line 2"));
        assert_eq!(
            err(b"a;b;c\n1;2;3\n\n4;5;6\n"),
            e("csv-blank-line", "line 3")
        );
        assert_eq!(err(b"a;b;c\n1;2;3\n\n"), e("csv-blank-line", "line 3"));
        assert_eq!(
            err(b"a;b;c\n1;\"2\"x;3\n"),
            e("csv-quote", "line 2, field b")
        );
    }

    #[test]
    fn quotes_may_not_span_lines_nor_stay_open() {
        assert_eq!(
            err(b"a;b;c\n1;\"2\n\";3\n"),
            e("csv-line-break", "line 2, field b")
        );
        assert_eq!(
            err(b"a;b;c\n1;2;\"3\r\n\"\n"),
            e("csv-line-break", "line 2, field c")
        );
        assert_eq!(
            err(b"a;b;c\n1;2;\"3"),
            e("csv-unclosed-quote", "line 2, field c")
        );
    }

    #[test]
    fn line_ends_are_lf_or_crlf_never_mixed() {
        assert_eq!(err(b"a;b;c\n1;2;3\r\n"), e("csv-line-ends", "line 2"));
        assert_eq!(err(b"a;b;c\r\n1;2;3\n"), e("csv-line-ends", "line 2"));
        assert_eq!(err(b"a;b;c\r1;2;3\r"), e("csv-line-ends", "line 1"));
        assert_eq!(err(b"a;b;c\n1;2;3\r"), e("csv-line-ends", "line 2"));
    }

    #[test]
    fn a_cr_split_from_its_lf_across_reads_is_still_a_crlf() {
        let input = io::BufReader::with_capacity(4, &b"a;b;c\r\n1;2;3\r\n"[..]);
        let rows = read_all_buf(input);
        assert_eq!(rows, vec![(2, vec!["1".into(), "2".into(), "3".into()])]);
    }

    fn read_all_buf<R: BufRead>(input: R) -> Rows {
        let mut r = CsvReader::new(input, "t.csv", Limits::default(), &COLS);
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push((row.line(), (0..3).map(|c| row.text(c).to_owned()).collect()));
        }
        rows
    }

    #[test]
    fn fields_are_checked_for_utf8_and_control_characters() {
        assert_eq!(err(b"a;b;c\n1;2;\xff\n"), e("csv-utf8", "line 2, field c"));
        assert_eq!(
            err(b"a;b;c\n1;\x002;3\n"),
            e("csv-control", "line 2, field b")
        );
        assert_eq!(
            err(b"a;b;c\n\t1;2;3\n"),
            e("csv-control", "line 2, field a")
        );
        // Fields are not trimmed.
        assert_eq!(ok(b"a;b;c\n 1;2;3 \n")[0].1, vec![" 1", "2", "3 "]);
    }

    #[test]
    fn limits_stop_before_buffering() {
        let limits = Limits {
            max_field_bytes: 4,
            max_record_bytes: 12,
            max_file_bytes: 40,
            max_records: 2,
            ..Limits::default()
        };
        let run = |input: &[u8]| read_all(input, limits).map(|r| r.len());
        assert_eq!(run(b"a;b;c\n1;2;3\n"), Ok(1));
        assert_eq!(
            run(b"a;b;c\n1;12345;3\n"),
            Err(e("csv-too-long", "line 2, field b"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;34567890\n"),
            Err(e("csv-too-long", "line 2, field c"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;3\n1;2;3\n1;2;3\n"),
            Err(e("csv-too-many-records", "whole file"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;3\n1;2;3\n1;2;3\n1;2;3\n1;2;3\n"),
            Err(e("csv-too-many-records", "whole file"))
        );
        let big = Limits {
            max_file_bytes: 14,
            ..Limits::default()
        };
        assert_eq!(
            read_all(b"a;b;c\n1;2;3\n4;5;6\n", big).map(|r| r.len()),
            Err(e("csv-file-too-large", "whole file"))
        );
    }

    /// An endless line: if the guard buffered before checking, this would
    /// never return.
    #[test]
    fn an_endless_line_is_refused_at_the_limit() {
        let endless = b"a;b;c\n1;".chain(io::repeat(b'x'));
        let mut r = CsvReader::new(
            io::BufReader::new(endless),
            "t.csv",
            Limits::default(),
            &COLS,
        );
        let e = r.next_row().unwrap_err();
        assert_eq!(e.code, "csv-too-long");
        assert_eq!(e.position, Position::field(2, "b"));
        assert!(
            r.next_row().unwrap().is_none(),
            "reader goes on after an error"
        );
    }

    #[test]
    fn number_parsers_accept_plain_digits_only() {
        assert_eq!(parse_number("1"), Ok(1));
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            "1e3",
            "1.0",
            "1,000",
            "1 000",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_number(bad).unwrap_err().code, "bad-number", "{bad:?}");
        }
        assert_eq!(parse_quantity("20"), Ok(20));
        for bad in ["0", "4294967296", "-2", "020"] {
            assert_eq!(
                parse_quantity(bad).unwrap_err().code,
                "bad-number",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_and_amounts_refuse_formula_and_spaced_values() {
        assert!(parse_code("A").is_ok());
        for bad in ["-1", "=1", "+1", "@A", "A B", " A"] {
            assert_eq!(parse_code(bad).unwrap_err().code, "bad-code", "{bad:?}");
        }
        assert_eq!(parse_amount("8500"), Ok(8500));
        assert_eq!(parse_amount(" 8500").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("8500 ").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("=8500").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("-8500").unwrap_err().code, "money-negative");
    }

    #[test]
    fn times_are_canonical_utc_whole_seconds() {
        let t = parse_time("2026-12-01T10:15:00Z").unwrap();
        assert_eq!(format_time(t).unwrap(), "2026-12-01T10:15:00Z");
        for bad in [
            "2026-12-01T10:15:00+00:00",
            "2026-12-01T10:15:00+01:00",
            "2026-12-01T10:15:00.5Z",
            "2026-12-01T10:15:00.000Z",
            "2026-12-01t10:15:00z",
            "2026-12-01 10:15:00Z",
            "2026-12-01T10:15Z",
            "2026-12-01",
            "",
        ] {
            assert_eq!(parse_time(bad).unwrap_err().code, "bad-time", "{bad:?}");
        }
        let paris = t.to_offset(time::macros::offset!(+1));
        assert!(format_time(paris).is_err());
    }

    #[test]
    fn choice_lists_the_expected_words() {
        let e = parse_choice("X", &[("SALE", 1), ("ACK", 2)]).unwrap_err();
        assert_eq!(e.code, "bad-value");
        assert_eq!(e.problem, "expected one of SALE, ACK, found \"X\"");
    }

    #[test]
    fn writer_is_canonical_and_refuses_values_needing_quotes() {
        let mut w = CsvWriter::new(Vec::new(), &COLS).unwrap();
        w.field(1).unwrap();
        w.empty();
        w.field("x").unwrap();
        w.end_line().unwrap();
        assert!(w.field("a;b").is_err());
        w.field("a").unwrap();
        assert!(w.end_line().is_err(), "short line accepted");
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, 1);
        assert_eq!(out, b"a;b;c\n1;;x\n");
    }
}
