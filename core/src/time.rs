//! Local time: the one place that knows Vietnam is UTC+7.
//!
//! Every replica stamps operations in Unix milliseconds (UTC); a visit, a quota and a daily
//! report count for a *local* calendar day. Vietnam has one time zone and no daylight saving
//! time, so a fixed offset is exact, and keeping it here — not in each module that needs a
//! day — means the field store, the server's statistics, the demo generator and the simulator
//! cannot disagree on where a day starts.

use chrono::{DateTime, Datelike, NaiveDate};

/// Vietnam's offset from UTC (no daylight saving): the day a visit counts for is local.
pub const LOCAL_OFFSET_MS: i64 = 7 * 3600 * 1000;

/// One day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The local (UTC+7) calendar date of a Unix-millisecond instant (1970-01-01 if out of range).
pub fn local_date(at_ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(at_ms.saturating_add(LOCAL_OFFSET_MS))
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The local (UTC+7) calendar day of a Unix-millisecond instant, as `YYYY-MM-DD`.
pub fn local_day(at_ms: i64) -> String {
    let secs = at_ms.saturating_add(LOCAL_OFFSET_MS).div_euclid(1000);
    let Some(date) = DateTime::from_timestamp(secs, 0).map(|d| d.date_naive()) else {
        return "0000-00-00".to_owned();
    };
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return date.format("%Y-%m-%d").to_string(); // a sign, or more than 4 digits
    }
    // The digits by hand: applying a sync computes one day per fact, and chrono's formatter
    // cost more than the rest of the day's computation (`docs/bench/apply.md`).
    fn digits(out: &mut String, n: u32, width: u32) {
        for k in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(k) % 10) as u8));
        }
    }
    let mut day = String::with_capacity(10);
    digits(&mut day, year as u32, 4);
    day.push('-');
    digits(&mut day, date.month(), 2);
    day.push('-');
    digits(&mut day, date.day(), 2);
    day
}

/// Today's date in Vietnam, from the system clock.
pub fn today() -> NaiveDate {
    local_date(now_ms())
}

/// Unix ms of local midnight (00:00 UTC+7) starting `day`.
pub fn day_start_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0)
        - LOCAL_OFFSET_MS
}

/// Unix ms of `hour:00` local time (UTC+7) on `day`.
pub fn local_ms(day: NaiveDate, hour: u32) -> i64 {
    day_start_ms(day) + i64::from(hour) * 3_600_000
}

/// `HH:MM:SS` (UTC+7) of a Unix-ms instant (empty if out of range).
pub fn local_time(at_ms: i64) -> String {
    DateTime::from_timestamp_millis(at_ms.saturating_add(LOCAL_OFFSET_MS))
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// RFC 3339 with the +07:00 offset of a Unix-ms instant (empty if out of range).
pub fn local_rfc3339(at_ms: i64) -> String {
    DateTime::from_timestamp_millis(at_ms.saturating_add(LOCAL_OFFSET_MS))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+07:00").to_string())
        .unwrap_or_default()
}

/// The system clock, Unix ms (0 before 1970).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    /// Instants a peer may send, however absurd, never overflow (found by fuzzing).
    #[test]
    fn extreme_instants_do_not_overflow() {
        for at in [i64::MAX, i64::MAX - 1, i64::MIN, i64::MIN + 1] {
            let _ = (
                local_day(at),
                local_date(at),
                local_time(at),
                local_rfc3339(at),
            );
        }
        assert_ne!(local_day(i64::MAX), local_day(0));
    }

    #[test]
    fn local_day_is_vietnam_time() {
        // 2023-06-26 17:30 UTC is 2023-06-27 00:30 in Vietnam.
        let at = utc_ms(2023, 6, 26, 17, 30);
        assert_eq!(local_day(at), "2023-06-27");
        assert_eq!(
            local_date(at),
            NaiveDate::from_ymd_opt(2023, 6, 27).unwrap()
        );
        assert_eq!(local_time(at), "00:30:00");
        assert_eq!(local_rfc3339(at), "2023-06-27T00:30:00+07:00");
        // 16:59 UTC is still the 26th locally.
        assert_eq!(local_day(utc_ms(2023, 6, 26, 16, 59)), "2023-06-26");
    }

    #[test]
    fn a_day_starts_at_local_midnight() {
        let d = NaiveDate::from_ymd_opt(2023, 7, 10).unwrap();
        assert_eq!(day_start_ms(d), utc_ms(2023, 7, 9, 17, 0));
        assert_eq!(local_ms(d, 8), utc_ms(2023, 7, 10, 1, 0));
        assert_eq!(local_day(day_start_ms(d)), "2023-07-10");
        assert_eq!(local_day(day_start_ms(d) - 1), "2023-07-09");
    }

    proptest! {
        /// The hand-written digits say what chrono's `%Y-%m-%d` says, over every instant.
        #[test]
        fn local_day_matches_chrono(at in prop_oneof![
            any::<i64>(),
            // Years -1 to 10001: the hand-written range and both sides of it.
            -62_200_000_000_000i64..253_500_000_000_000,
        ]) {
            let secs = at.saturating_add(LOCAL_OFFSET_MS).div_euclid(1000);
            let chrono = DateTime::from_timestamp(secs, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "0000-00-00".to_owned());
            prop_assert_eq!(local_day(at), chrono);
        }

        #[test]
        fn every_instant_lies_in_its_local_day(at in -2_000_000_000_000i64..5_000_000_000_000) {
            let start = day_start_ms(local_date(at));
            prop_assert!(start <= at && at < start + DAY_MS);
            prop_assert_eq!(local_day(at), local_date(at).format("%Y-%m-%d").to_string());
        }
    }
}
