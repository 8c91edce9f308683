//! Encryption at rest: the store's key and how a connection is opened with it.
//!
//! The store is built on SQLite3 Multiple Ciphers with SQLCipher version 4's scheme (ADR 0008,
//! the `doorstep-sqlite` crate): every page of the database file, of its write-ahead log and of
//! any rollback journal is encrypted (AEGIS-256, one tag per page; stores written before it keep
//! SQLCipher 4's AES-256-CBC and HMAC-SHA512 until their key changes).
//! A [`StoreKey`] is 32 raw bytes used directly as the cipher key (no password derivation:
//! the key comes from the platform's key store, Android Keystore or the iOS Keychain, and is
//! never written beside the file). `PRAGMA key` is the first statement on every connection the
//! store opens; a wrong key is [`Error::WrongKey`].

use crate::{Error, Result};
use rusqlite::{Connection, ErrorCode};
use std::fmt;

/// The 32-byte raw key of an encrypted store. Its `Debug` never shows the bytes, and the bytes
/// are overwritten with zeros when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// The key length in bytes.
    pub const LEN: usize = 32;

    /// A key from exactly 32 bytes ([`Error::Invalid`] on `key` otherwise).
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        let raw: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::invalid("key", "32 bytes"))?;
        Ok(StoreKey(raw))
    }

    /// A key from 32 bytes.
    pub fn new(raw: [u8; 32]) -> StoreKey {
        StoreKey(raw)
    }

    /// The raw bytes (to wrap them with a platform key, say).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `x'<64 hex digits>'`: SQLCipher's spelling of a raw key (SQLite3MC reads it the same way
    /// and skips the password derivation).
    fn sql_literal(&self) -> Secret {
        use std::fmt::Write;
        let mut s = String::with_capacity(67);
        s.push_str("x'");
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\'');
        Secret(s)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// A string holding key material, wiped when dropped.
struct Secret(String);

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, and the string is not used afterwards.
        wipe(unsafe { self.0.as_bytes_mut() });
    }
}

fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // Volatile so that the compiler does not drop the writes to memory about to be freed.
        // SAFETY: `b` is a valid, aligned, exclusive reference.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Finish SQLite's process-wide set-up before the first connection opens, and check that the
/// SQLite linked in is SQLite3 Multiple Ciphers (`doorstep-sqlite`), not a plain SQLite that
/// would ignore `PRAGMA key` and write residents' data in clear.
///
/// Cipher libraries complete their own set-up after SQLite has marked itself initialised and
/// released its lock, so a thread opening its first connection while another thread is still
/// in that set-up could get a failing `PRAGMA key` (tests/first_open.rs). Every connection the
/// store opens comes through here; `OnceLock` holds the other threads until the first has
/// finished.
pub(crate) fn sqlite_ready() -> Result<()> {
    static INIT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let ready = INIT.get_or_init(|| {
        // SAFETY: `sqlite3_initialize` takes no arguments and may be called at any time.
        let rc = unsafe { rusqlite::ffi::sqlite3_initialize() };
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(format!("initialising SQLite failed (code {rc})"));
        }
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.query_row(doorstep_sqlite::VERSION_QUERY, [], |r| {
            r.get::<_, String>(0)
        })
        .map(|_| ())
        .map_err(|_| "the SQLite linked in is not SQLite3 Multiple Ciphers".to_owned())
    });
    ready.clone().map_err(|why| {
        Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(why),
        ))
    })
}

/// Prepare a connection opened outside the store (a backup's source or copy, a tool) as the
/// store opens its own: SQLite's set-up, then `key` or none, then a first read that checks it
/// ([`Error::WrongKey`] if the key does not open the file).
pub fn unlock_connection(conn: &Connection, key: Option<&StoreKey>) -> Result<()> {
    sqlite_ready()?;
    unlock(conn, key)
}

/// The cipher of every store written from now on: AEGIS-256, an authenticated cipher built
/// on the AES round (the CPU's AES instructions where it has them, ARMv8's or AES-NI), one tag
/// per page, no HMAC (ADR 0008, "Revisited again": applying a sync's pages costs a few percent
/// more than unencrypted instead of two thirds more with SQLCipher's HMAC-SHA512).
const CIPHER: &str = "PRAGMA cipher = 'aegis';";

/// The cipher stores written before AEGIS have: SQLCipher 4's scheme (AES-256-CBC and
/// HMAC-SHA512, `legacy = 4`, the format SQLCipher itself writes). They open unchanged and
/// keep it until their key is changed ([`rekey`] writes every page in AEGIS).
const OLD_CIPHER: &str = "PRAGMA cipher = 'sqlcipher';";

/// Apply `key` (or none) to a freshly opened connection and check that the file can be read
/// with it: a file encrypted with another key, or encrypted and opened without a key, is
/// [`Error::WrongKey`]. A store in AEGIS (or a new one) is tried first, then one in SQLCipher
/// 4's scheme.
pub(crate) fn unlock(conn: &Connection, key: Option<&StoreKey>) -> Result<()> {
    if let Some(key) = key {
        apply_key(conn, CIPHER, key)?;
        match first_read(conn) {
            Ok(()) => return Ok(()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {}
            Err(e) => return Err(Error::Sqlite(e)),
        }
        apply_key(conn, OLD_CIPHER, key)?;
    }
    first_read(conn).map_err(wrong_key)
}

/// Select `cipher` and give the connection `key`.
fn apply_key(conn: &Connection, cipher: &str, key: &StoreKey) -> Result<()> {
    let lit = key.sql_literal();
    let sql = Secret(format!("{cipher} PRAGMA key = \"{}\";", lit.0));
    conn.execute_batch(&sql.0)?;
    Ok(())
}

/// The first read of the file: the first page's authentication tag (or HMAC) is checked here.
fn first_read(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|_| ())
}

/// Change the key of the store open on `conn`: every page is rewritten, in AEGIS whatever the
/// store's cipher was.
pub(crate) fn rekey(conn: &Connection, key: &StoreKey) -> Result<()> {
    let lit = key.sql_literal();
    let sql = Secret(format!("{CIPHER} PRAGMA rekey = \"{}\";", lit.0));
    conn.execute_batch(&sql.0)?;
    Ok(())
}

/// `SQLITE_NOTADB` on the first read means the key does not decrypt the file.
pub(crate) fn wrong_key(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::WrongKey { field: "key" },
        _ => Error::Sqlite(e),
    }
}

/// Encrypt the unencrypted database file at `path` with `key`, in place: SQLite3MC's
/// `PRAGMA rekey` on a plain file rewrites every page encrypted (through a `VACUUM`, which also
/// makes room for each page's IV and HMAC; the schema version is kept). Run on a copy of the
/// store (rollback journal, not WAL, so that nothing is left beside it once it is closed).
pub(crate) fn encrypt_plain_file(path: &std::path::Path, key: &StoreKey) -> Result<()> {
    let conn = Connection::open(path)?;
    unlock(&conn, None)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the copy being encrypted stays in WAL mode".into()),
        )));
    }
    rekey(&conn, key)?;
    conn.close().map_err(|(_, e)| Error::Sqlite(e))?;
    Ok(())
}

/// Whether the file at `path` is a plain (unencrypted) SQLite database: its first 16 bytes
/// are SQLite's header string. An encrypted file starts with a random salt.
pub(crate) fn is_plain_sqlite(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == 16 && &head == b"SQLite format 3\0")
}
