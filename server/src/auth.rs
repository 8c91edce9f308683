//! Secrets: device and admin tokens, enrolment codes, and how they are stored.
//!
//! The server never stores a secret, only its SHA-256 (hex): a stolen database file gives no
//! working token. Tokens are 32 random bytes (base64url, no padding): far too many to guess,
//! so a plain hash is enough (no slow KDF). Enrolment codes are short enough to read aloud
//! or type (10 characters of Crockford base32, 50 bits), and are one-time and expiring, which
//! is what keeps guessing them useless.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Crockford base32: no I, L, O, U, so codes read aloud survive.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of an enrolment code.
pub const CODE_LEN: usize = 10;

/// A fresh bearer token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh enrolment code, e.g. `7KQ2M-9XW4D` without the dash.
pub fn new_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Normalise a code as typed: upper case, dashes and spaces dropped, and the letters people
/// confuse with digits (O, I, L) read as the digits.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// The stored form of a secret: SHA-256, lower-case hex.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The token of an `Authorization: Bearer <token>` header value, if it has that form.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// An argon2id PHC string of a command user's password (argon2's default parameters,
/// random salt). Passwords are slow to hash on purpose: people choose guessable ones.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed string).
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn codes_normalise_as_typed() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert_eq!(normalize_code(&c.to_lowercase()), c);
        assert_eq!(normalize_code("ab-o1 l"), "AB011");
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct hors", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn cookies_parse() {
        let h = Some("a=1; doorstep_session=xyz; lang=en");
        assert_eq!(cookie(h, "doorstep_session"), Some("xyz"));
        assert_eq!(cookie(h, "lang"), Some("en"));
        assert_eq!(cookie(h, "b"), None);
        assert_eq!(cookie(Some("doorstep_session="), "doorstep_session"), None);
    }

    #[test]
    fn bearer_parses_only_bearer() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
