//! Errors of the server, and how each becomes an HTTP answer.
//!
//! One enum for the whole crate; each variant is one row of the error table of
//! `docs/sync-protocol.md` (a stable `error` code, a status, words that never carry personal
//! data). Storage and core errors are folded in with `#[from]`; a core `Decode` error means
//! a peer sent an operation we cannot read, which is the client's fault (400), anything else
//! from the store is ours (500).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doorstep_core::wire::{ErrorBody, PROTOCOL_VERSION};
use thiserror::Error;

/// The result type of the server.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Everything that can go wrong while serving a request or running an admin command.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The body's `protocol` is not one this server speaks.
    #[error(
        "protocol version {0} is not supported: this server speaks version {v}; update the app",
        v = doorstep_core::wire::PROTOCOL_VERSION
    )]
    UnsupportedProtocol(u64),
    /// A revoked device: `401` with `reason` `revoked` and the server's signed wipe order.
    #[error("unauthorized: this device was revoked; it erases the residents' data it holds")]
    Revoked(Box<doorstep_core::sign::WipeOrder>),
    /// Malformed body, wrong types, bad operation shape, unknown content type.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No token, unknown token, revoked device, unknown or used enrolment code.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// `POST /v1/enrol` refused the code: unknown, used or expired (`401 unauthorized`, the
    /// body's `reason` says which).
    #[error("unauthorized: {0}")]
    EnrolRefused(doorstep_core::wire::EnrolRefusal),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A named record does not exist (admin routes and commands).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Body (after decompression) or batch over the limit; says which limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The database is busy or down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The core store failed.
    #[error(transparent)]
    Core(#[from] doorstep_core::Error),
    /// SQLite failed in the server's own tables.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed: its SQLSTATE (never its message, which may quote values), and
    /// whether the cause is a lost or refused connection (answered `503`).
    #[error("database error (sqlstate {code})")]
    Postgres {
        /// The SQLSTATE, or `connection` when there was none.
        code: String,
        /// The database is unreachable, restarting or overloaded: retry later.
        unavailable: bool,
    },
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<postgres::Error> for ServerError {
    fn from(e: postgres::Error) -> Self {
        match e.code() {
            Some(state) => {
                let code = state.code().to_owned();
                // 08: connection exception; 53: insufficient resources; 57P01-57P03: admin
                // shutdown, crash shutdown, cannot connect now; 40001/40P01: serialization
                // failure, deadlock (a retry succeeds).
                let unavailable = code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(
                        code.as_str(),
                        "57P01" | "57P02" | "57P03" | "40001" | "40P01"
                    );
                ServerError::Postgres { code, unavailable }
            }
            None => {
                // No SQLSTATE: the connection broke, was closed, or could not be made; or a
                // column did not convert (our bug).
                let io = e.is_closed()
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
                let conversion = !io && e.to_string().contains("deserializ");
                ServerError::Postgres {
                    code: if conversion {
                        "conversion"
                    } else {
                        "connection"
                    }
                    .to_owned(),
                    unavailable: !conversion,
                }
            }
        }
    }
}

impl ServerError {
    /// The HTTP status and the stable `error` code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ServerError::UnsupportedProtocol(_) => {
                (StatusCode::BAD_REQUEST, "unsupported_protocol")
            }
            ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ServerError::Core(doorstep_core::Error::Decode(_)) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ServerError::Unauthorized(_)
            | ServerError::EnrolRefused(_)
            | ServerError::Revoked(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServerError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ServerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ServerError::Core(doorstep_core::Error::Sqlite(e)) | ServerError::Sqlite(e)
                if is_busy(e) =>
            {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ServerError::Postgres {
                unavailable: true, ..
            } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ServerError::Core(_)
            | ServerError::Sqlite(_)
            | ServerError::Postgres { .. }
            | ServerError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body of the answer. Internal details stay in the server's log.
    pub fn body(&self) -> ErrorBody {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            "the server could not complete the request; retry later".to_owned()
        } else {
            self.to_string()
        };
        ErrorBody {
            error: code.to_owned(),
            message,
            supported: match self {
                ServerError::UnsupportedProtocol(_) => vec![PROTOCOL_VERSION],
                _ => Vec::new(),
            },
            reason: match self {
                ServerError::EnrolRefused(r) => Some(r.as_str().to_owned()),
                ServerError::Revoked(_) => Some("revoked".to_owned()),
                _ => None,
            },
            wipe: match self {
                ServerError::Revoked(w) => Some((**w).clone()),
                _ => None,
            },
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if status.is_server_error() {
            // Core and SQLite messages name fields and tables, never values.
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        resp
    }
}
