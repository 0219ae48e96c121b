//! Live or only written: whether what runs from a target uses the values the
//! target holds (#28).
//!
//! A target can hold the manifest's value while the service it feeds still
//! runs the old one: an env file rewritten without a restart, a Railway
//! variable set with `skipDeploys` and never redeployed, a container not
//! recreated. A backend that knows what runs from it says so beside its read
//! ([`Liveness`], in `Observed::live`): the values in a running process's
//! environment, or when it started against when each value was written.
//! [`judge`] turns that, per key whose value is in sync, into a [`Verdict`]:
//! live, not live (why, and what to do), or unknown (why).
//!
//! Pure: no I/O. Values read from a process are [`Secret`]s: compared here,
//! never shown (a keyed fingerprint at most).

use std::collections::{BTreeMap, BTreeSet};

use crate::crypto::Fingerprinter;
use crate::secret::Secret;

/// Milliseconds since the Unix epoch, UTC (Railway's timestamps carry
/// milliseconds; a file's mtime and a process's start are as precise).
pub type Millis = i64;

/// What a backend learnt, in the same pass as its read, about what runs
/// from the target. Empty when the target declares nothing that runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liveness {
    pub runs: Vec<Runner>,
}

impl Liveness {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// One thing that runs from the target: a systemd unit, a container, a
/// Railway service's deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// How it is named in output: "app.service (pid 812)", "container app",
    /// "the running deployment of service api".
    pub who: String,
    /// What to do when it does not run the target's values: "restart
    /// app.service", "redeploy service api (secretsync apply --redeploy)".
    pub action: String,
    pub seen: Seen,
    /// The keys that run through it; `None`: every key of the target (a
    /// Railway service runs only the shared variables it references).
    pub keys: Option<BTreeSet<String>>,
    /// What the backend restarts it by (`apply --redeploy`); `None` when
    /// secretsync does not restart it (a unit: `on_change` does).
    pub handle: Option<String>,
}

impl Runner {
    /// A runner of every key of the target, that secretsync does not restart.
    pub fn new(who: impl Into<String>, action: impl Into<String>, seen: Seen) -> Runner {
        Runner {
            who: who.into(),
            action: action.into(),
            seen,
            keys: None,
            handle: None,
        }
    }

    fn runs(&self, key: &str) -> bool {
        self.keys.as_ref().is_none_or(|k| k.contains(key))
    }
}

/// What was seen of a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Its environment, read from the running process or container: key to
    /// value (keys absent from it are not listed). Exact.
    Environment(BTreeMap<String, Secret>),
    /// When it started, and when each key's value was last written (an env
    /// file's mtime for every key; a Railway variable's `updatedAt`). A key
    /// without a time cannot be told. `subject` names what was written ("the
    /// file", "the variable"), `since` how it began ("started", "was
    /// deployed").
    Times {
        started: Millis,
        written: BTreeMap<String, Millis>,
        subject: String,
        since: String,
    },
    /// Nothing runs the target's values: the latest deployment failed.
    Down(String),
    /// It cannot be told, and why (the unit is not running, the process's
    /// environment cannot be read and nothing else tells).
    Unknown(String),
}

/// A key's liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// What runs uses the value; the note says how that is known.
    Live(String),
    /// Written, not live.
    NotLive { reason: String, action: String },
    /// Cannot be told, and why.
    Unknown(String),
}

/// The verdict for `key`, whose value on the target is the manifest's
/// `value`; `None` when nothing runs from the target. Several runners (a
/// unit and a container): not live if any is not, else unknown if any is,
/// else live. `replaced_on` names the day a fingerprint's value was replaced
/// in the manifest, so that an old value a process runs with is recognised.
pub fn judge(
    live: &Liveness,
    key: &str,
    value: &Secret,
    fp: &Fingerprinter,
    replaced_on: &dyn Fn(&str) -> Option<String>,
) -> Option<Verdict> {
    if !live.runs.iter().any(|r| r.runs(key)) {
        return None;
    }
    let mut not_live: Vec<(String, String)> = Vec::new();
    let mut unknown = Vec::new();
    let mut live_notes = Vec::new();
    for r in live.runs.iter().filter(|r| r.runs(key)) {
        match one(r, key, value, fp, replaced_on) {
            Verdict::Live(n) => live_notes.push(n),
            Verdict::NotLive { reason, action } => not_live.push((reason, action)),
            Verdict::Unknown(n) => unknown.push(n),
        }
    }
    Some(if !not_live.is_empty() {
        let (reasons, mut actions): (Vec<String>, Vec<String>) = not_live.into_iter().unzip();
        actions.dedup();
        Verdict::NotLive {
            reason: reasons.join("; "),
            action: actions.join(", then "),
        }
    } else if !unknown.is_empty() {
        Verdict::Unknown(unknown.join("; "))
    } else {
        Verdict::Live(live_notes.join("; "))
    })
}

fn one(
    r: &Runner,
    key: &str,
    value: &Secret,
    fp: &Fingerprinter,
    replaced_on: &dyn Fn(&str) -> Option<String>,
) -> Verdict {
    let not_live = |reason: String| Verdict::NotLive {
        reason,
        action: r.action.clone(),
    };
    match &r.seen {
        Seen::Environment(env) => match env.get(key) {
            None => not_live(format!("{} runs without {key}", r.who)),
            Some(v) if v == value => Verdict::Live(format!("{} runs with this value", r.who)),
            Some(v) => {
                let f = fp.fingerprint(v);
                match f.as_deref().and_then(replaced_on) {
                    Some(day) => {
                        not_live(format!("{} runs with the value replaced on {day}", r.who))
                    }
                    None => not_live(format!(
                        "{} runs with another value{}",
                        r.who,
                        f.map(|f| format!(" ({f})")).unwrap_or_default()
                    )),
                }
            }
        },
        Seen::Times {
            started,
            written,
            subject,
            since,
        } => match written.get(key) {
            None => Verdict::Unknown(format!(
                "when {key} was written is not known, so whether {} runs with it cannot be told",
                r.who
            )),
            Some(w) if w > started => not_live(format!(
                "{subject} changed on {}, after {} {since} on {}",
                shown(*w),
                r.who,
                shown(*started)
            )),
            Some(_) => Verdict::Live(format!(
                "{} {since} on {}, after {subject} last changed",
                r.who,
                shown(*started)
            )),
        },
        Seen::Down(why) => not_live(why.clone()),
        Seen::Unknown(why) => Verdict::Unknown(why.clone()),
    }
}

/// The handles of the runners that must restart for `keys` (those found not
/// live) to run: a runner down, or one that started before one of them was
/// written. Each once, in order; runners without a handle are left out.
pub fn stale_handles(live: &Liveness, keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &live.runs {
        let Some(h) = &r.handle else { continue };
        let stale = keys.iter().filter(|k| r.runs(k)).any(|k| match &r.seen {
            Seen::Down(_) => true,
            Seen::Times {
                started, written, ..
            } => written.get(k).is_some_and(|w| w > started),
            Seen::Environment(_) | Seen::Unknown(_) => false,
        });
        if stale && !out.contains(h) {
            out.push(h.clone());
        }
    }
    out
}

/// `2026-12-01 10:00:05 UTC`.
pub fn shown(t: Millis) -> String {
    let secs = t.div_euclid(1000);
    let rfc = crate::time::rfc3339(secs);
    rfc.replacen('T', " ", 1).replacen('Z', " UTC", 1)
}

/// Reads an RFC 3339 time in UTC, with or without fractional seconds
/// (`2026-12-01T10:00:00.123Z`), to milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t = text.trim();
    let body = t.strip_suffix('Z')?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = crate::time::parse_time(&format!("{whole}Z")).ok()?;
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += i64::from(b - b'0') * [100, 10, 1][i];
    }
    Some(secs * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret {
        Secret::new(v.into())
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    fn env(who: &str, pairs: &[(&str, &str)]) -> Runner {
        Runner::new(
            who,
            format!("restart {who}"),
            Seen::Environment(pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect()),
        )
    }

    fn times(started: Millis, written: Millis) -> Runner {
        Runner::new(
            "the running deployment of service api",
            "redeploy service api",
            Seen::Times {
                started,
                written: [("A".to_string(), written)].into_iter().collect(),
                subject: "the variable".into(),
                since: "was deployed".into(),
            },
        )
    }

    #[test]
    fn nothing_running_says_nothing() {
        let fp = Fingerprinter::default();
        assert_eq!(judge(&Liveness::default(), "A", &s("1"), &fp, &none), None);
    }

    #[test]
    fn an_environment_is_compared_exactly_and_an_old_value_recognised() {
        let fp = Fingerprinter::new(Some(&s("fingerprint key")));
        let old = fp.fingerprint(&s("old")).unwrap();
        let replaced = |f: &str| (f == old).then(|| "2026-11-20".to_string());
        let l = Liveness {
            runs: vec![env("app.service (pid 812)", &[("A", "new"), ("B", "old")])],
        };
        assert_eq!(
            judge(&l, "A", &s("new"), &fp, &replaced),
            Some(Verdict::Live(
                "app.service (pid 812) runs with this value".into()
            ))
        );
        assert_eq!(
            judge(&l, "B", &s("new"), &fp, &replaced),
            Some(Verdict::NotLive {
                reason: "app.service (pid 812) runs with the value replaced on 2026-11-20".into(),
                action: "restart app.service (pid 812)".into()
            })
        );
        assert_eq!(
            judge(&l, "C", &s("new"), &fp, &replaced),
            Some(Verdict::NotLive {
                reason: "app.service (pid 812) runs without C".into(),
                action: "restart app.service (pid 812)".into()
            })
        );
        // Another value: its keyed fingerprint, never the value.
        let l = Liveness {
            runs: vec![env("c", &[("A", "canary-value")])],
        };
        let Some(Verdict::NotLive { reason, .. }) = judge(&l, "A", &s("new"), &fp, &none) else {
            panic!("not live expected");
        };
        assert!(!reason.contains("canary-value"), "{reason}");
        assert!(reason.contains(&fp.fingerprint(&s("canary-value")).unwrap()));
    }

    #[test]
    fn times_compare_the_write_with_the_start() {
        let fp = Fingerprinter::default();
        let t0 = parse_rfc3339("2026-12-01T10:00:00.000Z").unwrap();
        let later = parse_rfc3339("2026-12-01T10:00:00.500Z").unwrap();
        let l = Liveness {
            runs: vec![times(t0, later)],
        };
        assert_eq!(
            judge(&l, "A", &s("x"), &fp, &none),
            Some(Verdict::NotLive {
                reason: "the variable changed on 2026-12-01 10:00:00 UTC, after the running deployment of service api was deployed on 2026-12-01 10:00:00 UTC".into(),
                action: "redeploy service api".into()
            })
        );
        let l = Liveness {
            runs: vec![times(later, t0)],
        };
        assert!(matches!(
            judge(&l, "A", &s("x"), &fp, &none),
            Some(Verdict::Live(_))
        ));
        assert!(matches!(
            judge(&l, "B", &s("x"), &fp, &none),
            Some(Verdict::Unknown(_))
        ));
    }

    #[test]
    fn several_runners_not_live_wins_then_unknown() {
        let fp = Fingerprinter::default();
        let unknown = Runner::new(
            "container app",
            "recreate container app",
            Seen::Unknown("docker is not reachable".into()),
        );
        let l = Liveness {
            runs: vec![env("u", &[("A", "1")]), unknown.clone()],
        };
        assert_eq!(
            judge(&l, "A", &s("1"), &fp, &none),
            Some(Verdict::Unknown("docker is not reachable".into()))
        );
        let l = Liveness {
            runs: vec![env("u", &[("A", "0")]), unknown],
        };
        assert!(matches!(
            judge(&l, "A", &s("1"), &fp, &none),
            Some(Verdict::NotLive { .. })
        ));
    }

    #[test]
    fn only_the_runners_of_a_key_judge_it_and_only_stale_ones_restart() {
        let fp = Fingerprinter::default();
        let mut a = times(2_000, 1_000);
        a.keys = Some(["A".to_string()].into());
        a.handle = Some("e/s1".into());
        let mut b = times(1_000, 2_000);
        b.handle = Some("e/s2".into());
        b.keys = Some(["A".to_string()].into());
        let l = Liveness {
            runs: vec![a.clone()],
        };
        assert_eq!(judge(&l, "B", &s("x"), &fp, &none), None);
        assert!(matches!(
            judge(&l, "A", &s("x"), &fp, &none),
            Some(Verdict::Live(_))
        ));
        let l = Liveness {
            runs: vec![a, b.clone(), b],
        };
        assert_eq!(stale_handles(&l, &["A".into()]), ["e/s2"]);
        assert!(stale_handles(&l, &["B".into()]).is_empty());
    }

    #[test]
    fn railway_times_are_read_to_the_millisecond() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.25Z"), Some(1250));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.x5Z"), None);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01+02:00"), None);
        assert_eq!(shown(1250), "1970-01-01 00:00:01 UTC");
    }
}
