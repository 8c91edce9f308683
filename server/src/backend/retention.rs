//! Retention (Decree 13/2023: personal data kept no longer than needed). A campaign keeps its
//! personal data for `retention_days` after its last day ([`DEFAULT_RETENTION_DAYS`] unless
//! set); then [`Backend::purge_campaign`] erases, in the campaign's units, the values written
//! up to the end of its last day (one console write per unit, [`doorstep_core::Store::purge_unit`],
//! then one compaction, [`doorstep_core::Store::finish_purge`]): households'
//! notes, residents' phone numbers and notes, the ID numbers of residents who no longer need
//! help, facts' notes, locations and retraction reasons. Everything the reports count stays.
//! The erasure reaches every phone as operations; every replica compacts its operation log
//! (`docs/sync-protocol.md`, "Retention"). Both are audited (`campaign_retention`,
//! `campaign_purge`), the purge with its counts.

use super::Backend;
use crate::error::{Result, ServerError};
use crate::storage::Storage;
use chrono::NaiveDate;
use doorstep_core::redact::PurgeReport;
use doorstep_core::time::day_start_ms;
use rusqlite::OptionalExtension;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The retention of a campaign that sets none: 90 days after its last day.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// A campaign as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The unit it covers.
    pub unit_code: String,
    /// Its last day.
    pub end_date: NaiveDate,
    /// Days its personal data is kept after its last day.
    pub days: i64,
}

impl Retention {
    /// The instant the campaign's last day ends (Vietnam time): values written before it are
    /// the campaign's.
    pub fn campaign_end_ms(&self) -> i64 {
        day_start_ms(self.end_date.succ_opt().unwrap_or(self.end_date))
    }

    /// The first day the purge is due.
    pub fn due(&self) -> NaiveDate {
        self.end_date
            .checked_add_days(chrono::Days::new(self.days.max(0) as u64 + 1))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// A purge's report in one line, for the console.
pub fn summary(r: &PurgeReport) -> String {
    format!(
        "{} household(s), {} resident(s) and {} fact(s) erased; {} redaction operation(s); \
         {} logged operation(s) rewritten{}",
        r.households,
        r.residents,
        r.facts,
        r.redactions,
        r.rewritten,
        if r.withheld > 0 {
            format!(", {} kept until delivered", r.withheld)
        } else {
            String::new()
        }
    )
}

impl<S: Storage + ?Sized> Backend<S> {
    /// A campaign's retention, or `BadRequest` naming `campaign` when there is no such campaign.
    pub fn retention(&self, campaign: Uuid) -> Result<Retention> {
        let row: Option<(Option<String>, Option<String>, Option<i64>)> = self.view(|c| {
            Ok(c.query_row(
                "SELECT unit_code, end_date, retention_days FROM campaigns WHERE id = ?1",
                [campaign.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })?;
        let Some((Some(unit_code), Some(end), days)) = row else {
            return Err(ServerError::BadRequest(
                "invalid campaign: expected the id of an existing campaign".into(),
            ));
        };
        let end_date = NaiveDate::parse_from_str(&end, "%Y-%m-%d")
            .map_err(|_| ServerError::Internal("a campaign end_date that is not a date".into()))?;
        Ok(Retention {
            unit_code,
            end_date,
            days: days.unwrap_or(DEFAULT_RETENTION_DAYS),
        })
    }

    /// Set how many days after its last day a campaign keeps personal data (audited as
    /// `campaign_retention`).
    pub fn set_retention(&self, actor: &str, campaign: Uuid, days: i64, now_ms: i64) -> Result<()> {
        self.local_write(actor, "campaign_retention", now_ms, |s| {
            s.set_campaign_retention(campaign, days)?;
            Ok(((), campaign.to_string(), format!("days={days}")))
        })
    }

    /// Erase the campaign's personal data (see the module docs). Refused with `BadRequest`
    /// before its retention has run out, unless `early` (an order to erase before the period
    /// ends). Audited as `campaign_purge` with the counts.
    pub fn purge_campaign(
        &self,
        actor: &str,
        campaign: Uuid,
        early: bool,
        now_ms: i64,
    ) -> Result<PurgeReport> {
        let r = self.retention(campaign)?;
        if !early && now_ms < day_start_ms(r.due()) {
            return Err(ServerError::BadRequest(format!(
                "retention_days: the campaign keeps its data until the end of {} ({} days after \
                 its last day); purge from {} on, or pass --early",
                r.due().pred_opt().unwrap_or(r.due()),
                r.days,
                r.due()
            )));
        }
        self.purge_written_before(actor, campaign, r.campaign_end_ms(), now_ms)
    }

    /// The purge of [`Backend::purge_campaign`], of the values written (and facts recorded)
    /// before `until_ms` instead of before the end of the campaign's last day, whatever its
    /// retention (a benchmark whose data was generated after its campaign's dates uses it).
    pub fn purge_written_before(
        &self,
        actor: &str,
        campaign: Uuid,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<PurgeReport> {
        let r = self.retention(campaign)?;
        let units = self.view(|c| Ok(doorstep_core::redact::units_under(c, &r.unit_code)?))?;
        // One console write per unit: the store (and, on PostgreSQL, the feed lock) is free
        // for pushes and pulls between them; the audit row comes with the final compaction.
        let mut report = PurgeReport::default();
        let mut made = 0;
        for unit in &units {
            self.store.console_write(
                &mut |s| {
                    made += s.purge_unit(unit, until_ms, &mut report)?;
                    Ok(())
                },
                &mut |_| Ok(()),
            )?;
        }
        self.local_write(actor, "campaign_purge", now_ms, |s| {
            s.finish_purge(made, &mut report)?;
            let detail = format!(
                "households={} residents={} facts={} redactions={} rewritten={}",
                report.households,
                report.residents,
                report.facts,
                report.redactions,
                report.rewritten
            );
            Ok((report, campaign.to_string(), detail))
        })
    }

    /// Compact the log if a compaction left work for later (`doorstep_core::redact`): values
    /// superseded since, operations a signed run held back. Returns the operations rewritten.
    pub fn compact_if_pending(&self, actor: &str, now_ms: i64) -> Result<usize> {
        let pending = self.view(|c| {
            Ok(c.query_row(
                "SELECT value FROM meta WHERE key = 'compact_pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
                == Some(1))
        })?;
        if !pending {
            return Ok(0);
        }
        self.local_write(actor, "log_compact", now_ms, |s| {
            let n = s.compact_if_pending()?.map_or(0, |r| r.rewritten);
            Ok((n, "-".to_owned(), format!("rewritten={n}")))
        })
    }

    /// [`Backend::purge_campaign`], its report in one line ([`summary`]).
    pub fn purge_line(
        &self,
        actor: &str,
        campaign: Uuid,
        early: bool,
        now_ms: i64,
    ) -> Result<String> {
        self.purge_campaign(actor, campaign, early, now_ms)
            .map(|r| summary(&r))
    }

    /// Every campaign whose retention has run out by `now_ms`.
    pub fn campaigns_due(&self, now_ms: i64) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = self.view(|c| {
            let mut stmt = c.prepare("SELECT id FROM campaigns ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        let mut due = Vec::new();
        for id in ids {
            let Ok(id) = Uuid::parse_str(&id) else {
                continue;
            };
            if self
                .retention(id)
                .is_ok_and(|r| now_ms >= day_start_ms(r.due()))
            {
                due.push(id);
            }
        }
        Ok(due)
    }
}

/// The actor of what `serve` does by itself.
pub const MAINTENANCE_ACTOR: &str = "retention";

/// How often `serve` purges the campaigns whose retention ran out and compacts the log:
/// `DOORSTEP_MAINTENANCE_SECS`, default an hour. The first run is one period after the start.
pub fn maintenance_period() -> std::time::Duration {
    let secs = std::env::var("DOORSTEP_MAINTENANCE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(3600);
    std::time::Duration::from_secs(secs)
}

/// Run the retention maintenance every `every` on the tokio runtime (see
/// [`maintenance_period`]): purge each campaign whose retention ran out (once per start), then
/// compact the log if that is pending. Failures are logged and tried again next time.
pub fn spawn_maintenance(
    backend: std::sync::Arc<crate::backend::Backend>,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await; // the first tick is at once
        let purged = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        loop {
            tick.tick().await;
            let (b, purged) = (backend.clone(), purged.clone());
            let run = tokio::task::spawn_blocking(move || {
                let mut done = purged.lock().unwrap_or_else(|e| e.into_inner());
                b.maintain(crate::now_ms(), &mut done)
            })
            .await;
            match run {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "retention maintenance failed; tried again later")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention maintenance stopped; tried again later")
                }
            }
        }
    });
}

impl<S: Storage + ?Sized> Backend<S> {
    /// One round of `serve`'s maintenance at `now_ms` ([`spawn_maintenance`]): purge each
    /// campaign whose retention has run out and that is not in `done` (then it is), compact
    /// the log if that is pending, publish the view when due (PostgreSQL). Returns what was
    /// purged.
    pub fn maintain(
        &self,
        now_ms: i64,
        done: &mut BTreeSet<Uuid>,
    ) -> Result<Vec<(Uuid, PurgeReport)>> {
        let mut purged = Vec::new();
        for campaign in self.campaigns_due(now_ms)? {
            if done.contains(&campaign) {
                continue;
            }
            let r = self.purge_campaign(MAINTENANCE_ACTOR, campaign, false, now_ms)?;
            tracing::info!(%campaign, households = r.households, residents = r.residents,
                facts = r.facts, rewritten = r.rewritten, "retention ran out: purged");
            done.insert(campaign);
            purged.push((campaign, r));
        }
        let n = self.compact_if_pending(MAINTENANCE_ACTOR, now_ms)?;
        if n > 0 {
            tracing::info!(rewritten = n, "operation log compacted");
        }
        // PostgreSQL: a fresh snapshot of the view for new instances, when due.
        match self.publish_view(false) {
            Ok(line) => tracing::debug!("{line}"),
            Err(ServerError::BadRequest(_)) => {}
            Err(e) => tracing::warn!(error = %e, "publishing the view failed"),
        }
        Ok(purged)
    }
}
