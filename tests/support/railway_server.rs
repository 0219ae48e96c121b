//! A stand-in for Railway's public GraphQL API, for tests and benchmarks.
//!
//! It serves HTTP/1.1 on 127.0.0.1 from a thread of its own (so sync tests,
//! async tests and a benchmark can all use it), and behaves like Railway for
//! what secretsync sends: every request's document is parsed and validated
//! with apollo-compiler against Railway's published schema
//! (`tests/fixtures/railway/schema.graphql`) and its variables coerced to the
//! operation's types, then `me`, `projectToken`, `project`, `environment`,
//! `variables`, `variableCollectionUpsert`, `variableUpsert` and
//! `variableDelete` run against projects, environments (restricted, deleted,
//! with staged changes), services and variables (shared and sealed, shown
//! as `null` or not at all; `isSealed` always) kept in memory. Both auth
//! headers are checked: account tokens (all projects or some), workspace
//! tokens (`me` refuses them), project tokens (one environment of one
//! project), expired tokens and dead project tokens. As on Railway, a
//! delete of a missing key is an error, a field error nulls the whole
//! answer, upserts without `skipDeploys` and every delete deploy (counted),
//! and too many deploys meet the deployment rate limit. Faults can be
//! injected (429 with `Retry-After`, any status, an HTML page from the
//! CDN, a malformed body, no answer, an answer lost after the request ran),
//! latency added, and every request is logged (and the most in flight at
//! once kept) so tests can count them.
//!
//! Deployments (#28), as far as the schema shows them: a service marked
//! deployed ([`RailwayServer::deploy_service`]) has a latest deployment
//! (`ServiceInstance.latestDeployment { id createdAt status }`, listed by
//! `Environment.serviceInstances`); every variable has `createdAt` and
//! `updatedAt` on a clock that moves one second per change; an upsert
//! without `skipDeploys` (and every delete) deploys the scope's deployed
//! services, those of a shared variable being the services whose variables
//! reference it; `serviceInstanceRedeploy` deploys one service again (each
//! deployment succeeds at once).
//!
//! Self-contained: a benchmark includes it with
//! `#[path = "../tests/support/railway_server.rs"] mod railway_server;`.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ast, ExecutableDocument, Schema};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SCHEMA_SDL: &str = include_str!("../fixtures/railway/schema.graphql");

/// Railway's schema, parsed once per process.
fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_and_validate(SCHEMA_SDL, "schema.graphql")
            .unwrap_or_else(|e| panic!("Railway's schema does not validate: {e}"))
    })
}

/// Whether `query` is a valid document for Railway's published schema (the
/// live smoke test checks its queries with this before it may ever run).
pub fn validate(query: &str) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema(), query, "query.graphql")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A failure the server produces instead of answering the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited { retry_after: u64 },
    /// An empty answer with this HTTP status (500, 502, 401, 403…).
    Status(u16),
    /// HTTP 200 whose body is not JSON.
    Malformed,
    /// No answer at all (the connection stays open for a minute).
    Hang,
    /// An HTML page with this status, as the CDN in front of Railway's API
    /// sends (a 403 from its firewall, a 502 from its edge).
    Html(u16),
    /// The request is carried out, then answered with the inner fault: a
    /// mutation that succeeded but whose answer was lost.
    AfterSuccess(Box<Fault>),
}

/// How a sealed variable shows in the `variables` scalar: Railway does not
/// document it, so the server can do either (`Variable.isSealed` is the
/// authoritative flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SealedShape {
    /// A key whose value is `null`.
    #[default]
    Null,
    /// Not listed at all.
    Absent,
}

/// Which auth header a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    None,
    Bearer,
    ProjectAccessToken,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub operation: Option<String>,
    /// The root fields' names (not aliases), in order.
    pub fields: Vec<String>,
    pub header: Header,
    pub status: u16,
    pub query: String,
    pub variables: Value,
    /// The body as received, for leak checks.
    pub body: String,
    /// The request line and headers as received, for leak checks (the
    /// token belongs in its auth header and nowhere else).
    pub head: String,
}

#[derive(Debug, Clone)]
enum Access {
    /// `None`: every project.
    Account(Option<Vec<String>>),
    Project {
        project: String,
        environment: String,
    },
    Expired,
    /// A deleted project token: Railway says "project token not found".
    DeadProject,
    /// A workspace token: Bearer, like an account token, but `me` refuses it.
    Workspace,
}

#[derive(Debug, Default)]
struct Project {
    name: String,
    environments: Vec<(String, String)>,
    services: Vec<(String, String)>,
    /// Environments the token's user may not see (`canAccess: false`).
    restricted: Vec<String>,
    /// Deleted environments (`deletedAt` set), still listed by the project.
    deleted: Vec<String>,
    /// Staged, not yet deployed, changes per environment.
    staged: HashMap<String, i64>,
}

type ScopeKey = (String, String, Option<String>);

#[derive(Default)]
struct State {
    projects: BTreeMap<String, Project>,
    /// Value `None`: sealed.
    vars: HashMap<ScopeKey, BTreeMap<String, Option<String>>>,
    tokens: HashMap<String, Access>,
    faults: VecDeque<Fault>,
    latency: Duration,
    log: Vec<Logged>,
    /// Deploys triggered (upserts without skipDeploys), per scope.
    deploys: HashMap<ScopeKey, usize>,
    /// Upserts that asked for `replace: true` (secretsync never should).
    replaces: usize,
    sealed_shape: SealedShape,
    /// Deletes refused with this message, by variable name.
    refused_deletes: HashMap<String, String>,
    /// Deploys allowed before Railway's deployment rate limit answers.
    deploy_budget: Option<usize>,
    /// Root fields refused with "Not Authorized" (what Railway may do with
    /// a field a token kind cannot use).
    refused_fields: Vec<String>,
    /// Mutations are refused with errors that echo their variables in
    /// every form (`echo_variables`).
    echo: bool,
    /// Requests being answered now, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
    /// The clock of `createdAt`/`updatedAt`, in milliseconds since the epoch.
    clock: i64,
    /// When each variable was last set: (scope, name) to the clock.
    updated: HashMap<(ScopeKey, String), i64>,
    /// Deployments of deployed services, oldest first: (project, environment,
    /// service) to (id, createdAt, status).
    deployments: HashMap<ServiceKey, Vec<Deployment>>,
    /// `serviceInstanceRedeploy` calls that deployed, per service.
    redeploys: HashMap<ServiceKey, usize>,
    /// The status new deployments get (`SUCCESS` when unset): `BUILDING`
    /// stands for Railway's deployments that take a while.
    new_status: Option<String>,
}

/// (project, environment, service).
type ServiceKey = (String, String, String);

/// A deployment: id, `createdAt` (the clock) and status.
type Deployment = (String, i64, String);

/// 2026-12-01T10:00:00.000Z, where the server's clock starts.
const CLOCK_START: i64 = 1_796_119_200_000;

impl State {
    /// The clock, one second on.
    fn tick(&mut self) -> i64 {
        if self.clock == 0 {
            self.clock = CLOCK_START;
        }
        self.clock += 1000;
        self.clock
    }

    /// A new successful deployment of a service, now.
    fn deploy(&mut self, project: &str, env: &str, service: &str) {
        let at = self.tick();
        let list = self
            .deployments
            .entry((project.into(), env.into(), service.into()))
            .or_default();
        let id = format!("dep-{service}-{}", list.len() + 1);
        let status = self.new_status.clone().unwrap_or_else(|| "SUCCESS".into());
        list.push((id, at, status));
    }

    /// The deployed services a change of `keys` in scope `key` deploys: the
    /// scope's service, or for shared variables those referencing one.
    fn deployed_by(&self, key: &ScopeKey, keys: &[String]) -> Vec<String> {
        let (project, env, service) = key;
        let deployed = |svc: &str| {
            self.deployments
                .contains_key(&(project.clone(), env.clone(), svc.to_string()))
        };
        match service {
            Some(svc) if deployed(svc) => vec![svc.clone()],
            Some(_) => Vec::new(),
            None => {
                let mut out: Vec<String> = self
                    .vars
                    .iter()
                    .filter_map(|((p, e, svc), vars)| {
                        let svc = svc.as_ref()?;
                        (p == project && e == env && deployed(svc)).then_some(())?;
                        vars.values()
                            .flatten()
                            .flat_map(|v| references_in(v))
                            .any(|r| keys.iter().any(|k| r == format!("shared.{k}")))
                            .then(|| svc.clone())
                    })
                    .collect();
                out.sort();
                out.dedup();
                out
            }
        }
    }
}

/// RFC 3339 with milliseconds, as Railway writes `DateTime`.
fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// A running server; stops when dropped.
pub struct RailwayServer {
    state: Arc<Mutex<State>>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for RailwayServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl RailwayServer {
    pub fn start() -> RailwayServer {
        let _ = schema();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(serve(stream, st.clone()));
                            }
                        }
                    }
                }
            });
        });
        RailwayServer {
            state,
            port,
            stop: Some(stop),
        }
    }

    /// The GraphQL endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql/v2", self.port)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_project(&self, id: &str, name: &str) {
        self.state().projects.insert(
            id.into(),
            Project {
                name: name.into(),
                ..Default::default()
            },
        );
    }

    pub fn add_environment(&self, project: &str, id: &str, name: &str) {
        self.state()
            .projects
            .get_mut(project)
            .expect("add the project first")
            .environments
            .push((id.into(), name.into()));
    }

    pub fn add_service(&self, project: &str, id: &str, name: &str) {
        self.state()
            .projects
            .get_mut(project)
            .expect("add the project first")
            .services
            .push((id.into(), name.into()));
    }

    /// Sets a variable (`service: None`: the environment's shared
    /// variables), without deploying.
    pub fn set_var(&self, project: &str, env: &str, service: Option<&str>, key: &str, value: &str) {
        let mut s = self.state();
        let at = s.tick();
        s.updated
            .insert((scope(project, env, service), key.into()), at);
        s.vars
            .entry(scope(project, env, service))
            .or_default()
            .insert(key.into(), Some(value.into()));
    }

    /// The service runs: a successful deployment of it now, which later
    /// changes of its variables (without `skipDeploys`) deploy again.
    pub fn deploy_service(&self, project: &str, env: &str, service: &str) {
        self.state().deploy(project, env, service);
    }

    /// The latest deployment of a service fails (`FAILED`, `CRASHED`…) or
    /// is under way (`BUILDING`…).
    pub fn set_deployment_status(&self, project: &str, env: &str, service: &str, status: &str) {
        let mut s = self.state();
        let list = s
            .deployments
            .get_mut(&(project.into(), env.into(), service.into()))
            .expect("deploy the service first");
        list.last_mut().expect("a deployment").2 = status.into();
    }

    /// Deployments made from now on get `status` (`BUILDING`: still under
    /// way when the next request reads them).
    pub fn new_deployments_status(&self, status: &str) {
        self.state().new_status = Some(status.into());
    }

    /// Deployments of a service so far (its first included).
    pub fn deployments(&self, project: &str, env: &str, service: &str) -> usize {
        self.state()
            .deployments
            .get(&(project.into(), env.into(), service.into()))
            .map_or(0, Vec::len)
    }

    /// `serviceInstanceRedeploy` calls that deployed the service.
    pub fn redeploys(&self, project: &str, env: &str, service: &str) -> usize {
        self.state()
            .redeploys
            .get(&(project.into(), env.into(), service.into()))
            .copied()
            .unwrap_or(0)
    }

    /// A sealed variable: listed, its value never returned.
    pub fn set_sealed(&self, project: &str, env: &str, service: Option<&str>, key: &str) {
        self.state()
            .vars
            .entry(scope(project, env, service))
            .or_default()
            .insert(key.into(), None);
    }

    /// The variables of a scope (`None` values: sealed).
    pub fn vars(
        &self,
        project: &str,
        env: &str,
        service: Option<&str>,
    ) -> BTreeMap<String, Option<String>> {
        self.state()
            .vars
            .get(&scope(project, env, service))
            .cloned()
            .unwrap_or_default()
    }

    /// An account token with access to every project.
    pub fn add_account_token(&self, token: &str) {
        self.state()
            .tokens
            .insert(token.into(), Access::Account(None));
    }

    /// An account token that sees only `projects` (a wrong-project token for
    /// any other).
    pub fn add_account_token_for(&self, token: &str, projects: &[&str]) {
        self.state().tokens.insert(
            token.into(),
            Access::Account(Some(projects.iter().map(|p| p.to_string()).collect())),
        );
    }

    /// A project token for one environment of one project.
    pub fn add_project_token(&self, token: &str, project: &str, environment: &str) {
        self.state().tokens.insert(
            token.into(),
            Access::Project {
                project: project.into(),
                environment: environment.into(),
            },
        );
    }

    /// A token that once existed and has expired (either header).
    pub fn add_expired_token(&self, token: &str) {
        self.state().tokens.insert(token.into(), Access::Expired);
    }

    /// A deleted project token.
    pub fn add_dead_project_token(&self, token: &str) {
        self.state()
            .tokens
            .insert(token.into(), Access::DeadProject);
    }

    /// A workspace token (Bearer; `me` refuses it, projects answer).
    pub fn add_workspace_token(&self, token: &str) {
        self.state().tokens.insert(token.into(), Access::Workspace);
    }

    /// The environment exists but the token's user may not use it.
    pub fn restrict_environment(&self, project: &str, env: &str) {
        self.project_mut(project, |p| p.restricted.push(env.into()));
    }

    /// The environment was deleted: still listed, with `deletedAt`.
    pub fn delete_environment(&self, project: &str, env: &str) {
        self.project_mut(project, |p| p.deleted.push(env.into()));
    }

    /// `n` changes staged in the dashboard, not yet deployed.
    pub fn stage_changes(&self, project: &str, env: &str, n: i64) {
        self.project_mut(project, |p| {
            p.staged.insert(env.into(), n);
        });
    }

    fn project_mut(&self, project: &str, f: impl FnOnce(&mut Project)) {
        f(self
            .state()
            .projects
            .get_mut(project)
            .expect("add the project first"));
    }

    /// How sealed variables show in the `variables` scalar.
    pub fn set_sealed_shape(&self, shape: SealedShape) {
        self.state().sealed_shape = shape;
    }

    /// `variableDelete` of `key` fails with `message` (a field error, which
    /// nulls the whole answer).
    pub fn refuse_delete(&self, key: &str, message: &str) {
        self.state()
            .refused_deletes
            .insert(key.into(), message.into());
    }

    /// After `n` more deploys, mutations that would deploy fail with
    /// Railway's deployment rate limit error.
    pub fn deploy_budget(&self, n: usize) {
        self.state().deploy_budget = Some(n);
    }

    /// Every mutation is refused with errors that quote its variables, as
    /// graphql-js validation errors do (`Variable "$input" got invalid
    /// value {…}`), and each string in them JSON-escaped, URL-encoded, in
    /// base64 and line by line: redaction must hide them all.
    pub fn echo_variables(&self) {
        self.state().echo = true;
    }

    /// Refuses the root field `name` ("Not Authorized") for every token.
    pub fn refuse_field(&self, name: &str) {
        self.state().refused_fields.push(name.into());
    }

    /// The most requests the server was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state().max_in_flight
    }

    /// Deploys over every scope.
    pub fn total_deploys(&self) -> usize {
        self.state().deploys.values().sum()
    }

    /// Delay before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// The next `n` requests get `fault` instead of an answer.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.state();
        for _ in 0..n {
            s.faults.push_back(fault.clone());
        }
    }

    /// Drops the faults not yet served.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// Requests with a root field named `field` (however many times).
    pub fn count(&self, field: &str) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| r.fields.iter().any(|f| f == field))
            .count()
    }

    /// Requests whose document is a mutation.
    pub fn mutations(&self) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| r.query.trim_start().starts_with("mutation"))
            .count()
    }

    /// Upserts that would have redeployed the scope's services.
    pub fn deploys(&self, project: &str, env: &str, service: Option<&str>) -> usize {
        self.state()
            .deploys
            .get(&scope(project, env, service))
            .copied()
            .unwrap_or(0)
    }

    /// Upserts sent with `replace: true`.
    pub fn replaces(&self) -> usize {
        self.state().replaces
    }
}

fn scope(project: &str, env: &str, service: Option<&str>) -> ScopeKey {
    (project.into(), env.into(), service.map(Into::into))
}

/// What to send back for one request.
enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Hang,
}

fn answer(status: u16, body: Value) -> Reply {
    Reply::Answer {
        status,
        headers: vec![],
        body: body.to_string(),
    }
}

async fn serve(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
        buf.drain(..head_end + len);

        let (reply, latency) = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let reply = handle(&mut s, &head, &headers, &body);
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            (reply, s.latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        state.lock().unwrap_or_else(|e| e.into_inner()).in_flight -= 1;
        match reply {
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            Reply::Answer {
                status,
                headers,
                body,
            } => {
                let kind = if body.starts_with('<') {
                    "text/html"
                } else {
                    "application/json"
                };
                let mut out = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n",
                    reason(status),
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                if stream.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Handles one request and logs it.
fn handle(s: &mut State, head: &str, headers: &[(String, String)], body: &str) -> Reply {
    let header_value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (header, token) = match (
        header_value("authorization"),
        header_value("project-access-token"),
    ) {
        (Some(a), _) => (
            Header::Bearer,
            a.strip_prefix("Bearer ").map(str::to_string),
        ),
        (None, Some(p)) => (Header::ProjectAccessToken, Some(p)),
        (None, None) => (Header::None, None),
    };
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let query = parsed
        .as_ref()
        .and_then(|v| v.get("query"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let variables = parsed
        .as_ref()
        .and_then(|v| v.get("variables"))
        .cloned()
        .unwrap_or(Value::Null);
    let operation_name = parsed
        .as_ref()
        .and_then(|v| v.get("operationName"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut logged = Logged {
        operation: None,
        fields: vec![],
        header,
        status: 200,
        query: query.clone(),
        variables: variables.clone(),
        body: body.to_string(),
        head: head.to_string(),
    };

    let fault = s.faults.pop_front();
    let fault = match fault {
        Some(Fault::AfterSuccess(inner)) => {
            if parsed.is_some() {
                let _ = run(
                    s,
                    token.as_deref(),
                    header,
                    &query,
                    operation_name.as_deref(),
                    &variables,
                    &mut logged,
                );
            }
            Some(*inner)
        }
        other => other,
    };
    let reply = if let Some(fault) = fault {
        match fault {
            Fault::RateLimited { retry_after } => Reply::Answer {
                status: 429,
                headers: vec![
                    ("retry-after".into(), retry_after.to_string()),
                    ("x-ratelimit-limit".into(), "1000".into()),
                    ("x-ratelimit-remaining".into(), "0".into()),
                ],
                body: json!({"errors": [{"message": "Too many requests"}]}).to_string(),
            },
            Fault::Status(code) => Reply::Answer {
                status: code,
                headers: vec![],
                body: String::new(),
            },
            Fault::Malformed => Reply::Answer {
                status: 200,
                headers: vec![],
                body: "<html>upstream glitch".into(),
            },
            Fault::Hang => Reply::Hang,
            Fault::Html(code) => Reply::Answer {
                status: code,
                headers: vec![],
                body: "<!DOCTYPE html><html><head><title>Attention Required</title></head><body>Sorry, you have been blocked</body></html>".into(),
            },
            Fault::AfterSuccess(_) => Reply::Hang,
        }
    } else if s.echo && query.trim_start().starts_with("mutation") {
        answer(200, errors(&echoes(&variables)))
    } else if parsed.is_none() {
        answer(
            400,
            json!({"errors": [{"message": "the body is not JSON"}]}),
        )
    } else {
        run(
            s,
            token.as_deref(),
            header,
            &query,
            operation_name.as_deref(),
            &variables,
            &mut logged,
        )
    };
    logged.status = match &reply {
        Reply::Answer { status, .. } => *status,
        Reply::Hang => 0,
    };
    s.log.push(logged);
    reply
}

/// Error messages quoting `variables` (see [`RailwayServer::echo_variables`]).
fn echoes(variables: &Value) -> Vec<String> {
    use base64::Engine as _;
    fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let url = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut leaves = Vec::new();
    strings(variables, &mut leaves);
    let mut m = vec![format!(
        "Variable \"$input\" got invalid value {variables}; Field \"variables\" of required type \"EnvironmentVariables!\" was not provided."
    )];
    for s in leaves {
        m.push(format!(
            "Expected value of type \"String!\", found {}.",
            Value::String(s.to_string())
        ));
        m.push(format!("Bad request body (form): {}", url(s)));
        m.push(format!(
            "Bad request body (base64): {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        ));
        for line in s.lines() {
            m.push(format!("Bad line: {line}"));
        }
    }
    m
}

fn errors(messages: &[String]) -> Value {
    json!({ "data": null, "errors": messages.iter().map(|m| json!({"message": m})).collect::<Vec<_>>() })
}

/// Validates and executes one GraphQL request.
fn run(
    s: &mut State,
    token: Option<&str>,
    header: Header,
    query: &str,
    operation_name: Option<&str>,
    variables: &Value,
    logged: &mut Logged,
) -> Reply {
    let schema = schema();
    let doc = match ExecutableDocument::parse_and_validate(schema, query, "request.graphql") {
        Ok(d) => d,
        Err(e) => {
            let messages: Vec<String> = e.errors.iter().map(|d| d.to_json().message).collect();
            return answer(
                400,
                json!({ "errors": messages.iter().map(|m| json!({"message": m})).collect::<Vec<_>>() }),
            );
        }
    };
    let op = match doc.operations.get(operation_name) {
        Ok(op) => op,
        Err(e) => {
            return answer(
                400,
                json!({"errors": [{"message": e.message().to_string()}]}),
            )
        }
    };
    logged.operation = op.name.as_ref().map(|n| n.to_string());
    logged.fields = op
        .selection_set
        .selections
        .iter()
        .filter_map(|sel| match sel {
            Selection::Field(f) => Some(f.name.to_string()),
            _ => None,
        })
        .collect();
    let raw: JsonMap = match variables {
        Value::Null => JsonMap::new(),
        v => match serde_json::from_value(v.clone()) {
            Ok(m) => m,
            Err(_) => {
                return answer(
                    400,
                    json!({"errors": [{"message": "variables must be an object"}]}),
                )
            }
        },
    };
    let coerced = match apollo_compiler::request::coerce_variable_values(schema, op, &raw) {
        Ok(c) => c,
        Err(e) => {
            return answer(
                200,
                json!({"errors": [{"message": e.message().to_string()}]}),
            )
        }
    };
    let vars: Value = serde_json::to_value(coerced.into_inner()).unwrap_or(Value::Null);

    // Authentication, as Railway answers it: HTTP 200, data null.
    let access = match (header, token.and_then(|t| s.tokens.get(t))) {
        (Header::None, _) | (_, None) => return answer(200, errors(&["Not Authorized".into()])),
        (_, Some(Access::Expired)) => return answer(200, errors(&["Not Authorized".into()])),
        (Header::ProjectAccessToken, Some(Access::DeadProject)) => {
            return answer(200, errors(&["project token not found".into()]))
        }
        (Header::Bearer, Some(a @ (Access::Account(_) | Access::Workspace)))
        | (Header::ProjectAccessToken, Some(a @ Access::Project { .. })) => a.clone(),
        // A token sent in the other kind's header.
        _ => return answer(200, errors(&["Not Authorized".into()])),
    };

    let mutation = query.trim_start().starts_with("mutation");
    let mut data = Map::new();
    let mut errs = Vec::new();
    for sel in &op.selection_set.selections {
        let Selection::Field(f) = sel else {
            errs.push("the test server runs root fields only".to_string());
            break;
        };
        let args: Map<String, Value> = f
            .arguments
            .iter()
            .map(|a| (a.name.to_string(), literal(&a.value, &vars)))
            .collect();
        let result = if s.refused_fields.iter().any(|r| r == f.name.as_str()) {
            Err("Not Authorized".to_string())
        } else {
            field(s, &access, f.name.as_str(), &args)
        };
        match result {
            Ok(v) => {
                data.insert(
                    f.response_key().to_string(),
                    select(&v, &f.selection_set, &doc),
                );
            }
            Err(m) => {
                errs.push(m);
                // Mutation fields run in order; a failed one stops the rest.
                if mutation {
                    break;
                }
            }
        }
    }
    if errs.is_empty() {
        answer(200, json!({ "data": data }))
    } else {
        // Every root field secretsync uses is non-null: one error nulls all.
        answer(200, errors(&errs))
    }
}

/// A GraphQL value with variables replaced, as JSON.
fn literal(v: &ast::Value, vars: &Value) -> Value {
    match v {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(n) => json!(n.as_str()),
        ast::Value::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Value::Null),
        ast::Value::String(s) => json!(s),
        ast::Value::Float(f) => serde_json::from_str(f.as_str()).unwrap_or(Value::Null),
        ast::Value::Int(i) => serde_json::from_str(i.as_str()).unwrap_or(Value::Null),
        ast::Value::Boolean(b) => json!(b),
        ast::Value::List(l) => Value::Array(l.iter().map(|x| literal(x, vars)).collect()),
        ast::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.to_string(), literal(x, vars)))
                .collect(),
        ),
    }
}

/// `v` cut down to what `set` selects, under response keys.
fn select(v: &Value, set: &SelectionSet, doc: &ExecutableDocument) -> Value {
    if set.selections.is_empty() {
        return v.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| select(i, set, doc)).collect()),
        Value::Object(obj) => {
            let mut out = Map::new();
            select_into(obj, set, doc, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn select_into(
    obj: &Map<String, Value>,
    set: &SelectionSet,
    doc: &ExecutableDocument,
    out: &mut Map<String, Value>,
) {
    for sel in &set.selections {
        match sel {
            Selection::Field(f) => {
                let value = if f.name == "__typename" {
                    json!(set.ty.as_str())
                } else {
                    obj.get(f.name.as_str()).cloned().unwrap_or(Value::Null)
                };
                out.insert(
                    f.response_key().to_string(),
                    select(&value, &f.selection_set, doc),
                );
            }
            Selection::InlineFragment(i) => select_into(obj, &i.selection_set, doc, out),
            Selection::FragmentSpread(sp) => {
                if let Some(frag) = doc.fragments.get(&sp.fragment_name) {
                    select_into(obj, &frag.selection_set, doc, out);
                }
            }
        }
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// Whether `access` reaches `project` (and `environment`, when given).
fn allowed(access: &Access, project: &str, environment: Option<&str>) -> bool {
    match access {
        Access::Account(None) | Access::Workspace => true,
        Access::Account(Some(list)) => list.iter().any(|p| p == project),
        Access::Project {
            project: p,
            environment: e,
        } => p == project && environment.is_none_or(|env| env == e),
        Access::Expired | Access::DeadProject => false,
    }
}

/// Checks access and that the scope exists; returns its key.
fn scope_of(s: &State, access: &Access, input: &Map<String, Value>) -> Result<ScopeKey, String> {
    let project = str_arg(input, "projectId").unwrap_or_default();
    let env = str_arg(input, "environmentId").unwrap_or_default();
    let service = str_arg(input, "serviceId");
    let Some(p) = s.projects.get(project) else {
        return Err("Project not found".into());
    };
    if !allowed(access, project, Some(env)) {
        return Err("Not Authorized".into());
    }
    if !p.environments.iter().any(|(id, _)| id == env) || p.deleted.iter().any(|d| d == env) {
        return Err("Environment not found".into());
    }
    if p.restricted.iter().any(|r| r == env) {
        return Err("Not Authorized".into());
    }
    if let Some(svc) = service {
        if !p.services.iter().any(|(id, _)| id == svc) {
            return Err("Service not found".into());
        }
    }
    Ok(scope(project, env, service))
}

fn edges(list: &[(String, String)]) -> Value {
    json!({ "edges": list.iter().map(|(id, name)| json!({"node": {"id": id, "name": name}})).collect::<Vec<_>>() })
}

/// The `Environment` object, as much of it as the server knows.
fn environment(s: &State, project: &str, env: &str) -> Value {
    let p = &s.projects[project];
    let name = p
        .environments
        .iter()
        .find(|(id, _)| id == env)
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let restricted = p.restricted.iter().any(|r| r == env);
    let mut variables = Vec::new();
    if !restricted {
        for ((pid, eid, service), vars) in &s.vars {
            if pid != project || eid != env {
                continue;
            }
            for (k, v) in vars {
                let refs: Vec<String> = v.as_deref().map(references_in).unwrap_or_default();
                let at = s
                    .updated
                    .get(&((pid.clone(), eid.clone(), service.clone()), k.clone()))
                    .copied()
                    .unwrap_or(CLOCK_START);
                variables.push(json!({"cursor": k, "node": {
                    "id": format!("var-{k}"), "name": k, "isSealed": v.is_none(),
                    "serviceId": service, "environmentId": env, "references": refs,
                    "createdAt": datetime(at), "updatedAt": datetime(at),
                }}));
            }
        }
    }
    let mut instances = Vec::new();
    if !restricted {
        for (sid, sname) in &p.services {
            let Some(list) =
                s.deployments
                    .get(&(project.to_string(), env.to_string(), sid.clone()))
            else {
                continue;
            };
            let latest = list.last().map(|(id, at, status)| {
                json!({
                    "id": id, "createdAt": datetime(*at), "updatedAt": datetime(*at),
                    "status": status, "serviceId": sid, "environmentId": env, "projectId": project,
                    "canRedeploy": true, "canRollback": true, "deploymentStopped": false,
                })
            });
            instances.push(json!({"node": {
                "id": format!("si-{sid}-{env}"), "serviceId": sid, "serviceName": sname,
                "environmentId": env, "latestDeployment": latest,
            }}));
        }
    }
    json!({
        "id": env,
        "name": name,
        "projectId": project,
        "canAccess": !restricted,
        "deletedAt": if p.deleted.iter().any(|d| d == env) { json!("2026-08-01T00:00:00.000Z") } else { Value::Null },
        "unmergedChangesCount": p.staged.get(env).copied().unwrap_or(0),
        "variables": {
            "edges": variables,
            "pageInfo": {"hasNextPage": false, "hasPreviousPage": false, "startCursor": null, "endCursor": null},
        },
        "serviceInstances": {
            "edges": instances,
            "pageInfo": {"hasNextPage": false, "hasPreviousPage": false, "startCursor": null, "endCursor": null},
        },
    })
}

/// The `${{…}}` references in a value, as `Variable.references` lists them.
fn references_in(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(i) = rest.find("${{") {
        let after = &rest[i + 3..];
        let Some(j) = after.find("}}") else { break };
        out.push(after[..j].trim().to_string());
        rest = &after[j + 2..];
    }
    out
}

/// Runs one root field.
fn field(
    s: &mut State,
    access: &Access,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Value, String> {
    match name {
        "me" => match access {
            Access::Account(_) => {
                Ok(json!({"id": "user-1", "email": "dev@example.com", "name": "Dev"}))
            }
            _ => Err("Not Authorized".into()),
        },
        "projectToken" => match access {
            Access::Project {
                project,
                environment,
            } => Ok(json!({
                "id": "pt-1", "name": "ci", "projectId": project, "environmentId": environment
            })),
            _ => Err("Not Authorized".into()),
        },
        "project" => {
            let id = str_arg(args, "id").unwrap_or_default();
            let Some(p) = s.projects.get(id) else {
                return Err("Project not found".into());
            };
            if !allowed(access, id, None) {
                return Err("Not Authorized".into());
            }
            let envs: Vec<Value> = p
                .environments
                .iter()
                .map(|(e, _)| json!({ "node": environment(s, id, e) }))
                .collect();
            Ok(json!({
                "id": id,
                "name": p.name,
                "services": edges(&p.services),
                "environments": { "edges": envs },
            }))
        }
        "environment" => {
            let id = str_arg(args, "id").unwrap_or_default();
            let project = s
                .projects
                .iter()
                .find(|(_, p)| p.environments.iter().any(|(e, _)| e == id))
                .map(|(pid, _)| pid.clone());
            let Some(project) = project else {
                return Err("Environment not found".into());
            };
            if s.projects[&project].deleted.iter().any(|d| d == id) {
                return Err("Environment not found".into());
            }
            if !allowed(access, &project, Some(id)) {
                return Err("Not Authorized".into());
            }
            Ok(environment(s, &project, id))
        }
        "variables" => {
            let key = scope_of(s, access, args)?;
            let vars = s.vars.get(&key).cloned().unwrap_or_default();
            let shape = s.sealed_shape;
            Ok(Value::Object(
                vars.into_iter()
                    .filter(|(_, v)| v.is_some() || shape == SealedShape::Null)
                    .map(|(k, v)| (k, v.map_or(Value::Null, Value::String)))
                    .collect(),
            ))
        }
        "variableCollectionUpsert" | "variableUpsert" | "variableDelete" => {
            let input = args
                .get("input")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let key = scope_of(s, access, &input)?;
            // variableDelete has no skipDeploys: it always deploys.
            let skip = input.get("skipDeploys").and_then(Value::as_bool) == Some(true);
            if !skip {
                if let Some(budget) = s.deploy_budget {
                    if s.deploys.values().sum::<usize>() >= budget {
                        return Err(
                            "Deployment rate limit exceeded. Please try again later.".into()
                        );
                    }
                }
            }
            let target = s.vars.entry(key.clone()).or_default();
            match name {
                "variableCollectionUpsert" => {
                    let Some(set) = input.get("variables").and_then(Value::as_object) else {
                        return Err("variables must be an object of strings".into());
                    };
                    let mut new = Vec::new();
                    for (k, v) in set {
                        match v.as_str() {
                            Some(v) => new.push((k.clone(), v.to_string())),
                            None => return Err(format!("variable {k}: value must be a string")),
                        }
                    }
                    if input.get("replace").and_then(Value::as_bool) == Some(true) {
                        target.clear();
                        s.replaces += 1;
                    }
                    let at = s.tick();
                    for (k, _) in &new {
                        s.updated.insert((key.clone(), k.clone()), at);
                    }
                    let target = s.vars.entry(key.clone()).or_default();
                    for (k, v) in new {
                        target.insert(k, Some(v));
                    }
                }
                "variableUpsert" => {
                    let k = str_arg(&input, "name").unwrap_or_default().to_string();
                    let v = str_arg(&input, "value").unwrap_or_default().to_string();
                    target.insert(k.clone(), Some(v));
                    let at = s.tick();
                    s.updated.insert((key.clone(), k), at);
                }
                _ => {
                    let k = str_arg(&input, "name").unwrap_or_default();
                    if let Some(m) = s.refused_deletes.get(k) {
                        return Err(m.clone());
                    }
                    let target = s.vars.entry(key.clone()).or_default();
                    if target.remove(k).is_none() {
                        return Err(format!("Variable {k} not found"));
                    }
                }
            }
            if !skip {
                let changed: Vec<String> = match name {
                    "variableCollectionUpsert" => input
                        .get("variables")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default(),
                    _ => vec![str_arg(&input, "name").unwrap_or_default().to_string()],
                };
                for svc in s.deployed_by(&key, &changed) {
                    s.deploy(&key.0, &key.1, &svc);
                }
                *s.deploys.entry(key).or_default() += 1;
            }
            Ok(json!(true))
        }
        "serviceInstanceRedeploy" => {
            let env = str_arg(args, "environmentId")
                .unwrap_or_default()
                .to_string();
            let svc = str_arg(args, "serviceId").unwrap_or_default().to_string();
            let project = s
                .projects
                .iter()
                .find(|(_, p)| p.environments.iter().any(|(e, _)| *e == env))
                .map(|(pid, _)| pid.clone())
                .ok_or("Environment not found")?;
            if !allowed(access, &project, Some(&env)) {
                return Err("Not Authorized".into());
            }
            let k = (project.clone(), env.clone(), svc.clone());
            if !s.deployments.contains_key(&k) {
                return Err("No deployment found for service instance".into());
            }
            s.deploy(&project, &env, &svc);
            *s.redeploys.entry(k).or_default() += 1;
            Ok(json!(true))
        }
        other => Err(format!("the test server does not implement `{other}`")),
    }
}
