//! The cross-target leak suite (issue #9): one manifest with every target
//! kind at once (a local env file, an env file over the test sshd, the
//! keychain through the stand-in `security` here and over sshd, a Railway
//! service on the test server), canary values and a canary token, and every
//! command on success and on each failure path of each target.
//!
//! After every run, no canary may appear in: stdout and stderr (except the
//! stdout of `get`, the one command that prints a value: asserted to print
//! it), any file left in the sandbox other than the targets' own files
//! (saved plans, temp files, step summaries, manifests edited by import,
//! set, rotate, rekey: all ciphertext), files left next to the remote env
//! file, the remote command log and sshd's log, the stand-in's argv log,
//! the Railway test server's log except the values in the bodies of writes
//! (the request line, every header but the auth header, the query
//! documents, operation names and all other variables are checked), and
//! the notification listener's payloads (its request line carries the
//! webhook's secret path, nothing else may).
//!
//! Every canary value starts with `CANARY`, and no name, path or id in the
//! setup does, so the bare word `CANARY` (and its hex form) is searched too:
//! a value printed escaped, quoted or cut in half is still found. Values
//! without the prefix (rotated ones) are added once `get` has shown them,
//! and a final sweep checks every output again against all of them.

use crate::support;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use support::cli::{secretsync_cmd, Out, Sandbox};
use support::railway_server::{Fault, RailwayServer};
use support::sshd::{ensure_user, is_root, Sshd};

const V1: &str = "CANARY-V1-plain-7f3a";
const V2: &str = "CANARY-V2-\"q'uote $HOME \\ `x` %s";
const V3: &str = "CANARY-V3-line1\nCANARY-V3-line2";
const PLAIN: &str = "CANARY-V4-plain-config";
const SET: &str = "CANARY-V5-set-via-stdin";
const CR_VALUE: &str = "CANARY-V6-carriage\rreturn";
const TOKEN: &str = "CANARY-TOKEN-account-5e1d";
const EXPIRED: &str = "CANARY-TOKEN-expired-77c0";
const WEBHOOK: &str = "CANARY-WEBHOOK-path-0b0b";

const PROJECT: &str = "p-0f1e2d3c";
const PROD: &str = "env-prod-1";
const API: &str = "svc-api-1";
const KC_PASSWORD: &str = "remote-keychain-pw";

/// A webhook receiver on 127.0.0.1: logs each request as received and
/// answers with `status`.
struct Listener {
    port: u16,
    status: Arc<AtomicU16>,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (st, lg) = (status.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let len: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
                lg.lock().unwrap().push((head, body));
                let code = st.load(Ordering::SeqCst);
                let _ = c.write_all(
                    format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        Listener { port, status, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/{WEBHOOK}", self.port)
    }
}

/// How the manifest differs from the normal one in a failure case.
#[derive(Clone, Copy, Default)]
struct Variant {
    /// The SSH user of the `vps` env file (root unless set).
    ssh_user: Option<&'static str>,
    sudo: bool,
    /// The multi-line value is sent to the keychains too (they cannot hold it).
    newline_to_keychains: bool,
    /// A value with a CR is sent to the env files (they cannot hold it).
    cr_to_env_files: bool,
}

struct World {
    sb: Sandbox,
    sshd: Sshd,
    railway: RailwayServer,
    notify: Listener,
    /// Holds the env file over SSH and the keychain over SSH.
    remote: tempfile::TempDir,
    path_env: String,
    needles: RefCell<Vec<String>>,
    /// Every output so far (what, stdout, stderr, stdout may hold a value).
    outputs: RefCell<Vec<(String, Out, bool)>>,
    runs: Cell<usize>,
    checks: Cell<usize>,
    railway_seen: Cell<usize>,
    notify_seen: Cell<usize>,
}

fn hex_upper(s: &str) -> String {
    hex::encode_upper(s)
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        let sshd = Sshd::start();
        let railway = RailwayServer::start();
        railway.add_project(PROJECT, "shop");
        railway.add_environment(PROJECT, PROD, "production");
        railway.add_service(PROJECT, API, "api");
        railway.add_account_token(TOKEN);
        railway.add_expired_token(EXPIRED);
        let remote = tempfile::Builder::new()
            .prefix("ss-leaks-remote")
            .tempdir()
            .unwrap();
        // The SSH user without sudo must reach the folder (not the file).
        std::fs::set_permissions(remote.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = sb.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(standin(), bin.join("security")).unwrap();
        let path_env = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let w = World {
            sb,
            sshd,
            railway,
            notify: Listener::start(),
            remote,
            path_env,
            needles: RefCell::new(Vec::new()),
            outputs: RefCell::new(Vec::new()),
            runs: Cell::new(0),
            checks: Cell::new(0),
            railway_seen: Cell::new(0),
            notify_seen: Cell::new(0),
        };
        for v in [V1, V2, V3, PLAIN, SET, CR_VALUE, TOKEN, EXPIRED, WEBHOOK] {
            w.add_needle(v);
        }
        for old in [
            "CANARY-OLD-local",
            "CANARY-UNMANAGED-local",
            "CANARY-OLD-remote",
            "CANARY-UNMANAGED-remote",
            "CANARY-OLD-railway",
            "CANARY-UNMANAGED-railway",
            "CANARY-OLD-kc",
            "CANARY-OLD-kc-remote",
            "CANARY-junk",
            "CANARY-unclosed",
        ] {
            w.add_needle(old);
        }
        w.add_needle("CANARY");
        w.add_needle(&hex::encode("CANARY"));
        w.add_needle(&hex_upper("CANARY"));
        // The stand-in's own encoding of non-printable bytes.
        w.add_needle("\\103\\101\\116\\101\\122\\131");
        let (code, _, err) = security(
            &["create-keychain", "-p", KC_PASSWORD, &w.remote_keychain()],
            &w.sb,
        );
        assert_eq!(code, 0, "{err}");
        w.write_manifest("secrets.yaml", Variant::default());
        w
    }

    fn add_needle(&self, v: &str) {
        let mut n = self.needles.borrow_mut();
        for part in std::iter::once(v).chain(v.lines()) {
            if !part.is_empty() && !n.iter().any(|x| x == part) {
                n.push(part.to_string());
            }
        }
    }

    fn remote_file(&self) -> PathBuf {
        self.remote.path().join("app.env")
    }

    fn remote_keychain(&self) -> String {
        self.remote
            .path()
            .join("remote.keychain-db")
            .display()
            .to_string()
    }

    fn manifest(&self, v: Variant) -> String {
        let sb = &self.sb;
        let user = v.ssh_user.unwrap_or("root");
        let env_files = "local, vps";
        let keychains = "mac, macssh";
        let mut m = sb.header();
        // `format: shell`: it holds every value (the canaries have quotes,
        // `$` and backticks the portable default refuses).
        m.push_str(
            "targets:\n  local: { type: env_file, path: local.env, prune: true, format: shell }\n",
        );
        m.push_str("  vps:\n    type: ssh_env\n    format: shell\n");
        m.push_str(&self.sshd.yaml(user, 4));
        m.push_str(&format!("    path: {}\n", self.remote_file().display()));
        if v.sudo {
            m.push_str("    sudo: true\n");
        }
        m.push_str("  mac:\n    type: keychain\n    service: leaks\n");
        m.push_str("  macssh:\n    type: keychain\n");
        m.push_str(&self.sshd.yaml("root", 4));
        m.push_str(&format!(
            "    service: leaks\n    keychain: {}\n",
            self.remote_keychain(),
        ));
        m.push_str(&format!(
            "  api:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: api\n    prune: true\n"
        ));
        m.push_str("secrets:\n");
        let all = format!("{env_files}, {keychains}, api");
        let m_targets = if v.newline_to_keychains {
            all.clone()
        } else {
            format!("{env_files}, api")
        };
        for (key, targets, value) in [
            ("A", all.as_str(), V1),
            ("B", all.as_str(), V2),
            ("M", m_targets.as_str(), V3),
        ] {
            m.push_str(&format!(
                "  {key}:\n    targets: [{targets}]\n    encrypted: |\n{}",
                sb.encrypted(value, 6)
            ));
        }
        m.push_str(&format!("  C:\n    targets: [{all}]\n    value: {PLAIN}\n"));
        if v.cr_to_env_files {
            m.push_str(&format!(
                "  R:\n    targets: [{env_files}]\n    encrypted: |\n{}",
                sb.encrypted(CR_VALUE, 6)
            ));
        }
        m
    }

    fn write_manifest(&self, name: &str, v: Variant) {
        self.sb.write(name, &self.manifest(v));
    }

    /// Puts old values and unmanaged keys on every target, so that the next
    /// plan has adds, changes and deletes everywhere.
    fn reset_drift(&self) {
        let local = self.sb.path("local.env");
        if local.is_dir() {
            std::fs::remove_dir(&local).unwrap();
        }
        self.sb.write(
            "local.env",
            "# local\nA=\"CANARY-OLD-local\"\nEXTRA=CANARY-UNMANAGED-local\n",
        );
        std::fs::write(
            self.remote_file(),
            "# remote\nA='CANARY-OLD-remote'\nKEEP=CANARY-UNMANAGED-remote\n",
        )
        .unwrap();
        std::fs::set_permissions(self.remote_file(), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        for k in ["A", "B", "M", "C"] {
            self.railway
                .set_var(PROJECT, PROD, Some(API), k, "CANARY-OLD-railway");
        }
        self.railway.set_var(
            PROJECT,
            PROD,
            Some(API),
            "EXTRA",
            "CANARY-UNMANAGED-railway",
        );
        let lines = |kc: &str, value: &str| -> String {
            ["A", "B", "C"]
                .iter()
                .map(|a| format!("add-generic-password -U -a {a} -s leaks -w \"{value}\" {kc}\n"))
                .collect()
        };
        for (kc, value) in [
            (String::new(), "CANARY-OLD-kc"),
            (
                format!("\"{}\"", self.remote_keychain()),
                "CANARY-OLD-kc-remote",
            ),
        ] {
            let (code, _, err) = security_stdin(&["-i"], lines(&kc, value).as_bytes(), &self.sb);
            assert_eq!(code, 0, "{err}");
            assert!(!err.contains("returned"), "{err}");
        }
    }

    /// Runs the binary with the world's environment, `env` on top.
    fn run_full(
        &self,
        what: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&[u8]>,
    ) -> Out {
        let url = self.railway.url();
        let argv_log = self.sb.path("argv.log");
        let mut cmd = secretsync_cmd(self.sb.dir.path());
        cmd.args(args)
            .arg("--identity")
            .arg(&self.sb.identity)
            .env("PATH", &self.path_env)
            // Here and on the SSH host (this machine): the stand-in.
            .env("SECRETSYNC_SECURITY", self.sb.path("bin/security"))
            .env("SECURITY_STANDIN_ARGV_LOG", &argv_log)
            .env("SECRETSYNC_RAILWAY_ENDPOINT", &url)
            .env("RAILWAY_API_TOKEN", TOKEN)
            .env("SECRETSYNC_RAILWAY_BACKOFF", "0.01")
            .env("SECRETSYNC_RAILWAY_TIMEOUT", "2")
            .env("SECRETSYNC_RAILWAY_MAX_WAIT", "3")
            // The most a run can be asked to say.
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "full");
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let started = std::time::Instant::now();
        let out = match stdin {
            None => support::cli::run(cmd),
            Some(input) => {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(input).unwrap();
                let o = child.wait_with_output().unwrap();
                Out {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                }
            }
        };
        self.runs.set(self.runs.get() + 1);
        if std::env::var_os("LEAKS_TIMING").is_some() {
            eprintln!(
                "{:>6.2}s {what}: {}",
                started.elapsed().as_secs_f64(),
                args.join(" ")
            );
        }
        let is_get = args.contains(&"get");
        let label = format!("{what}: secretsync {}", args.join(" "));
        if !is_get {
            self.check(&format!("stdout of {label}"), out.stdout.as_bytes());
        }
        self.check(&format!("stderr of {label}"), out.stderr.as_bytes());
        self.check_surroundings(&label);
        self.outputs.borrow_mut().push((label, out.clone(), is_get));
        out
    }

    fn run(&self, what: &str, args: &[&str]) -> Out {
        self.run_full(what, args, &[], None)
    }

    fn run_env(&self, what: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.run_full(what, args, env, None)
    }

    /// Panics if any needle is in `text`.
    fn check(&self, what: &str, text: &[u8]) {
        let hay = String::from_utf8_lossy(text);
        for n in self.needles.borrow().iter() {
            self.checks.set(self.checks.get() + 1);
            assert!(!hay.contains(n.as_str()), "LEAK: {n:?} in {what}:\n{hay}");
        }
    }

    /// Every place a run can leave something behind, except the targets.
    fn check_surroundings(&self, label: &str) {
        let targets_own = |p: &Path| {
            p.ends_with("local.env")
                || p.ends_with("id.txt")
                || p.components().any(|c| c.as_os_str() == "Keychains")
        };
        let mut files = Vec::new();
        walk(self.sb.dir.path(), &mut files);
        walk(self.remote.path(), &mut files);
        for (path, bytes) in files {
            if targets_own(&path)
                || path == self.remote_file()
                || path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("remote.keychain-db"))
                || path.starts_with(self.remote.path())
                    && path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".standin."))
            {
                continue;
            }
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if path.extension().is_some_and(|e| e == "yaml") {
                // A manifest holds the plain `value:` in clear, by design;
                // everything else in it must be ciphertext.
                text = text.replace(PLAIN, "");
            }
            self.check(
                &format!("file {} after {label}", path.display()),
                text.as_bytes(),
            );
        }
        self.check(
            &format!("the sshd command log after {label}"),
            self.sshd.commands().as_bytes(),
        );
        self.check(
            &format!("sshd's log after {label}"),
            self.sshd.log().as_bytes(),
        );
        let requests = self.railway.requests();
        for r in &requests[self.railway_seen.get().min(requests.len())..] {
            let head: String = r
                .head
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    !l.starts_with("authorization:") && !l.starts_with("project-access-token:")
                })
                .collect::<Vec<_>>()
                .join("\n");
            self.check(
                &format!("a Railway request line or header ({label})"),
                head.as_bytes(),
            );
            // The body: every value of a variable written is the one field
            // meant to carry a value; the rest is checked.
            let mut body: serde_json::Value =
                serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body.clone()));
            if let Some(vars) = body
                .pointer_mut("/variables/upsert/variables")
                .and_then(|v| v.as_object_mut())
            {
                for v in vars.values_mut() {
                    *v = serde_json::Value::Null;
                }
            }
            self.check(
                &format!("a Railway request body ({label})"),
                body.to_string().as_bytes(),
            );
            self.check(
                &format!("a Railway query document ({label})"),
                r.query.as_bytes(),
            );
            // The token itself travels in the auth header only.
            assert!(
                !r.body.contains(TOKEN) && !r.body.contains(EXPIRED),
                "token in a body"
            );
        }
        self.railway_seen.set(requests.len());
        let log = self.notify.log.lock().unwrap().clone();
        for (head, body) in &log[self.notify_seen.get()..] {
            let first = head.lines().next().unwrap_or("");
            assert!(
                first.contains(WEBHOOK),
                "the webhook's path is where it belongs: {first}"
            );
            let rest: String = head.lines().skip(1).collect::<Vec<_>>().join("\n");
            self.check(
                &format!("a notification's headers ({label})"),
                rest.as_bytes(),
            );
            self.check(&format!("a notification's body ({label})"), body.as_bytes());
        }
        self.notify_seen.set(log.len());
    }

    fn gh_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            (
                "GITHUB_STEP_SUMMARY",
                self.sb.path("step-summary.md").display().to_string(),
            ),
        ]
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            walk(&p, out);
        } else if meta.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
}

fn standin() -> PathBuf {
    support::security_standin()
}

fn security(args: &[&str], sb: &Sandbox) -> (i32, String, String) {
    security_stdin(args, b"", sb)
}

/// Runs the stand-in with HOME at the sandbox (its default keychain).
fn security_stdin(args: &[&str], stdin: &[u8], sb: &Sandbox) -> (i32, String, String) {
    let mut child = std::process::Command::new(standin())
        .args(args)
        .env("HOME", sb.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn env_refs<'a>(env: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Asserts the run ended with `code` and said `expect` (stdout or stderr).
#[track_caller]
fn expect(out: &Out, code: i32, says: &str) {
    assert_eq!(out.code, code, "{}", out.all());
    assert!(
        out.all().contains(says),
        "expected {says:?} in:\n{}",
        out.all()
    );
}

/// One failure path: what breaks, how it is undone, what the plan must say.
struct Failure {
    name: &'static str,
    /// The format of the apply report: text and JSON alternate over the paths.
    apply_format: &'static str,
    variant: Variant,
    env: Vec<(&'static str, String)>,
    says: &'static str,
    /// Whether `doctor` sees the problem (it does not check values).
    doctor_fails: bool,
    setup: Box<dyn Fn(&mut World)>,
    teardown: Box<dyn Fn(&mut World)>,
}

fn nothing() -> Box<dyn Fn(&mut World)> {
    Box::new(|_| {})
}

fn world() -> World {
    assert!(
        is_root(),
        "the leak suite creates an SSH test user: run it as root (CI does)"
    );
    ensure_user("ss-nosudo", false);
    let w = World::new();
    w.reset_drift();
    w
}

/// Checks every output again with every needle (values learnt late, such
/// as rotated ones, included), and the places around, then prints the figures.
fn final_sweep(w: &World, suite: &str) {
    let outputs = w.outputs.borrow().clone();
    for (label, out, is_get) in &outputs {
        if !is_get {
            w.check(
                &format!("stdout of {label} (final sweep)"),
                out.stdout.as_bytes(),
            );
        }
        w.check(
            &format!("stderr of {label} (final sweep)"),
            out.stderr.as_bytes(),
        );
    }
    w.railway_seen.set(0);
    w.notify_seen.set(0);
    w.check_surroundings("the final sweep");
    eprintln!(
        "leak suite, {suite}: {} runs of secretsync, {} canary checks ({} needles at the end), 0 leaks",
        w.runs.get(),
        w.checks.get(),
        w.needles.borrow().len()
    );
}

/// Every command, every format and verbosity, on success.
#[test]
fn no_canary_leaks_from_any_command_on_success() {
    let w = world();

    // ---------------------------------------------------------------- plan
    expect(&w.run("plan", &["plan"]), 0, "to change");
    let out = w.run("plan", &["plan", "-v"]);
    expect(&out, 0, "keychain service leaks");
    assert!(out.stdout.contains("<redacted"), "{}", out.stdout);
    expect(
        &w.run("plan", &["plan", "-vv", "--color", "always"]),
        0,
        "Plan:",
    );
    expect(&w.run("plan", &["plan", "--detailed-exitcode"]), 2, "Plan:");
    expect(
        &w.run("plan", &["plan", "--format", "json"]),
        0,
        "\"format_version\"",
    );
    expect(
        &w.run("plan", &["plan", "--format", "markdown"]),
        0,
        "### secretsync plan",
    );
    let q = w.run("plan", &["plan", "-q"]);
    assert_eq!((q.code, q.stdout.as_str()), (0, ""));
    let gh = w.gh_env();
    expect(
        &w.run_env("plan", &["plan", "-v"], &env_refs(&gh)),
        0,
        "::warning title=",
    );
    expect(
        &w.run_env("plan", &["plan", "--format", "json"], &env_refs(&gh)),
        0,
        "::warning title=",
    );
    let summary = std::fs::read_to_string(w.sb.path("step-summary.md")).unwrap();
    assert!(summary.contains("### secretsync plan"), "{summary}");
    let url = w.notify.url();
    expect(&w.run("plan", &["plan", "--notify", &url]), 0, "Plan:");
    {
        let log = w.notify.log.lock().unwrap();
        assert_eq!(log.len(), 1, "one notification");
        assert!(log[0].1.contains("drift in"), "{}", log[0].1);
    }
    // A webhook that fails: the error names the host, not the secret path.
    w.notify.status.store(500, Ordering::SeqCst);
    expect(
        &w.run("plan", &["plan", "--notify", &url]),
        1,
        "answered HTTP 500",
    );
    w.notify.status.store(200, Ordering::SeqCst);

    // ---------------------------------------------------------------- doctor
    for format in ["text", "json", "markdown"] {
        expect(
            &w.run("doctor", &["doctor", "-v", "--format", format]),
            0,
            "api",
        );
    }

    // -------------------------------------------------- saved plans, apply
    expect(
        &w.run("plan", &["plan", "--out", "saved.plan"]),
        0,
        "saved the plan",
    );
    assert!(w.sb.path("saved.plan").exists());
    expect(&w.run("apply", &["apply"]), 1, "not a terminal");
    // The target changed after the plan was saved: refused, nothing written.
    w.sb.write(
        "local.env",
        "A=\"CANARY-OLD-local\"\nEXTRA=CANARY-changed-since\n",
    );
    w.railway
        .set_var(PROJECT, PROD, Some(API), "A", "CANARY-OLD-railway-changed");
    expect(&w.run("apply", &["apply", "saved.plan"]), 1, "stale");
    assert!(w.sb.read("local.env").contains("CANARY-changed-since"));
    w.reset_drift();
    expect(
        &w.run("plan", &["plan", "--out", "saved.plan"]),
        0,
        "saved the plan",
    );
    expect(
        &w.run("apply", &["apply", "saved.plan", "-v"]),
        0,
        "read back and verified",
    );
    expect(
        &w.run("plan", &["plan", "--detailed-exitcode"]),
        0,
        "in sync",
    );
    // The values did land everywhere (the positive control of the checks).
    assert!(w.sb.read("local.env").contains("A=CANARY-V1-plain-7f3a\n"));
    assert!(std::fs::read_to_string(w.remote_file())
        .unwrap()
        .contains("CANARY-V3-line1\nCANARY-V3-line2"));
    assert_eq!(
        w.railway.vars(PROJECT, PROD, Some(API)).get("B"),
        Some(&Some(V2.to_string()))
    );
    assert!(!w
        .railway
        .vars(PROJECT, PROD, Some(API))
        .contains_key("EXTRA"));
    for kc in [
        w.sb.path("Library/Keychains/login.keychain-db")
            .display()
            .to_string(),
        w.remote_keychain(),
    ] {
        let (code, _, err) = security(
            &["find-generic-password", "-a", "A", "-s", "leaks", "-g", &kc],
            &w.sb,
        );
        assert_eq!(
            (code, err.as_str()),
            (0, format!("password: \"{V1}\"\n").as_str())
        );
    }
    for (args, env) in [
        (vec!["apply", "--auto-approve"], vec![]),
        (vec!["apply", "--auto-approve", "-vv"], vec![]),
        (vec!["apply", "--yes", "--format", "json"], w.gh_env()),
        (
            vec!["apply", "--auto-approve", "--format", "markdown"],
            w.gh_env(),
        ),
    ] {
        w.reset_drift();
        expect(&w.run_env("apply", &args, &env_refs(&env)), 0, "");
    }
    let again = w.run("apply", &["apply", "--auto-approve"]);
    expect(
        &again,
        0,
        "Apply: 0 targets applied and verified, 5 in sync, 0 failed.",
    );

    // ------------------------------------------- get: the one that prints
    for (key, value) in [("A", V1), ("B", V2), ("M", V3), ("C", PLAIN)] {
        let got = w.run("get (positive control)", &["get", key]);
        assert_eq!((got.code, got.stdout.as_str()), (0, value));
    }

    // ------------------------------------------------------------ import
    w.reset_drift();
    let main = w.sb.read("secrets.yaml");
    w.sb.write("import.yaml", &main);
    for (from, keys) in [
        ("local", vec![]),
        ("vps", vec![]),
        ("api", vec![]),
        ("mac", vec!["A", "B"]),
        ("macssh", vec!["A", "C"]),
    ] {
        let mut args = vec!["-f", "import.yaml", "import", "--from", from, "--overwrite"];
        args.extend(keys);
        expect(&w.run("import", &args), 0, "imported");
    }
    expect(
        &w.run(
            "import",
            &["-f", "import.yaml", "import", "--from", "local"],
        ),
        0,
        "skipped",
    );
    expect(
        &w.run(
            "import",
            &["-f", "import.yaml", "import", "--from", "mac", "NOPE"],
        ),
        1,
        "not on the target: NOPE",
    );
    // What was imported is the targets' values, stored encrypted.
    for (key, value) in [
        ("A", "CANARY-OLD-kc-remote"),
        ("EXTRA", "CANARY-UNMANAGED-railway"),
        ("KEEP", "CANARY-UNMANAGED-remote"),
    ] {
        let got = w.run("get (positive control)", &["-f", "import.yaml", "get", key]);
        assert_eq!((got.code, got.stdout.as_str()), (0, value));
    }

    // ------------------------------------------ set, rotate, recipients
    w.sb.write("keys.yaml", &main);
    fn with<'a>(rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["-f", "keys.yaml"];
        a.extend_from_slice(rest);
        a
    }
    expect(
        &w.run_full(
            "set",
            &with(&["set", "S", "--stdin", "-t", "local", "-t", "api"]),
            &[],
            Some(format!("{SET}\n").as_bytes()),
        ),
        0,
        "added to",
    );
    expect(
        &w.run_full(
            "set",
            &with(&["set", "A", "--stdin"]),
            &[],
            Some(b"CANARY-V1-replaced\n"),
        ),
        0,
        "replaced in",
    );
    w.add_needle("CANARY-V1-replaced");
    // B's value has spaces and quotes: not random-looking, so rotate is told how (#25).
    expect(
        &w.run("rotate", &with(&["rotate", "B"])),
        1,
        "refusing to replace `B`",
    );
    expect(
        &w.run(
            "rotate",
            &with(&["rotate", "B", "--generate", "chars=40,alphabet=alnum"]),
        ),
        0,
        "replaced in",
    );
    expect(
        &w.run(
            "rotate",
            &with(&[
                "rotate",
                "G",
                "-t",
                "vps",
                "--bytes",
                "32",
                "--charset",
                "base64",
            ]),
        ),
        0,
        "added to",
    );
    expect(
        &w.run(
            "rotate",
            &with(&[
                "rotate",
                "H",
                "-t",
                "mac",
                "--charset",
                "ascii",
                "--length",
                "64",
            ]),
        ),
        0,
        "added to",
    );
    for key in ["B", "G", "H", "S"] {
        let got = w.run("get (positive control)", &with(&["get", key]));
        assert_eq!(got.code, 0);
        assert!(!got.stdout.is_empty());
        if key == "S" {
            assert_eq!(got.stdout, SET);
        }
        // A rotated value has no prefix: it becomes a needle now, and the
        // final sweep checks the earlier outputs for it.
        w.add_needle(&got.stdout);
    }
    let other = age::x25519::Identity::generate().to_public().to_string();
    expect(
        &w.run("recipients", &with(&["recipients", "list"])),
        0,
        "age1",
    );
    expect(
        &w.run("recipients", &with(&["recipients", "add", &other])),
        0,
        "re-encrypted",
    );
    expect(
        &w.run("recipients", &with(&["recipients", "remove", &other])),
        0,
        "re-encrypted",
    );
    expect(&w.run("rekey", &with(&["rekey"])), 0, "re-encrypted");
    expect(&w.run("plan", &with(&["plan", "-v"])), 0, "Plan:");
    expect(
        &w.run("apply", &with(&["apply", "--auto-approve", "-v"])),
        0,
        "verified",
    );
    for shell in ["bash", "zsh", "fish"] {
        expect(
            &w.run("completions", &["completions", shell]),
            0,
            "secretsync",
        );
    }

    final_sweep(&w, "every command on success");
}

/// Each failure path of each target, one test each on a world of its own:
/// plan (text, notification, GitHub Actions), plan as JSON, apply and doctor;
/// then the fault is undone, a run converges, and a final sweep finds no canary.
fn failure_path(f: Failure) {
    let mut w = world();
    let url = w.notify.url();
    w.write_manifest("secrets.yaml", f.variant);
    (f.setup)(&mut w);
    let mut env = f.env.clone();
    let what = f.name;
    env.extend(w.gh_env());
    let notified = w.notify.log.lock().unwrap().len();
    let plan = w.run_env(what, &["plan", "-v", "--notify", &url], &env_refs(&env));
    expect(&plan, 1, f.says);
    assert!(
        plan.stderr.contains("::error title="),
        "{what}: {}",
        plan.stderr
    );
    assert_eq!(w.notify.log.lock().unwrap().len(), notified + 1, "{what}");
    let json = w.run_env(what, &["plan", "--format", "json"], &env_refs(&env));
    assert_eq!(json.code, 1, "{what}: {}", json.all());
    assert!(
        json.stderr.contains("::error title="),
        "{what}: {}",
        json.stderr
    );
    let apply = w.run_env(
        what,
        &["apply", "--auto-approve", "-vv", "--format", f.apply_format],
        &env_refs(&env),
    );
    expect(&apply, 1, f.says);
    let doctor = w.run_env(what, &["doctor", "--format", "json"], &env_refs(&env));
    assert_eq!(
        doctor.code,
        i32::from(f.doctor_fails),
        "{what}: {}",
        doctor.all()
    );
    (f.teardown)(&mut w);

    w.write_manifest("secrets.yaml", Variant::default());
    w.reset_drift();
    expect(
        &w.run("after the faults", &["apply", "--auto-approve"]),
        0,
        "verified",
    );
    expect(
        &w.run("after the faults", &["plan", "--detailed-exitcode"]),
        0,
        "in sync",
    );

    final_sweep(&w, &format!("failure path \"{what}\""));
}

#[test]
fn failure_sshd_stopped() {
    failure_path(Failure {
        name: "sshd stopped",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![],
        says: "connection refused",
        doctor_fails: true,
        setup: Box::new(|w| w.sshd.stop()),
        teardown: Box::new(|w| w.sshd.restart()),
    });
}

#[test]
fn failure_host_key_changed() {
    failure_path(Failure {
        name: "host key changed",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![],
        says: "host key",
        doctor_fails: true,
        setup: Box::new(|w| w.sshd.change_host_key()),
        teardown: Box::new(|w| {
            std::fs::write(&w.sshd.known_hosts, w.sshd.known_hosts_line(w.sshd.port)).unwrap()
        }),
    });
}

#[test]
fn failure_sudo_refused() {
    failure_path(Failure {
        name: "sudo refused",
        apply_format: "text",
        variant: Variant {
            ssh_user: Some("ss-nosudo"),
            sudo: true,
            ..Variant::default()
        },
        env: vec![],
        says: "needs a password",
        doctor_fails: true,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_remote_env_file_unreadable() {
    failure_path(Failure {
        name: "remote env file unreadable",
        apply_format: "json",
        variant: Variant {
            ssh_user: Some("ss-nosudo"),
            ..Variant::default()
        },
        env: vec![],
        says: "not readable by the SSH user",
        doctor_fails: true,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_env_files_are_binary_junk() {
    failure_path(Failure {
        name: "env files are binary junk (invalid UTF-8)",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![],
        says: "UTF-8",
        doctor_fails: true,
        setup: Box::new(|w| {
            let junk = b"A=CANARY-junk\xff\xfe\x00\x01\nB=\"CANARY-junk\"\n";
            std::fs::write(w.sb.path("local.env"), junk).unwrap();
            std::fs::write(w.remote_file(), junk).unwrap();
        }),
        teardown: nothing(),
    });
}

#[test]
fn failure_env_files_do_not_parse() {
    failure_path(Failure {
        name: "env files do not parse",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![],
        says: "never closed",
        doctor_fails: true,
        setup: Box::new(|w| {
            let text = "A=1\nB=\"CANARY-unclosed value\n";
            std::fs::write(w.sb.path("local.env"), text).unwrap();
            std::fs::write(w.remote_file(), text).unwrap();
        }),
        teardown: nothing(),
    });
}

#[test]
fn failure_local_env_file_is_a_directory() {
    failure_path(Failure {
        name: "local env file is a directory",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![],
        says: "is a directory",
        doctor_fails: true,
        setup: Box::new(|w| {
            std::fs::remove_file(w.sb.path("local.env")).unwrap();
            std::fs::create_dir(w.sb.path("local.env")).unwrap();
        }),
        teardown: nothing(),
    });
}

#[test]
fn failure_keychains_locked() {
    failure_path(Failure {
        name: "keychains locked",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![],
        says: "User interaction is not allowed",
        doctor_fails: true,
        setup: Box::new(|w| {
            for kc in [
                w.sb.path("Library/Keychains/login.keychain-db")
                    .display()
                    .to_string(),
                w.remote_keychain(),
            ] {
                assert_eq!(security(&["lock-keychain", &kc], &w.sb).0, 0);
            }
        }),
        teardown: Box::new(|w| {
            let login =
                w.sb.path("Library/Keychains/login.keychain-db")
                    .display()
                    .to_string();
            assert_eq!(security(&["unlock-keychain", "-p", "", &login], &w.sb).0, 0);
            let remote = w.remote_keychain();
            let (code, _, err) = security(&["unlock-keychain", "-p", KC_PASSWORD, &remote], &w.sb);
            assert_eq!(code, 0, "{err}");
        }),
    });
}

#[test]
fn failure_security_missing() {
    failure_path(Failure {
        name: "security missing",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("SECRETSYNC_SECURITY", "/nonexistent/security".into()),
        ],
        says: "the host is not a Mac or the `security` path is wrong",
        doctor_fails: true,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_railway_token_expired() {
    failure_path(Failure {
        name: "Railway token expired",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![("RAILWAY_API_TOKEN", EXPIRED.into())],
        says: "expired or revoked",
        doctor_fails: true,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_railway_token_missing() {
    failure_path(Failure {
        name: "Railway token missing",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![("RAILWAY_API_TOKEN", String::new())],
        says: "no Railway token",
        doctor_fails: true,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_railway_500_storm() {
    failure_path(Failure {
        name: "Railway 500 storm",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![],
        says: "answered HTTP 500",
        doctor_fails: true,
        setup: Box::new(|w| w.railway.fail_next(10_000, Fault::Status(500))),
        teardown: Box::new(|w| w.railway.clear_faults()),
    });
}

#[test]
fn failure_railway_answers_garbage() {
    failure_path(Failure {
        name: "Railway answers garbage",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![],
        says: "not JSON",
        doctor_fails: true,
        setup: Box::new(|w| w.railway.fail_next(10_000, Fault::Malformed)),
        teardown: Box::new(|w| w.railway.clear_faults()),
    });
}

#[test]
fn failure_railway_429_storm() {
    failure_path(Failure {
        name: "Railway 429 storm",
        apply_format: "json",
        variant: Variant::default(),
        env: vec![],
        says: "rate-limiting",
        doctor_fails: true,
        setup: Box::new(|w| {
            w.railway
                .fail_next(10_000, Fault::RateLimited { retry_after: 0 })
        }),
        teardown: Box::new(|w| w.railway.clear_faults()),
    });
}

#[test]
fn failure_railway_times_out() {
    failure_path(Failure {
        name: "Railway times out",
        apply_format: "text",
        variant: Variant::default(),
        env: vec![
            ("SECRETSYNC_RAILWAY_TIMEOUT", "0.3".into()),
            ("SECRETSYNC_RAILWAY_RETRIES", "1".into()),
        ],
        says: "did not answer within 300ms",
        doctor_fails: true,
        setup: Box::new(|w| w.railway.fail_next(10_000, Fault::Hang)),
        teardown: Box::new(|w| w.railway.clear_faults()),
    });
}

#[test]
fn failure_newline_to_keychains() {
    failure_path(Failure {
        name: "values the keychains cannot hold (newline)",
        apply_format: "json",
        variant: Variant {
            newline_to_keychains: true,
            ..Variant::default()
        },
        env: vec![],
        says: "cannot be written to this target",
        doctor_fails: false,
        setup: nothing(),
        teardown: nothing(),
    });
}

#[test]
fn failure_cr_to_env_files() {
    failure_path(Failure {
        name: "values env files cannot hold (CR)",
        apply_format: "text",
        variant: Variant {
            cr_to_env_files: true,
            ..Variant::default()
        },
        env: vec![],
        says: "cannot be written to this target",
        doctor_fails: false,
        setup: nothing(),
        teardown: nothing(),
    });
}
