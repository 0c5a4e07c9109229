//! The column families of a store and how each is point-read.

/// The column families of a store, one per data family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// Store metadata: format version, settings, custom-kind registry.
    Meta,
    /// External user id → internal id.
    UserByName,
    /// Internal id → user record (external id, timeline sequence).
    UserById,
    /// `user | attribute` → attribute value.
    Profiles,
    /// `user | tag` → tag record.
    Tags,
    /// `tag` → bitmap of users holding it (merge operator).
    TagIndex,
    /// `tag | expires_at | user` → empty; tags ordered by expiry.
    TagExpiry,
    /// `user | ts desc | seq desc` → event record.
    Events,
    /// `user | event_id` → event key (idempotency index).
    EventIds,
    /// Aggregates: counters and user sets (merge operator).
    Metrics,
    /// `user` → per-user activity state; `user | session` → session's first day.
    Activity,
    /// `user | tag | …` → points account, entries, lots, holds, transactions.
    Ledger,
    /// `tag | due time | user | seq` → empty: lot expiries, hold timeouts and
    /// tier reviews in time order.
    LedgerDue,
    /// `1 | cursor` → feed entry; `2 | due day | user` → stage due index;
    /// `3 | user | lot` → expiry notice written; `4` → the feed clock.
    Feed,
    /// Social commerce: shares, touches, attribution (`keys::social`).
    Social,
    /// `user` → the user's feature state (derived; `features`).
    Features,
    /// `attribute | typed value | chunk` → bitmap of the users whose
    /// attribute has that value (merge operator; `keys::attrs`).
    AttrIndex,
}

impl Cf {
    /// Every column family, in creation order.
    pub const ALL: [Cf; 17] = [
        Cf::Meta,
        Cf::UserByName,
        Cf::UserById,
        Cf::Profiles,
        Cf::Tags,
        Cf::TagIndex,
        Cf::TagExpiry,
        Cf::Events,
        Cf::EventIds,
        Cf::Metrics,
        Cf::Activity,
        Cf::Ledger,
        Cf::LedgerDue,
        Cf::Feed,
        Cf::Social,
        Cf::Features,
        Cf::AttrIndex,
    ];

    /// The RocksDB name of the column family.
    pub const fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::UserByName => "user_by_name",
            Cf::UserById => "user_by_id",
            Cf::Profiles => "profiles",
            Cf::Tags => "tags",
            Cf::TagIndex => "tag_index",
            Cf::TagExpiry => "tag_expiry",
            Cf::Events => "events",
            Cf::EventIds => "event_ids",
            Cf::Metrics => "metrics",
            Cf::Activity => "activity",
            Cf::Ledger => "ledger",
            Cf::LedgerDue => "ledger_due",
            Cf::Feed => "feed",
            Cf::Social => "social",
            Cf::Features => "features",
            Cf::AttrIndex => "attr_index",
        }
    }

    /// How the column family is point-read, which decides its filters.
    pub(super) const fn point_reads(self) -> PointReads {
        match self {
            // only ever scanned: timelines, expiry and due indexes
            Cf::Events | Cf::TagExpiry | Cf::LedgerDue | Cf::AttrIndex => PointReads::None,
            // the clock and notice marks are point-read; the rest scanned
            Cf::Feed => PointReads::Misses,
            // lookups that mostly miss: dedup, new users, new days, sessions
            Cf::EventIds | Cf::UserByName | Cf::Activity => PointReads::Misses,
            _ => PointReads::Hits,
        }
    }
}

/// How a column family is point-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PointReads {
    /// Never: no filter.
    None,
    /// Mostly for keys that exist: SST bloom filters.
    Hits,
    /// Mostly for keys that do not exist: SST and memtable bloom filters.
    Misses,
}
