//! The review and CI workflow: golden JSON and markdown, GitHub Actions
//! summary and annotations, saved plans, doctor, and drift notifications.

use crate::support;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

use secretsync::crypto::Fingerprinter;
use secretsync::secret::Secret;
use support::cli::{assert_no_canary, Sandbox};
use support::webhook;

const CANARIES: &[&str] = &["CANARY-alpha", "CANARY-old-alpha", "CANARY-bravo"];

/// Every kind of change and a failure, on local env files (also the
/// transcripts' scenario).
pub(crate) fn scenario() -> Sandbox {
    let sb = Sandbox::new();
    let fp = Fingerprinter::new(Some(&Secret::new(
        "0123456789abcdef0123456789abcdef".into(),
    )));
    let old = fp
        .fingerprint(&Secret::new("CANARY-old-alpha".into()))
        .unwrap();
    sb.write(
        "drift.env",
        "# drift\nA=\"CANARY-old-alpha\"\nB=CANARY-bravo\nEXTRA=1\n",
    );
    sb.write("clean.env", "A=CANARY-alpha\nB=CANARY-bravo\n");
    std::fs::create_dir(sb.path("dir.env")).unwrap();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  drift: {{ type: env_file, path: drift.env, prune: true }}\n  missing: {{ type: env_file, path: sub/new.env }}\n  broken: {{ type: env_file, path: dir.env }}\n  clean: {{ type: env_file, path: clean.env }}\nsecrets:\n  A:\n    targets: [drift, missing, broken, clean]\n    encrypted: |\n{}    previous:\n      - fingerprint: {old}\n        replaced: \"2026-11-20\"\n  B:\n    targets: [drift, missing, clean]\n    value: CANARY-bravo\n",
            sb.header(),
            sb.encrypted("CANARY-alpha", 6)
        ),
    );
    sb
}

/// Compares with tests/golden/NAME, or rewrites it with UPDATE_GOLDEN=1.
fn golden(name: &str, actual: &str, sb: &Sandbox) {
    let actual = actual.replace(&sb.dir.path().display().to_string(), "<dir>");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "output differs from tests/golden/{name}");
}

#[test]
fn json_plan_matches_the_golden_file() {
    let sb = scenario();
    let out = sb.run(&["plan", "--format", "json"]);
    assert_eq!(out.code, 1, "a target is unreadable: {out:?}");
    golden("plan.json", &out.stdout, &sb);
    assert_no_canary("json plan", out.all().as_bytes(), CANARIES);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["format_version"], 2);
}

#[test]
fn markdown_plan_matches_the_golden_file() {
    let sb = scenario();
    let out = sb.run(&["plan", "--format", "markdown"]);
    golden("plan.md", &out.stdout, &sb);
    assert_no_canary("markdown plan", out.all().as_bytes(), CANARIES);
}

#[test]
fn text_plan_matches_the_golden_file() {
    let sb = scenario();
    let out = sb.run(&["plan"]);
    golden("plan.txt", &out.stdout, &sb);
}

#[test]
fn json_apply_report_matches_the_golden_file() {
    let sb = scenario();
    let out = sb.run(&["apply", "--auto-approve", "--format", "json"]);
    assert_eq!(out.code, 1);
    golden("apply.json", &out.stdout, &sb);
    assert_no_canary("json apply", out.all().as_bytes(), CANARIES);
}

#[test]
fn github_actions_gets_a_step_summary_and_annotations() {
    let sb = scenario();
    let summary = sb.path("summary.md");
    std::fs::write(&summary, "previous step\n").unwrap();
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    let out = sb.run_with(&["plan"], &env);
    let md = sb.run(&["plan", "--format", "markdown"]).stdout;
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        format!("previous step\n{md}\n")
    );
    // Annotations go to stderr (Actions reads both), never into stdout,
    // which is often captured as a PR comment or JSON (#17).
    assert!(out.stderr.contains("::warning title=secretsync drift%3A drift::drift (env file drift.env): 2 change(s) pending: A, EXTRA\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains("::error title=secretsync%3A broken::"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("::"), "{}", out.stdout);
    assert!(
        !out.stderr.contains("title=secretsync drift%3A clean"),
        "no annotation for a target in sync"
    );
    let json = sb.run_with(&["plan", "--format", "json"], &env);
    assert!(serde_json::from_str::<serde_json::Value>(&json.stdout).is_ok());
    assert!(
        json.stderr
            .contains("::warning title=secretsync drift%3A missing::"),
        "{}",
        json.stderr
    );
    assert_no_canary("summary", &std::fs::read(&summary).unwrap(), CANARIES);
}

/// A saved plan without the broken target (a plan with errors cannot be applied).
fn saved_plan(sb: &Sandbox) -> std::path::PathBuf {
    let out = sb.run(&[
        "plan",
        "--out",
        "plan.json",
        "-t",
        "drift",
        "-t",
        "missing",
        "-t",
        "clean",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let plan = sb.path("plan.json");
    assert_no_canary("saved plan", &std::fs::read(&plan).unwrap(), CANARIES);
    plan
}

#[test]
fn a_fresh_saved_plan_is_applied_as_saved() {
    let sb = scenario();
    saved_plan(&sb);
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("Apply: 2 targets applied and verified, 1 in sync, 0 failed."),
        "{}",
        out.stdout
    );
    assert_eq!(
        sb.read("drift.env"),
        "# drift\nA=CANARY-alpha\nB=CANARY-bravo\n"
    );
}

#[test]
fn a_saved_plan_is_refused_when_the_manifest_changed() {
    let sb = scenario();
    saved_plan(&sb);
    let text = sb.read("secrets.yaml");
    sb.write(
        "secrets.yaml",
        &format!("{text}# a comment added after review\n"),
    );
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: the saved plan is stale, so nothing was applied:\n  - the manifest secrets.yaml changed since the plan was saved\n  hint: run `secretsync plan --out FILE` again and review the new plan\n"
    );
    assert_eq!(
        sb.read("drift.env"),
        "# drift\nA=\"CANARY-old-alpha\"\nB=CANARY-bravo\nEXTRA=1\n"
    );
}

#[test]
fn a_saved_plan_is_refused_when_a_target_changed() {
    let sb = scenario();
    saved_plan(&sb);
    sb.write("clean.env", "A=CANARY-alpha\nB=someone-changed-this\n");
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("  - target `clean` changed since the plan was saved: B\n"),
        "{}",
        out.stderr
    );
    sb.write(
        "clean.env",
        "A=CANARY-alpha\nB=CANARY-bravo\n# a new comment\n",
    );
    let out = sb.run(&["apply", "plan.json"]);
    assert!(
        out.stderr.contains(
            "  - target `clean` changed since the plan was saved (outside the managed keys)\n"
        ),
        "{}",
        out.stderr
    );
    assert_no_canary("stale output", out.all().as_bytes(), CANARIES);
}

#[test]
fn doctor_reports_each_problem_with_a_fix() {
    let sb = scenario();
    let out = sb.run(&["doctor"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("ok   the manifest decrypts: the identity from --identity"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(out.stdout.contains("fix: "), "{}", out.stdout);
    let healthy = sb.run(&["doctor", "-t", "drift", "-t", "clean"]);
    assert_eq!(healthy.code, 0, "{healthy:?}");
    assert!(
        healthy
            .stdout
            .ends_with("Doctor: everything checked is in order.\n"),
        "{}",
        healthy.stdout
    );
    let json = sb.run(&["doctor", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["format_version"], 2);
    assert!(doc["problems"].as_u64().unwrap() >= 1);
    for o in [out, healthy, json] {
        assert_no_canary("doctor", o.all().as_bytes(), CANARIES);
    }
}

#[test]
fn notify_posts_a_redacted_summary_on_drift_only() {
    let sb = scenario();
    let (url, rx, _l) = webhook::listener();
    let out = sb.run(&["plan", "--notify", &url]);
    assert_eq!(out.code, 1, "{out:?}");
    let body = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = doc["text"].as_str().unwrap();
    assert!(text.starts_with("*secretsync*: drift in `secrets.yaml`: 2 to add, 1 to change, 1 to delete; 1 target(s) unreachable"), "{text}");
    assert!(
        text.contains("• `drift`: A (holds the value replaced on 2026-11-20), EXTRA"),
        "{text}"
    );
    assert!(text.contains("• `broken` cannot be read"), "{text}");
    assert_no_canary("notification", body.as_bytes(), CANARIES);

    // In sync: nothing is sent.
    let (url, rx, _l2) = webhook::listener();
    let out = sb.run(&["plan", "--notify", &url, "-t", "clean"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "nothing may be sent when in sync"
    );
}

#[test]
fn a_failed_notification_is_reported() {
    let sb = scenario();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = sb.run(&[
        "plan",
        "-t",
        "drift",
        "--notify",
        &format!("http://127.0.0.1:{port}/hook/SECRETPATH"),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("error: the drift notification was not sent: cannot reach 127.0.0.1"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("SECRETPATH"),
        "the webhook's path is a credential: {}",
        out.stderr
    );
}

#[test]
fn completions_are_generated() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.run(&["completions", shell]);
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains("secretsync"), "{shell}");
        assert!(out.stdout.contains("detailed-exitcode"), "{shell}");
    }
}

/// The per-key targets: Railway (a sealed variable left alone, one
/// overwritten, an unmanaged one kept, a change) and a keychain (an add and
/// an item in sync), in every format.
fn per_key_scenario() -> (
    Sandbox,
    support::railway_server::RailwayServer,
    Vec<(String, String)>,
) {
    use support::railway_server::RailwayServer;
    let server = RailwayServer::start();
    server.add_project("p-golden", "shop");
    server.add_environment("p-golden", "env-prod", "production");
    server.add_service("p-golden", "svc-api", "api");
    server.add_account_token("CANARY-golden-token");
    server.set_var(
        "p-golden",
        "env-prod",
        Some("svc-api"),
        "A",
        "CANARY-old-alpha",
    );
    server.set_var(
        "p-golden",
        "env-prod",
        Some("svc-api"),
        "KEEP",
        "CANARY-bravo",
    );
    server.set_sealed("p-golden", "env-prod", Some("svc-api"), "SEALED");
    server.set_sealed("p-golden", "env-prod", None, "SEALED");

    let sb = Sandbox::new();
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(support::security_standin(), bin.join("security")).unwrap();
    let kc = sb.path("golden.keychain-db");
    let add = format!(
        "create-keychain -p pw \"{0}\"\nadd-generic-password -a B -s golden -w \"CANARY-bravo\" \"{0}\"\n",
        kc.display()
    );
    let mut child = std::process::Command::new(bin.join("security"))
        .arg("-i")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(add.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let fp = Fingerprinter::new(Some(&Secret::new(
        "0123456789abcdef0123456789abcdef".into(),
    )));
    let old = fp
        .fingerprint(&Secret::new("CANARY-old-alpha".into()))
        .unwrap();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  api:\n    type: railway\n    project: p-golden\n    environment: production\n    service: api\n  shared:\n    type: railway\n    project: p-golden\n    environment: production\n    overwrite_sealed: true\n  mac:\n    type: keychain\n    service: golden\n    keychain: {}\nsecrets:\n  A:\n    targets: [api, mac]\n    encrypted: |\n{}    previous:\n      - fingerprint: {old}\n        replaced: \"2026-11-20\"\n  B:\n    targets: [mac]\n    value: CANARY-bravo\n  SEALED:\n    targets: [api, shared]\n    encrypted: |\n{}",
            sb.header(),
            kc.display(),
            sb.encrypted("CANARY-alpha", 6),
            sb.encrypted("CANARY-charlie", 6)
        ),
    );
    let env = vec![
        (
            "PATH".to_string(),
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        ("SECRETSYNC_RAILWAY_ENDPOINT".to_string(), server.url()),
        (
            "SECRETSYNC_SECURITY".to_string(),
            bin.join("security").display().to_string(),
        ),
        (
            "RAILWAY_API_TOKEN".to_string(),
            "CANARY-golden-token".to_string(),
        ),
    ];
    (sb, server, env)
}

#[test]
fn per_key_targets_match_the_golden_files_in_every_format() {
    let (sb, _server, env) = per_key_scenario();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut canaries = CANARIES.to_vec();
    canaries.extend(["CANARY-charlie", "CANARY-golden-token"]);
    for (format, file) in [
        ("text", "plan-per-key.txt"),
        ("json", "plan-per-key.json"),
        ("markdown", "plan-per-key.md"),
    ] {
        let out = sb.run_with(&["plan", "--format", format], &env);
        assert_eq!(out.code, 0, "{out:?}");
        assert_no_canary(format, out.all().as_bytes(), &canaries);
        golden(file, &out.stdout, &sb);
    }
}
