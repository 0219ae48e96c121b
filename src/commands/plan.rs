//! `secretsync plan`

use super::{emit, errors_on_stderr, github_plan, options, say_plan_errors, style, Exit};
use crate::cli::Format;
use crate::cli::{Global, PlanArgs};
use secretsync::engine::Engine;
use secretsync::error::Error;
use secretsync::lifecycle;
use secretsync::markdown;
use secretsync::render;
use secretsync::{notify, saved};

pub(super) async fn run(g: &Global, a: PlanArgs) -> Result<Exit, Error> {
    let (engine, review) = match &a.base {
        Some(base) => {
            let (engine, review) = secretsync::review::open(&options(g, &a.selection), base)?;
            (engine, Some(review))
        }
        None => {
            warn_unreviewed_pull_request();
            (Engine::open(&options(g, &a.selection))?, None)
        }
    };
    let plan = engine.plan_with_progress(super::progress(g)).await?;
    let manifest = engine.manifest_path().display().to_string();
    // Expiry and rotation of the planned secrets: reported, never a change
    // (the drift exit codes stay as they are; `doctor` fails on expiry).
    // With environments, each environment's value is judged on its own
    // (`NAME@ENV`).
    let split = engine
        .manifest
        .has_environments()
        .then(|| engine.manifest.values_split());
    let values = match &split {
        Some(_) => engine.values_split().await?,
        None => engine.values().await?,
    };
    let life = lifecycle::Report::new(
        split.as_ref().unwrap_or(&engine.manifest),
        &values,
        lifecycle::Policy::new(a.warn_within)?,
        |d| values.contains_key(&d.name),
    );
    drop(values);
    match a.format {
        Format::Text => {
            let mut text = secretsync::environments::plan_text(
                &plan,
                &engine.manifest,
                engine.skipped_envs(),
                &style(g),
            );
            if !life.findings.is_empty() {
                text.push('\n');
                text.push_str(&life.text(style(g).color));
            }
            if let Some(r) = &review {
                text.push_str(&r.text(&style(g)));
            }
            emit(g, &text)
        }
        Format::Json => {
            let mut doc = render::plan_json(&plan, &manifest);
            secretsync::environments::extend_json(
                &mut doc,
                &plan,
                &engine.manifest,
                engine.skipped_envs(),
            );
            doc["lifecycle"] = life.json();
            if let Some(r) = &review {
                doc["review"] = r.json();
            }
            emit(g, &format!("{doc:#}"))
        }
        Format::Markdown => emit(
            g,
            &markdown::document(
                &plan,
                &(secretsync::environments::markdown(
                    &plan,
                    &engine.manifest,
                    engine.skipped_envs(),
                ) + &life.markdown()
                    + &review.as_ref().map(|r| r.markdown()).unwrap_or_default()),
                a.markdown_limit,
            ),
        ),
    }
    // The step summary: the plan, then the lifecycle and review sections,
    // each appended on its own, all within the summary's 1 MiB.
    let quarter = markdown::STEP_SUMMARY_LIMIT / 4;
    let life_md = markdown::fit(&life.markdown(), quarter);
    let review_md = review
        .as_ref()
        .map(|r| markdown::fit(&r.markdown(), quarter))
        .unwrap_or_default();
    github_plan(&plan, life_md.len() + review_md.len() + 2);
    if secretsync::ci::github_actions() && !life.findings.is_empty() {
        if let Err(e) = secretsync::ci::append_summary(&life_md) {
            eprintln!("warning: cannot append to GITHUB_STEP_SUMMARY: {e}");
        }
        super::annotate(&life.annotations());
    }
    if let Some(r) = review.as_ref().filter(|_| secretsync::ci::github_actions()) {
        if let Err(e) = secretsync::ci::append_summary(&review_md) {
            eprintln!("warning: cannot append to GITHUB_STEP_SUMMARY: {e}");
        }
        super::annotate(&r.annotations());
    }
    if errors_on_stderr(g, a.format) {
        say_plan_errors(&plan);
    }

    // A plan with a target that could not be read can never be applied as
    // saved (its state there is unknown): refuse to save it, and say why,
    // rather than save a file that `apply` must reject.
    let unreadable: Vec<&str> = plan
        .targets
        .iter()
        .filter(|t| t.outcome.is_err())
        .map(|t| t.target.as_str())
        .collect();
    let mut refused = false;
    if let (Some(out), false) = (&a.out, unreadable.is_empty()) {
        eprintln!(
            "error: the plan was not saved to {}: target(s) {} could not be read, so this plan could never be applied as saved",
            super::shown(out),
            unreadable
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        eprintln!(
            "  hint: fix the target(s) and plan again, or save a plan of the others: secretsync plan --out FILE{}",
            plan.targets
                .iter()
                .filter(|t| t.outcome.is_ok())
                .map(|t| format!(" -t {}", t.target))
                .collect::<String>()
        );
        refused = true;
    }
    if let (Some(out), false) = (&a.out, refused) {
        let saved = saved::from_plan(
            &plan,
            &manifest,
            engine.manifest_sha256(),
            &engine.fingerprints,
        )
        .ok_or_else(|| {
            Error::usage(
                "saving a plan needs the manifest's fingerprint_key, and its identity to read it",
                "`secretsync rekey` adds a fingerprint_key to a manifest that has none",
            )
        })?;
        let text = serde_json::to_string_pretty(&saved).map_err(|e| Error::other(e.to_string()))?;
        secretsync::fsutil::write_atomic(out, text.as_bytes(), 0o600)
            .map_err(|e| Error::io(out, e))?;
        if !g.quiet {
            eprintln!(
                "saved the plan to {}; apply it with `secretsync apply {}`",
                super::shown(out),
                super::shown(out)
            );
        }
    }

    let skipped = !engine.skipped_envs().is_empty();
    if skipped && a.format != Format::Text && !g.quiet {
        for env in engine.skipped_envs() {
            eprintln!("note: {}", secretsync::environments::skipped_line(env));
        }
    }
    engine.close().await;

    let mut exit = if plan.has_errors() {
        Exit::Failed
    } else if skipped {
        Exit::Skipped
    } else if a.detailed_exitcode
        && (plan.has_drift() || review.as_ref().is_some_and(|r| r.pending()))
    {
        Exit::Changes
    } else {
        Exit::Ok
    };
    if let Some(url) = &a.notify {
        if let Some(body) = notify::message(&plan, &manifest, &life.findings) {
            if let Err(why) = notify::send(url, &body).await {
                eprintln!("error: the drift notification was not sent: {why}");
                exit = Exit::Failed;
            }
        }
    }
    Ok(exit)
}

/// Planning a pull request without `--base` trusts the change's own target
/// definitions and fingerprint_key (docs/ci.md, Security): say so where the
/// workflow's author will see it, once, without failing the run.
fn warn_unreviewed_pull_request() {
    if !secretsync::ci::github_actions() {
        return;
    }
    let event = std::env::var("GITHUB_EVENT_NAME").unwrap_or_default();
    if event == "pull_request" || event == "pull_request_target" {
        eprintln!(
            "{}",
            secretsync::ci::annotation(
                "warning",
                "secretsync: plan without --base",
                "this plans a pull request's manifest with its own target definitions and fingerprint_key: \
                 run `secretsync plan --base origin/<base branch>` so that targets it adds or changes are not contacted (docs/ci.md)",
            )
        );
    }
}
