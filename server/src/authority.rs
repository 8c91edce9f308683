//! Authority: which role may write which entity and field, within which units — decided by the
//! server for every operation a device pushes (`docs/sync-protocol.md`, "Authority").
//!
//! [`crate::scope`] answers *where* an operation lands (its village or unit) and refuses what
//! lies outside the villages an officer is given. This module answers *who may*: a device
//! may do no more than its officer may do on the dashboard. The rules, in short:
//!
//! - units (codes, parents, levels, names) and campaigns are province command's (and the
//!   console's) only, within the province;
//! - officers, assignments and quotas are written by a commune lead, district or province user
//!   within their own unit, for officers of a lower role; quotas only for units below their own;
//! - nobody changes their own role, unit or removal (only their name), nor sets their own quota;
//! - a visit, assistance step, session or outreach event names the device's own officer, or,
//!   for a lead and above, an officer of their unit; a field officer retracts only their own
//!   facts.
//!
//! Every rule reads the core tables as they stand before the operation (the batch's earlier
//! operations included), both the stored values and the ones the operation sets: moving an
//! assignment *out of* another commune is as forbidden as moving one into it.

use crate::scope::{household_village, stored_text, OfficerScope};
use doorstep_core::{Entity, Field, Key, Op, OpBody, Role, Value};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

/// The refusal of what the officer's role may not do at all.
pub const FORBIDDEN: &str = "forbidden";
/// The refusal of what lies outside the officer's unit.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

type Verdict = rusqlite::Result<Option<&'static str>>;

const OK: Verdict = Ok(None);

/// Why the officer of `scope` may not make `op`, if they may not.
pub fn refusal(conn: &Connection, scope: &OfficerScope, op: &Op) -> Verdict {
    match &op.body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => {
            let key = match key {
                Key::Uuid(u) => u.to_string(),
                Key::Code(c) => c.clone(),
            };
            let rule = Rule { conn, scope };
            match entity {
                // Where they lie is the whole rule: the scope's village check.
                Entity::Household | Entity::Resident => OK,
                Entity::Unit => rule.unit(&key, fields),
                Entity::Campaign => rule.campaign(&key, fields),
                Entity::Officer => rule.officer(&key, fields),
                Entity::Assignment => rule.assignment(&key, fields),
                Entity::Quota => rule.quota(&key, fields),
            }
        }
        OpBody::Visit(v) => credited(conn, scope, v.officer_id),
        OpBody::Assist(a) => credited(conn, scope, a.officer_id),
        OpBody::Session(x) => credited(conn, scope, x.officer_id),
        OpBody::Outreach(x) => credited(conn, scope, x.officer_id),
        OpBody::Retract { fact_id, .. } => {
            if scope.role > Role::Field {
                return OK;
            }
            match fact_officer(conn, fact_id)? {
                Some(o) if o == scope.officer.to_string() => OK,
                _ => Ok(Some(FORBIDDEN)),
            }
        }
        // Only the server erases values for good (retention, a resident's erasure).
        OpBody::Redact(_) => Ok(Some(FORBIDDEN)),
    }
}

/// Whether unit `code` is `ancestor` or lies under it.
pub fn within(conn: &Connection, code: &str, ancestor: &str) -> rusqlite::Result<bool> {
    if code == ancestor {
        return Ok(true);
    }
    // UNION (not UNION ALL) ends the walk on a cycle of parents.
    conn.prepare_cached(
        "WITH RECURSIVE up(code) AS (
             SELECT ?1
             UNION SELECT u.parent_code FROM units u JOIN up ON u.code = up.code
                   WHERE u.parent_code IS NOT NULL)
         SELECT EXISTS (SELECT 1 FROM up WHERE code = ?2)",
    )?
    .query_row([code, ancestor], |r| r.get(0))
}

/// A fact names the device's own officer, or for a lead and above an officer of their unit.
fn credited(conn: &Connection, scope: &OfficerScope, officer: Uuid) -> Verdict {
    if officer == scope.officer {
        return OK;
    }
    if scope.role == Role::Field {
        return Ok(Some(FORBIDDEN));
    }
    let Some(own) = scope.unit.as_deref() else {
        return Ok(Some(FORBIDDEN));
    };
    match officer_row(conn, &officer.to_string())? {
        Some((_, Some(unit))) if within(conn, &unit, own)? => OK,
        _ => Ok(Some(OUT_OF_SCOPE)),
    }
}

/// The officer a fact is credited to.
fn fact_officer(conn: &Connection, fact: &Uuid) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT officer_id FROM visits WHERE id = ?1
         UNION ALL SELECT officer_id FROM assists WHERE id = ?1
         UNION ALL SELECT officer_id FROM sessions WHERE id = ?1
         UNION ALL SELECT officer_id FROM outreach WHERE id = ?1",
    )?
    .query_row([fact.to_string()], |r| r.get(0))
    .optional()
}

/// A stored officer's role (field if unreadable) and unit.
fn officer_row(conn: &Connection, id: &str) -> rusqlite::Result<Option<(Role, Option<String>)>> {
    conn.prepare_cached("SELECT role, unit_code FROM officers WHERE id = ?1")?
        .query_row([id], |r| {
            let role: Option<String> = r.get(0)?;
            Ok((
                role.as_deref()
                    .and_then(|r| Role::parse(r).ok())
                    .unwrap_or(Role::Field),
                r.get(1)?,
            ))
        })
        .optional()
}

/// What an operation sets a field to: absent, cleared, or a text (integers are not keys).
fn set_to(fields: &[(Field, Value)], field: Field) -> Option<Option<&str>> {
    fields
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, v)| match v {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

/// The stored value of a field and the one the operation leaves: `(stored, effective)`.
fn before_after(
    conn: &Connection,
    table: &str,
    column: &str,
    key: &str,
    fields: &[(Field, Value)],
    field: Field,
) -> rusqlite::Result<(Option<String>, Option<String>)> {
    let stored = stored_text(conn, table, column, key)?;
    let effective = match set_to(fields, field) {
        Some(v) => v.map(str::to_owned),
        None => stored.clone(),
    };
    Ok((stored, effective))
}

struct Rule<'a> {
    conn: &'a Connection,
    scope: &'a OfficerScope,
}

impl Rule<'_> {
    /// The officer's own unit, when their role is at least `min`.
    fn own(&self, min: Role) -> Option<&str> {
        (self.scope.role >= min)
            .then_some(self.scope.unit.as_deref())
            .flatten()
    }

    fn inside(&self, code: &str, own: &str) -> rusqlite::Result<bool> {
        within(self.conn, code, own)
    }

    /// Units: province command only, within the province; a unit's new parent too.
    fn unit(&self, code: &str, fields: &[(Field, Value)]) -> Verdict {
        let Some(own) = self.own(Role::Province) else {
            return Ok(Some(FORBIDDEN));
        };
        let stored: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT parent_code FROM units WHERE code = ?1")?
            .query_row([code], |r| r.get(0))
            .optional()?;
        if stored.is_some() && !self.inside(code, own)? {
            return Ok(Some(OUT_OF_SCOPE));
        }
        match set_to(fields, Field::Parent) {
            Some(Some(parent)) if self.inside(parent, own)? => OK,
            Some(_) => Ok(Some(OUT_OF_SCOPE)),
            // A new unit must say where it lies.
            None if stored.is_none() => Ok(Some(OUT_OF_SCOPE)),
            None => OK,
        }
    }

    /// Campaigns: province command only, for units within the province.
    fn campaign(&self, key: &str, fields: &[(Field, Value)]) -> Verdict {
        let Some(own) = self.own(Role::Province) else {
            return Ok(Some(FORBIDDEN));
        };
        let (stored, effective) = before_after(
            self.conn,
            "campaigns",
            "unit_code",
            key,
            fields,
            Field::Unit,
        )?;
        for unit in [stored.as_deref(), effective.as_deref()]
            .into_iter()
            .flatten()
        {
            if !self.inside(unit, own)? {
                return Ok(Some(OUT_OF_SCOPE));
            }
        }
        Ok(effective.is_none().then_some(OUT_OF_SCOPE))
    }

    /// Officers: a lead and above, for officers of their unit with a lower role; of oneself,
    /// only the name.
    fn officer(&self, key: &str, fields: &[(Field, Value)]) -> Verdict {
        let Some(own) = self.own(Role::CommuneLead) else {
            return Ok(Some(FORBIDDEN));
        };
        if key == self.scope.officer.to_string() {
            let name_only = fields.iter().all(|(f, _)| *f == Field::Name);
            return Ok((!name_only).then_some(FORBIDDEN));
        }
        let stored = officer_row(self.conn, key)?;
        if let Some((role, unit)) = &stored {
            if *role >= self.scope.role {
                return Ok(Some(FORBIDDEN));
            }
            match unit {
                Some(u) if self.inside(u, own)? => {}
                _ => return Ok(Some(OUT_OF_SCOPE)),
            }
        }
        match set_to(fields, Field::Role) {
            Some(Some(role)) => match Role::parse(role) {
                Ok(r) if r < self.scope.role => {}
                _ => return Ok(Some(FORBIDDEN)),
            },
            Some(None) => return Ok(Some(FORBIDDEN)),
            // A new officer must be given a role.
            None if stored.is_none() => return Ok(Some(FORBIDDEN)),
            None => {}
        }
        match set_to(fields, Field::Unit) {
            Some(Some(unit)) if self.inside(unit, own)? => OK,
            Some(_) => Ok(Some(OUT_OF_SCOPE)),
            None if stored.is_none() => Ok(Some(OUT_OF_SCOPE)),
            None => OK,
        }
    }

    /// The pusher, or an officer the server holds whose unit lies in the pusher's.
    fn officer_of_unit(&self, officer: &str, own: &str) -> Verdict {
        if officer == self.scope.officer.to_string() {
            return OK;
        }
        match officer_row(self.conn, officer)? {
            Some((_, Some(unit))) if self.inside(&unit, own)? => OK,
            _ => Ok(Some(OUT_OF_SCOPE)),
        }
    }

    /// Assignments: a lead and above, of officers of their unit to villages or households in
    /// it — before and after the change.
    fn assignment(&self, key: &str, fields: &[(Field, Value)]) -> Verdict {
        let Some(own) = self.own(Role::CommuneLead) else {
            return Ok(Some(FORBIDDEN));
        };
        let t = "assignments";
        let (officer0, officer1) =
            before_after(self.conn, t, "officer_id", key, fields, Field::Officer)?;
        let (kind0, kind1) =
            before_after(self.conn, t, "target_kind", key, fields, Field::TargetKind)?;
        let (target0, target1) =
            before_after(self.conn, t, "target_id", key, fields, Field::TargetId)?;
        let Some(officer) = officer1 else {
            return Ok(Some(OUT_OF_SCOPE));
        };
        for o in [officer0.as_deref(), Some(officer.as_str())]
            .into_iter()
            .flatten()
        {
            if let Some(r) = self.officer_of_unit(o, own)? {
                return Ok(Some(r));
            }
        }
        let stored = (kind0.is_some() || target0.is_some()).then_some((kind0, target0));
        for (kind, target) in stored.into_iter().chain([(kind1, target1)]) {
            let village = match (kind.as_deref(), target) {
                (Some("village"), Some(v)) => Some(v),
                (Some("household"), Some(h)) => household_village(self.conn, &h)?,
                _ => None,
            };
            match village {
                Some(v) if self.inside(&v, own)? => {}
                _ => return Ok(Some(OUT_OF_SCOPE)),
            }
        }
        OK
    }

    /// Quotas: a lead and above, for units below their own and officers of their unit with a
    /// lower role (never their own) — before and after the change.
    fn quota(&self, key: &str, fields: &[(Field, Value)]) -> Verdict {
        let Some(own) = self.own(Role::CommuneLead) else {
            return Ok(Some(FORBIDDEN));
        };
        let t = "quotas";
        let (kind0, kind1) = before_after(
            self.conn,
            t,
            "subject_kind",
            key,
            fields,
            Field::SubjectKind,
        )?;
        let (subject0, subject1) =
            before_after(self.conn, t, "subject_id", key, fields, Field::SubjectId)?;
        let stored = (kind0.is_some() || subject0.is_some()).then_some((kind0, subject0));
        for (kind, subject) in stored.into_iter().chain([(kind1, subject1)]) {
            match (kind.as_deref(), subject) {
                (Some("unit"), Some(u)) => {
                    if u == own || !self.inside(&u, own)? {
                        return Ok(Some(OUT_OF_SCOPE));
                    }
                }
                (Some("officer"), Some(o)) => {
                    if o == self.scope.officer.to_string() {
                        return Ok(Some(FORBIDDEN));
                    }
                    match officer_row(self.conn, &o)? {
                        Some((role, _)) if role >= self.scope.role => return Ok(Some(FORBIDDEN)),
                        Some((_, Some(unit))) if self.inside(&unit, own)? => {}
                        _ => return Ok(Some(OUT_OF_SCOPE)),
                    }
                }
                _ => return Ok(Some(OUT_OF_SCOPE)),
            }
        }
        OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE units (code TEXT PRIMARY KEY, parent_code TEXT);
             INSERT INTO units VALUES ('58', NULL), ('586', '58'), ('22813', '586'),
                 ('22813-01', '22813'), ('22814', '586'), ('x', 'y'), ('y', 'x');",
        )
        .unwrap();
        c
    }

    #[test]
    fn within_walks_up_the_parents_and_ends_on_cycles() {
        let c = conn();
        assert!(within(&c, "22813-01", "58").unwrap());
        assert!(within(&c, "22813-01", "22813").unwrap());
        assert!(within(&c, "22813", "22813").unwrap());
        assert!(!within(&c, "22813-01", "22814").unwrap());
        assert!(!within(&c, "58", "586").unwrap());
        assert!(!within(&c, "unknown", "58").unwrap());
        assert!(!within(&c, "x", "58").unwrap());
        assert!(within(&c, "x", "y").unwrap());
    }
}
