import duckdb
con = duckdb.connect('./events.duckdb')
con.execute("create or replace table events as select * from read_csv_auto('./events.csv')")
print(con.execute("select count(*) from events").fetchone())
