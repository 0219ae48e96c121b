//! `secretsync apply`

use std::io::IsTerminal;

use serde_json::json;

use super::{emit, options, style, Exit};
use crate::apply;
use crate::cli::{ApplyArgs, Global};
use crate::engine::Engine;
use crate::error::Error;
use crate::render::{self, Format};

pub(super) async fn run(g: &Global, a: ApplyArgs) -> Result<Exit, Error> {
    let engine = Engine::open(&options(g, &a.selection))?;
    let plan = engine.plan().await;
    let manifest = engine.manifest_path().display().to_string();
    let st = style(g);
    match a.format {
        Format::Text => emit(g, &render::plan_text(&plan, &st)),
        Format::Markdown => emit(g, &render::plan_markdown(&plan)),
        Format::Json => {}
    }

    if plan.has_changes() && !a.auto_approve {
        confirm()?;
    }
    let plan_json = (a.format == Format::Json).then(|| render::plan_json(&plan, &manifest));
    let report = apply::apply(&engine, plan).await;
    match a.format {
        Format::Text => emit(g, &format!("\n{}", render::report_text(&report, &st))),
        Format::Markdown => emit(g, &format!("\n{}", render::report_markdown(&report))),
        Format::Json => {
            let mut doc = render::report_json(&report, &manifest);
            doc["plan"] = plan_json.unwrap_or(json!(null));
            emit(g, &format!("{doc:#}"));
        }
    }
    Ok(if report.converged() {
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
