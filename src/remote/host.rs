//! One SSH host with its master connection: opened on first use, replaced
//! when it ended, commands run through it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use zeroize::Zeroizing;

use super::classify::{connect_error, error_chain, secs, CONNECT_TIMEOUT};
use super::masters::{answers, end_stuck_handshake, mark_master, Persist};
use super::runner::feed;
use super::{expand_home, options_key, KnownHosts, Output, RemoteError, SshOptions};

/// How many commands run at once on one SSH connection: below sshd's default
/// `MaxSessions 10`, so a run with many targets on one host never hits it.
pub(super) const SESSIONS_PER_HOST: usize = 8;

/// How long a master waits, idle, for its run's next command before it ends
/// itself. A run closes its masters when it ends; this bounds the life of
/// one left by a run that was killed (`SIGKILL` leaves no chance to close),
/// and is longer than any pause within a run (`apply`'s confirmation).
const ORPHAN_IDLE: std::num::NonZeroUsize = std::num::NonZeroUsize::new(3600).unwrap();

/// How the error of a connection lost while a command ran ends: a write
/// that meets it may have landed (`ssh_env` says so).
pub const LOST_DURING: &str = "was lost during the command";

/// One SSH host with its master connection, opened on first use.
pub struct Host {
    /// `user@host:port` as the manifest names it, for messages.
    pub label: String,
    pub(super) opts: SshOptions,
    pub(super) control_dir: PathBuf,
    /// Set when masters outlive the run (`--ssh-persist`).
    pub(super) persist: Option<Persist>,
    /// `None` until the first command; then the master, or why there is none.
    pub(super) session: AsyncMutex<Option<Result<Arc<openssh::Session>, RemoteError>>>,
    pub(super) slots: Semaphore,
}

impl Host {
    /// Names this host's connection: targets with the same key share it
    /// (and a batched read).
    pub fn key(&self) -> String {
        options_key(&self.opts)
    }

    /// The master connection, opened on first use; a failure is remembered
    /// for the run, so every target on an unreachable host reports the same
    /// cause without trying again. A master that has ended since (the host
    /// rebooted, or it idled out during a long pause such as `apply`'s
    /// confirmation) is replaced: every write checks what it replaces, so a
    /// new connection is as safe as the old one.
    pub async fn session(&self) -> Result<Arc<openssh::Session>, RemoteError> {
        let mut slot = self.session.lock().await;
        if let Some(Ok(s)) = slot.as_ref() {
            if !answers(s.control_socket()) {
                *slot = None;
            }
        }
        if let Some(known) = slot.as_ref() {
            return known.clone();
        }
        let made = self.connect().await.map(Arc::new);
        *slot = Some(made.clone());
        made
    }

    async fn connect(&self) -> Result<openssh::Session, RemoteError> {
        if let Some(p) = &self.persist {
            if let Some(kept) = p.resume(&self.opts) {
                return Ok(kept);
            }
        }
        let mut b = openssh::SessionBuilder::default();
        b.known_hosts_check(match self.opts.known_hosts {
            KnownHosts::Strict => openssh::KnownHosts::Strict,
            KnownHosts::AcceptNew => openssh::KnownHosts::Add,
        })
        .connect_timeout(self.opts.connect_timeout.unwrap_or(CONNECT_TIMEOUT))
        .server_alive_interval(Duration::from_secs(15))
        .control_directory(&self.control_dir);
        if let Some(port) = self.opts.port {
            b.port(port);
        }
        if let Some(key) = &self.opts.identity_file {
            b.keyfile(expand_home(key));
        }
        if let Some(file) = &self.opts.known_hosts_file {
            b.user_known_hosts_file(expand_home(file));
        }
        b.control_persist(openssh::ControlPersist::IdleFor(
            self.persist.as_ref().map_or(ORPHAN_IDLE, |p| p.idle),
        ));
        // `ConnectTimeout` bounds ssh's TCP connect only: a host that sends
        // its banner and then stalls would hold the handshake until the
        // keep-alives give up (45 s). The whole set-up (banner, key
        // exchange, authentication) gets `connect_timeout`.
        let limit = self.opts.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let session = match tokio::time::timeout(limit, b.connect_mux(&self.opts.host)).await {
            Ok(made) => made.map_err(|e| connect_error(&self.label, &self.opts, &e))?,
            Err(_) => {
                end_stuck_handshake(&self.control_dir, &self.opts);
                return Err(RemoteError::unreachable(format!(
                    "cannot connect to {}: no answer within {} (connect_timeout): the SSH set-up (banner, key exchange, authentication) did not finish",
                    self.label,
                    secs(limit)
                ))
                .with_hint(
                    "the host accepts connections but does not complete the SSH handshake: check sshd on it (load, DNS lookups, MaxStartups), or raise `connect_timeout`",
                ));
            }
        };
        if let Some(p) = &self.persist {
            p.remember(&self.opts, &session);
        } else {
            mark_master(&session);
        }
        Ok(session)
    }

    pub(super) async fn sh(
        &self,
        script: &str,
        args: &[&str],
        stdin: &[u8],
        sudo: bool,
    ) -> Result<Output, RemoteError> {
        let session = self.session().await?;
        let _slot = self.slots.acquire().await.map_err(|_| {
            RemoteError::failed(format!("the connection to {} was closed", self.label))
        })?;
        let mut cmd = if sudo {
            let mut c = session.command("sudo");
            c.arg("-n").arg("sh");
            c
        } else {
            session.command("sh")
        };
        // `arg` quotes each argument for the remote shell.
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let mut child = cmd.spawn().await.map_err(|e| self.lost(&e))?;
        let input = child.stdin().take();
        let (_, out) = tokio::join!(feed(input, stdin), child.wait_with_output());
        let out = match out {
            Ok(out) => out,
            // A dropped connection ends the command as `Disconnected` or
            // `RemoteProcessTerminated`, or as exit 255: ask the master
            // which it was.
            Err(e) => return Err(self.lost(&e)),
        };
        if out.status.code() == Some(255) && session.check().await.is_err() {
            return Err(self.dropped());
        }
        Ok(Output {
            code: out.status.code(),
            stdout: Zeroizing::new(out.stdout),
            stderr: Zeroizing::new(out.stderr),
        })
    }

    fn lost(&self, e: &openssh::Error) -> RemoteError {
        match e {
            openssh::Error::Disconnected | openssh::Error::RemoteProcessTerminated => {
                self.dropped()
            }
            other => RemoteError::unreachable(format!(
                "cannot run a command on {}: {}",
                self.label,
                error_chain(other)
            )),
        }
    }

    fn dropped(&self) -> RemoteError {
        RemoteError::unreachable(format!(
            "the SSH connection to {} {LOST_DURING}",
            self.label
        ))
        .with_hint("run plan again: an env file write is atomic, so the file is either old or new")
    }
}
