//! The new-member gift pack (docs/coupons.md, "Gift pack"): coupons of a
//! set of templates issued to a user in the write that records its first
//! event of a kind (`signup` by default), once per user.

use serde::{Deserialize, Serialize};

use super::{check_template_id, CouponError};
use crate::codec;
use crate::error::{Error, InputError, Problem, Result};
use crate::keys::meta;
use crate::store::{Batch, Cf, Store};

/// Most templates in a gift pack.
pub const MAX_GIFT_TEMPLATES: usize = 16;

/// Transaction ids of gift-pack issues start with this; callers may not
/// use it. A gift's id is `gift:<user id>:<template>`: unique per user, so
/// a merge moves both users' gifts without a clash.
pub const GIFT_TXN_PREFIX: &str = "gift:";

/// Coupons issued with a user's first event of `kind`.
///
/// ```
/// use stickydb::GiftPack;
/// let pack = GiftPack::new("signup", ["WELCOME10", "FREESHIP"]);
/// assert_eq!(pack.templates.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GiftPack {
    /// The event kind that gives the pack.
    pub kind: String,
    /// The templates of its coupons.
    pub templates: Vec<String>,
}

impl GiftPack {
    /// A pack of `templates`' coupons for the first event of `kind`.
    pub fn new<'t>(kind: &str, templates: impl IntoIterator<Item = &'t str>) -> Self {
        Self {
            kind: kind.to_owned(),
            templates: templates.into_iter().map(str::to_owned).collect(),
        }
    }

    /// Checks the kind, the template ids and that each exists in `store`.
    pub(crate) fn validate(&self, store: &Store) -> Result<()> {
        crate::users::check_name(&self.kind, crate::kinds::MAX_KIND_BYTES)
            .map_err(|p| InputError::new("kind", p))?;
        InputError::check_count("templates", self.templates.len(), MAX_GIFT_TEMPLATES)?;
        for (i, t) in self.templates.iter().enumerate() {
            check_template_id(t).map_err(|e| e.at(i))?;
            if self.templates[..i].contains(t) {
                let p = Problem::Repeated { name: t.clone() };
                return Err(InputError::new("templates", p).at(i).into());
            }
            if super::read::template(store, t)?.is_none() {
                return Err(CouponError::UnknownTemplate {
                    template: t.clone(),
                }
                .into());
            }
        }
        Ok(())
    }
}

/// The transaction id of `user_id`'s gift of `template`.
pub(crate) fn gift_txn(user_id: u32, template: &str) -> String {
    format!("{GIFT_TXN_PREFIX}{user_id}:{template}")
}

/// The gift pack in force (`None`: none).
pub(crate) fn load(store: &Store) -> Result<Option<GiftPack>> {
    store.get(Cf::Meta, meta::COUPON_GIFT_PACK)
}

/// Puts `pack` (or its removal) into `batch`.
pub(crate) fn save(batch: &mut Batch, pack: Option<&GiftPack>) -> Result<()> {
    match pack {
        Some(p) => batch.put(Cf::Meta, meta::COUPON_GIFT_PACK, codec::encode(p)?),
        None => batch.delete(Cf::Meta, meta::COUPON_GIFT_PACK),
    }
    Ok(())
}

/// Whether a refusal of a gift's issue leaves the event's write alone: the
/// template's stock is out, its end passed, the user holds its limit.
pub(crate) fn skipped(e: &Error) -> bool {
    matches!(
        e,
        Error::Coupon(
            CouponError::OutOfStock { .. }
                | CouponError::TemplateEnded { .. }
                | CouponError::PerUserLimit { .. }
        ) | Error::LimitReached {
            what: super::work::USER_COUPONS,
            ..
        }
    )
}
