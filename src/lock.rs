//! The manifest's edit lock: one editor at a time.
//!
//! Every command that rewrites the manifest (set, rotate, unset, import,
//! recipients, rekey, targets, target) holds an advisory `flock` on a lock
//! file next to it, `.NAME.lock` (for `secrets.yaml`: `.secrets.yaml.lock`),
//! from before it reads the manifest until after the atomic replace. The
//! kernel releases the lock when the process ends, however it ends, so a
//! crashed editor never leaves the manifest locked; the file itself stays
//! (deleting it would let two editors lock two different files).
//!
//! The manifest itself is not locked: it is replaced by a rename, so a lock
//! on it would be held on a file that is no longer the manifest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// How long a second editor waits before giving up, unless
/// `SECRETSYNC_LOCK_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Held while the manifest is being edited; released on drop.
#[derive(Debug)]
pub struct EditLock {
    _lock: Flock<std::fs::File>,
    pub path: PathBuf,
}

/// The lock file of `manifest`: `.NAME.lock` in the same folder.
pub fn lock_path(manifest: &Path) -> PathBuf {
    let name = manifest.file_name().map_or_else(
        || "secrets.yaml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let file = format!(".{name}.lock");
    match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(file),
        _ => PathBuf::from(file),
    }
}

pub fn wait_limit() -> Duration {
    std::env::var("SECRETSYNC_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_WAIT, Duration::from_secs_f64)
}

/// Why the edit lock could not be taken. The crate's `Error` wraps it
/// (`From<LockError>`), keeping message and hint.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be opened or created.
    #[error("cannot open the manifest's lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another editor held the lock for longer than the wait limit.
    #[error(
        "{} is being edited by another secretsync (it holds {}); waited {:.0?}, nothing was changed",
        manifest.display(),
        path.display(),
        waited
    )]
    Busy {
        manifest: PathBuf,
        path: PathBuf,
        waited: Duration,
    },
    /// `flock` itself failed.
    #[error("cannot lock {}: {errno}", path.display())]
    Lock { path: PathBuf, errno: Errno },
}

impl LockError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LockError::Open { .. } => Some(
                "edits need to create it next to the manifest: check the folder's permissions",
            ),
            LockError::Busy { .. } => Some(
                "run the command again when the other edit has finished (SECRETSYNC_LOCK_TIMEOUT sets the wait in seconds)",
            ),
            LockError::Lock { .. } => None,
        }
    }
}

/// Takes the edit lock of `manifest`, waiting up to the limit for another
/// editor to finish.
pub fn lock(manifest: &Path) -> Result<EditLock, LockError> {
    let path = lock_path(manifest);
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        Err(source) => return Err(LockError::Open { path, source }),
    };
    let limit = wait_limit();
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(EditLock { _lock: lock, path }),
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                if start.elapsed() >= limit {
                    return Err(LockError::Busy {
                        manifest: manifest.to_path_buf(),
                        path,
                        waited: limit,
                    });
                }
                file = f;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err((_, errno)) => return Err(LockError::Lock { path, errno }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_next_to_the_manifest() {
        assert_eq!(
            lock_path(Path::new("secrets.yaml")),
            PathBuf::from(".secrets.yaml.lock")
        );
        assert_eq!(
            lock_path(Path::new("ops/prod.yaml")),
            PathBuf::from("ops/.prod.yaml.lock")
        );
    }

    #[test]
    fn a_second_lock_waits_then_fails_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("secrets.yaml");
        let first = lock(&m).unwrap();
        // A second open file description conflicts even within one process.
        std::env::set_var("SECRETSYNC_LOCK_TIMEOUT", "0.2");
        let t = Instant::now();
        let err = lock(&m).unwrap_err().to_string();
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(
            err.contains("is being edited by another secretsync"),
            "{err}"
        );
        drop(first);
        lock(&m).unwrap();
        std::env::remove_var("SECRETSYNC_LOCK_TIMEOUT");
    }
}
