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
//!     token_env: RAILWAY_TOKEN   # optional: default RAILWAY_TOKEN, else RAILWAY_API_TOKEN;
//!                                # only RAILWAY_* variables may be named
//!     token_kind: project        # needed only when token_env is another variable
//!     skip_deploys: false        # true: set variables without redeploying
//!     overwrite_sealed: false    # true: replace sealed variables
//!     prune: false               # delete variables the manifest does not list
//! ```
//!
//! Requests, per run: one `project` query per project (names to ids, and
//! which environments are restricted or deleted; made by the first reader of
//! the project's batch and handed to the others); per pass (plan, verify),
//! one aliased query per project covering every railway target of the run
//! in that project (their [`Target::batch_key`] is endpoint, token digest and
//! project: each scope's `variables`, each environment's `isSealed` flags and
//! staged changes); per written target, one `variables` query (Railway's
//! compare-and-swap, `environmentApplyChangeSet`, cannot be verified against
//! the schema: see docs/targets/railway.md; so the write re-reads and
//! refuses with [`ErrorKind::Conflict`](super::ErrorKind) when anything
//! moved since the plan) and one mutation, never re-sent.
//!
//! The token lives in a [`Secret`] and is only ever put in a request header;
//! every message built from an answer passes through `api::redact` first.
//!
//! Layout: this file is the kind, the spec and the [`Target`] with the glue
//! of batched reads (name resolution shared by a batch); `api` sends one
//! request (the endpoint, the token, limits per token, retries of reads,
//! never of writes, redaction); `graphql` builds the queries and mutations
//! and parses the answers; `read` runs a batched read and turns answers into
//! [`Observed`]; `write` judges a write whose answer was lost (applied, not
//! applied, partly applied); `doctor` holds the checks `secretsync doctor` runs.

mod api;
mod doctor;
mod graphql;
mod ids;
mod live;
mod read;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub use api::{
    RetryPolicy, ACCOUNT_TOKEN_ENV, BACKOFF_ENV, DEADLINE_ENV, DEFAULT_ENDPOINT, ENDPOINT_ENV,
    IN_FLIGHT_ENV, MAX_WAIT_ENV, PROJECT_TOKEN_ENV, RATE_ENV, RETRIES_ENV, TIMEOUT_ENV,
};

use api::{cause, endpoint, find_token, shown_url, About, Api};
use graphql::{
    parse_project, unconfirmed, write_mutation, EnvState, Mutation, ProjectInfo, Vars,
    PROJECT_QUERY,
};
use ids::Ids;

use super::kind::{is_env_key, same_as, Kind, Spec, TargetSpec};
use super::{
    Change, Check, Context, Fields, ManifestError, Observed, Read, Target, TargetError, Write,
};
use crate::secret::Secret;

/// `type: railway` in the registry.
pub static KIND: RailwayKind = RailwayKind;

pub struct RailwayKind;

impl Kind for RailwayKind {
    fn name(&self) -> &'static str {
        "railway"
    }

    /// Every Railway token: `token_env` may name only `RAILWAY_*` variables.
    fn credential_prefixes(&self) -> &'static [&'static str] {
        &["RAILWAY_"]
    }

    fn withdrawn(&self, field: &str) -> Option<(&'static str, &'static str)> {
        (field == "endpoint").then_some((
            "`endpoint` is no longer read from the manifest: a manifest must not choose where Railway tokens are sent",
            "remove the line; secretsync talks to Railway's public API, or to the URL in the environment variable SECRETSYNC_RAILWAY_ENDPOINT of the run (https, or http on loopback)",
        ))
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "project",
            "environment",
            "service",
            "token_env",
            "token_kind",
            "skip_deploys",
            "overwrite_sealed",
            "prune",
        ]
    }

    fn parse(&self, f: &Fields<'_>) -> Result<TargetSpec, ManifestError> {
        let token_kind = f.choice(
            "token_kind",
            &[
                ("account", TokenKind::Account),
                ("project", TokenKind::Project),
            ],
        )?;
        let token_env = f.parse("token_env", |v| {
            if !is_env_key(v) {
                return Err((
                    format!("`{v}` is not an environment variable name"),
                    Some("name the variable holding the token, such as RAILWAY_TOKEN".into()),
                ));
            }
            // A manifest naming any variable could send the identity
            // (SECRETSYNC_AGE_KEY) to Railway as a token.
            if !v.starts_with("RAILWAY_") {
                return Err((
                    format!("`token_env: {v}` does not start with RAILWAY_"),
                    Some("a manifest may name only RAILWAY_* variables as a token, so that it cannot send another credential to Railway; export the token as RAILWAY_<SOMETHING>".into()),
                ));
            }
            // Railway's CLI fixes the kind of its two variables; any other
            // cannot be guessed (the two headers differ).
            if token_kind.is_none() && v != "RAILWAY_API_TOKEN" && v != "RAILWAY_TOKEN" {
                return Err((
                    format!("`token_env: {v}` needs `token_kind`"),
                    Some("add `token_kind: account` (sent as Bearer) or `token_kind: project` (Project-Access-Token)".into()),
                ));
            }
            Ok(v.to_string())
        })?;
        Ok(TargetSpec::new(RailwaySpec {
            project: f.required("project")?,
            environment: f.required("environment")?,
            service: f.operand("service")?,
            token_env,
            token_kind,
            skip_deploys: f.flag("skip_deploys", false)?,
            overwrite_sealed: f.flag("overwrite_sealed", false)?,
            prune: f.flag("prune", false)?,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `Authorization: Bearer` (account or workspace token).
    Account,
    /// `Project-Access-Token`.
    Project,
}

/// `type: railway`: the variables of one Railway service (or the shared ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailwaySpec {
    pub project: String,
    /// Name or id.
    pub environment: String,
    /// Name or id; `None` addresses the environment's shared variables.
    pub service: Option<String>,
    pub token_env: Option<String>,
    pub token_kind: Option<TokenKind>,
    pub skip_deploys: bool,
    pub overwrite_sealed: bool,
    pub prune: bool,
}

impl Spec for RailwaySpec {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(RailwayTarget::new(name, self, ctx)?))
    }

    fn prune(&self) -> bool {
        self.prune
    }

    fn overwrite_sealed(&self) -> bool {
        self.overwrite_sealed
    }

    fn same(&self, other: &dyn Spec) -> bool {
        same_as(self, other)
    }
}

/// What a target addresses, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScopeSpec {
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

/// One scope as read: its ids, variables and what its environment says.
type ScopeRead = (Ids, Vars, Option<std::sync::Arc<EnvState>>);

/// The HTTP client of the run (one connection pool for every target).
fn client(ctx: &Context) -> Result<reqwest::Client, TargetError> {
    if let Some(c) = ctx.http.get() {
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
    Ok(ctx.http.get_or_init(|| c).clone())
}

pub struct RailwayTarget {
    name: String,
    project: String,
    scope: ScopeSpec,
    skip_deploys: bool,
    api: Api,
    /// Endpoint, token (a digest of it) and project: the targets read with
    /// one request. `None` when there is no token (every operation says so).
    batch_key: Option<String>,
    /// The project's names and ids, once asked (shared by the batch's
    /// first reader with the others).
    project_info: OnceCell<Result<Arc<ProjectInfo>, TargetError>>,
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
        let batch_key = token.as_ref().ok().map(|t| {
            let digest = Sha256::digest(t.value.expose().as_bytes());
            format!("{endpoint} {} {}", hex::encode(digest), spec.project)
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
                client: client(ctx)?,
            },
            batch_key,
            project_info: OnceCell::new(),
        })
    }

    fn about(&self) -> About {
        About {
            project: self.project.clone(),
            environment: Some(self.scope.environment.clone()),
        }
    }

    /// The project's names and ids: one query per project per run.
    async fn project_info(&self) -> Result<Arc<ProjectInfo>, TargetError> {
        self.api.token()?;
        self.project_info
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

    /// Reads the variables of `members` (this target's project, token and
    /// endpoint) in one request, after one name resolution for them all.
    /// Scopes in an environment that cannot be used fail alone, before the
    /// read; if the batched read fails anyway, each scope is read alone so
    /// that one bad scope fails only its own targets.
    async fn read_members(
        &self,
        members: &[&RailwayTarget],
    ) -> Vec<Result<ScopeRead, TargetError>> {
        let info = match self.project_info().await {
            Ok(info) => info,
            Err(e) => return vec![Err(e); members.len()],
        };
        let mut out: Vec<Option<Result<ScopeRead, TargetError>>> = vec![None; members.len()];
        let mut unique: Vec<Ids> = Vec::new();
        let mut wanted = Vec::new();
        for (m, t) in members.iter().enumerate() {
            let _ = t.project_info.set(Ok(info.clone()));
            match resolve(&info, &self.project, &t.scope) {
                Err(e) => out[m] = Some(Err(e)),
                Ok(ids) => {
                    if let Some(e) = read::unusable(&info, &ids, &t.scope.environment) {
                        out[m] = Some(Err(e));
                        continue;
                    }
                    let i = unique.iter().position(|u| *u == ids).unwrap_or_else(|| {
                        unique.push(ids.clone());
                        unique.len() - 1
                    });
                    wanted.push((m, i));
                }
            }
        }
        if !unique.is_empty() {
            let about = if unique
                .iter()
                .all(|u| u.environment == unique[0].environment)
            {
                self.about()
            } else {
                About {
                    project: self.project.clone(),
                    environment: None,
                }
            };
            let mut reads: Vec<Result<read::ScopeAnswer, TargetError>> =
                match read::read_scopes(&self.api, &about, &self.project, &unique, true).await {
                    Ok(all) => all.into_iter().map(Ok).collect(),
                    // Railway could not be reached: reading alone would not help.
                    Err(e) if e.kind == super::ErrorKind::Unreachable => {
                        vec![Err(e); unique.len()]
                    }
                    Err(_) => {
                        let mut each = Vec::new();
                        for (i, ids) in unique.iter().enumerate() {
                            // Named as the manifest names the environment.
                            let name = wanted
                                .iter()
                                .find(|(_, j)| *j == i)
                                .map_or(ids.environment.clone(), |(m, _)| {
                                    members[*m].scope.environment.clone()
                                });
                            let about = About {
                                project: self.project.clone(),
                                environment: Some(name),
                            };
                            each.push(
                                read::read_scope(&self.api, &about, &self.project, ids).await,
                            );
                        }
                        each
                    }
                };
            // A scope's read goes to its last target moved, to any other
            // cloned (several targets naming one service and environment).
            let mut left = vec![0usize; unique.len()];
            for (_, i) in &wanted {
                left[*i] += 1;
            }
            for (m, i) in wanted {
                left[i] -= 1;
                let read = if left[i] == 0 {
                    std::mem::replace(
                        &mut reads[i],
                        Err(TargetError::failed("no answer for the target")),
                    )
                } else {
                    reads[i].clone()
                };
                out[m] = Some(read.map(|(vars, env)| (unique[i].clone(), vars, env)));
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TargetError::failed("no answer for the target"))))
            .collect()
    }

    /// What a read says, as the engine wants it: `keys` decide which
    /// references are managed (the others are left out, see `read`).
    fn observe(&self, read: ScopeRead, keys: &[String]) -> Observed {
        let (ids, vars, env) = read;
        let mut observed = read::observe(vars, env.as_deref(), &ids, &self.scope.environment, keys);
        if let Some(env) = &env {
            observed.live = live::liveness(&env.live, &ids, &|id| self.service_name(id));
        }
        observed
    }

    /// A service's name by id, as the project names it (its id if unknown).
    fn service_name(&self, id: &str) -> String {
        self.project_info
            .get()
            .and_then(|i| i.as_ref().ok())
            .and_then(|i| i.services.iter().find(|(s, _)| s == id))
            .map_or_else(|| id.to_string(), |(_, n)| n.clone())
    }

    /// This target's variables now, in a request of its own.
    async fn read_one(&self, ids: &Ids) -> Result<read::ScopeAnswer, TargetError> {
        read::read_scope(&self.api, &self.about(), &self.project, ids).await
    }

    /// The refusal of a write whose target moved since it was read.
    fn conflict(&self) -> TargetError {
        TargetError::changed_since_read(
            format!(
                "the variables of {} changed since they were read; nothing was written",
                self.describe()
            ),
            Vec::new(),
        )
        .with_hint("run plan again (Railway has no compare-and-swap: secretsync re-reads just before writing)")
    }

    /// The writes of `members` (this target's project, token and endpoint):
    /// one batched conflict read for them all, then one mutation holding
    /// every member's fields under its own alias prefix, each field's answer
    /// checked; after a write whose answer was lost or refused, one batched
    /// re-read judges each member (never sent again).
    async fn write_members(
        &self,
        members: &[(&RailwayTarget, &Write<'_>)],
    ) -> Vec<Result<(), TargetError>> {
        let targets: Vec<&RailwayTarget> = members.iter().map(|(t, _)| *t).collect();
        let now = self.read_members(&targets).await;
        let mut out: Vec<Option<Result<(), TargetError>>> = vec![None; members.len()];
        let mut sending: Vec<(usize, Ids)> = Vec::new();
        for (m, ((t, w), read)) in members.iter().zip(now).enumerate() {
            if w.changes.is_empty() {
                out[m] = Some(Ok(()));
                continue;
            }
            match read {
                Err(e) => out[m] = Some(Err(e)),
                Ok(read) => {
                    let ids = read.0.clone();
                    // Compared as the plan saw it: the same references managed.
                    let managed: Vec<String> = w.observed.entries.keys().cloned().collect();
                    if t.observe(read, &managed).entries != w.observed.entries {
                        out[m] = Some(Err(t.conflict()));
                    } else {
                        sending.push((m, ids));
                    }
                }
            }
        }
        if !sending.is_empty() {
            let mut mutation = Mutation::default();
            for (m, ids) in &sending {
                let (t, w) = members[*m];
                mutation.add(
                    &format!("m{m}_"),
                    &t.project,
                    ids,
                    w.changes,
                    t.skip_deploys,
                );
            }
            let (query, vars) = mutation.finish();
            let values: Vec<&str> = sending
                .iter()
                .flat_map(|(m, _)| members[*m].1.changes.iter())
                .filter_map(|c| c.op.value().map(Secret::expose))
                .collect();
            let mut environments = sending
                .iter()
                .map(|(m, _)| &members[*m].0.scope.environment);
            let first = environments.next();
            let about = About {
                project: self.project.clone(),
                environment: first.filter(|e| environments.all(|x| x == *e)).cloned(),
            };
            match self.api.send_write(&about, &query, vars, &values).await {
                Ok(data) => {
                    for (m, _) in &sending {
                        let prefix = format!("m{m}_");
                        let mine: serde_json::Map<String, serde_json::Value> = data
                            .iter()
                            .filter_map(|(k, v)| {
                                Some((k.strip_prefix(&prefix)?.to_string(), v.clone()))
                            })
                            .collect();
                        let fields = mutation_fields(members[*m].1.changes);
                        let refused: Vec<String> = fields
                            .into_iter()
                            .filter(|f| mine.get(f) != Some(&serde_json::Value::Bool(true)))
                            .collect();
                        out[*m] = Some(if refused.is_empty() {
                            Ok(())
                        } else {
                            Err(TargetError::failed(format!(
                                "Railway did not confirm every change ({})",
                                refused.join(", ")
                            )))
                        });
                    }
                }
                Err(f) if !f.maybe_applied => {
                    for (m, _) in &sending {
                        out[*m] = Some(Err(f.error.clone()));
                    }
                }
                Err(f) => {
                    // Never sent again: what Railway holds says what happened.
                    let again: Vec<&RailwayTarget> =
                        sending.iter().map(|(m, _)| members[*m].0).collect();
                    let now = self.read_members(&again).await;
                    for ((m, _), now) in sending.iter().zip(now) {
                        let (t, w) = members[*m];
                        out[*m] = Some(write::judge(
                            &t.describe(),
                            w.changes,
                            now.map(|(_, vars, _)| vars),
                            f.error.clone(),
                        ));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TargetError::failed("the target was not written"))))
            .collect()
    }

    fn target_label(&self) -> String {
        match &self.scope.service {
            Some(s) => format!("service {s}"),
            None => "shared variables".into(),
        }
    }
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

    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError> {
        let read = self.read_members(&[self]).await.pop();
        read.unwrap_or_else(|| Err(TargetError::failed("no answer for the target")))
            .map(|r| self.observe(r, keys))
    }

    fn batch_key(&self) -> Option<String> {
        self.batch_key.clone()
    }

    fn is_reference(&self, value: &Secret) -> bool {
        read::is_reference(value.expose())
    }

    /// Every target of the project (same token and endpoint) in one request.
    async fn read_batch(&self, group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
        let Some(members) = super::members::<RailwayTarget>(group) else {
            return super::read_each(group).await;
        };
        let targets: Vec<&RailwayTarget> = members.iter().map(|(t, _)| *t).collect();
        self.read_members(&targets)
            .await
            .into_iter()
            .zip(&members)
            .map(|(r, (t, keys))| r.map(|r| t.observe(r, keys)))
            .collect()
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let ids = self.ids().await?;
        // Compared as the plan saw it: the same references managed.
        let managed: Vec<String> = observed.entries.keys().cloned().collect();
        let (vars, env) = self.read_one(&ids).await?;
        let now = read::observe(
            vars,
            env.as_deref(),
            &ids,
            &self.scope.environment,
            &managed,
        );
        if now.entries != observed.entries {
            return Err(self.conflict());
        }
        let (query, vars) = write_mutation(&self.project, &ids, changes, self.skip_deploys);
        let values: Vec<&str> = changes
            .iter()
            .filter_map(|c| c.op.value().map(Secret::expose))
            .collect();
        let cause = match self
            .api
            .send_write(&self.about(), &query, vars, &values)
            .await
        {
            Ok(data) => {
                let refused = unconfirmed(&data);
                if refused.is_empty() {
                    return Ok(());
                }
                TargetError::failed(format!(
                    "Railway did not confirm every change ({})",
                    refused
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            Err(f) if !f.maybe_applied => return Err(f.error),
            Err(f) => f.error,
        };
        // Never sent again: what Railway holds says what happened.
        let now = self.read_one(&ids).await.map(|(vars, _)| vars);
        write::judge(&self.describe(), changes, now, cause)
    }

    /// Every written target of the project in one conflict read and one
    /// mutation (see [`RailwayTarget::write_members`]).
    async fn write_batch(&self, group: &[Write<'_>]) -> Vec<Result<(), TargetError>> {
        match super::write_members::<RailwayTarget>(group) {
            Some(members) => self.write_members(&members).await,
            None => super::write_each(group).await,
        }
    }

    /// One mutation for every service of the project to redeploy (#28).
    async fn redeploy(&self, handles: &[String]) -> Vec<Result<(), TargetError>> {
        if let Err(e) = self.api.token() {
            return handles.iter().map(|_| Err(e.clone())).collect();
        }
        let about = About {
            project: self.project.clone(),
            environment: None,
        };
        live::redeploy(&self.api, &about, handles).await
    }

    async fn check(&self) -> Vec<Check> {
        self.doctor().await
    }
}

/// The alias of each root field [`Mutation::add`] makes for `changes`,
/// without its prefix: `upsert` when anything is set, `d0`… per delete.
fn mutation_fields(changes: &[Change]) -> Vec<String> {
    let mut fields = Vec::new();
    if changes.iter().any(|c| c.op.value().is_some()) {
        fields.push("upsert".to_string());
    }
    let deletes = changes.iter().filter(|c| c.op.value().is_none()).count();
    fields.extend((0..deletes).map(|i| format!("d{i}")));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectInfo {
        ProjectInfo {
            name: "shop".into(),
            environments: vec![
                ("e1".into(), "production".into()),
                ("e2".into(), "staging".into()),
            ],
            services: vec![("s1".into(), "API".into()), ("s2".into(), "worker".into())],
            unusable: vec![],
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
}
