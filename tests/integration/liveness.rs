//! Live or only written (#28): whether what runs from a target uses the
//! values it holds. Railway against the in-repo server (deployments and
//! variables' `updatedAt`, every document validated against the schema);
//! env files with a stand-in `systemctl` and `docker` naming a real process
//! the test starts. Canaries prove no value reaches output or argv.

use crate::support;

use support::cli::{assert_no_canary, Out, Sandbox};
use support::railway_server::RailwayServer;

const PROJECT: &str = "p-live-1";
const PROD: &str = "env-prod-1";
const API: &str = "svc-api-1";
const WORKER: &str = "svc-worker-2";
const WEB: &str = "svc-web-3";
const TOKEN: &str = "CANARY-live-account-token-61f2";
const NEW: &str = "CANARY-live-new-value-0c3d";
const OLD: &str = "CANARY-live-old-value-9e8a";

fn railway() -> RailwayServer {
    let s = RailwayServer::start();
    s.add_project(PROJECT, "shop");
    s.add_environment(PROJECT, PROD, "production");
    s.add_service(PROJECT, API, "api");
    s.add_service(PROJECT, WORKER, "worker");
    s.add_service(PROJECT, WEB, "web");
    s.add_account_token(TOKEN);
    // api and worker run the old value; web already runs the new one.
    s.set_var(PROJECT, PROD, Some(API), "API_TOKEN", OLD);
    s.set_var(PROJECT, PROD, Some(WORKER), "API_TOKEN", OLD);
    s.set_var(PROJECT, PROD, Some(WEB), "API_TOKEN", NEW);
    for svc in [API, WORKER, WEB] {
        s.deploy_service(PROJECT, PROD, svc);
    }
    s
}

fn railway_manifest() -> Sandbox {
    let sb = Sandbox::new();
    let target = |name: &str| {
        format!("  {name}:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: {name}\n    skip_deploys: true\n")
    };
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n{}{}{}secrets:\n  API_TOKEN:\n    targets: [api, worker, web]\n    encrypted: |\n{}",
            sb.header(),
            target("api"),
            target("worker"),
            target("web"),
            sb.encrypted(NEW, 6),
        ),
    );
    sb
}

fn run_railway(sb: &Sandbox, server: &RailwayServer, args: &[&str]) -> Out {
    let out = sb.run_with(
        args,
        &[
            ("SECRETSYNC_RAILWAY_ENDPOINT", &server.url()),
            ("RAILWAY_API_TOKEN", TOKEN),
            ("SECRETSYNC_RAILWAY_BACKOFF", "0.01"),
            ("SECRETSYNC_RAILWAY_TIMEOUT", "5"),
        ],
    );
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        &[TOKEN, NEW, OLD],
    );
    out
}

fn items(plan: &Out) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut i = t["items"][0].clone();
            i["target"] = t["name"].clone();
            i["target_status"] = t["status"].clone();
            i
        })
        .collect()
}

#[test]
fn railway_skip_deploys_is_not_live_until_apply_redeploy() {
    let server = railway();
    let sb = railway_manifest();

    // web runs the manifest's value: in sync, and live.
    let plan = run_railway(&sb, &server, &["plan", "--format", "json"]);
    let web = &items(&plan)[2];
    assert_eq!(web["state"], "in_sync", "{web}");
    assert_eq!(web["live"], true, "{web}");

    server.clear_requests();
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    // Liveness is read in the same requests: still 5 per project.
    assert_eq!(server.requests().len(), 5, "{:#?}", server.requests());
    assert_eq!(server.total_deploys(), 0, "skip_deploys");
    assert!(
        apply.stdout.contains(
            "    written, not live yet: API_TOKEN: the variable changed on 2026-12-01 10:00:"
        ),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("; redeploy service api (secretsync apply --redeploy)"),
        "{}",
        apply.stdout
    );

    // Written, not live: drift for --detailed-exitcode, in every format.
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("api (railway service api in production (project p-live-1)): 1 value written, not live\n    ! API_TOKEN                    written, not live: the variable changed on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("after service api was deployed on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan: 0 to add, 0 to change, 0 to delete. 1 target in sync, 2 not live; 2 values written, not live."),
        "{}",
        plan.stdout
    );
    let json = run_railway(&sb, &server, &["plan", "--format", "json"]);
    let got = items(&json);
    for i in &got[..2] {
        assert_eq!(i["state"], "not_live", "{i}");
        assert_eq!(i["live"], false, "{i}");
        assert_eq!(i["target_status"], "not_live", "{i}");
        assert!(i["reason"]
            .as_str()
            .unwrap()
            .contains("the variable changed on"));
        assert_eq!(
            i["action"],
            format!(
                "redeploy service {} (secretsync apply --redeploy)",
                i["target"].as_str().unwrap()
            )
        );
    }
    assert_eq!(got[2]["live"], true);
    let md = run_railway(&sb, &server, &["plan", "--format", "markdown"]);
    assert!(
        md.stdout
            .contains("⏳ not live: written, not live: the variable changed on"),
        "{}",
        md.stdout
    );

    // One deploy per stale service, and only those; then live.
    server.clear_requests();
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(server.redeploys(PROJECT, PROD, API), 1);
    assert_eq!(server.redeploys(PROJECT, PROD, WORKER), 1);
    assert_eq!(server.redeploys(PROJECT, PROD, WEB), 0);
    assert_eq!(server.count("serviceInstanceRedeploy"), 1, "one mutation");
    assert!(
        apply
            .stdout
            .contains("    redeployed service api\n    live\n"),
        "{}",
        apply.stdout
    );
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains("= API_TOKEN                    in sync, and live: service api was deployed on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );

    let doctor = run_railway(&sb, &server, &["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("ok   liveness: service api was deployed on 2026-12-01 10:00:"),
        "{}",
        doctor.stdout
    );

    // Again: nothing is stale, nothing is redeployed.
    run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(server.redeploys(PROJECT, PROD, API), 1);
}

#[test]
fn railway_a_crashed_deployment_is_not_live_and_notify_counts_it() {
    let server = railway();
    server.set_var(PROJECT, PROD, Some(API), "API_TOKEN", NEW);
    server.set_var(PROJECT, PROD, Some(WORKER), "API_TOKEN", NEW);
    for svc in [API, WORKER] {
        server.deploy_service(PROJECT, PROD, svc);
    }
    server.set_deployment_status(PROJECT, PROD, WORKER, "CRASHED");
    let sb = railway_manifest();
    let (url, rx, _l) = support::webhook::listener();
    let plan = run_railway(
        &sb,
        &server,
        &["plan", "--detailed-exitcode", "--notify", &url],
    );
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("written, not live: the latest deployment of service worker is CRASHED: it does not run; redeploy service worker"),
        "{}",
        plan.stdout
    );
    let body = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a notification");
    assert!(
        body.contains("1 value(s) written, not live")
            && body.contains("written, not live: API_TOKEN"),
        "{body}"
    );
}

// ---- env files: a unit and a container ----------------------------------------

/// A real process standing for a service: `sleep` with `API_TOKEN` in its
/// environment; killed when dropped.
struct Process(std::process::Child);

impl Process {
    fn start(value: &str) -> Process {
        Process(
            std::process::Command::new("sleep")
                .arg("600")
                .env_clear()
                .env("API_TOKEN", value)
                .env("OTHER", "x")
                .spawn()
                .expect("sleep starts"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A sandbox with `app.env` holding the manifest's value, a manifest whose
/// env-file target names `extra` (unit:, container:), and the stand-ins in
/// `bin/`.
fn env_file_sandbox(extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write("app.env", &format!("API_TOKEN={NEW}\n"));
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\n{extra}secrets:\n  API_TOKEN:\n    targets: [app]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted(NEW, 6),
        ),
    );
    let support = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    for tool in ["systemctl", "docker"] {
        sb.write(
            &format!("bin/{tool}"),
            &std::fs::read_to_string(support.join(tool)).unwrap(),
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            sb.path(&format!("bin/{tool}")),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    sb
}

/// The unit runs `p`, started now (as systemd records it).
fn unit_runs(sb: &Sandbox, unit: &str, p: &Process) {
    sb.write(&format!("bin/systemd/{unit}.pid"), &p.pid().to_string());
    sb.write(
        &format!("bin/systemd/{unit}.started"),
        &now_secs().to_string(),
    );
}

fn stand_ins(sb: &Sandbox) -> Vec<(String, String)> {
    vec![
        (
            "SECRETSYNC_SYSTEMCTL".into(),
            sb.path("bin/systemctl").display().to_string(),
        ),
        (
            "SECRETSYNC_DOCKER".into(),
            sb.path("bin/docker").display().to_string(),
        ),
    ]
}

fn run_env(sb: &Sandbox, args: &[&str]) -> Out {
    let env = stand_ins(sb);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = sb.run_with(args, &env);
    checked(sb, args, out)
}

/// No value in the output, nor in the stand-ins' argv.
fn checked(sb: &Sandbox, args: &[&str], out: Out) -> Out {
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        &[NEW, OLD],
    );
    let argv = std::fs::read(sb.path("bin/argv.log")).unwrap_or_default();
    assert_no_canary("the stand-ins' argv", &argv, &[NEW, OLD]);
    out
}

#[test]
fn a_unit_running_the_old_value_is_not_live_until_restarted() {
    let sb = env_file_sandbox("    unit: app.service\n");
    let old = Process::start(OLD);
    unit_runs(&sb, "app.service", &old);

    let plan = run_env(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let line = format!(
        "    ! API_TOKEN                    written, not live: app.service (pid {}) runs with another value (fp:",
        old.pid()
    );
    assert!(plan.stdout.contains(&line), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("); restart app.service\n"),
        "{}",
        plan.stdout
    );
    let json = run_env(&sb, &["plan", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let item = &doc["targets"][0]["items"][0];
    assert_eq!(item["live"], false, "{item}");
    assert_eq!(item["action"], "restart app.service");
    assert_eq!(doc["in_sync"], false);
    let argv = std::fs::read_to_string(sb.path("bin/argv.log")).unwrap();
    assert!(
        argv.lines()
            .all(|l| l == "show -p MainPID -p ExecMainStartTimestamp -p LoadState -- app.service"),
        "{argv}"
    );

    // Restarted with the new value: live.
    drop(old);
    let new = Process::start(NEW);
    unit_runs(&sb, "app.service", &new);
    let plan = run_env(&sb, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "= API_TOKEN                    in sync, and live: app.service (pid {}) runs with this value",
            new.pid()
        )),
        "{}",
        plan.stdout
    );

    // Not running: unknown, not drift.
    drop(new);
    let plan = run_env(&sb, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout
            .contains("in sync; liveness unknown: app.service is not running"),
        "{}",
        plan.stdout
    );
}

/// Runs secretsync as `nobody`, who may not read root's processes'
/// environments: the sandbox is handed to nobody first.
fn run_as_nobody(sb: &Sandbox, args: &[&str]) -> Out {
    let status = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(sb.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_secretsync"))
        .args(args)
        .arg("--identity")
        .arg(&sb.identity)
        .current_dir(sb.dir.path())
        .env("HOME", sb.dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SECRETSYNC_") || k.starts_with("SOPS_") || k.starts_with("RAILWAY_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in stand_ins(sb) {
        cmd.env(k, v);
    }
    let out = support::cli::run(cmd);
    checked(sb, args, out)
}

#[test]
fn without_the_environ_the_file_must_not_have_changed_since_the_start() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run secretsync as another user");
        return;
    }
    let sb = env_file_sandbox("    unit: app.service\n");
    // Started before the file was last written.
    let old = Process::start(OLD);
    sb.write("bin/systemd/app.service.pid", &old.pid().to_string());
    sb.write(
        "bin/systemd/app.service.started",
        &(now_secs() - 120).to_string(),
    );
    let plan = run_as_nobody(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("written, not live: the file changed on ")
            && plan.stdout.contains(&format!(
                ", after app.service (pid {}) started on ",
                old.pid()
            ))
            && plan.stdout.contains("; restart app.service\n"),
        "{}",
        plan.stdout
    );
    // Restarted after the write (its environment still unreadable): live.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.write("bin/systemd/app.service.started", &now_secs().to_string());
    let plan = run_as_nobody(&sb, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "in sync, and live: app.service (pid {}) started on ",
            old.pid()
        )) && plan.stdout.contains(", after the file last changed"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_container_made_before_the_change_is_not_live_until_recreated() {
    let sb = env_file_sandbox("    container: app\n");
    let old = Process::start(OLD);
    sb.write("bin/containers/app.pid", &old.pid().to_string());
    let plan = run_env(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("written, not live: container app runs with another value (fp:")
            && plan.stdout.contains("); recreate container app\n"),
        "{}",
        plan.stdout
    );
    let argv = std::fs::read_to_string(sb.path("bin/argv.log")).unwrap();
    assert!(
        argv.lines()
            .all(|l| l == "inspect --format {{json .Config.Env}} -- app"),
        "{argv}"
    );

    drop(old);
    let new = Process::start(NEW);
    sb.write("bin/containers/app.pid", &new.pid().to_string());
    let plan = run_env(&sb, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout
            .contains("in sync, and live: container app runs with this value"),
        "{}",
        plan.stdout
    );

    // docker unreachable: unknown, said, not drift; doctor says why.
    sb.write("bin/daemon-down", "");
    let plan = run_env(&sb, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout
            .contains("liveness unknown: docker cannot tell about container app:")
            && plan.stdout.contains("Cannot connect to the Docker daemon"),
        "{}",
        plan.stdout
    );
    let doctor = run_env(&sb, &["doctor"]);
    assert!(
        doctor.all().contains("liveness of container app"),
        "{doctor:?}"
    );
    assert!(
        doctor.all().contains("Cannot connect to the Docker daemon"),
        "{doctor:?}"
    );
}

#[test]
fn unit_and_container_are_operands_never_options() {
    for (field, value) in [("unit", "--user"), ("container", "-f")] {
        let sb = env_file_sandbox(&format!("    {field}: \"{value}\"\n"));
        let out = run_env(&sb, &["plan"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains(&format!("`{field}` of target `app`")),
            "{}",
            out.stderr
        );
        assert!(!sb.path("bin/argv.log").exists(), "nothing was run");
    }
}

// ---- over SSH, against the real sshd ----------------------------------------

/// A folder every test user can read: the env file, the stand-ins and their
/// state, as a host's would be.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = Host { dir };
        let support = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        for tool in ["systemctl", "docker"] {
            h.write(
                &format!("bin/{tool}"),
                &std::fs::read_to_string(support.join(tool)).unwrap(),
                0o755,
            );
        }
        h.write("bin/argv.log", "", 0o666);
        h.write("app.env", &format!("API_TOKEN={NEW}\n"), 0o644);
        h
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(rel);
        let parent = p.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn runs(&self, unit: &str, p: &Process, started: u64) {
        self.write(
            &format!("bin/systemd/{unit}.pid"),
            &p.pid().to_string(),
            0o644,
        );
        self.write(
            &format!("bin/systemd/{unit}.started"),
            &started.to_string(),
            0o644,
        );
    }
}

fn ssh_sandbox(sshd: &support::sshd::Sshd, user: &str, host: &Host, extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  vps:\n    type: ssh_env\n{}    path: {}\n{extra}secrets:\n  API_TOKEN:\n    targets: [vps]\n    encrypted: |\n{}",
            sb.header(),
            sshd.yaml(user, 4),
            host.path("app.env").display(),
            sb.encrypted(NEW, 6),
        ),
    );
    sb
}

fn run_ssh(sb: &Sandbox, host: &Host, args: &[&str]) -> Out {
    let systemctl = host.path("bin/systemctl").display().to_string();
    let docker = host.path("bin/docker").display().to_string();
    let out = sb.run_with(
        args,
        &[
            ("SECRETSYNC_SYSTEMCTL", systemctl.as_str()),
            ("SECRETSYNC_DOCKER", docker.as_str()),
        ],
    );
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        &[NEW, OLD],
    );
    let argv = std::fs::read(host.path("bin/argv.log")).unwrap_or_default();
    assert_no_canary("the stand-ins' argv", &argv, &[NEW, OLD]);
    out
}

#[test]
fn over_ssh_a_unit_and_a_container_are_not_live_until_restarted() {
    if !support::sshd::is_root() {
        eprintln!("skipped: needs root for the test users");
        return;
    }
    support::sshd::ensure_user("ss-sudo", true);
    let sshd = support::sshd::Sshd::start();
    let host = Host::new();
    let old = Process::start(OLD);
    host.runs("app.service", &old, now_secs());
    host.write("bin/containers/app.pid", &old.pid().to_string(), 0o644);
    let sb = ssh_sandbox(
        &sshd,
        "ss-sudo",
        &host,
        "    sudo: true\n    unit: app.service\n    container: app\n",
    );
    let plan = run_ssh(&sb, &host, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "written, not live: app.service (pid {}) runs with another value (fp:",
            old.pid()
        )) && plan
            .stdout
            .contains("; container app runs with another value (fp:")
            && plan
                .stdout
                .contains("; restart app.service, then recreate container app\n"),
        "{}",
        plan.stdout
    );

    drop(old);
    let new = Process::start(NEW);
    host.runs("app.service", &new, now_secs());
    host.write("bin/containers/app.pid", &new.pid().to_string(), 0o644);
    let plan = run_ssh(&sb, &host, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "in sync, and live: app.service (pid {}) runs with this value; container app runs with this value",
            new.pid()
        )),
        "{}",
        plan.stdout
    );
    let doctor = run_ssh(&sb, &host, &["doctor"]);
    assert!(
        doctor.all().contains(&format!(
            "liveness of app.service (pid {}): its environment is readable, values are compared exactly",
            new.pid()
        )),
        "{doctor:?}"
    );
}

#[test]
fn over_ssh_without_the_environ_the_modification_time_decides() {
    if !support::sshd::is_root() {
        eprintln!("skipped: needs root for the test users");
        return;
    }
    support::sshd::ensure_user("ss-nosudo", false);
    let sshd = support::sshd::Sshd::start();
    let host = Host::new();
    // A root process: ss-nosudo may not read its environment.
    let old = Process::start(OLD);
    host.runs("app.service", &old, now_secs() - 120);
    let sb = ssh_sandbox(&sshd, "ss-nosudo", &host, "    unit: app.service\n");
    let plan = run_ssh(&sb, &host, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("written, not live: the file changed on ")
            && plan.stdout.contains(&format!(
                ", after app.service (pid {}) started on ",
                old.pid()
            ))
            && plan.stdout.contains("; restart app.service\n"),
        "{}",
        plan.stdout
    );
    let doctor = run_ssh(&sb, &host, &["doctor"]);
    assert!(
        doctor.all().contains("its environment cannot be read; the file's modification time is compared with its start"),
        "{doctor:?}"
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    host.runs("app.service", &old, now_secs());
    let plan = run_ssh(&sb, &host, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(", after the file last changed"),
        "{}",
        plan.stdout
    );
}

/// The host's script (src/targets/scripts/live.sh) under dash, `bash
/// --posix` and busybox sh: each part framed, the environment whole.
#[test]
fn the_host_script_frames_its_answer_under_every_shell() {
    use base64::Engine as _;
    let host = Host::new();
    let p = Process::start(OLD);
    host.runs("app.service", &p, now_secs());
    host.write("bin/containers/app.pid", &p.pid().to_string(), 0o644);
    for shell in [
        vec!["/usr/bin/dash"],
        vec!["/usr/bin/bash", "--posix"],
        vec!["/usr/bin/busybox", "sh"],
    ] {
        let out = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(secretsync::targets::live_unit::REMOTE_SCRIPT)
            .arg("sh")
            .arg(host.path("bin/systemctl"))
            .arg(host.path("bin/docker"))
            .arg(host.path("app.env"))
            .args(["app.service", "app"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(heads.len(), 5, "{shell:?}: {text}");
        assert_eq!(heads[0], "#unit 0", "{shell:?}");
        assert_eq!(heads[1], "#environ ok", "{shell:?}");
        assert!(
            heads[2]
                .strip_prefix("#mtime ")
                .unwrap()
                .parse::<u64>()
                .is_ok(),
            "{shell:?}: {text}"
        );
        assert_eq!(heads[3..], ["#container ok", "#end"], "{shell:?}");
        assert!(text.contains(&format!("\nMainPID={}\n", p.pid())), "{text}");
        let b64: String = text
            .lines()
            .skip_while(|l| *l != "#environ ok")
            .skip(1)
            .take_while(|l| !l.starts_with('#'))
            .collect();
        let environ = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(environ, format!("API_TOKEN={OLD}\0OTHER=x\0").as_bytes());
    }
}

// ---- apply: written, and live / written, not live yet ---------------------------

#[test]
fn apply_says_written_not_live_yet_without_a_restart() {
    let sb = env_file_sandbox("    unit: app.service\n");
    sb.write("app.env", &format!("API_TOKEN={OLD}\n"));
    let old = Process::start(OLD);
    unit_runs(&sb, "app.service", &old);
    let apply = run_env(&sb, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(
        apply.stdout.contains(&format!(
            "app (env file app.env): applied (1 change, read back and verified)\n    written, not live yet: API_TOKEN: app.service (pid {}) runs with another value (fp:",
            old.pid()
        )),
        "{}",
        apply.stdout
    );
    let json = run_env(&sb, &["apply", "--auto-approve", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["targets"][0]["liveness"]["live"], false, "{doc}");
    assert_eq!(
        doc["targets"][0]["liveness"]["not_live"][0]["action"],
        "restart app.service"
    );
    let md = run_env(&sb, &["apply", "--auto-approve", "--format", "markdown"]);
    assert!(
        md.stdout
            .contains("| `app` | in_sync; not live yet: `API_TOKEN` (restart app.service) |"),
        "{}",
        md.stdout
    );
}

#[test]
fn over_ssh_on_change_restarts_and_apply_says_written_and_live() {
    if !support::sshd::is_root() {
        eprintln!("skipped: needs root for the test users");
        return;
    }
    support::sshd::ensure_user("ss-sudo", true);
    let sshd = support::sshd::Sshd::start();
    let host = Host::new();
    host.write("app.env", &format!("API_TOKEN={OLD}\n"), 0o644);
    host.write(
        "bin/restart",
        "#!/bin/sh\n# on_change: restarts the unit's process with the file's values, as systemd would.\nd=$(dirname \"$0\")\nkill \"$(cat \"$d/systemd/app.service.pid\")\" 2>/dev/null\nset -a; . \"$d/../app.env\"; set +a\nsetsid sleep 600 </dev/null >/dev/null 2>&1 &\necho $! > \"$d/systemd/app.service.pid\"\ndate +%s > \"$d/systemd/app.service.started\"\n",
        0o755,
    );
    let old = Process::start(OLD);
    host.runs("app.service", &old, now_secs());
    let sb = ssh_sandbox(
        &sshd,
        "ss-sudo",
        &host,
        &format!(
            "    sudo: true\n    unit: app.service\n    on_change: {}\n",
            host.path("bin/restart").display()
        ),
    );
    let apply = run_ssh(&sb, &host, &["apply", "--auto-approve"]);
    let restarted: i32 = std::fs::read_to_string(host.path("bin/systemd/app.service.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(restarted),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(
        apply
            .stdout
            .contains("read back and verified)\n    written, and live\n"),
        "{}",
        apply.stdout
    );
}

/// Review mode: a `unit:` the change adds is a target defined differently
/// from the base, so not contacted: no systemctl runs; the base's own
/// definition (without a unit) is what is read.
#[test]
fn review_mode_reads_liveness_only_as_the_base_defines_it() {
    let sb = env_file_sandbox("");
    let base = tempfile::tempdir().unwrap();
    std::fs::copy(sb.path("secrets.yaml"), base.path().join("base.yaml")).unwrap();
    let head = sb.read("secrets.yaml").replace(
        "    path: app.env\n",
        "    path: app.env\n    unit: app.service\n",
    );
    sb.write("secrets.yaml", &head);
    let p = Process::start(OLD);
    unit_runs(&sb, "app.service", &p);
    let base_arg = format!("file:{}", base.path().join("base.yaml").display());
    let plan = run_env(&sb, &["plan", "--base", &base_arg]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        !sb.path("bin/argv.log").exists(),
        "systemctl ran in review mode: {plan:?}"
    );
    assert!(!plan.stdout.contains("not live"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("app (env_file): definition changed in this change: not contacted in review"),
        "{}",
        plan.stdout
    );
}

#[test]
fn railway_shared_variables_are_judged_against_the_services_referencing_them() {
    let server = railway();
    // api and worker use the shared variable; web does not.
    server.set_var(
        PROJECT,
        PROD,
        Some(API),
        "API_TOKEN",
        "${{shared.SHARED_TOKEN}}",
    );
    server.set_var(
        PROJECT,
        PROD,
        Some(WORKER),
        "API_TOKEN",
        "${{ shared.SHARED_TOKEN }}",
    );
    server.set_var(PROJECT, PROD, None, "SHARED_TOKEN", NEW);
    for svc in [API, WORKER, WEB] {
        server.deploy_service(PROJECT, PROD, svc);
    }
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  shared:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    skip_deploys: true\nsecrets:\n  SHARED_TOKEN:\n    targets: [shared]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted(NEW, 6),
        ),
    );
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout
            .contains("in sync, and live: service api was deployed on ")
            && plan.stdout.contains("; service worker was deployed on "),
        "{}",
        plan.stdout
    );
    // Set again without a deploy (as with skip_deploys): not live in both.
    server.set_var(PROJECT, PROD, None, "SHARED_TOKEN", NEW);
    let plan = sb.run_with(
        &["plan", "--detailed-exitcode"],
        &[
            ("SECRETSYNC_RAILWAY_ENDPOINT", &server.url()),
            ("RAILWAY_API_TOKEN", TOKEN),
            ("GITHUB_ACTIONS", "true"),
        ],
    );
    assert_no_canary("plan", plan.all().as_bytes(), &[TOKEN, NEW, OLD]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("after service api was deployed on ")
            && plan.stdout.contains("after service worker was deployed on ")
            && plan
                .stdout
                .contains("; redeploy service api (secretsync apply --redeploy), then redeploy service worker"),
        "{}",
        plan.stdout
    );
    // Annotated under GitHub Actions.
    assert!(
        plan.stderr
            .contains("::warning title=secretsync not live%3A shared::shared (railway shared variables in production (project p-live-1)): SHARED_TOKEN is written, not live: "),
        "{}",
        plan.stderr
    );
    run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(server.redeploys(PROJECT, PROD, API), 1);
    assert_eq!(server.redeploys(PROJECT, PROD, WORKER), 1);
    assert_eq!(
        server.redeploys(PROJECT, PROD, WEB),
        0,
        "web does not use it"
    );
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan:?}");
}

#[test]
fn railway_apply_redeploy_writes_then_redeploys_once_in_the_same_run() {
    let server = railway();
    let sb = railway_manifest();
    server.clear_requests();
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    // The 5 of an apply, then one redeploy mutation and one read of what
    // was redeployed.
    assert_eq!(server.requests().len(), 7, "{:#?}", server.requests());
    assert_eq!(server.count("serviceInstanceRedeploy"), 1);
    for (svc, n) in [(API, 1), (WORKER, 1), (WEB, 0)] {
        assert_eq!(server.redeploys(PROJECT, PROD, svc), n, "{svc}");
    }
    assert_eq!(
        server.total_deploys(),
        0,
        "the writes skipped their deploys"
    );
    assert!(
        apply.stdout.contains(
            "api (railway service api in production (project p-live-1)): applied (1 change, read back and verified)\n    redeployed service api\n    written, and live\n"
        ),
        "{}",
        apply.stdout
    );
    let json = run_railway(&sb, &server, &["plan", "--format", "json"]);
    assert!(
        items(&json).iter().all(|i| i["live"] == true),
        "{}",
        json.stdout
    );
}

/// The issue's own case: the service still runs the value a rotation
/// replaced, recognised by its keyed fingerprint under `previous:`.
#[test]
fn a_unit_running_a_replaced_value_is_named_with_the_day_it_was_replaced() {
    use secretsync::crypto::Fingerprinter;
    use secretsync::secret::Secret;
    let sb = env_file_sandbox("    unit: app.service\n");
    let fp = Fingerprinter::new(Some(&Secret::new(sb.fingerprint_key.clone())))
        .fingerprint(&Secret::new(OLD.into()))
        .unwrap();
    let manifest = sb.read("secrets.yaml")
        + &format!("    previous:\n      - fingerprint: {fp}\n        replaced: \"2026-11-20\"\n");
    sb.write("secrets.yaml", &manifest);
    let old = Process::start(OLD);
    unit_runs(&sb, "app.service", &old);
    let plan = run_env(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "written, not live: app.service (pid {}) runs with the value replaced on 2026-11-20; restart app.service\n",
            old.pid()
        )),
        "{}",
        plan.stdout
    );
}

#[test]
fn railway_a_deployment_still_building_is_unknown_not_drift() {
    let server = railway();
    let sb = railway_manifest();
    let text = sb
        .read("secrets.yaml")
        .replace("    skip_deploys: true\n", "");
    sb.write("secrets.yaml", &text);
    server.new_deployments_status("BUILDING");
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(
        server.deployments(PROJECT, PROD, API),
        2,
        "the write deployed"
    );
    assert!(
        apply.stdout.contains("applied (1 change, read back and verified)\n    liveness unknown: API_TOKEN: the latest deployment of service api is BUILDING: whether it runs the value cannot be told yet\n"),
        "{}",
        apply.stdout
    );
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "unknown is not drift: {plan:?}");
}

#[test]
fn railway_a_refused_redeploy_fails_apply_and_says_so() {
    let server = railway();
    let sb = railway_manifest();
    run_railway(&sb, &server, &["apply", "--auto-approve"]);
    server.refuse_field("serviceInstanceRedeploy");
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply
            .stdout
            .contains("    the redeploy failed:\n    error: Railway refused")
            && apply.stdout.contains(
                "Apply: 0 targets applied and verified, 3 in sync, 0 failed; 2 redeploys failed."
            ),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("    not live: API_TOKEN: the variable changed on "),
        "{}",
        apply.stdout
    );
    assert_eq!(server.redeploys(PROJECT, PROD, API), 0);
}
