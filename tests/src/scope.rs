//! What "the same state" means between a device and the server: the materialised rows of the
//! device's villages, dumped with plain SQL from either database.
//!
//! A device holds only its scope (its officer's villages, plus reference data), the server
//! holds everything, so whole-store dumps cannot be compared. These dumps select the rows of
//! households in the given villages, their residents, the visits and assistance steps about
//! them, their retractions and the residents' account state — every column, the stamps of the
//! last-writer-wins registers and the derived columns included — sorted by key.

use rusqlite::Connection;
use std::fmt::Write;

fn in_list(villages: &[String]) -> String {
    villages
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

fn dump_query(conn: &Connection, title: &str, sql: &str, out: &mut String) {
    let _ = writeln!(out, "## {title}");
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{title}: {e}"));
    let n = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        for i in 0..n {
            if i > 0 {
                out.push('\t');
            }
            match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => out.push_str("NULL"),
                rusqlite::types::ValueRef::Integer(v) => {
                    let _ = write!(out, "{v}");
                }
                rusqlite::types::ValueRef::Real(v) => {
                    let _ = write!(out, "{v:?}");
                }
                rusqlite::types::ValueRef::Text(t) => out.push_str(&String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Blob(b) => {
                    for byte in b {
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
        out.push('\n');
    }
}

/// The rows of `villages` in a store (device or server): households, residents, visits,
/// assists, retractions of those facts, account state. Deterministic text.
pub fn scope_dump(conn: &Connection, villages: &[String]) -> String {
    let v = in_list(villages);
    let hh = format!("SELECT id FROM households WHERE village_code IN ({v})");
    let res = format!("SELECT id FROM residents WHERE household_id IN ({hh})");
    let facts = format!(
        "SELECT id FROM visits WHERE household_id IN ({hh})
         UNION SELECT id FROM assists WHERE resident_id IN ({res})"
    );
    let mut out = String::new();
    dump_query(
        conn,
        "households",
        &format!("SELECT * FROM households WHERE village_code IN ({v}) ORDER BY id"),
        &mut out,
    );
    dump_query(
        conn,
        "residents",
        &format!("SELECT * FROM residents WHERE household_id IN ({hh}) ORDER BY id"),
        &mut out,
    );
    dump_query(
        conn,
        "visits",
        &format!("SELECT * FROM visits WHERE household_id IN ({hh}) ORDER BY id"),
        &mut out,
    );
    dump_query(
        conn,
        "assists",
        &format!("SELECT * FROM assists WHERE resident_id IN ({res}) ORDER BY id"),
        &mut out,
    );
    dump_query(
        conn,
        "retractions",
        &format!(
            "SELECT fact_id, reason, hlc, hex(replica) FROM retractions
             WHERE fact_id IN ({facts}) ORDER BY fact_id"
        ),
        &mut out,
    );
    dump_query(
        conn,
        "account_state",
        &format!("SELECT * FROM account_state WHERE resident_id IN ({res}) ORDER BY resident_id"),
        &mut out,
    );
    out
}

/// The first line where two dumps differ, for an assertion message.
pub fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {i}:\n  left:  {x}\n  right: {y}");
        }
    }
    format!(
        "one is a prefix of the other: {} vs {} lines",
        a.lines().count(),
        b.lines().count()
    )
}

/// Rows in `table` and distinct ids among them (`id` column).
pub fn count_and_distinct(conn: &Connection, table: &str) -> (i64, i64) {
    conn.query_row(
        &format!("SELECT count(*), count(DISTINCT id) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Whether a visit or assistance step with this id is held.
pub fn holds_fact(conn: &Connection, id: &uuid::Uuid) -> bool {
    let id = id.to_string();
    conn.query_row(
        "SELECT (SELECT count(*) FROM visits WHERE id = ?1) + (SELECT count(*) FROM assists WHERE id = ?1)",
        [&id],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        > 0
}

/// `(count, max counter)` of a replica's operations in a store's log.
pub fn replica_ops(conn: &Connection, replica: &uuid::Uuid) -> (i64, i64) {
    conn.query_row(
        "SELECT count(*), coalesce(max(counter), 0) FROM oplog WHERE replica = ?1",
        [replica.as_bytes().as_slice()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// The end state every test wants after a clean sync of every device:
/// - each device's villages hold exactly the server's rows for them;
/// - every fact each device recorded is on the server and on the device (nothing lost);
/// - the server holds each device's operations exactly once, all of them (counter `1..=n`);
/// - the server's visits and assists are exactly the facts the devices recorded (`extra` =
///   facts recorded some other way), each once (nothing counted twice).
pub fn assert_converged(server: &crate::harness::Server, devices: &[&crate::harness::Device]) {
    let conn = server.reader();
    let mut all_facts = std::collections::BTreeSet::new();
    for d in devices {
        let theirs = scope_dump(&conn, &d.villages);
        let mine = d.dump();
        assert!(
            mine == theirs,
            "{}: device and server differ for villages {:?}: {}",
            d.name,
            d.villages,
            first_difference(&mine, &theirs)
        );
        for f in &d.facts {
            assert!(
                holds_fact(&conn, f),
                "{}: fact {f} lost on the server",
                d.name
            );
            assert!(
                holds_fact(d.store.connection(), f),
                "{}: fact {f} lost on the device",
                d.name
            );
        }
        all_facts.extend(d.facts.iter().copied());
        let own = d.store.own_counter() as i64;
        assert_eq!(
            replica_ops(&conn, &d.replica()),
            (own, own),
            "{}: the server should hold each of the device's {own} operations once",
            d.name
        );
    }
    let (visits, distinct_visits) = count_and_distinct(&conn, "visits");
    let (assists, distinct_assists) = count_and_distinct(&conn, "assists");
    assert_eq!(visits, distinct_visits);
    assert_eq!(assists, distinct_assists);
    assert_eq!(
        (visits + assists) as usize,
        all_facts.len(),
        "the server's facts are exactly the devices' facts"
    );
}
