//! How stored feature states are read and written: byte
//! [`codec::FORMAT_V2`] is the layout of [`UserState`]; byte
//! [`codec::FORMAT_V1`] the layout of the first build of features, whose
//! recent events each carried their own property list, read and converted
//! (a state keeps the tags it published: it is not simply recomputed).

use serde::Deserialize;

use super::publish::TagMark;
use super::recent::{Kept, Recent};
use super::state::{Slot, UserState};
use crate::codec;
use crate::error::{CorruptionError, Error, Result};
use crate::timeline::StoredProp;

/// A state as byte V1 stored it.
#[derive(Deserialize)]
struct UserStateV1 {
    version: u64,
    anchor_ms: i64,
    slots: Vec<Slot>,
    recent: RecentV1,
    tags: Option<TagMark>,
}

#[derive(Deserialize)]
struct RecentV1 {
    events: Vec<KeptV1>,
    lost_upto: Option<i64>,
}

#[derive(Deserialize)]
struct KeptV1 {
    ts_ms: i64,
    seq: u32,
    kind: u16,
    amount_minor: Option<i64>,
    props: Vec<(u16, StoredProp)>,
}

impl From<UserStateV1> for UserState {
    fn from(old: UserStateV1) -> UserState {
        let mut recent = Recent::default();
        recent.lost_upto = old.recent.lost_upto;
        for e in old.recent.events {
            let kept = Kept {
                ts_ms: e.ts_ms,
                seq: e.seq,
                kind: e.kind,
                amount_minor: e.amount_minor,
            };
            recent.push(kept, e.props);
        }
        UserState {
            version: old.version,
            anchor_ms: old.anchor_ms,
            slots: old.slots,
            recent,
            tags: old.tags,
        }
    }
}

/// Encodes a state, shedding its oldest window contributions until it fits
/// the value limit.
pub(super) fn encode_state(state: &mut UserState) -> Result<Vec<u8>> {
    loop {
        match codec::encode_as(codec::FORMAT_V2, &*state) {
            Err(Error::ValueTooLarge { .. }) if state.shed() => continue,
            other => return other,
        }
    }
}

/// Decodes the stored state under `key`.
pub(super) fn decode_state(key: &[u8], bytes: &[u8]) -> Result<UserState> {
    let decoded = match bytes.first() {
        Some(&codec::FORMAT_V1) => codec::decode::<UserStateV1>(bytes).map(UserState::from),
        _ => codec::decode_format::<UserState>(bytes, codec::FORMAT_V2),
    };
    decoded.map_err(|e| {
        CorruptionError {
            cf: "features",
            what: "feature state",
            key: key.to_vec(),
            reason: e.to_string(),
        }
        .into()
    })
}
