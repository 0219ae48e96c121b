//! The review in text, Markdown and JSON: names and words, never a value.

use super::*;

// ---- output ------------------------------------------------------------------------

/// A name printed in text output: quoted when it holds anything that could
/// move the cursor or fake a line.
pub(super) fn name_text(s: &str) -> String {
    neutral::quoted(s)
}

pub(super) fn change_text(t: &NotContacted) -> &'static str {
    match t.change {
        TargetChange::New => "new in this change: not contacted in review, will be on merge",
        TargetChange::Changed => {
            "definition changed in this change: not contacted in review, will be on merge"
        }
        TargetChange::FilesChanged => {
            "reads files this change wrote: not contacted in review, will be on merge"
        }
        TargetChange::Removed => "removed in this change: not contacted",
    }
}

pub(super) fn value_text(v: &ValueChange) -> String {
    match v {
        ValueChange::Changed => "value changed".into(),
        ValueChange::Unchanged => "value unchanged".into(),
        ValueChange::Added => "added".into(),
        ValueChange::Removed => "removed".into(),
        ValueChange::Unknown(why) => format!("value not compared: {why}"),
    }
}

pub(super) fn targets_note(s: &SecretChange, name: impl Fn(&str) -> String) -> String {
    let mut parts = Vec::new();
    if let Some((from, on)) = &s.copy_of {
        parts.push(if on.is_empty() {
            format!("now holds the same value as {}", name(from))
        } else {
            format!(
                "now holds the same value as {} (on {})",
                name(from),
                on.iter().map(|t| name(t)).collect::<Vec<_>>().join(", ")
            )
        });
    }
    if !s.targets_added.is_empty() && s.value != ValueChange::Added {
        parts.push(format!(
            "now also on {}",
            s.targets_added
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !s.targets_removed.is_empty() && s.value != ValueChange::Removed {
        parts.push(format!(
            "no longer on {}",
            s.targets_removed
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if s.value == ValueChange::Added && !s.targets_added.is_empty() {
        parts.push(format!(
            "on {}",
            s.targets_added
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

pub(super) fn secrets_summary(r: &Review) -> String {
    format!(
        "Secrets against the base: {} changed, {} added, {} removed, {} unchanged{}.",
        r.count(|v| *v == ValueChange::Changed),
        r.count(|v| *v == ValueChange::Added),
        r.count(|v| *v == ValueChange::Removed),
        r.count(|v| *v == ValueChange::Unchanged),
        match r.count(|v| matches!(v, ValueChange::Unknown(_))) {
            0 => String::new(),
            n => format!(", {n} not compared"),
        }
    )
}

impl Review {
    /// What the base was: `revision main (commit 1a2b…)` or `file PATH`.
    fn base_said(&self, code: impl Fn(&str) -> String) -> String {
        match &self.base_commit {
            Some(c) => format!("revision {} (commit {})", code(&self.base), code(c)),
            None => format!("file {}", code(&self.base)),
        }
    }

    fn chosen_note(&self) -> Option<String> {
        (!self.chosen.is_empty()).then(|| {
            format!(
                "no fingerprint is shown of the {} value{} this change sets (under the base's key it would test the author's guesses)",
                self.chosen.len(),
                if self.chosen.len() == 1 { "" } else { "s" }
            )
        })
    }

    /// The review as text, printed after the plan.
    pub fn text(&self, st: &Style) -> String {
        let mut out = format!(
            "\nReview against {} (target definitions and fingerprint_key from the base; secrets and their targets from this change)\n",
            self.base_said(name_text)
        );
        if let Some(n) = self.chosen_note() {
            out.push_str(&format!("  note: {n}\n"));
        }
        if let Some(why) = &self.fingerprints_hidden {
            out.push_str(&format!("  note: {why}\n"));
        }
        for r in &self.recipients_added {
            out.push_str(&format!(
                "  note: this change adds the recipient {}: it can decrypt every value encrypted to it\n",
                name_text(r)
            ));
        }
        for r in &self.recipients_removed {
            out.push_str(&format!(
                "  note: this change removes the recipient {}: it can still decrypt the values in the history; rotate them\n",
                name_text(r)
            ));
        }
        if !self.not_contacted.is_empty() {
            out.push('\n');
        }
        for t in &self.not_contacted {
            out.push_str(&format!(
                "{} ({}): {}\n",
                name_text(&t.name),
                t.kind,
                change_text(t)
            ));
            if !t.secrets.is_empty() {
                out.push_str(&format!(
                    "    secrets: {}\n",
                    t.secrets
                        .iter()
                        .map(|s| name_text(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for f in &t.files {
                out.push_str(&format!("    reads {f}\n"));
            }
            for line in t.diff.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out.push('\n');
        for s in &self.secrets {
            let mark = match &s.value {
                ValueChange::Changed => "~",
                ValueChange::Added => "+",
                ValueChange::Removed => "-",
                ValueChange::Unknown(_) => "?",
                ValueChange::Unchanged => "=",
            };
            let note = targets_note(s, name_text);
            if s.value == ValueChange::Unchanged && note.is_empty() && !st.verbose {
                continue;
            }
            out.push_str(&format!(
                "    {mark} {:<28} {}{note}\n",
                name_text(&s.name),
                value_text(&s.value)
            ));
        }
        out.push_str(&format!("{}\n", secrets_summary(self)));
        if !self.not_contacted.is_empty() {
            out.push_str(&format!(
                "{} not contacted (new, changed or removed in this change).\n",
                match self.not_contacted.len() {
                    1 => "1 target".to_string(),
                    n => format!("{n} targets"),
                }
            ));
        }
        out
    }

    /// Under GitHub Actions: a warning per target not contacted, and per
    /// recipient added (titles and messages escaped by [`crate::ci`]).
    pub fn annotations(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .not_contacted
            .iter()
            .filter(|t| t.change != TargetChange::Removed)
            .map(|t| {
                crate::ci::annotation(
                    "warning",
                    &format!("secretsync review: {}", t.name),
                    &format!("{} ({}): {}", t.name, t.kind, change_text(t)),
                )
            })
            .collect();
        for r in &self.recipients_added {
            out.push(crate::ci::annotation(
                "warning",
                "secretsync review: recipients",
                &format!("this change adds the recipient {r}: it can decrypt every value encrypted to it"),
            ));
        }
        out
    }

    /// The review as the `review` member of the plan's JSON document.
    pub fn json(&self) -> Value {
        json!({
            "base": self.base,
            "base_kind": self.base_kind,
            "base_commit": self.base_commit,
            "fingerprints_hidden_for": self.chosen,
            "fingerprints_hidden": self.fingerprints_hidden.is_some(),
            "fingerprints_hidden_reason": self.fingerprints_hidden,
            "recipients_added": self.recipients_added,
            "recipients_removed": self.recipients_removed,
            "targets_not_contacted": self.not_contacted.iter().map(|t| json!({
                "name": t.name,
                "type": t.kind,
                "change": t.change,
                "secrets": t.secrets,
                "files_changed": t.files,
                "definition_diff": t.diff,
            })).collect::<Vec<_>>(),
            "secrets": self.secrets.iter().map(|s| {
                let (value, reason) = match &s.value {
                    ValueChange::Unknown(why) => ("unknown", Some(why.clone())),
                    ValueChange::Changed => ("changed", None),
                    ValueChange::Unchanged => ("unchanged", None),
                    ValueChange::Added => ("added", None),
                    ValueChange::Removed => ("removed", None),
                };
                let mut v = json!({
                    "name": s.name,
                    "value": value,
                    "targets_added": s.targets_added,
                    "targets_removed": s.targets_removed,
                });
                if let Some((from, on)) = &s.copy_of {
                    v["same_value_as"] = json!({ "secret": from, "targets": on });
                }
                if let Some(r) = reason {
                    v["reason"] = json!(r);
                }
                v
            }).collect::<Vec<_>>(),
            "summary": {
                "changed": self.count(|v| *v == ValueChange::Changed),
                "added": self.count(|v| *v == ValueChange::Added),
                "removed": self.count(|v| *v == ValueChange::Removed),
                "unchanged": self.count(|v| *v == ValueChange::Unchanged),
                "unknown": self.count(|v| matches!(v, ValueChange::Unknown(_))),
                "targets_not_contacted": self.not_contacted.len(),
            },
        })
    }

    /// The review as markdown, appended to the plan's.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "\n### secretsync review against {} ({})\n\n",
            md_code(&self.base),
            match &self.base_commit {
                Some(c) => format!("revision, commit {}", md_code(c)),
                None => "a file".to_string(),
            }
        );
        out.push_str("Target definitions and `fingerprint_key` come from the base; secrets and their targets from this change.\n\n");
        if let Some(n) = self.chosen_note() {
            out.push_str(&format!("> {n}.\n\n"));
        }
        if let Some(why) = &self.fingerprints_hidden {
            // Our own words: no manifest text in them.
            out.push_str(&format!("> ⚠️ {why}\n\n"));
        }
        for r in &self.recipients_added {
            out.push_str(&format!(
                "> ⚠️ This change adds the recipient {}: it can decrypt every value encrypted to it.\n\n",
                md_code(r)
            ));
        }
        for r in &self.recipients_removed {
            out.push_str(&format!(
                "> This change removes the recipient {}: it can still decrypt the values in the history; rotate them.\n\n",
                md_code(r)
            ));
        }
        if !self.not_contacted.is_empty() {
            out.push_str("| target | type | in this change | secrets |\n|---|---|---|---|\n");
            for t in &self.not_contacted {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    md_code(&t.name),
                    t.kind,
                    change_text(t),
                    t.secrets
                        .iter()
                        .map(|s| md_code(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for t in &self.not_contacted {
                for f in &t.files {
                    out.push_str(&format!("\n{} reads {}\n", md_code(&t.name), md_cell(f)));
                }
                if !t.diff.is_empty() {
                    out.push_str(&format!(
                        "\nDefinition of {}:\n\n{}",
                        md_code(&t.name),
                        md_fence("diff", &t.diff)
                    ));
                }
            }
            out.push('\n');
        }
        out.push_str(&format!("{}\n\n", secrets_summary(self)));
        let shown: Vec<&SecretChange> = self
            .secrets
            .iter()
            .filter(|s| {
                s.value != ValueChange::Unchanged
                    || !s.targets_added.is_empty()
                    || !s.targets_removed.is_empty()
            })
            .collect();
        if !shown.is_empty() {
            out.push_str("| secret | in this change |\n|---|---|\n");
            for s in shown {
                let value = match &s.value {
                    ValueChange::Unknown(why) => format!("value not compared: {}", md_cell(why)),
                    v => value_text(v),
                };
                out.push_str(&format!(
                    "| {} | {value}{} |\n",
                    md_code(&s.name),
                    targets_note(s, md_code)
                ));
            }
        }
        out
    }
}
