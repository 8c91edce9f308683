//! The app's own HTTP client for enrolment and sync, as a foreign trait: on a phone, the
//! platform's stack (Android's `HttpURLConnection` or OkHttp, iOS's `URLSession`) with its TLS,
//! proxy and pinning settings. A library built without the `builtin-http` feature has no HTTP
//! stack of its own and must be given one (`docs/bindings.md`, "HTTP").

use doorstep_core::transport as core_http;
use std::sync::Arc;

/// One header of a request or an answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// The name (the library sends lower case; answers may use any case).
    pub name: String,
    /// The value.
    pub value: String,
}

/// The server's answer, whatever its status: an error status is an answer, not a failure.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpAnswer {
    /// The HTTP status, e.g. 200 or 401.
    pub status: i32,
    /// The answer's headers; the library reads `content-encoding` and `retry-after`.
    pub headers: Vec<HttpHeader>,
    /// The body exactly as received: do not decompress it (a `content-encoding: zstd` body is
    /// decompressed by the library).
    pub body: Vec<u8>,
}

/// Why a request got no answer. Never put the request's headers or body in `detail`: the
/// `authorization` header is the device's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum HttpFailure {
    /// The server's certificate was refused (a pin that does not match, an unknown authority,
    /// an expired certificate, another name): the sync stops at once with `UntrustedServer`.
    #[error("server certificate refused: {detail}")]
    Untrusted {
        /// What the platform said (e.g. the exception's message).
        detail: String,
    },
    /// Anything else (no route, refused, dropped, timed out, a cut answer): the library
    /// retries within the sync's attempts and deadline.
    #[error("{detail}")]
    Failed {
        /// What the platform said.
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HttpFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // An exception the transport did not map: treated as a failed attempt.
        HttpFailure::Failed {
            detail: format!("the app's HTTP transport failed: {}", e.reason),
        }
    }
}

/// An HTTP client implemented by the app: one `POST` at a time, from the syncing thread; it
/// may block until the answer comes or `timeout_ms` passes.
#[uniffi::export(with_foreign)]
pub trait HttpTransport: Send + Sync {
    /// Send a `POST` of `body` with `headers` to `url` and return the answer (any status), or
    /// why there is none. Follow no redirects and keep no cookies.
    fn post(
        &self,
        url: String,
        headers: Vec<HttpHeader>,
        body: Vec<u8>,
        timeout_ms: i64,
    ) -> Result<HttpAnswer, HttpFailure>;
}

/// The app's transport as the core's.
pub(crate) struct Foreign(pub(crate) Arc<dyn HttpTransport>);

impl core_http::HttpTransport for Foreign {
    fn post(
        &self,
        request: core_http::HttpRequest,
    ) -> Result<core_http::HttpAnswer, core_http::TransportError> {
        let headers = request
            .headers
            .into_iter()
            .map(|(name, value)| HttpHeader { name, value })
            .collect();
        let timeout_ms = i64::try_from(request.timeout.as_millis()).unwrap_or(i64::MAX);
        match self.0.post(request.url, headers, request.body, timeout_ms) {
            Ok(a) if !(100..=599).contains(&a.status) => {
                Err(core_http::TransportError::Failed(format!(
                    "the app's HTTP transport gave status {}, not an HTTP status",
                    a.status
                )))
            }
            Ok(a) => Ok(core_http::HttpAnswer {
                status: a.status as u16,
                headers: a.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body: a.body,
            }),
            Err(HttpFailure::Untrusted { detail }) => {
                Err(core_http::TransportError::Untrusted(detail))
            }
            Err(HttpFailure::Failed { detail }) => Err(core_http::TransportError::Failed(detail)),
        }
    }
}
