//! Compile the SQLite3 Multiple Ciphers amalgamation into `libsqlcipher.a` in `OUT_DIR` and put
//! that folder on the linker's search path (see `src/lib.rs` for why the name).

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = sqlite3mc_src::source_dir();
    let source = dir.join(sqlite3mc_src::SOURCE_FILE);
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rustc-env=DOORSTEP_SQLITE3MC_VERSION={}",
        sqlite3mc_src::SQLITE3MC_VERSION
    );
    println!(
        "cargo:rustc-env=DOORSTEP_SQLITE_VERSION={}",
        sqlite3mc_src::SQLITE_VERSION
    );

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let mut cfg = cc::Build::new();
    cfg.file(&source)
        .include(dir)
        // What rusqlite's bundled SQLite is built with, less the extensions nothing here
        // uses (FTS3/5, R*Tree, dbstat, soundex, column metadata, STAT4, extension loading).
        .define("SQLITE_CORE", None)
        .define("SQLITE_DEFAULT_FOREIGN_KEYS", "1")
        .define("SQLITE_ENABLE_API_ARMOR", None)
        .define("SQLITE_THREADSAFE", "1")
        .define("SQLITE_USE_URI", "1")
        .define("SQLITE_OMIT_LOAD_EXTENSION", None)
        .define("HAVE_USLEEP", "1")
        .define("HAVE_ISNAN", None)
        .define("HAVE_STDINT_H", "1")
        .define("_POSIX_THREAD_SAFE_FUNCTIONS", None)
        // Temporary tables, sorts and transient indexes stay in memory: SQLite3MC does not
        // encrypt temporary files (Android's own SQLite uses 3, "always memory").
        .define(
            "SQLITE_TEMP_STORE",
            if target_os == "android" { "3" } else { "2" },
        )
        // Two ciphers (ADR 0008, "Revisited again"). AEGIS-256, the default and what every
        // store is written in from now on (`core/src/key.rs` selects it by name too): an
        // authenticated cipher on the AES round, with the CPU's AES instructions where it has
        // them, one tag per page and no HMAC. And SQLCipher 4's scheme (AES-256-CBC,
        // HMAC-SHA512 per page), for the stores written before: they open unchanged, and a key
        // change rewrites them in AEGIS.
        .define("CODEC_TYPE", "CODEC_TYPE_AEGIS")
        .define("HAVE_CIPHER_AEGIS", "1")
        // `legacy = 4` for SQLCipher's scheme: SQLCipher 4's exact file format (without it
        // SQLite3MC's own variant of the scheme leaves the first bytes of page 1 differently;
        // the stores SQLCipher wrote would not open: core/tests/encrypted.rs).
        .define("SQLITE3MC_USE_SQLCIPHER_LEGACY", None)
        .define("HAVE_CIPHER_AES_128_CBC", "0")
        .define("HAVE_CIPHER_AES_256_CBC", "0")
        .define("HAVE_CIPHER_CHACHA20", "0")
        .define("HAVE_CIPHER_RC4", "0")
        .define("HAVE_CIPHER_ASCON128", "0")
        .define("HAVE_CIPHER_AEGIS", "1")
        .warnings(false);
    if target_os != "windows" {
        cfg.define("HAVE_LOCALTIME_R", None);
    }
    cfg.cargo_metadata(false);
    cfg.compile("sqlcipher");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rustc-link-search=native={}", out.display());
}
