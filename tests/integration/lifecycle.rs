//! Secret lifecycle (#18), through the real binary with a fixed clock
//! (SECRETSYNC_NOW): expiry read from the values (JWTs made here, a
//! self-signed test certificate without its key), `expires:`, rotation
//! policy; plan in every format, doctor, list, rotate --due and rotate
//! --from-command; no value in any output.

use crate::support;

use base64::Engine as _;
use serde_json::{json, Value};
use support::cli::{assert_no_canary, Out, Sandbox};
use support::webhook;

/// The fixed "now" of these tests.
const NOW: &str = "2026-12-10T00:00:00Z";
const NOW_SECS: i64 = 1_796_860_800; // 2026-12-10T00:00:00Z
const DAY: i64 = 86_400;

/// The test certificate (tests/fixtures/lifecycle): notAfter 2026-12-15 12:00 UTC.
const CERT: &str = include_str!("../fixtures/lifecycle/test-cert.pem");

/// A JWT with these claims and a fake signature; the subject is a canary.
fn jwt(claims: Value) -> String {
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.Q0FOQVJZLXNpZ25hdHVyZQ",
        e(&json!({"alg": "HS256", "typ": "JWT"})),
        e(&claims)
    )
}

/// Every secret of the scenario and its value.
fn values() -> Vec<(&'static str, String)> {
    vec![
        (
            "EXPIRED_JWT",
            jwt(json!({"sub": "CANARY-expired", "exp": NOW_SECS - 2 * DAY})),
        ),
        (
            "SOON_JWT",
            jwt(json!({"sub": "CANARY-soon", "exp": NOW_SECS + 3 * DAY})),
        ),
        (
            "YEAR_JWT",
            jwt(json!({"sub": "CANARY-year", "exp": NOW_SECS + 365 * DAY})),
        ),
        ("NOEXP_JWT", jwt(json!({"sub": "CANARY-noexp"}))),
        ("CERT", CERT.to_string()),
        ("HAND", "CANARY-hand-opaque".to_string()),
        ("OLD_PW", "CANARYoldpw0123456789abcdefghij".to_string()),
        ("NEW_PW", "CANARYnewpw0123456789abcdefghij".to_string()),
    ]
}

/// Lifecycle fields per secret.
fn fields(name: &str) -> &'static str {
    match name {
        "HAND" => "    expires: 2026-12-12\n",
        "OLD_PW" => "    rotate_every: 30d\n    set_on: \"2026-10-01\"\n",
        "NEW_PW" => "    rotate_every: 30d\n    set_on: \"2026-12-01\"\n",
        _ => "",
    }
}

fn canaries() -> Vec<String> {
    let mut c: Vec<String> = vec!["CANARY".into()];
    for (_, v) in values() {
        // The whole value, and each part of a JWT (its base64 text).
        c.push(v.clone());
        if !v.contains("BEGIN") {
            c.extend(v.split('.').filter(|p| p.len() > 8).map(String::from));
        }
    }
    // The certificate's body lines.
    c.extend(
        CERT.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(String::from),
    );
    c
}

fn assert_clean(what: &str, out: &Out) {
    let c = canaries();
    let refs: Vec<&str> = c.iter().map(String::as_str).collect();
    assert_no_canary(what, out.all().as_bytes(), &refs);
}

fn scenario_with(sb: &Sandbox, names: &[&str]) {
    let mut text = format!(
        "{}\ntargets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n",
        sb.header()
    );
    for (name, value) in values() {
        if !names.contains(&name) {
            continue;
        }
        text.push_str(&format!(
            "  {name}:\n    targets: [app]\n    encrypted: |\n{}{}",
            sb.encrypted(&value, 6),
            fields(name)
        ));
    }
    sb.write("secrets.yaml", &text);
}

fn scenario(sb: &Sandbox) {
    let all: Vec<&str> = values().iter().map(|(n, _)| *n).collect();
    scenario_with(sb, &all);
}

fn at_now(sb: &Sandbox, args: &[&str]) -> Out {
    at(sb, args, &[])
}

fn at(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut e = vec![("SECRETSYNC_NOW", NOW)];
    e.extend_from_slice(env);
    sb.run_with(args, &e)
}

/// The `Secrets:` block of a text plan.
fn secrets_block(text: &str) -> &str {
    text.split_once("\nSecrets:\n").map_or("", |(_, b)| b)
}

#[test]
fn plan_text_names_what_expired_expires_soon_or_is_due() {
    let sb = Sandbox::new();
    scenario(&sb);
    let out = at_now(&sb, &["plan"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("plan", &out);
    let block = secrets_block(&out.stdout);
    for (name, what) in [
        (
            "EXPIRED_JWT",
            "expired on 2026-12-08 (2 days ago; the value's JWT `exp`)",
        ),
        (
            "SOON_JWT",
            "expires on 2026-12-13 (in 3 days; the value's JWT `exp`)",
        ),
        (
            "CERT",
            "expires on 2026-12-15 12:00 UTC (in 5 days; the value's certificate notAfter)",
        ),
        (
            "HAND",
            "expires on 2026-12-12 (in 2 days; `expires:` in the manifest)",
        ),
        (
            "OLD_PW",
            "is due for rotation since 2026-10-31 (set on 2026-10-01, rotate_every 30d)",
        ),
    ] {
        assert!(
            block
                .lines()
                .any(|l| l.contains(&format!(" {name} ")) && l.ends_with(what)),
            "{name}: {what}\n{}",
            out.stdout
        );
    }
    // A JWT valid for a year, one without `exp`, a rotation not yet due: nothing.
    for quiet in ["YEAR_JWT", "NOEXP_JWT", "NEW_PW"] {
        assert!(!block.contains(quiet), "{quiet}:\n{block}");
    }
    assert!(
        block.contains("Lifecycle: 1 expired, 3 expiring within 14 days, 1 due for rotation."),
        "{block}"
    );
    // The expired one comes first, marked as such.
    assert!(block.starts_with("    ! EXPIRED_JWT"), "{block}");
}

#[test]
fn the_warning_window_flag() {
    let sb = Sandbox::new();
    scenario(&sb);
    let out = at_now(&sb, &["plan", "--warn-within", "2d"]);
    let block = secrets_block(&out.stdout);
    assert!(
        block.contains("EXPIRED_JWT") && block.contains("HAND"),
        "{block}"
    );
    assert!(
        !block.contains("SOON_JWT") && !block.contains(" CERT "),
        "{block}"
    );
    let out = at_now(&sb, &["plan", "--warn-within", "30"]);
    let doc = at_now(&sb, &["plan", "--warn-within", "400d", "--format", "json"]);
    assert!(
        secrets_block(&out.stdout).contains(" CERT "),
        "{}",
        out.stdout
    );
    let doc: Value = serde_json::from_str(&doc.stdout).unwrap();
    assert_eq!(doc["lifecycle"]["warn_within_days"], 400);
    let expiring: Vec<&str> = doc["lifecycle"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "expiring")
        .map(|f| f["secret"].as_str().unwrap())
        .collect();
    assert_eq!(expiring, ["SOON_JWT", "YEAR_JWT", "CERT", "HAND"]);
    let bad = at_now(&sb, &["plan", "--warn-within", "soon"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("--warn-within"), "{}", bad.stderr);
}

#[test]
fn plan_json_has_the_lifecycle_and_a_new_format_version() {
    let sb = Sandbox::new();
    scenario(&sb);
    let out = at_now(&sb, &["plan", "--format", "json"]);
    assert_clean("plan json", &out);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["format_version"], 2);
    let life = &doc["lifecycle"];
    assert_eq!(life["warn_within_days"], 14);
    let secret = |name: &str| {
        life["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(secret("EXPIRED_JWT")["expiry"], "expired");
    assert_eq!(secret("EXPIRED_JWT")["expires"]["source"], "jwt");
    assert_eq!(secret("EXPIRED_JWT")["expires"]["days_left"], -2);
    assert_eq!(secret("SOON_JWT")["expiry"], "expiring");
    assert_eq!(secret("YEAR_JWT")["expiry"], "valid");
    assert_eq!(secret("NOEXP_JWT")["expiry"], "unknown");
    assert_eq!(secret("NOEXP_JWT")["issued_elsewhere"], true);
    assert_eq!(
        secret("CERT")["expires"],
        json!({"at": "2026-12-15T12:00:00Z", "source": "certificate", "days_left": 5})
    );
    assert_eq!(secret("HAND")["expires"]["source"], "manifest");
    assert_eq!(
        secret("OLD_PW")["rotation"],
        json!({"every_days": 30, "due_on": "2026-10-31", "overdue": true})
    );
    assert_eq!(secret("NEW_PW")["rotation"]["overdue"], false);
    assert_eq!(secret("NEW_PW")["kind"], "encrypted");
    let kinds: Vec<(String, String)> = life["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["secret"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    f["level"].as_str().unwrap(),
                    f["kind"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("EXPIRED_JWT".into(), "error/expired".into()),
            ("SOON_JWT".into(), "warning/expiring".into()),
            ("CERT".into(), "warning/expiring".into()),
            ("HAND".into(), "warning/expiring".into()),
            ("OLD_PW".into(), "warning/rotation_due".into()),
        ]
    );
}

#[test]
fn expiry_leaves_the_drift_exit_codes_alone() {
    let sb = Sandbox::new();
    scenario(&sb);
    // Pending changes: 2, expired or not.
    let out = at_now(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = at_now(&sb, &["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("apply", &out);
    // In sync: 0, though a secret expired.
    let out = at_now(&sb, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        secrets_block(&out.stdout).contains("EXPIRED_JWT"),
        "{}",
        out.stdout
    );
}

#[test]
fn markdown_annotations_and_notify_carry_the_lifecycle() {
    let sb = Sandbox::new();
    scenario(&sb);
    assert_eq!(at_now(&sb, &["apply", "--auto-approve"]).code, 0);
    let md = at_now(&sb, &["plan", "--format", "markdown"]);
    assert_clean("markdown", &md);
    assert!(
        md.stdout.contains(
            "#### Secret lifecycle\n\n1 expired, 3 expiring within 14 days, 1 due for rotation.\n"
        ),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout
            .contains("| `EXPIRED_JWT` | ❌ expired on 2026-12-08"),
        "{}",
        md.stdout
    );

    let summary = sb.path("summary.md");
    let gh = at(
        &sb,
        &["plan"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_eq!(gh.code, 0, "{gh:?}");
    assert_clean("annotations", &gh);
    assert!(
        gh.stderr.contains(
            "::error title=secretsync lifecycle%3A EXPIRED_JWT::EXPIRED_JWT expired on 2026-12-08"
        ),
        "{}",
        gh.stderr
    );
    assert!(
        gh.stderr.contains(
            "::warning title=secretsync lifecycle%3A SOON_JWT::SOON_JWT expires on 2026-12-13"
        ),
        "{}",
        gh.stderr
    );
    assert!(!gh.stderr.contains("YEAR_JWT"), "{}", gh.stderr);
    assert!(!gh.stdout.contains("::"), "annotations stay off stdout");
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(summary.contains("#### Secret lifecycle"), "{summary}");

    // In sync, yet the nightly job hears about what expires.
    let (url, rx, _l) = webhook::listener();
    let out = at_now(&sb, &["plan", "--detailed-exitcode", "--notify", &url]);
    assert_eq!(out.code, 0, "{out:?}");
    let body = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert_no_canary(
        "notify",
        body.as_bytes(),
        &canaries().iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let text: Value = serde_json::from_str(&body).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "*secretsync*: no drift in `secrets.yaml`, but 5 secret(s) need attention"
        ),
        "{text}"
    );
    assert!(
        text.contains("⛔ `EXPIRED_JWT` expired on 2026-12-08"),
        "{text}"
    );
    assert!(
        text.contains("⚠️ `SOON_JWT` expires on 2026-12-13"),
        "{text}"
    );
}

#[test]
fn doctor_fails_on_an_expired_secret_and_warns_in_the_window() {
    let sb = Sandbox::new();
    scenario(&sb);
    let out = at_now(&sb, &["doctor"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_clean("doctor", &out);
    assert!(
        out.stdout
            .contains("FAIL secret EXPIRED_JWT: EXPIRED_JWT expired on 2026-12-08"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\n  warn secret SOON_JWT: expires on 2026-12-13"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("1 problem(s) found."), "{}", out.stdout);
    // In JSON the expired secret is a failed check of its own kind: a value
    // past its expiry, not a refused credential.
    let out = at_now(&sb, &["doctor", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let expired = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "secret EXPIRED_JWT")
        .unwrap();
    assert_eq!(expired["ok"], false);
    assert_eq!(expired["status"], "fail");
    assert_eq!(expired["error"]["kind"], "expired", "{expired}");

    // Without the expired one: warnings only, exit 0.
    scenario_with(&sb, &["SOON_JWT", "YEAR_JWT", "NOEXP_JWT"]);
    let out = at_now(&sb, &["doctor", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("doctor json", &out);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let soon = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "secret SOON_JWT")
        .unwrap();
    assert_eq!(soon["ok"], true);
    assert!(soon["detail"]
        .as_str()
        .unwrap()
        .starts_with("warning: expires on"));
    // A smaller window: nothing to say.
    let out = at_now(&sb, &["doctor", "--warn-within", "1d"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("ok   expiry and rotation: no secret expired, expiring within 1 day or due for rotation (2 of 3 with a known expiry)"),
        "{}",
        out.stdout
    );
}

#[test]
fn list_text_and_json() {
    let sb = Sandbox::new();
    scenario(&sb);
    let out = at_now(&sb, &["ls"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("list", &out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SECRET")
            && lines[0].contains("EXPIRES")
            && lines[0].ends_with("ROTATION"),
        "{}",
        out.stdout
    );
    let row = |name: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}:\n{}", out.stdout))
    };
    assert!(row("EXPIRED_JWT").contains("2026-12-08 (value: JWT exp) EXPIRED"));
    assert!(row("YEAR_JWT").contains("(value: JWT exp) in 365 days"));
    assert!(row("CERT").contains("2026-12-15 12:00 UTC (value: certificate) SOON"));
    assert!(row("HAND").contains("2026-12-12 (manifest) SOON"));
    assert!(
        row("OLD_PW").contains("2026-10-01")
            && row("OLD_PW").ends_with("every 30d, OVERDUE since 2026-10-31")
    );
    assert!(row("NEW_PW").ends_with("every 30d, due 2026-12-31"));
    assert!(row("NOEXP_JWT").contains("encrypted  app"));
    // No target was read: the file the targets name is still absent.
    assert!(!sb.path("app.env").exists());

    let out = at_now(&sb, &["list", "--format", "json"]);
    assert_clean("list json", &out);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (doc["kind"].as_str(), doc["format_version"].as_u64()),
        (Some("list"), Some(2))
    );
    let names: Vec<&str> = doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert_eq!(doc["secrets"][0]["targets"], json!(["app"]));
    assert!(doc["secrets"][0].get("previous_value_on").is_none());
}

#[test]
fn list_check_counts_targets_that_hold_a_previous_value() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["OLD_PW", "NEW_PW"]);
    assert_eq!(at_now(&sb, &["apply", "--auto-approve"]).code, 0);
    // Rotated in the manifest, not yet applied: app holds the old value.
    let out = at_now(&sb, &["rotate", "OLD_PW"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = at_now(&sb, &["list", "--check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("list --check", &out);
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    assert!(out.stdout.lines().next().unwrap().ends_with("OLD VALUE ON"));
    assert!(row("OLD_PW").ends_with("1 (app)"), "{}", out.stdout);
    assert!(row("NEW_PW").ends_with("none"), "{}", out.stdout);
    // The rotation recorded today's date: no longer due.
    assert!(row("OLD_PW").contains("2026-12-10"), "{}", out.stdout);
    let doc = at_now(&sb, &["list", "--check", "--format", "json"]);
    let doc: Value = serde_json::from_str(&doc.stdout).unwrap();
    assert_eq!(doc["secrets"][0]["previous_value_on"], json!(["app"]));
    assert_eq!(doc["secrets"][0]["rotation"]["overdue"], false);
}

fn get(sb: &Sandbox, key: &str) -> String {
    sb.run(&["get", key]).stdout
}

#[test]
fn rotate_due_rotates_only_what_is_due_and_secretsync_makes() {
    let sb = Sandbox::new();
    scenario(&sb);
    // An issued token that is also due: listed, not rotated.
    let text = sb.read("secrets.yaml").replacen(
        "  SOON_JWT:\n    targets: [app]\n",
        "  SOON_JWT:\n    targets: [app]\n    rotate_every: 7d\n    set_on: \"2026-11-01\"\n",
        1,
    );
    // OLD_PW is made by secretsync (#25: only such secrets are rotated).
    let text = text.replacen(
        "    rotate_every: 30d\n    set_on: \"2026-10-01\"\n",
        "    rotate_every: 30d\n    set_on: \"2026-10-01\"\n    generate: {chars: 31, alphabet: alnum}\n",
        1,
    );
    sb.write("secrets.yaml", &text);
    let before: Vec<(String, String)> = values()
        .iter()
        .map(|(n, _)| (n.to_string(), get(&sb, n)))
        .collect();
    let out = at_now(&sb, &["rotate", "--due"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("rotate --due", &out);
    assert!(
        out.stderr
            .contains("rotated 1 secret(s) due for rotation: OLD_PW (31 alnum characters)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("not rotated, 1 secret(s) without `generate:` (secretsync does not make them):\n  SOON_JWT: issued elsewhere: rotate it at its source, then `secretsync set SOON_JWT` (or `secretsync rotate SOON_JWT --from-command 'CMD'`)"),
        "{}",
        out.stderr
    );
    for (name, old) in before {
        let now = get(&sb, &name);
        if name == "OLD_PW" {
            assert_ne!(now, old);
            // The same shape: 31 characters of A-Z a-z 0-9.
            assert_eq!(now.len(), old.len());
            assert!(now.chars().all(|c| c.is_ascii_alphanumeric()));
        } else {
            assert_eq!(now, old, "{name} was not due");
        }
    }
    let m = sb.read("secrets.yaml");
    let old_pw = m.split("  OLD_PW:\n").nth(1).unwrap();
    assert!(old_pw.contains("    set_on: \"2026-12-10\"\n"), "{old_pw}");
    assert!(
        old_pw.contains("    previous:\n      - fingerprint: fp:"),
        "{old_pw}"
    );
    // Nothing is due any more that secretsync can make.
    let again = at_now(&sb, &["rotate", "--due"]);
    assert!(
        again.stderr.contains("rotated 0 secret(s)"),
        "{}",
        again.stderr
    );
    assert_eq!(sb.read("secrets.yaml"), m);
}

#[test]
fn rotate_from_command_takes_the_value_from_stdout() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["SOON_JWT"]);
    let new = jwt(json!({"sub": "CANARY-minted", "exp": NOW_SECS + 90 * DAY}));
    sb.write("mint.sh", &format!("printf '%s\\n' '{new}'\n"));
    let out = at_now(&sb, &["rotate", "SOON_JWT", "--from-command", "sh mint.sh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("rotate --from-command", &out);
    // One trailing newline removed.
    assert_eq!(get(&sb, "SOON_JWT"), new);
    assert!(
        out.stderr
            .contains("secret `SOON_JWT` replaced in secrets.yaml"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the new value is a JWT that expires on 2027-03-10 (in 90 days)"),
        "{}",
        out.stderr
    );
    let m = sb.read("secrets.yaml");
    assert!(m.contains("    set_on: \"2026-12-10\"\n"), "{m}");
    assert!(m.contains("    previous:\n      - fingerprint: fp:"), "{m}");
    assert!(!m.contains("CANARY"));
}

#[test]
fn rotate_from_command_removes_one_trailing_newline_only() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["NEW_PW"]);
    let out = at_now(
        &sb,
        &[
            "rotate",
            "NEW_PW",
            "--from-command",
            "printf 'CANARY-two\\n\\n'",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_clean("rotate --from-command", &out);
    assert_eq!(get(&sb, "NEW_PW"), "CANARY-two\n");
    let out = at_now(
        &sb,
        &["rotate", "NEW_PW", "--from-command", "printf 'CANARY-none'"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "NEW_PW"), "CANARY-none");
}

#[test]
fn rotate_from_command_refuses_empty_output_and_failures() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["NEW_PW"]);
    let before = sb.read("secrets.yaml");
    for (cmd, why) in [
        ("true", "printed nothing"),
        ("printf '\\n'", "printed nothing"),
        ("echo CANARY-partial; exit 3", "exited with status 3"),
        (
            "echo CANARY-on-stderr >&2; kill -9 $$",
            "was killed by a signal",
        ),
        (
            "printf 'CANARY-\\377\\n'",
            "printed something that is not UTF-8 text",
        ),
    ] {
        let out = at_now(&sb, &["rotate", "NEW_PW", "--from-command", cmd]);
        assert_eq!(out.code, 1, "{cmd}: {out:?}");
        assert!(
            out.stderr.contains(&format!(
                "error: the command given with --from-command {why}, so nothing was changed"
            )),
            "{cmd}: {}",
            out.stderr
        );
        // Its stdout is never shown (its stderr is the user's to see).
        assert!(!out.stdout.contains("CANARY"), "{cmd}: {out:?}");
        assert!(!out.stderr.contains("CANARY-partial"), "{cmd}: {out:?}");
        assert_eq!(sb.read("secrets.yaml"), before, "{cmd}");
    }
    // A plain setting is not a secret to mint, and nothing runs.
    let text = before.replacen(
        "  NEW_PW:\n",
        "  LOG:\n    targets: [app]\n    value: info\n  NEW_PW:\n",
        1,
    );
    sb.write("secrets.yaml", &text);
    let out = at_now(&sb, &["rotate", "LOG", "--from-command", "touch ran"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!sb.path("ran").exists());
}

#[test]
fn rotate_from_command_runs_without_the_identity_or_tokens() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["NEW_PW"]);
    let probe = "if [ -n \"$RAILWAY_TOKEN$SECRETSYNC_AGE_KEY$SOPS_AGE_KEY\" ]; then echo leaked; else echo clean; fi";
    let out = at(
        &sb,
        &["rotate", "NEW_PW", "--from-command", probe],
        &[
            ("RAILWAY_TOKEN", "CANARY-railway"),
            ("SECRETSYNC_AGE_KEY", "CANARY-age"),
            ("SOPS_AGE_KEY", "CANARY-sops"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(get(&sb, "NEW_PW"), "clean");
    // The command comes from the command line only: the manifest has no such field.
    let text = sb.read("secrets.yaml").replacen(
        "    rotate_every: 30d\n",
        "    rotate_every: 30d\n    from_command: touch pwned\n",
        1,
    );
    sb.write("secrets.yaml", &text);
    let out = at_now(&sb, &["rotate", "--due"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("unknown field `from_command`"),
        "{}",
        out.stderr
    );
    assert!(!sb.path("pwned").exists());
}

#[test]
fn set_and_import_record_the_date() {
    let sb = Sandbox::new();
    scenario_with(&sb, &["NEW_PW"]);
    let out = sb.run_stdin(
        &["set", "FRESH", "--stdin", "-t", "app"],
        &[("SECRETSYNC_NOW", "2026-12-24")],
        "CANARY-fresh\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    let m = sb.read("secrets.yaml");
    let fresh = m.split("  FRESH:\n").nth(1).unwrap();
    assert!(fresh.contains("    set_on: \"2026-12-24\"\n"), "{fresh}");
    sb.write("source.env", "IMPORTED=CANARY-imported\n");
    let text = sb.read("secrets.yaml").replacen(
        "\nsecrets:\n",
        "\n  source:\n    type: env_file\n    path: source.env\nsecrets:\n",
        1,
    );
    sb.write("secrets.yaml", &text);
    let out = at_now(&sb, &["import", "--from", "source", "IMPORTED"]);
    assert_eq!(out.code, 0, "{out:?}");
    let m = sb.read("secrets.yaml");
    let imported = m.split("  IMPORTED:\n").nth(1).unwrap();
    assert!(
        imported.contains("    set_on: \"2026-12-10\"\n"),
        "{imported}"
    );
}
