//! The console's writes (officers, assignments, quotas, units, campaigns, the roster): a core
//! write on the server's own store (the SQLite file, or a PostgreSQL instance's view) that
//! returns what it made with the audit log's target and detail, run by
//! [`Backend::local_write`], which has the storage file the operations in the feed and audit
//! them in one transaction ([`crate::storage::Storage::console_write`]).

use super::Backend;
use crate::error::{Result, ServerError};
use crate::storage::{Once, Storage};
use doorstep_core::roster::{ImportProgress, ImportReport};
use doorstep_core::{
    AssignTarget, CampaignInput, OfficerInput, QuotaInput, QuotaSubject, Role, Store, UnitInput,
};
use std::cell::RefCell;
use uuid::Uuid;

impl<S: Storage + ?Sized> Backend<S> {
    /// Run a core write made by the console, then file its operations and audit it.
    pub(super) fn local_write<T>(
        &self,
        actor: &str,
        action: &str,
        now_ms: i64,
        write: impl FnOnce(&mut Store) -> Written<T>,
    ) -> Result<T> {
        let made = RefCell::new(Once::new(write));
        self.store.console_write(
            &mut |store| made.borrow_mut().call(store),
            &mut |t| match made.borrow().output() {
                Some((_, target, detail)) => t.audit(now_ms, actor, action, target, detail),
                None => Ok(()),
            },
        )?;
        let (out, _, _) = made.into_inner().result("console write")?;
        Ok(out)
    }

    /// Add an officer (reference data, made by the server's replica). Returns its id.
    pub fn add_officer(
        &self,
        actor: &str,
        name: &str,
        role: Role,
        unit_code: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        self.local_write(actor, "officer_add", now_ms, |s| {
            add_officer(s, name, role, unit_code)
        })
    }

    /// Assign a village to an officer. Returns the assignment id.
    pub fn assign_village(
        &self,
        actor: &str,
        officer_id: Uuid,
        village: &str,
        now_ms: i64,
    ) -> Result<Uuid> {
        self.local_write(actor, "assign", now_ms, |s| {
            assign_village(s, officer_id, village)
        })
    }

    /// Set a quota (audited as `quota_set`).
    pub fn set_quota(&self, actor: &str, quota: QuotaInput, now_ms: i64) -> Result<Uuid> {
        self.local_write(actor, "quota_set", now_ms, |s| set_quota(s, quota))
    }

    /// Assign (`active`) or unassign a village or household (audited as `assign` / `unassign`).
    pub fn set_assignment(
        &self,
        actor: &str,
        officer_id: Uuid,
        target: AssignTarget,
        active: bool,
        now_ms: i64,
    ) -> Result<Uuid> {
        let action = if active { "assign" } else { "unassign" };
        self.local_write(actor, action, now_ms, |s| {
            set_assignment(s, officer_id, target, active)
        })
    }

    /// Import units from CSV. Returns (rows, rejected rows).
    pub fn import_units(&self, actor: &str, csv: &[u8], now_ms: i64) -> Result<(u64, u64)> {
        self.local_write(actor, "units_import", now_ms, |s| import_units(s, csv))
    }

    /// Add or update one unit (a village under a commune, say).
    pub fn put_unit(&self, actor: &str, unit: UnitInput, now_ms: i64) -> Result<()> {
        self.local_write(actor, "unit_put", now_ms, |s| put_unit(s, unit))
    }

    /// Add or update a campaign. Returns its id.
    pub fn put_campaign(&self, actor: &str, campaign: CampaignInput, now_ms: i64) -> Result<Uuid> {
        self.local_write(actor, "campaign_put", now_ms, |s| put_campaign(s, campaign))
    }

    /// Import a roster CSV for a campaign (`docs/roster-format.md`), with progress.
    pub fn import_roster(
        &self,
        actor: &str,
        campaign_id: Uuid,
        csv: &[u8],
        progress: &mut dyn FnMut(ImportProgress),
        now_ms: i64,
    ) -> Result<ImportReport> {
        self.local_write(actor, "roster_import", now_ms, |s| {
            import_roster(s, campaign_id, csv, progress)
        })
    }
}

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
    let name = super::check_name("name", name, crate::limits::MAX_USER_NAME)?;
    let Some((_, level)) = super::COMMAND_ROLES.iter().find(|(r, _)| *r == role) else {
        return Err(ServerError::BadRequest(
            "role: expected one of commune_lead, district, province".into(),
        ));
    };
    Ok((name, level))
}
