//! Operations: the unit of replication.
//!
//! Every change a replica makes is an [`Op`] with a dot (replica id, per-replica counter, both
//! never reused) and an HLC stamp. Replicas exchange operations, never table rows: the
//! materialised tables are a deterministic function of the *set* of operations a replica holds,
//! which is what makes merging commutative, associative and idempotent (a set union is).
//!
//! Operations are encoded with postcard (compact varints) for the log and the wire. The body
//! enum is append-only: new variants go at the end, so old logs stay readable.

use crate::hlc::Hlc;
use crate::model::{Assist, Entity, Field, Key, Outreach, Session, Value, Visit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A replica's id: random, made once when the store is created, kept for life.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub Uuid);

impl ReplicaId {
    /// A fresh random id.
    pub fn random() -> Self {
        ReplicaId(Uuid::new_v4())
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A total order over all stamps of all replicas: HLC first, replica id to break ties.
/// Last-writer-wins registers keep the value with the greatest stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// The hybrid logical clock.
    pub hlc: Hlc,
    /// Tie-break.
    pub replica: ReplicaId,
}

/// One replicated change.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// Who made it.
    pub replica: ReplicaId,
    /// The replica's counter, from 1, without gaps.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub counter: u64,
    /// When, on the hybrid logical clock.
    pub hlc: Hlc,
    /// What.
    pub body: OpBody,
}

impl Op {
    /// The LWW order key.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            hlc: self.hlc,
            replica: self.replica,
        }
    }

    /// Encode for the log or the wire.
    pub fn encode(&self) -> Vec<u8> {
        // Encoding into a Vec cannot fail for these types.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Rebuild an operation from its log columns (`oplog.replica`, `counter`, `hlc`, `body`).
    pub fn from_log(replica: &[u8], counter: i64, hlc: i64, body: &[u8]) -> crate::Result<Op> {
        let replica = Uuid::from_slice(replica).map_err(|e| crate::Error::Decode(e.to_string()))?;
        Ok(Op {
            replica: ReplicaId(replica),
            counter: counter as u64,
            hlc: Hlc::from_sql(hlc),
            body: postcard::from_bytes(body).map_err(|e| crate::Error::Decode(e.to_string()))?,
        })
    }

    /// Decode what [`Op::encode`] produced.
    pub fn decode(bytes: &[u8]) -> crate::Result<Op> {
        postcard::from_bytes(bytes).map_err(|e| crate::Error::Decode(e.to_string()))
    }

    /// Check what a peer cannot be trusted to have checked: that a `Set` names a field of its
    /// entity, and that unit keys are codes while other keys are UUIDs.
    pub fn check_shape(&self) -> crate::Result<()> {
        if self.counter == 0 {
            return Err(crate::Error::Decode(
                "operation counter 0 (counters start at 1)".into(),
            ));
        }
        if let OpBody::Set {
            entity,
            key,
            fields,
        } = &self.body
        {
            if fields.is_empty() {
                return Err(crate::Error::Decode("set operation without fields".into()));
            }
            for (i, (field, value)) in fields.iter().enumerate() {
                if !field.accepts(value) {
                    return Err(crate::Error::Decode(format!(
                        "wrong value type for field {field}"
                    )));
                }
                if !entity.has(*field) {
                    return Err(crate::Error::Decode(format!(
                        "field {field} does not belong to entity {entity}"
                    )));
                }
                if fields[..i].iter().any(|(f, _)| f == field) {
                    return Err(crate::Error::Decode(format!("field {field} set twice")));
                }
            }
            let key_ok = matches!((entity, key), (Entity::Unit, Key::Code(_)))
                || (!matches!(entity, Entity::Unit) && matches!(key, Key::Uuid(_)));
            if !key_ok {
                return Err(crate::Error::Decode(format!(
                    "wrong key kind for entity {entity}"
                )));
            }
        }
        if let OpBody::Redact(r) = &self.body {
            if r.area.is_empty() || r.area.len() > 32 {
                return Err(crate::Error::Decode(
                    "redaction area: a unit code of 1-32 characters".into(),
                ));
            }
            if r.facts.len() > Redaction::MAX_FACTS {
                return Err(crate::Error::Decode(format!(
                    "redaction facts: at most {} ids",
                    Redaction::MAX_FACTS
                )));
            }
        }
        Ok(())
    }
}

/// What an operation does.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpBody {
    /// Set last-writer-wins fields of an entity (creating the entity if needed). Each field is
    /// its own register; all carry this operation's stamp.
    Set {
        /// Which kind of entity.
        entity: Entity,
        /// Which entity.
        key: Key,
        /// The fields and their new values, each field at most once.
        fields: Vec<(Field, Value)>,
    },
    /// Add a visit fact.
    Visit(Visit),
    /// Add an assistance fact.
    Assist(Assist),
    /// Retract a fact (a visit or an assistance step) recorded by mistake. Permanent.
    Retract {
        /// The fact's id.
        fact_id: Uuid,
        /// Why (free text, shown to supervisors).
        reason: Option<String>,
    },
    /// Add a receiving-point session fact (schema v2).
    Session(Session),
    /// Add an outreach event fact (schema v2).
    Outreach(Outreach),
    /// Erase the free text and the location of facts, and ask every replica to compact its
    /// log (schema v6; `docs/sync-protocol.md`, "Retention"). Only the server makes it.
    Redact(Redaction),
}

/// Facts whose personal values (note, location, retraction reason) are erased for good: a
/// campaign's retention ended, or a resident's data was erased. Whatever order it arrives
/// in, the facts it names keep no such value on any replica ([`crate::redact`]).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Redaction {
    /// The unit (a village, or a commune for receiving-point sessions and outreach) the
    /// facts lie in: the server files the operation there, so the devices of that unit
    /// receive it.
    pub area: String,
    /// The facts' ids, at most [`Redaction::MAX_FACTS`]; none: only compact the log.
    pub facts: Vec<Uuid>,
}

impl Redaction {
    /// The most facts one operation names.
    pub const MAX_FACTS: usize = 1000;
}

/// For each replica, the highest counter up to which this replica holds *every* operation.
///
/// Operations above a gap may be held too (deliveries can arrive out of order); a peer asked
/// for "everything after this vector" may resend some of them, and the duplicates are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector(pub BTreeMap<ReplicaId, u64>);

impl VersionVector {
    /// The contiguous counter held for `replica` (0 if none).
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.0.get(replica).copied().unwrap_or(0)
    }

    /// The pointwise maximum: what two replicas hold together.
    pub fn merge(&self, other: &VersionVector) -> VersionVector {
        let mut out = self.0.clone();
        for (r, c) in &other.0 {
            let e = out.entry(*r).or_insert(0);
            *e = (*e).max(*c);
        }
        VersionVector(out)
    }

    /// Whether this vector has seen everything `other` has.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(r, c)| self.get(r) >= *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vv() -> impl Strategy<Value = VersionVector> {
        proptest::collection::btree_map(0u8..6, 0u64..20, 0..6).prop_map(|m| {
            VersionVector(
                m.into_iter()
                    .map(|(r, c)| (ReplicaId(Uuid::from_u128(r as u128)), c))
                    .collect(),
            )
        })
    }

    fn norm(v: VersionVector) -> VersionVector {
        VersionVector(v.0.into_iter().filter(|(_, c)| *c > 0).collect())
    }

    proptest! {
        #[test]
        fn vv_merge_commutative(a in vv(), b in vv()) {
            prop_assert_eq!(norm(a.merge(&b)), norm(b.merge(&a)));
        }
        #[test]
        fn vv_merge_associative(a in vv(), b in vv(), c in vv()) {
            prop_assert_eq!(norm(a.merge(&b).merge(&c)), norm(a.merge(&b.merge(&c))));
        }
        #[test]
        fn vv_merge_idempotent(a in vv(), b in vv()) {
            prop_assert_eq!(norm(a.merge(&a)), norm(a.clone()));
            let ab = a.merge(&b);
            prop_assert!(ab.dominates(&a) && ab.dominates(&b));
        }
    }

    #[test]
    fn op_round_trips_and_is_compact() {
        let op = Op {
            replica: ReplicaId(Uuid::from_u128(7)),
            counter: 42,
            hlc: Hlc::new(1_690_000_000_000, 3),
            body: OpBody::Set {
                entity: Entity::Resident,
                key: Key::Uuid(Uuid::from_u128(99)),
                fields: vec![(Field::Phone, Value::Text("0912345678".into()))],
            },
        };
        let bytes = op.encode();
        assert_eq!(Op::decode(&bytes).unwrap(), op);
        assert!(bytes.len() < 70, "{} bytes", bytes.len());
        assert!(Op::decode(&bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn shape_check_rejects_foreign_fields() {
        let mut op = Op {
            replica: ReplicaId(Uuid::from_u128(7)),
            counter: 1,
            hlc: Hlc::new(1, 0),
            body: OpBody::Set {
                entity: Entity::Unit,
                key: Key::Code("58".into()),
                fields: vec![(Field::Phone, Value::Null)],
            },
        };
        assert!(op.check_shape().is_err());
        op.body = OpBody::Set {
            entity: Entity::Unit,
            key: Key::Uuid(Uuid::nil()),
            fields: vec![(Field::Name, Value::Null)],
        };
        assert!(op.check_shape().is_err());
        op.body = OpBody::Set {
            entity: Entity::Unit,
            key: Key::Code("58".into()),
            fields: vec![(Field::Name, Value::Null), (Field::Name, Value::Null)],
        };
        assert!(op.check_shape().is_err());
    }
}
