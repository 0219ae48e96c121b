//! The run's SSH connections, one [`Host`] per set of options, and the
//! masters kept between runs (`--ssh-persist`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use super::host::SESSIONS_PER_HOST;
use super::masters::{sweep_killed_masters, Persist};
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
