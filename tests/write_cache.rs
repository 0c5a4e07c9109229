//! The per-stripe user-id cache is never a source of truth: a store written
//! with it and one written with it off (`user_cache_entries: 0`) give the
//! same answers after the same writes — late events into old day blocks, events across
//! block edges, erasures and re-creations, profile and points writes that
//! leave the state alone, and an aggregate rebuild in the middle.

mod common;
use common::*;
use stickydb::{Db, Event, Options, PointsOp, ProfileUpdate, TagSource};

fn open(dir: &std::path::Path, cache_users: usize) -> Db {
    Db::open(
        dir,
        Options::default()
            .create_if_missing(true)
            .user_cache_entries(cache_users),
    )
    .unwrap()
}

/// splitmix64: the same sequence for both stores.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn drive(db: &Db) {
    let kinds = ["view", "purchase", "sign_in", "add_to_cart"];
    for i in 0..1_500u64 {
        let r = mix(i);
        let user = format!("u{}", r % 7);
        match (r >> 8) % 20 {
            0 => {
                db.erase_user(&user).unwrap();
            }
            1 => db
                .update_profile(
                    &user,
                    &ProfileUpdate::new().tag("t", TagSource::Rule, T0, None),
                )
                .unwrap(),
            2 => {
                db.points(
                    &user,
                    &format!("p{i}"),
                    T0 + i as i64,
                    &PointsOp::earn(5, ""),
                )
                .unwrap();
            }
            3 if i == 700 => {
                db.rebuild_aggregates().unwrap();
            }
            _ => {
                // mostly moving forward over 200 days (three 64-day blocks),
                // one in five late by up to 90 days
                let now = (i as i64 * 200) / 1_500;
                let late = if (r >> 16) % 5 == 0 {
                    ((r >> 20) % 90) as i64
                } else {
                    0
                };
                let day = (now - late).max(0);
                let batch: Vec<Event> = (0..1 + (r >> 24) % 4)
                    .map(|j| {
                        let kind = kinds[((r >> 28) + j) as usize % kinds.len()];
                        let mut e = Event::new(user.as_str(), kind, T0 + day * DAY + j as i64)
                            .with_id(format!("e{}", (r >> 32) % 900 + j))
                            .with_session(format!("s{}", (r >> 40) % 30));
                        if kind == "purchase" {
                            e = e.with_amount(100 + j as i64);
                        }
                        e
                    })
                    .collect();
                db.record_batch(&batch).unwrap();
            }
        }
    }
}

#[test]
fn cached_and_uncached_writes_give_the_same_store() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cached = open(a.path(), 1 << 16);
    let uncached = open(b.path(), 0);
    drive(&cached);
    drive(&uncached);
    assert_clean(&cached);
    assert_clean(&uncached);
    let day = cached.local_day(T0);
    assert_eq!(
        metric_snapshot(&cached, day, day + 210),
        metric_snapshot(&uncached, day, day + 210)
    );
    // the cache never outlives its process: a reopened store agrees too
    drop(cached);
    let reopened = open(a.path(), 1 << 16);
    assert_eq!(
        metric_snapshot(&reopened, day, day + 210),
        metric_snapshot(&uncached, day, day + 210)
    );
}
