//! The fuzz corpus replayed on stable (docs/fuzzing.md): every file of `fuzz/corpus/<target>/`
//! through the same entry point the fuzz target calls (`doorstep_server::fuzz`), which panics
//! on a bug (a panic in a decoder or a check, an untyped error, a message echoing an ID or
//! phone number). The crashes the fuzzer found stay in the corpus as regressions.
//!
//! The hand-made seeds are built here from the types; after a deliberate change of a wire type
//! run `DOORSTEP_BLESS=1 cargo test -p doorstep-server --test fuzz_corpus` to rewrite them.

use doorstep_core::wire::{EnrolRequest, PullRequest, PullResponse, PushRequest};
use doorstep_core::{Entity, Field, Hlc, Key, Op, OpBody, ReplicaId, Value, Visit, VisitOutcome};
use doorstep_server::cursor::{Backfill, Cursor};
use doorstep_server::fuzz::TARGETS;
use doorstep_server::generation::Generation;
use std::path::{Path, PathBuf};
use uuid::Uuid;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus())
        .expect("fuzz/corpus")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(dirs, names, "one corpus directory per fuzz target");
    let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for (name, run) in TARGETS {
        assert!(
            targets_dir.join(format!("{name}.rs")).is_file(),
            "fuzz/fuzz_targets/{name}.rs"
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 4, "{name}: a handful of seeds at least");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name} panics on {}", file.display());
        }
    }
}

#[test]
fn the_seeds_are_committed() {
    let bless = std::env::var_os("DOORSTEP_BLESS").is_some();
    for (target, name, bytes) in seeds() {
        assert!(TARGETS.iter().any(|(t, _)| *t == target), "{target}");
        let path = corpus().join(target).join(format!("seed-{name}"));
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} differs from the types; rerun with DOORSTEP_BLESS=1",
            path.display()
        );
    }
}

fn example_ops() -> Vec<Op> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/ops.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Operations of the right shape whose values the server refuses (issue #12's examples).
fn bad_value_ops() -> Vec<Op> {
    let op = |counter, body| Op {
        replica: ReplicaId(Uuid::from_u128(7)),
        counter,
        hlc: Hlc::new(1_688_954_400_000, 0),
        body,
    };
    let resident = |field, value| OpBody::Set {
        entity: Entity::Resident,
        key: Key::Uuid(Uuid::from_u128(0x5001)),
        fields: vec![(field, value)],
    };
    vec![
        op(
            1,
            resident(Field::FullName, Value::Text("A".repeat(20_000))),
        ),
        op(2, resident(Field::BirthDate, "not-a-date".into())),
        op(3, resident(Field::Phone, "abc".into())),
        op(4, resident(Field::IdNumber, "079201001234 ".into())),
        op(
            5,
            OpBody::Visit(Visit {
                id: Uuid::from_u128(0x7001),
                household_id: Uuid::from_u128(0x4001),
                officer_id: Uuid::from_u128(0x0F00),
                at_ms: 1_500_000_000_000,
                outcome: VisitOutcome::Met,
                revisit_at_ms: None,
                note: None,
                location: None,
            }),
        ),
    ]
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn pc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

/// (target, seed name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let push = PushRequest {
        protocol: 2,
        device_time_ms: 1_688_954_400_000,
        ops: example_ops(),
        segments: Vec::new(),
    };
    let bad_push = PushRequest {
        ops: bad_value_ops(),
        ..push.clone()
    };
    let cursor = Cursor {
        seq: 42,
        areas: vec!["22738-01".into(), "22738-02".into()],
        backfill: Some(Backfill {
            area: "22741-01".into(),
            after: 7,
        }),
        gens: vec![Generation {
            id: 0x5eed,
            base: 40,
        }],
    };
    let pull = PullRequest {
        protocol: 2,
        device_time_ms: 1_688_954_400_000,
        cursor: Some(cursor.encode()),
        limit: 500,
        own: 0,
        relaying: Vec::new(),
    };
    let answer = PullResponse {
        ops: example_ops(),
        cursor: cursor.encode(),
        has_more: true,
        server_time_ms: 1_688_954_400_000,
        held: 12,
        held_others: Vec::new(),
        lease_until_ms: 1_690_000_000_000,
        dropped: Vec::new(),
        dropped_households: Vec::new(),
        dropped_residents: Vec::new(),
    };
    let enrol = EnrolRequest {
        protocol: 2,
        code: "7KQ2M-9XW4D".into(),
        device_name: "Pixel 7".into(),
        replica: Uuid::from_u128(0xD0),
        device_time_ms: 1_688_954_400_000,
        public_key: None,
    };
    let outcome_phone = String::from_utf8(json(&push))
        .unwrap()
        .replace("\"ComeBack\"", "\"0912345678\"");
    let truncated = |mut v: Vec<u8>| {
        v.truncate(v.len() / 2);
        v
    };
    let roster = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/roster/small.csv"),
    )
    .unwrap();
    let named: Vec<(&'static str, &str, Vec<u8>)> = vec![
        ("push_json", "examples.json", json(&push)),
        ("push_json", "bad-values.json", json(&bad_push)),
        (
            "push_json",
            "phone-as-variant.json",
            outcome_phone.into_bytes(),
        ),
        (
            "push_json",
            "name-as-time.json",
            br#"{"protocol": 2, "device_time_ms": "Nguyen Van An", "ops": []}"#.to_vec(),
        ),
        (
            "push_json",
            "protocol-99.json",
            br#"{"protocol": 99, "device_time_ms": 0, "ops": []}"#.to_vec(),
        ),
        ("push_json", "truncated.json", truncated(json(&push))),
        ("push_postcard", "examples", pc(&push)),
        ("push_postcard", "bad-values", pc(&bad_push)),
        ("push_postcard", "truncated", truncated(pc(&push))),
        ("push_postcard", "protocol-99", vec![99, 0, 0]),
        ("push_postcard", "trailing", [pc(&push), vec![0]].concat()),
        ("pull_json", "request.json", json(&pull)),
        (
            "pull_json",
            "first-request.json",
            json(&PullRequest {
                cursor: None,
                ..pull.clone()
            }),
        ),
        ("pull_json", "answer.json", json(&answer)),
        (
            "pull_json",
            "bad-cursor.json",
            br#"{"protocol": 2, "device_time_ms": 0, "cursor": "079201001234", "limit": 10, "own": 0, "relaying": []}"#
                .to_vec(),
        ),
        ("pull_postcard", "request", pc(&pull)),
        ("pull_postcard", "answer", pc(&answer)),
        ("pull_postcard", "truncated-answer", truncated(pc(&answer))),
        ("pull_postcard", "empty", Vec::new()),
        ("cursor", "start", Cursor::default().encode().into_bytes()),
        ("cursor", "backfill", cursor.encode().into_bytes()),
        ("cursor", "not-base64", b"079201001234%".to_vec()),
        ("cursor", "base64-garbage", b"AAAA__--".to_vec()),
        ("roster", "small.csv", roster),
        (
            "roster",
            "header-only.csv",
            b"household_code,village_code,full_name,birth_date\n".to_vec(),
        ),
        (
            "roster",
            "no-header.csv",
            "H1,22738-01,Nguyễn Văn An,1975,nam,058075001234\n"
                .as_bytes()
                .to_vec(),
        ),
        (
            "roster",
            "semicolons.csv",
            b"household_code;village_code;full_name;birth_date\nH1;22738-01;An;1975\n".to_vec(),
        ),
        ("enrol", "request.json", json(&enrol)),
        ("enrol", "request", pc(&enrol)),
        ("enrol", "code", b"7kq2m 9xw4d".to_vec()),
        (
            "enrol",
            "long-name.json",
            json(&EnrolRequest {
                device_name: "x".repeat(500),
                ..enrol.clone()
            }),
        ),
    ];
    let mut seeds: Vec<(&'static str, String, Vec<u8>)> = named
        .into_iter()
        .map(|(target, name, bytes)| (target, name.to_owned(), bytes))
        .collect();
    for (i, op) in example_ops().iter().chain(&bad_value_ops()).enumerate() {
        seeds.push(("op_check", format!("op-{i}"), op.encode()));
    }
    seeds
}
