//! The conformance suite every target runs: the same read / write / update /
//! delete / tricky-value / conflict / idempotence cases, whatever the backend.
//!
//! A backend's test binary implements [`Fixture`] for its target and either
//! expands [`secretsync_conformance_tests!`](crate::secretsync_conformance_tests) (one
//! `#[tokio::test]` per case, each with a fresh fixture) or calls [`run_all`]
//! (every case in turn on one fixture):
//!
//! ```ignore
//! mod support;
//! use support::conformance::Fixture;
//!
//! struct MyFixture { /* a fresh, empty (or missing) target */ }
//! #[async_trait::async_trait]
//! impl Fixture for MyFixture { /* … */ }
//!
//! secretsync_conformance_tests!(MyFixture::new().await);
//! ```
//!
//! Rules the cases follow, so a backend can share one store between cases:
//! each case uses its own keys (prefixed `CF_<CASE>_`), compares only those
//! keys, and every read is a new read (batching is the engine's, by
//! `Target::batch_key`, so a backend never serves a stale one). A target may
//! hold other keys; `add_to_empty` alone expects the
//! case's keys to be absent at first.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secretsync::secret::Secret;
use secretsync::targets::{Change, ErrorKind, Observation, Observed, Op, Target};

/// One target under test, with the out-of-band access the cases need.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A handle on the target under test: every call reaches the same place.
    fn target(&self) -> Box<dyn Target>;

    /// Changes `key` on the target behind secretsync's back, as another
    /// person or tool would: sets it to [`TAMPERED`] (creating it if absent).
    /// A write based on a read from before must then be refused.
    async fn tamper(&self, key: &str);

    /// Whether the target can hold `value` (a keychain cannot hold newlines):
    /// values it cannot hold are skipped by `tricky_values`.
    fn can_hold(&self, value: &str) -> bool;

    /// Whether a read lists every key on the target (`Observed::complete`);
    /// when false, `delete` is skipped (such a target is never pruned).
    fn lists_all(&self) -> bool;
}

/// The value [`Fixture::tamper`] writes; no case writes it itself.
pub const TAMPERED: &str = "tampered-out-of-band";

/// Values that trip up quoting, escaping, trimming and line handling.
pub const TRICKY_VALUES: &[&str] = &[
    "plain",
    "with \"double\" and 'single' quotes",
    "$HOME ${HOME} $(id) `id` $",
    "# not a comment",
    "value #with hash",
    "back\\slash\\ and \\n and \\\"",
    "tab\there\t",
    "unicode: é ü 漢字 🔑",
    "  leading and trailing spaces  ",
    "line one\nline two",
    "multi\n  indented\n\"quoted\"\n$var\\\n",
    "=equals=",
    "",
];

fn secret(v: &str) -> Secret {
    Secret::new(v.to_string())
}

pub fn add(key: &str, value: &str) -> Change {
    Change {
        key: key.into(),
        op: Op::Add(secret(value)),
    }
}

pub fn update(key: &str, value: &str) -> Change {
    Change {
        key: key.into(),
        op: Op::Update(secret(value)),
    }
}

pub fn delete(key: &str) -> Change {
    Change {
        key: key.into(),
        op: Op::Delete,
    }
}

/// Reads `keys` in a new round; a failed read fails the test.
pub async fn read(t: &dyn Target, keys: &[&str]) -> Observed {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    t.read(&keys)
        .await
        .unwrap_or_else(|e| panic!("reading {} failed: {e}", t.describe()))
}

/// Writes `changes` based on `observed`; a failed write fails the test.
pub async fn write(t: &dyn Target, observed: &Observed, changes: &[Change]) {
    t.write(observed, changes)
        .await
        .unwrap_or_else(|e| panic!("writing {} failed: {e}", t.describe()))
}

/// The clear value of `key`, `None` when absent. A sealed value fails the
/// test: the cases only write readable values.
pub fn value_of(observed: &Observed, key: &str) -> Option<String> {
    match observed.entries.get(key) {
        None => None,
        Some(Observation::Value(v)) => Some(v.expose().to_string()),
        Some(Observation::Sealed) => panic!("{key} reads back sealed"),
    }
}

/// Just `keys` of an observation, for comparing two reads.
pub fn pick(observed: &Observed, keys: &[&str]) -> BTreeMap<String, Option<String>> {
    keys.iter()
        .map(|k| (k.to_string(), value_of(observed, k)))
        .collect()
}

/// Writes `pairs` as additions on a fresh read and checks they read back.
async fn seed(t: &dyn Target, pairs: &[(&str, &str)]) -> Observed {
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    let before = read(t, &keys).await;
    let changes: Vec<Change> = pairs.iter().map(|(k, v)| add(k, v)).collect();
    write(t, &before, &changes).await;
    let after = read(t, &keys).await;
    for (k, v) in pairs {
        assert_eq!(
            value_of(&after, k).as_deref(),
            Some(*v),
            "{k} after seeding"
        );
    }
    after
}

/// Adding to a target that does not hold the keys (an env file that does not
/// exist yet): both keys read back, and a listing target shows them.
pub async fn add_to_empty(f: &dyn Fixture) {
    let t = f.target();
    let keys = ["CF_ADD_A", "CF_ADD_B"];
    let before = read(&*t, &keys).await;
    for k in keys {
        assert_eq!(value_of(&before, k), None, "{k} before the first write");
    }
    if f.lists_all() {
        assert!(before.complete, "a listing target reads complete");
    }
    write(
        &*t,
        &before,
        &[add("CF_ADD_A", "1"), add("CF_ADD_B", "two")],
    )
    .await;
    let after = read(&*t, &keys).await;
    assert!(after.exists, "the target exists after a write");
    assert_eq!(value_of(&after, "CF_ADD_A").as_deref(), Some("1"));
    assert_eq!(value_of(&after, "CF_ADD_B").as_deref(), Some("two"));
}

/// Updating one key changes it and leaves the other alone.
pub async fn update_one(f: &dyn Fixture) {
    let t = f.target();
    let keys = ["CF_UPD_A", "CF_UPD_B"];
    let seeded = seed(&*t, &[("CF_UPD_A", "old"), ("CF_UPD_B", "keep")]).await;
    write(&*t, &seeded, &[update("CF_UPD_A", "new")]).await;
    let after = read(&*t, &keys).await;
    assert_eq!(value_of(&after, "CF_UPD_A").as_deref(), Some("new"));
    assert_eq!(value_of(&after, "CF_UPD_B").as_deref(), Some("keep"));
}

/// Deleting removes the key and leaves the other; only for targets that list
/// every key (the others are never pruned). Returns whether it ran.
pub async fn delete_one(f: &dyn Fixture) -> bool {
    if !f.lists_all() {
        return false;
    }
    let t = f.target();
    let keys = ["CF_DEL_A", "CF_DEL_B"];
    let seeded = seed(&*t, &[("CF_DEL_A", "gone"), ("CF_DEL_B", "stays")]).await;
    write(&*t, &seeded, &[delete("CF_DEL_A")]).await;
    let after = read(&*t, &keys).await;
    assert_eq!(value_of(&after, "CF_DEL_A"), None, "deleted key is gone");
    assert_eq!(value_of(&after, "CF_DEL_B").as_deref(), Some("stays"));
    write(&*t, &after, &[delete("CF_DEL_B")]).await;
    let last = read(&*t, &keys).await;
    assert_eq!(pick(&last, &keys).values().flatten().count(), 0);
    true
}

/// Every value of [`TRICKY_VALUES`] the target can hold is written (added,
/// then updated to another tricky value) and read back exactly.
pub async fn tricky_values(f: &dyn Fixture) {
    let t = f.target();
    let values: Vec<&str> = TRICKY_VALUES
        .iter()
        .copied()
        .filter(|v| f.can_hold(v))
        .collect();
    assert!(
        values.len() >= 5,
        "the target holds only {} of the tricky values",
        values.len()
    );
    let keys: Vec<String> = (0..values.len()).map(|i| format!("CF_VAL_{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();

    let before = read(&*t, &key_refs).await;
    let adds: Vec<Change> = keys.iter().zip(&values).map(|(k, v)| add(k, v)).collect();
    write(&*t, &before, &adds).await;
    let after = read(&*t, &key_refs).await;
    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
        assert_eq!(
            value_of(&after, k).as_deref(),
            Some(*v),
            "tricky value #{i} after add"
        );
    }

    // Each key now takes the next value: updates replace tricky text in place.
    let rotated: Vec<&str> = (0..values.len())
        .map(|i| values[(i + 1) % values.len()])
        .collect();
    let updates: Vec<Change> = keys
        .iter()
        .zip(&rotated)
        .map(|(k, v)| update(k, v))
        .collect();
    write(&*t, &after, &updates).await;
    let again = read(&*t, &key_refs).await;
    for (i, (k, v)) in keys.iter().zip(&rotated).enumerate() {
        assert_eq!(
            value_of(&again, k).as_deref(),
            Some(*v),
            "tricky value #{} after update of key #{i}",
            (i + 1) % values.len()
        );
    }
}

/// A write based on a read from before an out-of-band change is refused as
/// a conflict and changes nothing.
pub async fn conflict_after_tamper(f: &dyn Fixture) {
    let t = f.target();
    let keys = ["CF_CON_A", "CF_CON_B"];
    let stale = seed(&*t, &[("CF_CON_A", "mine"), ("CF_CON_B", "other")]).await;
    f.tamper("CF_CON_A").await;
    let tampered = read(&*t, &keys).await;
    assert_eq!(
        value_of(&tampered, "CF_CON_A").as_deref(),
        Some(TAMPERED),
        "the fixture's tamper took effect"
    );
    let err = t
        .write(
            &stale,
            &[update("CF_CON_A", "overwrite"), add("CF_CON_C", "x")],
        )
        .await
        .expect_err("a write after an out-of-band change must be refused");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(!err.message.contains("overwrite") && !err.message.contains(TAMPERED));
    // Typed, not only said: the keys that moved, when the backend names them.
    let conflict = err.conflict.as_ref().expect("a conflict is a typed one");
    assert!(
        conflict.keys.is_empty() || conflict.keys == ["CF_CON_A"],
        "{conflict:?}"
    );
    let after = read(&*t, &["CF_CON_A", "CF_CON_B", "CF_CON_C"]).await;
    assert_eq!(
        pick(&after, &["CF_CON_A", "CF_CON_B", "CF_CON_C"]),
        pick(&tampered, &["CF_CON_A", "CF_CON_B", "CF_CON_C"]),
        "a refused write changes nothing"
    );
}

/// Reusing a read after one's own write (a plan applied twice) is refused too.
pub async fn stale_read_refused(f: &dyn Fixture) {
    let t = f.target();
    let keys = ["CF_STALE_A"];
    let first = seed(&*t, &[("CF_STALE_A", "one")]).await;
    write(&*t, &first, &[update("CF_STALE_A", "two")]).await;
    let err = t
        .write(&first, &[update("CF_STALE_A", "three")])
        .await
        .expect_err("a write based on a stale read must be refused");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.conflict.is_some(), "{err:?}");
    let after = read(&*t, &keys).await;
    assert_eq!(value_of(&after, "CF_STALE_A").as_deref(), Some("two"));
}

/// A write with no changes succeeds and the target reads the same, again and
/// again.
pub async fn idempotent(f: &dyn Fixture) {
    let t = f.target();
    let keys = ["CF_IDEM_A", "CF_IDEM_B"];
    let b = if f.can_hold("multi\nline $x") {
        "multi\nline $x"
    } else {
        "one line $x"
    };
    let first = seed(&*t, &[("CF_IDEM_A", "same"), ("CF_IDEM_B", b)]).await;
    write(&*t, &first, &[]).await;
    let second = read(&*t, &keys).await;
    assert_eq!(pick(&second, &keys), pick(&first, &keys));
    write(&*t, &second, &[]).await;
    let third = read(&*t, &keys).await;
    assert_eq!(pick(&third, &keys), pick(&first, &keys));
    assert_eq!(second.exists, third.exists);
    assert_eq!(second.complete, third.complete);
}

/// Every case in turn on one fixture (whose target starts without the cases'
/// keys).
pub async fn run_all(f: &dyn Fixture) {
    add_to_empty(f).await;
    update_one(f).await;
    delete_one(f).await;
    tricky_values(f).await;
    conflict_after_tamper(f).await;
    stale_read_refused(f).await;
    idempotent(f).await;
}

/// One `#[tokio::test]` per case, each on a fresh fixture made by `$make`
/// (an expression, evaluated inside the async test: `.await` is allowed).
/// Expand it once in a test binary that declares `mod support;`.
#[macro_export]
macro_rules! secretsync_conformance_tests {
    ($make:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::support::conformance as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn add_to_empty() {
                let f = $make;
                c::add_to_empty(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn update_one() {
                let f = $make;
                c::update_one(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete_one() {
                let f = $make;
                let ran = c::delete_one(&f).await;
                assert_eq!(ran, c::Fixture::lists_all(&f));
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tricky_values() {
                let f = $make;
                c::tricky_values(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn conflict_after_tamper() {
                let f = $make;
                c::conflict_after_tamper(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stale_read_refused() {
                let f = $make;
                c::stale_read_refused(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotent() {
                let f = $make;
                c::idempotent(&f).await;
            }
        }
    };
}
