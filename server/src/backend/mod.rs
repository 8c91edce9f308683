//! The server's behaviour, written once: enrolment, device and user authentication, sessions,
//! the first admin, enrolment codes, revocation, the admin views, command users, console
//! writes, and a device's push (the scope check, quarantine, acknowledgement) and pull.
//!
//! [`Backend`] holds every rule and limit; it stands on a [`Storage`] (`crate::storage`) that
//! only reads and writes rows: embedded SQLite ([`crate::sqlite::SqliteBackend`], the default)
//! or PostgreSQL for province scale ([`crate::pg::PgBackend`], several instances on one
//! database; `docs/adr/0006-postgres-backend.md`). Both are `Backend<S>` with a concrete
//! storage, and coerce to `Arc<Backend>` (over `dyn Storage`), which the HTTP layer holds.
//! The methods are blocking (the HTTP layer calls them on `spawn_blocking`) and each is one
//! transaction: a push's merge, its feed rows and the device's acknowledgement commit together
//! or not at all.
//!
//! The parts: `accounts.rs` (devices, codes, users, sessions, the admin views), `batch.rs`
//! (the push check, pull, imports) and `console.rs` (the console's writes on the core store).

mod accounts;
mod batch;
pub(crate) mod console;

use crate::error::{Result, ServerError};
use crate::storage::{Storage, Tables};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::limits::MAX_PAGE;

/// The server's behaviour over a storage backend `S` (by default any, behind `dyn`).
pub struct Backend<S: Storage + ?Sized = dyn Storage> {
    /// The tables and the core store (last: `Backend<SqliteStorage>` coerces to `Backend`).
    pub(crate) store: S,
}

impl<S: Storage + ?Sized> std::fmt::Debug for Backend<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("store", &&self.store)
            .finish()
    }
}

impl<S: Storage> Backend<S> {
    /// The server's behaviour over `store`.
    pub fn new(store: S) -> Backend<S> {
        Backend { store }
    }
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Run `f` with the tables, each statement committing on its own.
    fn tables<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.tables(&mut |t| {
            out = Some(f.take().expect("run once")(t)?);
            Ok(())
        })?;
        out.ok_or_else(|| ServerError::Internal("tables: not run".into()))
    }

    /// Run `f` with the tables in one transaction.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.write(&mut |t| {
            out = Some(f.take().expect("run once")(t)?);
            Ok(())
        })?;
        out.ok_or_else(|| ServerError::Internal("write: not run".into()))
    }

    /// Run `f` on the core store's materialised tables, up to date.
    fn view<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.store.view(&mut |c| {
            out = Some(f.take().expect("run once")(c)?);
            Ok(())
        })?;
        out.ok_or_else(|| ServerError::Internal("view: not run".into()))
    }

    /// Whether the database answers.
    pub fn health(&self) -> Result<()> {
        self.tables(|t| t.health())
    }

    /// The server's replica id.
    pub fn server_replica(&self) -> Uuid {
        self.store.replica()
    }

    /// Run `f` on a connection to the core store's materialised tables (units, residents,
    /// account_state, assists…; `docs/store.md`), read-only and inside one read transaction so
    /// that every query sees the same state. The command centre's statistics
    /// ([`crate::stats`]) are computed this way, whatever the backend.
    pub fn read_view(&self, f: &mut dyn FnMut(&rusqlite::Connection) -> Result<()>) -> Result<()> {
        self.store.read_view(f)
    }

    /// Counts for `/metrics`.
    pub fn gauges(&self) -> Result<Gauges> {
        use crate::storage::Counted;
        let feed_lock = self.store.feed_lock();
        self.tables(|t| {
            Ok(Gauges {
                devices_active: t.count(Counted::DevicesActive)?,
                devices_revoked: t.count(Counted::DevicesRevoked)?,
                quarantined: t.count(Counted::Quarantined)?,
                feed_rows: t.count(Counted::FeedRows)?,
                clock_offsets: t.clock_offsets()?,
                feed_lock,
            })
        })
    }
}

/// The actor written to the audit log for commands run on the server's console.
pub const CLI_ACTOR: &str = "cli";

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// The device's id.
    pub device_id: Uuid,
    /// Its officer.
    pub officer_id: Uuid,
    /// Its store's replica id.
    pub replica: Uuid,
}

/// A user of the command centre (dashboard, reports, admin pages, the admin API): a command
/// user signed in with a password (`commune_lead`, `district`, `province`, scoped to
/// `unit_code`), or an admin (every unit) holding a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUser {
    /// The user's id.
    pub user_id: Uuid,
    /// Their sign-in name.
    pub name: String,
    /// `admin`, `commune_lead`, `district` or `province`.
    pub role: String,
    /// The unit they may see (everything under it); `None` for an admin: every unit.
    pub unit_code: Option<String>,
}

impl CommandUser {
    /// How the user is named in the audit log.
    pub fn actor(&self) -> String {
        user_actor(self.user_id)
    }
}

/// How a user is named in the audit log.
pub fn user_actor(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

/// The roles a command user may have, with the unit level each is scoped to.
pub const COMMAND_ROLES: &[(&str, &str)] = &[
    ("commune_lead", "commune"),
    ("district", "district"),
    ("province", "province"),
];

/// An enrolment to perform.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The code as typed.
    pub code: String,
    /// A label for the device.
    pub device_name: String,
    /// The device's replica id.
    pub replica: Uuid,
    /// The device's clock.
    pub device_time_ms: i64,
}

/// What an enrolment made.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The new device.
    pub device_id: Uuid,
    /// Its token (returned once, stored hashed).
    pub token: String,
    /// Its officer.
    pub officer_id: Uuid,
    /// The server's replica id.
    pub server_replica: Uuid,
}

/// An issued enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    /// The code (shown once, stored hashed).
    pub code: String,
    /// When it stops working, Unix ms.
    pub expires_ms: i64,
}

/// A device as admins see it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Its id.
    pub id: Uuid,
    /// Its officer.
    pub officer_id: Uuid,
    /// Its replica id.
    pub replica: Uuid,
    /// The label it gave.
    pub name: String,
    /// When it enrolled, Unix ms.
    pub enrolled_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// Highest counter of its replica the server has processed.
    pub acked_counter: u64,
    /// Last request, Unix ms.
    pub last_seen_ms: Option<i64>,
    /// `server_time - device_time` at its last request.
    pub clock_offset_ms: Option<i64>,
}

/// An audit entry (no personal data: ids and counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who: `cli`, `user:<id>`, `device:<id>`.
    pub actor: String,
    /// What: `bootstrap`, `officer_add`, `assign`, `units_import`, `enrol_code`, `enrol`,
    /// `revoke`, `ops_import`.
    pub action: String,
    /// On what (an id).
    pub target: String,
    /// Details (counts, durations).
    pub detail: String,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Devices enrolled and not revoked.
    pub devices_active: u64,
    /// Devices revoked.
    pub devices_revoked: u64,
    /// Operations in quarantine.
    pub quarantined: u64,
    /// Feed rows.
    pub feed_rows: u64,
    /// `(device id, clock offset ms)` of active devices that have synced.
    pub clock_offsets: Vec<(Uuid, i64)>,
    /// PostgreSQL: `(times taken, total nanoseconds waited)` for the feed lock by this process
    /// since it started (how much instances queue behind each other's pushes); `None` on
    /// SQLite, which has one writer by construction.
    pub feed_lock: Option<(u64, u64)>,
}
