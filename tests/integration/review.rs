//! Review mode, `secretsync plan --base REF`, through the real binary: the
//! base's target definitions and fingerprint_key, the head's secrets; targets
//! new or changed in the head are not contacted; values compared between
//! base and head; a base from a git revision or from a file. No value, and
//! no token, in any output.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::cli::{assert_no_canary, Out, Sandbox};
use support::railway_server::RailwayServer;

const CANARIES: &[&str] = &[
    "CANARY-rotated-old-6a1f",
    "CANARY-rotated-new-77b2",
    "CANARY-stable-0c3d",
    "CANARY-plain-5e9a",
    "CANARY-removed-1b1b",
    "CANARY-added-2c2c",
    "CANARY-on-disk-3d3d",
    "CANARY-fingerprint-key-other-4e4e",
    TOKEN,
];

const TOKEN: &str = "CANARY-account-token-review-9f0e";

/// The `version`, `recipients` and `fingerprint_key` lines, with a
/// fingerprint key of our choice.
fn header_with_key(sb: &Sandbox, key: &str) -> String {
    format!(
        "version: 1\nrecipients:\n  - {}\nfingerprint_key: |\n{}",
        sb.recipient,
        sb.encrypted(key, 2)
    )
}

fn run(sb: &Sandbox, args: &[&str]) -> Out {
    run_env(sb, args, &[])
}

fn run_env(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = sb.run_with(args, env);
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        CANARIES,
    );
    out
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

fn review_secret<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["review"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no secret {name} in {doc:#}"))
}

fn not_contacted<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["review"]["targets_not_contacted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
}

fn planned_targets(doc: &Value) -> Vec<String> {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// A folder that reading as an env file fails on: proof that a target
/// pointed at it was not read.
fn trap(sb: &Sandbox, rel: &str) {
    std::fs::create_dir_all(sb.path(rel)).unwrap();
}

#[test]
fn a_changed_and_a_new_env_file_target_are_not_read() {
    let sb = Sandbox::new();
    sb.write("app.env", "A=CANARY-plain-5e9a\n");
    trap(&sb, "trap.env");
    trap(&sb, "new-trap.env");
    let base = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\n  moved: {{ type: env_file, path: moved.env }}\nsecrets:\n  A:\n    targets: [app, moved]\n    value: CANARY-plain-5e9a\n",
        sb.header()
    );
    let head = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\n  moved: {{ type: env_file, path: trap.env }}\n  extra: {{ type: env_file, path: new-trap.env, prune: true }}\nsecrets:\n  A:\n    targets: [app, moved, extra]\n    value: CANARY-plain-5e9a\n",
        sb.header()
    );
    sb.write("base.yaml", &base);
    sb.write("secrets.yaml", &head);

    // Without --base the traps are read, and fail: they are real traps.
    let plain = run(&sb, &["plan"]);
    assert_eq!(plain.code, 1, "{plain:?}");
    assert!(
        plain
            .stdout
            .contains("moved (env file trap.env): cannot be read"),
        "{}",
        plain.stdout
    );

    let out = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    );
    assert_eq!(out.code, 0, "no target was read that fails: {out:?}");
    let doc = json(&out);
    assert_eq!(planned_targets(&doc), ["app"], "{doc:#}");
    assert_eq!(doc["review"]["base"], "base.yaml");
    assert_eq!(doc["review"]["base_kind"], "file");
    let moved = not_contacted(&doc, "moved").expect("moved is listed");
    assert_eq!(moved["change"], "changed");
    assert_eq!(moved["type"], "env_file");
    assert_eq!(moved["secrets"], serde_json::json!(["A"]));
    let diff = moved["definition_diff"].as_str().unwrap();
    assert!(
        diff.contains("-path: \"moved.env\"\n+path: \"trap.env\"\n"),
        "{diff}"
    );
    let extra = not_contacted(&doc, "extra").expect("extra is listed");
    assert_eq!(extra["change"], "new");
    assert!(extra["definition_diff"]
        .as_str()
        .unwrap()
        .contains("+prune: true\n"));

    let text = run(&sb, &["plan", "--base", "file:base.yaml"]);
    assert_eq!(text.code, 0, "{text:?}");
    for line in [
        "moved (env_file): definition changed in this change: not contacted in review, will be on merge",
        "extra (env_file): new in this change: not contacted in review, will be on merge",
        "    -path: \"moved.env\"",
        "    +path: \"trap.env\"",
        "2 targets not contacted",
    ] {
        assert!(text.stdout.contains(line), "{line:?} in:\n{}", text.stdout);
    }
    assert!(!text.stdout.contains("cannot be read"), "{}", text.stdout);

    // Under GitHub Actions: the review in the step summary, a warning per
    // target not contacted.
    let summary = sb.path("summary.md");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    let gh = run_env(&sb, &["plan", "--base", "file:base.yaml"], &env);
    // Annotations go to stderr, never into a captured document (#17).
    assert!(
        gh.stderr.contains("::warning title=secretsync review%3A extra::extra (env_file): new in this change: not contacted in review, will be on merge\n"),
        "{}",
        gh.stderr
    );
    assert!(!gh.stdout.contains("::warning"), "{}", gh.stdout);
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.contains("### secretsync review against `base.yaml`"),
        "{written}"
    );

    // Changes pending on merge: --detailed-exitcode says so.
    let d = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--detailed-exitcode"],
    );
    assert_eq!(d.code, 2, "{d:?}");

    let md = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "markdown"],
    );
    assert_eq!(md.code, 0, "{md:?}");
    assert!(
        md.stdout
            .contains("### secretsync review against `base.yaml`"),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("| `extra` | env_file | new in this change: not contacted in review, will be on merge | `A` |"), "{}", md.stdout);
    assert!(md.stdout.contains("```diff\n"), "{}", md.stdout);
}

#[test]
fn a_changed_or_new_railway_target_gets_no_request() {
    let server = RailwayServer::start();
    server.add_project("p-review-1", "shop");
    server.add_environment("p-review-1", "env-prod", "production");
    server.add_service("p-review-1", "svc-api", "api");
    server.add_service("p-review-1", "svc-worker", "worker");
    server.add_account_token(TOKEN);
    let sb = Sandbox::new();
    sb.write("app.env", "");
    let railway = |service: &str| {
        format!(
            "{{ type: railway, project: p-review-1, environment: production, service: {service} }}"
        )
    };
    let secret = sb.encrypted("CANARY-stable-0c3d", 6);
    let base = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\n  api: {}\nsecrets:\n  S:\n    targets: [app, api]\n    encrypted: |\n{secret}",
        sb.header(),
        railway("api")
    );
    // The head points `api` at another service and adds a target.
    let head = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\n  api: {}\n  added: {}\nsecrets:\n  S:\n    targets: [app, api, added]\n    encrypted: |\n{secret}",
        sb.header(),
        railway("worker"),
        railway("worker")
    );
    sb.write("base.yaml", &base);
    sb.write("secrets.yaml", &head);
    let env = [
        ("SECRETSYNC_RAILWAY_ENDPOINT", server.url()),
        ("RAILWAY_API_TOKEN", TOKEN.to_string()),
        ("SECRETSYNC_RAILWAY_TIMEOUT", "2".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // The server answers a plain plan: it is reachable and would log.
    let plain = run_env(&sb, &["plan"], &env);
    assert!(!server.requests().is_empty(), "{plain:?}");
    server.clear_requests();

    let out = run_env(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let requests = server.requests();
    assert!(
        requests.is_empty(),
        "review mode contacted Railway: {:?}",
        requests.iter().map(|r| &r.query).collect::<Vec<_>>()
    );
    let doc = json(&out);
    assert_eq!(planned_targets(&doc), ["app"], "{doc:#}");
    assert_eq!(not_contacted(&doc, "api").unwrap()["change"], "changed");
    assert_eq!(not_contacted(&doc, "added").unwrap()["change"], "new");
    let diff = not_contacted(&doc, "api").unwrap()["definition_diff"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        diff.contains("-service: \"api\"\n+service: \"worker\"\n"),
        "{diff}"
    );
}

#[test]
fn values_are_compared_between_base_and_head() {
    let sb = Sandbox::new();
    sb.write("app.env", "");
    let same_cipher = sb.encrypted("CANARY-stable-0c3d", 6);
    let base = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\nsecrets:\n  ROTATED:\n    targets: [app]\n    encrypted: |\n{}  REENCRYPTED:\n    targets: [app]\n    encrypted: |\n{}  UNTOUCHED:\n    targets: [app]\n    encrypted: |\n{same_cipher}  PLAIN:\n    targets: [app]\n    value: CANARY-plain-5e9a\n  GONE:\n    targets: [app]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted("CANARY-rotated-old-6a1f", 6),
        sb.encrypted("CANARY-stable-0c3d", 6),
        sb.encrypted("CANARY-removed-1b1b", 6),
    );
    let head = format!(
        "{}targets:\n  app: {{ type: env_file, path: app.env }}\nsecrets:\n  ROTATED:\n    targets: [app]\n    encrypted: |\n{}  REENCRYPTED:\n    targets: [app]\n    encrypted: |\n{}  UNTOUCHED:\n    targets: [app]\n    encrypted: |\n{same_cipher}  PLAIN:\n    targets: []\n    encrypted: |\n{}  NEW:\n    targets: [app]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted("CANARY-rotated-new-77b2", 6),
        sb.encrypted("CANARY-stable-0c3d", 6),
        // The same value, now encrypted: unchanged, and no longer on app.
        sb.encrypted("CANARY-plain-5e9a", 6),
        sb.encrypted("CANARY-added-2c2c", 6),
    );
    sb.write("base.yaml", &base);
    sb.write("secrets.yaml", &head);

    let out = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    assert_eq!(review_secret(&doc, "ROTATED")["value"], "changed");
    assert_eq!(review_secret(&doc, "REENCRYPTED")["value"], "unchanged");
    assert_eq!(review_secret(&doc, "UNTOUCHED")["value"], "unchanged");
    assert_eq!(review_secret(&doc, "PLAIN")["value"], "unchanged");
    assert_eq!(
        review_secret(&doc, "PLAIN")["targets_removed"],
        serde_json::json!(["app"])
    );
    assert_eq!(review_secret(&doc, "NEW")["value"], "added");
    assert_eq!(review_secret(&doc, "GONE")["value"], "removed");
    let summary = &doc["review"]["summary"];
    assert_eq!(
        (
            &summary["changed"],
            &summary["added"],
            &summary["removed"],
            &summary["unchanged"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(3)
        ),
        "{summary:#}"
    );

    let text = run(&sb, &["plan", "--base", "file:base.yaml", "-v"]);
    for line in [
        "    ~ ROTATED                      value changed\n",
        "    = REENCRYPTED                  value unchanged\n",
        "    = PLAIN                        value unchanged; no longer on app\n",
        "    + NEW                          added; on app\n",
        "    - GONE                         removed\n",
        "Secrets against the base: 1 changed, 1 added, 1 removed, 3 unchanged.\n",
    ] {
        assert!(text.stdout.contains(line), "{line:?} in:\n{}", text.stdout);
    }
    // Without -v the unchanged are counted, not listed.
    let quiet = run(&sb, &["plan", "--base", "file:base.yaml"]);
    assert!(!quiet.stdout.contains("= REENCRYPTED"), "{}", quiet.stdout);
    let md = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "markdown"],
    );
    assert!(
        md.stdout.contains("| `ROTATED` | value changed |"),
        "{}",
        md.stdout
    );
}

#[test]
fn a_changed_fingerprint_key_hides_every_fingerprint() {
    let sb = Sandbox::new();
    // A value that differs on the target: the plan shows fingerprints.
    sb.write("app.env", "A=CANARY-on-disk-3d3d\n");
    let body = format!(
        "targets:\n  app: {{ type: env_file, path: app.env }}\nsecrets:\n  A:\n    targets: [app]\n    encrypted: |\n{}",
        sb.encrypted("CANARY-stable-0c3d", 6)
    );
    let key = "0123456789abcdef0123456789abcdef";
    sb.write("base.yaml", &format!("{}{body}", header_with_key(&sb, key)));

    // The same key, encrypted again (as rekey does): fingerprints stay.
    sb.write(
        "secrets.yaml",
        &format!("{}{body}", header_with_key(&sb, key)),
    );
    let same = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    );
    assert_eq!(same.code, 0, "{same:?}");
    assert!(same.stdout.contains("fp:"), "{}", same.stdout);
    assert_eq!(json(&same)["review"]["fingerprints_hidden"], false);

    // A key the author of the change chose: no fingerprint at all, and why.
    sb.write(
        "secrets.yaml",
        &format!(
            "{}{body}",
            header_with_key(&sb, "CANARY-fingerprint-key-other-4e4e")
        ),
    );
    for format in ["text", "json", "markdown"] {
        let out = run(
            &sb,
            &["plan", "--base", "file:base.yaml", "--format", format],
        );
        assert_eq!(out.code, 0, "{out:?}");
        assert!(!out.all().contains("fp:"), "{format}: {}", out.stdout);
        assert!(
            out.stdout
                .contains("this change replaces the fingerprint_key"),
            "{format}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("guessing oracle"), "{}", out.stdout);
    }
    let doc = json(&run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    ));
    assert_eq!(doc["review"]["fingerprints_hidden"], true);
    // The key is only hidden from output: the comparison still works.
    assert_eq!(doc["targets"][0]["items"][0]["state"], "differs");

    // Removing the key hides them too (and says so).
    sb.write(
        "secrets.yaml",
        &format!("version: 1\nrecipients:\n  - {}\n{body}", sb.recipient),
    );
    let out = run(&sb, &["plan", "--base", "file:base.yaml"]);
    assert!(
        out.stdout
            .contains("this change removes the fingerprint_key"),
        "{}",
        out.stdout
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_base_comes_from_a_git_revision() {
    let sb = Sandbox::new();
    let repo = sb.path("repo");
    std::fs::create_dir_all(repo.join("config")).unwrap();
    std::fs::write(repo.join("config/app.env"), "A=CANARY-on-disk-3d3d\n").unwrap();
    trap(&sb, "repo/config/trap.env");
    let secrets = |value: &str, path: &str| {
        format!(
            "{}targets:\n  app: {{ type: env_file, path: {path} }}\nsecrets:\n  A:\n    targets: [app]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted(value, 6)
        )
    };
    std::fs::write(
        repo.join("config/secrets.yaml"),
        secrets("CANARY-rotated-old-6a1f", "app.env"),
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "config/secrets.yaml"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    // The change under review: a rotation, and the target moved onto a trap.
    std::fs::write(
        repo.join("config/secrets.yaml"),
        secrets("CANARY-rotated-new-77b2", "trap.env"),
    )
    .unwrap();

    let args = |base: &'static str| -> Vec<&'static str> {
        vec![
            "plan",
            "-f",
            "repo/config/secrets.yaml",
            "--base",
            base,
            "--format",
            "json",
        ]
    };
    let out = run(&sb, &args("main"));
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["review"]["base"], "main");
    assert_eq!(doc["review"]["base_kind"], "git");
    assert_eq!(review_secret(&doc, "A")["value"], "changed");
    assert_eq!(not_contacted(&doc, "app").unwrap()["change"], "changed");
    assert!(planned_targets(&doc).is_empty(), "{doc:#}");

    // Committed: the head is the base, the target is read, nothing changed.
    git(&repo, &["commit", "-q", "-am", "head"]);
    std::fs::remove_dir(sb.path("repo/config/trap.env")).unwrap();
    std::fs::write(
        sb.path("repo/config/trap.env"),
        "A=CANARY-rotated-new-77b2\n",
    )
    .unwrap();
    // A file the target reads in the checkout is part of its definition:
    // committed, as the base has it, it is read.
    git(&repo, &["add", "config/trap.env"]);
    git(&repo, &["commit", "-q", "-m", "trap"]);
    let out = run(&sb, &args("HEAD"));
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    assert_eq!(planned_targets(&doc), ["app"]);
    assert_eq!(review_secret(&doc, "A")["value"], "unchanged");
    assert_eq!(doc["targets"][0]["status"], "in_sync", "{doc:#}");

    // A revision that is not there, or that would read as an option.
    let out = run(&sb, &args("no-such-branch"));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("--base no-such-branch: no such revision"),
        "{}",
        out.stderr
    );
    let out = run(&sb, &args("--output=/tmp/x"));
    assert_eq!(out.code, 1, "{out:?}");
    let out = run(
        &sb,
        &[
            "plan",
            "-f",
            "repo/config/secrets.yaml",
            "--base=-oProxyCommand=x",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("cannot be empty or start with `-`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_review_plan_cannot_be_saved() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &format!("{}targets: {{}}\n", sb.header()));
    let out = run(
        &sb,
        &["plan", "--base", "file:secrets.yaml", "--out", "plan.json"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!sb.path("plan.json").exists());
}

#[test]
fn forged_names_stay_inside_their_markdown() {
    let sb = Sandbox::new();
    let base = format!("{}targets: {{}}\nsecrets: {{}}\n", sb.header());
    let head = format!(
        "{}targets:\n  \"x`` | | All in sync ![i](http://e/x.png)\": {{ type: env_file, path: \"a.env```All in sync\" }}\nsecrets: {{}}\n",
        sb.header()
    );
    sb.write("base.yaml", &base);
    sb.write("secrets.yaml", &head);
    let md = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "markdown"],
    );
    assert_eq!(md.code, 0, "{md:?}");
    // The name stays one code span in its cell; the definition stays in a
    // fence longer than the backticks it holds.
    let name = secretsync::render::md_code("x`` | | All in sync ![i](http://e/x.png)");
    assert!(name.starts_with("<code>") && !name.contains('|'), "{name}");
    assert!(
        md.stdout.contains(&format!("| {name} | env_file | new in this change: not contacted in review, will be on merge |  |\n")),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("\n````diff\n"), "{}", md.stdout);
    assert!(
        md.stdout.contains("+path: \"a.env```All in sync\"\n````\n"),
        "{}",
        md.stdout
    );
}

#[test]
fn added_and_removed_recipients_are_pointed_out() {
    let sb = Sandbox::new();
    let added = age::x25519::Identity::generate().to_public().to_string();
    let removed = age::x25519::Identity::generate().to_public().to_string();
    let body = "targets: {}\nsecrets: {}\n";
    let with = |extra: &str| {
        sb.header().replacen(
            &format!("recipients:\n  - {}\n", sb.recipient),
            &format!("recipients:\n  - {}\n  - {extra}\n", sb.recipient),
            1,
        ) + body
    };
    sb.write("base.yaml", &with(&removed));
    sb.write("secrets.yaml", &with(&added));
    let out = run(&sb, &["plan", "--base", "file:base.yaml"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "note: this change adds the recipient {added}: it can decrypt every value encrypted to it"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "note: this change removes the recipient {removed}"
        )),
        "{}",
        out.stdout
    );
    let doc = json(&run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    ));
    assert_eq!(
        doc["review"]["recipients_added"],
        serde_json::json!([added])
    );
    assert_eq!(
        doc["review"]["recipients_removed"],
        serde_json::json!([removed])
    );
}

#[test]
fn a_value_that_cannot_be_decrypted_is_not_compared() {
    let sb = Sandbox::new();
    // The base's value was encrypted to someone else only.
    let stranger =
        secretsync::crypto::Recipient::X25519(age::x25519::Identity::generate().to_public());
    let theirs = secretsync::crypto::encrypt(&[stranger], b"CANARY-removed-1b1b").unwrap();
    let theirs: String = theirs.lines().map(|l| format!("      {l}\n")).collect();
    let secret = |armored: &str| {
        format!(
            "{}targets: {{}}\nsecrets:\n  A:\n    targets: []\n    encrypted: |\n{armored}",
            sb.header()
        )
    };
    sb.write("base.yaml", &secret(&theirs));
    sb.write(
        "secrets.yaml",
        &secret(&sb.encrypted("CANARY-stable-0c3d", 6)),
    );
    let out = run(
        &sb,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    let a = review_secret(&doc, "A");
    assert_eq!(a["value"], "unknown");
    assert!(
        a["reason"].as_str().unwrap().starts_with(
            "the base's value: the base's secret `A` is not encrypted to the identity"
        ),
        "{a:#}"
    );
}

// ---- #23: review mode against a determined pull request ---------------------------

/// A git repository in the sandbox's root (the checkout), with `files`
/// committed as the base on `main`, and `origin/main` pointing at it.
fn repo_with_base(sb: &Sandbox, files: &[(&str, &str)]) -> String {
    git(sb.path("").as_path(), &["init", "-q", "-b", "main"]);
    for (rel, text) in files {
        sb.write(rel, text);
        git(sb.path("").as_path(), &["add", rel]);
    }
    git(sb.path("").as_path(), &["commit", "-q", "-m", "base"]);
    git(
        sb.path("").as_path(),
        &["update-ref", "refs/remotes/origin/main", "HEAD"],
    );
    let out = Command::new("git")
        .current_dir(sb.path(""))
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The keyed fingerprint of `value` under the sandbox's fingerprint key.
fn fp_of(sb: &Sandbox, value: &str) -> String {
    secretsync::crypto::Fingerprinter::new(Some(&secretsync::secret::Secret::new(
        sb.fingerprint_key.clone(),
    )))
    .fingerprint(&secretsync::secret::Secret::new(value.to_string()))
    .unwrap()
}

/// Finding 1: a pull request that commits a file named `origin/main`
/// holding its own manifest made it the base of its own review.
#[test]
fn a_file_named_like_the_base_revision_is_not_the_base() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let app = outside.path().join("app.env");
    std::fs::write(&app, "A=CANARY-on-disk-3d3d\n").unwrap();
    let trap = outside.path().join("trap.env");
    std::fs::create_dir(&trap).unwrap();
    let manifest = |value: &str, path: &Path| {
        format!(
            "{}targets:\n  app: {{ type: env_file, path: {} }}\nsecrets:\n  A:\n    targets: [app]\n    encrypted: |\n{}",
            sb.header(),
            path.display(),
            sb.encrypted(value, 6)
        )
    };
    let commit = repo_with_base(
        &sb,
        &[("secrets.yaml", &manifest("CANARY-rotated-old-6a1f", &app))],
    );
    // The change: a new value, the target moved onto a trap, and its own
    // manifest committed as the file `origin/main`.
    let head = manifest("CANARY-rotated-new-77b2", &trap);
    sb.write("secrets.yaml", &head);
    sb.write("origin/main", &head);

    let out = run(&sb, &["plan", "--base", "origin/main", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["review"]["base_kind"], "git", "{doc:#}");
    assert_eq!(doc["review"]["base"], "origin/main");
    assert_eq!(doc["review"]["base_commit"], commit.as_str());
    assert_eq!(review_secret(&doc, "A")["value"], "changed");
    assert_eq!(not_contacted(&doc, "app").unwrap()["change"], "changed");
    assert!(planned_targets(&doc).is_empty(), "{doc:#}");

    // The header says what the base was.
    let text = run(&sb, &["plan", "--base", "origin/main"]);
    assert!(
        text.stdout.contains(&format!(
            "Review against revision origin/main (commit {commit})"
        )),
        "{}",
        text.stdout
    );
    let md = run(
        &sb,
        &["plan", "--base", "origin/main", "--format", "markdown"],
    );
    assert!(
        md.stdout.contains(&format!(
            "### secretsync review against `origin/main` (revision, commit `{commit}`)"
        )),
        "{}",
        md.stdout
    );

    // A file base inside the checkout is the change's: refused.
    let out = run(&sb, &["plan", "--base", "file:origin/main"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("the file is inside the checkout"),
        "{}",
        out.stderr
    );
    // One outside it is a base.
    let base_file = outside.path().join("base.yaml");
    std::fs::write(&base_file, manifest("CANARY-rotated-old-6a1f", &app)).unwrap();
    let arg = format!("file:{}", base_file.display());
    let out = run(&sb, &["plan", "--base", &arg, "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out)["review"]["base_kind"], "file");
    let text = run(&sb, &["plan", "--base", &arg]);
    assert!(
        text.stdout
            .contains(&format!("Review against file {}", base_file.display())),
        "{}",
        text.stdout
    );
}

/// Finding 2: a change that renames a real secret onto a new key and adds
/// guesses got a base-keyed fingerprint of every guess (an offline oracle).
#[test]
fn fingerprints_of_values_the_change_chose_are_never_shown() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let prod = outside.path().join("prod.env");
    std::fs::write(&prod, "DB=CANARY-stable-0c3d\nKEEP=CANARY-on-disk-3d3d\n").unwrap();
    let prod = prod.display().to_string();
    let keep = sb.encrypted("CANARY-rotated-old-6a1f", 6);
    let db = sb.encrypted("CANARY-stable-0c3d", 6);
    let base = format!(
        "{}targets:\n  prod: {{ type: env_file, path: {prod} }}\nsecrets:\n  DB:\n    targets: [prod]\n    encrypted: |\n{db}  KEEP:\n    targets: [prod]\n    encrypted: |\n{keep}",
        sb.header()
    );
    repo_with_base(&sb, &[("secrets.yaml", &base)]);
    let guesses: Vec<String> = (0..20)
        .map(|i| {
            if i == 7 {
                "CANARY-stable-0c3d".to_string()
            } else {
                format!("CANARY-guess-{i:02}")
            }
        })
        .collect();
    let mut head = format!(
        "{}targets:\n  prod: {{ type: env_file, path: {prod} }}\nsecrets:\n  DB:\n    targets: [prod]\n    rename: {{ prod: XDB }}\n    encrypted: |\n{db}  KEEP:\n    targets: [prod]\n    encrypted: |\n{keep}",
        sb.header()
    );
    for (i, g) in guesses.iter().enumerate() {
        head.push_str(&format!(
            "  G{i}:\n    targets: [prod]\n    encrypted: |\n{}",
            sb.encrypted(g, 6)
        ));
    }
    sb.write("secrets.yaml", &head);

    let mut canaries: Vec<&str> = CANARIES.to_vec();
    canaries.extend(guesses.iter().map(String::as_str));
    let mut seen = String::new();
    for format in ["text", "json", "markdown"] {
        let out = sb.run(&["plan", "--base", "main", "-v", "--format", format]);
        assert_ne!(out.code, 1, "{out:?}");
        assert_no_canary(format, out.all().as_bytes(), &canaries);
        seen.push_str(&out.all());
    }
    for g in guesses.iter().filter(|g| g.starts_with("CANARY-guess")) {
        let fp = fp_of(&sb, g);
        assert!(
            !seen.contains(&fp),
            "the fingerprint {fp} of a guess is shown:\n{seen}"
        );
    }
    // G7 guessed right: its fingerprint would equal the real value's, shown
    // for XDB. No item of a guess carries one.
    let doc = json(&sb.run(&["plan", "--base", "main", "--format", "json"]));
    for item in doc["targets"][0]["items"].as_array().unwrap() {
        if item["secret"].as_str().is_some_and(|s| s.starts_with('G')) {
            assert!(item.get("manifest_fingerprint").is_none(), "{item:#}");
        }
    }
    // What review mode still shows: fingerprints of values it did not
    // choose (KEEP's, unchanged, and the target's).
    assert!(
        seen.contains(&fp_of(&sb, "CANARY-rotated-old-6a1f")),
        "{seen}"
    );
    assert!(seen.contains(&fp_of(&sb, "CANARY-on-disk-3d3d")), "{seen}");
    assert!(
        seen.contains("no fingerprint is shown of the 20 values this change sets"),
        "{seen}"
    );
    let doc = json(&sb.run(&["plan", "--base", "main", "--format", "json"]));
    assert_eq!(
        doc["review"]["fingerprints_hidden_for"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
}

/// Finding 3: a base target whose files lie in the checkout read the
/// change's files: planted lines got fingerprints, a replaced
/// known_hosts_file let a man in the middle in, a symlink listed another
/// file's keys.
#[test]
fn a_target_reading_files_the_change_wrote_is_not_contacted() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let secret_file = outside.path().join("private.env");
    std::fs::write(&secret_file, "STOLEN_KEY_NAME_9d1e=x\n").unwrap();
    let a = sb.encrypted("CANARY-stable-0c3d", 6);
    let manifest = format!(
        "{}targets:\n  local: {{ type: env_file, path: local.env }}\n  same: {{ type: env_file, path: config/same.env }}\n  linked: {{ type: env_file, path: linked.env }}\n  box: {{ type: ssh_env, host: deploy@127.0.0.1, port: 1, known_hosts_file: known_hosts, connect_timeout: 2s, path: /srv/app.env }}\nsecrets:\n  A:\n    targets: [local, same, linked, box]\n    encrypted: |\n{a}",
        sb.header()
    );
    std::fs::create_dir_all(sb.path("config")).unwrap();
    repo_with_base(
        &sb,
        &[
            ("secrets.yaml", &manifest),
            ("local.env", "A=CANARY-on-disk-3d3d\n"),
            ("config/same.env", "A=CANARY-stable-0c3d\n"),
            ("linked.env", "A=CANARY-stable-0c3d\n"),
            ("known_hosts", "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHz6uXe1ZXmfn4pTHMrBKOuKUdSDEJyrbA5c6sTOeuZ\n"),
        ],
    );
    // The change leaves the manifest alone and edits the files instead.
    sb.write(
        "local.env",
        "A=CANARY-on-disk-3d3d\nG1=CANARY-guess-01\nG2=CANARY-guess-02\n",
    );
    std::fs::remove_file(sb.path("linked.env")).unwrap();
    std::os::unix::fs::symlink(&secret_file, sb.path("linked.env")).unwrap();
    sb.write("known_hosts", "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn7cNWqgsPZ9cK1a5m1dXWbQ9k1n6pq8vYp0c3mH7JX\n");

    let canaries = [CANARIES, &["CANARY-guess-01", "CANARY-guess-02"]].concat();
    let mut seen = String::new();
    for format in ["text", "json", "markdown"] {
        let out = sb.run(&["plan", "--base", "main", "-v", "--format", format]);
        // `box` is not contacted: no connection error.
        assert_eq!(out.code, 0, "{format}: {out:?}");
        assert_no_canary(format, out.all().as_bytes(), &canaries);
        seen.push_str(&out.all());
    }
    assert!(!seen.contains("STOLEN_KEY_NAME_9d1e"), "{seen}");
    for g in ["CANARY-guess-01", "CANARY-guess-02"] {
        assert!(!seen.contains(&fp_of(&sb, g)), "{seen}");
    }
    let doc = json(&sb.run(&["plan", "--base", "main", "--format", "json"]));
    assert_eq!(planned_targets(&doc), ["same"], "{doc:#}");
    for (name, why) in [
        ("local", "local.env: modified by this change"),
        (
            "linked",
            "linked.env: a symlink (or under one) in the checkout",
        ),
        ("box", "known_hosts: modified by this change"),
    ] {
        let t = not_contacted(&doc, name).unwrap_or_else(|| panic!("{name}: {doc:#}"));
        assert_eq!(t["change"], "files_changed", "{t:#}");
        let files = t["files_changed"].as_array().unwrap();
        assert!(
            files.iter().any(|f| f.as_str().unwrap().ends_with(why)),
            "{name}: {files:?}"
        );
    }
    let text = sb.run(&["plan", "--base", "main"]);
    assert!(
        text.stdout.contains(
            "local (env_file): reads files this change wrote: not contacted in review, will be on merge"
        ),
        "{}",
        text.stdout
    );

    // The files back as the base has them: every target is contacted
    // (`box` then fails to connect, which shows it was).
    git(
        sb.path("").as_path(),
        &[
            "checkout",
            "-q",
            "--",
            "local.env",
            "linked.env",
            "known_hosts",
        ],
    );
    let doc = json(&sb.run(&["plan", "--base", "main", "--format", "json"]));
    assert_eq!(
        planned_targets(&doc),
        ["local", "same", "linked", "box"],
        "{doc:#}"
    );
}

/// Finding 4: a copy of production's ciphertext read as a rotation, and a
/// copy of the fingerprint key could be deployed as a secret.
#[test]
fn a_copied_value_is_named_and_the_fingerprint_key_is_never_a_secret() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let (prod, staging) = (
        outside.path().join("prod.env"),
        outside.path().join("staging.env"),
    );
    std::fs::write(&prod, "").unwrap();
    std::fs::write(&staging, "").unwrap();
    let key_block = sb.encrypted(&sb.fingerprint_key, 2);
    let header = format!(
        "version: 1\nrecipients:\n  - {}\nfingerprint_key: |\n{key_block}",
        sb.recipient
    );
    let prod_db = sb.encrypted("CANARY-stable-0c3d", 6);
    let targets = format!(
        "targets:\n  prod: {{ type: env_file, path: {} }}\n  staging: {{ type: env_file, path: {} }}\n",
        prod.display(),
        staging.display()
    );
    let base = format!(
        "{header}{targets}secrets:\n  DB_PASSWORD:\n    targets: [prod]\n    encrypted: |\n{prod_db}  STAGING_DB:\n    targets: [staging]\n    encrypted: |\n{}",
        sb.encrypted("CANARY-rotated-old-6a1f", 6)
    );
    repo_with_base(&sb, &[("secrets.yaml", &base)]);
    let head = format!(
        "{header}{targets}secrets:\n  DB_PASSWORD:\n    targets: [prod]\n    encrypted: |\n{prod_db}  STAGING_DB:\n    targets: [staging]\n    encrypted: |\n{prod_db}"
    );
    sb.write("secrets.yaml", &head);
    let doc = json(&run(&sb, &["plan", "--base", "main", "--format", "json"]));
    let s = review_secret(&doc, "STAGING_DB");
    assert_eq!(s["value"], "changed");
    assert_eq!(s["same_value_as"]["secret"], "DB_PASSWORD", "{s:#}");
    let text = run(&sb, &["plan", "--base", "main"]);
    assert!(
        text.stdout
            .contains("value changed; now holds the same value as DB_PASSWORD (on prod)"),
        "{}",
        text.stdout
    );
    let md = run(&sb, &["plan", "--base", "main", "--format", "markdown"]);
    assert!(
        md.stdout
            .contains("now holds the same value as `DB_PASSWORD` (on `prod`)"),
        "{}",
        md.stdout
    );

    // The fingerprint key's own block (or the key encrypted afresh) as a
    // secret's value: refused by review, plan and apply, nothing written.
    let copied: String = key_block.lines().map(|l| format!("    {l}\n")).collect();
    for value in [copied, sb.encrypted(&sb.fingerprint_key, 6)] {
        sb.write(
            "secrets.yaml",
            &format!("{head}  LEAK:\n    targets: [staging]\n    encrypted: |\n{value}"),
        );
        for args in [
            &["plan", "--base", "main"][..],
            &["plan"],
            &["apply", "--auto-approve"],
        ] {
            let out = run(&sb, args);
            assert_eq!(out.code, 1, "{args:?}: {out:?}");
            assert!(
                out.stderr
                    .contains("secret `LEAK` holds the value of the manifest's fingerprint_key"),
                "{args:?}: {}",
                out.stderr
            );
            assert!(!out.all().contains(&sb.fingerprint_key), "{out:?}");
        }
        assert_eq!(std::fs::read_to_string(&staging).unwrap(), "");
    }
}

/// `ci` cases, or PROPTEST_CASES when set (a longer run).
fn cases(ci: u32) -> proptest::prelude::ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ci);
    proptest::prelude::ProptestConfig::with_cases(n)
}

/// One random head built from [`oracle_base`]: renames, copies of
/// ciphertext, added guess secrets, changed values, lines planted in the
/// checkout's env file. Returns the head and the guesses it chose.
fn oracle_head(
    sb: &Sandbox,
    prod: &str,
    ciphers: &[String],
    ops: &[(u8, usize, usize, String)],
) -> (String, Vec<String>) {
    let mut values: Vec<String> = ciphers.to_vec();
    let mut renames: Vec<Option<String>> = vec![None; ciphers.len()];
    let mut added = String::new();
    let mut planted = String::from("S0=CANARY-base-0\n");
    let mut guesses = Vec::new();
    for (n, (op, i, j, word)) in ops.iter().enumerate() {
        let guess = format!("CANARY-guess-{n}-{word}");
        match op {
            0 => renames[*i] = Some(format!("R{n}")),
            1 => values[*j] = ciphers[*i].clone(),
            2 => {
                let on = if *j == 0 { "prod" } else { "local" };
                added.push_str(&format!(
                    "  G{n}:\n    targets: [{on}]\n    encrypted: |\n{}",
                    sb.encrypted(&guess, 6)
                ));
                guesses.push(guess);
            }
            3 => {
                values[*i] = sb.encrypted(&guess, 6);
                guesses.push(guess);
            }
            _ => {
                planted.push_str(&format!("P{n}={guess}\n"));
                guesses.push(guess);
            }
        }
    }
    sb.write("local.env", &planted);
    let mut head = format!(
        "{}targets:\n  prod: {{ type: env_file, path: {prod} }}\n  local: {{ type: env_file, path: local.env }}\nsecrets:\n",
        sb.header()
    );
    for (i, v) in values.iter().enumerate() {
        head.push_str(&format!("  S{i}:\n    targets: [prod, local]\n"));
        if let Some(r) = &renames[i] {
            head.push_str(&format!("    rename: {{ prod: {r} }}\n"));
        }
        head.push_str(&format!("    encrypted: |\n{v}"));
    }
    head.push_str(&added);
    (head, guesses)
}

proptest::proptest! {
    #![proptest_config(cases(6))]

    /// Whatever a head does to a base (renames, copies of ciphertext,
    /// added guess secrets, changed values, lines planted in a file the
    /// checkout holds), no output of its review holds a base-keyed
    /// fingerprint of a value it chose or of a file it could write.
    #[test]
    fn no_head_gets_a_fingerprint_of_its_guesses(
        ops in proptest::collection::vec((0u8..5, 0usize..3, 0usize..2, "[a-z]{4}"), 1..6)
    ) {
        let sb = Sandbox::new();
        let outside = tempfile::tempdir().unwrap();
        let prod = outside.path().join("prod.env");
        std::fs::write(&prod, "S0=CANARY-base-0\nS1=CANARY-on-prod\nX=CANARY-unmanaged\n").unwrap();
        let prod = prod.display().to_string();
        let ciphers: Vec<String> = (0..3).map(|i| sb.encrypted(&format!("CANARY-base-{i}"), 6)).collect();
        let mut base = format!(
            "{}targets:\n  prod: {{ type: env_file, path: {prod} }}\n  local: {{ type: env_file, path: local.env }}\nsecrets:\n",
            sb.header()
        );
        for (i, c) in ciphers.iter().enumerate() {
            base.push_str(&format!("  S{i}:\n    targets: [prod, local]\n    encrypted: |\n{c}"));
        }
        repo_with_base(&sb, &[("secrets.yaml", &base), ("local.env", "S0=CANARY-base-0\n")]);
        let (head, guesses) = oracle_head(&sb, &prod, &ciphers, &ops);
        sb.write("secrets.yaml", &head);
        let mut seen = String::new();
        for format in ["text", "json", "markdown"] {
            let out = sb.run(&["plan", "--base", "main", "-v", "--format", format]);
            proptest::prop_assert_eq!(out.code, 0, "{:?}", out);
            seen.push_str(&out.all());
        }
        for g in &guesses {
            proptest::prop_assert!(!seen.contains(g.as_str()), "the value {} is printed", g);
            let fp = fp_of(&sb, g);
            proptest::prop_assert!(!seen.contains(&fp), "fingerprint {} of {} in:\n{}", fp, g, seen);
        }
    }
}
