//! The everyday CLI (#17), through the real binary: concurrent edits lose
//! nothing, quiet and JSON runs still say why they failed, annotations stay
//! out of captured output, editing commands refuse clearly or work.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use support::cli::{assert_no_canary, run, secretsync_cmd, Out, Sandbox};
use support::webhook;

/// A manifest with comments around an env-file target and two secrets.
fn manifest(sb: &Sandbox) -> String {
    format!(
        "# team secrets\n{}\ntargets:\n  app:   # the api\n    type: env_file\n    path: app.env\n  worker:\n    type: env_file\n    path: worker.env\n\nsecrets:\n  # rotated quarterly\n  AUTH:\n    targets: [app]   # only app\n    encrypted: |\n{}\n  LOG_LEVEL:\n    targets: [app]\n    value: \"info\"   # plain\n",
        sb.header(),
        sb.encrypted("CANARY-auth", 6)
    )
}

fn with_stdin(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], value: &str) -> Out {
    sb.run_stdin(args, env, value)
}

fn get(sb: &Sandbox, key: &str) -> Out {
    sb.run(&["get", key])
}

fn assert_not_editor_bug(out: &Out) {
    assert!(
        !out.stderr.contains("bug in secretsync's editor"),
        "a user mistake reached the editor's last guard:\n{}",
        out.stderr
    );
}

// ---- 1. concurrent edits ------------------------------------------------------

#[test]
fn parallel_set_rotate_and_import_lose_nothing() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    sb.write("source.env", "IMPORTED_A=a\nIMPORTED_B=b\n");
    let mut text = sb.read("secrets.yaml");
    text = text.replace(
        "\nsecrets:\n",
        "  source:\n    type: env_file\n    path: source.env\n\nsecrets:\n",
    );
    sb.write("secrets.yaml", &text);

    let before_auth = get(&sb, "AUTH").stdout;
    let sets = 10;
    let mut handles = Vec::new();
    for i in 0..sets {
        let dir = sb.dir.path().to_path_buf();
        let id = sb.identity.clone();
        handles.push(std::thread::spawn(move || {
            let mut cmd = secretsync_cmd(&dir);
            cmd.args(["set", &format!("KEY_{i}"), "--stdin", "-t", "app"])
                .arg("--identity")
                .arg(&id)
                .env("SECRETSYNC_LOCK_TIMEOUT", "120")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("value-{i}").as_bytes())
                .unwrap();
            let o = child.wait_with_output().unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        }));
    }
    for args in [
        vec!["rotate", "AUTH"],
        vec!["rotate", "NEW_ROTATED", "-t", "worker"],
        vec!["import", "--from", "source"],
    ] {
        let dir = sb.dir.path().to_path_buf();
        let id = sb.identity.clone();
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        handles.push(std::thread::spawn(move || {
            let mut cmd = secretsync_cmd(&dir);
            cmd.args(&args)
                .arg("--identity")
                .arg(&id)
                .env("SECRETSYNC_LOCK_TIMEOUT", "120");
            let o = run(cmd);
            (Some(o.code), o.stderr)
        }));
    }
    for h in handles {
        let (code, stderr) = h.join().unwrap();
        assert_eq!(code, Some(0), "{stderr}");
    }
    for i in 0..sets {
        let out = get(&sb, &format!("KEY_{i}"));
        assert_eq!(out.code, 0, "KEY_{i} was lost: {out:?}");
        assert_eq!(out.stdout, format!("value-{i}"));
    }
    for k in ["NEW_ROTATED", "IMPORTED_A", "IMPORTED_B", "LOG_LEVEL"] {
        assert_eq!(get(&sb, k).code, 0, "{k} was lost");
    }
    assert_ne!(
        get(&sb, "AUTH").stdout,
        before_auth,
        "the rotation was lost"
    );
    let text = sb.read("secrets.yaml");
    assert!(text.starts_with("# team secrets\n"), "{text}");
    // No temp file left behind; the lock file stays (deleting it would race).
    let names: Vec<String> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    assert!(
        names.contains(&".secrets.yaml.lock".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_second_editor_waits_briefly_then_fails_clearly() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(sb.path(".secrets.yaml.lock"))
        .unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let t = std::time::Instant::now();
    let out = with_stdin(
        &sb,
        &["set", "AUTH", "--stdin"],
        &[("SECRETSYNC_LOCK_TIMEOUT", "0.5")],
        "CANARY-new",
    );
    assert!(t.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with("error: secrets.yaml is being edited by another secretsync (it holds .secrets.yaml.lock); waited 500ms, nothing was changed\n  hint: run the command again when the other edit has finished"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), before);
    drop(held);
    // Released (as on exit or crash): the edit goes through.
    let out = with_stdin(&sb, &["set", "AUTH", "--stdin"], &[], "CANARY-new");
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn a_lock_holder_that_dies_leaves_no_lock() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    // A process that takes the lock as secretsync does (flock on the lock
    // file), says so, and is then killed with SIGKILL: no cleanup runs.
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(60)",
        ])
        .arg(sb.path(".secrets.yaml.lock"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "held\n");
    let out = with_stdin(
        &sb,
        &["set", "AUTH", "--stdin"],
        &[("SECRETSYNC_LOCK_TIMEOUT", "0.2")],
        "CANARY-during",
    );
    assert_eq!(out.code, 1, "the lock is held: {out:?}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = with_stdin(
        &sb,
        &["set", "AUTH", "--stdin"],
        &[("SECRETSYNC_LOCK_TIMEOUT", "1")],
        "CANARY-after",
    );
    assert_eq!(out.code, 0, "{out:?}");
}

// ---- 2. errors are always said ---------------------------------------------

/// A drifted target, one that cannot be read (a folder), one in sync.
fn drifted(sb: &Sandbox) {
    sb.write("drift.env", "A=old\n");
    sb.write("clean.env", "A=CANARY-alpha\n");
    std::fs::create_dir(sb.path("dir.env")).unwrap();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  drift: {{ type: env_file, path: drift.env }}\n  broken: {{ type: env_file, path: dir.env }}\n  clean: {{ type: env_file, path: clean.env }}\nsecrets:\n  A:\n    targets: [drift, broken, clean]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted("CANARY-alpha", 6)
        ),
    );
}

#[test]
fn quiet_plan_says_why_it_failed() {
    let sb = Sandbox::new();
    drifted(&sb);
    let out = sb.run(&["plan", "-q", "--detailed-exitcode"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "quiet prints no plan");
    assert!(
        out.stderr
            .starts_with("error: target `broken` (env file dir.env): "),
        "{}",
        out.stderr
    );
    // Markdown captured to a file: the reason is on stderr too.
    let out = sb.run(&["plan", "--format", "markdown"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("error: target `broken`"),
        "{}",
        out.stderr
    );
    // In sync and quiet: nothing at all.
    let out = sb.run(&["plan", "-q", "--detailed-exitcode", "-t", "clean"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    // Quiet doctor too.
    let out = sb.run(&["doctor", "-q"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("error: target broken (env file dir.env): "),
        "{}",
        out.stderr
    );
    // Quiet apply says which target failed.
    let out = sb.run(&["apply", "-q", "--auto-approve"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("error: target `broken` (env file dir.env): "),
        "{}",
        out.stderr
    );
    assert_no_canary("quiet runs", out.all().as_bytes(), &["CANARY-alpha"]);
}

#[test]
fn json_errors_are_json_on_stdout_and_text_on_stderr() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        "version: 1\ntargets:\n  t: { type: nope }\n",
    );
    for cmd in ["plan", "apply", "doctor"] {
        let out = sb.run(&[cmd, "--format", "json", "-q"]);
        assert_eq!(out.code, 1, "{out:?}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{cmd}: stdout is not JSON ({e}): {}", out.stdout));
        assert_eq!(doc["kind"], "error", "{doc}");
        assert_eq!(doc["command"], cmd);
        assert_eq!(doc["error"]["kind"], "manifest");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains("secrets.yaml:3:"), "{message}");
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
        assert!(out.stderr.contains(message.lines().next().unwrap()));
    }
    // A flag clap refuses: JSON too.
    let out = sb.run(&["plan", "--format", "json", "--no-such-flag"]);
    assert_eq!(out.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "usage");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag"),
        "{doc}"
    );
    // A missing manifest, a usage error: JSON too.
    std::fs::remove_file(sb.path("secrets.yaml")).unwrap();
    let out = sb.run(&["plan", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "error");
}

#[test]
fn an_error_after_the_json_document_keeps_stdout_one_document() {
    let sb = Sandbox::new();
    drifted(&sb);
    let out = sb.run(&[
        "plan",
        "--format",
        "json",
        "-t",
        "drift",
        "--out",
        "no/such/dir/plan.json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", out.stdout));
    assert_eq!(doc["kind"], "plan");
    assert!(
        out.stderr.starts_with("error: no/such/dir/plan.json: "),
        "{}",
        out.stderr
    );
}

#[test]
fn annotations_never_enter_captured_output_and_come_once() {
    let sb = Sandbox::new();
    drifted(&sb);
    let summary = sb.path("summary.md");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    for format in ["markdown", "text", "json"] {
        let out = sb.run_with(&["plan", "--format", format], &env);
        assert!(
            !out.stdout.contains("::warning") && !out.stdout.contains("::error"),
            "{format}: an annotation in stdout:\n{}",
            out.stdout
        );
        assert_eq!(
            out.stderr.matches("::warning title=").count(),
            1,
            "{}",
            out.stderr
        );
        assert_eq!(
            out.stderr.matches("::error title=").count(),
            1,
            "{}",
            out.stderr
        );
    }
    let out = sb.run_with(&["apply", "--auto-approve"], &env);
    assert_eq!(out.code, 1);
    let all = out.all();
    assert_eq!(
        all.matches("::error title=secretsync%3A broken::").count(),
        1,
        "each ::error once:\n{all}"
    );
    assert!(!out.stdout.contains("::"), "{}", out.stdout);
}

// ---- 3. editor failures become clear refusals -------------------------------

#[test]
fn removing_the_last_recipient_is_refused_before_editing() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let out = sb.run(&["recipients", "remove", &sb.recipient.to_string()]);
    assert_eq!(out.code, 1);
    assert_not_editor_bug(&out);
    assert_eq!(out.stderr, "error: that would remove every recipient, and nobody could decrypt the manifest\n  hint: add the new one first (`secretsync recipients add age1…`), then remove the old\n");
    assert_eq!(sb.read("secrets.yaml"), before);
}

#[test]
fn bad_names_are_refused_with_the_rule_and_the_character() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let out = with_stdin(&sb, &["set", "my-key", "--stdin", "-t", "app"], &[], "v");
    assert_eq!(out.code, 1);
    assert_not_editor_bug(&out);
    assert_eq!(out.stderr, "error: `my-key` cannot be a key on target `app` (env_file): a variable name must match ^[A-Za-z_][A-Za-z0-9_]*$ (`-` at position 3)\n  hint: choose a name such as `MY_KEY`, or give it another name on `app` with `rename:` in the manifest\n");
    let out = sb.run(&["rotate", "a:b", "-t", "app"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("`a:b` cannot be a secret's name: `:` at position 2 is not allowed"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), before);
}

#[test]
fn a_null_secrets_map_is_opened() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n# none yet\n",
            sb.header()
        ),
    );
    let out = with_stdin(&sb, &["set", "A", "--stdin", "-t", "app"], &[], "v");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "A").stdout, "v");
    let out = sb.run(&["rotate", "B", "-t", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn duplicate_keys_and_a_string_for_targets_are_explained() {
    let sb = Sandbox::new();
    let m = manifest(&sb);
    sb.write(
        "secrets.yaml",
        &m.replace(
            "  LOG_LEVEL:\n",
            "  AUTH:\n    targets: [app]\n    value: x\n  LOG_LEVEL:\n",
        ),
    );
    let out = with_stdin(&sb, &["set", "LOG_LEVEL", "--stdin"], &[], "debug");
    assert_eq!(out.code, 1);
    assert_not_editor_bug(&out);
    assert!(!out.stderr.contains("DuplicateKeyPolicy"), "{}", out.stderr);
    assert!(!out.stderr.contains("tabs"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`AUTH` appears twice"),
        "{}",
        out.stderr
    );

    sb.write(
        "secrets.yaml",
        &m.replace("    targets: [app]   # only app\n", "    targets: app\n"),
    );
    let out = with_stdin(&sb, &["set", "AUTH", "--stdin"], &[], "x");
    assert_eq!(out.code, 1);
    assert_not_editor_bug(&out);
    assert!(
        !out.stderr.contains("expected sequence start"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("write `targets: [app]`") || out.stderr.contains("a list"),
        "{}",
        out.stderr
    );
}

// ---- 4. editing commands ----------------------------------------------------

#[test]
fn targets_of_a_secret_are_changed_explicitly() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    // `set -t` / `rotate -t` on an existing secret refuse instead of ignoring.
    let out = with_stdin(&sb, &["set", "AUTH", "--stdin", "-t", "worker"], &[], "x");
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: `AUTH` exists already, with targets [app]; --target only names a new secret's targets\n  hint: change its targets with `secretsync targets add AUTH TARGET…`"), "{}", out.stderr);
    let out = sb.run(&["rotate", "AUTH", "-t", "worker"]);
    assert_eq!(out.code, 1);
    assert!(out
        .stderr
        .contains("--target only names a new secret's targets"));
    assert_eq!(sb.read("secrets.yaml"), before);

    let out = sb.run(&["targets", "add", "AUTH", "worker"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        sb.read("secrets.yaml"),
        before.replace(
            "    targets: [app]   # only app\n",
            "    targets: [app, worker]   # only app\n"
        )
    );
    let out = sb.run(&["targets", "remove", "AUTH", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb
        .read("secrets.yaml")
        .contains("    targets: [worker]   # only app\n"));
    let out = sb.run(&["targets", "remove", "AUTH", "worker"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("that would leave `AUTH` without a target\n  hint: to remove the secret, run `secretsync unset AUTH`"), "{}", out.stderr);
    let out = sb.run(&["targets", "add", "AUTH", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("--target nope: no such target"),
        "{}",
        out.stderr
    );
    // With the same targets, -t is accepted.
    let out = with_stdin(
        &sb,
        &["set", "AUTH", "--stdin", "-t", "worker"],
        &[],
        "CANARY-x",
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn unset_removes_a_secret_and_remembers_its_fingerprint() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let out = sb.run(&["unset", "AUTH"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary("unset", out.all().as_bytes(), &["CANARY-auth"]);
    let after = sb.read("secrets.yaml");
    let start = before.find("  # rotated quarterly\n").unwrap();
    let end = before.find("  LOG_LEVEL:\n").unwrap();
    let today = secretsync::time::today();
    let expected_prefix = format!("{}{}", &before[..start], &before[end..]);
    assert!(after.starts_with(&expected_prefix), "{after}");
    let rest = &after[expected_prefix.len()..];
    assert!(
        rest.starts_with("removed:\n  - name: AUTH\n    fingerprint: fp:"),
        "{rest}"
    );
    assert!(
        rest.ends_with(&format!("    removed: \"{today}\"\n")),
        "{rest}"
    );
    assert_eq!(get(&sb, "AUTH").code, 1);
    // A copy left on a target is recognised by the plan, in every format.
    sb.write("app.env", "AUTH=CANARY-auth\nLOG_LEVEL=info\nOTHER=x\n");
    let out = sb.run(&["plan", "-v"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("    ? AUTH                         unmanaged: left alone; holds the value of secret `AUTH`, removed on {today}\n")), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("    ? OTHER                        unmanaged: left alone\n"),
        "{}",
        out.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.run(&["plan", "--format", "json"]).stdout).unwrap();
    assert_eq!(
        json["targets"][0]["items"][0]["removed"]["secret"], "AUTH",
        "{json}"
    );
    assert_eq!(
        json["targets"][0]["items"][0]["removed"]["on"],
        today.as_str()
    );
    let md = sb.run(&["plan", "--format", "markdown"]).stdout;
    assert!(
        md.contains("holds the value of secret `AUTH`, removed on"),
        "{md}"
    );
    assert_no_canary("plan", md.as_bytes(), &["CANARY-auth"]);
    // The alias, and the last secret: `secrets: {{}}` remains.
    let out = sb.run(&["rm", "LOG_LEVEL"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb.read("secrets.yaml").contains("\nsecrets: {}\n"));
    assert_eq!(sb.read("secrets.yaml").matches("  - name: ").count(), 2);
    let out = sb.run(&["unset", "NOPE"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no secret `NOPE`"), "{}", out.stderr);
}

#[test]
fn target_definitions_are_added_and_removed_from_flags() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let out = sb.run(&[
        "target",
        "add",
        "local",
        "--type",
        "env_file",
        "--path",
        "local dir/.env",
        "--create",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        sb.read("secrets.yaml"),
        before.replace(
            "    path: worker.env\n",
            "    path: worker.env\n  local:\n    type: env_file\n    path: \"local dir/.env\"\n    create: true\n"
        )
    );
    // Usable at once: import no longer needs a hand-written target.
    sb.write("local dir/.env", "FROM_LOCAL=1\n");
    let out = sb.run(&["import", "--from", "local"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "FROM_LOCAL").stdout, "1");
    // Missing fields are the user's mistake, said as the manifest would.
    let out = sb.run(&[
        "target",
        "add",
        "vps",
        "--type",
        "ssh_env",
        "--path",
        "/srv/.env",
    ]);
    assert_eq!(out.code, 1);
    assert_not_editor_bug(&out);
    assert!(
        out.stderr.contains("target `vps` was not added: ") && out.stderr.contains("needs `host`"),
        "{}",
        out.stderr
    );
    // Any field of the kind, without a flag of its own; one it does not
    // take is refused as the manifest would, and nothing is written.
    let out = sb.run(&[
        "target",
        "add",
        "sysd",
        "--type",
        "env_file",
        "--path",
        "s.env",
        "--set",
        "format=systemd",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        sb.read("secrets.yaml").contains(
            "  sysd:\n    type: env_file\n    path: \"s.env\"\n    format: \"systemd\"\n"
        ),
        "{}",
        sb.read("secrets.yaml")
    );
    let kept = sb.read("secrets.yaml");
    let out = sb.run(&[
        "target",
        "add",
        "bad",
        "--type",
        "env_file",
        "--path",
        "b.env",
        "--set",
        "project=p",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("`project` does not apply to env_file targets"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), kept);
    let out = sb.run(&[
        "target",
        "add",
        "v2",
        "--type",
        "ssh_env",
        "--host",
        "h",
        "--path",
        "p",
        "--set",
        "on_change=reboot",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("`on_change` is not set from the command line"),
        "{out:?}"
    );
    assert_eq!(sb.read("secrets.yaml"), kept);
    let out = sb.run(&["target", "add", "k8s", "--type", "kubernetes"]);
    assert_eq!(out.code, 1, "usage errors exit 1: {out:?}");
    // The kinds come from the registry, not from a list in the CLI.
    let kinds = secretsync::targets::registry::names();
    assert!(
        out.stderr.contains(&format!("[possible values: {kinds}]")),
        "{}",
        out.stderr
    );
    sb.run(&["target", "remove", "sysd"]);
    let out = sb.run(&["target", "add", "app", "--type", "env_file", "--path", "x"]);
    assert!(
        out.stderr.contains("target `app` exists already"),
        "{}",
        out.stderr
    );
    // Removing a target in use is refused, naming its secrets.
    let out = sb.run(&["target", "remove", "app"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("target `app` is still used by 2 secret(s): AUTH, LOG_LEVEL"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["target", "remove", "worker"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!sb.read("secrets.yaml").contains("worker"));
    let out = sb.run(&["target", "list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("app\tenv_file\t"), "{}", out.stdout);
}

#[test]
fn plain_values_stay_plain_and_set_plain_stores_in_clear() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    let out = with_stdin(&sb, &["set", "LOG_LEVEL", "--stdin"], &[], "debug");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        sb.read("secrets.yaml")
            .split("previous:")
            .next()
            .unwrap()
            .trim_end_matches(' '),
        before.replace("    value: \"info\"   # plain\n", "    value: \"debug\"\n")
    );
    let out = with_stdin(
        &sb,
        &["set", "PORT", "--plain", "--stdin", "-t", "app"],
        &[],
        "8080 \"q\" \\ é\t",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb
        .read("secrets.yaml")
        .contains("  PORT:\n    targets: [app]\n    value: \"8080 \\\"q\\\" \\\\ é\\t\"\n"));
    assert_eq!(get(&sb, "PORT").stdout, "8080 \"q\" \\ é\t");
    // import never writes a target's value in clear, and says so.
    sb.write("app.env", "LOG_LEVEL=CANARY-from-target\n");
    let out = sb.run(&["import", "--from", "app", "LOG_LEVEL", "--overwrite"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("stored encrypted, though plain before: LOG_LEVEL"),
        "{}",
        out.stderr
    );
    assert_no_canary(
        "manifest",
        sb.read("secrets.yaml").as_bytes(),
        &["CANARY-from-target"],
    );
    assert_eq!(get(&sb, "LOG_LEVEL").stdout, "CANARY-from-target");
    // Encrypting it takes --encrypt; rotate refuses plain config.
    let out = sb.run(&["rotate", "PORT"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is plain configuration"),
        "{}",
        out.stderr
    );
    let out = with_stdin(
        &sb,
        &["set", "PORT", "--encrypt", "--stdin"],
        &[],
        "8080 \"q\" \\ é\t",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb
        .read("secrets.yaml")
        .contains("  PORT:\n    targets: [app]\n    encrypted: |\n"));
}

// ---- 5. smaller ---------------------------------------------------------------

#[test]
fn quiet_set_rotate_and_init_print_nothing() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let out = with_stdin(&sb, &["set", "AUTH", "--stdin", "-q"], &[], "CANARY-q");
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let out = sb.run(&["rotate", "AUTH", "-q"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let out = sb.run(&[
        "-f",
        "new.yaml",
        "init",
        "-q",
        "-r",
        &sb.recipient.to_string(),
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    // Errors are still said.
    let out = sb.run(&["rotate", "NOPE", "-q"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: no secret `NOPE` to rotate"));
}

#[test]
fn empty_values_need_allow_empty() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb));
    let before = sb.read("secrets.yaml");
    for input in ["", "\n"] {
        let out = with_stdin(&sb, &["set", "AUTH", "--stdin"], &[], input);
        assert_eq!(out.code, 1);
        assert_eq!(out.stderr, "error: the value for `AUTH` is empty, so nothing was changed\n  hint: to store an empty value on purpose, pass --allow-empty\n");
    }
    assert_eq!(sb.read("secrets.yaml"), before);
    let out = with_stdin(&sb, &["set", "AUTH", "--stdin", "--allow-empty"], &[], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "AUTH").stdout, "");
}

#[test]
fn crlf_manifests_stay_crlf() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb).replace('\n', "\r\n"));
    let out = with_stdin(&sb, &["set", "NEW", "--stdin", "-t", "app"], &[], "v");
    assert_eq!(out.code, 0, "{out:?}");
    sb.run(&["rotate", "AUTH"]);
    sb.run(&["targets", "add", "AUTH", "worker"]);
    sb.run(&["unset", "LOG_LEVEL"]);
    let text = sb.read("secrets.yaml");
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "a bare LF line was added:\n{text:?}"
    );
    assert_eq!(get(&sb, "NEW").stdout, "v");
}

#[test]
fn removing_a_recipient_lists_the_secrets_to_rotate() {
    let sb = Sandbox::new();
    let other = age::x25519::Identity::generate().to_public().to_string();
    sb.write("secrets.yaml", &manifest(&sb));
    assert_eq!(sb.run(&["recipients", "add", &other]).code, 0);
    let out = sb.run(&["recipients", "remove", &other, "-q"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        "the removed recipient(s) could read these 1 secret(s); rotate them and apply:\n  AUTH: issued elsewhere: rotate it at its source, then `secretsync set AUTH`\n"
    );
}

#[test]
fn paths_print_without_dot_slash_repeats() {
    let sb = Sandbox::new();
    let out = sb.run(&["init", "-r", &sb.recipient.to_string()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "created secrets.yaml with 1 recipient(s)\n");
    let out = sb.run(&["rotate", "A", "-t", "local"]);
    assert_eq!(out.code, 0, "{out:?}");
    for cmd in ["plan", "apply", "doctor"] {
        let out = sb.run(&[cmd, "--auto-approve"][..if cmd == "apply" { 2 } else { 1 }]);
        assert!(!out.all().contains("././"), "{cmd}: {}", out.all());
        assert!(out.all().contains("./.env"), "{cmd}: {}", out.all());
    }
}

#[test]
fn notify_url_comes_from_the_environment() {
    let sb = Sandbox::new();
    drifted(&sb);
    let (url, rx, _l) = webhook::listener();
    let out = sb.run_with(&["plan", "-q"], &[("SECRETSYNC_NOTIFY_URL", &url)]);
    assert_eq!(out.code, 1, "{out:?}");
    let body = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(body.contains("drift in `secrets.yaml`"), "{body}");
    // The URL is a credential: --help does not show it.
    let help = sb.run_with(&["plan", "--help"], &[("SECRETSYNC_NOTIFY_URL", &url)]);
    assert!(
        help.stdout.contains("SECRETSYNC_NOTIFY_URL"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("XXXX"), "{}", help.stdout);
}

// ---- 6. saved plans -------------------------------------------------------------

#[test]
fn a_plan_with_an_unreadable_target_is_not_saved() {
    let sb = Sandbox::new();
    drifted(&sb);
    let out = sb.run(&["plan", "--out", "plan.json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!sb.path("plan.json").exists());
    assert!(out.stderr.contains("error: the plan was not saved to plan.json: target(s) `broken` could not be read, so this plan could never be applied as saved\n  hint: fix the target(s) and plan again, or save a plan of the others: secretsync plan --out FILE -t drift -t clean\n"), "{}", out.stderr);
    let out = sb.run(&["plan", "--out", "plan.json", "-t", "drift", "-t", "clean"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn another_manifests_plan_is_named_as_such() {
    let sb = Sandbox::new();
    drifted(&sb);
    let out = sb.run(&["plan", "--out", "plan.json", "-t", "drift"]);
    assert_eq!(out.code, 0, "{out:?}");
    sb.write(
        "other.yaml",
        &format!(
            "{}targets:\n  a: {{ type: env_file, path: a.env }}\nsecrets: {{}}\n",
            sb.header()
        ),
    );
    let out = sb.run(&["-f", "other.yaml", "apply", "plan.json"]);
    assert_eq!(out.code, 1);
    assert!(!out.stderr.contains("no such target"), "{}", out.stderr);
    assert_eq!(out.stderr, "error: plan.json is a plan of the manifest secrets.yaml, not of other.yaml (the manifests differ), so nothing was applied\n  hint: apply it with `-f secrets.yaml`, or plan this manifest: `secretsync plan --out FILE`\n");
}
