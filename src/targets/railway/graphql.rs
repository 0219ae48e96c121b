//! The GraphQL Railway is spoken in: the queries and mutations secretsync
//! sends, built with their variables, and the answers read back.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::api::About;
use super::ids::Ids;
use crate::secret::Secret;
use crate::targets::{Change, Op, TargetError};

/// A project's ids and names, from one `project` query.
#[derive(Debug, Default)]
pub(super) struct ProjectInfo {
    pub(super) name: String,
    pub(super) environments: Vec<(String, String)>,
    pub(super) services: Vec<(String, String)>,
    /// Environments that cannot be used (by id): reading them would fail
    /// the batched read of every other target, so they are left out of it.
    pub(super) unusable: Vec<(String, Unusable)>,
}

/// Why an environment cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unusable {
    /// `canAccess: false`: a restricted environment this token's user may
    /// not use.
    Restricted,
    /// `deletedAt` is set.
    Deleted,
}

pub(super) const PROJECT_QUERY: &str = "query project($id: String!) {
  project(id: $id) {
    id
    name
    services { edges { node { id name } } }
    environments { edges { node { id name canAccess deletedAt } } }
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
    let unusable = p
        .environments
        .edges
        .iter()
        .filter_map(|e| {
            if e.node.deleted_at.is_some() {
                Some((e.node.id.clone(), Unusable::Deleted))
            } else if e.node.can_access == Some(false) {
                Some((e.node.id.clone(), Unusable::Restricted))
            } else {
                None
            }
        })
        .collect();
    Some(ProjectInfo {
        name: p.name,
        environments: pairs(p.environments),
        services: pairs(p.services),
        unusable,
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
    /// Environments only.
    #[serde(rename = "canAccess", default)]
    can_access: Option<bool>,
    #[serde(rename = "deletedAt", default)]
    deleted_at: Option<String>,
}

/// Variables as read: name to value, `None` for a sealed one.
pub(super) type Vars = BTreeMap<String, Option<Secret>>;

pub(super) fn parse_vars(v: Option<Box<RawValue>>, about: &About) -> Result<Vars, TargetError> {
    let garbled = || {
        TargetError::failed(format!(
            "Railway's answer for {} does not hold a variable list",
            about.scope()
        ))
    };
    // A sealed variable answers null. serde's message is not kept: it may
    // quote a value. Parsed from the field's text: no JSON tree of the
    // answer (at 10,000 secrets, megabytes at the peak).
    let vars =
        serde_json::from_str::<BTreeMap<String, Option<String>>>(v.ok_or_else(garbled)?.get())
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

/// What is asked of each environment read: its staged changes, which
/// variables are sealed (`isSealed`, rather than guessing from a null), when
/// each was last set and which it references, and each service's latest
/// deployment (whether what runs uses the values, #28: see `live`).
const ENVIRONMENT_SELECTION: &str = "{ unmergedChangesCount variables { edges { node { name serviceId isSealed updatedAt references } } pageInfo { hasNextPage } } serviceInstances { edges { node { serviceId latestDeployment { id createdAt status } } } } }";

/// The answer key of environment `environment` in [`batch_query`].
pub(super) fn environment_key(scopes: &[Ids], environment: &str) -> Option<String> {
    scopes
        .iter()
        .position(|s| s.environment == environment)
        .map(|i| format!("env{i}"))
}

/// One query for many scopes of a project: each scope's `variables` as `v0`,
/// `v1`…, and (`with_env`) each environment once as `envN` (N: its first
/// scope).
pub(super) fn batch_query(project: &str, scopes: &[Ids], with_env: bool) -> (String, Value) {
    let mut decls = vec!["$projectId: String!".to_string()];
    let mut fields = String::new();
    let mut vars = Map::new();
    vars.insert("projectId".into(), json!(project));
    for (i, ids) in scopes.iter().enumerate() {
        let n = i.to_string();
        let (decl, field) = variables_field(Some(&format!("v{n}")), &n, ids);
        decls.push(decl);
        fields.push_str(&field);
        if with_env && environment_key(scopes, &ids.environment) == Some(format!("env{n}")) {
            fields.push_str(&format!(
                "  env{n}: environment(id: $e{n}, projectId: $projectId) {ENVIRONMENT_SELECTION}\n"
            ));
        }
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
/// not listed), then one aliased `variableDelete` per deletion. The upsert
/// skips its deploy when deletions follow: `variableDelete` has no
/// `skipDeploys` and deploys anyway, with the upserted values in place.
pub(super) fn write_mutation(
    project: &str,
    ids: &Ids,
    changes: &[Change],
    skip_deploys: bool,
) -> (String, Value) {
    let mut m = Mutation::default();
    m.add("", project, ids, changes, skip_deploys);
    m.finish()
}

/// A mutation built from the changes of one or several scopes, each under
/// its own alias prefix (`m0_upsert`, `m0_d1`, …): the services of one
/// project written in one request. Root fields of a mutation run in order;
/// each answers a boolean, checked per field.
#[derive(Default)]
pub(super) struct Mutation {
    decls: Vec<String>,
    fields: String,
    vars: Map<String, Value>,
}

impl Mutation {
    /// The fields for `changes` on `ids`, their aliases starting `prefix`.
    pub(super) fn add(
        &mut self,
        prefix: &str,
        project: &str,
        ids: &Ids,
        changes: &[Change],
        skip_deploys: bool,
    ) {
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
            let deletes = changes.iter().any(|c| matches!(c.op, Op::Delete));
            input.insert("skipDeploys".into(), json!(skip_deploys || deletes));
            let name = format!("{prefix}upsert");
            self.decls
                .push(format!("${name}: VariableCollectionUpsertInput!"));
            self.fields.push_str(&format!(
                "  {name}: variableCollectionUpsert(input: ${name})\n"
            ));
            self.vars.insert(name, Value::Object(input));
        }
        for (i, c) in changes
            .iter()
            .filter(|c| matches!(c.op, Op::Delete))
            .enumerate()
        {
            let mut input = scope.clone();
            input.insert("name".into(), json!(c.key));
            let name = format!("{prefix}d{i}");
            self.decls.push(format!("${name}: VariableDeleteInput!"));
            self.fields
                .push_str(&format!("  {name}: variableDelete(input: ${name})\n"));
            self.vars.insert(name, Value::Object(input));
        }
    }

    pub(super) fn finish(self) -> (String, Value) {
        (
            format!(
                "mutation variables({}) {{\n{}}}",
                self.decls.join(", "),
                self.fields
            ),
            Value::Object(self.vars),
        )
    }
}

/// The names in a mutation's answer that Railway did not confirm with
/// `true` (every field of the mutation answers a boolean).
pub(super) fn unconfirmed(data: &Map<String, Value>) -> Vec<&String> {
    data.iter()
        .filter(|(_, v)| **v != Value::Bool(true))
        .map(|(k, _)| k)
        .collect()
}

/// What a read says about an environment, besides the variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct EnvState {
    /// Dashboard edits staged and not yet deployed.
    pub(super) staged: i64,
    /// Sealed variables: (service id or `None` for shared, name).
    pub(super) sealed: std::collections::BTreeSet<(Option<String>, String)>,
    /// Railway listed the variables in pages and more remain: `sealed` may
    /// miss some.
    pub(super) partial: bool,
    /// What tells whether the values run (#28), when Railway answered it.
    pub(super) live: super::live::EnvLive,
}

/// The `environment` field of [`batch_query`]'s answer; `None` if absent
/// or not understood (sealed is then guessed from null values).
pub(super) fn parse_env(v: Option<&RawValue>) -> Option<EnvState> {
    #[derive(Deserialize)]
    struct Env {
        #[serde(rename = "unmergedChangesCount")]
        staged: Option<i64>,
        variables: VarConnection,
    }
    #[derive(Deserialize)]
    struct VarConnection {
        edges: Vec<VarEdge>,
        #[serde(rename = "pageInfo")]
        page: Option<Page>,
    }
    #[derive(Deserialize)]
    struct Page {
        #[serde(rename = "hasNextPage")]
        more: bool,
    }
    #[derive(Deserialize)]
    struct VarEdge {
        node: VarNode,
    }
    #[derive(Deserialize)]
    struct VarNode {
        name: String,
        #[serde(rename = "serviceId")]
        service: Option<String>,
        #[serde(rename = "isSealed")]
        sealed: bool,
    }
    let text = v?.get();
    let live = super::live::parse(&mut serde_json::Deserializer::from_str(text));
    let env = Env::deserialize(&mut serde_json::Deserializer::from_str(text)).ok()?;
    Some(EnvState {
        staged: env.staged.unwrap_or(0),
        sealed: env
            .variables
            .edges
            .into_iter()
            .filter(|e| e.node.sealed)
            .map(|e| (e.node.service, e.node.name))
            .collect(),
        partial: env.variables.page.is_some_and(|p| p.more),
        live,
    })
}

/// `secretsync doctor`'s question for an account token: is it accepted?
pub(super) const ME_QUERY: &str = "query me { me { id } }";

/// `secretsync doctor`'s question for a Bearer token `me` refuses (a
/// workspace token): can it see the target's project?
pub(super) const PROJECT_CHECK_QUERY: &str =
    "query project($id: String!) { project(id: $id) { id } }";

/// `secretsync doctor`'s question for a project token: which project is it for?
pub(super) const PROJECT_TOKEN_QUERY: &str =
    "query projectToken { projectToken { projectId environmentId } }";

/// The project and environment a project token is scoped to, from
/// [`PROJECT_TOKEN_QUERY`]'s answer; empty when the answer does not say.
pub(super) fn token_scope(data: &Map<String, Value>) -> (String, String) {
    data.get("projectToken")
        .and_then(|t| ProjectToken::deserialize(t).ok())
        .map(|t| (t.project_id, t.environment_id))
        .unwrap_or_default()
}

/// The `projectToken` field of [`PROJECT_TOKEN_QUERY`]'s answer.
#[derive(Deserialize)]
struct ProjectToken {
    #[serde(rename = "projectId")]
    project_id: String,
    #[serde(rename = "environmentId")]
    environment_id: String,
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
            true,
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
        // The environment once, under its first scope's variable.
        assert_eq!(q.matches(": environment(").count(), 1, "{q}");
        assert!(q.contains("env0: environment(id: $e0, projectId: $projectId) { unmergedChangesCount variables { edges { node { name serviceId isSealed updatedAt references } } pageInfo { hasNextPage } } serviceInstances { edges { node { serviceId latestDeployment { id createdAt status } } } } }"), "{q}");
        let (q, _) = batch_query(
            "p1",
            &[Ids {
                environment: "e1".into(),
                service: None,
            }],
            false,
        );
        assert!(!q.contains("environment("), "{q}");
    }
}
