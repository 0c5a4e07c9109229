//! Global answers over a partitioned deployment (SPEC §7): a [`Cluster`]
//! holds the stores of every partition and answers as one store holding
//! all events would.
//!
//! Owns only the combining: partitions hold disjoint users (each store
//! allocates ids in its own range and refuses other partitions' users), so
//! every count of users is the sum of the partitions' counts, and RFM ranks
//! in the sum of their distributions. Must not read any store's keys: it
//! asks each [`Db`] the question and adds the answers — the same
//! arithmetic a service does over answers fetched from other machines.
//!
//! Segments are evaluated in each partition. An `rfm:` atom ranks in one
//! partition's purchasers only, so a cluster refuses it; the social atoms
//! (`referred`, `referred_by:`) only see attributions made inside one
//! partition (docs/scale-out.md).

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::error::{ConsumeError, Result};
use crate::experiments::{ExperimentQuery, ExperimentReport};
use crate::kinds::EventKind;
use crate::metrics::{
    ActiveRow, DailyRow, DistributionRow, LifecycleRow, Metrics, Period, RetentionMatrix,
    RetentionQuery, RfmReport, RfmScale,
};
use crate::partition::Partition;
use crate::segments::Segment;
use crate::Db;

/// Every partition's store of one deployment.
///
/// ```
/// # fn main() -> Result<(), stickydb::Error> {
/// use stickydb::{cluster::Cluster, Db, Event, Options, Partition};
/// let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
/// let open = |i: u32| {
///     let partition = Partition::new(i, 2)?;
///     Db::create(dirs[i as usize].path(), Options::default().partition(partition))
/// };
/// let stores = [open(0)?, open(1)?];
/// for user in ["alice", "bob", "carol"] {
///     let p = Partition::of(user, 2).index as usize;
///     stores[p].record(&Event::new(user, "view", 1_700_000_000_000))?;
/// }
/// let cluster = Cluster::new(stores.iter().collect())?;
/// let day = stores[0].local_day(1_700_000_000_000);
/// assert_eq!(cluster.active(None, day, day, None, 1_700_000_000_000)?[0].dau, 3);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cluster<'a> {
    /// By partition index.
    parts: Vec<&'a Db>,
}

fn refuse(reason: String) -> crate::Error {
    ConsumeError::Cluster { reason }.into()
}

/// Whether `segment` holds an atom whose answer ranks within one partition.
fn ranks_locally(segment: &Segment) -> bool {
    match segment {
        Segment::Rfm(_) => true,
        Segment::And(a, b) | Segment::Or(a, b) => ranks_locally(a) || ranks_locally(b),
        Segment::Not(a) => ranks_locally(a),
        _ => false,
    }
}

impl<'a> Cluster<'a> {
    /// The stores of partitions `0..n` of one deployment, in any order.
    /// Refused unless each partition is there exactly once and all share
    /// their UTC offset, non-activity kinds and stage model (the answers
    /// would not add up otherwise).
    pub fn new(stores: Vec<&'a Db>) -> Result<Self> {
        let Some(first) = stores.first() else {
            return Err(refuse("no stores".into()));
        };
        let count = first.partition().count;
        let mut parts: Vec<Option<&Db>> = vec![None; count as usize];
        let settings = first.metric_settings();
        for db in &stores {
            let p: Partition = db.partition();
            if p.count != count {
                return Err(refuse(format!(
                    "{} is partition {p}, {} is of {count}",
                    db.path().display(),
                    first.path().display()
                )));
            }
            if db.settings() != first.settings() {
                return Err(refuse(format!(
                    "{} has UTC offset {} min, {} has {} min",
                    db.path().display(),
                    db.settings().utc_offset_minutes,
                    first.path().display(),
                    first.settings().utc_offset_minutes
                )));
            }
            let other = db.metric_settings();
            if other.non_activity_kinds != settings.non_activity_kinds
                || other.stage_model != settings.stage_model
                || db.experiment_settings() != first.experiment_settings()
            {
                return Err(refuse(format!(
                    "{} counts activity, stages or exposures differently from {}",
                    db.path().display(),
                    first.path().display()
                )));
            }
            let slot = &mut parts[p.index as usize];
            if slot.is_some() {
                return Err(refuse(format!("partition {p} given twice")));
            }
            *slot = Some(db);
        }
        let parts: Vec<&Db> = parts
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.ok_or_else(|| refuse(format!("partition {i}/{count} missing"))))
            .collect::<Result<_>>()?;
        Ok(Self { parts })
    }

    /// The stores, by partition index.
    pub fn stores(&self) -> &[&'a Db] {
        &self.parts
    }

    /// Each partition's users in `segment` as of `now_ms` (`None`: no
    /// filter).
    fn filters(
        &self,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Vec<Option<RoaringBitmap>>> {
        let Some(segment) = segment else {
            return Ok(vec![None; self.parts.len()]);
        };
        if ranks_locally(segment) {
            return Err(refuse(
                "an rfm: atom ranks in one partition's purchasers; ask Cluster::rfm".into(),
            ));
        }
        self.parts
            .iter()
            .map(|db| db.segment(segment, now_ms).map(Some))
            .collect()
    }

    /// Every partition's rows (`ask`, with the partition's filter), added
    /// row by row into the first partition's (`add`). Every query summed
    /// here answers one row per day, period or count of days of the range
    /// asked, whatever the data, so rows line up across partitions.
    fn sum_rows<T>(
        &self,
        filters: &[Option<RoaringBitmap>],
        ask: impl Fn(&Metrics<'_>, Option<&RoaringBitmap>) -> Result<Vec<T>>,
        add: impl Fn(&mut T, T),
    ) -> Result<Vec<T>> {
        let mut out: Option<Vec<T>> = None;
        for (db, f) in self.parts.iter().zip(filters) {
            let rows = ask(&db.metrics(), f.as_ref())?;
            match out.as_mut() {
                None => out = Some(rows),
                Some(acc) => {
                    debug_assert_eq!(acc.len(), rows.len());
                    acc.iter_mut().zip(rows).for_each(|(o, r)| add(o, r));
                }
            }
        }
        Ok(out.unwrap_or_default())
    }

    /// Users in `segment` as of `now_ms`, over every partition.
    pub fn segment_count(&self, segment: &Segment, now_ms: i64) -> Result<u64> {
        Ok(self
            .filters(Some(segment), now_ms)?
            .iter()
            .flatten()
            .map(RoaringBitmap::len)
            .sum())
    }

    /// The external id of internal id `user_id`, asked of the partition
    /// whose id range holds it.
    pub fn user_name(&self, user_id: u32) -> Result<Option<String>> {
        match self
            .parts
            .iter()
            .find(|db| db.partition().holds_id(user_id))
        {
            Some(db) => db.user_name(user_id),
            None => Ok(None),
        }
    }

    /// An experiment question ([`crate::Db::experiment`]) over every
    /// partition: each partition measures its own users (assignments are
    /// per user, and users are disjoint), the counts add and the per-user
    /// moments combine, then the comparison is made once on the sums.
    pub fn experiment(
        &self,
        query: &ExperimentQuery,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<ExperimentReport> {
        if let Some(kind) = query.metric.kind() {
            let k = EventKind::from_name(kind);
            if !self
                .parts
                .iter()
                .any(|db| db.kinds().iter().any(|(_, x)| *x == k))
            {
                return Err(crate::experiments::unknown_kind(kind));
            }
        }
        let filters = self.filters(segment, now_ms)?;
        let mut measured: BTreeMap<String, crate::experiments::Measured> = BTreeMap::new();
        let mut contaminated = 0u64;
        for (db, f) in self.parts.iter().zip(&filters) {
            let (m, c) = db
                .experiments()
                .measure(query, f.as_ref(), db.local_day(now_ms))?;
            for (variant, x) in m {
                let merged = match measured.remove(&variant) {
                    Some(acc) => acc.merge(x),
                    None => x,
                };
                measured.insert(variant, merged);
            }
            contaminated += c;
        }
        crate::experiments::finish(query, measured, contaminated, || {
            let mut names = std::collections::BTreeSet::new();
            for db in &self.parts {
                names.extend(db.experiments().list()?.into_iter().map(|s| s.experiment));
            }
            Ok(names.into_iter().collect())
        })
    }

    /// Users with events, over every partition.
    pub fn user_count(&self) -> Result<u64> {
        self.parts.iter().map(|db| db.user_count()).sum()
    }

    /// Events stored, over every partition.
    pub fn event_count(&self) -> Result<u64> {
        self.parts.iter().map(|db| db.event_count()).sum()
    }

    /// DAU, rolling WAU and MAU and stickiness per day
    /// ([`crate::metrics::Metrics::active`]), summed over partitions.
    pub fn active(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Vec<ActiveRow>> {
        let mut out = self.sum_rows(
            &self.filters(segment, now_ms)?,
            |m, f| m.active(kind, from_day, to_day, f),
            |o: &mut ActiveRow, r| {
                debug_assert_eq!(o.day, r.day);
                o.dau += r.dau;
                o.wau += r.wau;
                o.mau += r.mau;
            },
        )?;
        for o in &mut out {
            o.stickiness = crate::metrics::ratio(o.dau, o.mau);
        }
        Ok(out)
    }

    /// Mean DAU over `from..=to` ÷ users active in the range
    /// ([`crate::metrics::Metrics::average_stickiness`]).
    pub fn average_stickiness(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<f64> {
        let filters = self.filters(segment, now_ms)?;
        let (mut dau_sum, mut all) = (0u64, 0u64);
        for (db, f) in self.parts.iter().zip(&filters) {
            let m = db.metrics();
            dau_sum += m
                .active(kind, from_day, to_day, f.as_ref())?
                .iter()
                .map(|r| r.dau)
                .sum::<u64>();
            all += m.active_users(kind, from_day, to_day, f.as_ref())?.len();
        }
        Ok(crate::metrics::mean_stickiness(
            dau_sum, from_day, to_day, all,
        ))
    }

    /// Users by number of active days in the range, summed.
    pub fn stickiness_distribution(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Vec<DistributionRow>> {
        self.sum_rows(
            &self.filters(segment, now_ms)?,
            |m, f| m.stickiness_distribution(kind, from_day, to_day, f),
            |o: &mut DistributionRow, r| {
                o.users += r.users;
                o.users_at_least += r.users_at_least;
            },
        )
    }

    /// A retention matrix: cohort sizes and cells summed.
    pub fn retention(
        &self,
        q: &RetentionQuery,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<RetentionMatrix> {
        // one "row": the whole matrix, cohort by cohort, cell by cell
        self.sum_rows(
            &self.filters(segment, now_ms)?,
            |m, f| Ok(vec![m.retention(q, f)?]),
            |acc: &mut RetentionMatrix, m| {
                for (a, c) in acc.cohorts.iter_mut().zip(m.cohorts) {
                    debug_assert_eq!(a.cohort, c.cohort);
                    a.size += c.size;
                    for (x, y) in a.counts.iter_mut().zip(c.counts) {
                        *x += y;
                    }
                }
            },
        )?
        .pop()
        .ok_or_else(|| refuse("no stores".into()))
    }

    /// Lifecycle counts per period, summed.
    pub fn lifecycle(
        &self,
        period: Period,
        from_day: i32,
        to_day: i32,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<Vec<LifecycleRow>> {
        self.sum_rows(
            &self.filters(segment, now_ms)?,
            |m, f| m.lifecycle(period, from_day, to_day, f),
            |o: &mut LifecycleRow, r| {
                debug_assert_eq!(o.period, r.period);
                o.new += r.new;
                o.returning += r.returning;
                o.resurrecting += r.resurrecting;
                o.dormant += r.dormant;
            },
        )
    }

    /// Users per lifecycle stage as of `as_of_day`, summed.
    pub fn stages(
        &self,
        as_of_day: i32,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<BTreeMap<String, u64>> {
        let filters = self.filters(segment, now_ms)?;
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (db, f) in self.parts.iter().zip(&filters) {
            for (stage, n) in db.metrics().stages(as_of_day, f.as_ref())? {
                *out.entry(stage).or_default() += n;
            }
        }
        Ok(out)
    }

    /// Store-wide counters per day, summed (the average order value is
    /// recomputed from the sums).
    pub fn daily(&self, from_day: i32, to_day: i32) -> Result<Vec<DailyRow>> {
        let mut out = self.sum_rows(
            &vec![None; self.parts.len()],
            |m, _| m.daily(from_day, to_day),
            |o: &mut DailyRow, r| {
                debug_assert_eq!(o.day, r.day);
                o.events += r.events;
                for (k, n) in r.events_by_kind {
                    *o.events_by_kind.entry(k).or_default() += n;
                }
                o.orders += r.orders;
                o.gmv_minor += r.gmv_minor;
                o.refunds += r.refunds;
                o.refund_minor += r.refund_minor;
                o.new_users += r.new_users;
                o.sessions += r.sessions;
            },
        )?;
        for o in &mut out {
            o.aov_minor = (o.orders > 0).then(|| o.gmv_minor as f64 / o.orders as f64);
        }
        Ok(out)
    }

    /// RFM as of `as_of_day`: every partition's distributions merged, then
    /// each partition's purchasers scored in the merged ones. Rows are by
    /// partition, then user id (ids of different partitions never collide).
    pub fn rfm(&self, as_of_day: i32, segment: Option<&Segment>, now_ms: i64) -> Result<RfmReport> {
        let filters = self.filters(segment, now_ms)?;
        let mut scale = RfmScale::default();
        for db in &self.parts {
            scale.merge(&db.metrics().rfm_scale(as_of_day)?);
        }
        let mut out = RfmReport {
            as_of_day,
            users: Vec::new(),
            segments: BTreeMap::new(),
        };
        for (db, f) in self.parts.iter().zip(&filters) {
            let r = db.metrics().rfm_in(as_of_day, f.as_ref(), &scale)?;
            out.users.extend(r.users);
            for (s, n) in r.segments {
                *out.segments.entry(s).or_default() += n;
            }
        }
        Ok(out)
    }
}
