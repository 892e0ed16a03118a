//! The builder ([`KafkaCluster`]) and the handle ([`RunningCluster`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster, FaultHandle, Faults};
use kafka_client::consumer::{Consumer, ConsumerConfig, OffsetReset};
use kafka_client::producer::{Producer, ProducerConfig};
use kafka_protocol::{ApiKey, ErrorCode};

use crate::error::{Error, Result};
use crate::process::{BrokerProcess, broker_binary};
use crate::security::{ClusterSecurity, Secured};

/// How the brokers of a test cluster run. One API for all: the
/// [`RunningCluster`] handle works the same in each, except for the
/// fault-injection controls that need the broker in this process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// [`kafka_broker::Cluster`] on this process's tokio runtime: starts in
    /// milliseconds, and every fault control works.
    #[default]
    InProcess,
    /// The `kafka-broker` binary as a child process (see
    /// [`broker_binary`](crate::broker_binary)), for tests that kill it
    /// with SIGKILL ([`RunningCluster::kill`]) and start it again on the same
    /// data dir ([`RunningCluster::restart`]).
    ChildProcess,
    /// Real Apache Kafka `version` (e.g. `"4.1.1"`) as a child JVM: one
    /// KRaft node per broker (broker and controller in one process, the
    /// controllers a quorum of all) on 127.0.0.1, from the classpath
    /// `interop/kafka/fetch.sh VERSION` caches (see
    /// [`kafka_libs`](crate::kafka_libs)). Needs a JDK, no Docker;
    /// [`RunningCluster::kill`] and [`RunningCluster::restart`] act on every
    /// node, [`RunningCluster::kill_node`], `stop_node` and `restart_node`
    /// on one.
    ApacheKafka {
        /// The Apache Kafka release.
        version: String,
    },
    /// A Docker container through the `testcontainers` crate.
    #[cfg(feature = "docker")]
    Docker(crate::docker::DockerImage),
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::InProcess => f.write_str("in-process"),
            Mode::ChildProcess => f.write_str("child-process"),
            Mode::ApacheKafka { version } => write!(f, "apache-kafka {version}"),
            #[cfg(feature = "docker")]
            Mode::Docker(image) => write!(f, "docker ({image})"),
        }
    }
}

/// Where the brokers keep their logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Storage {
    /// In memory: gone when the cluster stops (the default).
    #[default]
    Memory,
    /// A fresh temporary directory, removed when the handle is dropped.
    /// Data survives [`RunningCluster::restart`] and
    /// [`RunningCluster::restart_broker`].
    TempDir,
    /// This directory, left in place afterwards.
    Dir(PathBuf),
}

/// A topic to create: name, partitions, replication factor and topic-level
/// configs (`retention.ms`, `cleanup.policy`, ...).
///
/// ```
/// use kafka_testcontainers::TopicSpec;
///
/// let spec = TopicSpec::new("orders", 6).config("retention.ms", "60000");
/// assert_eq!(spec.partitions, 6);
/// assert_eq!(spec.replication_factor, -1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic name.
    pub name: String,
    /// Partitions; -1 for the broker's `num.partitions`.
    pub partitions: i32,
    /// Replicas per partition; -1 for the cluster builder's
    /// [`replication_factor`](KafkaCluster::replication_factor).
    pub replication_factor: i16,
    /// Topic-level configs, by Kafka name.
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// `name` with `partitions` partitions and the default replication factor.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, replicas: i16) -> Self {
        self.replication_factor = replicas;
        self
    }

    /// Adds a topic-level config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((name.into(), value.into()));
        self
    }
}

/// A Kafka cluster for a test, described then [started](Self::start).
///
/// Defaults: one in-process broker on `127.0.0.1` (OS-chosen port), in
/// memory, topics auto-created with one partition.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kafka_testcontainers::Error> {
/// use kafka_testcontainers::KafkaCluster;
///
/// let cluster = KafkaCluster::new()
///     .brokers(3)
///     .default_partitions(6)
///     .broker_property("auto.create.topics.enable", "false")
///     .topic("orders", 12)
///     .start()
///     .await?;
/// assert_eq!(cluster.bootstrap_servers().split(',').count(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KafkaCluster {
    pub(crate) mode: Mode,
    pub(crate) brokers: u32,
    pub(crate) default_partitions: Option<i32>,
    pub(crate) replication_factor: i16,
    pub(crate) storage: Storage,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) topics: Vec<TopicSpec>,
    pub(crate) startup_timeout: Duration,
    pub(crate) security: ClusterSecurity,
}

impl Default for KafkaCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl KafkaCluster {
    /// One in-process broker, in memory.
    pub fn new() -> Self {
        Self {
            mode: Mode::InProcess,
            brokers: 1,
            default_partitions: None,
            replication_factor: 1,
            storage: Storage::Memory,
            properties: Vec::new(),
            topics: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            security: ClusterSecurity::Plaintext,
        }
    }

    /// How the brokers run (default [`Mode::InProcess`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Shorthand for `.mode(Mode::ChildProcess)`.
    pub fn child_process(self) -> Self {
        self.mode(Mode::ChildProcess)
    }

    /// Real Apache Kafka `version` as a child JVM
    /// ([`Mode::ApacheKafka`]): the same handle, topics and client configs
    /// as the bundled broker, against the broker users run.
    pub fn apache_kafka(self, version: impl Into<String>) -> Self {
        self.mode(Mode::ApacheKafka {
            version: version.into(),
        })
    }

    /// Brokers in the cluster, 1 to 64 (default 1). The Apache Kafka image
    /// runs one.
    pub fn brokers(mut self, brokers: u32) -> Self {
        self.brokers = brokers;
        self
    }

    /// Partitions of auto-created topics and of topics created with -1
    /// (`num.partitions`, default 1).
    pub fn default_partitions(mut self, partitions: i32) -> Self {
        self.default_partitions = Some(partitions);
        self
    }

    /// The replication factor of topics created through this crate, 1 to
    /// the number of brokers (default 1).
    ///
    /// The bundled broker accepts and reports it, but keeps every partition
    /// on its leader only: there is no replication, ISR or
    /// `min.insync.replicas` to test against yet. Against Apache Kafka it is
    /// real.
    pub fn replication_factor(mut self, replicas: i16) -> Self {
        self.replication_factor = replicas;
        self
    }

    /// Keep logs in memory (the default).
    pub fn in_memory(mut self) -> Self {
        self.storage = Storage::Memory;
        self
    }

    /// Keep logs on disk in a temporary directory removed on drop.
    pub fn temp_data_dir(mut self) -> Self {
        self.storage = Storage::TempDir;
        self
    }

    /// Keep logs on disk in `dir` (created if missing, left afterwards).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Storage::Dir(dir.into());
        self
    }

    /// Sets a broker property by its Kafka name (`message.max.bytes`,
    /// `group.initial.rebalance.delay.ms`, ...). Checked by
    /// [`start`](Self::start): the bundled broker refuses names it does not
    /// know; for the Apache Kafka image they become `KAFKA_*` environment
    /// variables.
    pub fn broker_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((name.into(), value.into()));
        self
    }

    /// A topic to create before [`start`](Self::start) returns.
    pub fn topic(self, name: impl Into<String>, partitions: i32) -> Self {
        self.topic_spec(TopicSpec::new(name, partitions))
    }

    /// A topic to create before [`start`](Self::start) returns, with
    /// replication factor and configs.
    pub fn topic_spec(mut self, spec: TopicSpec) -> Self {
        self.topics.push(spec);
        self
    }

    /// How long [`start`](Self::start) waits for the brokers and topics
    /// (default 60 s: a child process may first have to be built, an image
    /// pulled).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The bundled broker's configuration for these settings.
    fn broker_config(&self, data_dir: Option<PathBuf>) -> Result<BrokerConfig> {
        let mut config = BrokerConfig {
            brokers: self.brokers,
            data_dir,
            ..BrokerConfig::default()
        };
        if let Some(partitions) = self.default_partitions {
            config.set("num.partitions", &partitions.to_string())?;
        }
        for (name, value) in &self.properties {
            match name.as_str() {
                // Where the brokers listen and store is this builder's job.
                "listeners.host" | "host.name" | "port" | "brokers" | "log.dirs" | "log.dir" => {
                    return Err(Error::Config(format!(
                        "`{name}` is set by the builder (brokers(), data_dir()), not as a property"
                    )));
                }
                _ => {
                    config.set(name, value)?;
                }
            }
        }
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if !(1..=64).contains(&self.brokers) {
            return Err(Error::Config(format!(
                "{} brokers: must be 1 to 64",
                self.brokers
            )));
        }
        if self.replication_factor < 1 || self.replication_factor as u32 > self.brokers {
            return Err(Error::Config(format!(
                "replication factor {} with {} brokers: must be 1 to {}",
                self.replication_factor, self.brokers, self.brokers
            )));
        }
        Ok(())
    }

    /// Secures every listener (TLS with a CA made for the cluster, SASL
    /// with the user [`TEST_USER`](crate::TEST_USER)); the running
    /// cluster's [`producer_config`](RunningCluster::producer_config) and
    /// [`consumer_config`](RunningCluster::consumer_config) carry the
    /// matching client settings. In-process and child-process modes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use kafka_testcontainers::{ClusterSecurity, KafkaCluster, SaslMechanism};
    ///
    /// let cluster = KafkaCluster::new()
    ///     .security(ClusterSecurity::SaslSsl(SaslMechanism::ScramSha512))
    ///     .topic("payments", 1)
    ///     .start()
    ///     .await?;
    /// let config = cluster.producer_config()?;
    /// assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
    /// assert!(cluster.ca_pem().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn security(mut self, security: ClusterSecurity) -> Self {
        self.security = security;
        self
    }

    /// Starts the brokers, creates the topics, and returns once clients can
    /// connect.
    pub async fn start(self) -> Result<RunningCluster> {
        self.validate()?;
        let secured = Secured::new(self.security)?;
        // The child process reads its certificate and key from files.
        let security_dir = if secured.is_secured() && self.mode == Mode::ChildProcess {
            Some(
                tempfile::Builder::new()
                    .prefix("kafka-test-tls-")
                    .tempdir()?,
            )
        } else {
            None
        };
        let temp_dir = match self.storage {
            Storage::TempDir => Some(tempfile::Builder::new().prefix("kafka-test-").tempdir()?),
            _ => None,
        };
        let data_dir = match (&self.storage, &temp_dir) {
            (Storage::Dir(dir), _) => Some(dir.clone()),
            (_, Some(temp)) => Some(temp.path().to_path_buf()),
            _ => None,
        };
        let backend = match &self.mode {
            Mode::InProcess => {
                let mut config = self.broker_config(data_dir.clone())?;
                (config.tls, config.sasl) = secured.broker()?;
                let cluster = tokio::time::timeout(self.startup_timeout, Cluster::start(config))
                    .await
                    .map_err(|_| Error::Timeout {
                        what: "the in-process brokers to listen".into(),
                        waited: self.startup_timeout,
                    })??;
                Backend::InProcess(cluster)
            }
            Mode::ChildProcess => {
                // Refuse bad properties here, with this crate's error,
                // rather than as a dead child's stderr.
                self.broker_config(data_dir.clone())?;
                let mut args = self.process_args(data_dir.as_deref());
                if let Some(dir) = &security_dir {
                    args.extend(secured.process_args(dir.path())?);
                }
                let binary = tokio::task::spawn_blocking(broker_binary)
                    .await
                    .map_err(|e| Error::Binary(format!("locating task failed: {e}")))??;
                let process = BrokerProcess::start(&binary, 0, &args, self.startup_timeout).await?;
                Backend::Child {
                    process: Box::new(process),
                    binary,
                    args,
                }
            }
            Mode::ApacheKafka { version } => {
                if secured.is_secured() {
                    return Err(Error::Unsupported {
                        operation: "start",
                        mode: self.mode.clone(),
                        reason: "Apache Kafka runs with plaintext listeners for now",
                    });
                }
                let kafka = crate::apache_kafka::ApacheKafka::start(
                    version,
                    self.brokers,
                    self.default_partitions.unwrap_or(1),
                    self.replication_factor,
                    &self.properties,
                    self.startup_timeout,
                )
                .await?;
                Backend::Apache(Box::new(kafka))
            }
            #[cfg(feature = "docker")]
            Mode::Docker(image) => {
                if secured.is_secured() {
                    return Err(Error::Unsupported {
                        operation: "security",
                        mode: self.mode.clone(),
                        reason: "secured listeners run in-process or as a child process",
                    });
                }
                if !matches!(image, crate::docker::DockerImage::ApacheKafka { .. }) {
                    self.broker_config(None)?;
                }
                let container = crate::docker::start(image, &self, self.startup_timeout).await?;
                Backend::Docker(Box::new(container))
            }
        };
        let bootstrap = match &backend {
            Backend::InProcess(cluster) => cluster.bootstrap_servers(),
            Backend::Child { process, .. } => process.bootstrap.clone(),
            Backend::Apache(kafka) => kafka.bootstrap.clone(),
            #[cfg(feature = "docker")]
            Backend::Docker(container) => container.bootstrap.clone(),
        };
        let running = RunningCluster {
            mode: self.mode.clone(),
            brokers: self.brokers,
            replication_factor: self.replication_factor,
            bootstrap,
            backend,
            data_dir,
            secured,
            _security_dir: security_dir,
            _temp_dir: temp_dir,
            _runtime: None,
        };
        for topic in self.topics {
            running.create_topic_spec(topic).await?;
        }
        Ok(running)
    }

    /// Starts the cluster on a tokio runtime of its own, on a thread of its
    /// own, blocking until it is up: callable from synchronous code and from
    /// inside any runtime (a `#[tokio::test]`), and independent of that
    /// runtime's life. This is the way to start a cluster that many tests
    /// share (see the [crate docs](crate#one-cluster-per-test-or-one-for-the-whole-binary));
    /// dropping the handle stops the cluster, then the thread and runtime.
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use kafka_testcontainers::{KafkaCluster, RunningCluster};
    ///
    /// fn shared() -> &'static RunningCluster {
    ///     static CLUSTER: OnceLock<RunningCluster> = OnceLock::new();
    ///     CLUSTER.get_or_init(|| KafkaCluster::new().brokers(3).start_blocking().expect("cluster"))
    /// }
    /// assert_eq!(shared().bootstrap_servers(), shared().bootstrap_servers());
    /// ```
    pub fn start_blocking(self) -> Result<RunningCluster> {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kafka-test-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("kafka-test-cluster")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(Error::Io(e)));
                        return;
                    }
                };
                let started = runtime.block_on(self.start());
                let ok = started.is_ok();
                let _ = started_tx.send(started);
                if ok {
                    // Until the handle (holding the sender) is dropped; the
                    // runtime's workers serve the brokers meanwhile.
                    let _ = stop_rx.recv();
                }
                // Dropping the runtime here ends whatever tasks remain.
            })?;
        let mut cluster = started_rx
            .recv()
            .map_err(|_| Error::Process("the cluster thread ended before starting".into()))??;
        cluster._runtime = Some(RuntimeGuard {
            _stop: stop_tx,
            _thread: thread,
        });
        Ok(cluster)
    }

    /// The `kafka-broker` command line after `--listen`.
    fn process_args(&self, data_dir: Option<&std::path::Path>) -> Vec<String> {
        let mut args = vec!["--brokers".to_owned(), self.brokers.to_string()];
        if let Some(dir) = data_dir {
            args.push("--data-dir".to_owned());
            args.push(dir.display().to_string());
        }
        if let Some(partitions) = self.default_partitions {
            args.push("--default-partitions".to_owned());
            args.push(partitions.to_string());
        }
        for (name, value) in &self.properties {
            args.push("--config".to_owned());
            args.push(format!("{name}={value}"));
        }
        args
    }
}

#[derive(Debug)]
enum Backend {
    InProcess(Cluster),
    Child {
        // Boxed: a process handle with its pipes is far bigger than the
        // other variants.
        process: Box<BrokerProcess>,
        binary: PathBuf,
        args: Vec<String>,
    },
    Apache(Box<crate::apache_kafka::ApacheKafka>),
    #[cfg(feature = "docker")]
    Docker(Box<crate::docker::RunningContainer>),
}

/// A started test cluster. Dropping it stops every broker (in-process
/// tasks aborted, child process killed, container removed) and removes a
/// temporary data dir: nothing outlives the test.
///
/// Many can run at once in one test binary: each has its own OS-chosen
/// ports and its own state.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use kafka_client::producer::ProducerRecord;
/// use kafka_testcontainers::KafkaCluster;
///
/// let cluster = KafkaCluster::new().start().await?;
/// cluster.create_topic("payments", 3).await?;
/// let producer = cluster.producer()?;
/// let delivered = producer
///     .send_and_wait(ProducerRecord::new("payments").partition(2).value("10 EUR"))
///     .await?;
/// assert_eq!(delivered.partition, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RunningCluster {
    mode: Mode,
    brokers: u32,
    replication_factor: i16,
    bootstrap: String,
    backend: Backend,
    data_dir: Option<PathBuf>,
    secured: Secured,
    // Dropped after `backend` (fields drop in order): the brokers stop
    // before their files go.
    _security_dir: Option<tempfile::TempDir>,
    _temp_dir: Option<tempfile::TempDir>,
    // Last: the runtime of a `start_blocking` cluster ends after it.
    _runtime: Option<RuntimeGuard>,
}

/// Keeps the thread and runtime of [`KafkaCluster::start_blocking`]; its
/// drop lets the thread finish.
#[derive(Debug)]
struct RuntimeGuard {
    _stop: std::sync::mpsc::Sender<()>,
    _thread: std::thread::JoinHandle<()>,
}

impl RunningCluster {
    /// How the brokers run.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// `host:port` of every broker, comma-separated: the
    /// `bootstrap.servers` value.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// How many brokers the cluster has.
    pub fn broker_count(&self) -> u32 {
        self.brokers
    }

    /// The data dir, unless the logs are in memory.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    /// A producer configuration pointing at this cluster, with the Java
    /// client's defaults otherwise; set more properties on it before
    /// [`build`](ProducerConfig::build).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().start().await?;
    /// let mut config = cluster.producer_config()?;
    /// config.set("linger.ms", "0")?;
    /// assert_eq!(config.get("bootstrap.servers"), Some(cluster.bootstrap_servers()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn producer_config(&self) -> Result<ProducerConfig> {
        let mut config = ProducerConfig::new();
        config.set("bootstrap.servers", &self.bootstrap)?;
        if self.secured.is_secured() {
            for (name, value) in self.secured.client_properties() {
                config.set(name, &value)?;
            }
        }
        Ok(config)
    }

    /// The client properties that match the cluster's
    /// [`security`](KafkaCluster::security) (`security.protocol`,
    /// `ssl.ca.pem`, `sasl.*`), for clients configured some other way,
    /// such as a service's own configuration loader.
    pub fn security_properties(&self) -> Vec<(&'static str, String)> {
        self.secured.client_properties()
    }

    /// The PEM certificate of the CA that signed the brokers' certificates,
    /// when the cluster speaks TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.secured.ca_pem()
    }

    /// A consumer configuration for `group_id` pointing at this cluster,
    /// reading from the earliest offset (a test usually produces before its
    /// consumer has joined), other settings at the Java client's defaults.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().start().await?;
    /// let settings = cluster.consumer_config("billing")?.enable_auto_commit(false)?.build()?;
    /// assert_eq!(settings.group_id.as_deref(), Some("billing"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn consumer_config(&self, group_id: &str) -> Result<ConsumerConfig> {
        let mut config = ConsumerConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)?
            .group_id(group_id)?
            .auto_offset_reset(OffsetReset::Earliest)?;
        if self.secured.is_secured() {
            for (name, value) in self.secured.client_properties() {
                config.set(name, &value)?;
            }
        }
        Ok(config)
    }

    /// A producer with [`producer_config`](Self::producer_config).
    pub fn producer(&self) -> Result<Producer> {
        Ok(Producer::new(self.producer_config()?.build()?)?)
    }

    /// A consumer with [`consumer_config`](Self::consumer_config),
    /// subscribed to `topics`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().topic("t", 1).start().await?;
    /// let consumer = cluster.consumer("g", &["t"])?;
    /// assert_eq!(consumer.group_metadata().group_id, "g");
    /// # Ok(())
    /// # }
    /// ```
    pub fn consumer(&self, group_id: &str, topics: &[&str]) -> Result<Consumer> {
        let mut consumer = Consumer::new(self.consumer_config(group_id)?.build()?)?;
        consumer.subscribe(topics)?;
        Ok(consumer)
    }

    /// Creates a topic with the builder's replication factor, and returns
    /// once every partition has a leader. There is no admin client in
    /// kafka-client yet: this is the way to create topics in a test.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().start().await?;
    /// cluster.create_topic("invoices", 4).await?;
    /// let again = cluster.create_topic("invoices", 4).await.unwrap_err();
    /// assert!(again.to_string().contains("TOPIC_ALREADY_EXISTS"), "{again}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_spec(TopicSpec::new(name, partitions))
            .await
    }

    /// Creates a topic as `spec` says (configs, replication factor).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// use kafka_testcontainers::{KafkaCluster, TopicSpec};
    ///
    /// let cluster = KafkaCluster::new().brokers(2).start().await?;
    /// cluster
    ///     .create_topic_spec(TopicSpec::new("audit", 2).replication_factor(2).config("retention.ms", "-1"))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_topic_spec(&self, mut spec: TopicSpec) -> Result<()> {
        if spec.replication_factor == -1 {
            spec.replication_factor = self.replication_factor;
        }
        if spec.replication_factor < 1 || spec.replication_factor as u32 > self.brokers {
            return Err(Error::Config(format!(
                "topic `{}`: replication factor {} with {} brokers",
                spec.name, spec.replication_factor, self.brokers
            )));
        }
        // In-process, and nothing the direct call cannot express: no
        // socket round trip.
        if let Backend::InProcess(cluster) = &self.backend
            && spec.configs.is_empty()
            && spec.partitions > 0
        {
            return cluster
                .create_topic(&spec.name, spec.partitions)
                .map_err(|e| match e {
                    kafka_broker::ClusterError::Kafka { code, message } => Error::Kafka {
                        operation: "create topic",
                        name: spec.name.clone(),
                        code,
                        message: Some(message),
                    },
                    other => Error::Broker(other),
                });
        }
        let security = self.secured.client_security()?;
        crate::wire::create_topic(&self.bootstrap, &security, &spec, Duration::from_secs(30)).await
    }

    /// The Apache Kafka nodes, for the node controls of
    /// [`Mode::ApacheKafka`] (`crate::apache_kafka`).
    pub(crate) fn apache(
        &mut self,
        operation: &'static str,
    ) -> Result<&mut crate::apache_kafka::ApacheKafka> {
        match &mut self.backend {
            Backend::Apache(kafka) => Ok(kafka),
            _ => Err(Error::Unsupported {
                operation,
                mode: self.mode.clone(),
                reason: "node controls are for Mode::ApacheKafka; in-process, use stop_broker",
            }),
        }
    }

    fn in_process(&self, operation: &'static str) -> Result<&Cluster> {
        match &self.backend {
            Backend::InProcess(cluster) => Ok(cluster),
            _ => Err(Error::Unsupported {
                operation,
                mode: self.mode.clone(),
                reason: "fault injection needs the broker in this process (Mode::InProcess)",
            }),
        }
    }

    /// The in-process [`Cluster`], for anything this handle does not wrap;
    /// `None` in the other modes.
    pub fn broker_cluster(&self) -> Option<&Cluster> {
        match &self.backend {
            Backend::InProcess(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// The fault rules, for any combination of scope (API, broker, count)
    /// and action. In-process only.
    pub fn faults(&self) -> Result<&Faults> {
        Ok(self.in_process("faults")?.faults())
    }

    /// Applies the next `count` requests of `api` but drops their
    /// responses. In-process only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// use kafka_testcontainers::{ApiKey, KafkaCluster, Error};
    ///
    /// let cluster = KafkaCluster::new().start().await?;
    /// let fault = cluster.drop_responses(ApiKey::Produce, 1)?;
    /// assert_eq!(fault.hits(), 0);
    /// fault.remove();
    /// # Ok(())
    /// # }
    /// ```
    pub fn drop_responses(&self, api: ApiKey, count: u32) -> Result<FaultHandle> {
        Ok(self
            .in_process("drop_responses")?
            .drop_responses(api, count))
    }

    /// Delays every response to `api` by `delay` until the handle is
    /// removed. In-process only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::{Duration, Instant};
    /// use kafka_client::producer::ProducerRecord;
    /// use kafka_testcontainers::{ApiKey, KafkaCluster};
    ///
    /// let cluster = KafkaCluster::new().topic("slow", 1).start().await?;
    /// let slow = cluster.delay_responses(ApiKey::Produce, Duration::from_millis(200))?;
    /// let begun = Instant::now();
    /// cluster.producer()?.send_and_wait(ProducerRecord::new("slow").value("x")).await?;
    /// assert!(begun.elapsed() >= Duration::from_millis(200));
    /// assert_eq!(slow.hits(), 1);
    /// slow.remove();
    /// # Ok(())
    /// # }
    /// ```
    pub fn delay_responses(&self, api: ApiKey, delay: Duration) -> Result<FaultHandle> {
        Ok(self
            .in_process("delay_responses")?
            .delay_responses(api, delay))
    }

    /// Answers the next `count` requests of `api` with `code` without
    /// applying them. In-process only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use kafka_client::producer::ProducerRecord;
    /// use kafka_testcontainers::{ApiKey, ErrorCode, KafkaCluster};
    ///
    /// let cluster = KafkaCluster::new().topic("t", 1).start().await?;
    /// let fault = cluster.inject_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower, 1)?;
    /// // Retriable: the producer retries and the record lands once.
    /// let delivered = cluster.producer()?.send_and_wait(ProducerRecord::new("t").value("x")).await?;
    /// assert_eq!((delivered.offset, fault.hits()), (0, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn inject_error(&self, api: ApiKey, code: ErrorCode, count: u32) -> Result<FaultHandle> {
        Ok(self
            .in_process("inject_error")?
            .inject_error(api, code, count))
    }

    /// Keeps `transactional_id`'s transactions in PrepareCommit /
    /// PrepareAbort until the handle is removed. In-process only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().start().await?;
    /// let hold = cluster.hold_txn_completion("payments-tx")?;
    /// assert_eq!(hold.hits(), 0, "no transaction has ended yet");
    /// hold.remove();
    /// # Ok(())
    /// # }
    /// ```
    pub fn hold_txn_completion(&self, transactional_id: &str) -> Result<FaultHandle> {
        Ok(self
            .in_process("hold_txn_completion")?
            .hold_txn_completion(transactional_id))
    }

    /// Moves the leadership of a partition to `broker`. In-process only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().brokers(2).topic("t", 1).start().await?;
    /// cluster.move_leader("t", 0, 1)?;
    /// assert!(cluster.move_leader("t", 0, 7).is_err(), "no broker 7");
    /// # Ok(())
    /// # }
    /// ```
    pub fn move_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<()> {
        Ok(self
            .in_process("move_leader")?
            .move_leader(topic, partition, broker)?)
    }

    /// Stops one broker: its listener and connections close. In-process
    /// only; in child-process mode all brokers share the process, see
    /// [`kill`](Self::kill).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// let cluster = kafka_testcontainers::KafkaCluster::new().brokers(2).start().await?;
    /// cluster.stop_broker(1)?;
    /// let second = cluster.bootstrap_servers().split(',').nth(1).unwrap_or_default().to_owned();
    /// assert!(tokio::net::TcpStream::connect(&second).await.is_err());
    /// cluster.restart_broker(1).await?;
    /// assert!(tokio::net::TcpStream::connect(&second).await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop_broker(&self, id: i32) -> Result<()> {
        Ok(self.in_process("stop_broker")?.stop_broker(id)?)
    }

    /// Restarts a stopped broker on its old address. In-process only.
    pub async fn restart_broker(&self, id: i32) -> Result<()> {
        Ok(self
            .in_process("restart_broker")?
            .restart_broker(id)
            .await?)
    }

    /// The broker process id in child-process mode.
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Child { process, .. } => process.pid(),
            Backend::Apache(kafka) => kafka.pid(),
            _ => None,
        }
    }

    /// `kill -9` of the broker process: no flush, no clean close, every
    /// connection reset. Child-process mode only.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), kafka_testcontainers::Error> {
    /// let mut cluster = kafka_testcontainers::KafkaCluster::new()
    ///     .child_process()
    ///     .temp_data_dir()
    ///     .start()
    ///     .await?;
    /// cluster.kill().await?;
    /// cluster.restart().await?; // same address, same data dir
    /// # Ok(())
    /// # }
    /// ```
    pub async fn kill(&mut self) -> Result<()> {
        match &mut self.backend {
            Backend::Child { process, .. } => process.kill().await,
            Backend::Apache(kafka) => kafka.kill().await,
            _ => Err(Error::Unsupported {
                operation: "kill",
                mode: self.mode.clone(),
                reason: "only a child process can be killed; in-process, use stop_broker",
            }),
        }
    }

    /// Starts the broker process again (after [`kill`](Self::kill), or
    /// killing a running one first) on the same ports and data dir, and
    /// waits for it to listen. Child-process mode, one broker: several
    /// brokers of one process got unrelated OS-chosen ports, which the
    /// binary cannot be asked to take again.
    pub async fn restart(&mut self) -> Result<()> {
        let timeout = Duration::from_secs(30);
        let mode = self.mode.clone();
        let brokers = self.brokers;
        match &mut self.backend {
            Backend::Child {
                process,
                binary,
                args,
            } if brokers == 1 => {
                process.kill().await?;
                let port = self
                    .bootstrap
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| {
                        Error::Process(format!("no port in bootstrap `{}`", self.bootstrap))
                    })?;
                let restarted = BrokerProcess::start(binary, port, args, timeout).await?;
                **process = restarted;
                Ok(())
            }
            Backend::Apache(kafka) => kafka.restart(Duration::from_secs(60)).await,
            Backend::Child { .. } => Err(Error::Unsupported {
                operation: "restart",
                mode,
                reason: "restart keeps the broker's address only for a 1-broker child process",
            }),
            _ => Err(Error::Unsupported {
                operation: "restart",
                mode,
                reason: "only a child process can be restarted; in-process, use restart_broker",
            }),
        }
    }

    /// Stops everything cleanly and waits for it: in-process tasks joined,
    /// the child process sent SIGTERM and reaped, the container stopped.
    /// Dropping the handle does the same without waiting.
    pub async fn shutdown(self) -> Result<()> {
        let RunningCluster {
            backend,
            _temp_dir,
            _runtime,
            ..
        } = self;
        match backend {
            Backend::InProcess(cluster) => cluster.shutdown().await,
            Backend::Child { mut process, .. } => {
                process.terminate(Duration::from_secs(10)).await?;
            }
            Backend::Apache(mut kafka) => kafka.terminate(Duration::from_secs(20)).await?,
            #[cfg(feature = "docker")]
            Backend::Docker(container) => container.shutdown().await?,
        }
        drop(_temp_dir);
        Ok(())
    }
}
