//! `secretsync init`: a new manifest with its recipients and fingerprint key.

use std::path::PathBuf;

use secrecy::ExposeSecret;

use super::Exit;
use crate::cli::{Global, InitArgs};
use secretsync::crypto;
use secretsync::error::Error;
use secretsync::fsutil::write_atomic;

pub(super) fn run(g: &Global, a: InitArgs) -> Result<Exit, Error> {
    // Two inits at once: the second sees the first's manifest.
    let _lock = secretsync::lock::lock(&g.manifest)?;
    if g.manifest.exists() {
        return Err(Error::usage(
            format!("{} exists already", g.manifest.display()),
            "edit it, or choose another path with -f",
        ));
    }
    let mut recipients = Vec::new();
    for r in &a.recipients {
        recipients.push(crypto::parse_recipient(r).map_err(|why| {
            Error::usage(
                format!("--recipient {r}: {why}"),
                "an age1… key or an \"ssh-ed25519 …\" line",
            )
        })?);
    }
    if recipients.is_empty() {
        let path = match &a.identity_out {
            Some(p) => p.clone(),
            None => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| Error::usage("HOME is not set", "pass --identity-out FILE"))?;
                PathBuf::from(home).join(".config/sops/age/keys.txt")
            }
        };
        if path.exists() {
            // A second project: the identity you have is the one to use
            // (never overwritten).
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?,
            );
            let keys = crypto::public_keys(&text, &path.display().to_string())?;
            for k in &keys {
                recipients.push(crypto::parse_recipient(k).map_err(|why| {
                    Error::usage(
                        format!("the identity in {} gives the public key `{k}`, which cannot be a recipient: {why}", path.display()),
                        "pass --recipient with a public key, or --identity-out NEW_FILE",
                    )
                })?);
            }
            if !g.quiet {
                eprintln!(
                    "using the existing identity in {} (not changed)",
                    super::shown(&path)
                );
            }
            for k in &keys {
                println!("{k}");
            }
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let id = age::x25519::Identity::generate();
            let public = id.to_public();
            let text = zeroize::Zeroizing::new(format!(
                "# created by secretsync init on {}\n# public key: {public}\n{}\n",
                secretsync::time::today(),
                id.to_string().expose_secret()
            ));
            write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| Error::io(&path, e))?;
            if !g.quiet {
                eprintln!(
                    "wrote a new identity to {} (mode 0600); keep it safe and out of git",
                    super::shown(&path)
                );
            }
            println!("{public}");
            recipients.push(crypto::Recipient::X25519(public));
        }
    }
    let key = crypto::new_fingerprint_key();
    let armored = crypto::encrypt(&recipients, key.expose().as_bytes())?;
    let mut text = String::from(
        "# secretsync manifest: every secret's value, encrypted to the recipients, and where it goes.\n# Reference: docs/manifest.md. Add values with `secretsync set KEY --target NAME`.\nversion: 1\n\nrecipients:\n",
    );
    for r in &recipients {
        let r = r.to_string();
        text.push_str(&if r.contains(' ') {
            format!("  - \"{r}\"\n")
        } else {
            format!("  - {r}\n")
        });
    }
    text.push_str("\n# Keys the fingerprints that plans show (HMAC-SHA256); only recipients can read it.\nfingerprint_key: |\n");
    for l in armored.lines() {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str("\ntargets:\n  local:\n    type: env_file\n    path: ./.env\n\nsecrets: {}\n");
    let m = secretsync::manifest::parse(&g.manifest, text.clone())?;
    write_atomic(&g.manifest, text.as_bytes(), 0o644).map_err(|e| Error::io(&g.manifest, e))?;
    if !g.quiet {
        eprintln!(
            "created {} with {} recipient(s)",
            super::shown(&g.manifest),
            recipients.len()
        );
    }
    // The local target's file holds values in clear: git ignores it (and
    // the lock file) before anything is written there.
    let dir = m.dir();
    if secretsync::gitignore::work_tree(&dir).is_some() {
        let added = secretsync::gitignore::extend(&dir, &secretsync::gitignore::entries(&m))
            .map_err(|e| Error::io(dir.join(".gitignore"), e))?;
        if !added.is_empty() && !g.quiet {
            eprintln!(
                "added to {}: {} (values in clear stay out of git)",
                super::shown(&dir.join(".gitignore")),
                added.join(", ")
            );
        }
    }
    Ok(Exit::Ok)
}
