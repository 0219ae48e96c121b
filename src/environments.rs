//! A plan seen per environment (#27): grouped by environment, a summary per
//! environment, and the environments left out because no identity can
//! decrypt their values. A manifest without environments renders as before.
//!
//! The model and the expansion into `TARGET@ENV` instances are the
//! manifest's ([`crate::manifest::environments`]).

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::manifest::Manifest;
use crate::plan::{Plan, TargetPlan};
use crate::render::{self, Style};

/// What a skipped environment says, in every format.
pub fn skipped_line(env: &str) -> String {
    format!("{env}: skipped, no identity can decrypt its values")
}

fn copy(t: &TargetPlan) -> TargetPlan {
    TargetPlan {
        slot: t.slot,
        target: t.target.clone(),
        description: t.description.clone(),
        outcome: t.outcome.clone(),
    }
}

/// The plan split by environment, in the manifest's order (environments
/// with no target in the plan left out).
pub fn split(plan: &Plan, m: &Manifest) -> Vec<(String, Plan)> {
    m.environments
        .keys()
        .filter_map(|env| {
            let targets: Vec<TargetPlan> = plan
                .targets
                .iter()
                .filter(|t| m.env_of(&t.target) == Some(env.as_str()))
                .map(copy)
                .collect();
            (!targets.is_empty()).then(|| (env.clone(), Plan { targets }))
        })
        .collect()
}

/// The plan as text: as before without environments; with them, one
/// section per environment, each with its summary line, then the skipped.
pub fn plan_text(plan: &Plan, m: &Manifest, skipped: &[String], st: &Style) -> String {
    if !m.has_environments() {
        return render::plan_text(plan, st);
    }
    let mut out = String::new();
    for (env, part) in split(plan, m) {
        let _ = writeln!(out, "{}", st.bold(&format!("== environment {env} ==")));
        out.push_str(&render::plan_text(&part, st));
        out.push('\n');
    }
    for env in skipped {
        let _ = writeln!(out, "{}", skipped_line(env));
    }
    if !skipped.is_empty() {
        out.push('\n');
    }
    out.push_str(&st.bold(&format!(
        "All environments: {}",
        render::summary_line(&plan.summary())
    )));
    out.push('\n');
    out
}

/// Adds to a plan's JSON document (docs/json-output.md): each target's
/// `environment`, and `environments`, one entry per environment with its
/// summary, or `skipped: true`.
pub fn extend_json(doc: &mut Value, plan: &Plan, m: &Manifest, skipped: &[String]) {
    if !m.has_environments() {
        return;
    }
    if let Some(targets) = doc["targets"].as_array_mut() {
        for t in targets {
            let env = t["name"]
                .as_str()
                .and_then(|n| m.env_of(n))
                .map(str::to_string);
            t["environment"] = json!(env);
        }
    }
    let parts = split(plan, m);
    let envs: Vec<Value> = m
        .environments
        .keys()
        .map(|env| {
            if skipped.contains(env) {
                json!({"name": env, "skipped": true, "reason": "no identity can decrypt its values"})
            } else {
                let summary = parts
                    .iter()
                    .find(|(e, _)| e == env)
                    .map(|(_, p)| json!(p.summary()))
                    .unwrap_or(Value::Null);
                json!({"name": env, "skipped": false, "summary": summary})
            }
        })
        .collect();
    doc["environments"] = json!(envs);
}

/// A markdown section: a row per environment (its summary, or skipped).
pub fn markdown(plan: &Plan, m: &Manifest, skipped: &[String]) -> String {
    if !m.has_environments() {
        return String::new();
    }
    let parts = split(plan, m);
    let mut out = String::from("\n### Environments\n\n| environment | plan |\n|---|---|\n");
    for env in m.environments.keys() {
        let cell = if skipped.contains(env) {
            "skipped, no identity can decrypt its values".to_string()
        } else {
            match parts.iter().find(|(e, _)| e == env) {
                Some((_, p)) => render::summary_line(&p.summary()),
                None => "not in this run".to_string(),
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} |",
            render::md_escape(env),
            render::md_escape(&cell)
        );
    }
    out
}
