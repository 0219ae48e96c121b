//! Manifest editing through the real binary: init, set, rotate, import, get,
//! recipients and rekey. Edits keep every other byte; no command but `get`
//! prints a value.

use crate::support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use support::cli::{assert_no_canary, run, secretsync_cmd, Out, Sandbox};

/// A manifest full of comments, quoting and blank lines around the one node edited.
fn commented(sb: &Sandbox) -> String {
    format!(
        "# Team secrets: reviewed in pull requests.\n{}\ntargets:\n  app:   # the api\n    type: env_file\n    path: app.env\n\nsecrets:\n  # rotated quarterly\n  AUTH:\n    targets: [app]\n    encrypted: |\n{}\n  LOG_LEVEL:\n    targets: ['app']\n    value: \"info\"   # plain\n# end\n",
        sb.header(),
        sb.encrypted("CANARY-first-value", 6)
    )
}

fn set_stdin(sb: &Sandbox, args: &[&str], value: &str) -> Out {
    sb.run_stdin(args, &[], value)
}

fn get(sb: &Sandbox, key: &str) -> String {
    let out = sb.run(&["get", key]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
}

#[test]
fn set_replaces_only_the_edited_node_and_records_the_old_fingerprint() {
    let sb = Sandbox::new();
    let before = commented(&sb);
    sb.write("secrets.yaml", &before);
    let out = set_stdin(&sb, &["set", "AUTH", "--stdin"], "CANARY-second-value\n");
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary(
        "set output",
        out.all().as_bytes(),
        &["CANARY-second-value", "CANARY-first-value"],
    );
    assert_eq!(get(&sb, "AUTH"), "CANARY-second-value");

    let after = sb.read("secrets.yaml");
    let start = before.find("    encrypted: |\n").unwrap();
    let end = before.find("\n  LOG_LEVEL:").unwrap();
    assert!(
        after.starts_with(&before[..start]),
        "prefix changed:\n{after}"
    );
    assert!(after.ends_with(&before[end..]), "suffix changed:\n{after}");
    let today = secretsync::time::today();
    assert!(
        after.contains("    previous:\n      - fingerprint: fp:"),
        "{after}"
    );
    assert!(
        after.contains(&format!("        replaced: \"{today}\"\n")),
        "{after}"
    );
    // The same value again changes nothing.
    let again = set_stdin(&sb, &["set", "AUTH", "--stdin"], "CANARY-second-value");
    assert!(
        again.stderr.contains("secret `AUTH` unchanged in"),
        "{again:?}"
    );
    assert_eq!(sb.read("secrets.yaml"), after);
}

#[test]
fn set_never_reads_a_value_from_argv_or_a_missing_terminal() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &commented(&sb));
    let out = sb.run(&["set", "AUTH"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "error: set reads the value from a hidden prompt, and standard input is not a terminal\n  hint: pipe the value in with --stdin (never put it on the command line)\n");
    let out = sb.run(&["set", "AUTH", "some-value"]);
    assert_eq!(out.code, 1, "a value on argv is a usage error");
}

#[test]
fn set_adds_a_new_secret_with_its_targets() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &commented(&sb));
    let out = set_stdin(&sb, &["set", "NEW_TOKEN", "--stdin"], "v");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("`NEW_TOKEN` is a new secret: name its targets with --target"),
        "{}",
        out.stderr
    );
    let out = set_stdin(
        &sb,
        &["set", "NEW_TOKEN", "--stdin", "--target", "app"],
        "multi\nline \"value\" $HOME",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "NEW_TOKEN"), "multi\nline \"value\" $HOME");
    let m = secretsync::manifest::load(&sb.path("secrets.yaml")).unwrap();
    assert_eq!(m.secrets["NEW_TOKEN"].targets, ["app"]);
}

#[test]
fn rotate_makes_random_values_keeps_a_bounded_history_and_plan_diagnoses_it() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &commented(&sb));
    // The target holds the first value.
    sb.write("app.env", "AUTH=\"CANARY-first-value\"\nLOG_LEVEL=info\n");
    let out = sb.run(&["rotate", "AUTH", "--length", "24", "--charset", "hex"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = get(&sb, "AUTH");
    assert_eq!(v.len(), 24);
    assert!(v.chars().all(|c| c.is_ascii_hexdigit()), "{v}");

    let plan = sb.run(&["plan"]);
    let today = secretsync::time::today();
    assert!(
        plan.stdout
            .contains(&format!("note: AUTH holds the value replaced on {today}")),
        "{}",
        plan.stdout
    );
    // A value nobody recorded is "unknown": no such note.
    sb.write("app.env", "AUTH=\"something-else\"\nLOG_LEVEL=info\n");
    let plan = sb.run(&["plan"]);
    assert!(
        !plan.stdout.contains("holds the value replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("-AUTH=<redacted fp:"),
        "{}",
        plan.stdout
    );

    for _ in 0..7 {
        assert_eq!(
            sb.run(&["rotate", "AUTH", "--bytes", "32", "--charset", "base64url"])
                .code,
            0
        );
    }
    assert_eq!(get(&sb, "AUTH").len(), 43);
    let m = secretsync::manifest::load(&sb.path("secrets.yaml")).unwrap();
    assert_eq!(
        m.secrets["AUTH"].previous.len(),
        secretsync::edit::PREVIOUS_KEPT
    );
    for out in [
        sb.run(&["plan", "-v"]),
        sb.run(&["plan", "--format", "json"]),
    ] {
        assert_no_canary(
            "plan",
            out.all().as_bytes(),
            &["CANARY-first-value", get(&sb, "AUTH").as_str()],
        );
    }
}

#[test]
fn a_manifest_without_fingerprint_key_gets_one_on_set() {
    let sb = Sandbox::new();
    let text = commented(&sb);
    let start = text.find("fingerprint_key: |\n").unwrap();
    let end = text.find("targets:\n").unwrap();
    let without = format!("{}{}", &text[..start], &text[end..]);
    sb.write("secrets.yaml", &without);
    assert!(secretsync::manifest::load(&sb.path("secrets.yaml"))
        .unwrap()
        .fingerprint_key
        .is_none());
    assert_eq!(set_stdin(&sb, &["set", "AUTH", "--stdin"], "x").code, 0);
    let m = secretsync::manifest::load(&sb.path("secrets.yaml")).unwrap();
    assert!(m.fingerprint_key.is_some());
    assert_eq!(m.secrets["AUTH"].previous.len(), 1);
}

#[test]
fn init_generates_an_identity_that_decrypts_what_set_writes() {
    let sb = Sandbox::new();
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["init"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    let key_file = sb.path(".config/sops/age/keys.txt");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        out.stdout.starts_with("age1"),
        "the public key is printed: {}",
        out.stdout
    );
    let m = secretsync::manifest::load(&sb.path("secrets.yaml")).unwrap();
    assert_eq!(m.recipients[0].to_string(), out.stdout.trim());
    assert!(m.fingerprint_key.is_some());
    // Found by the SOPS default path (HOME is the sandbox), no --identity.
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["set", "TOKEN", "--stdin", "--target", "local"])
        .stdin(Stdio::piped());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"tok").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["get", "TOKEN"]);
    assert_eq!(run(cmd).stdout, "tok");
    // A second init refuses to overwrite.
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.arg("init");
    let again = run(cmd);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("secrets.yaml exists already"),
        "{}",
        again.stderr
    );
}

#[test]
fn import_adopts_live_values_and_skips_known_ones() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &commented(&sb));
    sb.write(
        "app.env",
        "# live\nAUTH=\"live-auth\"\nexport DB_URL='postgres://u:p@h/db'\nFEATURE=on\n",
    );
    let out = sb.run(&["import", "--from", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("imported 2 secret(s) from `app`: DB_URL, FEATURE"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("skipped 1 already in the manifest (use --overwrite): AUTH\n"),
        "{}",
        out.stderr
    );
    assert_no_canary(
        "import output",
        out.all().as_bytes(),
        &["live-auth", "postgres://u:p@h/db"],
    );
    assert_eq!(get(&sb, "DB_URL"), "postgres://u:p@h/db");
    assert_eq!(get(&sb, "AUTH"), "CANARY-first-value");
    let out = sb.run(&["import", "--from", "app", "AUTH", "--overwrite"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "AUTH"), "live-auth");
    // The imported secrets now plan as in sync; only LOG_LEVEL (never on the target) is pending.
    let plan = sb.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("app (env file app.env): 1 to add\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+LOG_LEVEL=<redacted, new fp:"),
        "{}",
        plan.stdout
    );
}

#[test]
fn rekey_moves_to_a_new_identity_and_drops_the_old() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &commented(&sb));
    let new_id = age::x25519::Identity::generate();
    let new_pub = new_id.to_public().to_string();
    let new_file = sb.path("new-id.txt");
    use secrecy::ExposeSecret;
    std::fs::write(&new_file, new_id.to_string().expose_secret()).unwrap();
    std::fs::set_permissions(
        &new_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    assert_eq!(sb.run(&["recipients", "add", &new_pub]).code, 0);
    let list = sb.run(&["recipients", "list"]);
    assert_eq!(list.stdout.lines().count(), 2);
    // Removing the recipient whose identity is at hand, leaving none we hold, is refused...
    let old_pub = sb.recipient.to_string();
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["recipients", "remove", &new_pub, &old_pub, "--identity"])
        .arg(&sb.identity);
    let refused = run(cmd);
    assert_eq!(refused.code, 1);
    // ...and so is removing ourselves while running with our own identity.
    let refused = sb.run(&["recipients", "remove", &old_pub]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("refusing: the identity at hand would no longer be a recipient"),
        "{}",
        refused.stderr
    );
    // With the new identity, the old recipient goes and everything is re-encrypted.
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["recipients", "remove", &old_pub, "--identity"])
        .arg(&new_file);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["get", "AUTH", "--identity"]).arg(&new_file);
    assert_eq!(run(cmd).stdout, "CANARY-first-value");
    let old = sb.run(&["get", "AUTH"]);
    assert_eq!(old.code, 1);
    assert!(
        old.stderr.contains("is not encrypted to the identity"),
        "{}",
        old.stderr
    );
    assert_no_canary(
        "rekey output",
        out.all().as_bytes(),
        &["CANARY-first-value"],
    );
}
