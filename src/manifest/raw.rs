//! The manifest as serde reads it: "raw" structs whose fields keep their
//! source location (serde-saphyr's [`Spanned`]), so that validation can
//! point at the line and column of every mistake.
//!
//! A target is read as a map of its fields' texts rather than a serde-tagged
//! enum: serde buffers tagged content and loses the positions inside it, and
//! the fields belong to the target's kind (`crate::targets::Kind`), not to
//! the manifest.

use std::hash::{Hash, Hasher};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A map key that remembers where it stands.
#[derive(Deserialize, Debug)]
#[serde(transparent)]
pub(super) struct Key(pub(super) Spanned<String>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.value.hash(state);
    }
}

pub(super) type S<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) version: Spanned<u32>,
    #[serde(default)]
    pub(super) recipients: Vec<Spanned<String>>,
    pub(super) fingerprint_key: S<String>,
    // Optional: `secrets:` left empty (null) is an empty map, not an error.
    #[serde(default)]
    pub(super) targets: Option<IndexMap<Key, Spanned<RawTarget>>>,
    #[serde(default)]
    pub(super) secrets: Option<IndexMap<Key, Spanned<RawSecret>>>,
    #[serde(default)]
    pub(super) removed: Option<Vec<RawRemoved>>,
    /// The default rotation period of encrypted secrets (src/lifecycle.rs).
    pub(super) rotate_every: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoved {
    pub(super) name: String,
    pub(super) fingerprint: String,
    pub(super) removed: String,
}

/// A target's fields as written: each kind reads its own (see
/// [`super::Fields`]); a null value is kept as `None` with its place.
pub(super) type RawTarget = IndexMap<Key, Spanned<Option<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    #[serde(default)]
    pub(super) targets: Vec<Spanned<String>>,
    /// Read as a string only: serde-saphyr hands a plain scalar to a string
    /// exactly as written (`0123`, `yes`, `1e3` stay text), never retyped.
    /// `deserialize_with` so that `value: ~` is an error, not an absent field.
    #[serde(default, deserialize_with = "present")]
    pub(super) value: S<String>,
    pub(super) encrypted: S<String>,
    #[serde(default)]
    pub(super) rename: IndexMap<Key, Spanned<String>>,
    #[serde(default)]
    pub(super) previous: Vec<Spanned<RawPrevious>>,
    // Lifecycle (src/lifecycle.rs): what the issuer said, the policy, and
    // when the current value was set.
    pub(super) expires: S<String>,
    pub(super) rotate_every: S<String>,
    pub(super) set_on: S<String>,
    /// How secretsync makes the value (src/generate.rs).
    pub(super) generate: S<RawGenerate>,
    /// Free text for people; not used.
    #[allow(dead_code)]
    pub(super) description: Option<String>,
}

/// `generate: {bytes: N, encoding: E}` or `{chars: N, alphabet: A}`; each
/// field read as text and checked by validation, where it stands.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGenerate {
    pub(super) bytes: S<String>,
    pub(super) encoding: S<String>,
    pub(super) chars: S<String>,
    pub(super) alphabet: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrevious {
    pub(super) fingerprint: String,
    pub(super) replaced: String,
}

/// A field that is given: null (`~`, `null`, nothing) is an error at its
/// place rather than the field being absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<S<String>, D::Error> {
    Spanned::<String>::deserialize(d).map(Some)
}
