//! A real OpenSSH server on 127.0.0.1 for the tests, started per test.
//!
//! Debian's `sshd` runs in the foreground (`-D -e`) on a free high port with a
//! config, host key, client key, `authorized_keys` and known_hosts file all
//! generated in a temp folder for this run (`UsePAM no`, `StrictModes no`, no
//! passwords). A `ForceCommand` wrapper appends every command a client asks
//! for to `commands.log` before running it, so tests can search the command
//! lines the host saw for canary values. sshd's own log (`sshd.log`) counts
//! connections ("Accepted publickey").
//!
//! Self-contained, so that a benchmark can include it with
//! `#[path = "../tests/support/sshd.rs"] mod sshd;`.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    /// Keys, config, logs; 0755 so that test users other than root can read
    /// the wrapper and authorized_keys.
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The private key every test user authenticates with.
    pub client_key: PathBuf,
    /// A known_hosts file that holds this server's host key.
    pub known_hosts: PathBuf,
    child: Option<Child>,
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn keygen(path: &Path) {
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "secretsync-test",
                "-f",
            ])
            .arg(path),
    );
}

impl Sshd {
    /// Starts a server; panics with the reason when sshd is not installed
    /// (`.ci/run` installs openssh-server).
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (bash .ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("ss-sshd")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::set_permissions(
            d.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(d.join("commands.log"), "").unwrap();
        std::fs::set_permissions(
            d.join("commands.log"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let wrapper = d.join("wrapper");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 printf '%s\\n' \"$SSH_ORIGINAL_COMMAND\" >> {log}\n\
                 case \"$SSH_ORIGINAL_COMMAND\" in *mktemp*)\n\
                 \x20 if [ -e {d}/hold-writes ]; then : > {d}/write-held; sleep 3; fi;;\n\
                 esac\n\
                 PATH={d}/bin:$PATH; export PATH\n\
                 exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
                log = d.join("commands.log").display(),
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(d.join("bin")).unwrap();
        // sshd as root wants its privilege-separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");

        let mut s = Sshd {
            port: free_port(),
            client_key: d.join("client_key"),
            known_hosts: d.join("known_hosts"),
            dir,
            child: None,
        };
        s.write_known_hosts();
        s.launch();
        s
    }

    fn write_known_hosts(&self) {
        std::fs::write(&self.known_hosts, self.known_hosts_line(self.port)).unwrap();
    }

    /// A known_hosts line for this server's key reached on `port`.
    pub fn known_hosts_line(&self, port: u16) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        format!(
            "[127.0.0.1]:{port} {} {}\n",
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    }

    /// From now on, commands that write (they call mktemp) wait 3 s before
    /// they start, after creating `write-held` in the folder: a test can
    /// cut the connection while a write is under way.
    pub fn hold_writes(&self, on: bool) {
        let flag = self.dir.path().join("hold-writes");
        if on {
            std::fs::write(flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Waits (up to 20 s, else panics) until a held write has started.
    pub fn wait_for_held_write(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.dir.path().join("write-held").exists() {
            assert!(Instant::now() < deadline, "the write never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `SetEnv SHLVL=1`: a login shell that is bash sources `~/.bashrc` for
    /// a command over SSH only at shell level 1; at level 2 the machine's
    /// rc files (root's may run `pyenv init`, dozens of processes) stay out
    /// of every command the tests send.
    fn config(&self) -> PathBuf {
        let d = self.dir.path();
        let cfg = d.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {d}/host_key\n\
                 PidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n\
                 ForceCommand {d}/wrapper\n\
                 SetEnv SHLVL=1\n\
                 MaxStartups 200\n\
                 MaxSessions 20\n\
                 LogLevel INFO\n",
                port = self.port,
                d = d.display()
            ),
        )
        .unwrap();
        cfg
    }

    fn launch(&mut self) {
        let cfg = self.config();
        run_ok(Command::new(SSHD).arg("-t").arg("-f").arg(&cfg));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The per-connection sshd processes outlive the listener: end
            // them too, so clients (and masters of killed runs) see the
            // connection close.
            for pid in children_of(c.id()) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again after [`Sshd::stop`], on the same port and
    /// with the same host key.
    pub fn restart(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }

    /// Restarts on the same port with a new host key: clients holding the
    /// old known_hosts line must refuse it.
    pub fn change_host_key(&mut self) {
        self.stop();
        let d = self.dir.path();
        std::fs::remove_file(d.join("host_key")).unwrap();
        std::fs::remove_file(d.join("host_key.pub")).unwrap();
        keygen(&d.join("host_key"));
        self.launch();
    }

    /// Puts `program` on the PATH of every command the host runs, as `name`
    /// (the host's own `bin`, searched first).
    pub fn install_program(&self, name: &str, program: &Path) {
        let link = self.dir.path().join("bin").join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(program, link).unwrap();
    }

    /// A plain `ssh` to this server as `user`, with its key and known_hosts,
    /// no prompts, no stdin: add the remote command and run it.
    pub fn ssh_command(&self, user: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(&self.client_key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null());
        cmd
    }

    /// sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many SSH connections were authenticated so far.
    pub fn connections(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// The listening sshd's pid (every connection's processes descend from it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether every client connection has ended within `within` (each
    /// connection is a child process of the listening sshd).
    pub fn all_closed(&self, within: Duration) -> bool {
        let Some(c) = &self.child else {
            return true;
        };
        let deadline = Instant::now() + within;
        while !children_of(c.id()).is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Every command line a client ran, one after another.
    pub fn commands(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("commands.log")).unwrap_or_default()
    }

    /// How many commands clients ran.
    pub fn command_count(&self) -> usize {
        // Commands span several lines; each starts with `sh -c` or `sudo`.
        self.commands()
            .lines()
            .filter(|l| l.starts_with("sh -c") || l.starts_with("sudo "))
            .count()
    }

    /// The SSH fields of a target for `user`, as manifest YAML lines indented
    /// by `indent`.
    pub fn yaml(&self, user: &str, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}host: {user}@127.0.0.1\n\
             {pad}port: {port}\n\
             {pad}identity_file: {key}\n\
             {pad}known_hosts_file: {kh}\n\
             {pad}connect_timeout: 5s\n",
            port = self.port,
            key = self.client_key.display(),
            kh = self.known_hosts.display()
        )
    }

    /// The same, as options for building targets directly.
    pub fn options(&self, user: &str) -> secretsync::remote::SshOptions {
        secretsync::remote::SshOptions {
            host: format!("{user}@127.0.0.1"),
            port: Some(self.port),
            identity_file: Some(self.client_key.display().to_string()),
            known_hosts: secretsync::remote::KnownHosts::Strict,
            known_hosts_file: Some(self.known_hosts.display().to_string()),
            connect_timeout: Some(Duration::from_secs(5)),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `--ssh-persist` in a test: a private runtime folder for the masters the
/// runs keep, all ended when dropped.
pub struct KeptMasters {
    runtime: tempfile::TempDir,
}

impl KeptMasters {
    pub fn new() -> KeptMasters {
        let runtime = tempfile::tempdir().unwrap();
        std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        KeptMasters { runtime }
    }

    pub fn env(&self, idle: &'static str) -> Vec<(&'static str, String)> {
        vec![
            ("SECRETSYNC_SSH_PERSIST", idle.to_string()),
            ("XDG_RUNTIME_DIR", self.runtime.path().display().to_string()),
        ]
    }

    pub fn dir(&self) -> PathBuf {
        self.runtime.path().join("secretsync-ssh")
    }

    /// The links to kept masters, by name.
    pub fn links(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return vec![];
        };
        let mut v: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_symlink())
            .collect();
        v.sort();
        v
    }

    /// Asks every kept master to exit, as `ssh -O exit` does.
    pub fn end_all(&self) {
        for link in self.links() {
            let _ = std::process::Command::new("ssh")
                .arg("-S")
                .arg(link.join("master"))
                .args(["-O", "exit", "kept"])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for KeptMasters {
    fn drop(&mut self) {
        self.end_all();
    }
}

/// The processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid …`: comm may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Whether the tests run as root (needed to create test users).
pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file we just created is our effective uid.
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

/// Makes sure a local user `name` exists (root only); with `sudo`, it may run
/// anything through `sudo -n` without a password. Returns its home folder.
pub fn ensure_user(name: &str, sudo: bool) -> PathBuf {
    assert!(is_root(), "creating test users needs root");
    // The suites share one test binary: two tests asking for the same user at
    // once must not see it half made (useradd done, usermod not yet).
    static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = USERS.lock().unwrap_or_else(|e| e.into_inner());
    let exists = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !exists {
        // Another process (the benchmark) may create it at the same moment: tolerate that.
        let _ = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .output();
    }
    // useradd locks the password (`!`), and sshd without PAM then refuses
    // the account even for keys: `*` means "no password" without the lock.
    let _ = Command::new("usermod").args(["-p", "*", name]).output();
    if sudo {
        let line = format!("{name} ALL=(ALL) NOPASSWD: ALL\n");
        let file = format!("/etc/sudoers.d/{name}");
        if std::fs::read_to_string(&file).ok().as_deref() != Some(line.as_str()) {
            std::fs::write(&file, line).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o440)).unwrap();
        }
    }
    PathBuf::from(format!("/home/{name}"))
}

/// Runs `script` on the server as `user` with plain `ssh` (for tampering and
/// checks out of band); returns stdout.
pub fn ssh_run(s: &Sshd, user: &str, script: &str) -> String {
    let out = s.ssh_command(user).arg(script).output().expect("run ssh");
    assert!(
        out.status.success(),
        "ssh {script:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP relay to a port on 127.0.0.1 that can cut every connection it
/// carries, as a network failure would.
pub struct Relay {
    pub port: u16,
    streams: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    pub fn to(upstream: u16) -> Relay {
        use std::net::TcpStream;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let streams: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>> = Default::default();
        let kept = streams.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut k = kept.lock().unwrap();
                    k.push(client.try_clone().unwrap());
                    k.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, streams }
    }

    /// Cuts every connection relayed so far; new ones are still relayed.
    pub fn cut(&self) {
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}
