//! `type: keychain` in the manifest: the kind, its fields and its spec.

use super::{KeychainTarget, MAX_ACCOUNT};
use crate::remote::SshOptions;
use crate::targets::kind::{first_bad, same_as, Kind, Spec, TargetSpec};
use crate::targets::ssh::{ssh_options, SSH_FIELDS};
use crate::targets::{Context, Fields, ManifestError, Target, TargetError};

/// `type: keychain` in the registry.
pub static KIND: KeychainKind = KeychainKind;

pub struct KeychainKind;

impl Kind for KeychainKind {
    fn name(&self) -> &'static str {
        "keychain"
    }

    fn withdrawn(&self, field: &str) -> Option<(&'static str, &'static str)> {
        (field == "security").then_some((
            "`security` is no longer read from the manifest: a manifest must not choose which program secretsync runs",
            "remove the line; secretsync runs /usr/bin/security, or the program in the environment variable SECRETSYNC_SECURITY of the run",
        ))
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "host",
            "port",
            "identity_file",
            "known_hosts",
            "known_hosts_file",
            "connect_timeout",
            "service",
            "keychain",
        ]
    }

    fn parse(&self, f: &Fields<'_>) -> Result<TargetSpec, ManifestError> {
        let ssh = match f.operand("host")? {
            Some(host) => Some(ssh_options(f, host)?),
            None => {
                if let Some(field) = SSH_FIELDS.iter().find(|s| f.has(s)) {
                    return Err(f.key_error(
                        field,
                        format!("`{field}` needs `host`"),
                        Some("without `host` the keychain of this machine is used".into()),
                    ));
                }
                None
            }
        };
        let service = f.required_operand("service")?;
        Ok(TargetSpec::new(KeychainSpec {
            ssh,
            service,
            keychain: f.operand("keychain")?,
        }))
    }
}

/// `type: keychain`: generic passwords of one service in a macOS keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeychainSpec {
    /// `None`: this machine's keychain.
    pub ssh: Option<SshOptions>,
    pub service: String,
    pub keychain: Option<String>,
}

impl Spec for KeychainSpec {
    fn kind(&self) -> &'static str {
        KIND.name()
    }

    fn build(&self, name: &str, ctx: &Context) -> Result<Box<dyn Target>, TargetError> {
        Ok(Box::new(KeychainTarget::new(name, self, ctx)?))
    }

    /// An account: any text a `security` command line carries as one operand.
    fn check_key(&self, key: &str) -> Result<(), String> {
        if key.is_empty()
            || key.len() > MAX_ACCOUNT
            || key.chars().any(char::is_control)
            || key.starts_with('-')
        {
            Err("a keychain account must be 1 to 255 bytes without control characters, not starting with `-`".into())
        } else {
            Ok(())
        }
    }

    fn offending(&self, key: &str) -> Option<(usize, char)> {
        first_bad(key, |k| !k.chars().any(char::is_control))
    }

    fn same(&self, other: &dyn Spec) -> bool {
        same_as(self, other)
    }

    fn local_files(&self, _manifest_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        self.ssh
            .as_ref()
            .map(|o| o.local_files())
            .unwrap_or_default()
    }
}
