//! The one tolerant dialect every [`super::Format`] is read back with (see
//! the module docs of [`super`]).

use std::fmt;

use super::segment::{Entry, Segment};
use crate::secret::Secret;

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

/// A cursor over the text; `line` is the 1-based line `pos` is on.
pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    pub(super) line: usize,
}

pub(super) fn is_blank(c: char) -> bool {
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
    pub(super) fn segment(&mut self) -> Result<Segment, ParseError> {
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
