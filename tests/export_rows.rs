//! `Db::export_users` row by row against the per-user reads it replaces:
//! every row's name, attributes, live tags, tier and points equal
//! `profile`, `account` and `tier` of that user, for every user and for
//! segments from dense to sparse (an export page reads each family through
//! one cursor that steps or seeks from user to user, so gaps of every
//! length between the exported users, users without a profile, tags or
//! account, and holders with many ledger entries must all read right).

use std::collections::BTreeMap;

use stickydb::{
    AttrValue, Cell, Db, ExportColumn, ExportGroup, ExportOptions, Options, PointsOp,
    ProfileUpdate, Segment, Sensitive, TagSource, UserSink,
};

const USERS: u64 = 3_000;
const NOW_MS: i64 = 1_772_366_400_000;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[derive(Default)]
struct Rows {
    columns: Vec<ExportColumn>,
    rows: Vec<Vec<Cell>>,
}

impl UserSink for Rows {
    fn columns(&mut self, columns: &[ExportColumn]) -> stickydb::Result<()> {
        self.columns = columns.to_vec();
        Ok(())
    }
    fn rows(&mut self, rows: &[Vec<Cell>]) -> stickydb::Result<()> {
        self.rows.extend_from_slice(rows);
        Ok(())
    }
    fn finish(&mut self) -> stickydb::Result<()> {
        Ok(())
    }
}

/// Users with nothing but an event, with a profile, tags (some expired),
/// an account with few or many entries, in every combination.
fn fill(db: &Db) {
    for u in 0..USERS {
        let h = mix(u);
        let user = format!("u{u:05}");
        db.record(&stickydb::Event::new(
            user.as_str(),
            "view",
            NOW_MS - 1_000 - u as i64,
        ))
        .expect("event");
        if h % 3 != 0 {
            let mut p = ProfileUpdate::new().set("age", (h % 90) as i64);
            if h % 5 == 0 {
                p = p.set("city", ["Shenzhen", "Wuhan"][(h >> 8) as usize % 2]);
            }
            if h % 7 == 0 {
                p = p.set_sensitive("phone", format!("+86{}", h % 1_000_000));
            }
            db.update_profile(&user, &p).expect("profile");
        }
        if h % 4 == 1 {
            let expires = (h % 8 == 1).then_some(NOW_MS - 1);
            let p = ProfileUpdate::new()
                .tag("vip", TagSource::Manual, NOW_MS - 10, expires)
                .tag("b", TagSource::Rule, NOW_MS - 10, None);
            db.update_profile(&user, &p).expect("tags");
        }
        if h % 10 == 3 {
            // a holder with one entry or with many (lots and entries after
            // its account key that a walk must pass)
            for i in 0..(1 + (h >> 16) % 2 * 12) {
                let op = PointsOp::earn(10 + i as i64, "x");
                db.points(&user, &format!("t{i}"), NOW_MS - 5_000 + i as i64, &op)
                    .expect("points");
            }
        }
    }
}

/// An attribute as its export cell prints (text attributes are `Str`).
fn text(v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => format!("Text({s:?})"),
        other => format!("{other:?}"),
    }
}

/// The row of `user` as per-user reads give it, in the export's columns.
fn want_row(db: &Db, user: &str, columns: &[ExportColumn], sensitive: Sensitive) -> Vec<String> {
    let profile = db.profile(user, sensitive).expect("profile");
    let attrs: BTreeMap<String, AttrValue> = profile
        .as_ref()
        .map(|p| p.attributes.clone())
        .unwrap_or_default();
    let mut tags: Vec<String> = profile
        .iter()
        .flat_map(|p| p.tags.iter())
        .filter(|(_, t)| t.is_live(NOW_MS))
        .map(|(n, _)| n.clone())
        .collect();
    tags.sort();
    let account = db.account(user).expect("account");
    let mut row = vec![format!("Text({user:?})")];
    for c in &columns[1..] {
        row.push(match c.name.as_str() {
            "tags" => format!("Text({:?})", tags.join(",")),
            "tier" => match account.as_ref().and_then(|a| a.tier.clone()) {
                Some(t) => format!("Text({t:?})"),
                None => "Null".into(),
            },
            "points_balance" => format!("Int({})", account.as_ref().map_or(0, |a| a.balance)),
            name => attrs.get(name).map_or("Null".into(), text),
        });
    }
    row
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(t) => format!("Text({t:?})"),
        Cell::Int(i) => format!("Int({i})"),
        Cell::Null => "Null".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_row_equals_the_per_user_reads_for_dense_and_sparse_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::create(dir.path(), Options::default()).expect("create");
    fill(&db);
    let day = db.local_day(NOW_MS);
    let segments = [
        None,
        Some("attr:age>=10"),
        Some("attr:age<3 or tag:vip"),
        Some("points>=1"),
        Some("attr:city=Wuhan"),
        Some("has:phone"),
    ];
    for sensitive in [Sensitive::Exclude, Sensitive::Include] {
        for seg in segments {
            let parsed = seg.map(|s| Segment::parse(s).expect("segment"));
            let mut options = ExportOptions::new(NOW_MS, day);
            options.groups = vec![
                ExportGroup::Attributes,
                ExportGroup::Tags,
                ExportGroup::Tier,
                ExportGroup::Points,
            ];
            options.sensitive = sensitive;
            let mut sink = Rows::default();
            let n = db
                .export_users(parsed.as_ref(), &options, &mut sink)
                .expect("export");
            let users = match &parsed {
                Some(s) => db.segment_with(s, NOW_MS, sensitive).expect("segment"),
                None => db.snapshot().segment(&Segment::All, NOW_MS).expect("all"),
            };
            assert_eq!(n, users.len(), "{seg:?}");
            assert_eq!(sink.rows.len() as u64, n);
            // (a sensitive attribute matches only when the caller may see it)
            let hidden = seg == Some("has:phone") && sensitive == Sensitive::Exclude;
            assert_eq!(n == 0, hidden, "{seg:?} {sensitive:?} selects {n}");
            for row in &sink.rows {
                let Cell::Text(user) = &row[0] else {
                    panic!("a row without its user: {row:?}")
                };
                let got: Vec<String> = row.iter().map(cell_text).collect();
                let want = want_row(&db, user, &sink.columns, sensitive);
                assert_eq!(got, want, "{seg:?} {sensitive:?}: {user}");
            }
        }
    }
}
