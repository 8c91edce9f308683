//! The one error of the bindings, [`DoorstepError`]: one variant per thing a caller can do
//! about it (fix the input, re-enrol, update the app, retry later…), following
//! application-services' rule — if there is no specific action, it is `Other`.
//!
//! Messages come from the core, which names fields and accepted forms and never echoes a value
//! (no phone or ID number reaches a crash log). Field names avoid `message`, which Kotlin's
//! `Throwable` already has; in Kotlin the type is generated as `DoorstepException`.

use doorstep_core::wire::EnrolRefusal;
use doorstep_core::Error as CoreError;

/// Why the server refused an enrolment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CodeRefusal {
    /// No such code (a typing mistake, or a code of another server).
    Unknown,
    /// The code enrolled a device already: each code enrols one phone.
    Used,
    /// The code's validity has passed.
    Expired,
}

impl std::fmt::Display for CodeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodeRefusal::Unknown => "unknown code (check it for a typing mistake)",
            CodeRefusal::Used => "the code was used already (ask for a new one)",
            CodeRefusal::Expired => "the code has expired (ask for a new one)",
        })
    }
}

impl From<EnrolRefusal> for CodeRefusal {
    fn from(r: EnrolRefusal) -> Self {
        match r {
            EnrolRefusal::Unknown => CodeRefusal::Unknown,
            EnrolRefusal::Used => CodeRefusal::Used,
            EnrolRefusal::Expired => CodeRefusal::Expired,
        }
    }
}

/// What the local database's failure was, without the store's path or any value: SQLite's
/// words for its error code, or the kind of an I/O error.
fn storage_detail(e: &CoreError) -> String {
    match e {
        CoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => format!("SQLite: {f}"),
        CoreError::Sqlite(rusqlite::Error::InvalidPath(_)) => "SQLite: invalid file path".into(),
        CoreError::Sqlite(other) => format!("SQLite: {}", sqlite_kind(other)),
        CoreError::Io(io) => format!("file: {}", io.kind()),
        other => other.to_string(),
    }
}

/// A rusqlite error's kind, named without its payload (which may hold a value or a path).
fn sqlite_kind(e: &rusqlite::Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("error")
        .to_owned()
}

/// What went wrong, as the action the caller can take.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum DoorstepError {
    /// A value the caller gave has the wrong form; nothing was changed. Fix the input.
    #[error("invalid {field}: expected {expected}")]
    InvalidInput {
        /// The parameter or field, as the API names it (`phone`, `household_id`, `csv`…).
        field: String,
        /// What would be accepted, in words.
        expected: String,
    },
    /// A referenced record is not in this store (not synced yet, or a wrong id).
    #[error("unknown {field}: no {kind} with that id in this store")]
    NotFound {
        /// The parameter that held the reference.
        field: String,
        /// What was looked for (`household`, `campaign`…).
        kind: String,
    },
    /// The local database failed (disk full, file corrupt or locked too long). Tell the user;
    /// retrying may help if the disk was full.
    #[error("storage error: {detail}")]
    Storage {
        /// What SQLite or the file system said.
        detail: String,
    },
    /// The server does not accept this device any more (revoked, or the enrolment code is
    /// unknown, used or expired): ask the station for a new enrolment code.
    #[error("the server refused this device's credentials: enrol again ({detail})")]
    ReEnrol {
        /// The server's words.
        detail: String,
    },
    /// The server refused the enrolment code: `reason` says whether it is unknown (most often
    /// mistyped: check it), already used or expired (ask the station for a new one).
    #[error("enrolment code refused: {reason}")]
    CodeRefused {
        /// Which refusal.
        reason: CodeRefusal,
    },
    /// The call was cancelled (a cancelled coroutine or task). What it applied before stays —
    /// whole pages, acknowledged batches, whole chunks of an import — and calling again goes on.
    #[error("cancelled")]
    Cancelled,
    /// The store was closed (`close()`); open it again. Raised by the generated bindings for
    /// any call after `close()`.
    #[error("{detail}")]
    Closed {
        /// Which object.
        detail: String,
    },
    /// The store is encrypted and the key given does not decrypt it (or no key was given).
    /// Nothing was read or changed. The key in the platform's key store was lost or replaced:
    /// the data on this phone cannot be read; sync again into a new store.
    #[error("wrong {field}: the store cannot be decrypted with it")]
    WrongKey {
        /// Always `key`.
        field: String,
    },
    /// The store or the server is newer than this library: update the app.
    #[error("update the app: {detail}")]
    UpdateApp {
        /// What is too new.
        detail: String,
    },
    /// The server could not be reached or kept failing; nothing is lost, sync again later.
    #[error("network: {detail}")]
    Network {
        /// The last failure.
        detail: String,
    },
    /// The server's TLS certificate is not the one this device trusts (a wrong address, a
    /// wrong or outdated pin, an intercepted connection): retrying does not help; check the
    /// server address and the pin given with the enrolment code.
    #[error("the server's certificate is not trusted: {detail}")]
    UntrustedServer {
        /// What the TLS layer said (names, dates; no data).
        detail: String,
    },
    /// The offline lease is over: the store shows no residents until a sync renews it (field
    /// work can still be recorded; it is kept and synced). Ask the officer to sync.
    #[error("the offline lease ended at {until_ms} (Unix ms): sync to see residents again")]
    LeaseExpired {
        /// When it ended, Unix ms.
        until_ms: i64,
    },
    /// Anything else (a bug on one side, a refused request): report it.
    #[error("{detail}")]
    Other {
        /// What happened.
        detail: String,
    },
}

impl From<CoreError> for DoorstepError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid { field, expected } => DoorstepError::InvalidInput {
                field: field.into(),
                expected: expected.into(),
            },
            CoreError::NotFound { field, kind } => DoorstepError::NotFound {
                field: field.into(),
                kind: kind.into(),
            },
            e @ CoreError::SchemaTooNew { .. } => DoorstepError::UpdateApp {
                detail: e.to_string(),
            },
            CoreError::Csv(detail) => DoorstepError::InvalidInput {
                field: "csv".into(),
                expected: detail,
            },
            e @ (CoreError::Sqlite(_) | CoreError::Io(_) | CoreError::UnknownSchema { .. }) => {
                DoorstepError::Storage {
                    detail: storage_detail(&e),
                }
            }
            CoreError::EnrolRefused(reason) => DoorstepError::CodeRefused {
                reason: reason.into(),
            },
            CoreError::Cancelled => DoorstepError::Cancelled,
            CoreError::Http { status: 401, .. } => DoorstepError::ReEnrol {
                detail: "401 unauthorized".into(),
            },
            CoreError::Http {
                status: 400, code, ..
            } if code == "unsupported_protocol" => DoorstepError::UpdateApp {
                detail: "the server speaks another sync protocol version".into(),
            },
            e @ CoreError::Network { .. } => DoorstepError::Network {
                detail: e.to_string(),
            },
            CoreError::Untrusted { detail } => DoorstepError::UntrustedServer { detail },
            CoreError::WrongKey { field } => DoorstepError::WrongKey {
                field: field.into(),
            },
            CoreError::LeaseExpired { until_ms } => DoorstepError::LeaseExpired { until_ms },
            e => DoorstepError::Other {
                detail: e.to_string(),
            },
        }
    }
}

/// Parse a UUID the caller passed as text.
pub(crate) fn parse_id(field: &str, s: &str) -> Result<uuid::Uuid, DoorstepError> {
    uuid::Uuid::parse_str(s.trim()).map_err(|_| DoorstepError::InvalidInput {
        field: field.into(),
        expected: "a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
    })
}

/// Parse a `YYYY-MM-DD` date the caller passed as text.
pub(crate) fn parse_date(field: &str, s: &str) -> Result<chrono::NaiveDate, DoorstepError> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        DoorstepError::InvalidInput {
            field: field.into(),
            expected: "a date as YYYY-MM-DD".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_actions() {
        let http = |status, code: &str| CoreError::Http {
            status,
            code: code.into(),
            message: String::new(),
        };
        assert!(matches!(
            DoorstepError::from(http(401, "unauthorized")),
            DoorstepError::ReEnrol { .. }
        ));
        // A refused code says which refusal, typed and in the error's text.
        for (reason, typed, words) in [
            (EnrolRefusal::Unknown, CodeRefusal::Unknown, "unknown code"),
            (EnrolRefusal::Used, CodeRefusal::Used, "used already"),
            (EnrolRefusal::Expired, CodeRefusal::Expired, "expired"),
        ] {
            let e = DoorstepError::from(CoreError::EnrolRefused(reason));
            assert!(matches!(&e, DoorstepError::CodeRefused { reason } if *reason == typed));
            assert!(e.to_string().contains(words), "{e}");
        }
        assert!(matches!(
            DoorstepError::from(CoreError::Cancelled),
            DoorstepError::Cancelled
        ));
        assert!(matches!(
            DoorstepError::from(http(400, "unsupported_protocol")),
            DoorstepError::UpdateApp { .. }
        ));
        assert!(matches!(
            DoorstepError::from(http(403, "forbidden")),
            DoorstepError::Other { .. }
        ));
        assert!(matches!(
            DoorstepError::from(CoreError::Network {
                attempts: 3,
                last: "connection refused".into()
            }),
            DoorstepError::Network { .. }
        ));
        assert!(matches!(
            DoorstepError::from(CoreError::SchemaTooNew {
                found: 9,
                supported: 1
            }),
            DoorstepError::UpdateApp { .. }
        ));
    }

    #[test]
    fn ids_and_dates_are_checked() {
        assert!(parse_id("household_id", "not-a-uuid").is_err());
        assert!(parse_id("household_id", &uuid::Uuid::now_v7().to_string()).is_ok());
        assert!(matches!(
            parse_date("day", "15/09/2023"),
            Err(DoorstepError::InvalidInput { field, .. }) if field == "day"
        ));
    }
}
