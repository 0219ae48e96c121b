//! A manifest mistake, where it stands, and how it is shown: rustc's layout
//! (the message, `--> file:line:col`, the line with a caret, the hint).
//!
//! It lives in the seam, below the manifest, because kinds report their
//! fields' mistakes with it ([`super::Fields`]); the manifest re-exports it.

use std::fmt;
use std::path::PathBuf;

/// A manifest that cannot be used, with where and why.
#[derive(Debug)]
pub enum ManifestError {
    /// The file could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A mistake at a place in the file.
    At(Box<Located>),
}

/// A mistake at a line and column of the manifest.
#[derive(Debug)]
pub struct Located {
    pub path: PathBuf,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    /// How many characters to underline.
    pub width: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The text of the offending line.
    pub source_line: Option<String>,
}

impl ManifestError {
    /// What the user can do about it (not part of [`ManifestError::message`]).
    pub fn hint(&self) -> Option<String> {
        match self {
            ManifestError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(
                    "pass its path with -f/--manifest, or create one with `secretsync init`".into(),
                )
            }
            ManifestError::Read { .. } => None,
            ManifestError::At(l) => l.hint.as_deref().map(crate::neutral::lines),
        }
    }

    /// The mistake and where it stands, without the hint: what a JSON
    /// document's `message` holds (its `hint` is [`ManifestError::hint`]).
    pub fn message(&self) -> String {
        match self {
            ManifestError::Read { path, source } => {
                format!("cannot read the manifest {}: {source}", path.display())
            }
            ManifestError::At(l) => l.message_and_place(),
        }
    }
}

/// The whole diagnostic: the message, the place, and the hint last.
impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Located {
    /// rustc's layout: the message, the place, the line with a caret.
    fn message_and_place(&self) -> String {
        use fmt::Write as _;
        let mut f = String::new();
        // Messages quote manifest text: inert for terminals and the runner.
        let _ = writeln!(f, "{}", crate::neutral::lines(&self.message));
        if self.line == 0 {
            let _ = write!(f, "  --> {}", self.path.display());
        } else {
            let _ = write!(
                f,
                "  --> {}:{}:{}",
                self.path.display(),
                self.line,
                self.column
            );
        }
        if let Some(text) = &self.source_line {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let indent: String = text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(
                f,
                "\n{pad} |\n{num} | {}\n{pad} | {indent}{}",
                crate::neutral::text(text),
                "^".repeat(self.width.max(1))
            );
        }
        f
    }
}

impl fmt::Display for Located {
    /// rustc's layout: the message, the place, the line with a caret, the hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message_and_place())?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", crate::neutral::lines(hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManifestError::Read { source, .. } => Some(source),
            ManifestError::At(_) => None,
        }
    }
}
