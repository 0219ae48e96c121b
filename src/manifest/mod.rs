//! The manifest (`secrets.yaml`): types, loading and validation.
//!
//! Loading is two steps. serde (through serde-saphyr, which reports line and
//! column) reads the text into "raw" structs whose fields keep their source
//! location; validation then turns them into typed [`TargetSpec`]s and
//! [`SecretDef`]s, so that every mistake, syntactic or semantic, is reported
//! at the file, line and column where it stands, with a hint.
//!
//! The manifest knows no backend: a target's `type:` names a kind in the
//! registry ([`crate::targets::kind`]), which reads the target's [`Fields`]
//! into its own spec.
//!
//! Layout: this file holds the types a manifest loads into, and [`load`] /
//! [`parse`]; `raw` is the spanned serde layer, `validate` the checks that
//! turn it into these types. What a kind reads a target from (`Fields`) and
//! the error and how it is shown (`ManifestError`) live in the target seam
//! (src/targets/fields.rs, src/targets/diagnostics.rs), re-exported here.

pub mod environments;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::crypto::Recipient;
pub use crate::envfile::Format as EnvFormat;
pub use crate::targets::diagnostics::{Located, ManifestError};
pub use crate::targets::fields::{argv_safe, parse_duration, Fields};
pub use crate::targets::TargetSpec;
pub use environments::{Environment, Instance};

use raw::RawManifest;
use validate::Checker;

/// The manifest versions this build reads.
pub const VERSION: u32 = 1;

/// A loaded, validated manifest.
#[derive(Debug)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its text, kept for edits that preserve everything else byte for byte.
    pub source: String,
    pub recipients: Vec<Recipient>,
    /// The armored, age-encrypted key for fingerprints, if any.
    pub fingerprint_key: Option<String>,
    pub targets: IndexMap<String, TargetSpec>,
    pub secrets: IndexMap<String, SecretDef>,
    /// Secrets removed with `secretsync unset`: the removed value's keyed
    /// fingerprint, so that a copy left on a target is still recognised.
    pub removed: Vec<Removed>,
    /// `rotate_every:` at the top: the default period (days) of encrypted secrets.
    pub rotate_every: Option<i64>,
    /// `environments:`, in manifest order (empty: one flat environment).
    pub environments: IndexMap<String, Environment>,
    /// With environments, each target instance (`TARGET@ENV`, the keys of
    /// `targets`) → its target and environment; empty without.
    pub instances: IndexMap<String, Instance>,
}

/// A secret removed from the manifest (`removed:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub name: String,
    pub fingerprint: String,
    pub removed: String,
}

impl Manifest {
    /// The folder relative target paths start from.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// One secret (or plain setting) of the manifest.
#[derive(Debug, Clone)]
pub struct SecretDef {
    pub name: String,
    /// Target names, in manifest order: with environments, the instances
    /// (`TARGET@ENV`) it reaches.
    pub targets: Vec<String>,
    /// The value, one for every environment; for a secret with a value per
    /// environment (`values`), an empty ciphertext that decrypts to nothing.
    pub value: ValueSource,
    /// Environment → its value (`encrypted:` as a map); empty: `value` for all.
    pub values: IndexMap<String, ValueSource>,
    /// `environments: [..]`: only in these (`None`: every one).
    pub environments: Option<Vec<String>>,
    /// `targets:` as written (target names, not instances).
    pub listed: Vec<String>,
    /// Environments whose targets it lists but for which it has no value
    /// (so it does not reach them: `plan` says so).
    pub absent_in: Vec<String>,
    /// Target name → the key's name on that target, where it differs.
    pub rename: BTreeMap<String, String>,
    /// Fingerprints of values this secret held before (newest first).
    pub previous: Vec<Previous>,
    /// `generate:`, how secretsync makes the value; `None` when someone
    /// else issues it (only these are rotated by `rotate --due`).
    pub generate: Option<crate::generate::Spec>,
    /// `expires:` (a validated date), for values that do not say themselves.
    pub expires: Option<String>,
    /// `rotate_every:` in days; `Some(None)` is `never` (no default either).
    pub rotate_every: Option<Option<i64>>,
    /// `set_on:`, the date the current value was set (a validated date).
    pub set_on: Option<String>,
    /// Environment → the lifecycle of its value where the manifest says
    /// it apart (`set_on: {production: …}`; a value per environment only).
    /// Read through [`Manifest::lifecycle_view`].
    pub lifecycle_in: IndexMap<String, EnvLifecycle>,
}

/// One environment's `expires`, `rotate_every` and `set_on` of a secret
/// with a value per environment (#27); `None`: the secret's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvLifecycle {
    pub expires: Option<String>,
    pub rotate_every: Option<Option<i64>>,
    pub set_on: Option<String>,
}

impl SecretDef {
    /// The name this secret has on `target`.
    pub fn key_on(&self, target: &str) -> &str {
        self.rename.get(target).map_or(&self.name, String::as_str)
    }
}

#[derive(Debug, Clone)]
pub enum ValueSource {
    /// Plain configuration, stored in clear in the manifest.
    Plain(String),
    /// An armored age file encrypted to the recipients.
    Encrypted(String),
}

/// A value a secret held before a rotation: its keyed fingerprint and when it
/// was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub fingerprint: String,
    pub replaced: String,
    /// The environment whose value it was (`None`: one value for all).
    pub env: Option<String>,
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`: what env files, shells and Railway accept.
pub use crate::targets::kind::is_env_key;

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    // The message names the path already.
    let read_err = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "it is {:.1} MiB ({size} bytes); a manifest is at most {} MiB ({MAX_BYTES} bytes)",
            size as f64 / f64::from(1u32 << 20),
            MAX_BYTES >> 20
        ))));
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let source = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        ManifestError::At(Box::new(Located {
            path: path.to_path_buf(),
            line,
            column,
            width: 1,
            message: "the manifest is not UTF-8 text".into(),
            hint: Some("save it as UTF-8; binary values belong in `encrypted` (as text)".into()),
            source_line: None,
        }))
    })?;
    parse(path, source)
}

/// How to write a value that YAML would read as null.
const NULL_HINT: &str = "quote it: `\"\"` for an empty value, `\"~\"` or `\"null\"` for that text";

/// Larger files are refused before they are read.
pub const MAX_BYTES: u64 = 16 << 20;

/// Validates manifest text as if read from `path`.
pub fn parse(path: &Path, source: String) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = match serde_saphyr::from_str(&source) {
        Ok(raw) => raw,
        Err(e) => {
            let loc = e.location();
            let msg = e.without_snippet().to_string();
            // serde-saphyr appends " at line L, column C"; we show the place our way.
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            // serde-saphyr's words are for programmers: say it for the manifest.
            let msg = if let Some(rest) = msg.strip_prefix("duplicate mapping key") {
                let key = rest
                    .strip_prefix(": ")
                    .and_then(|r| r.split(", set DuplicateKeyPolicy").next())
                    .unwrap_or("");
                format!("`{key}` appears twice in the same mapping")
            } else if msg.starts_with("expected sequence start") {
                "expected a list here".to_string()
            } else if msg.starts_with("expected mapping start") {
                "expected a mapping (`key: value` lines) here".to_string()
            } else {
                msg
            };
            let hint = syntax_hint(&msg);
            // serde-saphyr's wording names Rust types; say it in YAML terms.
            let msg = if msg.contains("null into string") {
                "a null (`~`, `null` or nothing) where text is expected".to_string()
            } else {
                msg
            };
            // Underline a whole unknown field name, not just its first letter.
            let width = msg
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split_once('`'))
                .map_or(1, |(name, _)| name.chars().count());
            return Err(Checker::new(path, &source).error(loc, width, msg, hint));
        }
    };
    // The text moves into the manifest once the checker, which points
    // into it for errors, is done: no second copy of a large manifest.
    let mut m = Checker::new(path, &source).manifest(raw)?;
    m.source = source;
    Ok(m)
}

fn syntax_hint(msg: &str) -> Option<String> {
    if msg.contains("null into string") {
        Some(NULL_HINT.into())
    } else if msg.contains("unknown field") {
        Some("see docs/manifest.md for the fields each part of the manifest takes".into())
    } else if msg.contains("appears twice") {
        Some("keep one of them: YAML does not merge the two".into())
    } else if msg == "expected a list here" {
        Some("a list is `[a, b]` or one `- item` per line; a single target is still a list: `targets: [api]`".into())
    } else if msg
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "tab" || w == "tabs")
    {
        Some("YAML indents with spaces, not tabs".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::env_file::EnvFileSpec;
    use crate::targets::railway::{RailwaySpec, TokenKind};
    use std::time::Duration;

    fn load_str(text: &str) -> Result<Manifest, String> {
        parse(Path::new("secrets.yaml"), text.to_string()).map_err(|e| e.to_string())
    }

    const OK: &str = "version: 1\ntargets:\n  app:\n    type: env_file\n    path: ./app.env\nsecrets:\n  LOG_LEVEL:\n    targets: [app]\n    value: info\n    rename: { app: APP_LOG_LEVEL }\n  PORT:\n    targets: [app]\n    value: 8080\n";

    const RAILWAY: &str = "version: 1\ntargets:\n  api:\n    type: railway\n    project: p1\n    environment: production\n    service: api\n    token_env: RAILWAY_CI_TOKEN\n    token_kind: project\n    skip_deploys: true\n    overwrite_sealed: true\n    prune: true\nsecrets:\n  A:\n    targets: [api]\n    value: x\n";

    #[test]
    fn loads_every_railway_field() {
        let m = load_str(RAILWAY).unwrap();
        assert_eq!(
            m.targets["api"],
            TargetSpec::new(RailwaySpec {
                project: "p1".into(),
                environment: "production".into(),
                service: Some("api".into()),
                token_env: Some("RAILWAY_CI_TOKEN".into()),
                token_kind: Some(TokenKind::Project),
                skip_deploys: true,
                overwrite_sealed: true,
                prune: true,
            })
        );
    }

    #[test]
    fn refuses_bad_railway_fields_where_they_stand() {
        let e = load_str(&RAILWAY.replace("    token_kind: project\n", "")).unwrap_err();
        assert!(
            e.starts_with(
                "`token_env: RAILWAY_CI_TOKEN` needs `token_kind`\n  --> secrets.yaml:8:16"
            ),
            "{e}"
        );
        let e = load_str(&RAILWAY.replace("token_kind: project", "token_kind: user")).unwrap_err();
        assert!(
            e.starts_with("unknown token_kind `user`\n  --> secrets.yaml:9:17"),
            "{e}"
        );
        let e = load_str(&RAILWAY.replace("RAILWAY_CI_TOKEN", "RAILWAY-TOKEN")).unwrap_err();
        assert!(
            e.starts_with("`RAILWAY-TOKEN` is not an environment variable name\n"),
            "{e}"
        );
        let e = load_str(&RAILWAY.replace("    environment: production\n", "")).unwrap_err();
        assert!(
            e.contains("target `api` (railway) needs `environment`"),
            "{e}"
        );
        // The two well-known variables need no kind.
        load_str(
            &RAILWAY
                .replace("RAILWAY_CI_TOKEN", "RAILWAY_TOKEN")
                .replace("    token_kind: project\n", ""),
        )
        .unwrap();
    }

    #[test]
    fn a_manifest_cannot_choose_where_tokens_go_or_what_runs() {
        let e = load_str(&RAILWAY.replace(
            "    prune: true\n",
            "    prune: true\n    endpoint: http://attacker.example/graphql\n",
        ))
        .unwrap_err();
        assert!(
            e.starts_with("`endpoint` is no longer read from the manifest: a manifest must not choose where Railway tokens are sent\n  --> secrets.yaml:13:5"),
            "{e}"
        );
        assert!(e.contains("SECRETSYNC_RAILWAY_ENDPOINT"), "{e}");
        let e = load_str(&RAILWAY.replace("RAILWAY_CI_TOKEN", "SECRETSYNC_AGE_KEY")).unwrap_err();
        assert!(
            e.starts_with("`token_env: SECRETSYNC_AGE_KEY` does not start with RAILWAY_\n  --> secrets.yaml:8:16"),
            "{e}"
        );
        let kc = "version: 1\ntargets:\n  mac:\n    type: keychain\n    service: app\n    security: /tmp/planted\nsecrets: {}\n";
        let e = load_str(kc).unwrap_err();
        assert!(
            e.starts_with("`security` is no longer read from the manifest: a manifest must not choose which program secretsync runs\n  --> secrets.yaml:6:5"),
            "{e}"
        );
        // A kind that never read the field refuses it as any unknown one.
        let env = "version: 1\ntargets:\n  local:\n    type: env_file\n    path: ./.env\n    endpoint: http://attacker.example/\nsecrets: {}\n";
        let e = load_str(env).unwrap_err();
        assert!(
            e.starts_with("`endpoint` does not apply to env_file targets\n  --> secrets.yaml:6:5"),
            "{e}"
        );
    }

    #[test]
    fn strings_that_reach_argv_cannot_be_options() {
        let ssh = "version: 1\ntargets:\n  vps:\n    type: ssh_env\n    host: deploy@vps\n    path: /etc/app.env\nsecrets:\n  A:\n    targets: [vps]\n    value: x\n";
        load_str(ssh).unwrap();
        for (from, to, field) in [
            ("deploy@vps", "-oProxyCommand=sh", "host"),
            ("deploy@vps", "'deploy@vps x'", "host"),
            ("/etc/app.env", "-x", "path"),
            ("/etc/app.env", "\"/etc/a\\tb\"", "path"),
        ] {
            let e = load_str(&ssh.replace(from, to)).unwrap_err();
            assert!(
                e.starts_with(&format!("`{field}` of target `vps`")),
                "{to}: {e}"
            );
            assert!(e.contains("secrets.yaml:"), "{e}");
        }
        let kc = "version: 1\ntargets:\n  mac:\n    type: keychain\n    host: admin@mac\n    service: app\nsecrets:\n  A:\n    targets: [mac]\n    value: x\n    rename: { mac: ACCOUNT }\n";
        load_str(kc).unwrap();
        let e = load_str(&kc.replace("ACCOUNT", "\"-oProxyCommand=x\"")).unwrap_err();
        assert!(
            e.starts_with("`-oProxyCommand=x` cannot be a key on target `mac`"),
            "{e}"
        );
        let e = load_str(&kc.replace("service: app", "service: -d")).unwrap_err();
        assert!(
            e.starts_with("`service` of target `mac` starts with `-`"),
            "{e}"
        );
        let e = load_str(&kc.replace("admin@mac", "-oProxyCommand=x")).unwrap_err();
        assert!(
            e.starts_with("`host` of target `mac` starts with `-`"),
            "{e}"
        );
    }

    #[test]
    fn loads_a_plain_manifest() {
        let m = load_str(OK).unwrap();
        assert_eq!(
            m.targets["app"],
            TargetSpec::new(EnvFileSpec {
                path: "./app.env".into(),
                prune: false,
                create: true,
                format: EnvFormat::Dotenv,
                live: Default::default(),
            })
        );
        let s = &m.secrets["LOG_LEVEL"];
        assert_eq!(s.key_on("app"), "APP_LOG_LEVEL");
        assert!(matches!(&m.secrets["PORT"].value, ValueSource::Plain(v) if v == "8080"));
    }

    #[test]
    fn unknown_target_points_at_the_name() {
        let e = load_str(&OK.replace(
            "targets: [app]\n    value: info",
            "targets: [ap]\n    value: info",
        ))
        .unwrap_err();
        assert!(e.starts_with("secret `LOG_LEVEL` names target `ap`, which is not defined\n  --> secrets.yaml:8:15\n"), "{e}");
        assert!(
            e.contains("8 |     targets: [ap]\n  |               ^^\n  hint: defined targets: app"),
            "{e}"
        );
    }

    #[test]
    fn a_field_of_another_type_is_refused_where_it_stands() {
        let e = load_str(&OK.replace("path: ./app.env", "path: ./app.env\n    project: x"))
            .unwrap_err();
        assert!(
            e.starts_with("`project` does not apply to env_file targets\n  --> secrets.yaml:6:5"),
            "{e}"
        );
    }

    /// Target fields are read from their text as YAML would read them, and
    /// a wrong one is said at its place in the manifest's words.
    #[test]
    fn target_flags_and_numbers_read_as_yaml_reads_them() {
        for (text, want) in [("true", true), ("yes", true), ("On", true), ("no", false)] {
            let m = load_str(&OK.replace(
                "path: ./app.env",
                &format!("path: ./app.env\n    prune: {text}"),
            ))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.targets["app"].prune(), want, "{text}");
        }
        let e = load_str(&OK.replace("path: ./app.env", "path: ./app.env\n    prune: maybe"))
            .unwrap_err();
        assert!(
            e.starts_with("`prune` is `maybe`, not true or false\n  --> secrets.yaml:6:12"),
            "{e}"
        );
        let ssh = "version: 1\ntargets:\n  vps:\n    type: ssh_env\n    host: deploy@vps\n    path: /etc/app.env\n    port: 2222\nsecrets: {}\n";
        let m = load_str(ssh).unwrap();
        let spec = m.targets["vps"]
            .get::<crate::targets::ssh_env::SshEnvSpec>()
            .unwrap();
        assert_eq!(spec.ssh.port, Some(2222));
        let e = load_str(&ssh.replace("2222", "70000")).unwrap_err();
        assert!(
            e.starts_with("`port` is `70000`, not a number in range\n  --> secrets.yaml:7:11"),
            "{e}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }

    /// YAML 1.1 and 1.2 look-alikes of booleans, numbers, null and dates:
    /// each is read as the exact text written, or refused with "quote it".
    #[test]
    fn plain_values_are_the_text_as_written() {
        let exact = [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "Y",
            "N",
            "true",
            "True",
            "TRUE",
            "false",
            "False",
            "Yes",
            "NO",
            "Off",
            "0123",
            "0o17",
            "0x1F",
            "0b101",
            "007",
            "1_000",
            "1.10",
            ".5",
            "1e3",
            "1E3",
            "1.0e+3",
            "6.02e23",
            ".inf",
            "-.inf",
            "+.INF",
            ".nan",
            ".NaN",
            "+1",
            "-0",
            "+0.0",
            "-1",
            "12:30",
            "190:20:30",
            "2026-01-01",
            "2026-01-01T10:00:00Z",
            "2001-12-14 21:59:43.10 -5",
            "8080",
            "0",
            "00",
            "1.",
            "=",
            "<<",
        ];
        for text in exact {
            let m = load_str(&OK.replace("value: 8080", &format!("value: {text}")))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            match &m.secrets["PORT"].value {
                ValueSource::Plain(v) => assert_eq!(v, text, "value: {text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // Null spellings cannot mean a text: refused where they stand.
        for text in ["~", "null", "Null", "NULL", ""] {
            let manifest = OK.replace("value: 8080", &format!("value: {text}"));
            let e = load_str(&manifest).expect_err(text);
            assert!(e.contains("quote it"), "value: {text}: {e}");
            assert!(e.contains("secrets.yaml:13:"), "value: {text}: {e}");
        }
        // Quoted, they are the text.
        for text in ["\"~\"", "'null'", "\"\"", "'0123'"] {
            let m = load_str(&OK.replace("value: 8080", &format!("value: {text}"))).unwrap();
            let want = &text[1..text.len() - 1];
            assert!(matches!(&m.secrets["PORT"].value, ValueSource::Plain(v) if v == want));
        }
    }

    #[test]
    fn env_file_format_is_read_and_an_unknown_one_refused_where_it_stands() {
        let m = load_str(&OK.replace("path: ./app.env", "path: ./app.env\n    format: systemd"))
            .unwrap();
        assert!(m.targets["app"].get::<EnvFileSpec>().unwrap().format == EnvFormat::Systemd);
        let e = load_str(&OK.replace("path: ./app.env", "path: ./app.env\n    format: sh"))
            .unwrap_err();
        assert!(
            e.starts_with("unknown env-file format `sh`\n  --> secrets.yaml:6:13"),
            "{e}"
        );
        assert!(
            e.contains("dotenv, shell, systemd, compose, python-dotenv, node"),
            "{e}"
        );
    }

    #[test]
    fn env_keys() {
        assert!(is_env_key("A_1") && is_env_key("_x"));
        assert!(!is_env_key("1A") && !is_env_key("A-B") && !is_env_key(""));
    }
}
