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
    /// `environments:` (src/manifest/environments.rs); none: one flat environment.
    #[serde(default)]
    pub(super) environments: Option<IndexMap<Key, Spanned<RawEnvironment>>>,
}

/// One environment: who can read its values, and its targets' overrides.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    /// `None`: the top-level recipients.
    #[serde(default)]
    pub(super) recipients: Option<Vec<Spanned<String>>>,
    /// Target name → the fields this environment gives it instead.
    #[serde(default)]
    pub(super) targets: Option<IndexMap<Key, Spanned<RawTarget>>>,
    /// Free text for people; not used.
    #[allow(dead_code)]
    pub(super) description: Option<String>,
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
/// `environments: [..]`, the one list a target takes, is read apart.
#[derive(Default)]
pub(super) struct RawTarget {
    pub(super) fields: IndexMap<Key, Spanned<Option<String>>>,
    /// `environments:` (its name, the list).
    pub(super) environments: Option<(Spanned<String>, Vec<Spanned<String>>)>,
}

impl IntoIterator for RawTarget {
    type Item = (Key, Spanned<Option<String>>);
    type IntoIter = indexmap::map::IntoIter<Key, Spanned<Option<String>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTarget;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of target fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawTarget, A::Error> {
                let mut out = RawTarget::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.value == "environments" {
                        let list: Vec<Spanned<String>> = map.next_value()?;
                        out.environments = Some((key, list));
                    } else {
                        let value: Spanned<Option<String>> = map.next_value()?;
                        out.fields.insert(Key(key), value);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// `encrypted:` as written: one armored value for every environment, or a
/// map of environment → armored value.
pub(super) enum RawEncrypted {
    One(String),
    PerEnv(IndexMap<Key, Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawEncrypted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawEncrypted;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an armored age file, or a mapping of environment to armored age file")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawEncrypted, E> {
                Ok(RawEncrypted::One(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawEncrypted, E> {
                Ok(RawEncrypted::One(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawEncrypted, A::Error> {
                let mut out = IndexMap::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value: Spanned<String> = map.next_value()?;
                    out.insert(Key(key), value);
                }
                Ok(RawEncrypted::PerEnv(out))
            }
        }
        d.deserialize_any(V)
    }
}

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
    pub(super) encrypted: S<RawEncrypted>,
    /// `environments: [..]`: only in these (src/manifest/environments.rs).
    #[serde(default)]
    pub(super) environments: Option<Spanned<Vec<Spanned<String>>>>,
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
