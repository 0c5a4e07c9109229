//! Reading coupons and templates, adding a template, and what erasing a
//! user does to its coupons.

use super::{Counts, Coupon, CouponError, CouponStats, CouponTemplate, MAX_TEMPLATES};
use crate::codec;
use crate::error::{Error, Result};
use crate::keys::{ledger as lk, meta};
use crate::store::{decode_value, Batch, Cf, Reader, Store};

/// Every template, by id.
pub(crate) fn templates(reader: &impl Reader) -> Result<Vec<CouponTemplate>> {
    let mut out = Vec::new();
    let until = crate::keys::prefix_successor(meta::COUPON_PREFIX);
    for item in reader.read_range(Cf::Meta, meta::COUPON_PREFIX, until)? {
        let (k, v) = item?;
        if meta::parse_coupon(&k).is_some_and(|(_, what)| what == meta::COUPON_TEMPLATE) {
            out.push(super::eligible::decode(&k, &v)?);
        }
    }
    Ok(out)
}

/// Template `id`, if it exists.
pub(crate) fn template(reader: &impl Reader, id: &str) -> Result<Option<CouponTemplate>> {
    let key = meta::coupon(id, meta::COUPON_TEMPLATE);
    reader.read_with(Cf::Meta, &key, |bytes| super::eligible::decode(&key, bytes))
}

/// Template `id`'s counts; refused when no such template exists.
pub(crate) fn stats(reader: &impl Reader, id: &str) -> Result<CouponStats> {
    let template = template(reader, id)?.ok_or_else(|| CouponError::UnknownTemplate {
        template: id.to_owned(),
    })?;
    let counts: Counts = reader
        .read(Cf::Meta, &meta::coupon(id, meta::COUPON_COUNTS))?
        .unwrap_or_default();
    Ok(counts.stats(&template))
}

/// `user_id`'s coupons, in the order they came to it.
pub(crate) fn coupons_of(reader: &impl Reader, user_id: u32) -> Result<Vec<Coupon>> {
    let prefix = lk::family(user_id, lk::COUPON);
    let until = crate::keys::prefix_successor(&prefix);
    let mut out = Vec::new();
    for item in reader.read_range(Cf::Ledger, &prefix, until)? {
        let (k, v) = item?;
        out.push(decode_value(Cf::Ledger, &k, &v)?);
    }
    Ok(out)
}

/// `user_id`'s coupon in `slot`.
pub(crate) fn coupon(store: &Store, user_id: u32, slot: u32) -> Result<Option<Coupon>> {
    store.get(Cf::Ledger, &lk::numbered(user_id, lk::COUPON, slot))
}

/// Puts `template` into `batch` unless an equal one exists (returns
/// whether it is new); another with its id is refused. The caller holds
/// the coupon lock.
pub(crate) fn add_template(
    store: &Store,
    batch: &mut Batch,
    template: &CouponTemplate,
) -> Result<bool> {
    template.validate()?;
    match self::template(store, &template.id)? {
        Some(t) if t == *template => return Ok(false),
        Some(_) => {
            return Err(CouponError::TemplateConflict {
                template: template.id.clone(),
            }
            .into())
        }
        None => {}
    }
    if templates(store)?.len() >= MAX_TEMPLATES {
        return Err(Error::LimitReached {
            what: "coupon templates",
            max: MAX_TEMPLATES as u64,
        });
    }
    batch.put(
        Cf::Meta,
        meta::coupon(&template.id, meta::COUPON_TEMPLATE),
        super::eligible::encode(template)?,
    );
    batch.put(
        Cf::Meta,
        meta::coupon(&template.id, meta::COUPON_COUNTS),
        codec::encode(&Counts::default())?,
    );
    Ok(true)
}

/// Counts `user_id`'s coupons as erased in their templates' counts, in
/// `batch` (an erasure: the coupons themselves go with the user's ledger
/// records). The caller holds the coupon lock or every stripe.
pub(crate) fn count_erased(store: &Store, batch: &mut Batch, user_id: u32) -> Result<()> {
    let mut by_template: std::collections::BTreeMap<String, Counts> = Default::default();
    for c in coupons_of(store, user_id)? {
        let counts = match by_template.get_mut(&c.template) {
            Some(counts) => counts,
            None => {
                let stored: Counts = store
                    .get(Cf::Meta, &meta::coupon(&c.template, meta::COUPON_COUNTS))?
                    .unwrap_or_default();
                by_template.entry(c.template.clone()).or_insert(stored)
            }
        };
        counts.add_state(&c.state, -1);
        counts.erased += 1;
    }
    for (id, counts) in by_template {
        batch.put(
            Cf::Meta,
            meta::coupon(&id, meta::COUPON_COUNTS),
            codec::encode(&counts)?,
        );
    }
    Ok(())
}

/// Deletes the due entry of the coupon stored under `key` (`value` its
/// bytes), in `batch`: erasing a user's ledger records.
pub(crate) fn erase_due(batch: &mut Batch, user_id: u32, key: &[u8], value: &[u8]) -> Result<()> {
    let Some(lk::LedgerKey::Coupon { slot, .. }) = lk::LedgerKey::parse(key) else {
        return Err(Error::internal("erasing a coupon under another key"));
    };
    let coupon: Coupon = decode_value(Cf::Ledger, key, value)?;
    if let Some(d) = coupon.due_ms() {
        batch.delete(Cf::LedgerDue, lk::due(lk::DUE_COUPON, d, user_id, slot));
    }
    Ok(())
}
