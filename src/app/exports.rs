//! Exports left committed but not placed (a one-shot export killed after
//! its commit, a placement that failed) placed from their recorded
//! content: the daemon does it at each listing, so the peer gets them
//! without waiting for the next export.

use super::{AppError, open_store};
use crate::config::Config;
use crate::format::Kind;
use crate::outbound;

/// An export that a crash (or a failed placement) left committed but not
/// placed, finished by [`finish_exports`].
#[derive(Debug)]
pub struct Finished {
    pub link: String,
    pub kind: Kind,
    pub sequences: Vec<u64>,
}

/// Places every committed but unplaced export of every link side this config
/// serves, from its recorded content ([`outbound::export::finish_prepared`];
/// an export whose process is still placing it is left to that process):
/// the daemon calls it at each listing, and `stxd process` before it
/// lists, so a one-shot export killed after its commit reaches the peer
/// without waiting for the next export. A side whose outbox holds no staged
/// name has nothing to place and its store is not opened. Each failure is
/// returned with its side; the others go on.
pub fn finish_exports(config: &Config) -> Vec<Result<Finished, AppError>> {
    let mut out = Vec::new();
    for (link, inst, side) in config.served(None) {
        if !outbound::publish::has_staged(&link.folders(side).outbox, &link.name) {
            continue;
        }
        let kinds: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| k.sender() == side)
            .collect();
        let mut store = match open_store(config, inst) {
            Ok(s) => s,
            Err(e) => {
                out.push(Err(AppError::OnSide {
                    link: link.name.clone(),
                    side,
                    source: Box::new(e),
                }));
                continue;
            }
        };
        for kind in kinds {
            match outbound::export::finish_prepared(&mut store, link, kind, false) {
                Ok(sequences) if sequences.is_empty() => {}
                Ok(sequences) => out.push(Ok(Finished {
                    link: link.name.clone(),
                    kind,
                    sequences,
                })),
                Err(e) => out.push(Err(AppError::FinishExport {
                    kind,
                    link: link.name.clone(),
                    error: Box::new(e),
                })),
            }
        }
    }
    out
}
