//! The failures of running a script where a target lives. The message
//! never contains a value; `hint` says what to do. The target seam turns
//! one into a `TargetError` of the same kind, message and hint.

use std::fmt;

/// The broad class of a remote failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// The host could not be reached, or the connection was lost.
    Unreachable,
    /// The host refused us (host key, authentication).
    Auth,
    /// A command could not be run (no `sh`, no local `ssh`).
    Failed,
}

/// A remote failure: its kind, what happened, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub kind: RemoteKind,
    pub message: String,
    pub hint: Option<String>,
}

impl RemoteError {
    pub fn new(kind: RemoteKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(RemoteKind::Unreachable, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(RemoteKind::Auth, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(RemoteKind::Failed, message)
    }

    /// Whether the connection was lost while a command ran: a write that
    /// meets it may have landed.
    pub fn lost_during_command(&self) -> bool {
        self.message.contains(super::LOST_DURING)
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}
