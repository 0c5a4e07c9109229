//! Stored values carry a format byte, round-trip, and never panic on garbage.

use proptest::prelude::*;
use stickydb::codec::{self, DecodeError, FORMAT_V1};
use stickydb::store::merge::{decode_bitmap, decode_counter, BitmapDelta};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn round_trip(v in (any::<u32>(), ".{0,40}", proptest::option::of(any::<i64>()), proptest::collection::vec(any::<u8>(), 0..64))) {
        let bytes = codec::encode(&v).unwrap();
        prop_assert_eq!(bytes[0], FORMAT_V1);
        let back: (u32, String, Option<i64>, Vec<u8>) = codec::decode(&bytes).expect("decodes");
        prop_assert_eq!(back, v);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode::<(u32, String, Option<i64>, Vec<(String, u64)>)>(&bytes);
        let _ = codec::decode_limited::<Vec<String>>(&bytes, 64);
        let _ = BitmapDelta::decode(&bytes);
        let _ = decode_bitmap(&bytes);
        let _ = decode_counter(&bytes);
    }

    #[test]
    fn flipped_bytes_never_panic(v in (any::<u32>(), ".{0,40}"), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut bytes = codec::encode(&v).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        if i == 0 {
            prop_assert!(matches!(codec::decode::<(u32, String)>(&bytes), Err(DecodeError::UnknownFormat(_)) | Err(DecodeError::Poisoned)));
        } else {
            let _ = codec::decode::<(u32, String)>(&bytes);
        }
    }

    /// Delta composition is associative, so RocksDB may group operands freely.
    #[test]
    fn bitmap_deltas_compose_associatively(
        ops in proptest::collection::vec((any::<bool>(), 0u32..64), 0..40),
        split_a in any::<prop::sample::Index>(), split_b in any::<prop::sample::Index>(),
        base in proptest::collection::btree_set(0u32..64, 0..20),
    ) {
        let deltas: Vec<BitmapDelta> = ops.iter().map(|&(add, u)| if add { BitmapDelta::add(u) } else { BitmapDelta::remove(u) }).collect();
        let mut model: std::collections::BTreeSet<u32> = base.clone();
        for &(add, u) in &ops { if add { model.insert(u); } else { model.remove(&u); } }
        let n = deltas.len();
        let (i, j) = { let a = split_a.index(n + 1); let b = split_b.index(n + 1); (a.min(b), a.max(b)) };
        let fold = |ds: &[BitmapDelta]| ds.iter().fold(BitmapDelta::default(), |acc, d| acc.then(d));
        let grouped = fold(&deltas[..i]).then(&fold(&deltas[i..j]).then(&fold(&deltas[j..])));
        let mut set: roaring::RoaringBitmap = base.iter().copied().collect();
        grouped.apply(&mut set);
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
    }
}
