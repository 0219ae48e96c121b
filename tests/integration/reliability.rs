//! Faults that must lose nothing, leak nothing and hang nothing (#24):
//! a Railway that echoes its variables in every error, a host that sends its
//! SSH banner and stalls, a secret encrypted to someone else's key, and an
//! env file with far more unmanaged keys than a plan should print.

use crate::support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use support::cli::Sandbox;
use support::railway_server::RailwayServer;

const PROJECT: &str = "p-echo-1";
const PROD: &str = "env-prod-1";
const API: &str = "svc-api-1";
const TOKEN: &str = "CANARY-echo-token-1f2e";

/// A multi-line value with quotes and backslashes; every line is a canary.
const VALUE: &str =
    "CANARY-first \"quoted\" line-7731\nsecond\\back\\slash-8842\n  third 'single' line-9953\n";

fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What must never be printed: each line, and the value raw, JSON-escaped,
/// URL-encoded and in base64.
fn forms() -> Vec<String> {
    let json = serde_json::to_string(VALUE).unwrap();
    let mut f = vec![
        VALUE.to_string(),
        json[1..json.len() - 1].to_string(),
        url_encoded(VALUE),
        base64::engine::general_purpose::STANDARD.encode(VALUE),
        "line-7731".into(),
        "slash-8842".into(),
        "line-9953".into(),
        TOKEN.into(),
    ];
    f.extend(VALUE.lines().map(|l| l.trim().to_string()));
    f
}

#[test]
fn a_railway_that_echoes_its_variables_in_errors_leaks_no_form_of_a_value() {
    let server = RailwayServer::start();
    server.add_project(PROJECT, "shop");
    server.add_environment(PROJECT, PROD, "production");
    server.add_service(PROJECT, API, "api");
    server.add_account_token(TOKEN);
    server.echo_variables();
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  api:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: api\nsecrets:\n  MULTI:\n    targets: [api]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted(VALUE, 6)
        ),
    );
    let env = [
        ("SECRETSYNC_RAILWAY_ENDPOINT", server.url()),
        ("RAILWAY_API_TOKEN", TOKEN.to_string()),
        ("SECRETSYNC_RAILWAY_BACKOFF", "0.01".into()),
        ("SECRETSYNC_RAILWAY_TIMEOUT", "2".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let forms = forms();
    for format in ["text", "json"] {
        let out = sb.run_with(&["apply", "--auto-approve", "--format", format], &env);
        assert_eq!(out.code, 1, "{out:?}");
        let all = out.all();
        // The server's words are there; what it quoted is not.
        assert!(all.contains("Railway refused a request"), "{all}");
        assert!(all.contains("got invalid value"), "{all}");
        for f in &forms {
            assert!(
                !all.contains(f.as_str()),
                "{format}: a form of the value was printed: {f:?}\n{all}"
            );
        }
    }
    // The stand-in did echo every form: the test would see a leak.
    let echoed = server
        .requests()
        .iter()
        .any(|r| r.query.trim_start().starts_with("mutation"));
    assert!(echoed, "no mutation was sent");
}

/// A listener that sends an SSH banner and then nothing: `connect_timeout`
/// bounds the whole set-up, not just the TCP connect.
#[test]
fn a_host_that_stalls_after_its_banner_is_given_up_within_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            use std::io::Write;
            let mut c = c;
            let _ = c.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
            held.push(c);
        }
    });
    let sb = Sandbox::new();
    let file = sb.path("remote.env");
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\ntargets:\n  vps:\n    type: ssh_env\n    host: root@127.0.0.1\n    port: {port}\n    known_hosts: accept-new\n    known_hosts_file: {}\n    connect_timeout: 2s\n    path: {}\nsecrets:\n  K:\n    targets: [vps]\n    value: v\n",
            sb.path("known_hosts").display(),
            file.display()
        ),
    );
    let t = Instant::now();
    let out = sb.run(&["plan"]);
    let took = t.elapsed();
    eprintln!("banner-then-stall with connect_timeout 2s: given up after {took:?}");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {out:?}");
    let all = out.all();
    assert!(
        all.contains(
            "no answer within 2s (connect_timeout): the SSH set-up (banner, key exchange, authentication) did not finish"
        ),
        "{all}"
    );
    // The `ssh` that was stuck in the handshake was ended, not left behind.
    let port_arg = port.to_string();
    let stuck = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"ssh"))
                && args
                    .windows(2)
                    .any(|w| w[0] == b"-p" && w[1] == port_arg.as_bytes())
        })
        .count();
    assert_eq!(stuck, 0, "an ssh to the stalled host is still running");
}

/// A Railway that never answers: a read is given up at its overall
/// deadline, and the message names that limit (before #24 only the
/// per-request timeout held: 4 attempts of it plus backoff).
#[test]
fn a_hung_railway_read_is_given_up_at_the_overall_deadline() {
    use support::railway_server::Fault;
    let server = RailwayServer::start();
    server.add_project(PROJECT, "shop");
    server.add_environment(PROJECT, PROD, "production");
    server.add_account_token(TOKEN);
    server.fail_next(1000, Fault::Hang);
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\ntargets:\n  shared:\n    type: railway\n    project: {PROJECT}\n    environment: production\nsecrets:\n  K:\n    targets: [shared]\n    value: v\n"
        ),
    );
    let url = server.url();
    let mut env = vec![
        ("SECRETSYNC_RAILWAY_ENDPOINT", url.as_str()),
        ("RAILWAY_API_TOKEN", TOKEN),
        ("SECRETSYNC_RAILWAY_TIMEOUT", "1"),
        ("SECRETSYNC_RAILWAY_RETRIES", "3"),
        ("SECRETSYNC_RAILWAY_BACKOFF", "0.5"),
    ];
    // Per-request limit only (the overall one out of reach): 4 × 1 s + backoff.
    env.push(("SECRETSYNC_RAILWAY_DEADLINE", "60"));
    let t = Instant::now();
    let out = sb.run_with(&["plan"], &env);
    let per_request = t.elapsed();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all().contains("did not answer within 1s (4 attempts)")
            && out
                .all()
                .contains("that is the per-request limit (SECRETSYNC_RAILWAY_TIMEOUT"),
        "{}",
        out.all()
    );
    env.pop();
    env.push(("SECRETSYNC_RAILWAY_DEADLINE", "2"));
    let t = Instant::now();
    let out = sb.run_with(&["plan"], &env);
    let overall = t.elapsed();
    eprintln!("hung Railway read: {per_request:?} with the per-request limit alone, {overall:?} with a 2 s overall deadline");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all().contains(
            "gave no answer within the read's overall deadline of 2s (SECRETSYNC_RAILWAY_DEADLINE"
        ),
        "{}",
        out.all()
    );
    assert!(overall < Duration::from_secs(4), "{overall:?}");
    assert!(!out.all().contains(TOKEN));
}

/// A secret encrypted to someone else's key fails only the target that
/// needs it, by name and with its recipients; every other target is planned
/// (before #24 the whole plan stopped, planning no target).
#[test]
fn a_secret_encrypted_to_a_foreign_key_fails_only_its_targets() {
    let sb = Sandbox::new();
    let foreign = age::x25519::Identity::generate().to_public();
    let armored = secretsync::crypto::encrypt(
        &[secretsync::crypto::Recipient::X25519(foreign.clone())],
        b"CANARY-foreign-4410",
    )
    .unwrap();
    let foreign_block: String = armored.lines().map(|l| format!("      {l}\n")).collect();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  a:\n    type: env_file\n    path: a.env\n  b:\n    type: env_file\n    path: b.env\n  c:\n    type: env_file\n    path: c.env\nsecrets:\n  OURS:\n    targets: [a, b, c]\n    encrypted: |\n{}  THEIRS:\n    targets: [b]\n    encrypted: |\n{foreign_block}",
            sb.header(),
            sb.encrypted("ours-value", 6)
        ),
    );
    // `check` passes it (headers only), and says what it could not verify.
    let check = sb.run(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stderr
            .contains("2 encrypted values checked by header only"),
        "{}",
        check.stderr
    );
    let plan = sb.run(&["plan", "--detailed-exitcode"]);
    eprintln!(
        "foreign-key secret: plan exit {}\n{}",
        plan.code, plan.stdout
    );
    assert_eq!(plan.code, 1, "{plan:?}");
    let all = plan.all();
    assert!(
        all.contains("b (env file b.env): cannot be read\n    error: not planned: secret `THEIRS`"),
        "{all}"
    );
    assert!(
        all.contains("secret `THEIRS` is not encrypted to the identity"),
        "{all}"
    );
    assert!(
        all.contains("it is encrypted to 1 recipient (X25519)"),
        "{all}"
    );
    assert!(all.contains(&sb.recipient.to_string()), "{all}");
    assert!(!all.contains("CANARY"), "{all}");
    // a and c are planned.
    assert!(
        all.contains("Plan: 2 to add, 0 to change, 0 to delete"),
        "{all}"
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert_eq!(sb.read("a.env"), "OURS=ours-value\n");
    assert_eq!(sb.read("c.env"), "OURS=ours-value\n");
    assert!(!sb.path("b.env").exists(), "b needs THEIRS: not written");
}

/// More than 50 unmanaged keys on one target are summarised; `-v` lists
/// them, and JSON counts those it does not list (before #24: one line per
/// key, 200,010 lines for 200,000 unmanaged lines).
#[test]
fn many_unmanaged_keys_are_summarised_and_verbose_lists_them() {
    let sb = Sandbox::new();
    let text: String = (0..1254).map(|i| format!("OTHER_{i:05}=x{i}\n")).collect();
    sb.write("app.env", &text);
    sb.write(
        "secrets.yaml",
        "version: 1\ntargets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  K:\n    targets: [app]\n    value: v\n",
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let lines = plan.stdout.lines().count();
    assert!(
        plan.stdout
            .contains("note: 1,204 more unmanaged keys left alone (-v lists them)"),
        "{}",
        plan.stdout
    );
    assert_eq!(plan.stdout.matches("is unmanaged: left alone").count(), 50);
    assert!(lines < 80, "{lines} lines");
    let verbose = sb.run(&["plan", "-v"]);
    assert_eq!(verbose.code, 0, "{verbose:?}");
    assert_eq!(
        verbose.stdout.matches("is unmanaged: left alone").count(),
        1254
    );
    assert!(!verbose.stdout.contains("more unmanaged"));
    let json = sb.run(&["plan", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let t = &doc["targets"][0];
    assert_eq!(t["unmanaged_hidden"], 1204, "{t}");
    assert_eq!(t["items"].as_array().unwrap().len(), 51);
    eprintln!(
        "1,254 unmanaged keys: {lines} lines of plan (-v: {})",
        verbose.stdout.lines().count()
    );
    // Apply still leaves every unmanaged line as it was.
    let apply = sb.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(sb.read("app.env"), format!("{text}K=v\n"));
}

/// A pid that is no longer running (a child that was reaped).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Temp files left by writers that were killed (SIGKILL gives no chance to
/// clean up) are reported by `doctor` and removed by the next write beside
/// them: a local env file, a remote one, and the manifest (`set`).
#[test]
fn orphans_of_killed_writers_are_reported_and_swept() {
    use support::sshd::Sshd;
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let remote = tempfile::tempdir().unwrap();
    let pid = dead_pid();
    let local_orphan = sb.path(&format!(".secretsync.{pid}.AbC123.tmp"));
    let remote_orphan = remote.path().join(format!(".secretsync.{pid}.XyZ789"));
    let manifest_dir = sb.path("m");
    std::fs::create_dir(&manifest_dir).unwrap();
    let manifest_orphan = manifest_dir.join(format!(".secretsync.{pid}.QwE456.tmp"));
    // Not an orphan: a live writer's (this test's pid).
    let live = sb.path(&format!(".secretsync.{}.LiVe00.tmp", std::process::id()));
    for f in [&local_orphan, &remote_orphan, &manifest_orphan, &live] {
        std::fs::write(f, "K=CANARY-orphaned-value\n").unwrap();
    }
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  here:\n    type: env_file\n    path: app.env\n  there:\n    type: ssh_env\n{}    path: {}\nsecrets:\n  K:\n    targets: [here, there]\n    value: v\n",
            sb.header(),
            sshd.yaml("root", 4),
            remote.path().join("app.env").display()
        ),
    );
    let doctor = sb.run(&["doctor"]);
    assert_eq!(doctor.code, 1, "{doctor:?}");
    let all = doctor.all();
    assert!(
        all.contains(&format!(".secretsync.{pid}.AbC123.tmp"))
            && all.contains("killed while writing"),
        "{all}"
    );
    assert!(
        all.contains("holds 1 temp file(s) left by a secretsync that was killed while writing; they may hold values"),
        "{all}"
    );
    assert!(!all.contains("CANARY"), "{all}");
    let apply = sb.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(!local_orphan.exists(), "the local orphan is still there");
    assert!(!remote_orphan.exists(), "the remote orphan is still there");
    assert!(live.exists(), "a live writer's temp file was removed");
    std::fs::remove_file(&live).unwrap();
    let doctor = sb.run(&["doctor"]);
    assert_eq!(doctor.code, 0, "{doctor:?}");

    // The manifest editor sweeps beside the manifest.
    let m = manifest_dir.join("secrets.yaml");
    std::fs::write(
        &m,
        format!(
            "{}targets:\n  here:\n    type: env_file\n    path: app.env\nsecrets: {{}}\n",
            sb.header()
        ),
    )
    .unwrap();
    let doctor = sb.run(&["-f", m.to_str().unwrap(), "doctor"]);
    assert!(
        doctor
            .all()
            .contains(&format!(".secretsync.{pid}.QwE456.tmp")),
        "{doctor:?}"
    );
    let set = sb.run_stdin(
        &[
            "-f",
            m.to_str().unwrap(),
            "set",
            "NEW",
            "--stdin",
            "--target",
            "here",
        ],
        &[],
        "CANARY-new-value",
    );
    assert_eq!(set.code, 0, "{set:?}");
    assert!(
        !manifest_orphan.exists(),
        "the manifest's orphan is still there"
    );
}
