//! A device's push and pull, and the import of operations made elsewhere: the batch check.
//!
//! The rule is here, once: a push refuses any operation not of the device's own replica
//! (`foreign_replica`); each operation new to the server gets its area from the core
//! store's tables; a push refuses what is outside the device's officer's scope
//! ([`scope::refusal`]) and what the officer's role may not write ([`authority::refusal`]); what is refused for `clock_ahead` is kept in quarantine; the applied
//! operations are filed in the feed under their areas; the device's acknowledgement rises to
//! its highest counter in the batch. How the batch is applied in one transaction is the
//! storage's ([`crate::storage::Storage::apply`]); a pull page is [`cursor::pull_page`] on the
//! storage's snapshot of the feed.

use super::{Backend, DeviceAuth};
use crate::authority;
use crate::cursor;
use crate::error::{Result, ServerError};
use crate::scope::{self, OfficerScope};
use crate::storage::{Storage, Tables};
use doorstep_core::store::Verdict;
use doorstep_core::wire::{PullResponse, PushResponse, Rejected};
use doorstep_core::{CampaignDays, Entity, Op, OpBody, ReplicaId};
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::HashMap;
use uuid::Uuid;

use crate::limits::MAX_PAGE;

/// The refusal of an operation of another replica than the pushing device's.
pub const FOREIGN_REPLICA: &str = "foreign_replica";
/// The refusal of an operation carrying a value the core's rules refuse: `invalid:<field>`.
pub const INVALID: &str = "invalid";

/// Why an operation is refused whoever sends it, device or import: a value the core's write
/// API could not have made, or a fact dated outside every campaign's days — `invalid:<field>`,
/// naming the field (never the value), checked by the core's own rules
/// ([`Op::check_values`], [`Op::check_campaign_days_in`]).
fn value_refusal(op: &Op, days: &CampaignDays) -> Result<Option<String>> {
    match op
        .check_values()
        .and_then(|()| op.check_campaign_days_in(days))
    {
        Ok(()) => Ok(None),
        Err(e) => match e.invalid_field() {
            Some(field) => Ok(Some(format!("{INVALID}:{field}"))),
            None => Err(e.into()),
        },
    }
}

/// What an operation without an instant (a `Set`, a retraction) is checked against.
static NO_INSTANT: CampaignDays = CampaignDays::EMPTY;

/// The batch check's record: each accepted operation's feed area, and the refusals.
#[derive(Default)]
struct Checked {
    /// The device's officer's scope, read on the first operation (from the core store's
    /// tables as the storage holds them for the check); `None` for an import.
    scope: Option<OfficerScope>,
    areas: HashMap<(ReplicaId, u64), Option<String>>,
    rejected: Vec<Rejected>,
    /// Refused for `clock_ahead`: kept in quarantine.
    quarantined: Vec<Op>,
    /// The campaigns' days, read on the first fact and again after a campaign changes.
    campaign_days: Option<CampaignDays>,
}

impl Checked {
    /// The verdict on one operation new to the server. `officer`: whose scope and authority a
    /// push is checked against; `None` (imports) checks only what holds whoever sends it: the
    /// values and the clock.
    fn check(
        &mut self,
        conn: &Connection,
        op: &Op,
        officer: Option<Uuid>,
        now_ms: i64,
    ) -> Result<Verdict> {
        if let Some(officer) = officer.filter(|_| self.scope.is_none()) {
            self.scope = Some(scope::officer_scope(conn, officer)?);
        }
        let area = scope::op_area(conn, op)?;
        if self.campaign_days.is_none() && op.is_fact_with_instant() {
            self.campaign_days = Some(CampaignDays::load(conn)?);
        }
        let days = self.campaign_days.as_ref().unwrap_or(&NO_INSTANT);
        let refusal = match value_refusal(op, days)? {
            Some(r) => Some(r),
            None => match &self.scope {
                Some(s) => match scope::refusal(s, op, &area, now_ms) {
                    Some(r) => Some(r.to_owned()),
                    None => authority::refusal(conn, s, op)?.map(str::to_owned),
                },
                None => scope::stamped_ahead(op, now_ms).then(|| scope::CLOCK_AHEAD.to_owned()),
            },
        };
        if let Some(reason) = refusal {
            if reason == scope::CLOCK_AHEAD {
                self.quarantined.push(op.clone());
            }
            self.rejected.push(Rejected {
                replica: op.replica.0,
                counter: op.counter,
                reason,
            });
            return Ok(Verdict::Reject);
        }
        self.areas.insert(
            (op.replica, op.counter),
            area.feed_area().map(str::to_owned),
        );
        if matches!(
            op.body,
            OpBody::Set {
                entity: Entity::Campaign,
                ..
            }
        ) {
            // Applied next: the batch's later facts are checked against it.
            self.campaign_days = None;
        }
        Ok(Verdict::Accept)
    }

    /// File the applied operations in the feed under their areas, in batch order.
    fn file(&self, t: &mut dyn Tables, applied: &[&Op]) -> Result<()> {
        let rows: Vec<(&Op, Option<&str>)> = applied
            .iter()
            .map(|op| {
                let area = self.areas.get(&(op.replica, op.counter));
                (*op, area.and_then(|a| a.as_deref()))
            })
            .collect();
        t.file(&rows)
    }
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Check `ops`, apply the accepted ones and file them, then run `finish` in the same
    /// transaction. Returns the check's record and how many were applied.
    fn apply_batch(
        &self,
        ops: &[Op],
        officer: Option<Uuid>,
        now_ms: i64,
        mut finish: impl FnMut(&mut dyn Tables, &Checked, usize) -> Result<()>,
    ) -> Result<(Checked, usize)> {
        let checked = RefCell::new(Checked::default());
        let mut applied_n = 0;
        self.store.apply(
            ops,
            &mut |conn, op| checked.borrow_mut().check(conn, op, officer, now_ms),
            &mut |t, applied| {
                applied_n = applied.len();
                let checked = checked.borrow();
                checked.file(t, applied)?;
                finish(t, &checked, applied.len())
            },
        )?;
        Ok((checked.into_inner(), applied_n))
    }

    /// Apply a device's batch (checked against its scope), file feed rows and record its
    /// acknowledgement, in one transaction.
    pub fn push(
        &self,
        device: &DeviceAuth,
        ops: Vec<Op>,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PushResponse> {
        // A device pushes its own replica's operations only: any other is refused before the
        // check, never stored or forwarded (another device's, the server's, a replica nobody
        // holds); the rest of the batch goes on.
        let total = ops.len();
        let (ops, foreign): (Vec<Op>, Vec<Op>) =
            ops.into_iter().partition(|o| o.replica.0 == device.replica);
        let own_max = ops.iter().map(|o| o.counter).max().unwrap_or(0) as i64;
        let device_id = device.device_id.to_string();
        let mut acked = 0;
        let (checked, applied) =
            self.apply_batch(&ops, Some(device.officer_id), now_ms, |t, checked, _| {
                for op in &checked.quarantined {
                    t.quarantine(op, &device_id, now_ms)?;
                }
                acked = t.ack_device(
                    &device_id,
                    own_max,
                    now_ms,
                    now_ms.saturating_sub(device_time_ms),
                )?;
                Ok(())
            })?;
        let mut rejected: Vec<Rejected> = foreign
            .iter()
            .map(|o| Rejected {
                replica: o.replica.0,
                counter: o.counter,
                reason: FOREIGN_REPLICA.to_owned(),
            })
            .collect();
        rejected.extend(checked.rejected);
        let duplicates = total - applied - rejected.len();
        Ok(PushResponse {
            applied: applied as u64,
            duplicates: duplicates as u64,
            rejected,
            acked_counter: acked as u64,
            server_time_ms: now_ms,
        })
    }

    /// A page of the feed in the device's scope after `cursor`.
    pub fn pull(
        &self,
        device: &DeviceAuth,
        cursor: Option<&str>,
        limit: u32,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PullResponse> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let scope = self.view(|c| Ok(scope::officer_scope(c, device.officer_id)?))?;
        self.tables(|t| {
            t.touch_device(
                &device.device_id.to_string(),
                now_ms,
                now_ms.saturating_sub(device_time_ms),
            )
        })?;
        let mut page = None;
        self.store.feed(device.replica, &mut |feed| {
            page = Some(cursor::pull_page(feed, &scope, cursor, limit)?);
            Ok(())
        })?;
        let (ops, cur, has_more) =
            page.ok_or_else(|| ServerError::Internal("feed: not read".into()))?;
        Ok(PullResponse {
            ops,
            cursor: cur.encode(),
            has_more,
            server_time_ms: now_ms,
        })
    }

    /// Merge operations made elsewhere (a roster prepared at the commune station) without a
    /// scope or authority check (the console's), filing them in the feed; values and clocks are
    /// checked as for a push, and the refused are counted in the audit entry. Returns how many
    /// were applied.
    pub fn import_ops(&self, actor: &str, ops: &[Op], now_ms: i64) -> Result<u64> {
        let (_, applied) = self.apply_batch(ops, None, now_ms, |t, checked, applied| {
            let rejected = checked.rejected.len();
            t.audit(
                now_ms,
                actor,
                "ops_import",
                "oplog",
                &format!(
                    "applied={applied} duplicates={} rejected={rejected}",
                    ops.len() - applied - rejected
                ),
            )
        })?;
        Ok(applied as u64)
    }
}
