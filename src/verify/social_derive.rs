//! The `social` family derived from the stored events in the plainest way:
//! every user's social events (and a touched user's signups and purchases)
//! in memory, every rule of docs/metrics.md ("Social
//! commerce") applied to the whole list at once — none of the write path's
//! incremental code (no re-derivation windows, no write-local view, no
//! deltas). `verify` compares the store's family with it record for record.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec;
use crate::error::Result;
use crate::keys::social::{self as k, Touch};
use crate::kinds::ids;
use crate::social::{Attr, Figures, GroupHead, Owner};
use crate::store::Store;
use crate::time;
use crate::timeline::EventFacts;

/// Every record the events derive, keyed as stored.
pub(super) fn derive(store: &Store) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let window_ms = i64::from(crate::social::load_settings(store)?.window_days) * time::DAY_MS;
    let offset = store.settings().utc_offset_minutes;
    let day = |ts: i64| time::local_day(ts, offset);
    // Two scans keep memory to the social events and the signups and
    // purchases of touched users: the first keeps every event with a
    // social field or of kind share, the second the signups and purchases
    // of the users with a touch.
    let mut by_user: BTreeMap<u32, Vec<EventFacts>> = BTreeMap::new();
    let social = |e: &EventFacts| {
        e.via.is_some() || e.share_id.is_some() || e.group.is_some() || e.kind_id == ids::SHARE
    };
    crate::timeline::for_each_event(store, |e| {
        if social(&e) {
            by_user.entry(e.user_id).or_default().push(e);
        }
        Ok(())
    })?;
    let touched: BTreeSet<u32> = by_user
        .iter()
        .filter(|(_, events)| events.iter().any(|e| e.via.is_some()))
        .map(|(&u, _)| u)
        .collect();
    if !touched.is_empty() {
        crate::timeline::for_each_event(store, |e| {
            let money = matches!(e.kind_id, ids::SIGNUP | ids::PURCHASE);
            if money && !social(&e) && touched.contains(&e.user_id) {
                by_user.entry(e.user_id).or_default().push(e);
            }
            Ok(())
        })?;
    }
    let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut figures: BTreeMap<(i32, u32), Figures> = BTreeMap::new();

    // the registry: each share id's owner, at its earliest share
    let mut owners: BTreeMap<&str, Owner> = BTreeMap::new();
    for (&user, events) in &by_user {
        for e in events {
            if e.kind_id == ids::SHARE {
                figures.entry((day(e.ts_ms), user)).or_default().shares += 1;
            }
            if let Some(id) = &e.share_id {
                let o = owners.entry(id).or_insert(Owner {
                    user_id: user,
                    ts_ms: e.ts_ms,
                });
                o.ts_ms = o.ts_ms.min(e.ts_ms);
            }
        }
    }
    for (id, o) in &owners {
        out.insert(k::registry(id), codec::encode(o)?);
        out.insert(k::owned(o.user_id, id), Vec::new());
    }

    for (&user, events) in &by_user {
        // touches, all of them; the valid ones in (instant, share id) order
        let mut valid: Vec<(i64, usize, &str, u32)> = Vec::new();
        for e in events {
            let Some(via) = &e.via else { continue };
            let t = Touch {
                user_id: user,
                ts_ms: e.ts_ms,
                share_id: via.clone(),
                seq: e.seq,
            };
            out.insert(k::touch(&t), Vec::new());
            out.insert(k::by_share(&t), Vec::new());
            if let Some(o) = owners.get(via.as_str()).filter(|o| o.user_id != user) {
                valid.push((e.ts_ms, via.len(), via, o.user_id));
            }
        }
        valid.sort();
        let attribute = |at: i64| {
            valid
                .iter()
                .find(|t| t.0 >= at.saturating_sub(window_ms) && t.0 <= at)
                .map(|t| t.3)
        };
        let mut reached: BTreeMap<u32, i64> = BTreeMap::new();
        for t in &valid {
            reached.entry(t.3).or_insert(t.0);
        }
        for (&sharer, &ts) in &reached {
            out.insert(k::reached(user, sharer), codec::encode(&ts)?);
            figures.entry((day(ts), sharer)).or_default().reached += 1;
        }
        let first = |kind: u32| {
            events
                .iter()
                .filter(|e| e.kind_id == kind)
                .map(|e| e.ts_ms)
                .min()
        };
        if let Some(ts) = first(ids::SIGNUP) {
            if let Some(sharer) = attribute(ts) {
                let a = Attr {
                    ts_ms: ts,
                    sharer,
                    amount_minor: 0,
                };
                out.insert(k::first_item(user, k::ITEM_SIGNUP), codec::encode(&a)?);
                out.insert(k::referred(sharer, user), Vec::new());
                figures.entry((day(ts), sharer)).or_default().signups += 1;
            }
        }
        if let Some(ts) = first(ids::PURCHASE) {
            if let Some(sharer) = attribute(ts) {
                let amount = events
                    .iter()
                    .filter(|e| e.kind_id == ids::PURCHASE && e.ts_ms == ts)
                    .fold(0i64, |a, e| a.saturating_add(e.amount_minor.unwrap_or(0)));
                let a = Attr {
                    ts_ms: ts,
                    sharer,
                    amount_minor: amount,
                };
                out.insert(
                    k::first_item(user, k::ITEM_FIRST_PURCHASE),
                    codec::encode(&a)?,
                );
                figures
                    .entry((day(ts), sharer))
                    .or_default()
                    .first_purchases += 1;
            }
        }
        for e in events.iter().filter(|e| e.kind_id == ids::PURCHASE) {
            if let Some(sharer) = attribute(e.ts_ms) {
                let amount = e.amount_minor.unwrap_or(0);
                let a = Attr {
                    ts_ms: e.ts_ms,
                    sharer,
                    amount_minor: amount,
                };
                out.insert(k::purchase_item(user, e.ts_ms, e.seq), codec::encode(&a)?);
                let f = figures.entry((day(e.ts_ms), sharer)).or_default();
                f.orders += 1;
                f.gmv_minor = f.gmv_minor.saturating_add(amount);
            }
        }
    }

    let mut days: BTreeMap<i32, Figures> = BTreeMap::new();
    for ((d, sharer), f) in figures {
        if f == Figures::default() {
            continue;
        }
        let total = days.entry(d).or_default();
        *total = total.plus(&f);
        out.insert(k::sharer_day(d, sharer), codec::encode(&f)?);
    }
    for (d, f) in days {
        out.insert(k::day(d), codec::encode(&f)?);
    }
    derive_groups(&by_user, &day, &mut out)?;
    Ok(out)
}

/// Group heads (with completion) and joins.
fn derive_groups(
    by_user: &BTreeMap<u32, Vec<EventFacts>>,
    day: &dyn Fn(i64) -> i32,
    out: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<()> {
    let mut heads: BTreeMap<&str, GroupHead> = BTreeMap::new();
    let mut joins: BTreeMap<&str, Vec<(u32, i64)>> = BTreeMap::new();
    for (&user, events) in by_user {
        for e in events {
            let Some(g) = &e.group else { continue };
            match g.open {
                Some((target, deadline_ms)) => {
                    let h = heads.entry(&g.group_id).or_insert(GroupHead {
                        opener: user,
                        opened_ms: e.ts_ms,
                        target,
                        deadline_ms,
                        completed_ms: None,
                    });
                    h.opened_ms = h.opened_ms.min(e.ts_ms);
                }
                None => {
                    out.insert(k::join(&g.group_id, user, e.ts_ms, e.seq), Vec::new());
                    joins.entry(&g.group_id).or_default().push((user, e.ts_ms));
                }
            }
        }
    }
    for (id, mut head) in heads {
        let mut members: BTreeMap<u32, i64> = BTreeMap::new();
        for &(user, ts) in joins.get(id).map_or(&[][..], Vec::as_slice) {
            if user != head.opener && head.admits(ts) {
                let first = members.entry(user).or_insert(ts);
                *first = (*first).min(ts);
            }
        }
        let mut instants: BTreeSet<(i64, u32)> = BTreeSet::new();
        instants.extend(members.iter().map(|(&u, &t)| (t, u)));
        head.completed_ms = (head.target as usize)
            .checked_sub(2)
            .and_then(|i| instants.iter().nth(i))
            .map(|&(t, _)| t);
        let bytes = codec::encode(&head)?;
        out.insert(k::group_day(day(head.opened_ms), id), bytes.clone());
        out.insert(k::group(id), bytes);
    }
    Ok(())
}
