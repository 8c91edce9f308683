//! A store's keys and signed segments: its own operations signed for relays, others' kept to
//! relay, and what each peer has been given ([`crate::sign`]; schema v4).

use crate::error::{Error, Result};
use crate::op::{Op, ReplicaId};
use crate::sign::{self, DeviceCertificate, Segment, MAX_SEGMENT_OPS};
use crate::store::Store;
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

/// A segment with its operations and, for another device's, the certificate of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRun {
    /// The signature over the run.
    pub segment: Segment,
    /// The run's operations, in counter order.
    pub ops: Vec<Op>,
    /// The author's certificate, when this store holds it.
    pub certificate: Option<DeviceCertificate>,
}

fn meta_blob(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get::<_, Vec<u8>>(0))
        .optional()?)
}

fn set_meta_blob(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// The village an operation concerns on this store (after it was applied): a household's, a
/// resident's household's, a visit's or assistance step's, a retracted fact's. `None` for
/// reference data (units, officers…) and unit-level facts (sessions, outreach).
pub(crate) fn op_village(conn: &Connection, op: &Op) -> Result<Option<String>> {
    use crate::op::OpBody;
    use crate::{Entity, Key};
    let household = |id: &str| -> Result<Option<String>> {
        Ok(conn
            .prepare_cached("SELECT village_code FROM households WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    };
    let resident = |id: &str| -> Result<Option<String>> {
        let h: Option<String> = conn
            .prepare_cached("SELECT household_id FROM residents WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten();
        match h {
            Some(h) => household(&h),
            None => Ok(None),
        }
    };
    let key = |k: &Key| match k {
        Key::Uuid(u) => u.to_string(),
        Key::Code(c) => c.clone(),
    };
    Ok(match &op.body {
        OpBody::Set {
            entity: Entity::Household,
            key: k,
            ..
        } => household(&key(k))?,
        OpBody::Set {
            entity: Entity::Resident,
            key: k,
            ..
        } => resident(&key(k))?,
        OpBody::Set { .. } | OpBody::Session(_) | OpBody::Outreach(_) => None,
        OpBody::Redact(r) => Some(r.area.clone()),
        OpBody::Visit(v) => household(&v.household_id.to_string())?,
        OpBody::Assist(a) => resident(&a.resident_id.to_string())?,
        OpBody::Retract { fact_id, .. } => {
            let id = fact_id.to_string();
            let visit: Option<String> = conn
                .prepare_cached("SELECT household_id FROM visits WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            match visit {
                Some(h) => household(&h)?,
                None => {
                    let r: Option<String> = conn
                        .prepare_cached("SELECT resident_id FROM assists WHERE id = ?1")?
                        .query_row([&id], |r| r.get(0))
                        .optional()?;
                    match r {
                        Some(r) => resident(&r)?,
                        None => None,
                    }
                }
            }
        }
    })
}

impl Store {
    /// This device's signing key, made on first use and kept in the store (encrypted at rest
    /// with it; it never leaves the store).
    pub(crate) fn signing_key(&mut self) -> Result<SigningKey> {
        if let Some(bytes) = meta_blob(&self.conn, "signing_key")? {
            return sign::key_from_bytes(&bytes)
                .ok_or_else(|| Error::Decode("meta.signing_key: not a key".into()));
        }
        let key = sign::new_key();
        set_meta_blob(&self.conn, "signing_key", &key.to_bytes())?;
        Ok(key)
    }

    /// This device's public key (32 bytes), registered at enrolment.
    pub fn public_key(&mut self) -> Result<Vec<u8>> {
        Ok(self.signing_key()?.verifying_key().to_bytes().to_vec())
    }

    /// Keep what enrolment gave: the server's public key and this device's certificate.
    pub fn set_enrolment_keys(
        &mut self,
        server_key: &[u8],
        certificate: Option<&DeviceCertificate>,
    ) -> Result<()> {
        set_meta_blob(&self.conn, "server_key", server_key)?;
        if let Some(c) = certificate {
            let bytes = postcard::to_allocvec(c).map_err(|e| Error::Decode(e.to_string()))?;
            set_meta_blob(&self.conn, "certificate", &bytes)?;
        }
        Ok(())
    }

    /// The server's public key, from enrolment.
    pub fn server_key(&self) -> Result<Option<Vec<u8>>> {
        meta_blob(&self.conn, "server_key")
    }

    /// This device's certificate, from enrolment.
    pub fn certificate(&self) -> Result<Option<DeviceCertificate>> {
        meta_blob(&self.conn, "certificate")?
            .map(|b| postcard::from_bytes(&b).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    /// Sign this replica's operations not signed yet, in runs of one village each (at most
    /// [`MAX_SEGMENT_OPS`] operations), so that a relay can give each run to exactly the
    /// peers whose scope it is in. Returns how many segments were made.
    pub fn sign_pending(&mut self) -> Result<usize> {
        let key = self.signing_key()?;
        let replica = self.replica;
        let signed: i64 = self.conn.query_row(
            "SELECT coalesce(max(last), 0) FROM segments WHERE replica = ?1",
            [replica.0.as_bytes().as_slice()],
            |r| r.get(0),
        )?;
        // What each server this store syncs with acknowledged of its own operations.
        let acked: Vec<u64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT cursor FROM sync_cursors WHERE substr(peer, 1, ?1) = ?2")?;
            let rows = stmt.query_map(
                params![PUSH_PEER_PREFIX.len() as i64, PUSH_PEER_PREFIX],
                |r| r.get::<_, String>(0),
            )?;
            let mut v = Vec::new();
            for c in rows {
                if let Ok(n) = c?.parse::<u64>() {
                    v.push(n);
                }
            }
            v
        };
        let now = self.now_ms();
        let tx = self.conn.unchecked_transaction()?;
        let mut after = signed as u64;
        let mut made = 0;
        loop {
            let ops = own_ops_after(&tx, replica, after, 1000)?;
            if ops.is_empty() {
                break;
            }
            // One run per village (in the order each village first appears), whatever the
            // order the officer went between them; at most MAX_SEGMENT_OPS each. Runs are also
            // cut where a server's acknowledgement stands, so that a peer relaying them leaves
            // out whole runs that server holds (a signed run cannot be cut later).
            let mut runs: Vec<(RunGroup, Vec<&Op>)> = Vec::new();
            for op in &ops {
                let epoch = acked.iter().filter(|a| **a < op.counter).count();
                let group = (epoch, op_village(&tx, op)?);
                let at = match runs.iter().position(|(g, _)| *g == group) {
                    Some(i) => i,
                    None => {
                        runs.push((group, Vec::new()));
                        runs.len() - 1
                    }
                };
                let run = &mut runs[at].1;
                if run.len() == MAX_SEGMENT_OPS {
                    let full = std::mem::take(run);
                    insert_own(&tx, &key, &full, runs[at].0 .1.clone(), now)?;
                    made += 1;
                }
                runs[at].1.push(op);
            }
            for ((_, village), run) in runs {
                if !run.is_empty() {
                    insert_own(&tx, &key, &run, village, now)?;
                    made += 1;
                }
            }
            after = ops.last().map_or(after, |o| o.counter);
        }
        tx.commit()?;
        Ok(made)
    }

    /// Keep another device's segment (received from a peer, checked) to relay it; `run.ops`
    /// are its operations (already applied), whose counters are recorded with it.
    pub(crate) fn keep_segment(&mut self, run: &SignedRun, village: Option<&str>) -> Result<()> {
        let s = &run.segment;
        self.conn
            .prepare_cached(
                "INSERT INTO segments (replica, first, last, count, signed_at_ms, signature,
                                       village_code, counters)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                s.replica.as_bytes().as_slice(),
                s.first as i64,
                s.last as i64,
                s.count as i64,
                s.signed_at_ms,
                s.signature,
                village,
                counters_blob(run.ops.iter().map(|o| o.counter))?
            ])?;
        if let Some(c) = &run.certificate {
            let bytes = postcard::to_allocvec(c).map_err(|e| Error::Decode(e.to_string()))?;
            self.conn
                .prepare_cached(
                    "INSERT INTO certificates (replica, certificate) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![s.replica.as_bytes().as_slice(), bytes])?;
        }
        Ok(())
    }

    /// The certificate this store holds for another device's replica.
    pub(crate) fn certificate_of(&self, replica: Uuid) -> Result<Option<DeviceCertificate>> {
        if replica == self.replica.0 {
            return self.certificate();
        }
        self.conn
            .prepare_cached("SELECT certificate FROM certificates WHERE replica = ?1")?
            .query_row([replica.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
            .map(|b| postcard::from_bytes(&b).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    /// Signed runs `peer` has not been given, of other replicas than this one (`own`: false)
    /// or of this one (`own`: true), whose village is one of `villages` (`None`: any), at most
    /// `limit` runs, oldest first. Runs whose operations this store no longer holds whole
    /// are left out.
    pub fn undelivered(
        &self,
        peer: &str,
        own: bool,
        villages: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<SignedRun>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.replica, s.first, s.last, s.count, s.signed_at_ms, s.signature,
                    s.village_code, s.counters
             FROM segments s
             WHERE (s.replica = ?1) = ?2
               AND NOT EXISTS (SELECT 1 FROM segment_deliveries d
                               WHERE d.peer = ?3 AND d.replica = s.replica AND d.first = s.first)
             ORDER BY s.signed_at_ms, s.replica, s.first",
        )?;
        let mut rows = stmt.query(params![self.replica.0.as_bytes().as_slice(), own, peer])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            if out.len() == limit {
                break;
            }
            let village: Option<String> = row.get(6)?;
            if let Some(vs) = villages {
                if !village.as_ref().is_some_and(|v| vs.contains(v)) {
                    continue;
                }
            }
            let replica = Uuid::from_slice(&row.get::<_, Vec<u8>>(0)?)
                .map_err(|e| Error::Decode(e.to_string()))?;
            let segment = Segment {
                replica,
                first: row.get::<_, i64>(1)? as u64,
                last: row.get::<_, i64>(2)? as u64,
                count: row.get::<_, i64>(3)? as u32,
                signed_at_ms: row.get(4)?,
                signature: row.get(5)?,
            };
            let mut ops = ops_in(&self.conn, ReplicaId(replica), segment.first, segment.last)?;
            if let Some(blob) = row.get::<_, Option<Vec<u8>>>(7)? {
                let counters: Vec<u64> =
                    postcard::from_bytes(&blob).map_err(|e| Error::Decode(e.to_string()))?;
                ops.retain(|o| counters.binary_search(&o.counter).is_ok());
            }
            if ops.len() != segment.count as usize {
                continue;
            }
            let certificate = self.certificate_of(replica)?;
            out.push(SignedRun {
                segment,
                ops,
                certificate,
            });
        }
        Ok(out)
    }

    /// Other devices' replicas with runs `peer` has not been given (at most `limit`).
    pub fn relaying(&self, peer: &str, limit: usize) -> Result<Vec<Uuid>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT s.replica FROM segments s
             WHERE s.replica != ?1
               AND NOT EXISTS (SELECT 1 FROM segment_deliveries d
                               WHERE d.peer = ?2 AND d.replica = s.replica AND d.first = s.first)
             ORDER BY s.replica LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![self.replica.0.as_bytes().as_slice(), peer, limit as i64],
            |r| r.get::<_, Vec<u8>>(0),
        )?;
        rows.map(|r| Uuid::from_slice(&r?).map_err(|e| Error::Decode(e.to_string())))
            .collect()
    }

    /// Record that `peer` holds each replica up to its counter: runs within are not sent.
    pub fn mark_held(&mut self, peer: &str, held: &[(Uuid, u64)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for (replica, through) in held {
            tx.prepare_cached(
                "INSERT INTO segment_deliveries (peer, replica, first)
                 SELECT ?1, replica, first FROM segments WHERE replica = ?2 AND last <= ?3
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                peer,
                replica.as_bytes().as_slice(),
                i64::try_from(*through).unwrap_or(i64::MAX)
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Record that `peer` has been given these runs.
    pub fn mark_delivered(&mut self, peer: &str, segments: &[&Segment]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for s in segments {
            tx.prepare_cached(
                "INSERT INTO segment_deliveries (peer, replica, first) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                peer,
                s.replica.as_bytes().as_slice(),
                s.first as i64
            ])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn insert_own(
    conn: &Connection,
    key: &SigningKey,
    run: &[&Op],
    village: Option<String>,
    now: i64,
) -> Result<()> {
    let Some(seg) = sign::sign_segment(key, run, now) else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO segments (replica, first, last, count, signed_at_ms, signature, village_code,
                               counters)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seg.replica.as_bytes().as_slice(),
        seg.first as i64,
        seg.last as i64,
        seg.count as i64,
        seg.signed_at_ms,
        seg.signature,
        village,
        counters_blob(run.iter().map(|o| o.counter))?
    ])?;
    Ok(())
}

fn read_ops(conn: &Connection, replica: ReplicaId, sql: &str, a: i64, b: i64) -> Result<Vec<Op>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![replica.0.as_bytes().as_slice(), a, b])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let body: Vec<u8> = row.get(2)?;
        out.push(Op {
            replica,
            counter: row.get::<_, i64>(0)? as u64,
            hlc: crate::Hlc::from_sql(row.get(1)?),
            body: postcard::from_bytes(&body).map_err(|e| Error::Decode(e.to_string()))?,
        });
    }
    Ok(out)
}

fn own_ops_after(conn: &Connection, replica: ReplicaId, after: u64, n: usize) -> Result<Vec<Op>> {
    read_ops(
        conn,
        replica,
        "SELECT counter, hlc, body FROM oplog WHERE replica = ?1 AND counter > ?2
         ORDER BY counter LIMIT ?3",
        after as i64,
        n as i64,
    )
}

/// How the sync client names a server's push cursor in `sync_cursors` (`push <base URL>`:
/// what that server acknowledged of this store's own operations).
pub(crate) const PUSH_PEER_PREFIX: &str = "push ";

/// What a run of the store's own operations shares: the stretch between two servers'
/// acknowledgements it lies in, and its village.
type RunGroup = (usize, Option<String>);

/// A run's counters as stored in `segments.counters` (ascending: runs are in counter order).
fn counters_blob(counters: impl Iterator<Item = u64>) -> Result<Vec<u8>> {
    let list: Vec<u64> = counters.collect();
    postcard::to_allocvec(&list).map_err(|e| Error::Decode(e.to_string()))
}

/// Every operation of `replica` this store holds in `first..=last` (a run's, with those of
/// other runs interleaved with it: the caller keeps the run's counters).
fn ops_in(conn: &Connection, replica: ReplicaId, first: u64, last: u64) -> Result<Vec<Op>> {
    read_ops(
        conn,
        replica,
        "SELECT counter, hlc, body FROM oplog WHERE replica = ?1 AND counter >= ?2
         AND counter <= ?3 ORDER BY counter",
        first as i64,
        last as i64,
    )
}
