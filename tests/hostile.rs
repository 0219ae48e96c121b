//! Hostile and broken input: the manifest loader never panics, never hangs,
//! and always explains. (The env-file parser has its own property tests in
//! src/target/env_file.rs.)

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use secretsync::manifest;

const VALID: &str = "version: 1\nrecipients: []\ntargets:\n  app:\n    type: env_file\n    path: app.env\n    prune: true\n  vps: { type: ssh_env, host: deploy@h, path: /etc/a.env, connect_timeout: 5s }\nsecrets:\n  A:\n    targets: [app, vps]\n    value: \"x\"\n    rename: { vps: B }\n";

fn parse(text: &str) -> Result<manifest::Manifest, String> {
    manifest::parse(Path::new("m.yaml"), text.to_string()).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

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
            "cannot read the manifest {}: it is 16 MiB; a manifest is at most 16 MiB",
            p.display()
        )
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
