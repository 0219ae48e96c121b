//! One run of secretsync: the manifest loaded, its values decrypted, its
//! targets built, and the concurrent reads that turn all that into a [`Plan`].
//!
//! The engine talks to targets only through the [`Target`] trait.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::{self, StreamExt};
use indexmap::IndexMap;

use crate::crypto::{self, Fingerprinter, Identities};
use crate::error::Error;
use crate::manifest::{self, Manifest, TargetSpec, ValueSource};
use crate::plan::{self, Desired, Plan, TargetDiff, TargetPlan, Wanted};
use crate::secret::Secret;
use crate::target::{
    self, env_file::EnvFile, Change, Context, Observed, Op, Round, Target, TargetError,
};

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
    /// Target name → what the manifest wants there.
    pub desired: IndexMap<String, Desired>,
    pub fingerprints: Fingerprinter,
    parallelism: usize,
    round: AtomicU64,
}

impl Engine {
    /// Loads the manifest, checks the target selection, decrypts what the
    /// selected targets need and builds their backends.
    pub fn open(opts: &Options) -> Result<Engine, Error> {
        let manifest = manifest::load(&opts.manifest)?;
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

        let encrypted: Vec<(&str, &str)> = needed
            .iter()
            .filter_map(|s| match &s.value {
                ValueSource::Encrypted(a) => Some((s.name.as_str(), a.as_str())),
                ValueSource::Plain(_) => None,
            })
            .collect();
        let mut clear = match &identities {
            Some(ids) => decrypt_all(ids, &encrypted)?,
            None => IndexMap::new(),
        };

        let ctx = Context::new(manifest.dir());
        let mut desired: IndexMap<String, Desired> = IndexMap::new();
        let mut slots = Vec::new();
        for (name, spec) in &manifest.targets {
            if !selected(name) {
                continue;
            }
            desired.insert(name.clone(), Desired::new());
            slots.push(Slot {
                name: name.clone(),
                spec: spec.clone(),
                target: target::build(name, spec, &ctx),
            });
        }
        for s in &needed {
            let value = match &s.value {
                ValueSource::Plain(v) => Secret::new(v.clone()),
                ValueSource::Encrypted(_) => {
                    clear.shift_remove(s.name.as_str()).unwrap_or_default()
                }
            };
            for t in s.targets.iter().filter(|t| selected(t)) {
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
        Ok(Engine {
            manifest,
            slots,
            desired,
            fingerprints,
            parallelism: opts.parallelism.max(1),
            round: AtomicU64::new(0),
        })
    }

    fn next_round(&self) -> Round {
        Round(self.round.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Reads every target (at most `parallelism` at once) and compares.
    pub async fn plan(&self) -> Plan {
        self.plan_with_progress(None).await
    }

    /// [`Engine::plan`], telling `progress` as each target starts and ends.
    pub async fn plan_with_progress(&self, progress: Option<Box<dyn Progress>>) -> Plan {
        let round = self.next_round();
        let progress = progress.as_deref();
        let targets = stream::iter(self.slots.iter().map(|slot| async move {
            let description = slot.describe();
            if let Some(p) = progress {
                p.started(&slot.name, &description);
            }
            let outcome = self.plan_one(slot, round).await;
            if let Some(p) = progress {
                p.finished(&slot.name, outcome.is_ok());
            }
            TargetPlan {
                target: slot.name.clone(),
                description,
                outcome,
            }
        }))
        .buffered(self.parallelism)
        .collect()
        .await;
        Plan { targets }
    }

    /// Reads and compares one target.
    pub async fn plan_one(&self, slot: &Slot, round: Round) -> Result<TargetDiff, TargetError> {
        let target = slot.target.as_ref().map_err(Clone::clone)?;
        let wanted = &self.desired[slot.name.as_str()];
        let keys: Vec<String> = wanted.keys().cloned().collect();
        let observed = target.read(round, &keys).await?;
        let opts = plan::Options {
            prune: slot.spec.prune() && observed.complete,
            overwrite_sealed: slot.spec.overwrite_sealed(),
        };
        let (items, changes) = plan::diff(wanted, &observed, opts, &self.fingerprints);
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
            TargetSpec::EnvFile(s) => file_diff(&s.path, &observed, &changes, &self.fingerprints),
            TargetSpec::SshEnv(s) => file_diff(&s.path, &observed, &changes, &self.fingerprints),
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
    after.apply(changes).ok()?;
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
