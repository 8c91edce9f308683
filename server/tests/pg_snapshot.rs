//! A new PostgreSQL instance starts from the database's snapshot of a view instead of the whole
//! feed (#15, `server/src/pg/snapshot.rs`): it holds exactly what an instance rebuilt from the
//! feed holds, catches up what came after the snapshot, and writes under an identity of its
//! own. Needs the test cluster (`DOORSTEP_TEST_DATABASE_URL`; required under CI).

use doorstep_core::{HouseholdInput, ResidentInput, RosterStatus, Store};
use doorstep_server::backend::CLI_ACTOR;
use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::PgBackend;
use std::path::Path;
use uuid::Uuid;

const UNITS: &[u8] = b"code,parent_code,level,kind,name
58,,province,province,Ninh Thuan
582,58,district,city,Phan Rang
22738,582,commune,ward,Do Vinh
22738-01,22738,village,khu pho,Khu pho 1
";

fn open(url: &str, path: &Path, no_snapshot: bool) -> PgBackend {
    PgBackend::open(
        url,
        ViewOptions {
            path: Some(path.to_path_buf()),
            no_snapshot,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Households with a resident each, written at the console of `b`.
fn households(b: &PgBackend, from: u128, n: u128) {
    b.with_view_write(|s: &mut Store| {
        for i in from..from + n {
            let h = Uuid::from_u128(0x4000 + i);
            s.put_household(HouseholdInput {
                id: h,
                code: format!("HK{i:04}"),
                village_code: "22738-01".into(),
                address: Some(format!("{i} Lê Duẩn")),
                head_id: None,
            })
            .unwrap();
            s.put_resident(ResidentInput {
                id: Uuid::from_u128(0x5000 + i),
                household_id: h,
                full_name: format!("Nguyễn Văn {i}"),
                birth_date: "1980".into(),
                gender: None,
                id_number: None,
                phone: None,
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .unwrap();
        }
    })
    .unwrap();
}

/// The view's replicated state: tables, registers and the log (not its version vector, which
/// names each view's own replica and the counters it reserved).
fn dump(b: &PgBackend) -> String {
    let d = b.with_view(|s| s.canonical_dump().unwrap()).unwrap();
    d.split("## version vector").next().unwrap().to_owned()
}

#[test]
fn a_new_instance_starts_from_the_snapshot_and_holds_what_the_feed_holds() {
    let Some(base) = testing::base_url() else {
        return; // no cluster outside CI (under CI, `base_url()` fails the test instead)
    };
    let url = testing::fresh_database(&base).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = open(&url, &dir.path().join("a.db"), false);
    a.import_units(CLI_ACTOR, UNITS, 0).unwrap();
    households(&a, 0, 40);
    let line = a.publish_view(true).unwrap();
    assert!(line.starts_with("view published"), "{line}");
    assert_eq!(
        a.publish_view(false).unwrap(),
        "the latest snapshot of the view is recent enough"
    );
    // Written after the snapshot: the new instance catches it up from the feed.
    households(&a, 40, 10);

    let b = open(&url, &dir.path().join("b.db"), false);
    let seeded = b.seeded_at().expect("seeded from the snapshot");
    assert!(seeded > 0);
    let rebuilt = open(&url, &dir.path().join("r.db"), true);
    assert_eq!(rebuilt.seeded_at(), None);
    let want = dump(&rebuilt);
    assert!(
        want.contains("HK0049"),
        "the rebuilt view lacks the later writes"
    );
    let got = dump(&b);
    if got != want {
        let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
        let i = g
            .iter()
            .zip(&w)
            .position(|(x, y)| x != y)
            .unwrap_or(g.len().min(w.len()));
        panic!(
            "the seeded view differs from one rebuilt from the feed at line {i}:\n{:?}\n{:?}",
            g.get(i),
            w.get(i)
        );
    }
    assert!(dump(&a) == want);

    // Its own identity: console writes of both instances reach each other.
    let replica = |x: &PgBackend| x.with_view(|s| s.replica_id()).unwrap();
    assert_ne!(replica(&a), replica(&b));
    households(&b, 50, 3);
    households(&a, 53, 3);
    let (da, db) = (dump(&a), dump(&b));
    assert!(da == db, "the two instances diverged after writing");
    assert!(da.contains("HK0055") && da.contains("HK0052"));

    // A view of its own, kept: the next start reads it instead of the snapshot.
    let path = dir.path().join("b.db");
    drop(b);
    let again = open(&url, &path, false);
    assert_eq!(again.seeded_at(), None);
    assert!(dump(&again) == da);
}

fn open_keyed(url: &str, path: &Path, key: Option<&doorstep_core::StoreKey>) -> PgBackend {
    PgBackend::open(
        url,
        ViewOptions {
            path: Some(path.to_path_buf()),
            key: key.cloned(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn holds(path: &Path, text: &str) -> bool {
    let mut all = std::fs::read(path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    all.extend(std::fs::read(&wal).unwrap_or_default());
    all.windows(text.len()).any(|w| w == text.as_bytes())
}

/// `--db-key-file` with PostgreSQL: the instance's view file (a full copy of the data) and the
/// snapshot it publishes are encrypted with its key; an instance with the same key starts from
/// that snapshot; one with another key, or none, cannot read it and rebuilds from the feed; a
/// cached view the instance's key does not open is rebuilt too.
#[test]
fn a_keyed_instance_encrypts_its_view_and_its_snapshots() {
    let Some(base) = testing::base_url() else {
        return; // no cluster outside CI (under CI, `base_url()` fails the test instead)
    };
    let url = testing::fresh_database(&base).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = doorstep_core::StoreKey::new([6; 32]);
    let other = doorstep_core::StoreKey::new([8; 32]);
    let a_path = dir.path().join("a.db");
    let a = open_keyed(&url, &a_path, Some(&key));
    a.import_units(CLI_ACTOR, UNITS, 0).unwrap();
    households(&a, 0, 30);
    assert!(a.publish_view(true).unwrap().starts_with("view published"));
    assert!(!holds(&a_path, "Nguyễn Văn 17") && !holds(&a_path, "SQLite format 3"));
    let want = dump(&a);

    let same = open_keyed(&url, &dir.path().join("b.db"), Some(&key));
    assert!(
        same.seeded_at().is_some(),
        "the same key reads the snapshot"
    );
    assert!(dump(&same) == want);
    let b_path = dir.path().join("b.db");
    assert!(!holds(&b_path, "Nguyễn Văn 17"));

    for k in [Some(&other), None] {
        let path = dir.path().join(format!("c-{}.db", k.is_some()));
        let c = open_keyed(&url, &path, k);
        assert_eq!(c.seeded_at(), None, "another key cannot read the snapshot");
        assert!(dump(&c) == want);
    }

    // The cached view of `b`, opened with another key: rebuilt, same content, new key.
    drop(same);
    let reopened = open_keyed(&url, &b_path, Some(&other));
    assert!(dump(&reopened) == want);
    drop(reopened);
    assert!(matches!(
        Store::open_encrypted(&b_path, &key, Default::default()),
        Err(doorstep_core::Error::WrongKey { .. })
    ));
}
