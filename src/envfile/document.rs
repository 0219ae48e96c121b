//! The file as a list of segments, each with its raw text: what it
//! defines, and its text back (as read, or with the values hidden).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::parser::{ParseError, Parser};
use super::segment::{check_key, Entry, Segment};
use crate::secret::Secret;

/// The UTF-8 byte order mark some editors put first.
pub(super) const BOM: char = '\u{feff}';

/// A parsed env file that renders back byte for byte where it was not edited.
pub struct EnvFile {
    /// The file started with a byte order mark (kept on render).
    pub(super) bom: bool,
    pub(super) segments: Vec<Segment>,
}

/// What [`EnvFile::managed`] finds.
pub struct Managed {
    pub entries: BTreeMap<String, Secret>,
    pub duplicated: BTreeSet<String>,
    pub notes: Vec<String>,
}

impl fmt::Debug for EnvFile {
    /// Keys only: the values (and the raw text holding them) are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self
            .segments
            .iter()
            .filter_map(|s| s.entry.as_ref().map(|e| e.key.as_str()))
            .collect();
        f.debug_struct("EnvFile")
            .field("segments", &self.segments.len())
            .field("keys", &keys)
            .finish()
    }
}

impl EnvFile {
    pub fn parse(text: &str) -> Result<EnvFile, ParseError> {
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut parser = Parser {
            text,
            pos: 0,
            line: 1,
        };
        let mut segments = Vec::new();
        while parser.pos < text.len() {
            segments.push(parser.segment()?);
        }
        Ok(EnvFile { bom, segments })
    }

    /// Every key with its value; where a key is defined twice, the last wins.
    /// Includes keys secretsync cannot manage (see [`EnvFile::managed`]).
    pub fn entries(&self) -> BTreeMap<String, Secret> {
        self.segments
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// The keys secretsync manages (variable names) with their last
    /// definition's value (what sh, systemd, python-dotenv and node read),
    /// the keys defined more than once (readers disagree which wins: dotenvy
    /// takes the first), and notes on those and on keys left alone, naming
    /// lines, never values.
    pub fn managed(&self) -> Managed {
        let mut defs: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        let mut notes = Vec::new();
        if self.bom {
            // Measured (docs/env-formats.md): only node's dotenv skips it.
            notes.push(
                "the file starts with a UTF-8 byte order mark (kept): sh fails on it, and bash, \
                 systemd, python-dotenv and node --env-file read the first key under another name"
                    .to_string(),
            );
        }
        for e in self.segments.iter().filter_map(|s| s.entry.as_ref()) {
            if check_key(&e.key).is_err() {
                notes.push(format!(
                    "line {}: `{}` is not a variable name (letters, digits and `_`, not \
                     starting with a digit): left as is, not managed",
                    e.line, e.key
                ));
                continue;
            }
            defs.entry(&e.key).or_default().push(e);
        }
        let mut out = BTreeMap::new();
        let mut duplicated = BTreeSet::new();
        for (key, list) in defs {
            let last = list[list.len() - 1];
            if list.len() > 1 {
                let lines: Vec<String> = list.iter().map(|e| e.line.to_string()).collect();
                let lines = match lines.as_slice() {
                    [init @ .., l] => format!("{} and {l}", init.join(", ")),
                    [] => String::new(),
                };
                notes.push(format!(
                    "`{key}` is defined on lines {lines}; readers disagree which wins \
                     (apply leaves one definition)"
                ));
                duplicated.insert(key.to_string());
            }
            out.insert(key.to_string(), last.value.clone());
        }
        Managed {
            entries: out,
            duplicated,
            notes,
        }
    }

    /// The keys whose line starts with `export `.
    pub fn exported(&self) -> BTreeSet<&str> {
        self.segments
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .filter(|e| e.export)
            .map(|e| e.key.as_str())
            .collect()
    }

    /// The text: untouched lines exactly as read.
    pub fn render(&self) -> String {
        let len = self.segments.iter().map(|s| s.raw.len() + 2).sum::<usize>() + 3;
        let mut out = String::with_capacity(len);
        if self.bom {
            out.push(BOM);
        }
        for seg in &self.segments {
            out.push_str(seg.raw.expose());
            out.push_str(seg.eol);
        }
        out
    }

    /// The text with each value replaced by `mark(key, value)`: every entry
    /// on one line as `[export ]KEY=<mark>`, comments and blank lines as they
    /// are. For showing a diff of the file without its values.
    pub fn redacted(&self, mark: &dyn Fn(&str, &Secret) -> String) -> String {
        let mut out = String::new();
        if self.bom {
            out.push(BOM);
        }
        for seg in &self.segments {
            match &seg.entry {
                Some(e) => {
                    if e.export {
                        out.push_str("export ");
                    }
                    out.push_str(&e.key);
                    out.push('=');
                    out.push_str(&mark(&e.key, &e.value));
                }
                None => out.push_str(seg.raw.expose()),
            }
            out.push_str(seg.eol);
        }
        out
    }
}
