//! `secretsync list` (`ls`): every secret with its targets, kind, when its
//! value was set, its expiry and where that came from, and its rotation.
//! Reads no target unless `--check`, which counts the targets that still
//! hold a value the manifest replaced. Never prints a value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{emit, options, style, Exit};
use crate::cli::Format;
use crate::cli::{Global, ListArgs};
use secretsync::engine::Engine;
use secretsync::error::Error;
use secretsync::lifecycle::{self, Policy, Report, Status};
use secretsync::plan::State;
use secretsync::render::{md_code, md_escape, JSON_FORMAT_VERSION};
use secretsync::selection::{Selection, Wording};

/// What `--check` found for one secret.
#[derive(Default)]
struct Held {
    /// Targets holding a value the manifest replaced.
    previous: Vec<String>,
    /// Targets that could not be read.
    unread: Vec<String>,
}

pub(super) async fn run(g: &Global, a: ListArgs) -> Result<Exit, Error> {
    let policy = Policy::new(a.warn_within)?;
    let m = secretsync::manifest::load(&g.manifest)?;
    // With environments (#27): one list per environment (`--env`, or all),
    // each secret with that environment's value.
    if m.has_environments() || !a.selection.envs.is_empty() {
        let envs = super::chosen_envs(&m, &a.selection.envs)?;
        return per_env(g, &a, &m, &envs, policy).await;
    }
    let selection = Selection::checked(
        &a.selection.targets,
        |t| m.targets.contains_key(t),
        m.targets.keys().map(String::as_str),
        Wording::Plain,
    )?;
    let only = |d: &secretsync::manifest::SecretDef| selection.any(&d.targets);
    // Without an identity the list still shows what the manifest says.
    let values = match lifecycle::decrypt(&m, g.identity.as_deref(), only) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("warning: the values were not decrypted ({e}): expiry is read from the manifest only");
            None
        }
    };
    let report = Report::new(
        &m,
        values.as_ref().unwrap_or(&Default::default()),
        policy,
        only,
    );

    let mut held: Option<BTreeMap<String, Held>> = None;
    let mut failed = false;
    if !a.check {
        drop(values);
    } else {
        // The values decrypted above serve the plan too: each is decrypted
        // once. When they could not be, the engine tries (and says why).
        let opts = options(g, &a.selection);
        let engine = match values {
            Some(values) => Engine::with_values(&opts, m, values)?,
            None => Engine::open(&opts)?,
        };
        let plan = engine.plan_with_progress(super::progress(g)).await?;
        let (map, unread) = held_on(&plan, &engine.manifest, None);
        failed = unread;
        held = Some(map);
        engine.close().await;
    }

    match a.format {
        Format::Json => {
            let mut doc = report.json();
            doc["format_version"] = JSON_FORMAT_VERSION.into();
            doc["kind"] = "list".into();
            doc["manifest"] = g.manifest.display().to_string().into();
            if let (Some(held), Some(secrets)) = (&held, doc["secrets"].as_array_mut()) {
                held_json(secrets, held);
            }
            emit(g, &format!("{doc:#}"));
        }
        Format::Text => emit(g, &text(&report, held.as_ref(), style(g).color)),
        Format::Markdown => emit(g, &markdown(&report, held.as_ref())),
    }
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

/// The columns of one secret, as text (no value, only our words and dates).
fn columns(s: &Status, p: &Policy, held: Option<&BTreeMap<String, Held>>) -> Vec<String> {
    let expires = match &s.expiry {
        None => "-".to_string(),
        Some(e) => {
            let source = match e.source {
                lifecycle::Source::Jwt => "value: JWT exp",
                lifecycle::Source::Certificate => "value: certificate",
                lifecycle::Source::Manifest => "manifest",
            };
            let when = match s.state {
                lifecycle::ExpiryState::Expired => "EXPIRED".to_string(),
                lifecycle::ExpiryState::Expiring => "SOON".to_string(),
                lifecycle::ExpiryState::NotYetValid => "NOT VALID YET".to_string(),
                _ => format!("in {} days", (e.at - p.now).div_euclid(lifecycle::DAY)),
            };
            format!("{} ({source}) {when}", lifecycle::shown(e.at))
        }
    };
    let rotation = match &s.rotation {
        None => "-".to_string(),
        Some(r) => match (r.due_on, r.overdue) {
            (None, _) => format!("every {}d, no set date", r.every_days),
            (Some(d), true) => format!(
                "every {}d, OVERDUE since {}",
                r.every_days,
                lifecycle::date(d)
            ),
            (Some(d), false) => format!("every {}d, due {}", r.every_days, lifecycle::date(d)),
        },
    };
    let mut cols = vec![
        s.secret.clone(),
        if s.encrypted { "encrypted" } else { "plain" }.to_string(),
        s.targets.join(","),
        s.set_on.clone().unwrap_or_else(|| "-".into()),
        expires,
        rotation,
    ];
    if let Some(held) = held {
        let h = held.get(&s.secret);
        let n = h.map_or(0, |h| h.previous.len());
        let unread = h.map_or(0, |h| h.unread.len());
        cols.push(match (n, unread) {
            (0, 0) => "none".into(),
            (n, 0) => format!(
                "{n} ({})",
                h.map(|h| h.previous.join(",")).unwrap_or_default()
            ),
            (n, u) => format!("{n}, {u} not read"),
        });
    }
    cols
}

fn headers(check: bool) -> Vec<&'static str> {
    let mut h = vec!["SECRET", "KIND", "TARGETS", "SET ON", "EXPIRES", "ROTATION"];
    if check {
        h.push("OLD VALUE ON");
    }
    h
}

fn text(report: &Report, held: Option<&BTreeMap<String, Held>>, color: bool) -> String {
    let rows: Vec<Vec<String>> = report
        .statuses
        .iter()
        .map(|s| columns(s, &report.policy, held))
        .collect();
    let heads: Vec<String> = headers(held.is_some())
        .into_iter()
        .map(String::from)
        .collect();
    let mut out = table(&heads, &rows);
    if report.statuses.is_empty() {
        out.push_str("(no secrets)\n");
    }
    // The rows say each secret's expiry and rotation: one line, not the
    // plan's block again.
    if !report.findings.is_empty() {
        out.push('\n');
        out.push_str(&report.summary());
    }
    let _ = color;
    out
}

/// Rows under their heads, each column as wide as its widest cell.
fn table(heads: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..heads.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([heads[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(heads);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// With environments: a row per secret, a column per environment, each
/// cell that environment's value in a word (`-`: none there), so that
/// production and staging are told apart at a glance; the sections below
/// it have the detail.
fn overview(
    m: &secretsync::manifest::Manifest,
    reports: &[(String, Report)],
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut heads = vec!["SECRET".to_string(), "VALUE".to_string()];
    heads.extend(reports.iter().map(|(env, _)| env.clone()));
    let mut rows = Vec::new();
    for (name, def) in &m.secrets {
        if !reports
            .iter()
            .any(|(_, r)| r.statuses.iter().any(|s| &s.secret == name))
        {
            continue;
        }
        let kind = match &def.value {
            _ if def.per_environment() => "per environment",
            secretsync::manifest::ValueSource::Plain(_) => "plain, one for all",
            secretsync::manifest::ValueSource::Encrypted(_) => "one for all",
        };
        let mut row = vec![name.clone(), kind.to_string()];
        for (_, r) in reports {
            let Some(st) = r.statuses.iter().find(|s| &s.secret == name) else {
                row.push("-".into());
                continue;
            };
            let mut cell = match &st.set_on {
                Some(d) => format!("set {d}"),
                None => "present".into(),
            };
            let mut flags: Vec<&str> = Vec::new();
            for f in r.findings.iter().filter(|f| &f.secret == name) {
                flags.push(match f.kind {
                    lifecycle::Kind::Expired => "EXPIRED",
                    lifecycle::Kind::Expiring => "expiring",
                    lifecycle::Kind::NotYetValid => "not valid yet",
                    lifecycle::Kind::RotationDue => "rotation due",
                });
            }
            if !flags.is_empty() {
                let _ = write!(cell, ", {}", flags.join(", "));
            }
            row.push(cell);
        }
        rows.push(row);
    }
    (heads, rows)
}

fn markdown(report: &Report, held: Option<&BTreeMap<String, Held>>) -> String {
    let heads = headers(held.is_some());
    let mut out = format!(
        "### secretsync list\n\n| {} |\n|{}\n",
        heads.join(" | "),
        "---|".repeat(heads.len())
    );
    for s in &report.statuses {
        let cols = columns(s, &report.policy, held);
        let cells: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 0 { md_code(c) } else { md_escape(c) })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push_str(&report.markdown());
    out
}

/// `list` of a manifest with environments: a section per environment.
/// What `--check` found per secret on the targets of `plan` (of
/// environment `env` only, when given), and whether a target was not read
/// (each said on stderr).
fn held_on(
    plan: &secretsync::plan::Plan,
    m: &secretsync::manifest::Manifest,
    env: Option<&str>,
) -> (BTreeMap<String, Held>, bool) {
    let mut map: BTreeMap<String, Held> = BTreeMap::new();
    let mut failed = false;
    for t in plan
        .targets
        .iter()
        .filter(|t| env.is_none() || m.env_of(&t.target) == env)
    {
        match &t.outcome {
            Ok(d) => {
                for i in &d.items {
                    if let (
                        Some(secret),
                        State::Differs {
                            replaced_on: Some(_),
                        },
                    ) = (&i.secret, &i.state)
                    {
                        map.entry(secret.clone())
                            .or_default()
                            .previous
                            .push(t.target.clone());
                    }
                }
            }
            Err(e) => {
                failed = true;
                super::say_target_error(&t.target, &t.description, e);
                for s in m.secrets.values().filter(|s| s.targets.contains(&t.target)) {
                    map.entry(s.name.clone())
                        .or_default()
                        .unread
                        .push(t.target.clone());
                }
            }
        }
    }
    (map, failed)
}

/// `previous_value_on` and `not_read` of `--check` on each secret of a
/// JSON listing.
fn held_json(secrets: &mut [serde_json::Value], held: &BTreeMap<String, Held>) {
    for s in secrets {
        let name = s["name"].as_str().unwrap_or_default().to_string();
        let h = held.get(&name);
        s["previous_value_on"] =
            serde_json::json!(h.map(|h| h.previous.clone()).unwrap_or_default());
        s["not_read"] = serde_json::json!(h.map(|h| h.unread.clone()).unwrap_or_default());
    }
}

async fn per_env(
    g: &Global,
    a: &ListArgs,
    m: &secretsync::manifest::Manifest,
    envs: &[String],
    policy: Policy,
) -> Result<Exit, Error> {
    for t in &a.selection.targets {
        if !m.knows_target(t) {
            return Err(Error::usage(
                format!("--target {t}: no such target"),
                format!(
                    "targets: {}",
                    m.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    // `--check`: one plan of the chosen environments' instances, its
    // findings then told per environment.
    let mut failed = false;
    let mut skipped: Vec<String> = Vec::new();
    let mut checked: Option<BTreeMap<String, BTreeMap<String, Held>>> = None;
    if a.check {
        let engine = Engine::open(&options(g, &a.selection))?;
        let plan = engine.plan_with_progress(super::progress(g)).await?;
        skipped = engine.skipped_envs().to_vec();
        let mut per = BTreeMap::new();
        for env in envs.iter().filter(|e| !skipped.contains(e)) {
            let (map, unread) = held_on(&plan, &engine.manifest, Some(env));
            failed |= unread;
            per.insert(env.clone(), map);
        }
        engine.close().await;
        checked = Some(per);
    }
    let mut text_out = String::new();
    let mut json_secrets = Vec::new();
    let mut reports: Vec<(String, Report)> = Vec::new();
    for env in envs {
        let held = checked.as_ref().and_then(|c| c.get(env));
        if skipped.contains(env) && !g.quiet {
            eprintln!("note: {}", secretsync::environments::skipped_line(env));
        }
        let view = m.in_env(env);
        let selected = |t: &String| {
            a.selection.targets.is_empty()
                || a.selection.targets.iter().any(|s| m.target_matches(t, s))
        };
        let only = |d: &secretsync::manifest::SecretDef| {
            a.selection.targets.is_empty() || d.targets.iter().any(selected)
        };
        let values = match lifecycle::decrypt(&view, g.identity.as_deref(), only) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("warning: the values of {env} were not decrypted ({e}): expiry is read from the manifest only");
                Default::default()
            }
        };
        let report = Report::new(&view, &values, policy, only);
        drop(values);
        match a.format {
            Format::Json => {
                if let Some(secrets) = report.json()["secrets"].as_array_mut() {
                    if let Some(held) = held {
                        held_json(secrets, held);
                    }
                    for s in secrets {
                        let mut s = s.clone();
                        s["environment"] = env.clone().into();
                        json_secrets.push(s);
                    }
                }
            }
            Format::Text => {
                let _ = writeln!(text_out, "== environment {env} ==");
                text_out.push_str(&text(&report, held, style(g).color));
                text_out.push('\n');
            }
            Format::Markdown => {
                let _ = writeln!(text_out, "### Environment {}\n", md_escape(env));
                text_out.push_str(&markdown(&report, held));
                text_out.push('\n');
            }
        }
        reports.push((env.clone(), report));
    }
    // Several environments: first a column per environment.
    if envs.len() > 1 {
        let (heads, rows) = overview(m, &reports);
        let top = match a.format {
            Format::Text => table(&heads, &rows) + "\n",
            Format::Markdown => {
                let mut t = format!(
                    "### secretsync list: environments\n\n| {} |\n|{}\n",
                    heads
                        .iter()
                        .map(|h| md_escape(h))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    "---|".repeat(heads.len())
                );
                for r in &rows {
                    let cells: Vec<String> = r
                        .iter()
                        .enumerate()
                        .map(|(i, c)| if i == 0 { md_code(c) } else { md_escape(c) })
                        .collect();
                    let _ = writeln!(t, "| {} |", cells.join(" | "));
                }
                t + "\n"
            }
            Format::Json => String::new(),
        };
        text_out.insert_str(0, &top);
    }
    if a.format == Format::Json {
        let doc = serde_json::json!({
            "format_version": JSON_FORMAT_VERSION,
            "kind": "list",
            "manifest": g.manifest.display().to_string(),
            "environments": envs,
            "secrets": json_secrets,
        });
        emit(g, &format!("{doc:#}"));
    } else {
        emit(g, &text_out);
    }
    Ok(if failed {
        Exit::Failed
    } else if !skipped.is_empty() {
        Exit::Skipped
    } else {
        Exit::Ok
    })
}
