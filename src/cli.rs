//! The command line: clap's derive types, converted into the library's
//! options before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

/// Keep secrets identical everywhere they are deployed.
#[derive(Debug, Parser)]
#[command(name = "secretsync", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The manifest.
    #[arg(
        short = 'f',
        long = "manifest",
        global = true,
        value_name = "PATH",
        env = "SECRETSYNC_MANIFEST",
        default_value = "secrets.yaml"
    )]
    pub(crate) manifest: PathBuf,
    /// The age identity (x25519 key file or ssh-ed25519 private key) that decrypts the manifest.
    #[arg(short = 'i', long, global = true, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// Print only errors (the exit code tells the rest).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Say more (also list keys that are in sync).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Compare every target with the manifest and print a redacted diff.
    Plan(PlanArgs),
    /// Show the plan, confirm, write the changes, and verify them.
    Apply(ApplyArgs),
    /// Check credentials, hosts and the manifest before anything fails.
    Doctor(DoctorArgs),
    /// Validate the manifest without an identity and without contacting anything (pre-commit, forks' PRs).
    Check(CheckArgs),
    /// Print one decrypted value on stdout (for scripts). Nothing else prints a value.
    Get(GetArgs),
    /// Start a manifest: recipients given, or a new identity generated.
    Init(InitArgs),
    /// Set a secret's value (from a hidden prompt, or stdin with --stdin; never from argv).
    Set(SetArgs),
    /// Replace a secret with a new random value, remembering the old one's fingerprint.
    Rotate(RotateArgs),
    /// Add the live values of a target to the manifest, encrypted.
    Import(ImportArgs),
    /// Compare two environments: per secret and target, present in one only, the same value, or values that differ (exit 2 when they differ).
    Compare(CompareArgs),
    /// Give environment B the value environment A has, encrypted to B's recipients.
    Promote(PromoteArgs),
    /// List every secret: targets, kind, last set, expiry, rotation due (reads no target unless --check).
    #[command(alias = "ls")]
    List(ListArgs),
    /// List, add or remove recipients (values are re-encrypted).
    Recipients {
        #[command(subcommand)]
        action: RecipientsAction,
    },
    /// Re-encrypt every value to the current recipients.
    Rekey,
    /// Remove a secret from the manifest; its value's fingerprint is kept under `removed:`.
    #[command(alias = "rm")]
    Unset(UnsetArgs),
    /// Add or remove targets of a secret.
    Targets {
        #[command(subcommand)]
        action: TargetsAction,
    },
    /// List, add or remove target definitions.
    Target {
        #[command(subcommand)]
        action: TargetAction,
    },
    /// Print the public key of each identity found (and where), and whether the manifest's recipients include it.
    Whoami,
    /// Run a command with the values a target receives added to its environment (nothing is printed; the exit status is the command's).
    Run(RunArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Selection {
    /// Only this target (repeatable).
    #[arg(short = 't', long = "target", value_name = "NAME", add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) targets: Vec<String>,
    /// Only this environment (repeatable; all when none is given).
    #[arg(long = "env", value_name = "ENV")]
    pub(crate) envs: Vec<String>,
    /// How many targets are read or written at once. Reads are already
    /// batched per Railway project and per SSH host (which caps its own
    /// sessions), so the default covers a 50-target manifest in one wave.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) parallelism: u16,
    /// Keep each SSH host's connection open this long after the run (`60s`,
    /// `5m`; 0 = close at exit), so that the next run, such as the apply
    /// after a plan, skips the handshake. As ssh's ControlPersist: the
    /// socket is in a folder only you can enter.
    #[arg(long, value_name = "DURATION", env = "SECRETSYNC_SSH_PERSIST", value_parser = persist_duration)]
    pub(crate) ssh_persist: Option<std::time::Duration>,
}

fn persist_duration(text: &str) -> Result<std::time::Duration, String> {
    secretsync::manifest::parse_duration(text)
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Exit 0 when in sync, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// The most bytes `--format markdown` prints (so also characters):
    /// 60000 by default, under GitHub's 65,536-character comment limit;
    /// `1MiB` for a step summary. Beyond it the detail degrades in steps and
    /// the document says what it left out (the step summary secretsync
    /// writes under GitHub Actions always has 1 MiB).
    #[arg(long, value_name = "SIZE", default_value = "60000", value_parser = markdown_limit)]
    pub(crate) markdown_limit: usize,
    /// Save the plan (no values) for `secretsync apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// On drift or errors, POST a redacted summary to this URL (Slack incoming-webhook JSON).
    /// The URL is a credential: prefer the environment variable to argv.
    #[arg(
        long,
        value_name = "URL",
        env = "SECRETSYNC_NOTIFY_URL",
        hide_env_values = true
    )]
    pub(crate) notify: Option<String>,
    /// Review mode: plan this change against REF, a git revision (such as
    /// origin/main), or `file:PATH`, a file outside the checkout holding the
    /// base manifest. Targets new or changed since the base (or reading files
    /// the change wrote) are not contacted.
    #[arg(long, value_name = "REF", conflicts_with = "out")]
    pub(crate) base: Option<String>,
    /// Warn about secrets that expire within this window (`14d`, `2w`, or days).
    #[arg(long, value_name = "DAYS", default_value = "14d", value_parser = warn_window)]
    pub(crate) warn_within: i64,
}

/// `60000`, `64k` (×1000), `64KiB`, `1MiB` (×1024, ×1024²); at least 1000.
fn markdown_limit(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: a number of bytes, or with k, KiB or MiB"))?;
    let factor = match unit {
        "" => 1,
        "k" | "K" | "kB" | "KB" => 1000,
        "KiB" => 1024,
        "M" | "MB" => 1_000_000,
        "MiB" => 1024 * 1024,
        _ => return Err(format!("`{text}`: the unit is k, KiB, M or MiB")),
    };
    let size = n.saturating_mul(factor);
    if size < secretsync::markdown::MIN_BUDGET {
        return Err(format!(
            "`{text}` is too small: at least {} bytes",
            secretsync::markdown::MIN_BUDGET
        ));
    }
    Ok(size)
}

fn warn_window(text: &str) -> Result<i64, String> {
    secretsync::lifecycle::parse_window(text)
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Exit 0 when clean, 2 when there are warnings (a plain value that looks like a secret), 1 on errors.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Check only the values and targets of this environment (repeatable;
    /// all when none is given). The whole manifest must still load.
    #[arg(long = "env", value_name = "ENV")]
    pub(crate) envs: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A plan saved by `plan --out`: apply exactly it, or refuse if anything moved since.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) selection: Selection,
    /// Apply without asking (for CI).
    #[arg(long, alias = "yes")]
    pub(crate) auto_approve: bool,
    /// Redeploy the Railway services whose running deployment predates
    /// their variables (one deploy per service, and only those), so that
    /// the values written are live.
    #[arg(long)]
    pub(crate) redeploy: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// The most bytes `--format markdown` prints (so also characters):
    /// 60000 by default, under GitHub's 65,536-character comment limit;
    /// `1MiB` for a step summary. Beyond it the detail degrades in steps and
    /// the document says what it left out (the step summary secretsync
    /// writes under GitHub Actions always has 1 MiB).
    #[arg(long, value_name = "SIZE", default_value = "60000", value_parser = markdown_limit)]
    pub(crate) markdown_limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Warn about secrets that expire within this window (expired ones fail).
    #[arg(long, value_name = "DAYS", default_value = "14d", value_parser = warn_window)]
    pub(crate) warn_within: i64,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The secret's name in the manifest (with --target: its name there, or the secret's).
    #[arg(add = ArgValueCandidates::new(crate::complete::secrets))]
    pub(crate) key: String,
    /// Print the value as this target receives it (KEY may be the name the target gives it).
    #[arg(short = 't', long = "target", value_name = "NAME", add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) target: Option<String>,
    /// The value of this environment (needed for a secret with a value per environment).
    #[arg(long, value_name = "ENV")]
    pub(crate) env: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The target whose values the command receives, named as that target names them.
    #[arg(short = 't', long = "target", value_name = "NAME", required = true, add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) target: String,
    /// The environment whose instance of the target is meant (needed when the target is in several).
    #[arg(long, value_name = "ENV")]
    pub(crate) env: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// A recipient's public key (age1… or "ssh-ed25519 …"); repeatable. Without one, an identity is generated.
    #[arg(long = "recipient", short = 'r', value_name = "KEY")]
    pub(crate) recipients: Vec<String>,
    /// Where to write a generated identity (default ~/.config/sops/age/keys.txt, if it does not exist).
    #[arg(long, value_name = "FILE")]
    pub(crate) identity_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// The secret's name in the manifest.
    #[arg(add = ArgValueCandidates::new(crate::complete::secrets))]
    pub(crate) key: String,
    /// For a new secret: the targets it must reach (repeatable). For an
    /// existing one they must be its targets: change them with `secretsync targets`.
    #[arg(short = 't', long = "target", value_name = "NAME", add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) targets: Vec<String>,
    /// Read the value from standard input (one trailing newline is dropped).
    #[arg(long)]
    pub(crate) stdin: bool,
    /// Store the value in clear (`value:`), for configuration that is not secret.
    #[arg(long, conflicts_with = "encrypt")]
    pub(crate) plain: bool,
    /// Store the value encrypted, also where it was plain until now.
    #[arg(long)]
    pub(crate) encrypt: bool,
    /// Accept an empty value (refused by default: usually a slip).
    #[arg(long)]
    pub(crate) allow_empty: bool,
    /// Set this environment's value only, encrypted to its recipients.
    #[arg(long, value_name = "ENV", conflicts_with = "plain")]
    pub(crate) env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Charset {
    /// A-Z a-z 0-9
    Alnum,
    /// 0-9 a-f
    Hex,
    /// The standard base64 alphabet (with --bytes: padded base64).
    Base64,
    /// The URL-safe base64 alphabet (with --bytes: unpadded).
    Base64url,
    /// Printable ASCII without space, quotes, backslash and `$`.
    Ascii,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The secret's name in the manifest (none with --due).
    #[arg(required_unless_present = "due", conflicts_with = "due", add = ArgValueCandidates::new(crate::complete::secrets))]
    pub(crate) key: Option<String>,
    /// Rotate every secret whose `rotate_every` has elapsed and that secretsync
    /// makes (it has a `generate:` spec); list the others, issued elsewhere,
    /// with what to do.
    #[arg(long, conflicts_with_all = ["targets", "from_command", "length", "charset", "bytes", "generate"])]
    pub(crate) due: bool,
    /// Say what would change, and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Rotate this environment's value only, encrypted to its recipients.
    #[arg(long, value_name = "ENV", conflicts_with = "due")]
    pub(crate) env: Option<String>,
    /// Take the new value from this command's standard output (one trailing
    /// newline removed), for tokens a provider mints: `gh auth token`. Run by
    /// `sh -c` without secretsync's identity and tokens in its environment; empty
    /// output or a failure changes nothing.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["length", "charset", "bytes", "generate"])]
    pub(crate) from_command: Option<String>,
    /// How secretsync makes this value from now on, recorded as the secret's
    /// `generate:`: `bytes=32,encoding=hex` (or base64, base64url) or
    /// `chars=40,alphabet=alnum` (or hex, base64, base64url, ascii). Needed to
    /// replace a value that does not look random (a URL, JSON, a list, a
    /// provider's key) with a random one.
    #[arg(long, value_name = "SPEC", value_parser = generate_spec, conflicts_with_all = ["length", "charset", "bytes"])]
    pub(crate) generate: Option<secretsync::generate::Spec>,
    /// For a new secret: the targets it must reach (repeatable). For an
    /// existing one they must be its targets: change them with `secretsync targets`.
    #[arg(short = 't', long = "target", value_name = "NAME", add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) targets: Vec<String>,
    /// Characters in the new value (default: the secret's `generate:`, else 40).
    #[arg(long, value_parser = clap::value_parser!(u16).range(8..=4096), conflicts_with = "bytes")]
    pub(crate) length: Option<u16>,
    /// The alphabet of the new value (default: alnum); recorded in `generate:`.
    #[arg(long, value_enum)]
    pub(crate) charset: Option<Charset>,
    /// Instead: N random bytes, encoded with --charset hex, base64 or base64url.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(8..=4096))]
    pub(crate) bytes: Option<u16>,
}

fn generate_spec(text: &str) -> Result<secretsync::generate::Spec, String> {
    secretsync::generate::Spec::parse(text)
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Also read the targets, and count those that still hold a previous value.
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Warn about secrets that expire within this window (`14d`, `2w`, or days).
    #[arg(long, value_name = "DAYS", default_value = "14d", value_parser = warn_window)]
    pub(crate) warn_within: i64,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The target to read the values from.
    #[arg(long, value_name = "TARGET", add = ArgValueCandidates::new(crate::complete::targets))]
    pub(crate) from: String,
    /// Keys (as named on the target) to import; all of them when none is given.
    pub(crate) keys: Vec<String>,
    /// Replace secrets that are already in the manifest.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// The environment whose instance of the target is read (`--from
    /// TARGET --env ENV` is `--from TARGET@ENV`).
    #[arg(long, value_name = "ENV")]
    pub(crate) env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecipientsAction {
    /// Print the recipients.
    List,
    /// Add recipients and re-encrypt every value to all of them.
    Add {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Remove recipients and re-encrypt every value without them.
    Remove {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct UnsetArgs {
    /// The secrets' names in the manifest.
    #[arg(required = true, value_name = "KEY", add = ArgValueCandidates::new(crate::complete::secrets))]
    pub(crate) keys: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TargetsAction {
    /// Deploy a secret to more targets.
    Add {
        /// The secret's name in the manifest.
        #[arg(add = ArgValueCandidates::new(crate::complete::secrets))]
        key: String,
        #[arg(required = true, value_name = "TARGET", add = ArgValueCandidates::new(crate::complete::targets))]
        targets: Vec<String>,
    },
    /// Stop managing a secret on some targets (the value stays there; see `prune`).
    Remove {
        /// The secret's name in the manifest.
        #[arg(add = ArgValueCandidates::new(crate::complete::secrets))]
        key: String,
        #[arg(required = true, value_name = "TARGET", add = ArgValueCandidates::new(crate::complete::targets))]
        targets: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TargetAction {
    /// Print the target definitions: name, type and where.
    List,
    /// Define a target from flags (the fields of docs/manifest.md).
    Add(Box<TargetAddArgs>),
    /// Remove a target definition that no secret uses.
    Remove {
        #[arg(value_name = "NAME", add = ArgValueCandidates::new(crate::complete::targets))]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KnownHostsChoice {
    Strict,
    AcceptNew,
}

#[derive(Debug, Args)]
pub(crate) struct TargetAddArgs {
    /// The new target's name.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// A kind of target (the list below is the registry's).
    #[arg(long = "type", value_name = "TYPE", value_parser = target_kinds())]
    pub(crate) kind: String,
    /// With `environments:`: the environments the target is in (repeatable; default: every one).
    #[arg(long = "env", value_name = "ENV")]
    pub(crate) envs: Vec<String>,
    /// Any field of the type, as `FIELD=VALUE` (repeatable): what the
    /// flags below do not name.
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = field_value)]
    pub(crate) set: Vec<(String, String)>,
    /// env_file, ssh_env: the file (relative to the manifest's folder, or on the host).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// env_file, ssh_env: create the file (mode 0600) when it is missing.
    #[arg(long)]
    pub(crate) create: bool,
    /// env_file, ssh_env, railway: delete keys the manifest does not list.
    #[arg(long)]
    pub(crate) prune: bool,
    /// ssh_env, keychain over SSH: `user@host` or an alias from ~/.ssh/config.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// ssh_env, keychain over SSH: the SSH port (default: ssh's, 22 or ~/.ssh/config).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// ssh_env, keychain over SSH: the private key ssh logs in with (default: ssh's).
    #[arg(long, value_name = "FILE")]
    pub(crate) identity_file: Option<String>,
    /// ssh_env, keychain over SSH: `strict` (the host must be in known_hosts) or `accept-new`.
    #[arg(long, value_enum)]
    pub(crate) known_hosts: Option<KnownHostsChoice>,
    /// ssh_env, keychain over SSH: the known_hosts file to check the host against.
    #[arg(long, value_name = "FILE")]
    pub(crate) known_hosts_file: Option<String>,
    /// ssh_env, keychain over SSH: how long to wait for the connection, for example `10s`.
    #[arg(long, value_name = "DURATION")]
    pub(crate) connect_timeout: Option<String>,
    /// ssh_env: read and write through `sudo -n`.
    #[arg(long)]
    pub(crate) sudo: bool,
    /// railway: the project id.
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// railway: the environment's name or id.
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// railway: the service's name or id (none: shared variables); keychain: the item service.
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// railway: the environment variable holding the token.
    #[arg(long, value_name = "VAR")]
    pub(crate) token_env: Option<String>,
    /// railway: `account` or `project`.
    #[arg(long, value_name = "KIND")]
    pub(crate) token_kind: Option<String>,
    /// railway: change variables without triggering deploys.
    #[arg(long)]
    pub(crate) skip_deploys: bool,
    /// railway: replace sealed variables.
    #[arg(long)]
    pub(crate) overwrite_sealed: bool,
    /// keychain: the keychain file (default: the login keychain).
    #[arg(long)]
    pub(crate) keychain: Option<String>,
}

/// `--type` takes the kinds of the registry.
fn target_kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        secretsync::targets::registry::KINDS
            .iter()
            .map(|k| k.name()),
    )
}

fn field_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((f, v))
            if !f.is_empty()
                && f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok((f.to_string(), v.to_string()))
        }
        _ => Err("expected FIELD=VALUE, for example `--set format=systemd`".into()),
    }
}

/// How a command's output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The first environment.
    #[arg(value_name = "A")]
    pub(crate) a: String,
    /// The second environment.
    #[arg(value_name = "B")]
    pub(crate) b: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct PromoteArgs {
    /// The secret to promote (none with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all", add = ArgValueCandidates::new(crate::complete::secrets))]
    pub(crate) key: Option<String>,
    /// The environment whose value is taken.
    #[arg(long, value_name = "ENV")]
    pub(crate) from: String,
    /// The environment that receives it.
    #[arg(long, value_name = "ENV")]
    pub(crate) to: String,
    /// Promote every secret whose value differs (asks first).
    #[arg(long)]
    pub(crate) all: bool,
    /// With --all: promote without asking.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}
