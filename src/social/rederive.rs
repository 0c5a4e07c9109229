//! Re-deriving one user's contributions: its touches and the registry
//! decide who its first signup, first purchase and purchases are
//! attributed to and whom it reached; the difference to what it
//! contributed before becomes figure deltas (docs/social.md, "How a write
//! keeps it exact").

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::engine::{bad_key, merge_ranges, Engine};
use super::Attr;
use crate::codec;
use crate::error::Result;
use crate::keys::social as k;
use crate::kinds::ids;
use crate::store::{decode_value, Cf};
use crate::time;

impl Engine<'_> {
    /// Re-derives `user_id`'s contributions from its touches and the
    /// registry: first touch per sharer, first signup, first purchase, and
    /// the purchases inside `ranges`.
    pub(super) fn rederive(&mut self, user_id: u32, ranges: Vec<(i64, i64)>) -> Result<()> {
        let mut owners: FxHashMap<String, Option<u32>> = FxHashMap::default();
        let mut valid: Vec<(i64, u32)> = Vec::new();
        let stored = self.stored(user_id);
        for (key, _) in self
            .txn
            .scan_prefix_in(&k::touches_prefix(user_id), stored)?
        {
            let t = k::parse_touch(&key).ok_or_else(|| bad_key(&key))?;
            let owner = match owners.get(&t.share_id) {
                Some(o) => *o,
                None => {
                    let o = self.owner(&t.share_id)?.map(|o| o.user_id);
                    owners.insert(t.share_id.clone(), o);
                    o
                }
            };
            // Self-referrals never count; unknown share ids wait for their share.
            if let Some(o) = owner.filter(|&o| o != user_id) {
                valid.push((t.ts_ms, o));
            }
        }
        self.rederive_reach(user_id, &valid)?;
        for (item, kind) in [
            (k::ITEM_SIGNUP, ids::SIGNUP),
            (k::ITEM_FIRST_PURCHASE, ids::PURCHASE),
        ] {
            let first = self.first_instant(user_id, kind)?;
            let want = first.and_then(|(ts, amount)| {
                self.attribute(&valid, ts).map(|sharer| Attr {
                    ts_ms: ts,
                    sharer,
                    // a first purchase keeps its amount (referral rules
                    // may pay by it)
                    amount_minor: if item == k::ITEM_FIRST_PURCHASE {
                        amount
                    } else {
                        0
                    },
                })
            });
            let key = k::first_item(user_id, item);
            let had: Option<Attr> = self
                .txn
                .get_in(&key, stored)?
                .map(|v| decode_value(Cf::Social, &key, &v))
                .transpose()?;
            if had != want {
                if item == k::ITEM_FIRST_PURCHASE {
                    self.first_purchase_moved(user_id, had, want);
                }
                if let Some(old) = had {
                    self.credit(user_id, item, &old, -1);
                    self.txn.delete(key.clone());
                }
                if let Some(new) = want {
                    self.credit(user_id, item, &new, 1);
                    self.txn.put(key, codec::encode(&new)?);
                }
            }
        }
        for (lo, hi) in merge_ranges(ranges) {
            self.rederive_purchases(user_id, &valid, lo, hi)?;
        }
        Ok(())
    }

    fn rederive_reach(&mut self, user_id: u32, valid: &[(i64, u32)]) -> Result<()> {
        let mut want: BTreeMap<u32, i64> = BTreeMap::new();
        for &(ts, sharer) in valid {
            want.entry(sharer).or_insert(ts);
        }
        let stored = self.stored(user_id);
        for (key, value) in self
            .txn
            .scan_prefix_in(&k::reached_prefix(user_id), stored)?
        {
            let had: i64 = decode_value(Cf::Social, &key, &value)?;
            let sharer = k::reached_sharer(&key).ok_or_else(|| bad_key(&key))?;
            if want.get(&sharer) == Some(&had) {
                want.remove(&sharer);
                continue;
            }
            self.figure(had, sharer, |f| f.reached -= 1);
            self.txn.delete(key);
        }
        for (sharer, ts) in want {
            self.figure(ts, sharer, |f| f.reached += 1);
            self.txn
                .put(k::reached(user_id, sharer), codec::encode(&ts)?);
        }
        Ok(())
    }

    /// The sharer of the first valid touch in `[at − window, at]`.
    fn attribute(&self, valid: &[(i64, u32)], at_ms: i64) -> Option<u32> {
        let from = at_ms.saturating_sub(self.window_ms);
        let i = valid.partition_point(|&(ts, _)| ts < from);
        valid
            .get(i)
            .filter(|&&(ts, _)| ts <= at_ms)
            .map(|&(_, s)| s)
    }

    /// The instant of `user_id`'s first event of `kind_id`: stored or
    /// recorded by this write.
    fn first_instant(&self, user_id: u32, kind_id: u32) -> Result<Option<(i64, i64)>> {
        let mut all: Vec<(i64, i64)> = self
            .recorded
            .get(&user_id)
            .map(|r| {
                r.iter()
                    .filter(|r| r.2 == kind_id)
                    .map(|r| (r.0, r.3))
                    .collect()
            })
            .unwrap_or_default();
        if self.stored(user_id) {
            if let Some(day) =
                crate::metrics::first_day_of_kind(self.txn.store(), user_id, kind_id)?
            {
                let from = time::local_midnight_ms(day, self.offset_minutes);
                let to = time::local_midnight_ms(day + 1, self.offset_minutes);
                let stored =
                    crate::timeline::events_of_kind(self.txn.store(), user_id, kind_id, from, to)?;
                all.extend(stored.iter().map(|e| (e.0, e.2)));
            }
        }
        // the amount of a first purchase: every purchase at that instant
        Ok(all.iter().map(|e| e.0).min().map(|first| {
            let amount = all
                .iter()
                .filter(|e| e.0 == first)
                .fold(0i64, |a, e| a.saturating_add(e.1));
            (first, amount)
        }))
    }

    fn rederive_purchases(
        &mut self,
        user_id: u32,
        valid: &[(i64, u32)],
        lo: i64,
        hi: i64,
    ) -> Result<()> {
        let stored = self.stored(user_id);
        let mut purchases: Vec<(i64, u32, i64)> = if !stored {
            Vec::new()
        } else {
            crate::timeline::events_of_kind(
                self.txn.store(),
                user_id,
                ids::PURCHASE,
                lo,
                hi.saturating_add(1),
            )?
        };
        if let Some(r) = self.recorded.get(&user_id) {
            purchases.extend(
                r.iter()
                    .filter(|r| r.2 == ids::PURCHASE && (lo..=hi).contains(&r.0))
                    .map(|r| (r.0, r.1, r.3)),
            );
        }
        let mut want: BTreeMap<(i64, u32), Attr> = BTreeMap::new();
        for (ts, seq, amount) in purchases {
            if let Some(sharer) = self.attribute(valid, ts) {
                let attr = Attr {
                    ts_ms: ts,
                    sharer,
                    amount_minor: amount,
                };
                want.insert((ts, seq), attr);
            }
        }
        let until = k::purchases_from(user_id, hi.saturating_add(1));
        for (key, value) in
            self.txn
                .scan_in(&k::purchases_from(user_id, lo), Some(&until), stored)?
        {
            let at = k::parse_purchase_item(&key).ok_or_else(|| bad_key(&key))?;
            let had: Attr = decode_value(Cf::Social, &key, &value)?;
            if want.get(&at) == Some(&had) {
                want.remove(&at);
                continue;
            }
            self.credit(user_id, k::ITEM_PURCHASE, &had, -1);
            self.txn.delete(key);
        }
        for ((ts, seq), attr) in want {
            self.credit(user_id, k::ITEM_PURCHASE, &attr, 1);
            self.txn
                .put(k::purchase_item(user_id, ts, seq), codec::encode(&attr)?);
        }
        Ok(())
    }
}
