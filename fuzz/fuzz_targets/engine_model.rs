//! Drives the engine and in-memory models with the same operations and
//! checks they agree: timelines, dedup, tags, erasure, and the loyalty
//! ledger against an independent model of docs/ledger.md (lots drawn
//! soonest-expiring first, expiry, holds, captures, releases and timeouts,
//! adjustments, reversals, replays and conflicts, refusals that write
//! nothing; `tests/model/ledger.rs`, shared with `tests/ledger_model.rs`);
//! identity merges (aliases, chains, refusals that write nothing, replays
//! by merge id, erasure of merged users); shares, visits through them and
//! group buys (whose attribution verify re-derives from the events);
//! experiment exposures (whose assignments verify re-derives); coupons
//! against the model of docs/coupons.md (`tests/model/coupons.rs`, shared
//! with `tests/coupons_model.rs`: issues with stock and per-user limits,
//! holds, redeems, releases, reversals, retries, expiry and hold timeouts
//! by the expiry runs, erasure); merges of users holding points and
//! coupons (lots, holds and transaction records move as the ledger model's
//! `merge_from` says, coupons as the coupon model's; a transaction id both
//! users used — `Borrow` makes them — refuses the merge, writing nothing);
//! earning rules and a first-order reward on the recorded events (the
//! ledger model's `event`, with late purchases taking the reward over and
//! merges re-deriving it); `advance` as the expiry clock
//! (a re-run writes nothing); and that `verify` (every aggregate, every
//! ledger invariant, every stage mark and due key) stays clean.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stickydb::ledger::ExpireReport;
use stickydb::{
    Db, Error, Event, IdentitySettings, MergeError, MergeOptions, Options, PointsOp, ProfileUpdate,
    PropValue, RecordOutcome, TagSource,
};

#[path = "../../tests/model/ledger.rs"]
mod model;
use model::{compare, db_res, Account};
#[path = "../../tests/model/coupons.rs"]
mod coupon_model;
use stickydb::{CouponOp, CouponTemplate};

const T0: i64 = 1_709_251_200_000;
/// `anon-*` are anonymous ids (merging needs no force when one side is).
const USERS: [&str; 4] = ["u0", "u1", "anon-2", "anon-3"];
/// Ledger times sit on a 5 ms grid, so operations land exactly on expiries
/// and deadlines (as in tests/ledger_model.rs).
const GRID_MS: i64 = 5;

/// The event `kind` describes: bits 0–2 the kind (view, purchase,
/// sign_in, an experiment exposure — a custom kind —, share, signup,
/// group_open, group_join), bits 3–4 a share or group number (for an
/// exposure: the experiment and the variant), bit 5 a `via`, bits 6–7 whose share or
/// group. Share and group ids embed the name that made them, so no two
/// users ever claim one (a claim by another user would be refused) — even
/// across merges, where a name resolves to the user it was merged into.
fn social_event(named: usize, kind: u8, ts: i64) -> Event {
    let names = [
        "view",
        "purchase",
        "sign_in",
        "exposure",
        "share",
        "signup",
        "group_open",
        "group_join",
    ];
    let n = (kind >> 3) & 3;
    let other = usize::from(kind >> 6) % USERS.len();
    let mut e = Event::new(USERS[named], names[usize::from(kind & 7)], ts);
    match kind & 7 {
        1 => e = e.with_amount(100 * i64::from(n + 1)),
        3 => {
            e = e
                .with_property("experiment", PropValue::Str(format!("x{}", n & 1)))
                .with_property("variant", PropValue::Str(format!("v{}", n >> 1)))
        }
        4 => e = e.with_share_id(format!("s{named}-{n}")),
        6 => {
            e = e.with_group_open(
                format!("g{named}-{n}"),
                2 + u32::from(n),
                T0 + 30 * 86_400_000,
            )
        }
        7 => e = e.with_group(format!("g{other}-{n}")),
        _ => {}
    }
    if kind & 0x20 != 0 {
        e = e.with_via(format!("s{other}-{n}"));
    }
    e
}

#[derive(Debug, Arbitrary)]
enum Op {
    Record {
        user: u8,
        kind: u8,
        dt_s: u16,
        id: Option<u8>,
    },
    Tag {
        user: u8,
        tag: u8,
    },
    Untag {
        user: u8,
        tag: u8,
    },
    Earn {
        user: u8,
        points: u8,
        ttl: Option<u8>,
        late: u8,
    },
    Redeem {
        user: u8,
        points: u8,
        late: u8,
    },
    Hold {
        user: u8,
        points: u8,
        timeout: u8,
    },
    Capture {
        user: u8,
        pick: u8,
        late: u8,
    },
    Release {
        user: u8,
        pick: u8,
    },
    Adjust {
        user: u8,
        points: i8,
    },
    Reverse {
        user: u8,
        pick: u8,
    },
    Retry {
        pick: u8,
    },
    Conflict {
        pick: u8,
    },
    Expire {
        ahead: u8,
    },
    Advance {
        by: u8,
    },
    Erase {
        user: u8,
    },
    Merge {
        from: u8,
        into: u8,
        force: bool,
    },
    /// Issues a coupon of template `template % 3`.
    CouponIssue {
        user: u8,
        template: u8,
        late: u8,
    },
    /// `what % 6`: hold, redeem, release, reverse, a redeem describing the
    /// order (kind and category from `order`'s low bits), or a retry of an
    /// earlier coupon call; of the user's coupon `pick`.
    CouponUse {
        user: u8,
        pick: u8,
        what: u8,
        order: u8,
    },
    /// A call under a transaction id another user used (points: an earn;
    /// coupons: an issue), so that merges can clash.
    Borrow {
        user: u8,
        pick: u8,
        coupon: bool,
    },
    Reopen,
}

/// The coupon templates: one expiring within the fuzzer's few grid steps,
/// with a stock and a per-user limit; one stackable, without expiry; one
/// for purchases of shoes only (eligibility).
fn coupon_templates() -> Vec<CouponTemplate> {
    vec![
        CouponTemplate::fixed("C1", 100)
            .valid_until_ms(T0 + 60 * GRID_MS)
            .stock(5)
            .per_user(2),
        CouponTemplate::percent("C2", 10, Some(30)).stackable(true),
        CouponTemplate::fixed("C3", 50)
            .for_kinds(["purchase"])
            .where_prop("category", "shoes"),
    ]
}

/// Mostly on time, sometimes a few grid steps back-dated.
fn late(l: u8) -> i64 {
    if l < 192 {
        0
    } else {
        i64::from(l % 8) * GRID_MS
    }
}

fn pick<T: Clone>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()].clone())
}

fn txns_of(m: &Account, holds_only: bool) -> Vec<String> {
    m.txns
        .iter()
        .filter(|(_, (op, _))| !holds_only || matches!(op, PointsOp::Hold { .. }))
        .map(|(t, _)| t.clone())
        .collect()
}

fuzz_target!(|ops: Vec<Op>| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(mut db) = Db::open(dir.path(), Options::default().create_if_missing(true)) else {
        return;
    };
    if db
        .set_identity_settings(IdentitySettings::anonymous(["anon-"]))
        .is_err()
    {
        return;
    }
    if define_features(&db).is_err() {
        return;
    }
    let settings = stickydb::LedgerSettings::new(earn_rules(), Default::default());
    if db.set_ledger_settings(settings).is_err() {
        return;
    }
    for t in coupon_templates() {
        if db.add_coupon_template(&t).is_err() {
            return;
        }
    }
    let mut coupons = coupon_model::Model::new(coupon_templates());
    // (user index, txn, at, op) of every coupon call that succeeded
    let mut coupon_done: Vec<(usize, String, i64, CouponOp)> = Vec::new();
    // keyed by the user a name resolves to: (ts, event id)
    let mut events: BTreeMap<String, Vec<(i64, Option<u8>)>> = BTreeMap::new();
    // each name's merge target (an index into USERS), once merged
    let mut alias: [Option<usize>; 4] = [None; 4];
    let mut merges = 0u32;
    let mut ids: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut tags: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut accounts: Vec<Account> = vec![Account::default(); USERS.len()];
    // (user, txn, at, op) of every call that succeeded, for retries
    let mut done: Vec<(usize, String, i64, PointsOp)> = Vec::new();
    let mut clock = T0;
    let mut n = 0u32;
    for op in ops.into_iter().take(200) {
        let mut call: Option<(usize, String, i64, PointsOp)> = None;
        let mut coupon_call: Option<(usize, String, i64, CouponOp)> = None;
        let mut fresh = || {
            n += 1;
            format!("t{n}")
        };
        // Whether a user exists is the store's (events and profiles create
        // users too); everything about points is the model's.
        let sync_exists = |db: &Db, accounts: &mut [Account], u: usize| {
            if db.user_id(USERS[u]).expect("read").is_some() {
                accounts[u].exists = true;
            }
        };
        // the user a name resolves to (chains are re-pointed at each merge)
        let canon = |u: usize| alias[u].unwrap_or(u);
        match op {
            Op::Record {
                user,
                kind,
                dt_s,
                id,
            } => {
                let named = usize::from(user) % USERS.len();
                let u = canon(named);
                let user = USERS[u].to_owned();
                let ts = T0 + i64::from(dt_s) * 1000;
                let e = social_event(named, kind, ts);
                let e = match id {
                    Some(id) => e.with_id(format!("e{id}")),
                    None => e,
                };
                let out = db.record(&e).expect("valid event");
                let dup = id.is_some_and(|id| !ids.insert((user.clone(), id)));
                assert_eq!(out == RecordOutcome::Duplicate, dup);
                if !dup {
                    events.entry(user).or_default().push((ts, id));
                    // (an event without an id is never a duplicate: the
                    // model names it uniquely)
                    n += 1;
                    let model_id = id.map_or_else(|| format!("#{n}"), |i| format!("e{i}"));
                    let kind = e.kind.as_str();
                    accounts[u].event(&earn_rules(), &model_id, kind, ts, e.amount_minor);
                }
                sync_exists(&db, &mut accounts, u);
            }
            Op::Tag { user, tag } => {
                let named = usize::from(user) % USERS.len();
                let u = canon(named);
                let up =
                    ProfileUpdate::new().tag(format!("t{}", tag % 4), TagSource::Rule, T0, None);
                db.update_profile(USERS[named], &up).expect("valid update");
                tags.insert((USERS[u].to_owned(), tag % 4));
                sync_exists(&db, &mut accounts, u);
            }
            Op::Untag { user, tag } => {
                let named = usize::from(user) % USERS.len();
                let u = canon(named);
                db.update_profile(
                    USERS[named],
                    &ProfileUpdate::new().untag(format!("t{}", tag % 4)),
                )
                .expect("valid update");
                tags.remove(&(USERS[u].to_owned(), tag % 4));
                sync_exists(&db, &mut accounts, u);
            }
            Op::Earn {
                user,
                points,
                ttl,
                late: l,
            } => {
                let at = clock - late(l);
                let op = PointsOp::Earn {
                    points: i64::from(points) + 1,
                    expires_at_ms: ttl.map(|t| at + (i64::from(t % 15) + 1) * GRID_MS),
                    reason: "r".into(),
                };
                call = Some((usize::from(user) % USERS.len(), fresh(), at, op));
            }
            Op::Redeem {
                user,
                points,
                late: l,
            } => {
                let op = PointsOp::redeem(i64::from(points) + 1, "");
                call = Some((
                    usize::from(user) % USERS.len(),
                    fresh(),
                    clock - late(l),
                    op,
                ));
            }
            Op::Hold {
                user,
                points,
                timeout,
            } => {
                let op = PointsOp::Hold {
                    points: i64::from(points % 150) + 1,
                    timeout_ms: (i64::from(timeout % 11) + 1) * GRID_MS,
                };
                call = Some((usize::from(user) % USERS.len(), fresh(), clock, op));
            }
            Op::Capture {
                user,
                pick: p,
                late: l,
            } => {
                let u = usize::from(user) % USERS.len();
                let holds = txns_of(&accounts[canon(u)], p % 3 != 0);
                let hold_txn = pick(&holds, p / 3).unwrap_or_else(|| "nope".into());
                call = Some((u, fresh(), clock - late(l), PointsOp::Capture { hold_txn }));
            }
            Op::Release { user, pick: p } => {
                let u = usize::from(user) % USERS.len();
                let holds = txns_of(&accounts[canon(u)], p % 3 != 0);
                let hold_txn = pick(&holds, p / 3).unwrap_or_else(|| "nope".into());
                call = Some((u, fresh(), clock, PointsOp::Release { hold_txn }));
            }
            Op::Adjust { user, points } => {
                let op = PointsOp::Adjust {
                    points: if points == 0 { 1 } else { i64::from(points) },
                    reason: "fix".into(),
                };
                call = Some((usize::from(user) % USERS.len(), fresh(), clock, op));
            }
            Op::Reverse { user, pick: p } => {
                let u = usize::from(user) % USERS.len();
                let txn =
                    pick(&txns_of(&accounts[canon(u)], false), p).unwrap_or_else(|| "nope".into());
                call = Some((u, fresh(), clock, PointsOp::Reverse { txn }));
            }
            Op::Retry { pick: p } => {
                if let Some((u, t, at, op)) = pick(&done, p) {
                    call = Some((u, t, at.max(clock), op));
                }
            }
            Op::Conflict { pick: p } => {
                if let Some((u, t, at, op)) = pick(&done, p) {
                    let other = match op {
                        PointsOp::Redeem { points, .. } => PointsOp::redeem(points + 1, ""),
                        _ => PointsOp::redeem(1, "different"),
                    };
                    call = Some((u, t, at, other));
                }
            }
            Op::Expire { ahead } => {
                let now = clock + i64::from(ahead % 14) * GRID_MS;
                let mut want = ExpireReport::default();
                for m in accounts.iter_mut() {
                    m.expire(now, &mut want);
                }
                // half the runs go through `advance`, the store's one clock
                // (stage changes and expiry notices besides the ledger's part)
                let through_advance = ahead & 0x80 != 0;
                let got = if through_advance {
                    db.advance(now).expect("advance").ledger
                } else {
                    db.expire_points(now).expect("expire")
                };
                coupons.advance(now);
                assert_eq!(
                    (got.lots_expired, got.points_expired, got.holds_timed_out),
                    (want.lots_expired, want.points_expired, want.holds_timed_out),
                    "expire at +{}",
                    now - T0
                );
                let before = db.raw_dump().expect("dump");
                if through_advance {
                    let again = db.advance(now).expect("advance again");
                    assert_eq!(again.ledger, ExpireReport::default());
                    assert_eq!((again.stage_changes, again.notices), (0, 0));
                } else {
                    assert_eq!(
                        db.expire_points(now).expect("expire again"),
                        ExpireReport::default()
                    );
                }
                assert_eq!(before, db.raw_dump().expect("dump"), "a re-run wrote");
            }
            Op::Advance { by } => clock += (i64::from(by % 4) + 1) * GRID_MS,
            Op::Erase { user } => {
                // named through an alias, the user it resolves to goes,
                // with every alias of it
                let named = usize::from(user) % USERS.len();
                let u = canon(named);
                let user = USERS[u].to_owned();
                db.erase_user(USERS[named]).expect("erase");
                coupons.erase(USERS[named]);
                coupon_done.retain(|(x, ..)| canon(*x) != u);
                events.remove(&user);
                ids.retain(|(x, _)| *x != user);
                tags.retain(|(x, _)| *x != user);
                for v in 0..USERS.len() {
                    if canon(v) == u {
                        accounts[v] = Account::default();
                        done.retain(|(x, ..)| *x != v);
                    }
                }
                for a in alias.iter_mut() {
                    if *a == Some(u) {
                        *a = None;
                    }
                }
            }
            Op::Merge { from, into, force } => {
                // never the same name (self-merges are tests/identity_rules.rs's):
                // the fuzzer's short inputs would spend most merges on them
                let f = usize::from(from) % USERS.len();
                let i = (f + 1 + usize::from(into) % (USERS.len() - 1)) % USERS.len();
                let (cf, ci) = (canon(f), canon(i));
                let clash =
                    accounts[ci].clashes(&accounts[cf]) || coupons.clashes(USERS[cf], USERS[ci]);
                merges += 1;
                let id = format!("m{merges}");
                let exists = |v: usize| db.user_id(USERS[v]).expect("read").is_some();
                let anonymous = |v: usize| USERS[v].starts_with("anon-");
                let before = db.raw_dump().expect("dump");
                let got = db.merge(
                    USERS[f],
                    USERS[i],
                    &id,
                    MergeOptions::default().force(force),
                );
                let refused = match &got {
                    Err(Error::Merge(MergeError::SelfMerge { .. })) => f == i,
                    Err(Error::UnknownUser { user }) => {
                        (user == USERS[f] && !exists(f)) || (user == USERS[i] && !exists(i))
                    }
                    Err(Error::Merge(MergeError::AlreadyMerged { .. })) => alias[f].is_some(),
                    Err(Error::Merge(MergeError::Cycle { .. })) => f != i && cf == ci,
                    Err(Error::Merge(MergeError::BothIdentified { .. })) => {
                        !force && !anonymous(f) && !anonymous(ci)
                    }
                    Err(Error::Merge(MergeError::TxnClash { .. })) => clash,
                    Err(e) => panic!("merge {} into {}: {e}", USERS[f], USERS[i]),
                    Ok(_) => false,
                };
                if let Ok(out) = &got {
                    // every condition for a refusal was false
                    assert!(f != i && alias[f].is_none() && cf != ci && exists(f) && exists(i));
                    assert!((force || anonymous(f) || anonymous(ci)) && !clash);
                    assert_eq!(out.into, USERS[ci]);
                    let (from_name, into_name) = (USERS[cf].to_owned(), USERS[ci].to_owned());
                    let mut moved = 0u64;
                    for (ts, eid) in events.remove(&from_name).unwrap_or_default() {
                        if eid.is_some_and(|x| !ids.insert((into_name.clone(), x))) {
                            continue;
                        }
                        moved += 1;
                        events.entry(into_name.clone()).or_default().push((ts, eid));
                    }
                    assert_eq!(out.events_moved, moved);
                    ids.retain(|(x, _)| *x != from_name);
                    let moved_tags: Vec<u8> = tags
                        .iter()
                        .filter(|(x, _)| *x == from_name)
                        .map(|(_, t)| *t)
                        .collect();
                    tags.retain(|(x, _)| *x != from_name);
                    for t in moved_tags {
                        tags.insert((into_name.clone(), t));
                    }
                    let leaving = std::mem::take(&mut accounts[cf]);
                    let reason = format!("merge {id}: from {}", USERS[f]);
                    accounts[ci].merge_from(&leaving, &earn_rules(), &reason);
                    // (a merge into a name nobody used yet creates it: the
                    // identify-first rule, tests/identify_first.rs)
                    sync_exists(&db, &mut accounts, ci);
                    for a in alias.iter_mut() {
                        if *a == Some(cf) {
                            *a = Some(ci);
                        }
                    }
                    alias[cf] = Some(ci);
                    coupons.alias(USERS[cf], USERS[ci]);
                    // the same merge again is answered, writing nothing
                    let again_before = db.raw_dump().expect("dump");
                    let again = db
                        .merge(
                            USERS[f],
                            USERS[i],
                            &id,
                            MergeOptions::default().force(force),
                        )
                        .expect("replay");
                    assert!(again.replayed && again.events_moved == out.events_moved);
                    assert_eq!(again_before, db.raw_dump().expect("dump"), "a replay wrote");
                } else {
                    assert!(refused, "unexpected refusal: {got:?}");
                    assert_eq!(before, db.raw_dump().expect("dump"), "a refusal wrote");
                }
            }
            Op::CouponIssue {
                user,
                template,
                late: l,
            } => {
                let t = ["C1", "C2", "C3"][usize::from(template % 3)];
                let op = CouponOp::Issue { template: t.into() };
                coupon_call = Some((
                    usize::from(user) % USERS.len(),
                    fresh(),
                    clock - late(l),
                    op,
                ));
            }
            Op::CouponUse {
                user,
                pick: p,
                what,
                order,
            } => {
                let u = usize::from(user) % USERS.len();
                let coupon = coupon_model::pick_coupon(&coupons, USERS[u], usize::from(p));
                let op = match what % 6 {
                    0 => Some(CouponOp::Hold {
                        coupon,
                        timeout_ms: (i64::from(order % 11) + 1) * GRID_MS,
                    }),
                    1 => Some(CouponOp::Redeem {
                        coupon,
                        order_minor: i64::from(order) * 3,
                    }),
                    2 => Some(CouponOp::Release { coupon }),
                    3 => Some(CouponOp::Reverse { coupon }),
                    4 => Some(CouponOp::RedeemOrder {
                        coupon,
                        order_minor: i64::from(order >> 2) * 3,
                        kind: ["purchase", "view"][usize::from(order & 1)].into(),
                        properties: [(
                            "category".to_owned(),
                            ["shoes", "bags"][usize::from(order >> 1 & 1)].to_owned(),
                        )]
                        .into_iter()
                        .collect(),
                    }),
                    // a retry, stamped later: a replay
                    _ => None,
                };
                coupon_call = match op {
                    Some(op) => Some((u, fresh(), clock, op)),
                    None => pick(&coupon_done, p).map(|(u, t, at, op)| (u, t, at.max(clock), op)),
                };
            }
            Op::Borrow {
                user,
                pick: p,
                coupon,
            } => {
                let u = usize::from(user) % USERS.len();
                if coupon {
                    let theirs: Vec<_> = coupon_done
                        .iter()
                        .filter(|d| canon(d.0) != canon(u))
                        .collect();
                    if let Some((_, t, _, _)) = pick(&theirs, p) {
                        let op = CouponOp::Issue {
                            template: "C2".into(),
                        };
                        coupon_call = Some((u, t.clone(), clock, op));
                    }
                } else {
                    let theirs: Vec<_> = done.iter().filter(|d| canon(d.0) != canon(u)).collect();
                    if let Some((_, t, _, _)) = pick(&theirs, p) {
                        let op = PointsOp::Earn {
                            points: 5,
                            expires_at_ms: None,
                            reason: "borrowed id".into(),
                        };
                        call = Some((u, t.clone(), clock, op));
                    }
                }
            }
            Op::Reopen => {
                drop(db);
                db = Db::open(dir.path(), Options::default().create_if_missing(true))
                    .expect("reopen");
            }
        }
        if let Some((named, txn, at, op)) = call {
            // through an alias, the account of the user it resolves to
            let u = alias[named].unwrap_or(named);
            let before = db.raw_dump().expect("dump");
            let want = accounts[u].apply(&txn, at, &op);
            let got = db_res(db.points(USERS[named], &txn, at, &op));
            assert_eq!(got, want, "{} {txn} at +{} {op:?}", USERS[u], at - T0);
            match &got {
                Ok(o) if !o.replayed => done.push((u, txn, at, op)),
                // refused or replayed: not one byte changed
                _ => assert_eq!(
                    before,
                    db.raw_dump().expect("dump"),
                    "{txn} changed the store"
                ),
            }
        }
        if let Some((named, txn, at, op)) = coupon_call {
            // (a user the store knows through events or profiles holds no
            // coupon yet: refused as an unknown coupon, not an unknown user)
            let resolved = USERS[alias[named].unwrap_or(named)];
            if db.user_id(USERS[named]).expect("read").is_some() {
                coupons.users.entry(resolved.to_owned()).or_default();
            }
            let before = db.raw_dump().expect("dump");
            coupons.here.clear();
            let want = coupons.apply(USERS[named], &txn, at, &op);
            coupons.here.clear();
            let got = db.coupon(USERS[named], &txn, at, &op);
            let got = got
                .as_ref()
                .map(coupon_model::Out::from)
                .map_err(coupon_model::err);
            assert_eq!(got, want, "{} {txn} at +{} {op:?}", USERS[named], at - T0);
            match &got {
                Ok(o) if !o.replayed => coupon_done.push((named, txn, at, op)),
                _ => assert_eq!(
                    before,
                    db.raw_dump().expect("dump"),
                    "{txn} changed the store"
                ),
            }
            sync_exists(&db, &mut accounts, alias[named].unwrap_or(named));
        }
        compare(
            &db,
            (0..USERS.len()).map(|v| (USERS[v], &accounts[alias[v].unwrap_or(v)])),
        );
        coupon_model::same(&db, &coupons, &USERS);
    }
    for (user, evs) in &events {
        let mut ts: Vec<i64> = evs.iter().map(|(t, _)| *t).collect();
        ts.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<i64> = db
            .newest(user, 10_000)
            .expect("timeline")
            .iter()
            .map(|e| e.event.ts_ms)
            .collect();
        assert_eq!(got, ts);
    }
    for t in 0..4u8 {
        let want: BTreeSet<u32> = tags
            .iter()
            .filter(|(_, x)| *x == t)
            .map(|(u, _)| db.user_id(u).expect("read").expect("exists"))
            .collect();
        let got: BTreeSet<u32> = db
            .users_with_tag(&format!("t{t}"), None)
            .expect("index")
            .iter()
            .collect();
        assert_eq!(got, want);
    }
    // rule tags in the feed: per user and tag, entered and left alternate
    let mut held: BTreeMap<(u32, String), bool> = BTreeMap::new();
    for e in db.feed(0, 100_000).expect("feed") {
        if let stickydb::Change::Tag { tag, state, .. } = e.record.change {
            let entered = state == stickydb::feed::TagState::Entered;
            let was = held
                .insert((e.record.user_id, tag), entered)
                .unwrap_or(false);
            assert_ne!(was, entered, "a rule tag {state:?} twice in a row");
        }
    }
    // (verify re-derives every feature state from the events)
    assert!(db.verify().expect("verify").is_clean());
});

/// Earning rules over the events the ops write: a point per 10 of a
/// purchase, and a first-order reward (held against the ledger model's
/// `event` and `first_order`, with late purchases taking it over, manual
/// points operations drawing on its lots, merges re-deriving it).
fn earn_rules() -> Vec<stickydb::ledger::EarnRule> {
    use stickydb::ledger::{EarnRule, RulePoints, FIRST_ORDER_KIND};
    let rule = |kind: &str, points| EarnRule {
        kind: kind.into(),
        points,
        daily_cap_points: None,
        expires_after_days: None,
    };
    vec![
        rule(
            "purchase",
            RulePoints::PerAmount {
                points: 1,
                per_minor: 10,
            },
        ),
        rule(FIRST_ORDER_KIND, RulePoints::Fixed(25)),
    ]
}

/// Features and rule tags over the events the ops write (docs/features.md):
/// a sliding window, a calendar window, a lifetime and a last-N one.
fn define_features(db: &Db) -> Result<u64, Error> {
    use stickydb::features::{Definition, Op as F, TagRule, Window};
    let hour = Window::Sliding { ms: 3_600_000 };
    let defs = [
        Definition::new("views_1h", ["view"], F::Count, hour),
        Definition::new("spend_day", ["purchase"], F::Sum, Window::Day).with_field("amount"),
        Definition::new(
            "last_seen",
            ["view", "purchase", "sign_in"],
            F::LastAt,
            Window::Lifetime,
        ),
        Definition::new(
            "views_last3",
            ["view"],
            F::Count,
            Window::LastEvents { n: 3 },
        ),
        Definition::new("variants", ["exposure"], F::TopK, hour)
            .with_key("variant")
            .with_k(2),
    ];
    let rules = [
        TagRule::new("busy", "views_1h >= 2"),
        TagRule::new("spender", "spend_day >= 200 and not views_1h > 3"),
    ];
    db.define_features(&defs, &rules)
}
