//! Social commerce's side of [`Db`] (SPEC §4b, docs/social.md): sharers,
//! their funnels, the viral coefficient and the attribution window.

use roaring::RoaringBitmap;

use super::Db;
use crate::error::{InputError, Problem, Result};
use crate::kinds::EventKind;
use crate::social::{
    self, Figures, GroupDay, GroupHead, GroupInfo, GroupState, SharerRank, SharerRow,
    SocialSettings, ViralPeriod,
};

/// Most periods one viral-coefficient query answers.
pub const MAX_VIRAL_PERIODS: usize = 3660;

impl Db {
    /// The `top` sharers of local days `from_day..=to_day`, ranked by `by`
    /// (ties: lower internal id first); with `filter`, only sharers in it.
    /// A sharer whose score is 0 is left out.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::{Event, SharerRank};
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let t = 19_800 * 86_400_000;
    /// db.record(&Event::new("ann", "share", t).with_share_id("s1"))?;
    /// db.record(&Event::new("bob", "view", t + 60_000).with_via("s1"))?;
    /// db.record(&Event::new("bob", "signup", t + 120_000))?;
    /// let top = db.top_sharers(19_800, 19_800, SharerRank::Signups, 10, None)?;
    /// assert_eq!(top.len(), 1);
    /// assert_eq!(db.user_name(top[0].user_id)?.as_deref(), Some("ann"));
    /// assert_eq!((top[0].figures.reached, top[0].figures.signups), (1, 1));
    /// # Ok(()) }
    /// ```
    pub fn top_sharers(
        &self,
        from_day: i32,
        to_day: i32,
        by: SharerRank,
        top: usize,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<SharerRow>> {
        self.store.check_area(crate::store::Area::Social)?;
        social::query::top_sharers(&self.store, from_day, to_day, by, top, filter)
    }

    /// `user`'s figures as a sharer over `from_day..=to_day` (its funnel:
    /// reached → signups → first purchases); `None` for an unknown user.
    pub fn sharer_figures(
        &self,
        user: &str,
        from_day: i32,
        to_day: i32,
    ) -> Result<Option<Figures>> {
        self.store.check_area(crate::store::Area::Social)?;
        match self.user_id(user)? {
            None => Ok(None),
            Some(id) => social::query::sharer_figures(&self.store, id, from_day, to_day).map(Some),
        }
    }

    /// The store's attribution figures per local day of `from_day..=to_day`
    /// (days with none left out); with `filter`, summed over the sharers in
    /// it.
    pub fn social_by_day(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<std::collections::BTreeMap<i32, Figures>> {
        self.store.check_area(crate::store::Area::Social)?;
        social::query::figures_by_day(&self.store, from_day, to_day, filter)
    }

    /// The viral coefficient of consecutive periods of `period_days` from
    /// `from_day` (the last one ends at `to_day`): first signups in the
    /// period attributed to a sharer ÷ users with a `share` event in it.
    /// With `filter`, both sides count only the sharers in it.
    pub fn viral_coefficient(
        &self,
        from_day: i32,
        to_day: i32,
        period_days: u32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<ViralPeriod>> {
        if period_days == 0 || period_days > 3660 {
            return Err(InputError::new(
                "period_days",
                Problem::OutOfRange {
                    value: i64::from(period_days),
                    min: 1,
                    max: 3660,
                },
            )
            .into());
        }
        let periods = if from_day > to_day {
            0
        } else {
            (i64::from(to_day) - i64::from(from_day)) / i64::from(period_days) + 1
        };
        InputError::check_count("periods", periods as usize, MAX_VIRAL_PERIODS)?;
        let by_day = self.social_by_day(from_day, to_day, filter)?;
        let m = self.metrics();
        let mut out = Vec::with_capacity(periods as usize);
        let mut start = from_day;
        while start <= to_day {
            let end = start.saturating_add(period_days as i32 - 1).min(to_day);
            let sharing = m
                .active_users(Some(&EventKind::Share), start, end, filter)?
                .len();
            let signups: i64 = by_day.range(start..=end).map(|(_, f)| f.signups).sum();
            out.push(ViralPeriod {
                from_day: start,
                to_day: end,
                sharing_users: sharing,
                attributed_signups: signups,
                coefficient: (sharing > 0).then(|| signups as f64 / sharing as f64),
            });
            match end.checked_add(1) {
                Some(next) => start = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The users whose first signup is attributed to `sharer` (to anyone,
    /// for `None`), as internal ids.
    pub fn referred_users(&self, sharer: Option<&str>) -> Result<RoaringBitmap> {
        self.store.check_area(crate::store::Area::Social)?;
        match sharer {
            None => social::query::referred(&self.store, None),
            Some(name) => match self.user_id(name)? {
                None => Ok(RoaringBitmap::new()),
                Some(id) => social::query::referred(&self.store, Some(id)),
            },
        }
    }

    /// Who `user`'s first signup is attributed to, by external id.
    pub fn referrer(&self, user: &str) -> Result<Option<String>> {
        let Some(id) = self.user_id(user)? else {
            return Ok(None);
        };
        match social::referrer_of(&self.store, id)? {
            None => Ok(None),
            Some(sharer) => self.user_name(sharer),
        }
    }

    /// The group buys opened on each local day of `from_day..=to_day`, as
    /// of `as_of_ms` (a group whose deadline is at or before it and that
    /// did not complete has expired); with `filter`, only groups whose
    /// opener is in it. Days with no opening are left out.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::Event;
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let t = 19_800 * 86_400_000;
    /// let hour = 3_600_000;
    /// db.record(&Event::new("ann", "group_open", t).with_group_open("g1", 2, t + 24 * hour))?;
    /// db.record(&Event::new("bob", "group_join", t + 2 * hour).with_group("g1"))?;
    /// db.record(&Event::new("cy", "group_open", t).with_group_open("g2", 3, t + hour))?;
    /// let days = db.group_days(19_800, 19_800, t + 48 * hour, None)?;
    /// assert_eq!((days[0].opened, days[0].completed, days[0].expired), (2, 1, 1));
    /// assert_eq!(days[0].mean_time_to_complete_ms, Some((2 * hour) as f64));
    /// # Ok(()) }
    /// ```
    pub fn group_days(
        &self,
        from_day: i32,
        to_day: i32,
        as_of_ms: i64,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<GroupDay>> {
        self.store.check_area(crate::store::Area::Social)?;
        social::query::group_days(&self.store, from_day, to_day, as_of_ms, filter)
    }

    /// The groups opened on the days `from_day..=to_day` (opening-day
    /// order, then id) with their state as of `as_of_ms`: only those in
    /// `state` when given (e.g. the open ones), opened by users in `filter`
    /// when given; at most `limit`.
    pub fn group_list(
        &self,
        from_day: i32,
        to_day: i32,
        as_of_ms: i64,
        state: Option<GroupState>,
        filter: Option<&RoaringBitmap>,
        limit: usize,
    ) -> Result<Vec<(String, GroupHead, GroupState)>> {
        social::query::group_list(
            &self.store,
            from_day,
            to_day,
            as_of_ms,
            state,
            filter,
            limit,
        )
    }

    /// Group buy `group_id` as of `as_of_ms`, with its members; `None` when
    /// no opening of it is stored.
    pub fn group(&self, group_id: &str, as_of_ms: i64) -> Result<Option<GroupInfo>> {
        social::query::group_info(&self.store, group_id, as_of_ms)
    }

    /// The attribution settings.
    pub fn social_settings(&self) -> SocialSettings {
        *self.social.settings.read()
    }

    /// Changes the attribution window and re-derives every attribution
    /// under it (holding every writer off while it runs), paying and
    /// reversing the referral credits of first purchases whose attribution
    /// moved. A job (docs/architecture.md, "Jobs"): a kill midway leaves it
    /// recorded, and [`Db::finish_jobs`] (or this call again) finishes it.
    pub fn set_social_settings(&self, settings: SocialSettings) -> Result<()> {
        settings.validate()?;
        self.store.check_writable()?;
        self.writer().set_social_settings(settings)
    }
}
