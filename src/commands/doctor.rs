//! `secretsync doctor`: is everything in place before anything fails?
//! The manifest loads, the identity decrypts every value, and each target's
//! credentials and host answer. Never writes a value.

use std::fmt::Write as _;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{emit, style, Exit};
use crate::cli::{DoctorArgs, Global};
use crate::crypto;
use crate::error::Error;
use crate::manifest::{self, ValueSource};
use crate::render::{Format, JSON_FORMAT_VERSION};
use crate::targets::{self, Check, Context, TargetError};

/// A target's backend, or why it could not be built.
type Built = Result<Box<dyn targets::Target>, TargetError>;

struct Section {
    scope: String,
    checks: Vec<Check>,
}

pub(super) async fn run(g: &Global, a: DoctorArgs) -> Result<Exit, Error> {
    let m = manifest::load(&g.manifest)?;
    let selected = |name: &str| {
        a.selection.targets.is_empty() || a.selection.targets.iter().any(|t| t == name)
    };
    for t in &a.selection.targets {
        if !m.targets.contains_key(t) {
            return Err(Error::usage(
                format!("--target {t}: no such target"),
                "see `targets:` in the manifest",
            ));
        }
    }

    let mut sections = vec![Section {
        scope: "manifest".into(),
        checks: vec![Check {
            what: format!("{} loads", g.manifest.display()),
            outcome: Ok(format!(
                "{} targets, {} secrets",
                m.targets.len(),
                m.secrets.len()
            )),
        }],
    }];

    let encrypted: Vec<(&str, &str)> = m
        .secrets
        .values()
        .filter_map(|s| match &s.value {
            ValueSource::Encrypted(a) => Some((s.name.as_str(), a.as_str())),
            ValueSource::Plain(_) => None,
        })
        .chain(m.fingerprint_key.as_deref().map(|k| ("fingerprint_key", k)))
        .collect();
    if !encrypted.is_empty() {
        let outcome = match crypto::find_identities(g.identity.as_deref()) {
            Err(e) => {
                Err(TargetError::auth(e.to_string()).with_hint(e.hint().unwrap_or("").to_string()))
            }
            Ok(ids) => {
                let failed: Vec<String> = encrypted
                    .iter()
                    .filter_map(|(name, armored)| {
                        crypto::decrypt(&ids, armored, name)
                            .err()
                            .map(|e| e.to_string())
                    })
                    .collect();
                if failed.is_empty() {
                    Ok(format!(
                        "the identity from {} decrypts all {} encrypted values",
                        ids.origin,
                        encrypted.len()
                    ))
                } else {
                    Err(TargetError::auth(format!("{} of {} values do not decrypt: {}", failed.len(), encrypted.len(), failed.join("; ")))
                        .with_hint("use an identity listed under `recipients`, or have a holder run `secretsync rekey`"))
                }
            }
        };
        sections.push(Section {
            scope: "identity".into(),
            checks: vec![Check {
                what: "the manifest decrypts".into(),
                outcome,
            }],
        });
    }

    // Expired secrets fail; those expiring within the window warn.
    sections.push(Section {
        scope: "secrets".into(),
        checks: crate::lifecycle::doctor_checks(&m, g.identity.as_deref(), a.warn_within, |s| {
            s.targets.iter().any(|t| selected(t))
        })?,
    });

    let ctx = Context::new(m.dir());
    let built: Vec<(String, Built)> = m
        .targets
        .iter()
        .filter(|(n, _)| selected(n))
        .map(|(n, spec)| (n.clone(), targets::build(n, spec, &ctx)))
        .collect();
    let target_sections: Vec<Section> = stream::iter(built.iter().map(|(name, t)| async move {
        match t {
            Err(e) => Section {
                scope: format!("target {name}"),
                checks: vec![Check {
                    what: "configuration".into(),
                    outcome: Err(e.clone()),
                }],
            },
            Ok(t) => Section {
                scope: format!("target {name} ({})", t.describe()),
                checks: t.check().await,
            },
        }
    }))
    .buffered(usize::from(a.selection.parallelism))
    .collect()
    .await;
    sections.extend(target_sections);

    let problems = sections
        .iter()
        .flat_map(|s| &s.checks)
        .filter(|c| c.outcome.is_err())
        .count();
    match a.format {
        Format::Json => emit(g, &format!("{:#}", as_json(&sections, problems))),
        Format::Text | Format::Markdown => emit(
            g,
            &as_text(&sections, problems, a.format == Format::Markdown, g),
        ),
    }
    // Quiet, or a document on stdout: the failed checks on stderr too.
    if super::errors_on_stderr(g, a.format) {
        for s in &sections {
            for c in &s.checks {
                if let Err(e) = &c.outcome {
                    eprintln!("error: {}: {}: {}", s.scope, c.what, e.message);
                    if let Some(h) = &e.hint {
                        eprintln!("  hint: {h}");
                    }
                }
            }
        }
    }
    Ok(if problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn as_text(sections: &[Section], problems: usize, markdown: bool, g: &Global) -> String {
    let st = style(g);
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
            match &c.outcome {
                Ok(detail) => {
                    let _ = writeln!(
                        out,
                        "  {} {}: {detail}",
                        if markdown { "- ✅" } else { "ok  " },
                        c.what
                    );
                }
                Err(e) => {
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

fn as_json(sections: &[Section], problems: usize) -> Value {
    let checks: Vec<Value> = sections
        .iter()
        .flat_map(|s| {
            s.checks.iter().map(move |c| match &c.outcome {
                Ok(d) => json!({ "scope": s.scope, "check": c.what, "ok": true, "detail": d }),
                Err(e) => json!({ "scope": s.scope, "check": c.what, "ok": false,
                                  "error": { "kind": e.kind, "message": e.message, "hint": e.hint } }),
            })
        })
        .collect();
    json!({ "format_version": JSON_FORMAT_VERSION, "kind": "doctor", "checks": checks, "problems": problems })
}
