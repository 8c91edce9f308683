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
use crate::sign::WipeOrder;
use crate::store::Store;
use crate::transport::{HttpRequest, HttpTransport, TransportError};
use crate::wire::{
    EnrolRefusal, EnrolRequest, EnrolResponse, ErrorBody, PullRequest, PullResponse,
    PushPullRequest, PushPullResponse, PushRequest, PushResponse, Rejected, POSTCARD_MEDIA_TYPE,
    PROTOCOL_VERSION,
};
use crate::{Cancel, Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where and how to sync.
#[derive(Clone)]
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
    /// The app's own HTTP client (`None`: the built-in one, when the library has it: feature
    /// `sync-client`). Its TLS settings then decide whom to trust: `trusted_ca_pem` must be
    /// `None`.
    pub transport: Option<Arc<dyn HttpTransport>>,
    /// The longest the whole call may take, retries and waits included (`None`: no limit).
    /// Past it the call stops at its next safe point with [`Error::Network`] saying so; what
    /// was applied or acknowledged stays. A request's own timeout is cut to what is left.
    pub deadline: Option<Duration>,
    /// Set it from another thread to stop the call at its next safe point ([`Cancel`]).
    pub cancel: Cancel,
}

/// The default [`SyncConfig::deadline`] of a sync: ten minutes, enough for a new phone to pull
/// a whole commune's roster over 2G (about 1 MB at 40 kbit/s takes under four minutes) with
/// retries; a sync stopped by it keeps every page applied, and the next one goes on.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(600);

/// The default deadline of an enrolment: one small request, tried [`ENROL_ATTEMPTS`] times
/// within a minute (someone is waiting at the screen).
pub const ENROL_DEADLINE: Duration = Duration::from_secs(60);

/// Attempts of an enrolment: a refused connection is far more often a mistyped address than a
/// passing fault, so an enrolment tries three times (about 1.5 s on a closed port), not six.
pub const ENROL_ATTEMPTS: u32 = 3;

impl std::fmt::Debug for SyncConfig {
    // By hand: the token is a credential (never in logs), the transport an app object.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("base_url", &self.base_url)
            .field("token", &if self.token.is_empty() { "" } else { "(set)" })
            .field("push_batch", &self.push_batch)
            .field("pull_page", &self.pull_page)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("timeout", &self.timeout)
            .field("trusted_ca_pem", &self.trusted_ca_pem.is_some())
            .field("transport", &self.transport.as_ref().map(|_| "the app's"))
            .field("deadline", &self.deadline)
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl SyncConfig {
    /// Defaults suited to a 2G link: 500 operations a request, 6 attempts, 0.5 s doubling to
    /// 30 s, 30 s per request, [`SYNC_DEADLINE`] for the whole sync.
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
            transport: None,
            deadline: Some(SYNC_DEADLINE),
            cancel: Cancel::new(),
        }
    }

    /// Defaults for an enrolment: [`ENROL_ATTEMPTS`] attempts within [`ENROL_DEADLINE`].
    pub fn enrolment(base_url: impl Into<String>) -> Self {
        SyncConfig {
            max_attempts: ENROL_ATTEMPTS,
            deadline: Some(ENROL_DEADLINE),
            ..SyncConfig::new(base_url, "")
        }
    }
}

/// Check a server address: `http://` or `https://`, a host, nothing after the path.
fn check_base_url(url: &str) -> Result<()> {
    const EXPECTED: &str = "an http:// or https:// address such as https://doorstep.example.vn";
    if !crate::transport::valid_base_url(url) {
        return Err(Error::invalid("server_url", EXPECTED));
    }
    Ok(())
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
    /// Other devices' operations this device carried (received from peers) that the server
    /// took (new to it).
    pub relayed: u64,
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
    /// The server revoked this device and ordered it (signed) to erase the personal data it
    /// holds: after a last push of what the server still takes, the store was wiped.
    pub wiped: bool,
    /// Households erased because they left this device's scope — their village did (an
    /// assignment ended, the officer moved) or they moved to a village outside it — plus
    /// residents erased on their own (moved to a household of such a village).
    pub forgotten: u64,
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
    http: Arc<dyn HttpTransport>,
    config: &'a SyncConfig,
    report: SyncReport,
    started: Instant,
    /// A wipe order the server answered with (this device was revoked).
    wipe: Option<WipeOrder>,
    /// Whether to send the last push of a sync with its final pull (`/v1/sync/push-pull`);
    /// off once the server answers that it does not know the route.
    push_pull: bool,
    /// Whether the last push carried the final pull and the feed was read to its end.
    tail_pulled: bool,
    /// Push requests (own work or relayed runs) answered in this sync.
    pushes: u32,
    /// The server said, with a push's answer, that this device is revoked.
    revoked: bool,
}

impl<'a> Client<'a> {
    /// `401 revoked` when a push's answer said the device was revoked (its wipe order kept).
    fn check_revoked(&mut self) -> Result<()> {
        if std::mem::take(&mut self.revoked) {
            return Err(Error::Http {
                status: 401,
                code: "unauthorized".into(),
                message: "this device was revoked".into(),
            });
        }
        Ok(())
    }

    fn new(config: &'a SyncConfig) -> Result<Self> {
        check_base_url(&config.base_url)?;
        if config.deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("deadline", "a positive duration"));
        }
        let http: Arc<dyn HttpTransport> = match &config.transport {
            Some(_) if config.trusted_ca_pem.is_some() => {
                return Err(Error::invalid(
                    "trusted_ca_pem",
                    "none when the app gives its own HTTP transport (pin the server in its TLS settings)",
                ));
            }
            Some(t) => t.clone(),
            None => builtin(config)?,
        };
        Ok(Client {
            http,
            config,
            report: SyncReport::default(),
            started: Instant::now(),
            wipe: None,
            push_pull: true,
            tail_pulled: false,
            pushes: 0,
            revoked: false,
        })
    }

    /// What is left of the deadline (`None`: no deadline).
    fn left(&self) -> Option<Duration> {
        self.config
            .deadline
            .map(|d| d.saturating_sub(self.started.elapsed()))
    }

    /// The error of a call that ran out of time after `attempts` requests.
    fn past_deadline(&self, attempts: u32, last: &str) -> Error {
        let secs = self.config.deadline.unwrap_or_default().as_secs_f64();
        let last = if last.is_empty() {
            format!("the deadline of {secs:.1} s passed")
        } else {
            format!("{last}; the deadline of {secs:.1} s passed")
        };
        Error::Network { attempts, last }
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
        let cancel = &self.config.cancel;
        for attempt in 1..=self.config.max_attempts.max(1) {
            cancel.check()?;
            if attempt > 1 {
                // Waiting past the deadline is pointless: stop now and say why.
                if self.left().is_some_and(|left| left <= backoff) {
                    return Err(self.past_deadline(attempt - 1, &last));
                }
                self.report.retries += 1;
                cancel.sleep(backoff)?;
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
            let timeout = match self.left() {
                Some(left) if left.is_zero() => return Err(self.past_deadline(attempt - 1, &last)),
                Some(left) => left.min(self.config.timeout),
                None => self.config.timeout,
            };
            let device_time = store.now_ms() - store.clock_offset_ms();
            let body = postcard::to_allocvec(&make(device_time))
                .map_err(|e| Error::Decode(e.to_string()))?;
            let body = zstd::encode_all(&body[..], 3)?;
            let mut headers = vec![
                ("content-type".to_owned(), POSTCARD_MEDIA_TYPE.to_owned()),
                ("content-encoding".to_owned(), "zstd".to_owned()),
                ("accept-encoding".to_owned(), "zstd".to_owned()),
            ];
            if let Some(token) = token {
                headers.push(("authorization".to_owned(), format!("Bearer {token}")));
            }
            let request = HttpRequest {
                url: url.clone(),
                headers,
                body,
                timeout,
            };
            let sent = Instant::now();
            let sent_bytes = request.body.len() as u64;
            let answer = match self.http.post(request) {
                Ok(a) => a,
                Err(TransportError::Untrusted(detail)) => {
                    return Err(Error::Untrusted { detail });
                }
                Err(TransportError::Failed(detail)) => {
                    last = detail;
                    continue;
                }
            };
            if answer.body.len() as u64 > MAX_ANSWER_BYTES {
                last = format!("an answer of more than {MAX_ANSWER_BYTES} bytes");
                continue;
            }
            let status = answer.status;
            let retry_after = answer
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok());
            let zstd_body = answer
                .header("content-encoding")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("zstd"));
            let raw = answer.body;
            let rtt = sent.elapsed();
            self.report.requests += 1;
            self.report.bytes_up += sent_bytes;
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
            if (200..300).contains(&status) {
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
            let mut err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let code_num = status;
            if code_num == 401 {
                self.wipe = err.as_mut().and_then(|e| e.wipe.take());
            }
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

/// Replicas whose relay the pull asks about (the server answers at most this many).
const MAX_RELAYING: usize = 64;

/// The largest answer taken (compressed): far above a pull page, a bound against a broken peer.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The built-in transport (ureq with rustls) for `config`.
#[cfg(feature = "sync-client")]
fn builtin(config: &SyncConfig) -> Result<Arc<dyn HttpTransport>> {
    Ok(Arc::new(crate::transport::builtin::Ureq::new(
        config.trusted_ca_pem.as_deref(),
    )?))
}

/// Built without the `sync-client` feature: the app must give its own transport.
#[cfg(not(feature = "sync-client"))]
fn builtin(_: &SyncConfig) -> Result<Arc<dyn HttpTransport>> {
    Err(Error::invalid(
        "transport",
        "the app's own HTTP transport (this library was built without one of its own)",
    ))
}

/// Exchange a one-time enrolment code for a device token (the first thing a new phone does,
/// online). Also measures the phone's clock offset.
pub fn enrol(
    store: &mut Store,
    base_url: &str,
    code: &str,
    device_name: &str,
) -> Result<Enrolment> {
    enrol_with(store, &SyncConfig::enrolment(base_url), code, device_name)
}

/// [`enrol`] with a configuration ([`SyncConfig::enrolment`] gives its defaults): the server's
/// URL, the deadline, a [`Cancel`] flag and, for a server whose certificate the public roots do
/// not vouch for, the pinned authority (`trusted_ca_pem`). The token in `config` is not used.
pub fn enrol_with(
    store: &mut Store,
    config: &SyncConfig,
    code: &str,
    device_name: &str,
) -> Result<Enrolment> {
    let mut client = Client::new(config)?;
    let replica = store.replica_id().0;
    let public_key = store.public_key()?;
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
            public_key: Some(public_key.clone()),
        },
        |r: &EnrolResponse| r.server_time_ms,
    )?;
    store.set_enrolment_keys(&resp.server_key, resp.certificate.as_ref())?;
    store.set_lease(resp.lease_until_ms)?;
    Ok(Enrolment {
        device_id: resp.device_id,
        token: resp.token,
        officer_id: resp.officer_id,
    })
}

fn pull_key(config: &SyncConfig) -> String {
    pull_key_of(&config.base_url)
}

fn pull_key_of(base_url: &str) -> String {
    format!("pull {base_url}")
}

fn push_key(config: &SyncConfig) -> String {
    push_key_of(&config.base_url)
}

/// The peer name a store gives `base_url`'s server (segments delivered to it, what it
/// acknowledged): for [`Store::export_bundle`] to leave out what that server has.
pub fn push_peer(base_url: &str) -> String {
    push_key_of(base_url)
}

/// The cursor key of what `base_url`'s server acknowledged (`base_url` without a final `/`).
fn push_key_of(base_url: &str) -> String {
    format!(
        "{}{}",
        crate::segments::PUSH_PEER_PREFIX,
        base_url.trim_end_matches('/')
    )
}

/// Sync with a server: pull until nothing is left, push everything the server does not hold,
/// pull once more. Safe to call again at any time, including after an error, a
/// cancellation ([`SyncConfig::cancel`]) or a deadline ([`SyncConfig::deadline`]): each
/// page is applied with its cursor and each batch's acknowledgement saved in one transaction,
/// so a sync stopped anywhere leaves nothing half-applied.
pub fn sync(
    store: &mut Store,
    config: &SyncConfig,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<SyncReport> {
    let started = Instant::now();
    let mut client = Client::new(config)?;
    // A revocation can land at any step (between the push and the last pull, say): whichever
    // request is answered with the server's wipe order, the device obeys it there.
    if let Err(e) = sync_steps(store, &mut client, progress) {
        return match client.wipe.take() {
            Some(order) => obey_wipe(store, &mut client, order, e, progress, started),
            None => Err(e),
        };
    }
    // Operations a compaction had to keep as they were until a server held them: it may now.
    store.compact_if_pending()?;
    let mut report = client.report;
    report.duration = started.elapsed();
    Ok(report)
}

fn sync_steps(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    pull_all(store, client, progress)?;
    // The last push (or relay) carries the final pull when the server takes both at once; with
    // nothing sent, the first pull already read the feed to its end.
    client.tail_pulled = false;
    client.pushes = 0;
    push_all(store, client, progress)?;
    relay_all(store, client, progress)?;
    if client.tail_pulled || client.pushes == 0 {
        return Ok(());
    }
    pull_all(store, client, progress)
}

/// A revoked device's end: check the order is this server's and for this device, push once
/// more what the server still takes (operations stamped before the revocation), then erase the
/// store. An order that does not check out is ignored (the 401 is returned as is); a push that
/// cannot reach the server leaves everything for the next sync.
fn obey_wipe(
    store: &mut Store,
    client: &mut Client<'_>,
    order: WipeOrder,
    refused: Error,
    progress: &mut dyn FnMut(SyncProgress),
    started: Instant,
) -> Result<SyncReport> {
    let ours = store
        .server_key()?
        .is_some_and(|k| crate::sign::verify_wipe(&k, &order))
        && order.replica == store.replica_id().0
        && store
            .certificate()?
            .is_none_or(|c| c.device_id == order.device_id);
    if !ours {
        return Err(refused);
    }
    // Refused or stalled, the push ends the device's part: what is left the server will not
    // take from a revoked device. Unreachable, it waits for the next sync.
    // Alone: the server answers a revoked device's push-and-pull with the order again.
    client.push_pull = false;
    if let Err(e @ (Error::Network { .. } | Error::Cancelled)) = push_all(store, client, progress) {
        return Err(e);
    }
    store.wipe()?;
    let mut report = std::mem::take(&mut client.report);
    report.wiped = true;
    report.duration = started.elapsed();
    Ok(report)
}

fn pull_all(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    loop {
        client.config.cancel.check()?;
        let ask = pull_ask(store, client)?;
        let token = client.config.token.clone();
        let page: PullResponse = client.post(
            store,
            "/v1/sync/pull",
            Some(&token),
            |device_time_ms| ask.request(device_time_ms),
            |r: &PullResponse| r.server_time_ms,
        )?;
        if !take_page(store, client, &page, progress)? {
            return Ok(());
        }
    }
}

/// What a pull asks, read from the store.
struct PullAsk {
    cursor: Option<String>,
    own: u64,
    relaying: Vec<Uuid>,
    limit: u32,
}

impl PullAsk {
    fn request(&self, device_time_ms: i64) -> PullRequest {
        PullRequest {
            protocol: PROTOCOL_VERSION,
            device_time_ms,
            cursor: self.cursor.clone(),
            limit: self.limit,
            own: self.own,
            relaying: self.relaying.clone(),
        }
    }
}

fn pull_ask(store: &Store, client: &Client<'_>) -> Result<PullAsk> {
    Ok(PullAsk {
        cursor: store.cursor(&pull_key(client.config))?,
        own: store.own_logged()?,
        relaying: store.relaying(&push_key(client.config), MAX_RELAYING)?,
        limit: client.config.pull_page,
    })
}

/// Apply a pull page with its cursor; whether more is waiting.
fn take_page(
    store: &mut Store,
    client: &mut Client<'_>,
    page: &PullResponse,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<bool> {
    let (applied, forgotten) = apply_page(
        store,
        page,
        &pull_key(client.config),
        &push_key(client.config),
        None,
    )?;
    client.report.forgotten += forgotten as u64;
    client.report.pulled += applied.applied as u64;
    client.report.pull_duplicates += applied.duplicates as u64;
    progress(SyncProgress::Pulled {
        ops: client.report.pulled + client.report.pull_duplicates,
        more: page.has_more,
    });
    Ok(page.has_more)
}

/// Apply a pull page of the server whose cursors are `pull` and `push`, with the page's cursor
/// (or `keep_cursor`, which then also leaves the push cursor alone), and renew the lease;
/// what was applied and how many were erased.
fn apply_page(
    store: &mut Store,
    page: &PullResponse,
    pull: &str,
    push: &str,
    keep_cursor: Option<&str>,
) -> Result<(crate::store::ApplyReport, usize)> {
    let dropped = crate::lease::Dropped {
        villages: &page.dropped,
        households: &page.dropped_households,
        residents: &page.dropped_residents,
    };
    let cursor = keep_cursor.unwrap_or(&page.cursor);
    let applied = store.apply_pull_page(&page.ops, pull, cursor, &dropped)?;
    store.set_lease(page.lease_until_ms)?;
    if !page.has_more && keep_cursor.is_none() {
        // What the server's database holds of this replica now is where pushing starts,
        // whatever it acknowledged before: a server restored from a backup gets the lost
        // operations again. And no counter it has processed is ever issued again.
        store.reserve_counters_through(page.held)?;
        store.set_cursor(push, &page.held.to_string())?;
        // Runs of others the server already holds are not relayed.
        store.mark_held(push, &page.held_others)?;
    }
    Ok(applied)
}

/// Send a push (`make` builds it), carrying the sync's final pull when it `ends` the sync and
/// the server takes both at once.
fn push(
    store: &mut Store,
    client: &mut Client<'_>,
    ends: bool,
    make: impl Fn(i64) -> PushRequest,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<PushResponse> {
    if ends {
        if let Some(resp) = push_then_pull(store, client, &make, progress)? {
            return Ok(resp);
        }
    }
    let token = client.config.token.clone();
    client.post(
        store,
        "/v1/sync/push",
        Some(&token),
        make,
        |r: &PushResponse| r.server_time_ms,
    )
}

/// Send `push` with the pull that ends the sync in one request (`/v1/sync/push-pull`) and apply
/// the page; `None` if the server does not know that route (an older server: the caller pushes
/// alone, and the sync ends with its own pull).
fn push_then_pull(
    store: &mut Store,
    client: &mut Client<'_>,
    push: impl Fn(i64) -> PushRequest,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<Option<PushResponse>> {
    let ask = pull_ask(store, client)?;
    let token = client.config.token.clone();
    let answer = client.post(
        store,
        "/v1/sync/push-pull",
        Some(&token),
        |device_time_ms| PushPullRequest {
            push: push(device_time_ms),
            pull: ask.request(device_time_ms),
        },
        |r: &PushPullResponse| {
            r.pull
                .as_ref()
                .map_or(r.push.server_time_ms, |p| p.server_time_ms)
        },
    );
    let both = match answer {
        Ok(both) => both,
        Err(Error::Http { status: 404, .. }) => {
            client.push_pull = false;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    match (both.pull, both.wipe) {
        (Some(page), _) => client.tail_pulled = !take_page(store, client, &page, progress)?,
        (None, order) => {
            // Revoked while the push was applied: the caller counts the push, then the sync
            // ends as a refused request would, and the order is obeyed.
            client.wipe = order;
            client.revoked = true;
        }
    }
    Ok(Some(both.push))
}

fn push_all(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    let key = push_key(client.config);
    let mut sent = 0u64;
    loop {
        client.config.cancel.check()?;
        let acked: u64 = store
            .cursor(&key)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let ops: Vec<Op> = store.own_ops_after(acked, client.config.push_batch.max(1))?;
        if ops.is_empty() {
            return Ok(());
        }
        let last = ops.last().map_or(acked, |o| o.counter);
        let make = |device_time_ms| PushRequest {
            protocol: PROTOCOL_VERSION,
            device_time_ms,
            ops: ops.clone(),
            segments: Vec::new(),
        };
        // The last request before the final pull carries it.
        let ends = client.push_pull
            && store.own_ops_after(last, 1)?.is_empty()
            && store
                .undelivered(&push_key(client.config), false, None, 1)?
                .is_empty();
        let resp = push(store, client, ends, make, progress)?;
        client.pushes += 1;
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
        client.check_revoked()?;
    }
}

/// Deliver the signed runs of other devices' operations this store received from peers (phones,
/// files) and has not given this server yet, whole runs per request. The server checks each
/// run's signature and its author's authority; whatever it answers, a run it answered for is
/// not sent again.
fn relay_all(
    store: &mut Store,
    client: &mut Client<'_>,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<()> {
    let peer = push_key(client.config);
    loop {
        client.config.cancel.check()?;
        let mut runs = store.undelivered(&peer, false, None, 64)?;
        let fetched = runs.len();
        // Whole runs, at most the batch size in all (a run alone may reach it).
        let mut n = 0;
        let keep = runs
            .iter()
            .take_while(|r| {
                n += r.ops.len();
                n <= client.config.push_batch.max(crate::sign::MAX_SEGMENT_OPS)
            })
            .count()
            .max(1);
        runs.truncate(keep);
        if runs.is_empty() {
            return Ok(());
        }
        let ops: Vec<Op> = runs.iter().flat_map(|r| r.ops.iter().cloned()).collect();
        let segments: Vec<crate::sign::Segment> = runs.iter().map(|r| r.segment.clone()).collect();
        let make = |device_time_ms| PushRequest {
            protocol: PROTOCOL_VERSION,
            device_time_ms,
            ops: ops.clone(),
            segments: segments.clone(),
        };
        // The last request before the final pull carries it.
        let ends = client.push_pull && fetched == runs.len() && fetched < 64;
        let resp = push(store, client, ends, make, progress)?;
        client.pushes += 1;
        client.report.relayed += resp.applied;
        client.report.push_duplicates += resp.duplicates;
        client.report.rejected.extend(resp.rejected);
        let delivered: Vec<&crate::sign::Segment> = segments.iter().collect();
        store.mark_delivered(&peer, &delivered)?;
        client.check_revoked()?;
    }
}

/// What opening an area bundle did ([`import_area_bundle`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaImport {
    /// Pull pages in it.
    pub pages: usize,
    /// Operations new to this store, applied.
    pub applied: u64,
    /// Operations it already held.
    pub duplicates: u64,
    /// Households (and residents on their own) erased as out of scope.
    pub forgotten: u64,
    /// When the server made it (Unix ms).
    pub made_at_ms: i64,
}

/// Open an area bundle that `base_url`'s server made for this phone (`doorstep bundle area`:
/// the device's whole area as its first pull would bring it, sealed for it and signed with the
/// server's key) and apply its pages as that pull would, cursor included: the next sync with
/// `base_url` starts where the bundle ends. A phone that has pulled from `base_url` before
/// keeps its own cursor (what it holds counts as duplicates). Opening the same bundle again
/// changes nothing more. A bundle made for another device, by another server, or altered, is
/// refused whole (`Invalid { field: "bundle" }`).
pub fn import_area_bundle(store: &mut Store, bytes: &[u8], base_url: &str) -> Result<AreaImport> {
    check_base_url(base_url)?;
    let server = store
        .server_key()?
        .ok_or_else(|| Error::invalid("store", "an enrolled store (no server key)"))?;
    let key = store.signing_key()?;
    let area = crate::bundle::open_area(bytes, &key, &server)?;
    if store
        .certificate()?
        .is_some_and(|c| c.device_id != area.device_id)
    {
        return Err(Error::invalid("bundle", "a bundle made for this device"));
    }
    let pull = pull_key_of(base_url);
    let push = push_key_of(base_url);
    let own_cursor = store.cursor(&pull)?;
    let mut report = AreaImport {
        pages: area.pages.len(),
        made_at_ms: area.made_at_ms,
        ..AreaImport::default()
    };
    for page in &area.pages {
        let (applied, forgotten) = apply_page(store, page, &pull, &push, own_cursor.as_deref())?;
        report.applied += applied.applied as u64;
        report.duplicates += applied.duplicates as u64;
        report.forgotten += forgotten as u64;
    }
    Ok(report)
}

/// How many of this replica's own operations `base_url`'s server has not acknowledged yet
/// (what the next sync pushes): for an app's "N records waiting to be sent".
pub fn unsent_ops(store: &Store, base_url: &str) -> Result<u64> {
    let key = push_key_of(base_url);
    let acked: u64 = store
        .cursor(&key)?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(store.own_counter().saturating_sub(acked))
}
