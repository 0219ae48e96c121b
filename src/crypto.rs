//! age encryption of values, identities and keyed fingerprints.
//!
//! Values are age files (armored) encrypted to every recipient of the
//! manifest. The identity that decrypts them is looked for in the order users
//! of rage and SOPS expect (see [`find_identities`]). Fingerprints are
//! HMAC-SHA256 under a key that is itself encrypted in the manifest, so a
//! reader of a public CI log cannot test guesses against them offline.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::Secret;

pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// Someone who can decrypt the manifest's values.
#[derive(Clone)]
pub enum Recipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(r) => write!(f, "{r}"),
            Recipient::Ssh(r) => write!(f, "{r}"),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

/// Parses an age x25519 recipient (`age1…`) or an `ssh-ed25519 AAAA…` key.
pub fn parse_recipient(text: &str) -> Result<Recipient, String> {
    let t = text.trim();
    if t.starts_with("age1") {
        age::x25519::Recipient::from_str(t)
            .map(Recipient::X25519)
            .map_err(|e| e.to_string())
    } else if t.starts_with("ssh-") {
        if !t.starts_with("ssh-ed25519 ") {
            return Err("only ssh-ed25519 keys are supported among SSH keys".into());
        }
        age::ssh::Recipient::from_str(t)
            .map(Recipient::Ssh)
            .map_err(|e| format!("{e:?}"))
    } else {
        Err("expected an age1… key or an ssh-ed25519 public key".into())
    }
}

/// A private key that can decrypt values.
#[derive(Clone)]
pub enum Identity {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl Identity {
    fn as_dyn(&self) -> &dyn age::Identity {
        match self {
            Identity::X25519(i) => i,
            Identity::Ssh(i) => i,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Identity::X25519(_) => "Identity(x25519, <redacted>)",
            Identity::Ssh(_) => "Identity(ssh, <redacted>)",
        })
    }
}

/// The identities found, and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Identities {
    pub keys: Vec<Identity>,
    pub origin: String,
}

/// Why an identity cannot be found or a value cannot be decrypted or
/// encrypted. `Clone`, so that a run that decrypts once can fail each of
/// its callers with the same typed error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CryptoError {
    #[error("no age identity found to decrypt the manifest (tried: {tried})")]
    NoIdentity { tried: String },
    #[error("cannot read the identity {}: {source}", path.display())]
    ReadIdentity {
        path: PathBuf,
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("the identity file {} can be read or changed by other users (mode {mode:04o})", path.display())]
    OpenIdentity { path: PathBuf, mode: u32 },
    #[error("the identity from {origin} is not usable: {why}")]
    BadIdentity { origin: String, why: String },
    #[error("{what} is not encrypted to the identity from {origin}")]
    NotRecipient { what: String, origin: String },
    /// [`CryptoError::NotRecipient`] said with what the run knows: the
    /// identity's public key and the manifest's recipients.
    #[error("{what} is not encrypted to the identity from {origin} ({public}), which is not one of the manifest's recipients:\n{recipients}")]
    NotARecipient {
        what: String,
        origin: String,
        public: String,
        recipients: String,
    },
    #[error("{what} cannot be decrypted: {why}")]
    Corrupt { what: String, why: String },
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

impl CryptoError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CryptoError::NoIdentity { .. } => Some(
                "pass --identity FILE, or set SECRETSYNC_AGE_KEY (the key) or SECRETSYNC_AGE_KEY_FILE (its path)",
            ),
            CryptoError::OpenIdentity { .. } => Some(
                "it decrypts every value of the manifest: make it private with `chmod 600 FILE`, as ssh requires of private keys",
            ),
            CryptoError::NotRecipient { .. } => Some(
                "use an identity whose public key is listed under `recipients`, or ask a holder of one to run `secretsync recipients add YOUR_PUBLIC_KEY` (it re-encrypts every value; `secretsync whoami` prints yours)",
            ),
            CryptoError::NotARecipient { .. } => Some(
                "use an identity whose public key is listed above (--identity FILE), or ask a holder of one to run `secretsync recipients add YOUR_PUBLIC_KEY` (it re-encrypts every value; `secretsync whoami` prints yours)",
            ),
            _ => None,
        }
    }
}

/// Parses the text of an identity file: age x25519 keys (one per line,
/// `#` comments) or one unencrypted OpenSSH ed25519 private key.
// Written in two pieces so that a scan of the repository for committed
// private keys (which looks for these markers) does not flag the code that
// recognises them.
const OPENSSH_KEY_HEADER: &str = concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----");
const NOT_AN_AGE_KEY: &str = concat!(
    "a line is neither a comment nor an AGE-SECRET-",
    "KEY-1… key"
);

pub fn parse_identities(text: &str, origin: &str) -> Result<Vec<Identity>, CryptoError> {
    let bad = |why: &str| CryptoError::BadIdentity {
        origin: origin.to_string(),
        why: why.to_string(),
    };
    if text.contains(OPENSSH_KEY_HEADER) {
        if ssh_key_type(text).as_deref() != Some("ssh-ed25519") {
            return Err(bad("only ssh-ed25519 private keys are supported (recipients are age1… or ssh-ed25519 keys)"));
        }
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), None)
            .map_err(|_| bad("the SSH private key does not parse"))?;
        return match id {
            age::ssh::Identity::Unencrypted(_) => Ok(vec![Identity::Ssh(id)]),
            age::ssh::Identity::Encrypted(_) => Err(bad(
                "the SSH key is passphrase-protected; use an unencrypted key or an age identity",
            )),
            age::ssh::Identity::Unsupported(_) => {
                Err(bad("only ssh-ed25519 private keys are supported"))
            }
        };
    }
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| bad(NOT_AN_AGE_KEY))?;
        keys.push(Identity::X25519(id));
    }
    if keys.is_empty() {
        return Err(bad("it holds no key"));
    }
    Ok(keys)
}

/// The key type of an OpenSSH private key file (`ssh-ed25519`, `ssh-rsa`),
/// read from its public part: age would accept an ssh-rsa key, which the
/// manifest's recipients cannot name, so it is refused by type, not by luck.
fn ssh_key_type(text: &str) -> Option<String> {
    ssh_public(text)?.split(' ').next().map(str::to_string)
}

/// The public keys (recipients' spelling: `age1…`, `ssh-ed25519 AAAA…`) of
/// the identities in an identity file's text.
pub fn public_keys(text: &str, origin: &str) -> Result<Vec<String>, CryptoError> {
    let keys = parse_identities(text, origin)?;
    if text.contains(OPENSSH_KEY_HEADER) {
        return ssh_public(text)
            .map(|p| vec![p])
            .ok_or(CryptoError::BadIdentity {
                origin: origin.to_string(),
                why: "the SSH private key does not parse".into(),
            });
    }
    Ok(keys
        .iter()
        .filter_map(|k| match k {
            Identity::X25519(i) => Some(i.to_public().to_string()),
            Identity::Ssh(_) => None,
        })
        .collect())
}

/// `ssh-ed25519 AAAA…`: the public key an OpenSSH private key file carries.
fn ssh_public(text: &str) -> Option<String> {
    use base64::Engine as _;
    let body: String = text
        .lines()
        .skip_while(|l| !l.contains(OPENSSH_KEY_HEADER))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?,
    );
    let mut rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
    fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let s = rest.get(4..4usize.checked_add(len)?)?;
        *rest = &rest[4 + len..];
        Some(s)
    }
    for _ in 0..3 {
        string(&mut rest)?;
    }
    rest = rest.get(4..)?;
    let public = string(&mut rest)?;
    let mut p = public;
    let kind = String::from_utf8(string(&mut p)?.to_vec()).ok()?;
    Some(format!(
        "{kind} {}",
        base64::engine::general_purpose::STANDARD.encode(public)
    ))
}

impl Identities {
    /// The public keys of these identities that can be computed from the
    /// keys alone (x25519; an SSH key's public half is in its file).
    pub fn publics(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter_map(|k| match k {
                Identity::X25519(i) => Some(i.to_public().to_string()),
                Identity::Ssh(_) => None,
            })
            .collect()
    }
}

/// [`CryptoError::NotRecipient`] said with the identity's public keys and
/// the manifest's recipients; any other error as it is.
pub fn explain(e: CryptoError, publics: &[String], recipients: &[Recipient]) -> CryptoError {
    let CryptoError::NotRecipient { what, origin } = e else {
        return e;
    };
    let what = if what == "fingerprint_key" {
        "the manifest's fingerprint key (`fingerprint_key`, encrypted to the recipients like every value)".to_string()
    } else {
        what
    };
    let public = if publics.is_empty() {
        "public key unknown".to_string()
    } else {
        publics.join(", ")
    };
    let recipients = if recipients.is_empty() {
        "  (it lists none)".to_string()
    } else {
        recipients
            .iter()
            .map(|r| format!("  - {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    CryptoError::NotARecipient {
        what,
        origin,
        public,
        recipients,
    }
}

/// One place an identity was found, for `secretsync whoami`.
#[derive(Debug, Clone)]
pub struct FoundIdentity {
    /// Where: `--identity FILE`, `SECRETSYNC_AGE_KEY`, a path.
    pub origin: String,
    /// Its public keys, or why it is not usable.
    pub public: Result<Vec<String>, String>,
}

/// Every identity present, in the order [`find_identities`] tries them
/// (the first one is the one it uses).
pub fn survey_identities(explicit: Option<&Path>) -> Vec<FoundIdentity> {
    let mut out = Vec::new();
    let from_file = |path: &Path, origin: String| -> FoundIdentity {
        let public = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|text| public_keys(&text, &origin).map_err(|e| e.to_string()));
        FoundIdentity { origin, public }
    };
    if let Some(path) = explicit {
        out.push(from_file(path, format!("--identity {}", path.display())));
    }
    let var = |name: &str| crate::environ::var(name).filter(|v| !v.trim().is_empty());
    for (key_var, file_var) in [
        ("SECRETSYNC_AGE_KEY", "SECRETSYNC_AGE_KEY_FILE"),
        ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"),
    ] {
        if let Some(text) = var(key_var).map(Zeroizing::new) {
            out.push(FoundIdentity {
                origin: key_var.to_string(),
                public: public_keys(&text, key_var).map_err(|e| e.to_string()),
            });
        }
        if let Some(path) = var(file_var) {
            out.push(from_file(Path::new(&path), format!("{file_var} ({path})")));
        }
    }
    if let Some(path) = default_identity_path().filter(|p| p.is_file()) {
        out.push(from_file(&path, path.display().to_string()));
    }
    out
}

/// `~/.config/sops/age/keys.txt`, where `init` writes a new identity.
pub fn default_identity_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/sops/age/keys.txt"))
}

/// Whether `public` (a public key as [`public_keys`] spells it) is one of
/// `recipients` (an SSH key's comment does not count).
pub fn is_recipient(public: &str, recipients: &[Recipient]) -> bool {
    let bare = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    recipients
        .iter()
        .any(|r| bare(&r.to_string()) == bare(public))
}

/// The public key of the demo identity in examples/demo, published with the
/// repository on purpose: its file may be readable by anyone.
const DEMO_RECIPIENT: &str = "age1mq0k4y5f9vu3emmqkdv65l5hmzz2u85fdalx2fu6e4gujq7cfqds6pjmuc";

/// Refuses an identity file that others can read or change, as ssh refuses
/// a private key with open permissions: the key decrypts every value.
#[cfg(unix)]
fn check_permissions(path: &Path, keys: &[Identity]) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    let demo_only = keys.iter().all(|k| match k {
        Identity::X25519(i) => i.to_public().to_string() == DEMO_RECIPIENT,
        Identity::Ssh(_) => false,
    });
    if mode & 0o077 != 0 && !demo_only {
        return Err(CryptoError::OpenIdentity {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _keys: &[Identity]) -> Result<(), CryptoError> {
    Ok(())
}

/// Finds the identity, in this order: `--identity FILE`, `SECRETSYNC_AGE_KEY`
/// (the key itself), `SECRETSYNC_AGE_KEY_FILE`, then SOPS's `SOPS_AGE_KEY`,
/// `SOPS_AGE_KEY_FILE` and `~/.config/sops/age/keys.txt`. The first one
/// present is used.
pub fn find_identities(explicit: Option<&Path>) -> Result<Identities, CryptoError> {
    let from_file = |path: &Path, origin: String| -> Result<Identities, CryptoError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::ReadIdentity {
                path: path.to_path_buf(),
                source: source.into(),
            }
        })?);
        let keys = parse_identities(&text, &origin)?;
        check_permissions(path, &keys)?;
        Ok(Identities { keys, origin })
    };
    if let Some(path) = explicit {
        return from_file(path, format!("--identity {}", path.display()));
    }
    let var = |name: &str| crate::environ::var(name).filter(|v| !v.trim().is_empty());
    for (key_var, file_var) in [
        ("SECRETSYNC_AGE_KEY", "SECRETSYNC_AGE_KEY_FILE"),
        ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"),
    ] {
        if let Some(text) = var(key_var).map(Zeroizing::new) {
            return Ok(Identities {
                keys: parse_identities(&text, key_var)?,
                origin: key_var.to_string(),
            });
        }
        if let Some(path) = var(file_var) {
            return from_file(Path::new(&path), format!("{file_var} ({path})"));
        }
    }
    let sops_default =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/sops/age/keys.txt"));
    if let Some(path) = sops_default.filter(|p| p.is_file()) {
        let origin = format!("{}", path.display());
        return from_file(&path, origin);
    }
    Err(CryptoError::NoIdentity {
        tried: "--identity, SECRETSYNC_AGE_KEY, SECRETSYNC_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, ~/.config/sops/age/keys.txt".into(),
    })
}

/// The most stanzas an age header may have here. age's header parser takes
/// time quadratic in their number (20,000 stanzas: 110 s); a value is
/// encrypted to one stanza per recipient plus at most a grease stanza, so
/// a team of more than 255 recipients is the only one this would stop.
pub const MAX_STANZAS: usize = 256;

/// The stanzas of the age header at the start of `bytes` (a decoded file):
/// the lines beginning `-> ` before the `---` line.
pub fn header_stanzas(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .take_while(|l| !l.starts_with(b"---"))
        .filter(|l| l.starts_with(b"-> "))
        .count()
}

/// `Err(why)` when an age file (decoded) has more than [`MAX_STANZAS`]
/// stanzas: refused before age parses its header.
pub fn check_stanzas(bytes: &[u8]) -> Result<(), String> {
    match header_stanzas(bytes) {
        n if n > MAX_STANZAS => Err(format!(
            "its age header has {n} stanzas, more than the {MAX_STANZAS} secretsync accepts (one per recipient)"
        )),
        _ => Ok(()),
    }
}

impl Identities {
    /// The x25519 keys of these identities whose public key `recipients`
    /// do not list (an SSH key's public half is not in its private key: not
    /// among them).
    pub fn outside(&self, recipients: &[Recipient]) -> Identities {
        Identities {
            keys: self
                .keys
                .iter()
                .filter(|k| match k {
                    Identity::X25519(i) => !is_recipient(&i.to_public().to_string(), recipients),
                    Identity::Ssh(_) => false,
                })
                .cloned()
                .collect(),
            origin: self.origin.clone(),
        }
    }
}

/// Whether one of `ids` opens `armored`: its header's file key unwraps and
/// the header's MAC holds. Nothing of the payload is read.
pub fn opens(ids: &Identities, armored: &str) -> bool {
    if ids.keys.is_empty() {
        return false;
    }
    let mut file = Vec::with_capacity(armored.len());
    if age::armor::ArmoredReader::new(armored.trim().as_bytes())
        .read_to_end(&mut file)
        .is_err()
        || check_stanzas(&file).is_err()
    {
        return false;
    }
    age::Decryptor::new_buffered(&file[..])
        .is_ok_and(|d| d.decrypt(ids.keys.iter().map(Identity::as_dyn)).is_ok())
}

/// Decrypts one armored age file. `what` names it in errors ("secret `X`").
pub fn decrypt(ids: &Identities, armored: &str, what: &str) -> Result<Secret, CryptoError> {
    let corrupt = |why: String| CryptoError::Corrupt {
        what: what.to_string(),
        why,
    };
    // The ciphertext, decoded: its stanzas are counted before age reads them.
    let mut file = Vec::with_capacity(armored.len());
    age::armor::ArmoredReader::new(armored.trim().as_bytes())
        .read_to_end(&mut file)
        .map_err(|e| corrupt(e.to_string()))?;
    check_stanzas(&file).map_err(corrupt)?;
    let decryptor = age::Decryptor::new_buffered(&file[..]).map_err(|e| corrupt(e.to_string()))?;
    let mut stream = decryptor
        .decrypt(ids.keys.iter().map(Identity::as_dyn))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => CryptoError::NotRecipient {
                what: what.to_string(),
                origin: ids.origin.clone(),
            },
            other => corrupt(other.to_string()),
        })?;
    // The plaintext is shorter than its armored ciphertext: with that much
    // room the buffer never grows, so no copy of it is freed unzeroed. The
    // value then gets an exact-size copy (a manifest holds thousands: the
    // ciphertext-sized buffers would stay ~10x larger than the values), and
    // the buffer is zeroed when dropped.
    let mut bytes = Zeroizing::new(Vec::with_capacity(armored.len()));
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(e.to_string()))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Secret::new(text.to_owned())),
        Err(_) => Err(corrupt("the value is not UTF-8 text".into())),
    }
}

/// Encrypts `value` to every recipient, armored.
pub fn encrypt(recipients: &[Recipient], value: &[u8]) -> Result<String, CryptoError> {
    if recipients.is_empty() {
        return Err(CryptoError::Encrypt(
            "the manifest lists no recipients: add one with `secretsync recipients add`".into(),
        ));
    }
    let err = |e: &dyn fmt::Display| CryptoError::Encrypt(e.to_string());
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_dyn))
        .map_err(|e| err(&e))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| err(&e))?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| err(&e))?;
    writer.write_all(value).map_err(|e| err(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| err(&e))?;
    String::from_utf8(out).map_err(|e| err(&e))
}

/// Keyed fingerprints of values. Without a key it shows none.
#[derive(Clone, Default)]
pub struct Fingerprinter {
    key: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprinter(keyed: {})", self.key.is_some())
    }
}

impl Fingerprinter {
    /// The key is the decrypted `fingerprint_key` text.
    pub fn new(key: Option<&Secret>) -> Self {
        Fingerprinter {
            key: key.map(|k| Zeroizing::new(k.expose().trim().as_bytes().to_vec())),
        }
    }

    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The full keyed digest (64 hex digits) of `bytes`, for detecting any
    /// change (saved plans); `None` without a key.
    pub fn digest(&self, bytes: &[u8]) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(b"secretsync-digest-v1\0");
        mac.update(bytes);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// A MAC (64 hex digits) of `bytes` for the purpose `label` ("saved-plan"),
    /// under a key of its own derived from the fingerprint key, so that no
    /// MAC can be passed off as a fingerprint or a digest; `None` without a key.
    pub fn authenticate(&self, label: &str, bytes: &[u8]) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut derive =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        derive.update(b"secretsync-mac-key-v1\0");
        derive.update(label.as_bytes());
        let subkey = Zeroizing::new(derive.finalize().into_bytes().to_vec());
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&subkey).expect("HMAC takes keys of any length");
        mac.update(bytes);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// `fp:` and 8 hex digits of HMAC-SHA256(key, value); `None` without a key.
    pub fn fingerprint(&self, value: &Secret) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(b"secretsync-fingerprint-v1\0");
        mac.update(value.expose().as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(format!("fp:{}", hex::encode(&digest[..4])))
    }
}

/// A new random key for fingerprints (64 hex characters).
pub fn new_fingerprint_key() -> Secret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom(&mut bytes[..]);
    Secret::new(hex::encode(&bytes[..]))
}

/// Fills `buf` from the OS random source (through age's own dependency).
pub fn getrandom(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rngs::OsRng.fill_bytes(buf);
}

/// Decrypts `items` (secret name, armored value), spread over up to 8
/// cores: one result per item, in order. [`crate::engine::decrypt_all`]
/// stops at the first failure; `undecryptable::decrypt_each` sets each
/// failure aside.
pub fn decrypt_many(ids: &Identities, items: &[(&str, &str)]) -> Vec<Result<Secret, CryptoError>> {
    decrypt_many_as(ids, items, &|name| format!("secret `{name}`"))
}

/// [`decrypt_many`], each item's errors naming it `what(name)`.
pub fn decrypt_many_as(
    ids: &Identities,
    items: &[(&str, &str)],
    what: &(dyn Fn(&str) -> String + Sync),
) -> Vec<Result<Secret, CryptoError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = items.len().div_ceil(threads).max(16);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(name, armored)| decrypt(ids, armored, &what(name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(items.chunks(chunk))
            .flat_map(|(h, part)| {
                h.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|_| Err(CryptoError::Encrypt("a decryption thread panicked".into())))
                        .collect()
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn pair() -> (Identities, Recipient) {
        let id = age::x25519::Identity::generate();
        let rec = Recipient::X25519(id.to_public());
        (
            Identities {
                keys: vec![Identity::X25519(id)],
                origin: "test".into(),
            },
            rec,
        )
    }

    #[test]
    fn round_trip() {
        let (ids, rec) = pair();
        let ct = encrypt(&[rec], "s3cr\"et\n".as_bytes()).unwrap();
        assert!(ct.starts_with(ARMOR_BEGIN));
        assert_eq!(
            decrypt(&ids, &ct, "secret `X`").unwrap().expose(),
            "s3cr\"et\n"
        );
    }

    /// The keys held outside a set of recipients, and whether they open a
    /// value: how doctor finds a value encrypted to another environment's key.
    #[test]
    fn keys_outside_the_recipients_and_what_they_open() {
        let (a, ra) = pair();
        let (b, rb) = pair();
        let both = Identities {
            keys: a.keys.iter().chain(&b.keys).cloned().collect(),
            origin: "test".into(),
        };
        let outside = both.outside(std::slice::from_ref(&ra));
        assert_eq!(outside.keys.len(), 1);
        assert_eq!(outside.publics(), b.publics());
        let to_a = encrypt(std::slice::from_ref(&ra), b"v").unwrap();
        let to_b = encrypt(&[rb], b"v").unwrap();
        assert!(!opens(&outside, &to_a));
        assert!(opens(&outside, &to_b));
        assert!(opens(&a, &to_a));
        assert!(!opens(&both, "not an age file"));
        assert!(both.outside(&[]).keys.len() == 2);
    }

    #[test]
    fn another_identity_is_not_a_recipient() {
        let (_, rec) = pair();
        let (other, _) = pair();
        let ct = encrypt(&[rec], b"v").unwrap();
        let e = decrypt(&other, &ct, "secret `X`").unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret `X` is not encrypted to the identity from test"
        );
    }

    #[test]
    fn identity_file_with_comments() {
        let id = age::x25519::Identity::generate();
        let text = format!(
            "# created: today\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        assert_eq!(parse_identities(&text, "f").unwrap().len(), 1);
        assert!(parse_identities("garbage", "f").is_err());
    }

    #[test]
    fn fingerprints_are_keyed() {
        let v = Secret::new("value".into());
        assert_eq!(Fingerprinter::default().fingerprint(&v), None);
        let a = Fingerprinter::new(Some(&Secret::new("k1".into())));
        let b = Fingerprinter::new(Some(&Secret::new("k2".into())));
        let fa = a.fingerprint(&v).unwrap();
        assert_eq!(fa.len(), 11);
        assert_ne!(Some(fa.clone()), b.fingerprint(&v));
        assert_eq!(Some(fa), a.fingerprint(&v));
    }

    #[test]
    fn recipients_parse() {
        let (_, rec) = pair();
        assert!(parse_recipient(&rec.to_string()).is_ok());
        assert!(parse_recipient("age1nope").is_err());
        assert!(parse_recipient("ssh-rsa AAAA").is_err());
    }
}
