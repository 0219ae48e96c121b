//! One function per subcommand. Each returns how the run ended; `main`
//! turns that into the exit code.

mod apply;
mod check;
mod compare;
mod doctor;
mod edit;
mod get;
mod import;
mod init;
mod keys;
mod list;
mod plan;
mod promote;
mod rotate;
mod run;
mod whoami;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::Format;
use crate::cli::{Cli, ColorChoice, Command, Global, Selection};
use secretsync::apply::{Outcome, Report};
use secretsync::ci;
use secretsync::engine::Options;
use secretsync::engine::Progress;
use secretsync::error::Error;
use secretsync::markdown;
use secretsync::plan::Plan;
use secretsync::render::{self, Style};

/// How a command ended, when it did not end with an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Success (or, with --detailed-exitcode, in sync).
    Ok,
    /// With --detailed-exitcode: changes are pending.
    Changes,
    /// Something failed and was already reported (a target, a check).
    Failed,
    /// The exit status of a command secretsync ran (`secretsync run`).
    Status(u8),
    /// With environments: some were left out, no identity can decrypt their
    /// values (nothing failed in the others).
    Skipped,
}

impl Exit {
    /// The exit code, following Terraform's convention.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Changes => 2,
            Exit::Status(code) => code,
            Exit::Skipped => 3,
        }
    }
}

pub(crate) async fn run(cli: Cli) -> Result<Exit, Error> {
    // With --format json, an error that ends the command is a JSON document
    // on stdout too (its text still goes to stderr, from main).
    let json = match &cli.command {
        Command::Plan(a) => (a.format == Format::Json).then_some("plan"),
        Command::Apply(a) => (a.format == Format::Json).then_some("apply"),
        Command::Doctor(a) => (a.format == Format::Json).then_some("doctor"),
        Command::List(a) => (a.format == Format::Json).then_some("list"),
        Command::Compare(a) => (a.format == Format::Json).then_some("compare"),
        _ => None,
    };
    let manifest = cli.global.manifest.clone();
    let identity = cli.global.identity.clone();
    let result = dispatch(cli)
        .await
        .map_err(|e| whoami::explain(e, &manifest, identity.as_deref()));
    // One document on stdout: an error after the plan/report was printed
    // (such as `--out` failing to write) is said on stderr only.
    if let (Some(command), Err(e), false) = (json, &result, EMITTED.load(Ordering::Relaxed)) {
        println!("{:#}", error_json(command, e));
    }
    result
}

/// Whether a document went to stdout (see [`run`]).
static EMITTED: AtomicBool = AtomicBool::new(false);

/// The JSON document of an error that ended a command (docs/json-output.md).
pub(crate) fn error_json(command: &str, e: &Error) -> serde_json::Value {
    serde_json::json!({
        "format_version": secretsync::render::JSON_FORMAT_VERSION,
        "kind": "error",
        "command": command,
        "error": { "kind": e.kind(), "message": e.message(), "hint": e.hint() },
    })
}

async fn dispatch(cli: Cli) -> Result<Exit, Error> {
    let g = &cli.global;
    secretsync::notice::set_quiet(g.quiet);
    match cli.command {
        Command::Plan(a) => plan::run(g, a).await,
        Command::Apply(a) => apply::run(g, a).await,
        Command::Doctor(a) => doctor::run(g, a).await,
        Command::Check(a) => check::run(g, a),
        Command::Get(a) => get::run(g, a),
        Command::Init(a) => init::run(g, a),
        Command::Set(a) => keys::set(g, a),
        Command::Rotate(a) => rotate::rotate(g, a),
        Command::Import(a) => import::run(g, a).await,
        Command::Compare(a) => compare::run(g, a),
        Command::Promote(a) => promote::run(g, a),
        Command::List(a) => list::run(g, a).await,
        Command::Recipients { action } => keys::recipients(g, action),
        Command::Rekey => keys::rekey(g),
        Command::Unset(a) => edit::unset(g, a),
        Command::Targets { action } => edit::targets(g, action),
        Command::Target { action } => edit::target(g, action),
        Command::Whoami => whoami::run(g),
        Command::Run(a) => run::run(g, a).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "secretsync", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
    }
}

/// A path as the user would write it: without the leading `./` that
/// joining onto the current folder adds.
pub(crate) fn shown(path: &std::path::Path) -> String {
    let mut s = path.display().to_string();
    while let Some(rest) = s.strip_prefix("./") {
        if rest.is_empty() {
            break;
        }
        s = rest.to_string();
    }
    s
}

fn options(g: &Global, s: &Selection) -> Options {
    Options {
        manifest: g.manifest.clone(),
        identity: g.identity.clone(),
        targets: s.targets.clone(),
        envs: s.envs.clone(),
        parallelism: usize::from(s.parallelism),
        ssh_persist: s.ssh_persist.filter(|d| !d.is_zero()),
        list_unmanaged: g.verbose > 0,
    }
}

fn style(g: &Global) -> Style {
    let color = match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    Style {
        color,
        verbose: g.verbose > 0,
    }
}

/// Prints a document on stdout unless --quiet.
fn emit(g: &Global, text: &str) {
    if !g.quiet {
        EMITTED.store(true, Ordering::Relaxed);
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
}

/// Under GitHub Actions: the plan's markdown in the step summary (no
/// annotations: `apply` annotates its report, once per target). The summary
/// holds 1 MiB per step, not a comment's 60,000 characters: the full detail
/// when it fits, with room left for `reserve` bytes that follow (lifecycle,
/// review, apply's report).
fn github_summary(plan: &Plan, reserve: usize) {
    if !ci::github_actions() {
        return;
    }
    let budget = ci::summary_room().saturating_sub(reserve);
    if let Err(e) = ci::append_summary(&markdown::plan(plan, budget)) {
        eprintln!("warning: cannot append to GITHUB_STEP_SUMMARY: {e}");
    }
}

/// Under GitHub Actions: the plan's markdown in the step summary, and an
/// annotation per target with drift or an error.
fn github_plan(plan: &Plan, reserve: usize) {
    if !ci::github_actions() {
        return;
    }
    github_summary(plan, reserve);
    let mut lines = Vec::new();
    for t in &plan.targets {
        match &t.outcome {
            Err(e) => lines.push(ci::annotation(
                "error",
                &format!("secretsync: {}", t.target),
                &e.to_string(),
            )),
            Ok(d) if !d.changes.is_empty() => lines.push(ci::annotation(
                "warning",
                &format!("secretsync drift: {}", t.target),
                &format!(
                    "{} ({}): {} change(s) pending: {}",
                    t.target,
                    t.description,
                    d.changes.len(),
                    d.changes
                        .iter()
                        .map(|c| c.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Ok(d) => {
                // Written, not live (#28): drift a reviewer must see.
                for i in &d.items {
                    if let secretsync::plan::State::NotLive { reason, action } = &i.state {
                        lines.push(ci::annotation(
                            "warning",
                            &format!("secretsync not live: {}", t.target),
                            &format!(
                                "{} ({}): {} is written, not live: {reason}; {action}",
                                t.target, t.description, i.key
                            ),
                        ));
                    }
                }
            }
        }
    }
    annotate(&lines);
}

fn github_report(report: &Report) {
    if !ci::github_actions() {
        return;
    }
    let md = markdown::fit(&render::report_markdown(report), ci::summary_room());
    if let Err(e) = ci::append_summary(&md) {
        eprintln!("warning: cannot append to GITHUB_STEP_SUMMARY: {e}");
    }
    let lines: Vec<String> = report
        .targets
        .iter()
        .filter_map(|t| match &t.outcome {
            Outcome::Failed(e) | Outcome::NotRead(e) => Some(ci::annotation(
                "error",
                &format!("secretsync: {}", t.target),
                &e.to_string(),
            )),
            Outcome::NotConverged { keys, .. } => Some(ci::annotation(
                "error",
                &format!("secretsync: {}", t.target),
                &format!(
                    "written, but still different after apply: {}",
                    keys.join(", ")
                ),
            )),
            _ => None,
        })
        .collect();
    annotate(&lines);
}

/// Annotations go to stderr: Actions reads workflow commands there as on
/// stdout, and stdout is often captured (`plan --format markdown > plan.md`,
/// JSON), where an annotation would end up in a PR comment or break a parser.
fn annotate(lines: &[String]) {
    for l in lines {
        eprintln!("{l}");
    }
}

/// Whether the document on stdout already tells the user each target's
/// error: only text that is printed. Otherwise (`--quiet`, markdown or JSON
/// on stdout, often captured) errors are said on stderr too: the reason for
/// a non-zero exit is never silent.
fn errors_on_stderr(g: &Global, format: Format) -> bool {
    g.quiet || format != Format::Text
}

fn say_target_error(target: &str, description: &str, e: &secretsync::targets::TargetError) {
    use secretsync::neutral::lines;
    eprintln!(
        "error: target `{target}` ({}): {}",
        lines(description),
        lines(&e.message)
    );
    if let Some(h) = &e.hint {
        eprintln!("  hint: {}", lines(h));
    }
}

/// Each target the plan could not read, on stderr.
fn say_plan_errors(plan: &Plan) {
    for t in &plan.targets {
        if let Err(e) = &t.outcome {
            say_target_error(&t.target, &t.description, e);
        }
    }
}

/// Each target that did not converge, on stderr.
fn say_report_errors(report: &Report) {
    for t in &report.targets {
        match &t.outcome {
            Outcome::NotRead(e) | Outcome::Failed(e) => {
                say_target_error(&t.target, &t.description, e)
            }
            Outcome::NotConverged { keys, error } => {
                eprintln!(
                    "error: target `{}` ({}): written, but still different after apply: {}",
                    t.target,
                    t.description,
                    keys.join(", ")
                );
                if let Some(e) = error {
                    eprintln!("  cause: {}", secretsync::neutral::lines(&e.message));
                }
            }
            _ => {}
        }
    }
}

/// A spinner per target on stderr when it is a terminal; nothing otherwise.
fn progress(g: &Global) -> Option<Box<dyn Progress>> {
    (!g.quiet && std::io::stderr().is_terminal())
        .then(|| Box::new(Spinners::default()) as Box<dyn Progress>)
}

#[derive(Default)]
struct Spinners {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Progress for Spinners {
    fn started(&self, target: &str, description: &str) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_message(format!("reading {target} ({description})"));
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_string(), bar);
    }

    fn finished(&self, target: &str, ok: bool) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(target)
        {
            // Cleared, leaving nothing above the plan (which says what
            // each target holds, or why it could not be read).
            let _ = ok;
            bar.finish_and_clear();
        }
    }
}

// ---- shared by the editing commands (set, rotate) ----

/// `env`: the environment whose value was stored (`--env`), named so that
/// adding production's value to a secret staging has is not "secret added".
pub(super) fn say(
    g: &Global,
    stored: &secretsync::edit::Stored,
    key: &str,
    env: Option<&str>,
    path: &std::path::Path,
) {
    if g.quiet {
        return;
    }
    let what = match stored {
        secretsync::edit::Stored::Added => "added to",
        secretsync::edit::Stored::Replaced => "replaced in",
        secretsync::edit::Stored::Unchanged => "unchanged in",
        secretsync::edit::Stored::Converted { plain: true } => {
            "kept with the same value, now in clear, in"
        }
        secretsync::edit::Stored::Converted { plain: false } => {
            "kept with the same value, now encrypted, in"
        }
    };
    match env {
        Some(env) => eprintln!("secret `{key}`: {env}'s value {what} {}", shown(path)),
        None => eprintln!("secret `{key}` {what} {}", shown(path)),
    }
    if *stored == secretsync::edit::Stored::Replaced {
        eprintln!("the former value's fingerprint is kept under `previous`; run `secretsync plan` to see where it is still deployed");
    }
}

pub(super) fn check_targets(
    m: &secretsync::manifest::Manifest,
    key: &str,
    targets: &[String],
) -> Result<(), Error> {
    secretsync::selection::Selection::checked(
        targets,
        |t| m.knows_target(t),
        m.targets.keys().map(String::as_str),
        secretsync::selection::Wording::Plain,
    )?;
    match m.secrets.get(key) {
        Some(s) if !targets.is_empty() => {
            let mut want = targets.to_vec();
            // With environments, the targets as written (not their instances).
            let mut have = if m.has_environments() {
                s.listed.clone()
            } else {
                s.targets.clone()
            };
            want.sort();
            want.dedup();
            have.sort();
            if want != have {
                return Err(Error::usage(
                    format!(
                        "`{key}` exists already, with targets [{}]; --target only names a new secret's targets",
                        s.targets.join(", ")
                    ),
                    format!(
                        "change its targets with `secretsync targets add {key} TARGET…` or `secretsync targets remove {key} TARGET…`, then set the value without --target"
                    ),
                ));
            }
            secretsync::edit::check_secret_name(m, key, &s.targets)
        }
        Some(s) => secretsync::edit::check_secret_name(m, key, &s.targets),
        None => secretsync::edit::check_secret_name(m, key, targets),
    }
}

/// The `generate:` spec the --length, --charset and --bytes flags describe.
pub(crate) fn spec_of(
    charset: crate::cli::Charset,
    length: usize,
    bytes: Option<usize>,
) -> Result<secretsync::generate::Spec, Error> {
    use secretsync::generate::Spec;
    let alphabet = alphabet(charset);
    match bytes {
        Some(n) => Spec::new_bytes(n, alphabet).map_err(|_| {
            Error::usage(
                "--bytes encodes random bytes: choose --charset hex, base64 or base64url",
                "or use --length N for N characters of alnum or ascii",
            )
        }),
        None => {
            Spec::new_chars(length, alphabet).map_err(|why| Error::usage(why, "--length 8 to 4096"))
        }
    }
}

fn alphabet(c: crate::cli::Charset) -> secretsync::generate::Alphabet {
    use secretsync::generate::Alphabet;
    match c {
        crate::cli::Charset::Alnum => Alphabet::Alnum,
        crate::cli::Charset::Hex => Alphabet::Hex,
        crate::cli::Charset::Base64 => Alphabet::Base64,
        crate::cli::Charset::Base64url => Alphabet::Base64url,
        crate::cli::Charset::Ascii => Alphabet::Ascii,
    }
}

// ---- shared by `run` and `get -t` ----

/// With environments (#27): the manifest as one environment sees it
/// (`--env`, or the environment of `target` when it names an instance),
/// and `target` as that environment's instance. Without environments, the
/// manifest and the target as they are (`--env` refused).
pub(super) fn env_scope(
    m: secretsync::manifest::Manifest,
    env: Option<&str>,
    target: Option<&str>,
) -> Result<(secretsync::manifest::Manifest, Option<String>), Error> {
    let hint = secretsync::manifest::environments::DEFINED_HINT;
    if !m.has_environments() {
        if let Some(e) = env {
            return Err(Error::usage(
                format!(
                    "--env {e}: {} has no environments (no `environments:`)",
                    m.path.display()
                ),
                "leave out --env; each target already names where its values go",
            ));
        }
        return Ok((m, target.map(str::to_string)));
    }
    if let Some(e) = env {
        m.check_envs(&[e.to_string()])
            .map_err(|why| Error::usage(why, hint))?;
    }
    let (env, target) = match (env, target) {
        (env, Some(t)) if m.instances.contains_key(t) => {
            let own = m.instances[t].env.clone();
            if env.is_some_and(|e| e != own) {
                return Err(Error::usage(
                    format!(
                        "--target {t} is in environment `{own}`, not `{}`",
                        env.unwrap_or_default()
                    ),
                    format!(
                        "leave out --env, or name the target `{}@{}`",
                        m.instances[t].target,
                        env.unwrap_or_default()
                    ),
                ));
            }
            (own, Some(t.to_string()))
        }
        (env, Some(t)) => {
            let envs: Vec<&str> = m
                .instances
                .values()
                .filter(|i| i.target == t)
                .map(|i| i.env.as_str())
                .collect();
            match (env, envs.as_slice()) {
                (_, []) => return Err(check_target(&m, t).unwrap_err()),
                (Some(e), _) if envs.contains(&e) => (
                    e.to_string(),
                    Some(secretsync::manifest::environments::instance_name(t, e)),
                ),
                (Some(e), _) => {
                    return Err(Error::usage(
                        format!("target `{t}` is not in environment `{e}`"),
                        format!("its environments: {}", envs.join(", ")),
                    ))
                }
                (None, [one]) => (
                    one.to_string(),
                    Some(secretsync::manifest::environments::instance_name(t, one)),
                ),
                (None, _) => {
                    return Err(Error::usage(
                        format!("target `{t}` is in environments {}", envs.join(", ")),
                        format!("choose one: --env ENV, or --target {t}@{}", envs[0]),
                    ))
                }
            }
        }
        (Some(e), None) => (e.to_string(), None),
        (None, None) => return Ok((m, None)),
    };
    Ok((m.in_env(&env), target))
}

/// Refuses a target the manifest does not define, naming those it does.
pub(super) fn check_target(m: &secretsync::manifest::Manifest, target: &str) -> Result<(), Error> {
    if m.targets.contains_key(target) {
        return Ok(());
    }
    let names: Vec<&str> = m.targets.keys().map(String::as_str).collect();
    Err(Error::usage(
        format!("--target {target}: no such target"),
        format!("targets: {}", names.join(", ")),
    ))
}

/// Every key `target` receives (as it names it) with its value, in
/// manifest order; only these secrets are decrypted.
pub(super) fn values_on(
    g: &Global,
    m: &secretsync::manifest::Manifest,
    target: &str,
    only: impl Fn(&str, &str) -> bool,
) -> Result<Vec<(String, secretsync::secret::Secret)>, Error> {
    let keep = |d: &secretsync::manifest::SecretDef| {
        d.targets.iter().any(|t| t == target) && only(&d.name, d.key_on(target))
    };
    let decrypted = secretsync::lifecycle::decrypt(m, g.identity.as_deref(), keep)?;
    Ok(m.secrets
        .values()
        .filter(|d| keep(d))
        .filter_map(|d| {
            let value = match &d.value {
                secretsync::manifest::ValueSource::Plain(v) => {
                    secretsync::secret::Secret::new(v.clone())
                }
                secretsync::manifest::ValueSource::Encrypted(_) => decrypted.get(&d.name)?.clone(),
            };
            Some((d.key_on(target).to_string(), value))
        })
        .collect())
}

/// The environments a run covers (#27): those `--env` names, each checked
/// against the manifest, or every environment it defines.
pub(crate) fn chosen_envs(
    m: &secretsync::manifest::Manifest,
    envs: &[String],
) -> Result<Vec<String>, Error> {
    m.check_envs(envs)
        .map_err(|why| Error::usage(why, secretsync::manifest::environments::DEFINED_HINT))?;
    Ok(if envs.is_empty() {
        m.environments.keys().cloned().collect()
    } else {
        envs.to_vec()
    })
}
