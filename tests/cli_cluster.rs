//! The real binary (SPEC §7): `init --partition`, per-partition imports,
//! `cluster --store …` answering every question with the JSON the single
//! store's command gives for all the events; a foreign user in an import
//! is reported with file and line.

mod common;

use common::cli::{ok, stickydb};
use serde_json::Value;
use stickydb::Partition;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn cluster_commands_answer_as_one_store() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 3];
    let mut all = Vec::new();
    for i in 0..900u64 {
        let user = format!("u{}", (i * 7919) % 97);
        let kind = ["view", "purchase", "signup"][(i % 3) as usize];
        let amount = if kind == "purchase" {
            format!(r#","amount":{}"#, 100 + i)
        } else {
            String::new()
        };
        let line = format!(
            r#"{{"user":"{user}","kind":"{kind}","ts":{}{amount}}}"#,
            common::T0 + ((i * 37) % 40) as i64 * common::DAY + i as i64
        );
        lines[Partition::of(&user, 3).index as usize].push(line.clone());
        all.push(line);
    }
    // an experiment over every user
    for u in 0..97u64 {
        let user = format!("u{u}");
        let line = format!(
            r#"{{"user":"{user}","kind":"exposure","ts":{},"properties":{{"experiment":"checkout","variant":"{}"}}}}"#,
            common::T0 + (u % 20) as i64 * common::DAY + 5,
            ["control", "b"][(u % 2) as usize]
        );
        lines[Partition::of(&user, 3).index as usize].push(line.clone());
        all.push(line);
    }
    let whole = tmp.path().join("whole");
    let whole_file = tmp.path().join("all.jsonl");
    std::fs::write(&whole_file, all.join("\n")).unwrap();
    ok(&stickydb(&whole, &["init"]));
    ok(&stickydb(&whole, &["import", whole_file.to_str().unwrap()]));
    let mut stores = Vec::new();
    for (p, l) in lines.iter().enumerate() {
        let dir = tmp.path().join(format!("p{p}"));
        let file = tmp.path().join(format!("p{p}.jsonl"));
        std::fs::write(&file, l.join("\n")).unwrap();
        ok(&stickydb(&dir, &["init", "--partition", &format!("{p}/3")]));
        ok(&stickydb(&dir, &["import", file.to_str().unwrap()]));
        stores.push(dir);
    }
    // A partition's import refuses another partition's user by line.
    let foreign = tmp.path().join("foreign.jsonl");
    std::fs::write(
        &foreign,
        [lines[1][0].as_str(), lines[0][0].as_str()].join("\n"),
    )
    .unwrap();
    let out = stickydb(&stores[1], &["import", foreign.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("foreign.jsonl:2") && err.contains("belongs to partition 0 of 3"),
        "{err}"
    );

    let (from, to) = ("2024-03-01", "2024-04-09");
    // (the single-store command, its cluster name, the flags both take)
    let range = ["--from", from, "--to", to];
    let questions: Vec<(&[&str], &str, Vec<&str>)> = vec![
        (&["metrics", "active"], "active", range.to_vec()),
        (&["metrics", "daily"], "daily", range.to_vec()),
        (
            &["retention"],
            "retention",
            [&["--period", "week"][..], &range].concat(),
        ),
        (
            &["lifecycle"],
            "lifecycle",
            [&range[..], &["--segment", "did:purchase"]].concat(),
        ),
        (&["stages"], "stages", vec!["--as-of", to]),
        (
            &["experiment"],
            "experiment",
            vec![
                "checkout",
                "--metric",
                "conversion:purchase:3d",
                "--as-of",
                to,
            ],
        ),
        (
            &["experiment"],
            "experiment",
            vec![
                "checkout",
                "--metric",
                "retention:2",
                "--as-of",
                to,
                "--segment",
                "did:purchase",
            ],
        ),
    ];
    let mut cluster_args: Vec<String> = vec!["cluster".into()];
    for s in &stores {
        cluster_args.push("--store".into());
        cluster_args.push(s.to_str().unwrap().into());
    }
    let ask = |q: &[&str]| {
        let mut a: Vec<&str> = cluster_args.iter().map(String::as_str).collect();
        a.extend_from_slice(q);
        a.push("--json");
        json(&common::cli::run(&a))
    };
    for (single, name, flags) in &questions {
        let mut c = vec![*name];
        c.extend(flags);
        let s = [*single, flags, &["--json"]].concat();
        assert_eq!(ask(&c), json(&stickydb(&whole, &s)), "{c:?}");
    }
    let rfm = json(&stickydb(&whole, &["rfm", "--as-of", to, "--json"]));
    let c = ask(&["rfm", "--as-of", to]);
    assert_eq!(
        (&c["segments"], &c["purchasers"]),
        (&rfm["segments"], &rfm["purchasers"])
    );
    let seg = json(&stickydb(
        &whole,
        &["segment", "did:signup", "--count", "--json"],
    ));
    assert_eq!(ask(&["segment", "did:signup"])["users"], seg["count"]);
    let stats = ask(&["stats"]);
    assert_eq!(stats["partitions"], 3);
    assert_eq!(stats["events"], 900 + 97);
    // Not every partition: refused, naming the missing one.
    let out = common::cli::run(&["cluster", "--store", stores[0].to_str().unwrap(), "stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("partition 1/3 missing"));
}
