//! The `SALES` payload reader (`stxd::format::sales::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

reader_target!(sales, Line);
