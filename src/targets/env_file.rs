//! The `env_file` target: an env file on this machine, edited in place.
//!
//! ```yaml
//! targets:
//!   local:
//!     type: env_file
//!     path: ./.env      # relative to the manifest's folder; `~/` is $HOME
//!     create: true      # create it (mode 0600) when missing; the default
//!     prune: false      # delete keys the manifest does not list
//!     unit: app.service # optional: the systemd unit that reads it (#28)
//!     container: app    # optional: the docker container made from it
//! ```
//!
//! A read keeps the whole text as the [`Observed::snapshot`]; a write edits
//! that text, then reads the file once under the writers' lock, just before
//! the rename, and refuses with [`ErrorKind::Conflict`](super::ErrorKind) when
//! it is no longer that text. The edit is made with [`EnvFile`] (untouched lines stay
//! byte for byte) and replaces it atomically: a temp file in the same
//! directory, written and fsynced, given the old file's mode and owner (a new
//! file gets 0600), renamed over the file, and the directory fsynced. The temp
//! file is removed on every failure.
//!
//! A symlinked env file is written through: the link's target (resolved with
//! `canonicalize`) is replaced, so the link itself survives. A link to a
//! missing file is refused.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::envfile_target;
use super::kind::{same_as, Kind, Spec, TargetSpec};
use super::{Change, Check, Context, Observed, Target, TargetError};
use super::{Fields, ManifestError};
use crate::crypto::Fingerprinter;
use crate::envfile::{self, Format};
use crate::fsutil::{directory_of, AtomicError, Attributes, Owner, Staged, Step};
use crate::secret::Secret;

/// `type: env_file` in the registry.
pub static KIND: EnvFileKind = EnvFileKind;

pub struct EnvFileKind;

impl Kind for EnvFileKind {
    fn name(&self) -> &'static str {
        "env_file"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["path", "prune", "create", "format", "unit", "container"]
    }

    fn parse(&self, f: &Fields<'_>) -> Result<TargetSpec, ManifestError> {
        let path = f.required_operand("path")?;
        Ok(TargetSpec::new(EnvFileSpec {
            format: format_field(f)?,
            path,
            prune: f.flag("prune", false)?,
            create: f.flag("create", true)?,
            live: super::live_unit::LiveSpec::parse(f)?,
        }))
    }
}

/// `type: env_file`: a file on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileSpec {
    /// As written; relative to the manifest's folder.
    pub path: String,
    pub prune: bool,
    /// Create the file (mode 0600) when it is missing.
    pub create: bool,
    /// Who reads the file (`format:`), which decides how values are written.
    pub format: Format,
    /// What runs from the file (`unit:`, `container:`, #28).
    pub live: super::live_unit::LiveSpec,
}

impl Spec for EnvFileSpec {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(LocalEnvFile::new(name, self, ctx)?))
    }

    fn prune(&self) -> bool {
        self.prune
    }

    fn same(&self, other: &dyn Spec) -> bool {
        same_as(self, other)
    }

    fn local_files(&self, manifest_dir: &Path) -> Vec<PathBuf> {
        let path = match self.path.strip_prefix("~/") {
            Some(rest) => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home).join(rest),
                None => return Vec::new(),
            },
            None => manifest_dir.join(&self.path),
        };
        vec![path]
    }
}

/// `format:` of an env-file target (local or over SSH): who reads the file.
pub(super) fn format_field(f: &Fields<'_>) -> Result<Format, ManifestError> {
    Ok(f.parse("format", |t| {
        Format::from_name(t).ok_or_else(|| {
            (
                format!("unknown env-file format `{t}`"),
                Some(format!(
                    "name the program that reads the file, one of: {} (see docs/env-formats.md)",
                    Format::names()
                )),
            )
        })
    })?
    .unwrap_or_default())
}

/// Mode of a file this target creates: the owner only.
const NEW_FILE_MODE: u32 = 0o600;

pub struct LocalEnvFile {
    name: String,
    /// As written in the manifest, for `describe`.
    written: String,
    /// Resolved against the manifest's folder (and `~/`).
    path: PathBuf,
    create: bool,
    /// Who reads the file: how values are written.
    format: Format,
    live: super::live_unit::LiveSpec,
}

impl LocalEnvFile {
    pub fn new(name: &str, spec: &EnvFileSpec, ctx: &Context) -> Result<Self, TargetError> {
        let path = if let Some(rest) = spec.path.strip_prefix("~/") {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    TargetError::invalid(format!(
                        "target `{name}`: the path {} starts with `~/` but HOME is not set",
                        spec.path
                    ))
                    .with_hint("set HOME or write the path in full")
                })?;
            PathBuf::from(home).join(rest)
        } else {
            // Without the `./` of each part: `./.env` next to a manifest in
            // `.` is `./.env`, not `././.env`.
            ctx.manifest_dir
                .join(&spec.path)
                .components()
                .collect::<PathBuf>()
        };
        Ok(LocalEnvFile {
            name: name.to_string(),
            written: spec.path.clone(),
            path,
            create: spec.create,
            format: spec.format,
            live: spec.live.clone(),
        })
    }

    /// The file as resolved, for tests and messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bytes of the file, `None` when it does not exist (a dangling symlink
/// counts as missing). Held zeroized: the text contains the values. Only a
/// regular file of at most 16 MiB is read (see [`super::file`]).
fn read_bytes(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, TargetError> {
    #[cfg(test)]
    tests::count_read(path);
    super::file::read_regular(path).map_err(|r| refused(path, r))
}

/// A [`super::file::Refusal`] as this target's error.
fn refused(path: &Path, r: super::file::Refusal) -> TargetError {
    match r {
        super::file::Refusal::Io(e) => io_error("cannot read", path, &e),
        r => {
            let (message, hint) = r.explain(path);
            TargetError::failed(message).with_hint(hint)
        }
    }
}

/// An I/O failure naming the path; the hint follows the cause.
fn io_error(what: &str, path: &Path, e: &io::Error) -> TargetError {
    let err = TargetError::failed(format!("{what} {}: {e}", path.display()));
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            err.with_hint("check the permissions of the file and its directory")
        }
        io::ErrorKind::NotFound => err.with_hint("create the directory first"),
        _ => err,
    }
}

/// The file to replace: the target of a symlink, so the link survives.
fn write_destination(path: &Path) -> Result<PathBuf, TargetError> {
    // A directory is reported by the read (and a rename over it fails).
    match super::file::check_replaceable(path) {
        Ok(()) | Err(super::file::Refusal::Directory) => {}
        Err(r) => return Err(refused(path, r)),
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            TargetError::failed(format!(
                "{} is a symlink that cannot be followed: {e}",
                path.display()
            ))
            .with_hint("create the file it points to, or replace the link with a file")
        }),
        _ => Ok(path.to_path_buf()),
    }
}

fn conflict(path: &Path) -> TargetError {
    TargetError::changed_since_read(
        format!(
            "{} changed since it was read; nothing was written",
            path.display()
        ),
        Vec::new(),
    )
    .with_hint("run plan again")
}

/// The blocking half of [`Target::write`].
///
/// The new text is made from the text the plan read (the snapshot); the
/// file is read once, under the writers' lock, and must still be that text
/// or nothing is written. On the write path that read is the last step
/// before the rename (the temp file is staged first), so no other writer's
/// change slips between check and rename; on every path that returns
/// without writing, the same read tells a conflict first, as it would have
/// told before any other error.
fn write_sync(
    path: &Path,
    create: bool,
    observed_exists: bool,
    snapshot: Option<Secret>,
    changes: &[Change],
    format: Format,
) -> Result<(), TargetError> {
    // One writer at a time, from this check to the rename (src/writelock.rs).
    let _lock = lock_for(path)?;
    let still_as_read = || -> Result<(), TargetError> {
        let now = read_bytes(path)?;
        let unchanged = match (&now, observed_exists, &snapshot) {
            (None, false, _) => true,
            (Some(bytes), true, Some(snap)) => bytes.as_slice() == snap.expose().as_bytes(),
            _ => false,
        };
        if unchanged {
            Ok(())
        } else {
            Err(conflict(path))
        }
    };
    // Any other refusal is told only once the file is known as read.
    let refuse = |e: TargetError| -> Result<(), TargetError> {
        still_as_read()?;
        Err(e)
    };
    // The text as read (`None`: the file was missing).
    let current: Option<&[u8]> = match (&snapshot, observed_exists) {
        (Some(text), true) => Some(text.expose().as_bytes()),
        (None, true) => return refuse(conflict(path)),
        (_, false) => None,
    };
    if changes.is_empty() {
        return still_as_read();
    }
    if current.is_none() && !create {
        return refuse(
            TargetError::failed(format!(
                "{} does not exist and the target has `create: false`",
                path.display()
            ))
            .with_hint("create the file, or set `create: true` on the target"),
        );
    }

    let new_text =
        match envfile_target::edited(&path.display().to_string(), current, changes, format) {
            Ok(t) => t,
            Err(e) => return refuse(e),
        };
    // Changes that change nothing (deleting an absent key) leave the file,
    // its inode and its mtime alone, and do not create a missing file.
    let same = match current {
        Some(bytes) => bytes == new_text.as_bytes(),
        None => new_text.is_empty(),
    };
    if same {
        return still_as_read();
    }

    let staged = (|| {
        let dest = write_destination(path)?;
        let dir = directory_of(&dest);
        let attrs = match current {
            Some(_) => {
                let meta = fs::metadata(&dest).map_err(|e| io_error("cannot stat", &dest, &e))?;
                Attributes::of(&meta)
            }
            None => Attributes::new_file(NEW_FILE_MODE),
        };

        // A new file may need its folder: created private, as the file will be.
        if current.is_none() && !dir.as_os_str().is_empty() && !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error("cannot create the folder", dir, &e))?;
        }

        // Dropping `staged` (every early return below) deletes the temp file.
        Staged::new(&dest, new_text.as_bytes(), attrs, Owner::Required).map_err(write_error)
    })();
    let staged = match staged {
        Ok(staged) => staged,
        Err(e) => return refuse(e),
    };
    // The one read of the write, just before the rename.
    still_as_read()?;
    staged.commit().map_err(write_error)
}

/// The writers' lock of `path`: on the folder of the file a write replaces
/// (or, while that folder does not exist yet, of its nearest existing one).
fn lock_for(path: &Path) -> Result<crate::writelock::WriteLock, TargetError> {
    let dest = write_destination(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir = directory_of(&dest).to_path_buf();
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => {
                dir = PathBuf::from(".");
                break;
            }
        }
    }
    crate::writelock::lock_dir(&dir).map_err(|e| match e {
        crate::writelock::LockError::Busy(waited) => TargetError::conflict(format!(
            "{} is being written by another secretsync; waited {waited:.0?}, nothing was written",
            path.display()
        ))
        .with_hint("run plan again when the other apply has finished (SECRETSYNC_LOCK_TIMEOUT sets the wait in seconds)"),
        crate::writelock::LockError::Io(e) => io_error("cannot lock the folder of", path, &e),
    })
}

/// A failed step of the atomic replacement, said for this target.
fn write_error(e: AtomicError) -> TargetError {
    let AtomicError { step, path, source } = e;
    match step {
        Step::CreateTemp => {
            // tempfile's error names the random file it tried: say the cause only.
            let cause = fs::metadata(&path)
                .err()
                .unwrap_or_else(|| io::Error::from(source.kind()));
            io_error("cannot create a temporary file in", &path, &cause)
        }
        Step::Write => io_error("cannot write", &path, &source),
        Step::Stat => io_error("cannot stat", &path, &source),
        Step::Chown { uid, gid } => TargetError::failed(format!(
            "cannot keep the owner ({uid}:{gid}) of {}: {source}",
            path.display()
        ))
        .with_hint("run as the file's owner or as root"),
        Step::Mode => io_error("cannot set the mode of", &path, &source),
        Step::Sync => io_error("cannot sync", &path, &source),
        Step::Rename => io_error("cannot replace", &path, &source),
        Step::SyncDir => TargetError::failed(format!(
            "{} was replaced but its directory could not be synced: {source}",
            path.display()
        ))
        .with_hint("check the file system; run plan to confirm the file's state"),
    }
}

/// The blocking half of [`Target::read`].
fn read_sync(path: &Path) -> Result<Observed, TargetError> {
    let bytes = read_bytes(path)?;
    envfile_target::observe(
        &path.display().to_string(),
        bytes.as_ref().map(|b| b.as_slice()),
    )
}

fn check_file(path: &Path, create: bool) -> Result<String, TargetError> {
    match read_bytes(path)? {
        Some(bytes) => {
            let location = path.display().to_string();
            let text = envfile_target::decode(&location, &bytes)?;
            let n = envfile_target::parse_at(&location, &text)?.entries().len();
            Ok(format!("{} parses ({n} keys)", path.display()))
        }
        None if create => Ok(format!(
            "{} is missing; it will be created with mode 0600",
            path.display()
        )),
        None => Err(TargetError::failed(format!(
            "{} does not exist and the target has `create: false`",
            path.display()
        ))
        .with_hint("create the file, or set `create: true` on the target")),
    }
}

fn check_directory(path: &Path) -> Result<String, TargetError> {
    let dest = write_destination(path)?;
    let dir = directory_of(&dest);
    // The honest test of "can the atomic write happen": create (and drop,
    // which deletes) an empty temp file there.
    let orphans = crate::fsutil::orphans(dir);
    if !orphans.is_empty() {
        return Err(TargetError::failed(format!(
            "{}; they may hold values",
            crate::fsutil::orphans_said(dir, &orphans)
        ))
        .with_hint("the next apply that writes there removes them, or delete them by hand"));
    }
    crate::fsutil::temp_file_in(dir)
        .map(|t| {
            crate::signals::forget_temp(t.path());
            format!("can create files in {}", dir.display())
        })
        .map_err(|e| {
            // tempfile's error names the random file it tried: say the cause only.
            let cause = std::fs::metadata(dir)
                .err()
                .unwrap_or_else(|| std::io::Error::from(e.kind()));
            io_error("cannot create a temporary file in", dir, &cause)
        })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TargetError> + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(TargetError::failed(format!("the file task failed: {e}"))))
}

#[async_trait]
impl Target for LocalEnvFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!("env file {}", self.written)
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        envfile::check_value(self.format, value)
    }

    fn file_diff(
        &self,
        observed: &Observed,
        changes: &[Change],
        fp: &Fingerprinter,
    ) -> Option<String> {
        file_diff(&self.written, self.format, observed, changes, fp)
    }

    fn change_notes(&self, observed: &Observed, changes: &[Change]) -> Vec<String> {
        envfile_target::dropped_exports(observed, changes, self.format)
    }

    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError> {
        let path = self.path.clone();
        let mut observed = blocking(move || read_sync(&path)).await?;
        if observed.exists && !self.live.is_empty() {
            observed.live = super::live_unit::local(&self.live, &self.path, keys).await;
        }
        Ok(observed)
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        let path = self.path.clone();
        let create = self.create;
        let exists = observed.exists;
        let snapshot = observed.snapshot().cloned();
        let changes = changes.to_vec();
        let format = self.format;
        blocking(move || write_sync(&path, create, exists, snapshot, &changes, format)).await
    }

    async fn check(&self) -> Vec<Check> {
        let path = self.path.clone();
        let create = self.create;
        let (file, dir) = blocking(move || Ok((check_file(&path, create), check_directory(&path))))
            .await
            .unwrap_or_else(|e| (Err(e.clone()), Err(e)));
        let mut checks = vec![
            Check {
                what: "file readable".into(),
                outcome: file,
            },
            Check {
                what: "directory writable".into(),
                outcome: dir,
            },
        ];
        checks.extend(super::live_unit::local_checks(&self.live, &self.path).await);
        checks
    }
}

/// A unified diff of an env file as it is and as it will be, every value
/// replaced by a marker (with a keyed fingerprint when there is a key).
pub(super) fn file_diff(
    path: &str,
    format: Format,
    observed: &Observed,
    changes: &[Change],
    fp: &Fingerprinter,
) -> Option<String> {
    let before_text = observed.snapshot().map_or("", Secret::expose);
    let before = envfile::EnvFile::parse(before_text).ok()?;
    let mut after = envfile::EnvFile::parse(before_text).ok()?;
    after.apply(changes, format).ok()?;
    let changed: Vec<&str> = changes
        .iter()
        .filter(|c| !matches!(c.op, super::Op::Delete))
        .map(|c| c.key.as_str())
        .collect();
    let changed = &changed;
    let mark = |new: bool| {
        move |key: &str, value: &Secret| {
            let tag = if new && changed.contains(&key) {
                "redacted, new"
            } else {
                "redacted"
            };
            match fp.fingerprint(value) {
                Some(f) => format!("<{tag} {f}>"),
                None => format!("<{tag}>"),
            }
        }
    };
    let a = before.redacted(&mark(false));
    let b = after.redacted(&mark(true));
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(&a, &b);
    let from = if observed.exists {
        format!("{path} (now)")
    } else {
        "/dev/null (missing)".into()
    };
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&from, &format!("{path} (planned)"))
            .missing_newline_hint(false)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Op;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Path → how many times its bytes were read (tests run in parallel:
    /// each counts its own file).
    static READS: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

    pub(super) fn count_read(path: &Path) {
        let mut reads = READS.lock().unwrap();
        *reads
            .get_or_insert_with(HashMap::new)
            .entry(path.to_path_buf())
            .or_default() += 1;
    }

    fn reads(path: &Path) -> usize {
        READS
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|r| r.get(path).copied())
            .unwrap_or(0)
    }

    fn update(key: &str, value: &str) -> Vec<Change> {
        vec![Change {
            key: key.into(),
            op: Op::Update(Secret::new(value.into())),
        }]
    }

    /// An apply of one changed file: the plan's read, the write's one
    /// (under the lock, just before the rename), the verify read. Before
    /// #26 the write read the file twice, four reads in all.
    #[test]
    fn an_apply_reads_the_file_three_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        fs::write(&path, "A=\"1\"\nB=\"2\"\n").unwrap();
        let plan = read_sync(&path).unwrap();
        write_sync(
            &path,
            true,
            plan.exists,
            plan.snapshot().cloned(),
            &update("A", "9"),
            Format::default(),
        )
        .unwrap();
        let verify = read_sync(&path).unwrap();
        assert_eq!(reads(&path), 3);
        assert_eq!(verify.snapshot().unwrap().expose(), "A=9\nB=\"2\"\n");
    }

    /// The one read still refuses a file changed since the plan read it,
    /// on the write path and on the paths that write nothing.
    #[test]
    fn the_one_read_refuses_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        fs::write(&path, "A=\"1\"\n").unwrap();
        let plan = read_sync(&path).unwrap();
        fs::write(&path, "A=\"2\"\n").unwrap();
        for changes in [update("A", "9"), update("A", "1"), Vec::new()] {
            let e = write_sync(
                &path,
                true,
                plan.exists,
                plan.snapshot().cloned(),
                &changes,
                Format::default(),
            )
            .unwrap_err();
            assert!(
                e.message.contains("changed since it was read"),
                "{}",
                e.message
            );
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "A=\"2\"\n");
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
