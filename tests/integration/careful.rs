//! Everyday commands never destroy a value, and say what they did (#25),
//! through the real binary: rotation only of what secretsync makes, no
//! plaintext left for git, `export` kept, where a differing value came
//! from, `whoami`, `run` and `get -t`.

use crate::support;

use support::cli::{assert_no_canary, Out, Sandbox};

const NOW: &str = "2026-12-10T00:00:00Z";

fn at_now(sb: &Sandbox, args: &[&str]) -> Out {
    sb.run_with(args, &[("SECRETSYNC_NOW", NOW)])
}

fn get(sb: &Sandbox, key: &str) -> String {
    let out = sb.run(&["get", key]);
    assert_eq!(out.code, 0, "{key}: {out:?}");
    out.stdout
}

/// A JWT with a fake signature (never verified: only its shape counts).
fn jwt() -> String {
    use base64::Engine as _;
    let e = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.Q0FOQVJZLXNpZw",
        e(r#"{"alg":"HS256","typ":"JWT"}"#),
        e(r#"{"sub":"CANARY-jwt"}"#)
    )
}

/// Secrets of every shape, all due for rotation (top-level `rotate_every`,
/// set long ago), two of them made by secretsync.
fn due_manifest(sb: &Sandbox) -> (String, Vec<(&'static str, String)>) {
    let values: Vec<(&'static str, String)> = vec![
        (
            "DATABASE_URL",
            "postgres://app:CANARYdbpw@db.internal:5432/app".into(),
        ),
        ("CONFIG_JSON", r#"{"CANARY":"json","n":1}"#.into()),
        ("FEATURE_FLAGS", "a,b,CANARYflag".into()),
        ("STRIPE_KEY", "sk_live_CANARY0123456789abcdef".into()),
        ("SESSION_JWT", jwt()),
        ("HEX_KEY", "CANARY".to_string() + &"0".repeat(58)),
        ("WORDS", "CANARYwords0123456789".into()),
    ];
    let mut text = format!(
        "{}rotate_every: 30d\ntargets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n",
        sb.header()
    );
    for (name, value) in &values {
        text.push_str(&format!(
            "  {name}:\n    targets: [app]\n    set_on: \"2026-01-01\"\n    encrypted: |\n{}",
            sb.encrypted(value, 6)
        ));
        match *name {
            "HEX_KEY" => text.push_str("    generate: {bytes: 32, encoding: hex}\n"),
            "WORDS" => text.push_str("    generate:\n      chars: 24\n      alphabet: base64url\n"),
            _ => {}
        }
    }
    // Plain configuration is never due, whatever it says.
    text.push_str(
        "  LOG_LEVEL:\n    targets: [app]\n    value: info\n    rotate_every: 7d\n    set_on: \"2026-01-01\"\n",
    );
    (text, values)
}

#[test]
fn rotate_due_changes_only_what_secretsync_makes() {
    let sb = Sandbox::new();
    let (text, values) = due_manifest(&sb);
    sb.write("secrets.yaml", &text);
    // A dry run lists the same and writes nothing.
    let out = at_now(&sb, &["rotate", "--due", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary("rotate --dry-run", out.all().as_bytes(), &["CANARY"]);
    assert!(
        out.stderr.contains("would rotate 2 secret(s) due for rotation: HEX_KEY (32 random bytes in hex), WORDS (24 base64url characters)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was changed (dry run)"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), text);

    let out = at_now(&sb, &["rotate", "--due"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary("rotate --due", out.all().as_bytes(), &["CANARY"]);
    assert!(
        out.stderr
            .contains("rotated 2 secret(s) due for rotation: HEX_KEY (32 random bytes in hex), WORDS (24 base64url characters)"),
        "{}",
        out.stderr
    );
    for name in [
        "DATABASE_URL",
        "CONFIG_JSON",
        "FEATURE_FLAGS",
        "STRIPE_KEY",
        "SESSION_JWT",
    ] {
        assert!(
            out.stderr.contains(&format!(
                "  {name}: issued elsewhere: rotate it at its source, then `secretsync set {name}`"
            )),
            "{name}: {}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("LOG_LEVEL"), "{}", out.stderr);
    for (name, old) in &values {
        let now = get(&sb, name);
        match *name {
            "HEX_KEY" => {
                assert_ne!(&now, old);
                assert_eq!(now.len(), 64);
                assert!(now
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
            "WORDS" => {
                assert_ne!(&now, old);
                assert_eq!(now.len(), 24);
                assert!(now
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            _ => assert_eq!(&now, old, "{name} was changed"),
        }
    }
    assert_eq!(get(&sb, "LOG_LEVEL"), "info");
    // The next plan says which values were replaced, not that they are random.
    let m = sb.read("secrets.yaml");
    assert!(
        m.contains("    generate: {bytes: 32, encoding: hex}\n"),
        "{m}"
    );
}

#[test]
fn rotate_key_refuses_values_it_cannot_make() {
    let sb = Sandbox::new();
    let (text, values) = due_manifest(&sb);
    sb.write("secrets.yaml", &text);
    for (name, why) in [
        ("DATABASE_URL", "it looks like a URL"),
        ("CONFIG_JSON", "it looks like JSON"),
        ("FEATURE_FLAGS", "it looks like a list"),
        ("STRIPE_KEY", "provider's key"),
        ("SESSION_JWT", "JWT"),
    ] {
        let out = sb.run(&["rotate", name]);
        assert_eq!(out.code, 1, "{name}: {out:?}");
        assert!(
            out.stderr.starts_with(&format!(
                "error: refusing to replace `{name}` with random text: "
            )),
            "{name}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(why), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("--generate"), "{}", out.stderr);
        assert_no_canary(name, out.all().as_bytes(), &["CANARY"]);
    }
    assert_eq!(sb.read("secrets.yaml"), text);
    // Told how, it makes the value and records the spec.
    let out = sb.run(&[
        "rotate",
        "STRIPE_KEY",
        "--generate",
        "chars=32,alphabet=alnum",
        "--dry-run",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("would replace `STRIPE_KEY` with 32 alnum characters"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), text);
    let out = sb.run(&[
        "rotate",
        "STRIPE_KEY",
        "--generate",
        "chars=32,alphabet=alnum",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let now = get(&sb, "STRIPE_KEY");
    assert_ne!(now, values[3].1);
    assert_eq!(now.len(), 32);
    let m = sb.read("secrets.yaml");
    let stripe = m.split("  STRIPE_KEY:\n").nth(1).unwrap();
    assert!(
        stripe.contains("    generate: {chars: 32, alphabet: alnum}\n  SESSION_JWT:\n"),
        "{stripe}"
    );
    // Again, without flags: the recorded spec.
    assert_eq!(sb.run(&["rotate", "STRIPE_KEY"]).code, 0);
    assert_eq!(get(&sb, "STRIPE_KEY").len(), 32);
    // A new secret made by rotate records how.
    let out = sb.run(&[
        "rotate",
        "NEW_TOKEN",
        "-t",
        "app",
        "--bytes",
        "16",
        "--charset",
        "base64url",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb
        .read("secrets.yaml")
        .contains("    generate: {bytes: 16, encoding: base64url}\n"));
}

#[test]
fn generate_specs_are_checked_where_they_stand() {
    let sb = Sandbox::new();
    let base = format!(
        "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  K:\n    targets: [app]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted("CANARY-k", 6)
    );
    let line = base.lines().count() + 1;
    for (spec, want) in [
        ("{bytes: 32}", "needs `encoding`"),
        ("{bytes: 32, encoding: alnum}", "cannot encode bytes"),
        ("{chars: 4, alphabet: alnum}", "out of range"),
        ("{chars: 0x20, alphabet: alnum}", "is not a number"),
        ("{chars: 20, alphabet: emoji}", "unknown alphabet `emoji`"),
        ("{chars: 20, bytes: 20, alphabet: hex}", "not both"),
        ("{chars: 20, alphabet: hex, run: x}", "unknown field `run`"),
        ("{chars: 20}", "needs `alphabet`"),
    ] {
        sb.write("secrets.yaml", &format!("{base}    generate: {spec}\n"));
        let out = sb.run(&["check"]);
        assert_eq!(out.code, 1, "{spec}: {out:?}");
        assert!(out.all().contains(want), "{spec}: {}", out.all());
        assert!(
            out.all().contains(&format!("secrets.yaml:{line}:")),
            "{spec}: {}",
            out.all()
        );
    }
    // Plain configuration is not generated.
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  K:\n    targets: [app]\n    value: x\n    generate: {{chars: 20, alphabet: hex}}\n",
            sb.header()
        ),
    );
    let out = sb.run(&["check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all().contains("`generate` is for encrypted secrets"),
        "{}",
        out.all()
    );
}

// ---- no plaintext in git --------------------------------------------------------

fn git(sb: &Sandbox, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(sb.dir.path())
        .env("HOME", sb.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn init_in_a_git_repository_leaves_no_plaintext_for_git() {
    let sb = Sandbox::new();
    git(&sb, &["init", "-q"]);
    // The sandbox's identity file is the user's, kept elsewhere in life.
    sb.write(".git/info/exclude", "id.txt\n");
    let out = sb.run(&["init", "-r", &sb.recipient.to_string()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("added to .gitignore: /.env, /.secrets.yaml.lock"),
        "{}",
        out.stderr
    );
    let out = sb.run_stdin(
        &["set", "API_KEY", "--stdin", "-t", "local"],
        &[],
        "CANARY-in-clear\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb.read(".env").contains("CANARY-in-clear"));
    let status = git(&sb, &["status", "--porcelain", "--untracked-files=all"]);
    let mut files: Vec<&str> = status.lines().map(|l| &l[3..]).collect();
    files.sort();
    assert_eq!(files, [".gitignore", "secrets.yaml"], "{status}");
    // What git would commit holds no value.
    git(&sb, &["add", "-A"]);
    let staged = git(&sb, &["diff", "--cached"]);
    assert_no_canary("git diff --cached", staged.as_bytes(), &["CANARY"]);
    // A second init elsewhere in the same folder keeps .gitignore as it is.
    let before = sb.read(".gitignore");
    let out = sb.run(&["-f", "other.yaml", "init", "-r", &sb.recipient.to_string()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(sb.read(".gitignore").starts_with(&before));
    assert!(sb.read(".gitignore").contains("/.other.yaml.lock\n"));
    assert_eq!(sb.read(".gitignore").matches("/.env\n").count(), 1);
}

#[test]
fn check_warns_about_a_local_env_file_git_does_not_ignore() {
    let sb = Sandbox::new();
    git(&sb, &["init", "-q"]);
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  local:\n    type: env_file\n    path: ./.env\n  kept:\n    type: env_file\n    path: config/app.env\nsecrets: {{}}\n",
            sb.header()
        ),
    );
    sb.write(".gitignore", "/config/\n");
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let out = sb.run(&["check", "--detailed-exitcode"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("target `local` writes values in clear to ./.env, inside a git work tree, and git does not ignore it"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("`kept`"), "{}", out.stdout);
    sb.write(".gitignore", "/config/\n.env\n");
    let out = sb.run(&["check", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Outside a git work tree, nothing is said.
    let plain = Sandbox::new();
    plain.write("secrets.yaml", &sb.read("secrets.yaml"));
    let out = plain.run(&["check", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn check_and_set_say_how_to_encrypt() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  STRIPE:\n    targets: [app]\n    value: sk_live_abcdefghijklmnopqrstuvwx\n",
            sb.header()
        ),
    );
    let out = sb.run(&["check"]);
    assert!(
        out.stdout
            .contains("encrypt it with `secretsync set STRIPE --encrypt`"),
        "{}",
        out.stdout
    );
    let out = sb.run_stdin(
        &["set", "OTHER", "--plain", "--stdin", "-t", "app"],
        &[],
        "sk_live_CANARYCANARYCANARY00\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("warning: `OTHER` is stored in clear, and its value looks like a secret"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`secretsync set OTHER --encrypt`"),
        "{}",
        out.stderr
    );
    assert_no_canary("set --plain", out.all().as_bytes(), &["CANARY"]);
    // The same value again, now encrypted: no former value is claimed.
    let out = sb.run_stdin(
        &["set", "OTHER", "--encrypt", "--stdin"],
        &[],
        "sk_live_CANARYCANARYCANARY00\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("secret `OTHER` kept with the same value, now encrypted, in secrets.yaml"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("previous"), "{}", out.stderr);
}

// ---- export kept or explained ------------------------------------------------------

/// What a child of a bash that sourced `file` sees as `$key` (only exported
/// variables reach a child), read by the real bash.
fn bash_child_sees(sb: &Sandbox, file: &str, key: &str) -> String {
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". ./{file}; bash -c 'printf %s \"${{{key}-unset}}\"'"
        ))
        .current_dir(sb.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn export_is_kept_where_readers_accept_it_and_explained_where_not() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  worker:\n    type: env_file\n    path: worker.env\n    format: shell\n  portable:\n    type: env_file\n    path: portable.env\nsecrets:\n  TOKEN:\n    targets: [worker, portable]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted("CANARY new $value", 6)
        ),
    );
    sb.write("worker.env", "export TOKEN=old\nexport OTHER=1\n");
    sb.write("portable.env", "export TOKEN=old\n");
    assert_eq!(bash_child_sees(&sb, "worker.env", "TOKEN"), "old");
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary("plan", out.all().as_bytes(), &["CANARY"]);
    // The portable format drops it, and says so per key before apply.
    assert!(
        out.stdout.contains("note: TOKEN: its `export ` prefix is dropped on rewrite (format dotenv: systemd, one of its readers, ignores `export` lines), so a shell sourcing the file no longer exports it to child processes; `format: shell` keeps it"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("prefix is dropped").count(),
        1,
        "{}",
        out.stdout
    );
    let json = sb.run(&["plan", "--format", "json"]);
    assert!(json.stdout.contains("prefix is dropped"), "{}", json.stdout);
    assert_eq!(sb.run(&["apply", "--auto-approve"]).code, 0);
    // Kept under `format: shell`: bash's children still see the new value.
    assert!(
        sb.read("worker.env").starts_with("export TOKEN="),
        "{}",
        sb.read("worker.env")
    );
    assert_eq!(
        bash_child_sees(&sb, "worker.env", "TOKEN"),
        "CANARY new $value"
    );
    assert_eq!(bash_child_sees(&sb, "worker.env", "OTHER"), "1");
    assert_eq!(bash_child_sees(&sb, "portable.env", "TOKEN"), "unset");
    // In sync, nothing more to say.
    let out = sb.run(&["plan"]);
    assert!(!out.stdout.contains("prefix is dropped"), "{}", out.stdout);
}

// ---- where a differing value came from ---------------------------------------------

fn two_secrets(sb: &Sandbox) {
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  HAND:\n    targets: [app]\n    encrypted: |\n{}  ROTATED:\n    targets: [app]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted("CANARY-hand-manifest", 6),
            sb.encrypted("CANARYrotated0123456789", 6)
        ),
    );
}

#[test]
fn a_hand_edit_is_reported_as_changed_outside() {
    let sb = Sandbox::new();
    two_secrets(&sb);
    assert_eq!(sb.run(&["apply", "--auto-approve"]).code, 0);
    // ROTATED is rotated in the manifest (app still holds its former
    // value); HAND is edited on the target by hand.
    assert_eq!(sb.run(&["rotate", "ROTATED"]).code, 0);
    let text = sb
        .read("app.env")
        .replace("CANARY-hand-manifest", "CANARY-hand-edit");
    sb.write("app.env", &text);
    let out = sb.run(&["plan", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary("plan json", out.all().as_bytes(), &["CANARY"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let items = doc["targets"][0]["items"].as_array().unwrap();
    let item = |k: &str| items.iter().find(|i| i["key"] == k).unwrap().clone();
    assert_eq!(item("HAND")["state"], "differs");
    assert_eq!(item("HAND")["provenance"], "outside");
    assert_eq!(item("ROTATED")["provenance"], "previous");
    assert!(item("ROTATED")["replaced_on"].is_string());
    let out = sb.run(&["plan"]);
    assert!(
        out.stdout.contains("note: HAND was changed outside secretsync (it holds none of the manifest's current or previous values)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("note: ROTATED holds the value replaced on "),
        "{}",
        out.stdout
    );
    let out = sb.run(&["plan", "--format", "markdown"]);
    assert!(
        out.stdout.contains("changed outside secretsync"),
        "{}",
        out.stdout
    );
    assert_no_canary("plan", out.all().as_bytes(), &["CANARY"]);
}

#[test]
fn an_applied_saved_plan_says_already_applied() {
    let sb = Sandbox::new();
    two_secrets(&sb);
    let out = sb.run(&["plan", "--out", "plan.json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sb.run(&["apply", "plan.json"]).code, 0);
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("the saved plan was already applied"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("stale"), "{}", out.all());
    // Changed again since: stale, and said as such.
    sb.write(
        "app.env",
        &sb.read("app.env").replace("CANARY-hand-manifest", "x"),
    );
    let out = sb.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("stale"), "{}", out.stderr);
}

#[test]
fn import_names_what_it_skipped_and_why() {
    let sb = Sandbox::new();
    two_secrets(&sb);
    assert_eq!(sb.run(&["apply", "--auto-approve"]).code, 0);
    sb.write(
        "app.env",
        &sb.read("app.env")
            .replace("CANARY-hand-manifest", "CANARY-other"),
    );
    let out = sb.run(&["import", "--from", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("imported nothing from `app`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "skipped 1 already in the manifest with the same value (nothing to import): ROTATED"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("skipped 1 already in the manifest (use --overwrite): HAND"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("imported 0"), "{}", out.stderr);
}

// ---- onboarding: whoami, a second init, the identity error -------------------------

#[test]
fn whoami_prints_each_identity_and_whether_it_is_a_recipient() {
    let sb = Sandbox::new();
    two_secrets(&sb);
    let other = age::x25519::Identity::generate();
    use secrecy::ExposeSecret;
    let other_key = other.to_string().expose_secret().to_string();
    let out = sb.run_with(&["whoami"], &[("SECRETSYNC_AGE_KEY", &other_key)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_no_canary(
        "whoami",
        out.all().as_bytes(),
        &[&other_key, "AGE-SECRET-KEY"],
    );
    let me = sb.recipient.to_string();
    assert!(
        out.stdout.contains(&format!(
            "{me}\n  from --identity {} (used); a recipient of secrets.yaml\n",
            sb.identity.display()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "{}\n  from SECRETSYNC_AGE_KEY; not a recipient of secrets.yaml\n",
            other.to_public()
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn a_second_init_reuses_the_identity() {
    let sb = Sandbox::new();
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["-f", "one/secrets.yaml", "init"]);
    std::fs::create_dir_all(sb.path("one")).unwrap();
    std::fs::create_dir_all(sb.path("two")).unwrap();
    let first = support::cli::run(cmd);
    assert_eq!(first.code, 0, "{first:?}");
    let key_file = sb.path(".config/sops/age/keys.txt");
    let id_text = std::fs::read_to_string(&key_file).unwrap();
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["-f", "two/secrets.yaml", "init"]);
    let second = support::cli::run(cmd);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second.stderr.contains("using the existing identity in"),
        "{}",
        second.stderr
    );
    assert_eq!(second.stdout, first.stdout, "the same public key");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        id_text,
        "never overwritten"
    );
    assert!(sb.read("two/secrets.yaml").contains(first.stdout.trim()));
}

#[test]
fn the_identity_error_names_what_it_could_not_decrypt_and_the_recipients() {
    let sb = Sandbox::new();
    two_secrets(&sb);
    let other = Sandbox::new();
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["plan", "--identity"]).arg(&other.identity);
    let out = support::cli::run(cmd);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "error: the manifest's fingerprint key (`fingerprint_key`, encrypted to the recipients like every value) is not encrypted to the identity from --identity {} ({}), which is not one of the manifest's recipients:\n  - {}\n",
            other.identity.display(),
            other.recipient,
            sb.recipient
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("`secretsync recipients add YOUR_PUBLIC_KEY`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("rekey"), "{}", out.stderr);
}

// ---- run and get -t ----------------------------------------------------------------

fn renamed(sb: &Sandbox) {
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\n  worker:\n    type: env_file\n    path: worker.env\nsecrets:\n  DB_PASSWORD:\n    targets: [app, worker]\n    rename: {{ worker: WORKER_DB_PASSWORD }}\n    encrypted: |\n{}  LOG_LEVEL:\n    targets: [app]\n    value: debug\n",
            sb.header(),
            sb.encrypted("CANARY db 'pw' $x\nline2", 6)
        ),
    );
}

/// `secretsync --identity ID ARGS…`: the identity before `run`, whose
/// trailing arguments are the command's.
fn run_cmd(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.arg("--identity").arg(&sb.identity).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::cli::run(cmd)
}

#[test]
fn run_gives_the_command_the_values_a_target_receives_and_its_exit_status() {
    let sb = Sandbox::new();
    renamed(&sb);
    let probe = "printf '%s|%s|%s|%s' \"$WORKER_DB_PASSWORD\" \"${DB_PASSWORD-unset}\" \"${LOG_LEVEL-unset}\" \"${SECRETSYNC_AGE_KEY-none}${SOPS_AGE_KEY-none}${RAILWAY_TOKEN-none}\" > seen; exit 7";
    let out = run_cmd(
        &sb,
        &["run", "-t", "worker", "--", "sh", "-c", probe],
        &[
            ("RAILWAY_TOKEN", "CANARY-railway"),
            ("SOPS_AGE_KEY", "CANARY-sops"),
        ],
    );
    assert_eq!(out.code, 7, "the command's status: {out:?}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", ""),
        "nothing printed"
    );
    assert_eq!(
        sb.read("seen"),
        "CANARY db 'pw' $x\nline2|unset|unset|nonenonenone"
    );
    // app gets it under its own name, with the plain setting.
    let out = run_cmd(
        &sb,
        &[
            "run",
            "-t",
            "app",
            "--",
            "sh",
            "-c",
            "printf '%s %s' \"$LOG_LEVEL\" \"${#DB_PASSWORD}\" > seen",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sb.read("seen"), "debug 23");
    // A signal is said as a shell says it.
    let out = run_cmd(
        &sb,
        &["run", "-t", "app", "--", "sh", "-c", "kill -TERM $$"],
        &[],
    );
    assert_eq!(out.code, 143, "{out:?}");
    let out = run_cmd(&sb, &["run", "-t", "nope", "--", "true"], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("--target nope: no such target"),
        "{}",
        out.stderr
    );
    let out = run_cmd(
        &sb,
        &["run", "-t", "app", "--env", "prod", "--", "true"],
        &[],
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no environments"), "{}", out.stderr);
    let out = run_cmd(&sb, &["run", "-t", "app", "--", "./no-such-program"], &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot run `./no-such-program`"),
        "{}",
        out.stderr
    );
}

#[test]
fn get_with_a_target_prints_the_value_under_its_name_there() {
    let sb = Sandbox::new();
    renamed(&sb);
    let want = "CANARY db 'pw' $x\nline2";
    for args in [
        ["get", "WORKER_DB_PASSWORD", "-t", "worker"],
        ["get", "DB_PASSWORD", "-t", "worker"],
        ["get", "DB_PASSWORD", "-t", "app"],
    ] {
        let out = sb.run(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert_eq!(out.stdout, want, "{args:?}");
    }
    let out = sb.run(&["get", "LOG_LEVEL", "-t", "worker"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "target `worker` receives no key `LOG_LEVEL`\n  hint: its keys: WORKER_DB_PASSWORD"
        ),
        "{}",
        out.stderr
    );
    let out = sb.run(&["get", "WORKER_DB_PASSWORD", "-t", "app"]);
    assert_eq!(out.code, 1, "{out:?}");
}

// ---- dynamic completions ---------------------------------------------------------

/// What the shell hook would get back for the words, the last being completed.
fn complete(sb: &Sandbox, words: &[&str]) -> Vec<String> {
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.arg("--")
        .args(words)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n");
    let out = support::cli::run(cmd);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.lines().map(String::from).collect()
}

#[test]
fn completions_offer_the_manifests_secret_and_target_names() {
    let sb = Sandbox::new();
    renamed(&sb);
    sb.write(
        "other.yaml",
        &sb.read("secrets.yaml")
            .replace("DB_PASSWORD:", "OTHER_SECRET:")
            .replace("  worker:\n", "  backup:\n")
            .replace("[app, worker]", "[app, backup]")
            .replace("{ worker:", "{ backup:"),
    );
    let got = complete(&sb, &["secretsync", "get", ""]);
    assert!(
        got.contains(&"DB_PASSWORD".to_string()) && got.contains(&"LOG_LEVEL".to_string()),
        "{got:?}"
    );
    let got = complete(&sb, &["secretsync", "plan", "-t", ""]);
    assert_eq!(got, ["app", "worker"]);
    let got = complete(&sb, &["secretsync", "run", "--target", "w"]);
    assert_eq!(got, ["worker"]);
    let got = complete(&sb, &["secretsync", "-f", "other.yaml", "rotate", "O"]);
    assert_eq!(got, ["OTHER_SECRET"]);
    let got = complete(
        &sb,
        &[
            "secretsync",
            "-f",
            "other.yaml",
            "targets",
            "add",
            "LOG_LEVEL",
            "",
        ],
    );
    assert_eq!(got[..2], ["app", "backup"], "{got:?}");
    assert!(!got.contains(&"worker".to_string()), "{got:?}");
    // The shell's hook, to install.
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.env("COMPLETE", "bash");
    let hook = support::cli::run(cmd);
    assert!(
        hook.stdout
            .contains("complete -o nospace -o bashdefault -F _clap_complete_secretsync secretsync")
            || hook.stdout.contains("_clap_complete_secretsync"),
        "{}",
        hook.stdout
    );
}

// ---- terminal output ---------------------------------------------------------------

#[test]
fn list_says_the_lifecycle_once_and_doctor_marks_warnings() {
    let sb = Sandbox::new();
    let (text, _) = due_manifest(&sb);
    sb.write("secrets.yaml", &text);
    let out = at_now(&sb, &["list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("\nLifecycle: 7 due for rotation (see the rows above;"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("fix:"),
        "the plan's block is not repeated:\n{}",
        out.stdout
    );
    let out = at_now(&sb, &["doctor"]);
    assert!(!out.stdout.contains("ok   secret "), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("  warn secret HEX_KEY: is due for rotation since "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  warn secret DATABASE_URL: is due for rotation since 2026-01-31 (set on 2026-01-01, rotate_every 30d)\n      fix: issued elsewhere: rotate it at its source, then `secretsync set DATABASE_URL`"),
        "{}",
        out.stdout
    );
}
