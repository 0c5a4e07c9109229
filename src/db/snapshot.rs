//! [`Snapshot`]: the reads of a [`Db`], all as of one instant.

use roaring::RoaringBitmap;

use super::Db;
use crate::error::{Error, InputError, Result};
use crate::kinds::EventKind;
use crate::ledger::{self, Account, Hold, LedgerEntry, Lot, TierChange};
use crate::metrics::Metrics;
use crate::profiles::{self, Profile, Sensitive};
use crate::segments::Segment;
use crate::store::{self, Area};
use crate::timeline::{self, StoredEvent};
use crate::users;

/// The store as of one instant: every read through one `Snapshot` sees
/// the same committed writes, whatever writers do meanwhile — so a page
/// built from a profile, a timeline, an account, a segment and a metric
/// is consistent. Each read of [`Db`] takes its own snapshot; take one
/// with [`Db::snapshot`] to read several at one instant. Holding one
/// keeps the versions it sees from being compacted away: drop it when the
/// page is built.
///
/// ```
/// use stickydb::{Db, Event, Options, PointsOp, Sensitive};
/// # fn main() -> Result<(), stickydb::Error> {
/// let dir = tempfile::tempdir()?;
/// let db = Db::create(dir.path(), Options::default())?;
/// let t = 1_700_000_000_000;
/// db.points("alice", "t1", t, &PointsOp::earn(100, "welcome"))?;
/// let page = db.snapshot();
/// db.points("alice", "t2", t + 1, &PointsOp::earn(50, "bonus"))?;
/// // the snapshot still sees the instant it was taken at
/// assert_eq!(page.account("alice")?.map(|a| a.balance), Some(100));
/// assert_eq!(db.account("alice")?.map(|a| a.balance), Some(150));
/// # Ok(()) }
/// ```
pub struct Snapshot<'db> {
    pub(super) db: &'db Db,
    pub(super) view: store::Snapshot<'db>,
    /// The feature definitions as of the snapshot.
    pub(super) features: std::sync::Arc<crate::features::FeatureSet>,
}

impl Db {
    /// The store as of now, for several reads at one instant (see
    /// [`Snapshot`]).
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            db: self,
            // (the definitions first: a change between the two is then
            // seen by the state's version, never a newer state read under
            // older definitions)
            features: self.features.read().clone(),
            view: self.store.snapshot(),
        }
    }
}

impl Snapshot<'_> {
    /// The metrics as of this snapshot (see [`Db::metrics`]).
    pub fn metrics(&self) -> Metrics<'_> {
        Metrics {
            view: self.view.clone(),
            kinds: &self.db.kinds,
            settings: crate::metrics::MetricSettings::clone(&self.db.metric_settings.read()),
        }
    }

    /// `user`'s profile, or `None` when the user does not exist.
    pub fn profile(&self, user: &str, sensitive: Sensitive) -> Result<Option<Profile>> {
        profiles::profile(&self.view, user, sensitive)
    }

    /// `user`'s events with `from_ms <= ts_ms < to_ms`, newest first, at
    /// most `limit` (see [`Db::timeline`]).
    pub fn timeline(
        &self,
        user: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        timeline::timeline(&self.view, &self.db.kinds, user, from_ms, to_ms, limit)
    }

    /// `user`'s newest `limit` events.
    pub fn newest(&self, user: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        self.timeline(user, i64::MIN, i64::MAX, limit)
    }

    /// Users holding `tag` (see [`Db::users_with_tag`]).
    pub fn users_with_tag(&self, tag: &str, now_ms: Option<i64>) -> Result<RoaringBitmap> {
        profiles::users_with_tag(&self.view, tag, now_ms)
    }

    /// The internal id of an external user id (an alias: its target's).
    pub fn user_id(&self, user: &str) -> Result<Option<u32>> {
        users::id_of(&self.view, user)
    }

    /// The external id of an internal user id.
    pub fn user_name(&self, user_id: u32) -> Result<Option<String>> {
        Ok(users::record_of(&self.view, user_id)?.map(|r| r.name))
    }

    /// Every user, as internal ids.
    pub fn all_users(&self) -> Result<RoaringBitmap> {
        users::all_users(&self.view)
    }

    /// What `user` names: its own user, an alias of another, or nothing.
    pub fn resolve(&self, user: &str) -> Result<Option<users::NameEntry>> {
        users::lookup(&self.view, user)
    }

    /// The merges that made aliases of `user` (or of the user an alias
    /// `user` resolves to), by alias name. Empty for an unknown user.
    pub fn merges(&self, user: &str) -> Result<Vec<users::MergeOutcome>> {
        let Some(user_id) = self.user_id(user)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (_, merge_id) in users::aliases(&self.view, user_id)? {
            let key = crate::keys::meta::merge(&merge_id);
            if let Some(done) = self.view.get(store::Cf::Meta, &key)? {
                out.push(done);
            }
        }
        Ok(out)
    }

    /// Number of events in the store (duplicates excluded).
    pub fn event_count(&self) -> Result<u64> {
        let key = crate::keys::metrics::events_total();
        Ok(self.view.get_counter(store::Cf::Metrics, &key)?.max(0) as u64)
    }

    fn ledger_user(&self, user: &str) -> Result<u32> {
        self.user_id(user)?.ok_or_else(|| Error::UnknownUser {
            user: user.to_owned(),
        })
    }

    /// `user`'s points account; `None` when it never had an entry.
    pub fn account(&self, user: &str) -> Result<Option<Account>> {
        ledger::read::account(&self.view, self.ledger_user(user)?)
    }

    /// Every lot of `user`, oldest first.
    pub fn lots(&self, user: &str) -> Result<Vec<Lot>> {
        ledger::read::lots(&self.view, self.ledger_user(user)?)
    }

    /// `user`'s open holds, oldest first.
    pub fn holds(&self, user: &str) -> Result<Vec<Hold>> {
        ledger::read::holds(&self.view, self.ledger_user(user)?)
    }

    /// `user`'s ledger entries with `from_ms <= at_ms < to_ms`, newest
    /// first, at most `limit`.
    pub fn ledger(
        &self,
        user: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>> {
        ledger::read::history(&self.view, self.ledger_user(user)?, from_ms, to_ms, limit)
    }

    /// `user`'s tier changes, newest first.
    pub fn tier_history(&self, user: &str) -> Result<Vec<TierChange>> {
        ledger::read::tier_history(&self.view, self.ledger_user(user)?)
    }

    /// The growth that decides `user`'s tier as of the local day of
    /// `at_ms`: earned points or growth value (the tiers' basis) over the
    /// tier window.
    pub fn growth(&self, user: &str, at_ms: i64) -> Result<i64> {
        crate::time::check_ts(at_ms).map_err(|p| InputError::new("at_ms", p))?;
        let settings = self.db.ledger_settings.read().clone();
        let window = settings.tiers.window_days;
        let day = self.db.local_day(at_ms);
        let uid = self.ledger_user(user)?;
        match settings.growth().tier_basis {
            ledger::TierBasis::GrowthValue => {
                self.db.store.check_area(Area::Tiers)?;
                let lo = day.saturating_sub(window as i32 - 1);
                Ok(ledger::read::growth_values(&self.view, uid, lo, day)?.max(0))
            }
            _ => ledger::read::growth(&self.view, uid, day, window),
        }
    }

    /// `user`'s growth value (docs/ledger.md#growth-value) as of the local
    /// day of `at_ms`: its balance over its whole history and over the
    /// tier window, with the tiers' basis and its current tier.
    pub fn growth_value(&self, user: &str, at_ms: i64) -> Result<ledger::GrowthBalance> {
        crate::time::check_ts(at_ms).map_err(|p| InputError::new("at_ms", p))?;
        self.db.store.check_area(Area::Tiers)?;
        let settings = self.db.ledger_settings.read().clone();
        let window_days = settings.tiers.window_days;
        let day = self.db.local_day(at_ms);
        let uid = self.ledger_user(user)?;
        let lo = day.saturating_sub(window_days as i32 - 1);
        Ok(ledger::GrowthBalance {
            balance: ledger::read::growth_values(&self.view, uid, i32::MIN, day)?.max(0),
            in_window: ledger::read::growth_values(&self.view, uid, lo, day)?.max(0),
            window_days,
            tier_basis: settings.growth().tier_basis,
            tier: ledger::read::account(&self.view, uid)?.and_then(|a| a.tier),
        })
    }

    /// Users whose recorded tier is `tier`.
    pub fn users_in_tier(&self, tier: &str) -> Result<RoaringBitmap> {
        self.db.store.check_area(Area::Tiers)?;
        ledger::read::users_in_tier(&self.view, tier)
    }

    /// Users `sharer` referred (every referred user when `None`).
    fn referred_users(&self, sharer: Option<&str>) -> Result<RoaringBitmap> {
        self.db.store.check_area(Area::Social)?;
        match sharer {
            None => crate::social::query::referred(&self.view, None),
            Some(name) => match self.user_id(name)? {
                None => Ok(RoaringBitmap::new()),
                Some(id) => crate::social::query::referred(&self.view, Some(id)),
            },
        }
    }

    /// The users in `segment` at `now_ms` (see [`Db::segment`]).
    pub fn segment(&self, segment: &Segment, now_ms: i64) -> Result<RoaringBitmap> {
        self.segment_with(segment, now_ms, Sensitive::Exclude)
    }

    /// The users in `segment` at `now_ms`, where `attr:`, `has:` and
    /// anniversary atoms match sensitive attribute values only with
    /// [`Sensitive::Include`] (see [`Db::segment_with`]).
    pub fn segment_with(
        &self,
        segment: &Segment,
        now_ms: i64,
        sensitive: Sensitive,
    ) -> Result<RoaringBitmap> {
        crate::time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let universe = self.all_users()?;
        let today = self.db.local_day(now_ms);
        let m = self.metrics();
        let how = profiles::Lookup {
            sensitive: sensitive == Sensitive::Include,
            utc_offset_minutes: self.db.settings().utc_offset_minutes,
        };
        let attr = |name: &str, cond: profiles::Cond<'_>| {
            profiles::users_with_attr(&self.view, name, cond, how)
        };
        segment.eval(&universe, &mut |atom| match atom {
            Segment::Tag(t) => {
                Ok(self.users_with_tag(t, Some(now_ms))? | self.rule_tag_holders(t, now_ms)?)
            }
            Segment::Attr { name, value } => attr(name, profiles::Cond::Eq(value)),
            Segment::AttrCompare { name, op, value } => attr(name, profiles::Cond::Cmp(*op, value)),
            Segment::Has(name) => attr(name, profiles::Cond::Has),
            Segment::Anniversary { name, days } => {
                attr(name, profiles::Cond::Anniversary { today, days: *days })
            }
            Segment::Stage(s) => m.users_in_stage(s, today),
            Segment::Rfm(s) => m.users_in_rfm_segment(s, today),
            Segment::Tier(t) => self.users_in_tier(t),
            Segment::ActiveWithin(n) => m.active_within(*n, today),
            Segment::InactiveFor(n) => Ok(&universe - &m.active_within(*n, today)?),
            Segment::Threshold {
                measure,
                op,
                value,
                window_days,
            } => self.threshold(&universe, *measure, *op, value, *window_days, today),
            Segment::Feature {
                name,
                key,
                op,
                value,
            } => self.feature_compare(&universe, (name, key.as_deref()), *op, value, now_ms),
            Segment::ContactedWithin(n) => {
                let kind = EventKind::from_name(crate::segments::CONTACT_KIND);
                m.active_users(Some(&kind), today - (*n as i32 - 1), today, None)
            }
            Segment::Did { kind, days } => {
                let kind = EventKind::from_name(kind);
                match days {
                    Some((from, to)) => m.active_users(Some(&kind), *from, *to, None),
                    None => m.ever_did(&kind),
                }
            }
            Segment::Touch { last, dim, value } => self.touched(*last, dim, value),
            Segment::DidWith {
                kind,
                dim,
                value,
                days,
            } => self.did_with(kind, dim, value, *days),
            Segment::Entered { stage, days } => {
                let (from, to) = days.unwrap_or((today, today));
                m.users_entered(stage, from, to)
            }
            Segment::Shared => m.ever_did(&EventKind::Share),
            Segment::Referred => self.referred_users(None),
            Segment::ReferredBy(u) => self.referred_users(Some(u)),
            Segment::Variant {
                experiment,
                variant,
            } => crate::experiments::Experiments { m: self.metrics() }
                .variant_users(experiment, variant),
            _ => Ok(universe.clone()),
        })
    }
}
