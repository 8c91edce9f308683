//! The embedded-SQLite backend: the server's tables live in the core store's own file.
//!
//! Keeping `devices`, `feed`, `quarantine`… in the same file as the operation log is what lets
//! a push merge the batch, file its feed rows and record the device's acknowledgement in one
//! transaction: [`Storage::apply`] is the core's [`Store::apply_checked`], with the server's
//! check and its table writes running inside the core's transaction. That, and filing the
//! console's own operations after its writes, is all that is SQLite's own here (with the
//! group commit of pushes waiting for the store: [`Storage::apply_group`] is the core's
//! [`Store::apply_checked_group`], one transaction, a savepoint each); the rules are
//! [`crate::backend`]'s. The core `Store` is `!Sync` and owns the single writer connection, so
//! it sits behind a mutex; the HTTP layer calls in from `spawn_blocking`.
//!
//! Files: [`schema`] (tables and migrations), `tables` (one statement a method), `feed` (feed
//! rows and the pull snapshot).

mod feed;
pub mod schema;
mod tables;

use crate::backend::Backend;
use crate::cursor::FeedSnapshot;
use crate::error::{Result, ServerError};
use crate::journal::{Journal, Pending};
use crate::scope;
use crate::storage::{core_error, Check, FeedRow, Finish, GroupBatch, Storage, Tables};
use doorstep_core::{CheckedBatch, Op, Options, Store, StoreKey};
use feed::{feed_ops, insert_feed, SqliteFeed, SqliteMoves};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tables::SqliteTables;
use uuid::Uuid;

pub use schema::{migrate, SERVER_SCHEMA_VERSION};

/// The server over SQLite.
pub type SqliteBackend = Backend<SqliteStorage>;

/// The server's tables and the core store in one SQLite file.
pub struct SqliteStorage {
    store: Mutex<Store>,
    replica: Uuid,
    /// The database file (none in memory): statistics read it through their own connection,
    /// so a long read never holds the writer's lock.
    path: Option<PathBuf>,
    reader: Mutex<Option<Connection>>,
    /// A read-only connection for short look-ups beside the writer ([`Storage::lookup`]).
    lookups: Mutex<Option<Connection>>,
    /// The file's key when it is encrypted at rest (the reader is opened with it too).
    key: Option<StoreKey>,
    /// What the store applied lately, for the statistics (`crate::journal`).
    journal: Journal,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl Backend<SqliteStorage> {
    /// Open (creating or migrating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend> {
        Ok(Backend::new(SqliteStorage::open(path)?))
    }

    /// Open (creating or migrating) the database at `path`, encrypted at rest with `key`
    /// (AEGIS-256, as the phones' stores). A database that is not encrypted yet is
    /// encrypted in place first, crash-safely ([`Store::open_encrypted`]); a key that does not
    /// open the file is `ServerError::Core(doorstep_core::Error::WrongKey)`.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &StoreKey) -> Result<SqliteBackend> {
        Ok(Backend::new(SqliteStorage::open_encrypted(path, key)?))
    }

    /// A database in memory (tests).
    pub fn open_in_memory() -> Result<SqliteBackend> {
        Ok(Backend::new(SqliteStorage::open_in_memory()?))
    }

    /// Run `f` on the store (the demo generator, tests and tools that read the server's
    /// tables).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut store = self.store.lock()?;
        let out = f(&mut store);
        // What `f` wrote is not known: the statistics rebuild.
        self.store.journal.record_unknown();
        Ok(out)
    }
}

impl Backend<SqliteStorage> {
    /// Hold the store (the single writer) while `f` runs, writing nothing: pushes arriving
    /// meanwhile queue up behind it (tests of the group commit).
    pub fn hold_store<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _store = self.store.lock()?;
        Ok(f())
    }
}

impl SqliteStorage {
    /// Open (creating or migrating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage> {
        let p = path.as_ref().to_path_buf();
        Self::from_store(Store::open(path, Options::default())?, Some(p), None)
    }

    /// Open (creating or migrating) the database at `path`, encrypted with `key`.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &StoreKey) -> Result<SqliteStorage> {
        let p = path.as_ref().to_path_buf();
        let store = Store::open_encrypted(path, key, Options::default())?;
        Self::from_store(store, Some(p), Some(key.clone()))
    }

    /// A database in memory (tests).
    pub fn open_in_memory() -> Result<SqliteStorage> {
        Self::from_store(Store::open_in_memory(Options::default())?, None, None)
    }

    fn from_store(
        mut store: Store,
        path: Option<PathBuf>,
        key: Option<StoreKey>,
    ) -> Result<SqliteStorage> {
        migrate(store.connection())?;
        // Every start is a new generation (a restored database is detected by it), and the
        // console's counters start past every one a lost history may have issued.
        crate::storage::begin_generation(&mut SqliteTables(store.connection()))?;
        let floor = store.now_ms().max(0) as u64;
        store.reserve_counters_through(floor)?;
        let replica = store.replica_id().0;
        let backend = SqliteStorage {
            store: Mutex::new(store),
            replica,
            path,
            reader: Mutex::new(None),
            lookups: Mutex::new(None),
            key,
            journal: Journal::default(),
        };
        // A crash between a console command's write and its feed rows is mended here.
        backend.feed_own_ops(&*backend.lock()?)?;
        Ok(backend)
    }

    /// A read-only connection to the file, keyed as the writer is.
    fn open_reader(&self, path: &Path) -> Result<Connection> {
        Ok(match &self.key {
            Some(key) => Store::open_reader_encrypted(path, key)?,
            None => Store::open_reader(path)?,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        self.store
            .lock()
            .map_err(|_| ServerError::Internal("store mutex poisoned".into()))
    }

    /// File in the feed every operation this server's own replica made that is not there yet
    /// (console commands write through the core's API, which knows nothing of the feed).
    fn feed_own_ops(&self, store: &Store) -> Result<usize> {
        let conn = store.connection();
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let ops: Vec<(u64, Op)> = feed_ops(
            &tx,
            // Only past the highest one filed (an index look-up), as on PostgreSQL: own
            // operations are filed in counter order, so none below it is missing. Scanning
            // every own operation against the feed cost each console write a pass over the
            // server's whole replica (hundreds of thousands of roster operations).
            "SELECT 0, o.replica, o.counter, o.hlc, o.body FROM oplog o
             WHERE o.replica = ?1 AND o.counter >
                 (SELECT coalesce(max(f.counter), 0) FROM feed f WHERE f.replica = ?1)
             ORDER BY o.counter",
            [self.replica.as_bytes().as_slice()],
        )?;
        for (_, op) in &ops {
            let area = scope::console_op_area(&tx, op)?;
            let row = FeedRow {
                op,
                area: area.feed_area(),
                from: area.from_area(),
            };
            insert_feed(&tx, &row)?;
        }
        tx.commit()?;
        self.journal.record(ops.iter().map(|(_, op)| op));
        Ok(ops.len())
    }

    /// Run `f` read-only in one read transaction on `conn`.
    fn in_read_tx(conn: &Connection, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()> {
        conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(conn);
        // A read transaction: ending it cannot lose anything.
        let end = conn.execute_batch("COMMIT");
        out?;
        end?;
        Ok(())
    }
}

impl Storage for SqliteStorage {
    fn replica(&self) -> Uuid {
        self.replica
    }

    fn tables(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        let store = self.lock()?;
        f(&mut SqliteTables(store.connection()))
    }

    fn lookup(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        let Some(path) = &self.path else {
            return self.tables(f);
        };
        let mut lookups = self
            .lookups
            .lock()
            .map_err(|_| ServerError::Internal("lookup mutex poisoned".into()))?;
        let conn = match &mut *lookups {
            Some(conn) => conn,
            none => none.insert(self.open_reader(path)?),
        };
        f(&mut SqliteTables(conn))
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        f(&mut SqliteTables(&tx))?;
        tx.commit()?;
        Ok(())
    }

    fn view(&self, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()> {
        f(self.lock()?.connection())
    }

    fn read_view(&self, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()> {
        match &self.path {
            Some(path) => {
                let mut reader = self
                    .reader
                    .lock()
                    .map_err(|_| ServerError::Internal("reader mutex poisoned".into()))?;
                let conn = match &mut *reader {
                    Some(conn) => conn,
                    none => none.insert(self.open_reader(path)?),
                };
                Self::in_read_tx(conn, f)
            }
            None => Self::in_read_tx(self.lock()?.connection(), f),
        }
    }

    /// The core applies the batch, and the server's rows (feed, quarantine, acknowledgement)
    /// are written inside the core's own transaction: one commit for all.
    fn apply(&self, ops: &[Op], check: &mut Check<'_>, finish: &mut Finish<'_>) -> Result<()> {
        let mut store = self.lock()?;
        let mut touched = Pending::default();
        store.apply_checked(
            ops,
            |conn, op| check(conn, &mut SqliteMoves(conn), op).map_err(core_error),
            |conn, applied| {
                touched = Pending::of(applied.iter().copied());
                finish(&mut SqliteTables(conn), applied).map_err(core_error)
            },
        )?;
        // Committed: the statistics follow (before the store is unlocked).
        self.journal.record_pending(touched);
        Ok(())
    }

    /// Group commit: the core applies every batch in one transaction, each in a savepoint of
    /// its own (a batch that fails is rolled back alone), with one commit for all; the
    /// statistics then follow what each batch kept.
    fn apply_group(&self, batches: &mut [GroupBatch<'_>]) -> Result<Vec<Result<()>>> {
        let mut store = self.lock()?;
        let ops: Vec<&[Op]> = batches.iter().map(|b| b.ops).collect();
        let mut touched: Vec<Pending> = batches.iter().map(|_| Pending::default()).collect();
        let mut checks = Vec::with_capacity(batches.len());
        let mut finishes = Vec::with_capacity(batches.len());
        for (b, touched) in batches.iter_mut().zip(touched.iter_mut()) {
            let check = &mut *b.check;
            checks.push(move |conn: &Connection, op: &Op| {
                check(conn, &mut SqliteMoves(conn), op).map_err(core_error)
            });
            let finish = &mut *b.finish;
            finishes.push(move |conn: &Connection, applied: &[&Op]| {
                *touched = Pending::of(applied.iter().copied());
                finish(&mut SqliteTables(conn), applied).map_err(core_error)
            });
        }
        let mut group: Vec<CheckedBatch<'_>> = ops
            .into_iter()
            .zip(checks.iter_mut())
            .zip(finishes.iter_mut())
            .map(|((ops, check), finish)| CheckedBatch { ops, check, finish })
            .collect();
        let results = store.apply_checked_group(&mut group)?;
        drop(group);
        drop(finishes);
        // Committed: the statistics follow what each batch kept (before the store is
        // unlocked); a batch rolled back to its savepoint touched nothing.
        for (r, touched) in results.iter().zip(touched) {
            if r.is_ok() {
                self.journal.record_pending(touched);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(ServerError::from))
            .collect())
    }

    fn groups_commits(&self) -> bool {
        true
    }

    /// The core write commits on its own; its operations are then filed in the feed, and
    /// `finish` (the audit entry) follows. A crash in between is mended at the next start.
    fn console_write(
        &self,
        write: &mut dyn FnMut(&mut Store) -> Result<()>,
        finish: &mut dyn FnMut(&mut dyn Tables) -> Result<()>,
    ) -> Result<()> {
        let mut store = self.lock()?;
        scope::remember_console_moves(store.connection())?;
        let filed = write(&mut store).and_then(|()| self.feed_own_ops(&store));
        scope::forget_console_moves(store.connection())?;
        filed?;
        finish(&mut SqliteTables(store.connection()))
    }

    fn feed(
        &self,
        replica: Uuid,
        f: &mut dyn FnMut(&mut dyn FeedSnapshot) -> Result<()>,
    ) -> Result<()> {
        let store = self.lock()?;
        // One read transaction: the page is a consistent snapshot of the feed.
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Deferred)?;
        f(&mut SqliteFeed { conn: &tx, replica })?;
        tx.commit()?;
        Ok(())
    }

    fn journal(&self) -> Option<&Journal> {
        Some(&self.journal)
    }

    /// One writer by construction: no lock between instances.
    fn feed_lock(&self) -> Option<(u64, u64)> {
        None
    }
}
