//! `secretsync compare A B`: what differs between two environments (#27).

use super::{emit, Exit};
use crate::cli::{CompareArgs, Format, Global};
use secretsync::compare;
use secretsync::crypto::{self, Fingerprinter};
use secretsync::error::Error;

pub(super) fn run(g: &Global, a: CompareArgs) -> Result<Exit, Error> {
    let m = secretsync::manifest::load(&g.manifest)?;
    if !m.has_environments() {
        return Err(Error::usage(
            format!(
                "{} has no `environments:`, so there is nothing to compare",
                g.manifest.display()
            ),
            "define environments first (docs/environments.md)",
        ));
    }
    m.check_envs(&[a.a.clone(), a.b.clone()]).map_err(|why| {
        Error::usage(
            why.replace("--env ", ""),
            "compare two environments of the manifest",
        )
    })?;
    if a.a == a.b {
        return Err(Error::usage(
            format!("`{}` compared with itself", a.a),
            "name two different environments",
        ));
    }
    let ids = crypto::find_identities(g.identity.as_deref()).ok();
    let in_a = compare::decrypt_env(&m, &a.a, ids.as_ref())?;
    let in_b = compare::decrypt_env(&m, &a.b, ids.as_ref())?;
    let key = match (&m.fingerprint_key, &ids) {
        (Some(k), Some(ids)) => crypto::decrypt(ids, k, "fingerprint_key").ok(),
        _ => None,
    };
    let fp = Fingerprinter::new(key.as_ref());
    let c = compare::compare(&m, &a.a, &a.b, &in_a, &in_b, &fp);
    drop((in_a, in_b));
    match a.format {
        Format::Text => emit(g, &compare::text(&c)),
        Format::Markdown => emit(g, &compare::markdown(&c)),
        Format::Json => emit(
            g,
            &format!("{:#}", compare::json(&c, &m.path.display().to_string())),
        ),
    }
    Ok(if c.differs() { Exit::Changes } else { Exit::Ok })
}
