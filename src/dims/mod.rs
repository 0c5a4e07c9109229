//! Dimensions (SPEC §3, docs/metrics.md "Dimensions"): event properties
//! declared as data, kept per (dimension, value, local day) on every write —
//! the users who did each kind with the value, the events of each kind,
//! and purchase money — so activity and revenue break down by a value.
//!
//! Owns the declared set (one value in `meta`), the value registry (each
//! dimension's values ↔ dense ids, capped; past the cap a value folds into
//! `(other)`), the write-side deltas and their erasure (`write.rs`), the
//! breakdown query (`query.rs`), the backfill, drop and `verify`'s
//! re-derivation (`maintain.rs`), first and last touch (`touch.rs`) and
//! funnels whose steps filter on a value (`funnel.rs`). Must not touch
//! other modules' per-user state, the store-wide counters or other
//! modules' keys: its aggregates live under their own tags of the
//! `metrics` family (`keys::dims`), its touch records in `activity`
//! family 6.

mod funnel;
mod maintain;
mod query;
mod registry;
mod touch;
mod write;

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{InputError, Problem, Result};
use crate::keys::meta;
use crate::order::{Level, RwLock};
use crate::store::{Batch, Cf, Store};
use crate::timeline::{PropValue, StoredProp};

pub(crate) use funnel::funnel;
pub use funnel::FunnelStep;
pub(crate) use maintain::{backfill_page, drop_step, expected, forget_events, KindView};
pub(crate) use query::{breakdown, touched, users_with};
pub use query::{Breakdown, BreakdownQuery, BreakdownRow, MAX_BREAKDOWN_DAYS};
pub(crate) use registry::Records;
pub(crate) use registry::Registry;
pub(crate) use write::{DimEvent, DimWrites};

/// Most dimensions a store declares.
pub const MAX_DIMENSIONS: usize = 32;
/// Distinct values tracked per dimension unless declared otherwise.
pub const DEFAULT_MAX_VALUES: u32 = 1_000;
/// The most a declaration may ask for.
pub const MAX_VALUES_LIMIT: u32 = 100_000;
/// Longest value text tracked; a longer value folds into `(other)`.
pub const MAX_VALUE_BYTES: usize = 200;
/// The value every untracked value folds into.
pub const OTHER: &str = "(other)";
/// The id of [`OTHER`]; registered values count from 1.
pub(crate) const OTHER_ID: u32 = 0;
/// Longest dimension (property) name.
const MAX_NAME_BYTES: usize = 64;
/// Most kinds one dimension names.
const MAX_KINDS: usize = 64;

/// A dimension to declare: the event property it reads, the kinds it is
/// read from (none named: every kind) and how many distinct values it
/// tracks exactly.
///
/// ```
/// use stickydb::dims::Dimension;
/// let channel = Dimension::new("channel").kinds(["signup", "view"]).max_values(50);
/// assert_eq!(channel.name, "channel");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dimension {
    /// The event property, and the dimension's name.
    pub name: String,
    /// The kinds it is read from (empty: every kind).
    pub kinds: Vec<String>,
    /// Distinct values tracked exactly (default [`DEFAULT_MAX_VALUES`]).
    pub max_values: u32,
}

impl Dimension {
    /// The dimension of property `name`, read from every kind.
    pub fn new(name: impl Into<String>) -> Self {
        Dimension {
            name: name.into(),
            kinds: Vec::new(),
            max_values: DEFAULT_MAX_VALUES,
        }
    }

    /// Read only from `kinds`.
    pub fn kinds<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// Tracks at most `n` distinct values.
    pub fn max_values(mut self, n: u32) -> Self {
        self.max_values = n;
        self
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| -> crate::Error {
            InputError::new(field, Problem::Invalid { reason }).into()
        };
        if self.name.is_empty()
            || self.name.len() > MAX_NAME_BYTES
            || self.name.chars().any(char::is_control)
        {
            let reason =
                format!("a property name of 1 to {MAX_NAME_BYTES} bytes, no control characters");
            return Err(bad("name", reason));
        }
        if !(1..=MAX_VALUES_LIMIT).contains(&self.max_values) {
            return Err(bad("max_values", format!("1 to {MAX_VALUES_LIMIT}")));
        }
        if self.kinds.len() > MAX_KINDS
            || self
                .kinds
                .iter()
                .any(|k| k.is_empty() || k.len() > MAX_NAME_BYTES)
        {
            let reason = format!("at most {MAX_KINDS} kind names of 1 to {MAX_NAME_BYTES} bytes");
            return Err(bad("kinds", reason));
        }
        Ok(())
    }
}

/// A declared dimension as stored: its id names its keys and is never
/// reused, so a dropped dimension's leftovers can never be read as a new
/// one's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDim {
    pub id: u16,
    pub dim: Dimension,
}

impl StoredDim {
    /// Whether events of `kind` carry this dimension.
    pub fn reads(&self, kind: &str) -> bool {
        self.dim.kinds.is_empty() || self.dim.kinds.iter().any(|k| k == kind)
    }
}

/// The declared dimensions (one value in `meta`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimSet {
    version: u64,
    next_id: u16,
    dims: Vec<StoredDim>,
}

impl DimSet {
    /// The store's set (empty when none was declared).
    pub(crate) fn load(store: &Store) -> Result<DimSet> {
        Ok(store
            .get::<DimSet>(Cf::Meta, meta::DIM_SET)?
            .unwrap_or_default())
    }

    /// Puts the set into `batch`.
    pub(crate) fn save(&self, batch: &mut Batch) -> Result<()> {
        batch.put(Cf::Meta, meta::DIM_SET, codec::encode(self)?);
        Ok(())
    }

    /// This set with `d` added (refused: a second dimension of one name,
    /// past [`MAX_DIMENSIONS`], or ids run out); returns its id.
    pub(crate) fn with(&self, d: &Dimension) -> Result<(DimSet, u16)> {
        d.validate()?;
        let refuse = |reason: String| -> crate::Error {
            InputError::new("name", Problem::Invalid { reason }).into()
        };
        if self.get(&d.name).is_some() {
            return Err(refuse(format!(
                "dimension {:?} is declared already",
                d.name
            )));
        }
        if self.dims.len() >= MAX_DIMENSIONS {
            return Err(crate::Error::LimitReached {
                what: "dimensions",
                max: MAX_DIMENSIONS as u64,
            });
        }
        let id = self.next_id;
        let next_id = id.checked_add(1).ok_or(crate::Error::LimitReached {
            what: "dimensions declared over the store's life",
            max: u64::from(u16::MAX),
        })?;
        let mut next = self.clone();
        next.next_id = next_id;
        next.version += 1;
        next.dims.push(StoredDim { id, dim: d.clone() });
        Ok((next, id))
    }

    /// This set without dimension `name`; returns its id.
    pub(crate) fn without(&self, name: &str) -> Result<(DimSet, u16)> {
        let Some(id) = self.get(name).map(|d| d.id) else {
            let reason = format!("no dimension named {name:?}");
            return Err(InputError::new("name", Problem::Invalid { reason }).into());
        };
        let mut next = self.clone();
        next.version += 1;
        next.dims.retain(|d| d.id != id);
        Ok((next, id))
    }

    /// The declared dimensions, in declaration order.
    pub fn dimensions(&self) -> impl Iterator<Item = &Dimension> {
        self.dims.iter().map(|d| &d.dim)
    }

    /// Whether no dimension is declared.
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    pub(crate) fn stored(&self) -> &[StoredDim] {
        &self.dims
    }

    pub(crate) fn get(&self, name: &str) -> Option<&StoredDim> {
        self.dims.iter().find(|d| d.dim.name == name)
    }

    /// The set of dimension `id` alone (a backfill adds only its part).
    pub(crate) fn only(&self, id: u16) -> DimSet {
        DimSet {
            dims: self.dims.iter().filter(|d| d.id == id).cloned().collect(),
            ..self.clone()
        }
    }
}

/// The declared set and the value registry of an open store.
#[derive(Debug)]
pub(crate) struct DimState {
    pub set: RwLock<Arc<DimSet>>,
    pub values: RwLock<Registry>,
}

impl DimState {
    /// Loads both.
    pub fn load(store: &Store) -> Result<DimState> {
        let set = DimSet::load(store)?;
        let values = Registry::load(store, &set)?;
        Ok(DimState {
            set: RwLock::new(Level::Dims, Arc::new(set)),
            values: RwLock::new(Level::DimValues, values),
        })
    }

    /// What `dims list` shows.
    pub fn list(&self) -> Vec<DimensionInfo> {
        let set = self.set.read().clone();
        let reg = self.values.read();
        set.stored()
            .iter()
            .map(|d| DimensionInfo {
                dimension: d.dim.clone(),
                values: reg.count(d.id),
                full: reg.count(d.id) >= d.dim.max_values,
            })
            .collect()
    }
}

/// A dimension as `dims list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DimensionInfo {
    /// The declaration.
    pub dimension: Dimension,
    /// Distinct values tracked so far.
    pub values: u32,
    /// Whether the cap is reached (new values fold into `(other)`).
    pub full: bool,
}

/// The text a dimension keeps of a property value: strings as they are,
/// numbers and booleans as JSON writes them.
pub(crate) fn text_of(v: &PropValue) -> Cow<'_, str> {
    match v {
        PropValue::Str(s) => Cow::Borrowed(s),
        PropValue::Int(i) => Cow::Owned(i.to_string()),
        PropValue::Float(f) => Cow::Owned(f.to_string()),
        PropValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
    }
}

/// [`text_of`] for a stored value.
pub(crate) fn text_of_stored(v: &StoredProp) -> Cow<'_, str> {
    match v {
        StoredProp::Str(s) => Cow::Borrowed(s),
        StoredProp::Int(i) => Cow::Owned(i.to_string()),
        StoredProp::Float(f) => Cow::Owned(f.to_string()),
        StoredProp::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
    }
}
