//! Signatures: a device's signed segments of its own operations, and the server's certificate
//! of a device's key (`docs/sync-protocol.md`, "Signed operations").
//!
//! Each device makes an Ed25519 key pair in its store (the private key never leaves the store,
//! which is encrypted at rest) and registers the public key at enrolment; the server answers
//! with its own public key and a certificate: the server's signature over the device's replica,
//! officer, id and public key. A device signs its operations in *segments* — a run of its own
//! operations in counter order, one 64-byte signature for the run — so that any relay (another
//! phone, a file, a station hub) can carry them: whoever receives them checks the certificate
//! with the server's key and the segment with the certificate's key, and the server knows who
//! made each operation, whoever delivers it.

use crate::op::Op;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Bytes of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// The most operations one segment covers (a relayed push carries whole segments, and a
/// push carries at most 1,000 operations).
pub const MAX_SEGMENT_OPS: usize = 500;

const SEGMENT_DOMAIN: &[u8] = b"doorstep segment v1\0";
const CERTIFICATE_DOMAIN: &[u8] = b"doorstep device certificate v1\0";

/// A device's signature over a run of its own operations.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The author's replica.
    pub replica: Uuid,
    /// The counter of the run's first operation.
    pub first: u64,
    /// The counter of its last.
    pub last: u64,
    /// How many operations the run holds (counters may skip numbers the author reserved).
    pub count: u32,
    /// When the author signed it (its corrected clock, Unix ms): a device revoked before this
    /// instant has its segment refused.
    pub signed_at_ms: i64,
    /// Ed25519 over the segment's digest ([`segment_digest`]), 64 bytes.
    pub signature: Vec<u8>,
}

/// The server's word that a public key is a device's: what a phone shows another phone.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// The device's replica.
    pub replica: Uuid,
    /// The officer the device belongs to.
    pub officer_id: Uuid,
    /// The device's id on the server.
    pub device_id: Uuid,
    /// The device's Ed25519 public key, 32 bytes.
    pub public_key: Vec<u8>,
    /// When the server issued it (Unix ms).
    pub issued_at_ms: i64,
    /// The server's Ed25519 signature over the fields above, 64 bytes.
    pub signature: Vec<u8>,
}

/// The server's order to a revoked device to erase the personal data it holds, signed with
/// the server's key and bound to the device and its replica (a wipe cannot be forged, nor
/// replayed on another phone).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeOrder {
    /// The revoked device.
    pub device_id: Uuid,
    /// Its replica.
    pub replica: Uuid,
    /// When it was revoked (Unix ms).
    pub revoked_at_ms: i64,
    /// The server's Ed25519 signature over the fields above, 64 bytes.
    pub signature: Vec<u8>,
}

const WIPE_DOMAIN: &[u8] = b"doorstep wipe order v1\0";

/// What a wipe order's signature covers.
pub fn wipe_digest(w: &WipeOrder) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(WIPE_DOMAIN);
    h.update(w.device_id.as_bytes());
    h.update(w.replica.as_bytes());
    h.update(w.revoked_at_ms.to_le_bytes());
    h.finalize().into()
}

/// Sign a wipe order (the server's side).
pub fn sign_wipe(server_key: &SigningKey, mut w: WipeOrder) -> WipeOrder {
    w.signature = server_key.sign(&wipe_digest(&w)).to_bytes().to_vec();
    w
}

/// Check a wipe order with the server's public key.
pub fn verify_wipe(server_public_key: &[u8], w: &WipeOrder) -> bool {
    verify(server_public_key, &wipe_digest(w), &w.signature).is_ok()
}

/// Why a segment, or the operations given with it, is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentRefusal {
    /// Fewer or more operations than the segment says, or not its replica's, or out of its
    /// range or order.
    Truncated,
    /// The signature does not match the operations (forged or altered), or the key is not
    /// a key.
    BadSignature,
    /// The author is not known (no device holds the replica, or it registered no key), or the
    /// certificate shown for it is not the server's.
    UnknownAuthor,
    /// Signed after the author's device was revoked.
    Revoked,
}

impl SegmentRefusal {
    /// The reason's code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentRefusal::Truncated => "truncated_segment",
            SegmentRefusal::BadSignature => "bad_signature",
            SegmentRefusal::UnknownAuthor => "unknown_author",
            SegmentRefusal::Revoked => "revoked",
        }
    }
}

/// What a segment's signature covers: the author, the run's bounds and size, the signing
/// instant and every operation of the run, in counter order.
pub fn segment_digest(seg: &Segment, ops: &[&Op]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SEGMENT_DOMAIN);
    h.update(seg.replica.as_bytes());
    h.update(seg.first.to_le_bytes());
    h.update(seg.last.to_le_bytes());
    h.update(seg.count.to_le_bytes());
    h.update(seg.signed_at_ms.to_le_bytes());
    for op in ops {
        let bytes = op.encode();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    h.finalize().into()
}

/// Sign a run of the author's own operations (in counter order, at most
/// [`MAX_SEGMENT_OPS`], at least one).
pub fn sign_segment(key: &SigningKey, ops: &[&Op], signed_at_ms: i64) -> Option<Segment> {
    let (first, last) = (ops.first()?, ops.last()?);
    let mut seg = Segment {
        replica: first.replica.0,
        first: first.counter,
        last: last.counter,
        count: u32::try_from(ops.len()).ok()?,
        signed_at_ms,
        signature: Vec::new(),
    };
    seg.signature = key.sign(&segment_digest(&seg, ops)).to_bytes().to_vec();
    Some(seg)
}

/// Check a segment against the operations given with it and the author's public key.
pub fn verify_segment(public_key: &[u8], seg: &Segment, ops: &[&Op]) -> Result<(), SegmentRefusal> {
    let in_order = ops.windows(2).all(|w| w[0].counter < w[1].counter);
    let shaped = ops.len() == seg.count as usize
        && in_order
        && ops
            .iter()
            .all(|o| o.replica.0 == seg.replica && (seg.first..=seg.last).contains(&o.counter))
        && ops.first().is_some_and(|o| o.counter == seg.first)
        && ops.last().is_some_and(|o| o.counter == seg.last);
    if !shaped {
        return Err(SegmentRefusal::Truncated);
    }
    verify(public_key, &segment_digest(seg, ops), &seg.signature)
        .map_err(|()| SegmentRefusal::BadSignature)
}

/// What a certificate's signature covers.
pub fn certificate_digest(c: &DeviceCertificate) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CERTIFICATE_DOMAIN);
    h.update(c.replica.as_bytes());
    h.update(c.officer_id.as_bytes());
    h.update(c.device_id.as_bytes());
    h.update((c.public_key.len() as u64).to_le_bytes());
    h.update(&c.public_key);
    h.update(c.issued_at_ms.to_le_bytes());
    h.finalize().into()
}

/// Issue a certificate (the server's side of enrolment).
pub fn certify(server_key: &SigningKey, mut c: DeviceCertificate) -> DeviceCertificate {
    c.signature = server_key.sign(&certificate_digest(&c)).to_bytes().to_vec();
    c
}

/// Check a certificate with the server's public key.
pub fn verify_certificate(server_public_key: &[u8], c: &DeviceCertificate) -> bool {
    verify(server_public_key, &certificate_digest(c), &c.signature).is_ok()
}

const PEER_PROOF_DOMAIN: &[u8] = b"doorstep peer proof v2\0";

/// What the device `prover` signs to show the device `verifier`, in an exchange, that it holds
/// the key of the certificate it presented: `verifier`'s fresh challenge, both ids and both
/// sides' ephemeral X25519 keys (`prover_ephemeral`, `verifier_ephemeral`), which binds the
/// exchange's encrypted channel ([`crate::channel`]) to the two certified devices.
pub fn peer_proof_digest(
    challenge: &[u8; 32],
    prover: Uuid,
    verifier: Uuid,
    prover_ephemeral: &[u8; 32],
    verifier_ephemeral: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(PEER_PROOF_DOMAIN);
    h.update(challenge);
    h.update(prover.as_bytes());
    h.update(verifier.as_bytes());
    h.update(prover_ephemeral);
    h.update(verifier_ephemeral);
    h.finalize().into()
}

/// Whether `signature` is `public_key`'s signature of the 32-byte `digest` (malformed keys and
/// signatures are not).
pub fn verify_digest(public_key: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    <&[u8; 32]>::try_from(digest).is_ok_and(|d| verify(public_key, d, signature).is_ok())
}

fn verify(public_key: &[u8], digest: &[u8; 32], signature: &[u8]) -> Result<(), ()> {
    let key: [u8; PUBLIC_KEY_LEN] = public_key.try_into().map_err(|_| ())?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| ())?;
    let sig: [u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| ())?;
    key.verify(digest, &Signature::from_bytes(&sig))
        .map_err(|_| ())
}

/// A new key pair from the operating system's random source.
pub fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// A key pair from its 32 secret bytes (as kept in a store).
pub fn key_from_bytes(bytes: &[u8]) -> Option<SigningKey> {
    let b: [u8; 32] = bytes.try_into().ok()?;
    Some(SigningKey::from_bytes(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{OpBody, ReplicaId};
    use crate::Hlc;

    fn ops(replica: Uuid, counters: &[u64]) -> Vec<Op> {
        counters
            .iter()
            .map(|&c| Op {
                replica: ReplicaId(replica),
                counter: c,
                hlc: Hlc::from_sql(1_700_000_000_000 << 16),
                body: OpBody::Retract {
                    fact_id: Uuid::from_u128(c as u128),
                    reason: None,
                },
            })
            .collect()
    }

    #[test]
    fn a_signed_segment_verifies_and_any_change_is_refused() {
        let key = new_key();
        let public = key.verifying_key().to_bytes();
        let r = Uuid::from_u128(7);
        let run = ops(r, &[3, 4, 6]);
        let refs: Vec<&Op> = run.iter().collect();
        let seg = sign_segment(&key, &refs, 1_700_000_000_000).unwrap();
        assert_eq!((seg.first, seg.last, seg.count), (3, 6, 3));
        assert_eq!(verify_segment(&public, &seg, &refs), Ok(()));
        // Truncated: an operation left out.
        assert_eq!(
            verify_segment(&public, &seg, &refs[..2]),
            Err(SegmentRefusal::Truncated)
        );
        // Altered: one operation changed.
        let mut altered = run.clone();
        altered[1].hlc = Hlc::from_sql(1);
        let altered: Vec<&Op> = altered.iter().collect();
        assert_eq!(
            verify_segment(&public, &seg, &altered),
            Err(SegmentRefusal::BadSignature)
        );
        // Forged: signed by another key, or a header changed after signing.
        let other = new_key().verifying_key().to_bytes();
        assert_eq!(
            verify_segment(&other, &seg, &refs),
            Err(SegmentRefusal::BadSignature)
        );
        let later = Segment {
            signed_at_ms: seg.signed_at_ms - 1,
            ..seg.clone()
        };
        assert_eq!(
            verify_segment(&public, &later, &refs),
            Err(SegmentRefusal::BadSignature)
        );
        // Not a key, not a signature: refused, no panic.
        assert!(verify_segment(&[0u8; 5], &seg, &refs).is_err());
        let cut = Segment {
            signature: vec![1, 2, 3],
            ..seg.clone()
        };
        assert!(verify_segment(&public, &cut, &refs).is_err());
        // Another replica's operations under this segment.
        let foreign = ops(Uuid::from_u128(8), &[3, 4, 6]);
        let foreign: Vec<&Op> = foreign.iter().collect();
        assert_eq!(
            verify_segment(&public, &seg, &foreign),
            Err(SegmentRefusal::Truncated)
        );
    }

    #[test]
    fn certificates_verify_with_the_servers_key_only() {
        let server = new_key();
        let device = new_key();
        let c = certify(
            &server,
            DeviceCertificate {
                replica: Uuid::from_u128(1),
                officer_id: Uuid::from_u128(2),
                device_id: Uuid::from_u128(3),
                public_key: device.verifying_key().to_bytes().to_vec(),
                issued_at_ms: 1,
                signature: Vec::new(),
            },
        );
        assert!(verify_certificate(&server.verifying_key().to_bytes(), &c));
        assert!(!verify_certificate(&device.verifying_key().to_bytes(), &c));
        let promoted = DeviceCertificate {
            officer_id: Uuid::from_u128(9),
            ..c.clone()
        };
        assert!(!verify_certificate(
            &server.verifying_key().to_bytes(),
            &promoted
        ));
    }
}
