//! Doorstep sync server: enrols devices, exchanges operations with them within their
//! officer's scope, keeps an audit log (`docs/sync-protocol.md`, DESIGN.md §5–6), and serves
//! the command centre (`docs/dashboard-api.md`).
//!
//! The server is a replica like any phone: a core [`doorstep_core::Store`] holds its operation
//! log and materialised tables (on PostgreSQL, each instance's view of the shared feed). The
//! layers, outside in — each imports only those below it (`tests/layers.rs` checks):
//!
//! | layer | modules |
//! | --- | --- |
//! | roll-up | [`national`]: `doorstep national`, the country's figures read from the province servers' report APIs (no database; uses [`html`] and [`auth`]) |
//! | HTTP | [`web`]: the route table (`web/mod.rs`) and the handlers — the sync endpoints ([`web::sync`]), sign-in, dashboard, reports, admin, roster jobs; pages rendered by [`html`] (markup only) |
//! | shared state | [`app`]: [`AppState`], the one blocking-call helper, the job registry |
//! | behaviour | [`backend`]: every rule once — enrolment and accounts (`backend/accounts.rs`), the push check and pull (`backend/batch.rs`), console writes (`backend/console.rs`); [`scope`] (which villages a device may see and change), [`authority`] (which role may write what), [`throttle`] (failed sign-ins slow down, hashing bounded), [`totp`] (the second factor's codes), [`cursor`] (pull positions), [`limits`] |
//! | statistics | [`stats`]: the counting rules, each named in the map at the top of `stats/mod.rs`; report files in [`stats::export`] |
//! | storage | [`storage`]: what a backend implements (ADR 0007), and the [`journal`] of what it applied (ADR 0009); [`sqlite`] and [`pg`], each with its migrations in `schema.rs`; the records they exchange in [`model`] |
//!
//! Where to look: the push check — `backend/batch.rs`; the scope rule — `scope.rs`; who may
//! write what — `authority.rs`; a
//! counting rule — `stats/mod.rs`'s map; a page — `web/mod.rs`'s route table, then `html/`;
//! a migration — `sqlite/schema.rs`, `pg/schema.rs` (the core's: `core/src/schema.rs`); a
//! limit — `limits.rs`. The demo data set generator is [`demo`] (cargo feature `demo`).

pub mod app;
pub mod auth;
pub mod authority;
pub mod backend;
pub mod backup;
pub mod console_io;
pub mod cursor;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
#[cfg(feature = "test-utils")]
pub mod fuzz;
pub mod generation;
pub mod html;
pub mod hub;
pub mod journal;
pub mod key_file;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod national;
pub mod pg;
pub mod scope;
pub mod sqlite;
pub mod stats;
pub mod storage;
pub mod throttle;
pub mod totp;
pub mod web;

pub use app::AppState;
pub use backend::Backend;
pub use error::{Result, ServerError};
pub use pg::PgBackend;
pub use sqlite::SqliteBackend;
/// Report files (XLSX, CSV, JSON) under their former name: [`stats::export`].
pub use stats::export as reports;
pub use web::router;
/// The sync endpoints under their former name (`doorstep_server::http::DEFAULT_MAX_BODY_BYTES`
/// and the other limits): [`web::sync`].
pub use web::sync as http;

use std::future::Future;
use std::sync::Arc;

/// The server's clock, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Shared state over a backend, with fresh counters.
pub fn state(backend: Arc<Backend>, max_body_bytes: usize) -> AppState {
    AppState::new(backend, max_body_bytes)
}

/// Serve over TLS on `listener` with the certificate `cert` (reloaded when its files change)
/// until `shutdown` resolves; then stop accepting and give open connections a grace period.
/// Session cookies are `Secure` and answers carry HSTS.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    mut state: AppState,
    cert: Arc<web::tls::ReloadingCert>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.tls = true;
    let served = cert.clone();
    state.tls_pin = Some(Arc::new(move || served.pin()));
    warm_statistics(&state);
    web::tls::serve_tls(listener, router(state), cert, shutdown).await
}

/// Build the statistics snapshot now rather than on the first dashboard request (seconds at
/// province scale).
fn warm_statistics(state: &AppState) {
    // Retention: campaigns whose period ran out are purged (not the demo's synthetic 2023 data).
    if !state.demo {
        backend::retention::spawn_maintenance(
            state.backend.clone(),
            backend::retention::maintenance_period(),
        );
    }
    let warm = state.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = warm.snapshot() {
            tracing::warn!(error = %e, "statistics snapshot not built at start");
        }
    });
}

/// Serve on `listener` until `shutdown` resolves; then stop accepting and finish the requests
/// in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    warm_statistics(&state);
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
