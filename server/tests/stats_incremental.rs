//! Incremental statistics (ADR 0009) against a full rebuild: random histories — visits,
//! level-1 and level-2 steps, failures, retractions, households moving villages, residents
//! moving households, deletions, officer reassignments, quota changes, sessions, outreach, a
//! change to the unit tree — are applied batch by batch through the server's apply path
//! (`Backend::import_ops`, the push's `apply_batch`), and after every batch the snapshot the
//! cache kept up to date must equal a rebuild from the whole store, field by field
//! (`StatsCache::check`). On SQLite, then on PostgreSQL when `DOORSTEP_TEST_DATABASE_URL` is
//! set (there the batches reach the view through its catch-up from the shared feed).

use chrono::NaiveDate;
use doorstep_core::*;
use doorstep_server::stats::{Refreshed, StatsCache};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

mod common;
use common::{on_both_backends, open_db};

const VILLAGES: [&str; 4] = ["22813-01", "22813-02", "22814-01", "22814-02"];

fn at(day: u32, minute: i64) -> i64 {
    NaiveDate::from_ymd_opt(2023, 7, day)
        .unwrap()
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        + minute * 60_000
}

/// The author of a random history: a replica of its own, whose operations are imported into
/// the server batch by batch.
struct History {
    store: Store,
    rng: StdRng,
    campaign: Uuid,
    officers: Vec<Uuid>,
    households: Vec<Uuid>,
    residents: Vec<Uuid>,
    facts: Vec<Uuid>,
    sent: u64,
    /// Actions that the author's store refused (validation), and that it took.
    refused: usize,
    taken: usize,
}

impl History {
    fn new(seed: u64) -> History {
        let mut store = Store::open_in_memory(Options::default()).unwrap();
        let campaign = Uuid::now_v7();
        common::put_units(
            &mut store,
            &[
                ("58", None, UnitLevel::Province),
                ("586", Some("58"), UnitLevel::District),
                ("22813", Some("586"), UnitLevel::Commune),
                ("22814", Some("586"), UnitLevel::Commune),
                ("22813-01", Some("22813"), UnitLevel::Village),
                ("22813-02", Some("22813"), UnitLevel::Village),
                ("22814-01", Some("22814"), UnitLevel::Village),
                ("22814-02", Some("22814"), UnitLevel::Village),
            ],
        );
        store
            .put_campaign(CampaignInput {
                id: campaign,
                name: "Chiến dịch".into(),
                start_date: NaiveDate::from_ymd_opt(2023, 7, 1).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
                target: 50,
                unit_code: "58".into(),
            })
            .unwrap();
        let mut h = History {
            store,
            rng: StdRng::seed_from_u64(seed),
            campaign,
            officers: Vec::new(),
            households: Vec::new(),
            residents: Vec::new(),
            facts: Vec::new(),
            sent: 0,
            refused: 0,
            taken: 0,
        };
        for i in 0..3 {
            h.new_officer(i);
        }
        for _ in 0..8 {
            h.new_household();
        }
        for _ in 0..20 {
            h.new_resident();
        }
        h
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.rng.gen_range(0..from.len())]
    }

    fn took<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => {
                self.taken += 1;
                Some(v)
            }
            Err(e) => {
                if std::env::var_os("SHOW_REFUSED").is_some() {
                    eprintln!("refused: {e}");
                }
                self.refused += 1;
                None
            }
        }
    }

    fn new_officer(&mut self, i: usize) {
        let id = Uuid::now_v7();
        let unit = ["22813", "22814"][i % 2];
        self.store
            .put_officer(OfficerInput {
                id,
                name: format!("Cán bộ {i}"),
                role: Role::Field,
                unit_code: unit.into(),
            })
            .unwrap();
        let village = self.pick(&VILLAGES);
        self.store
            .assign(id, AssignTarget::Village(village.into()))
            .unwrap();
        self.officers.push(id);
    }

    fn put_household(&mut self, id: Uuid) {
        let village = self.pick(&VILLAGES);
        let r = self.store.put_household(HouseholdInput {
            id,
            code: format!("H{}", &id.simple().to_string()[20..]),
            village_code: village.into(),
            address: None,
            head_id: None,
        });
        self.took(r);
    }

    fn new_household(&mut self) {
        let id = Uuid::now_v7();
        self.put_household(id);
        self.households.push(id);
    }

    fn put_resident(&mut self, id: Uuid) {
        let household = self.pick(&self.households.clone());
        let account = self.pick(&[
            RosterStatus::None,
            RosterStatus::None,
            RosterStatus::Level1Pending,
            RosterStatus::Level2Pending,
            RosterStatus::Level1Activated,
            RosterStatus::Level2Activated,
        ]);
        let agency = self.pick(&[None, None, Some("Công an huyện"), Some("UBND xã")]);
        let r = self.store.put_resident(ResidentInput {
            id,
            household_id: household,
            full_name: "Nguyễn Văn A".into(),
            birth_date: "1990".into(),
            gender: None,
            id_number: None,
            phone: None,
            relation: None,
            account,
            agency: agency.map(Into::into),
        });
        self.took(r);
    }

    fn new_resident(&mut self) {
        let id = Uuid::now_v7();
        self.put_resident(id);
        self.residents.push(id);
    }

    fn when(&mut self) -> i64 {
        let day = self.rng.gen_range(1..=10);
        let minute = self.rng.gen_range(0..600);
        at(day, minute)
    }

    fn step(&mut self, failed: bool) {
        let resident = self.pick(&self.residents.clone());
        let officer = self.pick(&self.officers.clone());
        let step = self.pick(&[
            AssistStep::Level1Activated,
            AssistStep::Level2Received,
            AssistStep::Level2Activated,
            AssistStep::PortalGuided,
            AssistStep::Level1Guided,
        ]);
        let failure = failed.then(|| {
            self.pick(&[
                FailureReason::PhoneNotOwnName,
                FailureReason::OtpNotReceived,
                FailureReason::Other,
            ])
        });
        let at_ms = self.when();
        let r = self.store.record_assist(NewAssist {
            resident_id: resident,
            officer_id: officer,
            at_ms: Some(at_ms),
            step,
            failure,
            receiving_point: (step == AssistStep::Level2Received).then(|| "Công an xã".into()),
            note: None,
        });
        if let Some(id) = self.took(r) {
            self.facts.push(id);
        }
    }

    /// One random action.
    fn act(&mut self, units_too: bool) {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=14 => {
                let household = self.pick(&self.households.clone());
                let officer = self.pick(&self.officers.clone());
                let at_ms = self.when();
                let r = self.store.record_visit(NewVisit {
                    household_id: household,
                    officer_id: officer,
                    at_ms: Some(at_ms),
                    outcome: VisitOutcome::Met,
                    revisit_at_ms: None,
                    note: None,
                    location: None,
                });
                if let Some(id) = self.took(r) {
                    self.facts.push(id);
                }
            }
            15..=39 => self.step(false),
            40..=47 => self.step(true),
            48..=57 if !self.facts.is_empty() => {
                let fact = self.pick(&self.facts.clone());
                let r = self.store.retract(fact, Some("nhầm"));
                self.took(r);
            }
            58..=63 => {
                // A household moves to another village.
                let h = self.pick(&self.households.clone());
                self.put_household(h);
            }
            64..=69 => {
                // A resident moves to another household (and the roster may say otherwise).
                let r = self.pick(&self.residents.clone());
                self.put_resident(r);
            }
            70..=75 => {
                let officer = self.pick(&self.officers.clone());
                let to = if self.rng.gen_bool(0.5) {
                    AssignTarget::Village(self.pick(&VILLAGES).into())
                } else {
                    AssignTarget::Household(self.pick(&self.households.clone()))
                };
                let r = if self.rng.gen_bool(0.6) {
                    self.store.assign(officer, to)
                } else {
                    self.store.unassign(officer, to)
                };
                self.took(r);
            }
            76..=81 => {
                let subject = if self.rng.gen_bool(0.5) {
                    QuotaSubject::Officer(self.pick(&self.officers.clone()))
                } else {
                    QuotaSubject::Unit(self.pick(&["22813", "22814", "22813-01"]).into())
                };
                let period = if self.rng.gen_bool(0.5) {
                    QuotaPeriod::Campaign
                } else {
                    QuotaPeriod::Day(
                        NaiveDate::from_ymd_opt(2023, 7, self.rng.gen_range(1..=10)).unwrap(),
                    )
                };
                let metric = self.pick(&[
                    QuotaMetric::Visits,
                    QuotaMetric::Level1Activated,
                    QuotaMetric::Level2Activated,
                ]);
                let target = self.rng.gen_range(0..20);
                let r = self.store.set_quota(QuotaInput {
                    campaign_id: self.campaign,
                    subject,
                    period,
                    metric,
                    target,
                });
                self.took(r);
            }
            82..=85 => self.new_resident(),
            86..=87 => self.new_household(),
            88 => {
                let h = self.pick(&self.households.clone());
                let r = self.store.delete_household(h);
                self.took(r);
            }
            89 => {
                let r = self.pick(&self.residents.clone());
                let r = self.store.delete_resident(r);
                self.took(r);
            }
            90 => {
                let n = self.officers.len();
                self.new_officer(n);
            }
            91..=93 => {
                let officer = self.pick(&self.officers.clone());
                let starts_at_ms = self.when();
                let unit: &str = self.pick(&["22813", "22814"]);
                let applications = self.rng.gen_range(0..30);
                let r = self.store.record_session(NewSession {
                    unit_code: unit.into(),
                    officer_id: officer,
                    kind: SessionKind::Mobile,
                    place: "Nhà văn hoá".into(),
                    starts_at_ms,
                    ends_at_ms: starts_at_ms + 3_600_000,
                    applications,
                    note: None,
                });
                if let Some(id) = self.took(r) {
                    self.facts.push(id);
                }
            }
            94..=95 => {
                let officer = self.pick(&self.officers.clone());
                let at_ms = self.when();
                let people_reached = self.rng.gen_range(0..100);
                let r = self.store.record_outreach(NewOutreach {
                    unit_code: "22813-02".into(),
                    officer_id: officer,
                    kind: OutreachKind::Meeting,
                    at_ms: Some(at_ms),
                    place: "Hội trường".into(),
                    people_reached,
                    note: None,
                });
                if let Some(id) = self.took(r) {
                    self.facts.push(id);
                }
            }
            96 if units_too => self.rename_village(),
            _ => self.step(false),
        }
    }

    /// The unit tree changes: a village is renamed (the statistics rebuild).
    fn rename_village(&mut self) {
        let name = format!("Thôn {}", self.rng.gen_range(0..1000));
        let r = self.store.put_unit(UnitInput {
            code: "22814-02".into(),
            parent_code: Some("22814".into()),
            level: UnitLevel::Village,
            kind: "thôn".into(),
            name,
        });
        self.took(r);
    }

    /// The operations made since the last call.
    fn batch(&mut self) -> Vec<Op> {
        let ops = self
            .store
            .own_ops_after(self.sent, usize::MAX >> 1)
            .unwrap();
        if let Some(last) = ops.last() {
            self.sent = last.counter;
        }
        ops
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn touches_units(ops: &[Op]) -> bool {
    ops.iter().any(|o| {
        matches!(
            o.body,
            OpBody::Set {
                entity: Entity::Unit,
                ..
            }
        )
    })
}

fn random_histories_kept_incrementally_equal_a_rebuild() {
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let backend = db.dyn_backend();
        let cache = StatsCache::new(0);
        let mut h = History::new(seed);
        let first = h.batch();
        backend.import_ops("cli", &first, now()).unwrap();
        // The first snapshot is a full build.
        assert!(matches!(
            cache.refresh(&backend).unwrap(),
            Refreshed::Rebuilt { .. }
        ));
        let (mut incremental, mut rebuilt) = (0, 0);
        for batch in 0..60 {
            let n = h.rng.gen_range(1..=12);
            for _ in 0..n {
                h.act(batch % 20 == 10);
            }
            if batch == 30 {
                h.rename_village();
            }
            let ops = h.batch();
            if ops.is_empty() {
                continue;
            }
            let applied = backend.import_ops("cli", &ops, now()).unwrap();
            assert_eq!(applied as usize, ops.len(), "seed {seed} batch {batch}");
            match cache.refresh(&backend).unwrap() {
                Refreshed::Incremental { .. } => {
                    assert!(!touches_units(&ops), "a unit change must rebuild");
                    incremental += 1;
                }
                Refreshed::Rebuilt { .. } => {
                    assert!(
                        touches_units(&ops),
                        "seed {seed} batch {batch}: rebuilt without a unit change"
                    );
                    rebuilt += 1;
                }
            }
            let check = cache.check(&backend).unwrap();
            assert!(
                !check.rebuilt,
                "seed {seed} batch {batch}: the check rebuilt"
            );
            assert!(
                check.equal,
                "seed {seed} batch {batch}: {:?}",
                check.difference
            );
        }
        assert!(
            incremental >= 50,
            "seed {seed}: {incremental} incremental updates, {rebuilt} rebuilds, {} taken, {} refused",
            h.taken,
            h.refused
        );
        assert!(
            h.taken > 8 * h.refused,
            "seed {seed}: the history was mostly refused ({} taken, {} refused)",
            h.taken,
            h.refused
        );
        eprintln!(
            "seed {seed}: {incremental} incremental updates, {rebuilt} rebuilds, {} actions",
            h.taken
        );
    }
}

#[test]
fn random_histories_on_both_backends() {
    on_both_backends(random_histories_kept_incrementally_equal_a_rebuild);
}

/// On PostgreSQL, a second instance sees the batches another instance took only through its
/// view's catch-up from the shared feed: its statistics follow them the same way.
#[test]
fn a_second_postgres_instance_follows_through_its_catch_up() {
    use doorstep_server::pg::{testing, ViewOptions};
    use doorstep_server::PgBackend;
    let Some(base) = testing::base_url() else {
        return;
    };
    let url = testing::fresh_database(&base).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        PgBackend::open(
            &url,
            ViewOptions {
                path: Some(dir.path().join(name)),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (a, b) = (open("a.db"), open("b.db"));
    let cache = StatsCache::new(0);
    let mut h = History::new(42);
    let first = h.batch();
    a.import_ops("cli", &first, now()).unwrap();
    cache.refresh(&b).unwrap();
    let mut incremental = 0;
    for batch in 0..40 {
        for _ in 0..h.rng.gen_range(1..=12) {
            h.act(false);
        }
        let ops = h.batch();
        a.import_ops("cli", &ops, now()).unwrap();
        if let Refreshed::Incremental { .. } = cache.refresh(&b).unwrap() {
            incremental += 1;
        }
        let check = cache.check(&b).unwrap();
        assert!(
            check.equal && !check.rebuilt,
            "batch {batch}: {:?}",
            check.difference
        );
    }
    assert!(incremental >= 35, "{incremental} incremental updates");
}

/// The check and the repair over HTTP: an admin's token only; the check says equal after
/// batches, the repair rebuilds; both audited.
#[test]
fn the_check_and_repair_routes() {
    on_both_backends(check_and_repair_routes);
}

fn check_and_repair_routes() {
    let srv = common::http::server();
    let (_, token) = srv
        .backend
        .bootstrap_admin("Quản trị", now())
        .unwrap()
        .unwrap();
    let mut h = History::new(7);
    for _ in 0..5 {
        for _ in 0..10 {
            h.act(false);
        }
        let ops = h.batch();
        srv.backend.import_ops("cli", &ops, now()).unwrap();
        let a = srv.get("/v1/admin/stats/check", Some(&token));
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["equal"], true, "{v}");
    }
    let a = srv.raw(
        "/v1/admin/stats/rebuild",
        Some(&token),
        "application/json",
        None,
        Vec::new(),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(srv.get("/v1/admin/stats/check", None).status == 401);
    let audit = srv.backend.audit(50).unwrap();
    assert!(audit.iter().any(|e| e.action == "stats_check"));
    assert!(audit.iter().any(|e| e.action == "stats_rebuild"));
}

/// Writes that never passed through the journal (a `doorstep` command writing the same SQLite
/// file from another process; a tool writing through `with_store`) are noticed, and the
/// statistics rebuild rather than go on without them.
#[test]
fn writes_the_journal_did_not_see_mean_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let backend = doorstep_server::SqliteBackend::open(&path).unwrap();
    let cache = StatsCache::new(0);
    let mut h = History::new(5);
    let first = h.batch();
    backend.import_ops("cli", &first, now()).unwrap();
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Rebuilt { .. }
    ));
    let visit = |s: &mut Store| {
        s.record_visit(NewVisit {
            household_id: h.households[0],
            officer_id: h.officers[0],
            at_ms: Some(at(3, 0)),
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .unwrap()
    };
    // Another connection to the file, as another process would have.
    let mut other = Store::open(&path, Options::default()).unwrap();
    visit(&mut other);
    drop(other);
    // The first update sees operations it was not shown; if they are still unseen at the next
    // one, they came another way: rebuild.
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Incremental { .. }
    ));
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Rebuilt { .. }
    ));
    let check = cache.check(&backend).unwrap();
    assert!(check.equal && !check.rebuilt, "{:?}", check.difference);
    // A write through the store itself: unknown to the journal, rebuilt at once.
    backend.with_store(|s| visit(s)).unwrap();
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Rebuilt { .. }
    ));
    let check = cache.check(&backend).unwrap();
    assert!(check.equal && !check.rebuilt, "{:?}", check.difference);
}

/// A database encrypted at rest (`--db-key-file`): the statistics read it through their own
/// connection, which is keyed too, and their check against a rebuild holds.
#[test]
fn statistics_of_an_encrypted_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let key = doorstep_core::StoreKey::new([3; 32]);
    let backend = doorstep_server::SqliteBackend::open_encrypted(&path, &key).unwrap();
    let cache = StatsCache::new(0);
    let mut h = History::new(5);
    backend.import_ops("cli", &h.batch(), now()).unwrap();
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Rebuilt { .. }
    ));
    backend.import_ops("cli", &h.batch(), now()).unwrap();
    assert!(matches!(
        cache.refresh(&backend).unwrap(),
        Refreshed::Incremental { .. }
    ));
    let check = cache.check(&backend).unwrap();
    assert!(check.equal && !check.rebuilt, "{:?}", check.difference);
    drop(backend);
    assert!(matches!(
        doorstep_server::SqliteBackend::open(&path),
        Err(doorstep_server::error::ServerError::Core(
            doorstep_core::Error::WrongKey { .. }
        ))
    ));
}
