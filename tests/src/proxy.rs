//! A fault-injecting HTTP proxy on loopback, steered by the test while it runs.
//!
//! It understands just enough HTTP/1.1 to act per request: it reads one whole request from the
//! client (headers and a `Content-Length` body), decides what to do with it ([`Fault`]), and
//! forwards it to the server on a fresh upstream connection with `Connection: close`, so the
//! server's answer ends where the upstream connection ends — no need to parse chunked bodies.
//! The client connection is closed after each answer (the answer says `Connection: close`, so
//! clients do not try to reuse it). One request per connection makes "the fault of a
//! connection" and "the fault of a request" the same thing.
//!
//! Faults come from a queue (the next requests, in order), then from a seeded random choice
//! (reproducible partial runs), then from a default. Every wait is bounded, and the proxy's
//! runtime is shut down when the [`Proxy`] is dropped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and return the answer.
    Pass,
    /// Forward the first `n` bytes of the request, then drop both connections.
    DropRequestAfter(usize),
    /// Forward the request, then return only the first `n` bytes of the answer and drop.
    DropResponseAfter(usize),
    /// Forward the request, return the answer's headers and half of its body, then drop.
    TruncateResponseBody,
    /// Do not forward; answer `500` with `{"error":"internal","message":"injected"}`.
    Http500,
    /// Do not forward; answer `404` with `{"error":"not_found",…}`, as a server without the
    /// route does (an older server).
    Http404,
    /// Wait this long, then forward (the request is forwarded even if the client gave up:
    /// a late delivery).
    Delay(Duration),
    /// Forward the request twice on two upstream connections; return the second answer.
    Duplicate,
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::DropRequestAfter(_) => "drop_request",
            Fault::DropResponseAfter(_) => "drop_response",
            Fault::TruncateResponseBody => "truncate_body",
            Fault::Http500 => "http500",
            Fault::Http404 => "http404",
            Fault::Delay(_) => "delay",
            Fault::Duplicate => "duplicate",
        }
    }
}

/// How the proxy picks the fault of each request.
#[derive(Debug)]
pub struct Faults {
    /// Faults for the next requests, in order (taken before anything else).
    pub queue: VecDeque<Fault>,
    /// A seeded random choice among weighted faults, used when the queue is empty.
    pub random: Option<(StdRng, Vec<(u32, Fault)>)>,
    /// What to do otherwise.
    pub default: Fault,
    /// If set, only requests whose path contains this string get faults; others pass.
    pub path_filter: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            queue: VecDeque::new(),
            random: None,
            default: Fault::Pass,
            path_filter: None,
        }
    }
}

impl Faults {
    fn pick(&mut self, path: &str) -> Fault {
        if let Some(filter) = &self.path_filter {
            if !path.contains(filter.as_str()) {
                return Fault::Pass;
            }
        }
        if let Some(f) = self.queue.pop_front() {
            return f;
        }
        if let Some((rng, choices)) = &mut self.random {
            let total: u32 = choices.iter().map(|(w, _)| *w).sum();
            if total > 0 {
                let mut x = rng.gen_range(0..total);
                for (w, f) in choices.iter() {
                    if x < *w {
                        return f.clone();
                    }
                    x -= w;
                }
            }
        }
        self.default.clone()
    }
}

/// What the proxy did, for assertions that the faults really happened.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests read from clients.
    pub requests: AtomicU64,
    /// Requests forwarded upstream in full (a duplicate counts twice).
    pub forwarded: AtomicU64,
    /// Requests that got a fault other than `Pass`.
    pub faulted: AtomicU64,
    /// The faults applied, by name, in order.
    pub log: Mutex<Vec<(String, &'static str)>>,
}

/// A running proxy. Dropping it stops it.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Steer it.
    pub faults: Arc<Mutex<Faults>>,
    /// What it did.
    pub stats: Arc<Stats>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Longest any single read, write or connect may take.
const IO_LIMIT: Duration = Duration::from_secs(60);
/// Largest request accepted (the server's limit is 4 MiB; leave room to test it).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

impl Proxy {
    /// Start a proxy on a free loopback port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Self::start_balanced(vec![upstream])
    }

    /// Start a proxy that forwards each request to the next of `upstreams` in turn (a
    /// round-robin load balancer in front of several server instances: one device's pull
    /// pages and push batches land on different instances).
    pub fn start_balanced(upstreams: Vec<SocketAddr>) -> Proxy {
        assert!(!upstreams.is_empty(), "the proxy needs an upstream");
        assert!(
            upstreams.iter().all(|u| u.ip().is_loopback()),
            "the proxy only talks to loopback"
        );
        let next = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let faults = Arc::new(Mutex::new(Faults::default()));
        let stats = Arc::new(Stats::default());
        let (f, s) = (faults.clone(), stats.clone());
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (f, s) = (f.clone(), s.clone());
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let upstream = upstreams[i % upstreams.len()];
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(300),
                        handle(client, upstream, f, s),
                    )
                    .await;
                });
            }
        });
        Proxy {
            addr,
            faults,
            stats,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replace every setting: from now on, every request gets `fault`.
    pub fn set(&self, fault: Fault) {
        let mut f = self.faults.lock().unwrap();
        f.queue.clear();
        f.random = None;
        f.default = fault;
    }

    /// The next requests get these faults, in order; then the current settings apply again.
    pub fn queue(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().queue.extend(faults);
    }

    /// Every request picks a fault at random with these weights, from a seeded generator.
    pub fn random(&self, seed: u64, choices: Vec<(u32, Fault)>) {
        let mut f = self.faults.lock().unwrap();
        f.queue.clear();
        f.random = Some((StdRng::seed_from_u64(seed), choices));
    }

    /// Only requests whose path contains `filter` get faults (`None`: all requests).
    pub fn only_paths(&self, filter: Option<&str>) {
        self.faults.lock().unwrap().path_filter = filter.map(str::to_owned);
    }

    /// Back to plain pass-through.
    pub fn clear(&self) {
        *self.faults.lock().unwrap() = Faults::default();
    }

    /// How many requests got a fault other than `Pass` so far.
    pub fn faulted(&self) -> u64 {
        self.stats.faulted.load(Ordering::SeqCst)
    }

    /// How many requests were forwarded upstream in full so far.
    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn limit<T>(
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match tokio::time::timeout(IO_LIMIT, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "proxy i/o limit",
        )),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One whole request: head (through the blank line) and body.
struct Request {
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

impl Request {
    /// The request as sent upstream: `Connection: close` instead of any connection header.
    fn upstream_bytes(&self) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.head);
        let mut out = String::new();
        for (i, line) in text.split("\r\n").enumerate() {
            if line.is_empty() {
                continue;
            }
            let lower = line.to_ascii_lowercase();
            if i > 0 && (lower.starts_with("connection:") || lower.starts_with("keep-alive:")) {
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Answer `status` (e.g. `404 Not Found`) with the JSON `body` without asking upstream.
async fn canned(client: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    limit(client.write_all(head.as_bytes())).await?;
    limit(client.write_all(body)).await?;
    Ok(())
}

async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = limit(client.read(&mut chunk)).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = buf[..head_end].to_vec();
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_owned();
    let mut length = 0usize;
    for line in text.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                return Err(std::io::Error::other(
                    "chunked requests are not supported by the test proxy",
                ));
            }
        }
    }
    if length > MAX_REQUEST {
        return Err(std::io::Error::other(
            "request too large for the test proxy",
        ));
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = limit(client.read(&mut chunk)).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request { path, head, body }))
}

/// Send `bytes` upstream on a fresh connection and read the whole answer (until it closes).
async fn exchange(upstream: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = limit(TcpStream::connect(upstream)).await?;
    limit(server.write_all(bytes)).await?;
    let mut answer = Vec::new();
    limit(server.read_to_end(&mut answer)).await?;
    Ok(answer)
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<Stats>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let fault = faults.lock().unwrap().pick(&request.path);
    if fault != Fault::Pass {
        stats.faulted.fetch_add(1, Ordering::SeqCst);
    }
    stats
        .log
        .lock()
        .unwrap()
        .push((request.path.clone(), fault.name()));
    let bytes = request.upstream_bytes();
    match fault {
        Fault::Pass => {
            let answer = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            limit(client.write_all(&answer)).await?;
        }
        Fault::DropRequestAfter(n) => {
            let mut server = limit(TcpStream::connect(upstream)).await?;
            let n = n.min(bytes.len().saturating_sub(1));
            limit(server.write_all(&bytes[..n])).await?;
            limit(server.flush()).await?;
            // Let the server see the partial request before the connection goes.
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(server);
        }
        Fault::DropResponseAfter(n) => {
            let answer = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            let n = n.min(answer.len().saturating_sub(1));
            limit(client.write_all(&answer[..n])).await?;
        }
        Fault::TruncateResponseBody => {
            let answer = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            let head = find(&answer, b"\r\n\r\n").map_or(0, |i| i + 4);
            let keep = head + (answer.len() - head) / 2;
            let keep = keep.min(answer.len().saturating_sub(1));
            limit(client.write_all(&answer[..keep])).await?;
        }
        Fault::Http500 => {
            canned(
                &mut client,
                "500 Internal Server Error",
                br#"{"error":"internal","message":"injected"}"#,
            )
            .await?;
        }
        Fault::Http404 => {
            canned(
                &mut client,
                "404 Not Found",
                br#"{"error":"not_found","message":"no such route"}"#,
            )
            .await?;
        }
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            let answer = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            // The client may have given up: writing then fails, which is fine.
            let _ = limit(client.write_all(&answer)).await;
        }
        Fault::Duplicate => {
            let _first = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            let second = exchange(upstream, &bytes).await?;
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            limit(client.write_all(&second)).await?;
        }
    }
    let _ = client.flush().await;
    let _ = client.shutdown().await;
    Ok(())
}
