//! `plan --notify URL`: a redacted summary POSTed as JSON compatible with
//! Slack incoming webhooks (`{"text": …}`), only when something needs eyes.

use std::time::Duration;

use crate::lifecycle::{Finding, Level};
use crate::plan::{Plan, State};

/// Slack's limits on a message's `text`: it asks for at most 4,000
/// characters ("for best results") and truncates past 40,000, mid-word and
/// mid-markup. secretsync keeps the whole message within
/// [`TEXT_LIMIT`] characters and each target's line within [`LINE_LIMIT`].
pub const TEXT_LIMIT: usize = 4_000;
/// The longest line for one target: its keys, then "and N more".
pub const LINE_LIMIT: usize = 400;

/// The message for a plan, or `None` when everything is in sync and no
/// secret has expired, expires within the warning window or is due for
/// rotation (`lifecycle`). Within [`TEXT_LIMIT`]: when the keys of every
/// target do not fit, each target gets its counts only; when those do not
/// fit either, the last lines make way for "and N more".
pub fn message(plan: &Plan, manifest: &str, lifecycle: &[Finding]) -> Option<serde_json::Value> {
    message_within(plan, manifest, lifecycle, TEXT_LIMIT)
}

/// [`message`] within `limit` characters.
pub fn message_within(
    plan: &Plan,
    manifest: &str,
    lifecycle: &[Finding],
    limit: usize,
) -> Option<serde_json::Value> {
    let drift = plan.has_drift() || plan.has_errors();
    if !drift && lifecycle.is_empty() {
        return None;
    }
    let s = plan.summary();
    let head = cut(
        &if drift {
            format!(
            "*secretsync*: drift in {}: {} to add, {} to change, {} to delete; {} target(s) unreachable{}",
            code(manifest), s.add, s.change, s.delete, s.targets_failed,
            if s.not_live > 0 { format!("; {} value(s) written, not live", s.not_live) } else { String::new() }
        )
        } else {
            format!(
                "*secretsync*: no drift in {}, but {} secret(s) need attention",
                code(manifest),
                lifecycle.len()
            )
        },
        2 * LINE_LIMIT,
    );
    // Per target: the line with its keys, and the line with its counts.
    let mut keyed = Vec::new();
    let mut counted = Vec::new();
    for t in &plan.targets {
        match &t.outcome {
            Err(e) => {
                let line = cut(
                    &format!(
                        "• {} cannot be read: {}",
                        code(&t.target),
                        slack_escape(e.message.lines().next().unwrap_or(""))
                    ),
                    LINE_LIMIT,
                );
                keyed.push(line.clone());
                counted.push(line);
            }
            Ok(d) if !d.changes.is_empty() => {
                let keys: Vec<String> = d
                    .items
                    .iter()
                    .filter(|i| i.is_change())
                    .map(|i| match &i.state {
                        State::Differs {
                            replaced_on: Some(day),
                        } => format!(
                            "{} (holds the value replaced on {})",
                            slack_escape(&i.key),
                            slack_escape(day)
                        ),
                        _ => slack_escape(&i.key),
                    })
                    .collect();
                let name = code(&t.target);
                let mut line = format!("• {name}: ");
                for (n, k) in keys.iter().enumerate() {
                    let more = format!("and {} more", keys.len() - n);
                    let sep = if n == 0 { "" } else { ", " };
                    let room = if n + 1 == keys.len() {
                        0
                    } else {
                        more.len() + 2
                    };
                    if chars(&line) + sep.len() + chars(k) + room > LINE_LIMIT {
                        line.push_str(sep);
                        line.push_str(&more);
                        break;
                    }
                    line.push_str(sep);
                    line.push_str(k);
                }
                keyed.push(line);
                counted.push(format!("• {name}: {} change(s)", d.changes.len()));
            }
            Ok(d) => {
                // Nothing to write, but values not live (#28).
                let keys: Vec<String> = d
                    .items
                    .iter()
                    .filter(|i| matches!(i.state, State::NotLive { .. }))
                    .map(|i| slack_escape(&i.key))
                    .collect();
                if !keys.is_empty() {
                    let name = code(&t.target);
                    let line = cut(
                        &format!("• {name}: written, not live: {}", keys.join(", ")),
                        LINE_LIMIT,
                    );
                    keyed.push(line);
                    counted.push(format!("• {name}: {} not live", keys.len()));
                }
            }
        }
    }
    let life: Vec<String> = lifecycle
        .iter()
        .map(|f| {
            let mark = match f.level {
                Level::Error => "⛔",
                Level::Warning => "⚠️",
            };
            cut(
                &format!("{mark} {} {}", code(&f.secret), slack_escape(&f.what)),
                LINE_LIMIT,
            )
        })
        .collect();
    let total = |lines: &[String]| chars(&head) + lines.iter().map(|l| chars(l) + 1).sum::<usize>();
    let mut lines: Vec<String> = keyed.iter().chain(&life).cloned().collect();
    if total(&lines) > limit {
        lines = counted.iter().chain(&life).cloned().collect();
    }
    if total(&lines) > limit {
        // The last lines make way for one that counts them.
        let all = lines.len();
        let reserve = 80;
        while !lines.is_empty() && total(&lines) + reserve > limit {
            lines.pop();
        }
        lines.push(format!(
            "… and {} more line(s): run `secretsync plan` for the rest",
            all - lines.len()
        ));
    }
    let mut text = head;
    for l in lines {
        text.push('\n');
        text.push_str(&l);
    }
    Some(serde_json::json!({ "text": text }))
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` within `limit` characters (an ellipsis marks a cut).
fn cut(s: &str, limit: usize) -> String {
    if chars(s) <= limit {
        return s.to_string();
    }
    let mut out: String = s.chars().take(limit.saturating_sub(1)).collect();
    // Never end inside an entity (`&amp;`): drop a partial one.
    if let Some(amp) = out.rfind('&') {
        if !out[amp..].contains(';') {
            out.truncate(amp);
        }
    }
    out.push('…');
    out
}

/// Text for Slack's mrkdwn: `&`, `<` and `>` as its three entities, so a
/// name cannot become a link (`<https://…|text>`) or a mention (`<!channel>`);
/// line breaks as spaces, so it cannot start a line of its own.
fn slack_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            c if c.is_control() => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A name as inline code; a backtick in it would end the code early.
fn code(s: &str) -> String {
    format!("`{}`", slack_escape(s).replace('`', "'"))
}

/// POSTs `body` to `url`. The error says why, without the URL's secret path.
pub async fn send(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .ok_or("the --notify URL does not parse")?;
    let response = client.post(url).json(body).send().await.map_err(|e| {
        // The URL of a webhook is a credential: never print it, only the host and the causes.
        let e = e.without_url();
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why.push_str(&format!(": {s}"));
            source = s.source();
        }
        format!("cannot reach {host}: {why}")
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "{host} answered HTTP {}",
            response.status().as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Item, TargetDiff, TargetPlan};
    use crate::secret::Secret;
    use crate::targets::{Change, Observed, Op};

    /// `targets` targets with `keys` keys to add each.
    fn plan(targets: usize, keys: usize) -> Plan {
        let target = |t: usize| {
            let keys: Vec<String> = (0..keys).map(|k| format!("KEY_{k:04}")).collect();
            TargetPlan {
                slot: t,
                target: format!("target-{t:04}"),
                description: String::new(),
                outcome: Ok(TargetDiff {
                    unmanaged_hidden: 0,
                    items: keys
                        .iter()
                        .map(|k| Item {
                            key: k.clone(),
                            secret: Some(k.clone()),
                            state: State::Missing,
                            manifest_fingerprint: None,
                            target_fingerprint: None,
                            removed: None,
                            provenance: None,
                            live: None,
                            live_note: None,
                        })
                        .collect(),
                    changes: keys
                        .iter()
                        .map(|k| Change {
                            key: k.clone(),
                            op: Op::Add(Secret::new("v".into())),
                        })
                        .collect(),
                    file_diff: None,
                    observed: Observed::default(),
                }),
            }
        };
        Plan {
            targets: (0..targets).map(target).collect(),
        }
    }

    fn text(p: &Plan) -> String {
        message(p, "secrets.yaml", &[]).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_small_drift_names_every_key() {
        let t = text(&plan(3, 4));
        assert!(
            t.contains("• `target-0002`: KEY_0000, KEY_0001, KEY_0002, KEY_0003"),
            "{t}"
        );
        assert!(!t.contains("more"), "{t}");
    }

    #[test]
    fn many_keys_on_one_target_end_in_a_count() {
        let t = text(&plan(1, 1000));
        let line = t.lines().nth(1).unwrap();
        assert!(line.chars().count() <= LINE_LIMIT, "{line}");
        assert!(line.ends_with(" more"), "{line}");
        let shown = line.matches("KEY_").count();
        assert!(
            line.ends_with(&format!("and {} more", 1000 - shown)),
            "{line}"
        );
    }

    #[test]
    fn many_targets_fall_back_to_counts_then_to_a_count_of_lines() {
        // 50 targets: their keys do not fit, their counts do.
        let t = text(&plan(50, 100));
        assert!(t.chars().count() <= TEXT_LIMIT, "{}", t.len());
        for n in 0..50 {
            assert!(
                t.contains(&format!("• `target-{n:04}`: 100 change(s)")),
                "{t}"
            );
        }
        // 1,000 targets: not even their counts fit.
        let t = text(&plan(1000, 10));
        assert!(t.chars().count() <= TEXT_LIMIT, "{}", t.chars().count());
        assert!(
            t.starts_with("*secretsync*: drift in `secrets.yaml`: 10000 to add"),
            "{t}"
        );
        let shown = t.matches("• ").count();
        assert!(shown > 10 && shown < 1000, "{shown}");
        assert!(
            t.ends_with(&format!(
                "… and {} more line(s): run `secretsync plan` for the rest",
                1000 - shown
            )),
            "{t}"
        );
    }
}
