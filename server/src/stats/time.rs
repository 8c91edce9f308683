//! Local (UTC+7) days as the statistics count them: numbers ([`DayNum`]), so that a per-day
//! map is a range over integers. Dates, clock text and the offset itself are
//! [`doorstep_core::time`]'s.

use chrono::{Datelike, NaiveDate};
use doorstep_core::time::{DAY_MS, LOCAL_OFFSET_MS};

pub use doorstep_core::time::{local_rfc3339, local_time, today};

/// A local (UTC+7) day as a number of days since 1970-01-01.
pub type DayNum = i32;

/// The local day of a Unix-ms instant.
pub fn day_of_ms(at_ms: i64) -> DayNum {
    at_ms.saturating_add(LOCAL_OFFSET_MS).div_euclid(DAY_MS) as DayNum
}

/// The day number of a date.
pub fn day_num(d: NaiveDate) -> DayNum {
    d.num_days_from_ce() - 719_163
}

/// The date of a day number.
pub fn day_date(n: DayNum) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(n + 719_163).unwrap_or_default()
}

/// `HH:MM` (UTC+7) of a Unix-ms instant (a session's start and end).
pub fn local_hm(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms.saturating_add(LOCAL_OFFSET_MS))
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// A `YYYY-MM-DD` column.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
