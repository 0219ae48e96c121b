//! `secretsync plan`

use super::{emit, options, style, Exit};
use crate::cli::{Global, PlanArgs};
use crate::engine::Engine;
use crate::error::Error;
use crate::render::{self, Format};

pub(super) async fn run(g: &Global, a: PlanArgs) -> Result<Exit, Error> {
    let engine = Engine::open(&options(g, &a.selection))?;
    let plan = engine.plan().await;
    let manifest = engine.manifest_path().display().to_string();
    match a.format {
        Format::Text => emit(g, &render::plan_text(&plan, &style(g))),
        Format::Json => emit(g, &format!("{:#}", render::plan_json(&plan, &manifest))),
        Format::Markdown => emit(g, &render::plan_markdown(&plan)),
    }
    Ok(if plan.has_errors() {
        Exit::Failed
    } else if a.detailed_exitcode && plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Ok
    })
}
