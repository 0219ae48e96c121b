//! `secretsync promote KEY --from A --to B`: B's value becomes A's,
//! encrypted to B's recipients only; the old B value's fingerprint is kept
//! under `previous` and `set_on` is recorded, as `rotate` does (#27).

use std::io::IsTerminal;

use super::Exit;
use crate::cli::{Global, PromoteArgs};
use secretsync::edit::{Editor, Stored};
use secretsync::error::Error;

pub(super) fn run(g: &Global, a: PromoteArgs) -> Result<Exit, Error> {
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let m = &editor.manifest;
    m.check_envs(&[a.from.clone(), a.to.clone()])
        .map_err(|why| {
            Error::usage(
                why,
                "promote between two environments of the manifest (docs/environments.md)",
            )
        })?;
    if a.from == a.to {
        return Err(Error::usage(
            format!("--from and --to are both `{}`", a.from),
            "name two different environments",
        ));
    }
    let keys: Vec<String> = match &a.key {
        Some(k) => {
            if !m.secrets.contains_key(k) {
                return Err(Error::usage(
                    format!("no secret `{k}` in {}", g.manifest.display()),
                    "`secretsync list` shows the secrets",
                ));
            }
            vec![k.clone()]
        }
        None => m
            .secrets
            .iter()
            .filter(|(_, s)| {
                s.value_in(&a.from).is_some()
                    && s.environments.as_ref().is_none_or(|l| l.contains(&a.to))
            })
            .map(|(n, _)| n.clone())
            .collect(),
    };
    // What would change: the secrets whose value in B is not A's.
    let mut todo = Vec::new();
    for k in &keys {
        let Some(value) = editor.value_in(k, &a.from)? else {
            if a.key.is_some() {
                return Err(Error::usage(
                    format!("`{k}` has no value in `{}`", a.from),
                    format!("set one first: `secretsync set {k} --env {}`", a.from),
                ));
            }
            continue;
        };
        if editor.value_in(k, &a.to)?.as_ref() != Some(&value) {
            todo.push((k.clone(), value));
        }
    }
    if todo.is_empty() {
        if !g.quiet {
            eprintln!(
                "nothing to promote: {} already holds {}'s values",
                a.to, a.from
            );
        }
        return Ok(Exit::Ok);
    }
    if a.all && !a.yes {
        eprintln!(
            "promote from {} to {}: {}",
            a.from,
            a.to,
            todo.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !std::io::stdin().is_terminal() {
            return Err(Error::usage(
                "promote --all asks before changing several values, and standard input is not a terminal",
                "pass --yes to promote without asking",
            ));
        }
        let ok = dialoguer::Confirm::new()
            .with_prompt(format!("Promote {} value(s) to {}?", todo.len(), a.to))
            .default(false)
            .interact()
            .map_err(|e| Error::other(format!("cannot read the answer: {e}")))?;
        if !ok {
            eprintln!("nothing was promoted");
            return Ok(Exit::Ok);
        }
    }
    let recipients = editor.manifest.recipients_for(Some(&a.to)).len();
    let mut done = Vec::new();
    for (k, value) in &todo {
        if editor.store_in_env(k, &a.to, value, &[])? != Stored::Unchanged {
            done.push(k.clone());
        }
    }
    editor.save()?;
    if !g.quiet {
        for k in &done {
            eprintln!(
                "promoted `{k}` from {} to {} (encrypted to {}'s {recipients} recipient(s); the old value's fingerprint is kept under `previous`)",
                a.from, a.to, a.to
            );
        }
    }
    Ok(Exit::Ok)
}
