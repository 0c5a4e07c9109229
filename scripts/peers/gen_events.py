# 50k users over 120 days (2024-01-01..), event ids, no sessions: JSONL for
# stickydb import and CSV for DuckDB, the same events.
import random, json, datetime
random.seed(7)
T0 = int(datetime.datetime(2024,1,1,tzinfo=datetime.timezone.utc).timestamp()*1000)
DAY = 86400000
kinds = ["view"]*6 + ["search","add_to_cart","purchase","sign_in"]
n = 0
with open('./events.jsonl','w') as j, open('./events.csv','w') as c:
    c.write("user,kind,ts\n")
    for u in range(50000):
        first = random.randrange(0, 110)
        p = random.choice([0.05, 0.15, 0.35, 0.6])
        for d in range(first, 120):
            if d != first and random.random() > p: continue
            for k in range(random.randint(1, 6)):
                ts = T0 + d*DAY + random.randrange(DAY)
                kind = random.choice(kinds)
                rec = {"user": f"u{u}", "kind": kind, "ts": ts, "event_id": f"e{n}"}
                if kind == "purchase": rec["amount"] = random.randrange(500, 20000)
                j.write(json.dumps(rec)+"\n"); c.write(f"u{u},{kind},{ts}\n"); n += 1
print(n)
