//! Two applies at once on one file (#24): both planned from the same text,
//! one for value A and one for value B. At most one may write; the other is
//! refused (the file changed since it was read, or its plan is stale), and
//! the file ends holding the value of the one that reported "applied".
//! Before the writers' lock, both could write and one "applied" was lost.

use crate::support;

use std::path::Path;
use std::process::Stdio;

use support::cli::{secretsync_cmd, Sandbox};
use support::sshd::Sshd;

fn pairs() -> usize {
    std::env::var("SECRETSYNC_RACE_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

fn race(sb: &Sandbox, target: &str, file: &Path) -> String {
    let bulk: String = (0..200)
        .map(|i| format!("BULK{i}={}\n", "b".repeat(2_000)))
        .collect();
    for side in ["a", "b"] {
        sb.write(
            &format!("{side}.yaml"),
            &format!(
                "{}targets:\n  app:\n{target}secrets:\n  K:\n    targets: [app]\n    value: \"{side}-value\"\n",
                sb.header()
            ),
        );
    }
    let (mut both, mut one, mut lost) = (0, 0, 0);
    // Every pair starts from the same text: the two saved plans hold for all.
    std::fs::write(file, format!("{bulk}K=base\n")).unwrap();
    for side in ["a", "b"] {
        let out = sb.run(&[
            "plan",
            "-f",
            &format!("{side}.yaml"),
            "--out",
            &format!("{side}.plan"),
        ]);
        assert!(out.code == 0 || out.code == 2, "{out:?}");
    }
    for pair in 0..pairs() {
        std::fs::write(file, format!("{bulk}K=base\n")).unwrap();
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|side| {
                let mut cmd = secretsync_cmd(sb.dir.path());
                cmd.args([
                    "apply",
                    &format!("{side}.plan"),
                    "-f",
                    &format!("{side}.yaml"),
                ])
                .arg("--identity")
                .arg(&sb.identity)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        let outs: Vec<(i32, String)> = children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().unwrap();
                (
                    o.status.code().unwrap_or(-1),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    ),
                )
            })
            .collect();
        let now = std::fs::read_to_string(file).unwrap();
        let winners: Vec<usize> = (0..2).filter(|&i| outs[i].0 == 0).collect();
        if winners.len() == 2 {
            both += 1;
        }
        for (i, (code, said)) in outs.iter().enumerate() {
            if *code == 0 {
                continue;
            }
            // A refusal says why nothing was written; a write that was
            // silently replaced would say it did not converge.
            let refused = said.contains("changed since it was read")
                || said.contains("stale")
                || said.contains("being written by another secretsync");
            if !refused {
                lost += 1;
                eprintln!("pair {pair}: side {i} neither applied nor refused: {said}");
            }
        }
        if winners.len() == 1 {
            one += 1;
            let side = ["a", "b"][winners[0]];
            assert!(
                now.ends_with(&format!("K={side}-value\n")),
                "pair {pair}: {side} reported applied but the file holds another value"
            );
        }
    }
    format!(
        "{} pairs: {both} both applied, {one} exactly one applied, {lost} writes lost without a refusal",
        pairs()
    )
}

fn check(figures: String) {
    eprintln!("{figures}");
    assert!(
        figures.contains(" 0 both applied") && figures.contains(" 0 writes lost"),
        "{figures}"
    );
}

#[test]
fn two_applies_on_one_local_file_never_both_win() {
    let sb = Sandbox::new();
    let file = sb.path("app.env");
    let figures = race(&sb, "    type: env_file\n    path: app.env\n", &file);
    check(format!("env_file: {figures}"));
}

#[test]
fn two_applies_on_one_remote_file_never_both_win() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let remote = tempfile::tempdir().unwrap();
    let file = remote.path().join("app.env");
    let target = format!(
        "    type: ssh_env\n{}    path: {}\n",
        sshd.yaml("root", 4),
        file.display()
    );
    let figures = race(&sb, &target, &file);
    check(format!("ssh_env: {figures}"));
}
