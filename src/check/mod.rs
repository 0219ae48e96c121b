//! `secretsync check`: validates a manifest without an identity and without
//! contacting anything, fast enough for a pre-commit hook and for the pull
//! requests of forks, which get no secrets.
//!
//! It checks what can be checked without a key: the schema and references
//! (as [`manifest::load`] does), that every encrypted value and the
//! `fingerprint_key` is an age file whose header parses and names as many
//! recipients as the manifest lists, and that no plain `value:` looks like a
//! secret. It never decrypts and never prints a value.
//!
//! Here the checks are gathered; [`header`] reads age headers, [`plain`]
//! spots plain values that look secret, [`output`] renders the report.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::crypto::Recipient;
use crate::manifest::{self, Manifest, ManifestError, ValueSource};

mod header;
mod output;
mod plain;

use header::*;
pub use output::{json, markdown, text, unverified_note};
pub use plain::{looks_secret, shannon};

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
    /// Of those, the values of one environment (#27).
    pub per_environment: usize,
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
/// With `envs` (`check --env`, #27), the part of it those environments
/// hold: their values, the values for every environment that reach them,
/// their targets' files; the whole manifest is loaded and its mistakes
/// reported all the same. `Err`: an `--env` it does not define.
pub fn check(path: &Path, envs: &[String]) -> Result<Report, crate::error::Error> {
    Ok(match manifest::load(path) {
        Ok(m) => {
            m.check_envs(envs).map_err(|why| {
                crate::error::Error::usage(why, crate::manifest::environments::DEFINED_HINT)
            })?;
            let mut r = check_manifest_in(&m, envs);
            r.findings.extend(
                unignored(&m)
                    .into_iter()
                    .filter(|(target, _)| in_envs(m.env_of(target), envs))
                    .map(|(_, f)| f),
            );
            r
        }
        Err(e) => Report {
            findings: vec![load_error(&e)],
            ..Report::default()
        },
    })
}

/// Whether a part of environment `env` (`None`: of every one) is among
/// `envs` (none: all).
fn in_envs(env: Option<&str>, envs: &[String]) -> bool {
    envs.is_empty() || env.is_none_or(|e| envs.iter().any(|x| x == e))
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
fn unignored(m: &Manifest) -> Vec<(String, Finding)> {
    crate::gitignore::unignored_env_files(m)
        .into_iter()
        .map(|(target, path)| (target.clone(), Finding {
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
        }))
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
    check_manifest_in(m, &[])
}

/// Checks the values of a manifest that loaded that environments `envs`
/// hold (none: all).
fn check_manifest_in(m: &Manifest, envs: &[String]) -> Report {
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
    // With `--env`: the secrets in those environments, and of a secret
    // with a value per environment, their values only.
    let in_chosen =
        |s: &manifest::SecretDef| envs.is_empty() || envs.iter().any(|e| s.value_in(e).is_some());
    let mut report = Report {
        secrets: m.secrets.values().filter(|s| in_chosen(s)).count(),
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

    for (name, s) in m.secrets.iter().filter(|(_, s)| in_chosen(s)) {
        let sp = places.as_ref().and_then(|p| p.secrets.get(name));
        if s.per_environment() {
            for (env, v) in &s.values {
                let ValueSource::Encrypted(armored) = v else {
                    continue;
                };
                if !in_envs(Some(env), envs) {
                    continue;
                }
                report.encrypted += 1;
                report.per_environment += 1;
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
