//! The mapping CSV import (`stxd::domain::mapping::import`) on any bytes,
//! into a real SQLite store: the distributor TOURISM of the samples, created
//! once in a temporary folder and loaded with `samples/tourism/` (its local
//! master data), so that filled rows can name real local codes.
//!
//! Each input is imported in one transaction that is always rolled back, so
//! every run starts from the same store. Nothing may panic; the import
//! either applies (and counts every row) or refuses with the file named and
//! at least one problem, each with a code, never with a store error (bad
//! input is refused before it reaches SQL).
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use stxd::domain::mapping::{self, ImportError, MAX_LISTED};
use stxd::exchange::Role;
use stxd::store::{Store, StoreError};

const FILE: &str = "fuzz-mapping.csv";

/// The store and the folder it lives in (removed at exit).
struct Tourism {
    store: Store,
    _dir: tempfile::TempDir,
}

impl Tourism {
    fn new() -> Tourism {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut store = Store::open(
            &dir.path().join("TOURISM.sqlite"),
            "TOURISM",
            Role::Distributor,
        )
        .expect("the store opens");
        let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/tourism");
        stxd::app::load(
            &mut store,
            &[samples.join("reference.xml"), samples.join("setup.toml")],
        )
        .expect("the samples load");
        Tourism { store, _dir: dir }
    }
}

thread_local! {
    static TOURISM: RefCell<Tourism> = RefCell::new(Tourism::new());
}

/// Ends the transaction without committing, after the import's outcome was
/// checked.
enum Rollback {
    Checked,
    Store(StoreError),
}

impl From<StoreError> for Rollback {
    fn from(e: StoreError) -> Rollback {
        Rollback::Store(e)
    }
}

fuzz_target!(|data: &[u8]| {
    TOURISM.with_borrow_mut(|t| {
        let outcome = t.store.write(|tx| {
            match mapping::import(tx, "OPERA", data, FILE) {
                Ok(s) => {
                    assert_eq!(s.rows, s.created + s.changed + s.unchanged);
                    assert!(s.changes.len() <= MAX_LISTED);
                }
                Err(ImportError::Rejected(e)) => {
                    assert_eq!(e.file, FILE);
                    assert!(!e.errors.is_empty(), "a refusal without a problem");
                    assert!(e.errors.len() <= MAX_LISTED + 1);
                    for p in &e.errors {
                        assert_eq!(p.file, FILE, "a problem that does not name the file: {p}");
                        assert!(!p.code.is_empty() && !p.problem.is_empty(), "{p}");
                    }
                    let _ = e.to_string();
                }
                Err(ImportError::Domain(e)) => panic!("the import failed in the store: {e}"),
            }
            Err::<(), _>(Rollback::Checked)
        });
        match outcome {
            Err(Rollback::Checked) => {}
            Ok(()) => unreachable!(),
            Err(Rollback::Store(e)) => panic!("the store failed: {e}"),
        }
    });
});
