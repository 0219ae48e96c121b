//! The plan as markdown for a pull-request comment or a step summary (#29):
//! what changes first, within a hard size budget.
//!
//! Layout: the summary line; a table of the targets with changes or errors
//! (counts); one line for the targets in sync; a matrix of the changed
//! secrets × those targets when several share changes (a state word per
//! cell); then per target a collapsed block with its changed keys (and the
//! redacted file diff). In-sync keys are counted, never listed.
//!
//! Budget: the document never exceeds the budget given (bytes, so also
//! characters). When the full detail would, it degrades in steps and says so:
//! first the file diffs go, then the matrix if it alone does not fit, then the
//! per-key details of the largest targets, until only counts remain.
//!
//! Escaping: every string from the manifest or a target goes through
//! [`md_code`], [`md_escape`] or [`html_escape`]; the rest is our own words.

use std::fmt::Write as _;

use crate::plan::{Item, Plan, Provenance, State, TargetDiff, TargetPlan};
use crate::render::{counts, html_escape, md_code, md_escape, md_fence, summary_line};

/// GitHub refuses a comment body over 65,536 characters ("Body is too long"):
/// the default budget of `plan --format markdown`, with room to spare.
pub const COMMENT_BUDGET: usize = 60_000;

pub use crate::ci::STEP_SUMMARY_LIMIT;

/// The smallest budget accepted: the heading, the summary line and the note.
pub const MIN_BUDGET: usize = 1_000;

/// Where a reader finds what the comment leaves out.
const ELSEWHERE: &str = "see the job's step summary or `--format json`";

/// The short plain-text word for a key's state, and the marker shown before
/// it (never alone): in each matrix cell and beside every marker. A new
/// state is one arm in [`Word::of`] (and a constant here when it needs a
/// new word, e.g. `outside`, `not live`): the matrix, the details and the
/// tests all take it from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    text: &'static str,
    marker: &'static str,
}

impl Word {
    pub const ADD: Word = Word::new("add", "➕ ");
    pub const CHANGE: Word = Word::new("change", "✏️ ");
    /// Holds a value the manifest replaced (a rotation not applied).
    pub const OLD: Word = Word::new("old", "✏️ ");
    /// Holds none of the manifest's values, current or previous.
    pub const OUTSIDE: Word = Word::new("outside", "✏️ ");
    pub const DELETE: Word = Word::new("delete", "🗑️ ");
    /// Sealed and left alone: not comparable.
    pub const SEALED: Word = Word::new("sealed", "⚠️ ");
    /// On the target only, left alone.
    pub const UNMANAGED: Word = Word::new("unmanaged", "");
    pub const IN_SYNC: Word = Word::new("in sync", "");
    /// The target could not be read.
    pub const ERROR: Word = Word::new("error", "❌ ");
    /// Written, but what runs from the target does not use it (#28).
    pub const NOT_LIVE: Word = Word::new("not live", "⏳ ");

    const fn new(text: &'static str, marker: &'static str) -> Word {
        Word { text, marker }
    }

    /// An item's word: its state's, or `outside` for a differing value that
    /// none of the manifest's values explains.
    pub fn of_item(i: &Item) -> Word {
        match (&i.state, i.provenance) {
            (State::Differs { replaced_on: None }, Some(Provenance::Outside)) => Word::OUTSIDE,
            (state, _) => Word::of(state),
        }
    }

    pub fn of(state: &State) -> Word {
        match state {
            State::InSync => Word::IN_SYNC,
            State::Missing => Word::ADD,
            State::Differs {
                replaced_on: None, ..
            } => Word::CHANGE,
            State::Differs {
                replaced_on: Some(_),
                ..
            } => Word::OLD,
            State::Sealed { overwrite: true } => Word::CHANGE,
            State::Sealed { overwrite: false } => Word::SEALED,
            State::Unmanaged { delete: true, .. } => Word::DELETE,
            State::Unmanaged { delete: false, .. } => Word::UNMANAGED,
            State::NotLive { .. } => Word::NOT_LIVE,
        }
    }

    pub fn text(self) -> &'static str {
        self.text
    }

    fn with_marker(self) -> String {
        format!("{}{}", self.marker, self.text)
    }
}

/// Whether a key needs a reviewer's eyes: a change, a value that cannot be
/// compared, or a value a removed secret left behind.
fn noteworthy(i: &Item) -> bool {
    i.is_change()
        || matches!(i.state, State::Sealed { .. } | State::NotLive { .. })
        || i.removed.is_some()
}

/// Whether a target is listed (changes, something noteworthy, or an error)
/// rather than counted among those in sync.
fn listed(t: &TargetPlan) -> bool {
    match &t.outcome {
        Err(_) => true,
        Ok(d) => d.items.iter().any(noteworthy),
    }
}

pub use crate::render::thousands;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

fn managed(d: &TargetDiff) -> usize {
    d.items.iter().filter(|i| i.secret.is_some()).count()
}

fn fp_pair(i: &Item) -> String {
    match (&i.target_fingerprint, &i.manifest_fingerprint) {
        (Some(t), Some(m)) => format!(" (target {t}, manifest {m})"),
        _ => String::new(),
    }
}

/// A key's state for its target's table: marker, word, then why. The text
/// is ours; every part from the manifest or a target is escaped here.
fn state_cell(i: &Item) -> String {
    let word = Word::of_item(i).with_marker();
    let why = match &i.state {
        State::InSync => String::new(),
        State::Missing => ": missing, will be added".into(),
        State::Differs {
            replaced_on: None, ..
        } if i.provenance == Some(Provenance::Outside) => format!(
            ": changed outside secretsync (none of the manifest's values){}",
            md_escape(&fp_pair(i))
        ),
        State::Differs {
            replaced_on: None, ..
        } => format!(": differs{}", md_escape(&fp_pair(i))),
        State::Differs {
            replaced_on: Some(day),
            ..
        } => format!(
            ": holds the value replaced on {}{}",
            md_escape(day),
            md_escape(&fp_pair(i))
        ),
        State::Sealed { overwrite: true } => ": sealed, will be overwritten".into(),
        State::Sealed { overwrite: false } => ": not comparable, left alone".into(),
        State::Unmanaged { delete: true } => ": unmanaged, will be deleted".into(),
        State::Unmanaged { delete: false } => ": left alone".into(),
        State::NotLive { reason, action } => format!(
            ": written, not live: {}; {}",
            md_escape(reason),
            md_escape(action)
        ),
    };
    let removed = i
        .removed
        .as_ref()
        .map(|r| {
            format!(
                "; holds the value of secret {}, removed on {}",
                md_code(&r.secret),
                md_escape(&r.on)
            )
        })
        .unwrap_or_default();
    format!("{word}{why}{removed}")
}

fn error_first_line(t: &TargetPlan) -> String {
    match &t.outcome {
        Err(e) => format!(
            "{}: cannot be read: {}",
            Word::ERROR.with_marker(),
            md_escape(e.message.lines().next().unwrap_or(""))
        ),
        Ok(d) => counts(&d.items),
    }
}

/// The table of listed targets, one row each; at most `budget` bytes (rows
/// beyond it are counted in a last row).
fn target_table(listed: &[&TargetPlan], budget: usize) -> String {
    let mut out = String::from("| target | status |\n|---|---|\n");
    for (n, t) in listed.iter().enumerate() {
        let row = format!(
            "| {} ({}) | {} |\n",
            md_code(&t.target),
            md_escape(&t.description),
            error_first_line(t)
        );
        // Room for this row and the closing one.
        if out.len() + row.len() + 120 > budget {
            let _ = writeln!(
                out,
                "| … | {} more with changes or errors: {ELSEWHERE} |",
                thousands(listed.len() - n)
            );
            return out;
        }
        out.push_str(&row);
    }
    out
}

/// "18 targets in sync, 3,600 keys." with their names when they are few.
fn in_sync_line(quiet: &[&TargetPlan]) -> String {
    if quiet.is_empty() {
        return String::new();
    }
    let keys: usize = quiet
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok())
        .map(managed)
        .sum();
    let unmanaged: usize = quiet
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok())
        .map(|d| d.items.iter().filter(|i| i.secret.is_none()).count())
        .sum();
    let mut line = format!(
        "{}, {}",
        plural(quiet.len(), "target in sync", "targets in sync"),
        plural(keys, "key", "keys")
    );
    if unmanaged > 0 {
        let _ = write!(
            line,
            " ({} left alone)",
            plural(unmanaged, "unmanaged key", "unmanaged keys")
        );
    }
    let names: Vec<String> = quiet.iter().map(|t| md_code(&t.target)).collect();
    let names = names.join(", ");
    if quiet.len() <= 20 && names.len() <= 600 {
        let _ = write!(line, ": {names}");
    }
    line.push_str(".\n");
    line
}

/// A row of the matrix: a managed secret, or a key on a target only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Secret(String),
    Unmanaged(String),
}

impl Row {
    fn of(i: &Item) -> Row {
        match &i.secret {
            Some(s) => Row::Secret(s.clone()),
            None => Row::Unmanaged(i.key.clone()),
        }
    }
}

/// Changed secrets × targets, a state word per cell (blank: not on that
/// target), when at least two targets have something to show.
fn matrix(listed: &[&TargetPlan]) -> String {
    let columns: Vec<(&TargetPlan, &TargetDiff)> = listed
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok().map(|d| (*t, d)))
        .filter(|(_, d)| d.items.iter().any(noteworthy))
        .collect();
    if columns.len() < 2 {
        return String::new();
    }
    let mut rows: Vec<Row> = columns
        .iter()
        .flat_map(|(_, d)| d.items.iter().filter(|i| noteworthy(i)).map(Row::of))
        .collect();
    rows.sort();
    rows.dedup();
    // Per column, row → word (a BTreeMap per column keeps lookups cheap).
    let cells: Vec<std::collections::BTreeMap<Row, Word>> = columns
        .iter()
        .map(|(_, d)| {
            d.items
                .iter()
                .map(|i| (Row::of(i), Word::of_item(i)))
                .collect()
        })
        .collect();
    let mut out = String::from("| secret |");
    for (t, _) in &columns {
        let _ = write!(out, " {} |", md_code(&t.target));
    }
    out.push_str("\n|---|");
    for _ in &columns {
        out.push_str("---|");
    }
    out.push('\n');
    for row in &rows {
        match row {
            Row::Secret(s) => {
                let _ = write!(out, "| {} |", md_code(s));
            }
            Row::Unmanaged(k) => {
                let _ = write!(out, "| {} (not in the manifest) |", md_code(k));
            }
        }
        for c in &cells {
            match c.get(row) {
                Some(w) => {
                    let _ = write!(out, " {} |", w.text());
                }
                None => out.push_str("  |"),
            }
        }
        out.push('\n');
    }
    out
}

/// One listed target's block: its noteworthy keys (the secret column only
/// when a key is renamed), the count of the rest, and its file diff.
fn details(t: &TargetPlan, with_diff: bool) -> String {
    let status = match &t.outcome {
        Err(_) => Word::ERROR.text().to_string(),
        Ok(d) => counts(&d.items),
    };
    // `status` is our own words and digits.
    let mut out = format!(
        "\n<details><summary><code>{}</code>: {status}</summary>\n\n",
        html_escape(&t.target),
    );
    match &t.outcome {
        Err(e) => out.push_str(&md_fence("", &e.to_string())),
        Ok(d) => {
            let shown: Vec<&Item> = d.items.iter().filter(|i| noteworthy(i)).collect();
            let renamed = shown
                .iter()
                .any(|i| i.secret.as_ref().is_some_and(|s| *s != i.key));
            if renamed {
                out.push_str("| key | secret | state |\n|---|---|---|\n");
            } else {
                out.push_str("| key | state |\n|---|---|\n");
            }
            for i in &shown {
                if renamed {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        md_code(&i.key),
                        i.secret.as_deref().map(md_code).unwrap_or_default(),
                        state_cell(i)
                    );
                } else {
                    let _ = writeln!(out, "| {} | {} |", md_code(&i.key), state_cell(i));
                }
            }
            let rest = d.items.len() - shown.len();
            if rest > 0 {
                let in_sync = d
                    .items
                    .iter()
                    .filter(|i| matches!(i.state, State::InSync))
                    .count();
                let unmanaged = rest - in_sync;
                let mut line = String::new();
                if in_sync > 0 {
                    line.push_str(&plural(in_sync, "key in sync", "keys in sync"));
                }
                if unmanaged > 0 {
                    if !line.is_empty() {
                        line.push_str(", ");
                    }
                    line.push_str(&plural(
                        unmanaged,
                        "unmanaged key left alone",
                        "unmanaged keys left alone",
                    ));
                }
                let _ = write!(out, "\nNot listed: {line}.\n");
            }
            if let (Some(diff), true) = (&d.file_diff, with_diff) {
                out.push('\n');
                out.push_str(&md_fence("diff", diff));
            }
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// The plan as markdown within `budget` bytes (at least [`MIN_BUDGET`]).
pub fn plan(plan: &Plan, budget: usize) -> String {
    let budget = budget.max(MIN_BUDGET);
    let listed_targets: Vec<&TargetPlan> = plan.targets.iter().filter(|t| listed(t)).collect();
    let quiet: Vec<&TargetPlan> = plan.targets.iter().filter(|t| !listed(t)).collect();

    let mut head = String::from("### secretsync plan\n\n");
    let _ = writeln!(head, "{}\n", summary_line(&plan.summary()));
    let sync_line = in_sync_line(&quiet);
    // Reserved for the note on what was left out.
    const NOTE: usize = 400;
    let table = if listed_targets.is_empty() {
        String::new()
    } else {
        target_table(
            &listed_targets,
            budget.saturating_sub(head.len() + sync_line.len() + NOTE),
        )
    };
    let mut base = head + &table;
    if !table.is_empty() && !sync_line.is_empty() {
        base.push('\n');
    }
    base.push_str(&sync_line);

    let grid = matrix(&listed_targets);
    let grid = if grid.is_empty() {
        grid
    } else {
        format!("\n{grid}")
    };
    let full: Vec<String> = listed_targets.iter().map(|t| details(t, true)).collect();
    let bare: Vec<String> = listed_targets.iter().map(|t| details(t, false)).collect();
    let diffs = full.iter().zip(&bare).filter(|(f, b)| f != b).count();

    let total = |parts: &[String]| parts.iter().map(String::len).sum::<usize>();
    let assemble = |note: &str, grid: &str, parts: &[&String]| {
        let mut out = base.clone();
        out.push_str(note);
        out.push_str(grid);
        for p in parts {
            out.push_str(p);
        }
        out
    };
    if base.len() + grid.len() + total(&full) <= budget {
        return assemble("", &grid, &full.iter().collect::<Vec<_>>());
    }
    let mut left_out = Vec::new();
    if diffs > 0 {
        left_out.push(plural(diffs, "file diff", "file diffs"));
    }
    let note = |left_out: &[String]| {
        let list = match left_out.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "some detail".into(),
        };
        format!("\n> The full plan does not fit in a comment: {list} left out: {ELSEWHERE}.\n")
    };
    if base.len() + NOTE + grid.len() + total(&bare) <= budget {
        return assemble(&note(&left_out), &grid, &bare.iter().collect::<Vec<_>>());
    }
    // The matrix if it fits alone, then the smallest targets' details first:
    // the largest are left out.
    let mut room = budget.saturating_sub(base.len() + NOTE);
    let grid = if !grid.is_empty() && grid.len() <= room {
        room -= grid.len();
        grid
    } else {
        if !grid.is_empty() {
            left_out.push("the matrix of changed secrets × targets".into());
        }
        String::new()
    };
    let mut order: Vec<usize> = (0..bare.len()).collect();
    order.sort_by_key(|&k| (bare[k].len(), k));
    let mut kept = vec![false; bare.len()];
    for k in order {
        if bare[k].len() > room {
            break;
        }
        room -= bare[k].len();
        kept[k] = true;
    }
    let dropped = kept.iter().filter(|k| !**k).count();
    if dropped > 0 {
        left_out.push(format!(
            "details of {} (the largest)",
            plural(dropped, "target", "targets")
        ));
    }
    let parts: Vec<&String> = bare
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|(p, _)| p)
        .collect();
    fit(&assemble(&note(&left_out), &grid, &parts), budget)
}

/// `md` cut at a line boundary to at most `budget` bytes, keeping it well
/// formed: an open code fence and open `<details>` blocks are closed, and a
/// last line says that the rest was cut. Unchanged when it fits.
pub fn fit(md: &str, budget: usize) -> String {
    if md.len() <= budget {
        return md.to_string();
    }
    const CUT: &str = "\n> The rest does not fit in a comment: ";
    let tail = format!("{CUT}{ELSEWHERE}.\n");
    let mut out = String::new();
    let mut fence: Option<String> = None;
    let mut open_details = 0usize;
    for line in md.split_inclusive('\n') {
        // What closing this prefix needs: the fence, the blocks, the note.
        let closing = fence.as_ref().map_or(0, |f| f.len() + 2) + open_details * 12 + tail.len();
        if out.len() + line.len() + closing + 64 > budget {
            break;
        }
        out.push_str(line);
        let trimmed = line.trim_end();
        match &fence {
            Some(f) if trimmed == f => fence = None,
            Some(_) => {}
            None if trimmed.starts_with("```") => {
                let ticks = trimmed.chars().take_while(|c| *c == '`').count();
                fence = Some("`".repeat(ticks));
            }
            None => {
                open_details += trimmed.matches("<details>").count();
                open_details = open_details.saturating_sub(trimmed.matches("</details>").count());
            }
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if let Some(f) = fence {
        out.push_str(&f);
        out.push('\n');
    }
    for _ in 0..open_details {
        out.push_str("\n</details>\n");
    }
    out.push_str(&tail);
    out
}

/// The whole document: the plan, then `tail` (the lifecycle and review
/// sections), within `budget`. The tail gets at most half of it; the plan the
/// rest.
pub fn document(p: &Plan, tail: &str, budget: usize) -> String {
    let budget = budget.max(MIN_BUDGET);
    let tail = fit(tail, budget / 2);
    let mut out = plan(p, budget - tail.len());
    out.push_str(&tail);
    fit(&out, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secret::Secret;
    use crate::targets::{Change, Observed, Op};

    /// Targets `t0`.. with `keys[t]` changed keys each (the first also
    /// renamed), an env-file diff of `diff` lines each, and one in sync.
    fn estate(keys: &[usize], diff: usize) -> Plan {
        let target = |t: usize, n: usize| {
            let items: Vec<Item> = (0..n)
                .map(|k| Item {
                    key: format!("K{k:04}"),
                    secret: Some(format!("K{k:04}")),
                    state: State::Differs { replaced_on: None },
                    manifest_fingerprint: Some("fp:00000000".into()),
                    target_fingerprint: Some("fp:11111111".into()),
                    removed: None,
                    provenance: None,
                    live: None,
                    live_note: None,
                })
                .collect();
            let changes = items
                .iter()
                .map(|i| Change {
                    key: i.key.clone(),
                    op: Op::Update(Secret::new("v".into())),
                })
                .collect();
            TargetPlan {
                slot: t,
                target: format!("t{t}"),
                description: format!("env file t{t}.env"),
                outcome: Ok(TargetDiff {
                    unmanaged_hidden: 0,
                    items,
                    changes,
                    file_diff: (diff > 0).then(|| {
                        (0..diff)
                            .map(|l| format!("-K{l:04}=<redacted fp:11111111>\n"))
                            .collect()
                    }),
                    observed: Observed::default(),
                }),
            }
        };
        let mut targets: Vec<TargetPlan> = keys
            .iter()
            .enumerate()
            .map(|(t, n)| target(t, *n))
            .collect();
        let mut quiet = target(keys.len(), 0);
        if let Ok(d) = &mut quiet.outcome {
            d.items.push(Item {
                key: "K".into(),
                secret: Some("K".into()),
                state: State::InSync,
                manifest_fingerprint: None,
                target_fingerprint: None,
                removed: None,
                provenance: None,
                live: None,
                live_note: None,
            });
            d.file_diff = None;
        }
        targets.push(quiet);
        Plan { targets }
    }

    #[test]
    fn the_budget_drops_file_diffs_then_the_largest_details_then_keeps_counts() {
        let p = estate(&[3, 40, 5], 200);
        let full = plan(&p, usize::MAX);
        assert!(!full.contains("left out"), "{full}");
        assert_eq!(full.matches("```diff").count(), 3, "{full}");
        assert!(full.contains("1 target in sync, 1 key: `t3`."), "{full}");

        // Without the diffs it fits.
        let bare = plan(&p, full.len() - 1);
        assert!(bare.len() < full.len());
        assert!(!bare.contains("```diff"), "{bare}");
        assert!(
            bare.contains("3 file diffs left out: see the job's step summary or `--format json`."),
            "{bare}"
        );
        assert_eq!(bare.matches("<details>").count(), 3, "{bare}");

        // The largest target's details go first; the matrix stays if it fits.
        let matrix_and_small = bare.len() - 2_000;
        let some = plan(&p, matrix_and_small);
        assert!(some.len() <= matrix_and_small);
        assert!(
            some.contains("details of 1 target (the largest) left out"),
            "{some}"
        );
        assert!(some.contains("<summary><code>t0</code>"), "{some}");
        assert!(!some.contains("<summary><code>t1</code>"), "{some}");
        assert!(some.contains("| secret | `t0` | `t1` | `t2` |"), "{some}");

        // Counts only: the table of targets and the note.
        let counts = plan(&p, MIN_BUDGET);
        assert!(counts.len() <= MIN_BUDGET, "{}", counts.len());
        assert!(
            counts.contains("| `t1` (env file t1.env) | 40 to change |"),
            "{counts}"
        );
        assert!(!counts.contains("<details>"), "{counts}");
        assert!(
            counts.contains("left out: see the job's step summary"),
            "{counts}"
        );
    }

    #[test]
    fn the_table_of_targets_is_cut_too_with_a_count() {
        let p = estate(&[1; 300], 0);
        let md = plan(&p, 5_000);
        assert!(md.len() <= 5_000, "{}", md.len());
        let more = md
            .lines()
            .find(|l| l.starts_with("| … | "))
            .unwrap_or_else(|| panic!("{md}"));
        let listed = md.lines().filter(|l| l.starts_with("| `t")).count();
        assert_eq!(
            more,
            format!(
                "| … | {} more with changes or errors: {ELSEWHERE} |",
                300 - listed
            )
        );
    }

    #[test]
    fn a_long_review_or_lifecycle_section_keeps_the_plan_in_the_budget() {
        let p = estate(&[3, 4], 0);
        let mut tail = String::from("\n#### Secret lifecycle\n\n| secret | |\n|---|---|\n");
        for n in 0..5_000 {
            tail.push_str(&format!("| `S{n}` | ⚠️ expires on 2026-12-13 |\n"));
        }
        let md = document(&p, &tail, COMMENT_BUDGET);
        assert!(md.len() <= COMMENT_BUDGET, "{}", md.len());
        assert!(md.starts_with("### secretsync plan\n"), "{md}");
        assert!(md.contains("<summary><code>t1</code>"), "{md}");
        assert!(md.contains("| `S0` | ⚠️ expires on 2026-12-13 |\n"), "{md}");
        assert!(md.contains("The rest does not fit in a comment"), "{md}");
        // Short sections are kept whole.
        let short = document(&p, "\n#### Secret lifecycle\n", COMMENT_BUDGET);
        assert_eq!(
            short,
            plan(&p, COMMENT_BUDGET) + "\n#### Secret lifecycle\n"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3600), "3,600");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn every_state_has_a_word_beside_its_marker() {
        for s in [
            State::InSync,
            State::Missing,
            State::Differs { replaced_on: None },
            State::Differs {
                replaced_on: Some("2026-11-20".into()),
            },
            State::Sealed { overwrite: true },
            State::Sealed { overwrite: false },
            State::Unmanaged { delete: true },
            State::Unmanaged { delete: false },
            State::NotLive {
                reason: "r".into(),
                action: "a".into(),
            },
        ] {
            let w = Word::of(&s);
            assert!(!w.text().is_empty());
            assert!(w.text().chars().all(|c| c.is_ascii_lowercase() || c == ' '));
            assert!(w.with_marker().ends_with(w.text()));
        }
    }

    #[test]
    fn fit_closes_what_it_cuts() {
        let mut md = String::from("### x\n\n<details><summary>a</summary>\n\n````diff\n");
        for n in 0..1000 {
            md.push_str(&format!("+K{n}=<redacted>\n"));
        }
        md.push_str("````\n\n</details>\n");
        let cut = fit(&md, 2_000);
        assert!(cut.len() <= 2_000, "{}", cut.len());
        assert!(cut.contains("\n````\n\n</details>\n"), "{cut}");
        assert!(cut.ends_with(&format!("{ELSEWHERE}.\n")), "{cut}");
        assert_eq!(fit("short\n", 2_000), "short\n");
    }
}
