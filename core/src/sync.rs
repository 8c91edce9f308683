//! The sync client: push this replica's operations to a server and pull what its scope lacks
//! (`docs/sync-protocol.md`).
//!
//! Blocking on purpose: apps call it from a background thread or job (WorkManager, BGTask),
//! and a blocking client needs no async runtime in the app. Every step is safe to repeat:
//! a pulled page is applied together with its cursor in one transaction, a pushed batch is
//! acknowledged by counter and a retried one is a no-op on the server, so a link that drops at
//! any point loses nothing and `sync` can simply be called again.
//!
//! Bodies are postcard compressed with zstd — the smallest form the protocol allows, for 2G.

use crate::op::Op;
use crate::store::Store;
use crate::wire::{
    EnrolRefusal, EnrolRequest, EnrolResponse, ErrorBody, PullRequest, PullResponse, PushRequest,
    PushResponse, Rejected, POSTCARD_MEDIA_TYPE, PROTOCOL_VERSION,
};
use crate::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where and how to sync.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The server's base URL, e.g. `https://doorstep.example.vn` (no trailing `/v1`).
    pub base_url: String,
    /// The device token from enrolment.
    pub token: String,
    /// Operations per push request (the server accepts up to 1,000).
    pub push_batch: usize,
    /// Operations per pulled page (the server sends up to 1,000).
    pub pull_page: u32,
    /// Attempts per request before giving up (connection errors, timeouts, 429, 5xx).
    pub max_attempts: u32,
    /// First pause between attempts; doubles each time.
    pub initial_backoff: Duration,
    /// Longest pause between attempts.
    pub max_backoff: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Trust only this certificate authority (PEM) for `https://` servers, instead of the
    /// public roots: the pin an admin hands out with the enrolment code (a server with a
    /// self-signed certificate pins that certificate). `None`: the public web roots.
    pub trusted_ca_pem: Option<String>,
}

impl SyncConfig {
    /// Defaults suited to a 2G link: 500 operations a request, 6 attempts, 0.5 s doubling to 30 s.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        SyncConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            push_batch: 500,
            pull_page: 500,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            trusted_ca_pem: None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Operations the server took from this device (new to it).
    pub pushed: u64,
    /// Operations sent that the server already held (a retried batch, say).
    pub push_duplicates: u64,
    /// Operations the server refused, with reasons (not resent).
    pub rejected: Vec<Rejected>,
    /// Operations pulled that were new to this replica.
    pub pulled: u64,
    /// Operations pulled that this replica already held.
    pub pull_duplicates: u64,
    /// Bytes sent (request bodies, compressed).
    pub bytes_up: u64,
    /// Bytes received (response bodies, compressed).
    pub bytes_down: u64,
    /// HTTP requests that got an answer.
    pub requests: u32,
    /// Attempts that failed and were retried.
    pub retries: u32,
    /// How long the sync took.
    pub duration: Duration,
    /// The clock correction measured (server time − device time, ms).
    pub clock_offset_ms: i64,
}

/// Where a sync is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProgress {
    /// A page was pulled and applied.
    Pulled {
        /// Operations pulled so far.
        ops: u64,
        /// Whether more pages wait.
        more: bool,
    },
    /// A batch was pushed and acknowledged.
    Pushed {
        /// Operations sent so far.
        ops: u64,
        /// Operations still to send.
        remaining: u64,
    },
}

/// What enrolment gives the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The device's id on the server.
    pub device_id: Uuid,
    /// The bearer token: keep it in the platform's secure storage.
    pub token: String,
    /// The officer the device belongs to.
    pub officer_id: Uuid,
}

struct Client<'a> {
    http: ureq::Agent,
    config: &'a SyncConfig,
    report: SyncReport,
}

impl<'a> Client<'a> {
    fn new(config: &'a SyncConfig) -> Result<Self> {
        // Error statuses come back as answers (their JSON body says what went wrong); the
        // timeout covers the whole exchange, connection to last byte.
        let roots = match &config.trusted_ca_pem {
            Some(pem) => {
                let ca = ureq::tls::Certificate::from_pem(pem.as_bytes())
                    .map_err(|_| Error::invalid("trusted_ca_pem", "a certificate in PEM form"))?;
                ureq::tls::RootCerts::from([ca])
            }
            None => ureq::tls::RootCerts::WebPki,
        };
        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Ok(Client {
            http,
            config,
            report: SyncReport::default(),
        })
    }

    /// POST a message, retrying what a retry can fix; measures the clock offset as a side effect.
    fn post<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        store: &mut Store,
        path: &str,
        token: Option<&str>,
        make: impl Fn(i64) -> Req,
        server_time: impl Fn(&Resp) -> i64,
    ) -> Result<Resp> {
        let url = format!("{}{path}", self.config.base_url);
        let mut backoff = self.config.initial_backoff;
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            if attempt > 1 {
                self.report.retries += 1;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
            let device_time = store.now_ms() - store.clock_offset_ms();
            let body = postcard::to_allocvec(&make(device_time))
                .map_err(|e| Error::Decode(e.to_string()))?;
            let body = zstd::encode_all(&body[..], 3)?;
            let mut request = self
                .http
                .post(&url)
                .header("content-type", POSTCARD_MEDIA_TYPE)
                .header("content-encoding", "zstd")
                .header("accept-encoding", "zstd");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let sent = Instant::now();
            let mut response = match request.send(&body[..]) {
                Ok(r) => r,
                Err(e) => {
                    last = describe(&e);
                    if untrusted(&e) {
                        return Err(Error::Untrusted { detail: last });
                    }
                    continue;
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let zstd_body = response
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd"));
            let raw = match response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
            {
                Ok(b) => b,
                Err(e) => {
                    last = describe(&e);
                    continue; // the answer was cut: the request is safe to repeat
                }
            };
            let rtt = sent.elapsed();
            self.report.requests += 1;
            self.report.bytes_up += body.len() as u64;
            self.report.bytes_down += raw.len() as u64;
            let bytes = if zstd_body {
                match zstd::decode_all(&raw[..]) {
                    Ok(b) => b,
                    Err(e) => {
                        last = format!("undecodable compressed answer: {e}");
                        continue;
                    }
                }
            } else {
                raw
            };
            if status.is_success() {
                match postcard::from_bytes::<Resp>(&bytes) {
                    Ok(resp) => {
                        // Server time minus the device time halfway through the round trip.
                        let offset =
                            server_time(&resp) - (device_time + rtt.as_millis() as i64 / 2);
                        self.report.clock_offset_ms = offset;
                        store.set_clock_offset(offset)?;
                        return Ok(resp);
                    }
                    Err(e) => {
                        last = format!("undecodable answer: {e}");
                        continue;
                    }
                }
            }
            let err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let code_num = status.as_u16();
            let refusal = err
                .as_ref()
                .and_then(|e| e.reason.as_deref())
                .and_then(EnrolRefusal::from_wire);
            if let (401, Some(reason)) = (code_num, refusal) {
                return Err(Error::EnrolRefused(reason));
            }
            let (code, message) = err
                .map(|e| (e.error, e.message))
                .unwrap_or_else(|| ("unknown".into(), String::new()));
            if matches!(code_num, 429 | 500 | 502 | 503 | 504) {
                last = format!("server answered {code_num} ({code})");
                if let Some(secs) = retry_after {
                    backoff = Duration::from_secs(secs).min(self.config.max_backoff);
                }
                continue;
            }
            return Err(Error::Http {
                status: code_num,
                code,
                message,
            });
        }
        Err(Error::Network {
            attempts: self.config.max_attempts.max(1),
            last,
        })
    }
}

/// The largest answer read (compressed): far above a pull page, a bound against a broken peer.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

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

/// Exchange a one-time enrolment code for a device token (the first thing a new phone does,
/// online). Also measures the phone's clock offset.
pub fn enrol(
    store: &mut Store,
    base_url: &str,
    code: &str,
    device_name: &str,
) -> Result<Enrolment> {
    enrol_with(store, &SyncConfig::new(base_url, ""), code, device_name)
}

/// [`enrol`] with a configuration: the server's URL and, for a server whose certificate the
/// public roots do not vouch for, the pinned authority (`trusted_ca_pem`). The token in
/// `config` is not used.
pub fn enrol_with(
    store: &mut Store,
    config: &SyncConfig,
    code: &str,
    device_name: &str,
) -> Result<Enrolment> {
    let mut client = Client::new(config)?;
    let replica = store.replica_id().0;
    let resp: EnrolResponse = client.post(
        store,
        "/v1/enrol",
        None,
        |device_time_ms| EnrolRequest {
            protocol: PROTOCOL_VERSION,
            code: code.trim().to_owned(),
            device_name: device_name.to_owned(),
            replica,
            device_time_ms,
        },
        |r: &EnrolResponse| r.server_time_ms,
    )?;
    Ok(Enrolment {
        device_id: resp.device_id,
        token: resp.token,
        officer_id: resp.officer_id,
    })
}

fn pull_key(config: &SyncConfig) -> String {
    format!("pull {}", config.base_url)
}

fn push_key(config: &SyncConfig) -> String {
    format!("push {}", config.base_url)
}

/// Sync with a server: pull until nothing is left, push everything the server has not
/// acknowledged, pull once more. Safe to call again at any time, including after an error.
pub fn sync(
    store: &mut Store,
    config: &SyncConfig,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<SyncReport> {
    let started = Instant::now();
    let mut client = Client::new(config)?;
    pull_all(store, &mut client, progress)?;
    push_all(store, &mut client, progress)?;
    pull_all(store, &mut client, progress)?;
    let mut report = client.report;
    report.duration = started.elapsed();
    Ok(report)
}

fn pull_all(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    let key = pull_key(client.config);
    loop {
        let cursor = store.cursor(&key)?;
        let limit = client.config.pull_page;
        let token = client.config.token.clone();
        let page: PullResponse = client.post(
            store,
            "/v1/sync/pull",
            Some(&token),
            |device_time_ms| PullRequest {
                protocol: PROTOCOL_VERSION,
                device_time_ms,
                cursor: cursor.clone(),
                limit,
            },
            |r: &PullResponse| r.server_time_ms,
        )?;
        let applied = store.apply_ops_with_cursor(&page.ops, &key, &page.cursor)?;
        client.report.pulled += applied.applied as u64;
        client.report.pull_duplicates += applied.duplicates as u64;
        progress(SyncProgress::Pulled {
            ops: client.report.pulled + client.report.pull_duplicates,
            more: page.has_more,
        });
        if !page.has_more {
            return Ok(());
        }
    }
}

fn push_all(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    let key = push_key(client.config);
    let mut sent = 0u64;
    loop {
        let acked: u64 = store
            .cursor(&key)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let ops: Vec<Op> = store.own_ops_after(acked, client.config.push_batch.max(1))?;
        if ops.is_empty() {
            return Ok(());
        }
        let last = ops.last().map_or(acked, |o| o.counter);
        let token = client.config.token.clone();
        let resp: PushResponse = client.post(
            store,
            "/v1/sync/push",
            Some(&token),
            |device_time_ms| PushRequest {
                protocol: PROTOCOL_VERSION,
                device_time_ms,
                ops: ops.clone(),
            },
            |r: &PushResponse| r.server_time_ms,
        )?;
        client.report.pushed += resp.applied;
        client.report.push_duplicates += resp.duplicates;
        client.report.rejected.extend(resp.rejected);
        sent += ops.len() as u64;
        // The server acknowledges what it processed; never move the cursor backwards, and never
        // past what was sent (a server that claims more is wrong, and the rest would be lost).
        let new_acked = resp.acked_counter.min(last).max(acked);
        if new_acked == acked {
            return Err(Error::Http {
                status: 200,
                code: "no_progress".into(),
                message: "the server acknowledged none of the batch".into(),
            });
        }
        store.set_cursor(&key, &new_acked.to_string())?;
        let remaining = store.own_counter().saturating_sub(new_acked);
        progress(SyncProgress::Pushed {
            ops: sent,
            remaining,
        });
    }
}
