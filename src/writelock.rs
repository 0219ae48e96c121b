//! The writers' lock of a target file: one secretsync writes a given env
//! file at a time, from the check that it is still the text the plan read
//! to the rename of the new text over it.
//!
//! The lock is an advisory `flock` on the file's folder (opened read-only):
//! the file itself is replaced by a rename, so a lock on it would be held on
//! a file that is no longer the target. The kernel releases it however the
//! process ends, so a killed writer never leaves a folder locked, and no lock
//! file is left beside the target. The remote write script takes the same
//! lock with `flock(1)` where the host has it, so a local `env_file` and an
//! `ssh_env` run on this machine exclude each other too (see
//! `src/targets/scripts/env_write.sh` for hosts without `flock`).
//!
//! A second writer waits up to `SECRETSYNC_LOCK_TIMEOUT` seconds (default
//! 10, as for the manifest's edit lock), then gives up without writing.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Held while a target file is checked and replaced; released on drop.
#[derive(Debug)]
pub struct WriteLock {
    _lock: Flock<std::fs::File>,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// The folder cannot be opened or locked.
    Io(std::io::Error),
    /// Another writer held it for the whole wait.
    Busy(Duration),
}

/// Takes the writers' lock of the files in `dir`, waiting for another
/// writer up to the limit.
pub fn lock_dir(dir: &Path) -> Result<WriteLock, LockError> {
    let mut file = std::fs::File::open(dir).map_err(LockError::Io)?;
    let limit = crate::lock::wait_limit();
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(WriteLock { _lock: lock }),
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                if start.elapsed() >= limit {
                    return Err(LockError::Busy(limit));
                }
                file = f;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err((_, errno)) => return Err(LockError::Io(errno.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let t = Instant::now();
        let second = std::thread::spawn(move || lock_dir(&path).map(|_| Instant::now()));
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        let got = second.join().unwrap().unwrap();
        assert!(got.duration_since(t) >= Duration::from_millis(300));
        // Nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
