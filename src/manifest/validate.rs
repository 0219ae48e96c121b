//! Validation: the raw, located manifest ([`super::raw`]) checked and turned
//! into typed [`Manifest`], [`TargetSpec`]s and [`SecretDef`]s; each mistake
//! is a [`ManifestError`] at its file, line and column, with a hint.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::environments::{instance_name, Environment};
use super::raw::{Key, RawEnvironment, RawGenerate, RawManifest, RawSecret, RawTarget};
use super::*;
use crate::targets::fields::{Field, Fields, Locator};
use crate::targets::registry;

/// The environments and which target is in which, for the secrets' checks.
pub(super) struct Layout<'a> {
    envs: &'a IndexMap<String, Draft>,
    /// Target → the environments it is instantiated in (empty without environments).
    member: &'a IndexMap<String, Vec<String>>,
}

/// The manifest's checks; where a mistake stands is the seam's [`Locator`].
pub(super) struct Checker<'a> {
    path: &'a Path,
    place: Locator<'a>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(path: &'a Path, source: &'a str) -> Self {
        Checker {
            path,
            place: Locator::new(path, source),
        }
    }

    pub(super) fn error(
        &self,
        loc: Option<Location>,
        width: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        self.place.error(loc, width, message, hint)
    }

    /// An error underlining the scalar that starts at `loc`.
    pub(super) fn at<T>(
        &self,
        s: &Spanned<T>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        self.place.at(s, message, hint)
    }

    /// An error underlining the map key `key`.
    pub(super) fn at_key(
        &self,
        key: &Spanned<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ManifestError {
        self.place.at_key(key, message, hint)
    }

    /// The checked manifest, its `source` left empty: the text is borrowed
    /// here (for errors) and moved in by [`super::parse`] afterwards.
    pub(super) fn manifest(&self, raw: RawManifest) -> Result<Manifest, ManifestError> {
        if raw.version.value != VERSION {
            return Err(self.at(
                &raw.version,
                format!("unsupported manifest version {}", raw.version.value),
                Some(format!("this secretsync reads version {VERSION}")),
            ));
        }

        let mut recipients = Vec::new();
        for r in &raw.recipients {
            match crate::crypto::parse_recipient(&r.value) {
                Ok(rec) => recipients.push(rec),
                Err(why) => {
                    return Err(self.at(
                        r,
                        format!("recipient `{}` does not parse: {why}", r.value.trim()),
                        Some("a recipient is an age public key (age1…) or an ssh-ed25519 public key line".into()),
                    ))
                }
            }
        }

        if let Some(k) = &raw.fingerprint_key {
            if !k.value.trim_start().starts_with(crate::crypto::ARMOR_BEGIN) {
                return Err(self.at(
                    k,
                    "fingerprint_key is not an armored age file",
                    Some("it must start with -----BEGIN AGE ENCRYPTED FILE-----; `secretsync init` or `secretsync rotate` writes one".into()),
                ));
            }
        }

        let envs = self.environments(raw.environments, &recipients)?;
        let mut targets = IndexMap::new();
        // With environments: target → its instances' environments, and
        // instance → (target, environment).
        let mut bases: IndexMap<String, Location> = IndexMap::new();
        let mut member: IndexMap<String, Vec<String>> = IndexMap::new();
        let mut instances = IndexMap::new();
        for (name, t) in raw.targets.unwrap_or_default() {
            self.name(&name.0, "target")?;
            if envs.is_empty() {
                let spec = self.target(&name.0, t)?;
                targets.insert(name.0.value, spec);
                continue;
            }
            bases.insert(name.0.value.clone(), t.referenced);
            let made = self.instances(&name.0, t, &envs)?;
            let list = member.entry(name.0.value.clone()).or_default();
            for (instance, env, spec) in made {
                list.push(env.clone());
                instances.insert(
                    instance.clone(),
                    super::environments::Instance {
                        target: name.0.value.clone(),
                        env,
                    },
                );
                targets.insert(instance, spec);
            }
        }
        if !envs.is_empty() {
            self.check_instances(&envs, &instances, &targets, &bases)?;
        }

        let raw_secrets = raw.secrets.unwrap_or_default();
        let mut secrets: IndexMap<String, SecretDef> = IndexMap::with_capacity(raw_secrets.len());
        // target → key on target → (secret that put it there)
        let mut landed: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let layout = Layout {
            envs: &envs,
            member: &member,
        };
        for (name, s) in raw_secrets {
            self.name(&name.0, "secret")?;
            if !envs.is_empty() && name.0.value.contains('@') {
                return Err(self.at_key(
                    &name.0,
                    format!("secret `{}`: with environments, `@` stands for one (`NAME@ENV`)", name.0.value),
                    Some("rename the secret without `@`, and give it another name on a target with `rename:`".into()),
                ));
            }
            let def = self.secret(&name.0, s, &targets, &layout, &mut landed)?;
            secrets.insert(def.name.clone(), def);
        }

        Ok(Manifest {
            path: self.path.to_path_buf(),
            source: String::new(),
            recipients,
            fingerprint_key: raw.fingerprint_key.map(|k| k.value),
            targets,
            secrets,
            removed: raw
                .removed
                .unwrap_or_default()
                .into_iter()
                .map(|r| Removed {
                    name: r.name,
                    fingerprint: r.fingerprint,
                    removed: r.removed,
                })
                .collect(),
            rotate_every: self.period(raw.rotate_every.as_ref())?.flatten(),
            environments: envs.into_iter().map(|(n, d)| (n, d.env)).collect(),
            instances,
        })
    }

    /// A lifecycle period (`90d`, `never`), refused where it stands.
    fn period(&self, s: Option<&Spanned<String>>) -> Result<Option<Option<i64>>, ManifestError> {
        s.map(|s| {
            crate::time::parse_period(&s.value)
                .map_err(|why| self.at(s, format!("rotate_every: {why}"), None))
        })
        .transpose()
    }

    /// A `generate:` spec: one count (`bytes` or `chars`) in range, written
    /// as digits, and an alphabet of the fixed list; refused where it stands.
    fn generate(
        &self,
        g: &Spanned<Box<RawGenerate>>,
        what: &dyn Fn(&str) -> String,
    ) -> Result<crate::generate::Spec, ManifestError> {
        use crate::generate::{self as gen, Alphabet, Spec};
        let hint = || {
            Some("`generate: {bytes: 32, encoding: hex}` or `generate: {chars: 40, alphabet: alnum}` (see docs/manifest.md)".to_string())
        };
        let r = &g.value;
        let name_of = |s: &Spanned<String>| {
            Alphabet::from_name(&s.value)
                .ok_or_else(|| self.at(s, what(&gen::unknown_alphabet(&s.value)), hint()))
        };
        let count = |s: &Spanned<String>, field: &str| {
            gen::count(&s.value, field).map_err(|why| self.at(s, what(&why), hint()))
        };
        match (&r.bytes, &r.chars) {
            (Some(b), None) => {
                if let Some(a) = &r.alphabet {
                    return Err(self.at(
                        a,
                        what("`alphabet` goes with `chars`; bytes take `encoding`"),
                        hint(),
                    ));
                }
                let Some(e) = &r.encoding else {
                    return Err(self.at(
                        g,
                        what("`generate: {bytes: N}` needs `encoding` (hex, base64 or base64url)"),
                        hint(),
                    ));
                };
                let n = count(b, "bytes")?;
                let enc = name_of(e)?;
                Spec::new_bytes(n, enc).map_err(|why| self.at(e, what(&why), hint()))
            }
            (None, Some(c)) => {
                if let Some(e) = &r.encoding {
                    return Err(self.at(
                        e,
                        what("`encoding` goes with `bytes`; chars take `alphabet`"),
                        hint(),
                    ));
                }
                let Some(a) = &r.alphabet else {
                    return Err(self.at(g, what("`generate: {chars: N}` needs `alphabet` (alnum, hex, base64, base64url or ascii)"), hint()));
                };
                let n = count(c, "chars")?;
                Spec::new_chars(n, name_of(a)?).map_err(|why| self.at(a, what(&why), hint()))
            }
            (Some(_), Some(c)) => Err(self.at(
                c,
                what("`generate` takes `bytes` or `chars`, not both"),
                hint(),
            )),
            (None, None) => Err(self.at(g, what("`generate` needs `bytes` or `chars`"), hint())),
        }
    }

    /// A lifecycle date, refused where it stands.
    fn date(
        &self,
        s: Option<&Spanned<String>>,
        field: &str,
    ) -> Result<Option<String>, ManifestError> {
        s.map(|s| {
            crate::time::parse_time(&s.value)
                .map(|_| s.value.clone())
                .map_err(|why| self.at(s, format!("{field}: {why}"), None))
        })
        .transpose()
    }

    /// Names are printed in plans, PR comments and annotations: no control
    /// character (a terminal escape, a line break) may forge their output,
    /// nor a bidi or invisible one make two names look alike.
    fn name(&self, name: &Spanned<String>, what: &str) -> Result<(), ManifestError> {
        if name.value.is_empty()
            || name
                .value
                .chars()
                .any(|c| c.is_control() || crate::neutral::is_deceptive(c))
        {
            return Err(self.at(
                name,
                format!("a {what} name must be non-empty and hold no control, bidi or invisible characters"),
                Some("rename it in the manifest".into()),
            ));
        }
        Ok(())
    }

    fn target(
        &self,
        name: &Spanned<String>,
        t: Spanned<RawTarget>,
    ) -> Result<TargetSpec, ManifestError> {
        if let Some((k, _)) = &t.value.environments {
            return Err(self.at_key(
                k,
                format!("target `{}` lists `environments`, but the manifest defines none", name.value),
                Some("define them at the top: `environments: {staging: {}, production: {}}` (docs/environments.md)".into()),
            ));
        }
        let loc = t.referenced;
        self.target_spec(&name.value, loc, t.value.into_iter().collect(), None)
    }

    /// A target (or an environment's instance of one, `env`) read by its
    /// kind from its fields.
    pub(super) fn target_spec(
        &self,
        name: &str,
        loc: Location,
        entries: Vec<(super::raw::Key, Spanned<Option<String>>)>,
        env: Option<&str>,
    ) -> Result<TargetSpec, ManifestError> {
        let mut fields = IndexMap::new();
        let mut kind_field = None;
        for (key, value) in entries {
            if key.0.value == "type" {
                kind_field = Some(value);
            } else {
                fields.insert(key.0.value.clone(), Field { key: key.0, value });
            }
        }
        let kind_text = kind_field
            .as_ref()
            .and_then(|k| k.value.as_ref().map(|v| (k, v)));
        let Some((kind_at, kind_name)) = kind_text else {
            return Err(self.error(
                Some(loc),
                1,
                format!("target `{name}` has no `type`"),
                Some(format!("one of: {}", registry::names())),
            ));
        };
        let Some(kind) = registry::find(kind_name) else {
            return Err(self.at(
                kind_at,
                format!("unknown target type `{kind_name}`"),
                Some(format!("one of: {}", registry::names())),
            ));
        };
        // In an environment, a kind's `environment` field (Railway's)
        // defaults to the environment's name.
        if let Some(env) = env {
            if kind.fields().contains(&"environment") && !fields.contains_key("environment") {
                let (key, value) = synthetic("environment", env, loc);
                fields.insert(key.0.value.clone(), Field { key: key.0, value });
            }
        }
        for field in fields.values() {
            let f = field.key.value.as_str();
            if let Some((why, hint)) = kind.withdrawn(f) {
                return Err(self.at_key(&field.key, why, Some(hint.to_string())));
            }
            if !kind.fields().contains(&f) {
                return Err(self.at_key(
                    &field.key,
                    format!("`{f}` does not apply to {} targets", kind.name()),
                    Some(format!(
                        "{} targets take: type, {}",
                        kind.name(),
                        kind.fields().join(", ")
                    )),
                ));
            }
        }
        // Every field but `on_change` (a shell command, never printed) is
        // printed somewhere: in plans, errors, titles. None may hold what
        // drives a terminal or spoofs a name.
        for (f, field) in &fields {
            let Some(v) = field.value.value.as_deref() else {
                continue;
            };
            if f != "on_change"
                && v.chars()
                    .any(|c| c.is_control() || crate::neutral::is_deceptive(c))
            {
                return Err(self.at(
                    &field.value,
                    format!(
                        "`{f}` of target `{name}` contains a control, bidi or invisible character"
                    ),
                    Some(
                        "write the value in plain characters: it is printed in plans and errors"
                            .into(),
                    ),
                ));
            }
        }
        kind.parse(&Fields::new(&self.place, name, kind.name(), loc, fields))
    }

    fn secret(
        &self,
        name: &Spanned<String>,
        s: Spanned<Box<RawSecret>>,
        targets: &IndexMap<String, TargetSpec>,
        layout: &Layout<'_>,
        landed: &mut BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<SecretDef, ManifestError> {
        let loc = s.referenced;
        let s = *s.value;
        let owner = format!("secret `{}`", name.value);
        let secret_envs = match &s.environments {
            None => None,
            Some(l) => Some(self.env_list(
                Some((
                    &Spanned::new("environments".to_string(), l.referenced, l.defined),
                    &l.value,
                )),
                layout.envs,
                &owner,
            )?),
        };
        let armored = |e: Spanned<String>| -> Result<String, ManifestError> {
            if !e.value.trim_start().starts_with(crate::crypto::ARMOR_BEGIN) {
                return Err(self.at(
                    &e,
                    format!("secret `{}`: `encrypted` is not an armored age file", name.value),
                    Some("it must start with -----BEGIN AGE ENCRYPTED FILE-----; write it with `secretsync set`".into()),
                ));
            }
            Ok(e.value)
        };
        let mut values: IndexMap<String, ValueSource> = IndexMap::new();
        let value = match (s.value, s.encrypted) {
            (Some(v), None) => ValueSource::Plain(v.value),
            (None, Some(e)) => match e.value.0 {
                // (`e.value` moves out; its place stays for errors.)
                super::raw::OneOrPerEnv::One(text) => {
                    ValueSource::Encrypted(armored(Spanned::new(text, e.referenced, e.defined))?)
                }
                super::raw::OneOrPerEnv::PerEnv(map) => {
                    let e = Spanned::new((), e.referenced, e.defined);
                    if layout.envs.is_empty() {
                        return Err(self.at(
                            &e,
                            format!("secret `{}`: `encrypted` is a value per environment, but the manifest defines none", name.value),
                            Some("define them at the top (`environments:`, docs/environments.md), or give one armored value".into()),
                        ));
                    }
                    for (env, text) in map {
                        if !layout.envs.contains_key(&env.0.value) {
                            return Err(self.at_key(
                                &env.0,
                                format!("secret `{}` has a value for environment `{}`, which is not defined", name.value, crate::neutral::text(&env.0.value)),
                                Some(format!("defined environments: {}", layout.envs.keys().map(String::as_str).collect::<Vec<_>>().join(", "))),
                            ));
                        }
                        if secret_envs
                            .as_ref()
                            .is_some_and(|l| !l.contains(&env.0.value))
                        {
                            return Err(self.at_key(
                                &env.0,
                                format!("secret `{}` has a value for environment `{}`, which is not one of its environments", name.value, env.0.value),
                                Some("add it to the secret's `environments: [..]`, or remove the value".into()),
                            ));
                        }
                        values.insert(env.0.value.clone(), ValueSource::Encrypted(armored(text)?));
                    }
                    if values.is_empty() {
                        return Err(self.at(
                            &e,
                            format!(
                                "secret `{}`: `encrypted` holds no environment's value",
                                name.value
                            ),
                            Some("write one with `secretsync set KEY --env ENV`".into()),
                        ));
                    }
                    // Never used for a target: each takes its environment's
                    // value (`source_on`); empty, it decrypts to nothing.
                    ValueSource::Encrypted(String::new())
                }
            },
            (Some(v), Some(_)) => return Err(self.at(
                &v,
                format!("secret `{}` has both `value` and `encrypted`", name.value),
                Some(
                    "keep `encrypted` for secrets and `value` for plain configuration, not both"
                        .into(),
                ),
            )),
            (None, None) => {
                return Err(self.error(
                    Some(loc),
                    1,
                    format!(
                        "secret `{}` has neither `value` nor `encrypted`",
                        name.value
                    ),
                    Some("add `encrypted:` (with `secretsync set`) or a plain `value:`".into()),
                ))
            }
        };

        // Without environments a target is its own instance; with them,
        // one per environment it and the secret share, where the secret
        // has a value.
        let with_envs = !layout.envs.is_empty();
        let mut target_names = Vec::new();
        let mut listed = Vec::new();
        let mut absent_in: Vec<String> = Vec::new();
        for t in &s.targets {
            let known = if with_envs {
                layout.member.contains_key(&t.value)
            } else {
                targets.contains_key(&t.value)
            };
            if !known {
                let defined: Vec<&str> = if with_envs {
                    layout.member.keys().map(String::as_str).collect()
                } else {
                    targets.keys().map(String::as_str).collect()
                };
                return Err(self.at(
                    t,
                    format!(
                        "secret `{}` names target `{}`, which is not defined",
                        name.value, t.value
                    ),
                    Some(if defined.is_empty() {
                        "define it under `targets:`".into()
                    } else {
                        format!("defined targets: {}", defined.join(", "))
                    }),
                ));
            }
            if listed.contains(&t.value) {
                return Err(self.at(
                    t,
                    format!("secret `{}` lists target `{}` twice", name.value, t.value),
                    Some("list each target once".into()),
                ));
            }
            listed.push(t.value.clone());
            if !with_envs {
                target_names.push((t.value.clone(), t));
                continue;
            }
            for env in &layout.member[&t.value] {
                if secret_envs.as_ref().is_some_and(|l| !l.contains(env)) {
                    continue;
                }
                if !values.is_empty() && !values.contains_key(env) {
                    if !absent_in.contains(env) {
                        absent_in.push(env.clone());
                    }
                    continue;
                }
                target_names.push((super::environments::instance_name(&t.value, env), t));
            }
        }

        let mut rename = BTreeMap::new();
        for (target, new_name) in &s.rename {
            if !listed.contains(&target.0.value) {
                return Err(self.at(
                    &target.0,
                    format!(
                        "secret `{}` renames itself on `{}`, which is not one of its targets",
                        name.value, target.0.value
                    ),
                    Some(format!("its targets: [{}]", listed.join(", "))),
                ));
            }
            for (instance, t) in &target_names {
                if t.value == target.0.value {
                    rename.insert(instance.clone(), new_name.value.clone());
                }
            }
        }

        for (instance, t) in &target_names {
            let key = rename.get(instance).unwrap_or(&name.value);
            let spanned: &Spanned<String> =
                match s.rename.iter().find(|(k, _)| k.0.value == t.value) {
                    Some((_, v)) => v,
                    None => t,
                };
            if let Err(rule) = targets[instance].check_key(key) {
                return Err(self.at(
                    spanned,
                    format!(
                        "{} cannot be a key on target `{}`",
                        crate::neutral::quoted_code(key),
                        instance
                    ),
                    Some(format!(
                        "{rule}; use `rename` to give it another name there"
                    )),
                ));
            }
            let on_target = landed.entry(instance.clone()).or_default();
            if let Some(first) = on_target.get(key) {
                return Err(self.at(
                    spanned,
                    format!(
                        "secrets `{first}` and `{}` both land on `{key}` on target `{}`",
                        name.value, instance
                    ),
                    Some("rename one of them on that target with `rename`".into()),
                ));
            }
            on_target.insert(key.clone(), name.value.clone());
        }
        let target_names: Vec<String> = target_names.into_iter().map(|(i, _)| i).collect();

        let mut previous = Vec::new();
        for p in s.previous {
            let env = match &p.value.environment {
                None => None,
                Some(e) => {
                    self.own_env(e, &name.value, "previous", &values, layout)?;
                    Some(e.value.clone())
                }
            };
            previous.push(Previous {
                fingerprint: p.value.fingerprint,
                replaced: p.value.replaced,
                env,
            });
        }
        // Each lifecycle field is one for the secret, or one per environment
        // where it has a value per environment (#27).
        let mut lifecycle_in: IndexMap<String, super::EnvLifecycle> = IndexMap::new();
        let (expires, per) = self.per_env(
            s.expires.as_ref(),
            "expires",
            &name.value,
            &values,
            layout,
            |v| self.date(Some(v), "expires").map(Option::unwrap),
        )?;
        for (e, v) in per {
            lifecycle_in.entry(e).or_default().expires = Some(v);
        }
        let (rotate_every, per) = self.per_env(
            s.rotate_every.as_ref(),
            "rotate_every",
            &name.value,
            &values,
            layout,
            |v| self.period(Some(v)).map(Option::unwrap),
        )?;
        for (e, v) in per {
            lifecycle_in.entry(e).or_default().rotate_every = Some(v);
        }
        let (set_on, per) = self.per_env(
            s.set_on.as_ref(),
            "set_on",
            &name.value,
            &values,
            layout,
            |v| self.date(Some(v), "set_on").map(Option::unwrap),
        )?;
        for (e, v) in per {
            lifecycle_in.entry(e).or_default().set_on = Some(v);
        }

        let generate = match &s.generate {
            None => None,
            Some(g) => {
                let what = |why: &str| format!("secret `{}`: {why}", name.value);
                if matches!(value, ValueSource::Plain(_)) {
                    return Err(self.at(
                        g,
                        what("`generate` is for encrypted secrets; a plain `value:` is configuration, never rotated"),
                        Some("remove `generate:`, or store the value encrypted (`secretsync set KEY --encrypt`)".into()),
                    ));
                }
                if let Some(e) = &s.expires {
                    return Err(self.at(
                        e,
                        what("has both `generate` (secretsync makes the value) and `expires` (someone else issued it)"),
                        Some("keep the one that is true".into()),
                    ));
                }
                Some(self.generate(g, &what)?)
            }
        };

        Ok(SecretDef {
            name: name.value.clone(),
            targets: target_names,
            value,
            values,
            environments: secret_envs.filter(|_| s.environments.is_some()),
            listed,
            absent_in,
            rename,
            previous,
            generate,
            expires,
            rotate_every,
            set_on,
            lifecycle_in,
        })
    }

    /// A lifecycle field of secret `secret`: one value (read by `read` where
    /// it stands), or a map of environment → value, for a secret with a
    /// value per environment, each environment one it has a value in.
    fn per_env<T>(
        &self,
        field: Option<&Spanned<super::raw::RawPerEnv>>,
        name: &str,
        secret: &str,
        values: &IndexMap<String, ValueSource>,
        layout: &Layout<'_>,
        read: impl Fn(&Spanned<String>) -> Result<T, ManifestError>,
    ) -> Result<OneAndPerEnv<T>, ManifestError> {
        let Some(f) = field else {
            return Ok((None, Vec::new()));
        };
        match &f.value.0 {
            super::raw::OneOrPerEnv::One(text) => Ok((
                Some(read(&Spanned::new(text.clone(), f.referenced, f.defined))?),
                Vec::new(),
            )),
            super::raw::OneOrPerEnv::PerEnv(map) => {
                if values.is_empty() {
                    return Err(self.at(
                        f,
                        if layout.envs.is_empty() {
                            format!("secret `{secret}`: `{name}` is one per environment, but the manifest defines none")
                        } else {
                            format!("secret `{secret}` has one value for every environment: `{name}` is one for it")
                        },
                        Some(format!("write one `{name}:`; a map of environments is for a secret whose `encrypted:` holds a value per environment")),
                    ));
                }
                let mut out = Vec::new();
                for (env, v) in map {
                    self.own_env(&env.0, secret, name, values, layout)?;
                    out.push((env.0.value.clone(), read(v)?));
                }
                Ok((None, out))
            }
        }
    }

    /// Refuses environment `env`, named by field `field` of secret
    /// `secret`, unless the secret has a value for it.
    fn own_env(
        &self,
        env: &Spanned<String>,
        secret: &str,
        field: &str,
        values: &IndexMap<String, ValueSource>,
        layout: &Layout<'_>,
    ) -> Result<(), ManifestError> {
        if values.contains_key(&env.value) {
            return Ok(());
        }
        let shown = crate::neutral::text(&env.value);
        Err(self.at(
            env,
            if values.is_empty() {
                format!("secret `{secret}`: `{field}` names environment `{shown}`, but the secret has one value for every environment")
            } else if layout.envs.contains_key(&env.value) {
                format!("secret `{secret}`: `{field}` names environment `{shown}`, where it has no value")
            } else {
                format!("secret `{secret}`: `{field}` names environment `{shown}`, which is not defined")
            },
            Some(if values.is_empty() {
                format!("remove the environment from `{field}`: it applies to the one value")
            } else {
                format!(
                    "its values: {}",
                    values.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                )
            }),
        ))
    }
}

/// A lifecycle field read: its one value, and each environment's own.
type OneAndPerEnv<T> = (Option<T>, Vec<(String, T)>);

// ---- environments (#27): the model is src/manifest/environments.rs ----

/// An environment while the manifest is checked: its overrides still raw.
pub(super) struct Draft {
    pub(super) env: Environment,
    pub(super) overrides: IndexMap<Key, Spanned<RawTarget>>,
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`: what an environment may be called (it is
/// a flag's value, half of `TARGET@ENV`, and Railway's default environment).
fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Checker<'_> {
    /// The environments, their recipients parsed; overrides kept for the targets.
    pub(super) fn environments(
        &self,
        raw: Option<IndexMap<Key, Spanned<RawEnvironment>>>,
        top: &[Recipient],
    ) -> Result<IndexMap<String, Draft>, ManifestError> {
        let mut out = IndexMap::new();
        for (name, env) in raw.unwrap_or_default() {
            if !env_name_ok(&name.0.value) {
                return Err(self.at_key(
                    &name.0,
                    format!(
                        "environment `{}` is not a usable name",
                        crate::neutral::text(&name.0.value)
                    ),
                    Some("an environment's name is letters, digits, `_`, `.` and `-`, starting with a letter or digit".into()),
                ));
            }
            let env = env.value;
            let (recipients, own) = match &env.recipients {
                None => (top.to_vec(), false),
                Some(list) => {
                    let mut rs = Vec::new();
                    for r in list {
                        rs.push(crate::crypto::parse_recipient(&r.value).map_err(|why| {
                            self.at(
                                r,
                                format!(
                                    "recipient `{}` of environment `{}` does not parse: {why}",
                                    r.value.trim(),
                                    name.0.value
                                ),
                                Some("a recipient is an age public key (age1…) or an ssh-ed25519 public key line".into()),
                            )
                        })?);
                    }
                    if rs.is_empty() {
                        return Err(self.at_key(
                            &name.0,
                            format!("environment `{}` lists no recipients", name.0.value),
                            Some("list who can decrypt its values, or remove `recipients:` to use the top-level ones".into()),
                        ));
                    }
                    (rs, true)
                }
            };
            let overrides: IndexMap<Key, Spanned<RawTarget>> = env.targets.unwrap_or_default();
            let shown = overrides
                .iter()
                .map(|(k, t)| {
                    (
                        k.0.value.clone(),
                        t.value
                            .fields
                            .iter()
                            .map(|(f, v)| (f.0.value.clone(), v.value.clone()))
                            .collect(),
                    )
                })
                .collect();
            out.insert(
                name.0.value.clone(),
                Draft {
                    env: Environment {
                        name: name.0.value.clone(),
                        recipients,
                        own_recipients: own,
                        overrides: shown,
                        rotate_every: self.period(env.rotate_every.as_ref())?,
                    },
                    overrides,
                },
            );
        }
        Ok(out)
    }

    /// The environments `list` (as written on a target or secret) names,
    /// each checked; `None` (not written): every environment.
    pub(super) fn env_list(
        &self,
        list: Option<(&Spanned<String>, &[Spanned<String>])>,
        envs: &IndexMap<String, Draft>,
        owner: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let Some((key, list)) = list else {
            return Ok(envs.keys().cloned().collect());
        };
        if envs.is_empty() {
            return Err(self.at_key(
                key,
                format!("{owner} lists `environments`, but the manifest defines none"),
                Some("define them at the top: `environments: {staging: {}, production: {}}` (docs/environments.md)".into()),
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for e in list {
            if !envs.contains_key(&e.value) {
                return Err(self.at(
                    e,
                    format!(
                        "{owner} names environment `{}`, which is not defined",
                        crate::neutral::text(&e.value)
                    ),
                    Some(format!(
                        "defined environments: {}",
                        envs.keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                ));
            }
            if out.contains(&e.value) {
                return Err(self.at(
                    e,
                    format!("{owner} lists environment `{}` twice", e.value),
                    Some("list each environment once".into()),
                ));
            }
            out.push(e.value.clone());
        }
        if out.is_empty() {
            return Err(self.at_key(
                key,
                format!("{owner} lists no environment"),
                Some("name at least one, or remove `environments:` for every one".into()),
            ));
        }
        Ok(out)
    }

    /// Target `name` instantiated in each of its environments: the base
    /// fields, the environment's overrides in their place, and a kind's
    /// `environment` field defaulting to the environment's name. Each
    /// instance is read by its kind as any target is (operands and all).
    pub(super) fn instances(
        &self,
        name: &Spanned<String>,
        t: Spanned<RawTarget>,
        envs: &IndexMap<String, Draft>,
    ) -> Result<Vec<(String, String, TargetSpec)>, ManifestError> {
        if name.value.contains('@') {
            return Err(self.at_key(
                name,
                format!(
                    "target `{}`: `@` separates a target from its environment",
                    name.value
                ),
                Some("rename the target without `@`".into()),
            ));
        }
        let loc = t.referenced;
        let list = t
            .value
            .environments
            .as_ref()
            .map(|(k, l)| (k, l.as_slice()));
        let member_of = self.env_list(list, envs, &format!("target `{}`", name.value))?;
        let mut out = Vec::new();
        for env in member_of {
            let draft = &envs[&env];
            let mut entries: Vec<(Key, Spanned<Option<String>>)> = t
                .value
                .fields
                .iter()
                .map(|(k, v)| (Key(clone_spanned(&k.0)), clone_spanned(v)))
                .collect();
            if let Some((_, o)) = draft
                .overrides
                .iter()
                .find(|(k, _)| k.0.value == name.value)
            {
                if let Some((k, _)) = &o.value.environments {
                    return Err(self.at_key(
                        k,
                        "an environment's override cannot list `environments`",
                        Some("list a target's environments on the target itself".into()),
                    ));
                }
                for (k, v) in &o.value.fields {
                    if k.0.value == "type" {
                        return Err(self.at_key(
                            &k.0,
                            format!(
                                "environment `{env}` cannot change the type of target `{}`",
                                name.value
                            ),
                            Some("define a target of its own, restricted to that environment with `environments: [..]`".into()),
                        ));
                    }
                    let k = Key(clone_spanned(&k.0));
                    match entries.iter_mut().find(|(e, _)| *e == k) {
                        Some(slot) => *slot = (k, clone_spanned(v)),
                        None => entries.push((k, clone_spanned(v))),
                    }
                }
            }
            let instance = instance_name(&name.value, &env);
            let spec = self.target_spec(&instance, loc, entries, Some(&env))?;
            out.push((instance, env, spec));
        }
        Ok(out)
    }

    /// Every override names a target defined in that environment; two
    /// instances of different environments are never the same place.
    pub(super) fn check_instances(
        &self,
        envs: &IndexMap<String, Draft>,
        instances: &IndexMap<String, super::environments::Instance>,
        targets: &IndexMap<String, TargetSpec>,
        bases: &IndexMap<String, Location>,
    ) -> Result<(), ManifestError> {
        for (env, d) in envs {
            for k in d.overrides.keys() {
                if !bases.contains_key(&k.0.value) {
                    return Err(self.at_key(
                        &k.0,
                        format!(
                            "environment `{env}` overrides target `{}`, which is not defined",
                            k.0.value
                        ),
                        Some(format!(
                            "defined targets: {}",
                            bases
                                .keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ));
                }
                if !targets.contains_key(&instance_name(&k.0.value, env)) {
                    return Err(self.at_key(
                        &k.0,
                        format!(
                            "environment `{env}` overrides target `{}`, which is not in that environment",
                            k.0.value
                        ),
                        Some("add the environment to the target's `environments: [..]`, or remove the override".into()),
                    ));
                }
            }
        }
        let names: Vec<&String> = instances.keys().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let (ia, ib) = (&instances[*a], &instances[*b]);
                if ia.env != ib.env && targets[*a] == targets[*b] {
                    let at = bases.get(&ib.target).copied();
                    return Err(self.error(
                        at,
                        1,
                        format!(
                            "targets `{a}` and `{b}` are the same place: one environment's values would overwrite the other's"
                        ),
                        Some(format!(
                            "give `{}` a field of its own in one environment (`environments: {{{}: {{targets: {{{}: {{…}}}}}}}}`), or keep it to one environment with `environments: [..]`",
                            ib.target, ib.env, ib.target
                        )),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn clone_spanned<T: Clone>(s: &Spanned<T>) -> Spanned<T> {
    Spanned::new(s.value.clone(), s.referenced, s.defined)
}

/// A field the expansion adds (Railway's `environment:` defaulting to the
/// environment's name), placed at the target.
pub(super) fn synthetic(field: &str, value: &str, at: Location) -> (Key, Spanned<Option<String>>) {
    (
        Key(Spanned::new(field.to_string(), at, at)),
        Spanned::new(Some(value.to_string()), at, at),
    )
}
