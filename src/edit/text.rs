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

    /// Sets a secret's values per environment (`encrypted:` as a map of
    /// environment → armored age file), replacing `encrypted` or `value`. A
    /// new secret is added at the end of `secrets:` with `targets`.
    pub fn set_encrypted_map(
        &mut self,
        name: &str,
        entries: &[(String, String)],
        targets: &[String],
    ) -> Result<(), EditError> {
        let map = |ci: usize| {
            let mut out = vec![format!("{}encrypted:\n", " ".repeat(ci))];
            for (env, armored) in entries {
                out.extend(Self::block_scalar(ci + 2, env, armored));
            }
            out
        };
        match self.secret_line(name)? {
            Some(s) => {
                let ci = self
                    .child_indent(s)
                    .unwrap_or(indent_of(self.content(s)) + 2);
                let field = self
                    .child(s, "encrypted")
                    .or_else(|| self.child(s, "value"));
                self.put_child(s, field, map(ci));
                Ok(())
            }
            None => {
                let (ci, end) = self.open_secrets(name, targets)?;
                let pad = " ".repeat(ci);
                let mut new = vec![
                    format!("{pad}{name}:\n"),
                    format!("{pad}  targets: [{}]\n", targets.join(", ")),
                ];
                new.extend(map(ci + 2));
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
            if let Some(env) = &p.env {
                new.push(format!("{pad}    environment: {env}\n"));
            }
        }
        let field = self.child(s, "previous");
        self.put_child(s, field, new);
        Ok(())
    }

    /// Replaces (or adds, at the end of the secret) one scalar field of a
    /// secret: `field: yaml` (such as `set_on: "2026-11-27"`).
    pub fn set_secret_field(
        &mut self,
        name: &str,
        field: &str,
        yaml: &str,
    ) -> Result<(), EditError> {
        let s = self
            .secret_line(name)?
            .ok_or_else(|| EditError(format!("no secret `{name}`")))?;
        let ci = self
            .child_indent(s)
            .unwrap_or(indent_of(self.content(s)) + 2);
        let at = self.child(s, field);
        self.put_child(s, at, vec![format!("{}{field}: {yaml}\n", " ".repeat(ci))]);
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
            env: None,
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
    fn a_secret_field_is_added_then_replaced_in_place() {
        let mut t = Text::new(COMMENTED);
        t.set_secret_field("AUTH", "set_on", "\"2026-11-20\"")
            .unwrap();
        let once = t.render();
        assert!(
            once.contains(
                "      -----END AGE ENCRYPTED FILE-----\n    set_on: \"2026-11-20\"\n\n  LOG:"
            ),
            "{once}"
        );
        t.set_secret_field("AUTH", "set_on", "\"2026-11-27\"")
            .unwrap();
        assert_eq!(t.render(), once.replace("2026-11-20", "2026-11-27"));
        assert!(t.set_secret_field("NOPE", "set_on", "x").is_err());
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
