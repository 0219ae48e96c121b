//! The shell scripts secretsync runs where a target lives, kept as `.sh`
//! files beside this module so that shellcheck reads them (`.ci/run` does)
//! and tests run them under dash, `bash --posix` and busybox sh, and with BSD
//! behaviour for the tools that differ (`tests/integration/scripts.rs`).
//!
//! Every script is run as `sh -c SCRIPT sh ARGS…`: its arguments are names and
//! paths only, values travel on stdin. They use POSIX commands and options,
//! plus `readlink` without options, `mktemp TEMPLATE`, `base64` and
//! `sha256sum`/`shasum -a 256`, which Linux, macOS and busybox all have.
//! Where a script runs another as the user or through `sudo -n`, the inner
//! one is prepended to the outer as a shell variable ([`with_inner`]).

/// Reads env files: the outer loop over (sudo, path) pairs; `$R` is
/// [`ENV_READ_ONE`].
pub const ENV_READ: &str = include_str!("scripts/env_read.sh");
/// Reads one env file: its state, and its bytes in base64.
pub const ENV_READ_ONE: &str = include_str!("scripts/env_read_one.sh");
/// Runs `$S` as the user or through `sudo -n`.
pub const AS_USER: &str = include_str!("scripts/as_user.sh");
/// Replaces one env file atomically (run through [`AS_USER`]).
pub const ENV_WRITE: &str = include_str!("scripts/env_write.sh");
/// `doctor`: can a temp file be made next to an env file (through [`AS_USER`]).
pub const ENV_CHECK_DIR: &str = include_str!("scripts/env_check_dir.sh");
/// Reads keychain items, up to a group's width of lookups at once.
pub const KEYCHAIN_READ: &str = include_str!("scripts/keychain_read.sh");
/// `doctor`: a keychain's settings.
pub const KEYCHAIN_CHECK: &str = include_str!("scripts/keychain_check.sh");
/// Runs `security -i` with the commands on stdin.
pub const KEYCHAIN_WRITE: &str = include_str!("scripts/keychain_write.sh");

/// `NAME='INNER'` (quoted for sh) followed by `outer`, without their
/// comment lines: the command is visible in `ps` on the host, and shorter.
pub fn with_inner(name: &str, inner: &str, outer: &str) -> String {
    format!(
        "{name}={}\n{}",
        crate::remote::shell_quote(&code_only(inner)),
        code_only(outer)
    )
}

/// `script` without its whole-line comments.
fn code_only(script: &str) -> String {
    script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The whole read command of the `ssh_env` target.
pub fn env_read() -> String {
    with_inner("R", ENV_READ_ONE, ENV_READ)
}

/// The whole write command of the `ssh_env` target. Arguments: sudo (0/1),
/// path, create (0/1), on_change; stdin as [`ENV_WRITE`] says.
pub fn env_write() -> String {
    with_inner("S", ENV_WRITE, AS_USER)
}

/// The whole `doctor` command for an env file's folder. Arguments: sudo,
/// path. Exit 91: no sudo; 92: sudo needs a password; else stdout says.
pub fn env_check_dir() -> String {
    with_inner("S", ENV_CHECK_DIR, AS_USER)
}
