//! `secretsync doctor`: is everything in place before anything fails?
//! The manifest loads, the identity decrypts every value, and each target's
//! credentials and host answer. Never writes a value.

use super::{emit, style, Exit};
use crate::cli::Format;
use crate::cli::{DoctorArgs, Global};
use indexmap::IndexMap;
use secretsync::crypto;
use secretsync::engine::Engine;
use secretsync::error::Error;
use secretsync::manifest::{self, Manifest, SecretDef, ValueSource};
use secretsync::render::{self, DoctorStatus, Section};
use secretsync::secret::Secret;
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

    // With environments (#27): a check per environment, each judged on its
    // own values (src/commands/doctor.rs `per_env`).
    if m.has_environments() || !a.selection.envs.is_empty() {
        return per_env(g, a, m, sections).await;
    }
    let encrypted: Vec<(&str, &str)> = m
        .secrets
        .values()
        .filter_map(|s| match &s.value {
            ValueSource::Encrypted(a) => Some((s.name.as_str(), a.as_str())),
            ValueSource::Plain(_) => None,
        })
        .chain(m.fingerprint_key.as_deref().map(|k| ("fingerprint_key", k)))
        .collect();
    // Every encrypted value decrypted once: the identity check counts the
    // failures, the lifecycle checks below read the values.
    let mut decrypted: Vec<Result<Secret, crypto::CryptoError>> = Vec::new();
    if !encrypted.is_empty() {
        let outcome = match crypto::find_identities(g.identity.as_deref()) {
            Err(e) => {
                Err(TargetError::auth(e.to_string()).with_hint(e.hint().unwrap_or("").to_string()))
            }
            Ok(ids) => {
                decrypted = crypto::decrypt_many_as(&ids, &encrypted, &str::to_string);
                let failed: Vec<String> = decrypted
                    .iter()
                    .filter_map(|got| got.as_ref().err().map(|e| e.to_string()))
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
        };
        sections.push(Section::of(
            "identity",
            vec![Check {
                what: "the manifest decrypts".into(),
                outcome,
            }],
        ));
    }

    // The targets through the engine, as a plan reaches them (it checks
    // the selection, and starts connecting while the values are checked).
    let secrets_decrypted = encrypted.len() - usize::from(m.fingerprint_key.is_some());
    let mut clear: IndexMap<String, Result<Secret, crypto::CryptoError>> = encrypted
        .iter()
        .take(secrets_decrypted)
        .map(|(name, _)| name.to_string())
        .zip(decrypted)
        .collect();
    let engine = Engine::targets_only(&super::options(g, &a.selection), m)?;
    // The values of the selected secrets, as `lifecycle::decrypt` gives
    // them: all, or none when one of them cannot be decrypted.
    let only = |s: &SecretDef| s.targets.iter().any(|t| engine.slot(t).is_some());
    let mut values = IndexMap::new();
    for s in engine.manifest.secrets.values().filter(|s| only(s)) {
        if matches!(s.value, ValueSource::Encrypted(_)) {
            match clear.shift_remove(&s.name) {
                Some(Ok(v)) => {
                    values.insert(s.name.clone(), v);
                }
                _ => {
                    values.clear();
                    break;
                }
            }
        }
    }
    drop(clear);

    // Expired secrets fail; those expiring within the window warn.
    sections.push(Section {
        scope: "secrets".into(),
        checks: secretsync::lifecycle::doctor_checks(
            &engine.manifest,
            &values,
            a.warn_within,
            // The engine holds the selected targets: no second selection rule.
            only,
        )?,
    });

    let problems = finish(g, &a, engine, sections).await;
    Ok(if problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// What every doctor run ends with: the targets' checks through the engine,
/// the report in the asked format, the failed checks on stderr when the
/// report is quiet or a document, and the number of problems.
async fn finish(g: &Global, a: &DoctorArgs, engine: Engine, mut sections: Vec<Section>) -> usize {
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
    problems
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

/// `doctor` of a manifest with environments: the identity checked per
/// environment (one no identity can read is skipped with a warning unless
/// named with `--env`), the lifecycle per environment, then the targets.
async fn per_env(
    g: &Global,
    a: DoctorArgs,
    m: Manifest,
    mut sections: Vec<Section>,
) -> Result<Exit, Error> {
    let envs = super::chosen_envs(&m, &a.selection.envs)?;
    let mut skipped: Vec<String> = Vec::new();
    let mut identity_checks = Vec::new();
    let ids = crypto::find_identities(g.identity.as_deref());
    for env in &envs {
        let view = m.in_env(env);
        let encrypted: Vec<(String, String)> = view_items(&view)
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
        let what = format!("the manifest decrypts (environment {env})");
        let status = match &ids {
            Err(e) => DoctorStatus::Fail(
                TargetError::auth(e.to_string()).with_hint(e.hint().unwrap_or("").to_string()),
            ),
            Ok(ids) => {
                let readable = ids
                    .publics()
                    .iter()
                    .any(|p| crypto::is_recipient(p, &m.environments[env].recipients));
                if !readable && a.selection.envs.is_empty() {
                    skipped.push(env.clone());
                    DoctorStatus::Warn {
                        detail: secretsync::environments::skipped_line(env),
                        fix: format!("run with an identity among {env}'s recipients, or choose the environments with --env"),
                    }
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
                        DoctorStatus::Ok(format!(
                            "the identity from {} decrypts all {} encrypted values",
                            ids.origin,
                            encrypted.len()
                        ))
                    } else {
                        DoctorStatus::Fail(TargetError::auth(format!("{} of {} values do not decrypt: {}", failed.len(), encrypted.len(), failed.join("; ")))
                            .with_hint("use an identity listed under `recipients`, or have a holder of one run `secretsync recipients add YOUR_PUBLIC_KEY` (`secretsync whoami` prints it)"))
                    }
                }
            }
        };
        identity_checks.push(render::DoctorCheck { what, status });
        if let Ok(ids) = &ids {
            if let Some(check) = boundary(&m, ids, env) {
                identity_checks.push(check);
            }
        }
    }
    if !identity_checks.is_empty() {
        sections.push(Section {
            scope: "identity".into(),
            checks: identity_checks,
        });
    }

    let engine = Engine::targets_only(&super::options(g, &a.selection), m)?;
    // Expired secrets fail; those expiring within the window warn: per
    // environment, each judged on its own values.
    for env in &envs {
        if skipped.contains(env) {
            continue;
        }
        let view = engine.manifest.in_env(env);
        let only = |s: &SecretDef| s.targets.iter().any(|t| engine.slot(t).is_some());
        let values =
            secretsync::lifecycle::decrypt(&view, g.identity.as_deref(), only).unwrap_or_default();
        sections.push(Section {
            scope: format!("secrets ({env})"),
            checks: secretsync::lifecycle::doctor_checks(&view, &values, a.warn_within, only)?,
        });
    }

    let problems = finish(g, &a, engine, sections).await;
    Ok(if problems == 0 && !skipped.is_empty() {
        Exit::Skipped
    } else if problems == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Whether `env`'s values are encrypted to its recipients only, asked of
/// the keys held outside them (`None` when none is, or it has no value of
/// its own): what `check` cannot tell without a key, since age's X25519
/// stanzas do not name their key.
fn boundary(m: &Manifest, ids: &crypto::Identities, env: &str) -> Option<render::DoctorCheck> {
    let outside = ids.outside(&m.environments[env].recipients);
    let own = m
        .secrets
        .values()
        .filter(|s| matches!(s.values.get(env), Some(ValueSource::Encrypted(_))))
        .count();
    if outside.keys.is_empty() || own == 0 {
        return None;
    }
    let open = secretsync::manifest::environments::readable_outside(m, ids, env);
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let status = if open.is_empty() {
        DoctorStatus::Ok(format!(
            "{} of {env} tried with {} from {} that {env} does not list: none opens",
            count(own, "value"),
            count(outside.keys.len(), "key"),
            ids.origin
        ))
    } else {
        DoctorStatus::Fail(
            TargetError::failed(format!(
                "{} of {env}'s values open with a key from {} that {env} does not list: {}; whoever holds that key can read them",
                open.len(),
                ids.origin,
                open.join(", ")
            ))
            .with_hint(format!(
                "encrypt each to {env}'s recipients only (`secretsync set KEY --env {env}`), then rotate it: the other key could read it"
            )),
        )
    };
    Some(render::DoctorCheck {
        what: format!("{env}'s values are encrypted to its recipients only"),
        status,
    })
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
