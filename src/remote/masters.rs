//! The `ssh -M` processes this program starts and their control folders:
//! whether one answers, ending one whose handshake stalled, marking the
//! run's own, and sweeping those left by runs that were killed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{options_key, SshOptions};

/// Whether a master listens on this control socket (a connect is enough:
/// the socket file outlives a master that was killed).
pub(super) fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Removes the folders of masters that ended (no socket answers, and older
/// than any handshake: another run may be connecting) and links to nowhere.
pub(super) fn sweep(dir: &Path) {
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

/// Ends the `ssh -M` this process started for `opts` whose handshake ran out
/// of time (the openssh crate does not kill it when its future is dropped):
/// on Linux, a child `ssh` of this process with a master socket in
/// `control_dir` and this destination. Elsewhere it ends on its own, when
/// its keep-alives give up.
pub(super) fn end_stuck_handshake(control_dir: &Path, opts: &SshOptions) {
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
pub(super) fn mark_master(session: &openssh::Session) {
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
    pub(super) fn open(idle: Duration) -> Result<Persist, String> {
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
