//! Desired × observed → what to change. Pure: no I/O, easy to test.
//!
//! [`diff`] compares what the manifest wants on one target with what the
//! target holds and returns one [`Item`] per key (for display) and the
//! [`Change`]s that make the target converge (for apply).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::crypto::Fingerprinter;
use crate::liveness::{self, Verdict};
use crate::manifest::Previous;
use crate::secret::Secret;
use crate::targets::{Change, Observation, Observed, Op, TargetError};

/// What the manifest wants under one key of one target.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The secret's name in the manifest (the key may be renamed on the target).
    pub secret: String,
    pub value: Secret,
    /// Values the secret held before, newest first.
    pub previous: Vec<Previous>,
}

/// Per target: key on the target → what is wanted there.
pub type Desired = BTreeMap<String, Wanted>;

/// How a key stands on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Holds the manifest's value.
    InSync,
    /// Absent: will be added.
    Missing,
    /// Holds another value: will be changed. `replaced_on` is set when the
    /// value held is one the manifest replaced on that date (a forgotten
    /// rotation) rather than something unknown.
    Differs { replaced_on: Option<String> },
    /// Present but unreadable: cannot be compared. Replaced only when the
    /// target allows overwriting sealed values.
    Sealed { overwrite: bool },
    /// On the target only. Deleted when the target prunes.
    Unmanaged { delete: bool },
    /// Holds the manifest's value, but what runs from the target does not
    /// use it yet (#28): `reason` says how that is known, `action` what to
    /// do. Nothing to write; drift all the same.
    NotLive { reason: String, action: String },
}

/// One key of a target plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The key as named on the target.
    pub key: String,
    /// The manifest's secret, if the key is managed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(flatten)]
    pub state: State,
    /// Keyed fingerprint of the manifest's value (when a key is available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_fingerprint: Option<String>,
    /// Keyed fingerprint of the value on the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_fingerprint: Option<String>,
    /// An unmanaged key holding the value of a secret removed with `unset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedValue>,
    /// Where a differing value came from, when fingerprints can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Whether what runs from the target uses the value (#28): `false` with
    /// [`State::NotLive`], `true` when known live; absent when the target
    /// declares nothing that runs, when it cannot be told, or for a value
    /// about to be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    /// How liveness is known ("app.service (pid 812) runs with this
    /// value"), or why it cannot be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_note: Option<String>,
}

/// Where a value that differs from the manifest's came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// None of the manifest's values, current or previous: changed by hand
    /// or by another tool.
    Outside,
    /// A value the manifest held before (`replaced_on` says when it was replaced).
    Previous,
}

/// The secret an unmanaged value belonged to, and when it was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedValue {
    pub secret: String,
    pub on: String,
}

/// Marks unmanaged items whose value is one the manifest removed (by its
/// keyed fingerprint under `removed:`), so that a value left behind by
/// `unset` is recognised rather than shown as unknown.
pub fn mark_removed(items: &mut [Item], removed: &[crate::manifest::Removed]) {
    for i in items {
        if !matches!(i.state, State::Unmanaged { .. }) {
            continue;
        }
        if let Some(f) = &i.target_fingerprint {
            i.removed = removed
                .iter()
                .rev()
                .find(|r| &r.fingerprint == f)
                .map(|r| RemovedValue {
                    secret: r.name.clone(),
                    on: r.removed.clone(),
                });
        }
    }
}

impl Item {
    /// Whether this item leads to a change.
    pub fn is_change(&self) -> bool {
        match &self.state {
            State::InSync
            | State::NotLive { .. }
            | State::Unmanaged { delete: false }
            | State::Sealed { overwrite: false } => false,
            State::Missing
            | State::Differs { .. }
            | State::Unmanaged { delete: true }
            | State::Sealed { overwrite: true } => true,
        }
    }
}

/// Target options that decide what is changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Delete unmanaged keys.
    pub prune: bool,
    /// Replace values that cannot be read.
    pub overwrite_sealed: bool,
    /// Keep an item for every unmanaged key left alone (`-v`); otherwise
    /// past [`UNMANAGED_SHOWN`] they are only counted
    /// ([`TargetDiff::unmanaged_hidden`]), so that a plan's size follows
    /// what it shows, not the size of the file.
    pub list_unmanaged: bool,
}

/// Unmanaged keys left alone that a plan lists per target before it
/// summarises the rest ("1,204 more unmanaged keys left alone").
pub const UNMANAGED_SHOWN: usize = 50;

/// Compares one target. Items come sorted by key; changes in the same order.
pub fn diff(
    wanted: &Desired,
    observed: &Observed,
    opts: Options,
    fp: &Fingerprinter,
) -> (Vec<Item>, Vec<Change>) {
    let (items, changes, _) = diff_summarised(wanted, observed, opts, fp);
    (items, changes)
}

/// [`diff`], also counting the unmanaged keys left alone past the
/// [`UNMANAGED_SHOWN`] that get an item (all get one with `list_unmanaged`).
pub fn diff_summarised(
    wanted: &Desired,
    observed: &Observed,
    opts: Options,
    fp: &Fingerprinter,
) -> (Vec<Item>, Vec<Change>, usize) {
    let mut shown_unmanaged = 0usize;
    let mut hidden = 0usize;
    let mut keys: Vec<&String> = wanted.keys().chain(observed.entries.keys()).collect();
    keys.sort();
    keys.dedup();
    // Sized once: grown by doubling, the items of a 10,000-secret plan were
    // the run's peak (8 MB of them at once, old and new buffers included).
    let mut items = Vec::with_capacity(keys.len());
    let mut changes = Vec::new();

    for key in keys {
        let w = wanted.get(key);
        let o = observed.entries.get(key);
        if w.is_none() && !opts.prune && !opts.list_unmanaged {
            if shown_unmanaged >= UNMANAGED_SHOWN {
                hidden += 1;
                continue;
            }
            shown_unmanaged += 1;
        }
        let target_fingerprint = match o {
            Some(Observation::Value(v)) => fp.fingerprint(v),
            _ => None,
        };
        let (state, op) = match (w, o) {
            (Some(w), None) => (State::Missing, Some(Op::Add(w.value.clone()))),
            (Some(w), Some(Observation::Value(v)))
                if *v == w.value && !observed.is_duplicated(key) =>
            {
                (State::InSync, None)
            }
            (Some(w), Some(Observation::Value(_))) => {
                let replaced_on = target_fingerprint.as_ref().and_then(|f| {
                    w.previous
                        .iter()
                        .find(|p| &p.fingerprint == f)
                        .map(|p| p.replaced.clone())
                });
                (
                    State::Differs { replaced_on },
                    Some(Op::Update(w.value.clone())),
                )
            }
            (Some(w), Some(Observation::Sealed)) => {
                let op = opts.overwrite_sealed.then(|| Op::Update(w.value.clone()));
                (
                    State::Sealed {
                        overwrite: opts.overwrite_sealed,
                    },
                    op,
                )
            }
            (None, Some(_)) => (
                State::Unmanaged { delete: opts.prune },
                opts.prune.then_some(Op::Delete),
            ),
            (None, None) => unreachable!("every key comes from one side"),
        };
        if let Some(op) = op {
            changes.push(Change {
                key: key.clone(),
                op,
            });
        }
        let provenance = match (&state, &target_fingerprint) {
            (
                State::Differs {
                    replaced_on: Some(_),
                },
                _,
            ) => Some(Provenance::Previous),
            (State::Differs { replaced_on: None }, Some(_)) => Some(Provenance::Outside),
            _ => None,
        };
        // Liveness is judged for values in sync only: the others are about
        // to be written, and apply judges them again afterwards.
        let verdict = match (&state, w) {
            (State::InSync, Some(w)) => {
                let replaced_on = |f: &str| {
                    w.previous
                        .iter()
                        .find(|p| p.fingerprint == f)
                        .map(|p| p.replaced.clone())
                };
                liveness::judge(&observed.live, key, &w.value, fp, &replaced_on)
            }
            _ => None,
        };
        let (state, live, live_note) = match verdict {
            None => (state, None, None),
            Some(Verdict::Live(note)) => (state, Some(true), Some(note)),
            Some(Verdict::Unknown(why)) => (state, None, Some(why)),
            Some(Verdict::NotLive { reason, action }) => {
                (State::NotLive { reason, action }, Some(false), None)
            }
        };
        items.push(Item {
            key: key.clone(),
            secret: w.map(|w| w.secret.clone()),
            provenance,
            state,
            manifest_fingerprint: w.and_then(|w| fp.fingerprint(&w.value)),
            target_fingerprint,
            removed: None,
            live,
            live_note,
        });
    }
    (items, changes, hidden)
}

/// The plan of one target: its items and changes, or why it could not be read.
#[derive(Debug)]
pub struct TargetPlan {
    /// The target's handle in the run that planned it (an index into
    /// [`Engine::slots`](crate::engine::Engine::slots)): apply writes and
    /// verifies through it, never by looking the name up again.
    pub slot: usize,
    pub target: String,
    pub description: String,
    pub outcome: Result<TargetDiff, TargetError>,
}

/// A target that could be read, compared with the manifest.
#[derive(Debug, Clone)]
pub struct TargetDiff {
    pub items: Vec<Item>,
    pub changes: Vec<Change>,
    /// For env files: a unified diff of the file as it is and as it will be,
    /// every value redacted.
    pub file_diff: Option<String>,
    /// What the plan was computed from; handed back to the target on write.
    pub observed: Observed,
    /// Unmanaged keys left alone that have no item (past
    /// [`UNMANAGED_SHOWN`], without `-v`): counted, not listed.
    pub unmanaged_hidden: usize,
}

impl TargetPlan {
    pub fn changes(&self) -> &[Change] {
        self.outcome.as_ref().map_or(&[], |d| &d.changes)
    }
}

/// A whole plan.
#[derive(Debug, Default)]
pub struct Plan {
    pub targets: Vec<TargetPlan>,
}

/// Counts for the closing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub delete: usize,
    /// Values that cannot be compared and are left alone.
    pub sealed: usize,
    pub targets_in_sync: usize,
    pub targets_with_changes: usize,
    pub targets_failed: usize,
    /// Keys whose value is in place but not live (#28); shown when any.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_live: usize,
    /// Targets with nothing to write but a value not live; shown when any.
    #[serde(skip_serializing_if = "is_zero")]
    pub targets_not_live: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for t in &self.targets {
            let Ok(d) = &t.outcome else {
                s.targets_failed += 1;
                continue;
            };
            for c in &d.changes {
                match c.op {
                    Op::Add(_) => s.add += 1,
                    Op::Update(_) => s.change += 1,
                    Op::Delete => s.delete += 1,
                }
            }
            s.sealed += d
                .items
                .iter()
                .filter(|i| matches!(i.state, State::Sealed { overwrite: false }))
                .count();
            let not_live = d
                .items
                .iter()
                .filter(|i| matches!(i.state, State::NotLive { .. }))
                .count();
            s.not_live += not_live;
            if !d.changes.is_empty() {
                s.targets_with_changes += 1;
            } else if not_live > 0 {
                s.targets_not_live += 1;
            } else {
                s.targets_in_sync += 1;
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.targets.iter().any(|t| !t.changes().is_empty())
    }

    /// Whether a key is written but not live on some target (#28).
    pub fn has_not_live(&self) -> bool {
        self.targets.iter().any(|t| {
            t.outcome.as_ref().is_ok_and(|d| {
                d.items
                    .iter()
                    .any(|i| matches!(i.state, State::NotLive { .. }))
            })
        })
    }

    /// Drift for `--detailed-exitcode` and `--notify`: changes pending, or a
    /// value in place that what runs does not use.
    pub fn has_drift(&self) -> bool {
        self.has_changes() || self.has_not_live()
    }

    pub fn has_errors(&self) -> bool {
        self.targets.iter().any(|t| t.outcome.is_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret {
        Secret::new(v.to_string())
    }

    fn wanted(pairs: &[(&str, &str)]) -> Desired {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Wanted {
                        secret: format!("S_{k}"),
                        value: s(v),
                        previous: vec![],
                    },
                )
            })
            .collect()
    }

    fn observed(pairs: &[(&str, Option<&str>)]) -> Observed {
        Observed::complete(
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.map_or(Observation::Sealed, |v| Observation::Value(s(v))),
                    )
                })
                .collect(),
        )
    }

    fn states(items: &[Item]) -> Vec<(&str, State)> {
        items
            .iter()
            .map(|i| (i.key.as_str(), i.state.clone()))
            .collect()
    }

    #[test]
    fn every_state_without_prune() {
        let w = wanted(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")]);
        let o = observed(&[
            ("A", Some("1")),
            ("B", Some("old")),
            ("D", None),
            ("X", Some("x")),
        ]);
        let (items, changes) = diff(&w, &o, Options::default(), &Fingerprinter::default());
        assert_eq!(
            states(&items),
            vec![
                ("A", State::InSync),
                ("B", State::Differs { replaced_on: None }),
                ("C", State::Missing),
                ("D", State::Sealed { overwrite: false }),
                ("X", State::Unmanaged { delete: false }),
            ]
        );
        assert_eq!(
            changes,
            vec![
                Change {
                    key: "B".into(),
                    op: Op::Update(s("2"))
                },
                Change {
                    key: "C".into(),
                    op: Op::Add(s("3"))
                },
            ]
        );
        assert_eq!(items[1].secret.as_deref(), Some("S_B"));
        assert_eq!(items[4].secret, None);
    }

    #[test]
    fn prune_deletes_unmanaged_and_overwrite_replaces_sealed() {
        let w = wanted(&[("D", "4")]);
        let o = observed(&[("D", None), ("X", Some("x"))]);
        let opts = Options {
            prune: true,
            overwrite_sealed: true,
            list_unmanaged: false,
        };
        let (items, changes) = diff(&w, &o, opts, &Fingerprinter::default());
        assert_eq!(
            states(&items),
            vec![
                ("D", State::Sealed { overwrite: true }),
                ("X", State::Unmanaged { delete: true })
            ]
        );
        assert_eq!(
            changes,
            vec![
                Change {
                    key: "D".into(),
                    op: Op::Update(s("4"))
                },
                Change {
                    key: "X".into(),
                    op: Op::Delete
                },
            ]
        );
    }

    #[test]
    fn in_sync_target_has_no_changes() {
        let w = wanted(&[("A", "1")]);
        let (items, changes) = diff(
            &w,
            &observed(&[("A", Some("1"))]),
            Options {
                prune: true,
                overwrite_sealed: true,
                list_unmanaged: false,
            },
            &Fingerprinter::default(),
        );
        assert!(changes.is_empty());
        assert!(!items[0].is_change());
    }

    #[test]
    fn missing_container_means_every_key_is_added() {
        let w = wanted(&[("A", "1"), ("B", "")]);
        let o = Observed::missing();
        let (_, changes) = diff(&w, &o, Options::default(), &Fingerprinter::default());
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| matches!(c.op, Op::Add(_))));
    }

    #[test]
    fn renamed_keys_are_compared_under_their_target_name() {
        // The engine keys Desired by the name on the target; the secret keeps its own.
        let mut w = Desired::new();
        w.insert(
            "APP_LOG_LEVEL".into(),
            Wanted {
                secret: "LOG_LEVEL".into(),
                value: s("info"),
                previous: vec![],
            },
        );
        let o = observed(&[
            ("APP_LOG_LEVEL", Some("info")),
            ("LOG_LEVEL", Some("debug")),
        ]);
        let (items, changes) = diff(&w, &o, Options::default(), &Fingerprinter::default());
        assert!(changes.is_empty());
        assert_eq!(items[0].secret.as_deref(), Some("LOG_LEVEL"));
        assert_eq!(items[1].state, State::Unmanaged { delete: false });
    }

    #[test]
    fn fingerprints_show_and_diagnose_a_forgotten_rotation() {
        let fp = Fingerprinter::new(Some(&s("fingerprint key")));
        let mut w = wanted(&[("A", "new"), ("B", "new")]);
        let old_fp = fp.fingerprint(&s("old")).unwrap();
        for k in ["A", "B"] {
            w.get_mut(k).unwrap().previous = vec![Previous {
                fingerprint: old_fp.clone(),
                replaced: "2026-11-20".into(),
                env: None,
            }];
        }
        let o = observed(&[("A", Some("old")), ("B", Some("unknown"))]);
        let (items, _) = diff(&w, &o, Options::default(), &fp);
        assert_eq!(
            items[0].state,
            State::Differs {
                replaced_on: Some("2026-11-20".into())
            }
        );
        assert_eq!(items[1].state, State::Differs { replaced_on: None });
        assert_eq!(
            items[0].target_fingerprint.as_deref(),
            Some(old_fp.as_str())
        );
        assert_eq!(items[0].manifest_fingerprint, fp.fingerprint(&s("new")));
    }

    #[test]
    fn without_a_key_there_is_no_fingerprint_and_no_diagnosis() {
        let mut w = wanted(&[("A", "new")]);
        w.get_mut("A").unwrap().previous = vec![Previous {
            fingerprint: "fp:00000000".into(),
            replaced: "x".into(),
            env: None,
        }];
        let (items, _) = diff(
            &w,
            &observed(&[("A", Some("old"))]),
            Options::default(),
            &Fingerprinter::default(),
        );
        assert_eq!(items[0].state, State::Differs { replaced_on: None });
        assert_eq!(
            (
                items[0].manifest_fingerprint.as_ref(),
                items[0].target_fingerprint.as_ref()
            ),
            (None, None)
        );
    }

    #[test]
    fn a_value_in_place_that_does_not_run_is_not_live_and_drift() {
        use crate::liveness::{Liveness, Runner, Seen};
        let fp = Fingerprinter::new(Some(&s("fingerprint key")));
        let mut w = wanted(&[("A", "new"), ("B", "new"), ("C", "new")]);
        w.get_mut("A").unwrap().previous = vec![Previous {
            fingerprint: fp.fingerprint(&s("old")).unwrap(),
            replaced: "2026-11-20".into(),
            env: None,
        }];
        let mut o = observed(&[("A", Some("new")), ("B", Some("new")), ("C", Some("x"))]);
        o.live = Liveness {
            runs: vec![Runner::new(
                "app.service (pid 812)",
                "restart app.service",
                Seen::Environment(
                    [("A", "old"), ("B", "new"), ("C", "old")]
                        .iter()
                        .map(|(k, v)| (k.to_string(), s(v)))
                        .collect(),
                ),
            )],
        };
        let (items, changes) = diff(&w, &o, Options::default(), &fp);
        assert_eq!(
            items[0].state,
            State::NotLive {
                reason: "app.service (pid 812) runs with the value replaced on 2026-11-20".into(),
                action: "restart app.service".into()
            }
        );
        assert_eq!(items[0].live, Some(false));
        assert!(!items[0].is_change());
        assert_eq!(
            (items[1].state.clone(), items[1].live),
            (State::InSync, Some(true))
        );
        // A value about to be written is not judged: apply judges it after.
        assert_eq!((items[2].live, items[2].live_note.as_ref()), (None, None));
        assert_eq!(changes.len(), 1);
        let json = serde_json::to_value(&items[0]).unwrap();
        assert_eq!(json["state"], "not_live");
        assert_eq!(json["live"], false);
        assert_eq!(json["action"], "restart app.service");
        let plan = Plan {
            targets: vec![TargetPlan {
                slot: 0,
                target: "t".into(),
                description: String::new(),
                outcome: Ok(TargetDiff {
                    items: items[..2].to_vec(),
                    changes: vec![],
                    file_diff: None,
                    observed: Observed::default(),
                    unmanaged_hidden: 0,
                }),
            }],
        };
        assert!(!plan.has_changes() && plan.has_drift());
        let sum = plan.summary();
        assert_eq!(
            (sum.not_live, sum.targets_not_live, sum.targets_in_sync),
            (1, 1, 0)
        );
    }

    #[test]
    fn summary_counts() {
        let w = wanted(&[("A", "1"), ("B", "2")]);
        let (items, changes) = diff(
            &w,
            &observed(&[("B", Some("x")), ("Z", None)]),
            Options {
                prune: true,
                overwrite_sealed: false,
                list_unmanaged: false,
            },
            &Fingerprinter::default(),
        );
        let plan = Plan {
            targets: vec![
                TargetPlan {
                    slot: 0,
                    target: "t1".into(),
                    description: String::new(),
                    outcome: Ok(TargetDiff {
                        items,
                        changes,
                        file_diff: None,
                        observed: Observed::default(),
                        unmanaged_hidden: 0,
                    }),
                },
                TargetPlan {
                    slot: 1,
                    target: "t2".into(),
                    description: String::new(),
                    outcome: Err(TargetError::unreachable("down")),
                },
                TargetPlan {
                    slot: 2,
                    target: "t3".into(),
                    description: String::new(),
                    outcome: Ok(TargetDiff {
                        items: vec![],
                        changes: vec![],
                        file_diff: None,
                        observed: Observed::default(),
                        unmanaged_hidden: 0,
                    }),
                },
            ],
        };
        let s = plan.summary();
        assert_eq!((s.add, s.change, s.delete), (1, 1, 1));
        assert_eq!(
            (s.targets_in_sync, s.targets_with_changes, s.targets_failed),
            (1, 1, 1)
        );
        assert!(plan.has_changes() && plan.has_errors());
    }
}
