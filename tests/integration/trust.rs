//! Planning any manifest is safe (issue #14): a manifest written by a
//! stranger (a pull request) is planned with the identity and the tokens
//! present, and must not be able to send them anywhere, run a program, pass
//! an option to ssh or `security`, hand them to a child process, forge the
//! pull request's comment or a saved plan. Each test plays one attack.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use support::cli::{assert_no_canary, Out, Sandbox};
use support::sshd::{KeptMasters, Sshd};

const TOKEN: &str = "CANARY-railway-token-7c1e";
const PROJECT_TOKEN: &str = "CANARY-railway-project-token-2b9d";
const VALUE: &str = "CANARY-trust-value-5f3a";
/// The prefix of an age identity, in two pieces so that a scan for committed
/// private keys does not flag this file.
const AGE_KEY_PREFIX: &str = concat!("AGE-SECRET-", "KEY-1");

/// A TCP listener on loopback that records every byte it is sent and
/// answers each connection with `response`.
struct Listener {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<Mutex<usize>>,
}

impl Listener {
    fn start(response: String) -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (r, c) = (received.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut s) = stream else { continue };
                *c.lock().unwrap() += 1;
                s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    r.lock().unwrap().extend_from_slice(&buf[..n]);
                    if r.lock().unwrap().windows(4).any(|w| w == b"\r\n\r\n") {
                        // Headers are in; the body (if any) follows at once.
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        if let Ok(n) = s.read(&mut buf) {
                            r.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        break;
                    }
                }
                let _ = s.write_all(response.as_bytes());
            }
        });
        Listener {
            port,
            received,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql/v2", self.port)
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

/// The identity file's text: what an attacker wants most.
fn identity_text(sb: &Sandbox) -> String {
    std::fs::read_to_string(&sb.identity).unwrap()
}

/// Runs secretsync with the identity in SECRETSYNC_AGE_KEY (not --identity:
/// the environment is where CI puts it) and both Railway tokens set.
fn run_with_credentials(sb: &Sandbox, args: &[&str], more: &[(&str, &str)]) -> Out {
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    let key = identity_text(sb);
    cmd.args(args)
        .env("SECRETSYNC_AGE_KEY", key.trim())
        .env("RAILWAY_API_TOKEN", TOKEN)
        .env("RAILWAY_TOKEN", PROJECT_TOKEN);
    for (k, v) in more {
        cmd.env(k, v);
    }
    support::cli::run(cmd)
}

fn secret_key_canaries(sb: &Sandbox) -> Vec<String> {
    let key = identity_text(sb).trim().to_string();
    // The whole key and a distinctive part of it.
    vec![key.clone(), key[AGE_KEY_PREFIX.len()..][..20].to_string()]
}

fn assert_no_credentials(what: &str, text: &str, sb: &Sandbox) {
    let ids = secret_key_canaries(sb);
    let mut canaries: Vec<&str> = ids.iter().map(String::as_str).collect();
    canaries.extend([TOKEN, PROJECT_TOKEN, VALUE]);
    assert_no_canary(what, text.as_bytes(), &canaries);
}

fn manifest_with(sb: &Sandbox, targets: &str, on: &str) -> String {
    format!(
        "{}targets:\n{targets}secrets:\n  API_KEY:\n    targets: [{on}]\n    encrypted: |\n{}",
        sb.header(),
        sb.encrypted(VALUE, 6)
    )
}

#[test]
fn a_manifest_cannot_send_the_identity_or_a_token_to_an_endpoint_of_its_choosing() {
    let sb = Sandbox::new();
    let attacker = Listener::start("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".into());
    // Before: `plan` sent SECRETSYNC_AGE_KEY as a Project-Access-Token here.
    let attacks = [
        format!(
            "  api:\n    type: railway\n    project: p\n    environment: production\n    token_env: SECRETSYNC_AGE_KEY\n    token_kind: project\n    endpoint: {}\n",
            attacker.url()
        ),
        format!(
            "  api:\n    type: railway\n    project: p\n    environment: production\n    endpoint: {}\n",
            attacker.url()
        ),
        "  api:\n    type: railway\n    project: p\n    environment: production\n    token_env: SOPS_AGE_KEY\n    token_kind: account\n".to_string(),
    ];
    for targets in &attacks {
        sb.write("secrets.yaml", &manifest_with(&sb, targets, "api"));
        for cmd in [&["plan"][..], &["doctor"], &["get", "API_KEY"]] {
            let out = run_with_credentials(&sb, cmd, &[]);
            if cmd[0] != "get" {
                assert_eq!(out.code, 1, "{cmd:?} {targets}\n{}", out.all());
                assert!(out.stderr.contains("--> secrets.yaml:"), "{}", out.all());
            }
            assert_no_credentials("output", &out.all(), &sb);
        }
    }
    assert_eq!(attacker.connections(), 0, "{}", attacker.received());

    // The endpoint of the run's own environment is plain http only on loopback.
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            "  api:\n    type: railway\n    project: p\n    environment: production\n",
            "api",
        ),
    );
    let out = run_with_credentials(
        &sb,
        &["plan"],
        &[(
            "SECRETSYNC_RAILWAY_ENDPOINT",
            "http://railway-proxy.example/graphql/v2",
        )],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all()
            .contains("is plain http to another machine: the token would travel in clear"),
        "{}",
        out.all()
    );
}

#[test]
fn a_redirect_is_not_followed_with_the_token() {
    let sb = Sandbox::new();
    let elsewhere = Listener::start("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".into());
    let redirecting = Listener::start(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {}\r\ncontent-length: 0\r\n\r\n",
        elsewhere.url()
    ));
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            "  api:\n    type: railway\n    project: p\n    environment: production\n",
            "api",
        ),
    );
    let out = run_with_credentials(
        &sb,
        &["plan"],
        &[("SECRETSYNC_RAILWAY_ENDPOINT", &redirecting.url())],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all()
            .contains("answered with a redirect (HTTP 307), which secretsync does not follow"),
        "{}",
        out.all()
    );
    assert!(redirecting.connections() >= 1);
    assert_eq!(elsewhere.connections(), 0, "{}", elsewhere.received());
    assert_no_credentials("output", &out.all(), &sb);
}

/// A program that records that it ran (and with what environment).
fn planted(sb: &Sandbox) -> (String, std::path::PathBuf) {
    let marker = sb.path("planted-ran");
    let program = sb.path("planted.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\nenv > {}\nexit 0\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program.display().to_string(), marker)
}

#[test]
fn a_manifest_cannot_name_a_program_for_plan_doctor_or_get_to_run() {
    let sb = Sandbox::new();
    let (program, marker) = planted(&sb);
    let marker_cmd = format!("touch {}", marker.display());
    let attacks = [
        // Before: `plan` ran this program with the identity in its environment.
        format!("  mac:\n    type: keychain\n    service: app\n    security: {program}\n"),
        // Before: ssh read the host as an option and ran the ProxyCommand.
        format!(
            "  vps:\n    type: ssh_env\n    host: \"-oProxyCommand={marker_cmd}\"\n    path: /etc/app.env\n"
        ),
        format!(
            "  mac:\n    type: keychain\n    host: \"-oProxyCommand={marker_cmd}\"\n    service: app\n"
        ),
        format!(
            "  vps:\n    type: ssh_env\n    host: deploy@127.0.0.1\n    identity_file: \"-oProxyCommand={marker_cmd}\"\n    path: /etc/app.env\n"
        ),
    ];
    for targets in &attacks {
        let on = if targets.contains("vps") {
            "vps"
        } else {
            "mac"
        };
        sb.write("secrets.yaml", &manifest_with(&sb, targets, on));
        for cmd in [&["plan"][..], &["doctor"], &["get", "API_KEY"]] {
            let out = run_with_credentials(&sb, cmd, &[]);
            if cmd[0] != "get" {
                assert_eq!(out.code, 1, "{cmd:?} {targets}\n{}", out.all());
                assert!(out.stderr.contains("--> secrets.yaml:"), "{}", out.all());
            }
            assert!(
                !marker.exists(),
                "{cmd:?} ran the planted program: {targets}"
            );
        }
    }
    // A keychain account (the key's name there) that looks like an option.
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  mac:\n    type: keychain\n    service: app\nsecrets:\n  API_KEY:\n    targets: [mac]\n    value: x\n    rename: {{ mac: \"-oProxyCommand={marker_cmd}\" }}\n",
            sb.header()
        ),
    );
    let out = run_with_credentials(&sb, &["plan"], &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("not starting with `-`"),
        "{}",
        out.all()
    );
    assert!(!marker.exists());
}

/// The names and values of the credential variables.
fn assert_env_clean(what: &str, environ: &str, sb: &Sandbox) {
    for name in [
        "SECRETSYNC_AGE_KEY=",
        "RAILWAY_API_TOKEN=",
        "RAILWAY_TOKEN=",
        "SOPS_AGE_KEY=",
    ] {
        assert!(
            !environ.lines().any(|l| l.starts_with(name)),
            "{what} inherited {name}:\n{environ}"
        );
    }
    assert_no_credentials(what, environ, sb);
}

#[test]
fn security_and_its_shell_get_no_identity_or_token() {
    let sb = Sandbox::new();
    let standin = support::security_standin();
    let dump = sb.path("security.env");
    let wrapper = sb.path("security-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv >> {}\np=$PPID\nwhile [ \"$p\" -gt 1 ]; do\n  if [ \"$(cat /proc/$p/comm)\" = secretsync ]; then grep 'Max core file size' /proc/$p/limits >> {}.limits; break; fi\n  p=$(cut -d' ' -f4 /proc/$p/stat)\ndone\nexec {} \"$@\"\n",
            dump.display(),
            dump.display(),
            standin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kc = sb.path("kc.keychain-db");
    let created = std::process::Command::new(&standin)
        .args(["create-keychain", "-p", "pw", kc.to_str().unwrap()])
        .env("HOME", sb.dir.path())
        .status()
        .unwrap();
    assert!(created.success());
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            &format!(
                "  mac:\n    type: keychain\n    service: app\n    keychain: {}\n",
                kc.display()
            ),
            "mac",
        ),
    );
    let wrapper = wrapper.display().to_string();
    let sops = format!("{AGE_KEY_PREFIX}CANARYSOPS");
    let env = [
        ("SECRETSYNC_SECURITY", wrapper.as_str()),
        ("SOPS_AGE_KEY", sops.as_str()),
    ];
    let plan = run_with_credentials(&sb, &["plan"], &env);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let apply = run_with_credentials(&sb, &["apply", "--auto-approve"], &env);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let environ = std::fs::read_to_string(&dump).unwrap();
    assert!(environ.contains("PATH="), "the wrapper ran: {environ}");
    assert_env_clean("security's environment", &environ, &sb);
    assert!(!environ.contains("CANARYSOPS"), "{environ}");
    // The secretsync process that ran them allows no core dump.
    let limits = std::fs::read_to_string(format!("{}.limits", dump.display())).unwrap();
    assert!(!limits.is_empty());
    for l in limits.lines() {
        let fields: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(&fields[4..6], &["0", "0"], "{l}");
    }
}

/// `ssh -O check` names the master's pid.
fn master_pid(link: &Path) -> u32 {
    let out = std::process::Command::new("ssh")
        .arg("-S")
        .arg(link.join("master"))
        .args(["-O", "check", "kept"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let start = text.find("pid=").expect("master running") + 4;
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn a_kept_ssh_master_and_on_change_get_no_identity_or_token() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let remote = tempfile::tempdir().unwrap();
    let file = remote.path().join("app.env");
    let hook_env = remote.path().join("on_change.env");
    let mut targets = String::from("  vps:\n    type: ssh_env\n");
    targets.push_str(&sshd.yaml("root", 4));
    targets.push_str(&format!(
        "    path: {}\n    on_change: env > {}\n",
        file.display(),
        hook_env.display()
    ));
    sb.write("secrets.yaml", &manifest_with(&sb, &targets, "vps"));
    let kept = KeptMasters::new();
    let env: Vec<(&str, String)> = kept.env("60s");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let plan = run_with_credentials(&sb, &["plan"], &env);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let links = kept.links();
    assert_eq!(links.len(), 1, "{links:?}");
    let pid = master_pid(&links[0]);
    // The master outlives the run: its environment is readable for an hour.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
    assert!(environ.contains("PATH="), "{environ}");
    assert_env_clean("the kept ssh master's environment", &environ, &sb);

    let apply = run_with_credentials(&sb, &["apply", "--auto-approve"], &env);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let hook = std::fs::read_to_string(&hook_env).unwrap();
    assert_env_clean("on_change's environment", &hook, &sb);
    kept.end_all();
}

/// Saves a plan of one drifted env file and returns its path and JSON.
fn saved_plan(sb: &Sandbox) -> (std::path::PathBuf, serde_json::Value) {
    sb.write("a.env", "API_KEY=old\n");
    sb.write("b.env", "API_KEY=old\n");
    sb.write(
        "secrets.yaml",
        &manifest_with(
            sb,
            "  a:\n    type: env_file\n    path: a.env\n  b:\n    type: env_file\n    path: b.env\n",
            "a, b",
        ),
    );
    let out = sb.run(&["plan", "--out", "saved.plan", "-t", "a"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let path = sb.path("saved.plan");
    let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, json)
}

#[test]
fn a_tampered_saved_plan_is_refused_and_writes_nothing() {
    let sb = Sandbox::new();
    let (path, original) = saved_plan(&sb);
    assert!(original["mac"].as_str().is_some_and(|m| m.len() == 64));

    let mut no_targets = original.clone();
    no_targets["targets"] = serde_json::json!([]);
    let mut other_change = original.clone();
    other_change["targets"][0]["changes"][0]["op"] = serde_json::json!("delete");
    let mut renamed = original.clone();
    renamed["targets"][0]["name"] = serde_json::json!("b");
    let mut no_mac = original.clone();
    no_mac.as_object_mut().unwrap().remove("mac");
    for (what, doc, says) in [
        // Before: an empty list meant "every target", applied without asking.
        ("no targets", no_targets, "names no target"),
        ("a changed change", other_change, "its MAC does not match"),
        ("another target", renamed, "its MAC does not match"),
        ("no MAC", no_mac, "carries no MAC"),
    ] {
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let out = sb.run(&["apply", "saved.plan"]);
        assert_eq!(out.code, 1, "{what}: {}", out.all());
        assert!(out.stderr.contains(says), "{what}: {}", out.all());
        assert!(out.stderr.contains("nothing was applied"), "{}", out.all());
        assert_eq!(sb.read("a.env"), "API_KEY=old\n", "{what}");
        assert_eq!(sb.read("b.env"), "API_KEY=old\n", "{what}");
    }

    // The untouched plan still applies, to its own target only.
    std::fs::write(&path, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    let out = sb.run(&["apply", "saved.plan"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(sb.read("a.env"), format!("API_KEY={VALUE}\n"));
    assert_eq!(sb.read("b.env"), "API_KEY=old\n");
}

/// Every table of `md` as GitHub's dialect parses it: per table, each row's
/// cell count (the header row first).
pub(crate) fn table_rows(md: &str) -> Vec<Vec<usize>> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut tables = Vec::new();
    let mut cells = 0;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => tables.push(Vec::new()),
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => {
                if let Some(t) = tables.last_mut() {
                    t.push(cells);
                }
            }
            _ => {}
        }
    }
    tables
}

/// What a markdown renderer (GitHub's dialect: tables) makes of `md`: every
/// table row's cell count, and any link, image or raw HTML outside the
/// `<details>`/`<summary>`/`<code>` tags the plan uses itself.
fn rendered(md: &str) -> (Vec<usize>, Vec<String>) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows = Vec::new();
    let mut cells = 0;
    let mut forged = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => rows.push(cells),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => forged.push(dest_url.to_string()),
            Event::Html(h) | Event::InlineHtml(h) => {
                let h = h.trim();
                let ours = [
                    "<details>",
                    "</details>",
                    "<summary>",
                    "</summary>",
                    "<code>",
                    "</code>",
                ];
                let mut rest = h.to_string();
                for t in ours {
                    rest = rest.replace(t, "");
                }
                if rest.contains('<') {
                    forged.push(h.to_string());
                }
            }
            _ => {}
        }
    }
    (rows, forged)
}

#[test]
fn markdown_cannot_be_forged_by_names_paths_or_file_contents() {
    let sb = Sandbox::new();
    let evil_target = "api` | ✅ in sync | ![x](https://evil.example/p.png) `";
    let evil_dir = "![x](https://evil.example/i.png) | <img src=x> [ok](https://evil.example)";
    std::fs::create_dir_all(sb.path(evil_dir)).unwrap();
    sb.write(
        "drift.env",
        "# ```\n# </details> All in sync ![y](https://evil.example/y.png)\n# ````\nAPI_KEY=old\n",
    );
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  \"{}\":\n    type: env_file\n    path: drift.env\n  broken:\n    type: env_file\n    path: \"{evil_dir}\"\nsecrets:\n  API_KEY:\n    targets: [\"{}\", broken]\n    encrypted: |\n{}",
            sb.header(),
            evil_target.replace('"', "\\\""),
            evil_target.replace('"', "\\\""),
            sb.encrypted(VALUE, 6)
        ),
    );
    let out = sb.run(&["plan", "--format", "markdown"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let (rows, forged) = rendered(&out.stdout);
    assert!(forged.is_empty(), "{forged:?}\n{}", out.stdout);
    // The summary table: a header and two targets, two cells each; the
    // drifted target's keys: two cells each (key, state: no key is renamed,
    // so no secret column, #29).
    assert_eq!(rows, vec![2, 2, 2, 2, 2], "{}", out.stdout);
    // The diff's fence outlasts the four backticks in the file.
    assert!(out.stdout.contains("\n`````diff\n"), "{}", out.stdout);
    assert_no_canary("markdown", out.stdout.as_bytes(), &[VALUE]);

    // The apply report too.
    let out = sb.run(&["apply", "--auto-approve", "--format", "markdown"]);
    let (_, forged) = rendered(&out.stdout);
    assert!(forged.is_empty(), "{forged:?}\n{}", out.stdout);
}

/// The matrix of changed secrets × targets and the secret column of renamed
/// keys (#29) carry names from the manifest too: a secret's name and target
/// names cannot add a cell, a link or HTML, in the comment or in a budget
/// that cuts it short.
#[test]
fn markdown_matrix_and_renamed_keys_cannot_be_forged() {
    let sb = Sandbox::new();
    let evil_secret = "s` | add | ![x](https://evil.example/s.png) <img src=x> `";
    let evil_target = "b | change | [ok](https://evil.example) <details>";
    sb.write("a.env", "API_KEY=old\nOTHER=1\n");
    sb.write("b.env", "API_KEY=old\n");
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  a: {{ type: env_file, path: a.env, prune: true }}\n  \"{evil_target}\": {{ type: env_file, path: b.env }}\nsecrets:\n  \"{}\":\n    targets: [a, \"{evil_target}\"]\n    rename: {{ a: API_KEY, \"{evil_target}\": API_KEY }}\n    encrypted: |\n{}",
            sb.header(),
            evil_secret.replace('"', "\\\""),
            sb.encrypted(VALUE, 6)
        ),
    );
    for limit in ["60000", "1000"] {
        let out = sb.run(&["plan", "--format", "markdown", "--markdown-limit", limit]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(out.stdout.len() <= limit.parse().unwrap(), "{}", out.stdout);
        let (_, forged) = rendered(&out.stdout);
        assert!(forged.is_empty(), "{forged:?}\n{}", out.stdout);
        for table in table_rows(&out.stdout) {
            assert!(
                table.iter().all(|n| *n == table[0]),
                "{table:?}\n{}",
                out.stdout
            );
        }
        assert_no_canary("markdown", out.stdout.as_bytes(), &[VALUE]);
        if limit == "60000" {
            // The summary table; the matrix (a secret column and one per
            // target; the secret and the unmanaged key); each target's keys
            // with the secret column (renamed).
            assert_eq!(
                table_rows(&out.stdout),
                vec![vec![2, 2, 2], vec![3, 3, 3], vec![3, 3, 3], vec![3, 3]],
                "{}",
                out.stdout
            );
            // Values none of the manifest's: `outside` (#25).
            assert!(
                out.stdout.contains("| outside | outside |"),
                "{}",
                out.stdout
            );
            assert!(out.stdout.contains("| delete |  |"), "{}", out.stdout);
        } else {
            assert!(
                out.stdout.contains("left out: see the job's step summary"),
                "{}",
                out.stdout
            );
        }
    }
}

#[test]
fn an_identity_file_others_can_read_is_refused_except_the_published_demo() {
    let sb = Sandbox::new();
    sb.write("app.env", "");
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            "  app:\n    type: env_file\n    path: app.env\n",
            "app",
        ),
    );
    std::fs::set_permissions(&sb.identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sb.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "the identity file {} can be read or changed by other users (mode 0644)",
            sb.identity.display()
        )),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("chmod 600"), "{}", out.all());
    std::fs::set_permissions(&sb.identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(sb.run(&["plan"]).code, 0);

    // The demo's identity is public on purpose: a fresh clone (0644) plans.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let copy = tempfile::tempdir().unwrap();
    support::cli::copy_dir(&demo, copy.path());
    let id = copy.path().join("demo-identity.txt");
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = support::cli::secretsync_cmd(copy.path());
    cmd.args(["plan", "-f", "secrets.yaml", "-i"]).arg(&id);
    let out = support::cli::run(cmd);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn an_ssh_rsa_identity_is_refused_as_documented() {
    let sb = Sandbox::new();
    sb.write("app.env", "");
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            "  app:\n    type: env_file\n    path: app.env\n",
            "app",
        ),
    );
    let key = sb.path("id_rsa");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let mut cmd = support::cli::secretsync_cmd(sb.dir.path());
    cmd.args(["plan", "-i"]).arg(&key);
    let out = support::cli::run(cmd);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("only ssh-ed25519 private keys are supported"),
        "{}",
        out.all()
    );
}

#[test]
fn a_pull_request_planned_without_base_is_warned_about() {
    let sb = Sandbox::new();
    sb.write("app.env", "");
    sb.write(
        "secrets.yaml",
        &manifest_with(
            &sb,
            "  app:\n    type: env_file\n    path: app.env\n",
            "app",
        ),
    );
    let summary = sb.path("summary.md");
    let summary = summary.to_str().unwrap();
    let warning = "::warning title=secretsync%3A plan without --base::";
    for (event, args, warned) in [
        ("pull_request", &["plan"][..], true),
        ("pull_request_target", &["plan"], true),
        (
            "pull_request",
            &["plan", "--base", "file:secrets.yaml"],
            false,
        ),
        ("push", &["plan"], false),
    ] {
        let out = sb.run_with(
            args,
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_STEP_SUMMARY", summary),
            ],
        );
        assert_ne!(out.code, 1, "{event} {args:?}: {}", out.all());
        assert_eq!(
            out.stderr.matches(warning).count(),
            usize::from(warned),
            "{event} {args:?}: {}",
            out.all()
        );
        assert!(!out.stdout.contains(warning), "{}", out.stdout);
    }
}

#[test]
fn annotations_cannot_be_forged_by_a_target_name() {
    let sb = Sandbox::new();
    sb.write("app.env", "API_KEY=old\n");
    let name = "app::error file=secrets.yaml,line=1::FORGED 100% in sync";
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  \"{name}\":\n    type: env_file\n    path: app.env\nsecrets:\n  API_KEY:\n    targets: [\"{name}\"]\n    encrypted: |\n{}",
            sb.header(),
            sb.encrypted(VALUE, 6)
        ),
    );
    let summary = sb.path("summary.md");
    let out = sb.run_with(
        &["plan"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let all = out.all();
    let commands: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(|l| l.split_once("::").unwrap().1)
        .collect();
    // One drift warning; the name's `::`, `,` and `%` are escaped inside it.
    assert_eq!(commands.len(), 1, "{}", out.all());
    let (head, message) = commands[0].split_once("::").unwrap();
    assert!(
        head.starts_with("warning title=secretsync drift%3A app%3A%3Aerror"),
        "{head}"
    );
    assert!(!head.contains(',') && !head.contains("::"), "{head}");
    assert!(message.contains("100%25"), "{message}");
    assert_no_canary("annotations", out.all().as_bytes(), &[VALUE]);
}
