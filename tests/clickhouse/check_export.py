"""Loads stickydb's ClickHouse exports into chDB (ClickHouse in-process) and
checks ClickHouse's own answers against the single-store answers the Rust
test wrote: DAU and MAU per day, and the daily first-activity retention
matrix, from groupBitmapMerge / bitmapAndCardinality over every partition.

usage: check_export.py DIR
DIR holds phase1/*.rowbinary + expected1.json, and phase2/*.rowbinary +
expected2.json (a re-export after erasures, with a higher version: loaded on
top of phase 1, its rows must replace phase 1's rather than OR into them).
Exit status 0 when every answer matches; the first difference otherwise.
"""

import json
import os
import sys
import tempfile

from chdb import session

SCHEMA = """
CREATE TABLE stickydb_user_sets (
    part     UInt32,
    user_set String,
    day      Date32,
    version  UInt64,
    users    AggregateFunction(groupBitmap, UInt32)
) ENGINE = ReplacingMergeTree(version) ORDER BY (part, user_set, day)
"""
COLUMNS = ("part UInt32, user_set String, day Date32, version UInt64, "
           "users AggregateFunction(groupBitmap, UInt32)")


def rows(s, sql):
    out = s.query(sql, "JSONCompact")
    return json.loads(str(out))["data"] if str(out).strip() else []


def load(s, folder):
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        s.query(f"INSERT INTO stickydb_user_sets SELECT * FROM "
                f"file('{path}', 'RowBinary', '{COLUMNS}')")


def day_number(text):
    # Date32 comes back as YYYY-MM-DD; the expectations use day numbers.
    import datetime
    d = datetime.date.fromisoformat(text)
    return (d - datetime.date(1970, 1, 1)).days


def check(s, expected, phase):
    failures = []
    lo, hi = expected["from"], expected["to"]
    dau = {day_number(d): int(n) for d, n in rows(s, f"""
        SELECT day, groupBitmapMerge(users) FROM stickydb_user_sets FINAL
        WHERE user_set = 'active' GROUP BY day ORDER BY day""")}
    # MAU as of day d: the union of days d-29..d; each day's set counts
    # toward the 30 days that follow it.
    mau = {day_number(d): int(n) for d, n in rows(s, f"""
        SELECT toDate32(day + w) AS d, groupBitmapMerge(users)
        FROM stickydb_user_sets FINAL ARRAY JOIN range(30) AS w
        WHERE user_set = 'active' GROUP BY d ORDER BY d""")}
    for row in expected["active"]:
        d = row["day"]
        if dau.get(d, 0) != row["dau"]:
            failures.append(f"{phase}: DAU of day {d}: ClickHouse {dau.get(d, 0)}, store {row['dau']}")
        if mau.get(d, 0) != row["mau"]:
            failures.append(f"{phase}: MAU of day {d}: ClickHouse {mau.get(d, 0)}, store {row['mau']}")
    cells = rows(s, f"""
        SELECT c.day, dateDiff('day', c.day, r.day), bitmapCardinality(c.s), bitmapAndCardinality(c.s, r.s)
        FROM (SELECT day, groupBitmapMergeState(users) AS s FROM stickydb_user_sets FINAL
              WHERE user_set = 'new' GROUP BY day) AS c
        CROSS JOIN
             (SELECT day, groupBitmapMergeState(users) AS s FROM stickydb_user_sets FINAL
              WHERE user_set = 'active' GROUP BY day) AS r
        WHERE r.day >= c.day ORDER BY c.day, r.day""")
    got = {}
    for cohort, k, size, n in cells:
        c = got.setdefault(day_number(cohort), {"size": int(size), "counts": {}})
        c["counts"][int(k)] = int(n)
    for cohort in expected["retention"]:
        c = got.get(cohort["cohort"], {"size": 0, "counts": {}})
        if c["size"] != cohort["size"]:
            failures.append(f"{phase}: cohort {cohort['cohort']} size: ClickHouse {c['size']}, store {cohort['size']}")
        for k, n in enumerate(cohort["counts"]):
            if c["counts"].get(k, 0) != n:
                failures.append(f"{phase}: cohort {cohort['cohort']} day +{k}: "
                                f"ClickHouse {c['counts'].get(k, 0)}, store {n}")
    # ClickHouse's own state for a small set is byte for byte ours.
    ours = expected.get("small_state_hex")
    if ours:
        theirs = rows(s, "SELECT hex(groupBitmapState(toUInt32(number))) FROM numbers(3)")[0][0]
        if theirs != ours:
            failures.append(f"small groupBitmap state: ClickHouse {theirs}, ours {ours}")
    checked = len(expected["active"]) * 2 + sum(len(c["counts"]) + 1 for c in expected["retention"])
    return failures, checked


def main():
    base = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        s = session.Session(tmp)
        s.query("CREATE DATABASE IF NOT EXISTS sdb")
        s.query("USE sdb")
        s.query(SCHEMA)
        total = 0
        for phase in ("1", "2"):
            load(s, os.path.join(base, f"phase{phase}"))
            with open(os.path.join(base, f"expected{phase}.json")) as f:
                expected = json.load(f)
            failures, checked = check(s, expected, f"phase {phase}")
            if failures:
                print("\n".join(failures[:20]))
                return 1
            total += checked
        print(f"chDB: {total} answers equal the single store's")
        return 0


if __name__ == "__main__":
    sys.exit(main())
