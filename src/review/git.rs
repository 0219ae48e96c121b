//! The base manifest: where it comes from (a git revision or a file) and
//! how it is read, with git run without options from the manifest.

use super::*;

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

pub(super) fn manifest_dir(head: &Path) -> PathBuf {
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
pub(super) fn git(dir: &Path, args: &[&str], rev: &str) -> Result<Vec<u8>, Error> {
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
