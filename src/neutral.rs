//! Manifest and target strings made inert before they are printed.
//!
//! A string a pull request wrote (a target name, a rename, a Railway service,
//! a path) or a target returned may be printed in a terminal, a CI log or an
//! error with a source excerpt. There it must stay data:
//!
//! - **terminals**: control characters (ESC sequences clear the screen or
//!   rewrite lines, CR and LF fake lines) are escaped (`\n`, `\u{1b}`);
//! - **spoofing**: bidi controls (which reorder what is shown) and invisible
//!   characters (zero-width spaces and joiners, the BOM, tag characters,
//!   fillers) are escaped as `\u{…}`, so two names that look alike differ;
//! - **GitHub Actions**: the runner obeys a workflow command at the start of
//!   a line (`::add-mask::`, `::stop-commands::`) and its legacy form `##[…]`
//!   anywhere in a line: a leading `::` (after any white space) and every
//!   `##[` are broken up.

/// Whether `c` is invisible or reorders text: bidi controls, zero-width and
/// format characters, line and paragraph separators, fillers.
pub fn is_deceptive(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x200B..=0x200F | 0x2028..=0x202E
        | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB
        | 0xE0000..=0xE0FFF)
}

/// Whether `s` prints as itself: no control, bidi or invisible character,
/// no `##[`, no leading `::`.
pub fn is_plain(s: &str) -> bool {
    !s.chars()
        .any(|c| (c.is_control() && c != '\t') || is_deceptive(c))
        && !s.contains("##[")
        && !s.trim_start().starts_with("::")
}

/// `s` as one inert line: control (but tab), bidi and invisible characters escaped,
/// `##[` and a leading `::` broken up (`#\u{23}[`, `\u{3a}:`). Plain text is
/// returned as it is.
pub fn text(s: &str) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        // A tab moves nothing a reader cannot see: kept (source excerpts).
        if c == '\t' {
            out.push(c);
        } else {
            escape_char(c, &mut out);
        }
    }
    actions(&out)
}

/// `s` in double quotes when it is not plain or is empty or holds white
/// space (as JSON would write it, with bidi and invisible characters
/// escaped too); as it is otherwise.
pub fn quoted(s: &str) -> String {
    if is_plain(s) && !s.is_empty() && !s.chars().any(char::is_whitespace) {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => escape_char(c, &mut out),
        }
    }
    out.push('"');
    actions(&out)
}

/// `s` as a code span in text output: `` `s` `` when plain, the quoted
/// form of [`quoted`] otherwise (a line break shown as `\n`, never made).
pub fn quoted_code(s: &str) -> String {
    if is_plain(s) && !s.is_empty() {
        format!("`{s}`")
    } else {
        quoted(s)
    }
}

/// For text whose line breaks are escaped elsewhere (an annotation's
/// `%0A`): bidi and invisible characters escaped, `##[` broken up.
pub fn in_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_deceptive(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.replace("##[", "#\\u{23}[")
}

/// A path, as [`text`].
pub fn path(p: &std::path::Path) -> String {
    text(&p.display().to_string())
}

/// Text of several lines made by secretsync (an error with its source
/// excerpt and hint): every line made inert as [`text`] makes one, the line
/// breaks kept. For output that mixes our own line structure with strings
/// from elsewhere, as a last guard.
pub fn lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&text(line));
    }
    out
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || is_deceptive(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

/// Breaks up what the Actions runner would read as a command.
fn actions(s: &str) -> String {
    let mut s = s.replace("##[", "#\\u{23}[");
    // The runner may trim the line before it looks for `::`.
    let lead = s.len() - s.trim_start().len();
    if s[lead..].starts_with("::") {
        s.replace_range(lead..lead + 1, "\\u{3a}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_alone() {
        assert_eq!(text("DB_PASSWORD"), "DB_PASSWORD");
        assert_eq!(text("a: b, ∂ü"), "a: b, ∂ü");
        assert_eq!(quoted("prod"), "prod");
    }

    #[test]
    fn terminal_and_actions_commands_are_inert() {
        assert_eq!(text("x\n::add-mask::y"), "x\\n::add-mask::y");
        assert_eq!(text("::stop-commands::t"), "\\u{3a}:stop-commands::t");
        assert_eq!(text("a ##[add-mask]b"), "a #\\u{23}[add-mask]b");
        assert_eq!(text("\u{1b}[2Jclear"), "\\u{1b}[2Jclear");
        assert_eq!(text("admin\u{202e}txt.exe"), "admin\\u{202e}txt.exe");
        assert_eq!(text("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted("a\"\n"), "\"a\\\"\\n\"");
        let l = lines("error: x\n  ::add-mask::s\n##[error]y");
        assert_eq!(l, "error: x\n  \\u{3a}:add-mask::s\n#\\u{23}[error]y");
        assert!(!lines("a\n::x").lines().any(|l| l.starts_with("::")));
    }
}
