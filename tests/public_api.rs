//! The public surface, recorded: every public item an embedder's build
//! (without the `internals` feature) can name, as declared in the source,
//! is listed in `tests/data/public-api.txt`. A change to the surface is a
//! visible diff of that file: run with `STICKYDB_BLESS=1` to rewrite it,
//! and say why in the commit.
//!
//! Reachability is read from the source: the crate root's and every public
//! module's `pub` items, `pub use` re-exports (how a private submodule's
//! item reaches the surface) and `pub mod` children, recursively. Modules
//! declared with `internal_mod!` are left out (hidden, and private without
//! the feature).

use std::path::{Path, PathBuf};

/// The file of module `name` declared in `dir`.
fn module_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// The directory a module file's children live in.
fn child_dir(file: &Path) -> PathBuf {
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let parent = file.parent().unwrap();
    if stem == "mod" || stem == "lib" {
        parent.to_path_buf()
    } else {
        parent.join(stem)
    }
}

/// One item's declaration, up to its body or its end, on one line.
fn declaration(lines: &[&str], at: usize) -> String {
    let mut out = String::new();
    let is_use = lines[at].trim_start().starts_with("pub use ");
    let is_fn = lines[at].contains(" fn ");
    for line in &lines[at..] {
        let t = line.trim();
        out.push_str(t);
        out.push(' ');
        let ends = if is_use {
            t.ends_with(';')
        } else if is_fn {
            t.ends_with(';') || t.ends_with('{')
        } else {
            t.ends_with(';') || t.ends_with('{') || t.ends_with('}') || t.ends_with(',')
        };
        if ends {
            break;
        }
    }
    let out = out.trim_end_matches([' ', '{']).trim().to_owned();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Private modules whose public items are the facade's (`Db`, `Snapshot`,
/// `Transaction`, `VerifyReport` and their methods), read with their
/// submodules.
const FACADE_MODULES: [&str; 3] = ["db", "write", "verify"];

/// The names the crate root re-exports (`pub use a::{B, C};` → B, C).
fn root_exports(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("pub use ") {
            let decl = declaration(&lines, i);
            let inner = match (decl.find('{'), decl.rfind('}')) {
                (Some(a), Some(b)) => decl[a + 1..b].to_owned(),
                _ => decl.rsplit("::").next().unwrap_or("").to_owned(),
            };
            names.extend(
                inner
                    .split(',')
                    .map(|n| n.trim().trim_end_matches(';').to_owned())
                    .filter(|n| !n.is_empty()),
            );
        }
    }
    names
}

/// The name an item or impl header line declares: `pub struct Db {` → Db,
/// `impl Snapshot<'_> {` → Snapshot, `impl Ops for Core {` → Core.
fn declared_name(t: &str) -> Option<String> {
    let t = t.trim_start_matches("pub ");
    let rest = if let Some(r) = t.strip_prefix("impl") {
        let r = r
            .trim_start_matches(|c: char| c != ' ' && c != '<')
            .trim_start();
        let r = if r.starts_with('<') {
            r.split_once('>').map_or(r, |(_, b)| b)
        } else {
            r
        };
        r.rsplit(" for ").next().unwrap_or(r)
    } else {
        ["struct ", "enum ", "type ", "const ", "fn ", "trait "]
            .iter()
            .find_map(|k| t.strip_prefix(k))?
    };
    let name: String = rest
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn collect(file: &Path, path: &str, out: &mut Vec<String>) {
    let exports = root_exports(file);
    collect_in(file, path, None, out, &exports)
}

/// `facade`: inside a private facade module, where only the root's
/// re-exported types, their fields and their methods are public.
fn collect_in(
    file: &Path,
    path: &str,
    facade: Option<()>,
    out: &mut Vec<String>,
    exports: &[String],
) {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut depth = 0i32;
    let mut in_tests = false;
    // the item or impl block the current line is in (depth ≥ 1)
    let mut outer: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        if depth == 0 {
            outer = declared_name(t);
        }
        // items at the module's top level and in its impl blocks
        let private_mod = t.strip_prefix("mod ").and_then(|r| r.strip_suffix(';'));
        if let (false, 0, Some(name)) = (in_tests, depth, private_mod) {
            if facade.is_some() || (path == "stickydb" && FACADE_MODULES.contains(&name)) {
                let child = module_file(&child_dir(file), name);
                collect_in(&child, &format!("{path}::{name}"), Some(()), out, exports);
            }
        }
        let exported = |name: &Option<String>| name.as_ref().is_some_and(|n| exports.contains(n));
        let visible = match (facade, depth) {
            (None, _) => true,
            (Some(()), 0) => exported(&declared_name(t)),
            (Some(()), _) => exported(&outer),
        };
        if !in_tests && depth <= 1 && t.starts_with("pub ") && visible {
            let decl = declaration(&lines, i);
            if let Some(rest) = decl.strip_prefix("pub mod ") {
                let name = rest.trim_end_matches(';').trim();
                out.push(format!("{path}: pub mod {name}"));
                if rest.ends_with(';') {
                    let child = module_file(&child_dir(file), name);
                    collect_in(&child, &format!("{path}::{name}"), facade, out, exports);
                }
            } else {
                out.push(format!("{path}: {decl}"));
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 {
            in_tests = false;
        }
    }
}

#[test]
fn the_public_surface_is_the_recorded_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut items = Vec::new();
    collect(&root.join("src/lib.rs"), "stickydb", &mut items);
    items.sort();
    items.dedup();
    let now = items.join("\n") + "\n";
    let recorded_path = root.join("tests/data/public-api.txt");
    if std::env::var_os("STICKYDB_BLESS").is_some() {
        std::fs::write(&recorded_path, &now).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&recorded_path).unwrap_or_default();
    if recorded != now {
        let old: std::collections::BTreeSet<&str> = recorded.lines().collect();
        let new: std::collections::BTreeSet<&str> = now.lines().collect();
        let gone: Vec<_> = old.difference(&new).collect();
        let added: Vec<_> = new.difference(&old).collect();
        panic!(
            "the public surface changed (STICKYDB_BLESS=1 records it):\n- {}\n+ {}",
            gone.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n- "),
            added
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n+ ")
        );
    }
}

#[test]
fn the_internal_modules_are_not_on_the_surface() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut items = Vec::new();
    collect(&root.join("src/lib.rs"), "stickydb", &mut items);
    for internal in ["keys", "codec", "store"] {
        let prefix = format!("stickydb::{internal}:");
        assert!(
            !items
                .iter()
                .any(|i| i.starts_with(&prefix) || i.ends_with(&format!("pub mod {internal}"))),
            "{internal} is public"
        );
    }
    // no RocksDB type is named by a public item
    let leaks: Vec<_> = items.iter().filter(|i| i.contains("rocksdb")).collect();
    assert!(leaks.is_empty(), "{leaks:?}");
}
