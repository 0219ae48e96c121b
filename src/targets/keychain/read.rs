//! The read script's protocol: items addressed by their tuples, the framed
//! output split into one [`Lookup`] per item.

use std::collections::HashMap;

use super::errors::{code_text, EXIT_NOT_FOUND};
use super::password::decode_password;
use crate::remote::{Output, Runner};
use crate::secret::Secret;
use crate::targets::TargetError;

/// How many `find-generic-password` a read runs at once on one host.
pub(super) const READ_WIDTH: usize = 8;

/// Reads every tuple given as arguments (after a marker unique to the run and
/// [`READ_WIDTH`]), `width` lookups at a time.
///
/// The items of a group of at most `width` are the stages of one pipeline
/// (built by the recursive `chain`), so their lookups run at once: each stage
/// captures its lookup's stderr and exit code (`out=$(…); rc=$?`), then copies
/// the frames of the group's earlier items from its stdin (`cat`, which ends
/// when the previous stage has exited), then prints its own frame. The frames
/// thus come out whole and in order, whatever their size (no reliance on
/// atomic writes), and, `security`'s stderr ending with one newline, byte for
/// byte as when the lookups ran one after another: `$(…)` drops that newline
/// and `printf '%s\n'` puts it back. Values live only in shell variables
/// (printed by the `printf` builtin) and pipes: no temp file, no FIFO, nothing
/// in any argv. Groups run one after another: the last stage of a group exits
/// only after every other one, so at most `width` lookups ever run at once.
pub(super) const READ_SCRIPT: &str = crate::targets::scripts::KEYCHAIN_READ;

/// One item as the read script addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Item {
    pub(super) security: String,
    /// As written in the manifest (`~/` expanded on the host); empty for the
    /// default keychain.
    pub(super) keychain: String,
    pub(super) service: String,
    pub(super) account: String,
}

/// What one `find-generic-password -g` said.
#[derive(Clone, Debug)]
pub(super) enum Lookup {
    Found(Secret),
    Absent,
    /// The item exists but its bytes are not UTF-8 text.
    NotText,
    /// `security` failed: its exit code and its last diagnostic line (never
    /// a `password:` line).
    Failed {
        code: Option<i32>,
        said: String,
    },
}

/// One read of a host: its `$HOME` and what each item held.
#[derive(Debug, Default)]
pub(super) struct HostRead {
    pub(super) home: String,
    pub(super) lookups: HashMap<Item, Lookup>,
}

/// Runs the read script for `items` (not batched: the write's conflict check).
pub(super) async fn read_items(runner: &Runner, items: &[Item]) -> Result<HostRead, TargetError> {
    let marker = format!("secretsync-{:016x}", rand::random::<u64>());
    let width = READ_WIDTH.to_string();
    let mut args: Vec<&str> = vec![&marker, &width];
    for it in items {
        args.extend([
            it.security.as_str(),
            it.keychain.as_str(),
            it.service.as_str(),
            it.account.as_str(),
        ]);
    }
    let out = runner.sh(READ_SCRIPT, &args, b"", false).await?;
    parse_read(&marker, items, &out).map_err(|why| {
        TargetError::failed(format!(
            "the keychain read on {} answered unexpectedly: {why}",
            runner.place()
        ))
        .with_hint("check that `sh` works on the host; run `secretsync doctor`")
    })
}

/// Splits the read script's output into one [`Lookup`] per item.
pub(super) fn parse_read(marker: &str, items: &[Item], out: &Output) -> Result<HostRead, String> {
    if out.code != Some(0) {
        return Err(format!(
            "the script exited with {} ({})",
            code_text(out.code),
            out.stderr_line()
        ));
    }
    let mut read = HostRead::default();
    let mut lines = out.stdout.split(|&b| b == b'\n');
    let home_tag = format!("{marker} home ");
    let first = lines.next().unwrap_or_default();
    let home = first
        .strip_prefix(home_tag.as_bytes())
        .ok_or("no header line")?;
    read.home = String::from_utf8_lossy(home).into_owned();

    for (i, item) in items.iter().enumerate() {
        let open = format!("{marker} item {i}");
        if lines.next() != Some(open.as_bytes()) {
            return Err(format!("item {i} is missing"));
        }
        let end_tag = format!("{marker} end {i} ");
        let mut said: Vec<&[u8]> = Vec::new();
        let code = loop {
            let Some(line) = lines.next() else {
                return Err(format!("item {i} is cut short"));
            };
            if let Some(code) = line.strip_prefix(end_tag.as_bytes()) {
                break std::str::from_utf8(code)
                    .ok()
                    .and_then(|c| c.parse::<i32>().ok())
                    .ok_or_else(|| format!("item {i} has no exit code"))?;
            }
            said.push(line);
        };
        read.lookups.insert(item.clone(), lookup(code, &said));
    }
    Ok(read)
}

/// What one item's `-g` output means.
pub(super) fn lookup(code: i32, said: &[&[u8]]) -> Lookup {
    let password = said.iter().find_map(|l| l.strip_prefix(b"password:"));
    match code {
        0 => match password.map(decode_password) {
            Some(Ok(bytes)) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Lookup::Found(Secret::new(text)),
                Err(e) => {
                    let mut bytes = e.into_bytes();
                    zeroize::Zeroize::zeroize(&mut bytes);
                    Lookup::NotText
                }
            },
            Some(Err(why)) => Lookup::Failed {
                code: Some(0),
                said: format!("the password line is malformed ({why})"),
            },
            None => Lookup::Failed {
                code: Some(0),
                said: "no password line on stderr".into(),
            },
        },
        EXIT_NOT_FOUND => Lookup::Absent,
        other => Lookup::Failed {
            code: Some(other),
            said: diagnostic(said),
        },
    }
}

/// The last non-empty line `security` printed that is not a password line.
fn diagnostic(said: &[&[u8]]) -> String {
    said.iter()
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .rfind(|l| !l.is_empty() && !l.starts_with("password:"))
        .unwrap_or_default()
}
