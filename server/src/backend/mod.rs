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
//! or not at all. On SQLite, pushes that wait for the store meanwhile are committed together
//! (group commit, `group.rs`), each still all or nothing in a savepoint of its own.
//!
//! The parts: `accounts.rs` (devices, codes, users, sessions, the admin views), `batch.rs`
//! (the push check, pull, imports), `group.rs` (pushes committed together) and `console.rs`
//! (the console's writes on the core store).

mod accounts;
mod batch;
mod bundle;
pub(crate) mod console;
mod group;
mod resident;
pub mod retention;

use crate::error::Result;
use crate::storage::{Once, Storage, Tables};
use uuid::Uuid;

pub use crate::limits::MAX_PAGE;
pub use crate::model::{
    user_actor, AuditEntry, CommandUser, DeviceAuth, DeviceInfo, Enrolled, Enrolment, Gauges,
    IssuedCode, CLI_ACTOR, COMMAND_ROLES,
};
pub use batch::PullArgs;
pub use bundle::{AreaBundle, BundleImport};
pub use group::{MAX_GROUP_OPS, MAX_GROUP_PUSHES};

/// The server's behaviour over a storage backend `S` (by default any, behind `dyn`).
pub struct Backend<S: Storage + ?Sized = dyn Storage> {
    /// Pushes waiting for the store (group commit, [`group`]).
    pushes: group::PushQueue,
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
        Backend {
            pushes: group::PushQueue::default(),
            store,
        }
    }
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Run `f` with the tables, each statement committing on its own.
    fn tables<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut once = Once::new(f);
        self.store.tables(&mut |t| once.call(t))?;
        once.result("tables")
    }

    /// Run `f`, which only reads, with the committed tables ([`Storage::lookup`]).
    fn lookup<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut once = Once::new(f);
        self.store.lookup(&mut |t| once.call(t))?;
        once.result("lookup")
    }

    /// Run `f` with the tables in one transaction.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Tables) -> Result<T>) -> Result<T> {
        let mut once = Once::new(f);
        self.store.write(&mut |t| once.call(t))?;
        once.result("write")
    }

    /// Run `f` on the core store's materialised tables, up to date.
    fn view<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let mut once = Once::new(f);
        self.store.view(&mut |c| once.call(c))?;
        once.result("view")
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

    /// Publish a snapshot of this instance's view for new instances (PostgreSQL only; see
    /// [`crate::storage::Storage::publish_view`]).
    pub fn publish_view(&self, force: bool) -> Result<String> {
        self.store.publish_view(force)
    }

    /// What the core store applied lately (`crate::journal`), if the storage keeps it.
    pub fn journal(&self) -> Option<&crate::journal::Journal> {
        self.store.journal()
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

/// A name or label a person typed (a device's label, a user's name): trimmed, 1 to `max`
/// characters, no control characters. The error names the field and the limit, never the
/// value.
pub(crate) fn check_name<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(crate::error::ServerError::BadRequest(format!(
            "{field}: expected 1-{max} characters, no control characters"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    #[test]
    fn names_are_trimmed_bounded_and_never_echoed() {
        assert_eq!(
            check_name("name", "  Trạm Phước Dân ", 100).unwrap(),
            "Trạm Phước Dân"
        );
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
            match check_name("device_name", bad, 100) {
                Err(ServerError::BadRequest(m)) => {
                    assert_eq!(
                        m,
                        "device_name: expected 1-100 characters, no control characters"
                    );
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(check_name("name", &"ư".repeat(100), 100).is_ok());
    }
}
