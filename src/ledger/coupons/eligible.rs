//! Which orders a template's coupons apply to (event kinds and string
//! properties, docs/coupons.md#eligibility), and how a template is stored:
//! format 1 for a template without eligibility (the layout before it
//! existed, so older stores and their bytes stay as they were), format 2
//! with it. Owns the template's value in `meta`; must not touch coupons.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CouponError, CouponKind, CouponTemplate};
use crate::codec;
use crate::error::{CorruptionError, Error, InputError, Problem, Result};
use crate::kinds::MAX_KIND_BYTES;
use crate::store::Cf;

/// Most event kinds one template names.
pub const MAX_ELIGIBLE_KINDS: usize = 16;
/// Most property conditions one template names.
pub const MAX_ELIGIBLE_PROPS: usize = 8;
/// Longest property name or value a condition names, in bytes.
pub const MAX_ELIGIBLE_TEXT_BYTES: usize = 256;

/// Checks a template's eligibility fields (counts, names, lengths).
pub(super) fn validate(t: &CouponTemplate) -> std::result::Result<(), InputError> {
    InputError::check_count("kinds", t.kinds.len(), MAX_ELIGIBLE_KINDS)?;
    for kind in &t.kinds {
        crate::users::check_name(kind, MAX_KIND_BYTES).map_err(|p| InputError::new("kinds", p))?;
    }
    InputError::check_count("where", t.where_props.len(), MAX_ELIGIBLE_PROPS)?;
    for (name, value) in &t.where_props {
        crate::users::check_name(name, MAX_ELIGIBLE_TEXT_BYTES)
            .map_err(|p| InputError::new("where", p))?;
        if value.len() > MAX_ELIGIBLE_TEXT_BYTES {
            return Err(InputError::new(
                "where",
                Problem::TooLong {
                    len_bytes: value.len(),
                    max_bytes: MAX_ELIGIBLE_TEXT_BYTES,
                },
            ));
        }
    }
    Ok(())
}

/// Checks order descriptions (a [`super::CouponOp::RedeemOrder`]'s kind and
/// properties): the kind is a kind name, at most 64 properties of bounded
/// length.
pub(super) fn validate_order(
    kind: &str,
    properties: &BTreeMap<String, String>,
) -> std::result::Result<(), InputError> {
    crate::users::check_name(kind, MAX_KIND_BYTES).map_err(|p| InputError::new("kind", p))?;
    InputError::check_count("properties", properties.len(), 64)?;
    for (name, value) in properties {
        let len = name.len().max(value.len());
        if name.is_empty() || len > MAX_ELIGIBLE_TEXT_BYTES {
            let problem = match name.is_empty() {
                true => Problem::Empty,
                false => Problem::TooLong {
                    len_bytes: len,
                    max_bytes: MAX_ELIGIBLE_TEXT_BYTES,
                },
            };
            return Err(InputError::new("properties", problem));
        }
    }
    Ok(())
}

/// Whether an order (`None`: not described, a plain redeem) may use
/// `coupon`, a coupon of `t`; the refusal says which condition failed.
pub(super) fn check(
    t: &CouponTemplate,
    coupon: &str,
    order: Option<(&str, &BTreeMap<String, String>)>,
) -> std::result::Result<(), CouponError> {
    if t.kinds.is_empty() && t.where_props.is_empty() {
        return Ok(());
    }
    let refuse = |reason: String| CouponError::NotEligible {
        coupon: coupon.to_owned(),
        reason,
    };
    let Some((kind, properties)) = order else {
        return Err(refuse(format!(
            "template {:?} limits the orders it applies to: redeem with the order's kind and properties",
            t.id
        )));
    };
    if !t.kinds.is_empty() && !t.kinds.iter().any(|k| k == kind) {
        return Err(refuse(format!(
            "an order of kind {kind:?} is not one of {:?}",
            t.kinds
        )));
    }
    for (name, want) in &t.where_props {
        match properties.get(name) {
            Some(got) if got == want => {}
            Some(got) => {
                return Err(refuse(format!(
                    "the order's {name} is {got:?}, the coupon needs {want:?}"
                )))
            }
            None => return Err(refuse(format!("the order has no {name} (needs {want:?})"))),
        }
    }
    Ok(())
}

/// A template as format 1 stored it (before eligibility): the fields of
/// [`CouponTemplate`] in order, without the eligibility ones.
#[derive(Serialize, Deserialize)]
struct StoredV1 {
    id: String,
    kind: CouponKind,
    off_minor: i64,
    percent: u32,
    max_off_minor: Option<i64>,
    min_spend_minor: i64,
    valid_days: Option<u32>,
    valid_until_ms: Option<i64>,
    stock: Option<u64>,
    per_user: Option<u32>,
    stackable: bool,
}

/// Format 2: format 1's fields, then the eligibility.
#[derive(Serialize, Deserialize)]
struct StoredV2 {
    base: StoredV1,
    kinds: Vec<String>,
    where_props: BTreeMap<String, String>,
}

/// The stored value of `t`.
pub(crate) fn encode(t: &CouponTemplate) -> Result<Vec<u8>> {
    let base = StoredV1 {
        id: t.id.clone(),
        kind: t.kind,
        off_minor: t.off_minor,
        percent: t.percent,
        max_off_minor: t.max_off_minor,
        min_spend_minor: t.min_spend_minor,
        valid_days: t.valid_days,
        valid_until_ms: t.valid_until_ms,
        stock: t.stock,
        per_user: t.per_user,
        stackable: t.stackable,
    };
    if t.kinds.is_empty() && t.where_props.is_empty() {
        return codec::encode(&base);
    }
    let v2 = StoredV2 {
        base,
        kinds: t.kinds.clone(),
        where_props: t.where_props.clone(),
    };
    codec::encode_as(codec::FORMAT_V2, &v2)
}

/// A template from its stored value (either format).
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<CouponTemplate> {
    let corrupt = |e: codec::DecodeError| -> Error {
        CorruptionError {
            cf: Cf::Meta.name(),
            what: "coupon template",
            key: key.to_vec(),
            reason: e.to_string(),
        }
        .into()
    };
    let (base, kinds, where_props) = match bytes.first() {
        Some(&codec::FORMAT_V2) => {
            let v2: StoredV2 = codec::decode_format(bytes, codec::FORMAT_V2).map_err(corrupt)?;
            (v2.base, v2.kinds, v2.where_props)
        }
        _ => (
            codec::decode::<StoredV1>(bytes).map_err(corrupt)?,
            Vec::new(),
            BTreeMap::new(),
        ),
    };
    Ok(CouponTemplate {
        id: base.id,
        kind: base.kind,
        off_minor: base.off_minor,
        percent: base.percent,
        max_off_minor: base.max_off_minor,
        min_spend_minor: base.min_spend_minor,
        valid_days: base.valid_days,
        valid_until_ms: base.valid_until_ms,
        stock: base.stock,
        per_user: base.per_user,
        stackable: base.stackable,
        kinds,
        where_props,
    })
}
