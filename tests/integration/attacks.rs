//! The attacks of #23 outside review mode, through the real binary: target
//! paths that are FIFOs, devices, huge files or links another user planted
//! (locally and over the real sshd); ssh file fields that ssh would expand;
//! manifest strings that would drive a terminal or the Actions runner; age
//! headers with thousands of stanzas; format refusals that described the
//! value. Every run is bounded (time and memory): the failures on main were
//! hangs and memory exhaustion.

use crate::support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use support::cli::{assert_no_canary, secretsync_cmd, Out, Sandbox};
use support::sshd::{ensure_user, is_root, Sshd};

const CANARY: &str = "CANARY-target-file-5b7c";
const TOKEN: &str = "CANARY-runner-token-8e2a";

/// A manifest with `targets` (name, YAML fields at indent 4) and one secret
/// `TOKEN` on all of them.
fn manifest(sb: &Sandbox, targets: &[(&str, String)]) {
    let mut m = sb.header();
    m.push_str("targets:\n");
    for (name, fields) in targets {
        m.push_str(&format!("  {name}:\n{fields}"));
    }
    let names: Vec<&str> = targets.iter().map(|t| t.0).collect();
    m.push_str(&format!(
        "secrets:\n  TOKEN:\n    targets: [{}]\n    encrypted: |\n{}",
        names.join(", "),
        sb.encrypted(CANARY, 6)
    ));
    sb.write("secrets.yaml", &m);
}

fn env_file(path: &Path) -> String {
    format!("    type: env_file\n    path: {}\n", path.display())
}

fn ssh_env(sshd: &Sshd, path: &Path) -> String {
    format!(
        "    type: ssh_env\n{}    path: {}\n",
        sshd.yaml("root", 4),
        path.display()
    )
}

/// The binary with at most 40 s and 2 GB of address space, stdin a pipe
/// that stays open (as a CI runner's may): a hang, an endless read or a
/// runaway allocation fails the test instead of the machine.
fn bounded(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Out {
    let inner = secretsync_cmd(sb.path("").as_path());
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "40", "prlimit", "--as=2000000000", "--"])
        .arg(inner.get_program())
        .args(args)
        .arg("--identity")
        .arg(&sb.identity)
        .current_dir(sb.path(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let _open_stdin = child.stdin.take();
    let o = child.wait_with_output().unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert_ne!(out.code, 124, "secretsync {args:?} hung: {out:?}");
    assert_no_canary(&format!("{args:?}"), out.all().as_bytes(), &[CANARY, TOKEN]);
    out
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A character device of our own (a null device), where root may make one.
fn mknod_null(path: &Path) -> bool {
    is_root()
        && Command::new("mknod")
            .arg(path)
            .args(["c", "1", "3"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Finding 7: a FIFO at a target path hung plan, apply and doctor with no
/// output, and blocked every other target; `/dev/stdin` hung too.
#[test]
fn a_fifo_at_a_target_path_is_refused_and_the_other_targets_go_on() {
    let sb = Sandbox::new();
    let fifo = sb.path("fifo.env");
    mkfifo(&fifo);
    let ok = sb.path("ok.env");
    std::fs::write(&ok, "").unwrap();
    manifest(
        &sb,
        &[
            ("pipe", env_file(&fifo)),
            ("stdin", env_file(Path::new("/dev/stdin"))),
            ("ok", env_file(&ok)),
        ],
    );
    for args in [&["plan"][..], &["doctor"], &["apply", "--auto-approve"]] {
        let out = bounded(&sb, args, &[]);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.all().contains("fifo.env is a FIFO, not a regular file"),
            "{args:?}: {out:?}"
        );
        assert!(
            out.all()
                .contains("/dev/stdin is a FIFO, not a regular file"),
            "{args:?}: {out:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&ok).unwrap(),
        format!("TOKEN={CANARY}\n")
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn a_fifo_at_a_remote_target_path_is_refused() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.env");
    mkfifo(&fifo);
    manifest(&sb, &[("vps", ssh_env(&sshd, &fifo))]);
    for args in [&["plan"][..], &["doctor"], &["apply", "--auto-approve"]] {
        let out = bounded(&sb, args, &[]);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.all().contains("fifo.env is not a regular file"),
            "{args:?}: {out:?}"
        );
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Finding 8: `/dev/zero` (or a link to it) was read until memory ran out;
/// an env file over 16 MiB is refused before it is read whole.
#[test]
fn an_endless_or_huge_file_is_refused_with_a_size_cap() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let link = sb.path("zero.env");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let huge = sb.path("huge.env");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(16 * 1024 * 1024 + 1)
        .unwrap();
    manifest(
        &sb,
        &[
            ("zero", env_file(Path::new("/dev/zero"))),
            ("linked", env_file(&link)),
            ("huge", env_file(&huge)),
            ("remote_zero", ssh_env(&sshd, Path::new("/dev/zero"))),
            ("remote_huge", ssh_env(&sshd, &huge)),
        ],
    );
    let out = bounded(&sb, &["plan"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    for line in [
        "/dev/zero is a character device, not a regular file",
        "zero.env is a character device, not a regular file",
        "huge.env is 16777217 bytes, more than the 16 MiB an env file may have",
        // The remote one, as `ssh://user@host:PORT/dev/zero` (#25).
        "/dev/zero is not a regular file (a FIFO, device or socket)",
        "huge.env is more than the 16 MiB an env file may have",
    ] {
        assert!(out.all().contains(line), "{line:?} in {out:?}");
    }
}

/// Finding 9: a character device at the path was replaced by a regular
/// file holding the secrets (locally, through a symlink, over SSH) and
/// reported applied.
#[test]
fn a_device_at_a_target_path_is_never_replaced() {
    let sb = Sandbox::new();
    let dev = sb.path("dev.env");
    if !mknod_null(&dev) {
        eprintln!("skipped: cannot make a device node here");
        return;
    }
    let link = sb.path("link.env");
    std::os::unix::fs::symlink(&dev, &link).unwrap();
    let sshd = Sshd::start();
    manifest(
        &sb,
        &[
            ("dev", env_file(&dev)),
            ("link", env_file(&link)),
            ("remote", ssh_env(&sshd, &dev)),
        ],
    );
    let out = bounded(&sb, &["apply", "--auto-approve"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all()
            .contains("Apply: 0 targets applied and verified, 0 in sync, 3 failed."),
        "{out:?}"
    );
    assert!(
        out.all()
            .contains("dev.env is a character device, not a regular file"),
        "{out:?}"
    );
    assert!(
        out.all().contains("dev.env is not a regular file"),
        "{out:?}"
    );
    let meta = std::fs::symlink_metadata(&dev).unwrap();
    assert!(meta.file_type().is_char_device(), "{meta:?}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

fn uid_of(user: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let o = Command::new("id").args([flag, user]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// Finding 10: a local user who can write the target's folder points the
/// target at a third user's 0644 file before root's apply: the secrets
/// landed there, world-readable. A link is followed only when owned by us,
/// root or the file's owner.
#[test]
fn a_symlink_planted_by_another_user_is_not_followed() {
    if !is_root() {
        eprintln!("skipped: needs root to make the users");
        return;
    }
    ensure_user("ss-alice", false);
    ensure_user("ss-bob", false);
    let (alice, alice_g) = uid_of("ss-alice");
    let (bob, bob_g) = uid_of("ss-bob");
    let bobs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bobs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let notes = bobs.path().join("notes.txt");
    std::fs::write(&notes, "NOTES=bob\n").unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&notes, Some(bob), Some(bob_g)).unwrap();

    let sb = Sandbox::new();
    let local = sb.path("app.env");
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("app.env");
    for link in [&local, &remote] {
        std::os::unix::fs::symlink(&notes, link).unwrap();
        std::os::unix::fs::lchown(link, Some(alice), Some(alice_g)).unwrap();
    }
    let sshd = Sshd::start();
    manifest(
        &sb,
        &[
            ("local", env_file(&local)),
            ("remote", ssh_env(&sshd, &remote)),
        ],
    );
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = bounded(&sb, args, &[]);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.all().contains(&format!(
                "app.env is a symlink owned by uid {alice} to a file owned by uid {bob}"
            )),
            "{args:?}: {out:?}"
        );
        assert!(
            out.all()
                .contains("app.env is a symlink owned by another user"),
            "{args:?}: {out:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "NOTES=bob\n");
    assert_eq!(std::fs::metadata(&notes).unwrap().uid(), bob);

    // A link root owns is followed, as before.
    std::fs::remove_file(&local).unwrap();
    let mine = sb.path("mine.env");
    std::fs::write(&mine, "").unwrap();
    std::os::unix::fs::symlink(&mine, &local).unwrap();
    manifest(&sb, &[("local", env_file(&local))]);
    let out = bounded(&sb, &["apply", "--auto-approve"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        format!("TOKEN={CANARY}\n")
    );
}

/// Finding 5: ssh expands `${VAR}`, `%` tokens and `~user` in its file
/// options: `known_hosts_file: "/x/${GITHUB_TOKEN}"` put the runner's token
/// in an error message, and `%d/.bashrc` with accept-new appended to it.
#[test]
fn ssh_file_fields_refuse_what_ssh_would_expand() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    sb.write(".bashrc", "# mine\n");
    let cases = [
        (
            "known_hosts_file",
            "\"/x/${GITHUB_TOKEN}\"",
            "`$`, which ssh expands from the environment",
        ),
        (
            "known_hosts_file",
            "\"%d/.bashrc\"",
            "`%`, which ssh expands as a token",
        ),
        (
            "identity_file",
            "\"~root/.ssh/id\"",
            "`~` other than a leading `~/`",
        ),
        ("identity_file", "\"/k/a b\"", "white space"),
    ];
    for (field, value, why) in cases {
        let fields = format!(
            "    type: ssh_env\n    host: root@127.0.0.1\n    port: {}\n    known_hosts: accept-new\n    connect_timeout: 5s\n    path: /tmp/ss-attacks-never.env\n    {field}: {value}\n",
            sshd.port
        );
        manifest(&sb, &[("vps", fields)]);
        let out = bounded(&sb, &["plan"], &[("GITHUB_TOKEN", TOKEN)]);
        assert_eq!(out.code, 1, "{value}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("`{field}` of target `vps` contains {why}")),
            "{value}: {out:?}"
        );
        assert!(out.stderr.contains("secrets.yaml:"), "{value}: {out:?}");
        assert_eq!(sb.read(".bashrc"), "# mine\n", "{value}");
    }
    assert_eq!(sshd.connections(), 0);
}

/// Every line of `out` as the Actions runner would read it: no workflow
/// command but our own annotations, no `##[` anywhere, nothing that drives
/// a terminal or spoofs a name.
fn assert_inert(what: &str, out: &Out) {
    for line in out.all().lines() {
        let t = line.trim_start();
        assert!(
            !t.starts_with("::")
                || t.starts_with("::error title=")
                || t.starts_with("::warning title=")
                || t.starts_with("::notice title="),
            "{what}: a workflow command: {line:?}"
        );
        assert!(!line.contains("##["), "{what}: {line:?}");
        assert!(
            !line.chars().any(|c| (c.is_control() && c != '\t')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')),
            "{what}: {line:?}"
        );
    }
}

/// Finding 6: a newline in a `rename:` value made a load error print lines
/// beginning `::add-mask::`; Railway strings with ESC or newlines, bidi
/// and zero-width characters in names reached the output raw.
#[test]
fn manifest_strings_are_inert_in_terminals_and_the_runner() {
    let sb = Sandbox::new();
    let gh = [("GITHUB_ACTIONS", "true")];
    let cases: &[(&str, &str)] = &[
        (
            "targets:\n  app: { type: env_file, path: a.env }\nsecrets:\n  A:\n    targets: [app]\n    rename: { app: \"X\\n::add-mask::foo\\n##[error]x\" }\n    value: v\n",
            "\"X\\n::add-mask::foo\\n#\\u{23}[error]x\" cannot be a key on target `app`",
        ),
        (
            "targets:\n  \"app\\u202e\": { type: env_file, path: a.env }\nsecrets: {}\n",
            "a target name must be non-empty and hold no control, bidi or invisible characters",
        ),
        (
            "targets:\n  rw: { type: railway, project: \"p\\e[2J\\n::warning::x\", environment: e, service: s }\nsecrets: {}\n",
            "`project` of target `rw` contains a control, bidi or invisible character",
        ),
        (
            "targets:\n  rw: { type: railway, project: p, environment: \"prod\u{200b}\", service: s }\nsecrets: {}\n",
            "`environment` of target `rw` contains a control, bidi or invisible character",
        ),
        (
            "targets:\n  rw: { type: railway, project: p, environment: e, service: \"api\u{202e}gpj\" }\nsecrets: {}\n",
            "`service` of target `rw` contains a control, bidi or invisible character",
        ),
        // Raw control bytes in the file: the parse error's excerpt.
        (
            "targets:\n  app: { type: env_file, path: \"a\u{1b}[2J##[add-mask]x\" }\nsecrets: {}\n",
            "secrets.yaml:",
        ),
    ];
    for (body, said) in cases {
        sb.write("secrets.yaml", &format!("{}{body}", sb.header()));
        for args in [&["plan"][..], &["check"], &["plan", "--format", "markdown"]] {
            let out = bounded(&sb, args, &gh);
            assert_eq!(out.code, 1, "{body}: {out:?}");
            assert!(out.all().contains(said), "{said:?} in {args:?}: {out:?}");
            assert_inert(body, &out);
        }
    }
}

/// An armored age file encrypted to the sandbox's recipient with `extra`
/// stanzas of grease added before the MAC (it no longer decrypts: what
/// matters is the time age takes to parse it).
fn stanza_bomb(sb: &Sandbox, extra: usize) -> String {
    let armored = secretsync::crypto::encrypt(std::slice::from_ref(&sb.recipient), b"x").unwrap();
    let mut bin = Vec::new();
    use std::io::{Read, Write};
    age::armor::ArmoredReader::new(armored.as_bytes())
        .read_to_end(&mut bin)
        .unwrap();
    let mac = bin.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    let mut out = bin[..mac].to_vec();
    for i in 0..extra {
        out.extend_from_slice(format!("-> grease-{i}\nAAAA\n").as_bytes());
    }
    out.extend_from_slice(&bin[mac..]);
    let mut w =
        age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor).unwrap();
    w.write_all(&out).unwrap();
    let text = String::from_utf8(w.finish().unwrap()).unwrap();
    text.lines().map(|l| format!("      {l}\n")).collect()
}

/// Finding 11: an age header with thousands of stanzas made decryption
/// quadratic (20,000 stanzas: 110 s) in `plan` and in `check`, the step
/// for forks' pull requests.
#[test]
fn an_age_header_with_thousands_of_stanzas_is_refused_quickly() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("app.env"), "").unwrap();
    let bomb = stanza_bomb(&sb, 20_000);
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  A:\n    targets: [app]\n    encrypted: |\n{bomb}",
            sb.header()
        ),
    );
    for args in [&["check"][..], &["plan"]] {
        let t = std::time::Instant::now();
        let out = bounded(&sb, args, &[]);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.all()
                .contains("its age header has 20001 stanzas, more than the 256 secretsync accepts")
                || out.all().contains(
                    "its age header has 20002 stanzas, more than the 256 secretsync accepts"
                ),
            "{args:?}: {out:?}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{args:?}: {:?}",
            t.elapsed()
        );
        eprintln!(
            "{args:?} with a 20,000-stanza header: refused in {:?}",
            t.elapsed()
        );
    }
    // Up to the cap, a value is still read: 255 grease stanzas parse (and
    // fail on the MAC, as any edited header does).
    let small = stanza_bomb(&sb, 250);
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  A:\n    targets: [app]\n    encrypted: |\n{small}",
            sb.header()
        ),
    );
    let out = bounded(&sb, &["plan"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.all().contains("stanzas, more than"), "{out:?}");
}

/// Finding 12: a format refusal described the value ("holds a single
/// quote", "its `$`"); it names the key and the formats that can hold it.
#[test]
fn a_format_refusal_names_the_key_and_formats_not_the_content() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("app.env"), "").unwrap();
    for value in ["it's $HOME", "back\\slash'", "`tick`'\\"] {
        sb.write(
            "secrets.yaml",
            &format!(
                "{}targets:\n  app:\n    type: env_file\n    path: app.env\n    format: node\nsecrets:\n  DB_PASSWORD:\n    targets: [app]\n    encrypted: |\n{}",
                sb.header(),
                sb.encrypted(value, 6)
            ),
        );
        let out = bounded(&sb, &["plan"], &[]);
        assert_eq!(out.code, 1, "{out:?}");
        let all = out.all();
        assert!(
            all.contains("the value of `DB_PASSWORD` cannot be written to this target: `format: node` has no form of this value that"),
            "{all}"
        );
        assert!(all.contains("can hold it"), "{all}");
        for said in [
            "quote",
            "`$`",
            "backtick",
            "backslash",
            "would misread",
            "escape",
        ] {
            assert!(!all.contains(said), "{said:?} describes the value: {all}");
        }
        assert!(!all.contains(value), "{all}");
    }
}
