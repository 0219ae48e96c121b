//! `secretsync get KEY`: the one command that prints a value.

use std::io::{IsTerminal, Write};

use super::Exit;
use crate::cli::{GetArgs, Global};
use secretsync::crypto;
use secretsync::error::Error;
use secretsync::manifest::{self, ValueSource};

pub(super) fn run(g: &Global, a: GetArgs) -> Result<Exit, Error> {
    if let Some(t) = &a.target {
        return super::run::get_on(g, &a, t);
    }
    let m = manifest::load(&g.manifest)?;
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
    let mut out = std::io::stdout().lock();
    let newline = if out.is_terminal() { "\n" } else { "" };
    out.write_all(value.expose().as_bytes())
        .and_then(|()| out.write_all(newline.as_bytes()))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))?;
    Ok(Exit::Ok)
}
