//! The value type for secrets: it cannot be printed and is zeroed when dropped.
//!
//! Every decrypted or observed value lives in a [`Secret`]. Its `Debug` prints a
//! placeholder and it has no `Display`, so a value cannot reach a log, an error
//! or a panic message by accident; `expose()` is called only where a value is
//! compared, fingerprinted or sent to a target.

use std::fmt;
use zeroize::Zeroizing;

/// A secret value (or any value read from a target, which may be one).
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The clear value. Call only to compare, fingerprint or send it to a target.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose().as_bytes() == other.expose().as_bytes()
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("canary-5f3a".into());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{:?}", Some(vec![s])).contains("canary"));
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a".into()), Secret::new("a".into()));
        assert_ne!(Secret::new("a".into()), Secret::new("b".into()));
    }
}
