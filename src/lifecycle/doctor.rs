//! `doctor`'s checks of the secrets' lifecycle.

use super::{Level, Policy, Report};
use crate::error::Error;
use crate::manifest::{Manifest, SecretDef};
use crate::render::{DoctorCheck, DoctorStatus};
use crate::targets::{ErrorKind, TargetError};
use crate::time::{span, DAY};

/// `doctor`'s checks of the secrets `only` keeps: one failed check per
/// expired secret, a warning per secret that expires
/// within the window (or is not valid yet, or is due for rotation), and one
/// passed check when nothing needs attention. `values` are those of the
/// kept secrets, decrypted once by the caller; none when they cannot be
/// decrypted, and then the manifest alone judges (the identity check says why).
pub fn doctor_checks(
    m: &Manifest,
    values: &indexmap::IndexMap<String, crate::secret::Secret>,
    warn_days: i64,
    only: impl Fn(&SecretDef) -> bool,
) -> Result<Vec<DoctorCheck>, Error> {
    let policy = Policy::new(warn_days)?;
    let report = Report::new(m, values, policy, &only);
    let mut checks: Vec<DoctorCheck> = report
        .findings
        .iter()
        .map(|f| DoctorCheck {
            what: format!("secret {}", f.secret),
            status: match f.level {
                Level::Error => DoctorStatus::Fail(
                    TargetError::new(ErrorKind::Expired, format!("{} {}", f.secret, f.what))
                        .with_hint(f.hint.clone()),
                ),
                Level::Warning => DoctorStatus::Warn {
                    detail: f.what.clone(),
                    fix: f.hint.clone(),
                },
            },
        })
        .collect();
    if checks.is_empty() {
        let known = report
            .statuses
            .iter()
            .filter(|s| s.expiry.is_some())
            .count();
        checks.push(DoctorCheck {
            what: "expiry and rotation".into(),
            status: DoctorStatus::Ok(format!(
                "no secret expired, expiring within {} or due for rotation ({known} of {} with a known expiry)",
                span(report.policy.warn_within.max(DAY)),
                report.statuses.len()
            )),
        });
    }
    Ok(checks)
}
