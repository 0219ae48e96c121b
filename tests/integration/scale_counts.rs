//! The round trips the scaling benchmark (`benches/scale.rs`, issue #8)
//! measures, as exact assertions on a small scenario: counts are stable where
//! times are not. Every expected number is derived from the design, in the
//! comments next to it:
//! - Railway: one `project` query per project per run, one aliased
//!   `variables` read per project per round, and per written service one
//!   re-read and one mutation;
//! - SSH: one master connection per host per run, shared by every target on
//!   the host whatever its kind; one read command per host per round for its
//!   env files, one for its keychain targets; one write command per changed
//!   file; a keychain write is a conflict-check read and one `security -i`.

use crate::support;

use support::cli::{assert_no_canary, Sandbox};
use support::railway_server::RailwayServer;
use support::sshd::{is_root, KeptMasters, Sshd};

const TOKEN: &str = "CANARY-scale-counts-token-51f0";
const ENV: &str = "env-prod";
const OLD: &str = "CANARY-old-value-0d1e";

fn value(key: &str) -> String {
    format!("CANARY-{key}-value-7c2a")
}

const SECRETS: [&str; 3] = ["S1", "S2", "S3"];
/// Railway services: (project, service id, service name).
const SERVICES: [(&str, &str, &str); 5] = [
    ("p-one", "svc-a", "a"),
    ("p-one", "svc-b", "b"),
    ("p-one", "svc-c", "c"),
    ("p-two", "svc-d", "d"),
    ("p-two", "svc-e", "e"),
];

struct World {
    server: RailwayServer,
    h1: Sshd,
    h2: Sshd,
    sb: Sandbox,
}

impl World {
    fn ssh(&self) -> (usize, usize) {
        (
            self.h1.connections() + self.h2.connections(),
            self.h1.command_count() + self.h2.command_count(),
        )
    }

    /// Runs the binary; returns its exit code, the HTTP requests it sent as
    /// (`project` queries, `variables` reads, mutations, all), and its SSH
    /// connections and remote commands.
    fn run(&self, args: &[&str]) -> (i32, [usize; 4], (usize, usize)) {
        self.run_env(args, &[])
    }

    /// [`World::run`] with more environment variables.
    fn run_env(
        &self,
        args: &[&str],
        more: &[(&'static str, String)],
    ) -> (i32, [usize; 4], (usize, usize)) {
        self.server.clear_requests();
        let (c0, m0) = self.ssh();
        let url = self.server.url();
        let standin = support::security_standin();
        let mut env: Vec<(&str, &str)> = vec![
            ("SECRETSYNC_RAILWAY_ENDPOINT", &url),
            ("RAILWAY_API_TOKEN", TOKEN),
            ("SECRETSYNC_SECURITY", standin.to_str().unwrap()),
        ];
        env.extend(more.iter().map(|(k, v)| (*k, v.as_str())));
        let out = self.sb.run_with(args, &env);
        let mut canaries = vec![TOKEN.to_string(), OLD.to_string()];
        canaries.extend(SECRETS.iter().map(|k| value(k)));
        let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
        assert_no_canary(&format!("{args:?}"), out.all().as_bytes(), &canaries);
        let (c1, m1) = self.ssh();
        (
            out.code,
            [
                self.server.count("project"),
                self.server.count("variables"),
                self.server.mutations(),
                self.server.requests().len(),
            ],
            (c1 - c0, m1 - m0),
        )
    }
}

fn security(args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(support::security_standin())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("returned"), "{err}");
}

/// 5 Railway services in 2 projects; host H1 with env files f1, f2 and
/// keychain targets k1, k2; host H2 with env files f3, f4. S1..S3 go to every
/// Railway service and env file, S1 and S2 to both keychain targets.
/// Drift: service a holds an old S1, service d lacks S2, f1 holds an old S3,
/// k1 lacks S1; everything else is in sync.
fn world() -> World {
    let server = RailwayServer::start();
    server.add_account_token(TOKEN);
    for p in ["p-one", "p-two"] {
        server.add_project(p, p);
        server.add_environment(p, ENV, "production");
    }
    for (p, id, name) in SERVICES {
        server.add_service(p, id, name);
        for k in SECRETS {
            let v = match (id, k) {
                ("svc-a", "S1") => OLD.to_string(),
                ("svc-d", "S2") => continue,
                _ => value(k),
            };
            server.set_var(p, ENV, Some(id), k, &v);
        }
    }
    let h1 = Sshd::start();
    let h2 = Sshd::start();
    let sb = Sandbox::new();
    let files = [("f1", &h1), ("f2", &h1), ("f3", &h2), ("f4", &h2)];
    for (f, _) in files {
        let text: String = SECRETS
            .iter()
            .map(|k| {
                let v = if (f, *k) == ("f1", "S3") {
                    OLD.to_string()
                } else {
                    value(k)
                };
                format!("{k}=\"{v}\"\n")
            })
            .collect();
        sb.write(&format!("{f}.env"), &text);
    }
    let keychain = sb.path("mac.keychain-db");
    let kc = keychain.to_str().unwrap();
    security(&["create-keychain", "-p", "pw", kc], "");
    let mut lines = String::new();
    for (svc, keys) in [("k1", &["S2"][..]), ("k2", &["S1", "S2"][..])] {
        for k in keys {
            lines.push_str(&format!(
                "add-generic-password -a {k} -s {svc} -w \"{}\" {kc}\n",
                value(k)
            ));
        }
    }
    security(&["-i"], &lines);

    let mut m = sb.header();
    m.push_str("targets:\n");
    for (_, _, name) in SERVICES {
        let p = if "abc".contains(name) {
            "p-one"
        } else {
            "p-two"
        };
        m.push_str(&format!(
            "  {name}:\n    type: railway\n    project: {p}\n    environment: production\n    service: {name}\n"
        ));
    }
    for (f, host) in files {
        m.push_str(&format!("  {f}:\n    type: ssh_env\n"));
        m.push_str(&host.yaml("root", 4));
        m.push_str(&format!(
            "    path: {}\n",
            sb.path(&format!("{f}.env")).display()
        ));
    }
    for k in ["k1", "k2"] {
        m.push_str(&format!("  {k}:\n    type: keychain\n"));
        m.push_str(&h1.yaml("root", 4));
        m.push_str(&format!("    service: {k}\n    keychain: {kc}\n"));
    }
    m.push_str("secrets:\n");
    for k in SECRETS {
        let targets = if k == "S3" {
            "[a, b, c, d, e, f1, f2, f3, f4]"
        } else {
            "[a, b, c, d, e, f1, f2, f3, f4, k1, k2]"
        };
        m.push_str(&format!(
            "  {k}:\n    targets: {targets}\n    encrypted: |\n{}",
            sb.encrypted(&value(k), 6)
        ));
    }
    sb.write("secrets.yaml", &m);
    World { server, h1, h2, sb }
}

#[test]
fn plan_and_apply_make_the_round_trips_the_design_says() {
    if !is_root() {
        eprintln!("skipped: the SSH hosts log in as root");
        return;
    }
    let w = world();

    // plan: per project one `project` query and one batched `variables`
    // read (2 + 2); one connection per host (2, the keychain targets share
    // H1's); per host one env-file read, and H1 one keychain read (3).
    let (code, http, ssh) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 2, "changes pending");
    assert_eq!(
        http,
        [2, 2, 0, 4],
        "plan: [project, variables, mutations, all]"
    );
    assert_eq!(ssh, (2, 3), "plan: (SSH connections, remote commands)");

    // apply = the plan's round trips, then the writes, then one verify round:
    // - Railway: a and d changed: each one re-read and one mutation (2 + 2),
    //   then a verify read per project of a written service (2): project 2,
    //   variables 2 + 2 + 2, mutations 2 (one per service with changes), 10.
    // - SSH: still one connection per host; commands: the plan's 3, f1's
    //   write (1), k1's conflict-check read and `security -i` (2), the verify
    //   reads of H1's env files (1) and of H1's keychain (1): 8.
    let (code, http, ssh) = w.run(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "applied and verified");
    assert_eq!(
        http,
        [2, 6, 2, 10],
        "apply: [project, variables, mutations, all]"
    );
    assert_eq!(ssh, (2, 8), "apply: (SSH connections, remote commands)");

    // In sync now: the plan's round trips again and nothing to write.
    let (code, http, ssh) = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "in sync after apply");
    assert_eq!(http, [2, 2, 0, 4]);
    assert_eq!(ssh, (2, 3));
    let vars = w.server.vars("p-two", ENV, Some("svc-d"));
    assert_eq!(vars.get("S2"), Some(&Some(value("S2"))));
}

#[test]
fn kept_connections_are_opened_once_across_runs() {
    if !is_root() {
        eprintln!("skipped: the SSH hosts log in as root");
        return;
    }
    let w = world();
    let kept = KeptMasters::new();
    let env = kept.env("60s");

    // The first run opens the two hosts' masters and leaves them up; the
    // next ones make the same requests and commands over them, and no new
    // connection (the benchmark's warm rows).
    let (code, http, ssh) = w.run_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(code, 2);
    assert_eq!(http, [2, 2, 0, 4]);
    assert_eq!(ssh, (2, 3));
    assert_eq!(kept.links().len(), 2);
    let (code, http, ssh) = w.run_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(code, 2);
    assert_eq!(http, [2, 2, 0, 4]);
    assert_eq!(ssh, (0, 3), "plan again: no new connection");
    let (code, http, ssh) = w.run_env(&["apply", "--auto-approve"], &env);
    assert_eq!(code, 0);
    assert_eq!(http, [2, 6, 2, 10]);
    assert_eq!(ssh, (0, 8), "apply: the plan's connections");
}
