//! The `[http]` table: the ops console and metrics listener of `stxd run`
//! (off when the table is absent).
//!
//! A loopback address needs nothing more; any other address needs either a
//! certificate and key (`tls_cert`, `tls_key`: the console then speaks
//! HTTPS only) or `insecure_non_loopback = true`, said on purpose.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The `[http]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    #[serde(default)]
    pub(super) insecure_non_loopback: bool,
}

/// The validated `[http]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Where the console listens (`127.0.0.1:8470`).
    pub listen: SocketAddr,
    /// The bearer token's file, readable by its owner only (like a link's
    /// secret); `stxd init` creates it when missing.
    pub token_file: PathBuf,
    /// HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<Tls>,
}

/// The certificate chain and private key of an HTTPS console (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Checks the `[http]` table; `None` when it is absent or has a problem
/// (each reported through `e` with its key).
pub(super) fn validate(raw: Option<RawHttp>, e: &mut dyn FnMut(String, String)) -> Option<Http> {
    let raw = raw?;
    let Some(listen) = raw.listen else {
        e(
            "http.listen".into(),
            "expected the address to listen on, such as \"127.0.0.1:8470\" (remove the [http] table to turn the console off)".into(),
        );
        return None;
    };
    let listen: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            e(
                "http.listen".into(),
                format!(
                    "expected an IP address and port such as \"127.0.0.1:8470\", found {listen:?}"
                ),
            );
            return None;
        }
    };
    let Some(token_file) = raw.token_file else {
        e(
            "http.token_file".into(),
            "expected the file holding the console's bearer token (mode 600; stxd init creates it), such as \"../var/state/http.token\"".into(),
        );
        return None;
    };
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some(Tls { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            e(
                "http.tls_key".into(),
                "expected the private key (PEM) of tls_cert: both or neither".into(),
            );
            return None;
        }
        (None, Some(_)) => {
            e(
                "http.tls_cert".into(),
                "expected the certificate chain (PEM) of tls_key: both or neither".into(),
            );
            return None;
        }
    };
    if !listen.ip().is_loopback() && tls.is_none() && !raw.insecure_non_loopback {
        e(
            "http.listen".into(),
            format!(
                "{listen} is not a loopback address: set http.tls_cert and http.tls_key (HTTPS), or http.insecure_non_loopback = true to serve plain HTTP there on purpose, or listen on 127.0.0.1"
            ),
        );
        return None;
    }
    Some(Http {
        listen,
        token_file,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = r#"
state_dir = "var"
[[institution]]
code = "TOURISM"
role = "distributor"
"#;

    fn with(http: &str) -> Result<Option<super::Http>, Vec<(String, String)>> {
        parse(&format!("{BASE}[http]\n{http}"), "t")
            .map(|c| c.http)
            .map_err(|e| e.errors.into_iter().map(|e| (e.at, e.problem)).collect())
    }

    #[test]
    fn loopback_needs_nothing_more_and_paths_stay_as_written() {
        let h = with("listen = \"127.0.0.1:8470\"\ntoken_file = \"t.token\"")
            .unwrap()
            .unwrap();
        assert_eq!(h.listen.port(), 8470);
        assert_eq!(h.tls, None);
        assert!(with("listen = \"[::1]:1\"\ntoken_file = \"t\"").is_ok());
        assert_eq!(parse(BASE, "t").unwrap().http, None, "off when absent");
    }

    #[test]
    fn beyond_loopback_needs_tls_or_saying_so() {
        let e = with("listen = \"0.0.0.0:8470\"\ntoken_file = \"t\"").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "http.listen");
        assert!(
            e[0].1.contains("tls_cert") && e[0].1.contains("insecure_non_loopback"),
            "{e:?}"
        );
        let tls = with(
            "listen = \"10.0.0.1:443\"\ntoken_file = \"t\"\ntls_cert = \"c\"\ntls_key = \"k\"",
        )
        .unwrap()
        .unwrap();
        assert!(tls.tls.is_some());
        assert!(
            with("listen = \"10.0.0.1:80\"\ntoken_file = \"t\"\ninsecure_non_loopback = true")
                .is_ok()
        );
    }

    #[test]
    fn each_missing_or_bad_key_is_named() {
        let at = |text: &str| with(text).unwrap_err()[0].0.clone();
        assert_eq!(at("token_file = \"t\""), "http.listen");
        assert_eq!(
            at("listen = \"localhost:80\"\ntoken_file = \"t\""),
            "http.listen"
        );
        assert_eq!(at("listen = \"127.0.0.1:80\""), "http.token_file");
        assert_eq!(
            at("listen = \"127.0.0.1:80\"\ntoken_file = \"t\"\ntls_cert = \"c\""),
            "http.tls_key"
        );
        assert_eq!(
            at("listen = \"127.0.0.1:80\"\ntoken_file = \"t\"\ntls_key = \"k\""),
            "http.tls_cert"
        );
        assert!(
            with("listen = \"127.0.0.1:80\"\ntoken_file = \"t\"\nport = 1").is_err(),
            "unknown key"
        );
    }
}
