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
//!
//! This is a service below the targets: it knows hosts, scripts and their
//! output, and reports its own [`RemoteError`] (the seam turns it into a
//! `TargetError`); reading a target's SSH fields into [`SshOptions`] is the
//! seam's (`targets/ssh.rs`). One file per job: `runner.rs` (where a script
//! runs, and running it here), `host.rs` (one SSH host and its master),
//! `pool.rs` (the run's hosts, masters kept between runs), `masters.rs` (the
//! `ssh -M` processes and their folders), `classify.rs` (what ssh's
//! complaints mean), `error.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod classify;
mod error;
mod host;
mod masters;
mod pool;
mod runner;

pub use error::{RemoteError, RemoteKind};
pub use host::{Host, LOST_DURING};
pub use masters::{killed_masters, sweep_killed_masters};
pub use pool::SshPool;
pub use runner::{shell_quote, Output, Runner};

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

impl SshOptions {
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

/// What makes two targets' connections the same one: every option.
pub(crate) fn options_key(opts: &SshOptions) -> String {
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
