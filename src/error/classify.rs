//! What a request handler asks of an error (retry, refuse, alert), the
//! storage engine's errors without its types, and a transaction's own
//! refusals.

use std::fmt;

use super::{ConsumeError, Error};

impl Error {
    /// A broken invariant of stickydb itself.
    pub(crate) fn internal(what: impl Into<String>) -> Self {
        Error::Internal { what: what.into() }
    }

    /// Whether the same call may succeed if made again unchanged:
    /// contention ran out of rounds, or the storage engine was busy.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Busy { .. } => true,
            Error::Storage(e) => e.retryable,
            _ => false,
        }
    }

    /// Whether the caller's input or a business rule refused the call
    /// (bad field, unknown user, overdraw, conflicting id, a limit of one
    /// input, a value too large, a read-only handle): the same call will
    /// be refused again; nothing was written.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Input(_)
            | Error::UnknownUser { .. }
            | Error::Ledger(_)
            | Error::Coupon(_)
            | Error::Merge(_)
            | Error::LimitReached { .. }
            | Error::ValueTooLarge { .. }
            | Error::ReadOnly => true,
            Error::Transaction(t) => !matches!(t, TxError::PartFailed { .. }),
            Error::Consume(ConsumeError::BadMessage { .. }) => true,
            _ => false,
        }
    }

    /// Whether the store, the disk or stickydb itself failed: corrupt
    /// bytes, an engine or file-system error, a handle poisoned by a
    /// failed commit, an internal error. Alert an operator.
    pub fn is_storage(&self) -> bool {
        match self {
            Error::Storage(e) => !e.retryable,
            Error::Corruption(_)
            | Error::Io(_)
            | Error::Poisoned { .. }
            | Error::Internal { .. } => true,
            _ => false,
        }
    }
}

/// An error of the storage engine, kept as its message and whether it is
/// transient (RocksDB's busy, timed-out and try-again statuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    message: String,
    retryable: bool,
}

impl StorageError {
    /// The engine's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

#[doc(hidden)]
impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        use rocksdb::ErrorKind as K;
        let retryable = matches!(e.kind(), K::Busy | K::TimedOut | K::TryAgain);
        Error::Storage(StorageError {
            message: e.into_string(),
            retryable,
        })
    }
}

/// Why a write transaction ([`crate::Db::write`]) was refused as a whole.
/// Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Call number `part` (from 0) of the transaction failed with the
    /// error it returned, and the closure returned `Ok` anyway: a failed
    /// call fails the whole transaction.
    #[error("call {part} ({op}) of the transaction failed; nothing was written")]
    PartFailed {
        /// The call's position in the transaction, from 0.
        part: usize,
        /// Which call: `record`, `points`, `update_profile`, `merge`.
        op: &'static str,
    },
    /// A merge came after another call on one of its users: it reads
    /// them as stored, without the transaction's changes.
    #[error("the merge of {from:?} into {into:?} must come before any other call on them in the transaction")]
    MergeNotFirst {
        /// The user to merge.
        from: String,
        /// The target.
        into: String,
    },
    /// A second merge in one transaction.
    #[error("at most one merge per transaction")]
    SecondMerge,
    /// A write from inside a transaction's closure, through a `Db` instead
    /// of the transaction (it would wait for locks the closure's own
    /// transaction holds, or take another store's out of order): make it a
    /// call on the transaction, or after it.
    #[error("a write from inside a transaction's closure: call it on the transaction")]
    Nested,
}
