//! `secretsync compare A B`: what differs between two environments (#27),
//! per secret and target, by keyed fingerprints, never values: present in A
//! only, in B only, the same value, or values that differ. An encrypted
//! secret with the same value in both (set per environment, yet equal) is a
//! finding of its own: a production secret reused in staging can be read
//! by staging's readers.
//!
//! Pure over decrypted values: the command decrypts ([`decrypt_env`]),
//! this module compares and renders.

use std::fmt::Write as _;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::json;

use crate::crypto::{self, Fingerprinter, Identities};
use crate::error::Error;
use crate::manifest::{Manifest, ValueSource};
use crate::secret::Secret;

/// How one secret compares on a set of targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It reaches these targets in A, not in B.
    OnlyInA,
    /// It reaches these targets in B, not in A.
    OnlyInB,
    /// Plain configuration, equal in both.
    Same,
    /// One value for every environment (`value:` or one `encrypted:`).
    Shared,
    /// Encrypted per environment, yet equal: a leak waiting to happen.
    SameSecret,
    /// The values differ.
    Differ,
}

impl Status {
    fn text(self, a: &str, b: &str) -> String {
        match self {
            Status::OnlyInA => format!("only in {a}"),
            Status::OnlyInB => format!("only in {b}"),
            Status::Same => "same value".into(),
            Status::Shared => "one value for every environment".into(),
            Status::SameSecret => format!("same value in {a} and {b}"),
            Status::Differ => "values differ".into(),
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub secret: String,
    /// The targets (as written under `targets:`) it is about.
    pub targets: Vec<String>,
    pub status: Status,
    /// Keyed fingerprints of the values in A and in B (none without a
    /// `fingerprint_key`, or where there is no value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint_a: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint_b: Option<String>,
}

/// The comparison of environments `a` and `b`.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Whether anything differs (exit 2): a value, or where a secret reaches.
    pub fn differs(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.status, Status::OnlyInA | Status::OnlyInB | Status::Differ))
    }

    fn count(&self, s: Status) -> usize {
        self.rows.iter().filter(|r| r.status == s).count()
    }
}

/// Secret name → its value in `env` (the secrets that have one), decrypted.
pub fn decrypt_env(
    m: &Manifest,
    env: &str,
    ids: Option<&Identities>,
) -> Result<IndexMap<String, Secret>, Error> {
    let mut out = IndexMap::new();
    let mut items: Vec<(String, String)> = Vec::new();
    for (name, s) in &m.secrets {
        match s.value_in(env) {
            Some(ValueSource::Plain(v)) => {
                out.insert(name.clone(), Secret::new(v.clone()));
            }
            Some(ValueSource::Encrypted(a)) => items.push((name.clone(), a.clone())),
            None => {}
        }
    }
    if items.is_empty() {
        return Ok(out);
    }
    let ids = ids.ok_or_else(|| {
        Error::usage(
            format!("comparing `{env}` needs an identity that can decrypt its values"),
            "set SECRETSYNC_AGE_KEY or pass --identity",
        )
    })?;
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    for ((name, _), got) in items.iter().zip(crypto::decrypt_many(ids, &refs)) {
        let v = got.map_err(|e| {
            let e = crypto::explain(e, &ids.publics(), &m.recipients_for(Some(env)));
            Error::Other {
                message: format!("environment `{env}`: {e}"),
                hint: Some("compare with an identity that can read both environments".into()),
            }
        })?;
        out.insert(name.clone(), v);
    }
    Ok(out)
}

/// Compares environment `a` with `b`: per secret, the targets it reaches
/// in one only, and for those in both how the values compare.
pub fn compare(
    m: &Manifest,
    a: &str,
    b: &str,
    in_a: &IndexMap<String, Secret>,
    in_b: &IndexMap<String, Secret>,
    fp: &Fingerprinter,
) -> Comparison {
    let mut rows = Vec::new();
    let reaches = |name: &str, env: &str| -> Vec<String> {
        m.secrets[name]
            .targets
            .iter()
            .filter_map(|t| m.instances.get(t))
            .filter(|i| i.env == env)
            .map(|i| i.target.clone())
            .collect()
    };
    for (name, s) in &m.secrets {
        let (ta, tb) = (reaches(name, a), reaches(name, b));
        let only_a: Vec<String> = ta.iter().filter(|t| !tb.contains(t)).cloned().collect();
        let only_b: Vec<String> = tb.iter().filter(|t| !ta.contains(t)).cloned().collect();
        let both: Vec<String> = ta.iter().filter(|t| tb.contains(t)).cloned().collect();
        let (va, vb) = (in_a.get(name), in_b.get(name));
        let fa = va.and_then(|v| fp.fingerprint(v));
        let fb = vb.and_then(|v| fp.fingerprint(v));
        let row = |targets: Vec<String>, status| Row {
            secret: name.clone(),
            targets,
            status,
            fingerprint_a: fa.clone(),
            fingerprint_b: fb.clone(),
        };
        if !only_a.is_empty() {
            rows.push(Row {
                fingerprint_b: None,
                ..row(only_a, Status::OnlyInA)
            });
        }
        if !only_b.is_empty() {
            rows.push(Row {
                fingerprint_a: None,
                ..row(only_b, Status::OnlyInB)
            });
        }
        if both.is_empty() {
            continue;
        }
        let status = match (va, vb) {
            (Some(x), Some(y)) if x == y => {
                if s.per_environment() {
                    Status::SameSecret
                } else if matches!(s.value, ValueSource::Encrypted(_)) {
                    Status::Shared
                } else {
                    Status::Same
                }
            }
            _ => Status::Differ,
        };
        rows.push(row(both, status));
    }
    Comparison {
        a: a.to_string(),
        b: b.to_string(),
        rows,
    }
}

fn summary(c: &Comparison) -> String {
    format!(
        "Compare {} with {}: {} differ, {} only in {}, {} only in {}, {} the same{}.",
        c.a,
        c.b,
        c.count(Status::Differ),
        c.count(Status::OnlyInA),
        c.a,
        c.count(Status::OnlyInB),
        c.b,
        c.count(Status::Same) + c.count(Status::Shared) + c.count(Status::SameSecret),
        match c.count(Status::SameSecret) {
            0 => String::new(),
            n => format!(" ({n} encrypted per environment yet equal)"),
        }
    )
}

/// The comparison as text: one line per secret and status.
pub fn text(c: &Comparison) -> String {
    let mut out = String::new();
    let width = c
        .rows
        .iter()
        .map(|r| crate::neutral::text(&r.secret).chars().count())
        .max()
        .unwrap_or(0);
    for r in &c.rows {
        let mark = match r.status {
            Status::Differ => "~",
            Status::OnlyInA => "<",
            Status::OnlyInB => ">",
            Status::SameSecret => "!",
            Status::Same | Status::Shared => "=",
        };
        let fps = match (&r.fingerprint_a, &r.fingerprint_b, r.status) {
            (Some(x), Some(y), Status::Differ) => format!(" ({} {x}, {} {y})", c.a, c.b),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{mark} {:<width$}  {}{fps}  [{}]",
            crate::neutral::text(&r.secret),
            r.status.text(&c.a, &c.b),
            r.targets.join(", "),
        );
        if r.status == Status::SameSecret {
            let _ = writeln!(
                out,
                "  warning: `{}` holds the same value in {} and {}: whoever can read {} can read {}'s; set one of them anew (`secretsync set {} --env {}`)",
                crate::neutral::text(&r.secret),
                c.a,
                c.b,
                c.a,
                c.b,
                crate::neutral::text(&r.secret),
                c.b
            );
        }
    }
    out.push_str(&summary(c));
    out.push('\n');
    out
}

/// The comparison as markdown (a pull request comment).
pub fn markdown(c: &Comparison) -> String {
    let esc = crate::render::md_escape;
    let mut out = format!(
        "### secretsync compare: {} with {}\n\n| secret | targets | finding |\n|---|---|---|\n",
        esc(&c.a),
        esc(&c.b)
    );
    for r in &c.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            esc(&r.secret),
            esc(&r.targets.join(", ")),
            esc(&r.status.text(&c.a, &c.b))
        );
    }
    let _ = writeln!(out, "\n{}", esc(&summary(c)));
    out
}

/// The comparison as JSON (docs/json-output.md).
pub fn json(c: &Comparison, manifest: &str) -> serde_json::Value {
    json!({
        "format_version": crate::render::JSON_FORMAT_VERSION,
        "kind": "compare",
        "manifest": manifest,
        "a": c.a,
        "b": c.b,
        "rows": c.rows,
        "differ": c.differs(),
    })
}
