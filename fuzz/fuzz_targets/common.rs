//! What every payload reader target checks, whatever the input:
//!
//! - the reader never panics and always ends (its byte guards bound memory
//!   and time with the crate's real `Limits`, as the daemon uses them);
//! - after the first error it yields nothing more, and the error names the
//!   file, carries a stable code and says what was expected;
//! - `records()` counts the records it yielded (the CSV readers, the lines
//!   read: one more when the last one was refused);
//! - a document read whole without error, written back by the kind's
//!   writer in the same format version (the target's `open` says which
//!   writer, from the reader and the records), reads back as the same
//!   records (the reader accepts nothing the writer cannot say, and the
//!   writer writes nothing the reader refuses).

use stxd::format::FormatError;

/// The name the targets give their input; every error must carry it.
pub const FILE: &str = "fuzz-input";

/// An error names the file, carries a code and a problem, and renders.
pub fn check_error(e: &FormatError) {
    assert_eq!(e.file, FILE, "error does not name the file: {e}");
    assert!(!e.code.is_empty(), "error without a code: {e}");
    assert!(!e.problem.is_empty(), "error without a problem: {e}");
    let _ = e.to_string();
}

/// The body of a payload reader target for the format module `$m`, whose
/// records are `$item`s (`Reader::new(BufRead, file, Limits)`, `records()`, and a `Writer`).
/// `$open` opens the writer for a document read whole: called with the
/// reader (which knows the version it read) and the records.
macro_rules! reader_target {
    ($m:ident, $item:ident, $open:expr) => {
        use stxd::format::$m as format_module;

        type Open = fn(
            &format_module::Reader<&[u8]>,
            &[format_module::$item],
        ) -> Result<format_module::Writer<Vec<u8>>, stxd::format::WriteError>;

        /// Reads `data` whole; `Some(records, writer)` when it was read
        /// without error, with the writer that writes its version.
        fn read_all(
            data: &[u8],
        ) -> Option<(Vec<format_module::$item>, format_module::Writer<Vec<u8>>)> {
            let mut reader =
                format_module::Reader::new(data, common::FILE, stxd::format::Limits::default());
            let mut items = Vec::new();
            loop {
                match reader.next() {
                    Some(Ok(item)) => {
                        items.push(item);
                        assert_eq!(reader.records(), items.len() as u64);
                    }
                    Some(Err(e)) => {
                        common::check_error(&e);
                        assert!(reader.next().is_none(), "the reader yielded after an error");
                        // The CSV readers count the refused line as read.
                        let (n, read) = (items.len() as u64, reader.records());
                        assert!(
                            read == n || read == n + 1,
                            "{read} records read, {n} yielded"
                        );
                        return None;
                    }
                    None => {
                        assert!(reader.next().is_none(), "the reader yielded after its end");
                        let open: Open = $open;
                        let writer = open(&reader, &items).expect("a writer opens on a Vec");
                        return Some((items, writer));
                    }
                }
            }
        }

        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            let Some((items, mut writer)) = read_all(data) else {
                return;
            };
            for item in &items {
                writer.write(item).unwrap_or_else(|e| {
                    panic!("the writer refused a record the reader accepted: {e}: {item:?}")
                });
            }
            let (out, written) = writer.finish().expect("the writer closes");
            assert_eq!(written, items.len() as u64);
            match read_all(&out) {
                Some((again, _)) => {
                    assert_eq!(again, items, "records changed through write and read")
                }
                None => panic!(
                    "the reader refused what the writer wrote:\n{}",
                    String::from_utf8_lossy(&out)
                ),
            }
        });
    };
}
