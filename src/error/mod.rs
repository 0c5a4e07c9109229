//! Errors: one enum per kind of failure, all folding into the umbrella [`Error`].
//!
//! Owns the error vocabulary of the crate. Must not depend on any subsystem
//! module: every other module depends on this one.

use std::fmt;

mod classify;
mod coupon;

pub use classify::{StorageError, TxError};
pub use coupon::CouponError;

/// Everything a stickydb operation can fail with.
///
/// Callers that only care whether an operation worked use `Error`; callers that
/// react to specific failures match on the operation-specific enums inside,
/// or ask the three questions a request handler asks (docs/embedding.md):
/// [`Error::is_refusal`] (the input or a business rule said no: tell the
/// client, do not retry), [`Error::is_retryable`] (try the same call
/// again) and [`Error::is_storage`] (the store or the disk failed: alert).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be opened or created.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The caller's input was rejected; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Bytes on disk did not decode; the store itself is damaged.
    #[error(transparent)]
    Corruption(#[from] CorruptionError),
    /// A user named by the caller does not exist in the store.
    #[error("unknown user {user:?}")]
    UnknownUser {
        /// The external user id that was asked for.
        user: String,
    },
    /// A points operation was refused by the ledger's rules; nothing was written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A coupon operation or template was refused; nothing was written.
    #[error(transparent)]
    Coupon(#[from] CouponError),
    /// An identity merge was refused; nothing was written.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// A limit of the store (not of one input) was reached.
    #[error("limit reached: {what} (at most {max})")]
    LimitReached {
        /// What ran out.
        what: &'static str,
        /// The limit.
        max: u64,
    },
    /// The store was opened read-only and the operation writes.
    #[error("the store was opened read-only")]
    ReadOnly,
    /// A maintenance job (SPEC §5, "Jobs") was interrupted — a crash, a
    /// kill, a failed step — or is running: until it finishes, writes are
    /// refused and queries of what it re-derives would see half its work.
    /// Nothing was written.
    #[error(
        "job {job} is unfinished (step {step}): finish it with {call} \
         (CLI: {command}); until then writes are refused and what it re-derives is not read"
    )]
    JobUnfinished {
        /// The job's name (`rebuild-aggregates`, `retier`, …).
        job: &'static str,
        /// The step it is at, described.
        step: String,
        /// The library call that finishes it.
        call: &'static str,
        /// The CLI command that finishes it.
        command: &'static str,
    },
    /// An earlier commit of this handle failed (the disk refused a write):
    /// what it left in memory may not match the store, so the handle
    /// refuses every write until the store is reopened. Nothing was written.
    #[error("writes refused after a failed commit ({cause}); reopen the store")]
    Poisoned {
        /// The failure that poisoned the handle.
        cause: String,
    },
    /// A value the write would store is over the size cap of stored values
    /// (SPEC §6: no stored value grows without bound); the whole write was
    /// refused and nothing was written.
    #[error("value too large: {what} would be {bytes} bytes (at most {max}); nothing was written")]
    ValueTooLarge {
        /// Which value: a column family and the key, or the value's type.
        what: String,
        /// Its encoded size.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// A log consumer or a partitioned deployment failed (SPEC §7).
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// A write transaction was refused as a whole; nothing was written.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// The write met too much contention to finish in its bounded rounds
    /// (concurrent merges moving aliases, sharers to lock); nothing was
    /// written. Retrying the same call is safe.
    #[error("busy: {what} (gave up after {rounds} rounds); nothing was written, retry")]
    Busy {
        /// What kept moving.
        what: &'static str,
        /// Rounds made.
        rounds: u32,
    },
    /// A broken invariant of stickydb itself (a bug), refused rather than
    /// stored. Nothing was written.
    #[error("internal error: {what}")]
    Internal {
        /// The invariant.
        what: String,
    },
    /// The storage engine (RocksDB) reported an error.
    #[error("storage engine error: {0}")]
    Storage(StorageError),
    /// A file-system error outside RocksDB (checkpoints, directories).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a log consumer stopped, or a cluster of partition stores was refused
/// (SPEC §7).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// A message was not a valid event and `skip_bad` was used up; nothing
    /// of the pending batch was written.
    #[error("{topic}[{partition}] offset {offset}: {error}")]
    BadMessage {
        /// The topic.
        topic: String,
        /// The log partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
        /// What was wrong with it.
        error: InputError,
    },
    /// The broker or the client library reported an error.
    #[error("log client: {reason}")]
    Broker {
        /// Its text.
        reason: String,
    },
    /// The stores given to a cluster view are not the partitions of one
    /// deployment (a partition twice or missing, different counts, UTC
    /// offsets or stage models).
    #[error("not one deployment's partitions: {reason}")]
    Cluster {
        /// What differs.
        reason: String,
    },
}

/// Why [`crate::Db::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory holds a store written by an unknown format version.
    #[error("store format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// The store holds an older format that a writable open migrates; it was
    /// opened read-only.
    #[error("store format version {found} must be migrated to {current}: open it once writable")]
    NeedsMigration {
        /// Version found on disk.
        found: u32,
        /// Version this build writes.
        current: u32,
    },
    /// The store was created with one UTC offset and reopened with another.
    #[error(
        "store was created with UTC offset {stored_minutes} min; reopened with {requested_minutes} min"
    )]
    OffsetMismatch {
        /// Offset persisted at creation.
        stored_minutes: i32,
        /// Offset asked for by this open.
        requested_minutes: i32,
    },
    /// A creation-time setting other than the offset differs from the stored one.
    #[error("store was created with {setting} = {stored}; reopened with {requested}")]
    SettingMismatch {
        /// The setting's name.
        setting: &'static str,
        /// The stored value, printed.
        stored: String,
        /// The requested value, printed.
        requested: String,
    },
    /// The requested UTC offset lies outside −14h..=+14h.
    #[error("UTC offset {minutes} min is outside -840..=840")]
    OffsetOutOfRange {
        /// The offending offset in minutes.
        minutes: i32,
    },
    /// [`crate::Db::create`] found a store at the path already.
    #[error("{path} holds a stickydb store already; open it with Db::open")]
    Exists {
        /// The directory.
        path: String,
    },
    /// The directory holds no store and creation was not allowed.
    #[error("no stickydb store at {path} (create_if_missing is off)")]
    Missing {
        /// The directory that was opened.
        path: String,
    },
    /// The directory holds a RocksDB database that is not a stickydb store.
    #[error("{path} is a RocksDB database without stickydb metadata")]
    NotAStore {
        /// The directory that was opened.
        path: String,
    },
    /// An option is out of its allowed range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's field name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a points operation (SPEC §4) was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The account's unexpired, unheld points do not cover the operation.
    #[error("insufficient points: {requested} requested, {available} available")]
    InsufficientPoints {
        /// Points the operation needs.
        requested: i64,
        /// Points spendable at the operation's time.
        available: i64,
    },
    /// The transaction id was used before with a different payload.
    #[error("transaction {txn_id:?} was already used with a different payload")]
    TxnConflict {
        /// The reused id.
        txn_id: String,
    },
    /// The transaction named by a reverse, capture or release does not exist
    /// in this account.
    #[error("unknown transaction {txn_id:?}")]
    UnknownTxn {
        /// The id asked for.
        txn_id: String,
    },
    /// Only earns, redeems and captures can be reversed.
    #[error("transaction {txn_id:?} is a {op} and cannot be reversed")]
    NotReversible {
        /// The id asked for.
        txn_id: String,
        /// What kind of operation it was.
        op: &'static str,
    },
    /// The transaction was reversed already.
    #[error("transaction {txn_id:?} was already reversed by {by:?}")]
    AlreadyReversed {
        /// The id asked for.
        txn_id: String,
        /// The reversing transaction.
        by: String,
    },
    /// A capture or release named a transaction that is not a hold.
    #[error("transaction {txn_id:?} is not a hold")]
    NotAHold {
        /// The id asked for.
        txn_id: String,
    },
    /// The hold was captured, released or timed out already.
    #[error("hold {txn_id:?} is no longer open")]
    HoldNotOpen {
        /// The hold's transaction id.
        txn_id: String,
    },
    /// A capture came at or after the hold's deadline.
    #[error("hold {txn_id:?} timed out at {deadline_ms} (capture at {at_ms})")]
    HoldTimedOut {
        /// The hold's transaction id.
        txn_id: String,
        /// When the hold timed out.
        deadline_ms: i64,
        /// When the capture was attempted.
        at_ms: i64,
    },
}

/// Why an identity merge (SPEC §2) was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// `from` and `into` name the same user.
    #[error("cannot merge {user:?} into itself")]
    SelfMerge {
        /// The user named twice.
        user: String,
    },
    /// `into` is (an alias of) `from`: the merge would close a cycle.
    #[error(
        "merging {from:?} into {into:?} would close a cycle: {into:?} is an alias of {from:?}"
    )]
    Cycle {
        /// The user to merge.
        from: String,
        /// The target, which resolves to `from`.
        into: String,
    },
    /// `from` was merged before and is now an alias.
    #[error("{from:?} was already merged into {into:?}")]
    AlreadyMerged {
        /// The alias.
        from: String,
        /// The user it resolves to.
        into: String,
    },
    /// Neither user is anonymous and the merge was not forced.
    #[error("{from:?} and {into:?} are both identified ids; merging them needs force")]
    BothIdentified {
        /// The user to merge.
        from: String,
        /// The target.
        into: String,
    },
    /// The merge id was used before for another pair.
    #[error("merge id {merge_id:?} was already used to merge {from:?} into {into:?}")]
    IdConflict {
        /// The reused id.
        merge_id: String,
        /// The pair it merged.
        from: String,
        /// The pair it merged.
        into: String,
    },
    /// A cross-partition handover (SPEC §7) was asked of a pair that does
    /// not cross partitions, or of a `from` whose state cannot travel.
    #[error("cannot hand {from:?} over to {into:?}: {reason}")]
    Handover {
        /// The user to merge.
        from: String,
        /// The target.
        into: String,
        /// Why.
        reason: String,
    },
    /// `from` and `into` both used this points transaction id: moving
    /// `from`'s transactions would give one id two operations.
    #[error("both users used points transaction id {txn_id:?}; their ledgers cannot be merged")]
    TxnClash {
        /// The id both used.
        txn_id: String,
    },
}

/// Bad caller input: says what is wrong and where. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}{}: {problem}", Position(*.index))]
pub struct InputError {
    /// Position of the offending item in a batch call, when the call took a batch.
    pub index: Option<usize>,
    /// The field (or argument) at fault, e.g. `"event.user"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

impl InputError {
    /// An error about `field` of a single-item call.
    pub fn new(field: &'static str, problem: Problem) -> Self {
        Self {
            index: None,
            field,
            problem,
        }
    }

    /// The same error, located at item `index` of a batch.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// Refuses `count` items of `field` when there are more than `max`.
    pub fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), Self> {
        if count > max {
            return Err(Self::new(field, Problem::TooMany { count, max }));
        }
        Ok(())
    }
}

struct Position(Option<usize>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, " at item {i}"),
            None => Ok(()),
        }
    }
}

/// What is wrong with one input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The store's strict kind policy does not list this kind.
    #[error("kind {kind:?} is not one of the store's kinds ({})", allowed.join(", "))]
    KindNotAllowed {
        /// The kind asked for.
        kind: String,
        /// The kinds the store accepts.
        allowed: Vec<String>,
    },
    /// The field must not be empty.
    #[error("must not be empty")]
    Empty,
    /// The field is longer than allowed.
    #[error("is {len_bytes} bytes long; at most {max_bytes} allowed")]
    TooLong {
        /// Actual length in bytes.
        len_bytes: usize,
        /// Allowed maximum in bytes.
        max_bytes: usize,
    },
    /// The field holds a control character.
    #[error("contains a control character at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the first control character.
        offset: usize,
    },
    /// A number is outside its allowed range.
    #[error("value {value} is outside {min}..={max}")]
    OutOfRange {
        /// The offending value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A float is NaN or infinite.
    #[error("must be a finite number")]
    NotFinite,
    /// Too many items in a bounded collection.
    #[error("has {count} items; at most {max} allowed")]
    TooMany {
        /// Actual count.
        count: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// The same name appears twice where names must be unique.
    #[error("names {name:?} twice")]
    Repeated {
        /// The repeated name.
        name: String,
    },
    /// A value could not be parsed.
    #[error("cannot be parsed: {reason}")]
    Unparsable {
        /// Why parsing failed.
        reason: String,
    },
    /// The value breaks a rule of its kind (a definition that names no
    /// field its operator needs, a condition over an unknown feature).
    #[error("is invalid: {reason}")]
    Invalid {
        /// What rule it breaks.
        reason: String,
    },
    /// The user was merged into a user of another partition and its
    /// history handed over there (SPEC §7): its events belong to `into`.
    #[error("was merged into {into:?} of another partition; record its events as {into:?}'s")]
    Moved {
        /// The user it was merged into.
        into: String,
    },
    /// The user belongs to another partition's store (SPEC §7).
    #[error("belongs to partition {owner} of {count}; this store is partition {this}")]
    OtherPartition {
        /// The partition owning the user.
        owner: u32,
        /// Partitions in the deployment.
        count: u32,
        /// This store's partition.
        this: u32,
    },
}

/// Bytes read from disk did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupted {what} in column family {cf} at key {}: {reason}", Hex(.key))]
pub struct CorruptionError {
    /// Column family the bytes came from.
    pub cf: &'static str,
    /// What was being decoded (`"key"`, `"value"`).
    pub what: &'static str,
    /// The key under which the bytes were found.
    pub key: Vec<u8>,
    /// Why decoding failed.
    pub reason: String,
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long keys are cut so that one corrupted record cannot flood a log.
        const MAX_SHOWN_BYTES: usize = 64;
        for b in self.0.iter().take(MAX_SHOWN_BYTES) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > MAX_SHOWN_BYTES {
            write!(f, "…")?;
        }
        Ok(())
    }
}

/// Shorthand for results of stickydb operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
