//! One run of secretsync: the manifest loaded, its values decrypted, its
//! targets built, and the concurrent reads that turn all that into a [`Plan`].
//!
//! The engine talks to targets only through the [`Target`] trait.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};
use indexmap::IndexMap;
use tokio::sync::oneshot;

use crate::crypto::{self, Fingerprinter, Identities};
use crate::envfile::EnvFile;
use crate::error::Error;
use crate::manifest::{self, Manifest, TargetSpec, ValueSource};
use crate::plan::{self, Desired, Plan, TargetDiff, TargetPlan, Wanted};
use crate::secret::Secret;
use crate::targets::{self, Change, Context, Observed, Op, Round, Target, TargetError};

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
    /// Only these targets (all when empty).
    pub targets: Vec<String>,
    /// How many targets are read or written at once.
    pub parallelism: usize,
    /// Keep SSH masters this long after the run, for the next one.
    pub ssh_persist: Option<std::time::Duration>,
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
    pub manifest: Manifest,
    pub slots: Vec<Slot>,
    /// Target name → the keys the manifest manages there: all a read needs,
    /// known before any value is decrypted.
    keys: IndexMap<String, Vec<String>>,
    /// Target name → what the manifest wants there, once decrypted.
    desired: tokio::sync::OnceCell<Result<IndexMap<String, Desired>, Failure>>,
    /// The values being decrypted on a thread of their own while the
    /// targets are read; taken by the first [`Engine::ready`].
    decrypting: Mutex<Option<oneshot::Receiver<Result<Clear, Error>>>>,
    pub fingerprints: Fingerprinter,
    parallelism: usize,
    round: AtomicU64,
    ssh: Arc<crate::remote::SshPool>,
}

/// Secret name → its decrypted value.
type Clear = IndexMap<String, Secret>;

/// A decryption failure as shown to the user (an [`Error`] is not `Clone`).
#[derive(Clone)]
struct Failure {
    message: String,
    hint: Option<String>,
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
        for t in &opts.targets {
            if !manifest.targets.contains_key(t) {
                let names: Vec<&str> = manifest.targets.keys().map(String::as_str).collect();
                return Err(Error::usage(
                    format!(
                        "--target {t}: no such target in {}",
                        opts.manifest.display()
                    ),
                    format!("targets: {}", names.join(", ")),
                ));
            }
        }
        let selected =
            |name: &str| opts.targets.is_empty() || opts.targets.iter().any(|t| t == name);

        let needed: Vec<_> = manifest
            .secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| selected(t)))
            .collect();
        let needs_key = needed
            .iter()
            .any(|s| matches!(s.value, ValueSource::Encrypted(_)));
        let identities = if needs_key {
            Some(crypto::find_identities(opts.identity.as_deref())?)
        } else if manifest.fingerprint_key.is_some() {
            // Fingerprints are a nicety: without an identity, show none.
            crypto::find_identities(opts.identity.as_deref()).ok()
        } else {
            None
        };

        let fingerprints = match (&manifest.fingerprint_key, &identities) {
            (Some(armored), Some(ids)) => {
                Fingerprinter::new(Some(&crypto::decrypt(ids, armored, "fingerprint_key")?))
            }
            _ => Fingerprinter::default(),
        };

        let encrypted: Vec<(String, String)> = needed
            .iter()
            .filter_map(|s| match &s.value {
                ValueSource::Encrypted(a) => Some((s.name.clone(), a.clone())),
                ValueSource::Plain(_) => None,
            })
            .collect();
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
                target: targets::build(name, spec, &ctx),
            });
        }
        for s in &needed {
            for t in s.targets.iter().filter(|t| selected(t)) {
                keys[t.as_str()].push(s.key_on(t).to_string());
            }
        }
        // The SSH handshakes are most of a cold plan: under way before the
        // decryption takes a core.
        ctx.ssh.connect_all();
        let (done, decrypting) = oneshot::channel();
        match identities {
            Some(ids) if !encrypted.is_empty() => {
                std::thread::spawn(move || {
                    let items: Vec<(&str, &str)> = encrypted
                        .iter()
                        .map(|(n, a)| (n.as_str(), a.as_str()))
                        .collect();
                    let _ = done.send(decrypt_all(&ids, &items));
                });
            }
            _ => {
                let _ = done.send(Ok(IndexMap::new()));
            }
        }

        Ok(Engine {
            manifest,
            slots,
            keys,
            desired: tokio::sync::OnceCell::new(),
            decrypting: Mutex::new(Some(decrypting)),
            fingerprints,
            parallelism: opts.parallelism.max(1),
            round: AtomicU64::new(0),
            ssh: ctx.ssh.clone(),
        })
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
        self.desired_map()
            .await
            .map(|_| ())
            .map_err(|f| Error::Other {
                message: f.message,
                hint: f.hint,
            })
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
                    Ok(clear) => Ok(self.wanted(clear)),
                    Err(e) => Err(Failure {
                        message: e.to_string(),
                        hint: e.hint(),
                    }),
                }
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// What the manifest wants on each selected target, values included.
    fn wanted(&self, mut clear: Clear) -> IndexMap<String, Desired> {
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
            let value = match &s.value {
                ValueSource::Plain(v) => Secret::new(v.clone()),
                ValueSource::Encrypted(_) => {
                    clear.shift_remove(s.name.as_str()).unwrap_or_default()
                }
            };
            for t in on {
                desired[t.as_str()].insert(
                    s.key_on(t).to_string(),
                    Wanted {
                        secret: s.name.clone(),
                        value: value.clone(),
                        previous: s.previous.clone(),
                    },
                );
            }
        }
        desired
    }

    fn next_round(&self) -> Round {
        Round(self.round.fetch_add(1, Ordering::SeqCst) + 1)
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
        let round = self.next_round();
        let progress = progress.as_deref();
        let reads = stream::iter(self.slots.iter().map(|slot| async move {
            let description = slot.describe();
            if let Some(p) = progress {
                p.started(&slot.name, &description);
            }
            let observed = self.read(slot, round).await;
            if let Some(p) = progress {
                p.finished(&slot.name, observed.is_ok());
            }
            (slot, description, observed)
        }))
        .buffered(self.parallelism)
        .collect::<Vec<_>>();
        let (ready, reads) = tokio::join!(self.ready(), reads);
        ready?;
        let mut targets = Vec::with_capacity(reads.len());
        for (slot, description, observed) in reads {
            let outcome = match observed {
                Ok(o) => self.compare(slot, o).await,
                Err(e) => Err(e),
            };
            targets.push(TargetPlan {
                target: slot.name.clone(),
                description,
                outcome,
            });
        }
        Ok(Plan { targets })
    }

    /// Reads and compares one target.
    pub async fn plan_one(&self, slot: &Slot, round: Round) -> Result<TargetDiff, TargetError> {
        let observed = self.read(slot, round).await?;
        self.compare(slot, observed).await
    }

    /// Reads the keys the manifest manages on one target.
    async fn read(&self, slot: &Slot, round: Round) -> Result<Observed, TargetError> {
        let target = slot.target.as_ref().map_err(Clone::clone)?;
        target.read(round, &self.keys[slot.name.as_str()]).await
    }

    /// Compares what a target holds with what the manifest wants there.
    async fn compare(&self, slot: &Slot, observed: Observed) -> Result<TargetDiff, TargetError> {
        let target = slot.target.as_ref().map_err(Clone::clone)?;
        let desired = self
            .desired_map()
            .await
            .map_err(|f| TargetError::failed(f.message))?;
        let wanted = &desired[slot.name.as_str()];
        let opts = plan::Options {
            prune: slot.spec.prune() && observed.complete,
            overwrite_sealed: slot.spec.overwrite_sealed(),
        };
        let (mut items, changes) = plan::diff(wanted, &observed, opts, &self.fingerprints);
        plan::mark_removed(&mut items, &self.manifest.removed);
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
        let file_diff = match &slot.spec {
            TargetSpec::EnvFile(s) => {
                file_diff(&s.path, s.format, &observed, &changes, &self.fingerprints)
            }
            TargetSpec::SshEnv(s) => {
                file_diff(&s.path, s.format, &observed, &changes, &self.fingerprints)
            }
            _ => None,
        };
        Ok(TargetDiff {
            items,
            changes,
            file_diff,
            observed,
        })
    }

    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The next round number, for callers that read targets themselves.
    pub fn round(&self) -> Round {
        self.next_round()
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

/// Decrypts many values, spread over the machine's cores (age's X25519 work
/// dominates a plan of many secrets). Public so that the benchmark
/// (`benches/scale.rs`) times this very function.
pub fn decrypt_all(
    ids: &Identities,
    items: &[(&str, &str)],
) -> Result<IndexMap<String, Secret>, Error> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = items.len().div_ceil(threads).max(16);
    let results: Vec<Result<Vec<(String, Secret)>, crypto::CryptoError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(name, armored)| {
                                crypto::decrypt(ids, armored, &format!("secret `{name}`"))
                                    .map(|v| (name.to_string(), v))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(crypto::CryptoError::Encrypt(
                            "a decryption thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
    let mut out = IndexMap::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A unified diff of an env file as it is and as it will be, every value
/// replaced by a marker (with a keyed fingerprint when there is a key).
fn file_diff(
    path: &str,
    format: crate::manifest::EnvFormat,
    observed: &Observed,
    changes: &[Change],
    fp: &Fingerprinter,
) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let before_text = observed.snapshot.as_ref().map_or("", Secret::expose);
    let before = EnvFile::parse(before_text).ok()?;
    let mut after = EnvFile::parse(before_text).ok()?;
    after.apply(changes, format).ok()?;
    let changed: Vec<&str> = changes
        .iter()
        .filter(|c| !matches!(c.op, Op::Delete))
        .map(|c| c.key.as_str())
        .collect();
    let changed = &changed;
    let mark = |new: bool| {
        move |key: &str, value: &Secret| {
            let tag = if new && changed.contains(&key) {
                "redacted, new"
            } else {
                "redacted"
            };
            match fp.fingerprint(value) {
                Some(f) => format!("<{tag} {f}>"),
                None => format!("<{tag}>"),
            }
        }
    };
    let a = before.redacted(&mark(false));
    let b = after.redacted(&mark(true));
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(&a, &b);
    let from = if observed.exists {
        format!("{path} (now)")
    } else {
        "/dev/null (missing)".into()
    };
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&from, &format!("{path} (planned)"))
            .missing_newline_hint(false)
            .to_string(),
    )
}
