//! The [`Db`] handle: the public face of a store, delegating to subsystems.
//!
//! Owns the wiring of subsystems (store, user allocation, locks, kinds) and
//! nothing else: no key layouts, no value formats, no metric logic.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kinds::{EventKind, KindRegistry};
use crate::ledger::{self, LedgerSettings};
use crate::metrics::{self, MetricSettings, Metrics};
use crate::order::{Level, Mutex, RwLock};
use crate::profiles::{Profile, ProfileUpdate, Sensitive};
use crate::segments::Segment;
use crate::store::{Options, Settings, Store};
use crate::timeline::{Event, RecordOutcome, StoredEvent};
use crate::users::{Allocator, LockStripes};
use crate::verify::{self, VerifyReport};
use crate::write::{self, Transaction, Writer};
use roaring::RoaringBitmap;

mod coupons;
mod dims;
mod experiments;
mod export;
mod features;
mod feed;
mod identity;
mod jobs;
mod loyalty;
mod partition;
mod settings;
mod snapshot;
mod social;
mod stats;
mod targeting;

pub use export::{
    Cell, ColumnType, ExportColumn, ExportGroup, ExportOptions, UserSink, EXPORT_PAGE_USERS,
};
pub use jobs::JobInfo;
pub use partition::{Handover, MAX_HANDOVER_EVENTS};
pub use snapshot::Snapshot;
pub use stats::{CfStats, Stats};

/// Number of per-user lock stripes. Enough that two writers of different
/// users rarely share one, few enough that a batch locking many stays cheap.
const LOCK_STRIPES: usize = 1024;

/// An open stickydb store. `Send + Sync`: share it between threads by reference
/// or in an `Arc`.
///
/// ```
/// # fn main() -> Result<(), stickydb::Error> {
/// let dir = tempfile::tempdir()?;
/// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
/// db.record(&stickydb::Event::new("alice", "view", 1_700_000_000_000))?;
/// assert_eq!(db.user_count()?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Db {
    store: Store,
    allocator: Allocator,
    stripes: LockStripes,
    kinds: KindRegistry,
    /// Fixed at creation; the write path reads it without a lock.
    non_activity_kinds: Vec<String>,
    /// Writers take a cheap clone of the `Arc` (a transaction holds no
    /// settings lock while its closure runs).
    metric_settings: RwLock<Arc<MetricSettings>>,
    /// Earning rules and tiers; writers take a cheap clone of the `Arc`.
    ledger_settings: RwLock<Arc<LedgerSettings>>,
    /// Erasures update one shared meta key; they are rare, so one at a time.
    erase_lock: Mutex<()>,
    /// Which ids are anonymous (identity merges).
    identity_settings: RwLock<crate::users::IdentitySettings>,
    /// Feature definitions and tag rules.
    features: RwLock<Arc<crate::features::FeatureSet>>,
    dims: crate::dims::DimState,
    /// The change feed's clock (the last `advance`).
    clock: RwLock<crate::feed::Clock>,
    /// One `advance` at a time.
    advance_lock: Mutex<()>,
    /// Writes that change coupon counts, one at a time.
    coupon_lock: Mutex<()>,
    /// The new-member gift pack; writers take a cheap clone of the `Arc`.
    gift_pack: RwLock<Arc<Option<crate::GiftPack>>>,
    /// Attribution's lock and settings.
    social: crate::social::SocialState,
    /// The exposure kind (fixed at creation).
    pub(crate) experiment_settings: crate::experiments::ExperimentSettings,
    /// One log-position write at a time (check, then write).
    position_lock: Mutex<()>,
    /// One feed trim at a time (each raises the stored highest trimmed
    /// cursor from what it read).
    trim_lock: Mutex<()>,
    /// Set by [`Db::close`]: its flush already ran.
    closed: std::sync::atomic::AtomicBool,
}

impl Drop for Db {
    /// Flushes the memtables of a writable store, so that no write-ahead
    /// log is left to replay (a failure cannot be reported here; call
    /// [`Db::close`] to see it). Nothing acknowledged depends on it: the WAL
    /// still holds every write until the flush lands.
    fn drop(&mut self) {
        if !self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = self.flush_if_writable();
        }
    }
}

/// One raw record: column family name, key, value.
pub type RawEntry = (&'static str, Vec<u8>, Vec<u8>);

impl Db {
    /// Creates a new store at `path` (a missing or empty directory) and
    /// opens it; refuses a directory that holds a store already
    /// ([`crate::OpenError::Exists`]), so a second `create` never reopens
    /// someone's data by mistake.
    ///
    /// ```
    /// use stickydb::{Db, Error, OpenError, Options};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// Db::create(dir.path(), Options::default())?.close()?;
    /// assert!(matches!(
    ///     Db::create(dir.path(), Options::default()),
    ///     Err(Error::Open(OpenError::Exists { .. }))
    /// ));
    /// // a mistyped path is not silently created
    /// assert!(Db::open(dir.path().join("typo"), Options::default()).is_err());
    /// Db::open(dir.path(), Options::default())?;
    /// # Ok(()) }
    /// ```
    pub fn create(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        let path = path.as_ref();
        if crate::store::holds_store(path) {
            return Err(crate::error::OpenError::Exists {
                path: path.display().to_string(),
            }
            .into());
        }
        let mut options = options;
        options.create_if_missing = true;
        options.read_only = false;
        Self::open(path, options)
    }

    /// Opens the store at `path`. A missing store is refused
    /// ([`crate::OpenError::Missing`]) unless `options.create_if_missing`
    /// (off by default; [`Db::create`] is the call that creates).
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        let mut store = Store::open(path.as_ref(), &options)?;
        let found = store.format_found();
        if found < crate::store::FORMAT_VERSION && options.read_only {
            return Err(crate::error::OpenError::NeedsMigration {
                found,
                current: crate::store::FORMAT_VERSION,
            }
            .into());
        }
        let allocator = Allocator::recover(&store)?;
        let kinds = KindRegistry::load(&store, options.kinds.as_ref())?;
        let experiment_settings =
            crate::experiments::load_settings(&store, options.exposure_kind.as_deref())?;
        // (a new store's default: exposures and contacts are things done to
        // a user, not by them)
        let default_non_activity = [
            experiment_settings.exposure_kind.clone(),
            crate::segments::CONTACT_KIND.to_owned(),
        ];
        let metric_settings = metrics::load_settings(
            &store,
            options.non_activity_kinds.as_ref(),
            &default_non_activity,
        )?;
        // A new store's metadata and every setting the loaders above put
        // go to disk as one synced batch: a crash leaves no store or a
        // whole one.
        store.finish_creation()?;
        if found < crate::store::FORMAT_VERSION {
            write::migrate(
                &mut store,
                &kinds,
                &metric_settings.non_activity_kinds,
                &metric_settings.stage_model,
                &experiment_settings.exposure_kind,
            )?;
        }
        let ledger_settings = ledger::rules::load(&store)?;
        let gift_pack = ledger::coupons::gift::load(&store)?;
        let identity_settings = identity::load(&store)?;
        let features = crate::features::FeatureSet::load(&store)?;
        let dims = crate::dims::DimState::load(&store)?;
        let clock = crate::feed::Clock::load(&store)?;
        let social = crate::social::SocialState::load(&store)?;
        Ok(Self {
            store,
            allocator,
            stripes: LockStripes::new(LOCK_STRIPES, options.user_cache_entries),
            kinds,
            non_activity_kinds: metric_settings.non_activity_kinds.clone(),
            metric_settings: RwLock::new(Level::MetricSettings, Arc::new(metric_settings)),
            ledger_settings: RwLock::new(Level::LedgerSettings, Arc::new(ledger_settings)),
            erase_lock: Mutex::new(Level::Erase, ()),
            identity_settings: RwLock::new(Level::IdentitySettings, identity_settings),
            features: RwLock::new(Level::Features, Arc::new(features)),
            dims,
            clock: RwLock::new(Level::Clock, clock),
            advance_lock: Mutex::new(Level::Advance, ()),
            coupon_lock: Mutex::new(Level::Coupons, ()),
            gift_pack: RwLock::new(Level::GiftPack, Arc::new(gift_pack)),
            social,
            experiment_settings,
            position_lock: Mutex::new(Level::Position, ()),
            trim_lock: Mutex::new(Level::FeedTrim, ()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The settings the store was created with.
    pub fn settings(&self) -> &Settings {
        self.store.settings()
    }

    /// Which event kinds the store accepts (fixed at creation).
    pub fn kind_policy(&self) -> &crate::store::KindPolicy {
        self.kinds.policy()
    }

    /// The local day (SPEC §2) of a timestamp under this store's offset.
    pub fn local_day(&self, ts_ms: i64) -> i32 {
        crate::time::local_day(ts_ms, self.settings().utc_offset_minutes)
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            store: &self.store,
            allocator: &self.allocator,
            stripes: &self.stripes,
            kinds: &self.kinds,
            non_activity_kinds: &self.non_activity_kinds,
            ledger_settings: &self.ledger_settings,
            erase_lock: &self.erase_lock,
            metric_settings: &self.metric_settings,
            clock: &self.clock,
            social: &self.social,
            exposure_kind: &self.experiment_settings.exposure_kind,
            advance_lock: &self.advance_lock,
            coupon_lock: &self.coupon_lock,
            gift_pack: &self.gift_pack,
            identity_settings: &self.identity_settings,
            features: &self.features,
            dims: &self.dims,
        }
    }

    /// The metrics of this store (SPEC §3), answered from state kept on write.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let day = 19_800; // a local day number
    /// let ts = day as i64 * 86_400_000;
    /// db.record(&stickydb::Event::new("alice", "view", ts))?;
    /// db.record(&stickydb::Event::new("bob", "view", ts + 86_400_000))?;
    /// let rows = db.metrics().active(None, day, day + 1, None)?;
    /// assert_eq!((rows[1].dau, rows[1].mau), (1, 2));
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> Metrics<'_> {
        Metrics {
            view: self.store.snapshot(),
            kinds: &self.kinds,
            settings: MetricSettings::clone(&self.metric_settings.read()),
        }
    }

    /// The metric settings in force.
    pub fn metric_settings(&self) -> MetricSettings {
        MetricSettings::clone(&self.metric_settings.read())
    }

    /// Erases `user` (SPEC §5): profile, tags, events, ledger and every maintained
    /// set and counter forget the user in one atomic write, as if it never
    /// existed. Its internal id is never reused. Returns whether it existed.
    pub fn erase_user(&self, user: &str) -> Result<bool> {
        self.writer().erase_user(user)
    }

    /// Runs `f` as one write transaction: every event, profile change,
    /// points operation and merge it makes, of any users, is committed
    /// as one atomic write when `f` returns `Ok` — or, when `f` or any of
    /// its calls fails, nothing of any of them is (docs/embedding.md).
    /// Returns what `f` returned.
    ///
    /// `f` may run more than once: a round that finds it needs more locks
    /// (a user it did not name before, a new kind, a merge) starts over
    /// holding them. Keep its effects inside the transaction.
    ///
    /// ```
    /// use stickydb::{Db, Error, Event, LedgerError, Options, PointsOp, ProfileUpdate};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let t = 1_700_000_000_000;
    /// db.points("alice", "welcome", t, &PointsOp::earn(500, "welcome"))?;
    /// // a checkout: the purchase, the points it redeems, the profile it
    /// // changes — all or nothing
    /// let balance = db.write(|tx| {
    ///     tx.record(&Event::new("alice", "purchase", t + 1).with_amount(4_990))?;
    ///     let out = tx.points("alice", "order-1", t + 1, &PointsOp::redeem(200, "order-1"))?;
    ///     tx.update_profile("alice", &ProfileUpdate::new().set("last_order", "order-1"))?;
    ///     Ok(out.balance)
    /// })?;
    /// assert_eq!(balance, 300);
    /// // a refused redemption leaves no purchase behind
    /// let refused = db.write(|tx| {
    ///     tx.record(&Event::new("alice", "purchase", t + 2).with_amount(990))?;
    ///     tx.points("alice", "order-2", t + 2, &PointsOp::redeem(10_000, "order-2"))
    /// });
    /// assert!(matches!(refused, Err(Error::Ledger(LedgerError::InsufficientPoints { .. }))));
    /// assert_eq!(db.event_count()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn write<T>(&self, mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.writer()
            .transact(crate::write::Plan::default(), &mut f)
    }

    /// Records one event. A repeated `(user, event_id)` is reported as
    /// [`RecordOutcome::Duplicate`] and changes nothing.
    pub fn record(&self, event: &Event) -> Result<RecordOutcome> {
        let mut out = self
            .writer()
            .record_batch(std::slice::from_ref(event), None)?;
        out.pop()
            .ok_or_else(|| Error::internal("a one-event batch has no outcome"))
    }

    /// Records events as one atomic write: either every valid, non-duplicate
    /// event is stored, or (on any bad event) none is. Outcomes are in input order.
    pub fn record_batch(&self, events: &[Event]) -> Result<Vec<RecordOutcome>> {
        self.writer().record_batch(events, None)
    }

    /// `user`'s events with `from_ms <= ts_ms < to_ms`, newest first, at most
    /// `limit`. Ties in time come newest-arrival first.
    pub fn timeline(
        &self,
        user: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        self.snapshot().timeline(user, from_ms, to_ms, limit)
    }

    /// `user`'s newest `limit` events.
    pub fn newest(&self, user: &str, limit: usize) -> Result<Vec<StoredEvent>> {
        self.timeline(user, i64::MIN, i64::MAX, limit)
    }

    /// Applies a profile update (attributes and tags) as one atomic write.
    pub fn update_profile(&self, user: &str, update: &ProfileUpdate) -> Result<()> {
        self.writer().update_profile(user, update)
    }

    /// `user`'s profile, or `None` when the user does not exist.
    pub fn profile(&self, user: &str, sensitive: Sensitive) -> Result<Option<Profile>> {
        self.snapshot().profile(user, sensitive)
    }

    /// Users holding `tag`: at `now_ms` (expired holders left out), or every
    /// holder not yet purged when `now_ms` is `None`.
    pub fn users_with_tag(&self, tag: &str, now_ms: Option<i64>) -> Result<RoaringBitmap> {
        self.snapshot().users_with_tag(tag, now_ms)
    }

    /// Removes tags that expired at or before `now_ms`; returns how many.
    /// Deterministic for a given `now_ms` and safe to re-run.
    pub fn purge_expired_tags(&self, now_ms: i64) -> Result<usize> {
        self.writer().purge_expired_tags(now_ms)
    }

    /// The users in `segment` at `now_ms`, as internal ids. Time-relative
    /// atoms (stage, RFM, activity windows) are evaluated as of the local day
    /// of `now_ms`.
    /// Sensitive attribute values never match: see [`Db::segment_with`].
    pub fn segment(&self, segment: &Segment, now_ms: i64) -> Result<RoaringBitmap> {
        self.snapshot().segment(segment, now_ms)
    }

    /// [`Db::segment`], where `attr:`, `has:` and anniversary atoms match
    /// sensitive attribute values too when `sensitive` is
    /// [`Sensitive::Include`] — for callers allowed to read them, as for
    /// [`Db::profile`] (docs/metrics.md, "Targeting").
    ///
    /// ```
    /// use stickydb::{AttrValue, Db, Options, ProfileUpdate, Segment, Sensitive};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let birthday = AttrValue::date(1996, 3, 2).expect("a date");
    /// db.update_profile("ann", &ProfileUpdate::new().set("age", 29).set("birthday", birthday))?;
    /// db.update_profile("bob", &ProfileUpdate::new().set("age", 41).set_sensitive("phone", "+1 555"))?;
    /// let now = 1_772_323_200_000; // 2026-03-01
    /// let young = Segment::parse("attr:age>=18 and attr:age<=30 and birthday_within:7d")?;
    /// assert_eq!(db.segment(&young, now)?.len(), 1);
    /// let reachable = Segment::parse("has:phone")?;
    /// assert!(db.segment(&reachable, now)?.is_empty());
    /// assert_eq!(db.segment_with(&reachable, now, Sensitive::Include)?.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn segment_with(
        &self,
        segment: &Segment,
        now_ms: i64,
        sensitive: Sensitive,
    ) -> Result<RoaringBitmap> {
        self.snapshot().segment_with(segment, now_ms, sensitive)
    }

    /// Writes the users of `segment` (every user when `None`) to `sink`, a
    /// row each with the columns `options` asks for, in pages of
    /// [`EXPORT_PAGE_USERS`] (bounded memory), all read at one instant;
    /// returns how many. Sensitive attributes are neither exported nor
    /// matched unless `options.sensitive` includes them.
    ///
    /// ```
    /// use stickydb::{Cell, Db, ExportColumn, ExportGroup, ExportOptions, Options, ProfileUpdate, Segment, UserSink};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// struct Rows(Vec<Vec<Cell>>);
    /// impl UserSink for Rows {
    ///     fn columns(&mut self, _: &[ExportColumn]) -> Result<(), stickydb::Error> { Ok(()) }
    ///     fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<(), stickydb::Error> {
    ///         self.0.extend_from_slice(rows);
    ///         Ok(())
    ///     }
    ///     fn finish(&mut self) -> Result<(), stickydb::Error> { Ok(()) }
    /// }
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// db.update_profile("ann", &ProfileUpdate::new().set("age", 29))?;
    /// db.update_profile("bob", &ProfileUpdate::new().set("age", 41))?;
    /// let mut options = ExportOptions::new(1_700_000_000_000, 19_675);
    /// options.groups = vec![ExportGroup::Attributes];
    /// let mut sink = Rows(Vec::new());
    /// db.export_users(Some(&Segment::parse("attr:age>=30")?), &options, &mut sink)?;
    /// assert_eq!(sink.0, vec![vec![Cell::Text("bob".into()), Cell::Int(41)]]);
    /// # Ok(()) }
    /// ```
    pub fn export_users(
        &self,
        segment: Option<&Segment>,
        options: &ExportOptions,
        sink: &mut dyn UserSink,
    ) -> Result<u64> {
        self.snapshot().export_users(segment, options, sink)
    }

    /// The internal id of an external user id.
    pub fn user_id(&self, user: &str) -> Result<Option<u32>> {
        self.snapshot().user_id(user)
    }

    /// The external id of an internal user id.
    pub fn user_name(&self, user_id: u32) -> Result<Option<String>> {
        self.snapshot().user_name(user_id)
    }

    /// Every user, as internal ids.
    pub fn all_users(&self) -> Result<RoaringBitmap> {
        self.snapshot().all_users()
    }

    /// Number of users in the store.
    pub fn user_count(&self) -> Result<u64> {
        Ok(self.all_users()?.len())
    }

    /// Number of events in the store (duplicates excluded).
    pub fn event_count(&self) -> Result<u64> {
        Ok(metrics::events_total(&self.store)?.max(0) as u64)
    }

    /// Number of events of `kind` in the store.
    pub fn event_count_of(&self, kind: &EventKind) -> Result<u64> {
        match self.kinds.id(kind) {
            None => Ok(0),
            Some(id) => Ok(metrics::events_of_kind(&self.store, id)?.max(0) as u64),
        }
    }

    /// Every kind the store has an id for: the known kinds, then custom ones.
    pub fn kinds(&self) -> Vec<(u32, EventKind)> {
        let mut v: Vec<(u32, EventKind)> = EventKind::known()
            .filter_map(|k| k.known_id().map(|id| (id, k)))
            .collect();
        v.extend(
            self.kinds
                .custom()
                .into_iter()
                .map(|(id, n)| (id, EventKind::Custom(n))),
        );
        v
    }

    /// Recomputes every maintained structure from the raw records and reports
    /// each difference. A healthy store reports none.
    pub fn verify(&self) -> Result<VerifyReport> {
        // (half a job's work would be reported as damage)
        self.store.check_area(crate::store::Area::Everything)?;
        let settings = MetricSettings::clone(&self.metric_settings.read());
        let non_activity = metrics::non_activity_ids(&settings, &self.kinds);
        let ledger_settings = self.ledger_settings.read().clone();
        // (cloned on its own line: a guard held through the run would stop
        // a definitions change and every writer queued behind it)
        let features = self.features.read().clone();
        verify::run(
            &self.store,
            &self.kinds,
            &non_activity,
            &ledger_settings,
            &settings.stage_model,
            self.kinds.id(&EventKind::from_name(
                &self.experiment_settings.exposure_kind,
            )),
            &features,
            (&self.dims, &self.non_activity_kinds),
        )
    }

    /// Writes a consistent copy of the store, openable with [`Db::open`], into
    /// `dir` (which must not exist yet). Safe while writers run.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.store.checkpoint(dir.as_ref())
    }

    /// Compacts every column family: merge operands are folded into values,
    /// so reads of aggregates stop paying for them. Safe while writers run.
    pub fn compact(&self) -> Result<()> {
        self.store.compact()
    }

    /// Flushes every memtable and waits until no compaction is pending or
    /// running (benchmarks use it so one store's background work does not
    /// run during another's measurement).
    pub fn wait_for_compact(&self) -> Result<()> {
        self.store.wait_for_compact()
    }

    /// Bytes of write batches this handle committed since it was opened:
    /// what went to the write-ahead log and the memtables.
    pub fn bytes_written(&self) -> u64 {
        self.store.bytes_written()
    }

    /// Flushes memtables to SST files.
    pub fn flush(&self) -> Result<()> {
        self.store.flush()
    }

    /// Closes the store, flushing every memtable first (a writable handle):
    /// the next open, read-only ones included, has no write-ahead log to
    /// replay and costs milliseconds (SPEC §6). Dropping a `Db` does the
    /// same but cannot report a failed flush; this returns it.
    pub fn close(self) -> Result<()> {
        let out = self.flush_if_writable();
        // Done (or failed and reported): the drop that follows does not retry.
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        out
    }

    fn flush_if_writable(&self) -> Result<()> {
        if self.store.check_writable().is_ok() {
            self.store.flush()?;
        }
        Ok(())
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}
