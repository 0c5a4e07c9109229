//! Event kinds (SPEC §2): the known kinds with their fixed ids, custom kinds
//! registered on first use, and the registry that maps custom names to ids.
//!
//! Owns the kind vocabulary every other module speaks (the timeline stores
//! kind ids, the aggregation engine keys sets and counters by them, earning
//! rules and segments name kinds) and the registry's entries in `meta`. Must
//! not touch events, aggregates or the ledger.

mod registry;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use registry::MAX_CUSTOM_KINDS;
pub(crate) use registry::{KindRegistry, Reservation};

/// The pseudo-kind of an earning rule that credits a **sharer** when a
/// first purchase is attributed to it (SPEC §4b, docs/social.md): no event
/// may carry this kind.
pub const REFERRAL_KIND: &str = "referral:first_purchase";

/// The pseudo-kind of an earning rule that rewards a user's **first
/// purchase**, once per user (docs/ledger.md#first-order-and-campaign-rewards):
/// no event may carry this kind.
pub const FIRST_ORDER_KIND: &str = "reward:first_order";

/// The pseudo-kind of an earning rule that rewards a user's first event
/// carrying the property [`CAMPAIGN_PROPERTY`], once per user and campaign:
/// no event may carry this kind.
pub const CAMPAIGN_KIND: &str = "reward:campaign";

/// The event property that names a campaign.
pub const CAMPAIGN_PROPERTY: &str = "campaign";

/// Whether no event may carry `name` (the earning rules' pseudo-kinds).
pub(crate) fn is_reserved(name: &str) -> bool {
    matches!(name, REFERRAL_KIND | FIRST_ORDER_KIND | CAMPAIGN_KIND)
        || name.starts_with(SIGN_IN_STREAK_KIND_PREFIX)
        || name.starts_with(BIRTHDAY_KIND_PREFIX)
}

/// The prefix of the pseudo-kind of an earning rule that rewards every
/// block of N consecutive local days with a `sign_in`
/// (`reward:sign_in_streak:7`): no event may carry such a kind.
pub const SIGN_IN_STREAK_KIND_PREFIX: &str = "reward:sign_in_streak:";

/// The prefix of the pseudo-kind of an earning rule that rewards a user's
/// first activity event in its birthday window of W days, once a year
/// (`reward:birthday:7`, docs/ledger.md#birthday-rewards): no event may
/// carry such a kind.
pub const BIRTHDAY_KIND_PREFIX: &str = "reward:birthday:";

/// Longest accepted custom kind name, in bytes.
pub const MAX_KIND_BYTES: usize = 64;

/// What a user did. Known kinds have fixed ids; any other name is a custom
/// kind, registered on first use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum EventKind {
    /// Viewed or browsed a page or item.
    View,
    /// Searched.
    Search,
    /// Marked an item as a favourite.
    Favorite,
    /// Added an item to the cart.
    AddToCart,
    /// Placed an order.
    Purchase,
    /// Got money back for an order.
    Refund,
    /// Signed in.
    SignIn,
    /// Shared an item.
    Share,
    /// Wrote a review.
    Review,
    /// Created an account.
    Signup,
    /// Any other kind, by name.
    Custom(String),
}

/// The fixed ids of the known kinds: part of the on-disk format (event
/// values, aggregate keys and per-user state hold them). Never renumber.
pub mod ids {
    /// Pseudo kind "any activity event" in day sets, first-day sets and
    /// rolling counters; real kind ids start at 1.
    pub const ACTIVITY: u32 = 0;
    /// `view`.
    pub const VIEW: u32 = 1;
    /// `search`.
    pub const SEARCH: u32 = 2;
    /// `favorite`.
    pub const FAVORITE: u32 = 3;
    /// `add_to_cart`.
    pub const ADD_TO_CART: u32 = 4;
    /// `purchase`: its amount is GMV and spend.
    pub const PURCHASE: u32 = 5;
    /// `refund`: its amount is subtracted from spend.
    pub const REFUND: u32 = 6;
    /// `sign_in`: sign-in streaks.
    pub const SIGN_IN: u32 = 7;
    /// `share`.
    pub const SHARE: u32 = 8;
    /// `review`.
    pub const REVIEW: u32 = 9;
    /// `signup`.
    pub const SIGNUP: u32 = 10;
}

const KNOWN: [(EventKind, &str, u32); 10] = [
    (EventKind::View, "view", ids::VIEW),
    (EventKind::Search, "search", ids::SEARCH),
    (EventKind::Favorite, "favorite", ids::FAVORITE),
    (EventKind::AddToCart, "add_to_cart", ids::ADD_TO_CART),
    (EventKind::Purchase, "purchase", ids::PURCHASE),
    (EventKind::Refund, "refund", ids::REFUND),
    (EventKind::SignIn, "sign_in", ids::SIGN_IN),
    (EventKind::Share, "share", ids::SHARE),
    (EventKind::Review, "review", ids::REVIEW),
    (EventKind::Signup, "signup", ids::SIGNUP),
];

/// First id handed to a custom kind; ids below are reserved for known kinds.
pub const FIRST_CUSTOM_KIND_ID: u32 = 1000;

impl EventKind {
    /// The kind's name as stored and printed.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Custom(name) => name,
            known => KNOWN
                .iter()
                .find(|(k, _, _)| k == known)
                .map(|(_, name, _)| *name)
                .unwrap_or("unknown"),
        }
    }

    /// The kind named `name` (known or custom). Never fails; validity of a
    /// custom name is checked when an event is recorded.
    pub fn from_name(name: &str) -> Self {
        KNOWN
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| k.clone())
            .unwrap_or_else(|| EventKind::Custom(name.to_owned()))
    }

    /// The fixed id of a known kind; `None` for custom kinds.
    pub fn known_id(&self) -> Option<u32> {
        KNOWN
            .iter()
            .find(|(k, _, _)| k == self)
            .map(|(_, _, id)| *id)
    }

    /// The known kind with fixed id `id`.
    pub fn from_known_id(id: u32) -> Option<Self> {
        KNOWN
            .iter()
            .find(|(_, _, i)| *i == id)
            .map(|(k, _, _)| k.clone())
    }

    /// Every known kind.
    pub fn known() -> impl Iterator<Item = EventKind> {
        KNOWN.iter().map(|(k, _, _)| k.clone())
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for EventKind {
    fn from(s: String) -> Self {
        EventKind::from_name(&s)
    }
}

impl From<EventKind> for String {
    fn from(k: EventKind) -> Self {
        k.as_str().to_owned()
    }
}

impl From<&str> for EventKind {
    fn from(s: &str) -> Self {
        EventKind::from_name(s)
    }
}
