//! The `SALES` payload reader (`stxd::format::sales::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

// A version 2 file is written back as version 2 (its lines carry a
// `rate_version`), with the `logical_seat_category` column when it had it;
// a version 1 file as version 1.
reader_target!(sales, Line, |reader, _| match reader.version() {
    1 => format_module::Writer::new(Vec::new()),
    _ if reader.has_logical_column() => format_module::Writer::new_v2_logical(Vec::new()),
    _ => format_module::Writer::new_v2(Vec::new()),
});
