//! `secretsync doctor` for a railway target: the token, whether Railway
//! accepts it (an account token by `me`; a workspace token, which `me`
//! refuses, by the target's project; a project token by its project and
//! environment), the project, the environment and service, and a read.

use serde_json::json;

use super::api::{About, Api};
use super::graphql::{token_scope, ME_QUERY, PROJECT_CHECK_QUERY, PROJECT_TOKEN_QUERY};
use super::ids::Ids;
use super::RailwayTarget;
use super::TokenKind;
use super::{read, resolve};
use crate::targets::{Check, ErrorKind, Observation, TargetError};

/// Whether Railway accepts a Bearer token: `me` for an account token; `me`
/// refuses workspace tokens, so a refusal is checked again with a query on
/// the target's own project before the token is called dead.
pub(super) async fn bearer_accepted(api: &Api, about: &About) -> Result<String, TargetError> {
    match api.send(about, ME_QUERY, json!({}), &[]).await {
        Ok(_) => Ok("the account token is accepted".into()),
        Err(e) if e.kind == ErrorKind::Auth => api
            .send(about, PROJECT_CHECK_QUERY, json!({ "id": about.project }), &[])
            .await
            .map(|_| {
                format!(
                    "accepted as a workspace token: it can see project {} (Railway's `me` answers account tokens only)",
                    about.project
                )
            })
            .map_err(|_| e),
        Err(e) => Err(e),
    }
}

/// A project token's scope against the target's: both the project and the
/// environment (a project token reaches one environment only).
pub(super) fn project_token_fits(
    var: &str,
    scope: (&str, &str),
    project: &str,
    ids: Option<(&Ids, &str)>,
) -> Result<String, TargetError> {
    let (pid, eid) = scope;
    if pid != project {
        return Err(TargetError::auth(format!(
            "the project token in {var} belongs to project {pid}, not {project}"
        ))
        .with_hint("create a project token in this project's settings, or fix `project`"));
    }
    if let Some((ids, name)) = ids {
        if !eid.is_empty() && eid != ids.environment {
            return Err(TargetError::auth(format!(
                "the project token in {var} is for environment {eid}, not {name} ({})",
                ids.environment
            ))
            .with_hint(format!(
                "a project token reaches one environment: create one in {name}'s settings and name its variable with `token_env`, or use a workspace token"
            )));
        }
    }
    Ok(format!(
        "the project token is accepted for project {pid}, environment {eid}"
    ))
}

impl RailwayTarget {
    /// What `secretsync doctor` shows for this target, in order; stops at
    /// the first failure the next check depends on.
    pub(super) async fn doctor(&self) -> Vec<Check> {
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
            TokenKind::Account => bearer_accepted(&self.api, &about).await,
            TokenKind::Project => match self
                .api
                .send(&about, PROJECT_TOKEN_QUERY, json!({}), &[])
                .await
            {
                Err(e) => Err(e),
                Ok(d) => {
                    let (pid, eid) = token_scope(&d);
                    // The environment is compared once names resolve; a
                    // token of another project is refused before that.
                    let ids = if pid == self.project {
                        self.ids().await.ok()
                    } else {
                        None
                    };
                    project_token_fits(
                        &token.var,
                        (&pid, &eid),
                        &self.project,
                        ids.as_ref().map(|i| (i, self.scope.environment.as_str())),
                    )
                }
            },
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
        let ids = resolve(&info, &self.project, &self.scope).and_then(|ids| {
            match read::unusable(&info, &ids, &self.scope.environment) {
                Some(e) => Err(e),
                None => Ok(ids),
            }
        });
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
        let read = self.read_one(&ids).await;
        // Whether liveness can be checked (#28): from the same answer.
        let live = read.as_ref().ok().map(|(_, env)| {
            env.as_ref()
                .map(|e| super::live::liveness(&e.live, &ids, &|id| self.service_name(id)))
        });
        checks.push(Check {
            what: "variables readable".into(),
            outcome: read.map(|(vars, env)| {
                let all: Vec<String> = vars.keys().cloned().collect();
                let o = read::observe(vars, env.as_deref(), &ids, &self.scope.environment, &all);
                let sealed = o
                    .entries
                    .values()
                    .filter(|v| **v == Observation::Sealed)
                    .count();
                let mut out = format!("{} variables, {sealed} sealed", o.entries.len());
                if let Some(staged) = env.map(|e| e.staged).filter(|n| *n > 0) {
                    out.push_str(&format!(
                        "; environment {} has {staged} staged change(s) not yet deployed (deploying them may overwrite what secretsync writes)",
                        self.scope.environment
                    ));
                }
                out
            }),
        });
        if let Some(live) = live {
            checks.push(Check {
                what: "liveness".into(),
                outcome: super::live::doctor(live.as_ref(), ids.service.is_some()),
            });
        }
        checks
    }
}
