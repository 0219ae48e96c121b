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
    // Boxed: a manifest holds thousands, and a map's spare capacity and
    // its copies while it grows then cost a pointer each, not a secret.
    pub(super) secrets: Option<IndexMap<Key, Spanned<Box<RawSecret>>>>,
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
    /// The default rotation period of this environment's encrypted values.
    pub(super) rotate_every: S<String>,
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

/// A field written once for every environment, or as a map of environment
/// → its own: `encrypted:` (armored age files) and the lifecycle fields
/// `set_on:`, `expires:`, `rotate_every:` (#27).
pub(super) enum OneOrPerEnv {
    One(String),
    PerEnv(IndexMap<Key, Spanned<String>>),
}

/// A [`OneOrPerEnv`] read from YAML; `W` words serde's "expected …".
pub(super) struct Read<W>(pub(super) OneOrPerEnv, std::marker::PhantomData<W>);

/// What a [`Read`] holds, for serde's "expected …" message.
pub(super) trait Expecting {
    const WHAT: &'static str;
}

/// `encrypted:`.
pub(super) struct Armored;
impl Expecting for Armored {
    const WHAT: &'static str =
        "an armored age file, or a mapping of environment to armored age file";
}

/// `set_on:`, `expires:`, `rotate_every:`.
pub(super) struct Scalar;
impl Expecting for Scalar {
    const WHAT: &'static str = "a value, or a mapping of environment to value";
}

pub(super) type RawEncrypted = Read<Armored>;
pub(super) type RawPerEnv = Read<Scalar>;

impl<'de, W: Expecting> Deserialize<'de> for Read<W> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<W>(std::marker::PhantomData<W>);
        impl<'de, W: Expecting> serde::de::Visitor<'de> for V<W> {
            type Value = Read<W>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(W::WHAT)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Read(
                    OneOrPerEnv::One(v.to_string()),
                    std::marker::PhantomData,
                ))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Read(OneOrPerEnv::One(v), std::marker::PhantomData))
            }
            // `rotate_every: 90` is read as a number when the field may be a map.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Read(
                    OneOrPerEnv::One(v.to_string()),
                    std::marker::PhantomData,
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Read(
                    OneOrPerEnv::One(v.to_string()),
                    std::marker::PhantomData,
                ))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = IndexMap::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value: Spanned<String> = map.next_value()?;
                    out.insert(Key(key), value);
                }
                Ok(Read(OneOrPerEnv::PerEnv(out), std::marker::PhantomData))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
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
    // Each one value, or a map of environment → its value's (#27).
    pub(super) expires: S<RawPerEnv>,
    pub(super) rotate_every: S<RawPerEnv>,
    pub(super) set_on: S<RawPerEnv>,
    /// How secretsync makes the value (src/generate.rs).
    pub(super) generate: S<Box<RawGenerate>>,
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
    /// The environment whose value it was (a value per environment, #27).
    pub(super) environment: S<String>,
}

/// A field that is given: null (`~`, `null`, nothing) is an error at its
/// place rather than the field being absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<S<String>, D::Error> {
    Spanned::<String>::deserialize(d).map(Some)
}
