//! `secretsync get KEY`: the one command that prints a value.

use std::io::{IsTerminal, Write};

use super::{check_target, values_on, Exit};
use crate::cli::{GetArgs, Global};
use secretsync::crypto;
use secretsync::error::Error;
use secretsync::manifest::{self, ValueSource};

pub(super) fn run(g: &Global, a: GetArgs) -> Result<Exit, Error> {
    if let Some(t) = &a.target {
        return get_on(g, &a, t);
    }
    let m = manifest::load(&g.manifest)?;
    if a.env.is_none() && m.secrets.get(&a.key).is_some_and(|d| d.per_environment()) {
        return Err(Error::usage(
            format!("`{}` has a value per environment", a.key),
            format!(
                "choose one: --env {}",
                m.environments
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(" or --env ")
            ),
        ));
    }
    let (m, _) = super::env_scope(m, a.env.as_deref(), None)?;
    let Some(def) = m.secrets.get(&a.key) else {
        return Err(Error::usage(
            format!("no secret `{}` in {}", a.key, g.manifest.display()),
            "the name is the key under `secrets:` in the manifest",
        ));
    };
    let value = match &def.value {
        ValueSource::Plain(v) => secretsync::secret::Secret::new(v.clone()),
        ValueSource::Encrypted(armored) => {
            let ids = crypto::find_identities(g.identity.as_deref())?;
            crypto::decrypt(&ids, armored, &format!("secret `{}`", a.key))?
        }
    };
    print_value(&value)
}

/// `get KEY -t TARGET`: KEY as the target names it, or the secret's name.
fn get_on(g: &Global, a: &GetArgs, target: &str) -> Result<Exit, Error> {
    let m = secretsync::manifest::load(&g.manifest)?;
    let (m, instance) = super::env_scope(m, a.env.as_deref(), Some(target))?;
    let target = instance.as_deref().unwrap_or(target);
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
    print_value(&value)
}

/// The one place a value is printed: bare on a pipe (for scripts), with a
/// newline on a terminal.
fn print_value(value: &secretsync::secret::Secret) -> Result<Exit, Error> {
    let mut out = std::io::stdout().lock();
    let newline = if out.is_terminal() { "\n" } else { "" };
    out.write_all(value.expose().as_bytes())
        .and_then(|()| out.write_all(newline.as_bytes()))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))?;
    Ok(Exit::Ok)
}
