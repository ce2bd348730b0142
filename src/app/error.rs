//! Why the application could not do what it was asked: [`AppError`], one
//! variant per thing that went wrong, carrying the file, folder or link it
//! concerns and, in its message, what to do about it.
//!
//! The messages are the ones ops read on standard error (the CLI prints
//! an error and its causes as `outer: inner`) and in the daemon's log
//! (through [`chain`], which prints them the same way). A variant wrapping a cause names it as its `source`, so the cause
//! is printed once, after the variant's own words.

use std::path::PathBuf;

use crate::config::SecretError;
use crate::domain::DomainError;
use crate::exchange::{BadName, Role};
use crate::format::Kind;
use crate::outbound::export::Cause;
use crate::schedule::Job;
use crate::store::StoreError;

/// Why an application flow (open a store, list a folder, run a job, write
/// a trigger…) could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A link the config does not name; the message lists those it does.
    #[error("{0}")]
    UnknownLink(String),
    /// A folder stxd keeps private (the state directory) cannot be made.
    #[error("cannot create {}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store of {institution}")]
    OpenStore {
        institution: String,
        #[source]
        source: Box<StoreError>,
    },
    /// A new store's `load` files failed: the half-made store was removed.
    #[error("cannot bootstrap {institution} from its load files; the new store was removed")]
    Bootstrap {
        institution: String,
        #[source]
        source: Box<DomainError>,
    },
    /// The two stores of a link could not be read for a reconciliation.
    #[error("cannot reconcile link {link}")]
    Reconcile {
        link: String,
        #[source]
        source: Box<DomainError>,
    },
    /// A command about one side of a link, on a server that serves the
    /// other side.
    #[error(
        "the {side} {code} of link {link} is not served by this config: run this command on the {side}'s server"
    )]
    SideNotServed {
        link: String,
        side: Role,
        code: String,
    },
    /// Boxed, as the other large causes: an error is rare, the `Ok` path
    /// should stay small.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// The link's shared secret cannot be read (or generated).
    #[error("link {link}")]
    Secret {
        link: String,
        #[source]
        source: SecretError,
    },
    /// The console's bearer token (`[http] token_file`) cannot be read (or
    /// generated).
    #[error("the console's token ([http] token_file)")]
    HttpToken {
        #[source]
        source: SecretError,
    },
    /// A file given to process whose name is not a manifest name.
    #[error("{}: {problem}", .file.display())]
    NotAManifest { file: PathBuf, problem: BadName },
    /// A file of a link this config does not name.
    #[error("{file}: link {link:?} is not in the config")]
    LinkNotConfigured { file: String, link: String },
    /// A folder to list (inbox, parked folder, outbox) cannot be read.
    #[error("cannot list {}", .dir.display())]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An apply job on a link whose receiving side this config does not
    /// serve.
    #[error("{job} runs on the {side}'s side of link {link}, which this config does not serve")]
    ApplyNotServed { job: Job, side: Role, link: String },
    /// A trigger for a job that runs on the other side's server.
    #[error(
        "{job} runs on the {side}'s side of link {link}, but the {side} {code} is not served by this config: trigger it on the {side}'s server"
    )]
    TriggerNotServed {
        job: Job,
        side: Role,
        link: String,
        code: String,
    },
    #[error("cannot create the control folder {}", .dir.display())]
    ControlDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the trigger {}", .path.display())]
    CreateTrigger {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or folder written durably whose sync failed.
    #[error("cannot sync {}", .path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What went wrong on one side of a link, when several are served in
    /// one go.
    #[error("link {link} ({side})")]
    OnSide {
        link: String,
        side: Role,
        #[source]
        source: Box<AppError>,
    },
    /// A file `stxd retry` was given that is not in an `error/` or
    /// `quarantine/` folder of a side this config serves.
    #[error("{}: {problem}", .file.display())]
    NotRetryable { file: PathBuf, problem: String },
    /// A file `stxd retry` could not put back into its inbox.
    #[error("cannot put {} back into {}", .file.display(), .inbox.display())]
    Retry {
        file: PathBuf,
        inbox: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A committed export that could not be placed; the next listing
    /// retries (the export's own message says what to fix if it persists).
    #[error("{kind} export of link {link}: {error}")]
    FinishExport {
        kind: Kind,
        link: String,
        error: Box<Cause>,
    },
}

impl AppError {
    /// A stable short code, for logs and alerts.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::OpenStore { .. } | AppError::Store(_) | AppError::Bootstrap { .. } => "store",
            AppError::Secret { .. } | AppError::HttpToken { .. } => "secret",
            AppError::CreateDir { .. }
            | AppError::List { .. }
            | AppError::ControlDir { .. }
            | AppError::CreateTrigger { .. }
            | AppError::Retry { .. } => "io",
            AppError::Sync { .. } | AppError::OnSide { .. } => "sftp",
            AppError::UnknownLink(_)
            | AppError::SideNotServed { .. }
            | AppError::NotAManifest { .. }
            | AppError::LinkNotConfigured { .. }
            | AppError::ApplyNotServed { .. }
            | AppError::TriggerNotServed { .. }
            | AppError::NotRetryable { .. } => "config",
            AppError::Reconcile { .. } => "reconcile",
            AppError::FinishExport { .. } => "export",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        AppError::Store(Box::new(e))
    }
}

/// An error and its causes on one line, `outer: inner: …`: the way the
/// CLI prints an error, for the daemon's log lines.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_prints_each_cause_once_after_the_error() {
        let e = AppError::List {
            dir: PathBuf::from("/x/inbox"),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(chain(&e), "cannot list /x/inbox: denied");
        let e = AppError::OnSide {
            link: "l".into(),
            side: Role::Manager,
            source: Box::new(e),
        };
        assert_eq!(chain(&e), "link l (manager): cannot list /x/inbox: denied");
    }
}
