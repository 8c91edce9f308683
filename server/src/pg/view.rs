//! Where a PostgreSQL instance keeps its materialised view: a file named by the operator, a
//! cached file per database locked by one process at a time, or a temporary file.

use std::path::{Path, PathBuf};

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
    /// Rebuild a new view from the whole feed even when the database holds a snapshot of one
    /// (`crate::pg::snapshot`); tests compare the two.
    pub no_snapshot: bool,
    /// The key the view file is encrypted with (`--db-key-file`: the view is a full copy of
    /// the data); `None`: not encrypted. A cached view or a snapshot this key does not open is
    /// rebuilt from the feed.
    pub key: Option<doorstep_core::StoreKey>,
}

/// The cached view in `dir` for the database `replica`, locked for this process; `None` when
/// another process holds it.
fn cached_view(
    dir: &Path,
    replica: uuid::Uuid,
) -> std::io::Result<Option<(PathBuf, std::fs::File)>> {
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

/// Where this instance's view is, with what must live as long as it does.
pub(super) struct Place {
    /// The view's file.
    pub(super) path: PathBuf,
    /// The temporary directory holding it, if it is temporary.
    pub(super) tmp: Option<tempfile::TempDir>,
    /// The cached view's lock, if it is the cached one.
    pub(super) lock: Option<std::fs::File>,
}

/// Choose the view's file: the one named, else the cached one if free, else a temporary one.
pub(super) fn place(view: ViewOptions, replica: uuid::Uuid) -> crate::error::Result<Place> {
    let mut lock = None;
    let cached = match (&view.path, &view.cache_dir) {
        (None, Some(dir)) => match cached_view(dir, replica) {
            Ok(Some((path, l))) => {
                lock = Some(l);
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
    match view.path.or(cached) {
        Some(path) => Ok(Place {
            path,
            tmp: None,
            lock,
        }),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("doorstep-view-")
                .tempdir()
                .map_err(|e| crate::error::ServerError::Internal(format!("view directory: {e}")))?;
            Ok(Place {
                path: dir.path().join("view.db"),
                tmp: Some(dir),
                lock,
            })
        }
    }
}

/// Remove a view's file with its `-wal` and `-shm` (to rebuild it).
pub(super) fn remove(path: &Path) -> crate::error::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(crate::error::ServerError::Internal(format!(
                    "removing the view to rebuild it: {}",
                    e.kind()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}
