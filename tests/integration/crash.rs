//! Crash safety: SIGKILL `secretsync apply` at random points, many times.
//! The env file must always be the complete old or the complete new
//! content, and the next apply must converge.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::cli::{secretsync_cmd, Sandbox};
use support::sshd::Sshd;

/// Kill points tried per run (CI); SECRETSYNC_CRASH_RUNS raises it.
fn runs() -> usize {
    std::env::var("SECRETSYNC_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// A manifest of `n` plain settings on one env file (plain values keep the
/// run short, so the kills land across its whole length, write included).
fn setup(sb: &Sandbox, target: &str, n: usize, generation: &str) {
    let mut m = format!("version: 1\ntargets:\n  app:\n{target}secrets:\n");
    for i in 0..n {
        m.push_str(&format!(
            "  K{i}:\n    targets: [app]\n    value: \"{generation}-{i}-{}\"\n",
            "x".repeat(40)
        ));
    }
    sb.write("secrets.yaml", &m);
}

fn expected(n: usize, generation: &str, header: &str) -> String {
    let mut s = header.to_string();
    for i in 0..n {
        s.push_str(&format!("K{i}={generation}-{i}-{}\n", "x".repeat(40)));
    }
    s
}

#[test]
fn sigkill_during_apply_never_leaves_a_torn_file() {
    let sb = Sandbox::new();
    let file = sb.path("app.env");
    crash_loop(
        &sb,
        "    type: env_file\n    path: app.env\n",
        &file,
        runs(),
    );
}

/// Over SSH the remote write outlives a killed sender (its input just ends
/// early): the host must still install the whole new file or nothing.
#[test]
fn sigkill_during_apply_over_ssh_never_leaves_a_torn_file() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let file = sb.path("remote.env");
    let target = format!(
        "    type: ssh_env\n{}    path: {}\n",
        sshd.yaml("root", 4),
        file.display()
    );
    crash_loop(&sb, &target, &file, runs().div_ceil(2));
}

/// The file once no write is under way on it any more (a remote write may
/// still finish after the local process died).
fn settled(file: &Path) -> String {
    let dir = file.parent().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let busy = std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".secretsync")
        });
        if !busy || Instant::now() > deadline {
            std::thread::sleep(Duration::from_millis(50));
            return std::fs::read_to_string(file).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn crash_loop(sb: &Sandbox, target: &str, file: &Path, runs: usize) {
    let n = 1500;
    let header = "# app settings\n";
    let read = || std::fs::read_to_string(file).unwrap();
    // Generation 0 is on disk; every run applies the next generation.
    std::fs::write(file, expected(n, "g0", header)).unwrap();

    // How long one full apply takes, to spread the kill points over it.
    setup(sb, target, n, "probe");
    let t = Instant::now();
    let out = sb.run(&["apply", "--auto-approve", "-q"]);
    assert_eq!(out.code, 0, "{out:?}");
    let full = t.elapsed();
    let mut old = {
        let probe = expected(n, "probe", header);
        assert_eq!(read(), probe);
        probe
    };

    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut saw_old, mut saw_new) = (0, 0);
    for run in 0..runs {
        let generation = format!("g{}", run + 1);
        setup(sb, target, n, &generation);
        let new = expected(n, &generation, header);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Half the kills anywhere in the run, half in its last 40% and a
        // little past it, where the file is written and renamed.
        let span = full.as_micros() as u64 + 1;
        let delay = if run % 2 == 0 {
            Duration::from_micros(seed % span)
        } else {
            Duration::from_micros(span * 6 / 10 + seed % (span / 2))
        };

        let mut cmd = secretsync_cmd(sb.dir.path());
        cmd.args(["apply", "--auto-approve", "-q", "--identity"])
            .arg(&sb.identity);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let now = settled(file);
        if now == old {
            saw_old += 1;
        } else if now == new {
            saw_new += 1;
        } else {
            panic!("run {run}: after SIGKILL at {delay:?} the file is neither the old nor the new content ({} bytes)", now.len());
        }
        // The next apply converges whatever the kill left.
        let out = sb.run(&["apply", "--auto-approve", "-q"]);
        assert_eq!(out.code, 0, "run {run}: {out:?}");
        assert_eq!(read(), new);
        old = new;
    }
    eprintln!("{runs} kill points over {full:?}: {saw_old} left the old file, {saw_new} the new one, 0 torn");
    assert_eq!(saw_old + saw_new, runs);
}
