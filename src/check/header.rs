//! An encrypted value's age header, read without a key: that it parses and
//! names as many recipients, of the kinds, as the manifest lists.

use super::*;

// ---- age headers ---------------------------------------------------------------

/// The recipient stanzas a value encrypted to the manifest's recipients has.
pub(super) struct Expected {
    pub(super) x25519: usize,
    /// ssh-ed25519 recipients by their stanza tag (base64 of the first four
    /// bytes of SHA-256 of the key), which a stanza names in clear.
    pub(super) ssh_tags: BTreeMap<String, usize>,
    pub(super) total: usize,
}

/// The stanza types that stand for a recipient; any other type is grease
/// (random stanzas age adds so that parsers stay tolerant) or a plugin.
pub(super) const RECIPIENT_TYPES: &[&str] = &["X25519", "ssh-ed25519", "ssh-rsa"];

impl Expected {
    pub(super) fn new(recipients: &[Recipient]) -> Expected {
        let mut e = Expected {
            x25519: 0,
            ssh_tags: BTreeMap::new(),
            total: recipients.len(),
        };
        for r in recipients {
            match r {
                Recipient::X25519(_) => e.x25519 += 1,
                Recipient::Ssh(_) => {
                    *e.ssh_tags.entry(ssh_tag(&r.to_string())).or_default() += 1;
                }
            }
        }
        e
    }

    /// `Err((what is wrong, what to do))`.
    pub(super) fn check(&self, armored: &str) -> Result<(), (String, String)> {
        let header = parse_header(armored).map_err(|why| {
            (
                why,
                "write the value again with `secretsync set` (it must be an armored age file encrypted to the recipients)".to_string(),
            )
        })?;
        let rekey = "run `secretsync rekey` (with an identity) to encrypt every value to the manifest's recipients".to_string();
        if header.scrypt {
            return Err((
                "it is encrypted with a passphrase, not to the recipients".into(),
                rekey,
            ));
        }
        let found = header.recipients.len();
        if found != self.total {
            return Err((
                format!(
                    "it is encrypted to {} but the manifest lists {}",
                    plural(found, "recipient"),
                    plural(self.total, "recipient")
                ),
                rekey,
            ));
        }
        let x25519 = header
            .recipients
            .iter()
            .filter(|s| s.kind == "X25519")
            .count();
        let mut tags: BTreeMap<String, usize> = BTreeMap::new();
        for s in header.recipients.iter().filter(|s| s.kind != "X25519") {
            *tags.entry(s.tag.clone()).or_default() += 1;
        }
        if x25519 != self.x25519 || tags != self.ssh_tags {
            return Err((
                format!(
                    "its recipients are not the manifest's: {} age and {} SSH, where the manifest lists {} age and {} SSH{}",
                    x25519,
                    found - x25519,
                    self.x25519,
                    self.total - self.x25519,
                    if found - x25519 == self.total - self.x25519 {
                        " (another SSH key)"
                    } else {
                        ""
                    }
                ),
                rekey,
            ));
        }
        Ok(())
    }
}

pub(super) fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The stanza tag age gives an ssh-ed25519 recipient (`ssh-ed25519 BASE64`).
pub(super) fn ssh_tag(recipient: &str) -> String {
    use base64::Engine as _;
    let blob = recipient
        .split_whitespace()
        .nth(1)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(&Sha256::digest(&blob)[..4])
}

/// A recipient stanza: its type and, for SSH, its key tag.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Stanza {
    pub(super) kind: String,
    pub(super) tag: String,
}

#[derive(Debug)]
pub(super) struct Header {
    pub(super) recipients: Vec<Stanza>,
    pub(super) scrypt: bool,
}

/// Decodes the armor and reads the age header (the format is at
/// age-encryption.org/v1). age's own parser validates the header too; it does
/// not expose the stanzas, so they are counted here.
pub(super) fn parse_header(armored: &str) -> Result<Header, String> {
    let mut bytes = Vec::with_capacity(armored.len());
    age::armor::ArmoredReader::new(armored.trim().as_bytes())
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the armor does not decode: {e}"))?;
    crate::crypto::check_stanzas(&bytes)?;
    let decryptor = age::Decryptor::new_buffered(&bytes[..])
        .map_err(|e| format!("the age header does not parse: {e}"))?;
    let scrypt = decryptor.is_scrypt();

    let mut lines = bytes.split(|&b| b == b'\n');
    if lines.next() != Some(b"age-encryption.org/v1") {
        return Err("the age header does not parse: not an age-encryption.org/v1 file".into());
    }
    let mut recipients = Vec::new();
    loop {
        let Some(line) = lines.next() else {
            return Err("the age header does not parse: it has no end".into());
        };
        if line.starts_with(b"---") {
            break;
        }
        let Some(args) = line.strip_prefix(b"-> ") else {
            return Err("the age header does not parse: a line is not a stanza".into());
        };
        let args = String::from_utf8_lossy(args);
        let mut args = args.split(' ');
        let kind = args.next().unwrap_or("").to_string();
        let tag = args.next().unwrap_or("").to_string();
        // The body: full lines of 64 base64 characters, then a shorter one.
        loop {
            match lines.next() {
                Some(body) if body.len() == 64 => continue,
                Some(_) => break,
                None => return Err("the age header does not parse: a stanza has no end".into()),
            }
        }
        if RECIPIENT_TYPES.contains(&kind.as_str()) {
            recipients.push(Stanza { kind, tag });
        }
    }
    Ok(Header { recipients, scrypt })
}
