//! Atomic file replacement, shared by the manifest editor, `init`, `plan
//! --out` and the local `env_file` target: the one routine that writes a file
//! in place of another.

use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the new file keeps of the one it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// Permission bits (`0o7777` mask, set-id bits included).
    pub mode: u32,
    /// Owner and group to give the new file; `None` for a new file (ours).
    pub owner: Option<(u32, u32)>,
}

impl Attributes {
    /// The mode and owner of an existing file.
    pub fn of(meta: &Metadata) -> Self {
        Attributes {
            mode: meta.mode() & 0o7777,
            owner: Some((meta.uid(), meta.gid())),
        }
    }

    /// A file that did not exist: `mode`, owned by us.
    pub fn new_file(mode: u32) -> Self {
        Attributes { mode, owner: None }
    }
}

/// What to do when the old owner cannot be given to the new file (it is not
/// ours and we lack the privilege).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Fail: the file must keep its owner (a target's env file).
    Required,
    /// Keep ours; the mode is still kept (the manifest, a plan file).
    BestEffort,
}

/// The step of a replacement that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temp file in the destination's directory (`path`: the directory).
    CreateTemp,
    /// Writing the content (`path`: the temp file).
    Write,
    /// Reading the temp file's owner (`path`: the temp file).
    Stat,
    /// Giving the temp file the old owner (`path`: the destination).
    Chown { uid: u32, gid: u32 },
    /// Setting the temp file's mode (`path`: the temp file).
    Mode,
    /// Syncing the temp file (`path`: the temp file).
    Sync,
    /// Renaming the temp file over the destination (`path`: the destination).
    Rename,
    /// Syncing the directory after the rename (`path`: the destination,
    /// which has been replaced).
    SyncDir,
}

/// A failed step, the path it concerns and the cause.
#[derive(Debug)]
pub struct AtomicError {
    pub step: Step,
    pub path: PathBuf,
    pub source: io::Error,
}

/// A replacement ready to be committed: the temp file is written, synced
/// and has its final mode and owner. Dropping it (any early return of the
/// caller) deletes the temp file and leaves the destination as it was, so a
/// caller can check for a concurrent change between [`Staged::new`] and
/// [`Staged::commit`], as close to the rename as possible.
#[derive(Debug)]
pub struct Staged {
    /// `None` once committed.
    tmp: Option<tempfile::NamedTempFile>,
    dest: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // The temp file's own drop removes it.
        if let Some(tmp) = &self.tmp {
            crate::signals::forget_temp(tmp.path());
        }
    }
}

/// The name every temp file of secretsync starts with, followed by the
/// writer's pid and a dot: `.secretsync.PID.RANDOM.tmp`.
pub const TEMP_PREFIX: &str = ".secretsync.";

/// A temp file beside `dest` for this process: `.secretsync.PID.XXXXXX.tmp`,
/// created 0600 (by tempfile) and known to [`crate::signals`] until it is
/// renamed or removed. Orphans of this kind in the folder are swept first.
pub fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    sweep_orphans(dir);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}.", std::process::id()))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    crate::signals::remember_temp(tmp.path());
    Ok(tmp)
}

/// The pid in a secretsync temp file's name: `Some(None)` for one of an older
/// secretsync (`.secretsync.RANDOM.tmp`, no pid), `None` when the name is not
/// of a secretsync temp file at all.
fn temp_owner_pid(name: &str) -> Option<Option<i32>> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(".tmp")?;
    match rest.split_once('.') {
        Some((pid, random)) if !random.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            Some(pid.parse().ok())
        }
        _ if !rest.is_empty() && !rest.contains('.') => Some(None),
        _ => None,
    }
}

/// Temp files of secretsync in `dir` left by runs that died (killed while
/// writing): regular files of this user, older than this run, whose writer
/// is no longer alive. They may hold every value of the file they were to
/// replace.
/// "DIR holds N temp file(s) left by a secretsync that was killed while
/// writing (a, b)": what doctor and a write say about [`orphans`].
pub fn orphans_said(dir: &Path, orphans: &[PathBuf]) -> String {
    format!(
        "{} holds {} temp file(s) left by a secretsync that was killed while writing ({})",
        dir.display(),
        orphans.len(),
        orphans
            .iter()
            .filter_map(|o| o.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub fn orphans(dir: &Path) -> Vec<PathBuf> {
    let me = nix::unistd::geteuid().as_raw();
    let started = crate::signals::run_started();
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let Some(pid) = temp_owner_pid(&name.to_string_lossy()) else {
                return false;
            };
            let Ok(meta) = e.path().symlink_metadata() else {
                return false;
            };
            meta.is_file()
                && meta.uid() == me
                && meta.modified().is_ok_and(|m| m < started)
                && pid
                    .is_none_or(|p| p != std::process::id() as i32 && !crate::signals::pid_alive(p))
        })
        .map(|e| e.path())
        .collect()
}

/// Removes [`orphans`] in `dir` (best effort).
pub fn sweep_orphans(dir: &Path) {
    for o in orphans(dir) {
        let _ = fs::remove_file(o);
    }
}

impl Staged {
    /// Writes `bytes` to a temp file beside `dest` (`.secretsync.*.tmp`, mode
    /// 0600 while it is written) and gives it `attrs`.
    pub fn new(
        dest: &Path,
        bytes: &[u8],
        attrs: Attributes,
        owner: Owner,
    ) -> Result<Staged, AtomicError> {
        let dir = directory_of(dest);
        let err = |step, path: &Path| {
            let path = path.to_path_buf();
            move |source| AtomicError { step, path, source }
        };
        let tmp = temp_file_in(dir).map_err(err(Step::CreateTemp, dir))?;
        // Created 0600: the content is never readable by others before the
        // final mode is set.
        let tmp_path = tmp.path().to_path_buf();
        let file = tmp.as_file();
        (|| -> io::Result<()> {
            let mut w = file;
            w.write_all(bytes)?;
            w.flush()
        })()
        .map_err(err(Step::Write, &tmp_path))?;
        if let Some((uid, gid)) = attrs.owner {
            let meta = file.metadata().map_err(err(Step::Stat, &tmp_path))?;
            if meta.uid() != uid || meta.gid() != gid {
                let chown = std::os::unix::fs::fchown(file, Some(uid), Some(gid));
                if owner == Owner::Required {
                    chown.map_err(err(Step::Chown { uid, gid }, dest))?;
                }
            }
        }
        // After the chown, which may clear set-id bits.
        file.set_permissions(fs::Permissions::from_mode(attrs.mode))
            .map_err(err(Step::Mode, &tmp_path))?;
        file.sync_all().map_err(err(Step::Sync, &tmp_path))?;
        Ok(Staged {
            tmp: Some(tmp),
            dest: dest.to_path_buf(),
        })
    }

    /// Renames the temp file over the destination, then syncs the directory
    /// so the rename survives a crash. An error at [`Step::SyncDir`] means
    /// the destination *was* replaced.
    pub fn commit(mut self) -> Result<(), AtomicError> {
        let dest = self.dest.clone();
        // A signal has asked the run to end: no rename starts any more (the
        // temp file goes with `self`).
        let Some(_gate) = crate::signals::commit_gate() else {
            return Err(AtomicError {
                step: Step::Rename,
                path: dest,
                source: io::Error::new(io::ErrorKind::Interrupted, "interrupted by a signal"),
            });
        };
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        let tmp_path = tmp.path().to_path_buf();
        let renamed = tmp.persist(&dest);
        crate::signals::forget_temp(&tmp_path);
        renamed.map_err(|e| AtomicError {
            step: Step::Rename,
            path: dest.clone(),
            source: e.error,
        })?;
        fs::File::open(directory_of(&dest))
            .and_then(|d| d.sync_all())
            .map_err(|source| AtomicError {
                step: Step::SyncDir,
                path: dest,
                source,
            })
    }
}

/// The directory a file lives in (`.` for a bare file name).
pub fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically: a temp file in the same folder,
/// the old file's mode and owner (or `new_mode` for a new file; the owner
/// when we may), fsync, rename, fsync of the folder (best effort: the file
/// is already replaced). A reader sees the old or the new content, never a
/// mix; on failure the temp file is removed and the old file stays.
pub fn write_atomic(path: &Path, bytes: &[u8], new_mode: u32) -> io::Result<()> {
    let attrs = fs::metadata(path).map_or(Attributes::new_file(new_mode), |m| Attributes::of(&m));
    let staged = Staged::new(path, bytes, attrs, Owner::BestEffort).map_err(|e| e.source)?;
    match staged.commit() {
        Err(e) if e.step != Step::SyncDir => Err(e.source),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        let fresh = dir.path().join("g");
        write_atomic(&fresh, b"x", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_dropped_staged_write_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "old").unwrap();
        let attrs = Attributes::of(&std::fs::metadata(&p).unwrap());
        let staged = Staged::new(&p, b"new", attrs, Owner::Required).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(staged);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_carry_the_writers_pid_and_only_dead_writers_orphans_are_swept() {
        assert_eq!(
            temp_owner_pid(".secretsync.123.AbC9xY.tmp"),
            Some(Some(123))
        );
        assert_eq!(temp_owner_pid(".secretsync.AbC9xY.tmp"), Some(None));
        assert_eq!(temp_owner_pid(".secretsync.lock"), None);
        assert_eq!(temp_owner_pid("app.env"), None);
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let orphan = dir.path().join(format!(".secretsync.{dead}.aaaaaa.tmp"));
        let live = dir
            .path()
            .join(format!(".secretsync.{}.bbbbbb.tmp", std::process::id()));
        crate::signals::run_started();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let young = dir.path().join(format!(".secretsync.{dead}.cccccc.tmp"));
        std::fs::write(&young, "x").unwrap();
        // Older than the run: made before it, by mtime.
        for f in [&orphan, &live] {
            std::fs::write(f, "x").unwrap();
            let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
            std::fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert_eq!(orphans(dir.path()), vec![orphan.clone()]);
        let staged = Staged::new(
            &dir.path().join("f"),
            b"new",
            Attributes::new_file(0o600),
            Owner::BestEffort,
        )
        .unwrap();
        staged.commit().unwrap();
        assert!(!orphan.exists() && live.exists() && young.exists());
    }

    #[test]
    fn today_is_a_date() {
        let t = crate::time::today();
        assert_eq!(t.len(), 10);
        assert!(
            t.starts_with("20") && &t[4..5] == "-" && &t[7..8] == "-",
            "{t}"
        );
    }
}
