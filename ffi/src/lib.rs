//! uniffi bindings of the Doorstep core for Kotlin, Swift and Python.
//!
//! A thin layer with no domain logic: [`FieldStore`] wraps the core's `Store`, records and
//! enums mirror the core's types ([`model`]), [`DoorstepError`] turns the core's errors into the
//! actions a caller can take, and foreign traits let the app follow a sync
//! ([`SyncListener`]), receive log lines ([`LogSink`]) and give its own HTTP client
//! ([`HttpTransport`]). `docs/bindings.md` says how to build
//! and use them; `scripts/bindings.sh` generates the Kotlin, Swift and Python sources.

// The namespace names the generated Python module (`doorstep.py`) and the Kotlin file; the
// Kotlin package and Swift module come from `uniffi.toml`.
uniffi::setup_scaffolding!("doorstep");

#[macro_use]
pub mod model;
pub mod activity;
pub mod calls;
pub mod error;
pub mod http;
pub mod log;
pub mod peer;
pub mod store;
pub mod sync;

pub use activity::{NewOutreach, NewSession, OutreachKind, SessionKind};
pub use calls::{ImportListener, ImportProgress, SyncStatus};
pub use error::{CodeRefusal, DoorstepError};
pub use http::{HttpAnswer, HttpFailure, HttpHeader, HttpTransport};
pub use log::{clear_log_sink, set_log_sink, LogLevel, LogSink};
pub use model::*;
pub use peer::{PeerExchange, PeerReport};
pub use store::FieldStore;
pub use sync::{Enrolment, RefusedOp, SyncListener, SyncProgress, SyncReport};

/// A new record id (UUIDv7), for campaigns and officers made on this device.
#[uniffi::export]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The version of this library.
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
