//! Whether a Railway service runs the values its variables hold (#28).
//!
//! Read in the same request as the variables, in each environment's field
//! (`graphql::ENVIRONMENT_SELECTION`): every variable's `updatedAt` and
//! `references`, and every service instance's `latestDeployment { id
//! createdAt status }`. A variable set after the latest (successful)
//! deployment was created is written, not live: `apply --redeploy` sends one
//! `serviceInstanceRedeploy` per such service, all in one mutation per
//! project (as `railway redeploy` does, one service at a time).
//!
//! What Railway's API does not tell: which deployment serves traffic when
//! the latest is still building (`activeDeployments` lists them, without
//! saying which variables each was built with), and which values a
//! deployment was made with: a deployment created after a variable changed
//! is taken to run it. Shared variables are judged against the services
//! whose own variables reference them (`Variable.references`, as
//! `shared.KEY`); a service that reads a shared variable some other way is
//! not seen.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::{About, Api};
use super::ids::Ids;
use crate::liveness::{parse_rfc3339, Liveness, Millis, Runner, Seen};
use crate::targets::TargetError;

/// What an environment's answer says about what runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::targets::railway) struct EnvLive {
    /// (service id, `None` for shared; name) → when the variable was last set.
    updated: BTreeMap<(Option<String>, String), Millis>,
    /// Service id → the shared variables its variables reference.
    references: BTreeMap<String, BTreeSet<String>>,
    /// Service id → its latest deployment.
    deployments: BTreeMap<String, Deployment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Deployment {
    created: Millis,
    status: String,
}

/// The liveness parts of an environment field's answer; what is missing or
/// not understood is left out (nothing is then said about liveness).
pub(in crate::targets::railway) fn parse<'de, D: serde::Deserializer<'de>>(v: D) -> EnvLive {
    #[derive(Deserialize)]
    struct Env {
        variables: Option<Conn<VarNode>>,
        #[serde(rename = "serviceInstances")]
        instances: Option<Conn<Instance>>,
    }
    #[derive(Deserialize)]
    struct Conn<T> {
        edges: Vec<Edge<T>>,
    }
    #[derive(Deserialize)]
    struct Edge<T> {
        node: T,
    }
    #[derive(Deserialize)]
    struct VarNode {
        name: String,
        #[serde(rename = "serviceId")]
        service: Option<String>,
        #[serde(rename = "updatedAt")]
        updated: Option<String>,
        #[serde(default)]
        references: Option<Vec<String>>,
    }
    #[derive(Deserialize)]
    struct Instance {
        #[serde(rename = "serviceId")]
        service: String,
        #[serde(rename = "latestDeployment")]
        latest: Option<Dep>,
    }
    #[derive(Deserialize)]
    struct Dep {
        #[serde(rename = "createdAt")]
        created: String,
        status: String,
    }
    let Ok(env) = Env::deserialize(v) else {
        return EnvLive::default();
    };
    let mut out = EnvLive::default();
    for e in env.variables.map(|c| c.edges).unwrap_or_default() {
        let n = e.node;
        if let Some(t) = n.updated.as_deref().and_then(parse_rfc3339) {
            out.updated.insert((n.service.clone(), n.name.clone()), t);
        }
        if let Some(svc) = n.service {
            for r in n.references.unwrap_or_default() {
                if let Some(k) = r.trim().strip_prefix("shared.") {
                    out.references
                        .entry(svc.clone())
                        .or_default()
                        .insert(k.to_string());
                }
            }
        }
    }
    for e in env.instances.map(|c| c.edges).unwrap_or_default() {
        if let Some(d) = e.node.latest {
            if let Some(created) = parse_rfc3339(&d.created) {
                out.deployments.insert(
                    e.node.service,
                    Deployment {
                        created,
                        status: d.status,
                    },
                );
            }
        }
    }
    out
}

/// The handle `apply --redeploy` gets back: environment and service ids.
fn handle(environment: &str, service: &str) -> String {
    format!("{environment}/{service}")
}

/// What runs from scope `ids`: its service's latest deployment, or for
/// shared variables the latest deployment of every service referencing
/// them. `name` gives a service's name by id, for output.
pub(in crate::targets::railway) fn liveness(
    env: &EnvLive,
    ids: &Ids,
    name: &dyn Fn(&str) -> String,
) -> Liveness {
    let mut runs = Vec::new();
    let runner = |svc: &str,
                  dep: &Deployment,
                  scope: Option<&str>,
                  keys: Option<BTreeSet<String>>| {
        let label = name(svc);
        let who = format!("service {label}");
        let written: BTreeMap<String, Millis> = env
            .updated
            .iter()
            .filter(|((s, _), _)| s.as_deref() == scope)
            .map(|((_, k), t)| (k.clone(), *t))
            .collect();
        let seen = match dep.status.as_str() {
            "SUCCESS" | "SLEEPING" => Seen::Times {
                started: dep.created,
                written,
                subject: "the variable".into(),
                since: "was deployed".into(),
            },
            "FAILED" | "CRASHED" => Seen::Down(format!(
                "the latest deployment of service {label} is {}: it does not run",
                dep.status
            )),
            s => Seen::Unknown(format!(
                "the latest deployment of service {label} is {s}: whether it runs the value cannot be told yet"
            )),
        };
        Runner {
            who,
            action: format!("redeploy service {label} (secretsync apply --redeploy)"),
            seen,
            keys,
            handle: Some(handle(&ids.environment, svc)),
        }
    };
    match &ids.service {
        Some(svc) => {
            if let Some(dep) = env.deployments.get(svc) {
                runs.push(runner(svc, dep, Some(svc), None));
            }
        }
        None => {
            for (svc, shared) in &env.references {
                if let Some(dep) = env.deployments.get(svc) {
                    runs.push(runner(svc, dep, None, Some(shared.clone())));
                }
            }
        }
    }
    Liveness { runs }
}

/// Redeploys the services of `handles` (from [`liveness`]) with one
/// mutation: one `serviceInstanceRedeploy` each, never sent again. One
/// result per handle.
pub(in crate::targets::railway) async fn redeploy(
    api: &Api,
    about: &About,
    handles: &[String],
) -> Vec<Result<(), TargetError>> {
    let mut decls = Vec::new();
    let mut fields = String::new();
    let mut vars = Map::new();
    for (i, h) in handles.iter().enumerate() {
        let Some((env, svc)) = h.split_once('/') else {
            continue;
        };
        decls.push(format!("$r{i}e: String!, $r{i}s: String!"));
        fields.push_str(&format!(
            "  r{i}: serviceInstanceRedeploy(environmentId: $r{i}e, serviceId: $r{i}s)\n"
        ));
        vars.insert(format!("r{i}e"), json!(env));
        vars.insert(format!("r{i}s"), json!(svc));
    }
    if decls.is_empty() {
        return handles
            .iter()
            .map(|_| Err(TargetError::failed("not a Railway service to redeploy")))
            .collect();
    }
    let query = format!("mutation redeploy({}) {{\n{fields}}}", decls.join(", "));
    match api
        .send_write(about, &query, Value::Object(vars), &[])
        .await
    {
        Ok(data) => (0..handles.len())
            .map(|i| match data.get(&format!("r{i}")) {
                Some(Value::Bool(true)) => Ok(()),
                _ => Err(TargetError::failed(
                    "Railway did not confirm the redeploy (serviceInstanceRedeploy)",
                )),
            })
            .collect(),
        Err(f) => handles.iter().map(|_| Err(f.error.clone())).collect(),
    }
}

/// `doctor`: whether liveness can be checked for a scope, from what its
/// read said (`None`: Railway did not answer about the environment).
pub(in crate::targets::railway) fn doctor(
    live: Option<&Liveness>,
    service: bool,
) -> Result<String, TargetError> {
    let Some(live) = live else {
        return Err(TargetError::failed(
            "Railway did not answer about the environment: deployments and variables' updatedAt cannot be read",
        )
        .with_hint("check the token's access to the environment; plan says nothing about liveness meanwhile"));
    };
    if live.is_empty() {
        return Ok(if service {
            "the service has no deployment: nothing runs its variables yet".into()
        } else {
            "no deployed service references these shared variables".into()
        });
    }
    Ok(live
        .runs
        .iter()
        .map(|r| match &r.seen {
            Seen::Times { started, .. } => format!(
                "{} was deployed on {}: variables changed since are not live",
                r.who,
                crate::liveness::shown(*started)
            ),
            Seen::Down(why) | Seen::Unknown(why) => why.clone(),
            Seen::Environment(_) => r.who.clone(),
        })
        .collect::<Vec<_>>()
        .join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Value {
        json!({
            "variables": {"edges": [
                {"node": {"name": "A", "serviceId": "s1", "isSealed": false,
                          "updatedAt": "2026-12-01T10:00:05.000Z", "references": []}},
                {"node": {"name": "REF", "serviceId": "s1", "isSealed": false,
                          "updatedAt": "2026-12-01T10:00:01.000Z", "references": ["shared.TOKEN"]}},
                {"node": {"name": "TOKEN", "serviceId": null, "isSealed": false,
                          "updatedAt": "2026-12-01T10:00:09.000Z", "references": []}},
            ]},
            "serviceInstances": {"edges": [
                {"node": {"serviceId": "s1", "latestDeployment":
                    {"id": "d1", "createdAt": "2026-12-01T10:00:03.000Z", "status": "SUCCESS"}}},
                {"node": {"serviceId": "s2", "latestDeployment": null}},
            ]},
        })
    }

    fn name(id: &str) -> String {
        if id == "s1" {
            "api".into()
        } else {
            id.into()
        }
    }

    #[test]
    fn a_service_runs_its_latest_deployment_and_shared_variables_their_referrers() {
        let env = parse(answer());
        let ids = Ids {
            environment: "e1".into(),
            service: Some("s1".into()),
        };
        let l = liveness(&env, &ids, &name);
        assert_eq!(l.runs.len(), 1);
        let r = &l.runs[0];
        assert_eq!(r.who, "service api");
        assert_eq!(r.handle.as_deref(), Some("e1/s1"));
        let Seen::Times {
            started, written, ..
        } = &r.seen
        else {
            panic!("{:?}", r.seen);
        };
        assert!(written["A"] > *started && written["REF"] < *started);
        assert!(!written.contains_key("TOKEN"));
        // s2 has no deployment: nothing runs, nothing said.
        let ids2 = Ids {
            environment: "e1".into(),
            service: Some("s2".into()),
        };
        assert!(liveness(&env, &ids2, &name).is_empty());
        let shared = Ids {
            environment: "e1".into(),
            service: None,
        };
        let l = liveness(&env, &shared, &name);
        assert_eq!(l.runs.len(), 1);
        assert_eq!(l.runs[0].keys, Some(["TOKEN".to_string()].into()));
        let Seen::Times { written, .. } = &l.runs[0].seen else {
            panic!();
        };
        assert_eq!(written.keys().collect::<Vec<_>>(), ["TOKEN"]);
    }

    #[test]
    fn a_failed_deployment_is_down_one_building_unknown() {
        let mut v = answer();
        v["serviceInstances"]["edges"][0]["node"]["latestDeployment"]["status"] = json!("CRASHED");
        let ids = Ids {
            environment: "e1".into(),
            service: Some("s1".into()),
        };
        let l = liveness(&parse(&v), &ids, &name);
        assert!(
            matches!(l.runs[0].seen, Seen::Down(_)),
            "{:?}",
            l.runs[0].seen
        );
        v["serviceInstances"]["edges"][0]["node"]["latestDeployment"]["status"] = json!("BUILDING");
        let l = liveness(&parse(&v), &ids, &name);
        assert!(matches!(l.runs[0].seen, Seen::Unknown(_)));
        // An answer without these fields says nothing.
        assert!(liveness(&parse(json!({})), &ids, &name).is_empty());
    }
}
