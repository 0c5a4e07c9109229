//! Attribution kept exact on write: one write's shares, touches, signups and
//! purchases go in; the users whose attribution they can change are
//! re-derived from their touches and the registry, and the difference to
//! what they contributed before becomes the figures' deltas.
//!
//! What a user contributes is recorded with the user (`6 ‖ user ‖ item`,
//! `5 ‖ user ‖ sharer`), so taking a contribution back never re-derives
//! the past: it reads what was added.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::txn::Txn;
use super::{Attr, Figures, Owner, SocialSettings};
use crate::codec;
use crate::error::{InputError, Problem, Result};
use crate::keys::social::{self as k, Touch};
use crate::kinds::ids;
use crate::store::{decode_value, Batch, Cf};
use crate::time;
use crate::timeline::GroupFacts;

/// A group-buy event of a user leaving (erasure, merge): its fields,
/// instant and sequence number.
pub(crate) type GroupEvent = (GroupFacts, i64, u32);

/// The part of a recorded event attribution reads.
#[derive(Debug, Clone)]
pub(crate) struct SocialEvent {
    pub user_id: u32,
    pub ts_ms: i64,
    pub seq: u32,
    pub kind_id: u32,
    pub amount_minor: i64,
    pub share_id: Option<String>,
    pub via: Option<String>,
    /// A group buy's opening or join.
    pub group: Option<GroupFacts>,
    /// Its index in the caller's input (errors name it).
    pub index: usize,
}

impl SocialEvent {
    /// Whether attribution has anything to do with an event of `kind_id`
    /// with these fields.
    pub fn matters(&self) -> bool {
        self.opens_social() || matches!(self.kind_id, ids::SIGNUP | ids::PURCHASE)
    }

    /// Whether it matters even to a store with no social records yet.
    pub fn opens_social(&self) -> bool {
        self.via.is_some()
            || self.share_id.is_some()
            || self.group.is_some()
            || self.kind_id == ids::SHARE
    }
}

/// One write's attribution changes.
pub(crate) struct Engine<'s> {
    pub(super) txn: Txn<'s>,
    /// Derive from the given events alone, as if the store held nothing
    /// (rebuild and verify).
    pub(super) blank: bool,
    pub(super) window_ms: i64,
    pub(super) offset_minutes: i32,
    pub(super) sharer_days: BTreeMap<(i32, u32), Figures>,
    pub(super) days: BTreeMap<i32, Figures>,
    /// Users to re-derive, with the instant ranges whose purchases may
    /// change attribution.
    pub(super) dirty: BTreeMap<u32, Vec<(i64, i64)>>,
    /// This write's signups and purchases: `(ts, seq, kind, amount)`.
    pub(super) recorded: FxHashMap<u32, Vec<(i64, u32, u32, i64)>>,
    pub(super) erased: FxHashSet<u32>,
    /// Group buys whose completion this write may change.
    pub(super) groups: std::collections::BTreeSet<String>,
    /// Users this write created: nothing of theirs is stored, so their
    /// re-derivation reads only this write's records.
    fresh: FxHashSet<u32>,
    /// The users with touches, when the caller already looked (a write
    /// adding no touch): spares the engine looking again.
    touched_users: Option<FxHashSet<u32>>,
    /// With referral earning rules: first-purchase attributions this
    /// write changed, and the merge it is part of (docs/social.md).
    pub(super) referrals: Option<super::referral::Referrals>,
    /// Leave the touchers of a share whose owner changed to a job when
    /// they are more than one write should re-derive.
    defer_touchers: bool,
    /// The shares whose touchers were left to a job.
    deferred: Vec<String>,
}

/// Most touchers of one share a write re-derives itself when the share's
/// owner changes (a late claim, the owner's erasure); past it, with
/// deferral on, a job re-derives them a page at a time.
pub(crate) const INLINE_TOUCHERS: usize = 1_000;

impl<'s> Engine<'s> {
    pub fn new(store: &'s crate::store::Store, settings: &SocialSettings, blank: bool) -> Self {
        Self {
            txn: Txn::new(store, blank),
            blank,
            window_ms: i64::from(settings.window_days) * time::DAY_MS,
            offset_minutes: store.settings().utc_offset_minutes,
            sharer_days: BTreeMap::new(),
            days: BTreeMap::new(),
            dirty: BTreeMap::new(),
            recorded: FxHashMap::default(),
            erased: FxHashSet::default(),
            groups: std::collections::BTreeSet::new(),
            fresh: FxHashSet::default(),
            touched_users: None,
            referrals: None,
            defer_touchers: false,
            deferred: Vec::new(),
        }
    }

    /// Leaves the touchers of a share whose owner changed to a job (see
    /// [`Engine::deferred`]) when there are more than [`INLINE_TOUCHERS`].
    pub fn deferring(mut self) -> Self {
        self.defer_touchers = true;
        self
    }

    /// The shares whose touchers this write left to a job.
    pub fn deferred(&self) -> &[String] {
        &self.deferred
    }

    /// Treats `user_id` as erased: it is re-derived by nobody and no
    /// credit of its is reversed (a touchers step of its erasure job, after
    /// the step that took it out).
    pub fn erasing(mut self, user_id: u32) -> Self {
        self.erased.insert(user_id);
        self
    }

    /// Marks for re-derivation at most `limit` users who came through
    /// `share_id` after the touch key `after` (a page of a touchers job);
    /// returns the last touch key marked (`None`: none was left).
    pub fn touchers_page(
        &mut self,
        share_id: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        let prefix = k::by_share_prefix(share_id);
        let mut touchers = Vec::new();
        let last = self
            .txn
            .store()
            .prefix_page(Cf::Social, &prefix, after, limit, |key, _| {
                touchers.push(k::parse_by_share(key).ok_or_else(|| bad_key(key))?);
                Ok(())
            })?;
        for t in touchers {
            if !self.erased.contains(&t.user_id) {
                let end = t.ts_ms.saturating_add(self.window_ms);
                self.mark(t.user_id, Some((t.ts_ms, end)));
            }
        }
        Ok(last)
    }

    /// Declares the users this write created (their records are all in
    /// this write).
    pub fn created(mut self, users: &[u32]) -> Self {
        self.fresh.extend(users.iter().copied());
        self
    }

    /// Declares exactly which of the write's users have touches (the caller
    /// looked, and the write adds none).
    pub fn touched_users(mut self, users: Option<FxHashSet<u32>>) -> Self {
        self.touched_users = users;
        self
    }

    /// Whether anything of `user_id`'s may be stored.
    pub(super) fn stored(&self, user_id: u32) -> bool {
        !self.blank && !self.fresh.contains(&user_id)
    }

    pub(super) fn is_erased(&self, user_id: u32) -> bool {
        self.erased.contains(&user_id)
    }

    pub(super) fn day(&self, ts_ms: i64) -> i32 {
        time::local_day(ts_ms, self.offset_minutes)
    }

    pub(super) fn figure(&mut self, ts_ms: i64, sharer: u32, f: impl Fn(&mut Figures)) {
        let day = self.day(ts_ms);
        f(self.sharer_days.entry((day, sharer)).or_default());
        f(self.days.entry(day).or_default());
    }

    fn mark(&mut self, user_id: u32, range: Option<(i64, i64)>) {
        let ranges = self.dirty.entry(user_id).or_default();
        if let Some(r) = range {
            ranges.push(r);
        }
    }

    pub(super) fn owner(&self, share_id: &str) -> Result<Option<Owner>> {
        let key = k::registry(share_id);
        self.txn
            .get(&key)?
            .map(|v| decode_value(Cf::Social, &key, &v))
            .transpose()
    }

    /// Takes `user_id` out (erasure, or the first half of a merge): every
    /// contribution it made as a referred user and as a sharer, its
    /// touches, and its shares — whose touchers are re-derived without them.
    /// `shares` are the instants of its share events.
    pub fn erase(&mut self, user_id: u32, shares: &[i64], groups: &[GroupEvent]) -> Result<()> {
        self.leave_groups(user_id, groups)?;
        for &ts in shares {
            self.figure(ts, user_id, |f| f.shares -= 1);
        }
        for (key, value) in self.txn.scan_prefix(&k::attributed_prefix(user_id))? {
            let attr: Attr = decode_value(Cf::Social, &key, &value)?;
            let item = *key.get(5).ok_or_else(|| bad_key(&key))?;
            if item == k::ITEM_FIRST_PURCHASE {
                self.first_purchase_moved(user_id, Some(attr), None);
            }
            self.credit(user_id, item, &attr, -1);
            self.txn.delete(key);
        }
        for (key, value) in self.txn.scan_prefix(&k::reached_prefix(user_id))? {
            let first_ms: i64 = decode_value(Cf::Social, &key, &value)?;
            let sharer = k::reached_sharer(&key).ok_or_else(|| bad_key(&key))?;
            self.figure(first_ms, sharer, |f| f.reached -= 1);
            self.txn.delete(key);
        }
        for (key, _) in self.txn.scan_prefix(&k::touches_prefix(user_id))? {
            let t = k::parse_touch(&key).ok_or_else(|| bad_key(&key))?;
            self.txn.delete(k::by_share(&t));
            self.txn.delete(key);
        }
        self.erased.insert(user_id);
        self.dirty.remove(&user_id);
        for (key, _) in self.txn.scan_prefix(&k::owned_prefix(user_id))? {
            let share = k::owned_share(&key)
                .ok_or_else(|| bad_key(&key))?
                .to_owned();
            self.txn.delete(k::registry(&share));
            self.txn.delete(key);
            self.touchers_changed(&share)?;
        }
        Ok(())
    }

    /// Every user who came through `share_id` is re-derived around those
    /// touches (its owner changed).
    fn touchers_changed(&mut self, share_id: &str) -> Result<()> {
        if self.defer_touchers && !self.blank {
            // (this write's own touchers are marked by their events; the
            // job re-derives them again, which changes nothing)
            let prefix = k::by_share_prefix(share_id);
            let stored = self
                .txn
                .store()
                .range(Cf::Social, &prefix, crate::keys::prefix_successor(&prefix))?
                .take(INLINE_TOUCHERS + 1)
                .count();
            if stored > INLINE_TOUCHERS {
                if !self.deferred.iter().any(|s| s == share_id) {
                    self.deferred.push(share_id.to_owned());
                }
                return Ok(());
            }
        }
        for (key, _) in self.txn.scan_prefix(&k::by_share_prefix(share_id))? {
            let t = k::parse_by_share(&key).ok_or_else(|| bad_key(&key))?;
            if !self.erased.contains(&t.user_id) {
                let end = t.ts_ms.saturating_add(self.window_ms);
                self.mark(t.user_id, Some((t.ts_ms, end)));
            }
        }
        Ok(())
    }

    /// Adds one write's recorded events.
    pub fn add(&mut self, events: &[SocialEvent]) -> Result<()> {
        let mut registered = Vec::new();
        for e in events {
            if let Some(g) = &e.group {
                self.group_event(e, g)?;
            }
            if e.kind_id == ids::SHARE {
                self.figure(e.ts_ms, e.user_id, |f| f.shares += 1);
            }
            if let Some(share) = &e.share_id {
                match self.owner(share)? {
                    None => {
                        let owner = Owner {
                            user_id: e.user_id,
                            ts_ms: e.ts_ms,
                        };
                        self.txn.put(k::registry(share), codec::encode(&owner)?);
                        self.txn.put(k::owned(e.user_id, share), Vec::new());
                        registered.push(share.clone());
                    }
                    Some(o) if o.user_id == e.user_id => {
                        // The owner's earliest share of it, whatever the order.
                        if e.ts_ms < o.ts_ms {
                            let owner = Owner {
                                user_id: o.user_id,
                                ts_ms: e.ts_ms,
                            };
                            self.txn.put(k::registry(share), codec::encode(&owner)?);
                        }
                    }
                    Some(_) => {
                        return Err(InputError::new(
                            "event.share_id",
                            Problem::Unparsable {
                                reason: format!("share id {share:?} belongs to another user"),
                            },
                        )
                        .at(e.index)
                        .into())
                    }
                }
            }
            if let Some(via) = &e.via {
                let t = Touch {
                    user_id: e.user_id,
                    ts_ms: e.ts_ms,
                    share_id: via.clone(),
                    seq: e.seq,
                };
                self.txn.put(k::touch(&t), Vec::new());
                self.txn.put(k::by_share(&t), Vec::new());
                let end = e.ts_ms.saturating_add(self.window_ms);
                self.mark(e.user_id, Some((e.ts_ms, end)));
            }
            if matches!(e.kind_id, ids::SIGNUP | ids::PURCHASE) {
                self.recorded.entry(e.user_id).or_default().push((
                    e.ts_ms,
                    e.seq,
                    e.kind_id,
                    e.amount_minor,
                ));
            }
        }
        // Signups and purchases of users nobody ever touched change nothing.
        let users: Vec<u32> = self.recorded.keys().copied().collect();
        for user_id in users {
            if !self.dirty.contains_key(&user_id) && !self.touched(user_id)? {
                continue;
            }
            let purchases: Vec<i64> = self.recorded[&user_id]
                .iter()
                .filter(|r| r.2 == ids::PURCHASE)
                .map(|r| r.0)
                .collect();
            self.mark(user_id, None);
            for ts in purchases {
                self.mark(user_id, Some((ts, ts)));
            }
        }
        for share in registered {
            self.touchers_changed(&share)?;
        }
        Ok(())
    }

    fn touched(&self, user_id: u32) -> Result<bool> {
        if let Some(known) = &self.touched_users {
            return Ok(known.contains(&user_id));
        }
        let prefix = k::touches_prefix(user_id);
        Ok(!self
            .txn
            .scan_prefix_in(&prefix, self.stored(user_id))?
            .is_empty())
    }

    /// Adds (`sign` 1) or takes back (−1) one attributed item.
    pub(super) fn credit(&mut self, user_id: u32, item: u8, attr: &Attr, sign: i64) {
        let amount = attr.amount_minor;
        match item {
            k::ITEM_SIGNUP => {
                self.figure(attr.ts_ms, attr.sharer, |f| f.signups += sign);
                let key = k::referred(attr.sharer, user_id);
                if sign > 0 {
                    self.txn.put(key, Vec::new());
                } else {
                    self.txn.delete(key);
                }
            }
            k::ITEM_FIRST_PURCHASE => {
                self.figure(attr.ts_ms, attr.sharer, |f| f.first_purchases += sign)
            }
            _ => self.figure(attr.ts_ms, attr.sharer, |f| {
                f.orders += sign;
                f.gmv_minor = f.gmv_minor.saturating_add(sign.saturating_mul(amount));
            }),
        }
    }

    /// Re-derives every marked user, then puts everything into `batch`.
    pub(crate) fn finish(mut self, batch: &mut Batch) -> Result<()> {
        self.settle()?;
        self.txn.finish(batch);
        Ok(())
    }

    /// A blank derivation's records (verify compares them with the store's).
    pub fn into_records(mut self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        debug_assert!(self.blank);
        self.settle()?;
        Ok(self.txn.into_puts())
    }

    /// Re-derives every marked user and group and puts the figures (a
    /// second call finds nothing left to do).
    pub(super) fn settle(&mut self) -> Result<()> {
        let groups = std::mem::take(&mut self.groups);
        for g in groups {
            self.settle_group(&g)?;
        }
        let dirty = std::mem::take(&mut self.dirty);
        for (user_id, ranges) in dirty {
            if !self.erased.contains(&user_id) {
                self.rederive(user_id, ranges)?;
            }
        }
        self.write_figures()
    }

    fn write_figures(&mut self) -> Result<()> {
        let sharer_days = std::mem::take(&mut self.sharer_days);
        let days = std::mem::take(&mut self.days);
        let keyed = sharer_days
            .into_iter()
            .map(|((d, s), f)| (k::sharer_day(d, s), f))
            .chain(days.into_iter().map(|(d, f)| (k::day(d), f)));
        for (key, delta) in keyed {
            if delta == Figures::default() {
                continue;
            }
            let now: Figures = match (self.blank, self.txn.get(&key)?) {
                (false, Some(v)) => decode_value(Cf::Social, &key, &v)?,
                _ => Figures::default(),
            };
            let next = now.plus(&delta);
            debug_assert!(next.is_valid(), "figures below zero at {key:?}: {next:?}");
            if next == Figures::default() {
                self.txn.delete(key);
            } else {
                self.txn.put(key, codec::encode(&next)?);
            }
        }
        Ok(())
    }
}

/// Overlapping or touching ranges joined, in order.
pub(super) fn merge_ranges(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

pub(super) fn bad_key(key: &[u8]) -> crate::error::Error {
    crate::error::CorruptionError {
        cf: Cf::Social.name(),
        what: "key",
        key: key.to_vec(),
        reason: "not a social key of its family".to_owned(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::merge_ranges;

    #[test]
    fn ranges_merge_when_they_overlap_or_touch() {
        assert_eq!(
            merge_ranges(vec![(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]),
            vec![(1, 9), (20, 30)]
        );
    }
}
