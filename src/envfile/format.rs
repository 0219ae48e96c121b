//! Who reads an env file, and the form each value is written in so that this
//! reader reads it back byte for byte.
//!
//! Readers disagree (measured with the real programs in tests/integration/readers.rs;
//! the table is in docs/env-formats.md): python-dotenv keeps `\$` and expands
//! `${X}` even in single quotes, node's dotenv unescapes nothing but `\n` and
//! `\r`, dotenvy rejects `` \` ``, sh and bash run `$(…)` and backticks in
//! double quotes, systemd treats single quotes as fully literal. So the format
//! is a property of the target, and each value is encoded for it, or refused
//! with the readers that would misread it and the formats that can hold it.
//!
//! Every form written is also safe to source with sh or bash, whatever the
//! format: no value ever runs a command (no `$`, backtick or `\` inside double
//! quotes unless escaped for sh, no unbalanced single quote).

use std::fmt;

/// `format:` of an env_file or ssh_env target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The portable subset: every reader below reads each value identically.
    #[default]
    Dotenv,
    /// POSIX sh / bash sourcing the file (`set -a; . ./app.env`).
    Shell,
    /// systemd's `EnvironmentFile=`.
    Systemd,
    /// docker compose's `env_file:`.
    Compose,
    /// python-dotenv.
    PythonDotenv,
    /// node's `dotenv` package and `node --env-file`.
    Node,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Dotenv,
        Format::Shell,
        Format::Systemd,
        Format::Compose,
        Format::PythonDotenv,
        Format::Node,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Dotenv => "dotenv",
            Format::Shell => "shell",
            Format::Systemd => "systemd",
            Format::Compose => "compose",
            Format::PythonDotenv => "python-dotenv",
            Format::Node => "node",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The names, for hints.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// The programs this format promises to be read exactly by.
    pub fn readers(self) -> &'static str {
        match self {
            Format::Dotenv => {
                "sh, bash, systemd, docker compose, python-dotenv, node's dotenv, \
                 node --env-file and dotenvy"
            }
            Format::Shell => "sh and bash",
            Format::Systemd => "systemd's EnvironmentFile=",
            Format::Compose => "docker compose's env_file",
            Format::PythonDotenv => "python-dotenv",
            Format::Node => "node's dotenv and node --env-file",
        }
    }

    /// Whether an `export ` prefix may stay on a rewritten line: systemd
    /// ignores such lines (the key is unset), so it goes for systemd and for
    /// the portable subset.
    pub fn keeps_export(self) -> bool {
        !matches!(self, Format::Dotenv | Format::Systemd)
    }

    /// Whether an inline `# comment` may stay after a rewritten value:
    /// systemd makes it part of the value. Where it may not, the comment is
    /// moved to a line of its own above the entry.
    pub fn keeps_inline_comment(self) -> bool {
        !matches!(self, Format::Dotenv | Format::Systemd)
    }

    /// The text after `KEY=` that this format's reader reads back as
    /// `value`, or why there is none. Values with NUL or CR never get here
    /// (`env_file::check_value` refuses them for every format).
    pub fn encode(self, value: &str) -> Result<String, Refusal> {
        self.form(value)
            .map_err(|why| Refusal::new(self, value, why))
    }

    fn form(self, value: &str) -> Result<String, Why> {
        if value.is_empty() {
            return Ok(String::new());
        }
        if is_bare(value) {
            return Ok(value.to_string());
        }
        match self {
            Format::Shell | Format::Systemd => Ok(if value.contains('\'') {
                double_escaped(value, &['\\', '"', '$', '`'])
            } else {
                format!("'{value}'")
            }),
            Format::Dotenv | Format::PythonDotenv | Format::Compose | Format::Node => {
                if matches!(self, Format::Dotenv | Format::PythonDotenv) && py_expands(value) {
                    return Err(Why::PythonExpands);
                }
                let single_ok = match self {
                    // python-dotenv unescapes `\\` and `\'` inside single
                    // quotes; compose skips a quote after a backslash.
                    Format::Dotenv | Format::PythonDotenv => !hides_backslash(value),
                    Format::Compose => !value.ends_with('\\'),
                    _ => true,
                };
                if !value.contains('\'') && single_ok {
                    return Ok(format!("'{value}'"));
                }
                if !value.contains(['"', '\\', '$', '`']) {
                    return Ok(format!("\"{value}\""));
                }
                if self == Format::PythonDotenv
                    && !value.contains(['$', '`'])
                    && !value.ends_with('\\')
                {
                    // python-dotenv unescapes `\\` and `\"` in double quotes
                    // (but cannot parse `"a\\"`: measured); without `$` and
                    // backticks sh runs nothing.
                    return Ok(double_escaped(value, &['\\', '"']));
                }
                Err(Why::NoForm)
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Characters every reader takes literally in an unquoted value (no quote,
/// `#`, `$`, `\`, backtick, blank, `~`, or glob/shell operator).
fn is_bare(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+,=-".contains(&b))
}

/// `"…"` with each of `escaped` preceded by a backslash.
fn double_escaped(value: &str, escaped: &[char]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    out.push('"');
    for c in value.chars() {
        if escaped.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether python-dotenv would expand something in the value: it expands
/// `${NAME}` and `${NAME:-default}` in every form, and `\${` does not stop it.
fn py_expands(value: &str) -> bool {
    value
        .match_indices("${")
        .any(|(i, _)| value[i + 2..].contains('}'))
}

/// Whether a backslash in single quotes would be read otherwise by
/// python-dotenv: `\\` becomes one backslash, and a final `\` escapes the
/// closing quote.
fn hides_backslash(value: &str) -> bool {
    value.contains("\\\\") || value.ends_with('\\')
}

/// Why a value has no form under a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    PythonExpands,
    NoForm,
}

/// A value a format cannot hold, and the formats that can. Its text names
/// the format and its readers, never what is in the value: not even which
/// character is the trouble (a pull request's plan is public, and "holds a
/// single quote" is a fact about a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub format: Format,
    pub fits: Vec<Format>,
}

impl Refusal {
    fn new(format: Format, value: &str, why: Why) -> Refusal {
        let _ = why;
        let fits = Format::ALL
            .into_iter()
            .filter(|f| *f != format && *f != Format::Dotenv)
            .filter(|f| f.form(value).is_ok())
            .collect();
        Refusal { format, fits }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`format: {}` has no form of this value that {} read back exactly",
            self.format,
            self.format.readers(),
        )?;
        if self.fits.is_empty() {
            write!(f, "; no env-file format can hold it")
        } else {
            let fits: Vec<String> = self.fits.iter().map(|f| format!("`{f}`")).collect();
            write!(
                f,
                "; set the target's `format:` to the program that reads the file ({} can hold it)",
                join_or(&fits)
            )
        }
    }
}

fn join_or(items: &[String]) -> String {
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    join(&items, "or")
}

fn join(items: &[&str], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("Dotenv"), None);
    }

    #[test]
    fn forms() {
        let d = Format::Dotenv;
        assert_eq!(d.encode("").unwrap(), "");
        assert_eq!(d.encode("a.b-c:d").unwrap(), "a.b-c:d");
        assert_eq!(d.encode("a b").unwrap(), "'a b'");
        assert_eq!(d.encode("it's").unwrap(), "\"it's\"");
        assert_eq!(d.encode("a\\b").unwrap(), "'a\\b'");
        assert!(d.encode("it's $5").is_err());
        assert!(d.encode("${HOME}").is_err());
        assert_eq!(Format::Node.encode("${HOME}").unwrap(), "'${HOME}'");
        assert_eq!(
            Format::Shell.encode("it's `id` $x \\").unwrap(),
            "\"it's \\`id\\` \\$x \\\\\""
        );
        assert_eq!(
            Format::PythonDotenv.encode("it's \\ \"").unwrap(),
            "\"it's \\\\ \\\"\""
        );
        assert!(Format::PythonDotenv.encode("it's \\").is_err());
    }

    #[test]
    fn refusal_names_readers_and_formats_but_not_the_value() {
        let e = Format::Dotenv.encode("it's $SECRETVALUE").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("node's dotenv"), "{text}");
        assert!(text.contains("python-dotenv"), "{text}");
        assert!(
            text.contains("`shell`") && text.contains("`systemd`"),
            "{text}"
        );
        assert!(!text.contains("SECRETVALUE"), "{text}");
    }
}
