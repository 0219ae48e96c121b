//! The `railway` target: the variables of one Railway service, or the shared
//! variables of an environment, through Railway's public GraphQL API.
//!
//! ```yaml
//! targets:
//!   api:
//!     type: railway
//!     project: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0   # project id
//!     environment: production    # name (exact) or id
//!     service: api               # name (any case) or id; omit for shared variables
//!     token_env: RAILWAY_TOKEN   # optional: default RAILWAY_API_TOKEN, else RAILWAY_TOKEN;
//!                                # only RAILWAY_* variables may be named
//!     token_kind: project        # needed only when token_env is another variable
//!     skip_deploys: false        # true: set variables without redeploying
//!     overwrite_sealed: false    # true: replace sealed variables
//!     prune: false               # delete variables the manifest does not list
//! ```
//!
//! Requests, per run: one `project` query per project (names to ids, shared
//! by every target of that project through [`Shared`]); per round, one
//! aliased `variables` query per project covering every railway target of the
//! run in that project; per written target, one `variables` query (Railway has
//! no compare-and-swap, so the write re-reads and refuses with
//! [`ErrorKind::Conflict`](super::ErrorKind) when anything moved since the
//! plan) and one mutation carrying the `variableCollectionUpsert` and the
//! `variableDelete`s as aliased fields, which GraphQL runs in order.
//!
//! The token lives in a [`Secret`] and is only ever put in a request header;
//! every message built from an answer passes through [`redact`] first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{
    Change, Check, Context, Observation, Observed, Op, Round, RoundCache, Target, TargetError,
};
use crate::manifest::{RailwaySpec, TokenKind};
use crate::notice::notice;
use crate::secret::Secret;

/// Railway's public GraphQL endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://backboard.railway.com/graphql/v2";
/// Overrides the endpoint of every railway target (tests, proxies).
pub const ENDPOINT_ENV: &str = "SECRETSYNC_RAILWAY_ENDPOINT";
/// Seconds one request may take (decimals allowed).
pub const TIMEOUT_ENV: &str = "SECRETSYNC_RAILWAY_TIMEOUT";
/// How many times a failed request is retried.
pub const RETRIES_ENV: &str = "SECRETSYNC_RAILWAY_RETRIES";
/// Seconds before the first retry after a 5xx, timeout or garbled answer;
/// doubled for each further retry.
pub const BACKOFF_ENV: &str = "SECRETSYNC_RAILWAY_BACKOFF";
/// The longest `Retry-After` (seconds) waited for on a 429.
pub const MAX_WAIT_ENV: &str = "SECRETSYNC_RAILWAY_MAX_WAIT";

/// Account or workspace token, sent as `Authorization: Bearer`.
pub const ACCOUNT_TOKEN_ENV: &str = "RAILWAY_API_TOKEN";
/// Project token, sent as `Project-Access-Token`.
pub const PROJECT_TOKEN_ENV: &str = "RAILWAY_TOKEN";

/// Bounds on waiting and retrying, so a run never hangs on Railway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// One request's time limit.
    pub timeout: Duration,
    /// The wait before the first retry (doubled each time).
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one is an error.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            timeout: Duration::from_secs(30),
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The defaults, overridden by the `SECRETSYNC_RAILWAY_*` variables.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, TargetError> {
        let mut p = RetryPolicy::default();
        let secs = |var: &str| -> Result<Option<Duration>, TargetError> {
            match env(var).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .map(|s| Some(Duration::from_secs_f64(s)))
                    .ok_or_else(|| {
                        TargetError::invalid(format!("{var}={v} is not a number of seconds"))
                            .with_hint(format!("set {var} to seconds, such as 30 or 0.5"))
                    }),
            }
        };
        if let Some(t) = secs(TIMEOUT_ENV)? {
            p.timeout = t.max(Duration::from_millis(1));
        }
        if let Some(b) = secs(BACKOFF_ENV)? {
            p.backoff = b;
        }
        if let Some(w) = secs(MAX_WAIT_ENV)? {
            p.max_wait = w;
        }
        if let Some(v) = env(RETRIES_ENV).filter(|v| !v.is_empty()) {
            p.retries = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 20)
                .ok_or_else(|| {
                    TargetError::invalid(format!("{RETRIES_ENV}={v} is not a count from 0 to 20"))
                        .with_hint(format!("set {RETRIES_ENV} to a small number such as 3"))
                })?;
        }
        Ok(p)
    }

    /// The wait before retry `n` (1-based) after a transient failure.
    fn backoff_for(&self, n: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
            .min(Duration::from_secs(60))
    }
}

/// A token and where it came from; its value is only ever put in a header.
#[derive(Clone)]
struct Token {
    value: Secret,
    var: String,
    kind: TokenKind,
}

impl Token {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            TokenKind::Account => "account token",
            TokenKind::Project => "project token",
        }
    }
}

/// Finds the token as Railway's CLI does: `RAILWAY_API_TOKEN` (Bearer), else
/// `RAILWAY_TOKEN` (project), unless the target names its variable.
fn find_token(
    spec: &RailwaySpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Token, TargetError> {
    let get = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    let kind_of = |var: &str| match (var, spec.token_kind) {
        (_, Some(k)) => Some(k),
        (ACCOUNT_TOKEN_ENV, None) => Some(TokenKind::Account),
        (PROJECT_TOKEN_ENV, None) => Some(TokenKind::Project),
        _ => None,
    };
    if let Some(var) = spec
        .token_env
        .as_ref()
        .filter(|v| !v.starts_with("RAILWAY_"))
    {
        // The manifest loader refuses it too; a spec built another way must
        // not send the identity (or any other variable) as a token either.
        return Err(TargetError::invalid(format!(
            "`token_env: {var}` does not start with RAILWAY_"
        )));
    }
    let (var, value) = match &spec.token_env {
        Some(var) => match get(var) {
            Some(v) => (var.clone(), v),
            None => {
                return Err(TargetError::auth(format!(
                    "no Railway token: the variable {var} (named by `token_env`) is not set"
                ))
                .with_hint(format!(
                    "export {var} with a Railway token, then run `secretsync doctor`"
                )))
            }
        },
        None => match (get(ACCOUNT_TOKEN_ENV), get(PROJECT_TOKEN_ENV)) {
            (Some(v), _) => (ACCOUNT_TOKEN_ENV.to_string(), v),
            (None, Some(v)) => (PROJECT_TOKEN_ENV.to_string(), v),
            (None, None) => {
                return Err(TargetError::auth(format!(
                    "no Railway token: neither {ACCOUNT_TOKEN_ENV} nor {PROJECT_TOKEN_ENV} is set"
                ))
                .with_hint(format!(
                    "export {ACCOUNT_TOKEN_ENV} (account token) or {PROJECT_TOKEN_ENV} (project token), or name another variable with `token_env`"
                )))
            }
        },
    };
    let kind = kind_of(&var).ok_or_else(|| {
        TargetError::invalid(format!(
            "`token_env: {var}` needs `token_kind: account` or `token_kind: project`"
        ))
    })?;
    Ok(Token {
        value: Secret::new(value.trim().to_string()),
        var,
        kind,
    })
}

/// The endpoint: Railway's, or [`ENDPOINT_ENV`] of the run (never the
/// manifest's choice), which must be https except on a loopback address.
fn endpoint(env: &dyn Fn(&str) -> Option<String>) -> Result<String, TargetError> {
    let Some(url) = env(ENDPOINT_ENV).filter(|e| !e.is_empty()) else {
        return Ok(DEFAULT_ENDPOINT.to_string());
    };
    let refuse = |why: &str| {
        Err(TargetError::invalid(format!(
            "{ENDPOINT_ENV}={} {why}",
            shown_url(&url)
        ))
        .with_hint(format!(
            "unset it to use Railway's API ({DEFAULT_ENDPOINT}); plain http is only for a server on this machine"
        )))
    };
    let Ok(parsed) = reqwest::Url::parse(&url) else {
        return refuse("is not a URL");
    };
    let loopback = parsed.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match parsed.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => refuse("is plain http to another machine: the token would travel in clear"),
        _ => refuse("is not an http(s) URL"),
    }
}

/// `url` without user info, query or fragment, for messages.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<invalid endpoint>".into(),
    }
}

/// Replaces every occurrence of a secret in `text` and shortens it: the
/// server's messages may echo what was sent. Values shorter than 3
/// characters are left alone: hiding every "a" would make messages
/// unreadable, and such a value cannot be told from ordinary text anyway.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 3).collect();
    // Longest first, so a value containing another is hidden whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(s, "<redacted>");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

fn short(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// What a failed request is about, for messages.
#[derive(Clone)]
struct About {
    project: String,
    environment: Option<String>,
}

impl About {
    fn scope(&self) -> String {
        match &self.environment {
            Some(e) => format!("project {} / environment {e}", self.project),
            None => format!("project {}", self.project),
        }
    }
}

/// Endpoint, token and limits of one target: everything needed to send a
/// request.
struct Api {
    endpoint: String,
    shown: String,
    token: Result<Token, TargetError>,
    policy: RetryPolicy,
    client: reqwest::Client,
}

/// A transient failure, retried with backoff.
enum Transient {
    Timeout,
    Connect(String),
    Status(u16),
    Garbled(String),
}

impl Api {
    fn token(&self) -> Result<&Token, TargetError> {
        self.token.as_ref().map_err(Clone::clone)
    }

    fn auth_error(&self, about: &About) -> TargetError {
        let (var, kind) = match &self.token {
            Ok(t) => (t.var.as_str(), t.kind_name()),
            Err(_) => ("the token variable", "token"),
        };
        TargetError::auth(format!(
            "Railway refused the {kind} in {var}: it is expired or revoked, or it lacks access to {}",
            about.scope()
        ))
        .with_hint(format!(
            "create a token with access to this project and environment, export it as {var}, and check it with `secretsync doctor`"
        ))
    }

    /// Sends one GraphQL request and returns its `data`, retrying rate limits
    /// (after `Retry-After`), 5xx answers, timeouts and garbled answers.
    /// `redact` lists values the request carries, hidden in every message.
    async fn send(
        &self,
        about: &About,
        query: &str,
        variables: Value,
        redact_also: &[&str],
    ) -> Result<Map<String, Value>, TargetError> {
        let token = self.token()?;
        let body = json!({ "query": query, "variables": variables });
        let mut hide: Vec<&str> = redact_also.to_vec();
        hide.push(token.value.expose());
        let tries = self.policy.retries + 1;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = self
                .client
                .post(&self.endpoint)
                .timeout(self.policy.timeout)
                .json(&body);
            let request = match token.kind {
                TokenKind::Account => request.bearer_auth(token.value.expose()),
                TokenKind::Project => request.header("Project-Access-Token", token.value.expose()),
            };
            let transient = match request.send().await {
                Err(e) if e.is_timeout() => Transient::Timeout,
                Err(e) => Transient::Connect(redact(&cause(&e), &hide)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 429 {
                        let wait = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let wait = wait.unwrap_or_else(|| self.policy.backoff_for(attempt));
                        if attempt >= tries {
                            return Err(TargetError::unreachable(format!(
                                "Railway kept rate-limiting requests for {} ({tries} attempts)",
                                about.scope()
                            ))
                            .with_hint("wait for the hourly limit to reset (see docs/targets/railway.md, Limits), then run again"));
                        }
                        if wait > self.policy.max_wait {
                            return Err(TargetError::unreachable(format!(
                                "Railway rate-limited requests for {} and asks to wait {}, longer than the {} secretsync waits",
                                about.scope(),
                                short(wait),
                                short(self.policy.max_wait)
                            ))
                            .with_hint(format!("run again later, or raise {MAX_WAIT_ENV}")));
                        }
                        notice(&format!(
                            "railway: rate limited on project {}, waiting {} (retry {attempt}/{})",
                            about.project,
                            short(wait),
                            self.policy.retries
                        ));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(self.auth_error(about));
                    }
                    if (300..400).contains(&status) {
                        return Err(TargetError::failed(format!(
                            "Railway at {} answered with a redirect (HTTP {status}), which secretsync does not follow: it would send the token elsewhere",
                            self.shown
                        ))
                        .with_hint(format!("check {ENDPOINT_ENV} and any proxy in between")));
                    }
                    if status >= 500 {
                        Transient::Status(status)
                    } else {
                        match resp.bytes().await {
                            Err(e) if e.is_timeout() => Transient::Timeout,
                            Err(e) => Transient::Connect(redact(&cause(&e), &hide)),
                            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                                Err(e) => Transient::Garbled(e.to_string()),
                                Ok(v) => return self.answer(about, status, v, &hide),
                            },
                        }
                    }
                }
            };
            let what = match &transient {
                Transient::Timeout => format!("no answer within {}", short(self.policy.timeout)),
                Transient::Connect(c) => format!("cannot connect ({c})"),
                Transient::Status(s) => format!("HTTP {s}"),
                Transient::Garbled(_) => "an answer that is not JSON".into(),
            };
            if attempt >= tries {
                let err = match transient {
                    Transient::Timeout => TargetError::unreachable(format!(
                        "Railway at {} did not answer within {} ({tries} attempts)",
                        self.shown,
                        short(self.policy.timeout)
                    ))
                    .with_hint(format!(
                        "check the network and https://status.railway.com; {TIMEOUT_ENV} sets the limit in seconds"
                    )),
                    Transient::Connect(c) => TargetError::unreachable(format!(
                        "cannot reach Railway at {}: {c} ({tries} attempts)",
                        self.shown
                    ))
                    .with_hint(format!("check the network, a proxy, and {ENDPOINT_ENV} if set")),
                    Transient::Status(s) => TargetError::unreachable(format!(
                        "Railway at {} answered HTTP {s} ({tries} attempts)",
                        self.shown
                    ))
                    .with_hint("Railway may be having trouble: see https://status.railway.com and run again later"),
                    Transient::Garbled(e) => TargetError::failed(format!(
                        "Railway at {} answered with something that is not JSON ({e}; {tries} attempts)",
                        self.shown
                    ))
                    .with_hint(format!("check {ENDPOINT_ENV} if set, and any proxy in between")),
                };
                return Err(err);
            }
            let wait = self.policy.backoff_for(attempt);
            notice(&format!(
                "railway: {what} for project {}, retrying in {} (retry {attempt}/{})",
                about.project,
                short(wait),
                self.policy.retries
            ));
            tokio::time::sleep(wait).await;
        }
    }

    /// Interprets a JSON answer: its `data`, or the error its `errors` mean.
    fn answer(
        &self,
        about: &About,
        status: u16,
        v: Value,
        hide: &[&str],
    ) -> Result<Map<String, Value>, TargetError> {
        let messages: Vec<String> = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("(no message)")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !messages.is_empty() {
            let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
            if lower.iter().any(|m| {
                m.contains("not authorized")
                    || m.contains("unauthorized")
                    || m.contains("project token not found")
            }) {
                return Err(self.auth_error(about));
            }
            if lower.iter().any(|m| m.contains("project not found")) {
                let var = self.token.as_ref().map_or("", |t| t.var.as_str());
                return Err(TargetError::invalid(format!(
                    "Railway has no project {} that the token in {var} can see (Project not found)",
                    about.project
                ))
                .with_hint("`project` takes the project's id (project settings, or `railway status --json`); check the token belongs to the project's workspace"));
            }
            let text: Vec<String> = messages.iter().map(|m| redact(m, hide)).collect();
            return Err(TargetError::failed(format!(
                "Railway refused a request for {}: {}",
                about.scope(),
                text.join("; ")
            ))
            .with_hint("run `secretsync doctor`; if it persists, report it with this message"));
        }
        if !(200..300).contains(&status) {
            return Err(TargetError::failed(format!(
                "Railway answered HTTP {status} for {}",
                about.scope()
            ))
            .with_hint(format!("check {ENDPOINT_ENV} if set")));
        }
        match v.get("data") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(TargetError::failed(format!(
                "Railway's answer for {} has no data",
                about.scope()
            ))),
        }
    }
}

/// A reqwest error's cause, without the URL (which may carry credentials).
fn cause(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        if e.is_connect() {
            "connection failed".into()
        } else {
            "request failed".into()
        }
    } else {
        parts.join(": ")
    }
}

/// A project's ids and names, from one `project` query.
#[derive(Debug)]
struct ProjectInfo {
    name: String,
    environments: Vec<(String, String)>,
    services: Vec<(String, String)>,
}

const PROJECT_QUERY: &str = "query project($id: String!) {
  project(id: $id) {
    id
    name
    services { edges { node { id name } } }
    environments { edges { node { id name } } }
  }
}";

fn parse_project(data: &Map<String, Value>) -> Option<ProjectInfo> {
    let p = data.get("project")?;
    let list = |field: &str| -> Option<Vec<(String, String)>> {
        p.get(field)?
            .get("edges")?
            .as_array()?
            .iter()
            .map(|e| {
                let n = e.get("node")?;
                Some((
                    n.get("id")?.as_str()?.to_string(),
                    n.get("name")?.as_str()?.to_string(),
                ))
            })
            .collect()
    };
    Some(ProjectInfo {
        name: p.get("name")?.as_str()?.to_string(),
        environments: list("environments")?,
        services: list("services")?,
    })
}

/// What a target addresses, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScopeSpec {
    environment: String,
    service: Option<String>,
}

/// A scope resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Ids {
    environment: String,
    service: Option<String>,
}

fn resolve(project: &ProjectInfo, id: &str, scope: &ScopeSpec) -> Result<Ids, TargetError> {
    let names = |list: &[(String, String)]| {
        if list.is_empty() {
            "none".to_string()
        } else {
            list.iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let env = project
        .environments
        .iter()
        .find(|(i, n)| *i == scope.environment || *n == scope.environment)
        .ok_or_else(|| {
            TargetError::invalid(format!(
                "project {} ({id}) has no environment `{}`; its environments: {}",
                project.name,
                scope.environment,
                names(&project.environments)
            ))
            .with_hint("`environment` takes a name (exact case) or an id")
        })?;
    let service = match &scope.service {
        None => None,
        Some(s) => {
            let exact = project.services.iter().find(|(i, n)| i == s || n == s);
            let folded: Vec<_> = project
                .services
                .iter()
                .filter(|(_, n)| n.to_lowercase() == s.to_lowercase())
                .collect();
            let found = match (exact, folded.as_slice()) {
                (Some(f), _) => f,
                (None, [one]) => *one,
                (None, []) => {
                    return Err(TargetError::invalid(format!(
                        "project {} ({id}) has no service `{s}`; its services: {}",
                        project.name,
                        names(&project.services)
                    ))
                    .with_hint("`service` takes a name (any case) or an id; omit it for the environment's shared variables"))
                }
                (None, many) => {
                    return Err(TargetError::invalid(format!(
                        "project {} ({id}) has several services named `{s}` in other cases: {}",
                        project.name,
                        many.iter()
                            .map(|(_, n)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .with_hint("write the service's name in its exact case, or its id"))
                }
            };
            Some(found.0.clone())
        }
    };
    Ok(Ids {
        environment: env.0.clone(),
        service,
    })
}

/// Variables as read: name to value, `None` for a sealed one.
type Vars = BTreeMap<String, Option<Secret>>;

fn parse_vars(v: Option<&Value>, about: &About) -> Result<Vars, TargetError> {
    let garbled = || {
        TargetError::failed(format!(
            "Railway's answer for {} does not hold a variable list",
            about.scope()
        ))
    };
    let obj = v.and_then(Value::as_object).ok_or_else(garbled)?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k.clone(), None)),
            Value::String(s) => Ok((k.clone(), Some(Secret::new(s.clone())))),
            _ => Err(garbled()),
        })
        .collect()
}

fn observed_from(vars: Vars) -> Observed {
    Observed {
        entries: vars
            .into_iter()
            .map(|(k, v)| (k, v.map_or(Observation::Sealed, Observation::Value)))
            .collect(),
        exists: true,
        complete: true,
        snapshot: None,
        notes: Vec::new(),
        duplicated: Default::default(),
    }
}

/// The `variables` field for one scope, with its variables named after `n`.
fn variables_field(alias: Option<&str>, n: &str, ids: &Ids) -> (String, String) {
    let decl = match ids.service {
        Some(_) => format!("$e{n}: String!, $s{n}: String"),
        None => format!("$e{n}: String!"),
    };
    let service = match ids.service {
        Some(_) => format!(", serviceId: $s{n}"),
        None => String::new(),
    };
    let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
    (
        decl,
        format!(
            "  {alias}variables(projectId: $projectId, environmentId: $e{n}{service}, unrendered: true)\n"
        ),
    )
}

/// One `variables` query for many scopes of a project, as `v0`, `v1`…
fn batch_query(project: &str, scopes: &[Ids]) -> (String, Value) {
    let mut decls = vec!["$projectId: String!".to_string()];
    let mut fields = String::new();
    let mut vars = Map::new();
    vars.insert("projectId".into(), json!(project));
    for (i, ids) in scopes.iter().enumerate() {
        let n = i.to_string();
        let (decl, field) = variables_field(Some(&format!("v{n}")), &n, ids);
        decls.push(decl);
        fields.push_str(&field);
        vars.insert(format!("e{n}"), json!(ids.environment));
        if let Some(s) = &ids.service {
            vars.insert(format!("s{n}"), json!(s));
        }
    }
    (
        format!("query variables({}) {{\n{fields}}}", decls.join(", ")),
        Value::Object(vars),
    )
}

/// One round's read of a project: each registered scope's variables, or
/// why that scope could not be read.
type Batch = HashMap<ScopeSpec, Result<Vars, TargetError>>;

/// The targets of one project reached with one token at one endpoint: they
/// share name resolution and one batched read per round.
#[derive(Default)]
struct Group {
    project: OnceCell<Result<Arc<ProjectInfo>, TargetError>>,
    scopes: Mutex<Vec<ScopeSpec>>,
    reads: RoundCache<Result<Arc<Batch>, TargetError>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    endpoint: String,
    /// A digest, so the map never holds the token itself.
    token: [u8; 32],
    project: String,
}

/// Per-run Railway state shared by all railway targets: one HTTP client,
/// name resolution per project and batched reads per round.
#[derive(Default)]
pub struct Shared {
    client: OnceLock<reqwest::Client>,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
}

impl Shared {
    fn client(&self) -> Result<reqwest::Client, TargetError> {
        if let Some(c) = self.client.get() {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .user_agent(concat!("secretsync/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the token header and the body, values
            // included, to an address nobody chose.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                TargetError::failed(format!("cannot set up the HTTP client: {}", cause(&e)))
            })?;
        Ok(self.client.get_or_init(|| c).clone())
    }

    /// The group of `key`, with `scope` registered for its batched reads.
    fn register(&self, key: GroupKey, scope: &ScopeSpec) -> Arc<Group> {
        let group = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let mut scopes = group.scopes.lock().unwrap_or_else(|e| e.into_inner());
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
        drop(scopes);
        group
    }
}

pub struct RailwayTarget {
    name: String,
    project: String,
    scope: ScopeSpec,
    skip_deploys: bool,
    api: Api,
    /// `None` when there is no token (every operation then says so).
    group: Option<Arc<Group>>,
}

impl RailwayTarget {
    pub fn new(name: &str, spec: &RailwaySpec, ctx: &Context) -> Result<Self, TargetError> {
        Self::with_env(name, spec, ctx, &crate::environ::var)
    }

    /// [`RailwayTarget::new`] with the environment variables read through
    /// `env` (tests run many targets in one process).
    pub fn with_env(
        name: &str,
        spec: &RailwaySpec,
        ctx: &Context,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TargetError> {
        let endpoint = endpoint(env)?;
        let policy = RetryPolicy::from_env(env)?;
        let token = find_token(spec, env);
        if let Err(e) = &token {
            if e.kind == super::ErrorKind::Invalid {
                return Err(e.clone());
            }
        }
        let scope = ScopeSpec {
            environment: spec.environment.clone(),
            service: spec.service.clone(),
        };
        let group = token.as_ref().ok().map(|t| {
            let key = GroupKey {
                endpoint: endpoint.clone(),
                token: Sha256::digest(t.value.expose().as_bytes()).into(),
                project: spec.project.clone(),
            };
            ctx.railway.register(key, &scope)
        });
        Ok(RailwayTarget {
            name: name.to_string(),
            project: spec.project.clone(),
            scope,
            skip_deploys: spec.skip_deploys,
            api: Api {
                shown: shown_url(&endpoint),
                endpoint,
                token,
                policy,
                client: ctx.railway.client()?,
            },
            group,
        })
    }

    fn about(&self) -> About {
        About {
            project: self.project.clone(),
            environment: Some(self.scope.environment.clone()),
        }
    }

    fn group(&self) -> Result<&Arc<Group>, TargetError> {
        self.api.token()?;
        self.group
            .as_ref()
            .ok_or_else(|| TargetError::failed("internal: railway target without a group"))
    }

    /// The project's names and ids: one query per project per run.
    async fn project_info(&self) -> Result<Arc<ProjectInfo>, TargetError> {
        let group = self.group()?;
        group
            .project
            .get_or_init(|| async {
                let about = About {
                    project: self.project.clone(),
                    environment: None,
                };
                let data = self
                    .api
                    .send(&about, PROJECT_QUERY, json!({ "id": self.project }), &[])
                    .await?;
                parse_project(&data).map(Arc::new).ok_or_else(|| {
                    TargetError::failed(format!(
                        "Railway's answer about project {} lacks its environments or services",
                        self.project
                    ))
                })
            })
            .await
            .clone()
    }

    async fn ids(&self) -> Result<Ids, TargetError> {
        let info = self.project_info().await?;
        resolve(&info, &self.project, &self.scope)
    }

    /// Reads every registered scope of this target's project in one request.
    async fn read_group(&self) -> Result<Arc<Batch>, TargetError> {
        let group = self.group()?;
        let info = self.project_info().await?;
        let scopes = group
            .scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = HashMap::new();
        let mut unique: Vec<Ids> = Vec::new();
        let mut wanted = Vec::new();
        for s in scopes {
            match resolve(&info, &self.project, &s) {
                Err(e) => {
                    out.insert(s, Err(e));
                }
                Ok(ids) => {
                    let i = unique.iter().position(|u| *u == ids).unwrap_or_else(|| {
                        unique.push(ids.clone());
                        unique.len() - 1
                    });
                    wanted.push((s, i));
                }
            }
        }
        if !unique.is_empty() {
            let (query, vars) = batch_query(&self.project, &unique);
            let about = About {
                project: self.project.clone(),
                environment: None,
            };
            let about = if unique
                .iter()
                .all(|u| u.environment == unique[0].environment)
            {
                self.about()
            } else {
                about
            };
            let data = self.api.send(&about, &query, vars, &[]).await?;
            for (s, i) in wanted {
                let vars = parse_vars(data.get(&format!("v{i}")), &about);
                out.insert(s, vars);
            }
        }
        Ok(Arc::new(out))
    }

    /// This target's variables now, in a request of its own.
    async fn read_one(&self, ids: &Ids) -> Result<Vars, TargetError> {
        let (decl, field) = variables_field(None, "", ids);
        let query = format!("query variables($projectId: String!, {decl}) {{\n{field}}}");
        let mut vars = json!({ "projectId": self.project, "e": ids.environment });
        if let Some(s) = &ids.service {
            vars["s"] = json!(s);
        }
        let data = self.api.send(&self.about(), &query, vars, &[]).await?;
        parse_vars(data.get("variables"), &self.about())
    }

    fn target_label(&self) -> String {
        match &self.scope.service {
            Some(s) => format!("service {s}"),
            None => "shared variables".into(),
        }
    }
}

/// The mutation for `changes`: one `variableCollectionUpsert` with every
/// addition and update (`replace` never set: it would delete every variable
/// not listed), then one aliased `variableDelete` per deletion.
fn write_mutation(
    project: &str,
    ids: &Ids,
    changes: &[Change],
    skip_deploys: bool,
) -> (String, Value) {
    let mut decls = Vec::new();
    let mut fields = String::new();
    let mut vars = Map::new();
    let mut scope = Map::new();
    scope.insert("projectId".into(), json!(project));
    scope.insert("environmentId".into(), json!(ids.environment));
    if let Some(s) = &ids.service {
        scope.insert("serviceId".into(), json!(s));
    }
    let set: Map<String, Value> = changes
        .iter()
        .filter_map(|c| c.op.value().map(|v| (c.key.clone(), json!(v.expose()))))
        .collect();
    if !set.is_empty() {
        let mut input = scope.clone();
        input.insert("variables".into(), Value::Object(set));
        input.insert("skipDeploys".into(), json!(skip_deploys));
        decls.push("$upsert: VariableCollectionUpsertInput!".to_string());
        fields.push_str("  upsert: variableCollectionUpsert(input: $upsert)\n");
        vars.insert("upsert".into(), Value::Object(input));
    }
    for (i, c) in changes
        .iter()
        .filter(|c| matches!(c.op, Op::Delete))
        .enumerate()
    {
        let mut input = scope.clone();
        input.insert("name".into(), json!(c.key));
        decls.push(format!("$d{i}: VariableDeleteInput!"));
        fields.push_str(&format!("  d{i}: variableDelete(input: $d{i})\n"));
        vars.insert(format!("d{i}"), Value::Object(input));
    }
    (
        format!("mutation variables({}) {{\n{fields}}}", decls.join(", ")),
        Value::Object(vars),
    )
}

#[async_trait]
impl Target for RailwayTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!(
            "railway {} in {} (project {})",
            self.target_label(),
            self.scope.environment,
            self.project
        )
    }

    async fn read(&self, round: Round, _keys: &[String]) -> Result<Observed, TargetError> {
        let group = self.group()?;
        let batch = group.reads.get_or_init(round, self.read_group()).await?;
        let vars = match batch.get(&self.scope) {
            Some(v) => v.clone()?,
            // Registered after this round's batch was read: read alone.
            None => self.read_one(&self.ids().await?).await?,
        };
        Ok(observed_from(vars))
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let ids = self.ids().await?;
        let now = observed_from(self.read_one(&ids).await?);
        if now.entries != observed.entries {
            return Err(TargetError::conflict(format!(
                "the variables of {} changed since they were read; nothing was written",
                self.describe()
            ))
            .with_hint("run plan again (Railway has no compare-and-swap: secretsync re-reads just before writing)"));
        }
        let (query, vars) = write_mutation(&self.project, &ids, changes, self.skip_deploys);
        let values: Vec<&str> = changes
            .iter()
            .filter_map(|c| c.op.value().map(Secret::expose))
            .collect();
        let data = self.api.send(&self.about(), &query, vars, &values).await?;
        let refused: Vec<&String> = data
            .iter()
            .filter(|(_, v)| **v != Value::Bool(true))
            .map(|(k, _)| k)
            .collect();
        if !refused.is_empty() {
            return Err(TargetError::failed(format!(
                "Railway did not confirm every change to {} ({}); some may have been made",
                self.describe(),
                refused
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_hint("run plan to see the variables as they are now"));
        }
        Ok(())
    }

    async fn check(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let token = match self.api.token() {
            Err(e) => {
                checks.push(Check {
                    what: "token variable".into(),
                    outcome: Err(e),
                });
                return checks;
            }
            Ok(t) => t,
        };
        checks.push(Check {
            what: "token variable".into(),
            outcome: Ok(format!(
                "{} is set ({}, sent as {})",
                token.var,
                token.kind_name(),
                match token.kind {
                    TokenKind::Account => "Authorization: Bearer",
                    TokenKind::Project => "Project-Access-Token",
                }
            )),
        });

        let about = self.about();
        let accepted = match token.kind {
            TokenKind::Account => self
                .api
                .send(&about, "query me { me { id } }", json!({}), &[])
                .await
                .map(|_| "the account token is accepted".to_string()),
            TokenKind::Project => self
                .api
                .send(
                    &about,
                    "query projectToken { projectToken { projectId environmentId } }",
                    json!({}),
                    &[],
                )
                .await
                .and_then(|d| {
                    let pid = d
                        .get("projectToken")
                        .and_then(|t| t.get("projectId"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if pid != self.project {
                        Err(TargetError::auth(format!(
                            "the project token in {} belongs to project {pid}, not {}",
                            token.var, self.project
                        ))
                        .with_hint(
                            "create a project token in this project's settings, or fix `project`",
                        ))
                    } else {
                        Ok(format!("the project token is accepted for project {pid}"))
                    }
                }),
        };
        let ok = accepted.is_ok();
        checks.push(Check {
            what: "token accepted".into(),
            outcome: accepted,
        });
        if !ok {
            return checks;
        }

        let info = self.project_info().await;
        checks.push(Check {
            what: "project".into(),
            outcome: info
                .as_ref()
                .map(|i| format!("{} ({})", i.name, self.project))
                .map_err(Clone::clone),
        });
        let Ok(info) = info else {
            return checks;
        };
        let ids = resolve(&info, &self.project, &self.scope);
        checks.push(Check {
            what: "environment and service".into(),
            outcome: ids
                .as_ref()
                .map(|ids| match &ids.service {
                    Some(s) => format!(
                        "environment {} ({}), service {} ({s})",
                        self.scope.environment,
                        ids.environment,
                        self.scope.service.as_deref().unwrap_or_default()
                    ),
                    None => format!(
                        "environment {} ({}), shared variables",
                        self.scope.environment, ids.environment
                    ),
                })
                .map_err(Clone::clone),
        });
        let Ok(ids) = ids else {
            return checks;
        };
        checks.push(Check {
            what: "variables readable".into(),
            outcome: self.read_one(&ids).await.map(|vars| {
                let sealed = vars.values().filter(|v| v.is_none()).count();
                format!("{} variables, {sealed} sealed", vars.len())
            }),
        });
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RailwaySpec {
        RailwaySpec {
            project: "p1".into(),
            environment: "production".into(),
            service: Some("api".into()),
            token_env: None,
            token_kind: None,
            skip_deploys: false,
            overwrite_sealed: false,
            prune: false,
        }
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn account_token_wins_over_project_token() {
        let env = env_of(&[(ACCOUNT_TOKEN_ENV, "a"), (PROJECT_TOKEN_ENV, "p")]);
        let t = find_token(&spec(), &env).unwrap();
        assert_eq!(
            (t.var.as_str(), t.kind),
            (ACCOUNT_TOKEN_ENV, TokenKind::Account)
        );
        let env = env_of(&[(PROJECT_TOKEN_ENV, "p")]);
        let t = find_token(&spec(), &env).unwrap();
        assert_eq!(
            (t.var.as_str(), t.kind),
            (PROJECT_TOKEN_ENV, TokenKind::Project)
        );
    }

    #[test]
    fn token_env_needs_a_kind_unless_well_known() {
        let mut s = spec();
        s.token_env = Some("RAILWAY_MY_TOKEN".into());
        let env = env_of(&[("RAILWAY_MY_TOKEN", "x"), ("SECRETSYNC_AGE_KEY", "id")]);
        let e = find_token(&s, &env).err().unwrap();
        assert!(e.message.contains("token_kind"), "{e}");
        s.token_env = Some("SECRETSYNC_AGE_KEY".into());
        s.token_kind = Some(TokenKind::Project);
        let e = find_token(&s, &env).err().unwrap();
        assert!(e.message.contains("does not start with RAILWAY_"), "{e}");
        s.token_env = Some("RAILWAY_MY_TOKEN".into());
        s.token_kind = None;
        s.token_kind = Some(TokenKind::Project);
        assert_eq!(find_token(&s, &env).unwrap().kind, TokenKind::Project);
        s.token_env = Some(PROJECT_TOKEN_ENV.into());
        s.token_kind = None;
        let e = find_token(&s, &env).err().unwrap();
        assert!(
            e.message
                .contains("RAILWAY_TOKEN (named by `token_env`) is not set"),
            "{e}"
        );
    }

    #[test]
    fn missing_token_names_both_variables() {
        let e = find_token(&spec(), &env_of(&[])).err().unwrap();
        assert_eq!(e.kind, super::super::ErrorKind::Auth);
        assert!(e.message.contains("RAILWAY_API_TOKEN") && e.message.contains("RAILWAY_TOKEN"));
    }

    #[test]
    fn redact_hides_values_longest_first_and_truncates() {
        let out = redact(
            "bad value s3cret-long (s3cret)",
            &["s3cret", "s3cret-long", "ab"],
        );
        assert_eq!(out, "bad value <redacted> (<redacted>)");
        assert!(redact(&"x".repeat(500), &[]).chars().count() <= 301);
    }

    #[test]
    fn endpoint_is_https_or_loopback_and_never_from_the_manifest() {
        assert_eq!(endpoint(&env_of(&[])).unwrap(), DEFAULT_ENDPOINT);
        for ok in [
            "https://proxy.example/graphql/v2",
            "http://127.0.0.1:8080/graphql/v2",
            "http://localhost:1/g",
            "http://[::1]:9/g",
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(ENDPOINT_ENV, ok)]));
            assert_eq!(endpoint(&env_of(pairs)).unwrap(), ok);
        }
        for bad in ["http://attacker.example/graphql", "ftp://x/", "not a url"] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(ENDPOINT_ENV, bad)]));
            let e = endpoint(&env_of(pairs)).unwrap_err();
            assert!(e.message.starts_with(ENDPOINT_ENV), "{e}");
        }
    }

    #[test]
    fn shown_url_drops_credentials() {
        let u = shown_url("https://user:pw@example.com/graphql?token=abc#x");
        assert_eq!(u, "https://example.com/graphql");
    }

    #[test]
    fn policy_reads_env_and_rejects_garbage() {
        let p =
            RetryPolicy::from_env(&env_of(&[(TIMEOUT_ENV, "0.5"), (RETRIES_ENV, "1")])).unwrap();
        assert_eq!(p.timeout, Duration::from_millis(500));
        assert_eq!(p.retries, 1);
        assert_eq!(p.backoff_for(3), Duration::from_secs(4));
        let e = RetryPolicy::from_env(&env_of(&[(TIMEOUT_ENV, "soon")])).unwrap_err();
        assert!(e.message.contains("SECRETSYNC_RAILWAY_TIMEOUT=soon"), "{e}");
    }

    fn project() -> ProjectInfo {
        ProjectInfo {
            name: "shop".into(),
            environments: vec![
                ("e1".into(), "production".into()),
                ("e2".into(), "staging".into()),
            ],
            services: vec![("s1".into(), "API".into()), ("s2".into(), "worker".into())],
        }
    }

    #[test]
    fn resolves_names_and_ids_services_in_any_case() {
        let p = project();
        let ids = resolve(
            &p,
            "p1",
            &ScopeSpec {
                environment: "production".into(),
                service: Some("api".into()),
            },
        )
        .unwrap();
        assert_eq!(
            ids,
            Ids {
                environment: "e1".into(),
                service: Some("s1".into())
            }
        );
        let ids = resolve(
            &p,
            "p1",
            &ScopeSpec {
                environment: "e2".into(),
                service: Some("s2".into()),
            },
        )
        .unwrap();
        assert_eq!(
            ids,
            Ids {
                environment: "e2".into(),
                service: Some("s2".into())
            }
        );
        let ids = resolve(
            &p,
            "p1",
            &ScopeSpec {
                environment: "staging".into(),
                service: None,
            },
        )
        .unwrap();
        assert_eq!(ids.service, None);
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let p = project();
        let e = resolve(
            &p,
            "p1",
            &ScopeSpec {
                environment: "Production".into(),
                service: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "project shop (p1) has no environment `Production`; its environments: production, staging"
        );
        let e = resolve(
            &p,
            "p1",
            &ScopeSpec {
                environment: "production".into(),
                service: Some("web".into()),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "project shop (p1) has no service `web`; its services: API, worker"
        );
    }

    #[test]
    fn mutation_upserts_in_one_field_and_never_replaces() {
        let ids = Ids {
            environment: "e1".into(),
            service: Some("s1".into()),
        };
        let changes = vec![
            Change {
                key: "A".into(),
                op: Op::Add(Secret::new("1".into())),
            },
            Change {
                key: "B".into(),
                op: Op::Update(Secret::new("2".into())),
            },
            Change {
                key: "C".into(),
                op: Op::Delete,
            },
        ];
        let (q, v) = write_mutation("p1", &ids, &changes, true);
        assert!(
            q.contains("upsert: variableCollectionUpsert(input: $upsert)"),
            "{q}"
        );
        assert!(q.contains("d0: variableDelete(input: $d0)"), "{q}");
        assert!(!q.contains("replace"));
        assert_eq!(v["upsert"]["variables"], json!({"A": "1", "B": "2"}));
        assert_eq!(v["upsert"]["skipDeploys"], json!(true));
        assert!(v["upsert"].get("replace").is_none());
        assert_eq!(
            v["d0"],
            json!({"projectId": "p1", "environmentId": "e1", "serviceId": "s1", "name": "C"})
        );
    }

    #[test]
    fn batch_query_omits_service_for_shared_variables() {
        let (q, v) = batch_query(
            "p1",
            &[
                Ids {
                    environment: "e1".into(),
                    service: Some("s1".into()),
                },
                Ids {
                    environment: "e1".into(),
                    service: None,
                },
            ],
        );
        assert!(q.contains("v0: variables(projectId: $projectId, environmentId: $e0, serviceId: $s0, unrendered: true)"), "{q}");
        assert!(
            q.contains(
                "v1: variables(projectId: $projectId, environmentId: $e1, unrendered: true)"
            ),
            "{q}"
        );
        assert_eq!(
            v,
            json!({"projectId": "p1", "e0": "e1", "s0": "s1", "e1": "e1"})
        );
    }
}
