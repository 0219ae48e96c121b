//! One target's fields as the manifest wrote them, each with its place: what
//! a [`Kind`](crate::targets::Kind) reads its spec from. Every accessor that
//! refuses a value says so at that value's file, line and column.
//!
//! Values are the scalar text as written (`22`, `true`, `0123` stay text);
//! each accessor reads the type it wants from it.
//!
//! It lives in the seam, below the manifest that builds it, so that kinds
//! read their specs without importing the manifest; the manifest re-exports
//! it, with [`Locator`] (where a mistake stands in the file), [`argv_safe`]
//! and [`parse_duration`].

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::diagnostics::{Located, ManifestError};

/// One field: where its name stands and its value (`None`: written as null).
pub struct Field {
    pub key: Spanned<String>,
    pub value: Spanned<Option<String>>,
}

/// Builds located errors in one manifest file: the path and its lines, so
/// that an error shows the line with a caret under the mistake.
pub struct Locator<'a> {
    path: &'a Path,
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    pub fn new(path: &'a Path, source: &'a str) -> Self {
        Locator {
            path,
            lines: source.lines().collect(),
        }
    }

    /// The manifest's path.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn error(
        &self,
        loc: Option<Location>,
        width: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        let (line, column) = loc
            .filter(|l| l.line() > 0)
            .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        let source_line = (line > 0)
            .then(|| self.lines.get(line - 1).map(|s| s.to_string()))
            .flatten();
        ManifestError::At(Box::new(Located {
            path: self.path.to_path_buf(),
            line,
            column,
            width,
            message: message.into(),
            hint,
            source_line,
        }))
    }

    /// An error underlining the scalar that starts at `loc`.
    pub fn at<T>(
        &self,
        s: &Spanned<T>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        let width = self.width_at(s.referenced);
        self.error(Some(s.referenced), width, message, hint)
    }

    /// An error underlining the map key `key`.
    pub fn at_key(
        &self,
        key: &Spanned<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        let width = key.value.chars().count().max(1);
        self.error(Some(key.referenced), width, message, hint)
    }

    /// The width of the token at `loc`: up to the end of a plain scalar.
    fn width_at(&self, loc: Location) -> usize {
        let (line, col) = (loc.line() as usize, loc.column() as usize);
        let Some(text) = line.checked_sub(1).and_then(|i| self.lines.get(i)) else {
            return 1;
        };
        let rest: String = text.chars().skip(col.saturating_sub(1)).collect();
        let end = rest.find([',', ']', '}', '#']).unwrap_or(rest.len());
        rest[..end].trim_end().chars().count().max(1)
    }
}

/// The fields of one target.
pub struct Fields<'a> {
    checker: &'a Locator<'a>,
    target: &'a str,
    kind: &'static str,
    /// Where the target's mapping starts: "needs `x`" points here.
    at: Location,
    fields: IndexMap<String, Field>,
}

impl<'a> Fields<'a> {
    pub fn new(
        checker: &'a Locator<'a>,
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
            argv_safe(t).map(|()| t.to_string()).map_err(|why| {
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

/// Why `value` could be read as an option or break a command line, if it could.
pub fn argv_safe(value: &str) -> Result<(), &'static str> {
    if value.starts_with('-') {
        Err("starts with `-`, which a program would read as an option")
    } else if value.chars().any(char::is_control) {
        Err("contains a control character")
    } else {
        Ok(())
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| "not a duration".to_string())?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err("out of range".into());
    }
    Ok(Duration::from_secs_f64(secs))
}
