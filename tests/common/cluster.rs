//! One store's and a cluster's answers to the same questions, users named
//! by external id, line per question (tests/cluster_*.rs, kafka_consume.rs):
//! the store answers through its own `Metrics`, the cluster through its
//! sums, and one function asks both the same things.

use roaring::RoaringBitmap;
use stickydb::cluster::Cluster;
use stickydb::metrics::{
    ActiveRow, DailyRow, DistributionRow, LifecycleRow, Period, RetentionMatrix, RetentionQuery,
    ReturnMode, RfmReport,
};
use stickydb::{Db, EventKind, Segment};

/// The questions, as each side answers them.
pub trait Asks {
    fn active(
        &self,
        k: Option<&EventKind>,
        from: i32,
        to: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> Vec<ActiveRow>;
    fn average(&self, from: i32, to: i32) -> f64;
    fn dist(&self, from: i32, to: i32) -> Vec<DistributionRow>;
    fn retention(&self, q: &RetentionQuery) -> RetentionMatrix;
    fn lifecycle(&self, p: Period, from: i32, to: i32) -> Vec<LifecycleRow>;
    fn daily(&self, from: i32, to: i32) -> Vec<DailyRow>;
    fn stages(
        &self,
        day: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> std::collections::BTreeMap<String, u64>;
    fn segment_count(&self, s: &Segment, now: i64) -> u64;
    fn rfm(&self, day: i32) -> RfmReport;
    fn name(&self, id: u32) -> String;
    fn counts(&self) -> (u64, u64);
}

fn filter(db: &Db, s: Option<&Segment>, now: i64) -> Option<RoaringBitmap> {
    s.map(|s| db.segment(s, now).unwrap())
}

impl Asks for Db {
    fn active(
        &self,
        k: Option<&EventKind>,
        from: i32,
        to: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> Vec<ActiveRow> {
        let f = filter(self, s, now);
        self.metrics().active(k, from, to, f.as_ref()).unwrap()
    }
    fn average(&self, from: i32, to: i32) -> f64 {
        self.metrics()
            .average_stickiness(None, from, to, None)
            .unwrap()
    }
    fn dist(&self, from: i32, to: i32) -> Vec<DistributionRow> {
        self.metrics()
            .stickiness_distribution(None, from, to, None)
            .unwrap()
    }
    fn retention(&self, q: &RetentionQuery) -> RetentionMatrix {
        self.metrics().retention(q, None).unwrap()
    }
    fn lifecycle(&self, p: Period, from: i32, to: i32) -> Vec<LifecycleRow> {
        self.metrics().lifecycle(p, from, to, None).unwrap()
    }
    fn daily(&self, from: i32, to: i32) -> Vec<DailyRow> {
        self.metrics().daily(from, to).unwrap()
    }
    fn stages(
        &self,
        day: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> std::collections::BTreeMap<String, u64> {
        let f = filter(self, s, now);
        self.metrics().stages(day, f.as_ref()).unwrap()
    }
    fn segment_count(&self, s: &Segment, now: i64) -> u64 {
        self.segment(s, now).unwrap().len()
    }
    fn rfm(&self, day: i32) -> RfmReport {
        self.metrics().rfm(day, None).unwrap()
    }
    fn name(&self, id: u32) -> String {
        self.user_name(id).unwrap().unwrap()
    }
    fn counts(&self) -> (u64, u64) {
        (self.user_count().unwrap(), self.event_count().unwrap())
    }
}

impl Asks for Cluster<'_> {
    fn active(
        &self,
        k: Option<&EventKind>,
        from: i32,
        to: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> Vec<ActiveRow> {
        Cluster::active(self, k, from, to, s, now).unwrap()
    }
    fn average(&self, from: i32, to: i32) -> f64 {
        self.average_stickiness(None, from, to, None, 0).unwrap()
    }
    fn dist(&self, from: i32, to: i32) -> Vec<DistributionRow> {
        self.stickiness_distribution(None, from, to, None, 0)
            .unwrap()
    }
    fn retention(&self, q: &RetentionQuery) -> RetentionMatrix {
        Cluster::retention(self, q, None, 0).unwrap()
    }
    fn lifecycle(&self, p: Period, from: i32, to: i32) -> Vec<LifecycleRow> {
        Cluster::lifecycle(self, p, from, to, None, 0).unwrap()
    }
    fn daily(&self, from: i32, to: i32) -> Vec<DailyRow> {
        Cluster::daily(self, from, to).unwrap()
    }
    fn stages(
        &self,
        day: i32,
        s: Option<&Segment>,
        now: i64,
    ) -> std::collections::BTreeMap<String, u64> {
        Cluster::stages(self, day, s, now).unwrap()
    }
    fn segment_count(&self, s: &Segment, now: i64) -> u64 {
        Cluster::segment_count(self, s, now).unwrap()
    }
    fn rfm(&self, day: i32) -> RfmReport {
        Cluster::rfm(self, day, None, 0).unwrap()
    }
    fn name(&self, id: u32) -> String {
        self.user_name(id).unwrap().unwrap()
    }
    fn counts(&self) -> (u64, u64) {
        (self.user_count().unwrap(), self.event_count().unwrap())
    }
}

/// Every answer over `from..=to` (time-relative atoms of `segs` as of
/// `now`), one line per question, users named by external id.
pub fn answers(a: &dyn Asks, from: i32, to: i32, now: i64, segs: &[Segment]) -> String {
    let mut out = String::new();
    let mut push = |label: &str, v: String| out.push_str(&format!("{label}: {v}\n"));
    push(
        "active",
        format!("{:?}", a.active(None, from, to, None, now)),
    );
    for s in segs {
        push(
            "seg active",
            format!("{:?}", a.active(None, from, to, Some(s), now)),
        );
        push("seg count", a.segment_count(s, now).to_string());
        push("seg stages", format!("{:?}", a.stages(to, Some(s), now)));
    }
    let purchase = EventKind::Purchase;
    push(
        "active purchase",
        format!("{:?}", a.active(Some(&purchase), from, to, None, now)),
    );
    push("avg stickiness", format!("{:.12}", a.average(from, to)));
    push("dist", format!("{:?}", a.dist(from, to)));
    for p in [Period::Day, Period::Week, Period::Month] {
        let mut q = RetentionQuery::new(p, from, to);
        push("retention", format!("{:?}", a.retention(&q)));
        q.mode = ReturnMode::OnOrAfter;
        push("retention oa", format!("{:?}", a.retention(&q)));
        push("lifecycle", format!("{:?}", a.lifecycle(p, from, to)));
    }
    push("daily", format!("{:?}", a.daily(from, to)));
    push("stages", format!("{:?}", a.stages(to, None, now)));
    push("rfm", super::rfm_answer(&a.rfm(to), |id| a.name(id)));
    push("counts", format!("{:?}", a.counts()));
    out
}
