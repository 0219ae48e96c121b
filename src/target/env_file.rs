//! The env-file format, shared by the local and SSH targets: parse, edit in
//! place, render.
//!
//! (API skeleton; the implementation lands with the env_file work.)

use std::collections::BTreeMap;

use super::Change;
use crate::secret::Secret;

/// A parsed env file that renders back byte for byte where it was not edited.
pub struct EnvFile {
    _segments: Vec<String>,
}

/// A line that cannot be parsed. The message never contains a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl EnvFile {
    pub fn parse(_text: &str) -> Result<EnvFile, ParseError> {
        todo!("env_file::parse")
    }

    /// Every key with its value; where a key is defined twice, the last wins.
    pub fn entries(&self) -> BTreeMap<String, Secret> {
        todo!("env_file::entries")
    }

    /// Adds, updates (every definition of the key, in place) and deletes.
    pub fn apply(&mut self, _changes: &[Change]) -> Result<(), String> {
        todo!("env_file::apply")
    }

    /// The text: untouched lines exactly as read.
    pub fn render(&self) -> String {
        todo!("env_file::render")
    }

    /// The text with each value replaced by `mark(key, value)`.
    pub fn redacted(&self, _mark: &dyn Fn(&str, &Secret) -> String) -> String {
        todo!("env_file::redacted")
    }
}

/// Whether a value can be written (NUL and CR cannot).
pub fn check_value(_value: &Secret) -> Result<(), String> {
    todo!("env_file::check_value")
}
