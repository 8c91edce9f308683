//! The key of an SQLite database encrypted at rest (`--db-key-file`, `doorstep db-key`).
//!
//! The server's SQLite file holds every resident of its province (names, ID and phone numbers)
//! and its own secrets (the signing key that certifies devices, TOTP secrets). With
//! `--db-key-file` it is encrypted as the phones' stores are (AEGIS-256, ADR 0008):
//! a copied file, a stolen disk or a backup left on a share gives nothing away without the key.
//! The key lives in its own file, which belongs elsewhere than the database (a secrets mount,
//! a separate volume): beside the database it protects nothing.
//!
//! A key file holds 32 bytes as 64 hexadecimal digits (a newline after them is fine), or the
//! 32 raw bytes. It must be readable by its owner only: a key any local user can read is
//! refused, as `ssh` refuses such a private key.

use crate::error::{Result, ServerError};
use doorstep_core::StoreKey;
use std::io::Write;
use std::path::Path;

/// The key in the file at `path`. Errors name the option and the accepted form, never the
/// file's content.
pub fn read(path: &Path) -> Result<StoreKey> {
    let mut bytes = std::fs::read(path).map_err(|e| {
        ServerError::BadRequest(format!(
            "db-key-file: cannot read it ({}); make one with `doorstep db-key FILE`",
            e.kind()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| ServerError::BadRequest(format!("db-key-file: {}", e.kind())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(ServerError::BadRequest(format!(
                "db-key-file: other users may read it (mode {:03o}); `chmod 600` it",
                mode & 0o777
            )));
        }
    }
    let key = parse(&bytes);
    bytes.fill(0);
    key
}

/// 32 raw bytes, or 64 hexadecimal digits with surrounding whitespace.
fn parse(bytes: &[u8]) -> Result<StoreKey> {
    let bad = || {
        ServerError::BadRequest(
            "db-key-file: expected 64 hexadecimal digits (32 bytes) or 32 raw bytes".into(),
        )
    };
    let text = bytes.trim_ascii();
    if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
        let mut raw = [0u8; 32];
        for (i, pair) in text.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            raw[i] = (hi * 16 + lo) as u8;
        }
        let key = StoreKey::new(raw);
        raw.fill(0);
        return Ok(key);
    }
    if bytes.len() == StoreKey::LEN {
        return StoreKey::from_bytes(bytes).map_err(|_| bad());
    }
    Err(bad())
}

/// Make a new key file at `path` (32 random bytes as hexadecimal, owner-only; never overwrites).
pub fn create(path: &Path) -> Result<()> {
    let raw: [u8; 32] = rand::random();
    let mut text = String::with_capacity(65);
    for b in raw {
        text.push_str(&format!("{b:02x}"));
    }
    text.push('\n');
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |e: std::io::Error| ServerError::BadRequest(format!("out: {}", e.kind()));
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    // SAFETY: only ASCII hex digits and a newline; the string is dropped right after.
    unsafe { text.as_bytes_mut() }.fill(0);
    Ok(())
}

/// Change the key of the encrypted SQLite database at `db` from `old` to the key in `new_file`
/// (`doorstep db-rekey`): every page is rewritten under the new key in one transaction. No
/// other process may have the database open.
pub fn rekey(db: &Path, old: Option<&StoreKey>, new_file: &Path) -> Result<()> {
    let Some(old) = old else {
        return Err(ServerError::BadRequest(
            "db-key-file: give the database's current key (a database not encrypted yet is \
             encrypted by opening it with --db-key-file)"
                .into(),
        ));
    };
    if !db.is_file() {
        return Err(ServerError::BadRequest("db: no database file there".into()));
    }
    let new = read(new_file)?;
    let mut store = doorstep_core::Store::open_encrypted(db, old, Default::default())?;
    store.rekey(&new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_raw_and_bad_forms() {
        let hex = "07".repeat(32);
        assert_eq!(parse(hex.as_bytes()).unwrap(), StoreKey::new([7; 32]));
        assert_eq!(
            parse(format!("  {}\n", hex.to_uppercase()).as_bytes()).unwrap(),
            StoreKey::new([7; 32])
        );
        assert_eq!(parse(&[9u8; 32]).unwrap(), StoreKey::new([9; 32]));
        for bad in [&b""[..], b"07", &[b'g'; 64], &[1u8; 31], &[1u8; 33]] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("db-key-file: expected 64 hexadecimal digits"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_new_key_file_is_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.key");
        create(&path).unwrap();
        let key = read(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 65);
        assert!(create(&path).is_err(), "never overwrites");
        assert_eq!(read(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read(&path).unwrap_err().to_string();
            assert!(e.contains("other users may read it (mode 644)"), "{e}");
        }
    }
}
