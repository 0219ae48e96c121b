//! Plans and apply reports as text, JSON and markdown. Never a value: the
//! inputs here hold only keys, states, keyed fingerprints and redacted diffs.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::apply::{LiveAfter, Outcome, Report};
use crate::plan::{Item, Plan, Provenance, State, Summary, TargetPlan};
use crate::targets::TargetError;

/// The version of the JSON documents (`format_version`); bumped on any
/// change that is not a pure addition. 2: the plan's `lifecycle` (#18).
pub const JSON_FORMAT_VERSION: u32 = 2;

/// ANSI colour, on or off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Also list keys that are in sync.
    pub verbose: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn cyan(&self, t: &str) -> String {
        self.paint("36", t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "2 to add, 1 to change", or "in sync".
pub(crate) fn counts(items: &[Item]) -> String {
    let (mut add, mut change, mut delete, mut sealed, mut not_live) = (0, 0, 0, 0, 0);
    for i in items {
        match i.state {
            State::NotLive { .. } => not_live += 1,
            State::Missing => add += 1,
            State::Differs { .. } | State::Sealed { overwrite: true } => change += 1,
            State::Unmanaged { delete: true } => delete += 1,
            State::Sealed { overwrite: false } => sealed += 1,
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if add > 0 {
        parts.push(format!("{add} to add"));
    }
    if change > 0 {
        parts.push(format!("{change} to change"));
    }
    if delete > 0 {
        parts.push(format!("{delete} to delete"));
    }
    if sealed > 0 {
        parts.push(format!(
            "{} not comparable",
            plural(sealed, "sealed value", "sealed values")
        ));
    }
    if not_live > 0 {
        parts.push(format!(
            "{} written, not live",
            plural(not_live, "value", "values")
        ));
    }
    if parts.is_empty() {
        format!(
            "in sync ({})",
            plural(
                items.iter().filter(|i| i.secret.is_some()).count(),
                "key",
                "keys"
            )
        )
    } else {
        parts.join(", ")
    }
}

fn error_text(e: &TargetError, indent: &str, st: &Style) -> String {
    let mut out = String::new();
    // Target errors quote what a server or host said: inert when printed.
    let message = crate::neutral::lines(&e.message);
    let mut lines = message.lines();
    let _ = writeln!(
        out,
        "{indent}{} {}",
        st.red("error:"),
        lines.next().unwrap_or("")
    );
    for l in lines {
        let _ = writeln!(out, "{indent}  {l}");
    }
    if let Some(h) = &e.hint {
        let _ = writeln!(
            out,
            "{indent}{} {}",
            st.cyan("hint:"),
            crate::neutral::lines(h)
        );
    }
    out
}

/// A differing value that is none of the manifest's, current or previous.
const OUTSIDE: &str =
    "changed outside secretsync (it holds none of the manifest's current or previous values)";

fn fp_pair(i: &Item) -> String {
    match (&i.target_fingerprint, &i.manifest_fingerprint) {
        (Some(t), Some(m)) => format!(" (target {t}, manifest {m})"),
        _ => String::new(),
    }
}

fn key_line(i: &Item, st: &Style) -> Option<String> {
    let (mark, text) = match &i.state {
        State::InSync if st.verbose => (
            st.green("="),
            match (i.live, &i.live_note) {
                (Some(true), Some(n)) => format!("in sync, and live: {n}"),
                (None, Some(n)) => format!("in sync; liveness unknown: {n}"),
                _ => "in sync".to_string(),
            },
        ),
        State::InSync => return None,
        State::NotLive { reason, action } => (
            st.yellow("!"),
            format!("written, not live: {reason}; {action}"),
        ),
        State::Missing => (st.green("+"), "missing: will be added".to_string()),
        State::Differs { replaced_on } => (
            st.yellow("~"),
            format!(
                "differs{}: will be changed{}",
                fp_pair(i),
                match (replaced_on, i.provenance) {
                    (Some(d), _) => format!("; the target holds the value replaced on {d}"),
                    (None, Some(Provenance::Outside)) =>
                        format!("; the target's value was {OUTSIDE}"),
                    _ => String::new(),
                }
            ),
        ),
        State::Sealed { overwrite: true } => (
            st.yellow("~"),
            "sealed: cannot be compared; will be overwritten (overwrite_sealed)".into(),
        ),
        State::Sealed { overwrite: false } => (
            st.yellow("!"),
            "sealed: cannot be compared, left alone (overwrite_sealed: true replaces it)".into(),
        ),
        State::Unmanaged { delete: true } => {
            (st.red("-"), "unmanaged: will be deleted (prune)".into())
        }
        State::Unmanaged { delete: false } => (st.cyan("?"), "unmanaged: left alone".into()),
    };
    let text = format!("{text}{}", removed_note(i));
    Some(format!("    {mark} {:<28} {text}", i.key))
}

fn colour_diff(diff: &str, st: &Style) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let painted = if line.starts_with("+++") || line.starts_with("---") {
            st.bold(line)
        } else if line.starts_with('+') {
            st.green(line)
        } else if line.starts_with('-') {
            st.red(line)
        } else if line.starts_with("@@") {
            st.cyan(line)
        } else {
            line.to_string()
        };
        let _ = writeln!(out, "    {painted}");
    }
    out
}

fn target_text(t: &TargetPlan, st: &Style) -> String {
    let mut out = String::new();
    let head = format!("{} ({})", st.bold(&t.target), t.description);
    match &t.outcome {
        Err(e) => {
            let _ = writeln!(out, "{head}: {}", st.red("cannot be read"));
            out.push_str(&error_text(e, "    ", st));
        }
        Ok(d) => {
            let _ = writeln!(out, "{head}: {}", counts(&d.items));
            match &d.file_diff {
                Some(diff) => {
                    out.push_str(&colour_diff(diff, st));
                    for i in &d.items {
                        let note = match &i.state {
                            State::Differs {
                                replaced_on: Some(day),
                            } => {
                                format!("{} holds the value replaced on {day}", i.key)
                            }
                            State::Differs { replaced_on: None }
                                if i.provenance == Some(Provenance::Outside) =>
                            {
                                format!("{} was {OUTSIDE}", i.key)
                            }
                            State::Unmanaged { delete: false } => {
                                format!("{} is unmanaged: left alone{}", i.key, removed_note(i))
                            }
                            State::Unmanaged { delete: true } if i.removed.is_some() => {
                                format!("{} will be deleted{}", i.key, removed_note(i))
                            }
                            State::NotLive { reason, action } => {
                                format!("{} is written, not live: {reason}; {action}", i.key)
                            }
                            _ => continue,
                        };
                        let _ = writeln!(out, "    {} {note}", st.cyan("note:"));
                    }
                }
                None => {
                    for i in &d.items {
                        if let Some(l) = key_line(i, st) {
                            let _ = writeln!(out, "{l}");
                        }
                    }
                }
            }
            // What the target noticed while reading (an env file's keys left
            // alone, keys defined twice); never values.
            for note in &d.observed.notes {
                let _ = writeln!(out, "    {} {note}", st.cyan("note:"));
            }
            if d.unmanaged_hidden > 0 {
                let _ = writeln!(
                    out,
                    "    {} {}",
                    st.cyan("note:"),
                    hidden_unmanaged(d.unmanaged_hidden)
                );
            }
        }
    }
    out
}

/// "1,204 more unmanaged keys left alone (-v lists them)".
pub fn hidden_unmanaged(n: usize) -> String {
    format!(
        "{} more unmanaged {} left alone (-v lists them)",
        thousands(n),
        if n == 1 { "key" } else { "keys" }
    )
}

/// `1204` → `1,204`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn summary_line(s: &Summary) -> String {
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to delete. {}",
        s.add,
        s.change,
        s.delete,
        plural(s.targets_in_sync, "target in sync", "targets in sync")
    );
    if s.targets_with_changes > 0 {
        let _ = write!(line, ", {} with changes", s.targets_with_changes);
    }
    if s.targets_failed > 0 {
        let _ = write!(line, ", {} unreachable", s.targets_failed);
    }
    if s.targets_not_live > 0 {
        let _ = write!(line, ", {} not live", s.targets_not_live);
    }
    if s.sealed > 0 {
        let _ = write!(
            line,
            "; {} not comparable",
            plural(s.sealed, "sealed value", "sealed values")
        );
    }
    if s.not_live > 0 {
        let _ = write!(
            line,
            "; {} written, not live",
            plural(s.not_live, "value", "values")
        );
    }
    line.push('.');
    line
}

/// The plan as text for a terminal or a log.
pub fn plan_text(plan: &Plan, st: &Style) -> String {
    let mut out = String::new();
    for t in &plan.targets {
        out.push_str(&target_text(t, st));
        out.push('\n');
    }
    out.push_str(&st.bold(&summary_line(&plan.summary())));
    out.push('\n');
    out
}

fn error_json(e: &TargetError) -> Value {
    json!({ "kind": e.kind, "message": e.message, "hint": e.hint })
}

fn target_json(t: &TargetPlan) -> Value {
    match &t.outcome {
        Err(e) => json!({
            "name": t.target, "description": t.description, "status": "error", "error": error_json(e),
        }),
        Ok(d) => {
            let mut v = json!({
                "name": t.target,
                "description": t.description,
                "status": if !d.changes.is_empty() {
                    "changes"
                } else if d.items.iter().any(|i| matches!(i.state, State::NotLive { .. })) {
                    "not_live"
                } else {
                    "in_sync"
                },
                "items": d.items,
                "file_diff": d.file_diff,
            });
            if !d.observed.notes.is_empty() {
                v["notes"] = json!(d.observed.notes);
            }
            if d.unmanaged_hidden > 0 {
                v["unmanaged_hidden"] = json!(d.unmanaged_hidden);
            }
            v
        }
    }
}

/// The plan as a JSON document (see docs/json-output.md).
pub fn plan_json(plan: &Plan, manifest: &str) -> Value {
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "kind": "plan",
        "manifest": manifest,
        "targets": plan.targets.iter().map(target_json).collect::<Vec<_>>(),
        "summary": plan.summary(),
        "in_sync": !plan.has_drift() && !plan.has_errors(),
    })
}

/// Text for a markdown table cell or paragraph: every character that could
/// start markup (links, images, HTML, code, emphasis) or end the cell is
/// escaped, and line breaks become spaces, so a manifest (target names,
/// paths, key names) or a remote error message cannot forge the comment a
/// pull request shows.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A name as inline code: `` `name` `` when it is plain, else an HTML
/// `<code>` whose every punctuation character is an entity (a backtick or a
/// pipe cannot end it, nor the table cell around it).
pub fn md_code(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || " _.,:/@+=-()".contains(c));
    if plain {
        return format!("`{s}`");
    }
    format!("<code>{}</code>", html_escape(s))
}

/// Text inside raw HTML (`<summary>`): every ASCII punctuation character as an
/// entity, line breaks and control characters as spaces.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push(' ');
        } else if c.is_ascii_punctuation() {
            let _ = write!(out, "&#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A fenced code block around `body`: the fence is longer than any run of
/// backticks in it, so no line of the body can close it early.
pub fn md_fence(info: &str, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body = body.strip_suffix('\n').unwrap_or(body);
    format!("{fence}{info}\n{body}\n{fence}\n")
}

/// `; the value of secret X, removed on D` for a value `unset` left behind.
fn removed_note(i: &Item) -> String {
    i.removed
        .as_ref()
        .map(|r| {
            format!(
                "; holds the value of secret `{}`, removed on {}",
                r.secret, r.on
            )
        })
        .unwrap_or_default()
}

/// The outcome of apply as text.
pub fn report_text(report: &Report, st: &Style) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let head = format!("{} ({})", st.bold(&t.target), t.description);
        match &t.outcome {
            Outcome::InSync => {
                let _ = writeln!(out, "{head}: in sync, nothing to do");
            }
            Outcome::Verified { changes } => {
                let _ = writeln!(
                    out,
                    "{head}: {} ({}, read back and verified)",
                    st.green("applied"),
                    plural(*changes, "change", "changes")
                );
            }
            Outcome::NotRead(e) => {
                let _ = writeln!(
                    out,
                    "{head}: {}",
                    st.red("not applied: it could not be read")
                );
                out.push_str(&error_text(e, "    ", st));
            }
            Outcome::Failed(e) => {
                let _ = writeln!(out, "{head}: {}", st.red("failed"));
                out.push_str(&error_text(e, "    ", st));
            }
            Outcome::NotConverged { keys, error } => {
                let _ = writeln!(
                    out,
                    "{head}: {}",
                    st.red("written, but the read-back does not match")
                );
                if !keys.is_empty() {
                    let _ = writeln!(out, "    still different: {}", keys.join(", "));
                }
                if let Some(e) = error {
                    out.push_str(&error_text(e, "    ", st));
                }
            }
        }
        if let Some(l) = &t.live {
            out.push_str(&live_text(l, &t.outcome, st));
        }
    }
    let t = report.tally();
    let redeploys = report
        .targets
        .iter()
        .filter(|t| t.live.as_ref().is_some_and(|l| l.redeploy_error.is_some()))
        .count();
    let _ = writeln!(
        out,
        "{}",
        st.bold(&format!(
            "Apply: {} applied and verified, {} in sync, {} failed{}.",
            plural(t.applied, "target", "targets"),
            t.in_sync,
            t.failed,
            if redeploys > 0 {
                format!(
                    "; {}",
                    plural(redeploys, "redeploy failed", "redeploys failed")
                )
            } else {
                String::new()
            }
        ))
    );
    out
}

/// Liveness after apply (#28): "written, and live" or "written, not live
/// yet", per key, and what `--redeploy` restarted.
fn live_text(l: &LiveAfter, outcome: &Outcome, st: &Style) -> String {
    let mut out = String::new();
    for r in &l.redeployed {
        let _ = writeln!(out, "    redeployed {r}");
    }
    if let Some(e) = &l.redeploy_error {
        let _ = writeln!(out, "    {}", st.red("the redeploy failed:"));
        out.push_str(&error_text(e, "    ", st));
    }
    let written = matches!(outcome, Outcome::Verified { .. });
    for (key, why) in &l.unknown {
        let _ = writeln!(out, "    liveness unknown: {key}: {why}");
    }
    if l.not_live.is_empty() && l.unknown.is_empty() {
        let _ = writeln!(
            out,
            "    {}",
            st.green(if written { "written, and live" } else { "live" })
        );
    }
    for (key, reason, action) in &l.not_live {
        let _ = writeln!(
            out,
            "    {} {key}: {reason}; {action}",
            st.yellow(if written {
                "written, not live yet:"
            } else {
                "not live:"
            })
        );
    }
    out
}

fn live_json(l: &LiveAfter) -> Value {
    json!({
        "live": if !l.not_live.is_empty() || l.redeploy_error.is_some() {
            json!(false)
        } else if !l.unknown.is_empty() {
            Value::Null
        } else {
            json!(true)
        },
        "live_keys": l.live,
        "unknown": l.unknown.iter().map(|(k, w)| json!({"key": k, "why": w})).collect::<Vec<_>>(),
        "not_live": l.not_live.iter().map(|(k, r, a)| json!({"key": k, "reason": r, "action": a})).collect::<Vec<_>>(),
        "redeployed": l.redeployed,
        "redeploy_error": l.redeploy_error.as_ref().map(error_json),
    })
}

/// The outcome of apply as JSON.
pub fn report_json(report: &Report, manifest: &str) -> Value {
    let targets: Vec<Value> = report
        .targets
        .iter()
        .map(|t| {
            let mut v = json!({ "name": t.target, "description": t.description, "status": t.outcome.status() });
            match &t.outcome {
                Outcome::Verified { changes } => v["changes"] = json!(changes),
                Outcome::NotRead(e) | Outcome::Failed(e) => v["error"] = error_json(e),
                Outcome::NotConverged { keys, error } => {
                    v["still_different"] = json!(keys);
                    if let Some(e) = error {
                        v["error"] = error_json(e);
                    }
                }
                Outcome::InSync => {}
            }
            if let Some(l) = &t.live {
                v["liveness"] = live_json(l);
            }
            v
        })
        .collect();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "kind": "apply",
        "manifest": manifest,
        "targets": targets,
        "summary": report.tally(),
        "converged": report.converged(),
    })
}

/// The outcome of apply as markdown.
pub fn report_markdown(report: &Report) -> String {
    let t = report.tally();
    let mut out = format!(
        "### secretsync apply\n\n{} applied and verified, {} in sync, {} failed.\n\n| target | outcome |\n|---|---|\n",
        t.applied, t.in_sync, t.failed
    );
    for r in &report.targets {
        let detail = match &r.outcome {
            Outcome::NotRead(e) | Outcome::Failed(e) => {
                format!(": {}", md_escape(e.message.lines().next().unwrap_or("")))
            }
            Outcome::NotConverged { keys, .. } => format!(
                ": still different: {}",
                keys.iter()
                    .map(|k| md_code(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        let live = match &r.live {
            Some(l) if l.not_live.is_empty() && l.unknown.is_empty() => "; live".to_string(),
            Some(l) if l.not_live.is_empty() => "; liveness unknown".to_string(),
            Some(l) => format!(
                "; not live yet: {}",
                l.not_live
                    .iter()
                    .map(|(k, _, a)| format!("{} ({})", md_code(k), md_escape(a)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {}{detail}{live} |",
            md_code(&r.target),
            r.outcome.status(),
        );
    }
    out
}

/// How one `doctor` check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoctorStatus {
    /// Passed: what was found.
    Ok(String),
    /// Passed, but needs attention soon (a secret expiring within the
    /// window, due for rotation): what, and what to do about it.
    Warn { detail: String, fix: String },
    /// Failed: the problem, its fix in `hint`. Counts as a problem.
    Fail(TargetError),
}

impl DoctorStatus {
    /// `ok`, `warn` or `fail`: the JSON `status`.
    pub fn name(&self) -> &'static str {
        match self {
            DoctorStatus::Ok(_) => "ok",
            DoctorStatus::Warn { .. } => "warn",
            DoctorStatus::Fail(_) => "fail",
        }
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, DoctorStatus::Fail(_))
    }
}

/// One line of `doctor`'s report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorCheck {
    /// What was checked ("token accepted", "secret API_TOKEN").
    pub what: String,
    pub status: DoctorStatus,
}

/// A target's check (passed or failed) as a line of the report.
impl From<crate::targets::Check> for DoctorCheck {
    fn from(c: crate::targets::Check) -> DoctorCheck {
        DoctorCheck {
            what: c.what,
            status: match c.outcome {
                Ok(detail) => DoctorStatus::Ok(detail),
                Err(e) => DoctorStatus::Fail(e),
            },
        }
    }
}

/// One part of `doctor`'s report: the manifest, the identity, a target.
pub struct Section {
    pub scope: String,
    pub checks: Vec<DoctorCheck>,
}

impl Section {
    /// A section of targets' checks.
    pub fn of(scope: impl Into<String>, checks: Vec<crate::targets::Check>) -> Section {
        Section {
            scope: scope.into(),
            checks: checks.into_iter().map(DoctorCheck::from).collect(),
        }
    }
}

/// The failed checks of a report: its problems.
pub fn doctor_problems(sections: &[Section]) -> usize {
    sections
        .iter()
        .flat_map(|s| &s.checks)
        .filter(|c| c.status.is_fail())
        .count()
}

/// `doctor`'s report as text (or markdown).
pub fn doctor_text(sections: &[Section], problems: usize, markdown: bool, st: &Style) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str("### secretsync doctor\n\n");
    }
    for s in sections {
        let _ = writeln!(
            out,
            "{}{}",
            if markdown { "- **" } else { "" },
            s.scope.clone() + if markdown { "**" } else { "" }
        );
        for c in &s.checks {
            match &c.status {
                // A check that passed with a warning (a secret expiring
                // soon) is marked as one, its fix on a line of its own.
                DoctorStatus::Warn { detail, fix } => {
                    let mark = if markdown {
                        "- ⚠️".to_string()
                    } else if st.color {
                        "\x1b[33mwarn\x1b[0m".into()
                    } else {
                        "warn".into()
                    };
                    let _ = writeln!(out, "  {mark} {}: {detail}", c.what);
                    if !fix.is_empty() {
                        let _ = writeln!(out, "      fix: {fix}");
                    }
                }
                DoctorStatus::Ok(detail) => {
                    let _ = writeln!(
                        out,
                        "  {} {}: {detail}",
                        if markdown { "- ✅" } else { "ok  " },
                        c.what
                    );
                }
                DoctorStatus::Fail(e) => {
                    let mark = if markdown {
                        "- ❌".to_string()
                    } else if st.color {
                        "\x1b[31mFAIL\x1b[0m".into()
                    } else {
                        "FAIL".into()
                    };
                    let _ = writeln!(
                        out,
                        "  {mark} {}: {}",
                        c.what,
                        e.message.replace('\n', "\n      ")
                    );
                    if let Some(h) = &e.hint {
                        let _ = writeln!(out, "      fix: {h}");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\nDoctor: {}",
        if problems == 0 {
            "everything checked is in order.".to_string()
        } else {
            format!("{problems} problem(s) found.")
        }
    );
    out
}

/// `doctor`'s report as JSON. `ok` is false for a failed check only; a
/// warning is a passed check whose `detail` starts with `warning: ` (as
/// before `status` was added), and `status` says `ok`, `warn` or `fail`.
pub fn doctor_json(sections: &[Section], problems: usize) -> Value {
    let checks: Vec<Value> = sections
        .iter()
        .flat_map(|s| {
            s.checks.iter().map(move |c| {
                let status = c.status.name();
                match &c.status {
                    DoctorStatus::Ok(d) => json!({ "scope": s.scope, "check": c.what, "ok": true,
                                                   "status": status, "detail": d }),
                    DoctorStatus::Warn { detail, fix } => json!({ "scope": s.scope, "check": c.what,
                        "ok": true, "status": status, "detail": format!("warning: {detail}; fix: {fix}") }),
                    DoctorStatus::Fail(e) => json!({ "scope": s.scope, "check": c.what, "ok": false,
                        "status": status, "error": { "kind": e.kind, "message": e.message, "hint": e.hint } }),
                }
            })
        })
        .collect();
    json!({ "format_version": JSON_FORMAT_VERSION, "kind": "doctor", "checks": checks, "problems": problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_cannot_be_closed_early() {
        assert_eq!(md_code("api"), "`api`");
        assert_eq!(
            md_code("a`b | ![x](y)"),
            "<code>a&#96;b &#124; &#33;&#91;x&#93;&#40;y&#41;</code>"
        );
        assert_eq!(md_escape("*x* <img> |\n"), "\\*x\\* \\<img\\> \\| ");
        let fence = md_fence("diff", "```\nAll in sync\n");
        assert!(
            fence.starts_with("````diff\n") && fence.ends_with("\n````\n"),
            "{fence}"
        );
        assert_eq!(html_escape("a<b>\nc"), "a&#60;b&#62; c");
    }
}
