//! TLS on the server itself (`doorstep serve --tls-cert FILE --tls-key FILE`): rustls with
//! ring, the certificate reloaded without a restart when its files change (a renewal replaces
//! them), and the accept loop that serves the router over it.
//!
//! The files are checked every [`RELOAD_EVERY`]; a pair that does not load (half written, a
//! key that does not match) is logged and the previous certificate kept, so a renewal can never
//! take the server down. Handshakes run in each connection's own task with a deadline, so a
//! slow or silent client holds nothing but its own connection.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;
use tower_http::add_extension::AddExtension;

/// How often the certificate files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a certificate and key pair did not load. Names the file and what is wrong, never its
/// content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong: "cannot be read", "no certificate in PEM form", …
        what: String,
    },
    /// The key does not sign for the certificate, or rustls refused the pair.
    #[error("{cert} and {key}: {what}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said of the pair (no key material).
        what: String,
    },
}

/// The pins of a PEM certificate chain file, leaf first: for each certificate,
/// `sha256/` and the base64 of the SHA-256 of its SubjectPublicKeyInfo, the form Android's
/// network security configuration (`<pin digest="SHA-256">`) and HTTP public key pinning use.
/// A pin names a key, not a certificate: a renewal with the same key keeps it.
/// `doorstep tls-pin FILE` prints them.
pub fn pins(cert: &Path) -> Result<Vec<String>, TlsError> {
    let file = |what: &str| TlsError::File {
        path: cert.to_path_buf(),
        what: what.to_owned(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| file("cannot be read"))?
        .collect::<Result<_, _>>()
        .map_err(|_| file("not a certificate chain in PEM form"))?;
    if chain.is_empty() {
        return Err(file("no certificate in PEM form"));
    }
    chain
        .iter()
        .map(|der| pin_of(der).ok_or_else(|| file("holds a certificate that is not X.509 DER")))
        .collect()
}

/// The pin of one certificate's key (see [`pins`]); `None` if it is not X.509 DER.
pub fn pin_of(der: &CertificateDer<'_>) -> Option<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let parsed = webpki::EndEntityCert::try_from(der).ok()?;
    let spki = parsed.subject_public_key_info();
    Some(format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki.as_ref()))
    ))
}

/// The certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Load the pair as rustls signs with it.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let file_error = |path: &Path, what: &str| TlsError::File {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|_| file_error(&self.cert, "cannot be read as PEM"))?
            .collect::<Result<_, _>>()
            .map_err(|_| file_error(&self.cert, "holds a malformed PEM item"))?;
        if chain.is_empty() {
            return Err(file_error(&self.cert, "holds no certificate in PEM form"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|_| file_error(&self.key, "holds no private key in PEM form"))?;
        CertifiedKey::from_der(chain, key, &ring::default_provider()).map_err(|e| TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            what: e.to_string(),
        })
    }

    /// When either file last changed (`None` if one cannot be read).
    fn stamp(&self) -> Option<(SystemTime, SystemTime)> {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }
}

/// The server's certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl ReloadingCert {
    /// Load the files now: a server does not start with a certificate it cannot use.
    pub fn open(files: TlsFiles) -> Result<Arc<ReloadingCert>, TlsError> {
        let stamp = files.stamp();
        let key = files.load()?;
        Ok(Arc::new(ReloadingCert {
            files,
            current: RwLock::new(Arc::new(key)),
            stamp: RwLock::new(stamp),
        }))
    }

    /// The pin of the key now served (its own certificate's, the chain's first; [`pins`]):
    /// what the admin's devices page shows beside a new enrolment code.
    pub fn pin(&self) -> Option<String> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        current.cert.first().and_then(pin_of)
    }

    /// Reload if the files changed since the last look. Returns whether a new certificate is
    /// now served; a pair that does not load is logged and the old one kept.
    pub fn reload_if_changed(&self) -> bool {
        let stamp = self.files.stamp();
        let seen = *self.stamp.read().unwrap_or_else(|e| e.into_inner());
        if stamp.is_none() || stamp == seen {
            return false;
        }
        match self.files.load() {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = stamp;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Half written, or a key that does not match yet: try again at the next look.
                tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one is served");
                false
            }
        }
    }

    /// The rustls configuration serving this certificate (HTTP/2 and HTTP/1.1; TLS 1.2 and
    /// 1.3, rustls's safe defaults).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Pair {
                    cert: self.files.cert.clone(),
                    key: self.files.key.clone(),
                    what: e.to_string(),
                })?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Serve `router` over TLS on `listener` until `shutdown`, reloading the certificate when its
/// files change; open connections then get a grace period to finish.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    cert: Arc<ReloadingCert>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(cert.server_config().map_err(std::io::Error::other)?);
    let watcher_cert = cert.clone();
    let reloader = tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        loop {
            tick.tick().await;
            watcher_cert.reload_if_changed();
        }
    });
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                // The client's address, as `into_make_service_with_connect_info` gives it on
                // plain HTTP (sign-in throttling counts by address); a cheap wrapper around the
                // shared router, not a re-layered router per connection.
                let service = TowerToHyperService::new(AddExtension::new(
                    router.clone(),
                    axum::extract::ConnectInfo(peer),
                ));
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        // A failed or slow handshake (a plain-HTTP client, a scanner): nothing
                        // to answer over TLS.
                        _ => return,
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    reloader.abort();
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}
