//! The person's right of access (Decree 13/2023): everything the server holds about one
//! resident, found by their citizen ID number, exported for them — and every export audited.
//!
//! The export is read from the materialised view (the current values, retracted facts marked
//! as such): the resident's row, their household, the visits to it, their assistance steps and
//! their account state. Erasure blanks every personal field and deletes the resident, as
//! operations that reach every phone at its next sync ([`doorstep_core::Store::erase_resident`]);
//! the values earlier operations carried stay in operation logs until those are compacted (not
//! built yet, issue #13). Audit rows name the resident's id, never the ID number.

use super::Backend;
use crate::error::{Result, ServerError};
use crate::storage::Storage;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};

/// Every column of every row `sql` returns for `param`, as JSON objects (BLOBs — merge
/// stamps — left out: they are bookkeeping, not data about the person).
fn rows(conn: &Connection, sql: &str, param: &str) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut out = Vec::new();
    let mut q = stmt.query([param])?;
    while let Some(r) = q.next()? {
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(x) => Value::from(x),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => continue,
            };
            obj.insert(name.clone(), v);
        }
        out.push(Value::Object(obj));
    }
    Ok(out)
}

/// One resident's record: the resident, their household, its visits, their steps and state.
fn export_one(conn: &Connection, resident: &Map<String, Value>) -> Result<Value> {
    let id = resident
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let household = resident
        .get("household_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut person = resident.clone();
    person.remove("name_folded");
    person.remove("name_exact");
    let mut out = Map::new();
    out.insert("resident".into(), Value::Object(person));
    out.insert(
        "household".into(),
        rows(conn, "SELECT * FROM households WHERE id = ?1", household)?
            .into_iter()
            .next()
            .unwrap_or(Value::Null),
    );
    out.insert(
        "visits_to_household".into(),
        Value::Array(rows(
            conn,
            "SELECT * FROM visits WHERE household_id = ?1 ORDER BY at_ms, id",
            household,
        )?),
    );
    out.insert(
        "assistance_steps".into(),
        Value::Array(rows(
            conn,
            "SELECT * FROM assists WHERE resident_id = ?1 ORDER BY at_ms, id",
            id,
        )?),
    );
    out.insert(
        "account_state".into(),
        rows(
            conn,
            "SELECT level1, level2, portal FROM account_state WHERE resident_id = ?1",
            id,
        )?
        .into_iter()
        .next()
        .unwrap_or(Value::Null),
    );
    Ok(Value::Object(out))
}

/// A citizen ID number as the store keeps it: its digits (spaces allowed in between).
fn id_digits(raw: &str) -> Result<String> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if !(digits.len() == 9 || digits.len() == 12) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServerError::BadRequest(
            "invalid id_number: expected 12 digits (a citizen ID card) or 9 (an old ID card)"
                .into(),
        ));
    }
    Ok(digits)
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Erase the resident(s) with this ID number ([`doorstep_core::Store::erase_resident`]).
    /// Returns how many were erased; audited as `resident_erase` (target: their ids, or `-`).
    pub fn erase_resident(&self, actor: &str, id_number: &str, now_ms: i64) -> Result<usize> {
        let digits = id_digits(id_number)?;
        self.local_write(actor, "resident_erase", now_ms, |s| {
            let ids: Vec<String> = s
                .connection()
                .prepare("SELECT id FROM residents WHERE id_number = ?1 ORDER BY id")?
                .query_map([&digits], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            for id in &ids {
                let id = uuid::Uuid::parse_str(id).map_err(|_| {
                    ServerError::Internal("a resident id that is not a UUID".into())
                })?;
                s.erase_resident(id)?;
            }
            let target = if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(",")
            };
            Ok((ids.len(), target, format!("erased={}", ids.len())))
        })
    }

    /// Everything held about the resident(s) with this ID number (one per campaign roster
    /// they are on), as JSON; audited as `resident_export` (target: each resident's id, or `-`
    /// when none was found; never the ID number).
    pub fn export_resident(&self, actor: &str, id_number: &str, now_ms: i64) -> Result<Value> {
        let digits = id_digits(id_number)?;
        let records = self.view(|c| {
            rows(
                c,
                "SELECT * FROM residents WHERE id_number = ?1 ORDER BY id",
                &digits,
            )?
            .iter()
            .filter_map(Value::as_object)
            .map(|r| export_one(c, r))
            .collect::<Result<Vec<_>>>()
        })?;
        let ids: Vec<String> = records
            .iter()
            .filter_map(|r| r["resident"]["id"].as_str().map(str::to_owned))
            .collect();
        self.write(|t| {
            if ids.is_empty() {
                t.audit(now_ms, actor, "resident_export", "-", "found=0")?;
            }
            for id in &ids {
                t.audit(
                    now_ms,
                    actor,
                    "resident_export",
                    id,
                    &format!("found={}", ids.len()),
                )?;
            }
            Ok(())
        })?;
        Ok(serde_json::json!({
            "exported_at_ms": now_ms,
            "residents": records,
        }))
    }
}
