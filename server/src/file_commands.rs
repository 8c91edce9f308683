//! `doorstep`'s commands on files: a consistent copy of the SQLite database (`backup`), a change
//! of its key (`db-rekey`), the pins of a certificate (`tls-pin`). PostgreSQL has its own tools
//! (docs/backup.md).

use crate::Database;
use anyhow::bail;

/// `doorstep backup FILE` (server/src/backup.rs): SQLite only; PostgreSQL has pg_dump.
pub(crate) fn backup(db: &Database, out: &std::path::Path) -> anyhow::Result<()> {
    let Database::Sqlite(path, key) = db else {
        bail!(
            "backup copies an SQLite database; for PostgreSQL use \
             `pg_dump --format=custom --file FILE URL` (docs/backup.md)"
        );
    };
    let mut shown = 0;
    let report = doorstep_server::backup::sqlite(path, key.as_ref(), out, &mut |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct >= shown + 10 || done == total {
            eprintln!("backup: {done} of {total} pages ({pct} %)");
            shown = pct;
        }
    })?;
    println!(
        "backed up {} to {} ({} pages, {} bytes)",
        path.display(),
        out.display(),
        report.pages,
        report.bytes
    );
    Ok(())
}

/// `doorstep db-rekey NEW_KEY_FILE` (server/src/key_file.rs): SQLite only.
pub(crate) fn rekey(db: &Database, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    let Database::Sqlite(path, key) = db else {
        bail!("db-rekey changes the key of an SQLite database (--db)");
    };
    doorstep_server::key_file::rekey(path, key.as_ref(), new_key_file)?;
    println!(
        "the database's key is now the one in {}",
        new_key_file.display()
    );
    Ok(())
}

/// `doorstep tls-pin CERT`: one line per certificate of the chain, leaf first.
pub(crate) fn tls_pin(cert: &std::path::Path) -> anyhow::Result<()> {
    let pins = doorstep_server::web::tls::pins(cert)?;
    for (i, pin) in pins.iter().enumerate() {
        let which = match i {
            0 => "the server's certificate",
            _ if i + 1 == pins.len() => "the last issuer in the file",
            _ => "an intermediate issuer",
        };
        println!("{pin}  {which}");
    }
    Ok(())
}
