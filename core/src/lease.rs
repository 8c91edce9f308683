//! The offline lease and the server's wipe order (`docs/sync-protocol.md`, "Lease and wipe";
//! Decree 13/2023: a lost phone must not show residents' data for ever).
//!
//! Enrolment and every pull grant a lease: until then the store may show personal data
//! offline. Past it, the reads that show residents ([`Store::my_households`],
//! [`Store::search_residents`], [`Store::residents_needing_help`], [`Store::revisits_due`])
//! answer [`Error::LeaseExpired`] until a sync renews it; recording field work still works and
//! is kept. A store that never enrolled has no lease (local use, tests).
//!
//! A revoked device's next contact gets a wipe order signed with the server's key; the sync
//! client checks it against the key kept from enrolment and this store's replica, pushes what
//! the server still takes, then erases every replicated row ([`Store::wipe`]).

use crate::error::{Error, Result};
use crate::store::Store;
use rusqlite::OptionalExtension;
use uuid::Uuid;

/// The tables a wipe empties: everything replicated or derived from it. Units (the public
/// administrative tree) and `meta` (the replica id, keys, the wipe's own record) stay.
const WIPED: &[&str] = &[
    "households",
    "residents",
    "campaigns",
    "officers",
    "assignments",
    "quotas",
    "visits",
    "assists",
    "retractions",
    "account_state",
    "sessions",
    "outreach",
    "oplog",
    "replicas",
    "sync_cursors",
    "segments",
    "segment_deliveries",
    "certificates",
];

impl Store {
    /// Record the lease the server granted (Unix ms). Never shortens one already granted.
    pub fn set_lease(&mut self, until_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('lease_until_ms', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )?
            .execute([until_ms])?;
        Ok(())
    }

    /// Until when this store may show personal data offline (`None`: never enrolled).
    pub fn lease(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'lease_until_ms'")?
            .query_row([], |r| r.get(0))
            .optional()?)
    }

    /// [`Error::LeaseExpired`] when the lease is over (the corrected clock is past it).
    pub(crate) fn check_lease(&self) -> Result<()> {
        match self.lease()? {
            Some(until_ms) if self.now_ms() > until_ms => Err(Error::LeaseExpired { until_ms }),
            _ => Ok(()),
        }
    }

    /// Erase every replicated row this store holds — residents, households, facts, officers,
    /// the operation log — in one transaction, and remember when (`wiped_at_ms`). What a
    /// revoked device does on the server's order, after its last push.
    pub fn wipe(&mut self) -> Result<()> {
        let now = self.now_ms();
        let tx = self.conn.unchecked_transaction()?;
        for table in WIPED {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('wiped_at_ms', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [now],
        )?;
        tx.execute("DELETE FROM meta WHERE key = 'lease_until_ms'", [])?;
        tx.commit()?;
        // The freed pages are overwritten, not left in the file for a forensic read.
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    /// When this store was wiped on the server's order, if it was.
    pub fn wiped_at(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'wiped_at_ms'")?
            .query_row([], |r| r.get(0))
            .optional()?)
    }
}

/// Erase what a store holds of `villages` (codes), in the caller's transaction: the
/// households, their residents, visits, assistance steps, account states and retractions,
/// and every operation of another replica about them. This replica's own operations stay in
/// the log until the server has them (they are pushed as usual). Returns how many households
/// were erased.
pub(crate) fn forget_villages(
    conn: &rusqlite::Connection,
    own: &crate::op::ReplicaId,
    villages: &[String],
) -> Result<usize> {
    if villages.is_empty() {
        return Ok(0);
    }
    let list = serde_json_list(villages);
    // Operations of other replicas about these villages, found before the rows they name go.
    delete_others_ops(conn, own, |op| {
        Ok(crate::segments::op_village(conn, op)?.is_some_and(|v| villages.contains(&v)))
    })?;
    let households =
        "SELECT id FROM households WHERE village_code IN (SELECT value FROM json_each(?1))";
    let residents = format!("SELECT id FROM residents WHERE household_id IN ({households})");
    let facts = format!(
        "SELECT id FROM visits WHERE household_id IN ({households})
         UNION SELECT id FROM assists WHERE resident_id IN ({residents})"
    );
    conn.execute(
        &format!("DELETE FROM retractions WHERE fact_id IN ({facts})"),
        [&list],
    )?;
    conn.execute(
        &format!("DELETE FROM assists WHERE resident_id IN ({residents})"),
        [&list],
    )?;
    conn.execute(
        &format!("DELETE FROM visits WHERE household_id IN ({households})"),
        [&list],
    )?;
    conn.execute(
        &format!("DELETE FROM account_state WHERE resident_id IN ({residents})"),
        [&list],
    )?;
    conn.execute(
        &format!("DELETE FROM residents WHERE household_id IN ({households})"),
        [&list],
    )?;
    let n = conn.execute(
        "DELETE FROM households WHERE village_code IN (SELECT value FROM json_each(?1))",
        [&list],
    )?;
    Ok(n)
}

/// What a pull page tells a store to erase, in the page's transaction (`docs/sync-protocol.md`,
/// "Scope that shrinks").
#[derive(Debug, Clone, Copy, Default)]
pub struct Dropped<'a> {
    /// Villages no longer in the device's scope (`PullResponse::dropped`).
    pub villages: &'a [String],
    /// Households moved to a village outside it (`PullResponse::dropped_households`).
    pub households: &'a [Uuid],
    /// Residents moved to a household of such a village (`PullResponse::dropped_residents`).
    pub residents: &'a [Uuid],
}

/// Erase what `dropped` names, in the caller's transaction. Returns how many households were
/// erased (with their villages, or moved out) plus how many residents were erased on their
/// own (moved out without their household).
pub(crate) fn forget(
    conn: &rusqlite::Connection,
    own: &crate::op::ReplicaId,
    dropped: &Dropped<'_>,
) -> Result<usize> {
    let villages = forget_villages(conn, own, dropped.villages)?;
    let moved = forget_moved(conn, own, dropped.households, dropped.residents)?;
    Ok(villages + moved)
}

/// Erase households and residents moved out of the device's scope, in the caller's
/// transaction: each household with its residents, and each resident, with their visits,
/// assistance steps, account states and retractions, and every operation of another replica
/// about them. This replica's own operations stay in the log until the server has them.
/// Returns how many households were erased plus how many residents were erased on their own.
pub(crate) fn forget_moved(
    conn: &rusqlite::Connection,
    own: &crate::op::ReplicaId,
    households: &[Uuid],
    residents: &[Uuid],
) -> Result<usize> {
    use crate::op::OpBody;
    use crate::{Entity, Key};
    use std::collections::BTreeSet;
    if households.is_empty() && residents.is_empty() {
        return Ok(0);
    }
    let hs: BTreeSet<String> = households.iter().map(Uuid::to_string).collect();
    let single: BTreeSet<String> = residents.iter().map(Uuid::to_string).collect();
    let h_list = serde_json_list(&hs.iter().cloned().collect::<Vec<_>>());
    // Every resident erased: those of the households, and those moved on their own.
    let mut rs = single.clone();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM residents WHERE household_id IN (SELECT value FROM json_each(?1))",
        )?;
        for id in stmt.query_map([&h_list], |r| r.get::<_, String>(0))? {
            rs.insert(id?);
        }
    }
    let r_list = serde_json_list(&rs.iter().cloned().collect::<Vec<_>>());
    let mut facts: BTreeSet<String> = BTreeSet::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM visits WHERE household_id IN (SELECT value FROM json_each(?1))
             UNION SELECT id FROM assists WHERE resident_id IN (SELECT value FROM json_each(?2))",
        )?;
        for id in stmt.query_map([&h_list, &r_list], |r| r.get::<_, String>(0))? {
            facts.insert(id?);
        }
    }
    let f_list = serde_json_list(&facts.iter().cloned().collect::<Vec<_>>());
    // Operations of other replicas about them, found before the rows they name go.
    let key = |k: &Key| match k {
        Key::Uuid(u) => u.to_string(),
        Key::Code(c) => c.clone(),
    };
    delete_others_ops(conn, own, |op| {
        Ok(match &op.body {
            OpBody::Set {
                entity: Entity::Household,
                key: k,
                ..
            } => hs.contains(&key(k)),
            OpBody::Set {
                entity: Entity::Resident,
                key: k,
                ..
            } => rs.contains(&key(k)),
            OpBody::Visit(v) => hs.contains(&v.household_id.to_string()),
            OpBody::Assist(a) => rs.contains(&a.resident_id.to_string()),
            OpBody::Retract { fact_id, .. } => facts.contains(&fact_id.to_string()),
            _ => false,
        })
    })?;
    conn.execute(
        "DELETE FROM retractions WHERE fact_id IN (SELECT value FROM json_each(?1))",
        [&f_list],
    )?;
    conn.execute(
        "DELETE FROM assists WHERE resident_id IN (SELECT value FROM json_each(?1))",
        [&r_list],
    )?;
    conn.execute(
        "DELETE FROM visits WHERE household_id IN (SELECT value FROM json_each(?1))",
        [&h_list],
    )?;
    conn.execute(
        "DELETE FROM account_state WHERE resident_id IN (SELECT value FROM json_each(?1))",
        [&r_list],
    )?;
    // Residents moved on their own are counted; those of an erased household go with it. The
    // households they leave behind count who still needs help again.
    let s_list = serde_json_list(&single.into_iter().collect::<Vec<_>>());
    let mut left_behind: Vec<String> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT household_id FROM residents
             WHERE id IN (SELECT value FROM json_each(?1)) AND household_id IS NOT NULL
               AND household_id NOT IN (SELECT value FROM json_each(?2))
               AND household_id IN (SELECT id FROM households)",
        )?;
        for h in stmt.query_map([&s_list, &h_list], |r| r.get::<_, String>(0))? {
            left_behind.push(h?);
        }
    }
    let singles = conn.execute(
        "DELETE FROM residents WHERE id IN (SELECT value FROM json_each(?1))
           AND (household_id IS NULL
                OR household_id NOT IN (SELECT value FROM json_each(?2)))",
        [&s_list, &h_list],
    )?;
    conn.execute(
        "DELETE FROM residents WHERE id IN (SELECT value FROM json_each(?1))",
        [&r_list],
    )?;
    let n = conn.execute(
        "DELETE FROM households WHERE id IN (SELECT value FROM json_each(?1))",
        [&h_list],
    )?;
    for h in &left_behind {
        crate::merge::refresh_needing(conn, h)?;
    }
    Ok(n + singles)
}

/// Delete every operation of another replica than `own` that `about` says concerns what is
/// being erased (decided before the rows it names go).
fn delete_others_ops(
    conn: &rusqlite::Connection,
    own: &crate::op::ReplicaId,
    mut about: impl FnMut(&crate::op::Op) -> Result<bool>,
) -> Result<usize> {
    let mut doomed: Vec<(Vec<u8>, i64)> = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT replica, counter, hlc, body FROM oplog WHERE replica != ?1")?;
        let mut rows = stmt.query([own.0.as_bytes().as_slice()])?;
        while let Some(row) = rows.next()? {
            let replica: Vec<u8> = row.get(0)?;
            let counter: i64 = row.get(1)?;
            let body: Vec<u8> = row.get(3)?;
            let op = crate::op::Op::from_log(&replica, counter, row.get(2)?, &body)?;
            if about(&op)? {
                doomed.push((replica, counter));
            }
        }
    }
    for (replica, counter) in &doomed {
        conn.prepare_cached("DELETE FROM oplog WHERE replica = ?1 AND counter = ?2")?
            .execute(rusqlite::params![replica, counter])?;
    }
    Ok(doomed.len())
}

/// A JSON array of strings, for `json_each` (codes are plain ASCII; quotes escaped anyway).
fn serde_json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(","))
}
