//! Bundles opened on the server: `doorstep bundle import FILE` (`doorstep_core::bundle`).
//!
//! The server opens a bundle sealed with its key, checks the sender's certificate and
//! signature, then treats each run as a relayed push ([`Backend::relay`]): the author's key,
//! revocation, then the author's scope and authority. Audited `bundle_import` with counts.

use super::Backend;
use crate::error::{Result, ServerError};
use crate::storage::Storage;
use doorstep_core::wire::Rejected;
use doorstep_core::{Op, Segment};

/// What a bundle import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleImport {
    /// The device that made the bundle.
    pub sender: uuid::Uuid,
    /// Signed runs in it.
    pub runs: usize,
    /// Operations new to the server, applied.
    pub applied: usize,
    /// Operations the server already held.
    pub duplicates: usize,
    /// Operations refused, with reasons.
    pub rejected: Vec<Rejected>,
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Open a bundle sealed for this server and apply its runs as relayed pushes.
    pub fn import_bundle(&self, actor: &str, bytes: &[u8], now_ms: i64) -> Result<BundleImport> {
        let key = self.tables(crate::storage::server_signing_key)?;
        let public = key.verifying_key().to_bytes();
        let opened = doorstep_core::bundle::open(bytes, &key, &public).map_err(|e| match e {
            doorstep_core::Error::Invalid { field, expected } => {
                ServerError::BadRequest(format!("{field}: expected {expected}"))
            }
            other => ServerError::Core(other),
        })?;
        let runs = opened.runs.len();
        let total: usize = opened.runs.iter().map(|r| r.ops.len()).sum();
        let mut ops: Vec<Op> = Vec::with_capacity(total);
        let mut segments: Vec<Segment> = Vec::with_capacity(runs);
        for r in opened.runs {
            ops.extend(r.ops);
            segments.push(r.segment);
        }
        let (applied, mut rejected, uncovered) = self.relay(ops, &segments, now_ms)?;
        rejected.extend(uncovered.iter().map(|o| Rejected {
            replica: o.replica.0,
            counter: o.counter,
            reason: super::batch::FOREIGN_REPLICA.to_owned(),
        }));
        let duplicates = total.saturating_sub(applied + rejected.len());
        let sender = opened.sender.device_id;
        self.tables(|t| {
            t.audit(
                now_ms,
                actor,
                "bundle_import",
                &sender.to_string(),
                &format!(
                    "runs={runs} applied={applied} duplicates={duplicates} rejected={}",
                    rejected.len()
                ),
            )
        })?;
        Ok(BundleImport {
            sender,
            runs,
            applied,
            duplicates,
            rejected,
        })
    }
}
