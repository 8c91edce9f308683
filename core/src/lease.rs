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

/// How far the clock may fall behind the boot clock before it counts as turned back (network
/// time corrections are smaller).
pub const CLOCK_SLACK_MS: i64 = 2_000;

/// How often the lease's clock is written while nothing changes: a restart loses at most this
/// much of what it saw (a turn back smaller than this, across a restart, can go unseen).
const SAVE_EVERY_MS: i64 = 60_000;

/// What the lease's clock saw last ([`Store::lease_now`]), kept in `meta`.
#[derive(Debug, Default)]
pub(crate) struct LeaseClock {
    /// The corrected clock at the last look (`None`: never looked).
    at_ms: Option<i64>,
    /// The boot clock then.
    boot: Option<crate::hlc::BootTime>,
    /// The turns back seen since the last sync, ms.
    setback_ms: i64,
    /// When it was last written (corrected clock).
    saved_at_ms: i64,
}

impl LeaseClock {
    /// As kept in `meta` (absent keys: never looked).
    pub(crate) fn load(conn: &rusqlite::Connection) -> Result<LeaseClock> {
        let get = |key: &str| -> Result<Option<rusqlite::types::Value>> {
            Ok(conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        };
        use rusqlite::types::Value;
        let int = |v: Option<Value>| match v {
            Some(Value::Integer(i)) => Some(i),
            _ => None,
        };
        let at_ms = int(get("lease_clock_at_ms")?);
        let boot = match (get("lease_clock_boot")?, int(get("lease_clock_boot_ms")?)) {
            (Some(Value::Text(boot)), Some(ms)) if ms >= 0 => Some(crate::hlc::BootTime {
                boot,
                ms: ms as u64,
            }),
            _ => None,
        };
        Ok(LeaseClock {
            at_ms,
            boot,
            setback_ms: int(get("lease_clock_setback_ms")?).unwrap_or(0).max(0),
            saved_at_ms: at_ms.unwrap_or(i64::MIN),
        })
    }
}

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

    /// [`Error::LeaseExpired`] when the lease is over: the time the lease is measured in
    /// ([`Store::lease_now`]) is past it.
    pub(crate) fn check_lease(&self) -> Result<()> {
        match self.lease()? {
            Some(until_ms) if self.lease_now()? > until_ms => Err(Error::LeaseExpired { until_ms }),
            _ => Ok(()),
        }
    }

    /// The time the offline lease is measured in: the corrected clock plus every turn back of
    /// the clock seen since the last sync, so that setting the phone's clock back does not
    /// stretch the lease.
    ///
    /// Each call compares the clock with the previous call's. Within one boot the boot clock
    /// (which the user cannot set) says how much time really passed: a clock behind that (by
    /// more than [`CLOCK_SLACK_MS`]) was turned back, and the difference is added; a clock
    /// ahead of it was turned forward, which first repays earlier turns back (a phone that
    /// started at 1970 and later got the network's time). Across a reboot, or without a boot
    /// clock, only a clock behind the previous call's is seen (and added). Every sync resets
    /// this to the server's time ([`Store::set_clock_offset`]).
    pub fn lease_now(&self) -> Result<i64> {
        let now = self.now_ms();
        let boot = self.clock.since_boot();
        let mut c = self
            .lease_clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut changed = c.at_ms.is_none();
        if let Some(at_ms) = c.at_ms {
            let expected = match (&c.boot, &boot) {
                (Some(then), Some(b)) if then.boot == b.boot && b.ms >= then.ms => {
                    Some(at_ms.saturating_add((b.ms - then.ms).min(i64::MAX as u64) as i64))
                }
                _ => None,
            };
            match expected {
                Some(expected) => {
                    let drift = now.saturating_sub(expected);
                    if drift < -CLOCK_SLACK_MS {
                        c.setback_ms = c.setback_ms.saturating_add(-drift);
                        changed = true;
                    } else if drift > CLOCK_SLACK_MS && c.setback_ms > 0 {
                        c.setback_ms -= drift.min(c.setback_ms);
                        changed = true;
                    }
                }
                None => {
                    if now < at_ms {
                        c.setback_ms = c.setback_ms.saturating_add(at_ms - now);
                        changed = true;
                    }
                    // A new boot: note where this one starts.
                    changed |= c.boot != boot;
                }
            }
        }
        changed |= now.saturating_sub(c.saved_at_ms) >= SAVE_EVERY_MS;
        c.at_ms = Some(now);
        c.boot = boot;
        if changed {
            self.save_lease_clock(&mut c, now)?;
        }
        Ok(now.saturating_add(c.setback_ms))
    }

    /// Start the lease's time afresh at the corrected clock (a server just gave its time).
    pub(crate) fn reset_lease_clock(&self) -> Result<()> {
        let now = self.now_ms();
        let mut c = self
            .lease_clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        c.at_ms = Some(now);
        c.boot = self.clock.since_boot();
        c.setback_ms = 0;
        self.save_lease_clock(&mut c, now)
    }

    fn save_lease_clock(&self, c: &mut LeaseClock, now: i64) -> Result<()> {
        let (boot, boot_ms) = match &c.boot {
            Some(b) => (
                Some(b.boot.as_str()),
                Some(b.ms.min(i64::MAX as u64) as i64),
            ),
            None => (None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES
                   ('lease_clock_at_ms', ?1), ('lease_clock_setback_ms', ?2),
                   ('lease_clock_boot', ?3), ('lease_clock_boot_ms', ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(rusqlite::params![c.at_ms, c.setback_ms, boot, boot_ms])?;
        c.saved_at_ms = now;
        Ok(())
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
