//! Review mode: `secretsync plan --base REF`, for a manifest changed by a
//! pull request that is not yet trusted.
//!
//! The base (the reviewed, merged manifest) decides what may be contacted
//! and how: target definitions and `fingerprint_key` come from it. The head
//! (the change under review) says what is wanted: secrets and their target
//! lists. A target that is new in the head, or defined differently there, is
//! not contacted: it is listed with the diff of its definition and will be
//! contacted on merge, once its definition has been reviewed. A changed
//! `fingerprint_key` hides every fingerprint (a key chosen by the author
//! would make them a guessing oracle). Per secret, the review says whether
//! its value changed between base and head, comparing the decrypted values
//! in memory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crypto::{self, Identities};
use crate::engine::{Engine, Options};
use crate::error::Error;
use crate::manifest::{self, Manifest, SecretDef, TargetSpec, ValueSource};
use crate::neutral;
use crate::render::{md_code, md_escape as md_cell, md_fence, Style};
use crate::secret::Secret;

/// Where the base manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// A git revision, read in the manifest's repository.
    Git(String),
    /// A file holding the base manifest.
    File(PathBuf),
}

impl BaseSource {
    /// `file:PATH` is a file; anything else is a git revision, which may not
    /// start with `-` (it would read as an option) nor hold `:`, whitespace
    /// or control characters. A file is never preferred to a revision of the
    /// same name: a pull request can commit a file named `origin/main`.
    pub fn parse(arg: &str) -> Result<BaseSource, Error> {
        if let Some(path) = arg.strip_prefix("file:") {
            if path.is_empty() {
                return Err(Error::usage(
                    "--base file: names no file",
                    "give the file holding the base manifest: --base file:PATH",
                ));
            }
            return Ok(BaseSource::File(PathBuf::from(path)));
        }
        let hint = "give a git revision such as origin/main, or a file holding the base manifest as file:PATH";
        if arg.is_empty() || arg.starts_with('-') {
            return Err(Error::usage(
                format!(
                    "--base {}: a revision cannot be empty or start with `-`",
                    neutral::quoted(arg)
                ),
                hint,
            ));
        }
        if arg
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(Error::usage(
                format!(
                    "--base {} is not a git revision (no `:`, spaces or control characters)",
                    neutral::quoted(arg)
                ),
                hint,
            ));
        }
        Ok(BaseSource::Git(arg.to_string()))
    }
}

/// The base as loaded: its manifest, and where it came from.
pub struct Base {
    pub manifest: Manifest,
    /// `origin/main`, or the file as given.
    pub label: String,
    /// The commit a revision named (full id); `None` for a file.
    pub commit: Option<String>,
}

/// The git work tree holding the manifest at `head`, if any: the checkout
/// whose files a pull request writes.
pub fn checkout_of(head: &Path) -> Option<PathBuf> {
    let top = git(&manifest_dir(head), &["rev-parse", "--show-toplevel"], "").ok()?;
    let top = String::from_utf8(top).ok()?;
    std::fs::canonicalize(top.trim_end_matches('\n')).ok()
}

fn manifest_dir(head: &Path) -> PathBuf {
    match head.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads the base manifest: from a file (outside the checkout: a file in it
/// is the pull request's), or from `git` in the head manifest's repository,
/// run with a fixed argv (`rev-parse`, then `cat-file blob`, which applies
/// no filters or pager).
pub fn load_base(base: &BaseSource, head: &Path) -> Result<Base, Error> {
    match base {
        BaseSource::File(p) => {
            if let (Some(root), Ok(full)) = (checkout_of(head), std::fs::canonicalize(p)) {
                if full.starts_with(&root) {
                    return Err(Error::usage(
                        format!(
                            "--base file:{}: the file is inside the checkout ({}), which the change under review can write",
                            neutral::path(p),
                            neutral::path(&root)
                        ),
                        "give the base as a git revision (--base origin/main), or a file outside the checkout",
                    ));
                }
            }
            Ok(Base {
                manifest: manifest::load(p)?,
                label: p.display().to_string(),
                commit: None,
            })
        }
        BaseSource::Git(rev) => {
            let dir = manifest_dir(head);
            let name = head
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::other(format!("{}: not a file name", head.display())))?;
            let prefix = git(&dir, &["rev-parse", "--show-prefix"], rev)?;
            let path = format!("{}{name}", String::from_utf8_lossy(&prefix).trim_end());
            let commit = git(
                &dir,
                &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")],
                rev,
            )
            .map_err(|_| {
                Error::usage(
                    format!("--base {rev}: no such revision in the repository of {}", head.display()),
                    "fetch it first (actions/checkout needs `fetch-depth: 0`, or `git fetch origin main`)",
                )
            })?;
            let commit = String::from_utf8_lossy(&commit).trim().to_string();
            let text = git(
                &dir,
                &["cat-file", "blob", &format!("{commit}:{path}")],
                rev,
            )
            .map_err(|_| {
                Error::usage(
                    format!("--base {rev}: {path} does not exist at {rev}"),
                    "a new manifest has no base to review against; plan it without --base",
                )
            })?;
            if text.len() as u64 > manifest::MAX_BYTES {
                return Err(Error::other(format!(
                    "--base {rev}: {path} is larger than a manifest may be"
                )));
            }
            let text = String::from_utf8(text)
                .map_err(|_| Error::other(format!("--base {rev}: {path} is not UTF-8 text")))?;
            Ok(Base {
                manifest: manifest::parse(Path::new(&format!("{rev}:{path}")), text)?,
                label: rev.clone(),
                commit: Some(commit),
            })
        }
    }
}

/// Runs `git -C DIR ARGS` with no stdin and none of secretsync's identity
/// or token variables; returns its stdout.
fn git(dir: &Path, args: &[&str], rev: &str) -> Result<Vec<u8>, Error> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("SECRETSYNC_") || k.starts_with("SOPS_") || k.starts_with("RAILWAY_") {
            cmd.env_remove(k.as_ref());
        }
    }
    let out = cmd.output().map_err(|e| Error::Other {
        message: format!("--base {rev}: cannot run git: {e}"),
        hint: Some("install git, or give the base manifest as a file (file:PATH)".into()),
    })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Other {
            message: format!(
                "--base {rev}: git {} failed: {}",
                args.first().copied().unwrap_or(""),
                why.trim()
            ),
            hint: None,
        });
    }
    Ok(out.stdout)
}

// ---- what changed between base and head ---------------------------------------

/// How a target's definition stands in the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetChange {
    New,
    Changed,
    /// Defined as in the base, but a file it reads is the change's.
    FilesChanged,
    Removed,
}

/// A target that review mode does not contact.
#[derive(Debug, Clone)]
pub struct NotContacted {
    pub name: String,
    pub kind: &'static str,
    pub change: TargetChange,
    /// The head's secrets that name it.
    pub secrets: Vec<String>,
    /// The files it reads that the change wrote (`PATH: why`).
    pub files: Vec<String>,
    /// A unified diff of its definition, base to head, every value quoted.
    pub diff: String,
}

/// How a secret's value stands in the head against the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueChange {
    Changed,
    Unchanged,
    Added,
    Removed,
    /// One of the two values cannot be decrypted (the reason says which).
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct SecretChange {
    pub name: String,
    pub value: ValueChange,
    /// A changed or added value that is a copy of the ciphertext of another
    /// base secret: its name and its targets in the base.
    pub copy_of: Option<(String, Vec<String>)>,
    pub targets_added: Vec<String>,
    pub targets_removed: Vec<String>,
}

/// All review mode adds to a plan.
#[derive(Debug, Clone)]
pub struct Review {
    pub base: String,
    pub base_kind: &'static str,
    /// The commit a revision named.
    pub base_commit: Option<String>,
    /// The secrets whose value this change chose: no fingerprint of theirs
    /// is shown.
    pub chosen: BTreeSet<String>,
    /// Why fingerprints are hidden, when they are.
    pub fingerprints_hidden: Option<String>,
    /// Recipients (public keys) the change adds and removes: an added one
    /// can decrypt every value encrypted to it once merged.
    pub recipients_added: Vec<String>,
    pub recipients_removed: Vec<String>,
    pub not_contacted: Vec<NotContacted>,
    pub secrets: Vec<SecretChange>,
}

impl Review {
    /// Whether merging would change something this plan could not show: a
    /// new or changed target (its writes are not planned here).
    pub fn pending(&self) -> bool {
        self.not_contacted
            .iter()
            .any(|t| t.change != TargetChange::Removed)
    }

    fn count(&self, f: impl Fn(&ValueChange) -> bool) -> usize {
        self.secrets.iter().filter(|s| f(&s.value)).count()
    }
}

/// Opens the engine for a review of the manifest in `opts` against `base`:
/// it reads only the targets whose definition is the same in both.
pub fn open(opts: &Options, base: &str) -> Result<(Engine, Review), Error> {
    let source = BaseSource::parse(base)?;
    let head = manifest::load(&opts.manifest)?;
    let Base {
        manifest: base_manifest,
        label,
        commit,
    } = load_base(&source, &opts.manifest)?;
    let checkout = checkout_of(&opts.manifest);

    // A target removed by the change is still one to review.
    let selection = crate::selection::Selection::checked(
        &opts.targets,
        |t| head.targets.contains_key(t) || base_manifest.targets.contains_key(t),
        head.targets.keys().map(String::as_str),
        crate::selection::Wording::InFile(&opts.manifest),
    )?;
    let selected = |name: &str| selection.contains(name);

    let head_fields = raw_fields(&head.source);
    let base_fields = raw_fields(&base_manifest.source);
    let mut contacted: IndexMap<String, TargetSpec> = IndexMap::new();
    let mut not_contacted = Vec::new();
    let secrets_on = |name: &str| -> Vec<String> {
        head.secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| t == name))
            .map(|s| s.name.clone())
            .collect()
    };
    for (name, spec) in &head.targets {
        if !selected(name) {
            continue;
        }
        let before = base_manifest.targets.get(name);
        let (h, b) = (head_fields.get(name), base_fields.get(name));
        let same = before == Some(spec) && h.is_some() && h == b;
        if same {
            // The definition is the base's; the files it reads must be too.
            let files = checkout.as_deref().map_or_else(Vec::new, |root| {
                head_written_files(spec, &head.dir(), root, commit.as_deref())
            });
            if files.is_empty() {
                contacted.insert(name.clone(), spec.clone());
            } else {
                not_contacted.push(NotContacted {
                    name: name.clone(),
                    kind: spec.type_name(),
                    change: TargetChange::FilesChanged,
                    secrets: secrets_on(name),
                    files,
                    diff: String::new(),
                });
            }
            continue;
        }
        not_contacted.push(NotContacted {
            name: name.clone(),
            kind: spec.type_name(),
            change: if before.is_none() {
                TargetChange::New
            } else {
                TargetChange::Changed
            },
            secrets: secrets_on(name),
            files: Vec::new(),
            diff: definition_diff(name, b, h),
        });
    }
    for (name, spec) in &base_manifest.targets {
        if selected(name) && !head.targets.contains_key(name) {
            not_contacted.push(NotContacted {
                name: name.clone(),
                kind: spec.type_name(),
                change: TargetChange::Removed,
                secrets: Vec::new(),
                files: Vec::new(),
                diff: definition_diff(name, base_fields.get(name), None),
            });
        }
    }

    let identities = crypto::find_identities(opts.identity.as_deref()).ok();
    let fingerprints_hidden = fingerprint_key_change(&base_manifest, &head, identities.as_ref());
    let secrets = value_changes(&base_manifest, &head, identities.as_ref())?;
    // The values this change chose: no fingerprint of theirs under the
    // base's key may be shown (it would test the author's guesses).
    let chosen: BTreeSet<String> = secrets
        .iter()
        .filter(|s| !matches!(s.value, ValueChange::Unchanged | ValueChange::Removed))
        .map(|s| s.name.clone())
        .collect();

    // The manifest the engine plans: the base's definitions of the targets
    // both agree on, the head's secrets on those targets.
    let planned = Manifest {
        path: head.path.clone(),
        source: head.source.clone(),
        recipients: head.recipients.clone(),
        // Like `previous`, keyed fingerprints the head's author cannot
        // compute without the base's key.
        removed: head.removed.clone(),
        rotate_every: head.rotate_every,
        fingerprint_key: if fingerprints_hidden.is_some() {
            None
        } else {
            base_manifest.fingerprint_key.clone()
        },
        secrets: head
            .secrets
            .values()
            .map(|s| {
                let def = SecretDef {
                    targets: s
                        .targets
                        .iter()
                        .filter(|t| contacted.contains_key(t.as_str()))
                        .cloned()
                        .collect(),
                    ..s.clone()
                };
                (s.name.clone(), def)
            })
            .collect(),
        targets: contacted,
    };
    let engine_opts = Options {
        targets: Vec::new(),
        ..opts.clone()
    };
    let mut engine = Engine::with_manifest(&engine_opts, planned)?;
    engine.hide_fingerprints_of(chosen.clone());
    Ok((
        engine,
        Review {
            base: label,
            base_kind: match source {
                BaseSource::Git(_) => "git",
                BaseSource::File(_) => "file",
            },
            base_commit: commit,
            fingerprints_hidden,
            chosen,
            recipients_added: recipients_diff(&head, &base_manifest),
            recipients_removed: recipients_diff(&base_manifest, &head),
            not_contacted,
            secrets,
        },
    ))
}

/// The files on this machine that `spec` reads and the change under review
/// could have written: inside the checkout (or reached through a link in
/// it) and not byte for byte the base's. Each as `PATH: why`.
fn head_written_files(
    spec: &TargetSpec,
    dir: &Path,
    root: &Path,
    commit: Option<&str>,
) -> Vec<String> {
    spec.local_files(dir)
        .into_iter()
        .filter_map(|p| {
            file_change(&p, root, commit).map(|why| format!("{}: {why}", neutral::path(&p)))
        })
        .collect()
}

/// `.` and `..` taken out of an absolute path, without touching the disk.
fn lexical(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Why the file at `p` is the change's rather than the base's, if it is.
fn file_change(p: &Path, root: &Path, commit: Option<&str>) -> Option<&'static str> {
    let lex = lexical(p);
    let real = std::fs::canonicalize(&lex).ok();
    let lex_inside = lex.starts_with(root);
    let real_inside = real.as_ref().is_some_and(|r| r.starts_with(root));
    if !lex_inside && !real_inside {
        return None;
    }
    if real.as_ref().is_some_and(|r| *r != lex) {
        return Some("a symlink (or under one) in the checkout");
    }
    let rel = lex.strip_prefix(root).ok()?.to_string_lossy().into_owned();
    let exists = std::fs::symlink_metadata(&lex).is_ok();
    let Some(commit) = commit else {
        return exists
            .then_some("in the checkout, and a file base gives nothing to compare it with");
    };
    let entry = git(root, &["ls-tree", commit, "--", &rel], "").unwrap_or_default();
    let entry = String::from_utf8_lossy(&entry);
    match (exists, entry.trim().is_empty()) {
        (false, true) => None,
        (false, false) => Some("removed by this change"),
        (true, true) => Some("added by this change"),
        (true, false) => {
            if !entry.starts_with("100") {
                return Some("not a regular file at the base");
            }
            let Ok(head) = crate::targets::file::read_regular(&lex) else {
                return Some("not a regular file of at most 16 MiB");
            };
            let Ok(base) = git(root, &["cat-file", "blob", &format!("{commit}:{rel}")], "") else {
                return Some("not readable at the base");
            };
            let base = zeroize::Zeroizing::new(base);
            (head.as_deref().map(|h| h.as_slice()) != Some(base.as_slice()))
                .then_some("modified by this change")
        }
    }
}

/// The recipients of `a` that `b` does not list.
fn recipients_diff(a: &Manifest, b: &Manifest) -> Vec<String> {
    let theirs: BTreeSet<String> = b.recipients.iter().map(ToString::to_string).collect();
    a.recipients
        .iter()
        .map(ToString::to_string)
        .filter(|r| !theirs.contains(r))
        .collect()
}

/// A scalar of a target definition, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
enum Field {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Deserialize)]
struct RawTargets {
    #[serde(default)]
    targets: IndexMap<String, IndexMap<String, Field>>,
}

/// Each target's fields as written (the manifest loaded, so this parses).
fn raw_fields(source: &str) -> IndexMap<String, IndexMap<String, Field>> {
    serde_saphyr::from_str::<RawTargets>(source)
        .map(|r| r.targets)
        .unwrap_or_default()
}

/// A definition as lines `field: "value"`: values JSON-quoted, so that no
/// newline or control character of the manifest reaches the output raw.
fn definition_lines(fields: Option<&IndexMap<String, Field>>) -> String {
    let Some(fields) = fields else {
        return String::new();
    };
    let mut out = String::new();
    for (k, v) in fields {
        let value = match v {
            Field::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        out.push_str(&format!(
            "{}: {value}\n",
            serde_json::to_string(k)
                .unwrap_or_default()
                .trim_matches('"')
        ));
    }
    out
}

fn definition_diff(
    name: &str,
    base: Option<&IndexMap<String, Field>>,
    head: Option<&IndexMap<String, Field>>,
) -> String {
    let (a, b) = (definition_lines(base), definition_lines(head));
    let quoted = serde_json::to_string(name).unwrap_or_default();
    let from = if base.is_some() {
        format!("base targets.{quoted}")
    } else {
        "/dev/null (not in base)".to_string()
    };
    let to = if head.is_some() {
        format!("head targets.{quoted}")
    } else {
        "/dev/null (removed in head)".to_string()
    };
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(100)
        .header(&from, &to)
        .missing_newline_hint(false)
        .to_string()
}

/// Why fingerprints must be hidden, if the head's `fingerprint_key` is not
/// the base's (compared decrypted: a rekey re-encrypts the same key).
fn fingerprint_key_change(
    base: &Manifest,
    head: &Manifest,
    ids: Option<&Identities>,
) -> Option<String> {
    const WHY: &str = "so that a key chosen by the author of a change cannot turn the plan's fingerprints into a guessing oracle; they show again once the change is merged";
    match (&base.fingerprint_key, &head.fingerprint_key) {
        (None, None) => None,
        (Some(a), Some(b)) if a.trim() == b.trim() => None,
        (None, Some(_)) => Some(format!(
            "this change adds a fingerprint_key: fingerprints are hidden {WHY}"
        )),
        (Some(_), None) => Some(format!(
            "this change removes the fingerprint_key: fingerprints are hidden {WHY}"
        )),
        (Some(a), Some(b)) => {
            let same = ids.is_some_and(|ids| {
                match (
                    crypto::decrypt(ids, a, "the base's fingerprint_key"),
                    crypto::decrypt(ids, b, "the head's fingerprint_key"),
                ) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                }
            });
            (!same).then(|| {
                format!("this change replaces the fingerprint_key (or it cannot be decrypted): fingerprints are hidden {WHY}")
            })
        }
    }
}

/// An armored value without its white space: two copies of one ciphertext
/// compare equal however they were indented or wrapped.
fn cipher_text(armored: &str) -> String {
    armored.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Per secret of base and head: whether its value changed. Values whose
/// armored text is the same are the same without decrypting; the others are
/// decrypted (spread over the cores) and compared in memory. A changed or
/// added value that is a copy of another base secret's ciphertext says so
/// (its provenance); one that holds the base's `fingerprint_key` is refused.
fn value_changes(
    base: &Manifest,
    head: &Manifest,
    ids: Option<&Identities>,
) -> Result<Vec<SecretChange>, Error> {
    // (name, which side, armored) of every value that must be decrypted.
    let mut work: Vec<(String, &'static str, &str)> = Vec::new();
    for (name, h) in &head.secrets {
        match base.secrets.get(name) {
            Some(b) => match (&b.value, &h.value) {
                (ValueSource::Encrypted(x), ValueSource::Encrypted(y)) if x.trim() == y.trim() => {}
                (b, h) => {
                    for (side, v) in [("base", b), ("head", h)] {
                        if let ValueSource::Encrypted(a) = v {
                            work.push((name.clone(), side, a));
                        }
                    }
                }
            },
            // Added: decrypted only to be compared with the fingerprint key.
            None if base.fingerprint_key.is_some() => {
                if let ValueSource::Encrypted(a) = &h.value {
                    work.push((name.clone(), "head", a));
                }
            }
            None => {}
        }
    }
    let clear = decrypt_each(ids, &work);
    let value = |name: &str, side: &str, v: &ValueSource| -> Result<Secret, String> {
        match v {
            ValueSource::Plain(p) => Ok(Secret::new(p.clone())),
            ValueSource::Encrypted(_) => clear
                .get(&(name.to_string(), side.to_string()))
                .cloned()
                .unwrap_or_else(|| Err("not decrypted".into())),
        }
    };
    // The base's fingerprint key, decrypted: no head value may hold it.
    let key = match (&base.fingerprint_key, ids) {
        (Some(k), Some(ids)) => crypto::decrypt(ids, k, "the base's fingerprint_key").ok(),
        _ => None,
    };
    // Base ciphertexts → the base secret holding each.
    let base_ciphers: std::collections::HashMap<String, &SecretDef> = base
        .secrets
        .values()
        .filter_map(|s| match &s.value {
            ValueSource::Encrypted(a) => Some((cipher_text(a), s)),
            ValueSource::Plain(_) => None,
        })
        .collect();
    let key_cipher = base.fingerprint_key.as_deref().map(cipher_text);

    let mut out = Vec::new();
    for (name, h) in &head.secrets {
        let copy_of = match &h.value {
            ValueSource::Encrypted(a) => {
                let c = cipher_text(a);
                if key_cipher.as_ref() == Some(&c) {
                    return Err(key_copy(name));
                }
                base_ciphers
                    .get(&c)
                    .filter(|b| b.name != *name)
                    .map(|b| (b.name.clone(), b.targets.clone()))
            }
            ValueSource::Plain(_) => None,
        };
        if let Some(key) = &key {
            if let Ok(v) = value(name, "head", &h.value) {
                if v.expose().trim() == key.expose().trim() {
                    return Err(key_copy(name));
                }
            }
        }
        let Some(b) = base.secrets.get(name) else {
            out.push(SecretChange {
                name: name.clone(),
                value: ValueChange::Added,
                copy_of,
                targets_added: h.targets.clone(),
                targets_removed: Vec::new(),
            });
            continue;
        };
        let same_text = matches!((&b.value, &h.value),
            (ValueSource::Encrypted(x), ValueSource::Encrypted(y)) if x.trim() == y.trim());
        let change = if same_text {
            ValueChange::Unchanged
        } else {
            match (value(name, "base", &b.value), value(name, "head", &h.value)) {
                (Ok(x), Ok(y)) if x == y => ValueChange::Unchanged,
                (Ok(_), Ok(_)) => ValueChange::Changed,
                (Err(why), _) => ValueChange::Unknown(format!("the base's value: {why}")),
                (_, Err(why)) => ValueChange::Unknown(format!("the head's value: {why}")),
            }
        };
        let (bt, ht): (BTreeSet<&String>, BTreeSet<&String>) =
            (b.targets.iter().collect(), h.targets.iter().collect());
        out.push(SecretChange {
            name: name.clone(),
            copy_of: if change == ValueChange::Unchanged {
                None
            } else {
                copy_of
            },
            value: change,
            targets_added: h
                .targets
                .iter()
                .filter(|t| !bt.contains(t))
                .cloned()
                .collect(),
            targets_removed: b
                .targets
                .iter()
                .filter(|t| !ht.contains(t))
                .cloned()
                .collect(),
        });
    }
    for (name, b) in &base.secrets {
        if !head.secrets.contains_key(name) {
            out.push(SecretChange {
                name: name.clone(),
                value: ValueChange::Removed,
                copy_of: None,
                targets_added: Vec::new(),
                targets_removed: b.targets.clone(),
            });
        }
    }
    Ok(out)
}

fn key_copy(name: &str) -> Error {
    crate::engine::key_copy_error(name)
}

type Decrypted = std::collections::HashMap<(String, String), Result<Secret, String>>;

fn decrypt_each(ids: Option<&Identities>, work: &[(String, &'static str, &str)]) -> Decrypted {
    let Some(ids) = ids else {
        return work
            .iter()
            .map(|(n, s, _)| {
                (
                    (n.clone(), s.to_string()),
                    Err("no identity to decrypt it".to_string()),
                )
            })
            .collect();
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = work.len().div_ceil(threads).max(16);
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(name, side, armored)| {
                            let what = format!("the {side}'s secret `{name}`");
                            (
                                (name.clone(), side.to_string()),
                                crypto::decrypt(ids, armored, &what).map_err(|e| e.to_string()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

// ---- output ------------------------------------------------------------------------

/// A name printed in text output: quoted when it holds anything that could
/// move the cursor or fake a line.
fn name_text(s: &str) -> String {
    neutral::quoted(s)
}

fn change_text(t: &NotContacted) -> &'static str {
    match t.change {
        TargetChange::New => "new in this change: not contacted in review, will be on merge",
        TargetChange::Changed => {
            "definition changed in this change: not contacted in review, will be on merge"
        }
        TargetChange::FilesChanged => {
            "reads files this change wrote: not contacted in review, will be on merge"
        }
        TargetChange::Removed => "removed in this change: not contacted",
    }
}

fn value_text(v: &ValueChange) -> String {
    match v {
        ValueChange::Changed => "value changed".into(),
        ValueChange::Unchanged => "value unchanged".into(),
        ValueChange::Added => "added".into(),
        ValueChange::Removed => "removed".into(),
        ValueChange::Unknown(why) => format!("value not compared: {why}"),
    }
}

fn targets_note(s: &SecretChange, name: impl Fn(&str) -> String) -> String {
    let mut parts = Vec::new();
    if let Some((from, on)) = &s.copy_of {
        parts.push(if on.is_empty() {
            format!("now holds the same value as {}", name(from))
        } else {
            format!(
                "now holds the same value as {} (on {})",
                name(from),
                on.iter().map(|t| name(t)).collect::<Vec<_>>().join(", ")
            )
        });
    }
    if !s.targets_added.is_empty() && s.value != ValueChange::Added {
        parts.push(format!(
            "now also on {}",
            s.targets_added
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !s.targets_removed.is_empty() && s.value != ValueChange::Removed {
        parts.push(format!(
            "no longer on {}",
            s.targets_removed
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if s.value == ValueChange::Added && !s.targets_added.is_empty() {
        parts.push(format!(
            "on {}",
            s.targets_added
                .iter()
                .map(|t| name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

fn secrets_summary(r: &Review) -> String {
    format!(
        "Secrets against the base: {} changed, {} added, {} removed, {} unchanged{}.",
        r.count(|v| *v == ValueChange::Changed),
        r.count(|v| *v == ValueChange::Added),
        r.count(|v| *v == ValueChange::Removed),
        r.count(|v| *v == ValueChange::Unchanged),
        match r.count(|v| matches!(v, ValueChange::Unknown(_))) {
            0 => String::new(),
            n => format!(", {n} not compared"),
        }
    )
}

impl Review {
    /// What the base was: `revision main (commit 1a2b…)` or `file PATH`.
    fn base_said(&self, code: impl Fn(&str) -> String) -> String {
        match &self.base_commit {
            Some(c) => format!("revision {} (commit {})", code(&self.base), code(c)),
            None => format!("file {}", code(&self.base)),
        }
    }

    fn chosen_note(&self) -> Option<String> {
        (!self.chosen.is_empty()).then(|| {
            format!(
                "no fingerprint is shown of the {} value{} this change sets (under the base's key it would test the author's guesses)",
                self.chosen.len(),
                if self.chosen.len() == 1 { "" } else { "s" }
            )
        })
    }

    /// The review as text, printed after the plan.
    pub fn text(&self, st: &Style) -> String {
        let mut out = format!(
            "\nReview against {} (target definitions and fingerprint_key from the base; secrets and their targets from this change)\n",
            self.base_said(name_text)
        );
        if let Some(n) = self.chosen_note() {
            out.push_str(&format!("  note: {n}\n"));
        }
        if let Some(why) = &self.fingerprints_hidden {
            out.push_str(&format!("  note: {why}\n"));
        }
        for r in &self.recipients_added {
            out.push_str(&format!(
                "  note: this change adds the recipient {}: it can decrypt every value encrypted to it\n",
                name_text(r)
            ));
        }
        for r in &self.recipients_removed {
            out.push_str(&format!(
                "  note: this change removes the recipient {}: it can still decrypt the values in the history; rotate them\n",
                name_text(r)
            ));
        }
        if !self.not_contacted.is_empty() {
            out.push('\n');
        }
        for t in &self.not_contacted {
            out.push_str(&format!(
                "{} ({}): {}\n",
                name_text(&t.name),
                t.kind,
                change_text(t)
            ));
            if !t.secrets.is_empty() {
                out.push_str(&format!(
                    "    secrets: {}\n",
                    t.secrets
                        .iter()
                        .map(|s| name_text(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for f in &t.files {
                out.push_str(&format!("    reads {f}\n"));
            }
            for line in t.diff.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out.push('\n');
        for s in &self.secrets {
            let mark = match &s.value {
                ValueChange::Changed => "~",
                ValueChange::Added => "+",
                ValueChange::Removed => "-",
                ValueChange::Unknown(_) => "?",
                ValueChange::Unchanged => "=",
            };
            let note = targets_note(s, name_text);
            if s.value == ValueChange::Unchanged && note.is_empty() && !st.verbose {
                continue;
            }
            out.push_str(&format!(
                "    {mark} {:<28} {}{note}\n",
                name_text(&s.name),
                value_text(&s.value)
            ));
        }
        out.push_str(&format!("{}\n", secrets_summary(self)));
        if !self.not_contacted.is_empty() {
            out.push_str(&format!(
                "{} not contacted (new, changed or removed in this change).\n",
                match self.not_contacted.len() {
                    1 => "1 target".to_string(),
                    n => format!("{n} targets"),
                }
            ));
        }
        out
    }

    /// Under GitHub Actions: a warning per target not contacted, and per
    /// recipient added (titles and messages escaped by [`crate::ci`]).
    pub fn annotations(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .not_contacted
            .iter()
            .filter(|t| t.change != TargetChange::Removed)
            .map(|t| {
                crate::ci::annotation(
                    "warning",
                    &format!("secretsync review: {}", t.name),
                    &format!("{} ({}): {}", t.name, t.kind, change_text(t)),
                )
            })
            .collect();
        for r in &self.recipients_added {
            out.push(crate::ci::annotation(
                "warning",
                "secretsync review: recipients",
                &format!("this change adds the recipient {r}: it can decrypt every value encrypted to it"),
            ));
        }
        out
    }

    /// The review as the `review` member of the plan's JSON document.
    pub fn json(&self) -> Value {
        json!({
            "base": self.base,
            "base_kind": self.base_kind,
            "base_commit": self.base_commit,
            "fingerprints_hidden_for": self.chosen,
            "fingerprints_hidden": self.fingerprints_hidden.is_some(),
            "fingerprints_hidden_reason": self.fingerprints_hidden,
            "recipients_added": self.recipients_added,
            "recipients_removed": self.recipients_removed,
            "targets_not_contacted": self.not_contacted.iter().map(|t| json!({
                "name": t.name,
                "type": t.kind,
                "change": t.change,
                "secrets": t.secrets,
                "files_changed": t.files,
                "definition_diff": t.diff,
            })).collect::<Vec<_>>(),
            "secrets": self.secrets.iter().map(|s| {
                let (value, reason) = match &s.value {
                    ValueChange::Unknown(why) => ("unknown", Some(why.clone())),
                    ValueChange::Changed => ("changed", None),
                    ValueChange::Unchanged => ("unchanged", None),
                    ValueChange::Added => ("added", None),
                    ValueChange::Removed => ("removed", None),
                };
                let mut v = json!({
                    "name": s.name,
                    "value": value,
                    "targets_added": s.targets_added,
                    "targets_removed": s.targets_removed,
                });
                if let Some((from, on)) = &s.copy_of {
                    v["same_value_as"] = json!({ "secret": from, "targets": on });
                }
                if let Some(r) = reason {
                    v["reason"] = json!(r);
                }
                v
            }).collect::<Vec<_>>(),
            "summary": {
                "changed": self.count(|v| *v == ValueChange::Changed),
                "added": self.count(|v| *v == ValueChange::Added),
                "removed": self.count(|v| *v == ValueChange::Removed),
                "unchanged": self.count(|v| *v == ValueChange::Unchanged),
                "unknown": self.count(|v| matches!(v, ValueChange::Unknown(_))),
                "targets_not_contacted": self.not_contacted.len(),
            },
        })
    }

    /// The review as markdown, appended to the plan's.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "\n### secretsync review against {} ({})\n\n",
            md_code(&self.base),
            match &self.base_commit {
                Some(c) => format!("revision, commit {}", md_code(c)),
                None => "a file".to_string(),
            }
        );
        out.push_str("Target definitions and `fingerprint_key` come from the base; secrets and their targets from this change.\n\n");
        if let Some(n) = self.chosen_note() {
            out.push_str(&format!("> {n}.\n\n"));
        }
        if let Some(why) = &self.fingerprints_hidden {
            // Our own words: no manifest text in them.
            out.push_str(&format!("> ⚠️ {why}\n\n"));
        }
        for r in &self.recipients_added {
            out.push_str(&format!(
                "> ⚠️ This change adds the recipient {}: it can decrypt every value encrypted to it.\n\n",
                md_code(r)
            ));
        }
        for r in &self.recipients_removed {
            out.push_str(&format!(
                "> This change removes the recipient {}: it can still decrypt the values in the history; rotate them.\n\n",
                md_code(r)
            ));
        }
        if !self.not_contacted.is_empty() {
            out.push_str("| target | type | in this change | secrets |\n|---|---|---|---|\n");
            for t in &self.not_contacted {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    md_code(&t.name),
                    t.kind,
                    change_text(t),
                    t.secrets
                        .iter()
                        .map(|s| md_code(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for t in &self.not_contacted {
                for f in &t.files {
                    out.push_str(&format!("\n{} reads {}\n", md_code(&t.name), md_cell(f)));
                }
                if !t.diff.is_empty() {
                    out.push_str(&format!(
                        "\nDefinition of {}:\n\n{}",
                        md_code(&t.name),
                        md_fence("diff", &t.diff)
                    ));
                }
            }
            out.push('\n');
        }
        out.push_str(&format!("{}\n\n", secrets_summary(self)));
        let shown: Vec<&SecretChange> = self
            .secrets
            .iter()
            .filter(|s| {
                s.value != ValueChange::Unchanged
                    || !s.targets_added.is_empty()
                    || !s.targets_removed.is_empty()
            })
            .collect();
        if !shown.is_empty() {
            out.push_str("| secret | in this change |\n|---|---|\n");
            for s in shown {
                let value = match &s.value {
                    ValueChange::Unknown(why) => format!("value not compared: {}", md_cell(why)),
                    v => value_text(v),
                };
                out.push_str(&format!(
                    "| {} | {value}{} |\n",
                    md_code(&s.name),
                    targets_note(s, md_code)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_arguments() {
        assert_eq!(
            BaseSource::parse("origin/main").unwrap(),
            BaseSource::Git("origin/main".into())
        );
        assert_eq!(
            BaseSource::parse("file:x.yaml").unwrap(),
            BaseSource::File("x.yaml".into())
        );
        for bad in [
            "",
            "-oProxyCommand=x",
            "--output=/tmp/x",
            "main:secrets.yaml",
            "a b",
            "a\nb",
        ] {
            assert!(BaseSource::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn definitions_are_quoted() {
        let mut f = IndexMap::new();
        f.insert("path".to_string(), Field::Str("a\n+All in sync".into()));
        f.insert("prune".to_string(), Field::Bool(true));
        let d = definition_diff("t\nx", None, Some(&f));
        assert!(d.contains("+path: \"a\\n+All in sync\"\n"), "{d}");
        assert!(d.contains("+prune: true\n"), "{d}");
        assert!(d.contains("head targets.\"t\\nx\""), "{d}");
    }
}
