//! `secretsync import --from TARGET`: adopt the values a target holds.

use super::Exit;
use crate::cli::{Global, ImportArgs};
use secretsync::edit::{Editor, Storage, Stored};
use secretsync::engine::{Engine, Options};
use secretsync::error::Error;
use secretsync::targets::Observation;

pub(super) async fn run(g: &Global, mut a: ImportArgs) -> Result<Exit, Error> {
    // The target is read before the edit lock is taken: a slow target does
    // not hold up other edits.
    let manifest = secretsync::manifest::load(&g.manifest)?;
    // `--from TARGET --env ENV` is `--from TARGET@ENV` (#27).
    if let Some(env) = a.env.take() {
        super::chosen_envs(&manifest, std::slice::from_ref(&env))?;
        a.from = secretsync::manifest::environments::instance_name(&a.from, &env);
    }
    // A target in one environment only has one instance: it is meant.
    let instances: Vec<String> = manifest
        .instances
        .iter()
        .filter(|(_, i)| i.target == a.from)
        .map(|(n, _)| n.clone())
        .collect();
    if let [only] = instances.as_slice() {
        a.from = only.clone();
    }
    let Some(spec) = manifest.targets.get(&a.from).cloned() else {
        let names: Vec<&str> = manifest.targets.keys().map(String::as_str).collect();
        let hint = if instances.len() > 1 {
            format!(
                "`{}` is in several environments: name one with --env ENV (or --from {}@ENV): {}",
                a.from,
                a.from,
                instances.join(", ")
            )
        } else {
            format!("targets: {}", names.join(", "))
        };
        return Err(Error::usage(
            format!("--from {}: no such target", a.from),
            hint,
        ));
    };
    let opts = Options {
        targets: vec![a.from.clone()],
        envs: Vec::new(),
        parallelism: 1,
        ssh_persist: None,
        list_unmanaged: true,
        manifest: g.manifest.clone(),
        identity: g.identity.clone(),
    };
    let engine = Engine::targets_only(&opts, manifest)?;
    let slot = engine
        .slot(&a.from)
        .ok_or_else(|| Error::other("the target is not part of this run"))?;
    let description = slot.describe();
    if let Err(e) = &slot.target {
        return Err(Error::Other {
            message: format!("target `{}`: {}", a.from, e.message),
            hint: e.hint.clone(),
        });
    }
    let observed = engine.read_target(&a.from, &a.keys).await;
    // Which values are the platform's wiring (a reference), not secrets.
    let references: Vec<String> = match (&observed, &slot.target) {
        (Ok(o), Ok(t)) => o
            .entries
            .iter()
            .filter(|(_, v)| matches!(v, Observation::Value(v) if t.is_reference(v)))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    engine.close().await;
    let observed = observed.map_err(|e| Error::Other {
        message: format!(
            "cannot read target `{}` ({description}): {}",
            a.from, e.message
        ),
        hint: e.hint,
    })?;
    if a.keys.is_empty() && !observed.complete {
        return Err(Error::usage(
            format!("target `{}` cannot list its keys", a.from),
            "name the keys to import: secretsync import --from TARGET KEY…",
        ));
    }
    for note in &observed.notes {
        eprintln!("note: {note}");
    }
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    if editor.manifest.targets.get(&a.from) != Some(&spec) {
        return Err(Error::other(format!(
            "target `{}` changed in {} while it was read: nothing was imported",
            a.from,
            super::shown(&g.manifest)
        )));
    }
    // From an environment's instance (`TARGET@ENV`, #27): values are that
    // environment's, encrypted to its recipients; a new secret lists the target.
    let env = editor.manifest.instances.get(&a.from).cloned();
    let mut now_encrypted: Vec<String> = Vec::new();
    let (mut imported, mut skipped, mut unreadable, mut absent) = (vec![], vec![], vec![], vec![]);
    let mut unholdable = vec![];
    let mut same: Vec<String> = vec![];
    let mut plain_references: Vec<String> = vec![];
    let wanted: Vec<String> = if a.keys.is_empty() {
        observed.entries.keys().cloned().collect()
    } else {
        a.keys.clone()
    };
    for key in wanted {
        // A key renamed on this target belongs to its secret.
        let name = editor
            .manifest
            .secrets
            .values()
            .find(|s| s.targets.contains(&a.from) && s.key_on(&a.from) == key)
            .map_or(key.clone(), |s| s.name.clone());
        let has_value = match &env {
            Some(i) => editor
                .manifest
                .secrets
                .get(&name)
                .is_some_and(|s| s.value_in(&i.env).is_some()),
            None => editor.manifest.secrets.contains_key(&name),
        };
        match observed.entries.get(&key) {
            None => absent.push(key),
            Some(Observation::Sealed) => unreadable.push(key),
            Some(Observation::Value(v)) if has_value && !a.overwrite => {
                let current = match &env {
                    Some(i) => editor.value_in(&name, &i.env)?,
                    None => editor.value_of(&name)?,
                };
                if current.as_ref() == Some(v) {
                    same.push(name)
                } else {
                    skipped.push(name)
                }
            }
            Some(Observation::Value(v)) => {
                let targets = if editor.manifest.secrets.contains_key(&name) {
                    vec![]
                } else {
                    vec![a.from.clone()]
                };
                // A value some target of the secret cannot hold is left out
                // (the others are imported), not found at plan time.
                let refused = secretsync::holdable::refusals(&editor.manifest, &name, &targets, v);
                if !refused.is_empty() {
                    for (t, why) in refused {
                        eprintln!(
                            "not imported: `{name}`: target `{t}` cannot hold its value: {why}"
                        );
                    }
                    unholdable.push(name);
                    continue;
                }
                if let Some(i) = &env {
                    let targets = if editor.manifest.secrets.contains_key(&name) {
                        vec![]
                    } else {
                        vec![i.target.clone()]
                    };
                    if editor.store_in_env(&name, &i.env, v, &targets)? != Stored::Unchanged {
                        imported.push(name);
                    } else {
                        same.push(name);
                    }
                    continue;
                }
                // A reference is wiring the platform resolves, not a secret:
                // kept in clear, as named.
                if references.contains(&key) {
                    if editor.store_as(&name, v, &targets, Storage::Plain)? != Stored::Unchanged {
                        plain_references.push(name.clone());
                        imported.push(name);
                    }
                    continue;
                }
                // A target's value is a secret until someone says otherwise:
                // always stored encrypted, also over a plain value (said below).
                let was_plain = editor.is_plain(&name);
                if editor.store_as(&name, v, &targets, Storage::Encrypted)? != Stored::Unchanged {
                    if was_plain {
                        now_encrypted.push(name.clone());
                    }
                    imported.push(name);
                } else {
                    same.push(name);
                }
            }
        }
    }
    if !imported.is_empty() {
        editor.save()?;
    }
    if !g.quiet {
        if imported.is_empty() {
            eprintln!("imported nothing from `{}`", a.from);
        } else {
            eprintln!(
                "imported {} secret(s) from `{}`: {}",
                imported.len(),
                a.from,
                imported.join(", ")
            );
        }
    }
    if !same.is_empty() && !g.quiet {
        eprintln!(
            "skipped {} already in the manifest with the same value (nothing to import): {}",
            same.len(),
            same.join(", ")
        );
    }
    if !plain_references.is_empty() && !g.quiet {
        eprintln!(
            "stored as plain values (references the platform resolves, not secrets): {}",
            plain_references.join(", ")
        );
    }
    if !now_encrypted.is_empty() && !g.quiet {
        eprintln!(
            "stored encrypted, though plain before: {} (to keep a value in clear: `secretsync set KEY --plain`)",
            now_encrypted.join(", ")
        );
    }
    if !skipped.is_empty() && !g.quiet {
        eprintln!(
            "skipped {} already in the manifest (use --overwrite): {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    if !unreadable.is_empty() && !g.quiet {
        eprintln!(
            "skipped {} sealed (their value cannot be read): {}",
            unreadable.len(),
            unreadable.join(", ")
        );
    }
    if !absent.is_empty() {
        eprintln!("not on the target: {}", absent.join(", "));
        return Ok(Exit::Failed);
    }
    if !unholdable.is_empty() {
        return Ok(Exit::Failed);
    }
    Ok(Exit::Ok)
}
