//! Talking to Railway: the endpoint, the token, one GraphQL request with
//! its retry policy, and the redaction every message built from an answer
//! passes through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::{RailwaySpec, TokenKind};
use crate::notice::notice;
use crate::secret::Secret;
use crate::targets::{ErrorKind, TargetError};

/// Railway's public GraphQL endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://backboard.railway.com/graphql/v2";
/// Overrides the endpoint of every railway target (tests, proxies).
pub const ENDPOINT_ENV: &str = "SECRETSYNC_RAILWAY_ENDPOINT";
/// Seconds one request may take (decimals allowed).
pub const TIMEOUT_ENV: &str = "SECRETSYNC_RAILWAY_TIMEOUT";
/// Seconds one read may take in all: every attempt, backoff and rate-limit
/// wait (decimals allowed).
pub const DEADLINE_ENV: &str = "SECRETSYNC_RAILWAY_DEADLINE";
/// How many times a failed request is retried.
pub const RETRIES_ENV: &str = "SECRETSYNC_RAILWAY_RETRIES";
/// Seconds before the first retry after a 5xx, timeout or garbled answer;
/// doubled for each further retry.
pub const BACKOFF_ENV: &str = "SECRETSYNC_RAILWAY_BACKOFF";
/// The longest `Retry-After` (seconds) waited for on a 429.
pub const MAX_WAIT_ENV: &str = "SECRETSYNC_RAILWAY_MAX_WAIT";
/// Requests in flight at once per token and endpoint.
pub const IN_FLIGHT_ENV: &str = "SECRETSYNC_RAILWAY_IN_FLIGHT";
/// Requests started per second per token and endpoint (0: no pacing).
pub const RATE_ENV: &str = "SECRETSYNC_RAILWAY_RATE";

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
    /// A read's overall limit: all its attempts and the waits between them.
    pub deadline: Duration,
    /// The wait before the first retry (doubled each time).
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one is an error.
    pub max_wait: Duration,
    /// Requests in flight at once per token and endpoint.
    pub in_flight: usize,
    /// Requests started per second per token and endpoint; 0: unpaced.
    pub per_second: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            // Railway's CLI waits 90 s: some mutations run past 30 s, and a
            // mutation cut short is one whose outcome must be re-read.
            timeout: Duration::from_secs(90),
            // A hung Railway would otherwise hold a read for 4 × 90 s plus
            // backoff: one overall bound, past the first full attempt.
            deadline: Duration::from_secs(120),
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            // Railway allows 10 requests a second on Hobby (50 on Pro) and
            // 1,000 an hour: a few at a time keeps a sync job well inside.
            in_flight: 4,
            per_second: 10.0,
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
        if let Some(d) = secs(DEADLINE_ENV)? {
            p.deadline = d.max(Duration::from_millis(1));
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
        if let Some(v) = env(IN_FLIGHT_ENV).filter(|v| !v.is_empty()) {
            p.in_flight = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| {
                    TargetError::invalid(format!("{IN_FLIGHT_ENV}={v} is not a count from 1 to 16"))
                        .with_hint(format!("set {IN_FLIGHT_ENV} to a small number such as 4"))
                })?;
        }
        if let Some(v) = env(RATE_ENV).filter(|v| !v.is_empty()) {
            p.per_second = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0 && *n <= 1000.0)
                .ok_or_else(|| {
                    TargetError::invalid(format!(
                        "{RATE_ENV}={v} is not a number of requests per second"
                    ))
                    .with_hint(format!(
                        "set {RATE_ENV} to 10 (Railway's Hobby plan), 50 (Pro), or 0 for no pacing"
                    ))
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
pub(super) struct Token {
    pub(super) value: Secret,
    pub(super) var: String,
    pub(super) kind: TokenKind,
}

impl Token {
    pub(super) fn kind_name(&self) -> &'static str {
        match self.kind {
            TokenKind::Account => "account token",
            TokenKind::Project => "project token",
        }
    }
}

/// Finds the token as Railway's CLI does (its src/client.rs):
/// `RAILWAY_TOKEN` (project) first, else `RAILWAY_API_TOKEN` (Bearer), unless
/// the target names its variable. Both set is a mistake by Railway's docs:
/// said once per run.
pub(super) fn find_token(
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
        None => match (get(PROJECT_TOKEN_ENV), get(ACCOUNT_TOKEN_ENV)) {
            (Some(v), other) => {
                if other.is_some() {
                    warn_both_set();
                }
                (PROJECT_TOKEN_ENV.to_string(), v)
            }
            (None, Some(v)) => (ACCOUNT_TOKEN_ENV.to_string(), v),
            (None, None) => {
                return Err(TargetError::auth(format!(
                    "no Railway token: neither {PROJECT_TOKEN_ENV} nor {ACCOUNT_TOKEN_ENV} is set"
                ))
                .with_hint(format!(
                    "export {PROJECT_TOKEN_ENV} (project token) or {ACCOUNT_TOKEN_ENV} (workspace or account token), or name another variable with `token_env`"
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

/// Both token variables set: Railway's CLI uses `RAILWAY_TOKEN` and its docs
/// call setting both a mistake. Said once per process.
fn warn_both_set() {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        notice(&format!(
            "railway: both {PROJECT_TOKEN_ENV} and {ACCOUNT_TOKEN_ENV} are set; using {PROJECT_TOKEN_ENV} (the project token), as Railway's CLI does. Railway's docs call setting both a mistake: unset one, or name the variable with `token_env`"
        ));
    }
}

/// The endpoint: Railway's, or [`ENDPOINT_ENV`] of the run (never the
/// manifest's choice), which must be https except on a loopback address.
pub(super) fn endpoint(env: &dyn Fn(&str) -> Option<String>) -> Result<String, TargetError> {
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
pub(super) fn shown_url(url: &str) -> String {
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

/// Cuts `text` before any request it echoes, replaces every form of every
/// secret (raw, JSON-escaped, URL-encoded, base64, each line: see
/// [`crate::redact`]) and shortens it: the server's messages may echo what
/// was sent. Values shorter than 3 characters are left alone: hiding every
/// "a" would make messages unreadable, and such a value cannot be told from
/// ordinary text anyway.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = crate::redact::scrub(text, secrets);
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
pub(super) struct About {
    pub(super) project: String,
    pub(super) environment: Option<String>,
}

impl About {
    pub(super) fn scope(&self) -> String {
        match &self.environment {
            Some(e) => format!("project {} / environment {e}", self.project),
            None => format!("project {}", self.project),
        }
    }
}

/// Endpoint, token and limits of one target: everything needed to send a
/// request.
pub(super) struct Api {
    pub(super) endpoint: String,
    pub(super) shown: String,
    pub(super) token: Result<Token, TargetError>,
    pub(super) policy: RetryPolicy,
    pub(super) client: reqwest::Client,
}

/// A failure after which a request may or may not have been carried out.
enum Transient {
    Timeout,
    /// The connection failed after the request may have left.
    Connect(String),
    /// The connection was never made: the request certainly did not run.
    NotSent(String),
    Status(u16),
    Garbled(String),
}

/// A GraphQL answer with its `data` fields left as JSON text: a read's
/// answer holds every variable of its scopes, and each field is parsed by
/// its reader straight into its own types (no tree of the whole answer).
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// An answer's `data`, field by field, as JSON text.
pub(super) type Fields = std::collections::BTreeMap<String, Box<RawValue>>;

/// A body that is JSON but not an answer object: serde's message for it
/// may quote the body, so it is not kept.
fn garbled(e: &serde_json::Error) -> String {
    if e.is_data() {
        "JSON that is not a GraphQL answer object".into()
    } else {
        e.to_string()
    }
}

/// What one HTTP exchange gave.
enum Exchange {
    /// A JSON answer to interpret.
    Json(u16, Answer),
    /// HTTP 429, with the wait Railway asks for. Nothing was carried out.
    RateLimited(Option<Duration>),
    /// Retried for a read; for a write, its outcome must be re-read.
    Transient(Transient),
    /// Final, and nothing was carried out (the token, a redirect, the CDN).
    Refused(TargetError),
}

/// A failed write: the error, and whether Railway may have carried out
/// some of it (a timeout, a 5xx, an unreadable answer or a field error
/// after others ran), in which case the caller re-reads before saying so.
pub(super) struct WriteFailure {
    pub(super) error: TargetError,
    pub(super) maybe_applied: bool,
}

/// Requests to one endpoint with one token: a few in flight, paced.
struct Limiter {
    slots: tokio::sync::Semaphore,
    /// Requests that may start now, and when that was counted.
    bucket: std::sync::Mutex<Option<(f64, tokio::time::Instant)>>,
}

impl Limiter {
    /// Shared by every target of the process that uses this token at this
    /// endpoint, so that Railway's per-token limits hold whatever the
    /// number of targets and the engine's parallelism.
    fn of(endpoint: &str, token: &Secret, policy: &RetryPolicy) -> Arc<Limiter> {
        use sha2::{Digest, Sha256};
        type Registry = Mutex<HashMap<(String, [u8; 32]), Arc<Limiter>>>;
        static ALL: OnceLock<Registry> = OnceLock::new();
        let key = (
            endpoint.to_string(),
            Sha256::digest(token.expose().as_bytes()).into(),
        );
        ALL.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Limiter {
                    slots: tokio::sync::Semaphore::new(policy.in_flight.max(1)),
                    bucket: std::sync::Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits for this request's turn: a bucket of `per_second` requests,
    /// refilled at `per_second` a second, so a short run goes at once and a
    /// long one stays within Railway's per-second limit.
    async fn pace(&self, per_second: f64) {
        if per_second <= 0.0 {
            return;
        }
        let wait = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let capacity = per_second.max(1.0);
            let (tokens, last) = bucket.get_or_insert((capacity, now));
            *tokens = (*tokens + (now - *last).as_secs_f64() * per_second).min(capacity);
            *last = now;
            // Taken now, also when not yet there: later callers queue behind.
            *tokens -= 1.0;
            if *tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-*tokens / per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Api {
    pub(super) fn token(&self) -> Result<&Token, TargetError> {
        self.token.as_ref().map_err(Clone::clone)
    }

    pub(super) fn auth_error(&self, about: &About) -> TargetError {
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

    /// An HTML page on 401/403: the CDN in front of the API refused the
    /// request before Railway saw it; the token was not judged.
    fn cdn_error(&self, status: u16) -> TargetError {
        TargetError::unreachable(format!(
            "Railway at {} answered HTTP {status} with an HTML page: the CDN in front of Railway's API blocked the request (this is not Railway's answer about the token)",
            self.shown
        ))
        .with_hint(format!(
            "check the network, VPN or proxy this runs behind, and https://status.railway.com; {ENDPOINT_ENV} if set"
        ))
    }

    /// One HTTP exchange, in its turn under the token's limits.
    async fn exchange(
        &self,
        token: &Token,
        body: &Value,
        hide: &[&str],
        timeout: Duration,
    ) -> Exchange {
        let limiter = Limiter::of(&self.endpoint, &token.value, &self.policy);
        let _slot = limiter.slots.acquire().await.ok();
        limiter.pace(self.policy.per_second).await;
        let request = self.client.post(&self.endpoint).timeout(timeout).json(body);
        let request = match token.kind {
            TokenKind::Account => request.bearer_auth(token.value.expose()),
            TokenKind::Project => request.header("Project-Access-Token", token.value.expose()),
        };
        let resp = match request.send().await {
            Err(e) if e.is_timeout() => return Exchange::Transient(Transient::Timeout),
            Err(e) if e.is_connect() => {
                return Exchange::Transient(Transient::NotSent(redact(&cause(&e), hide)))
            }
            Err(e) => return Exchange::Transient(Transient::Connect(redact(&cause(&e), hide))),
            Ok(resp) => resp,
        };
        let status = resp.status().as_u16();
        if status == 429 {
            return Exchange::RateLimited(
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            );
        }
        if (300..400).contains(&status) {
            return Exchange::Refused(TargetError::failed(format!(
                "Railway at {} answered with a redirect (HTTP {status}), which secretsync does not follow: it would send the token elsewhere",
                self.shown
            ))
            .with_hint(format!("check {ENDPOINT_ENV} and any proxy in between")));
        }
        let html_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
        let bytes = match resp.bytes().await {
            Err(e) if e.is_timeout() => return Exchange::Transient(Transient::Timeout),
            Err(e) => return Exchange::Transient(Transient::Connect(redact(&cause(&e), hide))),
            Ok(b) => b,
        };
        let html = html_type || bytes.trim_ascii_start().starts_with(b"<");
        if status == 401 || status == 403 {
            if html {
                return Exchange::Refused(self.cdn_error(status));
            }
            // Railway's own refusals carry JSON errors; read them when there.
            return match serde_json::from_slice::<Answer>(&bytes) {
                Ok(a) if a.errors.is_some() => Exchange::Json(status, a),
                _ => Exchange::Refused(TargetError::auth(String::new())),
            };
        }
        if status >= 500 {
            return Exchange::Transient(Transient::Status(status));
        }
        match serde_json::from_slice::<Answer>(&bytes) {
            Err(e) => Exchange::Transient(Transient::Garbled(garbled(&e))),
            Ok(a) => Exchange::Json(status, a),
        }
    }

    /// Sends one GraphQL query and returns its `data`, retrying rate limits
    /// (after `Retry-After`), 5xx answers, timeouts and garbled answers.
    /// `redact_also` lists values the request carries, hidden in every message.
    pub(super) async fn send(
        &self,
        about: &About,
        query: &str,
        variables: Value,
        redact_also: &[&str],
    ) -> Result<Map<String, Value>, TargetError> {
        self.send_fields(about, query, variables, redact_also)
            .await
            .map(tree)
    }

    /// [`Api::send`], with the answer's fields as JSON text, for a reader
    /// that parses them into its own types.
    pub(super) async fn send_fields(
        &self,
        about: &About,
        query: &str,
        variables: Value,
        redact_also: &[&str],
    ) -> Result<Fields, TargetError> {
        self.send_as(about, query, variables, redact_also, false)
            .await
            .map_err(|f| f.error)
    }

    /// Sends one mutation. Never re-sent once it may have reached Railway
    /// (a re-sent upsert is another deploy, a re-sent delete fails on the
    /// key it deleted): only a 429 or a connection never made is retried.
    /// On failure, says whether some of it may have been carried out.
    pub(super) async fn send_write(
        &self,
        about: &About,
        query: &str,
        variables: Value,
        redact_also: &[&str],
    ) -> Result<Map<String, Value>, WriteFailure> {
        self.send_as(about, query, variables, redact_also, true)
            .await
            .map(tree)
    }

    async fn send_as(
        &self,
        about: &About,
        query: &str,
        variables: Value,
        redact_also: &[&str],
        write: bool,
    ) -> Result<Fields, WriteFailure> {
        let not_applied = |error| WriteFailure {
            error,
            maybe_applied: false,
        };
        let token = self.token().map_err(not_applied)?;
        let body = json!({ "query": query, "variables": variables });
        let mut hide: Vec<&str> = redact_also.to_vec();
        hide.push(token.value.expose());
        let tries = self.policy.retries + 1;
        let mut attempt = 0u32;
        // A read's overall deadline (a write is never re-sent once sent).
        let started = tokio::time::Instant::now();
        let deadline = started + self.policy.deadline;
        let overall = |what: &str, attempt: u32| {
            not_applied(
                TargetError::unreachable(format!(
                    "Railway at {} gave no answer within the read's overall deadline of {} ({DEADLINE_ENV}; {attempt} attempt(s), the last: {what})",
                    self.shown,
                    short(self.policy.deadline)
                ))
                .with_hint(format!(
                    "check the network and https://status.railway.com; {DEADLINE_ENV} bounds a whole read, {TIMEOUT_ENV} each request (seconds)"
                )),
            )
        };
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let timeout = if write {
                self.policy.timeout
            } else {
                self.policy.timeout.min(left)
            };
            let cut_by_deadline = !write && timeout < self.policy.timeout;
            let transient = match self.exchange(token, &body, &hide, timeout).await {
                Exchange::Json(status, v) => return self.answer(about, status, v, &hide, write),
                Exchange::Refused(e) if e.kind == ErrorKind::Auth && e.message.is_empty() => {
                    return Err(not_applied(self.auth_error(about)))
                }
                Exchange::Refused(e) => return Err(not_applied(e)),
                Exchange::RateLimited(wait) => {
                    let wait = wait.unwrap_or_else(|| self.policy.backoff_for(attempt));
                    if attempt >= tries {
                        return Err(not_applied(TargetError::unreachable(format!(
                            "Railway kept rate-limiting requests for {} ({tries} attempts)",
                            about.scope()
                        ))
                        .with_hint("wait for the hourly limit to reset (see docs/targets/railway.md, Limits), then run again")));
                    }
                    if wait > self.policy.max_wait {
                        return Err(not_applied(TargetError::unreachable(format!(
                            "Railway rate-limited requests for {} and asks to wait {}, longer than the {} secretsync waits",
                            about.scope(),
                            short(wait),
                            short(self.policy.max_wait)
                        ))
                        .with_hint(format!("run again later, or raise {MAX_WAIT_ENV}"))));
                    }
                    if !write && tokio::time::Instant::now() + wait >= deadline {
                        return Err(overall("rate limited", attempt));
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
                Exchange::Transient(t) => t,
            };
            let what = match &transient {
                Transient::Timeout => format!("no answer within {}", short(self.policy.timeout)),
                Transient::Connect(c) | Transient::NotSent(c) => format!("cannot connect ({c})"),
                Transient::Status(s) => format!("HTTP {s}"),
                Transient::Garbled(_) => "an answer that is not JSON".into(),
            };
            let sent = !matches!(transient, Transient::NotSent(_));
            if cut_by_deadline && matches!(transient, Transient::Timeout) {
                return Err(overall(&what, attempt));
            }
            if write && sent {
                return Err(WriteFailure {
                    error: TargetError::unreachable(format!(
                        "Railway at {} gave {what} to the write",
                        self.shown
                    )),
                    maybe_applied: true,
                });
            }
            if attempt >= tries {
                let err = match transient {
                    Transient::Timeout => TargetError::unreachable(format!(
                        "Railway at {} did not answer within {} ({tries} attempts)",
                        self.shown,
                        short(self.policy.timeout)
                    ))
                    .with_hint(format!(
                        "that is the per-request limit ({TIMEOUT_ENV}; a whole read is bounded by {DEADLINE_ENV}); check the network and https://status.railway.com; {TIMEOUT_ENV} sets the limit in seconds"
                    )),
                    Transient::Connect(c) | Transient::NotSent(c) => TargetError::unreachable(format!(
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
                return Err(WriteFailure {
                    error: err,
                    maybe_applied: write && sent,
                });
            }
            let wait = self.policy.backoff_for(attempt);
            if !write && tokio::time::Instant::now() + wait >= deadline {
                return Err(overall(&what, attempt));
            }
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
    /// For a write, a field error may follow fields that ran: maybe applied.
    fn answer(
        &self,
        about: &About,
        status: u16,
        a: Answer,
        hide: &[&str],
        write: bool,
    ) -> Result<Fields, WriteFailure> {
        let messages: Vec<String> = a
            .errors
            .as_ref()
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
        let fail = |error, maybe_applied| WriteFailure {
            error,
            maybe_applied,
        };
        if !messages.is_empty() {
            let lower: Vec<String> = messages.iter().map(|m| m.to_lowercase()).collect();
            if lower.iter().any(|m| {
                m.contains("not authorized")
                    || m.contains("unauthorized")
                    || m.contains("project token not found")
            }) {
                return Err(fail(self.auth_error(about), false));
            }
            if lower.iter().any(|m| m.contains("project not found")) {
                let var = self.token.as_ref().map_or("", |t| t.var.as_str());
                return Err(fail(TargetError::invalid(format!(
                    "Railway has no project {} that the token in {var} can see (Project not found)",
                    about.project
                ))
                .with_hint("`project` takes the project's id (project settings, or `railway status --json`); check the token belongs to the project's workspace"), false));
            }
            let text: Vec<String> = messages.iter().map(|m| redact(m, hide)).collect();
            if lower
                .iter()
                .any(|m| m.contains("rate limit") && m.contains("deploy"))
            {
                // Not a 429: Railway refuses to start more deploys.
                return Err(fail(
                    TargetError::unreachable(format!(
                        "Railway's deployment rate limit refused the write to {}: too many deploys started recently ({})",
                        about.scope(),
                        text.join("; ")
                    ))
                    .with_hint("wait a few minutes and run again; for many changes, set `skip_deploys: true` on the target and redeploy once when the variables are set"),
                    write,
                ));
            }
            return Err(fail(
                TargetError::failed(format!(
                    "Railway refused a request for {}: {}",
                    about.scope(),
                    text.join("; ")
                ))
                .with_hint("run `secretsync doctor`; if it persists, report it with this message"),
                write,
            ));
        }
        if !(200..300).contains(&status) {
            return Err(fail(
                TargetError::failed(format!(
                    "Railway answered HTTP {status} for {}",
                    about.scope()
                ))
                .with_hint(format!("check {ENDPOINT_ENV} if set")),
                false,
            ));
        }
        match a
            .data
            .and_then(|d| serde_json::from_str::<Fields>(d.get()).ok())
        {
            Some(fields) => Ok(fields),
            _ => Err(fail(
                TargetError::failed(format!(
                    "Railway's answer for {} has no data",
                    about.scope()
                )),
                write,
            )),
        }
    }
}

/// Fields as a JSON tree, for the small answers (projects, writes, doctor).
fn tree(fields: Fields) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_str(v.get()).unwrap_or(Value::Null)))
        .collect()
}

/// A reqwest error's cause, without the URL (which may carry credentials).
pub(super) fn cause(e: &reqwest::Error) -> String {
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
    fn an_answer_keeps_its_fields_as_text_and_a_wrong_body_is_never_quoted() {
        let a: Answer =
            serde_json::from_str(r#"{"data": {"v0": {"K": "x"}, "v1": null}, "extensions": {}}"#)
                .unwrap();
        assert!(a.errors.is_none());
        let fields: Fields = serde_json::from_str(a.data.unwrap().get()).unwrap();
        assert_eq!(fields["v0"].get(), r#"{"K": "x"}"#);
        assert_eq!(fields["v1"].get(), "null");
        let a: Answer =
            serde_json::from_str(r#"{"data": null, "errors": [{"message": "m"}]}"#).unwrap();
        assert!(a.data.is_none() && a.errors.is_some());
        // JSON, but not an answer: serde would quote the body.
        for body in [r#""CANARY-body-41aa""#, r#"{"data": "CANARY-body-41aa"}x"#] {
            let e = serde_json::from_str::<Answer>(body).err().unwrap();
            assert!(!garbled(&e).contains("CANARY"), "{}", garbled(&e));
        }
        let e = serde_json::from_str::<Answer>(r#""CANARY-body-41aa""#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("CANARY"), "serde quotes it: {e}");
        assert_eq!(garbled(&e), "JSON that is not a GraphQL answer object");
        // Not JSON at all: serde's position is kept, as before.
        let e = serde_json::from_str::<Answer>("<html>").err().unwrap();
        assert!(garbled(&e).starts_with("expected value"), "{}", garbled(&e));
    }

    #[test]
    fn project_token_wins_over_account_token_as_in_railways_cli() {
        let env = env_of(&[(ACCOUNT_TOKEN_ENV, "a"), (PROJECT_TOKEN_ENV, "p")]);
        let t = find_token(&spec(), &env).unwrap();
        assert_eq!(
            (t.var.as_str(), t.kind),
            (PROJECT_TOKEN_ENV, TokenKind::Project)
        );
        let env = env_of(&[(ACCOUNT_TOKEN_ENV, "a")]);
        let t = find_token(&spec(), &env).unwrap();
        assert_eq!(
            (t.var.as_str(), t.kind),
            (ACCOUNT_TOKEN_ENV, TokenKind::Account)
        );
    }
    #[tokio::test]
    async fn pacing_lets_a_burst_through_then_keeps_the_rate() {
        let l = Limiter {
            slots: tokio::sync::Semaphore::new(4),
            bucket: std::sync::Mutex::new(None),
        };
        let start = tokio::time::Instant::now();
        for _ in 0..20 {
            l.pace(20.0).await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "a burst goes at once"
        );
        for _ in 0..10 {
            l.pace(20.0).await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(450),
            "then 20 a second: {took:?}"
        );
    }
    #[test]
    fn limits_read_env_and_default_to_railways() {
        let p = RetryPolicy::default();
        assert_eq!(p.timeout, Duration::from_secs(90));
        assert_eq!((p.in_flight, p.per_second), (4, 10.0));
        let p = RetryPolicy::from_env(&env_of(&[(IN_FLIGHT_ENV, "2"), (RATE_ENV, "0")])).unwrap();
        assert_eq!((p.in_flight, p.per_second), (2, 0.0));
        assert!(RetryPolicy::from_env(&env_of(&[(IN_FLIGHT_ENV, "0")])).is_err());
        assert!(RetryPolicy::from_env(&env_of(&[(RATE_ENV, "fast")])).is_err());
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
        assert_eq!(e.kind, crate::targets::ErrorKind::Auth);
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
}
