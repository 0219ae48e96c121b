//! `security -i` lines: how an argument is quoted, what a line can never
//! carry, and the command for one change.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::targets::Op;

/// `security -i` reads lines into a 4096-byte buffer: 4095 bytes and the NUL.
/// A longer line is cut there and its rest run as the next command.
pub const MAX_LINE: usize = 4095;

/// Quotes one argument for a `security -i` line: `"…"` with `\` and `"`
/// escaped. `security` splits lines itself (no shell): this is its rule.
pub fn quote(arg: &str) -> String {
    let mut q = String::with_capacity(arg.len() + 2);
    q.push('"');
    for c in arg.chars() {
        if c == '\\' || c == '"' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

pub(super) fn quoted_len(arg: &str) -> usize {
    arg.len() + 2 + arg.bytes().filter(|&b| b == b'\\' || b == b'"').count()
}

/// Why `value` can never travel on a `security -i` line, whatever its length.
pub(super) fn unsafe_bytes(value: &str) -> Option<&'static str> {
    if value.contains('\0') {
        Some("it contains a NUL byte, which ends a `security -i` line")
    } else if value.contains('\n') {
        Some("it contains a newline, which ends a `security -i` line")
    } else if value.contains('\r') {
        Some("it contains a carriage return, which `security -i` does not keep")
    } else {
        None
    }
}

/// The `security -i` command for one change (holds the value: zeroed on drop).
pub(super) fn command_line(
    service: &str,
    keychain: Option<&str>,
    account: &str,
    op: &Op,
) -> Zeroizing<String> {
    let mut line = crate::secret::SecretBuf::default();
    match op.value() {
        Some(v) => {
            let _ = write!(
                line,
                "add-generic-password -U -a {} -s {} -w {}",
                quote(account),
                quote(service),
                quote(v.expose())
            );
        }
        None => {
            let _ = write!(
                line,
                "delete-generic-password -a {} -s {}",
                quote(account),
                quote(service)
            );
        }
    }
    if let Some(kc) = keychain {
        line.push(' ');
        line.push_str(&quote(kc));
    }
    line.into_inner()
}
