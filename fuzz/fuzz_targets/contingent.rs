//! The `CONTINGENT` payload reader (`stxd::format::contingent::Reader`) on any bytes;
//! see `common.rs` for what is checked.
#![no_main]

#[path = "common.rs"]
#[macro_use]
mod common;

reader_target!(contingent, Line);
