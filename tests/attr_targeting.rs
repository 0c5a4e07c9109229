//! Targeting atoms (`attr:` ranges and prefixes, `has:`, birthdays and
//! anniversaries) against a brute-force filter over a model of 10 000
//! typed random profiles — ages as integers, floats and text, dates with
//! 29 February birthdays, instants, missing and sensitive values — after
//! changes, type changes, unsets, erasures and identity merges, at several
//! as-of days (a common and a leap February, a year's end), with and
//! without sensitive values, alone and in random combinations with
//! activity atoms, `contacted_within:` (contacts are not activity) and
//! thresholds on spend, orders, points and stickiness;
//! then verify, which re-derives the attribute index,
//! finds it clean and finds a damaged entry.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::raw_open;
use stickydb::{
    AttrValue, Db, Event, MergeOptions, Options, PointsOp, ProfileUpdate, Segment, Sensitive,
};

const USERS: u32 = 10_000;
const DAY_MS: i64 = 86_400_000;
/// UTC−5: instants near midnight fall on another local day than in UTC.
const OFFSET_MINUTES: i32 = -300;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

type Attrs = BTreeMap<String, (AttrValue, bool)>;

fn day_of(y: i32, m: u32, d: u32) -> i32 {
    match AttrValue::date(y, m, d) {
        Some(AttrValue::Date(n)) => n,
        _ => panic!("{y}-{m}-{d} is a date"),
    }
}

fn random_date(rng: &mut Rng, from_year: i32, years: u64) -> AttrValue {
    if rng.chance(3) {
        // born on 29 February of a leap year
        let y = 1952 + 4 * rng.below(14) as i32;
        return AttrValue::date(y, 2, 29).expect("a leap day");
    }
    let y = from_year + rng.below(years) as i32;
    let m = 1 + rng.below(12) as u32;
    let d = 1 + rng.below(31) as u32;
    AttrValue::date(y, m, d).unwrap_or_else(|| AttrValue::date(y, m, 28).expect("a date"))
}

const CITIES: [&str; 7] = [
    "Shenzhen",
    "Shanghai",
    "Shenyang",
    "Beijing",
    "Bei",
    "She\u{0}n",
    "",
];

/// A random value for attribute `name` (sometimes of another type).
fn random_value(rng: &mut Rng, name: &str) -> AttrValue {
    let base = 1_600_000_000_000i64;
    match name {
        "age" if rng.chance(6) => AttrValue::Float(15.0 + rng.below(400) as f64 / 8.0),
        "age" if rng.chance(3) => AttrValue::Str(format!("{}", 10 + rng.below(60))),
        "age" => AttrValue::Int(10 + rng.below(70) as i64),
        "birthday" => random_date(rng, 1950, 60),
        "signup_date" if rng.chance(30) => {
            // an instant, some a few minutes around a local midnight
            let t = base + rng.below(1_500) as i64 * DAY_MS / 2 + 5 * 3_600_000;
            AttrValue::Timestamp(t + rng.below(600_000) as i64 - 300_000)
        }
        "signup_date" if rng.chance(10) => AttrValue::Str(format!(
            "20{:02}-{:02}-{:02}",
            18 + rng.below(8),
            1 + rng.below(12),
            1 + rng.below(28)
        )),
        "signup_date" => random_date(rng, 2018, 8),
        "city" => AttrValue::Str(rng.pick(&CITIES).to_string()),
        "vip" => AttrValue::Bool(rng.chance(20)),
        "score" if rng.chance(10) => AttrValue::Int(rng.below(11) as i64 - 5),
        "score" => AttrValue::Float((rng.below(2_001) as f64 - 1_000.0) / 200.0),
        "phone" => AttrValue::Str(format!("+86 1{:09}", rng.below(1_000_000_000))),
        _ => AttrValue::Timestamp(base + rng.below(1_000) as i64 * 3_600_000),
    }
}

const NAMES: [&str; 8] = [
    "age",
    "birthday",
    "signup_date",
    "city",
    "vip",
    "score",
    "phone",
    "last_login",
];

fn random_update(rng: &mut Rng, attrs: &mut Attrs, fresh: bool) -> ProfileUpdate {
    let mut u = ProfileUpdate::new();
    for name in NAMES {
        let roll = rng.below(100);
        if fresh && roll < 12 || !fresh && roll < 70 {
            continue;
        }
        if !fresh && roll < 78 {
            u = u.unset(name);
            attrs.remove(name);
            continue;
        }
        let value = random_value(rng, name);
        let sensitive = if name == "phone" {
            !rng.chance(10)
        } else {
            rng.chance(4)
        };
        u = if sensitive {
            u.set_sensitive(name, value.clone())
        } else {
            u.set(name, value.clone())
        };
        attrs.insert(name.to_owned(), (value, sensitive));
    }
    u
}

/// The model: attributes and activity days of each live user.
#[derive(Default)]
struct Model {
    attrs: HashMap<String, Attrs>,
    active_days: HashMap<String, BTreeSet<i32>>,
    /// Days with a `contacted` event (not activity).
    contacted: HashMap<String, BTreeSet<i32>>,
    /// Per day: purchase events, net spend (purchases − refunds).
    money: HashMap<String, BTreeMap<i32, (i64, i64)>>,
    points: HashMap<String, i64>,
    purchased: BTreeSet<String>,
}

impl Model {
    fn merge(&mut self, from: &str, into: &str) {
        let from_attrs = self.attrs.remove(from).unwrap_or_default();
        let into_attrs = self.attrs.entry(into.to_owned()).or_default();
        for (name, (v, s)) in from_attrs {
            match into_attrs.get_mut(&name) {
                None => {
                    into_attrs.insert(name, (v, s));
                }
                Some(kept) => kept.1 |= s,
            }
        }
        let days = self.active_days.remove(from).unwrap_or_default();
        self.active_days
            .entry(into.to_owned())
            .or_default()
            .extend(days);
        let days = self.contacted.remove(from).unwrap_or_default();
        self.contacted
            .entry(into.to_owned())
            .or_default()
            .extend(days);
        let money = self.money.remove(from).unwrap_or_default();
        let into_money = self.money.entry(into.to_owned()).or_default();
        for (day, (o, n)) in money {
            let e = into_money.entry(day).or_default();
            e.0 += o;
            e.1 += n;
        }
        if self.purchased.remove(from) {
            self.purchased.insert(into.to_owned());
        }
    }
}

fn build(dir: &std::path::Path, rng: &mut Rng) -> (Db, Model) {
    let db =
        Db::create(dir, Options::default().utc_offset_minutes(OFFSET_MINUTES)).expect("create");
    let mut m = Model::default();
    let start = 1_700_000_000_000i64;
    for u in 0..USERS {
        let user = format!("u{u}");
        if rng.chance(90) {
            let mut attrs = Attrs::new();
            let update = random_update(rng, &mut attrs, true);
            db.update_profile(&user, &update).expect("profile");
            m.attrs.insert(user.clone(), attrs);
        }
        let events = if m.attrs.contains_key(&user) {
            rng.below(3)
        } else {
            1 + rng.below(2)
        };
        let mut batch = Vec::new();
        for i in 0..events {
            let ts = start + rng.below(60) as i64 * DAY_MS + rng.below(DAY_MS as u64) as i64;
            let kind = *rng.pick(&["purchase", "view", "view", "refund"]);
            let amount = if kind == "view" {
                0
            } else {
                100 * (1 + rng.below(50) as i64)
            };
            let e = Event::new(user.clone(), kind, ts).with_id(format!("{user}-{i}"));
            batch.push(if amount > 0 { e.with_amount(amount) } else { e });
            let day = db.local_day(ts);
            m.active_days.entry(user.clone()).or_default().insert(day);
            let money = m
                .money
                .entry(user.clone())
                .or_default()
                .entry(day)
                .or_default();
            match kind {
                "purchase" => {
                    m.purchased.insert(user.clone());
                    money.0 += 1;
                    money.1 += amount;
                }
                "refund" => money.1 -= amount,
                _ => {}
            }
        }
        if rng.chance(30) {
            let ts = start + rng.below(60) as i64 * DAY_MS + rng.below(DAY_MS as u64) as i64;
            batch.push(Event::new(user.clone(), "contacted", ts).with_id(format!("{user}-c")));
            m.contacted
                .entry(user.clone())
                .or_default()
                .insert(db.local_day(ts));
        }
        db.record_batch(&batch).expect("events");
        // points, for users no merge below touches
        let merged = |u: u32| u >= 50 && ((u - 50) % 113 == 0 || (u - 51) % 113 == 0);
        if u % 10 == 3 && !merged(u) {
            let n = 10 * (1 + rng.below(300) as i64);
            db.points(&user, "w", start, &PointsOp::earn(n, "welcome"))
                .expect("points");
            m.points.insert(user.clone(), n);
        }
    }
    // a second round: changes, type changes, unsets, sensitivity flips
    for u in 0..USERS {
        let user = format!("u{u}");
        let Some(attrs) = m.attrs.get_mut(&user) else {
            continue;
        };
        if rng.chance(30) {
            let update = random_update(rng, attrs, false);
            db.update_profile(&user, &update).expect("update");
        }
    }
    for u in (0..USERS).step_by(97) {
        let user = format!("u{u}");
        db.erase_user(&user).expect("erase");
        m.attrs.remove(&user);
        m.active_days.remove(&user);
        m.contacted.remove(&user);
        m.money.remove(&user);
        m.points.remove(&user);
        m.purchased.remove(&user);
    }
    for u in (50..USERS).step_by(113) {
        let (from, into) = (format!("u{u}"), format!("u{}", u + 1));
        let exists = |u: &String| {
            m.active_days.contains_key(u) || m.attrs.contains_key(u) || m.contacted.contains_key(u)
        };
        if !exists(&from) || !exists(&into) {
            continue;
        }
        db.merge(&from, &into, &format!("m{u}"), MergeOptions::forced())
            .expect("merge");
        m.merge(&from, &into);
    }
    (db, m)
}

/// The literal of a comparison as the first type it parses as.
enum Lit {
    Int(i64),
    Float(f64),
    Date(i32),
    Instant(i64),
    Text,
}

fn lit(v: &str) -> Lit {
    if let Ok(n) = v.parse::<i64>() {
        return Lit::Int(n);
    }
    if let Some(x) = v.parse::<f64>().ok().filter(|x| x.is_finite()) {
        return Lit::Float(x);
    }
    if let Some(d) = parse_date(v) {
        return Lit::Date(d);
    }
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => Lit::Instant(t.timestamp_millis()),
        Err(_) => Lit::Text,
    }
}

fn parse_date(v: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days() as i32)
}

fn local_day(ts: i64) -> i32 {
    (ts + i64::from(OFFSET_MINUTES) * 60_000).div_euclid(DAY_MS) as i32
}

fn cmp_holds(op: &str, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        ">=" => o != Less,
        ">" => o == Greater,
        "<=" => o != Greater,
        "<" => o == Less,
        _ => panic!("operator {op}"),
    }
}

fn fcmp(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).expect("finite")
}

/// Whether one value meets `attr:NAME OP v` (brute force).
fn compares(value: &AttrValue, op: &str, v: &str) -> bool {
    use AttrValue as A;
    if op == "^=" {
        return matches!(value, A::Str(s) if s.starts_with(v));
    }
    let o = match (value, lit(v)) {
        (A::Int(n) | A::Timestamp(n), Lit::Int(l)) => n.cmp(&l),
        (A::Float(x), Lit::Int(l)) => fcmp(*x, l as f64),
        (A::Int(n) | A::Timestamp(n), Lit::Float(l)) => fcmp(*n as f64, l),
        (A::Float(x), Lit::Float(l)) => fcmp(*x, l),
        (A::Date(d), Lit::Date(l)) => d.cmp(&l),
        (A::Timestamp(t), Lit::Date(l)) => local_day(*t).cmp(&l),
        (A::Str(s), Lit::Date(_) | Lit::Text) => s.as_bytes().cmp(v.as_bytes()),
        (A::Timestamp(t), Lit::Instant(l)) => t.cmp(&l),
        _ => return false,
    };
    cmp_holds(op, o)
}

fn equals(value: &AttrValue, v: &str) -> bool {
    use AttrValue as A;
    match value {
        A::Str(s) => s == v,
        A::Int(n) | A::Timestamp(n) => v.parse::<i64>() == Ok(*n),
        A::Float(x) => v.parse::<f64>().ok().filter(|f| f.is_finite()) == Some(*x),
        A::Bool(b) => v.parse::<bool>() == Ok(*b),
        A::Date(d) => parse_date(v) == Some(*d),
        _ => false,
    }
}

/// Whether a date's next anniversary on or after `today` is within `days`.
fn anniversary(value: &AttrValue, today: i32, days: u32) -> bool {
    use chrono::Datelike;
    let AttrValue::Date(d) = value else {
        return false;
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let date = epoch + chrono::Duration::days(i64::from(*d));
    let today_date = epoch + chrono::Duration::days(i64::from(today));
    let in_year = |y: i32| {
        chrono::NaiveDate::from_ymd_opt(y, date.month(), date.day())
            .or_else(|| chrono::NaiveDate::from_ymd_opt(y, 2, 28))
            .expect("a date")
    };
    let mut next = in_year(today_date.year());
    if next < today_date {
        next = in_year(today_date.year() + 1);
    }
    (next - today_date).num_days() < i64::from(days)
}

/// The atoms the model checks, as text.
fn atoms() -> Vec<String> {
    [
        "attr:age>=18",
        "attr:age<=25",
        "attr:age>30.5",
        "attr:age<18",
        "attr:age=42",
        "attr:age=30.5",
        "attr:age>=1e1",
        "attr:age<-3",
        "attr:city^=Shen",
        "attr:city^=She",
        "attr:city=Beijing",
        "attr:city=",
        "attr:city>=Bei",
        "attr:city<Shenzhen",
        "attr:city^=Bei",
        "has:phone",
        "has:age",
        "has:nothing",
        "attr:vip=true",
        "attr:vip=false",
        "attr:score>=-1.5",
        "attr:score<0",
        "attr:score>2",
        "attr:score<=-5",
        "attr:signup_date>=2020-01-01",
        "attr:signup_date<2021-06-15",
        "attr:signup_date<=2022-03-04",
        "attr:signup_date>2019-12-31",
        "attr:last_login>=2020-10-01T12:00:00Z",
        "attr:last_login<1601000000000",
        "attr:last_login>2020-09-20",
        "birthday_within:1d",
        "birthday_within:7d",
        "birthday_within:31d",
        "birthday_within:400d",
        "anniversary:signup_date@14d",
        "anniversary:birthday@2d",
        "attr:birthday=1960-02-29",
        "attr:birthday<1970-01-01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Brute force of one atom for one user.
fn holds(m: &Model, user: &str, atom: &str, today: i32, include: bool) -> bool {
    let attrs = m.attrs.get(user);
    let get = |name: &str| {
        attrs
            .and_then(|a| a.get(name))
            .filter(|(_, s)| include || !s)
            .map(|(v, _)| v)
    };
    if let Some(name) = atom.strip_prefix("has:") {
        return get(name).is_some();
    }
    if let Some(n) = atom.strip_prefix("birthday_within:") {
        let days = n.trim_end_matches('d').parse().expect("days");
        return get("birthday").is_some_and(|v| anniversary(v, today, days));
    }
    if let Some(rest) = atom.strip_prefix("anniversary:") {
        let (name, n) = rest.split_once('@').expect("@");
        let days = n.trim_end_matches('d').parse().expect("days");
        return get(name).is_some_and(|v| anniversary(v, today, days));
    }
    if let Some(n) = atom.strip_prefix("active_within:") {
        let days: i32 = n.trim_end_matches('d').parse().expect("days");
        return m
            .active_days
            .get(user)
            .is_some_and(|d| d.range(today - days + 1..=today).next().is_some());
    }
    if let Some(n) = atom.strip_prefix("contacted_within:") {
        let days: i32 = n.trim_end_matches('d').parse().expect("days");
        return m
            .contacted
            .get(user)
            .is_some_and(|d| d.range(today - days + 1..=today).next().is_some());
    }
    for (measure, op) in [
        ("spend", ">="),
        ("spend", "<"),
        ("orders", ">="),
        ("orders", "<="),
        ("points", ">="),
        ("points", "<"),
        ("stickiness", ">="),
        ("stickiness", "<"),
    ] {
        let Some(rest) = atom.strip_prefix(measure).and_then(|r| r.strip_prefix(op)) else {
            continue;
        };
        if op.len() == 1 && rest.starts_with('=') {
            continue;
        }
        let (value, window) = match rest.split_once('@') {
            Some((v, n)) => (
                v,
                Some(n.trim_end_matches('d').parse::<i32>().expect("days")),
            ),
            None => (rest, None),
        };
        let from = window.map_or(i32::MIN, |n| today - n + 1);
        let x: f64 = value.parse().expect("a number");
        let got = match measure {
            "points" => m.points.get(user).copied().unwrap_or(0) as f64,
            "stickiness" => {
                let days = m
                    .active_days
                    .get(user)
                    .map_or(0, |d| d.range(from..=today).count());
                days as f64 / f64::from(window.expect("a window"))
            }
            _ => {
                let sum = m.money.get(user).map_or((0, 0), |d| {
                    d.range(from..=today)
                        .fold((0, 0), |a, (_, v)| (a.0 + v.0, a.1 + v.1))
                });
                (if measure == "orders" { sum.0 } else { sum.1 }) as f64
            }
        };
        return cmp_holds(op, got.partial_cmp(&x).expect("finite"));
    }
    if atom == "did:purchase" {
        return m.purchased.contains(user);
    }
    let rest = atom.strip_prefix("attr:").expect("an attr atom");
    let at = rest.find(['=', '<', '>', '^']).expect("an operator");
    let (name, tail) = rest.split_at(at);
    let Some(value) = get(name) else { return false };
    for op in [">=", "<=", "^=", ">", "<"] {
        if let Some(v) = tail.strip_prefix(op) {
            return compares(value, op, v);
        }
    }
    equals(value, &tail[1..])
}

enum Expr {
    Atom(String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    fn text(&self) -> String {
        match self {
            Expr::Atom(a) => a.clone(),
            Expr::And(a, b) => format!("({} and {})", a.text(), b.text()),
            Expr::Or(a, b) => format!("({} or {})", a.text(), b.text()),
            Expr::Not(a) => format!("not {}", a.text()),
        }
    }
    fn holds(&self, m: &Model, user: &str, today: i32, include: bool) -> bool {
        match self {
            Expr::Atom(a) => holds(m, user, a, today, include),
            Expr::And(a, b) => a.holds(m, user, today, include) && b.holds(m, user, today, include),
            Expr::Or(a, b) => a.holds(m, user, today, include) || b.holds(m, user, today, include),
            Expr::Not(a) => !a.holds(m, user, today, include),
        }
    }
}

fn random_expr(rng: &mut Rng, pool: &[String], depth: u32) -> Expr {
    if depth == 0 || rng.chance(30) {
        return Expr::Atom(rng.pick(pool).clone());
    }
    let a = Box::new(random_expr(rng, pool, depth - 1));
    match rng.below(3) {
        0 => Expr::And(a, Box::new(random_expr(rng, pool, depth - 1))),
        1 => Expr::Or(a, Box::new(random_expr(rng, pool, depth - 1))),
        _ => Expr::Not(a),
    }
}

fn check(db: &Db, m: &Model, ids: &HashMap<u32, String>, expr: &Expr, now_ms: i64) {
    let text = expr.text();
    let seg = Segment::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(
        Segment::parse(&seg.to_string()).ok().as_ref(),
        Some(&seg),
        "{text} round trip"
    );
    let today = local_day(now_ms);
    for (sensitive, include) in [(Sensitive::Exclude, false), (Sensitive::Include, true)] {
        let got = db.segment_with(&seg, now_ms, sensitive).expect("segment");
        let got: BTreeSet<&str> = got.iter().map(|id| ids[&id].as_str()).collect();
        let want: BTreeSet<&str> = ids
            .values()
            .map(String::as_str)
            .filter(|u| expr.holds(m, u, today, include))
            .collect();
        if got != want {
            let missing: Vec<_> = want.difference(&got).take(5).collect();
            let extra: Vec<_> = got.difference(&want).take(5).collect();
            panic!(
                "{text} (sensitive {include}, day {today}): {} users, model {}; missing \
                 {missing:?}, extra {extra:?}",
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn every_targeting_atom_equals_a_brute_force_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x5eed_0031);
    let (db, m) = build(dir.path(), &mut rng);
    let all = db.all_users().expect("all");
    let ids: HashMap<u32, String> = all
        .iter()
        .map(|id| (id, db.user_name(id).expect("name").expect("named")))
        .collect();
    // the model's attributes are the store's
    for (user, attrs) in &m.attrs {
        let p = db
            .profile(user, Sensitive::Include)
            .expect("read")
            .expect("exists");
        let want: BTreeMap<&String, &AttrValue> = attrs.iter().map(|(n, (v, _))| (n, v)).collect();
        assert_eq!(
            p.attributes.iter().collect::<BTreeMap<_, _>>(),
            want,
            "{user}"
        );
    }
    // as of (local noon): a common and a leap February's end, a year's end
    let as_of = [(2025, 2, 27), (2024, 2, 28), (2023, 12, 29), (2024, 3, 1)];
    let atoms = atoms();
    for &(y, mo, d) in &as_of {
        let now = i64::from(day_of(y, mo, d)) * DAY_MS + 12 * 3_600_000
            - i64::from(OFFSET_MINUTES) * 60_000;
        for a in &atoms {
            check(&db, &m, &ids, &Expr::Atom(a.clone()), now);
        }
    }
    let mut pool = atoms;
    pool.extend(
        [
            "active_within:7d",
            "did:purchase",
            "contacted_within:7d",
            "contacted_within:30d",
            "spend>=5000@30d",
            "spend<0@30d",
            "spend>=3000",
            "orders>=2@14d",
            "orders<=0@7d",
            "points>=1500",
            "points<100",
            "stickiness>=0.1@30d",
            "stickiness<0.05@14d",
        ]
        .map(String::from),
    );
    let now = i64::from(day_of(2023, 11, 20)) * DAY_MS;
    for _ in 0..150 {
        let e = random_expr(&mut rng, &pool, 3);
        check(&db, &m, &ids, &e, now);
    }
    common::assert_clean(&db);
    // verify re-derives the index: a user taken out of one entry is found
    drop(db);
    {
        let raw = raw_open(dir.path());
        let cf = raw.cf_handle("attr_index").expect("attr_index");
        let (k, v) = raw
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .flatten()
            .find(|(_, v)| v.len() > 8)
            .expect("an entry");
        let mut set = stickydb::store::merge::decode_bitmap(&v).expect("a set");
        let first = set.min().expect("a user");
        set.remove(first);
        raw.put_cf(cf, &k, stickydb::store::merge::encode_bitmap(&set))
            .expect("damage");
    }
    let db = Db::open(dir.path(), Options::default()).expect("reopen");
    let report = db.verify().expect("verify runs");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("attribute index")),
        "verify missed a damaged attribute index entry: {:?}",
        report.problems
    );
}
