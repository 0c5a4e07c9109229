//! Feature definitions and tag rules as data (SPEC §3b): their types,
//! limits and validation. A definition says which events it reads (kinds,
//! property filters), what it computes (the operator) and over which span
//! (the window); a rule says which tag a user holds while a condition over
//! features holds.

use serde::{Deserialize, Serialize};

use super::cond::{self, Cond};
use crate::error::{InputError, Problem, Result};
use crate::timeline::PropValue;

/// Most definitions one store holds.
pub const MAX_DEFINITIONS: usize = 256;
/// Most tag rules one store holds.
pub const MAX_RULES: usize = 256;
/// Longest definition name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Most kinds one definition reads.
pub const MAX_DEF_KINDS: usize = 16;
/// Most property filters of one definition.
pub const MAX_FILTERS: usize = 8;
/// Largest `k` of `last_k` and `top_k`.
pub const MAX_K: u32 = 100;
/// Default cap of a keyed map's keys and of a distinct count's values.
pub const DEFAULT_CAP: u32 = 256;
/// Largest cap.
pub const MAX_CAP: u32 = 4_096;
/// Largest `n` of a last-N-events window.
pub const MAX_LAST_EVENTS: u32 = 1_000;
/// Longest sliding window, in milliseconds (10 years of days).
pub const MAX_WINDOW_MS: i64 = 3_660 * 86_400_000;
/// Longest tag a rule writes, in bytes (a keyed rule's key included).
pub const MAX_TAG_BYTES: usize = 128;
/// Longest condition, in bytes.
pub const MAX_CONDITION_BYTES: usize = 1_024;

/// What a definition computes over the events it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// How many events.
    Count,
    /// The sum of `field` (`amount` or a numeric property).
    Sum,
    /// The smallest `field`.
    Min,
    /// The largest `field`.
    Max,
    /// The mean of `field`.
    Avg,
    /// How many distinct values `field` took (exact up to the cap).
    Distinct,
    /// The instant of the oldest event, UTC milliseconds.
    FirstAt,
    /// The instant of the newest event, UTC milliseconds.
    LastAt,
    /// `field` of the newest event.
    LastValue,
    /// `field` of the `k` newest events, newest first.
    LastK,
    /// The `k` values of `key` seen most often, with their counts.
    TopK,
}

impl Op {
    /// The operator's name in definitions (`top_k`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Count => "count",
            Op::Sum => "sum",
            Op::Min => "min",
            Op::Max => "max",
            Op::Avg => "avg",
            Op::Distinct => "distinct",
            Op::FirstAt => "first_at",
            Op::LastAt => "last_at",
            Op::LastValue => "last_value",
            Op::LastK => "last_k",
            Op::TopK => "top_k",
        }
    }

    /// The operator named `name`.
    pub fn parse(name: &str) -> Option<Op> {
        [
            Op::Count,
            Op::Sum,
            Op::Min,
            Op::Max,
            Op::Avg,
            Op::Distinct,
            Op::FirstAt,
            Op::LastAt,
            Op::LastValue,
            Op::LastK,
            Op::TopK,
        ]
        .into_iter()
        .find(|op| op.name() == name)
    }

    /// Whether the value is a number a condition can compare.
    pub fn is_numeric(self) -> bool {
        !matches!(self, Op::LastValue | Op::LastK | Op::TopK)
    }

    fn needs_field(self) -> bool {
        matches!(
            self,
            Op::Sum | Op::Min | Op::Max | Op::Avg | Op::Distinct | Op::LastValue | Op::LastK
        )
    }
}

/// The span of events a feature covers at a read instant `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Window {
    /// Events with instant in `(t − ms, t]`.
    Sliding {
        /// The window's length, milliseconds.
        ms: i64,
    },
    /// Every event up to `t`.
    Lifetime,
    /// Events of `t`'s local day up to `t`.
    Day,
    /// Events of `t`'s local week (Monday first) up to `t`.
    Week,
    /// Events of `t`'s local month up to `t`.
    Month,
    /// The `n` newest events up to `t`.
    LastEvents {
        /// How many.
        n: u32,
    },
}

impl Window {
    /// Parses `14d`, `36h`, `90m`, `30s`, `500ms`, `lifetime`, `day`,
    /// `week`, `month` or `last:N`.
    pub fn parse(text: &str) -> Result<Window, Problem> {
        let bad = |reason: &str| Problem::Unparsable {
            reason: format!("window {text:?}: {reason}"),
        };
        match text {
            "lifetime" => return Ok(Window::Lifetime),
            "day" => return Ok(Window::Day),
            "week" => return Ok(Window::Week),
            "month" => return Ok(Window::Month),
            _ => {}
        }
        if let Some(n) = text.strip_prefix("last:") {
            let n: u32 = n.parse().map_err(|_| bad("last:N needs a count"))?;
            return Ok(Window::LastEvents { n });
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| bad("a length needs a unit (d, h, m, s, ms)"))?;
        let (digits, unit) = text.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad("no length"))?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return Err(bad("unknown unit (d, h, m, s, ms)")),
        };
        Ok(Window::Sliding {
            ms: n.saturating_mul(unit_ms),
        })
    }

    /// The window as definitions spell it.
    pub fn text(self) -> String {
        match self {
            Window::Sliding { ms } if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
            Window::Sliding { ms } if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
            Window::Sliding { ms } if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
            Window::Sliding { ms } => format!("{ms}ms"),
            Window::Lifetime => "lifetime".into(),
            Window::Day => "day".into(),
            Window::Week => "week".into(),
            Window::Month => "month".into(),
            Window::LastEvents { n } => format!("last:{n}"),
        }
    }
}

/// One feature definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Definition {
    /// The feature's name (`[a-z0-9_]`, at most 64 bytes, unique).
    pub name: String,
    /// The event kinds it reads.
    pub kinds: Vec<String>,
    /// Property equality filters: an event is read only if it has each.
    #[serde(with = "stored_props")]
    pub filter: Vec<(String, PropValue)>,
    /// What it computes.
    pub op: Op,
    /// The value read from each event: `amount` or a property name.
    pub field: Option<String>,
    /// A property whose values key a map of results (one per value).
    pub key: Option<String>,
    /// `k` of `last_k` and `top_k`.
    pub k: u32,
    /// Most keys of a keyed map, or values of a distinct count.
    pub cap: u32,
    /// The span it covers.
    pub window: Window,
}

impl Definition {
    /// A definition of `op` over events of `kinds` in `window`, with no
    /// filter, field or key (add them with the `with_` methods).
    ///
    /// ```
    /// use stickydb::features::{Definition, Op, Window};
    /// let d = Definition::new("views_shoes_14d", ["view"], Op::Count, Window::parse("14d")?)
    ///     .with_filter("category", stickydb::PropValue::Str("shoes".into()));
    /// assert_eq!(d.window, Window::Sliding { ms: 14 * 86_400_000 });
    /// # Ok::<(), stickydb::Problem>(())
    /// ```
    pub fn new<K: Into<String>>(
        name: impl Into<String>,
        kinds: impl IntoIterator<Item = K>,
        op: Op,
        window: Window,
    ) -> Self {
        Definition {
            name: name.into(),
            kinds: kinds.into_iter().map(Into::into).collect(),
            filter: Vec::new(),
            op,
            field: None,
            key: None,
            k: 0,
            cap: DEFAULT_CAP,
            window,
        }
    }

    /// Adds a property filter.
    pub fn with_filter(mut self, property: impl Into<String>, value: PropValue) -> Self {
        self.filter.push((property.into(), value));
        self
    }

    /// Sets the field read from each event (`amount` or a property).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Keys the result by a property's values.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets `k` (of `last_k`, `top_k`).
    pub fn with_k(mut self, k: u32) -> Self {
        self.k = k;
        self
    }

    /// Sets the cap of keys (keyed maps, `top_k`) or values (`distinct`).
    pub fn with_cap(mut self, cap: u32) -> Self {
        self.cap = cap;
        self
    }

    /// Whether the result is a map per key value (`top_k` keeps one too).
    pub fn is_keyed(&self) -> bool {
        self.key.is_some() && self.op != Op::TopK
    }

    fn validate(&self) -> Result<(), InputError> {
        let invalid = |field: &'static str, reason: String| {
            Err(InputError::new(field, Problem::Invalid { reason }))
        };
        check_name("definition.name", &self.name)?;
        InputError::check_count("definition.kinds", self.kinds.len(), MAX_DEF_KINDS)?;
        if self.kinds.is_empty() {
            return Err(InputError::new("definition.kinds", Problem::Empty));
        }
        for kind in &self.kinds {
            crate::users::check_name(kind, crate::kinds::MAX_KIND_BYTES)
                .map_err(|p| InputError::new("definition.kinds", p))?;
        }
        InputError::check_count("definition.where", self.filter.len(), MAX_FILTERS)?;
        let needs_field = self.op.needs_field();
        if needs_field != self.field.is_some() {
            let reason = match needs_field {
                true => format!("op {} needs a field", self.op.name()),
                false => format!("op {} takes no field", self.op.name()),
            };
            return invalid("definition.field", reason);
        }
        if self.op == Op::TopK && self.key.is_none() {
            return invalid("definition.key", "op top_k needs a key".into());
        }
        if self.op == Op::LastK && self.key.is_some() {
            return invalid("definition.key", "op last_k takes no key".into());
        }
        let wants_k = matches!(self.op, Op::LastK | Op::TopK);
        if wants_k && !(1..=MAX_K).contains(&self.k) {
            return Err(range("definition.k", self.k.into(), 1, MAX_K.into()));
        }
        if !wants_k && self.k != 0 {
            return invalid("definition.k", format!("op {} takes no k", self.op.name()));
        }
        if !(1..=MAX_CAP).contains(&self.cap) {
            return Err(range("definition.cap", self.cap.into(), 1, MAX_CAP.into()));
        }
        match self.window {
            Window::Sliding { ms } if !(1..=MAX_WINDOW_MS).contains(&ms) => {
                Err(range("definition.window", ms, 1, MAX_WINDOW_MS))
            }
            Window::LastEvents { n } if !(1..=MAX_LAST_EVENTS).contains(&n) => Err(range(
                "definition.window",
                n.into(),
                1,
                MAX_LAST_EVENTS.into(),
            )),
            _ => Ok(()),
        }
    }
}

fn range(field: &'static str, value: i64, min: i64, max: i64) -> InputError {
    InputError::new(field, Problem::OutOfRange { value, min, max })
}

fn check_name(field: &'static str, name: &str) -> Result<(), InputError> {
    if name.is_empty() {
        return Err(InputError::new(field, Problem::Empty));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(InputError::new(
            field,
            Problem::TooLong {
                len_bytes: name.len(),
                max_bytes: MAX_NAME_BYTES,
            },
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(InputError::new(
            field,
            Problem::Invalid {
                reason: format!("{name:?}: names are lowercase letters, digits and _"),
            },
        ));
    }
    Ok(())
}

/// A tag a user holds while a condition over its features holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TagRule {
    /// The tag; with `{key}` in it, one tag per key value of the keyed
    /// features the condition reads as `NAME[key]`.
    pub tag: String,
    /// The condition: comparisons `NAME OP NUMBER` (`>= > <= < == !=`)
    /// combined with `and`, `or`, `not` and parentheses.
    pub when: String,
}

impl TagRule {
    /// The rule: `tag` while `when` holds.
    ///
    /// ```
    /// let rule = stickydb::features::TagRule::new("interest:shoes", "views_shoes_14d >= 3");
    /// assert_eq!(rule.tag, "interest:shoes");
    /// ```
    pub fn new(tag: impl Into<String>, when: impl Into<String>) -> Self {
        TagRule {
            tag: tag.into(),
            when: when.into(),
        }
    }

    /// Whether the rule can give `tag` (a keyed rule: any key value).
    pub(crate) fn could_give(&self, tag: &str) -> bool {
        match self.tag.split_once("{key}") {
            None => self.tag == tag,
            Some((head, tail)) => {
                tag.len() >= head.len() + tail.len() && tag.starts_with(head) && tag.ends_with(tail)
            }
        }
    }

    /// Whether the rule writes one tag per key value.
    pub fn is_keyed(&self) -> bool {
        self.tag.contains("{key}")
    }
}

/// A store's definitions and rules, as one versioned value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub version: u64,
    pub defs: Vec<Definition>,
    pub rules: Vec<TagRule>,
}

/// Checks definitions and rules together; returns each rule's condition.
pub(crate) fn validate(defs: &[Definition], rules: &[TagRule]) -> Result<Vec<Cond>> {
    InputError::check_count("definitions", defs.len(), MAX_DEFINITIONS)?;
    InputError::check_count("rules", rules.len(), MAX_RULES)?;
    let mut names = rustc_hash::FxHashSet::default();
    for (i, d) in defs.iter().enumerate() {
        d.validate().map_err(|e| e.at(i))?;
        if !names.insert(d.name.as_str()) {
            let p = Problem::Repeated {
                name: d.name.clone(),
            };
            return Err(InputError::new("definition.name", p).at(i).into());
        }
    }
    let mut tags = rustc_hash::FxHashSet::default();
    let mut conds = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        check_tag(&r.tag).map_err(|e| e.at(i))?;
        if !tags.insert(r.tag.as_str()) {
            let p = Problem::Repeated {
                name: r.tag.clone(),
            };
            return Err(InputError::new("rule.tag", p).at(i).into());
        }
        let cond = cond::parse(&r.when, defs, r.is_keyed())
            .map_err(|p| InputError::new("rule.when", p).at(i))?;
        conds.push(cond);
    }
    Ok(conds)
}

fn check_tag(tag: &str) -> Result<(), InputError> {
    crate::users::check_name(tag, MAX_TAG_BYTES).map_err(|p| InputError::new("rule.tag", p))?;
    if tag.matches("{key}").count() > 1 {
        let reason = format!("{tag:?}: at most one {{key}}");
        return Err(InputError::new("rule.tag", Problem::Invalid { reason }));
    }
    Ok(())
}

/// Property values are stored tagged (an untagged enum does not round-trip
/// through bincode).
mod stored_props {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::timeline::{PropValue, StoredProp};

    pub fn serialize<S: Serializer>(v: &[(String, PropValue)], s: S) -> Result<S::Ok, S::Error> {
        let stored: Vec<(&str, StoredProp)> =
            v.iter().map(|(k, p)| (k.as_str(), p.into())).collect();
        stored.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, PropValue)>, D::Error> {
        let stored: Vec<(String, StoredProp)> = Vec::deserialize(d)?;
        Ok(stored.into_iter().map(|(k, p)| (k, p.into())).collect())
    }
}
