//! The child-process mode: the `kafka-broker` binary, found or built once
//! per test process, started with `--listen 127.0.0.1:0`, read for its one
//! bootstrap line.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Environment variable naming the `kafka-broker` binary to run, for
/// machines where it is not next to the test executable and cargo is not
/// at hand.
pub const BROKER_BIN_ENV: &str = "KAFKA_BROKER_BIN";

/// How many lines of the broker's stderr are kept for error messages.
const STDERR_LINES: usize = 40;

/// Where the `kafka-broker` binary is, building it first when running
/// under cargo: `$KAFKA_BROKER_BIN`; else `cargo build -p kafka-broker
/// --bin kafka-broker` into the target dir of the current executable (once
/// per process, so the binary is never stale); else the binary next to it.
///
/// ```no_run
/// let binary = kafka_testcontainers::broker_binary()?;
/// assert!(binary.ends_with("kafka-broker"));
/// # Ok::<(), kafka_testcontainers::Error>(())
/// ```
pub fn broker_binary() -> Result<PathBuf> {
    static LOCATED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    LOCATED.get_or_init(locate).clone().map_err(Error::Binary)
}

fn binary_name() -> String {
    format!("kafka-broker{}", std::env::consts::EXE_SUFFIX)
}

fn locate() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BROKER_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BROKER_BIN_ENV}={} is not a file", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    // target/<profile>/deps/<test>-<hash> for tests and benches,
    // target/<profile>/examples/<name> for examples, target/<profile>/<bin>.
    let profile_dir = exe
        .ancestors()
        .skip(1)
        .find(|dir| {
            !matches!(
                dir.file_name().and_then(|n| n.to_str()),
                Some("deps" | "examples")
            )
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no directory above {}", exe.display()))?;
    let candidate = profile_dir.join(binary_name());
    if let Some(cargo) = std::env::var_os("CARGO") {
        build(&cargo, &profile_dir)?;
        if candidate.is_file() {
            return Ok(candidate);
        }
        return Err(format!(
            "cargo built kafka-broker but {} does not exist (set {BROKER_BIN_ENV})",
            candidate.display()
        ));
    }
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(format!(
        "{} not found and not running under cargo: run `cargo build -p kafka-broker --bin kafka-broker` or set {BROKER_BIN_ENV}",
        candidate.display()
    ))
}

/// `cargo build -p kafka-broker --bin kafka-broker` into `profile_dir`'s
/// target dir, in the profile the tests were built with.
fn build(cargo: &std::ffi::OsStr, profile_dir: &Path) -> std::result::Result<(), String> {
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("no target dir above {}", profile_dir.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "kafka-broker",
            "--bin",
            "kafka-broker",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    // Cargo sets the manifest dir of the package under test; the workspace
    // (or the user's project, where kafka-broker is a dependency) is found
    // from there.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        command.current_dir(dir);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo to build kafka-broker: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo build -p kafka-broker --bin kafka-broker` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A running `kafka-broker` process.
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    child: Child,
    /// Kept open: the broker's stdout is a pipe, and a closed pipe would
    /// turn a later write into SIGPIPE.
    _stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_task: JoinHandle<()>,
    pub(crate) bootstrap: String,
}

impl BrokerProcess {
    /// Starts `binary` with `args` after `--listen 127.0.0.1:<port>`, and
    /// waits up to `timeout` for its bootstrap line.
    pub(crate) async fn start(
        binary: &Path,
        port: u16,
        args: &[String],
        timeout: Duration,
    ) -> Result<Self> {
        let mut child = Command::new(binary)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Process(format!("cannot start {}: {e}", binary.display())))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = match child.stderr.take() {
            Some(pipe) => tokio::spawn(keep_tail(pipe, stderr.clone())),
            None => tokio::spawn(async {}),
        };
        let mut stdout = match child.stdout.take() {
            Some(pipe) => BufReader::new(pipe),
            None => return Err(Error::Process("no stdout pipe".into())),
        };
        let mut line = String::new();
        let read = tokio::time::timeout(timeout, stdout.read_line(&mut line)).await;
        let mut process = Self {
            child,
            _stdout: stdout,
            stderr,
            stderr_task,
            bootstrap: String::new(),
        };
        match read {
            Ok(Ok(n)) if n > 0 && !line.trim().is_empty() => {
                process.bootstrap = line.trim().to_owned();
                Ok(process)
            }
            Ok(Ok(_)) => Err(process
                .died("exited before printing its bootstrap servers")
                .await),
            Ok(Err(e)) => Err(process.died(&format!("reading its stdout: {e}")).await),
            Err(_) => Err(process
                .died(&format!("printed no bootstrap servers within {timeout:?}"))
                .await),
        }
    }

    /// The OS process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// An error with the exit status and the tail of stderr; the process
    /// is killed if it still runs.
    async fn died(&mut self, what: &str) -> Error {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .ok()
            .and_then(|s| s.ok())
            .map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
        // The stderr reader ends once the pipe closes with the process.
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr_task).await;
        let tail = self.stderr_tail();
        Error::Process(format!("kafka-broker {what} ({status}){tail}"))
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() {
            String::new()
        } else {
            let joined: Vec<&str> = lines.iter().map(String::as_str).collect();
            format!("; stderr:\n{}", joined.join("\n"))
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub(crate) async fn kill(&mut self) -> Result<()> {
        self.child
            .kill()
            .await
            .map_err(|e| Error::Process(format!("kill: {e}")))
    }

    /// SIGTERM (through `kill`, so no libc binding is needed), then waits up
    /// to `limit` for a clean exit; SIGKILL after that.
    pub(crate) async fn terminate(&mut self, limit: Duration) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            if sent.is_ok_and(|s| s.success())
                && let Ok(waited) = tokio::time::timeout(limit, self.child.wait()).await
            {
                return waited
                    .map(|_| ())
                    .map_err(|e| Error::Process(format!("wait: {e}")));
            }
        }
        self.kill().await
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // kill_on_drop sends SIGKILL too; here it is also reaped when it is
        // already gone, so no zombie outlives the handle.
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
        self.stderr_task.abort();
    }
}

async fn keep_tail(pipe: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}
