//! Secrets this identity cannot decrypt (#24): they fail only the targets
//! that need them, each by name and with the recipients the value is
//! encrypted to; every other target is planned.

use std::io::Read;

use indexmap::IndexMap;

use crate::crypto::{self, Identities, Recipient};
use crate::secret::Secret;

/// The outcome of decrypting a manifest's values one by one.
#[derive(Default)]
pub struct Decrypted {
    /// Secret name → its value.
    pub clear: IndexMap<String, Secret>,
    /// Secret name → why it cannot be decrypted (no value in it).
    pub unreadable: IndexMap<String, Unreadable>,
}

/// Why one value cannot be decrypted.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The decryption error ("secret `S` is not encrypted to the identity from …").
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The recipients it is encrypted to ([`encrypted_to`]).
    pub recipients: String,
    /// The error itself (`message` and `hint` are its words), so that a run
    /// that fails on it fails with a crypto error.
    pub error: crypto::CryptoError,
}

/// Decrypts `items` (secret name, armored value), spread over the cores as
/// [`crate::engine::decrypt_all`] does; a value that cannot be decrypted is
/// set aside with the reason instead of failing them all.
pub fn decrypt_each(
    ids: &Identities,
    items: &[(&str, &str)],
    recipients: &[Recipient],
) -> Decrypted {
    let mut out = Decrypted::default();
    for ((name, armored), got) in items.iter().zip(crypto::decrypt_many(ids, items)) {
        match got {
            Ok(v) => {
                out.clear.insert(name.to_string(), v);
            }
            Err(e) => {
                let e = crypto::explain(e, &ids.publics(), recipients);
                out.unreadable.insert(
                    name.to_string(),
                    Unreadable {
                        message: e.to_string(),
                        hint: e.hint().map(str::to_string),
                        recipients: encrypted_to(armored, recipients),
                        error: e,
                    },
                );
            }
        }
    }
    out
}

/// "it is encrypted to 2 recipients (X25519 ×2); the manifest lists age1…":
/// the recipient stanzas of the value's age header (an X25519 stanza does not
/// name its recipient; an ssh one carries a key tag), and the manifest's
/// recipients for comparison. Public keys only.
pub fn encrypted_to(armored: &str, recipients: &[Recipient]) -> String {
    let mut kinds: IndexMap<String, usize> = IndexMap::new();
    let mut bytes = Vec::new();
    let readable = age::armor::ArmoredReader::new(armored.trim().as_bytes())
        .read_to_end(&mut bytes)
        .is_ok();
    if readable {
        for line in bytes.split(|&b| b == b'\n').skip(1) {
            if line.starts_with(b"---") {
                break;
            }
            if let Some(args) = line.strip_prefix(b"-> ") {
                let args = String::from_utf8_lossy(args);
                let mut it = args.split(' ');
                let kind = it.next().unwrap_or("").to_string();
                let label = match kind.as_str() {
                    "X25519" | "scrypt" => kind,
                    k if k.starts_with("ssh-") => {
                        format!("{k} key tag {}", it.next().unwrap_or("?"))
                    }
                    // Grease and plugin stanzas.
                    _ => continue,
                };
                *kinds.entry(label).or_default() += 1;
            }
        }
    }
    let n: usize = kinds.values().sum();
    let stanzas = kinds
        .iter()
        .map(|(k, c)| {
            if *c > 1 {
                format!("{k} ×{c}")
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut listed: Vec<String> = recipients.iter().take(3).map(ToString::to_string).collect();
    if recipients.len() > 3 {
        listed.push(format!("and {} more", recipients.len() - 3));
    }
    format!(
        "it is encrypted to {n} recipient{} ({stanzas}); the manifest's recipients: {}",
        if n == 1 { "" } else { "s" },
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        }
    )
}
