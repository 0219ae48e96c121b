//! One run of secretsync: the manifest loaded, its values decrypted, its
//! targets built, and the concurrent reads that turn all that into a [`Plan`].
//!
//! The engine talks to targets only through the [`Target`] trait.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};
use indexmap::IndexMap;
use tokio::sync::oneshot;

use crate::crypto::{self, Fingerprinter, Identities};
use crate::error::Error;
use crate::manifest::{self, Manifest, TargetSpec, ValueSource};
use crate::plan::{self, Desired, Plan, TargetDiff, TargetPlan, Wanted};
use crate::secret::Secret;
use crate::selection::{Selection, Wording};
use crate::targets::{Change, Check, Context, Observed, Read, Target, TargetError, Write};

/// Told as each target's read starts and ends (spinners on a terminal).
pub trait Progress: Send + Sync {
    fn started(&self, target: &str, description: &str);
    fn finished(&self, target: &str, ok: bool);
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub manifest: PathBuf,
    pub identity: Option<PathBuf>,
    /// Only these targets (all when empty): a target, or with environments
    /// an instance (`TARGET@ENV`) or a target's every instance.
    pub targets: Vec<String>,
    /// Only these environments (`--env`; all when empty).
    pub envs: Vec<String>,
    /// How many targets are read or written at once.
    pub parallelism: usize,
    /// Keep SSH masters this long after the run, for the next one.
    pub ssh_persist: Option<std::time::Duration>,
    /// List every unmanaged key left alone (`-v`); by default past
    /// [`plan::UNMANAGED_SHOWN`] per target they are counted.
    pub list_unmanaged: bool,
}

/// A target of the run, built or not.
pub struct Slot {
    pub name: String,
    pub spec: TargetSpec,
    pub target: Result<Box<dyn Target>, TargetError>,
}

impl Slot {
    pub fn describe(&self) -> String {
        match &self.target {
            Ok(t) => t.describe(),
            Err(_) => self.spec.type_name().to_string(),
        }
    }
}

pub struct Engine {
    /// The manifest, without its text (a large one's would be a second
    /// copy of every value's ciphertext): [`Engine::manifest_sha256`] stands
    /// for it.
    pub manifest: Manifest,
    manifest_sha256: String,
    pub slots: Vec<Slot>,
    /// Target name → the keys the manifest manages there: all a read needs,
    /// known before any value is decrypted.
    keys: IndexMap<String, Vec<String>>,
    /// Target name → what the manifest wants there, once decrypted.
    desired: tokio::sync::OnceCell<Result<IndexMap<String, Desired>, Failure>>,
    /// The values being decrypted on a thread of their own while the
    /// targets are read; taken by the first [`Engine::ready`].
    decrypting: Mutex<Option<oneshot::Receiver<Result<Decrypted, Error>>>>,
    /// Target name → why it cannot be planned: secrets it needs that this
    /// identity cannot decrypt (set with `desired`).
    blocked: std::sync::OnceLock<Blocked>,
    pub fingerprints: Fingerprinter,
    /// Review mode: the secrets whose value the change under review chose;
    /// no fingerprint of theirs is shown, and file diffs show none at all.
    hidden: Option<std::collections::BTreeSet<String>>,
    /// Environments left out: no identity can decrypt their values.
    skipped: Vec<String>,
    parallelism: usize,
    ssh: Arc<crate::remote::SshPool>,
    list_unmanaged: bool,
}

/// Secret name → its decrypted value.
type Clear = IndexMap<String, Secret>;

use crate::undecryptable::Decrypted;

/// Target name → the errors of the secrets it needs that cannot be
/// decrypted, and what to do about them.
type Blocked = IndexMap<String, (Vec<String>, Option<String>)>;

/// A decryption failure, kept for every caller (an [`Error`] is not `Clone`).
#[derive(Clone)]
enum Failure {
    /// A value (or the identity) that cannot be decrypted: a crypto error.
    Crypto(crypto::CryptoError),
    /// Anything else, as it was said.
    Other {
        message: String,
        hint: Option<String>,
    },
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Crypto(e) => Error::Crypto(e),
            Failure::Other { message, hint } => Error::Other { message, hint },
        }
    }
}

impl Engine {
    /// Loads the manifest, checks the target selection and the identity,
    /// builds the targets' backends and starts decrypting what they need on
    /// a thread of its own: [`Engine::plan`] reads the targets meanwhile
    /// (a read needs key names only), so a plan costs the longer of the two,
    /// not their sum.
    pub fn open(opts: &Options) -> Result<Engine, Error> {
        Self::with_manifest(opts, manifest::load(&opts.manifest)?)
    }

    /// [`Engine::open`] on a manifest already loaded (review mode plans one
    /// made of a base and a head).
    pub fn with_manifest(opts: &Options, manifest: Manifest) -> Result<Engine, Error> {
        Self::start(opts, manifest, None)
    }

    /// [`Engine::with_manifest`] with values already decrypted (secret name
    /// → value of its `encrypted:`): a command that decrypted them for
    /// another purpose (`list --check` for the lifecycle, review for the
    /// changed values) hands them over instead of decrypting them a second
    /// time; the engine decrypts only the others.
    pub fn with_values(
        opts: &Options,
        manifest: Manifest,
        values: IndexMap<String, Secret>,
    ) -> Result<Engine, Error> {
        Self::start(opts, manifest, Some(values))
    }

    fn start(
        opts: &Options,
        manifest: Manifest,
        given: Option<IndexMap<String, Secret>>,
    ) -> Result<Engine, Error> {
        let selection = check_selection(opts, &manifest)?;
        let all = |name: &str| in_run(&selection, opts, &manifest, &[], name);
        let needs_key = manifest.secrets.values().any(|s| {
            s.targets
                .iter()
                .any(|t| all(t) && matches!(s.source_on(t), ValueSource::Encrypted(_)))
        });
        let identities = if needs_key {
            Some(crypto::find_identities(opts.identity.as_deref())?)
        } else if manifest.fingerprint_key.is_some() {
            // Fingerprints are a nicety: without an identity, show none.
            crypto::find_identities(opts.identity.as_deref()).ok()
        } else {
            None
        };
        // Partial identities: every environment planned, an environment
        // none of this identity's keys can read is left out and said.
        let skipped = match &identities {
            Some(ids) if opts.envs.is_empty() => manifest.unreadable_envs(&ids.publics(), &all),
            _ => Vec::new(),
        };
        let selected = |name: &str| in_run(&selection, opts, &manifest, &skipped, name);
        let needed: Vec<_> = manifest
            .secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| selected(t)))
            .collect();

        let key = match (&manifest.fingerprint_key, &identities) {
            // With environments, an identity that reads some of them may
            // not read the key: it plans them without fingerprints.
            (Some(armored), Some(ids)) if manifest.has_environments() => {
                match crypto::decrypt(ids, armored, "fingerprint_key") {
                    Ok(k) => Some(k),
                    Err(_) => {
                        crate::notice::notice(
                            "note: this identity cannot decrypt the fingerprint_key: no fingerprints are shown (encrypt it to every environment's recipients with `secretsync rekey`)",
                        );
                        None
                    }
                }
            }
            (Some(armored), Some(ids)) => Some(
                crypto::decrypt(ids, armored, "fingerprint_key")
                    .map_err(|e| crypto::explain(e, &ids.publics(), &manifest.recipients))?,
            ),
            _ => None,
        };
        let fingerprints = Fingerprinter::new(key.as_ref());
        if let Some(key) = &key {
            for s in &needed {
                if let ValueSource::Plain(p) = &s.value {
                    refuse_key_copy(&s.name, &Secret::new(p.clone()), key)?;
                }
            }
        }

        // One item per value: a secret's value per environment, or its one.
        let mut encrypted: IndexMap<String, String> = IndexMap::new();
        for s in &needed {
            for t in s.targets.iter().filter(|t| selected(t)) {
                if let ValueSource::Encrypted(a) = s.source_on(t) {
                    encrypted
                        .entry(value_key(s, t))
                        .or_insert_with(|| a.clone());
                }
            }
        }
        let encrypted: Vec<(String, String)> = encrypted.into_iter().collect();
        let (done, decrypting) = oneshot::channel();
        let recipients = manifest.recipients_for(None);
        let mut engine = Self::build(opts, &selection, manifest, Some(decrypting), skipped);
        engine.check_places()?;
        engine.fingerprints = fingerprints;
        match identities {
            Some(ids) if !encrypted.is_empty() => {
                // Values handed over by the caller are not decrypted again.
                let mut given = given.unwrap_or_default();
                let mut handed: IndexMap<String, Secret> = encrypted
                    .iter()
                    .filter_map(|(n, _)| given.shift_remove(n).map(|v| (n.clone(), v)))
                    .collect();
                drop(given);
                std::thread::spawn(move || {
                    let items: Vec<(&str, &str)> = encrypted
                        .iter()
                        .filter(|(n, _)| !handed.contains_key(n))
                        .map(|(n, a)| (n.as_str(), a.as_str()))
                        .collect();
                    // One by one: a value this identity cannot decrypt fails
                    // only the targets that need it. A value equal to the
                    // fingerprint key fails the run (#23).
                    let mut got = if items.is_empty() {
                        Decrypted::default()
                    } else {
                        crate::undecryptable::decrypt_each(&ids, &items, &recipients)
                    };
                    // In the manifest's order, as if all were decrypted here.
                    let mut clear = IndexMap::new();
                    for (n, _) in &encrypted {
                        if let Some(v) =
                            handed.shift_remove(n).or_else(|| got.clear.shift_remove(n))
                        {
                            clear.insert(n.clone(), v);
                        }
                    }
                    got.clear = clear;
                    let checked = match &key {
                        Some(key) => got
                            .clear
                            .iter()
                            .try_for_each(|(name, value)| refuse_key_copy(name, value, key))
                            .map(|()| got),
                        None => Ok(got),
                    };
                    let _ = done.send(checked);
                });
            }
            _ => {
                let _ = done.send(Ok(Decrypted::default()));
            }
        }
        Ok(engine)
    }

    /// Review mode: never show a fingerprint of these secrets' values (the
    /// change under review chose them), nor any in a file diff.
    pub fn hide_fingerprints_of(&mut self, secrets: std::collections::BTreeSet<String>) {
        self.hidden = Some(secrets);
    }

    /// The run's targets without the manifest's values, for the commands
    /// that check or read targets but compare nothing (`doctor`, `import`):
    /// the same selection, backends and connections as a plan, no identity.
    pub fn targets_only(opts: &Options, manifest: Manifest) -> Result<Engine, Error> {
        let selection = check_selection(opts, &manifest)?;
        let engine = Self::build(opts, &selection, manifest, None, Vec::new());
        engine.check_places()?;
        Ok(engine)
    }

    /// Two instances of different environments that are one place (the
    /// same file, the same Railway service and environment, the same
    /// keychain item) would take each other's values: refused before
    /// anything is read (#27). The manifest refuses identical definitions
    /// where they stand; this catches those that differ only in how.
    fn check_places(&self) -> Result<(), Error> {
        // A target's description names its place (file, host and path,
        // service and environment, keychain item).
        let mut seen: std::collections::HashMap<String, (&str, &str)> =
            std::collections::HashMap::new();
        for s in &self.slots {
            let (Some(env), Ok(t)) = (self.manifest.env_of(&s.name), s.target.as_ref()) else {
                continue;
            };
            let place = t.describe();
            match seen.get(&place) {
                Some((other, other_env)) if *other_env != env => {
                    return Err(Error::usage(
                        format!(
                            "targets `{other}` and `{}` are the same place ({place}): one environment's values would overwrite the other's",
                            s.name
                        ),
                        "give the target a field of its own in one environment (`environments: {ENV: {targets: {TARGET: {…}}}}`), or keep it to one environment with `environments: [..]`",
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(place, (&s.name, env));
                }
            }
        }
        Ok(())
    }

    /// The SHA-256 of the manifest's text as read, which a saved plan
    /// records and `apply PLAN` compares.
    pub fn manifest_sha256(&self) -> &str {
        &self.manifest_sha256
    }

    /// The environments left out of this run: no identity can decrypt
    /// their values (only when no `--env` chose them).
    pub fn skipped_envs(&self) -> &[String] {
        &self.skipped
    }

    /// Builds the selected targets' backends and starts their connections.
    fn build(
        opts: &Options,
        selection: &Selection,
        mut manifest: Manifest,
        decrypting: Option<oneshot::Receiver<Result<Decrypted, Error>>>,
        skipped: Vec<String>,
    ) -> Engine {
        let manifest_sha256 = crate::saved::manifest_sha256(&std::mem::take(&mut manifest.source));
        let selected = |name: &str| in_run(selection, opts, &manifest, &skipped, name);
        let mut ctx = Context::new(manifest.dir());
        if let Some(idle) = opts.ssh_persist {
            ctx.ssh = Arc::new(crate::remote::SshPool::persistent(idle));
        }
        let mut keys: IndexMap<String, Vec<String>> = IndexMap::new();
        let mut slots = Vec::new();
        for (name, spec) in &manifest.targets {
            if !selected(name) {
                continue;
            }
            keys.insert(name.clone(), Vec::new());
            slots.push(Slot {
                name: name.clone(),
                spec: spec.clone(),
                target: spec.build(name, &ctx),
            });
        }
        for s in manifest.secrets.values() {
            for t in s.targets.iter().filter(|t| selected(t)) {
                keys[t.as_str()].push(s.key_on(t).to_string());
            }
        }
        // The SSH handshakes are most of a cold plan: under way before the
        // decryption takes a core.
        ctx.ssh.connect_all();
        Engine {
            manifest,
            manifest_sha256,
            slots,
            keys,
            desired: tokio::sync::OnceCell::new(),
            decrypting: Mutex::new(decrypting),
            blocked: std::sync::OnceLock::new(),
            fingerprints: Fingerprinter::default(),
            hidden: None,
            skipped,
            parallelism: opts.parallelism.max(1),
            list_unmanaged: opts.list_unmanaged,
            ssh: ctx.ssh.clone(),
        }
    }

    /// `doctor`'s checks of every target (at most `parallelism` at once):
    /// per target, its description and its checks, or why it could not be built.
    pub async fn check(&self) -> Vec<(&Slot, Vec<Check>)> {
        stream::iter(self.slots.iter().map(|slot| async move {
            let checks = match &slot.target {
                Err(e) => vec![Check {
                    what: "configuration".into(),
                    outcome: Err(e.clone()),
                }],
                Ok(t) => t.check().await,
            };
            (slot, checks)
        }))
        .buffered(self.parallelism)
        .collect()
        .await
    }

    /// Reads `keys` (all when empty, if the target can list them) on one
    /// target of the run: `import`.
    pub async fn read_target(&self, name: &str, keys: &[String]) -> Result<Observed, TargetError> {
        let slot = self
            .slot(name)
            .ok_or_else(|| TargetError::failed("the target is not part of this run"))?;
        let target = slot.target.as_ref().map_err(Clone::clone)?;
        target.read(keys).await
    }

    /// Ends the run's connections, all at once (dropping the engine would
    /// close its SSH masters one after another).
    pub async fn close(self) {
        let ssh = self.ssh.clone();
        drop(self);
        ssh.close().await;
    }

    /// Waits for the values to be decrypted. `Err` when one cannot be (an
    /// identity that is not a recipient of it), for every caller.
    pub async fn ready(&self) -> Result<(), Error> {
        self.desired_map().await.map(|_| ()).map_err(Error::from)
    }

    async fn desired_map(&self) -> Result<&IndexMap<String, Desired>, Failure> {
        self.desired
            .get_or_init(|| async {
                let pending = self
                    .decrypting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let clear = match pending {
                    Some(rx) => rx.await.unwrap_or_else(|_| {
                        Err(Error::other("the decryption thread stopped unexpectedly"))
                    }),
                    None => Err(Error::other("the values were not decrypted")),
                };
                match clear {
                    Ok(Decrypted { clear, unreadable }) => {
                        let blocked = self.blocked_targets(&unreadable);
                        // No target can be planned: the run fails as a whole,
                        // with the first value's error.
                        match unreadable.values().next() {
                            Some(first) if blocked.len() == self.keys.len() => {
                                Err(Failure::Crypto(first.error.clone()))
                            }
                            _ => {
                                let _ = self.blocked.set(blocked);
                                Ok(self.wanted(clear))
                            }
                        }
                    }
                    Err(Error::Crypto(e)) => Err(Failure::Crypto(e)),
                    Err(e) => Err(Failure::Other {
                        message: e.message(),
                        hint: e.hint(),
                    }),
                }
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Target name → the reasons it cannot be planned: each secret it needs
    /// that cannot be decrypted.
    fn blocked_targets(
        &self,
        unreadable: &IndexMap<String, crate::undecryptable::Unreadable>,
    ) -> Blocked {
        let mut out: Blocked = IndexMap::new();
        for (item, u) in unreadable {
            // The item is a secret's value, or one environment's (`NAME@ENV`).
            let Some(s) = self.manifest.secrets.get(item).or_else(|| {
                item.rsplit_once('@')
                    .and_then(|(n, _)| self.manifest.secrets.get(n))
            }) else {
                continue;
            };
            for t in s
                .targets
                .iter()
                .filter(|t| self.keys.contains_key(t.as_str()) && value_key(s, t) == *item)
            {
                let entry = out.entry(t.clone()).or_default();
                entry.0.push(format!("{}; {}", u.message, u.recipients));
                entry.1 = entry.1.take().or_else(|| u.hint.clone());
            }
        }
        out
    }

    /// What the manifest wants on each selected target, values included.
    fn wanted(&self, clear: Clear) -> IndexMap<String, Desired> {
        let mut desired: IndexMap<String, Desired> = self
            .keys
            .keys()
            .map(|t| (t.clone(), Desired::new()))
            .collect();
        for s in self.manifest.secrets.values() {
            let on: Vec<&String> = s
                .targets
                .iter()
                .filter(|t| desired.contains_key(t.as_str()))
                .collect();
            if on.is_empty() {
                continue;
            }
            for t in on {
                // Each target takes its own environment's value (#27).
                let value = match s.source_on(t) {
                    ValueSource::Plain(v) => Secret::new(v.clone()),
                    // Not decrypted: its targets are blocked (`blocked_targets`).
                    ValueSource::Encrypted(_) => match clear.get(value_key(s, t).as_str()) {
                        Some(v) => v.clone(),
                        None => continue,
                    },
                };
                desired[t.as_str()].insert(
                    s.key_on(t).to_string(),
                    Wanted {
                        secret: s.name.clone(),
                        value: value.clone(),
                        previous: s.previous_in(self.manifest.env_of(t)),
                    },
                );
            }
        }
        desired
    }

    /// Reads every target (at most `parallelism` at once) while the values
    /// are decrypted, then compares. `Err` only when the manifest's values
    /// cannot be decrypted; a target that fails is reported in the plan.
    pub async fn plan(&self) -> Result<Plan, Error> {
        self.plan_with_progress(None).await
    }

    /// [`Engine::plan`], telling `progress` as each target's read starts and ends.
    pub async fn plan_with_progress(
        &self,
        progress: Option<Box<dyn Progress>>,
    ) -> Result<Plan, Error> {
        let all: Vec<usize> = (0..self.slots.len()).collect();
        let (ready, reads) = tokio::join!(self.ready(), self.read_slots(&all, progress.as_deref()));
        ready?;
        let mut targets = Vec::with_capacity(reads.len());
        for (i, (slot, observed)) in self.slots.iter().zip(reads).enumerate() {
            let outcome = match observed {
                Ok(o) => self.compare(slot, o).await,
                Err(e) => Err(e),
            };
            targets.push(TargetPlan {
                slot: i,
                target: slot.name.clone(),
                description: slot.describe(),
                outcome,
            });
        }
        Ok(Plan { targets })
    }

    /// Reads and compares the targets of `slots` (handles from a [`Plan`]:
    /// the verify pass after apply), batched as a plan is; one result each,
    /// in order.
    pub async fn plan_some(&self, slots: &[usize]) -> Vec<Result<TargetDiff, TargetError>> {
        let known: Vec<usize> = slots
            .iter()
            .copied()
            .filter(|&i| i < self.slots.len())
            .collect();
        let mut reads = self.read_slots(&known, None).await.into_iter();
        let mut out = Vec::with_capacity(slots.len());
        for &i in slots {
            out.push(match self.slots.get(i).map(|s| (s, reads.next())) {
                Some((slot, Some(Ok(observed)))) => self.compare(slot, observed).await,
                Some((_, Some(Err(e)))) => Err(e),
                _ => Err(TargetError::failed("the target is not part of this run")),
            });
        }
        out
    }

    /// Reads the slots `which` (indices): targets of one kind that declare
    /// the same [`Target::batch_key`] in one [`Target::read_batch`], at most
    /// `parallelism` groups at once. One result per slot, in order.
    async fn read_slots(
        &self,
        which: &[usize],
        progress: Option<&dyn Progress>,
    ) -> Vec<Result<Observed, TargetError>> {
        let groups = self
            .groups(which)
            .into_iter()
            .map(|g| g.into_iter().map(|p| which[p]).collect::<Vec<usize>>());
        let done = stream::iter(groups.map(|members| async move {
            for &i in &members {
                if let Some(p) = progress {
                    p.started(&self.slots[i].name, &self.slots[i].describe());
                }
            }
            let results = self.read_group(&members).await;
            for (&i, r) in members.iter().zip(&results) {
                if let Some(p) = progress {
                    p.finished(&self.slots[i].name, r.is_ok());
                }
            }
            members.into_iter().zip(results).collect::<Vec<_>>()
        }))
        .buffer_unordered(self.parallelism)
        .collect::<Vec<_>>()
        .await;
        let mut by_slot: std::collections::HashMap<usize, Result<Observed, TargetError>> =
            done.into_iter().flatten().collect();
        which
            .iter()
            .map(|i| {
                by_slot
                    .remove(i)
                    .unwrap_or_else(|| Err(TargetError::failed("the target was not read")))
            })
            .collect()
    }

    /// `slot_of` (slot indices) in batches, as positions into it: targets
    /// of one kind that declare the same [`Target::batch_key`] together, the
    /// others alone.
    fn groups(&self, slot_of: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_key: IndexMap<(&str, String), usize> = IndexMap::new();
        for (i, &s) in slot_of.iter().enumerate() {
            let slot = &self.slots[s];
            let key = slot.target.as_ref().ok().and_then(|t| t.batch_key());
            match key {
                Some(k) => {
                    let g = *by_key.entry((slot.spec.type_name(), k)).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[g].push(i);
                }
                None => groups.push(vec![i]),
            }
        }
        groups
    }

    /// Writes `writes` (slot, the state its plan saw, the changes), batched
    /// as reads are: one [`Target::write_batch`] per group, at most
    /// `parallelism` groups at once. One result per write, in order.
    pub async fn write_slots(
        &self,
        writes: &[(usize, &Observed, &[Change])],
    ) -> Vec<Result<(), TargetError>> {
        let slot_of: Vec<usize> = writes.iter().map(|w| w.0).collect();
        let groups = self.groups(&slot_of);
        let done = stream::iter(groups.into_iter().map(|members| async move {
            let built: Result<Vec<Write<'_>>, TargetError> = members
                .iter()
                .map(|&w| {
                    let (slot, observed, changes) = writes[w];
                    self.slots[slot]
                        .target
                        .as_ref()
                        .map_err(Clone::clone)
                        .map(|t| Write {
                            target: &**t,
                            observed,
                            changes,
                        })
                })
                .collect();
            let mut results = match built {
                Err(e) => vec![Err(e); members.len()],
                Ok(group) if group.len() == 1 => {
                    vec![
                        group[0]
                            .target
                            .write(group[0].observed, group[0].changes)
                            .await,
                    ]
                }
                Ok(group) => group[0].target.write_batch(&group).await,
            };
            results.resize_with(members.len(), || {
                Err(TargetError::failed(
                    "the batched write did not cover this target",
                ))
            });
            members.into_iter().zip(results).collect::<Vec<_>>()
        }))
        .buffer_unordered(self.parallelism)
        .collect::<Vec<_>>()
        .await;
        let mut by_write: std::collections::HashMap<usize, Result<(), TargetError>> =
            done.into_iter().flatten().collect();
        (0..writes.len())
            .map(|w| {
                by_write
                    .remove(&w)
                    .unwrap_or_else(|| Err(TargetError::failed("the target was not written")))
            })
            .collect()
    }

    /// `apply --redeploy` (#28): restarts, per slot, the runners its
    /// `handles` name. Targets of one batch (the services of one Railway
    /// project) share one [`Target::redeploy`], each handle once, groups
    /// one after another. One result per entry: the handles restarted.
    pub async fn redeploy_slots(
        &self,
        asks: &[(usize, Vec<String>)],
    ) -> Vec<Result<Vec<String>, TargetError>> {
        let slot_of: Vec<usize> = asks.iter().map(|a| a.0).collect();
        let mut out: Vec<Option<Result<Vec<String>, TargetError>>> = vec![None; asks.len()];
        for members in self.groups(&slot_of) {
            let mut unique: Vec<String> = Vec::new();
            for &m in &members {
                for h in &asks[m].1 {
                    if !unique.contains(h) {
                        unique.push(h.clone());
                    }
                }
            }
            let target = match &self.slots[asks[members[0]].0].target {
                Ok(t) => t,
                Err(e) => {
                    for &m in &members {
                        out[m] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            let results = target.redeploy(&unique).await;
            for &m in &members {
                let first_error = asks[m].1.iter().find_map(|h| {
                    let i = unique.iter().position(|u| u == h)?;
                    match results.get(i) {
                        Some(Ok(())) => None,
                        Some(Err(e)) => Some(e.clone()),
                        None => Some(TargetError::failed("the redeploy was not answered")),
                    }
                });
                out[m] = Some(match first_error {
                    Some(e) => Err(e),
                    None => Ok(asks[m].1.clone()),
                });
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TargetError::failed("not redeployed"))))
            .collect()
    }

    /// One group's read: alone, or batched through its first member.
    async fn read_group(&self, members: &[usize]) -> Vec<Result<Observed, TargetError>> {
        let slots: Vec<&Slot> = members.iter().map(|&i| &self.slots[i]).collect();
        let built: Result<Vec<Read<'_>>, TargetError> = slots
            .iter()
            .map(|s| {
                s.target.as_ref().map_err(Clone::clone).map(|t| Read {
                    target: &**t,
                    keys: &self.keys[s.name.as_str()],
                })
            })
            .collect();
        match built {
            Err(e) => vec![Err(e)],
            Ok(reads) if reads.len() == 1 => vec![reads[0].target.read(reads[0].keys).await],
            Ok(reads) => {
                let mut out = reads[0].target.read_batch(&reads).await;
                out.resize_with(reads.len(), || {
                    Err(TargetError::failed(
                        "the batched read did not cover this target",
                    ))
                });
                out
            }
        }
    }

    /// Compares what a target holds with what the manifest wants there.
    async fn compare(&self, slot: &Slot, observed: Observed) -> Result<TargetDiff, TargetError> {
        let target = slot.target.as_ref().map_err(Clone::clone)?;
        let desired = self
            .desired_map()
            .await
            .map_err(|f| TargetError::failed(Error::from(f).to_string()))?;
        if let Some((why, hint)) = self.blocked.get().and_then(|b| b.get(&slot.name)) {
            return Err(
                TargetError::failed(format!("not planned: {}", why.join("; "))).with_hint(format!(
                    "{}; the other targets are planned",
                    hint.as_deref()
                        .unwrap_or("plan with an identity the value is encrypted to")
                )),
            );
        }
        let wanted = &desired[slot.name.as_str()];
        let opts = plan::Options {
            prune: slot.spec.prune() && observed.complete,
            overwrite_sealed: slot.spec.overwrite_sealed(),
            list_unmanaged: self.list_unmanaged,
        };
        let (mut items, changes, unmanaged_hidden) =
            plan::diff_summarised(wanted, &observed, opts, &self.fingerprints);
        plan::mark_removed(&mut items, &self.manifest.removed);
        if let Some(hidden) = &self.hidden {
            for i in &mut items {
                if i.secret.as_ref().is_some_and(|s| hidden.contains(s)) {
                    i.manifest_fingerprint = None;
                }
            }
        }
        for c in &changes {
            if let Some(v) = c.op.value() {
                target.check_value(v).map_err(|why| {
                    TargetError::invalid(format!(
                        "the value of `{}` cannot be written to this target: {why}",
                        c.key
                    ))
                    .with_hint(
                        "change the value in the manifest, or keep this secret off this target",
                    )
                })?;
            }
        }
        let file_diff = if changes.is_empty() {
            None
        } else {
            // In review, no fingerprint in a file diff: its lines mix
            // values the change chose with the target's.
            let unkeyed = Fingerprinter::default();
            let fp = if self.hidden.is_some() {
                &unkeyed
            } else {
                &self.fingerprints
            };
            target.file_diff(&observed, &changes, fp)
        };
        let mut observed = observed;
        let notes = target.change_notes(&observed, &changes);
        observed.notes.extend(notes);
        observed.notes.extend(self.absent_notes(&slot.name));
        Ok(TargetDiff {
            items,
            changes,
            file_diff,
            observed,
            unmanaged_hidden,
        })
    }

    /// On an instance: the secrets that list its target but have no value
    /// for its environment, so do not reach it (#27).
    fn absent_notes(&self, name: &str) -> Vec<String> {
        let Some(inst) = self.manifest.instances.get(name) else {
            return Vec::new();
        };
        self.manifest
            .secrets
            .values()
            .filter(|s| s.absent_in.contains(&inst.env) && s.listed.contains(&inst.target))
            .map(|s| {
                format!(
                    "`{}` has no value for environment `{}`: not written here",
                    crate::neutral::text(&s.name),
                    inst.env
                )
            })
            .collect()
    }

    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    pub fn manifest_path(&self) -> &Path {
        &self.manifest.path
    }

    /// Secret name → its decrypted value, for the secrets on the selected
    /// targets (what `plan` judges the lifecycle of: src/lifecycle.rs).
    pub async fn values(&self) -> Result<IndexMap<String, Secret>, Error> {
        self.ready().await?;
        let mut out = IndexMap::new();
        if let Ok(desired) = self.desired_map().await {
            for w in desired.values().flat_map(|d| d.values()) {
                out.entry(w.secret.clone())
                    .or_insert_with(|| w.value.clone());
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// [`Engine::values`] with a value per environment keyed `NAME@ENV`
    /// (the names of [`Manifest::values_split`]): what `plan` judges the
    /// lifecycle of, per environment (#27).
    pub async fn values_split(&self) -> Result<IndexMap<String, Secret>, Error> {
        self.ready().await?;
        let mut out = IndexMap::new();
        if let Ok(desired) = self.desired_map().await {
            for (t, d) in desired {
                for w in d.values() {
                    let key = match self.manifest.secrets.get(&w.secret) {
                        Some(s) => value_key(s, t),
                        None => w.secret.clone(),
                    };
                    out.entry(key).or_insert_with(|| w.value.clone());
                }
            }
        }
        Ok(out)
    }
}

/// Whether the run includes target `name`: chosen by `--target` (a
/// target's name stands for its every instance: [`check_selection`]), in an
/// `--env` named, and not in an environment `skipped`.
fn in_run(
    selection: &Selection,
    opts: &Options,
    manifest: &Manifest,
    skipped: &[String],
    name: &str,
) -> bool {
    let env = manifest.env_of(name);
    selection.contains(name)
        && (opts.envs.is_empty() || env.is_some_and(|e| opts.envs.iter().any(|x| x == e)))
        && !env.is_some_and(|e| skipped.iter().any(|x| x == e))
}

/// The decryption item of `s`'s value on target `t`: the secret's name, or
/// with a value per environment, `NAME@ENV`.
fn value_key(s: &manifest::SecretDef, t: &str) -> String {
    match (s.per_environment(), t.rsplit_once('@')) {
        (true, Some((_, env))) => format!("{}@{env}", s.name),
        _ => s.name.clone(),
    }
}

/// Every `--target` must name a target of the manifest, every `--env` one
/// of its environments. With environments, a target's name stands for its
/// every instance (`TARGET@ENV` names one).
fn check_selection(opts: &Options, manifest: &Manifest) -> Result<Selection, Error> {
    manifest
        .check_envs(&opts.envs)
        .map_err(|why| Error::usage(why, crate::manifest::environments::DEFINED_HINT))?;
    let names: Vec<String> = opts
        .targets
        .iter()
        .flat_map(|t| {
            let instances: Vec<String> = manifest
                .instances
                .iter()
                .filter(|(_, i)| i.target == *t)
                .map(|(n, _)| n.clone())
                .collect();
            if instances.is_empty() {
                vec![t.clone()]
            } else {
                instances
            }
        })
        .collect();
    Selection::checked(
        &names,
        |t| manifest.targets.contains_key(t),
        manifest.targets.keys().map(String::as_str),
        Wording::InFile(&opts.manifest),
    )
}

/// Decrypts many values, spread over the machine's cores (age's X25519 work
/// dominates a plan of many secrets). Public so that the benchmark
/// (`benches/scale.rs`) times this very function.
/// A secret holding the `fingerprint_key` itself is refused: deployed, it
/// would let whoever reads that target check every fingerprint ever logged
/// and forge saved plans' MACs. Only a copy of the key's ciphertext can
/// make one (the key is random), so this is no oracle.
pub fn refuse_key_copy(name: &str, value: &Secret, key: &Secret) -> Result<(), Error> {
    if value.expose().trim() == key.expose().trim() {
        return Err(key_copy_error(name));
    }
    Ok(())
}

/// The error of [`refuse_key_copy`].
pub fn key_copy_error(name: &str) -> Error {
    {
        Error::Other {
            message: format!(
                "secret `{}` holds the value of the manifest's fingerprint_key; it is not planned or written anywhere",
                crate::neutral::text(name)
            ),
            hint: Some(
                "the fingerprint key must stay in `fingerprint_key:` only: give this secret a value of its own (secretsync rotate)"
                    .into(),
            ),
        }
    }
}

pub fn decrypt_all(
    ids: &Identities,
    items: &[(&str, &str)],
) -> Result<IndexMap<String, Secret>, Error> {
    let mut out = IndexMap::new();
    for ((name, _), got) in items.iter().zip(crypto::decrypt_many(ids, items)) {
        out.insert(name.to_string(), got?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    /// A manifest with one env file target and one secret encrypted to a
    /// fresh identity whose value is `real`.
    fn setup(real: &str) -> (tempfile::TempDir, Options) {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let key = dir.path().join("id.txt");
        std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ct = crypto::encrypt(
            &[crypto::Recipient::X25519(id.to_public())],
            real.as_bytes(),
        )
        .unwrap();
        let indented: String = ct.lines().map(|l| format!("      {l}\n")).collect();
        let manifest = dir.path().join("secrets.yaml");
        std::fs::write(
            &manifest,
            format!(
                "version: 1\nrecipients:\n  - {}\ntargets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  TOKEN:\n    targets: [app]\n    encrypted: |\n{indented}",
                id.to_public()
            ),
        )
        .unwrap();
        let opts = Options {
            manifest,
            identity: Some(key),
            targets: Vec::new(),
            envs: Vec::new(),
            parallelism: 1,
            ssh_persist: None,
            list_unmanaged: false,
        };
        (dir, opts)
    }

    #[tokio::test]
    async fn values_handed_over_are_not_decrypted_again() {
        let (_dir, opts) = setup("real-value");
        // Decrypted by the engine itself: the ciphertext's value.
        let engine = Engine::open(&opts).unwrap();
        assert_eq!(
            engine.values().await.unwrap()["TOKEN"].expose(),
            "real-value"
        );
        engine.close().await;

        // Handed over: the engine plans with these, and decrypts nothing
        // (a value it decrypted would be `real-value`).
        let given = IndexMap::from([("TOKEN".to_string(), Secret::new("given".into()))]);
        let m = manifest::load(&opts.manifest).unwrap();
        let engine = Engine::with_values(&opts, m, given).unwrap();
        assert_eq!(engine.values().await.unwrap()["TOKEN"].expose(), "given");
        engine.close().await;

        // A value not handed over is decrypted by the engine.
        let m = manifest::load(&opts.manifest).unwrap();
        let engine = Engine::with_values(&opts, m, IndexMap::new()).unwrap();
        assert_eq!(
            engine.values().await.unwrap()["TOKEN"].expose(),
            "real-value"
        );
        engine.close().await;
    }
}
