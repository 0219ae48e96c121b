//! `secretsync unset`, `targets add|remove` and `target list|add|remove`:
//! the edits of the manifest's structure, comment-preserving like `set`.

use super::Exit;
use crate::cli::{Global, KnownHostsChoice, TargetAction, TargetAddArgs, TargetsAction, UnsetArgs};
use secretsync::edit::{yaml_quote, Editor};
use secretsync::error::Error;

pub(super) fn unset(g: &Global, a: UnsetArgs) -> Result<Exit, Error> {
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let mut places = Vec::new();
    for key in &a.keys {
        if let Some(s) = editor.manifest.secrets.get(key) {
            places.push(format!("`{key}` was on {}", s.targets.join(", ")));
        }
        editor.unset(key)?;
    }
    editor.save()?;
    if !g.quiet {
        eprintln!(
            "removed {} from {}; the value's fingerprint is kept under `removed:`",
            a.keys
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            super::shown(&g.manifest)
        );
        eprintln!(
            "where a target still holds it ({}), delete it there, or let `prune: true` do it at the next apply",
            places.join("; ")
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn targets(g: &Global, action: TargetsAction) -> Result<Exit, Error> {
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let (key, new, verb) = match &action {
        TargetsAction::Add { key, targets } => {
            let Some(s) = editor.manifest.secrets.get(key) else {
                return Err(no_secret(key));
            };
            let mut list = s.listed.clone();
            for t in targets {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
            (key, list, "added to")
        }
        TargetsAction::Remove { key, targets } => {
            let Some(s) = editor.manifest.secrets.get(key) else {
                return Err(no_secret(key));
            };
            for t in targets {
                if !s.listed.contains(t) {
                    return Err(Error::usage(
                        format!("`{key}` is not deployed to `{t}`"),
                        format!("its targets: {}", s.listed.join(", ")),
                    ));
                }
            }
            let list: Vec<String> = s
                .targets
                .iter()
                .filter(|t| !targets.contains(t))
                .cloned()
                .collect();
            (key, list, "removed from")
        }
    };
    let changed = editor.set_targets(key, &new)?;
    if changed {
        editor.save()?;
    }
    if !g.quiet {
        if changed {
            eprintln!(
                "targets {verb} `{key}`: now [{}] in {}",
                new.join(", "),
                super::shown(&g.manifest)
            );
        } else {
            eprintln!(
                "`{key}` already has targets [{}]: unchanged",
                new.join(", ")
            );
        }
    }
    Ok(Exit::Ok)
}

fn no_secret(key: &str) -> Error {
    Error::usage(
        format!("no secret `{key}`"),
        "`secretsync set KEY --target T` adds one",
    )
}

pub(super) fn target(g: &Global, action: TargetAction) -> Result<Exit, Error> {
    match action {
        TargetAction::List => {
            let m = secretsync::manifest::load(&g.manifest)?;
            let ctx = secretsync::targets::Context::new(m.dir());
            for (name, spec) in &m.targets {
                let what = spec
                    .build(name, &ctx)
                    .map(|t| t.describe())
                    .unwrap_or_else(|e| e.message);
                println!("{name}\t{}\t{what}", spec.type_name());
            }
            Ok(Exit::Ok)
        }
        TargetAction::Remove { name } => {
            let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
            editor.remove_target(&name)?;
            editor.save()?;
            if !g.quiet {
                eprintln!("target `{name}` removed from {}", super::shown(&g.manifest));
            }
            Ok(Exit::Ok)
        }
        TargetAction::Add(a) => {
            if a.set.iter().any(|(f, _)| f == "on_change") {
                return Err(Error::usage(
                    "`on_change` is not set from the command line",
                    "write it in the manifest, where reviewers see the command a host will run",
                ));
            }
            let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
            editor.manifest.check_envs(&a.envs).map_err(|why| {
                Error::usage(why, secretsync::manifest::environments::DEFINED_HINT)
            })?;
            let fields = fields(&a);
            editor.add_target(&a.name, &fields)?;
            // A missing or misplaced field is the user's, not the editor's:
            // say it as the manifest would.
            editor.check_input().map_err(|e| Error::Usage {
                message: format!("target `{}` was not added: {e}", a.name),
                hint: Some("see docs/manifest.md for the fields each type of target takes".into()),
            })?;
            editor.save()?;
            if !g.quiet {
                eprintln!(
                    "target `{}` ({}) added to {}",
                    a.name,
                    fields[0].1,
                    super::shown(&g.manifest)
                );
            }
            Ok(Exit::Ok)
        }
    }
}

/// The target's fields as YAML, in the order docs/manifest.md lists them.
fn fields(a: &TargetAddArgs) -> Vec<(&str, String)> {
    let mut f: Vec<(&str, String)> = vec![("type", a.kind.clone())];
    let mut s = |k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            f.push((k, yaml_quote(v)));
        }
    };
    s("host", &a.host);
    s("path", &a.path);
    s("project", &a.project);
    s("environment", &a.environment);
    s("service", &a.service);
    s("keychain", &a.keychain);
    s("identity_file", &a.identity_file);
    s("known_hosts_file", &a.known_hosts_file);
    s("connect_timeout", &a.connect_timeout);
    s("token_env", &a.token_env);
    s("token_kind", &a.token_kind);
    if let Some(p) = a.port {
        f.push(("port", p.to_string()));
    }
    if let Some(k) = a.known_hosts {
        f.push((
            "known_hosts",
            match k {
                KnownHostsChoice::Strict => "strict",
                KnownHostsChoice::AcceptNew => "accept-new",
            }
            .into(),
        ));
    }
    for (flag, name) in [
        (a.sudo, "sudo"),
        (a.create, "create"),
        (a.prune, "prune"),
        (a.skip_deploys, "skip_deploys"),
        (a.overwrite_sealed, "overwrite_sealed"),
    ] {
        if flag {
            f.push((name, "true".into()));
        }
    }
    for (field, value) in &a.set {
        f.push((field, yaml_quote(value)));
    }
    // Names of the manifest's environments (checked before): plain words.
    if !a.envs.is_empty() {
        f.push(("environments", format!("[{}]", a.envs.join(", "))));
    }
    f
}
