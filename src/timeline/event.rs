//! Event types and their validation (SPEC §2).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem};
use crate::time;
use crate::users;

/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest accepted `session_id`, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 128;
/// Longest accepted custom kind name, in bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// Most properties on one event.
pub const MAX_PROPERTIES: usize = 64;
/// Largest encoded properties map, in bytes.
pub const MAX_PROPERTIES_BYTES: usize = 4096;
/// Longest property key, in bytes.
pub const MAX_PROPERTY_KEY_BYTES: usize = 64;
/// Largest accepted amount, in minor units: 10^15 keeps every sum over a
/// store's lifetime far inside i64.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

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

const KNOWN: [(EventKind, &str, u32); 10] = [
    (EventKind::View, "view", 1),
    (EventKind::Search, "search", 2),
    (EventKind::Favorite, "favorite", 3),
    (EventKind::AddToCart, "add_to_cart", 4),
    (EventKind::Purchase, "purchase", 5),
    (EventKind::Refund, "refund", 6),
    (EventKind::SignIn, "sign_in", 7),
    (EventKind::Share, "share", 8),
    (EventKind::Review, "review", 9),
    (EventKind::Signup, "signup", 10),
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

/// A property value on an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// A string.
    Str(String),
}

/// One behaviour record, as the caller submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// External user id.
    pub user: String,
    /// What happened.
    pub kind: EventKind,
    /// When, in ms since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// Caller's idempotency key: a second event with the same `(user, event_id)`
    /// changes nothing.
    pub event_id: Option<String>,
    /// The session the event belongs to.
    pub session_id: Option<String>,
    /// Money involved, in minor currency units (purchase, refund).
    pub amount_minor: Option<i64>,
    /// A small bounded map of extra fields.
    pub properties: BTreeMap<String, PropValue>,
}

impl Event {
    /// An event with only the required fields.
    pub fn new(user: impl Into<String>, kind: impl Into<EventKind>, ts_ms: i64) -> Self {
        Self {
            user: user.into(),
            kind: kind.into(),
            ts_ms,
            event_id: None,
            session_id: None,
            amount_minor: None,
            properties: BTreeMap::new(),
        }
    }

    /// Sets the idempotency key.
    pub fn with_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// Sets the session id.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the amount in minor units.
    pub fn with_amount(mut self, amount_minor: i64) -> Self {
        self.amount_minor = Some(amount_minor);
        self
    }

    /// Adds a property.
    pub fn with_property(mut self, key: impl Into<String>, value: PropValue) -> Self {
        self.properties.insert(key.into(), value);
        self
    }

    /// Checks every field against SPEC §2's bounds.
    pub fn validate(&self) -> Result<(), InputError> {
        let err = InputError::new;
        users::check_user(&self.user).map_err(|p| err("event.user", p))?;
        if let EventKind::Custom(name) = &self.kind {
            users::check_name(name, MAX_KIND_BYTES).map_err(|p| err("event.kind", p))?;
        }
        time::check_ts(self.ts_ms).map_err(|p| err("event.ts_ms", p))?;
        if let Some(id) = &self.event_id {
            users::check_name(id, MAX_EVENT_ID_BYTES).map_err(|p| err("event.event_id", p))?;
        }
        if let Some(id) = &self.session_id {
            users::check_name(id, MAX_SESSION_ID_BYTES).map_err(|p| err("event.session_id", p))?;
        }
        if let Some(a) = self.amount_minor {
            if !(0..=MAX_AMOUNT_MINOR).contains(&a) {
                return Err(err(
                    "event.amount_minor",
                    Problem::OutOfRange {
                        value: a,
                        min: 0,
                        max: MAX_AMOUNT_MINOR,
                    },
                ));
            }
        }
        if self.properties.len() > MAX_PROPERTIES {
            return Err(err(
                "event.properties",
                Problem::TooMany {
                    count: self.properties.len(),
                    max: MAX_PROPERTIES,
                },
            ));
        }
        let mut encoded_bytes = 0usize;
        for (k, v) in &self.properties {
            users::check_name(k, MAX_PROPERTY_KEY_BYTES)
                .map_err(|p| err("event.properties.key", p))?;
            encoded_bytes += k.len() + 2;
            encoded_bytes += match v {
                PropValue::Bool(_) => 1,
                PropValue::Int(_) => 9,
                PropValue::Float(f) => {
                    if !f.is_finite() {
                        return Err(err("event.properties.value", Problem::NotFinite));
                    }
                    9
                }
                PropValue::Str(s) => s.len() + 2,
            };
        }
        if encoded_bytes > MAX_PROPERTIES_BYTES {
            return Err(err(
                "event.properties",
                Problem::TooLong {
                    len_bytes: encoded_bytes,
                    max_bytes: MAX_PROPERTIES_BYTES,
                },
            ));
        }
        Ok(())
    }
}

/// An event as stored: the caller's fields plus where it sits in the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// Its per-user arrival sequence number.
    pub seq: u32,
}

/// What `record` did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The event was written.
    Recorded {
        /// Internal id of the event's user.
        user_id: u32,
        /// Per-user sequence number the event got.
        seq: u32,
    },
    /// An event with the same `(user, event_id)` was recorded before (or
    /// earlier in the same batch); nothing was written for this one.
    Duplicate,
}

/// The stored form of an event's value (its key holds user, time and seq).
/// Field order is the wire order: append only, behind a new format byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EventValue {
    pub kind_id: u32,
    pub event_id: Option<String>,
    pub session_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub properties: Vec<(String, StoredProp)>,
}

/// Property values are stored tagged: an untagged enum does not round-trip
/// through bincode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StoredProp {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl From<&PropValue> for StoredProp {
    fn from(v: &PropValue) -> Self {
        match v {
            PropValue::Bool(b) => StoredProp::Bool(*b),
            PropValue::Int(i) => StoredProp::Int(*i),
            PropValue::Float(f) => StoredProp::Float(*f),
            PropValue::Str(s) => StoredProp::Str(s.clone()),
        }
    }
}

impl From<StoredProp> for PropValue {
    fn from(v: StoredProp) -> Self {
        match v {
            StoredProp::Bool(b) => PropValue::Bool(b),
            StoredProp::Int(i) => PropValue::Int(i),
            StoredProp::Float(f) => PropValue::Float(f),
            StoredProp::Str(s) => PropValue::Str(s),
        }
    }
}
