//! `secretsync check`

use super::{emit, Exit};
use crate::cli::Format;
use crate::cli::{CheckArgs, Global};
use secretsync::check;
use secretsync::error::Error;

pub(super) fn run(g: &Global, a: CheckArgs) -> Result<Exit, Error> {
    let path = g.manifest.display().to_string();
    let report = check::check(&g.manifest, &a.envs)?;
    if let Some(note) = check::unverified_note(&report) {
        secretsync::notice::notice(&note);
    }
    match a.format {
        Format::Text => {
            let text = check::text(&report, &path);
            if g.quiet && report.errors() > 0 {
                // --quiet prints errors only, and these are errors.
                eprint!("{text}");
            } else {
                emit(g, &text);
            }
        }
        Format::Json => emit(g, &format!("{:#}", check::json(&report, &path))),
        Format::Markdown => emit(g, &check::markdown(&report, &path)),
    }
    Ok(if report.errors() > 0 {
        Exit::Failed
    } else if a.detailed_exitcode && report.warnings() > 0 {
        Exit::Changes
    } else {
        Exit::Ok
    })
}
