//! `cargo bench --bench scale`: does plan/apply scale, against the shell loop
//! that the incident was solved with?
//!
//! For N secrets over M targets of each kind, it measures the real binary's
//! wall time, requests, SSH connections and remote commands, and peak memory,
//! for `plan` and for `apply` (5% of the values drifted), plus the time to
//! decrypt N values; then the same reads through a naive baseline that asks
//! each target for each secret in turn, one request or command at a time.
//! A baseline run that would take minutes is measured on a sample of its
//! requests and extrapolated (it is strictly sequential, so its cost is the
//! sample's per-request cost times the number of requests); the table says so.
//!
//! Options (after `--`): `--quick` (small sizes), `--latency-ms L` (default 50).

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secretsync::crypto;
use secretsync::secret::Secret;

/// What one run of the binary cost.
#[derive(Debug, Default, Clone)]
struct Cost {
    wall: Duration,
    http_requests: usize,
    ssh_connections: usize,
    remote_commands: usize,
    peak_rss_kib: i64,
}

/// The counters a backend keeps (requests served, connections accepted,
/// commands run), read before and after a run.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    http: usize,
    ssh: usize,
    commands: usize,
}

/// One kind of target in the scenario.
trait Backend {
    fn kind(&self) -> &'static str;
    /// The manifest lines of target number `i` (named by the caller).
    fn target_yaml(&self, i: usize) -> String;
    /// Puts `values` on target `i`.
    fn seed(&self, i: usize, values: &[(String, String)]);
    /// The naive baseline: one request or command for one key of target `i`.
    fn naive_read(&self, i: usize, key: &str) -> Option<String>;
    fn counters(&self) -> Counters {
        Counters::default()
    }
    /// Environment for the binary (endpoints, tokens, PATH).
    fn env(&self) -> Vec<(String, String)> {
        vec![]
    }
}

/// Env files on this machine; the baseline greps one key per process.
struct LocalFiles {
    dir: PathBuf,
}

impl LocalFiles {
    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("local-{i}.env"))
    }
}

impl Backend for LocalFiles {
    fn kind(&self) -> &'static str {
        "env_file"
    }
    fn target_yaml(&self, i: usize) -> String {
        format!("{{ type: env_file, path: {} }}", self.path(i).display())
    }
    fn seed(&self, i: usize, values: &[(String, String)]) {
        let text: String = values
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\"\n"))
            .collect();
        std::fs::write(self.path(i), text).unwrap();
    }
    fn naive_read(&self, i: usize, key: &str) -> Option<String> {
        let out = Command::new("grep")
            .arg("-m1")
            .arg(format!("^{key}="))
            .arg(self.path(i))
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A scenario on disk: the manifest, its identity, the backends' targets.
struct Scenario<'a> {
    dir: &'a Path,
    identity: PathBuf,
    manifest: PathBuf,
    secrets: usize,
    targets: Vec<(&'a dyn Backend, usize)>,
    values: Vec<(String, String)>,
}

fn value_of(i: usize, generation: u32) -> String {
    format!("value-{generation}-{i:06}-{}", "s".repeat(24))
}

impl<'a> Scenario<'a> {
    /// N secrets, each on every target; targets seeded in sync except
    /// `drift_percent` of their values.
    fn build(
        dir: &'a Path,
        secrets: usize,
        backends: &[(&'a dyn Backend, usize)],
        drift_percent: usize,
    ) -> Scenario<'a> {
        let id = age::x25519::Identity::generate();
        let identity = dir.join("id.txt");
        use secrecy::ExposeSecret;
        std::fs::write(&identity, id.to_string().expose_secret()).unwrap();
        let recipient = crypto::Recipient::X25519(id.to_public());
        let values: Vec<(String, String)> = (0..secrets)
            .map(|i| (format!("SECRET_{i:06}"), value_of(i, 1)))
            .collect();

        let mut targets = Vec::new();
        let mut yaml = format!("version: 1\nrecipients:\n  - {recipient}\ntargets:\n");
        for (b, count) in backends {
            for i in 0..*count {
                let _ = writeln!(yaml, "  {}-{i}: {}", b.kind(), b.target_yaml(i));
                targets.push((*b, i));
            }
        }
        let names: Vec<String> = targets
            .iter()
            .map(|(b, i)| format!("{}-{i}", b.kind()))
            .collect();
        let list = names.join(", ");
        yaml.push_str("secrets:\n");
        for (k, v) in &values {
            let ct = crypto::encrypt(std::slice::from_ref(&recipient), v.as_bytes()).unwrap();
            let _ = write!(yaml, "  {k}:\n    targets: [{list}]\n    encrypted: |\n");
            for l in ct.lines() {
                let _ = writeln!(yaml, "      {l}");
            }
        }
        let manifest = dir.join("secrets.yaml");
        std::fs::write(&manifest, yaml).unwrap();
        for (b, i) in &targets {
            let seeded: Vec<(String, String)> = values
                .iter()
                .enumerate()
                .map(|(n, (k, v))| {
                    if drift_percent > 0 && n % (100 / drift_percent) == 0 {
                        (k.clone(), value_of(n, 0))
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect();
            b.seed(*i, &seeded);
        }
        Scenario {
            dir,
            identity,
            manifest,
            secrets,
            targets,
            values,
        }
    }

    fn backends(&self) -> Vec<&'a dyn Backend> {
        let mut seen: Vec<&dyn Backend> = Vec::new();
        for (b, _) in &self.targets {
            if !seen.iter().any(|s| s.kind() == b.kind()) {
                seen.push(*b);
            }
        }
        seen
    }

    fn counters(&self) -> Counters {
        self.backends().iter().fold(Counters::default(), |acc, b| {
            let c = b.counters();
            Counters {
                http: acc.http + c.http,
                ssh: acc.ssh + c.ssh,
                commands: acc.commands + c.commands,
            }
        })
    }

    /// Runs the real binary and measures it.
    fn run(&self, args: &[&str]) -> Cost {
        let before = self.counters();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secretsync"));
        cmd.args(args)
            .arg("-f")
            .arg(&self.manifest)
            .arg("--identity")
            .arg(&self.identity)
            .arg("-q")
            .current_dir(self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for b in self.backends() {
            for (k, v) in b.env() {
                cmd.env(k, v);
            }
        }
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let wall = start.elapsed();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 2,
            "secretsync {args:?} failed ({code}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = self.counters();
        Cost {
            wall,
            http_requests: after.http - before.http,
            ssh_connections: after.ssh - before.ssh,
            remote_commands: after.commands - before.commands,
            peak_rss_kib: children_max_rss_kib(),
        }
    }

    /// The shell loop: every key of every target, one request at a time.
    /// Measured in full up to `budget` requests, extrapolated beyond.
    fn baseline(&self, budget: usize) -> (Duration, bool, usize) {
        let total = self.secrets * self.targets.len();
        let per_target = (budget / self.targets.len().max(1)).clamp(1, self.secrets);
        let before = self.counters();
        let start = Instant::now();
        let mut asked = 0;
        let mut matched = 0;
        for (b, i) in &self.targets {
            for (k, v) in self.values.iter().take(per_target) {
                if b.naive_read(*i, k)
                    .is_some_and(|got| got.contains(v.as_str()))
                {
                    matched += 1;
                }
                asked += 1;
            }
        }
        let took = start.elapsed();
        let _ = (before, matched);
        if asked == total {
            (took, false, asked)
        } else {
            (took.mul_f64(total as f64 / asked as f64), true, asked)
        }
    }
}

/// The largest peak RSS of the children waited for so far (they run in
/// ascending sizes, so the last measured is the largest).
fn children_max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0)
}

/// Time to decrypt `n` values in-process, as plan does (all cores).
fn decrypt_time(n: usize) -> Duration {
    let id = age::x25519::Identity::generate();
    let recipient = crypto::Recipient::X25519(id.to_public());
    let cts: Vec<String> = (0..n)
        .map(|i| {
            crypto::encrypt(std::slice::from_ref(&recipient), value_of(i, 1).as_bytes()).unwrap()
        })
        .collect();
    let ids = crypto::Identities {
        keys: vec![crypto::Identity::X25519(id)],
        origin: "bench".into(),
    };
    let start = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in cts.chunks(chunk) {
            let ids = &ids;
            s.spawn(move || {
                for ct in part {
                    let v: Secret = crypto::decrypt(ids, ct, "bench").unwrap();
                    assert!(!v.is_empty());
                }
            });
        }
    });
    start.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[10, 100]
    } else {
        &[10, 100, 1000, 10_000]
    };

    let mut report = String::new();
    let _ = writeln!(
        report,
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH
    );
    let _ = writeln!(report, "\n| secrets | targets | command | wall | HTTP requests | SSH conns | remote cmds | peak RSS |");
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
    let mut baseline_rows = String::new();
    for &n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalFiles {
            dir: dir.path().to_path_buf(),
        };
        let backends: Vec<(&dyn Backend, usize)> = vec![(&local, 10)];
        let sc = Scenario::build(dir.path(), n, &backends, 5);
        let targets = sc.targets.len();
        let plan = sc.run(&["plan"]);
        let apply = sc.run(&["apply", "--auto-approve"]);
        for (what, c) in [("plan", &plan), ("apply", &apply)] {
            let _ = writeln!(
                report,
                "| {n} | {targets} | {what} | {} | {} | {} | {} | {} MiB |",
                ms(c.wall),
                c.http_requests,
                c.ssh_connections,
                c.remote_commands,
                c.peak_rss_kib / 1024
            );
        }
        let (base, extrapolated, asked) = sc.baseline(2000);
        let _ = writeln!(
            baseline_rows,
            "| {n} | {targets} | {}{} | {} | {:.1}x |",
            ms(base),
            if extrapolated {
                format!(" (extrapolated from {asked} requests)")
            } else {
                String::new()
            },
            ms(plan.wall),
            base.as_secs_f64() / plan.wall.as_secs_f64()
        );
    }
    let _ = writeln!(report, "\n| secrets | targets | naive baseline | secretsync plan | ratio |\n|---|---|---|---|---|\n{baseline_rows}");
    let d = decrypt_time(1000);
    let _ = writeln!(report, "decrypting 1,000 values: {}", ms(d));
    println!("{report}");
}
