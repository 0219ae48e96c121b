//! One target of three failing while the other two are applied and
//! verified (issue #9): a local env file, an env file over the test sshd and
//! a Railway service, each failing in turn (sshd down; Railway answering 500
//! to everything; the local "file" a directory). Apply exits 1, names the
//! failing target and the cause, writes and verifies the two others; once
//! the fault is gone, apply converges and plan says in sync.

use crate::support;

use std::path::PathBuf;

use support::cli::{assert_no_canary, Out, Sandbox};
use support::railway_server::{Fault, RailwayServer};
use support::sshd::Sshd;

const PROJECT: &str = "p-0f1e2d3c";
const PROD: &str = "env-prod-1";
const API: &str = "svc-api-1";
const TOKEN: &str = "CANARY-faults-token-1f2e";
const VALUES: [&str; 2] = ["CANARY-faults-a-9a8b", "CANARY-faults-b \"q\" $x"];

struct Three {
    sb: Sandbox,
    sshd: Sshd,
    railway: RailwayServer,
    _remote: tempfile::TempDir,
    remote_file: PathBuf,
}

impl Three {
    fn new() -> Three {
        let sb = Sandbox::new();
        let sshd = Sshd::start();
        let railway = RailwayServer::start();
        railway.add_project(PROJECT, "shop");
        railway.add_environment(PROJECT, PROD, "production");
        railway.add_service(PROJECT, API, "api");
        railway.add_account_token(TOKEN);
        let remote = tempfile::tempdir().unwrap();
        let remote_file = remote.path().join("app.env");
        let mut m = sb.header();
        m.push_str("targets:\n  local: { type: env_file, path: local.env }\n");
        m.push_str("  vps:\n    type: ssh_env\n");
        m.push_str(&sshd.yaml("root", 4));
        m.push_str(&format!("    path: {}\n", remote_file.display()));
        m.push_str(&format!(
            "  api:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: api\nsecrets:\n"
        ));
        for (key, value) in [("A", VALUES[0]), ("B", VALUES[1])] {
            m.push_str(&format!(
                "  {key}:\n    targets: [local, vps, api]\n    encrypted: |\n{}",
                sb.encrypted(value, 6)
            ));
        }
        sb.write("secrets.yaml", &m);
        Three {
            sb,
            sshd,
            railway,
            _remote: remote,
            remote_file,
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        let url = self.railway.url();
        let out = self.sb.run_with(
            args,
            &[
                ("SECRETSYNC_RAILWAY_ENDPOINT", &url),
                ("RAILWAY_API_TOKEN", TOKEN),
                ("SECRETSYNC_RAILWAY_BACKOFF", "0.01"),
                ("SECRETSYNC_RAILWAY_TIMEOUT", "2"),
            ],
        );
        let mut canaries = VALUES.to_vec();
        canaries.push(TOKEN);
        assert_no_canary(&format!("{args:?}"), out.all().as_bytes(), &canaries);
        out
    }

    fn local_holds_the_values(&self) -> bool {
        std::fs::read_to_string(self.sb.path("local.env")).ok()
            // The default format: bare where every reader agrees, else single quotes.
            == Some(format!("A={}\nB='{}'\n", VALUES[0], VALUES[1]))
    }

    fn vps_holds_the_values(&self) -> bool {
        let text = std::fs::read_to_string(&self.remote_file).unwrap_or_default();
        let doc = secretsync::envfile::EnvFile::parse(&text).unwrap();
        let e = doc.entries();
        e.get("A").map(|s| s.expose()) == Some(VALUES[0])
            && e.get("B").map(|s| s.expose()) == Some(VALUES[1])
    }

    fn api_holds_the_values(&self) -> bool {
        let vars = self.railway.vars(PROJECT, PROD, Some(API));
        vars.get("A") == Some(&Some(VALUES[0].into()))
            && vars.get("B") == Some(&Some(VALUES[1].into()))
    }

    /// Apply with one target broken: exit 1, the two others applied and
    /// verified, the broken one named with `cause`; then `heal` and converge.
    fn one_fails(&mut self, broken: &str, cause: &[&str], heal: impl FnOnce(&mut Three)) {
        let apply = self.run(&["apply", "--auto-approve"]);
        assert_eq!(apply.code, 1, "{}", apply.all());
        let all = apply.all();
        for (name, desc) in [
            ("local", "env file local.env".to_string()),
            (
                "vps",
                format!(
                    "env file ssh://root@127.0.0.1:{}{} over SSH",
                    self.sshd.port,
                    self.remote_file.display()
                ),
            ),
            (
                "api",
                format!("railway service api in production (project {PROJECT})"),
            ),
        ] {
            if name == broken {
                // The report's line for it, and the cause right under it.
                let head = format!("{name} ({desc}): not applied: it could not be read\n");
                let at = apply
                    .stdout
                    .find(&head)
                    .unwrap_or_else(|| panic!("no failure line for {name}:\n{all}"));
                let detail: String = apply.stdout[at + head.len()..]
                    .lines()
                    .take_while(|l| l.starts_with("    "))
                    .collect::<Vec<_>>()
                    .join("\n");
                for c in cause {
                    assert!(detail.contains(c), "cause {c:?} not under {head}:\n{all}");
                }
            } else {
                assert!(
                    all.contains(&format!(
                        "{name} ({desc}): applied (2 changes, read back and verified)"
                    )),
                    "{name} not applied and verified:\n{all}"
                );
            }
        }
        assert!(
            all.contains("Apply: 2 targets applied and verified, 0 in sync, 1 failed."),
            "{all}"
        );
        assert_eq!(self.local_holds_the_values(), broken != "local");
        assert_eq!(self.vps_holds_the_values(), broken != "vps");
        assert_eq!(self.api_holds_the_values(), broken != "api");

        heal(self);
        let again = self.run(&["apply", "--auto-approve"]);
        assert_eq!(again.code, 0, "{}", again.all());
        assert!(
            again
                .stdout
                .contains("Apply: 1 target applied and verified, 2 in sync, 0 failed."),
            "{}",
            again.stdout
        );
        assert!(self.local_holds_the_values());
        assert!(self.vps_holds_the_values());
        assert!(self.api_holds_the_values());
        let plan = self.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 0, "{}", plan.all());
    }
}

#[test]
fn sshd_down_fails_only_the_ssh_target() {
    let mut t = Three::new();
    t.sshd.stop();
    t.one_fails("vps", &["connection refused"], |t| t.sshd.restart());
}

#[test]
fn a_railway_500_storm_fails_only_the_railway_target() {
    let mut t = Three::new();
    t.railway.fail_next(1000, Fault::Status(500));
    t.one_fails(
        "api",
        &["answered HTTP 500 (4 attempts)", "Railway at"],
        |t| t.railway.clear_faults(),
    );
}

#[test]
fn a_local_env_file_that_is_a_directory_fails_only_the_local_target() {
    let mut t = Three::new();
    std::fs::create_dir(t.sb.path("local.env")).unwrap();
    t.one_fails(
        "local",
        &["local.env is a directory, not an env file"],
        |t| std::fs::remove_dir(t.sb.path("local.env")).unwrap(),
    );
}
