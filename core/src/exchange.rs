//! Phone↔phone: two enrolled devices give each other the signed work the other lacks, over
//! whatever carries bytes (Bluetooth, Wi-Fi Direct, Nearby, a TCP socket, a test's pipe).
//!
//! The library makes and reads messages; the app moves them. Each side calls
//! [`Exchange::start`] and sends what it returns, then hands every message it receives to
//! [`Exchange::receive`] and sends what that returns, until [`Exchange::is_done`]. Messages
//! are postcard bytes ([`PeerMessage`]); the order is: `Hello` both ways (a certificate and a
//! fresh challenge), `Proof` both ways (the challenge signed with the certificate's key: a
//! certificate alone proves nothing, it travels with every run), then each side's `Runs` and
//! its `Done`. Nothing is given to, or taken from, a side before its `Proof` checks out.
//!
//! Scoped both ways:
//! - a phone gives the other only signed runs of field work (households, residents, visits,
//!   assistance steps, retractions) in the villages that the *giver's* store says the other's
//!   officer works in (assignments, or a commune lead's commune), and only runs the other does
//!   not hold already (its `Hello` says how far it holds each replica);
//! - a phone takes a run only if the author's certificate is the server's (checked with the
//!   server's key from enrolment), the run's signature is the author's, and every operation of
//!   it is in its own officer's villages; anything else is refused whole and counted.
//!
//! What a phone takes it keeps with its signature and relays at its next sync with the
//! server (or the next exchange), which checks the signatures and the author's authority again
//! (`docs/sync-protocol.md`, "Signed operations").

use crate::error::{Error, Result};
use crate::op::{Op, OpBody};
use crate::segments::{op_village, SignedRun};
use crate::sign::{self, DeviceCertificate, Segment, SegmentRefusal};
use crate::store::Store;
use crate::{Entity, Field, Key, Value};
use ed25519_dalek::Signer;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Operations per `Runs` message (whole runs; a run alone may reach it).
const OPS_PER_MESSAGE: usize = 1000;

/// A signed run as it travels between phones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRun {
    /// The signature.
    pub segment: Segment,
    /// The author's certificate.
    pub certificate: DeviceCertificate,
    /// The run's operations, in counter order.
    pub ops: Vec<Op>,
}

/// One message of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Who the sender is (the server's certificate of its key) and, per replica, the
    /// contiguous counter it holds.
    Hello {
        /// The sender's certificate.
        certificate: DeviceCertificate,
        /// `(replica, contiguous counter)` for every replica the sender holds.
        vector: Vec<(Uuid, u64)>,
        /// Fresh random bytes the other side must sign (`Proof`): a certificate alone proves
        /// nothing, since certificates travel with every run.
        challenge: [u8; 32],
        /// The sender's X25519 public key for this exchange's encrypted channel
        /// ([`crate::channel`]); each `Proof` signs both sides'.
        ephemeral: [u8; 32],
    },
    /// Signed runs the receiver lacks.
    Runs(Vec<WireRun>),
    /// The sender has sent everything it will.
    Done,
    /// The sender's signature, with its certificate's key, of the other side's challenge,
    /// both devices' ids and both ephemeral keys ([`sign::peer_proof_digest`]). Nothing is
    /// given before it checks out.
    Proof {
        /// The signature.
        signature: Vec<u8>,
    },
    /// `Runs` or `Done`, encrypted on the exchange's channel ([`crate::channel`]): after the
    /// proofs, nothing else is read.
    Sealed(Vec<u8>),
}

impl PeerMessage {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Read a message (refusing anything else, with no panic).
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage> {
        postcard::from_bytes(bytes)
            .map_err(|_| Error::invalid("message", "a Doorstep peer message (postcard)"))
    }
}

/// What an exchange did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeReport {
    /// Runs given to the other phone.
    pub runs_sent: u64,
    /// Operations given.
    pub ops_sent: u64,
    /// Runs taken.
    pub runs_taken: u64,
    /// Operations taken that were new here.
    pub ops_new: u64,
    /// Runs refused, with the reason's code (`bad_signature`, `unknown_author`,
    /// `truncated_segment`, `out_of_scope`).
    pub refused: Vec<String>,
    /// Bytes of the messages made and read.
    pub bytes_out: u64,
    /// Bytes of the messages read.
    pub bytes_in: u64,
}

/// The peer as its `Hello` said.
struct Peer {
    certificate: DeviceCertificate,
    vector: HashMap<Uuid, u64>,
    ephemeral: [u8; 32],
}

/// One side of an exchange. It holds no store: each call is given the store (so an app can
/// keep the exchange between messages while the store serves other calls).
pub struct Exchange {
    server_key: Vec<u8>,
    me: DeviceCertificate,
    /// The challenge this side's `Hello` sent.
    challenge: [u8; 32],
    /// This side's key pair for the encrypted channel, and the channel once the peer's
    /// `Hello` came.
    ephemeral: crate::channel::Ephemeral,
    channel: Option<crate::channel::Channel>,
    peer: Option<Peer>,
    /// Whether the peer proved it holds its certificate's key.
    proven: bool,
    sent: Vec<Segment>,
    done_sent: bool,
    done_received: bool,
    report: ExchangeReport,
}

impl Exchange {
    /// Begin an exchange on an enrolled store (it needs the server's key and its own
    /// certificate, from enrolment).
    pub fn new(store: &Store) -> Result<Exchange> {
        let server_key = store
            .server_key()?
            .ok_or_else(|| Error::invalid("store", "an enrolled store (no server key)"))?;
        let me = store
            .certificate()?
            .ok_or_else(|| Error::invalid("store", "an enrolled store (no certificate)"))?;
        Ok(Exchange {
            server_key,
            me,
            challenge: rand::random(),
            ephemeral: crate::channel::Ephemeral::new(),
            channel: None,
            peer: None,
            proven: false,
            sent: Vec::new(),
            done_sent: false,
            done_received: false,
            report: ExchangeReport::default(),
        })
    }

    /// The first message: this side's `Hello`.
    pub fn start(&mut self, store: &Store) -> Result<Vec<u8>> {
        let vector = store
            .version_vector()?
            .0
            .into_iter()
            .map(|(r, c)| (r.0, c))
            .collect();
        let hello = PeerMessage::Hello {
            certificate: self.me.clone(),
            vector,
            challenge: self.challenge,
            ephemeral: self.ephemeral.public,
        };
        Ok(self.out(&hello))
    }

    /// Read one message from the other side; returns the messages to send back (possibly none).
    pub fn receive(&mut self, store: &mut Store, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.report.bytes_in += bytes.len() as u64;
        let message = match PeerMessage::decode(bytes)? {
            PeerMessage::Sealed(sealed) => {
                let channel = self
                    .channel
                    .as_mut()
                    .ok_or_else(|| Error::invalid("message", "Hello before sealed messages"))?;
                match PeerMessage::decode(&channel.open(&sealed)?)? {
                    m @ (PeerMessage::Runs(_) | PeerMessage::Done) => m,
                    _ => return Err(Error::invalid("message", "Runs or Done, sealed")),
                }
            }
            PeerMessage::Runs(_) | PeerMessage::Done => {
                return Err(Error::invalid(
                    "message",
                    "Runs and Done sealed on the exchange's channel",
                ))
            }
            m => m,
        };
        match message {
            PeerMessage::Sealed(_) => Err(Error::invalid("message", "one seal")),
            PeerMessage::Hello {
                certificate,
                vector,
                challenge,
                ephemeral,
            } => self.hello(store, certificate, vector, challenge, ephemeral),
            PeerMessage::Proof { signature } => {
                let peer = self
                    .peer
                    .as_ref()
                    .ok_or_else(|| Error::invalid("message", "Hello before Proof"))?;
                let digest = sign::peer_proof_digest(
                    &self.challenge,
                    peer.certificate.device_id,
                    self.me.device_id,
                    &peer.ephemeral,
                    &self.ephemeral.public,
                );
                if !sign::verify_digest(&peer.certificate.public_key, &digest, &signature) {
                    return Err(Error::invalid(
                        "proof",
                        "the signature of this exchange's challenge by the key of the \
                         certificate presented",
                    ));
                }
                self.proven = true;
                self.give(store)
            }
            PeerMessage::Runs(runs) => {
                // Runs are signed by their authors, but taking them marks them as held by the
                // peer: only a peer that proved its certificate may say so.
                if !self.proven {
                    return Err(Error::invalid("message", "Hello and Proof before Runs"));
                }
                for run in runs {
                    self.take(store, run)?;
                }
                Ok(Vec::new())
            }
            PeerMessage::Done => {
                self.done_received = true;
                // Everything sent before our Done reached the other side before its Done.
                let peer = self.peer_key()?;
                let sent: Vec<&Segment> = self.sent.iter().collect();
                if self.done_sent {
                    store.mark_delivered(&peer, &sent)?;
                }
                Ok(Vec::new())
            }
        }
    }

    /// Whether both sides have said `Done`.
    pub fn is_done(&self) -> bool {
        self.done_sent && self.done_received
    }

    /// What the exchange did so far.
    pub fn report(&self) -> &ExchangeReport {
        &self.report
    }

    fn out(&mut self, m: &PeerMessage) -> Vec<u8> {
        let b = match (m, self.channel.as_mut()) {
            // After the proofs, what is given travels sealed.
            (PeerMessage::Runs(_) | PeerMessage::Done, Some(channel)) => {
                PeerMessage::Sealed(channel.seal(&m.encode())).encode()
            }
            _ => m.encode(),
        };
        self.report.bytes_out += b.len() as u64;
        b
    }

    fn peer_key(&self) -> Result<String> {
        let peer = self
            .peer
            .as_ref()
            .ok_or_else(|| Error::invalid("message", "Hello first"))?;
        Ok(format!("device {}", peer.certificate.device_id))
    }

    /// The peer's `Hello`: its certificate checked with the server's key; the answer is this
    /// side's `Proof` of its own key (nothing is given before the peer's `Proof`).
    fn hello(
        &mut self,
        store: &mut Store,
        certificate: DeviceCertificate,
        vector: Vec<(Uuid, u64)>,
        challenge: [u8; 32],
        ephemeral: [u8; 32],
    ) -> Result<Vec<Vec<u8>>> {
        if self.peer.is_some() {
            return Err(Error::invalid("message", "one Hello"));
        }
        if !sign::verify_certificate(&self.server_key, &certificate) {
            return Err(Error::invalid(
                "certificate",
                "a device certificate of this phone's server",
            ));
        }
        self.channel = Some(crate::channel::Channel::new(
            &self.ephemeral,
            &ephemeral,
            self.me.device_id,
            certificate.device_id,
        )?);
        let digest = sign::peer_proof_digest(
            &challenge,
            self.me.device_id,
            certificate.device_id,
            &self.ephemeral.public,
            &ephemeral,
        );
        let signature = store.signing_key()?.sign(&digest).to_bytes().to_vec();
        self.peer = Some(Peer {
            certificate,
            vector: vector.into_iter().collect(),
            ephemeral,
        });
        Ok(vec![self.out(&PeerMessage::Proof { signature })])
    }

    /// The peer proved its key: give it the runs of its villages it lacks, then `Done`.
    fn give(&mut self, store: &mut Store) -> Result<Vec<Vec<u8>>> {
        if self.done_sent {
            return Err(Error::invalid("message", "one Proof"));
        }
        let peer = self.peer.as_ref().map(|p| &p.certificate);
        let officer = peer.map_or(Uuid::nil(), |c| c.officer_id);
        let villages: Vec<String> = officer_villages(store.connection(), officer)?
            .into_iter()
            .collect();
        store.sign_pending()?;
        let key = self.peer_key()?;
        let mut runs: Vec<SignedRun> = Vec::new();
        for own in [true, false] {
            runs.extend(store.undelivered(&key, own, Some(&villages), usize::MAX)?);
        }
        let holds = |r: &SignedRun| {
            self.peer
                .as_ref()
                .and_then(|p| p.vector.get(&r.segment.replica))
                .is_some_and(|c| *c >= r.segment.last)
        };
        let (held, runs): (Vec<SignedRun>, Vec<SignedRun>) = runs.into_iter().partition(holds);
        let held: Vec<&Segment> = held.iter().map(|r| &r.segment).collect();
        store.mark_delivered(&key, &held)?;
        let mut messages = Vec::new();
        let mut batch: Vec<WireRun> = Vec::new();
        let mut n = 0;
        for run in runs {
            let Some(certificate) = run.certificate else {
                continue; // a run whose author's certificate this phone lacks is not relayed
            };
            if n + run.ops.len() > OPS_PER_MESSAGE && !batch.is_empty() {
                messages.push(self.out(&PeerMessage::Runs(std::mem::take(&mut batch))));
                n = 0;
            }
            n += run.ops.len();
            self.report.runs_sent += 1;
            self.report.ops_sent += run.ops.len() as u64;
            self.sent.push(run.segment.clone());
            batch.push(WireRun {
                segment: run.segment,
                certificate,
                ops: run.ops,
            });
        }
        if !batch.is_empty() {
            messages.push(self.out(&PeerMessage::Runs(batch)));
        }
        messages.push(self.out(&PeerMessage::Done));
        self.done_sent = true;
        if self.done_received {
            let sent: Vec<&Segment> = self.sent.iter().collect();
            store.mark_delivered(&key, &sent)?;
        }
        Ok(messages)
    }

    /// Check one run and, if it passes, apply it and keep it to relay.
    fn take(&mut self, store: &mut Store, run: WireRun) -> Result<()> {
        let refusal = self.check(store, &run)?;
        if let Some(reason) = refusal {
            self.report.refused.push(reason);
            return Ok(());
        }
        let village = run.ops.iter().find_map(|op| {
            village_of_incoming(store.connection(), op, &run.ops)
                .ok()
                .flatten()
        });
        let applied = store.apply_ops(&run.ops)?;
        self.report.ops_new += applied.applied as u64;
        self.report.runs_taken += 1;
        // The ops stay with it: `keep_segment` records which counters are the run's.
        let kept = SignedRun {
            segment: run.segment,
            ops: run.ops,
            certificate: Some(run.certificate),
        };
        store.keep_segment(&kept, village.as_deref())?;
        // The giver holds it: never give it back.
        if let Ok(peer) = self.peer_key() {
            store.mark_delivered(&peer, &[&kept.segment])?;
        }
        Ok(())
    }

    /// Check and take runs that came another way than messages (a bundle's).
    #[cfg(feature = "bundle")]
    pub(crate) fn take_all(&mut self, store: &mut Store, runs: Vec<WireRun>) -> Result<()> {
        for run in runs {
            self.take(store, run)?;
        }
        Ok(())
    }

    fn check(&self, store: &Store, run: &WireRun) -> Result<Option<String>> {
        let c = &run.certificate;
        if c.replica != run.segment.replica || !sign::verify_certificate(&self.server_key, c) {
            return Ok(Some(SegmentRefusal::UnknownAuthor.as_str().into()));
        }
        let ops: Vec<&Op> = run.ops.iter().collect();
        if let Err(r) = sign::verify_segment(&c.public_key, &run.segment, &ops) {
            return Ok(Some(r.as_str().into()));
        }
        for op in &run.ops {
            op.check_shape()?;
            if !is_field_work(op) {
                return Ok(Some("out_of_scope".into()));
            }
        }
        let mine = officer_villages(store.connection(), self.me.officer_id)?;
        for op in &run.ops {
            let v = village_of_incoming(store.connection(), op, &run.ops)?;
            if !v.is_some_and(|v| mine.contains(&v)) {
                return Ok(Some("out_of_scope".into()));
            }
        }
        Ok(None)
    }
}

/// Field work: what phones give each other (reference data comes from the server).
fn is_field_work(op: &Op) -> bool {
    match &op.body {
        OpBody::Set { entity, .. } => matches!(entity, Entity::Household | Entity::Resident),
        OpBody::Visit(_) | OpBody::Assist(_) | OpBody::Retract { .. } => true,
        OpBody::Session(_) | OpBody::Outreach(_) | OpBody::Redact(_) => false,
    }
}

/// The village of an operation not applied yet: from the run itself (a household it creates
/// or moves, a resident it places) or from the store.
fn village_of_incoming(conn: &Connection, op: &Op, run: &[Op]) -> Result<Option<String>> {
    let text = |fields: &[(Field, Value)], f: Field| {
        fields.iter().find_map(|(k, v)| match v {
            Value::Text(t) if *k == f => Some(t.clone()),
            _ => None,
        })
    };
    // Households the run places in a village, and residents it places in a household.
    let mut households: BTreeMap<String, String> = BTreeMap::new();
    let mut residents: BTreeMap<String, String> = BTreeMap::new();
    for o in run {
        if let OpBody::Set {
            entity,
            key: Key::Uuid(id),
            fields,
        } = &o.body
        {
            match entity {
                Entity::Household => {
                    if let Some(v) = text(fields, Field::Village) {
                        households.insert(id.to_string(), v);
                    }
                }
                Entity::Resident => {
                    if let Some(h) = text(fields, Field::Household) {
                        residents.insert(id.to_string(), h);
                    }
                }
                _ => {}
            }
        }
    }
    let household = |id: &str| -> Result<Option<String>> {
        if let Some(v) = households.get(id) {
            return Ok(Some(v.clone()));
        }
        Ok(conn
            .prepare_cached("SELECT village_code FROM households WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    };
    let resident = |id: &str| -> Result<Option<String>> {
        let h = match residents.get(id) {
            Some(h) => Some(h.clone()),
            None => conn
                .prepare_cached("SELECT household_id FROM residents WHERE id = ?1")?
                .query_row([id], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten(),
        };
        match h {
            Some(h) => household(&h),
            None => Ok(None),
        }
    };
    match &op.body {
        OpBody::Set {
            entity: Entity::Household,
            key: Key::Uuid(id),
            fields,
        } => match text(fields, Field::Village) {
            Some(v) => Ok(Some(v)),
            None => household(&id.to_string()),
        },
        OpBody::Set {
            entity: Entity::Resident,
            key: Key::Uuid(id),
            fields,
        } => match text(fields, Field::Household) {
            Some(h) => household(&h),
            None => resident(&id.to_string()),
        },
        OpBody::Visit(v) => household(&v.household_id.to_string()),
        OpBody::Assist(a) => resident(&a.resident_id.to_string()),
        OpBody::Retract { fact_id, .. } => {
            // A fact of the same run is not in the store yet.
            let in_run = run.iter().find(|o| match &o.body {
                OpBody::Visit(v) => v.id == *fact_id,
                OpBody::Assist(a) => a.id == *fact_id,
                _ => false,
            });
            match in_run {
                Some(fact) => village_of_incoming(conn, fact, run),
                None => op_village(conn, op),
            }
        }
        _ => op_village(conn, op),
    }
}

/// The villages an officer works in, as this store knows: their active village assignments,
/// the villages of their household assignments, and for a commune lead the villages of their
/// commune (district and province command exchange nothing phone to phone).
pub fn officer_villages(conn: &Connection, officer: Uuid) -> Result<BTreeSet<String>> {
    let id = officer.to_string();
    let mut out = BTreeSet::new();
    let mut stmt = conn.prepare_cached(
        "SELECT target_id FROM assignments
         WHERE officer_id = ?1 AND target_kind = 'village' AND active = 1 AND target_id IS NOT NULL
         UNION
         SELECT h.village_code FROM assignments a JOIN households h ON h.id = a.target_id
         WHERE a.officer_id = ?1 AND a.target_kind = 'household' AND a.active = 1
           AND h.village_code IS NOT NULL
         UNION
         SELECT u.code FROM officers o JOIN units u ON u.parent_code = o.unit_code
         WHERE o.id = ?1 AND o.role = 'commune_lead' AND o.deleted = 0 AND u.level = 'village'",
    )?;
    for v in stmt.query_map([&id], |r| r.get::<_, String>(0))? {
        out.insert(v?);
    }
    let removed: Option<i64> = conn
        .prepare_cached("SELECT deleted FROM officers WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    if removed.unwrap_or(0) != 0 {
        out.clear();
    }
    Ok(out)
}

/// Run a whole exchange between two stores in memory (tests, and the measure of what an
/// exchange costs): returns both reports.
pub fn exchange_in_memory(
    a: &mut Store,
    b: &mut Store,
) -> Result<(ExchangeReport, ExchangeReport)> {
    let mut x = Exchange::new(a)?;
    let mut y = Exchange::new(b)?;
    let mut to_y = vec![x.start(a)?];
    let mut to_x = vec![y.start(b)?];
    let mut rounds = 0;
    while !(x.is_done() && y.is_done()) {
        rounds += 1;
        if rounds > 1000 || (to_x.is_empty() && to_y.is_empty()) {
            return Err(Error::invalid("exchange", "an exchange that ends"));
        }
        let mut next_y = Vec::new();
        for m in to_x.drain(..) {
            next_y.extend(x.receive(a, &m)?);
        }
        let mut next_x = Vec::new();
        for m in to_y.drain(..) {
            next_x.extend(y.receive(b, &m)?);
        }
        to_y = next_y;
        to_x = next_x;
    }
    Ok((x.report().clone(), y.report().clone()))
}
