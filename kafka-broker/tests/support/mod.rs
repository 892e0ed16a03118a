//! Shared by the interop tests: finding peer tools, running them with a
//! time limit, starting a cluster.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The path of `tool` on PATH. Missing on a developer machine, the test is
/// skipped with a note; missing in CI (`CI` set), it fails, because
/// `.ci/run` installs every peer.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is not installed; .ci/run installs it"
        );
        eprintln!("skipped: `{name}` is not installed (bash .ci/run installs it)");
    }
    found
}

/// Whether `python3` can import `module`; same skip/fail rule as [`tool`].
pub fn python_module(module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python module `{module}` is not installed; .ci/run installs it"
        );
        eprintln!("skipped: python module `{module}` is not installed (bash .ci/run installs it)");
    }
    ok
}

/// Runs a command to completion within `limit`, feeding it `stdin`.
/// Panics with the command's stderr if it fails or overruns.
pub async fn run(command: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let description = format!("{command:?}");
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
        });
    }
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{description} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{description}: {e}"));
    assert!(
        output.status.success(),
        "{description} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// An in-process cluster of `brokers` brokers on loopback.
pub async fn cluster(brokers: u32, partitions: i32) -> Cluster {
    let config = BrokerConfig {
        brokers,
        default_partitions: partitions,
        ..BrokerConfig::default()
    };
    Cluster::start(config).await.expect("cluster starts")
}

/// A bare protocol connection for tests that speak to the broker directly.
pub struct RawClient {
    stream: tokio::net::TcpStream,
    input: bytes::BytesMut,
    correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        Self {
            stream,
            input: bytes::BytesMut::new(),
            correlation_id: 0,
        }
    }

    /// Sends raw bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `request` at `version`; returns its correlation id.
    pub async fn send(
        &mut self,
        request: &kafka_broker::protocol::messages::RequestKind,
        version: i16,
    ) -> i32 {
        use kafka_broker::protocol::Encode;
        use kafka_broker::protocol::messages::RequestHeader;
        self.correlation_id += 1;
        let api = request.api_key();
        let header = RequestHeader {
            request_api_key: api as i16,
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("raw-test".into()),
            ..Default::default()
        };
        let mut out = bytes::BytesMut::new();
        kafka_broker::protocol::frame::write_size_prefixed(&mut out, |buf| {
            header.encode(buf, api.request_header_version(version))?;
            request.encode(buf, version)
        })
        .expect("encode request");
        self.send_raw(&out).await;
        self.correlation_id
    }

    /// The next response frame (without its size), or `None` if the broker
    /// closed the connection. Fails the test after `limit`.
    pub async fn receive_frame(&mut self, limit: Duration) -> Option<bytes::Bytes> {
        use tokio::io::AsyncReadExt;
        let decoder = kafka_broker::protocol::frame::FrameDecoder::new(1 << 30);
        tokio::time::timeout(limit, async {
            loop {
                if let Some(frame) = decoder.decode(&mut self.input).expect("frame") {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.input).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("response within the limit")
    }

    /// Sends and decodes the response, checking its correlation id.
    pub async fn call(
        &mut self,
        request: &kafka_broker::protocol::messages::RequestKind,
        version: i16,
    ) -> kafka_broker::protocol::messages::ResponseKind {
        let api = request.api_key();
        let id = self.send(request, version).await;
        let frame = self
            .receive_frame(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{api:?} v{version}: connection closed"));
        let (header, body) = kafka_broker::protocol::frame::decode_response(frame, api, version)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
        assert_eq!(
            header.correlation_id, id,
            "{api:?} v{version}: correlation id"
        );
        body
    }
}

/// The `kafka-broker` binary, run as a child process; killed on drop.
pub struct BrokerProcess {
    child: std::process::Child,
    pub bootstrap: String,
}

impl BrokerProcess {
    /// Starts the binary on loopback with `args` and waits for its
    /// bootstrap line.
    pub fn start(args: &[&str]) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-broker"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kafka-broker");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("bootstrap line");
        assert!(
            !line.trim().is_empty(),
            "the broker printed no bootstrap servers"
        );
        Self {
            child,
            bootstrap: line.trim().to_owned(),
        }
    }

    /// SIGTERM (sent with `kill`, so no libc binding is needed), then waits
    /// up to `limit` for the process to exit: its status, or `None` if it
    /// is still running (the drop then kills it).
    pub fn terminate(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the broker") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
