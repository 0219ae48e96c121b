//! The scripts secretsync runs on hosts (src/targets/scripts/*.sh), run as a
//! host would run them: under dash, `bash --posix` and busybox sh, and with a
//! PATH that holds only the tools a Mac has, their GNU-only options refused
//! as BSD's tools refuse them (`stat -c`, `readlink -f`, `sed -i`, `mktemp`
//! options) and no `sha256sum`. Needs root (files are given to another owner).

use crate::support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use support::sshd::is_root;

use secretsync::targets::scripts;

/// A shell a host may have, with or without BSD tools.
struct Host {
    /// How to start the shell: program and options before `-c`.
    shell: Vec<String>,
    /// The PATH scripts see (their inner `sh` is this shell too).
    path: String,
    _dir: tempfile::TempDir,
    label: String,
}

/// Tools a Mac has, linked into the BSD PATH as they are.
const MAC_TOOLS: &[&str] = &[
    "cat", "mv", "rm", "mkdir", "chmod", "chown", "dirname", "cut", "awk", "ls", "base64", "sync",
    "sudo", "shasum", "tr", "grep", "perl", "env",
];

/// Tools whose GNU-only options a Mac's refuses: name, refused options.
const BSD_SHIMS: &[(&str, &[&str])] = &[
    ("stat", &["-c", "--format", "--printf"]),
    ("readlink", &["-f", "-e", "-m", "--canonicalize"]),
    ("sed", &["-i", "--in-place"]),
    ("mktemp", &["-p", "--tmpdir", "--suffix"]),
];

fn host(shell: &str, bsd: bool) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = |name: &str, text: String| {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let shell_argv: Vec<String> = match shell {
        "dash" => vec!["/usr/bin/dash".into()],
        "bash" => vec!["/usr/bin/bash".into(), "--posix".into()],
        "busybox" => vec!["/usr/bin/busybox".into(), "sh".into()],
        other => panic!("unknown shell {other}"),
    };
    assert!(
        Path::new(&shell_argv[0]).exists(),
        "{} is missing: .ci/run installs it",
        shell_argv[0]
    );
    exe(
        "sh",
        format!(
            "#!{}\nexec {} \"$@\"\n",
            "/usr/bin/dash",
            shell_argv.join(" ")
        ),
    );
    let path = if bsd {
        for t in MAC_TOOLS {
            let real = which(t);
            std::os::unix::fs::symlink(real, bin.join(t)).unwrap();
        }
        for (name, refused) in BSD_SHIMS {
            let cases: String = refused
                .iter()
                .map(|o| {
                    format!("    {o}|{o}*) echo \"{name}: illegal option -- {o}\" >&2; exit 1 ;;\n")
                })
                .collect();
            exe(
                name,
                format!(
                    "#!/usr/bin/dash\nfor a in \"$@\"; do\n  case $a in\n{cases}  esac\ndone\nexec {} \"$@\"\n",
                    which(name).display()
                ),
            );
        }
        bin.display().to_string()
    } else {
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
    };
    Host {
        shell: shell_argv,
        path,
        _dir: dir,
        label: format!("{shell}{}", if bsd { " with BSD tools" } else { "" }),
    }
}

fn which(tool: &str) -> PathBuf {
    for d in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(d).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} not found")
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Host {
    fn run(&self, script: &str, args: &[&str], stdin: &[u8]) -> Ran {
        let mut child = Command::new(&self.shell[0])
            .args(&self.shell[1..])
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", "/root")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes `new` over `path` as `ssh_env` does, the file read as `old`.
    fn write(&self, path: &Path, old: Option<&[u8]>, new: &[u8]) -> Ran {
        self.write_with(
            path,
            old.map(sha).as_deref().unwrap_or("none"),
            &sha(new),
            new,
        )
    }

    fn write_with(&self, path: &Path, have: &str, newsum: &str, new: &[u8]) -> Ran {
        let mut input = format!("{have} {newsum}\n").into_bytes();
        input.extend_from_slice(new);
        self.run(
            &scripts::env_write(),
            &["0", path.to_str().unwrap(), "1", ""],
            &input,
        )
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hosts() -> Vec<Host> {
    let mut v = Vec::new();
    for shell in ["dash", "bash", "busybox"] {
        for bsd in [false, true] {
            v.push(host(shell, bsd));
        }
    }
    v
}

#[test]
fn the_bsd_path_refuses_what_a_mac_refuses() {
    let h = host("dash", true);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let f = f.to_str().unwrap();
    for (cmd, says) in [
        (format!("stat -c %a {f}"), "illegal option -- -c"),
        (format!("readlink -f {f}"), "illegal option -- -f"),
        (format!("sed -i s/x/y/ {f}"), "illegal option -- -i"),
        ("command -v sha256sum".to_string(), ""),
    ] {
        let r = h.run(&cmd, &[], b"");
        assert_ne!(r.code, 0, "{cmd} ran under the BSD PATH");
        assert!(r.stderr.contains(says), "{cmd}: {}", r.stderr);
    }
    // What the scripts use instead works there.
    let r = h.run(&format!("ls -ldn -- {f} && shasum -a 256 < {f}"), &[], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn env_write_creates_replaces_and_keeps_mode_and_owner_under_every_shell() {
    assert!(
        is_root(),
        "these tests give files to another owner: run as root"
    );
    for h in hosts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/app.env");
        let text: &[u8] = b"# app\nA=\"1 'two' $x\"\nB=\xc3\xa9\n";
        let r = h.write(&p, None, text);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "written\n"),
            "{}: {}",
            h.label,
            r.stderr
        );
        assert_eq!(std::fs::read(&p).unwrap(), text, "{}", h.label);
        assert_eq!(mode(&p), 0o600, "{}: a new file is private", h.label);

        for want in [0o640, 0o604, 0o755, 0o400, 0o2750] {
            // chown first: it clears set-id bits.
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(want)).unwrap();
            let old = std::fs::read(&p).unwrap();
            let new = format!("A={want:o}\n");
            let r = h.write(&p, Some(&old), new.as_bytes());
            assert_eq!(r.code, 0, "{} mode {want:o}: {}", h.label, r.stderr);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), new, "{}", h.label);
            assert_eq!(mode(&p), want, "{}: mode kept", h.label);
            let meta = std::fs::metadata(&p).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (65534, 65534),
                "{}: owner kept",
                h.label
            );
        }
        assert_eq!(temp_files(p.parent().unwrap()), 0, "{}", h.label);
    }
}

#[test]
fn env_write_follows_links_and_refuses_what_moved_or_arrived_cut() {
    for h in hosts() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real/app.env");
        std::fs::create_dir(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "A=1\n").unwrap();
        std::fs::create_dir(dir.path().join("links")).unwrap();
        let link = dir.path().join("links/app.env");
        std::os::unix::fs::symlink("../real/app.env", &link).unwrap();
        let chain = dir.path().join("chain.env");
        std::os::unix::fs::symlink("links/app.env", &chain).unwrap();

        // Through two relative links: the real file changes, the links stay.
        let r = h.write(&chain, Some(b"A=1\n"), b"A=2\n");
        assert_eq!(r.code, 0, "{}: {}", h.label, r.stderr);
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            "A=2\n",
            "{}",
            h.label
        );
        assert!(link.is_symlink() && chain.is_symlink(), "{}", h.label);

        // Changed since it was read: refused, untouched.
        let r = h.write(&real, Some(b"A=1\n"), b"A=3\n");
        assert_eq!(r.code, 75, "{}: {}", h.label, r.stderr);
        assert!(
            r.stderr.contains("changed since it was read"),
            "{}",
            h.label
        );
        // The new text arrived cut (its hash is of a longer text): refused.
        let r = h.write_with(&real, &sha(b"A=2\n"), &sha(b"A=3\nB=4\n"), b"A=3\n");
        assert_eq!(r.code, 83, "{}: {}", h.label, r.stderr);
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            "A=2\n",
            "{}",
            h.label
        );
        assert_eq!(temp_files(real.parent().unwrap()), 0, "{}", h.label);

        // A dangling link and a folder are refused by name.
        let dangling = dir.path().join("dangling.env");
        std::os::unix::fs::symlink("nowhere.env", &dangling).unwrap();
        let r = h.write(&dangling, Some(b""), b"A=1\n");
        assert_eq!(r.code, 71, "{}: {}", h.label, r.stderr);
        let r = h.write(dir.path(), Some(b""), b"A=1\n");
        assert_eq!(r.code, 72, "{}: {}", h.label, r.stderr);
    }
}

#[test]
fn env_read_and_check_dir_say_each_state_under_every_shell() {
    for h in hosts() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("a.env");
        let bytes: Vec<u8> = (0u8..=255).chain(b"\nA=1\n".iter().copied()).collect();
        std::fs::write(&present, &bytes).unwrap();
        let dangling = dir.path().join("d.env");
        std::os::unix::fs::symlink("nowhere", &dangling).unwrap();
        let missing = dir.path().join("m.env");
        let folder = dir.path().to_path_buf();
        let args: Vec<&str> = [&present, &missing, &folder, &dangling]
            .iter()
            .flat_map(|p| ["0", p.to_str().unwrap()])
            .collect();
        let r = h.run(&scripts::env_read(), &args, b"");
        assert_eq!(r.code, 0, "{}: {}", h.label, r.stderr);
        let mut lines = r.stdout.lines();
        assert_eq!(lines.next(), Some("#0 ok"), "{}: {}", h.label, r.stdout);
        let b64: String = lines.by_ref().take_while(|l| !l.starts_with('#')).collect();
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            bytes,
            "{}",
            h.label
        );
        let rest: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            rest,
            ["#0 ok", "#1 missing", "#2 dir", "#3 dangling"],
            "{}",
            h.label
        );

        let r = h.run(
            &scripts::env_check_dir(),
            &["0", present.to_str().unwrap()],
            b"",
        );
        assert_eq!(
            (r.code, r.stdout.trim()),
            (0, "ok"),
            "{}: {}",
            h.label,
            r.stderr
        );
        let nowhere = dir.path().join("no/such/dir/a.env");
        let r = h.run(
            &scripts::env_check_dir(),
            &["0", nowhere.to_str().unwrap()],
            b"",
        );
        assert_eq!(r.stdout.trim(), "missing", "{}: {}", h.label, r.stderr);
        assert_eq!(temp_files(dir.path()), 0, "{}", h.label);
    }
}

#[test]
fn keychain_read_frames_every_item_under_every_shell() {
    let standin = support::security_standin();
    for h in hosts() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("k.keychain-db");
        let kc = kc.to_str().unwrap();
        let security = |args: &[&str], stdin: &str| {
            let mut c = Command::new(&standin)
                .args(args)
                .env("HOME", dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            assert!(c.wait().unwrap().success());
        };
        security(&["create-keychain", "-p", "pw", kc], "");
        let mut lines = String::new();
        for i in 0..10 {
            lines.push_str(&format!(
                "add-generic-password -a K{i} -s svc -w \"v{i} 'q'\" \"{kc}\"\n"
            ));
        }
        security(&["-i"], &lines);
        // The stand-in is a Python program: a Mac's `security` is a binary,
        // so the BSD PATH does not have to hold python3 for it.
        let program = dir.path().join("security");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\nexec {} {} \"$@\"\n",
                python3().display(),
                standin.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut args = vec!["MARK".to_string(), "8".to_string()];
        for i in 0..11 {
            args.extend([
                program.display().to_string(),
                kc.to_string(),
                "svc".into(),
                format!("K{i}"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut r = h.run(scripts::KEYCHAIN_READ, &args, b"");
        r.stdout = r.stdout.replace('\r', "");
        assert_eq!(r.code, 0, "{}: {}", h.label, r.stderr);
        let ends: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("MARK end"))
            .collect();
        let want: Vec<String> = (0..11)
            .map(|i| format!("MARK end {i} {}", if i < 10 { 0 } else { 44 }))
            .collect();
        assert_eq!(ends, want, "{}: {}", h.label, r.stdout);
        for i in 0..10 {
            assert!(
                r.stdout.contains(&format!("password: \"v{i} 'q'\"")),
                "{}: {}",
                h.label,
                r.stdout
            );
        }
    }
}

fn python3() -> PathBuf {
    // The interpreter itself, not a shim (pyenv's are bash scripts).
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Temp files a write left behind in `dir`.
fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".secretsync."))
        .count()
}

/// #23, findings 7 to 10 on the host: the read script says `special` for a
/// FIFO or a device without opening it, `large` past 16 MiB, `untrusted`
/// for another user's link; the write script refuses the same (84, 85)
/// before it reads or replaces anything. Each run is bounded: a FIFO
/// opened blocking would hang it.
#[test]
fn env_scripts_refuse_fifos_devices_huge_files_and_planted_links_under_every_shell() {
    let planted = is_root().then(|| {
        support::sshd::ensure_user("ss-alice", false);
        let o = Command::new("id")
            .args(["-u", "ss-alice"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    });
    for h in hosts() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.env");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let huge = dir.path().join("huge.env");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(16 * 1024 * 1024 + 1)
            .unwrap();
        let mine = dir.path().join("mine.env");
        std::fs::write(&mine, "A=1\n").unwrap();
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        let bounded = |script: &str, args: &[&str], stdin: &[u8]| {
            let r = h.run_bounded(script, args, stdin);
            assert_ne!(r.code, 124, "{}: hung", h.label);
            r
        };
        let paths = [
            fifo.clone(),
            PathBuf::from("/dev/zero"),
            huge.clone(),
            link.clone(),
        ];
        let mut want = vec!["#0 special", "#1 special", "#2 large", "#3 ok"];
        if let Some(uid) = planted {
            std::os::unix::fs::lchown(&link, Some(uid), None).unwrap();
            want[3] = "#3 untrusted";
        }
        let args: Vec<&str> = paths
            .iter()
            .flat_map(|p| ["0", p.to_str().unwrap()])
            .collect();
        let r = bounded(&scripts::env_read(), &args, b"");
        assert_eq!(r.code, 0, "{}: {}", h.label, r.stderr);
        let states: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(states, want, "{}: {}", h.label, r.stdout);

        let write = |p: &Path| {
            let mut input = format!("none {}\n", sha(b"A=2\n")).into_bytes();
            input.extend_from_slice(b"A=2\n");
            bounded(
                &scripts::env_write(),
                &["0", p.to_str().unwrap(), "1", ""],
                &input,
            )
        };
        let r = write(&fifo);
        assert_eq!(r.code, 84, "{}: {}", h.label, r.stderr);
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        if planted.is_some() {
            let r = write(&link);
            assert_eq!(r.code, 85, "{}: {}", h.label, r.stderr);
            assert_eq!(
                std::fs::read_to_string(&mine).unwrap(),
                "A=1\n",
                "{}",
                h.label
            );
            // A device node of our own (never the machine's /dev/null).
            let dev = dir.path().join("dev.env");
            if Command::new("mknod")
                .arg(&dev)
                .args(["c", "1", "3"])
                .status()
                .is_ok_and(|s| s.success())
            {
                let r = write(&dev);
                assert_eq!(r.code, 84, "{}: {}", h.label, r.stderr);
                assert!(std::fs::symlink_metadata(&dev)
                    .unwrap()
                    .file_type()
                    .is_char_device());
            }
        }
        assert_eq!(temp_files(dir.path()), 0, "{}", h.label);
    }
}

impl Host {
    /// [`Host::run`] under `timeout 20`: exit 124 when the script hung.
    fn run_bounded(&self, script: &str, args: &[&str], stdin: &[u8]) -> Ran {
        let out = Command::new("/usr/bin/timeout")
            .arg("20")
            .args(&self.shell)
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", "/root")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                let _ = child.stdin.take().unwrap().write_all(stdin);
                child.wait_with_output()
            })
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
