//! Reading the store: one function per table (or per query), each returning its plain rows.
//! No counting happens here; [`super::count`] and [`super::snapshot`] turn the rows into
//! aggregates.
//!
//! The tables with a row per resident or per step (account states, assistance steps, visits)
//! are streamed: their function calls `each` for every row, whose text columns borrow from
//! the statement, so that a province's millions of rows are never held in memory. The small
//! tables come back as a `Vec`.

use super::time::parse_day;
use super::types::CampaignInfo;
use crate::error::Result;
use chrono::NaiveDate;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

/// The store's change fingerprint: the highest counter of every replica it holds, summed,
/// and how many replicas. Index look-ups only.
pub fn fingerprint(conn: &Connection) -> Result<(i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum((SELECT coalesce(max(counter), 0) FROM oplog o
                                   WHERE o.replica = r.replica)), 0), count(*)
               FROM (SELECT replica FROM replicas
                     UNION SELECT value FROM meta WHERE key = 'replica_id') r",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Whether the store has the table (sessions and outreach came with schema v2).
pub(super) fn has_table(conn: &Connection, table: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether residents have an agency (schema v2; [`account_states`] reads it then).
pub(super) fn has_agency(conn: &Connection) -> Result<bool> {
    has_column(conn, "residents", "agency")
}

/// Whether the table has the column.
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if r.get::<_, String>(1)? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A text column without copying it.
fn txt<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a str> {
    Ok(r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })?)
}

/// A nullable text column without copying it.
fn opt_txt<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<Option<&'a str>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        _ => txt(r, i).map(Some),
    }
}

/// A nullable text column, empty when NULL.
fn text_or_empty(r: &rusqlite::Row<'_>, i: usize) -> Result<String> {
    Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
}

/// A row of `units`.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent: Option<String>,
}

/// Every unit.
pub(super) fn units(conn: &Connection) -> Result<Vec<Unit>> {
    let mut stmt = conn.prepare("SELECT code, name, level, parent_code FROM units")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Unit {
            code: r.get(0)?,
            name: text_or_empty(r, 1)?,
            level: text_or_empty(r, 2)?,
            parent: r.get(3)?,
        });
    }
    Ok(out)
}

/// A resident in scope with their current account state.
#[derive(Debug, Clone, Copy)]
pub(super) struct AccountState<'a> {
    pub resident: Uuid,
    pub household: &'a str,
    /// Their household's village.
    pub village: Option<&'a str>,
    /// What the roster said of their account (`level1_activated`, `level2_pending`…).
    pub roster_account: Option<&'a str>,
    /// The core's `account_state` (0 when it has no row).
    pub level1: i64,
    pub level2: i64,
    pub portal: i64,
    /// Their agency, when the schema has the column.
    pub agency: Option<&'a str>,
}

/// Residents not deleted, in a household not deleted (rule 1), with the core's account state
/// (rule 2). A resident whose id is not a UUID is skipped.
pub(super) fn account_states(
    conn: &Connection,
    one: Option<&str>,
    agency: bool,
    mut each: impl FnMut(AccountState<'_>) -> Result<()>,
) -> Result<()> {
    let sql = format!(
        "SELECT r.id, h.id, h.village_code, r.roster_account,
                coalesce(s.level1, 0), coalesce(s.level2, 0), coalesce(s.portal, 0), {}
           FROM residents r JOIN households h ON h.id = r.household_id
           LEFT JOIN account_state s ON s.resident_id = r.id
          WHERE r.deleted = 0 AND h.deleted = 0{}",
        if agency { "r.agency" } else { "NULL" },
        if one.is_some() { " AND r.id = ?1" } else { "" }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match one {
        Some(id) => stmt.query([id])?,
        None => stmt.query([])?,
    };
    while let Some(r) = rows.next()? {
        let Ok(resident) = Uuid::parse_str(txt(r, 0)?) else {
            continue;
        };
        each(AccountState {
            resident,
            household: txt(r, 1)?,
            village: opt_txt(r, 2)?,
            roster_account: opt_txt(r, 3)?,
            level1: r.get(4)?,
            level2: r.get(5)?,
            portal: r.get(6)?,
            agency: opt_txt(r, 7)?,
        })?;
    }
    Ok(())
}

/// A row of `officers`.
#[derive(Debug, Clone)]
pub(super) struct Officer {
    pub id: Uuid,
    /// The id as the store writes it (other tables refer to it so).
    pub id_text: String,
    pub name: String,
    pub role: String,
    pub unit_code: String,
}

/// Officers not deleted, by id. One whose id is not a UUID is skipped.
pub(super) fn officers(conn: &Connection) -> Result<Vec<Officer>> {
    let mut stmt = conn
        .prepare("SELECT id, name, role, unit_code FROM officers WHERE deleted = 0 ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id_text: String = r.get(0)?;
        let Ok(id) = Uuid::parse_str(&id_text) else {
            continue;
        };
        out.push(Officer {
            id,
            id_text,
            name: text_or_empty(r, 1)?,
            role: text_or_empty(r, 2)?,
            unit_code: text_or_empty(r, 3)?,
        });
    }
    Ok(out)
}

/// An active assignment of a village or a household to an officer.
#[derive(Debug, Clone)]
pub(super) struct Assignment {
    pub officer: Uuid,
    /// `village` or `household`.
    pub kind: String,
    /// The village's code or the household's id.
    pub target: String,
}

/// Active assignments. One without a kind or target, or whose officer is not a UUID, is
/// skipped.
pub(super) fn assignments(conn: &Connection) -> Result<Vec<Assignment>> {
    let mut stmt = conn
        .prepare("SELECT officer_id, target_kind, target_id FROM assignments WHERE active = 1")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Ok(officer) = Uuid::parse_str(&r.get::<_, String>(0)?) else {
            continue;
        };
        let (Some(kind), Some(target)) = (r.get(1)?, r.get(2)?) else {
            continue;
        };
        out.push(Assignment {
            officer,
            kind,
            target,
        });
    }
    Ok(out)
}

/// The steps whose earliest success counts on its day (rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Level1Activated = 0,
    Level2Received = 1,
    Level2Activated = 2,
    PortalGuided = 3,
}

/// A successful assistance step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Success<'a> {
    pub resident: Uuid,
    pub step: Step,
    pub officer: &'a str,
    pub at_ms: i64,
    /// The fact's id (`u128::MAX` when not a UUID): orders steps of the same instant.
    pub id: u128,
}

/// Non-retracted successful steps of the four counted kinds. One whose resident is not a
/// UUID is skipped.
pub(super) fn successful_steps(
    conn: &Connection,
    one: Option<&str>,
    mut each: impl FnMut(Success<'_>) -> Result<()>,
) -> Result<()> {
    const SQL: &str = "SELECT resident_id, step, officer_id, at_ms, id FROM assists
          WHERE retracted = 0 AND failure IS NULL
            AND step IN ('level1_activated', 'level2_received', 'level2_activated',
                         'portal_guided')";
    let mut stmt;
    let mut rows = match one {
        Some(id) => {
            stmt = conn.prepare_cached(&format!("{SQL} AND resident_id = ?1"))?;
            stmt.query([id])?
        }
        None => {
            stmt = conn.prepare_cached(SQL)?;
            stmt.query([])?
        }
    };
    while let Some(r) = rows.next()? {
        let Ok(resident) = Uuid::parse_str(txt(r, 0)?) else {
            continue;
        };
        let step = match txt(r, 1)? {
            "level1_activated" => Step::Level1Activated,
            "level2_received" => Step::Level2Received,
            "level2_activated" => Step::Level2Activated,
            _ => Step::PortalGuided,
        };
        each(Success {
            resident,
            step,
            officer: txt(r, 2)?,
            at_ms: r.get(3)?,
            id: Uuid::parse_str(txt(r, 4)?).map_or(u128::MAX, |u| u.as_u128()),
        })?;
    }
    Ok(())
}

/// Failed steps of one resident, officer, local day and reason.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failure<'a> {
    pub resident: Uuid,
    pub officer: &'a str,
    pub day: NaiveDate,
    pub reason: &'a str,
    pub count: u64,
}

/// Non-retracted failed steps, counted per resident, officer, day and reason. A resident that
/// is not a UUID, or a day that is not a date, is skipped.
pub(super) fn failed_steps(
    conn: &Connection,
    one: Option<&str>,
    mut each: impl FnMut(Failure<'_>) -> Result<()>,
) -> Result<()> {
    let sql = format!(
        "SELECT resident_id, officer_id, failure, count(*), day FROM assists
          WHERE retracted = 0 AND failure IS NOT NULL{}
          GROUP BY resident_id, officer_id, day, failure",
        if one.is_some() {
            " AND resident_id = ?1"
        } else {
            ""
        }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match one {
        Some(id) => stmt.query([id])?,
        None => stmt.query([])?,
    };
    while let Some(r) = rows.next()? {
        let Ok(resident) = Uuid::parse_str(txt(r, 0)?) else {
            continue;
        };
        let Some(day) = parse_day(txt(r, 4)?) else {
            continue;
        };
        each(Failure {
            resident,
            officer: txt(r, 1)?,
            day,
            reason: txt(r, 2)?,
            count: r.get::<_, i64>(3)? as u64,
        })?;
    }
    Ok(())
}

/// Visits of one household, officer and day.
#[derive(Debug, Clone, Copy)]
pub(super) struct Visits<'a> {
    pub household: &'a str,
    /// The household's village.
    pub village: Option<&'a str>,
    pub officer: &'a str,
    pub day: NaiveDate,
    pub count: u64,
}

/// Non-retracted visits to households not deleted (all, or `one`'s), counted per household,
/// officer and day. A day that is not `YYYY-MM-DD` is skipped.
pub(super) fn visits(
    conn: &Connection,
    one: Option<&str>,
    mut each: impl FnMut(Visits<'_>) -> Result<()>,
) -> Result<()> {
    let sql = format!(
        "SELECT v.household_id, h.village_code, v.officer_id, v.day, count(*)
           FROM visits v JOIN households h ON h.id = v.household_id
          WHERE v.retracted = 0 AND h.deleted = 0{}
          GROUP BY v.household_id, v.officer_id, v.day",
        if one.is_some() {
            " AND v.household_id = ?1"
        } else {
            ""
        }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match one {
        Some(id) => stmt.query([id])?,
        None => stmt.query([])?,
    };
    while let Some(r) = rows.next()? {
        let Some(day) = parse_day(txt(r, 3)?) else {
            continue;
        };
        each(Visits {
            household: txt(r, 0)?,
            village: opt_txt(r, 1)?,
            officer: txt(r, 2)?,
            day,
            count: r.get::<_, i64>(4)? as u64,
        })?;
    }
    Ok(())
}

/// The residents whose household is `household` (deleted or not).
pub(super) fn residents_of(conn: &Connection, household: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM residents WHERE household_id = ?1")?;
    let rows = stmt.query_map([household], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where a fact is: `(resident of an assistance step, household of a visit)`; neither for a
/// session, an outreach event, or a fact not (yet) in the store.
pub(super) fn fact_owner(conn: &Connection, id: &str) -> Result<(Option<String>, Option<String>)> {
    let resident = conn
        .prepare_cached("SELECT resident_id FROM assists WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let household = conn
        .prepare_cached("SELECT household_id FROM visits WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok((resident, household))
}

/// Each replica's highest counter in the log (the server's own included), as
/// [`fingerprint`] sums them.
pub(super) fn replica_maxima(conn: &Connection) -> Result<Vec<(Uuid, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.replica, (SELECT coalesce(max(counter), 0) FROM oplog o
                             WHERE o.replica = r.replica)
           FROM (SELECT replica FROM replicas
                 UNION SELECT value FROM meta WHERE key = 'replica_id') r",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id = match r.get_ref(0)? {
            ValueRef::Blob(b) => Uuid::from_slice(b).ok(),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|t| Uuid::parse_str(t).ok()),
            _ => None,
        };
        if let Some(id) = id {
            out.push((id, r.get::<_, i64>(1)?.max(0) as u64));
        }
    }
    Ok(out)
}

/// Campaigns by start date, then id. One without a UUID or both dates is skipped.
pub(super) fn campaigns(conn: &Connection) -> Result<Vec<CampaignInfo>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, start_date, end_date, target, unit_code FROM campaigns
          ORDER BY start_date, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (Ok(id), Some(start), Some(end)) = (
            Uuid::parse_str(&r.get::<_, String>(0)?),
            r.get::<_, Option<String>>(2)?
                .as_deref()
                .and_then(parse_day),
            r.get::<_, Option<String>>(3)?
                .as_deref()
                .and_then(parse_day),
        ) else {
            continue;
        };
        out.push(CampaignInfo {
            id,
            name: text_or_empty(r, 1)?,
            start,
            end,
            target: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            unit_code: text_or_empty(r, 5)?,
        });
    }
    Ok(out)
}

/// A row of `quotas`.
#[derive(Debug, Clone)]
pub(super) struct Quota {
    pub campaign: String,
    /// `unit` or `officer`.
    pub subject_kind: String,
    pub subject: String,
    /// `campaign` or a day, `YYYY-MM-DD`.
    pub period: String,
    pub metric: String,
    pub target: i64,
}

/// Quotas with every key column set.
pub(super) fn quotas(conn: &Connection) -> Result<Vec<Quota>> {
    let mut stmt = conn.prepare(
        "SELECT campaign_id, subject_kind, subject_id, period, metric, target FROM quotas
          WHERE campaign_id IS NOT NULL AND subject_kind IS NOT NULL
            AND subject_id IS NOT NULL AND period IS NOT NULL AND metric IS NOT NULL",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Quota {
            campaign: r.get(0)?,
            subject_kind: r.get(1)?,
            subject: r.get(2)?,
            period: r.get(3)?,
            metric: r.get(4)?,
            target: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
        });
    }
    Ok(out)
}

/// A receiving-point session.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub id: String,
    /// Where it was recorded (a commune, or a village of it).
    pub unit_code: String,
    pub kind: String,
    pub place: String,
    pub starts_at_ms: i64,
    /// The start when not recorded.
    pub ends_at_ms: i64,
    /// Level-2 applications received (0 when not recorded or negative).
    pub applications: u64,
}

/// Non-retracted sessions (call only when the store [`has_table`] `sessions`).
pub(super) fn sessions(conn: &Connection) -> Result<Vec<Session>> {
    let mut stmt = conn.prepare(
        "SELECT id, unit_code, kind, place, starts_at_ms, ends_at_ms, applications
           FROM sessions WHERE retracted = 0",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let starts_at_ms: i64 = r.get(4)?;
        out.push(Session {
            id: r.get(0)?,
            unit_code: text_or_empty(r, 1)?,
            kind: r.get(2)?,
            place: text_or_empty(r, 3)?,
            starts_at_ms,
            ends_at_ms: r.get::<_, Option<i64>>(5)?.unwrap_or(starts_at_ms),
            applications: r.get::<_, Option<i64>>(6)?.unwrap_or(0).max(0) as u64,
        });
    }
    Ok(out)
}

/// An outreach event.
#[derive(Debug, Clone)]
pub(super) struct Outreach {
    /// Where it was recorded (a commune, or a village of it).
    pub unit_code: String,
    pub kind: String,
    pub at_ms: i64,
    /// People reached (0 when not recorded or negative).
    pub people: u64,
}

/// Non-retracted outreach events (call only when the store [`has_table`] `outreach`).
pub(super) fn outreach(conn: &Connection) -> Result<Vec<Outreach>> {
    let mut stmt =
        conn.prepare("SELECT unit_code, kind, at_ms, people FROM outreach WHERE retracted = 0")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Outreach {
            unit_code: text_or_empty(r, 0)?,
            kind: r.get(1)?,
            at_ms: r.get(2)?,
            people: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
        });
    }
    Ok(out)
}
