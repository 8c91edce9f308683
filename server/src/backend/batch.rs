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
use crate::model::Author;
use crate::scope::{self, OfficerScope};
use crate::storage::{FeedRow, GroupBatch, Storage, Tables};
use doorstep_core::store::Verdict;
use doorstep_core::wire::{PullResponse, PushResponse, Rejected};
use doorstep_core::{CampaignDays, Entity, Op, OpBody, ReplicaId, Segment, SegmentRefusal};
use rusqlite::Connection;
use std::cell::{Cell, RefCell};
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

/// Why a relayed run is refused whole, if it is: its author unknown or without a key, signed
/// after the author's device was revoked or far ahead of the server's clock, or a signature
/// that does not match the operations given (forged, altered, truncated).
fn relay_refusal(
    author: Option<&Author>,
    seg: &Segment,
    run: &[Op],
    now_ms: i64,
) -> Option<&'static str> {
    let Some(author) = author else {
        return Some(SegmentRefusal::UnknownAuthor.as_str());
    };
    let Some(key) = &author.public_key else {
        return Some(SegmentRefusal::UnknownAuthor.as_str());
    };
    let ops: Vec<&Op> = run.iter().collect();
    if let Err(r) = doorstep_core::sign::verify_segment(key, seg, &ops) {
        return Some(r.as_str());
    }
    if after_revocation(author.revoked_at_ms, seg, run) {
        return Some(SegmentRefusal::Revoked.as_str());
    }
    // Signed "in the future" would dodge a later revocation.
    if seg.signed_at_ms > now_ms.saturating_add(scope::MAX_AHEAD_MS) {
        return Some(scope::CLOCK_AHEAD);
    }
    None
}

/// Whether a run is on the wrong side of its author's revocation: signed, or any of its
/// operations stamped, at or after `revoked_at` (only what is strictly before it is taken, as
/// from the device's own last push).
fn after_revocation(revoked_at_ms: Option<i64>, seg: &Segment, run: &[Op]) -> bool {
    revoked_at_ms.is_some_and(|at| {
        seg.signed_at_ms >= at || run.iter().any(|o| o.hlc.physical_ms() as i64 >= at)
    })
}

/// What an operation without an instant (a `Set`, a retraction) is checked against.
static NO_INSTANT: CampaignDays = CampaignDays::EMPTY;

/// The batch check's record: each accepted operation's feed area, and the refusals.
#[derive(Default)]
struct Checked {
    /// The device's officer's scope, read on the first operation (from the core store's
    /// tables as the storage holds them for the check); `None` for an import.
    scope: Option<OfficerScope>,
    /// Each accepted operation's feed area and, for a move, the village it leaves.
    areas: HashMap<(ReplicaId, u64), (Option<String>, Option<String>)>,
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
        moves: &mut dyn scope::Moves,
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
                    // Work on a household recorded before it moved out of the officer's
                    // villages is still theirs to send.
                    Some(scope::OUT_OF_SCOPE)
                        if scope::recorded_before_move(conn, moves, s, op)? =>
                    {
                        authority::refusal(conn, s, op)?.map(str::to_owned)
                    }
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
            (
                area.feed_area().map(str::to_owned),
                area.from_area().map(str::to_owned),
            ),
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
        let rows: Vec<FeedRow<'_>> = applied
            .iter()
            .map(|op| {
                let area = self.areas.get(&(op.replica, op.counter));
                FeedRow {
                    op,
                    area: area.and_then(|(a, _)| a.as_deref()),
                    from: area.and_then(|(_, f)| f.as_deref()),
                }
            })
            .collect();
        t.file(&rows)
    }
}

/// A device's own operations of one push, as the group commit queues them.
#[derive(Debug)]
pub(super) struct OwnPush {
    pub(super) device_id: String,
    pub(super) officer: Uuid,
    /// The operations of the device's own replica.
    pub(super) ops: Vec<Op>,
    pub(super) device_time_ms: i64,
    pub(super) now_ms: i64,
}

/// What applying a push's own operations did.
#[derive(Debug)]
pub(super) struct Pushed {
    pub(super) rejected: Vec<Rejected>,
    pub(super) applied: usize,
    pub(super) acked: i64,
}

/// One push's check and its writes in the transaction (alone, or in its savepoint of a
/// group), and what they found.
struct PushRun<'p> {
    push: &'p OwnPush,
    checked: RefCell<Checked>,
    applied: Cell<usize>,
    acked: Cell<i64>,
    revoked_meanwhile: Cell<bool>,
}

impl<'p> PushRun<'p> {
    fn new(push: &'p OwnPush) -> PushRun<'p> {
        PushRun {
            push,
            checked: RefCell::new(Checked::default()),
            applied: Cell::new(0),
            acked: Cell::new(0),
            revoked_meanwhile: Cell::new(false),
        }
    }

    fn check(&self, conn: &Connection, moves: &mut dyn scope::Moves, op: &Op) -> Result<Verdict> {
        let p = self.push;
        self.checked
            .borrow_mut()
            .check(conn, moves, op, Some(p.officer), p.now_ms)
    }

    /// File the applied operations; refuse the whole push if the device was revoked since its
    /// token was checked; quarantine what was refused for its clock; acknowledge.
    fn finish(&self, t: &mut dyn Tables, applied: &[&Op]) -> Result<()> {
        let p = self.push;
        self.applied.set(applied.len());
        let checked = self.checked.borrow();
        checked.file(t, applied)?;
        // Revoked since its token was checked (a revocation is serialised with this
        // transaction): nothing stamped at or after `revoked_at` is taken. The whole
        // push is refused; the device's next request gets its wipe order and pushes
        // once more under that rule.
        let revoked = t.device(&p.device_id)?.and_then(|d| d.revoked_at_ms);
        if revoked.is_some_and(|at| p.ops.iter().any(|o| o.hlc.physical_ms() as i64 >= at)) {
            self.revoked_meanwhile.set(true);
            return Err(ServerError::Internal("device revoked meanwhile".into()));
        }
        for op in &checked.quarantined {
            t.quarantine(op, &p.device_id, p.now_ms)?;
        }
        let own_max = p.ops.iter().map(|o| o.counter).max().unwrap_or(0) as i64;
        self.acked.set(t.ack_device(
            &p.device_id,
            own_max,
            p.now_ms,
            p.now_ms.saturating_sub(p.device_time_ms),
        )?);
        Ok(())
    }

    /// The push's outcome from its transaction's (or savepoint's).
    fn outcome(self, r: Result<()>) -> Result<Pushed> {
        match r {
            Err(_) if self.revoked_meanwhile.get() => {
                Err(ServerError::Unauthorized("device revoked"))
            }
            Err(e) => Err(e),
            Ok(()) => Ok(Pushed {
                rejected: self.checked.into_inner().rejected,
                applied: self.applied.get(),
                acked: self.acked.get(),
            }),
        }
    }
}

/// A device's pull request, as the backend needs it.
#[derive(Debug, Clone, Copy)]
pub struct PullArgs<'a> {
    /// The cursor of the last page applied (`None` the first time).
    pub cursor: Option<&'a str>,
    /// At most this many operations (capped at the server's page limit).
    pub limit: u32,
    /// The highest counter of its own replica the device holds.
    pub own: u64,
    /// The device's clock when it sent the request.
    pub device_time_ms: i64,
    /// Other devices' replicas the device relays runs of.
    pub relaying: &'a [Uuid],
}

/// Replicas a pull's `relaying` is answered for.
const MAX_RELAYING: usize = 64;

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
            &mut |conn, moves, op| checked.borrow_mut().check(conn, moves, op, officer, now_ms),
            &mut |t, applied| {
                applied_n = applied.len();
                let checked = checked.borrow();
                checked.file(t, applied)?;
                finish(t, &checked, applied.len())
            },
        )?;
        Ok((checked.into_inner(), applied_n))
    }

    /// Apply a device's batch of its own operations (see [`Backend::push_with`]).
    pub fn push(
        &self,
        device: &DeviceAuth,
        ops: Vec<Op>,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PushResponse> {
        self.push_with(device, ops, &[], device_time_ms, now_ms)
    }

    /// Apply a device's batch (checked against its scope), file feed rows and record its
    /// acknowledgement, in one transaction; then each signed run of other devices' operations
    /// it relays (`segments`), checked against its author: signature, revocation, then the
    /// author's scope and authority, each run in its own transaction.
    ///
    /// A push relaying nothing may be applied with others waiting for the store (group
    /// commit, `backend/group.rs`): each in a savepoint of its own inside one transaction,
    /// answered once that transaction committed, exactly as if applied one after another.
    pub fn push_with(
        &self,
        device: &DeviceAuth,
        ops: Vec<Op>,
        segments: &[Segment],
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PushResponse> {
        // A device's own operations are its token's; another replica's must come in a run
        // signed by its author, else they are refused before any check, never stored or
        // forwarded; the rest of the batch goes on.
        let total = ops.len();
        let (ops, foreign): (Vec<Op>, Vec<Op>) =
            ops.into_iter().partition(|o| o.replica.0 == device.replica);
        let own = OwnPush {
            device_id: device.device_id.to_string(),
            officer: device.officer_id,
            ops,
            device_time_ms,
            now_ms,
        };
        // Relays are applied after the push's own operations, each in a transaction of its
        // own: a push that relays keeps to itself, so that nothing comes between the two.
        let pushed = if segments.is_empty() && self.store.groups_commits() {
            self.push_grouped(own)?
        } else {
            self.push_own(&own)?
        };
        let mut rejected = pushed.rejected;
        let mut applied = pushed.applied;
        let (relayed, relay_rejected, uncovered) = self.relay(foreign, segments, now_ms)?;
        applied += relayed;
        rejected.extend(relay_rejected);
        rejected.extend(uncovered.iter().map(|o| Rejected {
            replica: o.replica.0,
            counter: o.counter,
            reason: FOREIGN_REPLICA.to_owned(),
        }));
        let duplicates = total.saturating_sub(applied + rejected.len());
        Ok(PushResponse {
            applied: applied as u64,
            duplicates: duplicates as u64,
            rejected,
            acked_counter: pushed.acked as u64,
            server_time_ms: now_ms,
        })
    }

    /// Apply one push's own operations in a transaction of its own.
    pub(super) fn push_own(&self, push: &OwnPush) -> Result<Pushed> {
        let run = PushRun::new(push);
        let outcome = self.store.apply(
            &push.ops,
            &mut |conn, moves, op| run.check(conn, moves, op),
            &mut |t, applied| run.finish(t, applied),
        );
        run.outcome(outcome)
    }

    /// Apply pushes' own operations in this order as one group ([`Storage::apply_group`]):
    /// each push's outcome, or the group's error (nothing kept).
    pub(super) fn push_group(&self, pushes: &[&OwnPush]) -> Result<Vec<Result<Pushed>>> {
        let runs: Vec<PushRun<'_>> = pushes.iter().map(|p| PushRun::new(p)).collect();
        let mut checks: Vec<_> = runs
            .iter()
            .map(|run| {
                move |conn: &Connection, moves: &mut dyn scope::Moves, op: &Op| {
                    run.check(conn, moves, op)
                }
            })
            .collect();
        let mut finishes: Vec<_> = runs
            .iter()
            .map(|run| move |t: &mut dyn Tables, applied: &[&Op]| run.finish(t, applied))
            .collect();
        let mut batches: Vec<GroupBatch<'_>> = pushes
            .iter()
            .zip(checks.iter_mut())
            .zip(finishes.iter_mut())
            .map(|((p, check), finish)| GroupBatch {
                ops: &p.ops,
                check,
                finish,
            })
            .collect();
        let results = self.store.apply_group(&mut batches)?;
        drop(batches);
        if results.len() != runs.len() {
            return Err(ServerError::Internal("group commit: results lost".into()));
        }
        Ok(runs
            .into_iter()
            .zip(results)
            .map(|(run, r)| run.outcome(r))
            .collect())
    }

    /// Apply the signed runs of other devices' operations a device relays. Returns how many
    /// were applied, the refusals, and the operations no segment covers.
    pub(super) fn relay(
        &self,
        foreign: Vec<Op>,
        segments: &[Segment],
        now_ms: i64,
    ) -> Result<(usize, Vec<Rejected>, Vec<Op>)> {
        let mut applied = 0;
        let mut rejected = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // Each run's operations follow each other in `ops`, runs in the order of `segments`
        // (runs of one replica may interleave their counters: a run is one village's).
        let mut rest = foreign.into_iter().peekable();
        for seg in segments {
            let mut run: Vec<Op> = Vec::new();
            while run.len() < seg.count as usize {
                match rest.next_if(|o| {
                    o.replica.0 == seg.replica && (seg.first..=seg.last).contains(&o.counter)
                }) {
                    Some(o) => run.push(o),
                    None => break,
                }
            }
            if !seen.insert((seg.replica, seg.first)) {
                continue; // the same run twice in one request: once is enough
            }
            let author = self.tables(|t| t.author_of_replica(seg.replica))?;
            let refusal = relay_refusal(author.as_ref(), seg, &run, now_ms);
            let refuse = |reason: &str, run: &[Op], rejected: &mut Vec<Rejected>| {
                rejected.extend(run.iter().map(|o| Rejected {
                    replica: o.replica.0,
                    counter: o.counter,
                    reason: reason.to_owned(),
                }));
            };
            let (Some(author), None) = (author, refusal) else {
                refuse(refusal.unwrap_or("unknown_author"), &run, &mut rejected);
                continue;
            };
            let author_id = author.device_id.to_string();
            let mut revoked_meanwhile = false;
            let outcome =
                self.apply_batch(&run, Some(author.officer_id), now_ms, |t, checked, _| {
                    // The author may have been revoked since it was read: read it again in
                    // this transaction, which a revocation's is serialised with (PostgreSQL:
                    // the feed lock; SQLite: one writer), and refuse the run whole if it is
                    // now on the wrong side.
                    let now = t.author_of_replica(seg.replica)?;
                    if after_revocation(now.and_then(|a| a.revoked_at_ms), seg, &run) {
                        revoked_meanwhile = true;
                        return Err(ServerError::Internal("author revoked meanwhile".into()));
                    }
                    for op in &checked.quarantined {
                        t.quarantine(op, &author_id, now_ms)?;
                    }
                    // The author need not send what the server now holds without a gap after
                    // what it had (another village's run may still be missing in between).
                    t.raise_ack_held(&author_id, seg.replica)?;
                    Ok(())
                });
            let (checked, n) = match outcome {
                Err(_) if revoked_meanwhile => {
                    refuse(SegmentRefusal::Revoked.as_str(), &run, &mut rejected);
                    continue;
                }
                other => other?,
            };
            applied += n;
            rejected.extend(checked.rejected);
        }
        Ok((applied, rejected, rest.collect()))
    }

    /// A page of the feed in the device's scope after `cursor`, for a device that lacks none
    /// of its own operations (tests, benches); [`Backend::pull_with`] is the protocol's.
    pub fn pull(
        &self,
        device: &DeviceAuth,
        cursor: Option<&str>,
        limit: u32,
        device_time_ms: i64,
        now_ms: i64,
    ) -> Result<PullResponse> {
        let ask = PullArgs {
            cursor,
            limit,
            own: u64::MAX,
            device_time_ms,
            relaying: &[],
        };
        self.pull_with(device, ask, now_ms)
    }

    /// A page of the feed in the device's scope after the cursor; `ask.own` is the highest
    /// counter of its own replica the device holds (its own operations above it that this
    /// server holds come first).
    pub fn pull_with(
        &self,
        device: &DeviceAuth,
        ask: PullArgs<'_>,
        now_ms: i64,
    ) -> Result<PullResponse> {
        let limit = ask.limit.clamp(1, MAX_PAGE) as usize;
        let scope = self.view(|c| Ok(scope::officer_scope(c, device.officer_id)?))?;
        let (held, lineage, held_others) = self.tables(|t| {
            let held = t.touch_device(
                &device.device_id.to_string(),
                now_ms,
                now_ms.saturating_sub(ask.device_time_ms),
            )?;
            let mut others = Vec::new();
            for r in ask.relaying.iter().take(MAX_RELAYING) {
                if let Some(a) = t.author_of_replica(*r)? {
                    others.push((*r, a.acked_counter));
                }
            }
            Ok((held, crate::storage::lineage(t)?, others))
        })?;
        let ask = cursor::PullAsk {
            cursor: ask.cursor,
            limit,
            own_after: (held > ask.own).then_some(ask.own),
        };
        self.feed_page(device, &scope, &lineage, ask, (held, held_others), now_ms)
    }

    /// One pull page of `device`'s feed; `held`: what the server holds of its replica, and of
    /// the replicas it relays.
    pub(super) fn feed_page(
        &self,
        device: &DeviceAuth,
        scope: &scope::OfficerScope,
        lineage: &crate::generation::Lineage,
        ask: cursor::PullAsk<'_>,
        (held, held_others): (u64, Vec<(Uuid, u64)>),
        now_ms: i64,
    ) -> Result<PullResponse> {
        let mut page = None;
        self.store.feed(device.replica, &mut |feed| {
            page = Some(cursor::pull_page(feed, scope, lineage, ask)?);
            Ok(())
        })?;
        let page = page.ok_or_else(|| ServerError::Internal("feed: not read".into()))?;
        Ok(PullResponse {
            ops: page.ops,
            cursor: page.cursor.encode(),
            has_more: page.has_more,
            dropped: page.dropped,
            dropped_households: page.moved_out.households,
            dropped_residents: page.moved_out.residents,
            server_time_ms: now_ms,
            held,
            held_others,
            // The web layer sets the lease (a server setting); 0 here.
            lease_until_ms: 0,
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
