//! The command line: `stxd [--config FILE] [--json] <command>`.
//!
//! Parses arguments, finds the config, calls the library (through [`crate::app`]
//! and the domain layer, the same functions the daemon calls) and turns
//! results into output and an exit code: 0 ok; 1 findings
//! or refused input; 2 usage error or config; 3 runtime failure (I/O, the
//! database, the network); 141 standard output closed by its reader.
//! `anyhow` lives here and nowhere below.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `writeln!` to the command's standard output ([`out::stdout`]): a closed
/// pipe ends the output quietly instead of panicking like `println!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::cli::out::stdout(), $($arg)*);
    }};
}

/// `write!` to the command's standard output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!($crate::cli::out::stdout(), $($arg)*);
    }};
}

mod account;
mod busy;
mod catalogue;
mod contingent;
mod exit;
mod export;
mod link;
mod mapping;
mod names;
mod orders;
mod out;
mod performance;
mod poll;
mod progress;
mod report;
mod runs;
mod sale;
mod sales;
mod sales_resolve;
mod secret;
mod status;
mod template;
mod trigger;
mod trigger_wait;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::app;
use crate::config::{self, Config};
use crate::domain::setup::{Finding, Severity};
use crate::inbound::Outcome;

pub use exit::{EXIT_PIPE, EXIT_RUNTIME};
use exit::{Refused, Usage};

/// Exit code: everything fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: findings, or input refused.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage error, or a config that cannot be read or used.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "stxd",
    version,
    about = "Exchange Fichier SecuTix files between a manager and a distributor institution",
    after_help = exit::AFTER_HELP
)]
struct Cli {
    /// The config file; its relative paths resolve from its folder.
    #[arg(long, global = true, env = "STXD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run on the demo of the source tree (config/stxd.toml) even when
    /// /etc/stxd/stxd.toml exists; only from the root of a clone of stxd.
    #[arg(long, global = true)]
    demo: bool,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// How long a command that writes waits for a store another process
    /// is writing (the daemon applying a large file holds it until the
    /// file is applied), saying what it waits for; then it gives up,
    /// having written nothing. The daemon itself waits 10 s and tries
    /// again at its next listing.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 600,
        env = "STXD_BUSY_WAIT"
    )]
    busy_wait: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the config, each link's secret and each institution's store
    /// and setup against the manual's checklist; report every finding at
    /// once. Only reads: safe as the service's ExecStartPre=.
    Check,
    /// Create what the config names and is missing: the stores (migrated,
    /// their `load` files loaded), the exchange folders (a local link's
    /// group-writable with the setgid bit, for the peer's account), and
    /// the secrets of links that allow it. Prints each thing created.
    Init {
        /// Also generate the shared secret of every link whose two sides
        /// this config serves (never for a link with another server: its
        /// secret is the peer's password).
        #[arg(long)]
        generate_secret: bool,
    },
    /// Write one side's commented starting files (setup TOML, seat plan and
    /// catalogue XML for a manager; setup TOML and mapping CSV for a
    /// distributor) to adapt to your venue, then load with stxd load.
    /// Never replaces a file.
    Template {
        /// The side whose files to write.
        side: template::Side,
        /// The folder to write them into (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Link secrets: `new FILE` writes a fresh random one, mode 0600,
    /// never replacing a file.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Load master data (seat plan or catalogue XML, setup TOML) into an
    /// institution's store, all files in one transaction.
    Load {
        /// The institution's code, as in the config.
        institution: String,
        /// Files to load, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Apply Fichier SecuTix files: the given ones, or every complete file
    /// waiting in the inboxes (of `--link`, or of every link). Each goes
    /// through claim, verify, apply (one transaction) and ends in done/,
    /// parked/ or error/ with its reason.
    Process {
        /// Manifests (`….stx`) or payloads; none = scan the inboxes.
        files: Vec<PathBuf>,
        /// Scan only this link's inboxes.
        #[arg(long)]
        link: Option<String>,
    },
    /// Sync a link's SFTP share once (push the outbox, pull the pairs
    /// waiting for this side), then process the inbox like `process`.
    Poll {
        /// The link to poll.
        #[arg(long)]
        link: String,
    },
    /// Put files refused into `error/` (or set aside into `quarantine/`)
    /// back into their inbox for another try, once their cause is fixed:
    /// the pair moves back, its `.reason` is removed and quoted in a run
    /// `retry`; the next listing (or `stxd process`) takes it. A file not
    /// in an `error/` or `quarantine/` folder of a served link is refused
    /// (exit 2).
    Retry {
        /// Manifests or payloads in `error/` or `quarantine/` (an archive
        /// suffix such as `.1` included).
        #[arg(required_unless_present = "link", conflicts_with = "link")]
        files: Vec<PathBuf>,
        /// Every file of this link's `error/` and `quarantine/` folders.
        #[arg(long)]
        link: Option<String>,
    },
    /// Retry the parked files (waiting for mappings), in sequence order.
    Resume {
        /// Only this link's parked files.
        #[arg(long)]
        link: Option<String>,
    },
    /// The daemon: applies the files arriving in every inbox of the config
    /// (watched, and listed every `[daemon] scan_seconds`), retries parked
    /// files once mappings are filled, runs the `[[schedule]]` jobs and the
    /// trigger files of `<state_dir>/control/<link>/`. SIGTERM/SIGINT stop it
    /// after the work in hand (exit 0; a second signal: exit 130); SIGHUP
    /// reloads the config file (an invalid one is logged and ignored).
    Run,
    /// Run a job of a link now: drops its trigger file in
    /// `<state_dir>/control/<link>/` for the daemon (or, with --now, runs it
    /// in this process).
    Trigger(trigger::TriggerArgs),
    /// Execution logs: what each run did, with every error.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Verify and summarise a Fichier SecuTix file (its manifest or its
    /// payload) without applying it.
    Inspect {
        /// The manifest (`….stx`) or the payload beside it.
        file: PathBuf,
        /// Verify with this secret instead of the link's configured one.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Manage the distributor's mapping table (manager objects ↔ local
    /// objects) of a link: list, set, ignore, export/import CSV, check.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
    /// Write the next file of a link: the manager's seat plan, catalogue or
    /// contingent, the distributor's sales.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Review, validate and put on sale the products imported from a
    /// manager (distributor side).
    #[command(subcommand)]
    Catalogue(catalogue::CatalogueCommand),
    /// The manager's contingents: allot seats or zone places of a
    /// performance to a link's distributor, take them back, show them.
    #[command(subcommand)]
    Contingent(contingent::ContingentCommand),
    /// The manager's performances: cancel one, or close its sales; the
    /// distributor follows with the next catalogue file.
    #[command(subcommand)]
    Performance(performance::PerformanceCommand),
    /// The manager's reintegrated orders: their tickets, seats, prices,
    /// point of sale, pending-account payment, source file and line.
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
    /// The manager's pending account of a link: entries and balance.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// The manager's view of the distributor's sales: the lines its
    /// reintegration rejected, for ops to fix and resubmit.
    #[command(subcommand)]
    Sales(sales::SalesCommand),
    /// The distributor's point of sale: sell and refund tickets of the
    /// contingents, list the lines.
    #[command(subcommand)]
    Sale(sale::SaleCommand),
    /// A link as a whole: rotate its shared secret.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Reports over both institutions' records of a link: `reconcile`.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Per link: the last file in and out per kind, pending mappings,
    /// parked files, errors of the last 24 hours, files waiting, whether
    /// the daemon runs, the next scheduled runs. Reads only.
    Status {
        /// Only this link.
        #[arg(long)]
        link: Option<String>,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    // Commands that write starting files need no config: they are how one
    // is made on a fresh server.
    let command = match cli.command {
        Command::Template { side, dir } => {
            return ExitCode::from(exit::finish(template::run(side, &dir, cli.json)));
        }
        Command::Secret(cmd) => return ExitCode::from(exit::finish(secret::run(cli.json, cmd))),
        other => other,
    };
    let (config, located) = match find_config(cli.config.as_deref(), cli.demo) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("stxd: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config_name = located.to_string();
    init_logs(&config);
    if !matches!(command, Command::Run) {
        busy::wait_for_stores(&config.state_dir, Duration::from_secs(cli.busy_wait));
    }
    let result = match command {
        Command::Check => check(&config, &config_name, cli.json),
        Command::Template { .. } | Command::Secret(_) => {
            unreachable!("run above, without a config")
        }
        Command::Init { generate_secret } => init(&config, &config_name, generate_secret, cli.json),
        Command::Load { institution, files } => load(&config, &institution, &files, cli.json),
        Command::Process { files, link } => {
            process(&config, &files, link.as_deref(), false, cli.json)
        }
        Command::Poll { link } => poll::run(&config, &link, cli.json),
        Command::Retry { files, link } => retry(&config, &files, link.as_deref(), cli.json),
        Command::Resume { link } => process(&config, &[], link.as_deref(), true, cli.json),
        Command::Run => {
            // The console, when `[http]` asks for it, beside the loop.
            let console = config
                .http
                .is_some()
                .then(|| Box::new(crate::http::Console) as Box<dyn crate::daemon::Sidecar>);
            crate::daemon::main(config, located, console)
                .map(|exit| exit.code())
                .map_err(anyhow::Error::from)
        }
        Command::Runs(cmd) => runs::run(&config, cli.json, cmd),
        Command::Trigger(args) => trigger::run(&config, cli.json, args),
        Command::Inspect { file, secret_file } => {
            inspect(&config, &file, secret_file.as_deref(), cli.json)
        }
        Command::Mapping(cmd) => mapping::run(&config, cli.json, cmd),
        Command::Export(cmd) => export::run(&config, cli.json, cmd),
        Command::Catalogue(cmd) => catalogue::run(&config, cli.json, cmd),
        Command::Contingent(cmd) => contingent::run(&config, cli.json, cmd),
        Command::Performance(cmd) => performance::run(&config, cli.json, cmd),
        Command::Orders(cmd) => orders::run(&config, cli.json, cmd),
        Command::Account(cmd) => account::run(&config, cli.json, cmd),
        Command::Sales(cmd) => sales::run(&config, cli.json, cmd),
        Command::Sale(cmd) => sale::run(&config, cli.json, cmd),
        Command::Report(cmd) => report::run(&config, cli.json, cmd),
        Command::Link(cmd) => link::run(&config, cli.json, cmd),
        Command::Status { link } => status::run(&config, &config_name, cli.json, link.as_deref()),
    };
    ExitCode::from(exit::finish(result))
}

/// A manager command refused by the domain: the reason, and the run that
/// logged the refusal (`run`, when it could be logged); exit code 1.
fn print_refusal(
    out: &mut impl Write,
    json: bool,
    e: &dyn std::fmt::Display,
    run: Option<i64>,
    manager: &str,
) -> anyhow::Result<u8> {
    if json {
        writeln!(
            out,
            "{:#}",
            json!({"changed": false, "reason": e.to_string(), "run": run})
        )?;
    } else {
        writeln!(out, "refused: {e}")?;
        if let Some(run) = run {
            writeln!(
                out,
                "run:     {run} (stxd runs show {run} --institution {manager})"
            )?;
        }
    }
    Ok(EXIT_FINDINGS)
}

/// The config [`config::locate`] chooses, read and validated.
fn find_config(
    named: Option<&Path>,
    demo: bool,
) -> Result<(Config, config::Located), Box<dyn std::error::Error>> {
    let cwd = std::env::current_dir()?;
    let located = config::locate(named, demo, &cwd, Path::new(config::SYSTEM))?;
    let config = config::load(&located.path)?;
    Ok((config, located))
}

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STXD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: a file, a pipe or the journal
    // (systemd gives stderr as a socket) gets plain text. NO_COLOR wins.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        config::LogFormat::Human => builder.try_init(),
        // Each line carries its span (`file`, `export`) and their chain.
        config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

fn init(config: &Config, config_name: &str, secrets: bool, json: bool) -> anyhow::Result<u8> {
    let created = app::init(config, secrets)?;
    let mut out = out::stdout();
    if json {
        let items: Vec<String> = created.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "{:#}",
            json!({"config": config_name, "created": items})
        )?;
    } else {
        writeln!(out, "config: {config_name}")?;
        for c in &created {
            writeln!(out, "created {c}")?;
        }
        if created.is_empty() {
            writeln!(out, "nothing to create: everything the config names exists")?;
        }
        writeln!(out, "next: stxd check")?;
    }
    Ok(EXIT_OK)
}

fn check(config: &Config, config_name: &str, json: bool) -> anyhow::Result<u8> {
    let mut report = app::check(config)?;
    // What the [[alert]] tables name outside the config: token files,
    // programs (read here and when the daemon starts, not by every command).
    report.links.extend(
        crate::alert::check(&config.alerts)
            .into_iter()
            .map(|e| Finding {
                severity: Severity::Error,
                object: e.at,
                problem: e.problem,
                fix: "fix the file (or the [[alert]] table) and run stxd check again".into(),
            }),
    );
    let errors = report.count(Severity::Error);
    if json {
        let institutions: Vec<_> = report
            .institutions
            .iter()
            .map(|(code, role, findings)| {
                json!({"code": code, "role": role.to_string(), "findings": findings_json(findings)})
            })
            .collect();
        let doc = json!({
            "config": config_name,
            "ok": errors == 0,
            "links": findings_json(&report.links),
            "institutions": institutions,
        });
        outln!("{doc:#}");
    } else {
        let mut out = out::stdout();
        writeln!(out, "config: {config_name}")?;
        print_findings(&mut out, "links", &report.links)?;
        for (code, role, findings) in &report.institutions {
            print_findings(&mut out, &format!("{code} ({role})"), findings)?;
        }
        let warnings = report.count(Severity::Warning);
        writeln!(
            out,
            "{}: {errors} error{}, {warnings} warning{}",
            if errors == 0 { "ok" } else { "not ready" },
            plural(errors),
            plural(warnings)
        )?;
    }
    Ok(if errors == 0 { EXIT_OK } else { EXIT_FINDINGS })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn findings_json(findings: &[Finding]) -> serde_json::Value {
    findings
        .iter()
        .map(|f| {
            json!({
                "severity": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "object": f.object,
                "problem": f.problem,
                "fix": f.fix,
            })
        })
        .collect()
}

fn print_findings(out: &mut impl Write, title: &str, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "{title}: ok");
    }
    writeln!(out, "{title}:")?;
    for f in findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(out, "  {level:<7} {}: {}", f.object, f.problem)?;
        writeln!(out, "          fix: {}", f.fix)?;
    }
    Ok(())
}

fn load(config: &Config, institution: &str, files: &[PathBuf], json: bool) -> anyhow::Result<u8> {
    let Some(inst) = config.institution(institution) else {
        let known: Vec<_> = config
            .institutions
            .iter()
            .map(|i| i.code.to_string())
            .collect();
        eprintln!(
            "stxd: institution {institution:?} is not in the config (it has: {})",
            known.join(", ")
        );
        return Ok(EXIT_USAGE);
    };
    let mut store = app::open_store(config, inst)?;
    match app::load_watched(&mut store, files, &progress::watch()) {
        Ok(summary) => {
            if json {
                outln!("{}", json!({"institution": institution, "loaded": summary}));
            } else {
                for (what, n) in &summary {
                    outln!("{institution}: {n} {what}");
                }
                outln!("{institution}: loaded {} file(s)", files.len());
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("stxd: {institution}: nothing loaded: {e}");
            Ok(EXIT_FINDINGS)
        }
    }
}

fn inspect(
    config: &Config,
    file: &Path,
    secret_file: Option<&Path>,
    json: bool,
) -> anyhow::Result<u8> {
    let outcome = app::inspect(config, file, secret_file, &progress::watch());
    match outcome {
        Ok(app::Inspection {
            manifest: m,
            counts,
        }) => {
            if json {
                let by_type: serde_json::Map<_, _> = counts
                    .iter()
                    .map(|(l, n)| ((*l).to_owned(), json!(n)))
                    .collect();
                outln!(
                    "{:#}",
                    json!({
                        "valid": true, "manifest": m.manifest_name(), "payload": m.payload,
                        "kind": m.kind.as_str(), "format_version": m.format_version,
                        "link": m.link, "sender": m.sender, "recipient": m.recipient,
                        "login": m.login, "sequence": m.sequence,
                        "created": m.created.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                        "records": m.records, "bytes": m.bytes, "sha256": hex::encode(m.sha256),
                        "records_by_type": by_type,
                    })
                );
            } else {
                let by_type: Vec<String> = counts.iter().map(|(l, n)| format!("{l} {n}")).collect();
                outln!("valid:     {} + {}", m.manifest_name(), m.payload);
                outln!(
                    "kind:      {} (format version {})",
                    m.kind,
                    m.format_version
                );
                outln!(
                    "link:      {} ({} → {}, login {})",
                    m.link,
                    m.sender,
                    m.recipient,
                    m.login
                );
                outln!("sequence:  {}", m.sequence);
                outln!(
                    "created:   {}",
                    m.created
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                );
                outln!("records:   {} ({})", m.records, by_type.join(", "));
                outln!(
                    "payload:   {} bytes, sha256 {}",
                    m.bytes,
                    hex::encode(m.sha256)
                );
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            if json {
                outln!(
                    "{:#}",
                    json!({"valid": false, "code": e.code(), "permanent": e.is_permanent(), "reason": e.to_string()})
                );
            } else {
                outln!("rejected:  {e}");
                outln!("code:      {}", e.code());
            }
            Ok(EXIT_FINDINGS)
        }
    }
}

fn process(
    config: &Config,
    files: &[PathBuf],
    link: Option<&str>,
    parked: bool,
    json: bool,
) -> anyhow::Result<u8> {
    // Exports a crash left committed but unplaced go out first, as the
    // daemon's listing places them: the peer's files in this config's
    // folders are then complete before they are listed.
    for finished in app::finish_exports(config) {
        match finished {
            Ok(f) => tracing::info!(link = %f.link, kind = %f.kind, sequences = ?f.sequences,
                "committed export placed after an interruption"),
            Err(e) => {
                tracing::error!(error = %app::chain(&e), "cannot place a committed export; the next export or listing retries")
            }
        }
    }
    // A bar on a terminal for each big payload read.
    let watch = progress::watch();
    let handled = if parked {
        app::resume(config, link)?
    } else if files.is_empty() {
        let dirs = app::folders_to_scan(config, link, |f| f.inbox.clone())?;
        app::process_files_watched(config, &app::scan(&dirs)?, &|| false, &watch)?
    } else {
        app::process_files_watched(config, files, &|| false, &watch)?
    };
    if json {
        outln!("{:#}", handled_json(&handled));
    } else if handled.is_empty() {
        outln!("nothing to {}", if parked { "resume" } else { "process" });
    } else {
        print_handled(&handled, "");
    }
    Ok(handled_exit(&handled))
}

fn retry(config: &Config, files: &[PathBuf], link: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let retried = match link {
        Some(link) => app::retry_link(config, link),
        None => app::retry_files(config, files, None),
    };
    let retried = match retried {
        Ok(r) => r,
        Err(e @ (app::AppError::NotRetryable { .. } | app::AppError::UnknownLink(_))) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let doc: Vec<_> = retried
            .iter()
            .map(|r| {
                json!({"institution": r.institution, "link": r.link,
                    "from": r.from, "to": r.to, "run": r.run, "old_reason": r.old_reason})
            })
            .collect();
        outln!("{:#}", serde_json::Value::from(doc));
    } else if retried.is_empty() {
        outln!("nothing to retry");
    } else {
        for r in &retried {
            outln!(
                "{}: {} put back into {} (run {}); earlier reason: {}",
                r.institution,
                r.from.display(),
                r.to.display(),
                r.run,
                r.old_reason.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(EXIT_OK)
}

/// One handled file in words: (state, detail, run).
fn describe(h: &app::Handled) -> (&'static str, String, Option<i64>) {
    h.describe()
}

pub(crate) fn handled_json(handled: &[app::Handled]) -> serde_json::Value {
    handled
        .iter()
        .map(|h| {
            let (state, detail, run) = describe(h);
            // The stable code of why a file was not applied, or is retried.
            let code = match &h.processed {
                Err(e) => Some(e.code()),
                Ok(p) => p.outcome.code(),
            };
            json!({"institution": h.institution, "file": crate::inbound::claim::display_name(&h.file),
                "state": state, "run": run, "code": code, "detail": detail})
        })
        .collect()
}

pub(crate) fn print_handled(handled: &[app::Handled], verb: &str) {
    for h in handled {
        let (state, detail, run) = describe(h);
        let name = crate::inbound::claim::display_name(&h.file);
        let run = run.map(|r| format!(" (run {r})")).unwrap_or_default();
        let verb = if verb.is_empty() {
            String::new()
        } else {
            format!("{verb} ")
        };
        outln!("{}: {verb}{name}: {state}{run}: {detail}", h.institution);
    }
}

/// 3 when a file could not be processed now (I/O, a full disk, a busy
/// store: it stays where it is, to be retried once the cause is fixed), else
/// 1 when a file was rejected, else 0.
pub(crate) fn handled_exit(handled: &[app::Handled]) -> u8 {
    if handled.iter().any(|h| h.processed.is_err()) {
        return exit::EXIT_RUNTIME;
    }
    let rejected = handled
        .iter()
        .any(|h| matches!(&h.processed, Ok(p) if matches!(p.outcome, Outcome::Rejected(_))));
    if rejected { EXIT_FINDINGS } else { EXIT_OK }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand says what it does, every argument and option what
    /// it takes: `stxd COMMAND --help` never shows a bare name.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: argument {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path}: no about"));
                }
                walk(sub, &path, missing);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut missing = Vec::new();
        walk(&cli, "stxd", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }

    /// Output goes through `out` (a closed pipe is not a panic): no
    /// `println!` or `print!` in the command line's sources.
    #[test]
    fn commands_print_through_the_pipe_safe_writer() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // `eprintln!` writes to standard error, not a pipe's reader.
            for b in [concat!("print", "ln!("), concat!("print", "!(")] {
                let used = text
                    .match_indices(b)
                    .any(|(i, _)| !text[..i].ends_with('e'));
                assert!(!used, "{} uses {b}", path.display());
            }
        }
    }

    #[test]
    fn the_library_prints_an_error_with_its_causes_as_the_cli_does() {
        let e = app::AppError::OnSide {
            link: "opera-tourism".into(),
            side: crate::store::Role::Manager,
            source: Box::new(app::AppError::List {
                dir: PathBuf::from("/srv/inbox"),
                source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
            }),
        };
        let daemon = app::chain(&e);
        assert_eq!(daemon, format!("{:#}", anyhow::Error::new(e)));
        assert_eq!(
            daemon,
            "link opera-tourism (manager): cannot list /srv/inbox: denied"
        );
    }
}
