//! The PostgreSQL backend: shared state in PostgreSQL, a core store per instance as its
//! materialised view (`docs/adr/0006-postgres-backend.md`).
//!
//! PostgreSQL holds what every instance must agree on: the operation log and the feed (one
//! table, `feed`: an operation's dot is unique, so a second delivery is a no-op), devices,
//! tokens, enrolment codes, acknowledgements, quarantine, audit. Each instance keeps a core
//! [`Store`] (SQLite, a temporary file unless `--view` names one) that it catches up from the
//! feed in `seq` order; scope checks and areas are computed against it, and the dashboard can
//! read its materialised tables as it does on the SQLite backend.
//!
//! What is PostgreSQL's own, and only that, is here: the feed lock ([`feed`]), the view and
//! its catch-up, and how a batch is applied (the rules are [`crate::backend`]'s).
//!
//! **Push** ([`Storage::apply`]). Under the feed lock: catch the view up (so it holds
//! everything committed), check the batch against the view in a transaction that is rolled
//! back (a dry run: the server's check runs on each operation as it would for real), file the
//! applied operations and the server's rows in PostgreSQL, commit; then catch the view up
//! again, which applies the batch for real. The view never holds an operation PostgreSQL does
//! not, except the console's own writes in the moment between their local commit and
//! PostgreSQL's (mended on the next write and at start-up).
//!
//! A lost connection (PostgreSQL restarting, a network cut) is
//! [`ServerError::Unavailable`]: `503` with `Retry-After`, and the client retries.
//!
//! Files: [`schema`] (tables and migrations), `tables` (one statement a method), [`feed`]
//! (the lock, feed rows, the pull snapshot), `view` (where the view lives), [`tls`] (the
//! connection string and TLS).

pub mod feed;
pub mod schema;
pub mod snapshot;
mod tables;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod tls;
mod view;

use crate::backend::Backend;
use crate::cursor::FeedSnapshot;
use crate::error::{Result, ServerError};
use crate::generation::Lineage;
use crate::journal::Journal;
use crate::scope;
use crate::storage::{core_error, Check, FeedRow, Finish, Storage, Tables};
use doorstep_core::{Op, Options, Store, StoreKey};
use feed::{feed_ops, insert_feed, lock_feed, PgFeed};
use postgres::{GenericClient, IsolationLevel};
use r2d2_postgres::PostgresConnectionManager;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tables::PgTables;
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

pub use feed::{feed_lock_stats, FEED_LOCK};
pub use schema::{migrate, PG_SCHEMA_VERSION};
pub use view::ViewOptions;

/// Operations read from the feed per round when the view catches up.
const CATCH_UP_PAGE: i64 = 2000;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;
type PooledClient = r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

/// The server over PostgreSQL.
pub type PgBackend = Backend<PgStorage>;

/// PostgreSQL's tables and this instance's view.
pub struct PgStorage {
    /// Always `Some` until dropped (see the `Drop` impl).
    pool: Option<Pool>,
    view: Mutex<Store>,
    /// A read-only connection to the view for long reads (the dashboard's statistics).
    reader: Mutex<Option<rusqlite::Connection>>,
    view_path: PathBuf,
    /// The view file's key (`ViewOptions::key`): its reader and its snapshots use it too.
    key: Option<StoreKey>,
    /// What the view applied lately, for the statistics (`crate::journal`).
    journal: Journal,
    /// The view's cursor key: `postgres:<server replica>`.
    peer: String,
    replica: Uuid,
    /// The feed position of the snapshot the view was seeded from at this start, if it was.
    seeded_at: Option<i64>,
    /// Fault injection for tests: hold each push's transaction open for a random time up to
    /// this many ms between writing its feed rows and committing (widens the window in which
    /// commits could land out of `seq` order). [`COMMIT_JITTER_ENV`]; 0 = off.
    #[cfg(any(test, feature = "test-utils"))]
    commit_jitter_ms: u64,
    _tmp: Option<tempfile::TempDir>,
    /// The lock of a cached view (see [`ViewOptions::cache_dir`]), held while this lives.
    _view_lock: Option<std::fs::File>,
}

/// The variable of the commit-jitter fault injection (the `test-utils` feature only).
#[cfg(any(test, feature = "test-utils"))]
pub const COMMIT_JITTER_ENV: &str = "DOORSTEP_PG_TEST_COMMIT_JITTER_MS";

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may carry a password: never printed.
        f.debug_struct("PgStorage")
            .field("replica", &self.replica)
            .field("view", &self.view_path)
            .finish_non_exhaustive()
    }
}

/// Rewrite in the feed the operations the view's compaction rewrote (retention,
/// `doorstep_core::redact`): the feed is the log phones and other instances read.
fn rewrite_feed(store: &mut Store, c: &mut impl GenericClient) -> Result<()> {
    for op in store.take_rewritten() {
        c.execute(
            "UPDATE feed SET op = $3 WHERE replica = $1 AND counter = $2",
            &[
                &op.replica.0.as_bytes().as_slice(),
                &(op.counter as i64),
                &op.encode(),
            ],
        )?;
    }
    Ok(())
}

/// The sentinel error that rolls a dry run back.
const DRY_RUN: &str = "dry run: rolled back on purpose";

/// Apply a batch to the view inside a transaction that is rolled back: `check` sees each
/// operation after the batch's earlier ones, exactly as a real apply would. Returns the
/// operations the apply took (a dot twice in one batch is taken once).
fn dry_run(
    store: &mut Store,
    tx: &mut postgres::Transaction<'_>,
    ops: &[Op],
    check: &mut Check<'_>,
) -> Result<Vec<Op>> {
    let mut taken: Option<Vec<Op>> = None;
    let mut moves = feed::PgMoves { tx };
    let outcome = store.apply_checked(
        ops,
        |conn, op| check(conn, &mut moves, op).map_err(core_error),
        |_, applied| {
            taken = Some(applied.iter().map(|op| (*op).clone()).collect());
            Err::<(), _>(doorstep_core::Error::Decode(DRY_RUN.into()))
        },
    );
    // Nothing a rolled-back apply compacted is to be rewritten in the feed.
    drop(store.take_rewritten());
    match (outcome, taken) {
        (Err(_), Some(taken)) => Ok(taken),
        (Err(e), None) => Err(e.into()),
        (Ok(_), _) => Err(ServerError::Internal(
            "dry run committed (cannot happen)".into(),
        )),
    }
}

impl Backend<PgStorage> {
    /// Connect to `url`, migrate, and build the view.
    ///
    /// `url` is a libpq-style connection string or `postgres://` URL; it never appears in an
    /// error or a log line (it may carry a password).
    pub fn open(url: &str, view: ViewOptions) -> Result<PgBackend> {
        Ok(Backend::new(PgStorage::open(url, view)?))
    }

    /// The view's file (a core store: the materialised tables, read-only for others).
    pub fn view_path(&self) -> &Path {
        &self.store.view_path
    }

    /// The feed position of the database's snapshot this instance's view was seeded from at
    /// its start (`snapshot`), or `None` when it was not (its own cached view, or rebuilt from
    /// the feed).
    pub fn seeded_at(&self) -> Option<i64> {
        self.store.seeded_at
    }
}

/// Tests' and benchmarks' access to the view and the shared tables.
#[cfg(any(test, feature = "test-utils"))]
impl Backend<PgStorage> {
    /// Bring the view up to date and run `f` on it.
    pub fn with_view<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        self.store.with_view(f)
    }

    /// Write to the view with the core API as the console does, then file the operations it
    /// made in the shared feed, in one PostgreSQL transaction under the feed lock. Not
    /// audited.
    pub fn with_view_write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut once = crate::storage::Once::new(|store: &mut Store| Ok(f(store)));
        self.store
            .console_write(&mut |store| once.call(store), &mut |_| Ok(()))?;
        once.result("view write")
    }

    /// Run `f` with a PostgreSQL connection.
    pub fn with_client<T>(&self, f: impl FnOnce(&mut postgres::Client) -> T) -> Result<T> {
        let mut c = self.store.client()?;
        Ok(f(&mut c))
    }
}

/// The view's store at `path`, encrypted with `key` if there is one.
fn open_view(path: &Path, key: Option<&StoreKey>, options: Options) -> Result<Store> {
    Ok(match key {
        Some(key) => Store::open_encrypted(path, key, options)?,
        None => Store::open(path, options)?,
    })
}

/// A key that does not open the file (or a file encrypted and opened without one).
fn is_wrong_key(e: &ServerError) -> bool {
    matches!(e, ServerError::Core(doorstep_core::Error::WrongKey { .. }))
}

/// The view's key of the database's latest generations it knew.
fn gens_key(peer: &str) -> String {
    format!("{peer} generations")
}

/// Whether the view has read feed rows of a history the database no longer has (it was
/// restored from a backup since; see [`crate::generation`]): its position lies past where its
/// history and the database's agree.
fn view_diverged(store: &Store, peer: &str, lineage: &Lineage) -> Result<bool> {
    let seen = Lineage::parse(&store.cursor(&gens_key(peer))?.unwrap_or_default())?;
    let seq: u64 = store
        .cursor(peer)?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(seq > lineage.agrees_until(&seen.0).unwrap_or(0))
}

/// Remember the database's latest generations in the view, for the next start.
fn view_rebase(store: &mut Store, peer: &str, lineage: &Lineage) -> Result<()> {
    store.set_cursor(&gens_key(peer), &Lineage(lineage.tail()).to_text())?;
    Ok(())
}

impl PgStorage {
    /// Connect, migrate, open the view and bring it up to date.
    pub fn open(url: &str, view: ViewOptions) -> Result<PgStorage> {
        let conn = tls::parse(url)?;
        // One connection first, for an error an operator can act on (an untrusted
        // certificate, a server without TLS; the pool's own error only says it timed out),
        // and for the migrations.
        let (replica, lineage) = {
            let mut first = conn
                .config
                .connect(conn.tls.clone())
                .map_err(|e| ServerError::Unavailable(tls::describe(&e)))?;
            let replica = migrate(&mut first)?;
            // Every start is a new generation (a restored database is detected by it).
            let mut t = PgTables(&mut first);
            crate::storage::begin_generation(&mut t)?;
            (replica, crate::storage::lineage(&mut t)?)
        };
        let manager = PostgresConnectionManager::new(conn.config, conn.tls);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(2))
            .build(manager)
            .map_err(|_| ServerError::Unavailable("cannot connect to PostgreSQL".into()))?;
        let no_snapshot = view.no_snapshot;
        let key = view.key.clone();
        let place = view::place(view, replica)?;
        let fresh = std::fs::metadata(&place.path).map_or(true, |m| m.len() == 0);
        let mut seeded_at = None;
        if fresh && !no_snapshot {
            // No view of its own yet: the latest snapshot, if the database has one, instead of
            // the whole feed (what follows it is caught up below).
            let started = std::time::Instant::now();
            let _ = std::fs::remove_file(&place.path);
            let seeded = pool
                .get()
                .map_err(|_| ServerError::Unavailable("cannot connect to PostgreSQL".into()))
                .and_then(|mut c| snapshot::fetch(&mut c, &place.path, key.as_ref()));
            match seeded {
                Ok(Some(seq)) => {
                    seeded_at = Some(seq);
                    tracing::info!(
                        seq,
                        ms = started.elapsed().as_millis() as u64,
                        "view seeded from the database's snapshot"
                    )
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the view's snapshot is unusable: rebuilding from the feed");
                    let _ = std::fs::remove_file(&place.path);
                }
            }
        }
        let options = || Options {
            // The view is rebuilt from PostgreSQL if lost: no need to wait for the disk.
            durability: doorstep_core::Durability::Normal,
            ..Options::default()
        };
        let mut store = match open_view(&place.path, key.as_ref(), options()) {
            Err(e) if seeded_at.is_some() || is_wrong_key(&e) => {
                // A snapshot this code cannot open (made by a newer version, say), or a view
                // encrypted with another key than this instance's (or with one, when this
                // instance has none): rebuilt.
                tracing::warn!(error = %e, "the view cannot be opened: rebuilding it from the feed");
                seeded_at = None;
                view::remove(&place.path)?;
                open_view(&place.path, key.as_ref(), options())?
            }
            opened => opened?,
        };
        let peer = format!("postgres:{replica}");
        if view_diverged(&store, &peer, &lineage)? {
            // The database was restored from a backup since this view last read it: the view
            // holds operations the database lost (the phones send them again). It is rebuilt.
            tracing::warn!(
                "the view is of a history the database no longer has (restored from a \
                 backup): rebuilding it from the database"
            );
            drop(store);
            seeded_at = None;
            view::remove(&place.path)?;
            store = open_view(&place.path, key.as_ref(), options())?;
        }
        let foreign: bool = store.connection().query_row(
            "SELECT EXISTS (SELECT 1 FROM oplog) AND NOT EXISTS
                 (SELECT 1 FROM sync_cursors WHERE peer = ?1)",
            [&peer],
            |r| r.get(0),
        )?;
        if foreign {
            return Err(ServerError::Internal(
                "the view file belongs to another database; remove it or name another".into(),
            ));
        }
        // Mark a new view as this database's before anything is written to it (a console
        // write before any feed row would otherwise leave it looking foreign).
        if store.cursor(&peer)?.is_none() {
            store.set_cursor(&peer, "0")?;
        }
        view_rebase(&mut store, &peer, &lineage)?;
        // What compaction rewrites in the view is rewritten in the feed too (`rewrite_feed`).
        store.keep_rewritten(true);
        // The console's counters start past every one a lost history may have issued.
        let floor = store.now_ms().max(0) as u64;
        store.reserve_counters_through(floor)?;
        let storage = PgStorage {
            pool: Some(pool),
            view: Mutex::new(store),
            reader: Mutex::new(None),
            view_path: place.path,
            key,
            journal: Journal::default(),
            peer,
            replica,
            seeded_at,
            #[cfg(any(test, feature = "test-utils"))]
            commit_jitter_ms: std::env::var(COMMIT_JITTER_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            _tmp: place.tmp,
            _view_lock: place.lock,
        };
        // Console writes whose PostgreSQL commit did not happen are mended here.
        storage.feed_write(false, &mut |store, tx| {
            storage.send_own_ops(store, tx).map(drop)
        })?;
        Ok(storage)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        self.view
            .lock()
            .map_err(|_| ServerError::Internal("view mutex poisoned".into()))
    }

    fn client(&self) -> Result<PooledClient> {
        self.pool
            .as_ref()
            .ok_or_else(|| ServerError::Unavailable("the backend is closing".into()))?
            .get()
            .map_err(|_| ServerError::Unavailable("no PostgreSQL connection".into()))
    }

    /// The last feed `seq` the view holds.
    fn view_seq(&self, store: &Store) -> Result<i64> {
        Ok(store
            .cursor(&self.peer)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }

    /// Apply to the view every feed row it lacks, in `seq` order, a page per transaction.
    /// Every snapshot sees a prefix of the feed (see the module docs), so nothing is skipped.
    fn catch_up(&self, store: &mut Store, c: &mut impl GenericClient) -> Result<()> {
        let mut after = self.view_seq(store)?;
        loop {
            let rows = feed_ops(c.query(
                "SELECT seq, op FROM feed WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &CATCH_UP_PAGE],
            )?)?;
            let Some(last) = rows.last().map(|(s, _)| *s as i64) else {
                return Ok(());
            };
            let ops: Vec<Op> = rows.into_iter().map(|(_, op)| op).collect();
            store.apply_ops_with_cursor(&ops, &self.peer, &last.to_string())?;
            self.journal.record(&ops);
            rewrite_feed(store, c)?;
            after = last;
        }
    }

    /// Bring the view up to date and run `f` on it.
    fn with_view<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        self.catch_up(&mut store, &mut *c)?;
        drop(c);
        Ok(f(&mut store))
    }

    /// Run `f` with the view caught up and a PostgreSQL transaction holding the feed lock,
    /// then commit; with `then_catch_up`, catch the view up after the commit (which applies
    /// what `f` filed).
    fn feed_write(
        &self,
        then_catch_up: bool,
        f: &mut dyn FnMut(&mut Store, &mut postgres::Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        // Catch up before taking the feed lock, so that under it only the rows committed in
        // the meantime are applied: the lock is held for this write, not for other
        // instances' earlier ones.
        self.catch_up(&mut store, &mut *c)?;
        let mut tx = c.transaction()?;
        lock_feed(&mut tx)?;
        self.catch_up(&mut store, &mut tx)?;
        f(&mut store, &mut tx)?;
        tx.commit()?;
        if then_catch_up {
            // If it fails here, the next request catches up.
            if let Err(e) = self.catch_up(&mut store, &mut *c) {
                tracing::warn!(error = %e, "view catch-up after a commit failed; retried later");
            }
        }
        Ok(())
    }

    /// Hold a push's transaction open a while (tests' fault injection; see
    /// [`COMMIT_JITTER_ENV`]).
    fn commit_jitter(&self) {
        #[cfg(any(test, feature = "test-utils"))]
        if self.commit_jitter_ms > 0 {
            let ms = rand::random::<u64>() % self.commit_jitter_ms;
            std::thread::sleep(Duration::from_millis(ms));
        }
    }

    /// File in the feed the view's own operations (console writes) that PostgreSQL lacks.
    /// The caller holds the feed lock.
    fn send_own_ops(&self, store: &Store, tx: &mut postgres::Transaction<'_>) -> Result<usize> {
        let own = store.replica_id();
        let known: i64 = tx
            .query_one(
                "SELECT coalesce(max(counter), 0) FROM feed WHERE replica = $1",
                &[&own.0.as_bytes().as_slice()],
            )?
            .get(0);
        let ops = store.own_ops_after(known as u64, usize::MAX >> 1)?;
        // Committed on the view already (a console write): the statistics follow.
        self.journal.record(&ops);
        let mut areas = Vec::with_capacity(ops.len());
        for op in &ops {
            areas.push(scope::console_op_area(store.connection(), op)?);
        }
        let rows: Vec<FeedRow<'_>> = ops
            .iter()
            .zip(&areas)
            .map(|(op, a)| FeedRow {
                op,
                area: a.feed_area(),
                from: a.from_area(),
            })
            .collect();
        insert_feed(tx, &rows)?;
        Ok(rows.len())
    }
}

impl Storage for PgStorage {
    fn replica(&self) -> Uuid {
        self.replica
    }

    fn tables(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        let mut c = self.client()?;
        f(&mut PgTables(&mut *c))
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        f(&mut PgTables(&mut tx))?;
        tx.commit()?;
        Ok(())
    }

    fn view(&self, f: &mut dyn FnMut(&rusqlite::Connection) -> Result<()>) -> Result<()> {
        self.with_view(|store| f(store.connection()))?
    }

    fn read_view(&self, f: &mut dyn FnMut(&rusqlite::Connection) -> Result<()>) -> Result<()> {
        // Catch the view up under its lock, then read it through a connection of its own so a
        // long read (a statistics snapshot) never holds up pushes; WAL lets it run beside them.
        self.with_view(|_| ())?;
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| ServerError::Internal("reader mutex poisoned".into()))?;
        let conn = match &mut *reader {
            Some(conn) => conn,
            none => none.insert(match &self.key {
                Some(key) => Store::open_reader_encrypted(&self.view_path, key)?,
                None => Store::open_reader(&self.view_path)?,
            }),
        };
        conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(conn);
        // A read transaction: ending it cannot lose anything.
        let end = conn.execute_batch("COMMIT");
        out?;
        end?;
        Ok(())
    }

    /// Under the feed lock: a dry run on the view gives the operations taken, `finish` files
    /// them with the server's rows, commit, and the view catches up (applying them).
    fn apply(&self, ops: &[Op], check: &mut Check<'_>, finish: &mut Finish<'_>) -> Result<()> {
        self.feed_write(true, &mut |store, tx| {
            let taken = dry_run(store, tx, ops, check)?;
            let taken: Vec<&Op> = taken.iter().collect();
            finish(&mut PgTables(tx), &taken)?;
            self.commit_jitter();
            Ok(())
        })
    }

    /// The core write on the view and its feed rows and `finish` in one PostgreSQL
    /// transaction under the feed lock.
    fn console_write(
        &self,
        write: &mut dyn FnMut(&mut Store) -> Result<()>,
        finish: &mut dyn FnMut(&mut dyn Tables) -> Result<()>,
    ) -> Result<()> {
        self.feed_write(false, &mut |store, tx| {
            scope::remember_console_moves(store.connection())?;
            let filed = write(store)
                .and_then(|()| self.send_own_ops(store, tx))
                .and_then(|_| rewrite_feed(store, tx));
            scope::forget_console_moves(store.connection())?;
            filed?;
            finish(&mut PgTables(tx))
        })
    }

    fn feed(
        &self,
        replica: Uuid,
        f: &mut dyn FnMut(&mut dyn FeedSnapshot) -> Result<()>,
    ) -> Result<()> {
        let mut c = self.client()?;
        // One snapshot for the whole page: it sees a prefix of the feed.
        let mut tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        f(&mut PgFeed {
            tx: &mut tx,
            replica,
        })?;
        tx.commit()?;
        Ok(())
    }

    fn feed_lock(&self) -> Option<(u64, u64)> {
        Some(feed_lock_stats())
    }

    fn journal(&self) -> Option<&Journal> {
        Some(&self.journal)
    }

    fn publish_view(&self, force: bool) -> Result<String> {
        let mut c = self.client()?;
        if !force {
            let end: i64 = c
                .query_one("SELECT coalesce(max(seq), 0) FROM feed", &[])?
                .get(0);
            let due = match snapshot::latest_seq(&mut *c)? {
                Some(seq) => end - seq >= snapshot::REPUBLISH_AFTER_OPS,
                None => end > 0,
            };
            if !due {
                return Ok("the latest snapshot of the view is recent enough".into());
            }
        }
        // The view as the feed stands now.
        self.with_view(|_| ())?;
        let started = std::time::Instant::now();
        Ok(
            match snapshot::publish(&self.view_path, &self.peer, self.key.as_ref(), &mut c)? {
                Some(p) => format!(
                    "view published at feed position {}: {} bytes, {} stored, in {:.1} s",
                    p.seq,
                    p.bytes,
                    p.packed,
                    started.elapsed().as_secs_f64()
                ),
                None => "another instance is publishing the view; nothing done".into(),
            },
        )
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        // The blocking `postgres` client closes its connection by driving a runtime of its
        // own, which panics on a tokio worker thread (where a server's state is dropped at
        // shutdown): close the connections on a plain thread.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_view_is_reused_and_never_shared() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let opts = || ViewOptions {
            path: None,
            cache_dir: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        let a = PgBackend::open(&url, opts()).unwrap();
        assert!(a.view_path().starts_with(cache.path()));
        a.import_units(
            crate::backend::CLI_ACTOR,
            b"code,parent_code,level,kind,name\n58,,province,province,Ninh Thuan\n",
            0,
        )
        .unwrap();
        // A second process on the machine while the first runs: a temporary view of its own.
        let b = PgBackend::open(&url, opts()).unwrap();
        assert!(!b.view_path().starts_with(cache.path()));
        let cached = a.view_path().to_path_buf();
        drop(a);
        drop(b);
        // The next run takes the cached view back, already holding the unit.
        let c = PgBackend::open(&url, opts()).unwrap();
        assert_eq!(c.view_path(), cached);
        let units: i64 = c
            .with_view(|s| {
                s.connection()
                    .query_row("SELECT count(*) FROM units", [], |r| r.get(0))
                    .unwrap()
            })
            .unwrap();
        assert_eq!(units, 1);
    }
}
