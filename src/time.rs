//! Time and the local calendar (SPEC §2): timestamp bounds, local days, ISO
//! weeks and calendar months under a store's fixed UTC offset.
//!
//! Owns the mapping from `ts_ms` to local days and calendar periods. Must not
//! touch storage.

use chrono::{Datelike, NaiveDate};

use crate::error::Problem;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Earliest accepted timestamp: the Unix epoch.
pub const MIN_TS_MS: i64 = 0;

/// Latest accepted timestamp: the last millisecond of 9999-12-31 UTC. Later
/// values are almost always unit mistakes (µs or ns passed as ms).
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// Checks a timestamp against the accepted range.
pub fn check_ts(ts_ms: i64) -> Result<(), Problem> {
    if (MIN_TS_MS..=MAX_TS_MS).contains(&ts_ms) {
        Ok(())
    } else {
        Err(Problem::OutOfRange {
            value: ts_ms,
            min: MIN_TS_MS,
            max: MAX_TS_MS,
        })
    }
}

/// The local day of `ts_ms` under `utc_offset_minutes`:
/// `floor((ts_ms + offset_ms) / 86_400_000)`, days since 1970-01-01 local.
pub fn local_day(ts_ms: i64, utc_offset_minutes: i32) -> i32 {
    let shifted_ms = ts_ms + i64::from(utc_offset_minutes) * 60_000;
    // Bounded timestamps keep the day count far inside i32.
    shifted_ms.div_euclid(DAY_MS) as i32
}

/// The first millisecond (UTC) of local day `day`: its local midnight.
pub fn local_midnight_ms(day: i32, utc_offset_minutes: i32) -> i64 {
    i64::from(day) * DAY_MS - i64::from(utc_offset_minutes) * 60_000
}

/// The local hour of day (0..24) of `ts_ms`.
pub fn local_hour(ts_ms: i64, utc_offset_minutes: i32) -> u8 {
    let shifted_ms = ts_ms + i64::from(utc_offset_minutes) * 60_000;
    (shifted_ms.rem_euclid(DAY_MS) / 3_600_000) as u8
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The calendar date of a local day number.
pub fn day_to_date(day: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::Duration::days(i64::from(day)))
}

/// The local day number of a calendar date.
pub fn date_to_day(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// Formats a local day as `YYYY-MM-DD`.
pub fn format_day(day: i32) -> String {
    match day_to_date(day) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("day{day}"),
    }
}

/// Parses `YYYY-MM-DD` into a local day number.
pub fn parse_day(s: &str) -> Result<i32, Problem> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(date_to_day)
        .map_err(|e| Problem::Unparsable {
            reason: format!("{s:?} is not a YYYY-MM-DD date: {e}"),
        })
}

/// Weekday of a local day, 0 = Monday … 6 = Sunday.
pub fn weekday(day: i32) -> u8 {
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    ((i64::from(day) + 3).rem_euclid(7)) as u8
}

/// The Monday that starts the ISO week holding `day`.
pub fn week_start(day: i32) -> i32 {
    day - i32::from(weekday(day))
}

/// The first day of the calendar month holding `day`.
pub fn month_start(day: i32) -> i32 {
    match day_to_date(day) {
        Some(d) => date_to_day(d.with_day(1).unwrap_or(d)),
        None => day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_floors_negative_offsets() {
        assert_eq!(local_day(0, 0), 0);
        assert_eq!(local_day(DAY_MS - 1, 0), 0);
        // 00:30 UTC at UTC-1 is still the previous local day
        assert_eq!(local_day(30 * 60_000, -60), -1);
        // 23:30 UTC at UTC+8 is already the next local day
        assert_eq!(local_day(DAY_MS - 30 * 60_000, 480), 1);
    }

    #[test]
    fn calendar_helpers() {
        let d = parse_day("2024-12-31").unwrap_or(0);
        assert_eq!(format_day(d), "2024-12-31");
        assert_eq!(weekday(d), 1); // a Tuesday
        assert_eq!(format_day(week_start(d)), "2024-12-30");
        assert_eq!(format_day(month_start(d)), "2024-12-01");
        assert!(matches!(
            parse_day("2024-13-01"),
            Err(Problem::Unparsable { ref reason }) if reason.contains("is not a YYYY-MM-DD date")
        ));
    }
}
