//! Errors of the core.
//!
//! One enum for the whole crate, because every public call can fail the same few ways: the input
//! is invalid, a referenced id does not exist, the store is unusable, or a sync peer sent
//! something we cannot read. Messages name the field and the accepted form and never echo the
//! offending value: an ID number or a phone number must not end up in an app's crash log.

use thiserror::Error;

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the caller does not have the accepted form. Nothing was changed.
    #[error("invalid {field}: expected {expected}")]
    Invalid {
        /// The name of the field, as the API calls it (for example `id_number`).
        field: &'static str,
        /// The accepted form, in words (for example `12 digits starting with a province code`).
        expected: &'static str,
    },

    /// A referenced record does not exist in this store. Nothing was changed.
    #[error("unknown {field}: no {kind} with that id in this store")]
    NotFound {
        /// The field that held the reference (for example `household_id`).
        field: &'static str,
        /// What kind of record was looked for (for example `household`).
        kind: &'static str,
    },

    /// The store was written by a newer version of Doorstep and cannot be opened by this one.
    #[error("store schema version {found} is newer than this library supports ({supported}); upgrade the app")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest schema this code knows.
        supported: i64,
    },

    /// The file's schema version is not one Doorstep ever wrote (negative).
    #[error("store schema version {found} is not a Doorstep schema version")]
    UnknownSchema {
        /// `PRAGMA user_version` found in the file.
        found: i64,
    },

    /// The store is encrypted and the key given does not decrypt it (or no key was given).
    /// Nothing was read or changed. The key comes from the platform's key store: a store whose
    /// key is lost cannot be read by anyone (sync again to a new store).
    #[error("wrong {field}: the store cannot be decrypted with the key given")]
    WrongKey {
        /// Always `key`: the parameter that was wrong.
        field: &'static str,
    },

    /// An operation received from another replica could not be decoded.
    #[error("undecodable operation from another replica: {0}")]
    Decode(String),

    /// The CSV input could not be read at all (as opposed to single bad rows, which are reported).
    #[error("roster file unreadable: {0}")]
    Csv(String),

    /// SQLite failed (disk full, file corrupt, locked beyond the busy timeout...).
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A sync peer answered with an error status that retrying will not fix (see
    /// `docs/sync-protocol.md`: 400 bad request or unsupported protocol, 401 re-enrol,
    /// 403 forbidden, 413 too large).
    #[error("sync server answered {status} ({code}): {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The protocol's error code (`unauthorized`, `unsupported_protocol`, ...).
        code: String,
        /// The server's words.
        message: String,
    },

    /// The server refused an enrolment code (`docs/sync-protocol.md`, Enrolment): unknown,
    /// used or expired. Ask the station for a new code.
    #[error("enrolment refused: {0}")]
    EnrolRefused(crate::wire::EnrolRefusal),

    /// The sync peer could not be reached or kept failing after every retry.
    #[error("sync failed after {attempts} attempts: {last}")]
    Network {
        /// How many requests were tried.
        attempts: u32,
        /// The last failure.
        last: String,
    },

    /// The caller cancelled the call ([`crate::Cancel`]). What was committed before stays (whole
    /// pages, whole acknowledged batches, whole chunks of an import): calling again goes on.
    #[error("cancelled")]
    Cancelled,

    /// The offline lease is over (`docs/sync-protocol.md`, "Lease and wipe"): the store
    /// shows no personal data until a sync with the server renews it. Recording field work
    /// still works, and it is kept and synced.
    #[error("the offline lease ended at {until_ms} (Unix ms): sync to see residents again")]
    LeaseExpired {
        /// When the lease ended, Unix ms.
        until_ms: i64,
    },

    /// An I/O error outside SQLite.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The server's TLS certificate is not one this device trusts: not signed by the pinned
    /// authority (`SyncConfig::trusted_ca_pem`) or the public roots, expired, or for another
    /// name. Retrying does not help: check the server address and the pin (the enrolment QR).
    #[error("the server's certificate is not trusted: {detail}")]
    Untrusted {
        /// What the TLS layer said (names, dates; no data).
        detail: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub(crate) fn invalid(field: &'static str, expected: &'static str) -> Self {
        Error::Invalid { field, expected }
    }
}
