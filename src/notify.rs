//! `plan --notify URL`: a redacted summary POSTed as JSON compatible with
//! Slack incoming webhooks (`{"text": …}`), only when something needs eyes.

use std::time::Duration;

use crate::lifecycle::{Finding, Level};
use crate::plan::{Plan, State};

/// The message for a plan, or `None` when everything is in sync and no
/// secret has expired, expires within the warning window or is due for
/// rotation (`lifecycle`).
pub fn message(plan: &Plan, manifest: &str, lifecycle: &[Finding]) -> Option<serde_json::Value> {
    let drift = plan.has_changes() || plan.has_errors();
    if !drift && lifecycle.is_empty() {
        return None;
    }
    let s = plan.summary();
    let mut lines = vec![if drift {
        format!(
            "*secretsync*: drift in {}: {} to add, {} to change, {} to delete; {} target(s) unreachable",
            code(manifest), s.add, s.change, s.delete, s.targets_failed
        )
    } else {
        format!(
            "*secretsync*: no drift in {}, but {} secret(s) need attention",
            code(manifest),
            lifecycle.len()
        )
    }];
    for t in &plan.targets {
        match &t.outcome {
            Err(e) => lines.push(format!(
                "• {} cannot be read: {}",
                code(&t.target),
                slack_escape(e.message.lines().next().unwrap_or(""))
            )),
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
                lines.push(format!("• {}: {}", code(&t.target), keys.join(", ")));
            }
            Ok(_) => {}
        }
    }
    for f in lifecycle {
        let mark = match f.level {
            Level::Error => "⛔",
            Level::Warning => "⚠️",
        };
        lines.push(format!(
            "{mark} {} {}",
            code(&f.secret),
            slack_escape(&f.what)
        ));
    }
    Some(serde_json::json!({ "text": lines.join("\n") }))
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
