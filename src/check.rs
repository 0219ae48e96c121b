//! `secretsync check`: validates a manifest without an identity and without
//! contacting anything, fast enough for a pre-commit hook and for the pull
//! requests of forks, which get no secrets.
//!
//! It checks what can be checked without a key: the schema and references
//! (as [`manifest::load`] does), that every encrypted value and the
//! `fingerprint_key` is an age file whose header parses and names as many
//! recipients as the manifest lists, and that no plain `value:` looks like a
//! secret. It never decrypts and never prints a value.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::crypto::Recipient;
use crate::manifest::{self, Manifest, ManifestError, ValueSource};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The manifest cannot be used as it is (exit 1).
    Error,
    /// Worth a look; not an error (exit 0, or 2 with --detailed-exitcode).
    Warning,
}

/// One thing `check` found, where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    /// The secret it is about, if any (`fingerprint_key` for that field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The rustc-style rendering of a manifest error (text output only).
    #[serde(skip)]
    pub detail: Option<String>,
}

/// What `check` found in one manifest.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub secrets: usize,
    pub encrypted: usize,
    pub recipients: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Level::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Level::Warning)
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// An inline comment that marks a plain value as not secret (a false positive).
pub const ALLOW_MARK: &str = "secretsync: not-secret";

/// Checks the manifest at `path`. Never decrypts, never contacts anything.
pub fn check(path: &Path) -> Report {
    match manifest::load(path) {
        Ok(m) => {
            let mut r = check_manifest(&m);
            r.findings.extend(unignored(&m));
            r
        }
        Err(e) => Report {
            findings: vec![load_error(&e)],
            ..Report::default()
        },
    }
}

fn load_error(e: &ManifestError) -> Finding {
    match e {
        ManifestError::At(l) => Finding {
            level: Level::Error,
            line: l.line,
            column: l.column,
            secret: None,
            message: l.message.clone(),
            hint: l.hint.clone(),
            detail: Some(e.to_string()),
        },
        ManifestError::Read { .. } => Finding {
            level: Level::Error,
            line: 0,
            column: 0,
            secret: None,
            message: e.to_string(),
            hint: None,
            detail: Some(e.to_string()),
        },
    }
}

/// A warning per local env file (values in clear) inside a git work tree
/// that git does not ignore: one `git add .` from a commit.
fn unignored(m: &Manifest) -> Vec<Finding> {
    crate::gitignore::unignored_env_files(m)
        .into_iter()
        .map(|(target, path)| Finding {
            level: Level::Warning,
            line: 0,
            column: 0,
            secret: None,
            message: format!(
                "target `{target}` writes values in clear to {path}, inside a git work tree, and git does not ignore it"
            ),
            hint: Some(format!(
                "add it to .gitignore (`echo '/{}' >> .gitignore`), or move the file out of the repository",
                path.trim_start_matches("./")
            )),
            detail: None,
        })
        .collect()
}

/// The places of the values, which [`Manifest`] does not keep. Unknown fields
/// are ignored here: the manifest has been validated already.
#[derive(Deserialize)]
struct Places {
    fingerprint_key: Option<Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    secrets: IndexMap<String, SecretPlaces>,
}

#[derive(Deserialize)]
struct SecretPlaces {
    value: Option<Spanned<serde::de::IgnoredAny>>,
    encrypted: Option<Spanned<serde::de::IgnoredAny>>,
}

type Place = (usize, usize);

fn place<T>(s: &Option<Spanned<T>>) -> Place {
    s.as_ref().map_or((0, 0), |s| {
        (s.referenced.line() as usize, s.referenced.column() as usize)
    })
}

/// Checks a manifest that loaded.
pub fn check_manifest(m: &Manifest) -> Report {
    let places: Option<Places> = serde_saphyr::from_str(&m.source).ok();
    let lines: Vec<&str> = m.source.lines().collect();
    // One value for all is encrypted to everyone (with environments, the
    // union); a value per environment to that environment's recipients.
    let everyone = m.recipients_for(None);
    let expected = Expected::new(&everyone);
    let per_env: IndexMap<&str, Expected> = m
        .environments
        .iter()
        .map(|(n, e)| (n.as_str(), Expected::new(&e.recipients)))
        .collect();
    let mut report = Report {
        secrets: m.secrets.len(),
        recipients: everyone.len(),
        ..Report::default()
    };

    if let Some(armored) = &m.fingerprint_key {
        let at = places
            .as_ref()
            .map_or((0, 0), |p| place(&p.fingerprint_key));
        if let Err((message, hint)) = expected.check(armored) {
            report.findings.push(Finding {
                level: Level::Error,
                line: at.0,
                column: at.1,
                secret: Some("fingerprint_key".into()),
                message: format!("fingerprint_key: {message}"),
                hint: Some(hint),
                detail: None,
            });
        }
    }

    for (name, s) in &m.secrets {
        let sp = places.as_ref().and_then(|p| p.secrets.get(name));
        if s.per_environment() {
            for (env, v) in &s.values {
                let ValueSource::Encrypted(armored) = v else {
                    continue;
                };
                report.encrypted += 1;
                let Some(exp) = per_env.get(env.as_str()) else {
                    continue;
                };
                if let Err((message, hint)) = exp.check(armored) {
                    let at = sp.map_or((0, 0), |p| place(&p.encrypted));
                    report.findings.push(Finding {
                        level: Level::Error,
                        line: at.0,
                        column: at.1,
                        secret: Some(name.clone()),
                        message: format!(
                            "secret `{name}`, environment `{env}`: {}",
                            message.replace("the manifest lists", "the environment lists").replace("the manifest's", "the environment's")
                        ),
                        hint: Some(format!(
                            "set it again for that environment: `secretsync set {name} --env {env}` encrypts to its recipients only ({hint})"
                        )),
                        detail: None,
                    });
                }
            }
            continue;
        }
        match &s.value {
            ValueSource::Encrypted(armored) => {
                report.encrypted += 1;
                if let Err((message, hint)) = expected.check(armored) {
                    let at = sp.map_or((0, 0), |p| place(&p.encrypted));
                    report.findings.push(Finding {
                        level: Level::Error,
                        line: at.0,
                        column: at.1,
                        secret: Some(name.clone()),
                        message: format!("secret `{name}`: {message}"),
                        hint: Some(hint),
                        detail: None,
                    });
                }
                if let Some(envs) = shared_across_boundaries(m, s) {
                    let at = sp.map_or((0, 0), |p| place(&p.encrypted));
                    report.findings.push(Finding {
                        level: Level::Warning,
                        line: at.0,
                        column: at.1,
                        secret: Some(name.clone()),
                        message: format!(
                            "secret `{name}` has one value for environments {envs}, whose recipients differ: whoever can read one can read the others' copy"
                        ),
                        hint: Some(format!(
                            "give it a value per environment (`secretsync set {name} --env ENV`), or keep it to one environment with `environments: [..]`"
                        )),
                        detail: None,
                    });
                }
            }
            ValueSource::Plain(value) => {
                let at = sp.map_or((0, 0), |p| place(&p.value));
                let allowed =
                    at.0 > 0 && lines.get(at.0 - 1).is_some_and(|l| l.contains(ALLOW_MARK));
                if allowed {
                    continue;
                }
                if let Some(why) = looks_secret(value) {
                    report.findings.push(Finding {
                        level: Level::Warning,
                        line: at.0,
                        column: at.1,
                        secret: Some(name.clone()),
                        message: format!(
                            "secret `{name}` has a plain `value` that looks like a secret ({why})"
                        ),
                        hint: Some(format!(
                            "encrypt it with `secretsync set {name} --encrypt` (and rotate it: it is in the history), or add `# {ALLOW_MARK}` at the end of that line if it is not secret"
                        )),
                        detail: None,
                    });
                }
            }
        }
    }
    report
        .findings
        .sort_by_key(|f| (f.line == 0, f.line, f.column));
    report
}

/// The environments (listed, "`a`, `b`") an encrypted one-for-all value
/// reaches when their recipients differ, if they do (#27).
fn shared_across_boundaries(m: &Manifest, s: &manifest::SecretDef) -> Option<String> {
    let mut envs: Vec<&str> = Vec::new();
    for t in &s.targets {
        if let Some(e) = m.env_of(t) {
            if !envs.contains(&e) {
                envs.push(e);
            }
        }
    }
    let set = |e: &str| {
        let mut keys: Vec<String> = m.environments[e]
            .recipients
            .iter()
            .map(ToString::to_string)
            .collect();
        keys.sort();
        keys
    };
    let first = set(envs.first()?);
    envs.iter().skip(1).any(|e| set(e) != first).then(|| {
        envs.iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

// ---- output ----------------------------------------------------------------------

fn place_text(path: &str, f: &Finding) -> String {
    if f.line == 0 {
        path.to_string()
    } else {
        format!("{path}:{}:{}", f.line, f.column)
    }
}

fn summary(r: &Report) -> String {
    format!(
        "Check: {}, {} ({}, {} encrypted, {}).",
        plural(r.errors(), "error"),
        plural(r.warnings(), "warning"),
        plural(r.secrets, "secret"),
        r.encrypted,
        plural(r.recipients, "recipient")
    )
}

/// The report as text: one finding per paragraph, `file:line:column` first.
pub fn text(r: &Report, path: &str) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        match &f.detail {
            Some(d) => out.push_str(&format!("{level}: {d}\n")),
            None => {
                out.push_str(&format!(
                    "{}: {level}: {}\n",
                    place_text(path, f),
                    f.message
                ));
                if let Some(h) = &f.hint {
                    out.push_str(&format!("  hint: {h}\n"));
                }
            }
        }
    }
    out.push_str(&summary(r));
    out.push('\n');
    out
}

/// What `check` could not verify: without an identity it reads the headers
/// of encrypted values, not whether they decrypt (a value encrypted to
/// another key passes). On stderr, so the report on stdout is unchanged.
pub fn unverified_note(r: &Report) -> Option<String> {
    (r.encrypted > 0).then(|| {
        format!(
            "note: {} checked by header only: without an identity, check cannot tell whether {} decrypt{} (plan does, and names the targets it cannot plan)",
            plural(r.encrypted, "encrypted value"),
            if r.encrypted == 1 { "it" } else { "they" },
            if r.encrypted == 1 { "s" } else { "" }
        )
    })
}

/// The report as JSON (see docs/json-output.md).
pub fn json(r: &Report, path: &str) -> serde_json::Value {
    serde_json::json!({
        "format_version": crate::render::JSON_FORMAT_VERSION,
        "kind": "check",
        "manifest": path,
        "ok": r.errors() == 0,
        "errors": r.errors(),
        "warnings": r.warnings(),
        "secrets": r.secrets,
        "encrypted": r.encrypted,
        "unverified": r.encrypted,
        "recipients": r.recipients,
        "findings": r.findings,
    })
}

/// The report as markdown, for a pull request comment.
pub fn markdown(r: &Report, path: &str) -> String {
    let mut out = format!("### secretsync check\n\n{}\n", summary(r));
    if !r.findings.is_empty() {
        out.push_str("\n| place | level | finding |\n|---|---|---|\n");
        for f in &r.findings {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                crate::render::md_code(&place_text(path, f)),
                match f.level {
                    Level::Error => "❌ error",
                    Level::Warning => "⚠️ warning",
                },
                crate::render::md_escape(&f.message)
            ));
        }
    }
    out
}

// ---- age headers ---------------------------------------------------------------

/// The recipient stanzas a value encrypted to the manifest's recipients has.
struct Expected {
    x25519: usize,
    /// ssh-ed25519 recipients by their stanza tag (base64 of the first four
    /// bytes of SHA-256 of the key), which a stanza names in clear.
    ssh_tags: BTreeMap<String, usize>,
    total: usize,
}

/// The stanza types that stand for a recipient; any other type is grease
/// (random stanzas age adds so that parsers stay tolerant) or a plugin.
const RECIPIENT_TYPES: &[&str] = &["X25519", "ssh-ed25519", "ssh-rsa"];

impl Expected {
    fn new(recipients: &[Recipient]) -> Expected {
        let mut e = Expected {
            x25519: 0,
            ssh_tags: BTreeMap::new(),
            total: recipients.len(),
        };
        for r in recipients {
            match r {
                Recipient::X25519(_) => e.x25519 += 1,
                Recipient::Ssh(_) => {
                    *e.ssh_tags.entry(ssh_tag(&r.to_string())).or_default() += 1;
                }
            }
        }
        e
    }

    /// `Err((what is wrong, what to do))`.
    fn check(&self, armored: &str) -> Result<(), (String, String)> {
        let header = parse_header(armored).map_err(|why| {
            (
                why,
                "write the value again with `secretsync set` (it must be an armored age file encrypted to the recipients)".to_string(),
            )
        })?;
        let rekey = "run `secretsync rekey` (with an identity) to encrypt every value to the manifest's recipients".to_string();
        if header.scrypt {
            return Err((
                "it is encrypted with a passphrase, not to the recipients".into(),
                rekey,
            ));
        }
        let found = header.recipients.len();
        if found != self.total {
            return Err((
                format!(
                    "it is encrypted to {} but the manifest lists {}",
                    plural(found, "recipient"),
                    plural(self.total, "recipient")
                ),
                rekey,
            ));
        }
        let x25519 = header
            .recipients
            .iter()
            .filter(|s| s.kind == "X25519")
            .count();
        let mut tags: BTreeMap<String, usize> = BTreeMap::new();
        for s in header.recipients.iter().filter(|s| s.kind != "X25519") {
            *tags.entry(s.tag.clone()).or_default() += 1;
        }
        if x25519 != self.x25519 || tags != self.ssh_tags {
            return Err((
                format!(
                    "its recipients are not the manifest's: {} age and {} SSH, where the manifest lists {} age and {} SSH{}",
                    x25519,
                    found - x25519,
                    self.x25519,
                    self.total - self.x25519,
                    if found - x25519 == self.total - self.x25519 {
                        " (another SSH key)"
                    } else {
                        ""
                    }
                ),
                rekey,
            ));
        }
        Ok(())
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The stanza tag age gives an ssh-ed25519 recipient (`ssh-ed25519 BASE64`).
fn ssh_tag(recipient: &str) -> String {
    use base64::Engine as _;
    let blob = recipient
        .split_whitespace()
        .nth(1)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(&Sha256::digest(&blob)[..4])
}

/// A recipient stanza: its type and, for SSH, its key tag.
#[derive(Debug, PartialEq, Eq)]
struct Stanza {
    kind: String,
    tag: String,
}

#[derive(Debug)]
struct Header {
    recipients: Vec<Stanza>,
    scrypt: bool,
}

/// Decodes the armor and reads the age header (the format is at
/// age-encryption.org/v1). age's own parser validates the header too; it does
/// not expose the stanzas, so they are counted here.
fn parse_header(armored: &str) -> Result<Header, String> {
    let mut bytes = Vec::with_capacity(armored.len());
    age::armor::ArmoredReader::new(armored.trim().as_bytes())
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the armor does not decode: {e}"))?;
    crate::crypto::check_stanzas(&bytes)?;
    let decryptor = age::Decryptor::new_buffered(&bytes[..])
        .map_err(|e| format!("the age header does not parse: {e}"))?;
    let scrypt = decryptor.is_scrypt();

    let mut lines = bytes.split(|&b| b == b'\n');
    if lines.next() != Some(b"age-encryption.org/v1") {
        return Err("the age header does not parse: not an age-encryption.org/v1 file".into());
    }
    let mut recipients = Vec::new();
    loop {
        let Some(line) = lines.next() else {
            return Err("the age header does not parse: it has no end".into());
        };
        if line.starts_with(b"---") {
            break;
        }
        let Some(args) = line.strip_prefix(b"-> ") else {
            return Err("the age header does not parse: a line is not a stanza".into());
        };
        let args = String::from_utf8_lossy(args);
        let mut args = args.split(' ');
        let kind = args.next().unwrap_or("").to_string();
        let tag = args.next().unwrap_or("").to_string();
        // The body: full lines of 64 base64 characters, then a shorter one.
        loop {
            match lines.next() {
                Some(body) if body.len() == 64 => continue,
                Some(_) => break,
                None => return Err("the age header does not parse: a stanza has no end".into()),
            }
        }
        if RECIPIENT_TYPES.contains(&kind.as_str()) {
            recipients.push(Stanza { kind, tag });
        }
    }
    Ok(Header { recipients, scrypt })
}

// ---- plain values that look like secrets ----------------------------------------

/// Prefixes of well-known credentials, with what they are.
const PREFIXES: &[(&str, &str)] = &[
    ("ghp_", "GitHub token prefix `ghp_`"),
    ("gho_", "GitHub token prefix `gho_`"),
    ("ghu_", "GitHub token prefix `ghu_`"),
    ("ghs_", "GitHub token prefix `ghs_`"),
    ("ghr_", "GitHub token prefix `ghr_`"),
    ("github_pat_", "GitHub token prefix `github_pat_`"),
    ("glpat-", "GitLab token prefix `glpat-`"),
    ("sk_live_", "Stripe key prefix `sk_live_`"),
    ("sk_test_", "Stripe key prefix `sk_test_`"),
    ("rk_live_", "Stripe key prefix `rk_live_`"),
    ("rk_test_", "Stripe key prefix `rk_test_`"),
    ("whsec_", "Stripe webhook secret prefix `whsec_`"),
    ("xoxb-", "Slack token prefix `xoxb-`"),
    ("xoxa-", "Slack token prefix `xoxa-`"),
    ("xoxp-", "Slack token prefix `xoxp-`"),
    ("xapp-", "Slack token prefix `xapp-`"),
    ("AKIA", "AWS access key id prefix `AKIA`"),
    ("ASIA", "AWS access key id prefix `ASIA`"),
    ("AIza", "Google API key prefix `AIza`"),
    ("npm_", "npm token prefix `npm_`"),
    ("sk-", "API key prefix `sk-`"),
    ("AGE-SECRET-KEY-", "an age identity"),
];

/// Entropy bars, by the kind of token: values of people (names, paths,
/// identifiers with separators) stay under them; random keys are over.
/// Mixed case and digits: base64 and most generated keys.
const MIXED_MIN_LEN: usize = 20;
const MIXED_BITS: f64 = 3.5;
/// One case and digits, judged per part between `_` and `-`, which people
/// put in identifiers and generators do not.
const ONE_CASE_MIN_LEN: usize = 24;
const ONE_CASE_BITS: f64 = 3.8;
/// Hex digits carry at most 4 bits per character: their own bar.
const HEX_MIN_LEN: usize = 32;
const HEX_BITS: f64 = 3.0;

/// Why a plain value looks like a secret, if it does. The reason never
/// quotes the value.
pub fn looks_secret(value: &str) -> Option<String> {
    if value.contains("-----BEGIN") {
        return Some("a PEM block `-----BEGIN`".into());
    }
    if has_url_password(value) {
        return Some("a URL with a password".into());
    }
    for token in value.split(|c: char| c.is_whitespace() || "\"'`,;".contains(c)) {
        let token = token.trim_start_matches(|c: char| "([{<".contains(c));
        for (prefix, what) in PREFIXES {
            // A bare prefix or a word that merely starts with it is not a key.
            if token.starts_with(prefix) && token.len() >= prefix.len() + 12 {
                return Some((*what).into());
            }
        }
        if is_jwt(token) {
            return Some("a JSON Web Token `eyJ…`".into());
        }
        if let Some(why) = random_looking(token) {
            return Some(why);
        }
    }
    None
}

/// `scheme://user:password@host`.
fn has_url_password(value: &str) -> bool {
    value.split_whitespace().any(|word| {
        let Some((_, rest)) = word.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        match authority.rsplit_once('@') {
            Some((userinfo, _)) => userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()),
            None => false,
        }
    })
}

/// Three base64url parts, the first a JSON object (`eyJ` is `{"`).
fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[0].len() >= 10
        && parts[1].len() >= 10
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=')
        })
}

/// A long token of high Shannon entropy. URLs and paths are cut at their
/// punctuation first so that their words are judged, not the whole.
fn random_looking(token: &str) -> Option<String> {
    let high = |part: &str, bar: f64| {
        let bits = shannon(part);
        (bits >= bar).then(|| {
            format!(
                "high entropy: {bits:.1} bits per character over {} characters",
                part.chars().count()
            )
        })
    };
    for part in token.split(|c: char| ":/@?&=.#".contains(c)) {
        let len = part.chars().count();
        if len < MIXED_MIN_LEN.min(ONE_CASE_MIN_LEN) || is_uuid(part) {
            continue;
        }
        let upper = part.chars().any(|c| c.is_ascii_uppercase());
        let lower = part.chars().any(|c| c.is_ascii_lowercase());
        let digit = part.chars().any(|c| c.is_ascii_digit());
        if !digit {
            continue;
        }
        if part.chars().all(|c| c.is_ascii_hexdigit()) {
            if len >= HEX_MIN_LEN {
                if let Some(why) = high(part, HEX_BITS) {
                    return Some(why);
                }
            }
        } else if upper && lower {
            if let Some(why) = high(part, MIXED_BITS) {
                return Some(why);
            }
        } else {
            for word in part.split(['_', '-']) {
                if word.chars().count() >= ONE_CASE_MIN_LEN
                    && word.chars().any(|c| c.is_ascii_digit())
                {
                    if let Some(why) = high(word, ONE_CASE_BITS) {
                        return Some(why);
                    }
                }
            }
        }
    }
    None
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Shannon entropy in bits per character.
pub fn shannon(s: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto;

    fn x25519() -> Recipient {
        Recipient::X25519(age::x25519::Identity::generate().to_public())
    }

    #[test]
    fn counts_recipient_stanzas_and_ignores_grease() {
        let (a, b) = (x25519(), x25519());
        // age adds a grease stanza to some files; over many files some have one.
        for _ in 0..20 {
            let two = crypto::encrypt(&[a.clone(), b.clone()], b"v").unwrap();
            let h = parse_header(&two).unwrap();
            assert_eq!(h.recipients.len(), 2, "{h:?}");
            assert!(Expected::new(&[a.clone(), b.clone()]).check(&two).is_ok());
            let e = Expected::new(&[a.clone(), b.clone(), x25519()])
                .check(&two)
                .unwrap_err();
            assert_eq!(
                e.0,
                "it is encrypted to 2 recipients but the manifest lists 3 recipients"
            );
        }
    }

    #[test]
    fn a_grease_stanza_is_not_a_recipient() {
        let one = crypto::encrypt(&[x25519()], b"v").unwrap();
        let mut bytes = Vec::new();
        age::armor::ArmoredReader::new(one.as_bytes())
            .read_to_end(&mut bytes)
            .unwrap();
        let text_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut greased = bytes[..text_end].to_vec();
        greased.extend_from_slice(b"-> 1h-grease x y\nAAAA\n");
        greased.extend_from_slice(&bytes[text_end..]);
        let mut out = Vec::new();
        let mut w =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .unwrap();
        std::io::Write::write_all(&mut w, &greased).unwrap();
        w.finish().unwrap();
        let h = parse_header(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(h.recipients.len(), 1, "{h:?}");
    }

    #[test]
    fn bad_armor_is_an_error() {
        let one = crypto::encrypt(&[x25519()], b"v").unwrap();
        let broken = one.replacen('A', "!", 3);
        let e = parse_header(&broken).unwrap_err();
        assert!(
            e.starts_with("the armor does not decode") || e.starts_with("the age header"),
            "{e}"
        );
    }

    #[test]
    fn ssh_tags_match_age() {
        // The tag of a recipient equals the one age writes in its stanza.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
        let r = crypto::parse_recipient(key).unwrap();
        let ct = crypto::encrypt(std::slice::from_ref(&r), b"v").unwrap();
        let h = parse_header(&ct).unwrap();
        assert_eq!(h.recipients[0].kind, "ssh-ed25519");
        assert_eq!(h.recipients[0].tag, ssh_tag(&r.to_string()));
        assert!(Expected::new(&[r]).check(&ct).is_ok());
    }

    #[test]
    fn secret_looking_values() {
        for v in [
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "sk_live_51HxYzAbCdEfGhIjKlMnOp",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
            "AKIAIOSFODNN7EXAMPLE1234",
            "AIzaSyD-abcdefghijklmnopqrstuvwxyz0123",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "postgres://app:hunter2@db.internal:5432/app",
            "Zx8q2LmN4pR7sT1vW3yB5dF6gH9jK0cA",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "k8x2m9q4w7e1r5t3y6u0i2o4p8a5s7d9",
            "dGhpcyBpcyBhIHJhbmRvbSBrZXkgZm9yIHRlc3Rz+A==",
        ] {
            assert!(looks_secret(v).is_some(), "{v}");
        }
        for v in [
            "info",
            "8080",
            "https://api.example.com/v1/webhooks/incoming",
            "550e8400-e29b-41d4-a716-446655440000",
            "my_service_name_2026_production",
            "redis_cache_cluster_primary_01",
            "storage-2026-11-backup-bucket-eu-west-1",
            "arn_aws_iam_123456789012_role_deploy",
            "0000000000000000000000000000000000000000",
            "The quick brown fox jumps over the lazy dog 12 times",
            "postgres://db.internal:5432/app",
            "/var/lib/app/data/storage-2026-11",
            "ghp_",
            "sk-learn",
        ] {
            assert_eq!(looks_secret(v), None, "{v}");
        }
    }

    #[test]
    fn the_reason_never_quotes_the_value() {
        let v = "Zx8q2LmN4pR7sT1vW3yB5dF6gH9jK0cA";
        assert!(!looks_secret(v).unwrap().contains(v));
    }
}
