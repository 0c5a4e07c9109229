import sqlite3, json, time, os
p='./peer.sqlite'
for f in [p, p+'-wal', p+'-shm']:
    if os.path.exists(f): os.remove(f)
c = sqlite3.connect(p)
c.execute('pragma journal_mode=wal'); c.execute('pragma synchronous=normal')
c.execute('create table events(user text, kind text, ts integer, event_id text, amount integer)')
c.execute('create unique index ue on events(user, event_id)')
c.execute('create index ut on events(user, ts)')
t = time.time(); n = 0; rows = []
with open('./events.jsonl') as f:
    for line in f:
        r = json.loads(line)
        rows.append((r['user'], r['kind'], r['ts'], r.get('event_id'), r.get('amount')))
        if len(rows) == 1000:
            c.executemany('insert or ignore into events values (?,?,?,?,?)', rows); c.commit(); n += len(rows); rows = []
if rows:
    c.executemany('insert or ignore into events values (?,?,?,?,?)', rows); c.commit(); n += len(rows)
el = time.time() - t
print(n, round(el, 2), round(n / el))
