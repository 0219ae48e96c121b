//! Which targets a run covers: the `--target` flag's one rule.
//!
//! The names are parsed once, checked against the manifest's targets, and
//! then asked with [`Selection::contains`]: no empty selection means "all"
//! anywhere else. Every command that takes `--target` (plan, apply, review,
//! list, set, generate, the editing commands) goes through this type, so
//! the rule and its error for an unknown target live here only.
//!
//! A name is one target today; the parsing step is where a later
//! `TARGET@ENV` (or a name standing for several targets) would be read,
//! [`Selection::contains`] staying the one question asked.

use std::path::Path;

use crate::error::Error;

/// The targets named with `--target`; none named means every target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    names: Vec<String>,
}

/// How the error for an unknown target names the manifest.
#[derive(Debug, Clone, Copy)]
pub enum Wording<'a> {
    /// "--target X: no such target in PATH" (the commands that run a plan).
    InFile(&'a Path),
    /// "--target X: no such target".
    Plain,
    /// As [`Wording::Plain`], and a manifest without targets says how to
    /// add one (the commands that edit the manifest).
    Editing,
}

impl Selection {
    /// Every target.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The selection the `--target` names describe, not yet checked.
    pub fn parse(names: &[String]) -> Selection {
        Selection {
            names: names.to_vec(),
        }
    }

    /// [`Selection::parse`], then every name checked with `exists`; the
    /// first unknown one is refused, its hint listing `known`.
    pub fn checked<'k>(
        names: &[String],
        exists: impl Fn(&str) -> bool,
        known: impl IntoIterator<Item = &'k str>,
        wording: Wording<'_>,
    ) -> Result<Selection, Error> {
        let sel = Selection::parse(names);
        if let Some(t) = sel.names.iter().find(|t| !exists(t)) {
            return Err(unknown(t, known, wording));
        }
        Ok(sel)
    }

    /// Whether the run covers target `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|t| t == name)
    }

    /// Whether a target of `targets` is covered (a secret deployed there).
    pub fn any<'t>(&self, targets: impl IntoIterator<Item = &'t String>) -> bool {
        self.names.is_empty() || targets.into_iter().any(|t| self.contains(t))
    }

    /// Whether every target is covered (no `--target`).
    pub fn is_all(&self) -> bool {
        self.names.is_empty()
    }

    /// The names given, in their order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The error for `--target NAME` that names no target.
fn unknown<'k>(
    name: &str,
    known: impl IntoIterator<Item = &'k str>,
    wording: Wording<'_>,
) -> Error {
    let names: Vec<&str> = known.into_iter().collect();
    let message = match wording {
        Wording::InFile(path) => {
            format!("--target {name}: no such target in {}", path.display())
        }
        Wording::Plain | Wording::Editing => format!("--target {name}: no such target"),
    };
    let hint = match wording {
        Wording::Editing if names.is_empty() => {
            "the manifest defines no target yet: add one with `secretsync target add NAME --type …`"
                .to_string()
        }
        _ => format!("targets: {}", names.join(", ")),
    };
    Error::usage(message, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn none_named_is_every_target() {
        let s = Selection::checked(&[], |_| false, [], Wording::Plain).unwrap();
        assert!(s.is_all());
        assert!(s.contains("anything"));
        assert!(s.any(&names(&["x"])));
    }

    #[test]
    fn named_ones_only() {
        let known = ["a", "b", "c"];
        let s = Selection::checked(
            &names(&["b"]),
            |t| known.contains(&t),
            known,
            Wording::Plain,
        )
        .unwrap();
        assert!(s.contains("b"));
        assert!(!s.contains("a"));
        assert!(s.any(&names(&["a", "b"])));
        assert!(!s.any(&names(&["a", "c"])));
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let known = ["a", "b"];
        let e = Selection::checked(
            &names(&["a", "zz"]),
            |t| known.contains(&t),
            known,
            Wording::InFile(Path::new("m.yaml")),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "--target zz: no such target in m.yaml");
        assert_eq!(e.hint().as_deref(), Some("targets: a, b"));
        let e = Selection::checked(&names(&["zz"]), |_| false, [], Wording::Editing).unwrap_err();
        assert_eq!(e.to_string(), "--target zz: no such target");
        assert!(e.hint().unwrap().contains("defines no target yet"));
    }
}
