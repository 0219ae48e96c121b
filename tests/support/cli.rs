//! Runs the real `secretsync` binary in a scratch folder with a fresh age
//! identity, and checks outputs for canary values.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secretsync::crypto;

/// A scratch folder with an identity (`id.txt`) and a manifest being written.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub identity: PathBuf,
    pub recipient: crypto::Recipient,
    /// The text of the `fingerprint_key` in [`Sandbox::header`].
    pub fingerprint_key: String,
}

/// What a run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let identity = dir.path().join("id.txt");
        use secrecy::ExposeSecret;
        std::fs::write(&identity, format!("{}\n", id.to_string().expose_secret())).unwrap();
        // Private, as secretsync requires of an identity file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
        Sandbox {
            dir,
            identity,
            recipient: crypto::Recipient::X25519(id.to_public()),
            fingerprint_key: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// An armored age file of `value`, indented for a YAML `|` block at `indent`.
    pub fn encrypted(&self, value: &str, indent: usize) -> String {
        let armored =
            crypto::encrypt(std::slice::from_ref(&self.recipient), value.as_bytes()).unwrap();
        let pad = " ".repeat(indent);
        armored.lines().map(|l| format!("{pad}{l}\n")).collect()
    }

    /// The `recipients:` and `fingerprint_key:` header of a manifest.
    pub fn header(&self) -> String {
        format!(
            "version: 1\nrecipients:\n  - {}\nfingerprint_key: |\n{}",
            self.recipient,
            self.encrypted(&self.fingerprint_key, 2)
        )
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Runs `secretsync ARGS` in the folder with `--identity id.txt`, no
    /// terminal, no colour and none of the caller's secretsync/SOPS variables.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = secretsync_cmd(self.dir.path());
        cmd.args(args).arg("--identity").arg(&self.identity);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd)
    }

    /// [`Sandbox::run_with`] with `stdin` written to the binary (values
    /// travel there, never in argv). The binary may refuse before reading
    /// it: a broken pipe is fine.
    pub fn run_stdin(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Out {
        let mut cmd = secretsync_cmd(self.dir.path());
        cmd.args(args)
            .arg("--identity")
            .arg(&self.identity)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Every file under the folder, except those named, as (path, bytes).
    pub fn files_except(&self, skip: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.retain(|(p, _)| !skip.iter().any(|s| p.ends_with(s)));
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
}

/// The binary, run in `dir` with a clean environment for its own variables.
pub fn secretsync_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secretsync"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env("HOME", dir)
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("SECRETSYNC_") || k.starts_with("SOPS_") || k.starts_with("RAILWAY_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub fn run(mut cmd: Command) -> Out {
    let o = cmd.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Panics naming the canary if any text contains one.
pub fn assert_no_canary(what: &str, text: &[u8], canaries: &[&str]) {
    for c in canaries {
        let hay = String::from_utf8_lossy(text);
        assert!(!hay.contains(c), "canary {c:?} leaked into {what}:\n{hay}");
    }
}

/// Copies a folder (the shipped demo) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
