//! Sync and enrolment types for the bindings, and the foreign progress listener.

use crate::model::count;
use doorstep_core::sync as core_sync;

/// Where a sync is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncProgress {
    /// A page was pulled and applied.
    Pulled {
        /// Operations pulled so far.
        ops: i64,
        /// Whether more pages wait.
        more: bool,
    },
    /// A batch was pushed and acknowledged.
    Pushed {
        /// Operations sent so far.
        ops: i64,
        /// Operations still to send.
        remaining: i64,
    },
}

impl From<core_sync::SyncProgress> for SyncProgress {
    fn from(p: core_sync::SyncProgress) -> Self {
        match p {
            core_sync::SyncProgress::Pulled { ops, more } => SyncProgress::Pulled {
                ops: count(ops),
                more,
            },
            core_sync::SyncProgress::Pushed { ops, remaining } => SyncProgress::Pushed {
                ops: count(ops),
                remaining: count(remaining),
            },
        }
    }
}

/// Receives sync progress: implemented by the host app. Called on the syncing thread; post to
/// the UI thread yourself.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// A page was pulled or a batch pushed.
    fn on_progress(&self, progress: SyncProgress);
}

/// An operation the server refused (not resent).
#[derive(Debug, Clone, uniffi::Record)]
pub struct RefusedOp {
    /// The operation's counter on this replica.
    pub counter: i64,
    /// `out_of_scope`, `forbidden`, `clock_ahead` or `invalid`.
    pub reason: String,
}

/// What a sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncReport {
    /// Operations the server took from this device.
    pub pushed: i64,
    /// Operations the server already held.
    pub push_duplicates: i64,
    /// Operations the server refused.
    pub refused: Vec<RefusedOp>,
    /// Other devices' operations this device carried (from an exchange) that the server took.
    pub relayed: i64,
    /// Operations pulled that were new here.
    pub pulled: i64,
    /// Operations pulled that this replica already held.
    pub pull_duplicates: i64,
    /// Bytes sent (compressed).
    pub bytes_up: i64,
    /// Bytes received (compressed).
    pub bytes_down: i64,
    /// HTTP requests answered.
    pub requests: i32,
    /// Attempts retried.
    pub retries: i32,
    /// How long it took, ms.
    pub duration_ms: i64,
    /// The clock correction measured: server time − device time, ms.
    pub clock_offset_ms: i64,
    /// The server revoked this device and ordered it (signed) to erase what it held: after a
    /// last push, the store was wiped. Show it, and ask the station for a new enrolment.
    pub wiped: bool,
    /// Households erased because they left this device's scope (their village did, or they
    /// moved to a village outside it), plus residents erased on their own (moved to a
    /// household of such a village).
    pub forgotten: i64,
}

impl From<core_sync::SyncReport> for SyncReport {
    fn from(r: core_sync::SyncReport) -> Self {
        SyncReport {
            pushed: count(r.pushed),
            push_duplicates: count(r.push_duplicates),
            refused: r
                .rejected
                .into_iter()
                .map(|x| RefusedOp {
                    counter: count(x.counter),
                    reason: x.reason,
                })
                .collect(),
            relayed: count(r.relayed),
            pulled: count(r.pulled),
            pull_duplicates: count(r.pull_duplicates),
            bytes_up: count(r.bytes_up),
            bytes_down: count(r.bytes_down),
            requests: i32::try_from(r.requests).unwrap_or(i32::MAX),
            retries: i32::try_from(r.retries).unwrap_or(i32::MAX),
            duration_ms: count(r.duration.as_millis() as u64),
            clock_offset_ms: r.clock_offset_ms,
            wiped: r.wiped,
            forgotten: count(r.forgotten),
        }
    }
}

/// What enrolment gives the device.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Enrolment {
    /// The device's id on the server.
    pub device_id: String,
    /// The bearer token: keep it in the platform's secure storage.
    pub token: String,
    /// The officer the device belongs to.
    pub officer_id: String,
}

impl From<core_sync::Enrolment> for Enrolment {
    fn from(e: core_sync::Enrolment) -> Self {
        Enrolment {
            device_id: e.device_id.to_string(),
            token: e.token,
            officer_id: e.officer_id.to_string(),
        }
    }
}
