//! Local (UTC+7) days and clock times as the statistics count them. Days are numbers
//! ([`DayNum`]) so that a per-day map is a range over integers.

use chrono::{Datelike, NaiveDate};
use doorstep_core::apply::LOCAL_OFFSET_MS;

/// A local (UTC+7) day as a number of days since 1970-01-01.
pub type DayNum = i32;

const DAY_MS: i64 = 86_400_000;

/// The local day of a Unix-ms instant.
pub fn day_of_ms(at_ms: i64) -> DayNum {
    (at_ms + LOCAL_OFFSET_MS).div_euclid(DAY_MS) as DayNum
}

/// The day number of a date.
pub fn day_num(d: NaiveDate) -> DayNum {
    d.num_days_from_ce() - 719_163
}

/// The date of a day number.
pub fn day_date(n: DayNum) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(n + 719_163).unwrap_or_default()
}

/// Today in Vietnam.
pub fn today() -> NaiveDate {
    day_date(day_of_ms(crate::now_ms()))
}

/// `HH:MM:SS` (UTC+7) of a Unix-ms instant.
pub fn local_time(at_ms: i64) -> String {
    local_format(at_ms, "%H:%M:%S")
}

/// `HH:MM` (UTC+7) of a Unix-ms instant.
pub fn local_hm(at_ms: i64) -> String {
    local_format(at_ms, "%H:%M")
}

/// RFC 3339 in UTC+7 of a Unix-ms instant.
pub fn local_rfc3339(at_ms: i64) -> String {
    local_format(at_ms, "%Y-%m-%dT%H:%M:%S+07:00")
}

fn local_format(at_ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + LOCAL_OFFSET_MS)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// A `YYYY-MM-DD` column.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
