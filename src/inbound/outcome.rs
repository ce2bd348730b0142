//! The fate of a processed file: one flat [`Outcome`], with the reasons a
//! file waits ([`Hold`]) or is set aside ([`Stray`]) as enums whose
//! `.code()` is the stable string of reason files, JSON and logs.

use super::InboundError;
use super::apply::Applied;
use crate::domain::import::Missing;

/// Why a file stays in its inbox, untouched, to be tried again at the next
/// listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// An earlier sequence is missing, late or parked.
    SequenceGap,
    /// Its payload is not beside its manifest yet (within `[daemon]
    /// payload_grace_seconds`).
    PayloadPending,
    /// Another stxd process took it from the folder and finishes it.
    Taken,
    /// A kind this side does not apply.
    KindNotHandled,
    /// A directory named like a manifest: never read nor moved.
    Directory,
    /// The store lacks (or has out of operation) an object the file needs:
    /// the sequence is not consumed; it applies once the setup is fixed.
    Setup,
}

impl Hold {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Hold::SequenceGap => "sequence-gap",
            Hold::PayloadPending => "payload-pending",
            Hold::Taken => "taken",
            Hold::KindNotHandled => "kind-not-handled",
            Hold::Directory => "directory",
            Hold::Setup => "setup",
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a file was set aside into `quarantine/`: it is not for the folder it
/// was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    /// Sequence 0 is never sent.
    SequenceZero,
    /// Named for a link this config does not have.
    UnknownLink,
    /// Named for another link of this config.
    OtherLink,
    /// A kind the folder's side does not receive.
    WrongFolder,
}

impl Stray {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Stray::SequenceZero => "sequence-zero",
            Stray::UnknownLink => "unknown-link",
            Stray::OtherLink => "other-link",
            Stray::WrongFolder => "wrong-folder",
        }
    }
}

impl std::fmt::Display for Stray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What became of a file. A transient failure (I/O, a busy store) is not an
/// outcome: the file stays where it is and the caller gets an `Err`.
#[derive(Debug)]
pub enum Outcome {
    /// Applied entirely, in one transaction with its journal row (a sales
    /// file's rejected lines are part of what was applied: kept with their
    /// reasons for ops).
    Applied { run: i64, summary: Applied },
    /// Needs mappings that are pending: nothing applied but the pending
    /// mapping rows; resumes once they are filled.
    Parked { run: i64, missing: Vec<Missing> },
    /// This exact file was applied before: nothing done.
    AlreadyApplied { sequence: u64 },
    /// Not its turn, not ready, or not for this process: the file stays
    /// where it is.
    Held { hold: Hold, reason: String },
    /// A stray, foreign or misrouted file (an unknown link, a kind this
    /// folder's side does not receive, another link's name, sequence 0):
    /// set aside whole into the inbox's `quarantine/` with its `.reason`,
    /// never read further; `stxd retry` puts it back once the cause is
    /// fixed.
    Quarantined { stray: Stray, reason: String },
    /// Refused for good: the file is in `error/` with a `.reason`.
    Rejected(InboundError),
}

impl Outcome {
    /// Held for a sequence gap: an earlier file is missing, late or parked.
    pub fn is_sequence_gap(&self) -> bool {
        matches!(
            self,
            Outcome::Held {
                hold: Hold::SequenceGap,
                ..
            }
        )
    }

    /// Held because another stxd process took the file: nothing to do.
    pub fn is_taken(&self) -> bool {
        matches!(
            self,
            Outcome::Held {
                hold: Hold::Taken,
                ..
            }
        )
    }

    /// One word for the file's fate, for logs and JSON.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Applied { .. } => "applied",
            Outcome::AlreadyApplied { .. } => "already-applied",
            Outcome::Parked { .. } => "parked",
            Outcome::Held { .. } => "held",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::Rejected(_) => "rejected",
        }
    }

    /// The stable code of the reason a file was not applied (none when it
    /// was, or when it is parked for mappings).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Outcome::Held { hold, .. } => Some(hold.code()),
            Outcome::Quarantined { stray, .. } => Some(stray.code()),
            Outcome::Rejected(e) => Some(e.code()),
            Outcome::Applied { .. } | Outcome::AlreadyApplied { .. } | Outcome::Parked { .. } => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_file_says_whether_it_waits_for_a_gap_or_was_taken() {
        let held = |hold| Outcome::Held {
            hold,
            reason: String::new(),
        };
        assert!(held(Hold::SequenceGap).is_sequence_gap());
        assert!(!held(Hold::SequenceGap).is_taken());
        assert!(held(Hold::Taken).is_taken());
        assert!(!held(Hold::KindNotHandled).is_sequence_gap());
        assert!(!Outcome::AlreadyApplied { sequence: 3 }.is_sequence_gap());
        assert_eq!(held(Hold::Setup).code(), Some("setup"));
        assert_eq!(Outcome::AlreadyApplied { sequence: 3 }.code(), None);
    }

    #[test]
    fn codes_are_distinct() {
        let holds = [
            Hold::SequenceGap,
            Hold::PayloadPending,
            Hold::Taken,
            Hold::KindNotHandled,
            Hold::Directory,
            Hold::Setup,
        ]
        .map(Hold::code);
        let strays = [
            Stray::SequenceZero,
            Stray::UnknownLink,
            Stray::OtherLink,
            Stray::WrongFolder,
        ]
        .map(Stray::code);
        let mut all: Vec<&str> = holds.iter().chain(&strays).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), holds.len() + strays.len());
    }
}
