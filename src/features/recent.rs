//! The recent events a user's windowed features read, kept once for all
//! of them (a view read by six definitions is one entry, not six): kind
//! and properties by their index in the definitions' lists, only the
//! properties some windowed definition names.

use serde::{Deserialize, Serialize};

use super::state::{Input, Props};
use super::FeatureSet;
use crate::timeline::StoredProp;

/// Most recent events one state keeps; past it the oldest go and reads
/// their windows could cover are flagged `truncated`.
pub(crate) const MAX_RECENT_EVENTS: usize = 8_192;

/// One kept event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Kept {
    pub ts_ms: i64,
    pub seq: u32,
    /// Index into [`FeatureSet::window_kinds`].
    pub kind: u16,
    pub amount_minor: Option<i64>,
    /// `(index into FeatureSet::window_props, value)`.
    pub props: Vec<(u16, StoredProp)>,
}

impl Kept {
    /// The event as features read it.
    pub fn input<'a>(&'a self, set: &'a FeatureSet) -> Input<'a> {
        Input {
            ts_ms: self.ts_ms,
            seq: self.seq,
            kind: set
                .window_kinds()
                .get(usize::from(self.kind))
                .map_or("", String::as_str),
            amount_minor: self.amount_minor,
            properties: Props::Indexed(&self.props, set.window_props()),
        }
    }
}

/// The kept events, oldest first; those at or before `lost_upto` may have
/// been dropped for room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recent {
    pub events: Vec<Kept>,
    pub lost_upto: Option<i64>,
}

impl Recent {
    /// Keeps `e` if a windowed definition reads its kind.
    pub fn add(&mut self, set: &FeatureSet, e: &Input<'_>) {
        let Some(kind) = set.window_kinds().iter().position(|k| k == e.kind) else {
            return;
        };
        let props = set
            .window_props()
            .iter()
            .enumerate()
            .filter_map(|(i, name)| Some((i as u16, e.prop(name)?.clone())))
            .collect();
        let kept = Kept {
            ts_ms: e.ts_ms,
            seq: e.seq,
            kind: kind as u16,
            amount_minor: e.amount_minor,
            props,
        };
        let at = self
            .events
            .partition_point(|x| (x.ts_ms, x.seq) < (kept.ts_ms, kept.seq));
        self.events.insert(at, kept);
    }

    /// Drops the events no windowed read at or after `anchor` covers:
    /// `bounds[kind]` is the lowest instant one may not (`None`: keep none).
    pub fn trim(&mut self, bounds: &[Option<i64>]) {
        self.events.retain(|e| {
            bounds
                .get(usize::from(e.kind))
                .copied()
                .flatten()
                .is_some_and(|b| e.ts_ms > b)
        });
        if self.events.len() > MAX_RECENT_EVENTS {
            let cut = self.events.len() - MAX_RECENT_EVENTS;
            self.drop_oldest(cut);
        }
    }

    /// Drops the `cut` oldest events, marking their span lost.
    pub fn drop_oldest(&mut self, cut: usize) {
        if let Some(last) = self.events.get(cut.saturating_sub(1)) {
            let ts = last.ts_ms;
            self.lost_upto = Some(self.lost_upto.map_or(ts, |l| l.max(ts)));
        }
        self.events.drain(..cut.min(self.events.len()));
    }
}
