//! The `CONTINGENT` payload reader (`stxd::format::contingent::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

// RESOLUTION lines need the header's resolution columns; a file without
// one is written back with the version 1 header.
reader_target!(contingent, Line, |_, lines| {
    if lines
        .iter()
        .any(|l| matches!(l, format_module::Line::Resolution { .. }))
    {
        format_module::Writer::with_resolutions(Vec::new())
    } else {
        format_module::Writer::new(Vec::new())
    }
});
