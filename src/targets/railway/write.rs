//! The write path's judgement: after a write whose answer was lost or
//! refused half-way, what Railway holds says whether the changes were
//! applied, not applied, or partly applied. A mutation is never re-sent.

use super::graphql::Vars;
use crate::notice::notice;
use crate::targets::{Change, Op, TargetError};

/// Which changes Railway holds now (by key, in order), and which not.
pub(super) fn sort_out(changes: &[Change], now: &Vars) -> (Vec<String>, Vec<String>) {
    let mut applied = Vec::new();
    let mut missing = Vec::new();
    for c in changes {
        let done = match &c.op {
            Op::Add(v) | Op::Update(v) => now.get(&c.key) == Some(&Some(v.clone())),
            Op::Delete => !now.contains_key(&c.key),
        };
        if done {
            applied.push(c.key.clone());
        } else {
            missing.push(c.key.clone());
        }
    }
    (applied, missing)
}

/// The result of a write that failed with `cause` and may have been carried
/// out, judged from `now` (Railway's variables re-read after it).
pub(super) fn judge(
    what: &str,
    changes: &[Change],
    now: Result<Vars, TargetError>,
    cause: TargetError,
) -> Result<(), TargetError> {
    let hint = cause
        .hint
        .clone()
        .unwrap_or_else(|| "run plan to see the variables as they are now".into());
    let now = match now {
        Ok(now) => now,
        Err(e) => {
            return Err(TargetError::new(
                cause.kind,
                format!(
                    "the write to {what} failed ({}), and re-reading to see what was applied failed too ({}): some changes may have been made",
                    cause.message, e.message
                ),
            )
            .with_hint("run plan to see the variables as they are now"))
        }
    };
    let (applied, missing) = sort_out(changes, &now);
    if missing.is_empty() {
        // Railway holds every change: the write happened, its answer was lost.
        notice(&format!(
            "railway: {what}: {} but Railway holds every change: applied (not sent again)",
            cause.message
        ));
        return Ok(());
    }
    if applied.is_empty() {
        return Err(TargetError::new(
            cause.kind,
            format!(
                "{}; not applied: nothing was changed on {what}",
                cause.message
            ),
        )
        .with_hint(hint));
    }
    Err(TargetError::failed(format!(
        "{}; partly applied on {what}: applied: {}; not applied: {}",
        cause.message,
        applied.join(", "),
        missing.join(", ")
    ))
    .with_hint(format!("{hint}; then run apply again to finish")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn change(key: &str, op: Op) -> Change {
        Change {
            key: key.into(),
            op,
        }
    }

    #[test]
    fn applied_not_applied_and_partly() {
        let changes = [
            change("A", Op::Add(Secret::new("1".into()))),
            change("D", Op::Delete),
        ];
        let now = |pairs: &[(&str, &str)]| -> Result<Vars, TargetError> {
            Ok(pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Secret::new(v.to_string()))))
                .collect())
        };
        let cause = || TargetError::unreachable("no answer within 90s");
        assert!(judge("svc", &changes, now(&[("A", "1")]), cause()).is_ok());
        let e = judge("svc", &changes, now(&[("D", "x")]), cause()).unwrap_err();
        assert_eq!(
            e.message,
            "no answer within 90s; not applied: nothing was changed on svc"
        );
        let e = judge("svc", &changes, now(&[("A", "1"), ("D", "x")]), cause()).unwrap_err();
        assert_eq!(
            e.message,
            "no answer within 90s; partly applied on svc: applied: A; not applied: D"
        );
        let e = judge("svc", &changes, Err(TargetError::auth("gone")), cause()).unwrap_err();
        assert!(e.message.contains("some changes may have been made"), "{e}");
    }
}
