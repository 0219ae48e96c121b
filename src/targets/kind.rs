//! What a kind of target is, as the manifest sees it: the seam's half that
//! needs no backend. The list of kinds is [`super::registry`]'s.
//!
//! A [`Kind`] is what `type:` names in the manifest: the fields it takes and
//! how they become a [`TargetSpec`]. A spec is one target's checked
//! definition: it knows its kind's rules (may it prune, which keys it can
//! hold) and builds the [`Target`] the engine talks to.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Context, Target, TargetError};
use super::{Fields, ManifestError};

/// A kind of target, as `type:` names it.
pub trait Kind: Sync {
    /// The value of `type:`.
    fn name(&self) -> &'static str;

    /// The fields a target of this kind takes besides `type`, in the order
    /// `target add` writes them. The loader refuses any other field.
    fn fields(&self) -> &'static [&'static str];

    /// Checks one target's fields and makes its spec. Errors point at the
    /// field ([`Fields`] keeps every field's place).
    fn parse(&self, fields: &Fields<'_>) -> Result<TargetSpec, ManifestError>;

    /// Prefixes of the environment variables that hold this kind's
    /// credentials (`RAILWAY_` for Railway's tokens): moved out of the
    /// environment at start-up so that no child inherits them
    /// ([`crate::environ::take`]).
    fn credential_prefixes(&self) -> &'static [&'static str] {
        &[]
    }

    /// A field this kind no longer reads because it let a manifest choose
    /// how secretsync behaves: why, and what to do instead.
    fn withdrawn(&self, field: &str) -> Option<(&'static str, &'static str)> {
        let _ = field;
        None
    }
}

/// One target's checked definition, as a backend wants it.
pub trait Spec: fmt::Debug + Send + Sync + Any {
    /// The kind's name (`type:`).
    fn kind(&self) -> &'static str;

    /// Builds the backend the engine talks to.
    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError>;

    /// Whether keys the manifest does not list are deleted.
    fn prune(&self) -> bool {
        false
    }

    /// Whether a value that cannot be read (sealed) may be overwritten.
    fn overwrite_sealed(&self) -> bool {
        false
    }

    /// Whether `key` is a name this target can hold; `Err` is the rule.
    fn check_key(&self, key: &str) -> Result<(), String> {
        env_key_rule(key)
    }

    /// The first character of `key` that breaks [`Spec::check_key`]'s rule
    /// (1-based position), for messages.
    fn offending(&self, key: &str) -> Option<(usize, char)> {
        first_bad(key, is_env_key)
    }

    /// Whether `other` is the same definition (review mode contacts only
    /// targets whose definition a pull request left alone).
    fn same(&self, other: &dyn Spec) -> bool;

    /// The files on this machine the target reads (an env file, ssh's
    /// identity and known_hosts files), relative ones resolved as the
    /// target resolves them (`manifest_dir` for an env file). Review mode
    /// counts a target whose files the pull request changed as changed.
    fn local_files(&self, manifest_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let _ = manifest_dir;
        Vec::new()
    }
}

/// [`Spec::same`] for a spec that is `PartialEq`.
pub fn same_as<T: PartialEq + 'static>(this: &T, other: &dyn Spec) -> bool {
    (other as &dyn Any).downcast_ref::<T>() == Some(this)
}

/// The env-key rule has one home: src/envkey.rs.
pub use crate::envkey::is_env_key;

/// The rule env files, shells and Railway share.
pub fn env_key_rule(key: &str) -> Result<(), String> {
    if is_env_key(key) {
        Ok(())
    } else {
        Err("a variable name must match ^[A-Za-z_][A-Za-z0-9_]*$".into())
    }
}

/// The first character where `key` stops following `rule`, read as a
/// prefix rule (each prefix of a valid name is valid or empty).
pub fn first_bad(key: &str, rule: impl Fn(&str) -> bool) -> Option<(usize, char)> {
    key.char_indices()
        .enumerate()
        .find(|(_, (i, c))| !rule(&key[..i + c.len_utf8()]))
        .map(|(n, (_, c))| (n + 1, c))
}

/// A target's definition, whatever its kind: cheap to clone, compared by value.
#[derive(Clone)]
pub struct TargetSpec(Arc<dyn Spec>);

impl TargetSpec {
    pub fn new(spec: impl Spec) -> Self {
        TargetSpec(Arc::new(spec))
    }

    pub fn type_name(&self) -> &'static str {
        self.0.kind()
    }

    /// The backend's own spec type, when it is `T`.
    pub fn get<T: Spec>(&self) -> Option<&T> {
        (&*self.0 as &dyn Any).downcast_ref::<T>()
    }

    pub fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        self.0.build(name, ctx)
    }

    pub fn prune(&self) -> bool {
        self.0.prune()
    }

    pub fn overwrite_sealed(&self) -> bool {
        self.0.overwrite_sealed()
    }

    pub fn local_files(&self, manifest_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        self.0.local_files(manifest_dir)
    }

    pub fn check_key(&self, key: &str) -> Result<(), String> {
        self.0.check_key(key)
    }

    pub fn offending(&self, key: &str) -> Option<(usize, char)> {
        self.0.offending(key)
    }
}

impl PartialEq for TargetSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.same(&*other.0)
    }
}

impl fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_character_is_found() {
        let env = |k: &str| is_env_key(k);
        assert_eq!(first_bad("A-B", env), Some((2, '-')));
        assert_eq!(first_bad("1A", env), Some((1, '1')));
        assert_eq!(first_bad("AB_1", env), None);
    }
}
