//! The pieces an env file is read into (what the parser makes, the document
//! holds and the edits rewrite), and which keys an entry may have.

use crate::secret::Secret;

/// One piece of the file: its raw text (without the line end that closes
/// it) and that line end, so unedited segments render exactly as read.
pub(super) struct Segment {
    /// The text as read, or as rewritten by an edit. Held as a [`Secret`]
    /// because an entry's raw text contains its value.
    pub(super) raw: Secret,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a line end.
    pub(super) eol: &'static str,
    /// `None` for comments, blank lines and other text kept as is.
    pub(super) entry: Option<Entry>,
}

pub(super) struct Entry {
    /// 1-based line the entry starts on, as read (0 for an added entry).
    pub(super) line: usize,
    pub(super) key: String,
    pub(super) value: Secret,
    /// Whitespace before the key (or before `export`), kept on rewrite.
    pub(super) indent: String,
    pub(super) export: bool,
    /// An inline comment after the value (with the whitespace before it),
    /// kept on rewrite; empty when there is none.
    pub(super) comment: String,
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
