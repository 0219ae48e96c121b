//! Live or only written (#28): whether what runs from a target uses the
//! values it holds. Railway against the in-repo server (deployments and
//! variables' `updatedAt`, every document validated against the schema);
//! env files with a stand-in `systemctl` and `docker` naming a real process
//! the test starts. Canaries prove no value reaches output or argv.

use crate::support;

use support::cli::{assert_no_canary, Out, Sandbox};
use support::railway_server::RailwayServer;

const PROJECT: &str = "p-live-1";
const PROD: &str = "env-prod-1";
const API: &str = "svc-api-1";
const WORKER: &str = "svc-worker-2";
const WEB: &str = "svc-web-3";
const TOKEN: &str = "CANARY-live-account-token-61f2";
const NEW: &str = "CANARY-live-new-value-0c3d";
const OLD: &str = "CANARY-live-old-value-9e8a";

fn railway() -> RailwayServer {
    let s = RailwayServer::start();
    s.add_project(PROJECT, "shop");
    s.add_environment(PROJECT, PROD, "production");
    s.add_service(PROJECT, API, "api");
    s.add_service(PROJECT, WORKER, "worker");
    s.add_service(PROJECT, WEB, "web");
    s.add_account_token(TOKEN);
    // api and worker run the old value; web already runs the new one.
    s.set_var(PROJECT, PROD, Some(API), "API_TOKEN", OLD);
    s.set_var(PROJECT, PROD, Some(WORKER), "API_TOKEN", OLD);
    s.set_var(PROJECT, PROD, Some(WEB), "API_TOKEN", NEW);
    for svc in [API, WORKER, WEB] {
        s.deploy_service(PROJECT, PROD, svc);
    }
    s
}

fn railway_manifest() -> Sandbox {
    let sb = Sandbox::new();
    let target = |name: &str| {
        format!("  {name}:\n    type: railway\n    project: {PROJECT}\n    environment: production\n    service: {name}\n    skip_deploys: true\n")
    };
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n{}{}{}secrets:\n  API_TOKEN:\n    targets: [api, worker, web]\n    encrypted: |\n{}",
            sb.header(),
            target("api"),
            target("worker"),
            target("web"),
            sb.encrypted(NEW, 6),
        ),
    );
    sb
}

fn run_railway(sb: &Sandbox, server: &RailwayServer, args: &[&str]) -> Out {
    let out = sb.run_with(
        args,
        &[
            ("SECRETSYNC_RAILWAY_ENDPOINT", &server.url()),
            ("RAILWAY_API_TOKEN", TOKEN),
            ("SECRETSYNC_RAILWAY_BACKOFF", "0.01"),
            ("SECRETSYNC_RAILWAY_TIMEOUT", "5"),
        ],
    );
    assert_no_canary(
        &format!("secretsync {args:?}"),
        out.all().as_bytes(),
        &[TOKEN, NEW, OLD],
    );
    out
}

fn items(plan: &Out) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut i = t["items"][0].clone();
            i["target"] = t["name"].clone();
            i["target_status"] = t["status"].clone();
            i
        })
        .collect()
}

#[test]
fn railway_skip_deploys_is_not_live_until_apply_redeploy() {
    let server = railway();
    let sb = railway_manifest();

    // web runs the manifest's value: in sync, and live.
    let plan = run_railway(&sb, &server, &["plan", "--format", "json"]);
    let web = &items(&plan)[2];
    assert_eq!(web["state"], "in_sync", "{web}");
    assert_eq!(web["live"], true, "{web}");

    server.clear_requests();
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    // Liveness is read in the same requests: still 5 per project.
    assert_eq!(server.requests().len(), 5, "{:#?}", server.requests());
    assert_eq!(server.total_deploys(), 0, "skip_deploys");
    assert!(
        apply.stdout.contains(
            "    written, not live yet: API_TOKEN: the variable changed on 2026-12-01 10:00:"
        ),
        "{}",
        apply.stdout
    );
    assert!(
        apply
            .stdout
            .contains("; redeploy service api (secretsync apply --redeploy)"),
        "{}",
        apply.stdout
    );

    // Written, not live: drift for --detailed-exitcode, in every format.
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("api (railway service api in production (project p-live-1)): 1 value written, not live\n    ! API_TOKEN                    written, not live: the variable changed on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("after service api started on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan: 0 to add, 0 to change, 0 to delete. 1 target in sync, 2 not live; 2 values written, not live."),
        "{}",
        plan.stdout
    );
    let json = run_railway(&sb, &server, &["plan", "--format", "json"]);
    let got = items(&json);
    for i in &got[..2] {
        assert_eq!(i["state"], "not_live", "{i}");
        assert_eq!(i["live"], false, "{i}");
        assert_eq!(i["target_status"], "not_live", "{i}");
        assert!(i["reason"]
            .as_str()
            .unwrap()
            .contains("the variable changed on"));
        assert_eq!(
            i["action"],
            format!(
                "redeploy service {} (secretsync apply --redeploy)",
                i["target"].as_str().unwrap()
            )
        );
    }
    assert_eq!(got[2]["live"], true);
    let md = run_railway(&sb, &server, &["plan", "--format", "markdown"]);
    assert!(
        md.stdout
            .contains("⏳ not live: written, not live: the variable changed on"),
        "{}",
        md.stdout
    );

    // One deploy per stale service, and only those; then live.
    server.clear_requests();
    let apply = run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(server.redeploys(PROJECT, PROD, API), 1);
    assert_eq!(server.redeploys(PROJECT, PROD, WORKER), 1);
    assert_eq!(server.redeploys(PROJECT, PROD, WEB), 0);
    assert_eq!(server.count("serviceInstanceRedeploy"), 1, "one mutation");
    assert!(
        apply
            .stdout
            .contains("    redeployed service api\n    live\n"),
        "{}",
        apply.stdout
    );
    let plan = run_railway(&sb, &server, &["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains("= API_TOKEN                    in sync, and live: service api started on 2026-12-01 10:00:"),
        "{}",
        plan.stdout
    );

    // Again: nothing is stale, nothing is redeployed.
    run_railway(&sb, &server, &["apply", "--auto-approve", "--redeploy"]);
    assert_eq!(server.redeploys(PROJECT, PROD, API), 1);
}

#[test]
fn railway_a_crashed_deployment_is_not_live_and_notify_counts_it() {
    let server = railway();
    server.set_var(PROJECT, PROD, Some(API), "API_TOKEN", NEW);
    server.set_var(PROJECT, PROD, Some(WORKER), "API_TOKEN", NEW);
    for svc in [API, WORKER] {
        server.deploy_service(PROJECT, PROD, svc);
    }
    server.set_deployment_status(PROJECT, PROD, WORKER, "CRASHED");
    let sb = railway_manifest();
    let (url, rx, _l) = support::webhook::listener();
    let plan = run_railway(
        &sb,
        &server,
        &["plan", "--detailed-exitcode", "--notify", &url],
    );
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains("written, not live: the latest deployment of service worker is CRASHED: it does not run; redeploy service worker"),
        "{}",
        plan.stdout
    );
    let body = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a notification");
    assert!(
        body.contains("1 value(s) written, not live")
            && body.contains("written, not live: API_TOKEN"),
        "{body}"
    );
}
