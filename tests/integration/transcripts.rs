//! Whole-output tests (#17): the complete stdout, stderr and exit code of
//! the main commands, in every format, compared with transcripts under
//! tests/golden/transcripts/. A stray line (an annotation in a PR comment, a
//! progress line in JSON, a missing error) fails here. `UPDATE_GOLDEN=1`
//! rewrites the files; review the diff.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::workflow::scenario;
use support::cli::{assert_no_canary, secretsync_cmd, Sandbox};

const CANARIES: &[&str] = &[
    "CANARY-alpha",
    "CANARY-old-alpha",
    "CANARY-bravo",
    "CANARY-new",
];

/// Runs each step and writes what a terminal-less user would see.
struct Transcript<'a> {
    sb: &'a Sandbox,
    text: String,
}

impl<'a> Transcript<'a> {
    fn new(sb: &'a Sandbox) -> Self {
        Transcript {
            sb,
            text: String::new(),
        }
    }

    fn step(&mut self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> &mut Self {
        let mut cmd = secretsync_cmd(self.sb.dir.path());
        cmd.args(args)
            .arg("--identity")
            .arg(&self.sb.identity)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        let o = child.wait_with_output().unwrap();
        let env_text: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let stdin_text = stdin.map_or(String::new(), |s| format!("echo <{} bytes> | ", s.len()));
        self.text.push_str(&format!(
            "$ {stdin_text}{env_text}secretsync {}\n[exit {}]\n--- stdout\n{}--- stderr\n{}\n",
            args.join(" "),
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        ));
        self
    }

    fn run(&mut self, args: &[&str]) -> &mut Self {
        self.step(args, &[], None)
    }

    /// As [`Transcript::check`], with the manifest's line numbers replaced:
    /// age output has a random length, so lines after a value move.
    fn check_without_line_numbers(&mut self, name: &str) {
        self.text = self
            .text
            .lines()
            .map(|l| {
                let l = match l.split_once(" --> secrets.yaml:") {
                    Some((head, _)) => format!("{head} --> secrets.yaml:<line>:<col>"),
                    None => l.to_string(),
                };
                match l.split_once(" |") {
                    Some((n, rest))
                        if !n.is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()) =>
                    {
                        format!("N |{rest}")
                    }
                    _ => l,
                }
            })
            .map(|l| l + "\n")
            .collect();
        self.check(name);
    }

    fn check(&self, name: &str) {
        assert_no_canary(name, self.text.as_bytes(), CANARIES);
        let actual = self
            .text
            .replace(&self.sb.dir.path().display().to_string(), "<dir>")
            .replace(&self.sb.recipient.to_string(), "<recipient>")
            .replace(&secretsync::time::today(), "<today>");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/transcripts")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("no transcript {}: run with UPDATE_GOLDEN=1", path.display())
        });
        if actual != expected {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            panic!("output differs from tests/golden/transcripts/{name}:\n{diff}");
        }
    }
}

const GH: (&str, &str) = ("GITHUB_ACTIONS", "true");

#[test]
fn plan_in_every_format_and_mode() {
    let sb = scenario();
    let mut t = Transcript::new(&sb);
    t.run(&["plan"])
        .run(&["plan", "-q", "--detailed-exitcode"])
        .run(&["plan", "-q", "--detailed-exitcode", "-t", "clean"])
        .run(&[
            "plan",
            "--detailed-exitcode",
            "-t",
            "drift",
            "-t",
            "missing",
        ])
        .step(&["plan", "--format", "markdown"], &[GH], None)
        .step(
            &["plan", "--format", "json", "-t", "drift", "-t", "broken"],
            &[GH],
            None,
        )
        .run(&["plan", "--out", "plan.json"])
        .run(&["doctor", "-q"]);
    t.check("plan.txt");
}

#[test]
fn apply_in_every_format_and_mode() {
    let sb = scenario();
    let mut t = Transcript::new(&sb);
    t.step(&["apply", "--auto-approve"], &[GH], None);
    // Converged where it could: only the broken target is left.
    t.run(&["apply", "-q", "--auto-approve"])
        .run(&[
            "apply",
            "--auto-approve",
            "--format",
            "json",
            "-t",
            "broken",
        ])
        .run(&[
            "apply",
            "--auto-approve",
            "--format",
            "markdown",
            "-t",
            "clean",
        ]);
    t.check("apply.txt");
}

#[test]
fn errors_that_end_a_command() {
    let sb = scenario();
    let mut t = Transcript::new(&sb);
    sb.write(
        "bad.yaml",
        "version: 1\nsecrets:\n  A:\n    targets: api\n    value: x\n",
    );
    t.run(&["-f", "bad.yaml", "plan"])
        .run(&["-f", "bad.yaml", "plan", "--format", "json", "-q"])
        .run(&["-f", "missing.yaml", "doctor", "--format", "json"])
        .run(&["apply", "--format", "json"])
        .run(&["plan", "-t", "nope"]);
    t.check("errors.txt");
}

#[test]
fn editing_commands() {
    let sb = scenario();
    let mut t = Transcript::new(&sb);
    t.step(
        &["set", "NEW", "--stdin", "-t", "clean"],
        &[],
        Some("CANARY-new\n"),
    )
    .step(
        &["set", "NEW", "--stdin", "-t", "drift"],
        &[],
        Some("CANARY-new"),
    )
    .step(&["set", "my-key", "--stdin", "-t", "clean"], &[], Some("x"))
    .step(&["set", "EMPTY", "--stdin", "-t", "clean"], &[], Some(""))
    .step(&["set", "B", "--stdin"], &[], Some("CANARY-bravo-2"))
    .step(
        &["set", "PORT", "--plain", "--stdin", "-t", "clean"],
        &[],
        Some("8080"),
    )
    .run(&["targets", "add", "NEW", "drift", "missing"])
    .run(&["targets", "remove", "NEW", "missing"])
    .run(&["rotate", "NEW", "-q"])
    .run(&["unset", "NEW"])
    .run(&[
        "target",
        "add",
        "extra",
        "--type",
        "env_file",
        "--path",
        "extra.env",
        "--create",
    ])
    .run(&[
        "target",
        "add",
        "vps",
        "--type",
        "ssh_env",
        "--path",
        "/srv/.env",
    ])
    .run(&["target", "remove", "clean"])
    .run(&["target", "remove", "extra"])
    .run(&["target", "list"])
    .run(&["recipients", "remove", &sb.recipient.to_string()])
    .run(&["plan", "-t", "drift"]);
    t.check_without_line_numbers("edit.txt");
}
