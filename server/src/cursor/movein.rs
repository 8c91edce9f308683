//! What a household or resident brings when it moves **into** a device's villages
//! (`docs/sync-protocol.md`, "Scope that shrinks"): the move itself is filed under the new
//! village, but everything recorded while it lay elsewhere — the household's fields, its
//! residents, their visits, assistance steps and retractions — is filed under the villages it
//! left, which the device is not fed. A pull page that carries such a move (or ends the
//! backfill of a village that holds one) also carries that history, read from the feed of the
//! villages it left, up to the move.

use crate::cursor::FeedSnapshot;
use crate::error::Result;
use doorstep_core::op::Stamp;
use doorstep_core::{Entity, Field, Key, Op, OpBody, ReplicaId, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// A move into a fed village: its feed `seq`, the village it left, the operation.
pub type MoveIn = (u64, Option<String>, Op);

/// A move of a household or resident: its feed `seq`, the village it left, the one it went to.
pub type Move = (u64, Option<String>, Option<String>);

/// What was wanted from one village the moved rows lay in.
#[derive(Default)]
struct Wanted {
    /// Up to which `seq` to read (the latest move out of it that concerns the device).
    until: u64,
    households: BTreeSet<Uuid>,
    residents: BTreeSet<Uuid>,
}

/// The operations, filed under villages outside `fed`, about the households and residents that
/// `moves` (moves into `fed`) bring in: each one's history in every village it lay in before,
/// up to the move. Households and residents whose latest move took them out of `fed` again are
/// left out (the page lists them to erase). The pulling device's own operations are not read
/// (the snapshot leaves them out): it has them.
pub fn history_of_moves_in(
    feed: &mut dyn FeedSnapshot,
    fed: &BTreeSet<String>,
    moves: &[MoveIn],
) -> Result<Vec<Op>> {
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    for (seq, from, op) in moves {
        if from.as_ref().is_none_or(|f| fed.contains(f)) {
            continue;
        }
        let Some((household, id)) = moved(op) else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        let now_in = feed.last_move(&id.to_string())?;
        if !now_in.is_some_and(|area| fed.contains(&area)) {
            continue;
        }
        // Every village it lay in before this move (a household moved twice lay in two).
        for (at, from, to) in feed.moves_of(&id.to_string())? {
            if at > *seq {
                continue;
            }
            for area in [from, to].into_iter().flatten() {
                if fed.contains(&area) {
                    continue;
                }
                let w = wanted.entry(area).or_default();
                w.until = w.until.max(*seq);
                if household {
                    w.households.insert(id);
                } else {
                    w.residents.insert(id);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (area, w) in wanted {
        let rows = feed.area_rows(&area, 0, w.until, i64::MAX as usize)?;
        out.extend(select(feed, fed, &rows, &w)?);
    }
    Ok(out)
}

/// The household (`true`) or resident a move operation moves.
fn moved(op: &Op) -> Option<(bool, Uuid)> {
    match &op.body {
        OpBody::Set {
            entity: Entity::Household,
            key: Key::Uuid(id),
            ..
        } => Some((true, *id)),
        OpBody::Set {
            entity: Entity::Resident,
            key: Key::Uuid(id),
            ..
        } => Some((false, *id)),
        _ => None,
    }
}

/// Of one village's `rows`, those about the wanted households (with the residents whose latest
/// household in these rows is one of them and who did not move out of it to a village the
/// device is not fed) and the wanted residents, and the facts about them.
fn select(
    feed: &mut dyn FeedSnapshot,
    fed: &BTreeSet<String>,
    rows: &[(u64, Op)],
    w: &Wanted,
) -> Result<Vec<Op>> {
    // Each resident's latest household in these rows (last writer wins, as on every replica).
    let mut household_of: HashMap<Uuid, (Stamp, Option<Uuid>)> = HashMap::new();
    for (_, op) in rows {
        if let OpBody::Set {
            entity: Entity::Resident,
            key: Key::Uuid(r),
            fields,
        } = &op.body
        {
            if let Some((_, v)) = fields.iter().find(|(f, _)| *f == Field::Household) {
                let h = match v {
                    Value::Text(t) => Uuid::parse_str(t).ok(),
                    _ => None,
                };
                let stamp = op.stamp();
                let e = household_of.entry(*r).or_insert((stamp, h));
                if stamp >= e.0 {
                    *e = (stamp, h);
                }
            }
        }
    }
    let mut residents = w.residents.clone();
    for (r, (_, h)) in &household_of {
        if h.is_some_and(|h| w.households.contains(&h)) && !residents.contains(r) {
            // A resident who moved on to a household of a village the device is not fed stays
            // out (the move out is filed there).
            let gone = feed
                .last_move(&r.to_string())?
                .is_some_and(|area| !fed.contains(&area));
            if !gone {
                residents.insert(*r);
            }
        }
    }
    let mut facts: HashSet<Uuid> = HashSet::new();
    let mut out: Vec<Op> = Vec::new();
    let mut taken: HashSet<(ReplicaId, u64)> = HashSet::new();
    for (_, op) in rows {
        let keep = match &op.body {
            OpBody::Set {
                entity: Entity::Household,
                key: Key::Uuid(h),
                ..
            } => w.households.contains(h),
            OpBody::Set {
                entity: Entity::Resident,
                key: Key::Uuid(r),
                ..
            } => residents.contains(r),
            OpBody::Visit(v) if w.households.contains(&v.household_id) => {
                facts.insert(v.id);
                true
            }
            OpBody::Assist(a) if residents.contains(&a.resident_id) => {
                facts.insert(a.id);
                true
            }
            _ => false,
        };
        if keep && taken.insert((op.replica, op.counter)) {
            out.push(op.clone());
        }
    }
    // Retractions come after their facts in the feed; read them once the facts are known.
    for (_, op) in rows {
        if let OpBody::Retract { fact_id, .. } = &op.body {
            if facts.contains(fact_id) && taken.insert((op.replica, op.counter)) {
                out.push(op.clone());
            }
        }
    }
    Ok(out)
}
