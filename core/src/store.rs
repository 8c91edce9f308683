//! The store: one SQLite file per replica, its operation log and materialised tables.
//!
//! # Durability
//!
//! Every public write is one IMMEDIATE transaction that appends the operations to the log,
//! updates the materialised tables and the replica's counter, and commits before the call
//! returns. The journal is a write-ahead log (WAL). With [`Durability::Full`] (the default)
//! SQLite syncs the WAL on every commit, so a call that returned `Ok` survives an app crash
//! *and* a power loss. With [`Durability::Normal`] a returned write survives an app crash (the
//! OS has it) but the last writes before a power loss may be rolled back — never half-applied.
//!
//! # Concurrency
//!
//! A `Store` owns one connection and writes through `&mut self`; wrap it in a mutex to share
//! it. Apps that want to read with plain SQL while a sync writes open a second, read-only
//! connection with [`Store::open_reader`]: WAL lets readers run beside the writer.

use crate::hlc::{Clock, Hlc, HlcGenerator, SystemClock, DEFAULT_MAX_DRIFT_MS};
use crate::key::{self, StoreKey};
use crate::merge::{materialize_with, Deferred, Stamps, Statements};
use crate::model::{Entity, Field};
use crate::op::{Op, OpBody, ReplicaId, Stamp, VersionVector};
use crate::schema;
use crate::{Error, Result};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What a returned write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: survives app crashes and power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives app crashes; a power loss may roll back the last commits.
    Normal,
}

/// How to open a store.
#[derive(Clone)]
pub struct Options {
    /// What a returned write survives.
    pub durability: Durability,
    /// The physical clock (tests and simulations inject theirs).
    pub clock: Arc<dyn Clock>,
    /// How far ahead of the local clock a remote stamp may pull the HLC.
    pub max_drift_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Full,
            clock: Arc::new(SystemClock),
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("max_drift_ms", &self.max_drift_ms)
            .finish_non_exhaustive()
    }
}

/// What applying a batch of remote operations did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Operations new to this replica, now applied.
    pub applied: usize,
    /// Operations this replica already held (ignored).
    pub duplicates: usize,
    /// Last-writer-wins changes stamped further in the future than the drift bound allows.
    /// They are applied (refusing them would break convergence), but this replica's clock
    /// does not follow them beyond the bound. (Facts' stamps are never followed.)
    pub far_future: usize,
    /// Operations the caller's check refused ([`Store::apply_checked`]); not stored.
    pub rejected: usize,
}

/// What a check of [`Store::apply_checked`] says of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it.
    Accept,
    /// Leave it out: it is neither stored nor applied (the caller reports why).
    Reject,
}

/// A page of operations another replica lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsPage {
    /// The operations, ordered by replica and counter.
    pub ops: Vec<Op>,
    /// Where the next page starts (pass it as `after`), or `None` if this was the last page.
    pub next: Option<(ReplicaId, u64)>,
}

/// The check of each operation of a [`CheckedBatch`] new to the store.
pub type BatchCheck<'a> = dyn FnMut(&Connection, &Op) -> Result<Verdict> + 'a;
/// What a [`CheckedBatch`] writes in its transaction once merged, given the operations applied.
pub type BatchFinish<'a> = dyn FnMut(&Connection, &[&Op]) -> Result<()> + 'a;

/// One batch of [`Store::apply_checked_group`]: its operations, the check of each new one and
/// what to write once it is merged (as [`Store::apply_checked`]'s arguments).
pub struct CheckedBatch<'a> {
    /// The operations.
    pub ops: &'a [Op],
    /// Shown each operation new to the store, seeing the store as the earlier batches and this
    /// batch's earlier operations left it.
    pub check: &'a mut BatchCheck<'a>,
    /// Run inside the batch's savepoint after its operations are merged.
    pub finish: &'a mut BatchFinish<'a>,
}

impl std::fmt::Debug for CheckedBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedBatch")
            .field("ops", &self.ops.len())
            .finish_non_exhaustive()
    }
}

/// What merging a batch changes of a [`Store`] besides its connection, borrowed while the
/// transaction holds the connection.
struct Merging<'s> {
    replica: ReplicaId,
    keep_rewritten: bool,
    rewritten: &'s mut Vec<Op>,
    last_compaction: &'s mut crate::redact::CompactReport,
    compacted: &'s mut Option<bool>,
    /// The local clock when the transaction began.
    now: u64,
}

/// The state [`Merging::restore`] puts back when a batch of a group is rolled back.
struct MergingSaved {
    rewritten: usize,
    last_compaction: crate::redact::CompactReport,
    compacted: Option<bool>,
}

impl Merging<'_> {
    fn save(&self) -> MergingSaved {
        MergingSaved {
            rewritten: self.rewritten.len(),
            last_compaction: *self.last_compaction,
            compacted: *self.compacted,
        }
    }

    fn restore(&mut self, saved: MergingSaved) {
        self.rewritten.truncate(saved.rewritten);
        *self.last_compaction = saved.last_compaction;
        *self.compacted = saved.compacted;
    }

    /// Merge one batch inside the caller's transaction: check, log and materialise each
    /// operation, flush what was deferred, compact if a redaction asks, then `finish`. `hlc`
    /// and `own_max` are the caller's copies, advanced here and adopted after the commit.
    #[allow(clippy::type_complexity)]
    fn batch<T>(
        &mut self,
        tx: &Connection,
        ops: &[Op],
        mut check: Option<&mut dyn FnMut(&Connection, &Op) -> Result<Verdict>>,
        finish: impl FnOnce(&Connection, &[&Op]) -> Result<T>,
        hlc: &mut HlcGenerator,
        own_max: &mut u64,
    ) -> Result<(ApplyReport, T)> {
        let now = self.now;
        let mut report = ApplyReport::default();
        let mut touched = BTreeSet::new();
        let mut applied: Vec<&Op> = Vec::with_capacity(ops.len());
        let mut deferred = Deferred::default();
        deferred.watch = *self.compacted == Some(true) || {
            // Another handle (a console command, the hub's second handle) may have compacted:
            // looked up until it is seen once, then remembered.
            let c = crate::redact::compacted(tx)?;
            *self.compacted = Some(c).filter(|c| *c);
            c
        };
        // The batch's statements, prepared once for all its operations.
        let mut q = Statements::new(tx);
        let mut buf = Vec::new();
        for op in ops {
            if let Some(check) = check.as_mut() {
                // Only operations new to this replica are shown to the check.
                if holds(&mut q, op)? {
                    report.duplicates += 1;
                    continue;
                }
                if check(tx, op)? == Verdict::Reject {
                    report.rejected += 1;
                    continue;
                }
            }
            if !insert_log(&mut q, op, &mut buf)? {
                report.duplicates += 1; // the same dot twice within the batch
                continue;
            }
            materialize_with(&mut q, op, &mut deferred)?;
            // Only last-writer-wins changes are ordered by their stamps, so only theirs are
            // followed (causality). A fact's stamp orders nothing and moves no clock: a phone
            // whose clock ran a day ahead cannot drag the replicas that receive its visits
            // ahead, where their next honest edit would be refused (ADR 0002).
            if matches!(op.body, OpBody::Set { .. }) && hlc.observe(op.hlc, now) {
                report.far_future += 1;
            }
            if op.replica == self.replica {
                // Our own operation coming back after the store was restored from a backup.
                *own_max = (*own_max).max(op.counter);
            }
            touched.insert(op.replica);
            report.applied += 1;
            applied.push(op);
        }
        deferred.flush_with(&mut q)?;
        for replica in &touched {
            advance_contiguous(&mut q, replica)?;
        }
        drop(q);
        if deferred.compact {
            let keep = self.keep_rewritten.then_some(&mut *self.rewritten);
            *self.last_compaction = crate::redact::compact_log(tx, self.replica, keep)?;
            *self.compacted = Some(true);
        } else if deferred.dirty {
            crate::redact::mark_pending(tx)?;
        }
        let out = finish(tx, &applied)?;
        Ok((report, out))
    }
}

/// A replica's store.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) replica: ReplicaId,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hlc: HlcGenerator,
    pub(crate) next_counter: u64,
    /// What to add to the local clock to get the time a sync server measured (ms).
    pub(crate) clock_offset_ms: i64,
    /// The key the file was opened with (kept for second handles and `rekey`).
    pub(crate) key: Option<StoreKey>,
    /// What the offline lease's clock saw last (`crate::lease`).
    pub(crate) lease_clock: std::sync::Mutex<crate::lease::LeaseClock>,
    /// Whether to keep the operations compaction rewrites ([`Store::take_rewritten`]).
    pub(crate) keep_rewritten: bool,
    /// The operations compaction rewrote since the last [`Store::take_rewritten`].
    pub(crate) rewritten: Vec<Op>,
    /// What the last compaction of the log did.
    pub(crate) last_compaction: crate::redact::CompactReport,
    /// Whether a redaction written here marks the compaction due instead of running it
    /// (`Store::purge_personal` writes one unit at a time and compacts once).
    pub(crate) defer_compaction: bool,
    /// `Some(true)` once the log was seen compacted ([`crate::redact::compacted`]).
    pub(crate) compacted: Option<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("replica", &self.replica)
            .field("next_counter", &self.next_counter)
            .field("encrypted", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // `journal_mode` answers with the mode; in-memory databases stay in "memory" mode.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A 32 MiB page cache (allocated only as pages are read) keeps a commune's indexes in
    // memory while a sync applies thousands of operations; checkpoints every ~16 MiB of WAL
    // instead of every 4 MiB halve the rewrites of the same pages during a long sync.
    conn.pragma_update(None, "cache_size", -32 * 1024)?;
    conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans never depend on the values bound to a statement (the query planner stability
    // guarantee): the statements the merge keeps for a whole batch are not re-prepared each
    // time a new id is bound (SQLite 3.54.0 marks some `?` so, core/tests/apply_statements.rs),
    // and no query changes plan with its arguments.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

impl Store {
    /// Open the store at `path`, creating it (and this replica's id) if it does not exist, and
    /// migrating it if it is older than this code. The file is not encrypted: phones use
    /// [`Store::open_encrypted`]. An encrypted file opened this way is [`Error::WrongKey`].
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        key::sqlite_ready()?;
        let conn = Connection::open(path)?;
        key::unlock(&conn, None)?;
        Self::init(conn, options, None)
    }

    /// Open the encrypted store at `path` with `key`, creating it if it does not exist.
    ///
    /// `PRAGMA key` is the first statement on the connection; a file the key does not decrypt
    /// is [`Error::WrongKey`] (nothing is read or changed). A store that was created
    /// unencrypted is first encrypted in place ([`Store::encrypt_in_place`]). No other handle
    /// may be open on the file while that happens.
    pub fn open_encrypted(
        path: impl AsRef<Path>,
        key: &StoreKey,
        options: Options,
    ) -> Result<Store> {
        let path = path.as_ref();
        if key::is_plain_sqlite(path)? {
            Self::encrypt_in_place(path, key)?;
        }
        key::sqlite_ready()?;
        let conn = Connection::open(path)?;
        key::unlock(&conn, Some(key))?;
        Self::init(conn, options, Some(key.clone()))
    }

    /// Encrypt the unencrypted store at `path` with `key`, crash-safely: a copy is made beside
    /// it (`<path>.encrypting`), encrypted, synced, and renamed over the old file, whose
    /// write-ahead log was checkpointed into it first and is then removed. A crash at any point
    /// leaves either the old store or the new one (a half-written copy is discarded by the next
    /// attempt). No other handle may be open on the file.
    pub fn encrypt_in_place(path: impl AsRef<Path>, key: &StoreKey) -> Result<()> {
        let path = path.as_ref();
        let tmp = sibling(path, ".encrypting");
        for stale in [
            tmp.clone(),
            sibling(&tmp, "-journal"),
            sibling(&tmp, "-wal"),
            sibling(&tmp, "-shm"),
        ] {
            remove_if_exists(&stale)?;
        }
        {
            key::sqlite_ready()?;
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            key::unlock(&conn, None)?;
            schema::check_version(&conn)?;
            // Everything into the main file, and the log emptied: once the new file is renamed
            // over it, no frame of the old log may ever be replayed into it.
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy != 0 {
                return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("another handle is open on the store being encrypted".into()),
                )));
            }
            // A copy of the checkpointed file, encrypted page by page where it lies.
            std::fs::copy(path, &tmp)?;
        }
        key::encrypt_plain_file(&tmp, key)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path)?;
        for old in [sibling(path, "-wal"), sibling(path, "-shm")] {
            remove_if_exists(&old)?;
        }
        sync_dir(path)?;
        Ok(())
    }

    /// Change the key of this encrypted store (or encrypt nothing: an unencrypted store stays
    /// so and this is [`Error::Invalid`] on `key`; use [`Store::open_encrypted`] to encrypt
    /// it). Every page is rewritten under the new key in one transaction. Other handles on the
    /// file (a reader, a sync) must be closed first and reopened with the new key.
    pub fn rekey(&mut self, new_key: &StoreKey) -> Result<()> {
        if self.key.is_none() {
            return Err(Error::invalid(
                "key",
                "an encrypted store (open it with a key first)",
            ));
        }
        // Checkpoint first so that every page is rewritten from the main file.
        let _: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        key::rekey(&self.conn, new_key)?;
        self.key = Some(new_key.clone());
        Ok(())
    }

    /// Fold the write-ahead log into the main file and empty it (`wal_checkpoint(TRUNCATE)`):
    /// what SQLite otherwise does by itself every ~16 MiB of log. Returns whether it completed
    /// (`false`: another handle was reading, and the log is only partly folded).
    pub fn checkpoint(&self) -> Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// Whether this store is encrypted (opened with a key).
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// A store in memory (tests, simulations).
    pub fn open_in_memory(options: Options) -> Result<Store> {
        key::sqlite_ready()?;
        Self::init(Connection::open_in_memory()?, options, None)
    }

    /// A read-only connection to the store at `path`, for plain-SQL queries beside the writer.
    /// For an encrypted store use [`Store::open_reader_encrypted`].
    pub fn open_reader(path: impl AsRef<Path>) -> Result<Connection> {
        Self::reader(path.as_ref(), None)
    }

    /// A read-only connection to the encrypted store at `path` (the writer's key).
    pub fn open_reader_encrypted(path: impl AsRef<Path>, key: &StoreKey) -> Result<Connection> {
        Self::reader(path.as_ref(), Some(key))
    }

    fn reader(path: &Path, key: Option<&StoreKey>) -> Result<Connection> {
        key::sqlite_ready()?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        key::unlock(&conn, key)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::check_version(&conn)?;
        Ok(conn)
    }

    fn init(mut conn: Connection, options: Options, key: Option<StoreKey>) -> Result<Store> {
        // Refuse a newer store before touching it (configure would switch its journal mode).
        schema::check_version(&conn)?;
        configure(&conn, options.durability)?;
        schema::migrate(&mut conn)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM meta WHERE key = 'replica_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let replica = match existing.and_then(|b| Uuid::from_slice(&b).ok()) {
            Some(u) => ReplicaId(u),
            None => {
                let r = ReplicaId::random();
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('replica_id', ?1)",
                    [r.0.as_bytes().as_slice()],
                )?;
                r
            }
        };
        let saved_hlc: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = 'last_hlc'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        // Local writes do not save their stamp apart: it is their last operation's.
        let last_hlc = Hlc::from_sql(saved_hlc)
            .max(last_local(&tx, &replica)?.1)
            .to_sql();
        // The next counter continues after both the log and the recorded contiguous counter,
        // so that no dot is ever reused even if the log is compacted one day.
        let max_counter: i64 = tx.query_row(
            "SELECT max((SELECT coalesce(max(counter), 0) FROM oplog WHERE replica = ?1),
                        (SELECT coalesce(max(contiguous), 0) FROM replicas WHERE replica = ?1))",
            [r_bytes(&replica)],
            |r| r.get(0),
        )?;
        let clock_offset_ms: i64 = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'clock_offset_ms'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let lease_clock = crate::lease::LeaseClock::load(&tx)?;
        tx.commit()?;
        Ok(Store {
            conn,
            replica,
            clock: options.clock,
            hlc: HlcGenerator::new(Hlc::from_sql(last_hlc), options.max_drift_ms),
            next_counter: max_counter as u64 + 1,
            clock_offset_ms,
            key,
            lease_clock: std::sync::Mutex::new(lease_clock),
            keep_rewritten: false,
            rewritten: Vec::new(),
            last_compaction: Default::default(),
            compacted: None,
            defer_compaction: false,
        })
    }

    /// This replica's id.
    pub fn replica_id(&self) -> ReplicaId {
        self.replica
    }

    /// The connection, for plain-SQL reads over the materialised tables (`docs/store.md`).
    /// Writing through it bypasses the log and breaks replication: don't.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The physical time this replica believes it is.
    ///
    /// That is the device clock corrected by the offset the last sync measured
    /// ([`Store::set_clock_offset`]), so a phone whose clock is a year off stamps its work with
    /// the right time once it has talked to a server.
    pub fn now_ms(&self) -> i64 {
        (self.clock.now_ms() as i64).saturating_add(self.clock_offset_ms)
    }

    /// The correction last measured against a server: server time minus device time (ms).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Remember a measured clock correction (kept across restarts).
    pub fn set_clock_offset(&mut self, offset_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('clock_offset_ms', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [offset_ms],
        )?;
        self.clock_offset_ms = offset_ms;
        // The server's time is the truth: the lease's clock starts afresh from it.
        self.reset_lease_clock()
    }

    /// The counter of this replica's latest operation (0 before the first).
    pub fn own_counter(&self) -> u64 {
        self.next_counter - 1
    }

    /// The highest counter of this replica's own operations in the log (0 before the first):
    /// what a pull tells the server this replica holds of itself. Below [`Store::own_counter`]
    /// when counters were reserved ([`Store::reserve_counters_through`]).
    pub fn own_logged(&self) -> Result<u64> {
        Ok(last_local(&self.conn, &self.replica)?.0)
    }

    /// Never issue a counter at or below `n` from now on (it stays so after reopening). A peer
    /// that has processed counters of this replica up to `n` — a server that refused some of
    /// them, or holds operations made on a copy of this store that was later restored from an
    /// older backup — would take a new operation with such a counter for one it holds, and
    /// drop it. A no-op when the store is already past `n`.
    pub fn reserve_counters_through(&mut self, n: u64) -> Result<()> {
        if n < self.next_counter {
            return Ok(());
        }
        let n_sql = i64::try_from(n).map_err(|_| Error::invalid("counter", "at most 2^63 - 1"))?;
        self.conn
            .prepare_cached(
                "INSERT INTO replicas (replica, contiguous) VALUES (?1, ?2)
                 ON CONFLICT (replica) DO UPDATE SET contiguous = max(contiguous, excluded.contiguous)",
            )?
            .execute(params![r_bytes(&self.replica), n_sql])?;
        self.next_counter = n + 1;
        Ok(())
    }

    /// This replica's own operations with counters above `after`, in counter order, at most
    /// `limit` (what a push sends).
    pub fn own_ops_after(&self, after: u64, limit: usize) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT counter, hlc, body FROM oplog WHERE replica = ?1 AND counter > ?2
             ORDER BY counter LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![r_bytes(&self.replica), after as i64, limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = row.get(2)?;
            out.push(Op {
                replica: self.replica,
                counter: row.get::<_, i64>(0)? as u64,
                hlc: Hlc::from_sql(row.get(1)?),
                body: postcard::from_bytes(&body).map_err(|e| Error::Decode(e.to_string()))?,
            });
        }
        Ok(out)
    }

    /// Store a cursor for `peer` outside of a pull (a push's acknowledged counter, say).
    pub fn set_cursor(&mut self, peer: &str, cursor: &str) -> Result<()> {
        set_cursor(&self.conn, peer, cursor)
    }

    /// Make local operations from `bodies` and commit them, with their effects, in one
    /// transaction. Nothing is kept in memory if the commit fails.
    pub(crate) fn commit_local(&mut self, bodies: Vec<OpBody>) -> Result<Vec<Op>> {
        self.write(|_| Ok((bodies, ()))).map(|(ops, ())| ops)
    }

    /// One local write: begin an IMMEDIATE transaction, let `build` validate against the store
    /// and say which operations to make (validation and write see the same state, and a
    /// second writer cannot slip in between), append them with their effects, commit.
    /// A `build` error rolls back: nothing is written.
    pub(crate) fn write<T>(
        &mut self,
        build: impl FnOnce(&Store) -> Result<(Vec<OpBody>, T)>,
    ) -> Result<(Vec<Op>, T)> {
        let now = self.now_ms().max(0) as u64;
        let mut hlc = self.hlc;
        let mut counter = self.next_counter;
        let replica = self.replica;
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        // Another process may have written through the same file (a console command beside a
        // server): continue after its counter and stamps, never reuse them.
        let (db_counter, own_hlc) = last_local(&tx, &replica)?;
        // Stamps seen by another handle's sync are in `meta`.
        let seen: i64 = tx
            .prepare_cached("SELECT coalesce(max(value), 0) FROM meta WHERE key = 'last_hlc'")?
            .query_row([], |r| r.get(0))?;
        let db_hlc = own_hlc.max(Hlc::from_sql(seen));
        // Counters reserved through another handle ([`Store::reserve_counters_through`]).
        let reserved: i64 = tx
            .prepare_cached("SELECT coalesce(max(contiguous), 0) FROM replicas WHERE replica = ?1")?
            .query_row([r_bytes(&replica)], |r| r.get(0))?;
        counter = counter.max(db_counter + 1).max(reserved as u64 + 1);
        if db_hlc > hlc.last() {
            hlc = HlcGenerator::new(db_hlc, self.hlc.max_drift_ms());
        }
        let (bodies, out) = build(self)?;
        if bodies.is_empty() {
            return Ok((Vec::new(), out)); // dropping `tx` ends the empty transaction
        }
        let mut ops = Vec::with_capacity(bodies.len());
        let mut deferred = Deferred::default();
        deferred.watch = self.compacted == Some(true) || {
            // Another handle (a console command, the hub's second handle) may have compacted:
            // looked up until it is seen once, then remembered.
            let c = crate::redact::compacted(&tx)?;
            self.compacted = Some(c).filter(|c| *c);
            c
        };
        let mut q = Statements::new(&tx);
        let mut buf = Vec::new();
        for body in bodies {
            let op = Op {
                replica,
                counter,
                hlc: hlc.tick(now),
                body,
            };
            counter += 1;
            if !insert_log(&mut q, &op, &mut buf)? {
                return Err(Error::Decode(format!(
                    "operation counter {} of this replica is already in the log",
                    op.counter
                )));
            }
            materialize_with(&mut q, &op, &mut deferred)?;
            ops.push(op);
        }
        deferred.flush_with(&mut q)?;
        drop(q);
        if deferred.compact && !self.defer_compaction {
            // A redaction made here (a resident's erasure) compacts the log in the same
            // transaction; a purge, made in many, compacts once at its end.
            let keep = self.keep_rewritten.then_some(&mut self.rewritten);
            self.last_compaction = crate::redact::compact_log(&tx, replica, keep)?;
            self.compacted = Some(true);
        } else if deferred.dirty || deferred.compact {
            crate::redact::mark_pending(&tx)?;
        }
        // Nothing else to write: this replica's counter and latest stamp are those of its last
        // operation in the log (`last_local`), which keeps a saved visit to the fewest pages.
        tx.commit()?;
        self.hlc = hlc;
        self.next_counter = counter;
        Ok((ops, out))
    }

    /// The contiguous counter this replica holds for every replica it knows. Other replicas'
    /// come from `replicas`; this replica's own operations are always contiguous, so its entry
    /// is its last counter in the log.
    pub fn version_vector(&self) -> Result<VersionVector> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT replica, contiguous FROM replicas")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut vv = VersionVector::default();
        for row in rows {
            let (r, c) = row?;
            let r = Uuid::from_slice(&r).map_err(|e| Error::Decode(e.to_string()))?;
            vv.0.insert(ReplicaId(r), c as u64);
        }
        let (own, _) = last_local(&self.conn, &self.replica)?;
        if own > 0 {
            let e = vv.0.entry(self.replica).or_insert(0);
            *e = (*e).max(own);
        }
        Ok(vv)
    }

    /// The operations a replica whose version vector is `known` lacks, at most `limit` of them,
    /// starting after `after` (the `next` of the previous page).
    pub fn ops_since(
        &self,
        known: &VersionVector,
        after: Option<(ReplicaId, u64)>,
        limit: usize,
    ) -> Result<OpsPage> {
        let mut replicas: BTreeSet<ReplicaId> = BTreeSet::new();
        {
            let mut stmt = self.conn.prepare_cached("SELECT replica FROM replicas")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            for r in rows {
                let r = Uuid::from_slice(&r?).map_err(|e| Error::Decode(e.to_string()))?;
                replicas.insert(ReplicaId(r));
            }
            replicas.insert(self.replica);
        }
        let mut page = OpsPage::default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT counter, hlc, body FROM oplog WHERE replica = ?1 AND counter > ?2
             ORDER BY counter LIMIT ?3",
        )?;
        for replica in replicas {
            let mut from = known.get(&replica);
            if let Some((after_r, after_c)) = after {
                if replica < after_r {
                    continue;
                }
                if replica == after_r {
                    from = from.max(after_c);
                }
            }
            let want = limit.saturating_sub(page.ops.len());
            // Ask for one more than fits, to know whether this page is the last.
            let mut rows =
                stmt.query(params![r_bytes(&replica), from as i64, (want + 1) as i64])?;
            while let Some(row) = rows.next()? {
                let counter = row.get::<_, i64>(0)? as u64;
                if page.ops.len() == limit {
                    let last = page.ops.last().map(|o| (o.replica, o.counter));
                    page.next = last;
                    return Ok(page);
                }
                let body: Vec<u8> = row.get(2)?;
                page.ops.push(Op {
                    replica,
                    counter,
                    hlc: Hlc::from_sql(row.get(1)?),
                    body: postcard::from_bytes(&body).map_err(|e| Error::Decode(e.to_string()))?,
                });
            }
        }
        Ok(page)
    }

    /// All operations a replica whose version vector is `known` lacks.
    pub fn all_ops_since(&self, known: &VersionVector) -> Result<Vec<Op>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.ops_since(known, after, 10_000)?;
            out.extend(page.ops);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Apply operations from other replicas, in any order, with duplicates, in one transaction:
    /// all of the batch is applied or none of it.
    pub fn apply_ops(&mut self, ops: &[Op]) -> Result<ApplyReport> {
        self.apply_inner(ops, None, |_, _| Ok(())).map(|(r, ())| r)
    }

    /// Like [`Store::apply_ops`], and in the same transaction remember `cursor` as how far this
    /// replica has pulled from `peer` — a link that drops after the commit loses nothing, one that
    /// drops before it leaves the old cursor and the page is fetched again.
    pub fn apply_ops_with_cursor(
        &mut self,
        ops: &[Op],
        peer: &str,
        cursor: &str,
    ) -> Result<ApplyReport> {
        self.apply_inner(ops, None, |conn, _| set_cursor(conn, peer, cursor))
            .map(|(r, ())| r)
    }

    /// Like [`Store::apply_ops_with_cursor`], and in the same transaction, after the page's
    /// operations, erase what the store holds of `dropped` villages, households and residents
    /// (no longer in its scope; see `docs/sync-protocol.md`, "Scope that shrinks"). Returns
    /// the report and how many households were erased plus how many residents were erased on
    /// their own (moved out without their household).
    pub fn apply_pull_page(
        &mut self,
        ops: &[Op],
        peer: &str,
        cursor: &str,
        dropped: &crate::lease::Dropped<'_>,
    ) -> Result<(ApplyReport, usize)> {
        let own = self.replica;
        self.apply_inner(ops, None, |conn, _| {
            set_cursor(conn, peer, cursor)?;
            crate::lease::forget(conn, &own, dropped)
        })
    }

    /// Apply operations from another replica in one transaction, letting the caller decide for
    /// each operation new to this replica whether to take it (`check`, which sees the store as
    /// it is after the batch's earlier operations), and run its own statements before the
    /// commit (`finish`, given the operations applied). This is how a server checks a device's
    /// scope and records the batch in its feed atomically with the merge.
    pub fn apply_checked<T>(
        &mut self,
        ops: &[Op],
        mut check: impl FnMut(&Connection, &Op) -> Result<Verdict>,
        finish: impl FnOnce(&Connection, &[&Op]) -> Result<T>,
    ) -> Result<(ApplyReport, T)> {
        self.apply_inner(ops, Some(&mut check), finish)
    }

    #[allow(clippy::type_complexity)]
    fn apply_inner<T>(
        &mut self,
        ops: &[Op],
        check: Option<&mut dyn FnMut(&Connection, &Op) -> Result<Verdict>>,
        finish: impl FnOnce(&Connection, &[&Op]) -> Result<T>,
    ) -> Result<(ApplyReport, T)> {
        for op in ops {
            op.check_shape()?;
        }
        let now = self.now_ms().max(0) as u64;
        let mut hlc = self.hlc;
        let mut own_max = self.next_counter - 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut merging = Merging {
            replica: self.replica,
            keep_rewritten: self.keep_rewritten,
            rewritten: &mut self.rewritten,
            last_compaction: &mut self.last_compaction,
            compacted: &mut self.compacted,
            now,
        };
        let out = merging.batch(&tx, ops, check, finish, &mut hlc, &mut own_max)?;
        save_hlc(&tx, hlc.last())?;
        tx.commit()?;
        self.hlc = hlc;
        self.next_counter = own_max + 1;
        Ok(out)
    }

    /// Apply several batches in ONE transaction (one commit, one sync of the log), each as
    /// [`Store::apply_checked`] would apply it after the ones before it, and each inside its
    /// own savepoint: a batch whose shape, check, merge or `finish` fails is rolled back alone
    /// (its entry is its error) and the group goes on without it. Everything kept commits
    /// together before this returns. The outer error means nothing was kept: the transaction
    /// could not begin, a savepoint could not be ended (SQLite gave the whole transaction
    /// up), or the commit failed.
    pub fn apply_checked_group(
        &mut self,
        batches: &mut [CheckedBatch<'_>],
    ) -> Result<Vec<Result<ApplyReport>>> {
        let now = self.now_ms().max(0) as u64;
        let mut hlc = self.hlc;
        let mut own_max = self.next_counter - 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut merging = Merging {
            replica: self.replica,
            keep_rewritten: self.keep_rewritten,
            rewritten: &mut self.rewritten,
            last_compaction: &mut self.last_compaction,
            compacted: &mut self.compacted,
            now,
        };
        let mut out = Vec::with_capacity(batches.len());
        for b in batches.iter_mut() {
            if let Err(e) = b.ops.iter().try_for_each(Op::check_shape) {
                out.push(Err(e));
                continue;
            }
            let (mut b_hlc, mut b_own) = (hlc, own_max);
            let saved = merging.save();
            tx.execute_batch("SAVEPOINT doorstep_group_batch")?;
            let finish = &mut *b.finish;
            match merging.batch(
                &tx,
                b.ops,
                Some(&mut *b.check),
                |conn, applied| finish(conn, applied),
                &mut b_hlc,
                &mut b_own,
            ) {
                Ok((report, ())) => {
                    tx.execute_batch("RELEASE doorstep_group_batch")?;
                    (hlc, own_max) = (b_hlc, b_own);
                    out.push(Ok(report));
                }
                Err(e) => {
                    // Fails (and so fails the group) if SQLite already rolled the whole
                    // transaction back (a full disk, an I/O error).
                    tx.execute_batch(
                        "ROLLBACK TO doorstep_group_batch; RELEASE doorstep_group_batch",
                    )?;
                    merging.restore(saved);
                    out.push(Err(e));
                }
            }
        }
        save_hlc(&tx, hlc.last())?;
        tx.commit()?;
        self.hlc = hlc;
        self.next_counter = own_max + 1;
        Ok(out)
    }

    /// The cursor last stored for `peer`.
    pub fn cursor(&self, peer: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM sync_cursors WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every last-writer-wins register this replica holds: entity, key, field and the stamp of
    /// the write that won. For tests and debugging; apps read the entity tables.
    pub fn registers(&self) -> Result<Vec<(Entity, String, Field, Stamp)>> {
        let mut out = Vec::new();
        for entity in Entity::ALL {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {}, stamps FROM {} ORDER BY 1",
                entity.key_column(),
                entity.table()
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                let stamps: Option<Vec<u8>> = row.get(1)?;
                for (field, stamp) in Stamps::decode(stamps.as_deref())?.iter() {
                    out.push((*entity, key.clone(), field, stamp));
                }
            }
        }
        Ok(out)
    }

    /// A canonical text dump of the replicated state: every materialised table and register,
    /// rows sorted by key, and the set of operation dots. Two replicas that hold the same
    /// operations produce byte-identical dumps.
    pub fn canonical_dump(&self) -> Result<String> {
        const TABLES: &[(&str, &str)] = &[
            ("units", "code"),
            ("households", "id"),
            ("residents", "id"),
            ("campaigns", "id"),
            ("officers", "id"),
            ("assignments", "id"),
            ("quotas", "id"),
            ("visits", "id"),
            ("assists", "id"),
            ("sessions", "id"),
            ("outreach", "id"),
            ("retractions", "fact_id"),
            ("redactions", "fact_id"),
            ("account_state", "resident_id"),
            ("oplog", "replica, counter"),
        ];
        use std::fmt::Write;
        let mut out = String::new();
        for (table, order) in TABLES {
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
            let n = stmt.column_count();
            let _ = writeln!(out, "## {table}");
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                for i in 0..n {
                    if i > 0 {
                        out.push('\t');
                    }
                    match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => out.push_str("NULL"),
                        rusqlite::types::ValueRef::Integer(v) => {
                            let _ = write!(out, "{v}");
                        }
                        rusqlite::types::ValueRef::Real(v) => {
                            let _ = write!(out, "{v:?}");
                        }
                        rusqlite::types::ValueRef::Text(t) => {
                            out.push_str(&String::from_utf8_lossy(t).replace(['\t', '\n'], " "))
                        }
                        rusqlite::types::ValueRef::Blob(b) => {
                            for byte in b {
                                let _ = write!(out, "{byte:02x}");
                            }
                        }
                    }
                }
                out.push('\n');
            }
        }
        // The version vector, rendered: the same once every operation reached every replica.
        let _ = writeln!(out, "## version vector");
        for (r, c) in self.version_vector()?.0 {
            let _ = writeln!(out, "{r}\t{c}");
        }
        Ok(out)
    }
}

fn r_bytes(r: &ReplicaId) -> &[u8] {
    r.0.as_bytes().as_slice()
}

fn set_cursor(conn: &Connection, peer: &str, cursor: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_cursors (peer, cursor) VALUES (?1, ?2)
         ON CONFLICT (peer) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute([peer, cursor])?;
    Ok(())
}

/// Whether the log holds the operation's dot.
fn holds(q: &mut Statements<'_>, op: &Op) -> Result<bool> {
    Ok(
        q.get("SELECT 1 FROM oplog WHERE replica = ?1 AND counter = ?2")?
            .query_row(params![r_bytes(&op.replica), op.counter as i64], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Append to the log; `false` if the dot was already there. `buf` is scratch space for the
/// encoded body, kept by the caller across a batch (no allocation per operation).
fn insert_log(q: &mut Statements<'_>, op: &Op, buf: &mut Vec<u8>) -> Result<bool> {
    buf.clear();
    let body = postcard::to_extend(&op.body, std::mem::take(buf))
        .map_err(|e| Error::Decode(e.to_string()))?;
    let n = q
        .get(
            "INSERT INTO oplog (replica, counter, hlc, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            r_bytes(&op.replica),
            op.counter as i64,
            op.hlc.to_sql(),
            body.as_slice()
        ])?;
    *buf = body;
    Ok(n == 1)
}

/// This replica's last counter and stamp in the log ((0, zero stamp) before its first write).
fn last_local(conn: &Connection, replica: &ReplicaId) -> Result<(u64, Hlc)> {
    Ok(conn
        .prepare_cached(
            "SELECT counter, hlc FROM oplog WHERE replica = ?1 ORDER BY counter DESC LIMIT 1",
        )?
        .query_row([r_bytes(replica)], |r| {
            Ok((r.get::<_, i64>(0)? as u64, Hlc::from_sql(r.get(1)?)))
        })
        .optional()?
        .unwrap_or((0, Hlc::default())))
}

/// Remember the latest stamp issued or seen. Never lowers it: a second handle on the same file
/// (a sync beside the app's handle) may hold an older one in memory.
fn save_hlc(conn: &Connection, hlc: Hlc) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_hlc', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([hlc.to_sql()])?;
    Ok(())
}

/// Raise `replicas.contiguous` over every counter now held without a gap.
fn advance_contiguous(q: &mut Statements<'_>, replica: &ReplicaId) -> Result<()> {
    let mut c: i64 = q
        .get("SELECT contiguous FROM replicas WHERE replica = ?1")?
        .query_row([r_bytes(replica)], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    {
        let stmt = q.get(
            "SELECT counter FROM oplog WHERE replica = ?1 AND counter > ?2 ORDER BY counter",
        )?;
        let mut rows = stmt.query(params![r_bytes(replica), c])?;
        while let Some(row) = rows.next()? {
            let next: i64 = row.get(0)?;
            if next != c + 1 {
                break;
            }
            c = next;
        }
    }
    q.get(
        "INSERT INTO replicas (replica, contiguous) VALUES (?1, ?2)
         ON CONFLICT (replica) DO UPDATE SET contiguous = excluded.contiguous",
    )?
    .execute(params![r_bytes(replica), c])?;
    Ok(())
}

/// `<path><suffix>` (a file beside the store: `-wal`, `-shm`, `.encrypting`).
fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Sync the directory holding `path`, so that a rename or removal in it is durable.
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
