//! GitHub Actions: the markdown summary appended to `$GITHUB_STEP_SUMMARY`,
//! and drift and failures as `::warning`/`::error` annotations.

use std::io::Write;

/// Whether we run under GitHub Actions.
pub fn github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes a workflow command's message (GitHub's rules: %, CR, LF).
pub fn escape(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// One annotation line.
pub fn annotation(level: &str, title: &str, message: &str) -> String {
    let (title, message) = (
        crate::neutral::in_line(title),
        crate::neutral::in_line(message),
    );
    format!(
        "::{level} title={}::{}",
        escape(&title).replace(',', "%2C").replace(':', "%3A"),
        escape(&message)
    )
}

/// GitHub's limit of a step's summary (`$GITHUB_STEP_SUMMARY`): 1 MiB.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// What is left of the step summary's 1 MiB
/// ([`STEP_SUMMARY_LIMIT`]) after what the step already
/// wrote to it (each newline appended counted too).
pub fn summary_room() -> usize {
    let used = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|p| !p.is_empty())
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
    STEP_SUMMARY_LIMIT.saturating_sub(used + 16)
}

/// Appends `markdown` to the step summary file, if Actions gave one.
pub fn append_summary(markdown: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(markdown.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_their_text() {
        assert_eq!(
            annotation("error", "secretsync: vps", "50% done\nthen: down"),
            "::error title=secretsync%3A vps::50%25 done%0Athen: down"
        );
    }
}
