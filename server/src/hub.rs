//! The station hub (`doorstep hub`, issue #14): a commune station's box that the commune's
//! phones exchange their signed work with over the station's LAN, and that carries it to the
//! province server whenever the station's link is up — for days without it if need be.
//!
//! The hub is a replica like a phone: a core store (encrypted, its key in a file beside it),
//! enrolled at the province server with a commune lead's enrolment code, so that its scope is
//! the commune's villages. Phones connect over TCP and run the phone↔phone exchange
//! ([`doorstep_core::peer_stream`]): each gives the hub its signed runs, and takes the runs of
//! the commune's other phones that lie in its own villages, checked as any exchange checks
//! them (the author's certificate and signature, the receiver's villages). Every `every`, the
//! hub syncs with the province server: it relays the runs it holds (checked there against
//! their authors, as any relay) and pulls the commune's area. A phone may sync with the hub
//! one day and the province server the next: signed runs and version vectors make every
//! operation arrive once.
//!
//! Not yet: phones receive from the hub only signed field work (households, residents, visits,
//! assistance steps, retractions) — the roster, units, officers and assignments still come
//! with their own sync to the province server. The LAN link is plain TCP, but what crosses
//! it after the proofs is sealed by the exchange itself (`doorstep_core::channel`).

use anyhow::{bail, Context};
use doorstep_core::sync::{SyncConfig, SyncReport};
use doorstep_core::{Options, Store, StoreKey};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The province server's URL.
    pub upstream: String,
    /// The hub's store (created, and encrypted, if it does not exist).
    pub store: PathBuf,
    /// A commune lead's enrolment code, for the first start.
    pub code: Option<String>,
    /// How often to sync with the province server.
    pub every: Duration,
    /// The authority to trust for the province server's certificate (PEM), if not a public one.
    pub trusted_ca_pem: Option<String>,
    /// Tries of each request of a sync before it waits for the next turn.
    pub attempts: u32,
    /// The store's key, from `--db-key-file` (a file kept elsewhere than the store); `None`:
    /// a key file beside the store (`<store>.key`), made at the first start.
    pub key: Option<StoreKey>,
}

impl HubConfig {
    /// From `doorstep hub`'s arguments (the authority's PEM read from its file), each request
    /// tried 3 times.
    pub fn from_args(
        upstream: String,
        store: PathBuf,
        code: Option<String>,
        every_secs: u64,
        trusted_ca: Option<PathBuf>,
        key: Option<StoreKey>,
    ) -> anyhow::Result<HubConfig> {
        let trusted_ca_pem = match trusted_ca {
            Some(p) => Some(
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            ),
            None => None,
        };
        Ok(HubConfig {
            upstream,
            store,
            code,
            every: Duration::from_secs(every_secs.max(1)),
            trusted_ca_pem,
            attempts: 3,
            key,
        })
    }
}

/// `doorstep hub`: open the hub, serve the phones on `listen` and sync with the province server
/// until `wait` returns (the binary waits for SIGINT or SIGTERM).
pub fn command(
    config: HubConfig,
    listen: &str,
    wait: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let hub = Arc::new(Hub::open(&config)?);
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, upstream = %config.upstream, "station hub serving the phones");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            wait();
            stop.store(true, Ordering::SeqCst);
        });
    }
    hub.run(listener, stop)
}

/// A running hub's store and its credentials.
pub struct Hub {
    /// The handle the phones' exchanges use.
    store: Arc<Mutex<Store>>,
    /// A second handle on the same file for the upstream sync, so that a sync waiting on a
    /// slow or silent link never holds up the phones (SQLite orders the two handles' writes;
    /// the hub makes no operations of its own, so nothing is numbered twice).
    upstream_store: Mutex<Store>,
    upstream: String,
    token: String,
    trusted_ca_pem: Option<String>,
    every: Duration,
    attempts: u32,
}

/// How long a phone's connection may stay silent.
const PHONE_TIMEOUT: Duration = Duration::from_secs(60);

impl Hub {
    /// Open the hub's store (creating it and its key), enrolling it at the province server with
    /// the code on its first start.
    pub fn open(config: &HubConfig) -> anyhow::Result<Hub> {
        let key = match &config.key {
            Some(key) => key.clone(),
            None => key_file(&sibling(&config.store, ".key"))?,
        };
        let mut store = Store::open_encrypted(&config.store, &key, Options::default())
            .with_context(|| format!("opening the hub's store {}", config.store.display()))?;
        let token_path = sibling(&config.store, ".token");
        let token = match std::fs::read_to_string(&token_path) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                let Some(code) = &config.code else {
                    bail!("the hub is not enrolled yet: give --code with a commune lead's enrolment code");
                };
                let mut enrolment = SyncConfig::enrolment(&config.upstream);
                enrolment.trusted_ca_pem = config.trusted_ca_pem.clone();
                let e =
                    doorstep_core::sync::enrol_with(&mut store, &enrolment, code, "station hub")
                        .context("enrolling the hub at the province server")?;
                write_private(&token_path, e.token.as_bytes())?;
                tracing::info!(device = %e.device_id, officer = %e.officer_id, "hub enrolled");
                e.token
            }
        };
        drop(store);
        let open = || {
            Store::open_encrypted(&config.store, &key, Options::default())
                .with_context(|| format!("opening the hub's store {}", config.store.display()))
        };
        Ok(Hub {
            store: Arc::new(Mutex::new(open()?)),
            upstream_store: Mutex::new(open()?),
            upstream: config.upstream.clone(),
            token,
            trusted_ca_pem: config.trusted_ca_pem.clone(),
            every: config.every,
            attempts: config.attempts.max(1),
        })
    }

    /// Sync with the province server once (relay the phones' runs, pull the commune's area).
    pub fn sync_upstream(&self) -> doorstep_core::Result<SyncReport> {
        let mut config = SyncConfig::new(&self.upstream, &self.token);
        config.trusted_ca_pem = self.trusted_ca_pem.clone();
        config.max_attempts = self.attempts;
        let mut store = self
            .upstream_store
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        doorstep_core::sync::sync(&mut store, &config, &mut |_| {})
    }

    /// Serve phones' exchanges on `listener` until `stop`, each connection on its own thread.
    pub fn serve_phones(
        &self,
        listener: TcpListener,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let store = self.store.clone();
                    std::thread::spawn(move || match exchange_with_phone(&store, stream) {
                        Ok(r) => tracing::info!(
                            %peer,
                            runs_taken = r.runs_taken,
                            ops_new = r.ops_new,
                            runs_sent = r.runs_sent,
                            refused = r.refused.len(),
                            "phone exchange"
                        ),
                        Err(e) => tracing::warn!(%peer, error = %e, "phone exchange failed"),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => tracing::warn!(error = %e, "accepting a phone"),
            }
        }
        Ok(())
    }

    /// Serve phones on `listener` and sync with the province server every `every`, until
    /// `stop`. A failed sync (the station's link is down) is logged and tried again at the
    /// next turn; the phones are served meanwhile.
    pub fn run(
        self: Arc<Self>,
        listener: TcpListener,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let phones = {
            let hub = self.clone();
            let stop = stop.clone();
            std::thread::spawn(move || hub.serve_phones(listener, stop))
        };
        while !stop.load(Ordering::SeqCst) {
            match self.sync_upstream() {
                Ok(r) => tracing::info!(
                    relayed = r.relayed,
                    pulled = r.pulled,
                    refused = r.rejected.len(),
                    "synced with the province server"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "the province server is out of reach; the hub keeps serving the phones")
                }
            }
            let mut waited = Duration::ZERO;
            while waited < self.every && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
        }
        phones
            .join()
            .map_err(|_| anyhow::anyhow!("the phones' thread panicked"))??;
        Ok(())
    }
}

fn exchange_with_phone(
    store: &Mutex<Store>,
    mut stream: TcpStream,
) -> doorstep_core::Result<doorstep_core::exchange::ExchangeReport> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PHONE_TIMEOUT))?;
    stream.set_write_timeout(Some(PHONE_TIMEOUT))?;
    doorstep_core::peer_stream::exchange_over(store, &mut stream)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The store's key, from its file (made on the first start: 32 random bytes, owner-only).
fn key_file(path: &Path) -> anyhow::Result<StoreKey> {
    match std::fs::read(path) {
        Ok(bytes) => StoreKey::from_bytes(&bytes)
            .with_context(|| format!("the hub's key file {} is not a key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            write_private(path, &bytes)?;
            Ok(StoreKey::new(bytes))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Write `bytes` to a new file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
