//! The encrypted store (issue #13, ADR 0008): no known value in any byte of the store's files,
//! a wrong key is a typed error, a plain store is encrypted in place crash-safely (a child
//! process killed at random points), and the key can be changed.

mod common;

use doorstep_core::{
    Durability, Error, NewVisit, Options, ResidentEdit, ResidentInput, RosterStatus, Store,
    StoreKey, VisitOutcome,
};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use uuid::Uuid;

const KEY: [u8; 32] = [7; 32];
const OTHER_KEY: [u8; 32] = [9; 32];

fn key() -> StoreKey {
    StoreKey::new(KEY)
}

/// Known values: (full name, ID number, phone) of resident `i`, each unique and searchable.
fn known(i: usize) -> (String, String, String) {
    (
        format!("Nguyễn Thị Bích Ngọc Số{i:05}"),
        format!("058085{i:06}"),
        format!("0912{i:06}"),
    )
}

fn put_known(store: &mut Store, w: &common::World, range: std::ops::Range<usize>) {
    put_known_in(store, &w.households, range)
}

fn put_known_in(store: &mut Store, households: &[Uuid], range: std::ops::Range<usize>) {
    for i in range {
        let (name, id_number, phone) = known(i);
        store
            .put_resident(ResidentInput {
                id: Uuid::from_u128(0x9000_0000 + i as u128),
                household_id: households[i % households.len()],
                full_name: name,
                birth_date: "1985-04-02".into(),
                gender: None,
                id_number: Some(id_number),
                phone: Some(phone),
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .expect("put resident");
    }
}

/// Every file in `dir` (the store, -wal, -shm, journals, temp files), with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The longest run of ASCII digits in `bytes`.
fn longest_digit_run(bytes: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in bytes {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// No byte sequence of any known value, nor SQLite's plain header or the schema's SQL, in any
/// file of `dir`. Every known ID and phone number is 10 or 12 ASCII digits, so each holds a run
/// of 9 digits: no file may hold one (in encrypted bytes such a run has odds of about 10^-13
/// a position), which covers them all at once; names and other text are searched as such.
fn assert_nothing_readable(dir: &Path) {
    let files = files(dir);
    assert!(files
        .iter()
        .any(|(p, _)| p.to_string_lossy().ends_with("store.db")));
    for (path, bytes) in &files {
        let run = longest_digit_run(bytes);
        assert!(
            run < 9,
            "{} holds {run} ASCII digits in a row: an ID or phone number in clear",
            path.display()
        );
        let needles: [&[u8]; 6] = [
            b"SQLite format 3",
            b"CREATE TABLE",
            "Bích Ngọc".as_bytes(),
            b"bich ngoc",
            "Đô Vinh".as_bytes(),
            "Nguyễn".as_bytes(),
        ];
        for needle in needles {
            assert!(
                !contains(bytes, needle),
                "{} holds {:?} in clear",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

fn count_known(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM residents WHERE full_name LIKE 'Nguyễn Thị Bích Ngọc%'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn no_known_value_in_any_file_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    let mut store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert!(store.is_encrypted());
    let w = common::populate(&mut store);
    put_known(&mut store, &w, 0..200);
    // Into the main file, then more writes that stay in the WAL.
    store
        .connection()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    put_known(&mut store, &w, 200..300);
    for i in 0..50 {
        store
            .edit_resident(
                Uuid::from_u128(0x9000_0000 + i as u128),
                ResidentEdit {
                    phone: Some(Some(known(i + 1000).2)),
                    note: None,
                },
            )
            .unwrap();
    }
    store
        .record_visit(NewVisit {
            household_id: w.households[0],
            officer_id: w.officer,
            at_ms: None,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: Some("Bích Ngọc đã có tài khoản".into()),
            location: None,
        })
        .unwrap();
    // A reader beside the writer, with a search that sorts (temp b-trees stay in memory).
    let reader = Store::open_reader_encrypted(&path, &key()).unwrap();
    assert_eq!(count_known(&reader), 300);
    let _: Vec<String> = reader
        .prepare("SELECT full_name FROM residents ORDER BY name_folded DESC, phone")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let wal = dir.path().join("store.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the WAL holds the last writes"
    );
    assert_nothing_readable(dir.path());
    drop(reader);
    drop(store);
    assert_nothing_readable(dir.path());

    let store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert_eq!(count_known(store.connection()), 300);
}

/// The check above is not vacuous: a plain store fails it.
#[test]
#[should_panic(expected = "in clear")]
fn the_check_finds_values_in_a_plain_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let mut store = Store::open(dir.path().join("store.db"), common::options(&clock)).unwrap();
    let w = common::populate(&mut store);
    put_known(&mut store, &w, 0..20);
    assert_nothing_readable(dir.path());
}

#[test]
fn a_wrong_or_missing_key_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    {
        let mut store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
        common::populate(&mut store);
    }
    let before = std::fs::read(&path).unwrap();
    let wrong = StoreKey::new(OTHER_KEY);
    assert!(matches!(
        Store::open_encrypted(&path, &wrong, common::options(&clock)),
        Err(Error::WrongKey { field: "key" })
    ));
    assert!(matches!(
        Store::open(&path, common::options(&clock)),
        Err(Error::WrongKey { field: "key" })
    ));
    assert!(matches!(
        Store::open_reader_encrypted(&path, &wrong),
        Err(Error::WrongKey { .. })
    ));
    assert!(matches!(
        Store::open_reader(&path),
        Err(Error::WrongKey { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing changed");
    assert!(matches!(
        StoreKey::from_bytes(&[1; 16]),
        Err(Error::Invalid { field: "key", .. })
    ));
    // Still opens with the right key.
    let store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert_eq!(
        store
            .connection()
            .query_row("SELECT count(*) FROM residents", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        6
    );
}

#[test]
fn a_key_never_shows_in_debug() {
    let k = StoreKey::new([0xAB; 32]);
    let shown = format!("{k:?}");
    assert_eq!(shown, "StoreKey(..)");
    assert!(!shown.contains("ab") && !shown.contains("171"));
}

#[test]
fn a_plain_store_is_encrypted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    let (replica, dump) = {
        let mut store = Store::open(&path, common::options(&clock)).unwrap();
        let w = common::populate(&mut store);
        put_known(&mut store, &w, 0..100);
        (store.replica_id(), store.canonical_dump().unwrap())
    };
    // A reader-less, writer-less plain store with a WAL left by a killed app: leave one.
    let store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert_eq!(store.replica_id(), replica);
    assert_eq!(store.canonical_dump().unwrap(), dump);
    drop(store);
    assert_nothing_readable(dir.path());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store.db"], "no copy or old log left");
    assert!(matches!(
        Store::open(&path, common::options(&clock)),
        Err(Error::WrongKey { .. })
    ));
}

#[test]
fn the_key_can_be_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    let new_key = StoreKey::new(OTHER_KEY);
    let dump = {
        let mut store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
        let w = common::populate(&mut store);
        put_known(&mut store, &w, 0..50);
        store.rekey(&new_key).unwrap();
        // Writes go on under the new key.
        put_known(&mut store, &w, 50..60);
        store.canonical_dump().unwrap()
    };
    assert!(matches!(
        Store::open_encrypted(&path, &key(), common::options(&clock)),
        Err(Error::WrongKey { .. })
    ));
    let store = Store::open_encrypted(&path, &new_key, common::options(&clock)).unwrap();
    assert_eq!(store.canonical_dump().unwrap(), dump);
    assert_eq!(count_known(store.connection()), 60);
    drop(store);
    assert_nothing_readable(dir.path());

    // A plain store has no key to change.
    let plain = dir.path().join("plain.db");
    let mut store = Store::open(&plain, common::options(&clock)).unwrap();
    assert!(matches!(
        store.rekey(&new_key),
        Err(Error::Invalid { field: "key", .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Killed while encrypting in place
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "DOORSTEP_ENCRYPT_CHILD";
const N_TEMPLATE: usize = 3_000;

/// Not a test of its own: the child process, which encrypts the store named by
/// `DOORSTEP_ENCRYPT_CHILD` in place and says `DONE` (it is killed before, mostly).
#[test]
fn child_process_entry() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    println!("START");
    let clock = common::clock();
    let store = Store::open_encrypted(&db, &key(), common::options(&clock)).expect("encrypt");
    drop(store);
    println!("DONE");
}

/// A plain store with `N_TEMPLATE` known residents and a non-empty WAL.
fn plain_template(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("template.db");
    let clock = common::clock();
    let mut store = Store::open(
        &path,
        Options {
            durability: Durability::Normal,
            ..common::options(&clock)
        },
    )
    .unwrap();
    let w = common::populate(&mut store);
    put_known(&mut store, &w, 0..N_TEMPLATE);
    (path, store.canonical_dump().unwrap())
}

/// Copy the template (its db and WAL, as a killed app leaves them) to `to`.
fn copy_store(from: &Path, to: &Path) {
    for f in std::fs::read_dir(to.parent().unwrap()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("store.db")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::copy(from, to).unwrap();
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).unwrap();
    }
}

#[test]
fn encrypting_in_place_survives_a_kill_at_any_point() {
    let tmpl_dir = tempfile::tempdir().unwrap();
    let (template, dump) = plain_template(tmpl_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();

    // How long an undisturbed encryption takes here, to spread the kills over it.
    copy_store(&template, &path);
    let t = Instant::now();
    Store::encrypt_in_place(&path, &key()).unwrap();
    let took = t.elapsed();
    let seed: u64 = rand::random();
    eprintln!("encrypting {N_TEMPLATE} residents took {took:?}; seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let (mut plain, mut encrypted) = (0, 0);
    for round in 0..24 {
        copy_store(&template, &path);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("START") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "child said nothing");
        }
        // From right away to a little after it should have finished.
        let wait = took.mul_f64(rng.gen_range(0.0..1.3));
        std::thread::sleep(wait);
        let _ = child.kill();
        child.wait().unwrap();
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);

        // Either the old store or the new one, whole.
        let store = match Store::open(&path, common::options(&clock)) {
            Ok(s) => {
                plain += 1;
                s
            }
            Err(Error::WrongKey { .. }) => {
                encrypted += 1;
                Store::open_encrypted(&path, &key(), common::options(&clock))
                    .unwrap_or_else(|e| panic!("round {round}: neither store opens: {e}"))
            }
            Err(e) => panic!("round {round} (after {wait:?}): the store does not open: {e}"),
        };
        assert_eq!(store.canonical_dump().unwrap(), dump, "round {round}");
        drop(store);
        // And encrypting again (or opening the encrypted one) finishes the job.
        let store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
        assert_eq!(
            store.canonical_dump().unwrap(),
            dump,
            "round {round}, reopened"
        );
        let integrity: String = store
            .connection()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }
    eprintln!("{plain} kills left the plain store, {encrypted} the encrypted one");
}

/// A store written by SQLCipher 4.20 (OpenSSL), the library the core was built on before
/// SQLite3 Multiple Ciphers (ADR 0008): phones' existing files open with the same key, unchanged
/// in format, and take writes. The fixture was made by the previous build with this file's
/// `KEY`, `common::populate` and 40 residents of `known(0..40)`.
#[test]
fn a_store_sqlcipher_wrote_opens_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/store-written-by-sqlcipher-4.20.bin"
        ),
        &path,
    )
    .unwrap();
    assert!(matches!(
        Store::open_encrypted(
            &path,
            &StoreKey::new(OTHER_KEY),
            common::options(&common::clock())
        ),
        Err(Error::WrongKey { .. })
    ));
    let clock = common::clock();
    let mut store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert_eq!(count_known(store.connection()), 40);
    let phone: String = store
        .connection()
        .query_row(
            "SELECT phone FROM residents WHERE id_number = '058085000007'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(phone, "0912000007");
    let households: Vec<Uuid> = store
        .connection()
        .prepare("SELECT id FROM households LIMIT 1")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|id| Uuid::parse_str(&id.unwrap()).unwrap())
        .collect();
    put_known_in(&mut store, &households, 40..60);
    drop(store);
    assert_nothing_readable(dir.path());
    // Written to, it keeps SQLCipher's scheme (SQLCipher itself could still open it)...
    assert_eq!(cipher_of(&path, &key()), "sqlcipher");
    let mut store = Store::open_encrypted(&path, &key(), common::options(&clock)).unwrap();
    assert_eq!(count_known(store.connection()), 60);
    // ...until its key changes: every page is rewritten in AEGIS, like a new store's.
    store.rekey(&StoreKey::new(OTHER_KEY)).unwrap();
    drop(store);
    assert_eq!(cipher_of(&path, &StoreKey::new(OTHER_KEY)), "aegis");
    assert_nothing_readable(dir.path());
    let store =
        Store::open_encrypted(&path, &StoreKey::new(OTHER_KEY), common::options(&clock)).unwrap();
    assert_eq!(count_known(store.connection()), 60);
    drop(store);
    let fresh = dir.path().join("fresh.db");
    drop(Store::open_encrypted(&fresh, &key(), common::options(&clock)).unwrap());
    assert_eq!(cipher_of(&fresh, &key()), "aegis");
}

/// Which cipher opens the file at `path` with `key`, tried alone on a connection of its own:
/// "aegis" (the stores written since ADR 0008 was revisited again), "sqlcipher" (SQLCipher
/// 4's scheme), or "neither".
fn cipher_of(path: &std::path::Path, key: &StoreKey) -> &'static str {
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    for cipher in ["aegis", "sqlcipher"] {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA cipher = '{cipher}'; PRAGMA key = \"x'{hex}'\";"
        ))
        .unwrap();
        if conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok()
        {
            return cipher;
        }
    }
    "neither"
}
