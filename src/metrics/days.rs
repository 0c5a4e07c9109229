//! Day sets and calendar periods.

use roaring::RoaringBitmap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{month_start, week_start};

// Local days are signed (a −14 h offset puts the epoch on day −1); bitmaps
// hold `u32`. The keys module's order-keeping sign flip maps one to the
// other, so min/max and ranges over bits are min/max and ranges over days.
use crate::keys::{day_bits as day_bit, day_from_bits as bit_day};

/// A set of local days, stored as a roaring bitmap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaySet(RoaringBitmap);

impl DaySet {
    /// Adds `day`; returns whether it was new.
    pub fn insert(&mut self, day: i32) -> bool {
        self.0.insert(day_bit(day))
    }

    /// Whether `day` is in the set.
    pub fn contains(&self, day: i32) -> bool {
        self.0.contains(day_bit(day))
    }

    /// The earliest day.
    pub fn first(&self) -> Option<i32> {
        self.0.min().map(bit_day)
    }

    /// The latest day.
    pub fn last(&self) -> Option<i32> {
        self.0.max().map(bit_day)
    }

    /// The latest day `<= day`.
    pub fn last_at_or_before(&self, day: i32) -> Option<i32> {
        let rank = self.0.rank(day_bit(day));
        if rank == 0 {
            None
        } else {
            self.0.select((rank - 1) as u32).map(bit_day)
        }
    }

    /// The earliest day `> day`.
    pub fn first_after(&self, day: i32) -> Option<i32> {
        let rank = self.0.rank(day_bit(day));
        self.0.select(rank as u32).map(bit_day)
    }

    /// Number of days `<= day`.
    pub fn count_at_or_before(&self, day: i32) -> u64 {
        self.0.rank(day_bit(day))
    }

    /// Number of days in `from..=to`.
    pub fn count_between(&self, from: i32, to: i32) -> u64 {
        if from > to {
            return 0;
        }
        self.0.range_cardinality(day_bit(from)..=day_bit(to))
    }

    /// Number of days.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Days in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().map(bit_day)
    }

    /// Days in `from..=to`, ascending.
    pub fn range(&self, from: i32, to: i32) -> impl Iterator<Item = i32> + '_ {
        let (lo, hi) = if from <= to {
            (day_bit(from), day_bit(to))
        } else {
            (1, 0)
        };
        self.0
            .iter()
            .skip_while(move |b| *b < lo)
            .take_while(move |b| *b <= hi)
            .map(bit_day)
    }
}

impl FromIterator<i32> for DaySet {
    fn from_iter<I: IntoIterator<Item = i32>>(iter: I) -> Self {
        Self(iter.into_iter().map(day_bit).collect())
    }
}

impl Serialize for DaySet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.serialized_size());
        // Writing into a Vec cannot fail.
        let _ = self.0.serialize_into(&mut bytes);
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for DaySet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde_bytes_vec(d)?;
        RoaringBitmap::deserialize_from(&bytes[..])
            .map(DaySet)
            .map_err(serde::de::Error::custom)
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("roaring bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_byte_buf(V)
}

/// A calendar period for retention and lifecycle: days, ISO weeks (Monday
/// first) or calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// One local day.
    Day,
    /// An ISO week, named by its Monday.
    Week,
    /// A calendar month, named by its first day.
    Month,
}

impl Period {
    /// The first day of the period holding `day`.
    pub fn start(self, day: i32) -> i32 {
        match self {
            Period::Day => day,
            Period::Week => week_start(day),
            Period::Month => month_start(day),
        }
    }

    /// The first day of the period after the one starting at `start`.
    pub fn next(self, start: i32) -> i32 {
        match self {
            Period::Day => start + 1,
            Period::Week => start + 7,
            // 31 days past a month's first day is always inside the next month.
            Period::Month => month_start(start + 31),
        }
    }

    /// The first day of the period before the one starting at `start`.
    pub fn prev(self, start: i32) -> i32 {
        match self {
            Period::Day => start - 1,
            Period::Week => start - 7,
            Period::Month => month_start(start - 1),
        }
    }

    /// The last day of the period starting at `start`.
    pub fn end(self, start: i32) -> i32 {
        self.next(start) - 1
    }

    /// Starts of every period touching `from..=to`, ascending.
    pub fn starts(self, from: i32, to: i32) -> Vec<i32> {
        let mut out = Vec::new();
        if from > to {
            return out;
        }
        let mut p = self.start(from);
        while p <= to {
            out.push(p);
            p = self.next(p);
        }
        out
    }

    /// Parses `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_day;

    #[test]
    fn bits_keep_order_across_zero() {
        assert!(day_bit(-1) < day_bit(0));
        assert_eq!(bit_day(day_bit(-1)), -1);
        let s: DaySet = [-1, 3, 5, 9].into_iter().collect();
        assert_eq!(s.first(), Some(-1));
        assert_eq!(s.last_at_or_before(8), Some(5));
        assert_eq!(s.last_at_or_before(-2), None);
        assert_eq!(s.first_after(3), Some(5));
        assert_eq!(s.first_after(-2), Some(-1));
        assert_eq!(s.first_after(9), None);
        assert_eq!(s.count_between(0, 9), 3);
        assert_eq!(s.range(3, 5).collect::<Vec<_>>(), vec![3, 5]);
        let back: DaySet =
            crate::codec::decode(&crate::codec::encode(&s).unwrap_or_default()).unwrap_or_default();
        assert_eq!(back, s);
    }

    #[test]
    fn months_and_weeks_cross_years() {
        let d = parse_day("2024-12-31").unwrap_or(0);
        let m = Period::Month.start(d);
        assert_eq!(crate::time::format_day(Period::Month.next(m)), "2025-01-01");
        assert_eq!(crate::time::format_day(Period::Month.prev(m)), "2024-11-01");
        assert_eq!(crate::time::format_day(Period::Week.start(d)), "2024-12-30");
        assert_eq!(Period::Month.end(m), d);
        assert_eq!(Period::Week.starts(d, d + 7).len(), 2);
    }
}
