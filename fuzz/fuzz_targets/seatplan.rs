//! The `SEATPLAN` payload reader (`stxd::format::seatplan::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

reader_target!(
    seatplan,
    Item,
    |_, _| format_module::Writer::new(Vec::new())
);
