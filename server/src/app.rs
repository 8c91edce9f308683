//! The application state every request handler shares ([`AppState`]): the storage, the
//! counters, the command centre's statistics cache, the demo flag and the roster imports in
//! progress; and the one way a handler calls the storage, [`AppState::blocking`] (backend
//! calls block, so they run off the async threads).
//!
//! This module stands below the handlers (`crate::web`) and depends only on the layers under
//! them: the backend, the statistics and the metrics.

use crate::backend::Backend;
use crate::error::{Result, ServerError};
use crate::metrics::Metrics;
use crate::stats::{Snapshot, StatsCache, DEFAULT_DEBOUNCE_MS};
use doorstep_core::roster::ImportReport;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Gives the pin of the key served now (it follows a renewed certificate).
pub type TlsPin = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The storage.
    pub backend: Arc<Backend>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// Request body limit after decompression.
    pub max_body_bytes: usize,
    /// The command centre's statistics, kept up to date from each batch (`crate::stats`).
    pub stats: Arc<StatsCache>,
    /// Demo mode: the dashboard opens without sign-in as province command, with a banner.
    pub demo: bool,
    /// Served over TLS (`serve --tls-cert`): cookies are `Secure` and answers carry HSTS.
    pub tls: bool,
    /// The pin of the key served over TLS (`serve --tls-cert`: the certificate now served,
    /// `web::tls::ReloadingCert::pin`), which the devices page shows beside a new enrolment code.
    pub tls_pin: Option<TlsPin>,
    /// `serve --require-totp`: district and province users without a second factor cannot
    /// sign in.
    pub require_totp: bool,
    /// Failed sign-ins per account and address, and the bound on password hashing.
    pub signin_guard: Arc<crate::throttle::SigninGuard>,
    /// Roster imports started from the admin pages, for their progress bars.
    pub jobs: Arc<Jobs>,
    /// How long a device may show personal data offline after its last pull (`serve
    /// --lease-days`; [`DEFAULT_LEASE_MS`]).
    pub lease_ms: i64,
}

/// The default offline lease: 14 days.
pub const DEFAULT_LEASE_MS: i64 = 14 * 24 * 3600 * 1000;

impl AppState {
    /// Shared state over a backend, with fresh counters and an empty statistics cache.
    pub fn new(backend: Arc<Backend>, max_body_bytes: usize) -> AppState {
        AppState {
            backend,
            metrics: Arc::default(),
            max_body_bytes,
            stats: Arc::new(StatsCache::new(DEFAULT_DEBOUNCE_MS)),
            demo: false,
            tls: false,
            tls_pin: None,
            require_totp: false,
            signin_guard: Arc::default(),
            jobs: Arc::default(),
            lease_ms: DEFAULT_LEASE_MS,
        }
    }

    /// Run `f` on a blocking thread with (a clone of) the state: every backend call from a
    /// handler goes through here.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ServerError::Internal(format!("worker failed: {e}")))?
    }

    /// The statistics snapshot, brought up to date with the batches committed so far (ADR
    /// 0009; blocks: call it inside [`AppState::blocking`]).
    pub fn snapshot(&self) -> Result<Arc<Snapshot>> {
        self.stats.get(&self.backend)
    }
}

/// A roster import started from the admin page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    /// Bytes of the upload.
    pub total_bytes: u64,
    /// Bytes read so far.
    pub bytes_read: u64,
    /// Rows read so far.
    pub rows_read: u64,
    /// Finished (with a report or an error).
    pub done: bool,
    /// The import's report when done: counts and every rejected row (line and reason; no
    /// personal data).
    pub report: Option<JobReport>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Who started it.
    #[serde(skip)]
    pub owner: Uuid,
}

/// What a roster import did (`doorstep_core::roster::ImportReport`, serialisable).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobReport {
    /// Data rows.
    pub rows: usize,
    /// Rows accepted.
    pub accepted: usize,
    /// Households written.
    pub households_changed: usize,
    /// Residents written.
    pub residents_changed: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Rejected rows: line number and reason (names the column, never the value).
    pub rejected: Vec<(u64, String)>,
}

impl From<&ImportReport> for JobReport {
    fn from(r: &ImportReport) -> JobReport {
        JobReport {
            rows: r.rows,
            accepted: r.accepted,
            households_changed: r.households_changed,
            residents_changed: r.residents_changed,
            unchanged: r.unchanged,
            rejected: r
                .rejected
                .iter()
                .map(|x| (x.line, x.reason.clone()))
                .collect(),
        }
    }
}

/// Roster imports in progress or done, by id (kept for the server's life; small).
#[derive(Debug, Default)]
pub struct Jobs {
    /// The jobs.
    pub jobs: Mutex<HashMap<Uuid, Job>>,
}

impl Jobs {
    /// Update a job.
    pub fn update(&self, id: Uuid, f: impl FnOnce(&mut Job)) {
        if let Ok(mut j) = self.jobs.lock() {
            if let Some(job) = j.get_mut(&id) {
                f(job);
            }
        }
    }

    /// A job's state.
    pub fn get(&self, id: Uuid) -> Option<Job> {
        self.jobs.lock().ok().and_then(|j| j.get(&id).cloned())
    }
}
