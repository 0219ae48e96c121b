//! The registry of target kinds: the one list the manifest loader and the
//! engine consult, so that a new backend is its own module and one line in
//! [`KINDS`]. It stands above the backends (it names each) and below the
//! manifest (which looks `type:` up here).

use super::kind::Kind;
use super::{env_file, keychain, railway, ssh_env};

/// Every kind of target this build knows, in the order docs list them.
pub static KINDS: &[&dyn Kind] = &[
    &env_file::KIND,
    &ssh_env::KIND,
    &railway::KIND,
    &keychain::KIND,
];

/// The kind named `name` (`type:` in the manifest).
pub fn find(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// The kinds' names, for hints: "env_file, ssh_env, …".
pub fn names() -> String {
    KINDS
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_and_its_fields_once() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(seen.insert(k.name()), "{} twice", k.name());
            let mut fields = std::collections::BTreeSet::new();
            for f in k.fields() {
                assert!(*f != "type" && fields.insert(*f), "{}: {f}", k.name());
            }
            assert!(std::ptr::eq(find(k.name()).unwrap(), *k));
        }
        assert_eq!(names(), "env_file, ssh_env, railway, keychain");
    }
}
