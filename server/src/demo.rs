//! The demo data set (issue #5): Ninh Thuận's 2023 campaign, synthesised from a seed.
//!
//! [`plan`] is pure and deterministic: the real units (`data/ninh-thuan-2023-units.csv`), and
//! for the chosen communes synthetic villages, households and residents whose totals match the
//! plan's figures exactly (319,284 accounts; 13,916 level-1 and 44,950 level-2 accounts already
//! activated at the start, carried by the roster statuses), officers with assignments and
//! quotas, and agencies for a few percent of the residents. [`load_reference`] writes a plan
//! into a core store through the core's bulk paths (the units file, one roster import per
//! commune, the write API for officers and quotas). [`activity_ops`] makes weeks of field work
//! as operations of synthetic officer replicas, which [`build`] merges in big batches through
//! the server's own import path, so they reach devices and the dashboard like synced work.
//!
//! Everything except the units is synthetic: names are drawn from lists, citizen IDs follow the
//! CCCD structure with province code 058 and serial numbers that are a permutation of the
//! resident's index, phone numbers use real mobile prefixes with random digits. Treat the data
//! as real all the same: nothing here logs a name, an ID or a phone number.

use crate::backend::CLI_ACTOR;
use crate::sqlite::SqliteBackend;
use chrono::{Datelike, NaiveDate};
use doorstep_core::{
    AssignTarget, Assist, AssistStep, CampaignInput, FailureReason, Hlc, OfficerInput, Op, OpBody,
    Options, Outreach, OutreachKind, QuotaInput, QuotaMetric, QuotaPeriod, QuotaSubject, ReplicaId,
    Role, RosterStatus, Session, SessionKind, Store, Visit, VisitOutcome,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// The official units of Ninh Thuận in 2023 (province 58, 7 districts, 65 communes).
pub const UNITS_CSV: &str = include_str!("../../data/ninh-thuan-2023-units.csv");

/// The `meta` key that marks a database as a demo database (value: a description).
pub const DEMO_MARKER_KEY: &str = "doorstep_demo";

/// The plan's figures (DESIGN.md §1).
pub const NT_ACCOUNTS: u64 = 319_284;
/// Level-1 accounts activated on 27/6/2023.
pub const NT_LEVEL1_ACTIVATED: u64 = 13_916;
/// Level-2 accounts activated on 27/6/2023.
pub const NT_LEVEL2_ACTIVATED: u64 = 44_950;
/// The campaign's activation goal.
pub const NT_TARGET: i64 = 264_720;

/// Errors of the demo builder. Messages carry counts and paths, never personal data.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The core store failed.
    #[error(transparent)]
    Core(#[from] doorstep_core::Error),
    /// The server's tables failed.
    #[error(transparent)]
    Server(#[from] crate::error::ServerError),
    /// SQLite failed.
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read, written or renamed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database exists, holds data and is not a demo database: it is left alone.
    #[error("{0} exists and is not a demo database; choose another --db file for the demo")]
    NotDemo(PathBuf),
    /// The configuration cannot be satisfied (e.g. more activated accounts than accounts).
    #[error("invalid demo configuration: {0}")]
    Config(String),
    /// Rows of a generated roster were refused: a bug in the generator.
    #[error(
        "the generated roster of commune {commune} had {rejected} rejected rows (first: {first})"
    )]
    Rejected {
        /// The commune.
        commune: String,
        /// How many rows.
        rejected: usize,
        /// The first reason (names a field, never a value).
        first: String,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Everything is a function of this.
    pub seed: u64,
    /// How many districts to use (from the start of the official list); `None`: all 7.
    pub districts: Option<usize>,
    /// How many communes to use, taken round-robin over the chosen districts; `None`: all.
    pub communes: Option<usize>,
    /// Accounts in scope (residents on the rosters).
    pub accounts: u64,
    /// Of them, level-1 activated at the start (roster status `level1_activated`).
    pub level1_activated: u64,
    /// Of them, level-2 activated at the start (roster status `level2_activated`).
    pub level2_activated: u64,
    /// The campaign's target on the province.
    pub target: i64,
    /// First day of the campaign.
    pub start: NaiveDate,
    /// Last day of the campaign (inclusive).
    pub end: NaiveDate,
    /// Days of field activity to synthesise from the first day (0: none).
    pub activity_days: u32,
    /// Residents per village, roughly (villages per commune follow from it).
    pub residents_per_village: u64,
    /// Villages per field officer, at most.
    pub villages_per_officer: usize,
}

impl DemoConfig {
    /// Ninh Thuận's plan, in full, with three weeks of field activity.
    pub fn ninh_thuan(seed: u64) -> DemoConfig {
        DemoConfig {
            seed,
            districts: None,
            communes: None,
            accounts: NT_ACCOUNTS,
            level1_activated: NT_LEVEL1_ACTIVATED,
            level2_activated: NT_LEVEL2_ACTIVATED,
            target: NT_TARGET,
            start: campaign_start(),
            end: campaign_end(),
            activity_days: 21,
            residents_per_village: 650,
            villages_per_officer: 2,
        }
    }
}

/// 27/6/2023.
pub fn campaign_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 6, 27).unwrap_or_default()
}

/// 15/9/2023.
pub fn campaign_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 9, 15).unwrap_or_default()
}

/// Unix ms of `hour:00` local time (UTC+7) on `day`.
pub fn local_ms(day: NaiveDate, hour: u32) -> i64 {
    let midnight_utc = day
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(0);
    midnight_utc - doorstep_core::time::LOCAL_OFFSET_MS + i64::from(hour) * 3_600_000
}

/// A unit of the official list.
#[derive(Debug, Clone)]
pub struct UnitRow {
    /// Code.
    pub code: String,
    /// Parent's code.
    pub parent: String,
    /// Kind (ward, commune, township…).
    pub kind: String,
    /// Name.
    pub name: String,
}

/// A resident of the plan (personal fields are in the roster text only).
#[derive(Debug, Clone)]
pub struct ResidentPlan {
    /// The id the roster import gives it.
    pub id: Uuid,
    /// Its household's id.
    pub household: Uuid,
    /// Roster status.
    pub status: RosterStatus,
    /// Its agency, for officials, civil servants and armed forces.
    pub agency: Option<&'static str>,
}

/// A household of the plan.
#[derive(Debug, Clone)]
pub struct HouseholdPlan {
    /// Its id.
    pub id: Uuid,
    /// Residents (indexes into [`VillagePlan::residents`]).
    pub residents: std::ops::Range<usize>,
}

/// A village of the plan.
#[derive(Debug, Clone)]
pub struct VillagePlan {
    /// Code (`<commune>-NN`).
    pub code: String,
    /// Name.
    pub name: String,
    /// Households.
    pub households: Vec<HouseholdPlan>,
    /// Residents.
    pub residents: Vec<ResidentPlan>,
    /// The roster CSV rows of this village (no header).
    pub roster: String,
}

/// An officer of the plan.
#[derive(Debug, Clone)]
pub struct OfficerPlan {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Unit (commune, district or province code).
    pub unit: String,
    /// Villages assigned (field officers).
    pub villages: Vec<String>,
    /// Campaign quota of level-2 activations (field officers), if any.
    pub campaign_quota: Option<i64>,
    /// Daily quota of level-2 activations (field officers), if any.
    pub day_quota: Option<i64>,
}

/// A commune of the plan.
#[derive(Debug, Clone)]
pub struct CommunePlan {
    /// The official unit.
    pub unit: UnitRow,
    /// Villages.
    pub villages: Vec<VillagePlan>,
    /// Accounts in scope.
    pub accounts: u64,
    /// Campaign quota (activated accounts by the end).
    pub campaign_quota: i64,
    /// Daily quota of level-2 activations.
    pub day_quota: i64,
}

/// A whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration it came from.
    pub config: DemoConfig,
    /// The campaign's id.
    pub campaign: Uuid,
    /// Chosen districts.
    pub districts: Vec<UnitRow>,
    /// Chosen communes.
    pub communes: Vec<CommunePlan>,
    /// Officers (province, district, commune leads, field).
    pub officers: Vec<OfficerPlan>,
    /// District campaign quotas (sum of their communes').
    pub district_quotas: BTreeMap<String, i64>,
}

impl Plan {
    /// Every resident, with its village code.
    pub fn residents(&self) -> impl Iterator<Item = (&str, &ResidentPlan)> {
        self.communes.iter().flat_map(|c| {
            c.villages
                .iter()
                .flat_map(|v| v.residents.iter().map(move |r| (v.code.as_str(), r)))
        })
    }

    /// A village by code.
    pub fn village(&self, code: &str) -> Option<&VillagePlan> {
        self.communes
            .iter()
            .flat_map(|c| c.villages.iter())
            .find(|v| v.code == code)
    }

    /// The units CSV: the official list and the synthetic villages.
    pub fn units_csv(&self) -> String {
        let mut s = UNITS_CSV.trim_end().to_owned();
        s.push('\n');
        for c in &self.communes {
            let kind = if c.unit.kind == "commune" {
                "thôn"
            } else {
                "khu phố"
            };
            for v in &c.villages {
                let _ = writeln!(s, "{},{},village,{kind},{}", v.code, c.unit.code, v.name);
            }
        }
        s
    }
}

fn official_units() -> (Vec<UnitRow>, Vec<UnitRow>) {
    let mut districts = Vec::new();
    let mut communes = Vec::new();
    for line in UNITS_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 {
            continue;
        }
        let row = UnitRow {
            code: f[0].to_owned(),
            parent: f[1].to_owned(),
            kind: f[3].to_owned(),
            name: f[4].to_owned(),
        };
        match f[2] {
            "district" => districts.push(row),
            "commune" => communes.push(row),
            _ => {}
        }
    }
    (districts, communes)
}

/// Split `total` over `weights` exactly (largest remainder).
pub fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let mut left = total.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut i = 0;
    while left > 0 {
        out[order[i % order.len()]] += 1;
        left -= 1;
        i += 1;
    }
    out
}

const FAMILY: &[&str] = &[
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Trương",
    "Đinh",
    "Lâm",
    "Chamaléa",
    "Katơr",
    "Đàng",
    "Quảng",
    "Thiên",
    "Lưu",
    "Pinăng",
    "Mai",
    "Cao",
    "Tạ",
];
const MIDDLE_M: &[&str] = &["Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thanh", "Ngọc"];
const MIDDLE_F: &[&str] = &["Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bích"];
const GIVEN_M: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Đông", "Hải", "Hùng", "Long", "Nam", "Phúc", "Quang", "Sơn",
    "Tuấn", "Thắng", "Trung", "Vinh", "Khoa", "Lộc", "Tài", "Hiếu", "Đạt", "Toàn",
];
const GIVEN_F: &[&str] = &[
    "Hà",
    "Hạnh",
    "Hoa",
    "Lan",
    "Linh",
    "Mai",
    "Ngân",
    "Tâm",
    "Thảo",
    "Trang",
    "Vy",
    "Yến",
    "Nhung",
    "Hương",
    "Phượng",
    "Diễm",
    "Uyên",
    "Xuân",
    "Thủy",
    "Loan",
];
const PHONE_PREFIXES: &[&str] = &[
    "091", "094", "098", "097", "086", "032", "035", "077", "070", "083", "096", "039",
];
const STREETS: &[&str] = &[
    "Thống Nhất",
    "Lê Duẩn",
    "21 Tháng 8",
    "Ngô Gia Tự",
    "Trần Phú",
    "Lê Hồng Phong",
    "Nguyễn Văn Cừ",
    "Yên Ninh",
    "Hải Thượng Lãn Ông",
    "Quang Trung",
];
const AGENCIES: &[&str] = &[
    "Công an tỉnh Ninh Thuận",
    "Bộ Chỉ huy Quân sự tỉnh",
    "UBND tỉnh Ninh Thuận",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Bệnh viện đa khoa tỉnh",
    "Kho bạc Nhà nước tỉnh",
    "Cục Thuế tỉnh",
];

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

/// A deterministic UUIDv7 at `ms` from the generator.
pub fn uuid7(rng: &mut StdRng, ms: i64) -> Uuid {
    let bytes: [u8; 10] = rng.gen();
    uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bytes).into_uuid()
}

/// Build the plan (pure; the same config gives the same plan).
pub fn plan(config: &DemoConfig) -> Result<Plan, DemoError> {
    let c = config;
    if c.level1_activated + c.level2_activated > c.accounts {
        return Err(DemoError::Config(
            "more activated accounts than accounts".into(),
        ));
    }
    if c.end < c.start {
        return Err(DemoError::Config(
            "the campaign ends before it starts".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(c.seed);
    let start_ms = local_ms(c.start, 0);
    let campaign = uuid7(&mut rng, start_ms - 86_400_000);
    let (all_districts, all_communes) = official_units();
    let districts: Vec<UnitRow> = all_districts
        .into_iter()
        .take(c.districts.unwrap_or(usize::MAX).max(1))
        .collect();
    // Round-robin over the districts so that a small selection spans them.
    let mut by_district: Vec<Vec<UnitRow>> = districts
        .iter()
        .map(|d| {
            all_communes
                .iter()
                .filter(|x| x.parent == d.code)
                .cloned()
                .collect()
        })
        .collect();
    let want = c
        .communes
        .unwrap_or(usize::MAX)
        .min(by_district.iter().map(Vec::len).sum());
    let mut chosen: Vec<UnitRow> = Vec::new();
    let mut round = 0;
    while chosen.len() < want {
        for list in by_district.iter_mut() {
            if chosen.len() < want && round < list.len() {
                chosen.push(list[round].clone());
            }
        }
        round += 1;
    }
    chosen.sort_by(|a, b| a.code.cmp(&b.code));
    if chosen.is_empty() {
        return Err(DemoError::Config("no commune chosen".into()));
    }

    // Accounts per commune: wards are denser than rural communes.
    let weights: Vec<f64> = chosen
        .iter()
        .map(|u| {
            let base = match u.kind.as_str() {
                "ward" => 1.4,
                "township" => 1.2,
                _ => 0.9,
            };
            base * rng.gen_range(0.6..1.4)
        })
        .collect();
    let accounts = apportion(c.accounts, &weights);
    // Activated at the start: more in town.
    let urban: Vec<f64> = chosen
        .iter()
        .zip(&accounts)
        .map(|(u, &a)| {
            a as f64 * if u.kind == "ward" { 1.3 } else { 1.0 } * rng.gen_range(0.8..1.2)
        })
        .collect();
    let mut l1 = apportion(c.level1_activated, &urban);
    let mut l2 = apportion(c.level2_activated, &urban);
    // A commune cannot have more activated than accounts: move the excess elsewhere.
    for i in 0..chosen.len() {
        while l1[i] + l2[i] > accounts[i] {
            let j = (0..chosen.len())
                .find(|&j| l1[j] + l2[j] < accounts[j])
                .ok_or_else(|| DemoError::Config("too many activated accounts".into()))?;
            if l2[i] > 0 {
                l2[i] -= 1;
                l2[j] += 1;
            } else {
                l1[i] -= 1;
                l1[j] += 1;
            }
        }
    }
    let quotas = apportion(
        c.target.max(0) as u64,
        &accounts.iter().map(|&a| a as f64).collect::<Vec<_>>(),
    );
    let days = (c.end - c.start).num_days() + 1;

    let mut serial: u64 = 0;
    let mut communes = Vec::new();
    let mut officers = Vec::new();
    let year_now = chrono::Utc::now().year();
    for (ci, unit) in chosen.into_iter().enumerate() {
        let n = accounts[ci];
        let nv = ((n + c.residents_per_village / 2) / c.residents_per_village.max(1)).clamp(1, 30)
            as usize;
        let per_village = apportion(n, &vec![1.0; nv]);
        // Statuses for the commune's residents, shuffled.
        let pending1 = (n - l1[ci] - l2[ci]) / 20;
        let pending2 = (n - l1[ci] - l2[ci]) / 30;
        let mut statuses: Vec<RosterStatus> = Vec::with_capacity(n as usize);
        let fill =
            |v: &mut Vec<RosterStatus>, s: RosterStatus, k: u64| v.resize(v.len() + k as usize, s);
        fill(&mut statuses, RosterStatus::Level1Pending, pending1);
        fill(&mut statuses, RosterStatus::Level2Pending, pending2);
        fill(&mut statuses, RosterStatus::Level1Activated, l1[ci]);
        fill(&mut statuses, RosterStatus::Level2Activated, l2[ci]);
        statuses.resize(n as usize, RosterStatus::None);
        let mut order: Vec<usize> = (0..n as usize).collect();
        order.shuffle(&mut rng);
        let mut k = 0usize;
        let mut villages = Vec::new();
        let village_kind = if unit.kind == "commune" {
            "Thôn"
        } else {
            "Khu phố"
        };
        for (vi, &vn) in per_village.iter().enumerate() {
            let code = format!("{}-{:02}", unit.code, vi + 1);
            let mut v = VillagePlan {
                code: code.clone(),
                name: format!("{village_kind} {}", vi + 1),
                households: Vec::new(),
                residents: Vec::new(),
                roster: String::new(),
            };
            let mut left = vn as usize;
            let mut h = 0usize;
            while left > 0 {
                h += 1;
                let size = rng.gen_range(1..=6usize).min(left);
                left -= size;
                let hcode = format!("HK{}{:04}", code, h);
                let hid = doorstep_core::roster::household_id(campaign, &hcode);
                let address = format!("{} {}", rng.gen_range(1..300), pick(&mut rng, STREETS));
                let family = pick(&mut rng, FAMILY);
                let first = v.residents.len();
                for m in 0..size {
                    let idx = order[k];
                    k += 1;
                    let status = statuses[idx];
                    let female = if m == 1 { true } else { rng.gen_bool(0.5) };
                    let year: i32 = match m {
                        0 | 1 => rng.gen_range(1945..=1990),
                        _ => rng.gen_range(1975..=2009).min(year_now - 14),
                    };
                    let month = rng.gen_range(1..=12u32);
                    let day = rng.gen_range(1..=28u32);
                    let birth = format!("{year:04}-{month:02}-{day:02}");
                    let (middle, given) = if female {
                        (pick(&mut rng, MIDDLE_F), pick(&mut rng, GIVEN_F))
                    } else {
                        (pick(&mut rng, MIDDLE_M), pick(&mut rng, GIVEN_M))
                    };
                    let name = format!("{family} {middle} {given}");
                    let century = if year >= 2000 { 2 } else { 0 } + u64::from(female);
                    serial += 1;
                    // A permutation of the index: unique, not sequential-looking.
                    let six = (serial * 7919 + 104_729) % 1_000_000;
                    let cccd = format!("058{century}{:02}{six:06}", year % 100);
                    let phone = if rng.gen_bool(0.8) {
                        format!(
                            "{}{:07}",
                            pick(&mut rng, PHONE_PREFIXES),
                            rng.gen_range(0..10_000_000u32)
                        )
                    } else {
                        String::new()
                    };
                    let relation = match m {
                        0 => "chủ hộ",
                        1 => "vợ",
                        _ => {
                            if year < 1960 {
                                "bố"
                            } else {
                                "con"
                            }
                        }
                    };
                    let agency =
                        (year <= 2000 && rng.gen_bool(0.035)).then(|| pick(&mut rng, AGENCIES));
                    let id = doorstep_core::roster::resident_id(
                        campaign,
                        &hcode,
                        Some(&doorstep_core::validate::IdNumber::Cccd(cccd.clone())),
                        "",
                        "",
                    );
                    let _ = writeln!(
                        v.roster,
                        "{hcode},{code},{address},{name},{birth},{},{cccd},{phone},{relation},{},{}",
                        if female { "nữ" } else { "nam" },
                        status.as_str(),
                        agency.unwrap_or_default(),
                    );
                    v.residents.push(ResidentPlan {
                        id,
                        household: hid,
                        status,
                        agency,
                    });
                }
                v.households.push(HouseholdPlan {
                    id: hid,
                    residents: first..v.residents.len(),
                });
            }
            villages.push(v);
        }
        let campaign_quota = quotas[ci] as i64;
        let new_goal = (campaign_quota - (l1[ci] + l2[ci]) as i64).max(0);
        let day_quota = (new_goal + days - 1) / days.max(1);
        // Officers: a commune lead, and field officers for `villages_per_officer` villages each.
        let lead_name = officer_name(&mut rng);
        officers.push(OfficerPlan {
            id: uuid7(&mut rng, start_ms - 86_400_000),
            name: lead_name,
            role: Role::CommuneLead,
            unit: unit.code.clone(),
            villages: Vec::new(),
            campaign_quota: None,
            day_quota: None,
        });
        let per = c.villages_per_officer.max(1);
        let groups: Vec<Vec<&VillagePlan>> =
            villages.chunks(per).map(|g| g.iter().collect()).collect();
        let group_accounts: Vec<f64> = groups
            .iter()
            .map(|g| g.iter().map(|v| v.residents.len() as f64).sum())
            .collect();
        let officer_goals = apportion(new_goal as u64, &group_accounts);
        for (g, goal) in groups.iter().zip(officer_goals) {
            officers.push(OfficerPlan {
                id: uuid7(&mut rng, start_ms - 86_400_000),
                name: officer_name(&mut rng),
                role: Role::Field,
                unit: unit.code.clone(),
                villages: g.iter().map(|v| v.code.clone()).collect(),
                campaign_quota: Some(goal as i64),
                day_quota: Some((goal as i64 + days - 1) / days.max(1)),
            });
        }
        communes.push(CommunePlan {
            unit,
            villages,
            accounts: n,
            campaign_quota,
            day_quota,
        });
    }
    let mut district_quotas = BTreeMap::new();
    for cm in &communes {
        *district_quotas.entry(cm.unit.parent.clone()).or_insert(0) += cm.campaign_quota;
    }
    let districts: Vec<UnitRow> = districts
        .into_iter()
        .filter(|d| district_quotas.contains_key(&d.code))
        .collect();
    for d in &districts {
        officers.push(OfficerPlan {
            id: uuid7(&mut rng, start_ms - 86_400_000),
            name: officer_name(&mut rng),
            role: Role::District,
            unit: d.code.clone(),
            villages: Vec::new(),
            campaign_quota: None,
            day_quota: None,
        });
    }
    officers.push(OfficerPlan {
        id: uuid7(&mut rng, start_ms - 86_400_000),
        name: officer_name(&mut rng),
        role: Role::Province,
        unit: "58".into(),
        villages: Vec::new(),
        campaign_quota: None,
        day_quota: None,
    });
    Ok(Plan {
        config: c.clone(),
        campaign,
        districts,
        communes,
        officers,
        district_quotas,
    })
}

fn officer_name(rng: &mut StdRng) -> String {
    let female = rng.gen_bool(0.3);
    let (m, g) = if female {
        (pick(rng, MIDDLE_F), pick(rng, GIVEN_F))
    } else {
        (pick(rng, MIDDLE_M), pick(rng, GIVEN_M))
    };
    format!("{} {m} {g}", pick(rng, FAMILY))
}

/// The roster header (every column of `docs/roster-format.md`, in order).
pub fn roster_header() -> String {
    doorstep_core::roster::ROSTER_COLUMNS.join(",")
}

/// What loading did.
#[derive(Debug, Clone, Default)]
pub struct LoadSummary {
    /// Units written (official and villages).
    pub units: usize,
    /// Households.
    pub households: usize,
    /// Residents.
    pub residents: usize,
    /// Officers.
    pub officers: usize,
    /// Quotas.
    pub quotas: usize,
}

/// Write the plan's reference data into `store`: units, campaign, rosters (one import per
/// commune), officers, assignments, quotas (campaign quotas for districts, communes and field
/// officers; day quotas for communes and field officers on every campaign day).
pub fn load_reference(
    store: &mut Store,
    plan: &Plan,
    progress: &mut dyn FnMut(&str),
) -> Result<LoadSummary, DemoError> {
    let mut summary = LoadSummary::default();
    let units = store.import_units_csv(plan.units_csv().as_bytes())?;
    if let Some(r) = units.rejected.first() {
        return Err(DemoError::Config(format!(
            "units rejected at line {}: {}",
            r.line, r.reason
        )));
    }
    summary.units = units.rows;
    let c = &plan.config;
    store.put_campaign(CampaignInput {
        id: plan.campaign,
        name: "Chiến dịch 80 ngày đêm cao điểm cấp tài khoản định danh điện tử".into(),
        start_date: c.start,
        end_date: c.end,
        target: c.target,
        unit_code: "58".into(),
    })?;
    let header = roster_header();
    let total = plan.communes.len();
    for (i, cm) in plan.communes.iter().enumerate() {
        let mut csv = header.clone();
        csv.push('\n');
        for v in &cm.villages {
            csv.push_str(&v.roster);
            summary.households += v.households.len();
        }
        let report = store.import_roster(plan.campaign, csv.as_bytes(), &mut |_| {})?;
        if let Some(first) = report.rejected.first() {
            return Err(DemoError::Rejected {
                commune: cm.unit.code.clone(),
                rejected: report.rejected.len(),
                first: first.reason.clone(),
            });
        }
        summary.residents += report.accepted;
        progress(&format!(
            "roster {}/{total}: commune {} ({} accounts)",
            i + 1,
            cm.unit.code,
            report.accepted
        ));
    }
    let days: Vec<NaiveDate> = c.start.iter_days().take_while(|d| *d <= c.end).collect();
    let quota = |store: &mut Store, subject: QuotaSubject, period: QuotaPeriod, target: i64| {
        store.set_quota(QuotaInput {
            campaign_id: plan.campaign,
            subject,
            period,
            metric: QuotaMetric::Level2Activated,
            target,
        })
    };
    for o in &plan.officers {
        store.put_officer(OfficerInput {
            id: o.id,
            name: o.name.clone(),
            role: o.role,
            unit_code: o.unit.clone(),
        })?;
        summary.officers += 1;
        for v in &o.villages {
            store.assign(o.id, AssignTarget::Village(v.clone()))?;
        }
        if let Some(q) = o.campaign_quota {
            quota(store, QuotaSubject::Officer(o.id), QuotaPeriod::Campaign, q)?;
            summary.quotas += 1;
        }
        if let Some(q) = o.day_quota {
            for d in &days {
                quota(store, QuotaSubject::Officer(o.id), QuotaPeriod::Day(*d), q)?;
                summary.quotas += 1;
            }
        }
    }
    for cm in &plan.communes {
        let u = || QuotaSubject::Unit(cm.unit.code.clone());
        quota(store, u(), QuotaPeriod::Campaign, cm.campaign_quota)?;
        summary.quotas += 1;
        for d in &days {
            quota(store, u(), QuotaPeriod::Day(*d), cm.day_quota)?;
            summary.quotas += 1;
        }
    }
    for (d, q) in &plan.district_quotas {
        quota(
            store,
            QuotaSubject::Unit(d.clone()),
            QuotaPeriod::Campaign,
            *q,
        )?;
        summary.quotas += 1;
    }
    progress(&format!(
        "officers {}, quotas {}",
        summary.officers, summary.quotas
    ));
    Ok(summary)
}

/// What the synthetic field activity made.
#[derive(Debug, Clone, Default)]
pub struct ActivitySummary {
    /// Operations.
    pub ops: usize,
    /// Visits.
    pub visits: usize,
    /// Assistance steps (successful and failed).
    pub assists: usize,
    /// Failed steps.
    pub failures: usize,
    /// Retractions.
    pub retractions: usize,
    /// Sessions at receiving points.
    pub sessions: usize,
    /// Outreach events.
    pub outreach: usize,
}

/// One synthetic officer replica's operations.
struct Replica {
    id: ReplicaId,
    counter: u64,
    last_ms: i64,
}

impl Replica {
    fn op(&mut self, at_ms: i64, body: OpBody) -> Op {
        self.counter += 1;
        self.last_ms = self.last_ms.max(at_ms) + 1;
        Op {
            replica: self.id,
            counter: self.counter,
            hlc: Hlc::new(self.last_ms as u64, 0),
            body,
        }
    }
}

const REASONS: [FailureReason; 5] = [
    FailureReason::PhoneNotOwnName,
    FailureReason::OtpNotReceived,
    FailureReason::NoChipIdCard,
    FailureReason::BoundToOtherDevice,
    FailureReason::Other,
];

/// Field activity for the first `plan.config.activity_days` days, as operations of one
/// synthetic replica per field officer (and per commune lead for sessions and outreach).
/// Deterministic from the seed.
pub fn activity_ops(plan: &Plan) -> (Vec<Op>, ActivitySummary) {
    let c = &plan.config;
    let mut rng = StdRng::seed_from_u64(c.seed ^ 0x5eed_f1e1_d000);
    let mut summary = ActivitySummary::default();
    let mut ops = Vec::new();
    // Per resident: (level1, level2, portal) progress as the activity goes.
    let mut state: BTreeMap<Uuid, (u8, u8, bool)> = BTreeMap::new();
    for (_, r) in plan.residents() {
        let s = match r.status {
            RosterStatus::Level1Pending => (1, 0, false),
            RosterStatus::Level2Pending => (0, 1, false),
            RosterStatus::Level1Activated => (2, 0, false),
            RosterStatus::Level2Activated => (0, 2, false),
            RosterStatus::None => (0, 0, false),
        };
        state.insert(r.id, s);
    }
    // Level-2 applications taken per commune and day: the receiving sessions report them.
    let mut received: BTreeMap<(String, NaiveDate), u32> = BTreeMap::new();
    let days: Vec<NaiveDate> = c
        .start
        .iter_days()
        .take(c.activity_days as usize)
        .take_while(|d| *d <= c.end)
        .collect();
    for o in plan.officers.iter().filter(|o| o.role == Role::Field) {
        let mut rep = Replica {
            id: ReplicaId(uuid7(&mut rng, local_ms(c.start, 0))),
            counter: 0,
            last_ms: 0,
        };
        let households: Vec<&HouseholdPlan> = o
            .villages
            .iter()
            .filter_map(|v| plan.village(v))
            .flat_map(|v| v.households.iter())
            .collect();
        let residents: BTreeMap<Uuid, Vec<Uuid>> = o
            .villages
            .iter()
            .filter_map(|v| plan.village(v))
            .flat_map(|v| {
                v.households.iter().map(move |h| {
                    (
                        h.id,
                        v.residents[h.residents.clone()]
                            .iter()
                            .map(|r| r.id)
                            .collect(),
                    )
                })
            })
            .collect();
        if households.is_empty() {
            continue;
        }
        let mut next = 0usize;
        for day in &days {
            if rng.gen_bool(0.1) {
                continue; // a day off or at the station
            }
            let mut t = local_ms(*day, 7) + rng.gen_range(0..3_600_000);
            let visits = rng.gen_range(16..=30);
            for _ in 0..visits {
                let h = households[next % households.len()];
                next += 1;
                t += rng.gen_range(600_000..1_500_000);
                let outcome = match rng.gen_range(0..100) {
                    0..=64 => VisitOutcome::Met,
                    65..=84 => VisitOutcome::NobodyHome,
                    85..=92 => VisitOutcome::ComeBack,
                    93..=96 => VisitOutcome::Refused,
                    _ => VisitOutcome::MovedAway,
                };
                let visit_id = uuid7(&mut rng, t);
                ops.push(rep.op(
                    t,
                    OpBody::Visit(Visit {
                        id: visit_id,
                        household_id: h.id,
                        officer_id: o.id,
                        at_ms: t,
                        outcome,
                        revisit_at_ms:
                            (outcome == VisitOutcome::ComeBack).then_some(t + 86_400_000),
                        note: None,
                        location: None,
                    }),
                ));
                summary.visits += 1;
                if rng.gen_bool(0.01) {
                    ops.push(rep.op(
                        t + 60_000,
                        OpBody::Retract {
                            fact_id: visit_id,
                            reason: Some("ghi nhầm hộ".into()),
                        },
                    ));
                    summary.retractions += 1;
                }
                if outcome != VisitOutcome::Met {
                    continue;
                }
                for rid in residents.get(&h.id).into_iter().flatten() {
                    let Some(s) = state.get_mut(rid) else {
                        continue;
                    };
                    if rng.gen_bool(0.3) {
                        continue; // not at home, or not this time
                    }
                    // Up to three steps in one visit; a failure or a level-2 application
                    // (activated later, by SMS) ends the visit for this resident.
                    for _ in 0..3 {
                        let step = match *s {
                            (_, 2, false) => AssistStep::PortalGuided,
                            (_, 2, true) => break,
                            (_, 1, _) => AssistStep::Level2Activated,
                            (2, 0, _) => AssistStep::Level2Received,
                            (1, 0, _) => AssistStep::Level1Activated,
                            _ => {
                                if rng.gen_bool(0.55) {
                                    AssistStep::Level1Guided
                                } else {
                                    AssistStep::Level2Received
                                }
                            }
                        };
                        let fails = matches!(
                            step,
                            AssistStep::Level1Activated
                                | AssistStep::Level2Activated
                                | AssistStep::Level1Guided
                        ) && rng.gen_bool(0.15);
                        t += rng.gen_range(60_000..300_000);
                        let id = uuid7(&mut rng, t);
                        let failure = fails.then(|| REASONS[rng.gen_range(0..REASONS.len())]);
                        ops.push(
                            rep.op(
                                t,
                                OpBody::Assist(Assist {
                                    id,
                                    resident_id: *rid,
                                    officer_id: o.id,
                                    at_ms: t,
                                    step,
                                    failure,
                                    receiving_point: (step == AssistStep::Level2Received)
                                        .then(|| "Điểm tiếp nhận lưu động".to_owned()),
                                    note: None,
                                }),
                            ),
                        );
                        summary.assists += 1;
                        if fails {
                            summary.failures += 1;
                            break;
                        }
                        if rng.gen_bool(0.015) {
                            // Recorded for the wrong resident: retracted, the state stays.
                            ops.push(rep.op(
                                t + 30_000,
                                OpBody::Retract {
                                    fact_id: id,
                                    reason: Some("nhầm người".into()),
                                },
                            ));
                            summary.retractions += 1;
                            break;
                        }
                        match step {
                            AssistStep::Level1Guided => s.0 = s.0.max(1),
                            AssistStep::Level1Activated => s.0 = 2,
                            AssistStep::Level2Received => {
                                s.1 = s.1.max(1);
                                *received.entry((o.unit.clone(), *day)).or_default() += 1;
                                break;
                            }
                            AssistStep::Level2Activated => s.1 = 2,
                            AssistStep::PortalGuided => s.2 = true,
                        }
                    }
                }
            }
        }
    }
    // Receiving sessions (a mobile team every day, the station on weekdays) and outreach,
    // recorded by each commune's lead.
    for lead in plan.officers.iter().filter(|o| o.role == Role::CommuneLead) {
        let Some(cm) = plan.communes.iter().find(|c| c.unit.code == lead.unit) else {
            continue;
        };
        let mut rep = Replica {
            id: ReplicaId(uuid7(&mut rng, local_ms(c.start, 0))),
            counter: 0,
            last_ms: 0,
        };
        for day in &days {
            let taken = received
                .get(&(cm.unit.code.clone(), *day))
                .copied()
                .unwrap_or(0);
            let weekday = day.weekday().num_days_from_monday() < 5;
            let mobile = if weekday { taken * 3 / 5 } else { taken };
            let village = &cm.villages[rng.gen_range(0..cm.villages.len())];
            let mut sessions = vec![(
                SessionKind::Mobile,
                format!("Nhà văn hóa {}", village.name),
                7,
                mobile,
            )];
            if weekday {
                sessions.push((
                    SessionKind::Fixed,
                    format!("Trụ sở Công an {}", cm.unit.name),
                    13,
                    taken - mobile,
                ));
            }
            for (kind, place, hour, applications) in sessions {
                let starts = local_ms(*day, hour) + rng.gen_range(0..1_800_000);
                let id = uuid7(&mut rng, starts);
                ops.push(rep.op(
                    starts,
                    OpBody::Session(Session {
                        id,
                        unit_code: cm.unit.code.clone(),
                        officer_id: lead.id,
                        kind,
                        place,
                        starts_at_ms: starts,
                        ends_at_ms: starts + 3 * 3_600_000,
                        applications,
                        note: None,
                    }),
                ));
                summary.sessions += 1;
                if rng.gen_bool(0.02) {
                    ops.push(rep.op(
                        starts + 4 * 3_600_000,
                        OpBody::Retract {
                            fact_id: id,
                            reason: Some("trùng phiên".into()),
                        },
                    ));
                    summary.retractions += 1;
                }
            }
            if rng.gen_bool(0.3) {
                let (kind, hour, people) = match rng.gen_range(0..3) {
                    0 => (OutreachKind::Meeting, 19, rng.gen_range(30..150)),
                    1 => (OutreachKind::Loudspeaker, 6, rng.gen_range(200..900)),
                    _ => (OutreachKind::Training, 14, rng.gen_range(10..40)),
                };
                let at = local_ms(*day, hour) + rng.gen_range(0..1_800_000);
                ops.push(rep.op(
                    at,
                    OpBody::Outreach(Outreach {
                        id: uuid7(&mut rng, at),
                        unit_code: village.code.clone(),
                        officer_id: lead.id,
                        kind,
                        at_ms: at,
                        place: format!("Nhà văn hóa {}", village.name),
                        people_reached: people,
                        note: None,
                    }),
                ));
                summary.outreach += 1;
            }
        }
    }
    summary.ops = ops.len();
    (ops, summary)
}

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub enum Ensured {
    /// The database was already a demo database: reused as it is.
    Reused(String),
    /// The demo was built.
    Built(BuildSummary),
}

/// What [`build`] made, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    /// Reference data.
    pub load: LoadSummary,
    /// Field activity.
    pub activity: ActivitySummary,
    /// Milliseconds: planning, loading, activity, whole build.
    pub plan_ms: u128,
    /// Loading the reference data.
    pub load_ms: u128,
    /// Generating and merging the activity.
    pub activity_ms: u128,
    /// The whole build.
    pub total_ms: u128,
}

/// The marker of a demo database, if `db` is one (`Ok(None)` if it does not exist or is not).
pub fn demo_marker(db: &Path) -> Result<Option<String>, DemoError> {
    if !db.exists() {
        return Ok(None);
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [DEMO_MARKER_KEY],
            |r| r.get::<_, String>(0),
        )
        .optional()?)
}

fn is_empty_db(db: &Path) -> Result<bool, DemoError> {
    if !db.exists() {
        return Ok(true);
    }
    let len = std::fs::metadata(db)
        .map_err(|source| DemoError::Io {
            context: format!("reading {}", db.display()),
            source,
        })?
        .len();
    Ok(len == 0)
}

/// Use `db` as the demo database: reuse it if it is one, build it if it does not exist (or is
/// empty), refuse if it holds other data.
pub fn ensure(
    db: &Path,
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Ensured, DemoError> {
    if let Some(marker) = demo_marker(db)? {
        return Ok(Ensured::Reused(marker));
    }
    if !is_empty_db(db)? {
        return Err(DemoError::NotDemo(db.to_path_buf()));
    }
    build(db, config, progress).map(Ensured::Built)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DemoError {
    move |source| DemoError::Io { context, source }
}

/// Build the demo into `db` (which must not exist, or be empty): in a temporary file beside
/// it, renamed into place at the end, so an interrupted build leaves no half demo behind.
pub fn build(
    db: &Path,
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildSummary, DemoError> {
    let started = Instant::now();
    let mut summary = BuildSummary::default();
    let tmp = db.with_extension("demo-building");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", tmp.display()));
        if p.exists() {
            std::fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
        }
    }
    let plan = plan(config)?;
    summary.plan_ms = started.elapsed().as_millis();
    progress(&format!(
        "planned {} communes, {} villages, {} accounts in {} ms",
        plan.communes.len(),
        plan.communes
            .iter()
            .map(|c| c.villages.len())
            .sum::<usize>(),
        config.accounts,
        summary.plan_ms
    ));
    let t = Instant::now();
    {
        let mut store = Store::open(&tmp, Options::default())?;
        // A demo is rebuilt, not recovered: no fsync per commit while building.
        store
            .connection()
            .pragma_update(None, "synchronous", "OFF")?;
        summary.load = load_reference(&mut store, &plan, progress)?;
    }
    summary.load_ms = t.elapsed().as_millis();
    progress(&format!("reference data loaded in {} ms", summary.load_ms));
    let t = Instant::now();
    // Opening the server backend files the reference data in its feed.
    let backend = SqliteBackend::open(&tmp)?;
    let (ops, activity) = activity_ops(&plan);
    let now = crate::now_ms();
    let total = ops.len();
    for (i, batch) in ops.chunks(50_000).enumerate() {
        backend.import_ops(CLI_ACTOR, batch, now)?;
        progress(&format!(
            "field activity: {}/{total} operations",
            (i * 50_000 + batch.len()).min(total)
        ));
    }
    summary.activity = activity;
    let marker = format!(
        "ninh-thuan-2023 seed={} accounts={} activity_days={}",
        config.seed, config.accounts, config.activity_days
    );
    backend.with_store(|s| {
        s.connection().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [DEMO_MARKER_KEY, marker.as_str()],
        )
    })??;
    backend.with_store(|s| {
        s.connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    })??;
    drop(backend);
    summary.activity_ms = t.elapsed().as_millis();
    std::fs::rename(&tmp, db).map_err(io(format!("renaming into {}", db.display())))?;
    summary.total_ms = started.elapsed().as_millis();
    progress(&format!("demo built in {} ms", summary.total_ms));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> DemoConfig {
        DemoConfig {
            districts: Some(2),
            communes: Some(4),
            accounts: 900,
            level1_activated: 60,
            level2_activated: 150,
            target: 700,
            activity_days: 5,
            residents_per_village: 100,
            ..DemoConfig::ninh_thuan(seed)
        }
    }

    #[test]
    fn apportion_is_exact() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]).iter().sum::<u64>(), 10);
        assert_eq!(
            apportion(319_284, &[0.3, 2.7, 1.1]).iter().sum::<u64>(),
            319_284
        );
        assert_eq!(apportion(5, &[]), Vec::<u64>::new());
    }

    #[test]
    fn plan_is_deterministic_and_exact() {
        let a = plan(&small(3)).unwrap();
        let b = plan(&small(3)).unwrap();
        assert_eq!(a.units_csv(), b.units_csv());
        let ra: Vec<Uuid> = a.residents().map(|(_, r)| r.id).collect();
        let rb: Vec<Uuid> = b.residents().map(|(_, r)| r.id).collect();
        assert_eq!(ra, rb);
        assert_eq!(ra.len(), 900);
        assert_eq!(a.communes.len(), 4);
        let districts: std::collections::BTreeSet<_> =
            a.communes.iter().map(|c| c.unit.parent.clone()).collect();
        assert_eq!(districts.len(), 2);
        assert_eq!(
            a.communes.iter().map(|c| c.campaign_quota).sum::<i64>(),
            700
        );
        assert_ne!(plan(&small(4)).unwrap().campaign, a.campaign);
    }

    #[test]
    fn a_small_demo_builds_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let mut lines = 0;
        let built = ensure(&db, &small(9), &mut |_| lines += 1).unwrap();
        let Ensured::Built(s) = built else {
            panic!("expected a build")
        };
        assert!(lines > 3);
        assert_eq!(s.load.residents, 900);
        assert!(s.activity.visits > 0 && s.activity.assists > 0);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM residents WHERE deleted = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 900);
        let v: i64 = conn
            .query_row("SELECT count(*) FROM visits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, s.activity.visits);
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        // The activated-at-start figures come from the roster statuses, exactly.
        assert_eq!(
            count("SELECT count(*) FROM residents WHERE roster_account = 'level1_activated'"),
            60
        );
        assert_eq!(
            count("SELECT count(*) FROM residents WHERE roster_account = 'level2_activated'"),
            150
        );
        assert!(count("SELECT count(*) FROM residents WHERE agency IS NOT NULL") > 0);
        assert_eq!(
            count("SELECT count(*) FROM sessions") as usize,
            s.activity.sessions
        );
        assert_eq!(
            count("SELECT count(*) FROM outreach") as usize,
            s.activity.outreach
        );
        assert!(s.activity.sessions > 0 && s.activity.outreach > 0);
        assert_eq!(count("SELECT sum(target) FROM quotas WHERE subject_kind = 'unit' AND period = 'campaign' AND length(subject_id) = 5"), 700);
        drop(conn);
        assert!(matches!(
            ensure(&db, &small(9), &mut |_| {}).unwrap(),
            Ensured::Reused(_)
        ));
        let other = dir.path().join("other.db");
        drop(SqliteBackend::open(&other).unwrap());
        assert!(matches!(
            ensure(&other, &small(9), &mut |_| {}),
            Err(DemoError::NotDemo(_))
        ));
    }
}
