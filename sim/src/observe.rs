//! The facts as the server's database holds them, read back into a [`Ledger`] so that the
//! same counting can be applied and compared with the simulator's own ledger.

use crate::truth::{Fact, FactKind, Ledger};
use crate::Result;
use doorstep_core::{AssistStep, FailureReason};
use rusqlite::Connection;
use std::path::Path;
use uuid::Uuid;

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

/// Read every visit, assistance step, session and outreach event of the server's database.
pub fn server_ledger(db: &Path) -> Result<Ledger> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut ledger = Ledger::default();
    let mut push = |id: String, officer: String, at_ms: i64, retracted: bool, kind: FactKind| {
        let id = uuid(&id);
        ledger.record(Fact {
            id,
            officer: uuid(&officer),
            at_ms,
            kind,
        });
        if retracted {
            ledger.retract(id);
        }
    };
    let mut stmt =
        conn.prepare("SELECT id, officer_id, at_ms, retracted, household_id FROM visits")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        push(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            FactKind::Visit {
                household: uuid(&r.get::<_, String>(4)?),
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT id, officer_id, at_ms, retracted, resident_id, step, failure FROM assists",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let step = AssistStep::parse(&r.get::<_, String>(5)?)?;
        let failure = match r.get::<_, Option<String>>(6)? {
            Some(f) => Some(FailureReason::parse(&f)?),
            None => None,
        };
        push(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            FactKind::Assist {
                resident: uuid(&r.get::<_, String>(4)?),
                step,
                failure,
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT id, officer_id, starts_at_ms, retracted, unit_code, kind, applications FROM sessions",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        push(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            FactKind::Session {
                commune: r.get(4)?,
                kind: r.get(5)?,
                applications: r.get(6)?,
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT id, officer_id, at_ms, retracted, unit_code, kind, people FROM outreach",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        push(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            FactKind::Outreach {
                unit: r.get(4)?,
                kind: r.get(5)?,
                people: r.get(6)?,
            },
        );
    }
    Ok(ledger)
}

/// Differences between two ledgers' facts (ids, content, retraction), described by id.
pub fn diff_facts(truth: &Ledger, server: &Ledger) -> Vec<String> {
    use std::collections::HashMap;
    let mut out = Vec::new();
    let t: HashMap<Uuid, &Fact> = truth.facts.iter().map(|f| (f.id, f)).collect();
    let s: HashMap<Uuid, &Fact> = server.facts.iter().map(|f| (f.id, f)).collect();
    if s.len() != server.facts.len() {
        out.push(format!(
            "the server holds {} fact rows for {} ids",
            server.facts.len(),
            s.len()
        ));
    }
    for (id, f) in &t {
        match s.get(id) {
            None => out.push(format!(
                "fact {id} recorded on a device is missing on the server"
            )),
            Some(g) if g != f => out.push(format!("fact {id} differs on the server")),
            Some(_) => {}
        }
        if truth.retracted.contains(id) != server.retracted.contains(id) {
            out.push(format!(
                "fact {id}: retracted on the devices = {}, on the server = {}",
                truth.retracted.contains(id),
                server.retracted.contains(id)
            ));
        }
    }
    for id in s.keys() {
        if !t.contains_key(id) {
            out.push(format!(
                "fact {id} on the server was never recorded by a device"
            ));
        }
    }
    out.sort();
    out
}
