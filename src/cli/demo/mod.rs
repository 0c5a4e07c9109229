//! `stickydb demo`: synthetic e-commerce behaviour, ingested and summarised.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod coupons;
mod dims;
mod features;
mod loyalty;
mod social;

use super::Cli;
use crate::time::{format_day, DAY_MS};
use crate::{
    Db, Error, Event, Options, ProfileUpdate, PropValue, RecordOutcome, Segment, Sensitive,
    TagSource,
};

/// Simulated days start here (2024-01-01 00:00 UTC) so the demo is reproducible.
const START_MS: i64 = 1_704_067_200_000;
/// Events per write batch.
const BATCH_EVENTS: usize = 2_000;

#[derive(Debug, Clone, Copy)]
enum Persona {
    /// Looks a lot, rarely buys.
    Browser,
    /// Buys regularly.
    Buyer,
    /// Comes daily, signs in, buys often.
    Loyal,
    /// Active for a while, then gone.
    Churner,
}

struct SimUser {
    name: String,
    persona: Persona,
    signup_day: u32,
    churn_day: u32,
    /// The variant of the `checkout` experiment the user is assigned:
    /// the one-page checkout (else the control).
    one_page: bool,
    /// The category it browses most (`features::CATEGORIES`).
    favourite: usize,
}

/// The `checkout` experiment starts a third into the simulated period:
/// every session from then shows the user's variant (an exposure); the
/// one-page checkout converts carts a little better.
const EXPERIMENT: &str = "checkout";

/// The day the `checkout` experiment starts.
fn experiment_start(days: u32) -> u32 {
    days / 3
}

fn persona(rng: &mut StdRng) -> Persona {
    match rng.random_range(0..100) {
        0..45 => Persona::Browser,
        45..70 => Persona::Buyer,
        70..80 => Persona::Loyal,
        _ => Persona::Churner,
    }
}

fn daily_visit_probability(p: Persona, weekday: u8) -> f64 {
    let base = match p {
        Persona::Browser => 0.12,
        Persona::Buyer => 0.2,
        Persona::Loyal => 0.6,
        Persona::Churner => 0.3,
    };
    // Weekend rhythm: more shopping on Saturday and Sunday.
    if weekday >= 5 {
        base * 1.4
    } else {
        base
    }
}

/// One session of a user on one day: browse → maybe cart → maybe purchase.
fn session(
    rng: &mut StdRng,
    u: &SimUser,
    day: u32,
    session_no: u32,
    exposed: bool,
    out: &mut Vec<Event>,
) {
    let start = START_MS
        + i64::from(day) * DAY_MS
        + rng.random_range(7..23) * 3_600_000
        + rng.random_range(0..3_600_000);
    let sid = format!("{}-{day}-{session_no}", u.name);
    let first = out.len();
    let mut t = start;
    let mut n = 0u32;
    let mut push = |kind: &str, t: i64, amount: Option<i64>, out: &mut Vec<Event>| {
        let mut e = Event::new(u.name.as_str(), kind, t)
            .with_session(sid.as_str())
            .with_id(format!("{sid}-{n}"));
        e.amount_minor = amount;
        out.push(e);
        n += 1;
    };
    if matches!(u.persona, Persona::Loyal) || rng.random_bool(0.3) {
        push("sign_in", t, None, out);
    }
    if exposed {
        // one session in a hundred shows the other variant (a caching bug)
        let mut variant = u.one_page;
        if rng.random_bool(0.01) {
            variant = !variant;
        }
        push("exposure", t, None, out);
        if let Some(e) = out.last_mut() {
            e.properties
                .insert("experiment".into(), PropValue::Str(EXPERIMENT.into()));
            let v = if variant { "one_page" } else { "control" };
            e.properties
                .insert("variant".into(), PropValue::Str(v.into()));
        }
    }
    let views = rng.random_range(1..8);
    let mut last = features::CATEGORIES[u.favourite];
    for _ in 0..views {
        t += rng.random_range(5_000..120_000);
        let kind = if rng.random_bool(0.25) {
            "search"
        } else {
            "view"
        };
        push(kind, t, None, out);
        last = features::pick(u.favourite, &sid, t);
        features::label(out, last);
    }
    let cart_p = match u.persona {
        Persona::Browser => 0.08,
        Persona::Buyer => 0.45,
        Persona::Loyal => 0.5,
        Persona::Churner => 0.25,
    };
    if rng.random_bool(cart_p) {
        t += rng.random_range(5_000..60_000);
        push("add_to_cart", t, None, out);
        features::label(out, last);
        let buy_p = if exposed && u.one_page { 0.62 } else { 0.55 };
        if rng.random_bool(buy_p) {
            t += rng.random_range(30_000..600_000);
            let amount = rng.random_range(500..25_000);
            push("purchase", t, Some(amount), out);
            features::label(out, last);
            if rng.random_bool(0.04) {
                push("refund", t + 3 * DAY_MS, Some(amount), out);
            } else if rng.random_bool(0.15) {
                push("review", t + DAY_MS, None, out);
            }
        }
    }
    if rng.random_bool(0.03) {
        t += 10_000;
        push("share", t, None, out);
        if let Some(e) = out.last_mut() {
            // a short share code, as apps put in links (unique: the
            // session id is)
            e.share_id = Some(social::share_code(&sid));
        }
    }
    if let Some(events) = out.get_mut(first..) {
        dims::label(events, &u.name, &sid, day);
    }
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} events ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub(super) fn run(
    cli: &Cli,
    users: u32,
    days: u32,
    seed: u64,
    report_path: &std::path::Path,
) -> Result<(), Error> {
    let users = users.clamp(1, 5_000_000);
    let days = days.clamp(1, 3_650);
    let db = Db::open(&cli.db, Options::default().create_if_missing(true))?;
    db.set_ledger_settings(loyalty::points())?;
    db.apply_settings(&loyalty::growth())?;
    dims::declare(&db)?;
    coupons::setup(&db, users as usize, START_MS + i64::from(days) * DAY_MS)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let sim: Vec<SimUser> = (0..users)
        .map(|i| {
            let persona = persona(&mut rng);
            let signup_day = rng.random_range(0..days);
            let churn_day = match persona {
                Persona::Churner => signup_day + rng.random_range(3..30),
                _ => u32::MAX,
            };
            SimUser {
                name: format!("user-{i:07}"),
                persona,
                signup_day,
                churn_day,
                one_page: rng.random_bool(0.5),
                favourite: (i as usize / 5) % features::CATEGORIES.len(),
            }
        })
        .collect();

    // Profiles: attributes, one sensitive, and model/rule/manual tags.
    let regions = ["north", "south", "east", "west", "central"];
    for (i, u) in sim.iter().enumerate() {
        let signup_ms = START_MS + i64::from(u.signup_day) * DAY_MS;
        let mut up = ProfileUpdate::new()
            .set("region", regions[i % regions.len()])
            .set("age", rng.random_range(18..70i64))
            .set_sensitive("phone", format!("+1-555-{:04}", i % 10_000))
            .tag(
                if i % 2 == 0 { "exp:a" } else { "exp:b" },
                TagSource::Manual,
                signup_ms,
                None,
            );
        if matches!(u.persona, Persona::Loyal) {
            up = up.tag("vip", TagSource::Rule, signup_ms, None);
        }
        if matches!(u.persona, Persona::Churner) {
            let until = START_MS + i64::from(u.churn_day) * DAY_MS;
            up = up.tag("churn_risk", TagSource::Model, signup_ms, Some(until));
        }
        db.update_profile(&u.name, &up)?;
    }

    // Events, generated day by day and written in batches.
    let estimate = u64::from(users) * u64::from(days) / 2;
    let bar = progress(estimate);
    let (mut recorded, mut duplicates) = (0u64, 0u64);
    let mut pending: Vec<Event> = Vec::with_capacity(BATCH_EVENTS * 2);
    let mut social = social::Social::default();
    let period_end_ms = START_MS + i64::from(days) * DAY_MS;
    for day in 0..days {
        let weekday = crate::time::weekday(crate::time::local_day(
            START_MS + i64::from(day) * DAY_MS,
            0,
        ));
        social.age(day, START_MS + i64::from(day) * DAY_MS);
        for (i, u) in sim.iter().enumerate() {
            if day < u.signup_day || day >= u.churn_day {
                continue;
            }
            if day == u.signup_day {
                // a third of new users come through a friend's share
                let mut signup = Event::new(
                    u.name.as_str(),
                    "signup",
                    START_MS + i64::from(day) * DAY_MS + 1,
                )
                .with_id(format!("{}-signup", u.name));
                if rng.random_bool(0.33) {
                    signup.via = social.pick_share(&mut rng, i);
                }
                pending.push(signup);
            }
            let from = pending.len();
            if rng.random_bool(daily_visit_probability(u.persona, weekday)) {
                let sessions = rng.random_range(1..3);
                for s in 0..sessions {
                    let exposed = day >= experiment_start(days);
                    session(&mut rng, u, day, s, exposed, &mut pending);
                }
            }
            social::social_day(&mut rng, &mut social, u, i, day, from, &mut pending);
            // A refund or review a few days after a purchase near the end
            // would fall after the simulated period: the story ends there.
            if pending[from..].iter().any(|e| e.ts_ms >= period_end_ms) {
                let tail = pending.split_off(from);
                pending.extend(tail.into_iter().filter(|e| e.ts_ms < period_end_ms));
            }
            // At-least-once delivery upstream: re-send a few events.
            if rng.random_bool(0.01) {
                if let Some(e) = pending.last().cloned() {
                    pending.push(e);
                }
            }
            if pending.len() >= BATCH_EVENTS {
                let (r, d) = flush(&db, &mut pending)?;
                recorded += r;
                duplicates += d;
                bar.set_position(recorded + duplicates);
            }
        }
    }
    let (r, d) = flush(&db, &mut pending)?;
    recorded += r;
    duplicates += d;
    bar.finish_and_clear();
    let ingest_secs = started.elapsed().as_secs_f64();

    // Coupons issued and redeemed, points spent at checkout; what falls
    // due by the period's end settles.
    let end_ms = START_MS + i64::from(days) * DAY_MS;
    coupons::run(&db, &sim, end_ms)?;
    // Features defined on the loaded store, as a team adds them to theirs:
    // every user's computed from its events (kept on write from here on).
    features::define(&db, recorded)?;
    db.flush()?;
    // Settle the bulk load as an operator would (`stickydb compact`), so the
    // size shown is the store's, not a pile of level-0 files.
    super::human::working("compacting", || db.compact())?;

    let loyal_name = summary(&db, &sim, days, recorded, duplicates, ingest_secs)?;
    let from = db.local_day(START_MS);
    let to = db.local_day(end_ms - 1);
    let data = super::report::data(&db, from, to)?;
    std::fs::write(report_path, super::report::html(&data))?;
    outln!(
        "
report: {}",
        report_path.display()
    );
    let store = db.path().display();
    let (from, to) = (format_day(to - 29), format_day(to));
    outln!("\nnext, try:");
    if let Some(name) = &loyal_name {
        outln!("  stickydb --db {store} user {name}");
        outln!("  stickydb --db {store} features get {name} --json");
    }
    outln!("  stickydb --db {store} metrics active --from {from} --to {to}");
    outln!("  stickydb --db {store} retention --period week --from {from} --to {to}");
    outln!("  stickydb --db {store} stages");
    outln!("  stickydb --db {store} breakdown --by channel --from {from} --to {to} --top 5");
    outln!("  stickydb --db {store} segment \"tier:gold and not stage:churned\" --list 5");
    outln!("  stickydb --db {store} sharers --from {from} --to {to} --top 5");
    outln!("  stickydb --db {store} coupons stats --template WELCOME10");
    outln!("  stickydb --db {store} experiment {EXPERIMENT} --metric conversion:purchase:7d");
    outln!("  stickydb --db {store} report --from {from} --to {to} --out report.html");
    outln!("  (every query takes --format csv or --json)");
    Ok(())
}

fn flush(db: &Db, pending: &mut Vec<Event>) -> Result<(u64, u64), Error> {
    let outcomes = db.record_batch(pending)?;
    pending.clear();
    let dup = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Duplicate))
        .count() as u64;
    Ok((outcomes.len() as u64 - dup, dup))
}

/// The engagement metrics of the last simulated day, straight from the
/// metrics API.
fn engagement(db: &Db, days: u32, end_ms: i64) -> Result<(), Error> {
    let m = db.metrics();
    let last = db.local_day(end_ms - 1);
    let first = db.local_day(START_MS);
    let t = Instant::now();
    if let Some(r) = m.active(None, last, last, None)?.first() {
        outln!(
            "\nengagement on {} (answered in {:.2} ms):",
            format_day(last),
            t.elapsed().as_secs_f64() * 1e3
        );
        let (dau, wau, mau, st) = (r.dau, r.wau, r.mau, r.stickiness);
        outln!("  DAU {dau}  WAU {wau}  MAU {mau}  stickiness {st:.3}");
    }
    let window = (days.min(30) as i32).max(1);
    outln!(
        "  average stickiness over the last {window} days: {:.3}",
        m.average_stickiness(None, last - window + 1, last, None)?
    );
    let t = Instant::now();
    let q = crate::metrics::RetentionQuery::new(crate::metrics::Period::Day, first, last);
    let matrix = m.retention(&q, None)?;
    let (mut size, mut d1, mut d7, mut d30) = (0u64, [0u64; 2], [0u64; 2], [0u64; 2]);
    for c in &matrix.cohorts {
        for (n, acc) in [(1usize, &mut d1), (7, &mut d7), (30, &mut d30)] {
            if let Some(x) = c.counts.get(n) {
                acc[0] += x;
                acc[1] += c.size;
            }
        }
        size += c.size;
    }
    let pct = |a: [u64; 2]| {
        if a[1] == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", 100.0 * a[0] as f64 / a[1] as f64)
        }
    };
    outln!(
        "  retention of {} daily cohorts ({size} users): D1 {}  D7 {}  D30 {} (in {:.1} ms)",
        matrix.cohorts.len(),
        pct(d1),
        pct(d7),
        pct(d30),
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let stages = m.stages(last, None)?;
    let list: Vec<String> = stages.iter().map(|(k, v)| format!("{k} {v}")).collect();
    outln!(
        "  stages: {} (in {:.0} ms)",
        list.join(", "),
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let rfm = m.rfm(last, None)?;
    let list: Vec<String> = rfm
        .segments
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    outln!(
        "  RFM segments: {} (in {:.0} ms)",
        list.join(", "),
        t.elapsed().as_secs_f64() * 1e3
    );
    if let Some(row) = m.daily(last, last)?.first() {
        outln!(
            "  last day: {} orders, GMV {:.2}, AOV {}, {} new users, {} sessions",
            row.orders,
            row.gmv_minor as f64 / 100.0,
            row.aov_minor
                .map(|a| format!("{:.2}", a / 100.0))
                .unwrap_or_else(|| "-".into()),
            row.new_users,
            row.sessions
        );
    }
    Ok(())
}

fn summary(
    db: &Db,
    sim: &[SimUser],
    days: u32,
    recorded: u64,
    duplicates: u64,
    ingest_secs: f64,
) -> Result<Option<String>, Error> {
    let stats = db.stats()?;
    let end_ms = START_MS + i64::from(days) * DAY_MS;
    outln!("stickydb demo — store at {}", db.path().display());
    outln!(
        "simulated {} users over {days} days ({} .. {})",
        sim.len(),
        format_day(db.local_day(START_MS)),
        format_day(db.local_day(end_ms - 1)),
    );
    outln!(
        "ingested {recorded} events ({duplicates} duplicate deliveries ignored) in {ingest_secs:.1} s = {:.0} events/s",
        (recorded + duplicates) as f64 / ingest_secs.max(1e-9)
    );
    outln!("\nevents by kind:");
    for (kind, n) in &stats.events_by_kind {
        outln!("  {kind:<12} {n:>10}");
    }
    let disk: u64 = stats.column_families.values().map(|c| c.sst_bytes).sum();
    outln!(
        "\non disk after compaction: {:.1} MiB, {:.1} bytes per event (all column families)",
        disk as f64 / (1 << 20) as f64,
        disk as f64 / stats.events.max(1) as f64
    );

    engagement(db, days, end_ms)?;

    outln!("\nloyalty tiers (by growth value) at the end of the simulation:");
    for level in db.ledger_settings().tiers.levels {
        outln!(
            "  {:<10} {:>8} users",
            level.name,
            db.users_in_tier(&level.name)?.len()
        );
    }

    outln!("\nsegments at the end of the simulation:");
    for expr in [
        "tag:vip",
        "tag:churn_risk",
        "tag:vip and tag:exp:a",
        "not tag:vip and not tag:churn_risk",
        "tier:gold or tier:platinum",
    ] {
        let seg = Segment::parse(expr)?;
        outln!("  {expr:<40} {:>8} users", db.segment(&seg, end_ms)?.len());
    }

    features::summary(db, end_ms)?;
    dims::summary(db, end_ms)?;
    social::summary(db, days, end_ms)?;
    coupons::summary(db)?;
    super::experiments::demo_summary(db, EXPERIMENT, db.local_day(end_ms - 1))?;

    // The user shown as loyal is picked by the data, not by index: the most
    // active days in the last 30 among buyers still active in the last week.
    let last_day = db.local_day(end_ms - 1);
    let loyal = db
        .metrics()
        .users(last_day, None)?
        .into_iter()
        .filter(|m| m.purchase_count > 0 && m.last_seen_day.is_some_and(|d| d > last_day - 7))
        .max_by_key(|m| {
            (
                m.active_days_last30,
                m.purchase_days,
                std::cmp::Reverse(m.user_id),
            )
        });
    let loyal_name = match loyal {
        Some(m) => db.user_name(m.user_id)?,
        None => None,
    };
    if let Some(name) = &loyal_name {
        outln!("\nthe most loyal buyer (most active days of the last 30):");
        let at = super::human::as_of(db, Some(&format_day(last_day)), end_ms)?;
        super::inspect::show_user(db, name, 5, Sensitive::Exclude, &at, false)?;
    }

    let verify_started = Instant::now();
    let report = super::human::working("verifying", || db.verify())?;
    outln!(
        "\nverify: {} problem(s) in {:.1} s",
        report.problem_count,
        verify_started.elapsed().as_secs_f64()
    );
    Ok(loyal_name)
}
