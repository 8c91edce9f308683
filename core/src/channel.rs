//! The phone↔phone exchange's encrypted channel ([`crate::exchange`]): what two phones (or a
//! phone and the station hub) say to each other after their proofs is readable by them alone,
//! whatever carries the bytes (Bluetooth, Wi-Fi Direct, the station's LAN).
//!
//! Each side makes a fresh X25519 key pair for the exchange and sends its public half in its
//! `Hello`. Each side's `Proof` signs, with its certificate's Ed25519 key, the other's challenge,
//! both device ids **and both ephemeral public keys** ([`crate::sign::peer_proof_digest`]): a
//! relay in the middle that swapped the ephemeral keys would have to forge a proof. From the
//! X25519 secret come two keys, one per direction (SHA-256 of a domain string, the direction,
//! the secret and both sides' ids and public keys, the lower device id first); every message
//! after the proofs is ChaCha20-Poly1305 under the sender's key with its position (0, 1, …)
//! as the nonce, so a message dropped, repeated, reordered or altered is refused. The secrets
//! live for one exchange and are never stored (forward secrecy: a phone's key stolen later
//! opens no recorded exchange).

use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const DOMAIN: &[u8] = b"doorstep exchange channel v1\0";

/// One side's key pair for one exchange.
pub(crate) struct Ephemeral {
    secret: [u8; 32],
    /// The public half, sent in `Hello`.
    pub public: [u8; 32],
}

impl Ephemeral {
    /// A fresh key pair from the operating system's random source.
    pub fn new() -> Ephemeral {
        let secret: [u8; 32] = rand::random();
        Ephemeral {
            secret,
            public: MontgomeryPoint::mul_base_clamped(secret).to_bytes(),
        }
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        self.secret = [0; 32];
    }
}

/// Both directions' keys and positions, once both `Hello`s are known.
pub(crate) struct Channel {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    sent: u64,
    received: u64,
}

fn nonce(position: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&position.to_be_bytes());
    Nonce::from(n)
}

impl Channel {
    /// The channel of the side `me` with ephemeral `mine`, talking to `peer` whose `Hello` gave
    /// `theirs`.
    pub fn new(mine: &Ephemeral, theirs: &[u8; 32], me: Uuid, peer: Uuid) -> Result<Channel> {
        if me == peer {
            return Err(Error::invalid(
                "certificate",
                "another device's certificate",
            ));
        }
        let shared = MontgomeryPoint(*theirs).mul_clamped(mine.secret);
        if shared.to_bytes() == [0; 32] {
            // A low-order point: the "secret" would be known to anyone.
            return Err(Error::invalid("ephemeral", "an X25519 public key"));
        }
        let (low, high) = if me < peer {
            ((me, &mine.public), (peer, theirs))
        } else {
            ((peer, theirs), (me, &mine.public))
        };
        let key = |direction: u8| -> Key {
            let mut h = Sha256::new();
            h.update(DOMAIN);
            h.update([direction]);
            h.update(shared.to_bytes());
            h.update(low.0.as_bytes());
            h.update(low.1);
            h.update(high.0.as_bytes());
            h.update(high.1);
            Key::from(<[u8; 32]>::from(h.finalize()))
        };
        // Direction 0: from the lower device id to the higher.
        let (send, recv) = if me < peer {
            (key(0), key(1))
        } else {
            (key(1), key(0))
        };
        Ok(Channel {
            send: ChaCha20Poly1305::new(&send),
            recv: ChaCha20Poly1305::new(&recv),
            sent: 0,
            received: 0,
        })
    }

    /// Encrypt the next message to the peer.
    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let out = self
            .send
            .encrypt(&nonce(self.sent), plain)
            .unwrap_or_default();
        self.sent += 1;
        out
    }

    /// Decrypt the next message from the peer (refused if it is not the next one, whole).
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>> {
        let plain = self
            .recv
            .decrypt(&nonce(self.received), sealed)
            .map_err(|_| {
                Error::invalid(
                    "message",
                    "the next message of this exchange, sealed with its key",
                )
            })?;
        self.received += 1;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channel, Channel) {
        let (ea, eb) = (Ephemeral::new(), Ephemeral::new());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        (
            Channel::new(&ea, &eb.public, a, b).unwrap(),
            Channel::new(&eb, &ea.public, b, a).unwrap(),
        )
    }

    #[test]
    fn each_side_reads_the_other_in_order_and_nothing_else() {
        let (mut a, mut b) = pair();
        let m1 = a.seal(b"runs");
        let m2 = a.seal(b"done");
        assert_ne!(m1, m2);
        assert!(
            !m1.windows(4).any(|w| w == b"runs"),
            "plain text on the wire"
        );
        // Out of order, then in order.
        assert!(b.open(&m2).is_err());
        assert_eq!(b.open(&m1).unwrap(), b"runs");
        assert!(b.open(&m1).is_err(), "a replay");
        let mut bent = m2.clone();
        bent[0] ^= 1;
        assert!(b.open(&bent).is_err(), "altered");
        assert_eq!(b.open(&m2).unwrap(), b"done");
        // The other direction has its own key: a message cannot be reflected back.
        let r = b.seal(b"runs");
        assert_eq!(a.open(&r).unwrap(), b"runs");
        let (mut a2, _) = pair();
        assert!(a2.open(&b.seal(b"x")).is_err(), "another exchange's key");
    }

    #[test]
    fn a_low_order_key_or_the_same_device_is_refused() {
        let e = Ephemeral::new();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(Channel::new(&e, &[0; 32], a, b).is_err());
        assert!(Channel::new(&e, &Ephemeral::new().public, a, a).is_err());
    }
}
