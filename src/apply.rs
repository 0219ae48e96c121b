//! Executing a plan: write each target that has changes, then read it again
//! and check that it now matches the manifest.
//!
//! Targets are independent: one failing never stops the others, and each is
//! reported on its own. A target whose state moved since the plan refuses the
//! write (conflict) rather than overwrite blindly.

use serde::Serialize;

use crate::engine::Engine;
use crate::plan::{Plan, TargetDiff, TargetPlan};
use crate::targets::{Change, Observed, TargetError};

/// What became of one target.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Nothing to do: it was in sync.
    InSync,
    /// Written, read back, and it matches the manifest.
    Verified { changes: usize },
    /// Could not be read for the plan: nothing was attempted.
    NotRead(TargetError),
    /// The write failed (nothing or, where the backend cannot be atomic, not
    /// everything was written; the verify read tells).
    Failed(TargetError),
    /// Written, but the read-back still differs (keys listed) or failed.
    NotConverged {
        keys: Vec<String>,
        error: Option<TargetError>,
    },
}

impl Outcome {
    pub fn converged(&self) -> bool {
        matches!(self, Outcome::InSync | Outcome::Verified { .. })
    }

    pub fn status(&self) -> &'static str {
        match self {
            Outcome::InSync => "in_sync",
            Outcome::Verified { .. } => "applied",
            Outcome::NotRead(_) => "unreachable",
            Outcome::Failed(_) => "failed",
            Outcome::NotConverged { .. } => "not_converged",
        }
    }
}

#[derive(Debug)]
pub struct TargetReport {
    pub target: String,
    pub description: String,
    pub outcome: Outcome,
    /// Whether what runs from the target uses its values after apply (#28);
    /// `None` when the target declares nothing that runs.
    pub live: Option<LiveAfter>,
}

/// Liveness after apply: after the write and `on_change`, read again.
#[derive(Debug, Clone, Default)]
pub struct LiveAfter {
    /// Keys known live.
    pub live: Vec<String>,
    /// Keys in place but not live: (key, reason, action).
    pub not_live: Vec<(String, String, String)>,
    /// Keys whose liveness cannot be told yet: (key, why). A Railway
    /// deployment still building, a unit not running.
    pub unknown: Vec<(String, String)>,
    /// What `--redeploy` restarted (as named in output: "service api").
    pub redeployed: Vec<String>,
    /// Why `--redeploy` could not restart what it had to.
    pub redeploy_error: Option<TargetError>,
}

impl LiveAfter {
    /// From a plan of the target (items judged live or not).
    fn of(diff: &TargetDiff) -> Option<LiveAfter> {
        let mut l = LiveAfter::default();
        for i in &diff.items {
            match &i.state {
                crate::plan::State::NotLive { reason, action } => {
                    l.not_live
                        .push((i.key.clone(), reason.clone(), action.clone()))
                }
                _ if i.live == Some(true) => l.live.push(i.key.clone()),
                _ => {
                    if let (None, Some(why)) = (i.live, &i.live_note) {
                        l.unknown.push((i.key.clone(), why.clone()));
                    }
                }
            }
        }
        (!l.live.is_empty() || !l.not_live.is_empty() || !l.unknown.is_empty()).then_some(l)
    }
}

/// How apply runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Restart what runs from the targets (Railway: redeploy the services)
    /// where it predates the values written.
    pub redeploy: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub applied: usize,
    pub in_sync: usize,
    pub failed: usize,
}

impl Report {
    pub fn converged(&self) -> bool {
        self.targets.iter().all(|t| {
            t.outcome.converged() && t.live.as_ref().is_none_or(|l| l.redeploy_error.is_none())
        })
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.targets {
            match r.outcome {
                Outcome::InSync => t.in_sync += 1,
                Outcome::Verified { .. } => t.applied += 1,
                _ => t.failed += 1,
            }
        }
        t
    }
}

/// Applies `plan` (computed by `engine`) and verifies every written target.
///
/// Writes are batched as reads are (targets of one backend that share a
/// batch key, such as the services of one Railway project, in one
/// [`crate::targets::Target::write_batch`]), and all finish before the
/// verify reads start, in one batched pass: a backend that reads several
/// targets at once (one command per host) must not verify one target while
/// another on the same host is still being written.
pub async fn apply(engine: &Engine, plan: Plan) -> Report {
    apply_with(engine, plan, Options::default()).await
}

/// [`apply`], then (`opts.redeploy`) restarting what runs from the targets
/// where it predates their values, and reading those targets once more.
pub async fn apply_with(engine: &Engine, plan: Plan, opts: Options) -> Report {
    // What each target's plan allows: a write, or an outcome without one.
    let mut decided: Vec<(usize, String, String, Result<TargetDiff, Outcome>)> = Vec::new();
    // The plans of targets in sync: their liveness is the plan's.
    let mut in_sync: Vec<Option<TargetDiff>> = Vec::new();
    for tp in plan.targets {
        let TargetPlan {
            slot,
            target,
            description,
            outcome,
        } = tp;
        let todo = match outcome {
            Err(e) => Err(Outcome::NotRead(e)),
            Ok(diff) if diff.changes.is_empty() => {
                in_sync.push(Some(diff));
                decided.push((slot, target, description, Err(Outcome::InSync)));
                continue;
            }
            Ok(diff) => match engine.slots.get(slot).map(|s| &s.target) {
                None => Err(Outcome::Failed(TargetError::failed(
                    "the target is not part of this run",
                ))),
                Some(Err(e)) => Err(Outcome::NotRead(e.clone())),
                Some(Ok(_)) => Ok(diff),
            },
        };
        in_sync.push(None);
        decided.push((slot, target, description, todo));
    }
    let writes: Vec<(usize, &Observed, &[Change])> = decided
        .iter()
        .filter_map(|(slot, _, _, todo)| {
            todo.as_ref()
                .ok()
                .map(|d| (*slot, &d.observed, d.changes.as_slice()))
        })
        .collect();
    let mut written = engine.write_slots(&writes).await.into_iter();
    let results: Vec<Result<usize, Outcome>> = decided
        .iter()
        .map(|(_, _, _, todo)| match todo {
            Err(outcome) => Err(outcome.clone()),
            Ok(diff) => match written.next() {
                Some(Ok(())) => Ok(diff.changes.len()),
                Some(Err(e)) => Err(Outcome::Failed(e)),
                None => Err(Outcome::Failed(TargetError::failed(
                    "the target was not written",
                ))),
            },
        })
        .collect();
    // One batched pass over the written targets.
    let to_verify: Vec<usize> = decided
        .iter()
        .zip(&results)
        .filter(|(_, w)| w.is_ok())
        .map(|((slot, ..), _)| *slot)
        .collect();
    let mut verified = engine.plan_some(&to_verify).await.into_iter();
    // What each target looks like now: the verify read if written, else the
    // plan's (in sync targets' liveness comes from there).
    let mut now: Vec<Option<TargetDiff>> = Vec::with_capacity(decided.len());
    let mut outcomes = Vec::with_capacity(decided.len());
    for (w, kept) in results.into_iter().zip(in_sync) {
        let (outcome, diff) = match w {
            Err(outcome) => (outcome, kept),
            Ok(changes) => {
                let after = verified.next();
                let diff = after.as_ref().and_then(|a| a.as_ref().ok()).cloned();
                (verdict(changes, after), diff)
            }
        };
        outcomes.push(outcome);
        now.push(diff);
    }
    let mut live: Vec<Option<LiveAfter>> = now
        .iter()
        .map(|d| d.as_ref().and_then(LiveAfter::of))
        .collect();
    if opts.redeploy {
        redeploy(engine, &decided, &now, &mut live).await;
    }
    let targets = decided
        .into_iter()
        .zip(outcomes)
        .zip(live)
        .map(
            |(((_, target, description, _), outcome), live)| TargetReport {
                target,
                description,
                outcome,
                live,
            },
        )
        .collect();
    Report { targets }
}

/// `--redeploy`: restarts, per target, the runners that predate the values
/// found not live (one request per batch), then reads those targets again
/// for their liveness.
async fn redeploy(
    engine: &Engine,
    decided: &[(usize, String, String, Result<TargetDiff, Outcome>)],
    now: &[Option<TargetDiff>],
    live: &mut [Option<LiveAfter>],
) {
    let mut asks: Vec<(usize, Vec<String>)> = Vec::new();
    let mut at: Vec<usize> = Vec::new();
    let mut names: Vec<Vec<String>> = Vec::new();
    for (n, diff) in now.iter().enumerate() {
        let (Some(diff), Some(l)) = (diff, &live[n]) else {
            continue;
        };
        let keys: Vec<String> = l.not_live.iter().map(|(k, _, _)| k.clone()).collect();
        let handles = crate::liveness::stale_handles(&diff.observed.live, &keys);
        if handles.is_empty() {
            continue;
        }
        names.push(
            handles
                .iter()
                .filter_map(|h| {
                    diff.observed
                        .live
                        .runs
                        .iter()
                        .find(|r| r.handle.as_ref() == Some(h))
                        .map(|r| r.who.clone())
                })
                .collect(),
        );
        asks.push((decided[n].0, handles));
        at.push(n);
    }
    if asks.is_empty() {
        return;
    }
    let done = engine.redeploy_slots(&asks).await;
    let slots: Vec<usize> = asks.iter().map(|a| a.0).collect();
    let again = engine.plan_some(&slots).await;
    for (((&n, done), again), names) in at.iter().zip(done).zip(again).zip(names) {
        let mut l = match again {
            Ok(d) => LiveAfter::of(&d).unwrap_or_default(),
            Err(_) => live[n].clone().unwrap_or_default(),
        };
        match done {
            Ok(_) => l.redeployed = names,
            Err(e) => l.redeploy_error = Some(e),
        }
        live[n] = Some(l);
    }
}

/// What the read after a write says.
fn verdict(changes: usize, after: Option<Result<TargetDiff, TargetError>>) -> Outcome {
    match after {
        Some(Ok(after)) if after.changes.is_empty() => Outcome::Verified { changes },
        Some(Ok(after)) => Outcome::NotConverged {
            keys: after.changes.into_iter().map(|c| c.key).collect(),
            error: None,
        },
        Some(Err(e)) => Outcome::NotConverged {
            keys: vec![],
            error: Some(e),
        },
        None => Outcome::Failed(TargetError::failed("the target was not read again")),
    }
}
