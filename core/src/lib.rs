//! Doorstep core: the offline-first field store every replica runs.
//!
//! A [`Store`] is one SQLite file holding an operation log and materialised tables. Local
//! writes ([`Store::record_visit`], [`Store::record_assist`], …) validate, then append
//! operations and apply them in one durable transaction. Replication is two calls:
//! [`Store::ops_since`] (what another replica lacks) and [`Store::apply_ops`] (merge what
//! another replica sent). The merge rule — how each operation changes the tables in any order —
//! is [`merge::materialize`]; the model is DESIGN.md §4; `docs/adr/` records the choices.

#[cfg(feature = "bundle")]
pub mod bundle;
pub mod cancel;
pub mod channel;
pub mod check;
pub mod error;
pub mod exchange;
pub mod hlc;
pub mod key;
pub mod lease;
pub mod merge;
pub mod model;
pub mod op;
pub mod peer_stream;
pub mod query;
pub mod record;
pub mod redact;
pub mod roster;
pub mod schema;
pub mod segments;
pub mod sign;
pub mod store;
#[cfg(feature = "sync-protocol")]
pub mod sync;
pub mod text;
pub mod time;
#[cfg(feature = "sync-protocol")]
pub mod transport;
pub mod validate;
pub mod wire;
#[cfg(test)]
mod wire_examples;

pub use cancel::Cancel;
pub use check::{in_campaign_days, CampaignDays};
pub use error::{Error, Result};
pub use hlc::{BootTime, Clock, Hlc, ManualClock, SystemClock};
pub use key::StoreKey;
pub use model::*;
pub use op::{Op, OpBody, Redaction, ReplicaId, VersionVector};
pub use record::*;
pub use segments::SignedRun;
pub use sign::{DeviceCertificate, Segment, SegmentRefusal};
pub use store::{ApplyReport, CheckedBatch, Durability, OpsPage, Options, Store};
