//! Benchmarks of the sync server, each against a baseline measured in the same run.
//!
//! Run with `cargo bench -p doorstep-server --bench sync -- [--quick]`. `scripts/bench.sh` runs
//! it and adds its sections and summary rows to `docs/benchmarks.md`.
//!
//! Output on stdout: Markdown (one section per benchmark), then machine-readable lines:
//! `ENV<TAB>key<TAB>value`, `SUMMARY<TAB>what<TAB>goal<TAB>measured<TAB>ratio<TAB>met` and
//! `METRIC name value unit`. Progress goes to stderr.
//!
//! The world: the official Ninh Thuận units plus 5 villages under each of the first communes,
//! 4 field officers per village (one device each, 1,000 devices), 120 households of 3
//! residents per village. A "day" of one device is 30 visits, 60 assistance steps and 100
//! field edits (phone, note, address), made with the core's write API. Making 1,000 days with
//! the write API would take minutes, so a few template devices make theirs and every device's
//! day is a template day re-stamped: its own replica id, fresh visit/assistance ids, its own
//! officer, households and residents (operations are plain data). The server is the real
//! `SqliteBackend` on a temporary file (`Durability::Full`, as `doorstep serve` opens it) behind
//! the real router on 127.0.0.1; its starting database (units, roster, officers, enrolled
//! devices) is prepared once and copied for every run.

use automerge::sync::{Message as AmMessage, State as AmState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ScalarValue, ROOT};
use chrono::{Duration as Days, Utc};
use doorstep_core::sync::{SyncConfig, SyncReport};
use doorstep_core::wire::{
    PullResponse, PushRequest, PushResponse, POSTCARD_MEDIA_TYPE, PROTOCOL_VERSION,
};
use doorstep_core::*;
use doorstep_server::backend::{DeviceAuth, Enrolment, CLI_ACTOR, MAX_GROUP_PUSHES};
use doorstep_server::SqliteBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SEED: u64 = 0x5E4C_D00E_2025;
const HOUR_MS: u64 = 3600 * 1000;

const DEVICES_PER_VILLAGE: usize = 4;
const VILLAGES_PER_COMMUNE: usize = 5;
const HH_PER_VILLAGE: usize = 120;
const RES_PER_HH: usize = 3;
const VISITS: usize = 30;
const ASSISTS: usize = 60;
const EDITS: usize = 100;
const DAY_OPS: usize = VISITS + ASSISTS + EDITS;
/// Template devices whose days are re-stamped for every device.
const TEMPLATES: usize = 8;
/// The zstd level the core's sync client uses.
const ZSTD_LEVEL: i32 = 3;
/// Device days per transaction in the group-commit what-if.
const GROUP: usize = 10;

/// The official units; villages are added by [`units_csv`].
const UNITS_CSV: &str = include_str!("../../data/ninh-thuan-2023-units.csv");

struct Sizes {
    devices: usize,
    /// Runs of each ingest variant (interleaved).
    runs: usize,
    /// Concurrent client threads pushing in the ingest benchmark.
    threads: usize,
    /// Devices timed in the day-sync benchmark (each kind).
    sync_runs: usize,
    /// Device days modelled in automerge.
    automerge_days: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                devices: 100,
                runs: 1,
                threads: 8,
                sync_runs: 4,
                automerge_days: 2,
            }
        } else {
            Sizes {
                devices: 1000,
                runs: 3,
                threads: 8,
                sync_runs: 20,
                automerge_days: 8,
            }
        }
    }
    fn villages(&self) -> usize {
        self.devices / DEVICES_PER_VILLAGE
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and reporting (shared with core/benches/core.rs)
// ---------------------------------------------------------------------------------------------

#[path = "../../core/benches/support/report.rs"]
mod report;
use report::*;

fn wall_ms() -> u64 {
    doorstep_server::now_ms() as u64
}

// ---------------------------------------------------------------------------------------------
// The world: units, campaign, officers, roster
// ---------------------------------------------------------------------------------------------

/// Commune codes of the official list, in file order.
fn communes() -> Vec<String> {
    UNITS_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols.get(2) == Some(&"commune")).then(|| cols[0].to_owned())
        })
        .collect()
}

/// `villages` village codes: 5 under each of the first communes.
fn village_codes(villages: usize) -> Vec<String> {
    let communes = communes();
    assert!(
        villages <= communes.len() * VILLAGES_PER_COMMUNE,
        "not enough communes for {villages} villages"
    );
    (0..villages)
        .map(|i| {
            format!(
                "{}-{:02}",
                communes[i / VILLAGES_PER_COMMUNE],
                i % VILLAGES_PER_COMMUNE + 1
            )
        })
        .collect()
}

fn units_csv(villages: &[String]) -> String {
    let mut s = UNITS_CSV.trim_end().to_owned();
    s.push('\n');
    for (i, v) in villages.iter().enumerate() {
        let _ = writeln!(
            s,
            "{v},{},village,thôn,Thôn {}",
            &v[..5],
            i % VILLAGES_PER_COMMUNE + 1
        );
    }
    s
}

const SURNAMES: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Huỳnh", "Ngô",
    "Dương", "Lý", "Châu", "Đàng", "Thành", "Quảng",
];
const MIDDLE_M: &[&str] = &["Văn", "Hữu", "Đức", "Minh", "Quốc", "Công"];
const MIDDLE_F: &[&str] = &["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ"];
const GIVEN: &[&str] = &[
    "An", "Bình", "Cường", "Dung", "Em", "Phương", "Giang", "Hoa", "Hùng", "Lan", "Long", "Mai",
    "Nam", "Oanh", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trung", "Uyên", "Vinh", "Xuân", "Yến",
];
const STREETS: &[&str] = &[
    "Lê Duẩn",
    "Thống Nhất",
    "Ngô Gia Tự",
    "21 Tháng 8",
    "Trần Phú",
    "Nguyễn Văn Cừ",
    "Yên Ninh",
    "Hải Thượng Lãn Ông",
];
const RELATIONS: &[&str] = &["Chủ hộ", "Vợ", "Chồng", "Con", "Cháu", "Mẹ", "Cha"];
const VISIT_NOTES: &[&str] = &[
    "Chủ hộ đi làm rẫy, hẹn chiều quay lại",
    "Đã hướng dẫn cả nhà cài VNeID",
    "Bà cụ không dùng điện thoại thông minh",
    "Con trai đi làm ăn xa ở TP.HCM",
    "Gia đình đồng ý đăng ký mức 2 tuần sau",
    "Nhà khóa cửa, hàng xóm báo đi đám cưới",
];
const ASSIST_NOTES: &[&str] = &[
    "SIM đăng ký tên người khác",
    "Không nhận được OTP, thử lại sau",
    "Đã chụp ảnh chân dung",
    "Cần mang CCCD gắn chip",
    "Tài khoản đã gắn với máy cũ",
];
const PERSON_NOTES: &[&str] = &[
    "Đi làm ca đêm, chỉ gặp được buổi sáng",
    "Cần người nhà hỗ trợ",
    "Đổi số điện thoại mới",
    "Sinh viên, về quê dịp cuối tuần",
    "Khiếm thị, cần hỗ trợ tại nhà",
];
const HOUSEHOLD_NOTES: &[&str] = &[
    "Nhà trong hẻm, đi từ chợ vào",
    "Có chó dữ, gọi trước khi vào",
    "Hộ nghèo, cần hỗ trợ điện thoại",
    "Hộ kinh doanh, chỉ có người buổi tối",
];
const RECEIVING_POINTS: &[&str] = &["Công an phường", "Điểm tiếp nhận tại nhà văn hóa thôn"];
const PHONE_PREFIXES: &[&str] = &[
    "032", "035", "038", "086", "096", "097", "091", "094", "090",
];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn phone(rng: &mut StdRng) -> String {
    format!(
        "{}{:07}",
        pick(rng, PHONE_PREFIXES),
        rng.gen_range(0..10_000_000u32)
    )
}

/// The reference data and roster, as operations, plus what the template devices need.
struct World {
    villages: Vec<String>,
    units_csv: String,
    /// `officers[village * DEVICES_PER_VILLAGE + slot]`.
    officers: Vec<Uuid>,
    /// Households of each village.
    households: Vec<Vec<Uuid>>,
    /// Residents of each household of each village.
    residents: Vec<Vec<Vec<Uuid>>>,
    /// Campaign, officers, assignments, households and residents, from one "commune station"
    /// replica (counters 1..=n), for `Backend::import_ops`. Units are imported from the CSV.
    seed: Vec<Op>,
    /// The template village: what template devices hold and work in.
    template_ops: Vec<Op>,
    template_officer: Uuid,
    template_households: Vec<Uuid>,
    template_residents: Vec<Vec<Uuid>>,
}

fn clock_options(clock: &Arc<ManualClock>, durability: Durability) -> Options {
    Options {
        durability,
        clock: clock.clone(),
        ..Options::default()
    }
}

fn build_world(sizes: &Sizes, rng: &mut StdRng) -> World {
    let villages = village_codes(sizes.villages());
    let units_csv = units_csv(&villages);
    let clock = Arc::new(ManualClock::new(wall_ms() - 14 * HOUR_MS));
    let mut station =
        Store::open_in_memory(clock_options(&clock, Durability::Normal)).expect("station store");
    station
        .import_units_csv(units_csv.as_bytes())
        .expect("units into the station");
    let today = Utc::now().date_naive();
    let campaign = Uuid::now_v7();
    station
        .put_campaign(CampaignInput {
            id: campaign,
            name: "Cao điểm 80 ngày đêm".into(),
            start_date: today - Days::days(30),
            end_date: today + Days::days(50),
            target: 1000,
            unit_code: "58".into(),
        })
        .expect("campaign");
    // The template village: households and residents made with the write API.
    let template_officer = Uuid::now_v7();
    station
        .put_officer(OfficerInput {
            id: template_officer,
            name: "Cán bộ mẫu".into(),
            role: Role::Field,
            unit_code: villages[0][..5].to_owned(),
        })
        .expect("template officer");
    let mut template_households = Vec::new();
    let mut template_residents = Vec::new();
    for _ in 0..HH_PER_VILLAGE {
        clock.advance(1000);
        let h = Uuid::new_v4();
        station
            .put_household(HouseholdInput {
                id: h,
                code: format!("{:09}", rng.gen_range(0..1_000_000_000u32)),
                village_code: villages[0].clone(),
                address: Some(format!("{} {}", rng.gen_range(1..400), pick(rng, STREETS))),
                head_id: None,
            })
            .expect("household");
        let mut rs = Vec::new();
        for r in 0..RES_PER_HH {
            let id = Uuid::new_v4();
            let male = rng.gen_bool(0.5);
            let year: i32 = rng.gen_range(1940..2010);
            let middle = if male { MIDDLE_M } else { MIDDLE_F };
            let id_number = rng.gen_bool(0.7).then(|| {
                let cg = (if year >= 2000 { 2 } else { 0 }) + i32::from(!male);
                format!(
                    "058{cg}{:02}{:06}",
                    year % 100,
                    rng.gen_range(0..1_000_000u32)
                )
            });
            station
                .put_resident(ResidentInput {
                    id,
                    household_id: h,
                    full_name: format!(
                        "{} {} {}",
                        pick(rng, SURNAMES),
                        pick(rng, middle),
                        pick(rng, GIVEN)
                    ),
                    birth_date: year.to_string(),
                    gender: Some(if male { "nam" } else { "nữ" }.into()),
                    id_number,
                    phone: rng.gen_bool(0.6).then(|| phone(rng)),
                    relation: Some(
                        if r == 0 {
                            "Chủ hộ"
                        } else {
                            pick(rng, RELATIONS)
                        }
                        .into(),
                    ),
                    account: RosterStatus::None,
                    agency: None,
                })
                .expect("resident");
            rs.push(id);
        }
        template_households.push(h);
        template_residents.push(rs);
    }
    let template_ops = station
        .all_ops_since(&VersionVector::default())
        .expect("template ops");
    let template_keys: HashSet<Uuid> = template_households
        .iter()
        .chain(template_residents.iter().flatten())
        .chain(std::iter::once(&template_officer))
        .copied()
        .collect();

    // The real officers and their assignments, one per device.
    let mut officers = Vec::new();
    for (vi, v) in villages.iter().enumerate() {
        for slot in 0..DEVICES_PER_VILLAGE {
            clock.advance(1000);
            let id = Uuid::now_v7();
            station
                .put_officer(OfficerInput {
                    id,
                    name: format!(
                        "{} {} {} {}",
                        pick(rng, SURNAMES),
                        pick(rng, MIDDLE_M),
                        pick(rng, GIVEN),
                        vi * DEVICES_PER_VILLAGE + slot
                    ),
                    role: Role::Field,
                    unit_code: v[..5].to_owned(),
                })
                .expect("officer");
            station
                .assign(id, AssignTarget::Village(v.clone()))
                .expect("assignment");
            officers.push(id);
        }
    }
    let mut seed: Vec<Op> = station
        .all_ops_since(&VersionVector::default())
        .expect("station ops")
        .into_iter()
        .filter(|op| match &op.body {
            OpBody::Set {
                entity: Entity::Unit,
                ..
            } => false,
            OpBody::Set {
                key: Key::Uuid(k), ..
            } => !template_keys.contains(k),
            _ => true,
        })
        .collect();
    // Every village's roster: the template village's operations with fresh ids.
    let roster_template: Vec<&Op> = template_ops
        .iter()
        .filter(|op| {
            matches!(
                &op.body,
                OpBody::Set {
                    entity: Entity::Household | Entity::Resident,
                    ..
                }
            )
        })
        .collect();
    let mut households = Vec::new();
    let mut residents = Vec::new();
    for v in &villages {
        let mut map = HashMap::new();
        let hh: Vec<Uuid> = template_households
            .iter()
            .map(|t| *map.entry(*t).or_insert_with(Uuid::new_v4))
            .collect();
        let rs: Vec<Vec<Uuid>> = template_residents
            .iter()
            .map(|r| {
                r.iter()
                    .map(|t| *map.entry(*t).or_insert_with(Uuid::new_v4))
                    .collect()
            })
            .collect();
        for op in &roster_template {
            seed.push(Op {
                body: remap_body(&op.body, &map, Some(v)),
                ..(*op).clone()
            });
        }
        households.push(hh);
        residents.push(rs);
    }
    let replica = ReplicaId::random();
    for (i, op) in seed.iter_mut().enumerate() {
        op.replica = replica;
        op.counter = i as u64 + 1;
    }
    World {
        villages,
        units_csv,
        officers,
        households,
        residents,
        seed,
        template_ops,
        template_officer,
        template_households,
        template_residents,
    }
}

/// An operation body with its ids mapped through `map` (keys, id-valued fields, the
/// household/resident/officer a fact names), its facts given fresh ids, and, if `village` is
/// given, its village field set to it.
fn remap_body(body: &OpBody, map: &HashMap<Uuid, Uuid>, village: Option<&str>) -> OpBody {
    let m = |u: &Uuid| *map.get(u).unwrap_or(u);
    match body {
        OpBody::Set {
            entity,
            key,
            fields,
        } => OpBody::Set {
            entity: *entity,
            key: match key {
                Key::Uuid(u) => Key::Uuid(m(u)),
                k => k.clone(),
            },
            fields: fields
                .iter()
                .map(|(f, v)| {
                    let v = match (f, v, village) {
                        (Field::Village, _, Some(village)) => Value::Text(village.to_owned()),
                        (_, Value::Text(t), _) => match Uuid::parse_str(t) {
                            Ok(u) if map.contains_key(&u) => Value::Text(m(&u).to_string()),
                            _ => v.clone(),
                        },
                        _ => v.clone(),
                    };
                    (*f, v)
                })
                .collect(),
        },
        OpBody::Visit(v) => OpBody::Visit(Visit {
            id: Uuid::now_v7(),
            household_id: m(&v.household_id),
            officer_id: m(&v.officer_id),
            ..v.clone()
        }),
        OpBody::Assist(a) => OpBody::Assist(Assist {
            id: Uuid::now_v7(),
            resident_id: m(&a.resident_id),
            officer_id: m(&a.officer_id),
            ..a.clone()
        }),
        OpBody::Retract { .. } | OpBody::Redact(_) => body.clone(),
        OpBody::Session(x) => OpBody::Session(doorstep_core::Session {
            id: Uuid::now_v7(),
            officer_id: m(&x.officer_id),
            ..x.clone()
        }),
        OpBody::Outreach(x) => OpBody::Outreach(doorstep_core::Outreach {
            id: Uuid::now_v7(),
            officer_id: m(&x.officer_id),
            ..x.clone()
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// A device's day
// ---------------------------------------------------------------------------------------------

const STEPS: &[AssistStep] = &[
    AssistStep::Level1Guided,
    AssistStep::Level1Activated,
    AssistStep::Level2Received,
    AssistStep::Level2Activated,
    AssistStep::PortalGuided,
];
const FAILURES: &[FailureReason] = &[
    FailureReason::PhoneNotOwnName,
    FailureReason::OtpNotReceived,
    FailureReason::NoChipIdCard,
    FailureReason::BoundToOtherDevice,
];

/// "(14:05)" of the store's clock, so that repeated notes still change the field.
fn hhmm(store: &Store) -> String {
    let t = store.now_ms() / 1000 + 7 * 3600;
    format!("({:02}:{:02})", (t / 3600) % 24, (t / 60) % 60)
}

/// A field officer's day with the write API: per household, a visit, two assistance steps for
/// its residents and three or four field edits (50% phone, 20% resident note, 15% address, 15%
/// household note): 30 visits, 60 steps and 100 edits in all, a few minutes apart.
fn make_day(
    store: &mut Store,
    clock: &ManualClock,
    officer: Uuid,
    hh: &[Uuid],
    res: &[Vec<Uuid>],
    rng: &mut StdRng,
) {
    let mut edit = 0usize;
    for i in 0..VISITS {
        clock.advance(rng.gen_range(4..12) * 60_000);
        let now = store.now_ms();
        let outcome = match rng.gen_range(0..100) {
            0..=69 => VisitOutcome::Met,
            70..=84 => VisitOutcome::NobodyHome,
            85..=94 => VisitOutcome::ComeBack,
            95..=97 => VisitOutcome::Refused,
            _ => VisitOutcome::MovedAway,
        };
        store
            .record_visit(NewVisit {
                household_id: hh[i],
                officer_id: officer,
                at_ms: None,
                outcome,
                revisit_at_ms: (outcome == VisitOutcome::ComeBack)
                    .then_some(now + 20 * HOUR_MS as i64),
                note: rng.gen_bool(0.4).then(|| pick(rng, VISIT_NOTES).to_owned()),
                location: rng.gen_bool(0.9).then(|| Location {
                    lat_e6: 11_565_000 + rng.gen_range(-20_000..20_000),
                    lon_e6: 108_988_000 + rng.gen_range(-20_000..20_000),
                }),
            })
            .expect("visit");
        for &resident in res[i].iter().take(ASSISTS / VISITS) {
            clock.advance(rng.gen_range(2..6) * 60_000);
            let step = STEPS[rng.gen_range(0..STEPS.len())];
            store
                .record_assist(NewAssist {
                    resident_id: resident,
                    officer_id: officer,
                    at_ms: None,
                    step,
                    failure: rng
                        .gen_bool(0.15)
                        .then(|| FAILURES[rng.gen_range(0..FAILURES.len())]),
                    receiving_point: (step == AssistStep::Level2Received)
                        .then(|| pick(rng, RECEIVING_POINTS).to_owned()),
                    note: rng
                        .gen_bool(0.2)
                        .then(|| pick(rng, ASSIST_NOTES).to_owned()),
                })
                .expect("assist");
        }
        let n_edits = EDITS / VISITS + usize::from(i < EDITS % VISITS);
        for k in 0..n_edits {
            clock.advance(rng.gen_range(1..3) * 60_000);
            let r = res[i][k % RES_PER_HH];
            let stamp = hhmm(store);
            let changed = match edit % 20 {
                0..=9 => store.edit_resident(
                    r,
                    ResidentEdit {
                        phone: Some(Some(phone(rng))),
                        note: None,
                    },
                ),
                10..=13 => store.edit_resident(
                    r,
                    ResidentEdit {
                        phone: None,
                        note: Some(Some(format!("{} {stamp}", pick(rng, PERSON_NOTES)))),
                    },
                ),
                14..=16 => store.edit_household(
                    hh[i],
                    HouseholdEdit {
                        address: Some(Some(format!(
                            "{} {}, thôn {}",
                            rng.gen_range(1..400),
                            pick(rng, STREETS),
                            rng.gen_range(1..6)
                        ))),
                        note: None,
                    },
                ),
                _ => store.edit_household(
                    hh[i],
                    HouseholdEdit {
                        address: None,
                        note: Some(Some(format!("{} {stamp}", pick(rng, HOUSEHOLD_NOTES)))),
                    },
                ),
            }
            .expect("edit");
            assert_eq!(changed, 1, "an edit that changed nothing");
            edit += 1;
        }
    }
}

/// Template days: `TEMPLATES` in-memory devices holding the template village make a day each.
fn template_days(w: &World, rng: &mut StdRng) -> Vec<Vec<Op>> {
    (0..TEMPLATES)
        .map(|_| {
            let clock = Arc::new(ManualClock::new(wall_ms() - 10 * HOUR_MS));
            let mut s = Store::open_in_memory(clock_options(&clock, Durability::Normal))
                .expect("template device");
            s.apply_ops(&w.template_ops).expect("template village");
            make_day(
                &mut s,
                &clock,
                w.template_officer,
                &w.template_households[..VISITS],
                &w.template_residents[..VISITS],
                rng,
            );
            let ops = s.own_ops_after(0, 10 * DAY_OPS).expect("own ops");
            assert_eq!(ops.len(), DAY_OPS);
            ops
        })
        .collect()
}

/// The device at `slot` of `village`: its officer, and a template day re-stamped for it.
fn device_day(
    w: &World,
    templates: &[Vec<Op>],
    template: usize,
    village: usize,
    slot: usize,
    replica: ReplicaId,
) -> Vec<Op> {
    let mut map = HashMap::new();
    map.insert(
        w.template_officer,
        w.officers[village * DEVICES_PER_VILLAGE + slot],
    );
    for i in 0..VISITS {
        let h = slot * VISITS + i;
        map.insert(w.template_households[i], w.households[village][h]);
        for (t, r) in w.template_residents[i].iter().zip(&w.residents[village][h]) {
            map.insert(*t, *r);
        }
    }
    templates[template % templates.len()]
        .iter()
        .map(|op| Op {
            replica,
            counter: op.counter,
            hlc: op.hlc,
            body: remap_body(&op.body, &map, None),
        })
        .collect()
}

/// A push body exactly as `doorstep_core::sync` sends it: postcard, then zstd level 3.
fn push_body(ops: &[Op]) -> (usize, Vec<u8>) {
    let raw = postcard::to_allocvec(&PushRequest {
        protocol: PROTOCOL_VERSION,
        device_time_ms: wall_ms() as i64,
        ops: ops.to_vec(),
        segments: Vec::new(),
    })
    .expect("encode push");
    let z = zstd::encode_all(&raw[..], ZSTD_LEVEL).expect("zstd");
    (raw.len(), z)
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

struct Device {
    auth: DeviceAuth,
    token: String,
    village: usize,
    ops: Vec<Op>,
    /// Postcard size of its push request.
    raw_len: usize,
    /// What goes on the wire: postcard + zstd.
    body: Vec<u8>,
}

/// Prepare the starting database: units, roster, officers, and an enrolled device per
/// `(replica, officer)`. Made with `synchronous=OFF` to save time; the runs open copies with
/// the server's own settings.
fn prepare_db(path: &Path, w: &World, enrol: &[(ReplicaId, Uuid)]) -> Vec<(DeviceAuth, String)> {
    let now = wall_ms() as i64;
    let b = SqliteBackend::open(path).expect("open the template database");
    b.with_store(|s| s.connection().pragma_update(None, "synchronous", "OFF"))
        .expect("lock")
        .expect("pragma");
    let (rows, rejected) = b
        .import_units(CLI_ACTOR, w.units_csv.as_bytes(), now)
        .expect("units");
    assert_eq!(rejected, 0);
    assert!(rows as usize > w.villages.len());
    let n = b.import_ops(CLI_ACTOR, &w.seed, now).expect("seed");
    assert_eq!(n as usize, w.seed.len());
    enrol
        .iter()
        .map(|(replica, officer)| {
            let code = b
                .issue_enrol_code(CLI_ACTOR, *officer, 60, now)
                .expect("code")
                .code;
            let e = b
                .enrol(
                    Enrolment {
                        code,
                        device_name: "Galaxy A05".into(),
                        replica: replica.0,
                        device_time_ms: now,
                        public_key: None,
                    },
                    now,
                )
                .expect("enrol");
            (
                DeviceAuth {
                    device_id: e.device_id,
                    officer_id: e.officer_id,
                    replica: replica.0,
                },
                e.token,
            )
        })
        .collect()
}

/// The real router over a `SqliteBackend` on `db`, on 127.0.0.1, in a 2-worker runtime like
/// `doorstep serve` on this 2-core machine.
struct Server {
    base: String,
    backend: Arc<SqliteBackend>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start(db: &Path) -> Server {
        let backend = Arc::new(SqliteBackend::open(db).expect("open the server database"));
        let state = doorstep_server::state(
            backend.clone(),
            doorstep_server::http::DEFAULT_MAX_BODY_BYTES,
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(doorstep_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        Server {
            base: format!("http://{addr}"),
            backend,
            rt: Some(rt),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    applied: u64,
    duplicates: u64,
    rejected: u64,
    /// Bytes written (WAL frames and checkpoints), where measured.
    written: u64,
}

/// Every device pushes its day's body to the server over HTTP, `threads` devices at a time.
fn ingest_http(server: &Server, devices: &[Device], threads: usize) -> (Duration, Totals) {
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(threads + 1);
    let url = format!("{}/v1/sync/push", server.base);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (next, barrier, url) = (&next, &barrier, &url);
                scope.spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(120))
                        .build()
                        .expect("client");
                    let mut t = Totals::default();
                    barrier.wait();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(d) = devices.get(i) else { break };
                        let resp = http
                            .post(url)
                            .header("content-type", POSTCARD_MEDIA_TYPE)
                            .header("content-encoding", "zstd")
                            .header("accept-encoding", "zstd")
                            .bearer_auth(&d.token)
                            .body(d.body.clone())
                            .send()
                            .expect("push");
                        let status = resp.status();
                        let zstd_body = resp
                            .headers()
                            .get("content-encoding")
                            .is_some_and(|v| v.as_bytes() == b"zstd");
                        let bytes = resp.bytes().expect("answer");
                        assert!(status.is_success(), "push answered {status}");
                        let bytes = if zstd_body {
                            zstd::decode_all(&bytes[..]).expect("unzstd")
                        } else {
                            bytes.to_vec()
                        };
                        let r: PushResponse = postcard::from_bytes(&bytes).expect("answer");
                        assert_eq!(r.acked_counter, d.ops.len() as u64);
                        t.applied += r.applied;
                        t.duplicates += r.duplicates;
                        t.rejected += r.rejected.len() as u64;
                    }
                    t
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut total = Totals::default();
        for h in handles {
            let t = h.join().expect("client thread");
            total.applied += t.applied;
            total.duplicates += t.duplicates;
            total.rejected += t.rejected;
        }
        (t0.elapsed(), total)
    })
}

/// Baseline: the same operations straight into a core store on a copy of the same database
/// with `Store::apply_ops` (no HTTP, no auth, no scope check, no feed rows, one thread),
/// `group` devices' days per transaction (1: one per push, as the server commits).
fn ingest_apply(db: &Path, devices: &[Device], group: usize) -> (Duration, Totals) {
    let mut store = Store::open(db, Options::default()).expect("open");
    let batches: Vec<Vec<Op>> = devices
        .chunks(group)
        .map(|c| c.iter().flat_map(|d| d.ops.iter().cloned()).collect())
        .collect();
    let w0 = written();
    let t0 = Instant::now();
    let mut t = Totals::default();
    for ops in &batches {
        let r = store.apply_ops(ops).expect("apply");
        t.applied += r.applied as u64;
        t.duplicates += r.duplicates as u64;
    }
    let d = t0.elapsed();
    t.written = written().saturating_sub(w0);
    (d, t)
}

/// Bytes this process has passed to `write`/`pwrite` so far (`/proc/self/io`, Linux).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Middle point: `Backend::push` called directly (auth done, scope check and feed rows
/// included, no HTTP, no decoding, one thread).
fn ingest_backend(db: &Path, devices: &[Device]) -> (Duration, Totals) {
    let b = SqliteBackend::open(db).expect("open");
    let batches: Vec<Vec<Op>> = devices.iter().map(|d| d.ops.clone()).collect();
    let now = wall_ms() as i64;
    let w0 = written();
    let t0 = Instant::now();
    let mut t = Totals::default();
    for (d, ops) in devices.iter().zip(batches) {
        let r = b.push(&d.auth, ops, now, now).expect("push");
        t.applied += r.applied;
        t.duplicates += r.duplicates;
        t.rejected += r.rejected.len() as u64;
    }
    let d = t0.elapsed();
    t.written = written().saturating_sub(w0);
    (d, t)
}

fn copy_db(template: &Path, to: &Path) {
    std::fs::copy(template, to).expect("copy the template database");
}

// ---------------------------------------------------------------------------------------------
// Automerge: the same day as an automerge document
// ---------------------------------------------------------------------------------------------

/// Builds an automerge document the way an app would model Doorstep's data: maps
/// `households`, `residents`, `visits`, `assists` at the root, each keyed by the entity's UUID
/// (text, as map keys must be), each entry a map of its fields; every Doorstep operation is
/// one automerge commit (one user action = one transaction, as in the store).
struct AmDoc {
    doc: AutoCommit,
    roots: HashMap<&'static str, ObjId>,
    entities: HashMap<Uuid, ObjId>,
}

impl AmDoc {
    fn new() -> AmDoc {
        AmDoc {
            doc: AutoCommit::new(),
            roots: HashMap::new(),
            entities: HashMap::new(),
        }
    }

    fn fork(&mut self) -> AmDoc {
        AmDoc {
            doc: self.doc.fork(),
            roots: self.roots.clone(),
            entities: self.entities.clone(),
        }
    }

    fn root(&mut self, name: &'static str) -> ObjId {
        if let Some(o) = self.roots.get(name) {
            return o.clone();
        }
        let o = self
            .doc
            .put_object(ROOT, name, ObjType::Map)
            .expect("root map");
        self.roots.insert(name, o.clone());
        o
    }

    fn entity(&mut self, root: &'static str, id: Uuid) -> ObjId {
        if let Some(o) = self.entities.get(&id) {
            return o.clone();
        }
        let r = self.root(root);
        let o = self
            .doc
            .put_object(&r, id.to_string(), ObjType::Map)
            .expect("entity map");
        self.entities.insert(id, o.clone());
        o
    }

    fn put(&mut self, obj: &ObjId, key: &str, v: ScalarValue) {
        self.doc.put(obj, key, v).expect("put");
    }

    /// Apply one Doorstep operation as one commit.
    fn apply(&mut self, op: &Op) {
        let s = |t: &str| ScalarValue::Str(t.into());
        match &op.body {
            OpBody::Set {
                entity,
                key: Key::Uuid(id),
                fields,
            } => {
                let root = match entity {
                    Entity::Household => "households",
                    Entity::Resident => "residents",
                    _ => "other",
                };
                let obj = self.entity(root, *id);
                for (f, v) in fields {
                    let v = match v {
                        Value::Null => ScalarValue::Null,
                        Value::Int(i) => ScalarValue::Int(*i),
                        Value::Text(t) => s(t),
                    };
                    self.put(&obj, f.as_str(), v);
                }
            }
            OpBody::Visit(v) => {
                let obj = self.entity("visits", v.id);
                self.put(&obj, "household_id", s(&v.household_id.to_string()));
                self.put(&obj, "officer_id", s(&v.officer_id.to_string()));
                self.put(&obj, "at", ScalarValue::Timestamp(v.at_ms));
                self.put(&obj, "outcome", s(v.outcome.as_str()));
                if let Some(t) = v.revisit_at_ms {
                    self.put(&obj, "revisit_at", ScalarValue::Timestamp(t));
                }
                if let Some(n) = &v.note {
                    self.put(&obj, "note", s(n));
                }
                if let Some(l) = v.location {
                    self.put(&obj, "lat_e6", ScalarValue::Int(l.lat_e6.into()));
                    self.put(&obj, "lon_e6", ScalarValue::Int(l.lon_e6.into()));
                }
            }
            OpBody::Assist(a) => {
                let obj = self.entity("assists", a.id);
                self.put(&obj, "resident_id", s(&a.resident_id.to_string()));
                self.put(&obj, "officer_id", s(&a.officer_id.to_string()));
                self.put(&obj, "at", ScalarValue::Timestamp(a.at_ms));
                self.put(&obj, "step", s(a.step.as_str()));
                if let Some(f) = a.failure {
                    self.put(&obj, "failure", s(f.as_str()));
                }
                if let Some(p) = &a.receiving_point {
                    self.put(&obj, "receiving_point", s(p));
                }
                if let Some(n) = &a.note {
                    self.put(&obj, "note", s(n));
                }
            }
            _ => unreachable!("no other operations in a day"),
        }
        self.doc.commit();
    }
}

#[derive(Default, Clone, Copy)]
struct AmSync {
    bytes: usize,
    zstd_bytes: usize,
    messages: usize,
    /// Messages carrying a whole saved document (a chunk of type 0 after automerge's magic
    /// bytes) rather than changes.
    whole_doc: usize,
}

/// Sync `a` into `b` with automerge's sync protocol (fresh sync states on both sides, as on a
/// new connection) until neither has anything to send; count every message both ways.
fn am_sync(a: &mut AutoCommit, b: &mut AutoCommit) -> AmSync {
    let mut sa = AmState::new();
    let mut sb = AmState::new();
    let mut out = AmSync::default();
    fn count(m: AmMessage, out: &mut AmSync) -> AmMessage {
        let enc = m.encode();
        out.bytes += enc.len();
        out.zstd_bytes += zstd::encode_all(&enc[..], ZSTD_LEVEL).expect("zstd").len();
        out.messages += 1;
        out.whole_doc += usize::from(
            enc.windows(9)
                .any(|w| w[..4] == [0x85, 0x6f, 0x4a, 0x83] && w[8] == 0),
        );
        AmMessage::decode(&enc).expect("decode")
    }
    for _ in 0..100 {
        let mut quiet = true;
        if let Some(m) = a.sync().generate_sync_message(&mut sa) {
            let m = count(m, &mut out);
            b.sync().receive_sync_message(&mut sb, m).expect("receive");
            quiet = false;
        }
        if let Some(m) = b.sync().generate_sync_message(&mut sb) {
            let m = count(m, &mut out);
            a.sync().receive_sync_message(&mut sa, m).expect("receive");
            quiet = false;
        }
        if quiet {
            break;
        }
    }
    assert_eq!(
        a.get_heads(),
        b.get_heads(),
        "automerge sync did not converge"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Benchmark 1 and 2 (push side): ingest
// ---------------------------------------------------------------------------------------------

struct Ctx {
    dir: PathBuf,
    world: World,
    templates: Vec<Vec<Op>>,
    template_db: PathBuf,
    devices: Vec<Device>,
    /// Devices of benchmark 3 that synced in the morning (before the ingest), by village.
    evening: Vec<(usize, PathBuf, String)>,
}

fn prepare(sizes: &Sizes, dir: &Path, rep: &mut Report) -> Ctx {
    let mut rng = StdRng::seed_from_u64(SEED);
    let t = Instant::now();
    let world = build_world(sizes, &mut rng);
    let t_world = t.elapsed();
    let t = Instant::now();
    let templates = template_days(&world, &mut rng);
    let t_templates = t.elapsed();
    progress(&format!(
        "world: {} seed operations ({:.1} s); {TEMPLATES} template days ({:.1} s)",
        world.seed.len(),
        t_world.as_secs_f64(),
        t_templates.as_secs_f64()
    ));
    // 1,000 ingest devices (every slot of every village) and the morning devices of
    // benchmark 3 (a second phone of slot 0, every other village from 0).
    let t = Instant::now();
    let villages = sizes.villages();
    let mut plan: Vec<(usize, usize, ReplicaId)> = Vec::new();
    for v in 0..villages {
        for slot in 0..DEVICES_PER_VILLAGE {
            plan.push((v, slot, ReplicaId::random()));
        }
    }
    let stride = (villages / (2 * sizes.sync_runs)).max(1);
    let mut evening_stores = Vec::new();
    for k in 0..sizes.sync_runs {
        let v = (2 * k * stride) % villages;
        let path = dir.join(format!("evening-{k}.db"));
        let s = Store::open(&path, Options::default()).expect("evening device");
        evening_stores.push((v, path, s.replica_id()));
    }
    let mut enrol: Vec<(ReplicaId, Uuid)> = plan
        .iter()
        .map(|(v, slot, r)| (*r, world.officers[v * DEVICES_PER_VILLAGE + slot]))
        .collect();
    enrol.extend(
        evening_stores
            .iter()
            .map(|(v, _, r)| (*r, world.officers[v * DEVICES_PER_VILLAGE])),
    );
    let template_db = dir.join("template.db");
    let auths = prepare_db(&template_db, &world, &enrol);
    let t_db = t.elapsed();
    let t = Instant::now();
    let devices: Vec<Device> = plan
        .iter()
        .zip(&auths)
        .enumerate()
        .map(|(i, ((v, slot, replica), (auth, token)))| {
            let ops = device_day(&world, &templates, i, *v, *slot, *replica);
            let (raw_len, body) = push_body(&ops);
            Device {
                auth: auth.clone(),
                token: token.clone(),
                village: *v,
                ops,
                raw_len,
                body,
            }
        })
        .collect();
    let evening = evening_stores
        .into_iter()
        .zip(&auths[plan.len()..])
        .map(|((v, path, _), (_, token))| (v, path, token.clone()))
        .collect();
    let db_mb = std::fs::metadata(&template_db).map_or(0, |m| m.len()) as f64 / 1e6;
    progress(&format!(
        "server database ({db_mb:.0} MB, {:.1} s); {} device days re-stamped and encoded ({:.1} s)",
        t_db.as_secs_f64(),
        devices.len(),
        t.elapsed().as_secs_f64()
    ));
    rep.begin(0);
    let mut md = String::from("### Setup\n\n");
    let _ = writeln!(
        md,
        "{} villages (5 per commune under the official Ninh Thuận units), {} households of {} residents each per village, {} field officers per village with one device each ({} devices). \
         Server database prepared once ({:.0} MB: units, {} operations for the campaign, officers, assignments, households and residents, {} enrolled devices) and copied for every run; \
         the server opens each copy with `SqliteBackend::open` (`Durability::Full`, WAL). A device's day, {} operations: {} visits, {} assistance steps, {} field edits (50% phone, 20% resident note, 15% address, 15% household note), one write-API call each. \
         {} template devices made their day with the write API ({:.1} s); every device's day is one of them re-stamped with its own replica id, fresh visit/assistance UUIDs (v7), its officer and its own 30 households and their residents.\n",
        villages,
        HH_PER_VILLAGE,
        RES_PER_HH,
        DEVICES_PER_VILLAGE,
        thousands(sizes.devices as f64),
        db_mb,
        thousands(world.seed.len() as f64),
        enrol.len(),
        DAY_OPS,
        VISITS,
        ASSISTS,
        EDITS,
        TEMPLATES,
        t_templates.as_secs_f64(),
    );
    rep.section(&md);
    Ctx {
        dir: dir.to_owned(),
        world,
        templates,
        template_db,
        devices,
        evening,
    }
}

/// Benchmark 1, then benchmark 3 on the server the last HTTP run leaves behind.
fn bench_ingest_and_sync(rep: &mut Report, ctx: &Ctx, sizes: &Sizes) {
    let n_ops: usize = ctx.devices.iter().map(|d| d.ops.len()).sum();
    let mut http = Vec::new();
    let mut apply = Vec::new();
    let mut backend = Vec::new();
    let mut apply_written = Vec::new();
    let mut grouped = Vec::new();
    let mut grouped_written = Vec::new();
    let mut backend_written = Vec::new();
    let mut last_server = None;
    for run in 0..sizes.runs {
        // HTTP.
        let db = ctx.dir.join(format!("http-{run}.db"));
        copy_db(&ctx.template_db, &db);
        let server = Server::start(&db);
        if run + 1 == sizes.runs {
            // Benchmark 3's devices sync in the morning with the server they sync with in
            // the evening (their cursors are per server URL).
            morning_syncs(ctx, &server);
        }
        let (d, t) = ingest_http(&server, &ctx.devices, sizes.threads);
        assert_eq!(
            t,
            Totals {
                applied: n_ops as u64,
                ..Totals::default()
            },
            "every operation applied, none rejected"
        );
        let (groups, in_groups) = server.backend.push_groups();
        progress(&format!(
            "run {}: HTTP ingest {:.1} s ({} ops/s); {} pushes committed in {} groups",
            run + 1,
            d.as_secs_f64(),
            thousands(n_ops as f64 / d.as_secs_f64()),
            in_groups,
            groups
        ));
        http.push(d);
        if run + 1 == sizes.runs {
            last_server = Some((server, db));
        } else {
            drop(server);
            let _ = remove_db(&db);
        }
        // apply_ops baseline.
        let db = ctx.dir.join(format!("apply-{run}.db"));
        copy_db(&ctx.template_db, &db);
        let (d, t) = ingest_apply(&db, &ctx.devices, 1);
        assert_eq!(t.applied, n_ops as u64);
        progress(&format!(
            "run {}: apply_ops {:.1} s ({} ops/s)",
            run + 1,
            d.as_secs_f64(),
            thousands(n_ops as f64 / d.as_secs_f64())
        ));
        apply.push(d);
        apply_written.push(t.written as f64 / n_ops as f64);
        let _ = remove_db(&db);
        // One run each (the middle one): `Backend::push` without HTTP, for the decomposition,
        // and `apply_ops` with 10 days a transaction, a what-if for group commit.
        if run != sizes.runs / 2 {
            continue;
        }
        let db = ctx.dir.join(format!("group-{run}.db"));
        copy_db(&ctx.template_db, &db);
        let (d, t) = ingest_apply(&db, &ctx.devices, GROUP);
        assert_eq!(t.applied, n_ops as u64);
        progress(&format!(
            "run {}: apply_ops, {GROUP} days a transaction {:.1} s ({} ops/s)",
            run + 1,
            d.as_secs_f64(),
            thousands(n_ops as f64 / d.as_secs_f64())
        ));
        grouped.push(d);
        grouped_written.push(t.written as f64 / n_ops as f64);
        let _ = remove_db(&db);
        let db = ctx.dir.join(format!("backend-{run}.db"));
        copy_db(&ctx.template_db, &db);
        let (d, t) = ingest_backend(&db, &ctx.devices);
        assert_eq!(t.applied, n_ops as u64);
        assert_eq!(t.rejected, 0);
        progress(&format!(
            "run {}: Backend::push {:.1} s ({} ops/s)",
            run + 1,
            d.as_secs_f64(),
            thousands(n_ops as f64 / d.as_secs_f64())
        ));
        backend.push(d);
        backend_written.push(t.written as f64 / n_ops as f64);
        let _ = remove_db(&db);
    }
    let rate = |ds: &[Duration]| -> (f64, Vec<f64>) {
        let mut xs: Vec<f64> = ds.iter().map(|d| n_ops as f64 / d.as_secs_f64()).collect();
        let all = xs.clone();
        (median(&mut xs), all)
    };
    let (http_r, http_all) = rate(&http);
    let (apply_r, apply_all) = rate(&apply);
    let (backend_r, backend_all) = rate(&backend);
    let (grouped_r, grouped_all) = rate(&grouped);
    let list = |xs: &[f64]| {
        xs.iter()
            .map(|x| thousands(*x))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    rep.begin(1);
    let mut md = format!(
        "### 1. Server ingest: a day of {} devices\n\n",
        thousands(sizes.devices as f64)
    );
    let _ = writeln!(
        md,
        "{} devices each push their day ({} operations, {} in all) as one `POST /v1/sync/push` each, a postcard+zstd body exactly as `doorstep_core::sync` builds it (bodies encoded beforehand: a phone's CPU is not the server's), from {} client threads over loopback HTTP (blocking reqwest, keep-alive) to the real router and `SqliteBackend` in a 2-worker Tokio runtime (`info` logs formatted to a sink, as `doorstep serve` logs). \
         Every push is checked against the officer's scope and filed in the feed; pushes waiting for the store are committed together (group commit: one transaction, each push in a savepoint of its own, at most {MAX_GROUP_PUSHES} a group), a lone push alone; every run checks that all operations were applied and none rejected. \
         Baselines in the same run, interleaved, each on its own copy of the same database: `Store::apply_ops` of the same batches into a core store on the server's database (no auth, scope or feed), and, to split the overhead, `Backend::push` called directly from one thread (scope check and feed rows, no HTTP; one run, to keep the benchmark short). Runs: {}.\n",
        thousands(sizes.devices as f64),
        DAY_OPS,
        thousands(n_ops as f64),
        sizes.threads,
        sizes.runs,
    );
    md.push_str(
        "| how | ops/s, median | runs | ratio to `apply_ops` |\n| --- | ---: | --- | ---: |\n",
    );
    let _ = writeln!(
        md,
        "| HTTP push, {} client threads | {} | {} | {:.2}× |",
        sizes.threads,
        thousands(http_r),
        list(&http_all),
        http_r / apply_r
    );
    let _ = writeln!(
        md,
        "| `Backend::push`, one thread (one run, the middle one) | {} | {} | {:.2}× |",
        thousands(backend_r),
        list(&backend_all),
        backend_r / apply_r
    );
    let _ = writeln!(
        md,
        "| `Store::apply_ops`, one thread | {} | {} | 1 |",
        thousands(apply_r),
        list(&apply_all)
    );
    let _ = writeln!(
        md,
        "| what-if: `Store::apply_ops`, {GROUP} devices' days per transaction (one run) | {} | {} | {:.2}× |",
        thousands(grouped_r),
        list(&grouped_all),
        grouped_r / apply_r
    );
    let _ = writeln!(
        md,
        "\nPer push (median run): {:.1} ms over HTTP, {:.1} ms through `Backend::push`, {:.1} ms in `apply_ops`; `Backend::push` from one thread and `apply_ops` commit one push per transaction (one WAL fsync each); over HTTP the pushes that wait while the store is busy share one. \
         Bytes the process wrote (`/proc/self/io` `wchar`: WAL frames, whole 4 KiB pages, and checkpoints) per operation: {:.0} in `apply_ops`, {:.0} through `Backend::push`, {:.0} in `apply_ops` with {GROUP} days a transaction.\n",
        ms(median_dur(&http)) / sizes.devices as f64,
        ms(median_dur(&backend)) / sizes.devices as f64,
        ms(median_dur(&apply)) / sizes.devices as f64,
        median(&mut apply_written),
        median(&mut backend_written),
        median(&mut grouped_written),
    );
    rep.section(&md);
    rep.metric("sync_ingest_http_ops_per_s", http_r, "ops/s");
    rep.metric("sync_ingest_backend_push_ops_per_s", backend_r, "ops/s");
    rep.metric("sync_ingest_apply_ops_per_s", apply_r, "ops/s");
    rep.metric("sync_ingest_apply_grouped_ops_per_s", grouped_r, "ops/s");
    rep.row(
        &format!(
            "Server ingest: {} devices × {DAY_OPS} ops, HTTP push, {} client threads",
            thousands(sizes.devices as f64),
            sizes.threads
        ),
        "≥ 50,000 ops/s",
        format!("{} ops/s (median of {})", thousands(http_r), sizes.runs),
        format!(
            "{:.2}× `apply_ops` ({} ops/s); `Backend::push` {:.2}×",
            http_r / apply_r,
            thousands(apply_r),
            backend_r / apply_r
        ),
        yes(http_r >= 50_000.0),
    );

    let (server, db) = last_server.expect("a last run");
    bench_day_sync(rep, ctx, sizes, &server);
    drop(server);
    let _ = remove_db(&db);
}

fn median_dur(ds: &[Duration]) -> Duration {
    let mut xs: Vec<f64> = ds.iter().map(|d| d.as_secs_f64()).collect();
    Duration::from_secs_f64(median(&mut xs))
}

fn remove_db(db: &Path) -> std::io::Result<()> {
    for ext in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::remove_file(db)
}

// ---------------------------------------------------------------------------------------------
// Benchmark 3: one device's day sync
// ---------------------------------------------------------------------------------------------

fn config(server: &Server, token: &str) -> SyncConfig {
    SyncConfig::new(&server.base, token)
}

/// The benchmark-3 "evening" devices pull in the morning, before anybody's day is on the
/// server (the last run's server, before its ingest), then record their day with the write API.
fn morning_syncs(ctx: &Ctx, server: &Server) {
    let t = Instant::now();
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x5EED);
    for (v, path, token) in &ctx.evening {
        let mut s = Store::open(path, Options::default()).expect("open");
        let r = doorstep_core::sync::sync(&mut s, &config(server, token), &mut |_| {})
            .expect("morning sync");
        assert!(r.pulled > 0 && r.pushed == 0);
        drop(s);
        let clock = Arc::new(ManualClock::new(wall_ms() - 10 * HOUR_MS));
        let mut s = Store::open(path, clock_options(&clock, Durability::Normal)).expect("open");
        make_day(
            &mut s,
            &clock,
            ctx.world.officers[v * DEVICES_PER_VILLAGE],
            &ctx.world.households[*v][..VISITS],
            &ctx.world.residents[*v][..VISITS],
            &mut rng,
        );
        assert_eq!(s.own_counter() as usize, DAY_OPS);
    }
    progress(&format!(
        "{} morning syncs and days recorded ({:.1} s)",
        ctx.evening.len(),
        t.elapsed().as_secs_f64()
    ));
}

struct SyncSample {
    report: SyncReport,
    wall: Duration,
    /// Time to the end of the first pull, of the push, of the last pull.
    phases: [Duration; 3],
}

/// `sync` with the times its phases end (from its progress callbacks).
fn timed_sync(store: &mut Store, config: &SyncConfig) -> SyncSample {
    let t0 = Instant::now();
    let mut phase = 0usize;
    let mut phases = [Duration::ZERO; 3];
    let report = doorstep_core::sync::sync(store, config, &mut |p| match (phase, p) {
        (0, doorstep_core::sync::SyncProgress::Pulled { more: false, .. }) => {
            phases[0] = t0.elapsed();
            phase = 1;
        }
        (1, doorstep_core::sync::SyncProgress::Pushed { remaining: 0, .. }) => {
            phases[1] = t0.elapsed();
            phase = 2;
        }
        _ => {}
    })
    .expect("sync");
    let wall = t0.elapsed();
    SyncSample {
        report,
        wall,
        phases,
    }
}

/// Median milliseconds of each phase: first pull, push, last pull.
fn phase_medians(samples: &[SyncSample]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (i, o) in out.iter_mut().enumerate() {
        let mut xs: Vec<f64> = samples
            .iter()
            .map(|s| {
                let start = if i == 0 {
                    Duration::ZERO
                } else {
                    s.phases[i - 1]
                };
                let end = if i == 2 { s.wall } else { s.phases[i] };
                ms(end.saturating_sub(start))
            })
            .collect();
        *o = median(&mut xs);
    }
    out
}

fn summarize(samples: &[SyncSample]) -> (f64, f64) {
    let mut xs: Vec<f64> = samples.iter().map(|s| ms(s.wall)).collect();
    let m = median(&mut xs);
    (m, pct(&mut xs, 95.0))
}

fn moved(r: &SyncReport) -> u64 {
    r.pushed + r.push_duplicates + r.pulled + r.pull_duplicates
}

struct PullSplit {
    pages: usize,
    ops: usize,
    reference: usize,
    server: Duration,
    codec: Duration,
    device: Duration,
}

/// A fresh device's first pull, step by step without HTTP: `Backend::pull` on the running
/// server's backend, the wire encoding both ways, the device's apply.
fn split_first_pull(ctx: &Ctx, server: &Server, (village, slot): (usize, usize)) -> PullSplit {
    let now = wall_ms() as i64;
    let path = ctx.dir.join("split.db");
    let mut store = Store::open(&path, Options::default()).expect("store");
    let officer = ctx.world.officers[village * DEVICES_PER_VILLAGE + slot];
    let b = &server.backend;
    let code = b
        .issue_enrol_code(CLI_ACTOR, officer, 60, now)
        .expect("code")
        .code;
    let e = b
        .enrol(
            Enrolment {
                code,
                device_name: "Galaxy A05".into(),
                replica: store.replica_id().0,
                device_time_ms: now,
                public_key: None,
            },
            now,
        )
        .expect("enrol");
    let auth = DeviceAuth {
        device_id: e.device_id,
        officer_id: e.officer_id,
        replica: store.replica_id().0,
    };
    let mut out = PullSplit {
        pages: 0,
        ops: 0,
        reference: 0,
        server: Duration::ZERO,
        codec: Duration::ZERO,
        device: Duration::ZERO,
    };
    let mut cursor: Option<String> = None;
    loop {
        let t = Instant::now();
        let page = b
            .pull(&auth, cursor.as_deref(), 500, now, now)
            .expect("pull");
        out.server += t.elapsed();
        let t = Instant::now();
        let wire = zstd::encode_all(
            &postcard::to_allocvec(&page).expect("encode")[..],
            ZSTD_LEVEL,
        )
        .expect("zstd");
        let page: PullResponse =
            postcard::from_bytes(&zstd::decode_all(&wire[..]).expect("unzstd")).expect("decode");
        out.codec += t.elapsed();
        let t = Instant::now();
        store
            .apply_ops_with_cursor(&page.ops, "split", &page.cursor)
            .expect("apply");
        out.device += t.elapsed();
        out.pages += 1;
        out.ops += page.ops.len();
        out.reference += page
            .ops
            .iter()
            .filter(|o| {
                matches!(
                    &o.body,
                    OpBody::Set {
                        entity: Entity::Unit
                            | Entity::Campaign
                            | Entity::Officer
                            | Entity::Assignment
                            | Entity::Quota,
                        ..
                    }
                )
            })
            .count();
        if !page.has_more {
            break;
        }
        cursor = Some(page.cursor);
    }
    drop(store);
    let _ = remove_db(&path);
    out
}

fn bench_day_sync(rep: &mut Report, ctx: &Ctx, sizes: &Sizes, server: &Server) {
    // (a) Evening: the device pulled in the morning; the server holds every device's day.
    let mut evening = Vec::new();
    for (v, path, token) in &ctx.evening {
        let mut s = Store::open(path, Options::default()).expect("open");
        let sample = timed_sync(&mut s, &config(server, token));
        let report = &sample.report;
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.pushed as usize, DAY_OPS);
        assert_eq!(
            report.pulled as usize,
            DEVICES_PER_VILLAGE * DAY_OPS,
            "the village's other days (village {v})"
        );
        evening.push(sample);
    }
    // (b) Fresh: a store that never synced holds its day (its own replica's operations) and
    // makes its first sync: everything in scope down, its day up, its day back.
    let villages = sizes.villages();
    let stride = (villages / (2 * sizes.sync_runs)).max(1);
    let mut fresh = Vec::new();
    for k in 0..sizes.sync_runs {
        let v = ((2 * k + 1) * stride) % villages;
        let path = ctx.dir.join(format!("fresh-{k}.db"));
        let mut s = Store::open(&path, Options::default()).expect("fresh device");
        let day = device_day(&ctx.world, &ctx.templates, k, v, 1, s.replica_id());
        s.apply_ops(&day).expect("the day");
        assert_eq!(s.own_counter() as usize, DAY_OPS);
        let officer = ctx.world.officers[v * DEVICES_PER_VILLAGE + 1];
        let code = server
            .backend
            .issue_enrol_code(CLI_ACTOR, officer, 60, wall_ms() as i64)
            .expect("code")
            .code;
        let e =
            doorstep_core::sync::enrol(&mut s, &server.base, &code, "Galaxy A05").expect("enrol");
        let sample = timed_sync(&mut s, &config(server, &e.token));
        let report = &sample.report;
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.pushed as usize, DAY_OPS);
        fresh.push(sample);
        drop(s);
        let _ = remove_db(&path);
    }
    let split = split_first_pull(ctx, server, ((stride) % villages, 1));
    let (e_med, e_p95) = summarize(&evening);
    let (f_med, f_p95) = summarize(&fresh);
    let r_e = &evening[0].report;
    let r_f = &fresh[0].report;
    rep.begin(3);
    let mut md = String::from("### 3. One device's day sync\n\n");
    let _ = writeln!(
        md,
        "`doorstep_core::sync::sync` (pull until done, push, pull again; 500 operations a request, postcard+zstd) from a device store in a temporary file (`Durability::Full`, as on a phone) to the server the last ingest run left: it holds the reference data, every village's roster and every device's day ({} operations in all). Wall time of the call, which includes the device applying and committing what it pulls. Medians and p95 over {} devices of each kind, each in a different village.\n\n\
         - **Evening sync**: the device pulled in the morning (before anybody's day reached the server) and recorded its day with the write API ({} operations); the evening sync pulls the {} days of its village's devices ({} operations), pushes its day, and pulls once more.\n\
         - **Fresh device**: a store that never synced holding its day ({} operations of its own replica); its first sync pulls everything in its scope (units, campaign, every officer and assignment of the province, its village's roster and days), pushes its day, and pulls once more.\n",
        thousands((ctx.world.seed.len() + ctx.devices.len() * DAY_OPS) as f64),
        sizes.sync_runs,
        DAY_OPS,
        DEVICES_PER_VILLAGE,
        DEVICES_PER_VILLAGE * DAY_OPS,
        DAY_OPS,
    );
    md.push_str("| sync | median | p95 | first pull / push / last pull (medians) | requests | ops up | ops down (new + duplicate) | bytes up | bytes down |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (name, med, p95, r, ph) in [
        ("evening", e_med, e_p95, r_e, phase_medians(&evening)),
        ("fresh device", f_med, f_p95, r_f, phase_medians(&fresh)),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {med:.1} ms | {p95:.1} ms | {:.1} / {:.1} / {:.1} ms | {} | {} | {} + {} | {} | {} |",
            ph[0],
            ph[1],
            ph[2],
            r.requests,
            r.pushed + r.push_duplicates,
            r.pulled,
            r.pull_duplicates,
            thousands(r.bytes_up as f64),
            thousands(r.bytes_down as f64),
        );
    }
    md.push_str("\n(Requests, operations and bytes of the first device of each kind; the others differ by a few bytes.)\n");
    let _ = writeln!(
        md,
        "\nWhere a fresh device's first pull goes, measured without HTTP on the same server (a new device of the first fresh device's officer, so it also receives that device's day; {} pages of 500, {} operations, of which {} reference data: units, campaign, officers, assignments): the server's `Backend::pull` {:.1} ms in all, postcard+zstd encoding and decoding of the pages {:.1} ms, the device's `apply_ops_with_cursor` into a fresh file store {:.1} ms. The first-pull phase over HTTP took {:.1} ms (median above); the rest is HTTP, loopback and scheduling on 2 cores.\n",
        split.pages,
        split.ops,
        split.reference,
        ms(split.server),
        ms(split.codec),
        ms(split.device),
        phase_medians(&fresh)[0],
    );
    rep.section(&md);
    rep.metric("sync_day_evening_median_ms", e_med, "ms");
    rep.metric("sync_day_evening_p95_ms", e_p95, "ms");
    rep.metric("sync_day_fresh_median_ms", f_med, "ms");
    rep.metric("sync_day_fresh_p95_ms", f_p95, "ms");
    rep.row(
        &format!(
            "One device's day sync, evening ({DAY_OPS} ops up, {} down)",
            moved(r_e) - r_e.pushed - r_e.push_duplicates
        ),
        "< 100 ms (median and p95)",
        format!("{e_med:.1} ms / p95 {e_p95:.1} ms"),
        "—".into(),
        yes(e_p95 < 100.0),
    );
    rep.row(
        &format!(
            "One device's day sync, fresh device ({DAY_OPS} ops up, {} down)",
            moved(r_f) - r_f.pushed - r_f.push_duplicates
        ),
        "< 100 ms (median and p95)",
        format!("{f_med:.1} ms / p95 {f_p95:.1} ms"),
        "—".into(),
        yes(f_p95 < 100.0),
    );

    // The bytes of these syncs, for benchmark 2.
    let per_op = |s: &[SyncSample]| {
        let mut xs: Vec<f64> = s
            .iter()
            .map(|x| (x.report.bytes_up + x.report.bytes_down) as f64 / moved(&x.report) as f64)
            .collect();
        median(&mut xs)
    };
    let e_bpo = per_op(&evening);
    let f_bpo = per_op(&fresh);
    rep.begin(2);
    rep.metric("sync_evening_bytes_per_op", e_bpo, "B/op");
    rep.metric("sync_fresh_bytes_per_op", f_bpo, "B/op");
    rep.row(
        "Bytes per operation, fresh device's first sync (push + pull, both directions, bodies)",
        "≤ 48 B/op",
        format!("{f_bpo:.1} B/op ({} ops moved)", moved(r_f)),
        format!("evening sync {e_bpo:.1} B/op"),
        yes(f_bpo <= 48.0),
    );
    let mut md = String::from("#### Bytes of whole syncs (benchmark 3's devices)\n\n");
    let _ = writeln!(
        md,
        "Request and response bodies as sent (postcard+zstd, `SyncReport::bytes_up`/`bytes_down`; HTTP headers, about 200–300 bytes a request each way, not counted), divided by every operation moved (pushed + pulled, duplicates included). Medians over the devices.\n\n\
         | sync | bytes per operation moved | requests |\n| --- | ---: | ---: |\n\
         | fresh device (first sync with a day of its own) | {f_bpo:.1} | {} |\n\
         | evening (pulled in the morning) | {e_bpo:.1} | {} |\n",
        r_f.requests, r_e.requests
    );
    rep.sections.push((2, md));
}

// ---------------------------------------------------------------------------------------------
// Benchmark 2: bytes per operation, and automerge
// ---------------------------------------------------------------------------------------------

fn kind_of(op: &Op) -> usize {
    match op.body {
        OpBody::Visit(_) => 0,
        OpBody::Assist(_) => 1,
        _ => 2,
    }
}

const KINDS: [&str; 3] = ["visits", "assistance steps", "field edits"];

/// The random bytes of the distinct ids a day names, other than its replica and officer: 16
/// for a v4 id, 74 bits for a v7 id (the rest is its millisecond time and version bits).
fn random_id_bytes(ops: &[Op]) -> f64 {
    let mut ids = HashSet::new();
    for op in ops {
        match &op.body {
            OpBody::Set {
                key: Key::Uuid(k), ..
            } => {
                ids.insert(*k);
            }
            OpBody::Visit(v) => {
                ids.insert(v.id);
                ids.insert(v.household_id);
            }
            OpBody::Assist(a) => {
                ids.insert(a.id);
                ids.insert(a.resident_id);
            }
            _ => {}
        }
    }
    ids.iter()
        .map(|u| {
            if u.get_version_num() == 7 {
                74.0 / 8.0
            } else {
                16.0
            }
        })
        .sum()
}

fn bench_bytes(rep: &mut Report, ctx: &Ctx, sizes: &Sizes) {
    let n_ops: usize = ctx.devices.iter().map(|d| d.ops.len()).sum();
    let raw: usize = ctx.devices.iter().map(|d| d.raw_len).sum();
    let z: usize = ctx.devices.iter().map(|d| d.body.len()).sum();
    let push_bpo = z as f64 / n_ops as f64;
    let mut per_device: Vec<f64> = ctx
        .devices
        .iter()
        .map(|d| d.body.len() as f64 / d.ops.len() as f64)
        .collect();
    let dev_med = median(&mut per_device);
    // Per kind: each kind's operations of a device alone in a push body.
    let sample: Vec<&Device> = ctx.devices.iter().take(50).collect();
    let mut kind_raw = [0usize; 3];
    let mut kind_z = [0usize; 3];
    let mut kind_n = [0usize; 3];
    for d in &sample {
        for (k, ((raw, z), n)) in kind_raw
            .iter_mut()
            .zip(kind_z.iter_mut())
            .zip(kind_n.iter_mut())
            .enumerate()
        {
            let ops: Vec<Op> = d.ops.iter().filter(|o| kind_of(o) == k).cloned().collect();
            let (r, b) = push_body(&ops);
            *raw += r;
            *z += b.len();
            *n += ops.len();
        }
    }
    // The random bits of the ids a day names (facts' v7 ids, households' and residents' ids),
    // each counted once: what no compressor can remove.
    let mut id_floor: Vec<f64> = ctx
        .devices
        .iter()
        .take(50)
        .map(|d| random_id_bytes(&d.ops) / d.ops.len() as f64)
        .collect();
    let id_floor = median(&mut id_floor);

    // Automerge: the same days.
    let t = Instant::now();
    let mut am_empty = Vec::new();
    let mut am_shared = Vec::new();
    let mut am_kind: [Vec<f64>; 3] = Default::default();
    let mut ds_kind: [Vec<f64>; 3] = Default::default();
    let mut am_empty_z = Vec::new();
    let mut am_shared_z = Vec::new();
    let mut msgs = ((0, 0), (0, 0));
    for d in ctx.devices.iter().take(sizes.automerge_days) {
        // (i) Into an empty peer: the day alone.
        let mut a = AmDoc::new();
        for op in &d.ops {
            a.apply(op);
        }
        let mut b = AutoCommit::new();
        let s = am_sync(&mut a.doc, &mut b);
        am_empty.push(s.bytes as f64 / d.ops.len() as f64);
        am_empty_z.push(s.zstd_bytes as f64 / d.ops.len() as f64);
        msgs.0 = (s.messages, s.whole_doc);
        // (ii) Both peers hold the village roster (one commit per household or resident, as
        // the roster's operations); the day is synced on top.
        let mut base = AmDoc::new();
        let keys: HashSet<Uuid> = ctx.world.households[d.village]
            .iter()
            .chain(ctx.world.residents[d.village].iter().flatten())
            .copied()
            .collect();
        for op in ctx.world.seed.iter().filter(
            |op| matches!(&op.body, OpBody::Set { key: Key::Uuid(k), .. } if keys.contains(k)),
        ) {
            base.apply(op);
        }
        let mut a = base.fork();
        let mut b = base.doc.fork();
        for op in &d.ops {
            a.apply(op);
        }
        let s = am_sync(&mut a.doc, &mut b);
        am_shared.push(s.bytes as f64 / d.ops.len() as f64);
        am_shared_z.push(s.zstd_bytes as f64 / d.ops.len() as f64);
        msgs.1 = (s.messages, s.whole_doc);
        // Per kind, on the shared roster.
        for k in 0..3 {
            let ops: Vec<&Op> = d.ops.iter().filter(|o| kind_of(o) == k).collect();
            let mut a = base.fork();
            let mut b = base.doc.fork();
            for op in &ops {
                a.apply(op);
            }
            let s = am_sync(&mut a.doc, &mut b);
            am_kind[k].push(s.bytes as f64 / ops.len() as f64);
            let owned: Vec<Op> = ops.into_iter().cloned().collect();
            ds_kind[k].push(push_body(&owned).1.len() as f64 / owned.len() as f64);
        }
    }
    let am_e = median(&mut am_empty);
    let am_s = median(&mut am_shared);
    let am_ez = median(&mut am_empty_z);
    let am_sz = median(&mut am_shared_z);
    progress(&format!(
        "automerge: {} days ({:.1} s)",
        sizes.automerge_days,
        t.elapsed().as_secs_f64()
    ));

    rep.begin(2);
    let mut md = String::from("### 2. Bytes on the wire per operation\n\n");
    let _ = writeln!(
        md,
        "Push bodies of the {} device days of benchmark 1, exactly as `doorstep_core::sync` sends them (one `PushRequest` of {} operations, postcard, zstd level 3): {} operations, {} bytes of postcard, {} bytes compressed. HTTP headers are not counted (for either system).\n\n\
         | what | bytes per operation |\n| --- | ---: |\n\
         | push body, postcard | {:.1} |\n\
         | push body, postcard + zstd (all devices: total bytes / total operations) | **{:.1}** |\n\
         | push body, postcard + zstd, median device | {:.1} |\n\
         | of which random id bits alone (the distinct fact, household and resident ids a day names; a floor no compressor removes) | {:.1} |\n",
        thousands(sizes.devices as f64),
        DAY_OPS,
        thousands(n_ops as f64),
        thousands(raw as f64),
        thousands(z as f64),
        raw as f64 / n_ops as f64,
        push_bpo,
        dev_med,
        id_floor,
    );
    md.push_str("\nBy kind (each kind of a device's day alone in a push body; 50 devices; automerge on the shared roster, see below):\n\n| kind | postcard | postcard + zstd | automerge sync |\n| --- | ---: | ---: | ---: |\n");
    for k in 0..3 {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.1} |",
            KINDS[k],
            kind_raw[k] as f64 / kind_n[k] as f64,
            kind_z[k] as f64 / kind_n[k] as f64,
            median(&mut am_kind[k]),
        );
    }
    let _ = writeln!(
        md,
        "\n#### Automerge, same run\n\n\
         The same days as automerge 0.12 documents: root maps `households`, `residents`, `visits`, `assists`, each keyed by the entity's UUID as text (map keys are strings); a visit or assistance step is a new map under its id with one `put` per field (ids as text, times as timestamps, coordinates as integers); a field edit is one `put` into the household's or resident's map; each Doorstep operation is one commit (one user action, one transaction, as in the store). \
         Synced from the device's document to a peer with `automerge::sync` (`generate_sync_message`/`receive_sync_message` both ways from fresh `sync::State`s until neither side has a message), summing the encoded messages both ways. Two cases: **(i) empty peer** (the brief's: the peer has nothing; automerge then sends the whole document, compressed, in one v2 message), **(ii) shared roster** (both peers already hold the village's 120 households and 360 residents, made one commit each; the day is synced on top as individual changes, like a push). Medians over {} device days; per Doorstep operation.\n\n\
         | | bytes per operation | ratio to Doorstep push (postcard+zstd) | with zstd on each message | messages (of which a whole document) |\n| --- | ---: | ---: | ---: | ---: |\n\
         | Doorstep push | {:.1} | 1 | — | 1 request |\n\
         | automerge (i) empty peer | {:.1} | {:.2}× | {:.1} | {} ({}) |\n\
         | automerge (ii) shared roster | {:.1} | {:.2}× | {:.1} | {} ({}) |\n",
        sizes.automerge_days,
        push_bpo,
        am_e,
        am_e / push_bpo,
        am_ez,
        msgs.0 .0,
        msgs.0 .1,
        am_s,
        am_s / push_bpo,
        am_sz,
        msgs.1 .0,
        msgs.1 .1,
    );
    let _ = writeln!(
        md,
        "\nDoorstep per kind on these days (postcard+zstd): visits {:.1}, assistance steps {:.1}, field edits {:.1} B/op.\n",
        median(&mut ds_kind[0]),
        median(&mut ds_kind[1]),
        median(&mut ds_kind[2]),
    );
    rep.section(&md);
    rep.metric("sync_push_bytes_per_op", push_bpo, "B/op");
    rep.metric(
        "sync_push_raw_bytes_per_op",
        raw as f64 / n_ops as f64,
        "B/op",
    );
    rep.metric("sync_push_random_id_bytes_per_op", id_floor, "B/op");
    rep.metric("automerge_empty_peer_bytes_per_op", am_e, "B/op");
    rep.metric("automerge_shared_roster_bytes_per_op", am_s, "B/op");
    rep.row(
        "Bytes per operation, push of a day (postcard+zstd body)",
        "≤ 48 B/op",
        format!("{push_bpo:.1} B/op ({DAY_OPS}-op pushes)"),
        format!(
            "automerge sync {am_s:.1} B/op ({:.2}×) on a shared roster, {am_e:.1} B/op ({:.2}×) to an empty peer",
            am_s / push_bpo,
            am_e / push_bpo
        ),
        yes(push_bpo <= 48.0),
    );
}

// ---------------------------------------------------------------------------------------------
// Environment and main
// ---------------------------------------------------------------------------------------------

fn main() {
    let mut quick = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            s => {
                eprintln!("unknown argument {s}; usage: sync [--quick]");
                std::process::exit(2);
            }
        }
    }
    let sizes = Sizes::new(quick);
    // The server logs a line per request at `info`, as `doorstep serve` does; to a sink here.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,tower_http=info"))
        .with_writer(std::io::sink)
        .init();
    // DOORSTEP_BENCH_KEEP=1 keeps the files for a look afterwards (the path is printed).
    let (_tmp, dir) = bench_dir("doorstep-bench-sync-");
    let dir = dir.as_path();
    let started = Instant::now();
    let mut rep = Report::default();
    let env = environment(dir);
    if quick {
        rep.section("**--quick**: 100 devices, one run: a smoke test, not for the record.\n");
    }
    let ctx = prepare(&sizes, dir, &mut rep);
    bench_bytes(&mut rep, &ctx, &sizes);
    bench_ingest_and_sync(&mut rep, &ctx, &sizes);

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
