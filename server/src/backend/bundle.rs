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

impl BundleImport {
    /// What the console prints: the counts, then each refusal reason with its count.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "bundle from device {}: {} runs, {} applied, {} duplicates, {} refused",
            self.sender,
            self.runs,
            self.applied,
            self.duplicates,
            self.rejected.len()
        );
        let reasons: std::collections::BTreeSet<&str> =
            self.rejected.iter().map(|x| x.reason.as_str()).collect();
        for reason in reasons {
            let n = self.rejected.iter().filter(|x| x.reason == reason).count();
            out.push_str(&format!("\nrefused {reason}: {n}"));
        }
        out
    }
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

/// What an area bundle holds ([`Backend::area_bundle`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaBundle {
    /// The device it is for.
    pub device_id: uuid::Uuid,
    /// The sealed bundle.
    pub bytes: Vec<u8>,
    /// Pull pages in it.
    pub pages: usize,
    /// Operations in it.
    pub ops: usize,
}

impl<S: Storage + ?Sized> Backend<S> {
    /// The whole area of a device as its first pull would bring it (every page, its own
    /// operations the server holds first), sealed for that device and signed with the server's
    /// key: what a new officer's phone imports from a USB stick or an SD card instead of
    /// pulling it over a slow link (`doorstep bundle area`). The device must be enrolled, not
    /// revoked, with a public key. Audited `area_bundle` (a list of residents leaves the server).
    pub fn area_bundle(
        &self,
        actor: &str,
        device_id: uuid::Uuid,
        now_ms: i64,
    ) -> Result<AreaBundle> {
        let (info, author) = self.tables(|t| {
            let info = t.device(&device_id.to_string())?;
            let author = match &info {
                Some(i) => t.author_of_replica(i.replica)?,
                None => None,
            };
            Ok((info, author))
        })?;
        let info = info.ok_or(ServerError::NotFound("device: no such device"))?;
        if info.revoked_at_ms.is_some() {
            return Err(ServerError::BadRequest(
                "device: revoked (enrol a new device)".into(),
            ));
        }
        let public = author
            .filter(|a| a.device_id == device_id)
            .and_then(|a| a.public_key)
            .ok_or_else(|| {
                ServerError::BadRequest(
                    "device: registered no public key (enrol it with this version)".into(),
                )
            })?;
        let device = crate::model::DeviceAuth {
            device_id,
            officer_id: info.officer_id,
            replica: info.replica,
        };
        let scope = self.view(|c| Ok(crate::scope::officer_scope(c, device.officer_id)?))?;
        let lineage = self.tables(|t| crate::storage::lineage(t))?;
        let held = info.acked_counter;
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let ask = crate::cursor::PullAsk {
                cursor: cursor.as_deref(),
                limit: crate::limits::MAX_PAGE as usize,
                // A replaced phone gets its own work back first.
                own_after: (held > 0 && cursor.is_none()).then_some(0),
            };
            let page =
                self.feed_page(&device, &scope, &lineage, ask, (held, Vec::new()), now_ms)?;
            let more = page.has_more;
            cursor = Some(page.cursor.clone());
            pages.push(page);
            if !more {
                break;
            }
        }
        let ops: usize = pages.iter().map(|p| p.ops.len()).sum();
        let area = doorstep_core::bundle::Area {
            device_id,
            made_at_ms: now_ms,
            pages,
        };
        let pages = area.pages.len();
        let key = self.tables(crate::storage::server_signing_key)?;
        let bytes = doorstep_core::bundle::seal_area(&area, &key, &public)?;
        self.tables(|t| {
            t.audit(
                now_ms,
                actor,
                "area_bundle",
                &device_id.to_string(),
                &format!("pages={pages} ops={ops} bytes={}", bytes.len()),
            )
        })?;
        Ok(AreaBundle {
            device_id,
            bytes,
            pages,
            ops,
        })
    }
}

impl AreaBundle {
    /// Write the bundle to `out` (beside it first, then renamed: a cut leaves no half bundle
    /// under the name); what the console prints.
    pub fn write_to(&self, out: &std::path::Path) -> Result<String> {
        let io = |e: std::io::Error| {
            ServerError::Internal(format!("writing the bundle {}: {e}", out.display()))
        };
        let tmp = out.with_extension("partial");
        std::fs::write(&tmp, &self.bytes).map_err(io)?;
        std::fs::rename(&tmp, out).map_err(io)?;
        Ok(format!(
            "area of device {}: {} pages, {} operations, {} bytes in {}",
            self.device_id,
            self.pages,
            self.ops,
            self.bytes.len(),
            out.display()
        ))
    }
}
