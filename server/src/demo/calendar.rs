//! The demo's calendar: the campaign's dates and local (UTC+7) times of day.

use chrono::NaiveDate;

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
    midnight_utc - doorstep_core::apply::LOCAL_OFFSET_MS + i64::from(hour) * 3_600_000
}

/// The days from `start` to `end` (inclusive), at most `limit` of them.
pub(super) fn days(start: NaiveDate, end: NaiveDate, limit: usize) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take(limit)
        .take_while(|d| *d <= end)
        .collect()
}
