//! The real binary, end to end, on local env files: plan, apply, exit codes,
//! manifest errors with their exact text, and no value in any output.

use crate::support;

use std::path::Path;

use support::cli::{assert_no_canary, copy_dir, run, secretsync_cmd, Sandbox};

const DEMO_VALUES: &[&str] = &[
    "demo-auth-2026-11-20-rotated",
    "demo-auth-2026-08-01-OLD",
    "sk_test_demo_not_a_real_key_0000",
    "demo-password",
];

/// The shipped demo, copied to a scratch folder.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"),
        dir.path(),
    );
    dir
}

fn demo_run(dir: &Path, args: &[&str]) -> support::cli::Out {
    let mut cmd = secretsync_cmd(dir);
    cmd.args(args)
        .args(["-f", "secrets.yaml", "-i", "demo-identity.txt"]);
    run(cmd)
}

#[test]
fn demo_plan_shows_the_drift_without_values() {
    let dir = demo();
    let out = demo_run(dir.path(), &["plan"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("api (env file targets/api.env): in sync (4 keys)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("worker (env file targets/worker.env): 1 to add, 1 to change"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("note: INTERNAL_AUTH_SECRET holds the value replaced on 2026-11-20"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("note: WORKER_CONCURRENCY is unmanaged: left alone"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("-export INTERNAL_AUTH_SECRET=<redacted fp:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            // The default format (dotenv) drops `export `: systemd would
            // ignore the line.
            .contains("+INTERNAL_AUTH_SECRET=<redacted, new fp:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+STRIPE_API_KEY=<redacted, new fp:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "Plan: 1 to add, 1 to change, 0 to delete. 1 target in sync, 1 with changes."
        ),
        "{}",
        out.stdout
    );
    assert_no_canary("plan output", out.all().as_bytes(), DEMO_VALUES);
}

#[test]
fn detailed_exitcode_says_drift_then_in_sync() {
    let dir = demo();
    assert_eq!(
        demo_run(dir.path(), &["plan", "--detailed-exitcode"]).code,
        2
    );
    assert_eq!(
        demo_run(
            dir.path(),
            &["plan", "--detailed-exitcode", "--target", "api"]
        )
        .code,
        0
    );
    let out = demo_run(dir.path(), &["plan", "--target", "nope"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: --target nope: no such target in secrets.yaml\n  hint: targets: api, worker\n"
    );
}

#[test]
fn apply_without_a_terminal_refuses_and_changes_nothing() {
    let dir = demo();
    let before = std::fs::read(dir.path().join("targets/worker.env")).unwrap();
    let out = demo_run(dir.path(), &["apply"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.ends_with(
        "error: apply needs a confirmation, and standard input is not a terminal\n  hint: review the plan, then run again with --auto-approve to apply without asking\n"
    ), "{}", out.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("targets/worker.env")).unwrap(),
        before
    );
}

#[test]
fn apply_converges_verifies_and_is_idempotent() {
    let dir = demo();
    let worker = dir.path().join("targets/worker.env");
    let out = demo_run(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(
            "worker (env file targets/worker.env): applied (2 changes, read back and verified)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("api (env file targets/api.env): in sync, nothing to do"),
        "{}",
        out.stdout
    );
    assert_no_canary("apply output", out.all().as_bytes(), DEMO_VALUES);

    let text = std::fs::read_to_string(&worker).unwrap();
    assert_eq!(
        text,
        "# worker service environment\nINTERNAL_AUTH_SECRET=demo-auth-2026-11-20-rotated\nDATABASE_URL=\"postgres://app:demo-password@db.internal:5432/app\"\nWORKER_LOG_LEVEL=info\n\n# set by hand during the incident; not in the manifest\nWORKER_CONCURRENCY=8\nSTRIPE_API_KEY=sk_test_demo_not_a_real_key_0000\n"
    );
    assert_eq!(
        demo_run(dir.path(), &["plan", "--detailed-exitcode"]).code,
        0
    );
    let again = demo_run(dir.path(), &["apply"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("Apply: 0 targets applied and verified, 2 in sync, 0 failed."),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read_to_string(&worker).unwrap(), text);
}

#[test]
fn an_unreadable_target_is_an_error_and_the_others_are_applied() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("broken.env")).unwrap();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  good: {{ type: env_file, path: good.env }}\n  bad: {{ type: env_file, path: broken.env }}\nsecrets:\n  TOKEN:\n    targets: [good, bad]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted("canary-token-31337", 6)
        ),
    );
    let plan = sb.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.stdout
            .contains("bad (env file broken.env): cannot be read"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("good (env file good.env): 1 to add"),
        "{}",
        plan.stdout
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply
            .stdout
            .contains("good (env file good.env): applied (1 change, read back and verified)"),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("Apply: 1 target applied and verified, 0 in sync, 1 failed."),
        "{}",
        apply.stdout
    );
    assert_eq!(sb.read("good.env"), "TOKEN=canary-token-31337\n");
    assert_no_canary("outputs", apply.all().as_bytes(), &["canary-token-31337"]);
}

#[test]
fn json_and_markdown_plans_hold_no_value() {
    let dir = demo();
    let json = demo_run(dir.path(), &["plan", "--format", "json"]);
    assert_eq!(json.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["summary"]["add"], 1);
    assert_eq!(doc["targets"][1]["status"], "changes");
    let md = demo_run(dir.path(), &["plan", "--format", "markdown"]);
    assert!(
        md.stdout.starts_with("### secretsync plan\n"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("| `worker` (env file targets/worker.env) | 1 to add, 1 to change |"),
        "{}",
        md.stdout
    );
    for out in [json, md] {
        assert_no_canary("formatted plan", out.all().as_bytes(), DEMO_VALUES);
    }
}

/// Canary values through every command and failure path: none may appear in
/// any output or in any file the run leaves besides the targets themselves.
#[test]
fn no_canary_leaks_from_plan_apply_or_their_failures() {
    let sb = Sandbox::new();
    let canaries = [
        "CANARY-ab12\"$x",
        "CANARY-line1\nCANARY-line2",
        "CANARY-plain-value",
    ];
    sb.write(
        "drift.env",
        "A=\"CANARY-old-value\"\n# note\nUNMANAGED=CANARY-unmanaged\n",
    );
    std::fs::create_dir(sb.path("dir.env")).unwrap();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  drift: {{ type: env_file, path: drift.env, prune: true }}\n  fresh: {{ type: env_file, path: sub/fresh.env }}\n  broken: {{ type: env_file, path: dir.env }}\nsecrets:\n  A:\n    targets: [drift, fresh, broken]\n    encrypted: |\n{}  B:\n    targets: [drift, fresh]\n    encrypted: |\n{}  C:\n    targets: [fresh]\n    value: CANARY-plain-value\n",
            sb.header(),
            sb.encrypted(canaries[0], 6),
            sb.encrypted(canaries[1], 6)
        ),
    );
    let all_canaries = [
        canaries[0],
        "CANARY-line1",
        "CANARY-line2",
        canaries[2],
        "CANARY-old-value",
        "CANARY-unmanaged",
    ];
    let mut outputs = Vec::new();
    for args in [
        vec!["plan", "-v"],
        vec!["plan", "--format", "json"],
        vec!["plan", "--format", "markdown"],
        vec!["apply"],
        vec!["apply", "--auto-approve", "-v"],
        vec!["apply", "--auto-approve", "--format", "json"],
        vec!["doctor"],
    ] {
        outputs.push((args.join(" "), sb.run(&args)));
    }
    for (what, out) in &outputs {
        assert_no_canary(what, out.all().as_bytes(), &all_canaries);
    }
    // The failing target made apply fail; the two others converged.
    assert_eq!(outputs[4].1.code, 1);
    assert!(sb.read("drift.env").contains("CANARY-line1\nCANARY-line2"));
    assert!(!sb.read("drift.env").contains("UNMANAGED"));
    for (path, bytes) in sb.files_except(&["drift.env", "sub/fresh.env", "secrets.yaml", "id.txt"])
    {
        assert_no_canary(&path.display().to_string(), &bytes, &all_canaries);
    }
}

#[test]
fn an_identity_that_is_not_a_recipient_is_named() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\ntargets:\n  t: {{ type: env_file, path: t.env }}\nsecrets:\n  S:\n    targets: [t]\n    encrypted: |\n{}",
            other.encrypted("x", 6)
        ),
    );
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: secret `S` is not encrypted to the identity from --identity {} ({}), which is not one of the manifest's recipients:\n  (it lists none)\n  hint: use an identity whose public key is listed above (--identity FILE), or ask a holder of one to run `secretsync recipients add YOUR_PUBLIC_KEY` (it re-encrypts every value; `secretsync whoami` prints yours)\n",
            sb.identity.display(),
            sb.recipient
        )
    );
}

/// A value no identity can decrypt keeps its type on the way out: the JSON
/// error is a `crypto` one (not `failed`), its hint in `hint` alone, and
/// the text on stderr is as before.
#[test]
fn a_value_no_identity_decrypts_is_a_crypto_error_in_json() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\ntargets:\n  t: {{ type: env_file, path: t.env }}\nsecrets:\n  S:\n    targets: [t]\n    encrypted: |\n{}",
            other.encrypted("x", 6)
        ),
    );
    for command in ["plan", "apply"] {
        let mut args = vec![command, "--format", "json"];
        if command == "apply" {
            args.push("--auto-approve");
        }
        let out = sb.run(&args);
        assert_eq!(out.code, 1, "{command}: {out:?}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(doc["kind"], "error", "{command}: {doc}");
        assert_eq!(doc["command"], command);
        assert_eq!(doc["error"]["kind"], "crypto", "{command}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("secret `S` is not encrypted to the identity from --identity"),
            "{message}"
        );
        let hint = doc["error"]["hint"].as_str().unwrap();
        assert!(
            hint.starts_with("use an identity whose public key"),
            "{hint}"
        );
        assert!(!message.contains(hint), "{message}");
        assert!(
            out.stderr
                .starts_with("error: secret `S` is not encrypted to the identity from --identity"),
            "{}",
            out.stderr
        );
        assert!(out
            .stderr
            .contains("\n  hint: use an identity whose public key"));
    }
}

#[test]
fn without_an_identity_the_error_lists_what_was_tried() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!("version: 1\ntargets:\n  t: {{ type: env_file, path: t.env }}\nsecrets:\n  S:\n    targets: [t]\n    encrypted: |\n{}", sb.encrypted("x", 6)),
    );
    let out = run({
        let mut c = secretsync_cmd(sb.dir.path());
        c.arg("plan");
        c
    });
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "error: no age identity found to decrypt the manifest (tried: --identity, SECRETSYNC_AGE_KEY, SECRETSYNC_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, ~/.config/sops/age/keys.txt)\n  hint: pass --identity FILE, or set SECRETSYNC_AGE_KEY (the key) or SECRETSYNC_AGE_KEY_FILE (its path)\n");
    // The same identity through the environment works.
    let key = std::fs::read_to_string(&sb.identity).unwrap();
    let mut c = secretsync_cmd(sb.dir.path());
    c.arg("plan").env("SECRETSYNC_AGE_KEY", key.trim());
    assert_eq!(run(c).code, 0);
}

/// Each manifest mistake, with the exact text a user sees.
#[test]
fn manifest_errors_name_file_line_column_and_a_fix() {
    let sb = Sandbox::new();
    let ct = sb.encrypted("v", 6);
    let rec = sb.recipient.to_string();
    let cases: Vec<(String, String)> = vec![
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: \"x }\n".into(),
            "error: unclosed quote\n  --> secrets.yaml:3:30\n  |\n3 |   t: { type: env_file, path: \"x }\n  |                              ^\n".into(),
        ),
        (
            "version: 1\ntargets:\n\tt: 1\n".into(),
            "error: tabs disallowed within this context (block indentation)\n  --> secrets.yaml:3:2\n  |\n3 | \tt: 1\n  | \t^\n  hint: YAML indents with spaces, not tabs\n".into(),
        ),
        (
            "version: 1\ntargets: {}\nsecrets: {}\nrecipents: []\n".into(),
            "error: unknown field `recipents`, expected one of version, recipients, fingerprint_key, targets, secrets, removed, rotate_every, environments\n  --> secrets.yaml:4:1\n  |\n4 | recipents: []\n  | ^^^^^^^^^\n  hint: see docs/manifest.md for the fields each part of the manifest takes\n".into(),
        ),
        (
            "version: 1\ntargets:\n  t:\n    type: s3\n    path: x\n".into(),
            format!(
                "error: unknown target type `s3`\n  --> secrets.yaml:4:11\n  |\n4 |     type: s3\n  |           ^^\n  hint: one of: {}\n",
                secretsync::targets::registry::names()
            ),
        ),
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: t.env }\nsecrets:\n  A:\n    targets: [t, u]\n    value: x\n".into(),
            "error: secret `A` names target `u`, which is not defined\n  --> secrets.yaml:6:18\n  |\n6 |     targets: [t, u]\n  |                  ^\n  hint: defined targets: t\n".into(),
        ),
        (
            format!("version: 1\ntargets:\n  t: {{ type: env_file, path: t.env }}\nsecrets:\n  A:\n    targets: [t]\n    value: x\n    encrypted: |\n{ct}"),
            "error: secret `A` has both `value` and `encrypted`\n  --> secrets.yaml:7:12\n  |\n7 |     value: x\n  |            ^\n  hint: keep `encrypted` for secrets and `value` for plain configuration, not both\n".into(),
        ),
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: t.env }\nsecrets:\n  A:\n    targets: [t]\n".into(),
            "error: secret `A` has neither `value` nor `encrypted`\n  --> secrets.yaml:6:5\n  |\n6 |     targets: [t]\n  |     ^\n  hint: add `encrypted:` (with `secretsync set`) or a plain `value:`\n".into(),
        ),
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: t.env }\nsecrets:\n  A:\n    targets: [t]\n    value: x\n  B:\n    targets: [t]\n    value: y\n    rename: { t: A }\n".into(),
            "error: secrets `A` and `B` both land on `A` on target `t`\n  --> secrets.yaml:11:18\n   |\n11 |     rename: { t: A }\n   |                  ^\n  hint: rename one of them on that target with `rename`\n".into(),
        ),
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: t.env }\nsecrets:\n  my-key:\n    targets: [t]\n    value: x\n".into(),
            "error: `my-key` cannot be a key on target `t`\n  --> secrets.yaml:6:15\n  |\n6 |     targets: [t]\n  |               ^\n  hint: a variable name must match ^[A-Za-z_][A-Za-z0-9_]*$; use `rename` to give it another name there\n".into(),
        ),
        (
            format!("version: 1\nrecipients:\n  - {rec}\n  - age1notakey\ntargets: {{}}\n"),
            "error: recipient `age1notakey` does not parse: invalid Bech32 encoding\n  --> secrets.yaml:4:5\n  |\n4 |   - age1notakey\n  |     ^^^^^^^^^^^\n  hint: a recipient is an age public key (age1…) or an ssh-ed25519 public key line\n".into(),
        ),
        (
            "version: 2\ntargets: {}\n".into(),
            "error: unsupported manifest version 2\n  --> secrets.yaml:1:10\n  |\n1 | version: 2\n  |          ^\n  hint: this secretsync reads version 1\n".into(),
        ),
        (
            "version: 1\ntargets:\n  t: { type: env_file, path: t.env, project: p }\n".into(),
            "error: `project` does not apply to env_file targets\n  --> secrets.yaml:3:37\n  |\n3 |   t: { type: env_file, path: t.env, project: p }\n  |                                     ^^^^^^^\n  hint: env_file targets take: type, path, prune, create, format, unit, container\n".into(),
        ),
    ];
    for (yaml, expected) in cases {
        sb.write("secrets.yaml", &yaml);
        let out = sb.run(&["plan"]);
        assert_eq!(out.code, 1, "{yaml}");
        assert_eq!(out.stderr, expected, "for manifest:\n{yaml}");
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn a_missing_manifest_says_how_to_start() {
    let sb = Sandbox::new();
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: cannot read the manifest secrets.yaml: No such file or directory (os error 2)\n  hint: pass its path with -f/--manifest, or create one with `secretsync init`\n"
    );
}

#[test]
fn usage_errors_exit_1_not_2() {
    let sb = Sandbox::new();
    let out = sb.run(&["plan", "--no-such-flag"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unexpected argument '--no-such-flag'"));
}

#[test]
fn the_example_manifest_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("secrets.example.yaml");
    let m = secretsync::manifest::load(&path).unwrap();
    let types: Vec<&str> = m.targets.values().map(|t| t.type_name()).collect();
    assert_eq!(
        types,
        ["railway", "railway", "ssh_env", "keychain", "env_file"]
    );
    assert_eq!(
        m.secrets["OPENCLAW_GATEWAY_TOKEN"].key_on("vps"),
        "GATEWAY_TOKEN"
    );
}

/// The confirmation prompt, driven through a real pseudo-terminal (util-linux
/// `script`, part of every Debian system): `yes` applies, anything else cancels.
#[test]
fn the_prompt_on_a_terminal_applies_only_on_yes() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let answer = |dir: &Path, text: &str| {
        let line = format!(
            "{} apply -f secrets.yaml -i demo-identity.txt",
            env!("CARGO_BIN_EXE_secretsync")
        );
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux `script` runs the command on a pseudo-terminal");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let dir = demo();
    let worker = dir.path().join("targets/worker.env");
    let before = std::fs::read(&worker).unwrap();
    let (code, screen) = answer(dir.path(), "no\n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(
        screen.contains("Apply these changes? Only `yes` is accepted"),
        "{screen}"
    );
    assert!(
        screen.contains("apply cancelled: nothing was changed"),
        "{screen}"
    );
    assert_eq!(std::fs::read(&worker).unwrap(), before);

    let (code, screen) = answer(dir.path(), "yes\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains(
            "worker (env file targets/worker.env): applied (2 changes, read back and verified)"
        ),
        "{screen}"
    );
    assert_no_canary("terminal", screen.as_bytes(), DEMO_VALUES);
}

#[test]
fn an_ssh_ed25519_key_is_a_recipient_and_an_identity() {
    let sb = Sandbox::new();
    let key = sb.path("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(sb.path("id_ed25519.pub")).unwrap();
    let recipient = secretsync::crypto::parse_recipient(public.trim()).unwrap();
    let armored =
        secretsync::crypto::encrypt(std::slice::from_ref(&recipient), b"CANARY-ssh-identity")
            .unwrap();
    let block: String = armored.lines().map(|l| format!("      {l}\n")).collect();
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\nrecipients:\n  - \"{}\"\ntargets:\n  t: {{ type: env_file, path: t.env }}\nsecrets:\n  S:\n    targets: [t]\n    encrypted: |\n{block}",
            public.trim()
        ),
    );
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["apply", "--auto-approve", "--identity"])
        .arg(&key);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sb.read("t.env"), "S=CANARY-ssh-identity\n");
    assert_no_canary("apply", out.all().as_bytes(), &["CANARY-ssh-identity"]);
    // The same key through SECRETSYNC_AGE_KEY_FILE.
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["get", "S"]).env("SECRETSYNC_AGE_KEY_FILE", &key);
    assert_eq!(run(cmd).stdout, "CANARY-ssh-identity");
}

#[test]
fn ssh_persist_without_ssh_targets_creates_nothing_and_rejects_bad_durations() {
    let dir = demo();
    let runtime = tempfile::tempdir().unwrap();
    let mut cmd = secretsync_cmd(dir.path());
    cmd.args(["plan", "-f", "secrets.yaml", "-i", "demo-identity.txt"])
        .env("SECRETSYNC_SSH_PERSIST", "60s")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let out = run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_dir(runtime.path()).unwrap().count(),
        0,
        "no socket folder for a manifest without SSH targets"
    );

    let out = demo_run(dir.path(), &["plan", "--ssh-persist", "soon"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("invalid value 'soon' for '--ssh-persist <DURATION>': not a duration"),
        "{}",
        out.stderr
    );
}
