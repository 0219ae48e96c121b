//! `cargo bench --bench scale`: do plan and apply scale, and how do they
//! compare with the shell loop the incident was solved with? (issue #8)
//!
//! Everything runs on this machine, on 127.0.0.1: the in-repo Railway test
//! server with a latency injected into every answer, real `sshd` instances
//! (one per "host"), the stand-in `security` reached over SSH (the "Mac"),
//! and local env files. For N secrets over M targets it measures the real
//! binary's wall time, HTTP requests, SSH connections, remote commands and
//! peak memory, for `plan` and for `apply` (5% of the key x target pairs
//! drifted), and the time `decrypt_all` takes for N values; then the same key
//! x target pairs through a naive baseline that asks one key of one target at
//! a time, as a shell loop does. The baseline is strictly sequential, so where
//! running it in full would take minutes it is measured on the first keys of
//! every target and each target's time is extrapolated to all its keys (the
//! table says how many requests were measured).
//!
//! The scenario (targets in the manifest in this order):
//! - Railway: `projects` projects of `services` services each, environment
//!   `production`; every secret goes to two services of one project.
//! - ssh_env: `hosts` sshd instances with `files` env files each; local
//!   env_file targets after them; every secret goes to one of these files.
//! - keychain: targets on one more sshd instance (the "Mac"), each holding
//!   [`KEYCHAIN_ITEMS`] items (a Mac's tokens: the stand-in is one Python
//!   process per item).
//!
//! Each measured command runs under this same binary in a wrapper mode that
//! spawns it, waits, and records its wall time and the peak RSS of it and the
//! processes it waited for (getrusage of the wrapper's children): every
//! figure belongs to exactly one run.
//!
//! Options (after `--`): `--quick` (small sizes), `--smoke` (10 secrets over
//! one target of each kind, for CI: `cargo test --bench scale -- --smoke`
//! runs it from the test build in seconds), `--latency-ms L` (default
//! 50), `--sample K` (baseline keys measured per target, default 10),
//! `--sizes 10,100` and `--targets 5,50` (override the series),
//! `--parallelism P` (passed to the binary), `--hold` (build the largest
//! scenario, print the command to run against it, wait for stdin to end).

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secretsync::crypto;
use support::railway_server::RailwayServer;
use support::sshd::{ensure_user, KeptMasters, Sshd};

/// Set in the environment of the wrapper: the file it writes its figures to.
const MEASURE_ENV: &str = "SECRETSYNC_BENCH_MEASURE_OUT";
/// Set in the environment of the wrapper: the cgroup it joins first.
const CGROUP_ENV: &str = "SECRETSYNC_BENCH_CGROUP_PROCS";
/// A test token of the test server (never printed).
const TOKEN: &str = "bench-account-token-not-a-secret";
const ENV_ID: &str = "env-production";
/// Items per keychain target.
const KEYCHAIN_ITEMS: usize = 2;
/// One pair in this many is drifted (5%).
const DRIFT_EVERY: usize = 20;

/// The mix of targets for a total M.
#[derive(Debug, Clone, Copy)]
struct Shape {
    projects: usize,
    services: usize,
    hosts: usize,
    files: usize,
    keychains: usize,
    locals: usize,
}

impl Shape {
    fn for_targets(m: usize) -> Shape {
        let s = |projects, services, hosts, files, keychains, locals| Shape {
            projects,
            services,
            hosts,
            files,
            keychains,
            locals,
        };
        match m {
            // `--smoke`: one of each kind, the least that runs every path.
            6 => s(1, 3, 1, 1, 1, 1),
            5 => s(1, 4, 1, 1, 0, 0),
            10 => s(1, 7, 1, 2, 1, 0),
            25 => s(2, 10, 2, 2, 1, 0),
            50 => s(4, 10, 3, 2, 2, 2),
            _ => panic!("no scenario shape for {m} targets (6, 5, 10, 25 or 50)"),
        }
    }

    fn total(&self) -> usize {
        self.projects * self.services + self.hosts * self.files + self.keychains + self.locals
    }

    fn describe(&self) -> String {
        format!(
            "{}x{} Railway services, {}x{} ssh_env files, {} keychain, {} env_file",
            self.projects, self.services, self.hosts, self.files, self.keychains, self.locals
        )
    }
}

/// The SSH hosts the whole run shares: env-file hosts and the "Mac".
struct World {
    hosts: Vec<Sshd>,
    mac: Sshd,
    /// `security` for the keychain targets: the stand-in run by the Python
    /// interpreter itself, not through a version manager's shim (pyenv's
    /// costs ~0.2 s a call, which would be measuring pyenv).
    standin: PathBuf,
    _dir: tempfile::TempDir,
    /// Every sshd above and all they start (dropped after them).
    hosts_group: Option<CpuGroup>,
    /// Each measured run and all it starts, the daemonised SSH masters too.
    client_group: Option<CpuGroup>,
}

impl World {
    fn start(hosts: usize) -> World {
        let dir = tempfile::Builder::new()
            .prefix("ss-bench-world")
            .tempdir()
            .unwrap();
        ensure_user(SSH_USER, false);
        // The SSH user must be able to run it: the system's python3, not one
        // under root's home.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".to_string()
        } else {
            let out = Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 runs the stand-in security");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let standin = dir.path().join("security");
        std::fs::write(
            &standin,
            format!(
                "#!/bin/sh\nexec {python} {} \"$@\"\n",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/support/security")
                    .display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let world = World {
            hosts: (0..hosts).map(|_| Sshd::start()).collect(),
            mac: Sshd::start(),
            standin,
            _dir: dir,
            hosts_group: CpuGroup::new("ss-bench-hosts"),
            client_group: CpuGroup::new("ss-bench-client"),
        };
        let grouped = world
            .hosts_group
            .as_ref()
            .is_some_and(|g| world.all().all(|s| s.pid().is_some_and(|pid| g.add(pid))));
        if !grouped {
            eprintln!(
                "no writable cgroup here: CPU figures from getrusage only, none for the hosts"
            );
        }
        world
    }

    fn all(&self) -> impl Iterator<Item = &Sshd> {
        self.hosts.iter().chain(std::iter::once(&self.mac))
    }

    fn ssh_counters(&self) -> (usize, usize) {
        self.all().fold((0, 0), |(c, n), s| {
            (c + s.connections(), n + s.command_count())
        })
    }

    /// CPU time the SSH "hosts" have spent so far (their sshd, shells and
    /// stand-ins): on a real deployment, spent on the hosts, not here.
    fn hosts_cpu(&self) -> Option<Duration> {
        self.hosts_group.as_ref().map(CpuGroup::usage)
    }

    /// Waits until no client is connected to any host.
    fn all_closed(&self) -> bool {
        self.all().all(|s| s.all_closed(Duration::from_secs(5)))
    }
}

/// A cgroup that accounts the CPU time of every process in it and of every
/// process they start, exactly (daemons and orphans included). cgroup v2 or
/// v1's `cpuacct`; `None` where the bench may not create one (not root, a
/// read-only cgroupfs): its figures are then left out.
struct CpuGroup {
    dir: PathBuf,
    v2: bool,
}

impl CpuGroup {
    fn new(name: &str) -> Option<CpuGroup> {
        let name = format!("{name}-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let dir = if v2 {
            Path::new("/sys/fs/cgroup").join(name)
        } else {
            Path::new("/sys/fs/cgroup/cpuacct").join(name)
        };
        std::fs::create_dir(&dir).ok()?;
        let g = CpuGroup { dir, v2 };
        g.read().map(|_| g)
    }

    fn read(&self) -> Option<Duration> {
        if self.v2 {
            let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
            let usec = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))?
                .trim()
                .parse()
                .ok()?;
            Some(Duration::from_micros(usec))
        } else {
            let ns = std::fs::read_to_string(self.dir.join("cpuacct.usage")).ok()?;
            Some(Duration::from_nanos(ns.trim().parse().ok()?))
        }
    }

    fn usage(&self) -> Duration {
        self.read().unwrap_or_default()
    }

    /// Moves process `pid` (and what it starts from now on) into the group.
    fn add(&self, pid: u32) -> bool {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).is_ok()
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // A cgroup is removed once empty: hand what is left to the root.
        let root = self.dir.parent().unwrap().join("cgroup.procs");
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(&root, pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

enum Kind {
    Railway { project: String, service: String },
    Ssh { host: usize, path: PathBuf },
    Keychain { service: String, keychain: PathBuf },
    Local { path: PathBuf },
}

struct Target {
    name: String,
    kind: Kind,
    /// Indices of the secrets it holds.
    keys: Vec<usize>,
}

/// The user every SSH target logs in as: a deploy user whose login shell
/// is `/bin/sh`, as on a VPS. (root's shell here is bash, which sources
/// ~/.bashrc for every command sshd runs; this machine's runs `pyenv init`,
/// ~0.1 s a command: measuring root would measure that.)
const SSH_USER: &str = "ss-bench";

fn ssh_fields(s: &Sshd) -> String {
    format!(
        "host: {SSH_USER}@127.0.0.1, port: {}, identity_file: {}, known_hosts_file: {}, connect_timeout: 5s",
        s.port,
        s.client_key.display(),
        s.known_hosts.display()
    )
}

/// Whether the pair (secret `i`, target `t`) is seeded with an old value
/// (splitmix64 of the pair, one in DRIFT_EVERY).
fn drifts(i: usize, t: usize) -> bool {
    let mut z = ((i as u64) << 20 | t as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % DRIFT_EVERY as u64 == 0
}

fn value_of(i: usize, generation: u32) -> String {
    format!("value-{generation}-{i:06}-{}", "s".repeat(24))
}

fn key_of(i: usize) -> String {
    format!("SECRET_{i:06}")
}

/// One scenario on disk and on the servers.
struct Scenario<'w> {
    world: &'w World,
    dir: tempfile::TempDir,
    server: RailwayServer,
    identity: PathBuf,
    manifest: PathBuf,
    targets: Vec<Target>,
    parallelism: Option<String>,
    /// With `--ssh-persist`: the kept masters (ended when dropped).
    kept: Option<KeptMasters>,
}

/// What one run of the binary cost.
#[derive(Debug, Default, Clone)]
struct Cost {
    wall: Duration,
    http: usize,
    http_project: usize,
    http_reads: usize,
    http_writes: usize,
    ssh_connections: usize,
    remote_commands: usize,
    peak_rss_kib: u64,
    /// User + system CPU time of the run and the processes it waited for.
    cpu: Duration,
    /// CPU time the SSH hosts spent serving the run (sshd, the remote
    /// shells, the stand-in `security`); `None` without a cgroup.
    hosts_cpu: Option<Duration>,
}

impl<'w> Scenario<'w> {
    fn build(world: &'w World, secrets: usize, shape: Shape, latency: Duration) -> Scenario<'w> {
        assert!(shape.hosts <= world.hosts.len());
        let dir = tempfile::Builder::new()
            .prefix("ss-bench")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let server = RailwayServer::start();
        server.add_account_token(TOKEN);

        let mut targets = Vec::new();
        for p in 0..shape.projects {
            let project = format!("p-bench-{p}");
            server.add_project(&project, &format!("bench {p}"));
            server.add_environment(&project, ENV_ID, "production");
            for s in 0..shape.services {
                server.add_service(&project, &format!("svc-{p}-{s}"), &format!("svc-{s}"));
                targets.push(Target {
                    name: format!("rw-{p}-{s}"),
                    kind: Kind::Railway {
                        project: project.clone(),
                        service: format!("svc-{p}-{s}"),
                    },
                    keys: vec![],
                });
            }
        }
        for h in 0..shape.hosts {
            std::fs::create_dir_all(d.join(format!("host-{h}"))).unwrap();
            for f in 0..shape.files {
                targets.push(Target {
                    name: format!("ssh-{h}-{f}"),
                    kind: Kind::Ssh {
                        host: h,
                        path: d.join(format!("host-{h}/app-{f}.env")),
                    },
                    keys: vec![],
                });
            }
        }
        let keychain = d.join("mac/login.keychain-db");
        for k in 0..shape.keychains {
            targets.push(Target {
                name: format!("mac-{k}"),
                kind: Kind::Keychain {
                    service: format!("bench-app-{k}"),
                    keychain: keychain.clone(),
                },
                keys: vec![],
            });
        }
        for l in 0..shape.locals {
            targets.push(Target {
                name: format!("local-{l}"),
                kind: Kind::Local {
                    path: d.join(format!("local-{l}.env")),
                },
                keys: vec![],
            });
        }

        assert_eq!(targets.len(), shape.total());

        // The spread: two services of one project, one env file, and the
        // first few secrets on the keychain targets.
        let rail = shape.projects * shape.services;
        let files = shape.hosts * shape.files + shape.locals;
        let first_file = rail;
        let first_keychain = rail + shape.hosts * shape.files;
        let first_local = first_keychain + shape.keychains;
        for i in 0..secrets {
            if rail > 0 {
                let p = i % shape.projects;
                let s1 = (i / shape.projects) % shape.services;
                targets[p * shape.services + s1].keys.push(i);
                if shape.services > 1 {
                    let s2 = (s1 + 1) % shape.services;
                    targets[p * shape.services + s2].keys.push(i);
                }
            }
            if files > 0 {
                let f = i % files;
                let t = if f < shape.hosts * shape.files {
                    first_file + f
                } else {
                    first_local + f - shape.hosts * shape.files
                };
                targets[t].keys.push(i);
            }
            if i < shape.keychains * KEYCHAIN_ITEMS {
                targets[first_keychain + i / KEYCHAIN_ITEMS].keys.push(i);
            }
        }

        // The manifest, encrypted as a user would have it.
        let id = age::x25519::Identity::generate();
        let identity = d.join("id.txt");
        use secrecy::ExposeSecret;
        std::fs::write(&identity, id.to_string().expose_secret()).unwrap();
        std::fs::set_permissions(
            &identity,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let recipient = crypto::Recipient::X25519(id.to_public());
        let mut yaml = format!("version: 1\nrecipients:\n  - {recipient}\ntargets:\n");
        for t in &targets {
            let fields = match &t.kind {
                Kind::Railway { project, service } => {
                    let name = service.rsplit('-').next().unwrap();
                    format!("type: railway, project: {project}, environment: production, service: svc-{name}")
                }
                Kind::Ssh { host, path } => format!(
                    "type: ssh_env, {}, path: {}",
                    ssh_fields(&world.hosts[*host]),
                    path.display()
                ),
                Kind::Keychain { service, keychain } => format!(
                    "type: keychain, {}, service: {service}, keychain: {}",
                    ssh_fields(&world.mac),
                    keychain.display(),
                ),
                Kind::Local { path } => format!("type: env_file, path: {}", path.display()),
            };
            let _ = writeln!(yaml, "  {}: {{ {fields} }}", t.name);
        }
        let mut on: Vec<Vec<&str>> = vec![vec![]; secrets];
        for t in &targets {
            for &i in &t.keys {
                on[i].push(&t.name);
            }
        }
        yaml.push_str("secrets:\n");
        for (i, names) in on.iter().enumerate() {
            let ct = crypto::encrypt(std::slice::from_ref(&recipient), value_of(i, 1).as_bytes())
                .unwrap();
            let _ = write!(
                yaml,
                "  {}:\n    targets: [{}]\n    encrypted: |\n",
                key_of(i),
                names.join(", ")
            );
            for l in ct.lines() {
                let _ = writeln!(yaml, "      {l}");
            }
        }
        let manifest = d.join("secrets.yaml");
        std::fs::write(&manifest, yaml).unwrap();

        let sc = Scenario {
            world,
            dir,
            server,
            identity,
            manifest,
            targets,
            parallelism: None,
            kept: None,
        };
        sc.seed();
        sc.server.set_latency(latency);
        sc
    }

    /// Puts the targets in their starting state: in sync but for one pair
    /// in DRIFT_EVERY, picked by a hash of (secret, target) so that drift is
    /// spread over all. Again after an apply, to drift them once more.
    fn seed(&self) {
        let (server, targets, d) = (&self.server, &self.targets, self.dir.path());
        let mut keychain_lines = String::new();
        for (n, t) in targets.iter().enumerate() {
            let seeded = |i: usize| value_of(i, u32::from(!drifts(i, n)));
            match &t.kind {
                Kind::Railway { project, service } => {
                    for &i in &t.keys {
                        server.set_var(project, ENV_ID, Some(service), &key_of(i), &seeded(i));
                    }
                }
                Kind::Ssh { path, .. } | Kind::Local { path } => {
                    let text: String = t
                        .keys
                        .iter()
                        .map(|&i| format!("{}=\"{}\"\n", key_of(i), seeded(i)))
                        .collect();
                    std::fs::write(path, text).unwrap();
                }
                Kind::Keychain { service, keychain } => {
                    for &i in &t.keys {
                        let _ = writeln!(
                            keychain_lines,
                            "add-generic-password -U -a \"{}\" -s \"{service}\" -w \"{}\" \"{}\"",
                            key_of(i),
                            seeded(i),
                            keychain.display()
                        );
                    }
                }
            }
        }
        if let Some(keychain) = self.keychain() {
            std::fs::create_dir_all(keychain.parent().unwrap()).unwrap();
            let kc = keychain.to_str().unwrap();
            if !keychain.exists() {
                security(
                    &self.world.standin,
                    &["create-keychain", "-p", "bench", kc],
                    b"",
                );
            }
            security(&self.world.standin, &["-i"], keychain_lines.as_bytes());
        }
        // The SSH user owns what its hosts hold (files, keychains).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let owned = Command::new("chown")
            .arg("-R")
            .arg(format!("{SSH_USER}:"))
            .arg(d)
            .status()
            .unwrap();
        assert!(owned.success(), "chown the scenario to {SSH_USER}");
    }

    /// The keychain file of the scenario's keychain targets, if any.
    fn keychain(&self) -> Option<PathBuf> {
        self.targets.iter().find_map(|t| match &t.kind {
            Kind::Keychain { keychain, .. } => Some(keychain.clone()),
            _ => None,
        })
    }

    /// From now on runs keep their SSH masters for the next (`--ssh-persist
    /// 60s`, sockets in a private runtime folder of the scenario's).
    fn keep_connections(&mut self) {
        self.kept = Some(KeptMasters::new());
    }

    /// Ends the kept masters and goes back to runs that close their
    /// connections.
    fn end_connections(&mut self) {
        drop(self.kept.take());
        assert!(self.world.all_closed(), "the kept masters ended");
    }

    fn pairs(&self) -> usize {
        self.targets.iter().map(|t| t.keys.len()).sum()
    }

    /// Runs the real binary under the measuring wrapper.
    fn run(&self, args: &[&str]) -> Cost {
        self.server.clear_requests();
        let (conns, cmds) = self.world.ssh_counters();
        let hosts_cpu = self.world.hosts_cpu();
        let client_cpu = self.world.client_group.as_ref().map(CpuGroup::usage);
        let out_file = self.dir.path().join("measure.out");
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        if let Some(g) = &self.world.client_group {
            cmd.env(CGROUP_ENV, g.dir.join("cgroup.procs"));
        }
        cmd.env(MEASURE_ENV, &out_file)
            .arg(env!("CARGO_BIN_EXE_secretsync"))
            .args(args)
            .arg("-f")
            .arg(&self.manifest)
            .arg("--identity")
            .arg(&self.identity)
            .arg("-q");
        if let Some(p) = &self.parallelism {
            cmd.arg("--parallelism").arg(p);
        }
        match &self.kept {
            Some(kept) => {
                cmd.envs(kept.env("60s"));
            }
            None => {
                cmd.env_remove("SECRETSYNC_SSH_PERSIST");
            }
        }
        cmd.current_dir(self.dir.path())
            .env("SECRETSYNC_RAILWAY_ENDPOINT", self.server.url())
            .env("SECRETSYNC_SECURITY", &self.world.standin)
            .env("RAILWAY_API_TOKEN", TOKEN)
            .env_remove("RAILWAY_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = cmd.output().unwrap();
        let figures = std::fs::read_to_string(&out_file).unwrap();
        let f: Vec<i64> = figures
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let code = f[2];
        assert!(
            code == 0 || code == 2,
            "secretsync {args:?} failed ({code}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reqs = self.server.requests();
        let (conns2, cmds2) = self.world.ssh_counters();
        if self.kept.is_none() {
            // The hosts' side of a connection ends just after the client's.
            assert!(self.world.all_closed(), "a run left a connection open");
        }
        let hosts_cpu = self
            .world
            .hosts_cpu()
            .zip(hosts_cpu)
            .map(|(after, before)| after.saturating_sub(before));
        let client_cpu = self
            .world
            .client_group
            .as_ref()
            .map(CpuGroup::usage)
            .zip(client_cpu)
            .map(|(after, before)| after.saturating_sub(before));
        Cost {
            wall: Duration::from_nanos(f[0] as u64),
            peak_rss_kib: f[1] as u64,
            // The cgroup also counts the SSH masters, which daemonise.
            cpu: client_cpu.unwrap_or(Duration::from_micros(f[3] as u64)),
            http: reqs.len(),
            http_project: reqs.iter().filter(|r| r.fields == ["project"]).count(),
            http_reads: reqs
                .iter()
                .filter(|r| r.query.trim_start().starts_with("query variables"))
                .count(),
            http_writes: reqs
                .iter()
                .filter(|r| r.query.trim_start().starts_with("mutation"))
                .count(),
            ssh_connections: conns2 - conns,
            remote_commands: cmds2 - cmds,
            hosts_cpu,
        }
    }

    /// `plan` `runs` times: the run of median wall time, with the largest
    /// peak RSS.
    fn plan(&self, runs: usize) -> Cost {
        self.plan_args(&["plan"], runs)
    }

    fn plan_args(&self, args: &[&str], runs: usize) -> Cost {
        let mut costs: Vec<Cost> = (0..runs).map(|_| self.run(args)).collect();
        let rss = costs.iter().map(|c| c.peak_rss_kib).max().unwrap();
        costs.sort_by_key(|c| c.wall);
        let mut c = costs.swap_remove(costs.len() / 2);
        c.peak_rss_kib = rss;
        c
    }

    /// The shell loop: every key of every target, one request or command at
    /// a time, up to `sample` keys per target measured, the rest
    /// extrapolated per target. Reads after `apply`: every answer must be the
    /// manifest's value.
    fn baseline(&self, sample: usize) -> Baseline {
        self.server.clear_requests();
        let (conns, _) = self.world.ssh_counters();
        let mut b = Baseline::default();
        for t in &self.targets {
            let n = t.keys.len().min(sample);
            let start = Instant::now();
            for &i in t.keys.iter().take(n) {
                let got = self.naive_read(t, &key_of(i));
                assert!(
                    got.as_deref() == Some(value_of(i, 1).as_str()),
                    "the baseline read {} on {} and did not find the manifest's value",
                    key_of(i),
                    t.name
                );
                if matches!(t.kind, Kind::Ssh { .. } | Kind::Keychain { .. }) {
                    b.commands += 1;
                }
            }
            let took = start.elapsed();
            b.asked += n;
            b.pairs += t.keys.len();
            if n > 0 {
                b.time += took.mul_f64(t.keys.len() as f64 / n as f64);
            }
        }
        b.http = self.server.requests().len();
        b.ssh_connections = self.world.ssh_counters().0 - conns;
        b
    }

    fn naive_read(&self, t: &Target, key: &str) -> Option<String> {
        match &t.kind {
            Kind::Railway { project, service } => {
                let body = serde_json::json!({
                    "query": "query variables($projectId: String!, $e: String!, $s: String) {\n  variables(projectId: $projectId, environmentId: $e, serviceId: $s, unrendered: true)\n}",
                    "variables": {"projectId": project, "e": ENV_ID, "s": service},
                });
                let answer = http_post(&self.server.url(), &body.to_string())?;
                let v: serde_json::Value = serde_json::from_str(&answer).ok()?;
                v["data"]["variables"][key].as_str().map(str::to_string)
            }
            Kind::Ssh { host, path } => {
                let out = ssh(
                    &self.world.hosts[*host],
                    &format!("grep -m1 '^{key}=' {}", path.display()),
                )?;
                env_line_value(&String::from_utf8(out.stdout).ok()?, key)
            }
            Kind::Keychain { service, keychain } => {
                let out = ssh(
                    &self.world.mac,
                    &format!(
                        "{} find-generic-password -a {key} -s {service} -g {}",
                        self.world.standin.display(),
                        keychain.display()
                    ),
                )?;
                let said = String::from_utf8(out.stderr).ok()?;
                let line = said.lines().find(|l| l.starts_with("password: \""))?;
                Some(
                    line.strip_prefix("password: \"")?
                        .strip_suffix('"')?
                        .to_string(),
                )
            }
            Kind::Local { path } => {
                let out = Command::new("grep")
                    .arg("-m1")
                    .arg(format!("^{key}="))
                    .arg(path)
                    .output()
                    .ok()?;
                env_line_value(&String::from_utf8(out.stdout).ok()?, key)
            }
        }
    }
}

/// The value of `KEY=…` as a shell loop's `grep` + `cut` would take it: the
/// bench's values need no quoting, so secretsync writes them bare (the
/// exact-values work of #15 quotes only where a reader needs it); a quoted
/// form is accepted too, so the baseline does not depend on that choice.
fn env_line_value(line: &str, key: &str) -> Option<String> {
    let raw = line.trim_end().strip_prefix(key)?.strip_prefix('=')?;
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| raw.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(raw);
    Some(unquoted.to_string())
}

#[derive(Debug, Default)]
struct Baseline {
    /// Measured, plus extrapolated where sampled.
    time: Duration,
    pairs: usize,
    asked: usize,
    http: usize,
    ssh_connections: usize,
    commands: usize,
}

/// `ssh host script` over a connection of its own, as a loop would.
fn ssh(s: &Sshd, script: &str) -> Option<std::process::Output> {
    // ssh options are taken in order: a later `-o` never overrides, so the
    // no-multiplexing options go before the host the command builder adds.
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-o",
        "LogLevel=ERROR",
    ]);
    let base = s.ssh_command(SSH_USER);
    cmd.args(base.get_args()).arg(script).stdin(Stdio::null());
    cmd.output().ok()
}

/// One POST on a connection of its own (a CLI process per request).
fn http_post(url: &str, body: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/')?);
    let mut s = std::net::TcpStream::connect(authority).ok()?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))?
                .trim()
                .parse()
                .ok()?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return String::from_utf8(buf[end + 4..end + 4 + len].to_vec()).ok();
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Runs the stand-in `security` on this machine (seeding).
fn security(standin: &Path, args: &[&str], stdin: &[u8]) {
    let mut child = Command::new(standin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the stand-in security");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("returned"),
        "seeding the keychain failed"
    );
}

/// The wrapper mode: runs argv, waits, writes `wall_ns max_rss_kib code`.
fn measure_child(out: &str) -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(procs) = std::env::var_os(CGROUP_ENV) {
        std::fs::write(procs, std::process::id().to_string()).expect("join the client cgroup");
    }
    let start = Instant::now();
    let status = Command::new(&args[0])
        .args(&args[1..])
        .env_remove(MEASURE_ENV)
        .status()
        .expect("run the measured command");
    let wall = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let cpu = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
    std::fs::write(
        out,
        format!(
            "{} {} {} {}\n",
            wall.as_nanos(),
            usage.max_rss(),
            status.code().unwrap_or(-1),
            cpu(usage.user_time()) + cpu(usage.system_time())
        ),
    )
    .unwrap();
    std::process::exit(0)
}

/// CPU time (user + system) of this process so far.
fn self_cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(us(u.user_time()) + us(u.system_time()))
}

/// Wall and CPU time `decrypt_all` (what plan and apply call) takes for `n`
/// values: the median of three runs.
fn decrypt_time(n: usize) -> (Duration, Duration) {
    let id = age::x25519::Identity::generate();
    let recipient = crypto::Recipient::X25519(id.to_public());
    let cts: Vec<(String, String)> = (0..n)
        .map(|i| {
            let ct = crypto::encrypt(std::slice::from_ref(&recipient), value_of(i, 1).as_bytes())
                .unwrap();
            (key_of(i), ct)
        })
        .collect();
    let items: Vec<(&str, &str)> = cts.iter().map(|(k, c)| (k.as_str(), c.as_str())).collect();
    let ids = crypto::Identities {
        keys: vec![crypto::Identity::X25519(id)],
        origin: "bench".into(),
    };
    let mut times: Vec<(Duration, Duration)> = (0..3)
        .map(|_| {
            let cpu = self_cpu();
            let start = Instant::now();
            let clear = secretsync::engine::decrypt_all(&ids, &items).unwrap();
            let took = start.elapsed();
            assert_eq!(clear.len(), n);
            (took, self_cpu() - cpu)
        })
        .collect();
    times.sort();
    times[1]
}

/// Loading the manifest, decrypting and building the targets, in-process.
fn open_time(sc: &Scenario) -> Duration {
    let opts = secretsync::engine::Options {
        manifest: sc.manifest.clone(),
        identity: Some(sc.identity.clone()),
        targets: vec![],
        envs: vec![],
        parallelism: 16,
        ssh_persist: None,
        list_unmanaged: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let engine = secretsync::engine::Engine::open(&opts).unwrap();
    // Decryption runs on its own thread from `open`: wait for it.
    runtime.block_on(engine.ready()).unwrap();
    let took = start.elapsed();
    assert_eq!(engine.slots.len(), sc.targets.len());
    took
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({}), {} GiB RAM, Linux {}, {}; load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        model,
        mem_kib / 1024 / 1024,
        kernel.trim(),
        std::env::consts::ARCH,
        load()
    )
}

/// The 1, 5 and 15-minute load averages (other work on the machine skews
/// wall times: the report gives them at the start and the end).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn arg_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn list(s: &str) -> Vec<usize> {
    s.split(',').map(|x| x.trim().parse().unwrap()).collect()
}

fn cost_row(n: usize, sc: &Scenario, what: &str, c: &Cost) -> String {
    format!(
        "| {n} | {} | {} | {what} | {} | {} | {} | {} ({} project, {} read, {} write) | {} | {} | {:.1} MiB |",
        sc.targets.len(),
        sc.pairs(),
        ms(c.wall),
        ms(c.cpu),
        c.hosts_cpu.map_or("n/a".into(), ms),
        c.http,
        c.http_project,
        c.http_reads,
        c.http_writes,
        c.ssh_connections,
        c.remote_commands,
        c.peak_rss_kib as f64 / 1024.0
    )
}

/// `--hold`: builds one scenario, prints how to run the binary against it,
/// and keeps the servers up until stdin ends (for profiling by hand).
fn hold(world: &World, n: usize, m: usize, latency: Duration) {
    let sc = Scenario::build(world, n, Shape::for_targets(m), latency);
    println!(
        "cd {} && SECRETSYNC_RAILWAY_ENDPOINT={} SECRETSYNC_SECURITY={} RAILWAY_API_TOKEN={TOKEN} {} plan -f {} --identity {} -q",
        sc.dir.path().display(),
        sc.server.url(),
        world.standin.display(),
        env!("CARGO_BIN_EXE_secretsync"),
        sc.manifest.display(),
        sc.identity.display()
    );
    println!("(servers up until stdin ends)");
    let _ = std::io::stdout().flush();
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

fn main() {
    if let Ok(out) = std::env::var(MEASURE_ENV) {
        measure_child(&out);
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // CI's run: every kind of target once, a few seconds, so that the bench
    // cannot rot unnoticed (issue #26). Its figures are not the docs'.
    let smoke = args.iter().any(|a| a == "--smoke");
    let latency =
        Duration::from_millis(arg_value(&args, "--latency-ms").map_or(50, |v| v.parse().unwrap()));
    let sample: usize =
        arg_value(&args, "--sample").map_or(if smoke { 2 } else { 10 }, |v| v.parse().unwrap());
    let sizes = arg_value(&args, "--sizes").map_or_else(
        || {
            if smoke {
                vec![10]
            } else if quick {
                vec![10, 100]
            } else {
                vec![10, 100, 1000, 10_000]
            }
        },
        list,
    );
    let target_counts = arg_value(&args, "--targets").map_or_else(
        || {
            if smoke {
                vec![6]
            } else if quick {
                vec![10, 50]
            } else {
                vec![5, 10, 25, 50]
            }
        },
        list,
    );
    let parallelism = arg_value(&args, "--parallelism").map(str::to_string);
    let headline_n = if sizes.contains(&1000) {
        1000
    } else {
        sizes[sizes.len() - 1]
    };
    let max_m = *target_counts.iter().max().unwrap();

    let started = Instant::now();
    let world = World::start(3);
    let mut report = String::new();
    let _ = writeln!(report, "machine: {}", machine());
    let _ = writeln!(
        report,
        "latency per Railway request: {} ms; baseline: up to {sample} keys measured per target; parallelism: {}",
        latency.as_millis(),
        parallelism.as_deref().unwrap_or("default")
    );

    let head = "| secrets | targets | key x target pairs | command | wall | CPU here | CPU on the hosts | HTTP requests | SSH connections | remote commands | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|";
    let mut by_n = String::new();
    let mut by_m = String::new();
    let mut baselines = String::new();
    let mut profile = String::new();
    let mut decrypts = String::new();
    let mut runs: Vec<(usize, usize)> = sizes.iter().map(|&n| (n, max_m)).collect();
    for &m in &target_counts {
        if m != max_m {
            runs.push((headline_n, m));
        }
    }
    if args.iter().any(|a| a == "--hold") {
        hold(&world, headline_n, max_m, latency);
        return;
    }
    for (n, m) in runs {
        let shape = Shape::for_targets(m);
        eprintln!(
            "[{:>4}s] {n} secrets x {m} targets: building",
            started.elapsed().as_secs()
        );
        let mut sc = Scenario::build(&world, n, shape, latency);
        sc.parallelism = parallelism.clone();
        eprintln!("[{:>4}s] plan", started.elapsed().as_secs());
        let plan = sc.plan(if n == headline_n && m == max_m { 5 } else { 3 });
        if n == headline_n && m == max_m {
            // Where the time goes: the same plan without latency, an older
            // parallelism, and the manifest work in-process.
            sc.server.set_latency(Duration::ZERO);
            let floor = sc.plan(5);
            sc.server.set_latency(latency);
            let _ = writeln!(
                profile,
                "| plan, latency {} ms | {} |",
                latency.as_millis(),
                ms(plan.wall)
            );
            let _ = writeln!(profile, "| plan, latency 0 ms | {} |", ms(floor.wall));
            if parallelism.is_none() {
                sc.parallelism = Some("16".into());
                let p16 = sc.plan(5);
                sc.parallelism = None;
                let _ = writeln!(
                    profile,
                    "| plan, latency {} ms, `--parallelism 16` (the default before #8) | {} |",
                    latency.as_millis(),
                    ms(p16.wall)
                );
            }
            let mut only: Vec<&str> = vec!["plan"];
            for t in &sc.targets {
                if matches!(t.kind, Kind::Railway { .. }) {
                    only.extend(["--target", t.name.as_str()]);
                }
            }
            let rail = sc.plan_args(&only, 5);
            let _ = writeln!(
                profile,
                "| plan of the {} Railway targets only (`--target` each), latency {} ms | {} |",
                (only.len() - 1) / 2,
                latency.as_millis(),
                ms(rail.wall)
            );
            let mut one_ssh: Vec<Duration> = (0..5)
                .map(|_| {
                    let start = Instant::now();
                    assert!(ssh(&world.mac, "true").unwrap().status.success());
                    start.elapsed()
                })
                .collect();
            one_ssh.sort();
            let _ = writeln!(
                profile,
                "| one new SSH connection running `true` (`ssh host true`, median of 5) | {} |",
                ms(one_ssh[2])
            );
            let mut one_sec: Vec<Duration> = (0..5)
                .map(|_| {
                    let start = Instant::now();
                    let st = Command::new(&world.standin)
                        .arg("help")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .unwrap();
                    let _ = st;
                    start.elapsed()
                })
                .collect();
            one_sec.sort();
            let _ = writeln!(
                profile,
                "| one run of the stand-in `security` (a Python process; median of 5) | {} |",
                ms(one_sec[2])
            );
            let _ = writeln!(
                profile,
                "| in-process: load the manifest, decrypt {n} values, build {m} targets | {} |",
                ms(open_time(&sc))
            );
        }
        eprintln!("[{:>4}s] apply", started.elapsed().as_secs());
        let apply = sc.run(&["apply", "--auto-approve"]);
        let after = sc.run(&["plan", "--detailed-exitcode"]);
        assert_eq!(after.http_writes, 0);
        let mut warm_rows = String::new();
        if n == headline_n && m == max_m {
            // The same drift again, now with masters kept between runs: a
            // first plan opens them, the next plans and the apply reuse them.
            eprintln!("[{:>4}s] kept connections", started.elapsed().as_secs());
            sc.seed();
            sc.keep_connections();
            let opening = sc.run(&["plan"]);
            let warm = sc.plan(5);
            let warm_apply = sc.run(&["apply", "--auto-approve"]);
            sc.end_connections();
            assert_eq!(warm.ssh_connections, 0);
            assert_eq!(warm_apply.ssh_connections, 0);
            for (what, c) in [
                ("plan, opening kept connections", &opening),
                ("plan, connections kept by the previous run", &warm),
                ("apply, connections kept by the previous run", &warm_apply),
            ] {
                warm_rows.push_str(&cost_row(n, &sc, what, c));
                warm_rows.push('\n');
            }
            let _ = writeln!(
                profile,
                "| plan, SSH connections kept by the previous run (`--ssh-persist 60s`) | {} |",
                ms(warm.wall)
            );
        }
        eprintln!("[{:>4}s] baseline", started.elapsed().as_secs());
        let base = sc.baseline(sample);
        let rows = if m == max_m { &mut by_n } else { &mut by_m };
        rows.push_str(&cost_row(n, &sc, "plan", &plan));
        rows.push('\n');
        rows.push_str(&cost_row(n, &sc, "apply", &apply));
        rows.push('\n');
        rows.push_str(&warm_rows);
        let _ = writeln!(
            baselines,
            "| {n} | {m} | {} | {}{} | {} HTTP, {} SSH connections, {} remote commands{} | {} | {:.0}x |",
            sc.pairs(),
            ms(base.time),
            if base.asked < base.pairs {
                format!(" (extrapolated from {} of {} reads)", base.asked, base.pairs)
            } else {
                " (measured in full)".into()
            },
            base.http,
            base.ssh_connections,
            base.commands,
            if base.asked < base.pairs { " measured" } else { "" },
            ms(plan.wall),
            base.time.as_secs_f64() / plan.wall.as_secs_f64()
        );
        if m == max_m {
            let (wall, cpu) = decrypt_time(n);
            let _ = writeln!(decrypts, "| {n} | {} | {} |", ms(wall), ms(cpu));
        }
        eprintln!(
            "[{:>4}s] done: {}",
            started.elapsed().as_secs(),
            shape.describe()
        );
    }
    let _ = writeln!(report, "\nShapes:");
    for &m in &target_counts {
        let _ = writeln!(
            report,
            "- {m} targets: {}",
            Shape::for_targets(m).describe()
        );
    }
    let _ = writeln!(
        report,
        "\n### Plan and apply, by secrets ({max_m} targets)\n\n{head}\n{by_n}"
    );
    if !by_m.is_empty() {
        let _ = writeln!(
            report,
            "### By targets ({headline_n} secrets)\n\n{head}\n{by_m}"
        );
    }
    let _ = writeln!(report, "### Naive baseline (one read per key per target, in turn) vs plan\n\n| secrets | targets | pairs | baseline | baseline requests | plan | ratio |\n|---|---|---|---|---|---|---|\n{baselines}");
    if !profile.is_empty() {
        let _ = writeln!(report, "### Where the time goes ({headline_n} x {max_m})\n\n| run | wall |\n|---|---|\n{profile}");
    }
    let _ = writeln!(
        report,
        "### decrypt_all (median of 3)\n\n| values | wall | CPU (all threads) |\n|---|---|---|\n{decrypts}"
    );
    let _ = writeln!(
        report,
        "(bench ran {} s; load average at the end {})",
        started.elapsed().as_secs(),
        load()
    );
    println!("{report}");
}
