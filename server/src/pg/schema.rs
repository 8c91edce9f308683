//! The shared tables in PostgreSQL and their migrations.
//!
//! One transaction under an advisory lock migrates (instances starting together migrate once);
//! a schema newer than this code is refused. The first migration also makes the server's
//! replica id, shared by every instance. Kept apart from the queries so that a migration is
//! found by its file.

use crate::error::{Result, ServerError};
use postgres::GenericClient;
use uuid::Uuid;

/// The advisory lock of schema migrations ("DOORMIGR").
const MIGRATE_LOCK: i64 = 0x444F_4F52_4D49_4752;

const V1: &str = r#"
CREATE TABLE users (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL,
    unit_code  text,
    token_hash text NOT NULL UNIQUE,
    created_ms bigint NOT NULL
);

CREATE TABLE devices (
    id              text PRIMARY KEY,
    officer_id      text NOT NULL,
    replica         bytea NOT NULL,
    name            text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    enrolled_at     bigint NOT NULL,
    revoked_at      bigint,
    acked_counter   bigint NOT NULL DEFAULT 0,
    last_seen_ms    bigint,
    clock_offset_ms bigint
);
CREATE INDEX devices_officer ON devices (officer_id);

CREATE TABLE enrol_codes (
    code_hash      text PRIMARY KEY,
    officer_id     text NOT NULL,
    expires_ms     bigint NOT NULL,
    used_by_device text,
    created_ms     bigint NOT NULL
);

-- The operation log and the feed: every operation the server holds (`op` is the core's
-- encoding of the whole operation), in the order it was committed. `seq` is allocated under
-- the feed lock (see server/src/pg.rs), so it increases in commit order. `area` is the village
-- or unit the operation is filed under, NULL for reference data every device receives.
CREATE TABLE feed (
    seq     bigserial PRIMARY KEY,
    replica bytea  NOT NULL,
    counter bigint NOT NULL,
    area    text,
    op      bytea  NOT NULL,
    UNIQUE (replica, counter)
);
CREATE INDEX feed_area ON feed (area, seq);

CREATE TABLE quarantine (
    replica   bytea  NOT NULL,
    counter   bigint NOT NULL,
    device_id text   NOT NULL,
    reason    text   NOT NULL,
    body      bytea  NOT NULL,
    at_ms     bigint NOT NULL,
    PRIMARY KEY (replica, counter)
);

CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at_ms  bigint NOT NULL,
    actor  text   NOT NULL,
    action text   NOT NULL,
    target text   NOT NULL,
    detail text   NOT NULL
);
"#;

/// Version 2 (the command centre): command users sign in with a password (argon2 PHC string)
/// and hold web sessions (cookie tokens, stored hashed). Mirrors the SQLite backend's V2.
const V2: &str = r#"
ALTER TABLE users ADD COLUMN password_hash text;
CREATE UNIQUE INDEX users_signin_name ON users (name) WHERE password_hash IS NOT NULL;

CREATE TABLE web_sessions (
    token_hash text PRIMARY KEY,
    user_id    text   NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
"#;

/// Version 3: a replica belongs to one device not revoked (issue #12), kept by a unique index;
/// older devices sharing a replica are revoked as of the newest one's enrolment. Mirrors the
/// SQLite backend's V3.
const V3: &str = r#"
UPDATE devices SET revoked_at = newer.at
FROM (
    SELECT o.id, min(n.enrolled_at) AS at FROM devices o JOIN devices n
      ON n.replica = o.replica AND n.revoked_at IS NULL
     AND (n.enrolled_at > o.enrolled_at OR (n.enrolled_at = o.enrolled_at AND n.id > o.id))
    WHERE o.revoked_at IS NULL
    GROUP BY o.id
) AS newer
WHERE devices.id = newer.id;
CREATE UNIQUE INDEX devices_active_replica ON devices (replica) WHERE revoked_at IS NULL;
"#;

/// Version 4: a second factor for command users (issue #13): the TOTP secret (base32, stored
/// as is: the server has no key to encrypt it with) and the last step whose code was accepted,
/// so that no code is used twice. Mirrors the SQLite backend's V4.
const V4: &str = r#"
ALTER TABLE users ADD COLUMN totp_secret text;
ALTER TABLE users ADD COLUMN totp_last_step bigint;
"#;

/// Version 5: a device's Ed25519 public key (signed operations, issue #14).
const V5: &str = r#"
ALTER TABLE devices ADD COLUMN public_key bytea;
"#;

/// Version 6: moves in the feed (issue #13, "scope that shrinks"): the village a household or
/// resident moved by the row's operation leaves, and its id. Mirrors the SQLite backend's V6.
const V6: &str = r#"
ALTER TABLE feed ADD COLUMN from_area text;
ALTER TABLE feed ADD COLUMN moved text;
CREATE INDEX feed_from_area ON feed (from_area, seq) WHERE from_area IS NOT NULL;
CREATE INDEX feed_moved ON feed (moved, seq) WHERE moved IS NOT NULL;
"#;

/// Version 7: snapshots of an instance's view, from which a new instance starts in seconds
/// instead of replaying the whole feed (`server/src/pg/snapshot.rs`; only the latest is kept).
const V7: &str = r#"
CREATE TABLE view_snapshots (
    id      bigserial PRIMARY KEY,
    seq     bigint NOT NULL,
    made_ms bigint NOT NULL,
    bytes   bigint NOT NULL,
    packed  bigint NOT NULL
);
CREATE TABLE view_snapshot_chunks (
    snapshot bigint  NOT NULL REFERENCES view_snapshots (id) ON DELETE CASCADE,
    n        integer NOT NULL,
    data     bytea   NOT NULL,
    PRIMARY KEY (snapshot, n)
);
"#;

/// `MIGRATIONS[i]` takes the PostgreSQL schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The PostgreSQL schema version this code writes.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn schema_version(c: &mut impl GenericClient) -> Result<i64> {
    let row = c.query_opt(
        "SELECT value FROM server_meta WHERE key = 'schema_version'",
        &[],
    )?;
    match row {
        None => Ok(0),
        Some(r) => r
            .get::<_, String>(0)
            .parse()
            .map_err(|_| ServerError::Internal("server_meta.schema_version: not a number".into())),
    }
}

/// Bring the PostgreSQL schema to [`PG_SCHEMA_VERSION`], in one transaction under an advisory
/// lock (instances starting together migrate once), refusing a newer schema. Returns the
/// server's replica id (made by the first migration).
pub fn migrate(client: &mut postgres::Client) -> Result<Uuid> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS server_meta (key text PRIMARY KEY, value text NOT NULL)",
    )?;
    let found = schema_version(&mut tx)?;
    if found > PG_SCHEMA_VERSION {
        return Err(ServerError::Internal(format!(
            "PostgreSQL schema version {found} is newer than this server supports \
             ({PG_SCHEMA_VERSION}); upgrade the server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(i as i64 + 1).to_string()],
        )?;
    }
    tx.execute(
        "INSERT INTO server_meta (key, value) VALUES ('server_replica', $1)
         ON CONFLICT (key) DO NOTHING",
        &[&Uuid::new_v4().to_string()],
    )?;
    let replica: String = tx
        .query_one(
            "SELECT value FROM server_meta WHERE key = 'server_replica'",
            &[],
        )?
        .get(0);
    tx.commit()?;
    Uuid::parse_str(&replica)
        .map_err(|_| ServerError::Internal("server_meta.server_replica: not a UUID".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::{testing, PgBackend, ViewOptions};
    use doorstep_core::UnitInput;
    use postgres::NoTls;

    /// A database at v2 whose devices share replicas (enrolled before the rule) migrates to
    /// v3 keeping the newest device of each replica, the older revoked as of its enrolment;
    /// a second device of a replica then cannot be inserted.
    #[test]
    fn migration_from_v2_keeps_one_device_per_replica() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '2'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        c.batch_execute(V1).unwrap();
        c.batch_execute(V2).unwrap();
        c.batch_execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at, revoked_at)
             VALUES ('d1', 'o1', '\\x01', 'old', 'h1', 1, NULL),
                    ('d2', 'o1', '\\x01', 'new', 'h2', 5, NULL),
                    ('d3', 'o1', '\\x01', 'gone', 'h3', 0, 3),
                    ('d4', 'o2', '\\x02', 'other', 'h4', 1, NULL);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let rows: Vec<(String, Option<i64>)> = c
            .query("SELECT id, revoked_at FROM devices ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let expected = [("d1", Some(5)), ("d2", None), ("d3", Some(3)), ("d4", None)];
        assert_eq!(
            rows,
            expected.map(|(i, r)| (i.to_owned(), r)).to_vec(),
            "the newest device of a replica stays"
        );
        let n = c
            .execute(
                "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
                 VALUES ('d5', 'o2', '\\x02', 'x', 'h5', 9)
                 ON CONFLICT (replica) WHERE revoked_at IS NULL DO NOTHING",
                &[],
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    /// A database at v1 (as the first PostgreSQL release left it) with an admin and a device
    /// migrates to the current version keeping both; command users and web sessions then work.
    #[test]
    fn migration_from_v1_keeps_users_and_devices() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '1'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        c.batch_execute(V1).unwrap();
        c.batch_execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms)
                 VALUES ('u1', 'root', 'admin', NULL, 'h-admin', 1);
             INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
                 VALUES ('d1', 'o1', '\\x00', 'phone', 'h-device', 2);",
        )
        .unwrap();
        let replica = migrate(&mut c).unwrap();
        assert_eq!(replica.to_string(), "0190a5c4-7c11-7000-8000-000000000001");
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let row = c
            .query_one(
                "SELECT name, role, password_hash FROM users WHERE id = 'u1'",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "root");
        assert_eq!(row.get::<_, String>(1), "admin");
        assert_eq!(row.get::<_, Option<String>>(2), None);
        let devices: i64 = c
            .query_one(
                "SELECT count(*) FROM devices WHERE token_hash = 'h-device'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(devices, 1);
        drop(c);
        // The v2 paths on the migrated database.
        let b = PgBackend::open(&url, ViewOptions::default()).unwrap();
        b.with_view_write(|s| {
            s.put_unit(UnitInput {
                code: "58".into(),
                parent_code: None,
                level: doorstep_core::UnitLevel::Province,
                kind: "tỉnh".into(),
                name: "Ninh Thuận".into(),
            })
        })
        .unwrap()
        .unwrap();
        let id = b
            .add_command_user("cli", "chief", "province", "58", "$argon2id$hash", 3)
            .unwrap();
        let (user, hash) = b.command_user_by_name("chief").unwrap().unwrap();
        assert_eq!((user.user_id, hash.as_str()), (id, "$argon2id$hash"));
        b.start_session(id, "cookie-token", 100, 4).unwrap();
        assert_eq!(
            b.session_user("cookie-token", 50).unwrap().unwrap().user_id,
            id
        );
        assert!(b.session_user("cookie-token", 150).unwrap().is_none());
        b.end_session("cookie-token").unwrap();
        assert!(b.session_user("cookie-token", 50).unwrap().is_none());
    }

    /// A database at v3 with a command user migrates to v4: the user keeps their password and
    /// has no second factor until one is enabled; enabling, using a step and disabling then
    /// work on the migrated database.
    #[test]
    fn migration_from_v3_adds_the_second_factor_off() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '3'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        for v in [V1, V2, V3] {
            c.batch_execute(v).unwrap();
        }
        c.batch_execute(
            "INSERT INTO users (id, name, role, unit_code, token_hash, created_ms, password_hash)
             VALUES ('0190a5c4-7c11-7000-8000-0000000000aa', 'chief', 'province', '58', 'h1', 1,
                     '$argon2id$x');",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let row = c
            .query_one(
                "SELECT password_hash, totp_secret, totp_last_step FROM users WHERE name = 'chief'",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "$argon2id$x");
        assert_eq!(row.get::<_, Option<String>>(1), None);
        assert_eq!(row.get::<_, Option<i64>>(2), None);
        drop(c);
        let b = PgBackend::open(&url, ViewOptions::default()).unwrap();
        let (id, secret) = b.enable_totp("cli", "chief", 5).unwrap();
        assert_eq!(b.user_totp(id).unwrap().as_deref(), Some(secret.as_str()));
        assert!(b.use_totp_step(id, 100).unwrap());
        assert!(!b.use_totp_step(id, 100).unwrap(), "a step is used once");
        assert!(b.disable_totp("cli", "chief", 6).unwrap());
        assert_eq!(b.user_totp(id).unwrap(), None);
    }

    /// A database at v4 with a device migrates to v5: the device has no key.
    #[test]
    fn migration_from_v4_adds_device_keys() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '4'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        for v in [V1, V2, V3, V4] {
            c.batch_execute(v).unwrap();
        }
        c.batch_execute(
            "INSERT INTO devices (id, officer_id, replica, name, token_hash, enrolled_at)
             VALUES ('d1', 'o1', '\\x01', 'A03', 'h1', 1);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let row = c
            .query_one("SELECT public_key FROM devices WHERE id = 'd1'", &[])
            .unwrap();
        assert_eq!(row.get::<_, Option<Vec<u8>>>(0), None);
    }

    /// A database at v5 with feed rows migrates to v6: the rows are kept, none is a move, and
    /// a move can be filed and found by the village it leaves.
    #[test]
    fn migration_from_v5_adds_moves_to_the_feed() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '5'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        for v in [V1, V2, V3, V4, V5] {
            c.batch_execute(v).unwrap();
        }
        c.batch_execute(
            "INSERT INTO feed (replica, counter, area, op)
             VALUES ('\\x01', 1, '22738-01', '\\x00'), ('\\x01', 2, NULL, '\\x00');",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let row = c
            .query_one(
                "SELECT count(*), count(from_area) + count(moved) FROM feed",
                &[],
            )
            .unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2, 0));
        c.execute(
            "INSERT INTO feed (replica, counter, area, op, from_area, moved)
             VALUES ('\\x01', 3, '22738-02', '\\x00', '22738-01', 'h1')",
            &[],
        )
        .unwrap();
        let moved: String = c
            .query_one(
                "SELECT moved FROM feed WHERE from_area = '22738-01' AND seq > 2",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(moved, "h1");
    }

    /// A database at v6 with feed rows migrates to v7: the rows are kept and a snapshot of a
    /// view can be stored, found, and replaced (its chunks go with it).
    #[test]
    fn migration_from_v6_adds_view_snapshots() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        c.batch_execute(
            "CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
             INSERT INTO server_meta VALUES ('schema_version', '6'),
                 ('server_replica', '0190a5c4-7c11-7000-8000-000000000001');",
        )
        .unwrap();
        for v in [V1, V2, V3, V4, V5, V6] {
            c.batch_execute(v).unwrap();
        }
        c.batch_execute(
            "INSERT INTO feed (replica, counter, area, op) VALUES ('\\x01', 1, '22738-01', '\\x00');",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let n: i64 = c
            .query_one("SELECT count(*) FROM feed", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        assert_eq!(crate::pg::snapshot::latest_seq(&mut c).unwrap(), None);
        c.batch_execute(
            "INSERT INTO view_snapshots (id, seq, made_ms, bytes, packed) VALUES (1, 1, 0, 3, 3);
             INSERT INTO view_snapshot_chunks VALUES (1, 0, '\\x000102');
             INSERT INTO view_snapshots (id, seq, made_ms, bytes, packed) VALUES (2, 5, 0, 3, 3);
             DELETE FROM view_snapshots WHERE id < 2;",
        )
        .unwrap();
        assert_eq!(crate::pg::snapshot::latest_seq(&mut c).unwrap(), Some(5));
        let chunks: i64 = c
            .query_one("SELECT count(*) FROM view_snapshot_chunks", &[])
            .unwrap()
            .get(0);
        assert_eq!(chunks, 0, "a snapshot's chunks go with it");
    }

    #[test]
    fn migration_from_nothing_then_no_op_then_refuses_newer() {
        let Some(base) = testing::base_url() else {
            return;
        };
        let url = testing::fresh_database(&base).unwrap();
        let mut c = postgres::Client::connect(&url, NoTls).unwrap();
        // Previous schema: none (v1 is the first).
        let r1 = migrate(&mut c).unwrap();
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            tables, 10,
            "server_meta, the six tables of v1, web_sessions of v2 and the two of v7"
        );
        // Again: nothing changes, the same replica.
        assert_eq!(migrate(&mut c).unwrap(), r1);
        assert_eq!(schema_version(&mut c).unwrap(), PG_SCHEMA_VERSION);
        // A newer schema is refused and left alone.
        c.execute(
            "UPDATE server_meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
        let err = migrate(&mut c).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        assert_eq!(schema_version(&mut c).unwrap(), 99);
        assert!(PgBackend::open(&url, ViewOptions::default()).is_err());
    }
}
