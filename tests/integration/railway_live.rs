//! The live smoke test (#16): checks, against Railway's real API and a
//! throwaway project, every assumption the in-repo server
//! (`tests/support/railway_server.rs`) makes, and prints a Markdown report a
//! user can paste into an issue. `#[ignore]`d: it needs the network and
//! tokens (see docs/targets/railway.md, "The live smoke test"). The report
//! holds no value and no token: only lengths, booleans, counts and Railway's
//! error messages (scrubbed of the tokens).
//!
//! It could not be run where it was written (no network): every query it
//! sends is validated against the published schema by
//! `every_query_is_valid_against_the_schema`, which always runs.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::railway_server::validate;

const ME: &str = "query me { me { id } }";
const PROJECT_TOKEN: &str = "query projectToken { projectToken { projectId environmentId } }";
const PROJECT: &str = "query project($id: String!) { project(id: $id) { id name environments { edges { node { id name canAccess deletedAt } } } } }";
const VARIABLES: &str = "query variables($projectId: String!, $environmentId: String!, $serviceId: String, $unrendered: Boolean) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: $unrendered) }";
const ENVIRONMENT: &str = "query environment($id: String!, $projectId: String) { environment(id: $id, projectId: $projectId) { id configEtag canAccess deletedAt unmergedChangesCount variables { edges { node { name serviceId isSealed references } } pageInfo { hasNextPage } } } }";
const UPSERT: &str = "mutation upsert($input: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $input) }";
const DELETE: &str =
    "mutation delete($input: VariableDeleteInput!) { variableDelete(input: $input) }";
const DELETE_TWO: &str = "mutation deleteTwo($a: VariableDeleteInput!, $b: VariableDeleteInput!) { a: variableDelete(input: $a) b: variableDelete(input: $b) }";
const DEPLOYMENTS: &str = "query deployments($input: DeploymentListInput!) { deployments(input: $input, first: 50) { edges { node { id status createdAt } } } }";

/// Liveness (#28): what secretsync reads to tell whether a service runs its
/// variables, and how `apply --redeploy` redeploys one.
const LIVENESS: &str = "query liveness($id: String!, $projectId: String) { environment(id: $id, projectId: $projectId) { variables { edges { node { name serviceId updatedAt references } } } serviceInstances { edges { node { serviceId latestDeployment { id createdAt status } } } } } }";
const REDEPLOY: &str = "mutation redeploy($e: String!, $s: String!) { r0: serviceInstanceRedeploy(environmentId: $e, serviceId: $s) }";

const ALL: &[&str] = &[
    ME,
    PROJECT_TOKEN,
    PROJECT,
    VARIABLES,
    ENVIRONMENT,
    UPSERT,
    DELETE,
    DELETE_TWO,
    DEPLOYMENTS,
    LIVENESS,
    REDEPLOY,
];

#[test]
fn every_query_is_valid_against_the_schema() {
    for q in ALL {
        validate(q).unwrap_or_else(|e| panic!("{q}\n{e}"));
    }
}

#[derive(Clone, Copy)]
enum Token<'a> {
    Bearer(&'a str),
    Project(&'a str),
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    json: Option<Value>,
    html: bool,
}

impl Answer {
    fn data(&self) -> Option<&Value> {
        self.json
            .as_ref()
            .and_then(|j| j.get("data"))
            .filter(|d| !d.is_null())
    }

    /// "ok", or what went wrong (Railway's messages, tokens scrubbed).
    fn outcome(&self, tokens: &[&str]) -> String {
        let errors: Vec<String> = self
            .json
            .as_ref()
            .and_then(|j| j.get("errors"))
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .map(|e| e["message"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut out = if errors.is_empty() && self.data().is_some() {
            "ok".to_string()
        } else if self.html {
            format!("HTTP {} with an HTML page", self.status)
        } else {
            format!("HTTP {}: {}", self.status, errors.join("; "))
        };
        for t in tokens.iter().filter(|t| t.len() >= 8) {
            out = out.replace(t, "<token>");
        }
        out.chars().take(300).collect()
    }
}

struct Live {
    client: reqwest::Client,
    endpoint: String,
    project: String,
    environment: String,
    service: String,
    account: String,
    report: Vec<(String, String)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Live {
    async fn post(&self, token: Token<'_>, query: &str, variables: Value) -> Answer {
        let request = self
            .client
            .post(&self.endpoint)
            .timeout(Duration::from_secs(90))
            .json(&json!({ "query": query, "variables": variables }));
        let request = match token {
            Token::Bearer(t) => request.bearer_auth(t),
            Token::Project(t) => request.header("Project-Access-Token", t),
        };
        match request.send().await {
            Err(e) => Answer {
                status: 0,
                headers: vec![("error".into(), e.to_string())],
                json: None,
                html: false,
            },
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        let k = k.as_str();
                        k.starts_with("x-ratelimit") || k == "retry-after" || k == "content-type"
                    })
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
                    .collect::<Vec<_>>();
                let text = resp.text().await.unwrap_or_default();
                Answer {
                    status,
                    html: text.trim_start().starts_with('<'),
                    json: serde_json::from_str(&text).ok(),
                    headers,
                }
            }
        }
    }

    fn note(&mut self, check: &str, result: impl Into<String>) {
        let result = result.into();
        eprintln!("smoke: {check}: {result}");
        self.report.push((check.to_string(), result));
    }

    fn account(&self) -> Token<'_> {
        Token::Bearer(&self.account)
    }

    fn scope(&self, service: bool) -> Value {
        let mut v = json!({ "projectId": self.project, "environmentId": self.environment });
        if service {
            v["serviceId"] = json!(self.service);
        }
        v
    }

    async fn upsert(&self, vars: Value, skip: bool) -> Answer {
        let mut input = self.scope(true);
        input["variables"] = vars;
        input["skipDeploys"] = json!(skip);
        self.post(self.account(), UPSERT, json!({ "input": input }))
            .await
    }

    async fn delete(&self, name: &str) -> Answer {
        let mut input = self.scope(true);
        input["name"] = json!(name);
        self.post(self.account(), DELETE, json!({ "input": input }))
            .await
    }

    async fn read(&self, unrendered: bool) -> Option<serde_json::Map<String, Value>> {
        let mut v = self.scope(true);
        v["unrendered"] = json!(unrendered);
        let a = self.post(self.account(), VARIABLES, v).await;
        a.data()?.get("variables")?.as_object().cloned()
    }

    async fn environment(&self, token: Token<'_>, id: &str) -> Answer {
        self.post(
            token,
            ENVIRONMENT,
            json!({ "id": id, "projectId": self.project }),
        )
        .await
    }

    async fn deployments(&self) -> Option<BTreeSet<String>> {
        let a = self
            .post(
                self.account(),
                DEPLOYMENTS,
                json!({ "input": self.scope(true) }),
            )
            .await;
        Some(
            a.data()?["deployments"]["edges"]
                .as_array()?
                .iter()
                .filter_map(|e| e["node"]["id"].as_str().map(str::to_string))
                .collect(),
        )
    }

    /// Deploys started by `action`, counted after a wait.
    async fn deploys_of(
        &self,
        wait: Duration,
        action: impl std::future::Future<Output = String>,
    ) -> String {
        let before = self.deployments().await;
        let outcome = action.await;
        tokio::time::sleep(wait).await;
        let after = self.deployments().await;
        match (before, after) {
            (Some(b), Some(a)) => {
                format!("{outcome}; {} new deployment(s)", a.difference(&b).count())
            }
            _ => format!("{outcome}; deployments could not be listed"),
        }
    }
}

#[tokio::test]
#[ignore = "live: needs Railway, tokens and a throwaway project (docs/targets/railway.md)"]
async fn railway_live_smoke() {
    let need = |n: &str| {
        env(n).unwrap_or_else(|| panic!("set {n} (docs/targets/railway.md, The live smoke test)"))
    };
    let project = need("SMOKE_RAILWAY_PROJECT");
    assert_eq!(
        env("SMOKE_RAILWAY_CONFIRM").as_deref(),
        Some(project.as_str()),
        "set SMOKE_RAILWAY_CONFIRM to the project id: this writes to it"
    );
    let mut live = Live {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        endpoint: env("SECRETSYNC_RAILWAY_ENDPOINT")
            .unwrap_or_else(|| "https://backboard.railway.com/graphql/v2".into()),
        project,
        environment: need("SMOKE_RAILWAY_ENVIRONMENT"),
        service: need("SMOKE_RAILWAY_SERVICE"),
        account: need("SMOKE_RAILWAY_ACCOUNT_TOKEN"),
        report: Vec::new(),
    };
    let workspace = env("SMOKE_RAILWAY_WORKSPACE_TOKEN");
    let project_token = env("SMOKE_RAILWAY_PROJECT_TOKEN");
    let restricted = env("SMOKE_RAILWAY_RESTRICTED_ENVIRONMENT");
    let wait = Duration::from_secs(
        env("SMOKE_RAILWAY_DEPLOY_WAIT")
            .and_then(|w| w.parse().ok())
            .unwrap_or(20),
    );
    let mut tokens = vec![live.account.clone()];
    tokens.extend(workspace.clone());
    tokens.extend(project_token.clone());
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();

    // Tokens.
    let a = live.post(live.account(), ME, json!({})).await;
    let headers = a.headers.clone();
    live.note("account token: `me`", a.outcome(&t));
    live.note(
        "rate-limit headers of an answer",
        format!("{headers:?}").replace(&live.account, "<token>"),
    );
    if let Some(w) = &workspace {
        let a = live.post(Token::Bearer(w), ME, json!({})).await;
        live.note("workspace token: `me`", a.outcome(&t));
        let a = live
            .post(Token::Bearer(w), PROJECT, json!({ "id": live.project }))
            .await;
        live.note("workspace token: `project(id:)`", a.outcome(&t));
    }
    if let Some(p) = &project_token {
        let a = live.post(Token::Project(p), PROJECT_TOKEN, json!({})).await;
        let scope = a
            .data()
            .map(|d| {
                format!(
                    "project matches: {}, environment matches: {}",
                    d["projectToken"]["projectId"] == json!(live.project),
                    d["projectToken"]["environmentId"] == json!(live.environment)
                )
            })
            .unwrap_or_default();
        live.note(
            "project token: `projectToken`",
            format!("{}; {scope}", a.outcome(&t)),
        );
        let a = live.post(Token::Project(p), ME, json!({})).await;
        live.note("project token: `me`", a.outcome(&t));
        let a = live
            .environment(Token::Project(p), &live.environment.clone())
            .await;
        live.note(
            "project token: `environment(id:)` of its environment",
            a.outcome(&t),
        );
    }

    // The environment: staged changes, sealed flags, configEtag.
    let env_id = live.environment.clone();
    let a = live.environment(live.account(), &env_id).await;
    live.note("account token: `environment(id:)`", a.outcome(&t));
    let etag_before = a.data().map(|d| d["environment"]["configEtag"].clone());
    if let Some(d) = a.data() {
        let e = &d["environment"];
        live.note(
            "staged changes (`unmergedChangesCount`; stage one in the dashboard to see it count)",
            e["unmergedChangesCount"].to_string(),
        );
        live.note(
            "`Environment.variables` pages",
            format!("hasNextPage: {}", e["variables"]["pageInfo"]["hasNextPage"]),
        );
        let sealed: Vec<&Value> = e["variables"]["edges"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|n| n["node"]["name"] == "SMOKE_SEALED")
                    .collect()
            })
            .unwrap_or_default();
        match sealed.first() {
            None => live.note(
                "sealed variable SMOKE_SEALED",
                "not present (seal one in the dashboard to check)",
            ),
            Some(n) => {
                let flag = n["node"]["isSealed"].to_string();
                let shown = live.read(true).await.map(|v| match v.get("SMOKE_SEALED") {
                    None => "absent from `variables`".to_string(),
                    Some(Value::Null) => "listed with null in `variables`".to_string(),
                    Some(_) => "listed WITH a value in `variables`".to_string(),
                });
                live.note(
                    "sealed variable SMOKE_SEALED",
                    format!(
                        "isSealed: {flag}; {}",
                        shown.unwrap_or_else(|| "variables unreadable".into())
                    ),
                );
            }
        }
    }

    // Byte-exact round trips (skipDeploys: no deploy).
    let cases: Vec<(&str, String)> = vec![
        ("multi-line", "line one\nline two".into()),
        ("trailing newline", "x\n".into()),
        ("CRLF", "a\r\nb\r\n".into()),
        ("empty", String::new()),
        ("unicode", "é ü 漢字 🔑 \u{200b}".into()),
        ("quotes and dollars", "$HOME ${HOME} `id` \\ \" '".into()),
        ("64 KiB", "x".repeat(64 * 1024)),
    ];
    let upsert_vars: serde_json::Map<String, Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (format!("SMOKE_RT_{i}"), json!(v)))
        .collect();
    let a = live.upsert(Value::Object(upsert_vars), true).await;
    live.note("round trips: one upsert with skipDeploys", a.outcome(&t));
    let back = live.read(true).await.unwrap_or_default();
    for (i, (name, v)) in cases.iter().enumerate() {
        let got = back.get(&format!("SMOKE_RT_{i}"));
        let result = match got {
            Some(Value::String(s)) if s == v => "exact".to_string(),
            Some(Value::String(s)) => {
                format!("DIFFERS: sent {} bytes, got {} bytes", v.len(), s.len())
            }
            Some(other) => format!(
                "DIFFERS: got {}",
                if other.is_null() {
                    "null"
                } else {
                    "a non-string"
                }
            ),
            None => "MISSING".into(),
        };
        live.note(&format!("round trip: {name}"), result);
    }
    let mut largest = 0usize;
    for size in [256 * 1024, 1024 * 1024, 4 * 1024 * 1024] {
        let a = live
            .upsert(json!({ "SMOKE_SIZE": "y".repeat(size) }), true)
            .await;
        let exact = live
            .read(true)
            .await
            .and_then(|v| v.get("SMOKE_SIZE").and_then(Value::as_str).map(str::len))
            == Some(size);
        live.note(
            &format!("size {size} bytes"),
            format!("{}; reads back exactly: {exact}", a.outcome(&t)),
        );
        if a.data().is_none() || !exact {
            break;
        }
        largest = size;
    }
    live.note(
        "largest value accepted (of 256 KiB, 1 MiB, 4 MiB)",
        largest.to_string(),
    );

    // References.
    let a = live
        .upsert(json!({ "SMOKE_REF": "${{shared.SMOKE_SHARED_NEVER_SET}}", "SMOKE_REF2": "${{ SMOKE_RT_0 }}" }), true)
        .await;
    live.note("references: upsert", a.outcome(&t));
    let unrendered = live.read(true).await.unwrap_or_default();
    live.note(
        "references: read unrendered as written",
        format!(
            "{}, {}",
            unrendered.get("SMOKE_REF") == Some(&json!("${{shared.SMOKE_SHARED_NEVER_SET}}")),
            unrendered.get("SMOKE_REF2") == Some(&json!("${{ SMOKE_RT_0 }}"))
        ),
    );
    let rendered = live.read(false).await.unwrap_or_default();
    live.note(
        "references: read rendered",
        format!(
            "SMOKE_REF2 resolved to SMOKE_RT_0's value: {}; SMOKE_REF (dangling) is {}",
            rendered.get("SMOKE_REF2") == Some(&json!(cases[0].1)),
            match rendered.get("SMOKE_REF") {
                None => "absent".to_string(),
                Some(Value::String(s)) if s.is_empty() => "empty".to_string(),
                Some(Value::String(s)) if s.contains("${{") => "the template".to_string(),
                Some(_) => "something else".to_string(),
            }
        ),
    );
    let a = live.environment(live.account(), &env_id).await;
    let refs = a
        .data()
        .and_then(|d| d["environment"]["variables"]["edges"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["node"]["name"] == "SMOKE_REF2")
        .map(|e| e["node"]["references"].to_string());
    live.note(
        "references: `Variable.references` of SMOKE_REF2",
        refs.unwrap_or_else(|| "not listed".into()),
    );
    let etag_after = a.data().map(|d| d["environment"]["configEtag"].clone());
    live.note(
        "configEtag changes after variable writes",
        format!("{}", etag_before.is_some() && etag_before != etag_after),
    );

    // A delete of a key that does not exist.
    let a = live.delete("SMOKE_NEVER_SET_7f3a").await;
    live.note("delete of a missing key", a.outcome(&t));

    // Deploys per write.
    let r = live
        .deploys_of(wait, async {
            live.upsert(json!({ "SMOKE_D1": "1" }), false)
                .await
                .outcome(&t)
        })
        .await;
    live.note("deploys: upsert without skipDeploys", r);
    let r = live
        .deploys_of(wait, async {
            live.upsert(json!({ "SMOKE_D2": "2" }), true)
                .await
                .outcome(&t)
        })
        .await;
    live.note("deploys: upsert with skipDeploys", r);

    // Liveness (#28): after an upsert with skipDeploys, the variable's
    // updatedAt is after the service's latest deployment; after
    // serviceInstanceRedeploy, a newer deployment exists.
    let service = live.service.clone();
    let probe = |a: &Answer| -> (Option<String>, Option<(String, String)>) {
        let d = a.data();
        let updated = d.and_then(|d| {
            d["environment"]["variables"]["edges"]
                .as_array()?
                .iter()
                .find(|e| e["node"]["name"] == "SMOKE_D2")
                .and_then(|e| e["node"]["updatedAt"].as_str().map(str::to_string))
        });
        let latest = d.and_then(|d| {
            d["environment"]["serviceInstances"]["edges"]
                .as_array()?
                .iter()
                .find(|e| e["node"]["serviceId"] == json!(service))
                .map(|e| {
                    let l = &e["node"]["latestDeployment"];
                    (l["createdAt"].to_string(), l["status"].to_string())
                })
        });
        (updated, latest)
    };
    let vars = json!({ "id": live.environment, "projectId": live.project });
    let a = live.post(live.account(), LIVENESS, vars.clone()).await;
    let (updated, latest) = probe(&a);
    live.note(
        "liveness: SMOKE_D2 updatedAt vs the latest deployment (createdAt, status)",
        format!("{}; {updated:?} vs {latest:?}", a.outcome(&t)),
    );
    let a = live
        .post(
            live.account(),
            REDEPLOY,
            json!({ "e": live.environment, "s": live.service }),
        )
        .await;
    tokio::time::sleep(wait).await;
    let b = live.post(live.account(), LIVENESS, vars).await;
    live.note(
        "liveness: serviceInstanceRedeploy, then the latest deployment (createdAt, status)",
        format!("{}; {:?}", a.outcome(&t), probe(&b).1),
    );
    let r = live
        .deploys_of(wait, async { live.delete("SMOKE_D1").await.outcome(&t) })
        .await;
    live.note("deploys: one variableDelete", r);
    let _ = live
        .upsert(json!({ "SMOKE_D3": "3", "SMOKE_D4": "4" }), true)
        .await;
    let r = live
        .deploys_of(wait, async {
            let mut a = live.scope(true);
            a["name"] = json!("SMOKE_D3");
            let mut b = live.scope(true);
            b["name"] = json!("SMOKE_D4");
            live.post(live.account(), DELETE_TWO, json!({ "a": a, "b": b }))
                .await
                .outcome(&t)
        })
        .await;
    live.note("deploys: two variableDelete in one request", r);

    // A restricted environment.
    if let Some(r) = &restricted {
        let a = live
            .post(live.account(), PROJECT, json!({ "id": live.project }))
            .await;
        let listed = a
            .data()
            .and_then(|d| d["project"]["environments"]["edges"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|e| e["node"]["id"] == json!(r))
            .map(|e| format!("listed, canAccess: {}", e["node"]["canAccess"]))
            .unwrap_or_else(|| "not listed by `project`".into());
        live.note("restricted environment: in `project`", listed);
        let a = live
            .post(
                live.account(),
                VARIABLES,
                json!({ "projectId": live.project, "environmentId": r, "unrendered": true }),
            )
            .await;
        live.note("restricted environment: `variables`", a.outcome(&t));
        let a = live.environment(live.account(), r).await;
        live.note("restricted environment: `environment(id:)`", a.outcome(&t));
    }

    // Rate limits: only when asked, it spends the hourly budget.
    if let Some(n) = env("SMOKE_RAILWAY_BURST").and_then(|n| n.parse::<usize>().ok()) {
        let answers = futures_util::future::join_all(
            (0..n).map(|_| live.post(live.account(), ME, json!({}))),
        )
        .await;
        let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
        live.note(
            &format!("burst of {n} `me` at once"),
            format!(
                "{} answered 429; first 429's headers: {:?}",
                limited.len(),
                limited
                    .first()
                    .map(|a| a.headers.clone())
                    .unwrap_or_default()
            ),
        );
    }

    // Clean up.
    let names: Vec<String> = live
        .read(true)
        .await
        .unwrap_or_default()
        .keys()
        .filter(|k| k.starts_with("SMOKE_") && *k != "SMOKE_SEALED")
        .cloned()
        .collect();
    let mut left = Vec::new();
    for n in &names {
        if live.delete(n).await.data().is_none() {
            left.push(n.clone());
        }
    }
    live.note(
        "clean-up: SMOKE_* variables left behind",
        format!("{left:?}"),
    );

    println!("--- report ---");
    println!(
        "### secretsync Railway smoke test ({})",
        env!("CARGO_PKG_VERSION")
    );
    println!();
    println!("| check | result |");
    println!("|---|---|");
    for (check, result) in &live.report {
        println!(
            "| {} | {} |",
            check.replace('|', "\\|"),
            result.replace('|', "\\|").replace('\n', " ")
        );
    }
    println!("--- report ---");
}
