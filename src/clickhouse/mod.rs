//! ClickHouse as the global query plane (SPEC §7): a store's per-day user
//! sets as ClickHouse `AggregateFunction(groupBitmap, UInt32)` states, in
//! ClickHouse's `RowBinary` format, ready for `INSERT … FORMAT RowBinary`.
//!
//! Owns the export encoding only; reads the store through [`Db::metrics`].
//! The table (docs/scale-out.md):
//!
//! ```sql
//! CREATE TABLE stickydb_user_sets (
//!     part     UInt32,   -- the store's partition index
//!     user_set String,   -- 'active', 'new' or 'kind:NAME'
//!     day      Date32,   -- the store's local day
//!     version  UInt64,   -- the export's version: the newest row wins
//!     users    AggregateFunction(groupBitmap, UInt32)
//! ) ENGINE = ReplacingMergeTree(version) ORDER BY (part, user_set, day);
//! ```
//!
//! Every (set, day) of the range gets a row, an empty set included, so a
//! re-export after an erasure or a merge replaces each older row instead of
//! leaving a user in it. Partitions hold disjoint internal ids (SPEC §7), so
//! `groupBitmapMerge` over partitions is the global set.
//!
//! A groupBitmap state is a kind byte — 0: a small set (a varint count,
//! then each value as UInt32 LE), used by ClickHouse for at most 32 values;
//! 1: a varint byte length, then the roaring portable serialization. Both
//! are written as ClickHouse writes them (checked against ClickHouse by
//! `tests/clickhouse_export.rs`).

use std::io::Write;

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::kinds::EventKind;
use crate::Db;

/// Largest set ClickHouse keeps in the small form.
const SMALL_SET_MAX: u64 = 32;

/// Most days one export may cover (ten years): a bound on its rows.
pub const MAX_EXPORT_DAYS: i32 = 3_660;

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Rows with at least one user.
    pub non_empty_rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the user sets of `db` for the days `from_day..=to_day` to `out`
/// as RowBinary rows of the table above, each with `version`: the active
/// users of each day (`active`), the users whose first activity fell on it
/// (`new`), and the users with an event of each kind (`kind:NAME`).
///
/// ```
/// # fn main() -> Result<(), stickydb::Error> {
/// let dir = tempfile::tempdir()?;
/// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
/// db.record(&stickydb::Event::new("alice", "view", 0))?;
/// let mut out = Vec::new();
/// let summary = stickydb::clickhouse::export(&db, 0, 0, 1, &mut out)?;
/// assert_eq!(summary.non_empty_rows, 3); // active, new, kind:view
/// assert_eq!(summary.bytes, out.len() as u64);
/// # Ok(()) }
/// ```
pub fn export(
    db: &Db,
    from_day: i32,
    to_day: i32,
    version: u64,
    out: &mut dyn Write,
) -> Result<ExportSummary> {
    crate::error::InputError::check_count(
        "days",
        usize::try_from(i64::from(to_day) - i64::from(from_day) + 1).unwrap_or(0),
        MAX_EXPORT_DAYS as usize,
    )?;
    let m = db.metrics();
    let part = db.partition().index;
    let mut w = Rows {
        out,
        summary: ExportSummary::default(),
        buf: Vec::new(),
    };
    let empty = RoaringBitmap::new();
    let mut emit = |name: &str, sets: &std::collections::BTreeMap<i32, RoaringBitmap>| {
        for day in from_day..=to_day {
            w.row(part, name, day, version, sets.get(&day).unwrap_or(&empty))?;
        }
        Ok::<(), crate::Error>(())
    };
    emit("active", &m.day_sets(None, from_day, to_day)?)?;
    emit("new", &m.first_day_sets(from_day, to_day)?)?;
    let mut kinds: Vec<EventKind> = db.kinds().into_iter().map(|(_, k)| k).collect();
    kinds.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    for kind in kinds {
        let name = format!("kind:{}", kind.as_str());
        emit(&name, &m.day_sets(Some(&kind), from_day, to_day)?)?;
    }
    w.out.flush()?;
    Ok(w.summary)
}

struct Rows<'o> {
    out: &'o mut dyn Write,
    summary: ExportSummary,
    buf: Vec<u8>,
}

impl Rows<'_> {
    fn row(
        &mut self,
        part: u32,
        set: &str,
        day: i32,
        version: u64,
        users: &RoaringBitmap,
    ) -> Result<()> {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&part.to_le_bytes());
        write_varint(b, set.len() as u64);
        b.extend_from_slice(set.as_bytes());
        b.extend_from_slice(&day.to_le_bytes());
        b.extend_from_slice(&version.to_le_bytes());
        group_bitmap_state(users, b)?;
        self.out.write_all(b)?;
        self.summary.rows += 1;
        self.summary.non_empty_rows += u64::from(!users.is_empty());
        self.summary.bytes += b.len() as u64;
        Ok(())
    }
}

/// Appends `users` as a ClickHouse `groupBitmap(UInt32)` state.
pub fn group_bitmap_state(users: &RoaringBitmap, out: &mut Vec<u8>) -> Result<()> {
    if users.len() <= SMALL_SET_MAX {
        out.push(0);
        write_varint(out, users.len());
        for u in users {
            out.extend_from_slice(&u.to_le_bytes());
        }
    } else {
        out.push(1);
        write_varint(out, users.serialized_size() as u64);
        users.serialize_into(&mut *out)?;
    }
    Ok(())
}

/// ClickHouse's unsigned LEB128 varint.
fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes ClickHouse itself printed for
    /// `hex(groupBitmapState(toUInt32(number))) FROM numbers(3)`.
    #[test]
    fn small_state_is_clickhouses() {
        let mut out = Vec::new();
        group_bitmap_state(&(0..3).collect(), &mut out).expect("encode");
        assert_eq!(out, [0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn large_state_is_a_roaring_with_its_length() {
        let set: RoaringBitmap = (0..100).collect();
        let mut out = Vec::new();
        group_bitmap_state(&set, &mut out).expect("encode");
        assert_eq!(out[0], 1);
        // 216 bytes of roaring: a two-byte varint (0xD8 0x01)
        assert_eq!(&out[1..3], &[0xD8, 0x01]);
        assert_eq!(out.len(), 3 + 216);
        assert_eq!(
            RoaringBitmap::deserialize_from(&out[3..]).expect("roaring"),
            set
        );
    }
}
