//! Exit codes: what each means, and which one an error that ends a command gets.
//!
//! A command decides 0 (ok) or 1 (findings, refused input) itself and
//! returns it; an error it returns instead is classified here by its
//! causes: a usage or config problem is 2, another stxd holding the state
//! directory is a refusal (1), a malformed or contradicting input is 1,
//! anything else (I/O, the database, the network, a folder that cannot be
//! written) is a runtime failure (3). So a script tells a rejected file (1)
//! from a broken database (3).

use super::{EXIT_FINDINGS, EXIT_USAGE, out};
use crate::app::AppError;
use crate::daemon::DaemonError;
use crate::domain::DomainError;
use crate::state_lock::LockError;

/// Exit code: a runtime failure (I/O, the database, the network).
pub const EXIT_RUNTIME: u8 = 3;
/// Exit code: standard output was closed by its reader (`| head`); the
/// command finished its work, the rest of its output was dropped quietly.
pub const EXIT_PIPE: u8 = 141;

/// The top-level `--help`'s footer: where the config comes from, and the
/// exit codes (a test checks each code is there).
pub const AFTER_HELP: &str = "\
Config: --config, else $STXD_CONFIG, else /etc/stxd/stxd.toml, else (from the root of a clone of stxd, or with --demo) the demo config/stxd.toml; relative paths in a config resolve from its folder.

Exit codes:
  0    ok
  1    findings or refused input (a rejected file, a setup to fix, a refused sale or export)
  2    usage error or config problem (unknown option, link or institution; unreadable config)
  3    runtime failure (I/O, the database, the network; a file left in place to retry): retry once the cause is fixed
  141  standard output closed by its reader (| head): the work was done, the rest of the output dropped
`stxd run` also exits 130 when a second signal made it quit.";

/// A usage problem found by a command (an unknown institution, an
/// ambiguous run id, a malformed option value): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl Usage {
    /// `Usage` as the `anyhow::Error` a command returns.
    pub fn err(problem: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Usage(problem.into()))
    }
}

/// An input a command refuses (a file that is not what it must be): exit 1,
/// as a rejected file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    /// `Refused` as the `anyhow::Error` a command returns.
    pub fn err(problem: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Refused(problem.into()))
    }
}

/// The exit code of a command's result, its error printed on stderr; a
/// closed standard output wins (quietly), then a failed one.
pub fn finish(result: anyhow::Result<u8>) -> u8 {
    use std::io::Write as _;
    let _ = out::stdout().flush();
    if out::cut() {
        return EXIT_PIPE;
    }
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stxd: {e:#}");
            classify(&e)
        }
    };
    match out::failed() {
        Some(problem) => {
            eprintln!("stxd: {problem}");
            code.max(EXIT_RUNTIME)
        }
        None => code,
    }
}

/// The exit code of an error, from the first of its causes that says.
pub fn classify(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<Usage>() || cause.is::<crate::config::SecretError>() {
            return EXIT_USAGE;
        }
        if cause.is::<Refused>() {
            return EXIT_FINDINGS;
        }
        // The daemon's and the app's transparent variants hide their inner
        // error from the chain: they are looked into here.
        let app = match cause.downcast_ref::<DaemonError>() {
            Some(DaemonError::Alert(_)) => return EXIT_USAGE,
            Some(DaemonError::Lock(LockError::Held { .. })) => return EXIT_FINDINGS,
            Some(DaemonError::App(e)) => Some(e),
            Some(_) => continue,
            None => cause.downcast_ref::<AppError>(),
        };
        if let Some(e) = app {
            match e {
                AppError::UnknownLink(_)
                | AppError::SideNotServed { .. }
                | AppError::ApplyNotServed { .. }
                | AppError::TriggerNotServed { .. }
                | AppError::LinkNotConfigured { .. }
                | AppError::NotAManifest { .. }
                | AppError::NotRetryable { .. }
                | AppError::Secret { .. } => return EXIT_USAGE,
                _ => continue,
            }
        }
        if let Some(LockError::Held { .. }) = cause.downcast_ref::<LockError>() {
            return EXIT_FINDINGS;
        }
        if let Some(
            DomainError::Invalid { .. }
            | DomainError::Unready { .. }
            | DomainError::Setup { .. }
            | DomainError::Format(_)
            | DomainError::Missing { .. },
        ) = cause.downcast_ref::<DomainError>()
        {
            return EXIT_FINDINGS;
        }
    }
    EXIT_RUNTIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::EXIT_OK;

    #[test]
    fn the_help_footer_lists_every_exit_code() {
        for code in [EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_RUNTIME, EXIT_PIPE] {
            let line = format!("\n  {code:<4} ");
            assert!(AFTER_HELP.contains(&line), "{line:?} not in --help");
        }
    }

    #[test]
    fn errors_get_the_code_of_their_cause() {
        let usage = Usage::err("no such institution").context("runs show");
        assert_eq!(classify(&usage), EXIT_USAGE);
        let link = anyhow::Error::new(AppError::UnknownLink("link x".into()));
        assert_eq!(classify(&link), EXIT_USAGE);
        let held = anyhow::Error::new(LockError::Held {
            state_dir: "/s".into(),
            pid: "7".into(),
            path: "/s/stxd.lock".into(),
        })
        .context("--now runs a job only when no daemon does");
        assert_eq!(classify(&held), EXIT_FINDINGS);
        let daemon = anyhow::Error::new(DaemonError::Lock(LockError::Held {
            state_dir: "/s".into(),
            pid: "7".into(),
            path: "/s/stxd.lock".into(),
        }));
        assert_eq!(classify(&daemon), EXIT_FINDINGS);
        let daemon = anyhow::Error::new(DaemonError::App(AppError::UnknownLink("x".into())));
        assert_eq!(classify(&daemon), EXIT_USAGE);
        let invalid = anyhow::Error::new(DomainError::Invalid {
            object: "performance 9".into(),
            problem: "unknown".into(),
        });
        assert_eq!(classify(&invalid), EXIT_FINDINGS);
        let io = anyhow::Error::new(AppError::List {
            dir: "/srv/inbox".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        });
        assert_eq!(classify(&io), EXIT_RUNTIME);
        let db = anyhow::Error::new(DomainError::Sql(rusqlite::Error::InvalidQuery));
        assert_eq!(classify(&db), EXIT_RUNTIME);
    }
}
