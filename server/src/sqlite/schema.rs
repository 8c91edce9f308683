//! The server's tables in the SQLite file and their migrations.
//!
//! The server's schema has its own version (`server_meta.server_schema_version`), separate
//! from the core's `PRAGMA user_version`; each migration step runs in one IMMEDIATE
//! transaction, and a database newer than this code is refused. Kept apart from the queries so
//! that a migration is found by its file.

use crate::error::{Result, ServerError};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

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

/// Version 3: a replica belongs to one device not revoked (issue #12), kept by a unique index.
/// Devices enrolled before the rule that share a replica keep only the newest; the older
/// ones are revoked as of the newer one's enrolment.
const V3: &str = r#"
UPDATE devices SET revoked_at = (
    SELECT min(d.enrolled_at) FROM devices d
    WHERE d.replica = devices.replica AND d.revoked_at IS NULL
      AND (d.enrolled_at > devices.enrolled_at
           OR (d.enrolled_at = devices.enrolled_at AND d.id > devices.id)))
WHERE revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM devices d
    WHERE d.replica = devices.replica AND d.revoked_at IS NULL
      AND (d.enrolled_at > devices.enrolled_at
           OR (d.enrolled_at = devices.enrolled_at AND d.id > devices.id)));
CREATE UNIQUE INDEX devices_active_replica ON devices(replica) WHERE revoked_at IS NULL;
"#;

/// Version 4: a second factor for command users (issue #13): the TOTP secret (base32, stored
/// as is: the server has no key to encrypt it with) and the last step whose code was accepted,
/// so that no code is used twice. Both NULL: no second factor.
const V4: &str = r#"
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
"#;

/// Version 5: signed operations (issue #14): a device's Ed25519 public key, registered at
/// enrolment, with which the server checks the segments other devices relay for it. NULL: a
/// device enrolled before, or a client without keys; its operations arrive only from itself.
const V5: &str = r#"
ALTER TABLE devices ADD COLUMN public_key BLOB;
"#;

/// Version 6: moves in the feed (issue #13, "scope that shrinks"). An operation that moves a
/// household to another village, or a resident to a household of another village, is filed
/// under the new village; `from_area` is the village it leaves and `moved` the household's or
/// resident's id, so that a pull tells a device holding the old village but not the new one
/// to erase it. NULL for every other row (and for moves filed before this version).
const V6: &str = r#"
ALTER TABLE feed ADD COLUMN from_area TEXT;
ALTER TABLE feed ADD COLUMN moved TEXT;
CREATE INDEX feed_from_area ON feed(from_area, seq) WHERE from_area IS NOT NULL;
CREATE INDEX feed_moved ON feed(moved, seq) WHERE moved IS NOT NULL;
"#;

/// `MIGRATIONS[i]` takes the server schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file at v2 whose devices share replicas (enrolled before the rule) migrates to v3
    /// keeping the newest device of each replica, the older revoked as of its enrolment; a
    /// second device of a replica then cannot be inserted.
    #[test]
    fn migration_from_v2_keeps_one_device_per_replica() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE server_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
             INSERT INTO server_meta VALUES ('server_schema_version', 2);",
        )
        .unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.execute_batch(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at, revoked_at)
             VALUES ('d1', 'o1', x'01', 'old', 'h1', 1, NULL),
                    ('d2', 'o1', x'01', 'new', 'h2', 5, NULL),
                    ('d3', 'o1', x'01', 'gone', 'h3', 0, 3),
                    ('d4', 'o2', x'02', 'other', 'h4', 1, NULL);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(server_version(&conn).unwrap(), SERVER_SCHEMA_VERSION);
        let rows: Vec<(String, Option<i64>)> = conn
            .prepare("SELECT id, revoked_at FROM devices ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [("d1", Some(5)), ("d2", None), ("d3", Some(3)), ("d4", None)];
        assert_eq!(rows, expected.map(|(i, r)| (i.to_owned(), r)).to_vec());
        let n = conn
            .execute(
                "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
                 VALUES ('d5', 'o2', x'02', 'x', 'h5', 9)
                 ON CONFLICT (replica) WHERE revoked_at IS NULL DO NOTHING",
                [],
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    /// A file at v3 with a command user migrates to v4: the user keeps their password and has
    /// no second factor until one is enabled.
    #[test]
    fn migration_from_v3_adds_the_second_factor_off() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE server_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
             INSERT INTO server_meta VALUES ('server_schema_version', 3);",
        )
        .unwrap();
        for v in [V1, V2, V3] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES ('u1', 'chief', 'province', '58', 'h1', 1, '$argon2id$x');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(server_version(&conn).unwrap(), SERVER_SCHEMA_VERSION);
        let row: (String, Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT password_hash, totp_secret, totp_last_step FROM users WHERE id = 'u1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("$argon2id$x".to_owned(), None, None));
        conn.execute(
            "UPDATE users SET totp_secret = 'ABC', totp_last_step = 7 WHERE id = 'u1'",
            [],
        )
        .unwrap();
    }

    /// A file at v4 with a device migrates to v5: the device has no key until it enrols
    /// again (its operations arrive only from itself), and a key can be set.
    #[test]
    fn migration_from_v4_adds_device_keys() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE server_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
             INSERT INTO server_meta VALUES ('server_schema_version', 4);",
        )
        .unwrap();
        for v in [V1, V2, V3, V4] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
             VALUES ('d1', 'o1', x'01', 'A03', 'h1', 1);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(server_version(&conn).unwrap(), SERVER_SCHEMA_VERSION);
        let key: Option<Vec<u8>> = conn
            .query_row("SELECT public_key FROM devices WHERE id = 'd1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(key, None);
        conn.execute(
            "UPDATE devices SET public_key = x'0102' WHERE id = 'd1'",
            [],
        )
        .unwrap();
    }

    /// A file at v5 with feed rows migrates to v6: the rows are kept, none is a move, and a
    /// move can be filed and found by the village it leaves.
    #[test]
    fn migration_from_v5_adds_moves_to_the_feed() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE server_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
             INSERT INTO server_meta VALUES ('server_schema_version', 5);",
        )
        .unwrap();
        for v in [V1, V2, V3, V4, V5] {
            conn.execute_batch(v).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO feed (replica, counter, area) VALUES (x'01', 1, '22738-01'),
                                                            (x'01', 2, NULL);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(server_version(&conn).unwrap(), SERVER_SCHEMA_VERSION);
        let moves: i64 = conn
            .query_row(
                "SELECT count(*) FROM feed WHERE from_area IS NOT NULL OR moved IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM feed", [], |r| r.get(0))
            .unwrap();
        assert_eq!((rows, moves), (2, 0));
        conn.execute(
            "INSERT INTO feed (replica, counter, area, from_area, moved)
             VALUES (x'01', 3, '22738-02', '22738-01', 'h1')",
            [],
        )
        .unwrap();
        let moved: String = conn
            .query_row(
                "SELECT moved FROM feed WHERE from_area = '22738-01' AND seq > 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(moved, "h1");
    }

    #[test]
    fn migration_is_idempotent_and_versioned() {
        let b = crate::SqliteBackend::open_in_memory().unwrap();
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
