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
//! which environments are restricted or deleted, shared by every target of
//! that project through [`Shared`]); per round, one aliased query per
//! project covering every railway target of the run in that project (each
//! scope's `variables`, each environment's `isSealed` flags and staged
//! changes); per written target, one `variables` query (Railway's
//! compare-and-swap, `environmentApplyChangeSet`, cannot be verified against
//! the schema: see docs/targets/railway.md; so the write re-reads and
//! refuses with [`ErrorKind::Conflict`](super::ErrorKind) when anything
//! moved since the plan) and one mutation, never re-sent.
//!
//! The token lives in a [`Secret`] and is only ever put in a request header;
//! every message built from an answer passes through `api::redact` first.
//!
//! Layout: this file is the [`Target`] and the glue of grouped reads (name
//! resolution, the per-round batch); `api` sends one request (the endpoint,
//! the token, limits per token, retries of reads, never of writes,
//! redaction); `graphql` builds the queries and mutations and parses the
//! answers; `read` runs a batched read and turns answers into [`Observed`];
//! `write` judges a write whose answer was lost (applied, not applied,
//! partly applied); `doctor` holds the checks `secretsync doctor` runs.

mod api;
mod doctor;
mod graphql;
mod read;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub use api::{
    RetryPolicy, ACCOUNT_TOKEN_ENV, BACKOFF_ENV, DEFAULT_ENDPOINT, ENDPOINT_ENV, IN_FLIGHT_ENV,
    MAX_WAIT_ENV, PROJECT_TOKEN_ENV, RATE_ENV, RETRIES_ENV, TIMEOUT_ENV,
};

use api::{cause, endpoint, find_token, shown_url, About, Api};
use graphql::{
    parse_project, unconfirmed, write_mutation, EnvState, Ids, ProjectInfo, Vars, PROJECT_QUERY,
};

use super::{Change, Check, Context, Observed, Round, RoundCache, Target, TargetError};
use crate::manifest::RailwaySpec;
use crate::secret::Secret;

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
type ScopeRead = (Ids, Vars, Option<EnvState>);

/// One round's read of a project: each registered scope's variables, or
/// why that scope could not be read.
type Batch = HashMap<ScopeSpec, Result<ScopeRead, TargetError>>;

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
    /// Scopes in an environment that cannot be used fail alone, before the
    /// read; if the batched read fails anyway, each scope is read alone so
    /// that one bad scope fails only its own targets.
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
                    if let Some(e) = read::unusable(&info, &ids, &s.environment) {
                        out.insert(s, Err(e));
                        continue;
                    }
                    let i = unique.iter().position(|u| *u == ids).unwrap_or_else(|| {
                        unique.push(ids.clone());
                        unique.len() - 1
                    });
                    wanted.push((s, i));
                }
            }
        }
        if unique.is_empty() {
            return Ok(Arc::new(out));
        }
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
        let reads: Vec<Result<(Vars, Option<EnvState>), TargetError>> =
            match read::read_scopes(&self.api, &about, &self.project, &unique, true).await {
                Ok(all) => all.into_iter().map(Ok).collect(),
                // Railway could not be reached: reading alone would not help.
                Err(e) if e.kind == super::ErrorKind::Unreachable => vec![Err(e); unique.len()],
                Err(_) => {
                    let mut each = Vec::new();
                    for (i, ids) in unique.iter().enumerate() {
                        // Named as the manifest names the environment.
                        let name = wanted
                            .iter()
                            .find(|(_, j)| *j == i)
                            .map_or(ids.environment.clone(), |(s, _)| s.environment.clone());
                        let about = About {
                            project: self.project.clone(),
                            environment: Some(name),
                        };
                        each.push(read::read_scope(&self.api, &about, &self.project, ids).await);
                    }
                    each
                }
            };
        for (s, i) in wanted {
            let r = reads[i]
                .clone()
                .map(|(vars, env)| (unique[i].clone(), vars, env));
            out.insert(s, r);
        }
        Ok(Arc::new(out))
    }

    /// This target's variables now, in a request of its own.
    async fn read_one(&self, ids: &Ids) -> Result<(Vars, Option<EnvState>), TargetError> {
        read::read_scope(&self.api, &self.about(), &self.project, ids).await
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

    async fn read(&self, round: Round, keys: &[String]) -> Result<Observed, TargetError> {
        let group = self.group()?;
        let batch = group.reads.get_or_init(round, self.read_group()).await?;
        let (ids, vars, env) = match batch.get(&self.scope) {
            Some(v) => v.clone()?,
            // Registered after this round's batch was read: read alone.
            None => {
                let ids = self.ids().await?;
                let (vars, env) = self.read_one(&ids).await?;
                (ids, vars, env)
            }
        };
        Ok(read::observe(
            vars,
            env.as_ref(),
            &ids,
            &self.scope.environment,
            keys,
        ))
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let ids = self.ids().await?;
        // Compared as the plan saw it: the same references managed.
        let managed: Vec<String> = observed.entries.keys().cloned().collect();
        let (vars, env) = self.read_one(&ids).await?;
        let now = read::observe(vars, env.as_ref(), &ids, &self.scope.environment, &managed);
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

    async fn check(&self) -> Vec<Check> {
        self.doctor().await
    }
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
