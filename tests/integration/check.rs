//! `secretsync check` through the real binary: no identity, nothing
//! contacted; schema, age headers and recipient counts, plain values that
//! look like secrets; exit codes; no value in any output.

use crate::support;

use std::net::TcpListener;

use serde_json::Value;
use support::cli::{assert_no_canary, run, secretsync_cmd, Out, Sandbox};

const CANARIES: &[&str] = &[
    "CANARY-check-value-1a2b",
    "CANARY-fingerprint-3c4d",
    "CANARYghpTokenBody0123456789abcdefXYZ",
];

/// `secretsync check ARGS` with no identity anywhere (no --identity, no
/// SECRETSYNC_/SOPS_ variables, HOME without keys.txt).
fn check(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Out {
    assert!(!sb.path(".config/sops/age/keys.txt").exists());
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.arg("check").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd);
    assert_no_canary(&format!("check {args:?}"), out.all().as_bytes(), CANARIES);
    out
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// A second recipient, whose key nobody here holds.
fn other_recipient() -> secretsync::crypto::Recipient {
    secretsync::crypto::Recipient::X25519(age::x25519::Identity::generate().to_public())
}

/// A valid manifest: the sandbox's recipient, an encrypted value, plain
/// settings, and targets that fail if anything touches them.
fn valid(sb: &Sandbox) -> String {
    format!(
        "{}targets:\n  app: {{ type: env_file, path: missing-dir/app.env, create: false }}\n  api: {{ type: railway, project: p1, environment: production, service: api }}\n  vps: {{ type: ssh_env, host: deploy@192.0.2.1, path: /etc/app.env, connect_timeout: 30s }}\nsecrets:\n  DB_PASSWORD:\n    targets: [app, api, vps]\n    encrypted: |\n{}  LOG_LEVEL:\n    targets: [app]\n    value: info\n  RAILWAY_PROJECT:\n    targets: [app]\n    value: 550e8400-e29b-41d4-a716-446655440000\n",
        sb.header(),
        sb.encrypted("CANARY-check-value-1a2b", 6)
    )
}

#[test]
fn a_valid_manifest_checks_without_an_identity_and_contacts_nothing() {
    let sb = Sandbox::new();
    std::fs::remove_file(&sb.identity).unwrap();
    sb.write("secrets.yaml", &valid(&sb));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}/graphql/v2", listener.local_addr().unwrap());
    let env = [
        ("SECRETSYNC_RAILWAY_ENDPOINT", endpoint.as_str()),
        ("RAILWAY_API_TOKEN", "not-a-token"),
    ];

    let out = check(&sb, &[], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "Check: 0 errors, 0 warnings (3 secrets, 1 encrypted, 1 recipient).\n"
    );
    let out = check(&sb, &["--detailed-exitcode", "--format", "json"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["kind"], "check");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["findings"], serde_json::json!([]));
    assert_eq!(doc["encrypted"], 1);

    assert!(
        listener.accept().is_err(),
        "check connected to the Railway endpoint"
    );
    assert!(!sb.path("missing-dir").exists());
    // A plan of the same manifest does need an identity: check is the one
    // that does not.
    let plan = run({
        let mut c = secretsync_cmd(sb.dir.path());
        c.arg("plan");
        c
    });
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(plan.stderr.contains("no age identity found"), "{plan:?}");
}

#[test]
fn bad_armor_is_an_error_at_its_line() {
    let sb = Sandbox::new();
    let text = valid(&sb);
    // Break a base64 line in the middle of DB_PASSWORD's armor.
    let start = text.find("  DB_PASSWORD:").unwrap();
    let line_start = text[start..].find("      -----BEGIN").unwrap() + start;
    let body = text[line_start..].find('\n').unwrap() + line_start + 1;
    let mut broken = text.clone();
    broken.replace_range(body + 6..body + 10, "!!!!");
    sb.write("secrets.yaml", &broken);
    let out = check(&sb, &[], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    // A block scalar's place is its first line: the armor's BEGIN.
    let line = broken[..line_start].lines().count() + 1;
    assert!(
        out.stdout.contains(&format!(
            "secrets.yaml:{line}:7: error: secret `DB_PASSWORD`: the armor does not decode"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Check: 1 error, 0 warnings"),
        "{}",
        out.stdout
    );

    // Armor whose content is not an age file.
    let not_age = text.replace(
        "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUx",
        "bm90IGFuIGFnZSBmaWxlIGF0IGFsbCwganVzdCB0",
    );
    assert_ne!(not_age, text);
    sb.write("secrets.yaml", &not_age);
    let out = check(&sb, &["--format", "json"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["errors"], 2, "{doc:#}");
    assert!(
        doc["findings"][1]["message"]
            .as_str()
            .unwrap()
            .starts_with("secret `DB_PASSWORD`: the age header does not parse"),
        "{doc:#}"
    );
}

#[test]
fn too_few_or_other_recipients_are_errors() {
    let sb = Sandbox::new();
    let two = format!(
        "recipients:\n  - {}\n  - {}\n",
        sb.recipient,
        other_recipient()
    );
    let text = valid(&sb).replacen(&format!("recipients:\n  - {}\n", sb.recipient), &two, 1);
    sb.write("secrets.yaml", &text);
    let out = check(&sb, &["--format", "json"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc = json(&out);
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{doc:#}");
    let fk = &findings[0];
    assert_eq!(fk["secret"], "fingerprint_key");
    assert_eq!(fk["line"], 6, "the armor's first line");
    assert_eq!(
        fk["message"],
        "fingerprint_key: it is encrypted to 1 recipient but the manifest lists 2 recipients"
    );
    assert!(fk["hint"].as_str().unwrap().contains("secretsync rekey"));
    let db = &findings[1];
    assert_eq!(db["level"], "error");
    assert_eq!(db["secret"], "DB_PASSWORD");
    assert_eq!(
        db["message"],
        "secret `DB_PASSWORD`: it is encrypted to 1 recipient but the manifest lists 2 recipients"
    );

    // As many stanzas, but of another kind: the manifest lists an SSH key,
    // the values are encrypted to an age key.
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
    let text = valid(&sb).replacen(
        &format!("recipients:\n  - {}\n", sb.recipient),
        &format!("recipients:\n  - {ssh}\n"),
        1,
    );
    sb.write("secrets.yaml", &text);
    let out = check(&sb, &[], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("its recipients are not the manifest's: 1 age and 0 SSH, where the manifest lists 0 age and 1 SSH"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_secret_looking_plain_value_is_a_warning_at_its_line() {
    let sb = Sandbox::new();
    let text = valid(&sb).replace(
        "    value: info\n",
        "    value: ghp_CANARYghpTokenBody0123456789abcdefXYZ\n",
    );
    sb.write("secrets.yaml", &text);
    let line = text.lines().position(|l| l.contains("ghp_")).unwrap() + 1;
    let out = check(&sb, &[], &[]);
    assert_eq!(out.code, 0, "a warning is not an error: {out:?}");
    assert!(
        out.stdout.contains(&format!(
            "secrets.yaml:{line}:12: warning: secret `LOG_LEVEL` has a plain `value` that looks like a secret (GitHub token prefix `ghp_`)\n  hint: encrypt it with `secretsync set LOG_LEVEL --encrypt`"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("Check: 0 errors, 1 warning (3 secrets, 1 encrypted, 1 recipient).\n"),
        "{}",
        out.stdout
    );

    let out = check(&sb, &["--detailed-exitcode", "--format", "json"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["warnings"], 1);
    assert_eq!(doc["findings"][0]["level"], "warning");
    assert_eq!(doc["findings"][0]["line"], line);

    let out = check(&sb, &["--format", "markdown"], &[]);
    assert!(out.stdout.contains("| `secrets.yaml:"), "{}", out.stdout);
    assert!(out.stdout.contains("⚠️ warning"), "{}", out.stdout);

    // Marked as not secret on its line: no finding.
    sb.write(
        "secrets.yaml",
        &text.replace("abcdefXYZ\n", "abcdefXYZ  # secretsync: not-secret\n"),
    );
    let out = check(&sb, &["--detailed-exitcode"], &[]);
    assert_eq!(out.code, 0, "{out:?}");

    // Other kinds, one per run.
    for value in [
        "sk_live_CANARY0123456789abcdefXYZ",
        "\"-----BEGIN PRIVATE KEY-----\\nCANARYabc\\n\"",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDQU5BUlkifQ.c2lnbmF0dXJlLWNhbmFyeQ",
        "postgres://app:CANARYpw@db:5432/app",
        "Zx8q2LmN4pR7sT1vW3yB5dF6gH9jK0cA",
    ] {
        sb.write(
            "secrets.yaml",
            &valid(&sb).replace("    value: info\n", &format!("    value: {value}\n")),
        );
        let out = check(&sb, &["--detailed-exitcode"], &[]);
        assert_eq!(out.code, 2, "{value}: {out:?}");
        assert!(!out.all().contains("CANARY"), "{value}: {out:?}");
        assert!(!out.all().contains("Zx8q2LmN"), "{value}: {out:?}");
    }
}

#[test]
fn schema_errors_are_errors_with_their_place() {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &valid(&sb).replace("    value: info\n", "    value: info\n    colour: red\n"),
    );
    let out = check(&sb, &[], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.starts_with("error: unknown field `colour`"),
        "{}",
        out.stdout
    );
    let out = check(&sb, &["--format", "json"], &[]);
    let doc = json(&out);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["findings"][0]["level"], "error");
    assert!(doc["findings"][0]["line"].as_u64().unwrap() > 0, "{doc:#}");

    let out = check(&sb, &["-f", "nope.yaml"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("cannot read the manifest nope.yaml"),
        "{}",
        out.stdout
    );
}
