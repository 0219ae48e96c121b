//! `doctor`'s checks of the secrets' lifecycle.

use super::{decrypt, Level, Policy, Report};
use crate::error::Error;
use crate::manifest::{Manifest, SecretDef};
use crate::time::{span, DAY};

/// `doctor`'s checks of the secrets `only` keeps: one failed check per
/// expired secret, a passed check with a warning per secret that expires
/// within the window (or is not valid yet, or is due for rotation), and one
/// passed check when nothing needs attention. Values that cannot be
/// decrypted are judged by the manifest alone (the identity check says why).
pub fn doctor_checks(
    m: &Manifest,
    identity: Option<&std::path::Path>,
    warn_days: i64,
    only: impl Fn(&SecretDef) -> bool,
) -> Result<Vec<crate::targets::Check>, Error> {
    use crate::targets::{Check, TargetError};
    let policy = Policy::new(warn_days)?;
    let values = decrypt(m, identity, &only).unwrap_or_default();
    let report = Report::new(m, &values, policy, &only);
    drop(values);
    let mut checks: Vec<Check> =
        report
            .findings
            .iter()
            .map(|f| Check {
                what: format!("secret {}", f.secret),
                outcome: match f.level {
                    Level::Error => Err(TargetError::auth(format!("{} {}", f.secret, f.what))
                        .with_hint(f.hint.clone())),
                    Level::Warning => Ok(format!("warning: {}; fix: {}", f.what, f.hint)),
                },
            })
            .collect();
    if checks.is_empty() {
        let known = report
            .statuses
            .iter()
            .filter(|s| s.expiry.is_some())
            .count();
        checks.push(Check {
            what: "expiry and rotation".into(),
            outcome: Ok(format!(
                "no secret expired, expiring within {} or due for rotation ({known} of {} with a known expiry)",
                span(report.policy.warn_within.max(DAY)),
                report.statuses.len()
            )),
        });
    }
    Ok(checks)
}
