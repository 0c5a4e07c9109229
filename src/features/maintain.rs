//! Keeping the states right beyond the write path: the backfill, the
//! rule-tag due index and `advance`, segments' rule-tag holders, a
//! rebuild's clear, `verify`, erasure.

use super::compat::{decode_state, encode_state};
use super::publish;
use super::state::UserState;
use super::writes::settle;
use super::{load_state, read, recompute_keeping, FeatureSet, FeatureValue};
use crate::error::Result;
use crate::keys;
use crate::kinds::KindRegistry;
use crate::store::{Batch, Cf, Reader, Store};

/// Users of a backfill step `(id, name)`, and the last id looked at.
pub(crate) type StaleStep = (Vec<(u32, String)>, Option<u32>);

/// A step of the backfill: of the users `all` after `after` (ids, ascending), at
/// most `step`, those whose state is missing or of another version, with
/// their names; and the last id looked at (`None`: none was left).
pub(crate) fn stale_users(
    store: &Store,
    all: &roaring::RoaringBitmap,
    set: &FeatureSet,
    after: Option<u32>,
    step: usize,
) -> Result<StaleStep> {
    let from = after.map_or(0, |a| a.saturating_add(1));
    if after == Some(u32::MAX) {
        return Ok((Vec::new(), None));
    }
    let ids: std::collections::BTreeSet<u32> = all.range(from..).take(step).collect();
    let last = ids.last().copied();
    let mut stale = std::collections::BTreeSet::new();
    for id in &ids {
        let state = load_state(store, *id)?;
        // (no definition left: a state is stale, its tags to end)
        let is_stale = match set.is_empty() {
            true => state.is_some(),
            false => state.is_none_or(|s| s.version != set.version()),
        };
        if is_stale {
            stale.insert(*id);
        }
    }
    let names = crate::users::names_of(store, &stale)?;
    let mut out: Vec<(u32, String)> = names.into_iter().collect();
    out.sort_unstable();
    Ok((out, last))
}

/// Recomputes the state of each of `users` still missing or of another
/// version into `batch` (the caller holds their stripes); returns how many.
pub(crate) fn recompute_into(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    users: &[(u32, String)],
    clock_ms: Option<i64>,
    batch: &mut Batch,
) -> Result<u64> {
    let mut n = 0;
    for (user_id, _) in users {
        let old = load_state(store, *user_id)?;
        if set.is_empty() {
            // the tags it held end, and the state goes
            if let Some(mut s) = old {
                let cause = crate::feed::StageCause::Definitions;
                publish::end(&mut s, *user_id, cause, batch)?;
                batch.delete(Cf::Features, keys::user(*user_id));
                n += 1;
            }
            continue;
        }
        if old.as_ref().is_some_and(|s| s.version == set.version()) {
            continue;
        }
        // what was published under the older definitions changes at the base
        let tags = old.and_then(|o| o.tags);
        let mut state = recompute_keeping(store, kinds, (set, offset), *user_id, tags)?;
        let walk = publish::Walk {
            set,
            offset,
            user_id: *user_id,
            cause: crate::feed::StageCause::Definitions,
        };
        // (a user none of whose events a definition reads, with no clock,
        // has no instant to publish at: its tags are published by its next
        // write or an advance)
        if state.anchor_ms > i64::MIN || clock_ms.is_some() || state.tags.is_some() {
            settle(&walk, &mut state, &[], (clock_ms, i64::MAX), batch)?;
        }
        state.trim(set, offset);
        batch.put(
            Cf::Features,
            keys::user(*user_id),
            encode_state(&mut state)?,
        );
        n += 1;
    }
    Ok(n)
}

/// The users holding rule tag `tag` at `t`, each evaluated at `t` (from
/// its state, or its events): exact at any instant, a read per user. Empty
/// when no rule can give the tag.
pub(crate) fn holders(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    tag: &str,
    t: i64,
) -> Result<roaring::RoaringBitmap> {
    let mut out = roaring::RoaringBitmap::new();
    if !set.rules().iter().any(|r| r.could_give(tag)) {
        return Ok(out);
    }
    for user_id in &crate::users::all_users(reader)? {
        let (_, tags) = read(reader, kinds, set, offset, user_id, t)?;
        if tags.binary_search_by(|x| x.as_str().cmp(tag)).is_ok() {
            out.insert(user_id);
        }
    }
    Ok(out)
}

/// The users of `universe` whose feature `name` (with `key`: its value
/// for that key, a keyed feature's or a `top_k` count) is a number that
/// passes `test` at `t`, each evaluated at `t` like [`holders`]. A user
/// without a number (no value, no such key) passes nothing. An unknown
/// name is an error naming the defined ones.
pub(crate) fn matching(
    reader: &impl Reader,
    kinds: &KindRegistry,
    (set, offset): (&FeatureSet, i32),
    universe: &roaring::RoaringBitmap,
    (name, key): (&str, Option<&str>),
    t: i64,
    test: &dyn Fn(f64) -> bool,
) -> Result<roaring::RoaringBitmap> {
    let Some(def) = set.defs().iter().position(|d| d.name == name) else {
        let names: Vec<&str> = set.defs().iter().map(|d| d.name.as_str()).collect();
        let reason = format!("no feature {name:?} is defined ({})", names.join(", "));
        let p = crate::error::Problem::Invalid { reason };
        return Err(crate::error::InputError::new("segment.feature", p).into());
    };
    let mut out = roaring::RoaringBitmap::new();
    for user_id in universe {
        let (values, _) = read(reader, kinds, set, offset, user_id, t)?;
        let value = values.get(def).map(|(v, _)| v);
        let number = match (value, key) {
            (Some(FeatureValue::Keyed(map)), Some(k)) => map.get(k).and_then(FeatureValue::as_f64),
            (Some(FeatureValue::Ranked(ranked)), Some(k)) => {
                ranked.iter().find(|(x, _)| x == k).map(|(_, n)| *n as f64)
            }
            (Some(v), None) => v.as_f64(),
            _ => None,
        };
        if number.is_some_and(test) {
            out.insert(user_id);
        }
    }
    Ok(out)
}

/// A page of the rule-tag due index up to `now_ms`: `(due_ms, user)`
/// after the key `after`, at most `limit`.
pub(crate) fn due_page(
    store: &Store,
    now_ms: i64,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, i64, u32)>> {
    let from = keys::resume_at(&[crate::keys::feed::TAG_DUE], after);
    let until = crate::keys::feed::tag_due_until(now_ms);
    let mut out = Vec::new();
    for item in store.range(Cf::Feed, &from, Some(until))? {
        let (k, _) = item?;
        let (due, user) =
            crate::keys::feed::parse_tag_due(&k).ok_or_else(|| crate::error::CorruptionError {
                cf: Cf::Feed.name(),
                what: "key",
                key: k.to_vec(),
                reason: "rule-tag due key does not decode".into(),
            })?;
        out.push((k.to_vec(), due, user));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Walks the rule tags of `user_id` (met in the due index at `due_ms`) to
/// `now_ms` into `batch`, cause `time` (the caller holds its stripe).
pub(crate) fn settle_due(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    (user_id, due_ms): (u32, i64),
    now_ms: i64,
    batch: &mut Batch,
) -> Result<()> {
    let offset = store.settings().utc_offset_minutes;
    let mut state = match load_state(store, user_id)? {
        Some(s) if s.tags.as_ref().is_some_and(|t| t.due_ms == Some(due_ms)) => s,
        // a key the user's state does not own (left by a crash of
        // nothing: keys and states change in one write) is dropped
        _ => {
            batch.delete(Cf::Feed, crate::keys::feed::tag_due(due_ms, user_id));
            return Ok(());
        }
    };
    // (time settles what passed; what the definitions changed is theirs)
    let mut cause = crate::feed::StageCause::Time;
    if state.version != set.version() || set.rules().is_empty() {
        cause = crate::feed::StageCause::Definitions;
    }
    if state.version != set.version() {
        let tags = state.tags.take();
        state = recompute_keeping(store, kinds, (set, offset), user_id, tags)?;
    }
    let walk = publish::Walk {
        set,
        offset,
        user_id,
        cause,
    };
    if set.rules().is_empty() {
        walk.end(&mut state, batch)?;
    } else {
        walk.advance(&mut state, now_ms, batch)?;
    }
    state.trim(set, offset);
    batch.put(Cf::Features, keys::user(user_id), encode_state(&mut state)?);
    Ok(())
}

/// Marks every user's state stale (a rebuild): each is recomputed from the
/// events when next read or written, or by a backfill, keeping what the
/// feed was told of its rule tags. A state that does not decode goes.
pub(crate) fn clear(store: &Store) -> Result<()> {
    /// States rewritten per write batch.
    const CLEAR_BATCH_KEYS: usize = 10_000;
    let mut batch = Batch::new();
    for item in store.range(Cf::Features, &[], None)? {
        let (k, v) = item?;
        match decode_state(&k, &v) {
            // (no set has version 0 once a definition was made)
            Ok(mut s) => {
                s.version = 0;
                s.slots.clear();
                batch.put(Cf::Features, &k, encode_state(&mut s)?);
            }
            Err(_) => batch.delete(Cf::Features, &k),
        }
        if batch.len() >= CLEAR_BATCH_KEYS {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)
}

/// Checks every stored state against a recomputation from the events:
/// a state of the definitions in force must answer, at its anchor, what
/// the events answer (states of older definitions are recomputed when
/// read, and only counted). Returns the problems found and the states read.
pub(crate) fn check(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    users: &dyn Fn(u32) -> bool,
) -> Result<(Vec<String>, u64)> {
    let offset = store.settings().utc_offset_minutes;
    let mut problems = Vec::new();
    let mut read = 0;
    for item in store.range(Cf::Features, &[], None)? {
        let (k, v) = item?;
        read += 1;
        let user_id = match keys::user_of(Cf::Features.name(), &k) {
            Ok(id) if k.len() == keys::USER_BYTES => id,
            _ => {
                problems.push(format!("features: malformed key {k:?}"));
                continue;
            }
        };
        if !users(user_id) {
            problems.push(format!(
                "features: a state of user id {user_id}, which does not exist"
            ));
            continue;
        }
        let stored: UserState = match decode_state(&k, &v) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        if stored.version != set.version() {
            continue;
        }
        let at = stored.anchor_ms;
        let fresh = recompute_keeping(store, kinds, (set, offset), user_id, None)?;
        if fresh.anchor_ms != at {
            problems.push(format!(
                "features of user id {user_id}: state as of {at}, newest event at {}",
                fresh.anchor_ms
            ));
            continue;
        }
        let (got, want) = (
            stored.values(set, at, offset),
            fresh.values(set, at, offset),
        );
        let walk = publish::Walk {
            set,
            offset,
            user_id,
            cause: crate::feed::StageCause::Time,
        };
        if let Some(wrong) = walk.check_mark(&stored) {
            problems.push(format!("rule tags of user id {user_id}: {wrong}"));
        }
        for (d, (g, w)) in set.defs().iter().zip(got.iter().zip(&want)) {
            // (a cut value counts what was kept; another order of arrival
            // keeps other keys)
            if !g.1 && !w.1 && !close(&g.0, &w.0) {
                problems.push(format!(
                    "feature {} of user id {user_id} at {at}: stored {:?}, the events give {:?}",
                    d.name, g.0, w.0
                ));
            }
        }
    }
    Ok((problems, read))
}

/// Deletes `user_id`'s state (erasure, or merged away: `cause`), ending
/// its published rule tags.
pub(crate) fn erase(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    cause: crate::feed::StageCause,
) -> Result<()> {
    if let Some(mut state) = load_state(store, user_id)? {
        publish::end(&mut state, user_id, cause, batch)?;
    }
    batch.delete(Cf::Features, keys::user(user_id));
    Ok(())
}

/// `user_id`'s rule tags at the end of each local day of `from..=to` (none
/// on a day before its first event), from one read of its events.
pub(crate) fn tags_by_day(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    user_id: u32,
    (from, to): (i32, i32),
) -> Result<Vec<Vec<String>>> {
    let day_end = |d: i32| crate::time::local_midnight_ms(d + 1, offset) - 1;
    let mut events = Vec::new();
    crate::timeline::for_user_events(reader, user_id, i64::MIN, day_end(to), |k, v| {
        let kind = kinds
            .kind(v.kind_id)
            .ok_or_else(|| crate::error::Error::internal("an event of an unknown kind"))?;
        events.push((k.ts_ms, k.seq, kind, v.amount_minor, v.properties));
        Ok(true)
    })?;
    events.reverse();
    let mut state = UserState::new(set);
    let mut next = 0;
    let mut out = Vec::new();
    for day in from..=to {
        let t = day_end(day);
        while let Some((ts_ms, seq, kind, amount_minor, properties)) = events.get(next) {
            if *ts_ms > t {
                break;
            }
            let input = super::Input {
                ts_ms: *ts_ms,
                seq: *seq,
                kind: kind.as_str(),
                amount_minor: *amount_minor,
                properties,
            };
            state.apply(set, &input);
            next += 1;
        }
        out.push(match next {
            0 => Vec::new(),
            _ => set
                .tags(&state.values(set, t, offset))
                .into_iter()
                .map(std::borrow::Cow::into_owned)
                .collect(),
        });
    }
    Ok(out)
}

/// Whether two values are equal, floats to a relative 1e-9 (a lifetime
/// float sum adds in arrival order, a recomputation in instant order).
fn close(a: &FeatureValue, b: &FeatureValue) -> bool {
    match (a, b) {
        (FeatureValue::Float(x), FeatureValue::Float(y)) => {
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (FeatureValue::Keyed(x), FeatureValue::Keyed(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && close(vx, vy))
        }
        _ => a == b,
    }
}
