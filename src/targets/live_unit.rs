//! What runs from an env file (#28): `unit:` (a systemd unit) and
//! `container:` (a docker container) of an `env_file` or `ssh_env` target.
//!
//! ```yaml
//! targets:
//!   app:
//!     type: env_file
//!     path: /etc/app/app.env
//!     unit: app.service      # optional: the unit that reads the file
//!     container: app         # optional: the container made from it
//! ```
//!
//! For a unit: `systemctl show -p MainPID -p ExecMainStartTimestamp -p
//! LoadState -- UNIT` (in UTC) gives the main process and when it started.
//! Where `/proc/PID/environ` can be read, each managed key's value in the
//! running process is compared exactly with the file's (never shown: a keyed
//! fingerprint at most); otherwise the file's modification time is compared
//! with the start. For a container: `docker inspect --format '{{json
//! .Config.Env}}' -- NAME`, compared the same way.
//!
//! The programs are fixed (`systemctl`, `docker`, found on PATH); only the
//! environment of the run may name others ([`SYSTEMCTL_ENV`],
//! [`DOCKER_ENV`]: absolute paths, for unusual installs and tests), never
//! the manifest. Unit and container names are operands (`Fields::operand`)
//! and come after `--`. Values read from a process are held zeroized.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::TargetError;
use super::{Fields, ManifestError};
use crate::liveness::{Liveness, Millis, Runner, Seen};
use crate::secret::{Secret, SecretBuf};

/// Another `systemctl` (an absolute path), chosen by whoever runs secretsync.
pub const SYSTEMCTL_ENV: &str = "SECRETSYNC_SYSTEMCTL";
/// Another `docker` (an absolute path), chosen by whoever runs secretsync.
pub const DOCKER_ENV: &str = "SECRETSYNC_DOCKER";

/// The manifest fields this module reads, for a kind's `fields()`.
pub const FIELDS: [&str; 2] = ["unit", "container"];

/// How long `systemctl` or `docker` may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// `unit:` and `container:` as the manifest gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSpec {
    pub unit: Option<String>,
    pub container: Option<String>,
}

impl LiveSpec {
    pub fn parse(f: &Fields<'_>) -> Result<LiveSpec, ManifestError> {
        Ok(LiveSpec {
            unit: f.operand("unit")?,
            container: f.operand("container")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.unit.is_none() && self.container.is_none()
    }
}

/// The program to run: `default` (on PATH), or the absolute path in `var`.
pub fn program(var: &str, default: &str) -> Result<String, String> {
    match crate::environ::var(var).filter(|v| !v.is_empty()) {
        None => Ok(default.to_string()),
        Some(p) if p.starts_with('/') && !p.chars().any(char::is_control) => Ok(p),
        Some(_) => Err(format!(
            "{var} must be an absolute path without control characters; unset it to run {default}"
        )),
    }
}

/// The arguments of the `systemctl` call for `unit`.
pub fn systemctl_args(unit: &str) -> Vec<String> {
    [
        "show",
        "-p",
        "MainPID",
        "-p",
        "ExecMainStartTimestamp",
        "-p",
        "LoadState",
        "--",
        unit,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The arguments of the `docker` call for `container`.
pub fn docker_args(container: &str) -> Vec<String> {
    [
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        "--",
        container,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What `systemctl show` says of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// 0 when the unit is not running.
    pub pid: u32,
    pub started: Option<Millis>,
    /// `loaded`, `not-found`…
    pub load: String,
}

/// Reads `systemctl show`'s `KEY=value` lines (in any order).
pub fn parse_show(text: &str) -> Result<UnitState, String> {
    let mut pid = None;
    let mut started = None;
    let mut load = String::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("MainPID", v)) => pid = v.trim().parse::<u32>().ok(),
            Some(("ExecMainStartTimestamp", v)) => started = parse_systemd_time(v),
            Some(("LoadState", v)) => load = v.trim().to_string(),
            _ => {}
        }
    }
    let pid = pid.ok_or("systemctl show did not give MainPID")?;
    Ok(UnitState { pid, started, load })
}

/// `Wed 2026-12-02 10:00:00 UTC` (with an optional fraction of a second) as
/// systemd prints a timestamp in UTC; `None` if empty or another zone.
pub fn parse_systemd_time(text: &str) -> Option<Millis> {
    let mut parts = text.split_whitespace();
    let (_, day, clock, zone) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "UTC" || parts.next().is_some() {
        return None;
    }
    crate::liveness::parse_rfc3339(&format!("{day}T{clock}Z"))
}

/// The managed `keys` of a NUL-separated environment (`/proc/PID/environ`).
pub fn parse_environ(bytes: &[u8], keys: &[String]) -> BTreeMap<String, Secret> {
    let mut out = BTreeMap::new();
    for entry in bytes.split(|b| *b == 0) {
        let Some(eq) = entry.iter().position(|b| *b == b'=') else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(&entry[..eq]) else {
            continue;
        };
        if !keys.iter().any(|k| k == key) {
            continue;
        }
        // A value that is not UTF-8 cannot be the manifest's: kept as the
        // replacement characters it reads as, so it compares unequal.
        let value = Zeroizing::new(String::from_utf8_lossy(&entry[eq + 1..]).into_owned());
        out.insert(key.to_string(), Secret::from(value));
    }
    out
}

/// The managed `keys` of `docker inspect`'s `{{json .Config.Env}}`: a JSON
/// array of `"KEY=value"` strings (or `null`). Read by hand into zeroized
/// buffers; a malformed answer is an error without its text.
pub fn parse_docker_env(bytes: &[u8], keys: &[String]) -> Result<BTreeMap<String, Secret>, String> {
    let bad = || "docker inspect did not answer a list of variables".to_string();
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?.trim();
    let mut out = BTreeMap::new();
    if text == "null" {
        return Ok(out);
    }
    let mut chars = text.chars().peekable();
    if chars.next() != Some('[') {
        return Err(bad());
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        match chars.next() {
            Some(']') => break,
            Some('"') => {}
            _ => return Err(bad()),
        }
        let mut s = SecretBuf::with_capacity(64);
        loop {
            match chars.next().ok_or_else(bad)? {
                '"' => break,
                '\\' => match chars.next().ok_or_else(bad)? {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'u' => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            let d = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
                            code = code * 16 + d;
                        }
                        // Surrogate pairs (rare in variables) read as U+FFFD.
                        s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    c => s.push(c),
                },
                c => s.push(c),
            }
        }
        let entry = s.into_secret();
        if let Some((k, v)) = entry.expose().split_once('=') {
            if keys.iter().any(|m| m == k) {
                out.insert(k.to_string(), Secret::new(v.to_string()));
            }
        }
    }
    Ok(out)
}

/// Runs `program args`, stdin closed, in UTC: its stdout (zeroized: docker
/// prints values) or why it failed (the first line of stderr, neutralised).
async fn run(program: &str, args: &[String]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{program} did not answer within {}s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first: String = err.lines().next().unwrap_or("").chars().take(200).collect();
        return Err(format!(
            "{program} failed ({}){}",
            out.status,
            if first.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::neutral::text(&first))
            }
        ));
    }
    Ok(stdout)
}

/// What runs from the local env file `file`, for its managed `keys`.
pub async fn local(spec: &LiveSpec, file: &Path, keys: &[String]) -> Liveness {
    let mut runs = Vec::new();
    if let Some(unit) = &spec.unit {
        runs.push(local_unit(unit, file, keys).await);
    }
    if let Some(name) = &spec.container {
        runs.push(local_container(name, keys).await);
    }
    Liveness { runs }
}

fn restart(unit: &str) -> String {
    format!("restart {unit}")
}

/// A unit that is not running, or cannot be asked about.
fn unit_unknown(unit: &str, why: String) -> Runner {
    Runner::new(unit, restart(unit), Seen::Unknown(why))
}

async fn local_unit(unit: &str, file: &Path, keys: &[String]) -> Runner {
    let program = match program(SYSTEMCTL_ENV, "systemctl") {
        Ok(p) => p,
        Err(why) => return unit_unknown(unit, why),
    };
    let state = match run(&program, &systemctl_args(unit)).await {
        Ok(out) => parse_show(&String::from_utf8_lossy(&out)),
        Err(why) => Err(why),
    };
    let environ = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
    };
    unit_runner(unit, state, environ, mtime(file), keys)
}

/// The runner of a unit from what systemd said, its main process's
/// environment (read by `environ`, or why not) and the file's mtime.
fn unit_runner(
    unit: &str,
    state: Result<UnitState, String>,
    environ: impl FnOnce(u32) -> Result<Zeroizing<Vec<u8>>, String>,
    written: Option<Millis>,
    keys: &[String],
) -> Runner {
    let state = match state {
        Ok(s) => s,
        Err(why) => return unit_unknown(unit, format!("cannot ask systemd about {unit}: {why}")),
    };
    if state.load == "not-found" {
        return unit_unknown(unit, format!("systemd has no unit {unit}"));
    }
    if state.pid == 0 {
        return unit_unknown(unit, format!("{unit} is not running"));
    }
    let who = format!("{unit} (pid {})", state.pid);
    let seen = match environ(state.pid) {
        Ok(bytes) => Seen::Environment(parse_environ(&bytes, keys)),
        Err(e) => match (state.started, written) {
            (Some(started), Some(written)) => Seen::Times {
                started,
                written: keys.iter().map(|k| (k.clone(), written)).collect(),
                subject: "the file".into(),
                since: "started".into(),
            },
            _ => Seen::Unknown(format!(
                "the environment of {who} cannot be read ({e}), and systemd did not say when it started"
            )),
        },
    };
    Runner {
        who,
        action: restart(unit),
        seen,
        keys: None,
        handle: None,
    }
}

/// A file's modification time, to the second (systemd shows a start to the
/// second: a restart in the second of the write counts as after it).
pub fn mtime(file: &Path) -> Option<Millis> {
    let m = std::fs::metadata(file).ok()?.modified().ok()?;
    let secs = m.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(i64::try_from(secs).ok()? * 1000)
}

async fn local_container(name: &str, keys: &[String]) -> Runner {
    let out = match program(DOCKER_ENV, "docker") {
        Err(why) => Err(why),
        Ok(docker) => run(&docker, &docker_args(name)).await,
    };
    container_runner(name, out, keys)
}

/// The runner of a container from `docker inspect`'s answer (or why none).
fn container_runner(
    name: &str,
    out: Result<Zeroizing<Vec<u8>>, String>,
    keys: &[String],
) -> Runner {
    let who = format!("container {name}");
    let action = format!("recreate container {name}");
    let seen = match out {
        Ok(out) => match parse_docker_env(&out, keys) {
            Ok(env) => Seen::Environment(env),
            Err(why) => Seen::Unknown(why),
        },
        Err(why) => Seen::Unknown(format!("docker cannot tell about {who}: {why}")),
    };
    Runner::new(who, action, seen)
}

/// The script run on an `ssh_env` target's host (src/targets/scripts/live.sh).
pub const REMOTE_SCRIPT: &str = include_str!("scripts/live.sh");

/// What runs from the env file `path` on the host of `runner` (an
/// `ssh_env` target), read with one command, through `sudo -n` when
/// `sudo`. Nothing is said when the spec names nothing.
pub async fn remote(
    runner: &crate::remote::Runner,
    spec: &LiveSpec,
    sudo: bool,
    path: &str,
    keys: &[String],
) -> Liveness {
    if spec.is_empty() {
        return Liveness::default();
    }
    let programs = (
        program(SYSTEMCTL_ENV, "systemctl"),
        program(DOCKER_ENV, "docker"),
    );
    let (systemctl, docker) = match programs {
        (Ok(s), Ok(d)) => (s, d),
        (Err(why), _) | (_, Err(why)) => return unknown_all(spec, why),
    };
    let args = [
        systemctl.as_str(),
        docker.as_str(),
        path,
        spec.unit.as_deref().unwrap_or(""),
        spec.container.as_deref().unwrap_or(""),
    ];
    let out = match runner.sh(REMOTE_SCRIPT, &args, b"", sudo).await {
        Ok(out) if out.code == Some(0) => out,
        Ok(out) => {
            return unknown_all(
                spec,
                format!(
                    "the liveness check on the host failed: {}",
                    out.stderr_line()
                ),
            )
        }
        Err(e) => {
            return unknown_all(
                spec,
                format!("the liveness check on the host failed: {}", e.message),
            )
        }
    };
    let parts = parse_remote(&out.stdout);
    let mut runs = Vec::new();
    if let Some(unit) = &spec.unit {
        let state = match &parts.unit {
            Some((0, text)) => parse_show(text),
            Some((code, _)) => Err(format!("systemctl failed (exit {code})")),
            None => Err("the host did not answer".into()),
        };
        let environ = parts.environ;
        runs.push(unit_runner(
            unit,
            state,
            move |_| environ.ok_or_else(|| "permission denied".to_string()),
            parts.mtime,
            keys,
        ));
    }
    if let Some(name) = &spec.container {
        let out = parts
            .container
            .unwrap_or_else(|| Err("the host did not answer".into()));
        runs.push(container_runner(name, out, keys));
    }
    Liveness { runs }
}

/// Every runner of `spec` unknown, for `why`.
fn unknown_all(spec: &LiveSpec, why: String) -> Liveness {
    let mut runs = Vec::new();
    if let Some(unit) = &spec.unit {
        runs.push(unit_unknown(unit, why.clone()));
    }
    if let Some(name) = &spec.container {
        runs.push(Runner::new(
            format!("container {name}"),
            format!("recreate container {name}"),
            Seen::Unknown(why),
        ));
    }
    Liveness { runs }
}

/// The parts of [`REMOTE_SCRIPT`]'s answer.
#[derive(Default)]
struct RemoteParts {
    /// systemctl's exit code and output.
    unit: Option<(i32, String)>,
    /// The main process's environment, when readable.
    environ: Option<Zeroizing<Vec<u8>>>,
    mtime: Option<Millis>,
    /// docker's answer, or its first line of error.
    container: Option<Result<Zeroizing<Vec<u8>>, String>>,
}

fn parse_remote(stdout: &[u8]) -> RemoteParts {
    use base64::Engine as _;
    let decode = |b: &SecretBuf| {
        base64::engine::general_purpose::STANDARD
            .decode(b.as_str().as_bytes())
            .ok()
            .map(Zeroizing::new)
    };
    let text = String::from_utf8_lossy(stdout);
    let mut parts = RemoteParts::default();
    #[derive(PartialEq)]
    enum At {
        None,
        Unit,
        Environ,
        Container,
        ContainerError,
    }
    let mut at = At::None;
    let mut b64 = SecretBuf::default();
    let mut show = String::new();
    let mut error = String::new();
    let flush = |at: &At, b64: &mut SecretBuf, parts: &mut RemoteParts| {
        match at {
            At::Environ => parts.environ = decode(b64),
            At::Container => {
                parts.container =
                    Some(decode(b64).ok_or_else(|| "an answer that is not base64".into()))
            }
            _ => {}
        }
        *b64 = SecretBuf::default();
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            flush(&at, &mut b64, &mut parts);
            if at == At::Unit {
                if let Some((code, _)) = &parts.unit {
                    parts.unit = Some((*code, std::mem::take(&mut show)));
                }
            }
            if at == At::ContainerError {
                parts.container = Some(Err(std::mem::take(&mut error)));
            }
            let (head, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            at = match (head, arg) {
                ("unit", code) => {
                    parts.unit = Some((code.trim().parse().unwrap_or(-1), String::new()));
                    At::Unit
                }
                ("environ", "ok") => At::Environ,
                ("mtime", m) => {
                    parts.mtime = m.trim().parse::<i64>().ok().map(|s| s * 1000);
                    At::None
                }
                ("container", "ok") => At::Container,
                ("container", _) => At::ContainerError,
                _ => At::None,
            };
            continue;
        }
        match at {
            At::Unit => {
                show.push_str(line.trim_start());
                show.push('\n');
            }
            At::Environ | At::Container => b64.push_str(line.trim()),
            At::ContainerError if error.is_empty() => {
                error = crate::neutral::text(line.trim())
                    .chars()
                    .take(200)
                    .collect();
            }
            _ => {}
        }
    }
    parts
}

/// `doctor`: per runner of `live` (read with no keys), whether liveness
/// can be checked and how, or why not (unit not found or not running,
/// environment unreadable and no start time, docker unreachable).
pub fn doctor_of(live: &Liveness) -> Vec<super::Check> {
    live.runs
        .iter()
        .map(|r| super::Check {
            what: format!("liveness of {}", r.who),
            outcome: match &r.seen {
                Seen::Environment(_) => {
                    Ok("its environment is readable, values are compared exactly".into())
                }
                Seen::Times { .. } => Ok(
                    "its environment cannot be read; the file's modification time is compared with its start (root, or `sudo: true`, compares values)".into(),
                ),
                Seen::Down(why) | Seen::Unknown(why) => Err(TargetError::failed(why.clone())
                    .with_hint(
                        "check `unit:` / `container:`, that the unit runs, and that this user may read its environment (root or `sudo: true`) or use docker",
                    )),
            },
        })
        .collect()
}

/// `doctor` for a local env file: [`doctor_of`] what runs from it.
pub async fn local_checks(spec: &LiveSpec, file: &Path) -> Vec<super::Check> {
    doctor_of(&local(spec, file, &[]).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn systemctl_show_is_read_in_any_order() {
        let s = parse_show(
            "LoadState=loaded\nExecMainStartTimestamp=Wed 2026-12-02 10:00:05 UTC\nMainPID=812\n",
        )
        .unwrap();
        assert_eq!(s.pid, 812);
        assert_eq!(
            s.started,
            crate::liveness::parse_rfc3339("2026-12-02T10:00:05Z")
        );
        let s = parse_show("MainPID=0\nExecMainStartTimestamp=\nLoadState=not-found\n").unwrap();
        assert_eq!((s.pid, s.started, s.load.as_str()), (0, None, "not-found"));
        assert!(parse_show("nothing").is_err());
        assert_eq!(parse_systemd_time("Wed 2026-12-02 10:00:05 CET"), None);
        assert!(parse_systemd_time("Wed 2026-12-02 10:00:05.123456 UTC").is_some());
    }

    #[test]
    fn only_managed_keys_are_kept_from_an_environment() {
        let e = parse_environ(b"PATH=/bin\0A=x=y\0B=\0C\0", &keys(&["A", "B", "Z"]));
        assert_eq!(e.len(), 2);
        assert_eq!(e["A"].expose(), "x=y");
        assert_eq!(e["B"].expose(), "");
    }

    #[test]
    fn docker_config_env_is_read_exactly() {
        let e = parse_docker_env(
            br#"["PATH=/usr/bin","A=line\nnext \"q\" \u00e9\\","B=1"]"#,
            &keys(&["A", "Z"]),
        )
        .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e["A"].expose(), "line\nnext \"q\" \u{e9}\\");
        assert!(parse_docker_env(b"null", &keys(&["A"])).unwrap().is_empty());
        let err = parse_docker_env(b"[\"A=CANARY", &keys(&["A"])).unwrap_err();
        assert!(!err.contains("CANARY"), "{err}");
        assert!(parse_docker_env(b"{}", &keys(&["A"])).is_err());
    }

    #[test]
    fn the_remote_answer_is_split_into_its_parts() {
        use base64::Engine as _;
        let b = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
        let out = format!(
            "#unit 0\nMainPID=812\nExecMainStartTimestamp=Wed 2026-12-02 10:00:05 UTC\nLoadState=loaded\n#environ ok\n{}\n#mtime 1796205600\n#container fail\nCannot connect to the Docker daemon\n#end\n",
            b(b"A=1\0B=2\0")
        );
        let p = parse_remote(out.as_bytes());
        assert_eq!(parse_show(&p.unit.as_ref().unwrap().1).unwrap().pid, 812);
        assert_eq!(
            parse_environ(p.environ.as_ref().unwrap(), &keys(&["B"]))["B"].expose(),
            "2"
        );
        assert_eq!(p.mtime, Some(1_796_205_600_000));
        assert_eq!(
            p.container.unwrap().unwrap_err(),
            "Cannot connect to the Docker daemon"
        );
        let p = parse_remote(b"#unit 0\nMainPID=9\n#environ denied\n#mtime none\n#container ok\nWyJBPTEiXQ==\n#end\n");
        assert!(p.environ.is_none() && p.mtime.is_none());
        assert_eq!(p.container.unwrap().unwrap().as_slice(), br#"["A=1"]"#);
    }

    #[test]
    fn names_come_after_the_end_of_options() {
        let a = systemctl_args("-x.service");
        assert_eq!(
            a[a.len() - 2..],
            ["--".to_string(), "-x.service".to_string()]
        );
        let a = docker_args("app");
        assert_eq!(a[a.len() - 2..], ["--".to_string(), "app".to_string()]);
    }
}
