//! The `ssh_env` target: an env file on a host reached over SSH.
//!
//! ```yaml
//! targets:
//!   vps:
//!     type: ssh_env
//!     host: deploy@vps.example.com   # or an alias from ~/.ssh/config
//!     port: 22                       # optional
//!     identity_file: ~/.ssh/deploy   # optional; otherwise the agent or ssh config
//!     known_hosts: strict            # strict (default) or accept-new
//!     connect_timeout: 10s           # optional
//!     path: /etc/app/app.env
//!     sudo: false                    # true: read and write through `sudo -n`
//!     on_change: systemctl restart app   # optional: run once after the file changed
//!     create: true                   # a missing file is created 0600
//!     unit: app.service              # optional: the systemd unit that reads it (#28)
//!     container: app                 # optional: the docker container made from it
//! ```
//!
//! Round trips: every target on one host shares that host's SSH master
//! ([`crate::remote::SshPool`]); all files of a host are read by **one**
//! remote command per pass (the engine groups them by the host, their
//! [`Target::batch_key`]); each write is **one** remote
//! command. The env-file format is [`crate::envfile`], read and edited through
//! [`super::envfile_target`], as for local files.
//!
//! The write script runs on the host: the new text arrives on stdin after a
//! first line carrying the SHA-256 of the text the plan read (or `none`); the
//! script refuses (exit 75) when the file's hash differs, writes a temp file
//! in the same directory (umask 077), gives it the old file's owner and mode,
//! syncs it, checks the hash once more and renames it over the file. A failure
//! at any step removes the temp file and leaves the old file as it was.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::envfile_target;
use super::kind::{same_as, Kind, Spec, TargetSpec};
use super::ssh::{ssh_options, SSH_FIELDS};
use super::{
    scripts, Change, Check, Context, Fields, ManifestError, Observed, Read, Target, TargetError,
};
use crate::crypto::Fingerprinter;
use crate::envfile::{self, Format as EnvFormat};
use crate::remote::{Host, Runner, SshOptions};
use crate::secret::Secret;

/// `type: ssh_env` in the registry.
pub static KIND: SshEnvKind = SshEnvKind;

pub struct SshEnvKind;

impl Kind for SshEnvKind {
    fn name(&self) -> &'static str {
        "ssh_env"
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "host",
            "port",
            "identity_file",
            "known_hosts",
            "known_hosts_file",
            "connect_timeout",
            "path",
            "sudo",
            "on_change",
            "create",
            "prune",
            "format",
            "unit",
            "container",
        ]
    }

    fn parse(&self, f: &Fields<'_>) -> Result<TargetSpec, ManifestError> {
        debug_assert!(SSH_FIELDS.iter().all(|s| self.fields().contains(s)));
        let host = f.required_operand("host")?;
        let path = f.required_operand("path")?;
        Ok(TargetSpec::new(SshEnvSpec {
            format: super::env_file::format_field(f)?,
            ssh: ssh_options(f, host)?,
            path,
            sudo: f.flag("sudo", false)?,
            on_change: f.text("on_change"),
            create: f.flag("create", true)?,
            prune: f.flag("prune", false)?,
            live: super::live_unit::LiveSpec::parse(f)?,
        }))
    }
}

/// `type: ssh_env`: an env file on a host reached over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEnvSpec {
    pub ssh: SshOptions,
    pub path: String,
    /// Read and write through `sudo -n`.
    pub sudo: bool,
    /// A command run on the host after the file changed (only by `apply`).
    pub on_change: Option<String>,
    pub create: bool,
    pub prune: bool,
    pub format: EnvFormat,
    /// What runs from the file (`unit:`, `container:`, #28).
    pub live: super::live_unit::LiveSpec,
}

impl Spec for SshEnvSpec {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(SshEnvFile::new(name, self, ctx)?))
    }

    fn prune(&self) -> bool {
        self.prune
    }

    fn same(&self, other: &dyn Spec) -> bool {
        same_as(self, other)
    }

    fn local_files(&self, _manifest_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        self.ssh.local_files()
    }
}

/// What the host said of one file.
#[derive(Clone)]
enum FileState {
    /// The bytes of the file (zeroed on drop: they hold the values).
    Present(Arc<Zeroizing<Vec<u8>>>),
    Missing,
    Directory,
    Unreadable,
    DanglingLink,
    /// A FIFO, device or socket: never opened.
    Special,
    /// Larger than 16 MiB.
    TooLarge,
    /// A symlink owned by another user than the reader, root or the
    /// file's owner.
    UntrustedLink,
    /// `sudo -n` needs a password (or the user may not sudo).
    SudoRefused,
    NoSudo,
    /// The file could not be read for another reason.
    Failed,
}

/// Prints, for each `(sudo, path)` pair of arguments, a header `#<i> <state>`
/// and for a readable file its bytes in base64. `~/` paths are expanded by the
/// login user's shell, before any `sudo`.
static READ_SCRIPT: LazyLock<String> = LazyLock::new(scripts::env_read);

/// Arguments: sudo (0/1), path, create (0/1), on_change (may be empty).
/// Stdin: a first line with the SHA-256 of the file as read (or `none`) and
/// the SHA-256 of the new text, then the new text. The second hash guards
/// against a sender killed mid-way: the host would see an early end of input
/// and must not install a truncated file.
/// Exit codes name the failure (see [`write_error`]); stdout says `written`.
static WRITE_SCRIPT: LazyLock<String> = LazyLock::new(scripts::env_write);

/// Checks for `doctor`: the file as a read sees it, and whether a temp file
/// can be created (and is removed) in its directory. Arguments: sudo, path.
static CHECK_DIR_SCRIPT: LazyLock<String> = LazyLock::new(scripts::env_check_dir);

pub struct SshEnvFile {
    name: String,
    spec: SshEnvSpec,
    host: Arc<Host>,
}

impl SshEnvFile {
    pub fn new(name: &str, spec: &SshEnvSpec, ctx: &Context) -> Result<Self, TargetError> {
        if spec.path.is_empty() {
            return Err(TargetError::invalid(format!(
                "target `{name}`: `path` is empty"
            )));
        }
        Ok(SshEnvFile {
            name: name.to_string(),
            spec: spec.clone(),
            host: ctx.ssh.host(&spec.ssh),
        })
    }

    fn host(&self) -> &Host {
        &self.host
    }

    /// `deploy@vps:/etc/app/app.env`, for messages; with a port, an ssh
    /// URL (`ssh://deploy@vps:2222/etc/app/app.env`), since scp's form has
    /// no place for one.
    fn location(&self) -> String {
        match self.spec.ssh.port {
            Some(port) => {
                let path = &self.spec.path;
                let sep = if path.starts_with('/') { "" } else { "/~/" };
                format!("ssh://{}:{port}{sep}{path}", self.spec.ssh.host)
            }
            None => format!("{}:{}", self.host().label, self.spec.path),
        }
    }

    fn runner(&self) -> Runner {
        Runner::Ssh(self.host.clone())
    }

    fn sudo_arg(&self) -> &'static str {
        if self.spec.sudo {
            "1"
        } else {
            "0"
        }
    }

    /// What a read of the file says, as the engine wants it.
    fn observe(&self, state: FileState) -> Result<Observed, TargetError> {
        match state {
            FileState::Present(bytes) => envfile_target::observe(&self.location(), Some(&bytes)),
            FileState::Missing => envfile_target::observe(&self.location(), None),
            other => Err(self.state_error(&other)),
        }
    }

    fn state_error(&self, state: &FileState) -> TargetError {
        let at = self.location();
        let host = &self.host().label;
        match state {
            FileState::Directory => TargetError::failed(format!(
                "{at} is a directory, not an env file"
            ))
            .with_hint("point `path` at a file inside it"),
            FileState::Unreadable => TargetError::failed(format!(
                "{at} is not readable by the SSH user"
            ))
            .with_hint("fix the file's permissions, or set `sudo: true` on the target if it is root-owned"),
            FileState::DanglingLink => TargetError::failed(format!(
                "{at} is a symlink to a missing file"
            ))
            .with_hint("create the file it points to, or replace the link with a file"),
            FileState::Special => TargetError::failed(format!(
                "{at} is not a regular file (a FIFO, device or socket); it is neither read nor replaced"
            ))
            .with_hint("point `path` at a regular file"),
            FileState::TooLarge => TargetError::failed(format!(
                "{at} is more than the 16 MiB an env file may have"
            ))
            .with_hint("an env file is read whole into memory: keep it under 16 MiB"),
            FileState::UntrustedLink => TargetError::failed(format!(
                "{at} is a symlink owned by another user: secretsync follows only links owned by the reading user, root or the file's owner"
            ))
            .with_hint("replace the link with the file, or have the file's owner own the link"),
            FileState::SudoRefused => sudo_refused(host),
            FileState::NoSudo => TargetError::failed(format!(
                "the target has `sudo: true` but sudo is not installed on {host}"
            ))
            .with_hint("install sudo on the host, or set `sudo: false` and give the SSH user access to the file"),
            FileState::Failed => TargetError::failed(format!("{at} could not be read"))
                .with_hint("check the file on the host"),
            FileState::Present(_) | FileState::Missing => {
                TargetError::failed(format!("{at}: unexpected state"))
            }
        }
    }
}

fn sudo_refused(host: &str) -> TargetError {
    TargetError::auth(format!(
        "`sudo -n` on {host} needs a password (or the SSH user may not use sudo)"
    ))
    .with_hint(
        "allow the SSH user passwordless sudo for the commands secretsync runs (sh), e.g. a \
         NOPASSWD line in /etc/sudoers.d, or set `sudo: false`",
    )
}

/// Reads `files` (all on `host`) with one remote command.
async fn read_files(
    host: &Arc<Host>,
    files: &[&SshEnvFile],
) -> Result<Vec<FileState>, TargetError> {
    let mut args: Vec<&str> = Vec::with_capacity(files.len() * 2);
    for f in files {
        args.push(f.sudo_arg());
        args.push(&f.spec.path);
    }
    let runner = Runner::Ssh(host.clone());
    let out = runner.sh(&READ_SCRIPT, &args, b"", false).await?;
    if out.code != Some(0) {
        return Err(TargetError::failed(format!(
            "reading env files on {} failed (exit {}): {}",
            host.label,
            out.code.map_or("by a signal".into(), |c| c.to_string()),
            out.stderr_line()
        ))
        .with_hint("check that the host has a POSIX sh and base64"));
    }
    parse_read(&out.stdout, files.len()).map_err(|why| {
        TargetError::failed(format!(
            "the answer from {} could not be understood: {why}",
            host.label
        ))
    })
}

/// Splits the read script's output into one state per file.
fn parse_read(stdout: &[u8], count: usize) -> Result<Vec<FileState>, String> {
    let text = std::str::from_utf8(stdout).map_err(|_| "it is not text".to_string())?;
    let mut states: Vec<Option<FileState>> = vec![None; count];
    let mut current: Option<(usize, crate::secret::SecretBuf)> = None;
    let finish = |cur: Option<(usize, crate::secret::SecretBuf)>,
                  states: &mut Vec<Option<FileState>>|
     -> Result<(), String> {
        if let Some((i, b64)) = cur {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().as_bytes())
                .map_err(|_| format!("file #{i} is not valid base64"))?;
            states[i] = Some(FileState::Present(Arc::new(Zeroizing::new(bytes))));
        }
        Ok(())
    };
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix('#') {
            if rest == "fail" {
                if let Some((i, _)) = current.take() {
                    states[i] = Some(FileState::Failed);
                }
                continue;
            }
            finish(current.take(), &mut states)?;
            let (index, state) = rest
                .split_once(' ')
                .ok_or_else(|| format!("a header without a state: #{rest}"))?;
            let i: usize = index
                .parse()
                .ok()
                .filter(|&i| i < count)
                .ok_or_else(|| format!("a header for an unknown file: #{index}"))?;
            match state {
                "ok" => current = Some((i, crate::secret::SecretBuf::default())),
                "missing" => states[i] = Some(FileState::Missing),
                "dir" => states[i] = Some(FileState::Directory),
                "unreadable" => states[i] = Some(FileState::Unreadable),
                "dangling" => states[i] = Some(FileState::DanglingLink),
                "special" => states[i] = Some(FileState::Special),
                "large" => states[i] = Some(FileState::TooLarge),
                "untrusted" => states[i] = Some(FileState::UntrustedLink),
                "sudorefused" => states[i] = Some(FileState::SudoRefused),
                "nosudo" => states[i] = Some(FileState::NoSudo),
                other => return Err(format!("an unknown state `{other}`")),
            }
        } else if let Some((_, b64)) = current.as_mut() {
            b64.push_str(line.trim());
        }
    }
    finish(current.take(), &mut states)?;
    states
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| format!("no answer for file #{i}")))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A write whose end was not seen: the file is the old one or the whole new
/// one (the rename is atomic), and only a read can tell which.
fn in_doubt(location: &str, e: &TargetError) -> TargetError {
    TargetError::unreachable(format!(
        "{}; {location} may already hold the new values: a write is atomic, so the file is either old or new",
        e.message
    ))
    .with_hint("run plan (or apply again) to tell which: it reads the file, and a re-run converges")
}

/// The error for a failed write script, by its exit code.
fn write_error(location: &str, host: &str, code: Option<i32>, said: &str) -> TargetError {
    match code {
        Some(75) => TargetError::changed_since_read(
            format!("{location} changed since it was read; nothing was written"),
            Vec::new(),
        )
        .with_hint("run plan again"),
        Some(86) => TargetError::conflict(format!(
            "{location} is being written by another secretsync (its writers' lock stayed taken); nothing was written"
        ))
        .with_hint("run plan again when the other apply has finished"),
        Some(71) => TargetError::failed(format!("{location} is a symlink to a missing file"))
            .with_hint("create the file it points to, or replace the link with a file"),
        Some(72) => TargetError::failed(format!("{location} is a directory, not an env file"))
            .with_hint("point `path` at a file inside it"),
        Some(84) => TargetError::failed(format!(
            "{location} is not a regular file (a FIFO, device or socket); nothing was written"
        ))
        .with_hint("point `path` at a regular file"),
        Some(85) => TargetError::failed(format!(
            "{location} is a symlink owned by another user; nothing was written: {said}"
        ))
        .with_hint("replace the link with the file, or have the file's owner own the link"),
        Some(73) => {
            TargetError::failed(format!("{location} could not be read to check it: {said}"))
                .with_hint("check the file's permissions, or set `sudo: true`")
        }
        Some(76) => TargetError::failed(format!(
            "{location} does not exist and the target has `create: false`"
        ))
        .with_hint("create the file, or set `create: true` on the target"),
        Some(77) | Some(78) => TargetError::failed(format!(
            "cannot create a temporary file next to {location}: {said}"
        ))
        .with_hint("check that the SSH user (or sudo) may write in the file's directory"),
        Some(79) => {
            let full = said.to_ascii_lowercase().contains("no space");
            let e = TargetError::failed(format!(
                "writing {location} failed: {said}; the old file is intact"
            ));
            if full {
                e.with_hint(format!(
                    "free space on {host}'s file system, then run apply again"
                ))
            } else {
                e.with_hint("check the file system on the host, then run apply again")
            }
        }
        Some(80) | Some(81) => TargetError::failed(format!(
            "cannot keep the mode and owner of {location}: {said}; nothing was written"
        ))
        .with_hint("set `sudo: true`, or run as the file's owner"),
        Some(83) => TargetError::unreachable(format!(
            "the new text of {location} did not arrive whole; nothing was written"
        ))
        .with_hint("the connection or this process was interrupted: run apply again"),
        Some(82) => TargetError::failed(format!(
            "cannot replace {location}: {said}; the old file is intact"
        ))
        .with_hint("check the permissions of the file's directory"),
        Some(90) => TargetError::failed(format!(
            "{location} was written, but on_change failed: {said}"
        ))
        .with_hint(
            "fix the command (it runs on the host after the file changed) and run it by hand",
        ),
        Some(91) => TargetError::failed(format!(
            "the target has `sudo: true` but sudo is not installed on {host}"
        )),
        Some(92) => sudo_refused(host),
        other => TargetError::failed(format!(
            "writing {location} failed (exit {}): {said}",
            other.map_or("by a signal".into(), |c| c.to_string())
        ))
        .with_hint("run plan again to see the file's state"),
    }
}

#[async_trait]
impl Target for SshEnvFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!("env file {} over SSH", self.location())
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        envfile::check_value(self.spec.format, value)
    }

    fn file_diff(
        &self,
        observed: &Observed,
        changes: &[Change],
        fp: &Fingerprinter,
    ) -> Option<String> {
        super::env_file::file_diff(&self.spec.path, self.spec.format, observed, changes, fp)
    }

    fn change_notes(&self, observed: &Observed, changes: &[Change]) -> Vec<String> {
        envfile_target::dropped_exports(observed, changes, self.spec.format)
    }

    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError> {
        let observed = self.observe(read_one(self).await?)?;
        Ok(self.with_live(observed, keys).await)
    }

    /// Every env file of one host.
    fn batch_key(&self) -> Option<String> {
        Some(self.host.key())
    }

    /// All files of the host in one remote command.
    async fn read_batch(&self, group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
        let Some(files) = super::members::<SshEnvFile>(group) else {
            return super::read_each(group).await;
        };
        let keys: Vec<&[String]> = files.iter().map(|(_, k)| *k).collect();
        let files: Vec<&SshEnvFile> = files.into_iter().map(|(f, _)| f).collect();
        let observed: Vec<Result<Observed, TargetError>> =
            match read_files(&self.host, &files).await {
                Ok(states) => files
                    .iter()
                    .zip(states)
                    .map(|(f, s)| f.observe(s))
                    .collect(),
                Err(e) => vec![Err(e); files.len()],
            };
        // What runs from each file that names a unit or container (#28).
        futures_util::future::join_all(files.iter().zip(keys).zip(observed).map(
            |((f, keys), o)| async move {
                match o {
                    Ok(o) => Ok(f.with_live(o, keys).await),
                    Err(e) => Err(e),
                }
            },
        ))
        .await
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        let location = self.location();
        let current: Option<&[u8]> = match (observed.snapshot(), observed.exists) {
            (Some(text), true) => Some(text.expose().as_bytes()),
            _ => None,
        };
        let new_text = envfile_target::edited(&location, current, changes, self.spec.format)?;
        let unchanged = match current {
            Some(bytes) => bytes == new_text.as_bytes(),
            None => new_text.is_empty(),
        };
        // Nothing to change: still prove the file is as read, so a stale plan
        // is refused rather than reported as applied.
        let want = current.map_or_else(|| "none".to_string(), sha256_hex);
        let mut input = Zeroizing::new(Vec::with_capacity(new_text.len() + 66));
        input.extend_from_slice(want.as_bytes());
        input.push(b' ');
        input.extend_from_slice(sha256_hex(new_text.as_bytes()).as_bytes());
        input.push(b'\n');
        if unchanged {
            return self.confirm_unchanged(&want).await;
        }
        input.extend_from_slice(new_text.as_bytes());
        let args = [
            self.sudo_arg(),
            self.spec.path.as_str(),
            if self.spec.create { "1" } else { "0" },
            self.spec.on_change.as_deref().unwrap_or(""),
        ];
        let out = match self.runner().sh(&WRITE_SCRIPT, &args, &input, false).await {
            Ok(out) => out,
            // The connection went once the new text was on its way: the
            // script may have finished the rename before it was cut.
            Err(e) if e.lost_during_command() => return Err(in_doubt(&location, &e.into())),
            Err(e) => return Err(e.into()),
        };
        if out.code == Some(0) {
            return Ok(());
        }
        if out.code.is_none() {
            return Err(in_doubt(
                &location,
                &TargetError::unreachable("the write script was ended by a signal"),
            ));
        }
        Err(write_error(
            &location,
            &self.host().label,
            out.code,
            &out.stderr_line(),
        ))
    }

    async fn check(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let host = &self.host().label;
        match self.host().session().await {
            Ok(_) => checks.push(Check {
                what: format!("SSH connection to {host}"),
                outcome: Ok("connected and authenticated".into()),
            }),
            Err(e) => {
                checks.push(Check {
                    what: format!("SSH connection to {host}"),
                    outcome: Err(e.into()),
                });
                return checks;
            }
        }
        let file = match read_one(self).await {
            Ok(FileState::Present(bytes)) => {
                envfile_target::observe(&self.location(), Some(&bytes))
                    .map(|o| format!("{} parses ({} keys)", self.location(), o.entries.len()))
            }
            Ok(FileState::Missing) if self.spec.create => Ok(format!(
                "{} is missing; it will be created with mode 0600",
                self.location()
            )),
            Ok(FileState::Missing) => Err(TargetError::failed(format!(
                "{} does not exist and the target has `create: false`",
                self.location()
            ))
            .with_hint("create the file, or set `create: true` on the target")),
            Ok(other) => Err(self.state_error(&other)),
            Err(e) => Err(e),
        };
        checks.push(Check {
            what: "file readable".into(),
            outcome: file,
        });
        let dir = self
            .runner()
            .sh(
                &CHECK_DIR_SCRIPT,
                &[self.sudo_arg(), self.spec.path.as_str()],
                b"",
                false,
            )
            .await
            .map_err(TargetError::from)
            .and_then(|out| {
                // as_user.sh says why sudo cannot be used by its exit code.
                let said = match out.code {
                    Some(91) => "nosudo".to_string(),
                    Some(92) => "sudorefused".to_string(),
                    _ => String::from_utf8_lossy(&out.stdout).trim().to_string(),
                };
                match said.as_str() {
                    "ok" => Ok(format!(
                        "can create files in the directory of {}{}",
                        self.spec.path,
                        if self.spec.sudo {
                            " (through sudo)"
                        } else {
                            ""
                        }
                    )),
                    "missing" if self.spec.create => Ok(format!(
                        "the directory of {} is missing; it will be created (0700)",
                        self.spec.path
                    )),
                    "missing" => Err(TargetError::failed(format!(
                        "the directory of {} does not exist on {host}",
                        self.spec.path
                    ))),
                    "sudorefused" => Err(sudo_refused(host)),
                    orphans if orphans.starts_with("orphans ") => Err(TargetError::failed(format!(
                        "the directory of {} on {host} holds {} temp file(s) left by a secretsync that was killed while writing; they may hold values",
                        self.spec.path,
                        &orphans["orphans ".len()..]
                    ))
                    .with_hint("the next apply that writes there removes them, or delete the `.secretsync.*` files by hand")),
                    "nosudo" => Err(TargetError::failed(format!(
                        "the target has `sudo: true` but sudo is not installed on {host}"
                    ))),
                    other => Err(TargetError::failed(format!(
                        "cannot create files next to {}: {}",
                        self.location(),
                        other.strip_prefix("denied ").unwrap_or(other)
                    ))
                    .with_hint(
                        "set `sudo: true`, or give the SSH user write access to the directory",
                    )),
                }
            });
        checks.push(Check {
            what: "directory writable".into(),
            outcome: dir,
        });
        checks.extend(self.live_checks().await);
        checks
    }
}

impl SshEnvFile {
    /// `observed` with what runs from the file (#28), for its `keys`.
    async fn with_live(&self, mut observed: Observed, keys: &[String]) -> Observed {
        if observed.exists && !self.spec.live.is_empty() {
            observed.live = super::live_unit::remote(
                &self.runner(),
                &self.spec.live,
                self.spec.sudo,
                &self.spec.path,
                keys,
            )
            .await;
        }
        observed
    }

    /// `doctor`: whether liveness can be checked on the host, and why not.
    async fn live_checks(&self) -> Vec<Check> {
        let l = super::live_unit::remote(
            &self.runner(),
            &self.spec.live,
            self.spec.sudo,
            &self.spec.path,
            &[],
        )
        .await;
        super::live_unit::doctor_of(&l)
    }
}

/// Reads just this target's file (a read alone, doctor, the no-op write check).
async fn read_one(t: &SshEnvFile) -> Result<FileState, TargetError> {
    read_files(&t.host, &[t])
        .await?
        .pop()
        .ok_or_else(|| TargetError::failed(format!("reading {}: no answer", t.location())))
}

impl SshEnvFile {
    /// A write with nothing to change: refuse if the file moved since the read.
    async fn confirm_unchanged(&self, want: &str) -> Result<(), TargetError> {
        let now = match read_one(self).await? {
            FileState::Present(bytes) => sha256_hex(&bytes),
            FileState::Missing => "none".to_string(),
            other => return Err(self.state_error(&other)),
        };
        if now == want {
            Ok(())
        } else {
            Err(write_error(
                &self.location(),
                &self.host().label,
                Some(75),
                "",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_every_state() {
        let out = format!(
            "#0 ok\n{}\n#1 missing\n#2 dir\n#3 unreadable\n#4 dangling\n#5 sudorefused\n#6 nosudo\n#7 ok\n#8 ok\n",
            b64("A=1\nB=\"two\"\n")
        );
        let states = parse_read(out.as_bytes(), 9).unwrap();
        match &states[0] {
            FileState::Present(b) => assert_eq!(b.as_slice(), b"A=1\nB=\"two\"\n"),
            _ => panic!("file 0"),
        }
        assert!(matches!(states[1], FileState::Missing));
        assert!(matches!(states[2], FileState::Directory));
        assert!(matches!(states[3], FileState::Unreadable));
        assert!(matches!(states[4], FileState::DanglingLink));
        assert!(matches!(states[5], FileState::SudoRefused));
        assert!(matches!(states[6], FileState::NoSudo));
        // An empty file has no base64 lines.
        assert!(matches!(&states[7], FileState::Present(b) if b.is_empty()));
        assert!(matches!(&states[8], FileState::Present(b) if b.is_empty()));
    }

    #[test]
    fn wrapped_base64_is_joined() {
        let long = "K=".to_string() + &"x".repeat(200) + "\n";
        let wrapped: String = b64(&long)
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let states = parse_read(format!("#0 ok\n{wrapped}").as_bytes(), 1).unwrap();
        assert!(matches!(&states[0], FileState::Present(b) if b.as_slice() == long.as_bytes()));
    }

    #[test]
    fn rejects_answers_it_does_not_understand() {
        assert!(parse_read(b"#0 ok\n!!!\n", 1).is_err());
        assert!(parse_read(b"#3 missing\n", 1).is_err());
        assert!(parse_read(b"#0 weird\n", 1).is_err());
        assert!(parse_read(b"", 1).is_err());
        let failed = parse_read(format!("#0 ok\n{}\n#fail\n", b64("A")).as_bytes(), 1).unwrap();
        assert!(matches!(failed[0], FileState::Failed));
    }

    fn with_sums(want: &str, text: &[u8]) -> Vec<u8> {
        let mut v = format!("{want} {}\n", sha256_hex(text)).into_bytes();
        v.extend_from_slice(text);
        v
    }

    #[tokio::test]
    async fn scripts_run_on_this_machine() {
        // The same scripts, through a local sh: read, write, conflict.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        let p = path.to_str().unwrap();
        let run = |script: &'static str, args: Vec<String>, stdin: Vec<u8>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Runner::Local
                .sh(script, &args, &stdin, false)
                .await
                .unwrap()
        };
        let out = run(&READ_SCRIPT, vec!["0".into(), p.into()], vec![]).await;
        assert!(matches!(
            parse_read(&out.stdout, 1).unwrap()[0],
            FileState::Missing
        ));
        let args = vec!["0".into(), p.into(), "1".into(), String::new()];
        let out = run(&WRITE_SCRIPT, args.clone(), with_sums("none", b"A=\"1\"\n")).await;
        assert_eq!(out.code, Some(0), "{}", out.stderr_line());
        assert_eq!(std::fs::read(&path).unwrap(), b"A=\"1\"\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A stale expectation is refused and changes nothing.
        let out = run(&WRITE_SCRIPT, args.clone(), with_sums("none", b"A=\"2\"\n")).await;
        assert_eq!(out.code, Some(75));
        assert_eq!(std::fs::read(&path).unwrap(), b"A=\"1\"\n");
        // The right expectation replaces it, keeping the mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // Input cut short (a killed sender) is refused: no truncated file.
        let mut cut = with_sums(&sha256_hex(b"A=\"1\"\n"), b"A=\"2\"\nB=\"3\"\n");
        cut.truncate(cut.len() - 4);
        let out = run(&WRITE_SCRIPT, args.clone(), cut).await;
        assert_eq!(out.code, Some(83));
        assert_eq!(std::fs::read(&path).unwrap(), b"A=\"1\"\n");
        let input = with_sums(&sha256_hex(b"A=\"1\"\n"), b"A=\"2\"\n");
        let out = run(&WRITE_SCRIPT, args, input).await;
        assert_eq!(out.code, Some(0), "{}", out.stderr_line());
        assert_eq!(std::fs::read(&path).unwrap(), b"A=\"2\"\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
