//! Benchmarks of the field store, each against a raw-SQLite baseline measured in the same run.
//!
//! Run with `cargo bench -p doorstep-core --bench core -- [--quick] [NAME...]` (NAME ∈ `visit`,
//! `import`, `search`, `mine`, `apply`; default all). `scripts/bench.sh` runs it and regenerates
//! `docs/benchmarks.md` from its output.
//!
//! Output on stdout: Markdown (an environment section, then one section per benchmark), then
//! machine-readable lines: `ENV<TAB>key<TAB>value`, `SUMMARY<TAB>what<TAB>goal<TAB>measured<TAB>
//! ratio<TAB>met` and `METRIC name value unit`. Progress goes to stderr.
//!
//! Every store is a file in a temporary directory (so fsync is real), with the store's own
//! pragmas; every statistic is a median or a percentile, never a mean.

use chrono::NaiveDate;
use doorstep_core::roster::ImportProgress;
use doorstep_core::time::local_day;
use doorstep_core::*;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// 2023-07-10 09:00 in Vietnam (02:00 UTC): inside the campaign.
const NOW_MS: u64 = 1_688_954_400_000;
const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
const SEED: u64 = 0x00D0_0257_EB58;

// ---------------------------------------------------------------------------------------------
// Statistics and reporting
// ---------------------------------------------------------------------------------------------

#[path = "support/report.rs"]
mod report;
use report::*;

// ---------------------------------------------------------------------------------------------
// Reference data: units, campaign, officers
// ---------------------------------------------------------------------------------------------

const DISTRICT: &str = "582";
const COMMUNES: &[(&str, &str)] = &[
    ("22738", "Phường Đô Vinh"),
    ("22741", "Phường Phước Mỹ"),
    ("22744", "Phường Bảo An"),
    ("22747", "Phường Phủ Hà"),
];
const VILLAGES_PER_COMMUNE: usize = 5;

fn village_codes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (commune, _) in COMMUNES {
        for i in 1..=VILLAGES_PER_COMMUNE {
            out.push((format!("{commune}-{i:02}"), format!("Khu phố {i}")));
        }
    }
    out
}

/// The reference data every store of the benchmarks holds.
#[derive(Clone)]
struct Reference {
    campaign: Uuid,
    /// `officers[0]` is assigned every village (5,000 households) in the `mine` benchmark.
    officers: Vec<Uuid>,
}

impl Reference {
    fn fixed() -> Self {
        Reference {
            campaign: Uuid::from_u128(0x0189_3a4b_0000_7000_8000_0000_0000_ca01),
            officers: (1..=6).map(|i| Uuid::from_u128(0x0F00 + i)).collect(),
        }
    }

    fn put(&self, s: &mut Store) -> Result<()> {
        s.put_unit(UnitInput {
            code: "58".into(),
            parent_code: None,
            level: UnitLevel::Province,
            kind: "tỉnh".into(),
            name: "Ninh Thuận".into(),
        })?;
        s.put_unit(UnitInput {
            code: DISTRICT.into(),
            parent_code: Some("58".into()),
            level: UnitLevel::District,
            kind: "thành phố".into(),
            name: "Phan Rang - Tháp Chàm".into(),
        })?;
        for (code, name) in COMMUNES {
            s.put_unit(UnitInput {
                code: (*code).into(),
                parent_code: Some(DISTRICT.into()),
                level: UnitLevel::Commune,
                kind: "phường".into(),
                name: (*name).into(),
            })?;
        }
        for (code, name) in village_codes() {
            s.put_unit(UnitInput {
                parent_code: Some(code[..5].to_owned()),
                code,
                level: UnitLevel::Village,
                kind: "khu phố".into(),
                name,
            })?;
        }
        s.put_campaign(CampaignInput {
            id: self.campaign,
            name: "Cao điểm 80 ngày đêm".into(),
            start_date: NaiveDate::from_ymd_opt(2023, 6, 27).expect("date"),
            end_date: NaiveDate::from_ymd_opt(2023, 9, 15).expect("date"),
            target: 264_720,
            unit_code: "58".into(),
        })?;
        let names = [
            "Trần Văn Bình",
            "Lê Thị Hoa",
            "Đàng Năng Thọ",
            "Nguyễn Hữu Phúc",
            "Phạm Thị Thu Trang",
            "Võ Minh Đức",
        ];
        for (i, id) in self.officers.iter().enumerate() {
            s.put_officer(OfficerInput {
                id: *id,
                name: names[i % names.len()].into(),
                role: Role::Field,
                unit_code: COMMUNES[i % COMMUNES.len()].0.into(),
            })?;
        }
        Ok(())
    }
}

/// Extra pragmas from `DOORSTEP_BENCH_PRAGMAS` (e.g. `cache_size=-65536;wal_autocheckpoint=4000`),
/// applied to every store and raw database the benchmarks open: a what-if knob for trying a
/// configuration before changing `core/src/store.rs`. Unset for the recorded numbers.
fn extra_pragmas() -> Option<String> {
    std::env::var("DOORSTEP_BENCH_PRAGMAS")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

fn apply_extra_pragmas(conn: &Connection) {
    if let Some(p) = extra_pragmas() {
        for pragma in p.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            conn.execute_batch(&format!("PRAGMA {pragma};"))
                .expect("DOORSTEP_BENCH_PRAGMAS");
        }
    }
}

fn open_store(path: impl AsRef<Path>, options: Options) -> Result<Store> {
    let store = Store::open(path, options)?;
    apply_extra_pragmas(store.connection());
    Ok(store)
}

fn options(clock: &Arc<ManualClock>, durability: Durability) -> Options {
    Options {
        durability,
        clock: clock.clone(),
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The roster: 20,000 residents, deterministic
// ---------------------------------------------------------------------------------------------

struct GenHousehold {
    code: String,
    village: String,
    address: String,
}

struct GenResident {
    household: usize,
    full_name: String,
    birth_date: String,
    gender: &'static str,
    id_number: String,
    phone: String,
    relation: &'static str,
    account: &'static str,
}

struct Roster {
    households: Vec<GenHousehold>,
    residents: Vec<GenResident>,
}

/// Family names with rough frequencies; Ninh Thuận also has Cham family names (Đàng, Quảng…).
const SURNAMES: &[(&str, u32)] = &[
    ("Nguyễn", 340),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Huỳnh", 30),
    ("Hoàng", 20),
    ("Phan", 45),
    ("Võ", 30),
    ("Vũ", 10),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Đàng", 25),
    ("Quảng", 12),
    ("Thuận", 8),
    ("Châu", 8),
    ("Lưu", 6),
    ("Thành", 5),
    ("Trương", 8),
    ("Đinh", 6),
];
const MALE_MIDDLE: &[&str] = &[
    "Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Ngọc", "Năng", "Xuân",
];
const FEMALE_MIDDLE: &[&str] = &[
    "Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ", "Bích", "Hồng", "Thúy",
];
const MALE_GIVEN: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Đông", "Hải", "Hùng", "Khánh", "Long", "Minh", "Nam", "Phúc",
    "Quang", "Sơn", "Tài", "Thắng", "Trung", "Tuấn", "Việt", "Vinh", "Huy", "Đạt", "Lộc", "Phước",
    "Thọ", "Hiếu", "Nghĩa", "Tâm", "Toàn", "Khoa",
];
const FEMALE_GIVEN: &[&str] = &[
    "Anh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngọc", "Nhung", "Phương", "Thảo", "Trang",
    "Tuyết", "Vân", "Yến", "Hằng", "Hạnh", "Đào", "Diệu", "Nguyệt", "Dung", "Hiền", "Loan", "Ánh",
    "Oanh", "Quyên", "Thủy", "Xuân", "Liên", "Huyền", "Giang",
];
const STREETS: &[&str] = &[
    "Thống Nhất",
    "Ngô Gia Tự",
    "21 Tháng 8",
    "Lê Duẩn",
    "Trần Phú",
    "Nguyễn Văn Cừ",
    "Hải Thượng Lãn Ông",
    "Yên Ninh",
    "Minh Mạng",
    "Quang Trung",
    "Lê Hồng Phong",
    "Đường 16 Tháng 4",
];
/// Mobile prefixes 09x/03x (Viettel, Vinaphone, MobiFone, Vietnamobile, Gmobile).
const PHONE_PREFIXES: &[&str] = &[
    "096", "097", "098", "091", "094", "090", "093", "092", "099", "032", "033", "034", "035",
    "036", "037", "038", "039",
];

struct NameGen {
    surnames: Vec<&'static str>,
    weights: WeightedIndex<u32>,
}

impl NameGen {
    fn new() -> Self {
        NameGen {
            surnames: SURNAMES.iter().map(|(s, _)| *s).collect(),
            weights: WeightedIndex::new(SURNAMES.iter().map(|(_, w)| *w)).expect("weights"),
        }
    }
    fn surname(&self, rng: &mut StdRng) -> &'static str {
        self.surnames[self.weights.sample(rng)]
    }
    fn full(&self, rng: &mut StdRng, surname: &str, male: bool) -> String {
        let (middle, given) = if male {
            (MALE_MIDDLE, MALE_GIVEN)
        } else {
            (FEMALE_MIDDLE, FEMALE_GIVEN)
        };
        let mut name = format!(
            "{surname} {} {}",
            middle.choose(rng).expect("nonempty"),
            given.choose(rng).expect("nonempty")
        );
        // Some names have two given-name syllables ("Nguyễn Thị Thu Hương").
        if rng.gen_bool(0.15) {
            name = format!(
                "{surname} {} {} {}",
                middle.choose(rng).expect("nonempty"),
                given.choose(rng).expect("nonempty"),
                given.choose(rng).expect("nonempty")
            );
        }
        name
    }
}

impl Roster {
    /// About `target / 4` households over 20 villages; exactly `target` residents.
    fn generate(target: usize) -> Roster {
        let mut rng = StdRng::seed_from_u64(SEED);
        let names = NameGen::new();
        let villages = village_codes();
        let mut ids: HashSet<String> = HashSet::new();
        let mut households = Vec::new();
        let mut residents: Vec<GenResident> = Vec::with_capacity(target);
        // Household sizes 1..=7, mean ≈ 4.
        let sizes = WeightedIndex::new([4u32, 12, 18, 30, 20, 10, 6]).expect("weights");
        while residents.len() < target {
            let h = households.len();
            let (village, village_name) = &villages[h % villages.len()];
            households.push(GenHousehold {
                code: format!("HK{}{:06}", &village[..5], h + 1),
                village: village.clone(),
                address: format!(
                    "Số {} đường {}, {village_name}",
                    rng.gen_range(1..400),
                    STREETS.choose(&mut rng).expect("nonempty")
                ),
            });
            let size = (sizes.sample(&mut rng) + 1).min(target - residents.len());
            let head_male = rng.gen_bool(0.7);
            let head_year = rng.gen_range(1940..=1995);
            let head_surname = names.surname(&mut rng);
            let spouse_surname = names.surname(&mut rng);
            let father_surname = if head_male {
                head_surname
            } else {
                spouse_surname
            };
            for k in 0..size {
                let (male, year, surname, relation) = match k {
                    0 => (head_male, head_year, head_surname, "chủ hộ"),
                    1 => (
                        !head_male,
                        (head_year + rng.gen_range(-6..=6)).clamp(1930, 2000),
                        spouse_surname,
                        if head_male { "vợ" } else { "chồng" },
                    ),
                    // A parent of the head in some large households.
                    4 if rng.gen_bool(0.4) && head_year < 1975 => (
                        rng.gen_bool(0.3),
                        (head_year - rng.gen_range(20..=32)).max(1920),
                        head_surname,
                        "mẹ",
                    ),
                    _ => {
                        let year = (head_year + rng.gen_range(20..=38)).min(2022);
                        let rel = if year < 1995 && rng.gen_bool(0.2) {
                            "con dâu"
                        } else {
                            "con"
                        };
                        (rng.gen_bool(0.5), year, father_surname, rel)
                    }
                };
                let relation = if relation == "mẹ" && male {
                    "bố"
                } else {
                    relation
                };
                let full_name = names.full(&mut rng, surname, male);
                let month = rng.gen_range(1..=12u32);
                let day = rng.gen_range(1..=28u32);
                let birth_date = match rng.gen_range(0..100) {
                    0..=59 => format!("{day:02}/{month:02}/{year}"),
                    60..=84 => format!("{year}-{month:02}-{day:02}"),
                    _ => format!("{year}"),
                };
                // CCCD: 058, century/gender digit, yy, 6 digits (unique).
                let has_id = if year <= 2009 {
                    rng.gen_bool(0.9)
                } else {
                    rng.gen_bool(0.3)
                };
                let id_number = if has_id {
                    let cg = if year >= 2000 { 2 } else { 0 } + u32::from(!male);
                    loop {
                        let n = format!(
                            "058{cg}{:02}{:06}",
                            year % 100,
                            rng.gen_range(0..1_000_000u32)
                        );
                        if ids.insert(n.clone()) {
                            break n;
                        }
                    }
                } else {
                    String::new()
                };
                let phone = if year <= 2007 && rng.gen_bool(0.75) {
                    format!(
                        "{}{:07}",
                        PHONE_PREFIXES.choose(&mut rng).expect("nonempty"),
                        rng.gen_range(0..10_000_000u32)
                    )
                } else {
                    String::new()
                };
                let account = match rng.gen_range(0..100) {
                    0..=79 => "",
                    80..=91 => "level1_pending",
                    _ => "level2_pending",
                };
                residents.push(GenResident {
                    household: h,
                    full_name,
                    birth_date,
                    gender: if male { "nam" } else { "nữ" },
                    id_number,
                    phone,
                    relation,
                    account,
                });
            }
        }
        Roster {
            households,
            residents,
        }
    }

    fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "household_code",
            "village_code",
            "address",
            "full_name",
            "birth_date",
            "gender",
            "id_number",
            "phone",
            "relation",
            "account",
        ])
        .expect("csv");
        for r in &self.residents {
            let h = &self.households[r.household];
            w.write_record([
                h.code.as_str(),
                &h.village,
                &h.address,
                &r.full_name,
                &r.birth_date,
                r.gender,
                &r.id_number,
                &r.phone,
                r.relation,
                r.account,
            ])
            .expect("csv");
        }
        w.into_inner().expect("csv")
    }
}

/// Import `csv` into `store`: the import's wall time and its report (Debug form). Panics unless
/// every row was accepted, so that a validation regression cannot pass for a fast import.
fn import(store: &mut Store, campaign: Uuid, csv: &[u8]) -> (Duration, String) {
    let mut calls = 0usize;
    let t = Instant::now();
    let report = store
        .import_roster(campaign, csv, &mut |_p: ImportProgress| calls += 1)
        .expect("import_roster");
    let took = t.elapsed();
    assert_eq!(
        (report.accepted, report.rejected.len()),
        (report.rows, 0),
        "every generated row is valid"
    );
    (took, format!("{report:?}; progress callbacks: {calls}"))
}

// ---------------------------------------------------------------------------------------------
// The visits table, for the raw-SQLite baselines
// ---------------------------------------------------------------------------------------------

/// The `visits` table exactly as the store's schema (v1) declares it, with its indexes.
const VISITS_DDL: &str = "
CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    household_id  TEXT    NOT NULL,
    officer_id    TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL,
    day           TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    revisit_at_ms INTEGER,
    note          TEXT,
    lat_e6        INTEGER,
    lon_e6        INTEGER,
    retracted     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX visits_household ON visits(household_id, at_ms);
CREATE INDEX visits_officer_day ON visits(officer_id, day);";

const VISIT_INSERT: &str = "INSERT INTO visits (id, household_id, officer_id, at_ms, day, outcome,
    revisit_at_ms, note, lat_e6, lon_e6, retracted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)";

/// A plain SQLite file with the store's pragmas and the `visits` table.
fn raw_db(path: &Path, durability: Durability) -> Connection {
    let conn = Connection::open(path).expect("open raw db");
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )
    .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("pragma");
    conn.pragma_update(None, "temp_store", "MEMORY")
        .expect("pragma");
    apply_extra_pragmas(&conn);
    conn.execute_batch(VISITS_DDL).expect("ddl");
    conn
}

fn raw_insert_visit(conn: &Connection, v: &Visit) {
    conn.prepare_cached(VISIT_INSERT)
        .expect("prepare")
        .execute(params![
            v.id.to_string(),
            v.household_id.to_string(),
            v.officer_id.to_string(),
            v.at_ms,
            local_day(v.at_ms),
            v.outcome.as_str(),
            v.revisit_at_ms,
            v.note,
            v.location.map(|l| l.lat_e6),
            v.location.map(|l| l.lon_e6),
        ])
        .expect("insert");
}

fn location(rng: &mut StdRng) -> Location {
    // Phan Rang - Tháp Chàm, within a few kilometres.
    Location {
        lat_e6: 11_565_000 + rng.gen_range(-30_000..30_000),
        lon_e6: 108_988_000 + rng.gen_range(-30_000..30_000),
    }
}

const OUTCOMES: &[VisitOutcome] = &[
    VisitOutcome::Met,
    VisitOutcome::Met,
    VisitOutcome::Met,
    VisitOutcome::NobodyHome,
    VisitOutcome::NobodyHome,
    VisitOutcome::Refused,
    VisitOutcome::MovedAway,
];
const NOTES: &[&str] = &[
    "Đã hướng dẫn cài đặt ứng dụng VNeID",
    "Chủ hộ đi làm, hẹn tối quay lại",
    "Số điện thoại không chính chủ",
];

// ---------------------------------------------------------------------------------------------
// 1. One visit per durable transaction
// ---------------------------------------------------------------------------------------------

fn bench_visit(rep: &mut Report, dir: &Path, quick: bool) {
    rep.begin(1);
    let n = if quick { 400 } else { 2000 };
    let warm = if quick { 50 } else { 200 };
    let block = 100;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## 1. Record one visit as its own durable transaction\n"
    );
    let _ = writeln!(
        md,
        "`Store::record_visit` (validation look-ups, log append, materialised row, replica \
         counter, HLC; one IMMEDIATE transaction, WAL) against the baseline: one raw rusqlite \
         `INSERT` of the same row into a table with the same columns and indexes as `visits`, one \
         IMMEDIATE transaction per insert, in a separate file with the same pragmas. {n} calls \
         each after {warm} warm-up calls, alternating blocks of {block} so noise hits both.\n"
    );
    let _ = writeln!(
        md,
        "| synchronous | store median | store p99 | raw median | raw p99 | ratio of medians | ratio of p99s |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (durability, label) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
        progress(&format!("visit: synchronous={label}"));
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let reference = Reference::fixed();
        let mut store = open_store(
            dir.join(format!("visit-{label}.db")),
            options(&clock, durability),
        )
        .expect("open store");
        reference.put(&mut store).expect("reference data");
        let households: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for (i, h) in households.iter().enumerate() {
            store
                .put_household(HouseholdInput {
                    id: *h,
                    code: format!("HK{i:05}"),
                    village_code: village_codes()[i % 20].0.clone(),
                    address: Some(format!("Số {i} đường Thống Nhất")),
                    head_id: None,
                })
                .expect("household");
        }
        let mut raw = raw_db(&dir.join(format!("raw-visit-{label}.db")), durability);
        let officer = reference.officers[0];
        let mut rng = StdRng::seed_from_u64(SEED + 1);
        let mut i = 0usize;
        let mut next = |rng: &mut StdRng| {
            i += 1;
            NewVisit {
                household_id: households[i % households.len()],
                officer_id: officer,
                at_ms: None,
                outcome: OUTCOMES[i % OUTCOMES.len()],
                revisit_at_ms: None,
                note: matches!(i % 3, 0).then(|| NOTES[i % NOTES.len()].to_owned()),
                location: Some(location(rng)),
            }
        };
        let store_one = |store: &mut Store, v: NewVisit| {
            clock.advance(1);
            let t = Instant::now();
            store.record_visit(v).expect("record_visit");
            t.elapsed()
        };
        let raw_one = |raw: &mut Connection, v: NewVisit| {
            let at_ms = NOW_MS as i64;
            let t = Instant::now();
            let visit = Visit {
                id: Uuid::now_v7(),
                household_id: v.household_id,
                officer_id: v.officer_id,
                at_ms,
                outcome: v.outcome,
                revisit_at_ms: v.revisit_at_ms,
                note: v.note,
                location: v.location,
            };
            let tx = raw
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("begin");
            raw_insert_visit(&tx, &visit);
            tx.commit().expect("commit");
            t.elapsed()
        };
        for _ in 0..warm {
            let v = next(&mut rng);
            store_one(&mut store, v.clone());
            raw_one(&mut raw, v);
        }
        let mut s_lat = Vec::with_capacity(n);
        let mut r_lat = Vec::with_capacity(n);
        for b in 0..n / block {
            let vs: Vec<NewVisit> = (0..block).map(|_| next(&mut rng)).collect();
            let store_first = b % 2 == 0;
            for pass in 0..2 {
                if (pass == 0) == store_first {
                    for v in &vs {
                        s_lat.push(ms(store_one(&mut store, v.clone())));
                    }
                } else {
                    for v in &vs {
                        r_lat.push(ms(raw_one(&mut raw, v.clone())));
                    }
                }
            }
        }
        let (sm, s99) = (median(&mut s_lat), pct(&mut s_lat, 99.0));
        let (rm, r99) = (median(&mut r_lat), pct(&mut r_lat, 99.0));
        let (q50, q99) = (sm / rm, s99 / r99);
        let _ = writeln!(
            md,
            "| {label} | {sm:.3} ms | {s99:.3} ms | {rm:.3} ms | {r99:.3} ms | {q50:.2}× | {q99:.2}× |"
        );
        for (k, v, u) in [
            ("store_median", sm, "ms"),
            ("store_p99", s99, "ms"),
            ("raw_median", rm, "ms"),
            ("raw_p99", r99, "ms"),
            ("ratio_median", q50, "x"),
            ("ratio_p99", q99, "x"),
        ] {
            rep.metric(&format!("visit_{label}_{k}"), v, u);
        }
        rep.row(
            &format!("Record one visit, own transaction, synchronous={label}"),
            "≤ 1.5× raw insert (median and p99)",
            format!("{sm:.3} ms / p99 {s99:.3} ms"),
            format!("{q50:.2}× / p99 {q99:.2}×"),
            yes(q50 <= 1.5 && q99 <= 1.5),
        );
    }
    rep.section(&md);
}

// ---------------------------------------------------------------------------------------------
// 2. Roster import, and the world the later benchmarks use
// ---------------------------------------------------------------------------------------------

/// A store holding the reference data and the 20,000-resident roster.
struct World {
    store: Store,
    clock: Arc<ManualClock>,
    reference: Reference,
    households: Vec<Uuid>,
    residents: Vec<Uuid>,
    names: Vec<String>,
}

fn fresh_reference_store(path: &Path, clock: &Arc<ManualClock>, d: Durability) -> Store {
    let mut s = open_store(path, options(clock, d)).expect("open store");
    Reference::fixed().put(&mut s).expect("reference data");
    s
}

fn bench_import(rep: &mut Report, dir: &Path, quick: bool, timed: bool) -> World {
    rep.begin(2);
    let target = 20_000;
    let runs = if quick || !timed { 1 } else { 3 };
    progress("roster: generating");
    let t = Instant::now();
    let roster = Roster::generate(target);
    let csv = roster.to_csv();
    let gen_ms = ms(t.elapsed());
    let reference = Reference::fixed();
    let mut times = Vec::new();
    let mut report_text = String::new();
    let mut world_store = None;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut path = PathBuf::new();
    for run in 0..runs {
        progress(&format!("import: run {}", run + 1));
        path = dir.join(format!("import-{run}.db"));
        let mut store = fresh_reference_store(&path, &clock, Durability::Full);
        let (took, report) = import(&mut store, reference.campaign, &csv);
        times.push(ms(took));
        report_text = report;
        world_store = Some(store);
    }
    let mut md = String::new();
    let _ = writeln!(md, "## 2. Import a 20,000-resident roster\n");
    let villages: HashSet<&str> = roster
        .households
        .iter()
        .map(|h| h.village.as_str())
        .collect();
    let with_id = roster
        .residents
        .iter()
        .filter(|r| !r.id_number.is_empty())
        .count();
    let with_phone = roster
        .residents
        .iter()
        .filter(|r| !r.phone.is_empty())
        .count();
    let _ = writeln!(
        md,
        "Roster generated in memory with a fixed seed ({gen_ms:.0} ms, not timed): {} residents \
         in {} households over {} villages, {} bytes of CSV.",
        roster.residents.len(),
        roster.households.len(),
        villages.len(),
        thousands(csv.len() as f64),
    );
    let _ = writeln!(
        md,
        "Vietnamese names in NFC (Kinh and Cham family names), 12-digit CCCD numbers (058, \
         century/gender digit and birth year matching) for {with_id} residents, mobile numbers \
         (09x/03x) for {with_phone}; birth dates as `DD/MM/YYYY`, `YYYY-MM-DD` or `YYYY`.\n"
    );
    let med = median(&mut times.clone());
    let _ = writeln!(
        md,
        "`Store::import_roster` into a fresh file store (reference data already there, \
         `Durability::Full`), {runs} run(s): {} ms; **median {med:.0} ms** \
         ({:.0} residents/s).\n\nReport of the last run: `{report_text}`\n",
        times
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(" / "),
        target as f64 / (med / 1e3),
    );
    // Reported only when named: otherwise the import only builds the world for the later
    // benchmarks, once, and that run's time is not for the record.
    if timed {
        rep.metric("import_20k_median", med, "ms");
        rep.metric(
            "import_20k_residents_per_s",
            target as f64 / (med / 1e3),
            "1/s",
        );
        rep.row(
            "Import a 20,000-resident roster",
            "< 1 s",
            format!("{:.0} ms (median of {runs})", med),
            "—".into(),
            yes(med < 1000.0),
        );
        rep.section(&md);
    }
    // Reopen the world at synchronous=NORMAL: the later benchmarks only read it or use it as the
    // source of operations, and making those operations need not wait on fsync.
    drop(world_store);
    let store = open_store(&path, options(&clock, Durability::Normal)).expect("reopen");
    let mut residents = Vec::new();
    let mut names = Vec::new();
    {
        let conn = store.connection();
        let mut stmt = conn
            .prepare("SELECT id, full_name FROM residents WHERE deleted = 0 ORDER BY id")
            .expect("sql");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .expect("sql");
        for row in rows {
            let (id, name) = row.expect("row");
            residents.push(Uuid::parse_str(&id).expect("uuid"));
            names.push(name);
        }
    }
    let households: Vec<Uuid> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT id FROM households WHERE deleted = 0 ORDER BY id")
            .expect("sql");
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("sql");
        rows.map(|r| Uuid::parse_str(&r.expect("row")).expect("uuid"))
            .collect()
    };
    assert_eq!(residents.len(), target, "residents in the world store");
    World {
        store,
        clock,
        reference,
        households,
        residents,
        names,
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Name search
// ---------------------------------------------------------------------------------------------

fn search_queries(names: &[String], n: usize) -> Vec<(String, bool)> {
    let mut rng = StdRng::seed_from_u64(SEED + 3);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = names.choose(&mut rng).expect("names");
        let words: Vec<&str> = name.split(' ').collect();
        let q = match i % 4 {
            // Two consecutive words: "Thị Hương", "van hung".
            0 | 1 => {
                let k = rng.gen_range(0..words.len() - 1);
                words[k..k + 2].join(" ")
            }
            // The full name.
            2 => name.clone(),
            // Family name and the start of the given name: "Nguyễn … Phư" → "Nguyễn Văn Phư".
            _ => {
                let last = words[words.len() - 1];
                let prefix: String = last.chars().take(3).collect();
                format!("{} {prefix}", words[words.len() - 2])
            }
        };
        let diacritics = i % 2 == 0;
        out.push(if diacritics {
            (q, true)
        } else {
            (doorstep_core::text::fold(&q), false)
        });
    }
    out
}

fn bench_search(rep: &mut Report, w: &World, quick: bool) {
    rep.begin(3);
    progress("search");
    let n = if quick { 60 } else { 200 };
    let limit = 20;
    let queries = search_queries(&w.names, n);
    // Warm the page cache and the statement cache.
    for (q, _) in queries.iter().take(10) {
        w.store.search_residents(q, limit).expect("search");
    }
    let mut lat = Vec::with_capacity(n);
    let mut lat_folded = Vec::new();
    let mut lat_exact = Vec::new();
    let mut hits = 0usize;
    let mut empty = 0usize;
    for (q, diacritics) in &queries {
        let t = Instant::now();
        let found = w.store.search_residents(q, limit).expect("search");
        let took = ms(t.elapsed());
        lat.push(took);
        if *diacritics {
            lat_exact.push(took);
        } else {
            lat_folded.push(took);
        }
        hits += found.len();
        empty += usize::from(found.is_empty());
    }
    let (m, p95) = (median(&mut lat), pct(&mut lat, 95.0));
    let (mf, me) = (median(&mut lat_folded), median(&mut lat_exact));
    let mut md = String::new();
    let _ = writeln!(md, "## 3. Name search over 20,000 residents\n");
    let _ = writeln!(
        md,
        "`Store::search_residents(query, {limit})` for {n} queries drawn from the roster's names \
         (two consecutive words, a full name, or a word and the first three letters of the \
         given name), half typed with diacritics (\"Thị Hương\"), half folded (\"thi huong\"). \
         {hits} hits in all, {empty} queries with none.\n"
    );
    let _ = writeln!(md, "| queries | median | p95 |");
    let _ = writeln!(md, "| --- | ---: | ---: |");
    let _ = writeln!(md, "| all | {m:.2} ms | {p95:.2} ms |");
    let _ = writeln!(
        md,
        "| folded | {mf:.2} ms | {:.2} ms |",
        pct(&mut lat_folded, 95.0)
    );
    let _ = writeln!(
        md,
        "| with diacritics | {me:.2} ms | {:.2} ms |",
        pct(&mut lat_exact, 95.0)
    );
    rep.section(&md);
    rep.metric("search_median", m, "ms");
    rep.metric("search_p95", p95, "ms");
    rep.metric("search_folded_median", mf, "ms");
    rep.metric("search_diacritics_median", me, "ms");
    rep.row(
        "Name search, 20,000 residents",
        "median < 5 ms",
        format!("{m:.2} ms / p95 {p95:.2} ms"),
        "—".into(),
        yes(m < 5.0),
    );
}

// ---------------------------------------------------------------------------------------------
// 5. My households today (run before 4, which adds 100,000 operations to the world)
// ---------------------------------------------------------------------------------------------

fn bench_mine(rep: &mut Report, w: &mut World, quick: bool) {
    rep.begin(5);
    progress("mine: assigning villages and recording visits");
    let me = w.reference.officers[0];
    for (code, _) in village_codes() {
        w.store
            .assign(me, AssignTarget::Village(code))
            .expect("assign");
    }
    // Visits over the campaign's first two weeks: 1,500 before today, 300 today; a fifth of
    // them ask to come back.
    let mut rng = StdRng::seed_from_u64(SEED + 5);
    let start = NOW_MS as i64 - 13 * DAY_MS;
    let mut visits = 0;
    for k in 0..1800 {
        let at = if k < 1500 {
            start + rng.gen_range(0..13 * DAY_MS)
        } else {
            NOW_MS as i64 - rng.gen_range(0..2 * HOUR_MS)
        };
        let come_back = rng.gen_bool(0.2);
        w.store
            .record_visit(NewVisit {
                household_id: *w.households.choose(&mut rng).expect("households"),
                officer_id: me,
                at_ms: Some(at),
                outcome: if come_back {
                    VisitOutcome::ComeBack
                } else {
                    *OUTCOMES.choose(&mut rng).expect("outcomes")
                },
                revisit_at_ms: come_back.then(|| at + rng.gen_range(HOUR_MS..4 * DAY_MS)),
                note: None,
                location: Some(location(&mut rng)),
            })
            .expect("visit");
        visits += 1;
    }
    let day = w.store.today();
    let n = if quick { 20 } else { 100 };
    let first = w.store.my_households(me, &day).expect("my_households");
    let due = first
        .iter()
        .filter(|h| h.revisit_at_ms.is_some_and(|t| t <= NOW_MS as i64 + DAY_MS))
        .count();
    let today = first.iter().filter(|h| h.visited_today).count();
    progress("mine: measuring");
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let got = w.store.my_households(me, &day).expect("my_households");
        lat.push(ms(t.elapsed()));
        assert_eq!(got.len(), first.len());
    }
    let (m, p95) = (median(&mut lat), pct(&mut lat, 95.0));
    let mut md = String::new();
    let _ = writeln!(md, "## 5. \"My households today\"\n");
    let _ = writeln!(
        md,
        "`Store::my_households(officer, \"{day}\")` for an officer assigned all 20 villages: \
         {} households, 20,000 residents, {visits} visits recorded (300 of them today; a fifth \
         ask to come back) — the list holds {due} households with a revisit due by tomorrow and \
         {today} visited today. {n} calls after one warm-up.\n",
        first.len()
    );
    let _ = writeln!(
        md,
        "| median | p95 |\n| ---: | ---: |\n| {m:.2} ms | {p95:.2} ms |\n\n\
         Where the call's time goes, in instructions, and what moving its sort from SQLite to \
         Rust changed: *Where \"my households today\" spends its time*, below \
         (`scripts/bench-mine.sh`).\n"
    );
    rep.section(&md);
    rep.metric("my_households_median", m, "ms");
    rep.metric("my_households_p95", p95, "ms");
    rep.row(
        &format!("\"My households today\", {} households", first.len()),
        "p95 < 10 ms",
        format!("{m:.2} ms / p95 {p95:.2} ms"),
        "—".into(),
        yes(p95 < 10.0),
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Applying 100,000 operations from another replica
// ---------------------------------------------------------------------------------------------

/// Make `n` operations on the world store: 50 % visits, 30 % assistance steps (a quarter of
/// them failed), 19 % resident edits (phone or note), 1 % retractions.
fn make_ops(w: &mut World, n: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(SEED + 4);
    let mut made = 0usize;
    let mut recent: Vec<Uuid> = Vec::new();
    let officers = w.reference.officers.clone();
    let steps = AssistStep::ALL;
    let failures = FailureReason::ALL;
    let mut kinds = [0usize; 4];
    while made < n {
        w.clock.advance(250);
        let officer = *officers.choose(&mut rng).expect("officers");
        let k = rng.gen_range(0..100);
        let n_ops = match k {
            0..=49 => {
                let id = w
                    .store
                    .record_visit(NewVisit {
                        household_id: *w.households.choose(&mut rng).expect("households"),
                        officer_id: officer,
                        at_ms: None,
                        outcome: *OUTCOMES.choose(&mut rng).expect("outcomes"),
                        revisit_at_ms: None,
                        note: rng
                            .gen_bool(0.3)
                            .then(|| NOTES.choose(&mut rng).expect("notes").to_string()),
                        location: Some(location(&mut rng)),
                    })
                    .expect("visit");
                if recent.len() < 1000 {
                    recent.push(id);
                }
                kinds[0] += 1;
                1
            }
            50..=79 => {
                let step = *steps.choose(&mut rng).expect("steps");
                let failure = rng
                    .gen_bool(0.25)
                    .then(|| *failures.choose(&mut rng).expect("failures"));
                w.store
                    .record_assist(NewAssist {
                        resident_id: *w.residents.choose(&mut rng).expect("residents"),
                        officer_id: officer,
                        at_ms: None,
                        step,
                        failure,
                        receiving_point: (step == AssistStep::Level2Received)
                            .then(|| "Điểm tiếp nhận Công an phường Đô Vinh".to_owned()),
                        note: None,
                    })
                    .expect("assist");
                kinds[1] += 1;
                1
            }
            80..=98 => {
                let edit = if rng.gen_bool(0.6) {
                    ResidentEdit {
                        phone: Some(Some(format!(
                            "{}{:07}",
                            PHONE_PREFIXES.choose(&mut rng).expect("prefixes"),
                            rng.gen_range(0..10_000_000u32)
                        ))),
                        note: None,
                    }
                } else {
                    ResidentEdit {
                        phone: None,
                        note: Some(Some(format!("Hẹn lần {}", rng.gen_range(1..1000)))),
                    }
                };
                kinds[2] += 1;
                w.store
                    .edit_resident(*w.residents.choose(&mut rng).expect("residents"), edit)
                    .expect("edit")
            }
            _ => match recent.pop() {
                Some(id) => {
                    w.store.retract(id, Some("Ghi nhầm hộ")).expect("retract");
                    kinds[3] += 1;
                    1
                }
                None => 0,
            },
        };
        made += n_ops;
    }
    progress(&format!(
        "apply: made {made} ops ({} visits, {} assists, {} edits, {} retractions)",
        kinds[0], kinds[1], kinds[2], kinds[3]
    ));
    made
}

/// `DOORSTEP_BENCH_APPLY_SAVE=DIR`: keep the apply benchmark's inputs — the destination's
/// template (`DIR/template.db`) and the operations (`DIR/ops.bin`, each a little-endian u32
/// length then `Op::encode`) — for `benches/apply_profile.rs`, which applies them under a
/// profiler without rebuilding the world.
fn save_apply_inputs(dir: &Path, template: &Path, ops: &[Op]) {
    std::fs::create_dir_all(dir).expect("create DOORSTEP_BENCH_APPLY_SAVE");
    std::fs::copy(template, dir.join("template.db")).expect("save template");
    let mut out = Vec::new();
    for op in ops {
        let e = op.encode();
        out.extend_from_slice(&(e.len() as u32).to_le_bytes());
        out.extend_from_slice(&e);
    }
    std::fs::write(dir.join("ops.bin"), out).expect("save ops");
    progress(&format!("apply: inputs saved in {}", dir.display()));
}

fn bench_apply(rep: &mut Report, w: &mut World, dir: &Path, quick: bool) {
    rep.begin(4);
    let n = if quick { 20_000 } else { 100_000 };
    let batch = 1000;
    let runs = if quick { 1 } else { 3 };
    // The destination's template: a fresh store holding what the world held before (reference
    // data, roster, earlier visits), applied untimed.
    progress("apply: building the destination template");
    let template = dir.join("apply-template.db");
    let dest_clock = Arc::new(ManualClock::new(NOW_MS + DAY_MS as u64));
    {
        let mut t = open_store(&template, options(&dest_clock, Durability::Full)).expect("open");
        let before = w
            .store
            .all_ops_since(&VersionVector::default())
            .expect("ops");
        for chunk in before.chunks(10_000) {
            t.apply_ops(chunk).expect("apply reference");
        }
    }
    let known = {
        let t = open_store(&template, options(&dest_clock, Durability::Full)).expect("open");
        t.version_vector().expect("vv")
    };
    progress("apply: making the operations on the source replica");
    let t = Instant::now();
    make_ops(w, n);
    let make_ms = ms(t.elapsed());
    let mut ops = w.store.all_ops_since(&known).expect("ops");
    ops.truncate(n);
    assert_eq!(ops.len(), n);
    let bytes: usize = ops.iter().map(|o| o.encode().len()).sum();
    if let Some(save) = std::env::var_os("DOORSTEP_BENCH_APPLY_SAVE") {
        save_apply_inputs(Path::new(&save), &template, &ops);
    }
    let mix = {
        let (mut v, mut a, mut s, mut r) = (0, 0, 0, 0);
        for o in &ops {
            match o.body {
                OpBody::Visit(_) => v += 1,
                OpBody::Assist(_) => a += 1,
                OpBody::Set { .. } => s += 1,
                OpBody::Retract { .. } => r += 1,
                OpBody::Session(_) | OpBody::Outreach(_) | OpBody::Redact(_) => {}
            }
        }
        format!("{v} visits, {a} assistance steps, {s} resident edits, {r} retractions")
    };

    let run = |k: &str, i: usize, batch: usize| -> (f64, Vec<f64>) {
        let path = dir.join(format!("apply-{k}-{i}.db"));
        std::fs::copy(&template, &path).expect("copy template");
        let mut d = open_store(&path, options(&dest_clock, Durability::Full)).expect("open");
        progress(&format!("apply: {k} run {}", i + 1));
        let mut per_batch = Vec::new();
        let t = Instant::now();
        let mut applied = 0;
        for chunk in ops.chunks(batch) {
            let tb = Instant::now();
            let r = d.apply_ops(chunk).expect("apply");
            per_batch.push(ms(tb.elapsed()));
            applied += r.applied;
        }
        let took = t.elapsed();
        assert_eq!(applied, n, "every operation applied");
        drop(d);
        let _ = std::fs::remove_file(&path);
        (n as f64 / took.as_secs_f64(), per_batch)
    };
    let mut batched = Vec::new();
    let mut batch_ms = Vec::new();
    for i in 0..runs {
        let (rate, per) = run("batched", i, batch);
        batched.push(rate);
        batch_ms.extend(per);
    }
    let mut single = Vec::new();
    for i in 0..runs.min(2) {
        single.push(run("single", i, n).0);
    }

    // Baseline: the same number of rows into a visits-shaped table, one transaction.
    let mut rng = StdRng::seed_from_u64(SEED + 44);
    let rows: Vec<Visit> = (0..n)
        .map(|i| Visit {
            id: Uuid::now_v7(),
            household_id: *w.households.choose(&mut rng).expect("households"),
            officer_id: w.reference.officers[i % w.reference.officers.len()],
            at_ms: NOW_MS as i64 + i as i64 * 250,
            outcome: OUTCOMES[i % OUTCOMES.len()],
            revisit_at_ms: None,
            note: matches!(i % 3, 0).then(|| NOTES[i % NOTES.len()].to_owned()),
            location: Some(location(&mut rng)),
        })
        .collect();
    let mut raw_rates = Vec::new();
    for i in 0..runs {
        progress(&format!("apply: raw baseline run {}", i + 1));
        let path = dir.join(format!("apply-raw-{i}.db"));
        let mut conn = raw_db(&path, Durability::Full);
        let t = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        for v in &rows {
            raw_insert_visit(&tx, v);
        }
        tx.commit().expect("commit");
        raw_rates.push(n as f64 / t.elapsed().as_secs_f64());
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }
    let b = median(&mut batched);
    let s = median(&mut single);
    let raw = median(&mut raw_rates);
    let (bm, b99) = (median(&mut batch_ms), pct(&mut batch_ms, 99.0));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## 4. Apply {} operations from another replica\n",
        thousands(n as f64)
    );
    let _ = writeln!(
        md,
        "Operations made on a source replica through the write API ({make_ms:.0} ms, not \
         timed): {mix}; {} bytes encoded ({:.0} B/op). Applied with `Store::apply_ops` into a \
         fresh file store (`Durability::Full`) that already holds the reference data, the \
         roster and the earlier visits (copied from a template, untimed). Baseline: raw \
         rusqlite `INSERT` of {} rows into a table with the columns and indexes of `visits`, \
         one transaction, same pragmas. Medians of {runs} run(s) (single batch: {} run(s)).\n",
        thousands(bytes as f64),
        bytes as f64 / n as f64,
        thousands(n as f64),
        runs.min(2),
    );
    let _ = writeln!(md, "| how | ops/s (rows/s) | ratio to raw insert |");
    let _ = writeln!(md, "| --- | ---: | ---: |");
    let _ = writeln!(
        md,
        "| `apply_ops`, batches of {batch} | {} | {:.2}× slower |",
        thousands(b),
        raw / b
    );
    let _ = writeln!(
        md,
        "| `apply_ops`, one batch of {} | {} | {:.2}× slower |",
        thousands(n as f64),
        thousands(s),
        raw / s
    );
    let _ = writeln!(
        md,
        "| raw `INSERT`, one transaction | {} | 1 |",
        thousands(raw)
    );
    let _ = writeln!(
        md,
        "\nOne batch of {batch} (incl. its commit): median {bm:.1} ms, p99 {b99:.1} ms.\n\n\
         Where the time goes, in instructions and in writes per batch, and what changed: *Where \
         applying another replica's operations spends its time*, below \
         (`scripts/bench-apply.sh`).\n"
    );
    rep.section(&md);
    rep.metric("apply_batched_ops_per_s", b, "1/s");
    rep.metric("apply_single_batch_ops_per_s", s, "1/s");
    rep.metric("apply_raw_rows_per_s", raw, "1/s");
    rep.metric("apply_ratio_raw_over_batched", raw / b, "x");
    rep.metric("apply_batch_median", bm, "ms");
    rep.metric("apply_batch_p99", b99, "ms");
    rep.metric("apply_bytes_per_op", bytes as f64 / n as f64, "B");
    rep.row(
        &format!(
            "Apply {} ops from another replica, batches of {batch}",
            thousands(n as f64)
        ),
        // Issue #15: ≥ 60,000 ops/s in batches of 1,000, ≥ 100,000 in one batch.
        "≥ 60,000 ops/s",
        format!("{} ops/s", thousands(b)),
        format!("raw insert {:.1}× faster", raw / b),
        yes(b >= 60_000.0),
    );
    rep.row(
        &format!("Apply {} ops, one batch", thousands(n as f64)),
        "≥ 100,000 ops/s",
        format!("{} ops/s", thousands(s)),
        format!("raw insert {:.1}× faster", raw / s),
        yes(s >= 100_000.0),
    );
}

// ---------------------------------------------------------------------------------------------
// Environment and main
// ---------------------------------------------------------------------------------------------

fn main() {
    let mut quick = false;
    let mut only: Vec<String> = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            s if s.starts_with('-') => {
                eprintln!(
                    "unknown option {s}; usage: core [--quick] [visit|import|search|mine|apply]..."
                );
                std::process::exit(2);
            }
            s => only.push(s.to_owned()),
        }
    }
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    // DOORSTEP_BENCH_KEEP=1 keeps the files for a look afterwards (the path is printed).
    let (_tmp, dir) = bench_dir("doorstep-bench-");
    let dir = dir.as_path();
    let started = Instant::now();
    let mut rep = Report::default();

    let env = environment(dir);
    let mut md = String::from("## Environment\n\n| | |\n| --- | --- |\n");
    for (k, v) in &env {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    if let Some(p) = extra_pragmas() {
        let _ = writeln!(
            md,
            "| extra pragmas | **`{p}`** (DOORSTEP_BENCH_PRAGMAS: a what-if, not the store's configuration) |"
        );
    }
    if quick {
        md.push_str("| mode | **--quick** (smaller N: smoke test, not for the record) |\n");
    }
    rep.section(&md);

    if want("visit") {
        bench_visit(&mut rep, dir, quick);
    }
    if want("import") || want("search") || want("mine") || want("apply") {
        let mut world = bench_import(&mut rep, dir, quick, want("import"));
        if want("search") {
            bench_search(&mut rep, &world, quick);
        }
        if want("mine") {
            bench_mine(&mut rep, &mut world, quick);
        }
        if want("apply") {
            bench_apply(&mut rep, &mut world, dir, quick);
        }
    }

    rep.sections.sort_by_key(|(n, _)| *n);
    for (_, md) in &rep.sections {
        println!("{md}");
    }
    println!("Whole run: {:.0} s.\n", started.elapsed().as_secs_f64());
    for (k, v) in &env {
        println!("ENV\t{k}\t{v}");
    }
    rep.summary.sort_by_key(|(n, _)| *n);
    for (_, r) in &rep.summary {
        println!("SUMMARY\t{}", r.join("\t"));
    }
    for (name, value, unit) in &rep.metrics {
        println!("METRIC {name} {value:.4} {unit}");
    }
}
