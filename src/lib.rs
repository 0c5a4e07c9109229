//! # stickydb
//!
//! An embedded storage engine on RocksDB for e-commerce **user profiles**
//! (typed attributes and tags), **event timelines** and **loyalty-point
//! ledgers**, with aggregates kept exact on every write instead of computed by
//! scanning events at query time.
//!
//! ```
//! use stickydb::{Db, Event, Options, ProfileUpdate, Segment, Sensitive, TagSource};
//!
//! # fn main() -> Result<(), stickydb::Error> {
//! let dir = tempfile::tempdir()?;
//! let db = Db::create(dir.path(), Options::default())?;
//! let t0 = 1_700_000_000_000;
//! db.record(&Event::new("alice", "view", t0).with_id("e1"))?;
//! db.record(&Event::new("alice", "purchase", t0 + 60_000).with_amount(4_990))?;
//! db.update_profile("alice", &ProfileUpdate::new().set("region", "EU")
//!     .tag("vip", TagSource::Manual, t0, None))?;
//!
//! let newest = db.newest("alice", 10)?;
//! assert_eq!(newest[0].event.kind.as_str(), "purchase");
//! let vips = db.segment(&Segment::parse("tag:vip")?, t0)?;
//! assert_eq!(vips.len(), 1);
//! assert!(db.verify()?.is_clean());
//! # Ok(()) }
//! ```
//!
//! See `docs/architecture.md` for column families, key layouts and the path
//! of one write.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![forbid(unsafe_code)]

/// Declares an internal module: public (hidden from the docs) with the
/// `internals` feature, for the crate's tests, benchmarks and fuzz targets;
/// private otherwise, so an embedder's build sees only the facade.
macro_rules! internal_mod {
    ($name:ident) => {
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    };
}

// Modules in dependency order: each may import only modules above it
// (tests/architecture.rs checks this), so no two modules import each other.
#[cfg(feature = "cli")]
pub mod cli;
pub mod clickhouse;
pub mod cluster;
internal_mod!(codec);
mod db;
pub mod dims;
pub mod error;
pub mod experiments;
pub mod features;
pub mod feed;
#[cfg(feature = "kafka")]
pub mod kafka;
internal_mod!(keys);
pub mod kinds;
pub mod ledger;
pub mod metrics;
mod order;
pub mod partition;
pub mod profiles;
pub mod segments;
pub mod social;
internal_mod!(store);
pub mod time;
pub mod timeline;
pub mod users;
mod verify;
mod write;

pub use db::{
    Cell, CfStats, ColumnType, Db, ExportColumn, ExportGroup, ExportOptions, Handover, JobInfo,
    RawEntry, Snapshot, Stats, UserSink, EXPORT_PAGE_USERS, MAX_HANDOVER_EVENTS,
};
pub use error::{
    ConsumeError, CorruptionError, Error, InputError, LedgerError, MergeError, OpenError, Problem,
    Result, StorageError, TxError,
};
pub use features::{Definition, FeatureValue, Features, TagRule};
pub use feed::{Change, FeedEntry, StageCause};
pub use kinds::EventKind;
pub use ledger::{
    Account, Coupon, CouponError, CouponKind, CouponOp, CouponOutcome, CouponState, CouponStats,
    CouponTemplate, GiftPack, LedgerEntry, LedgerSettings, PointsOp, PointsOutcome,
};
pub use partition::Partition;
pub use profiles::{AttrOp, AttrValue, Profile, ProfileUpdate, Sensitive, Tag, TagSource};
pub use segments::{Measure, Segment};
pub use social::{
    Figures, GroupDay, GroupHead, GroupInfo, GroupState, SharerRank, SharerRow, SocialSettings,
    ViralPeriod,
};
pub use store::{Durability, KindPolicy, Options, Settings};
pub use timeline::{Event, PropValue, RecordOutcome, StoredEvent};
pub use users::{IdentitySettings, MergeOptions, MergeOutcome};
pub use verify::VerifyReport;
pub use write::{AdvanceReport, SettingsApplied, SettingsDocument, Transaction};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// docs/embedding.md's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
pub struct EmbeddingDoctests;
