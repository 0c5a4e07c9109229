//! Dimensions (SPEC §3, docs/metrics.md "Dimensions"): declaring event
//! properties as data and breaking activity and revenue down by them.

use super::{Db, Snapshot};
use crate::dims::{self, Breakdown, BreakdownQuery, Dimension, DimensionInfo};
use crate::error::{InputError, Problem, Result};
use crate::kinds::EventKind;
use crate::segments::Segment;

impl Db {
    /// Declares dimension `d` (an event property) and adds the part of it
    /// of every event already stored (a job: a kill leaves it for the next
    /// writable call to finish). From then on every write keeps, per
    /// (value, local day), the users of each kind, the events and the
    /// purchase money.
    ///
    /// ```
    /// use stickydb::dims::{BreakdownQuery, Dimension};
    /// use stickydb::{Db, Event, Options, PropValue};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let t = 1_700_000_000_000;
    /// let mut e = Event::new("ann", "view", t);
    /// e.properties.insert("channel".into(), PropValue::Str("ads".into()));
    /// db.record(&e)?;
    /// db.declare_dimension(&Dimension::new("channel"))?;
    /// let day = db.local_day(t);
    /// let b = db.breakdown(&BreakdownQuery::new("channel", day, day), None, t)?;
    /// assert_eq!((b.rows[0].value.as_str(), b.rows[0].users), ("ads", 1));
    /// # Ok(()) }
    /// ```
    pub fn declare_dimension(&self, d: &Dimension) -> Result<()> {
        self.writer().declare_dimension(d)
    }

    /// Drops dimension `name` with its aggregates and values.
    pub fn drop_dimension(&self, name: &str) -> Result<()> {
        self.writer().drop_dimension(name)
    }

    /// [`Snapshot::funnel_steps`] as of now.
    pub fn funnel_steps(
        &self,
        steps: &[dims::FunnelStep],
        window_ms: i64,
        days: (i32, i32),
        filter: Option<&roaring::RoaringBitmap>,
    ) -> Result<Vec<u64>> {
        self.snapshot().funnel_steps(steps, window_ms, days, filter)
    }

    /// The declared dimensions, with how many values each tracks.
    pub fn dimensions(&self) -> Vec<DimensionInfo> {
        self.dims.list()
    }

    /// Breaks activity and revenue down by a dimension (see
    /// [`BreakdownQuery`]); with `segment`, only its users at `now_ms`
    /// count (and the store-wide counters are left out).
    pub fn breakdown(
        &self,
        q: &BreakdownQuery,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Breakdown> {
        self.snapshot().breakdown(q, segment, now_ms)
    }
}

impl Snapshot<'_> {
    /// [`Db::breakdown`] as of this snapshot.
    pub fn breakdown(
        &self,
        q: &BreakdownQuery,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Breakdown> {
        let db = self.db;
        self.view.check_area(crate::store::Area::Dimensions)?;
        let kind_id = match &q.kind {
            None => None,
            Some(k) => {
                let kind = EventKind::from_name(k);
                db.kinds
                    .check(&kind)
                    .map_err(|p| InputError::new("kind", p))?;
                // (a kind never recorded has no users: an id no key holds)
                Some(db.kinds.id(&kind).unwrap_or(u32::MAX))
            }
        };
        let users = match segment {
            Some(s) => Some(self.segment(s, now_ms)?),
            None => None,
        };
        let set = db.dims.set.read().clone();
        let reg = db.dims.values.read();
        let non_activity = &db.non_activity_kinds;
        let is_activity = |id: u32| {
            db.kinds
                .kind(id)
                .is_none_or(|k| crate::metrics::counts_as_activity(non_activity, k.as_str()))
        };
        if q.top == Some(0) {
            let reason = "at least 1".to_owned();
            return Err(InputError::new("top", Problem::Invalid { reason }).into());
        }
        dims::breakdown(
            &self.view,
            &set,
            &reg,
            q,
            kind_id,
            &is_activity,
            users.as_ref(),
        )
    }

    /// An ordered funnel whose steps may filter on a dimension's value
    /// (see [`crate::metrics::Metrics::funnel`]; `view[category=shoes]`
    /// counts only views carrying `shoes`; the property must be a declared
    /// dimension).
    pub fn funnel_steps(
        &self,
        steps: &[dims::FunnelStep],
        window_ms: i64,
        (from_day, to_day): (i32, i32),
        filter: Option<&roaring::RoaringBitmap>,
    ) -> Result<Vec<u64>> {
        let db = self.db;
        self.view.check_area(crate::store::Area::Dimensions)?;
        let set = db.dims.set.read().clone();
        let reg = db.dims.values.read().clone();
        let m = self.metrics();
        let days = (from_day, to_day);
        dims::funnel(&m, (&set, &reg, &db.kinds), steps, window_ms, days, filter)
    }

    /// The users of `first:DIM=VALUE` (`last`: of `last:DIM=VALUE`).
    pub(super) fn touched(
        &self,
        last: bool,
        dim: &str,
        value: &str,
    ) -> Result<roaring::RoaringBitmap> {
        let db = self.db;
        self.view.check_area(crate::store::Area::Dimensions)?;
        let set = db.dims.set.read().clone();
        let reg = db.dims.values.read();
        dims::touched(&self.view, &set, &reg, (last, dim, value))
    }

    /// The users of `did:KIND[DIM=VALUE]@DAYS` (empty kind: any activity).
    pub(super) fn did_with(
        &self,
        kind: &str,
        dim: &str,
        value: &str,
        days: Option<(i32, i32)>,
    ) -> Result<roaring::RoaringBitmap> {
        let db = self.db;
        self.view.check_area(crate::store::Area::Dimensions)?;
        let kind_id = match kind {
            "" => crate::kinds::ids::ACTIVITY,
            k => db.kinds.id(&EventKind::from_name(k)).unwrap_or(u32::MAX),
        };
        let set = db.dims.set.read().clone();
        let reg = db.dims.values.read();
        dims::users_with(&self.view, &set, &reg, (kind_id, dim, value), days)
    }
}
