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
        m.push_str(&armored(std::slice::from_ref(&s), DB_STAGING, 8));
        m.push_str("      production: |\n");
        m.push_str(&armored(std::slice::from_ref(&p), DB_PROD, 8));
        m.push_str("  LOG_LEVEL:\n    targets: [api, app, mac]\n    value: info\n");
        m.push_str(&format!(
            "  DEBUG_TOKEN:\n    targets: [api, app]\n    environments: [staging]\n    value: {DEBUG}\n"
        ));
        m.push_str("  API_KEY:\n    targets: [app, mac]\n    encrypted: |\n");
        m.push_str(&armored(&[s, p], API_KEY, 6));
        m
    }

    /// `set ARGS --stdin` with both environments' identity and `value` on
    /// stdin (the binary may refuse before reading it: a broken pipe is fine).
    fn set_out(&self, args: &[&str], value: &[u8]) -> std::process::Output {
        let mut cmd = secretsync_cmd(self.sb.dir.path());
        cmd.arg("set")
            .args(args)
            .arg("--stdin")
            .arg("--identity")
            .arg(&self.both_id)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(value);
        child.wait_with_output().unwrap()
    }

    /// [`World::set_out`] that must succeed, with neither `value` nor
    /// `also` in its output. Returns what it said on stderr.
    fn set(&self, args: &[&str], value: &str, also: &[&str]) -> String {
        let out = self.set_out(args, value.as_bytes());
        assert!(out.status.success(), "{out:?}");
        let canaries: Vec<&str> = std::iter::once(value).chain(also.iter().copied()).collect();
        assert_no_canary("set", &out.stderr, &canaries);
        assert_no_canary("set", &out.stdout, &canaries);
        String::from_utf8_lossy(&out.stderr).into_owned()
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

/// A production value encrypted to staging's one key has the right count
/// of stanzas, so `check` passes it (age's X25519 stanzas do not name their
/// key) and says what it cannot see; `doctor` with staging's identity opens
/// it with a key production does not list, and fails naming the secret.
#[test]
fn a_value_encrypted_to_another_environments_key_is_found_by_doctor() {
    let w = World::new();
    let m = w.manifest();
    let crossed = armored(&[w.staging()], DB_PROD, 8);
    w.sb.write("secrets.yaml", &m.replacen(&prod_block(&m), &crossed, 1));
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.arg("check");
    let c = run(cmd);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.stderr.contains("nor whether an environment's value is encrypted to its own age keys rather than as many of another environment's (`secretsync doctor` with an identity tells)"),
        "{}",
        c.stderr
    );
    let d = w.run(&w.staging_id, &["doctor"]);
    assert_eq!(d.code, 1, "{}", d.all());
    assert!(
        d.all()
            .contains("1 of production's values open with a key from")
            && d.all().contains(
                "that production does not list: DATABASE_URL; whoever holds that key can read them"
            ),
        "{}",
        d.all()
    );
    // The manifest as written: each environment's values open with its own
    // keys only, and doctor says it checked.
    w.sb.write("secrets.yaml", &m);
    let d = w.run(&w.staging_id, &["doctor"]);
    assert_eq!(d.code, 3, "{}", d.all());
    assert!(
        d.stdout
            .contains("production's values are encrypted to its recipients only")
            && d.stdout
                .contains("1 value of production tried with 1 key from")
            && d.stdout
                .contains("that production does not list: none opens"),
        "{}",
        d.stdout
    );
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

/// The armored value of `secret` in `env`, as the manifest holds it now.
fn armored_in(w: &World, secret: &str, env: &str) -> String {
    let m = secretsync::manifest::load(&w.sb.path("secrets.yaml")).unwrap();
    match m.secrets[secret].values.get(env) {
        Some(secretsync::manifest::ValueSource::Encrypted(a)) => a.clone(),
        other => panic!("{secret} in {env}: {other:?}"),
    }
}

/// `age -d -i IDENTITY` on `armored`: the value, or None when it fails.
fn age_decrypt(w: &World, identity: &PathBuf, armored: &str) -> Option<String> {
    let file = w.sb.path("value.age");
    std::fs::write(&file, armored).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(&file)
        .output()
        .expect("the age CLI runs (apt-get install age)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// compare reports each finding, never a value; promote re-encrypts to the
/// destination's recipients only (the `age` CLI says so), keeps the old
/// value under `previous` and records `set_on`.
#[test]
fn compare_and_promote() {
    let w = World::new();
    // A fingerprint key readable by both environments' keys.
    let mut m = w.manifest().replacen(
        "environments:\n",
        &format!(
            "fingerprint_key: |\n{}environments:\n",
            armored(
                &[w.staging(), w.production()],
                "0123456789abcdef0123456789abcdef",
                2
            )
        ),
        1,
    );
    let reused = "CANARY-reused-session-key-3e3e";
    m.push_str("  SESSION_KEY:\n    targets: [app]\n    encrypted:\n      staging: |\n");
    m.push_str(&armored(&[w.staging()], reused, 8));
    m.push_str("      production: |\n");
    m.push_str(&armored(&[w.production()], reused, 8));
    w.sb.write("secrets.yaml", &m);

    let c = w.run(&w.both_id, &["compare", "staging", "production"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(!c.all().contains(reused), "{}", c.all());
    assert!(
        c.stdout
            .contains("~ DATABASE_URL  values differ (staging fp:"),
        "keyed fingerprints: {}",
        c.stdout
    );
    for line in [
        "~ DATABASE_URL  values differ",
        "< DEBUG_TOKEN   only in staging  [api, app]",
        "> LOG_LEVEL     only in production  [mac]",
        "= LOG_LEVEL     same value  [api, app]",
        "> API_KEY       only in production  [mac]",
        "= API_KEY       one value for every environment  [app]",
        "! SESSION_KEY   same value in staging and production  [app]",
        "Compare staging with production: 1 differ, 1 only in staging, 2 only in production, 3 the same (1 encrypted per environment yet equal).",
    ] {
        assert!(c.stdout.contains(line), "{line}\n{}", c.stdout);
    }
    let j = w.run(
        &w.both_id,
        &["compare", "staging", "production", "--format", "json"],
    );
    assert_eq!(j.code, 2, "{}", j.all());
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["kind"], "compare");
    assert_eq!(doc["differ"], true);
    assert_eq!(doc["rows"][0]["status"], "differ");
    let md = w.run(
        &w.both_id,
        &["compare", "staging", "production", "--format", "markdown"],
    );
    assert!(
        md.stdout
            .contains("| DATABASE\\_URL | api, app | values differ |"),
        "{}",
        md.stdout
    );

    // --all asks first; without a terminal, only --yes goes on.
    let before = w.sb.read("secrets.yaml");
    let all = w.run(
        &w.both_id,
        &[
            "promote",
            "--all",
            "--from",
            "staging",
            "--to",
            "production",
        ],
    );
    assert_eq!(all.code, 1, "{}", all.all());
    assert!(
        all.stderr
            .contains("promote from staging to production: DATABASE_URL\n"),
        "{}",
        all.stderr
    );
    assert!(all.stderr.contains("pass --yes"), "{}", all.stderr);
    assert_eq!(w.sb.read("secrets.yaml"), before);
    let p = w.run(
        &w.both_id,
        &[
            "promote",
            "DATABASE_URL",
            "--from",
            "staging",
            "--to",
            "production",
        ],
    );
    assert_eq!(p.code, 0, "{}", p.all());
    let a = armored_in(&w, "DATABASE_URL", "production");
    assert_eq!(
        age_decrypt(&w, &w.production_id, &a).as_deref(),
        Some(DB_STAGING)
    );
    assert_eq!(
        age_decrypt(&w, &w.staging_id, &a),
        None,
        "staging's key reads production's value"
    );
    let after = secretsync::manifest::load(&w.sb.path("secrets.yaml")).unwrap();
    let def = &after.secrets["DATABASE_URL"];
    assert_eq!(def.previous.len(), 1, "{def:?}");
    assert_eq!(
        def.previous[0].env.as_deref(),
        Some("production"),
        "{def:?}"
    );
    // The date is production's value's: staging's was not set.
    let today = secretsync::lifecycle::today();
    let on = |env| after.lifecycle_view(def, Some(env)).set_on;
    assert_eq!(on("production"), Some(today), "{def:?}");
    assert_eq!(on("staging"), None, "{def:?}");
    // Staging's value is untouched.
    let s = armored_in(&w, "DATABASE_URL", "staging");
    assert_eq!(
        age_decrypt(&w, &w.staging_id, &s).as_deref(),
        Some(DB_STAGING)
    );

    let c = w.run(&w.both_id, &["compare", "staging", "production"]);
    assert!(
        c.stdout
            .contains("! DATABASE_URL  same value in staging and production  [api, app]"),
        "{}",
        c.stdout
    );
    // Nothing left that differs in value: --all has nothing to do.
    let all = w.run(
        &w.both_id,
        &[
            "promote",
            "--all",
            "--from",
            "staging",
            "--to",
            "production",
            "--yes",
        ],
    );
    assert_eq!(all.code, 0, "{}", all.all());
    assert!(all.stderr.contains("nothing to promote"), "{}", all.all());
}

/// `set KEY --env ENV` encrypts to that environment's recipients only; the
/// plan notes the environment without a value; `check` verifies each value
/// against its environment's recipients without an identity.
#[test]
fn set_per_environment_and_check() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let value = "CANARY-new-staging-value-8d8d";
    let said = w.set(
        &["NEW_KEY", "--env", "staging", "--target", "app"],
        value,
        &[],
    );
    assert!(
        said.contains("secret `NEW_KEY`: staging's value added to secrets.yaml"),
        "{said}"
    );
    let a = armored_in(&w, "NEW_KEY", "staging");
    assert_eq!(age_decrypt(&w, &w.staging_id, &a).as_deref(), Some(value));
    assert_eq!(age_decrypt(&w, &w.production_id, &a), None);

    let plan = w.run(&w.both_id, &["plan", "--target", "app"]);
    assert!(
        plan.stdout
            .contains("`NEW_KEY` has no value for environment `production`: not written here"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains(value));

    // Production's value added to the secret staging has: named as such,
    // not as a new secret; staging's value stays as it was.
    let prod_value = "CANARY-new-production-value-3c1f";
    let said = w.set(&["NEW_KEY", "--env", "production"], prod_value, &[value]);
    assert!(
        said.contains("secret `NEW_KEY`: production's value added to secrets.yaml"),
        "{said}"
    );
    assert_eq!(armored_in(&w, "NEW_KEY", "staging"), a);
    let p = armored_in(&w, "NEW_KEY", "production");
    assert_eq!(
        age_decrypt(&w, &w.production_id, &p).as_deref(),
        Some(prod_value)
    );
    assert_eq!(age_decrypt(&w, &w.staging_id, &p), None);

    // Without an identity: a one-for-all value across different recipients
    // warns; a per-environment value encrypted to the wrong count is an error.
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.arg("check");
    let c = run(cmd);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.stdout.contains("secret `API_KEY` has one value for environments `staging`, `production`, whose recipients differ"),
        "{}",
        c.stdout
    );
    let m = w.manifest();
    let prod = armored(&[w.production()], DB_PROD, 8);
    let wrong = armored(&[w.production(), w.staging()], DB_PROD, 8);
    w.sb.write("secrets.yaml", &m.replacen(&prod_block(&m), &wrong, 1));
    let _ = prod;
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.arg("check");
    let c = run(cmd);
    assert_eq!(c.code, 1, "{}", c.all());
    assert!(
        c.stdout.contains("secret `DATABASE_URL`, environment `production`: it is encrypted to 2 recipients but the environment lists 1 recipient"),
        "{}",
        c.stdout
    );
}

/// The armored block of DATABASE_URL's production value in manifest text `m`.
fn prod_block(m: &str) -> String {
    let start = m.find("      production: |\n").unwrap() + "      production: |\n".len();
    let end = m[start..]
        .find("-----END AGE ENCRYPTED FILE-----\n")
        .unwrap()
        + start
        + "-----END AGE ENCRYPTED FILE-----\n".len();
    m[start..end].to_string()
}

/// `run`, `get` and `list` take `--env` (or a `TARGET@ENV`): each sees that
/// environment's values only.
#[test]
fn run_get_and_list_per_environment() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    // run: the target's instance in that environment.
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.arg("--identity")
        .arg(&w.both_id)
        .args(["run", "-t", "app@production", "--", "sh", "-c"])
        .arg("test \"$DATABASE_URL\" = \"$WANT\" && test -z \"$DEBUG_TOKEN\"")
        .env("WANT", DB_PROD);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.all());
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.arg("--identity")
        .arg(&w.staging_id)
        .args(["run", "-t", "app", "--env", "staging", "--", "sh", "-c"])
        .arg("test \"$DATABASE_URL\" = \"$WANT\" && test -n \"$DEBUG_TOKEN\"")
        .env("WANT", DB_STAGING);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.all());
    // A target in two environments needs one named.
    let out = w.run(&w.both_id, &["run", "-t", "app", "--", "true"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("target `app` is in environments staging, production"),
        "{}",
        out.stderr
    );

    // get: the value of one environment (printed: the one command that does).
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.args(["get", "DATABASE_URL", "--env", "production", "--identity"])
        .arg(&w.both_id);
    let out = run(cmd);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, DB_PROD),
        "{}",
        out.stderr
    );
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.args(["get", "DATABASE_URL", "-t", "api@staging", "--identity"])
        .arg(&w.both_id);
    let out = run(cmd);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, DB_STAGING),
        "{}",
        out.stderr
    );
    let out = w.run(&w.both_id, &["get", "DATABASE_URL"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("has a value per environment"),
        "{}",
        out.stderr
    );

    // list: a section per environment; DEBUG_TOKEN in staging only.
    let out = w.run(&w.both_id, &["list"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let (staging, production) = out
        .stdout
        .split_once("== environment production ==")
        .unwrap();
    assert!(
        staging.contains("== environment staging ==") && staging.contains("DEBUG_TOKEN"),
        "{}",
        out.stdout
    );
    assert!(!production.contains("DEBUG_TOKEN"), "{}", out.stdout);
    // Above the sections, a column per environment: `-` where a secret has
    // no value.
    let overview: Vec<Vec<&str>> = out
        .stdout
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        overview[0],
        ["SECRET", "VALUE", "staging", "production"],
        "{}",
        out.stdout
    );
    assert!(
        overview.contains(&vec!["DEBUG_TOKEN", "plain, one for all", "present", "-"]),
        "{}",
        out.stdout
    );
    assert!(
        overview.contains(&vec![
            "DATABASE_URL",
            "per environment",
            "present",
            "present"
        ]),
        "{}",
        out.stdout
    );
    let out = w.run(
        &w.both_id,
        &["list", "--env", "production", "--format", "json"],
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["environment"] == "production"));
}

/// `import --from TARGET@ENV` adds that environment's values only;
/// `rotate KEY --env ENV` replaces that environment's value only.
#[test]
fn import_and_rotate_per_environment() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let live = "CANARY-live-staging-value-6b6b";
    w.sb.write("app-staging.env", &format!("FROM_STAGING={live}\n"));
    let out = w.run(
        &w.both_id,
        &["import", "--from", "app@staging", "FROM_STAGING"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let a = armored_in(&w, "FROM_STAGING", "staging");
    assert_eq!(age_decrypt(&w, &w.staging_id, &a).as_deref(), Some(live));
    assert_eq!(age_decrypt(&w, &w.production_id, &a), None);
    let m = secretsync::manifest::load(&w.sb.path("secrets.yaml")).unwrap();
    assert_eq!(
        m.secrets["FROM_STAGING"].targets,
        vec!["app@staging".to_string()]
    );

    let out = w.run(
        &w.both_id,
        &[
            "rotate",
            "DATABASE_URL",
            "--env",
            "staging",
            "--generate",
            "chars=40,alphabet=alnum",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let s = armored_in(&w, "DATABASE_URL", "staging");
    let new = age_decrypt(&w, &w.staging_id, &s).unwrap();
    assert_eq!(new.len(), 40, "a new 40-character value");
    assert_ne!(new, DB_STAGING);
    assert_eq!(age_decrypt(&w, &w.production_id, &s), None);
    let p = armored_in(&w, "DATABASE_URL", "production");
    assert_eq!(
        age_decrypt(&w, &w.production_id, &p).as_deref(),
        Some(DB_PROD)
    );
    // Without --env, a value per environment is not rotated as one.
    let out = w.run(&w.both_id, &["rotate", "DATABASE_URL"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("has a value per environment"),
        "{}",
        out.stderr
    );
}

/// `check --env`, `list --check` and `import --env` work per environment:
/// check judges that environment's values only, `list --check` reads each
/// environment's instances and says which still hold a value the manifest
/// replaced there, `import --from TARGET --env ENV` is `--from TARGET@ENV`.
#[test]
fn check_list_check_and_import_per_environment() {
    let w = World::new();
    let m = w.manifest();
    // Production's value encrypted to both keys: wrong for production only.
    let wrong = armored(&[w.production(), w.staging()], DB_PROD, 8);
    w.sb.write("secrets.yaml", &m.replacen(&prod_block(&m), &wrong, 1));
    let check = |args: &[&str]| {
        let mut cmd = secretsync_cmd(w.sb.dir.path());
        cmd.arg("check").args(args);
        run(cmd)
    };
    let all = check(&[]);
    assert_eq!(all.code, 1, "{}", all.all());
    let staging = check(&["--env", "staging"]);
    assert_eq!(staging.code, 0, "{}", staging.all());
    assert!(
        !staging.stdout.contains("environment `production`"),
        "{}",
        staging.stdout
    );
    let production = check(&["--env", "production", "--format", "json"]);
    assert_eq!(production.code, 1, "{}", production.all());
    let doc: serde_json::Value = serde_json::from_str(&production.stdout).unwrap();
    let messages: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with(
            "secret `DATABASE_URL`, environment `production`: it is encrypted to 2 recipients"
        )),
        "{messages:?}"
    );
    let unknown = check(&["--env", "qa"]);
    assert_eq!(unknown.code, 1, "{}", unknown.all());
    assert!(
        unknown.stderr.contains("--env qa: no such environment"),
        "{}",
        unknown.stderr
    );

    // list --check: after apply, a new staging value leaves the old one on
    // staging's instances, and production's are untouched.
    w.sb.write("secrets.yaml", &m);
    let out = w.run(&w.both_id, &["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let out = w.run(
        &w.both_id,
        &[
            "rotate",
            "DATABASE_URL",
            "--env",
            "staging",
            "--generate",
            "chars=40,alphabet=alnum",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let out = w.run(&w.both_id, &["list", "--check", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let row = |env: &str| {
        doc["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "DATABASE_URL" && s["environment"] == env)
            .cloned()
            .unwrap_or_else(|| panic!("{env}: {doc:#}"))
    };
    assert_eq!(
        row("staging")["previous_value_on"],
        serde_json::json!(["api@staging", "app@staging"]),
        "{doc:#}"
    );
    assert_eq!(
        row("production")["previous_value_on"],
        serde_json::json!([]),
        "{doc:#}"
    );
    assert_eq!(
        row("production")["not_read"],
        serde_json::json!([]),
        "{doc:#}"
    );
    let text = w.run(&w.both_id, &["list", "--check", "--env", "staging"]);
    assert_eq!(text.code, 0, "{}", text.all());
    assert!(
        text.stdout.contains("api@staging") && !text.stdout.contains("production"),
        "{}",
        text.stdout
    );
    // With staging's identity only, production is skipped and said so (exit 3).
    let out = w.run(&w.staging_id, &["list", "--check"]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stderr
            .contains("production: skipped, no identity can decrypt its values"),
        "{}",
        out.stderr
    );

    // import --env.
    let live = "CANARY-live-staging-value-3c3c";
    w.sb.write("app-staging.env", &format!("FROM_STAGING={live}\n"));
    let out = w.run(&w.both_id, &["import", "--from", "app", "FROM_STAGING"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("`app` is in several environments: name one with --env ENV (or --from app@ENV): app@staging, app@production"),
        "{}",
        out.stderr
    );
    let out = w.run(
        &w.both_id,
        &[
            "import",
            "--from",
            "app",
            "--env",
            "staging",
            "FROM_STAGING",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let a = armored_in(&w, "FROM_STAGING", "staging");
    assert_eq!(age_decrypt(&w, &w.staging_id, &a).as_deref(), Some(live));
    assert_eq!(age_decrypt(&w, &w.production_id, &a), None);
}

/// Review mode: environment definitions come from the base as target
/// definitions do; a change of an environment's recipients is shown; a value
/// moved from one environment to another is flagged.
#[test]
fn review_takes_environments_from_the_base() {
    let w = World::new();
    let base = w.manifest();
    w.sb.write("base.yaml", &base);
    let (s, p) = (w.staging(), w.production());
    let prod_block = prod_block(&base);
    // The head: staging's key may now read production, staging's app
    // override moves, and staging's DATABASE_URL is production's ciphertext.
    let staging_start = base.find("      staging: |\n").unwrap() + "      staging: |\n".len();
    let staging_end = base[staging_start..].find("      production: |\n").unwrap() + staging_start;
    let mut head = String::new();
    head.push_str(&base[..staging_start]);
    head.push_str(&prod_block);
    head.push_str(&base[staging_end..]);
    let head = head
        .replacen(
            &format!("    recipients: [{p}]\n"),
            &format!("    recipients: [{p}, {s}]\n"),
            1,
        )
        .replacen(
            "app: {path: app-staging.env}",
            "app: {path: elsewhere.env}",
            1,
        );
    assert_ne!(head, base);
    w.sb.write("secrets.yaml", &head);
    let out = w.run(
        &w.both_id,
        &["plan", "--base", "file:base.yaml", "--format", "json"],
    );
    let doc: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    let review = &doc["review"];
    assert_eq!(
        review["recipients_added"],
        serde_json::json!([format!("{s} (environment production)")]),
        "{review:#}"
    );
    let not: Vec<&str> = review["targets_not_contacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(not, vec!["app@staging"], "{review:#}");
    let planned: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        planned.contains(&"app@production") && planned.contains(&"api@staging"),
        "{planned:?}"
    );
    let moved = review["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "DATABASE_URL@staging")
        .unwrap_or_else(|| panic!("{review:#}"));
    assert_eq!(moved["value"], "changed", "{moved:#}");
    assert_eq!(
        moved["same_value_as"]["secret"], "DATABASE_URL@production",
        "{moved:#}"
    );
    assert!(
        review["fingerprints_hidden_for"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("DATABASE_URL")),
        "{review:#}"
    );
    let text = w.run(&w.both_id, &["plan", "--base", "file:base.yaml"]);
    assert!(
        text.stdout.contains(&format!(
            "this change adds the recipient \"{s} (environment production)\""
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("~ DATABASE_URL@staging         value changed; now holds the same value as DATABASE_URL@production"),
        "{}",
        text.stdout
    );
}

/// Two instances that are one place though defined differently (an
/// override of a flag only) are refused before anything is read or written.
#[test]
fn two_environments_never_share_a_place() {
    let w = World::new();
    let m = w
        .manifest()
        .replacen("app: {path: app-staging.env}", "app: {prune: true}", 1);
    w.sb.write("secrets.yaml", &m);
    for cmd in [&["plan"][..], &["apply", "--auto-approve"], &["doctor"]] {
        let out = w.run(&w.both_id, cmd);
        assert_eq!(out.code, 1, "{cmd:?}: {}", out.all());
        assert!(
            out.stderr.contains("targets `app@staging` and `app@production` are the same place (env file app-production.env)"),
            "{cmd:?}: {}",
            out.stderr
        );
    }
    assert!(!w.sb.path("app-production.env").exists());
}

/// Over the test sshd: an `ssh_env` target whose staging instance writes
/// another file (an override of `path`) gets each environment's value only.
#[test]
fn ssh_env_instances_write_their_own_environments_values() {
    let w = World::new();
    let sshd = support::sshd::Sshd::start();
    let remote = tempfile::tempdir().unwrap();
    let (s, p) = (w.staging(), w.production());
    let staging_file = remote.path().join("staging.env");
    let production_file = remote.path().join("production.env");
    let mut m = format!(
        "version: 1\nrecipients: [{s}, {p}]\nenvironments:\n  staging:\n    recipients: [{s}]\n    targets:\n      vps: {{path: {}}}\n  production:\n    recipients: [{p}]\ntargets:\n  vps:\n    type: ssh_env\n",
        staging_file.display()
    );
    m.push_str(&sshd.yaml("root", 4));
    m.push_str(&format!("    path: {}\n", production_file.display()));
    m.push_str("secrets:\n  DATABASE_URL:\n    targets: [vps]\n    encrypted:\n      staging: |\n");
    m.push_str(&armored(std::slice::from_ref(&s), DB_STAGING, 8));
    m.push_str("      production: |\n");
    m.push_str(&armored(std::slice::from_ref(&p), DB_PROD, 8));
    m.push_str("  LOG_LEVEL:\n    targets: [vps]\n    value: info\n");
    w.sb.write("secrets.yaml", &m);

    let out = w.run(&w.both_id, &["apply", "--auto-approve"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let staging = std::fs::read_to_string(&staging_file).unwrap();
    let production = std::fs::read_to_string(&production_file).unwrap();
    assert!(
        staging.contains(&format!("DATABASE_URL={DB_STAGING}")) && !staging.contains(DB_PROD),
        "{staging}"
    );
    assert!(
        production.contains(&format!("DATABASE_URL={DB_PROD}")) && !production.contains(DB_STAGING),
        "{production}"
    );
    assert!(staging.contains("LOG_LEVEL=info") && production.contains("LOG_LEVEL=info"));

    // Staging's identity alone: production is skipped, staging in sync.
    let out = w.run(&w.staging_id, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.code, 3, "{}", out.all());
    let out = w.run(
        &w.staging_id,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
}

/// A fingerprint key that staging's identity cannot read does not stop it
/// from planning staging: no fingerprints, and a note.
#[test]
fn a_fingerprint_key_out_of_reach_only_hides_fingerprints() {
    let w = World::new();
    let m = w.manifest().replacen(
        "environments:\n",
        &format!(
            "fingerprint_key: |\n{}environments:\n",
            armored(&[w.production()], "0123456789abcdef0123456789abcdef", 2)
        ),
        1,
    );
    w.sb.write("secrets.yaml", &m);
    let out = w.run(&w.staging_id, &["plan", "--env", "staging"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("cannot decrypt the fingerprint_key"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("fp:"), "{}", out.stdout);
}

/// The lifecycle judges each environment's value on its own: staging's
/// expired token is said, production's valid one is not.
#[test]
fn lifecycle_per_environment() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = |exp: u64| {
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(&format!(r#"{{"sub":"x","exp":{exp}}}"#))
        )
    };
    let w = World::new();
    let mut m = w.manifest();
    m.push_str("  TOKEN:\n    targets: [app]\n    encrypted:\n      staging: |\n");
    m.push_str(&armored(&[w.staging()], &jwt(1_000_000_000), 8));
    m.push_str("      production: |\n");
    m.push_str(&armored(&[w.production()], &jwt(4_102_444_800), 8));
    w.sb.write("secrets.yaml", &m);
    let out = w.run(&w.both_id, &["plan", "--format", "json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    let findings = doc["lifecycle"]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["secret"] == "TOKEN@staging" && f["kind"] == "expired"),
        "{findings:?}"
    );
    assert!(
        !findings.iter().any(|f| f["secret"] == "TOKEN@production"),
        "{findings:?}"
    );
}

/// Rotation is per value per environment: each environment's `set_on`, its
/// own period (`rotate_every` per environment, or the environment's
/// default), and `rotate --due` renews only the values that are due,
/// recording that environment's date and its old value under `previous`.
#[test]
fn rotation_per_value_per_environment() {
    let w = World::new();
    let p = w.production();
    let mut m = w.manifest().replacen(
        &format!("  production:\n    recipients: [{p}]\n"),
        &format!("  production:\n    recipients: [{p}]\n    rotate_every: 30d\n"),
        1,
    );
    assert!(m.contains("rotate_every: 30d"));
    let (old_staging, old_prod) = (
        "CANARY-session-staging-0f0f0f0f0f0f",
        "CANARY-session-production-1e1e1e1e",
    );
    m.push_str("  SESSION_KEY:\n    targets: [app]\n    generate: {bytes: 32, encoding: hex}\n    set_on: {staging: \"2026-11-25\", production: \"2026-10-01\"}\n    rotate_every: {staging: 90d}\n    encrypted:\n      staging: |\n");
    m.push_str(&armored(&[w.staging()], old_staging, 8));
    m.push_str("      production: |\n");
    m.push_str(&armored(&[w.production()], old_prod, 8));
    w.sb.write("secrets.yaml", &m);
    let canaries = [old_staging, old_prod, DB_STAGING, DB_PROD, API_KEY];
    let at = |args: &[&str]| {
        let mut cmd = secretsync_cmd(w.sb.dir.path());
        cmd.args(args)
            .arg("--identity")
            .arg(&w.both_id)
            .env("SECRETSYNC_NOW", "2026-12-02T12:00:00Z");
        let out = run(cmd);
        assert_no_canary(&args.join(" "), out.all().as_bytes(), &canaries);
        out
    };

    // production: set on 2026-10-01, every 30 days: due since 2026-10-31;
    // staging: set on 2026-11-25, every 90 days: not due.
    let out = at(&["list", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let row = |env: &str| {
        doc["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "SESSION_KEY" && s["environment"] == env)
            .cloned()
            .unwrap_or_else(|| panic!("{env}: {doc:#}"))
    };
    assert_eq!(row("staging")["set_on"], "2026-11-25", "{doc:#}");
    assert_eq!(row("production")["set_on"], "2026-10-01", "{doc:#}");
    let plan = at(&["plan", "--format", "json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", plan.all()));
    let due: Vec<&str> = doc["lifecycle"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "rotation_due")
        .filter_map(|f| f["secret"].as_str())
        .collect();
    assert_eq!(due, ["SESSION_KEY@production"], "{doc:#}");

    let out = at(&["rotate", "--due"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("rotated 1 secret(s) due for rotation: SESSION_KEY (production)"),
        "{}",
        out.stderr
    );
    let after = std::fs::read_to_string(w.sb.path("secrets.yaml")).unwrap();
    assert!(
        after.contains("    set_on: {staging: \"2026-11-25\", production: \"2026-12-02\"}\n"),
        "{after}"
    );
    // Staging's value is untouched; production's is new, and its old one
    // is remembered for production only.
    let staging = armored_in(&w, "SESSION_KEY", "staging");
    assert_eq!(
        age_decrypt(&w, &w.staging_id, &staging).as_deref(),
        Some(old_staging)
    );
    let prod = armored_in(&w, "SESSION_KEY", "production");
    let new = age_decrypt(&w, &w.production_id, &prod).unwrap();
    assert_ne!(new, old_prod);
    assert_eq!(new.len(), 64, "32 bytes in hex");
    assert!(
        after.contains("        replaced: \"2026-12-02\"\n        environment: production\n"),
        "{after}"
    );

    // Nothing is due now; the staging value's clock was not reset.
    let out = at(&["rotate", "--due", "--dry-run"]);
    assert!(
        out.stderr.contains("no secret is due for rotation"),
        "{}",
        out.all()
    );
    let out = at(&["list", "--env", "staging", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let s = doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "SESSION_KEY")
        .cloned()
        .unwrap();
    assert_eq!(s["set_on"], "2026-11-25", "{doc:#}");

    // Ninety-one days on, staging is due by its own period, production
    // (30 days from 2026-12-02) too: both are named apart.
    let mut cmd = secretsync_cmd(w.sb.dir.path());
    cmd.args(["rotate", "--due", "--dry-run", "--identity"])
        .arg(&w.both_id)
        .env("SECRETSYNC_NOW", "2027-02-24T00:00:00Z");
    let out = run(cmd);
    assert!(
        out.stderr
            .contains("would rotate 2 secret(s) due for rotation: SESSION_KEY (staging)")
            && out.stderr.contains("SESSION_KEY (production)"),
        "{}",
        out.all()
    );
}

/// `target add --env` defines a target in those environments only.
#[test]
fn target_add_in_one_environment() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let out = w.run(
        &w.both_id,
        &[
            "target",
            "add",
            "worker",
            "--type",
            "env_file",
            "--path",
            "worker.env",
            "--env",
            "production",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let m = secretsync::manifest::load(&w.sb.path("secrets.yaml")).unwrap();
    assert!(m.targets.contains_key("worker@production"));
    assert!(!m.targets.contains_key("worker@staging"));
    let out = w.run(
        &w.both_id,
        &[
            "target", "add", "other", "--type", "env_file", "--path", "o.env", "--env", "qa",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("--env qa: no such environment"),
        "{}",
        out.stderr
    );
}

/// A saved plan of instances is applied as saved.
#[test]
fn a_saved_plan_of_instances_applies() {
    let w = World::new();
    let m = w.manifest().replacen(
        "environments:\n",
        &format!(
            "fingerprint_key: |\n{}environments:\n",
            armored(
                &[w.staging(), w.production()],
                "0123456789abcdef0123456789abcdef",
                2
            )
        ),
        1,
    );
    w.sb.write("secrets.yaml", &m);
    let out = w.run(
        &w.both_id,
        &["plan", "--env", "staging", "--out", "plan.json"],
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert_no_canary(
        "plan.json",
        w.sb.read("plan.json").as_bytes(),
        &[DB_STAGING, DB_PROD, API_KEY, DEBUG],
    );
    let out = w.run(&w.both_id, &["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(w.sb.read("app-staging.env").contains(DB_STAGING));
    assert!(!w.sb.path("app-production.env").exists());
}

/// A new secret's targets named as written are checked per instance: a
/// value no env file can hold is refused when it comes in.
#[test]
fn a_value_an_instance_cannot_hold_is_refused_at_set() {
    let w = World::new();
    w.sb.write("secrets.yaml", &w.manifest());
    let before = w.sb.read("secrets.yaml");
    let out = w.set_out(&["CR_VALUE", "--target", "app"], b"a\rb");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("app@staging") || err.contains("app@production"),
        "{err}"
    );
    assert_eq!(w.sb.read("secrets.yaml"), before);
}
