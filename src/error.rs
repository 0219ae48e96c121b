//! The errors a command can end with. Exit codes are decided in one place
//! (`main.rs`); each error can say what to do next.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::lock::LockError;
use crate::manifest::ManifestError;

/// `Display` is [`Error::message`]: the hint is never in it (text output
/// prints it on a line of its own, JSON in `hint`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.message())]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// A request that cannot be carried out as asked (flags, names, no terminal).
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A file of ours (not a target's) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something else that went wrong, said plainly.
    #[error("{message}")]
    Other {
        message: String,
        hint: Option<String>,
    },
}

/// The edit lock's failures stay `failed` with their own hint, as when the
/// lock built them itself.
impl From<LockError> for Error {
    fn from(e: LockError) -> Self {
        Error::Other {
            message: e.to_string(),
            hint: e.hint().map(str::to_string),
        }
    }
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Error::Other {
            message: message.into(),
            hint: None,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// What the user can do about it. Never part of [`Error::message`], so
    /// that text and JSON show it once each.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Manifest(e) => e.hint(),
            Error::Crypto(e) => e.hint().map(str::to_string),
            Error::Usage { hint, .. } | Error::Other { hint, .. } => hint.clone(),
            Error::Io { .. } => None,
        }
    }

    /// What went wrong, without the hint (the same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The error's kind as JSON documents name it (docs/json-output.md).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Manifest(_) => "manifest",
            Error::Crypto(_) => "crypto",
            Error::Usage { .. } => "usage",
            Error::Io { .. } => "io",
            Error::Other { .. } => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_never_in_the_message() {
        let missing = ManifestError::Read {
            path: "secrets.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        let e = Error::from(missing);
        let hint = e.hint().expect("a missing manifest says what to do");
        assert_eq!(e.to_string(), e.message());
        assert!(!e.message().contains(&hint), "{}", e.message());
        assert_eq!(e.kind(), "manifest");
        let e = Error::usage("no terminal", "pass --yes");
        assert_eq!(
            (e.to_string(), e.hint(), e.kind()),
            ("no terminal".into(), Some("pass --yes".into()), "usage")
        );
    }
}
