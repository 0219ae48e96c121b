//! Which `security` program runs: Apple's, or one named by whoever runs
//! secretsync (never by the manifest).

use crate::targets::TargetError;

/// Where `security` is on every Mac.
pub const SECURITY: &str = "/usr/bin/security";
/// Another `security` program (tests, a wrapper), chosen by whoever runs
/// secretsync, never by the manifest: the same path on every host.
pub const SECURITY_ENV: &str = "SECRETSYNC_SECURITY";

/// The `security` program to run: [`SECURITY`], or [`SECURITY_ENV`].
pub(super) fn security_program() -> Result<String, TargetError> {
    match crate::environ::var(SECURITY_ENV).filter(|v| !v.is_empty()) {
        None => Ok(SECURITY.to_string()),
        Some(p) if p.starts_with('/') && !p.chars().any(char::is_control) => Ok(p),
        Some(_) => Err(TargetError::invalid(format!(
            "{SECURITY_ENV} must be an absolute path without control characters"
        ))
        .with_hint(format!("unset it to run {SECURITY}"))),
    }
}
