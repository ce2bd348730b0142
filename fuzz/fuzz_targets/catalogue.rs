//! The `CATALOGUE` payload reader (`stxd::format::catalogue::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

reader_target!(catalogue, Item);
