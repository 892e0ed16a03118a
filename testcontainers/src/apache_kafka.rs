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

/// The release this crate's own tests run when `KAFKA_VERSION` names none:
/// the newest `.ci/run` fetches (it also runs them on 4.0.1 and 3.9.1).
pub const DEFAULT_KAFKA_VERSION: &str = "4.4.0";

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

/// A cluster of Apache Kafka KRaft nodes in child JVMs: each node is a
/// broker and a controller (`process.roles=broker,controller`), the
/// controllers a quorum of all of them.
#[derive(Debug)]
pub(crate) struct ApacheKafka {
    version: String,
    java: PathBuf,
    classpath: String,
    nodes: Vec<Node>,
    pub(crate) bootstrap: String,
    // Last: the storage goes after the processes.
    _dir: tempfile::TempDir,
}

/// One node: its files, its port and its process while it runs.
#[derive(Debug)]
struct Node {
    id: i32,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl ApacheKafka {
    /// Formats storage for `nodes` nodes (ids 1..=nodes) and starts them
    /// with `properties` added to (or overriding) the defaults, then waits
    /// until every node is a broker in the client's Metadata, at most
    /// `timeout`.
    pub(crate) async fn start(
        version: &str,
        nodes: u32,
        default_partitions: i32,
        replication_factor: i16,
        properties: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self> {
        let libs = kafka_libs(version)?;
        let java = java()?;
        let dir = tempfile::Builder::new().prefix("apache-kafka-").tempdir()?;
        let count = nodes.max(1) as i32;
        let ports: Vec<(u16, u16)> = (0..count)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_>>()?;
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect();
        // Internal topics as replicated as the cluster allows, and writes
        // to them surviving one node down where there are three.
        let internal_rf = count.min(3).to_string();
        let internal_isr = if count >= 3 { "2" } else { "1" };
        let classpath = format!("{}/*", libs.display());
        let mut started = Vec::new();
        for (i, (port, controller)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let node_dir = dir.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir)?;
            let mut config = vec![
                ("process.roles", "broker,controller".to_owned()),
                ("node.id", id.to_string()),
                ("controller.quorum.voters", voters.join(",")),
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
                ("log.dirs", node_dir.join("data").display().to_string()),
                ("num.partitions", default_partitions.to_string()),
                ("default.replication.factor", replication_factor.to_string()),
                ("offsets.topic.replication.factor", internal_rf.clone()),
                ("offsets.topic.num.partitions", "5".to_owned()),
                (
                    "transaction.state.log.replication.factor",
                    internal_rf.clone(),
                ),
                ("transaction.state.log.min.isr", internal_isr.to_owned()),
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
            let config_path = node_dir.join("server.properties");
            std::fs::write(&config_path, text)?;
            format_storage(&java, &classpath, &config_path).await?;
            started.push(Node {
                id,
                config: config_path,
                log: node_dir.join("kafka.log"),
                child: None,
            });
        }
        let mut kafka = Self {
            version: version.to_owned(),
            java,
            classpath,
            nodes: started,
            bootstrap: ports
                .iter()
                .map(|(port, _)| format!("127.0.0.1:{port}"))
                .collect::<Vec<_>>()
                .join(","),
            _dir: dir,
        };
        for i in 0..kafka.nodes.len() {
            kafka.spawn(i)?;
        }
        kafka.wait_ready(kafka.nodes.len(), timeout).await?;
        Ok(kafka)
    }

    /// Starts node `index`'s JVM on its formatted storage.
    fn spawn(&mut self, index: usize) -> Result<()> {
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&self.java)
            .args([
                "-Xms128m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-cp",
                &self.classpath,
            ])
            .arg("kafka.Kafka")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Process(format!("{}: {e}", self.java.display())))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until Metadata lists `brokers` brokers and a controller.
    async fn wait_ready(&mut self, brokers: usize, timeout: Duration) -> Result<()> {
        let servers = self.bootstrap.split(',').map(str::to_owned).collect();
        let mut config = NetworkConfig::new(servers);
        config.request_timeout = Duration::from_secs(2);
        let network = Network::new(config)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for node in &mut self.nodes {
                if let Some(child) = &mut node.child
                    && let Some(status) = child.try_wait()?
                {
                    network.close();
                    return Err(Error::Process(format!(
                        "Apache Kafka {} node {} exited ({status}) while starting: {}",
                        self.version,
                        node.id,
                        log_tail(&node.log)
                    )));
                }
            }
            if let Ok(metadata) = network.refresh().await
                && metadata.brokers.len() >= brokers
                && metadata.controller >= 0
            {
                network.close();
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                network.close();
                let tail = self
                    .nodes
                    .first()
                    .map(|n| log_tail(&n.log))
                    .unwrap_or_default();
                return Err(Error::Timeout {
                    what: format!(
                        "Apache Kafka {} to list {brokers} brokers in Metadata ({tail})",
                        self.version
                    ),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn index(&self, id: i32) -> Result<usize> {
        self.nodes.iter().position(|n| n.id == id).ok_or_else(|| {
            Error::Config(format!("no node {id}: nodes are 1 to {}", self.nodes.len()))
        })
    }

    /// The first node's JVM process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.nodes.first()?.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL of every node: no flush, no controlled shutdown.
    pub(crate) async fn kill(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                child.kill().await?;
            }
        }
        Ok(())
    }

    /// Kills every node that runs, then starts them all again on the same
    /// ports and storage.
    pub(crate) async fn restart(&mut self, timeout: Duration) -> Result<()> {
        self.kill().await?;
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        self.wait_ready(self.nodes.len(), timeout).await
    }

    /// SIGKILL of node `id`.
    pub(crate) async fn kill_node(&mut self, id: i32) -> Result<()> {
        let index = self.index(id)?;
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// A controlled shutdown of node `id` (SIGTERM), SIGKILL after `limit`.
    pub(crate) async fn stop_node(&mut self, id: i32, limit: Duration) -> Result<()> {
        let index = self.index(id)?;
        match self.nodes[index].child.take() {
            Some(child) => terminate(child, limit).await,
            None => Ok(()),
        }
    }

    /// Starts node `id` again (killing it first if it runs) and waits until
    /// Metadata lists every node again.
    pub(crate) async fn restart_node(&mut self, id: i32, timeout: Duration) -> Result<()> {
        self.kill_node(id).await?;
        let index = self.index(id)?;
        self.spawn(index)?;
        self.wait_ready(self.nodes.len(), timeout).await
    }

    /// A controlled shutdown of every node, SIGKILL after `limit` each.
    pub(crate) async fn terminate(&mut self, limit: Duration) -> Result<()> {
        // The nodes go in parallel: one by one, the last would wait for a
        // controller quorum that is gone.
        let stops: Vec<_> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.child.take())
            .map(|child| terminate(child, limit))
            .collect();
        for stop in stops {
            stop.await?;
        }
        Ok(())
    }
}

async fn format_storage(java: &Path, classpath: &str, config: &Path) -> Result<()> {
    let formatted = Command::new(java)
        .args([
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            CLUSTER_ID,
            "-c",
        ])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Process(format!("{}: {e}", java.display())))?;
    if formatted.status.success() {
        return Ok(());
    }
    Err(Error::Process(format!(
        "kafka-storage format failed: {}",
        String::from_utf8_lossy(&formatted.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&formatted.stderr).lines())
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ")
    )))
}

/// The last lines a node wrote, for errors.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// SIGTERM (through `kill`, so no libc binding is needed), waiting up to
/// `limit`, then SIGKILL.
async fn terminate(mut child: Child, limit: Duration) -> Result<()> {
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

/// One node's controls, for crash and failover tests against real Kafka.
impl crate::RunningCluster {
    /// `kill -9` of Apache Kafka node `id` (1 to the broker count): its
    /// partitions' leadership moves to the other nodes.
    pub async fn kill_node(&mut self, id: i32) -> Result<()> {
        self.apache("kill_node")?.kill_node(id).await
    }

    /// A controlled shutdown (SIGTERM) of Apache Kafka node `id`, SIGKILL
    /// if it takes over 30 s.
    pub async fn stop_node(&mut self, id: i32) -> Result<()> {
        self.apache("stop_node")?
            .stop_node(id, Duration::from_secs(30))
            .await
    }

    /// Starts Apache Kafka node `id` again on its ports and storage (killing
    /// it first if it runs), and waits until Metadata lists every node.
    pub async fn restart_node(&mut self, id: i32) -> Result<()> {
        self.apache("restart_node")?
            .restart_node(id, Duration::from_secs(90))
            .await
    }
}
