//! Tags against their index (chunk by chunk) and their expiry entries.

use std::collections::{BTreeMap, BTreeSet};

use roaring::RoaringBitmap;

use super::VerifyReport;
use crate::error::Result;
use crate::keys;
use crate::profiles::Tag;
use crate::store::merge;
use crate::store::{decode_value, Cf, Store};

pub(super) fn check_tags(store: &Store, r: &mut VerifyReport) -> Result<()> {
    let mut holders: BTreeMap<String, RoaringBitmap> = BTreeMap::new();
    let mut expiries: BTreeSet<(String, i64, u32)> = BTreeSet::new();
    for item in store.range(Cf::Tags, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Tags);
        let (user_id, name) = match keys::split_user_and_name(Cf::Tags.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        match decode_value::<Tag>(Cf::Tags, &k, &v) {
            Ok(tag) => {
                if let Some(e) = tag.expires_at_ms {
                    expiries.insert((name.clone(), e, user_id));
                }
                holders.entry(name).or_default().insert(user_id);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    // The index chunk by chunk: a holder filed under another chunk's key
    // is damage too.
    let mut want: BTreeMap<Vec<u8>, (String, RoaringBitmap)> = BTreeMap::new();
    for (tag, set) in holders {
        for u in &set {
            want.entry(keys::tag_index(&tag, u))
                .or_insert_with(|| (tag.clone(), RoaringBitmap::new()))
                .1
                .insert(u);
        }
    }
    for item in store.range(Cf::TagIndex, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::TagIndex);
        let (tag, chunk) = match keys::split_tag_index(Cf::TagIndex.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        let expect = want.remove(&k[..]).map(|(_, s)| s).unwrap_or_default();
        match merge::decode_bitmap(&v) {
            Some(got) if got == expect => {}
            Some(got) => r.problem(format!(
                "tag index {tag:?} chunk {chunk} has {} users, tags say {} ({} differ)",
                got.len(),
                expect.len(),
                (&got ^ &expect).len()
            )),
            None => r.problem(format!("tag index {tag:?} chunk {chunk} does not decode")),
        }
    }
    for (_, (tag, set)) in want {
        r.problem(format!(
            "tag index {tag:?} misses {} holders the tags name",
            set.len()
        ));
    }
    let mut on_disk: BTreeSet<(String, i64, u32)> = BTreeSet::new();
    for item in store.range(Cf::TagExpiry, &[], None)? {
        let (k, _) = item?;
        r.count(Cf::TagExpiry);
        match keys::split_tag_expiry(Cf::TagExpiry.name(), &k) {
            Ok(entry) => {
                on_disk.insert(entry);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    for missing in expiries.difference(&on_disk) {
        r.problem(format!("tag expiry entry missing: {missing:?}"));
    }
    for extra in on_disk.difference(&expiries) {
        r.problem(format!("tag expiry entry without a tag: {extra:?}"));
    }
    Ok(())
}

/// The attribute index against the profiles, entry by entry (an empty
/// set left by removals until compaction counts as absent).
pub(super) fn check_attr_index(store: &Store, r: &mut VerifyReport) -> Result<()> {
    let mut want = match crate::profiles::derive_attr_index(store) {
        Ok(want) => want,
        Err(e) => {
            // (the profile records' own check names the damage)
            r.problem(format!("attribute index not checked: {e}"));
            return Ok(());
        }
    };
    for item in store.range(Cf::AttrIndex, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::AttrIndex);
        let (name, space, _, chunk) = match keys::attrs::split(Cf::AttrIndex.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        let expect = want.remove(&k[..]).unwrap_or_default();
        match merge::decode_bitmap(&v) {
            Some(got) if got == expect => {}
            Some(got) => r.problem(format!(
                "attribute index {name:?} (space {space}) chunk {chunk} has {} users, the \
                 profiles say {} ({} differ)",
                got.len(),
                expect.len(),
                (&got ^ &expect).len()
            )),
            None => r.problem(format!(
                "attribute index {name:?} chunk {chunk} does not decode"
            )),
        }
    }
    for (k, set) in want {
        let name = keys::attrs::split(Cf::AttrIndex.name(), &k)
            .map(|(n, ..)| n)
            .unwrap_or_default();
        r.problem(format!(
            "attribute index {name:?} misses {} users the profiles name",
            set.len()
        ));
    }
    Ok(())
}
