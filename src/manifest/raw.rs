//! The manifest as serde reads it: "raw" structs whose fields keep their
//! source location (serde-saphyr's [`Spanned`]), so that validation can
//! point at the line and column of every mistake.
//!
//! Targets are read into one flat struct rather than a serde-tagged enum:
//! serde buffers tagged content and loses the positions inside it.

use std::hash::{Hash, Hasher};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    #[serde(rename = "type")]
    pub(super) kind: S<String>,
    pub(super) path: S<String>,
    pub(super) prune: S<bool>,
    pub(super) create: S<bool>,
    pub(super) format: S<String>,
    // SSH
    pub(super) host: S<String>,
    pub(super) port: S<u16>,
    pub(super) identity_file: S<String>,
    pub(super) known_hosts: S<String>,
    pub(super) known_hosts_file: S<String>,
    pub(super) connect_timeout: S<String>,
    pub(super) sudo: S<bool>,
    pub(super) on_change: S<String>,
    // Railway
    pub(super) project: S<String>,
    pub(super) environment: S<String>,
    pub(super) service: S<String>,
    pub(super) token_env: S<String>,
    pub(super) token_kind: S<String>,
    pub(super) skip_deploys: S<bool>,
    pub(super) endpoint: S<String>,
    pub(super) overwrite_sealed: S<bool>,
    // keychain
    pub(super) keychain: S<String>,
    pub(super) security: S<String>,
}

impl RawTarget {
    /// The fields that were given, with their places.
    pub(super) fn given(&self) -> Vec<(&'static str, Location)> {
        macro_rules! given {
            ($($f:ident),*) => {{
                let mut v = Vec::new();
                $( if let Some(s) = &self.$f { v.push((stringify!($f), s.referenced)); } )*
                v
            }};
        }
        given!(
            path,
            prune,
            create,
            format,
            host,
            port,
            identity_file,
            known_hosts,
            known_hosts_file,
            connect_timeout,
            sudo,
            on_change,
            project,
            environment,
            service,
            token_env,
            token_kind,
            skip_deploys,
            endpoint,
            overwrite_sealed,
            keychain,
            security
        )
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
    /// Free text for people; not used.
    #[allow(dead_code)]
    pub(super) description: Option<String>,
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
