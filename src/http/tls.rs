//! HTTPS for a console listening beyond loopback: the certificate chain and
//! key of `[http] tls_cert`/`tls_key` (PEM), each handshake on a task of
//! its own (bounded in time) so that a slow client delays no other.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_native_tls::{TlsAcceptor, TlsStream, native_tls};

use crate::config::Tls;

/// How long a client may take to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The acceptor of `tls`'s certificate and key; the reason names the file.
pub(super) fn acceptor(tls: &Tls) -> Result<TlsAcceptor, String> {
    let read = |p: &std::path::Path, key: &str| {
        std::fs::read(p).map_err(|e| format!("cannot read {} (http.{key}): {e}", p.display()))
    };
    let cert = read(&tls.cert, "tls_cert")?;
    let key = read(&tls.key, "tls_key")?;
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).map_err(|e| {
        format!(
            "http.tls_cert {} / http.tls_key {}: expected a PEM certificate chain and a PEM PKCS#8 private key: {e}",
            tls.cert.display(),
            tls.key.display()
        )
    })?;
    native_tls::TlsAcceptor::new(identity)
        .map(TlsAcceptor::from)
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

/// Accepted TLS connections, their handshakes done.
pub(super) struct Listener {
    local: std::io::Result<SocketAddr>,
    done: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl Listener {
    pub(super) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Listener {
        let local = tcp.local_addr();
        let (tx, done) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(target: "stxd::http", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(target: "stxd::http", %addr, error = %e, "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(target: "stxd::http", %addr, "TLS handshake timed out")
                        }
                    }
                });
            }
        });
        Listener { local, done }
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.done.recv().await {
            Some(c) => c,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}
