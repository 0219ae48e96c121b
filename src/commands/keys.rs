//! `secretsync set`, `recipients` and `rekey`: edits of the
//! manifest's values and recipients. Values never come from argv.

use std::io::{IsTerminal, Read};

use super::{check_targets, say, Exit};
use crate::cli::{Global, RecipientsAction, SetArgs};
use secretsync::crypto;
use secretsync::edit::{Editor, Storage, Stored};
use secretsync::error::Error;
use secretsync::secret::Secret;

/// Refuses, before any value is read or edit made, what the edit would
/// refuse later: a bad name, unknown targets, `-t` that differs from an
/// existing secret's targets.
fn precheck(g: &Global, key: &str, targets: &[String]) -> Result<(), Error> {
    let m = secretsync::manifest::load(&g.manifest)?;
    check_targets(&m, key, targets)
}

pub(super) fn set(g: &Global, a: SetArgs) -> Result<Exit, Error> {
    precheck(g, &a.key, &a.targets)?;
    let value = if a.stdin {
        // Read in chunks into a buffer that zeroes what it leaves when it
        // grows (read_to_string would leave copies behind).
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        let mut chunk = zeroize::Zeroizing::new([0u8; 8192]);
        let mut stdin = std::io::stdin().lock();
        loop {
            let n = stdin
                .read(&mut chunk[..])
                .map_err(|e| Error::other(format!("cannot read the value from stdin: {e}")))?;
            if n == 0 {
                break;
            }
            if bytes.len() + n > bytes.capacity() {
                let mut bigger = zeroize::Zeroizing::new(Vec::with_capacity(
                    (bytes.len() + n).max(2 * bytes.capacity()),
                ));
                bigger.extend_from_slice(&bytes);
                bytes = bigger;
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        let text = zeroize::Zeroizing::new(
            String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
                drop(zeroize::Zeroizing::new(e.into_bytes()));
                Error::usage(
                    "the value on stdin is not UTF-8 text",
                    "secretsync stores text; encode binary values (base64) first",
                )
            })?,
        );
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        Secret::new(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Error::usage(
                "set reads the value from a hidden prompt, and standard input is not a terminal",
                "pipe the value in with --stdin (never put it on the command line)",
            ));
        }
        Secret::new(
            dialoguer::Password::new()
                .with_prompt(format!("Value for {}", a.key))
                .with_confirmation("Repeat it", "the two entries differ")
                .allow_empty_password(true)
                .interact()
                .map_err(|e| Error::other(format!("cannot read the value: {e}")))?,
        )
    };
    if value.expose().is_empty() && !a.allow_empty {
        return Err(Error::usage(
            format!("the value for `{}` is empty, so nothing was changed", a.key),
            "to store an empty value on purpose, pass --allow-empty",
        ));
    }
    // The lock is taken only now: a prompt may take a while.
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    check_targets(&editor.manifest, &a.key, &a.targets)?;
    let plain_now = editor.is_plain(&a.key) && a.env.is_none();
    let storage = if a.plain {
        Storage::Plain
    } else if a.encrypt {
        Storage::Encrypted
    } else {
        Storage::Keep
    };
    let stored = match &a.env {
        Some(env) => editor.store_in_env(&a.key, env, &value, &a.targets)?,
        None => editor.store_as(&a.key, &value, &a.targets, storage)?,
    };
    if stored != Stored::Unchanged {
        editor.save()?;
    }
    say(g, &stored, &a.key, a.env.as_deref(), &g.manifest);
    if let (Some(line), false) = (
        secretsync::lifecycle::about_new_value(&value, &secretsync::lifecycle::Policy::new(0)?),
        g.quiet,
    ) {
        eprintln!("{line}");
    }
    let in_clear = storage == Storage::Plain || (plain_now && storage == Storage::Keep);
    if let (true, Some(why)) = (in_clear, secretsync::check::looks_secret(value.expose())) {
        // Said even with --quiet: the value is now in clear in the manifest.
        eprintln!(
            "warning: `{}` is stored in clear, and its value looks like a secret ({why}); if it is one, run `secretsync set {} --encrypt` (and rotate it: the clear text may be in git's history)",
            a.key, a.key
        );
    }
    if plain_now && storage == Storage::Keep && !g.quiet {
        eprintln!(
            "`{}` is kept in clear (plain); pass --encrypt to encrypt it",
            a.key
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn recipients(g: &Global, action: RecipientsAction) -> Result<Exit, Error> {
    if matches!(action, RecipientsAction::List) {
        let m = secretsync::manifest::load(&g.manifest)?;
        for r in &m.recipients {
            println!("{r}");
        }
        return Ok(Exit::Ok);
    }
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let action_kind = if matches!(action, RecipientsAction::Remove { .. }) {
        Kind::Remove
    } else {
        Kind::Add
    };
    match action {
        RecipientsAction::List => return Ok(Exit::Ok),
        RecipientsAction::Add { keys } => {
            for k in &keys {
                let r = crypto::parse_recipient(k).map_err(|why| {
                    Error::usage(
                        format!("`{k}` does not parse: {why}"),
                        "an age1… key or an \"ssh-ed25519 …\" line",
                    )
                })?;
                if editor
                    .manifest
                    .recipients
                    .iter()
                    .any(|x| x.to_string() == r.to_string())
                {
                    return Err(Error::usage(
                        format!("`{k}` is a recipient already"),
                        "nothing to add",
                    ));
                }
                editor.add_recipient(&r.to_string())?;
            }
        }
        RecipientsAction::Remove { keys } => {
            let listed: Vec<String> = editor
                .manifest
                .recipients
                .iter()
                .map(ToString::to_string)
                .collect();
            let mut gone = Vec::new();
            for k in &keys {
                let k = k.trim();
                if !listed.iter().any(|r| r == k) {
                    return Err(Error::usage(
                        format!("`{k}` is not a recipient"),
                        "`secretsync recipients list` prints them",
                    ));
                }
                if !gone.contains(&k) {
                    gone.push(k);
                }
            }
            // Refused before the edit: the manifest would be unreadable.
            if gone.len() == listed.len() {
                return Err(Error::usage(
                    "that would remove every recipient, and nobody could decrypt the manifest",
                    "add the new one first (`secretsync recipients add age1…`), then remove the old",
                ));
            }
            for k in &gone {
                editor.remove_recipient(k)?;
            }
            // Whoever runs this must still be able to decrypt afterwards.
            let left = editor.check()?.recipients;
            let probe = crypto::encrypt(&left, b"probe")?;
            if crypto::decrypt(editor.identities()?, &probe, "probe").is_err() {
                return Err(Error::usage(
                    "refusing: the identity at hand would no longer be a recipient, and nobody here could decrypt the manifest",
                    "add a recipient whose identity you hold first, or run this with that identity (--identity)",
                ));
            }
        }
    }
    let n = editor.rekey()?;
    // What a removed recipient could read stays known to them: list it.
    let readable: Vec<String> = editor
        .manifest
        .secrets
        .values()
        .filter(|s| matches!(s.value, secretsync::manifest::ValueSource::Encrypted(_)))
        .map(|s| match s.generate {
            Some(_) => format!("{}: `secretsync rotate {}`", s.name, s.name),
            None => format!(
                "{}: issued elsewhere: rotate it at its source, then `secretsync set {}`",
                s.name, s.name
            ),
        })
        .collect();
    let removed = matches!(action_kind, Kind::Remove);
    let m = editor.save()?;
    if !g.quiet {
        eprintln!(
            "{} recipient(s); re-encrypted {n} value(s) in {}",
            m.recipients.len(),
            super::shown(&g.manifest)
        );
    }
    if removed && !readable.is_empty() {
        // Said even with --quiet: re-encryption does not take back what was readable.
        eprintln!(
            "the removed recipient(s) could read these {} secret(s); rotate them and apply:\n  {}",
            readable.len(),
            readable.join("\n  ")
        );
    }
    Ok(Exit::Ok)
}

enum Kind {
    Add,
    Remove,
}

pub(super) fn rekey(g: &Global) -> Result<Exit, Error> {
    let mut editor = Editor::open(&g.manifest, g.identity.as_deref())?;
    let n = editor.rekey()?;
    editor.save()?;
    if !g.quiet {
        eprintln!(
            "re-encrypted {n} value(s) to the recipients of {}",
            super::shown(&g.manifest)
        );
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Charset;

    /// A random value from the OS random source: `length` characters of
    /// `charset`, or `bytes` random bytes encoded in it.
    fn generate(charset: Charset, length: usize, bytes: Option<usize>) -> Result<Secret, Error> {
        Ok(super::super::spec_of(charset, length, bytes)?.make())
    }

    #[test]
    fn generated_values_follow_length_and_charset() {
        for (cs, allowed) in [
            (
                Charset::Alnum,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            ),
            (Charset::Hex, "0123456789abcdef"),
        ] {
            let v = generate(cs, 300, None).unwrap();
            assert_eq!(v.len(), 300);
            assert!(v.expose().chars().all(|c| allowed.contains(c)));
            // 300 draws cover most of a 16- or 62-letter alphabet: not a constant.
            let distinct: std::collections::BTreeSet<char> = v.expose().chars().collect();
            assert!(
                distinct.len() > allowed.len() / 2,
                "{cs:?}: {}",
                distinct.len()
            );
        }
        let a = generate(Charset::Ascii, 500, None).unwrap();
        assert!(!a.expose().contains(['"', '\'', '\\', '$', '`', ' ']));
        assert_ne!(
            generate(Charset::Alnum, 40, None).unwrap(),
            generate(Charset::Alnum, 40, None).unwrap()
        );
    }

    #[test]
    fn bytes_are_encoded() {
        assert_eq!(generate(Charset::Hex, 0, Some(32)).unwrap().len(), 64);
        assert_eq!(generate(Charset::Base64, 0, Some(32)).unwrap().len(), 44);
        assert_eq!(generate(Charset::Base64url, 0, Some(32)).unwrap().len(), 43);
        assert!(generate(Charset::Alnum, 0, Some(32)).is_err());
    }
}
