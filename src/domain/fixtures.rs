//! Stores for the domain's unit tests (test builds only), so each test module
//! starts from the same institutions without going through the application
//! layer.
//!
//! [`tourism`] takes a folder and returns the distributor `TOURISM`'s empty
//! store in it; [`opera`] returns the manager `OPERA`'s store in a new
//! temporary folder (kept alive by the returned guard), loaded with the
//! samples' seat plan, catalogue and setup file through [`super::load`].

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::{DomainError, load};
use crate::format::{Limits, catalogue, seatplan};
use crate::store::{Role, Store};

/// The distributor `TOURISM`'s store, empty, in `dir`.
pub(crate) fn tourism(dir: &Path) -> Store {
    Store::open(&dir.join("d.sqlite"), "TOURISM", Role::Distributor).unwrap()
}

/// The manager `OPERA`'s store with `samples/opera` loaded (seat plan,
/// catalogue, setup file, in that order and in one transaction).
pub(crate) fn opera() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("OPERA.sqlite"), "OPERA", Role::Manager).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/opera");
    let open = |name: &str| {
        let path = root.join(name);
        let file = File::open(&path).unwrap();
        (BufReader::new(file), path.display().to_string())
    };
    store
        .write(|tx| -> Result<(), DomainError> {
            let (input, name) = open("seatplan.xml");
            for item in seatplan::Reader::new(input, &name, Limits::default()) {
                load::seatplan_item(tx, &item?)?;
            }
            let (input, name) = open("catalogue.xml");
            for item in catalogue::Reader::new(input, &name, Limits::default()) {
                load::catalogue_item(tx, &item?)?;
            }
            load::catalogue_done(tx)?;
            load::setup_file(tx, &root.join("setup.toml"))?;
            Ok(())
        })
        .unwrap();
    (dir, store)
}
