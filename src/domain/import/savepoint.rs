//! A SAVEPOINT inside the caller's transaction, for the imports' all or
//! nothing: opened when an importer is created, released when the file
//! applies, rolled back when it parks or is dropped unfinished.

use rusqlite::Transaction;

use crate::domain::DomainError;

/// A SAVEPOINT in the caller's transaction (rusqlite's own needs `&mut`).
/// Rolled back when dropped without [`Savepoint::release`].
pub(super) struct Savepoint<'t> {
    tx: &'t Transaction<'t>,
    name: &'static str,
    open: bool,
}

impl<'t> Savepoint<'t> {
    pub(super) fn open(
        tx: &'t Transaction<'t>,
        name: &'static str,
    ) -> Result<Savepoint<'t>, DomainError> {
        tx.execute_batch(&format!("SAVEPOINT {name}"))?;
        Ok(Savepoint {
            tx,
            name,
            open: true,
        })
    }

    pub(super) fn release(&mut self) -> Result<(), DomainError> {
        if self.open {
            self.open = false;
            self.tx.execute_batch(&format!("RELEASE {}", self.name))?;
        }
        Ok(())
    }

    pub(super) fn rollback(&mut self) -> Result<(), DomainError> {
        if self.open {
            self.open = false;
            self.tx.execute_batch(&format!(
                "ROLLBACK TO {name}; RELEASE {name}",
                name = self.name
            ))?;
        }
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        // Best effort: the caller's transaction is rolled back anyway when an
        // import fails; this only keeps an abandoned import from committing.
        let _ = self.rollback();
    }
}
