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

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::kind::{same_as, Kind, Spec, TargetSpec};
use super::{Change, Check, Context, Observation, Observed, Op, Read, Target, TargetError};
use crate::manifest::{Fields, ManifestError};
use crate::remote::{Output, Runner, SshOptions, SSH_FIELDS};
use crate::secret::Secret;

/// `type: keychain` in the registry.
pub static KIND: KeychainKind = KeychainKind;

pub struct KeychainKind;

impl Kind for KeychainKind {
    fn name(&self) -> &'static str {
        "keychain"
    }

    fn withdrawn(&self, field: &str) -> Option<(&'static str, &'static str)> {
        (field == "security").then_some((
            "`security` is no longer read from the manifest: a manifest must not choose which program secretsync runs",
            "remove the line; secretsync runs /usr/bin/security, or the program in the environment variable SECRETSYNC_SECURITY of the run",
        ))
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "host",
            "port",
            "identity_file",
            "known_hosts",
            "known_hosts_file",
            "connect_timeout",
            "service",
            "keychain",
        ]
    }

    fn parse(&self, f: &Fields<'_>) -> Result<TargetSpec, ManifestError> {
        let ssh = match f.operand("host")? {
            Some(host) => Some(SshOptions::from_fields(f, host)?),
            None => {
                if let Some(field) = SSH_FIELDS.iter().find(|s| f.has(s)) {
                    return Err(f.key_error(
                        field,
                        format!("`{field}` needs `host`"),
                        Some("without `host` the keychain of this machine is used".into()),
                    ));
                }
                None
            }
        };
        let service = f.required_operand("service")?;
        Ok(TargetSpec::new(KeychainSpec {
            ssh,
            service,
            keychain: f.operand("keychain")?,
        }))
    }
}

/// `type: keychain`: generic passwords of one service in a macOS keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeychainSpec {
    /// `None`: this machine's keychain.
    pub ssh: Option<SshOptions>,
    pub service: String,
    pub keychain: Option<String>,
}

impl Spec for KeychainSpec {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(KeychainTarget::new(name, self, ctx)?))
    }

    /// An account: any text a `security` command line carries as one operand.
    fn check_key(&self, key: &str) -> Result<(), String> {
        if key.is_empty()
            || key.len() > MAX_ACCOUNT
            || key.chars().any(char::is_control)
            || key.starts_with('-')
        {
            Err("a keychain account must be 1 to 255 bytes without control characters, not starting with `-`".into())
        } else {
            Ok(())
        }
    }

    fn offending(&self, key: &str) -> Option<(usize, char)> {
        super::kind::first_bad(key, |k| !k.chars().any(char::is_control))
    }

    fn same(&self, other: &dyn Spec) -> bool {
        same_as(self, other)
    }

    fn local_files(&self, _manifest_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        self.ssh
            .as_ref()
            .map(|o| o.local_files())
            .unwrap_or_default()
    }
}

/// `security -i` reads lines into a 4096-byte buffer: 4095 bytes and the NUL.
/// A longer line is cut there and its rest run as the next command.
pub const MAX_LINE: usize = 4095;

/// The longest account a manifest allows (`TargetSpec::check_key`).
const MAX_ACCOUNT: usize = 255;

/// What `check_value` assumes `$HOME` adds to a `~/` keychain path before
/// any read told the host's real one.
const HOME_ALLOWANCE: usize = 1024;

/// Exit codes of `security`: the OSStatus modulo 256.
const EXIT_NOT_FOUND: i32 = 44; // errSecItemNotFound, -25300
const EXIT_DUPLICATE: i32 = 45; // errSecDuplicateItem, -25299
const EXIT_INTERACTION: i32 = 36; // errSecInteractionNotAllowed, -25308
const EXIT_NO_KEYCHAIN: i32 = 50; // errSecNoSuchKeychain, -25294

/// How many `find-generic-password` a read runs at once on one host.
const READ_WIDTH: usize = 8;

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
const READ_SCRIPT: &str = super::scripts::KEYCHAIN_READ;

/// `doctor`: the keychain's settings, which `security` shows only unlocked.
const CHECK_SCRIPT: &str = super::scripts::KEYCHAIN_CHECK;

/// Runs `security -i` (the program is the only argument; commands on stdin).
const WRITE_SCRIPT: &str = super::scripts::KEYCHAIN_WRITE;

/// One item as the read script addresses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Item {
    security: String,
    /// As written in the manifest (`~/` expanded on the host); empty for the
    /// default keychain.
    keychain: String,
    service: String,
    account: String,
}

/// What one `find-generic-password -g` said.
#[derive(Clone, Debug)]
enum Lookup {
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
struct HostRead {
    home: String,
    lookups: HashMap<Item, Lookup>,
}

/// Runs the read script for `items` (not batched: the write's conflict check).
async fn read_items(runner: &Runner, items: &[Item]) -> Result<HostRead, TargetError> {
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
fn parse_read(marker: &str, items: &[Item], out: &Output) -> Result<HostRead, String> {
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
fn lookup(code: i32, said: &[&[u8]]) -> Lookup {
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

/// Decodes what follows `password:` on a `find-generic-password -g` line, in
/// every form Apple's `print_buffer` writes:
/// - nothing: the empty password;
/// - `"text"`: printable ASCII; `\ooo` octal escapes are decoded (older
///   versions print a backslash as `\134` there);
/// - `0xHEX  "text"` or `0xHEX `: the hex digits are the exact bytes (the
///   quoted text, with escapes, is only for people).
///
/// The error never contains the value.
pub fn decode_password(rest: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    if let Some(hex) = rest.strip_prefix(b"0x") {
        let digits = hex.split(|&b| b == b' ').next().unwrap_or_default();
        if digits.len() % 2 != 0 {
            return Err("odd number of hex digits");
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        for pair in digits.chunks(2) {
            let hi = hex_digit(pair[0]).ok_or("not a hex digit")?;
            let lo = hex_digit(pair[1]).ok_or("not a hex digit")?;
            bytes.push(hi << 4 | lo);
        }
        return Ok(bytes);
    }
    if rest.len() >= 2 && rest[0] == b'"' && rest[rest.len() - 1] == b'"' {
        // `"` inside is not escaped: the text runs to the last quote.
        let inner = &rest[1..rest.len() - 1];
        let mut bytes = Zeroizing::new(Vec::with_capacity(inner.len()));
        let mut i = 0;
        while i < inner.len() {
            let b = inner[i];
            if b == b'\\' {
                let oct = inner.get(i + 1..i + 4).ok_or("a cut escape")?;
                let mut v: u32 = 0;
                for &d in oct {
                    if !(b'0'..=b'7').contains(&d) {
                        return Err("not an octal escape");
                    }
                    v = v * 8 + u32::from(d - b'0');
                }
                bytes.push(u8::try_from(v).map_err(|_| "an escape above 255")?);
                i += 4;
            } else {
                bytes.push(b);
                i += 1;
            }
        }
        return Ok(bytes);
    }
    Err("neither quoted text nor 0x hex")
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

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

fn quoted_len(arg: &str) -> usize {
    arg.len() + 2 + arg.bytes().filter(|&b| b == b'\\' || b == b'"').count()
}

/// Why `value` can never travel on a `security -i` line, whatever its length.
fn unsafe_bytes(value: &str) -> Option<&'static str> {
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
fn command_line(
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

/// What a read taught about line lengths, for `check_value`.
#[derive(Default)]
struct LineHints {
    /// `$HOME` on the host, for a `~/` keychain path.
    home: Option<String>,
    /// The longest quoted account this target was asked to read.
    account: Option<usize>,
}

/// Where `security` is on every Mac.
pub const SECURITY: &str = "/usr/bin/security";
/// Another `security` program (tests, a wrapper), chosen by whoever runs
/// secretsync, never by the manifest: the same path on every host.
pub const SECURITY_ENV: &str = "SECRETSYNC_SECURITY";

/// The `security` program to run: [`SECURITY`], or [`SECURITY_ENV`].
fn security_program() -> Result<String, TargetError> {
    match crate::environ::var(SECURITY_ENV).filter(|v| !v.is_empty()) {
        None => Ok(SECURITY.to_string()),
        Some(p) if p.starts_with('/') && !p.chars().any(char::is_control) => Ok(p),
        Some(_) => Err(TargetError::invalid(format!(
            "{SECURITY_ENV} must be an absolute path without control characters"
        ))
        .with_hint(format!("unset it to run {SECURITY}"))),
    }
}

pub struct KeychainTarget {
    name: String,
    service: String,
    /// As written; `None` is the default keychain.
    keychain: Option<String>,
    security: String,
    host_label: Option<String>,
    runner: Runner,
    /// The host: keychain targets of one host are read together.
    batch_key: String,
    hints: Mutex<LineHints>,
}

impl KeychainTarget {
    pub fn new(name: &str, spec: &KeychainSpec, ctx: &Context) -> Result<Self, TargetError> {
        Self::with_program(name, spec, ctx, &security_program()?)
    }

    /// [`KeychainTarget::new`] running `security` as the program (tests run
    /// targets with different stand-ins in one process).
    pub fn with_program(
        name: &str,
        spec: &KeychainSpec,
        ctx: &Context,
        security: &str,
    ) -> Result<Self, TargetError> {
        let bad = |field: &str, why: &str| {
            TargetError::invalid(format!("target `{name}`: `{field}` {why}"))
                .with_hint("fix the target in the manifest")
        };
        if spec.service.is_empty() || spec.service.chars().any(char::is_control) {
            return Err(bad(
                "service",
                "must be 1 or more characters without control characters",
            ));
        }
        if let Some(kc) = &spec.keychain {
            if kc.is_empty() || kc.chars().any(char::is_control) {
                return Err(bad("keychain", "must be a path without control characters"));
            }
        }
        let security = security.to_string();
        let (runner, key, host_label) = match &spec.ssh {
            None => (Runner::Local, "local".to_string(), None),
            Some(opts) => (
                Runner::Ssh(ctx.ssh.host(opts)),
                format!("ssh {opts:?}"),
                Some(crate::remote::label(opts)),
            ),
        };
        Ok(KeychainTarget {
            name: name.to_string(),
            service: spec.service.clone(),
            keychain: spec.keychain.clone(),
            security,
            host_label,
            runner,
            batch_key: key,
            hints: Mutex::new(LineHints::default()),
        })
    }

    fn item(&self, account: &str) -> Item {
        Item {
            security: self.security.clone(),
            keychain: self.keychain.clone().unwrap_or_default(),
            service: self.service.clone(),
            account: account.to_string(),
        }
    }

    /// The keychain argument as the host sees it (`~/` expanded), if any.
    fn keychain_on_host(&self, home: &str) -> Option<String> {
        self.keychain
            .as_ref()
            .map(|kc| match kc.strip_prefix("~/") {
                Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
                None => kc.clone(),
            })
    }

    fn remember(&self, home: &str, keys: &[String]) {
        let mut hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        hints.home = Some(home.to_string());
        hints.account = keys.iter().map(|k| quoted_len(k)).max();
    }

    /// "keychain `openclaw` on host admin@mac (login.keychain-db)" for errors.
    fn whose(&self) -> String {
        format!(
            "target `{}` (keychain service `{}` on {})",
            self.name,
            self.service,
            self.runner.place()
        )
    }

    /// Turns one item's failure into an error that says what to do.
    fn lookup_error(&self, account: &str, code: Option<i32>, said: &str) -> TargetError {
        let whose = self.whose();
        match code {
            Some(EXIT_INTERACTION) => self.locked(&whose),
            Some(126 | 127) => self.no_security(&whose, said),
            Some(EXIT_NO_KEYCHAIN) => TargetError::failed(format!(
                "{whose}: the keychain {} does not exist ({said})",
                self.keychain.as_deref().unwrap_or("(default)")
            ))
            .with_hint(
                "check `keychain:` on the target; `security list-keychains` on the Mac lists them",
            ),
            _ if account.is_empty() => TargetError::failed(format!(
                "{whose}: `security` failed with exit code {}: {said}",
                code_text(code)
            )),
            _ => TargetError::failed(format!(
                "{whose}: reading the item of account `{account}` failed with exit code {}: {said}",
                code_text(code)
            ))
            .with_hint("run the same `security find-generic-password` on the Mac to see why"),
        }
    }

    fn locked(&self, whose: &str) -> TargetError {
        let kc = self
            .keychain
            .as_deref()
            .unwrap_or("~/Library/Keychains/login.keychain-db");
        let how = match &self.host_label {
            Some(host) => {
                format!("in an SSH session on {host}, run `security unlock-keychain {kc}`")
            }
            None => format!("run `security unlock-keychain {kc}` (or log in on the Mac)"),
        };
        TargetError::auth(format!(
            "{whose}: the keychain is locked (\"User interaction is not allowed.\"): \
             `security` cannot ask for its password here"
        ))
        .with_hint(format!("{how}, then run secretsync again"))
    }

    fn no_security(&self, whose: &str, said: &str) -> TargetError {
        TargetError::failed(format!(
            "{whose}: `{}` cannot be run ({said}): the host is not a Mac or the `security` path is wrong",
            self.security
        ))
        .with_hint(format!("keychain targets need macOS, where `security` is {SECURITY}; {SECURITY_ENV} names another path"))
    }

    fn observe(&self, read: &HostRead, keys: &[String]) -> Result<Observed, TargetError> {
        let mut entries = std::collections::BTreeMap::new();
        for key in keys {
            match read.lookups.get(&self.item(key)) {
                Some(Lookup::Found(v)) => {
                    entries.insert(key.clone(), Observation::Value(v.clone()));
                }
                Some(Lookup::Absent) => {}
                Some(Lookup::NotText) => {
                    return Err(TargetError::failed(format!(
                        "{}: the item of account `{key}` holds bytes that are not UTF-8 text",
                        self.whose()
                    ))
                    .with_hint(format!(
                        "secretsync writes text only: delete the item \
                         (`security delete-generic-password -a {key} -s {}`) and apply again",
                        self.service
                    )))
                }
                Some(Lookup::Failed { code, said }) => {
                    return Err(self.lookup_error(key, *code, said))
                }
                None => {
                    return Err(TargetError::failed(format!(
                        "{}: the read did not cover account `{key}`",
                        self.whose()
                    )))
                }
            }
        }
        Ok(Observed {
            entries,
            exists: true,
            complete: false,
            snapshot: None,
            notes: Vec::new(),
            duplicated: Default::default(),
        })
    }

    /// Reads `keys` now, alone (the write's conflict check).
    async fn read_now(&self, keys: &[String]) -> Result<(Observed, String), TargetError> {
        let items: Vec<Item> = keys.iter().map(|k| self.item(k)).collect();
        let read = read_items(&self.runner, &items).await?;
        Ok((self.observe(&read, keys)?, read.home))
    }

    /// Why `security -i` reported failures, as one error.
    fn write_error(&self, out: &Output, total: usize) -> TargetError {
        let text = String::from_utf8_lossy(&out.stderr);
        let returned: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| is_returned_line(l))
            .collect();
        let statuses: Vec<i64> = returned
            .iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        let whose = self.whose();
        if out.code == Some(EXIT_INTERACTION)
            || statuses.contains(&-25308)
            || text.contains("User interaction is not allowed")
        {
            return self.locked(&whose);
        }
        if matches!(out.code, Some(126 | 127)) {
            return self.no_security(&whose, &out.stderr_line());
        }
        let failed = returned.len().max(1);
        let detail = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !is_returned_line(l))
            .unwrap_or("")
            .to_string();
        let kind_hint = if statuses.contains(&-25299) || out.code == Some(EXIT_DUPLICATE) {
            " (a duplicate item)"
        } else {
            ""
        };
        TargetError::failed(format!(
            "{whose}: `security -i` failed {failed} of {total} commands{kind_hint}, exit code {}: {detail}",
            code_text(out.code)
        ))
        .with_hint("some items may have been written: run `secretsync plan` to see the keychain's state")
    }
}

/// `NAME: returned STATUS`, what `security -i` prints after a failed command.
fn is_returned_line(line: &str) -> bool {
    match line.split_once(": returned ") {
        Some((name, status)) => {
            !name.contains(' ') && status.trim_start_matches('-').parse::<u64>().is_ok()
        }
        None => false,
    }
}

fn code_text(code: Option<i32>) -> String {
    code.map_or_else(|| "none (killed by a signal)".into(), |c| c.to_string())
}

#[async_trait]
impl Target for KeychainTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        let mut d = format!("keychain service {}", self.service);
        if let Some(kc) = &self.keychain {
            let _ = write!(d, " in {kc}");
        }
        if let Some(host) = &self.host_label {
            let _ = write!(d, " on {host}");
        }
        d
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        if let Some(why) = unsafe_bytes(value.expose()) {
            return Err(why.into());
        }
        let hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        let account = hints.account.unwrap_or(2 * MAX_ACCOUNT + 2);
        let keychain = match (&self.keychain, &hints.home) {
            (None, _) => 0,
            (Some(_), Some(home)) => {
                1 + quoted_len(&self.keychain_on_host(home).unwrap_or_default())
            }
            (Some(kc), None) => 1 + quoted_len(kc) + HOME_ALLOWANCE,
        };
        let fixed = "add-generic-password -U -a  -s  -w ".len()
            + account
            + quoted_len(&self.service)
            + keychain;
        let line = fixed + quoted_len(value.expose());
        if line > MAX_LINE {
            return Err(format!(
                "it is too long: its `security -i` line would be {line} bytes, over the {MAX_LINE}-byte limit \
                 (the value may take about {} bytes here)",
                MAX_LINE.saturating_sub(fixed + 2)
            ));
        }
        Ok(())
    }

    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError> {
        let items: Vec<Item> = keys.iter().map(|k| self.item(k)).collect();
        let read = read_items(&self.runner, &items).await?;
        self.remember(&read.home, keys);
        self.observe(&read, keys)
    }

    fn batch_key(&self) -> Option<String> {
        Some(self.batch_key.clone())
    }

    /// Every lookup of the host's keychain targets in one command.
    async fn read_batch(&self, group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
        let Some(members) = super::members::<KeychainTarget>(group) else {
            return super::read_each(group).await;
        };
        let mut items: Vec<Item> = Vec::new();
        for (t, keys) in &members {
            for k in *keys {
                let item = t.item(k);
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        match read_items(&self.runner, &items).await {
            Ok(read) => members
                .iter()
                .map(|(t, keys)| {
                    t.remember(&read.home, keys);
                    t.observe(&read, keys)
                })
                .collect(),
            Err(e) => vec![Err(e); members.len()],
        }
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let whose = self.whose();
        for c in changes {
            if let Some(v) = c.op.value() {
                if let Some(why) = unsafe_bytes(v.expose()) {
                    return Err(TargetError::invalid(format!(
                        "{whose}: the value of `{}` cannot be written: {why}",
                        c.key
                    )));
                }
            }
        }

        // The conflict check: every key written or seen by the plan still
        // holds what the plan read.
        let keys: Vec<String> = changes
            .iter()
            .map(|c| c.key.clone())
            .chain(observed.entries.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (now, home) = self.read_now(&keys).await?;
        let moved: Vec<&str> = keys
            .iter()
            .filter(|k| now.entries.get(*k) != observed.entries.get(*k))
            .map(String::as_str)
            .collect();
        if !moved.is_empty() {
            return Err(TargetError::changed_since_read(
                format!(
                    "{whose}: {} changed since the plan read {}; nothing was written",
                    moved
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if moved.len() == 1 { "it" } else { "them" }
                ),
                moved.iter().map(|k| k.to_string()).collect(),
            )
            .with_hint("run plan again"));
        }

        let keychain = self.keychain_on_host(&home);
        let mut script = crate::secret::SecretBuf::default();
        for c in changes {
            let line = command_line(&self.service, keychain.as_deref(), &c.key, &c.op);
            if line.len() > MAX_LINE {
                return Err(TargetError::invalid(format!(
                    "{whose}: the `security -i` line for `{}` would be {} bytes, over the {MAX_LINE}-byte limit; nothing was written",
                    c.key,
                    line.len()
                ))
                .with_hint("shorten the value, the account or the keychain path"));
            }
            script.push_str(&line);
            // A last line without a newline is dropped by `security -i`.
            script.push('\n');
        }
        let out = self
            .runner
            .sh(
                WRITE_SCRIPT,
                &[self.security.as_str()],
                script.as_str().as_bytes(),
                false,
            )
            .await?;
        let text = String::from_utf8_lossy(&out.stderr);
        if out.code != Some(0) || text.lines().any(|l| is_returned_line(l.trim())) {
            return Err(self.write_error(&out, changes.len()));
        }
        Ok(())
    }

    async fn check(&self) -> Vec<Check> {
        // `show-keychain-info` needs the keychain unlocked (exit 36 when it
        // is not) and reads no item.
        let keychain = self.keychain.as_deref().unwrap_or_default();
        let outcome = match self
            .runner
            .sh(
                CHECK_SCRIPT,
                &[self.security.as_str(), keychain],
                b"",
                false,
            )
            .await
        {
            Err(e) => Err(e),
            Ok(out) if out.code == Some(0) => Ok(format!(
                "`{}` runs on {} and the keychain {} is unlocked",
                self.security,
                self.runner.place(),
                self.keychain.as_deref().unwrap_or("(default)")
            )),
            Ok(out) => Err(self.lookup_error("", out.code, &out.stderr_line())),
        };
        vec![Check {
            what: "keychain unlocked".into(),
            outcome,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<Vec<u8>, &'static str> {
        decode_password(s.as_bytes()).map(|v| v.to_vec())
    }

    #[test]
    fn decodes_every_form_of_the_g_output() {
        assert_eq!(decode(r#" "plain text""#).unwrap(), b"plain text");
        assert_eq!(
            decode(r#" "with "quotes" inside""#).unwrap(),
            b"with \"quotes\" inside"
        );
        assert_eq!(decode(r#" "back\134slash""#).unwrap(), b"back\\slash");
        assert_eq!(
            decode(r#" 0x6261636B5C736C617368  "back\134slash""#).unwrap(),
            b"back\\slash"
        );
        assert_eq!(
            decode(" 0xC3A9E6BCA2 ").unwrap(),
            "é漢".as_bytes(),
            "all bytes unprintable: hex and one space"
        );
        assert_eq!(decode(" 0x7461620968 ").unwrap(), b"tab\th");
        assert_eq!(
            decode(" 0xc3a9 ").unwrap(),
            "é".as_bytes(),
            "lower-case hex"
        );
        assert_eq!(decode(" ").unwrap(), b"");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode(r#" "  spaces  ""#).unwrap(), b"  spaces  ");
    }

    #[test]
    fn malformed_lines_are_errors_without_the_value() {
        for bad in [
            " 0xABC",
            " 0xZZ",
            " plain",
            " \"open",
            r#" "\9""#,
            r#" "\12""#,
        ] {
            let err = decode(bad).unwrap_err();
            assert!(!err.contains("plain") && !err.contains("open"), "{err}");
        }
    }

    #[test]
    fn quoting_escapes_backslash_and_double_quote_only() {
        assert_eq!(quote(r#"a"b\c 'd' $e"#), r#""a\"b\\c 'd' $e""#);
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quoted_len(r#"a"b\c"#), quote(r#"a"b\c"#).len());
    }

    #[test]
    fn command_lines_never_ask_for_a_dialog() {
        let v = Secret::new("s3cr\"t".into());
        let line = command_line("svc", Some("/k.db"), "ACCT", &Op::Update(v));
        assert_eq!(
            line.as_str(),
            r#"add-generic-password -U -a "ACCT" -s "svc" -w "s3cr\"t" "/k.db""#
        );
        assert!(!line.contains(" -T") && !line.contains(" -A"));
        let del = command_line("svc", None, "ACCT", &Op::Delete);
        assert_eq!(
            del.as_str(),
            r#"delete-generic-password -a "ACCT" -s "svc""#
        );
    }

    #[test]
    fn returned_lines_are_recognised() {
        assert!(is_returned_line("add-generic-password: returned -25308"));
        assert!(is_returned_line("add-generic-password: returned 2"));
        assert!(!is_returned_line("security: returned to sender maybe"));
        assert!(!is_returned_line("password: \"x: returned 1\""));
    }

    fn output(code: i32, stdout: &str) -> Output {
        Output {
            code: Some(code),
            stdout: Zeroizing::new(stdout.as_bytes().to_vec()),
            stderr: Zeroizing::new(Vec::new()),
        }
    }

    fn item(account: &str) -> Item {
        Item {
            security: "security".into(),
            keychain: String::new(),
            service: "svc".into(),
            account: account.into(),
        }
    }

    #[test]
    fn the_read_output_is_split_per_item() {
        let m = "secretsync-00";
        let text = format!(
            "{m} home /Users/me\n\
             {m} item 0\npassword: \"one\"\n\n{m} end 0 0\n\
             {m} item 1\nsecurity: SecKeychainSearchCopyNext: The specified item could not be found in the keychain.\n\n{m} end 1 44\n\
             {m} item 2\n\n{m} end 2 36\n\
             {m} item 3\npassword: 0xFF \n\n{m} end 3 0\n"
        );
        let items = [item("A"), item("B"), item("C"), item("D")];
        let read = parse_read(m, &items, &output(0, &text)).unwrap();
        assert_eq!(read.home, "/Users/me");
        assert!(matches!(&read.lookups[&items[0]], Lookup::Found(v) if v.expose() == "one"));
        assert!(matches!(read.lookups[&items[1]], Lookup::Absent));
        assert!(matches!(
            read.lookups[&items[2]],
            Lookup::Failed { code: Some(36), .. }
        ));
        assert!(matches!(read.lookups[&items[3]], Lookup::NotText));
    }

    #[test]
    fn a_cut_read_is_an_error() {
        let m = "secretsync-00";
        let text = format!("{m} home /h\n{m} item 0\npassword: \"x\"\n");
        assert!(parse_read(m, &[item("A")], &output(0, &text)).is_err());
        assert!(parse_read(m, &[item("A")], &output(0, "")).is_err());
        assert!(parse_read(m, &[], &output(2, "")).is_err());
    }

    #[test]
    fn a_failure_diagnostic_never_shows_a_password_line() {
        let said: Vec<&[u8]> = vec![b"password: \"canary\"", b"security: something broke"];
        let l = lookup(51, &said);
        assert!(
            matches!(l, Lookup::Failed { ref said, .. } if said == "security: something broke")
        );
        let only: Vec<&[u8]> = vec![b"password: \"canary\""];
        assert!(
            matches!(lookup(51, &only), Lookup::Failed { ref said, .. } if !said.contains("canary"))
        );
    }

    fn target(keychain: Option<&str>) -> KeychainTarget {
        let spec = KeychainSpec {
            ssh: None,
            service: "svc".into(),
            keychain: keychain.map(String::from),
        };
        KeychainTarget::new("mac", &spec, &Context::new(".".into())).unwrap()
    }

    #[test]
    fn check_value_refuses_what_security_i_cannot_carry() {
        let t = target(None);
        for bad in ["a\nb", "a\rb", "a\0b", "end\n"] {
            assert!(t.check_value(&Secret::new(bad.into())).is_err(), "{bad:?}");
        }
        for ok in ["", "tab\there", "quote \" back \\ $x 'y'", "é 漢字 🔑"] {
            assert!(t.check_value(&Secret::new(ok.into())).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn check_value_measures_the_whole_line() {
        let t = target(Some("/k.db"));
        t.remember("/Users/me", &["ACCOUNT".to_string()]);
        let fixed = r#"add-generic-password -U -a "ACCOUNT" -s "svc" -w  "/k.db""#.len();
        let fits = "x".repeat(MAX_LINE - fixed - 2);
        assert!(t.check_value(&Secret::new(fits.clone())).is_ok());
        let line = command_line("svc", Some("/k.db"), "ACCOUNT", &Op::Add(Secret::new(fits)));
        assert_eq!(line.len(), MAX_LINE);
        let over = "x".repeat(MAX_LINE - fixed - 1);
        let err = t.check_value(&Secret::new(over)).unwrap_err();
        assert!(err.contains("4095"), "{err}");
        // Escapes count: every `"` takes two bytes on the line.
        let quotes = "\"".repeat((MAX_LINE - fixed - 2) / 2 + 1);
        assert!(t.check_value(&Secret::new(quotes)).is_err());
    }

    #[test]
    fn describe_names_service_keychain_and_host() {
        assert_eq!(target(None).describe(), "keychain service svc");
        assert_eq!(
            target(Some("~/k.db")).describe(),
            "keychain service svc in ~/k.db"
        );
    }

    #[test]
    fn tilde_is_expanded_with_the_hosts_home() {
        let t = target(Some("~/Library/Keychains/x.keychain-db"));
        assert_eq!(
            t.keychain_on_host("/Users/admin/").as_deref(),
            Some("/Users/admin/Library/Keychains/x.keychain-db")
        );
        assert_eq!(target(None).keychain_on_host("/h"), None);
    }
}
