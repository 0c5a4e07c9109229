//! The `stickydb` command-line tool; all logic lives in the library.

fn main() -> std::process::ExitCode {
    stickydb::cli::main()
}
