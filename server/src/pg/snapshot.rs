//! A new instance's view seeded from a snapshot kept in PostgreSQL (#15: "PostgreSQL instances
//! that start in seconds").
//!
//! Every instance keeps its materialised view (a core SQLite store) beside it. One without a
//! view of its own (a new machine, a lost cache) used to rebuild it from the whole feed: two
//! minutes at Ninh Thuận's 2.8 million operations, an hour for a big city. Now an instance
//! publishes its view into PostgreSQL ([`publish`]: `VACUUM INTO` a copy from a read
//! connection, so writes go on; zstd-compressed; 8 MiB rows in `view_snapshot_chunks`; one
//! publisher at a time; only the latest kept) — `serve`'s maintenance does it when the feed has
//! moved [`REPUBLISH_AFTER_OPS`] past the latest snapshot, `doorstep view publish` on demand.
//! A new instance downloads the latest ([`fetch`]) and catches up from the feed position the
//! copy had read, as any restart does. The copy carries the database's generations, so a
//! snapshot of a history the database no longer has (restored from a backup since) is thrown
//! away and the view rebuilt, as for a cached view (`view_diverged`). It gets a replica id of
//! its own: two instances never issue console operations under one replica.

use crate::error::{Result, ServerError};
use doorstep_core::StoreKey;
use postgres::fallible_iterator::FallibleIterator;
use postgres::GenericClient;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::io::Write;
use std::path::Path;

/// The size of one stored row of a compressed snapshot.
const CHUNK: usize = 8 << 20;

/// `serve` publishes a new snapshot once the feed has this many rows past the latest one.
pub const REPUBLISH_AFTER_OPS: i64 = 200_000;

/// The advisory lock that keeps publishers one at a time (a transaction lock, released at its
/// end).
const PUBLISH_LOCK: i64 = 0x0D00_5E5E;

/// What [`publish`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The feed position the view had read.
    pub seq: i64,
    /// The view file's size.
    pub bytes: u64,
    /// Compressed, as stored.
    pub packed: u64,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::Internal(format!("{what}: {}", e.kind()))
}

/// Rows of compressed bytes written into `view_snapshot_chunks` as they come.
struct Chunks<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    id: i64,
    n: i32,
    buf: Vec<u8>,
    packed: u64,
}

impl Chunks<'_, '_> {
    fn store(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tx
            .execute(
                "INSERT INTO view_snapshot_chunks (snapshot, n, data) VALUES ($1, $2, $3)",
                &[&self.id, &self.n, &self.buf],
            )
            .map_err(std::io::Error::other)?;
        self.packed += self.buf.len() as u64;
        self.n += 1;
        self.buf.clear();
        Ok(())
    }
}

impl Write for Chunks<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.store()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The feed position a view file has read (its `peer` cursor), 0 if none.
fn view_seq(conn: &Connection, peer: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT cursor FROM sync_cursors WHERE peer = ?1",
            [peer],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// A connection to the SQLite file at `path`, keyed with `key` (checked by a first read).
fn keyed(path: &Path, key: Option<&StoreKey>) -> Result<Connection> {
    let conn = Connection::open(path)?;
    doorstep_core::key::unlock_connection(&conn, key)?;
    Ok(conn)
}

/// The feed position of the latest snapshot, if any.
pub fn latest_seq(c: &mut impl GenericClient) -> Result<Option<i64>> {
    Ok(c.query_opt(
        "SELECT seq FROM view_snapshots ORDER BY id DESC LIMIT 1",
        &[],
    )?
    .map(|r| r.get(0)))
}

/// Store a copy of the view at `view_path` (whose feed cursor is `peer`) as the database's
/// latest snapshot. `None` when another instance is publishing one at this moment.
pub fn publish(
    view_path: &Path,
    peer: &str,
    key: Option<&StoreKey>,
    c: &mut postgres::Client,
) -> Result<Option<Published>> {
    let dir = tempfile::Builder::new()
        .prefix("doorstep-view-snapshot-")
        .tempdir()
        .map_err(io("a folder for the view's copy"))?;
    let copy = dir.path().join("view.db");
    {
        // A read transaction of its own: the instance keeps writing while it copies.
        let src = Connection::open_with_flags(
            view_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        src.busy_timeout(std::time::Duration::from_secs(10))?;
        // A keyed view's copy is encrypted with the same key (`VACUUM INTO` keeps the
        // source's cipher): the snapshot in the database is as unreadable as the file.
        doorstep_core::key::unlock_connection(&src, key)?;
        let target = copy
            .to_str()
            .ok_or_else(|| ServerError::Internal("a temporary path that is not UTF-8".into()))?;
        src.execute("VACUUM INTO ?1", [target])?;
    }
    let seq = view_seq(&keyed(&copy, key)?, peer)?;
    let bytes = std::fs::metadata(&copy)
        .map_err(io("the view's copy"))?
        .len();
    let mut tx = c.transaction()?;
    let free: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PUBLISH_LOCK])?
        .get(0);
    if !free {
        return Ok(None);
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO view_snapshots (seq, made_ms, bytes, packed) VALUES ($1, $2, $3, 0)
             RETURNING id",
            &[&seq, &crate::now_ms(), &(bytes as i64)],
        )?
        .get(0);
    let mut chunks = Chunks {
        tx: &mut tx,
        id,
        n: 0,
        buf: Vec::with_capacity(CHUNK + (1 << 20)),
        packed: 0,
    };
    {
        let mut file = std::fs::File::open(&copy).map_err(io("the view's copy"))?;
        let mut enc = zstd::stream::write::Encoder::new(&mut chunks, 3)
            .map_err(io("compressing the view"))?;
        std::io::copy(&mut file, &mut enc).map_err(io("compressing the view"))?;
        enc.finish().map_err(io("compressing the view"))?;
    }
    chunks.store().map_err(io("storing the view"))?;
    let packed = chunks.packed;
    tx.execute(
        "UPDATE view_snapshots SET packed = $2 WHERE id = $1",
        &[&id, &(packed as i64)],
    )?;
    tx.execute("DELETE FROM view_snapshots WHERE id < $1", &[&id])?;
    tx.commit()?;
    Ok(Some(Published { seq, bytes, packed }))
}

/// Write the latest snapshot to `path` (which must not exist), with an identity of its own;
/// its feed position, or `None` when the database has none.
pub fn fetch(c: &mut postgres::Client, path: &Path, key: Option<&StoreKey>) -> Result<Option<i64>> {
    // One snapshot of the database: a publish that replaces it meanwhile does not cut it.
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let Some(row) = tx.query_opt(
        "SELECT id, seq, bytes FROM view_snapshots ORDER BY id DESC LIMIT 1",
        &[],
    )?
    else {
        return Ok(None);
    };
    let (id, seq, bytes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let mut part = path.as_os_str().to_owned();
    part.push(".seeding");
    let part = std::path::PathBuf::from(part);
    {
        let file = std::fs::File::create(&part).map_err(io("the view's file"))?;
        let mut dec =
            zstd::stream::write::Decoder::new(std::io::BufWriter::with_capacity(1 << 20, file))
                .map_err(io("decompressing the view"))?;
        let mut rows = tx.query_raw(
            "SELECT data FROM view_snapshot_chunks WHERE snapshot = $1 ORDER BY n",
            [&id],
        )?;
        while let Some(row) = rows.next()? {
            let data: &[u8] = row.get(0);
            dec.write_all(data).map_err(io("decompressing the view"))?;
        }
        dec.flush().map_err(io("decompressing the view"))?;
        let file = dec
            .into_inner()
            .into_inner()
            .map_err(|e| io("writing the view")(e.into_error()))?;
        file.sync_all().map_err(io("writing the view"))?;
    }
    tx.commit()?;
    let got = std::fs::metadata(&part)
        .map_err(io("the view's file"))?
        .len();
    if got != bytes as u64 {
        let _ = std::fs::remove_file(&part);
        return Err(ServerError::Internal(format!(
            "the view's snapshot is {got} bytes, {bytes} expected"
        )));
    }
    if let Err(e) = reidentify(&part, key) {
        // Another key's snapshot (or an unkeyed one for a keyed instance): not this view's.
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, path).map_err(io("placing the view"))?;
    Ok(Some(seq))
}

/// Give a copied view an identity of its own: the copier's console operations stay in its log
/// as another replica's (their contiguous counter recorded), and the next open makes a new id.
fn reidentify(path: &Path, key: Option<&StoreKey>) -> Result<()> {
    let mut conn = keyed(path, key)?;
    let tx = conn.transaction()?;
    let old: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE key = 'replica_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(old) = old {
        // As any other replica's: the counter up to which the log holds all of its operations
        // (its own view counted the counters it reserved past a restore, which are not there).
        let mut contiguous = 0i64;
        {
            let mut stmt =
                tx.prepare("SELECT counter FROM oplog WHERE replica = ?1 ORDER BY counter")?;
            let mut rows = stmt.query([&old])?;
            while let Some(r) = rows.next()? {
                if r.get::<_, i64>(0)? != contiguous + 1 {
                    break;
                }
                contiguous += 1;
            }
        }
        tx.execute(
            "INSERT INTO replicas (replica, contiguous) VALUES (?1, ?2)
             ON CONFLICT (replica) DO UPDATE SET contiguous = excluded.contiguous",
            rusqlite::params![old, contiguous],
        )?;
        tx.execute("DELETE FROM meta WHERE key = 'replica_id'", [])?;
    }
    tx.commit()?;
    Ok(())
}
