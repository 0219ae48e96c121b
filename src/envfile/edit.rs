//! Edits in place (add, update, delete; comments, order and line ends
//! kept) and what an env file may hold.

use zeroize::Zeroizing;

use super::document::EnvFile;
use super::format::Format;
use super::parser::is_blank;
use super::segment::{check_key, Entry, Segment};
use crate::secret::Secret;

/// One edit of a file: set `key` to `value`, or remove it (`None`). The
/// caller's own change type implements it (the targets' `Change` does), so
/// the format needs no vocabulary of theirs.
pub trait Edit {
    fn key(&self) -> &str;
    /// The new value; `None` deletes the key.
    fn value(&self) -> Option<&Secret>;
}

/// `(key, Some(value))` sets, `(key, None)` deletes.
impl Edit for (String, Option<Secret>) {
    fn key(&self) -> &str {
        &self.0
    }
    fn value(&self) -> Option<&Secret> {
        self.1.as_ref()
    }
}

impl EnvFile {
    /// Adds, updates (every definition of the key, in place) and deletes.
    ///
    /// All changes are checked first (key names, values this format can
    /// hold): on `Err` (which names the key, never the value) nothing was
    /// changed. An update of an absent key adds it; a delete of an absent key
    /// does nothing.
    pub fn apply<E: Edit>(&mut self, changes: &[E], format: Format) -> Result<(), String> {
        // Each value is put in the format's form once: that is its check (the
        // same one plan asks through `check_value`), and the form written.
        let mut edits = Vec::with_capacity(changes.len());
        for change in changes {
            let set = match change.value() {
                Some(value) => {
                    check_key(change.key())?;
                    let form =
                        encoded(format, value).map_err(|why| format!("{}: {why}", change.key()))?;
                    Some((value, form))
                }
                None => None,
            };
            edits.push((change.key(), set));
        }
        for (key, set) in edits {
            match set {
                Some((value, form)) => self.set(key, value, &form, format),
                None => self
                    .segments
                    .retain(|s| s.entry.as_ref().is_none_or(|e| e.key != key)),
            }
        }
        Ok(())
    }

    /// Rewrites the last definition of `key` in `format` (other definitions
    /// go), or appends one when there is none; `form` is `value` in
    /// `format`'s form.
    fn set(&mut self, key: &str, value: &Secret, form: &str, format: Format) {
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
            push_assignment(&mut raw, key, form);
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
        push_assignment(&mut raw, key, form);
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
}

/// Whether a value can be written in `format`: NUL and CR never can; others
/// when the format has a form its reader reads back exactly.
pub fn check_value(format: Format, value: &Secret) -> Result<(), String> {
    encoded(format, value).map(drop)
}

/// `value` in `format`'s form, or why it has none.
fn encoded(format: Format, value: &Secret) -> Result<Zeroizing<String>, String> {
    let v = value.expose();
    if v.contains('\0') {
        return Err("an env file cannot hold a NUL character".to_string());
    }
    if v.contains('\r') {
        return Err(
            "an env file cannot hold a carriage return (CR): readers drop or mangle it".to_string(),
        );
    }
    format
        .encode(v)
        .map(Zeroizing::new)
        .map_err(|r| r.to_string())
}

/// Appends `KEY=FORM`.
fn push_assignment(out: &mut String, key: &str, form: &str) {
    out.push_str(key);
    out.push('=');
    out.push_str(form);
}
