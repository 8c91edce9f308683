//! Reading a PostgreSQL-backed server's state with the same SQL as an SQLite one.

use doorstep_server::pg::ViewOptions;
use doorstep_server::PgBackend;
use postgres::{Client, NoTls};
use rusqlite::{params, Connection};
use std::collections::BTreeSet;
use std::path::Path;
use uuid::Uuid;

/// An SQLite snapshot of the database at `url`, in a new file under `dir`: a core store caught
/// up from the feed (materialised tables and `oplog`), and copies of the server's own tables
/// with the columns the tests read.
pub fn snapshot(url: &str, dir: &Path) -> Connection {
    let path = dir.join(format!("snapshot-{}.db", Uuid::new_v4().simple()));
    drop(
        PgBackend::open(
            url,
            ViewOptions {
                path: Some(path.clone()),
                ..Default::default()
            },
        )
        .expect("catch a snapshot up from PostgreSQL"),
    );
    let conn = Connection::open(&path).expect("open the snapshot");
    conn.execute_batch(
        "CREATE TABLE devices (id TEXT, officer_id TEXT, replica BLOB, name TEXT,
             enrolled_at INTEGER, revoked_at INTEGER, acked_counter INTEGER,
             last_seen_ms INTEGER, clock_offset_ms INTEGER);
         CREATE TABLE feed (seq INTEGER, replica BLOB, counter INTEGER, area TEXT);
         CREATE TABLE quarantine (replica BLOB, counter INTEGER, device_id TEXT, reason TEXT,
             body BLOB, at_ms INTEGER);
         CREATE TABLE audit (id INTEGER, at_ms INTEGER, actor TEXT, action TEXT, target TEXT,
             detail TEXT);",
    )
    .expect("snapshot tables");
    let mut pg = Client::connect(url, NoTls).expect("connect to PostgreSQL");
    for r in pg
        .query(
            "SELECT id, officer_id, replica, name, enrolled_at, revoked_at, acked_counter,
                    last_seen_ms, clock_offset_ms FROM devices",
            &[],
        )
        .unwrap()
    {
        conn.execute(
            "INSERT INTO devices VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, Vec<u8>>(2),
                r.get::<_, String>(3),
                r.get::<_, i64>(4),
                r.get::<_, Option<i64>>(5),
                r.get::<_, i64>(6),
                r.get::<_, Option<i64>>(7),
                r.get::<_, Option<i64>>(8),
            ],
        )
        .unwrap();
    }
    for r in pg
        .query("SELECT seq, replica, counter, area FROM feed", &[])
        .unwrap()
    {
        conn.execute(
            "INSERT INTO feed VALUES (?1, ?2, ?3, ?4)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, Vec<u8>>(1),
                r.get::<_, i64>(2),
                r.get::<_, Option<String>>(3),
            ],
        )
        .unwrap();
    }
    for r in pg
        .query(
            "SELECT replica, counter, device_id, reason, body, at_ms FROM quarantine",
            &[],
        )
        .unwrap()
    {
        conn.execute(
            "INSERT INTO quarantine VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                r.get::<_, Vec<u8>>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, Vec<u8>>(4),
                r.get::<_, i64>(5),
            ],
        )
        .unwrap();
    }
    for r in pg
        .query(
            "SELECT id, at_ms, actor, action, target, detail FROM audit",
            &[],
        )
        .unwrap()
    {
        conn.execute(
            "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, String>(5),
            ],
        )
        .unwrap();
    }
    conn
}

/// The dots `(replica, counter)` of the feed rows filed under one of `areas`.
pub fn feed_dots(url: &str, areas: &[String]) -> BTreeSet<(Uuid, u64)> {
    let mut pg = Client::connect(url, NoTls).expect("connect to PostgreSQL");
    pg.query(
        "SELECT replica, counter FROM feed WHERE area = ANY($1)",
        &[&areas],
    )
    .unwrap()
    .iter()
    .map(|r| {
        (
            Uuid::from_slice(r.get::<_, &[u8]>(0)).unwrap(),
            r.get::<_, i64>(1) as u64,
        )
    })
    .collect()
}

/// The dots a core store's log holds.
pub fn store_dots(conn: &Connection) -> BTreeSet<(Uuid, u64)> {
    let mut stmt = conn.prepare("SELECT replica, counter FROM oplog").unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                Uuid::from_slice(&r.get::<_, Vec<u8>>(0)?).unwrap(),
                r.get::<_, i64>(1)? as u64,
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}
