//! The config file as deserialised, unchecked: the `Raw*` types.
//!
//! Only unknown keys are refused here; `validate` turns these into the
//! validated types.

use std::path::PathBuf;

use serde::Deserialize;

use super::LogFormat;
use crate::exchange::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) state_dir: PathBuf,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    #[serde(default, rename = "institution")]
    pub(super) institutions: Vec<RawInstitution>,
    #[serde(default, rename = "link")]
    pub(super) links: Vec<RawLink>,
    #[serde(default, rename = "schedule")]
    pub(super) schedules: Vec<RawSchedule>,
    #[serde(default, rename = "alert")]
    pub(super) alerts: Vec<super::alert::RawAlert>,
    pub(super) http: Option<super::http::RawHttp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) link: String,
    pub(super) job: String,
    pub(super) cron: String,
    pub(super) timezone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<LogFormat>,
    pub(super) level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) scan_seconds: Option<i64>,
    pub(super) timezone: Option<String>,
    pub(super) shutdown_grace_seconds: Option<i64>,
    pub(super) gap_alert_minutes: Option<i64>,
    pub(super) payload_grace_seconds: Option<i64>,
    pub(super) archive_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstitution {
    pub(super) code: String,
    pub(super) role: Role,
    #[serde(default)]
    pub(super) load: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    pub(super) name: String,
    pub(super) manager: String,
    pub(super) distributor: String,
    pub(super) login: String,
    pub(super) secret_file: PathBuf,
    #[serde(default)]
    pub(super) generate_secret: bool,
    pub(super) secret_overlap_days: Option<i64>,
    #[serde(default)]
    pub(super) products: Option<Vec<i64>>,
    pub(super) transport: RawTransport,
}

// Parsed once per config load and turned into `Transport` at once: the
// size of the SFTP variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub(super) enum RawTransport {
    Local {
        dir: PathBuf,
    },
    Sftp {
        host: String,
        #[serde(default = "default_ssh_port")]
        port: u16,
        user: String,
        key_file: Option<PathBuf>,
        password_file: Option<PathBuf>,
        known_hosts: PathBuf,
        remote_dir: String,
        local_dir: PathBuf,
        connect_timeout_seconds: Option<i64>,
        io_timeout_seconds: Option<i64>,
        remote_fsync: Option<String>,
    },
}

fn default_ssh_port() -> u16 {
    22
}
