//! The env-file format, shared by the `env_file` and `ssh_env` targets:
//! parse, edit in place, render. A pure library: it knows text, keys and
//! values, never targets (the adapters that turn a file into the target
//! vocabulary are `targets/envfile_target.rs`).
//!
//! A file is kept as a list of segments, each with its raw text: entries
//! (`KEY=value`, possibly spanning lines inside quotes) and everything else
//! (comments, blank lines). Rendering an unedited file gives back the input
//! byte for byte; an edit rewrites only the entries it touches, so comments,
//! order, line ends and untouched lines survive.
//!
//! Reading is one tolerant dialect, which reads every form any [`Format`]
//! writes exactly:
//!
//! ```text
//! # a comment
//! export KEY=value          # `export ` is accepted (kept on rewrite where the format allows)
//! KEY = value # inline comment (unquoted: starts at whitespace + `#`)
//! KEY='literal $text, may span lines'
//! KEY="escapes \\ \" \$ \` \n \t \r; may span lines"
//! ```
//!
//! Writing depends on who reads the file: the target's [`Format`] encodes
//! each value in a form its reader reads back exactly, or refuses it
//! (src/envfile/format.rs). NUL and CR cannot be written in any format.
//!
//! Keys the file defines that secretsync cannot manage (`a.b`, `a-b`, `1A`:
//! not variable names) are kept as they are and reported, never edited. A
//! key defined more than once is reported, and an edit leaves one definition.
//! A UTF-8 byte order mark is accepted and kept.
//!
//! Line ends: `\n` and `\r\n` are both accepted as line ends and kept as they
//! were; a CR anywhere else in a value (a CRLF file with a multi-line quoted
//! value, a stray CR) is a parse error rather than a value silently changed.
//!
//! The jobs, one file each: `segment.rs` (the pieces a file is read into,
//! and which keys an entry may have), `document.rs` (the file as segments:
//! what it defines, render), `parser.rs` (the tolerant dialect reader), `edit.rs`
//! (edits in place, what may be written) and `format.rs` (the per-reader
//! forms of a value).

mod document;
mod edit;
mod format;
mod parser;
mod segment;

pub use document::{EnvFile, Managed};
pub use edit::{check_value, Edit};
pub use format::{Format, Refusal};
pub use parser::ParseError;
pub use segment::check_key;

#[cfg(test)]
mod tests;
