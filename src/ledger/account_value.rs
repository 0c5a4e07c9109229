//! The stored value of a points account: format 1 is the [`Account`]
//! alone; format 2 adds the position (instant, sequence number) of the
//! user's first-order reward holder, so that a purchase of a store with a
//! first-order rule answers "an older purchase holds it" from the account
//! it reads anyway instead of a second read (docs/performance.md,
//! "Rewards"). The holder's own record (`ledger` tag 16) stays the primary
//! one; the position is a copy that `verify` checks against it, and an
//! account without it (format 1, or a user without an account yet) makes
//! the purchase read the holder. Owns the encoding only.

use serde::{Deserialize, Serialize};

use super::Account;
use crate::codec;
use crate::error::{CorruptionError, Error, Result};
use crate::store::Cf;

/// A first-order holder's (instant, sequence number).
pub(crate) type HolderAt = (i64, u32);

#[derive(Serialize, Deserialize)]
struct StoredV2 {
    account: Account,
    first_order_at: HolderAt,
}

/// The value of `account`: format 1 without a holder position (the bytes
/// every earlier build wrote), format 2 with one.
pub(crate) fn encode(account: &Account, first_order_at: Option<HolderAt>) -> Result<Vec<u8>> {
    match first_order_at {
        None => codec::encode(account),
        Some(at) => codec::encode_as(
            codec::FORMAT_V2,
            &StoredV2 {
                account: account.clone(),
                first_order_at: at,
            },
        ),
    }
}

/// An account and its first-order holder position from a stored value of
/// either format.
pub(crate) fn decode_full(key: &[u8], bytes: &[u8]) -> Result<(Account, Option<HolderAt>)> {
    let corrupt = |e: codec::DecodeError| -> Error {
        CorruptionError {
            cf: Cf::Ledger.name(),
            what: "account",
            key: key.to_vec(),
            reason: e.to_string(),
        }
        .into()
    };
    match bytes.first() {
        Some(&codec::FORMAT_V2) => {
            let v: StoredV2 = codec::decode_format(bytes, codec::FORMAT_V2).map_err(corrupt)?;
            Ok((v.account, Some(v.first_order_at)))
        }
        _ => Ok((codec::decode(bytes).map_err(corrupt)?, None)),
    }
}

/// An account from a stored value of either format.
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Account> {
    decode_full(key, bytes).map(|(a, _)| a)
}
