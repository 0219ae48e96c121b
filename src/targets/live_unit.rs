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
use crate::liveness::{Liveness, Millis, Runner, Seen};
use crate::manifest::{Fields, ManifestError};
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
    let environ = std::fs::read(format!("/proc/{}/environ", state.pid)).map(Zeroizing::new);
    let seen = match environ {
        Ok(bytes) => Seen::Environment(parse_environ(&bytes, keys)),
        Err(e) => match (state.started, mtime(file)) {
            (Some(started), Some(written)) => Seen::Times {
                started,
                written: keys.iter().map(|k| (k.clone(), written)).collect(),
                subject: "the file".into(),
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
    let who = format!("container {name}");
    let action = format!("recreate container {name}");
    let seen = match program(DOCKER_ENV, "docker") {
        Err(why) => Seen::Unknown(why),
        Ok(docker) => match run(&docker, &docker_args(name)).await {
            Ok(out) => match parse_docker_env(&out, keys) {
                Ok(env) => Seen::Environment(env),
                Err(why) => Seen::Unknown(why),
            },
            Err(why) => Seen::Unknown(format!("docker cannot tell about {who}: {why}")),
        },
    };
    Runner::new(who, action, seen)
}

/// `doctor`: whether liveness can be checked for the local env file, and why
/// not: the unit found and its environment readable, docker reachable.
pub async fn local_checks(spec: &LiveSpec) -> Vec<super::Check> {
    let mut out = Vec::new();
    if let Some(unit) = &spec.unit {
        let outcome = async {
            let program = program(SYSTEMCTL_ENV, "systemctl")?;
            let out = run(&program, &systemctl_args(unit)).await?;
            let s = parse_show(&String::from_utf8_lossy(&out))?;
            if s.load == "not-found" {
                return Err(format!("systemd has no unit {unit}"));
            }
            if s.pid == 0 {
                return Err(format!("{unit} is not running"));
            }
            match std::fs::File::open(format!("/proc/{}/environ", s.pid)) {
                Ok(_) => Ok(format!(
                    "{unit} (pid {}): its environment is readable, values are compared exactly",
                    s.pid
                )),
                Err(e) if s.started.is_some() => Ok(format!(
                    "{unit} (pid {}): its environment cannot be read ({e}); the file's modification time is compared with its start",
                    s.pid
                )),
                Err(e) => Err(format!(
                    "the environment of {unit} (pid {}) cannot be read ({e}) and systemd does not say when it started",
                    s.pid
                )),
            }
        }
        .await;
        out.push(super::Check {
            what: format!("liveness of {unit}"),
            outcome: outcome.map_err(|why| {
                TargetError::failed(why).with_hint(
                    "run as root (or as the unit's user) to compare values; check `unit:`",
                )
            }),
        });
    }
    if let Some(name) = &spec.container {
        let outcome = async {
            let docker = program(DOCKER_ENV, "docker")?;
            let out = run(&docker, &docker_args(name)).await?;
            parse_docker_env(&out, &[])?;
            Ok(format!("docker answers about container {name}"))
        }
        .await;
        out.push(super::Check {
            what: format!("liveness of container {name}"),
            outcome: outcome.map_err(|why: String| {
                TargetError::failed(why).with_hint(
                    "check that docker runs and that this user may use it (the docker group), and `container:`",
                )
            }),
        });
    }
    out
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
