//! Doorstep sync server: enrols devices, exchanges operations with them within their
//! officer's scope, and keeps an audit log (`docs/sync-protocol.md`, DESIGN.md §5–6).
//!
//! The server is a replica like any phone: a core [`doorstep_core::Store`] holds its operation
//! log and materialised tables, and the server's own tables (devices, feed, audit…) live in the
//! same SQLite file so that a push commits in one transaction. Layers, outside in: [`web`]
//! (the router and the handlers: the sync endpoints in [`web::sync`], the command centre's
//! sign-in, dashboard, reports, admin and roster jobs beside it; pages rendered by [`html`])
//! over [`app`] (the state every handler shares) → [`backend`] (the storage trait) →
//! [`sqlite`] or [`pg`] (PostgreSQL for the shared state, a core store per instance as its
//! materialised view), with [`scope`] deciding what a device may see and change and
//! [`cursor`] encoding pull positions.

pub mod app;
pub mod auth;
pub mod backend;
pub mod cursor;
pub mod demo;
pub mod error;
pub mod html;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod pg;
pub mod scope;
pub mod sqlite;
pub mod stats;
pub mod storage;
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

/// Serve on `listener` until `shutdown` resolves; then stop accepting and finish the requests
/// in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Build the statistics snapshot now rather than on the first dashboard request (seconds
    // at province scale).
    let warm = state.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = warm.snapshot() {
            tracing::warn!(error = %e, "statistics snapshot not built at start");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
