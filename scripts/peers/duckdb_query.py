import sys, duckdb
con = duckdb.connect('./events.duckdb', read_only=True)
which = sys.argv[1]
if which == "active":
    r = con.execute("""
    with d as (select distinct user, (ts // 86400000)::int as day from events),
    days as (select range::int as day from range(19723+90, 19723+120))
    select days.day,
      count(distinct case when d.day = days.day then d.user end),
      count(distinct case when d.day > days.day - 7 then d.user end),
      count(distinct d.user)
    from days join d on d.day between days.day - 29 and days.day
    group by days.day order by days.day""").fetchall()
else:
    r = con.execute("""
    with d as (select distinct user, (ts // 86400000)::int as day from events),
    f as (select user, min(day) as first from d group by user)
    select f.first, d.day - f.first as k, count(*) from f join d using (user)
    where f.first between 19723+90 and 19723+119 and d.day <= 19723+119
    group by 1, 2 order by 1, 2""").fetchall()
print(len(r), sum(x[-1] for x in r))
