//! The lifecycle's findings and standings in every format: text under a
//! plan, a markdown section, GitHub annotations, `--notify` lines, JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{findings, Finding, Kind, Level, Policy, Status};
use crate::time::{date, rfc3339, span, DAY};

/// "1 expired, 2 expiring within 14 days" (empty when nothing is found).
pub(super) fn counts(findings: &[Finding], p: &Policy) -> String {
    let n = |k| findings.iter().filter(|f| f.kind == k).count();
    let mut parts = Vec::new();
    if n(Kind::Expired) > 0 {
        parts.push(format!("{} expired", n(Kind::Expired)));
    }
    if n(Kind::Expiring) > 0 {
        parts.push(format!(
            "{} expiring within {}",
            n(Kind::Expiring),
            span(p.warn_within.max(DAY))
        ));
    }
    if n(Kind::NotYetValid) > 0 {
        parts.push(format!("{} not valid yet", n(Kind::NotYetValid)));
    }
    if n(Kind::RotationDue) > 0 {
        parts.push(format!("{} due for rotation", n(Kind::RotationDue)));
    }
    parts.join(", ")
}

/// The findings as text under a plan; empty when there are none.
pub fn text(findings: &[Finding], p: &Policy, color: bool) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let paint = |code: &str, t: &str| {
        if color {
            format!("\x1b[{code}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let mut out = String::from("Secrets:\n");
    for f in findings {
        let mark = match f.level {
            Level::Error => paint("31", "!"),
            Level::Warning => paint("33", "~"),
        };
        let _ = writeln!(out, "    {mark} {:<28} {}", f.secret, f.what);
        let _ = writeln!(out, "      {} {}", paint("36", "fix:"), f.hint);
    }
    let _ = writeln!(out, "Lifecycle: {}.", counts(findings, p));
    out
}

/// The findings as a markdown section; empty when there are none.
pub fn markdown(findings: &[Finding], p: &Policy) -> String {
    use crate::render::{md_code, md_escape};
    if findings.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n#### Secret lifecycle\n\n{}.\n\n| secret | |\n|---|---|\n",
        counts(findings, p)
    );
    for f in findings {
        let mark = match f.level {
            Level::Error => "❌",
            Level::Warning => "⚠️",
        };
        let _ = writeln!(
            out,
            "| {} | {mark} {} |",
            md_code(&f.secret),
            md_escape(&f.what)
        );
    }
    out
}

/// GitHub Actions annotations: `::error` for what expired, `::warning` else.
pub fn annotations(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            crate::ci::annotation(
                match f.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                },
                &format!("secretsync lifecycle: {}", f.secret),
                &format!("{} {}; fix: {}", f.secret, f.what, f.hint),
            )
        })
        .collect()
}

/// Lines for the `--notify` message (the secret's name is escaped by the caller).
pub fn notify_lines(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.secret.clone(), f.what.clone()))
        .collect()
}

/// One secret as JSON (plan's `secrets`, `list --format json`).
pub fn status_json(s: &Status, p: &Policy) -> Value {
    let mut v = json!({
        "name": s.secret,
        "targets": s.targets,
        "kind": if s.encrypted { "encrypted" } else { "plain" },
        "set_on": s.set_on,
        "expiry": s.state,
    });
    if let Some(e) = &s.expiry {
        v["expires"] = json!({
            "at": rfc3339(e.at),
            "source": e.source,
            "days_left": (e.at - p.now).div_euclid(DAY),
        });
    }
    if let Some(nb) = s.not_before {
        v["not_before"] = json!(rfc3339(nb));
    }
    if let Some(r) = &s.rotation {
        v["rotation"] = json!({
            "every_days": r.every_days,
            "due_on": r.due_on.map(date),
            "overdue": r.overdue,
        });
    }
    v["issued_elsewhere"] = json!(s.issued);
    v
}

/// The findings as JSON.
pub fn findings_json(findings: &[Finding]) -> Value {
    json!(findings
        .iter()
        .map(|f| json!({
            "level": f.level, "kind": f.kind, "secret": f.secret,
            "message": format!("{} {}", f.secret, f.what), "hint": f.hint,
        }))
        .collect::<Vec<_>>())
}

/// Plan's and list's JSON members: every secret, the findings, the window.
pub fn json(statuses: &[Status], p: &Policy) -> Value {
    json!({
        "warn_within_days": p.warn_within / DAY,
        "secrets": statuses.iter().map(|s| status_json(s, p)).collect::<Vec<_>>(),
        "findings": findings_json(&findings(statuses, p)),
    })
}
