//! Forwarding log lines to the host app's logger (Logcat, os_log, `logging`).
//!
//! The core does not log; this layer reports sync start and end with counts only — never a
//! name, phone or ID number, never a token. One sink for the process, set by the app at start.

use std::sync::{Arc, RwLock};

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Fine detail.
    Debug,
    /// Normal events (a sync finished).
    Info,
    /// Something failed and the app will see an error.
    Warn,
}

/// Where log lines go: implemented by the host app.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One line. `target` names the part of the library (`doorstep::sync`).
    fn log(&self, level: LogLevel, target: String, line: String);
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);

/// Send the library's log lines to `sink` (replacing any earlier one).
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
}

/// Stop forwarding log lines.
#[uniffi::export]
pub fn clear_log_sink() {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Log a line if a sink is set. Callers pass counts and kinds, never personal data.
pub(crate) fn emit(level: LogLevel, target: &str, line: impl FnOnce() -> String) {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(sink) = sink {
        sink.log(level, target.to_owned(), line());
    }
}
