//! Hostile and broken input: the manifest loader never panics, never hangs,
//! and always explains; env files of arbitrary bytes, invalid UTF-8 and
//! symlinks, local and over SSH; huge values and enormous files end to end.
//! (The env-file parser and editor have their round-trip property tests in
//! src/envfile/tests.rs.)
//!
//! Property tests run a modest number of cases in CI; set PROPTEST_CASES to
//! run more: `PROPTEST_CASES=100000 cargo test --release --test hostile`.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use secretsync::manifest;

const VALID: &str = "version: 1\nrecipients: []\ntargets:\n  app:\n    type: env_file\n    path: app.env\n    prune: true\n  vps: { type: ssh_env, host: deploy@h, path: /etc/a.env, connect_timeout: 5s }\nsecrets:\n  A:\n    targets: [app, vps]\n    value: \"x\"\n    rename: { vps: B }\n";

fn parse(text: &str) -> Result<manifest::Manifest, String> {
    manifest::parse(Path::new("m.yaml"), text.to_string()).map_err(|e| e.to_string())
}

/// `ci` cases, or PROPTEST_CASES when set (a longer run).
fn cases(ci: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ci);
    ProptestConfig::with_cases(n)
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any text: a manifest or an error that names the file, never a panic.
    #[test]
    fn any_text_loads_or_explains(text in "\\PC*") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.contains("m.yaml"), "{}", e);
        }
    }

    /// A valid manifest with bytes deleted, inserted or replaced.
    #[test]
    fn mutated_manifests_load_or_explain(edits in prop::collection::vec((0usize..400, 0u8..3, prop::char::any()), 1..6)) {
        let mut text: Vec<char> = VALID.chars().collect();
        for (at, kind, c) in edits {
            let i = at % (text.len() + 1);
            match kind {
                0 if i < text.len() => { text.remove(i); }
                1 => text.insert(i, c),
                _ if i < text.len() => text[i] = c,
                _ => {}
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = parse(&text) {
            prop_assert!(e.contains("m.yaml"), "{}", e);
        }
    }
}

#[test]
fn the_base_of_the_mutations_is_valid() {
    let m = parse(VALID).unwrap();
    assert_eq!(m.secrets["A"].key_on("vps"), "B");
}

fn quick(text: String) -> String {
    let t = Instant::now();
    let e = parse(&text).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    e
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let e = quick(format!(
        "version: 1\nsecrets:\n  A:\n    targets: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    ));
    assert!(e.contains("m.yaml:4:"), "{e}");
    let mut block = String::from("version: 1\nsecrets:\n");
    for i in 0..3000 {
        block.push_str(&format!("{}- k{i}:\n", " ".repeat(2 + 2 * i)));
    }
    quick(block);
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let mut text = String::from("version: 1\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n");
    for i in 1..12 {
        text.push_str(&format!(
            "x{i}: &x{i} [*x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}]\n",
            p = i - 1
        ));
    }
    text.push_str("targets: {}\nsecrets:\n  A:\n    targets: *x11\n    value: v\n");
    let e = quick(text);
    assert!(
        e.starts_with("unknown field `x0`") || e.contains("alias"),
        "{e}"
    );
    // Aliases inside a field that takes a list: bounded too.
    let bomb = "version: 1\ntargets:\n  t: { type: env_file, path: p }\n  u: { type: env_file, path: q }\nsecrets:\n  A:\n    targets: &l [t, u]\n    value: v\n  B:\n    targets: *l\n    value: w\n    rename: { t: B2, u: B2 }\n";
    parse(bomb).unwrap();
    let twice = parse("version: 1\ntargets:\n  t: { type: env_file, path: p }\nsecrets:\n  A:\n    targets: [t, t]\n    value: v\n").unwrap_err();
    assert!(
        twice.starts_with("secret `A` lists target `t` twice\n  --> m.yaml:6:18"),
        "{twice}"
    );
}

#[test]
fn binary_junk_invalid_utf8_and_huge_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("secrets.yaml");
    std::fs::write(&p, b"version: 1\ntargets:\n  t: \xff\xfe\x00junk\n").unwrap();
    let e = manifest::load(&p).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("the manifest is not UTF-8 text\n  --> {}:3:6\n  hint: save it as UTF-8; binary values belong in `encrypted` (as text)", p.display())
    );
    std::fs::write(&p, [0u8, 1, 2, 3, 0, 0xC0, 0x80]).unwrap();
    assert!(manifest::load(&p).is_err());
    std::fs::write(&p, "\0\0\0version: 1").unwrap();
    assert!(manifest::load(&p)
        .unwrap_err()
        .to_string()
        .contains("secrets.yaml"));

    let f = std::fs::File::create(&p).unwrap();
    f.set_len(manifest::MAX_BYTES + 1).unwrap();
    let t = Instant::now();
    let e = manifest::load(&p).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(
        e,
        format!(
            "cannot read the manifest {}: it is 16.0 MiB (16777217 bytes); a manifest is at most 16 MiB (16777216 bytes)",
            p.display()
        )
    );
    // 16.1 MiB says 16.1, not 16 (#17).
    f.set_len(manifest::MAX_BYTES + (1 << 20) / 10 + 1).unwrap();
    let e = manifest::load(&p).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "it is 16.1 MiB (16882074 bytes); a manifest is at most 16 MiB (16777216 bytes)"
        ),
        "{e}"
    );
}

#[test]
fn a_huge_value_loads() {
    let big = "v".repeat(4 << 20);
    let m = parse(&format!("version: 1\ntargets:\n  t: {{ type: env_file, path: p }}\nsecrets:\n  A:\n    targets: [t]\n    value: {big}\n")).unwrap();
    assert!(matches!(&m.secrets["A"].value, manifest::ValueSource::Plain(v) if v.len() == 4 << 20));
}

#[test]
fn the_manifest_is_read_through_a_symlink_and_a_directory_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("real.yaml"), VALID).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.yaml"), dir.path().join("link.yaml")).unwrap();
    assert!(manifest::load(&dir.path().join("link.yaml")).is_ok());
    let e = manifest::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cannot read the manifest {}: ",
            dir.path().display()
        )),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Env files: arbitrary bytes, invalid UTF-8, symlinks (local and over SSH),
// huge values and enormous files, through the real binary.

use secretsync::envfile;
use secretsync::targets::envfile_target;
use support::cli::{assert_no_canary, Sandbox};
use support::sshd::Sshd;

proptest! {
    #![proptest_config(cases(256))]

    /// Any bytes as an env file: its entries, or an error that names the
    /// file; never a panic, and never the bytes in the message.
    #[test]
    fn any_bytes_as_an_env_file_read_or_explain(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        match envfile_target::observe("/x/app.env", Some(&bytes)) {
            Ok(obs) => {
                let text = std::str::from_utf8(&bytes).unwrap();
                let snapshot = obs.snapshot().cloned().unwrap();
                prop_assert_eq!(snapshot.expose(), text);
            }
            Err(e) => {
                prop_assert!(e.message.contains("/x/app.env"), "{}", e);
            }
        }
    }

    /// Env-like text with junk bytes spliced in: the same.
    #[test]
    fn env_text_with_junk_reads_or_explains(
        lines in prop::collection::vec("[A-Z]{1,3}=(\"[a-z $]{0,5}\"|'[a-z]{0,4}'|[a-z0-9]{0,5})", 0..8),
        junk in prop::collection::vec((0usize..200, any::<u8>()), 0..4),
    ) {
        let mut bytes = lines.join("\n").into_bytes();
        for (at, b) in junk {
            let i = at % (bytes.len() + 1);
            bytes.insert(i, b);
        }
        if let Err(e) = envfile_target::observe("/x/app.env", Some(&bytes)) {
            prop_assert!(e.message.contains("/x/app.env:"), "{}", e);
        }
    }
}

fn one_secret(sb: &Sandbox, target: &str, value: &str) -> String {
    format!(
        "{}targets:\n{target}secrets:\n  A:\n    targets: [t]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted(value, 6)
    )
}

fn ssh_target(sshd: &Sshd, path: &Path) -> String {
    format!(
        "  t:\n    type: ssh_env\n{}    path: {}\n",
        sshd.yaml("root", 4),
        path.display()
    )
}

#[test]
fn invalid_utf8_in_an_env_file_over_ssh_names_the_line() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, b"A=1\nB=CANARY-junk\xff\xfe\x00\n").unwrap();
    sb.write(
        "secrets.yaml",
        &one_secret(&sb, &ssh_target(&sshd, &file), "CANARY-utf8-value"),
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!(
            "error: ssh://root@127.0.0.1:{}{}:2: the file is not valid UTF-8\n    hint: env files are text: re-save it as UTF-8\n",
            sshd.port,
            file.display()
        )),
        "{}",
        plan.stdout
    );
    assert_no_canary("plan", plan.all().as_bytes(), &["CANARY"]);
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"A=1\nB=CANARY-junk\xff\xfe\x00\n",
        "left alone"
    );
}

#[test]
fn symlinked_env_files_over_ssh_are_written_through_and_dangling_ones_refused() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let real = dir.path().join("real/app.env");
    std::fs::write(&real, "# kept\nA=old\n").unwrap();
    let link = dir.path().join("app.env");
    std::os::unix::fs::symlink("real/app.env", &link).unwrap();
    sb.write(
        "secrets.yaml",
        &one_secret(&sb, &ssh_target(&sshd, &link), "CANARY-through-link"),
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "# kept\nA=CANARY-through-link\n"
    );
    assert_eq!(sb.run(&["plan", "--detailed-exitcode"]).code, 0);

    let dangling = dir.path().join("dangling.env");
    std::os::unix::fs::symlink("nowhere/app.env", &dangling).unwrap();
    sb.write(
        "secrets.yaml",
        &one_secret(&sb, &ssh_target(&sshd, &dangling), "CANARY-through-link"),
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply.stdout.contains(&format!(
            "{} is a symlink to a missing file",
            dangling.display()
        )),
        "{}",
        apply.stdout
    );
    assert!(!dir.path().join("nowhere").exists(), "nothing was created");
    assert_no_canary("apply", apply.all().as_bytes(), &["CANARY"]);
}

/// A 10 MB value through a local env file and an env file over SSH: written,
/// read back, in sync afterwards, `get` gives it whole, nothing printed.
#[test]
fn a_10_mb_value_reaches_local_and_remote_env_files() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("app.env");
    // Printable, varied, and with the characters a file must escape.
    let value: String = (0..10_000_000usize)
        .map(|i| match i % 97 {
            0 => '"',
            1 => '$',
            2 => '\\',
            3 => ' ',
            n => (b'a' + (n % 26) as u8) as char,
        })
        .collect();
    let value = format!("CANARY{value}");
    let target = format!(
        "  local: {{ type: env_file, path: local.env }}\n{}",
        ssh_target(&sshd, &remote)
    );
    let manifest = format!(
        "{}targets:\n{target}secrets:\n  A:\n    targets: [local, t]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted(&value, 6)
    );
    assert!(manifest.len() < manifest::MAX_BYTES as usize);
    sb.write("secrets.yaml", &manifest);
    let t = Instant::now();
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert!(apply.all().len() < 4096, "no value printed");
    assert_no_canary("apply", apply.all().as_bytes(), &["CANARY"]);
    for text in [
        sb.read("local.env"),
        std::fs::read_to_string(&remote).unwrap(),
    ] {
        let doc = envfile::EnvFile::parse(&text).unwrap();
        assert!(doc.entries()["A"].expose() == value, "the value is whole");
    }
    assert_eq!(sb.run(&["plan", "--detailed-exitcode"]).code, 0);
    let got = sb.run(&["get", "A"]);
    assert!(got.stdout == value, "get gives the value whole");
    eprintln!("10 MB value: apply, plan and get in {:?}", t.elapsed());
}

/// An enormous env file (200,000 lines, 8 MB): planned and edited in place,
/// every other line kept.
#[test]
fn an_enormous_env_file_is_planned_and_edited() {
    let sb = Sandbox::new();
    let mut big = String::with_capacity(9 << 20);
    for i in 0..200_000 {
        big.push_str(&format!("KEY_{i}=\"value-{i}-padding-padding\"\n"));
    }
    sb.write("big.env", &big);
    sb.write(
        "secrets.yaml",
        &one_secret(
            &sb,
            "  t: { type: env_file, path: big.env }\n",
            "CANARY-big",
        ),
    );
    let t = Instant::now();
    let plan = sb.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.stdout.contains("1 to add"), "{}", plan.stdout);
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert_eq!(sb.read("big.env"), format!("{big}A=CANARY-big\n"));
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
    eprintln!("200,000-line env file: plan and apply in {:?}", t.elapsed());
}
