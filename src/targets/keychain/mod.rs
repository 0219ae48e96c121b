//! The `keychain` target: generic passwords of one service in a macOS
//! keychain, on this Mac or on a Mac reached over SSH, through Apple's
//! `security` tool.
//!
//! ```yaml
//! targets:
//!   mac-mini:
//!     type: keychain
//!     host: admin@mac-mini.local   # omit for this machine; SSH options as ssh_env
//!     service: openclaw            # the items' service; the account is the key
//!     keychain: ~/Library/Keychains/login.keychain-db   # optional
//! ```
//!
//! The program run is `/usr/bin/security`, where it is on every Mac; the
//! environment variable `SECRETSYNC_SECURITY` of the run may name another
//! (tests, wrappers). The manifest cannot: a pull request that could name a
//! program would run it during `plan`.
//!
//! **Read.** All keychain targets on one host share one command per pass
//! (their [`Target::batch_key`] is the host; the engine reads them together): a
//! short POSIX `sh` script is given (security, keychain, service, account)
//! tuples as its arguments (names only) and runs
//! `security find-generic-password -a ACCOUNT -s SERVICE -g [KEYCHAIN]` for
//! each, framing what each printed on stderr between lines carrying a random
//! marker, with the exit code. Up to `READ_WIDTH` (8) lookups run at once:
//! each group of 8 items is one pipeline whose stages each run a lookup into
//! a shell variable, pass the earlier stages' frames on, then print their own,
//! so the frames come out whole and in item order. No temp file or FIFO holds
//! the output, which contains the passwords: it lives only in shell variables
//! and pipes. [`decode_password`] reads every form `-g` prints
//! (`"…"`, `0xHEX  "…"`, `0xHEX `, empty); exit 44 is an absent item. A
//! keychain cannot be listed, so a read is never `complete` and the target is
//! never pruned.
//!
//! **Write.** First the written keys are read again (one command) and compared
//! with what the plan read: any difference refuses the write as a conflict.
//! Then one `security -i` gets every command on stdin: values never appear on
//! a command line. Each argument is quoted the way `security -i` splits lines
//! (`"…"` with `\` and `"` escaped), a line holds at most 4095 bytes, and a
//! value with NUL, CR or LF cannot be written safely: [`Target::check_value`]
//! refuses it at plan time. Items are written with
//! `add-generic-password -U` and never `-T`/`-A`, which would ask for a GUI
//! confirmation on an existing item. `security -i` goes on after a failed
//! command and exits with the last command's status, so failures are found in
//! its `NAME: returned STATUS` lines.
//!
//! One file per job: `fields.rs` (the kind and its spec), `read.rs` (the read
//! script's protocol, split per item), `password.rs` (what `-g` prints),
//! `line.rs` (`security -i` lines: quoting and what they cannot carry),
//! `errors.rs` (exit codes and `returned` lines turned into errors with
//! hints), `program.rs` (which `security` runs) and `target.rs` (the
//! [`KeychainTarget`]).

mod errors;
mod fields;
mod line;
mod password;
mod program;
mod read;
mod target;

pub use fields::{KeychainKind, KeychainSpec, KIND};
pub use line::{quote, MAX_LINE};
pub use password::decode_password;
pub use program::{SECURITY, SECURITY_ENV};
pub use target::KeychainTarget;

/// The longest account a manifest allows (`TargetSpec::check_key`).
pub(super) const MAX_ACCOUNT: usize = 255;

#[cfg(test)]
mod tests;
