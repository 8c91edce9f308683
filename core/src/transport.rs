//! The HTTP exchange the sync client needs, behind a trait: one `POST` with a body and a few
//! headers, answered by a status, headers and a body.
//!
//! Two implementations:
//! - the built-in one ([`builtin`], feature `sync-client`): ureq with rustls, the public web
//!   roots or an authority pinned at enrolment (`SyncConfig::trusted_ca_pem`). Servers, the
//!   station hub, desktop tools and the JVM bindings use it.
//! - the app's own HTTP stack, given as a [`HttpTransport`] (`SyncConfig::transport`; the
//!   bindings' `FieldStore.useHttpTransport`): Android's `HttpURLConnection`/OkHttp or iOS's
//!   `URLSession`. The phone's TLS, proxy and pinning settings then apply (Android's
//!   network security configuration can pin the server's key), and a library built without
//!   the `sync-client` feature carries no TLS stack of its own (`docs/bindings.md`, "Size").
//!
//! Whatever the transport, the sync client keeps the protocol to itself: what to send, the
//! retries, the deadline, decompression, and which answers are errors.

use std::fmt;
use std::time::Duration;

/// One request of the sync protocol: always a `POST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The whole address, e.g. `https://doorstep.example.vn/v1/sync/push`.
    pub url: String,
    /// Headers to send, names in lower case. The `authorization` header holds the device's
    /// token: a transport must not log it.
    pub headers: Vec<(String, String)>,
    /// The body (postcard, compressed with zstd).
    pub body: Vec<u8>,
    /// The longest the exchange may take, connection to last byte.
    pub timeout: Duration,
}

/// The server's answer, whatever its status (an error status is an answer, not a failure: its
/// JSON body says what went wrong).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status, e.g. 200.
    pub status: u16,
    /// The answer's headers (names in any case). The client reads `content-encoding` and
    /// `retry-after`.
    pub headers: Vec<(String, String)>,
    /// The body as it came (still compressed when `content-encoding: zstd`).
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an exchange got no answer. The texts must not hold personal data or the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The server's certificate was refused (not signed by a trusted authority, a pin that does
    /// not match, expired, another name). Retrying does not help: the sync stops at once with
    /// `Error::Untrusted`.
    Untrusted(String),
    /// Anything else: no route, a refused or dropped connection, a timeout, a cut answer. The
    /// request is safe to repeat, and the client retries it within its attempts and deadline.
    Failed(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Untrusted(d) => write!(f, "server certificate refused: {d}"),
            TransportError::Failed(d) => f.write_str(d),
        }
    }
}

/// An HTTP client the sync can use. Called from the syncing thread, one request at a time;
/// it may block until the answer or the request's timeout.
pub trait HttpTransport: Send + Sync {
    /// Send `request` and return the answer, or why there is none.
    fn post(&self, request: HttpRequest) -> Result<HttpAnswer, TransportError>;
}

/// Check a server address: `http://` or `https://`, a host (an optional port of digits), an
/// optional path, no query, no fragment, no spaces or control characters, no user name.
pub(crate) fn valid_base_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    if !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains(['?', '#', '@', '\\']) {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or("");
    // `[v6 address]` or a name, then an optional `:port`.
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let Some((h, after)) = v6.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return false,
                },
            };
            let ok = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
            (!h.is_empty() && h.bytes().all(ok), port)
        }
        None => {
            let (h, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
            (!h.is_empty() && h.bytes().all(ok), port)
        }
    };
    // Digits only (`u16` alone would take a `+`).
    let port_ok =
        port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// The built-in transport: ureq with rustls (feature `sync-client`).
#[cfg(feature = "sync-client")]
pub mod builtin {
    use super::{HttpAnswer, HttpRequest, HttpTransport, TransportError};
    use crate::{Error, Result};

    /// The largest answer read (compressed): far above a pull page, a bound against a broken
    /// peer.
    pub(crate) const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

    /// ureq with rustls, trusting the public web roots or only `trusted_ca_pem`.
    pub struct Ureq {
        agent: ureq::Agent,
    }

    impl Ureq {
        /// A client trusting only `trusted_ca_pem` (PEM) for `https://` servers, or the public
        /// web roots when `None`.
        pub fn new(trusted_ca_pem: Option<&str>) -> Result<Self> {
            let roots = match trusted_ca_pem {
                Some(pem) => {
                    let ca = ureq::tls::Certificate::from_pem(pem.as_bytes()).map_err(|_| {
                        Error::invalid("trusted_ca_pem", "a certificate in PEM form")
                    })?;
                    ureq::tls::RootCerts::from([ca])
                }
                None => ureq::tls::RootCerts::WebPki,
            };
            // Error statuses come back as answers (their JSON body says what went wrong).
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
                .build()
                .into();
            Ok(Ureq { agent })
        }
    }

    impl HttpTransport for Ureq {
        fn post(&self, request: HttpRequest) -> std::result::Result<HttpAnswer, TransportError> {
            let mut builder = self
                .agent
                .post(&request.url)
                .config()
                .timeout_global(Some(request.timeout))
                .build();
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let mut response = builder.send(&request.body[..]).map_err(|e| {
                let detail = describe(&e);
                if untrusted(&e) {
                    TransportError::Untrusted(detail)
                } else {
                    TransportError::Failed(detail)
                }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            // A cut answer is a failure: the request is safe to repeat.
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .map_err(|e| TransportError::Failed(describe(&e)))?;
            Ok(HttpAnswer {
                status,
                headers,
                body,
            })
        }
    }

    /// Whether a request failed because the server's certificate was refused (retrying cannot
    /// fix that): a rustls certificate error, however ureq wraps it.
    fn untrusted(e: &ureq::Error) -> bool {
        let is_cert = |r: &rustls::Error| matches!(r, rustls::Error::InvalidCertificate(_));
        let in_io = |io: &std::io::Error| {
            io.get_ref()
                .and_then(|x| x.downcast_ref::<rustls::Error>())
                .is_some_and(is_cert)
        };
        match e {
            ureq::Error::Rustls(r) => return is_cert(r),
            ureq::Error::Io(io) if in_io(io) => return true,
            _ => {}
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(inner) = source {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return is_cert(r);
            }
            if inner.downcast_ref::<std::io::Error>().is_some_and(in_io) {
                return true;
            }
            source = inner.source();
        }
        false
    }

    fn describe(e: &ureq::Error) -> String {
        // ureq's messages name the host or the I/O failure, never a body: no personal data.
        let mut s = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            source = inner.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::valid_base_url;

    #[test]
    fn server_addresses() {
        for ok in [
            "http://localhost",
            "http://127.0.0.1:8080",
            "https://doorstep.example.vn",
            "HTTPS://doorstep.example.vn/base",
            "http://[::1]:3000",
            "http://[fe80::1]",
            "https://a-b.c_d.vn:443/x/y",
        ] {
            assert!(valid_base_url(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost:8080",
            "ftp://example.vn",
            "http://",
            "http:///path",
            "http://host:port",
            "http://host:",
            "http://host:99999",
            "http://host/?q=1",
            "http://host/#top",
            "http://user@host",
            "http://ho st",
            "http://host\n",
            "http://[::1",
            "http://[]",
            "http://[::1]x",
            "https://đà-nẵng.vn",
        ] {
            assert!(!valid_base_url(bad), "{bad:?}");
        }
    }
}
