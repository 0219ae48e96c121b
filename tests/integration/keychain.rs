//! The `keychain` target on this machine, against the stand-in `security`
//! (tests/support/security, which follows Apple's source of the tool): the
//! shared conformance suite, then what only a keychain has (the `-g` hex
//! form, a locked keychain, a missing `security`, the 4095-byte line, no
//! value in any argv, one read command per host and round).

use crate::secretsync_conformance_tests;
use crate::support;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use async_trait::async_trait;
use secretsync::secret::Secret;
use secretsync::targets::keychain::KeychainSpec;
use secretsync::targets::keychain::KeychainTarget;
use secretsync::targets::{Context, ErrorKind, Read, Target};
use support::cli::{assert_no_canary, Sandbox};
use support::conformance::{add, read, update, value_of, Fixture, TAMPERED};

/// The stand-in `security`.
fn standin() -> PathBuf {
    support::security_standin()
}

/// Runs the stand-in with `args` and `stdin`; (exit code, stdout, stderr).
fn security(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(standin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the stand-in security");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SERVICE: &str = "secretsync-test";
const KEYCHAIN_PASSWORD: &str = "standin-keychain-pw";

/// A fresh keychain file in a temp dir and the context its targets share.
struct KeychainFixture {
    dir: tempfile::TempDir,
    ctx: Context,
    /// `security:` of the targets (the stand-in unless a test wraps it).
    security: PathBuf,
}

impl KeychainFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("test.keychain-db");
        let (code, _, err) = security(
            &[
                "create-keychain",
                "-p",
                KEYCHAIN_PASSWORD,
                kc.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(code, 0, "{err}");
        KeychainFixture {
            ctx: Context::new(dir.path().to_path_buf()),
            dir,
            security: standin(),
        }
    }

    fn keychain(&self) -> String {
        self.dir
            .path()
            .join("test.keychain-db")
            .to_string_lossy()
            .into_owned()
    }

    fn spec(&self, service: &str) -> KeychainSpec {
        KeychainSpec {
            ssh: None,
            service: service.into(),
            keychain: Some(self.keychain()),
        }
    }

    /// The `security` program the targets run.
    fn program(&self) -> String {
        self.security.to_string_lossy().into_owned()
    }

    fn keychain_target(&self) -> KeychainTarget {
        KeychainTarget::with_program("mac", &self.spec(SERVICE), &self.ctx, &self.program())
            .unwrap()
    }

    /// A `security` wrapper in the temp dir running `body` (sh) before
    /// handing over to the stand-in; the targets use it from now on.
    fn wrap(&mut self, body: &str) {
        let path = self.dir.path().join("security-wrapper");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n{body}\nexec {} \"$@\"\n",
                standin().to_string_lossy()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.security = path;
    }

    /// Sets `account` out of band, through `security -i` as a person would.
    fn set(&self, account: &str, value_line_part: &str) {
        let line = format!(
            "add-generic-password -U -a \"{account}\" -s \"{SERVICE}\" -w {value_line_part} \"{}\"\n",
            self.keychain()
        );
        let (code, _, err) = security(&["-i"], line.as_bytes());
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("returned"), "{err}");
    }

    /// Sets `account` to `value` on the stand-in's command line: no 4095-byte
    /// line limit, for test values only (secretsync never does this).
    fn put(&self, account: &str, value: &str) {
        let (code, _, err) = security(
            &[
                "add-generic-password",
                "-U",
                "-a",
                account,
                "-s",
                SERVICE,
                "-w",
                value,
                &self.keychain(),
            ],
            b"",
        );
        assert_eq!(code, 0, "{err}");
    }

    fn lock(&self) {
        let (code, _, err) = security(&["lock-keychain", &self.keychain()], b"");
        assert_eq!(code, 0, "{err}");
    }

    fn raw_store(&self) -> String {
        std::fs::read_to_string(self.keychain()).unwrap()
    }
}

#[async_trait]
impl Fixture for KeychainFixture {
    fn target(&self) -> Box<dyn Target> {
        Box::new(self.keychain_target())
    }

    async fn tamper(&self, key: &str) {
        self.set(key, &format!("\"{TAMPERED}\""));
    }

    fn can_hold(&self, value: &str) -> bool {
        !value.contains(['\n', '\r', '\0'])
    }

    fn lists_all(&self) -> bool {
        false
    }
}

secretsync_conformance_tests!(KeychainFixture::new());

fn s(v: &str) -> Secret {
    Secret::new(v.to_string())
}

#[tokio::test]
async fn values_with_quotes_backslashes_dollars_unicode_and_spaces_round_trip() {
    let f = KeychainFixture::new();
    let t = f.keychain_target();
    let values = [
        r#"he said "hi" \ and \" and \\"#,
        "'single' $HOME ${x} $(id) `id`",
        " leading and trailing ",
        "unicode é ü 漢字 🔑",
        "-w looks like an option",
        "-U",
        "ends with a backslash \\",
        "\"",
        "tab\tand\u{7f}del",
        "",
    ];
    let keys: Vec<String> = (0..values.len()).map(|i| format!("V{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let before = read(&t, &key_refs).await;
    let changes: Vec<_> = keys.iter().zip(values).map(|(k, v)| add(k, v)).collect();
    for c in &changes {
        t.check_value(c.op.value().unwrap()).unwrap();
    }
    t.write(&before, &changes).await.unwrap();
    let after = read(&t, &key_refs).await;
    for (k, v) in keys.iter().zip(values) {
        assert_eq!(value_of(&after, k).as_deref(), Some(v), "{k}");
    }
    assert!(!after.complete, "a keychain cannot be listed");
}

#[tokio::test]
async fn hex_encoded_values_are_decoded() {
    let f = KeychainFixture::new();
    // Written out of band; each is printed in another `-g` form.
    f.set("HEX_MIXED", "\"caf\u{e9} \\\\ tab\t\"");
    f.set("HEX_ONLY", "\"\u{e9}\u{6f22}\"");
    f.set("QUOTED", "\"plain \\\" quote\"");
    let kc = f.keychain();
    let g = |account: &str| {
        let (code, _, err) = security(
            &[
                "find-generic-password",
                "-a",
                account,
                "-s",
                SERVICE,
                "-g",
                &kc,
            ],
            b"",
        );
        assert_eq!(code, 0, "{err}");
        err
    };
    assert_eq!(
        g("HEX_MIXED"),
        "password: 0x636166C3A9205C2074616209  \"caf\\303\\251 \\134 tab\\011\"\n"
    );
    assert_eq!(g("HEX_ONLY"), "password: 0xC3A9E6BCA2 \n");
    assert_eq!(g("QUOTED"), "password: \"plain \" quote\"\n");

    let t = f.keychain_target();
    let got = read(&t, &["HEX_MIXED", "HEX_ONLY", "QUOTED"]).await;
    assert_eq!(
        value_of(&got, "HEX_MIXED").as_deref(),
        Some("café \\ tab\t")
    );
    assert_eq!(value_of(&got, "HEX_ONLY").as_deref(), Some("é漢"));
    assert_eq!(value_of(&got, "QUOTED").as_deref(), Some("plain \" quote"));
}

#[tokio::test]
async fn a_locked_keychain_says_so_and_how_to_unlock_it() {
    let f = KeychainFixture::new();
    let t = f.keychain_target();
    let seeded = {
        let before = read(&t, &["LOCKED_A"]).await;
        t.write(&before, &[add("LOCKED_A", "before-lock")])
            .await
            .unwrap();
        read(&t, &["LOCKED_A"]).await
    };
    let store = f.raw_store();
    f.lock();

    let err = t.read(&["LOCKED_A".into()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("target `mac`"), "{err}");
    assert!(err.message.contains("the keychain is locked"), "{err}");
    assert!(
        err.message.contains("User interaction is not allowed."),
        "{err}"
    );
    let hint = err.hint.as_deref().unwrap();
    assert!(
        hint.contains(&format!("security unlock-keychain {}", f.keychain())),
        "{hint}"
    );

    let err = t
        .write(&seeded, &[update("LOCKED_A", "after-lock")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("after-lock"));
    assert_eq!(
        f.raw_store()
            .replace("\"locked\": true", "\"locked\": false"),
        store,
        "nothing written"
    );

    let doctor = t.check().await;
    assert!(
        matches!(&doctor[0].outcome, Err(e) if e.kind == ErrorKind::Auth),
        "{doctor:?}"
    );

    let (code, _, _) = security(
        &["unlock-keychain", "-p", KEYCHAIN_PASSWORD, &f.keychain()],
        b"",
    );
    assert_eq!(code, 0);
    let after = read(&t, &["LOCKED_A"]).await;
    assert_eq!(value_of(&after, "LOCKED_A").as_deref(), Some("before-lock"));
}

#[tokio::test]
async fn a_missing_security_says_the_host_is_not_a_mac_or_the_path_is_wrong() {
    let mut f = KeychainFixture::new();
    f.security = f.dir.path().join("no-such-security");
    let t = f.keychain_target();
    let err = t.read(&["K".into()]).await.unwrap_err();
    assert!(
        err.message
            .contains("the host is not a Mac or the `security` path is wrong"),
        "{err}"
    );
    assert!(err.message.contains("on this machine"), "{err}");
    assert!(err.hint.as_deref().unwrap().contains("/usr/bin/security"));
    let doctor = t.check().await;
    assert!(doctor[0].outcome.is_err());
}

#[tokio::test]
async fn a_missing_keychain_file_is_named() {
    let f = KeychainFixture::new();
    let mut spec = f.spec(SERVICE);
    spec.keychain = Some(
        f.dir
            .path()
            .join("absent.keychain-db")
            .to_string_lossy()
            .into(),
    );
    let t = KeychainTarget::with_program("mac", &spec, &f.ctx, &f.program()).unwrap();
    let err = t.read(&["K".into()]).await.unwrap_err();
    assert!(err.message.contains("absent.keychain-db"), "{err}");
    assert!(err.message.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn doctor_runs_security_and_reads_no_item() {
    let mut f = KeychainFixture::new();
    let log = f.dir.path().join("argv.log");
    f.wrap(&format!(
        "printf '%s\\n' \"$*\" >> {}",
        log.to_string_lossy()
    ));
    f.set("SECRET", "\"doctor-canary\"");
    let t = f.keychain_target();
    let checks = t.check().await;
    assert_eq!(checks.len(), 1);
    let detail = checks[0].outcome.as_ref().unwrap();
    assert!(detail.contains("is unlocked"), "{detail}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls, format!("show-keychain-info {}\n", f.keychain()));
}

#[tokio::test]
async fn a_value_too_long_for_a_security_line_is_refused_before_writing() {
    let f = KeychainFixture::new();
    let t = f.keychain_target();
    let before = read(&t, &["LONG"]).await;
    let long = "x".repeat(4050);
    let why = t.check_value(&s(&long)).unwrap_err();
    assert!(why.contains("4095"), "{why}");
    let err = t.write(&before, &[add("LONG", &long)]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
    assert!(err.message.contains("nothing was written"), "{err}");
    assert!(!f.raw_store().contains("\"LONG\""));
    // Just under the limit is fine, and reads back whole.
    let fits = "y".repeat(3900);
    t.check_value(&s(&fits)).unwrap();
    t.write(&before, &[add("LONG", &fits)]).await.unwrap();
    let after = read(&t, &["LONG"]).await;
    assert_eq!(value_of(&after, "LONG").as_deref(), Some(fits.as_str()));
}

#[tokio::test]
async fn values_security_i_cannot_carry_are_refused() {
    let f = KeychainFixture::new();
    let t = f.keychain_target();
    for bad in ["two\nlines", "carriage\rreturn", "nul\0byte"] {
        assert!(t.check_value(&s(bad)).is_err(), "{bad:?}");
        let before = read(&t, &["BAD"]).await;
        let err = t.write(&before, &[add("BAD", bad)]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }
    assert!(!f.raw_store().contains("\"BAD\""));
}

#[tokio::test]
async fn a_failed_command_inside_security_i_is_an_error_even_with_exit_0() {
    let mut f = KeychainFixture::new();
    // `security -i` goes on after a failure and exits with the last
    // command's status: here the failure is in the middle.
    f.wrap(
        r#"if [ "$1" = "-i" ]; then
  cat >/dev/null
  echo 'security: SecKeychainItemCreateFromContent (<default>): The specified item already exists in the keychain.' >&2
  echo 'add-generic-password: returned -25299' >&2
  exit 0
fi"#,
    );
    let t = f.keychain_target();
    let before = read(&t, &["W1", "W2"]).await;
    let err = t
        .write(&before, &[add("W1", "one"), add("W2", "two")])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed, "{err}");
    assert!(err.message.contains("failed 1 of 2 commands"), "{err}");
    assert!(err.message.contains("already exists"), "{err}");
    assert!(err.hint.unwrap().contains("secretsync plan"));
}

/// Each read script is one `sh` with its own random marker in its argv, which
/// its subshells (the pipeline stages that run the lookups at once) share:
/// the wrapper logs the marker it finds in its parent's argv, so the distinct
/// markers count the commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_keychain_targets_of_a_host_share_one_read_command_per_round() {
    let mut f = KeychainFixture::new();
    let log = f.dir.path().join("marker.log");
    f.wrap(&format!(
        "tr '\\0' '\\n' < /proc/$PPID/cmdline | grep -m1 -x 'secretsync-[0-9a-f]\\{{16\\}}' >> {}",
        log.to_string_lossy()
    ));
    let services = ["svc-a", "svc-b", "svc-c"];
    let targets: Vec<KeychainTarget> = services
        .iter()
        .map(|svc| KeychainTarget::with_program(svc, &f.spec(svc), &f.ctx, &f.program()).unwrap())
        .collect();
    let keys: Vec<String> = (0..5).map(|i| format!("K{i}")).collect();
    let commands = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let markers: std::collections::BTreeSet<&str> = text.lines().collect();
        (markers.len(), text.lines().count())
    };

    for round in 1..=2 {
        let reads = read_together(&targets, &keys).await;
        assert_eq!(reads.len(), 3);
        for r in reads {
            assert!(r.unwrap().entries.is_empty());
        }
        assert_eq!(
            commands(),
            (round as usize, round as usize * 15),
            "one command per round for 3 targets x 5 keys"
        );
    }

    // A target read alone is one command of its own.
    let alone = targets[0].read(&keys).await.unwrap();
    assert!(alone.entries.is_empty());
    assert_eq!(commands(), (3, 35));
}

/// The engine's batched read: `targets` (one host) through the first.
async fn read_together(
    targets: &[KeychainTarget],
    keys: &[String],
) -> Vec<Result<secretsync::targets::Observed, secretsync::targets::TargetError>> {
    let reads: Vec<Read<'_>> = targets
        .iter()
        .map(|t| Read {
            target: t as &dyn Target,
            keys,
        })
        .collect();
    assert!(targets
        .iter()
        .all(|t| t.batch_key() == targets[0].batch_key()));
    targets[0].read_batch(&reads).await
}

/// 20 items, more than one group of lookups run at once (8): present and
/// absent ones at group edges, an empty value, both hex forms, values of
/// 1 byte to 60 KB whose frames outgrow a pipe's buffer, each naming its key.
fn wide_read_items() -> Vec<(String, Option<String>)> {
    let key = |i: usize| format!("WIDE_{i:02}");
    (0..20)
        .map(|i| {
            let k = key(i);
            let v = match i {
                1 | 6 | 8 | 17 => None, // absent; 8 opens the second group
                2 => Some(String::new()),
                3 => Some(format!("caf\u{e9} \\ tab\t {k}")), // `0xHEX  "…"`
                4 => Some("\u{e9}\u{6f22}".repeat(3)),        // `0xHEX ` only
                5 => Some(format!("{}-{k}", "x".repeat(5000))), // > 4 KiB, quoted
                // ~60 KB of UTF-8: a frame of ~240 KB, beyond any pipe buffer.
                9 => Some(format!("{}-{k}", "\u{e9}".repeat(30_000))),
                10 => Some(format!("with \"quotes\" {k}")),
                11..=15 => Some(format!("{k}-{}", "a".repeat(10usize.pow(i as u32 - 11)))),
                _ => Some(format!("plain-{k}")),
            };
            (k, v)
        })
        .collect()
}

/// Seeds [`wide_read_items`] in `f`'s keychain, reads them all through `t` in
/// one read and checks each key got its own value (or none).
async fn wide_read_case(f: &KeychainFixture, t: &dyn Target) {
    let items = wide_read_items();
    for (k, v) in &items {
        if let Some(v) = v {
            f.put(k, v);
        }
    }
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let got = read(t, &keys).await;
    for (k, want) in &items {
        let have = value_of(&got, k);
        assert!(
            have == *want,
            "{k}: read {:?} ({} bytes), expected {:?} ({} bytes)",
            have.as_deref()
                .map(|v| v.chars().take(40).collect::<String>()),
            have.as_ref().map_or(0, String::len),
            want.as_deref()
                .map(|v| v.chars().take(40).collect::<String>()),
            want.as_ref().map_or(0, String::len),
        );
    }
    assert_eq!(
        got.entries.len(),
        items.iter().filter(|(_, v)| v.is_some()).count()
    );
}

#[tokio::test]
async fn a_read_of_more_items_than_one_group_attributes_each_value_to_its_key() {
    let f = KeychainFixture::new();
    wide_read_case(&f, &f.keychain_target()).await;
}

/// The stand-in, held at its gate, shows how many lookups are in flight: the
/// first 8 all start before any of them may finish, no 9th starts while they
/// are held, and over the whole read (20 items) at most 8 ever overlap.
#[tokio::test]
async fn lookups_run_eight_at_once_and_never_more() {
    let mut f = KeychainFixture::new();
    let items = wide_read_items();
    for (k, v) in &items {
        if let Some(v) = v {
            f.put(k, v);
        }
    }
    let timing = f.dir.path().join("timing.log");
    let gate = f.dir.path().join("gate");
    f.wrap(&format!(
        "SECURITY_STANDIN_TIMING_LOG='{}' SECURITY_STANDIN_GATE='{}'\n\
         export SECURITY_STANDIN_TIMING_LOG SECURITY_STANDIN_GATE",
        timing.display(),
        gate.display()
    ));
    let t = f.keychain_target();
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let events = || -> Vec<(String, u64, String)> {
        std::fs::read_to_string(&timing)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut w = l.splitn(3, ' ');
                let (kind, ns, acct) = (w.next(), w.next(), w.next());
                (
                    kind.unwrap().to_string(),
                    ns.unwrap().parse().unwrap(),
                    acct.unwrap().to_string(),
                )
            })
            .collect()
    };
    let count =
        |ev: &[(String, u64, String)], kind: &str| ev.iter().filter(|(k, _, _)| k == kind).count();

    // Watches the log while the read runs; opens the gate once 8 lookups
    // are held (or, failing, after a minute, so that nothing stays blocked).
    let watch = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ev = events();
            if count(&ev, "start") >= 8 || std::time::Instant::now() > deadline {
                std::fs::write(&gate, b"").unwrap();
                return ev;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let (got, held) = tokio::join!(t.read(&keys), watch);
    let got = got.unwrap();
    assert_eq!(
        (count(&held, "start"), count(&held, "end")),
        (8, 0),
        "8 lookups in flight at once, none finished, no 9th started: {held:?}"
    );
    for (k, want) in &items {
        assert!(value_of(&got, k) == *want, "{k}");
    }

    // The whole read: every item looked up once, at most 8 at a time.
    let ev = events();
    let mut accounts: Vec<&str> = ev
        .iter()
        .filter(|(k, _, _)| k == "start")
        .map(|(_, _, a)| a.as_str())
        .collect();
    accounts.sort_unstable();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(accounts, expected);
    assert_eq!(count(&ev, "end"), keys.len());
    // Ends sort before starts at the same instant: a tie is not an overlap.
    let mut sweep: Vec<(u64, i32)> = ev
        .iter()
        .map(|(k, ns, _)| (*ns, if k == "start" { 1 } else { -1 }))
        .collect();
    sweep.sort_unstable();
    let (mut now, mut most) = (0, 0);
    for (_, step) in sweep {
        now += step;
        most = most.max(now);
    }
    assert_eq!(most, 8, "at most 8 lookups at once, and 8 did overlap");
}

/// The stand-in itself: Apple's `security -i` line rules, so that the tests
/// above exercise what a Mac would do.
#[test]
fn the_standin_follows_apples_line_rules() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("rules.keychain-db");
    let kc = kc.to_str().unwrap();
    assert_eq!(security(&["create-keychain", "-p", "pw", kc], b"").0, 0);
    let value_of = |account: &str| {
        let (code, _, err) = security(
            &["find-generic-password", "-a", account, "-s", "s", "-g", kc],
            b"",
        );
        (code, err)
    };

    // Quotes of both kinds, backslash escapes inside and outside quotes.
    let input = format!(
        "add-generic-password -a 'q1' -s s -w \"a\\\"b\\\\c 'd'\" {kc}\nadd-generic-password -a q2 -s s -w un\\ quoted {kc}\n"
    );
    let (code, _, err) = security(&["-i"], input.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        value_of("q1").1,
        "password: 0x6122625C6320276427  \"a\"b\\134c 'd'\"\n"
    );
    assert_eq!(value_of("q2").1, "password: \"un quoted\"\n");

    // A last line without a newline is dropped.
    let input = format!("add-generic-password -a dropped -s s -w x {kc}");
    assert_eq!(security(&["-i"], input.as_bytes()).0, 0);
    assert_eq!(value_of("dropped").0, 44);

    // A line is cut after 4095 bytes; the rest runs as the next command.
    let head = "add-generic-password -a long -s s -w v -j ";
    let tail = format!(" {kc}");
    let input = format!(
        "{head}{}{tail}find-generic-password -a long -s s {kc}\n",
        "z".repeat(4095 - head.len() - tail.len())
    );
    let (_, out, err) = security(&["-i"], input.as_bytes());
    assert_eq!(value_of("long").0, 0, "the cut line ran: {err}");
    assert!(
        out.contains("keychain:"),
        "the rest ran as `find-generic-password`"
    );

    // A failed command prints `NAME: returned STATUS`, the next one runs,
    // and the exit code is the last command's.
    let input = format!(
        "add-generic-password -a q2 -s s -w again {kc}\nadd-generic-password -a after -s s -w ok {kc}\n"
    );
    let (code, _, err) = security(&["-i"], input.as_bytes());
    assert_eq!(code, 0);
    assert!(
        err.contains("add-generic-password: returned -25299"),
        "{err}"
    );
    assert_eq!(value_of("after").0, 0);

    // At most 32 arguments: the 33rd (the keychain) is ignored, so the item
    // lands in the default keychain.
    let home = dir.path().join("home");
    // 7 + 24 + 1 = 32 arguments; the keychain would be the 33rd.
    let fillers = format!("{} -U", " -j c".repeat(12));
    let input = format!("add-generic-password -a many -s s -w v{fillers} {kc}\n");
    let out = Command::new(standin())
        .arg("-i")
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(out.success());
    assert_eq!(value_of("many").0, 44);
    assert!(home.join("Library/Keychains/login.keychain-db").exists());

    // Exit codes: 45 duplicate, 36 locked, 50 no such keychain.
    assert_eq!(
        security(
            &["add-generic-password", "-a", "q2", "-s", "s", "-w", "x", kc],
            b""
        )
        .0,
        45
    );
    assert_eq!(security(&["lock-keychain", kc], b"").0, 0);
    let (code, _, err) = security(
        &[
            "add-generic-password",
            "-U",
            "-a",
            "q2",
            "-s",
            "s",
            "-w",
            "x",
            kc,
        ],
        b"",
    );
    assert_eq!(code, 36);
    assert!(err.contains("User interaction is not allowed."), "{err}");
    let missing = dir.path().join("missing.keychain-db");
    assert_eq!(
        security(
            &[
                "find-generic-password",
                "-a",
                "x",
                "-s",
                "s",
                missing.to_str().unwrap()
            ],
            b""
        )
        .0,
        50
    );
}

/// The real binary with the stand-in as `security` on PATH and the default
/// keychain under $HOME: plan and apply through every path, and the
/// stand-in's argv log shows no value on any command line.
#[test]
fn no_value_reaches_a_command_line_or_an_output() {
    let sb = Sandbox::new();
    let path = standin_on_path(&sb);
    let log = sb.path("argv.log");
    let program = sb.path("bin/security").display().to_string();
    let env = [
        ("PATH", path.as_str()),
        ("SECRETSYNC_SECURITY", program.as_str()),
        ("SECURITY_STANDIN_ARGV_LOG", log.to_str().unwrap()),
    ];
    let canaries = [
        "CANARY-kc-\"quoted\" \\ $HOME",
        "CANARY-kc-unicode-é🔑",
        "CANARY-kc-plain",
    ];
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  mac:\n    type: keychain\n    service: openclaw\nsecrets:\n  A:\n    targets: [mac]\n    encrypted: |\n{}  B:\n    targets: [mac]\n    encrypted: |\n{}  C:\n    targets: [mac]\n    value: CANARY-kc-plain\n",
            sb.header(),
            sb.encrypted(canaries[0], 6),
            sb.encrypted(canaries[1], 6)
        ),
    );
    let plan = sb.run_with(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout.contains("keychain service openclaw"),
        "{}",
        plan.stdout
    );
    let apply = sb.run_with(&["apply", "--auto-approve", "-v"], &env);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let again = sb.run_with(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(again.code, 0, "{}", again.all());
    let doctor = sb.run_with(&["doctor"], &env);
    let json = sb.run_with(&["plan", "--format", "json"], &env);

    for (what, out) in [
        ("plan", &plan),
        ("apply", &apply),
        ("plan again", &again),
        ("doctor", &doctor),
        ("json", &json),
    ] {
        assert_no_canary(what, out.all().as_bytes(), &canaries);
    }
    let argv = std::fs::read_to_string(&log).unwrap();
    assert!(
        argv.contains("[\"-i\"]"),
        "the write went through -i:\n{argv}"
    );
    assert!(argv.contains("find-generic-password"), "{argv}");
    assert_no_canary("the argv of every security run", argv.as_bytes(), &canaries);
    assert_no_canary(
        "the argv log (JSON-escaped)",
        argv.as_bytes(),
        &["CANARY-kc"],
    );

    // The values did land, in the default keychain under $HOME.
    let kc = sb.path("Library/Keychains/login.keychain-db");
    let store = std::fs::read_to_string(&kc).unwrap();
    assert!(store.contains("\"account\": \"A\""), "{store}");
    let (code, _, err) = security(
        &[
            "find-generic-password",
            "-a",
            "A",
            "-s",
            "openclaw",
            "-g",
            kc.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code, 0);
    assert!(
        err.starts_with("password: 0x"),
        "a backslash makes the hex form"
    );
    assert!(
        err.ends_with("  \"CANARY-kc-\"quoted\" \\134 $HOME\"\n"),
        "{err}"
    );
}

#[test]
fn plan_refuses_a_value_with_a_newline_before_anything_is_written() {
    let sb = Sandbox::new();
    let path = standin_on_path(&sb);
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  mac:\n    type: keychain\n    service: openclaw\nsecrets:\n  OK:\n    targets: [mac]\n    value: fine\n  MULTI:\n    targets: [mac]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted("CANARY-first\nCANARY-second", 6)
        ),
    );
    let program = sb.path("bin/security").display().to_string();
    let env = [
        ("PATH", path.as_str()),
        ("SECRETSYNC_SECURITY", program.as_str()),
    ];
    let apply = sb.run_with(&["apply", "--auto-approve"], &env);
    assert_ne!(apply.code, 0, "{}", apply.all());
    assert!(
        apply
            .all()
            .contains("the value of `MULTI` cannot be written to this target"),
        "{}",
        apply.all()
    );
    assert!(apply.all().contains("newline"), "{}", apply.all());
    assert_no_canary(
        "apply",
        apply.all().as_bytes(),
        &["CANARY-first", "CANARY-second"],
    );
    assert!(
        !sb.path("Library/Keychains/login.keychain-db").exists(),
        "nothing was written"
    );
}

/// The same target on a "Mac" reached over the test sshd (this machine as
/// root), the stand-in found as `security` on the host's PATH.
mod remote {
    use super::*;
    use support::sshd::Sshd;

    struct RemoteFixture {
        sshd: Sshd,
        local: KeychainFixture,
    }

    impl RemoteFixture {
        fn new() -> Self {
            let sshd = Sshd::start();
            sshd.install_program("security", &standin());
            RemoteFixture {
                sshd,
                local: KeychainFixture::new(),
            }
        }

        fn spec(&self, service: &str) -> KeychainSpec {
            KeychainSpec {
                ssh: Some(self.sshd.options("root")),
                ..self.local.spec(service)
            }
        }

        fn keychain_target(&self, service: &str) -> KeychainTarget {
            // `security` from the host's PATH (the stand-in installed there).
            KeychainTarget::with_program(service, &self.spec(service), &self.local.ctx, "security")
                .unwrap()
        }
    }

    #[async_trait]
    impl Fixture for RemoteFixture {
        fn target(&self) -> Box<dyn Target> {
            Box::new(self.keychain_target(SERVICE))
        }

        async fn tamper(&self, key: &str) {
            self.local.set(key, &format!("\"{TAMPERED}\""));
        }

        fn can_hold(&self, value: &str) -> bool {
            self.local.can_hold(value)
        }

        fn lists_all(&self) -> bool {
            false
        }
    }

    secretsync_conformance_tests!(RemoteFixture::new());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_connection_and_one_read_command_per_host_and_round() {
        let f = RemoteFixture::new();
        let targets: Vec<KeychainTarget> = ["svc-a", "svc-b", "svc-c"]
            .iter()
            .map(|s| f.keychain_target(s))
            .collect();
        let keys: Vec<String> = (0..4).map(|i| format!("K{i}")).collect();
        for round in 1..=2u64 {
            let reads = super::read_together(&targets, &keys).await;
            for r in reads {
                r.unwrap();
            }
            assert_eq!(
                f.sshd.command_count(),
                round as usize,
                "{}",
                f.sshd.commands()
            );
        }
        assert_eq!(f.sshd.connections(), 1);
        // A write: one read to check for conflicts, one `security -i`.
        let before = targets[0].read(&keys).await.unwrap();
        targets[0]
            .write(&before, &[add("K0", "zero"), add("K1", "one")])
            .await
            .unwrap();
        assert_eq!(f.sshd.command_count(), 5, "{}", f.sshd.commands());
        assert_eq!(f.sshd.connections(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_of_more_items_than_one_group_over_ssh_attributes_each_value_to_its_key() {
        let f = RemoteFixture::new();
        wide_read_case(&f.local, &f.keychain_target(SERVICE)).await;
        assert_eq!(f.sshd.command_count(), 1, "{}", f.sshd.commands());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_keychain_over_ssh_says_to_unlock_it_in_an_ssh_session() {
        let f = RemoteFixture::new();
        f.local.set("K", "\"set-before-lock\"");
        f.local.lock();
        let t = f.keychain_target(SERVICE);
        let err = t.read(&["K".into()]).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Auth, "{err}");
        assert!(
            err.message.contains("User interaction is not allowed."),
            "{err}"
        );
        assert!(
            err.message
                .contains(&format!("on host root@127.0.0.1:{}", f.sshd.port)),
            "{err}"
        );
        let hint = err.hint.unwrap();
        assert!(
            hint.contains(&format!(
                "in an SSH session on root@127.0.0.1:{}, run `security unlock-keychain {}`",
                f.sshd.port,
                f.local.keychain()
            )),
            "{hint}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_host_without_security_is_not_a_mac() {
        let f = RemoteFixture::new();
        let spec = f.spec(SERVICE);
        let t = KeychainTarget::with_program("mac", &spec, &f.local.ctx, "/nonexistent/security")
            .unwrap();
        let err = t.read(&["K".into()]).await.unwrap_err();
        assert!(
            err.message
                .contains("the host is not a Mac or the `security` path is wrong"),
            "{err}"
        );
    }

    /// The real binary over sshd: the wrapper's log of every command line the
    /// host ran holds no value, and neither does any output.
    #[test]
    fn no_value_on_any_command_line_the_host_saw() {
        let sshd = Sshd::start();
        let local = KeychainFixture::new();
        let sb = Sandbox::new();
        let canaries = [
            "CANARY-ssh-\"q\" \\ $x 'y'",
            "CANARY-ssh-é🔑",
            "CANARY-ssh-plain",
        ];
        sb.write(
            "secrets.yaml",
            &format!(
                "{}targets:\n  mac:\n    type: keychain\n{}    service: openclaw\n    keychain: {}\nsecrets:\n  A:\n    targets: [mac]\n    encrypted: |\n{}  B:\n    targets: [mac]\n    encrypted: |\n{}  C:\n    targets: [mac]\n    value: CANARY-ssh-plain\n",
                sb.header(),
                sshd.yaml("root", 4),
                local.keychain(),
                sb.encrypted(canaries[0], 6),
                sb.encrypted(canaries[1], 6)
            ),
        );
        let program = standin().display().to_string();
        let env = [("SECRETSYNC_SECURITY", program.as_str())];
        let apply = sb.run_with(&["apply", "--auto-approve"], &env);
        assert_eq!(apply.code, 0, "{}", apply.all());
        let plan = sb.run_with(&["plan", "--detailed-exitcode"], &env);
        assert_eq!(plan.code, 0, "{}", plan.all());
        for out in [&apply, &plan] {
            assert_no_canary("output", out.all().as_bytes(), &canaries);
        }
        let commands = sshd.commands();
        assert!(commands.contains("find-generic-password"), "{commands}");
        assert!(commands.contains("-i"), "{commands}");
        assert_no_canary(
            "the host's command log",
            commands.as_bytes(),
            &["CANARY-ssh"],
        );
        // apply: plan read, conflict read, `security -i`, verify read; plan: one read.
        assert_eq!(sshd.command_count(), 5, "{commands}");
        let store = local.raw_store();
        assert!(store.contains("\"account\": \"C\""), "{store}");
    }
}

/// A PATH on which `security` is the stand-in (linked into the sandbox as
/// `bin/security`, which SECRETSYNC_SECURITY names for the binary).
fn standin_on_path(sb: &Sandbox) -> String {
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(standin(), bin.join("security")).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A sandbox whose PATH finds the stand-in `security`, with a keychain file
/// `kc.keychain-db` and a manifest whose `mac` target uses it.
fn cli_keychain(secrets: &str) -> (Sandbox, Vec<(String, String)>, String) {
    let sb = Sandbox::new();
    let path = standin_on_path(&sb);
    let kc = sb.path("kc.keychain-db").display().to_string();
    let (code, _, err) = security(&["create-keychain", "-p", KEYCHAIN_PASSWORD, &kc], b"");
    assert_eq!(code, 0, "{err}");
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  mac:\n    type: keychain\n    service: {SERVICE}\n    keychain: {kc}\nsecrets:\n{secrets}",
            sb.header()
        ),
    );
    let program = sb.path("bin/security").display().to_string();
    (
        sb,
        vec![
            ("PATH".to_string(), path),
            ("SECRETSYNC_SECURITY".to_string(), program),
        ],
        kc,
    )
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn import_adopts_named_items_and_asks_for_names() {
    let (sb, env, kc) = cli_keychain("  KNOWN:\n    targets: [mac]\n    value: known\n");
    let env = env_refs(&env);
    let live = "CANARY-kc-live-token \"q\" é";
    let line = format!(
        "add-generic-password -a GATEWAY_TOKEN -s {SERVICE} -w \"CANARY-kc-live-token \\\"q\\\" é\" \"{kc}\"\n"
    );
    let (code, _, err) = security(&["-i"], line.as_bytes());
    assert_eq!(code, 0, "{err}");

    // A keychain cannot be listed: import needs the names.
    let out = sb.run_with(&["import", "--from", "mac"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("target `mac` cannot list its keys"),
        "{}",
        out.stderr
    );
    let out = sb.run_with(
        &["import", "--from", "mac", "GATEWAY_TOKEN", "ABSENT"],
        &env,
    );
    assert_eq!(out.code, 1, "an absent key is reported: {out:?}");
    assert!(
        out.stderr
            .contains("imported 1 secret(s) from `mac`: GATEWAY_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("not on the target: ABSENT"),
        "{}",
        out.stderr
    );
    assert_no_canary("import output", out.all().as_bytes(), &[live]);
    let get = sb.run_with(&["get", "GATEWAY_TOKEN"], &env);
    assert_eq!((get.code, get.stdout.as_str()), (0, live));
}

#[test]
fn doctor_reports_a_locked_keychain_with_the_unlock_command() {
    let (sb, env, kc) = cli_keychain("  A:\n    targets: [mac]\n    value: a\n");
    let env = env_refs(&env);
    let ok = sb.run_with(&["doctor"], &env);
    assert_eq!(ok.code, 0, "{ok:?}");
    let (code, _, err) = security(&["lock-keychain", &kc], b"");
    assert_eq!(code, 0, "{err}");
    let locked = sb.run_with(&["doctor"], &env);
    assert_eq!(locked.code, 1, "{locked:?}");
    let all = locked.all();
    assert!(all.contains("User interaction is not allowed"), "{all}");
    assert!(all.contains("security unlock-keychain"), "{all}");
}

/// #15: the values a keychain item must carry exactly, through the
/// `security` stand-in: empty, unicode, `${{…}}` kept as text, quotes and
/// backslashes, and the largest value `security -i` accepts (its 4095-byte
/// line), while one byte more and a newline are refused before writing.
#[tokio::test]
async fn keychain_values_round_trip_up_to_the_largest_accepted() {
    let f = KeychainFixture::new();
    let t = f.keychain_target();
    let keys = ["KV_0", "KV_1", "KV_2", "KV_3", "KV_4"];
    // Reading first teaches the target the lengths its limit depends on.
    let before = read(&t, &keys).await;
    let largest = (1..=4095)
        .rev()
        .find(|n| t.check_value(&Secret::new("x".repeat(*n))).is_ok())
        .expect("some length fits");
    assert!(largest > 3500, "only {largest} bytes fit");
    assert!(t
        .check_value(&Secret::new("x".repeat(largest + 1)))
        .is_err());
    assert!(t.check_value(&Secret::new("two\nlines".into())).is_err());
    let values = [
        String::new(),
        "unicode é ü 漢字 🔑".to_string(),
        "${{shared.DATABASE_URL}}".to_string(),
        "quotes \" ' and \\ backslashes $HOME `id`".to_string(),
        "x".repeat(largest),
    ];
    let changes: Vec<_> = keys.iter().zip(&values).map(|(k, v)| add(k, v)).collect();
    t.write(&before, &changes).await.unwrap();
    let after = read(&t, &keys).await;
    for (k, v) in keys.iter().zip(&values) {
        assert_eq!(value_of(&after, k).as_deref(), Some(v.as_str()), "{k}");
    }
}
