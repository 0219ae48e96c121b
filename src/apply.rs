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
        self.targets.iter().all(|t| t.outcome.converged())
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
    // What each target's plan allows: a write, or an outcome without one.
    let mut decided: Vec<(usize, String, String, Result<TargetDiff, Outcome>)> = Vec::new();
    for tp in plan.targets {
        let TargetPlan {
            slot,
            target,
            description,
            outcome,
        } = tp;
        let todo = match outcome {
            Err(e) => Err(Outcome::NotRead(e)),
            Ok(diff) if diff.changes.is_empty() => Err(Outcome::InSync),
            Ok(diff) => match engine.slots.get(slot).map(|s| &s.target) {
                None => Err(Outcome::Failed(TargetError::failed(
                    "the target is not part of this run",
                ))),
                Some(Err(e)) => Err(Outcome::NotRead(e.clone())),
                Some(Ok(_)) => Ok(diff),
            },
        };
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
    let targets = decided
        .into_iter()
        .zip(results)
        .map(|((_, target, description, _), w)| {
            let outcome = match w {
                Err(outcome) => outcome,
                Ok(changes) => verdict(changes, verified.next()),
            };
            TargetReport {
                target,
                description,
                outcome,
            }
        })
        .collect();
    Report { targets }
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
