//! Materialisation: how one operation changes the queryable tables.
//!
//! [`materialize`] is called exactly once per operation a replica holds (the log's primary key
//! on the dot guarantees it), in any order. Each branch is written so that the tables end up a
//! function of the set of operations, not of their order:
//! - `Set`: the register keeps the greatest (HLC, replica) stamp; a smaller one is a no-op.
//! - `Visit`/`Assist`: insert once by id; the row is born retracted if its retraction came first.
//! - `Retract`: a permanent mark; the earliest-stamped reason wins.
//! - account state: recomputed from the non-retracted successful steps and the roster claim,
//!   which is the join of all of them.

use crate::model::{AccountState, AssistStep, Entity, Field, Key, RosterStatus, Value};
use crate::op::{Op, OpBody};
use crate::text;
use crate::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// Vietnam's offset from UTC (no daylight saving): the day a visit counts for is local.
pub const LOCAL_OFFSET_MS: i64 = 7 * 3600 * 1000;

/// The local (UTC+7) calendar day of a Unix-millisecond instant, as `YYYY-MM-DD`.
pub fn local_day(at_ms: i64) -> String {
    let secs = (at_ms + LOCAL_OFFSET_MS).div_euclid(1000);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "0000-00-00".to_owned())
}

/// Apply one operation's effect to the materialised tables. The caller has inserted it in the
/// log (so it is new to this replica) and holds a write transaction.
pub fn materialize(conn: &Connection, op: &Op) -> Result<()> {
    match &op.body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => set_fields(conn, op, *entity, key, fields),
        OpBody::Visit(v) => {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO visits (id, household_id, officer_id, at_ms, day, outcome, revisit_at_ms,
                                     note, lat_e6, lon_e6, retracted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                         EXISTS (SELECT 1 FROM retractions WHERE fact_id = ?1))
                 ON CONFLICT (id) DO NOTHING",
            )?;
            stmt.execute(params![
                v.id.to_string(),
                v.household_id.to_string(),
                v.officer_id.to_string(),
                v.at_ms,
                local_day(v.at_ms),
                v.outcome.as_str(),
                v.revisit_at_ms,
                v.note,
                v.location.map(|l| l.lat_e6),
                v.location.map(|l| l.lon_e6),
            ])?;
            Ok(())
        }
        OpBody::Assist(a) => {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO assists (id, resident_id, officer_id, at_ms, day, step, failure,
                                      receiving_point, note, retracted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                         EXISTS (SELECT 1 FROM retractions WHERE fact_id = ?1))
                 ON CONFLICT (id) DO NOTHING",
            )?;
            let resident = a.resident_id.to_string();
            let n = stmt.execute(params![
                a.id.to_string(),
                resident,
                a.officer_id.to_string(),
                a.at_ms,
                local_day(a.at_ms),
                a.step.as_str(),
                a.failure.map(|f| f.as_str()),
                a.receiving_point,
                a.note,
            ])?;
            if n > 0 && a.failure.is_none() {
                recompute_account(conn, &resident)?;
            }
            Ok(())
        }
        OpBody::Retract { fact_id, reason } => {
            let id = fact_id.to_string();
            let mut stmt = conn.prepare_cached(
                "INSERT INTO retractions (fact_id, reason, hlc, replica) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fact_id) DO UPDATE SET reason = excluded.reason, hlc = excluded.hlc,
                     replica = excluded.replica
                 WHERE (excluded.hlc, excluded.replica) < (retractions.hlc, retractions.replica)",
            )?;
            stmt.execute(params![
                id,
                reason,
                op.hlc.to_sql(),
                op.replica.0.as_bytes().as_slice()
            ])?;
            conn.prepare_cached("UPDATE visits SET retracted = 1 WHERE id = ?1")?
                .execute([&id])?;
            let resident: Option<String> = conn
                .prepare_cached(
                    "UPDATE assists SET retracted = 1 WHERE id = ?1 AND retracted = 0 RETURNING resident_id",
                )?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            if let Some(resident) = resident {
                recompute_account(conn, &resident)?;
            }
            Ok(())
        }
    }
}

fn set_fields(
    conn: &Connection,
    op: &Op,
    entity: Entity,
    key: &Key,
    fields: &[(Field, Value)],
) -> Result<()> {
    let key_text = key.to_string();
    let ours = (op.hlc.to_sql(), op.replica.0.as_bytes().as_slice());
    // The stamps of this entity's registers, in one look-up (a prefix of the primary key).
    let mut current: Vec<(String, i64, Vec<u8>)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT field, hlc, replica FROM registers WHERE entity = ?1 AND key = ?2",
        )?;
        let mut rows = stmt.query(params![entity.as_str(), key_text])?;
        while let Some(row) = rows.next()? {
            current.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    let mut winners: Vec<(Field, &Value)> = Vec::with_capacity(fields.len());
    for (field, value) in fields {
        let beaten = current
            .iter()
            .any(|(f, hlc, replica)| f == field.as_str() && ours <= (*hlc, replica.as_slice()));
        if !beaten {
            winners.push((*field, value));
        }
    }
    if winners.is_empty() {
        return Ok(()); // Older (or the same) writes: every register keeps its winner.
    }
    let mut reg = conn.prepare_cached(
        "INSERT INTO registers (entity, key, field, hlc, replica) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (entity, key, field) DO UPDATE SET hlc = excluded.hlc, replica = excluded.replica",
    )?;
    for (field, _) in &winners {
        reg.execute(params![
            entity.as_str(),
            key_text,
            field.as_str(),
            ours.0,
            ours.1
        ])?;
    }

    // One upsert of the row with every winning column.
    let table = entity.table();
    let key_col = entity.key_column();
    let cols: Vec<&str> = winners.iter().map(|(f, _)| f.as_str()).collect();
    let placeholders: Vec<String> = (0..cols.len()).map(|i| format!("?{}", i + 2)).collect();
    let updates: Vec<String> = cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({key_col}, {}) VALUES (?1, {}) ON CONFLICT ({key_col}) DO UPDATE SET {}",
        cols.join(", "),
        placeholders.join(", "),
        updates.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.raw_bind_parameter(1, &key_text)?;
    for (i, (field, value)) in winners.iter().enumerate() {
        let value = match (field, value) {
            (Field::Deleted, Value::Null) => &Value::Int(0),
            _ => *value,
        };
        stmt.raw_bind_parameter(i + 2, value)?;
    }
    stmt.raw_execute()?;

    if entity == Entity::Resident {
        for (field, value) in &winners {
            match field {
                Field::FullName => {
                    let (folded, exact) = match value {
                        Value::Text(name) => (Some(text::fold(name)), Some(text::exact_key(name))),
                        _ => (None, None),
                    };
                    conn.prepare_cached(
                        "UPDATE residents SET name_folded = ?1, name_exact = ?2 WHERE id = ?3",
                    )?
                    .execute(params![folded, exact, key_text])?;
                }
                Field::Account => recompute_account(conn, &key_text)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Recompute a resident's account state as the join of the roster's claim and every
/// non-retracted successful step.
pub fn recompute_account(conn: &Connection, resident: &str) -> Result<()> {
    let roster: Option<String> = conn
        .prepare_cached("SELECT roster_account FROM residents WHERE id = ?1")?
        .query_row([resident], |r| r.get(0))
        .optional()?
        .flatten();
    let mut state = roster
        .and_then(|s| RosterStatus::parse(&s).ok())
        .map(AccountState::of_roster)
        .unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT step FROM assists WHERE resident_id = ?1 AND retracted = 0 AND failure IS NULL",
    )?;
    let mut rows = stmt.query([resident])?;
    while let Some(row) = rows.next()? {
        let step: String = row.get(0)?;
        if let Ok(step) = AssistStep::parse(&step) {
            state = state.join(AccountState::of_step(step));
        }
    }
    conn.prepare_cached(
        "INSERT INTO account_state (resident_id, level1, level2, portal, need) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (resident_id) DO UPDATE SET level1 = excluded.level1, level2 = excluded.level2,
             portal = excluded.portal, need = excluded.need",
    )?
    .execute(params![
        resident,
        state.level1,
        state.level2,
        state.portal,
        state.need().as_str()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_is_vietnam_time() {
        // 2023-06-26 17:30 UTC is 2023-06-27 00:30 in Vietnam.
        let at = chrono::NaiveDate::from_ymd_opt(2023, 6, 26)
            .unwrap()
            .and_hms_opt(17, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        assert_eq!(local_day(at), "2023-06-27");
    }
}
