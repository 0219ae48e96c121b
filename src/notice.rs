//! One-line notices on stderr from deep inside the library, such as a
//! Railway rate-limit wait: the user should know why a run pauses, but a
//! backend has no handle on the command's output. `--quiet` silences them.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Called once by the command layer with `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Prints `message` on stderr unless quiet. The caller guarantees it holds
/// no secret (only names, ids, durations and counts).
pub fn notice(message: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("{message}");
    }
}
