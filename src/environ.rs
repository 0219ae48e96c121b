//! The process's own credentials and hygiene: what no child may inherit.
//!
//! secretsync runs programs: `sh` and `security` on this machine, `ssh`
//! masters that may outlive the run (`--ssh-persist`, or a killed run), and
//! `git` for review mode. Each would inherit the identity and the tokens
//! from the environment, where `/proc/PID/environ` shows them to the user's
//! other processes for as long as the child lives. So [`take`], called once
//! at start-up before any thread exists, moves every credential variable out
//! of the environment into memory of its own; the code that needs one asks
//! [`var`]. Nothing then has to remember to scrub a child's environment: there
//! is nothing left to inherit.
//!
//! [`harden`] also turns off core dumps, which would write every decrypted
//! value to disk on a crash.

use std::collections::HashMap;
use std::sync::OnceLock;

use zeroize::Zeroizing;

/// Exact names of the credential variables.
const NAMES: &[&str] = &[
    "SECRETSYNC_AGE_KEY",
    "SECRETSYNC_AGE_KEY_FILE",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SECRETSYNC_NOTIFY_URL",
];

/// Prefixes of credential variables that target kinds declare
/// (`Kind::credential_prefixes`: `RAILWAY_` for every Railway token), given
/// to [`take`] by the binary from the registry of kinds.
static PREFIXES: OnceLock<Vec<&'static str>> = OnceLock::new();

/// Whether `name` is a credential variable that [`take`] removes.
pub fn is_credential(name: &str) -> bool {
    is_credential_with(name, PREFIXES.get().map_or(&[][..], Vec::as_slice))
}

/// [`is_credential`] with the kinds' `prefixes` given.
pub fn is_credential_with(name: &str, prefixes: &[&str]) -> bool {
    NAMES.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
}

type Taken = HashMap<String, Zeroizing<String>>;

static TAKEN: OnceLock<Taken> = OnceLock::new();

/// Moves every credential variable (secretsync's own, and those starting
/// with one of the kinds' `prefixes`) out of the process environment. Call
/// it once, first thing in `main`, while the process has one thread:
/// changing the environment is only sound before other threads read it.
pub fn take(prefixes: Vec<&'static str>) {
    let _ = PREFIXES.set(prefixes);
    let mut taken = Taken::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !is_credential(name) {
            continue;
        }
        if let Ok(value) = value.into_string() {
            taken.insert(name.to_string(), Zeroizing::new(value));
        }
        std::env::remove_var(name);
    }
    let _ = TAKEN.set(taken);
}

/// A variable's value: a credential from what [`take`] kept (or, in a
/// process that never called it, such as a test, from the environment), any
/// other name from the environment.
pub fn var(name: &str) -> Option<String> {
    match TAKEN.get() {
        Some(taken) if is_credential(name) => taken.get(name).map(|v| v.to_string()),
        _ => std::env::var(name).ok(),
    }
}

/// No core dumps while values are in memory: `RLIMIT_CORE` 0, and on Linux
/// not dumpable (which also keeps other processes of the same user from
/// attaching a debugger or reading `/proc/PID/mem`). Best effort: a system
/// that refuses leaves the process as it was.
pub fn harden() {
    #[cfg(unix)]
    {
        use nix::sys::resource::{setrlimit, Resource};
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    }
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised_by_name_and_prefix() {
        let kinds = ["RAILWAY_"];
        for name in [
            "SECRETSYNC_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "RAILWAY_TOKEN",
            "RAILWAY_API_TOKEN",
            "RAILWAY_STAGING_TOKEN",
            "SECRETSYNC_NOTIFY_URL",
        ] {
            assert!(is_credential_with(name, &kinds), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "SECRETSYNC_MANIFEST",
            "SECRETSYNC_RAILWAY_ENDPOINT",
        ] {
            assert!(!is_credential_with(name, &kinds), "{name}");
        }
    }
}
