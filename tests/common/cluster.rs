//! One store's and a cluster's answers to the same questions, users named
//! by external id, line per question (tests/cluster_*.rs).

use stickydb::cluster::Cluster;
use stickydb::metrics::{Period, RetentionQuery, ReturnMode};
use stickydb::{Db, Segment};

/// Every cluster answer printed with users named, line per question.
fn answers(active: String, rest: Vec<(&str, String)>) -> String {
    let mut out = format!("active: {active}\n");
    for (label, v) in rest {
        out.push_str(&format!("{label}: {v}\n"));
    }
    out
}

pub fn single_answers(db: &Db, from: i32, to: i32, now: i64, segs: &[Segment]) -> String {
    let m = db.metrics();
    let name = |id: u32| db.user_name(id).unwrap().unwrap();
    let mut rest = Vec::new();
    let filt = |s: &Segment| db.segment(s, now).unwrap();
    for s in segs {
        let f = filt(s);
        rest.push((
            "seg active",
            format!("{:?}", m.active(None, from, to, Some(&f)).unwrap()),
        ));
        rest.push(("seg count", f.len().to_string()));
        rest.push((
            "seg stages",
            format!("{:?}", m.stages(to, Some(&f)).unwrap()),
        ));
    }
    rest.push((
        "active purchase",
        format!(
            "{:?}",
            m.active(Some(&stickydb::EventKind::Purchase), from, to, None)
                .unwrap()
        ),
    ));
    rest.push((
        "avg stickiness",
        format!(
            "{:.12}",
            m.average_stickiness(None, from, to, None).unwrap()
        ),
    ));
    rest.push((
        "dist",
        format!(
            "{:?}",
            m.stickiness_distribution(None, from, to, None).unwrap()
        ),
    ));
    for p in [Period::Day, Period::Week, Period::Month] {
        let mut q = RetentionQuery::new(p, from, to);
        rest.push(("retention", format!("{:?}", m.retention(&q, None).unwrap())));
        q.mode = ReturnMode::OnOrAfter;
        rest.push((
            "retention oa",
            format!("{:?}", m.retention(&q, None).unwrap()),
        ));
        rest.push((
            "lifecycle",
            format!("{:?}", m.lifecycle(p, from, to, None).unwrap()),
        ));
    }
    rest.push(("daily", format!("{:?}", m.daily(from, to).unwrap())));
    rest.push(("stages", format!("{:?}", m.stages(to, None).unwrap())));
    let rfm = m.rfm(to, None).unwrap();
    let mut rows: Vec<String> = rfm
        .users
        .iter()
        .map(|r| {
            format!(
                "{} {:?}",
                name(r.user_id),
                (
                    r.recency_days,
                    r.orders,
                    r.net_spend_minor,
                    r.r_score,
                    r.f_score,
                    r.m_score,
                    r.segment
                )
            )
        })
        .collect();
    rows.sort();
    rest.push(("rfm", format!("{rows:?} {:?}", rfm.segments)));
    rest.push((
        "counts",
        format!("{} {}", db.user_count().unwrap(), db.event_count().unwrap()),
    ));
    answers(
        format!("{:?}", m.active(None, from, to, None).unwrap()),
        rest,
    )
}

pub fn cluster_answers(c: &Cluster<'_>, from: i32, to: i32, now: i64, segs: &[Segment]) -> String {
    let name = |id: u32| c.user_name(id).unwrap().unwrap();
    let mut rest = Vec::new();
    for s in segs {
        rest.push((
            "seg active",
            format!("{:?}", c.active(None, from, to, Some(s), now).unwrap()),
        ));
        rest.push(("seg count", c.segment_count(s, now).unwrap().to_string()));
        rest.push((
            "seg stages",
            format!("{:?}", c.stages(to, Some(s), now).unwrap()),
        ));
    }
    rest.push((
        "active purchase",
        format!(
            "{:?}",
            c.active(Some(&stickydb::EventKind::Purchase), from, to, None, now)
                .unwrap()
        ),
    ));
    rest.push((
        "avg stickiness",
        format!(
            "{:.12}",
            c.average_stickiness(None, from, to, None, now).unwrap()
        ),
    ));
    rest.push((
        "dist",
        format!(
            "{:?}",
            c.stickiness_distribution(None, from, to, None, now)
                .unwrap()
        ),
    ));
    for p in [Period::Day, Period::Week, Period::Month] {
        let mut q = RetentionQuery::new(p, from, to);
        rest.push((
            "retention",
            format!("{:?}", c.retention(&q, None, now).unwrap()),
        ));
        q.mode = ReturnMode::OnOrAfter;
        rest.push((
            "retention oa",
            format!("{:?}", c.retention(&q, None, now).unwrap()),
        ));
        rest.push((
            "lifecycle",
            format!("{:?}", c.lifecycle(p, from, to, None, now).unwrap()),
        ));
    }
    rest.push(("daily", format!("{:?}", c.daily(from, to).unwrap())));
    rest.push(("stages", format!("{:?}", c.stages(to, None, now).unwrap())));
    let rfm = c.rfm(to, None, now).unwrap();
    let mut rows: Vec<String> = rfm
        .users
        .iter()
        .map(|r| {
            format!(
                "{} {:?}",
                name(r.user_id),
                (
                    r.recency_days,
                    r.orders,
                    r.net_spend_minor,
                    r.r_score,
                    r.f_score,
                    r.m_score,
                    r.segment
                )
            )
        })
        .collect();
    rows.sort();
    rest.push(("rfm", format!("{rows:?} {:?}", rfm.segments)));
    rest.push((
        "counts",
        format!("{} {}", c.user_count().unwrap(), c.event_count().unwrap()),
    ));
    answers(
        format!("{:?}", c.active(None, from, to, None, now).unwrap()),
        rest,
    )
}
