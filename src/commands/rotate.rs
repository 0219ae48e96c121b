//! `rotate --due` (every secret whose rotation policy has elapsed) and
//! `rotate KEY --from-command CMD` (a value a provider mints). The command
//! comes from secretsync's own command line, never from the manifest (a
//! manifest may not choose what runs: docs/security.md); its output is the
//! value, read through a pipe, never shown, logged or put in an error.

use std::io::Read;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::keys::{generate, say};
use super::Exit;
use crate::cli::{Charset, Global};
use secretsync::edit::Editor;
use secretsync::error::Error;
use secretsync::lifecycle::{self, Policy};
use secretsync::secret::Secret;

/// The most a command may print: a token, a certificate chain, not a file.
const MAX_OUTPUT: usize = 1 << 20;

pub(super) fn from_command(
    g: &Global,
    mut editor: Editor,
    key: &str,
    targets: &[String],
    cmd: &str,
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
    let stored = editor.store(key, &value, targets).map_err(lost)?;
    editor.save().map_err(lost)?;
    say(g, &stored, key, &g.manifest);
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

/// `rotate --due`: every secret whose `rotate_every` has elapsed is given a
/// new random value, if secretsync can make it; those issued by someone
/// else (a JWT, a certificate, an `expires:` date) or kept in clear are
/// listed with what to do.
pub(super) fn due(g: &Global) -> Result<Exit, Error> {
    let policy = Policy::new(lifecycle::DEFAULT_WARN_DAYS)?;
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let m = &editor.manifest;
    let values = lifecycle::decrypt(m, g.identity.as_deref(), |d| {
        lifecycle::assess(m, d, None, &policy)
            .rotation
            .is_some_and(|r| r.overdue)
    })?;
    let statuses = lifecycle::assess_all(m, &values, &policy, |d| {
        lifecycle::assess(m, d, None, &policy)
            .rotation
            .is_some_and(|r| r.overdue)
    });
    let mut rotated = Vec::new();
    let mut left = Vec::new();
    for s in &statuses {
        if !s.encrypted {
            left.push(format!(
                "{}: plain configuration; set it with `secretsync set {}`",
                s.secret, s.secret
            ));
        } else if s.issued {
            left.push(format!(
                "{}: issued by someone else; get a new value from its issuer, then `secretsync rotate {} --from-command 'CMD'` (or `secretsync set {}`)",
                s.secret, s.secret, s.secret
            ));
        } else {
            let (charset, length, bytes) = shape(values.get(&s.secret));
            let value = generate(charset, length, bytes)?;
            let stored = editor.store(&s.secret, &value, &[])?;
            say(g, &stored, &s.secret, &g.manifest);
            rotated.push(s.secret.clone());
        }
    }
    drop(values);
    if !rotated.is_empty() {
        editor.save()?;
    }
    if !g.quiet {
        if statuses.is_empty() {
            eprintln!("no secret is due for rotation");
        } else {
            eprintln!(
                "rotated {} secret(s) due for rotation{}{}",
                rotated.len(),
                if rotated.is_empty() { "" } else { ": " },
                rotated.join(", ")
            );
        }
        if !rotated.is_empty() {
            eprintln!("review with `secretsync plan`, then `secretsync apply`");
        }
    }
    if !left.is_empty() {
        // Said even with --quiet: these stay due.
        eprintln!(
            "not rotated, {} secret(s) secretsync cannot generate:\n  {}",
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
