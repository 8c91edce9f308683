//! The merge rule: how one operation changes the queryable tables, whatever order operations
//! arrive in (materialisation; DESIGN.md §4, `docs/adr/0001-operations-and-merge.md`).
//!
//! [`materialize`] is called exactly once per operation a replica holds (the log's primary key
//! on the dot guarantees it), in any order. Each branch is written so that the tables end up a
//! function of the set of operations, not of their order:
//! - `Set`: the register keeps the greatest (HLC, replica) stamp; a smaller one is a no-op.
//! - `Visit`/`Assist`: insert once by id; the row is born retracted if its retraction came first.
//! - `Retract`: a permanent mark; the earliest-stamped reason wins.
//! - account state: recomputed from the non-retracted successful steps and the roster claim,
//!   which is the join of all of them.

use crate::hlc::Hlc;
use crate::model::{AccountState, AssistStep, Entity, Field, Key, RosterStatus, Value};
use crate::op::{Op, OpBody, ReplicaId, Stamp};
use crate::text;
use crate::time::local_day;
use crate::Result;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Derived state to recompute once per transaction rather than once per operation: a roster
/// chunk touches each household once per resident, a sync page many times.
#[derive(Debug, Default)]
pub struct Deferred {
    /// Residents whose account state must be recomputed from scratch.
    accounts: BTreeSet<String>,
    /// Residents whose household's `needing` count may have changed.
    residents: BTreeSet<String>,
    /// Households whose `needing` count may have changed.
    households: BTreeSet<String>,
    /// Households whose latest visit may have changed (after a retraction).
    last_visits: BTreeSet<String>,
    /// Whether the store ever compacted its log ([`crate::redact`]): then a fact arriving
    /// after its redaction, or a personal value arriving superseded, is erased as it lands.
    pub(crate) watch: bool,
    /// Whether the batch asks for the log to be compacted before it commits.
    pub(crate) compact: bool,
    /// Whether the batch left an erased value in the log, for the next compaction.
    pub(crate) dirty: bool,
}

impl Deferred {
    /// Recompute everything noted, within the caller's transaction, before it commits.
    pub fn flush(&mut self, conn: &Connection) -> Result<()> {
        self.flush_with(&mut Statements::new(conn))
    }

    /// [`Deferred::flush`] with the batch's statements.
    pub fn flush_with(&mut self, q: &mut Statements<'_>) -> Result<()> {
        for resident in std::mem::take(&mut self.accounts) {
            recompute_account(q, &resident)?;
            self.residents.insert(resident);
        }
        for resident in std::mem::take(&mut self.residents) {
            let household: Option<String> = q
                .get(RESIDENT_HOUSEHOLD)?
                .query_row([&resident], |r| r.get(0))
                .optional()?
                .flatten();
            self.households.extend(household);
        }
        for household in std::mem::take(&mut self.households) {
            refresh_needing_with(q, &household)?;
        }
        for household in std::mem::take(&mut self.last_visits) {
            refresh_last_visit(q, &household)?;
        }
        Ok(())
    }
}

/// The prepared statements of one batch of operations (one transaction): each is taken from
/// the connection's statement cache the first time the batch needs it and kept until the batch
/// ends, instead of being looked up (hashing its SQL) and handed back for every operation.
///
/// Keeping them also keeps their bindings: rusqlite clears a statement's bindings when it goes
/// back to the cache, and SQLite (3.54) re-prepares on the next run a statement whose plan it
/// marked as depending on a bound value — which it does for the recount of a household's
/// residents and the search of its latest visit (its planner weighs a loop that filters on
/// `household_id = ?1` rather than seeks with it). Handed back after every call, those two
/// were re-prepared every call; kept, once per batch. `tests/apply_statements.rs` checks it.
pub struct Statements<'c> {
    conn: &'c Connection,
    fixed: Vec<(&'static str, CachedStatement<'c>)>,
    /// `set_fields` upserts, keyed by entity and the positions of the columns written.
    upserts: Vec<(Vec<u8>, CachedStatement<'c>)>,
}

impl<'c> Statements<'c> {
    /// No statement prepared yet.
    pub fn new(conn: &'c Connection) -> Self {
        Statements {
            conn,
            fixed: Vec::new(),
            upserts: Vec::new(),
        }
    }

    /// The connection the statements belong to.
    pub fn connection(&self) -> &'c Connection {
        self.conn
    }

    /// The statement for `sql`, prepared (or taken from the cache) on first use in the batch.
    pub fn get(&mut self, sql: &'static str) -> Result<&mut CachedStatement<'c>> {
        let i = match self
            .fixed
            .iter()
            .position(|(s, _)| std::ptr::eq(*s, sql) || *s == sql)
        {
            Some(i) => i,
            None => {
                let stmt = self.conn.prepare_cached(sql)?;
                self.fixed.push((sql, stmt));
                self.fixed.len() - 1
            }
        };
        Ok(&mut self.fixed[i].1)
    }

    /// The upsert for `key`, its SQL made by `sql` the first time in the batch.
    fn upsert(
        &mut self,
        key: &[u8],
        sql: impl FnOnce() -> String,
    ) -> Result<&mut CachedStatement<'c>> {
        let i = match self.upserts.iter().position(|(k, _)| k.as_slice() == key) {
            Some(i) => i,
            None => {
                let stmt = self.conn.prepare_cached(&sql())?;
                self.upserts.push((key.to_vec(), stmt));
                self.upserts.len() - 1
            }
        };
        Ok(&mut self.upserts[i].1)
    }
}

const RESIDENT_HOUSEHOLD: &str = "SELECT household_id FROM residents WHERE id = ?1";
const RETRACTED: &str = "SELECT EXISTS (SELECT 1 FROM retractions WHERE fact_id = ?1)";
const INSERT_VISIT: &str =
    "INSERT INTO visits (id, household_id, officer_id, at_ms, day, outcome, revisit_at_ms,
                         note, lat_e6, lon_e6, retracted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
     ON CONFLICT (id) DO NOTHING";
const VISIT_HOUSEHOLD: &str =
    "INSERT INTO households (id, last_visit_id, last_at_ms, last_day, last_outcome, revisit_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (id) DO UPDATE SET last_visit_id = excluded.last_visit_id,
         last_at_ms = excluded.last_at_ms, last_day = excluded.last_day,
         last_outcome = excluded.last_outcome, revisit_at_ms = excluded.revisit_at_ms
     WHERE households.last_at_ms IS NULL
        OR (excluded.last_at_ms, excluded.last_visit_id) > (households.last_at_ms, households.last_visit_id)";
const INSERT_ASSIST: &str =
    "INSERT INTO assists (id, resident_id, officer_id, at_ms, day, step, failure,
                          receiving_point, note, retracted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (id) DO NOTHING";
const INSERT_RETRACTION: &str =
    "INSERT INTO retractions (fact_id, reason, hlc, replica) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (fact_id) DO UPDATE SET reason = excluded.reason, hlc = excluded.hlc,
         replica = excluded.replica
     WHERE (excluded.hlc, excluded.replica) < (retractions.hlc, retractions.replica)";
const RETRACT_VISIT: &str =
    "UPDATE visits SET retracted = 1 WHERE id = ?1 AND retracted = 0 RETURNING household_id";
const RETRACT_ASSIST: &str =
    "UPDATE assists SET retracted = 1 WHERE id = ?1 AND retracted = 0 RETURNING resident_id";
const RETRACT_SESSION: &str = "UPDATE sessions SET retracted = 1 WHERE id = ?1";
const RETRACT_OUTREACH: &str = "UPDATE outreach SET retracted = 1 WHERE id = ?1";
const INSERT_SESSION: &str =
    "INSERT INTO sessions (id, unit_code, officer_id, kind, place, starts_at_ms,
                           ends_at_ms, day, applications, note, retracted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
             EXISTS (SELECT 1 FROM retractions WHERE fact_id = ?1))
     ON CONFLICT (id) DO NOTHING";
const INSERT_OUTREACH: &str =
    "INSERT INTO outreach (id, unit_code, officer_id, kind, at_ms, day, place, people,
                           note, retracted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
             EXISTS (SELECT 1 FROM retractions WHERE fact_id = ?1))
     ON CONFLICT (id) DO NOTHING";
const ROSTER_ACCOUNT: &str = "SELECT roster_account FROM residents WHERE id = ?1";
const ACCOUNT_STEPS: &str =
    "SELECT DISTINCT step FROM assists WHERE resident_id = ?1 AND retracted = 0 AND failure IS NULL";
const SET_ACCOUNT: &str =
    "INSERT INTO account_state (resident_id, level1, level2, portal) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (resident_id) DO UPDATE SET level1 = excluded.level1, level2 = excluded.level2,
         portal = excluded.portal";
const RAISE_ACCOUNT: &str =
    "INSERT INTO account_state (resident_id, level1, level2, portal) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (resident_id) DO UPDATE SET level1 = max(level1, excluded.level1),
         level2 = max(level2, excluded.level2), portal = max(portal, excluded.portal)";
const REFRESH_NEEDING: &str = "INSERT INTO households (id, needing)
     SELECT ?1, count(*) FROM residents r LEFT JOIN account_state s ON s.resident_id = r.id
      WHERE r.household_id = ?1 AND r.deleted = 0 AND coalesce(s.need, 'no_account') != 'done'
     ON CONFLICT (id) DO UPDATE SET needing = excluded.needing";
const REFRESH_LAST_VISIT: &str =
    "UPDATE households SET (last_visit_id, last_at_ms, last_day, last_outcome, revisit_at_ms) =
       (SELECT id, at_ms, day, outcome, revisit_at_ms FROM visits
         WHERE household_id = ?1 AND retracted = 0 ORDER BY at_ms DESC, id DESC LIMIT 1)
     WHERE id = ?1";

/// Whether a retraction of `fact_id` is held.
fn retracted(q: &mut Statements<'_>, fact_id: &str) -> Result<bool> {
    Ok(q.get(RETRACTED)?.query_row([fact_id], |r| r.get(0))?)
}

/// Apply one operation's effect to the materialised tables. The caller has inserted it in the
/// log (so it is new to this replica), holds a write transaction, and calls
/// [`Deferred::flush`] before committing. A batch applies its operations with
/// [`materialize_with`] and one [`Statements`].
pub fn materialize(conn: &Connection, op: &Op, deferred: &mut Deferred) -> Result<()> {
    materialize_with(&mut Statements::new(conn), op, deferred)
}

/// [`materialize`] with the batch's statements.
pub fn materialize_with(q: &mut Statements<'_>, op: &Op, deferred: &mut Deferred) -> Result<()> {
    materialize_body(q, op, deferred)?;
    if deferred.watch {
        // A fact whose redaction came first is stored without its erased values.
        let fact = match &op.body {
            OpBody::Visit(v) => Some(v.id),
            OpBody::Assist(a) => Some(a.id),
            OpBody::Session(x) => Some(x.id),
            OpBody::Outreach(x) => Some(x.id),
            OpBody::Retract { fact_id, .. } => Some(*fact_id),
            _ => None,
        };
        if let Some(id) = fact {
            let id = id.to_string();
            let conn = q.connection();
            if crate::redact::is_redacted(conn, &id)? {
                crate::redact::strip(conn, &id)?;
                deferred.dirty = true;
            }
        }
    }
    Ok(())
}

fn materialize_body(q: &mut Statements<'_>, op: &Op, deferred: &mut Deferred) -> Result<()> {
    match &op.body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => set_fields(q, op, *entity, key, fields, deferred),
        OpBody::Visit(v) => {
            // Ids as text in stack buffers (what `to_string` gives, without its allocation).
            let mut bufs = [Uuid::encode_buffer(); 3];
            let [b_id, b_household, b_officer] = &mut bufs;
            let id = &*v.id.hyphenated().encode_lower(b_id);
            let household = &*v.household_id.hyphenated().encode_lower(b_household);
            let officer = &*v.officer_id.hyphenated().encode_lower(b_officer);
            // Born retracted if its retraction came first.
            let retracted = retracted(q, id)?;
            let day = local_day(v.at_ms);
            // No `RETURNING`: it made SQLite keep a statement journal and a temporary table
            // for every insert. Whether the row is new is the number of rows changed.
            let inserted = q.get(INSERT_VISIT)?.execute(params![
                id,
                household,
                officer,
                v.at_ms,
                day,
                v.outcome.as_str(),
                v.revisit_at_ms,
                v.note,
                v.location.map(|l| l.lat_e6),
                v.location.map(|l| l.lon_e6),
                retracted,
            ])? == 1;
            // Inserted and not retracted already.
            if inserted && !retracted {
                // The household's latest visit, if this one is later (ties: greater id). The
                // household's row may not have arrived yet: then it starts with this.
                q.get(VISIT_HOUSEHOLD)?.execute(params![
                    household,
                    id,
                    v.at_ms,
                    day,
                    v.outcome.as_str(),
                    v.revisit_at_ms
                ])?;
            }
            Ok(())
        }
        OpBody::Assist(a) => {
            let mut bufs = [Uuid::encode_buffer(); 2];
            let [b_id, b_officer] = &mut bufs;
            let id = &*a.id.hyphenated().encode_lower(b_id);
            let officer = &*a.officer_id.hyphenated().encode_lower(b_officer);
            let retracted = retracted(q, id)?;
            let resident = a.resident_id.to_string();
            let inserted = q.get(INSERT_ASSIST)?.execute(params![
                id,
                resident,
                officer,
                a.at_ms,
                local_day(a.at_ms),
                a.step.as_str(),
                a.failure.map(|f| f.as_str()),
                a.receiving_point,
                a.note,
                retracted,
            ])? == 1;
            // Inserted, successful and not retracted already.
            if inserted && !retracted && a.failure.is_none() {
                raise_account(q, &resident, a.step)?;
                if matches!(
                    a.step,
                    AssistStep::Level2Activated | AssistStep::PortalGuided
                ) {
                    // The only steps that can make a resident done.
                    deferred.residents.insert(resident);
                }
            }
            Ok(())
        }
        OpBody::Retract { fact_id, reason } => {
            let id = fact_id.to_string();
            q.get(INSERT_RETRACTION)?.execute(params![
                id,
                reason,
                op.hlc.to_sql(),
                op.replica.0.as_bytes().as_slice()
            ])?;
            let household: Option<String> = q
                .get(RETRACT_VISIT)?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            deferred.last_visits.extend(household);
            let resident: Option<String> = q
                .get(RETRACT_ASSIST)?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            deferred.accounts.extend(resident);
            q.get(RETRACT_SESSION)?.execute([&id])?;
            q.get(RETRACT_OUTREACH)?.execute([&id])?;
            Ok(())
        }
        OpBody::Session(x) => {
            q.get(INSERT_SESSION)?.execute(params![
                x.id.to_string(),
                x.unit_code,
                x.officer_id.to_string(),
                x.kind.as_str(),
                x.place,
                x.starts_at_ms,
                x.ends_at_ms,
                local_day(x.starts_at_ms),
                x.applications,
                x.note,
            ])?;
            Ok(())
        }
        OpBody::Redact(r) => {
            crate::redact::apply(q.connection(), r)?;
            deferred.compact = true;
            Ok(())
        }
        OpBody::Outreach(x) => {
            q.get(INSERT_OUTREACH)?.execute(params![
                x.id.to_string(),
                x.unit_code,
                x.officer_id.to_string(),
                x.kind.as_str(),
                x.at_ms,
                local_day(x.at_ms),
                x.place,
                x.people_reached,
                x.note,
            ])?;
            Ok(())
        }
    }
}

/// The winning stamp of each last-writer-wins field of one entity row.
///
/// Kept in the row's `stamps` column as a sequence of 25-byte entries sorted by field —
/// field position in [`Field::ALL`] (1 byte), HLC (8 bytes, big-endian), replica id (16 bytes)
/// — so that one read and one write of the row merge a whole `Set` operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps(Vec<(u8, Stamp)>);

const STAMP_LEN: usize = 25;

impl Stamps {
    /// Decode the column (NULL or empty: no stamps).
    pub fn decode(bytes: Option<&[u8]>) -> Result<Stamps> {
        let bytes = bytes.unwrap_or_default();
        if !bytes.len().is_multiple_of(STAMP_LEN) {
            return Err(crate::Error::Decode(
                "stamps column of a wrong length".into(),
            ));
        }
        let mut out = Vec::with_capacity(bytes.len() / STAMP_LEN);
        for chunk in bytes.chunks_exact(STAMP_LEN) {
            let mut hlc = [0u8; 8];
            hlc.copy_from_slice(&chunk[1..9]);
            let mut replica = [0u8; 16];
            replica.copy_from_slice(&chunk[9..25]);
            out.push((
                chunk[0],
                Stamp {
                    hlc: Hlc(u64::from_be_bytes(hlc)),
                    replica: ReplicaId(Uuid::from_bytes(replica)),
                },
            ));
        }
        Ok(Stamps(out))
    }

    /// Encode for the column.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * STAMP_LEN);
        for (f, st) in &self.0 {
            out.push(*f);
            out.extend_from_slice(&st.hlc.0.to_be_bytes());
            out.extend_from_slice(st.replica.0.as_bytes());
        }
        out
    }

    /// The stamp of `field`, if it was ever set.
    pub fn get(&self, field: Field) -> Option<Stamp> {
        let pos = field_pos(field);
        self.0.iter().find(|(f, _)| *f == pos).map(|(_, s)| *s)
    }

    /// Every (field, stamp), in field order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, Stamp)> + '_ {
        self.0
            .iter()
            .filter_map(|(f, s)| Field::ALL.get(*f as usize).map(|f| (*f, *s)))
    }

    /// Merge one write: keep it if its stamp beats the held one. Returns whether it won.
    fn offer(&mut self, field: Field, stamp: Stamp) -> bool {
        let pos = field_pos(field);
        match self.0.binary_search_by_key(&pos, |(f, _)| *f) {
            Ok(i) if self.0[i].1 >= stamp => false,
            Ok(i) => {
                self.0[i].1 = stamp;
                true
            }
            Err(i) => {
                self.0.insert(i, (pos, stamp));
                true
            }
        }
    }
}

fn field_pos(field: Field) -> u8 {
    Field::ALL.iter().position(|f| *f == field).unwrap_or(0) as u8
}

/// The read of an entity row's stamps (and, for a resident, the household it is in).
fn row_sql(entity: Entity) -> &'static str {
    match entity {
        Entity::Unit => "SELECT stamps, NULL FROM units WHERE code = ?1",
        Entity::Household => "SELECT stamps, NULL FROM households WHERE id = ?1",
        Entity::Resident => "SELECT stamps, household_id FROM residents WHERE id = ?1",
        Entity::Campaign => "SELECT stamps, NULL FROM campaigns WHERE id = ?1",
        Entity::Officer => "SELECT stamps, NULL FROM officers WHERE id = ?1",
        Entity::Assignment => "SELECT stamps, NULL FROM assignments WHERE id = ?1",
        Entity::Quota => "SELECT stamps, NULL FROM quotas WHERE id = ?1",
    }
}

fn set_fields(
    q: &mut Statements<'_>,
    op: &Op,
    entity: Entity,
    key: &Key,
    fields: &[(Field, Value)],
    deferred: &mut Deferred,
) -> Result<()> {
    let key_text = key.to_string();
    let is_resident = entity == Entity::Resident;
    // One read of the row: its stamps (and, for a resident, the household it was in).
    let current: Option<(Option<Vec<u8>>, Option<String>)> = q
        .get(row_sql(entity))?
        .query_row([&key_text], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut stamps, old_household) = match &current {
        Some((bytes, household)) => (Stamps::decode(bytes.as_deref())?, household.clone()),
        None => (Stamps::default(), None),
    };
    let stamp = op.stamp();
    let had: Vec<Field> = if deferred.watch {
        fields
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| stamps.get(*f).is_some())
            .collect()
    } else {
        Vec::new()
    };
    let winners: Vec<(Field, &Value)> = fields
        .iter()
        .filter(|(f, _)| stamps.offer(*f, stamp))
        .map(|(f, v)| (*f, v))
        .collect();
    if deferred.watch
        && fields.iter().any(|(f, v)| {
            crate::redact::is_personal(entity, *f)
                && match winners.iter().find(|(w, _)| w == f) {
                    // A value superseded as it lands.
                    None => *v != Value::Null,
                    // Or one it supersedes (a held register had a winner).
                    Some(_) => had.contains(f),
                }
        })
    {
        // After a compaction, a personal value superseded stays in the log only until the next
        // one ([`crate::redact`]): this store compacts again after its next sync.
        deferred.dirty = true;
    }
    if winners.is_empty() {
        return Ok(()); // Older (or the same) writes: every field keeps its winner.
    }

    // One upsert of the row with every winning column and the new stamps.
    // A resident's search keys are derived from the name, in the same write.
    let mut derived: Vec<Value> = Vec::new();
    if is_resident {
        if let Some((_, name)) = winners.iter().find(|(f, _)| *f == Field::FullName) {
            let (folded, exact) = match name {
                Value::Text(name) => (
                    Value::Text(text::fold(name)),
                    Value::Text(text::exact_key(name)),
                ),
                _ => (Value::Null, Value::Null),
            };
            derived.extend([folded, exact]);
        }
    }
    // The statement depends on the entity, the winning fields in their order, and whether the
    // derived columns are written: that is its key among the batch's statements.
    let mut stmt_key: Vec<u8> = Vec::with_capacity(winners.len() + 2);
    stmt_key.push(entity as u8);
    stmt_key.push(u8::from(!derived.is_empty()));
    stmt_key.extend(winners.iter().map(|(f, _)| field_pos(*f)));
    let stmt = q.upsert(&stmt_key, || {
        let table = entity.table();
        let key_col = entity.key_column();
        let mut cols: Vec<&str> = winners.iter().map(|(f, _)| f.as_str()).collect();
        if !derived.is_empty() {
            cols.extend(["name_folded", "name_exact"]);
        }
        let placeholders: Vec<String> = (0..cols.len()).map(|i| format!("?{}", i + 3)).collect();
        let updates: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
        format!(
            "INSERT INTO {table} ({key_col}, stamps, {}) VALUES (?1, ?2, {})
             ON CONFLICT ({key_col}) DO UPDATE SET stamps = excluded.stamps, {}",
            cols.join(", "),
            placeholders.join(", "),
            updates.join(", ")
        )
    })?;
    stmt.raw_bind_parameter(1, &key_text)?;
    stmt.raw_bind_parameter(2, stamps.encode())?;
    for (i, (field, value)) in winners.iter().enumerate() {
        let value = match (field, value) {
            (Field::Deleted, Value::Null) => &Value::Int(0),
            _ => *value,
        };
        stmt.raw_bind_parameter(i + 3, value)?;
    }
    for (i, value) in derived.iter().enumerate() {
        stmt.raw_bind_parameter(winners.len() + i + 3, value)?;
    }
    stmt.raw_execute()?;

    if is_resident {
        let mut account = current.is_none();
        let mut households = false;
        for (field, _) in &winners {
            match field {
                Field::Account => account = true,
                Field::Household | Field::Deleted => households = true,
                _ => {}
            }
        }
        if account {
            deferred.accounts.insert(key_text.clone());
        } else if households {
            deferred.residents.insert(key_text.clone());
        }
        if households {
            deferred.households.extend(old_household);
        }
    }
    Ok(())
}

/// Recompute a resident's account state as the join of the roster's claim and every
/// non-retracted successful step (after a retraction, or when the roster's claim changes).
fn recompute_account(q: &mut Statements<'_>, resident: &str) -> Result<()> {
    let roster: Option<String> = q
        .get(ROSTER_ACCOUNT)?
        .query_row([resident], |r| r.get(0))
        .optional()?
        .flatten();
    let mut state = roster
        .and_then(|s| RosterStatus::parse(&s).ok())
        .map(AccountState::of_roster)
        .unwrap_or_default();
    {
        let mut rows = q.get(ACCOUNT_STEPS)?.query([resident])?;
        while let Some(row) = rows.next()? {
            let step: String = row.get(0)?;
            if let Ok(step) = AssistStep::parse(&step) {
                state = state.join(AccountState::of_step(step));
            }
        }
    }
    q.get(SET_ACCOUNT)?
        .execute(params![resident, state.level1, state.level2, state.portal])?;
    Ok(())
}

/// Join one more successful step into a resident's account state. A join only moves up, so
/// no recomputation is needed; a resident without a row yet gets one from the roster's claim
/// when the roster's data arrives ([`recompute_account`]). The household's count of residents
/// needing help changes only if the resident is now done — a join only moves up, so a resident
/// not done now was not done before — which only the last steps of the chains can do.
fn raise_account(q: &mut Statements<'_>, resident: &str, step: AssistStep) -> Result<()> {
    let s = AccountState::of_step(step);
    q.get(RAISE_ACCOUNT)?
        .execute(params![resident, s.level1, s.level2, s.portal])?;
    Ok(())
}

/// Recount the residents of a household who still need help.
pub(crate) fn refresh_needing(conn: &Connection, household: &str) -> Result<()> {
    refresh_needing_with(&mut Statements::new(conn), household)
}

fn refresh_needing_with(q: &mut Statements<'_>, household: &str) -> Result<()> {
    q.get(REFRESH_NEEDING)?.execute([household])?;
    Ok(())
}

/// Recompute a household's latest non-retracted visit (after a retraction).
fn refresh_last_visit(q: &mut Statements<'_>, household: &str) -> Result<()> {
    q.get(REFRESH_LAST_VISIT)?.execute([household])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Need;
    use proptest::prelude::*;

    /// The SQL that derives `account_state.need` agrees with `AccountState::need`.
    #[test]
    fn generated_need_column_matches_the_rust_rule() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            crate::schema::V1
                .split(';')
                .find(|s| s.contains("CREATE TABLE account_state"))
                .unwrap(),
        )
        .unwrap();
        for level1 in 0..3u8 {
            for level2 in 0..3u8 {
                for portal in [false, true] {
                    let id = format!("{level1}{level2}{portal}");
                    conn.execute(
                        "INSERT INTO account_state (resident_id, level1, level2, portal) VALUES (?1, ?2, ?3, ?4)",
                        params![id, level1, level2, portal],
                    )
                    .unwrap();
                    let need: String = conn
                        .query_row(
                            "SELECT need FROM account_state WHERE resident_id = ?1",
                            [&id],
                            |r| r.get(0),
                        )
                        .unwrap();
                    let state = AccountState {
                        level1,
                        level2,
                        portal,
                    };
                    assert_eq!(Need::parse(&need).unwrap(), state.need(), "{state:?}");
                }
            }
        }
    }

    fn stamp() -> impl Strategy<Value = (u8, Stamp)> {
        (0u8..4, 0u64..5, 0u128..3).prop_map(|(f, h, r)| {
            (
                f,
                Stamp {
                    hlc: Hlc(h),
                    replica: ReplicaId(Uuid::from_u128(r)),
                },
            )
        })
    }

    fn merged(writes: &[(u8, Stamp)]) -> Stamps {
        let mut s = Stamps::default();
        for (f, st) in writes {
            s.offer(Field::ALL[*f as usize], *st);
        }
        s
    }

    proptest! {
        /// Last-writer-wins registers: any order, any grouping, any repetition of the same
        /// writes ends with the same winners.
        #[test]
        fn lww_registers_commute(mut writes in proptest::collection::vec(stamp(), 0..20), seed in any::<u64>()) {
            let a = merged(&writes);
            // A permutation (deterministic from the seed).
            let n = writes.len();
            for i in 0..n {
                let j = (seed as usize).wrapping_mul(31).wrapping_add(i * 17) % n;
                writes.swap(i, j);
            }
            prop_assert_eq!(merged(&writes), a);
        }

        #[test]
        fn lww_registers_are_idempotent(writes in proptest::collection::vec(stamp(), 0..20)) {
            let mut twice = writes.clone();
            twice.extend(writes.iter().copied());
            prop_assert_eq!(merged(&twice), merged(&writes));
        }

        #[test]
        fn lww_registers_associate(a in proptest::collection::vec(stamp(), 0..8),
                                   b in proptest::collection::vec(stamp(), 0..8),
                                   c in proptest::collection::vec(stamp(), 0..8)) {
            // (a ∪ b) ∪ c versus a ∪ (b ∪ c), merging the winners of the inner group.
            let ab: Vec<_> = a.iter().chain(&b).copied().collect();
            let left = merged(&ab.iter().chain(&c).copied().collect::<Vec<_>>());
            let bc = merged(&b.iter().chain(&c).copied().collect::<Vec<_>>());
            let bc_winners: Vec<(u8, Stamp)> = bc.0.clone();
            let right = merged(&a.iter().chain(&bc_winners).copied().collect::<Vec<_>>());
            prop_assert_eq!(left, right);
        }

        #[test]
        fn stamps_round_trip(writes in proptest::collection::vec(stamp(), 0..20)) {
            let s = merged(&writes);
            prop_assert_eq!(Stamps::decode(Some(&s.encode())).unwrap(), s);
        }
    }
}
