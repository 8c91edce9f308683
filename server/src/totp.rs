//! The second factor of command users: time-based one-time codes (TOTP, RFC 6238) as every
//! authenticator app makes them — HMAC-SHA1, 6 digits, a step of 30 seconds.
//!
//! - A secret is 20 random bytes (160 bits, RFC 4226 §4), shown once as base32 and as an
//!   `otpauth://totp/` URI (issuer "Doorstep") by `doorstep user totp enable`.
//! - A code is accepted for the step it was made in and the one before and after (±30 s of
//!   clock difference between the phone and the server); [`verify`] returns the step it
//!   matched, which the caller records so that a code (or any older one) is not accepted twice.
//! - The secret is stored as is (base32) in `users.totp_secret`: the server has no key to
//!   encrypt it with (`docs/dashboard.md`, "Second factor").
//!
//! Pure functions only; the rules on who, when and how often are in `backend/accounts.rs`
//! and the sign-in handler.

use data_encoding::BASE32_NOPAD;
use rand::Rng;
use totp_lite::{totp_custom, Sha1};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the server's (clock difference between phone and server).
pub const SKEW_STEPS: i64 = 1;
/// The issuer the authenticator app shows.
pub const ISSUER: &str = "Doorstep";
/// Bytes of a secret.
const SECRET_BYTES: usize = 20;

/// A fresh secret, base32 without padding (how it is stored and shown).
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::thread_rng().gen();
    BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://totp/` URI an authenticator app reads (as a QR code or pasted), for the
/// user signing in as `name`.
pub fn otpauth_uri(name: &str, secret: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let label = utf8_percent_encode(&format!("{ISSUER}:{name}"), NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{label}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

/// The step a Unix time (ms) falls in.
pub fn step_of(now_ms: i64) -> i64 {
    now_ms.max(0) / 1000 / STEP_SECS as i64
}

/// The code of `secret` (base32) for `step`; `None` if the secret is not base32.
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let time = u64::try_from(step).ok()? * STEP_SECS;
    Some(totp_custom::<Sha1>(STEP_SECS, DIGITS, &key, time))
}

/// The step whose code `code` is, within ±[`SKEW_STEPS`] of `now_ms`'s (the latest if
/// several); `None` if it is none of them. Spaces in the code are ignored; anything but
/// [`DIGITS`] digits is refused before any hashing.
pub fn verify(secret: &str, code: &str, now_ms: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(now_ms);
    (now - SKEW_STEPS..=now + SKEW_STEPS)
        .rev()
        .find(|&step| code_at(secret, step).is_some_and(|c| same(c.as_bytes(), code.as_bytes())))
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the 20-byte key "12345678901234567890"), last 6 digits.
    #[test]
    fn the_rfc_vectors() {
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(&secret, t / 30).unwrap(), code, "t={t}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let now = 1_700_000_000_000;
        let step = step_of(now);
        for d in -1..=1 {
            let code = code_at(&secret, step + d).unwrap();
            assert_eq!(verify(&secret, &code, now), Some(step + d));
        }
        for d in [-3, -2, 2, 3] {
            let code = code_at(&secret, step + d).unwrap();
            // A code of a far step may by chance equal a near one's; it must then be that one.
            let got = verify(&secret, &code, now);
            assert!(got.is_none() || got.is_some_and(|s| (s - step).abs() <= 1));
        }
        let code = code_at(&secret, step).unwrap();
        assert_eq!(
            verify(&secret, &format!("{} {}", &code[..3], &code[3..]), now),
            Some(step)
        );
        assert_eq!(verify(&secret, "12345", now), None);
        assert_eq!(verify(&secret, "abcdef", now), None);
        assert_eq!(verify("not base32!", "123456", now), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_user() {
        let uri = otpauth_uri("Trưởng ban", "ABC");
        assert!(
            uri.starts_with("otpauth://totp/Doorstep%3ATr%C6%B0%E1%BB%9Fng%20ban?"),
            "{uri}"
        );
        assert!(uri.contains("secret=ABC&issuer=Doorstep&algorithm=SHA1&digits=6&period=30"));
    }
}
