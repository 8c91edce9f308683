//! Schema and migrations.
//!
//! The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a store from
//! version `i` to `i + 1` (its SQL, then a data step in Rust where SQL cannot compute the new
//! values), each in its own IMMEDIATE transaction, so a crash mid-migration leaves the previous
//! version intact. A store newer than [`VERSION`] is refused.
//!
//! When the schema changes: append a migration, bump nothing else by hand ([`VERSION`] is the
//! length of the list), and freeze the new schema in `core/tests/schemas/vN.sql` so the
//! migration test proves that every old version migrates to exactly the fresh schema.
//!
//! Table roles (documented for apps in `docs/store.md`):
//! - local only: `meta`, `sync_cursors`;
//! - replication: `oplog` (every operation held), `replicas` (contiguous counter per replica),
//!   and the `stamps` column of each entity table (the winning stamp of each of the row's
//!   last-writer-wins fields, see [`crate::merge`]);
//! - materialised, for plain-SQL queries: `units`, `households`, `residents`, `campaigns`,
//!   `officers`, `assignments`, `quotas`, `visits`, `assists`, `retractions`;
//! - derived from those, for fast field queries: `account_state` (per resident) and the
//!   `needing`/`last_*`/`revisit_at_ms` columns of `households` (residents still needing help,
//!   latest visit).

use crate::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

/// The schema version this code writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_cursors (
    peer   TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE oplog (
    replica BLOB    NOT NULL,
    counter INTEGER NOT NULL,
    hlc     INTEGER NOT NULL,
    body    BLOB    NOT NULL,
    PRIMARY KEY (replica, counter)
) STRICT, WITHOUT ROWID;

CREATE TABLE replicas (
    replica    BLOB PRIMARY KEY,
    contiguous INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    parent_code TEXT,
    level       TEXT,
    kind        TEXT,
    name        TEXT,
    stamps      BLOB
) STRICT, WITHOUT ROWID;
CREATE INDEX units_parent ON units(parent_code);

CREATE TABLE households (
    id           TEXT PRIMARY KEY,
    code         TEXT,
    village_code TEXT,
    address      TEXT,
    head_id      TEXT,
    note         TEXT,
    deleted      INTEGER NOT NULL DEFAULT 0,
    stamps       BLOB,
    -- Derived, not replicated: residents still needing help, and the latest visit.
    needing       INTEGER NOT NULL DEFAULT 0,
    last_visit_id TEXT,
    last_at_ms    INTEGER,
    last_day      TEXT,
    last_outcome  TEXT,
    revisit_at_ms INTEGER
) STRICT;
CREATE INDEX households_village ON households(village_code);

CREATE TABLE residents (
    id             TEXT PRIMARY KEY,
    household_id   TEXT,
    full_name      TEXT,
    name_folded    TEXT,
    name_exact     TEXT,
    birth_date     TEXT,
    gender         TEXT,
    id_number      TEXT,
    phone          TEXT,
    relation       TEXT,
    roster_account TEXT,
    note           TEXT,
    deleted        INTEGER NOT NULL DEFAULT 0,
    stamps         BLOB
) STRICT;
CREATE INDEX residents_household ON residents(household_id);
-- Covers the name search, which scans it instead of the wider table rows.
CREATE INDEX residents_name ON residents(name_folded, name_exact, deleted, id);
CREATE INDEX residents_id_number ON residents(id_number);
CREATE INDEX residents_phone ON residents(phone);

CREATE TABLE campaigns (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    start_date TEXT,
    end_date   TEXT,
    target     INTEGER,
    unit_code  TEXT,
    stamps     BLOB
) STRICT;

CREATE TABLE officers (
    id        TEXT PRIMARY KEY,
    name      TEXT,
    role      TEXT,
    unit_code TEXT,
    deleted   INTEGER NOT NULL DEFAULT 0,
    stamps    BLOB
) STRICT;

CREATE TABLE assignments (
    id          TEXT PRIMARY KEY,
    officer_id  TEXT,
    target_kind TEXT,
    target_id   TEXT,
    active      INTEGER,
    stamps      BLOB
) STRICT;
CREATE INDEX assignments_officer ON assignments(officer_id, target_kind);

CREATE TABLE quotas (
    id           TEXT PRIMARY KEY,
    campaign_id  TEXT,
    subject_kind TEXT,
    subject_id   TEXT,
    period       TEXT,
    metric       TEXT,
    target       INTEGER,
    stamps       BLOB
) STRICT;
CREATE INDEX quotas_subject ON quotas(subject_kind, subject_id, period);

CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    household_id  TEXT    NOT NULL,
    officer_id    TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL,
    day           TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    revisit_at_ms INTEGER,
    note          TEXT,
    lat_e6        INTEGER,
    lon_e6        INTEGER,
    retracted     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX visits_household ON visits(household_id, at_ms);
CREATE INDEX visits_officer_day ON visits(officer_id, day);

CREATE TABLE assists (
    id              TEXT PRIMARY KEY,
    resident_id     TEXT    NOT NULL,
    officer_id      TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL,
    day             TEXT    NOT NULL,
    step            TEXT    NOT NULL,
    failure         TEXT,
    receiving_point TEXT,
    note            TEXT,
    retracted       INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX assists_resident ON assists(resident_id);
CREATE INDEX assists_officer_day ON assists(officer_id, day);

CREATE TABLE retractions (
    fact_id TEXT PRIMARY KEY,
    reason  TEXT,
    hlc     INTEGER NOT NULL,
    replica BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE account_state (
    resident_id TEXT PRIMARY KEY,
    level1      INTEGER NOT NULL,
    level2      INTEGER NOT NULL,
    portal      INTEGER NOT NULL,
    need        TEXT    NOT NULL GENERATED ALWAYS AS (
        CASE WHEN level2 = 2 AND portal = 1 THEN 'done'
             WHEN level2 = 2 THEN 'portal_guidance'
             WHEN level2 = 1 THEN 'level2_to_activate'
             WHEN level1 = 2 THEN 'level2_to_take'
             WHEN level1 = 1 THEN 'level1_pending'
             ELSE 'no_account' END) STORED
) STRICT, WITHOUT ROWID;

"#;

/// Version 2: residents' agency (officials, civil servants and armed forces), receiving-point
/// sessions and outreach events. Both new tables are facts like `visits`: inserted once by id,
/// `retracted` set by a retraction whichever arrives first.
pub(crate) const V2: &str = r#"
ALTER TABLE residents ADD COLUMN agency TEXT;
CREATE INDEX residents_agency ON residents(agency) WHERE agency IS NOT NULL;

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    unit_code    TEXT    NOT NULL,
    officer_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    place        TEXT    NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms   INTEGER NOT NULL,
    day          TEXT    NOT NULL,
    applications INTEGER NOT NULL,
    note         TEXT,
    retracted    INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_unit_day ON sessions(unit_code, day);

CREATE TABLE outreach (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT    NOT NULL,
    officer_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL,
    day        TEXT    NOT NULL,
    place      TEXT    NOT NULL,
    people     INTEGER NOT NULL,
    note       TEXT,
    retracted  INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX outreach_unit_day ON outreach(unit_code, day);
"#;

/// Version 3: residents' `name_exact` search key puts each word's tone mark in one place
/// ([`crate::text::exact_key`]), so that `Hòa` and `Hoà` are the same name to search. No table
/// changes; every stored key is recomputed from `full_name` ([`rekey_names`]).
pub(crate) const V3: &str = "";

/// Version 4: signed segments (`docs/sync-protocol.md`, "Signed operations"). `segments`: the
/// signatures over runs of a replica's operations that this store holds (its own, signed on
/// demand, and others' it received from peers to relay); `segment_deliveries`: which of them
/// each peer (a server URL, another phone) has been given; `certificates`: the server's
/// certificates of other devices' keys, shown with their segments. The device's own key pair,
/// the server's public key and the device's certificate are in `meta`.
pub(crate) const V4: &str = r#"
CREATE TABLE segments (
    replica      BLOB    NOT NULL,
    first        INTEGER NOT NULL,
    last         INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    signed_at_ms INTEGER NOT NULL,
    signature    BLOB    NOT NULL,
    village_code TEXT,
    PRIMARY KEY (replica, first)
) STRICT, WITHOUT ROWID;

CREATE TABLE segment_deliveries (
    peer    TEXT    NOT NULL,
    replica BLOB    NOT NULL,
    first   INTEGER NOT NULL,
    PRIMARY KEY (peer, replica, first)
) STRICT, WITHOUT ROWID;

CREATE TABLE certificates (
    replica     BLOB PRIMARY KEY,
    certificate BLOB NOT NULL
) STRICT, WITHOUT ROWID;
"#;

/// Version 5: a segment's operations need not be every operation of its replica between its
/// first and last counters. A device signs one run per village of what it recorded since its
/// last signature (a day that goes back and forth between villages is a few runs, not one per
/// change of village), so runs of one replica interleave; `counters` lists the run's counters
/// (postcard `Vec<u64>`). NULL, as in every row written by version 4: every operation of the
/// replica in `first..=last` this store holds.
pub(crate) const V5: &str = "ALTER TABLE segments ADD COLUMN counters BLOB;";

/// Version 6: retention (`docs/sync-protocol.md`, "Retention"). `redactions`: the facts whose
/// note, location and retraction reason are erased for good (a `Redact` operation names them;
/// a fact arriving after it is stored without them); `campaigns.retention_days`: how long
/// after its end a campaign's personal data is kept.
pub(crate) const V6: &str = r#"
CREATE TABLE redactions (
    fact_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
ALTER TABLE campaigns ADD COLUMN retention_days INTEGER;
"#;

/// One migration: its statements, then a data step written in Rust (what SQL cannot compute).
struct Migration {
    sql: &'static str,
    data: Option<fn(&Connection) -> Result<()>>,
}

/// `MIGRATIONS[i]` migrates version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        data: None,
    },
    Migration {
        sql: V2,
        data: None,
    },
    Migration {
        sql: V3,
        data: Some(rekey_names),
    },
    Migration {
        sql: V4,
        data: None,
    },
    Migration {
        sql: V5,
        data: None,
    },
    Migration {
        sql: V6,
        data: None,
    },
];

/// Recompute every resident's search keys from their name (the V3 data step).
fn rekey_names(conn: &Connection) -> Result<()> {
    let names: Vec<(String, String)> = conn
        .prepare("SELECT id, full_name FROM residents WHERE full_name IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update =
        conn.prepare("UPDATE residents SET name_folded = ?2, name_exact = ?3 WHERE id = ?1")?;
    for (id, name) in names {
        update.execute([
            id.as_str(),
            &crate::text::fold(&name),
            &crate::text::exact_key(&name),
        ])?;
    }
    Ok(())
}

/// The store's schema version, or an error if this code cannot open it (newer than
/// [`VERSION`], or not a version at all). Reads only.
pub fn check_version(conn: &Connection) -> Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found < 0 {
        return Err(Error::UnknownSchema { found });
    }
    if found > VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    Ok(found)
}

/// Bring the store at `conn` to [`VERSION`], or refuse a newer one.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let found = check_version(conn)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-check inside the write lock: another connection may have migrated meanwhile.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(m.sql)?;
        if let Some(data) = m.data {
            data(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema as SQLite reports it, normalised: one `CREATE` statement per line, sorted.
/// Used by tests to compare a migrated store with a fresh one.
pub fn dump_schema(conn: &Connection) -> Result<String> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = String::new();
    for sql in rows {
        out.push_str(&sql?.split_whitespace().collect::<Vec<_>>().join(" "));
        out.push_str(";\n");
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    out.push_str(&format!("PRAGMA user_version = {version};\n"));
    Ok(out)
}
