//! Consistent read-only views for queries that read many keys.

use rocksdb::{IteratorMode, ReadOptions, DB};

use super::{counter_value, decode_value, range_options, union_of_chunks, Cf, KeyValue, Store};
use crate::error::{Error, Result};

/// A consistent read-only view of the store at one instant: every read
/// through it sees the same committed writes, so a query that reads many
/// keys equals a read between two writes even while writers run.
/// Cloning shares the same instant.
#[derive(Clone)]
pub struct Snapshot<'a> {
    store: &'a Store,
    snap: std::sync::Arc<rocksdb::SnapshotWithThreadMode<'a, DB>>,
    /// The job record as of the view, read on the first read that needs it.
    job: std::sync::Arc<std::sync::OnceLock<Option<super::Job>>>,
}

impl Store {
    /// A consistent view of the store as of now.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            store: self,
            snap: std::sync::Arc::new(self.db.snapshot()),
            job: Default::default(),
        }
    }
}

/// Reads of one value or one range: the store as it is now ([`Store`]) or
/// as of one instant ([`Snapshot`]). The read paths of subsystems take
/// one, so a caller reading several of them through one snapshot gets
/// answers of one instant.
pub trait Reader {
    /// Reads the raw bytes of one value.
    fn read_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Iterates `(key, value)` over keys in `[from, until)`, in key order.
    fn read_range<'s>(
        &'s self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<Box<dyn Iterator<Item = Result<KeyValue>> + 's>>;

    /// Reads one value and hands its bytes to `f` (RocksDB's pinned
    /// bytes where the reader has them: no copy).
    fn read_with<T>(
        &self,
        cf: Cf,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>>
    where
        Self: Sized,
    {
        self.read_raw(cf, key)?.map(|bytes| f(&bytes)).transpose()
    }

    /// Reads and decodes one value.
    fn read<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>>
    where
        Self: Sized,
    {
        self.read_with(cf, key, |bytes| decode_value(cf, key, bytes))
    }

    /// Iterates every key starting with `prefix`, in key order.
    fn read_prefix<'s>(
        &'s self,
        cf: Cf,
        prefix: &[u8],
    ) -> Result<Box<dyn Iterator<Item = Result<KeyValue>> + 's>> {
        self.read_range(cf, prefix, crate::keys::prefix_successor(prefix))
    }

    /// Reads the union of the user sets stored in chunks under the keys
    /// in `[from, until)`.
    fn read_set_range(
        &self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<roaring::RoaringBitmap> {
        union_of_chunks(cf, self.read_range(cf, from, until)?)
    }

    /// Reads a user set stored in chunks under `prefix`.
    fn read_set(&self, cf: Cf, prefix: &[u8]) -> Result<roaring::RoaringBitmap> {
        union_of_chunks(cf, self.read_prefix(cf, prefix)?)
    }

    /// A cursor over `cf` that seeks: for walks that jump over most keys
    /// (one iterator for the whole walk, where a range per jump would
    /// build an iterator per jump).
    fn seeker(&self, cf: Cf) -> Result<Seeker<'_>>;
}

/// A seeking cursor over one column family ([`Reader::seeker`]).
pub struct Seeker<'s> {
    it: rocksdb::DBRawIteratorWithThreadMode<'s, DB>,
    /// The iterator stands at the first key at or after this one
    /// (`known`), so a walk of ascending targets over dense keys steps on
    /// instead of seeking: a seek costs several times a step.
    from: Vec<u8>,
    known: bool,
    /// Steps a positioning tries before it seeks (0: always seeks).
    steps: usize,
}

/// Steps a positioning tries before it seeks.
const STEPS_BEFORE_SEEK: usize = 4;

impl<'s> Seeker<'s> {
    fn new(it: rocksdb::DBRawIteratorWithThreadMode<'s, DB>) -> Self {
        Seeker {
            it,
            from: Vec::new(),
            known: false,
            steps: 0,
        }
    }

    /// This cursor stepping up to a few keys before it seeks: for walks
    /// over families with about one key group per target (a user's record,
    /// profile, tags), not over sparse ones where a step rarely arrives.
    pub fn stepping(mut self) -> Self {
        self.steps = STEPS_BEFORE_SEEK;
        self
    }

    /// Stands the iterator at the first key at or after `key`.
    fn position(&mut self, key: &[u8]) {
        let mut there = false;
        if self.known && self.from.as_slice() <= key {
            for _ in 0..self.steps {
                match self.it.key() {
                    // (past the last key at or after `from`: none after `key`)
                    None => there = self.it.status().is_ok(),
                    Some(k) => there = k >= key,
                }
                if there || !self.it.valid() {
                    break;
                }
                self.it.next();
            }
        }
        if !there {
            self.it.seek(key);
        }
        self.from.clear();
        self.from.extend_from_slice(key);
        self.known = true;
    }

    /// Moves to the first key at or after `key`: that key and its value,
    /// or `None` past the last key.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        self.position(key);
        self.current()
    }

    /// Hands every `(key, value)` starting with `prefix` to `f`, in key
    /// order.
    pub fn each_with_prefix(
        &mut self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.position(prefix);
        // (unknown while it steps: an error from `f` leaves it mid-prefix)
        self.known = false;
        while let (Some(k), Some(v)) = (self.it.key(), self.it.value()) {
            if !k.starts_with(prefix) {
                break;
            }
            f(k, v)?;
            self.it.next();
        }
        self.it.status()?;
        // (now at the first key past every key with the prefix)
        if let Some(next) = crate::keys::prefix_successor(prefix) {
            self.from = next;
            self.known = true;
        }
        Ok(())
    }

    /// The value of exactly `key`, when there is one (cheaper than a point
    /// read when a walk reads keys in ascending order).
    pub fn value_of(&mut self, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(self.seek(key)?.filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    fn current(&self) -> Result<Option<(&[u8], &[u8])>> {
        if self.it.valid() {
            return Ok(self.it.key().zip(self.it.value()));
        }
        self.it.status()?;
        Ok(None)
    }
}

impl Reader for Store {
    fn read_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_raw(cf, key)
    }

    fn seeker(&self, cf: Cf) -> Result<Seeker<'_>> {
        let ro = range_options(ReadOptions::default(), None);
        Ok(Seeker::new(self.db.raw_iterator_cf_opt(self.cf(cf)?, ro)))
    }

    fn read_with<T>(
        &self,
        cf: Cf,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let pinned = self.db.get_pinned_cf(self.cf(cf)?, key)?;
        pinned.map(|bytes| f(&bytes)).transpose()
    }

    fn read_range<'s>(
        &'s self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<Box<dyn Iterator<Item = Result<KeyValue>> + 's>> {
        Ok(Box::new(self.range(cf, from, until)?))
    }
}

impl Reader for Snapshot<'_> {
    fn read_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_raw(cf, key)
    }

    fn seeker(&self, cf: Cf) -> Result<Seeker<'_>> {
        self.check(cf)?;
        let ro = range_options(self.read_options(), None);
        Ok(Seeker::new(
            self.store.db.raw_iterator_cf_opt(self.store.cf(cf)?, ro),
        ))
    }

    fn read_with<T>(
        &self,
        cf: Cf,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        self.check(cf)?;
        let opts = self.read_options();
        let pinned = (self.store.db).get_pinned_cf_opt(self.store.cf(cf)?, key, &opts)?;
        pinned.map(|bytes| f(&bytes)).transpose()
    }

    fn read_range<'s>(
        &'s self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<Box<dyn Iterator<Item = Result<KeyValue>> + 's>> {
        Ok(Box::new(self.range(cf, from, until)?))
    }
}

impl Snapshot<'_> {
    fn read_options(&self) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&*self.snap);
        ro
    }

    /// The store the view reads.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Refuses a read of what a job recorded *as of the view* re-derives:
    /// the view holds half its work, whether or not the job has finished
    /// since. (A view taken before a job started reads consistent data
    /// while it runs.)
    fn check(&self, cf: Cf) -> Result<()> {
        use super::Area;
        // (tier sets and stage marks live among the aggregates)
        let areas: &[Area] = match cf {
            Cf::Metrics | Cf::Activity => &[Area::Aggregates, Area::Stages, Area::Tiers],
            Cf::Social => &[Area::Social],
            _ => return Ok(()),
        };
        match self.recorded_job()? {
            Some(job) if areas.iter().any(|a| job.kind.touches(*a)) => {
                Err(super::commit::job_unfinished(job))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a read of `area` when a job recorded as of the view
    /// re-derives it (what [`Self::check`] does per column family, for
    /// areas that share one).
    pub(crate) fn check_area(&self, area: super::Area) -> Result<()> {
        match self.recorded_job()? {
            Some(job) if job.kind.touches(area) => Err(super::commit::job_unfinished(job)),
            _ => Ok(()),
        }
    }

    /// The job record as of the view (one point read per view).
    fn recorded_job(&self) -> Result<Option<&super::Job>> {
        if let Some(job) = self.job.get() {
            return Ok(job.as_ref());
        }
        let key = crate::keys::meta::JOB;
        let raw = self
            .store
            .db
            .get_cf_opt(self.store.cf(Cf::Meta)?, key, &self.read_options())?;
        let job = match raw {
            Some(bytes) => Some(decode_value::<super::Job>(Cf::Meta, key, &bytes)?),
            None => None,
        };
        Ok(self.job.get_or_init(|| job).as_ref())
    }

    /// Reads the raw bytes of one value.
    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check(cf)?;
        Ok(self
            .store
            .db
            .get_cf_opt(self.store.cf(cf)?, key, &self.read_options())?)
    }

    /// The raw values of `keys` (sorted) as of the view, looked up
    /// together (one MultiGet: one pass through the memtables and each
    /// file's filters for all of them).
    pub fn get_raw_sorted(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.check(cf)?;
        debug_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "keys must be sorted");
        let ro = self.read_options();
        self.store
            .db
            .batched_multi_get_cf_opt(self.store.cf(cf)?, keys.iter(), true, &ro)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    /// Reads and decodes one value (from RocksDB's pinned bytes: no copy).
    pub fn get<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        self.read_with(cf, key, |bytes| decode_value(cf, key, bytes))
    }

    /// Reads a user set stored in chunks under `prefix` (see
    /// [`Store::get_set`]).
    pub fn get_set(&self, cf: Cf, prefix: &[u8]) -> Result<roaring::RoaringBitmap> {
        let until = crate::keys::prefix_successor(prefix);
        union_of_chunks(cf, self.range(cf, prefix, until)?)
    }

    /// The union of every user-set chunk with a key in `[from, until)`
    /// (sets of many keys at once: experiments' delay buckets).
    pub fn union_range(
        &self,
        cf: Cf,
        from: &[u8],
        until: Vec<u8>,
    ) -> Result<roaring::RoaringBitmap> {
        union_of_chunks(cf, self.range(cf, from, Some(until))?)
    }

    /// Reads a counter kept by a merge operator (absent = 0).
    pub fn get_counter(&self, cf: Cf, key: &[u8]) -> Result<i64> {
        counter_value(cf, key, self.get_raw(cf, key)?)
    }

    /// The last key in `[from, until)` as of the view, if any (one reverse
    /// seek).
    pub fn last_in(&self, cf: Cf, from: &[u8], until: Vec<u8>) -> Result<Option<Box<[u8]>>> {
        self.check(cf)?;
        let mut ro = self.read_options();
        ro.set_total_order_seek(true);
        ro.set_iterate_lower_bound(from.to_vec());
        ro.set_iterate_upper_bound(until.clone());
        let mut it = self.store.db.iterator_cf_opt(
            self.store.cf(cf)?,
            ro,
            IteratorMode::From(&until, rocksdb::Direction::Reverse),
        );
        match it.next() {
            None => Ok(None),
            Some(r) => Ok(Some(r?.0)),
        }
    }

    /// Iterates `(key, value)` over keys in `[from, until)` as of the view.
    pub fn range(
        &self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<impl Iterator<Item = Result<KeyValue>> + '_> {
        self.check(cf)?;
        let it = self.store.db.iterator_cf_opt(
            self.store.cf(cf)?,
            range_options(self.read_options(), until),
            IteratorMode::From(from, rocksdb::Direction::Forward),
        );
        Ok(it.map(|r| r.map_err(Error::from)))
    }
}
