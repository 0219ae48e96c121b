//! What `security` says when it fails (exit codes, `NAME: returned STATUS`
//! lines) turned into errors that say what to do.

use super::program::{SECURITY, SECURITY_ENV};
use super::KeychainTarget;
use crate::remote::Output;
use crate::targets::TargetError;

/// Exit codes of `security`: the OSStatus modulo 256.
pub(super) const EXIT_NOT_FOUND: i32 = 44; // errSecItemNotFound, -25300
pub(super) const EXIT_DUPLICATE: i32 = 45; // errSecDuplicateItem, -25299
pub(super) const EXIT_INTERACTION: i32 = 36; // errSecInteractionNotAllowed, -25308
pub(super) const EXIT_NO_KEYCHAIN: i32 = 50; // errSecNoSuchKeychain, -25294

impl KeychainTarget {
    /// Turns one item's failure into an error that says what to do.
    pub(super) fn lookup_error(&self, account: &str, code: Option<i32>, said: &str) -> TargetError {
        let whose = self.whose();
        match code {
            Some(EXIT_INTERACTION) => self.locked(&whose),
            Some(126 | 127) => self.no_security(&whose, said),
            Some(EXIT_NO_KEYCHAIN) => TargetError::failed(format!(
                "{whose}: the keychain {} does not exist ({said})",
                self.keychain.as_deref().unwrap_or("(default)")
            ))
            .with_hint(
                "check `keychain:` on the target; `security list-keychains` on the Mac lists them",
            ),
            _ if account.is_empty() => TargetError::failed(format!(
                "{whose}: `security` failed with exit code {}: {said}",
                code_text(code)
            )),
            _ => TargetError::failed(format!(
                "{whose}: reading the item of account `{account}` failed with exit code {}: {said}",
                code_text(code)
            ))
            .with_hint("run the same `security find-generic-password` on the Mac to see why"),
        }
    }

    pub(super) fn locked(&self, whose: &str) -> TargetError {
        let kc = self
            .keychain
            .as_deref()
            .unwrap_or("~/Library/Keychains/login.keychain-db");
        let how = match &self.host_label {
            Some(host) => {
                format!("in an SSH session on {host}, run `security unlock-keychain {kc}`")
            }
            None => format!("run `security unlock-keychain {kc}` (or log in on the Mac)"),
        };
        TargetError::auth(format!(
            "{whose}: the keychain is locked (\"User interaction is not allowed.\"): \
             `security` cannot ask for its password here"
        ))
        .with_hint(format!("{how}, then run secretsync again"))
    }

    pub(super) fn no_security(&self, whose: &str, said: &str) -> TargetError {
        TargetError::failed(format!(
            "{whose}: `{}` cannot be run ({said}): the host is not a Mac or the `security` path is wrong",
            self.security
        ))
        .with_hint(format!("keychain targets need macOS, where `security` is {SECURITY}; {SECURITY_ENV} names another path"))
    }

    /// Why `security -i` reported failures, as one error.
    pub(super) fn write_error(&self, out: &Output, total: usize) -> TargetError {
        let text = String::from_utf8_lossy(&out.stderr);
        let returned: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| is_returned_line(l))
            .collect();
        let statuses: Vec<i64> = returned
            .iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        let whose = self.whose();
        if out.code == Some(EXIT_INTERACTION)
            || statuses.contains(&-25308)
            || text.contains("User interaction is not allowed")
        {
            return self.locked(&whose);
        }
        if matches!(out.code, Some(126 | 127)) {
            return self.no_security(&whose, &out.stderr_line());
        }
        let failed = returned.len().max(1);
        let detail = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !is_returned_line(l))
            .unwrap_or("")
            .to_string();
        let kind_hint = if statuses.contains(&-25299) || out.code == Some(EXIT_DUPLICATE) {
            " (a duplicate item)"
        } else {
            ""
        };
        TargetError::failed(format!(
            "{whose}: `security -i` failed {failed} of {total} commands{kind_hint}, exit code {}: {detail}",
            code_text(out.code)
        ))
        .with_hint("some items may have been written: run `secretsync plan` to see the keychain's state")
    }
}

/// `NAME: returned STATUS`, what `security -i` prints after a failed command.
pub(super) fn is_returned_line(line: &str) -> bool {
    match line.split_once(": returned ") {
        Some((name, status)) => {
            !name.contains(' ') && status.trim_start_matches('-').parse::<u64>().is_ok()
        }
        None => false,
    }
}

pub(super) fn code_text(code: Option<i32>) -> String {
    code.map_or_else(|| "none (killed by a signal)".into(), |c| c.to_string())
}
