//! The demo's calendar: the campaign's dates, its days, and local (UTC+7) times of day (from the
//! core's [`doorstep_core::time`]).

use chrono::NaiveDate;

/// 27/6/2023.
pub fn campaign_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 6, 27).unwrap_or_default()
}

/// 15/9/2023.
pub fn campaign_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 9, 15).unwrap_or_default()
}

/// Unix ms of `hour:00` local time (UTC+7) on `day` (the core's, kept here under its old path).
pub use doorstep_core::time::local_ms;

/// The days from `start` to `end` (inclusive), at most `limit` of them.
pub(super) fn days(start: NaiveDate, end: NaiveDate, limit: usize) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take(limit)
        .take_while(|d| *d <= end)
        .collect()
}
