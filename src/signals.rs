//! Ending a run on SIGINT, SIGTERM or SIGHUP without leaving anything behind.
//!
//! The binary waits for these signals beside the command ([`first`]). On the
//! first one it stops the command where it is and runs [`clean_up`]: a rename
//! under way finishes (renames hold the [`commit_gate`]; none starts after the
//! signal), every temp file still being written is removed, and the SSH
//! masters this run opened are told to exit and their folders removed. Then
//! it exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM,
//! 129 for SIGHUP). A second signal during the clean-up exits at once.
//!
//! What a signal cannot cover (SIGKILL, a power cut) the next run sweeps:
//! temp files are named `.secretsync.PID.*` ([`crate::fsutil::sweep_orphans`],
//! and the remote write script for its side), and each SSH master's folder
//! holds the pid of the run that opened it ([`crate::remote`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Held by each rename of a temp file over its destination, and by the
/// clean-up: a rename is never cut in half, and none starts after a signal.
static GATE: Mutex<()> = Mutex::new(());
/// Temp files being written by this process.
static TEMPS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// The SSH masters this run opened: (control socket, folder).
static MASTERS: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
static START: OnceLock<SystemTime> = OnceLock::new();

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When this run started (its first call, made first thing by the binary):
/// leftovers older than this are not this run's.
pub fn run_started() -> SystemTime {
    *START.get_or_init(SystemTime::now)
}

/// Whether a signal asked this run to end.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The right to rename a temp file over its destination now: `None` once a
/// signal has asked the run to end (the temp file is then removed instead).
pub fn commit_gate() -> Option<MutexGuard<'static, ()>> {
    let guard = locked(&GATE);
    (!interrupted()).then_some(guard)
}

/// Records a temp file this process is writing, until [`forget_temp`].
pub fn remember_temp(path: &Path) {
    locked(&TEMPS).insert(path.to_path_buf());
}

pub fn forget_temp(path: &Path) {
    locked(&TEMPS).remove(path);
}

/// Records an SSH master opened by this run (not one kept for later runs).
pub fn remember_master(socket: &Path, folder: &Path) {
    locked(&MASTERS).push((socket.to_path_buf(), folder.to_path_buf()));
}

/// Forgets a master closed the ordinary way.
pub fn forget_master(socket: &Path) {
    locked(&MASTERS).retain(|(s, _)| s != socket);
}

/// Waits for SIGINT, SIGTERM or SIGHUP; returns the exit code it calls for.
/// Never returns if the handlers cannot be installed.
pub async fn first() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    let code = tokio::select! {
        _ = int.recv() => 130,
        _ = term.recv() => 143,
        _ = hup.recv() => 129,
    };
    INTERRUPTED.store(true, Ordering::SeqCst);
    // The handlers stay installed: a second signal ends the process at once.
    tokio::spawn(async move {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
            _ = hup.recv() => 129,
        };
        std::process::exit(code);
    });
    code
}

/// Removes this run's temp files and closes its SSH masters. Waits for a
/// rename under way; afterwards no rename happens.
pub fn clean_up() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let _gate = locked(&GATE);
    let temps = std::mem::take(&mut *locked(&TEMPS));
    for t in temps {
        let _ = std::fs::remove_file(t);
    }
    let masters = std::mem::take(&mut *locked(&MASTERS));
    for (socket, folder) in masters {
        close_master(&socket);
        let _ = std::fs::remove_dir_all(folder);
    }
}

/// Asks the master listening on `socket` to exit (`ssh -O exit`); a command
/// it still carries ends with it (a remote write finishes or removes its
/// temp file: its input ends early).
pub fn close_master(socket: &Path) {
    let _ = std::process::Command::new("ssh")
        .arg("-S")
        .arg(socket)
        .args(["-o", "BatchMode=yes", "-O", "exit", "secretsync-master"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether process `pid` is alive (or exists under another user).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
    }
}
