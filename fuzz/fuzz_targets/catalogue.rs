//! The `CATALOGUE` payload reader (`stxd::format::catalogue::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

// A version 2 document is written back as version 2 (its rate tables carry
// a version), a version 1 document as version 1.
reader_target!(catalogue, Item, |reader, _| match reader.version() {
    "1" => format_module::Writer::new(Vec::new()),
    _ => format_module::Writer::new_v2(Vec::new()),
});
