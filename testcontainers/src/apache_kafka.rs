//! Real Apache Kafka as child JVM processes: a KRaft node (broker and
//! controller in one process) on 127.0.0.1, from a release's classpath that
//! `interop/kafka/fetch.sh VERSION` brought from Maven Central into
//! [`kafka_libs`]. No Docker: a JDK and that cache are all it needs.
//!
//! Readiness is the client's own Metadata call answering with the node,
//! not a sleep or a log line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kafka_client::network::{Network, NetworkConfig};
use tokio::process::{Child, Command};

use crate::error::{Error, Result};

/// Overrides where the Kafka classpaths are cached
/// (default `$HOME/.cache/kafka-sdk`).
pub const KAFKA_CACHE_ENV: &str = "KAFKA_SDK_CACHE";

/// The release [`Mode::ApacheKafka`](crate::Mode::ApacheKafka) tests use
/// when they do not name one: the one `.ci/run` fetches.
pub const DEFAULT_KAFKA_VERSION: &str = "4.1.1";

/// Any valid KRaft cluster id (base64 of 16 bytes): each cluster has its
/// own storage, so they need not differ.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

/// The directory holding Apache Kafka `version`'s jars, or an error that
/// says how to get them.
pub fn kafka_libs(version: &str) -> Result<PathBuf> {
    let cache = match std::env::var_os(KAFKA_CACHE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".cache").join("kafka-sdk"))
            .ok_or_else(|| Error::Config("neither KAFKA_SDK_CACHE nor HOME is set".into()))?,
    };
    let libs = cache.join(format!("kafka-{version}")).join("libs");
    if libs.join(format!("kafka_2.13-{version}.jar")).is_file() {
        Ok(libs)
    } else {
        Err(Error::Process(format!(
            "Apache Kafka {version} is not in {}: run interop/kafka/fetch.sh {version} (needs Maven)",
            libs.display()
        )))
    }
}

/// The `java` to run Kafka with: `$JAVA_HOME/bin/java`, else the one on
/// `PATH`, or an error naming what is missing.
pub fn java() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = Path::new(&home).join("bin").join("java");
        if java.is_file() {
            return Ok(java);
        }
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("java"))
                .find(|candidate| candidate.is_file())
        })
        .ok_or_else(|| {
            Error::Process(
                "no JDK: neither $JAVA_HOME/bin/java nor java on PATH (Kafka 4 needs Java 17+)"
                    .into(),
            )
        })
}

/// A free port on 127.0.0.1 (the OS's choice; Kafka must be told its ports
/// up front to advertise them).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// One KRaft node of Apache Kafka in a child JVM.
#[derive(Debug)]
pub(crate) struct ApacheKafka {
    version: String,
    java: PathBuf,
    classpath: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    pub(crate) bootstrap: String,
    // Last: the storage goes after the process.
    _dir: tempfile::TempDir,
}

impl ApacheKafka {
    /// Formats storage and starts one combined node with `properties`
    /// added to (or overriding) the defaults, then waits until it answers
    /// Metadata, at most `timeout`.
    pub(crate) async fn start(
        version: &str,
        default_partitions: i32,
        properties: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self> {
        let libs = kafka_libs(version)?;
        let java = java()?;
        let dir = tempfile::Builder::new().prefix("apache-kafka-").tempdir()?;
        let (port, controller) = (free_port()?, free_port()?);
        let mut config = vec![
            ("process.roles", "broker,controller".to_owned()),
            ("node.id", "1".to_owned()),
            (
                "controller.quorum.voters",
                format!("1@127.0.0.1:{controller}"),
            ),
            (
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
            ),
            (
                "advertised.listeners",
                format!("PLAINTEXT://127.0.0.1:{port}"),
            ),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
            ),
            ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
            ("log.dirs", dir.path().join("data").display().to_string()),
            ("num.partitions", default_partitions.to_string()),
            ("offsets.topic.replication.factor", "1".to_owned()),
            ("offsets.topic.num.partitions", "5".to_owned()),
            ("transaction.state.log.replication.factor", "1".to_owned()),
            ("transaction.state.log.min.isr", "1".to_owned()),
            ("transaction.state.log.num.partitions", "5".to_owned()),
            // Tests start groups at once; Kafka's default waits 3 s.
            ("group.initial.rebalance.delay.ms", "0".to_owned()),
        ];
        for (name, value) in properties {
            config.retain(|(n, _)| n != name);
            config.push((name.as_str(), value.clone()));
        }
        let text: String = config
            .iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect();
        let config_path = dir.path().join("server.properties");
        std::fs::write(&config_path, text)?;
        let classpath = format!("{}/*", libs.display());
        let formatted = Command::new(&java)
            .args([
                "-cp",
                &classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                CLUSTER_ID,
                "-c",
            ])
            .arg(&config_path)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Process(format!("{}: {e}", java.display())))?;
        if !formatted.status.success() {
            return Err(Error::Process(format!(
                "kafka-storage format failed: {}",
                String::from_utf8_lossy(&formatted.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&formatted.stderr).lines())
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            )));
        }
        let mut node = Self {
            version: version.to_owned(),
            java,
            classpath,
            config: config_path,
            log: dir.path().join("kafka.log"),
            child: None,
            bootstrap: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        node.launch(timeout).await?;
        Ok(node)
    }

    /// Starts the JVM on the formatted storage and waits for it to serve.
    async fn launch(&mut self, timeout: Duration) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.java)
            .args([
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseSerialGC",
                "-cp",
                &self.classpath,
            ])
            .arg("kafka.Kafka")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Process(format!("{}: {e}", self.java.display())))?;
        self.child = Some(child);
        self.wait_ready(timeout).await
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let mut config = NetworkConfig::new(vec![self.bootstrap.clone()]);
        config.request_timeout = Duration::from_secs(2);
        let network = Network::new(config)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(Error::Process(format!(
                    "Apache Kafka {} exited ({status}) while starting: {}",
                    self.version,
                    self.log_tail()
                )));
            }
            if let Ok(metadata) = network.refresh().await
                && !metadata.brokers.is_empty()
                && metadata.controller >= 0
            {
                network.close();
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                network.close();
                return Err(Error::Timeout {
                    what: format!(
                        "Apache Kafka {} to answer Metadata ({})",
                        self.version,
                        self.log_tail()
                    ),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines the JVM wrote, for errors.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// The JVM's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL: no flush, no controlled shutdown.
    pub(crate) async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Kills the node if it runs, then starts it again on the same ports
    /// and storage.
    pub(crate) async fn restart(&mut self, timeout: Duration) -> Result<()> {
        self.kill().await?;
        self.launch(timeout).await
    }

    /// SIGTERM (a controlled shutdown), waiting up to `limit`, then SIGKILL.
    pub(crate) async fn terminate(&mut self, limit: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .status()
                .await;
            if sent.is_ok_and(|s| s.success())
                && let Ok(waited) = tokio::time::timeout(limit, child.wait()).await
            {
                return waited.map(|_| ()).map_err(Error::from);
            }
        }
        child.kill().await.map_err(Error::from)
    }
}
