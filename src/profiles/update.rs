//! [`ProfileUpdate`]: one user's attribute and tag changes, checked
//! against the bounds before anything is written.

use std::collections::HashSet;

use super::{
    AttrValue, Tag, TagSource, MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_DATE_DAY,
    MAX_TAG_BYTES, MAX_UPDATE_OPS, MIN_DATE_DAY,
};
use crate::error::{InputError, Problem};
use crate::{time, users};

/// A set of changes to one user's profile, applied atomically.
///
/// ```
/// use stickydb::{ProfileUpdate, TagSource};
/// let update = ProfileUpdate::new()
///     .set("region", "EU")
///     .set("age", 31)
///     .set_sensitive("phone", "+49 30 1234")
///     .unset("occupation")
///     .tag("vip", TagSource::Manual, 1_700_000_000_000, None)
///     .untag("trial");
/// assert_eq!(update.len(), 6);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileUpdate {
    pub(super) set: Vec<(String, AttrValue, bool)>,
    pub(super) unset: Vec<String>,
    pub(super) tags: Vec<(String, Tag)>,
    pub(super) untags: Vec<String>,
}

impl ProfileUpdate {
    /// An empty update.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets attribute `name`.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.set.push((name.into(), value.into(), false));
        self
    }

    /// Sets attribute `name` and marks it sensitive: it is returned only to
    /// callers that ask for sensitive attributes.
    pub fn set_sensitive(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.set.push((name.into(), value.into(), true));
        self
    }

    /// Removes attribute `name` (no-op when absent).
    pub fn unset(mut self, name: impl Into<String>) -> Self {
        self.unset.push(name.into());
        self
    }

    /// Gives the user tag `name` (or refreshes it).
    pub fn tag(
        mut self,
        name: impl Into<String>,
        source: TagSource,
        updated_at_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Self {
        self.tags.push((
            name.into(),
            Tag {
                source,
                updated_at_ms,
                expires_at_ms,
            },
        ));
        self
    }

    /// Takes tag `name` from the user (no-op when absent).
    pub fn untag(mut self, name: impl Into<String>) -> Self {
        self.untags.push(name.into());
        self
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.set.len() + self.unset.len() + self.tags.len() + self.untags.len()
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `later` as if applied after this update: where both change
    /// one attribute or tag, `later`'s change wins.
    pub(crate) fn then(&mut self, later: ProfileUpdate) {
        let attrs: HashSet<&str> = later
            .set
            .iter()
            .map(|(n, _, _)| n.as_str())
            .chain(later.unset.iter().map(String::as_str))
            .collect();
        self.set.retain(|(n, _, _)| !attrs.contains(n.as_str()));
        self.unset.retain(|n| !attrs.contains(n.as_str()));
        let tags: HashSet<&str> = later
            .tags
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(later.untags.iter().map(String::as_str))
            .collect();
        self.tags.retain(|(n, _)| !tags.contains(n.as_str()));
        self.untags.retain(|n| !tags.contains(n.as_str()));
        self.set.extend(later.set);
        self.unset.extend(later.unset);
        self.tags.extend(later.tags);
        self.untags.extend(later.untags);
    }

    /// What this update does to the date attribute `name`: `None` when it
    /// leaves it alone, `Some(None)` when it removes it (or sets a value
    /// that is not a date), `Some(Some(day))` when it sets a date.
    pub(crate) fn date_change(&self, name: &str) -> Option<Option<i32>> {
        if let Some((_, v, _)) = self.set.iter().rev().find(|(n, _, _)| n == name) {
            return Some(match v {
                AttrValue::Date(day) => Some(*day),
                _ => None,
            });
        }
        self.unset.iter().any(|n| n == name).then_some(None)
    }

    pub(crate) fn creates(&self) -> bool {
        !self.set.is_empty() || !self.tags.is_empty()
    }

    /// Checks every change against the bounds above.
    pub fn validate(&self) -> Result<(), InputError> {
        let err = InputError::new;
        InputError::check_count("profile_update", self.len(), MAX_UPDATE_OPS)?;
        let mut attr_names = HashSet::new();
        for (i, (name, value, _)) in self.set.iter().enumerate() {
            users::check_name(name, MAX_ATTRIBUTE_NAME_BYTES)
                .map_err(|p| err("attribute.name", p).at(i))?;
            check_attr_value(value).map_err(|p| err("attribute.value", p).at(i))?;
            if !attr_names.insert(name.as_str()) {
                return Err(err("attribute.name", Problem::Repeated { name: name.clone() }).at(i));
            }
        }
        for (i, name) in self.unset.iter().enumerate() {
            users::check_name(name, MAX_ATTRIBUTE_NAME_BYTES)
                .map_err(|p| err("unset.name", p).at(i))?;
            if !attr_names.insert(name.as_str()) {
                return Err(err("unset.name", Problem::Repeated { name: name.clone() }).at(i));
            }
        }
        let mut tag_names = HashSet::new();
        for (i, (name, tag)) in self.tags.iter().enumerate() {
            users::check_name(name, MAX_TAG_BYTES).map_err(|p| err("tag.name", p).at(i))?;
            time::check_ts(tag.updated_at_ms).map_err(|p| err("tag.updated_at_ms", p).at(i))?;
            if let Some(e) = tag.expires_at_ms {
                time::check_ts(e).map_err(|p| err("tag.expires_at_ms", p).at(i))?;
            }
            if !tag_names.insert(name.as_str()) {
                return Err(err("tag.name", Problem::Repeated { name: name.clone() }).at(i));
            }
        }
        for (i, name) in self.untags.iter().enumerate() {
            users::check_name(name, MAX_TAG_BYTES).map_err(|p| err("untag.name", p).at(i))?;
            if !tag_names.insert(name.as_str()) {
                return Err(err("untag.name", Problem::Repeated { name: name.clone() }).at(i));
            }
        }
        Ok(())
    }
}

fn check_attr_value(v: &AttrValue) -> Result<(), Problem> {
    match v {
        AttrValue::Str(s) if s.len() > MAX_ATTRIBUTE_VALUE_BYTES => Err(Problem::TooLong {
            len_bytes: s.len(),
            max_bytes: MAX_ATTRIBUTE_VALUE_BYTES,
        }),
        AttrValue::Float(f) if !f.is_finite() => Err(Problem::NotFinite),
        AttrValue::Timestamp(t) => time::check_ts(*t),
        AttrValue::Date(d) if !(MIN_DATE_DAY..=MAX_DATE_DAY).contains(d) => {
            Err(Problem::OutOfRange {
                value: i64::from(*d),
                min: i64::from(MIN_DATE_DAY),
                max: i64::from(MAX_DATE_DAY),
            })
        }
        _ => Ok(()),
    }
}
