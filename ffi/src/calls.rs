//! The long calls — enrolment, sync, roster import from a file — in two forms: blocking (for a
//! background thread, a WorkManager `Worker`, Java) and async (`suspend` in Kotlin, `async` in
//! Swift) with cancellation.
//!
//! An async call runs its blocking form on a thread of its own and awaits the answer on a
//! one-shot channel, so no async runtime is needed in the library or the app. Cancelling the
//! coroutine or task drops the future, which sets the call's [`Cancel`] flag: the call stops at
//! its next safe point (between two pages, batches or chunks; a wait between attempts ends at
//! once; a request on the wire is answered or times out first). What it applied stays, and the
//! next call goes on from there. The caller sees the cancellation at once (Kotlin's
//! `CancellationException`); the thread winds down behind it, and a sync started meanwhile
//! waits for it (one sync at a time per store).

use crate::error::{parse_id, DoorstepError};
use crate::http::{Foreign, HttpTransport};
use crate::log::{emit, LogLevel};
use crate::model::{count, ImportReport};
use crate::store::{kind, FieldStore};
use crate::sync::{Enrolment, SyncListener, SyncReport};
use doorstep_core::sync::SyncConfig;
use doorstep_core::Cancel;
use std::sync::Arc;
use std::time::Duration;

type Result<T, E = DoorstepError> = std::result::Result<T, E>;

/// How far a roster import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ImportProgress {
    /// Data rows read so far.
    pub rows_read: i64,
    /// Bytes of the file read so far.
    pub bytes_read: i64,
    /// The file's size in bytes (for a percentage).
    pub bytes_total: i64,
}

/// Receives roster import progress: implemented by the host app. Called on the importing
/// thread every 1,000 rows and once at the end; post to the UI thread yourself.
#[uniffi::export(with_foreign)]
pub trait ImportListener: Send + Sync {
    /// Another 1,000 rows were read (or the import ended).
    fn on_progress(&self, progress: ImportProgress);
}

/// What a store holds and still has to send, for an app's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// This device's own operations the server has not acknowledged yet ("N records waiting to
    /// be sent").
    pub unsent_ops: i64,
    /// Operations held in the store's log, this device's and others'.
    pub ops_held: i64,
}

/// A caller's deadline in milliseconds, checked; `None` keeps the default.
fn deadline(ms: Option<i64>) -> Result<Option<Duration>> {
    match ms {
        None => Ok(None),
        Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
        Some(_) => Err(DoorstepError::InvalidInput {
            field: "deadline_ms".into(),
            expected: "a positive number of milliseconds".into(),
        }),
    }
}

/// `config` with the caller's pin, deadline (if given) and cancellation flag.
fn configure(
    mut config: SyncConfig,
    transport: Option<Arc<dyn HttpTransport>>,
    trusted_ca_pem: Option<String>,
    deadline_ms: Option<i64>,
    cancel: Cancel,
) -> Result<SyncConfig> {
    config.trusted_ca_pem = trusted_ca_pem;
    config.transport =
        transport.map(|t| Arc::new(Foreign(t)) as Arc<dyn doorstep_core::transport::HttpTransport>);
    if let Some(d) = deadline(deadline_ms)? {
        config.deadline = Some(d);
    }
    config.cancel = cancel;
    Ok(config)
}

/// Sets the call's flag when the future is dropped (a cancelled coroutine or task).
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Run `work` on a thread of its own and await its answer; dropping the future cancels it.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce(Cancel) -> Result<T> + Send + 'static,
) -> Result<T> {
    let cancel = Cancel::new();
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("doorstep-call".into())
        .spawn(move || {
            // The receiver is gone if the caller cancelled: nobody waits for the answer.
            let _ = tx.send(work(cancel));
        })
        .map_err(|_| DoorstepError::Other {
            detail: "could not start a thread for the call".into(),
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(DoorstepError::Other {
            detail: "the call's thread ended without an answer".into(),
        })
    })
}

impl FieldStore {
    fn enrol_with_cancel(
        &self,
        server_url: String,
        code: String,
        device_name: String,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
        cancel: Cancel,
    ) -> Result<Enrolment> {
        let config = configure(
            SyncConfig::enrolment(server_url),
            self.http_transport(),
            trusted_ca_pem,
            deadline_ms,
            cancel,
        )?;
        let out = self
            .with_sync_store(|s| doorstep_core::sync::enrol_with(s, &config, &code, &device_name));
        match &out {
            Ok(_) => emit(LogLevel::Info, "doorstep::sync", || "enrolled".into()),
            Err(e) => emit(LogLevel::Warn, "doorstep::sync", || {
                format!("enrolment failed: {}", kind(e))
            }),
        }
        Ok(out?.into())
    }

    fn sync_with_cancel(
        &self,
        server_url: String,
        token: String,
        listener: Option<Arc<dyn SyncListener>>,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
        cancel: Cancel,
    ) -> Result<SyncReport> {
        let config = configure(
            SyncConfig::new(server_url, token),
            self.http_transport(),
            trusted_ca_pem,
            deadline_ms,
            cancel,
        )?;
        emit(LogLevel::Info, "doorstep::sync", || "sync started".into());
        let out = self.with_sync_store(|s| {
            doorstep_core::sync::sync(s, &config, &mut |p| {
                if let Some(l) = &listener {
                    l.on_progress(p.into());
                }
            })
        });
        match &out {
            Ok(r) => emit(LogLevel::Info, "doorstep::sync", || {
                format!(
                    "sync finished: pushed {}, refused {}, pulled {}, {} requests, {} retries, {} bytes up, {} bytes down, {} ms",
                    r.pushed,
                    r.rejected.len(),
                    r.pulled,
                    r.requests,
                    r.retries,
                    r.bytes_up,
                    r.bytes_down,
                    r.duration.as_millis()
                )
            }),
            Err(e) => emit(LogLevel::Warn, "doorstep::sync", || {
                format!("sync failed: {}", kind(e))
            }),
        }
        Ok(out?.into())
    }

    fn import_file_with_cancel(
        &self,
        campaign_id: String,
        path: String,
        listener: Option<Arc<dyn ImportListener>>,
        cancel: Cancel,
    ) -> Result<ImportReport> {
        let campaign = parse_id("campaign_id", &campaign_id)?;
        // The file's path is the caller's: named by field, never echoed (it may hold a name).
        let file = std::fs::File::open(&path).map_err(|e| DoorstepError::InvalidInput {
            field: "path".into(),
            expected: format!("a readable roster file ({})", e.kind()),
        })?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        // A handle of its own, as a sync has: the UI's calls go on during a long import.
        let mut store = self.open_second_handle()?;
        let report = store.import_roster_with(
            campaign,
            std::io::BufReader::new(file),
            &mut |p| {
                if let Some(l) = &listener {
                    l.on_progress(ImportProgress {
                        rows_read: count(p.rows_read as u64),
                        bytes_read: count(p.bytes_read),
                        bytes_total: count(total),
                    });
                }
            },
            &cancel,
        )?;
        Ok(report.into())
    }
}

#[uniffi::export]
impl FieldStore {
    /// Enrol and sync through the app's own HTTP client from now on (`None`: the library's
    /// own, ureq with rustls, when it was built with it). On a phone, the platform's stack
    /// (`HttpURLConnection`/OkHttp, `URLSession`) brings its TLS, proxy and pinning settings
    /// (Android's network security configuration can pin the server's key); `trusted_ca_pem`
    /// must then be left out of `enrol` and `sync` (`InvalidInput(trusted_ca_pem)`).
    pub fn use_http_transport(&self, transport: Option<Arc<dyn HttpTransport>>) {
        *self.transport.lock().unwrap_or_else(|e| e.into_inner()) = transport;
    }

    /// Exchange a one-time enrolment code for this device's token (online, once). Blocking;
    /// [`FieldStore::enrol_async`] is the `suspend`/`async` form.
    ///
    /// - `server_url`: `http://` or `https://` and a host, else `InvalidInput(server_url)`
    ///   at once.
    /// - `trusted_ca_pem`: for an `https://` server whose certificate the public roots do not
    ///   vouch for, the authority (PEM) to trust instead — the pin given with the enrolment
    ///   code; keep it and pass it to every sync.
    /// - `deadline_ms`: the longest the call may take, retries included; none: 60 s. Three
    ///   attempts at most (a closed port fails in about 1.5 s).
    ///
    /// A refused code is `CodeRefused` with the reason (unknown, used, expired).
    #[uniffi::method(default(trusted_ca_pem = None, deadline_ms = None))]
    pub fn enrol(
        &self,
        server_url: String,
        code: String,
        device_name: String,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
    ) -> Result<Enrolment> {
        self.enrol_with_cancel(
            server_url,
            code,
            device_name,
            trusted_ca_pem,
            deadline_ms,
            Cancel::new(),
        )
    }

    /// [`FieldStore::enrol`] as a `suspend` (Kotlin) or `async` (Swift) function: cancelling
    /// the coroutine stops it (`docs/bindings.md`, "Cancellation").
    #[uniffi::method(default(trusted_ca_pem = None, deadline_ms = None))]
    pub async fn enrol_async(
        self: Arc<Self>,
        server_url: String,
        code: String,
        device_name: String,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
    ) -> Result<Enrolment> {
        off_thread(move |cancel| {
            self.enrol_with_cancel(
                server_url,
                code,
                device_name,
                trusted_ca_pem,
                deadline_ms,
                cancel,
            )
        })
        .await
    }

    /// Push this device's work and pull its area's changes. Blocking: call it from a background
    /// thread (WorkManager, BGTask), or use [`FieldStore::sync_async`]; the other methods keep
    /// working meanwhile. One sync runs at a time per store: a second waits for the first. Safe
    /// to call again after any error.
    ///
    /// - `trusted_ca_pem`: the pin given at enrolment, if any (see [`FieldStore::enrol`]).
    /// - `deadline_ms`: the longest the sync may take, retries included; none: ten minutes
    ///   (a new phone's whole commune over 2G). Past it the sync stops with `Network`, keeping
    ///   every page applied; the next one goes on.
    #[uniffi::method(default(trusted_ca_pem = None, deadline_ms = None))]
    pub fn sync(
        &self,
        server_url: String,
        token: String,
        listener: Option<Arc<dyn SyncListener>>,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
    ) -> Result<SyncReport> {
        self.sync_with_cancel(
            server_url,
            token,
            listener,
            trusted_ca_pem,
            deadline_ms,
            Cancel::new(),
        )
    }

    /// [`FieldStore::sync`] as a `suspend` (Kotlin) or `async` (Swift) function. Cancelling the
    /// coroutine stops the sync at its next safe point: every page applied and every batch
    /// acknowledged stays (each with its cursor, in one transaction), nothing is half-applied,
    /// and the next sync goes on from there.
    #[uniffi::method(default(trusted_ca_pem = None, deadline_ms = None))]
    pub async fn sync_async(
        self: Arc<Self>,
        server_url: String,
        token: String,
        listener: Option<Arc<dyn SyncListener>>,
        trusted_ca_pem: Option<String>,
        deadline_ms: Option<i64>,
    ) -> Result<SyncReport> {
        off_thread(move |cancel| {
            self.sync_with_cancel(
                server_url,
                token,
                listener,
                trusted_ca_pem,
                deadline_ms,
                cancel,
            )
        })
        .await
    }

    /// Import a roster file (CSV, `docs/roster-format.md`) into a campaign, reading it from
    /// `path` (the app never holds the file). `listener` hears progress every 1,000 rows. The
    /// file is read whole before anything is written, so that a file that is not UTF-8 text is
    /// refused as a whole (a 20,000-resident roster is about 2 MB); households are then
    /// written in chunks, each one transaction. Blocking; [`FieldStore::import_roster_file_async`]
    /// is the `suspend`/`async` form.
    #[uniffi::method(default(listener = None))]
    pub fn import_roster_file(
        &self,
        campaign_id: String,
        path: String,
        listener: Option<Arc<dyn ImportListener>>,
    ) -> Result<ImportReport> {
        self.import_file_with_cancel(campaign_id, path, listener, Cancel::new())
    }

    /// [`FieldStore::import_roster_file`] as a `suspend`/`async` function. Cancelling it stops
    /// the import while reading (nothing written) or between two chunks (whole chunks stay);
    /// importing the file again completes it and changes nothing already written.
    #[uniffi::method(default(listener = None))]
    pub async fn import_roster_file_async(
        self: Arc<Self>,
        campaign_id: String,
        path: String,
        listener: Option<Arc<dyn ImportListener>>,
    ) -> Result<ImportReport> {
        off_thread(move |cancel| self.import_file_with_cancel(campaign_id, path, listener, cancel))
            .await
    }

    /// This device's public key (32 bytes), for another phone to seal a bundle for it (show it
    /// as a QR code).
    pub fn public_key(&self) -> Result<Vec<u8>> {
        Ok(self.store().public_key()?)
    }

    /// A bundle of this device's signed work (and what it relays) for a file: sealed for the
    /// server when `recipient_key` is null (the server's key from enrolment; what `server_url`
    /// has acknowledged is left out), or for another phone (its `publicKey()`). The server
    /// opens it with `doorstep bundle import FILE`; a phone with `importBundle`.
    #[uniffi::method(default(recipient_key = None))]
    pub fn export_bundle(
        &self,
        server_url: String,
        recipient_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let mut store = self.store();
        let (key, peer) = match recipient_key {
            Some(k) => (k, "bundle".to_owned()),
            None => (
                store
                    .server_key()?
                    .ok_or_else(|| DoorstepError::InvalidInput {
                        field: "store".into(),
                        expected: "an enrolled store (no server key)".into(),
                    })?,
                doorstep_core::sync::push_peer(&server_url),
            ),
        };
        Ok(store.export_bundle(&key, &peer, None)?)
    }

    /// Open a bundle another phone sealed for this one, and take its work (checked as a
    /// `PeerExchange` would); the next sync delivers it to the server.
    pub fn import_bundle(&self, bundle: Vec<u8>) -> Result<crate::peer::PeerReport> {
        let report = self.store().import_bundle(&bundle)?;
        Ok(crate::peer::PeerReport::from(&report))
    }

    /// Open an area bundle `server_url`'s server made for this phone (`doorstep bundle area
    /// --device D`: the device's whole area, as its first sync would bring it, sealed for it and
    /// signed with the server's key) and take it as that sync would: the next `sync` with
    /// `server_url` starts where the file ends. For a new officer's phone at a station with a
    /// slow link. The same file again changes nothing; a file for another phone, from another
    /// server or altered is refused whole (`InvalidInput`, field `bundle`).
    pub fn import_area_bundle(&self, bundle: Vec<u8>, server_url: String) -> Result<AreaImport> {
        let mut store = self.store();
        let r = doorstep_core::sync::import_area_bundle(&mut store, &bundle, &server_url)?;
        Ok(AreaImport {
            pages: count(r.pages as u64),
            applied: count(r.applied),
            duplicates: count(r.duplicates),
            made_at_ms: r.made_at_ms,
        })
    }

    /// Until when this store may show residents offline (Unix ms; the offline lease the
    /// server renews at every sync), or `null` before enrolment. Show it; past it the reads of
    /// residents raise `LeaseExpired` until a sync.
    pub fn lease_until_ms(&self) -> Result<Option<i64>> {
        Ok(self.store().lease()?)
    }

    /// How many of this device's operations `server_url`'s server has not acknowledged, and
    /// how many the store holds.
    pub fn sync_status(&self, server_url: String) -> Result<SyncStatus> {
        let store = self.store();
        let unsent = doorstep_core::sync::unsent_ops(&store, &server_url)?;
        let held: i64 = store
            .connection()
            .query_row("SELECT count(*) FROM oplog", [], |r| r.get(0))
            .map_err(doorstep_core::Error::from)?;
        Ok(SyncStatus {
            unsent_ops: count(unsent),
            ops_held: held,
        })
    }
}

/// What opening an area bundle did (`importAreaBundle`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct AreaImport {
    /// Pull pages in the file.
    pub pages: i64,
    /// Operations new to this phone.
    pub applied: i64,
    /// Operations it already held.
    pub duplicates: i64,
    /// When the server made the file (Unix ms).
    pub made_at_ms: i64,
}
