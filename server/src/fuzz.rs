//! Fuzz entry points (feature `test-utils`): what `fuzz/fuzz_targets/*.rs` call with the
//! fuzzer's bytes, and what `tests/fuzz_corpus.rs` calls with every file of the committed
//! corpus (`fuzz/corpus/<target>/`), so that a short replay runs in the normal test suite on
//! stable (`docs/fuzzing.md`).
//!
//! Each entry takes any bytes and panics only on a bug: a decoder or a check that panics, an
//! error that is not the typed one the caller expects, a message that echoes a long run of
//! digits of the input (an ID or phone number), or a value that does not survive its own
//! encoding.

use crate::backend::Enrolment;
use crate::cursor::Cursor;
use crate::error::ServerError;
use crate::web::body;
use crate::SqliteBackend;
use doorstep_core::wire::{EnrolRequest, PullRequest, PullResponse, PushRequest};
use doorstep_core::{CampaignInput, Error, OfficerInput, Op, OpBody, Options, Role, Store, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::OnceLock;
use uuid::Uuid;

/// A fuzz entry point: any bytes in, a panic only on a bug.
pub type Entry = fn(&[u8]);

/// The units the roster and enrolment targets' stores hold (a province down to two villages).
const UNITS: &str = "code,parent_code,level,kind,name\n58,,province,tỉnh,Ninh Thuận\n\
    582,58,district,thành phố,Phan Rang - Tháp Chàm\n\
    22738,582,commune,phường,Đô Vinh\n22738-01,22738,village,khu phố,Khu phố 1\n\
    22738-02,22738,village,khu phố,Khu phố 2\n";

/// Every target: its name (the directory of its corpus and of `fuzz/fuzz_targets/<name>.rs`)
/// and its entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("push_json", push_json),
    ("push_postcard", push_postcard),
    ("pull_json", pull_json),
    ("pull_postcard", pull_postcard),
    ("cursor", cursor),
    ("roster", roster),
    ("enrol", enrol),
    ("op_check", op_check),
    ("exchange", exchange),
];

/// A push body in JSON, as the server decodes it; its operations through the server's checks.
pub fn push_json(data: &[u8]) {
    if let Some(req) = request::<PushRequest>(data, Format::Json) {
        req.ops.iter().for_each(check_op);
    }
}

/// A push body in postcard, as the server decodes it; its operations through the checks.
pub fn push_postcard(data: &[u8]) {
    if let Some(req) = request::<PushRequest>(data, Format::Postcard) {
        req.ops.iter().for_each(check_op);
    }
}

/// A pull request as the server decodes it (and its cursor), and a pull answer as the core's
/// client reads it, in JSON, its operations merged into a fresh store.
pub fn pull_json(data: &[u8]) {
    if let Some(req) = request::<PullRequest>(data, Format::Json) {
        let _ = Cursor::decode(req.cursor.as_deref());
    }
    if let Ok(answer) = serde_json::from_slice::<PullResponse>(data) {
        apply_answer(&answer);
    }
}

/// [`pull_json`] in postcard (the client reads answers with `postcard::from_bytes`).
pub fn pull_postcard(data: &[u8]) {
    if let Some(req) = request::<PullRequest>(data, Format::Postcard) {
        let _ = Cursor::decode(req.cursor.as_deref());
    }
    if let Ok(answer) = postcard::from_bytes::<PullResponse>(data) {
        let again = postcard::to_allocvec(&answer).expect("encode");
        assert_eq!(
            postcard::from_bytes::<PullResponse>(&again).ok(),
            Some(answer.clone())
        );
        apply_answer(&answer);
    }
}

/// A pull cursor as a device sends it back: refused as a bad request, or read and re-encoded
/// to the same cursor.
pub fn cursor(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Cursor::decode(Some(&text)) {
        Ok(c) => assert_eq!(Cursor::decode(Some(&c.encode())).ok(), Some(c)),
        Err(ServerError::BadRequest(m)) => assert_no_digit_leak(&m, data),
        Err(other) => panic!("cursor: unexpected error kind {other:?}"),
    }
}

/// A roster CSV imported into a store that holds its units and campaign: refused whole as a
/// CSV error, or imported row by row; every operation the import made passes
/// [`Op::check_values`] (the core makes only operations the server accepts).
pub fn roster(data: &[u8]) {
    let campaign = Uuid::from_u128(0xCA00);
    let mut store = Store::open_in_memory(Options::default()).expect("store");
    store.import_units_csv(UNITS.as_bytes()).expect("units");
    store
        .put_campaign(CampaignInput {
            id: campaign,
            name: "80 ngày đêm".into(),
            start_date: chrono::NaiveDate::from_ymd_opt(2023, 6, 27).expect("date"),
            end_date: chrono::NaiveDate::from_ymd_opt(2023, 9, 15).expect("date"),
            target: 1000,
            unit_code: "58".into(),
        })
        .expect("campaign");
    let before = store.own_counter();
    match store.import_roster(campaign, data, &mut |_| {}) {
        Ok(report) => {
            assert_eq!(report.accepted + report.rejected.len(), report.rows);
            for r in &report.rejected {
                assert_no_digit_leak(&r.reason, data);
            }
        }
        Err(Error::Csv(m)) => assert_no_digit_leak(&m, data),
        Err(other) => panic!("roster: unexpected error kind {other:?}"),
    }
    for op in store.own_ops_after(before, usize::MAX).expect("log") {
        if let Err(e) = op.check_values() {
            panic!("the roster import made an operation check_values refuses: {e}");
        }
    }
}

/// An enrolment request (JSON, else postcard, else the bytes as a typed code) against a server
/// that has issued one code: refused with a typed error that echoes no digits of the input.
pub fn enrol(data: &[u8]) {
    let req = request::<EnrolRequest>(data, Format::Json)
        .or_else(|| request::<EnrolRequest>(data, Format::Postcard))
        .unwrap_or_else(|| EnrolRequest {
            protocol: 2,
            code: String::from_utf8_lossy(data).into_owned(),
            device_name: "Pixel 7".into(),
            replica: Uuid::from_u128(0xD0),
            device_time_ms: 1_688_954_400_000,
            public_key: None,
        });
    let normal = crate::auth::normalize_code(&req.code);
    assert_eq!(crate::auth::normalize_code(&normal), normal);
    let result = enrol_backend().enrol(
        Enrolment {
            code: req.code.clone(),
            device_name: req.device_name,
            replica: req.replica,
            device_time_ms: req.device_time_ms,
            public_key: req.public_key,
        },
        crate::now_ms(),
    );
    match result {
        Ok(_) => {} // the fuzzer guessed the code: enrolling is the right answer
        Err(
            e @ (ServerError::EnrolRefused(_)
            | ServerError::BadRequest(_)
            | ServerError::Forbidden(_)),
        ) => {
            let text = e.to_string();
            assert_no_digit_leak(&text, data);
        }
        Err(other) => panic!("enrol: unexpected error kind {other:?}"),
    }
}

/// Any operation (postcard, as in the log and on the wire) through [`Op::check_shape`] and
/// [`Op::check_values`], and its encoding's round trip.
pub fn op_check(data: &[u8]) {
    if let Ok(op) = Op::decode(data) {
        assert_eq!(Op::decode(&op.encode()).ok(), Some(op.clone()));
        check_op(&op);
    }
}

/// Messages of a phone↔phone exchange from a hostile peer (`doorstep_core::exchange`). The
/// first byte chooses where they arrive: even, as the peer's first messages; odd, after a
/// genuine peer's `Hello` and `Proof`, where only sealed `Runs` and `Done` are read. The rest
/// is frames, each a 2-byte big-endian length and that many bytes. Every message is read or
/// refused with a typed error naming a field; nothing is taken from a peer before its proof.
pub fn exchange(data: &[u8]) {
    use doorstep_core::exchange::Exchange;
    let Some((mode, mut rest)) = data.split_first() else {
        return;
    };
    let server = doorstep_core::sign::new_key();
    let enrolled = || {
        let mut s = Store::open_in_memory(Options::default()).expect("store");
        let public_key = s.public_key().expect("key");
        let c = doorstep_core::sign::certify(
            &server,
            doorstep_core::DeviceCertificate {
                replica: s.replica_id().0,
                officer_id: Uuid::new_v4(),
                device_id: Uuid::new_v4(),
                public_key,
                issued_at_ms: 0,
                signature: Vec::new(),
            },
        );
        s.set_enrolment_keys(&server.verifying_key().to_bytes(), Some(&c))
            .expect("enrol");
        s
    };
    let mut store = enrolled();
    let mut x = Exchange::new(&store).expect("exchange");
    let hello = x.start(&store).expect("hello");
    if mode % 2 == 1 {
        // A genuine peer's Hello and Proof first.
        let mut peer = enrolled();
        let mut y = Exchange::new(&peer).expect("exchange");
        let their_hello = y.start(&peer).expect("hello");
        let their_proof = y.receive(&mut peer, &hello).expect("proof");
        x.receive(&mut store, &their_hello).expect("their hello");
        for m in their_proof {
            x.receive(&mut store, &m).expect("their proof");
        }
    }
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (frame, tail) = rest[2..].split_at(n);
        rest = tail;
        match x.receive(&mut store, frame) {
            Ok(_) => {}
            Err(Error::Invalid { .. } | Error::Decode(_)) => {}
            Err(other) => panic!("exchange: unexpected error kind {other:?}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Postcard,
}

/// Decode a request body as the server does: a typed value that survives its own encoding,
/// or a bad request / unsupported protocol whose message does not echo the input's digits.
fn request<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    data: &[u8],
    format: Format,
) -> Option<T> {
    let decoded = match format {
        Format::Json => body::json::<T>(data),
        Format::Postcard => body::postcard::<T>(data),
    };
    match decoded {
        Ok(value) => {
            let again = match format {
                Format::Json => body::json::<T>(&serde_json::to_vec(&value).expect("encode")),
                Format::Postcard => {
                    body::postcard::<T>(&postcard::to_allocvec(&value).expect("encode"))
                }
            };
            assert_eq!(again.ok().as_ref(), Some(&value), "no round trip");
            Some(value)
        }
        Err(ServerError::BadRequest(m)) => {
            assert_no_digit_leak(&m, data);
            None
        }
        Err(ServerError::UnsupportedProtocol(_)) => None,
        Err(other) => panic!("decode: unexpected error kind {other:?}"),
    }
}

/// The server's checks of one operation: a shape error, or a values error that names a field
/// and does not echo a long digit run of any text the operation carries.
fn check_op(op: &Op) {
    if op.check_shape().is_err() {
        return;
    }
    let Err(e) = op.check_values() else { return };
    assert!(
        e.invalid_field().is_some(),
        "check_values: {e:?} names no field"
    );
    let text = e.to_string();
    for value in texts(op) {
        assert_no_digit_leak(&text, value.as_bytes());
    }
}

/// The free texts an operation carries.
fn texts(op: &Op) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    match &op.body {
        OpBody::Set { key, fields, .. } => {
            if let doorstep_core::Key::Code(c) = key {
                out.push(c);
            }
            out.extend(fields.iter().filter_map(|(_, v)| match v {
                Value::Text(s) => Some(s.as_str()),
                _ => None,
            }));
        }
        OpBody::Visit(v) => out.extend(v.note.as_deref()),
        OpBody::Assist(a) => out.extend(
            a.note
                .as_deref()
                .into_iter()
                .chain(a.receiving_point.as_deref()),
        ),
        OpBody::Retract { reason, .. } => out.extend(reason.as_deref()),
        OpBody::Session(s) => out.extend(
            [s.unit_code.as_str(), &s.place]
                .into_iter()
                .chain(s.note.as_deref()),
        ),
        OpBody::Outreach(o) => out.extend(
            [o.unit_code.as_str(), &o.place]
                .into_iter()
                .chain(o.note.as_deref()),
        ),
        OpBody::Redact(r) => out.push(r.area.as_str()),
    }
    out
}

/// Panic if `message` contains a run of 9 or more digits of `input` (an ID or phone number).
fn assert_no_digit_leak(message: &str, input: &[u8]) {
    for run in input
        .split(|b| !b.is_ascii_digit())
        .filter(|r| r.len() >= 9)
    {
        for window in run.windows(9) {
            let window = std::str::from_utf8(window).unwrap_or_default();
            assert!(
                !message.contains(window),
                "the message echoes the input's digits"
            );
        }
    }
}

/// Merge a pull answer's operations into a fresh store, as the client does: applied, or
/// refused whole with a decode error (a shape the core cannot merge); never a panic.
fn apply_answer(answer: &PullResponse) {
    let mut store = Store::open_in_memory(Options::default()).expect("store");
    match store.apply_ops(&answer.ops) {
        Ok(_) | Err(Error::Decode(_)) => {}
        Err(other) => panic!("apply: unexpected error kind {other:?}"),
    }
}

/// A server with one officer and one enrolment code issued, shared by every run.
fn enrol_backend() -> &'static SqliteBackend {
    static BACKEND: OnceLock<SqliteBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let backend = SqliteBackend::open_in_memory().expect("backend");
        let officer = Uuid::from_u128(0x0F00);
        backend
            .with_store(|s| {
                s.import_units_csv(UNITS.as_bytes())?;
                s.put_officer(OfficerInput {
                    id: officer,
                    name: "Trần Văn Bình".into(),
                    role: Role::Field,
                    unit_code: "58".into(),
                })
            })
            .expect("store")
            .expect("officer");
        backend
            .issue_enrol_code(crate::backend::CLI_ACTOR, officer, 60, crate::now_ms())
            .expect("code");
        backend
    })
}
