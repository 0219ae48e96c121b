//! Editing the manifest: one session that locks it, reads it, decrypts what
//! an edit needs, changes its text through [`Text`] (which keeps everything
//! else byte for byte), checks the result loads, and replaces the file
//! atomically. Names are checked before any edit, with the rule and the
//! offending character.

mod env;
mod text;

pub use text::{yaml_quote, EditError, Text};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::crypto::{self, Fingerprinter, Identities};
use crate::error::Error;
use crate::lock::EditLock;
use crate::manifest::{self, Manifest, Previous, ValueSource};
use crate::secret::Secret;

/// How many former values a secret remembers.
pub const PREVIOUS_KEPT: usize = 5;

/// What storing a value did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Added,
    /// Replaced; the former value's fingerprint was recorded.
    Replaced,
    /// The manifest already held this value: nothing changed.
    Unchanged,
    /// The same value, stored another way (in clear, or encrypted): no
    /// former value to remember.
    Converted {
        plain: bool,
    },
}

/// How a value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// As the secret already is (a new secret: encrypted).
    Keep,
    Encrypted,
    /// In clear (`value:`), for configuration that is not secret.
    Plain,
}

/// Refuses a name the editor cannot write as a bare YAML key, naming the
/// first character that breaks the rule; `what` is "secret" or "target".
fn bare_name(name: &str, what: &str, example: String) -> Result<(), Error> {
    let syntax = |p: &str| {
        p.chars().all(name_char)
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match crate::targets::kind::first_bad(name, syntax) {
        Some((pos, c)) => Err(Error::usage(
            format!(
                "`{name}` cannot be a {what}'s name: {} at position {pos} is not allowed (a name starts with a letter, digit or `_` and holds only letters, digits and `_ - . @ /`)",
                describe_char(c)
            ),
            format!("for example `{example}`"),
        )),
        None => Ok(()),
    }
}

/// Characters the editor writes as a bare YAML key.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/')
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    }
}

/// Checks, before any edit, that `name` can be a secret of the manifest and
/// a key on each of `targets`; the refusal gives the rule and the offending
/// character.
pub fn check_secret_name(m: &Manifest, name: &str, targets: &[String]) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::usage(
            "a secret needs a name",
            "for example DATABASE_URL",
        ));
    }
    bare_name(name, "secret", suggest(name))?;
    for t in targets {
        let Some(spec) = m.targets.get(t) else {
            continue;
        };
        let key = m.secrets.get(name).map_or(name, |s| s.key_on(t));
        if let Err(rule) = spec.check_key(key) {
            let at = spec.offending(key);
            let at = at
                .map(|(pos, c)| format!(" ({} at position {pos})", describe_char(c)))
                .unwrap_or_default();
            return Err(Error::usage(
                format!(
                    "`{key}` cannot be a key on target `{t}` ({}): {rule}{at}",
                    spec.type_name()
                ),
                format!(
                    "choose a name such as `{}`, or give it another name on `{t}` with `rename:` in the manifest",
                    suggest(key)
                ),
            ));
        }
    }
    Ok(())
}

/// A name that follows the environment-variable rule, close to `name`.
fn suggest(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Refuses target names the manifest does not define.
fn check_targets_exist(m: &Manifest, targets: &[String]) -> Result<(), Error> {
    crate::selection::Selection::checked(
        targets,
        |t| m.knows_target(t),
        m.targets.keys().map(String::as_str),
        crate::selection::Wording::Editing,
    )
    .map(drop)
}

/// A manifest opened for editing: its text, and the keys to re-encrypt.
/// It holds the manifest's edit lock until dropped.
pub struct Editor {
    pub manifest: Manifest,
    text: Text,
    identity: Option<PathBuf>,
    ids: Option<Identities>,
    fingerprints: Option<Fingerprinter>,
    _lock: EditLock,
}

impl Editor {
    /// Takes the edit lock (waiting briefly for another editor), then reads
    /// the manifest.
    pub fn open(path: &Path, identity: Option<&Path>) -> Result<Editor, Error> {
        let lock = crate::lock::lock(path)?;
        let manifest = manifest::load(path)?;
        Ok(Editor {
            text: Text::new(&manifest.source),
            manifest,
            identity: identity.map(Path::to_path_buf),
            ids: None,
            fingerprints: None,
            _lock: lock,
        })
    }

    pub fn identities(&mut self) -> Result<&Identities, Error> {
        if self.ids.is_none() {
            self.ids = Some(crypto::find_identities(self.identity.as_deref())?);
        }
        Ok(self.ids.as_ref().expect("set above"))
    }

    /// Who a value for every environment is encrypted to: the recipients
    /// (with environments, theirs too).
    fn recipients(&self) -> Result<Vec<crypto::Recipient>, Error> {
        if self.manifest.recipients.is_empty() {
            return Err(Error::usage(
                "the manifest lists no recipients, so nobody could decrypt this value",
                "add one with `secretsync recipients add age1…`",
            ));
        }
        Ok(self.manifest.recipients_for(None))
    }

    /// The manifest's fingerprinter; a manifest without a key gets a new one.
    pub fn fingerprinter(&mut self) -> Result<Fingerprinter, Error> {
        if let Some(f) = &self.fingerprints {
            return Ok(f.clone());
        }
        let f = match self.manifest.fingerprint_key.clone() {
            Some(armored) => {
                let ids = self.identities()?;
                Fingerprinter::new(Some(&crypto::decrypt(ids, &armored, "fingerprint_key")?))
            }
            None => {
                let key = crypto::new_fingerprint_key();
                let armored = crypto::encrypt(&self.recipients()?, key.expose().as_bytes())?;
                self.text.set_fingerprint_key(&armored);
                Fingerprinter::new(Some(&key))
            }
        };
        self.fingerprints = Some(f.clone());
        Ok(f)
    }

    /// The current value of a secret, decrypted.
    pub fn value_of(&mut self, name: &str) -> Result<Option<Secret>, Error> {
        let Some(def) = self.manifest.secrets.get(name).cloned() else {
            return Ok(None);
        };
        Ok(Some(match def.value {
            ValueSource::Plain(v) => Secret::new(v),
            ValueSource::Encrypted(armored) => {
                let ids = self.identities()?;
                crypto::decrypt(ids, &armored, &format!("secret `{name}`"))?
            }
        }))
    }

    /// Whether `name` is stored in clear.
    pub fn is_plain(&self, name: &str) -> bool {
        self.manifest
            .secrets
            .get(name)
            .is_some_and(|s| matches!(s.value, ValueSource::Plain(_)))
    }

    /// Encrypts `value` under `name`, recording the replaced value's
    /// fingerprint and today's date. `targets` apply to a new secret.
    pub fn store(
        &mut self,
        name: &str,
        value: &Secret,
        targets: &[String],
    ) -> Result<Stored, Error> {
        self.store_as(name, value, targets, Storage::Keep)
    }

    /// As [`Editor::store`], choosing how the value is stored. An existing
    /// plain value stays plain with [`Storage::Keep`].
    pub fn store_as(
        &mut self,
        name: &str,
        value: &Secret,
        targets: &[String],
        storage: Storage,
    ) -> Result<Stored, Error> {
        check_targets_exist(&self.manifest, targets)?;
        if self
            .manifest
            .secrets
            .get(name)
            .is_some_and(|s| s.per_environment())
        {
            return Err(Error::usage(
                format!("`{name}` has a value per environment"),
                format!("set one environment's value with `secretsync set {name} --env ENV`"),
            ));
        }
        let reach: Vec<String> = match self.manifest.secrets.get(name) {
            Some(s) => s.targets.clone(),
            None => targets.to_vec(),
        };
        check_secret_name(&self.manifest, name, &reach)?;
        // Refused at input time, not at plan time (see src/holdable.rs).
        crate::holdable::check(&self.manifest, name, targets, value)?;
        let plain = match storage {
            Storage::Keep => self.is_plain(name),
            Storage::Encrypted => false,
            Storage::Plain => true,
        };
        let old = self.value_of(name)?;
        if old.as_ref() == Some(value) && plain == self.is_plain(name) {
            return Ok(Stored::Unchanged);
        }
        let fp = self.fingerprinter()?;
        if plain {
            self.text
                .set_plain(name, value.expose(), targets)
                .map_err(|e| Error::other(e.0))?;
            // Exact means exact: the quoted text must read back as the value.
            let back = self.check()?;
            if !matches!(&back.secrets[name].value, ValueSource::Plain(v) if v == value.expose()) {
                return Err(Error::usage(
                    format!("`{name}` cannot be stored in clear exactly as given"),
                    "store it encrypted (without --plain)",
                ));
            }
        } else {
            let armored = crypto::encrypt(&self.recipients()?, value.expose().as_bytes())?;
            self.text
                .set_encrypted(name, &armored, targets)
                .map_err(|e| Error::other(e.0))?;
        }
        let Some(old) = old else {
            self.record_set_on(name)?;
            return Ok(Stored::Added);
        };
        if old == *value {
            // Only the storage changed (plain <-> encrypted): no new value.
            return Ok(Stored::Converted { plain });
        }
        self.keep_previous(name, None, &old, &fp)?;
        self.record_set_on(name)?;
        Ok(Stored::Replaced)
    }

    /// Puts the fingerprint of `old`, the value `name` had (in `env`, for a
    /// value per environment), first under its `previous:` (dated today),
    /// keeping at most [`PREVIOUS_KEPT`] per value.
    fn keep_previous(
        &mut self,
        name: &str,
        env: Option<&str>,
        old: &Secret,
        fp: &crate::crypto::Fingerprinter,
    ) -> Result<(), Error> {
        let old_fp = fp.fingerprint(old).expect("the fingerprinter is keyed");
        let env = env.map(str::to_string);
        let mut previous = vec![Previous {
            fingerprint: old_fp.clone(),
            replaced: crate::time::today(),
            env: env.clone(),
        }];
        previous.extend(
            self.manifest.secrets[name]
                .previous
                .iter()
                .filter(|p| p.fingerprint != old_fp || p.env != env)
                .cloned(),
        );
        let mut kept: BTreeMap<Option<String>, usize> = BTreeMap::new();
        previous.retain(|p| {
            let n = kept.entry(p.env.clone()).or_default();
            *n += 1;
            *n <= PREVIOUS_KEPT
        });
        self.text
            .set_previous(name, &previous)
            .map_err(|e| Error::other(e.0))
    }

    /// Records today as the date the current value of `name` was set, from
    /// which its rotation falls due (src/lifecycle.rs).
    fn record_set_on(&mut self, name: &str) -> Result<(), Error> {
        self.text
            .set_secret_field(name, "set_on", &format!("\"{}\"", crate::time::today()))
            .map_err(|e| Error::other(e.0))
    }

    /// Records today as the date `env`'s value of `name` was set, keeping
    /// the other environments' dates (#27): `set_on` becomes a map over
    /// `envs`, the environments it has a value in.
    fn record_set_on_in(&mut self, name: &str, env: &str, envs: &[String]) -> Result<(), Error> {
        let old = self.manifest.secrets.get(name);
        let mut dates = Vec::new();
        for e in envs {
            let date = if e == env {
                Some(crate::time::today())
            } else {
                old.and_then(|d| {
                    d.lifecycle_in
                        .get(e)
                        .and_then(|l| l.set_on.clone())
                        .or_else(|| d.set_on.clone())
                })
            };
            if let Some(date) = date {
                dates.push(format!("{e}: \"{date}\""));
            }
        }
        self.text
            .set_secret_field(name, "set_on", &format!("{{{}}}", dates.join(", ")))
            .map_err(|e| Error::other(e.0))
    }

    /// Records how secretsync makes the value of `name` (`generate:`).
    pub fn set_generate(&mut self, name: &str, spec: &crate::generate::Spec) -> Result<(), Error> {
        self.text
            .set_secret_field(name, "generate", &spec.yaml())
            .map_err(|e| Error::other(e.0))
    }

    /// Sets the targets of an existing secret. Returns whether they changed.
    pub fn set_targets(&mut self, name: &str, targets: &[String]) -> Result<bool, Error> {
        let Some(def) = self.manifest.secrets.get(name) else {
            return Err(no_secret(&self.manifest, name));
        };
        // The targets as written (with environments, not their instances).
        if def.listed == targets {
            return Ok(false);
        }
        if targets.is_empty() {
            return Err(Error::usage(
                format!("that would leave `{name}` without a target"),
                format!("to remove the secret, run `secretsync unset {name}`"),
            ));
        }
        check_targets_exist(&self.manifest, targets)?;
        check_secret_name(&self.manifest, name, targets)?;
        self.text
            .set_targets(name, targets)
            .map_err(|e| Error::other(e.0))?;
        Ok(true)
    }

    /// Removes a secret, recording its value's fingerprint under `removed:`
    /// so that plans still recognise the value where it was left behind.
    pub fn unset(&mut self, name: &str) -> Result<(), Error> {
        if !self.manifest.secrets.contains_key(name) {
            return Err(no_secret(&self.manifest, name));
        }
        // A value per environment: each one's fingerprint is remembered.
        let envs: Vec<String> = self.manifest.secrets[name].values.keys().cloned().collect();
        let mut values = Vec::new();
        if envs.is_empty() {
            values.push(self.value_of(name)?.expect("checked above"));
        }
        for env in &envs {
            values.extend(self.value_in(name, env)?);
        }
        let fp = self.fingerprinter()?;
        self.text
            .remove_secret(name)
            .map_err(|e| Error::other(e.0))?;
        for value in &values {
            let f = fp.fingerprint(value).expect("the fingerprinter is keyed");
            self.text.add_removed(name, &f, &crate::time::today());
        }
        Ok(())
    }

    /// Adds a target definition; `fields` are YAML values in order.
    pub fn add_target(&mut self, name: &str, fields: &[(&str, String)]) -> Result<(), Error> {
        if self.manifest.targets.contains_key(name) {
            return Err(Error::usage(
                format!("target `{name}` exists already"),
                format!("remove it first with `secretsync target remove {name}`, or choose another name"),
            ));
        }
        bare_name(name, "target", suggest(name).to_lowercase())?;
        self.text
            .add_target(name, fields)
            .map_err(|e| Error::other(e.0))
    }

    /// Removes a target definition no secret uses.
    pub fn remove_target(&mut self, name: &str) -> Result<(), Error> {
        if !self.manifest.targets.contains_key(name) {
            let names: Vec<&str> = self.manifest.targets.keys().map(String::as_str).collect();
            return Err(Error::usage(
                format!("no target `{name}`"),
                format!("targets: {}", names.join(", ")),
            ));
        }
        let users: Vec<&str> = self
            .manifest
            .secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| t == name))
            .map(|s| s.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::usage(
                format!(
                    "target `{name}` is still used by {} secret(s): {}",
                    users.len(),
                    users.join(", ")
                ),
                format!(
                    "take it off them first: `secretsync targets remove KEY {name}` (or `secretsync unset KEY`)"
                ),
            ));
        }
        self.text.remove_target(name).map_err(|e| Error::other(e.0))
    }

    /// Encrypts every value (and the fingerprint key) again to the
    /// recipients listed in the text being edited.
    pub fn rekey(&mut self) -> Result<usize, Error> {
        // A manifest without a fingerprint key gets one (saved plans need it).
        if self.manifest.fingerprint_key.is_none() {
            self.fingerprinter()?;
        }
        let current = manifest::parse(&self.manifest.path, self.text.render())?;
        let recipients = current.recipients_for(None);
        if recipients.is_empty() {
            return Err(Error::usage(
                "no recipients would be left",
                "keep at least one recipient",
            ));
        }
        let mut count = 0;
        if let Some(armored) = current.fingerprint_key.clone() {
            let key = crypto::decrypt(self.identities()?, &armored, "fingerprint_key")?;
            self.text
                .set_fingerprint_key(&crypto::encrypt(&recipients, key.expose().as_bytes())?);
        }
        for (name, def) in &current.secrets {
            if def.per_environment() {
                // Each environment's value to that environment's recipients.
                let mut entries = Vec::new();
                for (env, v) in &def.values {
                    if let ValueSource::Encrypted(armored) = v {
                        let v = crypto::decrypt(
                            self.identities()?,
                            armored,
                            &format!("secret `{name}` ({env})"),
                        )?;
                        let to = current.recipients_for(Some(env));
                        entries.push((env.clone(), crypto::encrypt(&to, v.expose().as_bytes())?));
                        count += 1;
                    }
                }
                self.text
                    .set_encrypted_map(name, &entries, &[])
                    .map_err(|e| Error::other(e.0))?;
                continue;
            }
            if let ValueSource::Encrypted(armored) = &def.value {
                let v = crypto::decrypt(self.identities()?, armored, &format!("secret `{name}`"))?;
                let again = crypto::encrypt(&recipients, v.expose().as_bytes())?;
                self.text
                    .set_encrypted(name, &again, &[])
                    .map_err(|e| Error::other(e.0))?;
                count += 1;
            }
        }
        Ok(count)
    }

    pub fn add_recipient(&mut self, r: &str) -> Result<(), Error> {
        self.text.add_recipient(r).map_err(|e| Error::other(e.0))
    }

    pub fn remove_recipient(&mut self, r: &str) -> Result<(), Error> {
        self.text.remove_recipient(r).map_err(|e| Error::other(e.0))
    }

    /// The edited text, loaded again, with the manifest's own error (for
    /// edits whose content the user chose, such as a target's fields).
    pub fn check_input(&self) -> Result<Manifest, manifest::ManifestError> {
        manifest::parse(&self.manifest.path, self.text.render())
    }

    /// The edited text, loaded again to prove it is valid. The commands
    /// refuse bad requests before editing; this is the last guard.
    pub fn check(&self) -> Result<Manifest, Error> {
        manifest::parse(&self.manifest.path, self.text.render()).map_err(|e| Error::Other {
            message: format!(
                "the edit would leave an invalid manifest, so nothing was written:\n{e}"
            ),
            hint: Some("this is a bug in secretsync's editor: please report it".into()),
        })
    }

    /// Validates and writes the manifest atomically (the lock is released
    /// when the editor is dropped, after the rename).
    pub fn save(self) -> Result<Manifest, Error> {
        let m = self.check()?;
        crate::fsutil::write_atomic(&self.manifest.path, self.text.render().as_bytes(), 0o644)
            .map_err(|e| Error::io(&self.manifest.path, e))?;
        Ok(m)
    }
}

fn no_secret(m: &Manifest, name: &str) -> Error {
    let names: Vec<&str> = m.secrets.keys().map(String::as_str).collect();
    Error::usage(
        format!("no secret `{name}` in {}", m.path.display()),
        if names.is_empty() {
            "the manifest has no secrets yet".to_string()
        } else {
            format!("secrets: {}", names.join(", "))
        },
    )
}
