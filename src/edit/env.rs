//! Editing one environment's value of a secret (#27): `set KEY --env ENV`
//! and `promote`. A value for one environment is encrypted to that
//! environment's recipients only; the other environments' values are kept
//! as they are (a secret that had one value for all keeps it in each of
//! them, re-encrypted to each one's recipients).

use super::{check_secret_name, check_targets_exist, Editor, Stored};
use crate::crypto;
use crate::error::Error;
use crate::manifest::ValueSource;
use crate::secret::Secret;

impl Editor {
    /// The value of secret `name` in environment `env`, decrypted (`None`:
    /// no such secret, or none in that environment).
    pub fn value_in(&mut self, name: &str, env: &str) -> Result<Option<Secret>, Error> {
        let Some(source) = self
            .manifest
            .secrets
            .get(name)
            .and_then(|s| s.value_in(env))
            .cloned()
        else {
            return Ok(None);
        };
        Ok(Some(match source {
            ValueSource::Plain(v) => Secret::new(v),
            ValueSource::Encrypted(armored) => {
                let ids = self.identities()?;
                crypto::decrypt(ids, &armored, &format!("secret `{name}` ({env})"))?
            }
        }))
    }

    /// Stores `value` as secret `name`'s value in environment `env`,
    /// encrypted to that environment's recipients; the replaced value's
    /// fingerprint goes under `previous` and today under `set_on`, as
    /// [`Editor::store`] does. `targets` apply to a new secret.
    pub fn store_in_env(
        &mut self,
        name: &str,
        env: &str,
        value: &Secret,
        targets: &[String],
    ) -> Result<Stored, Error> {
        self.manifest
            .check_envs(&[env.to_string()])
            .map_err(|why| Error::usage(why, crate::manifest::environments::DEFINED_HINT))?;
        check_targets_exist(&self.manifest, targets)?;
        let def = self.manifest.secrets.get(name).cloned();
        if let Some(d) = &def {
            if d.environments
                .as_ref()
                .is_some_and(|l| !l.iter().any(|e| e == env))
            {
                return Err(Error::usage(
                    format!(
                        "`{name}` is not in environment `{env}` (its `environments:` lists {})",
                        d.environments.as_deref().unwrap_or_default().join(", ")
                    ),
                    "add the environment to the secret's `environments: [..]` first",
                ));
            }
        }
        let reach: Vec<String> = match &def {
            Some(s) => s.targets.clone(),
            None => targets.to_vec(),
        };
        check_secret_name(&self.manifest, name, &reach)?;
        crate::holdable::check(&self.manifest, name, targets, value)?;
        let old = self.value_in(name, env)?;
        if old.as_ref() == Some(value) {
            return Ok(Stored::Unchanged);
        }
        let fp = self.fingerprinter()?;
        // The values of the other environments, each kept (or, from one
        // value for all, re-encrypted to that environment's recipients).
        let mut entries: Vec<(String, String)> = Vec::new();
        let envs: Vec<String> = self.manifest.environments.keys().cloned().collect();
        for e in envs {
            let in_secret = def
                .as_ref()
                .is_none_or(|d| d.environments.as_ref().is_none_or(|l| l.contains(&e)));
            if !in_secret {
                continue;
            }
            let recipients = self.manifest.recipients_for(Some(&e));
            if e == env {
                entries.push((e, crypto::encrypt(&recipients, value.expose().as_bytes())?));
                continue;
            }
            match &def {
                None => {}
                Some(d) if d.per_environment() => {
                    if let Some(ValueSource::Encrypted(a)) = d.values.get(&e) {
                        entries.push((e, a.clone()));
                    }
                }
                Some(_) => {
                    if let Some(v) = self.value_in(name, &e)? {
                        entries.push((e, crypto::encrypt(&recipients, v.expose().as_bytes())?));
                    }
                }
            }
        }
        self.text
            .set_encrypted_map(name, &entries, targets)
            .map_err(|e| Error::other(e.0))?;
        let envs: Vec<String> = entries.iter().map(|(e, _)| e.clone()).collect();
        let Some(old) = old else {
            self.record_set_on_in(name, env, &envs)?;
            self.refresh(name)?;
            return Ok(Stored::Added);
        };
        self.keep_previous(name, Some(env), &old, &fp)?;
        self.record_set_on_in(name, env, &envs)?;
        self.refresh(name)?;
        Ok(Stored::Replaced)
    }

    /// Reads secret `name` back from the edited text, so that the next edit
    /// of another environment's value starts from this one.
    fn refresh(&mut self, name: &str) -> Result<(), Error> {
        let fresh = self.check()?;
        if let Some(d) = fresh.secrets.get(name) {
            self.manifest.secrets.insert(name.to_string(), d.clone());
        }
        Ok(())
    }
}
