//! Running shell scripts where a target lives: on this machine, or on a host
//! over SSH through one master connection per host for the whole run.
//!
//! Both the `ssh_env` and the `keychain` targets talk to their host through a
//! [`Runner`]. A script is always passed as `sh -c SCRIPT sh ARGS…`: the
//! script and its arguments are visible in `ps` on the host, so they carry
//! paths and names only; **values travel on stdin**, never in a command line.
//!
//! The SSH side uses the `openssh` crate, which drives the system `ssh`:
//! `~/.ssh/config`, agents and jump hosts apply as they do for `ssh`. The
//! master runs in `BatchMode` (no password prompts) and checks host keys
//! strictly unless the target says `known_hosts: accept-new`. Commands and
//! the final exit go to the master over its control socket (the crate's
//! native mux), not through an `ssh` process each: ~8 ms less per command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use zeroize::Zeroizing;

use crate::targets::TargetError;
use crate::targets::{Fields, ManifestError};

/// How an SSH host key is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KnownHosts {
    /// An unknown or changed host key is an error.
    #[default]
    Strict,
    /// An unknown host key is added; a changed one is still an error.
    AcceptNew,
}

/// How to reach a host over SSH (shared by ssh_env and keychain targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `user@host` or an alias from `~/.ssh/config`.
    pub host: String,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub known_hosts: KnownHosts,
    /// A known_hosts file to use instead of the user's.
    pub known_hosts_file: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// A file field ssh reads (`identity_file`, `known_hosts_file`): an operand,
/// and nothing ssh would expand. ssh expands `${VAR}` from the runner's
/// environment (a token would end up in an error message), `%` tokens
/// (`%d` is the home folder: `known_hosts_file: "%d/.bashrc"` with
/// `accept-new` appends to it) and `~user`; only a leading `~/` is allowed,
/// expanded by secretsync to $HOME. White space is refused too (ssh splits
/// some options on it).
fn ssh_file(f: &Fields<'_>, field: &str) -> Result<Option<String>, ManifestError> {
    let value = f.operand(field)?;
    if let Some(v) = &value {
        let rest = v.strip_prefix("~/").unwrap_or(v);
        let bad = rest
            .chars()
            .find(|c| matches!(c, '$' | '%' | '~') || c.is_whitespace());
        if let Some(c) = bad {
            let what = match c {
                '$' => "`$`, which ssh expands from the environment".to_string(),
                '%' => "`%`, which ssh expands as a token".to_string(),
                '~' => {
                    "`~` other than a leading `~/`, which ssh expands to a home folder".to_string()
                }
                c => format!("white space ({})", crate::neutral::quoted(&c.to_string())),
            };
            return Err(f.error(
                field,
                format!("`{field}` of target `{}` contains {what}", f.target()),
                Some("write the file's path in full (a leading `~/` is your home folder); ssh would expand these, with values from the run's environment".into()),
            ));
        }
    }
    Ok(value)
}

/// The fields of a target that reaches a host over SSH, besides `host`.
pub const SSH_FIELDS: &[&str] = &[
    "port",
    "identity_file",
    "known_hosts",
    "known_hosts_file",
    "connect_timeout",
];

impl SshOptions {
    /// Reads a target's SSH fields; `host` is given by the caller (required
    /// by ssh_env, optional for a keychain).
    pub fn from_fields(f: &Fields<'_>, host: String) -> Result<SshOptions, ManifestError> {
        if host.chars().any(char::is_whitespace) {
            return Err(f.error(
                "host",
                format!("`host` of target `{}` contains white space", f.target()),
                Some("write `user@host` or an alias from ~/.ssh/config".into()),
            ));
        }
        let connect_timeout = f.parse("connect_timeout", |t| {
            crate::targets::fields::parse_duration(t).map_err(|why| {
                (
                    format!("connect_timeout `{t}`: {why}"),
                    Some("for example 10s, 500ms, 2m".into()),
                )
            })
        })?;
        Ok(SshOptions {
            host,
            port: f.number("port")?,
            identity_file: ssh_file(f, "identity_file")?,
            known_hosts: f
                .parse("known_hosts", |t| match t {
                    "strict" => Ok(KnownHosts::Strict),
                    "accept-new" | "accept_new" => Ok(KnownHosts::AcceptNew),
                    _ => Err((
                        format!("unknown known_hosts mode `{t}`"),
                        Some("one of: strict, accept-new".into()),
                    )),
                })?
                .unwrap_or_default(),
            known_hosts_file: ssh_file(f, "known_hosts_file")?,
            connect_timeout,
        })
    }

    /// The files on this machine ssh reads for these options (review mode
    /// compares those inside the checkout with the base). Relative paths
    /// are ssh's: from the current folder.
    pub fn local_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(key) = &self.identity_file {
            let key = expand_home(key);
            let mut cert = key.clone().into_os_string();
            cert.push("-cert.pub");
            out.push(key);
            out.push(PathBuf::from(cert));
        }
        if let Some(file) = &self.known_hosts_file {
            out.push(expand_home(file));
        }
        out
    }
}

/// How many commands run at once on one SSH connection: below sshd's default
/// `MaxSessions 10`, so a run with many targets on one host never hits it.
const SESSIONS_PER_HOST: usize = 8;

/// How long a master waits, idle, for its run's next command before it ends
/// itself. A run closes its masters when it ends; this bounds the life of
/// one left by a run that was killed (`SIGKILL` leaves no chance to close),
/// and is longer than any pause within a run (`apply`'s confirmation).
const ORPHAN_IDLE: std::num::NonZeroUsize = std::num::NonZeroUsize::new(3600).unwrap();

/// How the error of a connection lost while a command ran ends: a write
/// that meets it may have landed (`ssh_env` says so).
pub const LOST_DURING: &str = "was lost during the command";

/// The default `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a script printed and how it ended. Both streams may hold values (a
/// read prints the file): they are zeroed when dropped.
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: Zeroizing<Vec<u8>>,
    pub stderr: Zeroizing<Vec<u8>>,
}

impl Output {
    /// The last non-empty line of stderr, for error messages. Scripts print
    /// only their own diagnostics there, never a value.
    pub fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("code", &self.code)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr", &format_args!("<{} bytes>", self.stderr.len()))
            .finish()
    }
}

/// Where scripts run: this machine or one SSH host.
#[derive(Clone)]
pub enum Runner {
    Local,
    Ssh(Arc<Host>),
}

impl Runner {
    /// Runs `sh -c script sh args…` (through `sudo -n` when `sudo`), writes
    /// `stdin` to it and collects its output. `Err` only when the script could
    /// not be run at all (connection lost, no `sh`); a script that fails is an
    /// `Ok` with its exit code.
    pub async fn sh(
        &self,
        script: &str,
        args: &[&str],
        stdin: &[u8],
        sudo: bool,
    ) -> Result<Output, TargetError> {
        match self {
            Runner::Local => run_local(script, args, stdin, sudo).await,
            Runner::Ssh(host) => host.sh(script, args, stdin, sudo).await,
        }
    }

    /// "this machine" or "host deploy@vps", for messages.
    pub fn place(&self) -> String {
        match self {
            Runner::Local => "this machine".into(),
            Runner::Ssh(h) => format!("host {}", h.label),
        }
    }
}

/// Writes `bytes` to a child's stdin and closes it (EOF), while the caller
/// collects the output. A script that exits without reading all of its
/// input closes the pipe: that is its business, told by its exit code.
async fn feed<W: tokio::io::AsyncWrite + Unpin>(input: Option<W>, bytes: &[u8]) {
    if let Some(mut w) = input {
        let _ = w.write_all(bytes).await;
        let _ = w.shutdown().await;
    }
}

async fn run_local(
    script: &str,
    args: &[&str],
    stdin: &[u8],
    sudo: bool,
) -> Result<Output, TargetError> {
    let mut cmd = if sudo {
        let mut c = tokio::process::Command::new("sudo");
        c.arg("-n").arg("sh");
        c
    } else {
        tokio::process::Command::new("sh")
    };
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        TargetError::failed(format!(
            "cannot run {} on this machine: {e}",
            if sudo { "sudo" } else { "sh" }
        ))
    })?;
    let input = child.stdin.take();
    let (_, out) = tokio::join!(feed(input, stdin), child.wait_with_output());
    let out = out.map_err(|e| TargetError::failed(format!("running sh on this machine: {e}")))?;
    Ok(Output {
        code: out.status.code(),
        stdout: Zeroizing::new(out.stdout),
        stderr: Zeroizing::new(out.stderr),
    })
}

/// One SSH host with its master connection, opened on first use.
pub struct Host {
    /// `user@host:port` as the manifest names it, for messages.
    pub label: String,
    opts: SshOptions,
    control_dir: PathBuf,
    /// Set when masters outlive the run (`--ssh-persist`).
    persist: Option<Persist>,
    /// `None` until the first command; then the master, or why there is none.
    session: AsyncMutex<Option<Result<Arc<openssh::Session>, TargetError>>>,
    slots: Semaphore,
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
    pub async fn session(&self) -> Result<Arc<openssh::Session>, TargetError> {
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

    async fn connect(&self) -> Result<openssh::Session, TargetError> {
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
                return Err(TargetError::unreachable(format!(
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

    async fn sh(
        &self,
        script: &str,
        args: &[&str],
        stdin: &[u8],
        sudo: bool,
    ) -> Result<Output, TargetError> {
        let session = self.session().await?;
        let _slot = self.slots.acquire().await.map_err(|_| {
            TargetError::failed(format!("the connection to {} was closed", self.label))
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

    fn lost(&self, e: &openssh::Error) -> TargetError {
        match e {
            openssh::Error::Disconnected | openssh::Error::RemoteProcessTerminated => {
                self.dropped()
            }
            other => TargetError::unreachable(format!(
                "cannot run a command on {}: {}",
                self.label,
                error_chain(other)
            )),
        }
    }

    fn dropped(&self) -> TargetError {
        TargetError::unreachable(format!(
            "the SSH connection to {} {LOST_DURING}",
            self.label
        ))
        .with_hint("run plan again: an env file write is atomic, so the file is either old or new")
    }
}

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
struct Persist {
    dir: PathBuf,
    idle: std::num::NonZeroUsize,
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
    fn resume(&self, opts: &SshOptions) -> Option<openssh::Session> {
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
    fn remember(&self, opts: &SshOptions, session: &openssh::Session) {
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

/// Whether a master listens on this control socket (a connect is enough:
/// the socket file outlives a master that was killed).
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Removes the folders of masters that ended (no socket answers, and older
/// than any handshake: another run may be connecting) and links to nowhere.
fn sweep(dir: &Path) {
    let settled = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600))
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && name.to_string_lossy().starts_with(".ssh-connection") {
            if settled(&path) && !answers(&path.join("master")) {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if kind.is_symlink() && !path.exists() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// `2s`, `1.5s`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Ends the `ssh -M` this process started for `opts` whose handshake ran out
/// of time (the openssh crate does not kill it when its future is dropped):
/// on Linux, a child `ssh` of this process with a master socket in
/// `control_dir` and this destination. Elsewhere it ends on its own, when
/// its keep-alives give up.
fn end_stuck_handshake(control_dir: &Path, opts: &SshOptions) {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let dir = control_dir.to_string_lossy().into_owned();
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let parent = std::fs::read_to_string(p.path().join("stat"))
            .ok()
            .and_then(|st| {
                // pid (comm) state ppid …: the comm may hold spaces.
                st.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
            });
        if parent.as_deref() != Some(me.as_str()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .strip_suffix(b"\0")
            .unwrap_or(&cmdline)
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_master = args.first().is_some_and(|a| a.ends_with("ssh"))
            && args.iter().any(|a| a == "-M")
            && args
                .iter()
                .any(|a| a.starts_with(&dir) && a.ends_with("/master"))
            && args.last().is_some_and(|a| a == &opts.host)
            && opts.port.is_none_or(|port| {
                args.windows(2)
                    .any(|w| w[0] == "-p" && w[1] == port.to_string())
            });
        if is_master {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// The file in a master's folder naming the run that opened it.
const RUN_PID_FILE: &str = "secretsync.pid";

/// Marks a master this run opened (and closes when it ends): its folder gets
/// the run's pid, so that a later run can end it if this one is killed, and
/// [`crate::signals`] closes it on SIGINT/SIGTERM/SIGHUP.
fn mark_master(session: &openssh::Session) {
    let socket = session.control_socket();
    let Some(folder) = socket.parent() else {
        return;
    };
    let _ = std::fs::write(folder.join(RUN_PID_FILE), std::process::id().to_string());
    crate::signals::remember_master(socket, folder);
}

/// Ends the masters left by runs that were killed (SIGKILL leaves no chance
/// to close them) and removes their folders: folders of this user in `dir`
/// marked with a run's pid ([`mark_master`]) whose run is gone.
pub fn sweep_killed_masters(dir: &Path) {
    for folder in killed_masters(dir) {
        let socket = folder.join("master");
        if answers(&socket) {
            crate::signals::close_master(&socket);
        }
        let _ = std::fs::remove_dir_all(&folder);
    }
}

/// The folders [`sweep_killed_masters`] would remove (`doctor` reports them).
pub fn killed_masters(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".ssh-connection")
        })
        .map(|e| e.path())
        .filter(|folder| {
            let Ok(meta) = std::fs::symlink_metadata(folder) else {
                return false;
            };
            if !meta.is_dir() || meta.uid() != me {
                return false;
            }
            let Ok(pid) = std::fs::read_to_string(folder.join(RUN_PID_FILE)) else {
                return false;
            };
            pid.trim()
                .parse::<i32>()
                .is_ok_and(|p| p != std::process::id() as i32 && !crate::signals::pid_alive(p))
        })
        .collect()
}

/// What makes two targets' connections the same one: every option.
fn options_key(opts: &SshOptions) -> String {
    format!("{opts:?}")
}

/// `user@host` or `user@host:port`.
pub fn label(opts: &SshOptions) -> String {
    match opts.port {
        Some(p) => format!("{}:{p}", opts.host),
        None => opts.host.clone(),
    }
}

/// `~/x` → `$HOME/x` (for local key and known_hosts files).
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if !home.is_empty() => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let more = s.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cur = s.source();
    }
    text
}

/// Turns ssh's complaint into an error that says what happened and what to do.
fn connect_error(label: &str, opts: &SshOptions, e: &openssh::Error) -> TargetError {
    let detail = error_chain(e);
    let said = detail.to_ascii_lowercase();
    let timeout = opts.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
    if said.contains("host key verification failed")
        || said.contains("remote host identification has changed")
        || said.contains("host key for")
        || said.contains("no ") && said.contains("host key is known")
    {
        let changed = said.contains("changed");
        let what = if changed { "changed" } else { "is not known" };
        return TargetError::auth(format!(
            "the SSH host key of {label} {what}; the connection was refused ({detail})"
        ))
        .with_hint(if changed {
            "if the host was reinstalled, check its new key out of band, then replace the old \
             line in known_hosts (`ssh-keygen -R HOST`); otherwise treat this as an attack"
        } else {
            "check the host's key out of band and add it to known_hosts (connect once with \
             `ssh`), or set `known_hosts: accept-new` on the target"
        });
    }
    if said.contains("permission denied") && said.contains('(') {
        return TargetError::auth(format!("{label} refused the SSH authentication ({detail})"))
            .with_hint(
                "check the user, `identity_file` or the agent, and that the public key is in the \
             user's authorized_keys on the host",
            );
    }
    if said.contains("connection refused") {
        return TargetError::unreachable(format!("cannot connect to {label}: connection refused"))
            .with_hint("is sshd running on the host, and is the port right?");
    }
    if said.contains("timed out") {
        return TargetError::unreachable(format!(
            "cannot connect to {label}: no answer within {} (connect_timeout)",
            secs(timeout)
        ))
        .with_hint(
            "check the host name, the network and any firewall, or raise `connect_timeout`",
        );
    }
    if said.contains("could not resolve") || said.contains("name or service not known") {
        return TargetError::unreachable(format!(
            "cannot connect to {label}: the host name does not resolve"
        ))
        .with_hint("check `host` (an alias must be defined in ~/.ssh/config)");
    }
    if said.contains("could not be executed") || said.contains("no such file") {
        return TargetError::failed(format!(
            "cannot run the local `ssh` to reach {label}: {detail}"
        ))
        .with_hint("install OpenSSH's client (`ssh` on PATH)");
    }
    TargetError::unreachable(format!("cannot connect to {label}: {detail}"))
        .with_hint("try `ssh` to the host by hand to see why")
}

/// Quotes `s` for a POSIX shell (for paths placed in scripts).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_runner_passes_args_and_stdin() {
        let out = Runner::Local
            .sh(
                r#"printf '%s|' "$1" "$2"; cat"#,
                &["a b", "it's"],
                b"from stdin",
                false,
            )
            .await
            .unwrap();
        assert_eq!(out.code, Some(0));
        assert_eq!(out.stdout.as_slice(), b"a b|it's|from stdin");
    }

    #[tokio::test]
    async fn local_runner_reports_exit_code_and_stderr() {
        let out = Runner::Local
            .sh("echo oops >&2; exit 7", &[], b"", false)
            .await
            .unwrap();
        assert_eq!(out.code, Some(7));
        assert_eq!(out.stderr_line(), "oops");
        assert!(!format!("{out:?}").contains("oops"));
    }

    #[test]
    fn quoting_survives_a_shell() {
        let nasty = "it's a $HOME `x` \"y\"";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(nasty)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }
}
