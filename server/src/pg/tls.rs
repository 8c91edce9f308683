//! The PostgreSQL connection string and TLS.
//!
//! `--database` takes what libpq takes, a `postgres://` URL or `key=value` pairs, with two
//! libpq options the Rust client does not know handled here:
//!
//! - `sslmode`: `disable`, `allow` or `prefer` (also the default when absent) connect over
//!   plain TCP, for loopback or a private network; `require`, `verify-ca` or `verify-full`
//!   connect over TLS and **always verify the server's certificate and host name** (stricter
//!   than libpq's `require`, which does not verify): an unverified TLS link only hides a
//!   man in the middle. Opportunistic unverified TLS (`prefer`) is not offered.
//! - `sslrootcert`: a PEM file of the certificate authorities to trust (a private CA, or the
//!   cloud provider's bundle). Without it, the public web roots (Mozilla's, built in) are
//!   trusted, as for managed PostgreSQL services with public certificates.
//!
//! TLS is rustls with the ring provider (no OpenSSL), through `tokio-postgres-rustls`.

use crate::error::{Result, ServerError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to connect: the client's configuration and the TLS connector.
pub struct Connection {
    /// The client configuration (without the two options handled here).
    pub config: postgres::Config,
    /// The TLS connector: used only when `config`'s `sslmode` is `require`.
    pub tls: MakeRustlsConnect,
    /// Whether TLS was asked for.
    pub tls_required: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration may carry a password: never printed.
        f.debug_struct("Connection")
            .field("tls_required", &self.tls_required)
            .finish_non_exhaustive()
    }
}

/// The accepted `sslmode` values, for error messages.
const SSLMODES: &str = "disable, allow, prefer, require, verify-ca or verify-full";

/// Parse a connection string: libpq's `sslmode` and `sslrootcert` taken out and applied,
/// the rest parsed by the client. Errors never quote the string (it may carry a password).
pub fn parse(url: &str) -> Result<Connection> {
    let (rest, sslmode, rootcert) = split_tls_options(url)?;
    let mut config: postgres::Config = rest.parse().map_err(|_| {
        ServerError::BadRequest("database: not a valid PostgreSQL connection string".into())
    })?;
    let tls_required = match sslmode.as_deref() {
        None | Some("disable") | Some("allow") | Some("prefer") => false,
        Some("require") | Some("verify-ca") | Some("verify-full") => true,
        Some(_) => {
            return Err(ServerError::BadRequest(format!(
                "database: sslmode must be one of {SSLMODES}"
            )))
        }
    };
    config.ssl_mode(if tls_required {
        postgres::config::SslMode::Require
    } else {
        postgres::config::SslMode::Disable
    });
    if rootcert.is_some() && !tls_required {
        return Err(ServerError::BadRequest(
            "database: sslrootcert is set but sslmode does not ask for TLS (use sslmode=verify-full)"
                .into(),
        ));
    }
    let roots = match rootcert {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|_| {
                    ServerError::BadRequest(
                        "database: sslrootcert must name a readable PEM file of certificates"
                            .into(),
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ServerError::BadRequest(
                    "database: sslrootcert holds no usable certificate (expected PEM \
                     \"BEGIN CERTIFICATE\" blocks)"
                        .into(),
                ));
            }
            roots
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Internal(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connection {
        config,
        tls: MakeRustlsConnect::new(tls_config),
        tls_required,
    })
}

/// Take `sslmode` and `sslrootcert` out of a URL's query or a `key=value` string.
fn split_tls_options(url: &str) -> Result<(String, Option<String>, Option<PathBuf>)> {
    let mut sslmode = None;
    let mut rootcert = None;
    let trimmed = url.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let value = || -> Result<String> {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| {
                        ServerError::BadRequest(format!("database: {k} is not valid UTF-8"))
                    })
            };
            match k {
                "sslmode" => sslmode = Some(value()?),
                "sslrootcert" => rootcert = Some(PathBuf::from(value()?)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((rest, sslmode, rootcert))
    } else {
        // key=value pairs separated by spaces (quoted values are left to the client's parser,
        // except for these two options, which take plain values).
        let mut kept = Vec::new();
        for token in trimmed.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.trim_matches('\'').to_owned()),
                Some(("sslrootcert", v)) => {
                    rootcert = Some(PathBuf::from(v.trim_matches('\'')));
                }
                _ => kept.push(token),
            }
        }
        Ok((kept.join(" "), sslmode, rootcert))
    }
}

/// A connection failure in words an operator can act on, without the connection string:
/// TLS failures (an untrusted certificate, a server without TLS) are named, others are
/// "cannot connect".
pub fn describe(e: &postgres::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return format!("TLS to PostgreSQL failed: {t}");
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return format!("TLS to PostgreSQL failed: {t}");
            }
        }
        source = s.source();
    }
    let text = e.to_string();
    if text.contains("TLS") || text.contains("SSL") || text.contains("tls") {
        // tokio-postgres' own words ("server does not support TLS") carry no secret.
        return format!("TLS to PostgreSQL failed: {text}");
    }
    match e.as_db_error() {
        Some(db) => format!(
            "PostgreSQL refused the connection (SQLSTATE {})",
            db.code().code()
        ),
        None => "cannot connect to PostgreSQL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options_are_taken_out_and_the_rest_kept() {
        let (rest, mode, ca) = split_tls_options(
            "postgres://u:p@db.example:5432/doorstep?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/doorstep?application_name=x"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(ca, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, mode, ca) =
            split_tls_options("host=db user=u sslmode=require sslrootcert=/ca.pem").unwrap();
        assert_eq!(rest, "host=db user=u");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(ca, Some(PathBuf::from("/ca.pem")));
        let (rest, mode, ca) = split_tls_options("postgres://h/db").unwrap();
        assert_eq!((rest.as_str(), mode, ca), ("postgres://h/db", None, None));
    }

    #[test]
    fn tls_only_when_asked_for() {
        for (url, tls) in [
            ("postgres://h/db", false),
            ("postgres://h/db?sslmode=prefer", false),
            ("postgres://h/db?sslmode=disable", false),
            ("postgres://h/db?sslmode=require", true),
            ("host=h sslmode=verify-full", true),
        ] {
            let c = parse(url).unwrap();
            assert_eq!(c.tls_required, tls, "{url}");
        }
    }

    #[test]
    fn bad_options_are_refused_by_name_without_the_string() {
        let e = parse("postgres://u:secret@h/db?sslmode=sometimes").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("sslmode") && text.contains("verify-full"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
        let e = parse("postgres://u:secret@h/db?sslmode=require&sslrootcert=/nonexistent.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslrootcert") && !e.contains("secret"), "{e}");
        let e = parse("postgres://h/db?sslrootcert=/x.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode"), "{e}");
    }
}
