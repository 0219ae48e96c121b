//! A secret's lifecycle: when its value expires and when it is due for
//! rotation, found offline.
//!
//! Expiry is read from the decrypted value itself where it says (a JWT's
//! `exp` and `nbf`, the `notAfter` of an X.509 certificate in PEM), else from
//! the manifest (`expires:`, what the issuer said). Rotation is a policy
//! (`rotate_every:` on a secret, or its top-level default) applied to the
//! date the current value was set (`set_on:`, recorded by `set`, `rotate`
//! and `import`; for older manifests, the date of the newest `previous`).
//!
//! Nothing here prints or returns a value: only dates, where they came from
//! and the secrets' names.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::manifest::{Manifest, SecretDef, ValueSource};
use crate::secret::Secret;
pub use crate::time::{
    clock, date, parse_period, parse_time, period, rfc3339, shown, span, today, Time, DAY,
    LAST_SECOND, NOW_VAR,
};

/// The warning window when none is given (`--warn-within`).
pub const DEFAULT_WARN_DAYS: i64 = 14;

/// Now: the clock, or [`NOW_VAR`] when set.
pub fn now() -> Result<Time, Error> {
    clock().map_err(|why| {
        Error::usage(
            why,
            format!("{NOW_VAR} fixes the current time for tests; unset it to use the clock"),
        )
    })
}

// ---- expiry from the value -------------------------------------------------------

/// Where an expiry date came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The value is a JWT: its `exp` claim.
    Jwt,
    /// The value holds a PEM certificate: its `notAfter`.
    Certificate,
    /// `expires:` in the manifest.
    Manifest,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Jwt => "the value's JWT `exp`",
            Source::Certificate => "the value's certificate notAfter",
            Source::Manifest => "`expires:` in the manifest",
        }
    }
}

/// What the value says about its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    /// The value is a JWT or holds a certificate: issued by someone else.
    pub issued: Option<Source>,
    pub not_after: Option<Time>,
    pub not_before: Option<Time>,
}

/// Reads the validity a value carries: a JWT's `exp`/`nbf`, or the
/// earliest `notAfter` (and latest `notBefore`) of the PEM certificates in it.
pub fn validity(value: &Secret) -> Validity {
    let v = value.expose();
    if let Some(found) = jwt(v.trim()) {
        return found;
    }
    certificates(v).unwrap_or_default()
}

/// A JWS in compact form: three base64url parts whose first two are JSON
/// objects (the header naming an `alg`).
fn jwt(v: &str) -> Option<Validity> {
    let mut parts = v.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let decode = |s: &str| -> Option<serde_json::Map<String, Value>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()?;
        let bytes = zeroize::Zeroizing::new(bytes);
        match serde_json::from_slice::<Value>(&bytes).ok()? {
            Value::Object(o) => Some(o),
            _ => None,
        }
    };
    let header = decode(h)?;
    if !header.contains_key("alg") {
        return None;
    }
    let claims = decode(p)?;
    // NumericDate: seconds, possibly with a fraction; a date outside years
    // 1970 to 9999 is no date (and keeps every sum below from overflowing).
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_f64)
            .filter(|f| (0.0..=LAST_SECOND).contains(f))
            .map(|f| f as Time)
    };
    Some(Validity {
        issued: Some(Source::Jwt),
        not_after: time("exp"),
        not_before: time("nbf"),
    })
}

fn certificates(v: &str) -> Option<Validity> {
    use x509_cert::der::DecodePem;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut found: Option<Validity> = None;
    let mut rest = v;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + len + END.len()];
        rest = &rest[start + len + END.len()..];
        let Ok(cert) = x509_cert::Certificate::from_pem(block.as_bytes()) else {
            continue;
        };
        let validity = &cert.tbs_certificate.validity;
        let after = validity.not_after.to_unix_duration().as_secs() as Time;
        let before = validity.not_before.to_unix_duration().as_secs() as Time;
        let f = found.get_or_insert(Validity {
            issued: Some(Source::Certificate),
            not_after: Some(after),
            not_before: Some(before),
        });
        f.not_after = f.not_after.map(|a| a.min(after));
        f.not_before = f.not_before.map(|b| b.max(before));
    }
    found
}

// ---- one secret's standing -------------------------------------------------------

/// How to judge: now, and how far ahead to warn.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub now: Time,
    /// Seconds.
    pub warn_within: i64,
}

impl Policy {
    /// Now (or [`NOW_VAR`]) with a warning window in days.
    pub fn new(warn_days: i64) -> Result<Policy, Error> {
        Ok(Policy {
            now: now()?,
            warn_within: warn_days * DAY,
        })
    }
}

/// `--warn-within`: `14d`, `2w` or a number of days.
pub fn parse_window(text: &str) -> Result<i64, String> {
    if let Ok(n) = text.trim().parse::<i64>() {
        return if (0..=36_500).contains(&n) {
            Ok(n)
        } else {
            Err("out of range: 0 to 36500 days".into())
        };
    }
    parse_period(text)?.ok_or_else(|| "`never` is not a window".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryState {
    /// Past its expiry.
    Expired,
    /// Expires within the warning window.
    Expiring,
    /// Not valid yet (a JWT's `nbf`, a certificate's notBefore).
    NotYetValid,
    Valid,
    /// Nothing says when it expires.
    Unknown,
}

/// A secret's expiry as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub at: Time,
    pub source: Source,
}

/// A secret's rotation policy as it applies now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub every_days: i64,
    /// When the current value was set; `None` when nothing recorded it.
    pub set_on: Option<Time>,
    pub due_on: Option<Time>,
    pub overdue: bool,
}

/// Everything known about one secret's lifecycle.
#[derive(Debug, Clone)]
pub struct Status {
    pub secret: String,
    pub targets: Vec<String>,
    pub encrypted: bool,
    pub set_on: Option<String>,
    pub expiry: Option<Expiry>,
    pub not_before: Option<Time>,
    pub state: ExpiryState,
    /// The value is a JWT or a certificate: secretsync cannot generate it.
    pub issued: bool,
    /// `generate:`: secretsync makes the value, and `rotate --due` rotates it.
    pub generated: Option<crate::generate::Spec>,
    pub rotation: Option<Rotation>,
}

/// When the current value of `def` was set, as recorded.
fn set_on(def: &SecretDef) -> Option<String> {
    def.set_on
        .clone()
        .or_else(|| def.previous.first().map(|p| p.replaced.clone()))
}

/// The standing of one secret whose value is `value`.
pub fn assess(m: &Manifest, def: &SecretDef, value: Option<&Secret>, p: &Policy) -> Status {
    let found = value.map(validity).unwrap_or_default();
    let from_value = found.not_after.map(|at| Expiry {
        at,
        source: found.issued.unwrap_or(Source::Jwt),
    });
    let from_manifest = def
        .expires
        .as_deref()
        .and_then(|e| parse_time(e).ok())
        .map(|at| Expiry {
            at,
            source: Source::Manifest,
        });
    // Both: the earlier one counts.
    let expiry = match (from_value, from_manifest) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    };
    let not_before = found.not_before.filter(|nb| *nb > p.now);
    let state = match &expiry {
        Some(e) if e.at <= p.now => ExpiryState::Expired,
        _ if not_before.is_some() => ExpiryState::NotYetValid,
        Some(e) if e.at - p.now <= p.warn_within => ExpiryState::Expiring,
        Some(_) => ExpiryState::Valid,
        None => ExpiryState::Unknown,
    };
    let encrypted = matches!(def.value, ValueSource::Encrypted(_));
    let set = set_on(def);
    // The top-level default is for secrets; plain settings (`value:`) are
    // configuration, never due, whatever `rotate_every` they carry.
    let every = match def.rotate_every {
        _ if !encrypted => None,
        Some(e) => e,
        None => m.rotate_every,
    };
    let rotation = every.map(|every_days| {
        let set_at = set.as_deref().and_then(|s| parse_time(s).ok());
        let due_on = set_at.map(|s| s + every_days * DAY);
        Rotation {
            every_days,
            set_on: set_at,
            due_on,
            overdue: due_on.is_some_and(|d| d <= p.now),
        }
    });
    Status {
        secret: def.name.clone(),
        targets: def.targets.clone(),
        encrypted,
        set_on: set,
        expiry,
        not_before,
        state,
        issued: found.issued.is_some() || def.expires.is_some(),
        generated: def.generate,
        rotation,
    }
}

/// The standing of every secret of `m` that `values` holds a value for
/// (plain values are read from the manifest), in manifest order.
pub fn assess_all(
    m: &Manifest,
    values: &indexmap::IndexMap<String, Secret>,
    p: &Policy,
    only: impl Fn(&SecretDef) -> bool,
) -> Vec<Status> {
    m.secrets
        .values()
        .filter(|d| only(d))
        .map(|d| {
            let plain;
            let value = match &d.value {
                ValueSource::Plain(v) => {
                    plain = Secret::new(v.clone());
                    Some(&plain)
                }
                ValueSource::Encrypted(_) => values.get(&d.name),
            };
            assess(m, d, value, p)
        })
        .collect()
}

/// Decrypts the encrypted values of the secrets `only` keeps: for commands
/// that read no target (`list`, `doctor`).
pub fn decrypt(
    m: &Manifest,
    identity: Option<&std::path::Path>,
    only: impl Fn(&SecretDef) -> bool,
) -> Result<indexmap::IndexMap<String, Secret>, Error> {
    let items: Vec<(&str, &str)> = m
        .secrets
        .values()
        .filter(|d| only(d))
        .filter_map(|d| match &d.value {
            ValueSource::Encrypted(a) => Some((d.name.as_str(), a.as_str())),
            ValueSource::Plain(_) => None,
        })
        .collect();
    if items.is_empty() {
        return Ok(indexmap::IndexMap::new());
    }
    let ids = crate::crypto::find_identities(identity)?;
    crate::engine::decrypt_all(&ids, &items)
}

// ---- findings -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Expired,
    Expiring,
    NotYetValid,
    RotationDue,
}

/// Something to act on: the secret's name, and our words about dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub kind: Kind,
    pub secret: String,
    /// What, without the name: "expired on 2026-11-20 (7 days ago; …)".
    pub what: String,
    pub hint: String,
}

impl Status {
    pub fn findings(&self, p: &Policy) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut push = |level, kind, what: String, hint: String| {
            out.push(Finding {
                level,
                kind,
                secret: self.secret.clone(),
                what,
                hint,
            })
        };
        let fix = if self.issued {
            format!("get a new value from its issuer, then `secretsync rotate {} --from-command 'CMD'` (or `secretsync set {}`) and apply", self.secret, self.secret)
        } else {
            format!(
                "`secretsync rotate {}` and apply (or `secretsync set {}`)",
                self.secret, self.secret
            )
        };
        if let Some(e) = &self.expiry {
            let left = e.at - p.now;
            match self.state {
                ExpiryState::Expired => push(
                    Level::Error,
                    Kind::Expired,
                    format!(
                        "expired on {} ({} ago; {})",
                        shown(e.at),
                        span(left),
                        e.source.describe()
                    ),
                    fix.clone(),
                ),
                ExpiryState::Expiring => push(
                    Level::Warning,
                    Kind::Expiring,
                    format!(
                        "expires on {} (in {}; {})",
                        shown(e.at),
                        span(left),
                        e.source.describe()
                    ),
                    fix.clone(),
                ),
                _ => {}
            }
        }
        if let Some(nb) = self.not_before {
            push(
                Level::Warning,
                Kind::NotYetValid,
                format!(
                    "is not valid before {} (in {})",
                    shown(nb),
                    span(nb - p.now)
                ),
                "a consumer given it now will refuse it: check the issuer's clock or wait".into(),
            );
        }
        if let Some(r) = self.rotation.as_ref().filter(|r| r.overdue) {
            let set = r.set_on.map(date).unwrap_or_default();
            let due = r.due_on.map(date).unwrap_or_default();
            push(
                Level::Warning,
                Kind::RotationDue,
                format!(
                    "is due for rotation since {due} (set on {set}, rotate_every {})",
                    period(r.every_days)
                ),
                if self.generated.is_some() {
                    format!(
                        "`secretsync rotate {}` (or `secretsync rotate --due`) and apply",
                        self.secret
                    )
                } else if self.issued {
                    fix.clone()
                } else {
                    format!(
                        "issued elsewhere: rotate it at its source, then `secretsync set {}` and apply (if secretsync makes it: `secretsync rotate {} --generate SPEC`)",
                        self.secret, self.secret
                    )
                },
            );
        }
        out
    }
}

/// Every finding of `statuses`, errors first.
pub fn findings(statuses: &[Status], p: &Policy) -> Vec<Finding> {
    let mut all: Vec<Finding> = statuses.iter().flat_map(|s| s.findings(p)).collect();
    all.sort_by_key(|f| f.level);
    all
}

// ---- output -----------------------------------------------------------------------

fn counts(findings: &[Finding], p: &Policy) -> String {
    let n = |k| findings.iter().filter(|f| f.kind == k).count();
    let mut parts = Vec::new();
    if n(Kind::Expired) > 0 {
        parts.push(format!("{} expired", n(Kind::Expired)));
    }
    if n(Kind::Expiring) > 0 {
        parts.push(format!(
            "{} expiring within {}",
            n(Kind::Expiring),
            span(p.warn_within.max(DAY))
        ));
    }
    if n(Kind::NotYetValid) > 0 {
        parts.push(format!("{} not valid yet", n(Kind::NotYetValid)));
    }
    if n(Kind::RotationDue) > 0 {
        parts.push(format!("{} due for rotation", n(Kind::RotationDue)));
    }
    parts.join(", ")
}

/// The findings as text under a plan; empty when there are none.
pub fn text(findings: &[Finding], p: &Policy, color: bool) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let paint = |code: &str, t: &str| {
        if color {
            format!("\x1b[{code}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let mut out = String::from("Secrets:\n");
    for f in findings {
        let mark = match f.level {
            Level::Error => paint("31", "!"),
            Level::Warning => paint("33", "~"),
        };
        let _ = writeln!(out, "    {mark} {:<28} {}", f.secret, f.what);
        let _ = writeln!(out, "      {} {}", paint("36", "fix:"), f.hint);
    }
    let _ = writeln!(out, "Lifecycle: {}.", counts(findings, p));
    out
}

/// The findings as a markdown section; empty when there are none.
pub fn markdown(findings: &[Finding], p: &Policy) -> String {
    use crate::render::{md_code, md_escape};
    if findings.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n#### Secret lifecycle\n\n{}.\n\n| secret | |\n|---|---|\n",
        counts(findings, p)
    );
    for f in findings {
        let mark = match f.level {
            Level::Error => "❌",
            Level::Warning => "⚠️",
        };
        let _ = writeln!(
            out,
            "| {} | {mark} {} |",
            md_code(&f.secret),
            md_escape(&f.what)
        );
    }
    out
}

/// GitHub Actions annotations: `::error` for what expired, `::warning` else.
pub fn annotations(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            crate::ci::annotation(
                match f.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                },
                &format!("secretsync lifecycle: {}", f.secret),
                &format!("{} {}; fix: {}", f.secret, f.what, f.hint),
            )
        })
        .collect()
}

/// Lines for the `--notify` message (the secret's name is escaped by the caller).
pub fn notify_lines(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.secret.clone(), f.what.clone()))
        .collect()
}

/// One secret as JSON (plan's `secrets`, `list --format json`).
pub fn status_json(s: &Status, p: &Policy) -> Value {
    let mut v = json!({
        "name": s.secret,
        "targets": s.targets,
        "kind": if s.encrypted { "encrypted" } else { "plain" },
        "set_on": s.set_on,
        "expiry": s.state,
    });
    if let Some(e) = &s.expiry {
        v["expires"] = json!({
            "at": rfc3339(e.at),
            "source": e.source,
            "days_left": (e.at - p.now).div_euclid(DAY),
        });
    }
    if let Some(nb) = s.not_before {
        v["not_before"] = json!(rfc3339(nb));
    }
    if let Some(r) = &s.rotation {
        v["rotation"] = json!({
            "every_days": r.every_days,
            "due_on": r.due_on.map(date),
            "overdue": r.overdue,
        });
    }
    v["issued_elsewhere"] = json!(s.issued);
    v
}

/// The findings as JSON.
pub fn findings_json(findings: &[Finding]) -> Value {
    json!(findings
        .iter()
        .map(|f| json!({
            "level": f.level, "kind": f.kind, "secret": f.secret,
            "message": format!("{} {}", f.secret, f.what), "hint": f.hint,
        }))
        .collect::<Vec<_>>())
}

/// Plan's and list's JSON members: every secret, the findings, the window.
pub fn json(statuses: &[Status], p: &Policy) -> Value {
    json!({
        "warn_within_days": p.warn_within / DAY,
        "secrets": statuses.iter().map(|s| status_json(s, p)).collect::<Vec<_>>(),
        "findings": findings_json(&findings(statuses, p)),
    })
}

/// The lifecycle of a run's secrets, judged once, shown in every format.
#[derive(Debug, Clone)]
pub struct Report {
    pub policy: Policy,
    pub statuses: Vec<Status>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// The secrets of `m` that `only` keeps, with their decrypted values.
    pub fn new(
        m: &Manifest,
        values: &indexmap::IndexMap<String, Secret>,
        policy: Policy,
        only: impl Fn(&SecretDef) -> bool,
    ) -> Report {
        let statuses = assess_all(m, values, &policy, only);
        let findings = findings(&statuses, &policy);
        Report {
            policy,
            statuses,
            findings,
        }
    }

    pub fn text(&self, color: bool) -> String {
        text(&self.findings, &self.policy, color)
    }

    /// One line: what the findings count (`Lifecycle: 2 due for rotation.`);
    /// for a listing whose rows already show each secret.
    pub fn summary(&self) -> String {
        if self.findings.is_empty() {
            return String::new();
        }
        format!(
            "Lifecycle: {} (see the rows above; `secretsync plan` or `doctor` says what to do for each).\n",
            counts(&self.findings, &self.policy)
        )
    }

    pub fn markdown(&self) -> String {
        markdown(&self.findings, &self.policy)
    }

    pub fn json(&self) -> Value {
        json(&self.statuses, &self.policy)
    }

    pub fn annotations(&self) -> Vec<String> {
        annotations(&self.findings)
    }

    /// "1 expired, 2 expiring within 14 days" (empty when nothing is found).
    pub fn counts(&self) -> String {
        counts(&self.findings, &self.policy)
    }
}

/// `doctor`'s checks of the secrets `only` keeps: one failed check per
/// expired secret, a passed check with a warning per secret that expires
/// within the window (or is not valid yet, or is due for rotation), and one
/// passed check when nothing needs attention. `values` are those of the
/// kept secrets, decrypted once by the caller; none when they cannot be
/// decrypted, and then the manifest alone judges (the identity check says why).
pub fn doctor_checks(
    m: &Manifest,
    values: &indexmap::IndexMap<String, Secret>,
    warn_days: i64,
    only: impl Fn(&SecretDef) -> bool,
) -> Result<Vec<crate::targets::Check>, Error> {
    use crate::targets::{Check, TargetError};
    let policy = Policy::new(warn_days)?;
    let report = Report::new(m, values, policy, &only);
    let mut checks: Vec<Check> =
        report
            .findings
            .iter()
            .map(|f| Check {
                what: format!("secret {}", f.secret),
                outcome: match f.level {
                    Level::Error => Err(TargetError::auth(format!("{} {}", f.secret, f.what))
                        .with_hint(f.hint.clone())),
                    Level::Warning => Ok(format!("warning: {}; fix: {}", f.what, f.hint)),
                },
            })
            .collect();
    if checks.is_empty() {
        let known = report
            .statuses
            .iter()
            .filter(|s| s.expiry.is_some())
            .count();
        checks.push(Check {
            what: "expiry and rotation".into(),
            outcome: Ok(format!(
                "no secret expired, expiring within {} or due for rotation ({known} of {} with a known expiry)",
                span(report.policy.warn_within.max(DAY)),
                report.statuses.len()
            )),
        });
    }
    Ok(checks)
}

/// One line about a new value's expiry, for `set` and `rotate`.
pub fn about_new_value(value: &Secret, p: &Policy) -> Option<String> {
    let v = validity(value);
    let kind = match v.issued? {
        Source::Jwt => "a JWT",
        _ => "a certificate",
    };
    Some(match v.not_after {
        Some(at) if at <= p.now => format!(
            "the new value is {kind} that expired on {} ({} ago)",
            shown(at),
            span(at - p.now)
        ),
        Some(at) => format!(
            "the new value is {kind} that expires on {} (in {})",
            shown(at),
            span(at - p.now)
        ),
        None => format!("the new value is {kind} without an expiry"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWT with the given claims and a fake signature.
    pub(crate) fn jwt_with(claims: &Value) -> String {
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
            e(&json!({"alg": "HS256", "typ": "JWT"})),
            e(claims)
        )
    }

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn policy(warn_days: i64) -> Policy {
        Policy {
            now: parse_time(NOW).unwrap(),
            warn_within: warn_days * DAY,
        }
    }

    fn manifest(secret_fields: &str, top: &str) -> Manifest {
        let text = format!(
            "version: 1\n{top}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  TOKEN:\n    targets: [app]\n    value: x\n{secret_fields}"
        );
        crate::manifest::parse(std::path::Path::new("secrets.yaml"), text).unwrap()
    }

    fn state_of(value: &str, fields: &str, p: &Policy) -> (Status, Vec<Finding>) {
        let m = manifest(fields, "");
        // Judged as a secret (plain configuration is never due).
        let mut def = m.secrets["TOKEN"].clone();
        def.value = ValueSource::Encrypted(String::new());
        let s = assess(&m, &def, Some(&Secret::new(value.into())), p);
        let f = s.findings(p);
        (s, f)
    }

    #[test]
    fn dates_round_trip() {
        for d in ["1970-01-01", "2000-02-29", "2026-11-27", "2100-12-31"] {
            assert_eq!(date(parse_time(d).unwrap()), d);
        }
        assert_eq!(parse_time("1970-01-02").unwrap(), DAY);
        assert_eq!(
            rfc3339(parse_time("2026-12-15T12:00:00Z").unwrap()),
            "2026-12-15T12:00:00Z"
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-1-1",
            "2026-01-01T25:00:00Z",
            "tomorrow",
            "2026-01-01T10:00:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_period("90d"), Ok(Some(90)));
        assert_eq!(parse_period("2w"), Ok(Some(14)));
        assert_eq!(parse_period("never"), Ok(None));
        assert!(
            parse_period("3m").is_err()
                && parse_period("d").is_err()
                && parse_period("0d").is_err()
        );
        assert_eq!(parse_window("14"), Ok(14));
        assert_eq!(parse_window("3d"), Ok(3));
    }

    #[test]
    fn jwts_expired_soon_and_far() {
        let p = policy(DEFAULT_WARN_DAYS);
        let now = p.now;
        let expired = jwt_with(&json!({"sub": "gw", "exp": now - 2 * DAY}));
        let soon = jwt_with(&json!({"sub": "gw", "exp": now + 3 * DAY}));
        let year = jwt_with(&json!({"sub": "gw", "exp": now + 365 * DAY, "nbf": now - DAY}));

        let (s, f) = state_of(&expired, "", &p);
        assert_eq!(s.state, ExpiryState::Expired);
        assert_eq!(s.expiry.as_ref().unwrap().source, Source::Jwt);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].level, f[0].kind), (Level::Error, Kind::Expired));
        assert_eq!(
            f[0].what,
            "expired on 2026-11-25 12:00 UTC (2 days ago; the value's JWT `exp`)"
        );

        let (s, f) = state_of(&soon, "", &p);
        assert_eq!(s.state, ExpiryState::Expiring);
        assert_eq!((f[0].level, f[0].kind), (Level::Warning, Kind::Expiring));
        assert_eq!(
            f[0].what,
            "expires on 2026-11-30 12:00 UTC (in 3 days; the value's JWT `exp`)"
        );

        let (s, f) = state_of(&year, "", &p);
        assert_eq!(s.state, ExpiryState::Valid);
        assert!(f.is_empty(), "{f:?}");
        assert!(s.issued);
    }

    #[test]
    fn a_jwt_without_exp_raises_nothing() {
        let p = policy(DEFAULT_WARN_DAYS);
        let (s, f) = state_of(&jwt_with(&json!({"sub": "gw"})), "", &p);
        assert!(s.issued, "still recognised as issued elsewhere");
        assert_eq!(s.state, ExpiryState::Unknown);
        assert!(s.expiry.is_none() && f.is_empty());
        // Claims that are no date are no expiry (and no overflow).
        for exp in [
            json!(1e300),
            json!(-1e300),
            json!("2026-12-01"),
            json!(null),
        ] {
            let (s, f) = state_of(&jwt_with(&json!({ "exp": exp, "nbf": exp })), "", &p);
            assert_eq!((s.state, f.len()), (ExpiryState::Unknown, 0), "{exp}");
        }
        // Not a JWT: three dots of nonsense, or JSON without `alg`.
        assert_eq!(validity(&Secret::new("a.b.c".into())), Validity::default());
        let no_alg = jwt_with(&json!({})).replacen(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{}"),
            1,
        );
        assert_eq!(validity(&Secret::new(no_alg)), Validity::default());
    }

    #[test]
    fn a_jwt_not_valid_yet_is_said() {
        let p = policy(DEFAULT_WARN_DAYS);
        let early = jwt_with(&json!({"nbf": p.now + DAY, "exp": p.now + 300 * DAY}));
        let (s, f) = state_of(&early, "", &p);
        assert_eq!(s.state, ExpiryState::NotYetValid);
        assert_eq!(f[0].kind, Kind::NotYetValid);
    }

    const CERT: &str = include_str!("../tests/fixtures/lifecycle/test-cert.pem");

    #[test]
    fn a_pem_certificate_near_not_after() {
        // The fixture's notAfter is 2026-12-15 12:00 UTC: 18 days after NOW.
        let v = validity(&Secret::new(format!("key material stays out\n{CERT}")));
        assert_eq!(v.issued, Some(Source::Certificate));
        assert_eq!(
            v.not_after,
            Some(parse_time("2026-12-15T12:00:00Z").unwrap())
        );
        let (s, f) = state_of(CERT, "", &policy(14));
        assert_eq!(s.state, ExpiryState::Valid);
        assert!(f.is_empty());
        let (s, f) = state_of(CERT, "", &policy(30));
        assert_eq!(s.state, ExpiryState::Expiring);
        assert_eq!(
            f[0].what,
            "expires on 2026-12-15 12:00 UTC (in 18 days; the value's certificate notAfter)"
        );
        // A broken block is no certificate.
        let broken = CERT.replace("MIIB", "MIIC");
        assert_eq!(validity(&Secret::new(broken)), Validity::default());
    }

    #[test]
    fn expires_set_by_hand() {
        let p = policy(DEFAULT_WARN_DAYS);
        let (s, f) = state_of("opaque-token", "    expires: 2026-12-01\n", &p);
        assert_eq!(s.expiry.as_ref().unwrap().source, Source::Manifest);
        assert_eq!(s.state, ExpiryState::Expiring);
        assert_eq!(
            f[0].what,
            "expires on 2026-12-01 (in 3 days; `expires:` in the manifest)"
        );
        let (s, _) = state_of("opaque-token", "    expires: 2027-06-01\n", &p);
        assert_eq!(s.state, ExpiryState::Valid);
        // Both: the earlier counts.
        let far = jwt_with(&json!({"exp": p.now + 365 * DAY}));
        let (s, _) = state_of(&far, "    expires: 2026-12-01\n", &p);
        assert_eq!(s.expiry.unwrap().source, Source::Manifest);
    }

    #[test]
    fn rotation_overdue_and_not() {
        let p = policy(DEFAULT_WARN_DAYS);
        let (s, f) = state_of(
            "x",
            "    rotate_every: 90d\n    set_on: \"2026-08-01\"\n",
            &p,
        );
        let r = s.rotation.unwrap();
        assert!(r.overdue);
        assert_eq!(r.due_on.map(date).as_deref(), Some("2026-10-30"));
        assert_eq!(f[0].kind, Kind::RotationDue);
        assert_eq!(
            f[0].what,
            "is due for rotation since 2026-10-30 (set on 2026-08-01, rotate_every 90d)"
        );
        let (s, f) = state_of(
            "x",
            "    rotate_every: 90d\n    set_on: \"2026-10-01\"\n",
            &p,
        );
        assert!(!s.rotation.unwrap().overdue);
        assert!(f.is_empty());
        // The date of the newest `previous` stands in for a missing set_on.
        let (s, _) = state_of(
            "x",
            "    rotate_every: 4w\n    previous:\n      - fingerprint: fp:00000000\n        replaced: \"2026-10-01\"\n",
            &p,
        );
        assert!(s.rotation.unwrap().overdue);
        // Without any date, the due date is unknown, not overdue.
        let (s, f) = state_of("x", "    rotate_every: 90d\n", &p);
        assert_eq!(s.rotation.as_ref().unwrap().due_on, None);
        assert!(f.is_empty());
    }

    #[test]
    fn the_top_level_default_applies_to_encrypted_secrets() {
        let p = policy(DEFAULT_WARN_DAYS);
        let m = manifest("    set_on: \"2026-01-01\"\n", "rotate_every: 30d\n");
        assert_eq!(m.rotate_every, Some(30));
        // TOKEN is plain: the default is not for it.
        let s = assess(&m, &m.secrets["TOKEN"], None, &p);
        assert!(s.rotation.is_none());
        let mut enc = m.secrets["TOKEN"].clone();
        enc.value = ValueSource::Encrypted(String::new());
        assert!(assess(&m, &enc, None, &p).rotation.unwrap().overdue);
        let m2 = manifest(
            "    set_on: \"2026-01-01\"\n    rotate_every: never\n",
            "rotate_every: 30d\n",
        );
        assert_eq!(m2.secrets["TOKEN"].rotate_every, Some(None));
        // A plain value is never due, even with its own rotate_every.
        let m3 = manifest("    set_on: \"2026-01-01\"\n    rotate_every: 7d\n", "");
        assert!(assess(&m3, &m3.secrets["TOKEN"], None, &p)
            .rotation
            .is_none());
    }

    #[test]
    fn bad_lifecycle_fields_are_refused_where_they_stand() {
        let load = |fields: &str, top: &str| {
            let text = format!(
                "version: 1\n{top}targets:\n  app:\n    type: env_file\n    path: app.env\nsecrets:\n  TOKEN:\n    targets: [app]\n    value: x\n{fields}"
            );
            crate::manifest::parse(std::path::Path::new("secrets.yaml"), text)
                .unwrap_err()
                .to_string()
        };
        let e = load("    expires: 2026-02-30\n", "");
        assert!(e.starts_with("expires: `2026-02-30` is not a date"), "{e}");
        assert!(e.contains("secrets.yaml:10:14"), "{e}");
        let e = load("    rotate_every: 3 months\n", "");
        assert!(
            e.starts_with("rotate_every: `3 months` is not a period"),
            "{e}"
        );
        let e = load("", "rotate_every: 90\n");
        assert!(e.contains("secrets.yaml:2:15"), "{e}");
        let e = load("    set_on: yesterday\n", "");
        assert!(e.starts_with("set_on: `yesterday` is not a date"), "{e}");
    }

    #[test]
    fn the_warning_window() {
        let soon = jwt_with(&json!({"exp": policy(0).now + 3 * DAY}));
        for (days, warned) in [(14, true), (3, true), (2, false), (0, false)] {
            let (_, f) = state_of(&soon, "", &policy(days));
            assert_eq!(!f.is_empty(), warned, "--warn-within {days}");
        }
    }

    #[test]
    fn outputs_never_hold_the_value() {
        let p = policy(DEFAULT_WARN_DAYS);
        let canary = jwt_with(&json!({"sub": "CANARY-sub", "exp": p.now - DAY}));
        let m = manifest("", "");
        let mut values = indexmap::IndexMap::new();
        values.insert("TOKEN".to_string(), Secret::new(canary.clone()));
        let mut def = m.secrets["TOKEN"].clone();
        def.value = ValueSource::Encrypted(String::new());
        let s = vec![assess(&m, &def, Some(&Secret::new(canary.clone())), &p)];
        let f = findings(&s, &p);
        assert_eq!(f.len(), 1);
        let all = format!(
            "{}{}{}{}{}",
            text(&f, &p, false),
            markdown(&f, &p),
            annotations(&f).join("\n"),
            json(&s, &p),
            about_new_value(&Secret::new(canary.clone()), &p).unwrap()
        );
        for piece in canary.split('.').chain(["CANARY"]) {
            assert!(!all.contains(piece), "{piece} in {all}");
        }
    }
}
