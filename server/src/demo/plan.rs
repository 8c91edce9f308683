//! What the campaign looks like: the real units, and for the chosen communes synthetic villages,
//! households and residents whose totals match the configuration exactly, officers with their
//! villages, and quotas. [`plan`] is pure: the same configuration gives the same plan.

use super::calendar::local_ms;
use super::names::{self, uuid7};
use super::{DemoConfig, DemoError};
use chrono::Datelike;
use doorstep_core::{Role, RosterStatus};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use uuid::Uuid;

/// The official units of Ninh Thuận in 2023 (province 58, 7 districts, 65 communes).
pub const UNITS_CSV: &str = include_str!("../../../data/ninh-thuan-2023-units.csv");

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
    // Ids of the reference data are minted the day before the campaign.
    let minted_ms = local_ms(c.start, 0) - 86_400_000;
    let campaign = uuid7(&mut rng, minted_ms);
    let (all_districts, all_communes) = official_units();
    let districts: Vec<UnitRow> = all_districts
        .into_iter()
        .take(c.districts.unwrap_or(usize::MAX).max(1))
        .collect();
    let chosen = choose_communes(c, &districts, &all_communes)?;
    let mut planner = Planner {
        config: c,
        rng,
        campaign,
        minted_ms,
        days: (c.end - c.start).num_days() + 1,
        serial: 0,
        year_now: chrono::Utc::now().year(),
    };
    let figures = planner.figures(&chosen)?;
    let mut communes = Vec::new();
    let mut officers = Vec::new();
    for (ci, unit) in chosen.into_iter().enumerate() {
        let (commune, staff) = planner.commune(unit, &figures, ci);
        communes.push(commune);
        officers.extend(staff);
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
        officers.push(planner.officer(Role::District, &d.code));
    }
    officers.push(planner.officer(Role::Province, "58"));
    Ok(Plan {
        config: c.clone(),
        campaign,
        districts,
        communes,
        officers,
        district_quotas,
    })
}

/// The communes to use: round-robin over `districts` so that a small selection spans them,
/// in code order.
fn choose_communes(
    c: &DemoConfig,
    districts: &[UnitRow],
    all_communes: &[UnitRow],
) -> Result<Vec<UnitRow>, DemoError> {
    let by_district: Vec<Vec<&UnitRow>> = districts
        .iter()
        .map(|d| all_communes.iter().filter(|x| x.parent == d.code).collect())
        .collect();
    let want = c
        .communes
        .unwrap_or(usize::MAX)
        .min(by_district.iter().map(Vec::len).sum());
    let mut chosen: Vec<UnitRow> = Vec::new();
    let mut round = 0;
    while chosen.len() < want {
        for list in &by_district {
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
    Ok(chosen)
}

/// Per chosen commune (by index), the figures its residents and quotas must meet.
struct CommuneFigures {
    /// Accounts in scope.
    accounts: Vec<u64>,
    /// Level-1 accounts activated at the start.
    level1: Vec<u64>,
    /// Level-2 accounts activated at the start.
    level2: Vec<u64>,
    /// Campaign quotas.
    quotas: Vec<u64>,
}

/// The generator's state while planning.
struct Planner<'a> {
    config: &'a DemoConfig,
    rng: StdRng,
    campaign: Uuid,
    /// When officers' ids are minted (the day before the campaign).
    minted_ms: i64,
    /// Days of the campaign.
    days: i64,
    /// Residents planned so far (the citizen IDs' serial).
    serial: u64,
    /// This year: nobody on a roster is younger than 14.
    year_now: i32,
}

impl Planner<'_> {
    /// Split the configuration's figures over the chosen communes.
    fn figures(&mut self, chosen: &[UnitRow]) -> Result<CommuneFigures, DemoError> {
        let c = self.config;
        let rng = &mut self.rng;
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
        let mut level1 = apportion(c.level1_activated, &urban);
        let mut level2 = apportion(c.level2_activated, &urban);
        // A commune cannot have more activated than accounts: move the excess elsewhere.
        for i in 0..chosen.len() {
            while level1[i] + level2[i] > accounts[i] {
                let j = (0..chosen.len())
                    .find(|&j| level1[j] + level2[j] < accounts[j])
                    .ok_or_else(|| DemoError::Config("too many activated accounts".into()))?;
                let from = if level2[i] > 0 {
                    &mut level2
                } else {
                    &mut level1
                };
                from[i] -= 1;
                from[j] += 1;
            }
        }
        let quotas = apportion(
            c.target.max(0) as u64,
            &accounts.iter().map(|&a| a as f64).collect::<Vec<_>>(),
        );
        Ok(CommuneFigures {
            accounts,
            level1,
            level2,
            quotas,
        })
    }

    /// The `ci`-th chosen commune: its villages, households and residents, and its officers.
    fn commune(
        &mut self,
        unit: UnitRow,
        f: &CommuneFigures,
        ci: usize,
    ) -> (CommunePlan, Vec<OfficerPlan>) {
        let n = f.accounts[ci];
        let per_village = self.config.residents_per_village;
        let nv = ((n + per_village / 2) / per_village.max(1)).clamp(1, 30) as usize;
        let sizes = apportion(n, &vec![1.0; nv]);
        let mut statuses = self.statuses(n, f.level1[ci], f.level2[ci]).into_iter();
        let village_kind = if unit.kind == "commune" {
            "Thôn"
        } else {
            "Khu phố"
        };
        let villages: Vec<VillagePlan> = sizes
            .iter()
            .enumerate()
            .map(|(vi, &size)| {
                let code = format!("{}-{:02}", unit.code, vi + 1);
                let name = format!("{village_kind} {}", vi + 1);
                self.village(code, name, size as usize, &mut statuses)
            })
            .collect();
        let campaign_quota = f.quotas[ci] as i64;
        let new_goal = (campaign_quota - (f.level1[ci] + f.level2[ci]) as i64).max(0);
        let officers = self.commune_officers(&unit.code, &villages, new_goal);
        let commune = CommunePlan {
            unit,
            villages,
            accounts: n,
            campaign_quota,
            day_quota: self.per_day(new_goal),
        };
        (commune, officers)
    }

    /// The roster statuses of a commune's `n` residents, in the order they are planned:
    /// `level1` and `level2` activated, a few pending, the rest without an account, shuffled.
    fn statuses(&mut self, n: u64, level1: u64, level2: u64) -> Vec<RosterStatus> {
        let pending1 = (n - level1 - level2) / 20;
        let pending2 = (n - level1 - level2) / 30;
        let mut statuses: Vec<RosterStatus> = Vec::with_capacity(n as usize);
        let fill =
            |v: &mut Vec<RosterStatus>, s: RosterStatus, k: u64| v.resize(v.len() + k as usize, s);
        fill(&mut statuses, RosterStatus::Level1Pending, pending1);
        fill(&mut statuses, RosterStatus::Level2Pending, pending2);
        fill(&mut statuses, RosterStatus::Level1Activated, level1);
        fill(&mut statuses, RosterStatus::Level2Activated, level2);
        statuses.resize(n as usize, RosterStatus::None);
        let mut order: Vec<usize> = (0..n as usize).collect();
        order.shuffle(&mut self.rng);
        order.into_iter().map(|i| statuses[i]).collect()
    }

    /// A village of `size` residents in households of one to six, taking their roster
    /// statuses from `statuses`.
    fn village(
        &mut self,
        code: String,
        name: String,
        size: usize,
        statuses: &mut impl Iterator<Item = RosterStatus>,
    ) -> VillagePlan {
        let mut v = VillagePlan {
            code,
            name,
            households: Vec::new(),
            residents: Vec::new(),
            roster: String::new(),
        };
        let mut left = size;
        let mut h = 0usize;
        while left > 0 {
            h += 1;
            let members = self.rng.gen_range(1..=6usize).min(left);
            left -= members;
            self.household(&mut v, h, members, statuses);
        }
        v
    }

    /// The `h`-th household of `v`, with `members` residents: its roster rows and plan.
    fn household(
        &mut self,
        v: &mut VillagePlan,
        h: usize,
        members: usize,
        statuses: &mut impl Iterator<Item = RosterStatus>,
    ) {
        let hcode = format!("HK{}{:04}", v.code, h);
        let hid = doorstep_core::roster::household_id(self.campaign, &hcode);
        let (address, family) = names::household(&mut self.rng);
        let first = v.residents.len();
        for m in 0..members {
            let status = statuses.next().unwrap_or(RosterStatus::None);
            self.serial += 1;
            let p = names::member(&mut self.rng, family, m, self.serial, self.year_now);
            let id = doorstep_core::roster::resident_id(
                self.campaign,
                &hcode,
                Some(&doorstep_core::validate::IdNumber::Cccd(p.cccd.clone())),
                "",
                "",
            );
            let _ = writeln!(
                v.roster,
                "{hcode},{},{address},{},{},{},{},{},{},{},{}",
                v.code,
                p.name,
                p.birth,
                if p.female { "nữ" } else { "nam" },
                p.cccd,
                p.phone,
                p.relation,
                status.as_str(),
                p.agency.unwrap_or_default(),
            );
            v.residents.push(ResidentPlan {
                id,
                household: hid,
                status,
                agency: p.agency,
            });
        }
        v.households.push(HouseholdPlan {
            id: hid,
            residents: first..v.residents.len(),
        });
    }

    /// A commune's lead, and field officers for `villages_per_officer` villages each, who
    /// share the commune's `new_goal` (activations still to make) by their villages' sizes.
    fn commune_officers(
        &mut self,
        unit: &str,
        villages: &[VillagePlan],
        new_goal: i64,
    ) -> Vec<OfficerPlan> {
        // The lead's name is drawn before its id (the field officers' after).
        let name = names::officer_name(&mut self.rng);
        let mut officers = vec![OfficerPlan {
            id: uuid7(&mut self.rng, self.minted_ms),
            name,
            ..officer(Role::CommuneLead, unit)
        }];
        let groups: Vec<&[VillagePlan]> = villages
            .chunks(self.config.villages_per_officer.max(1))
            .collect();
        let group_accounts: Vec<f64> = groups
            .iter()
            .map(|g| g.iter().map(|v| v.residents.len() as f64).sum())
            .collect();
        let goals = apportion(new_goal as u64, &group_accounts);
        for (g, goal) in groups.iter().zip(goals) {
            officers.push(OfficerPlan {
                villages: g.iter().map(|v| v.code.clone()).collect(),
                campaign_quota: Some(goal as i64),
                day_quota: Some(self.per_day(goal as i64)),
                ..self.officer(Role::Field, unit)
            });
        }
        officers
    }

    /// An officer of `role` on `unit`, with a fresh id and name and nothing assigned.
    fn officer(&mut self, role: Role, unit: &str) -> OfficerPlan {
        let id = uuid7(&mut self.rng, self.minted_ms);
        OfficerPlan {
            id,
            name: names::officer_name(&mut self.rng),
            ..officer(role, unit)
        }
    }

    /// A daily quota that reaches `goal` by the campaign's end.
    fn per_day(&self, goal: i64) -> i64 {
        (goal + self.days - 1) / self.days.max(1)
    }
}

/// An officer of `role` on `unit` with a nil id and no name, villages or quotas yet.
fn officer(role: Role, unit: &str) -> OfficerPlan {
    OfficerPlan {
        id: Uuid::nil(),
        name: String::new(),
        role,
        unit: unit.to_owned(),
        villages: Vec::new(),
        campaign_quota: None,
        day_quota: None,
    }
}
