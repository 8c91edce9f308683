//! What a storage backend must implement: the server's tables, one short statement a method,
//! and the few transaction shapes the server's behaviour needs.
//!
//! Built this way so that every rule (limits, code checks, scopes, refusals, quarantine,
//! acknowledgements, audit entries) is written once, in [`crate::backend::Backend`], and a
//! backend ([`crate::sqlite`], [`crate::pg`]) only says how a row is read or written in its
//! dialect and how statements are grouped into transactions. A backend never decides whether
//! an operation, a code, a token or a user is acceptable: it stores and reads
//! (`docs/adr/0007-one-behaviour-thin-backends.md`).
//!
//! Two levels, both object-safe so that the server holds `Arc<Backend<dyn Storage>>`:
//!
//! - [`Tables`]: one method per statement on the server's own tables (devices, codes, users,
//!   sessions, audit, feed, quarantine). A handle is either autocommit ([`Storage::tables`])
//!   or one transaction ([`Storage::write`]).
//! - [`Storage`]: the handles, the core store's materialised tables ([`Storage::view`]), and
//!   the two writes whose mechanics truly differ between backends — a checked batch
//!   ([`Storage::apply`]: SQLite's single file applies it in one transaction with its feed
//!   rows; PostgreSQL dry-runs it on the instance's view under the feed lock, files it, then
//!   catches the view up) and a console write ([`Storage::console_write`]).

use crate::cursor::FeedSnapshot;
use crate::error::{Result, ServerError};
use crate::model::{AuditEntry, Author, CommandUser, DeviceAuth, DeviceInfo};
use crate::scope::Moves;
use doorstep_core::store::Verdict;
use doorstep_core::{Op, Store};
use rusqlite::Connection;
use uuid::Uuid;

/// A device row to insert at enrolment.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    /// The device's id.
    pub id: &'a str,
    /// Its officer's id.
    pub officer_id: &'a str,
    /// Its replica.
    pub replica: Uuid,
    /// Its label.
    pub name: &'a str,
    /// Its token, hashed.
    pub token_hash: &'a str,
    /// Enrolled at (also its first request), Unix ms.
    pub now_ms: i64,
    /// Where its acknowledgement starts.
    pub acked_counter: i64,
    /// `server_time - device_time` at enrolment.
    pub clock_offset_ms: i64,
}

/// A command user row to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// The user's id.
    pub id: &'a str,
    /// Sign-in name.
    pub name: &'a str,
    /// Role.
    pub role: &'a str,
    /// Unit code (`None` for an admin).
    pub unit_code: Option<&'a str>,
    /// The bearer token, hashed.
    pub token_hash: &'a str,
    /// Created at, Unix ms.
    pub now_ms: i64,
    /// argon2 PHC string (`None` for an admin, who signs in with a token).
    pub password_hash: Option<&'a str>,
}

/// A row to file in the feed: the operation, the area it is filed under (`None`: reference
/// data every device receives) and, for a move ([`crate::scope::Area::Village`]'s `from`),
/// the village the household or resident leaves.
#[derive(Debug, Clone, Copy)]
pub struct FeedRow<'a> {
    /// The operation.
    pub op: &'a Op,
    /// Its area.
    pub area: Option<&'a str>,
    /// The village it moves a household or resident out of, if it does.
    pub from: Option<&'a str>,
}

impl FeedRow<'_> {
    /// The id of the household or resident moved, for a move (the feed's `moved` column).
    pub fn moved(&self) -> Option<String> {
        self.from.and_then(|_| crate::scope::moved_id(self.op))
    }
}

/// An enrolment code as stored: `(officer id, expires ms, device that used it)`.
pub type CodeRow = (String, i64, Option<String>);

/// A device row's columns as both dialects read them into a [`DeviceInfo`], in its fields'
/// order.
pub const DEVICE_COLUMNS: &str = "id, officer_id, replica, name, enrolled_at, revoked_at, \
     acked_counter, last_seen_ms, clock_offset_ms";

/// What `/metrics` counts (the SQL is the same in both dialects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Devices enrolled and not revoked.
    DevicesActive,
    /// Devices revoked.
    DevicesRevoked,
    /// Operations in quarantine.
    Quarantined,
    /// Feed rows.
    FeedRows,
}

impl Counted {
    /// The counting statement.
    pub fn sql(self) -> &'static str {
        match self {
            Counted::DevicesActive => "SELECT count(*) FROM devices WHERE revoked_at IS NULL",
            Counted::DevicesRevoked => "SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL",
            Counted::Quarantined => "SELECT count(*) FROM quarantine",
            Counted::FeedRows => "SELECT count(*) FROM feed",
        }
    }
}

/// The server's own tables, one statement a method. Ids are text columns, replicas bytes.
pub trait Tables {
    /// Whether the database answers.
    fn health(&mut self) -> Result<()>;

    /// Insert a newly enrolled device; `false` (nothing inserted) if another device not
    /// revoked holds its replica (the unique index `devices_active_replica`).
    fn insert_device(&mut self, d: &NewDevice<'_>) -> Result<bool>;
    /// The unrevoked device holding the token hash.
    fn device_by_token(&mut self, token_hash: &str) -> Result<Option<DeviceAuth>>;
    /// Whether the device exists (PostgreSQL locks its row until the transaction ends).
    fn lock_device(&mut self, id: &str) -> Result<bool>;
    /// The device with this id, revoked or not.
    fn device(&mut self, id: &str) -> Result<Option<DeviceInfo>>;
    /// Give a device a new token (the old one stops working) and record its clock offset;
    /// its last request is left as it was.
    fn replace_token(&mut self, id: &str, token_hash: &str, clock_offset_ms: i64) -> Result<()>;
    /// The id of a device not revoked that holds this replica, if one does.
    fn active_device_of_replica(&mut self, replica: Uuid) -> Result<Option<String>>;
    /// Mark the device revoked; `false` if it already was.
    fn revoke_device(&mut self, id: &str, now_ms: i64) -> Result<bool>;
    /// Hold off every write of the feed (a push, a relay) until this transaction ends
    /// (PostgreSQL: the feed lock; SQLite: one writer already). Taken before any row lock.
    fn hold_feed(&mut self) -> Result<()>;
    /// The newest stamp (physical ms) of the operations the server holds of the device's
    /// replica, if it holds any.
    fn newest_stamp_of_device(&mut self, id: &str) -> Result<Option<i64>>;
    /// Every device, in enrolment order.
    fn devices(&mut self) -> Result<Vec<DeviceInfo>>;
    /// Record a device's last request and clock offset; returns its acknowledgement (the
    /// highest counter of its replica processed, as this database holds it).
    fn touch_device(&mut self, id: &str, now_ms: i64, clock_offset_ms: i64) -> Result<u64>;
    /// The revoked device holding the token hash, and when it was revoked.
    fn revoked_device_by_token(&mut self, token_hash: &str) -> Result<Option<(DeviceAuth, i64)>>;
    /// Set a device's public key.
    fn set_public_key(&mut self, id: &str, key: &[u8]) -> Result<()>;
    /// The device that holds (or last held) `replica`: the one not revoked, else the latest.
    fn author_of_replica(&mut self, replica: Uuid) -> Result<Option<Author>>;
    /// Raise a device's acknowledgement to `counter` (never lowers it) without recording a
    /// request of it (its operations arrived through another device).
    fn raise_ack(&mut self, id: &str, counter: i64) -> Result<()>;
    /// Raise a device's acknowledgement through the operations of its `replica` this server
    /// holds without a gap after it (they arrived in runs relayed by other devices).
    fn raise_ack_held(&mut self, id: &str, replica: Uuid) -> Result<()>;
    /// A value of `server_meta`.
    fn meta(&mut self, key: &str) -> Result<Option<String>>;
    /// Set a value of `server_meta`.
    fn set_meta(&mut self, key: &str, value: &str) -> Result<()>;
    /// Set a value of `server_meta` unless it has one (the first of two racing writers wins).
    fn init_meta(&mut self, key: &str, value: &str) -> Result<()>;
    /// The feed's last `seq` (0 when empty).
    fn feed_end(&mut self) -> Result<u64>;
    /// Raise a device's acknowledgement to `counter` (never lowers it), record its request;
    /// returns the acknowledgement.
    fn ack_device(
        &mut self,
        id: &str,
        counter: i64,
        now_ms: i64,
        clock_offset_ms: i64,
    ) -> Result<i64>;
    /// `(id, clock offset)` of the active devices that have one, by id.
    fn clock_offsets(&mut self) -> Result<Vec<(Uuid, i64)>>;
    /// A count for `/metrics`.
    fn count(&mut self, what: Counted) -> Result<u64>;

    /// The enrolment code with this hash (PostgreSQL locks it until the transaction ends).
    fn enrol_code(&mut self, code_hash: &str) -> Result<Option<CodeRow>>;
    /// Store a new enrolment code.
    fn insert_code(
        &mut self,
        code_hash: &str,
        officer_id: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<()>;
    /// Mark a code used by a device.
    fn use_code(&mut self, code_hash: &str, device_id: &str) -> Result<()>;

    /// Whether the first admin was made already. The two backends count differently, as they
    /// always have: SQLite any user, PostgreSQL any admin, under a lock of its own so that
    /// instances starting together make one.
    fn admin_exists(&mut self) -> Result<bool>;
    /// Insert a user (an admin, or a command user with a password).
    fn insert_user(&mut self, u: &NewUser<'_>) -> Result<()>;
    /// Whether a user who signs in already has this name.
    fn signin_name_taken(&mut self, name: &str) -> Result<bool>;
    /// The user holding this bearer-token hash.
    fn user_by_token(&mut self, token_hash: &str) -> Result<Option<CommandUser>>;
    /// The user who signs in as `name`, with their password hash.
    fn user_by_name(&mut self, name: &str) -> Result<Option<(CommandUser, String)>>;

    /// A user's TOTP secret (base32), if they have a second factor.
    fn user_totp(&mut self, user_id: &str) -> Result<Option<String>>;
    /// Set (or, with `None`, remove) a user's TOTP secret, forgetting the last step used.
    fn set_totp(&mut self, user_id: &str, secret: Option<&str>) -> Result<()>;
    /// Record that the code of `step` was used, in one statement; `false` (nothing changed)
    /// if the user has no second factor or a code of this step or a later one was used already.
    fn use_totp_step(&mut self, user_id: &str, step: i64) -> Result<bool>;

    /// Delete the sessions expired before `now_ms`.
    fn delete_expired_sessions(&mut self, now_ms: i64) -> Result<()>;
    /// Store a web session.
    fn insert_session(
        &mut self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()>;
    /// The user of an unexpired session.
    fn session_user(&mut self, token_hash: &str, now_ms: i64) -> Result<Option<CommandUser>>;
    /// Delete a session.
    fn delete_session(&mut self, token_hash: &str) -> Result<()>;

    /// Append an audit entry.
    fn audit(
        &mut self,
        now_ms: i64,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()>;
    /// The newest `limit` audit entries, newest first.
    fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>>;

    /// File operations in the feed with their areas (and, for moves, the village left), in
    /// this order (a row already there is left alone).
    fn file(&mut self, rows: &[FeedRow<'_>]) -> Result<()>;
    /// Keep an operation refused for `clock_ahead` for an admin to look at.
    fn quarantine(&mut self, op: &Op, device_id: &str, now_ms: i64) -> Result<()>;
}

/// A check of each operation of a batch, given the core store's tables as the batch so far
/// left them and the moves the feed holds.
pub type Check<'a> = dyn FnMut(&Connection, &mut dyn Moves, &Op) -> Result<Verdict> + 'a;
/// What a batch does in the server's tables once applied, with the operations applied (new to
/// the server and accepted), in the same transaction as the feed's.
pub type Finish<'a> = dyn FnMut(&mut dyn Tables, &[&Op]) -> Result<()> + 'a;

/// One batch of a group ([`Storage::apply_group`]): what [`Storage::apply`] takes.
pub struct GroupBatch<'a> {
    /// The operations.
    pub ops: &'a [Op],
    /// The check of each operation new to the server.
    pub check: &'a mut Check<'a>,
    /// What the batch writes in the server's tables once applied.
    pub finish: &'a mut Finish<'a>,
}

/// A storage backend: the server's tables, the core store holding the operation log's
/// materialised tables, and how they are written together.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The server's replica id.
    fn replica(&self) -> Uuid;
    /// Run `f` with the tables, each statement committing on its own.
    fn tables(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()>;
    /// Run `f`, which only reads, with the committed tables without waiting for a write in
    /// progress: a request's token check, so that pushes queue for a shared commit while
    /// another group is being applied. SQLite answers on a connection of its own.
    fn lookup(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()> {
        self.tables(f)
    }
    /// Run `f` with the tables inside one transaction: committed if `f` succeeds, rolled back
    /// otherwise.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tables) -> Result<()>) -> Result<()>;
    /// Run `f` on the core store's materialised tables, up to date (a short read).
    fn view(&self, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()>;
    /// Run `f` read-only in one read transaction on a connection of its own, so that a long
    /// read (a statistics snapshot) holds up no writer.
    fn read_view(&self, f: &mut dyn FnMut(&Connection) -> Result<()>) -> Result<()>;
    /// Apply a batch: each operation new to the server is shown to `check` (in batch order,
    /// seeing the earlier ones applied), the accepted ones are merged, and `finish` runs on
    /// the tables in the transaction that commits them. Nothing is kept if either fails.
    fn apply(&self, ops: &[Op], check: &mut Check<'_>, finish: &mut Finish<'_>) -> Result<()>;
    /// Apply batches in this order, each exactly as [`Storage::apply`] would after the ones
    /// before it, each kept or refused on its own (its entry is its error). A storage that
    /// [`Storage::groups_commits`] applies them in one transaction, each batch in a savepoint
    /// of its own, and returns once that one commit is durable; the outer error: nothing was
    /// kept. By default, one [`Storage::apply`] after another.
    fn apply_group(&self, batches: &mut [GroupBatch<'_>]) -> Result<Vec<Result<()>>> {
        Ok(batches
            .iter_mut()
            .map(|b| self.apply(b.ops, b.check, b.finish))
            .collect())
    }
    /// Whether [`Storage::apply_group`] commits a group in one transaction, so that pushes
    /// waiting for the store are worth applying together (SQLite: one writer, one sync of
    /// the log per commit).
    fn groups_commits(&self) -> bool {
        false
    }
    /// Run a console write with the core API on the server's own store, file the operations
    /// it made in the feed, and run `finish` (the audit entry) with the feed's transaction.
    fn console_write(
        &self,
        write: &mut dyn FnMut(&mut Store) -> Result<()>,
        finish: &mut dyn FnMut(&mut dyn Tables) -> Result<()>,
    ) -> Result<()>;
    /// Run `f` on one consistent snapshot of the feed leaving out `replica`'s rows.
    fn feed(
        &self,
        replica: Uuid,
        f: &mut dyn FnMut(&mut dyn FeedSnapshot) -> Result<()>,
    ) -> Result<()>;
    /// `(times taken, nanoseconds waited)` for a lock between instances, if there is one.
    fn feed_lock(&self) -> Option<(u64, u64)>;
    /// What the core store applied lately, recorded right behind each commit, for the
    /// statistics to follow incrementally ([`crate::journal`]); `None`: the statistics rebuild
    /// from the whole store when it changed.
    fn journal(&self) -> Option<&crate::journal::Journal> {
        None
    }
    /// Store a snapshot of this instance's view for new instances to start from
    /// (PostgreSQL; `crate::pg::snapshot`): always (`force`), or when the feed has moved far
    /// past the latest one. A line saying what was done; `BadRequest` where there is no view
    /// to share (SQLite: the database is the store).
    fn publish_view(&self, force: bool) -> Result<String> {
        let _ = force;
        Err(crate::error::ServerError::BadRequest(
            "view: only a PostgreSQL instance has a view to publish".into(),
        ))
    }
}

/// A one-shot closure run through one of [`Storage`]'s `&mut dyn FnMut` callbacks (they are
/// `FnMut` to stay object-safe), keeping its result. A storage that called back twice gets an
/// internal error, never a panic.
pub(crate) struct Once<F, T> {
    f: Option<F>,
    out: Option<T>,
}

impl<F, T> Once<F, T> {
    pub(crate) fn new(f: F) -> Once<F, T> {
        Once {
            f: Some(f),
            out: None,
        }
    }

    /// Run the closure on `arg`, once.
    pub(crate) fn call<A>(&mut self, arg: A) -> Result<()>
    where
        F: FnOnce(A) -> Result<T>,
    {
        let f = self
            .f
            .take()
            .ok_or_else(|| ServerError::Internal("storage callback run twice".into()))?;
        self.out = Some(f(arg)?);
        Ok(())
    }

    /// What the closure returned; an internal error naming `what` if it never ran.
    pub(crate) fn result(self, what: &str) -> Result<T> {
        self.out
            .ok_or_else(|| ServerError::Internal(format!("{what}: not run")))
    }

    /// What the closure returned, if it ran.
    pub(crate) fn output(&self) -> Option<&T> {
        self.out.as_ref()
    }
}

/// An id column.
pub(crate) fn uuid_col(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| ServerError::Internal("malformed id in the database".into()))
}

/// A replica column.
pub(crate) fn uuid_blob(b: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(b)
        .map_err(|_| ServerError::Internal("malformed replica in the database".into()))
}

/// An error inside the core's closures (a batch check, the writes in its transaction) must be
/// a core error.
pub(crate) fn core_error(e: ServerError) -> doorstep_core::Error {
    match e {
        ServerError::Core(e) => e,
        ServerError::Sqlite(e) => doorstep_core::Error::Sqlite(e),
        other => doorstep_core::Error::Decode(other.to_string()),
    }
}

/// The `server_meta` key of the lineage.
const LINEAGE_KEY: &str = "lineage";

/// This database's lineage of generations ([`crate::generation`]; empty before the first
/// start with generations).
pub fn lineage(t: &mut dyn Tables) -> Result<crate::generation::Lineage> {
    crate::generation::Lineage::parse(&t.meta(LINEAGE_KEY)?.unwrap_or_default())
}

/// The server's signing key (Ed25519), made on first use and kept in `server_meta`: it
/// certifies devices' keys at enrolment.
pub fn server_signing_key(t: &mut dyn Tables) -> Result<ed25519_dalek::SigningKey> {
    const KEY: &str = "signing_key";
    if let Some(hex) = t.meta(KEY)? {
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        return bytes
            .as_deref()
            .and_then(doorstep_core::sign::key_from_bytes)
            .ok_or_else(|| ServerError::Internal("server_meta.signing_key: not a key".into()));
    }
    let key = doorstep_core::sign::new_key();
    let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    // Two instances starting at once: the first key written is everyone's.
    t.init_meta(KEY, &hex)?;
    server_signing_key(t)
}

/// Begin a new generation at the feed's end (every start of the server does).
pub fn begin_generation(t: &mut dyn Tables) -> Result<crate::generation::Generation> {
    let mut lineage = lineage(t)?;
    let end = t.feed_end()?;
    let g = lineage.begin(rand::random::<u64>(), end);
    t.set_meta(LINEAGE_KEY, &lineage.to_text())?;
    tracing::info!(generation = %format!("{:x}", g.id), base = g.base, "generation begun");
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_run_twice_is_an_error_not_a_panic() {
        let mut once = Once::new(|x: i32| Ok(x + 1));
        assert!(once.output().is_none());
        once.call(1).unwrap();
        assert!(matches!(once.call(2), Err(ServerError::Internal(_))));
        assert_eq!(once.output(), Some(&2));
        assert_eq!(once.result("x").unwrap(), 2);
        let never: Once<fn(i32) -> Result<i32>, i32> = Once::new(Ok);
        assert!(matches!(never.result("x"), Err(ServerError::Internal(m)) if m == "x: not run"));
    }
}
