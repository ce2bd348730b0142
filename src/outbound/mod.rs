//! Outbound: records to a published Fichier SecuTix file.
//!
//! `schedule → export → publish`: an export allocates the link's next
//! sequence and streams the records a producer gives ([`export`]: seat plan
//! and catalogue, [`contingent`] snapshots, [`sales`] lines with their
//! acknowledgements) into a payload writer; [`publish`] makes that a durable, complete, signed pair in a
//! folder. Transports carry published pairs further. [`export`] reads the
//! store only through the domain layer and journals the file in the same
//! transaction; [`publish`] never touches the store.

pub mod contingent;
pub mod export;
pub mod publish;
pub mod sales;

pub use publish::{Header, PublishError, publish};
