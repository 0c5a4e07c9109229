//! Birthday rewards (docs/ledger.md#birthday-rewards): an earning rule of
//! the pseudo-kind `reward:birthday:W` pays once per birthday the user's
//! first activity event in its birthday window — the W local days ending
//! on the birthday, so an event on day d is in it exactly when the segment
//! atom `birthday_within:Wd` holds for the user as of d. 29 February is
//! celebrated on 28 February in common years, as that atom keeps it.
//!
//! The reward is a once-per-user reward (`rewards.rs`) keyed by the window
//! and the year of the birthday it celebrates (`"7:2026"`): a late activity
//! event older than the one holding it takes it over, as a late purchase
//! takes over a first order. Unlike a first order, events recorded before
//! the rule met the user are not read back: a birthday is often entered on
//! the day itself, and the events before it did not know it.
//!
//! The birthday is the user's `birthday` date attribute as the write sees
//! it (a profile update earlier in the same transaction or merge counts).
//! Editing it does not move a reward already held: a year's key is taken
//! once, so a new birthday never pays twice for one year.

use std::borrow::Cow;

use super::*;
use crate::error::Result;
use crate::kinds::BIRTHDAY_KIND_PREFIX;

/// Longest birthday window, in days.
pub const MAX_BIRTHDAY_WINDOW_DAYS: u32 = 31;

/// The reward kind code of birthday rewards in keys.
pub(crate) const BIRTHDAY: u16 = 3;

/// The window of a birthday rule's kind, if it is one.
pub(crate) fn window_days(kind: &str) -> Option<u32> {
    kind.strip_prefix(BIRTHDAY_KIND_PREFIX)?
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_BIRTHDAY_WINDOW_DAYS).contains(n))
}

/// The distinct windows of `settings`' birthday rules, ascending.
pub(crate) fn windows(settings: &LedgerSettings) -> Vec<u32> {
    let mut out: Vec<u32> = settings
        .rules
        .iter()
        .filter_map(|r| window_days(&r.kind))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The day a birthday (a date, days since 1970-01-01) falls on in `year`.
fn occurrence(birthday: i32, year: i32) -> Option<i32> {
    use chrono::Datelike;
    let b = crate::time::day_to_date(birthday)?;
    let on = chrono::NaiveDate::from_ymd_opt(year, b.month(), b.day())
        .or_else(|| chrono::NaiveDate::from_ymd_opt(year, b.month(), b.day() - 1))?;
    Some(crate::time::date_to_day(on))
}

/// The year of the birthday whose `window_days`-day window holds local day
/// `day`, if one does.
pub(crate) fn window_year(birthday: i32, day: i32, window_days: u32) -> Option<i32> {
    use chrono::Datelike;
    let year = crate::time::day_to_date(day)?.year();
    let last = i64::from(day) + i64::from(window_days) - 1;
    [year, year.saturating_add(1)]
        .into_iter()
        .find(|y| occurrence(birthday, *y).is_some_and(|b| day <= b && i64::from(b) <= last))
}

/// The key a birthday reward's holder is stored under: window and year.
pub(crate) fn key(window_days: u32, year: i32) -> String {
    format!("{window_days}:{year}")
}

/// Whether rule kind `kind` pays the birthday reward of holder key `key`.
pub(crate) fn pays(kind: &str, key: &str) -> bool {
    window_days(kind).is_some_and(|w| {
        key.split_once(':')
            .is_some_and(|(k, _)| k.parse::<u32>().ok() == Some(w))
    })
}

impl Session<'_> {
    /// Tells the session that a profile update of this write sets
    /// `user_id`'s birthday to `birthday` (`None`: removes it), so events
    /// recorded after it in the write read the new one.
    pub fn set_birthday(&mut self, user_id: u32, birthday: Option<i32>) -> Result<()> {
        if self.ctx.birthday_windows.is_empty() {
            return Ok(());
        }
        self.with(user_id, |_, w| {
            w.birthday = Some(birthday);
            Ok(())
        })
    }
}

impl Ctx<'_> {
    /// The birthday rewards activity event `e` is in the window of.
    pub(super) fn birthday_keys(
        &self,
        w: &mut Work,
        e: &RewardEvent<'_>,
    ) -> Result<Vec<(u16, Cow<'static, str>)>> {
        let birthday = match w.birthday {
            Some(b) => b,
            None => {
                let b = crate::profiles::date_attr(
                    self.store,
                    w.user_id,
                    crate::profiles::BIRTHDAY_ATTRIBUTE,
                )?;
                w.birthday = Some(b);
                b
            }
        };
        let Some(birthday) = birthday else {
            return Ok(Vec::new());
        };
        let day = local_day(e.ts_ms, self.offset_minutes);
        Ok(self
            .birthday_windows
            .iter()
            .filter_map(|&n| window_year(birthday, day, n).map(|y| (BIRTHDAY, key(n, y).into())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i32 {
        crate::time::parse_day(s).unwrap_or(i32::MIN)
    }

    #[test]
    fn the_window_is_the_days_ending_on_the_birthday() {
        let b = day("1990-03-10");
        assert_eq!(window_year(b, day("2024-03-10"), 1), Some(2024));
        assert_eq!(window_year(b, day("2024-03-09"), 1), None);
        assert_eq!(window_year(b, day("2024-03-04"), 7), Some(2024));
        assert_eq!(window_year(b, day("2024-03-03"), 7), None);
        assert_eq!(window_year(b, day("2024-03-11"), 7), None);
    }

    #[test]
    fn a_window_can_start_in_the_year_before() {
        let b = day("1990-01-02");
        assert_eq!(window_year(b, day("2024-12-27"), 7), Some(2025));
        assert_eq!(window_year(b, day("2024-12-26"), 7), None);
        assert_eq!(window_year(b, day("2025-01-02"), 7), Some(2025));
    }

    #[test]
    fn the_29th_of_february_is_celebrated_on_the_28th_in_common_years() {
        let b = day("1992-02-29");
        assert_eq!(window_year(b, day("2025-02-28"), 1), Some(2025));
        assert_eq!(window_year(b, day("2025-03-01"), 1), None);
        assert_eq!(window_year(b, day("2024-02-28"), 1), None);
        assert_eq!(window_year(b, day("2024-02-29"), 1), Some(2024));
    }

    #[test]
    fn a_rule_pays_the_holders_of_its_own_window() {
        assert!(pays("reward:birthday:7", &key(7, 2024)));
        assert!(!pays("reward:birthday:1", &key(7, 2024)));
        assert!(!pays("reward:birthday:0", &key(0, 2024)));
        assert!(!pays("reward:first_order", &key(7, 2024)));
    }
}
