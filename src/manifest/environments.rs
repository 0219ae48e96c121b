//! Environments (`environments:`): staging and production in one manifest.
//!
//! Each environment names who can decrypt its values (`recipients`, the
//! top-level ones when it names none) and the fields its targets take
//! instead of the base definition (`targets:`). Each target is instantiated
//! once per environment it belongs to (`environments: [..]` on the target,
//! every environment by default), named `TARGET@ENV`; a secret reaches an
//! instance only when it has a value for that instance's environment. So a
//! value never reaches another environment's target: the expansion (the
//! environments part of `validate`, which checks them where they stand) is
//! the only place instances are made, and each instance's value is looked up
//! by its own environment ([`SecretDef::source_on`]). This file is the model
//! and the views of it (one environment's, values split per environment).
//!
//! A manifest without `environments:` means what it meant before: targets
//! keep their names and every secret has one value.

use indexmap::IndexMap;

use super::{Manifest, SecretDef, ValueSource};
use crate::crypto::Recipient;

/// Where a wrong `--env` is pointed, in every command.
pub const DEFINED_HINT: &str =
    "environments are defined under `environments:` (docs/environments.md)";

/// One environment of the manifest.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// Who can decrypt this environment's values.
    pub recipients: Vec<Recipient>,
    /// Whether it names its own `recipients:` (else the top-level ones).
    pub own_recipients: bool,
    /// Target → field → the text this environment gives it instead.
    pub overrides: IndexMap<String, IndexMap<String, Option<String>>>,
    /// `rotate_every:`, the default period (days) of its encrypted values
    /// (`Some(None)`: `never`); `None`: the top-level default.
    pub rotate_every: Option<Option<i64>>,
}

/// A target as instantiated in one environment (`TARGET@ENV`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The target's name under `targets:`.
    pub target: String,
    /// The environment.
    pub env: String,
}

/// The name of `target` in `env`.
pub fn instance_name(target: &str, env: &str) -> String {
    format!("{target}@{env}")
}

impl Manifest {
    /// Whether the manifest has `environments:`.
    pub fn has_environments(&self) -> bool {
        !self.environments.is_empty()
    }

    /// The environment of target (instance) `name`; `None` without environments.
    pub fn env_of(&self, name: &str) -> Option<&str> {
        self.instances.get(name).map(|i| i.env.as_str())
    }

    /// Whether target `name` is chosen by `--target selector`: its own name,
    /// or, for an instance, the name of the target it instantiates.
    pub fn target_matches(&self, name: &str, selector: &str) -> bool {
        name == selector
            || self
                .instances
                .get(name)
                .is_some_and(|i| i.target == selector)
    }

    /// Whether `selector` (a `--target`) names a target or an instance.
    pub fn knows_target(&self, selector: &str) -> bool {
        self.targets.contains_key(selector) || self.instances.values().any(|i| i.target == selector)
    }

    /// Who must be able to decrypt a value for `env` (`None`: one value for
    /// every environment, so the union of theirs and the top-level ones).
    pub fn recipients_for(&self, env: Option<&str>) -> Vec<Recipient> {
        match env.and_then(|e| self.environments.get(e)) {
            Some(e) => e.recipients.clone(),
            None => {
                let mut out = self.recipients.clone();
                for e in self.environments.values() {
                    for r in &e.recipients {
                        if !out.iter().any(|o| o.to_string() == r.to_string()) {
                            out.push(r.clone());
                        }
                    }
                }
                out
            }
        }
    }

    /// The environments none of `publics` can read, among those with a
    /// `selected` target that needs a decrypted value; none when that is
    /// every such environment (then the run fails as a whole, as before).
    pub fn unreadable_envs(
        &self,
        publics: &[String],
        selected: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut needing = Vec::new();
        for (name, env) in &self.environments {
            let needs = self.secrets.values().any(|s| {
                s.targets.iter().any(|t| {
                    self.env_of(t) == Some(name.as_str())
                        && selected(t)
                        && matches!(s.source_on(t), ValueSource::Encrypted(_))
                })
            });
            if needs {
                let readable = publics
                    .iter()
                    .any(|p| crate::crypto::is_recipient(p, &env.recipients));
                needing.push((name.clone(), readable));
            }
        }
        if needing.iter().all(|(_, readable)| !readable) {
            return Vec::new();
        }
        needing
            .into_iter()
            .filter(|(_, readable)| !readable)
            .map(|(n, _)| n)
            .collect()
    }

    /// Refuses an `--env` that is not an environment of the manifest (and
    /// any `--env` on a manifest without environments).
    pub fn check_envs(&self, envs: &[String]) -> Result<(), String> {
        for e in envs {
            if !self.environments.contains_key(e) {
                return Err(if self.environments.is_empty() {
                    format!(
                        "--env {e}: {} has no environments (no `environments:`)",
                        self.path.display()
                    )
                } else {
                    format!(
                        "--env {e}: no such environment in {} (environments: {})",
                        self.path.display(),
                        self.environments
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            }
        }
        Ok(())
    }

    /// The manifest itself when it has no environments; with them, only its
    /// one-for-all values (what no single environment owns): for views
    /// that judge one value per secret.
    pub fn in_env_all(&self) -> Manifest {
        let mut m = self.in_env("");
        if !self.has_environments() {
            m.targets = self.targets.clone();
            m.recipients = self.recipients.clone();
            m.secrets = self.secrets.clone();
        }
        m
    }

    /// The manifest as one environment sees it: its instances only, each
    /// secret with that environment's value as its one value (those without
    /// one left out), its recipients as the manifest's. What `get`, `run`,
    /// `list`, `set` and the other one-value commands work on with `--env`.
    pub fn in_env(&self, env: &str) -> Manifest {
        let keep = |t: &String| self.env_of(t) == Some(env);
        let secrets = self
            .secrets
            .iter()
            .filter_map(|(name, s)| {
                let value = s.value_in(env)?.clone();
                let targets: Vec<String> = s.targets.iter().filter(|t| keep(t)).cloned().collect();
                let own = s.per_environment().then_some(env);
                Some((
                    name.clone(),
                    SecretDef {
                        targets,
                        value,
                        values: IndexMap::new(),
                        ..self.lifecycle_view(s, own)
                    },
                ))
            })
            .collect();
        Manifest {
            path: self.path.clone(),
            source: self.source.clone(),
            recipients: self.recipients_for(Some(env)),
            fingerprint_key: self.fingerprint_key.clone(),
            targets: self
                .targets
                .iter()
                .filter(|(t, _)| keep(t))
                .map(|(t, s)| (t.clone(), s.clone()))
                .collect(),
            secrets,
            removed: self.removed.clone(),
            rotate_every: self.rotate_every,
            environments: self
                .environments
                .iter()
                .filter(|(e, _)| e.as_str() == env)
                .map(|(e, d)| (e.clone(), d.clone()))
                .collect(),
            instances: self
                .instances
                .iter()
                .filter(|(_, i)| i.env == env)
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect(),
        }
    }
}

/// The secrets whose value for `env` a key of `ids` outside that
/// environment's recipients decrypts: encrypted to another environment's
/// key, which `check` cannot see (age's X25519 stanzas do not name their
/// key). Values for every environment are encrypted to all, and not asked.
pub fn readable_outside(m: &Manifest, ids: &crate::crypto::Identities, env: &str) -> Vec<String> {
    let Some(e) = m.environments.get(env) else {
        return Vec::new();
    };
    let outside = ids.outside(&e.recipients);
    if outside.keys.is_empty() {
        return Vec::new();
    }
    m.secrets
        .values()
        .filter(|s| match s.values.get(env) {
            Some(ValueSource::Encrypted(a)) => crate::crypto::opens(&outside, a),
            _ => false,
        })
        .map(|s| s.name.clone())
        .collect()
}

/// Recipients (public keys) of an environment in `a` that the same
/// environment in `b` does not list, as "KEY (environment ENV)"; an
/// environment new in `a` counts its own recipients only.
pub fn recipients_diff(a: &Manifest, b: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (name, e) in &a.environments {
        if !e.own_recipients {
            continue;
        }
        let theirs: Vec<String> = b
            .environments
            .get(name)
            .map(|x| x.recipients.iter().map(ToString::to_string).collect())
            .unwrap_or_else(|| b.recipients.iter().map(ToString::to_string).collect());
        for r in &e.recipients {
            let r = r.to_string();
            if !theirs.contains(&r) {
                out.push(format!("{r} (environment {name})"));
            }
        }
    }
    out
}

/// The secret a name of [`Manifest::values_split`] stands for.
pub fn secret_of(name: &str, a: &Manifest, b: &Manifest) -> String {
    if let Some((secret, _)) = name.rsplit_once('@') {
        let split = |m: &Manifest| m.secrets.get(secret).is_some_and(|s| s.per_environment());
        if split(a) || split(b) {
            return secret.to_string();
        }
    }
    name.to_string()
}

impl Manifest {
    /// The manifest with each secret that has a value per environment
    /// split into one secret per value (`NAME@ENV`, on that environment's
    /// instances): for views that judge one value per secret (review).
    pub fn values_split(&self) -> Manifest {
        let mut secrets = IndexMap::new();
        for (name, s) in &self.secrets {
            if !s.per_environment() {
                secrets.insert(name.clone(), self.lifecycle_view(s, None));
                continue;
            }
            for (env, v) in &s.values {
                let pseudo = format!("{name}@{env}");
                let targets: Vec<String> = s
                    .targets
                    .iter()
                    .filter(|t| self.env_of(t) == Some(env.as_str()))
                    .cloned()
                    .collect();
                secrets.insert(
                    pseudo.clone(),
                    SecretDef {
                        name: pseudo,
                        targets,
                        value: v.clone(),
                        values: IndexMap::new(),
                        ..self.lifecycle_view(s, Some(env))
                    },
                );
            }
        }
        Manifest {
            path: self.path.clone(),
            source: self.source.clone(),
            recipients: self.recipients.clone(),
            fingerprint_key: self.fingerprint_key.clone(),
            targets: self.targets.clone(),
            secrets,
            removed: self.removed.clone(),
            rotate_every: self.rotate_every,
            environments: self.environments.clone(),
            instances: self.instances.clone(),
        }
    }
}

impl Manifest {
    /// `def` with the lifecycle of one of its values as its own: `env`'s
    /// (`set_on`, `expires`, `rotate_every` written for it, its `previous`,
    /// the environment's default period), or, with `None`, of its one value
    /// for every environment, which is due on the strictest schedule of the
    /// environments it is in (the same value is production's). What the
    /// lifecycle views judge, one value at a time (#27).
    pub fn lifecycle_view(&self, def: &SecretDef, env: Option<&str>) -> SecretDef {
        let mut d = def.clone();
        d.lifecycle_in = IndexMap::new();
        if !self.has_environments() {
            return d;
        }
        d.previous = def.previous_in(env);
        match env {
            Some(e) => {
                if let Some(own) = def.lifecycle_in.get(e) {
                    d.set_on = own.set_on.clone().or(d.set_on);
                    d.expires = own.expires.clone().or(d.expires);
                    d.rotate_every = own.rotate_every.or(d.rotate_every);
                }
                if d.rotate_every.is_none() {
                    d.rotate_every = self.environments.get(e).and_then(|x| x.rotate_every);
                }
            }
            None if d.rotate_every.is_none() => {
                let in_it = self
                    .environments
                    .values()
                    .filter(|e| def.value_in(&e.name).is_some());
                let periods: Vec<Option<Option<i64>>> = in_it.map(|e| e.rotate_every).collect();
                if periods.iter().any(Option::is_some) {
                    d.rotate_every = Some(
                        periods
                            .into_iter()
                            .filter_map(|p| p.unwrap_or(self.rotate_every))
                            .min(),
                    );
                }
            }
            None => {}
        }
        d
    }
}

impl SecretDef {
    /// The fingerprints of the values this secret held in `env`, newest
    /// first: those recorded for it, and those of its one value for all
    /// (`None`: those only).
    pub fn previous_in(&self, env: Option<&str>) -> Vec<super::Previous> {
        self.previous
            .iter()
            .filter(|p| p.env.is_none() || p.env.as_deref() == env)
            .cloned()
            .collect()
    }

    /// Where the value for target (instance) `target` comes from: the
    /// value of that target's environment.
    pub fn source_on(&self, target: &str) -> &ValueSource {
        if self.values.is_empty() {
            return &self.value;
        }
        target
            .rsplit_once('@')
            .and_then(|(_, env)| self.values.get(env))
            .unwrap_or(&self.value)
    }

    /// The value this secret has in `env`, if it is in that environment.
    pub fn value_in(&self, env: &str) -> Option<&ValueSource> {
        if self
            .environments
            .as_ref()
            .is_some_and(|e| !e.iter().any(|x| x == env))
        {
            return None;
        }
        if self.values.is_empty() {
            Some(&self.value)
        } else {
            self.values.get(env)
        }
    }

    /// Whether its values are one per environment (`encrypted:` a map).
    pub fn per_environment(&self) -> bool {
        !self.values.is_empty()
    }

    /// Every value it holds, with its environment (`None`: one for all).
    pub fn sources(&self) -> Vec<(Option<&str>, &ValueSource)> {
        if self.values.is_empty() {
            vec![(None, &self.value)]
        } else {
            self.values
                .iter()
                .map(|(e, v)| (Some(e.as_str()), v))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const ARMOR: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

    fn load(text: &str) -> Result<Manifest, String> {
        super::super::parse(Path::new("secrets.yaml"), text.to_string()).map_err(|e| e.to_string())
    }

    fn manifest() -> String {
        format!(
            "version: 1\nenvironments:\n  staging:\n    targets:\n      app: {{path: s.env}}\n  production: {{}}\ntargets:\n  app: {{type: env_file, path: p.env}}\n  api: {{type: railway, project: p1, service: api}}\n  only: {{type: env_file, path: o.env, environments: [production]}}\nsecrets:\n  DB:\n    targets: [app, api, only]\n    encrypted:\n      staging: |\n        {ARMOR}\n        s\n      production: |\n        {ARMOR}\n        p\n  HALF:\n    targets: [app]\n    encrypted:\n      production: |\n        {ARMOR}\n        p2\n  ALL:\n    targets: [app, only]\n    value: x\n  DEBUG:\n    targets: [api]\n    environments: [staging]\n    value: d\n"
        )
    }

    /// By construction: every instance a secret reaches takes the value of
    /// the instance's own environment, and a secret without a value for an
    /// environment reaches none of its targets.
    #[test]
    fn a_value_never_reaches_another_environments_target() {
        let m = load(&manifest()).unwrap();
        assert_eq!(
            m.targets.keys().collect::<Vec<_>>(),
            [
                "app@staging",
                "app@production",
                "api@staging",
                "api@production",
                "only@production"
            ]
        );
        for s in m.secrets.values() {
            for t in &s.targets {
                let env = m.env_of(t).unwrap();
                let want = s.value_in(env).unwrap();
                let got = s.source_on(t);
                match (want, got) {
                    (ValueSource::Encrypted(a), ValueSource::Encrypted(b)) => {
                        assert_eq!(a, b, "{t}")
                    }
                    (ValueSource::Plain(a), ValueSource::Plain(b)) => assert_eq!(a, b, "{t}"),
                    other => panic!("{t}: {other:?}"),
                }
                if let ValueSource::Encrypted(a) = got {
                    assert!(
                        a.ends_with(if env == "staging" { "s\n" } else { "p\n" })
                            || s.name == "HALF",
                        "{t}: {a}"
                    );
                }
            }
        }
        assert_eq!(m.secrets["HALF"].targets, ["app@production"]);
        assert_eq!(m.secrets["HALF"].absent_in, ["staging"]);
        assert_eq!(m.secrets["DEBUG"].targets, ["api@staging"]);
        assert_eq!(
            m.secrets["DB"].targets,
            [
                "app@staging",
                "app@production",
                "api@staging",
                "api@production",
                "only@production"
            ]
        );
        // The one-value views hold one environment only.
        let s = m.in_env("staging");
        assert!(s.targets.keys().all(|t| t.ends_with("@staging")));
        assert!(!s.secrets.contains_key("HALF"));
        assert!(matches!(&s.secrets["DB"].value, ValueSource::Encrypted(a) if a.ends_with("s\n")));
        // Railway's environment is the environment's name.
        let api = m.targets["api@staging"]
            .get::<crate::targets::railway::RailwaySpec>()
            .unwrap();
        assert_eq!(api.environment, "staging");
        let app = m.targets["app@staging"]
            .get::<crate::targets::env_file::EnvFileSpec>()
            .unwrap();
        assert_eq!(app.path, "s.env");
    }

    /// Railway's `environment:` is the environment's name unless an
    /// override says another; a base `environment:` shared by two
    /// environments would be one place, and is refused.
    #[test]
    fn railway_environment_defaults_and_overrides() {
        let m = load(&manifest().replacen(
            "  production: {}\n",
            "  production:\n    targets:\n      api: {environment: prod-env}\n",
            1,
        ))
        .unwrap();
        let env = |t: &str| {
            m.targets[t]
                .get::<crate::targets::railway::RailwaySpec>()
                .unwrap()
                .environment
                .clone()
        };
        assert_eq!(env("api@staging"), "staging");
        assert_eq!(env("api@production"), "prod-env");
        let e = load(&manifest().replacen(
            "service: api}",
            "service: api, environment: production}",
            1,
        ))
        .unwrap_err();
        assert!(
            e.contains("targets `api@staging` and `api@production` are the same place"),
            "{e}"
        );
    }

    #[test]
    fn mistakes_are_said_where_they_stand() {
        let base = manifest();
        for (from, to, want) in [
            ("  production: {}\n", "  production: {}\n  -bad: {}\n", "environment `-bad` is not a usable name\n  --> secrets.yaml:7:3"),
            ("environments: [production]", "environments: [prod]", "target `only` names environment `prod`, which is not defined\n  --> secrets.yaml:10:54"),
            ("app: {path: s.env}", "app: {type: railway}", "environment `staging` cannot change the type of target `app`"),
            ("app: {path: s.env}", "app: {path: \"-x\"}", "`path` of target `app@staging` starts with `-`"),
            ("      staging: |\n", "      qa: |\n", "secret `DB` has a value for environment `qa`, which is not defined"),
            ("app: {path: s.env}", "api: {service: api}", "targets `app@staging` and `app@production` are the same place"),
            ("  ALL:\n", "  A@B:\n", "with environments, `@` stands for one"),
        ] {
            assert!(base.contains(from), "{from}");
            let e = load(&base.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(want), "{to}: {e}");
        }
        // Without environments, the new lists are refused at their place.
        let flat = "version: 1\ntargets:\n  app: {type: env_file, path: a.env, environments: [x]}\nsecrets: {}\n";
        let e = load(flat).unwrap_err();
        assert!(e.starts_with("target `app` lists `environments`, but the manifest defines none\n  --> secrets.yaml:3:38"), "{e}");
    }

    /// Lifecycle per value per environment: each environment's `set_on`,
    /// `expires`, `rotate_every` and `previous` are its value's, an
    /// environment's default period applies to its values, and a value for
    /// every environment falls due on the strictest of theirs.
    #[test]
    fn lifecycle_is_per_value_per_environment() {
        let text = manifest()
            .replacen("  staging:\n", "  staging:\n    rotate_every: 90d\n", 1)
            .replacen(
                "  HALF:\n",
                "    set_on: {staging: \"2026-01-01\", production: \"2026-11-01\"}\n    rotate_every: {production: 30d}\n    expires: {production: \"2027-01-01\"}\n    previous:\n      - fingerprint: fp:aaaaaaaa\n        replaced: \"2026-11-01\"\n        environment: production\n      - fingerprint: fp:bbbbbbbb\n        replaced: \"2025-12-01\"\n  HALF:\n",
                1,
            )
            .replacen(
                "  ALL:\n",
                &format!("  SHARED:\n    targets: [app]\n    set_on: \"2026-10-01\"\n    encrypted: |\n      {ARMOR}\n      x\n  ALL:\n"),
                1,
            );
        let m = load(&text).unwrap();
        let db = &m.secrets["DB"];
        let staging = m.lifecycle_view(db, Some("staging"));
        assert_eq!(staging.set_on.as_deref(), Some("2026-01-01"));
        assert_eq!(staging.rotate_every, Some(Some(90)));
        assert_eq!(staging.expires, None);
        assert_eq!(
            staging
                .previous
                .iter()
                .map(|p| p.fingerprint.as_str())
                .collect::<Vec<_>>(),
            ["fp:bbbbbbbb"]
        );
        let production = m.lifecycle_view(db, Some("production"));
        assert_eq!(production.set_on.as_deref(), Some("2026-11-01"));
        assert_eq!(production.rotate_every, Some(Some(30)));
        assert_eq!(production.expires.as_deref(), Some("2027-01-01"));
        assert_eq!(production.previous.len(), 2);
        assert!(production.lifecycle_in.is_empty());
        // The views judge each value with its own dates.
        let split = m.values_split();
        assert_eq!(
            split.secrets["DB@staging"].set_on.as_deref(),
            Some("2026-01-01")
        );
        assert_eq!(split.secrets["DB@production"].rotate_every, Some(Some(30)));
        assert_eq!(
            m.in_env("production").secrets["DB"].set_on.as_deref(),
            Some("2026-11-01")
        );
        // One value in staging (90d) and production (no default): 90 days.
        assert_eq!(split.secrets["SHARED"].rotate_every, Some(Some(90)));
        assert_eq!(
            m.in_env("production").secrets["SHARED"].rotate_every,
            Some(Some(90))
        );
        assert_eq!(
            split.secrets["SHARED"].set_on.as_deref(),
            Some("2026-10-01")
        );
        // A secret's own period wins over its environments' defaults.
        let own = load(&text.replacen(
            "    set_on: \"2026-10-01\"\n",
            "    set_on: \"2026-10-01\"\n    rotate_every: never\n",
            1,
        ))
        .unwrap();
        assert_eq!(
            own.values_split().secrets["SHARED"].rotate_every,
            Some(None)
        );
    }

    #[test]
    fn lifecycle_maps_are_checked_where_they_stand() {
        let base = manifest();
        for (from, to, want) in [
            (
                "  ALL:\n    targets: [app, only]\n",
                "  ALL:\n    targets: [app, only]\n    set_on: {staging: \"2026-01-01\"}\n",
                "secret `ALL` has one value for every environment: `set_on` is one for it\n  --> secrets.yaml:29:13",
            ),
            (
                "  HALF:\n    targets: [app]\n",
                "  HALF:\n    targets: [app]\n    rotate_every: {staging: 30d}\n",
                "secret `HALF`: `rotate_every` names environment `staging`, where it has no value\n  --> secrets.yaml:23:20",
            ),
            (
                "  HALF:\n    targets: [app]\n",
                "  HALF:\n    targets: [app]\n    expires: {qa: \"2027-01-01\"}\n",
                "secret `HALF`: `expires` names environment `qa`, which is not defined",
            ),
            (
                "  HALF:\n    targets: [app]\n",
                "  HALF:\n    targets: [app]\n    set_on: {production: soon}\n",
                "set_on: ",
            ),
            (
                "  HALF:\n    targets: [app]\n",
                "  HALF:\n    targets: [app]\n    previous:\n      - {fingerprint: fp:aaaaaaaa, replaced: \"2026-01-01\", environment: staging}\n",
                "secret `HALF`: `previous` names environment `staging`, where it has no value",
            ),
            (
                "  production: {}\n",
                "  production: {rotate_every: sometimes}\n",
                "rotate_every: ",
            ),
        ] {
            assert!(base.contains(from), "{from}");
            let e = load(&base.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(want), "{to}: {e}");
        }
        let flat = "version: 1\ntargets:\n  app: {type: env_file, path: a.env}\nsecrets:\n  A:\n    targets: [app]\n    value: x\n    set_on: {production: \"2026-01-01\"}\n";
        let e = load(flat).unwrap_err();
        assert!(e.starts_with("secret `A`: `set_on` is one per environment, but the manifest defines none\n  --> secrets.yaml:8:13"), "{e}");
    }
}
