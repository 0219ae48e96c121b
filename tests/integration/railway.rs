//! The `railway` target against the in-repo Railway test server: the shared
//! conformance cases, batching and request counts, sealed variables, every
//! error with its message, the retry paths, and the real binary end to end
//! (plan, apply, doctor) with canaries that must never be printed.

use crate::secretsync_conformance_tests;
use crate::support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use secretsync::targets::railway::RailwayTarget;
use secretsync::targets::railway::{RailwaySpec, TokenKind};
use secretsync::targets::{Context, ErrorKind, Observation, Read, Target, TargetError, Write};
use support::cli::{assert_no_canary, Sandbox};
use support::conformance::{self as c, Fixture, TAMPERED};
use support::railway_server::{Fault, Header, RailwayServer};

const PROJECT: &str = "p-0f1e2d3c";
const PROD: &str = "env-prod-1";
const STAGING: &str = "env-stg-2";
const API: &str = "svc-api-1";
const WORKER: &str = "svc-worker-2";

/// Tokens are canaries: none may ever be printed.
const ACCOUNT: &str = "CANARY-account-token-5e1d";
const PROJECT_TOKEN: &str = "CANARY-project-token-9a2b";
const EXPIRED: &str = "CANARY-expired-token-77c0";
const OTHER_PROJECT: &str = "CANARY-other-project-token-31aa";
const DEAD: &str = "CANARY-dead-project-token-0b0b";

/// A server with one project: two environments, two services, a few
/// variables (one sealed) and every kind of token.
fn world() -> RailwayServer {
    let s = RailwayServer::start();
    s.add_project(PROJECT, "shop");
    s.add_environment(PROJECT, PROD, "production");
    s.add_environment(PROJECT, STAGING, "staging");
    s.add_service(PROJECT, API, "api");
    s.add_service(PROJECT, WORKER, "Worker");
    s.add_project("p-other", "elsewhere");
    s.add_environment("p-other", "env-o", "production");
    s.add_account_token(ACCOUNT);
    s.add_project_token(PROJECT_TOKEN, PROJECT, PROD);
    s.add_expired_token(EXPIRED);
    s.add_account_token_for(OTHER_PROJECT, &["p-other"]);
    s.add_dead_project_token(DEAD);
    s.set_var(PROJECT, PROD, Some(API), "LOG_LEVEL", "info");
    s.set_var(PROJECT, PROD, None, "REGION", "eu");
    s
}

fn spec(service: Option<&str>) -> RailwaySpec {
    RailwaySpec {
        project: PROJECT.into(),
        environment: "production".into(),
        service: service.map(Into::into),
        token_env: None,
        token_kind: None,
        skip_deploys: false,
        overwrite_sealed: false,
        prune: false,
    }
}

/// The environment a target sees: the server, one token, fast limits.
fn env_with(server: &RailwayServer, token: (&str, &str)) -> HashMap<String, String> {
    HashMap::from([
        (
            "SECRETSYNC_RAILWAY_ENDPOINT".to_string(),
            server.url().to_string(),
        ),
        (token.0.to_string(), token.1.to_string()),
        ("SECRETSYNC_RAILWAY_TIMEOUT".into(), "2".into()),
        ("SECRETSYNC_RAILWAY_BACKOFF".into(), "0.01".into()),
        ("SECRETSYNC_RAILWAY_MAX_WAIT".into(), "3".into()),
        ("SECRETSYNC_RAILWAY_RATE".into(), "0".into()),
    ])
}

fn build(
    ctx: &Context,
    spec: &RailwaySpec,
    env: &HashMap<String, String>,
) -> Result<RailwayTarget, TargetError> {
    RailwayTarget::with_env("api", spec, ctx, &|k| env.get(k).cloned())
}

fn ctx() -> Context {
    Context::new(PathBuf::from("."))
}

// ---------------------------------------------------------------------------
// Conformance

struct RailwayFixture {
    server: RailwayServer,
    ctx: Context,
    env: HashMap<String, String>,
}

impl RailwayFixture {
    fn new() -> RailwayFixture {
        let server = world();
        let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
        RailwayFixture {
            server,
            ctx: ctx(),
            env,
        }
    }
}

#[async_trait::async_trait]
impl Fixture for RailwayFixture {
    fn target(&self) -> Box<dyn Target> {
        Box::new(build(&self.ctx, &spec(Some("api")), &self.env).unwrap())
    }

    async fn tamper(&self, key: &str) {
        self.server.set_var(PROJECT, PROD, Some(API), key, TAMPERED);
    }

    fn can_hold(&self, _value: &str) -> bool {
        true
    }

    fn lists_all(&self) -> bool {
        true
    }
}

secretsync_conformance_tests!(RailwayFixture::new());

/// The conformance writes never asked Railway to replace a collection.
#[tokio::test]
async fn conformance_never_sends_replace() {
    let f = RailwayFixture::new();
    c::run_all(&f).await;
    assert!(f.server.mutations() > 5);
    assert_eq!(f.server.replaces(), 0);
    for r in f.server.requests() {
        assert!(!r.query.contains("replace"), "{}", r.query);
        assert_eq!(r.status, 200, "{}", r.query);
        assert_eq!(r.header, Header::Bearer);
    }
}

// ---------------------------------------------------------------------------
// Batching and request counts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_project_query_per_run_and_one_read_per_project_per_pass() {
    let server = world();
    server.set_var(PROJECT, PROD, Some(WORKER), "QUEUE", "q1");
    server.set_var(PROJECT, STAGING, Some(API), "LOG_LEVEL", "debug");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let api = build(&ctx, &spec(Some("api")), &env).unwrap();
    // Names and ids, any case for services.
    let worker = build(&ctx, &spec(Some("worker")), &env).unwrap();
    let shared = build(&ctx, &spec(None), &env).unwrap();
    let mut staging_spec = spec(Some(API));
    staging_spec.environment = STAGING.into();
    let staging = build(&ctx, &staging_spec, &env).unwrap();
    // The same scope as `api`, named by id: one read serves both.
    let api_by_id = build(&ctx, &spec(Some(API)), &env).unwrap();

    let mut reads = read_together(&[&api, &worker, &shared, &staging, &api_by_id])
        .await
        .into_iter();
    let mut next = || reads.next().unwrap();
    let (a, w, s, st, a2) = (next(), next(), next(), next(), next());
    let value = |o: &secretsync::targets::Observed, key: &str| match o.entries.get(key) {
        Some(Observation::Value(v)) => Some(v.expose().to_string()),
        _ => None,
    };
    let a = a.unwrap();
    let a_len = a.entries.len();
    assert_eq!(value(&a, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(value(&w.unwrap(), "QUEUE").as_deref(), Some("q1"));
    assert_eq!(value(&s.unwrap(), "REGION").as_deref(), Some("eu"));
    assert_eq!(value(&st.unwrap(), "LOG_LEVEL").as_deref(), Some("debug"));
    let a2 = a2.unwrap();
    assert_eq!(value(&a2, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(
        a2.entries.len(),
        a_len,
        "both targets of the scope get all of it"
    );
    assert_eq!(server.count("project"), 1, "{:#?}", server.requests());
    assert_eq!(server.count("variables"), 1, "five targets, one read");
    let read = &server.requests()[1];
    assert_eq!(
        read.query.matches(": variables(").count(),
        4,
        "{}",
        read.query
    );

    // The next pass reads again, still without resolving names again.
    for r in read_together(&[&api, &worker]).await {
        r.unwrap();
    }
    assert_eq!(server.count("project"), 1);
    assert_eq!(server.count("variables"), 2);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_write_is_one_check_read_and_one_mutation_with_upsert_and_deletes() {
    let server = world();
    server.set_var(PROJECT, PROD, Some(API), "OLD", "x");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let mut s = spec(Some("api"));
    s.skip_deploys = true;
    let t = build(&ctx(), &s, &env).unwrap();
    let before = t.read(&[]).await.unwrap();
    server.clear_requests();
    t.write(
        &before,
        &[
            c::add("NEW", "n"),
            c::update("LOG_LEVEL", "warn"),
            c::delete("OLD"),
        ],
    )
    .await
    .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].fields, ["variables", "environment"]);
    assert_eq!(
        reqs[1].fields,
        ["variableCollectionUpsert", "variableDelete"]
    );
    let upsert = &reqs[1].variables["upsert"];
    assert_eq!(
        upsert["variables"],
        serde_json::json!({"NEW": "n", "LOG_LEVEL": "warn"})
    );
    assert_eq!(upsert["skipDeploys"], true);
    assert!(upsert.get("replace").is_none());
    assert_eq!(reqs[1].variables["d0"]["name"], "OLD");
    let vars = server.vars(PROJECT, PROD, Some(API));
    assert_eq!(
        vars.into_iter().collect::<Vec<_>>(),
        [
            ("LOG_LEVEL".to_string(), Some("warn".to_string())),
            ("NEW".to_string(), Some("n".to_string()))
        ]
    );
    // The upsert skipped deploys; only the delete (which has no such flag) counts.
    assert_eq!(server.deploys(PROJECT, PROD, Some(API)), 1);
}

#[tokio::test]
async fn shared_variables_are_read_and_written_without_a_service() {
    let server = world();
    let env = env_with(&server, ("RAILWAY_TOKEN", PROJECT_TOKEN));
    let t = build(&ctx(), &spec(None), &env).unwrap();
    let before = t.read(&[]).await.unwrap();
    assert_eq!(before.entries.len(), 1, "REGION only");
    t.write(&before, &[c::add("SHARED_KEY", "s")])
        .await
        .unwrap();
    assert_eq!(
        server.vars(PROJECT, PROD, None).get("SHARED_KEY"),
        Some(&Some("s".to_string()))
    );
    assert!(!server
        .vars(PROJECT, PROD, Some(API))
        .contains_key("SHARED_KEY"));
    for r in server.requests() {
        assert_eq!(r.header, Header::ProjectAccessToken);
        assert!(!r.query.contains("serviceId:"), "{}", r.query);
    }
    assert_eq!(
        server.deploys(PROJECT, PROD, None),
        1,
        "skip_deploys is off"
    );
}

// ---------------------------------------------------------------------------
// Sealed variables

#[tokio::test]
async fn sealed_variables_read_as_sealed() {
    let server = world();
    server.set_sealed(PROJECT, PROD, Some(API), "DB_PASSWORD");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let o = t.read(&[]).await.unwrap();
    assert_eq!(o.entries.get("DB_PASSWORD"), Some(&Observation::Sealed));
    assert!(o.complete && o.exists);
}

// ---------------------------------------------------------------------------
// Errors

async fn read_error(
    server: &RailwayServer,
    token: (&str, &str),
    spec: &RailwaySpec,
) -> TargetError {
    let env = env_with(server, token);
    let t = build(&ctx(), spec, &env).unwrap();
    let e = t.read(&[]).await.expect_err("the read must fail");
    let text = e.to_string();
    for canary in [ACCOUNT, PROJECT_TOKEN, EXPIRED, OTHER_PROJECT, DEAD] {
        assert!(!text.contains(canary), "token in {text}");
    }
    e
}

#[tokio::test]
async fn an_expired_token_names_its_variable_and_doctor() {
    let server = world();
    let e = read_error(&server, ("RAILWAY_API_TOKEN", EXPIRED), &spec(Some("api"))).await;
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(
        e.to_string(),
        "Railway refused the account token in RAILWAY_API_TOKEN: it is expired or revoked, or it lacks access to project p-0f1e2d3c\n  hint: create a token with access to this project and environment, export it as RAILWAY_API_TOKEN, and check it with `secretsync doctor`"
    );
}

#[tokio::test]
async fn a_token_for_another_project_or_environment_is_refused() {
    let server = world();
    let e = read_error(
        &server,
        ("RAILWAY_API_TOKEN", OTHER_PROJECT),
        &spec(Some("api")),
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(e.message.contains("RAILWAY_API_TOKEN"), "{e}");
    // A project token of production reading staging.
    let mut s = spec(Some("api"));
    s.environment = "staging".into();
    let e = read_error(&server, ("RAILWAY_TOKEN", PROJECT_TOKEN), &s).await;
    assert_eq!(
        e.message,
        "Railway refused the project token in RAILWAY_TOKEN: it is expired or revoked, or it lacks access to project p-0f1e2d3c / environment staging"
    );
    assert!(e.hint.unwrap().contains("`secretsync doctor`"));
}

#[tokio::test]
async fn a_dead_project_token_and_a_401_are_auth_errors() {
    let server = world();
    let mut s = spec(None);
    s.token_env = Some("RAILWAY_CI".into());
    s.token_kind = Some(TokenKind::Project);
    let e = read_error(&server, ("RAILWAY_CI", DEAD), &s).await;
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        e.message
            .starts_with("Railway refused the project token in RAILWAY_CI: it is expired"),
        "{e}"
    );

    for status in [401, 403] {
        server.fail_next(1, Fault::Status(status));
        let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
        assert_eq!(e.kind, ErrorKind::Auth, "{status}: {e}");
        assert!(e.message.contains("expired or revoked"), "{e}");
    }
}

#[tokio::test]
async fn a_missing_project_and_unknown_names_say_what_exists() {
    let server = world();
    let mut s = spec(Some("api"));
    s.project = "p-missing".into();
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &s).await;
    assert_eq!(
        e.message,
        "Railway has no project p-missing that the token in RAILWAY_API_TOKEN can see (Project not found)"
    );

    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(Some("web"))).await;
    assert_eq!(
        e.message,
        "project shop (p-0f1e2d3c) has no service `web`; its services: api, Worker"
    );
    let mut s = spec(None);
    s.environment = "Production".into();
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &s).await;
    assert_eq!(
        e.message,
        "project shop (p-0f1e2d3c) has no environment `Production`; its environments: production, staging"
    );
    assert_eq!(
        server.count("variables"),
        0,
        "nothing to read for unknown names"
    );
}

#[tokio::test]
async fn no_token_says_which_variables_to_set() {
    let server = world();
    let env = env_with(&server, ("UNRELATED", "x"));
    let t = build(&ctx(), &spec(None), &env).unwrap();
    let e = t.read(&[]).await.unwrap_err();
    assert_eq!(
        e.message,
        "no Railway token: neither RAILWAY_TOKEN nor RAILWAY_API_TOKEN is set"
    );
    assert!(server.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let server = world();
    server.fail_next(1, Fault::RateLimited { retry_after: 1 });
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let start = Instant::now();
    t.read(&[]).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 200]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_fails_at_once() {
    let server = world();
    server.fail_next(1, Fault::RateLimited { retry_after: 3600 });
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert_eq!(
        e.to_string(),
        "Railway rate-limited requests for project p-0f1e2d3c and asks to wait 3600s, longer than the 3s secretsync waits\n  hint: run again later, or raise SECRETSYNC_RAILWAY_MAX_WAIT"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn endless_429s_give_up_after_the_retries() {
    let server = world();
    server.fail_next(10, Fault::RateLimited { retry_after: 0 });
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
    assert_eq!(
        e.message,
        "Railway kept rate-limiting requests for project p-0f1e2d3c (4 attempts)"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_succeed() {
    let server = world();
    server.fail_next(2, Fault::Status(500));
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    t.read(&[]).await.unwrap();
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200, 200]);
}

#[tokio::test]
async fn persistent_server_errors_and_garbage_end_in_clear_errors() {
    let server = world();
    server.fail_next(4, Fault::Status(502));
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert_eq!(
        e.message,
        format!("Railway at {} answered HTTP 502 (4 attempts)", server.url())
    );

    server.fail_next(1, Fault::Malformed);
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    build(&ctx(), &spec(None), &env)
        .unwrap()
        .read(&[])
        .await
        .expect("one malformed answer is retried");

    server.fail_next(4, Fault::Malformed);
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
    assert_eq!(e.kind, ErrorKind::Failed);
    assert!(
        e.message.starts_with(&format!(
            "Railway at {} answered with something that is not JSON (expected value",
            server.url()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_hung_request_times_out() {
    let server = world();
    server.fail_next(2, Fault::Hang);
    let mut env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    env.insert("SECRETSYNC_RAILWAY_TIMEOUT".into(), "0.3".into());
    env.insert("SECRETSYNC_RAILWAY_RETRIES".into(), "1".into());
    let t = build(&ctx(), &spec(None), &env).unwrap();
    let start = Instant::now();
    let e = t.read(&[]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert_eq!(
        e.message,
        format!(
            "Railway at {} did not answer within 300ms (2 attempts)",
            server.url()
        )
    );
}

#[tokio::test]
async fn latency_below_the_timeout_is_fine() {
    let server = world();
    server.set_latency(Duration::from_millis(100));
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(None), &env).unwrap();
    t.read(&[]).await.unwrap();
    assert!(server.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn refused_writes_never_echo_the_values() {
    let server = world();
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let before = t.read(&[]).await.unwrap();
    // The token loses access between the read and the write.
    server.add_expired_token(ACCOUNT);
    let e = t
        .write(&before, &[c::add("K", "CANARY-value-never-shown")])
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(!e.to_string().contains("CANARY"), "{e}");
}

// ---------------------------------------------------------------------------
// The real binary

const VALUES: &[&str] = &["CANARY-db-password-4471", "CANARY-shared-secret-8812"];

/// A manifest with the `api` service and the shared variables of production.
fn sandbox(server: &RailwayServer, extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  api:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: API\n    prune: true\n{extra}  shared:\n    type: railway\n    project: {PROJECT}\n    environment: {PROD}\nsecrets:\n  DB_PASSWORD:\n    targets: [api]\n    encrypted: |\n{}  SHARED_SECRET:\n    targets: [shared, api]\n    encrypted: |\n{}  LOG_LEVEL:\n    targets: [api]\n    value: info\n",
            sb.header(),
            sb.encrypted(VALUES[0], 6),
            sb.encrypted(VALUES[1], 6),
        ),
    );
    let _ = server;
    sb
}

fn run(
    sb: &Sandbox,
    server: &RailwayServer,
    token: (&str, &str),
    args: &[&str],
) -> support::cli::Out {
    let out = sb.run_with(
        args,
        &[
            ("SECRETSYNC_RAILWAY_ENDPOINT", &server.url()),
            token,
            ("SECRETSYNC_RAILWAY_BACKOFF", "0.01"),
            ("SECRETSYNC_RAILWAY_TIMEOUT", "2"),
        ],
    );
    let mut canaries = VALUES.to_vec();
    canaries.extend([ACCOUNT, PROJECT_TOKEN, EXPIRED, OTHER_PROJECT, DEAD]);
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        &canaries,
    );
    out
}

#[test]
fn plan_and_apply_a_service_and_shared_variables() {
    let server = world();
    server.set_var(PROJECT, PROD, Some(API), "STALE", "old");
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_API_TOKEN", ACCOUNT);

    let plan = run(&sb, &server, token, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("railway service API in production (project p-0f1e2d3c)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "Plan: 3 to add, 0 to change, 1 to delete. 0 targets in sync, 2 with changes."
        ),
        "{}",
        plan.stdout
    );
    assert_eq!(server.count("project"), 1, "{:#?}", server.requests());
    assert_eq!(server.count("variables"), 1, "two targets, one read");
    assert_eq!(server.requests().len(), 2);
    server.clear_requests();

    let apply = run(&sb, &server, token, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    // 1 project + 1 plan read + 1 pre-write read of both targets + 1 write
    // of both (aliased fields) + 1 verify read: the budget of 5 a project
    // (#26; 7 before: a pre-write read and a write per target).
    assert_eq!(server.count("project"), 1);
    assert_eq!(server.mutations(), 1, "one write per project");
    assert_eq!(server.count("variables"), 3);
    assert_eq!(server.requests().len(), 5);
    assert_eq!(server.replaces(), 0);

    let api = server.vars(PROJECT, PROD, Some(API));
    assert_eq!(api.get("DB_PASSWORD"), Some(&Some(VALUES[0].to_string())));
    assert_eq!(api.get("SHARED_SECRET"), Some(&Some(VALUES[1].to_string())));
    assert_eq!(api.get("LOG_LEVEL"), Some(&Some("info".to_string())));
    assert!(!api.contains_key("STALE"), "pruned");
    let shared = server.vars(PROJECT, PROD, None);
    assert_eq!(
        shared.get("SHARED_SECRET"),
        Some(&Some(VALUES[1].to_string()))
    );
    assert_eq!(
        shared.get("REGION"),
        Some(&Some("eu".to_string())),
        "not pruned"
    );

    let again = run(&sb, &server, token, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again:?}");
}

#[test]
fn a_sealed_variable_is_reported_and_left_alone() {
    let server = world();
    server.set_sealed(PROJECT, PROD, Some(API), "DB_PASSWORD");
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_TOKEN", PROJECT_TOKEN);
    let plan = run(&sb, &server, token, &["plan", "--target", "api"]);
    assert!(plan.stdout.contains("DB_PASSWORD"), "{}", plan.stdout);
    assert!(plan.stdout.contains("sealed"), "{}", plan.stdout);
    let apply = run(
        &sb,
        &server,
        token,
        &["apply", "--auto-approve", "--target", "api"],
    );
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(
        server.vars(PROJECT, PROD, Some(API)).get("DB_PASSWORD"),
        Some(&None),
        "still sealed, not overwritten"
    );
    for r in server.requests() {
        if r.fields.iter().any(|f| f == "variableCollectionUpsert") {
            assert!(r.variables["upsert"]["variables"]
                .get("DB_PASSWORD")
                .is_none());
        }
    }

    // With overwrite_sealed the value is written.
    let sb = sandbox(&server, "    overwrite_sealed: true\n");
    let apply = run(
        &sb,
        &server,
        token,
        &["apply", "--auto-approve", "--target", "api"],
    );
    assert_eq!(
        server.vars(PROJECT, PROD, Some(API)).get("DB_PASSWORD"),
        Some(&Some(VALUES[0].to_string())),
        "{apply:?}"
    );
}

#[test]
fn an_expired_token_fails_the_plan_with_a_clear_message() {
    let server = world();
    let sb = sandbox(&server, "");
    let out = run(&sb, &server, ("RAILWAY_API_TOKEN", EXPIRED), &["plan"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all().contains(
            "Railway refused the account token in RAILWAY_API_TOKEN: it is expired or revoked"
        ),
        "{out:?}"
    );
    assert!(out.all().contains("`secretsync doctor`"), "{out:?}");
}

#[test]
fn doctor_checks_the_token_and_the_names() {
    let server = world();
    let sb = sandbox(&server, "");
    let ok = run(&sb, &server, ("RAILWAY_TOKEN", PROJECT_TOKEN), &["doctor"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stdout
            .contains("RAILWAY_TOKEN is set (project token, sent as Project-Access-Token)"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("the project token is accepted for project p-0f1e2d3c"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("environment production (env-prod-1), service API (svc-api-1)"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("variables readable: 2 variables, 0 sealed")
            || ok
                .stdout
                .contains("variables readable: 1 variables, 0 sealed"),
        "{}",
        ok.stdout
    );

    let bad = run(&sb, &server, ("RAILWAY_API_TOKEN", EXPIRED), &["doctor"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.contains("FAIL token accepted: Railway refused the account token in RAILWAY_API_TOKEN: it is expired or revoked"), "{}", bad.stdout);

    let none = run(&sb, &server, ("UNRELATED", "x"), &["doctor"]);
    assert_eq!(none.code, 1);
    assert!(none.stdout.contains("FAIL token variable: no Railway token: neither RAILWAY_TOKEN nor RAILWAY_API_TOKEN is set"), "{}", none.stdout);
}

#[test]
fn a_rate_limit_is_announced_on_stderr_and_waited_out() {
    let server = world();
    server.fail_next(1, Fault::RateLimited { retry_after: 1 });
    let sb = sandbox(&server, "");
    let out = run(
        &sb,
        &server,
        ("RAILWAY_API_TOKEN", ACCOUNT),
        &["plan", "--detailed-exitcode"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("railway: rate limited on project p-0f1e2d3c, waiting 1s (retry 1/3)"),
        "{}",
        out.stderr
    );
    server.fail_next(1, Fault::RateLimited { retry_after: 0 });
    let quiet = run(
        &sb,
        &server,
        ("RAILWAY_API_TOKEN", ACCOUNT),
        &["-q", "plan"],
    );
    assert!(!quiet.stderr.contains("rate limited"), "{}", quiet.stderr);
}

#[test]
fn every_request_carries_the_token_only_in_its_header() {
    let server = world();
    let sb = sandbox(&server, "");
    run(
        &sb,
        &server,
        ("RAILWAY_API_TOKEN", ACCOUNT),
        &["apply", "--auto-approve"],
    );
    let reqs = server.requests();
    assert!(reqs.len() >= 5);
    for r in reqs {
        assert!(!r.body.contains(ACCOUNT));
        assert_eq!(r.header, Header::Bearer);
    }
}

// ---------------------------------------------------------------------------
// The test server itself: it must refuse what Railway would refuse.

async fn post(server: &RailwayServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(server.url())
        .bearer_auth(ACCOUNT)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn the_server_rejects_what_the_schema_does_not_allow() {
    let server = world();
    // A field Railway does not have.
    let (status, v) = post(
        &server,
        serde_json::json!({"query": "query { variables(projectId: \"p\", environmentId: \"e\") nope }"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("nope"),
        "{v}"
    );
    // skipDeploys is a Boolean, and VariableDeleteInput has none.
    let (_, v) = post(
        &server,
        serde_json::json!({
            "query": "mutation m($i: VariableDeleteInput!) { variableDelete(input: $i) }",
            "variables": {"i": {"projectId": PROJECT, "environmentId": PROD, "name": "X", "skipDeploys": true}}
        }),
    )
    .await;
    assert!(v.get("data").is_none(), "a request error has no data: {v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("skipDeploys"),
        "{v}"
    );
    // A valid request does run; replace is counted so tests can assert it never comes.
    let (status, v) = post(
        &server,
        serde_json::json!({
            "query": "mutation m($i: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $i) }",
            "variables": {"i": {"projectId": PROJECT, "environmentId": PROD, "serviceId": API, "variables": {"A": "1"}, "replace": true}}
        }),
    )
    .await;
    assert_eq!(
        (status, &v["data"]["variableCollectionUpsert"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    assert_eq!(server.replaces(), 1);
    assert_eq!(
        server.vars(PROJECT, PROD, Some(API)).len(),
        1,
        "replace dropped LOG_LEVEL"
    );
}

#[test]
fn import_adopts_a_services_live_variables_but_not_sealed_ones() {
    let server = world();
    let live = "CANARY-live-stripe-key-6620";
    server.set_var(PROJECT, PROD, Some(API), "STRIPE_KEY", live);
    server.set_sealed(PROJECT, PROD, Some(API), "SEALED_ONE");
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_API_TOKEN", ACCOUNT);
    let out = run(&sb, &server, token, &["import", "--from", "api"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("imported 1 secret(s) from `api`: STRIPE_KEY\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("skipped 1 sealed (their value cannot be read): SEALED_ONE"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "skipped 1 already in the manifest with the same value (nothing to import): LOG_LEVEL"
        ),
        "{}",
        out.stderr
    );
    assert_no_canary("import output", out.all().as_bytes(), &[live]);
    assert!(!sb.read("secrets.yaml").contains(live), "stored encrypted");
    let get = run(&sb, &server, token, &["get", "STRIPE_KEY"]);
    assert_eq!((get.code, get.stdout.as_str()), (0, live));
}

/// #15: the values a Railway variable must carry exactly, through the
/// in-repo server: multi-line, trailing newline, empty, unicode, `${{…}}`
/// references kept as text (Railway resolves them at deploy, secretsync
/// must not), and large values. Railway publishes no size limit for a
/// variable; 1 MiB is carried here, the real API's limit is not known.
#[tokio::test]
async fn service_values_round_trip_exactly() {
    let f = RailwayFixture::new();
    let t = f.target();
    let values: Vec<String> = vec![
        "line one\nline two".into(),
        "trailing newline\n".into(),
        "\n\n".into(),
        String::new(),
        "unicode é ü 漢字 🔑 \u{200b}".into(),
        "${{shared.DATABASE_URL}}".into(),
        "postgres://${{ Postgres.PGUSER }}:${{Postgres.PGPASSWORD}}@host/db".into(),
        "$HOME ${HOME} `id` \\ \" '".into(),
        "x".repeat(64 * 1024),
        "y".repeat(1024 * 1024),
    ];
    let keys: Vec<String> = (0..values.len()).map(|i| format!("RV_{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let before = c::read(&*t, &key_refs).await;
    let changes: Vec<_> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| c::add(k, v))
        .collect();
    c::write(&*t, &before, &changes).await;
    let after = c::read(&*t, &key_refs).await;
    for (k, v) in keys.iter().zip(&values) {
        assert_eq!(c::value_of(&after, k).as_deref(), Some(v.as_str()), "{k}");
        // What the server stores, not only what the target reads back.
        assert_eq!(
            f.server.vars(PROJECT, PROD, Some(API)).get(k.as_str()),
            Some(&Some(v.clone())),
            "{k} on the server"
        );
    }
}

// ---------------------------------------------------------------------------
// #16: what an apply costs, measured with the binary against the server.

/// Requests and deploys of `apply` over `services` service targets of one
/// project (one account token), of which the first `changed` need a write.
fn measure_apply(services: usize, changed: usize, stale: usize) -> (usize, usize, usize) {
    let server = world();
    let mut targets = String::new();
    let mut secrets = String::new();
    for i in 0..services {
        let id = format!("svc-m-{i}");
        server.add_service(PROJECT, &id, &format!("m{i}"));
        if i >= changed {
            server.set_var(PROJECT, PROD, Some(&id), "M_KEY", "v");
        } else {
            for k in 0..stale {
                server.set_var(PROJECT, PROD, Some(&id), &format!("STALE_{k}"), "old");
            }
        }
        targets.push_str(&format!(
            "  m{i}:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: m{i}\n    prune: true\n"
        ));
    }
    let all: Vec<String> = (0..services).map(|i| format!("m{i}")).collect();
    secrets.push_str(&format!(
        "  M_KEY:\n    targets: [{}]\n    value: v\n",
        all.join(", ")
    ));
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!("{}targets:\n{targets}secrets:\n{secrets}", sb.header()),
    );
    let out = run(
        &sb,
        &server,
        ("RAILWAY_API_TOKEN", ACCOUNT),
        &["apply", "--auto-approve"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    (
        server.requests().len(),
        server.mutations(),
        server.total_deploys(),
    )
}

#[test]
fn requests_and_deploys_per_apply_are_measured() {
    for (services, changed, stale) in [(1, 1, 0), (10, 1, 0), (10, 10, 0), (1, 1, 2), (10, 10, 2)] {
        let (requests, mutations, deploys) = measure_apply(services, changed, stale);
        eprintln!(
            "MEASURE apply: {services} service target(s), {changed} changed ({stale} pruned each): {requests} requests ({mutations} mutations), {deploys} deploys"
        );
        // One project: resolve, read, conflict read, write, verify (#26:
        // before, a conflict read and a mutation per changed service).
        assert_eq!(mutations, 1, "one mutation per project");
        assert_eq!(requests, 5, "the budget of one project's apply");
        // An upsert followed by deletions skips its deploy: the deletions'
        // deploys (variableDelete has no skipDeploys) carry its values.
        assert_eq!(deploys, changed * stale.max(1), "deploys");
    }
}

// ---------------------------------------------------------------------------
// #16: Railway as Railway really behaves. Each test below failed on the code
// before #16.

const WORKSPACE: &str = "CANARY-workspace-token-44d1";

/// Finding 1: Railway recommends workspace tokens for sync jobs; `me` refuses them.
#[test]
fn a_workspace_token_passes_doctor_without_me() {
    let server = world();
    server.add_workspace_token(WORKSPACE);
    let sb = sandbox(&server, "");
    let out = run(&sb, &server, ("RAILWAY_API_TOKEN", WORKSPACE), &["doctor"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("workspace token"), "{}", out.stdout);
    assert!(!out.all().contains(WORKSPACE));
}

/// Finding 2: RAILWAY_TOKEN first, as Railway's CLI; both set is a mistake, said.
#[test]
fn railway_token_wins_and_both_set_is_warned() {
    let server = world();
    let sb = sandbox(&server, "");
    let out = sb.run_with(
        &["plan", "--target", "api"],
        &[
            ("SECRETSYNC_RAILWAY_ENDPOINT", &server.url()),
            ("RAILWAY_TOKEN", PROJECT_TOKEN),
            ("RAILWAY_API_TOKEN", EXPIRED),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("both RAILWAY_TOKEN and RAILWAY_API_TOKEN are set"),
        "{}",
        out.stderr
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header == Header::ProjectAccessToken));
    assert_no_canary("plan", out.all().as_bytes(), &[PROJECT_TOKEN, EXPIRED]);
}

/// Finding 3: A mutation that succeeded but whose answer was lost is not sent again:
/// secretsync re-reads and finds it applied.
#[tokio::test]
async fn a_write_whose_answer_is_lost_is_reread_not_resent() {
    for fault in [Fault::Hang, Fault::Status(502), Fault::Malformed] {
        let server = world();
        server.set_var(PROJECT, PROD, Some(API), "OLD", "x");
        let mut env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
        env.insert("SECRETSYNC_RAILWAY_TIMEOUT".into(), "0.5".into());
        let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
        let before = t.read(&[]).await.unwrap();
        server.clear_requests();
        // The pre-write read answers; the mutation runs, then its answer is lost.
        let lost = Fault::AfterSuccess(Box::new(fault.clone()));
        let changes = [c::add("NEW", "n"), c::delete("OLD")];
        let writing = t.write(&before, &changes);
        let server_ref = &server;
        let arm = async move {
            // Arm the fault once the check read has been answered.
            while server_ref.requests().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            server_ref.fail_next(1, lost);
        };
        let (result, ()) = tokio::join!(writing, arm);
        result.unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(server.mutations(), 1, "{fault:?}: never re-sent");
        assert_eq!(
            server.deploys(PROJECT, PROD, Some(API)),
            1,
            "{fault:?}: one deploy"
        );
        let vars = server.vars(PROJECT, PROD, Some(API));
        assert!(vars.contains_key("NEW") && !vars.contains_key("OLD"));
    }
}

/// Finding 3: Railway's CLI waits 90 s: some mutations run longer than 30 s.
#[test]
fn the_default_timeout_is_railways_90_seconds() {
    let p = secretsync::targets::railway::RetryPolicy::default();
    assert_eq!(p.timeout, Duration::from_secs(90));
}

/// Finding 4: One refused field nulls the whole answer; what happened is re-read.
#[tokio::test]
async fn a_half_applied_write_is_reported_as_partly_applied() {
    let server = world();
    server.set_var(PROJECT, PROD, Some(API), "OLD", "x");
    server.refuse_delete("OLD", "Variable is locked");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let before = t.read(&[]).await.unwrap();
    let e = t
        .write(
            &before,
            &[c::add("NEW", "CANARY-new-value"), c::delete("OLD")],
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("partly applied"), "{e}");
    assert!(e.message.contains("applied: NEW"), "{e}");
    assert!(e.message.contains("not applied: OLD"), "{e}");
    assert!(e.message.contains("Variable is locked"), "{e}");
    assert!(!e.to_string().contains("CANARY"), "{e}");
}

/// Finding 5: Staged dashboard edits are shown: deploying them later overwrites.
#[test]
fn staged_changes_are_shown_by_plan_and_doctor() {
    let server = world();
    server.stage_changes(PROJECT, PROD, 2);
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_API_TOKEN", ACCOUNT);
    let plan = run(&sb, &server, token, &["plan"]);
    assert!(plan.all().contains("2 staged change(s)"), "{}", plan.all());
    let doctor = run(&sb, &server, token, &["doctor"]);
    assert!(
        doctor.stdout.contains("2 staged change(s)"),
        "{}",
        doctor.stdout
    );
}

/// Finding 6: Few requests in flight per token, whatever the parallelism.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_per_token_are_few() {
    let server = world();
    server.set_latency(Duration::from_millis(50));
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let mut targets = Vec::new();
    for i in 0..12 {
        let id = format!("svc-f-{i}");
        server.add_service(PROJECT, &id, &format!("f{i}"));
        targets.push(build(&ctx, &spec(Some(&id)), &env).unwrap());
    }
    let reads = futures_util::future::join_all(targets.iter().map(|t| t.read(&[]))).await;
    let writes = futures_util::future::join_all(
        targets
            .iter()
            .zip(reads)
            .map(|(t, o)| async move { t.write(&o.unwrap(), &[c::add("K", "v")]).await }),
    )
    .await;
    for w in writes {
        w.unwrap();
    }
    assert!(
        server.max_in_flight() <= 4,
        "{} in flight",
        server.max_in_flight()
    );
}

/// Finding 6: Railway's deployment rate limit is a GraphQL error, explained.
#[tokio::test]
async fn the_deployment_rate_limit_is_explained() {
    let server = world();
    server.deploy_budget(0);
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let before = t.read(&[]).await.unwrap();
    let e = t.write(&before, &[c::add("K", "v")]).await.unwrap_err();
    assert!(e.message.contains("deployment rate limit"), "{e}");
    assert!(e.message.contains("not applied"), "{e}");
    assert!(
        e.hint.as_deref().unwrap_or("").contains("skip_deploys"),
        "{e}"
    );
}

/// Finding 7: An HTML 403 comes from the CDN in front of the API, not Railway's auth.
#[tokio::test]
async fn an_html_403_from_the_cdn_is_not_blamed_on_the_token() {
    let server = world();
    server.fail_next(10, Fault::Html(403));
    let e = read_error(&server, ("RAILWAY_API_TOKEN", ACCOUNT), &spec(None)).await;
    assert_ne!(e.kind, ErrorKind::Auth, "{e}");
    assert!(e.message.contains("HTML"), "{e}");
    assert!(!e.message.contains("expired"), "{e}");
}

/// Finding 8: A project token is scoped to one environment: doctor compares it.
#[test]
fn doctor_refuses_a_project_token_of_another_environment() {
    let server = world();
    let sb = Sandbox::new();
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  stg:\n    type: railway\n    project: {PROJECT}\n    environment: staging\n    service: api\nsecrets:\n  A:\n    targets: [stg]\n    value: a\n",
            sb.header()
        ),
    );
    let out = run(&sb, &server, ("RAILWAY_TOKEN", PROJECT_TOKEN), &["doctor"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(
            "FAIL token accepted: the project token in RAILWAY_TOKEN is for environment env-prod-1, not staging (env-stg-2)"
        ),
        "{}",
        out.stdout
    );
}

/// Finding 9: A restricted or deleted environment fails only its own targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_or_deleted_environment_fails_only_its_targets() {
    let server = world();
    server.add_environment(PROJECT, "env-old-3", "old");
    server.delete_environment(PROJECT, "env-old-3");
    server.restrict_environment(PROJECT, STAGING);
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let prod = build(&ctx, &spec(Some("api")), &env).unwrap();
    let mut s = spec(Some("api"));
    s.environment = "staging".into();
    let staging = build(&ctx, &s, &env).unwrap();
    s.environment = "old".into();
    let old = build(&ctx, &s, &env).unwrap();
    let mut reads = read_together(&[&prod, &staging, &old]).await.into_iter();
    let (p, st, o) = (
        reads.next().unwrap(),
        reads.next().unwrap(),
        reads.next().unwrap(),
    );
    let p = p.unwrap_or_else(|e| panic!("production: {e}"));
    assert!(p.entries.contains_key("LOG_LEVEL"));
    let st = st.unwrap_err();
    assert!(
        st.message.contains("staging") && st.message.contains("access"),
        "{st}"
    );
    let o = o.unwrap_err();
    assert!(o.message.contains("deleted"), "{o}");
}

/// Finding 10: References are Railway's wiring: plan shows them, prune leaves
/// them, import does not copy them as secrets.
#[test]
fn references_are_shown_kept_by_prune_and_not_imported() {
    let server = world();
    server.set_var(
        PROJECT,
        PROD,
        Some(API),
        "DATABASE_URL",
        "${{Postgres.DATABASE_URL}}",
    );
    server.set_var(PROJECT, PROD, Some(API), "SHARED_REF", "${{shared.REGION}}");
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_API_TOKEN", ACCOUNT);
    let plan = run(&sb, &server, token, &["plan", "--target", "api"]);
    assert!(
        plan.all().contains("2 reference(s)") && plan.all().contains("DATABASE_URL, SHARED_REF"),
        "{}",
        plan.all()
    );
    let apply = run(
        &sb,
        &server,
        token,
        &["apply", "--auto-approve", "--target", "api"],
    );
    assert_eq!(apply.code, 0, "{apply:?}");
    let vars = server.vars(PROJECT, PROD, Some(API));
    assert_eq!(
        vars.get("DATABASE_URL"),
        Some(&Some("${{Postgres.DATABASE_URL}}".to_string())),
        "prune: true leaves references alone"
    );
    assert!(vars.contains_key("SHARED_REF"));
    assert_eq!(server.count("variableDelete"), 0);

    let import = run(&sb, &server, token, &["import", "--from", "api"]);
    assert_eq!(import.code, 0, "{import:?}");
    assert!(import.stderr.contains("reference"), "{}", import.stderr);
    assert!(!sb.read("secrets.yaml").contains("DATABASE_URL"));
    // Named, a reference is imported as what it is: a plain value.
    let import = run(
        &sb,
        &server,
        token,
        &["import", "--from", "api", "DATABASE_URL"],
    );
    assert_eq!(import.code, 0, "{import:?}");
    assert!(
        import.stderr.contains(
            "stored as plain values (references the platform resolves, not secrets): DATABASE_URL"
        ),
        "{}",
        import.stderr
    );
    let m = secretsync::manifest::load(&sb.path("secrets.yaml")).unwrap();
    assert!(
        matches!(&m.secrets["DATABASE_URL"].value, secretsync::manifest::ValueSource::Plain(v) if v == "${{Postgres.DATABASE_URL}}"),
        "{:?}",
        m.secrets["DATABASE_URL"].value
    );
}

/// The engine's batched read: `targets` (one project and token) through the first.
async fn read_together(
    targets: &[&RailwayTarget],
) -> Vec<Result<secretsync::targets::Observed, TargetError>> {
    let reads: Vec<Read<'_>> = targets
        .iter()
        .map(|t| Read {
            target: *t as &dyn Target,
            keys: &[],
        })
        .collect();
    assert!(targets
        .iter()
        .all(|t| t.batch_key() == targets[0].batch_key()));
    targets[0].read_batch(&reads).await
}

/// Finding 11: `isSealed` is read: a sealed key missing from `variables` is sealed,
/// not absent (and so never written over).
#[tokio::test]
async fn is_sealed_is_read_not_guessed() {
    let server = world();
    server.set_sealed_shape(support::railway_server::SealedShape::Absent);
    server.set_sealed(PROJECT, PROD, Some(API), "DB_PASSWORD");
    server.set_sealed(PROJECT, PROD, None, "SHARED_SEALED");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let t = build(&ctx, &spec(Some("api")), &env).unwrap();
    let shared = build(&ctx, &spec(None), &env).unwrap();
    let mut reads = read_together(&[&t, &shared]).await.into_iter();
    let (o, so) = (reads.next().unwrap(), reads.next().unwrap());
    let (o, so) = (o.unwrap(), so.unwrap());
    assert_eq!(o.entries.get("DB_PASSWORD"), Some(&Observation::Sealed));
    assert!(!o.entries.contains_key("SHARED_SEALED"), "another scope's");
    assert_eq!(so.entries.get("SHARED_SEALED"), Some(&Observation::Sealed));
    assert_eq!(server.count("variables"), 1, "still one request per pass");
}

/// Should Railway refuse `environment(id:)` to some token, the variables are
/// still read (sealed known by null values only, and said).
#[tokio::test]
async fn variables_are_read_when_the_environment_field_is_refused() {
    let server = world();
    server.refuse_field("environment");
    server.set_sealed(PROJECT, PROD, Some(API), "DB_PASSWORD");
    let env = env_with(&server, ("RAILWAY_TOKEN", PROJECT_TOKEN));
    let t = build(&ctx(), &spec(Some("api")), &env).unwrap();
    let o = t.read(&[]).await.unwrap();
    assert_eq!(o.entries.get("DB_PASSWORD"), Some(&Observation::Sealed));
    assert!(o.entries.contains_key("LOG_LEVEL"));
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("did not answer about environment")),
        "{:?}",
        o.notes
    );
}

// ---------------------------------------------------------------------------
// #26: a project's writes in one conflict read and one mutation, each member
// judged on its own.

/// Two services of one project written together: one request for the
/// conflict check, one mutation (aliased fields per service); a member that
/// moved since its plan is refused alone and the other is written.
#[tokio::test]
async fn a_project_is_written_in_one_mutation_and_a_moved_member_refused_alone() {
    let server = world();
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let api = build(&ctx, &spec(Some(API)), &env).unwrap();
    let worker = build(&ctx, &spec(Some(WORKER)), &env).unwrap();
    let (api_seen, worker_seen) = (
        api.read(&[]).await.unwrap(),
        worker.read(&[]).await.unwrap(),
    );
    // Someone changes the worker between the plan and the write.
    server.set_var(PROJECT, PROD, Some(WORKER), "BY_HAND", "edited");
    server.clear_requests();
    let (a, w) = (
        [c::add("NEW_A", "CANARY-batch-value-a")],
        [c::add("NEW_W", "CANARY-batch-value-w")],
    );
    let group = [
        Write {
            target: &api,
            observed: &api_seen,
            changes: &a,
        },
        Write {
            target: &worker,
            observed: &worker_seen,
            changes: &w,
        },
    ];
    let results = api.write_batch(&group).await;
    assert_eq!(results.len(), 2);
    results[0].as_ref().unwrap();
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert_eq!(server.count("variables"), 1, "one conflict read for both");
    assert_eq!(server.mutations(), 1);
    assert_eq!(server.requests().len(), 2, "{:#?}", server.requests());
    let api_now = server.vars(PROJECT, PROD, Some(API));
    assert_eq!(
        api_now.get("NEW_A"),
        Some(&Some("CANARY-batch-value-a".into()))
    );
    assert!(!server
        .vars(PROJECT, PROD, Some(WORKER))
        .contains_key("NEW_W"));
    assert!(!e.to_string().contains("CANARY"), "{e}");
}

/// A field refused inside the project's one mutation: the answer is lost for
/// all, so each member is judged by one batched re-read (never re-sent):
/// the member whose changes landed is applied, the other partly applied.
#[tokio::test]
async fn one_refused_field_in_a_project_mutation_is_judged_per_member() {
    let server = world();
    server.set_var(PROJECT, PROD, Some(WORKER), "OLD", "x");
    server.refuse_delete("OLD", "Variable is locked");
    let env = env_with(&server, ("RAILWAY_API_TOKEN", ACCOUNT));
    let ctx = ctx();
    let api = build(&ctx, &spec(Some(API)), &env).unwrap();
    let worker = build(&ctx, &spec(Some(WORKER)), &env).unwrap();
    let (api_seen, worker_seen) = (
        api.read(&[]).await.unwrap(),
        worker.read(&[]).await.unwrap(),
    );
    server.clear_requests();
    let a = [c::add("NEW_A", "CANARY-batch-value-a")];
    let w = [c::add("NEW_W", "CANARY-batch-value-w"), c::delete("OLD")];
    let group = [
        Write {
            target: &api,
            observed: &api_seen,
            changes: &a,
        },
        Write {
            target: &worker,
            observed: &worker_seen,
            changes: &w,
        },
    ];
    let results = api.write_batch(&group).await;
    results[0].as_ref().unwrap();
    let e = results[1].as_ref().unwrap_err();
    assert!(e.message.contains("partly applied"), "{e}");
    assert!(e.message.contains("applied: NEW_W"), "{e}");
    assert!(e.message.contains("not applied: OLD"), "{e}");
    assert_eq!(server.mutations(), 1, "never re-sent");
    assert_eq!(
        server.count("variables"),
        2,
        "conflict read, then one re-read"
    );
    assert!(!e.to_string().contains("CANARY"), "{e}");
}

/// #26: `apply FILE` checks the saved plan's MAC before it contacts any
/// target: a tampered file chooses nothing that is read (before, every
/// target it named was read first).
#[test]
fn a_tampered_saved_plan_contacts_no_target() {
    let server = world();
    let sb = sandbox(&server, "");
    let token = ("RAILWAY_API_TOKEN", ACCOUNT);
    let out = run(&sb, &server, token, &["plan", "--out", "saved.plan"]);
    assert!(out.code == 0 || out.code == 2, "{out:?}");
    let mut doc: serde_json::Value = serde_json::from_str(&sb.read("saved.plan")).unwrap();
    doc["mac"] = serde_json::json!("0".repeat(64));
    sb.write("saved.plan", &serde_json::to_string_pretty(&doc).unwrap());
    server.clear_requests();
    let out = run(&sb, &server, token, &["apply", "saved.plan"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("its MAC does not match"),
        "{}",
        out.stderr
    );
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}
