//! File bundles: signed work carried where no link reaches — a USB stick, an SD card, a chat
//! attachment — to the server or to another phone (`docs/sync-protocol.md`, "Bundles").
//!
//! A bundle is the signed runs ([`crate::exchange::WireRun`]) the recipient may lack,
//! compressed (zstd), encrypted to the recipient and signed by the phone that made it:
//!
//! ```text
//! "DOORSTEP-BUNDLE-1\n" ‖ postcard(Envelope)
//! Envelope { sender: DeviceCertificate, recipient: Ed25519 public key, ephemeral: X25519 key,
//!            nonce, ciphertext = ChaCha20-Poly1305(key, zstd(postcard(Vec<WireRun>))),
//!            signature: Ed25519 of the sender over everything before it }
//! key = SHA-256(domain ‖ X25519(ephemeral, recipient) ‖ ephemeral ‖ recipient)
//! ```
//!
//! The recipient's X25519 key is its Ed25519 key in Montgomery form, so no second key is
//! distributed: the server's is the `server_key` every phone has from enrolment, a phone's is in
//! its certificate. Whoever opens a bundle checks the sender's certificate (the server's key),
//! the sender's signature, then each run as an exchange would (its author's certificate and
//! signature; on a phone, its own villages; on the server, the author's scope and authority).
//! Opening a bundle twice, or bundles in any order, changes nothing more: every operation is
//! applied once.

use crate::error::{Error, Result};
use crate::exchange::WireRun;
use crate::sign::{self, DeviceCertificate};
use crate::store::Store;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"DOORSTEP-BUNDLE-1\n";
const KEY_DOMAIN: &[u8] = b"doorstep bundle key v1\0";
const SIGN_DOMAIN: &[u8] = b"doorstep bundle v1\0";
/// The largest bundle opened (compressed or not): far above a commune's roster.
const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    sender: DeviceCertificate,
    recipient: Vec<u8>,
    ephemeral: [u8; 32],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    signature: Vec<u8>,
}

impl Envelope {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(SIGN_DOMAIN);
        h.update(postcard::to_allocvec(&self.sender).unwrap_or_default());
        h.update((self.recipient.len() as u64).to_le_bytes());
        h.update(&self.recipient);
        h.update(self.ephemeral);
        h.update(self.nonce);
        h.update((self.ciphertext.len() as u64).to_le_bytes());
        h.update(&self.ciphertext);
        h.finalize().to_vec()
    }
}

fn montgomery(ed25519_public: &[u8]) -> Result<MontgomeryPoint> {
    let bytes: [u8; 32] = ed25519_public
        .try_into()
        .map_err(|_| Error::invalid("recipient", "a 32-byte Ed25519 public key"))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Error::invalid("recipient", "a 32-byte Ed25519 public key"))?;
    Ok(key.to_montgomery())
}

fn aead_key(shared: &MontgomeryPoint, ephemeral: &[u8; 32], recipient: &[u8]) -> Key {
    let mut h = Sha256::new();
    h.update(KEY_DOMAIN);
    h.update(shared.as_bytes());
    h.update(ephemeral);
    h.update(recipient);
    let digest: [u8; 32] = h.finalize().into();
    Key::from(digest)
}

/// Seal `runs` for `recipient` (its Ed25519 public key), signed by `sender_key` whose
/// certificate is `sender`.
pub fn seal(
    runs: &[WireRun],
    sender: &DeviceCertificate,
    sender_key: &SigningKey,
    recipient: &[u8],
) -> Result<Vec<u8>> {
    let plain = postcard::to_allocvec(runs).map_err(|e| Error::Decode(e.to_string()))?;
    let (ephemeral, nonce, ciphertext) = encrypt_for(recipient, &plain)?;
    let mut env = Envelope {
        sender: sender.clone(),
        recipient: recipient.to_vec(),
        ephemeral,
        nonce,
        ciphertext,
        signature: Vec::new(),
    };
    env.signature = sender_key.sign(&env.signed_bytes()).to_bytes().to_vec();
    let mut out = MAGIC.to_vec();
    out.extend(postcard::to_allocvec(&env).map_err(|e| Error::Decode(e.to_string()))?);
    Ok(out)
}

/// What an opened bundle holds: who made it, and the runs.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The phone that made the bundle (its certificate, checked with the server's key).
    pub sender: DeviceCertificate,
    /// The signed runs (each still to be checked against its author).
    pub runs: Vec<WireRun>,
}

/// Open a bundle sealed for the holder of `recipient_key`, checking the sender's certificate
/// with `server_public` and the sender's signature. Errors name `bundle` and what is wrong,
/// never a value from inside it.
pub fn open(bytes: &[u8], recipient_key: &SigningKey, server_public: &[u8]) -> Result<Opened> {
    let bad = |what: &'static str| Error::invalid("bundle", what);
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(bad("a bundle of at most 256 MiB"));
    }
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("a Doorstep bundle (DOORSTEP-BUNDLE-1)"))?;
    let env: Envelope = postcard::from_bytes(body).map_err(|_| bad("a whole Doorstep bundle"))?;
    let me = recipient_key.verifying_key().to_bytes();
    if env.recipient != me {
        return Err(bad("a bundle made for this recipient"));
    }
    if !sign::verify_certificate(server_public, &env.sender) {
        return Err(bad("a bundle from a device this server certified"));
    }
    if !sign::verify_digest(&env.sender.public_key, &env.signed_bytes(), &env.signature) {
        return Err(bad("a bundle signed by its sender (altered or forged)"));
    }
    let plain = decrypt_with(recipient_key, &env.ephemeral, &env.nonce, &env.ciphertext)?;
    let runs: Vec<WireRun> =
        postcard::from_bytes(&plain).map_err(|_| bad("a bundle whose runs decode"))?;
    Ok(Opened {
        sender: env.sender,
        runs,
    })
}

const AREA_MAGIC: &[u8] = b"DOORSTEP-AREA-1\n";
const AREA_SIGN_DOMAIN: &[u8] = b"doorstep area bundle v1\0";

/// A device's whole area as its first pull would bring it, sealed by the server for that
/// device: `"DOORSTEP-AREA-1\n" ‖ postcard(AreaEnvelope)`, encrypted as a bundle is and signed
/// with the server's key (which every enrolled phone holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AreaEnvelope {
    recipient: Vec<u8>,
    ephemeral: [u8; 32],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    signature: Vec<u8>,
}

impl AreaEnvelope {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(AREA_SIGN_DOMAIN);
        h.update((self.recipient.len() as u64).to_le_bytes());
        h.update(&self.recipient);
        h.update(self.ephemeral);
        h.update(self.nonce);
        h.update((self.ciphertext.len() as u64).to_le_bytes());
        h.update(&self.ciphertext);
        h.finalize().to_vec()
    }
}

/// What an area bundle carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    /// The device it was made for.
    pub device_id: uuid::Uuid,
    /// When the server made it (Unix ms).
    pub made_at_ms: i64,
    /// The pull pages of a first pull, in order (the last has `has_more` false).
    pub pages: Vec<crate::wire::PullResponse>,
}

/// Encrypt `plain` for `recipient` (an Ed25519 public key): ephemeral key, nonce, ciphertext.
fn encrypt_for(recipient: &[u8], plain: &[u8]) -> Result<([u8; 32], [u8; 12], Vec<u8>)> {
    let point = montgomery(recipient)?;
    let secret: [u8; 32] = rand::random();
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
    let shared = point.mul_clamped(secret);
    let packed = zstd_compress(plain)?;
    let nonce: [u8; 12] = rand::random();
    let ciphertext = ChaCha20Poly1305::new(&aead_key(&shared, &ephemeral, recipient))
        .encrypt(Nonce::from_slice(&nonce), packed.as_slice())
        .map_err(|_| Error::invalid("bundle", "contents that can be encrypted"))?;
    Ok((ephemeral, nonce, ciphertext))
}

/// Decrypt and unpack what [`encrypt_for`] made for `recipient_key`'s public key.
fn decrypt_with(
    recipient_key: &SigningKey,
    ephemeral: &[u8; 32],
    nonce: &[u8; 12],
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    let bad = |what: &'static str| Error::invalid("bundle", what);
    let me = recipient_key.verifying_key().to_bytes();
    let shared = MontgomeryPoint(*ephemeral).mul_clamped(recipient_key.to_scalar_bytes());
    let packed = ChaCha20Poly1305::new(&aead_key(&shared, ephemeral, &me))
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| bad("a bundle that decrypts (altered, or for another key)"))?;
    zstd_decompress(&packed).map_err(|_| bad("a bundle whose contents unpack"))
}

/// Seal a device's area (`area`) for it (`recipient`: its public key), signed with the
/// server's key.
pub fn seal_area(area: &Area, server_key: &SigningKey, recipient: &[u8]) -> Result<Vec<u8>> {
    let plain = postcard::to_allocvec(area).map_err(|e| Error::Decode(e.to_string()))?;
    let (ephemeral, nonce, ciphertext) = encrypt_for(recipient, &plain)?;
    let mut env = AreaEnvelope {
        recipient: recipient.to_vec(),
        ephemeral,
        nonce,
        ciphertext,
        signature: Vec::new(),
    };
    env.signature = server_key.sign(&env.signed_bytes()).to_bytes().to_vec();
    let mut out = AREA_MAGIC.to_vec();
    out.extend(postcard::to_allocvec(&env).map_err(|e| Error::Decode(e.to_string()))?);
    Ok(out)
}

/// Open an area bundle sealed for the holder of `recipient_key`, checking the server's
/// signature with `server_public`. Errors name `bundle`, never a value from inside it.
pub fn open_area(bytes: &[u8], recipient_key: &SigningKey, server_public: &[u8]) -> Result<Area> {
    let bad = |what: &'static str| Error::invalid("bundle", what);
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(bad("a bundle of at most 256 MiB"));
    }
    let body = bytes
        .strip_prefix(AREA_MAGIC)
        .ok_or_else(|| bad("a Doorstep area bundle (DOORSTEP-AREA-1)"))?;
    let env: AreaEnvelope =
        postcard::from_bytes(body).map_err(|_| bad("a whole Doorstep area bundle"))?;
    let me = recipient_key.verifying_key().to_bytes();
    if env.recipient != me {
        return Err(bad("a bundle made for this device"));
    }
    if !sign::verify_digest(server_public, &env.signed_bytes(), &env.signature) {
        return Err(bad(
            "a bundle signed by this device's server (altered or forged)",
        ));
    }
    let plain = decrypt_with(recipient_key, &env.ephemeral, &env.nonce, &env.ciphertext)?;
    postcard::from_bytes(&plain).map_err(|_| bad("a bundle whose pages decode"))
}

fn zstd_compress(b: &[u8]) -> Result<Vec<u8>> {
    Ok(zstd::encode_all(b, 3)?)
}

fn zstd_decompress(b: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    zstd::Decoder::new(b)?
        .take(MAX_BUNDLE_BYTES as u64)
        .read_to_end(&mut out)?;
    Ok(out)
}

impl Store {
    /// A bundle of the signed work `peer` (a server URL's push key, `device <id>`, any label)
    /// has not been given, of `villages` (`None`: all), sealed for `recipient` (an Ed25519
    /// public key: the server's, or a phone's from its certificate). The runs are not marked
    /// given (a file can be lost): the recipient ignores what it holds.
    pub fn export_bundle(
        &mut self,
        recipient: &[u8],
        peer: &str,
        villages: Option<&[String]>,
    ) -> Result<Vec<u8>> {
        let me = self
            .certificate()?
            .ok_or_else(|| Error::invalid("store", "an enrolled store (no certificate)"))?;
        self.sign_pending()?;
        let mut runs = Vec::new();
        for own in [true, false] {
            for r in self.undelivered(peer, own, villages, usize::MAX)? {
                if let Some(certificate) = r.certificate {
                    runs.push(WireRun {
                        segment: r.segment,
                        certificate,
                        ops: r.ops,
                    });
                }
            }
        }
        let key = self.signing_key()?;
        seal(&runs, &me, &key, recipient)
    }

    /// Open a bundle sealed for this phone and take its runs as an exchange would (the
    /// author's certificate and signature, this officer's villages). Returns what was taken.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<crate::exchange::ExchangeReport> {
        let server = self
            .server_key()?
            .ok_or_else(|| Error::invalid("store", "an enrolled store (no server key)"))?;
        let key = self.signing_key()?;
        let opened = open(bytes, &key, &server)?;
        let mut x = crate::exchange::Exchange::new(self)?;
        x.take_all(self, opened.runs)?;
        Ok(x.report().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn cert(server: &SigningKey, device: &SigningKey) -> DeviceCertificate {
        sign::certify(
            server,
            DeviceCertificate {
                replica: Uuid::from_u128(1),
                officer_id: Uuid::from_u128(2),
                device_id: Uuid::from_u128(3),
                public_key: device.verifying_key().to_bytes().to_vec(),
                issued_at_ms: 1,
                signature: Vec::new(),
            },
        )
    }

    #[test]
    fn a_bundle_opens_for_its_recipient_only_and_any_change_is_refused() {
        let server = sign::new_key();
        let phone = sign::new_key();
        let sender = cert(&server, &phone);
        let to = server.verifying_key().to_bytes();
        let sealed = seal(&[], &sender, &phone, &to).unwrap();
        let opened = open(&sealed, &server, &to).unwrap();
        assert_eq!(opened.sender, sender);
        assert!(opened.runs.is_empty());
        // Another recipient cannot open it.
        let other = sign::new_key();
        assert!(open(&sealed, &other, &to).is_err());
        // A flipped byte anywhere is refused, with no panic.
        for i in [MAGIC.len() + 3, sealed.len() / 2, sealed.len() - 1] {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(open(&bent, &server, &to).is_err(), "byte {i}");
        }
        // A sender the server did not certify.
        let stranger = cert(&sign::new_key(), &phone);
        let forged = seal(&[], &stranger, &phone, &to).unwrap();
        let e = open(&forged, &server, &to).unwrap_err().to_string();
        assert!(e.contains("bundle"), "{e}");
        assert!(open(b"not a bundle", &server, &to).is_err());
    }
}
