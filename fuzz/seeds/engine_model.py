#!/usr/bin/env python3
"""Writes fuzz/seeds/engine_model/merge_points: an engine_model input that
merges users holding points, open holds, coupons and first-order rewards
(one taken over by a late older purchase, then again by the merge; one
merge refused for a transaction id both used, made by `Borrow`). Random inputs reach such merges
rarely at engine_model's few inputs a second, so the run starts from one.

The bytes follow `arbitrary` 1.x as `fuzz_target!(|ops: Vec<Op>|)` reads
them: before each element a byte whose low bit says "one more"; a variant is
a little-endian u32 v picking variant (v * VARIANTS) >> 32; u8/bool one byte;
u16 two bytes little-endian; Option a bool byte, then the value. Keep `V` in
the order of `Op` in fuzz_targets/engine_model.rs (a changed enum leaves the
seed a valid but different input).
"""
import os
import struct

ORDER = ("Record Tag Untag Earn Redeem Hold Capture Release Adjust Reverse Retry "
         "Conflict Expire Advance Erase Merge CouponIssue CouponUse Borrow Reopen").split()
V = {name: i for i, name in enumerate(ORDER)}
N = len(ORDER)


def op(name, *fields):
    idx = V[name]
    v = (idx * (1 << 32) + N - 1) // N
    assert (v * N) >> 32 == idx
    return b"\x01" + struct.pack("<I", v) + b"".join(fields)


def u8(x):
    return bytes([x & 255])


NONE = b"\x00"


def some(x):
    return b"\x01" + x


# users: 0 u0, 1 u1, 2 anon-2, 3 anon-3; Merge{from, into, force} merges
# from into (from + 1 + into % 3) % 4.
SEQ = [
    op("Record", u8(1), u8(0), struct.pack("<H", 0), NONE),  # u1 exists
    op("Earn", u8(0), u8(50), NONE, u8(0)),
    op("Hold", u8(0), u8(20), u8(5)),
    op("CouponIssue", u8(0), u8(0), u8(0)),
    op("Borrow", u8(1), u8(0), u8(0)),  # u1 earns under u0's first txn id
    op("Merge", u8(0), u8(0), u8(1)),  # u0 into u1: refused, a clash
    op("Record", u8(1), u8(1), struct.pack("<H", 70), NONE),  # u1's first order
    op("Earn", u8(2), u8(30), some(u8(3)), u8(0)),
    op("Record", u8(2), u8(1), struct.pack("<H", 100), NONE),  # anon-2's first order
    op("Record", u8(2), u8(1), struct.pack("<H", 50), NONE),  # older, late: takes over
    op("Hold", u8(2), u8(10), u8(9)),
    op("CouponIssue", u8(2), u8(1), u8(0)),
    op("Advance", u8(0)),
    op("Merge", u8(2), u8(2), u8(0)),  # anon-2 into u1: lots, hold, coupon
    op("Capture", u8(2), u8(1), u8(0)),  # the moved hold, through the alias
    op("Retry", u8(3)),
    op("Earn", u8(3), u8(7), NONE, u8(0)),
    op("CouponIssue", u8(3), u8(1), u8(0)),
    op("Merge", u8(3), u8(0), u8(0)),  # anon-3 into u0
    op("Reverse", u8(0), u8(5)),
    op("Expire", u8(0x8D)),  # through advance
    op("Merge", u8(0), u8(0), u8(1)),  # u0 into u1 again: still a clash
]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_model", "merge_points")
with open(out, "wb") as f:
    f.write(b"".join(SEQ) + b"\x00")
