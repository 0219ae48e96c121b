//! Environments (#27) through the real binary: a two-environment manifest
//! with overrides, one-for-all, per-environment and single-environment
//! secrets and an environment-restricted target, applied to env files on
//! disk, the in-repo Railway server and the keychain stand-in; identities
//! made per environment, never committed; canaries never printed.

use std::path::PathBuf;
use std::process::Command;

use secretsync::crypto::{self, Recipient};
use support::cli::{assert_no_canary, run, secretsync_cmd, Out, Sandbox};
use support::railway_server::RailwayServer;

use crate::support;

const PROJECT: &str = "p-envs-1";
const PROD: &str = "env-prod-1";
const STAGING: &str = "env-stg-2";
const API: &str = "svc-api-1";
const TOKEN: &str = "CANARY-railway-token-envs-4c1f";

const DB_STAGING: &str = "CANARY-db-staging-7f3a";
const DB_PROD: &str = "CANARY-db-production-91be";
const API_KEY: &str = "CANARY-api-key-shared-55d0";
const DEBUG: &str = "CANARY-debug-staging-only-0aa1";
const KC_PASSWORD: &str = "standin-keychain-pw";

/// One age identity written to `dir/file` (mode 0600).
fn identity(sb: &Sandbox, file: &str, keys: &[&age::x25519::Identity]) -> PathBuf {
    use secrecy::ExposeSecret;
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_string().expose_secret()))
        .collect();
    let path = sb.path(file);
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn armored(to: &[Recipient], value: &str, indent: usize) -> String {
    let a = crypto::encrypt(to, value.as_bytes()).unwrap();
    let pad = " ".repeat(indent);
    a.lines().map(|l| format!("{pad}{l}\n")).collect()
}

struct World {
    sb: Sandbox,
    railway: RailwayServer,
    staging_id: PathBuf,
    production_id: PathBuf,
    both_id: PathBuf,
    staging_key: age::x25519::Identity,
    production_key: age::x25519::Identity,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        let railway = RailwayServer::start();
        railway.add_project(PROJECT, "shop");
        railway.add_environment(PROJECT, PROD, "production");
        railway.add_environment(PROJECT, STAGING, "staging");
        railway.add_service(PROJECT, API, "api");
        railway.add_account_token(TOKEN);
        let staging_key = age::x25519::Identity::generate();
        let production_key = age::x25519::Identity::generate();
        let staging_id = identity(&sb, "staging.txt", &[&staging_key]);
        let production_id = identity(&sb, "production.txt", &[&production_key]);
        let both_id = identity(&sb, "both.txt", &[&staging_key, &production_key]);
        let out = Command::new(support::security_standin())
            .args(["create-keychain", "-p", KC_PASSWORD])
            .arg(sb.path("envs.keychain-db"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        World {
            sb,
            railway,
            staging_id,
            production_id,
            both_id,
            staging_key,
            production_key,
        }
    }

    fn staging(&self) -> Recipient {
        Recipient::X25519(self.staging_key.to_public())
    }

    fn production(&self) -> Recipient {
        Recipient::X25519(self.production_key.to_public())
    }

    fn manifest(&self) -> String {
        let (s, p) = (self.staging(), self.production());
        let mut m = format!(
            "version: 1\nrecipients:\n  - {s}\n  - {p}\nenvironments:\n  staging:\n    recipients: [{s}]\n    targets:\n      app: {{path: app-staging.env}}\n  production:\n    recipients: [{p}]\n"
        );
        m.push_str(&format!(
            "targets:\n  api: {{type: railway, project: {PROJECT}, service: api}}\n  app: {{type: env_file, path: app-production.env}}\n  mac:\n    type: keychain\n    service: envs\n    keychain: {}\n    environments: [production]\n",
            self.sb.path("envs.keychain-db").display()
        ));
        m.push_str("secrets:\n  DATABASE_URL:\n    targets: [api, app]\n    encrypted:\n      staging: |\n");
        m.push_str(&armored(&[s.clone()], DB_STAGING, 8));
        m.push_str("      production: |\n");
        m.push_str(&armored(&[p.clone()], DB_PROD, 8));
        m.push_str("  LOG_LEVEL:\n    targets: [api, app, mac]\n    value: info\n");
        m.push_str(&format!(
            "  DEBUG_TOKEN:\n    targets: [api, app]\n    environments: [staging]\n    value: {DEBUG}\n"
        ));
        m.push_str("  API_KEY:\n    targets: [app, mac]\n    encrypted: |\n");
        m.push_str(&armored(&[s, p], API_KEY, 6));
        m
    }

    fn run(&self, identity: &PathBuf, args: &[&str]) -> Out {
        let mut cmd = secretsync_cmd(self.sb.dir.path());
        cmd.args(args)
            .arg("--identity")
            .arg(identity)
            .env("SECRETSYNC_SECURITY", support::security_standin())
            .env("SECRETSYNC_RAILWAY_ENDPOINT", self.railway.url())
            .env("RAILWAY_API_TOKEN", TOKEN)
            .env("SECRETSYNC_RAILWAY_BACKOFF", "0.01")
            .env("SECRETSYNC_RAILWAY_TIMEOUT", "2")
            .env("SECRETSYNC_RAILWAY_MAX_WAIT", "3");
        let out = run(cmd);
        for text in [&out.stdout, &out.stderr] {
            assert_no_canary(
                &format!("secretsync {}", args.join(" ")),
                text.as_bytes(),
                &[DB_STAGING, DB_PROD, API_KEY, DEBUG, TOKEN],
            );
        }
        out
    }

    fn keychain_value(&self, account: &str) -> Option<String> {
        let out = Command::new(support::security_standin())
            .args(["find-generic-password", "-a", account, "-s", "envs", "-w"])
            .arg(self.sb.path("envs.keychain-db"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn railway_value(&self, env: &str, key: &str) -> Option<String> {
        self.railway
            .vars(PROJECT, env, Some(API))
            .get(key)
            .cloned()
            .flatten()
    }
}

/// Apply writes each value only to its own environment's targets: on disk,
/// on the Railway server, in the keychain stand-in.
#[test]
fn apply_writes_each_value_only_to_its_environment() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let plan = w.run(&w.both_id, &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    for want in [
        "== environment staging ==",
        "== environment production ==",
        "api@staging",
        "app@production",
        "mac@production",
        "All environments: Plan:",
    ] {
        assert!(plan.stdout.contains(want), "{want}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("mac@staging"), "{}", plan.stdout);

    let out = w.run(&w.both_id, &["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{}", out.all());

    let staging = w.sb.read("app-staging.env");
    let production = w.sb.read("app-production.env");
    assert!(
        staging.contains(&format!("DATABASE_URL={DB_STAGING}")),
        "{staging}"
    );
    assert!(
        staging.contains(&format!("DEBUG_TOKEN={DEBUG}")),
        "{staging}"
    );
    assert!(staging.contains(&format!("API_KEY={API_KEY}")), "{staging}");
    assert!(staging.contains("LOG_LEVEL=info"), "{staging}");
    assert!(!staging.contains(DB_PROD), "{staging}");
    assert!(
        production.contains(&format!("DATABASE_URL={DB_PROD}")),
        "{production}"
    );
    assert!(
        production.contains(&format!("API_KEY={API_KEY}")),
        "{production}"
    );
    assert!(!production.contains(DB_STAGING), "{production}");
    assert!(!production.contains(DEBUG), "{production}");

    // Railway: `environment:` is the environment's name.
    assert_eq!(
        w.railway_value(STAGING, "DATABASE_URL").as_deref(),
        Some(DB_STAGING)
    );
    assert_eq!(
        w.railway_value(PROD, "DATABASE_URL").as_deref(),
        Some(DB_PROD)
    );
    assert_eq!(
        w.railway_value(STAGING, "DEBUG_TOKEN").as_deref(),
        Some(DEBUG)
    );
    assert_eq!(w.railway_value(PROD, "DEBUG_TOKEN"), None);
    assert_eq!(w.railway_value(PROD, "LOG_LEVEL").as_deref(), Some("info"));

    // The keychain is production's only.
    assert_eq!(w.keychain_value("API_KEY").as_deref(), Some(API_KEY));
    assert_eq!(w.keychain_value("LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(w.keychain_value("DATABASE_URL"), None);

    let again = w.run(&w.both_id, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
}

/// With staging's identity only: every environment planned says production
/// was skipped (exit 3); `--env staging` plans and applies staging alone.
#[test]
fn a_staging_identity_plans_and_applies_staging() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let all = w.run(&w.staging_id, &["plan"]);
    assert_eq!(all.code, 3, "{}", all.all());
    assert!(
        all.stdout
            .contains("production: skipped, no identity can decrypt its values"),
        "{}",
        all.stdout
    );
    assert!(!all.stdout.contains("app@production"), "{}", all.stdout);

    let json = w.run(&w.staging_id, &["plan", "--format", "json"]);
    assert_eq!(json.code, 3, "{}", json.all());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let envs = doc["environments"].as_array().unwrap();
    assert_eq!(envs[0]["name"], "staging");
    assert_eq!(envs[0]["skipped"], false);
    assert_eq!(envs[1]["name"], "production");
    assert_eq!(envs[1]["skipped"], true);
    assert_eq!(doc["targets"][0]["environment"], "staging");

    let one = w.run(&w.staging_id, &["plan", "--env", "staging"]);
    assert_eq!(one.code, 0, "{}", one.all());
    assert!(!one.stdout.contains("production"), "{}", one.stdout);

    let out = w.run(
        &w.staging_id,
        &["apply", "--env", "staging", "--auto-approve"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(w.sb.read("app-staging.env").contains(DB_STAGING));
    assert!(!w.sb.path("app-production.env").exists());
    assert_eq!(w.railway_value(PROD, "DATABASE_URL"), None);

    // Production asked for by name, with staging's key: refused.
    let prod = w.run(&w.staging_id, &["plan", "--env", "production"]);
    assert_eq!(prod.code, 1, "{}", prod.all());

    // `--target app` is every environment's app; `app@staging` one.
    let t = w.run(&w.both_id, &["plan", "--target", "app"]);
    assert!(
        t.stdout.contains("app@staging") && t.stdout.contains("app@production"),
        "{}",
        t.stdout
    );
    assert!(!t.stdout.contains("api@"), "{}", t.stdout);
    let t = w.run(&w.both_id, &["plan", "--target", "app@production"]);
    assert!(!t.stdout.contains("app@staging"), "{}", t.stdout);

    // doctor: every environment, production skipped (exit 3); staging alone is clean.
    let d = w.run(&w.staging_id, &["doctor"]);
    assert_eq!(d.code, 3, "{}", d.all());
    assert!(
        d.stdout
            .contains("production: skipped, no identity can decrypt its values"),
        "{}",
        d.stdout
    );
    let d = w.run(&w.staging_id, &["doctor", "--env", "staging"]);
    assert_eq!(d.code, 0, "{}", d.all());
    assert!(
        d.stdout
            .contains("the manifest decrypts (environment staging)"),
        "{}",
        d.stdout
    );
    let d = w.run(&w.production_id, &["doctor", "--env", "staging"]);
    assert_eq!(d.code, 1, "{}", d.all());
}

/// The manifest's mistakes about environments, at their place.
#[test]
fn environment_mistakes_are_refused_where_they_stand() {
    let w = World::new();
    let base = w.manifest();
    for (from, to, want) in [
        (
            "app: {path: app-staging.env}",
            "nope: {path: app-staging.env}",
            "environment `staging` overrides target `nope`, which is not defined",
        ),
        (
            "app: {path: app-staging.env}",
            "app: {project: x}",
            "`project` does not apply to env_file targets",
        ),
        (
            "app: {path: app-staging.env}",
            "app: {path: -x}",
            "`path` of target `app@staging`",
        ),
        (
            "app: {path: app-staging.env}",
            "mac: {service: other}",
            "which is not in that environment",
        ),
        (
            "    environments: [staging]\n",
            "    environments: [qa]\n",
            "secret `DEBUG_TOKEN` names environment `qa`, which is not defined",
        ),
        (
            "app: {path: app-staging.env}",
            "api: {service: api}",
            "are the same place",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        w.sb.write("secrets.yaml", &base.replacen(from, to, 1));
        let out = w.run(&w.both_id, &["check"]);
        assert_eq!(out.code, 1, "{to}: {}", out.all());
        assert!(out.all().contains(want), "{to}: {}", out.all());
        assert!(out.all().contains("secrets.yaml:"), "{to}: {}", out.all());
    }
}
