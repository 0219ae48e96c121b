//! Which values the change chose: base and head decrypted (spread over the
//! cores) and compared in memory, never shown.

use super::*;

/// Why fingerprints must be hidden, if the head's `fingerprint_key` is not
/// the base's (compared decrypted: a rekey re-encrypts the same key).
pub(super) fn fingerprint_key_change(
    base: &Manifest,
    head: &Manifest,
    ids: Option<&Identities>,
) -> Option<String> {
    const WHY: &str = "so that a key chosen by the author of a change cannot turn the plan's fingerprints into a guessing oracle; they show again once the change is merged";
    match (&base.fingerprint_key, &head.fingerprint_key) {
        (None, None) => None,
        (Some(a), Some(b)) if a.trim() == b.trim() => None,
        (None, Some(_)) => Some(format!(
            "this change adds a fingerprint_key: fingerprints are hidden {WHY}"
        )),
        (Some(_), None) => Some(format!(
            "this change removes the fingerprint_key: fingerprints are hidden {WHY}"
        )),
        (Some(a), Some(b)) => {
            let same = ids.is_some_and(|ids| {
                match (
                    crypto::decrypt(ids, a, "the base's fingerprint_key"),
                    crypto::decrypt(ids, b, "the head's fingerprint_key"),
                ) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                }
            });
            (!same).then(|| {
                format!("this change replaces the fingerprint_key (or it cannot be decrypted): fingerprints are hidden {WHY}")
            })
        }
    }
}

/// An armored value without its white space: two copies of one ciphertext
/// compare equal however they were indented or wrapped.
pub(super) fn cipher_text(armored: &str) -> String {
    armored.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Per secret of base and head: whether its value changed. Values whose
/// armored text is the same are the same without decrypting; the others are
/// decrypted (spread over the cores) and compared in memory. A changed or
/// added value that is a copy of another base secret's ciphertext says so
/// (its provenance); one that holds the base's `fingerprint_key` is refused.
/// Also returns the head's values it decrypted, for the engine.
pub(super) fn value_changes(
    base: &Manifest,
    head: &Manifest,
    ids: Option<&Identities>,
) -> Result<(Vec<SecretChange>, IndexMap<String, Secret>), Error> {
    // (name, which side, armored) of every value that must be decrypted.
    let mut work: Vec<(String, &'static str, &str)> = Vec::new();
    for (name, h) in &head.secrets {
        match base.secrets.get(name) {
            Some(b) => match (&b.value, &h.value) {
                (ValueSource::Encrypted(x), ValueSource::Encrypted(y)) if x.trim() == y.trim() => {}
                (b, h) => {
                    for (side, v) in [("base", b), ("head", h)] {
                        if let ValueSource::Encrypted(a) = v {
                            work.push((name.clone(), side, a));
                        }
                    }
                }
            },
            // Added: decrypted only to be compared with the fingerprint key.
            None if base.fingerprint_key.is_some() => {
                if let ValueSource::Encrypted(a) = &h.value {
                    work.push((name.clone(), "head", a));
                }
            }
            None => {}
        }
    }
    let clear = decrypt_each(ids, &work);
    let value = |name: &str, side: &str, v: &ValueSource| -> Result<Secret, String> {
        match v {
            ValueSource::Plain(p) => Ok(Secret::new(p.clone())),
            ValueSource::Encrypted(_) => clear
                .get(&(name.to_string(), side.to_string()))
                .cloned()
                .unwrap_or_else(|| Err("not decrypted".into())),
        }
    };
    // The base's fingerprint key, decrypted: no head value may hold it.
    let key = match (&base.fingerprint_key, ids) {
        (Some(k), Some(ids)) => crypto::decrypt(ids, k, "the base's fingerprint_key").ok(),
        _ => None,
    };
    // Base ciphertexts → the base secret holding each.
    let base_ciphers: std::collections::HashMap<String, &SecretDef> = base
        .secrets
        .values()
        .filter_map(|s| match &s.value {
            ValueSource::Encrypted(a) => Some((cipher_text(a), s)),
            ValueSource::Plain(_) => None,
        })
        .collect();
    let key_cipher = base.fingerprint_key.as_deref().map(cipher_text);

    let mut out = Vec::new();
    for (name, h) in &head.secrets {
        let copy_of = match &h.value {
            ValueSource::Encrypted(a) => {
                let c = cipher_text(a);
                if key_cipher.as_ref() == Some(&c) {
                    return Err(key_copy(name));
                }
                base_ciphers
                    .get(&c)
                    .filter(|b| b.name != *name)
                    .map(|b| (b.name.clone(), b.targets.clone()))
            }
            ValueSource::Plain(_) => None,
        };
        if let Some(key) = &key {
            if let Ok(v) = value(name, "head", &h.value) {
                if v.expose().trim() == key.expose().trim() {
                    return Err(key_copy(name));
                }
            }
        }
        let Some(b) = base.secrets.get(name) else {
            out.push(SecretChange {
                name: name.clone(),
                value: ValueChange::Added,
                copy_of,
                targets_added: h.targets.clone(),
                targets_removed: Vec::new(),
            });
            continue;
        };
        let same_text = matches!((&b.value, &h.value),
            (ValueSource::Encrypted(x), ValueSource::Encrypted(y)) if x.trim() == y.trim());
        let change = if same_text {
            ValueChange::Unchanged
        } else {
            match (value(name, "base", &b.value), value(name, "head", &h.value)) {
                (Ok(x), Ok(y)) if x == y => ValueChange::Unchanged,
                (Ok(_), Ok(_)) => ValueChange::Changed,
                (Err(why), _) => ValueChange::Unknown(format!("the base's value: {why}")),
                (_, Err(why)) => ValueChange::Unknown(format!("the head's value: {why}")),
            }
        };
        let (bt, ht): (BTreeSet<&String>, BTreeSet<&String>) =
            (b.targets.iter().collect(), h.targets.iter().collect());
        out.push(SecretChange {
            name: name.clone(),
            copy_of: if change == ValueChange::Unchanged {
                None
            } else {
                copy_of
            },
            value: change,
            targets_added: h
                .targets
                .iter()
                .filter(|t| !bt.contains(t))
                .cloned()
                .collect(),
            targets_removed: b
                .targets
                .iter()
                .filter(|t| !ht.contains(t))
                .cloned()
                .collect(),
        });
    }
    for (name, b) in &base.secrets {
        if !head.secrets.contains_key(name) {
            out.push(SecretChange {
                name: name.clone(),
                value: ValueChange::Removed,
                copy_of: None,
                targets_added: Vec::new(),
                targets_removed: b.targets.clone(),
            });
        }
    }
    // The head's values decrypted here: the engine plans with them rather
    // than decrypting them again.
    let head_clear = clear
        .iter()
        .filter_map(|((name, side), got)| match (side.as_str(), got) {
            ("head", Ok(v)) => Some((name.clone(), v.clone())),
            _ => None,
        })
        .collect();
    Ok((out, head_clear))
}

pub(super) fn key_copy(name: &str) -> Error {
    crate::engine::key_copy_error(name)
}

pub(super) type Decrypted = std::collections::HashMap<(String, String), Result<Secret, String>>;

pub(super) fn decrypt_each(
    ids: Option<&Identities>,
    work: &[(String, &'static str, &str)],
) -> Decrypted {
    let Some(ids) = ids else {
        return work
            .iter()
            .map(|(n, s, _)| {
                (
                    (n.clone(), s.to_string()),
                    Err("no identity to decrypt it".to_string()),
                )
            })
            .collect();
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = work.len().div_ceil(threads).max(16);
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(name, side, armored)| {
                            let what = format!("the {side}'s secret `{name}`");
                            (
                                (name.clone(), side.to_string()),
                                crypto::decrypt(ids, armored, &what).map_err(|e| e.to_string()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}
