//! The `ssh_env` target against a real OpenSSH server on 127.0.0.1 (started
//! per test, see support/sshd.rs): the conformance cases, the real binary's
//! plan and apply, connection and command counts, no value on any remote
//! command line, and every failure a user must understand.

use crate::secretsync_conformance_tests;
use crate::support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secretsync::targets::{ssh_env::SshEnvSpec, TargetSpec};
use secretsync::targets::{Context, ErrorKind, Target};
use support::cli::{assert_no_canary, Sandbox};
use support::conformance::{self as c, Fixture};
use support::sshd::{ensure_user, is_root, KeptMasters, Relay, Sshd};

const CANARY_A: &str = "canary-ssh-aaaa-7d1f0c";
const CANARY_B: &str = "canary-ssh-bbbb-92e4aa";

fn spec(sshd: &Sshd, user: &str, path: &Path) -> SshEnvSpec {
    SshEnvSpec {
        ssh: sshd.options(user),
        path: path.display().to_string(),
        sudo: false,
        on_change: None,
        create: true,
        prune: false,
        // Shell holds every tricky value the conformance cases write.
        format: secretsync::envfile::Format::Shell,
        live: Default::default(),
    }
}

fn build(spec: SshEnvSpec) -> Box<dyn Target> {
    let ctx = Context::new(PathBuf::from("."));
    TargetSpec::new(spec).build("vps", &ctx).unwrap()
}

/// An env file over the test sshd, and local access to the same file for
/// tampering (the "host" is this machine).
struct SshFixture {
    sshd: Sshd,
    file: PathBuf,
    _dir: tempfile::TempDir,
    ctx: Arc<Context>,
}

impl SshFixture {
    fn new() -> SshFixture {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        SshFixture {
            file: dir.path().join("app.env"),
            sshd,
            _dir: dir,
            ctx: Arc::new(Context::new(PathBuf::from("."))),
        }
    }
}

#[async_trait::async_trait]
impl Fixture for SshFixture {
    fn target(&self) -> Box<dyn Target> {
        let spec = spec(&self.sshd, "root", &self.file);
        TargetSpec::new(spec).build("vps", &self.ctx).unwrap()
    }

    async fn tamper(&self, key: &str) {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let mut doc = secretsync::envfile::EnvFile::parse(&text).unwrap();
        doc.apply(&[c::add(key, c::TAMPERED)], Default::default())
            .unwrap();
        std::fs::write(&self.file, doc.render()).unwrap();
    }

    fn can_hold(&self, value: &str) -> bool {
        !value.contains('\r') && !value.contains('\0')
    }

    fn lists_all(&self) -> bool {
        true
    }
}

secretsync_conformance_tests!(SshFixture::new());

// ---------------------------------------------------------------------------
// The real binary.

/// A sandbox with a manifest of ssh_env targets on `sshd`; `targets` are
/// (name, user, path, extra YAML lines); every secret goes to every target.
fn manifest(
    sb: &Sandbox,
    sshd: &Sshd,
    targets: &[(&str, &str, &Path, &str)],
    secrets: &[(&str, &str)],
) {
    let mut m = sb.header();
    m.push_str("targets:\n");
    for (name, user, path, extra) in targets {
        m.push_str(&format!("  {name}:\n    type: ssh_env\n"));
        m.push_str(&sshd.yaml(user, 4));
        m.push_str(&format!("    path: {}\n", path.display()));
        for l in extra.lines() {
            m.push_str(&format!("    {l}\n"));
        }
    }
    m.push_str("secrets:\n");
    let names: Vec<&str> = targets.iter().map(|t| t.0).collect();
    for (key, value) in secrets {
        m.push_str(&format!(
            "  {key}:\n    targets: [{}]\n    encrypted: |\n{}",
            names.join(", "),
            sb.encrypted(value, 6)
        ));
    }
    sb.write("secrets.yaml", &m);
}

const HAND_WRITTEN: &str = "# app environment, edited by hand\n\
export API_KEY='old value'\n\
\n\
# multi-line, quoted\n\
CERT=\"-----BEGIN-----\n\
abc\n\
-----END-----\"\n\
LOG_LEVEL=debug   # keep me\n\
";

#[test]
fn plan_and_apply_edit_the_file_in_place_keeping_mode_and_owner() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, HAND_WRITTEN).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A file owned by someone else than the SSH user (root): the owner stays.
    let owner = if is_root() {
        ensure_user("ss-owner", false);
        let uid = nix_id("-u", "ss-owner");
        let gid = nix_id("-g", "ss-owner");
        std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
        Some((uid, gid))
    } else {
        None
    };
    manifest(
        &sb,
        &sshd,
        // A shell-sourced file: `export ` and the inline comment stay.
        &[("vps", "root", &file, "format: shell")],
        &[("API_KEY", CANARY_A), ("NEW_TOKEN", CANARY_B)],
    );

    let plan = sb.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("1 to add, 1 to change"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("-export API_KEY=<redacted")
            && plan.stdout.contains("+export API_KEY=<redacted, new")
            && plan.stdout.contains("+NEW_TOKEN=<redacted, new"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("over SSH"), "{}", plan.stdout);

    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after,
        format!(
            "# app environment, edited by hand\n\
             export API_KEY={CANARY_A}\n\
             \n\
             # multi-line, quoted\n\
             CERT=\"-----BEGIN-----\n\
             abc\n\
             -----END-----\"\n\
             LOG_LEVEL=debug   # keep me\n\
             NEW_TOKEN={CANARY_B}\n"
        )
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640, "mode kept");
    if let Some((uid, gid)) = owner {
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "owner kept");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );

    let again = sb.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "in sync after apply: {again:?}");
    for out in [&plan, &apply, &again] {
        assert_no_canary("output", out.all().as_bytes(), &[CANARY_A, CANARY_B]);
    }
    assert_no_canary(
        "remote command lines",
        sshd.commands().as_bytes(),
        &[CANARY_A, CANARY_B, "old value"],
    );
}

fn nix_id(flag: &str, user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args([flag, user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_missing_file_and_folder_are_created_private() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new/app.env");
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("TOKEN", CANARY_A)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("TOKEN={CANARY_A}\n")
    );
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(file.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn create_false_refuses_a_missing_file() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "create: false")],
        &[("TOKEN", CANARY_A)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply
            .all()
            .contains("does not exist and the target has `create: false`"),
        "{apply:?}"
    );
    assert!(!file.exists());
}

#[test]
fn two_targets_on_one_host_share_one_connection_and_one_read() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.env"), dir.path().join("b.env"));
    std::fs::write(&b, format!("TOKEN={CANARY_A}\n")).unwrap();
    manifest(
        &sb,
        &sshd,
        &[("api", "root", &a, ""), ("worker", "root", &b, "")],
        &[("TOKEN", CANARY_A), ("OTHER", CANARY_B)],
    );

    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!(sshd.connections(), 1, "plan: one connection for the host");
    assert_eq!(sshd.command_count(), 1, "plan: one read for both files");
    assert!(
        sshd.all_closed(Duration::from_secs(3)),
        "the run ended its master connection"
    );

    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(sshd.connections(), 2, "apply: one more connection");
    // apply: 1 read, 2 writes (one per file), 1 verify read.
    assert_eq!(sshd.command_count(), 1 + 4, "{}", sshd.commands());
    assert_no_canary(
        "remote command lines",
        sshd.commands().as_bytes(),
        &[CANARY_A, CANARY_B],
    );
}

#[test]
fn an_unreachable_host_fails_its_target_and_the_others_are_applied() {
    let mut sshd = Sshd::start();
    sshd.stop();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.env");
    let mut m = sb.header();
    m.push_str("targets:\n  vps:\n    type: ssh_env\n");
    m.push_str(&sshd.yaml("root", 4));
    m.push_str(&format!("    path: {}\n", remote.display()));
    m.push_str("  local:\n    type: env_file\n    path: local.env\n");
    m.push_str(&format!(
        "secrets:\n  TOKEN:\n    targets: [vps, local]\n    encrypted: |\n{}",
        sb.encrypted(CANARY_A, 6)
    ));
    sb.write("secrets.yaml", &m);

    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    let all = apply.all();
    assert!(
        all.contains(&format!(
            "cannot connect to root@127.0.0.1:{}: connection refused",
            sshd.port
        )),
        "{all}"
    );
    assert!(all.contains("is sshd running on the host"), "{all}");
    assert_eq!(sb.read("local.env"), format!("TOKEN={CANARY_A}\n"));
    assert!(!remote.exists());
    assert_no_canary("output", all.as_bytes(), &[CANARY_A]);
}

#[test]
fn a_changed_host_key_is_refused() {
    let mut sshd = Sshd::start();
    sshd.change_host_key();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("TOKEN", CANARY_A)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    let all = apply.all();
    assert!(
        all.contains(&format!(
            "the SSH host key of root@127.0.0.1:{} changed",
            sshd.port
        )),
        "{all}"
    );
    assert!(all.contains("ssh-keygen -R"), "{all}");
    assert!(
        !file.exists(),
        "nothing written to a host that failed its key check"
    );
    assert_eq!(sshd.connections(), 0);
}

#[test]
fn an_unknown_host_key_is_refused_under_strict_and_added_under_accept_new() {
    let sshd = Sshd::start();
    std::fs::write(&sshd.known_hosts, "").unwrap();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.all()
            .contains("is not known; the connection was refused"),
        "{plan:?}"
    );
    assert!(plan.all().contains("known_hosts: accept-new"), "{plan:?}");

    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "known_hosts: accept-new")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let known = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    assert!(known.contains("ssh-ed25519"), "the key was added: {known}");
}

#[test]
fn a_refused_key_says_authentication_failed() {
    let sshd = Sshd::start();
    std::fs::write(sshd.dir.path().join("authorized_keys"), "").unwrap();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &dir.path().join("app.env"), "")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.all().contains(&format!(
            "root@127.0.0.1:{} refused the SSH authentication",
            sshd.port
        )),
        "{plan:?}"
    );
    assert!(plan.all().contains("authorized_keys"), "{plan:?}");
}

#[test]
fn a_silent_host_times_out() {
    // Accepts TCP but never speaks SSH: ConnectTimeout covers the banner.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(8));
        drop(conns);
    });
    let sb = Sandbox::new();
    let m = format!(
        "{}targets:\n  vps:\n    type: ssh_env\n    host: root@127.0.0.1\n    port: {port}\n    \
         connect_timeout: 1s\n    path: /tmp/never.env\nsecrets:\n  TOKEN:\n    targets: [vps]\n    value: x\n",
        sb.header()
    );
    sb.write("secrets.yaml", &m);
    let started = std::time::Instant::now();
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.all().contains(&format!(
            "cannot connect to root@127.0.0.1:{port}: no answer within 1s"
        )),
        "{plan:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(7));
}

#[test]
fn a_directory_and_an_unreadable_file_are_explained() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("app.env")).unwrap();
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &dir.path().join("app.env"), "")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.all()
            .contains("app.env is a directory, not an env file"),
        "{plan:?}"
    );

    if !is_root() {
        return;
    }
    // Root reads anything: an unreadable file needs another SSH user.
    ensure_user("ss-nosudo", false);
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = private.path().join("app.env");
    std::fs::write(&file, "TOKEN=x\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    manifest(
        &sb,
        &sshd,
        &[("vps", "ss-nosudo", &file, "")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.all()
            .contains("app.env is not readable by the SSH user"),
        "{plan:?}"
    );
    assert!(plan.all().contains("sudo: true"), "{plan:?}");
}

#[test]
fn sudo_reads_and_writes_a_root_owned_file() {
    if !is_root() {
        eprintln!("skipped: creating the sudo test user needs root");
        return;
    }
    ensure_user("ss-sudo", true);
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap(); // root-owned, 0700
    let file = dir.path().join("app.env");
    std::fs::write(&file, "# root's\nTOKEN=old\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    manifest(
        &sb,
        &sshd,
        &[("vps", "ss-sudo", &file, "sudo: true")],
        &[("TOKEN", CANARY_A)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("# root's\nTOKEN={CANARY_A}\n")
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    assert!(sshd.commands().contains("sudo -n"), "{}", sshd.commands());
    assert_no_canary(
        "remote command lines",
        sshd.commands().as_bytes(),
        &[CANARY_A],
    );

    // Without sudo, the same file cannot be read by that user.
    manifest(
        &sb,
        &sshd,
        &[("vps", "ss-sudo", &file, "")],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
}

#[test]
fn sudo_that_needs_a_password_is_explained() {
    if !is_root() {
        eprintln!("skipped: creating the test user needs root");
        return;
    }
    ensure_user("ss-nosudo", false);
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    manifest(
        &sb,
        &sshd,
        &[(
            "vps",
            "ss-nosudo",
            &dir.path().join("app.env"),
            "sudo: true",
        )],
        &[("TOKEN", CANARY_A)],
    );
    let plan = sb.run(&["plan"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    let all = plan.all();
    assert!(
        all.contains(&format!(
            "`sudo -n` on ss-nosudo@127.0.0.1:{} needs a password",
            sshd.port
        )),
        "{all}"
    );
    assert!(all.contains("NOPASSWD"), "{all}");
}

#[test]
fn on_change_runs_once_only_when_the_file_changed_and_its_failure_is_reported() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    let marker = dir.path().join("restarts");
    let hook = format!("on_change: echo restarted >> {}", marker.display());
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, &hook)],
        &[("TOKEN", CANARY_A)],
    );
    assert_eq!(sb.run(&["apply", "--auto-approve"]).code, 0);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "restarted\n");
    assert_eq!(sb.run(&["apply", "--auto-approve"]).code, 0);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "restarted\n",
        "not run when nothing changed"
    );

    manifest(
        &sb,
        &sshd,
        &[(
            "vps",
            "root",
            &file,
            "on_change: echo 'app failed to restart' >&2; exit 3",
        )],
        &[("TOKEN", CANARY_B)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    let all = apply.all();
    assert!(
        all.contains("was written, but on_change failed: on_change exited with status 3"),
        "{all}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("TOKEN={CANARY_B}\n"),
        "the file itself was written"
    );
}

#[test]
fn a_full_disk_leaves_the_old_file_intact() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: this machine does not allow mounting a tmpfs");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let file = mnt.path().join("app.env");
    let old = "TOKEN=\"old\"\n";
    std::fs::write(&file, old).unwrap();

    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let big = "x".repeat(64 * 1024);
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("TOKEN", &big)],
    );
    let apply = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{apply:?}");
    let all = apply.all();
    assert!(all.contains("No space left on device"), "{all}");
    assert!(all.contains("the old file is intact"), "{all}");
    assert!(all.contains("free space on root@127.0.0.1"), "{all}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), old);
    assert_eq!(
        std::fs::read_dir(mnt.path()).unwrap().count(),
        1,
        "the temp file was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_an_out_of_band_edit_is_refused_by_the_host() {
    // The file changes after the read: the host-side hash check refuses.
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "A=\"1\"\n").unwrap();
    let t = build(spec(&sshd, "root", &file));
    let observed = c::read(&*t, &["A"]).await;
    std::fs::write(&file, "A=\"someone else\"\n").unwrap();
    let err = t
        .write(&observed, &[c::update("A", CANARY_A)])
        .await
        .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("changed since it was read"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "A=\"someone else\"\n"
    );
}

#[test]
fn doctor_checks_connection_file_and_directory() {
    let mut sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(&file, "A=1\nB=2\n").unwrap();
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("A", CANARY_A)],
    );
    let ok = sb.run(&["doctor"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("connected and authenticated"), "{ok:?}");
    assert!(ok.stdout.contains("parses (2 keys)"), "{ok:?}");
    assert!(
        ok.stdout.contains("can create files in the directory"),
        "{ok:?}"
    );

    sshd.stop();
    let down = sb.run(&["doctor"]);
    assert_eq!(down.code, 1, "{down:?}");
    assert!(down.all().contains("connection refused"), "{down:?}");
}

#[test]
fn a_connection_dropped_mid_apply_leaves_the_old_file_and_the_next_apply_converges() {
    let sshd = Sshd::start();
    let relay = Relay::to(sshd.port);
    std::fs::write(
        &sshd.known_hosts,
        sshd.known_hosts_line(sshd.port) + &sshd.known_hosts_line(relay.port),
    )
    .unwrap();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    let old = "TOKEN=\"old\"\n";
    std::fs::write(&file, old).unwrap();
    let mut m = sb.header();
    m.push_str("targets:\n  vps:\n    type: ssh_env\n");
    m.push_str(&sshd.yaml("root", 4).replace(
        &format!("port: {}", sshd.port),
        &format!("port: {}", relay.port),
    ));
    m.push_str(&format!("    path: {}\n", file.display()));
    m.push_str(&format!(
        "secrets:\n  TOKEN:\n    targets: [vps]\n    encrypted: |\n{}",
        sb.encrypted(CANARY_A, 6)
    ));
    sb.write("secrets.yaml", &m);

    sshd.hold_writes(true);
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["apply", "--auto-approve", "--identity"])
        .arg(&sb.identity);
    let running = std::thread::spawn(move || support::cli::run(cmd));
    sshd.wait_for_held_write();
    relay.cut();
    let apply = running.join().unwrap();
    assert_eq!(apply.code, 1, "{apply:?}");
    let all = apply.all();
    assert!(
        all.contains(&format!(
            "the SSH connection to root@127.0.0.1:{} was lost during the command",
            relay.port
        )),
        "{all}"
    );
    assert_no_canary("output", all.as_bytes(), &[CANARY_A]);
    assert!(all.contains("the file is either old or new"), "{all}");
    // The write may have landed before the cut: the message says so (#24).
    assert!(
        all.contains("may already hold the new values") && all.contains("a re-run converges"),
        "{all}"
    );
    // The host may already hold the whole input when the link drops: the
    // held command then finishes on its own. Either way, never a torn file.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let new = format!("TOKEN={CANARY_A}\n");
    let now = std::fs::read_to_string(&file).unwrap();
    assert!(now == old || now == new, "torn file: {now:?}");

    sshd.hold_writes(false);
    let again = sb.run(&["apply", "--auto-approve"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("TOKEN={CANARY_A}\n")
    );
}

#[test]
fn import_adopts_the_live_values_of_a_remote_file() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(
        &file,
        format!("# live\nexport TOKEN='{CANARY_A}'\nMULTI=\"line one\nline two\"\n"),
    )
    .unwrap();
    let mut m = sb.header();
    m.push_str("targets:\n  vps:\n    type: ssh_env\n");
    m.push_str(&sshd.yaml("root", 4));
    m.push_str(&format!("    path: {}\nsecrets: {{}}\n", file.display()));
    sb.write("secrets.yaml", &m);
    let out = sb.run(&["import", "--from", "vps"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("imported 2 secret(s) from `vps`: MULTI, TOKEN"),
        "{}",
        out.stderr
    );
    assert_no_canary(
        "import output",
        out.all().as_bytes(),
        &[CANARY_A, "line two"],
    );
    assert_no_canary(
        "remote command lines",
        sshd.commands().as_bytes(),
        &[CANARY_A],
    );
    assert!(
        !sb.read("secrets.yaml").contains(CANARY_A),
        "stored encrypted"
    );
    let get = sb.run(&["get", "TOKEN"]);
    assert_eq!((get.code, get.stdout.as_str()), (0, CANARY_A));
    let get = sb.run(&["get", "MULTI"]);
    assert_eq!(get.stdout, "line one\nline two");
    // The adopted values plan as in sync.
    assert_eq!(sb.run(&["plan", "--detailed-exitcode"]).code, 0);
}

// --ssh-persist: masters kept between runs.

fn run_env(sb: &Sandbox, args: &[&str], env: &[(&'static str, String)]) -> support::cli::Out {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.run_with(args, &env)
}

#[test]
fn ssh_persist_lets_the_next_run_skip_the_handshake() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.env"), dir.path().join("b.env"));
    let mut m = sb.header();
    m.push_str("targets:\n");
    for (name, host, path) in [("api", &sshd, &a), ("worker", &other, &b)] {
        m.push_str(&format!("  {name}:\n    type: ssh_env\n"));
        m.push_str(&host.yaml("root", 4));
        m.push_str(&format!("    path: {}\n", path.display()));
    }
    m.push_str(&format!(
        "secrets:\n  TOKEN:\n    targets: [api, worker]\n    encrypted: |\n{}",
        sb.encrypted(CANARY_A, 6)
    ));
    sb.write("secrets.yaml", &m);
    let kept = KeptMasters::new();
    let env = kept.env("30s");

    let plan = run_env(&sb, &["plan"], &env);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!((sshd.connections(), other.connections()), (1, 1));
    // One link per host, named by a hash: no host name in the folder.
    let links = kept.links();
    assert_eq!(links.len(), 2, "{links:?}");
    for l in &links {
        let name = l.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.len() == 16 && name.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
    }
    let mode = std::fs::metadata(kept.dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(
        !sshd.all_closed(Duration::from_millis(200)),
        "the master stays"
    );

    // The apply and the plan after it reuse both masters: no new login.
    let apply = run_env(&sb, &["apply", "--auto-approve"], &env);
    assert_eq!(apply.code, 0, "{apply:?}");
    let again = run_env(&sb, &["plan", "--detailed-exitcode"], &env);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!((sshd.connections(), other.connections()), (1, 1));
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        format!("TOKEN={CANARY_A}\n")
    );
    assert_eq!(
        std::fs::read_to_string(&b).unwrap(),
        format!("TOKEN={CANARY_A}\n")
    );
    // plan, apply (read, write, verify), plan: 5 commands per host.
    assert_eq!(sshd.command_count(), 5, "{}", sshd.commands());
    assert_no_canary(
        "remote command lines",
        sshd.commands().as_bytes(),
        &[CANARY_A],
    );

    // A master that ended (idle timeout, reboot) is replaced, not an error.
    kept.end_all();
    assert!(sshd.all_closed(Duration::from_secs(3)));
    let after = run_env(&sb, &["plan"], &env);
    assert_eq!(after.code, 0, "{after:?}");
    assert_eq!((sshd.connections(), other.connections()), (2, 2));
    assert_eq!(kept.links().len(), 2);

    // Without the option, the run closes what it opened.
    kept.end_all();
    let plain = sb.run(&["plan"]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert_eq!(sshd.connections(), 3);
    assert!(sshd.all_closed(Duration::from_secs(3)));
}

#[test]
fn ssh_persist_refuses_a_folder_others_can_enter_and_still_plans() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    manifest(
        &sb,
        &sshd,
        &[("api", "root", &dir.path().join("a.env"), "")],
        &[("TOKEN", CANARY_A)],
    );
    let kept = KeptMasters::new();
    std::fs::create_dir(kept.dir()).unwrap();
    std::fs::set_permissions(kept.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let plan = run_env(&sb, &["plan"], &kept.env("30s"));
    assert_eq!(plan.code, 0, "{plan:?}");
    let all = plan.all();
    assert!(all.contains("SSH connections are not kept"), "{all}");
    assert!(all.contains("mode 0700"), "{all}");
    assert!(kept.links().is_empty());
    assert!(
        sshd.all_closed(Duration::from_secs(3)),
        "closed at exit as usual"
    );
}

#[test]
fn a_master_that_ended_between_two_commands_is_replaced() {
    let mut sshd = Sshd::start();
    let pool = secretsync::remote::SshPool::default();
    let runner = secretsync::remote::Runner::Ssh(pool.host(&sshd.options("root")));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = rt.block_on(runner.sh("echo one", &[], b"", false)).unwrap();
    assert_eq!(&first.stdout[..], b"one\n");

    // The host goes away and comes back (a reboot, a restarted sshd): the
    // master sees its connection close and ends.
    sshd.stop();
    sshd.restart();
    std::thread::sleep(Duration::from_millis(500));

    let second = rt.block_on(runner.sh("echo two", &[], b"", false)).unwrap();
    assert_eq!(&second.stdout[..], b"two\n");
    assert_eq!(sshd.connections(), 2, "a new connection, not an error");
    drop(runner);
    rt.block_on(pool.close());
    assert!(sshd.all_closed(Duration::from_secs(3)));
}

#[test]
fn the_master_of_a_killed_run_ends_itself_after_an_hour_idle() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    manifest(
        &sb,
        &sshd,
        &[("vps", "root", &file, "")],
        &[("TOKEN", CANARY_A)],
    );

    // Kill the run while its write is held on the host: it cannot close
    // its master.
    sshd.hold_writes(true);
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["apply", "--auto-approve", "--identity"])
        .arg(&sb.identity)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    sshd.wait_for_held_write();
    child.kill().unwrap();
    child.wait().unwrap();

    // The master left behind was started with a bounded ControlPersist.
    let port = sshd.port.to_string();
    let masters: Vec<(u32, Vec<String>)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_master = args.first().is_some_and(|a| a.ends_with("ssh"))
                && args.iter().any(|a| a == "-M")
                && args.windows(2).any(|w| w[0] == "-p" && w[1] == port);
            is_master.then_some((pid, args))
        })
        .collect();
    for (pid, _) in &masters {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    sshd.hold_writes(false);
    assert_eq!(masters.len(), 1, "{masters:?}");
    assert!(
        masters[0].1.iter().any(|a| a == "ControlPersist=3600s"),
        "{:?}",
        masters[0].1
    );
}
