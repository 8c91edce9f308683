//! `doorstep backup FILE`: a consistent copy of the SQLite database, taken while it serves.
//!
//! SQLite's online backup copies the database page by page in short steps, starting again by
//! itself when a write lands in between, so the copy is one committed state of the database
//! and the server is never held up for long. The copy is written beside the destination and
//! renamed into place only once it is whole and passes SQLite's quick check: a crash or a full
//! disk never leaves a half-written backup under the final name.
//!
//! Restoring is replacing the database file with a backup while the server is stopped (the
//! procedure is in `docs/backup.md`). The server knows it started on another history (every
//! start begins a new generation, [`crate::generation`]); at their next sync the phones send
//! again what the backup lacks and receive what was written since the restore.

use crate::error::{Result, ServerError};
use doorstep_core::StoreKey;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Pages copied per step (4 KiB each: 4 MiB a step).
const PAGES_PER_STEP: i32 = 1024;
/// The pause between steps, for the server's writes.
const PAUSE: Duration = Duration::from_millis(5);

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Database pages copied.
    pub pages: u64,
    /// The copy's size in bytes.
    pub bytes: u64,
}

/// Copy the SQLite database `db` to `out` (which must not exist), reporting `(pages done,
/// pages in all)` after each step. A database encrypted at rest is opened with `key` and its
/// copy is encrypted with the same key (nothing of it is ever written in clear).
pub fn sqlite(
    db: &Path,
    key: Option<&StoreKey>,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport> {
    if !db.is_file() {
        return Err(ServerError::BadRequest(
            "db: no database file there (give the serving database's path with --db)".into(),
        ));
    }
    if out.exists() {
        return Err(ServerError::BadRequest(
            "out: a file is already there; name a new file (a backup never overwrites)".into(),
        ));
    }
    let partial = partial_name(out);
    let _ = std::fs::remove_file(&partial); // a stale one from a crashed backup
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(30))?;
    doorstep_core::key::unlock_connection(&src, key)?;
    let result = copy(&src, key, &partial, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let pages = result?;
    std::fs::rename(&partial, out).map_err(io)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself survives a power cut once the directory is synced.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    let bytes = std::fs::metadata(out).map_err(io)?.len();
    Ok(BackupReport { pages, bytes })
}

fn copy(
    src: &Connection,
    key: Option<&StoreKey>,
    partial: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    let mut dst = Connection::open(partial)?;
    doorstep_core::key::unlock_connection(&dst, key)?;
    {
        let backup = Backup::new(src, &mut dst)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total - (p.remaining.max(0) as u64).min(total), total);
            match step {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(PAUSE)
                }
                _ => std::thread::sleep(PAUSE),
            }
        }
    }
    // A single file: no WAL beside the copy.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(ServerError::Internal(format!(
            "the copy failed SQLite's quick check: {check}"
        )));
    }
    let pages: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    drop(dst);
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    Ok(pages.max(0) as u64)
}

/// An I/O error writing the copy: its kind, never a path.
fn io(e: std::io::Error) -> ServerError {
    ServerError::Internal(format!("writing the backup: {}", e.kind()))
}

/// `<out>.partial`, where the copy is made before it is renamed into place.
fn partial_name(out: &Path) -> std::path::PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_database_in_use_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let live = Connection::open(&db).unwrap();
        live.pragma_update(None, "journal_mode", "WAL").unwrap();
        live.execute_batch(
            "CREATE TABLE t (x INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO t SELECT i FROM n;",
        )
        .unwrap();
        let out = dir.path().join("copy.db");
        let mut steps = 0;
        let report = sqlite(&db, None, &out, &mut |done, total| {
            steps += 1;
            assert!(done <= total);
            // A write while the copy is being made (it starts again by itself).
            if steps == 1 {
                live.execute("INSERT INTO t VALUES (-1)", []).unwrap();
            }
        })
        .unwrap();
        assert!(report.pages > 0 && report.bytes > 0);
        let copy = Connection::open(&out).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert!(n == 20_000 || n == 20_001, "{n}");
        assert!(!partial_name(&out).exists());
        let again = sqlite(&db, None, &out, &mut |_, _| {}).unwrap_err();
        assert!(again.to_string().contains("out:"), "{again}");
        let missing = sqlite(
            &dir.path().join("none.db"),
            None,
            &dir.path().join("x.db"),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(missing.to_string().contains("db:"), "{missing}");
    }

    /// A database encrypted at rest is copied encrypted with the same key: the copy opens
    /// with it, not without it, and holds no value in clear.
    #[test]
    fn an_encrypted_database_is_copied_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let key = StoreKey::new([5; 32]);
        let live = Connection::open(&db).unwrap();
        doorstep_core::key::unlock_connection(&live, Some(&key)).unwrap();
        live.pragma_update(None, "journal_mode", "WAL").unwrap();
        live.execute_batch(
            "CREATE TABLE t (x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO t SELECT 'so-dien-thoai-' || i FROM n;",
        )
        .unwrap();
        let out = dir.path().join("copy.db");
        sqlite(&db, Some(&key), &out, &mut |_, _| {}).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(!bytes.windows(14).any(|w| w == b"so-dien-thoai-"));
        assert!(!bytes.starts_with(b"SQLite format 3"));
        let plain = Connection::open(&out).unwrap();
        assert!(doorstep_core::key::unlock_connection(&plain, None).is_err());
        let copy = Connection::open(&out).unwrap();
        doorstep_core::key::unlock_connection(&copy, Some(&key)).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5000);
        // Without the key the live database cannot be copied at all.
        let e = sqlite(&db, None, &dir.path().join("x.db"), &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("wrong key"), "{e}");
    }
}
