//! What the seam knows of [`crate::remote`]: the SSH fields of a target
//! (`ssh_env`, and a `keychain` with a `host`) read into [`SshOptions`], and
//! a [`RemoteError`] turned into a [`TargetError`] of the same kind, message
//! and hint.

use super::fields::{parse_duration, Fields};
use super::{ErrorKind, ManifestError, TargetError};
use crate::remote::{KnownHosts, RemoteError, RemoteKind, SshOptions};

impl From<RemoteError> for TargetError {
    fn from(e: RemoteError) -> Self {
        TargetError {
            kind: match e.kind {
                RemoteKind::Unreachable => ErrorKind::Unreachable,
                RemoteKind::Auth => ErrorKind::Auth,
                RemoteKind::Failed => ErrorKind::Failed,
            },
            message: e.message,
            hint: e.hint,
            conflict: None,
        }
    }
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

/// Reads a target's SSH fields; `host` is given by the caller (required
/// by ssh_env, optional for a keychain).
pub fn ssh_options(f: &Fields<'_>, host: String) -> Result<SshOptions, ManifestError> {
    if host.chars().any(char::is_whitespace) {
        return Err(f.error(
            "host",
            format!("`host` of target `{}` contains white space", f.target()),
            Some("write `user@host` or an alias from ~/.ssh/config".into()),
        ));
    }
    let connect_timeout = f.parse("connect_timeout", |t| {
        parse_duration(t).map_err(|why| {
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
