//! The pull-request comment's size (#29), through the real binary against the
//! in-repo Railway server: `plan --format markdown` fits GitHub's comment
//! limit (65,536 characters; secretsync's budget is 60,000) on any estate,
//! leads with what changes, and says what it left out.

use crate::support;

use support::cli::{assert_no_canary, Out, Sandbox};
use support::railway_server::RailwayServer;

const TOKEN: &str = "CANARY-comment-size-token-9e41";
const ENV: &str = "env-prod";
const PROJECT: &str = "p-size";
/// GitHub refuses a comment body over 65,536 characters; the plan's budget.
const BUDGET: usize = 60_000;

fn key(i: usize) -> String {
    format!("K{i:04}")
}

fn service(t: usize) -> String {
    format!("svc{t:02}")
}

fn value(i: usize) -> String {
    format!("CANARY-v{i:04}-5b7d")
}

/// `secrets` secrets on `targets` Railway services of one project, each
/// secret on every service; `drift(i, t)` says what service `t` holds under
/// secret `i`'s key: `Some(None)` nothing, `Some(Some(v))` another value,
/// `None` the manifest's.
struct Estate {
    sb: Sandbox,
    server: RailwayServer,
}

impl Estate {
    fn new(
        secrets: usize,
        targets: usize,
        drift: impl Fn(usize, usize) -> Option<Option<String>>,
    ) -> Estate {
        let server = RailwayServer::start();
        server.add_account_token(TOKEN);
        server.add_project(PROJECT, "shop");
        server.add_environment(PROJECT, ENV, "production");
        let sb = Sandbox::new();
        let mut m = sb.header();
        m.push_str("targets:\n");
        for t in 0..targets {
            let id = format!("id-{}", service(t));
            server.add_service(PROJECT, &id, &service(t));
            m.push_str(&format!(
                "  {0}: {{ type: railway, project: {PROJECT}, environment: production, service: {0} }}\n",
                service(t)
            ));
            for i in 0..secrets {
                match drift(i, t) {
                    None => server.set_var(PROJECT, ENV, Some(&id), &key(i), &value(i)),
                    Some(Some(other)) => server.set_var(PROJECT, ENV, Some(&id), &key(i), &other),
                    Some(None) => {}
                }
            }
        }
        let all: Vec<String> = (0..targets).map(service).collect();
        m.push_str("secrets:\n");
        for i in 0..secrets {
            m.push_str(&format!(
                "  {}:\n    targets: [{}]\n    value: {}\n",
                key(i),
                all.join(", "),
                value(i)
            ));
        }
        sb.write("secrets.yaml", &m);
        Estate { sb, server }
    }

    fn run(&self, args: &[&str], more: &[(&str, &str)]) -> Out {
        let url = self.server.url();
        let mut env = vec![
            ("SECRETSYNC_RAILWAY_ENDPOINT", url.as_str()),
            ("RAILWAY_API_TOKEN", TOKEN),
        ];
        env.extend_from_slice(more);
        let out = self.sb.run_with(args, &env);
        assert_no_canary(&format!("{args:?}"), out.all().as_bytes(), &[TOKEN]);
        out
    }

    /// `plan --format markdown` (under GitHub Actions with `more`).
    fn markdown(&self, more: &[(&str, &str)]) -> String {
        let started = std::time::Instant::now();
        let out = self.run(&["plan", "--format", "markdown"], more);
        eprintln!("plan --format markdown: {:?}", started.elapsed());
        assert_ne!(out.code, 1, "{}", out.stderr);
        eprintln!(
            "markdown: {} bytes, {} characters",
            out.stdout.len(),
            out.stdout.chars().count()
        );
        // Parses as GitHub's markdown, every table row with its header's cells.
        let rows = super::trust::table_rows(&out.stdout);
        for table in &rows {
            assert!(
                table.iter().all(|n| *n == table[0]),
                "{table:?}\n{}",
                out.stdout
            );
        }
        out.stdout
    }
}

#[test]
fn two_hundred_secrets_on_twenty_services_in_sync_fit_in_8_kb() {
    let e = Estate::new(200, 20, |_, _| None);
    let md = e.markdown(&[]);
    assert!(md.len() < 8 * 1024, "{} bytes:\n{md}", md.len());
    assert!(md.contains("20 targets in sync, 4,000 keys"), "{md}");
    // Nothing in sync is listed key by key.
    assert!(!md.contains("K0199"), "{md}");
}

#[test]
fn one_key_drifted_on_every_service_is_named_for_each() {
    let e = Estate::new(200, 20, |i, _| {
        (i == 42).then(|| Some("CANARY-stale-42".to_string()))
    });
    let md = e.markdown(&[]);
    assert!(md.len() < BUDGET, "{} bytes", md.len());
    assert_no_canary("markdown", md.as_bytes(), &["CANARY-stale-42", &value(42)]);
    assert!(md.contains("0 to add, 20 to change, 0 to delete"), "{md}");
    // The matrix: one row for the key, a state word under every service.
    let head = md
        .lines()
        .find(|l| l.starts_with("| secret |"))
        .unwrap_or_else(|| panic!("no matrix:\n{md}"));
    for t in 0..20 {
        assert!(head.contains(&format!("`{}`", service(t))), "{head}");
    }
    let row = md
        .lines()
        .find(|l| l.starts_with("| `K0042` |"))
        .unwrap_or_else(|| panic!("no row for K0042:\n{md}"));
    // The drifted value is none of the manifest's: `outside` (#25), a kind of change.
    assert_eq!(row.matches("| outside ").count(), 20, "{row}");
    // And each service's details name it.
    for t in 0..20 {
        let details = md
            .split("<details>")
            .find(|d| d.starts_with(&format!("<summary><code>{}</code>", service(t))))
            .unwrap_or_else(|| panic!("no details of {}:\n{md}", service(t)));
        assert!(details.contains("| `K0042` | ✏️ outside"), "{details}");
    }
    // A smaller budget, as asked: the largest details go, and it says so.
    let small = e.run(
        &["plan", "--format", "markdown", "--markdown-limit", "3k"],
        &[],
    );
    assert!(small.stdout.len() <= 3_000, "{}", small.stdout);
    assert!(
        small
            .stdout
            .contains("left out: see the job's step summary or `--format json`"),
        "{}",
        small.stdout
    );
    let refused = e.run(&["plan", "--markdown-limit", "10"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("too small: at least 1000 bytes"),
        "{}",
        refused.stderr
    );
    // The other 199 keys of each service: a count, not a row each.
    assert!(md.contains("Not listed: 199 keys in sync."), "{md}");
    assert!(!md.contains("K0041"), "{md}");
}

#[test]
fn a_thousand_secrets_on_fifty_targets_with_drift_stay_under_the_budget() {
    // 10% of the pairs drift: half of them missing, half another value.
    let e = Estate::new(1000, 50, |i, t| match (i * 7 + t * 13) % 20 {
        0 => Some(None),
        10 => Some(Some(format!("CANARY-stale-{i}"))),
        _ => None,
    });
    // One run (planning 50,000 keys takes a while in a debug build): the
    // comment on stdout, the step summary written beside it.
    // The drift notification of the same run too.
    let summary = e.sb.path("summary.md");
    let (hook, rx, _l) = support::webhook::listener();
    let md = e.markdown(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ("SECRETSYNC_NOTIFY_URL", &hook),
    ]);
    assert!(md.len() < BUDGET, "{} bytes", md.len());
    assert!(
        md.contains("2,500 to add, 2,500 to change, 0 to delete")
            || md.contains("2500 to add, 2500 to change, 0 to delete"),
        "{}",
        &md[..md.len().min(2000)]
    );
    // Every target with changes is in the table, with its counts.
    for t in 0..50 {
        assert!(
            md.contains(&format!("| `{}` (railway service", service(t))),
            "{}",
            service(t)
        );
    }
    // What was left out, and where to find it: the matrix, and the details
    // of every target whose block is not there.
    let kept = md.matches("<details>").count();
    assert!(kept > 0 && kept < 50, "{kept}");
    assert!(
        md.contains(&format!(
            "the matrix of changed secrets × targets and details of {} targets (the largest) left out",
            50 - kept
        )),
        "{}",
        &md[..md.len().min(6000)]
    );
    assert!(
        md.contains("left out: see the job's step summary or `--format json`"),
        "{}",
        &md[md.len().saturating_sub(3000)..]
    );

    // The step summary gets the full detail (it fits in 1 MiB).
    let full = std::fs::read_to_string(&summary).unwrap();
    eprintln!("step summary: {} bytes", full.len());
    assert!(full.len() <= 1024 * 1024, "{}", full.len());
    assert!(!full.contains("left out"), "{}", &full[..2000]);
    for t in 0..50 {
        assert!(
            full.contains(&format!("<summary><code>{}</code>", service(t))),
            "{}",
            service(t)
        );
    }

    // Slack's text: within 4,000 characters, each service with its count.
    let body = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = doc["text"].as_str().unwrap();
    eprintln!("notification: {} characters", text.chars().count());
    assert!(text.chars().count() <= 4_000, "{text}");
    for t in 0..50 {
        assert!(
            text.contains(&format!("• `{}`: 100 change(s)", service(t))),
            "{text}"
        );
    }
    assert_no_canary("notification", body.as_bytes(), &[TOKEN, &value(7)]);
}
