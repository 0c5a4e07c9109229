//! Dense bitsets of one user-id chunk (2^16 users, 1 024 words), read
//! straight from stored set values: the query-side form of the chunked user
//! sets for questions that combine many sets (retention), where walking
//! users one by one cost more than AND-and-count over words.
//!
//! A stored chunk value is `FORMAT_V1 ‖ roaring` holding at most one
//! container (every user of a chunk shares the high 16 bits); the roaring
//! portable format is decoded here directly into words — an array or run
//! container scatters its values, a bitmap container is copied.

use roaring::RoaringBitmap;

use crate::codec::FORMAT_V1;

/// Words per chunk.
pub(crate) const WORDS: usize = 1 << 10;

/// The users of one chunk, one bit each (bit = low 16 bits of the id).
#[derive(Clone)]
pub(crate) struct Bits(Box<[u64; WORDS]>);

impl Default for Bits {
    fn default() -> Self {
        Bits(Box::new([0; WORDS]))
    }
}

const SERIAL_COOKIE_NO_RUNCONTAINER: u32 = 12346;
const SERIAL_COOKIE: u16 = 12347;
const NO_OFFSET_THRESHOLD: usize = 4;
const ARRAY_LIMIT: usize = 4096;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

impl Bits {
    /// Sets the bit of one low id.
    pub fn set(&mut self, low: u16) {
        self.0[usize::from(low >> 6)] |= 1 << (low & 63);
    }

    /// ORs a stored chunk value (`FORMAT_V1 ‖ roaring`) in; `None` when the
    /// bytes are not a well-formed value of at most one container.
    pub fn or_stored(&mut self, bytes: &[u8]) -> Option<()> {
        let (&format, body) = bytes.split_first()?;
        if format != FORMAT_V1 {
            return None;
        }
        let mut r = Reader(body);
        let cookie = r.u32()?;
        let (size, has_offsets, runs) = if cookie == SERIAL_COOKIE_NO_RUNCONTAINER {
            (r.u32()? as usize, true, None)
        } else if cookie as u16 == SERIAL_COOKIE {
            let size = ((cookie >> 16) + 1) as usize;
            (
                size,
                size >= NO_OFFSET_THRESHOLD,
                Some(r.take(size.div_ceil(8))?),
            )
        } else {
            return None;
        };
        if size > 1 {
            return None;
        }
        let descriptions = r.take(size * 4)?;
        if has_offsets {
            r.take(size * 4)?;
        }
        for i in 0..size {
            let cardinality = usize::from(u16::from_le_bytes([
                descriptions[i * 4 + 2],
                descriptions[i * 4 + 3],
            ])) + 1;
            let is_run = runs.is_some_and(|bm| bm[i / 8] & (1 << (i % 8)) != 0);
            if is_run {
                let n = usize::from(r.u16()?);
                for _ in 0..n {
                    let start = r.u16()?;
                    let len = r.u16()?;
                    let end = start.checked_add(len)?;
                    for v in start..=end {
                        self.set(v);
                    }
                }
            } else if cardinality <= ARRAY_LIMIT {
                for _ in 0..cardinality {
                    let v = r.u16()?;
                    self.set(v);
                }
            } else {
                let words = r.take(WORDS * 8)?;
                for (w, c) in self.0.iter_mut().zip(words.chunks_exact(8)) {
                    *w |= u64::from_le_bytes(c.try_into().ok()?);
                }
            }
        }
        r.0.is_empty().then_some(())
    }

    /// ORs the users of `set` whose ids fall in `chunk` in.
    pub fn or_roaring(&mut self, set: &RoaringBitmap, chunk: u16) {
        let lo = u32::from(chunk) << 16;
        for u in set.range(lo..=lo | 0xffff) {
            self.set(u as u16);
        }
    }

    /// Clears every bit.
    pub fn clear(&mut self) {
        self.0.fill(0);
    }

    /// `self |= other`.
    pub fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    /// `self &= other`.
    pub fn and(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
    }

    /// Number of users.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// `|self ∩ other|`.
    pub fn and_count(&self, other: &Bits) -> u64 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::merge::encode_bitmap;

    fn roundtrip(ids: &[u32]) -> u64 {
        let set: RoaringBitmap = ids.iter().copied().collect();
        let mut b = Bits::default();
        assert!(b.or_stored(&encode_bitmap(&set)).is_some());
        let mut r = Bits::default();
        r.or_roaring(&set, 1);
        assert_eq!(b.count(), r.count());
        assert_eq!(b.and_count(&r), r.count());
        b.count()
    }

    #[test]
    fn stored_arrays_and_bitmaps_decode() {
        assert_eq!(roundtrip(&[]), 0);
        assert_eq!(roundtrip(&[65_536, 65_537, 131_071]), 3);
        let dense: Vec<u32> = (65_536..65_536 + 10_000).collect();
        assert_eq!(roundtrip(&dense), 10_000);
    }

    #[test]
    fn run_containers_decode() {
        // the portable format with one run container: ids 65 536 ..= 69 999
        let mut v = vec![FORMAT_V1];
        v.extend_from_slice(&u32::from(SERIAL_COOKIE).to_le_bytes()); // size 1
        v.push(0b1); // container 0 is a run container
        v.extend_from_slice(&1u16.to_le_bytes()); // key
        v.extend_from_slice(&4_463u16.to_le_bytes()); // cardinality − 1
        v.extend_from_slice(&1u16.to_le_bytes()); // one run
        v.extend_from_slice(&0u16.to_le_bytes()); // from 0
        v.extend_from_slice(&4_463u16.to_le_bytes()); // length − 1
        let mut b = Bits::default();
        assert!(b.or_stored(&v).is_some());
        assert_eq!(b.count(), 4_464);
        let back = RoaringBitmap::deserialize_from(&v[1..]).unwrap_or_default();
        assert_eq!(back.len(), 4_464);
    }

    #[test]
    fn malformed_values_are_none() {
        let mut b = Bits::default();
        assert!(b.or_stored(&[]).is_none());
        assert!(b.or_stored(&[FORMAT_V1, 1, 2, 3]).is_none());
        let two: RoaringBitmap = [1u32, 70_000].into_iter().collect();
        assert!(
            b.or_stored(&encode_bitmap(&two)).is_none(),
            "one container per chunk"
        );
    }
}
