//! Round trips through the real programs that read env files.
//!
//! For every `format:` and a corpus of tricky values, the file secretsync
//! writes (through `envfile_target::edited`, what the local and SSH targets call) is
//! read by each real reader: dash, bash, python-dotenv, systemd's own
//! EnvironmentFile= parser (`load_env_file()` from libsystemd-shared, called
//! through ctypes: no running systemd needed), node's `dotenv` package,
//! `node --env-file`, and dotenvy. Each value a format accepts must read back
//! byte for byte in every reader that format promises; each value it refuses
//! must be refused with the readers and formats named. docker compose's
//! parser (compose-go) is not available here: its format follows its
//! documented rules and is not measured.
//!
//! A planted command in a value never runs when a written file is sourced by
//! sh or bash, whatever the format.
//!
//! The readers are installed by .ci/run (apt: dash, bash, systemd, nodejs;
//! pip: python-dotenv; npm ci in tests/readers). A missing reader fails the
//! test with that hint rather than skipping it. `cargo test --test readers --
//! --nocapture` prints the table of formats × readers (docs/env-formats.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use secretsync::envfile;
use secretsync::envfile::Format;
use secretsync::secret::Secret;
use secretsync::targets::envfile_target;
use secretsync::targets::{Change, Op};

const PREFIX: &str = "SS_T_";

/// Tricky values: (label, value). Labels show in failures and the table.
fn corpus() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = [
        ("empty", ""),
        ("plain", "plain"),
        ("one space", " "),
        ("inner space", "with space"),
        ("leading spaces", "  leading"),
        ("trailing spaces", "trailing  "),
        ("tabs", "\ttab\tinside\t"),
        ("double quote", "double \" quote"),
        ("single quote", "single ' quote"),
        ("both quotes", "both ' and \" quotes"),
        ("single-quoted text", "'single-quoted'"),
        ("double-quoted text", "\"double-quoted\""),
        ("$VAR", "$HOME"),
        ("${VAR}", "${HOME}"),
        ("${VAR:-default}", "${HOME:-x}"),
        ("$(cmd)", "$(touch pwned-dollar)"),
        ("backticks", "`touch pwned-backtick`"),
        ("dollar digit", "price $5"),
        ("quote and $", "it's $HOME"),
        ("quote and $(cmd)", "it's $(touch pwned-quote-dollar)"),
        ("quote and backticks", "it's `touch pwned-quote-backtick`"),
        ("lone backslash", "\\"),
        ("final backslash", "ends with backslash\\"),
        ("double backslash", "\\\\two"),
        ("\\n text", "\\n is not a newline"),
        ("\\t \\r \\0 text", "\\t \\r \\0"),
        ("backslash before \"", "\\\""),
        ("backslash before '", "\\'"),
        ("backslash before $", "\\$HOME"),
        ("backslash before `", "\\`"),
        ("backslash before #", "\\#"),
        ("backslash before space", "a\\ b"),
        ("backslash before newline", "a\\\nb"),
        ("# first", "#starts with hash"),
        ("# after space", "middle # hash"),
        ("# last", "ends with #"),
        ("# inside", "a#b"),
        ("= first", "=starts"),
        ("= inside", "a=b=c"),
        ("looks like a line", "KEY=value # comment"),
        ("export text", "export X=1"),
        ("unicode", "unicode é ü 漢字 🔑"),
        ("invisible unicode", "\u{a0}nbsp\u{200b}zwsp\u{feff}"),
        ("two lines", "line1\nline2"),
        ("trailing newline", "trailing newline\n"),
        ("only a newline", "\n"),
        ("multi-line mix", "multi\n  indented\n\"quoted\"\n$var\\"),
        (
            "multi-line with quote and $",
            "multi\nline with 'quote' and $x",
        ),
        ("tilde", "~/path"),
        ("shell operators", "a;b|c&d>e<f"),
        ("globs", "*glob?[x]"),
        ("railway reference", "${{shared.DATABASE_URL}}"),
        ("percent specifiers", "%h %n %%"),
        ("bang", "!history !!"),
        ("semicolon comment", ";not a comment"),
    ]
    .into_iter()
    .map(|(l, v)| (l, v.to_string()))
    .collect();
    v.push(("very long (64 KiB)", "abc-".repeat(16 * 1024)));
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reader {
    Dash,
    Bash,
    Systemd,
    PythonDotenv,
    NodeDotenv,
    NodeEnvFile,
    Dotenvy,
}

const READERS: [Reader; 7] = [
    Reader::Dash,
    Reader::Bash,
    Reader::Systemd,
    Reader::PythonDotenv,
    Reader::NodeDotenv,
    Reader::NodeEnvFile,
    Reader::Dotenvy,
];

impl Reader {
    fn name(self) -> &'static str {
        match self {
            Reader::Dash => "sh (dash)",
            Reader::Bash => "bash",
            Reader::Systemd => "systemd",
            Reader::PythonDotenv => "python-dotenv",
            Reader::NodeDotenv => "node dotenv",
            Reader::NodeEnvFile => "node --env-file",
            Reader::Dotenvy => "dotenvy",
        }
    }
}

/// The readers each format promises to be read exactly by (compose: none
/// runnable here).
fn promised(format: Format) -> &'static [Reader] {
    match format {
        Format::Dotenv => &READERS,
        Format::Shell => &[Reader::Dash, Reader::Bash],
        Format::Systemd => &[Reader::Systemd],
        Format::Compose => &[],
        Format::PythonDotenv => &[Reader::PythonDotenv],
        Format::Node => &[Reader::NodeDotenv, Reader::NodeEnvFile],
    }
}

/// The real python3 (not a pyenv shim, which needs the environment the
/// readers run without), the one pip installed python-dotenv for.
fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3: {e}; {HINT}"));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

fn readers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/readers")
}

const HINT: &str = "install the readers with `bash .ci/run` (or see its reader section)";

/// What `reader` reads from `file`: `Err` when it refuses the file.
fn read(reader: Reader, file: &Path, cwd: &Path) -> Result<BTreeMap<String, String>, String> {
    if reader == Reader::Dotenvy {
        let mut out = BTreeMap::new();
        for item in dotenvy::from_path_iter(file).map_err(|e| e.to_string())? {
            let (k, v) = item.map_err(|e| e.to_string())?;
            if k.starts_with(PREFIX) {
                out.insert(k, v);
            }
        }
        return Ok(out);
    }
    let dir = readers_dir();
    let file_arg = file.display().to_string();
    let mut cmd = match reader {
        Reader::Dash | Reader::Bash | Reader::Systemd | Reader::PythonDotenv => {
            let name = match reader {
                Reader::Dash => "sh",
                Reader::Bash => "bash",
                Reader::Systemd => "systemd",
                _ => "python-dotenv",
            };
            let mut c = Command::new(python());
            c.arg(dir.join("read.py")).args([name, &file_arg, PREFIX]);
            c
        }
        Reader::NodeDotenv => {
            let mut c = Command::new("node");
            c.arg(dir.join("read.js"))
                .args(["dotenv", &file_arg, PREFIX]);
            c
        }
        Reader::NodeEnvFile => {
            let mut c = Command::new("node");
            c.arg(format!("--env-file={file_arg}"))
                .arg(dir.join("read.js"))
                .args(["env-file", "-", PREFIX]);
            c
        }
        Reader::Dotenvy => unreachable!(),
    };
    // A clean environment, so nothing but the file defines SS_T_ keys;
    // HOME is set so that an expansion shows.
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .current_dir(cwd);
    if let Ok(p) = std::env::var("PYTHONPATH") {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {HINT}", reader.name()));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if stderr.contains("ModuleNotFoundError")
        || stderr.contains("Cannot find module")
        || stderr.contains("is not installed")
    {
        panic!("{} is missing: {stderr}\n{HINT}", reader.name());
    }
    if !out.status.success() {
        return Err(stderr);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {stderr}"))
}

/// The file `format` writes for `values` (keys SS_T_<index>), on top of a
/// file with an `export` line and inline comments to edit. Returns the keys
/// written and the refused (index, message).
fn write_file(
    format: Format,
    values: &[(&str, String)],
) -> (String, Vec<usize>, Vec<(usize, String)>) {
    let existing = format!(
        "# written by hand\nexport {PREFIX}1='old' # inline comment\n\n{PREFIX}2=old\n{PREFIX}2=older\n"
    );
    let mut changes = Vec::new();
    let (mut written, mut refused) = (Vec::new(), Vec::new());
    for (i, (_, v)) in values.iter().enumerate() {
        let value = Secret::new(v.clone());
        match envfile::check_value(format, &value) {
            Ok(()) => {
                written.push(i);
                changes.push(Change {
                    key: format!("{PREFIX}{i}"),
                    op: Op::Update(value),
                });
            }
            Err(why) => refused.push((i, why)),
        }
    }
    let text = envfile_target::edited("test.env", Some(existing.as_bytes()), &changes, format)
        .unwrap_or_else(|e| panic!("{format}: {e}"));
    (text.to_string(), written, refused)
}

struct Cell {
    exact: usize,
    written: usize,
    failed: Option<String>,
    misread: Vec<&'static str>,
}

#[test]
fn every_format_reads_back_exactly_in_its_readers_or_refuses() {
    let values = corpus();
    assert!(values.len() >= 40);
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut table = String::new();
    table.push_str(&format!(
        "| format | refused | {} |\n|---|---|{}\n",
        READERS.map(Reader::name).join(" | "),
        "---|".repeat(READERS.len())
    ));
    for format in Format::ALL {
        let (text, written, refused) = write_file(format, &values);
        let file = dir.path().join(format!("{format}.env"));
        std::fs::write(&file, &text).unwrap();
        for (i, why) in &refused {
            // The message plan shows: the format, who misreads, what fits;
            // never the value.
            if !(why.contains(&format!("`format: {format}`")) && why.contains("read back exactly"))
            {
                problems.push(format!(
                    "{format}: refusal of {:?} says: {why}",
                    values[*i].0
                ));
            }
            if !values[*i].1.is_empty() && why.contains(values[*i].1.as_str()) {
                problems.push(format!(
                    "{format}: refusal of {:?} shows the value",
                    values[*i].0
                ));
            }
        }
        let mut cells = Vec::new();
        for reader in READERS {
            let got = read(reader, &file, dir.path());
            let cell = match got {
                Err(e) => Cell {
                    exact: 0,
                    written: written.len(),
                    failed: Some(e.lines().last().unwrap_or("").to_string()),
                    misread: vec![],
                },
                Ok(map) => {
                    let mut misread = Vec::new();
                    for &i in &written {
                        if map.get(&format!("{PREFIX}{i}")) != Some(&values[i].1) {
                            misread.push(values[i].0);
                        }
                    }
                    Cell {
                        exact: written.len() - misread.len(),
                        written: written.len(),
                        failed: None,
                        misread,
                    }
                }
            };
            if promised(format).contains(&reader)
                && (cell.failed.is_some() || !cell.misread.is_empty())
            {
                problems.push(format!(
                    "{format}: {} misreads {:?} (fails: {:?})",
                    reader.name(),
                    cell.misread,
                    cell.failed
                ));
            }
            cells.push(cell);
        }
        let row: Vec<String> = READERS
            .iter()
            .zip(&cells)
            .map(|(r, c)| {
                let mark = if promised(format).contains(r) {
                    "**"
                } else {
                    ""
                };
                match &c.failed {
                    Some(_) => format!("{mark}file refused{mark}"),
                    None => format!("{mark}{}/{}{mark}", c.exact, c.written),
                }
            })
            .collect();
        table.push_str(&format!(
            "| `{format}` | {}/{} | {} |\n",
            refused.len(),
            values.len(),
            row.join(" | ")
        ));
        for (r, c) in READERS.iter().zip(&cells) {
            if !c.misread.is_empty() {
                eprintln!("{format} × {}: misread {:?}", r.name(), c.misread);
            }
            if let Some(f) = &c.failed {
                eprintln!("{format} × {}: {f}", r.name());
            }
        }
    }
    eprintln!("\n{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// No value runs a command when a written file is sourced by sh or bash,
/// whatever the format (the file may fail to source: that runs nothing).
#[test]
fn sourcing_a_written_file_never_runs_a_value() {
    let values = corpus();
    let dir = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let (text, _, _) = write_file(format, &values);
        let file = dir.path().join(format!("{format}.env"));
        std::fs::write(&file, &text).unwrap();
        for reader in [Reader::Dash, Reader::Bash] {
            let _ = read(reader, &file, dir.path());
            let planted: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("pwned"))
                .collect();
            assert!(
                planted.is_empty(),
                "sourcing the {format} file with {} ran {planted:?}",
                reader.name()
            );
        }
    }
    // The shell format holds every value, the planted commands included.
    let (_, written, refused) = write_file(Format::Shell, &values);
    assert!(refused.is_empty());
    assert_eq!(written.len(), values.len());
}
