//! Signals through the real binary (#24): SIGTERM, SIGINT and SIGKILL sent
//! at the moment a temp file exists, locally and over the real sshd. A
//! handled signal exits 143/130 with no temp file and no SSH master left; a
//! SIGKILL's leftovers (a temp file, a master and its folder) are removed by
//! the next run. The target file is always the whole old or the whole new text.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::cli::{secretsync_cmd, Sandbox};
use support::sshd::Sshd;

/// `.secretsync.*` entries in `dir` (temp files, a lock folder).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".secretsync."))
        .map(|e| e.path())
        .collect()
}

/// `.ssh-connection*` folders (the openssh crate's master folders) in `dir`.
fn master_folders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".ssh-connection")
        })
        .map(|e| e.path())
        .collect()
}

/// A manifest writing `K` = `generation` to the target, beside lines of
/// unmanaged bulk already in the file (so that each write is megabytes).
fn manifest(sb: &Sandbox, target: &str, generation: &str) {
    sb.write(
        "secrets.yaml",
        &format!(
            "version: 1\ntargets:\n  app:\n{target}secrets:\n  K:\n    targets: [app]\n    value: \"{generation}\"\n"
        ),
    );
}

fn bulk() -> String {
    (0..40)
        .map(|i| format!("BULK{i}={}\n", "b".repeat(100_000)))
        .collect()
}

fn start_apply(sb: &Sandbox, tmpdir: &Path) -> Child {
    let mut cmd = secretsync_cmd(sb.dir.path());
    cmd.args(["apply", "--auto-approve", "-q", "--identity"])
        .arg(&sb.identity)
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn send(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// The exit code a handled signal calls for; `None` for SIGKILL.
fn expected_code(sig: Signal) -> Option<i32> {
    match sig {
        Signal::SIGTERM => Some(143),
        Signal::SIGINT => Some(130),
        Signal::SIGHUP => Some(129),
        _ => None,
    }
}

fn wait_code(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_signal_while_a_local_temp_file_exists_leaves_no_temp_file() {
    let sb = Sandbox::new();
    let tmpdir = sb.path("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let file = sb.path("app.env");
    let target = "    type: env_file\n    path: app.env\n";
    let bulk = bulk();
    std::fs::write(&file, format!("{bulk}K=g0\n")).unwrap();
    let mut old = "g0".to_string();
    let mut figures = Vec::new();
    for (round, sig) in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGKILL,
        Signal::SIGKILL,
    ]
    .into_iter()
    .enumerate()
    {
        let generation = format!("g{}", round + 1);
        manifest(&sb, target, &generation);
        // Catch the moment a temp file exists (a few tries: the write of
        // 6 MB and its fsync is the window).
        let mut caught = None;
        for _ in 0..20 {
            let mut child = start_apply(&sb, &tmpdir);
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut seen = false;
            while Instant::now() < deadline {
                if !temp_files(sb.dir.path()).is_empty() {
                    seen = true;
                    break;
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
            if seen {
                send(&child, sig);
                caught = Some(wait_code(child));
                break;
            }
            let _ = wait_code(child);
            // Missed it: put the old value back and try again.
            std::fs::write(&file, format!("{bulk}K={old}\n")).unwrap();
        }
        let (code, stderr) = caught.expect("never saw the temp file of a write");
        let left = temp_files(sb.dir.path());
        figures.push(format!(
            "{sig:?}: exit {code:?}, {} temp file(s) left",
            left.len()
        ));
        if let Some(want) = expected_code(sig) {
            assert_eq!(code, Some(want), "{sig:?}: {stderr}");
            assert!(left.is_empty(), "{sig:?} left {left:?}");
            assert!(stderr.contains("interrupted"), "{stderr}");
        }
        let now = std::fs::read_to_string(&file).unwrap();
        assert!(
            now == format!("{bulk}K={old}\n") || now == format!("{bulk}K={generation}\n"),
            "{sig:?}: a torn file"
        );
        // The next run converges and leaves nothing behind.
        let out = sb.run(&["apply", "--auto-approve", "-q"]);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{bulk}K={generation}\n")
        );
        let left = temp_files(sb.dir.path());
        assert!(left.is_empty(), "after the next run: {left:?}");
        old = generation;
    }
    eprintln!("local: {}", figures.join("; "));
}

/// Over SSH: the host's `sync` (called once the remote temp file is
/// written) is held 4 s, so the signal lands while the temp file exists.
#[test]
fn a_signal_while_a_remote_temp_file_exists_leaves_no_temp_file_and_no_master() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let tmpdir = sb.path("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let remote = tempfile::tempdir().unwrap();
    let file = remote.path().join("app.env");
    let flag = sb.path("hold-sync");
    let held = sb.path("sync-held");
    let standin = sb.path("sync");
    std::fs::write(
        &standin,
        format!(
            "#!/bin/sh\nif [ -e {f} ]; then rm -f {f}; : > {h}; sleep 4; fi\nexec /bin/sync \"$@\"\n",
            f = flag.display(),
            h = held.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();
    sshd.install_program("sync", &standin);
    let target = format!(
        "    type: ssh_env\n{}    path: {}\n",
        sshd.yaml("root", 4),
        file.display()
    );
    std::fs::write(&file, "K=g0\n").unwrap();
    let mut old = "g0".to_string();
    let mut figures = Vec::new();
    for (round, sig) in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGKILL]
        .into_iter()
        .enumerate()
    {
        let generation = format!("g{}", round + 1);
        manifest(&sb, &target, &generation);
        let _ = std::fs::remove_file(&held);
        std::fs::write(&flag, "").unwrap();
        let child = start_apply(&sb, &tmpdir);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !held.exists() {
            assert!(Instant::now() < deadline, "the remote write never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !temp_files(remote.path()).is_empty(),
            "no remote temp file while the write is held"
        );
        send(&child, sig);
        let (code, stderr) = wait_code(child);
        let masters = master_folders(&tmpdir);
        figures.push(format!(
            "{sig:?}: exit {code:?}, {} master folder(s) left",
            masters.len()
        ));
        if let Some(want) = expected_code(sig) {
            assert_eq!(code, Some(want), "{sig:?}: {stderr}");
            assert!(masters.is_empty(), "{sig:?} left {masters:?}");
            // The master of the run has ended: no connection is left on the
            // server once the held command is over.
            assert!(
                sshd.all_closed(Duration::from_secs(10)),
                "{sig:?}: a master of the signalled run is still connected"
            );
        }
        // The held remote command goes on without its sender: it finishes
        // the rename (its input had all arrived) or removes its temp file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !temp_files(remote.path()).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = std::fs::read_to_string(&file).unwrap();
        assert!(
            after == format!("K={old}\n") || after == format!("K={generation}\n"),
            "{sig:?}: a torn file"
        );
        // The next run converges, and ends what a SIGKILL left.
        let out = sb.run_with(
            &["apply", "--auto-approve", "-q"],
            &[("TMPDIR", tmpdir.to_str().unwrap())],
        );
        assert_eq!(out.code, 0, "{sig:?}: {out:?}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("K={generation}\n")
        );
        let left = temp_files(remote.path());
        assert!(left.is_empty(), "{sig:?}: after the next run: {left:?}");
        let masters = master_folders(&tmpdir);
        assert!(
            masters.is_empty(),
            "{sig:?}: after the next run: {masters:?}"
        );
        assert!(
            sshd.all_closed(Duration::from_secs(10)),
            "{sig:?}: a master is still connected after the next run"
        );
        old = generation;
    }
    eprintln!("ssh: {}", figures.join("; "));
}
