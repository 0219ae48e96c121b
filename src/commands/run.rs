//! `secretsync run -t TARGET -- CMD ARGS…` and `secretsync get KEY -t
//! TARGET`: the values a target receives, named as it names them, handed
//! to a command in its environment (or one printed, for scripts).
//!
//! The command inherits secretsync's environment, which holds no identity
//! and no token (src/environ.rs took them out at start-up), plus exactly
//! the values of TARGET. Nothing is printed; the exit status is the
//! command's (128 + N when a signal N ended it, as shells say).

use std::io::{IsTerminal, Write};

use super::Exit;
use crate::cli::{GetArgs, Global, RunArgs};
use secretsync::error::Error;
use secretsync::manifest::{Manifest, ValueSource};
use secretsync::secret::Secret;

/// Refuses a target the manifest does not define, naming those it does.
fn check_target(m: &Manifest, target: &str) -> Result<(), Error> {
    if m.targets.contains_key(target) {
        return Ok(());
    }
    let names: Vec<&str> = m.targets.keys().map(String::as_str).collect();
    Err(Error::usage(
        format!("--target {target}: no such target"),
        format!("targets: {}", names.join(", ")),
    ))
}

/// Every key `target` receives (as it names it) with its value, in
/// manifest order; only these secrets are decrypted.
fn values_on(
    g: &Global,
    m: &Manifest,
    target: &str,
    only: impl Fn(&str, &str) -> bool,
) -> Result<Vec<(String, Secret)>, Error> {
    let keep = |d: &secretsync::manifest::SecretDef| {
        d.targets.iter().any(|t| t == target) && only(&d.name, d.key_on(target))
    };
    let decrypted = secretsync::lifecycle::decrypt(m, g.identity.as_deref(), keep)?;
    Ok(m.secrets
        .values()
        .filter(|d| keep(d))
        .filter_map(|d| {
            let value = match &d.value {
                ValueSource::Plain(v) => Secret::new(v.clone()),
                ValueSource::Encrypted(_) => decrypted.get(&d.name)?.clone(),
            };
            Some((d.key_on(target).to_string(), value))
        })
        .collect())
}

pub(super) async fn run(g: &Global, a: RunArgs) -> Result<Exit, Error> {
    if let Some(env) = &a.env {
        return Err(Error::usage(
            format!("--env {env}: this manifest has no environments (secretsync does not support them yet)"),
            "leave out --env; each target already names where its values go",
        ));
    }
    let m = secretsync::manifest::load(&g.manifest)?;
    check_target(&m, &a.target)?;
    let values = values_on(g, &m, &a.target, |_, _| true)?;
    let (program, args) = a.command.split_first().ok_or_else(|| {
        Error::usage(
            "run needs a command",
            "secretsync run -t TARGET -- CMD ARGS…",
        )
    })?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    let mut skipped = Vec::new();
    for (key, value) in &values {
        // A keychain account may be named what no environment variable can
        // be; a NUL cannot be in the environment at all.
        if !secretsync::manifest::is_env_key(key) || value.expose().contains('\0') {
            skipped.push(key.as_str());
            continue;
        }
        cmd.env(key, value.expose());
    }
    if !skipped.is_empty() {
        // The one thing `run` says: what the command will not find.
        eprintln!(
            "secretsync run: not passed (not an environment variable name, or a value with NUL): {}",
            skipped.join(", ")
        );
    }
    let status = tokio::task::block_in_place(|| cmd.status()).map_err(|e| {
        Error::usage(
            format!("cannot run `{}`: {e}", program.to_string_lossy()),
            "check the command's name and PATH",
        )
    });
    // The values are dropped (and zeroed) as soon as the child is done.
    drop(cmd);
    drop(values);
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(Exit::Status(u8::try_from(code).unwrap_or(1)))
}

/// `get KEY -t TARGET`: KEY as the target names it, or the secret's name.
pub(super) fn get_on(g: &Global, a: &GetArgs, target: &str) -> Result<Exit, Error> {
    let m = secretsync::manifest::load(&g.manifest)?;
    check_target(&m, target)?;
    let on_target = |name: &str, key: &str| key == a.key || name == a.key;
    // The target's own name wins over a secret of that name renamed there.
    let mut found = values_on(g, &m, target, |_, key| key == a.key)?;
    if found.is_empty() {
        found = values_on(g, &m, target, on_target)?;
    }
    let Some((_, value)) = found.into_iter().next() else {
        let keys: Vec<&str> = m
            .secrets
            .values()
            .filter(|d| d.targets.iter().any(|t| t == target))
            .map(|d| d.key_on(target))
            .collect();
        return Err(Error::usage(
            format!("target `{target}` receives no key `{}`", a.key),
            if keys.is_empty() {
                "no secret of the manifest goes there".to_string()
            } else {
                format!("its keys: {}", keys.join(", "))
            },
        ));
    };
    let mut out = std::io::stdout().lock();
    let newline = if out.is_terminal() { "\n" } else { "" };
    out.write_all(value.expose().as_bytes())
        .and_then(|()| out.write_all(newline.as_bytes()))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))?;
    Ok(Exit::Ok)
}
