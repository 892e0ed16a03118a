//! The Docker mode (feature `docker`): [`testcontainers`] images for
//! Apache Kafka in KRaft mode and for this project's broker.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kafka_testcontainers::Error> {
//! use kafka_testcontainers::docker::DockerImage;
//! use kafka_testcontainers::{KafkaCluster, Mode};
//!
//! if let Err(why) = kafka_testcontainers::docker_available() {
//!     eprintln!("skipped: {why}");
//!     return Ok(());
//! }
//! let kafka = KafkaCluster::new()
//!     .mode(Mode::Docker(DockerImage::apache_kafka()))
//!     .topic("orders", 3)
//!     .start()
//!     .await?;
//! println!("Apache Kafka at {}", kafka.bootstrap_servers());
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testcontainers::core::{ContainerPort, ContainerState, ExecCommand, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt};
use tokio::io::AsyncBufReadExt;

use crate::cluster::{KafkaCluster, Storage};
use crate::error::{Error, Result};

/// The `apache/kafka` tag used by default.
pub const APACHE_KAFKA_TAG: &str = "3.9.1";
/// The name the bundled broker's image is built under (see
/// [`build_bundled_image`]).
pub const BUNDLED_IMAGE: &str = "kafka-sdk/kafka-broker";
/// Its tag.
pub const BUNDLED_TAG: &str = "latest";
/// The port Apache Kafka's client listener has inside its container.
pub const KAFKA_PORT: ContainerPort = ContainerPort::Tcp(9092);

/// The script the Apache Kafka container waits for: the host port the
/// client listener must advertise is only known once the container runs.
const START_SCRIPT: &str = "/tmp/kafka-testcontainers-start.sh";

/// Which image a [`Mode::Docker`](crate::Mode::Docker) cluster runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerImage {
    /// The official `apache/kafka` image, one combined broker/controller
    /// in KRaft mode.
    ApacheKafka {
        /// Image tag, e.g. `3.9.1`.
        tag: String,
    },
    /// This project's broker, built from this crate's `Dockerfile`.
    Bundled {
        /// Image name.
        name: String,
        /// Image tag.
        tag: String,
    },
}

impl DockerImage {
    /// `apache/kafka:`[`APACHE_KAFKA_TAG`].
    ///
    /// ```
    /// let image = kafka_testcontainers::docker::DockerImage::apache_kafka();
    /// assert_eq!(image.to_string(), "apache/kafka:3.9.1");
    /// ```
    pub fn apache_kafka() -> Self {
        DockerImage::ApacheKafka {
            tag: APACHE_KAFKA_TAG.to_owned(),
        }
    }

    /// [`BUNDLED_IMAGE`]`:`[`BUNDLED_TAG`].
    ///
    /// ```
    /// let image = kafka_testcontainers::docker::DockerImage::bundled();
    /// assert_eq!(image.to_string(), "kafka-sdk/kafka-broker:latest");
    /// ```
    pub fn bundled() -> Self {
        DockerImage::Bundled {
            name: BUNDLED_IMAGE.to_owned(),
            tag: BUNDLED_TAG.to_owned(),
        }
    }
}

impl fmt::Display for DockerImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerImage::ApacheKafka { tag } => write!(f, "apache/kafka:{tag}"),
            DockerImage::Bundled { name, tag } => write!(f, "{name}:{tag}"),
        }
    }
}

/// Whether a Docker daemon answers: `DOCKER_HOST`, else the usual socket
/// paths, connected to (not only looked for).
pub(crate) fn available() -> std::result::Result<(), String> {
    let timeout = Duration::from_secs(2);
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if let Some(path) = host.strip_prefix("unix://") {
            return connect_unix(Path::new(path));
        }
        if let Some(addr) = host.strip_prefix("tcp://") {
            use std::net::ToSocketAddrs;
            let addr = addr
                .to_socket_addrs()
                .map_err(|e| format!("DOCKER_HOST={host}: {e}"))?
                .next()
                .ok_or_else(|| format!("DOCKER_HOST={host}: no address"))?;
            return std::net::TcpStream::connect_timeout(&addr, timeout)
                .map(|_| ())
                .map_err(|e| format!("DOCKER_HOST={host}: {e}"));
        }
        return Err(format!(
            "DOCKER_HOST={host}: only unix:// and tcp:// are checked"
        ));
    }
    let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(&home).join(".docker/run/docker.sock"));
        candidates.push(PathBuf::from(&home).join(".docker/desktop/docker.sock"));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(PathBuf::from(runtime).join("docker.sock"));
    }
    let mut reasons = Vec::new();
    for path in &candidates {
        match connect_unix(path) {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    Err(format!("no Docker daemon ({})", reasons.join("; ")))
}

#[cfg(unix)]
fn connect_unix(path: &Path) -> std::result::Result<(), String> {
    std::os::unix::net::UnixStream::connect(path)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn connect_unix(path: &Path) -> std::result::Result<(), String> {
    Err(format!(
        "{}: unix sockets are not checked here",
        path.display()
    ))
}

/// `docker build` of the bundled broker's image from this crate's
/// `Dockerfile`, with the workspace at `workspace` as build context.
/// Needs the `docker` command.
///
/// ```no_run
/// let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
/// kafka_testcontainers::docker::build_bundled_image(&workspace)?;
/// # Ok::<(), kafka_testcontainers::Error>(())
/// ```
pub fn build_bundled_image(workspace: &Path) -> Result<()> {
    let dockerfile = workspace.join("testcontainers/Dockerfile");
    let output = std::process::Command::new("docker")
        .args([
            "build",
            "-t",
            &format!("{BUNDLED_IMAGE}:{BUNDLED_TAG}"),
            "-f",
        ])
        .arg(&dockerfile)
        .arg(workspace)
        .output()
        .map_err(|e| Error::Docker(format!("cannot run `docker build`: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Docker(format!(
            "docker build -f {} failed ({}):\n{}",
            dockerfile.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// [`testcontainers::Image`] for `apache/kafka` as one KRaft node
/// (broker and controller), its client listener advertised on the host
/// port Docker mapped it to.
#[derive(Debug, Clone)]
pub struct ApacheKafkaImage {
    tag: String,
    env: Vec<(String, String)>,
}

impl ApacheKafkaImage {
    /// `apache/kafka:tag`, single node.
    ///
    /// ```
    /// use testcontainers::Image;
    /// let image = kafka_testcontainers::docker::ApacheKafkaImage::new("3.9.1");
    /// assert_eq!((image.name(), image.tag()), ("apache/kafka", "3.9.1"));
    /// ```
    pub fn new(tag: impl Into<String>) -> Self {
        let env = [
            ("CLUSTER_ID", "kafka-testcontainers-0001"),
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            (
                "KAFKA_LISTENERS",
                "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
            ),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "BROKER"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9094"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
        ];
        Self {
            tag: tag.into(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Sets a broker property by its Kafka name (`num.partitions` becomes
    /// `KAFKA_NUM_PARTITIONS`, the image's convention).
    ///
    /// ```
    /// let image = kafka_testcontainers::docker::ApacheKafkaImage::new("3.9.1")
    ///     .with_property("num.partitions", "3");
    /// ```
    pub fn with_property(mut self, name: &str, value: &str) -> Self {
        let key = format!("KAFKA_{}", name.replace(['.', '-'], "_").to_uppercase());
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.to_owned()));
        self
    }
}

impl Image for ApacheKafkaImage {
    fn name(&self) -> &str {
        "apache/kafka"
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        // Readiness is waited for in `exec_after_start`, once the start
        // script exists and Kafka actually starts.
        Vec::new()
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn entrypoint(&self) -> Option<&str> {
        Some("bash")
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        [
            "-c".to_owned(),
            format!("while [ ! -f {START_SCRIPT} ]; do sleep 0.1; done; bash {START_SCRIPT}"),
        ]
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[KAFKA_PORT]
    }

    fn exec_after_start(
        &self,
        state: ContainerState,
    ) -> std::result::Result<Vec<ExecCommand>, testcontainers::TestcontainersError> {
        let port = state.host_port_ipv4(KAFKA_PORT)?;
        let script = format!(
            "export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{port},BROKER://localhost:9093\n\
             exec /etc/kafka/docker/run\n"
        );
        let write = ExecCommand::new([
            "bash".to_owned(),
            "-c".to_owned(),
            format!("printf '%s' '{script}' > {START_SCRIPT}.tmp && mv {START_SCRIPT}.tmp {START_SCRIPT}"),
        ])
        .with_container_ready_conditions(vec![WaitFor::message_on_stdout(
            "Kafka Server started",
        )]);
        Ok(vec![write])
    }
}

/// [`testcontainers::Image`] for this project's broker
/// ([`BUNDLED_IMAGE`], built by [`build_bundled_image`]). It runs with host
/// networking, listening on `127.0.0.1` with OS-chosen ports like the
/// child-process mode, because the broker advertises the address it binds
/// and has no separate advertised-listener setting yet.
#[derive(Debug, Clone)]
pub struct BundledBrokerImage {
    name: String,
    tag: String,
    args: Vec<String>,
}

impl BundledBrokerImage {
    /// `name:tag`, run with `args` after `--listen 127.0.0.1:0`.
    ///
    /// ```
    /// use testcontainers::Image;
    /// let image = kafka_testcontainers::docker::BundledBrokerImage::new(
    ///     "kafka-sdk/kafka-broker", "latest", vec!["--brokers".into(), "3".into()]);
    /// assert_eq!(image.name(), "kafka-sdk/kafka-broker");
    /// ```
    pub fn new(name: impl Into<String>, tag: impl Into<String>, args: Vec<String>) -> Self {
        let mut all = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
        all.extend(args);
        Self {
            name: name.into(),
            tag: tag.into(),
            args: all,
        }
    }
}

impl Image for BundledBrokerImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        // The binary prints its bootstrap servers once every listener accepts.
        vec![WaitFor::message_on_stdout("127.0.0.1:")]
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        self.args.iter().map(String::as_str)
    }
}

#[derive(Debug)]
enum Container {
    Apache(ContainerAsync<ApacheKafkaImage>),
    Bundled(ContainerAsync<BundledBrokerImage>),
}

/// A started container; removed when dropped.
#[derive(Debug)]
pub(crate) struct RunningContainer {
    pub(crate) bootstrap: String,
    container: Container,
}

impl RunningContainer {
    pub(crate) async fn shutdown(self) -> Result<()> {
        let removed = match self.container {
            Container::Apache(c) => c.rm().await,
            Container::Bundled(c) => c.rm().await,
        };
        removed.map_err(docker_error)
    }
}

fn docker_error(e: testcontainers::TestcontainersError) -> Error {
    Error::Docker(e.to_string())
}

pub(crate) async fn start(
    image: &DockerImage,
    builder: &KafkaCluster,
    timeout: Duration,
) -> Result<RunningContainer> {
    available().map_err(Error::DockerUnavailable)?;
    if builder.storage != Storage::Memory {
        return Err(Error::Config(
            "a data dir on the host is not supported in Docker mode".into(),
        ));
    }
    match image {
        DockerImage::ApacheKafka { tag } => {
            if builder.brokers != 1 {
                return Err(Error::Config(format!(
                    "the apache/kafka image runs 1 broker, {} asked",
                    builder.brokers
                )));
            }
            let mut kafka = ApacheKafkaImage::new(tag.clone());
            if let Some(partitions) = builder.default_partitions {
                kafka = kafka.with_property("num.partitions", &partitions.to_string());
            }
            for (name, value) in &builder.properties {
                kafka = kafka.with_property(name, value);
            }
            let container = kafka
                .with_startup_timeout(timeout)
                .start()
                .await
                .map_err(docker_error)?;
            let port = container
                .get_host_port_ipv4(KAFKA_PORT)
                .await
                .map_err(docker_error)?;
            Ok(RunningContainer {
                bootstrap: format!("127.0.0.1:{port}"),
                container: Container::Apache(container),
            })
        }
        DockerImage::Bundled { name, tag } => {
            let mut args = vec!["--brokers".to_owned(), builder.brokers.to_string()];
            if let Some(partitions) = builder.default_partitions {
                args.push("--default-partitions".to_owned());
                args.push(partitions.to_string());
            }
            for (name, value) in &builder.properties {
                args.push("--config".to_owned());
                args.push(format!("{name}={value}"));
            }
            let container = BundledBrokerImage::new(name.clone(), tag.clone(), args)
                .with_network("host")
                .with_startup_timeout(timeout)
                .start()
                .await
                .map_err(docker_error)?;
            let mut stdout = container.stdout(false);
            let mut line = String::new();
            let mut bootstrap = None;
            while stdout.read_line(&mut line).await? > 0 {
                if line.trim().starts_with("127.0.0.1:") {
                    bootstrap = Some(line.trim().to_owned());
                    break;
                }
                line.clear();
            }
            let bootstrap = bootstrap.ok_or_else(|| {
                Error::Process("the broker container printed no bootstrap servers".into())
            })?;
            Ok(RunningContainer {
                bootstrap,
                container: Container::Bundled(container),
            })
        }
    }
}
