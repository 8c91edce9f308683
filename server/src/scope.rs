//! Scope: which villages an officer may see and change, and which village an operation is
//! about (DESIGN.md §5–6).
//!
//! Everything a device exchanges is keyed by *area*, a village code. An operation's area is
//! found from the operation itself and the server's materialised tables as they stand when the
//! operation is applied (so a batch that creates a household and then its residents checks
//! out). Officers, assignments and quotas are filed under the unit or village they belong to,
//! so a device receives those of its own commune (and the district and province above it), not
//! the whole province's; units and campaigns have no area: every device receives them. Only
//! commune leads and above may change any of that reference data.

use doorstep_core::{Entity, Field, Key, Op, OpBody, Role, Value};
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeSet;
use uuid::Uuid;

pub use crate::limits::MAX_AHEAD_MS;

/// What an operation concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    /// Reference data every device receives.
    Reference,
    /// A village. `from` is the village a household or resident leaves, when the operation
    /// moves it: both must be in the pusher's scope.
    Village {
        /// The village the operation is filed under.
        code: String,
        /// The village it moves out of, if it moves.
        from: Option<String>,
    },
    /// Reference data about one administrative unit or village: an officer of a commune, an
    /// assignment of a village, a quota of a district. Devices whose villages lie in it (or are
    /// it) receive it.
    Unit(String),
    /// Field work filed under a commune or village rather than a household: a receiving-point
    /// session, an outreach event. Field officers may record it in their villages and in the
    /// units above them; devices whose villages lie in it receive it.
    Activity(String),
    /// It names a household, resident or fact this server does not hold (yet).
    Unknown,
}

impl Area {
    /// The feed's `area` column: `None` for reference data.
    pub fn feed_area(&self) -> Option<&str> {
        match self {
            Area::Village { code, .. } | Area::Unit(code) | Area::Activity(code) => Some(code),
            _ => None,
        }
    }

    /// The feed's `from_area` column: the village a move leaves, `None` for anything else.
    pub fn from_area(&self) -> Option<&str> {
        match self {
            Area::Village { from, .. } => from.as_deref(),
            _ => None,
        }
    }
}

/// The id of the household or resident an operation sets (what a move moves): `None` for any
/// other operation.
pub fn moved_id(op: &Op) -> Option<String> {
    match &op.body {
        OpBody::Set {
            entity: Entity::Household | Entity::Resident,
            key: Key::Uuid(id),
            ..
        } => Some(id.to_string()),
        _ => None,
    }
}

/// What an officer may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerScope {
    /// The officer.
    pub officer: Uuid,
    /// The officer's role (`field` if the server does not know the officer).
    pub role: Role,
    /// The officer's own unit (their commune, district or province), if the server knows it.
    pub unit: Option<String>,
    /// The villages the officer is given.
    pub areas: BTreeSet<String>,
    /// The units whose reference data the officer's devices receive: the officer's own unit and
    /// every unit above one of their villages (commune, district, province).
    pub units: BTreeSet<String>,
}

impl OfficerScope {
    /// Every feed area the officer's devices receive (villages and units).
    pub fn feed_areas(&self) -> BTreeSet<String> {
        self.areas.union(&self.units).cloned().collect()
    }
}

/// The officer's current scope: villages of their active village and household assignments,
/// plus, for a commune lead, every village of their commune, and for district and province
/// command every village under their unit.
pub fn officer_scope(conn: &Connection, officer_id: Uuid) -> rusqlite::Result<OfficerScope> {
    let id = officer_id.to_string();
    let row: Option<(Option<String>, Option<String>, i64)> = conn
        .prepare_cached("SELECT role, unit_code, deleted FROM officers WHERE id = ?1")?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((role, unit, deleted)) = row else {
        return Ok(OfficerScope {
            officer: officer_id,
            role: Role::Field,
            unit: None,
            areas: BTreeSet::new(),
            units: BTreeSet::new(),
        });
    };
    let role = role
        .as_deref()
        .and_then(|r| Role::parse(r).ok())
        .unwrap_or(Role::Field);
    let mut areas = BTreeSet::new();
    let mut units = BTreeSet::new();
    if deleted != 0 {
        return Ok(OfficerScope {
            officer: officer_id,
            role,
            unit: None,
            areas,
            units,
        });
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT target_id FROM assignments
             WHERE officer_id = ?1 AND target_kind = 'village' AND active = 1
               AND target_id IS NOT NULL
             UNION
             SELECT h.village_code FROM assignments a JOIN households h ON h.id = a.target_id
             WHERE a.officer_id = ?1 AND a.target_kind = 'household' AND a.active = 1
               AND h.village_code IS NOT NULL",
        )?;
        for v in stmt.query_map([&id], |r| r.get::<_, String>(0))? {
            areas.insert(v?);
        }
    }
    let own_unit = unit.clone();
    if let Some(unit) = unit {
        let sql = match role {
            Role::Field => None,
            Role::CommuneLead => {
                Some("SELECT code FROM units WHERE parent_code = ?1 AND level = 'village'")
            }
            Role::District | Role::Province => Some(
                "WITH RECURSIVE sub(code) AS (
                     SELECT code FROM units WHERE parent_code = ?1
                     UNION SELECT u.code FROM units u JOIN sub ON u.parent_code = sub.code)
                 SELECT u.code FROM units u JOIN sub ON u.code = sub.code
                 WHERE u.level = 'village'",
            ),
        };
        if let Some(sql) = sql {
            let mut stmt = conn.prepare_cached(sql)?;
            for v in stmt.query_map([&unit], |r| r.get::<_, String>(0))? {
                areas.insert(v?);
            }
        }
        units.insert(unit);
    }
    // The units above every village (its commune, district, province), and for district and
    // province command every unit inside theirs (their communes' officers and quotas).
    let mut up = conn.prepare_cached(
        "WITH RECURSIVE up(code) AS (
             SELECT parent_code FROM units WHERE code = ?1
             UNION SELECT u.parent_code FROM units u JOIN up ON u.code = up.code)
         SELECT code FROM up WHERE code IS NOT NULL",
    )?;
    for village in &areas {
        for u in up.query_map([village], |r| r.get::<_, String>(0))? {
            units.insert(u?);
        }
    }
    if let (Role::District | Role::Province, Some(unit)) = (role, &own_unit) {
        let mut down = conn.prepare_cached(
            "WITH RECURSIVE sub(code) AS (
                 SELECT code FROM units WHERE parent_code = ?1
                 UNION SELECT u.code FROM units u JOIN sub ON u.parent_code = sub.code)
             SELECT u.code FROM units u JOIN sub ON u.code = sub.code WHERE u.level != 'village'",
        )?;
        for u in down.query_map([unit], |r| r.get::<_, String>(0))? {
            units.insert(u?);
        }
    }
    Ok(OfficerScope {
        officer: officer_id,
        role,
        unit: own_unit,
        areas,
        units,
    })
}

fn text_field(fields: &[(Field, Value)], field: Field) -> Option<&str> {
    fields.iter().find_map(|(f, v)| match (f, v) {
        (f, Value::Text(t)) if *f == field => Some(t.as_str()),
        _ => None,
    })
}

pub(crate) fn household_village(
    conn: &Connection,
    household: &str,
) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT village_code FROM households WHERE id = ?1")?
        .query_row([household], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

fn resident_household(conn: &Connection, resident: &str) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT household_id FROM residents WHERE id = ?1")?
        .query_row([resident], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

fn resident_village(conn: &Connection, resident: &str) -> rusqlite::Result<Option<String>> {
    match resident_household(conn, resident)? {
        Some(h) => household_village(conn, &h),
        None => Ok(None),
    }
}

/// Reference data filed under a unit, or sent to everyone if the unit is not known.
fn unit_area(code: Option<String>) -> Area {
    code.map_or(Area::Reference, Area::Unit)
}

/// A text column of a materialised row (`table` and `column` are constants of this module).
pub(crate) fn stored_text(
    conn: &Connection,
    table: &str,
    column: &str,
    id: &str,
) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {column} FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// File a move: the new village (if the operation sets one) or the stored one.
fn moved(new: Option<String>, stored: Option<String>) -> Area {
    match (new, stored) {
        (Some(code), stored) => {
            let from = stored.filter(|s| *s != code);
            Area::Village { code, from }
        }
        (None, Some(code)) => Area::Village { code, from: None },
        (None, None) => Area::Unknown,
    }
}

/// The area of an operation, against the store as it stands before it is applied.
pub fn op_area(conn: &Connection, op: &Op) -> rusqlite::Result<Area> {
    let village =
        |v: Option<String>| v.map_or(Area::Unknown, |code| Area::Village { code, from: None });
    Ok(match &op.body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => {
            let key = match key {
                Key::Uuid(u) => u.to_string(),
                Key::Code(c) => c.clone(),
            };
            match entity {
                Entity::Household => moved(
                    text_field(fields, Field::Village).map(str::to_owned),
                    household_village(conn, &key)?,
                ),
                Entity::Resident => {
                    let new = match text_field(fields, Field::Household) {
                        Some(h) => Some(household_village(conn, h)?),
                        None => None,
                    };
                    let stored = resident_village(conn, &key)?;
                    match new {
                        // It names a household this server does not hold.
                        Some(None) => Area::Unknown,
                        Some(new) => moved(new, stored),
                        None => moved(None, stored),
                    }
                }
                Entity::Unit | Entity::Campaign => Area::Reference,
                Entity::Officer => unit_area(
                    text_field(fields, Field::Unit)
                        .map(str::to_owned)
                        .or(stored_text(conn, "officers", "unit_code", &key)?),
                ),
                Entity::Assignment => {
                    let kind = text_field(fields, Field::TargetKind)
                        .map(str::to_owned)
                        .or(stored_text(conn, "assignments", "target_kind", &key)?);
                    let target = text_field(fields, Field::TargetId)
                        .map(str::to_owned)
                        .or(stored_text(conn, "assignments", "target_id", &key)?);
                    match (kind.as_deref(), target) {
                        (Some("village"), Some(v)) => Area::Unit(v),
                        (Some("household"), Some(h)) => unit_area(household_village(conn, &h)?),
                        _ => Area::Reference,
                    }
                }
                Entity::Quota => {
                    let kind = text_field(fields, Field::SubjectKind)
                        .map(str::to_owned)
                        .or(stored_text(conn, "quotas", "subject_kind", &key)?);
                    let subject = text_field(fields, Field::SubjectId)
                        .map(str::to_owned)
                        .or(stored_text(conn, "quotas", "subject_id", &key)?);
                    match (kind.as_deref(), subject) {
                        (Some("unit"), Some(u)) => Area::Unit(u),
                        (Some("officer"), Some(o)) => {
                            unit_area(stored_text(conn, "officers", "unit_code", &o)?)
                        }
                        _ => Area::Reference,
                    }
                }
            }
        }
        OpBody::Visit(v) => village(household_village(conn, &v.household_id.to_string())?),
        OpBody::Assist(a) => village(resident_village(conn, &a.resident_id.to_string())?),
        OpBody::Redact(r) => Area::Unit(r.area.clone()),
        OpBody::Retract { fact_id, .. } => {
            let id = fact_id.to_string();
            let visit_household: Option<String> = conn
                .prepare_cached("SELECT household_id FROM visits WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            if let Some(h) = visit_household {
                village(household_village(conn, &h)?)
            } else {
                let resident: Option<String> = conn
                    .prepare_cached("SELECT resident_id FROM assists WHERE id = ?1")?
                    .query_row([&id], |r| r.get(0))
                    .optional()?;
                match resident {
                    Some(r) => village(resident_village(conn, &r)?),
                    None => {
                        let unit: Option<String> = conn
                            .prepare_cached(
                                "SELECT unit_code FROM sessions WHERE id = ?1
                                 UNION ALL SELECT unit_code FROM outreach WHERE id = ?1",
                            )?
                            .query_row([&id], |r| r.get(0))
                            .optional()?;
                        unit.map_or(Area::Unknown, Area::Activity)
                    }
                }
            }
        }
        OpBody::Session(x) => Area::Activity(x.unit_code.clone()),
        OpBody::Outreach(x) => Area::Activity(x.unit_code.clone()),
    })
}

/// Where a console write remembers the village each household and resident it moves leaves
/// (per connection, emptied after each write).
const CONSOLE_MOVES: &str =
    "CREATE TEMP TABLE IF NOT EXISTS console_moves (id TEXT PRIMARY KEY, from_area TEXT NOT NULL)";

/// Before a console write on the server's own store: remember, as the write changes the
/// tables, the village each household it moves leaves and each resident it moves leaves (its
/// household's). A console write is filed in the feed after it is applied, when the tables
/// already show the new village ([`console_op_area`]); triggers of this connection only, until
/// [`forget_console_moves`].
pub fn remember_console_moves(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "{CONSOLE_MOVES};
         DELETE FROM temp.console_moves;
         CREATE TEMP TRIGGER IF NOT EXISTS console_household_moves
             AFTER UPDATE OF village_code ON households
             WHEN OLD.village_code IS NOT NULL AND OLD.village_code IS NOT NEW.village_code
         BEGIN
             INSERT OR IGNORE INTO console_moves VALUES (OLD.id, OLD.village_code);
         END;
         CREATE TEMP TRIGGER IF NOT EXISTS console_resident_moves
             AFTER UPDATE OF household_id ON residents
             WHEN OLD.household_id IS NOT NULL AND OLD.household_id IS NOT NEW.household_id
         BEGIN
             INSERT OR IGNORE INTO console_moves
                 SELECT OLD.id, village_code FROM households
                 WHERE id = OLD.household_id AND village_code IS NOT NULL;
         END;"
    ))
}

/// After a console write's operations are filed: stop remembering moves.
pub fn forget_console_moves(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS temp.console_household_moves;
         DROP TRIGGER IF EXISTS temp.console_resident_moves;
         {CONSOLE_MOVES};
         DELETE FROM temp.console_moves;"
    ))
}

/// The area of one of the server's own operations (a console write), filed after it was
/// applied: as [`op_area`], and for a move the village it left as the write remembered it
/// ([`remember_console_moves`]; none remembered: not reported as a move).
pub fn console_op_area(conn: &Connection, op: &Op) -> rusqlite::Result<Area> {
    let area = op_area(conn, op)?;
    let moving = match &op.body {
        OpBody::Set {
            entity: Entity::Household,
            fields,
            ..
        } => fields.iter().any(|(f, _)| *f == Field::Village),
        OpBody::Set {
            entity: Entity::Resident,
            fields,
            ..
        } => fields.iter().any(|(f, _)| *f == Field::Household),
        _ => false,
    };
    let (Area::Village { code, from: None }, true, Some(id)) = (&area, moving, moved_id(op)) else {
        return Ok(area);
    };
    conn.execute_batch(CONSOLE_MOVES)?;
    let from: Option<String> = conn
        .prepare_cached("SELECT from_area FROM temp.console_moves WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    Ok(Area::Village {
        code: code.clone(),
        from: from.filter(|f| f != code),
    })
}

/// The moves the feed holds, as the batch check asks for them (each storage's feed).
pub trait Moves {
    /// `(village left, the move)` of every move of the household or resident `id` filed in
    /// the feed.
    fn moves_of(&mut self, id: &str) -> crate::error::Result<Vec<(String, Op)>>;
}

/// The households and residents a fact is about: a visit's household; an assistance step's
/// resident and their household; a retraction's fact's. Nothing for any other operation.
fn fact_subjects(conn: &Connection, op: &Op) -> rusqlite::Result<Vec<String>> {
    let resident_and_household = |r: String| -> rusqlite::Result<Vec<String>> {
        let h = resident_household(conn, &r)?;
        Ok(std::iter::once(r).chain(h).collect())
    };
    Ok(match &op.body {
        OpBody::Visit(v) => vec![v.household_id.to_string()],
        OpBody::Assist(a) => resident_and_household(a.resident_id.to_string())?,
        OpBody::Retract { fact_id, .. } => {
            let id = fact_id.to_string();
            let visit: Option<String> = conn
                .prepare_cached("SELECT household_id FROM visits WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            match visit {
                Some(h) => vec![h],
                None => {
                    let resident: Option<String> = conn
                        .prepare_cached("SELECT resident_id FROM assists WHERE id = ?1")?
                        .query_row([&id], |r| r.get(0))
                        .optional()?;
                    match resident {
                        Some(r) => resident_and_household(r)?,
                        None => Vec::new(),
                    }
                }
            }
        }
        _ => Vec::new(),
    })
}

/// Whether a fact (a visit, an assistance step, a retraction) outside the officer's villages
/// is about a household or resident that moved out of one of them, by a move stamped after
/// the fact: work recorded there before the device could know of the move. Such a fact is
/// taken, filed where the household now lies (`docs/sync-protocol.md`, "Scope that shrinks").
pub fn recorded_before_move(
    conn: &Connection,
    moves: &mut dyn Moves,
    scope: &OfficerScope,
    op: &Op,
) -> crate::error::Result<bool> {
    for id in fact_subjects(conn, op)? {
        for (from, mv) in moves.moves_of(&id)? {
            if scope.areas.contains(&from) && op.hlc < mv.hlc {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The refusal of an operation outside the officer's villages (or about what the server does
/// not hold).
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Why an operation pushed by an officer is refused, if it is.
pub fn refusal(scope: &OfficerScope, op: &Op, area: &Area, now_ms: i64) -> Option<&'static str> {
    match area {
        Area::Unknown => return Some(OUT_OF_SCOPE),
        Area::Reference | Area::Unit(_) => {
            if scope.role == Role::Field {
                return Some("forbidden");
            }
        }
        Area::Activity(code) => {
            if !scope.areas.contains(code) && !scope.units.contains(code) {
                return Some(OUT_OF_SCOPE);
            }
        }
        Area::Village { code, from } => {
            let inside = |v: &String| scope.areas.contains(v);
            if !inside(code) || from.as_ref().is_some_and(|f| !inside(f)) {
                return Some(OUT_OF_SCOPE);
            }
        }
    }
    if stamped_ahead(op, now_ms) {
        return Some(CLOCK_AHEAD);
    }
    None
}

/// The refusal of a last-writer-wins change stamped too far ahead.
pub const CLOCK_AHEAD: &str = "clock_ahead";

/// Whether `op` is a last-writer-wins change stamped more than [`MAX_AHEAD_MS`] ahead of
/// `now_ms` (facts are never: their stamps move no clock, ADR 0002).
pub fn stamped_ahead(op: &Op, now_ms: i64) -> bool {
    matches!(op.body, OpBody::Set { .. })
        && op.hlc.physical_ms() as i64 > now_ms.saturating_add(MAX_AHEAD_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::{Hlc, ReplicaId};

    fn op(body: OpBody, physical: u64) -> Op {
        Op {
            replica: ReplicaId(Uuid::from_u128(1)),
            counter: 1,
            hlc: Hlc::new(physical, 0),
            body,
        }
    }

    #[test]
    fn refusals_follow_role_area_and_clock() {
        let field = OfficerScope {
            officer: Uuid::nil(),
            role: Role::Field,
            unit: None,
            areas: ["A".to_owned()].into(),
            units: BTreeSet::new(),
        };
        let lead = OfficerScope {
            role: Role::CommuneLead,
            ..field.clone()
        };
        let now = 1_700_000_000_000i64;
        let set = op(
            OpBody::Set {
                entity: Entity::Household,
                key: Key::Uuid(Uuid::nil()),
                fields: vec![(Field::Note, Value::Null)],
            },
            now as u64,
        );
        let a = Area::Village {
            code: "A".into(),
            from: None,
        };
        let b = Area::Village {
            code: "B".into(),
            from: None,
        };
        let a_from_b = Area::Village {
            code: "A".into(),
            from: Some("B".into()),
        };
        assert_eq!(refusal(&field, &set, &a, now), None);
        assert_eq!(refusal(&field, &set, &b, now), Some("out_of_scope"));
        assert_eq!(refusal(&field, &set, &a_from_b, now), Some("out_of_scope"));
        assert_eq!(
            refusal(&field, &set, &Area::Unknown, now),
            Some("out_of_scope")
        );
        assert_eq!(
            refusal(&field, &set, &Area::Reference, now),
            Some("forbidden")
        );
        assert_eq!(refusal(&lead, &set, &Area::Reference, now), None);
        let ahead = op(set.body.clone(), (now + MAX_AHEAD_MS + 1) as u64);
        assert_eq!(refusal(&field, &ahead, &a, now), Some("clock_ahead"));
        let fact = op(
            OpBody::Retract {
                fact_id: Uuid::nil(),
                reason: None,
            },
            (now + MAX_AHEAD_MS + 1) as u64,
        );
        assert_eq!(refusal(&field, &fact, &a, now), None);
        let field_in_commune = OfficerScope {
            units: ["C".to_owned()].into(),
            ..field.clone()
        };
        assert_eq!(
            refusal(&field_in_commune, &fact, &Area::Activity("C".into()), now),
            None
        );
        assert_eq!(
            refusal(&field_in_commune, &fact, &Area::Activity("A".into()), now),
            None
        );
        assert_eq!(
            refusal(&field_in_commune, &fact, &Area::Activity("D".into()), now),
            Some("out_of_scope")
        );
    }
}
