//! Standard output that behaves in a pipe: when the reader goes away
//! (`stickydb … | head -1`) the command ends quietly — no panic, no error
//! line — instead of `println!`'s "failed printing to stdout: Broken pipe".
//!
//! Every line the CLI prints goes through [`write`] (the `outln!` and
//! `out!` macros); once a write meets a closed pipe the rest of the output
//! is dropped ([`gone`]), and a command that writes to the store still
//! finishes its write (stopping it midway would be safe — every write is
//! one batch or a job — but surprising). The streams that write through
//! their own handle (`feed`, `--follow` too; `users export`; CSV) stop at
//! their first failed write with an error that [`is_broken_pipe`]
//! recognises, and the process ends with success. Must not print anything
//! else.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;

/// Set when a write to standard output met a closed pipe.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Whether standard output's reader went away.
pub(crate) fn gone() -> bool {
    READER_GONE.load(Ordering::Relaxed)
}

/// Writes `args` (and a newline when `newline`) to standard output; a
/// closed pipe marks the reader gone, any other failure is said once on
/// standard error.
pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    if gone() {
        return;
    }
    let mut o = std::io::stdout().lock();
    let written = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing standard output: {e}");
        }
        READER_GONE.store(true, Ordering::Relaxed);
    }
}

/// Whether `e` (or an error it was made from) is a write to a closed pipe.
pub(crate) fn is_broken_pipe(e: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
            // (an io error made from another error, e.g. csv's, wraps it)
            if let Some(inner) = io.get_ref() {
                if let Some(csv) = inner.downcast_ref::<csv::Error>() {
                    if let csv::ErrorKind::Io(io) = csv.kind() {
                        return io.kind() == std::io::ErrorKind::BrokenPipe;
                    }
                }
            }
        }
        cause = c.source();
    }
    false
}
