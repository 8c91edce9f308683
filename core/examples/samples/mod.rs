//! The sample files a newcomer imports, written by `field_day --write-units FILE
//! --write-roster FILE --write-roster-with-errors FILE` and checked by
//! `core/tests/sample_rosters.rs` (which includes this file):
//!
//! - [`units_csv`]: Ninh Thuận's official units and the six villages of commune 22852 that the
//!   roster refers to;
//! - [`roster_csv`]: a roster of those villages in which every row is accepted;
//! - [`ROSTER_WITH_ERRORS`]: `docs/examples/roster-with-errors.csv`, a few good rows and one
//!   bad row of each kind; `docs/roster-format.md` ("Sample rosters") lists the rejected lines
//!   and the importer's reasons.
//!
//! Everything is synthetic except the administrative units (`data/ninh-thuan-2023-units.csv`).
#![allow(dead_code)] // each includer uses a part

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::fmt::Write as _;

/// Ninh Thuận's administrative units as of 2023 (province, districts, communes).
pub const UNITS: &str = include_str!("../../../data/ninh-thuan-2023-units.csv");
/// Xã Phương Hải, Huyện Ninh Hải: the commune of the sample villages.
pub const COMMUNE: &str = "22852";
/// Villages `22852-01` … `22852-06`.
pub const VILLAGES: usize = 6;
pub const HOUSEHOLDS_PER_VILLAGE: usize = 120;
/// The roster with deliberate bad rows (its villages are those of [`units_csv`]).
pub const ROSTER_WITH_ERRORS: &str = include_str!("../../../docs/examples/roster-with-errors.csv");

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
    "Chamaléa",
    "Katơr",
    "Đàng",
];
const MIDDLE_M: &[&str] = &["Văn", "Hữu", "Đức", "Minh", "Quốc"];
const MIDDLE_F: &[&str] = &["Thị", "Ngọc", "Thu", "Kim"];
const GIVEN: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Đông", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Lan", "Linh",
    "Long", "Mai", "Nam", "Ngân", "Phúc", "Quang", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy",
    "Yến",
];
const PREFIXES: &[&str] = &[
    "091", "094", "098", "097", "086", "032", "035", "077", "070", "083",
];

/// The village codes of the sample, `22852-01` … `22852-06`.
pub fn village_codes() -> Vec<String> {
    (1..=VILLAGES)
        .map(|v| format!("{COMMUNE}-{v:02}"))
        .collect()
}

/// The units file the sample rosters need: the official units, then the sample's villages
/// (parents before children, as `docs/roster-format.md` asks).
pub fn units_csv() -> String {
    let mut csv = String::from(UNITS);
    if !csv.ends_with('\n') {
        csv.push('\n');
    }
    for (v, code) in village_codes().iter().enumerate() {
        let _ = writeln!(csv, "{code},{COMMUNE},village,thôn,Thôn {}", v + 1);
    }
    csv
}

/// A deterministic roster in which every row is accepted: households with 1–6 residents,
/// valid citizen IDs (province 058, century/gender digit and birth year consistent, one
/// serial each) and mobile numbers.
pub fn roster_csv() -> String {
    let mut rng = StdRng::seed_from_u64(2023);
    let mut csv = String::from("household_code,village_code,address,full_name,birth_date,gender,id_number,phone,relation,account\n");
    let mut serial = 0u32;
    for v in 1..=VILLAGES {
        for h in 0..HOUSEHOLDS_PER_VILLAGE {
            let code = format!("PH{v:02}{h:04}");
            let family = FAMILY[rng.gen_range(0..FAMILY.len())];
            for i in 0..rng.gen_range(1..=6) {
                serial += 1;
                let female = rng.gen_bool(0.5);
                let year: i32 = if i == 0 {
                    rng.gen_range(1950..1990)
                } else {
                    rng.gen_range(1950..2008)
                };
                let middle = if female {
                    MIDDLE_F[rng.gen_range(0..MIDDLE_F.len())]
                } else {
                    MIDDLE_M[rng.gen_range(0..MIDDLE_M.len())]
                };
                let name = format!("{family} {middle} {}", GIVEN[rng.gen_range(0..GIVEN.len())]);
                let century = if year >= 2000 { 2 } else { 0 } + female as i32;
                let id = format!("058{century}{:02}{serial:06}", year % 100);
                let phone = format!(
                    "{}{:07}",
                    PREFIXES[rng.gen_range(0..PREFIXES.len())],
                    rng.gen_range(0..10_000_000)
                );
                let account = match rng.gen_range(0..10) {
                    0 => "level1_pending",
                    1 => "level2_pending",
                    _ => "",
                };
                let relation = match i {
                    0 => "chủ hộ",
                    1 => "vợ/chồng",
                    _ => "con",
                };
                let _ = writeln!(
                    csv,
                    "{code},{COMMUNE}-{v:02},\"Thôn {v}, xã Phương Hải\",{name},{year},{},{id},{phone},{relation},{account}",
                    if female { "nữ" } else { "nam" }
                );
            }
        }
    }
    csv
}
