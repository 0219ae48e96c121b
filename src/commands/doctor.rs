//! `secretsync doctor`: is everything in place before anything fails?
//! The manifest loads, the identity decrypts every value, and each target's
//! credentials and host answer. Never writes a value.

use super::{emit, style, Exit};
use crate::cli::Format;
use crate::cli::{DoctorArgs, Global};
use secretsync::crypto;
use secretsync::engine::Engine;
use secretsync::error::Error;
use secretsync::manifest::{self, Manifest, ValueSource};
use secretsync::render::{self, DoctorStatus, Section};
use secretsync::targets::{Check, TargetError};

pub(super) async fn run(g: &Global, a: DoctorArgs) -> Result<Exit, Error> {
    let m = manifest::load(&g.manifest)?;
    let mut sections = vec![Section::of(
        "manifest",
        vec![
            Check {
                what: format!("{} loads", g.manifest.display()),
                outcome: Ok(format!(
                    "{} targets, {} secrets",
                    m.targets.len(),
                    m.secrets.len()
                )),
            },
            manifest_orphans(&g.manifest),
        ],
    )];

    // With environments, one check per environment (`--env`, or all):
    // an environment no identity can read is skipped, not failed, unless
    // it was asked for by name.
    m.check_envs(&a.selection.envs).map_err(|why| {
        Error::usage(
            why,
            "environments are defined under `environments:` (docs/environments.md)",
        )
    })?;
    let envs: Vec<Option<String>> = if !m.has_environments() {
        vec![None]
    } else if a.selection.envs.is_empty() {
        m.environments.keys().cloned().map(Some).collect()
    } else {
        a.selection.envs.iter().cloned().map(Some).collect()
    };
    let mut skipped: Vec<String> = Vec::new();
    let mut identity_checks = Vec::new();
    let ids = crypto::find_identities(g.identity.as_deref());
    for env in &envs {
        let view = match env {
            Some(e) => m.in_env(e),
            None => m.in_env_all(),
        };
        let encrypted: Vec<(String, &str)> = view_items(&view);
        let encrypted: Vec<(String, String)> = encrypted
            .into_iter()
            .map(|(n, a)| (n, a.to_string()))
            .chain(
                m.fingerprint_key
                    .clone()
                    .map(|k| ("fingerprint_key".to_string(), k)),
            )
            .collect();
        if encrypted.is_empty() {
            continue;
        }
        let what = match env {
            Some(e) => format!("the manifest decrypts (environment {e})"),
            None => "the manifest decrypts".into(),
        };
        let outcome = match &ids {
            Err(e) => {
                Err(TargetError::auth(e.to_string()).with_hint(e.hint().unwrap_or("").to_string()))
            }
            Ok(ids) => {
                let readable = env.as_ref().is_none_or(|e| {
                    ids.publics()
                        .iter()
                        .any(|p| crypto::is_recipient(p, &m.environments[e].recipients))
                });
                if !readable && a.selection.envs.is_empty() {
                    let e = env.clone().unwrap_or_default();
                    skipped.push(e.clone());
                    Ok(secretsync::environments::skipped_line(&e))
                } else {
                    let failed: Vec<String> = encrypted
                        .iter()
                        .filter_map(|(name, armored)| {
                            crypto::decrypt(ids, armored, name)
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
                            .with_hint("use an identity listed under `recipients`, or have a holder of one run `secretsync recipients add YOUR_PUBLIC_KEY` (`secretsync whoami` prints it)"))
                    }
                }
            }
        };
        let mut check = render::DoctorCheck::from(Check { what, outcome });
        // A skipped environment needs attention, and is not a failure.
        if let (Some(e), DoctorStatus::Ok(detail)) = (env, &check.status) {
            if skipped.contains(e) {
                check.status = DoctorStatus::Warn {
                    detail: detail.clone(),
                    fix: format!("run with an identity among {e}'s recipients, or choose the environments with --env"),
                };
            }
        }
        identity_checks.push(check);
    }
    if !identity_checks.is_empty() {
        sections.push(Section {
            scope: "identity".into(),
            checks: identity_checks,
        });
    }

    // The targets through the engine, as a plan reaches them (it checks
    // the selection, and starts connecting while the values are checked).
    let engine = Engine::targets_only(&super::options(g, &a.selection), m)?;

    // Expired secrets fail; those expiring within the window warn: per
    // environment, each judged on its own values.
    for env in &envs {
        if env.as_ref().is_some_and(|e| skipped.contains(e)) {
            continue;
        }
        let view = match env {
            Some(e) => engine.manifest.in_env(e),
            None => engine.manifest.in_env_all(),
        };
        sections.push(Section {
            scope: match env {
                Some(e) => format!("secrets ({e})"),
                None => "secrets".into(),
            },
            checks: secretsync::lifecycle::doctor_checks(
                &view,
                g.identity.as_deref(),
                a.warn_within,
                // The engine holds the selected targets: no second selection rule.
                |s| s.targets.iter().any(|t| engine.slot(t).is_some()),
            )?,
        });
    }

    for (slot, checks) in engine.check().await {
        let scope = match &slot.target {
            Ok(t) => format!("target {} ({})", slot.name, t.describe()),
            Err(_) => format!("target {}", slot.name),
        };
        sections.push(Section::of(scope, checks));
    }
    engine.close().await;

    let problems = render::doctor_problems(&sections);
    match a.format {
        Format::Json => emit(
            g,
            &format!("{:#}", render::doctor_json(&sections, problems)),
        ),
        Format::Text | Format::Markdown => emit(
            g,
            &render::doctor_text(&sections, problems, a.format == Format::Markdown, &style(g)),
        ),
    }
    // Quiet, or a document on stdout: the failed checks on stderr too.
    if super::errors_on_stderr(g, a.format) {
        for s in &sections {
            for c in &s.checks {
                if let DoctorStatus::Fail(e) = &c.status {
                    eprintln!("error: {}: {}: {}", s.scope, c.what, e.message);
                    if let Some(h) = &e.hint {
                        eprintln!("  hint: {h}");
                    }
                }
            }
        }
    }
    Ok(if problems == 0 && !skipped.is_empty() {
        Exit::Skipped
    } else if problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Temp files of an editor killed while rewriting the manifest (`set`,
/// `rotate`…), beside it: they hold its text (#24).
fn manifest_orphans(manifest: &std::path::Path) -> Check {
    let dir = secretsync::fsutil::directory_of(manifest);
    let orphans = secretsync::fsutil::orphans(dir);
    Check {
        what: "no temp files left beside the manifest".into(),
        outcome: if orphans.is_empty() {
            Ok(format!("none in {}", dir.display()))
        } else {
            Err(
                TargetError::failed(secretsync::fsutil::orphans_said(dir, &orphans)).with_hint(
                    "the next edit of the manifest removes them, or delete them by hand",
                ),
            )
        },
    }
}

/// The encrypted values of a one-environment view (`Manifest::in_env`).
fn view_items(view: &Manifest) -> Vec<(String, &str)> {
    view.secrets
        .values()
        .filter_map(|s| match &s.value {
            ValueSource::Encrypted(a) => Some((s.name.clone(), a.as_str())),
            ValueSource::Plain(_) => None,
        })
        .collect()
}
