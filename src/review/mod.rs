//! Review mode: `secretsync plan --base REF`, for a manifest changed by a
//! pull request that is not yet trusted.
//!
//! The base (the reviewed, merged manifest) decides what may be contacted
//! and how: target definitions and `fingerprint_key` come from it. The head
//! (the change under review) says what is wanted: secrets and their target
//! lists. A target that is new in the head, or defined differently there, is
//! not contacted: it is listed with the diff of its definition and will be
//! contacted on merge, once its definition has been reviewed. A changed
//! `fingerprint_key` hides every fingerprint (a key chosen by the author
//! would make them a guessing oracle). Per secret, the review says whether
//! its value changed between base and head, comparing the decrypted values
//! in memory.
//!
//! One file per job: [`git`] reads the base, [`merge`] makes the reviewed
//! manifest and decides what is contacted, [`definition`] diffs target
//! definitions, [`values`] compares the values, [`render`] shows the review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crypto::{self, Identities};
use crate::engine::{Engine, Options};
use crate::error::Error;
use crate::manifest::{self, Manifest, SecretDef, TargetSpec, ValueSource};
use crate::neutral;
use crate::render::{md_code, md_escape as md_cell, md_fence, Style};
use crate::secret::Secret;

mod definition;
mod git;
mod merge;
mod render;
mod values;

use definition::*;
use git::*;
pub use git::{checkout_of, load_base, Base, BaseSource};
pub use merge::open;
use values::*;

// ---- what changed between base and head ---------------------------------------

/// How a target's definition stands in the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetChange {
    New,
    Changed,
    /// Defined as in the base, but a file it reads is the change's.
    FilesChanged,
    Removed,
}

/// A target that review mode does not contact.
#[derive(Debug, Clone)]
pub struct NotContacted {
    pub name: String,
    pub kind: &'static str,
    pub change: TargetChange,
    /// The head's secrets that name it.
    pub secrets: Vec<String>,
    /// The files it reads that the change wrote (`PATH: why`).
    pub files: Vec<String>,
    /// A unified diff of its definition, base to head, every value quoted.
    pub diff: String,
}

/// How a secret's value stands in the head against the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueChange {
    Changed,
    Unchanged,
    Added,
    Removed,
    /// One of the two values cannot be decrypted (the reason says which).
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct SecretChange {
    pub name: String,
    pub value: ValueChange,
    /// A changed or added value that is a copy of the ciphertext of another
    /// base secret: its name and its targets in the base.
    pub copy_of: Option<(String, Vec<String>)>,
    pub targets_added: Vec<String>,
    pub targets_removed: Vec<String>,
}

/// All review mode adds to a plan.
#[derive(Debug, Clone)]
pub struct Review {
    pub base: String,
    pub base_kind: &'static str,
    /// The commit a revision named.
    pub base_commit: Option<String>,
    /// The secrets whose value this change chose: no fingerprint of theirs
    /// is shown.
    pub chosen: BTreeSet<String>,
    /// Why fingerprints are hidden, when they are.
    pub fingerprints_hidden: Option<String>,
    /// Recipients (public keys) the change adds and removes: an added one
    /// can decrypt every value encrypted to it once merged.
    pub recipients_added: Vec<String>,
    pub recipients_removed: Vec<String>,
    pub not_contacted: Vec<NotContacted>,
    pub secrets: Vec<SecretChange>,
}

impl Review {
    /// Whether merging would change something this plan could not show: a
    /// new or changed target (its writes are not planned here).
    pub fn pending(&self) -> bool {
        self.not_contacted
            .iter()
            .any(|t| t.change != TargetChange::Removed)
    }

    fn count(&self, f: impl Fn(&ValueChange) -> bool) -> usize {
        self.secrets.iter().filter(|s| f(&s.value)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_arguments() {
        assert_eq!(
            BaseSource::parse("origin/main").unwrap(),
            BaseSource::Git("origin/main".into())
        );
        assert_eq!(
            BaseSource::parse("file:x.yaml").unwrap(),
            BaseSource::File("x.yaml".into())
        );
        for bad in [
            "",
            "-oProxyCommand=x",
            "--output=/tmp/x",
            "main:secrets.yaml",
            "a b",
            "a\nb",
        ] {
            assert!(BaseSource::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn definitions_are_quoted() {
        let mut f = IndexMap::new();
        f.insert("path".to_string(), Field::Str("a\n+All in sync".into()));
        f.insert("prune".to_string(), Field::Bool(true));
        let d = definition_diff("t\nx", None, Some(&f));
        assert!(d.contains("+path: \"a\\n+All in sync\"\n"), "{d}");
        assert!(d.contains("+prune: true\n"), "{d}");
        assert!(d.contains("head targets.\"t\\nx\""), "{d}");
    }
}
