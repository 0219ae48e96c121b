//! Target files are regular files: the checks every read and write of a
//! local env file goes through (the remote scripts do the same in sh).
//!
//! - **Never a FIFO or a device.** A file is opened non-blocking (a FIFO
//!   with no writer would block the open forever) and refused unless
//!   `fstat` says it is a regular file, so `/dev/zero`, `/dev/stdin`, a FIFO
//!   or a socket at a target path is an error, not a hang, an endless read
//!   or a device node replaced by a file of secrets.
//! - **A size cap**: [`MAX_BYTES`] (16 MiB, the manifest's cap too). An env
//!   file larger than that is refused before it is read whole.
//! - **A final symlink is followed only when it can be trusted**: the link
//!   is owned by the user running secretsync or by root, or by the owner of
//!   the file it points to. A link another user planted (say, a deploy user
//!   pointing root's target at a third user's world-readable file, or at
//!   `/etc/shadow`) is refused: following it would put the secrets in a file
//!   the planter chose.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// The largest target file read: 16 MiB.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a target file is refused.
#[derive(Debug)]
pub enum Refusal {
    /// A directory (said as it always was: point `path` at a file in it).
    Directory,
    /// A FIFO, device, socket: named.
    NotRegular(&'static str),
    /// Larger than [`MAX_BYTES`] (its size).
    TooLarge(u64),
    /// A symlink owned by someone else than us, root or the file's owner.
    UntrustedLink {
        link_uid: u32,
        target_uid: u32,
    },
    Io(io::Error),
}

impl Refusal {
    /// The message for `path` and what to do about it.
    pub fn explain(&self, path: &Path) -> (String, &'static str) {
        let p = crate::neutral::path(path);
        match self {
            Refusal::Directory => (
                format!("{p} is a directory, not an env file"),
                "point `path` at a file inside it",
            ),
            Refusal::NotRegular(kind) => (
                format!("{p} is {kind}, not a regular file; it is neither read nor replaced"),
                "point `path` at a regular file",
            ),
            Refusal::TooLarge(n) => (
                format!(
                    "{p} is {n} bytes, more than the {} MiB an env file may have",
                    MAX_BYTES >> 20
                ),
                "an env file is read whole into memory: keep it under 16 MiB",
            ),
            Refusal::UntrustedLink {
                link_uid,
                target_uid,
            } => (
                format!(
                    "{p} is a symlink owned by uid {link_uid} to a file owned by uid {target_uid}: \
                     secretsync follows only links owned by you, by root or by the file's owner"
                ),
                "replace the link with the file, or have the file's owner run secretsync",
            ),
            Refusal::Io(e) => (format!("cannot read {p}: {e}"), ""),
        }
    }
}

/// What a file type is, for messages.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Whether a symlink owned by `link_uid` to a file owned by `target_uid`
/// may be followed by this process.
fn trusted_link(link_uid: u32, target_uid: u32) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    link_uid == me || link_uid == 0 || link_uid == target_uid
}

/// Checks the final symlink at `path`, if it is one: `Ok(Some(uid))` of the
/// link when it is one that may be followed to an existing file,
/// `Ok(None)` when `path` is no link, missing, or a dangling link.
fn check_link(path: &Path) -> Result<Option<u32>, Refusal> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refusal::Io(e)),
    };
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    let target = match fs::metadata(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refusal::Io(e)),
    };
    if !trusted_link(meta.uid(), target.uid()) {
        return Err(Refusal::UntrustedLink {
            link_uid: meta.uid(),
            target_uid: target.uid(),
        });
    }
    Ok(Some(meta.uid()))
}

/// The bytes of the regular file at `path` (through a trusted final
/// symlink), at most [`MAX_BYTES`]; `None` when it does not exist (a
/// dangling symlink counts as missing). Never blocks on a FIFO and never
/// reads a device. Held zeroized: the text contains the values.
pub fn read_regular(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Refusal> {
    let link = check_link(path)?;
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Err(Refusal::Directory),
        Err(e) => return Err(Refusal::Io(e)),
    };
    let meta = file.metadata().map_err(Refusal::Io)?;
    check_opened(&meta, link)?;
    read_capped(file, meta.len()).map(Some)
}

/// What was opened must be a regular file; when a link was followed, one
/// still owned as checked (the link may have been swapped since).
fn check_opened(meta: &Metadata, link_uid: Option<u32>) -> Result<(), Refusal> {
    if meta.is_dir() {
        return Err(Refusal::Directory);
    }
    if !meta.is_file() {
        return Err(Refusal::NotRegular(kind_of(meta)));
    }
    if let Some(link_uid) = link_uid {
        if !trusted_link(link_uid, meta.uid()) {
            return Err(Refusal::UntrustedLink {
                link_uid,
                target_uid: meta.uid(),
            });
        }
    }
    if meta.len() > MAX_BYTES {
        return Err(Refusal::TooLarge(meta.len()));
    }
    Ok(())
}

fn read_capped(file: File, len: u64) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    // One allocation of the right size: a buffer that grows would leave
    // copies of the values behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(Refusal::Io)?;
    if buf.len() as u64 > MAX_BYTES {
        return Err(Refusal::TooLarge(buf.len() as u64));
    }
    Ok(buf)
}

/// Before a write replaces `path` (or the file a trusted link points to):
/// what is there must be a regular file, or nothing. A device, FIFO or
/// socket is never replaced, nor written through an untrusted link.
pub fn check_replaceable(path: &Path) -> Result<(), Refusal> {
    check_link(path)?;
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Refusal::Directory),
        Ok(m) if !m.is_file() => Err(Refusal::NotRegular(kind_of(&m))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Refusal::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_and_regular_files_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.env");
        fs::write(&f, "A=1\n").unwrap();
        assert_eq!(read_regular(&f).unwrap().unwrap().as_slice(), b"A=1\n");
        assert!(read_regular(&dir.path().join("none")).unwrap().is_none());
        assert!(matches!(
            read_regular(Path::new("/dev/zero")),
            Err(Refusal::NotRegular("a character device"))
        ));
        assert!(matches!(
            check_replaceable(Path::new("/dev/null")),
            Err(Refusal::NotRegular(_))
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_regular(&fifo),
            Err(Refusal::NotRegular("a FIFO"))
        ));
        assert!(matches!(read_regular(dir.path()), Err(Refusal::Directory)));
    }
}
