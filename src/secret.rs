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

impl From<Zeroizing<String>> for Secret {
    /// Takes the text over without a copy.
    fn from(value: Zeroizing<String>) -> Self {
        Secret(value)
    }
}

/// A growable buffer for text that holds secrets. A `String` that grows
/// moves to a bigger allocation and frees the old one without zeroing it, so
/// each growth would leave a copy of what was collected so far on the heap;
/// this buffer moves itself and zeroes the allocation it leaves.
#[derive(Default)]
pub struct SecretBuf(Zeroizing<String>);

impl SecretBuf {
    pub fn with_capacity(capacity: usize) -> Self {
        SecretBuf(Zeroizing::new(String::with_capacity(capacity)))
    }

    fn reserve(&mut self, more: usize) {
        let need = self.0.len() + more;
        if need > self.0.capacity() {
            let mut bigger = Zeroizing::new(String::with_capacity(
                need.max(2 * self.0.capacity()).max(32),
            ));
            bigger.push_str(&self.0);
            // The old allocation is zeroed as it is dropped here.
            self.0 = bigger;
        }
    }

    pub fn push(&mut self, c: char) {
        self.reserve(c.len_utf8());
        self.0.push(c);
    }

    pub fn push_str(&mut self, s: &str) {
        self.reserve(s.len());
        self.0.push_str(s);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_secret(self) -> Secret {
        Secret(self.0)
    }

    pub fn into_inner(self) -> Zeroizing<String> {
        self.0
    }
}

impl fmt::Write for SecretBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBuf(<redacted>)")
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
    fn a_growing_buffer_never_reallocates_in_place() {
        let mut b = SecretBuf::with_capacity(4);
        let mut seen = std::collections::BTreeSet::new();
        for c in "a secret that outgrows its buffer several times".chars() {
            b.push(c);
            // Growth only ever happens through `reserve`, which moves
            // to a new allocation (the old one is zeroed as it drops).
            seen.insert(b.as_str().as_ptr() as usize);
        }
        b.push_str(" and more");
        assert_eq!(
            b.into_secret().expose(),
            "a secret that outgrows its buffer several times and more"
        );
        assert!(seen.len() > 1, "it grew");
        assert_eq!(
            format!("{:?}", SecretBuf::default()),
            "SecretBuf(<redacted>)"
        );
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a".into()), Secret::new("a".into()));
        assert_ne!(Secret::new("a".into()), Secret::new("b".into()));
    }
}
