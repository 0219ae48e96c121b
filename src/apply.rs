//! Executing a plan: write each target that has changes, then read it again
//! and check that it now matches the manifest.
//!
//! Targets are independent: one failing never stops the others, and each is
//! reported on its own. A target whose state moved since the plan refuses the
//! write (conflict) rather than overwrite blindly.

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::engine::Engine;
use crate::plan::{Plan, TargetDiff, TargetPlan};
use crate::targets::TargetError;

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
/// All writes finish before the verify reads start, in one batched pass: a
/// backend that reads several targets at once (one command per host) must not
/// verify one target while another on the same host is still being written.
pub async fn apply(engine: &Engine, plan: Plan) -> Report {
    let written: Vec<(usize, String, String, Result<usize, Outcome>)> =
        stream::iter(plan.targets.into_iter().map(|tp| write_one(engine, tp)))
            .buffered(engine.parallelism())
            .collect()
            .await;
    // One batched pass over the written targets.
    let to_verify: Vec<usize> = written
        .iter()
        .filter(|(_, _, _, w)| w.is_ok())
        .map(|(slot, _, _, _)| *slot)
        .collect();
    let mut verified = engine.plan_some(&to_verify).await.into_iter();
    let targets = written
        .iter()
        .map(|(_, target, description, w)| {
            let outcome = match w {
                Err(outcome) => outcome.clone(),
                Ok(changes) => verdict(*changes, verified.next()),
            };
            TargetReport {
                target: target.clone(),
                description: description.clone(),
                outcome,
            }
        })
        .collect();
    Report { targets }
}

/// Writes one target: `Ok(number of changes)` when written, else its outcome.
async fn write_one(
    engine: &Engine,
    tp: TargetPlan,
) -> (usize, String, String, Result<usize, Outcome>) {
    let TargetPlan {
        slot,
        target,
        description,
        outcome,
    } = tp;
    let result = match outcome {
        Err(e) => Err(Outcome::NotRead(e)),
        Ok(diff) if diff.changes.is_empty() => Err(Outcome::InSync),
        Ok(diff) => match engine.slots.get(slot).map(|s| &s.target) {
            None => Err(Outcome::Failed(TargetError::failed(
                "the target is not part of this run",
            ))),
            Some(Err(e)) => Err(Outcome::NotRead(e.clone())),
            Some(Ok(t)) => match t.write(&diff.observed, &diff.changes).await {
                Ok(()) => Ok(diff.changes.len()),
                Err(e) => Err(Outcome::Failed(e)),
            },
        },
    };
    (slot, target, description, result)
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
