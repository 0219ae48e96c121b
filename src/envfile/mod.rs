//! The env-file format, shared by the `env_file` and `ssh_env` targets:
//! parse, edit in place, render.
//!
//! A file is kept as a list of segments, each with its raw text: entries
//! (`KEY=value`, possibly spanning lines inside quotes) and everything else
//! (comments, blank lines). Rendering an unedited file gives back the input
//! byte for byte; an edit rewrites only the entries it touches, so comments,
//! order, line ends and untouched lines survive.
//!
//! Reading is one tolerant dialect, which reads every form any [`Format`]
//! writes exactly:
//!
//! ```text
//! # a comment
//! export KEY=value          # `export ` is accepted (kept on rewrite where the format allows)
//! KEY = value # inline comment (unquoted: starts at whitespace + `#`)
//! KEY='literal $text, may span lines'
//! KEY="escapes \\ \" \$ \` \n \t \r; may span lines"
//! ```
//!
//! Writing depends on who reads the file: the target's [`Format`] encodes
//! each value in a form its reader reads back exactly, or refuses it
//! (src/envfile/format.rs). NUL and CR cannot be written in any format.
//!
//! Keys the file defines that secretsync cannot manage (`a.b`, `a-b`, `1A`:
//! not variable names) are kept as they are and reported, never edited. A
//! key defined more than once is reported, and an edit leaves one definition.
//! A UTF-8 byte order mark is accepted and kept.
//!
//! Line ends: `\n` and `\r\n` are both accepted as line ends and kept as they
//! were; a CR anywhere else in a value (a CRLF file with a multi-line quoted
//! value, a stray CR) is a parse error rather than a value silently changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use zeroize::Zeroizing;

mod format;

pub use format::{Format, Refusal};

use crate::secret::Secret;
use crate::targets::{Change, Observation, Observed, Op, TargetError};

/// The UTF-8 byte order mark some editors put first.
const BOM: char = '\u{feff}';

/// A parsed env file that renders back byte for byte where it was not edited.
pub struct EnvFile {
    /// The file started with a byte order mark (kept on render).
    bom: bool,
    segments: Vec<Segment>,
}

/// One piece of the file: its raw text (without the line end that closes
/// it) and that line end, so unedited segments render exactly as read.
struct Segment {
    /// The text as read, or as rewritten by an edit. Held as a [`Secret`]
    /// because an entry's raw text contains its value.
    raw: Secret,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a line end.
    eol: &'static str,
    /// `None` for comments, blank lines and other text kept as is.
    entry: Option<Entry>,
}

struct Entry {
    /// 1-based line the entry starts on, as read (0 for an added entry).
    line: usize,
    key: String,
    value: Secret,
    /// Whitespace before the key (or before `export`), kept on rewrite.
    indent: String,
    export: bool,
    /// An inline comment after the value (with the whitespace before it),
    /// kept on rewrite; empty when there is none.
    comment: String,
}

/// What [`EnvFile::managed`] finds.
pub struct Managed {
    pub entries: BTreeMap<String, Secret>,
    pub duplicated: BTreeSet<String>,
    pub notes: Vec<String>,
}

/// A line that cannot be parsed. The message never contains a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

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

    /// Adds, updates (every definition of the key, in place) and deletes.
    ///
    /// All changes are checked first (key names, values this format can
    /// hold): on `Err` (which names the key, never the value) nothing was
    /// changed. An update of an absent key adds it; a delete of an absent key
    /// does nothing.
    pub fn apply(&mut self, changes: &[Change], format: Format) -> Result<(), String> {
        for change in changes {
            if let Some(value) = change.op.value() {
                check_key(&change.key)?;
                check_value(format, value).map_err(|why| format!("{}: {why}", change.key))?;
            }
        }
        for change in changes {
            match &change.op {
                Op::Add(value) | Op::Update(value) => self.set(&change.key, value, format),
                Op::Delete => self
                    .segments
                    .retain(|s| s.entry.as_ref().is_none_or(|e| e.key != change.key)),
            }
        }
        Ok(())
    }

    /// Rewrites the last definition of `key` in `format` (other definitions
    /// go), or appends one when there is none. `value` was checked.
    fn set(&mut self, key: &str, value: &Secret, format: Format) {
        let defs: Vec<usize> = self
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.as_ref().is_some_and(|e| e.key == key))
            .map(|(i, _)| i)
            .collect();
        if let Some((&keep, others)) = defs.split_last() {
            let seg = &mut self.segments[keep];
            let entry = seg.entry.as_mut().expect("an entry");
            entry.value = value.clone();
            if !format.keeps_export() {
                entry.export = false;
            }
            let mut moved_comment = None;
            if !format.keeps_inline_comment() && !entry.comment.is_empty() {
                moved_comment = Some(std::mem::take(&mut entry.comment));
            }
            let mut raw = String::with_capacity(entry.indent.len() + key.len() + value.len() + 16);
            raw.push_str(&entry.indent);
            if entry.export {
                raw.push_str("export ");
            }
            push_assignment(&mut raw, key, value, format);
            raw.push_str(&entry.comment);
            seg.raw = Secret::new(raw);
            let eol = seg.eol;
            let indent = entry.indent.clone();
            let file_eol = self.line_end();
            if let Some(comment) = moved_comment {
                // The reader would take it as part of the value: keep it on
                // a line of its own above the entry.
                let text = format!("{indent}{}", comment.trim_start_matches(is_blank));
                self.segments.insert(
                    keep,
                    Segment {
                        raw: Secret::new(text),
                        eol: if eol.is_empty() { file_eol } else { eol },
                        entry: None,
                    },
                );
            }
            for &i in others.iter().rev() {
                self.segments.remove(i);
            }
            return;
        }
        let eol = self.line_end();
        if let Some(last) = self.segments.last_mut() {
            if last.eol.is_empty() {
                last.eol = eol;
            }
        }
        let mut raw = String::with_capacity(key.len() + value.len() + 8);
        push_assignment(&mut raw, key, value, format);
        self.segments.push(Segment {
            raw: Secret::new(raw),
            eol,
            entry: Some(Entry {
                line: 0,
                key: key.to_string(),
                value: value.clone(),
                indent: String::new(),
                export: false,
                comment: String::new(),
            }),
        });
    }

    /// The line end new lines get: the file's own (the first one found), so
    /// a CRLF file stays CRLF.
    fn line_end(&self) -> &'static str {
        self.segments
            .iter()
            .map(|s| s.eol)
            .find(|e| !e.is_empty())
            .unwrap_or("\n")
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
        return Ok(Observed {
            entries: Default::default(),
            exists: false,
            complete: true,
            snapshot: None,
            notes: Vec::new(),
            duplicated: BTreeSet::new(),
        });
    };
    let text = decode(location, bytes)?;
    let doc = parse_at(location, &text)?;
    let Managed {
        entries,
        duplicated,
        notes,
    } = doc.managed();
    Ok(Observed {
        entries: entries
            .into_iter()
            .map(|(k, v)| (k, Observation::Value(v)))
            .collect(),
        exists: true,
        complete: true,
        snapshot: Some(text),
        notes: notes
            .into_iter()
            .map(|n| format!("{location}: {n}"))
            .collect(),
        duplicated,
    })
}

/// A note per key whose line starts with `export ` that `changes` rewrite
/// in a format that drops the prefix (a shell sourcing the file would no
/// longer pass the key to its children): the plan says so before apply.
pub fn dropped_exports(observed: &Observed, changes: &[Change], format: Format) -> Vec<String> {
    if format.keeps_export() || !changes.iter().any(|c| matches!(c.op, Op::Update(_))) {
        return Vec::new();
    }
    let Some(text) = observed.snapshot.as_ref().map(Secret::expose) else {
        return Vec::new();
    };
    if !text.contains("export") {
        return Vec::new();
    }
    let Ok(doc) = EnvFile::parse(text) else {
        return Vec::new();
    };
    let exported: BTreeSet<&str> = doc
        .segments
        .iter()
        .filter_map(|s| s.entry.as_ref())
        .filter(|e| e.export)
        .map(|e| e.key.as_str())
        .collect();
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

/// Whether a value can be written in `format`: NUL and CR never can; others
/// when the format has a form its reader reads back exactly.
pub fn check_value(format: Format, value: &Secret) -> Result<(), String> {
    let v = value.expose();
    if v.contains('\0') {
        return Err("an env file cannot hold a NUL character".to_string());
    }
    if v.contains('\r') {
        return Err(
            "an env file cannot hold a carriage return (CR): readers drop or mangle it".to_string(),
        );
    }
    format.encode(v).map(drop).map_err(|r| r.to_string())
}

/// Whether a key can be written: `^[A-Za-z_][A-Za-z0-9_]*$`, the names all
/// dialects (and shells) accept.
pub fn check_key(key: &str) -> Result<(), String> {
    if crate::envkey::is_env_key(key) {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a valid env file key (letters, digits and `_`, not starting with a digit)"
        ))
    }
}

/// Appends `KEY=value` in `format`'s form (the value was checked).
fn push_assignment(out: &mut String, key: &str, value: &Secret, format: Format) {
    out.push_str(key);
    out.push('=');
    let form = Zeroizing::new(
        format
            .encode(value.expose())
            .expect("values are checked before they are written"),
    );
    out.push_str(&form);
}

/// A cursor over the text; `line` is the 1-based line `pos` is on.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    /// The line starting at `from`: its text without the line end, and the
    /// line end (`"\n"`, `"\r\n"`, or `""` at the end of the text).
    fn line_at(&self, from: usize) -> (&'a str, &'static str) {
        let rest = &self.text[from..];
        match rest.find('\n') {
            Some(i) if i > 0 && rest.as_bytes()[i - 1] == b'\r' => (&rest[..i - 1], "\r\n"),
            Some(i) => (&rest[..i], "\n"),
            None => (rest, ""),
        }
    }

    /// Parses one segment starting at a line start and moves past it.
    fn segment(&mut self) -> Result<Segment, ParseError> {
        let start = self.pos;
        let (line, eol) = self.line_at(start);
        let body = line.trim_start_matches(is_blank);
        if body.is_empty() || body.starts_with('#') {
            self.pos = start + line.len() + eol.len();
            self.line += 1;
            return Ok(Segment {
                raw: Secret::new(line.to_string()),
                eol,
                entry: None,
            });
        }
        let entry = self.entry(start)?;
        // `self.pos` is now at the end of the entry's last line (before its
        // line end).
        let raw = &self.text[start..self.pos];
        let (rest, eol) = self.line_at(self.pos);
        debug_assert!(rest.is_empty());
        self.pos += eol.len();
        self.line += 1;
        Ok(Segment {
            raw: Secret::new(raw.to_string()),
            eol,
            entry: Some(entry),
        })
    }

    /// Parses `[indent][export ]KEY[ ]=[ ]value[ # comment]` from `start`;
    /// leaves `pos` at the end of the entry's last line.
    fn entry(&mut self, start: usize) -> Result<Entry, ParseError> {
        let line_no = self.line;
        let (line, _) = self.line_at(start);
        let body = line.trim_start_matches(is_blank);
        let indent = line[..line.len() - body.len()].to_string();
        let mut rest = body;
        let mut export = false;
        if let Some(after) = rest.strip_prefix("export") {
            let trimmed = after.trim_start_matches(is_blank);
            // `export` is a keyword only when a key follows after blanks;
            // `export=1` defines the key `export`.
            if trimmed.len() < after.len() && !trimmed.starts_with('=') {
                export = true;
                rest = trimmed;
            }
        }
        let key_len = rest
            .char_indices()
            // Wider than a variable name: keys like `a.b`, `a-b` or `1A`
            // are read (and left alone, see `managed`) rather than refused.
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .map_or(rest.len(), |(i, _)| i);
        if key_len == 0 {
            return Err(self.err(
                line_no,
                "expected `KEY=value`, a `# comment` or a blank line",
            ));
        }
        let key = rest[..key_len].to_string();
        rest = rest[key_len..].trim_start_matches(is_blank);
        let Some(after_eq) = rest.strip_prefix('=') else {
            // The key is not named: a line without `=` may be a stray piece
            // of a value.
            return Err(self.err(
                line_no,
                "expected `=` after the key name (lines are `KEY=value`, `# comment` or blank)",
            ));
        };
        rest = after_eq.trim_start_matches(is_blank);
        // Byte offset of the value's first character in the whole text.
        let value_start = start + line.len() - rest.len();

        let (value, comment) = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let (value, end) = self.quoted(value_start, q, &key)?;
                // `end` is just past the closing quote; the rest of that line
                // may hold only blanks and a comment.
                let (tail, _) = self.line_at(end);
                let trimmed = tail.trim_start_matches(is_blank);
                if !trimmed.is_empty() && !trimmed.starts_with('#') {
                    return Err(self.err(
                        self.line,
                        format!("unexpected text after the closing quote of `{key}`"),
                    ));
                }
                if tail.contains('\r') {
                    return Err(self.err(
                        self.line,
                        format!("a carriage return (CR) in the line of `{key}`"),
                    ));
                }
                let comment = if trimmed.is_empty() {
                    String::new()
                } else {
                    tail.to_string()
                };
                self.pos = end + tail.len();
                (value, comment)
            }
            _ => {
                if rest.contains('\r') {
                    return Err(self.err(
                        line_no,
                        format!("a carriage return (CR) inside the value of `{key}`"),
                    ));
                }
                // An inline comment starts at a blank followed by `#`
                // (`KEY= # c` is an empty value; `KEY=#x` is the value `#x`).
                let blank_before = after_eq.len() > rest.len();
                let cut = rest
                    .char_indices()
                    .find(|&(i, c)| {
                        c == '#'
                            && if i == 0 {
                                blank_before
                            } else {
                                rest[..i].ends_with(is_blank)
                            }
                    })
                    .map_or(rest.len(), |(i, _)| i);
                let value = rest[..cut].trim_end_matches(is_blank);
                let comment = if cut == 0 {
                    after_eq.to_string()
                } else if cut < rest.len() {
                    rest[value.len()..].to_string()
                } else {
                    String::new()
                };
                self.pos = start + line.len();
                (Secret::new(value.to_string()), comment)
            }
        };
        Ok(Entry {
            line: line_no,
            key,
            value,
            indent,
            export,
            comment,
        })
    }

    /// Reads a quoted value whose opening quote `q` is at `open`. Returns the
    /// value and the offset just past the closing quote; counts the lines it
    /// crosses.
    fn quoted(&mut self, open: usize, q: char, key: &str) -> Result<(Secret, usize), ParseError> {
        let opened_on = self.line;
        let mut value = crate::secret::SecretBuf::default();
        let mut chars = self.text[open + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == q => return Ok((value.into_secret(), open + 1 + i + 1)),
                '\r' => {
                    return Err(self.err(
                        self.line,
                        format!(
                            "a carriage return (CR) inside the quoted value of `{key}`; \
                             convert the file to LF line ends"
                        ),
                    ))
                }
                '\n' => {
                    self.line += 1;
                    value.push('\n');
                }
                '\\' if q == '"' => match chars.next() {
                    Some((_, e @ ('\\' | '"' | '$' | '`'))) => value.push(e),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, '\r')) => {
                        return Err(self.err(
                            self.line,
                            format!(
                                "a carriage return (CR) inside the quoted value of `{key}`; \
                                 convert the file to LF line ends"
                            ),
                        ))
                    }
                    Some((_, other)) => {
                        if other == '\n' {
                            self.line += 1;
                        }
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        // Scrub what was collected before reporting.
        drop(value);
        let kind = if q == '"' { "double" } else { "single" };
        Err(self.err(
            opened_on,
            format!("the {kind}-quoted value of `{key}` is never closed"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Format = Format::Dotenv;

    fn s(v: &str) -> Secret {
        Secret::new(v.to_string())
    }

    fn parse(text: &str) -> EnvFile {
        EnvFile::parse(text).expect("parses")
    }

    fn value(doc: &EnvFile, key: &str) -> Option<String> {
        doc.entries().get(key).map(|v| v.expose().to_string())
    }

    fn add(key: &str, v: &str) -> Change {
        Change {
            key: key.into(),
            op: Op::Add(s(v)),
        }
    }

    fn update(key: &str, v: &str) -> Change {
        Change {
            key: key.into(),
            op: Op::Update(s(v)),
        }
    }

    fn delete(key: &str) -> Change {
        Change {
            key: key.into(),
            op: Op::Delete,
        }
    }

    const TRICKY: &[&str] = &[
        "",
        "plain",
        "with \"double\" and 'single' quotes",
        "$HOME and ${HOME} and $(id) and `id`",
        "# not a comment",
        "a #hash after a space",
        "back\\slash\\",
        "\\n is not a newline",
        "\\\"",
        "tab\there",
        "unicode: é ü 漢字 🔑",
        "  leading and trailing spaces  ",
        "line one\nline two\n",
        "\n",
        "multi\n  indented\n\"quoted\"\n$var\\",
        "'",
        "\"",
        "=",
        "x=y # z",
    ];

    /// Whatever form a format writes, the parser reads the value back (so a
    /// plan after apply is in sync); values a format refuses are skipped here
    /// (tests/integration/readers.rs proves the readers and the refusals).
    #[test]
    fn every_tricky_value_round_trips_in_every_format() {
        for format in Format::ALL {
            for (i, v) in TRICKY.iter().enumerate() {
                if format.encode(v).is_err() {
                    continue;
                }
                let key = format!("K{i}");
                for start in ["", "A=1\n", "A=1", "# c\n\nB='x'\n"] {
                    let mut doc = parse(start);
                    doc.apply(&[add(&key, v)], format).unwrap();
                    let text = doc.render();
                    let back = parse(&text);
                    assert_eq!(
                        value(&back, &key).as_deref(),
                        Some(*v),
                        "{format}: value #{i} after {start:?}"
                    );
                    // Updating an existing definition round-trips too.
                    let mut doc = back;
                    doc.apply(&[update(&key, "other")], format).unwrap();
                    doc.apply(&[update(&key, v)], format).unwrap();
                    assert_eq!(value(&parse(&doc.render()), &key).as_deref(), Some(*v));
                }
            }
        }
    }

    #[test]
    fn shell_format_single_quotes_or_escapes_for_sh() {
        let mut doc = parse("");
        doc.apply(&[add("K", "a\\b\"c$d\ne\tf")], Format::Shell)
            .unwrap();
        assert_eq!(doc.render(), "K='a\\b\"c$d\ne\tf'\n");
        let mut doc = parse("");
        doc.apply(&[add("K", "it's `id` $(id) \\")], Format::Shell)
            .unwrap();
        assert_eq!(doc.render(), "K=\"it's \\`id\\` \\$(id) \\\\\"\n");
    }

    #[test]
    fn a_value_without_a_form_is_refused_before_anything_changes() {
        let mut doc = parse("A=1\n");
        let err = doc
            .apply(&[add("B", "x"), add("C", "it's $secret")], D)
            .unwrap_err();
        assert!(err.starts_with("C: `format: dotenv`"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(doc.render(), "A=1\n");
        doc.apply(&[add("C", "it's $secret")], Format::Systemd)
            .unwrap();
    }

    #[test]
    fn systemd_and_dotenv_edits_drop_export_and_move_inline_comments() {
        let text = "export A=1 # keep me\nB='x'   # too\n";
        for format in [Format::Systemd, D] {
            let mut doc = parse(text);
            doc.apply(&[update("A", "2"), update("B", "y z")], format)
                .unwrap();
            assert_eq!(doc.render(), "# keep me\nA=2\n# too\nB='y z'\n", "{format}");
        }
        let mut doc = parse(text);
        doc.apply(&[update("A", "2")], Format::Shell).unwrap();
        assert_eq!(doc.render(), "export A=2 # keep me\nB='x'   # too\n");
    }

    #[test]
    fn a_bom_is_read_and_kept() {
        let mut doc = parse("\u{feff}A=1\r\nB=2\r\n");
        assert_eq!(value(&doc, "A").as_deref(), Some("1"));
        assert!(doc.managed().notes[0].contains("byte order mark"));
        doc.apply(&[update("B", "3")], D).unwrap();
        assert_eq!(doc.render(), "\u{feff}A=1\r\nB=3\r\n");
    }

    #[test]
    fn keys_that_are_not_names_are_noted_and_left_alone() {
        let text = "a.b=1\nA-B=2\n1A=3\nOK=4\n";
        let doc = parse(text);
        let Managed { entries, notes, .. } = doc.managed();
        assert_eq!(entries.keys().collect::<Vec<_>>(), ["OK"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].starts_with("line 1: `a.b` is not a variable name"),
            "{notes:?}"
        );
        assert!(notes[2].starts_with("line 3: `1A`"), "{notes:?}");
        let mut doc = doc;
        doc.apply(&[update("OK", "5")], D).unwrap();
        assert_eq!(doc.render(), "a.b=1\nA-B=2\n1A=3\nOK=5\n");
    }

    #[test]
    fn a_key_defined_twice_is_noted_not_in_sync_and_left_once() {
        let text = "K=old\nA=1\n\nK=current\n";
        let doc = parse(text);
        let m = doc.managed();
        assert_eq!(m.entries["K"].expose(), "current");
        assert_eq!(m.duplicated.iter().collect::<Vec<_>>(), ["K"]);
        let notes = m.notes;
        assert_eq!(
            notes,
            ["`K` is defined on lines 1 and 4; readers disagree which wins (apply leaves one definition)"]
        );
        let mut doc = doc;
        doc.apply(&[update("K", "current")], D).unwrap();
        assert_eq!(doc.render(), "A=1\n\nK=current\n");
        // Identical definitions: still noted and collapsed by apply.
        let m = parse("K=x\nK=x\n").managed();
        assert_eq!(m.entries["K"].expose(), "x");
        assert_eq!((m.notes.len(), m.duplicated.len()), (1, 1));
    }

    #[test]
    fn unedited_render_is_the_input() {
        for text in [
            "",
            "\n",
            "A=1",
            "A=1\n",
            "A=1\r\nB=2\r\n",
            "A=1\r\nB=2",
            "# comment\n\n  \t\nexport A = 'x'  # c\nB=\"m\nl\"\n",
            "A=1\n\n\n",
            "  # indented comment\nA=\"x\" \t",
            "#\r\n\r\n",
        ] {
            assert_eq!(parse(text).render(), text);
        }
    }

    #[test]
    fn parse_forms() {
        let doc = parse(concat!(
            "# comment\n",
            "\n",
            "PLAIN=value\n",
            "export EXPORTED=yes\n",
            "SPACED = around  \n",
            "TRAILING=trailing spaces   \n",
            "INLINE=value # comment\n",
            "HASH=a#b\n",
            "EMPTY=\n",
            "EMPTYQ=\"\"\n",
            "SINGLE='lit $x \\n \"q\"'\n",
            "DOUBLE=\"esc \\\\ \\\" \\$ \\n \\t \\r \\q\"\n",
            "MULTI=\"one\ntwo\"\n",
            "MULTIS='one\ntwo'\n",
            "AFTER=\"x\"   # comment\n",
            "  INDENTED=i\n",
            "\tTABBED=t\n",
            "export=kw\n",
            "DOT.KEY=d\n",
            "COMMENT_ONLY= # nothing\n",
        ));
        let want: &[(&str, &str)] = &[
            ("PLAIN", "value"),
            ("EXPORTED", "yes"),
            ("SPACED", "around"),
            ("TRAILING", "trailing spaces"),
            ("INLINE", "value"),
            ("HASH", "a#b"),
            ("EMPTY", ""),
            ("EMPTYQ", ""),
            ("SINGLE", "lit $x \\n \"q\""),
            ("DOUBLE", "esc \\ \" $ \n \t \r \\q"),
            ("MULTI", "one\ntwo"),
            ("MULTIS", "one\ntwo"),
            ("AFTER", "x"),
            ("INDENTED", "i"),
            ("TABBED", "t"),
            ("export", "kw"),
            ("DOT.KEY", "d"),
            ("COMMENT_ONLY", ""),
        ];
        for (k, v) in want {
            assert_eq!(value(&doc, k).as_deref(), Some(*v), "{k}");
        }
        assert_eq!(doc.entries().len(), want.len());
    }

    #[test]
    fn crlf_line_ends_are_accepted_and_kept() {
        let text = "A=1\r\nB=\"two\"\r\n# c\r\n";
        let mut doc = parse(text);
        assert_eq!(value(&doc, "A").as_deref(), Some("1"));
        assert_eq!(value(&doc, "B").as_deref(), Some("two"));
        doc.apply(&[update("A", "x"), add("C", "y")], D).unwrap();
        assert_eq!(doc.render(), "A=x\r\nB=\"two\"\r\n# c\r\nC=y\r\n");
    }

    #[test]
    fn last_definition_wins() {
        let doc = parse("A=1\nA=2\n");
        assert_eq!(value(&doc, "A").as_deref(), Some("2"));
    }

    #[test]
    fn errors_name_the_line_never_the_value() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "A=1\nsecret-ish garbage\n",
                2,
                "expected `=` after the key name",
            ),
            (
                "A=1\n\nKEY secretvalue\n",
                3,
                "expected `=` after the key name",
            ),
            ("A=1\nsecretvalue\n", 2, "expected `=` after the key name"),
            (
                "A=\"secretvalue\n\nmore",
                1,
                "double-quoted value of `A` is never closed",
            ),
            (
                "# c\nA='secretvalue",
                2,
                "single-quoted value of `A` is never closed",
            ),
            (
                "A=\"secret\" value\n",
                1,
                "unexpected text after the closing quote of `A`",
            ),
            (
                "A=\"multi\nline\" secretvalue\n",
                2,
                "unexpected text after",
            ),
            ("A=secret\rvalue\n", 1, "carriage return"),
            ("A=\"secret\r\nvalue\"\r\n", 1, "carriage return"),
            ("A=1\n=secretvalue\n", 2, "expected `KEY=value`"),
        ];
        for (text, line, msg) in cases {
            let err = EnvFile::parse(text).unwrap_err();
            assert_eq!(err.line, *line, "{text:?}: {err}");
            assert!(err.message.contains(msg), "{text:?}: {err}");
            assert!(!err.to_string().contains("secret"), "{text:?}: {err}");
        }
    }

    #[test]
    fn update_rewrites_the_last_definition_in_place_and_drops_the_others() {
        let text = "# top\nexport A=1 # keep me\nB=2\n  A='old' # c\nC=3";
        let mut doc = parse(text);
        doc.apply(&[update("A", "new value")], Format::Shell)
            .unwrap();
        assert_eq!(doc.render(), "# top\nB=2\n  A='new value' # c\nC=3");
    }

    #[test]
    fn update_of_multiline_entry_keeps_following_lines() {
        let mut doc = parse("A=\"one\ntwo\"\nB=2\n");
        doc.apply(&[update("A", "x")], D).unwrap();
        assert_eq!(doc.render(), "A=x\nB=2\n");
    }

    #[test]
    fn add_appends_with_a_newline_first_when_missing() {
        let mut doc = parse("A=1");
        doc.apply(&[add("B", "2")], D).unwrap();
        assert_eq!(doc.render(), "A=1\nB=2\n");
        let mut doc = parse("");
        doc.apply(&[add("B", "2")], D).unwrap();
        assert_eq!(doc.render(), "B=2\n");
        let mut doc = parse("# only a comment");
        doc.apply(&[update("B", "2")], D).unwrap();
        assert_eq!(doc.render(), "# only a comment\nB=2\n");
    }

    #[test]
    fn delete_removes_every_definition_with_its_lines() {
        let mut doc = parse("A=1\nB=\"x\ny\"\n# c\nB=2\nC=3");
        doc.apply(&[delete("B"), delete("ABSENT")], D).unwrap();
        assert_eq!(doc.render(), "A=1\n# c\nC=3");
        doc.apply(&[delete("C")], D).unwrap();
        assert_eq!(doc.render(), "A=1\n# c\n");
    }

    #[test]
    fn invalid_changes_change_nothing_and_name_no_value() {
        let text = "A=1\n";
        let mut doc = parse(text);
        let err = doc
            .apply(&[add("B", "fine"), add("C", "secret\rcr")], D)
            .unwrap_err();
        assert!(
            err.contains("C") && err.contains("carriage return"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
        let err = doc.apply(&[add("C", "secret\0")], D).unwrap_err();
        assert!(err.contains("NUL") && !err.contains("secret"), "{err}");
        let err = doc.apply(&[add("BAD-KEY", "secret")], D).unwrap_err();
        assert!(err.contains("BAD-KEY") && !err.contains("secret"), "{err}");
        assert_eq!(doc.render(), text);
    }

    #[test]
    fn check_value_refuses_nul_and_cr_only() {
        for f in Format::ALL {
            assert!(check_value(f, &s("a\nb\t\"\\x")).is_ok(), "{f}");
            assert!(check_value(f, &s("a\0")).is_err());
            assert!(check_value(f, &s("a\r\n")).is_err());
        }
    }

    #[test]
    fn redacted_keeps_layout_and_hides_values() {
        let doc = parse("# c\n\nexport A=\"secret\nmore\"\nB=secret2 # note\r\n");
        let out = doc.redacted(&|k, v| format!("<{k}:{}>", v.len()));
        assert_eq!(out, "# c\n\nexport A=<A:11>\nB=<B:7>\r\n");
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let doc = parse("A=secretvalue\n");
        let dbg = format!("{doc:?}");
        assert!(
            dbg.contains("\"A\"") && !dbg.contains("secretvalue"),
            "{dbg}"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Any value the format can hold: no NUL, no CR.
        fn value_strategy() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(vec![
                        '\\', '"', '\'', '$', '#', '\n', '\t', ' ', '=', '`', 'n', 'é', '🔑',
                    ]),
                    // Mapped, not filtered: a filter hits proptest's cap on
                    // rejections (65,536) in long runs.
                    4 => any::<char>().prop_map(|c| if c == '\0' || c == '\r' { 'x' } else { c }),
                ],
                0..40,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        /// Lines of a well-formed file: entries of every form and other text.
        fn line_strategy() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                Just("# a comment".to_string()),
                Just("  # indented $comment \"".to_string()),
                "[A-Z]{1,3}=[a-z0-9]{0,5}",
                "export [A-Z]{1,3}='[a-z $\"]{0,5}'",
                r#"[A-Z]{1,3} = "([a-z$ ]|\\\\|\\"|\\\$){0,5}" # c"#,
                "[A-Z]{1,3}=\"[a-z]{0,3}\n[a-z]{0,3}\"",
            ]
        }

        fn file_strategy() -> impl Strategy<Value = String> {
            (prop::collection::vec(line_strategy(), 0..8), any::<bool>()).prop_map(
                |(lines, final_newline)| {
                    let mut t = lines.join("\n");
                    if final_newline && !t.is_empty() {
                        t.push('\n');
                    }
                    t
                },
            )
        }

        proptest! {
            #[test]
            fn values_round_trip(file in file_strategy(), v in value_strategy(), key in "[A-Z_]{1,4}") {
                let mut doc = EnvFile::parse(&file).unwrap();
                // Shell can hold every value; the others are covered in
                // `every_tricky_value_round_trips_in_every_format`.
                doc.apply(&[update(&key, &v)], Format::Shell).unwrap();
                let back = EnvFile::parse(&doc.render()).unwrap();
                prop_assert_eq!(back.entries().get(&key).map(|s| s.expose().to_string()), Some(v));
            }

            #[test]
            fn every_format_reads_back_what_it_writes(v in value_strategy()) {
                for format in Format::ALL {
                    let mut doc = EnvFile::parse("A=1\n").unwrap();
                    match doc.apply(&[update("K", &v)], format) {
                        Ok(()) => {
                            let back = EnvFile::parse(&doc.render()).unwrap();
                            prop_assert_eq!(back.entries().get("K").map(|s| s.expose().to_string()), Some(v.clone()));
                        }
                        // Only the portable and reader-specific formats refuse.
                        Err(_) => prop_assert!(!matches!(format, Format::Shell | Format::Systemd)),
                    }
                }
            }

            #[test]
            fn edits_never_touch_other_lines(file in file_strategy(), v in value_strategy(), delete_it in any::<bool>()) {
                // `ZZ_NEW` never occurs in generated files: its edit only appends.
                let key = "ZZ_NEW";
                let mut doc = EnvFile::parse(&file).unwrap();
                let op = if delete_it { Op::Delete } else { Op::Update(Secret::new(v)) };
                doc.apply(&[Change { key: key.into(), op }], Format::Shell).unwrap();
                let out = doc.render();
                prop_assert!(out.starts_with(&file));
                if delete_it {
                    prop_assert_eq!(&out, &file);
                }

                // Editing an existing key keeps every segment of other keys.
                let mut doc = EnvFile::parse(&file).unwrap();
                let keys: Vec<String> = doc.entries().into_keys().collect();
                if let Some(k) = keys.first() {
                    let before: Vec<String> = EnvFile::parse(&file).unwrap().segments.iter()
                        .filter(|s| s.entry.as_ref().is_none_or(|e| &e.key != k))
                        .map(|s| format!("{}{}", s.raw.expose(), s.eol)).collect();
                    doc.apply(&[update(k, "x")], Format::Shell).unwrap();
                    let after: Vec<String> = EnvFile::parse(&doc.render()).unwrap().segments.iter()
                        .filter(|s| s.entry.as_ref().is_none_or(|e| &e.key != k))
                        .map(|s| format!("{}{}", s.raw.expose(), s.eol)).collect();
                    prop_assert_eq!(before, after);
                }
            }

            #[test]
            fn parse_never_panics(text in any::<String>()) {
                if let Ok(doc) = EnvFile::parse(&text) {
                    prop_assert_eq!(doc.render(), text);
                }
            }

            #[test]
            fn parse_never_panics_on_env_like_text(text in "[A-Z=\"'\\\\# \t\r\n$a-z]{0,60}") {
                if let Ok(doc) = EnvFile::parse(&text) {
                    prop_assert_eq!(doc.render(), text);
                }
            }
        }
    }
}
