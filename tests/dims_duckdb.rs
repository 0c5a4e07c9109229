//! Breakdowns equal DuckDB's over the same shuffled stream (DuckDB from
//! PyPI, in the tests' virtualenv beside chDB: `scripts/dev test` installs
//! both; this test is never skipped). The stream: 900 users over 30 days
//! at UTC+8, four kinds, a skewed `channel` (some events without it),
//! purchases with amounts, duplicates by event id, delivered shuffled in
//! batches and re-sent in part. DuckDB reads the events as written (JSON
//! lines), drops the duplicates itself and answers with SQL: daily users,
//! events, orders and GMV per channel — any activity and per kind — the
//! top 3 with the rest folded into `(other)` as a distinct union, and
//! rolling 7-day users; revenue per day (buyers, orders, GMV, refunds);
//! and daily LTV cohorts (sizes, net spend on each of the 6 days after).

mod common;

use std::io::Write;

use serde_json::{json, Value};
use stickydb::dims::{BreakdownQuery, Dimension};
use stickydb::{Db, Event, Options, PropValue};

const DAY_MS: i64 = 86_400_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const OFFSET_MIN: i32 = 480;

/// The stream, in arrival order (shuffled, with re-sent duplicates).
fn stream() -> Vec<Event> {
    let mut x: u64 = 777;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let channels = ["ads", "seo", "mail", "referral", "social", "push"];
    let mut out = Vec::new();
    for i in 0..9_000u64 {
        let user = format!("user-{}", next(900));
        let kind = ["view", "view", "add_to_cart", "purchase", "refund"][next(5) as usize];
        let ts = T0 + next(30) as i64 * DAY_MS + next(DAY_MS as u64) as i64;
        let mut e = Event::new(user, kind, ts).with_id(format!("e{i}"));
        // skewed: ads ≫ seo ≫ … so the top values do not tie
        let c = next(64);
        if c < 60 {
            let at = [0, 24, 40, 50, 56, 59]
                .iter()
                .rposition(|b| c >= *b)
                .unwrap_or(0);
            e = e.with_property("channel", PropValue::Str(channels[at].into()));
        }
        if matches!(kind, "purchase" | "refund") {
            e = e.with_amount(100 + next(5_000) as i64);
        }
        out.push(e);
    }
    // re-sent: a tenth of the stream again, shuffled in
    let again: Vec<Event> = out.iter().step_by(10).cloned().collect();
    out.extend(again);
    for i in (1..out.len()).rev() {
        out.swap(i, next(i as u64 + 1) as usize);
    }
    out
}

const SQL: &str = r#"
import duckdb, json, sys
path, off, d0, d1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute(f"""
create table raw as select row_number() over () as arrival, * from read_json_auto('{path}');
create table ev as select *, floor((ts + {off} * 60000) / 86400000)::int as day
  from raw qualify row_number() over (partition by "user", id order by arrival) = 1;
create table dv as select * from ev where channel is not null;
""")
def rows(kind, window=1, top=None):
    kf = "true" if kind is None else f"kind = '{kind}'"
    value = "channel"
    if top:
        keep = [r[0] for r in con.execute(f"""select channel from dv where {kf} and day between {d0} and {d1}
            group by channel order by count(distinct "user") desc limit {top}""").fetchall()]
        quoted = ",".join("'" + k + "'" for k in keep)
        value = f"case when channel in ({quoted}) then channel else '(other)' end"
    users = con.execute(f"""select d.day, {value} as v, count(distinct "user")
        from range({d0}, {d1} + 1) d(day) join dv on dv.day between d.day - {window} + 1 and d.day and {kf}
        group by 1, 2""").fetchall()
    sums = con.execute(f"""select day, {value} as v,
        count(*) filter (where {kf}), count(*) filter (where kind = 'purchase'),
        coalesce(sum(amount) filter (where kind = 'purchase'), 0)
        from dv where day between {d0} and {d1} group by 1, 2""").fetchall()
    out = {}
    for d, v, n in users:
        out.setdefault(f"{d}|{v}", [0, 0, 0, 0])[0] = n
    for d, v, e, o, g in sums:
        r = out.setdefault(f"{d}|{v}", [0, 0, 0, 0])
        r[1], r[2], r[3] = e, o, int(g)
    return {k: r for k, r in out.items() if r[0] or r[1] or r[2]}
revenue = {str(d): [b, o, int(g), int(r)] for d, b, o, g, r in con.execute(f"""
    select day, count(distinct "user") filter (where kind = 'purchase'),
    count(*) filter (where kind = 'purchase'),
    coalesce(sum(amount) filter (where kind = 'purchase'), 0),
    coalesce(sum(amount) filter (where kind = 'refund'), 0)
    from ev where day between {d0} and {d1} group by 1""").fetchall()}
ltv = {}
for c, n, net in con.execute(f"""
    with cohort as (select "user", min(day) as c from ev group by 1)
    select c, day - c, sum(case kind when 'purchase' then amount when 'refund' then -amount else 0 end)
    from ev join cohort using ("user")
    where c between {d0} and {d1} and day - c between 0 and 6 and day <= {d1}
    group by 1, 2""").fetchall():
    ltv[f"{c}|{n}"] = int(net)
sizes = {str(c): n for c, n in con.execute(f"""
    select c, count(*) from (select "user", min(day) as c from ev group by 1)
    where c between {d0} and {d1} group by 1""").fetchall()}
print(json.dumps({"ltv": ltv, "sizes": sizes,
    "any": rows(None), "view": rows("view"), "purchase": rows("purchase"),
    "top3": rows(None, top=3), "rolling7": rows(None, window=7), "revenue": revenue,
}))
"#;

fn engine(db: &Db, q: BreakdownQuery) -> Value {
    let b = db.breakdown(&q, None, T0).unwrap();
    let mut out = serde_json::Map::new();
    for r in b.rows {
        let key = format!("{}|{}", r.day, r.value);
        let sums = (r.events.unwrap(), r.orders.unwrap(), r.gmv_minor.unwrap());
        out.insert(key, json!([r.users, sums.0, sums.1, sums.2]));
    }
    Value::Object(out)
}

#[test]
fn breakdowns_equal_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .create_if_missing(true)
        .utc_offset_minutes(OFFSET_MIN);
    let db = Db::open(dir.path().join("store"), options).unwrap();
    let events = stream();
    // half recorded before the dimension is declared (its backfill), half after
    let (before, after) = events.split_at(events.len() / 2);
    for chunk in before.chunks(500) {
        db.record_batch(chunk).unwrap();
    }
    db.declare_dimension(&Dimension::new("channel")).unwrap();
    for chunk in after.chunks(500) {
        db.record_batch(chunk).unwrap();
    }
    // DuckDB reads the stream as it arrived
    let path = dir.path().join("events.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for e in &events {
        let channel = e.properties.get("channel").map(|p| match p {
            PropValue::Str(s) => s.clone(),
            other => panic!("{other:?}"),
        });
        let line = json!({"user": e.user, "kind": e.kind.as_str(), "ts": e.ts_ms,
            "id": e.event_id, "amount": e.amount_minor, "channel": channel});
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let (d0, d1) = (db.local_day(T0) - 1, db.local_day(T0 + 30 * DAY_MS));
    let out = std::process::Command::new(common::python())
        .args(["-c", SQL, path.to_str().unwrap()])
        .args([OFFSET_MIN.to_string(), d0.to_string(), d1.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = || BreakdownQuery::new("channel", d0, d1);
    let got = json!({
        "any": engine(&db, q()),
        "view": engine(&db, q().kind("view")),
        "purchase": engine(&db, q().kind("purchase")),
        "top3": engine(&db, q().top(3)),
        "rolling7": engine(&db, q().window_days(7)),
    });
    for part in ["any", "view", "purchase", "top3", "rolling7"] {
        assert_eq!(got[part], want[part], "{part}");
    }
    // revenue per day, store-wide (days without any purchase or refund
    // are rows of zeros here, absent there)
    let mut revenue = serde_json::Map::new();
    for r in db.metrics().revenue(d0, d1, None).unwrap() {
        if r.orders > 0 || r.refunds_minor > 0 {
            let row = json!([r.buyers, r.orders, r.gmv_minor, r.refunds_minor]);
            revenue.insert(r.day.to_string(), row);
        }
    }
    assert_eq!(Value::Object(revenue), want["revenue"], "revenue");
    // daily LTV cohorts: sizes and net spend per day after (cells with
    // events only: DuckDB has no row for a day without any)
    let report = db
        .metrics()
        .ltv(stickydb::metrics::Period::Day, (d0, d1), 6, None, None)
        .unwrap();
    let (mut sizes, mut cells) = (serde_json::Map::new(), serde_json::Map::new());
    for c in &report.cohorts {
        if c.size > 0 {
            sizes.insert(c.cohort.to_string(), json!(c.size));
        }
        for (n, net) in c.net_minor.iter().enumerate() {
            cells.insert(format!("{}|{n}", c.cohort), json!(net));
        }
    }
    assert_eq!(Value::Object(sizes), want["sizes"], "cohort sizes");
    for (k, v) in want["ltv"].as_object().unwrap() {
        assert_eq!(cells.get(k), Some(v), "ltv cell {k}");
    }
    let nonzero = cells
        .iter()
        .filter(|(k, v)| **v != json!(0) && !want["ltv"].as_object().unwrap().contains_key(*k));
    assert_eq!(nonzero.count(), 0, "a cell DuckDB has no spend in");
    assert!(want["any"].as_object().unwrap().len() > 100);
}
