//! Issue #15 through the real binary: plain values are the text written,
//! a value a target cannot hold is refused when it comes in (or, for an env
//! file's format, at plan time with the readers named), and import reads
//! real files (BOM, CRLF, keys that are not names, duplicates).

use crate::support;

use support::cli::{assert_no_canary, Sandbox};

fn manifest(sb: &Sandbox, targets: &str, secrets: &str) -> String {
    if secrets.is_empty() {
        return format!("{}targets:\n{targets}secrets: {{}}\n", sb.header());
    }
    format!("{}targets:\n{targets}secrets:\n{secrets}", sb.header())
}

const APP: &str = "  app:\n    type: env_file\n    path: app.env\n";

#[test]
fn plain_look_alikes_reach_the_file_as_written() {
    let sb = Sandbox::new();
    let looks = [
        ("OCTAL", "0123"),
        ("FLOAT", "1.10"),
        ("BOOL", "yes"),
        ("HEX", "0x1F"),
        ("EXP", "1e3"),
        ("SIGN", "+1"),
        ("DATE", "2026-01-01"),
        ("INF", ".inf"),
    ];
    let secrets: String = looks
        .iter()
        .map(|(k, v)| format!("  {k}:\n    targets: [app]\n    value: {v}\n"))
        .collect();
    sb.write("secrets.yaml", &manifest(&sb, APP, &secrets));
    let out = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = sb.read("app.env");
    for (k, v) in looks {
        assert!(text.contains(&format!("{k}={v}\n")), "{k}: {text}");
    }
}

#[test]
fn a_null_value_is_refused_with_quote_it() {
    let sb = Sandbox::new();
    let secrets = "  A:\n    targets: [app]\n    value: ~\n";
    sb.write("secrets.yaml", &manifest(&sb, APP, secrets));
    let out = sb.run(&["plan"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("quote it"), "{}", out.stderr);
    assert!(out.stderr.contains("secrets.yaml:"), "{}", out.stderr);
}

#[test]
fn plan_refuses_a_value_the_format_cannot_hold_and_writes_nothing() {
    let sb = Sandbox::new();
    let canary = "it's $CANARY-format";
    let secrets = format!(
        "  A:\n    targets: [app]\n    encrypted: |\n{}",
        sb.encrypted(canary, 6)
    );
    sb.write("secrets.yaml", &manifest(&sb, APP, &secrets));
    let out = sb.run(&["apply", "--auto-approve"]);
    assert_ne!(out.code, 0, "{out:?}");
    let all = out.all();
    assert!(all.contains("`A`"), "{all}");
    assert!(all.contains("`format: dotenv`"), "{all}");
    assert!(all.contains("node's dotenv"), "{all}");
    assert!(all.contains("`shell`"), "{all}");
    assert_no_canary("plan", all.as_bytes(), &["CANARY-format"]);
    assert!(!sb.path("app.env").exists(), "nothing is written");

    // The format that names the reader holds it.
    let shell = "  app:\n    type: env_file\n    path: app.env\n    format: shell\n";
    sb.write("secrets.yaml", &manifest(&sb, shell, &secrets));
    let out = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sb.read("app.env"), "A=\"it's \\$CANARY-format\"\n");
}

fn set_stdin(sb: &Sandbox, args: &[&str], value: &str) -> support::cli::Out {
    sb.run_stdin(args, &[], value)
}

#[test]
fn set_refuses_at_input_time_a_value_a_target_cannot_hold() {
    let sb = Sandbox::new();
    let targets = format!("{APP}  kc:\n    type: keychain\n    service: test\n");
    sb.write("secrets.yaml", &manifest(&sb, &targets, ""));
    let before = sb.read("secrets.yaml");

    // A CR: env files cannot hold it.
    let out = set_stdin(
        &sb,
        &["set", "K", "--stdin", "--target", "app"],
        "CANARY-cr\rvalue",
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("app:"), "{}", out.stderr);
    assert!(out.stderr.contains("carriage return"), "{}", out.stderr);
    assert_no_canary("set", out.all().as_bytes(), &["CANARY-cr"]);
    assert_eq!(sb.read("secrets.yaml"), before);

    // A newline: the env file holds it, the keychain does not.
    let out = set_stdin(
        &sb,
        &["set", "K", "--stdin", "--target", "app", "--target", "kc"],
        "CANARY-nl\nvalue",
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("kc:"), "{}", out.stderr);
    assert!(!out.stderr.contains("app:"), "{}", out.stderr);
    assert_no_canary("set", out.all().as_bytes(), &["CANARY-nl"]);
    assert_eq!(sb.read("secrets.yaml"), before);

    // Held by both: stored.
    let out = set_stdin(
        &sb,
        &["set", "K", "--stdin", "--target", "app", "--target", "kc"],
        "fine value",
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn import_reads_a_bom_crlf_keys_that_are_not_names_and_duplicates() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &manifest(&sb, APP, ""));
    let file = "\u{feff}FIRST=one\r\nsome.key=dotted\r\nA-B=dashed\r\n1ST=digit\r\nDUP=old\r\nOTHER=x\r\nDUP=new\r\n";
    sb.write("app.env", file);
    let out = sb.run(&["import", "--from", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
    for (line, key) in [(2, "some.key"), (3, "A-B"), (4, "1ST")] {
        assert!(
            out.stderr
                .contains(&format!("line {line}: `{key}` is not a variable name")),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("`DUP` is defined on lines 5 and 7; readers disagree which wins"),
        "{}",
        out.stderr
    );
    let m = sb.read("secrets.yaml");
    assert!(
        m.contains("  FIRST:") && m.contains("  OTHER:") && m.contains("  DUP:"),
        "{m}"
    );
    assert!(!m.contains("some.key") && !m.contains("A-B"), "{m}");

    // FIRST got the BOM-free name; plan notes the duplicate and apply
    // leaves one definition, keeping the BOM, CRLF and the other keys.
    let out = sb.run(&["plan"]);
    assert!(out.stdout.contains("note:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("`DUP` is defined on lines 5 and 7"),
        "{}",
        out.stdout
    );
    let out = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = sb.read("app.env");
    assert!(text.starts_with('\u{feff}'), "{text:?}");
    assert_eq!(text.matches("DUP=").count(), 1, "{text:?}");
    assert!(
        text.contains("some.key=dotted\r\nA-B=dashed\r\n1ST=digit\r\n"),
        "{text:?}"
    );
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains("is defined on lines"),
        "{}",
        out.stdout
    );
}
