//! `secretsync whoami`: the public key of each identity found, where it was
//! found, and whether the manifest's recipients include it; and the
//! identity error said with those facts.

use std::path::Path;

use super::Exit;
use crate::cli::Global;
use secretsync::crypto::{self, CryptoError};
use secretsync::error::Error;

pub(super) fn run(g: &Global) -> Result<Exit, Error> {
    let found = crypto::survey_identities(g.identity.as_deref());
    if found.is_empty() {
        return Err(CryptoError::NoIdentity {
            tried: "--identity, SECRETSYNC_AGE_KEY, SECRETSYNC_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, ~/.config/sops/age/keys.txt".into(),
        }
        .into());
    }
    let manifest = secretsync::manifest::load(&g.manifest).ok();
    let shown = super::shown(&g.manifest);
    let mut usable_recipient = false;
    for (i, f) in found.iter().enumerate() {
        let used = if i == 0 { " (used)" } else { "" };
        match &f.public {
            Ok(keys) => {
                for k in keys {
                    let standing = match &manifest {
                        Some(m) if crypto::is_recipient(k, &m.recipients) => {
                            if i == 0 {
                                usable_recipient = true;
                            }
                            format!("a recipient of {shown}")
                        }
                        Some(_) => format!("not a recipient of {shown}"),
                        None => format!("no manifest at {shown}"),
                    };
                    println!("{k}\n  from {}{used}; {standing}", f.origin);
                }
            }
            Err(why) => println!("(unusable)\n  from {}{used}; {why}", f.origin),
        }
    }
    if manifest.is_some() && !usable_recipient && !g.quiet {
        eprintln!(
            "the identity used is not a recipient of {shown}: ask a holder of one to run `secretsync recipients add PUBLIC_KEY` with the key above (it re-encrypts every value)"
        );
    }
    Ok(Exit::Ok)
}

/// The identity error with what the user needs: what could not be
/// decrypted (in words, for the fingerprint key they never touched), the
/// identity's public key and the manifest's recipients. Other errors pass.
pub(super) fn explain(e: Error, manifest: &Path, identity: Option<&Path>) -> Error {
    let Error::Crypto(c @ CryptoError::NotRecipient { .. }) = e else {
        return e;
    };
    let publics = crypto::survey_identities(identity)
        .into_iter()
        .next()
        .and_then(|f| f.public.ok())
        .unwrap_or_default();
    let recipients = secretsync::manifest::load(manifest)
        .map(|m| m.recipients)
        .unwrap_or_default();
    Error::Crypto(crypto::explain(c, &publics, &recipients))
}
