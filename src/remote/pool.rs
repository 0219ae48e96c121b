//! The run's SSH connections, one [`Host`] per set of options, and the
//! masters kept between runs (`--ssh-persist`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use super::host::SESSIONS_PER_HOST;
use super::masters::{answers, sweep, sweep_killed_masters};
use super::{label, options_key, Host, SshOptions};

/// The run's SSH connections: one [`Host`] per distinct set of connection
/// options, shared by every target that names it.
pub struct SshPool {
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// `--ssh-persist`: how long masters outlive the run.
    keep: Option<Duration>,
    /// The private folder of kept masters, opened with the first host (a run
    /// without SSH targets makes none); `None` when not keeping, or refused.
    persist: std::sync::OnceLock<Option<Persist>>,
}

impl Default for SshPool {
    fn default() -> Self {
        SshPool {
            hosts: Mutex::new(HashMap::new()),
            keep: None,
            persist: std::sync::OnceLock::new(),
        }
    }
}

impl SshPool {
    /// A pool whose masters stay up `idle` after their last command, for the
    /// next run to reuse (as ssh's own `ControlPersist`): a plan followed by
    /// an apply pays for each host's handshake once. The sockets live in a
    /// folder only this user can enter, created with the first host; when it
    /// cannot be used, a notice says why and masters close at exit.
    pub fn persistent(idle: Duration) -> SshPool {
        SshPool {
            keep: Some(idle),
            ..SshPool::default()
        }
    }

    fn persist(&self) -> Option<&Persist> {
        self.persist
            .get_or_init(|| {
                Persist::open(self.keep?)
                    .map_err(|why| {
                        crate::notice::notice(&format!(
                            "note: SSH connections are not kept (--ssh-persist): {why}"
                        ));
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Closes every master connection at once (with `--ssh-persist`, leaves
    /// them to their idle timeout instead). Dropping a session closes it
    /// too, but synchronously: one host after another. Sessions still in use
    /// elsewhere are left to their drop.
    pub async fn close(&self) {
        let hosts: Vec<Arc<Host>> = {
            let mut map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            map.drain().map(|(_, h)| h).collect()
        };
        let sessions = hosts
            .into_iter()
            .filter_map(|h| Arc::try_unwrap(h).ok())
            .filter_map(|h| h.session.into_inner()?.ok())
            .filter_map(|s| Arc::try_unwrap(s).ok());
        if self.persist.get().is_some_and(Option::is_some) {
            for s in sessions {
                let _ = s.detach();
            }
            return;
        }
        // A master that is already gone has nothing left to close.
        futures_util::future::join_all(sessions.map(|s| {
            crate::signals::forget_master(s.control_socket());
            s.close()
        }))
        .await;
    }

    /// Starts connecting to every host known so far, in the background: the
    /// first command of each then finds its handshake under way or done.
    pub fn connect_all(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hosts: Vec<Arc<Host>> = {
            let map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            map.values().cloned().collect()
        };
        for host in hosts {
            runtime.spawn(async move {
                // A failure is kept in the host and told by its targets.
                let _ = host.session().await;
            });
        }
    }

    /// The host for `opts`, created on first request (no connection is
    /// opened until a command runs).
    pub fn host(&self, opts: &SshOptions) -> Arc<Host> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep_killed_masters(&std::env::temp_dir()));
        let key = options_key(opts);
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(key)
            .or_insert_with(|| {
                let persist = self.persist().cloned();
                Arc::new(Host {
                    label: label(opts),
                    opts: opts.clone(),
                    // Short: a Unix socket path is limited to 104–108 bytes.
                    control_dir: persist
                        .as_ref()
                        .map_or_else(std::env::temp_dir, |p| p.dir.clone()),
                    persist,
                    session: AsyncMutex::new(None),
                    slots: Semaphore::new(SESSIONS_PER_HOST),
                })
            })
            .clone()
    }
}

/// Masters kept between runs: one folder per user, one link per set of
/// connection options pointing at the master's control folder.
#[derive(Clone)]
pub(super) struct Persist {
    pub(super) dir: PathBuf,
    pub(super) idle: std::num::NonZeroUsize,
}

impl Persist {
    /// `$XDG_RUNTIME_DIR/secretsync-ssh`, else `secretsync-ssh-UID` in the
    /// temp folder: created 0700, and refused unless it is a real folder of
    /// this user that nobody else may enter (a socket there lets its user run
    /// commands on the host). Masters that ended leave their folder behind:
    /// removed here.
    fn open(idle: Duration) -> Result<Persist, String> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = nix::unistd::geteuid().as_raw();
        let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(d) if d.is_absolute() => d.join("secretsync-ssh"),
            _ => std::env::temp_dir().join(format!("secretsync-ssh-{uid}")),
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        let meta = std::fs::symlink_metadata(&dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{} must be a folder of this user with mode 0700",
                dir.display()
            ));
        }
        sweep(&dir);
        let secs = usize::try_from(idle.as_secs().max(1)).unwrap_or(usize::MAX);
        Ok(Persist {
            dir,
            idle: std::num::NonZeroUsize::new(secs).unwrap_or(std::num::NonZeroUsize::MIN),
        })
    }

    /// The link for one set of options: a hash, so that the socket path
    /// stays short and names no host.
    fn link(&self, opts: &SshOptions) -> PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(options_key(opts).as_bytes());
        self.dir.join(hex::encode(&digest[..8]))
    }

    /// A live master kept by an earlier run with the same options.
    pub(super) fn resume(&self, opts: &SshOptions) -> Option<openssh::Session> {
        let link = self.link(opts);
        let ctl = link.join("master");
        if answers(&ctl) {
            let log = link.join("log");
            return Some(openssh::Session::resume_mux(ctl.into(), Some(log.into())));
        }
        let _ = std::fs::remove_file(&link);
        None
    }

    /// Points the options' link at a new master's folder (replacing the
    /// link of a master that ended, atomically).
    pub(super) fn remember(&self, opts: &SshOptions, session: &openssh::Session) {
        let Some(folder) = session.control_socket().parent().and_then(Path::file_name) else {
            return;
        };
        let link = self.link(opts);
        let tmp = link.with_extension(format!("{:08x}", rand::random::<u32>()));
        if std::os::unix::fs::symlink(folder, &tmp).is_ok() && std::fs::rename(&tmp, &link).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
