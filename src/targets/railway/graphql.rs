//! The GraphQL Railway is spoken in: the queries and mutations secretsync
//! sends, built with their variables, and the answers read back.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::About;
use crate::secret::Secret;
use crate::targets::{Change, Op, TargetError};

/// A project's ids and names, from one `project` query.
#[derive(Debug)]
pub(super) struct ProjectInfo {
    pub(super) name: String,
    pub(super) environments: Vec<(String, String)>,
    pub(super) services: Vec<(String, String)>,
}

pub(super) const PROJECT_QUERY: &str = "query project($id: String!) {
  project(id: $id) {
    id
    name
    services { edges { node { id name } } }
    environments { edges { node { id name } } }
  }
}";

pub(super) fn parse_project(data: &Map<String, Value>) -> Option<ProjectInfo> {
    let p = ProjectAnswer::deserialize(data.get("project")?).ok()?;
    let pairs = |c: Connection| {
        c.edges
            .into_iter()
            .map(|e| (e.node.id, e.node.name))
            .collect()
    };
    Some(ProjectInfo {
        name: p.name,
        environments: pairs(p.environments),
        services: pairs(p.services),
    })
}

/// The `project` field of [`PROJECT_QUERY`]'s answer.
#[derive(Deserialize)]
struct ProjectAnswer {
    name: String,
    services: Connection,
    environments: Connection,
}

/// A GraphQL connection of `{ id name }` nodes.
#[derive(Deserialize)]
struct Connection {
    edges: Vec<Edge>,
}

#[derive(Deserialize)]
struct Edge {
    node: Node,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    name: String,
}

/// A scope resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Ids {
    pub(super) environment: String,
    pub(super) service: Option<String>,
}

/// Variables as read: name to value, `None` for a sealed one.
pub(super) type Vars = BTreeMap<String, Option<Secret>>;

pub(super) fn parse_vars(v: Option<&Value>, about: &About) -> Result<Vars, TargetError> {
    let garbled = || {
        TargetError::failed(format!(
            "Railway's answer for {} does not hold a variable list",
            about.scope()
        ))
    };
    // A sealed variable answers null. serde's message is not kept: it may
    // quote a value.
    let vars = BTreeMap::<String, Option<String>>::deserialize(v.ok_or_else(garbled)?)
        .map_err(|_| garbled())?;
    Ok(vars
        .into_iter()
        .map(|(k, v)| (k, v.map(Secret::new)))
        .collect())
}

/// The `variables` field for one scope, with its variables named after `n`.
pub(super) fn variables_field(alias: Option<&str>, n: &str, ids: &Ids) -> (String, String) {
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
pub(super) fn batch_query(project: &str, scopes: &[Ids]) -> (String, Value) {
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

/// The mutation for `changes`: one `variableCollectionUpsert` with every
/// addition and update (`replace` never set: it would delete every variable
/// not listed), then one aliased `variableDelete` per deletion.
pub(super) fn write_mutation(
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

/// The names in a mutation's answer that Railway did not confirm with
/// `true` (every field of the mutation answers a boolean).
pub(super) fn unconfirmed(data: &Map<String, Value>) -> Vec<&String> {
    data.iter()
        .filter(|(_, v)| **v != Value::Bool(true))
        .map(|(k, _)| k)
        .collect()
}

/// `secretsync doctor`'s question for an account token: is it accepted?
pub(super) const ME_QUERY: &str = "query me { me { id } }";

/// `secretsync doctor`'s question for a project token: which project is it for?
pub(super) const PROJECT_TOKEN_QUERY: &str =
    "query projectToken { projectToken { projectId environmentId } }";

/// The project a project token belongs to, from [`PROJECT_TOKEN_QUERY`]'s
/// answer; empty when the answer does not say.
pub(super) fn token_project(data: &Map<String, Value>) -> String {
    data.get("projectToken")
        .and_then(|t| ProjectToken::deserialize(t).ok())
        .map(|t| t.project_id)
        .unwrap_or_default()
}

/// The `projectToken` field of [`PROJECT_TOKEN_QUERY`]'s answer.
#[derive(Deserialize)]
struct ProjectToken {
    #[serde(rename = "projectId")]
    project_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

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
