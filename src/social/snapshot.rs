//! Referral credits across a re-derivation of attribution (a rebuild, a
//! window change): the first-purchase attributions as they were are kept
//! in a scratch family (`14 ‖ user`) before the family is re-derived, and
//! compared user by user afterwards, so the credits of every attribution
//! that moved are reversed and paid anew — even when a kill came between
//! the re-derivation and the payments (docs/social.md, "Referral credits").

use super::Attr;
use crate::error::Result;
use crate::keys::social as k;
use crate::store::{decode_value, Batch, Cf, Store};

/// Keys per batch while copying or clearing the snapshot.
const SNAPSHOT_BATCH_KEYS: usize = 10_000;

/// Copies every first-purchase attribution into the snapshot family,
/// which it clears first: idempotent, so a re-run after a kill writes the
/// same snapshot.
pub(crate) fn take(store: &Store) -> Result<()> {
    clear(store)?;
    let mut batch = Batch::new();
    for item in store.prefix(Cf::Social, &[k::ATTRIBUTED])? {
        let (key, value) = item?;
        if key.len() == 6 && key[5] == k::ITEM_FIRST_PURCHASE {
            let user = u32::from_be_bytes([key[1], key[2], key[3], key[4]]);
            batch.put(Cf::Social, k::snapshot(user), value);
            if batch.len() >= SNAPSHOT_BATCH_KEYS {
                store.write(std::mem::take(&mut batch))?;
            }
        }
    }
    store.write(batch)
}

/// Deletes the snapshot family.
pub(crate) fn clear(store: &Store) -> Result<()> {
    store.delete_prefix(Cf::Social, &[k::SNAPSHOT], SNAPSHOT_BATCH_KEYS)
}

/// `user_id`'s first-purchase attribution before the re-derivation (as
/// snapshot) and after it (as stored now).
pub(crate) fn before_after(store: &Store, user_id: u32) -> Result<(Option<Attr>, Option<Attr>)> {
    let read = |key: Vec<u8>| -> Result<Option<Attr>> {
        store
            .get_raw(Cf::Social, &key)?
            .map(|v| decode_value(Cf::Social, &key, &v))
            .transpose()
    };
    Ok((
        read(k::snapshot(user_id))?,
        read(k::first_item(user_id, k::ITEM_FIRST_PURCHASE))?,
    ))
}

/// Deletes `user_id`'s snapshot entry in `batch` (settled).
pub(crate) fn settled(batch: &mut Batch, user_id: u32) {
    batch.delete(Cf::Social, k::snapshot(user_id));
}
