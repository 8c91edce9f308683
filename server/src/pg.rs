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
//! **Feed order.** A pull cursor is a feed `seq`. With concurrent writers, sequence numbers
//! are handed out in one order and committed in another: `seq 11` can be visible while
//! `seq 10` is still in flight, and a reader that moves its cursor past 11 never sees 10.
//! Every transaction that writes feed rows therefore first takes one transaction-scoped
//! advisory lock ([`FEED_LOCK`]) and keeps it until it commits (PostgreSQL releases it only
//! after the commit is visible), so sequence numbers are allocated in commit order and every
//! snapshot sees a prefix of the feed. Pushes are serialised across instances by it; pulls
//! and catching up take no lock.
//!
//! **Push.** Under the lock: catch the view up (so it holds everything committed), check the
//! batch against the view in a transaction that is rolled back (scope, areas and refusals
//! come out of it), write the accepted operations to the feed with their areas, the
//! quarantined ones, the device's acknowledgement, commit; then catch the view up again,
//! which applies the batch for real. The view never holds an operation PostgreSQL does not,
//! except the console's own writes in the moment between their local commit and PostgreSQL's
//! (mended on the next write and at start-up).
//!
//! A lost connection (PostgreSQL restarting, a network cut) is
//! [`ServerError::Unavailable`]: `503` with `Retry-After`, and the client retries.

use crate::auth;
use crate::backend::{
    AuditEntry, Backend, CommandUser, DeviceAuth, DeviceInfo, Enrolled, Enrolment, Gauges,
    IssuedCode, UserAuth,
};
use crate::console;
use crate::cursor::{self, FeedSnapshot};
use crate::error::{Result, ServerError};
use crate::scope;
use doorstep_core::roster::{ImportProgress, ImportReport};
use doorstep_core::store::Verdict;
use doorstep_core::wire::{PullResponse, PushResponse, Rejected};
use doorstep_core::{AssignTarget, CampaignInput, Op, Options, QuotaInput, Role, Store, UnitInput};
use postgres::{GenericClient, IsolationLevel};
use r2d2_postgres::PostgresConnectionManager;
use rusqlite::OptionalExtension;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

/// The most operations a pull page carries.
pub const MAX_PAGE: u32 = 1000;
/// Longest device label accepted, in characters.
const MAX_DEVICE_NAME: usize = 100;
/// Longest enrolment-code lifetime: a week.
const MAX_TTL_MINUTES: u32 = 7 * 24 * 60;
/// Operations read from the feed per round when the view catches up.
const CATCH_UP_PAGE: i64 = 2000;

/// The advisory lock every feed-writing transaction holds until it commits ("DOORFEED").
pub const FEED_LOCK: i64 = 0x444F_4F52_4645_4544;
/// The advisory lock of schema migrations ("DOORMIGR").
const MIGRATE_LOCK: i64 = 0x444F_4F52_4D49_4752;
/// The advisory lock of the first admin's creation ("DOORADMN").
const ADMIN_LOCK: i64 = 0x444F_4F52_4144_4D4E;

const V1: &str = r#"
CREATE TABLE users (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL,
    unit_code  text,
    token_hash text NOT NULL UNIQUE,
    created_ms bigint NOT NULL
);

CREATE TABLE devices (
    id              text PRIMARY KEY,
    officer_id      text NOT NULL,
    replica         bytea NOT NULL,
    name            text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    enrolled_at     bigint NOT NULL,
    revoked_at      bigint,
    acked_counter   bigint NOT NULL DEFAULT 0,
    last_seen_ms    bigint,
    clock_offset_ms bigint
);
CREATE INDEX devices_officer ON devices (officer_id);

CREATE TABLE enrol_codes (
    code_hash      text PRIMARY KEY,
    officer_id     text NOT NULL,
    expires_ms     bigint NOT NULL,
    used_by_device text,
    created_ms     bigint NOT NULL
);

-- The operation log and the feed: every operation the server holds (`op` is the core's
-- encoding of the whole operation), in the order it was committed. `seq` is allocated under
-- the feed lock (see server/src/pg.rs), so it increases in commit order. `area` is the village
-- or unit the operation is filed under, NULL for reference data every device receives.
CREATE TABLE feed (
    seq     bigserial PRIMARY KEY,
    replica bytea  NOT NULL,
    counter bigint NOT NULL,
    area    text,
    op      bytea  NOT NULL,
    UNIQUE (replica, counter)
);
CREATE INDEX feed_area ON feed (area, seq);

CREATE TABLE quarantine (
    replica   bytea  NOT NULL,
    counter   bigint NOT NULL,
    device_id text   NOT NULL,
    reason    text   NOT NULL,
    body      bytea  NOT NULL,
    at_ms     bigint NOT NULL,
    PRIMARY KEY (replica, counter)
);

CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at_ms  bigint NOT NULL,
    actor  text   NOT NULL,
    action text   NOT NULL,
    target text   NOT NULL,
    detail text   NOT NULL
);
"#;

/// Version 2 (the command centre): command users sign in with a password (argon2 PHC string)
/// and hold web sessions (cookie tokens, stored hashed). Mirrors the SQLite backend's V2.
const V2: &str = r#"
ALTER TABLE users ADD COLUMN password_hash text;
CREATE UNIQUE INDEX users_signin_name ON users (name) WHERE password_hash IS NOT NULL;

CREATE TABLE web_sessions (
    token_hash text PRIMARY KEY,
    user_id    text   NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
"#;

/// `MIGRATIONS[i]` takes the PostgreSQL schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The PostgreSQL schema version this code writes.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;
type PooledClient = r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

fn schema_version(c: &mut impl GenericClient) -> Result<i64> {
    let row = c.query_opt(
        "SELECT value FROM server_meta WHERE key = 'schema_version'",
        &[],
    )?;
    match row {
        None => Ok(0),
        Some(r) => r
            .get::<_, String>(0)
            .parse()
            .map_err(|_| ServerError::Internal("server_meta.schema_version: not a number".into())),
    }
}

/// Bring the PostgreSQL schema to [`PG_SCHEMA_VERSION`], in one transaction under an advisory
/// lock (instances starting together migrate once), refusing a newer schema. Returns the
/// server's replica id (made by the first migration).
pub fn migrate(client: &mut postgres::Client) -> Result<Uuid> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS server_meta (key text PRIMARY KEY, value text NOT NULL)",
    )?;
    let found = schema_version(&mut tx)?;
    if found > PG_SCHEMA_VERSION {
        return Err(ServerError::Internal(format!(
            "PostgreSQL schema version {found} is newer than this server supports \
             ({PG_SCHEMA_VERSION}); upgrade the server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(i as i64 + 1).to_string()],
        )?;
    }
    tx.execute(
        "INSERT INTO server_meta (key, value) VALUES ('server_replica', $1)
         ON CONFLICT (key) DO NOTHING",
        &[&Uuid::new_v4().to_string()],
    )?;
    let replica: String = tx
        .query_one(
            "SELECT value FROM server_meta WHERE key = 'server_replica'",
            &[],
        )?
        .get(0);
    tx.commit()?;
    Uuid::parse_str(&replica)
        .map_err(|_| ServerError::Internal("server_meta.server_replica: not a UUID".into()))
}

/// Where the instance keeps its materialised view.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// A file kept across restarts (faster start-up); `None`: see `cache_dir`.
    pub path: Option<PathBuf>,
    /// Without `path`: a directory where the view is kept across runs as
    /// `view-<database id>.db`, locked (`.lock`) while a process uses it, so the next console
    /// command or restart only catches up instead of rebuilding from the whole feed. A
    /// process that finds it locked (another instance on this machine) uses a temporary view.
    /// `None`: a temporary file, rebuilt from PostgreSQL at every start.
    pub cache_dir: Option<PathBuf>,
}

/// The cached view in `dir` for the database `replica`, locked for this process; `None` when
/// another process holds it.
fn cached_view(dir: &Path, replica: Uuid) -> std::io::Result<Option<(PathBuf, std::fs::File)>> {
    use fs4::fs_std::FileExt;
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        // The view holds residents' personal data: only the server's user may read it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("view-{replica}.lock")))?;
    match FileExt::try_lock_exclusive(&lock) {
        Ok(true) => Ok(Some((dir.join(format!("view-{replica}.db")), lock))),
        Ok(false) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// The PostgreSQL backend.
pub struct PgBackend {
    /// Always `Some` until dropped (see the `Drop` impl).
    pool: Option<Pool>,
    view: Mutex<Store>,
    /// A read-only connection to the view for long reads (the dashboard's statistics).
    reader: Mutex<Option<rusqlite::Connection>>,
    view_path: PathBuf,
    /// The view's cursor key: `postgres:<server replica>`.
    peer: String,
    replica: Uuid,
    /// Fault injection for tests: hold each push's transaction open for a random time up to
    /// this many ms between writing its feed rows and committing (widens the window in which
    /// commits could land out of `seq` order). `DOORSTEP_PG_TEST_COMMIT_JITTER_MS`; 0 = off.
    commit_jitter_ms: u64,
    _tmp: Option<tempfile::TempDir>,
    /// The lock of a cached view (see [`ViewOptions::cache_dir`]), held while this lives.
    _view_lock: Option<std::fs::File>,
}

/// The variable of [`PgBackend`]'s commit-jitter fault injection (tests only).
pub const COMMIT_JITTER_ENV: &str = "DOORSTEP_PG_TEST_COMMIT_JITTER_MS";

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may carry a password: never printed.
        f.debug_struct("PgBackend")
            .field("replica", &self.replica)
            .field("view", &self.view_path)
            .finish_non_exhaustive()
    }
}

fn audit(
    c: &mut impl GenericClient,
    now_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&now_ms, &actor, &action, &target, &detail],
    )?;
    Ok(())
}

fn uuid_col(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| ServerError::Internal("malformed id in the database".into()))
}

fn uuid_blob(b: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(b)
        .map_err(|_| ServerError::Internal("malformed replica in the database".into()))
}

/// Take the feed lock: from here to the commit, this transaction is the only feed writer.
/// How many times this process took the feed lock, and the nanoseconds it waited for it.
static FEED_LOCK_TAKEN: AtomicU64 = AtomicU64::new(0);
static FEED_LOCK_WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// `(times taken, total nanoseconds waited)` for [`FEED_LOCK`] in this process.
pub fn feed_lock_stats() -> (u64, u64) {
    (
        FEED_LOCK_TAKEN.load(Ordering::Relaxed),
        FEED_LOCK_WAIT_NS.load(Ordering::Relaxed),
    )
}

fn lock_feed(c: &mut impl GenericClient) -> Result<()> {
    let started = std::time::Instant::now();
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
    FEED_LOCK_WAIT_NS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    FEED_LOCK_TAKEN.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Append operations to the feed (the caller holds [`FEED_LOCK`]), in the given order.
fn insert_feed(c: &mut impl GenericClient, rows: &[(Op, Option<String>)]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let replicas: Vec<Vec<u8>> = rows
        .iter()
        .map(|(op, _)| op.replica.0.as_bytes().to_vec())
        .collect();
    let counters: Vec<i64> = rows.iter().map(|(op, _)| op.counter as i64).collect();
    let areas: Vec<Option<String>> = rows.iter().map(|(_, a)| a.clone()).collect();
    let bodies: Vec<Vec<u8>> = rows.iter().map(|(op, _)| op.encode()).collect();
    Ok(c.execute(
        "INSERT INTO feed (replica, counter, area, op)
         SELECT r, c, a, o
         FROM unnest($1::bytea[], $2::int8[], $3::text[], $4::bytea[])
              WITH ORDINALITY AS t(r, c, a, o, n)
         ORDER BY n
         ON CONFLICT (replica, counter) DO NOTHING",
        &[&replicas, &counters, &areas, &bodies],
    )?)
}

/// Feed rows `(seq, op)` from a query whose columns are `seq, op`.
fn feed_ops(rows: Vec<postgres::Row>) -> Result<Vec<(u64, Op)>> {
    rows.into_iter()
        .map(|r| {
            let seq: i64 = r.try_get(0)?;
            let body: &[u8] = r.try_get(1)?;
            Ok((seq as u64, Op::decode(body)?))
        })
        .collect()
}

/// The feed in one repeatable-read snapshot, for [`cursor::pull_page`]; leaves out
/// `replica`'s rows. The snapshot is a prefix of the feed (feed writers hold [`FEED_LOCK`] to
/// their commit).
struct PgFeed<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    replica: Uuid,
}

impl FeedSnapshot for PgFeed<'_, '_> {
    fn area_rows(
        &mut self,
        area: &str,
        after: u64,
        until: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        feed_ops(self.tx.query(
            "SELECT seq, op FROM feed
             WHERE area = $1 AND seq > $2 AND seq <= $3 AND replica != $5
             ORDER BY seq LIMIT $4",
            &[
                &area,
                &(after as i64),
                &(until as i64),
                &(n as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?)
    }

    fn rows_after(
        &mut self,
        areas: &BTreeSet<String>,
        after: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        let areas: Vec<&str> = areas.iter().map(String::as_str).collect();
        feed_ops(self.tx.query(
            "SELECT seq, op FROM feed
             WHERE seq > $1 AND (area IS NULL OR area = ANY($2)) AND replica != $4
             ORDER BY seq LIMIT $3",
            &[
                &(after as i64),
                &areas,
                &(n as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?)
    }

    fn end(&mut self) -> Result<u64> {
        let end: i64 = self
            .tx
            .query_one("SELECT coalesce(max(seq), 0) FROM feed", &[])?
            .try_get(0)?;
        Ok(end as u64)
    }
}

/// What a dry run of a batch against the view decided.
struct Checked {
    /// Accepted operations new to the server, in batch order, with their feed area.
    accepted: Vec<(Op, Option<String>)>,
    /// Refused operations.
    rejected: Vec<Rejected>,
    /// Refused for `clock_ahead`: kept in quarantine.
    quarantined: Vec<Op>,
    /// Operations the server already held (or twice in the batch).
    duplicates: u64,
}

/// The sentinel error that rolls a dry run back.
const DRY_RUN: &str = "dry run: rolled back on purpose";

/// Check a batch against the view inside a transaction that is rolled back: each operation
/// sees the state after the batch's earlier ones, exactly as a real apply would. `refuse`
/// gives a refusal reason for an operation and its area, if any.
fn dry_run(
    store: &mut Store,
    ops: &[Op],
    refuse: impl Fn(&Op, &scope::Area) -> Option<&'static str>,
) -> Result<Checked> {
    let accepted: RefCell<Vec<(Op, Option<String>)>> = RefCell::default();
    let rejected: RefCell<Vec<Rejected>> = RefCell::default();
    let quarantined: RefCell<Vec<Op>> = RefCell::default();
    let finished = Cell::new(false);
    let outcome = store.apply_checked(
        ops,
        |conn, op| {
            let area = scope::op_area(conn, op)?;
            if let Some(reason) = refuse(op, &area) {
                if reason == "clock_ahead" {
                    quarantined.borrow_mut().push(op.clone());
                }
                rejected.borrow_mut().push(Rejected {
                    replica: op.replica.0,
                    counter: op.counter,
                    reason: reason.to_owned(),
                });
                return Ok(Verdict::Reject);
            }
            accepted
                .borrow_mut()
                .push((op.clone(), area.feed_area().map(str::to_owned)));
            Ok(Verdict::Accept)
        },
        |_, applied| {
            // Keep only what the apply really took (a dot twice in one batch is taken once).
            let taken: BTreeSet<(Uuid, u64)> =
                applied.iter().map(|o| (o.replica.0, o.counter)).collect();
            accepted
                .borrow_mut()
                .retain(|(o, _)| taken.contains(&(o.replica.0, o.counter)));
            finished.set(true);
            Err::<(), _>(doorstep_core::Error::Decode(DRY_RUN.into()))
        },
    );
    match outcome {
        Err(_) if finished.get() => {}
        Err(e) => return Err(e.into()),
        Ok(_) => {
            return Err(ServerError::Internal(
                "dry run committed (cannot happen)".into(),
            ))
        }
    }
    let accepted = accepted.into_inner();
    let rejected = rejected.into_inner();
    let duplicates = (ops.len() - accepted.len() - rejected.len()) as u64;
    Ok(Checked {
        accepted,
        rejected,
        quarantined: quarantined.into_inner(),
        duplicates,
    })
}

impl PgBackend {
    /// Connect to `url`, migrate, and build the view.
    ///
    /// `url` is a libpq-style connection string or `postgres://` URL; it never appears in an
    /// error or a log line (it may carry a password).
    pub fn open(url: &str, view: ViewOptions) -> Result<PgBackend> {
        let conn = crate::pgtls::parse(url)?;
        // One connection first, for an error an operator can act on (an untrusted
        // certificate, a server without TLS; the pool's own error only says it timed out),
        // and for the migrations.
        let replica = {
            let mut first = conn
                .config
                .connect(conn.tls.clone())
                .map_err(|e| ServerError::Unavailable(crate::pgtls::describe(&e)))?;
            migrate(&mut first)?
        };
        let manager = PostgresConnectionManager::new(conn.config, conn.tls);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(2))
            .build(manager)
            .map_err(|_| ServerError::Unavailable("cannot connect to PostgreSQL".into()))?;
        let mut view_lock = None;
        let cached = match (&view.path, &view.cache_dir) {
            (None, Some(dir)) => match cached_view(dir, replica) {
                Ok(Some((path, lock))) => {
                    view_lock = Some(lock);
                    Some(path)
                }
                Ok(None) => {
                    tracing::info!(
                        "the cached view is in use by another process: using a temporary view"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "view cache unusable: using a temporary view");
                    None
                }
            },
            _ => None,
        };
        let (view_path, tmp) = match view.path.or(cached) {
            Some(p) => (p, None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("doorstep-view-")
                    .tempdir()
                    .map_err(|e| ServerError::Internal(format!("view directory: {e}")))?;
                (dir.path().join("view.db"), Some(dir))
            }
        };
        let mut store = Store::open(
            &view_path,
            Options {
                // The view is rebuilt from PostgreSQL if lost: no need to wait for the disk.
                durability: doorstep_core::Durability::Normal,
                ..Options::default()
            },
        )?;
        let peer = format!("postgres:{replica}");
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
        let backend = PgBackend {
            pool: Some(pool),
            view: Mutex::new(store),
            reader: Mutex::new(None),
            view_path,
            peer,
            replica,
            commit_jitter_ms: std::env::var(COMMIT_JITTER_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            _tmp: tmp,
            _view_lock: view_lock,
        };
        {
            let mut store = backend.lock()?;
            let mut c = backend.client()?;
            backend.catch_up(&mut store, &mut *c)?;
            // Console writes whose PostgreSQL commit did not happen are mended here.
            let mut tx = c.transaction()?;
            lock_feed(&mut tx)?;
            backend.catch_up(&mut store, &mut tx)?;
            backend.send_own_ops(&store, &mut tx)?;
            tx.commit()?;
        }
        Ok(backend)
    }

    /// The view's file (a core store: the materialised tables, read-only for others).
    pub fn view_path(&self) -> &Path {
        &self.view_path
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
            after = last;
        }
    }

    /// Bring the view up to date and run `f` on it (tests and tools that read the
    /// materialised tables, such as the dashboard's statistics).
    pub fn with_view<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        self.catch_up(&mut store, &mut *c)?;
        drop(c);
        Ok(f(&mut store))
    }

    /// Write to the view with the core API as the console does (tests and tools), then file
    /// the operations it made in the shared feed, in one PostgreSQL transaction under the
    /// feed lock. Not audited: the caller audits what it does.
    pub fn with_view_write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        // Catch up before taking the feed lock, so that under it only the rows committed in
        // the meantime are applied: the lock is held for this write, not for other
        // instances' earlier ones.
        self.catch_up(&mut store, &mut *c)?;
        let mut tx = c.transaction()?;
        lock_feed(&mut tx)?;
        self.catch_up(&mut store, &mut tx)?;
        let out = f(&mut store);
        self.send_own_ops(&store, &mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` with a PostgreSQL connection (tests and tools that read the shared tables).
    pub fn with_client<T>(&self, f: impl FnOnce(&mut postgres::Client) -> T) -> Result<T> {
        let mut c = self.client()?;
        Ok(f(&mut c))
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
        let mut rows = Vec::with_capacity(ops.len());
        for op in ops {
            let area = scope::op_area(store.connection(), &op)?;
            rows.push((op, area.feed_area().map(str::to_owned)));
        }
        insert_feed(tx, &rows)?;
        Ok(rows.len())
    }

    /// Run a core write made by the console on the view, then file its operations in the
    /// feed and audit it, in one PostgreSQL transaction under the feed lock.
    fn local_write<T>(
        &self,
        actor: &str,
        action: &str,
        now_ms: i64,
        write: impl FnOnce(&mut Store) -> Result<(T, String, String)>,
    ) -> Result<T> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        // Catch up before taking the feed lock, so that under it only the rows committed in
        // the meantime are applied: the lock is held for this write, not for other
        // instances' earlier ones.
        self.catch_up(&mut store, &mut *c)?;
        let mut tx = c.transaction()?;
        lock_feed(&mut tx)?;
        self.catch_up(&mut store, &mut tx)?;
        let (out, target, detail) = write(&mut store)?;
        self.send_own_ops(&store, &mut tx)?;
        audit(&mut tx, now_ms, actor, action, &target, &detail)?;
        tx.commit()?;
        Ok(out)
    }

    /// Check `ops` against the view and file the accepted ones, with `finish` run in the same
    /// PostgreSQL transaction before the commit; then catch the view up.
    ///
    /// `officer`: whose scope the batch is checked against (computed on the caught-up view,
    /// under the lock, like the rest of the check); `None` accepts everything (imports).
    fn apply_shared<T>(
        &self,
        ops: &[Op],
        officer: Option<Uuid>,
        now_ms: i64,
        finish: impl FnOnce(&mut postgres::Transaction<'_>, &Checked) -> Result<T>,
    ) -> Result<(Checked, T)> {
        let mut store = self.lock()?;
        let mut c = self.client()?;
        // Catch up before taking the feed lock, so that under it only the rows committed in
        // the meantime are applied: the lock is held for this write, not for other
        // instances' earlier ones.
        self.catch_up(&mut store, &mut *c)?;
        let mut tx = c.transaction()?;
        lock_feed(&mut tx)?;
        self.catch_up(&mut store, &mut tx)?;
        let officer_scope = officer
            .map(|o| scope::officer_scope(store.connection(), o))
            .transpose()?;
        let checked = dry_run(&mut store, ops, |op, area| {
            officer_scope
                .as_ref()
                .and_then(|s| scope::refusal(s, op, area, now_ms))
        })?;
        insert_feed(&mut tx, &checked.accepted)?;
        if self.commit_jitter_ms > 0 {
            let ms = rand::random::<u64>() % self.commit_jitter_ms;
            std::thread::sleep(Duration::from_millis(ms));
        }
        let out = finish(&mut tx, &checked)?;
        tx.commit()?;
        // Applies the batch to the view; if it fails here, the next request catches up.
        if let Err(e) = self.catch_up(&mut store, &mut *c) {
            tracing::warn!(error = %e, "view catch-up after a commit failed; retried later");
        }
        Ok((checked, out))
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // The blocking `postgres` client closes its connection by driving a runtime of its
        // own, which panics on a tokio worker thread (where a server's state is dropped at
        // shutdown): close the connections on a plain thread.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl Backend for PgBackend {
    fn health(&self) -> Result<()> {
        let mut c = self.client()?;
        c.query_one("SELECT count(*) FROM server_meta", &[])?;
        Ok(())
    }

    fn server_replica(&self) -> Uuid {
        self.replica
    }

    fn enrol(&self, e: Enrolment, now_ms: i64) -> Result<Enrolled> {
        let name = e.device_name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DEVICE_NAME
            || name.chars().any(char::is_control)
        {
            return Err(ServerError::BadRequest(
                "device_name: expected a label of 1-100 characters".into(),
            ));
        }
        // A phone re-enrolling after a reset keeps its replica: start from what we hold.
        let acked: i64 = self.with_view(|s| {
            s.connection()
                .query_row(
                    "SELECT coalesce(max(contiguous), 0) FROM replicas WHERE replica = ?1",
                    [e.replica.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .map_err(ServerError::from)
        })??;
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        let code_hash = auth::hash_secret(&auth::normalize_code(&e.code));
        let row = tx.query_opt(
            "SELECT officer_id, expires_ms, used_by_device FROM enrol_codes
             WHERE code_hash = $1 FOR UPDATE",
            &[&code_hash],
        )?;
        let Some(row) = row else {
            return Err(ServerError::Unauthorized("unknown enrolment code"));
        };
        let officer: String = row.try_get(0)?;
        let expires_ms: i64 = row.try_get(1)?;
        let used: Option<String> = row.try_get(2)?;
        if used.is_some() {
            return Err(ServerError::Unauthorized("enrolment code already used"));
        }
        if now_ms >= expires_ms {
            return Err(ServerError::Unauthorized("enrolment code expired"));
        }
        let officer_id = uuid_col(&officer)?;
        let device_id = Uuid::now_v7();
        let token = auth::new_token();
        tx.execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at,
                                  acked_counter, last_seen_ms, clock_offset_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)",
            &[
                &device_id.to_string(),
                &officer,
                &e.replica.as_bytes().as_slice(),
                &name,
                &auth::hash_secret(&token),
                &now_ms,
                &acked,
                &now_ms.saturating_sub(e.device_time_ms),
            ],
        )?;
        tx.execute(
            "UPDATE enrol_codes SET used_by_device = $2 WHERE code_hash = $1",
            &[&code_hash, &device_id.to_string()],
        )?;
        audit(
            &mut tx,
            now_ms,
            &format!("device:{device_id}"),
            "enrol",
            &device_id.to_string(),
            &format!("officer={officer_id}"),
        )?;
        tx.commit()?;
        Ok(Enrolled {
            device_id,
            token,
            officer_id,
            server_replica: self.replica,
        })
    }

    fn authenticate_device(&self, token: &str) -> Result<Option<DeviceAuth>> {
        let mut c = self.client()?;
        let row = c.query_opt(
            "SELECT id, officer_id, replica FROM devices
             WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&auth::hash_secret(token)],
        )?;
        row.map(|r| {
            Ok(DeviceAuth {
                device_id: uuid_col(r.try_get(0)?)?,
                officer_id: uuid_col(r.try_get(1)?)?,
                replica: uuid_blob(r.try_get(2)?)?,
            })
        })
        .transpose()
    }

    fn authenticate_user(&self, token: &str) -> Result<Option<UserAuth>> {
        let mut c = self.client()?;
        let row = c.query_opt(
            "SELECT id, role FROM users WHERE token_hash = $1",
            &[&auth::hash_secret(token)],
        )?;
        row.map(|r| {
            Ok(UserAuth {
                user_id: uuid_col(r.try_get(0)?)?,
                role: r.try_get(1)?,
            })
        })
        .transpose()
    }

    fn push(
        &self,
        device: &DeviceAuth,
        ops: Vec<Op>,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PushResponse> {
        let own_max = ops
            .iter()
            .filter(|o| o.replica.0 == device.replica)
            .map(|o| o.counter)
            .max()
            .unwrap_or(0) as i64;
        let device_id = device.device_id.to_string();
        let (checked, acked) =
            self.apply_shared(&ops, Some(device.officer_id), now_ms, |tx, checked| {
                for op in &checked.quarantined {
                    tx.execute(
                        "INSERT INTO quarantine (replica, counter, device_id, reason, body, at_ms)
                         VALUES ($1, $2, $3, 'clock_ahead', $4, $5) ON CONFLICT DO NOTHING",
                        &[
                            &op.replica.0.as_bytes().as_slice(),
                            &(op.counter as i64),
                            &device_id,
                            &op.encode(),
                            &now_ms,
                        ],
                    )?;
                }
                let row = tx.query_one(
                    "UPDATE devices SET acked_counter = greatest(acked_counter, $2),
                            last_seen_ms = $3, clock_offset_ms = $4
                     WHERE id = $1 RETURNING acked_counter",
                    &[
                        &device_id,
                        &own_max,
                        &now_ms,
                        &now_ms.saturating_sub(device_time_ms),
                    ],
                )?;
                Ok(row.try_get::<_, i64>(0)?)
            })?;
        Ok(PushResponse {
            applied: checked.accepted.len() as u64,
            duplicates: checked.duplicates,
            rejected: checked.rejected,
            acked_counter: acked as u64,
            server_time_ms: now_ms,
        })
    }

    fn pull(
        &self,
        device: &DeviceAuth,
        cursor: Option<&str>,
        limit: u32,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PullResponse> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let scope = self.with_view(|s| {
            scope::officer_scope(s.connection(), device.officer_id).map_err(ServerError::from)
        })??;
        let mut c = self.client()?;
        c.execute(
            "UPDATE devices SET last_seen_ms = $2, clock_offset_ms = $3 WHERE id = $1",
            &[
                &device.device_id.to_string(),
                &now_ms,
                &now_ms.saturating_sub(device_time_ms),
            ],
        )?;
        // One snapshot for the whole page: it sees a prefix of the feed.
        let mut tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let mut feed = PgFeed {
            tx: &mut tx,
            replica: device.replica,
        };
        let (ops, cur, has_more) = cursor::pull_page(&mut feed, &scope, cursor, limit)?;
        tx.commit()?;
        Ok(PullResponse {
            ops,
            cursor: cur.encode(),
            has_more,
            server_time_ms: now_ms,
        })
    }

    fn bootstrap_admin(&self, name: &str, now_ms: i64) -> Result<Option<(Uuid, String)>> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ServerError::BadRequest(
                "name: expected 1-100 characters".into(),
            ));
        }
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])?;
        let users: i64 = tx
            .query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[])?
            .try_get(0)?;
        if users > 0 {
            return Ok(None);
        }
        let id = Uuid::now_v7();
        let token = auth::new_token();
        tx.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms)
             VALUES ($1, $2, 'admin', NULL, $3, $4)",
            &[&id.to_string(), &name, &auth::hash_secret(&token), &now_ms],
        )?;
        audit(
            &mut tx,
            now_ms,
            crate::backend::CLI_ACTOR,
            "bootstrap",
            &id.to_string(),
            "role=admin",
        )?;
        tx.commit()?;
        Ok(Some((id, token)))
    }

    fn issue_enrol_code(
        &self,
        actor: &str,
        officer_id: Uuid,
        ttl_minutes: u32,
        now_ms: i64,
    ) -> Result<IssuedCode> {
        if ttl_minutes == 0 || ttl_minutes > MAX_TTL_MINUTES {
            return Err(ServerError::BadRequest(format!(
                "ttl_minutes: expected 1 to {MAX_TTL_MINUTES}"
            )));
        }
        let known: bool = self.with_view(|s| {
            s.connection()
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM officers WHERE id = ?1 AND deleted = 0)",
                    [officer_id.to_string()],
                    |r| r.get(0),
                )
                .map_err(ServerError::from)
        })??;
        if !known {
            return Err(ServerError::NotFound("no officer with that id"));
        }
        let code = auth::new_code();
        let expires_ms = now_ms + i64::from(ttl_minutes) * 60_000;
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO enrol_codes (code_hash, officer_id, expires_ms, used_by_device, created_ms)
             VALUES ($1, $2, $3, NULL, $4)",
            &[
                &auth::hash_secret(&code),
                &officer_id.to_string(),
                &expires_ms,
                &now_ms,
            ],
        )?;
        audit(
            &mut tx,
            now_ms,
            actor,
            "enrol_code",
            &officer_id.to_string(),
            &format!("ttl_minutes={ttl_minutes}"),
        )?;
        tx.commit()?;
        Ok(IssuedCode { code, expires_ms })
    }

    fn revoke_device(&self, actor: &str, device_id: Uuid, now_ms: i64) -> Result<bool> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        let id = device_id.to_string();
        let exists = tx
            .query_opt("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", &[&id])?
            .is_some();
        if !exists {
            return Err(ServerError::NotFound("no device with that id"));
        }
        let n = tx.execute(
            "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now_ms],
        )?;
        audit(
            &mut tx,
            now_ms,
            actor,
            "revoke",
            &id,
            if n == 1 { "revoked" } else { "already_revoked" },
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn list_devices(&self) -> Result<Vec<DeviceInfo>> {
        let mut c = self.client()?;
        let rows = c.query(
            "SELECT id, officer_id, replica, name, enrolled_at, revoked_at, acked_counter,
                    last_seen_ms, clock_offset_ms
             FROM devices ORDER BY enrolled_at, id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(DeviceInfo {
                    id: uuid_col(r.try_get(0)?)?,
                    officer_id: uuid_col(r.try_get(1)?)?,
                    replica: uuid_blob(r.try_get(2)?)?,
                    name: r.try_get(3)?,
                    enrolled_at_ms: r.try_get(4)?,
                    revoked_at_ms: r.try_get(5)?,
                    acked_counter: r.try_get::<_, i64>(6)? as u64,
                    last_seen_ms: r.try_get(7)?,
                    clock_offset_ms: r.try_get(8)?,
                })
            })
            .collect()
    }

    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut c = self.client()?;
        let rows = c.query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT $1",
            &[&i64::from(limit.clamp(1, 10_000))],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    fn gauges(&self) -> Result<Gauges> {
        let mut c = self.client()?;
        let mut count =
            |sql: &str| -> Result<u64> { Ok(c.query_one(sql, &[])?.try_get::<_, i64>(0)? as u64) };
        let mut g = Gauges {
            devices_active: count("SELECT count(*) FROM devices WHERE revoked_at IS NULL")?,
            devices_revoked: count("SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL")?,
            quarantined: count("SELECT count(*) FROM quarantine")?,
            feed_rows: count("SELECT count(*) FROM feed")?,
            clock_offsets: Vec::new(),
            feed_lock: Some(feed_lock_stats()),
        };
        for r in c.query(
            "SELECT id, clock_offset_ms FROM devices
             WHERE revoked_at IS NULL AND clock_offset_ms IS NOT NULL ORDER BY id",
            &[],
        )? {
            g.clock_offsets
                .push((uuid_col(r.try_get(0)?)?, r.try_get(1)?));
        }
        Ok(g)
    }

    fn read_view(&self, f: &mut dyn FnMut(&rusqlite::Connection) -> Result<()>) -> Result<()> {
        // Catch the view up under its lock, then read it through a connection of its own so a
        // long read (a statistics snapshot) never holds up pushes; WAL lets it run beside them.
        self.with_view(|_| ())?;
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| ServerError::Internal("reader mutex poisoned".into()))?;
        if reader.is_none() {
            *reader = Some(Store::open_reader(&self.view_path)?);
        }
        let conn = reader.as_ref().expect("just opened");
        conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(conn);
        // A read transaction: ending it cannot lose anything.
        let end = conn.execute_batch("COMMIT");
        out?;
        end?;
        Ok(())
    }

    fn add_command_user(
        &self,
        actor: &str,
        name: &str,
        role: &str,
        unit_code: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        let (name, level) = console::check_command_user(name, role)?;
        let unit_code = unit_code.trim();
        // Units live in the view (they are replicated data).
        let unit_level: Option<Option<String>> = self.with_view(|store| {
            store
                .connection()
                .query_row(
                    "SELECT level FROM units WHERE code = ?1",
                    [unit_code],
                    |r| r.get(0),
                )
                .optional()
        })??;
        match unit_level {
            None => return Err(ServerError::NotFound("unit")),
            Some(l) if l.as_deref() != Some(level) => {
                return Err(ServerError::BadRequest(format!(
                    "unit: a {role} user needs a unit of level {level}"
                )))
            }
            Some(_) => {}
        }
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1 AND password_hash IS NOT NULL)",
                &[&name],
            )?
            .try_get(0)?;
        if taken {
            return Err(ServerError::BadRequest(
                "name: already used by another user; choose another".into(),
            ));
        }
        let id = Uuid::now_v7();
        // The bearer-token column is required: give it a random token nobody learns.
        tx.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id.to_string(),
                &name,
                &role,
                &unit_code,
                &auth::hash_secret(&auth::new_token()),
                &now_ms,
                &password_hash,
            ],
        )?;
        audit(
            &mut tx,
            now_ms,
            actor,
            "user_add",
            &id.to_string(),
            &format!("role={role} unit={unit_code}"),
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn command_user_by_name(&self, name: &str) -> Result<Option<(CommandUser, String)>> {
        let mut c = self.client()?;
        let row = c.query_opt(
            "SELECT id, name, role, unit_code, password_hash FROM users
              WHERE name = $1 AND password_hash IS NOT NULL",
            &[&name.trim()],
        )?;
        row.map(|r| {
            Ok((
                CommandUser {
                    user_id: uuid_col(r.try_get(0)?)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    unit_code: r.try_get(3)?,
                },
                r.try_get(4)?,
            ))
        })
        .transpose()
    }

    fn command_user_by_token(&self, token: &str) -> Result<Option<CommandUser>> {
        let mut c = self.client()?;
        let row = c.query_opt(
            "SELECT id, name, role, unit_code FROM users WHERE token_hash = $1",
            &[&auth::hash_secret(token)],
        )?;
        row.map(|r| {
            Ok(CommandUser {
                user_id: uuid_col(r.try_get(0)?)?,
                name: r.try_get(1)?,
                role: r.try_get(2)?,
                unit_code: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn start_session(
        &self,
        user_id: Uuid,
        token: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        tx.execute("DELETE FROM web_sessions WHERE expires_ms < $1", &[&now_ms])?;
        tx.execute(
            "INSERT INTO web_sessions (token_hash, user_id, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4)",
            &[
                &auth::hash_secret(token),
                &user_id.to_string(),
                &now_ms,
                &expires_ms,
            ],
        )?;
        let actor = format!("user:{user_id}");
        audit(
            &mut tx,
            now_ms,
            &actor,
            "sign_in",
            &user_id.to_string(),
            "web",
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session_user(&self, token: &str, now_ms: i64) -> Result<Option<CommandUser>> {
        let mut c = self.client()?;
        let row = c.query_opt(
            "SELECT u.id, u.name, u.role, u.unit_code FROM web_sessions s
               JOIN users u ON u.id = s.user_id
              WHERE s.token_hash = $1 AND s.expires_ms > $2",
            &[&auth::hash_secret(token), &now_ms],
        )?;
        row.map(|r| {
            Ok(CommandUser {
                user_id: uuid_col(r.try_get(0)?)?,
                name: r.try_get(1)?,
                role: r.try_get(2)?,
                unit_code: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn end_session(&self, token: &str) -> Result<()> {
        let mut c = self.client()?;
        c.execute(
            "DELETE FROM web_sessions WHERE token_hash = $1",
            &[&auth::hash_secret(token)],
        )?;
        Ok(())
    }

    fn set_quota(&self, actor: &str, quota: QuotaInput, now_ms: i64) -> Result<Uuid> {
        self.local_write(actor, "quota_set", now_ms, |s| console::set_quota(s, quota))
    }

    fn set_assignment(
        &self,
        actor: &str,
        officer_id: Uuid,
        target: AssignTarget,
        active: bool,
        now_ms: i64,
    ) -> Result<Uuid> {
        let action = if active { "assign" } else { "unassign" };
        self.local_write(actor, action, now_ms, |s| {
            console::set_assignment(s, officer_id, target, active)
        })
    }

    fn add_officer(
        &self,
        actor: &str,
        name: &str,
        role: Role,
        unit_code: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        self.local_write(actor, "officer_add", now_ms, |s| {
            console::add_officer(s, name, role, unit_code)
        })
    }

    fn assign_village(
        &self,
        actor: &str,
        officer_id: Uuid,
        village: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        self.local_write(actor, "assign", now_ms, |s| {
            console::assign_village(s, officer_id, village)
        })
    }

    fn import_units(&self, actor: &str, csv: &[u8], now_ms: i64) -> Result<(u64, u64)> {
        self.local_write(actor, "units_import", now_ms, |s| {
            console::import_units(s, csv)
        })
    }

    fn put_unit(&self, actor: &str, unit: UnitInput, now_ms: i64) -> Result<()> {
        self.local_write(actor, "unit_put", now_ms, |s| console::put_unit(s, unit))
    }

    fn put_campaign(&self, actor: &str, campaign: CampaignInput, now_ms: i64) -> Result<Uuid> {
        self.local_write(actor, "campaign_put", now_ms, |s| {
            console::put_campaign(s, campaign)
        })
    }

    fn import_roster(
        &self,
        actor: &str,
        campaign_id: Uuid,
        csv: &[u8],
        progress: &mut dyn FnMut(ImportProgress),
        now_ms: i64,
    ) -> Result<ImportReport> {
        self.local_write(actor, "roster_import", now_ms, |s| {
            console::import_roster(s, campaign_id, csv, progress)
        })
    }

    fn import_ops(&self, actor: &str, ops: &[Op], now_ms: i64) -> Result<u64> {
        let (checked, ()) = self.apply_shared(ops, None, now_ms, |tx, checked| {
            audit(
                tx,
                now_ms,
                actor,
                "ops_import",
                "oplog",
                &format!(
                    "applied={} duplicates={}",
                    checked.accepted.len(),
                    checked.duplicates
                ),
            )
        })?;
        Ok(checked.accepted.len() as u64)
    }
}

/// Throwaway databases for tests: `DOORSTEP_TEST_DATABASE_URL` names a cluster
/// (`scripts/pg.sh url`), and each test gets a database of its own in it.
#[doc(hidden)]
pub mod testing {
    /// The variable naming the test cluster.
    pub const ENV: &str = "DOORSTEP_TEST_DATABASE_URL";

    /// The test cluster's URL; `None` when it is not set, which is an error under CI (where
    /// `scripts/test.sh` starts PostgreSQL): the PostgreSQL tests must not silently vanish.
    pub fn base_url() -> Option<String> {
        match std::env::var(ENV) {
            Ok(u) if !u.trim().is_empty() => Some(u),
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{ENV} is not set under CI: scripts/test.sh must start PostgreSQL \
                     (scripts/pg.sh start)"
                );
                eprintln!("{ENV} not set: PostgreSQL variant skipped (run scripts/test.sh)");
                None
            }
        }
    }

    /// Create an empty database in the cluster at `base` and return its URL.
    pub fn fresh_database(base: &str) -> Result<String, postgres::Error> {
        let name = format!("doorstep_t_{}", uuid::Uuid::new_v4().simple());
        let mut c = postgres::Client::connect(base, postgres::NoTls)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(with_dbname(base, &name))
    }

    /// `base` with its database name replaced by `name` (URL form `postgres://…/db?opts`).
    pub fn with_dbname(base: &str, name: &str) -> String {
        let (head, query) = match base.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (base, None),
        };
        let scheme_end = head.find("://").map_or(0, |i| i + 3);
        let head = match head[scheme_end..].find('/') {
            Some(i) => &head[..scheme_end + i],
            None => head,
        };
        match query {
            Some(q) => format!("{head}/{name}?{q}"),
            None => format!("{head}/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres::NoTls;

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

    #[test]
    fn dbname_is_replaced() {
        assert_eq!(
            testing::with_dbname("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            testing::with_dbname("postgresql://u@h:5", "x"),
            "postgresql://u@h:5/x"
        );
        assert_eq!(
            testing::with_dbname("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }

    /// A database at v1 (as the first PostgreSQL release left it) with an admin and a device
    /// migrates to v2 keeping both; command users and web sessions then work.
    #[test]
    fn migration_from_v1_keeps_users_and_devices() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '1'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        c.batch_execute(V1).unwrap();
        c.batch_execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms)
                 VALUES ('u1', 'root', 'admin', NULL, 'h-admin', 1);
             INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
                 VALUES ('d1', 'o1', '\\x00', 'phone', 'h-device', 2);",
        )
        .unwrap();
        let replica = migrate(&mut c).unwrap();
        assert_eq!(replica.to_string(), "0190a5c4-7c11-7000-8000-000000000001");
        assert_eq!(schema_version(&mut c).unwrap(), 2);
        let row = c
            .query_one(
                "SELECT name, role, password_hash FROM users WHERE id = 'u1'",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "root");
        assert_eq!(row.get::<_, String>(1), "admin");
        assert_eq!(row.get::<_, Option<String>>(2), None);
        let devices: i64 = c
            .query_one(
                "SELECT count(*) FROM devices WHERE token_hash = 'h-device'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(devices, 1);
        drop(c);
        // The v2 paths on the migrated database.
        let b = PgBackend::open(&url, ViewOptions::default()).unwrap();
        b.with_view_write(|s| {
            s.put_unit(UnitInput {
                code: "58".into(),
                parent_code: None,
                level: doorstep_core::UnitLevel::Province,
                kind: "tỉnh".into(),
                name: "Ninh Thuận".into(),
            })
        })
        .unwrap()
        .unwrap();
        let id = b
            .add_command_user("cli", "chief", "province", "58", "$argon2id$hash", 3)
            .unwrap();
        let (user, hash) = b.command_user_by_name("chief").unwrap().unwrap();
        assert_eq!((user.user_id, hash.as_str()), (id, "$argon2id$hash"));
        b.start_session(id, "cookie-token", 100, 4).unwrap();
        assert_eq!(
            b.session_user("cookie-token", 50).unwrap().unwrap().user_id,
            id
        );
        assert!(b.session_user("cookie-token", 150).unwrap().is_none());
        b.end_session("cookie-token").unwrap();
        assert!(b.session_user("cookie-token", 50).unwrap().is_none());
    }

    #[test]
    fn migration_from_nothing_then_no_op_then_refuses_newer() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        // Previous schema: none (v1 is the first).
        let r1 = migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            tables, 8,
            "server_meta, the six tables of v1 and web_sessions of v2"
        );
        // Again: nothing changes, the same replica.
        assert_eq!(migrate(&mut c).unwrap(), r1);
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        // A newer schema is refused and left alone.
        c.execute(
            "UPDATE server_meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
        let err = migrate(&mut c).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert_eq!(schema_version(&mut c).unwrap(), 99);
        assert!(PgBackend::open(&url, ViewOptions::default()).is_err());
    }
}
