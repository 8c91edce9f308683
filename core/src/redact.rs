//! Retention: personal values erased for good, from the tables and from the operation log
//! (Decree 13/2023; `docs/sync-protocol.md`, "Retention").
//!
//! Two things erase a value:
//! - a last-writer-wins write that supersedes it. The materialised row forgets the old value at
//!   once, but the operation that carried it stays in the log; [`compact_log`] rewrites every
//!   such operation with `Null` in place of each personal field that is no longer its
//!   register's winner. The register's winner is untouched, so the tables, every count of the
//!   reports and the merge of any later operation are exactly what they were.
//! - a [`Redaction`] operation (made only by the server, at the end of a campaign's retention
//!   or when a resident's data is erased): the facts it names lose their note, location and
//!   retraction reason, in the tables and in the log, whatever order the redaction and the
//!   facts arrive in (`redactions` remembers the ids; a fact arriving later is stored without
//!   them). Receiving one also compacts the log.
//!
//! A signed run (`segments`) cannot be rewritten and still be verified: an operation covered by
//! a run that no server has acknowledged yet keeps its bytes until one has (the run is still to
//! be delivered, by this store or by the peers it gives it to), and is rewritten by a later
//! compaction; a run rewritten is forgotten (the server holds it; a peer gets it from there).

use crate::merge::Stamps;
use crate::model::{Entity, Field, Key, Value};
use crate::op::{Op, OpBody, Redaction, ReplicaId};
use crate::segments::PUSH_PEER_PREFIX;
use crate::{Result, Store};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

/// The fields of an entity that hold personal data about a person or a household, and whose
/// superseded values compaction erases.
pub fn is_personal(entity: Entity, field: Field) -> bool {
    use Field::*;
    match entity {
        Entity::Household => matches!(field, Address | Note),
        Entity::Resident => matches!(
            field,
            FullName | BirthDate | Gender | IdNumber | Phone | Relation | Note | Agency
        ),
        _ => false,
    }
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Operations of the log rewritten without their erased values.
    pub rewritten: usize,
    /// Operations that hold erased values but are covered by a signed run no server has
    /// acknowledged yet: kept as they are until one has.
    pub withheld: usize,
}

/// Apply a redaction to the tables: remember its facts and erase their values.
pub(crate) fn apply(conn: &Connection, r: &Redaction) -> Result<()> {
    let mut insert =
        conn.prepare_cached("INSERT INTO redactions (fact_id) VALUES (?1) ON CONFLICT DO NOTHING")?;
    for id in &r.facts {
        let id = id.to_string();
        insert.execute([&id])?;
        strip(conn, &id)?;
    }
    Ok(())
}

/// Whether a fact's values were erased by a redaction this store holds.
pub(crate) fn is_redacted(conn: &Connection, fact_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM redactions WHERE fact_id = ?1")?
        .query_row([fact_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Erase a fact's note, location and retraction reason from the tables.
pub(crate) fn strip(conn: &Connection, fact_id: &str) -> Result<()> {
    for sql in [
        "UPDATE visits SET note = NULL, lat_e6 = NULL, lon_e6 = NULL
         WHERE id = ?1 AND (note IS NOT NULL OR lat_e6 IS NOT NULL OR lon_e6 IS NOT NULL)",
        "UPDATE assists SET note = NULL WHERE id = ?1 AND note IS NOT NULL",
        "UPDATE sessions SET note = NULL WHERE id = ?1 AND note IS NOT NULL",
        "UPDATE outreach SET note = NULL WHERE id = ?1 AND note IS NOT NULL",
        "UPDATE retractions SET reason = NULL WHERE fact_id = ?1 AND reason IS NOT NULL",
    ] {
        conn.prepare_cached(sql)?.execute([fact_id])?;
    }
    Ok(())
}

/// Whether the store ever compacted its log or received a redaction: from then on, a personal
/// value superseded, or a fact arriving after its redaction, is noted for the next compaction
/// (after the next sync on a device; the server's maintenance on a server).
pub(crate) fn compacted(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM meta WHERE key = 'compacted'
             UNION ALL SELECT 1 FROM redactions LIMIT 1",
        )?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `op`'s body without the values erased since it was made, or `None` when it holds none.
fn redacted_body(conn: &Connection, op: &Op) -> Result<Option<OpBody>> {
    let fact = |id: &uuid::Uuid| is_redacted(conn, &id.to_string());
    Ok(match &op.body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => {
            let personal = |(f, v): &(Field, Value)| is_personal(*entity, *f) && *v != Value::Null;
            if !fields.iter().any(personal) {
                return Ok(None);
            }
            let stamps: Option<Option<Vec<u8>>> = conn
                .prepare_cached(&format!(
                    "SELECT stamps FROM {} WHERE {} = ?1",
                    entity.table(),
                    entity.key_column()
                ))?
                .query_row([key.to_string()], |r| r.get(0))
                .optional()?;
            let Some(stamps) = stamps else {
                return Ok(None);
            };
            let stamps = Stamps::decode(stamps.as_deref())?;
            let stamp = op.stamp();
            let mut changed = false;
            let fields = fields
                .iter()
                .map(|(f, v)| {
                    if personal(&(*f, v.clone())) && stamps.get(*f) != Some(stamp) {
                        changed = true;
                        (*f, Value::Null)
                    } else {
                        (*f, v.clone())
                    }
                })
                .collect();
            changed.then(|| OpBody::Set {
                entity: *entity,
                key: key.clone(),
                fields,
            })
        }
        OpBody::Visit(v) if (v.note.is_some() || v.location.is_some()) && fact(&v.id)? => {
            let mut v = v.clone();
            v.note = None;
            v.location = None;
            Some(OpBody::Visit(v))
        }
        OpBody::Assist(a) if a.note.is_some() && fact(&a.id)? => {
            let mut a = a.clone();
            a.note = None;
            Some(OpBody::Assist(a))
        }
        OpBody::Session(s) if s.note.is_some() && fact(&s.id)? => {
            let mut s = s.clone();
            s.note = None;
            Some(OpBody::Session(s))
        }
        OpBody::Outreach(o) if o.note.is_some() && fact(&o.id)? => {
            let mut o = o.clone();
            o.note = None;
            Some(OpBody::Outreach(o))
        }
        OpBody::Retract {
            fact_id,
            reason: Some(_),
        } if fact(fact_id)? => Some(OpBody::Retract {
            fact_id: *fact_id,
            reason: None,
        }),
        _ => None,
    })
}

/// The highest counter of `own` any server acknowledged.
fn own_acked(conn: &Connection) -> Result<u64> {
    let mut stmt =
        conn.prepare_cached("SELECT cursor FROM sync_cursors WHERE substr(peer, 1, ?1) = ?2")?;
    let rows = stmt.query_map(
        params![PUSH_PEER_PREFIX.len() as i64, PUSH_PEER_PREFIX],
        |r| r.get::<_, String>(0),
    )?;
    let mut acked = 0;
    for c in rows {
        acked = acked.max(c?.parse::<u64>().unwrap_or(0));
    }
    Ok(acked)
}

/// The signed runs that cover `op` (first counters), and whether a server holds each.
fn covering_runs(
    conn: &Connection,
    own: ReplicaId,
    acked: u64,
    op: &Op,
) -> Result<Vec<(i64, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.first, s.counters,
                EXISTS (SELECT 1 FROM segment_deliveries d
                        WHERE d.replica = s.replica AND d.first = s.first
                          AND substr(d.peer, 1, ?3) = ?4)
         FROM segments s WHERE s.replica = ?1 AND s.first <= ?2 AND s.last >= ?2",
    )?;
    let counter = op.counter as i64;
    let rows = stmt.query_map(
        params![
            op.replica.0.as_bytes().as_slice(),
            counter,
            PUSH_PEER_PREFIX.len() as i64,
            PUSH_PEER_PREFIX
        ],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<Vec<u8>>>(1)?,
                r.get::<_, bool>(2)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (first, counters, delivered) = row?;
        if let Some(blob) = counters {
            let counters: Vec<u64> =
                postcard::from_bytes(&blob).map_err(|e| crate::Error::Decode(e.to_string()))?;
            if counters.binary_search(&op.counter).is_err() {
                continue;
            }
        }
        let held = delivered || (op.replica == own && op.counter <= acked);
        out.push((first, held));
    }
    Ok(out)
}

/// Every operation of the log that holds an erased value, rewritten without it (not stored).
fn collect_changes(conn: &Connection) -> Result<Vec<Op>> {
    let mut changes: Vec<Op> = Vec::new();
    let mut stmt = conn.prepare("SELECT replica, counter, hlc, body FROM oplog")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let op = Op::from_log(
            &row.get::<_, Vec<u8>>(0)?,
            row.get(1)?,
            row.get(2)?,
            &row.get::<_, Vec<u8>>(3)?,
        )?;
        if let Some(body) = redacted_body(conn, &op)? {
            changes.push(Op { body, ..op });
        }
    }
    Ok(changes)
}

/// Store the rewritten operations (those a signed run no server holds covers are withheld),
/// in the caller's transaction.
fn apply_changes(
    conn: &Connection,
    own: ReplicaId,
    changes: Vec<Op>,
    mut rewritten: Option<&mut Vec<Op>>,
    report: &mut CompactReport,
) -> Result<()> {
    let acked = own_acked(conn)?;
    for op in changes {
        let runs = covering_runs(conn, own, acked, &op)?;
        if runs.iter().any(|(_, held)| !held) {
            report.withheld += 1;
            continue;
        }
        for (first, _) in &runs {
            let r = op.replica.0.as_bytes().as_slice();
            conn.prepare_cached("DELETE FROM segments WHERE replica = ?1 AND first = ?2")?
                .execute(params![r, first])?;
            conn.prepare_cached(
                "DELETE FROM segment_deliveries WHERE replica = ?1 AND first = ?2",
            )?
            .execute(params![r, first])?;
        }
        conn.prepare_cached("UPDATE oplog SET body = ?3 WHERE replica = ?1 AND counter = ?2")?
            .execute(params![
                op.replica.0.as_bytes().as_slice(),
                op.counter as i64,
                postcard::to_allocvec(&op.body).map_err(|e| crate::Error::Decode(e.to_string()))?
            ])?;
        report.rewritten += 1;
        if let Some(out) = rewritten.as_deref_mut() {
            out.push(op);
        }
    }
    Ok(())
}

/// Set the store's compaction flags: compacted; pending again only if something was withheld
/// (a value erased by a write while the compaction ran set it itself).
fn finish(conn: &Connection, report: &CompactReport) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('compacted', 1)
         ON CONFLICT (key) DO UPDATE SET value = 1",
        [],
    )?;
    if report.withheld > 0 {
        mark_pending(conn)?;
    }
    Ok(())
}

fn clear_pending(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM meta WHERE key = 'compact_pending'", [])?;
    Ok(())
}

/// Rewrite every operation of the log that holds an erased value (see the module docs), in
/// the caller's transaction. Rewritten operations are added to `rewritten` when given (a
/// server keeping the log elsewhere too, PostgreSQL's feed, rewrites them there).
pub fn compact_log(
    conn: &Connection,
    own: ReplicaId,
    rewritten: Option<&mut Vec<Op>>,
) -> Result<CompactReport> {
    let mut report = CompactReport::default();
    clear_pending(conn)?;
    let changes = collect_changes(conn)?;
    apply_changes(conn, own, changes, rewritten, &mut report)?;
    finish(conn, &report)?;
    Ok(report)
}

/// How many rewritten operations one transaction of [`Store::compact_log`] stores.
const REWRITES_PER_TRANSACTION: usize = 5_000;

/// Note that the log holds an erased value the next compaction removes.
pub(crate) fn mark_pending(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('compact_pending', 1)
         ON CONFLICT (key) DO UPDATE SET value = 1",
    )?
    .execute([])?;
    Ok(())
}

/// Whether the log holds erased values a compaction should remove: operations a compaction
/// had to keep until a server held them, or values erased since.
pub(crate) fn pending(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'compact_pending'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        == Some(1))
}

impl Store {
    /// Rewrite every operation of the log that holds an erased value ([`compact_log`]), in one
    /// transaction.
    ///
    /// The log is read in one read transaction, and the rewrites are stored a few thousand per
    /// write transaction: other writers wait for one of those at most, not for the whole log
    /// (a value erased meanwhile marks the next compaction due; nothing erased comes back).
    pub fn compact_log(&mut self) -> Result<CompactReport> {
        clear_pending(&self.conn)?;
        let changes = {
            let tx = self.conn.unchecked_transaction()?;
            let changes = collect_changes(&tx)?;
            tx.commit()?;
            changes
        };
        let mut report = CompactReport::default();
        let mut changes = changes.into_iter().peekable();
        while changes.peek().is_some() {
            let part: Vec<Op> = changes.by_ref().take(REWRITES_PER_TRANSACTION).collect();
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let keep = self.keep_rewritten.then_some(&mut self.rewritten);
            apply_changes(&tx, self.replica, part, keep, &mut report)?;
            tx.commit()?;
        }
        finish(&self.conn, &report)?;
        self.last_compaction = report;
        self.compacted = Some(true);
        Ok(report)
    }

    /// Compact the log again if an earlier compaction had to leave operations that no server
    /// held yet (after a sync, which may have delivered them).
    pub fn compact_if_pending(&mut self) -> Result<Option<CompactReport>> {
        if !pending(&self.conn)? {
            return Ok(None);
        }
        self.compact_log().map(Some)
    }

    /// Keep the operations compaction rewrites, for [`Store::take_rewritten`] (a server that
    /// keeps its log in PostgreSQL too rewrites them there).
    pub fn keep_rewritten(&mut self, keep: bool) {
        self.keep_rewritten = keep;
        if !keep {
            self.rewritten.clear();
        }
    }

    /// The operations compaction rewrote since the last call (with [`Store::keep_rewritten`]).
    pub fn take_rewritten(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.rewritten)
    }
}

/// What a retention purge did ([`Store::purge_personal`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Households whose note was erased.
    pub households: usize,
    /// Residents whose phone number, note or ID number was erased.
    pub residents: usize,
    /// Facts (visits, assistance steps, sessions, outreach, retractions) whose note, location
    /// or reason was erased.
    pub facts: usize,
    /// Redaction operations made (one or more per village or commune concerned).
    pub redactions: usize,
    /// Operations of this store's log rewritten without erased values.
    pub rewritten: usize,
    /// Operations kept as they were until a server holds them (signed runs not delivered).
    pub withheld: usize,
}

/// The units under `unit_code`, itself included (none when there is no such unit).
pub fn units_under(conn: &Connection, unit_code: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "WITH RECURSIVE u(code) AS (
             SELECT code FROM units WHERE code = ?1
             UNION SELECT units.code FROM units JOIN u ON units.parent_code = u.code)
         SELECT code FROM u ORDER BY code",
    )?;
    let rows = stmt.query_map([unit_code], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Whether a register was last written before `until_ms` (its stamp's physical time).
fn written_before(stamps: &Stamps, field: Field, until_ms: i64) -> bool {
    stamps
        .get(field)
        .is_some_and(|s| (s.hlc.physical_ms() as i64) < until_ms)
}

impl Store {
    /// Set how many days after its end a campaign's personal data is kept (0-3650).
    pub fn set_campaign_retention(&mut self, campaign: Uuid, days: i64) -> Result<usize> {
        if !(0..=crate::check::MAX_RETENTION_DAYS).contains(&days) {
            return Err(crate::Error::invalid(
                "retention_days",
                "a number of days from 0 to 3650",
            ));
        }
        let exists = self
            .conn
            .query_row(
                "SELECT 1 FROM campaigns WHERE id = ?1",
                [campaign.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(crate::Error::invalid("campaign_id", "an existing campaign"));
        }
        let ops = self.changed_fields(
            Entity::Campaign,
            &Key::Uuid(campaign),
            vec![(Field::Retention, Value::Int(days))],
        )?;
        Ok(self.commit_local(ops)?.len())
    }

    /// Erase, for good, the personal values recorded before `until_ms` in the units under
    /// `unit_code` (a campaign's area, when its retention has ended): households' notes;
    /// residents' phone numbers and notes, and the ID numbers of residents who no longer need
    /// help (level-2 account activated) or were deleted; facts' notes, locations and
    /// retraction reasons. Names, birth dates, addresses and everything the reports count stay.
    /// The changes are operations (`Set` to nothing, and [`Redaction`]s filed per village or
    /// commune) that every replica receives at its next sync and that compact its log. Made one
    /// unit per write transaction ([`Store::purge_unit`]), then this store's log is compacted
    /// once ([`Store::finish_purge`]); a crash in between leaves the compaction due, and a
    /// purge again finishes it.
    pub fn purge_personal(&mut self, unit_code: &str, until_ms: i64) -> Result<PurgeReport> {
        let units = units_under(&self.conn, unit_code)?;
        if units.is_empty() {
            return Err(crate::Error::invalid("unit_code", "an existing unit code"));
        }
        let mut report = PurgeReport::default();
        let mut made = 0;
        for unit in &units {
            made += self.purge_unit(unit, until_ms, &mut report)?;
        }
        self.finish_purge(made, &mut report)?;
        Ok(report)
    }

    /// One unit's part of [`Store::purge_personal`], in one write transaction: the operations
    /// that erase its values written before `until_ms`, counted into `report`. The compaction
    /// they call for is left due ([`Store::finish_purge`]). Returns how many operations it made.
    pub fn purge_unit(
        &mut self,
        unit: &str,
        until_ms: i64,
        report: &mut PurgeReport,
    ) -> Result<usize> {
        self.defer_compaction = true;
        let written = self.write(|store| purge_unit_ops(store, unit, until_ms, report));
        self.defer_compaction = false;
        Ok(written?.0.len())
    }

    /// End a purge whose units made `made` operations: compact the log (if they made none,
    /// only when a compaction is due), counted into `report`.
    pub fn finish_purge(&mut self, made: usize, report: &mut PurgeReport) -> Result<()> {
        let compaction = if made == 0 {
            self.compact_if_pending()?.unwrap_or_default()
        } else {
            self.compact_log()?
        };
        report.rewritten += compaction.rewritten;
        report.withheld += compaction.withheld;
        Ok(())
    }
}

/// The operations that erase `unit`'s personal values written before `until_ms` (households
/// and residents of a village; facts of its households and residents, and sessions and outreach
/// filed under it), with the redactions of its facts.
fn purge_unit_ops(
    store: &Store,
    unit: &str,
    until_ms: i64,
    report: &mut PurgeReport,
) -> Result<(Vec<OpBody>, ())> {
    let conn = &store.conn;
    let mut bodies = Vec::new();
    let mut changed = false;
    // Households' notes.
    let rows: Vec<(String, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT id, stamps FROM households
             WHERE village_code = ?1 AND note IS NOT NULL ORDER BY id",
        )?
        .query_map([unit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (id, stamps) in rows {
        let stamps = Stamps::decode(stamps.as_deref())?;
        if !written_before(&stamps, Field::Note, until_ms) {
            continue;
        }
        let key = Key::Uuid(
            Uuid::parse_str(&id).map_err(|e| crate::Error::Decode(format!("household id: {e}")))?,
        );
        let ops =
            store.changed_fields(Entity::Household, &key, vec![(Field::Note, Value::Null)])?;
        if !ops.is_empty() {
            report.households += 1;
            changed = true;
            bodies.extend(ops);
        }
    }
    // Residents' phone numbers, notes, and ID numbers no longer needed.
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, Option<Vec<u8>>, bool, bool, bool)> = conn
        .prepare_cached(
            "SELECT r.id, r.stamps, r.phone IS NOT NULL, r.note IS NOT NULL,
                    r.id_number IS NOT NULL AND (r.deleted = 1 OR coalesce(a.level2, 0) = 2)
             FROM households h JOIN residents r ON r.household_id = h.id
             LEFT JOIN account_state a ON a.resident_id = r.id
             WHERE h.village_code = ?1
               AND (r.phone IS NOT NULL OR r.note IS NOT NULL OR r.id_number IS NOT NULL)
             ORDER BY r.id",
        )?
        .query_map([unit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    for (id, stamps, phone, note, id_number) in rows {
        let stamps = Stamps::decode(stamps.as_deref())?;
        let fields: Vec<(Field, Value)> = [
            (Field::Phone, phone),
            (Field::Note, note),
            (Field::IdNumber, id_number),
        ]
        .into_iter()
        .filter(|(f, held)| *held && written_before(&stamps, *f, until_ms))
        .map(|(f, _)| (f, Value::Null))
        .collect();
        if fields.is_empty() {
            continue;
        }
        let key = Key::Uuid(
            Uuid::parse_str(&id).map_err(|e| crate::Error::Decode(format!("resident id: {e}")))?,
        );
        let ops = store.changed_fields(Entity::Resident, &key, fields)?;
        if !ops.is_empty() {
            report.residents += 1;
            changed = true;
            bodies.extend(ops);
        }
    }
    // Facts with a note, a location or a retraction reason.
    let facts: Vec<String> = conn
        .prepare_cached(
            "SELECT v.id FROM households h JOIN visits v ON v.household_id = h.id
             LEFT JOIN retractions x ON x.fact_id = v.id
             WHERE h.village_code = ?1 AND v.at_ms < ?2
               AND (v.note IS NOT NULL OR v.lat_e6 IS NOT NULL OR v.lon_e6 IS NOT NULL
                    OR x.reason IS NOT NULL)
             UNION ALL
             SELECT s.id FROM households h JOIN residents r ON r.household_id = h.id
             JOIN assists s ON s.resident_id = r.id
             LEFT JOIN retractions x ON x.fact_id = s.id
             WHERE h.village_code = ?1 AND s.at_ms < ?2
               AND (s.note IS NOT NULL OR x.reason IS NOT NULL)
             UNION ALL
             SELECT s.id FROM sessions s LEFT JOIN retractions x ON x.fact_id = s.id
             WHERE s.unit_code = ?1 AND s.starts_at_ms < ?2
               AND (s.note IS NOT NULL OR x.reason IS NOT NULL)
             UNION ALL
             SELECT o.id FROM outreach o LEFT JOIN retractions x ON x.fact_id = o.id
             WHERE o.unit_code = ?1 AND o.at_ms < ?2
               AND (o.note IS NOT NULL OR x.reason IS NOT NULL)
             ORDER BY 1",
        )?
        .query_map(params![unit, until_ms], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut ids = Vec::with_capacity(facts.len());
    for id in facts {
        ids.push(Uuid::parse_str(&id).map_err(|e| crate::Error::Decode(format!("fact id: {e}")))?);
    }
    report.facts += ids.len();
    let mut chunks: Vec<Vec<Uuid>> = ids
        .chunks(Redaction::MAX_FACTS)
        .map(<[Uuid]>::to_vec)
        .collect();
    if chunks.is_empty() && changed {
        // No fact here, but values were erased: the unit's devices compact their logs.
        chunks.push(Vec::new());
    }
    for facts in chunks {
        bodies.push(OpBody::Redact(Redaction {
            area: unit.to_owned(),
            facts,
        }));
        report.redactions += 1;
    }
    Ok((bodies, ()))
}
