//! The report in text, JSON and Markdown: places and words, never a value.

use super::*;

// ---- output ----------------------------------------------------------------------

pub(super) fn place_text(path: &str, f: &Finding) -> String {
    if f.line == 0 {
        path.to_string()
    } else {
        format!("{path}:{}:{}", f.line, f.column)
    }
}

pub(super) fn summary(r: &Report) -> String {
    format!(
        "Check: {}, {} ({}, {} encrypted, {}).",
        plural(r.errors(), "error"),
        plural(r.warnings(), "warning"),
        plural(r.secrets, "secret"),
        r.encrypted,
        plural(r.recipients, "recipient")
    )
}

/// The report as text: one finding per paragraph, `file:line:column` first.
pub fn text(r: &Report, path: &str) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        match &f.detail {
            Some(d) => out.push_str(&format!("{level}: {d}\n")),
            None => {
                out.push_str(&format!(
                    "{}: {level}: {}\n",
                    place_text(path, f),
                    f.message
                ));
                if let Some(h) = &f.hint {
                    out.push_str(&format!("  hint: {h}\n"));
                }
            }
        }
    }
    out.push_str(&summary(r));
    out.push('\n');
    out
}

/// What `check` could not verify: without an identity it reads the headers
/// of encrypted values, not whether they decrypt (a value encrypted to
/// another key passes). On stderr, so the report on stdout is unchanged.
pub fn unverified_note(r: &Report) -> Option<String> {
    (r.encrypted > 0).then(|| {
        format!(
            "note: {} checked by header only: without an identity, check cannot tell whether {} decrypt{} (plan does, and names the targets it cannot plan){}",
            plural(r.encrypted, "encrypted value"),
            if r.encrypted == 1 { "it" } else { "they" },
            if r.encrypted == 1 { "s" } else { "" },
            if r.per_environment > 0 {
                // age's X25519 stanzas do not name their key.
                "; nor whether an environment's value is encrypted to its own age keys rather than as many of another environment's (`secretsync doctor` with an identity tells)"
            } else {
                ""
            }
        )
    })
}

/// The report as JSON (see docs/json-output.md).
pub fn json(r: &Report, path: &str) -> serde_json::Value {
    serde_json::json!({
        "format_version": crate::render::JSON_FORMAT_VERSION,
        "kind": "check",
        "manifest": path,
        "ok": r.errors() == 0,
        "errors": r.errors(),
        "warnings": r.warnings(),
        "secrets": r.secrets,
        "encrypted": r.encrypted,
        "unverified": r.encrypted,
        "recipients": r.recipients,
        "findings": r.findings,
    })
}

/// The report as markdown, for a pull request comment.
pub fn markdown(r: &Report, path: &str) -> String {
    let mut out = format!("### secretsync check\n\n{}\n", summary(r));
    if !r.findings.is_empty() {
        out.push_str("\n| place | level | finding |\n|---|---|---|\n");
        for f in &r.findings {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                crate::render::md_code(&place_text(path, f)),
                match f.level {
                    Level::Error => "❌ error",
                    Level::Warning => "⚠️ warning",
                },
                crate::render::md_escape(&f.message)
            ));
        }
    }
    out
}
