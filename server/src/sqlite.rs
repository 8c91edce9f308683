//! The embedded-SQLite backend: the server's tables live in the core store's own file.
//!
//! Keeping `devices`, `feed`, `quarantine`… in the same file as the operation log is what lets
//! a push merge the batch, file its feed rows and record the device's acknowledgement in one
//! transaction ([`Store::apply_checked`]). The core `Store` is `!Sync` and owns the single
//! writer connection, so it sits behind a mutex; the HTTP layer calls in from
//! `spawn_blocking`.
//!
//! The server's schema has its own version (`server_meta.server_schema_version`), separate
//! from the core's `PRAGMA user_version`; each migration step runs in one IMMEDIATE
//! transaction, and a database newer than this code is refused.

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
use doorstep_core::wire::{PullResponse, PushResponse, Rejected};
use doorstep_core::{
    AssignTarget, CampaignInput, Op, Options, QuotaInput, ReplicaId, Role, Store, UnitInput,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// The most operations a pull page carries.
pub const MAX_PAGE: u32 = 1000;
/// Longest device label accepted, in characters.
const MAX_DEVICE_NAME: usize = 100;
/// Longest enrolment-code lifetime: a week.
const MAX_TTL_MINUTES: u32 = 7 * 24 * 60;

const V1: &str = r#"
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    unit_code  TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    officer_id      TEXT NOT NULL,
    replica         BLOB NOT NULL,
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    enrolled_at     INTEGER NOT NULL,
    revoked_at      INTEGER,
    acked_counter   INTEGER NOT NULL DEFAULT 0,
    last_seen_ms    INTEGER,
    clock_offset_ms INTEGER
) STRICT;
CREATE INDEX devices_officer ON devices(officer_id);

CREATE TABLE enrol_codes (
    code_hash      TEXT PRIMARY KEY,
    officer_id     TEXT NOT NULL,
    expires_ms     INTEGER NOT NULL,
    used_by_device TEXT,
    created_ms     INTEGER NOT NULL
) STRICT;

-- Every operation the server holds, in the order it learnt them; `area` is the village the
-- operation concerns, NULL for reference data every device receives.
CREATE TABLE feed (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    replica BLOB    NOT NULL,
    counter INTEGER NOT NULL,
    area    TEXT,
    UNIQUE (replica, counter)
) STRICT;
CREATE INDEX feed_area ON feed(area, seq);

-- Operations refused for `clock_ahead`, kept whole for an admin to look at.
CREATE TABLE quarantine (
    replica   BLOB    NOT NULL,
    counter   INTEGER NOT NULL,
    device_id TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    body      BLOB    NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (replica, counter)
) STRICT;

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL
) STRICT;
"#;

/// Version 2: command users sign in with a password (argon2 PHC string) and hold web sessions
/// (cookie tokens, stored hashed).
const V2: &str = r#"
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE UNIQUE INDEX users_signin_name ON users(name) WHERE password_hash IS NOT NULL;

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_user ON web_sessions(user_id);
"#;

/// `MIGRATIONS[i]` takes the server schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The server schema version this code writes.
pub const SERVER_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn server_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT value FROM server_meta WHERE key = 'server_schema_version'",
        [],
        |r| r.get(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0))
}

/// Bring the server's tables to [`SERVER_SCHEMA_VERSION`].
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value ANY) STRICT",
    )?;
    let found = server_version(conn)?;
    if found > SERVER_SCHEMA_VERSION {
        return Err(ServerError::Internal(format!(
            "server schema version {found} is newer than this server supports \
             ({SERVER_SCHEMA_VERSION}); upgrade the server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if server_version(&tx)? > i as i64 {
            continue; // another process migrated meanwhile
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('server_schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [i as i64 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The SQLite backend.
pub struct SqliteBackend {
    store: Mutex<Store>,
    replica: Uuid,
    /// The database file (none in memory): statistics read it through their own connection,
    /// so a long read never holds the writer's lock.
    path: Option<PathBuf>,
    reader: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn audit(
    conn: &Connection,
    now_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now_ms, actor, action, target, detail])?;
    Ok(())
}

fn uuid_col(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| ServerError::Internal("malformed id in the database".into()))
}

fn uuid_blob(b: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(b)
        .map_err(|_| ServerError::Internal("malformed replica in the database".into()))
}

/// Record the device's clock offset and last request.
fn touch(conn: &Connection, device: &DeviceAuth, device_time_ms: i64, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE devices SET last_seen_ms = ?2, clock_offset_ms = ?3 WHERE id = ?1",
    )?
    .execute(params![
        device.device_id.to_string(),
        now_ms,
        now_ms.saturating_sub(device_time_ms)
    ])?;
    Ok(())
}

fn insert_feed(conn: &Connection, op: &Op, area: Option<&str>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO feed (replica, counter, area) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        op.replica.0.as_bytes().as_slice(),
        op.counter as i64,
        area
    ])?;
    Ok(())
}

/// Feed rows joined with their operations.
fn feed_ops(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<(u64, Op)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let replica: Vec<u8> = row.get(1)?;
        let body: Vec<u8> = row.get(4)?;
        let op = Op::from_log(&replica, row.get(2)?, row.get(3)?, &body)?;
        out.push((seq as u64, op));
    }
    Ok(out)
}

/// The feed in one read transaction, for [`cursor::pull_page`]; leaves out `replica`'s rows.
struct SqliteFeed<'a> {
    conn: &'a Connection,
    replica: Uuid,
}

impl FeedSnapshot for SqliteFeed<'_> {
    fn area_rows(
        &mut self,
        area: &str,
        after: u64,
        until: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.area = ?1 AND f.seq > ?2 AND f.seq <= ?3 AND f.replica != ?5
             ORDER BY f.seq LIMIT ?4",
            params![
                area,
                after as i64,
                until as i64,
                n as i64,
                self.replica.as_bytes().as_slice()
            ],
        )
    }

    fn rows_after(
        &mut self,
        areas: &BTreeSet<String>,
        after: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        let areas_json =
            serde_json::to_string(areas).map_err(|e| ServerError::Internal(e.to_string()))?;
        // The page ends at the n-th row: found by walking each area's index range (and the
        // reference data's), so the query below reads only the page's rows. Left to itself,
        // SQLite gathers every row of the areas after the cursor and sorts them (a new
        // device's first page then costs the whole feed).
        let until = page_end(self.conn, areas, after, n, self.replica)?;
        feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.seq > ?1 AND f.seq <= ?5
               AND (f.area IS NULL OR f.area IN (SELECT value FROM json_each(?2)))
               AND f.replica != ?4
             ORDER BY f.seq LIMIT ?3",
            params![
                after as i64,
                areas_json,
                n as i64,
                self.replica.as_bytes().as_slice(),
                until
            ],
        )
    }

    fn end(&mut self) -> Result<u64> {
        // SQLite has one writer, so no lower sequence number can commit later.
        let end: i64 = self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM feed", [], |r| r.get(0))?;
        Ok(end as u64)
    }
}

/// The feed `seq` of the `n`-th row after `after` that a device of `replica` is sent from
/// `areas` and the reference data (area NULL), or `i64::MAX` when there are fewer than `n`:
/// the `n` smallest of each area's first `n` rows, each read along the `(area, seq)` index.
fn page_end(
    conn: &Connection,
    areas: &BTreeSet<String>,
    after: u64,
    n: usize,
    replica: Uuid,
) -> Result<i64> {
    let mut seqs: Vec<i64> = Vec::new();
    let replica = replica.as_bytes().as_slice();
    let mut reference = conn.prepare_cached(
        "SELECT seq FROM feed WHERE area IS NULL AND seq > ?1 AND replica != ?2
         ORDER BY seq LIMIT ?3",
    )?;
    for seq in reference.query_map(params![after as i64, replica, n as i64], |r| r.get(0))? {
        seqs.push(seq?);
    }
    let mut by_area = conn.prepare_cached(
        "SELECT seq FROM feed WHERE area = ?1 AND seq > ?2 AND replica != ?3
         ORDER BY seq LIMIT ?4",
    )?;
    for area in areas {
        for seq in
            by_area.query_map(params![area, after as i64, replica, n as i64], |r| r.get(0))?
        {
            seqs.push(seq?);
        }
        // Keep only the n smallest so far.
        if seqs.len() > n {
            seqs.select_nth_unstable(n - 1);
            seqs.truncate(n);
        }
    }
    if seqs.len() < n {
        return Ok(i64::MAX);
    }
    Ok(seqs.into_iter().max().unwrap_or(i64::MAX))
}

impl SqliteBackend {
    /// Open (creating or migrating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend> {
        let p = path.as_ref().to_path_buf();
        Self::from_store(Store::open(path, Options::default())?, Some(p))
    }

    /// A database in memory (tests).
    pub fn open_in_memory() -> Result<SqliteBackend> {
        Self::from_store(Store::open_in_memory(Options::default())?, None)
    }

    fn from_store(store: Store, path: Option<PathBuf>) -> Result<SqliteBackend> {
        migrate(store.connection())?;
        let replica = store.replica_id().0;
        let backend = SqliteBackend {
            store: Mutex::new(store),
            replica,
            path,
            reader: Mutex::new(None),
        };
        // A crash between a console command's write and its feed rows is mended here.
        backend.feed_own_ops(&*backend.lock()?)?;
        Ok(backend)
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
            "SELECT 0, o.replica, o.counter, o.hlc, o.body FROM oplog o
             WHERE o.replica = ?1 AND NOT EXISTS
                 (SELECT 1 FROM feed f WHERE f.replica = o.replica AND f.counter = o.counter)
             ORDER BY o.counter",
            [self.replica.as_bytes().as_slice()],
        )?;
        for (_, op) in &ops {
            let area = scope::op_area(&tx, op)?;
            insert_feed(&tx, op, area.feed_area())?;
        }
        tx.commit()?;
        Ok(ops.len())
    }

    /// Run a core write made by the console, then file its operations and audit it.
    fn local_write<T>(
        &self,
        actor: &str,
        action: &str,
        now_ms: i64,
        write: impl FnOnce(&mut Store) -> Result<(T, String, String)>,
    ) -> Result<T> {
        let mut store = self.lock()?;
        let (out, target, detail) = write(&mut store)?;
        self.feed_own_ops(&store)?;
        audit(store.connection(), now_ms, actor, action, &target, &detail)?;
        Ok(out)
    }

    /// Run `f` on the store (tests and tools that read the server's tables).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Result<T> {
        Ok(f(&mut *self.lock()?))
    }
}

impl Backend for SqliteBackend {
    fn health(&self) -> Result<()> {
        let store = self.lock()?;
        store
            .connection()
            .query_row("SELECT count(*) FROM server_meta", [], |r| {
                r.get::<_, i64>(0)
            })?;
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        let code_hash = auth::hash_secret(&auth::normalize_code(&e.code));
        let row: Option<(String, i64, Option<String>)> = tx
            .query_row(
                "SELECT officer_id, expires_ms, used_by_device FROM enrol_codes WHERE code_hash = ?1",
                [&code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((officer, expires_ms, used)) = row else {
            return Err(ServerError::Unauthorized("unknown enrolment code"));
        };
        if used.is_some() {
            return Err(ServerError::Unauthorized("enrolment code already used"));
        }
        if now_ms >= expires_ms {
            return Err(ServerError::Unauthorized("enrolment code expired"));
        }
        let officer_id = uuid_col(&officer)?;
        let device_id = Uuid::now_v7();
        let token = auth::new_token();
        // A phone re-enrolling after a reset keeps its replica: start from what we hold.
        let acked: i64 = tx
            .query_row(
                "SELECT contiguous FROM replicas WHERE replica = ?1",
                [e.replica.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        tx.execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at,
                                  acked_counter, last_seen_ms, clock_offset_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8)",
            params![
                device_id.to_string(),
                officer,
                e.replica.as_bytes().as_slice(),
                name,
                auth::hash_secret(&token),
                now_ms,
                acked,
                now_ms.saturating_sub(e.device_time_ms),
            ],
        )?;
        tx.execute(
            "UPDATE enrol_codes SET used_by_device = ?2 WHERE code_hash = ?1",
            params![code_hash, device_id.to_string()],
        )?;
        audit(
            &tx,
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
        let store = self.lock()?;
        let row: Option<(String, String, Vec<u8>)> = store
            .connection()
            .prepare_cached(
                "SELECT id, officer_id, replica FROM devices
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([auth::hash_secret(token)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(id, officer, replica)| {
            Ok(DeviceAuth {
                device_id: uuid_col(&id)?,
                officer_id: uuid_col(&officer)?,
                replica: uuid_blob(&replica)?,
            })
        })
        .transpose()
    }

    fn authenticate_user(&self, token: &str) -> Result<Option<UserAuth>> {
        let store = self.lock()?;
        let row: Option<(String, String)> = store
            .connection()
            .prepare_cached("SELECT id, role FROM users WHERE token_hash = ?1")?
            .query_row([auth::hash_secret(token)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, role)| {
            Ok(UserAuth {
                user_id: uuid_col(&id)?,
                role,
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
        let mut store = self.lock()?;
        let officer_scope = scope::officer_scope(store.connection(), device.officer_id)?;
        let own_max = ops
            .iter()
            .filter(|o| o.replica.0 == device.replica)
            .map(|o| o.counter)
            .max()
            .unwrap_or(0);
        let device_id = device.device_id.to_string();
        let rejected: RefCell<Vec<Rejected>> = RefCell::new(Vec::new());
        let areas: RefCell<HashMap<(ReplicaId, u64), Option<String>>> = RefCell::default();
        let (report, acked) = store.apply_checked(
            &ops,
            |conn, op| {
                let area = scope::op_area(conn, op)?;
                if let Some(reason) = scope::refusal(&officer_scope, op, &area, now_ms) {
                    if reason == "clock_ahead" {
                        conn.prepare_cached(
                            "INSERT INTO quarantine (replica, counter, device_id, reason, body, at_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![
                            op.replica.0.as_bytes().as_slice(),
                            op.counter as i64,
                            device_id,
                            reason,
                            op.encode(),
                            now_ms
                        ])?;
                    }
                    rejected.borrow_mut().push(Rejected {
                        replica: op.replica.0,
                        counter: op.counter,
                        reason: reason.to_owned(),
                    });
                    return Ok(doorstep_core::store::Verdict::Reject);
                }
                areas
                    .borrow_mut()
                    .insert((op.replica, op.counter), area.feed_area().map(str::to_owned));
                Ok(doorstep_core::store::Verdict::Accept)
            },
            |conn, applied| {
                let areas = areas.borrow();
                for op in applied {
                    let area = areas.get(&(op.replica, op.counter)).cloned().flatten();
                    insert_feed(conn, op, area.as_deref()).map_err(core_error)?;
                }
                conn.prepare_cached(
                    "UPDATE devices SET acked_counter = max(acked_counter, ?2),
                            last_seen_ms = ?3, clock_offset_ms = ?4
                     WHERE id = ?1",
                )?
                .execute(params![
                    device_id,
                    own_max as i64,
                    now_ms,
                    now_ms.saturating_sub(device_time_ms)
                ])?;
                conn.prepare_cached("SELECT acked_counter FROM devices WHERE id = ?1")?
                    .query_row([&device_id], |r| r.get::<_, i64>(0))
                    .map_err(Into::into)
            },
        )?;
        Ok(PushResponse {
            applied: report.applied as u64,
            duplicates: report.duplicates as u64,
            rejected: rejected.into_inner(),
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
        let store = self.lock()?;
        let conn = store.connection();
        touch(conn, device, device_time_ms, now_ms)?;
        // One read transaction: the page is a consistent snapshot of the feed.
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
        let scope = scope::officer_scope(&tx, device.officer_id)?;
        let mut feed = SqliteFeed {
            conn: &tx,
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        let users: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        if users > 0 {
            return Ok(None);
        }
        let id = Uuid::now_v7();
        let token = auth::new_token();
        tx.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms)
             VALUES (?1, ?2, 'admin', NULL, ?3, ?4)",
            params![id.to_string(), name, auth::hash_secret(&token), now_ms],
        )?;
        audit(
            &tx,
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM officers WHERE id = ?1 AND deleted = 0)",
            [officer_id.to_string()],
            |r| r.get(0),
        )?;
        if !known {
            return Err(ServerError::NotFound("no officer with that id"));
        }
        let code = auth::new_code();
        let expires_ms = now_ms + i64::from(ttl_minutes) * 60_000;
        tx.execute(
            "INSERT INTO enrol_codes (code_hash, officer_id, expires_ms, used_by_device, created_ms)
             VALUES (?1, ?2, ?3, NULL, ?4)",
            params![auth::hash_secret(&code), officer_id.to_string(), expires_ms, now_ms],
        )?;
        audit(
            &tx,
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        let id = device_id.to_string();
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)",
            [&id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(ServerError::NotFound("no device with that id"));
        }
        let n = tx.execute(
            "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now_ms],
        )?;
        audit(
            &tx,
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
        let store = self.lock()?;
        let mut stmt = store.connection().prepare_cached(
            "SELECT id, officer_id, replica, name, enrolled_at, revoked_at, acked_counter,
                    last_seen_ms, clock_offset_ms
             FROM devices ORDER BY enrolled_at, id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(DeviceInfo {
                id: uuid_col(&r.get::<_, String>(0)?)?,
                officer_id: uuid_col(&r.get::<_, String>(1)?)?,
                replica: uuid_blob(&r.get::<_, Vec<u8>>(2)?)?,
                name: r.get(3)?,
                enrolled_at_ms: r.get(4)?,
                revoked_at_ms: r.get(5)?,
                acked_counter: r.get::<_, i64>(6)? as u64,
                last_seen_ms: r.get(7)?,
                clock_offset_ms: r.get(8)?,
            });
        }
        Ok(out)
    }

    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let store = self.lock()?;
        let mut stmt = store.connection().prepare_cached(
            "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit.clamp(1, 10_000)], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn gauges(&self) -> Result<Gauges> {
        let store = self.lock()?;
        let conn = store.connection();
        let count = |sql: &str| {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        let mut g = Gauges {
            devices_active: count("SELECT count(*) FROM devices WHERE revoked_at IS NULL")?,
            devices_revoked: count("SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL")?,
            quarantined: count("SELECT count(*) FROM quarantine")?,
            feed_rows: count("SELECT count(*) FROM feed")?,
            clock_offsets: Vec::new(),
            feed_lock: None,
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, clock_offset_ms FROM devices
             WHERE revoked_at IS NULL AND clock_offset_ms IS NOT NULL ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            g.clock_offsets
                .push((uuid_col(&r.get::<_, String>(0)?)?, r.get(1)?));
        }
        Ok(g)
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

    fn read_view(&self, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()> {
        fn in_read_tx(
            conn: &Connection,
            f: &mut dyn FnMut(&Connection) -> Result<()>,
        ) -> Result<()> {
            conn.execute_batch("BEGIN DEFERRED")?;
            let out = f(conn);
            // A read transaction: ending it cannot lose anything.
            let end = conn.execute_batch("COMMIT");
            out?;
            end?;
            Ok(())
        }
        match &self.path {
            Some(path) => {
                let mut reader = self
                    .reader
                    .lock()
                    .map_err(|_| ServerError::Internal("reader mutex poisoned".into()))?;
                if reader.is_none() {
                    *reader = Some(Store::open_reader(path)?);
                }
                in_read_tx(reader.as_ref().expect("just opened"), f)
            }
            None => {
                let store = self.lock()?;
                in_read_tx(store.connection(), f)
            }
        }
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        let unit_level: Option<Option<String>> = tx
            .query_row(
                "SELECT level FROM units WHERE code = ?1",
                [unit_code.trim()],
                |r| r.get(0),
            )
            .optional()?;
        match unit_level {
            None => return Err(ServerError::NotFound("unit")),
            Some(l) if l.as_deref() != Some(level) => {
                return Err(ServerError::BadRequest(format!(
                    "unit: a {role} user needs a unit of level {level}"
                )))
            }
            Some(_) => {}
        }
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1 AND password_hash IS NOT NULL)",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(ServerError::BadRequest(
                "name: already used by another user; choose another".into(),
            ));
        }
        let id = Uuid::now_v7();
        // The bearer-token column is required: give it a random token nobody learns.
        tx.execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id.to_string(),
                name,
                role,
                unit_code.trim(),
                auth::hash_secret(&auth::new_token()),
                now_ms,
                password_hash
            ],
        )?;
        audit(
            &tx,
            now_ms,
            actor,
            "user_add",
            &id.to_string(),
            &format!("role={role} unit={}", unit_code.trim()),
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn command_user_by_name(&self, name: &str) -> Result<Option<(CommandUser, String)>> {
        let store = self.lock()?;
        let row = store
            .connection()
            .prepare_cached(
                "SELECT id, name, role, unit_code, password_hash FROM users
                  WHERE name = ?1 AND password_hash IS NOT NULL",
            )?
            .query_row([name.trim()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()?;
        row.map(|(id, name, role, unit_code, hash)| {
            Ok((
                CommandUser {
                    user_id: uuid_col(&id)?,
                    name,
                    role,
                    unit_code,
                },
                hash,
            ))
        })
        .transpose()
    }

    fn command_user_by_token(&self, token: &str) -> Result<Option<CommandUser>> {
        let store = self.lock()?;
        let row = store
            .connection()
            .prepare_cached("SELECT id, name, role, unit_code FROM users WHERE token_hash = ?1")?
            .query_row([auth::hash_secret(token)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        row.map(|(id, name, role, unit_code)| {
            Ok(CommandUser {
                user_id: uuid_col(&id)?,
                name,
                role,
                unit_code,
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
        let store = self.lock()?;
        let tx = Transaction::new_unchecked(store.connection(), TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM web_sessions WHERE expires_ms < ?1", [now_ms])?;
        tx.execute(
            "INSERT INTO web_sessions (token_hash, user_id, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                auth::hash_secret(token),
                user_id.to_string(),
                now_ms,
                expires_ms
            ],
        )?;
        let actor = format!("user:{user_id}");
        audit(&tx, now_ms, &actor, "sign_in", &user_id.to_string(), "web")?;
        tx.commit()?;
        Ok(())
    }

    fn session_user(&self, token: &str, now_ms: i64) -> Result<Option<CommandUser>> {
        let store = self.lock()?;
        let row = store
            .connection()
            .prepare_cached(
                "SELECT u.id, u.name, u.role, u.unit_code FROM web_sessions s
                   JOIN users u ON u.id = s.user_id
                  WHERE s.token_hash = ?1 AND s.expires_ms > ?2",
            )?
            .query_row(params![auth::hash_secret(token), now_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        row.map(|(id, name, role, unit_code)| {
            Ok(CommandUser {
                user_id: uuid_col(&id)?,
                name,
                role,
                unit_code,
            })
        })
        .transpose()
    }

    fn end_session(&self, token: &str) -> Result<()> {
        let store = self.lock()?;
        store.connection().execute(
            "DELETE FROM web_sessions WHERE token_hash = ?1",
            [auth::hash_secret(token)],
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
        let mut store = self.lock()?;
        let areas: RefCell<HashMap<(ReplicaId, u64), Option<String>>> = RefCell::default();
        let (report, ()) = store.apply_checked(
            ops,
            |conn, op| {
                let area = scope::op_area(conn, op)?;
                areas.borrow_mut().insert(
                    (op.replica, op.counter),
                    area.feed_area().map(str::to_owned),
                );
                Ok(doorstep_core::store::Verdict::Accept)
            },
            |conn, applied| {
                let areas = areas.borrow();
                for op in applied {
                    let area = areas.get(&(op.replica, op.counter)).cloned().flatten();
                    insert_feed(conn, op, area.as_deref()).map_err(core_error)?;
                }
                Ok(())
            },
        )?;
        audit(
            store.connection(),
            now_ms,
            actor,
            "ops_import",
            "oplog",
            &format!(
                "applied={} duplicates={}",
                report.applied, report.duplicates
            ),
        )?;
        Ok(report.applied as u64)
    }
}

/// Inside the core's closures errors must be core errors.
fn core_error(e: ServerError) -> doorstep_core::Error {
    match e {
        ServerError::Core(e) => e,
        ServerError::Sqlite(e) => doorstep_core::Error::Sqlite(e),
        other => doorstep_core::Error::Decode(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_is_idempotent_and_versioned() {
        let b = SqliteBackend::open_in_memory().unwrap();
        b.with_store(|s| {
            let conn = s.connection();
            migrate(conn).unwrap();
            assert_eq!(server_version(conn).unwrap(), SERVER_SCHEMA_VERSION);
            conn.execute(
                "UPDATE server_meta SET value = 99 WHERE key = 'server_schema_version'",
                [],
            )
            .unwrap();
            assert!(migrate(conn).is_err());
        })
        .unwrap();
    }
}
