//! `secretsync run -t TARGET -- CMD ARGS…`: the values a target receives,
//! named as it names them, handed to a command in its environment.
//!
//! The command inherits secretsync's environment, which holds no identity
//! and no token (src/environ.rs took them out at start-up), plus exactly
//! the values of TARGET. Nothing is printed; the exit status is the
//! command's (128 + N when a signal N ended it, as shells say).

use super::{check_target, values_on, Exit};
use crate::cli::{Global, RunArgs};
use secretsync::error::Error;

pub(super) async fn run(g: &Global, a: RunArgs) -> Result<Exit, Error> {
    let m = secretsync::manifest::load(&g.manifest)?;
    // With environments: the target's instance in `--env` (or its own).
    let (m, target) = super::env_scope(m, a.env.as_deref(), Some(&a.target))?;
    let target = target.unwrap_or_else(|| a.target.clone());
    check_target(&m, &target)?;
    let values = values_on(g, &m, &target, |_, _| true)?;
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
