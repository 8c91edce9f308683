//! SQLite for the core and the server: the SQLite3 Multiple Ciphers amalgamation (SQLite
//! 3.54.0 with page encryption built in, no OpenSSL), compiled by this crate's build script
//! as `libsqlcipher.a` with the SQLCipher-4 scheme as its only cipher (docs/adr/0008).
//!
//! `rusqlite` is built with its `sqlcipher` feature and no bundled SQLite: `libsqlite3-sys`
//! then asks the linker for a library named `sqlcipher`, and the build script puts this one
//! on the linker's search path. A binary that depends on rusqlite without depending on this
//! crate does not link (there is no system `libsqlcipher`), so no build can fall back on an
//! unencrypted system SQLite unnoticed; [`check_linked`] also checks it at run time.

/// The SQLite3 Multiple Ciphers release compiled in.
pub const SQLITE3MC_VERSION: &str = env!("DOORSTEP_SQLITE3MC_VERSION");

/// The SQLite release it wraps.
pub const SQLITE_VERSION: &str = env!("DOORSTEP_SQLITE_VERSION");

/// The SQL a connection runs to learn which cipher library it is on: `sqlite3mc_version()`
/// exists only in SQLite3 Multiple Ciphers.
pub const VERSION_QUERY: &str = "SELECT sqlite3mc_version()";
