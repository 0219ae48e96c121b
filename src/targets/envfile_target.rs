//! The env-file format as a target sees it, shared by the `env_file` and
//! `ssh_env` backends: a file's bytes read into [`Observed`] (the whole text
//! kept as the snapshot), its new text once [`Change`]s are made, and the
//! plan's notes on `export ` prefixes a format drops. The format itself
//! (`crate::envfile`) knows none of these types.

use std::collections::BTreeSet;

use zeroize::Zeroizing;

/// What an env file that exists keeps in its [`Observed`] beyond the keys:
/// needed to write it safely and to plan it truthfully.
#[derive(Debug, Clone, Default)]
pub struct FileRead {
    /// The whole text as read: edited in place on write, and compared to
    /// the file again to detect a concurrent change.
    pub text: Secret,
    /// Keys defined more than once: never in sync, so that apply leaves one
    /// definition.
    pub duplicated: BTreeSet<String>,
}

use super::{Change, Observation, Observed, Op, TargetError};
use crate::envfile::{Edit, EnvFile, Format, Managed};
use crate::secret::Secret;

/// A change is an edit of the file: add and update set the key, delete
/// removes it.
impl Edit for Change {
    fn key(&self) -> &str {
        &self.key
    }
    fn value(&self) -> Option<&Secret> {
        self.op.value()
    }
}

/// The text of a file read from `location` (a path, or `host:path`), or an
/// error naming the line with the first byte that is not UTF-8.
pub fn decode(location: &str, bytes: &[u8]) -> Result<Secret, TargetError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Secret::new(text.to_string())),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Err(
                TargetError::failed(format!("{location}:{line}: the file is not valid UTF-8"))
                    .with_hint("env files are text: re-save it as UTF-8"),
            )
        }
    }
}

/// `text` parsed, or an error naming `location` and the line.
pub fn parse_at(location: &str, text: &Secret) -> Result<EnvFile, TargetError> {
    EnvFile::parse(text.expose()).map_err(|e| {
        TargetError::failed(format!("{location}:{}: {}", e.line, e.message))
            .with_hint("fix that line: secretsync only edits env files it can parse")
    })
}

/// What a target observes in a file whose bytes are `bytes` (`None`: the
/// file does not exist). The whole text is kept as the snapshot, to edit in
/// place and to detect a concurrent change.
pub fn observe(location: &str, bytes: Option<&[u8]>) -> Result<Observed, TargetError> {
    let Some(bytes) = bytes else {
        return Ok(Observed::missing());
    };
    let text = decode(location, bytes)?;
    let doc = parse_at(location, &text)?;
    let Managed {
        entries,
        duplicated,
        notes,
    } = doc.managed();
    let entries = entries
        .into_iter()
        .map(|(k, v)| (k, Observation::Value(v)))
        .collect();
    let notes = notes
        .into_iter()
        .map(|n| format!("{location}: {n}"))
        .collect();
    Ok(Observed::complete(entries)
        .with_notes(notes)
        .with_file(FileRead { text, duplicated }))
}

/// A note per key whose line starts with `export ` that `changes` rewrite
/// in a format that drops the prefix (a shell sourcing the file would no
/// longer pass the key to its children): the plan says so before apply.
pub fn dropped_exports(observed: &Observed, changes: &[Change], format: Format) -> Vec<String> {
    if format.keeps_export() || !changes.iter().any(|c| matches!(c.op, Op::Update(_))) {
        return Vec::new();
    }
    let Some(text) = observed.snapshot().map(Secret::expose) else {
        return Vec::new();
    };
    if !text.contains("export") {
        return Vec::new();
    }
    let Ok(doc) = EnvFile::parse(text) else {
        return Vec::new();
    };
    let exported = doc.exported();
    changes
        .iter()
        .filter(|c| matches!(c.op, Op::Update(_)))
        .filter(|c| exported.contains(c.key.as_str()))
        .map(|c| {
            let why = if format == Format::Systemd {
                "format systemd: systemd ignores `export` lines".to_string()
            } else {
                format!("format {}: systemd, one of its readers, ignores `export` lines", format.name())
            };
            format!(
                "{}: its `export ` prefix is dropped on rewrite ({why}), so a shell sourcing the file no longer exports it to child processes; `format: shell` keeps it",
                c.key
            )
        })
        .collect()
}

/// The new text of a file that holds `current` (`None`: missing) once
/// `changes` are made, edited in place.
pub fn edited(
    location: &str,
    current: Option<&[u8]>,
    changes: &[Change],
    format: Format,
) -> Result<Zeroizing<String>, TargetError> {
    let text = match current {
        Some(bytes) => decode(location, bytes)?,
        None => Secret::default(),
    };
    let mut doc = parse_at(location, &text)?;
    doc.apply(changes, format)
        .map_err(|why| TargetError::invalid(format!("{location}: {why}")))?;
    Ok(Zeroizing::new(doc.render()))
}
