//! `rotate KEY`, `rotate --due` (every secret whose rotation policy has
//! elapsed and that secretsync makes) and `rotate KEY --from-command CMD`
//! (a value a provider mints). The command
//! comes from secretsync's own command line, never from the manifest (a
//! manifest may not choose what runs: docs/security.md); its output is the
//! value, read through a pipe, never shown, logged or put in an error.

use std::io::Read;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::Exit;
use super::{say, spec_of};
use crate::cli::{Charset, Global, RotateArgs};
use secretsync::edit::Editor;
use secretsync::error::Error;
use secretsync::generate::Spec;
use secretsync::lifecycle::{self, Policy};
use secretsync::secret::Secret;

/// The most a command may print: a token, a certificate chain, not a file.
const MAX_OUTPUT: usize = 1 << 20;

/// `rotate --due`, or `rotate KEY`.
pub(super) fn rotate(g: &Global, a: RotateArgs) -> Result<Exit, Error> {
    if a.due {
        return due(g, a.dry_run);
    }
    key(g, a)
}

pub(super) fn from_command(
    g: &Global,
    mut editor: Editor,
    key: &str,
    targets: &[String],
    cmd: &str,
    env: Option<&str>,
) -> Result<Exit, Error> {
    if editor.is_plain(key) {
        return Err(Error::usage(
            format!(
                "`{key}` is plain configuration (stored in clear); --from-command stores secrets"
            ),
            format!("to turn it into an encrypted secret first: `secretsync set {key} --encrypt`"),
        ));
    }
    // Everything that could refuse the edit is checked before the command
    // runs: a provider may revoke the old token when it mints the new one.
    let policy = Policy::new(lifecycle::DEFAULT_WARN_DAYS)?;
    editor.fingerprinter()?;
    let value = run(cmd)?;
    let lost = |e: Error| {
        Error::Other {
        message: format!("{e}\nthe command ran, but the value it printed was not stored"),
        hint: Some(format!(
            "fix the cause and run `secretsync rotate {key} --from-command` again; if the provider revoked the previous value, the targets still hold that one"
        )),
    }
    };
    let stored = match env {
        Some(e) => editor.store_in_env(key, e, &value, targets),
        None => editor.store(key, &value, targets),
    }
    .map_err(lost)?;
    editor.save().map_err(lost)?;
    say(g, &stored, key, env, &g.manifest);
    if let Some(line) = lifecycle::about_new_value(&value, &policy) {
        eprintln!("{line}");
    }
    Ok(Exit::Ok)
}

/// Runs `cmd` with `sh -c` and returns what it printed on stdout, less one
/// trailing newline. Its stdin is empty and its stderr is the user's; the
/// environment is this process's, which holds no identity or token
/// (src/environ.rs took them out at start-up).
fn run(cmd: &str) -> Result<Secret, Error> {
    let refused = |why: String| {
        Error::usage(
            format!("the command given with --from-command {why}, so nothing was changed"),
            "run it by hand to see why; secretsync never shows what it prints on stdout",
        )
    };
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::other(format!("cannot start /bin/sh for --from-command: {e}")))?;
    let mut out = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let mut too_long = false;
    if let Some(mut stdout) = child.stdout.take() {
        loop {
            let n = match stdout.read(&mut chunk[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::other(format!(
                        "cannot read the output of --from-command: {}",
                        e.kind()
                    )));
                }
            };
            if out.len() + n > MAX_OUTPUT {
                too_long = true;
                let _ = child.kill();
                break;
            }
            if out.len() + n > out.capacity() {
                // Grow into a fresh buffer so that no copy is left unzeroed.
                let mut bigger = Zeroizing::new(Vec::with_capacity(2 * (out.len() + n)));
                bigger.extend_from_slice(&out);
                out = bigger;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::other(format!("cannot wait for --from-command: {e}")))?;
    if too_long {
        return Err(refused(format!(
            "printed more than {} KiB",
            MAX_OUTPUT >> 10
        )));
    }
    if !status.success() {
        return Err(refused(match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        }));
    }
    let text = Zeroizing::new(String::from_utf8(std::mem::take(&mut *out)).map_err(|e| {
        drop(Zeroizing::new(e.into_bytes()));
        refused("printed something that is not UTF-8 text".into())
    })?);
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(refused("printed nothing".into()));
    }
    Ok(Secret::new(trimmed.to_string()))
}

/// `rotate KEY`: a new random value made as the secret's `generate:` says
/// (or as the flags say, which then becomes its `generate:`). A value
/// without a spec that does not look random (a URL, JSON, a list, a
/// provider's key) is refused unless `--generate SPEC` says otherwise:
/// random text in its place would break whatever reads it.
pub(super) fn key(g: &Global, a: RotateArgs) -> Result<Exit, Error> {
    let key = a.key.clone().ok_or_else(|| {
        Error::usage(
            "rotate needs the secret's name, or --due",
            "secretsync rotate KEY",
        )
    })?;
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let def = editor.manifest.secrets.get(&key).cloned();
    if def.is_none() && a.targets.is_empty() {
        return Err(Error::usage(
            format!("no secret `{key}` to rotate"),
            "to create it, name its targets with --target",
        ));
    }
    super::check_targets(&editor.manifest, &key, &a.targets)?;
    if a.env.is_none() && def.as_ref().is_some_and(|d| d.per_environment()) {
        return Err(Error::usage(
            format!("`{key}` has a value per environment"),
            format!("rotate one environment's value: `secretsync rotate {key} --env ENV`"),
        ));
    }
    if let Some(cmd) = &a.from_command {
        if a.dry_run {
            if !g.quiet {
                eprintln!("would replace `{key}` with what `--from-command` prints (not run in a dry run); nothing was changed");
            }
            return Ok(Exit::Ok);
        }
        return from_command(g, editor, &key, &a.targets, cmd, a.env.as_deref());
    }
    if editor.is_plain(&key) {
        return Err(Error::usage(
            format!(
                "`{key}` is plain configuration (stored in clear); rotate makes random secrets"
            ),
            format!("to turn it into an encrypted secret first: `secretsync set {key} --encrypt`"),
        ));
    }
    let flags = match (a.bytes, a.length, a.charset) {
        (None, None, None) => None,
        (bytes, length, charset) => Some(spec_of(
            charset.unwrap_or(Charset::Alnum),
            usize::from(length.unwrap_or(40)),
            bytes.map(usize::from),
        )?),
    };
    let recorded = def.as_ref().and_then(|d| d.generate);
    let spec = match (a.generate, flags, recorded) {
        (Some(s), _, _) => s,
        (None, flags, Some(r)) => flags.unwrap_or(r),
        (None, flags, None) => {
            let old = match &a.env {
                Some(e) => editor.value_in(&key, e)?,
                None => editor.value_of(&key)?,
            };
            if let Some(old) = &old {
                let why = if def.as_ref().is_some_and(|d| d.expires.is_some()) {
                    Some("it has `expires:`, so someone else issues it")
                } else {
                    secretsync::generate::not_random(old.expose())
                };
                if let Some(why) = why {
                    return Err(Error::usage(
                        format!("refusing to replace `{key}` with random text: {why}, and it has no `generate:` saying secretsync makes it"),
                        format!("rotate it at its source, then `secretsync set {key}` (or `secretsync rotate {key} --from-command 'CMD'`); if secretsync should make it from now on: `secretsync rotate {key} --generate chars=40,alphabet=alnum`"),
                    ));
                }
            }
            match flags {
                Some(f) => f,
                None => {
                    let (charset, length, bytes) = shape(old.as_ref());
                    spec_of(charset, length, bytes)?
                }
            }
        }
    };
    if def.as_ref().is_some_and(|d| d.expires.is_some()) {
        return Err(Error::usage(
            format!("`{key}` has `expires:` (issued by someone else), so secretsync does not make its value"),
            format!("remove its `expires:` line first if secretsync should make it from now on, or get a new value from its issuer and `secretsync set {key}`"),
        ));
    }
    if a.dry_run {
        if !g.quiet {
            eprintln!(
                "would replace `{key}` with {} (recorded as `generate: {}`); nothing was changed",
                spec.describe(),
                spec.yaml()
            );
        }
        return Ok(Exit::Ok);
    }
    let value = spec.make();
    let stored = match &a.env {
        Some(e) => editor.store_in_env(&key, e, &value, &a.targets)?,
        None => editor.store(&key, &value, &a.targets)?,
    };
    if recorded != Some(spec) {
        editor.set_generate(&key, &spec)?;
    }
    editor.save()?;
    say(g, &stored, &key, a.env.as_deref(), &g.manifest);
    Ok(Exit::Ok)
}

/// `rotate --due`: every secret whose `rotate_every` has elapsed and that
/// secretsync makes (`generate:`) is given a new value as its spec says;
/// the others are listed with what to do: they were issued elsewhere, and
/// random text in their place would break whatever reads them.
pub(super) fn due(g: &Global, dry_run: bool) -> Result<Exit, Error> {
    let policy = Policy::new(lifecycle::DEFAULT_WARN_DAYS)?;
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let m = &editor.manifest;
    // Each value is judged on its own: a value per environment falls due on
    // that environment's dates and period (#27).
    let mut due: Vec<(String, Option<String>, Option<Spec>)> = Vec::new();
    for d in m.secrets.values() {
        let envs: Vec<Option<String>> = if d.per_environment() {
            d.values.keys().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        for env in envs {
            let view = m.lifecycle_view(d, env.as_deref());
            if lifecycle::assess(m, &view, None, &policy)
                .rotation
                .is_some_and(|r| r.overdue)
            {
                due.push((d.name.clone(), env, d.generate));
            }
        }
    }
    let mut rotated = Vec::new();
    let mut left = Vec::new();
    for (name, env, spec) in &due {
        let (shown, env_flag) = match env {
            Some(e) => (format!("{name} ({e})"), format!(" --env {e}")),
            None => (name.clone(), String::new()),
        };
        match spec {
            Some(spec) => {
                if !dry_run {
                    let value = spec.make();
                    let stored = match env {
                        None => editor.store(name, &value, &[])?,
                        Some(e) => editor.store_in_env(name, e, &value, &[])?,
                    };
                    say(g, &stored, name, env.as_deref(), &g.manifest);
                }
                rotated.push(format!("{shown} ({})", spec.describe()));
            }
            None => left.push(format!(
                "{shown}: issued elsewhere: rotate it at its source, then `secretsync set {name}{env_flag}` (or `secretsync rotate {name}{env_flag} --from-command 'CMD'`)"
            )),
        }
    }
    if !rotated.is_empty() && !dry_run {
        editor.save()?;
    }
    if !g.quiet {
        if due.is_empty() {
            eprintln!("no secret is due for rotation");
        } else {
            eprintln!(
                "{} {} secret(s) due for rotation{}{}",
                if dry_run { "would rotate" } else { "rotated" },
                rotated.len(),
                if rotated.is_empty() { "" } else { ": " },
                rotated.join(", ")
            );
        }
        if dry_run {
            eprintln!("nothing was changed (dry run)");
        } else if !rotated.is_empty() {
            eprintln!("review with `secretsync plan`, then `secretsync apply`");
        }
    }
    if !left.is_empty() {
        // Said even with --quiet: these stay due.
        eprintln!(
            "not rotated, {} secret(s) without `generate:` (secretsync does not make them):\n  {}",
            left.len(),
            left.join("\n  ")
        );
    }
    Ok(Exit::Ok)
}

/// The alphabet and length of a value, for a new one like it: the smallest
/// alphabet holding all its characters, at least 16 characters; padded
/// base64 is made of random bytes again.
fn shape(value: Option<&Secret>) -> (Charset, usize, Option<usize>) {
    let Some(v) = value.map(Secret::expose).filter(|v| !v.is_empty()) else {
        return (Charset::Alnum, 40, None);
    };
    let len = v.chars().count().clamp(16, 4096);
    let all = |f: fn(char) -> bool| v.chars().all(f);
    if all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        (Charset::Hex, len, None)
    } else if all(|c| c.is_ascii_alphanumeric()) {
        (Charset::Alnum, len, None)
    } else if all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        (Charset::Base64url, len, None)
    } else if v.ends_with('=') && all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
        // Padded base64 of n bytes is 4 * ceil(n / 3) characters.
        let pad = v.chars().rev().take_while(|&c| c == '=').count();
        let bytes = (v.len() / 4 * 3).saturating_sub(pad).clamp(8, 4096);
        (Charset::Base64, 0, Some(bytes))
    } else if all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
        (Charset::Base64, len, None)
    } else {
        (Charset::Ascii, len, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_value_keeps_the_shape_of_the_old() {
        let s = |v: &str| shape(Some(&Secret::new(v.into())));
        assert_eq!(s(&"ab12".repeat(8)), (Charset::Hex, 32, None));
        assert_eq!(s(&"aZ9".repeat(10)), (Charset::Alnum, 30, None));
        assert_eq!(s("short"), (Charset::Alnum, 16, None));
        assert_eq!(s(&"a-_".repeat(10)), (Charset::Base64url, 30, None));
        // 32 bytes, padded base64: 44 characters with one `=`.
        assert_eq!(
            s("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="),
            (Charset::Base64, 0, Some(32))
        );
        assert_eq!(s("a!b#c%d&e(f)g*h+i"), (Charset::Ascii, 17, None));
        assert_eq!(shape(None), (Charset::Alnum, 40, None));
    }
}
