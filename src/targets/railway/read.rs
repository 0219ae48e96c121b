//! The read: one request for many scopes of a project (falling back to one
//! scope at a time, so one bad scope fails alone), and how an answer about
//! one scope becomes [`Observed`]: sealed variables by `Variable.isSealed`
//! (not guessed from a null), unmanaged references left out (Railway's
//! wiring: never pruned, never imported), staged changes and unusable
//! environments said. Independent of how targets are grouped into reads.

use std::collections::HashMap;
use std::sync::Arc;

use super::api::{About, Api};
use super::graphql::{
    batch_query, environment_key, parse_env, parse_vars, EnvState, ProjectInfo, Unusable, Vars,
};
use super::ids::Ids;
use crate::targets::{ErrorKind, Observation, Observed, TargetError};

/// One scope's answer: its variables, and its environment's state (shared
/// by the scopes of that environment).
pub(super) type ScopeAnswer = (Vars, Option<Arc<EnvState>>);

/// Reads `scopes` of `project` in one request; `Err` if the request failed
/// as a whole (one failing field nulls every other).
pub(super) async fn read_scopes(
    api: &Api,
    about: &About,
    project: &str,
    scopes: &[Ids],
    with_env: bool,
) -> Result<Vec<ScopeAnswer>, TargetError> {
    let (query, vars) = batch_query(project, scopes, with_env);
    let mut data = api.send_fields(about, &query, vars, &[]).await?;
    // An environment's field is shared by its scopes: parsed once.
    let mut envs: HashMap<String, Option<Arc<EnvState>>> = HashMap::new();
    scopes
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            // Each scope's own field, taken.
            let vars = parse_vars(data.remove(&format!("v{i}")), about)?;
            let env = environment_key(scopes, &ids.environment).and_then(|k| {
                envs.entry(k)
                    .or_insert_with_key(|k| parse_env(data.get(k).map(|r| &**r)).map(Arc::new))
                    .clone()
            });
            Ok((vars, env))
        })
        .collect()
}

/// Reads one scope alone. Should Railway refuse the `environment` field
/// (which only adds `isSealed` and staged changes), the variables are read
/// without it rather than not at all.
pub(super) async fn read_scope(
    api: &Api,
    about: &About,
    project: &str,
    ids: &Ids,
) -> Result<ScopeAnswer, TargetError> {
    let one = std::slice::from_ref(ids);
    match read_scopes(api, about, project, one, true).await {
        Ok(mut v) => Ok(v.remove(0)),
        // Railway could not be reached: a smaller query would not help.
        Err(e) if e.kind == ErrorKind::Unreachable => Err(e),
        Err(_) => Ok(read_scopes(api, about, project, one, false)
            .await?
            .remove(0)),
    }
}

/// Whether a value is (or contains) a Railway reference such as
/// `${{Postgres.DATABASE_URL}}` or `${{shared.KEY}}`: Railway resolves it at
/// deploy; the value as written is wiring, not a secret.
pub(super) fn is_reference(value: &str) -> bool {
    value
        .find("${{")
        .is_some_and(|i| value[i + 3..].contains("}}"))
}

/// The error for a target whose environment cannot be used, if so.
pub(super) fn unusable(info: &ProjectInfo, ids: &Ids, name: &str) -> Option<TargetError> {
    let (_, why) = info.unusable.iter().find(|(e, _)| *e == ids.environment)?;
    Some(match why {
        Unusable::Restricted => TargetError::auth(format!(
            "environment {name} ({}) is restricted: the token's user has no access to it",
            ids.environment
        ))
        .with_hint("ask an admin of the project for access to the environment, or use a token of someone who has it"),
        Unusable::Deleted => TargetError::invalid(format!(
            "environment {name} ({}) was deleted in Railway",
            ids.environment
        ))
        .with_hint("remove the target from the manifest, or point it at an existing environment"),
    })
}

/// The variables of one scope as a target sees them. `managed` are the keys
/// the manifest manages there: a reference among them is compared like any
/// value; any other reference is left out of `entries` (so `prune` never
/// deletes it) and named in a note.
pub(super) fn observe(
    vars: Vars,
    env: Option<&EnvState>,
    ids: &Ids,
    environment: &str,
    managed: &[String],
) -> Observed {
    let sealed_here =
        |k: &str| env.is_some_and(|e| e.sealed.contains(&(ids.service.clone(), k.to_string())));
    let mut entries = std::collections::BTreeMap::new();
    let mut references = Vec::new();
    for (k, v) in vars {
        let o = match v {
            Some(v) if !sealed_here(&k) => {
                if is_reference(v.expose()) && !managed.contains(&k) {
                    references.push(k);
                    continue;
                }
                Observation::Value(v)
            }
            // A null value is sealed, also when isSealed could not be read.
            _ => Observation::Sealed,
        };
        entries.insert(k, o);
    }
    // Sealed variables the `variables` answer does not list at all.
    if let Some(env) = env {
        for (service, name) in &env.sealed {
            if *service == ids.service {
                entries.entry(name.clone()).or_insert(Observation::Sealed);
            }
        }
    }
    let mut notes = Vec::new();
    if !references.is_empty() {
        notes.push(format!(
            "{} reference(s) left alone (Railway resolves them at deploy; not pruned or imported unless the manifest names them): {}",
            references.len(),
            references.join(", ")
        ));
    }
    if env.is_none() {
        notes.push(format!(
            "Railway did not answer about environment {environment} (isSealed, staged changes): sealed variables are recognised by a null value only"
        ));
    }
    if let Some(env) = env {
        if env.staged > 0 {
            notes.push(format!(
                "environment {environment} has {} staged change(s) in Railway not yet deployed: deploying them later may overwrite what secretsync writes; review them in Railway's dashboard first",
                env.staged
            ));
        }
        if env.partial {
            notes.push(format!(
                "Railway listed the variables of environment {environment} in pages: some sealed variables may show as absent"
            ));
        }
    }
    Observed::complete(entries).with_notes(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn ids(service: Option<&str>) -> Ids {
        Ids {
            environment: "e1".into(),
            service: service.map(Into::into),
        }
    }

    #[test]
    fn references_are_recognised() {
        assert!(is_reference("${{Postgres.DATABASE_URL}}"));
        assert!(is_reference("postgres://${{ shared.USER }}@h/db"));
        assert!(!is_reference("${HOME} $$ {{x}}"));
        assert!(!is_reference("${{ unterminated"));
    }

    #[test]
    fn sealed_comes_from_is_sealed_and_references_stay_out_unless_managed() {
        let vars: Vars = [
            ("A".to_string(), Some(Secret::new("a".into()))),
            ("REF".to_string(), Some(Secret::new("${{shared.X}}".into()))),
            (
                "MREF".to_string(),
                Some(Secret::new("${{shared.Y}}".into())),
            ),
            ("S1".to_string(), Some(Secret::new("shown anyway".into()))),
            ("NULL".to_string(), None),
        ]
        .into_iter()
        .collect();
        let env = EnvState {
            staged: 3,
            sealed: [
                (Some("s1".to_string()), "S1".to_string()),
                (Some("s1".to_string()), "HIDDEN".to_string()),
                (None, "SHARED_SEALED".to_string()),
            ]
            .into_iter()
            .collect(),
            partial: false,
            live: Default::default(),
        };
        let o = observe(
            vars,
            Some(&env),
            &ids(Some("s1")),
            "production",
            &["MREF".into()],
        );
        let keys: Vec<&str> = o.entries.keys().map(String::as_str).collect();
        assert_eq!(keys, ["A", "HIDDEN", "MREF", "NULL", "S1"]);
        for k in ["HIDDEN", "NULL", "S1"] {
            assert_eq!(o.entries[k], Observation::Sealed, "{k}");
        }
        assert!(
            o.notes[0].starts_with("1 reference(s) left alone"),
            "{:?}",
            o.notes
        );
        assert!(o.notes[0].ends_with(": REF"));
        assert!(o.notes[1].contains("3 staged change(s)"));
    }
}
