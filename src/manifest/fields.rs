//! One target's fields as the manifest wrote them, each with its place: what
//! a [`Kind`](crate::targets::Kind) reads its spec from. Every accessor that
//! refuses a value says so at that value's file, line and column.
//!
//! Values are the scalar text as written (`22`, `true`, `0123` stay text);
//! each accessor reads the type it wants from it.

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::diagnostics::ManifestError;
use super::validate::Checker;

/// One field: where its name stands and its value (`None`: written as null).
pub(super) struct Field {
    pub(super) key: Spanned<String>,
    pub(super) value: Spanned<Option<String>>,
}

/// The fields of one target.
pub struct Fields<'a> {
    checker: &'a Checker<'a>,
    target: &'a str,
    kind: &'static str,
    /// Where the target's mapping starts: "needs `x`" points here.
    at: Location,
    fields: IndexMap<String, Field>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(
        checker: &'a Checker<'a>,
        target: &'a str,
        kind: &'static str,
        at: Location,
        fields: IndexMap<String, Field>,
    ) -> Self {
        Fields {
            checker,
            target,
            kind,
            at,
            fields,
        }
    }

    /// The target's name.
    pub fn target(&self) -> &str {
        self.target
    }

    /// Whether `field` was written (even as null).
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The fields written, in order, with the place of their names.
    pub fn given(&self) -> impl Iterator<Item = &Spanned<String>> {
        self.fields.values().map(|f| &f.key)
    }

    /// The text of `field`; `None` when absent or null.
    pub fn text(&self, field: &str) -> Option<String> {
        self.fields.get(field).and_then(|f| f.value.value.clone())
    }

    /// The text of `field`, which must be given and not blank.
    pub fn required(&self, field: &str) -> Result<String, ManifestError> {
        match self.text(field) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(self.error(field, format!("`{field}` is empty"), None)),
            None => Err(self.missing(field)),
        }
    }

    /// A boolean, read as YAML reads one (`true`, `false`, and the YAML 1.1
    /// `yes`/`no`/`on`/`off` in any case); `default` when absent.
    pub fn flag(&self, field: &str, default: bool) -> Result<bool, ManifestError> {
        self.parse(field, |t| {
            serde_saphyr::from_str::<bool>(t)
                .map_err(|_| (format!("`{field}` is `{t}`, not true or false"), None))
        })
        .map(|v| v.unwrap_or(default))
    }

    /// A number of type `T`, read as YAML reads one (`22`, `0x16`, `1_000`).
    pub fn number<T: serde::de::DeserializeOwned>(
        &self,
        field: &str,
    ) -> Result<Option<T>, ManifestError> {
        self.parse(field, |t| {
            serde_saphyr::from_str::<T>(t)
                .map_err(|_| (format!("`{field}` is `{t}`, not a number in range"), None))
        })
    }

    /// One of `choices` (text → value).
    pub fn choice<T: Copy>(
        &self,
        field: &str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ManifestError> {
        self.parse(field, |t| {
            choices
                .iter()
                .find(|(name, _)| *name == t)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                    (
                        format!("unknown {field} `{t}`"),
                        Some(format!("one of: {}", names.join(", "))),
                    )
                })
        })
    }

    /// Text that reaches a command line (ssh, sh, `security`) as an
    /// operand: it must never be read there as an option, whoever wrote it.
    pub fn operand(&self, field: &str) -> Result<Option<String>, ManifestError> {
        self.parse(field, |t| {
            super::argv_safe(t).map(|()| t.to_string()).map_err(|why| {
                (
                    format!("`{field}` of target `{}` {why}", self.target),
                    Some("a manifest value is passed to ssh, sh or security as an operand, never as an option".into()),
                )
            })
        })
    }

    /// [`Fields::operand`], given and not blank.
    pub fn required_operand(&self, field: &str) -> Result<String, ManifestError> {
        self.required(field)?;
        Ok(self.operand(field)?.unwrap_or_default())
    }

    /// Reads `field` with `read`, whose `Err` is (message, hint) shown at
    /// the value; `None` when absent or null.
    pub fn parse<T>(
        &self,
        field: &str,
        read: impl FnOnce(&str) -> Result<T, (String, Option<String>)>,
    ) -> Result<Option<T>, ManifestError> {
        let Some(f) = self.fields.get(field) else {
            return Ok(None);
        };
        let Some(text) = &f.value.value else {
            return Ok(None);
        };
        read(text)
            .map(Some)
            .map_err(|(message, hint)| self.checker.at(&f.value, message, hint))
    }

    /// An error underlining the value of `field` (its name when it has none).
    pub fn error(
        &self,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        match self.fields.get(field) {
            Some(f) if f.value.value.is_some() => self.checker.at(&f.value, message, hint),
            Some(f) => self.checker.at_key(&f.key, message, hint),
            None => self.checker.error(Some(self.at), 1, message, hint),
        }
    }

    /// An error underlining the name of `field`.
    pub fn key_error(
        &self,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        match self.fields.get(field) {
            Some(f) => self.checker.at_key(&f.key, message, hint),
            None => self.checker.error(Some(self.at), 1, message, hint),
        }
    }

    /// "target `x` (kind) needs `field`", at the target.
    pub fn missing(&self, field: &str) -> ManifestError {
        self.checker.error(
            Some(self.at),
            1,
            format!("target `{}` ({}) needs `{field}`", self.target, self.kind),
            None,
        )
    }
}
