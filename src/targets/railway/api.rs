//! Talking to Railway: the endpoint, the token, one GraphQL request with
//! its retry policy, and the redaction every message built from an answer
//! passes through.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{RailwaySpec, TokenKind};
use crate::notice::notice;
use crate::secret::Secret;
use crate::targets::TargetError;

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

/// Finds the token as Railway's CLI does: `RAILWAY_API_TOKEN` (Bearer), else
/// `RAILWAY_TOKEN` (project), unless the target names its variable.
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

/// A transient failure, retried with backoff.
enum Transient {
    Timeout,
    Connect(String),
    Status(u16),
    Garbled(String),
}

impl Api {
    pub(super) fn token(&self) -> Result<&Token, TargetError> {
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
    pub(super) async fn send(
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
