//! The `secretsync` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
mod cli;
mod commands;
mod complete;

use cli::Cli;

fn main() -> ExitCode {
    // First: no core dumps while values may be in memory.
    secretsync::environ::harden();
    // The run's start: leftovers of killed runs are older than this.
    secretsync::signals::run_started();
    // A panic must not print its payload (it could, in principle, carry data)
    // nor a backtrace: say where, and that it is a bug.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: secretsync hit an internal error{place}; this is a bug, please report it"
        );
    }));
    // `COMPLETE=SHELL secretsync …`: the shell asks for completions (names
    // from the manifest, see src/complete.rs); answered, and the process ends.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                json_usage_error(&e);
            }
            // Usage errors exit 1, not clap's 2: with --detailed-exitcode, 2 means "changes pending".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Then, after clap has read the variables it takes and while this is the
    // only thread: the identity and tokens out of the environment that every
    // child would inherit.
    secretsync::environ::take(secretsync::targets::registry::credential_prefixes());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // SIGINT/SIGTERM/SIGHUP: stop the command, remove this run's temp files,
    // close its SSH masters, exit 128 + the signal (src/signals.rs).
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = commands::run(cli) => Ok(result),
            code = secretsync::signals::first() => Err(code),
        }
    });
    let outcome = match outcome {
        Ok(result) => result,
        Err(code) => {
            secretsync::signals::clean_up();
            eprintln!("error: interrupted; writes under way were finished or abandoned, nothing is left behind");
            std::process::exit(i32::from(code));
        }
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            // The last guard: whatever an error quotes (a manifest string, a
            // server's answer) prints inert for a terminal and the runner.
            eprintln!("error: {}", secretsync::neutral::lines(&e.message()));
            if let Some(hint) = e.hint() {
                eprintln!("  hint: {}", secretsync::neutral::lines(&hint));
            }
            ExitCode::from(1)
        }
    }
}

/// With `--format json` on the command line, a usage error is a JSON
/// document on stdout too, as every other error of plan/apply/doctor.
fn json_usage_error(e: &clap::Error) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json");
    let Some(command) = args
        .iter()
        .find(|a| ["plan", "apply", "doctor"].contains(&a.as_str()))
    else {
        return;
    };
    if !json {
        return;
    }
    let text = e.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string();
    let doc = serde_json::json!({
        "format_version": secretsync::render::JSON_FORMAT_VERSION,
        "kind": "error",
        "command": command,
        "error": { "kind": "usage", "message": message, "hint": "see --help" },
    });
    println!("{doc:#}");
}
