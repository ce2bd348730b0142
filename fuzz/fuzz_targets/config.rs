//! The configuration parser (`stxd::config::parse`: TOML, then the whole
//! validation) on any text. Nothing may panic, and a refusal names the
//! source and lists at least one problem with where it is.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // `config::load` refuses a file that is not UTF-8 before parsing.
        return;
    };
    match stxd::config::parse(text, SOURCE) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            assert_eq!(e.source_name, SOURCE);
            assert!(!e.errors.is_empty(), "a refusal without a problem");
            let _ = e.to_string();
        }
    }
});
