//! The action's install script (scripts/install.sh, run by action.yml),
//! against a local "release" served as file://: a pinned checksum installs
//! and puts the folder on GITHUB_PATH; a wrong one installs nothing.
//! Needs bash, curl, tar and sha256sum (installed by .ci/run).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const TARGET: &str = "x86_64-unknown-linux-gnu";
const VERSION: &str = "v9.9.9";

/// A release folder `<root>/<version>/` holding the archive of the real
/// binary and a SHA256SUMS, as release.yml publishes them.
fn release(root: &Path) -> (String, String) {
    let stage = root.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    // A stand-in binary: the script under test only moves and checks bytes,
    // and a 100 MB debug build would make each case slow.
    let bin = stage.join("secretsync");
    std::fs::write(&bin, "#!/bin/sh\necho \"secretsync 9.9.9\"\n").unwrap();
    std::fs::set_permissions(
        &bin,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )
    .unwrap();
    let dir = root.join("releases").join(VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    let archive = format!("secretsync-{VERSION}-{TARGET}.tar.gz");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&stage)
        .arg("-czf")
        .arg(dir.join(&archive))
        .arg("secretsync")
        .status()
        .unwrap();
    assert!(status.success());
    let sum = hex::encode(Sha256::digest(std::fs::read(dir.join(&archive)).unwrap()));
    std::fs::write(dir.join("SHA256SUMS"), format!("{sum}  {archive}\n")).unwrap();
    (format!("file://{}", root.join("releases").display()), sum)
}

fn install(root: &Path, base: &str, env: &[(&str, &str)]) -> (i32, String, PathBuf) {
    let dir = root.join("bin");
    let gh_path = root.join("github_path");
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .env("SECRETSYNC_VERSION", VERSION)
        .env("SECRETSYNC_BASE_URL", base)
        .env("SECRETSYNC_TARGET", TARGET)
        .env("INSTALL_DIR", &dir)
        .env("GITHUB_PATH", &gh_path)
        .env_remove("SECRETSYNC_SHA256");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        dir.join("secretsync"),
    )
}

#[test]
fn a_pinned_checksum_installs_and_puts_secretsync_on_path() {
    let root = tempfile::tempdir().unwrap();
    let (base, sum) = release(root.path());
    let (code, stderr, bin) = install(root.path(), &base, &[("SECRETSYNC_SHA256", &sum)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "installed secretsync {VERSION} ({TARGET}) in {}\n",
            root.path().join("bin").display()
        )
    );
    // Installed executable (the archive held it 0644), and it runs.
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout), "secretsync 9.9.9\n");
    assert_eq!(
        std::fs::read_to_string(root.path().join("github_path")).unwrap(),
        format!("{}\n", root.path().join("bin").display())
    );
}

#[test]
fn without_a_pin_the_release_sha256sums_is_used_and_said() {
    let root = tempfile::tempdir().unwrap();
    let (base, _) = release(root.path());
    let (code, stderr, bin) = install(root.path(), &base, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.starts_with(
            "install secretsync: no pinned checksum given; using the release's SHA256SUMS\n"
        ),
        "{stderr}"
    );
    assert!(bin.exists());
}

#[test]
fn a_wrong_checksum_or_a_tampered_archive_installs_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (base, sum) = release(root.path());
    let wrong = format!("{}0", &sum[..63]);
    let wrong = if wrong == sum {
        format!("{}1", &sum[..63])
    } else {
        wrong
    };
    let (code, stderr, bin) = install(root.path(), &base, &[("SECRETSYNC_SHA256", &wrong)]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("checksum mismatch for secretsync-v9.9.9-x86_64-unknown-linux-gnu.tar.gz"),
        "{stderr}"
    );
    assert!(stderr.ends_with("nothing was installed\n"), "{stderr}");
    assert!(!bin.exists());
    assert!(!root.path().join("github_path").exists());

    // The archive swapped after SHA256SUMS was published.
    let archive = root
        .path()
        .join("releases")
        .join(VERSION)
        .join(format!("secretsync-{VERSION}-{TARGET}.tar.gz"));
    std::fs::write(&archive, b"not the release").unwrap();
    let (code, stderr, bin) = install(root.path(), &base, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(!bin.exists());
}

#[test]
fn bad_versions_and_missing_releases_are_said() {
    let root = tempfile::tempdir().unwrap();
    let (base, _) = release(root.path());
    let (code, stderr, _) = install(
        root.path(),
        &base,
        &[("SECRETSYNC_VERSION", "v1; rm -rf /")],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("has characters a release tag does not have"),
        "{stderr}"
    );
    let (code, stderr, _) = install(root.path(), &base, &[("SECRETSYNC_VERSION", "v0.0.1")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot download"), "{stderr}");
}
