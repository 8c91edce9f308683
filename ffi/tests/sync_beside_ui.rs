//! The bindings' promise that a sync on a background thread does not block the UI: a real
//! (in-process) server, a `FieldStore` syncing on one thread while another thread lists the
//! officer's households. The listener holds the sync inside its first progress callback until
//! the UI thread has completed a read, so a store that kept its lock for the whole sync would
//! time out here instead of passing. Also: enrolment and sync through the app's own HTTP client
//! (`FieldStore::use_http_transport`), as a phone built without the library's does.

use doorstep_core::{CampaignInput, HouseholdInput, Options, ResidentInput, RosterStatus, Store};
use doorstep_ffi::{
    DoorstepError, FieldStore, HttpAnswer, HttpFailure, HttpHeader, HttpTransport, LogLevel,
    LogSink, NewVisit, SyncListener, SyncProgress, VisitOutcome,
};
use doorstep_server::backend::CLI_ACTOR;
use doorstep_server::SqliteBackend;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const UNITS: &str = include_str!("../../data/ninh-thuan-2023-units.csv");
const VILLAGE: &str = "22738-01";

struct Server {
    url: String,
    officer: Uuid,
    code: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server holding one village of `households` households (3 residents each), an officer
/// assigned to it and an enrolment code for their phone.
fn server(dir: &std::path::Path, households: usize) -> Server {
    let now = doorstep_server::now_ms();
    let backend = SqliteBackend::open(dir.join("server.db")).expect("server db");
    let units = format!(
        "{}\n{VILLAGE},22738,village,khu phố,Khu phố 1\n",
        UNITS.trim_end()
    );
    backend
        .import_units(CLI_ACTOR, units.as_bytes(), now)
        .expect("units");
    let officer = backend
        .add_officer(
            CLI_ACTOR,
            "CSKV Trần Văn Bình",
            doorstep_core::Role::Field,
            "22738",
            now,
        )
        .expect("officer");
    backend
        .assign_village(CLI_ACTOR, officer, VILLAGE, now)
        .expect("assign");
    // The roster, made by a "commune station" replica and imported as operations.
    let mut station = Store::open_in_memory(Options::default()).expect("station");
    station.import_units_csv(units.as_bytes()).expect("units");
    let today = chrono::Utc::now().date_naive();
    station
        .put_campaign(CampaignInput {
            id: Uuid::now_v7(),
            name: "Cao điểm 80 ngày đêm".into(),
            start_date: today - chrono::Duration::days(30),
            end_date: today + chrono::Duration::days(30),
            target: 1000,
            unit_code: "58".into(),
        })
        .expect("campaign");
    for h in 0..households {
        let hid = Uuid::now_v7();
        station
            .put_household(HouseholdInput {
                id: hid,
                code: format!("HK{h:04}"),
                village_code: VILLAGE.into(),
                address: Some(format!("{} Lê Duẩn", h + 1)),
                head_id: None,
            })
            .expect("household");
        for r in 0..3 {
            station
                .put_resident(ResidentInput {
                    id: Uuid::now_v7(),
                    household_id: hid,
                    full_name: format!("Nguyễn Văn {h} {r}"),
                    birth_date: "1980".into(),
                    gender: None,
                    id_number: None,
                    phone: None,
                    relation: None,
                    account: RosterStatus::None,
                    agency: None,
                })
                .expect("resident");
        }
    }
    let ops = station
        .all_ops_since(&Default::default())
        .expect("station ops");
    backend.import_ops(CLI_ACTOR, &ops, now).expect("import");
    let code = backend
        .issue_enrol_code(CLI_ACTOR, officer, 10, now)
        .expect("code")
        .code;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = doorstep_server::state(Arc::new(backend), 8 << 20);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            doorstep_server::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
    });
    Server {
        url,
        officer,
        code,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// Holds the sync in its first progress callback until the UI thread has read.
struct Handshake {
    reached: Mutex<Option<Sender<()>>>,
    release: Mutex<Receiver<()>>,
    timed_out: AtomicBool,
    calls: AtomicU64,
}

impl SyncListener for Handshake {
    fn on_progress(&self, _progress: SyncProgress) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(reached) = self.reached.lock().unwrap().take() {
            let _ = reached.send(());
            let release = self.release.lock().unwrap();
            if release.recv_timeout(Duration::from_secs(20)).is_err() {
                self.timed_out.store(true, Ordering::SeqCst);
            }
        }
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn log(&self, _level: LogLevel, target: String, line: String) {
        self.0.lock().unwrap().push(format!("{target}: {line}"));
    }
}

#[test]
fn ui_reads_and_writes_while_a_sync_runs_on_another_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), 400);
    let lines = Arc::new(Lines::default());
    doorstep_ffi::set_log_sink(lines.clone());

    // Encrypted, like a phone's: the sync's second handle opens the file with the same key.
    let phone = FieldStore::open(
        dir.path().join("phone.db").display().to_string(),
        Some(vec![0x5a; 32]),
    )
    .expect("open");
    let enrolment = phone
        .enrol(
            srv.url.clone(),
            srv.code.clone(),
            "test phone".into(),
            None,
            None,
        )
        .expect("enrol");
    assert_eq!(enrolment.officer_id, srv.officer.to_string());
    let officer = enrolment.officer_id.clone();
    let day = phone.today();
    assert!(phone
        .my_households(officer.clone(), day.clone())
        .expect("empty list")
        .is_empty());

    let (reached_tx, reached_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let handshake = Arc::new(Handshake {
        reached: Mutex::new(Some(reached_tx)),
        release: Mutex::new(release_rx),
        timed_out: AtomicBool::new(false),
        calls: AtomicU64::new(0),
    });
    let syncing = {
        let phone = phone.clone();
        let (url, token) = (srv.url.clone(), enrolment.token.clone());
        let listener: Arc<dyn SyncListener> = handshake.clone();
        std::thread::spawn(move || phone.sync(url, token, Some(listener), None, None))
    };

    // The sync has applied its first page and is waiting for us: read (and write) meanwhile.
    reached_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sync reached its first progress callback");
    let mid = phone
        .my_households(officer.clone(), day.clone())
        .expect("a read while the sync runs");
    assert!(
        !mid.is_empty() && mid.len() < 400,
        "the UI sees the first page applied, not the whole area yet ({})",
        mid.len()
    );
    let visit = phone
        .record_visit(NewVisit {
            household_id: mid[0].id.clone(),
            officer_id: officer.clone(),
            outcome: VisitOutcome::Met,
            at_ms: None,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .expect("a write while the sync runs");
    release_tx.send(()).expect("release the sync");
    let mut reads = 1;
    while !syncing.is_finished() {
        phone
            .my_households(officer.clone(), day.clone())
            .expect("reads keep working");
        reads += 1;
    }
    let report = syncing.join().expect("sync thread").expect("sync");
    assert!(!handshake.timed_out.load(Ordering::SeqCst));
    assert!(handshake.calls.load(Ordering::SeqCst) >= 2);
    assert!(reads >= 1);
    assert!(report.pulled >= 400 * 4, "pulled {}", report.pulled);
    // The visit written during the sync went up with it (it was written before the push).
    assert_eq!(report.pushed, 1);
    assert!(report.refused.is_empty());

    let all = phone
        .my_households(officer.clone(), day.clone())
        .expect("after");
    assert_eq!(all.len(), 400);
    assert_eq!(all.iter().filter(|h| h.visited_today).count(), 1);
    assert!(!visit.is_empty());

    // Sync again: nothing new either way, and the log saw counts only.
    let again = phone
        .sync(srv.url.clone(), enrolment.token.clone(), None, None, None)
        .expect("second sync");
    assert_eq!((again.pushed, again.pulled), (0, 0));
    let log = lines.0.lock().unwrap().join("\n");
    assert!(log.contains("sync finished: pushed 1,"), "{log}");
    assert!(
        !log.contains(&enrolment.token),
        "the token never reaches the log"
    );
    assert!(!log.contains("Nguyễn"), "no names in the log");

    // A revoked or unknown token is an action for the app: enrol again.
    match phone.sync(srv.url.clone(), "not-a-token".into(), None, None, None) {
        Err(DoorstepError::ReEnrol { .. }) => {}
        other => panic!("expected ReEnrol, got {other:?}"),
    }
    doorstep_ffi::clear_log_sink();
}

#[test]
fn errors_name_the_field_and_never_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        FieldStore::open(dir.path().join("s.db").display().to_string(), None).expect("open");
    match store.edit_resident_phone("nope".into(), Some("0912345678".into())) {
        Err(DoorstepError::InvalidInput { field, .. }) => assert_eq!(field, "resident_id"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    match store.edit_resident_phone(Uuid::now_v7().to_string(), Some("0912345678".into())) {
        Err(DoorstepError::NotFound { field, kind }) => {
            assert_eq!((field.as_str(), kind.as_str()), ("resident_id", "resident"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match store.my_households(Uuid::now_v7().to_string(), "15/09/2023".into()) {
        Err(e @ DoorstepError::InvalidInput { .. }) => {
            assert!(e.to_string().contains("YYYY-MM-DD"), "{e}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// The app's HTTP client, for the test: the library's own underneath, every request recorded
/// (URL path and header names), and the first `fail_first` attempts failed as a dropped link
/// would, or every one refused as an untrusted certificate.
struct AppHttp {
    inner: doorstep_core::transport::builtin::Ureq,
    seen: Mutex<Vec<(String, Vec<String>)>>,
    fail_first: AtomicU64,
    untrusted: bool,
}

impl AppHttp {
    fn new(fail_first: u64, untrusted: bool) -> Arc<Self> {
        Arc::new(AppHttp {
            inner: doorstep_core::transport::builtin::Ureq::new(None).expect("client"),
            seen: Mutex::new(Vec::new()),
            fail_first: AtomicU64::new(fail_first),
            untrusted,
        })
    }
}

impl HttpTransport for AppHttp {
    fn post(
        &self,
        url: String,
        headers: Vec<HttpHeader>,
        body: Vec<u8>,
        timeout_ms: i64,
    ) -> Result<HttpAnswer, HttpFailure> {
        use doorstep_core::transport::{HttpRequest, HttpTransport as _, TransportError};
        let path = url.split_once("/v1/").map(|(_, p)| p.to_owned());
        self.seen.lock().unwrap().push((
            path.unwrap_or_default(),
            headers.iter().map(|h| h.name.clone()).collect(),
        ));
        if self.untrusted {
            return Err(HttpFailure::Untrusted {
                detail: "pin verification failed".into(),
            });
        }
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(HttpFailure::Failed {
                detail: "connection reset".into(),
            });
        }
        assert!(timeout_ms > 0 && timeout_ms <= 30_000, "{timeout_ms}");
        let answer = self
            .inner
            .post(HttpRequest {
                url,
                headers: headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body,
                timeout: Duration::from_millis(timeout_ms as u64),
            })
            .map_err(|e| match e {
                TransportError::Untrusted(detail) => HttpFailure::Untrusted { detail },
                TransportError::Failed(detail) => HttpFailure::Failed { detail },
            })?;
        Ok(HttpAnswer {
            status: i32::from(answer.status),
            headers: answer
                .headers
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
            body: answer.body,
        })
    }
}

#[test]
fn the_apps_own_http_client_carries_enrolment_and_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), 20);
    let phone =
        FieldStore::open(dir.path().join("phone.db").display().to_string(), None).expect("open");
    // Two dropped attempts first: the library retries them (its attempts, its backoff).
    let http = AppHttp::new(2, false);
    phone.use_http_transport(Some(http.clone()));
    let enrolment = phone
        .enrol(
            srv.url.clone(),
            srv.code.clone(),
            "phone".into(),
            None,
            None,
        )
        .expect("enrol through the app's client");
    let report = phone
        .sync(srv.url.clone(), enrolment.token.clone(), None, None, None)
        .expect("sync through the app's client");
    assert!(report.pulled >= 20 * 4, "pulled {}", report.pulled);
    let seen = http.seen.lock().unwrap().clone();
    // Every request went through it: the two failed, the enrolment, the sync's.
    assert_eq!(seen.len() as i32, 2 + 1 + report.requests, "{seen:?}");
    assert_eq!(seen[0].0, "enrol");
    assert_eq!(seen[2].0, "enrol");
    for (path, names) in &seen {
        for h in ["content-type", "content-encoding", "accept-encoding"] {
            assert!(names.iter().any(|n| n == h), "{path}: {names:?}");
        }
        // The token goes to the sync's requests, never to the enrolment's.
        assert_eq!(names.iter().any(|n| n == "authorization"), path != "enrol");
    }

    // A pin the platform refuses stops the sync at once, typed, without retries.
    let refusing = AppHttp::new(0, true);
    phone.use_http_transport(Some(refusing.clone()));
    match phone.sync(srv.url.clone(), enrolment.token.clone(), None, None, None) {
        Err(DoorstepError::UntrustedServer { detail }) => {
            assert!(detail.contains("pin verification failed"), "{detail}")
        }
        other => panic!("expected UntrustedServer, got {other:?}"),
    }
    assert_eq!(refusing.seen.lock().unwrap().len(), 1);

    // With the app's client, trust is the app's: a CA given to the library is an input error.
    match phone.sync(
        srv.url.clone(),
        enrolment.token.clone(),
        None,
        Some("-----BEGIN CERTIFICATE-----".into()),
        None,
    ) {
        Err(DoorstepError::InvalidInput { field, .. }) => assert_eq!(field, "trusted_ca_pem"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }

    // Back to the library's own client: the same store syncs on.
    phone.use_http_transport(None);
    let again = phone
        .sync(srv.url.clone(), enrolment.token, None, None, None)
        .expect("sync through the library's client");
    assert_eq!((again.pushed, again.pulled), (0, 0));
}
