//! Validation: every check of a value a field worker types or imports from a roster, in one
//! place — personal data (ID numbers, phone numbers, birth dates, gender) and the free text
//! and codes of every record ([`check_text`], [`check_note`], [`check_code`]).
//!
//! Every function here takes the API name of the field being checked (`field`) and the raw text,
//! and either returns the value in its canonical form or
//! [`Error::Invalid`](crate::Error::Invalid) naming the field and the accepted form. The
//! functions never panic, whatever the input, and the errors **never contain the offending
//! value**: ID numbers, phone numbers and birth dates are personal data and must not end up in a
//! crash log or a sync error report. The `expected` texts are `&'static str`, so no value can
//! leak into them by construction.
//!
//! # ID numbers ([`parse_id_number`])
//!
//! Surrounding whitespace and whitespace between digits are removed (rosters often write
//! `058 090 001 234`); anything else that is not an ASCII digit is rejected.
//!
//! * **12 digits** — a citizen ID (CCCD, also the personal identification number), structured as
//!   laid down by Circular 07/2016/TT-BCA:
//!   * digits 1–3: the province of birth registration, one of the 63 codes of the circular
//!     (see [`province_name`]);
//!   * digit 4: century and gender — `0`/`1` born in the 1900s, male/female; `2`/`3` 2000s;
//!     `4`/`5` 2100s; `6`/`7` 2200s; `8`/`9` 2300s;
//!   * digits 5–6: the last two digits of the birth year;
//!   * digits 7–12: a serial number (not checked).
//!
//!   When the caller knows the birth year or the gender, the number must agree with them: a
//!   mismatch almost always means a typo or the ID of another household member.
//! * **9 digits** — an old ID card number (CMND). Still accepted, because many residents have
//!   not yet received a CCCD, but it is **not unique** nationwide (the same number was issued in
//!   different provinces) and must never be used as a key: see [`IdNumber::is_unique`].
//! * Anything else is rejected. In particular an 11-digit number — a CCCD whose leading zero was
//!   eaten by a spreadsheet — is rejected rather than guessed at.
//!
//! # Phone numbers ([`normalize_phone`])
//!
//! Spaces, dots, dashes and parentheses are ignored. The number may start with `0`, `+84` or
//! `84` (the last two in place of the leading zero). The result is the 10-digit national form
//! `0xxxxxxxxx`, whose first three digits must be a current mobile prefix (landlines and the
//! 11-digit `01xx` prefixes retired in 2018 are rejected).
//!
//! # Birth dates ([`parse_birth_date`])
//!
//! `YYYY-MM-DD`, `DD/MM/YYYY` (day and month may have one digit, as spreadsheets write them) or
//! a bare `YYYY` (rosters often know the year only). The year must lie between 1900 and the
//! current year, the date must exist in the calendar and must not lie in the future. "Today" is
//! the date in Vietnam (UTC+7), from the system clock ([`crate::time::today`]), so a child born today in
//! Vietnam is never rejected because it is still yesterday in UTC.
//!
//! # Gender ([`parse_gender`])
//!
//! `nam` / `male` / `m` or `nữ` / `nu` / `female` / `f`, case-insensitive; `nữ` is accepted in
//! precomposed (NFC) and decomposed (NFD) form.

use chrono::{Datelike, NaiveDate};
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Province codes
// ---------------------------------------------------------------------------------------------

/// The 63 province codes of Circular 07/2016/TT-BCA, sorted by code. Names are NFC.
const PROVINCES: [(&str, &str); 63] = [
    ("001", "Hà Nội"),
    ("002", "Hà Giang"),
    ("004", "Cao Bằng"),
    ("006", "Bắc Kạn"),
    ("008", "Tuyên Quang"),
    ("010", "Lào Cai"),
    ("011", "Điện Biên"),
    ("012", "Lai Châu"),
    ("014", "Sơn La"),
    ("015", "Yên Bái"),
    ("017", "Hòa Bình"),
    ("019", "Thái Nguyên"),
    ("020", "Lạng Sơn"),
    ("022", "Quảng Ninh"),
    ("024", "Bắc Giang"),
    ("025", "Phú Thọ"),
    ("026", "Vĩnh Phúc"),
    ("027", "Bắc Ninh"),
    ("030", "Hải Dương"),
    ("031", "Hải Phòng"),
    ("033", "Hưng Yên"),
    ("034", "Thái Bình"),
    ("035", "Hà Nam"),
    ("036", "Nam Định"),
    ("037", "Ninh Bình"),
    ("038", "Thanh Hóa"),
    ("040", "Nghệ An"),
    ("042", "Hà Tĩnh"),
    ("044", "Quảng Bình"),
    ("045", "Quảng Trị"),
    ("046", "Thừa Thiên Huế"),
    ("048", "Đà Nẵng"),
    ("049", "Quảng Nam"),
    ("051", "Quảng Ngãi"),
    ("052", "Bình Định"),
    ("054", "Phú Yên"),
    ("056", "Khánh Hòa"),
    ("058", "Ninh Thuận"),
    ("060", "Bình Thuận"),
    ("062", "Kon Tum"),
    ("064", "Gia Lai"),
    ("066", "Đắk Lắk"),
    ("067", "Đắk Nông"),
    ("068", "Lâm Đồng"),
    ("070", "Bình Phước"),
    ("072", "Tây Ninh"),
    ("074", "Bình Dương"),
    ("075", "Đồng Nai"),
    ("077", "Bà Rịa - Vũng Tàu"),
    ("079", "Hồ Chí Minh"),
    ("080", "Long An"),
    ("082", "Tiền Giang"),
    ("083", "Bến Tre"),
    ("084", "Trà Vinh"),
    ("086", "Vĩnh Long"),
    ("087", "Đồng Tháp"),
    ("089", "An Giang"),
    ("091", "Kiên Giang"),
    ("092", "Cần Thơ"),
    ("093", "Hậu Giang"),
    ("094", "Sóc Trăng"),
    ("095", "Bạc Liêu"),
    ("096", "Cà Mau"),
];

/// Province name for a 3-digit CCCD province code (e.g. `"058"` → `"Ninh Thuận"`), `None` if
/// the code is not one of the 63 codes of Circular 07/2016/TT-BCA. The name is in NFC.
pub fn province_name(code: &str) -> Option<&'static str> {
    PROVINCES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| PROVINCES[i].1)
}

// ---------------------------------------------------------------------------------------------
// ID numbers
// ---------------------------------------------------------------------------------------------

const EXPECTED_ID_FORM: &str =
    "12-digit citizen ID starting with a province code, or 9-digit old ID";
const EXPECTED_ID_PROVINCE: &str =
    "12-digit citizen ID whose first 3 digits are one of the 63 province codes";
const EXPECTED_ID_YEAR: &str = "12-digit citizen ID whose 4th-6th digits match the birth year";
const EXPECTED_ID_GENDER: &str = "12-digit citizen ID whose 4th digit matches the gender";

/// A personal identification number, validated. Its `Debug` form hides the digits, so that a
/// stray `{:?}` in a log cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub enum IdNumber {
    /// 12-digit citizen ID (CCCD / personal identification number), unique nationwide.
    Cccd(String),
    /// Old 9-digit ID card number (CMND): accepted, but NOT unique (must not be used as a key).
    Cmnd(String),
}

impl std::fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdNumber::Cccd(_) => f.write_str("Cccd(<redacted>)"),
            IdNumber::Cmnd(_) => f.write_str("Cmnd(<redacted>)"),
        }
    }
}

impl IdNumber {
    /// The digits, without spaces.
    pub fn as_str(&self) -> &str {
        match self {
            IdNumber::Cccd(s) | IdNumber::Cmnd(s) => s,
        }
    }

    /// Whether the number identifies one person nationwide: true for a CCCD, false for an old
    /// CMND, which must not be used as a key.
    pub fn is_unique(&self) -> bool {
        matches!(self, IdNumber::Cccd(_))
    }
}

/// Gender as recorded on the ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    /// Nam.
    Male,
    /// Nữ.
    Female,
}

impl Gender {
    /// `"male"` or `"female"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// Parse an ID number. Strips surrounding whitespace and inner spaces. `field` is the API field
/// name used in errors.
///
/// 12 digits: a CCCD. The first 3 digits must be a known province code (see
/// [`province_name`]), the 4th is the century/gender digit (0/1 = 1900s male/female,
/// 2/3 = 2000s, 4/5 = 2100s, 6/7 = 2200s, 8/9 = 2300s), digits 5-6 are the last two digits of
/// the birth year. If `birth_year` is `Some`, century + yy must equal it; if `gender` is
/// `Some`, the gender must agree.
///
/// 9 digits: an old CMND, accepted without further structure check (and `birth_year` and
/// `gender` are not checked against it).
///
/// Anything else is an [`Error::Invalid`](crate::Error::Invalid); the error says which rule
/// failed (form, province code, birth year, gender) but never contains the number.
pub fn parse_id_number(
    field: &'static str,
    raw: &str,
    birth_year: Option<i32>,
    gender: Option<Gender>,
) -> Result<IdNumber> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, EXPECTED_ID_FORM));
    }
    match digits.len() {
        9 => Ok(IdNumber::Cmnd(digits)),
        12 => {
            // All ASCII, so byte indexing is on character boundaries.
            let b = digits.as_bytes();
            if province_name(&digits[..3]).is_none() {
                return Err(Error::invalid(field, EXPECTED_ID_PROVINCE));
            }
            let century_gender = i32::from(b[3] - b'0');
            let yy = i32::from(b[4] - b'0') * 10 + i32::from(b[5] - b'0');
            let year = 1900 + 100 * (century_gender / 2) + yy;
            let encoded_gender = if century_gender % 2 == 0 {
                Gender::Male
            } else {
                Gender::Female
            };
            if birth_year.is_some_and(|y| y != year) {
                return Err(Error::invalid(field, EXPECTED_ID_YEAR));
            }
            if gender.is_some_and(|g| g != encoded_gender) {
                return Err(Error::invalid(field, EXPECTED_ID_GENDER));
            }
            Ok(IdNumber::Cccd(digits))
        }
        _ => Err(Error::invalid(field, EXPECTED_ID_FORM)),
    }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------------------------

const EXPECTED_PHONE_FORM: &str =
    "10-digit Vietnamese mobile number starting with 0, or +84 followed by 9 digits";
const EXPECTED_PHONE_PREFIX: &str =
    "10-digit Vietnamese mobile number starting with a mobile prefix such as 09x, 03x, 08x, 07x, 05x";

/// Current mobile prefixes (first three digits of the national form), by carrier.
const MOBILE_PREFIXES: &[&str] = &[
    // Viettel
    "032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098",
    // Vinaphone
    "081", "082", "083", "084", "085", "088", "091", "094", // MobiFone
    "070", "076", "077", "078", "079", "089", "090", "093", // Vietnamobile
    "052", "056", "058", "092", // Gmobile
    "059", "099", // Itel
    "087", // Reddi
    "055",
];

/// Normalise and validate a Vietnamese mobile number.
///
/// Accepts spaces, dots, dashes, parentheses, and a leading `+84` or `84` in place of the
/// leading 0. Returns the 10-digit national form `0xxxxxxxxx`, whose 3-digit prefix must be a
/// current mobile prefix (Viettel 032-039, 086, 096-098; Vinaphone 081-085, 088, 091, 094;
/// MobiFone 070, 076-079, 089, 090, 093; Vietnamobile 052, 056, 058, 092; Gmobile 059, 099;
/// Itel 087; Reddi 055).
pub fn normalize_phone(field: &'static str, raw: &str) -> Result<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, '.' | '-' | '(' | ')')))
        .collect();
    let (international, rest) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    // All ASCII after this check, so byte slicing below is on character boundaries.
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, EXPECTED_PHONE_FORM));
    }
    let subscriber = match (international, rest.len()) {
        (_, 11) if rest.starts_with("84") => &rest[2..],
        (false, 10) if rest.starts_with('0') => &rest[1..],
        _ => return Err(Error::invalid(field, EXPECTED_PHONE_FORM)),
    };
    let national = format!("0{subscriber}");
    if !MOBILE_PREFIXES.contains(&&national[..3]) {
        return Err(Error::invalid(field, EXPECTED_PHONE_PREFIX));
    }
    Ok(national)
}

// ---------------------------------------------------------------------------------------------
// Birth dates
// ---------------------------------------------------------------------------------------------

const EXPECTED_DATE_FORM: &str = "birth date as YYYY-MM-DD, DD/MM/YYYY or YYYY";
const EXPECTED_DATE_YEAR: &str = "birth date with a year from 1900 to the current year";
const EXPECTED_DATE_REAL: &str = "birth date that exists in the calendar";
const EXPECTED_DATE_PAST: &str = "birth date that is not in the future";

/// The earliest accepted birth year.
const MIN_BIRTH_YEAR: i32 = 1900;

/// A birth date, possibly known to the year only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthDate {
    /// The full date is known.
    Full(NaiveDate),
    /// Only the year is known (common in rosters).
    YearOnly(i32),
}

impl BirthDate {
    /// The birth year.
    pub fn year(&self) -> i32 {
        match self {
            BirthDate::Full(d) => d.year(),
            BirthDate::YearOnly(y) => *y,
        }
    }

    /// Canonical text: `"YYYY-MM-DD"` or `"YYYY"`.
    pub fn to_canonical(&self) -> String {
        match self {
            BirthDate::Full(d) => d.format("%Y-%m-%d").to_string(),
            BirthDate::YearOnly(y) => format!("{y:04}"),
        }
    }
}

/// Parse a birth date given as `"YYYY-MM-DD"`, `"DD/MM/YYYY"` (day and month may have one
/// digit) or just `"YYYY"` (year only, common in rosters). Surrounding whitespace is ignored.
///
/// The year must be from 1900 to the current year, the date must exist (2023-02-30 is
/// rejected) and must not be in the future. "Today" is the current date in Vietnam (UTC+7).
pub fn parse_birth_date(field: &'static str, raw: &str) -> Result<BirthDate> {
    parse_birth_date_on(field, raw, crate::time::today())
}

/// [`parse_birth_date`] with an explicit "today", so that the rules can be tested at a fixed
/// date.
fn parse_birth_date_on(field: &'static str, raw: &str, today: NaiveDate) -> Result<BirthDate> {
    let text = raw.trim();
    let form = Error::invalid(field, EXPECTED_DATE_FORM);
    let parts: Vec<&str> = if text.contains('-') {
        text.split('-').collect()
    } else {
        text.split('/').collect()
    };
    let (year, month_day) = match parts.as_slice() {
        [y] => (digits(y, 4, 4).ok_or(form)?, None),
        [y, m, d] if text.contains('-') => {
            let ymd = (digits(y, 4, 4), digits(m, 2, 2), digits(d, 2, 2));
            match ymd {
                (Some(y), Some(m), Some(d)) => (y, Some((m, d))),
                _ => return Err(form),
            }
        }
        [d, m, y] => {
            let ymd = (digits(y, 4, 4), digits(m, 1, 2), digits(d, 1, 2));
            match ymd {
                (Some(y), Some(m), Some(d)) => (y, Some((m, d))),
                _ => return Err(form),
            }
        }
        _ => return Err(form),
    };
    // At most 4 digits, so the conversion cannot fail.
    let year = i32::try_from(year).map_err(|_| Error::invalid(field, EXPECTED_DATE_YEAR))?;
    if !(MIN_BIRTH_YEAR..=today.year()).contains(&year) {
        return Err(Error::invalid(field, EXPECTED_DATE_YEAR));
    }
    let Some((month, day)) = month_day else {
        return Ok(BirthDate::YearOnly(year));
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or(Error::invalid(field, EXPECTED_DATE_REAL))?;
    if date > today {
        return Err(Error::invalid(field, EXPECTED_DATE_PAST));
    }
    Ok(BirthDate::Full(date))
}

/// The value of `s` if it is `min..=max` ASCII digits (no sign, no spaces).
fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

// ---------------------------------------------------------------------------------------------
// Gender
// ---------------------------------------------------------------------------------------------

const EXPECTED_GENDER: &str = "gender as nam/male/m or nữ/nu/female/f";

/// Parse a gender from roster text: `nam`/`male`/`m` → [`Gender::Male`],
/// `nữ`/`nu`/`female`/`f` → [`Gender::Female`]. Case-insensitive, surrounding whitespace
/// ignored; `nữ` is accepted both precomposed (NFC) and decomposed (NFD).
pub fn parse_gender(field: &'static str, raw: &str) -> Result<Gender> {
    let text: String = raw.trim().to_lowercase().nfc().collect();
    match text.as_str() {
        "nam" | "male" | "m" => Ok(Gender::Male),
        "nữ" | "nu" | "female" | "f" => Ok(Gender::Female),
        _ => Err(Error::invalid(field, EXPECTED_GENDER)),
    }
}

// ---------------------------------------------------------------------------------------------
// Free text and codes
// ---------------------------------------------------------------------------------------------

/// Longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest name or address accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 300;
/// Longest relation to the household head (`vợ`, `con`…), in characters, and its accepted form.
pub const MAX_RELATION_CHARS: usize = 60;
/// What a relation must be.
pub const EXPECTED_RELATION: &str = "a relation of at most 60 characters";
/// Longest unit kind (`thôn`, `khu phố`…), in characters, and its accepted form.
pub const MAX_KIND_CHARS: usize = 40;
/// What a unit kind must be.
pub const EXPECTED_KIND: &str = "a unit kind of 1-40 characters";

/// A text field: NFC, trimmed, inner white space collapsed, no control characters, 1 to `max`
/// characters. Text that is already clean (nearly every roster cell) takes a fast path.
pub fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    expected: &'static str,
) -> Result<String> {
    use unicode_normalization::{is_nfc_quick, IsNormalized};
    let mut prev_space = true; // rejects a leading space
    let mut chars = 0;
    let mut plain = true;
    for c in s.chars() {
        chars += 1;
        if c.is_whitespace() {
            if c != ' ' || prev_space {
                plain = false;
                break;
            }
            prev_space = true;
        } else {
            if c.is_control() {
                plain = false;
                break;
            }
            prev_space = false;
        }
    }
    if !plain || prev_space || is_nfc_quick(s.chars()) != IsNormalized::Yes {
        // Empty, untrimmed, odd white space, control characters or not NFC: the general path.
        return check_text_general(field, s, max, expected);
    }
    if chars > max {
        return Err(Error::invalid(field, expected));
    }
    Ok(s.to_owned())
}

fn check_text_general(
    field: &'static str,
    s: &str,
    max: usize,
    expected: &'static str,
) -> Result<String> {
    let s = crate::text::clean(s);
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(Error::invalid(field, expected));
    }
    Ok(s)
}

pub fn check_note(field: &'static str, note: Option<&str>) -> Result<Option<String>> {
    match note.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => {
            Err(Error::invalid(field, "text of at most 2000 characters"))
        }
        Some(n) => Ok(Some(n.nfc_string())),
    }
}

trait NfcString {
    fn nfc_string(&self) -> String;
}
impl NfcString for str {
    fn nfc_string(&self) -> String {
        use unicode_normalization::UnicodeNormalization;
        self.nfc().collect()
    }
}

/// An official or household code: 1-32 ASCII letters, digits, `-`, `_` or `.`.
pub fn check_code(field: &'static str, code: &str) -> Result<String> {
    let code = code.trim();
    if code.is_empty()
        || code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(Error::invalid(
            field,
            "a code of 1-32 ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(code.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path of `check_text` gives exactly what the general path gives.
        #[test]
        fn check_text_fast_path_agrees(
            s in "[ \t\u{a0}\u{3000}\n\u{1}aAđĐeêế\u{302}\u{301}\u{323}ạặ.,-]{0,12}|\\PC{0,12}",
            max in 1usize..10,
        ) {
            let fast = check_text("f", &s, max, "x").map_err(|e| e.to_string());
            let general = check_text_general("f", &s, max, "x").map_err(|e| e.to_string());
            prop_assert_eq!(fast, general);
        }
    }

    /// A valid Ninh Thuận CCCD: province 058, century/gender digit 1 (1900s, female), born 1990.
    const NT_FEMALE_1990: &str = "058190001234";

    /// Maximal runs of ASCII digits in `s`.
    fn digit_runs(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// Panics if the error text contains the input, its digits, or any run of 3+ of its digits.
    fn assert_no_leak(err: &Error, raw: &str) {
        let text = format!("{err}");
        let all_digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        if all_digits.len() >= 3 {
            assert!(!text.contains(&all_digits), "{text:?} leaks {raw:?}");
        }
        for run in digit_runs(raw).into_iter().filter(|r| r.len() >= 3) {
            assert!(!text.contains(run), "{text:?} leaks {run:?} of {raw:?}");
        }
        let trimmed = raw.trim();
        if trimmed.len() >= 3 && trimmed.chars().any(|c| c.is_ascii_digit()) {
            assert!(!text.contains(trimmed), "{text:?} leaks {raw:?}");
        }
    }

    /// Unwraps an `Invalid` error for `field`, checks it does not leak `raw`, returns `expected`.
    fn expected_of<T: std::fmt::Debug>(res: Result<T>, field: &str, raw: &str) -> &'static str {
        let err = res.expect_err("input should have been rejected");
        assert_no_leak(&err, raw);
        match err {
            Error::Invalid { field: f, expected } => {
                assert_eq!(f, field);
                expected
            }
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    fn id(raw: &str) -> Result<IdNumber> {
        parse_id_number("id_number", raw, None, None)
    }

    fn id_rejection(raw: &str, year: Option<i32>, gender: Option<Gender>) -> &'static str {
        expected_of(
            parse_id_number("id_number", raw, year, gender),
            "id_number",
            raw,
        )
    }

    fn phone_rejection(raw: &str) -> &'static str {
        expected_of(normalize_phone("phone", raw), "phone", raw)
    }

    fn date_rejection_on(raw: &str, today: NaiveDate) -> &'static str {
        expected_of(
            parse_birth_date_on("birth_date", raw, today),
            "birth_date",
            raw,
        )
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A fixed "today" for deterministic date tests.
    fn campaign_day() -> NaiveDate {
        ymd(2023, 6, 15)
    }

    // --- province codes ---

    #[test]
    fn province_table_has_63_sorted_unique_nfc_entries() {
        assert_eq!(PROVINCES.len(), 63);
        for pair in PROVINCES.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} not before {}",
                pair[0].0,
                pair[1].0
            );
        }
        for (code, name) in PROVINCES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            assert!(unicode_normalization::is_nfc(name), "{name} is not NFC");
            assert_eq!(province_name(code), Some(name));
        }
    }

    #[test]
    fn province_names_of_known_and_unknown_codes() {
        assert_eq!(province_name("058"), Some("Ninh Thuận"));
        assert_eq!(province_name("001"), Some("Hà Nội"));
        assert_eq!(province_name("079"), Some("Hồ Chí Minh"));
        assert_eq!(province_name("096"), Some("Cà Mau"));
        for unknown in ["000", "003", "097", "099", "58", "0580", "", "abc"] {
            assert_eq!(province_name(unknown), None, "{unknown}");
        }
    }

    // --- ID numbers ---

    #[test]
    fn valid_ninh_thuan_cccd() {
        let parsed = parse_id_number(
            "id_number",
            NT_FEMALE_1990,
            Some(1990),
            Some(Gender::Female),
        )
        .unwrap();
        assert_eq!(parsed, IdNumber::Cccd(NT_FEMALE_1990.to_owned()));
        assert_eq!(parsed.as_str(), NT_FEMALE_1990);
        assert!(parsed.is_unique());
    }

    #[test]
    fn cccd_spaces_are_stripped() {
        let parsed = id("  058 190 001 234\t").unwrap();
        assert_eq!(parsed.as_str(), NT_FEMALE_1990);
        // A non-breaking space, as pasted from a spreadsheet, counts as whitespace too.
        assert_eq!(id("058\u{a0}190001234").unwrap().as_str(), NT_FEMALE_1990);
    }

    #[test]
    fn century_digits_map_to_years_and_genders() {
        let cases = [
            ('0', 1985, Gender::Male),
            ('1', 1985, Gender::Female),
            ('2', 2085, Gender::Male),
            ('3', 2085, Gender::Female),
            ('4', 2185, Gender::Male),
            ('5', 2185, Gender::Female),
            ('6', 2285, Gender::Male),
            ('7', 2285, Gender::Female),
            ('8', 2385, Gender::Male),
            ('9', 2385, Gender::Female),
        ];
        for (digit, year, gender) in cases {
            let raw = format!("058{digit}85000123");
            let parsed = parse_id_number("id_number", &raw, Some(year), Some(gender));
            assert_eq!(parsed.unwrap().as_str(), raw);
        }
        // A child born in 2005 has century digit 2 (male) or 3 (female).
        assert!(parse_id_number(
            "id_number",
            "058305000123",
            Some(2005),
            Some(Gender::Female)
        )
        .is_ok());
    }

    #[test]
    fn unknown_province_code_rejected() {
        for raw in [
            "000190001234",
            "099190001234",
            "003190001234",
            "097190001234",
        ] {
            assert_eq!(id_rejection(raw, None, None), EXPECTED_ID_PROVINCE);
        }
        assert!(id("058190001234").is_ok());
    }

    #[test]
    fn birth_year_mismatch_rejected() {
        // Born 1990 according to the number, 1991 according to the roster.
        assert_eq!(
            id_rejection(NT_FEMALE_1990, Some(1991), None),
            EXPECTED_ID_YEAR
        );
        // Same two digits, wrong century.
        assert_eq!(
            id_rejection(NT_FEMALE_1990, Some(2090), None),
            EXPECTED_ID_YEAR
        );
        assert!(EXPECTED_ID_YEAR.contains("4th-6th digits match the birth year"));
        assert!(parse_id_number("id_number", NT_FEMALE_1990, Some(1990), None).is_ok());
    }

    #[test]
    fn gender_mismatch_rejected() {
        assert_eq!(
            id_rejection(NT_FEMALE_1990, Some(1990), Some(Gender::Male)),
            EXPECTED_ID_GENDER
        );
        assert_eq!(
            id_rejection("058090001234", None, Some(Gender::Female)),
            EXPECTED_ID_GENDER
        );
        assert!(parse_id_number("id_number", "058090001234", None, Some(Gender::Male)).is_ok());
    }

    #[test]
    fn nine_digit_cmnd_accepted_but_not_unique() {
        let parsed =
            parse_id_number("id_number", " 264 123 456 ", Some(1990), Some(Gender::Male)).unwrap();
        assert_eq!(parsed, IdNumber::Cmnd("264123456".to_owned()));
        assert_eq!(parsed.as_str(), "264123456");
        assert!(!parsed.is_unique());
    }

    #[test]
    fn wrong_length_or_non_digits_rejected() {
        for raw in [
            "",
            "   ",
            "58190001234",   // 11 digits: leading zero lost in a spreadsheet
            "0581900012345", // 13 digits
            "12345678",      // 8 digits
            "0581900O1234",  // letter O instead of zero
            "CCCD058190001234",
            "058-190-001-234", // dashes are not stripped from ID numbers
            "+58190001234",
            "０５８１９０００１２３４", // full-width digits
            "٠٥٨١٩٠٠٠١٢٣٤",             // Arabic-Indic digits
        ] {
            assert_eq!(id_rejection(raw, None, None), EXPECTED_ID_FORM, "{raw}");
        }
        assert_eq!(
            EXPECTED_ID_FORM,
            "12-digit citizen ID starting with a province code, or 9-digit old ID"
        );
    }

    #[test]
    fn id_expected_texts_are_distinct() {
        let all = [
            EXPECTED_ID_FORM,
            EXPECTED_ID_PROVINCE,
            EXPECTED_ID_YEAR,
            EXPECTED_ID_GENDER,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    // --- phone numbers ---

    #[test]
    fn phone_forms_normalised() {
        for raw in [
            "0912345678",
            "+84 912 345 678",
            "84912345678",
            "091.234.5678",
            "0912-345-678",
            "(091) 234 5678",
            "(+84) 912.345.678",
            " +84912345678 ",
        ] {
            assert_eq!(
                normalize_phone("phone", raw).unwrap(),
                "0912345678",
                "{raw}"
            );
        }
    }

    #[test]
    fn every_carrier_prefix_accepted() {
        for prefix in MOBILE_PREFIXES {
            let raw = format!("{prefix}1234567");
            assert_eq!(normalize_phone("phone", &raw).unwrap(), raw);
        }
        assert_eq!(
            normalize_phone("phone", "+84 358 123 456").unwrap(),
            "0358123456"
        );
        assert_eq!(
            normalize_phone("phone", "0559 123 456").unwrap(),
            "0559123456"
        );
    }

    #[test]
    fn landline_and_unknown_prefix_rejected() {
        for raw in [
            "0211234567", // 021x: landline area code
            "0123456789", // 012: retired 11-digit-era prefix
            "0241234567", // Hà Nội landline prefix
            "0001234567",
            "0501234567",
            "+84 212 345 678",
        ] {
            assert_eq!(phone_rejection(raw), EXPECTED_PHONE_PREFIX, "{raw}");
        }
    }

    #[test]
    fn phone_wrong_length_or_form_rejected() {
        for raw in [
            "",
            "091234567",     // 9 digits
            "09123456789",   // 11 digits starting with 0
            "01234567890",   // old 11-digit number
            "+840912345678", // +84 followed by the national 0
            "0084912345678", // international 00 prefix
            "+85 912 345 678",
            "+8491234567", // +84 and 8 digits
            "912345678",   // national number without the 0
            "0912 345 67x",
            "0912+345678",
            "+",
            "84",
            "０９１２３４５６７８", // full-width digits
        ] {
            assert_eq!(phone_rejection(raw), EXPECTED_PHONE_FORM, "{raw}");
        }
    }

    // --- birth dates ---

    #[test]
    fn birth_date_in_all_three_forms() {
        let today = campaign_day();
        let full = BirthDate::Full(ymd(1990, 3, 5));
        for raw in ["1990-03-05", "05/03/1990", "5/3/1990", " 05/03/1990 "] {
            assert_eq!(
                parse_birth_date_on("birth_date", raw, today).unwrap(),
                full,
                "{raw}"
            );
        }
        assert_eq!(full.year(), 1990);
        assert_eq!(full.to_canonical(), "1990-03-05");

        let year_only = parse_birth_date_on("birth_date", "1990", today).unwrap();
        assert_eq!(year_only, BirthDate::YearOnly(1990));
        assert_eq!(year_only.year(), 1990);
        assert_eq!(year_only.to_canonical(), "1990");

        // Leap day and the boundaries of the accepted range.
        assert!(parse_birth_date_on("birth_date", "2000-02-29", today).is_ok());
        assert!(parse_birth_date_on("birth_date", "01/01/1900", today).is_ok());
        assert!(parse_birth_date_on("birth_date", "2023-06-15", today).is_ok());
        assert!(parse_birth_date_on("birth_date", "2023", today).is_ok());
    }

    #[test]
    fn birth_date_with_real_clock() {
        assert_eq!(
            parse_birth_date("birth_date", "1990-03-05").unwrap(),
            BirthDate::Full(ymd(1990, 3, 5))
        );
        let this_year = chrono::Utc::now().year();
        assert!(parse_birth_date("birth_date", &format!("{this_year}")).is_ok());
        let next_year = this_year + 1;
        assert_eq!(
            expected_of(
                parse_birth_date("birth_date", &format!("{next_year}")),
                "birth_date",
                &format!("{next_year}")
            ),
            EXPECTED_DATE_YEAR
        );
    }

    #[test]
    fn impossible_calendar_date_rejected() {
        let today = campaign_day();
        for raw in [
            "2023-02-30",
            "30/02/2023",
            "2023-02-29",
            "1990-13-01",
            "1990-00-10",
            "31/04/1990",
        ] {
            assert_eq!(date_rejection_on(raw, today), EXPECTED_DATE_REAL, "{raw}");
        }
    }

    #[test]
    fn year_before_1900_rejected() {
        let today = campaign_day();
        for raw in ["1850", "1850-01-01", "01/01/1850", "1899-12-31", "0000"] {
            assert_eq!(date_rejection_on(raw, today), EXPECTED_DATE_YEAR, "{raw}");
        }
    }

    #[test]
    fn future_birth_date_rejected() {
        let today = campaign_day();
        for raw in ["2024", "2024-01-01", "3000"] {
            assert_eq!(date_rejection_on(raw, today), EXPECTED_DATE_YEAR, "{raw}");
        }
        // Same year, but later than today.
        for raw in ["2023-06-16", "31/12/2023"] {
            assert_eq!(date_rejection_on(raw, today), EXPECTED_DATE_PAST, "{raw}");
        }
    }

    #[test]
    fn birth_date_malformed_rejected() {
        let today = campaign_day();
        for raw in [
            "",
            "90",
            "19900",
            "1990-3-5",   // ISO form needs two-digit month and day
            "1990/03/05", // year first with slashes
            "05-03-1990", // day first with dashes
            "05/03/90",   // two-digit year
            "1990-03-05T00:00:00",
            "+1990",
            "05/+3/1990",
            "1990-03",
            "5.3.1990",
            "born 1990",
            "１９９０",
        ] {
            assert_eq!(date_rejection_on(raw, today), EXPECTED_DATE_FORM, "{raw}");
        }
    }

    // --- gender ---

    #[test]
    fn gender_forms_parsed() {
        for raw in ["nam", "Nam", "NAM", "male", "Male", "m", "M", " nam "] {
            assert_eq!(parse_gender("gender", raw).unwrap(), Gender::Male, "{raw}");
        }
        let nfc = "n\u{1eef}"; // nữ, precomposed
        let nfd = "nu\u{31b}\u{303}"; // nữ, fully decomposed
        let upper_nfd = "NU\u{31b}\u{303}";
        for raw in [
            nfc, nfd, upper_nfd, "Nữ", "NỮ", "nu", "Nu", "female", "FEMALE", "f", "F",
        ] {
            assert_eq!(
                parse_gender("gender", raw).unwrap(),
                Gender::Female,
                "{raw:?}"
            );
        }
        assert_eq!(Gender::Male.as_str(), "male");
        assert_eq!(Gender::Female.as_str(), "female");
    }

    #[test]
    fn unknown_gender_rejected() {
        for raw in ["", "x", "nam nữ", "nư", "0", "1", "khác", "fem"] {
            let err = parse_gender("gender", raw).unwrap_err();
            assert_no_leak(&err, raw);
            assert!(matches!(
                err,
                Error::Invalid {
                    field: "gender",
                    expected: EXPECTED_GENDER
                }
            ));
        }
    }

    // --- privacy ---

    #[test]
    fn errors_never_echo_the_input() {
        let today = campaign_day();
        let mut errors: Vec<(Error, &str)> = Vec::new();
        for raw in [
            "58190001234",
            "000190001234",
            "0581900O1234",
            "0581900012345",
        ] {
            errors.push((id(raw).unwrap_err(), raw));
        }
        for (year, gender) in [(Some(1991), None), (None, Some(Gender::Male))] {
            let err = parse_id_number("id_number", NT_FEMALE_1990, year, gender).unwrap_err();
            errors.push((err, NT_FEMALE_1990));
        }
        for raw in [
            "0211234567",
            "0123456789",
            "091234567",
            "+840912345678",
            "+84 212 345 678",
        ] {
            errors.push((normalize_phone("phone", raw).unwrap_err(), raw));
        }
        for raw in ["2023-02-30", "1850", "2024-01-01", "2023-06-16", "1990-3-5"] {
            errors.push((
                parse_birth_date_on("birth_date", raw, today).unwrap_err(),
                raw,
            ));
        }
        for (err, raw) in &errors {
            let text = format!("{err}");
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            assert!(!text.contains(&digits), "{text:?} contains {digits:?}");
            assert_no_leak(err, raw);
        }
        // The ID errors in particular: not even the province code and the birth year.
        let text = format!("{}", errors[4].0);
        assert!(!text.contains("058") && !text.contains("190"), "{text}");
    }

    // --- never panic, never leak ---

    /// Whether `text` contains 6 or more consecutive digits taken from `raw`: any window of six
    /// consecutive digits of a digit run of `raw`, or of all of `raw`'s digits concatenated.
    fn leaks_six_digits(text: &str, raw: &str) -> bool {
        let all: String = raw.chars().filter(char::is_ascii_digit).collect();
        let mut sources = digit_runs(raw);
        sources.push(&all);
        sources.iter().any(|s| {
            s.as_bytes()
                .windows(6)
                .any(|w| text.contains(std::str::from_utf8(w).unwrap_or_default()))
        })
    }

    /// The error texts contain no run of 6+ digits at all, which is stronger still.
    fn has_six_digit_run(text: &str) -> bool {
        digit_runs(text).iter().any(|r| r.len() >= 6)
    }

    fn check_no_leak<T>(res: Result<T>, raw: &str) -> std::result::Result<(), TestCaseError> {
        if let Err(err) = res {
            let text = format!("{err}");
            prop_assert!(!leaks_six_digits(&text, raw), "{} leaks digits", text);
            prop_assert!(!has_six_digit_run(&text), "{} has a digit run", text);
        }
        Ok(())
    }

    fn gender_strategy() -> impl Strategy<Value = Option<Gender>> {
        prop_oneof![
            Just(None),
            Just(Some(Gender::Male)),
            Just(Some(Gender::Female))
        ]
    }

    /// Arbitrary text, plus text that looks like an ID or a phone number.
    fn input_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{0,14}",
            "[0-9 +.()-]{0,18}",
            "(\\+?84|0)[0-9 .]{8,12}",
            "0[0-9]{2}[0-9０-９]{7,10}",
        ]
    }

    proptest! {
        #[test]
        fn parse_id_number_never_panics_nor_leaks(
            raw in input_strategy(),
            year in proptest::option::of(any::<i32>()),
            gender in gender_strategy(),
        ) {
            let res = parse_id_number("id_number", &raw, year, gender);
            if let Ok(parsed) = &res {
                prop_assert!(matches!(parsed.as_str().len(), 9 | 12));
            }
            check_no_leak(res, &raw)?;
        }

        #[test]
        fn normalize_phone_never_panics_nor_leaks(raw in input_strategy()) {
            let res = normalize_phone("phone", &raw);
            if let Ok(national) = &res {
                prop_assert_eq!(national.len(), 10);
                prop_assert!(national.starts_with('0'));
                prop_assert!(MOBILE_PREFIXES.contains(&&national[..3]));
            }
            check_no_leak(res, &raw)?;
        }

        #[test]
        fn parse_birth_date_and_gender_never_panic(
            raw in prop_oneof![any::<String>(), "[0-9/ -]{0,12}"],
        ) {
            if let Ok(date) = parse_birth_date("birth_date", &raw) {
                let canonical = parse_birth_date("birth_date", &date.to_canonical());
                prop_assert_eq!(canonical.ok(), Some(date));
            }
            let _ = parse_gender("gender", &raw);
        }
    }
}
