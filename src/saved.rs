//! Saved plans: `plan --out FILE` and `apply FILE`, as Terraform does.
//!
//! A saved plan holds no value: the manifest's SHA-256, each target's
//! observed state as keyed digests (HMAC-SHA256 under the manifest's
//! fingerprint key, so the file does not let anyone test guesses offline),
//! and the changes. Applying it plans again and refuses, naming what moved,
//! unless the manifest and every target are exactly as they were.
//!
//! The file is authenticated: `mac` is an HMAC-SHA256 of everything else in
//! it under a key derived from the fingerprint key, which only holders of an
//! identity can decrypt. `apply FILE` trusts a saved plan enough to skip the
//! confirmation, so a file that anyone could edit (its target list emptied,
//! a change added) would be a way to write targets nobody reviewed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::Fingerprinter;
use crate::plan::Plan;
use crate::targets::{Observation, Op};

/// 2: the file carries `mac`.
pub const SAVED_FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub format_version: u32,
    pub kind: String,
    pub manifest: String,
    pub manifest_sha256: String,
    pub created: String,
    pub targets: Vec<SavedTarget>,
    /// HMAC of the rest of the file (see the module docs); `None` only
    /// while it is being computed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac: Option<String>,
}

impl SavedPlan {
    /// The MAC of everything but `mac`, as serialised by this struct (so
    /// white space and the order of fields in the file do not matter, and
    /// any change of content does).
    fn compute_mac(&self, fp: &Fingerprinter) -> Option<String> {
        let mut bare = self.clone();
        bare.mac = None;
        let bytes = serde_json::to_vec(&bare).ok()?;
        fp.authenticate("saved-plan", &bytes)
    }
}

/// Why a saved plan cannot be trusted (checked before its targets are read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("the plan file has format_version {0}, this secretsync reads {SAVED_FORMAT_VERSION}")]
    Version(u32),
    #[error("the plan file carries no MAC, so it cannot be told from an edited one")]
    NoMac,
    #[error("checking the plan file needs the manifest's fingerprint_key")]
    NoKey,
    #[error("the plan file was altered after it was saved (its MAC does not match), or saved for another manifest")]
    Altered,
    /// `apply` would take a plan of no target for "all".
    #[error("the plan file names no target")]
    NoTarget,
}

/// Why a saved plan cannot be trusted, if it cannot: a missing or wrong MAC,
/// or a plan that names no target (which `apply` would take for "all").
pub fn verify(saved: &SavedPlan, fp: &Fingerprinter) -> Result<(), Untrusted> {
    if saved.format_version != SAVED_FORMAT_VERSION {
        return Err(Untrusted::Version(saved.format_version));
    }
    let Some(mac) = &saved.mac else {
        return Err(Untrusted::NoMac);
    };
    let Some(expected) = saved.compute_mac(fp) else {
        return Err(Untrusted::NoKey);
    };
    // Both are hex of equal length; compare without an early exit.
    let same = mac.len() == expected.len()
        && mac
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(Untrusted::Altered);
    }
    if saved.targets.is_empty() {
        return Err(Untrusted::NoTarget);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTarget {
    pub name: String,
    /// Why it could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(default)]
    pub exists: bool,
    /// Key → keyed digest of its value, or "sealed".
    #[serde(default)]
    pub observed: BTreeMap<String, String>,
    /// Keyed digest of the whole file (env files), which also catches
    /// changes to comments and unmanaged lines.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub changes: Vec<SavedChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedChange {
    pub key: String,
    /// add, update or delete.
    pub op: String,
    /// Keyed digest of the value to write.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

pub fn manifest_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The saveable form of `plan`. `None` without a fingerprint key: without
/// one the observed state could only be stored in a guessable form.
pub fn from_plan(
    plan: &Plan,
    manifest_path: &str,
    manifest_sha: &str,
    fp: &Fingerprinter,
) -> Option<SavedPlan> {
    fp.is_keyed().then_some(())?;
    let digest = |s: &str| fp.digest(s.as_bytes()).unwrap_or_default();
    let targets = plan
        .targets
        .iter()
        .map(|t| match &t.outcome {
            Err(e) => SavedTarget {
                name: t.target.clone(),
                error: Some(e.message.clone()),
                exists: false,
                observed: BTreeMap::new(),
                snapshot: None,
                changes: vec![],
            },
            Ok(d) => SavedTarget {
                name: t.target.clone(),
                error: None,
                exists: d.observed.exists,
                observed: d
                    .observed
                    .entries
                    .iter()
                    .map(|(k, o)| {
                        let v = match o {
                            Observation::Value(v) => digest(v.expose()),
                            Observation::Sealed => "sealed".into(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
                snapshot: d.observed.snapshot().map(|s| digest(s.expose())),
                changes: d
                    .changes
                    .iter()
                    .map(|c| SavedChange {
                        key: c.key.clone(),
                        op: match c.op {
                            Op::Add(_) => "add",
                            Op::Update(_) => "update",
                            Op::Delete => "delete",
                        }
                        .into(),
                        value: c.op.value().map(|v| digest(v.expose())),
                    })
                    .collect(),
            },
        })
        .collect();
    let mut saved = SavedPlan {
        format_version: SAVED_FORMAT_VERSION,
        kind: "saved_plan".into(),
        manifest: manifest_path.to_string(),
        manifest_sha256: manifest_sha.to_string(),
        created: crate::time::today(),
        targets,
        mac: None,
    };
    saved.mac = Some(saved.compute_mac(fp)?);
    Some(saved)
}

/// Whether target `n` (read now) holds what the saved changes of `s` made:
/// each added or updated key with the planned value, each deleted key gone,
/// nothing left to change.
fn applied_here(s: &SavedTarget, n: &SavedTarget) -> bool {
    !s.changes.is_empty()
        && n.error.is_none()
        && n.changes.is_empty()
        && s.changes.iter().all(|c| match c.op.as_str() {
            "delete" => !n.observed.contains_key(&c.key),
            _ => c.value.is_some() && n.observed.get(&c.key) == c.value.as_ref(),
        })
}

/// Whether the saved plan was applied already: the manifest is the one it
/// was saved from, and every target it changes now holds what it planned
/// (the others are as they were).
pub fn already_applied(saved: &SavedPlan, manifest_sha: &str, now: &SavedPlan) -> bool {
    if saved.format_version != SAVED_FORMAT_VERSION
        || saved.manifest_sha256 != manifest_sha
        || saved.targets.iter().all(|s| s.changes.is_empty())
    {
        return false;
    }
    saved.targets.iter().all(|s| {
        let Some(n) = now.targets.iter().find(|n| n.name == s.name) else {
            return false;
        };
        s.error.is_none()
            && if s.changes.is_empty() {
                n.error.is_none() && n.observed == s.observed && n.changes.is_empty()
            } else {
                applied_here(s, n)
            }
    })
}

/// Why a saved plan cannot be applied: every difference found, plainly.
pub fn staleness(saved: &SavedPlan, manifest_sha: &str, now: &SavedPlan) -> Vec<String> {
    let mut why = Vec::new();
    if saved.format_version != SAVED_FORMAT_VERSION {
        why.push(Untrusted::Version(saved.format_version).to_string());
        return why;
    }
    if saved.manifest_sha256 != manifest_sha {
        why.push(format!(
            "the manifest {} changed since the plan was saved",
            saved.manifest
        ));
        return why;
    }
    for s in &saved.targets {
        if let Some(e) = &s.error {
            why.push(format!(
                "target `{}` could not be read when the plan was saved ({e})",
                s.name
            ));
            continue;
        }
        let Some(n) = now.targets.iter().find(|n| n.name == s.name) else {
            why.push(format!("target `{}` is not part of this run", s.name));
            continue;
        };
        if let Some(e) = &n.error {
            why.push(format!("target `{}` cannot be read now ({e})", s.name));
            continue;
        }
        let mut moved: Vec<&str> = s
            .observed
            .keys()
            .chain(n.observed.keys())
            .filter(|k| s.observed.get(*k) != n.observed.get(*k))
            .map(String::as_str)
            .collect();
        moved.sort_unstable();
        moved.dedup();
        if !moved.is_empty() && applied_here(s, n) {
            why.push(format!(
                "target `{}`: already applied (it holds what the plan would write)",
                s.name
            ));
        } else if !moved.is_empty() {
            why.push(format!(
                "target `{}` changed since the plan was saved: {}",
                s.name,
                moved.join(", ")
            ));
        } else if s.snapshot != n.snapshot || s.exists != n.exists {
            why.push(format!(
                "target `{}` changed since the plan was saved (outside the managed keys)",
                s.name
            ));
        } else if s.changes != n.changes {
            why.push(format!(
                "target `{}`: the changes differ from the saved plan",
                s.name
            ));
        }
    }
    why
}
