//! Synthetic people: Vietnamese names, addresses, citizen IDs (CCCD structure, province code
//! 058), phone numbers with real mobile prefixes, agencies, and deterministic UUIDv7s. Every
//! value is drawn from the generator, so the same seed gives the same people.

use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

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

/// An officer's full name.
pub(super) fn officer_name(rng: &mut StdRng) -> String {
    let female = rng.gen_bool(0.3);
    let (m, g) = if female {
        (pick(rng, MIDDLE_F), pick(rng, GIVEN_F))
    } else {
        (pick(rng, MIDDLE_M), pick(rng, GIVEN_M))
    };
    format!("{} {m} {g}", pick(rng, FAMILY))
}

/// A household's address and family name.
pub(super) fn household(rng: &mut StdRng) -> (String, &'static str) {
    let address = format!("{} {}", rng.gen_range(1..300), pick(rng, STREETS));
    let family = pick(rng, FAMILY);
    (address, family)
}

/// A synthetic household member: the roster's personal columns.
pub(super) struct Member {
    /// Female (the roster's `nữ`).
    pub female: bool,
    /// Full name.
    pub name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth: String,
    /// Citizen ID (12 digits, CCCD structure).
    pub cccd: String,
    /// Mobile number, or empty.
    pub phone: String,
    /// Relation to the head of household.
    pub relation: &'static str,
    /// Agency, for officials, civil servants and armed forces.
    pub agency: Option<&'static str>,
}

/// The `m`-th member of a household of `family` (0: the head, 1: the spouse, then children or
/// parents). `serial` is the resident's 1-based index over the whole plan: the citizen ID's
/// serial number is a permutation of it (unique, not sequential-looking).
pub(super) fn member(
    rng: &mut StdRng,
    family: &str,
    m: usize,
    serial: u64,
    year_now: i32,
) -> Member {
    let female = if m == 1 { true } else { rng.gen_bool(0.5) };
    let year: i32 = match m {
        0 | 1 => rng.gen_range(1945..=1990),
        _ => rng.gen_range(1975..=2009).min(year_now - 14),
    };
    let month = rng.gen_range(1..=12u32);
    let day = rng.gen_range(1..=28u32);
    let birth = format!("{year:04}-{month:02}-{day:02}");
    let (middle, given) = if female {
        (pick(rng, MIDDLE_F), pick(rng, GIVEN_F))
    } else {
        (pick(rng, MIDDLE_M), pick(rng, GIVEN_M))
    };
    let name = format!("{family} {middle} {given}");
    let century = if year >= 2000 { 2 } else { 0 } + u64::from(female);
    let six = (serial * 7919 + 104_729) % 1_000_000;
    let cccd = format!("058{century}{:02}{six:06}", year % 100);
    let phone = if rng.gen_bool(0.8) {
        format!(
            "{}{:07}",
            pick(rng, PHONE_PREFIXES),
            rng.gen_range(0..10_000_000u32)
        )
    } else {
        String::new()
    };
    let relation = match m {
        0 => "chủ hộ",
        1 => "vợ",
        _ if year < 1960 => "bố",
        _ => "con",
    };
    let agency = (year <= 2000 && rng.gen_bool(0.035)).then(|| pick(rng, AGENCIES));
    Member {
        female,
        name,
        birth,
        cccd,
        phone,
        relation,
        agency,
    }
}
