//! `secretsync apply [PLAN]`

use std::io::IsTerminal;

use serde_json::json;

use super::{
    emit, errors_on_stderr, github_report, github_summary, options, say_report_errors, style, Exit,
};
use crate::cli::Format;
use crate::cli::{ApplyArgs, Global};
use secretsync::engine::Engine;
use secretsync::error::Error;
use secretsync::render;
use secretsync::{apply, saved};

pub(super) async fn run(g: &Global, a: ApplyArgs) -> Result<Exit, Error> {
    let saved_plan = match &a.plan {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let plan: saved::SavedPlan = serde_json::from_str(&text).map_err(|e| Error::Other {
                message: format!(
                    "{} is not a plan saved by `secretsync plan --out`: {e}",
                    path.display()
                ),
                hint: None,
            })?;
            if plan.targets.is_empty() {
                return Err(Error::Other {
                    message: format!("{} names no target, so nothing was applied", path.display()),
                    hint: Some(
                        "run `secretsync plan --out FILE` again and review the new plan".into(),
                    ),
                });
            }
            Some(plan)
        }
    };
    let mut opts = options(g, &a.selection);
    let mut loaded = None;
    if let Some(s) = &saved_plan {
        // Before its targets are selected: a plan of another manifest (or
        // of an older text of this one) would otherwise fail on a target
        // name as if the user had given it.
        let current = secretsync::manifest::load(&g.manifest)?;
        if saved::manifest_sha256(&current.source) != s.manifest_sha256 {
            let here = super::shown(&g.manifest);
            let there = super::shown(std::path::Path::new(&s.manifest));
            let same_file = std::fs::canonicalize(&s.manifest)
                .is_ok_and(|p| std::fs::canonicalize(&g.manifest).is_ok_and(|q| p == q));
            let other = there != here && !same_file;
            return Err(Error::Other {
                message: if other {
                    format!(
                        "{} is a plan of the manifest {there}, not of {here} (the manifests differ), so nothing was applied",
                        super::shown(a.plan.as_deref().unwrap_or(std::path::Path::new("")))
                    )
                } else {
                    format!(
                        "the saved plan is stale, so nothing was applied:\n  - the manifest {here} changed since the plan was saved"
                    )
                },
                hint: Some(if other {
                    format!("apply it with `-f {there}`, or plan this manifest: `secretsync plan --out FILE`")
                } else {
                    "run `secretsync plan --out FILE` again and review the new plan".into()
                }),
            });
        }
        opts.targets = s.targets.iter().map(|t| t.name.clone()).collect();
        loaded = Some(current);
    }
    // The manifest is loaded once; a saved plan's MAC is checked before any
    // target is contacted: an unauthenticated file must not choose what is
    // read.
    let engine = match loaded {
        Some(manifest) => Engine::with_manifest(&opts, manifest)?,
        None => Engine::open(&opts)?,
    };
    if let Some(s) = &saved_plan {
        if let Err(why) = saved::verify(s, &engine.fingerprints) {
            return Err(Error::Other {
                message: format!("the saved plan cannot be trusted, so nothing was applied: {why}"),
                hint: Some("run `secretsync plan --out FILE` again and review the new plan".into()),
            });
        }
    }
    let plan = engine.plan_with_progress(super::progress(g)).await?;
    let manifest = engine.manifest_path().display().to_string();

    if let Some(s) = &saved_plan {
        let now = saved::from_plan(
            &plan,
            &manifest,
            engine.manifest_sha256(),
            &engine.fingerprints,
        )
        .ok_or_else(|| {
            Error::usage(
                "a saved plan needs the manifest's fingerprint_key",
                "plan again with `secretsync plan --out`",
            )
        })?;
        // Applied already (a re-run, a retried CI job): every target holds
        // what it planned, and the fresh plan below has nothing to change.
        let done = saved::already_applied(s, engine.manifest_sha256(), &now);
        if done && !g.quiet {
            eprintln!(
                "the saved plan was already applied: every target it changes holds what it planned; nothing to do"
            );
        }
        let why = if done {
            Vec::new()
        } else {
            saved::staleness(s, engine.manifest_sha256(), &now)
        };
        if !why.is_empty() {
            return Err(Error::Other {
                message: format!(
                    "the saved plan is stale, so nothing was applied:\n  - {}",
                    why.join("\n  - ")
                ),
                hint: Some("run `secretsync plan --out FILE` again and review the new plan".into()),
            });
        }
    }

    let st = style(g);
    match a.format {
        Format::Text => emit(
            g,
            &secretsync::environments::plan_text(
                &plan,
                &engine.manifest,
                engine.skipped_envs(),
                &st,
            ),
        ),
        Format::Markdown => emit(
            g,
            &secretsync::markdown::plan(&plan, a.markdown_limit.saturating_sub(report_room(&plan))),
        ),
        Format::Json => {}
    }
    github_summary(&plan, report_room(&plan));

    // A saved plan was reviewed when it was saved: it is applied without asking.
    let redeploys = a.redeploy && plan.has_not_live();
    if (plan.has_changes() || redeploys) && !a.auto_approve && saved_plan.is_none() {
        confirm()?;
    }
    let plan_json = (a.format == Format::Json).then(|| {
        let mut doc = render::plan_json(&plan, &manifest);
        secretsync::environments::extend_json(
            &mut doc,
            &plan,
            &engine.manifest,
            engine.skipped_envs(),
        );
        doc
    });
    let report_room = report_room(&plan);
    let report = apply::apply_with(
        &engine,
        plan,
        apply::Options {
            redeploy: a.redeploy,
        },
    )
    .await;
    match a.format {
        Format::Text => emit(g, &format!("\n{}", render::report_text(&report, &st))),
        Format::Markdown => emit(
            g,
            &format!(
                "\n{}",
                secretsync::markdown::fit(&render::report_markdown(&report), report_room - 1)
            ),
        ),
        Format::Json => {
            let mut doc = render::report_json(&report, &manifest);
            doc["plan"] = plan_json.unwrap_or(json!(null));
            emit(g, &format!("{doc:#}"));
        }
    }
    github_report(&report);
    if errors_on_stderr(g, a.format) {
        say_report_errors(&report);
    }
    let skipped = !engine.skipped_envs().is_empty();
    if skipped && a.format != Format::Text && !g.quiet {
        for env in engine.skipped_envs() {
            eprintln!("note: {}", secretsync::environments::skipped_line(env));
        }
    }
    engine.close().await;
    Ok(if report.converged() && skipped {
        Exit::Skipped
    } else if report.converged() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Asks for `yes` on the terminal. Without one, refuses: a pipeline must say
/// --auto-approve explicitly.
fn confirm() -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "apply needs a confirmation, and standard input is not a terminal",
            "review the plan, then run again with --auto-approve to apply without asking",
        ));
    }
    let answer: String = dialoguer::Input::new()
        .with_prompt("Apply these changes? Only `yes` is accepted")
        .allow_empty(true)
        .interact_text()
        .map_err(|e| Error::other(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Other {
            message: "apply cancelled: nothing was changed".into(),
            hint: None,
        })
    }
}

/// Room kept for apply's report after the plan: a row per target.
fn report_room(plan: &secretsync::plan::Plan) -> usize {
    1_000 + 200 * plan.targets.len()
}
