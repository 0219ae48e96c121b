#![allow(dead_code, unreachable_pub)]
//! Helpers shared by the integration tests: each file is one concern.

pub mod cli;
pub mod conformance;
pub mod railway_server;
pub mod sshd;
pub mod webhook;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The stand-in `security` (tests/support/security) as the tests run it: a
/// copy whose `#!` line names the python3 interpreter itself. Through
/// `/usr/bin/env python3` a pyenv shim (a bash script running readlink,
/// basename and friends) would start before every call, costing more CPU
/// than the stand-in does. Made once per test process, in cargo's
/// per-target temp dir.
pub fn security_standin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let source =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/security");
        let text = std::fs::read_to_string(&source).unwrap();
        let body = text.split_once('\n').map_or("", |(_, rest)| rest);
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs the stand-in security");
        let python = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(
            python.starts_with('/'),
            "python3 has no interpreter path: {python:?}"
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("standin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("security");
        std::fs::write(&path, format!("#!{python} -S\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
    .clone()
}
