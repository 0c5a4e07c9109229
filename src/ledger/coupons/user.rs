//! One user's coupons in a working copy: its head (next slot, coupons per
//! template) read with one key, each coupon read when an operation names it
//! (through the id index), every coupon only when an expiry run or a merge
//! needs them all; and how the changes go into a write's batch.

use std::collections::BTreeMap;

use super::{Coupon, CouponState, CouponTxn, Head};
use crate::codec;
use crate::error::{CorruptionError, Error, Result};
use crate::keys::{feed as fk, ledger as lk};
use crate::store::{decode_value, Batch, Cf, Store};

pub(super) struct Slot {
    pub stored: Option<Coupon>,
    pub current: Coupon,
}

pub(super) struct UserWork {
    pub user_id: u32,
    stored_head: Head,
    pub head: Head,
    pub slots: BTreeMap<u32, Slot>,
    all_loaded: bool,
    /// Ids of the coupons this write added (issued or moved in), by slot.
    new_ids: Vec<(String, u32)>,
    pub txns: BTreeMap<String, CouponTxn>,
    /// Coupons this write redeemed, with whether each stacks.
    pub redeemed_here: Vec<(String, bool)>,
    /// Slots of coupons a merge moved in whose expiry notice was written
    /// (under the merged user): marked here, not noticed again.
    pub noticed_before: Vec<u32>,
}

impl UserWork {
    /// `user_id`'s head; no coupon read yet.
    pub fn load(store: &Store, user_id: u32) -> Result<Self> {
        let head: Head = store
            .get(Cf::Ledger, &lk::family(user_id, lk::COUPON_HEAD))?
            .unwrap_or_default();
        Ok(Self {
            user_id,
            stored_head: head.clone(),
            head,
            slots: BTreeMap::new(),
            all_loaded: false,
            new_ids: Vec::new(),
            txns: BTreeMap::new(),
            redeemed_here: Vec::new(),
            noticed_before: Vec::new(),
        })
    }

    /// The slot of coupon `id`, reading it when not read yet.
    pub fn find(&mut self, store: &Store, id: &str) -> Result<Option<u32>> {
        if let Some((slot, _)) = self.slots.iter().find(|(_, s)| s.current.id == id) {
            return Ok(Some(*slot));
        }
        if self.all_loaded {
            return Ok(None);
        }
        let key = lk::coupon_id(self.user_id, id);
        let Some(slot) = store.get::<u32>(Cf::Ledger, &key)? else {
            return Ok(None);
        };
        let coupon_key = lk::numbered(self.user_id, lk::COUPON, slot);
        let coupon: Coupon = store.get(Cf::Ledger, &coupon_key)?.ok_or_else(|| {
            Error::from(CorruptionError {
                cf: Cf::Ledger.name(),
                what: "value",
                key: key.clone(),
                reason: format!("coupon {id:?} indexed in slot {slot}, which is empty"),
            })
        })?;
        self.slots.insert(
            slot,
            Slot {
                stored: Some(coupon.clone()),
                current: coupon,
            },
        );
        Ok(Some(slot))
    }

    /// Reads every coupon not read yet.
    pub fn load_all(&mut self, store: &Store) -> Result<()> {
        if self.all_loaded {
            return Ok(());
        }
        for item in store.prefix(Cf::Ledger, &lk::family(self.user_id, lk::COUPON))? {
            let (k, v) = item?;
            let Some(lk::LedgerKey::Coupon { slot, .. }) = lk::LedgerKey::parse(&k) else {
                return Err(Error::internal("a coupon key does not parse"));
            };
            if let std::collections::btree_map::Entry::Vacant(e) = self.slots.entry(slot) {
                let coupon: Coupon = decode_value(Cf::Ledger, &k, &v)?;
                e.insert(Slot {
                    stored: Some(coupon.clone()),
                    current: coupon,
                });
            }
        }
        self.all_loaded = true;
        Ok(())
    }

    /// Coupons of `template` the user holds.
    pub fn held_of(&self, template: &str) -> u32 {
        self.head.by_template.get(template).copied().unwrap_or(0)
    }

    /// Adds `coupon` in the next slot.
    pub fn add(&mut self, coupon: Coupon) -> u32 {
        let slot = self.head.next_slot;
        self.head.next_slot += 1;
        *self
            .head
            .by_template
            .entry(coupon.template.clone())
            .or_insert(0) += 1;
        self.new_ids.push((coupon.id.clone(), slot));
        self.slots.insert(
            slot,
            Slot {
                stored: None,
                current: coupon,
            },
        );
        slot
    }

    /// Puts the user's changes into `batch`: coupons, their due entries and
    /// notices, the id index, the head, the operation records.
    pub fn finish(
        self,
        store: &Store,
        notices: Option<crate::feed::Clock>,
        batch: &mut Batch,
    ) -> Result<()> {
        let uid = self.user_id;
        for (slot, s) in &self.slots {
            if s.stored.as_ref() == Some(&s.current) {
                continue;
            }
            notice(store, notices, batch, (uid, *slot), s, &self.noticed_before)?;
            let (old, new) = (
                s.stored.as_ref().and_then(Coupon::due_ms),
                s.current.due_ms(),
            );
            if old != new {
                if let Some(d) = old {
                    batch.delete(Cf::LedgerDue, lk::due(lk::DUE_COUPON, d, uid, *slot));
                }
                if let Some(d) = new {
                    batch.put(Cf::LedgerDue, lk::due(lk::DUE_COUPON, d, uid, *slot), []);
                }
            }
            let key = lk::numbered(uid, lk::COUPON, *slot);
            batch.put(Cf::Ledger, key, codec::encode(&s.current)?);
        }
        for (id, slot) in &self.new_ids {
            batch.put(Cf::Ledger, lk::coupon_id(uid, id), codec::encode(slot)?);
        }
        if self.head != self.stored_head {
            let key = lk::family(uid, lk::COUPON_HEAD);
            batch.put(Cf::Ledger, key, codec::encode(&self.head)?);
        }
        for (txn_id, record) in &self.txns {
            batch.put(
                Cf::Ledger,
                lk::coupon_txn(uid, txn_id),
                codec::encode(record)?,
            );
        }
        Ok(())
    }
}

/// The expiry-notice side of one changed coupon: one issued, moved in or
/// made available again with its notice due at the write's clock and not
/// written yet gets it now; one that stops being usable loses its mark.
fn notice(
    store: &Store,
    notices: Option<crate::feed::Clock>,
    batch: &mut Batch,
    (user_id, slot): (u32, u32),
    s: &Slot,
    noticed_before: &[u32],
) -> Result<()> {
    let usable = |c: &Coupon| matches!(c.state, CouponState::Available | CouponState::Held { .. });
    let mark = fk::coupon_noticed(user_id, slot);
    match &s.stored {
        Some(old) if usable(old) && !usable(&s.current) => {
            batch.delete(Cf::Feed, mark);
            return Ok(());
        }
        None if noticed_before.contains(&slot) => {
            batch.put(Cf::Feed, mark, []);
            return Ok(());
        }
        _ => {}
    }
    let became_available = s.current.state == CouponState::Available
        && s.stored
            .as_ref()
            .is_none_or(|old| old.state != CouponState::Available);
    if let (true, Some(clock), Some(e)) = (became_available, notices, s.current.expires_at_ms) {
        // (a coupon held since its notice keeps the mark it had)
        // (never for one past its expiry: the expiry run takes it)
        let ahead = clock.now_ms.is_some_and(|now| e > now);
        if ahead
            && clock.notice_due(e)
            && (s.stored.is_none() || !store.contains(Cf::Feed, &mark)?)
        {
            let id = (s.current.id.as_str(), s.current.template.as_str());
            crate::feed::coupon_notice(batch, user_id, slot, id, e, clock.notice_ms())?;
        }
    }
    Ok(())
}
