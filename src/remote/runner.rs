//! Where scripts run (this machine or one SSH host) and what they print;
//! running one here.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::{Host, RemoteError};

/// What a script printed and how it ended. Both streams may hold values (a
/// read prints the file): they are zeroed when dropped.
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: Zeroizing<Vec<u8>>,
    pub stderr: Zeroizing<Vec<u8>>,
}

impl Output {
    /// The last non-empty line of stderr, for error messages. Scripts print
    /// only their own diagnostics there, never a value.
    pub fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("code", &self.code)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr", &format_args!("<{} bytes>", self.stderr.len()))
            .finish()
    }
}

/// Where scripts run: this machine or one SSH host.
#[derive(Clone)]
pub enum Runner {
    Local,
    Ssh(Arc<Host>),
}

impl Runner {
    /// Runs `sh -c script sh args…` (through `sudo -n` when `sudo`), writes
    /// `stdin` to it and collects its output. `Err` only when the script could
    /// not be run at all (connection lost, no `sh`); a script that fails is an
    /// `Ok` with its exit code.
    pub async fn sh(
        &self,
        script: &str,
        args: &[&str],
        stdin: &[u8],
        sudo: bool,
    ) -> Result<Output, RemoteError> {
        match self {
            Runner::Local => run_local(script, args, stdin, sudo).await,
            Runner::Ssh(host) => host.sh(script, args, stdin, sudo).await,
        }
    }

    /// "this machine" or "host deploy@vps", for messages.
    pub fn place(&self) -> String {
        match self {
            Runner::Local => "this machine".into(),
            Runner::Ssh(h) => format!("host {}", h.label),
        }
    }
}

/// Writes `bytes` to a child's stdin and closes it (EOF), while the caller
/// collects the output. A script that exits without reading all of its
/// input closes the pipe: that is its business, told by its exit code.
pub(super) async fn feed<W: tokio::io::AsyncWrite + Unpin>(input: Option<W>, bytes: &[u8]) {
    if let Some(mut w) = input {
        let _ = w.write_all(bytes).await;
        let _ = w.shutdown().await;
    }
}

async fn run_local(
    script: &str,
    args: &[&str],
    stdin: &[u8],
    sudo: bool,
) -> Result<Output, RemoteError> {
    let mut cmd = if sudo {
        let mut c = tokio::process::Command::new("sudo");
        c.arg("-n").arg("sh");
        c
    } else {
        tokio::process::Command::new("sh")
    };
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        RemoteError::failed(format!(
            "cannot run {} on this machine: {e}",
            if sudo { "sudo" } else { "sh" }
        ))
    })?;
    let input = child.stdin.take();
    let (_, out) = tokio::join!(feed(input, stdin), child.wait_with_output());
    let out = out.map_err(|e| RemoteError::failed(format!("running sh on this machine: {e}")))?;
    Ok(Output {
        code: out.status.code(),
        stdout: Zeroizing::new(out.stdout),
        stderr: Zeroizing::new(out.stderr),
    })
}

/// Quotes `s` for a POSIX shell (for paths placed in scripts).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_runner_passes_args_and_stdin() {
        let out = Runner::Local
            .sh(
                r#"printf '%s|' "$1" "$2"; cat"#,
                &["a b", "it's"],
                b"from stdin",
                false,
            )
            .await
            .unwrap();
        assert_eq!(out.code, Some(0));
        assert_eq!(out.stdout.as_slice(), b"a b|it's|from stdin");
    }

    #[tokio::test]
    async fn local_runner_reports_exit_code_and_stderr() {
        let out = Runner::Local
            .sh("echo oops >&2; exit 7", &[], b"", false)
            .await
            .unwrap();
        assert_eq!(out.code, Some(7));
        assert_eq!(out.stderr_line(), "oops");
        assert!(!format!("{out:?}").contains("oops"));
    }

    #[test]
    fn quoting_survives_a_shell() {
        let nasty = "it's a $HOME `x` \"y\"";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(nasty)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }
}
