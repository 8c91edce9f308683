//! The console writes both backends make alike: a core write on the server's own store (the
//! SQLite file, or a PostgreSQL instance's view) that returns what it made with the audit log's
//! target and detail. Each backend runs them inside its own `local_write`, which files the
//! operations in the feed and audits them in one transaction.

use crate::error::{Result, ServerError};
use doorstep_core::roster::{ImportProgress, ImportReport};
use doorstep_core::{
    AssignTarget, CampaignInput, OfficerInput, QuotaInput, QuotaSubject, Role, Store, UnitInput,
};
use uuid::Uuid;

/// What a console write returns: its result, the audit target and the audit detail.
pub(crate) type Written<T> = Result<(T, String, String)>;

pub(crate) fn add_officer(
    store: &mut Store,
    name: &str,
    role: Role,
    unit_code: &str,
) -> Written<Uuid> {
    let id = Uuid::now_v7();
    store.put_officer(OfficerInput {
        id,
        name: name.to_owned(),
        role,
        unit_code: unit_code.to_owned(),
    })?;
    Ok((id, id.to_string(), format!("role={role}")))
}

pub(crate) fn assign_village(store: &mut Store, officer_id: Uuid, village: &str) -> Written<Uuid> {
    let id = store.assign(officer_id, AssignTarget::Village(village.to_owned()))?;
    Ok((
        id,
        officer_id.to_string(),
        format!("village={}", village.trim()),
    ))
}

pub(crate) fn set_quota(store: &mut Store, quota: QuotaInput) -> Written<Uuid> {
    let subject = match &quota.subject {
        QuotaSubject::Officer(o) => format!("officer={o}"),
        QuotaSubject::Unit(u) => format!("unit={}", u.trim()),
    };
    let detail = format!(
        "{subject} period={} metric={} target={}",
        quota.period.as_text(),
        quota.metric,
        quota.target
    );
    let campaign = quota.campaign_id.to_string();
    let id = store.set_quota(quota)?;
    Ok((id, campaign, detail))
}

pub(crate) fn set_assignment(
    store: &mut Store,
    officer_id: Uuid,
    target: AssignTarget,
    active: bool,
) -> Written<Uuid> {
    let detail = match &target {
        AssignTarget::Village(v) => format!("village={}", v.trim()),
        AssignTarget::Household(h) => format!("household={h}"),
    };
    let id = if active {
        store.assign(officer_id, target)?
    } else {
        store.unassign(officer_id, target)?
    };
    Ok((id, officer_id.to_string(), detail))
}

pub(crate) fn import_units(store: &mut Store, csv: &[u8]) -> Written<(u64, u64)> {
    let report = store.import_units_csv(csv)?;
    let counts = (report.rows as u64, report.rejected.len() as u64);
    Ok((
        counts,
        "units".to_owned(),
        format!("rows={} rejected={}", counts.0, counts.1),
    ))
}

pub(crate) fn put_unit(store: &mut Store, unit: UnitInput) -> Written<()> {
    let code = unit.code.clone();
    store.put_unit(unit)?;
    Ok(((), code, String::new()))
}

pub(crate) fn put_campaign(store: &mut Store, campaign: CampaignInput) -> Written<Uuid> {
    let id = campaign.id;
    store.put_campaign(campaign)?;
    Ok((id, id.to_string(), String::new()))
}

pub(crate) fn import_roster(
    store: &mut Store,
    campaign_id: Uuid,
    csv: &[u8],
    progress: &mut dyn FnMut(ImportProgress),
) -> Written<ImportReport> {
    let report = store.import_roster(campaign_id, csv, progress)?;
    let detail = format!(
        "rows={} accepted={} rejected={}",
        report.rows,
        report.accepted,
        report.rejected.len()
    );
    Ok((report, campaign_id.to_string(), detail))
}

/// Check a new command user's name and role; returns the trimmed name and the unit level the
/// role is scoped to.
pub(crate) fn check_command_user<'a>(name: &'a str, role: &str) -> Result<(&'a str, &'static str)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServerError::BadRequest(
            "name: expected 1-100 characters, no control characters".into(),
        ));
    }
    let Some((_, level)) = crate::backend::COMMAND_ROLES
        .iter()
        .find(|(r, _)| *r == role)
    else {
        return Err(ServerError::BadRequest(
            "role: expected one of commune_lead, district, province".into(),
        ));
    };
    Ok((name, level))
}
