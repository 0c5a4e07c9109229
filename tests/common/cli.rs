//! Running the real `stickydb` binary (needs the `cli` feature).

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .args(args)
        .output()
        .expect("run stickydb")
}

/// Runs the binary on the store at `db` with `args`.
pub fn stickydb(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run stickydb")
}

/// The stdout of a run that must have succeeded (its output in the panic
/// message otherwise).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
