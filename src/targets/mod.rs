//! The one seam between the engine and the places secrets live.
//!
//! Every backend implements [`Target`]. The engine (plan, apply, doctor) only
//! ever sees `Box<dyn Target>`: it reads [`Observed`] state, hands back a list
//! of [`Change`]s, and never knows whether it talks to a file, a host over SSH,
//! Railway or a keychain. Backends that can serve several targets with one
//! request (all files of one host, all services of one Railway project) batch
//! reads per [`Round`] through [`RoundCache`].

pub mod env_file;
pub mod keychain;
pub mod railway;
pub mod scripts;
pub mod ssh_env;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::manifest::TargetSpec;
use crate::secret::Secret;

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
    /// Target-private state needed to write safely: for env files the whole
    /// text as read, used to edit in place and to detect a concurrent change.
    pub snapshot: Option<Secret>,
    /// Things worth saying about what was read, without values (an env
    /// file's keys left alone, keys defined twice); shown by plan and import.
    pub notes: Vec<String>,
    /// Keys defined more than once (an env file): never in sync, so that
    /// apply leaves one definition.
    pub duplicated: BTreeSet<String>,
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

/// One pass of reads over all targets. Backends that batch (one command per
/// host, one request per project) share a read between targets of the same
/// round and read afresh in the next one (the verify pass after apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Round(pub u64);

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
}

impl TargetError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TargetError {
            kind,
            message: message.into(),
            hint: None,
        }
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
pub trait Target: Send + Sync {
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

    /// Reads the target's current state. `keys` are the names the manifest
    /// manages here: backends that can list everything return all keys
    /// (`complete: true`), the others look up just these.
    async fn read(&self, round: Round, keys: &[String]) -> Result<Observed, TargetError>;

    /// Makes `changes`. `observed` is the state the plan was computed from:
    /// if the target no longer matches it, the backend must refuse with
    /// [`ErrorKind::Conflict`] and write nothing. A write is all or nothing
    /// where the backend allows it (env files are), and never partial silently.
    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError>;

    /// `doctor`: are credentials present and accepted, is the target
    /// reachable, readable and writable. Never writes a value.
    async fn check(&self) -> Vec<Check>;
}

/// State shared by all targets of one run: SSH connections (one per host),
/// Railway name resolution (one query per project) and keychain reads (one
/// command per host and round).
pub struct Context {
    /// The manifest's folder: relative paths in target specs start here.
    pub manifest_dir: PathBuf,
    pub ssh: Arc<crate::remote::SshPool>,
    /// Env files per SSH host, read together.
    pub ssh_files: Arc<ssh_env::Shared>,
    pub railway: Arc<railway::Shared>,
    /// Keychain reads batched per host and round.
    pub keychain: Arc<keychain::Shared>,
}

impl Context {
    pub fn new(manifest_dir: PathBuf) -> Self {
        Context {
            manifest_dir,
            ssh: Arc::new(crate::remote::SshPool::default()),
            ssh_files: Arc::new(ssh_env::Shared::default()),
            railway: Arc::new(railway::Shared::default()),
            keychain: Arc::new(keychain::Shared::default()),
        }
    }
}

/// Builds the backend for one target of the manifest.
pub fn build(name: &str, spec: &TargetSpec, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
    Ok(match spec {
        TargetSpec::EnvFile(s) => Box::new(env_file::LocalEnvFile::new(name, s, ctx)?),
        TargetSpec::SshEnv(s) => Box::new(ssh_env::SshEnvFile::new(name, s, ctx)?),
        TargetSpec::Railway(s) => Box::new(railway::RailwayTarget::new(name, s, ctx)?),
        TargetSpec::Keychain(s) => Box::new(keychain::KeychainTarget::new(name, s, ctx)?),
    })
}

/// Shares one batched read among the targets of a round: the first caller of
/// a round runs `init`, the others await its result; a new round reads afresh.
pub struct RoundCache<T> {
    slot: Mutex<Option<(Round, Arc<OnceCell<T>>)>>,
}

impl<T> Default for RoundCache<T> {
    fn default() -> Self {
        RoundCache {
            slot: Mutex::new(None),
        }
    }
}

impl<T: Clone> RoundCache<T> {
    pub async fn get_or_init<F>(&self, round: Round, init: F) -> T
    where
        F: Future<Output = T>,
    {
        let cell = {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some((r, cell)) if *r == round => cell.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    *slot = Some((round, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| init).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn round_cache_reads_once_per_round() {
        let cache = RoundCache::<usize>::default();
        let calls = AtomicUsize::new(0);
        let read = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            calls.load(Ordering::SeqCst)
        };
        let (a, b) = tokio::join!(
            cache.get_or_init(Round(1), read()),
            cache.get_or_init(Round(1), read())
        );
        assert_eq!((a, b), (1, 1));
        assert_eq!(cache.get_or_init(Round(2), read()).await, 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn target_error_shows_hint_on_its_own_line() {
        let e = TargetError::auth("token refused").with_hint("run `secretsync doctor`");
        assert_eq!(
            e.to_string(),
            "token refused\n  hint: run `secretsync doctor`"
        );
    }
}
