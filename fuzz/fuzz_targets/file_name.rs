//! The exchange file-name parser (`stxd::exchange::FileName::parse` and
//! `parse_manifest`) on any string. Nothing may panic, and a name it
//! accepts is the canonical name of what it parsed: printing it gives the
//! same string back, its pair is of the other half, and the pair of its
//! pair is itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stxd::exchange::{FileName, Part};

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    let manifest = FileName::parse_manifest(&name);
    match FileName::parse(&name) {
        Ok(n) => {
            assert_eq!(n.to_string(), name, "a parsed name prints differently");
            assert!(FileName::valid_link(&n.link));
            assert!(n.sequence <= 99_999_999);
            assert_eq!(manifest.is_ok(), n.part == Part::Manifest);
            let pair = n.pair();
            assert_ne!(pair.part, n.part);
            assert_eq!(pair.pair(), n);
            assert_eq!(FileName::parse(&pair.to_string()).as_ref(), Ok(&pair));
        }
        Err(e) => {
            assert!(manifest.is_err());
            let _ = e.to_string();
        }
    }
});
