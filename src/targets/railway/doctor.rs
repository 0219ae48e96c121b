//! `secretsync doctor` for a railway target: the token, whether Railway
//! accepts it, the project, the environment and service, and a read.

use serde_json::json;

use super::graphql::{token_project, ME_QUERY, PROJECT_TOKEN_QUERY};
use super::resolve;
use super::RailwayTarget;
use super::TokenKind;
use crate::targets::{Check, TargetError};

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
            TokenKind::Account => self
                .api
                .send(&about, ME_QUERY, json!({}), &[])
                .await
                .map(|_| "the account token is accepted".to_string()),
            TokenKind::Project => self
                .api
                .send(&about, PROJECT_TOKEN_QUERY, json!({}), &[])
                .await
                .and_then(|d| {
                    let pid = token_project(&d);
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
