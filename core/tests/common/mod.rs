//! Shared fixtures for the integration tests: a small, valid campaign world.
//!
//! Ids are fixed (`Uuid::from_u128`), so two stores built with [`populate`] name the same
//! households and residents (each with its own operations). Frozen data files
//! (`tests/schemas/vN.data.sql`) hold these ids: don't change [`World::ids`]. Not every test
//! binary uses every item, hence the `allow`.
#![allow(dead_code)]

use chrono::NaiveDate;
use doorstep_core::{
    CampaignInput, HouseholdInput, ManualClock, OfficerInput, Options, ResidentInput, Role,
    RosterStatus, Store, UnitInput, UnitLevel,
};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// 2023-07-10 09:00 in Vietnam (02:00 UTC): inside the campaign.
pub const NOW_MS: u64 = 1_688_954_400_000;

/// The ids of what [`populate`] creates.
#[derive(Debug, Clone)]
pub struct World {
    /// Province, district, commune, village codes.
    pub province: String,
    pub district: String,
    pub commune: String,
    pub village: String,
    pub campaign: Uuid,
    pub officer: Uuid,
    pub households: Vec<Uuid>,
    pub residents: Vec<Uuid>,
}

impl World {
    /// The fixed ids (also valid before [`populate`] ran, e.g. in another process).
    pub fn ids() -> World {
        World {
            province: "58".into(),
            district: "582".into(),
            commune: "22738".into(),
            village: "22738-01".into(),
            campaign: Uuid::from_u128(0xCA00),
            officer: Uuid::from_u128(0x0F00),
            households: (1..=3).map(|i| Uuid::from_u128(0x4000 + i)).collect(),
            residents: (1..=6).map(|i| Uuid::from_u128(0x5000 + i)).collect(),
        }
    }
}

/// A manual clock at [`NOW_MS`].
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(NOW_MS))
}

/// Options using `clock` (durability `Full`, the default).
pub fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        ..Options::default()
    }
}

/// Create the units, campaign (2023-06-27..2023-09-15), officer, 3 households and 6 residents.
pub fn populate(store: &mut Store) -> World {
    let w = World::ids();
    let units = [
        (
            &w.province,
            None,
            UnitLevel::Province,
            "province",
            "Ninh Thuận",
        ),
        (
            &w.district,
            Some(&w.province),
            UnitLevel::District,
            "city",
            "Phan Rang - Tháp Chàm",
        ),
        (
            &w.commune,
            Some(&w.district),
            UnitLevel::Commune,
            "ward",
            "Phường Đô Vinh",
        ),
        (
            &w.village,
            Some(&w.commune),
            UnitLevel::Village,
            "khu phố",
            "Khu phố 1",
        ),
    ];
    for (code, parent, level, kind, name) in units {
        store
            .put_unit(UnitInput {
                code: code.clone(),
                parent_code: parent.cloned(),
                level,
                kind: kind.into(),
                name: name.into(),
            })
            .expect("unit");
    }
    store
        .put_campaign(CampaignInput {
            id: w.campaign,
            name: "80 ngày đêm".into(),
            start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
            target: 264_720,
            unit_code: w.province.clone(),
        })
        .expect("campaign");
    store
        .put_officer(OfficerInput {
            id: w.officer,
            name: "Trần Văn Bình".into(),
            role: Role::Field,
            unit_code: w.commune.clone(),
        })
        .expect("officer");
    for (i, h) in w.households.iter().enumerate() {
        store
            .put_household(HouseholdInput {
                id: *h,
                code: format!("HK{:04}", i + 1),
                village_code: w.village.clone(),
                address: Some(format!("{} Lê Duẩn", 10 + i)),
                head_id: None,
            })
            .expect("household");
    }
    let names = [
        "Nguyễn Văn An",
        "Đặng Thị Đào",
        "Lê Văn Cường",
        "Phạm Thị Dung",
        "Hoàng Văn Em",
        "Võ Thị Phương",
    ];
    for (i, r) in w.residents.iter().enumerate() {
        store
            .put_resident(ResidentInput {
                id: *r,
                household_id: w.households[i % w.households.len()],
                full_name: names[i].into(),
                birth_date: format!("{}-03-1{}", 1960 + 5 * i, i),
                gender: Some(if i % 2 == 0 { "nam" } else { "nữ" }.into()),
                id_number: None,
                phone: None,
                relation: None,
                account: RosterStatus::None,
                agency: (i == 1).then(|| "Sở Tư pháp tỉnh Ninh Thuận".to_owned()),
            })
            .expect("resident");
    }
    w
}

/// A store at `path` (or in memory), populated, with its clock.
pub fn populated_store(path: Option<&Path>) -> (Store, World, Arc<ManualClock>) {
    let clock = clock();
    let mut store = match path {
        Some(p) => Store::open(p, options(&clock)),
        None => Store::open_in_memory(options(&clock)),
    }
    .expect("open store");
    let world = populate(&mut store);
    (store, world, clock)
}
