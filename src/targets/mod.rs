//! The one seam between the engine and the places secrets live.
//!
//! Every backend implements [`Target`] and registers its [`Kind`] in
//! [`registry::KINDS`]. The engine (plan, apply, doctor, import) only ever sees
//! `Box<dyn Target>`: it reads [`Observed`] state, hands back a list of
//! [`Change`]s, and never knows whether it talks to a file, a host over SSH,
//! Railway or a keychain. Backends that can serve several targets with one
//! request (all files of one host, all services of one Railway project)
//! declare a [`Target::batch_key`]; the engine reads each group with one
//! [`Target::read_batch`].
//!
//! The seam's own files: `kind.rs` (what a kind and a spec promise),
//! `fields.rs` and `diagnostics.rs` (a target's fields as the manifest wrote
//! them, and the located error a kind reports with), `ssh.rs` (SSH fields,
//! remote errors as target errors), `envfile_target.rs` (an env file read
//! into [`Observed`] and edited by [`Change`]s), `file.rs` (regular files).

pub mod diagnostics;
pub mod env_file;
pub mod envfile_target;
pub mod fields;
pub mod file;
pub mod keychain;
pub mod kind;
pub mod live_unit;
pub mod railway;
pub mod registry;
pub mod scripts;
pub mod ssh;
pub mod ssh_env;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::crypto::Fingerprinter;
use crate::secret::Secret;
pub use diagnostics::ManifestError;
pub use envfile_target::FileRead;
pub use fields::Fields;
pub use kind::{Kind, Spec, TargetSpec};

/// What a target holds under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A readable value.
    Value(Secret),
    /// The key exists but its value cannot be read (a Railway sealed variable).
    Sealed,
}

/// The state of a target as read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Key (as named on the target) to what it holds.
    pub entries: BTreeMap<String, Observation>,
    /// Whether the container exists at all (an env file may be missing).
    pub exists: bool,
    /// True when `entries` lists every key on the target; false when the
    /// backend could only look up the keys it was asked for (a keychain), in
    /// which case unmanaged keys are unknown and cannot be pruned.
    pub complete: bool,
    /// Things worth saying about what was read, without values (an env
    /// file's keys left alone, keys defined twice, Railway references left
    /// alone); shown by plan and import.
    pub notes: Vec<String>,
    /// What only an env file that exists keeps (its text as read, the keys
    /// it defines twice); `None` for every other target.
    pub file: Option<FileRead>,
    /// What runs from the target, read in the same pass (#28): empty when
    /// the target declares nothing that runs (see [`crate::liveness`]).
    pub live: crate::liveness::Liveness,
}

impl Observed {
    /// A target that exists and lists every key it holds.
    pub fn complete(entries: BTreeMap<String, Observation>) -> Self {
        Observed {
            entries,
            exists: true,
            complete: true,
            ..Default::default()
        }
    }

    /// A target that exists but was asked only for some keys (a keychain):
    /// unmanaged keys are unknown and cannot be pruned.
    pub fn partial(entries: BTreeMap<String, Observation>) -> Self {
        Observed {
            entries,
            exists: true,
            complete: false,
            ..Default::default()
        }
    }

    /// A container that does not exist (an env file not created yet): every
    /// key is absent, and that is the whole truth.
    pub fn missing() -> Self {
        Observed {
            exists: false,
            complete: true,
            ..Default::default()
        }
    }

    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }

    /// An env file's extras ([`FileRead`]).
    pub fn with_file(mut self, file: FileRead) -> Self {
        self.file = Some(file);
        self
    }

    /// The env file's text as read, if this is an env file that exists.
    pub fn snapshot(&self) -> Option<&Secret> {
        self.file.as_ref().map(|f| &f.text)
    }

    /// Whether `key` is defined more than once (an env file): never in sync,
    /// so that apply leaves one definition.
    pub fn is_duplicated(&self, key: &str) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| f.duplicated.contains(key))
    }
}

/// One change to make on a target, named as the key is named there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The key is absent: create it.
    Add(Secret),
    /// The key holds another (or an unreadable) value: replace it.
    Update(Secret),
    /// The key is unmanaged and the target prunes: delete it.
    Delete,
}

impl Op {
    pub fn value(&self) -> Option<&Secret> {
        match self {
            Op::Add(v) | Op::Update(v) => Some(v),
            Op::Delete => None,
        }
    }
}

/// One target of a batched read, with the keys the manifest manages there.
pub struct Read<'a> {
    pub target: &'a dyn Target,
    pub keys: &'a [String],
}

/// Reads every member of `group` on its own, at once: the default batched
/// read, and a backend's fallback when a group is not all of its type.
pub async fn read_each(group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
    futures_util::future::join_all(group.iter().map(|r| r.target.read(r.keys))).await
}

/// The members of a batch as their backend's type `T`: the engine groups
/// targets by kind and [`Target::batch_key`], so each is one; `None` if not.
pub fn members<'a, T: Target>(group: &[Read<'a>]) -> Option<Vec<(&'a T, &'a [String])>> {
    group
        .iter()
        .map(|r| {
            (r.target as &dyn Any)
                .downcast_ref::<T>()
                .map(|t| (t, r.keys))
        })
        .collect()
}

/// One member of a batched write: the target, the state its plan was
/// computed from, and the changes to make.
pub struct Write<'a> {
    pub target: &'a dyn Target,
    pub observed: &'a Observed,
    pub changes: &'a [Change],
}

/// Writes every member of `group` on its own, at once: the default batched
/// write, and a backend's fallback when a group is not all of its type.
pub async fn write_each(group: &[Write<'_>]) -> Vec<Result<(), TargetError>> {
    futures_util::future::join_all(group.iter().map(|w| w.target.write(w.observed, w.changes)))
        .await
}

/// [`members`] for a batched write.
pub fn write_members<'a, T: Target>(group: &'a [Write<'a>]) -> Option<Vec<(&'a T, &'a Write<'a>)>> {
    group
        .iter()
        .map(|w| (w.target as &dyn Any).downcast_ref::<T>().map(|t| (t, w)))
        .collect()
}

/// The result of one `doctor` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked ("token accepted", "file writable").
    pub what: String,
    /// `Ok(detail)` or `Err(problem)`; a problem carries its fix in `hint`.
    pub outcome: Result<String, TargetError>,
}

/// The broad class of a failure, for exit codes, JSON output and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The host or API could not be reached (DNS, refused, timeout).
    Unreachable,
    /// Credentials are missing, refused, expired or lack access.
    Auth,
    /// The target changed between the read and the write: nothing was written.
    Conflict,
    /// A secret's value is past its expiry (`doctor`'s lifecycle checks):
    /// not a target's failure, and not a refused credential.
    Expired,
    /// A key or value that this target cannot hold.
    Invalid,
    /// The target refused or failed the operation (permissions, no space,
    /// a command that failed, a malformed answer).
    Failed,
}

/// A failure of one target. The message never contains a secret value: it
/// names what failed and why; `hint` says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
    /// Set when the target was changed by someone else since it was read
    /// (`kind` is then [`ErrorKind::Conflict`]): see [`Conflict`].
    pub conflict: Option<Conflict>,
}

/// A write refused because the target changed since it was read: nothing
/// was written, and a new plan is the way on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conflict {
    /// The keys that moved, as named on the target, when the backend compared
    /// key by key; empty when it compared the whole (a file's bytes).
    pub keys: Vec<String>,
}

impl TargetError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TargetError {
            kind,
            message: message.into(),
            hint: None,
            conflict: None,
        }
    }

    /// The target changed since it was read (`keys`: those that moved, if
    /// known): a [`Conflict`], said in `message`, with "run plan again" or
    /// a more precise `hint`.
    pub fn changed_since_read(message: impl Into<String>, keys: Vec<String>) -> Self {
        let mut e = Self::new(ErrorKind::Conflict, message);
        e.conflict = Some(Conflict { keys });
        e
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreachable, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TargetError {}

/// A place secrets are deployed to.
#[async_trait]
pub trait Target: Send + Sync + Any {
    /// The target's name in the manifest.
    fn name(&self) -> &str;

    /// A one-line description for output, without credentials
    /// ("env file ./app.env", "deploy@vps:/etc/app/app.env").
    fn describe(&self) -> String;

    /// Whether this target can hold `value`. Called at plan time for every
    /// value about to be written, so that a value the backend cannot carry is
    /// a clear error before anything is written. `Err` says why, without the value.
    fn check_value(&self, value: &Secret) -> Result<(), String> {
        let _ = value;
        Ok(())
    }

    /// Whether `value`, as read here, is the platform's wiring rather than a
    /// secret: a Railway reference (`${{Postgres.DATABASE_URL}}`) that the
    /// platform resolves. `import` keeps such a value in clear.
    fn is_reference(&self, value: &Secret) -> bool {
        let _ = value;
        false
    }

    /// For targets that are a text file: a unified diff of the file as it
    /// is and as `changes` make it, every value replaced by a marker (with
    /// a keyed fingerprint when `fp` has a key). Shown by `plan`.
    fn file_diff(
        &self,
        observed: &Observed,
        changes: &[Change],
        fp: &Fingerprinter,
    ) -> Option<String> {
        let _ = (observed, changes, fp);
        None
    }

    /// Notes on what `changes` do to the target beyond the values, per key
    /// (an env file's `export ` a format drops). Shown by `plan`.
    fn change_notes(&self, observed: &Observed, changes: &[Change]) -> Vec<String> {
        let _ = (observed, changes);
        Vec::new()
    }

    /// Reads the target's current state. `keys` are the names the manifest
    /// manages here: backends that can list everything return all keys
    /// (`complete: true`), the others look up just these.
    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError>;

    /// Targets of one kind with the same key are read together: the engine
    /// calls [`Target::read_batch`] once per group and pass (the plan, the
    /// verify after apply). `None`: this target is read alone.
    fn batch_key(&self) -> Option<String> {
        None
    }

    /// Reads every member of `group` (this target among them, all of its
    /// kind and batch key) with as few requests as the backend allows: one
    /// result per member, in order. By default, each on its own.
    async fn read_batch(&self, group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
        read_each(group).await
    }

    /// Makes `changes`. `observed` is the state the plan was computed from:
    /// if the target no longer matches it, the backend must refuse with
    /// [`ErrorKind::Conflict`] and write nothing. A write is all or nothing
    /// where the backend allows it (env files are), and never partial silently.
    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError>;

    /// Makes the changes of every member of `group` (this target among them,
    /// all of its kind and batch key) with as few requests as the backend
    /// allows, each member under [`Target::write`]'s rules (a member that
    /// moved since its plan is refused alone): one result per member, in
    /// order. By default, each on its own.
    async fn write_batch(&self, group: &[Write<'_>]) -> Vec<Result<(), TargetError>> {
        write_each(group).await
    }

    /// `apply --redeploy` (#28): restarts what `handles` name (the
    /// [`crate::liveness::Runner::handle`]s of this target's reads, and of
    /// the others of its batch), each once, with as few requests as the
    /// backend allows. One result per handle. By default nothing can be.
    async fn redeploy(&self, handles: &[String]) -> Vec<Result<(), TargetError>> {
        handles
            .iter()
            .map(|_| Err(TargetError::failed("this target cannot be redeployed")))
            .collect()
    }

    /// `doctor`: are credentials present and accepted, is the target
    /// reachable, readable and writable. Never writes a value.
    async fn check(&self) -> Vec<Check>;
}

/// What the targets of one run share: the manifest's folder and the
/// connections (one SSH master per host, one HTTP client). Batching is not
/// kept here: the engine groups reads by [`Target::batch_key`].
pub struct Context {
    /// The manifest's folder: relative paths in target specs start here.
    pub manifest_dir: PathBuf,
    pub ssh: Arc<crate::remote::SshPool>,
    pub http: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl Context {
    pub fn new(manifest_dir: PathBuf) -> Self {
        Context {
            manifest_dir,
            ssh: Arc::new(crate::remote::SshPool::default()),
            http: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_error_shows_hint_on_its_own_line() {
        let e = TargetError::auth("token refused").with_hint("run `secretsync doctor`");
        assert_eq!(
            e.to_string(),
            "token refused\n  hint: run `secretsync doctor`"
        );
    }
}
