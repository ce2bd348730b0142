//! Outbound: records to a published Fichier SecuTix file.
//!
//! `schedule → export → publish`: an export allocates the link's next
//! sequence and streams the records a [`Producer`] gives into a payload
//! writer; [`publish`] stages that as a signed pair and places it once the
//! store has bound the sequence to it. Transports carry published pairs
//! further. Modules: [`produce`] (the producer trait), one producer per kind
//! ([`seatplan`], [`catalogue`], [`contingent`], [`sales`]), [`export`] (the
//! protocol: sequence, journal, run, placement, recovery) and [`publish`]
//! (staging and placing files). The producers depend on `produce` only;
//! this module picks the producer of a kind ([`export`](fn@export)).

pub mod catalogue;
pub mod contingent;
pub mod export;
pub mod produce;
pub mod publish;
pub mod sales;
pub mod seatplan;

pub use produce::{Produced, Producer};
pub use publish::{Header, PublishError, publish};

use time::OffsetDateTime;

use crate::config::Link;
use crate::format::Kind;
use crate::format::envelope::Secret;
use crate::store::Store;
use export::{ExportError, Exported};

/// Exports the link's next file of `kind` (every performance's snapshot for
/// a contingent file) with that kind's producer.
pub fn export(
    store: &mut Store,
    link: &Link,
    kind: Kind,
    secret: &Secret,
    now: OffsetDateTime,
) -> Result<Exported, ExportError> {
    let producer: &dyn Producer = match kind {
        Kind::Seatplan => &seatplan::SeatplanPayload,
        Kind::Catalogue => &catalogue::CataloguePayload,
        Kind::Contingent => &contingent::ContingentPayload::all(),
        Kind::Sales => &sales::SalesPayload,
    };
    export::export_with(store, link, producer, secret, now)
}
