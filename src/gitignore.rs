//! Never plaintext in git by accident: a local env file (an `env_file`
//! target) holds values in clear, so `init` has git ignore it (and the
//! manifest's lock file), and `check` warns about one inside a git work
//! tree that git does not ignore.
//!
//! git is asked with `check-ignore`, with `core.fsmonitor` off (a
//! repository's config must not make this run a program), the path after
//! `--`, and secretsync's environment (no identity, no tokens: see
//! src/environ.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::manifest::Manifest;
use crate::targets::env_file::EnvFileSpec;

/// The folder of the git work tree holding `dir`, found by its `.git`.
pub fn work_tree(dir: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(dir).ok()?;
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Whether git ignores `path` (relative to `dir` or absolute): `Some(true)`
/// ignored, `Some(false)` not ignored (or tracked), `None` when git cannot
/// say (not a repository, no git, the path outside the work tree).
pub fn ignored(dir: &Path, path: &Path) -> Option<bool> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "core.fsmonitor=false", "check-ignore", "-q", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    match status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

/// The env-file targets of `m` whose file lies inside the git work tree of
/// the manifest's folder and that git does not ignore: (target, path as
/// written).
pub fn unignored_env_files(m: &Manifest) -> Vec<(String, String)> {
    let dir = m.dir();
    let Some(tree) = work_tree(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, spec) in &m.targets {
        let Some(f) = spec.get::<EnvFileSpec>() else {
            continue;
        };
        let full = dir.join(&f.path);
        // Inside the work tree, as far as the path says without the file.
        let parent = full
            .parent()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .filter(|p| p.starts_with(&tree));
        if parent.is_none() {
            continue;
        }
        if ignored(&dir, Path::new(&f.path)) == Some(false) {
            out.push((name.clone(), f.path.clone()));
        }
    }
    out
}

/// The lines `init` adds to `.gitignore` in the manifest's folder: each
/// env file of `m` inside that folder, and the lock file.
pub fn entries(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for spec in m.targets.values() {
        if let Some(f) = spec.get::<EnvFileSpec>() {
            let rel = f.path.trim_start_matches("./");
            if !rel.starts_with('/') && !rel.split('/').any(|p| p == "..") && !rel.is_empty() {
                out.push(format!("/{rel}"));
            }
        }
    }
    if let Some(name) = crate::lock::lock_path(&m.path).file_name() {
        out.push(format!("/{}", name.to_string_lossy()));
    }
    out
}

/// Adds `lines` missing from `dir/.gitignore` (creating it), keeping what
/// is there; returns the lines added.
pub fn extend(dir: &Path, lines: &[String]) -> std::io::Result<Vec<String>> {
    let path = dir.join(".gitignore");
    let now = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let have: Vec<&str> = now.lines().map(str::trim).collect();
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| {
            let bare = l.trim_start_matches('/');
            !have.iter().any(|h| *h == l.as_str() || *h == bare)
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = now.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "# secretsync: local env files hold values in clear; the lock file is the manifest's\n",
    );
    for l in &missing {
        text.push_str(l);
        text.push('\n');
    }
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(missing)
}
