//! Edits of the manifest's text that keep everything else byte for byte.
//!
//! serde's round trip would drop comments, order, quoting and blank lines, so
//! edits work on the text: a node is located by its key and indentation, and
//! only its lines are replaced. The manifests these edits touch are in YAML's
//! block style (what `init`, `set` and the docs write); a node written in flow
//! style (`{ … }` on one line) is refused with a clear error rather than
//! rewritten. Every edited text is loaded again before it is written.

use crate::manifest::Previous;

/// An edit that cannot be made on this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EditError(pub String);

/// Manifest text being edited.
#[derive(Debug, Clone)]
pub struct Text {
    lines: Vec<String>,
    /// The file ends its lines with CRLF: lines the edits add do too.
    crlf: bool,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank and comment-only lines do not end a block.
fn is_filler(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Whether `line` is the key `key:` (bare or quoted) at its indentation.
fn is_key(line: &str, key: &str) -> bool {
    let t = line.trim_start_matches(' ');
    [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .any(|k| {
            t.strip_prefix(k.as_str()).is_some_and(|rest| {
                rest.starts_with(':') && (rest.len() == 1 || rest[1..].starts_with([' ', '\t']))
            })
        })
}

/// What follows `key:` on its line, without a trailing comment.
fn inline_value(line: &str) -> &str {
    let after = line.split_once(':').map_or("", |(_, v)| v);
    let v = after.split(" #").next().unwrap_or("").trim();
    v
}

/// A YAML double-quoted scalar that reads back as exactly `value`.
pub fn yaml_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Text {
    pub fn new(text: &str) -> Text {
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        if let Some(last) = lines.last_mut() {
            if !last.ends_with('\n') {
                last.push('\n');
            }
        }
        let crlf =
            text.contains("\r\n") && text.matches('\n').count() == text.matches("\r\n").count();
        Text { lines, crlf }
    }

    pub fn render(&self) -> String {
        if !self.crlf {
            return self.lines.concat();
        }
        self.lines
            .iter()
            .map(|l| match l.strip_suffix('\n') {
                Some(body) if !body.ends_with('\r') => format!("{body}\r\n"),
                _ => l.clone(),
            })
            .collect()
    }

    fn content(&self, i: usize) -> &str {
        self.lines[i].trim_end_matches(['\n', '\r'])
    }

    /// The end (exclusive) of the block owned by the key at line `i`: up to
    /// the first content line indented no deeper than the key. Trailing blank
    /// and comment lines are left to what follows.
    fn block_end(&self, i: usize) -> usize {
        let base = indent_of(self.content(i));
        let mut end = i + 1;
        let mut j = i + 1;
        while j < self.lines.len() {
            let l = self.content(j);
            if !is_filler(l) {
                if indent_of(l) <= base
                    && !(indent_of(l) == base
                        && l.trim_start().starts_with("- ")
                        && self.content(i).trim_end().ends_with(':'))
                {
                    break;
                }
                end = j + 1;
            }
            j += 1;
        }
        end
    }

    /// A top-level key's line.
    /// The line of the top-level `key:` as a block mapping that entries can
    /// be added under: an empty inline value (`{}`, `~`, null) becomes an
    /// empty block; a mapping in flow style is refused. `None` when absent.
    fn block_top(&mut self, key: &str) -> Result<Option<usize>, EditError> {
        let Some(i) = self.top(key) else {
            return Ok(None);
        };
        let inline = inline_value(self.content(i));
        if matches!(inline, "{}" | "~" | "null" | "Null" | "NULL") {
            self.lines[i] = format!("{key}:\n");
        } else if !inline.is_empty() {
            return Err(EditError(format!(
                "`{key}:` is written in flow style; write it in block style"
            )));
        }
        Ok(Some(i))
    }

    fn top(&self, key: &str) -> Option<usize> {
        (0..self.lines.len())
            .find(|&i| indent_of(self.content(i)) == 0 && is_key(self.content(i), key))
    }

    /// The line of child `key` directly under the key at line `parent`.
    fn child(&self, parent: usize, key: &str) -> Option<usize> {
        let end = self.block_end(parent);
        let ci = self.child_indent(parent)?;
        (parent + 1..end)
            .find(|&j| indent_of(self.content(j)) == ci && is_key(self.content(j), key))
    }

    /// The indentation of the first child of the key at `parent`.
    fn child_indent(&self, parent: usize) -> Option<usize> {
        (parent + 1..self.block_end(parent))
            .map(|j| self.content(j))
            .find(|l| !is_filler(l))
            .map(indent_of)
    }

    fn secret_line(&self, name: &str) -> Result<Option<usize>, EditError> {
        let Some(s) = self.top("secrets") else {
            return Ok(None);
        };
        let found = self.child(s, name);
        if let Some(i) = found {
            if !inline_value(self.content(i)).is_empty() {
                return Err(EditError(format!(
                    "secret `{name}` is written in flow style on one line; write it in block style (one field per line) so that it can be edited"
                )));
            }
        }
        Ok(found)
    }

    /// Replaces the child block at `field` with `new`, or appends `new` at
    /// the end of `parent`'s block when there is no such child.
    fn put_child(&mut self, parent: usize, field: Option<usize>, new: Vec<String>) {
        let (from, to) = match field {
            Some(f) => (f, self.block_end(f)),
            None => {
                let end = self.block_end(parent);
                (end, end)
            }
        };
        self.lines.splice(from..to, new);
    }

    fn block_scalar(indent: usize, key: &str, body: &str) -> Vec<String> {
        let pad = " ".repeat(indent);
        let mut out = vec![format!("{pad}{key}: |\n")];
        out.extend(body.lines().map(|l| format!("{pad}  {l}\n")));
        out
    }

    /// Sets a secret's value as an armored age file, replacing `encrypted` or
    /// `value`. A new secret is added at the end of `secrets:` with `targets`.
    pub fn set_encrypted(
        &mut self,
        name: &str,
        armored: &str,
        targets: &[String],
    ) -> Result<(), EditError> {
        match self.secret_line(name)? {
            Some(s) => {
                let ci = self
                    .child_indent(s)
                    .unwrap_or(indent_of(self.content(s)) + 2);
                let field = self
                    .child(s, "encrypted")
                    .or_else(|| self.child(s, "value"));
                self.put_child(s, field, Self::block_scalar(ci, "encrypted", armored));
                Ok(())
            }
            None => {
                let (ci, end) = self.open_secrets(name, targets)?;
                let pad = " ".repeat(ci);
                let mut new = vec![
                    format!("{pad}{name}:\n"),
                    format!("{pad}  targets: [{}]\n", targets.join(", ")),
                ];
                new.extend(Self::block_scalar(ci + 2, "encrypted", armored));
                self.lines.splice(end..end, new);
                Ok(())
            }
        }
    }

    /// Sets a secret's value in clear (`value: "…"`), replacing `encrypted`
    /// or `value`. A new secret is added at the end of `secrets:` with
    /// `targets`.
    pub fn set_plain(
        &mut self,
        name: &str,
        value: &str,
        targets: &[String],
    ) -> Result<(), EditError> {
        let line = |pad: &str| format!("{pad}value: {}\n", yaml_quote(value));
        match self.secret_line(name)? {
            Some(s) => {
                let ci = self
                    .child_indent(s)
                    .unwrap_or(indent_of(self.content(s)) + 2);
                let field = self
                    .child(s, "encrypted")
                    .or_else(|| self.child(s, "value"));
                self.put_child(s, field, vec![line(&" ".repeat(ci))]);
                Ok(())
            }
            None => {
                let (ci, end) = self.open_secrets(name, targets)?;
                let pad = " ".repeat(ci);
                let new = vec![
                    format!("{pad}{name}:\n"),
                    format!("{pad}  targets: [{}]\n", targets.join(", ")),
                    line(&format!("{pad}  ")),
                ];
                self.lines.splice(end..end, new);
                Ok(())
            }
        }
    }

    /// Opens `secrets:` (added, or turned from `{}`/null into a block) and
    /// says the indentation of its entries and where a new entry goes.
    fn open_secrets(
        &mut self,
        name: &str,
        targets: &[String],
    ) -> Result<(usize, usize), EditError> {
        if targets.is_empty() {
            return Err(EditError(format!(
                "`{name}` is a new secret: name its targets with --target"
            )));
        }
        let s = match self.block_top("secrets")? {
            Some(s) => s,
            None => {
                self.lines.push("secrets:\n".into());
                self.lines.len() - 1
            }
        };
        let ci = self.child_indent(s).unwrap_or(2);
        Ok((ci, self.block_end(s)))
    }

    /// Replaces a secret's `targets:` with `targets`. A flow list keeps its
    /// line (and trailing comment); a block list or a scalar becomes a flow
    /// list.
    pub fn set_targets(&mut self, name: &str, targets: &[String]) -> Result<(), EditError> {
        let s = self
            .secret_line(name)?
            .ok_or_else(|| EditError(format!("no secret `{name}`")))?;
        let list = format!("[{}]", targets.join(", "));
        if let Some(t) = self.child(s, "targets") {
            let line = self.lines[t].clone();
            let inline = inline_value(self.content(t)).to_string();
            if inline.starts_with('[') && inline.ends_with(']') {
                if let Some(at) = line.find(inline.as_str()) {
                    self.lines[t] = format!("{}{list}{}", &line[..at], &line[at + inline.len()..]);
                    return Ok(());
                }
            }
            let pad = " ".repeat(indent_of(self.content(t)));
            self.put_child(s, Some(t), vec![format!("{pad}targets: {list}\n")]);
        } else {
            let ci = self
                .child_indent(s)
                .unwrap_or(indent_of(self.content(s)) + 2);
            self.lines
                .insert(s + 1, format!("{}targets: {list}\n", " ".repeat(ci)));
        }
        Ok(())
    }

    /// Removes a secret's block, and the comment lines directly above it.
    pub fn remove_secret(&mut self, name: &str) -> Result<(), EditError> {
        let s = self
            .secret_line(name)?
            .ok_or_else(|| EditError(format!("no secret `{name}`")))?;
        self.remove_block(s);
        // The last one gone: an empty map, not a null `secrets:`.
        if let Some(top) = self.top("secrets") {
            if self.child_indent(top).is_none() && inline_value(self.content(top)).is_empty() {
                self.lines[top] = "secrets: {}\n".into();
            }
        }
        Ok(())
    }

    fn remove_block(&mut self, at: usize) {
        let end = self.block_end(at);
        let pad = indent_of(self.content(at));
        let mut from = at;
        while from > 0 {
            let l = self.content(from - 1);
            if l.trim_start().starts_with('#') && indent_of(l) == pad {
                from -= 1;
            } else {
                break;
            }
        }
        self.lines.drain(from..end);
        // The blank line that separated the block goes with it.
        let blank = |l: Option<&String>| l.is_some_and(|l| l.trim().is_empty());
        if blank(self.lines.get(from))
            && (from == 0
                || blank(self.lines.get(from - 1))
                || self.lines[from - 1].trim_end().ends_with(':'))
        {
            self.lines.remove(from);
        }
    }

    /// Adds a target definition (block style) at the end of `targets:`.
    /// `fields` are written in order, each value already YAML.
    pub fn add_target(&mut self, name: &str, fields: &[(&str, String)]) -> Result<(), EditError> {
        let t = match self.block_top("targets")? {
            Some(t) => t,
            None => {
                let after = self.top("secrets").unwrap_or(self.lines.len());
                self.lines.insert(after, "targets:\n".into());
                after
            }
        };
        let ci = self.child_indent(t).unwrap_or(2);
        let end = self.block_end(t);
        let pad = " ".repeat(ci);
        let mut new = vec![format!("{pad}{name}:\n")];
        new.extend(fields.iter().map(|(k, v)| format!("{pad}  {k}: {v}\n")));
        self.lines.splice(end..end, new);
        Ok(())
    }

    /// Removes a target definition.
    pub fn remove_target(&mut self, name: &str) -> Result<(), EditError> {
        let t = self
            .top("targets")
            .ok_or_else(|| EditError("the manifest has no `targets:`".into()))?;
        let at = self
            .child(t, name)
            .ok_or_else(|| EditError(format!("no target `{name}`")))?;
        self.remove_block(at);
        Ok(())
    }

    /// Appends an entry to the top-level `removed:` list (secrets removed
    /// with `unset`, by fingerprint).
    pub fn add_removed(&mut self, name: &str, fingerprint: &str, date: &str) {
        let r = match self.top("removed") {
            Some(r) if inline_value(self.content(r)).is_empty() => r,
            Some(r) => {
                // `removed: []`
                self.lines[r] = "removed:\n".into();
                r
            }
            None => {
                self.lines.push("removed:\n".into());
                self.lines.len() - 1
            }
        };
        let ci = self.child_indent(r).unwrap_or(2);
        let end = self.block_end(r);
        let pad = " ".repeat(ci);
        self.lines.splice(
            end..end,
            [
                format!("{pad}- name: {name}\n"),
                format!("{pad}  fingerprint: {fingerprint}\n"),
                format!("{pad}  removed: \"{date}\"\n"),
            ],
        );
    }

    /// Replaces (or adds) a secret's `previous:` list.
    pub fn set_previous(&mut self, name: &str, previous: &[Previous]) -> Result<(), EditError> {
        let s = self
            .secret_line(name)?
            .ok_or_else(|| EditError(format!("no secret `{name}`")))?;
        let ci = self
            .child_indent(s)
            .unwrap_or(indent_of(self.content(s)) + 2);
        let pad = " ".repeat(ci);
        let mut new = vec![format!("{pad}previous:\n")];
        for p in previous {
            new.push(format!("{pad}  - fingerprint: {}\n", p.fingerprint));
            new.push(format!("{pad}    replaced: \"{}\"\n", p.replaced));
        }
        let field = self.child(s, "previous");
        self.put_child(s, field, new);
        Ok(())
    }

    /// Replaces (or adds, after `recipients`) the top-level `fingerprint_key`.
    pub fn set_fingerprint_key(&mut self, armored: &str) {
        let new = Self::block_scalar(0, "fingerprint_key", armored);
        if let Some(f) = self.top("fingerprint_key") {
            let end = self.block_end(f);
            self.lines.splice(f..end, new);
            return;
        }
        let after = self
            .top("recipients")
            .or_else(|| self.top("version"))
            .map_or(0, |i| self.block_end(i));
        self.lines.splice(after..after, new);
    }

    /// Adds a recipient at the end of the `recipients:` list.
    pub fn add_recipient(&mut self, recipient: &str) -> Result<(), EditError> {
        let r = match self.top("recipients") {
            Some(r) => r,
            None => {
                let after = self.top("version").map_or(0, |i| self.block_end(i));
                self.lines.insert(after, "recipients:\n".into());
                after
            }
        };
        let inline = inline_value(self.content(r)).to_string();
        if inline == "[]" {
            self.lines[r] = "recipients:\n".into();
        } else if !inline.is_empty() {
            return Err(EditError(
                "`recipients:` is written in flow style; write it as a list, one `- key` per line"
                    .into(),
            ));
        }
        let ci = self.child_indent(r).unwrap_or(2);
        let end = self.block_end(r);
        let quoted = if recipient.contains(' ') {
            format!("\"{recipient}\"")
        } else {
            recipient.to_string()
        };
        self.lines
            .insert(end, format!("{}- {quoted}\n", " ".repeat(ci)));
        Ok(())
    }

    /// Removes the list item of `recipients:` that holds `recipient`.
    pub fn remove_recipient(&mut self, recipient: &str) -> Result<(), EditError> {
        let r = self
            .top("recipients")
            .ok_or_else(|| EditError("the manifest has no `recipients:`".into()))?;
        let end = self.block_end(r);
        let item = (r + 1..end)
            .find(|&j| {
                let l = self.content(j).trim_start();
                l.starts_with("- ")
                    && l[2..]
                        .split(" #")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches(['"', '\''])
                        == recipient
            })
            .ok_or_else(|| EditError(format!("`{recipient}` is not listed under `recipients:`")))?;
        self.lines.remove(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMENTED: &str = "# The team's secrets.\nversion: 1   # keep\n\nrecipients:\n  - age1aaa   # alice\n  # - age1old (left)\n  - \"ssh-ed25519 AAAA bob\"\n\ntargets:\n  app: { type: env_file, path: app.env }\n\nsecrets:\n  # the auth secret\n  AUTH:\n    targets: [app]   # only app\n    encrypted: |\n      -----BEGIN AGE ENCRYPTED FILE-----\n      OLD\n      -----END AGE ENCRYPTED FILE-----\n\n  LOG:\n    targets: [app]\n    value: 'info'    # quoted on purpose\n# trailing comment\n";

    fn armor(body: &str) -> String {
        format!("-----BEGIN AGE ENCRYPTED FILE-----\n{body}\n-----END AGE ENCRYPTED FILE-----\n")
    }

    #[test]
    fn replacing_a_value_keeps_every_other_byte() {
        let mut t = Text::new(COMMENTED);
        t.set_encrypted("AUTH", &armor("NEW"), &[]).unwrap();
        assert_eq!(t.render(), COMMENTED.replace("      OLD\n", "      NEW\n"));
    }

    #[test]
    fn a_plain_value_becomes_encrypted_in_place() {
        let mut t = Text::new(COMMENTED);
        t.set_encrypted("LOG", &armor("X"), &[]).unwrap();
        assert_eq!(
            t.render(),
            COMMENTED.replace(
                "    value: 'info'    # quoted on purpose\n",
                "    encrypted: |\n      -----BEGIN AGE ENCRYPTED FILE-----\n      X\n      -----END AGE ENCRYPTED FILE-----\n"
            )
        );
    }

    #[test]
    fn a_new_secret_goes_at_the_end_of_secrets() {
        let mut t = Text::new(COMMENTED);
        t.set_encrypted("NEW_ONE", &armor("N"), &["app".into()])
            .unwrap();
        let expected = COMMENTED.replace(
            "    value: 'info'    # quoted on purpose\n",
            "    value: 'info'    # quoted on purpose\n  NEW_ONE:\n    targets: [app]\n    encrypted: |\n      -----BEGIN AGE ENCRYPTED FILE-----\n      N\n      -----END AGE ENCRYPTED FILE-----\n",
        );
        assert_eq!(t.render(), expected);
        assert!(Text::new(COMMENTED)
            .set_encrypted("NEW_ONE", &armor("N"), &[])
            .is_err());
    }

    #[test]
    fn previous_is_added_then_replaced() {
        let mut t = Text::new(COMMENTED);
        let p = |f: &str| Previous {
            fingerprint: f.into(),
            replaced: "2026-11-20".into(),
        };
        t.set_previous("AUTH", &[p("fp:11111111")]).unwrap();
        let once = t.render();
        assert!(once.contains("      -----END AGE ENCRYPTED FILE-----\n    previous:\n      - fingerprint: fp:11111111\n        replaced: \"2026-11-20\"\n\n  LOG:"), "{once}");
        t.set_previous("AUTH", &[p("fp:22222222"), p("fp:11111111")])
            .unwrap();
        assert_eq!(
            t.render(),
            once.replace("      - fingerprint: fp:11111111\n", "      - fingerprint: fp:22222222\n        replaced: \"2026-11-20\"\n      - fingerprint: fp:11111111\n")
        );
    }

    #[test]
    fn recipients_are_added_and_removed_line_by_line() {
        let mut t = Text::new(COMMENTED);
        t.add_recipient("age1ccc").unwrap();
        assert_eq!(
            t.render(),
            COMMENTED.replace("bob\"\n", "bob\"\n  - age1ccc\n")
        );
        t.remove_recipient("age1aaa").unwrap();
        t.remove_recipient("ssh-ed25519 AAAA bob").unwrap();
        assert_eq!(
            t.render(),
            COMMENTED
                .replace("  - age1aaa   # alice\n", "")
                .replace("  - \"ssh-ed25519 AAAA bob\"\n", "  - age1ccc\n")
        );
        assert!(t.remove_recipient("age1zzz").is_err());
    }

    #[test]
    fn fingerprint_key_is_added_after_recipients() {
        let mut t = Text::new(COMMENTED);
        t.set_fingerprint_key(&armor("K"));
        assert!(t.render().contains("  - \"ssh-ed25519 AAAA bob\"\nfingerprint_key: |\n  -----BEGIN AGE ENCRYPTED FILE-----\n  K\n"));
        t.set_fingerprint_key(&armor("K2"));
        assert!(t.render().contains("\n  K2\n") && !t.render().contains("\n  K\n"));
    }

    #[test]
    fn flow_style_secrets_are_refused() {
        let mut t = Text::new("version: 1\nsecrets:\n  A: { targets: [x], value: y }\n");
        assert!(t
            .set_encrypted("A", &armor("Z"), &[])
            .unwrap_err()
            .0
            .contains("flow style"));
    }

    #[test]
    fn empty_secrets_map_is_opened() {
        let mut t = Text::new("version: 1\nsecrets: {}\n");
        t.set_encrypted("A", &armor("Z"), &["t".into()]).unwrap();
        assert!(t
            .render()
            .starts_with("version: 1\nsecrets:\n  A:\n    targets: [t]\n    encrypted: |\n"));
    }
}

// ---- the editor behind init, set, rotate, import, recipients and rekey ----

use std::path::{Path, PathBuf};

use crate::crypto::{self, Fingerprinter, Identities};
use crate::error::Error;
use crate::lock::EditLock;
use crate::manifest::{self, Manifest, TargetSpec, ValueSource};
use crate::secret::Secret;

/// How many former values a secret remembers.
pub const PREVIOUS_KEPT: usize = 5;

/// What storing a value did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Added,
    /// Replaced; the former value's fingerprint was recorded.
    Replaced,
    /// The manifest already held this value: nothing changed.
    Unchanged,
}

/// How a value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// As the secret already is (a new secret: encrypted).
    Keep,
    Encrypted,
    /// In clear (`value:`), for configuration that is not secret.
    Plain,
}

/// Characters the editor writes as a bare YAML key.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/')
}

/// The first character of `name` that breaks `valid` (which judges prefixes).
fn offending(name: &str, valid: impl Fn(&str) -> bool) -> Option<(usize, char)> {
    name.char_indices()
        .find(|(i, c)| !valid(&name[..i + c.len_utf8()]))
        .map(|(i, c)| (name[..i].chars().count() + 1, c))
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    }
}

/// Checks, before any edit, that `name` can be a secret of the manifest and
/// a key on each of `targets`; the refusal gives the rule and the offending
/// character.
pub fn check_secret_name(m: &Manifest, name: &str, targets: &[String]) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::usage(
            "a secret needs a name",
            "for example DATABASE_URL",
        ));
    }
    let syntax = |p: &str| {
        p.chars().all(name_char)
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some((pos, c)) = offending(name, syntax) {
        return Err(Error::usage(
            format!(
                "`{name}` cannot be a secret's name: {} at position {pos} is not allowed (a name starts with a letter, digit or `_` and holds only letters, digits and `_ - . @ /`)",
                describe_char(c)
            ),
            format!("for example `{}`", suggest(name)),
        ));
    }
    for t in targets {
        let Some(spec) = m.targets.get(t) else {
            continue;
        };
        let key = m.secrets.get(name).map_or(name, |s| s.key_on(t));
        if let Err(rule) = spec.check_key(key) {
            let at = match spec {
                TargetSpec::Keychain(_) => key
                    .chars()
                    .position(char::is_control)
                    .map(|p| (p + 1, key.chars().nth(p).unwrap_or(' '))),
                _ => offending(key, manifest::is_env_key),
            };
            let at = at
                .map(|(pos, c)| format!(" ({} at position {pos})", describe_char(c)))
                .unwrap_or_default();
            return Err(Error::usage(
                format!(
                    "`{key}` cannot be a key on target `{t}` ({}): {rule}{at}",
                    spec.type_name()
                ),
                format!(
                    "choose a name such as `{}`, or give it another name on `{t}` with `rename:` in the manifest",
                    suggest(key)
                ),
            ));
        }
    }
    Ok(())
}

/// A name that follows the environment-variable rule, close to `name`.
fn suggest(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Refuses target names the manifest does not define.
fn check_targets_exist(m: &Manifest, targets: &[String]) -> Result<(), Error> {
    for t in targets {
        if !m.targets.contains_key(t) {
            let names: Vec<&str> = m.targets.keys().map(String::as_str).collect();
            return Err(Error::usage(
                format!("--target {t}: no such target"),
                if names.is_empty() {
                    "the manifest defines no target yet: add one with `secretsync target add NAME --type …`".to_string()
                } else {
                    format!("targets: {}", names.join(", "))
                },
            ));
        }
    }
    Ok(())
}

/// A manifest opened for editing: its text, and the keys to re-encrypt.
/// It holds the manifest's edit lock until dropped.
pub struct Editor {
    pub manifest: Manifest,
    text: Text,
    identity: Option<PathBuf>,
    ids: Option<Identities>,
    fingerprints: Option<Fingerprinter>,
    _lock: EditLock,
}

impl Editor {
    /// Takes the edit lock (waiting briefly for another editor), then reads
    /// the manifest.
    pub fn open(path: &Path, identity: Option<&Path>) -> Result<Editor, Error> {
        let lock = crate::lock::lock(path)?;
        let manifest = manifest::load(path)?;
        Ok(Editor {
            text: Text::new(&manifest.source),
            manifest,
            identity: identity.map(Path::to_path_buf),
            ids: None,
            fingerprints: None,
            _lock: lock,
        })
    }

    pub fn identities(&mut self) -> Result<&Identities, Error> {
        if self.ids.is_none() {
            self.ids = Some(crypto::find_identities(self.identity.as_deref())?);
        }
        Ok(self.ids.as_ref().expect("set above"))
    }

    fn recipients(&self) -> Result<&[crypto::Recipient], Error> {
        if self.manifest.recipients.is_empty() {
            return Err(Error::usage(
                "the manifest lists no recipients, so nobody could decrypt this value",
                "add one with `secretsync recipients add age1…`",
            ));
        }
        Ok(&self.manifest.recipients)
    }

    /// The manifest's fingerprinter; a manifest without a key gets a new one.
    pub fn fingerprinter(&mut self) -> Result<Fingerprinter, Error> {
        if let Some(f) = &self.fingerprints {
            return Ok(f.clone());
        }
        let f = match self.manifest.fingerprint_key.clone() {
            Some(armored) => {
                let ids = self.identities()?;
                Fingerprinter::new(Some(&crypto::decrypt(ids, &armored, "fingerprint_key")?))
            }
            None => {
                let key = crypto::new_fingerprint_key();
                let armored = crypto::encrypt(self.recipients()?, key.expose().as_bytes())?;
                self.text.set_fingerprint_key(&armored);
                Fingerprinter::new(Some(&key))
            }
        };
        self.fingerprints = Some(f.clone());
        Ok(f)
    }

    /// The current value of a secret, decrypted.
    pub fn value_of(&mut self, name: &str) -> Result<Option<Secret>, Error> {
        let Some(def) = self.manifest.secrets.get(name).cloned() else {
            return Ok(None);
        };
        Ok(Some(match def.value {
            ValueSource::Plain(v) => Secret::new(v),
            ValueSource::Encrypted(armored) => {
                let ids = self.identities()?;
                crypto::decrypt(ids, &armored, &format!("secret `{name}`"))?
            }
        }))
    }

    /// Whether `name` is stored in clear.
    pub fn is_plain(&self, name: &str) -> bool {
        self.manifest
            .secrets
            .get(name)
            .is_some_and(|s| matches!(s.value, ValueSource::Plain(_)))
    }

    /// Encrypts `value` under `name`, recording the replaced value's
    /// fingerprint and today's date. `targets` apply to a new secret.
    pub fn store(
        &mut self,
        name: &str,
        value: &Secret,
        targets: &[String],
    ) -> Result<Stored, Error> {
        self.store_as(name, value, targets, Storage::Keep)
    }

    /// As [`Editor::store`], choosing how the value is stored. An existing
    /// plain value stays plain with [`Storage::Keep`].
    pub fn store_as(
        &mut self,
        name: &str,
        value: &Secret,
        targets: &[String],
        storage: Storage,
    ) -> Result<Stored, Error> {
        check_targets_exist(&self.manifest, targets)?;
        let reach: Vec<String> = match self.manifest.secrets.get(name) {
            Some(s) => s.targets.clone(),
            None => targets.to_vec(),
        };
        check_secret_name(&self.manifest, name, &reach)?;
        // Refused at input time, not at plan time (see src/holdable.rs).
        crate::holdable::check(&self.manifest, name, targets, value)?;
        let plain = match storage {
            Storage::Keep => self.is_plain(name),
            Storage::Encrypted => false,
            Storage::Plain => true,
        };
        let old = self.value_of(name)?;
        if old.as_ref() == Some(value) && plain == self.is_plain(name) {
            return Ok(Stored::Unchanged);
        }
        let fp = self.fingerprinter()?;
        if plain {
            self.text
                .set_plain(name, value.expose(), targets)
                .map_err(|e| Error::other(e.0))?;
            // Exact means exact: the quoted text must read back as the value.
            let back = self.check()?;
            if !matches!(&back.secrets[name].value, ValueSource::Plain(v) if v == value.expose()) {
                return Err(Error::usage(
                    format!("`{name}` cannot be stored in clear exactly as given"),
                    "store it encrypted (without --plain)",
                ));
            }
        } else {
            let armored = crypto::encrypt(self.recipients()?, value.expose().as_bytes())?;
            self.text
                .set_encrypted(name, &armored, targets)
                .map_err(|e| Error::other(e.0))?;
        }
        let Some(old) = old else {
            return Ok(Stored::Added);
        };
        if old == *value {
            // Only the storage changed (plain <-> encrypted): no new value.
            return Ok(Stored::Replaced);
        }
        let old_fp = fp.fingerprint(&old).expect("the fingerprinter is keyed");
        let mut previous = vec![Previous {
            fingerprint: old_fp.clone(),
            replaced: crate::fsutil::today(),
        }];
        previous.extend(
            self.manifest.secrets[name]
                .previous
                .iter()
                .filter(|p| p.fingerprint != old_fp)
                .cloned(),
        );
        previous.truncate(PREVIOUS_KEPT);
        self.text
            .set_previous(name, &previous)
            .map_err(|e| Error::other(e.0))?;
        Ok(Stored::Replaced)
    }

    /// Sets the targets of an existing secret. Returns whether they changed.
    pub fn set_targets(&mut self, name: &str, targets: &[String]) -> Result<bool, Error> {
        let Some(def) = self.manifest.secrets.get(name) else {
            return Err(no_secret(&self.manifest, name));
        };
        if def.targets == targets {
            return Ok(false);
        }
        if targets.is_empty() {
            return Err(Error::usage(
                format!("that would leave `{name}` without a target"),
                format!("to remove the secret, run `secretsync unset {name}`"),
            ));
        }
        check_targets_exist(&self.manifest, targets)?;
        check_secret_name(&self.manifest, name, targets)?;
        self.text
            .set_targets(name, targets)
            .map_err(|e| Error::other(e.0))?;
        Ok(true)
    }

    /// Removes a secret, recording its value's fingerprint under `removed:`
    /// so that plans still recognise the value where it was left behind.
    pub fn unset(&mut self, name: &str) -> Result<(), Error> {
        if !self.manifest.secrets.contains_key(name) {
            return Err(no_secret(&self.manifest, name));
        }
        let value = self.value_of(name)?.expect("checked above");
        let fp = self.fingerprinter()?;
        let f = fp.fingerprint(&value).expect("the fingerprinter is keyed");
        self.text
            .remove_secret(name)
            .map_err(|e| Error::other(e.0))?;
        self.text.add_removed(name, &f, &crate::fsutil::today());
        Ok(())
    }

    /// Adds a target definition; `fields` are YAML values in order.
    pub fn add_target(&mut self, name: &str, fields: &[(&str, String)]) -> Result<(), Error> {
        if self.manifest.targets.contains_key(name) {
            return Err(Error::usage(
                format!("target `{name}` exists already"),
                format!("remove it first with `secretsync target remove {name}`, or choose another name"),
            ));
        }
        let syntax = |p: &str| {
            p.chars().all(name_char)
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if let Some((pos, c)) = offending(name, syntax) {
            return Err(Error::usage(
                format!(
                    "`{name}` cannot be a target's name: {} at position {pos} is not allowed (a name starts with a letter, digit or `_` and holds only letters, digits and `_ - . @ /`)",
                    describe_char(c)
                ),
                format!("for example `{}`", suggest(name).to_lowercase()),
            ));
        }
        self.text
            .add_target(name, fields)
            .map_err(|e| Error::other(e.0))
    }

    /// Removes a target definition no secret uses.
    pub fn remove_target(&mut self, name: &str) -> Result<(), Error> {
        if !self.manifest.targets.contains_key(name) {
            let names: Vec<&str> = self.manifest.targets.keys().map(String::as_str).collect();
            return Err(Error::usage(
                format!("no target `{name}`"),
                format!("targets: {}", names.join(", ")),
            ));
        }
        let users: Vec<&str> = self
            .manifest
            .secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| t == name))
            .map(|s| s.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::usage(
                format!(
                    "target `{name}` is still used by {} secret(s): {}",
                    users.len(),
                    users.join(", ")
                ),
                format!(
                    "take it off them first: `secretsync targets remove KEY {name}` (or `secretsync unset KEY`)"
                ),
            ));
        }
        self.text.remove_target(name).map_err(|e| Error::other(e.0))
    }

    /// Encrypts every value (and the fingerprint key) again to the
    /// recipients listed in the text being edited.
    pub fn rekey(&mut self) -> Result<usize, Error> {
        // A manifest without a fingerprint key gets one (saved plans need it).
        if self.manifest.fingerprint_key.is_none() {
            self.fingerprinter()?;
        }
        let current = manifest::parse(&self.manifest.path, self.text.render())?;
        let recipients = current.recipients.clone();
        if recipients.is_empty() {
            return Err(Error::usage(
                "no recipients would be left",
                "keep at least one recipient",
            ));
        }
        let mut count = 0;
        if let Some(armored) = current.fingerprint_key.clone() {
            let key = crypto::decrypt(self.identities()?, &armored, "fingerprint_key")?;
            self.text
                .set_fingerprint_key(&crypto::encrypt(&recipients, key.expose().as_bytes())?);
        }
        for (name, def) in &current.secrets {
            if let ValueSource::Encrypted(armored) = &def.value {
                let v = crypto::decrypt(self.identities()?, armored, &format!("secret `{name}`"))?;
                let again = crypto::encrypt(&recipients, v.expose().as_bytes())?;
                self.text
                    .set_encrypted(name, &again, &[])
                    .map_err(|e| Error::other(e.0))?;
                count += 1;
            }
        }
        Ok(count)
    }

    pub fn add_recipient(&mut self, r: &str) -> Result<(), Error> {
        self.text.add_recipient(r).map_err(|e| Error::other(e.0))
    }

    pub fn remove_recipient(&mut self, r: &str) -> Result<(), Error> {
        self.text.remove_recipient(r).map_err(|e| Error::other(e.0))
    }

    /// The edited text, loaded again, with the manifest's own error (for
    /// edits whose content the user chose, such as a target's fields).
    pub fn check_input(&self) -> Result<Manifest, manifest::ManifestError> {
        manifest::parse(&self.manifest.path, self.text.render())
    }

    /// The edited text, loaded again to prove it is valid. The commands
    /// refuse bad requests before editing; this is the last guard.
    pub fn check(&self) -> Result<Manifest, Error> {
        manifest::parse(&self.manifest.path, self.text.render()).map_err(|e| Error::Other {
            message: format!(
                "the edit would leave an invalid manifest, so nothing was written:\n{e}"
            ),
            hint: Some("this is a bug in secretsync's editor: please report it".into()),
        })
    }

    /// Validates and writes the manifest atomically (the lock is released
    /// when the editor is dropped, after the rename).
    pub fn save(self) -> Result<Manifest, Error> {
        let m = self.check()?;
        crate::fsutil::write_atomic(&self.manifest.path, self.text.render().as_bytes(), 0o644)
            .map_err(|e| Error::io(&self.manifest.path, e))?;
        Ok(m)
    }
}

fn no_secret(m: &Manifest, name: &str) -> Error {
    let names: Vec<&str> = m.secrets.keys().map(String::as_str).collect();
    Error::usage(
        format!("no secret `{name}` in {}", m.path.display()),
        if names.is_empty() {
            "the manifest has no secrets yet".to_string()
        } else {
            format!("secrets: {}", names.join(", "))
        },
    )
}
