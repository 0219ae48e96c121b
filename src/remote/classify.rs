//! What ssh's complaints mean: each turned into an error that says what
//! happened and what to do.

use std::time::Duration;

use super::{RemoteError, SshOptions};

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
pub(super) fn connect_error(label: &str, opts: &SshOptions, e: &openssh::Error) -> RemoteError {
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
        return RemoteError::auth(format!(
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
        return RemoteError::auth(format!("{label} refused the SSH authentication ({detail})"))
            .with_hint(
                "check the user, `identity_file` or the agent, and that the public key is in the \
             user's authorized_keys on the host",
            );
    }
    if said.contains("connection refused") {
        return RemoteError::unreachable(format!("cannot connect to {label}: connection refused"))
            .with_hint("is sshd running on the host, and is the port right?");
    }
    if said.contains("timed out") {
        return RemoteError::unreachable(format!(
            "cannot connect to {label}: no answer within {} (connect_timeout)",
            secs(timeout)
        ))
        .with_hint(
            "check the host name, the network and any firewall, or raise `connect_timeout`",
        );
    }
    if said.contains("could not resolve") || said.contains("name or service not known") {
        return RemoteError::unreachable(format!(
            "cannot connect to {label}: the host name does not resolve"
        ))
        .with_hint("check `host` (an alias must be defined in ~/.ssh/config)");
    }
    if said.contains("could not be executed") || said.contains("no such file") {
        return RemoteError::failed(format!(
            "cannot run the local `ssh` to reach {label}: {detail}"
        ))
        .with_hint("install OpenSSH's client (`ssh` on PATH)");
    }
    RemoteError::unreachable(format!("cannot connect to {label}: {detail}"))
        .with_hint("try `ssh` to the host by hand to see why")
}

/// The default `connect_timeout`.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `2s`, `1.5s`.
pub(super) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
