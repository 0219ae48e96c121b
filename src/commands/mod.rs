//! One function per subcommand. Each returns how the run ended; `main`
//! turns that into the exit code.

mod apply;
mod doctor;
mod get;
mod import;
mod init;
mod keys;
mod plan;

use std::io::IsTerminal;

use crate::cli::{Cli, ColorChoice, Command, Global, Selection};
use crate::engine::Options;
use crate::error::Error;
use crate::render::Style;

/// How a command ended, when it did not end with an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success (or, with --detailed-exitcode, in sync).
    Ok,
    /// With --detailed-exitcode: changes are pending.
    Changes,
    /// Something failed and was already reported (a target, a check).
    Failed,
}

impl Exit {
    /// The exit code, following Terraform's convention.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Changes => 2,
        }
    }
}

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let g = &cli.global;
    match cli.command {
        Command::Plan(a) => plan::run(g, a).await,
        Command::Apply(a) => apply::run(g, a).await,
        Command::Doctor(a) => doctor::run(g, a).await,
        Command::Get(a) => get::run(g, a),
        Command::Init(a) => init::run(g, a),
        Command::Set(a) => keys::set(g, a),
        Command::Rotate(a) => keys::rotate(g, a),
        Command::Import(a) => import::run(g, a).await,
        Command::Recipients { action } => keys::recipients(g, action),
        Command::Rekey => keys::rekey(g),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "secretsync", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
    }
}

fn options(g: &Global, s: &Selection) -> Options {
    Options {
        manifest: g.manifest.clone(),
        identity: g.identity.clone(),
        targets: s.targets.clone(),
        parallelism: usize::from(s.parallelism),
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
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
}
