//! Partitions (SPEC §7): which store of a partitioned deployment owns a
//! user, and the internal-id range each partition allocates from.
//!
//! Owns the user → partition function and the id arithmetic; must not touch
//! the store (the store persists a [`Partition`], the allocator asks it
//! which ids to hand out).
//!
//! The function is Kafka's default partitioner: `murmur2(user) & 0x7fffffff
//! mod count`, over the user id's UTF-8 bytes. A producer that keys each
//! event by its user id — with the Java client's default partitioner, or
//! librdkafka's `partitioner=murmur2_random` — sends every event of a user
//! to the partition whose store owns the user. It never changes: a store
//! records its partition at creation.

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem};

/// Most partitions a deployment may have. Each partition gets
/// `2^32 / count` internal ids, so 4 096 partitions still leave each one
/// about a million ids — more than a partition's share of 200 M users at
/// 1 024 partitions (docs/scale-out.md).
pub const MAX_PARTITIONS: u32 = 4_096;

/// Partition `index` of `count`.
///
/// ```
/// use stickydb::partition::Partition;
/// let p = Partition::new(1, 4)?;
/// assert_eq!(p.first_id(), 1 << 30);
/// let owner = Partition::of("alice", 4);
/// assert!(owner.owns("alice"));
/// # Ok::<(), stickydb::InputError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    /// This partition, `0..count`.
    pub index: u32,
    /// How many partitions the deployment has.
    pub count: u32,
}

impl Default for Partition {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Partition {
    /// An unpartitioned store: partition 0 of 1, owning every user and id.
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    /// Partition `index` of `count`; refused unless `index < count <=`
    /// [`MAX_PARTITIONS`].
    pub fn new(index: u32, count: u32) -> Result<Self, InputError> {
        if count == 0 || count > MAX_PARTITIONS {
            return Err(InputError::new(
                "partition_count",
                Problem::OutOfRange {
                    value: i64::from(count),
                    min: 1,
                    max: i64::from(MAX_PARTITIONS),
                },
            ));
        }
        if index >= count {
            return Err(InputError::new(
                "partition",
                Problem::OutOfRange {
                    value: i64::from(index),
                    min: 0,
                    max: i64::from(count) - 1,
                },
            ));
        }
        Ok(Self { index, count })
    }

    /// Parses `P/N` (partition P of N).
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bad = || {
            InputError::new(
                "partition",
                Problem::Unparsable {
                    reason: format!("{text:?} is not INDEX/COUNT, e.g. 0/4"),
                },
            )
        };
        let (p, n) = text.split_once('/').ok_or_else(bad)?;
        let p = p.trim().parse::<u32>().map_err(|_| bad())?;
        let n = n.trim().parse::<u32>().map_err(|_| bad())?;
        Self::new(p, n)
    }

    /// The partition owning `user` among `count` (`count` is clamped to
    /// 1..=[`MAX_PARTITIONS`]).
    pub fn of(user: &str, count: u32) -> Partition {
        let count = count.clamp(1, MAX_PARTITIONS);
        Partition {
            index: (murmur2(user.as_bytes()) & 0x7fff_ffff) % count,
            count,
        }
    }

    /// Whether this partition owns `user`.
    pub fn owns(&self, user: &str) -> bool {
        self.count <= 1 || Self::of(user, self.count).index == self.index
    }

    /// Refuses `user` unless this partition owns it.
    pub fn check_owns(&self, user: &str) -> Result<(), InputError> {
        if self.owns(user) {
            return Ok(());
        }
        Err(InputError::new(
            "user",
            Problem::OtherPartition {
                owner: Self::of(user, self.count).index,
                count: self.count,
                this: self.index,
            },
        ))
    }

    /// Internal ids per partition.
    fn span(&self) -> u64 {
        (1u64 << 32) / u64::from(self.count.max(1))
    }

    /// The first internal id this partition hands out.
    pub fn first_id(&self) -> u32 {
        // span * index < 2^32 because index < count.
        u32::try_from(self.span() * u64::from(self.index)).unwrap_or(u32::MAX)
    }

    /// The last internal id this partition may hand out.
    pub fn last_id(&self) -> u32 {
        let end = self.span() * (u64::from(self.index) + 1) - 1;
        u32::try_from(end).unwrap_or(u32::MAX).min(LAST_ID)
    }

    /// Whether `user_id` lies in this partition's range.
    pub fn holds_id(&self, user_id: u32) -> bool {
        (self.first_id()..=self.last_id()).contains(&user_id)
    }
}

/// Where a write's events came from in a partitioned log: `next_offset` is
/// the offset after the last message the write covers. A store keeps, per
/// topic and partition, the position of the last write that carried one,
/// in that write's own batch — so after a crash the consumer resumes
/// exactly there, and a write whose position is not past the stored one
/// is refused as already recorded (no event counted twice, with or without
/// event ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogPosition {
    /// The log's topic (`[a-zA-Z0-9._-]`, 1..=249 bytes, as Kafka allows).
    pub topic: String,
    /// The log partition.
    pub partition: i32,
    /// The offset after the last message covered.
    pub next_offset: i64,
}

/// Longest topic name (Kafka's limit).
pub const MAX_TOPIC_BYTES: usize = 249;

impl LogPosition {
    /// Checks the topic name and the numbers.
    pub fn validate(&self) -> Result<(), InputError> {
        let t = &self.topic;
        if t.is_empty() || t.len() > MAX_TOPIC_BYTES {
            return Err(InputError::new(
                "topic",
                Problem::TooLong {
                    len_bytes: t.len(),
                    max_bytes: MAX_TOPIC_BYTES,
                },
            ));
        }
        if let Some(offset) = t
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|(i, _)| i)
        {
            return Err(InputError::new(
                "topic",
                Problem::Unparsable {
                    reason: format!("byte {offset} is not one of [a-zA-Z0-9._-]"),
                },
            ));
        }
        for (field, value) in [
            ("log_partition", i64::from(self.partition)),
            ("next_offset", self.next_offset),
        ] {
            if value < 0 {
                return Err(InputError::new(
                    field,
                    Problem::OutOfRange {
                        value,
                        min: 0,
                        max: i64::MAX,
                    },
                ));
            }
        }
        Ok(())
    }
}

/// The highest internal id any store hands out (`u32::MAX` stays free so
/// `next + 1` never overflows).
pub const LAST_ID: u32 = u32::MAX - 1;

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, librdkafka's
/// `rd_murmur2`): seed `0x9747b28c`, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka hashes the length as a Java int; keys are far shorter than 2^31.
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2` (as Java ints).
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()) as i32, want, "{key}");
        }
    }

    #[test]
    fn ranges_tile_the_id_space() {
        for count in [1u32, 2, 3, 4, 7, 1024, MAX_PARTITIONS] {
            let mut next = 0u64;
            for index in 0..count {
                let p = Partition::new(index, count).expect("valid");
                assert_eq!(u64::from(p.first_id()), next);
                assert!(p.first_id() <= p.last_id());
                next = u64::from(p.last_id()) + 1;
            }
            assert!(next <= u64::from(LAST_ID) + 1);
            assert!(
                next + u64::from(count) >= 1 << 32,
                "at most count-1 ids unused"
            );
        }
        assert_eq!(Partition::WHOLE.last_id(), LAST_ID);
    }

    #[test]
    fn bad_partitions_are_refused() {
        let range = |field, value, min, max| {
            Err(InputError::new(
                field,
                Problem::OutOfRange { value, min, max },
            ))
        };
        assert_eq!(Partition::new(4, 4), range("partition", 4, 0, 3));
        assert_eq!(Partition::new(0, 0), range("partition_count", 0, 1, 4096));
        assert_eq!(
            Partition::new(0, MAX_PARTITIONS + 1),
            range("partition_count", 4097, 1, 4096)
        );
        assert!(matches!(
            Partition::parse("1-4"),
            Err(InputError {
                field: "partition",
                problem: Problem::Unparsable { .. },
                ..
            })
        ));
        assert_eq!(
            Partition::parse("3/4").expect("ok"),
            Partition { index: 3, count: 4 }
        );
    }
}
