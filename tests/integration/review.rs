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

    let out = run(&sb, &["plan", "--base", "base.yaml", "--format", "json"]);
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

    let text = run(&sb, &["plan", "--base", "base.yaml"]);
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
    let gh = run_env(&sb, &["plan", "--base", "base.yaml"], &env);
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
    let d = run(&sb, &["plan", "--base", "base.yaml", "--detailed-exitcode"]);
    assert_eq!(d.code, 2, "{d:?}");

    let md = run(
        &sb,
        &["plan", "--base", "base.yaml", "--format", "markdown"],
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

    let out = run(&sb, &["plan", "--base", "base.yaml", "--format", "json"]);
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

    let text = run(&sb, &["plan", "--base", "base.yaml", "-v"]);
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
    let quiet = run(&sb, &["plan", "--base", "base.yaml"]);
    assert!(!quiet.stdout.contains("= REENCRYPTED"), "{}", quiet.stdout);
    let md = run(
        &sb,
        &["plan", "--base", "base.yaml", "--format", "markdown"],
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
    let same = run(&sb, &["plan", "--base", "base.yaml", "--format", "json"]);
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
        let out = run(&sb, &["plan", "--base", "base.yaml", "--format", format]);
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
        &["plan", "--base", "base.yaml", "--format", "json"],
    ));
    assert_eq!(doc["review"]["fingerprints_hidden"], true);
    // The key is only hidden from output: the comparison still works.
    assert_eq!(doc["targets"][0]["items"][0]["state"], "differs");

    // Removing the key hides them too (and says so).
    sb.write(
        "secrets.yaml",
        &format!("version: 1\nrecipients:\n  - {}\n{body}", sb.recipient),
    );
    let out = run(&sb, &["plan", "--base", "base.yaml"]);
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
        &["plan", "--base", "secrets.yaml", "--out", "plan.json"],
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
        &["plan", "--base", "base.yaml", "--format", "markdown"],
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
    let out = run(&sb, &["plan", "--base", "base.yaml"]);
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
        &["plan", "--base", "base.yaml", "--format", "json"],
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
    let out = run(&sb, &["plan", "--base", "base.yaml", "--format", "json"]);
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
