//! Event types and their validation (SPEC §2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem};
use crate::kinds::{EventKind, MAX_KIND_BYTES};
use crate::time;
use crate::users;

/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest accepted `session_id`, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 128;
/// Most properties on one event.
pub const MAX_PROPERTIES: usize = 64;
/// Largest encoded properties map, in bytes.
pub const MAX_PROPERTIES_BYTES: usize = 4096;
/// Longest property key, in bytes.
pub const MAX_PROPERTY_KEY_BYTES: usize = 64;
/// Longest accepted `share_id`, `via` or `group_id`, in bytes.
pub const MAX_SOCIAL_ID_BYTES: usize = 128;
/// Largest accepted group-buy target size (members, the opener included).
pub const MAX_GROUP_TARGET: u32 = 1000;
/// Kind name of a group-buy opening.
pub const GROUP_OPEN: &str = "group_open";
/// Kind name of joining a group buy.
pub const GROUP_JOIN: &str = "group_join";
/// Largest accepted amount, in minor units: 10^15 keeps every sum over a
/// store's lifetime far inside i64.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

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
    /// On a `share` event: the id of this share, which later events name in
    /// `via` (SPEC §4b, docs/social.md).
    pub share_id: Option<String>,
    /// The share id this event came through (a visit, signup or purchase
    /// through a friend's share).
    pub via: Option<String>,
    /// On `group_open` and `group_join`: the group buy.
    pub group_id: Option<String>,
    /// On `group_open`: members needed, the opener included.
    pub group_target: Option<u32>,
    /// On `group_open`: the instant (ms) by which the group must fill.
    pub group_deadline_ms: Option<i64>,
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
            share_id: None,
            via: None,
            group_id: None,
            group_target: None,
            group_deadline_ms: None,
        }
    }

    /// Sets the share id (on a `share` event).
    pub fn with_share_id(mut self, share_id: impl Into<String>) -> Self {
        self.share_id = Some(share_id.into());
        self
    }

    /// Sets the share id this event came through.
    pub fn with_via(mut self, share_id: impl Into<String>) -> Self {
        self.via = Some(share_id.into());
        self
    }

    /// Makes this (`group_open`) event open group `group_id` needing
    /// `target` members by `deadline_ms`.
    pub fn with_group_open(
        mut self,
        group_id: impl Into<String>,
        target: u32,
        deadline_ms: i64,
    ) -> Self {
        self.group_id = Some(group_id.into());
        self.group_target = Some(target);
        self.group_deadline_ms = Some(deadline_ms);
        self
    }

    /// Makes this (`group_join`) event join group `group_id`.
    pub fn with_group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// The social fields as stored, `None` when the event has none.
    pub(crate) fn social(&self) -> Option<SocialRef<'_>> {
        let s = SocialRef {
            share_id: self.share_id.as_deref(),
            via: self.via.as_deref(),
            group_id: self.group_id.as_deref(),
            group_target: self.group_target,
            group_deadline_ms: self.group_deadline_ms,
        };
        (s != SocialRef::default()).then_some(s)
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
            if crate::kinds::is_reserved(name) {
                return Err(err(
                    "event.kind",
                    Problem::Unparsable {
                        reason: format!("{name:?} is reserved for earning rules"),
                    },
                ));
            }
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
        self.validate_social()?;
        InputError::check_count("event.properties", self.properties.len(), MAX_PROPERTIES)?;
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

impl Event {
    /// The social fields: bounded ids, each only on the kinds it belongs to
    /// (a field where it means nothing is a mistake the caller hears of).
    fn validate_social(&self) -> Result<(), InputError> {
        let err = InputError::new;
        let kind = self.kind.as_str();
        let misplaced = |field: &'static str, on: &str| {
            err(
                field,
                Problem::Unparsable {
                    reason: format!("only a {on} event carries it, not {kind:?}"),
                },
            )
        };
        if let Some(id) = &self.share_id {
            if self.kind != EventKind::Share {
                return Err(misplaced("event.share_id", "share"));
            }
            users::check_name(id, MAX_SOCIAL_ID_BYTES).map_err(|p| err("event.share_id", p))?;
        }
        if let Some(id) = &self.via {
            users::check_name(id, MAX_SOCIAL_ID_BYTES).map_err(|p| err("event.via", p))?;
        }
        if let Some(id) = &self.group_id {
            if kind != GROUP_OPEN && kind != GROUP_JOIN {
                return Err(misplaced("event.group_id", "group_open or group_join"));
            }
            users::check_name(id, MAX_SOCIAL_ID_BYTES).map_err(|p| err("event.group_id", p))?;
        }
        let opening = kind == GROUP_OPEN && self.group_id.is_some();
        match (self.group_target, opening) {
            (Some(_), false) => {
                return Err(misplaced(
                    "event.group_target",
                    "group_open (with a group_id)",
                ))
            }
            (None, true) => return Err(err("event.group_target", Problem::Empty)),
            (Some(t), true) if !(2..=MAX_GROUP_TARGET).contains(&t) => {
                return Err(err(
                    "event.group_target",
                    Problem::OutOfRange {
                        value: i64::from(t),
                        min: 2,
                        max: i64::from(MAX_GROUP_TARGET),
                    },
                ))
            }
            _ => {}
        }
        match (self.group_deadline_ms, opening) {
            (Some(_), false) => {
                return Err(misplaced(
                    "event.group_deadline_ms",
                    "group_open (with a group_id)",
                ))
            }
            (None, true) => return Err(err("event.group_deadline_ms", Problem::Empty)),
            (Some(d), true) => {
                time::check_ts(d).map_err(|p| err("event.group_deadline_ms", p))?;
                if d <= self.ts_ms {
                    return Err(err(
                        "event.group_deadline_ms",
                        Problem::OutOfRange {
                            value: d,
                            min: self.ts_ms.saturating_add(1),
                            max: i64::MAX,
                        },
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The social fields of an event as stored (format byte 2, after the
/// event's other fields), borrowed for writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SocialRef<'a> {
    pub share_id: Option<&'a str>,
    pub via: Option<&'a str>,
    pub group_id: Option<&'a str>,
    pub group_target: Option<u32>,
    pub group_deadline_ms: Option<i64>,
}

/// [`SocialRef`] as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Social {
    pub share_id: Option<String>,
    pub via: Option<String>,
    pub group_id: Option<String>,
    pub group_target: Option<u32>,
    pub group_deadline_ms: Option<i64>,
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
#[non_exhaustive]
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
    /// Format byte 2 only: the social fields, encoded after the rest.
    #[serde(skip)]
    pub social: Option<Social>,
}

/// [`EventValue`] borrowed from an [`Event`], for writing: the same wire
/// form (bincode encodes `&str` as `String` and a sequence of pairs the same
/// from a map as from a `Vec`) without copying the event's strings.
#[derive(Serialize)]
pub(crate) struct EventValueRef<'a> {
    pub kind_id: u32,
    pub event_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub amount_minor: Option<i64>,
    #[serde(serialize_with = "props_as_pairs")]
    pub properties: &'a BTreeMap<String, PropValue>,
}

/// Writes a property map as the `Vec<(String, StoredProp)>` of
/// [`EventValue`]: a length, then (key, tagged value) pairs.
fn props_as_pairs<S: serde::Serializer>(
    props: &BTreeMap<String, PropValue>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(props.len()))?;
    for (k, v) in props {
        let tagged = match v {
            PropValue::Bool(b) => StoredPropRef::Bool(*b),
            PropValue::Int(i) => StoredPropRef::Int(*i),
            PropValue::Float(f) => StoredPropRef::Float(*f),
            PropValue::Str(t) => StoredPropRef::Str(t),
        };
        seq.serialize_element(&(k, tagged))?;
    }
    seq.end()
}

/// [`StoredProp`] borrowed; the same variants in the same order.
#[derive(Serialize)]
enum StoredPropRef<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_borrowed_form_encodes_like_the_stored_form() {
        let e = Event::new("u", "view", 5)
            .with_id("e1")
            .with_property("a", PropValue::Str("x".into()))
            .with_property("b", PropValue::Float(1.5))
            .with_property("c", PropValue::Int(-3))
            .with_property("d", PropValue::Bool(true));
        let owned = EventValue {
            kind_id: 7,
            event_id: Some("e1".into()),
            session_id: None,
            amount_minor: Some(9),
            social: None,
            properties: vec![
                ("a".into(), StoredProp::Str("x".into())),
                ("b".into(), StoredProp::Float(1.5)),
                ("c".into(), StoredProp::Int(-3)),
                ("d".into(), StoredProp::Bool(true)),
            ],
        };
        let borrowed = EventValueRef {
            kind_id: 7,
            event_id: e.event_id.as_deref(),
            session_id: None,
            amount_minor: Some(9),
            properties: &e.properties,
        };
        let a = crate::codec::encode(&owned).unwrap_or_default();
        assert_eq!(crate::codec::encode(&borrowed).unwrap_or_default(), a);
        assert!(!a.is_empty());
    }
}
