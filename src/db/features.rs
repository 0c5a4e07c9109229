//! Per-user features and rule tags (SPEC §3b): the definitions, and reads
//! of a user's features at an instant.

use std::sync::Arc;

use super::{Db, Snapshot};
use crate::error::{Error, Result};
use crate::features::{self, Definition, FeatureSet, Features, TagRule};
use crate::users;

impl Db {
    /// Adds `defs` and `rules` to the store's definitions, each replacing
    /// the one of its name (a rule: of its tag); returns the set's new
    /// version. Users' features under the new set are computed from their
    /// events when next written or read ([`Db::backfill_features`] computes
    /// them all now).
    ///
    /// ```
    /// use stickydb::features::{Definition, Op, TagRule, Window};
    /// use stickydb::{Db, Event, Options, PropValue};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let views = Definition::new("views_shoes_14d", ["view"], Op::Count, Window::parse("14d")?)
    ///     .with_filter("category", PropValue::Str("shoes".into()));
    /// db.define_features(&[views], &[TagRule::new("interest:shoes", "views_shoes_14d >= 2")])?;
    /// let t = 1_700_000_000_000;
    /// for i in 0..2 {
    ///     let e = Event::new("ann", "view", t + i)
    ///         .with_property("category", PropValue::Str("shoes".into()));
    ///     db.record(&e)?;
    /// }
    /// let f = db.features("ann", t + 1)?;
    /// assert_eq!(f.get("views_shoes_14d").and_then(|v| v.as_f64()), Some(2.0));
    /// assert_eq!(f.tags, ["interest:shoes"]);
    /// // 14 days after the first view, it slid out: to the millisecond
    /// let later = db.features("ann", t + 14 * 86_400_000)?;
    /// assert_eq!(later.get("views_shoes_14d").and_then(|v| v.as_f64()), Some(1.0));
    /// assert!(later.tags.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn define_features(&self, defs: &[Definition], rules: &[TagRule]) -> Result<u64> {
        let next = self.writer().set_features(|set| set.with(defs, rules))?;
        Ok(next.version())
    }

    /// Drops the definition (or the rule whose tag is) `name`; a definition
    /// a rule reads is refused. Returns the set's new version.
    pub fn drop_feature(&self, name: &str) -> Result<u64> {
        let next = self.writer().set_features(|set| set.without(name))?;
        Ok(next.version())
    }

    /// The definitions and rules in force.
    pub fn feature_set(&self) -> Arc<FeatureSet> {
        self.features.read().clone()
    }

    /// Computes now the features of every user whose state was computed
    /// under other definitions (or never); returns how many. Resumable:
    /// a re-run after a kill goes on where it stopped.
    pub fn backfill_features(&self) -> Result<u64> {
        self.writer().backfill_features()
    }

    /// How many users hold each rule tag at the end of each local day of
    /// `from..=to`: a row per day. Reads every user's events once (for
    /// reports; a segment answers one instant).
    pub fn rule_tags_by_day(
        &self,
        from: i32,
        to: i32,
    ) -> Result<Vec<(i32, std::collections::BTreeMap<String, u64>)>> {
        let offset = self.store.settings().utc_offset_minutes;
        let first = crate::time::local_day(crate::time::MIN_TS_MS, offset);
        let last = crate::time::local_day(crate::time::MAX_TS_MS, offset) - 1;
        for (field, day) in [("from", from), ("to", to)] {
            if !(first..=last).contains(&day) {
                let p = crate::error::Problem::OutOfRange {
                    value: day.into(),
                    min: first.into(),
                    max: last.into(),
                };
                return Err(crate::error::InputError::new(field, p).into());
            }
        }
        let days = usize::try_from(i64::from(to) - i64::from(from) + 1).unwrap_or(0);
        crate::error::InputError::check_count("days", days, 3_660)?;
        let snap = self.snapshot();
        let mut rows: Vec<(i32, std::collections::BTreeMap<String, u64>)> =
            (from..=to).map(|d| (d, Default::default())).collect();
        if snap.features.rules().is_empty() {
            return Ok(rows);
        }
        for user_id in &users::all_users(&snap.view)? {
            let by_day = features::tags_by_day(
                &snap.view,
                &self.kinds,
                &snap.features,
                offset,
                user_id,
                (from, to),
            )?;
            for ((_, counts), tags) in rows.iter_mut().zip(by_day) {
                for tag in tags {
                    *counts.entry(tag).or_default() += 1;
                }
            }
        }
        Ok(rows)
    }

    /// `user`'s features and rule tags at `at_ms` (any instant: at or after
    /// its newest event from its state, before it recomputed from its
    /// events).
    pub fn features(&self, user: &str, at_ms: i64) -> Result<Features> {
        self.snapshot().features(user, at_ms)
    }
}

impl Snapshot<'_> {
    /// The users holding rule tag `tag` at `at_ms`.
    pub(super) fn rule_tag_holders(&self, tag: &str, at_ms: i64) -> Result<roaring::RoaringBitmap> {
        let offset = self.db.store.settings().utc_offset_minutes;
        features::holders(
            &self.view,
            &self.db.kinds,
            &self.features,
            offset,
            tag,
            at_ms,
        )
    }

    /// The users of `universe` whose numeric feature `name` (`key`: for
    /// one key) compares with `value` as `op` says at `at_ms`.
    pub(super) fn feature_compare(
        &self,
        universe: &roaring::RoaringBitmap,
        (name, key): (&str, Option<&str>),
        op: crate::profiles::AttrOp,
        value: &str,
        at_ms: i64,
    ) -> Result<roaring::RoaringBitmap> {
        let bound: f64 = value.parse().map_err(|_| {
            let reason = format!("{value:?} is not a number");
            crate::error::InputError::new(
                "segment.feature",
                crate::error::Problem::Invalid { reason },
            )
        })?;
        let test = move |v: f64| match op {
            crate::profiles::AttrOp::Ge => v >= bound,
            crate::profiles::AttrOp::Gt => v > bound,
            crate::profiles::AttrOp::Le => v <= bound,
            crate::profiles::AttrOp::Lt => v < bound,
            crate::profiles::AttrOp::Prefix => false,
        };
        let offset = self.db.store.settings().utc_offset_minutes;
        features::matching(
            &self.view,
            &self.db.kinds,
            (&self.features, offset),
            universe,
            (name, key),
            at_ms,
            &test,
        )
    }

    /// `user`'s features and rule tags at `at_ms` (see [`Db::features`]).
    pub fn features(&self, user: &str, at_ms: i64) -> Result<Features> {
        let resolved = match users::lookup(&self.view, user)? {
            Some(users::NameEntry::User(id)) => (id, user.to_owned()),
            Some(users::NameEntry::Alias { user_id, into }) => (user_id, into),
            None => {
                return Err(Error::UnknownUser {
                    user: user.to_owned(),
                })
            }
        };
        let offset = self.db.store.settings().utc_offset_minutes;
        features::features(
            &self.view,
            &self.db.kinds,
            &self.features,
            offset,
            resolved,
            at_ms,
        )
    }
}
