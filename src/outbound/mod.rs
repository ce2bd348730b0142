//! Outbound: records to a published Fichier SecuTix file.
//!
//! `schedule → export → publish`: an export (the catalogue and sales flows)
//! allocates the link's next sequence and streams records into a payload
//! writer; [`publish`] makes that a durable, complete, signed pair in a
//! folder. Transports carry published pairs further. This module never reads
//! the store itself.

pub mod publish;

pub use publish::{Header, PublishError, publish};
