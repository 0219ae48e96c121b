//! The keychain target: the items of one service, read together per host,
//! written through one `security -i` after a conflict check.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;

use async_trait::async_trait;

use super::errors::is_returned_line;
use super::line::{command_line, quoted_len, unsafe_bytes, MAX_LINE};
use super::program::security_program;
use super::read::{read_items, HostRead, Item, Lookup};
use super::{KeychainSpec, MAX_ACCOUNT};
use crate::remote::Runner;
use crate::secret::Secret;
use crate::targets::{Change, Check, Context, Observation, Observed, Read, Target, TargetError};

/// What `check_value` assumes `$HOME` adds to a `~/` keychain path before
/// any read told the host's real one.
const HOME_ALLOWANCE: usize = 1024;

/// `doctor`: the keychain's settings, which `security` shows only unlocked.
const CHECK_SCRIPT: &str = crate::targets::scripts::KEYCHAIN_CHECK;

/// Runs `security -i` (the program is the only argument; commands on stdin).
const WRITE_SCRIPT: &str = crate::targets::scripts::KEYCHAIN_WRITE;

/// What a read taught about line lengths, for `check_value`.
#[derive(Default)]
pub(super) struct LineHints {
    /// `$HOME` on the host, for a `~/` keychain path.
    home: Option<String>,
    /// The longest quoted account this target was asked to read.
    account: Option<usize>,
}

pub struct KeychainTarget {
    pub(super) name: String,
    pub(super) service: String,
    /// As written; `None` is the default keychain.
    pub(super) keychain: Option<String>,
    pub(super) security: String,
    pub(super) host_label: Option<String>,
    pub(super) runner: Runner,
    /// The host: keychain targets of one host are read together.
    batch_key: String,
    hints: Mutex<LineHints>,
}

impl KeychainTarget {
    pub fn new(name: &str, spec: &KeychainSpec, ctx: &Context) -> Result<Self, TargetError> {
        Self::with_program(name, spec, ctx, &security_program()?)
    }

    /// [`KeychainTarget::new`] running `security` as the program (tests run
    /// targets with different stand-ins in one process).
    pub fn with_program(
        name: &str,
        spec: &KeychainSpec,
        ctx: &Context,
        security: &str,
    ) -> Result<Self, TargetError> {
        let bad = |field: &str, why: &str| {
            TargetError::invalid(format!("target `{name}`: `{field}` {why}"))
                .with_hint("fix the target in the manifest")
        };
        if spec.service.is_empty() || spec.service.chars().any(char::is_control) {
            return Err(bad(
                "service",
                "must be 1 or more characters without control characters",
            ));
        }
        if let Some(kc) = &spec.keychain {
            if kc.is_empty() || kc.chars().any(char::is_control) {
                return Err(bad("keychain", "must be a path without control characters"));
            }
        }
        let security = security.to_string();
        let (runner, key, host_label) = match &spec.ssh {
            None => (Runner::Local, "local".to_string(), None),
            Some(opts) => (
                Runner::Ssh(ctx.ssh.host(opts)),
                format!("ssh {opts:?}"),
                Some(crate::remote::label(opts)),
            ),
        };
        Ok(KeychainTarget {
            name: name.to_string(),
            service: spec.service.clone(),
            keychain: spec.keychain.clone(),
            security,
            host_label,
            runner,
            batch_key: key,
            hints: Mutex::new(LineHints::default()),
        })
    }

    pub(super) fn item(&self, account: &str) -> Item {
        Item {
            security: self.security.clone(),
            keychain: self.keychain.clone().unwrap_or_default(),
            service: self.service.clone(),
            account: account.to_string(),
        }
    }

    /// The keychain argument as the host sees it (`~/` expanded), if any.
    pub(super) fn keychain_on_host(&self, home: &str) -> Option<String> {
        self.keychain
            .as_ref()
            .map(|kc| match kc.strip_prefix("~/") {
                Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
                None => kc.clone(),
            })
    }

    pub(super) fn remember(&self, home: &str, keys: &[String]) {
        let mut hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        hints.home = Some(home.to_string());
        hints.account = keys.iter().map(|k| quoted_len(k)).max();
    }

    /// "keychain `openclaw` on host admin@mac (login.keychain-db)" for errors.
    pub(super) fn whose(&self) -> String {
        format!(
            "target `{}` (keychain service `{}` on {})",
            self.name,
            self.service,
            self.runner.place()
        )
    }

    fn observe(&self, read: &HostRead, keys: &[String]) -> Result<Observed, TargetError> {
        let mut entries = std::collections::BTreeMap::new();
        for key in keys {
            match read.lookups.get(&self.item(key)) {
                Some(Lookup::Found(v)) => {
                    entries.insert(key.clone(), Observation::Value(v.clone()));
                }
                Some(Lookup::Absent) => {}
                Some(Lookup::NotText) => {
                    return Err(TargetError::failed(format!(
                        "{}: the item of account `{key}` holds bytes that are not UTF-8 text",
                        self.whose()
                    ))
                    .with_hint(format!(
                        "secretsync writes text only: delete the item \
                         (`security delete-generic-password -a {key} -s {}`) and apply again",
                        self.service
                    )))
                }
                Some(Lookup::Failed { code, said }) => {
                    return Err(self.lookup_error(key, *code, said))
                }
                None => {
                    return Err(TargetError::failed(format!(
                        "{}: the read did not cover account `{key}`",
                        self.whose()
                    )))
                }
            }
        }
        Ok(Observed::partial(entries))
    }

    /// Reads `keys` now, alone (the write's conflict check).
    async fn read_now(&self, keys: &[String]) -> Result<(Observed, String), TargetError> {
        let items: Vec<Item> = keys.iter().map(|k| self.item(k)).collect();
        let read = read_items(&self.runner, &items).await?;
        Ok((self.observe(&read, keys)?, read.home))
    }
}

#[async_trait]
impl Target for KeychainTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        let mut d = format!("keychain service {}", self.service);
        if let Some(kc) = &self.keychain {
            let _ = write!(d, " in {kc}");
        }
        if let Some(host) = &self.host_label {
            let _ = write!(d, " on {host}");
        }
        d
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        if let Some(why) = unsafe_bytes(value.expose()) {
            return Err(why.into());
        }
        let hints = self.hints.lock().unwrap_or_else(|e| e.into_inner());
        let account = hints.account.unwrap_or(2 * MAX_ACCOUNT + 2);
        let keychain = match (&self.keychain, &hints.home) {
            (None, _) => 0,
            (Some(_), Some(home)) => {
                1 + quoted_len(&self.keychain_on_host(home).unwrap_or_default())
            }
            (Some(kc), None) => 1 + quoted_len(kc) + HOME_ALLOWANCE,
        };
        let fixed = "add-generic-password -U -a  -s  -w ".len()
            + account
            + quoted_len(&self.service)
            + keychain;
        let line = fixed + quoted_len(value.expose());
        if line > MAX_LINE {
            return Err(format!(
                "it is too long: its `security -i` line would be {line} bytes, over the {MAX_LINE}-byte limit \
                 (the value may take about {} bytes here)",
                MAX_LINE.saturating_sub(fixed + 2)
            ));
        }
        Ok(())
    }

    async fn read(&self, keys: &[String]) -> Result<Observed, TargetError> {
        let items: Vec<Item> = keys.iter().map(|k| self.item(k)).collect();
        let read = read_items(&self.runner, &items).await?;
        self.remember(&read.home, keys);
        self.observe(&read, keys)
    }

    fn batch_key(&self) -> Option<String> {
        Some(self.batch_key.clone())
    }

    /// Every lookup of the host's keychain targets in one command.
    async fn read_batch(&self, group: &[Read<'_>]) -> Vec<Result<Observed, TargetError>> {
        let Some(members) = crate::targets::members::<KeychainTarget>(group) else {
            return crate::targets::read_each(group).await;
        };
        let mut items: Vec<Item> = Vec::new();
        for (t, keys) in &members {
            for k in *keys {
                let item = t.item(k);
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        match read_items(&self.runner, &items).await {
            Ok(read) => members
                .iter()
                .map(|(t, keys)| {
                    t.remember(&read.home, keys);
                    t.observe(&read, keys)
                })
                .collect(),
            Err(e) => vec![Err(e); members.len()],
        }
    }

    async fn write(&self, observed: &Observed, changes: &[Change]) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let whose = self.whose();
        for c in changes {
            if let Some(v) = c.op.value() {
                if let Some(why) = unsafe_bytes(v.expose()) {
                    return Err(TargetError::invalid(format!(
                        "{whose}: the value of `{}` cannot be written: {why}",
                        c.key
                    )));
                }
            }
        }

        // The conflict check: every key written or seen by the plan still
        // holds what the plan read.
        let keys: Vec<String> = changes
            .iter()
            .map(|c| c.key.clone())
            .chain(observed.entries.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (now, home) = self.read_now(&keys).await?;
        let moved: Vec<&str> = keys
            .iter()
            .filter(|k| now.entries.get(*k) != observed.entries.get(*k))
            .map(String::as_str)
            .collect();
        if !moved.is_empty() {
            return Err(TargetError::changed_since_read(
                format!(
                    "{whose}: {} changed since the plan read {}; nothing was written",
                    moved
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if moved.len() == 1 { "it" } else { "them" }
                ),
                moved.iter().map(|k| k.to_string()).collect(),
            )
            .with_hint("run plan again"));
        }

        let keychain = self.keychain_on_host(&home);
        let mut script = crate::secret::SecretBuf::default();
        for c in changes {
            let line = command_line(&self.service, keychain.as_deref(), &c.key, &c.op);
            if line.len() > MAX_LINE {
                return Err(TargetError::invalid(format!(
                    "{whose}: the `security -i` line for `{}` would be {} bytes, over the {MAX_LINE}-byte limit; nothing was written",
                    c.key,
                    line.len()
                ))
                .with_hint("shorten the value, the account or the keychain path"));
            }
            script.push_str(&line);
            // A last line without a newline is dropped by `security -i`.
            script.push('\n');
        }
        let out = self
            .runner
            .sh(
                WRITE_SCRIPT,
                &[self.security.as_str()],
                script.as_str().as_bytes(),
                false,
            )
            .await?;
        let text = String::from_utf8_lossy(&out.stderr);
        if out.code != Some(0) || text.lines().any(|l| is_returned_line(l.trim())) {
            return Err(self.write_error(&out, changes.len()));
        }
        Ok(())
    }

    async fn check(&self) -> Vec<Check> {
        // `show-keychain-info` needs the keychain unlocked (exit 36 when it
        // is not) and reads no item.
        let keychain = self.keychain.as_deref().unwrap_or_default();
        let outcome = match self
            .runner
            .sh(
                CHECK_SCRIPT,
                &[self.security.as_str(), keychain],
                b"",
                false,
            )
            .await
        {
            Err(e) => Err(e.into()),
            Ok(out) if out.code == Some(0) => Ok(format!(
                "`{}` runs on {} and the keychain {} is unlocked",
                self.security,
                self.runner.place(),
                self.keychain.as_deref().unwrap_or("(default)")
            )),
            Ok(out) => Err(self.lookup_error("", out.code, &out.stderr_line())),
        };
        vec![Check {
            what: "keychain unlocked".into(),
            outcome,
        }]
    }
}
