//! Rule tags in the change feed (docs/features.md, "The feed"): over a
//! random on-time stream of a few users' events with `advance` at random
//! instants between them (so tags change both on writes and as windows
//! slide with no event), each user's `tag` entries for each tag alternate
//! entered/left, name exactly the instants at which a brute-force model
//! says the tag began or stopped holding — each once — and fold to the
//! model's tags at the end; `advance` entries are never retroactive, and
//! verify is clean throughout.

mod common;
#[path = "model/features.rs"]
mod fmodel;
use std::collections::BTreeMap;

use common::*;
use fmodel::*;
use proptest::prelude::*;
use stickydb::features::{Definition, FeatureValue, Window};
use stickydb::{Change, Db, Options, StageCause};

const USERS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Record(usize, Ev),
    Advance,
}

/// Definitions, rules `(tag, condition, keyed)` and `(gap, step)`s.
type Case = (Vec<Definition>, Vec<(String, Cond, bool)>, Vec<(i64, Step)>);

fn setup() -> impl Strategy<Value = Case> {
    (1usize..4)
        .prop_flat_map(|n| (0..n).map(definition).collect::<Vec<_>>())
        .prop_filter("a rule needs a number", |defs| {
            defs.iter().any(|d| d.op.is_numeric())
        })
        .prop_flat_map(|defs| {
            let numeric: Vec<usize> = (0..defs.len())
                .filter(|&i| defs[i].op.is_numeric() && !defs[i].is_keyed())
                .collect();
            let keyed: Vec<usize> = (0..defs.len())
                .filter(|&i| defs[i].op.is_numeric() && defs[i].is_keyed())
                .collect();
            let plain = match numeric.is_empty() {
                true => Just(Vec::new()).boxed(),
                false => proptest::collection::vec(cond(numeric), 1..3).boxed(),
            };
            let keyed_rules = match keyed.is_empty() {
                true => Just(Vec::new()).boxed(),
                false => proptest::collection::vec(cond(keyed), 0..2).boxed(),
            };
            let step = prop_oneof![
                5 => (0..USERS, event()).prop_map(|(u, e)| Step::Record(u, e)),
                1 => Just(Step::Advance),
            ];
            // gaps of up to 10 hours between steps
            let steps = proptest::collection::vec((0i64..36_000_000, step), 1..40);
            (Just(defs), plain, keyed_rules, steps)
        })
        .prop_map(|(defs, plain, keyed, steps)| {
            let mut rules: Vec<(String, Cond, bool)> = plain
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("rule{i}"), c, false))
                .collect();
            rules.extend(
                keyed
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (format!("k{i}:{{key}}"), c, true)),
            );
            (defs, rules, steps)
        })
}

/// Every instant at which a feature of `evs` may change: the events, the
/// sliding windows' edges, local midnights.
fn candidates(defs: &[Definition], evs: &[Ev], end: i64) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for e in evs {
        out.push(e.ts);
        for d in defs {
            if let Window::Sliding { ms } = d.window {
                out.push(e.ts + ms);
            }
        }
    }
    let day_ms = 86_400_000;
    let offset_ms = i64::from(OFFSET_MIN) * 60_000;
    let first = evs.iter().map(|e| e.ts).min().unwrap_or(end);
    let mut midnight = (first + offset_ms).div_euclid(day_ms) * day_ms - offset_ms;
    while midnight <= end {
        out.push(midnight);
        midnight += day_ms;
    }
    out.retain(|t| *t <= end);
    out.sort_unstable();
    out.dedup();
    out
}

/// The model's tags of a user with events `evs` at `t`.
fn model_tags(defs: &[Definition], rules: &Rules, evs: &[Ev], t: i64) -> Vec<String> {
    let upto: Vec<Ev> = evs.iter().filter(|e| e.ts <= t).cloned().collect();
    let values: Vec<FeatureValue> = defs.iter().map(|d| feature(d, &upto, t)).collect();
    tags(rules, &values)
}

/// The tags `user` holds by the feed's `tag` entries.
fn held_in(feed: &[stickydb::FeedEntry], user: &str) -> Vec<String> {
    let mut held: BTreeMap<String, bool> = BTreeMap::new();
    for entry in feed.iter().filter(|e| e.user.as_deref() == Some(user)) {
        if let Change::Tag { tag, state, .. } = &entry.record.change {
            held.insert(tag.clone(), *state == stickydb::feed::TagState::Entered);
        }
    }
    held.into_iter()
        .filter(|(_, h)| *h)
        .map(|(t, _)| t)
        .collect()
}

fn run(defs: Vec<Definition>, rules: Vec<(String, Cond, bool)>, steps: Vec<(i64, Step)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().utc_offset_minutes(OFFSET_MIN);
    let db = Db::create(dir.path(), options).expect("create");
    let (tag_rules, model_rules) = rule_sets(&rules);
    db.define_features(&defs, &tag_rules).expect("define");
    let mut events: BTreeMap<String, Vec<Ev>> = BTreeMap::new();
    let mut now = BASE;
    for (gap, step) in steps {
        now += gap + 1;
        match step {
            Step::Record(u, mut e) => {
                e.ts = now;
                e.id = None;
                let user = format!("u{u}");
                db.record(&to_event(&user, &e)).expect("record");
                events.entry(user).or_default().push(e);
            }
            Step::Advance => {
                db.advance(now).expect("advance");
                // (everything up to `now` is published once advance returns)
                let feed = db.feed(0, 100_000).expect("feed");
                for (user, evs) in &events {
                    let want = model_tags(&defs, &model_rules, evs, now);
                    assert_eq!(
                        held_in(&feed, user),
                        want,
                        "{user}: tags after advance({now})"
                    );
                }
            }
        }
    }
    let end = now + 40 * 86_400_000;
    db.advance(end).expect("final advance");
    assert_clean(&db);
    let feed = db.feed(0, 100_000).expect("feed");
    for (user, evs) in &events {
        let first = evs[0].ts;
        let tags_at = |t: i64| model_tags(&defs, &model_rules, evs, t);
        // the model's transitions from the first event on
        let mut want: Vec<(String, bool, i64)> = Vec::new();
        // (nothing is held before the first event)
        let mut before: Vec<String> = Vec::new();
        for c in candidates(&defs, evs, end) {
            if c < first {
                continue;
            }
            let now_tags = tags_at(c);
            for t in before.iter().filter(|t| !now_tags.contains(t)) {
                want.push((t.clone(), false, c));
            }
            for t in now_tags.iter().filter(|t| !before.contains(t)) {
                want.push((t.clone(), true, c));
            }
            before = now_tags;
        }
        want.sort();
        let mut got: Vec<(String, bool, i64)> = Vec::new();
        let mut held: BTreeMap<String, bool> = BTreeMap::new();
        for entry in feed
            .iter()
            .filter(|e| e.user.as_deref() == Some(user.as_str()))
        {
            if let Change::Tag {
                tag,
                state,
                at_ms,
                cause,
            } = &entry.record.change
            {
                let entered = *state == stickydb::feed::TagState::Entered;
                let was = held.insert(tag.clone(), entered).unwrap_or(false);
                assert_ne!(
                    was, entered,
                    "{user} {tag}: {state:?} twice in a row at {at_ms}"
                );
                if *cause == StageCause::Time {
                    assert!(
                        !entry.record.retroactive,
                        "{user}: an advance entry is retroactive"
                    );
                }
                if *at_ms >= first {
                    got.push((tag.clone(), entered, *at_ms));
                }
            }
        }
        got.sort();
        assert_eq!(got, want, "{user}: the feed's tag transitions");
        let final_held: Vec<String> = held
            .into_iter()
            .filter(|(_, h)| *h)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            final_held,
            tags_at(end),
            "{user}: tags after the last advance"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn feed_tag_entries_equal_the_models_transitions((defs, rules, steps) in setup()) {
        run(defs, rules, steps);
    }
}
