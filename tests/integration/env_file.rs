//! The local `env_file` target: the shared conformance suite in a temp dir,
//! then what only a local file has (modes, owners, symlinks, temp files,
//! byte-identical untouched lines, errors that name the path and line).

use crate::secretsync_conformance_tests;
use crate::support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secretsync::envfile::EnvFile;
use secretsync::envfile::Format;
use secretsync::secret::Secret;
use secretsync::targets::env_file::EnvFileSpec;
use secretsync::targets::env_file::LocalEnvFile;
use secretsync::targets::{Context, ErrorKind, Target};
use support::conformance::{self as c, add, delete, read, update, value_of, Fixture, TAMPERED};

/// A temp dir with `app.env` in it (missing at first).
struct LocalFixture {
    dir: tempfile::TempDir,
    create: bool,
}

impl LocalFixture {
    fn new() -> Self {
        LocalFixture {
            dir: tempfile::tempdir().unwrap(),
            create: true,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("app.env")
    }

    fn local(&self) -> LocalEnvFile {
        self.local_at("app.env")
    }

    fn local_at(&self, rel: &str) -> LocalEnvFile {
        let spec = EnvFileSpec {
            path: rel.into(),
            prune: false,
            create: self.create,
            // The conformance cases write every tricky value: shell holds
            // them all (tests/readers.rs covers each format and its readers).
            format: Format::Shell,
            live: Default::default(),
        };
        LocalEnvFile::new("local", &spec, &Context::new(self.dir.path().to_path_buf())).unwrap()
    }

    /// Names in the directory: a leftover temp file shows up here.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[async_trait]
impl Fixture for LocalFixture {
    fn target(&self) -> Box<dyn Target> {
        Box::new(self.local())
    }

    async fn tamper(&self, key: &str) {
        let text = fs::read_to_string(self.path()).unwrap_or_default();
        let mut doc = EnvFile::parse(&text).unwrap();
        doc.apply(&[update(key, TAMPERED)], Default::default())
            .unwrap();
        fs::write(self.path(), doc.render()).unwrap();
    }

    fn can_hold(&self, value: &str) -> bool {
        !value.contains(['\0', '\r'])
    }

    fn lists_all(&self) -> bool {
        true
    }
}

secretsync_conformance_tests!(LocalFixture::new());

#[tokio::test]
async fn every_case_in_turn_on_one_file() {
    let f = LocalFixture::new();
    c::run_all(&f).await;
    assert_eq!(f.listing(), ["app.env"]);
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn mode_is_kept() {
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1\n").unwrap();
    fs::set_permissions(f.path(), fs::Permissions::from_mode(0o640)).unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[update("A", "2")]).await;
    assert_eq!(mode(&f.path()), 0o640);
    assert_eq!(fs::read_to_string(f.path()).unwrap(), "A=2\n");
}

#[tokio::test]
async fn new_file_is_0600() {
    let f = LocalFixture::new();
    let t = f.local();
    let obs = read(&t, &[]).await;
    assert!(!obs.exists && obs.complete && obs.snapshot().is_none());
    c::write(&t, &obs, &[add("A", "1")]).await;
    assert_eq!(mode(&f.path()), 0o600);
    assert_eq!(fs::read_to_string(f.path()).unwrap(), "A=1\n");
}

#[tokio::test]
async fn owner_is_kept() {
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1\n").unwrap();
    let me = fs::metadata(f.path()).unwrap().uid();
    // As root the file can belong to someone else: the write must keep that.
    let (uid, gid) = if me == 0 {
        std::os::unix::fs::chown(f.path(), Some(4321), Some(4322)).unwrap();
        (4321, 4322)
    } else {
        let m = fs::metadata(f.path()).unwrap();
        (m.uid(), m.gid())
    };
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[update("A", "2")]).await;
    let m = fs::metadata(f.path()).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
}

const HAND_WRITTEN: &str = concat!(
    "# Production settings\n",
    "#   edited by hand\n",
    "\n",
    "export   API_URL = https://api.example.com   # the API\n",
    "TOKEN='old-token'\n",
    "  INDENTED=\"keep\\tme\"  \n",
    "MULTI=\"line one\n",
    "line two\"\n",
    "\tGONE=bye\n",
    "WEIRD_QUOTES=\"a 'b' \\$c\"\n",
    "TOKEN=\"second definition\"\n",
    "LAST=no-final-newline",
);

#[tokio::test]
async fn untouched_lines_stay_byte_identical() {
    let f = LocalFixture::new();
    fs::write(f.path(), HAND_WRITTEN).unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    // Defined twice: readers disagree which wins, so the key is noted and
    // never in sync until one definition is left.
    assert_eq!(
        value_of(&obs, "TOKEN").as_deref(),
        Some("second definition")
    );
    assert!(obs.is_duplicated("TOKEN"));
    assert!(
        obs.notes
            .iter()
            .any(|n| n.contains("`TOKEN` is defined on lines")),
        "{:?}",
        obs.notes
    );
    assert_eq!(
        value_of(&obs, "MULTI").as_deref(),
        Some("line one\nline two")
    );
    assert_eq!(
        value_of(&obs, "API_URL").as_deref(),
        Some("https://api.example.com")
    );
    c::write(
        &t,
        &obs,
        &[update("TOKEN", "new"), delete("GONE"), add("NEW", "n $x")],
    )
    .await;
    let want = concat!(
        "# Production settings\n",
        "#   edited by hand\n",
        "\n",
        "export   API_URL = https://api.example.com   # the API\n",
        "  INDENTED=\"keep\\tme\"  \n",
        "MULTI=\"line one\n",
        "line two\"\n",
        "WEIRD_QUOTES=\"a 'b' \\$c\"\n",
        "TOKEN=new\n",
        "LAST=no-final-newline\n",
        "NEW='n $x'\n",
    );
    assert_eq!(fs::read_to_string(f.path()).unwrap(), want);
}

#[tokio::test]
async fn crlf_file_stays_crlf() {
    let f = LocalFixture::new();
    fs::write(f.path(), "# win\r\nA=1\r\nB=2\r\n").unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[update("A", "x"), add("C", "y")]).await;
    assert_eq!(
        fs::read_to_string(f.path()).unwrap(),
        "# win\r\nA=x\r\nB=2\r\nC=y\r\n"
    );
}

#[tokio::test]
async fn no_temp_file_is_left_after_success_or_refusal() {
    let f = LocalFixture::new();
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[add("A", "1")]).await;
    assert_eq!(f.listing(), ["app.env"]);

    // Refused as a conflict.
    let stale = obs;
    let err = t.write(&stale, &[add("B", "2")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(f.listing(), ["app.env"]);

    // Refused as a value the format cannot hold.
    let fresh = read(&t, &[]).await;
    let err = t
        .write(&fresh, &[add("B", "canary\rvalue")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("app.env") && err.message.contains('B'));
    assert!(!err.message.contains("canary"), "{err}");
    assert_eq!(f.listing(), ["app.env"]);
    assert_eq!(fs::read_to_string(f.path()).unwrap(), "A=1\n");
}

#[tokio::test]
async fn a_new_file_gets_its_missing_folders_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = LocalFixture::new();
    let t = f.local_at("missing-dir/deeper/app.env");
    let obs = read(&t, &[]).await;
    assert!(!obs.exists);
    t.write(&obs, &[add("A", "canary")]).await.unwrap();
    let dir = f.dir.path().join("missing-dir");
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let file = dir.join("deeper/app.env");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "A=canary\n");
}

#[tokio::test]
async fn conflict_when_the_file_appears_or_disappears() {
    let f = LocalFixture::new();
    let t = f.local();
    let missing = read(&t, &[]).await;
    fs::write(f.path(), "OTHER=1\n").unwrap();
    let err = t.write(&missing, &[add("A", "1")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("app.env") && err.message.contains("changed since it was read"));
    assert_eq!(err.hint.as_deref(), Some("run plan again"));
    assert_eq!(fs::read_to_string(f.path()).unwrap(), "OTHER=1\n");

    let present = read(&t, &[]).await;
    fs::remove_file(f.path()).unwrap();
    let err = t.write(&present, &[add("A", "1")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(!f.path().exists());
}

#[tokio::test]
async fn a_change_to_another_key_is_a_conflict_too() {
    // The whole file is the unit: any change since the read refuses the write.
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1\nB=2\n").unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    fs::write(f.path(), "A=1\nB=2\n# a comment added meanwhile\n").unwrap();
    let err = t.write(&obs, &[update("A", "x")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(
        fs::read_to_string(f.path()).unwrap(),
        "A=1\nB=2\n# a comment added meanwhile\n"
    );
}

#[tokio::test]
async fn a_write_without_changes_leaves_the_file_alone() {
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1").unwrap();
    let inode = fs::metadata(f.path()).unwrap().ino();
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[]).await;
    assert_eq!(fs::metadata(f.path()).unwrap().ino(), inode);
    assert_eq!(fs::read_to_string(f.path()).unwrap(), "A=1");
}

#[tokio::test]
async fn missing_file_without_create_is_read_as_missing_and_not_written() {
    let mut f = LocalFixture::new();
    f.create = false;
    let t = f.local();
    let obs = read(&t, &[]).await;
    assert!(!obs.exists && obs.entries.is_empty());
    let err = t.write(&obs, &[add("A", "1")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(err.message.contains("app.env") && err.message.contains("create: false"));
    assert!(err.hint.unwrap().contains("create: true"));
    assert!(!f.path().exists());
    assert_eq!(f.listing(), Vec::<String>::new());
}

#[tokio::test]
async fn a_symlink_is_written_through_and_survives() {
    let f = LocalFixture::new();
    fs::create_dir(f.dir.path().join("real")).unwrap();
    let real = f.dir.path().join("real/app.env");
    fs::write(&real, "A=1\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("real/app.env", f.path()).unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[update("A", "2")]).await;
    assert!(fs::symlink_metadata(f.path())
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&real).unwrap(), "A=2\n");
    assert_eq!(mode(&real), 0o640);
    let names: Vec<_> = fs::read_dir(f.dir.path().join("real"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["app.env"]);
}

#[tokio::test]
async fn a_dangling_symlink_is_refused() {
    let f = LocalFixture::new();
    std::os::unix::fs::symlink("nowhere/app.env", f.path()).unwrap();
    let t = f.local();
    let obs = read(&t, &[]).await;
    assert!(!obs.exists);
    let err = t.write(&obs, &[add("A", "1")]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(err.message.contains("symlink") && err.message.contains("app.env"));
    assert!(err.hint.is_some());
}

#[tokio::test]
async fn parse_errors_name_path_and_line_but_no_value() {
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1\n# ok\nB=\"canary-unclosed\n").unwrap();
    let err = f.local().read(&[]).await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("{}:3:", f.path().display())),
        "{shown}"
    );
    assert!(
        shown.contains("never closed") && shown.contains("hint:"),
        "{shown}"
    );
    assert!(!shown.contains("canary"), "{shown}");

    fs::write(f.path(), "A=1\ncanary garbage\n").unwrap();
    let err = f.local().read(&[]).await.unwrap_err();
    assert!(err.message.contains(":2:"), "{err}");
    assert!(!err.to_string().contains("canary"), "{err}");
}

#[tokio::test]
async fn invalid_utf8_names_the_line() {
    let f = LocalFixture::new();
    fs::write(f.path(), b"A=1\nB=\xff\xfe\n").unwrap();
    let err = f.local().read(&[]).await.unwrap_err();
    assert!(err.message.contains("app.env:2:"), "{err}");
    assert!(err.message.contains("UTF-8"), "{err}");
}

#[tokio::test]
async fn a_directory_is_not_an_env_file() {
    let f = LocalFixture::new();
    fs::create_dir(f.path()).unwrap();
    let err = f.local().read(&[]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(err.message.contains("app.env") && err.message.contains("directory"));
}

#[tokio::test]
async fn cr_and_nul_are_refused_before_writing() {
    let f = LocalFixture::new();
    let t = f.local();
    assert!(t.check_value(&Secret::new("a\nb \"$\\".into())).is_ok());
    let why = t.check_value(&Secret::new("canary\r".into())).unwrap_err();
    assert!(why.contains("carriage return") && !why.contains("canary"));
    assert!(t.check_value(&Secret::new("x\0".into())).is_err());
}

#[tokio::test]
async fn paths_resolve_from_the_manifest_dir_and_home() {
    let f = LocalFixture::new();
    let t = f.local_at("sub/app.env");
    assert_eq!(t.path(), f.dir.path().join("sub/app.env"));
    assert_eq!(t.describe(), "env file sub/app.env");
    assert_eq!(t.name(), "local");
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let t = f.local_at("~/x/app.env");
        assert_eq!(t.path(), Path::new(&home).join("x/app.env"));
        assert_eq!(t.describe(), "env file ~/x/app.env");
    }
    let t = f.local_at("/abs/app.env");
    assert_eq!(t.path(), Path::new("/abs/app.env"));
}

#[tokio::test]
async fn doctor_checks_the_file_and_the_directory() {
    let f = LocalFixture::new();
    fs::write(f.path(), "A=1\nB=2\n").unwrap();
    let checks = f.local().check().await;
    let whats: Vec<&str> = checks.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(whats, ["file readable", "directory writable"]);
    assert!(checks.iter().all(|c| c.outcome.is_ok()), "{checks:?}");
    assert!(checks[0].outcome.as_ref().unwrap().contains("2 keys"));
    assert_eq!(f.listing(), ["app.env"], "the writability probe is removed");

    // Missing, but it may be created.
    fs::remove_file(f.path()).unwrap();
    let checks = f.local().check().await;
    assert!(checks.iter().all(|c| c.outcome.is_ok()), "{checks:?}");

    // Missing and may not be created; a missing directory.
    let mut g = LocalFixture::new();
    g.create = false;
    let checks = g.local_at("nodir/app.env").check().await;
    let file = checks[0].outcome.as_ref().unwrap_err();
    assert!(file.message.contains("create: false"), "{file}");
    let dir = checks[1].outcome.as_ref().unwrap_err();
    assert!(dir.message.contains("nodir"), "{dir}");
    assert!(dir.hint.is_some(), "{dir}");

    // A file that does not parse is reported with its line.
    fs::write(f.path(), "A=1\nnot an entry\n").unwrap();
    let checks = f.local().check().await;
    let file = checks[0].outcome.as_ref().unwrap_err();
    assert!(file.message.contains("app.env:2:"), "{file}");
}

#[tokio::test]
async fn changes_that_change_nothing_do_not_rewrite_or_create() {
    let f = LocalFixture::new();
    let t = f.local();
    let missing = read(&t, &[]).await;
    c::write(&t, &missing, &[delete("ABSENT")]).await;
    assert!(
        !f.path().exists(),
        "deleting from a missing file creates none"
    );

    fs::write(f.path(), "A=1\n").unwrap();
    let inode = fs::metadata(f.path()).unwrap().ino();
    let obs = read(&t, &[]).await;
    c::write(&t, &obs, &[delete("ABSENT"), update("A", "1")]).await;
    assert_eq!(fs::metadata(f.path()).unwrap().ino(), inode);
}

/// The write format's promise, checked against an independent reader:
/// dotenvy (which also expands `$VAR`, so an unescaped `$` would show).
#[tokio::test]
async fn dotenvy_reads_back_every_value_written() {
    let f = LocalFixture::new();
    fs::write(f.path(), "# kept\nexport OLD=1\n").unwrap();
    // The default format, which promises dotenvy among its readers.
    let spec = EnvFileSpec {
        path: "app.env".into(),
        prune: false,
        create: true,
        format: Format::Dotenv,
        live: Default::default(),
    };
    let t = LocalEnvFile::new("d", &spec, &Context::new(f.dir.path().to_path_buf())).unwrap();
    let obs = read(&t, &[]).await;
    let values: Vec<&str> = c::TRICKY_VALUES
        .iter()
        .copied()
        .filter(|v| t.check_value(&Secret::new(v.to_string())).is_ok())
        .collect();
    assert!(values.len() >= 8, "{values:?}");
    let changes: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| add(&format!("V{i}"), v))
        .chain([update("OLD", "$OLD \"x\"")])
        .collect();
    c::write(&t, &obs, &changes).await;

    let file = fs::File::open(f.path()).unwrap();
    let read_back: std::collections::BTreeMap<String, String> = dotenvy::from_read_iter(file)
        .map(|r| r.expect("dotenvy parses what secretsync writes"))
        .collect();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            read_back.get(&format!("V{i}")).map(String::as_str),
            Some(*v),
            "tricky value #{i}"
        );
    }
    assert_eq!(read_back["OLD"], "$OLD \"x\"");
}

/// systemd's generator for `environment.d`, which loads files with the same
/// parser as `EnvironmentFile=` and prints what it read.
const SYSTEMD_ENV_GENERATOR: &str =
    "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator";

/// Undoes the shell quoting the generator prints values with (`"…"` with
/// `\\ \" \$ \` \n \t` and octal `\NNN` escapes), or returns a bare value.
fn systemd_unquote(printed: &str) -> String {
    let Some(inner) = printed.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return printed.to_string();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let e = bytes[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let oct = std::str::from_utf8(&bytes[i - 1..i + 2]).unwrap();
                out.push(u8::from_str_radix(oct, 8).unwrap());
                i += 2;
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).unwrap()
}

/// The write format's promise, checked against systemd's own parser where
/// the machine has it. environment.d differs from `EnvironmentFile=` in two
/// ways, so those values are left out: it expands `$NAME` (EnvironmentFile
/// does not) and it rejects empty values.
#[tokio::test]
async fn systemd_reads_back_every_value_written() {
    let f = LocalFixture::new();
    let conf_dir = f.dir.path().join("environment.d");
    fs::create_dir(&conf_dir).unwrap();
    let spec = EnvFileSpec {
        path: "environment.d/app.conf".into(),
        prune: false,
        create: true,
        format: Format::Systemd,
        live: Default::default(),
    };
    let t = LocalEnvFile::new("sd", &spec, &Context::new(f.dir.path().to_path_buf())).unwrap();
    let values: Vec<&str> = c::TRICKY_VALUES
        .iter()
        .copied()
        .filter(|v| !v.is_empty() && !v.contains('$'))
        .chain(["a lone $ sign", "cost: 5$"])
        .collect();
    let obs = read(&t, &[]).await;
    let changes: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| add(&format!("SD_V{i}"), v))
        .collect();
    c::write(&t, &obs, &changes).await;
    // Our own reader agrees, whether or not systemd is here.
    let ours = read(&t, &[]).await;
    for (i, v) in values.iter().enumerate() {
        assert_eq!(value_of(&ours, &format!("SD_V{i}")).as_deref(), Some(*v));
    }

    if !Path::new(SYSTEMD_ENV_GENERATOR).exists() {
        eprintln!("{SYSTEMD_ENV_GENERATOR} not found: systemd's reading not checked");
        return;
    }
    let out = std::process::Command::new(SYSTEMD_ENV_GENERATOR)
        .env_clear()
        .env("XDG_CONFIG_HOME", f.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("app.conf"), "systemd complained: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    // A printed value never spans lines: newlines come out as `\n`.
    for line in stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("SD_V") {
                seen.insert(k.to_string(), systemd_unquote(v));
            }
        }
    }
    assert_eq!(seen.len(), values.len(), "{stdout}");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            seen.get(&format!("SD_V{i}")).map(String::as_str),
            Some(*v),
            "value #{i} as systemd reads it"
        );
    }
}
